/* store_sqlite.c - the SQLite store (the default). See store.h and
 * store_int.h. */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sqlite3.h>

#include "log.h"

extern const char *const sg_schema_migrations[];

static const sg_store_ops sqlite_ops;
/* used before their definitions */
static void sq_close(sg_store *st_);
static void sq_rollback(sg_store *st_);
static int64_t sq_bcast_max(sg_store *st_);
static int sq_bcast_sessions(sg_store *st_, int64_t after, int64_t upto, const char *const *among,
                             size_t n, void (*fn)(void *ud, const char *sid), void *ud);
static int sq_room_join(sg_store *st_, const char *nsp, const char *room, const char *socket_id);

/* Give up on a lock after this long (the busy handler's retries sleep
 * ~100 us each; SQLite's default handler sleeps up to 100 ms, which
 * stalled writers ~0.6 s under contention: DESIGN §5). */
#define BUSY_LIMIT_MS 10000

enum stmt_id {
    ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_SAVEPOINT, ST_RELEASE, ST_ROLLBACK_TO,
    ST_SESSION_INSERT, ST_HANDSHAKE_INSERT, ST_SESSION_GET, ST_SESSION_UPDATE,
    ST_SESSION_UPDATE_HOT, ST_SESSION_HANDSHAKE,
    ST_SESSION_CLOSE, ST_SESSION_EXPIRED, ST_SESSION_PURGE, ST_SESSION_PURGE_QUEUE,
    ST_SESSION_PURGE_HANDSHAKES,
    ST_QUEUE_PUSH, ST_QUEUE_READ, ST_QUEUE_TRIM, ST_QUEUE_PENDING, ST_QUEUE_DROP,
    ST_SOCKET_INSERT, ST_SOCKET_FIND, ST_SOCKET_DELETE, ST_SOCKET_ROOMS_DELETE,
    ST_SOCKETS_OF, ST_ROOM_JOIN, ST_ROOM_LEAVE,
    ST_TARGETS, ST_SOCKET_GET, ST_SOCKET_ROOMS, ST_DATA_SET,
    ST_ACK_NEXT, ST_ACK_INSERT, ST_ACK_GET, ST_ACK_DELETE, ST_ACKS_EXPIRED,
    ST_REPLY_INSERT, ST_REPLIES_GET, ST_REPLIES_DELETE, ST_ACKS_FORGET, ST_REPLIES_PURGE,
    ST_QUEUE_MAX, ST_CHANGED,
    ST_OPEN_SESSIONS, ST_SOCKETS_COUNT, ST_RATE_GET, ST_RATE_PUT, ST_RATE_PURGE,
    ST_TARGETS_COUNT, ST_BCAST_PUSH, ST_STREAM_READ, ST_STREAM_PENDING, ST_BCAST_MAX,
    ST_FRONTIER, ST_BCAST_REQUEUE, ST_QUEUE_TRIM_RANGE, ST_BCAST_SEEN, ST_BCAST_SESSIONS,
    ST_BCAST_AMONG,
    ST_BCAST_GC, ST_QUEUE_COUNT, ST_QUEUE_SHED,
    ST_EID_NEXT, ST_QUEUE_PUSH_EID, ST_SOCKET_PID, ST_GHOST_INSERT, ST_GHOST_SOCKET,
    ST_GHOST_QUEUE, ST_BY_PID, ST_RESTORE_SOCKET, ST_RESTORE_QUEUE, ST_RESTORE_DROP,
    ST_GHOST_EMPTY, ST_QUEUE_TRIM_KEPT, ST_GHOSTS_ROOMS, ST_GHOSTS_SOCKETS, ST_GHOSTS_QUEUE,
    ST_GHOSTS_SESSIONS, ST_GHOSTS_DUE, ST_TARGETS_ALL, ST_DATA_VERSION,
    ST_COUNT
};

/* The sockets a target names (?1 nsp, ?2 rooms as a JSON array or NULL
 * for the whole namespace, ?3 rooms excepted as a JSON array, ?4 a socket
 * id skipped or NULL).
 *
 * TARGET_IDS: the ids of the sockets in the rooms ?2 names, each room
 * found by rooms' primary key (nsp, room), so the work grows with those
 * rooms' members, not with the namespace's memberships; with ?2 NULL,
 * every socket of the namespace in a room (TARGET_IDS) or in its own-id
 * room (TARGET_IDS_OWN); each once. TARGETS_FROM(state): their sockets,
 * of the sessions in state, less ?4 and the members of ?3.
 *
 * Measured 2026-12-07 (a scratch store, timed from Python; 11,000 sockets
 * in "/", each in its own-id room, 10,000 also in one big room): an emit
 * to a room of 5, ST_TARGETS 3.3 -> 0.5 ms and ST_TARGETS_COUNT 2.9 ->
 * 0.16 ms (before, both walked every membership of the namespace and
 * looked each up in ?2's JSON); to a room of 100, 2.5 -> 0.5 and 2.8 ->
 * 0.04 ms; rooms of 10,000 and the whole namespace within the noise.
 * tests/bench/fanout, an emit to a room of 10 among 10,010 sessions (the
 * whole transaction, i.e. the write lock): 4.4-4.8 -> 0.06 ms. The
 * same rows, in the same order, as before for rooms of 5, 100 and
 * 10,000, two rooms, a room named twice, a room nobody is in, the whole
 * namespace, with except rooms and a skip, in a second namespace. */
#define TARGET_IDS \
    "SELECT r.socket_id AS id FROM json_each(?2) n CROSS JOIN rooms r" \
    " WHERE r.nsp = ?1 AND r.room = n.value" \
    " UNION SELECT r.socket_id FROM rooms r WHERE ?2 IS NULL AND r.nsp = ?1"
#define TARGET_IDS_OWN TARGET_IDS " AND r.room = r.socket_id"
#define TARGETS_FROM(state) \
    " FROM (" TARGET_IDS ") t CROSS JOIN sockets s CROSS JOIN sessions ss" \
    " WHERE s.id = t.id AND ss.sid = s.sid AND " state \
    " AND (?4 IS NULL OR s.id <> ?4)" \
    " AND NOT EXISTS (SELECT 1 FROM rooms x WHERE x.nsp = ?1 AND x.socket_id = s.id" \
    "   AND x.room IN (SELECT value FROM json_each(?3)))"

/* How a broadcast log row q (sid '') names its sockets: the same target
 * as TARGETS_FROM, read from the row. Its rooms (a JSON array; NULL: every
 * socket of the namespace, by its own-id room), less the socket q.skip and
 * the members of its except rooms. Each room is found by rooms' primary
 * key (nsp, room, socket_id), so the work grows with the rooms the row
 * names and their members, not with every membership of the namespace.
 *
 * LOG_EXCLUDES: socket s is not skipped by q. SOCKET_MATCH: q names the
 * known socket s (a session's socket of q's namespace), a probe per room.
 *
 * Measured 2026-12-07, alternating with the walk before (each socket's
 * rooms, or the namespace's, looked up in the row's JSON):
 * tests/bench/fanout's take with 1,000 log rows pending 2.1-2.3 ->
 * 1.0-1.1 ms, for the session or not; tests/bench/compare --only
 * ws-broadcast --targets sg-wsd,sg-nginx (two runs each): siogate-wsd
 * 26-28 -> 23 us per delivered message straight, 20-21 -> 18-19 behind
 * nginx. ST_BCAST_SESSIONS, ST_BCAST_AMONG: see there. */
#define LOG_EXCLUDES \
    " (q.skip IS NULL OR s.id <> q.skip)" \
    " AND (q.except_rooms IS NULL OR NOT EXISTS (SELECT 1 FROM json_each(q.except_rooms) e" \
    "   CROSS JOIN rooms x WHERE x.nsp = q.nsp AND x.room = e.value AND x.socket_id = s.id))"
#define SOCKET_MATCH \
    " (CASE WHEN q.rooms IS NULL THEN EXISTS (SELECT 1 FROM rooms r" \
    "        WHERE r.nsp = q.nsp AND r.room = s.id AND r.socket_id = s.id)" \
    "      ELSE EXISTS (SELECT 1 FROM json_each(q.rooms) n CROSS JOIN rooms r" \
    "        WHERE r.nsp = q.nsp AND r.room = n.value AND r.socket_id = s.id) END)" \
    " AND" LOG_EXCLUDES

/* Session ?1's stream: its own frames after ?2 and the log rows after ?3
 * its sockets match now, in seq order (with the volatile mark of its own
 * frames, which a settle carries over; log rows are never volatile). */
#define STREAM \
    "SELECT seq, binary, frame, volatile FROM queue WHERE sid = ?1 AND seq > ?2" \
    " UNION ALL SELECT q.seq, q.binary, q.frame, NULL FROM queue q" \
    " WHERE q.sid = '' AND q.seq > ?3 AND EXISTS (SELECT 1 FROM sockets s" \
    "   WHERE s.sid = ?1 AND s.nsp = q.nsp AND" SOCKET_MATCH ")"

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT sg_tx",
    [ST_RELEASE] = "RELEASE sg_tx",
    [ST_ROLLBACK_TO] = "ROLLBACK TO sg_tx",
    [ST_SESSION_INSERT] =
        "INSERT INTO sessions (sid, state, transport, created_at, next_ping_at, ping_sent,"
        " expires_at, connect_by, sent_upto, poller, partial, bcast_seen)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
        " (SELECT coalesce(max(seq), 0) FROM queue WHERE sid = ''))",
    /* apart from the session's hot columns (schema 0003) */
    [ST_HANDSHAKE_INSERT] = "INSERT INTO handshakes (sid, handshake) VALUES (?1, ?2)",
    [ST_SESSION_GET] =
        "SELECT state, transport, created_at, next_ping_at, ping_sent, expires_at,"
        " connect_by, sent_upto, poller, partial, close_reason, upgrading, bcast_seen"
        " FROM sessions WHERE sid = ?1",
    [ST_SESSION_UPDATE] =
        "UPDATE sessions SET state = ?2, transport = ?3, next_ping_at = ?4, ping_sent = ?5,"
        " expires_at = ?6, connect_by = ?7, sent_upto = ?8, poller = ?9, partial = ?10,"
        " upgrading = ?11, bcast_seen = max(bcast_seen, ?12) WHERE sid = ?1",
    /* the same parameters; ?2, ?6, ?7 and ?11 (indexed or read by a
     * trigger) are left alone */
    [ST_SESSION_UPDATE_HOT] =
        "UPDATE sessions SET transport = ?3, next_ping_at = ?4, ping_sent = ?5,"
        " sent_upto = ?8, poller = ?9, partial = ?10, bcast_seen = max(bcast_seen, ?12)"
        " WHERE sid = ?1",
    [ST_SESSION_HANDSHAKE] = "SELECT handshake FROM handshakes WHERE sid = ?1",
    [ST_SESSION_CLOSE] =
        "UPDATE sessions SET state = 1, closed_at = ?3, close_reason = ?2, poller = NULL,"
        " partial = NULL WHERE sid = ?1 AND state = 0",
    [ST_SESSION_EXPIRED] =
        "SELECT sid FROM sessions WHERE state = 0 AND expires_at < ?1"
        " UNION SELECT sid FROM sessions INDEXED BY sessions_connect_by"
        " WHERE state = 0 AND connect_by IS NOT NULL AND connect_by < ?1 LIMIT ?2",
    [ST_SESSION_PURGE] = "DELETE FROM sessions WHERE state = 1 AND closed_at < ?1",
    [ST_SESSION_PURGE_QUEUE] =
        "DELETE FROM queue WHERE sid IN"
        " (SELECT sid FROM sessions WHERE state = 1 AND closed_at < ?1)",
    [ST_SESSION_PURGE_HANDSHAKES] =
        "DELETE FROM handshakes WHERE sid IN"
        " (SELECT sid FROM sessions WHERE state = 1 AND closed_at < ?1)",
    [ST_QUEUE_PUSH] = "INSERT INTO queue (sid, binary, frame, volatile) VALUES (?1, ?2, ?3, ?4)",
    [ST_QUEUE_READ] = "SELECT seq, binary, frame FROM queue WHERE sid = ?1 AND seq > ?2 ORDER BY seq",
    [ST_QUEUE_TRIM] = "DELETE FROM queue WHERE sid = ?1 AND seq <= ?2",
    [ST_QUEUE_PENDING] = "SELECT 1 FROM queue WHERE sid = ?1 AND seq > ?2 LIMIT 1",
    [ST_QUEUE_DROP] = "DELETE FROM queue WHERE sid = ?1",
    [ST_SOCKET_INSERT] = "INSERT INTO sockets (id, sid, nsp, created_at) VALUES (?1, ?2, ?3, ?4)",
    [ST_SOCKET_FIND] = "SELECT id FROM sockets WHERE sid = ?1 AND nsp = ?2",
    [ST_SOCKET_DELETE] = "DELETE FROM sockets WHERE id = ?1",
    [ST_SOCKET_ROOMS_DELETE] = "DELETE FROM rooms WHERE socket_id = ?1",
    [ST_SOCKETS_OF] = "SELECT id, nsp FROM sockets WHERE sid = ?1 ORDER BY created_at, id",
    [ST_ROOM_JOIN] = "INSERT OR IGNORE INTO rooms (nsp, room, socket_id) VALUES (?1, ?2, ?3)",
    [ST_ROOM_LEAVE] = "DELETE FROM rooms WHERE nsp = ?1 AND room = ?2 AND socket_id = ?3",
    /* ?2: JSON array of rooms or NULL (the whole namespace); ?3: JSON array
     * of rooms whose members are skipped; ?4: a socket id to skip or NULL */
    [ST_TARGETS] =
        "SELECT s.id, s.sid, (ss.transport = 'websocket' OR ss.poller IS NOT NULL)"
        TARGETS_FROM("ss.state = 0") " ORDER BY s.created_at, s.id",
    /* rooms alone (a socket exists only while its session is open: a
     * close deletes them in its transaction): at 10,000 members a third
     * of TARGETS_FROM's time */
    [ST_TARGETS_COUNT] =
        "SELECT count(*) FROM (" TARGET_IDS_OWN ") t WHERE (?4 IS NULL OR t.id <> ?4)"
        " AND NOT EXISTS (SELECT 1 FROM rooms x WHERE x.nsp = ?1 AND x.socket_id = t.id"
        "   AND x.room IN (SELECT value FROM json_each(?3)))",
    [ST_BCAST_PUSH] =
        "INSERT INTO queue (sid, binary, frame, nsp, rooms, except_rooms, skip)"
        " VALUES ('', ?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_STREAM_READ] = STREAM " ORDER BY 1",
    [ST_STREAM_PENDING] = "SELECT 1 FROM (" STREAM ") LIMIT 1",
    [ST_BCAST_MAX] = "SELECT coalesce(max(seq), 0) FROM queue WHERE sid = ''",
    [ST_FRONTIER] = "SELECT sent_upto, bcast_seen FROM sessions WHERE sid = ?1",
    /* ?4: the highest seq when it began; the copies come after it */
    [ST_BCAST_REQUEUE] =
        "INSERT INTO queue (sid, binary, frame, volatile) SELECT ?1, binary, frame, volatile"
        " FROM (" STREAM ") WHERE seq <= ?4 ORDER BY seq",
    [ST_QUEUE_TRIM_RANGE] = "DELETE FROM queue WHERE sid = ?1 AND seq > ?2 AND seq <= ?3",
    [ST_BCAST_SEEN] = "UPDATE sessions SET bcast_seen = max(bcast_seen, ?2) WHERE sid = ?1",
    /* the rows naming rooms (json_each of NULL is no row), then the
     * namespace-wide ones; UNION drops the repeats. tests/bench/fanout, a
     * row naming a room of 1,000 in a namespace of 2,000 sessions: 3.2-3.3
     * -> 0.59-0.66 us a recipient (the walk before went through every
     * membership of the namespace); the same lists as the walk's, checked
     * on a scratch store for rows namespace-wide, with except rooms, with
     * a skip, in a second namespace. */
    [ST_BCAST_SESSIONS] =
        "SELECT s.sid FROM queue q CROSS JOIN json_each(q.rooms) n CROSS JOIN rooms r"
        " CROSS JOIN sockets s WHERE q.sid = '' AND q.seq > ?1 AND q.seq <= ?2"
        " AND r.nsp = q.nsp AND r.room = n.value AND s.id = r.socket_id AND" LOG_EXCLUDES
        " UNION SELECT s.sid FROM queue q CROSS JOIN rooms r CROSS JOIN sockets s"
        " WHERE q.sid = '' AND q.seq > ?1 AND q.seq <= ?2 AND q.rooms IS NULL"
        " AND r.nsp = q.nsp AND r.room = r.socket_id AND s.id = r.socket_id AND" LOG_EXCLUDES,
    /* the same, asked about the sessions of the JSON array ?3 only: from
     * each one's sockets (CROSS JOIN keeps that order), not from every
     * member of the rooms the rows name (measured, 1,000 members, one row:
     * 16 us per session asked, against 2.9 ms for the whole list; with
     * SOCKET_MATCH rather than the walk, tests/bench/fanout: 2.7-3.5 ->
     * 1.5-2.8 us each) */
    [ST_BCAST_AMONG] =
        "SELECT DISTINCT s.sid FROM json_each(?3) j CROSS JOIN sockets s CROSS JOIN queue q"
        " WHERE s.sid = j.value AND q.sid = '' AND q.seq > ?1 AND q.seq <= ?2"
        " AND s.nsp = q.nsp AND" SOCKET_MATCH,
    /* what every open session has evaluated (or taken), and at most ?1 */
    [ST_BCAST_GC] =
        "DELETE FROM queue WHERE sid = '' AND seq <= min(?1,"
        " (SELECT coalesce(min(max(sent_upto, bcast_seen)), ?1) FROM sessions WHERE state = 0))",
    /* connection state recovery (schema 0007) */
    [ST_EID_NEXT] =
        "UPDATE counters SET n = max(n + 1, ?1 * 1000) WHERE name = 'eid' RETURNING n",
    [ST_QUEUE_PUSH_EID] =
        "INSERT INTO queue (sid, binary, frame, nsp, eid) VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_SOCKET_PID] = "UPDATE sockets SET pid = ?2 WHERE id = ?1",
    [ST_GHOST_INSERT] =
        "INSERT INTO sessions (sid, state, transport, created_at, next_ping_at, expires_at)"
        " VALUES ('~' || ?1, 2, 'ghost', ?2, 0, ?3)"
        " ON CONFLICT (sid) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)",
    [ST_GHOST_SOCKET] = "UPDATE sockets SET sid = '~' || ?1 WHERE id = ?2",
    [ST_GHOST_QUEUE] =
        "UPDATE queue SET sid = '~' || ?1 WHERE sid = ?1 AND nsp = ?2 AND eid IS NOT NULL",
    [ST_BY_PID] =
        "SELECT s.id, s.sid, s.nsp, ss.state, ss.expires_at FROM sockets s"
        " JOIN sessions ss ON ss.sid = s.sid WHERE s.pid = ?1",
    [ST_RESTORE_SOCKET] = "UPDATE sockets SET sid = ?2 WHERE id = ?1",
    /* ?1 ghost, ?2 the new session, ?3 nsp, ?4 the client's offset */
    [ST_RESTORE_QUEUE] =
        "INSERT INTO queue (sid, binary, frame, nsp, eid) SELECT ?2, binary, frame, nsp, eid"
        " FROM queue WHERE sid = ?1 AND nsp = ?3 AND eid > ?4 ORDER BY seq",
    [ST_RESTORE_DROP] = "DELETE FROM queue WHERE sid = ?1 AND nsp = ?2",
    [ST_GHOST_EMPTY] =
        "DELETE FROM sessions WHERE sid = ?1 AND state = 2"
        " AND NOT EXISTS (SELECT 1 FROM sockets WHERE sid = ?1)",
    [ST_QUEUE_TRIM_KEPT] =
        "DELETE FROM queue WHERE sid = ?1 AND seq <= ?2 AND (eid IS NULL OR eid < ?3)",
    [ST_GHOSTS_ROOMS] =
        "DELETE FROM rooms WHERE socket_id IN (SELECT id FROM sockets WHERE sid IN"
        " (SELECT sid FROM sessions WHERE state = 2 AND expires_at < ?1))",
    [ST_GHOSTS_SOCKETS] =
        "DELETE FROM sockets WHERE sid IN"
        " (SELECT sid FROM sessions WHERE state = 2 AND expires_at < ?1)",
    [ST_GHOSTS_QUEUE] =
        "DELETE FROM queue WHERE sid IN"
        " (SELECT sid FROM sessions WHERE state = 2 AND expires_at < ?1)",
    [ST_GHOSTS_SESSIONS] = "DELETE FROM sessions WHERE state = 2 AND expires_at < ?1",
    /* one lookup of the index sessions_expiry (state, expires_at) */
    [ST_GHOSTS_DUE] = "SELECT 1 FROM sessions WHERE state = 2 AND expires_at < ?1 LIMIT 1",
    /* ST_TARGETS with the ghosts' sockets too (never ready) */
    [ST_TARGETS_ALL] =
        "SELECT s.id, s.sid, ss.state = 0 AND"
        " (ss.transport = 'websocket' OR ss.poller IS NOT NULL)"
        TARGETS_FROM("ss.state IN (0, 2)") " ORDER BY s.created_at, s.id",
    /* a recovery ghost's socket (sid '~' + ...) is not connected: not found */
    [ST_SOCKET_GET] =
        "SELECT sid, nsp, data FROM sockets WHERE id = ?1 AND substr(sid, 1, 1) <> '~'",
    [ST_SOCKET_ROOMS] = "SELECT room FROM rooms WHERE socket_id = ?1 ORDER BY room = socket_id DESC, room",
    [ST_DATA_SET] = "UPDATE sockets SET data = ?2 WHERE id = ?1",
    [ST_ACK_NEXT] = "UPDATE sockets SET next_ack = next_ack + 1 WHERE id = ?1 RETURNING next_ack - 1",
    [ST_ACK_INSERT] =
        "INSERT INTO acks (socket_id, id, sid, nsp, name, deadline, data)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_ACK_GET] = "SELECT sid, nsp, name, data FROM acks WHERE socket_id = ?1 AND id = ?2",
    [ST_ACK_DELETE] = "DELETE FROM acks WHERE socket_id = ?1 AND id = ?2",
    [ST_ACKS_EXPIRED] = "SELECT socket_id, id FROM acks WHERE deadline < ?1 ORDER BY deadline LIMIT ?2",
    [ST_REPLY_INSERT] = "INSERT INTO ack_replies (name, socket_id, args, at) VALUES (?1, ?2, ?3, ?4)",
    [ST_REPLIES_GET] = "SELECT rowid, socket_id, args FROM ack_replies WHERE name = ?1 ORDER BY rowid",
    [ST_REPLIES_DELETE] = "DELETE FROM ack_replies WHERE name = ?1 AND rowid <= ?2",
    [ST_ACKS_FORGET] = "DELETE FROM acks WHERE name = ?1",
    [ST_REPLIES_PURGE] = "DELETE FROM ack_replies WHERE at < ?1 OR name = ?2",
    [ST_QUEUE_MAX] = "SELECT max(seq) FROM queue",
    /* a range of the queue's primary key, and the partial index
     * sessions_upgrading (schema 0002): no scan of either table */
    [ST_CHANGED] =
        "SELECT sid FROM queue WHERE seq > ?1"
        " UNION SELECT sid FROM sessions INDEXED BY sessions_upgrading"
        " WHERE upgrading <> 0 AND state = 0",
    /* the limits (schema 0004) */
    [ST_OPEN_SESSIONS] = "SELECT n FROM counters WHERE name = 'open_sessions'",
    [ST_SOCKETS_COUNT] = "SELECT count(*) FROM sockets WHERE sid = ?1",
    [ST_RATE_GET] = "SELECT tokens, at FROM handshake_rate WHERE address = ?1",
    [ST_RATE_PUT] = "INSERT OR REPLACE INTO handshake_rate (address, tokens, at) VALUES (?1, ?2, ?3)",
    [ST_RATE_PURGE] = "DELETE FROM handshake_rate WHERE at <= ?1",
    /* max_queued_packets (schema 0006): ?1's own frames after ?2, counted
     * up to ?3 (an index range of queue_by_sid, bounded whatever the
     * queue holds) */
    [ST_QUEUE_COUNT] =
        "SELECT count(*) FROM (SELECT 1 FROM queue WHERE sid = ?1 AND seq > ?2 LIMIT ?3)",
    /* ?1's volatile frames after ?2, from its first text frame there on:
     * binary frames before it are the attachments of a packet whose text
     * frame was handed out already, and a packet goes whole or not at all
     * (its frames are consecutive among ?1's: one transaction pushes them
     * in a row) */
    [ST_QUEUE_SHED] =
        "DELETE FROM queue WHERE sid = ?1 AND volatile = 1 AND seq >= (SELECT seq FROM queue"
        " WHERE sid = ?1 AND seq > ?2 AND binary = 0 ORDER BY seq LIMIT 1)",
    /* changes when another connection committed (the read memo) */
    [ST_DATA_VERSION] = "PRAGMA data_version",
};

/* ---- the read memo ---------------------------------------------------------
 *
 * For every message a WebSocket client sends, siogate-wsd reads its
 * session's row, whether anything waits in its stream and its socket in the
 * namespace: three point reads, about half of the instructions of a receive
 * that writes nothing (an echo acked straight away). Inside a batch, the
 * store gives again what it read before while nothing can have changed it:
 * - no other connection commits while a batch holds the write lock (BEGIN
 *   IMMEDIATE); from one batch to the next, PRAGMA data_version, read at
 *   each batch's start, moves when one did;
 * - this connection's own changes move sqlite3_total_changes64 (every row
 *   an INSERT, UPDATE or DELETE changed, in triggers too), compared at each
 *   use;
 * - a rollback, or any failure, may undo what a kept answer was read after.
 * Any of these forgets every kept answer at once (the epoch moves on). Only
 * found rows are kept, not a session holding part of a binary packet nor a
 * namespace longer than MEMO_NSP; outside a batch nothing is kept or used.
 * A turn that writes anything (a broadcast, a join) forgets what was read
 * before the write, so this pays where clients ask and get answers.
 *
 * Measured 2026-12-07 (siogate-wsd, WebSocket echo with ack): callgrind,
 * 20 clients, 32.8k -> 16.8k instructions a receive; tests/bench/compare
 * --only ws-echo --targets sg-nginx,ref-nginx, three runs alternating
 * with the code before: 36.2k, 36.0k, 35.1k -> 40.7k, 40.4k, 40.2k acked
 * echoes/s, siogate-wsd's CPU 12-13 -> 9.5-9.7 us an echo (the reference
 * behind nginx 25.2k-26.0k/s in the same runs).
 */
#define MEMO_SLOTS 1024 /* a slot per session, by its sid's hash */
#define MEMO_NSP 64

struct memo_slot {
    char sid[SG_ID_LEN + 1];
    uint64_t ss_epoch, pend_epoch, sock_epoch; /* when each was kept; 0 = never */
    sg_session ss;                             /* its partial empty, owning nothing */
    int64_t pend_after, pend_bafter;
    int pending;
    char nsp[MEMO_NSP];
    char sock_id[SG_ID_LEN + 1];
};

typedef struct sg_sqlite {
    sg_store base; /* first: the interface (store_int.h) */
    sqlite3 *db;
    char *path;
    sqlite3_stmt *st[ST_COUNT];
    int version;
    int64_t busy_since;    /* when the current wait for a lock began */
    bool batch;            /* a batch transaction is open: begin/commit are savepoints */
    bool sp_open;          /* a savepoint of the batch is open */
    bool borrowed;         /* db is the caller's (sg_store_borrow) */
    struct memo_slot *memo; /* MEMO_SLOTS, owned; allocated at the first answer kept */
    uint64_t epoch;         /* kept answers of an older epoch are forgotten */
    int64_t memo_changes;   /* sqlite3_total_changes64 when last compared */
    int64_t memo_version;   /* PRAGMA data_version at the last batch's start */
} sg_sqlite;

static int busy_handler(void *ud, int count)
{
    sg_sqlite *s = ud;
    /* retry every ~100 us; give up (SQLITE_BUSY) after BUSY_LIMIT_MS of
     * real time (sleeps overshoot, so counting retries would not do) */
    int64_t now = sg_mono_ms();
    if (count == 0)
        s->busy_since = now;
    else if (now - s->busy_since >= BUSY_LIMIT_MS)
        return 0;
    struct timespec ts = {0, 100 * 1000};
    nanosleep(&ts, NULL);
    return 1;
}

static void memo_forget(sg_sqlite *s) { s->epoch++; }

static int store_rc(sg_sqlite *s, int rc, const char *what)
{
    memo_forget(s);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
        sg_error("store %s: %s: database locked past %d ms", s->path, what, BUSY_LIMIT_MS);
        return SG_STORE_BUSY;
    }
    sg_error("store %s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
    return -1;
}

/* The prepared statement id, reset and with bindings cleared; NULL on error. */
static sqlite3_stmt *stmt(sg_sqlite *s, enum stmt_id id)
{
    if (!s->st[id]) {
        if (sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                               &s->st[id], NULL) != SQLITE_OK) {
            store_rc(s, SQLITE_ERROR, stmt_sql[id]);
            return NULL;
        }
    }
    sqlite3_reset(s->st[id]);
    sqlite3_clear_bindings(s->st[id]);
    return s->st[id];
}

/* Step a statement that returns no rows. */
static int exec_stmt(sg_sqlite *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return store_rc(s, rc, what);
    return 0;
}

static int user_version(sg_sqlite *s)
{
    sqlite3_stmt *v = NULL;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &v, NULL) != SQLITE_OK)
        return -1;
    int version = sqlite3_step(v) == SQLITE_ROW ? sqlite3_column_int(v, 0) : -1;
    sqlite3_finalize(v);
    return version;
}

static int migrate(sg_sqlite *s)
{
    char *err = NULL;
    int latest = sg_store_sqlite_latest_version();
    /* up to date (every open but the first): no lock taken, so that opening
     * never waits for a writer */
    if (user_version(s) == latest) {
        s->version = latest;
        return 0;
    }
    int rc = sqlite3_exec(s->db, "BEGIN EXCLUSIVE", NULL, NULL, &err);
    if (rc != SQLITE_OK)
        goto fail;
    if ((s->version = user_version(s)) < 0)
        goto fail_tx;
    if (s->version > latest) {
        sg_error("store %s: schema version %d is newer than this program's (%d)",
                 s->path, s->version, latest);
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    for (int k = s->version; k < latest; k++) {
        if (sqlite3_exec(s->db, sg_schema_migrations[k], NULL, NULL, &err) != SQLITE_OK)
            goto fail_tx;
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", k + 1);
        if (sqlite3_exec(s->db, pragma, NULL, NULL, &err) != SQLITE_OK)
            goto fail_tx;
        sg_info("store %s: applied migration %04d", s->path, k + 1);
    }
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, &err) != SQLITE_OK)
        goto fail_tx;
    s->version = latest;
    return 0;
fail_tx:
    sg_error("store %s: migration failed: %s", s->path, err ? err : sqlite3_errmsg(s->db));
    sqlite3_free(err);
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
fail:
    sg_error("store %s: %s", s->path, err ? err : sqlite3_errmsg(s->db));
    sqlite3_free(err);
    return -1;
}

int sg_store_sqlite_latest_version(void)
{
    int n = 0;
    while (sg_schema_migrations[n])
        n++;
    return n;
}

static int sq_version(sg_store *st_) { return ((sg_sqlite *)st_)->version; }

/* ---- the checkpointer ------------------------------------------------------
 *
 * SQLite checkpoints a WAL database from inside a commit (by default when
 * the WAL reaches 1,000 pages): that commit then copies pages into the
 * database and fsyncs both files, a ~20 ms stall in whatever request made
 * it (DESIGN §5). A daemon starts one checkpointer instead: its store
 * connections do not checkpoint (wal_autocheckpoint = 0); their commits
 * report the WAL's size through a WAL hook, and a thread with a connection
 * of its own runs a PASSIVE checkpoint (it never waits for readers or
 * writers) when the WAL reached CKPT_PAGES, or within CKPT_IDLE_MS after
 * any commit, then copies the frames written meanwhile with writers held
 * off (see ckpt_main). Several processes may each run one: a checkpoint finds the
 * others' work done. Processes without one (the CLI) keep SQLite's
 * automatic checkpoints. */

#define CKPT_PAGES 1000
#define CKPT_IDLE_MS 1000
#define CKPT_WAIT_MS 100

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    atomic_bool on;         /* connections opened now leave checkpoints to it */
    atomic_int pages;       /* the WAL's size at the last commit seen, 0: checkpointed */
    atomic_bool wanted;     /* CKPT_PAGES reached: checkpoint now */
    bool stop;
    sqlite3 *db;
} ckpt = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static int wal_hook(void *ud, sqlite3 *db, const char *name, int pages)
{
    (void)ud, (void)db, (void)name;
    atomic_store_explicit(&ckpt.pages, pages, memory_order_relaxed);
    if (pages >= CKPT_PAGES && !atomic_exchange(&ckpt.wanted, true)) {
        pthread_mutex_lock(&ckpt.mu);
        pthread_cond_signal(&ckpt.cv);
        pthread_mutex_unlock(&ckpt.mu);
    }
    return SQLITE_OK;
}

static void *ckpt_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&ckpt.mu);
    while (!ckpt.stop) {
        if (!atomic_load(&ckpt.wanted)) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += CKPT_IDLE_MS / 1000;
            pthread_cond_timedwait(&ckpt.cv, &ckpt.mu, &until);
            if (ckpt.stop)
                break;
        }
        if (!atomic_load(&ckpt.wanted) && atomic_load(&ckpt.pages) == 0)
            continue; /* idle: nothing written since the last checkpoint */
        atomic_store(&ckpt.wanted, false);
        atomic_store(&ckpt.pages, 0);
        pthread_mutex_unlock(&ckpt.mu);
        int log = 0, done = 0;
        int rc = sqlite3_wal_checkpoint_v2(ckpt.db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        /* Under steady writes a passive checkpoint never catches up (new
         * frames arrive while it copies), and a WAL that is never wholly
         * copied is never restarted: it grew by 40 MB/s under the polling
         * echo benchmark, and every read searched its ever longer index.
         * So the few frames written meanwhile are copied with writers held
         * off (RESTART: a short wait), and the next writer starts the WAL
         * over. */
        if (rc == SQLITE_OK && done < log)
            rc = sqlite3_wal_checkpoint_v2(ckpt.db, NULL, SQLITE_CHECKPOINT_RESTART, &log, &done);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            sg_warn("store: checkpoint: %s", sqlite3_errmsg(ckpt.db));
        pthread_mutex_lock(&ckpt.mu);
    }
    pthread_mutex_unlock(&ckpt.mu);
    return NULL;
}

int sg_store_sqlite_checkpointer_start(const char *path)
{
    if (atomic_load(&ckpt.on))
        return 0;
    if (sqlite3_open_v2(path, &ckpt.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        sg_error("store %s: checkpointer: %s", path,
                 ckpt.db ? sqlite3_errmsg(ckpt.db) : "cannot open");
        goto fail;
    }
    /* a connection knows the database is in WAL mode once it has read it;
     * until then a checkpoint does nothing. Reading it may wait for a
     * writer like any store connection (this once failed at once with
     * "database is locked", and the daemon ran without a checkpointer). */
    sqlite3_busy_timeout(ckpt.db, BUSY_LIMIT_MS);
    if (sqlite3_exec(ckpt.db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL) != SQLITE_OK) {
        sg_error("store %s: checkpointer: %s", path, sqlite3_errmsg(ckpt.db));
        goto fail;
    }
    /* a RESTART checkpoint waits this long for readers and writers to
     * finish (holding new writers off meanwhile), else it is skipped */
    sqlite3_busy_timeout(ckpt.db, CKPT_WAIT_MS);
    ckpt.stop = false;
    int rc = pthread_create(&ckpt.thread, NULL, ckpt_main, NULL);
    if (rc) {
        sg_error("store: checkpointer: pthread_create: %s", strerror(rc));
        goto fail;
    }
    atomic_store(&ckpt.on, true);
    return 0;
fail:
    sqlite3_close(ckpt.db);
    ckpt.db = NULL;
    return -1;
}

void sg_store_checkpointer_stop(void)
{
    if (!atomic_load(&ckpt.on))
        return;
    pthread_mutex_lock(&ckpt.mu);
    ckpt.stop = true;
    pthread_cond_signal(&ckpt.cv);
    pthread_mutex_unlock(&ckpt.mu);
    pthread_join(ckpt.thread, NULL);
    sqlite3_close(ckpt.db);
    ckpt.db = NULL;
    atomic_store(&ckpt.on, false);
}

/* A new store is created mode 0600 whatever the umask: it holds every
 * client's handshake (headers with cookies and tokens) and what is queued
 * for it. SQLite creates the -wal and -shm files with the database file's
 * mode. An existing file, an in-memory or a URI name are left alone; a
 * failure here is left for sqlite3_open_v2 to report. */
static void create_private(const char *path)
{
    if (!*path || !strcmp(path, ":memory:") || !strncmp(path, "file:", 5))
        return;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return;
    if (fchmod(fd, 0600) < 0) /* a umask such as 0277 would leave it 0400 */
        sg_warn("store %s: chmod 0600: %s", path, strerror(errno));
    close(fd);
}

/* A store of path with no connection yet; NULL when out of memory (logged). */
static sg_sqlite *sq_new(const char *path)
{
    sg_sqlite *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        sg_error("store %s: out of memory", path);
        return NULL;
    }
    s->base.ops = &sqlite_ops;
    s->epoch = 1;
    s->memo_version = -1;
    return s;
}

sg_store *sg_store_sqlite_open(const char *path)
{
    sg_sqlite *s = sq_new(path);
    if (!s)
        return NULL;
    create_private(path);
    int rc = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                 SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                             NULL);
    if (rc != SQLITE_OK) {
        sg_error("store %s: cannot open: %s", path,
                 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_handler(s->db, busy_handler, s);
    /* No memory-mapped reads (mmap_size 0, SQLite's default). In WAL mode
     * a page read through the map is never kept in the page cache, so each
     * read of it first looks the page up in the WAL index: with mmap_size
     * = 256 MB, sqlite3WalFindFrame was 8.4 % of siogate-fcgi's
     * instructions in the polling echo. Without the map the pages stay in
     * this connection's cache from one transaction to the next for as long
     * as no other connection writes. Measured 2026-12-08 (callgrind,
     * siogate-fcgi behind nginx, 20 polling echo clients, instructions a
     * request): -10 % (a fresh store), -8.5 % (a store of 100,000 more
     * sessions, 68 MB), -11 % (two siogate-fcgi processes, whose commits
     * empty each other's cache); preads (strace -c): none in the steady
     * state with one process, +0.24 an echo with two; siogate-wsd's
     * WebSocket echo and the broadcast unchanged; 5,000 idle polls: the
     * same RSS, CPU 1.3 -> 1.1 % (nginx) and 1.9 -> 1.8 % (lighttpd). */
    char *err = NULL;
    if (sqlite3_exec(s->db,
                     "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                     " PRAGMA foreign_keys = OFF; PRAGMA temp_store = MEMORY;"
                     " PRAGMA mmap_size = 0;",
                     NULL, NULL, &err) != SQLITE_OK) {
        sg_error("store %s: %s", path, err ? err : sqlite3_errmsg(s->db));
        sqlite3_free(err);
        goto fail;
    }
    if (atomic_load(&ckpt.on)) {
        sqlite3_wal_autocheckpoint(s->db, 0);
        sqlite3_wal_hook(s->db, wal_hook, NULL);
    }
    if (migrate(s) < 0)
        goto fail;
    return &s->base;
fail:
    sq_close(&s->base);
    return NULL;
}

void sg_store_process_init(bool short_lived)
{
    /* each fails harmlessly (SQLITE_MISUSE) once SQLite is initialised */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    if (short_lived) {
        sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0);
        sqlite3_config(SQLITE_CONFIG_LOOKASIDE, 0, 0);
    }
}

sg_store *sg_store_borrow(sqlite3 *db, const char *path)
{
    sg_sqlite *s = sq_new(path);
    if (!s)
        return NULL;
    s->db = db;
    s->borrowed = true;
    s->version = sg_store_sqlite_latest_version();
    return &s->base;
}

static void sq_close(sg_store *st_)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    if (!s)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    if (!s->borrowed)
        sqlite3_close(s->db);
    free(s->memo);
    free(s->path);
    free(s);
}

static int simple(sg_sqlite *s, enum stmt_id id)
{
    sqlite3_stmt *st = stmt(s, id);
    return st ? exec_stmt(s, st, stmt_sql[id]) : -1;
}

/* ---- the read memo (see above its struct) ------------------------------ */

/* At a batch's start: did another connection commit since the last one? */
static void memo_batch_start(sg_sqlite *s)
{
    sqlite3_stmt *st = stmt(s, ST_DATA_VERSION);
    int64_t version = -1;
    if (st && sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int64(st, 0);
    if (st)
        sqlite3_reset(st);
    if (version < 0 || version != s->memo_version)
        memo_forget(s);
    s->memo_version = version;
}

/* The epoch whose kept answers hold now, or 0 when none may be used or
 * kept (no batch, or SQLite ended it on an error). */
static uint64_t memo_epoch(sg_sqlite *s)
{
    if (!s->batch || sqlite3_get_autocommit(s->db))
        return 0;
    int64_t changes = sqlite3_total_changes64(s->db);
    if (changes != s->memo_changes) {
        s->memo_changes = changes;
        memo_forget(s);
    }
    return s->epoch;
}

/* sid's slot: NULL when it holds another session's answers, unless claim
 * (then they are dropped for sid's); NULL when sid is no session id or
 * the slots cannot be allocated. */
static struct memo_slot *memo_slot(sg_sqlite *s, const char *sid, bool claim)
{
    size_t n = strnlen(sid, SG_ID_LEN + 1);
    if (n > SG_ID_LEN) /* a recovery ghost's '~' + sid */
        return NULL;
    uint32_t h = 2166136261u; /* FNV-1a of the first 8 characters: ids are random */
    for (size_t i = 0; i < n && i < 8; i++)
        h = (h ^ (unsigned char)sid[i]) * 16777619u;
    if (!s->memo && (!claim || !(s->memo = calloc(MEMO_SLOTS, sizeof *s->memo))))
        return NULL;
    struct memo_slot *m = &s->memo[h % MEMO_SLOTS];
    if (strcmp(m->sid, sid) == 0)
        return m;
    if (!claim)
        return NULL;
    memcpy(m->sid, sid, n + 1);
    m->ss_epoch = m->pend_epoch = m->sock_epoch = 0;
    return m;
}

static int sq_begin(sg_store *st_)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    if (!s->batch)
        return simple(s, ST_BEGIN);
    int rc = simple(s, ST_SAVEPOINT);
    s->sp_open = rc == 0;
    return rc;
}

static int sq_commit(sg_store *st_)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    if (s->batch) {
        if (!s->sp_open)
            return -1;
        int rc = simple(s, ST_RELEASE);
        if (rc != 0)
            sq_rollback(&s->base);
        s->sp_open = false;
        return rc;
    }
    int rc = simple(s, ST_COMMIT);
    if (rc != 0 && !sqlite3_get_autocommit(s->db))
        sq_rollback(&s->base);
    return rc;
}

static void sq_rollback(sg_store *st_)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    memo_forget(s);
    if (s->batch) {
        if (s->sp_open) {
            simple(s, ST_ROLLBACK_TO);
            simple(s, ST_RELEASE);
            s->sp_open = false;
        }
        return;
    }
    if (!sqlite3_get_autocommit(s->db))
        simple(s, ST_ROLLBACK);
}

static int sq_batch_begin(sg_store *st_)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    if (s->batch)
        return -1;
    int rc = simple(s, ST_BEGIN);
    s->batch = rc == 0;
    if (s->batch)
        memo_batch_start(s);
    return rc;
}

static int sq_batch_end(sg_store *st_)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    if (!s->batch)
        return -1;
    if (s->sp_open)
        sq_rollback(&s->base);
    s->batch = false;
    int rc = simple(s, ST_COMMIT);
    if (rc != 0 && !sqlite3_get_autocommit(s->db))
        simple(s, ST_ROLLBACK);
    if (rc != 0)
        memo_forget(s);
    return rc;
}

/* ---- sessions ---------------------------------------------------------- */

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *t)
{
    if (t && *t)
        sqlite3_bind_text(st, i, t, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void bind_int_or_null(sqlite3_stmt *st, int i, int64_t v)
{
    if (v)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

static void bind_partial(sqlite3_stmt *st, int i, const sg_buf *b)
{
    if (b->len)
        sqlite3_bind_blob(st, i, b->data, (int)b->len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static int sq_session_insert(sg_store *st_, const sg_session *ss, const char *handshake)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_SESSION_INSERT);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, ss->sid, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, ss->state);
    sqlite3_bind_text(st, 3, ss->transport, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, ss->created_at);
    sqlite3_bind_int64(st, 5, ss->next_ping_at);
    sqlite3_bind_int(st, 6, ss->ping_sent);
    sqlite3_bind_int64(st, 7, ss->expires_at);
    bind_int_or_null(st, 8, ss->connect_by);
    sqlite3_bind_int64(st, 9, ss->sent_upto);
    bind_text_or_null(st, 10, ss->poller);
    bind_partial(st, 11, &ss->partial);
    int rc = exec_stmt(s, st, "insert session");
    if (rc != 0 || !(st = stmt(s, ST_HANDSHAKE_INSERT)))
        return rc != 0 ? rc : -1;
    sqlite3_bind_text(st, 1, ss->sid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, handshake, -1, SQLITE_STATIC);
    return exec_stmt(s, st, "insert handshake");
}

static void copy_text(char *dst, size_t cap, const unsigned char *src)
{
    sg_copy(dst, cap, (const char *)src);
}

static int sq_session_get(sg_store *st_, const char *sid, sg_session *out)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    uint64_t epoch = memo_epoch(s);
    struct memo_slot *m = epoch ? memo_slot(s, sid, false) : NULL;
    if (m && m->ss_epoch == epoch) {
        *out = m->ss;
        return 0;
    }
    sqlite3_stmt *st = stmt(s, ST_SESSION_GET);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return SG_STORE_NOTFOUND;
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return store_rc(s, rc, "get session");
    }
    sg_buf_init(&out->partial);
    sg_copy(out->sid, sizeof out->sid, sid);
    out->state = sqlite3_column_int(st, 0);
    copy_text(out->transport, sizeof out->transport, sqlite3_column_text(st, 1));
    out->created_at = sqlite3_column_int64(st, 2);
    out->next_ping_at = sqlite3_column_int64(st, 3);
    out->ping_sent = sqlite3_column_int(st, 4);
    out->expires_at = sqlite3_column_int64(st, 5);
    out->connect_by = sqlite3_column_int64(st, 6);
    out->sent_upto = sqlite3_column_int64(st, 7);
    copy_text(out->poller, sizeof out->poller, sqlite3_column_text(st, 8));
    copy_text(out->close_reason, sizeof out->close_reason, sqlite3_column_text(st, 10));
    out->upgrading = sqlite3_column_int64(st, 11);
    out->bcast_seen = sqlite3_column_int64(st, 12);
    int plen = sqlite3_column_bytes(st, 9);
    const void *p = sqlite3_column_blob(st, 9);
    rc = 0;
    if (plen > 0 && sg_buf_append(&out->partial, p, (size_t)plen) < 0) {
        sg_error("store %s: out of memory", s->path);
        rc = -1;
    }
    sqlite3_reset(st);
    if (rc == 0 && epoch && plen == 0 && (m = memo_slot(s, sid, true))) {
        m->ss = *out; /* out->partial is empty: nothing shared */
        m->ss_epoch = epoch;
    }
    return rc;
}

/* ST_SESSION_UPDATE or ST_SESSION_UPDATE_HOT: both number their
 * parameters alike (the hot one skips some). */
static int session_write(sg_sqlite *s, int id, const sg_session *ss)
{
    sqlite3_stmt *st = stmt(s, id);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, ss->sid, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, ss->state);
    sqlite3_bind_text(st, 3, ss->transport, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, ss->next_ping_at);
    sqlite3_bind_int(st, 5, ss->ping_sent);
    sqlite3_bind_int64(st, 6, ss->expires_at);
    bind_int_or_null(st, 7, ss->connect_by);
    sqlite3_bind_int64(st, 8, ss->sent_upto);
    bind_text_or_null(st, 9, ss->poller);
    bind_partial(st, 10, &ss->partial);
    sqlite3_bind_int64(st, 11, ss->upgrading);
    sqlite3_bind_int64(st, 12, ss->bcast_seen);
    return exec_stmt(s, st, "update session");
}

static int sq_session_update(sg_store *st_, const sg_session *ss)
{
    return session_write((sg_sqlite *)st_, ST_SESSION_UPDATE, ss);
}

static int sq_session_update_hot(sg_store *st_, const sg_session *ss)
{
    return session_write((sg_sqlite *)st_, ST_SESSION_UPDATE_HOT, ss);
}

static json_t *sq_session_handshake(sg_store *st_, const char *sid)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_SESSION_HANDSHAKE);
    if (!st)
        return NULL;
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
    json_t *hs = NULL;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        if (t)
            hs = json_loads(t, JSON_DECODE_ANY, NULL);
    }
    sqlite3_reset(st);
    return hs;
}

static int sq_session_close(sg_store *st_, const char *sid, const char *reason, int64_t now)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_SESSION_CLOSE);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    int rc = exec_stmt(s, st, "close session");
    if (rc != 0)
        return rc;
    return sqlite3_changes(s->db) == 0 ? SG_STORE_NOTFOUND : 0;
}

static int sq_queue_drop(sg_store *st_, const char *sid)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_QUEUE_DROP);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
    return exec_stmt(s, st, "drop queue");
}

/* Collect text column 0 of every row of st into a NUL-separated buffer,
 * so callbacks run after the statement is reset and may use the store. */
static int collect(sg_sqlite *s, sqlite3_stmt *st, int ncols, sg_buf *out, int *nrows)
{
    int rc;
    *nrows = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int c = 0; c < ncols; c++) {
            const char *t = (const char *)sqlite3_column_text(st, c);
            if (sg_buf_append(out, t ? t : "", t ? strlen(t) + 1 : 1) < 0) {
                sqlite3_reset(st);
                sg_error("store %s: out of memory", s->path);
                return -1;
            }
        }
        (*nrows)++;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_rc(s, rc, "select");
}

/* fn(ud, sid) for column 0 of every row of st (bound), collected first
 * so that fn may use the store. Returns the count or -1. */
static int each_sid(sg_sqlite *s, sqlite3_stmt *st, void (*fn)(void *ud, const char *sid),
                    void *ud)
{
    sg_buf ids = SG_BUF_INIT;
    int n;
    int rc = collect(s, st, 1, &ids, &n);
    const char *p = ids.data;
    for (int i = 0; rc == 0 && i < n; i++, p += strlen(p) + 1)
        fn(ud, p);
    sg_buf_free(&ids);
    return rc < 0 ? rc : n;
}

static int sq_sessions_expired(sg_store *st_, int64_t now, int max,
                              void (*fn)(void *ud, const char *sid), void *ud)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_SESSION_EXPIRED);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int(st, 2, max);
    return each_sid(s, st, fn, ud);
}

static int sq_changed_since(sg_store *st_, int64_t *mark, const char *const *among, size_t n,
                           void (*fn)(void *ud, const char *sid), void *ud)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_QUEUE_MAX);
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    int64_t max = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL
                      ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return store_rc(s, rc, "queue max");
    int64_t since = *mark;
    if (max > *mark)
        *mark = max;
    if (since < 0)
        return 0;
    if (!(st = stmt(s, ST_CHANGED)))
        return -1;
    sqlite3_bind_int64(st, 1, since);
    int k = each_sid(s, st, fn, ud);
    if (k < 0)
        return k;
    /* the sessions a broadcast log row since then names (rarely any) */
    int m = sq_bcast_sessions(&s->base, since, *mark, among, n, fn, ud);
    return m < 0 ? m : k + m;
}

static int sq_sessions_purge(sg_store *st_, int64_t before)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_SESSION_PURGE_QUEUE);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, before);
    int rc = exec_stmt(s, st, "purge queues");
    if (rc != 0 || !(st = stmt(s, ST_REPLIES_PURGE)))
        return -1;
    sqlite3_bind_int64(st, 1, before);
    sqlite3_bind_null(st, 2);
    rc = exec_stmt(s, st, "purge ack replies");
    if (rc != 0 || !(st = stmt(s, ST_SESSION_PURGE_HANDSHAKES)))
        return -1;
    sqlite3_bind_int64(st, 1, before);
    rc = exec_stmt(s, st, "purge handshakes");
    if (rc != 0 || !(st = stmt(s, ST_SESSION_PURGE)))
        return -1;
    sqlite3_bind_int64(st, 1, before);
    rc = exec_stmt(s, st, "purge sessions");
    return rc < 0 ? rc : sqlite3_changes(s->db);
}

/* ---- queue --------------------------------------------------------------- */

static int64_t sq_queue_push_as(sg_store *st_, const char *sid, bool binary, bool is_volatile,
                               const void *frame, size_t len)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_QUEUE_PUSH);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, binary);
    sqlite3_bind_blob64(st, 3, len ? frame : "", len, SQLITE_STATIC);
    if (is_volatile)
        sqlite3_bind_int(st, 4, 1); /* else NULL: not volatile */
    if (exec_stmt(s, st, "queue push") != 0)
        return -1;
    return sqlite3_last_insert_rowid(s->db);
}

static int64_t sq_queue_count(sg_store *st_, const char *sid, int64_t after, int64_t cap)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_QUEUE_COUNT);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, after);
    sqlite3_bind_int64(st, 3, cap < 0 ? -1 : cap); /* LIMIT -1: none */
    int rc = sqlite3_step(st);
    int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        store_rc(s, rc, "queue count");
    return n;
}

static int sq_queue_shed(sg_store *st_, const char *sid, int64_t after)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_QUEUE_SHED);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, after);
    int rc = exec_stmt(s, st, "queue shed");
    return rc < 0 ? rc : sqlite3_changes(s->db);
}

/* Pass the frames of st (seq, binary, frame rows, bound) to fn; see
 * sg_store_queue_read. *cut is set when it stopped before the last row. */
static int read_frames(sg_sqlite *s, sqlite3_stmt *st, size_t max_bytes,
                       int (*fn)(void *ud, bool binary, const void *frame, size_t len),
                       void *ud, int64_t *last, bool *cut)
{
    int n = 0, rc;
    size_t bytes = 0;
    *cut = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t len = (size_t)sqlite3_column_bytes(st, 2);
        if (n > 0 && bytes + len > max_bytes) {
            *cut = true;
            break;
        }
        const void *frame = sqlite3_column_blob(st, 2);
        int64_t seq = sqlite3_column_int64(st, 0);
        if (fn(ud, sqlite3_column_int(st, 1) != 0, frame ? frame : "", len) != 0) {
            *cut = true;
            break;
        }
        *last = seq;
        bytes += len;
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_rc(s, rc, "queue read");
    return n;
}

static int sq_queue_read(sg_store *st_, const char *sid, int64_t after, size_t max_bytes,
                        int (*fn)(void *ud, bool binary, const void *frame, size_t len),
                        void *ud, int64_t *last)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_QUEUE_READ);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, after);
    bool cut;
    return read_frames(s, st, max_bytes, fn, ud, last, &cut);
}

static int64_t scalar_stmt(sg_sqlite *s, enum stmt_id id)
{
    sqlite3_stmt *st = stmt(s, id);
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        store_rc(s, rc, stmt_sql[id]);
    return v;
}

static int64_t sq_bcast_max(sg_store *st_) { return scalar_stmt((sg_sqlite *)st_, ST_BCAST_MAX); }

static void bind_stream(sqlite3_stmt *st, const char *sid, int64_t after, int64_t bafter)
{
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, after);
    sqlite3_bind_int64(st, 3, bafter > after ? bafter : after);
}

static int sq_stream_read(sg_store *st_, const char *sid, int64_t after, int64_t *bseen,
                         size_t max_bytes,
                         int (*fn)(void *ud, bool binary, const void *frame, size_t len),
                         void *ud, int64_t *last, bool *cut)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_STREAM_READ);
    if (!st)
        return -1;
    bind_stream(st, sid, after, *bseen);
    int n = read_frames(s, st, max_bytes, fn, ud, last, cut);
    if (n < 0)
        return n;
    /* every log row up to the last frame passed was evaluated; without a
     * cut, every log row there is */
    int64_t seen = *cut ? (n > 0 ? *last : 0) : sq_bcast_max(&s->base);
    if (seen < 0)
        return -1;
    if (seen > *bseen)
        *bseen = seen;
    return n;
}

static int sq_stream_pending(sg_store *st_, const char *sid, int64_t after, int64_t bafter)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    uint64_t epoch = memo_epoch(s);
    struct memo_slot *m = epoch ? memo_slot(s, sid, false) : NULL;
    if (m && m->pend_epoch == epoch && m->pend_after == after && m->pend_bafter == bafter)
        return m->pending;
    sqlite3_stmt *st = stmt(s, ST_STREAM_PENDING);
    if (!st)
        return -1;
    bind_stream(st, sid, after, bafter);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_rc(s, rc, "stream pending");
    int pending = rc == SQLITE_ROW;
    if (epoch && (m = memo_slot(s, sid, true))) {
        m->pend_after = after;
        m->pend_bafter = bafter;
        m->pending = pending;
        m->pend_epoch = epoch;
    }
    return pending;
}

static int64_t sq_bcast_push(sg_store *st_, const char *nsp, const char *rooms, const char *except,
                            const char *skip, bool binary, const void *frame, size_t len)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_BCAST_PUSH);
    if (!st)
        return -1;
    sqlite3_bind_int(st, 1, binary);
    sqlite3_bind_blob64(st, 2, len ? frame : "", len, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, nsp, -1, SQLITE_STATIC);
    bind_text_or_null(st, 4, rooms);
    bind_text_or_null(st, 5, except);
    bind_text_or_null(st, 6, skip);
    if (exec_stmt(s, st, "broadcast push") != 0)
        return -1;
    return sqlite3_last_insert_rowid(s->db);
}

static int sq_bcast_settle(sg_store *st_, const char *sid, int64_t sent_upto, int64_t *bseen,
                          bool *moved)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    *moved = false;
    sqlite3_stmt *st = stmt(s, ST_FRONTIER);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int64_t row_sent = 0, row_seen = 0;
    if (rc == SQLITE_ROW) {
        row_sent = sqlite3_column_int64(st, 0);
        row_seen = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return SG_STORE_NOTFOUND;
    if (rc != SQLITE_ROW)
        return store_rc(s, rc, "session frontier");
    if (row_sent > sent_upto)
        sent_upto = row_sent;
    if (*bseen > row_seen)
        row_seen = *bseen;
    int64_t max = sq_bcast_max(&s->base);
    if (max < 0)
        return -1;
    if (max <= row_seen || max <= sent_upto) {
        *bseen = row_seen;
        return 0; /* no log row it has not evaluated: nothing to keep */
    }
    /* its pending stream becomes its own rows, in order, after everything
     * queued so far: copied, then the originals of its own rows deleted */
    int64_t top = scalar_stmt(s, ST_QUEUE_MAX);
    if (top < 0 || !(st = stmt(s, ST_BCAST_REQUEUE)))
        return -1;
    bind_stream(st, sid, sent_upto, row_seen);
    sqlite3_bind_int64(st, 4, top);
    if ((rc = exec_stmt(s, st, "broadcast requeue")) != 0)
        return rc;
    if (!(st = stmt(s, ST_QUEUE_TRIM_RANGE)))
        return -1;
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, sent_upto);
    sqlite3_bind_int64(st, 3, top);
    if ((rc = exec_stmt(s, st, "broadcast requeue trim")) != 0)
        return rc;
    if (!(st = stmt(s, ST_BCAST_SEEN)))
        return -1;
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, max);
    *bseen = max;
    *moved = true;
    return exec_stmt(s, st, "broadcast seen");
}

static int sq_bcast_sessions(sg_store *st_, int64_t after, int64_t upto, const char *const *among,
                             size_t n, void (*fn)(void *ud, const char *sid), void *ud)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sg_buf ids = SG_BUF_INIT;
    int rc = -1;
    if (among && sg_store_id_list(&ids, among, n, true) < 0)
        goto out;
    sqlite3_stmt *st = stmt(s, among ? ST_BCAST_AMONG : ST_BCAST_SESSIONS);
    if (!st)
        goto out;
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int64(st, 2, upto);
    if (among)
        sqlite3_bind_text(st, 3, ids.data, (int)ids.len, SQLITE_STATIC);
    rc = each_sid(s, st, fn, ud);
out:
    sg_buf_free(&ids);
    return rc;
}

static int sq_bcast_gc(sg_store *st_, int64_t upto)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    /* no log row (most sweeps): no look at every open session */
    int64_t max = sq_bcast_max(&s->base);
    if (max <= 0)
        return max < 0 ? -1 : 0;
    sqlite3_stmt *st = stmt(s, ST_BCAST_GC);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, upto);
    int rc = exec_stmt(s, st, "broadcast log gc");
    return rc < 0 ? rc : sqlite3_changes(s->db);
}

static int sq_queue_trim(sg_store *st_, const char *sid, int64_t upto)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_QUEUE_TRIM);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, upto);
    return exec_stmt(s, st, "queue trim");
}

static int sq_queue_pending(sg_store *st_, const char *sid, int64_t after)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_QUEUE_PENDING);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, after);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : store_rc(s, rc, "queue pending");
}

/* ---- sockets and rooms ---------------------------------------------------- */

static int sq_socket_insert(sg_store *st_, const char *id, const char *sid, const char *nsp,
                           int64_t now)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_SOCKET_INSERT);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, sid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, nsp, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    int rc = exec_stmt(s, st, "insert socket");
    return rc != 0 ? rc : sq_room_join(&s->base, nsp, id, id);
}

static int sq_socket_find(sg_store *st_, const char *sid, const char *nsp, char *id)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    uint64_t epoch = strlen(nsp) < MEMO_NSP ? memo_epoch(s) : 0;
    struct memo_slot *m = epoch ? memo_slot(s, sid, false) : NULL;
    if (m && m->sock_epoch == epoch && strcmp(m->nsp, nsp) == 0) {
        memcpy(id, m->sock_id, sizeof m->sock_id);
        return 0;
    }
    sqlite3_stmt *st = stmt(s, ST_SOCKET_FIND);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, nsp, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        copy_text(id, SG_ID_LEN + 1, sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? SG_STORE_NOTFOUND : store_rc(s, rc, "find socket");
    if (epoch && (m = memo_slot(s, sid, true))) {
        sg_copy(m->nsp, sizeof m->nsp, nsp);
        memcpy(m->sock_id, id, sizeof m->sock_id);
        m->sock_epoch = epoch;
    }
    return 0;
}

static int sq_socket_delete(sg_store *st_, const char *id)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_SOCKET_DELETE);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = exec_stmt(s, st, "delete socket");
    if (rc != 0)
        return rc;
    st = stmt(s, ST_SOCKET_ROOMS_DELETE);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    return exec_stmt(s, st, "delete socket rooms");
}

static int sq_sockets_of(sg_store *st_, const char *sid,
                        void (*fn)(void *ud, const char *id, const char *nsp), void *ud)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_SOCKETS_OF);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
    sg_buf rows = SG_BUF_INIT;
    int n;
    int rc = collect(s, st, 2, &rows, &n);
    const char *p = rows.data;
    for (int i = 0; rc == 0 && i < n; i++) {
        const char *id = p;
        const char *nsp = id + strlen(id) + 1;
        p = nsp + strlen(nsp) + 1;
        fn(ud, id, nsp);
    }
    sg_buf_free(&rows);
    return rc < 0 ? rc : n;
}

static int room_op(sg_sqlite *s, enum stmt_id id, const char *nsp, const char *room,
                   const char *socket_id)
{
    sqlite3_stmt *st = stmt(s, id);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, nsp, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, room, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, socket_id, -1, SQLITE_STATIC);
    return exec_stmt(s, st, stmt_sql[id]);
}

static int sq_room_join(sg_store *st_, const char *nsp, const char *room, const char *socket_id)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    return room_op(s, ST_ROOM_JOIN, nsp, room, socket_id);
}

static int sq_room_leave(sg_store *st_, const char *nsp, const char *room, const char *socket_id)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    return room_op(s, ST_ROOM_LEAVE, nsp, room, socket_id);
}

static int64_t sq_scalar(sg_store *st_, const char *sql)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        store_rc(s, SQLITE_ERROR, sql);
        return -1;
    }
    int rc = sqlite3_step(st);
    int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        store_rc(s, rc, sql);
    sqlite3_finalize(st);
    return v;
}

/* ---- targets, socket data, acks ---------------------------------------------------- */

static int targets(sg_sqlite *s, enum stmt_id which, const char *nsp, const char *rooms,
                   const char *except, const char *skip,
                   void (*fn)(void *ud, const char *id, const char *sid, bool ready), void *ud)
{
    sqlite3_stmt *st = stmt(s, which);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, nsp, -1, SQLITE_STATIC);
    bind_text_or_null(st, 2, rooms);
    sqlite3_bind_text(st, 3, except ? except : "[]", -1, SQLITE_STATIC);
    bind_text_or_null(st, 4, skip);
    sg_buf rows = SG_BUF_INIT;
    int n;
    int rc = collect(s, st, 3, &rows, &n);
    const char *p = rows.data;
    for (int i = 0; rc == 0 && i < n; i++) {
        const char *id = p;
        const char *sid = id + strlen(id) + 1;
        const char *ready = sid + strlen(sid) + 1;
        p = ready + strlen(ready) + 1;
        fn(ud, id, sid, ready[0] == '1');
    }
    sg_buf_free(&rows);
    return rc < 0 ? rc : n;
}

static int sq_targets(sg_store *st_, const char *nsp, const char *rooms, const char *except,
                     const char *skip, void (*fn)(void *ud, const char *id, const char *sid,
                                                  bool ready),
                     void *ud)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    return targets(s, ST_TARGETS, nsp, rooms, except, skip, fn, ud);
}

static int sq_targets_all(sg_store *st_, const char *nsp, const char *rooms, const char *except,
                         const char *skip, void (*fn)(void *ud, const char *id, const char *sid,
                                                      bool ready),
                         void *ud)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    return targets(s, ST_TARGETS_ALL, nsp, rooms, except, skip, fn, ud);
}

static int sq_targets_count(sg_store *st_, const char *nsp, const char *rooms, const char *except,
                           const char *skip)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_TARGETS_COUNT);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, nsp, -1, SQLITE_STATIC);
    bind_text_or_null(st, 2, rooms);
    sqlite3_bind_text(st, 3, except ? except : "[]", -1, SQLITE_STATIC);
    bind_text_or_null(st, 4, skip);
    int rc = sqlite3_step(st);
    int n = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return store_rc(s, rc, "count targets");
    return n;
}

static int sq_socket_get(sg_store *st_, const char *id, char *sid, char *nsp, size_t nspcap,
                        json_t **data)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_SOCKET_GET);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (sid)
            copy_text(sid, SG_ID_LEN + 1, sqlite3_column_text(st, 0));
        if (nsp)
            copy_text(nsp, nspcap, sqlite3_column_text(st, 1));
        if (data) {
            const char *t = (const char *)sqlite3_column_text(st, 2);
            *data = t ? json_loads(t, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL) : json_null();
        }
    }
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return data && !*data ? -1 : 0;
    return rc == SQLITE_DONE ? SG_STORE_NOTFOUND : store_rc(s, rc, "get socket");
}

static json_t *sq_socket_rooms(sg_store *st_, const char *id)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_SOCKET_ROOMS);
    if (!st)
        return NULL;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    json_t *a = json_array();
    int rc;
    while (a && (rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(a, json_string((const char *)sqlite3_column_text(st, 0)));
    sqlite3_reset(st);
    if (a && rc != SQLITE_DONE) {
        store_rc(s, rc, "socket rooms");
        json_decref(a);
        a = NULL;
    }
    return a;
}

static int sq_socket_data_set(sg_store *st_, const char *id, const char *json)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_DATA_SET);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    bind_text_or_null(st, 2, json);
    int rc = exec_stmt(s, st, "set socket data");
    return rc != 0 ? rc : sqlite3_changes(s->db) ? 0 : SG_STORE_NOTFOUND;
}

static int64_t sq_ack_next(sg_store *st_, const char *socket_id)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_ACK_NEXT);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, socket_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        store_rc(s, rc, "next ack id");
    return id;
}

static int sq_ack_insert(sg_store *st_, const char *socket_id, int64_t id, const char *sid,
                        const char *nsp, const char *name, int64_t deadline, const char *data)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_ACK_INSERT);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, socket_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, id);
    sqlite3_bind_text(st, 3, sid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, nsp, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, deadline);
    bind_text_or_null(st, 7, data);
    return exec_stmt(s, st, "insert ack");
}

static int sq_ack_take(sg_store *st_, const char *socket_id, int64_t id, sg_buf *out)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_ACK_GET);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, socket_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        for (int c = 0; c < 4; c++) {
            const char *t = (const char *)sqlite3_column_text(st, c);
            if (sg_buf_append(out, t ? t : "", t ? strlen(t) + 1 : 1) < 0)
                rc = SQLITE_NOMEM;
        }
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return SG_STORE_NOTFOUND;
    if (rc != SQLITE_ROW)
        return store_rc(s, rc, "get ack");
    if (!(st = stmt(s, ST_ACK_DELETE)))
        return -1;
    sqlite3_bind_text(st, 1, socket_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, id);
    return exec_stmt(s, st, "delete ack");
}

static int sq_acks_expired(sg_store *st_, int64_t now, int max,
                          void (*fn)(void *ud, const char *socket_id, int64_t id), void *ud)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_ACKS_EXPIRED);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int(st, 2, max);
    sg_buf rows = SG_BUF_INIT;
    int n;
    int rc = collect(s, st, 2, &rows, &n);
    const char *p = rows.data;
    for (int i = 0; rc == 0 && i < n; i++) {
        const char *sock = p;
        const char *id = sock + strlen(sock) + 1;
        p = id + strlen(id) + 1;
        fn(ud, sock, strtoll(id, NULL, 10));
    }
    sg_buf_free(&rows);
    return rc < 0 ? rc : n;
}

static int sq_reply_insert(sg_store *st_, const char *name, const char *socket_id, const char *args,
                          int64_t at)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_REPLY_INSERT);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, socket_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, args, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, at);
    return exec_stmt(s, st, "insert ack reply");
}

static int sq_replies_take(sg_store *st_, const char *name,
                          void (*fn)(void *ud, const char *socket_id, const char *args), void *ud)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_REPLIES_GET);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sg_buf rows = SG_BUF_INIT;
    int n;
    int rc = collect(s, st, 3, &rows, &n);
    const char *p = rows.data;
    int64_t last = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        const char *rowid = p;
        const char *sock = rowid + strlen(rowid) + 1;
        const char *args = sock + strlen(sock) + 1;
        p = args + strlen(args) + 1;
        last = strtoll(rowid, NULL, 10);
        fn(ud, sock, args);
    }
    sg_buf_free(&rows);
    if (rc == 0 && n > 0) {
        if (!(st = stmt(s, ST_REPLIES_DELETE)))
            return -1;
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, last);
        rc = exec_stmt(s, st, "delete ack replies");
    }
    return rc < 0 ? rc : n;
}

static int sq_acks_forget(sg_store *st_, const char *name)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_ACKS_FORGET);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = exec_stmt(s, st, "forget acks");
    if (rc != 0 || !(st = stmt(s, ST_REPLIES_PURGE)))
        return -1;
    sqlite3_bind_int64(st, 1, 0);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    return exec_stmt(s, st, "forget ack replies");
}

/* ---- limits (schema 0004) ---------------------------------------------------- */

/* The one integer that st (bound) returns; -1 on error. */
static int64_t step_int(sg_sqlite *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        store_rc(s, rc, what);
        return -1;
    }
    return n;
}

static int64_t sq_sessions_open(sg_store *st_)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_OPEN_SESSIONS);
    return st ? step_int(s, st, "count open sessions") : -1;
}

static int64_t sq_sockets_count(sg_store *st_, const char *sid)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_SOCKETS_COUNT);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
    return step_int(s, st, "count sockets");
}

static int sq_rate_take(sg_store *st_, const char *address, int64_t rate, int64_t now)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_RATE_GET);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, address, -1, SQLITE_STATIC);
    double tokens = (double)rate; /* no row: a full bucket */
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int64_t at = sqlite3_column_int64(st, 1);
        tokens = sqlite3_column_double(st, 0);
        if (now > at) /* a clock stepped back refills nothing */
            tokens += (double)(now - at) * (double)rate / 1000.0;
        if (tokens > (double)rate)
            tokens = (double)rate;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        store_rc(s, rc, "read handshake rate");
        return -1;
    }
    if (tokens < 1.0)
        return 0; /* nothing written: a refused handshake costs no write */
    if (!(st = stmt(s, ST_RATE_PUT)))
        return -1;
    sqlite3_bind_text(st, 1, address, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 2, tokens - 1.0);
    sqlite3_bind_int64(st, 3, now);
    return exec_stmt(s, st, "write handshake rate") != 0 ? -1 : 1;
}

static int sq_rate_purge(sg_store *st_, int64_t before)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_RATE_PURGE);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, before);
    int rc = exec_stmt(s, st, "purge handshake rates");
    return rc < 0 ? rc : sqlite3_changes(s->db);
}

/* ---- connection state recovery (schema 0007) ------------------------------------- */

static int64_t sq_eid_next(sg_store *st_, int64_t now)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_EID_NEXT);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, now);
    int rc = sqlite3_step(st);
    int64_t eid = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW) {
        if (rc == SQLITE_DONE)
            sg_error("store %s: no 'eid' counter row", s->path);
        else
            store_rc(s, rc, "next event offset");
        return -1;
    }
    return eid;
}

static int64_t sq_queue_push_eid(sg_store *st_, const char *sid, bool binary, const void *frame,
                                size_t len, const char *nsp, int64_t eid)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_QUEUE_PUSH_EID);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, binary);
    sqlite3_bind_blob64(st, 3, len ? frame : "", len, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, nsp, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, eid);
    if (exec_stmt(s, st, "queue push (offset)") != 0)
        return -1;
    return sqlite3_last_insert_rowid(s->db);
}

static int sq_socket_set_pid(sg_store *st_, const char *id, const char *pid)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_SOCKET_PID);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, pid, -1, SQLITE_STATIC);
    return exec_stmt(s, st, "set socket pid");
}

static int sq_socket_ghost(sg_store *st_, const char *id, const char *sid, const char *nsp,
                          int64_t now, int64_t until)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_GHOST_INSERT);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, until);
    int rc = exec_stmt(s, st, "insert ghost session");
    if (rc != 0 || !(st = stmt(s, ST_GHOST_SOCKET)))
        return rc != 0 ? rc : -1;
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    if ((rc = exec_stmt(s, st, "ghost socket")) != 0 || !(st = stmt(s, ST_GHOST_QUEUE)))
        return rc != 0 ? rc : -1;
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, nsp, -1, SQLITE_STATIC);
    return exec_stmt(s, st, "ghost queue");
}

static int sq_socket_by_pid(sg_store *st_, const char *pid, char *id, char *sid, size_t sidcap,
                           char *nsp, size_t nspcap, int *state, int64_t *until)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_BY_PID);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, pid, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        copy_text(id, SG_ID_LEN + 1, sqlite3_column_text(st, 0));
        copy_text(sid, sidcap, sqlite3_column_text(st, 1));
        copy_text(nsp, nspcap, sqlite3_column_text(st, 2));
        *state = sqlite3_column_int(st, 3);
        *until = sqlite3_column_int64(st, 4);
    }
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? SG_STORE_NOTFOUND : store_rc(s, rc, "socket by pid");
}

static int sq_socket_restore(sg_store *st_, const char *id, const char *ghost, const char *sid,
                            const char *nsp, int64_t offset)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_RESTORE_SOCKET);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, sid, -1, SQLITE_STATIC);
    int rc = exec_stmt(s, st, "restore socket");
    if (rc != 0 || !(st = stmt(s, ST_RESTORE_QUEUE)))
        return rc != 0 ? rc : -1;
    sqlite3_bind_text(st, 1, ghost, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, sid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, nsp, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, offset);
    if ((rc = exec_stmt(s, st, "replay missed events")) != 0)
        return rc;
    int n = sqlite3_changes(s->db);
    if (!(st = stmt(s, ST_RESTORE_DROP)))
        return -1;
    sqlite3_bind_text(st, 1, ghost, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, nsp, -1, SQLITE_STATIC);
    if ((rc = exec_stmt(s, st, "drop replayed events")) != 0 || !(st = stmt(s, ST_GHOST_EMPTY)))
        return rc != 0 ? rc : -1;
    sqlite3_bind_text(st, 1, ghost, -1, SQLITE_STATIC);
    rc = exec_stmt(s, st, "drop empty ghost");
    return rc != 0 ? rc : n;
}

static int sq_queue_trim_kept(sg_store *st_, const char *sid, int64_t upto, int64_t keep_from)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    sqlite3_stmt *st = stmt(s, ST_QUEUE_TRIM_KEPT);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, upto);
    sqlite3_bind_int64(st, 3, keep_from);
    return exec_stmt(s, st, "queue trim (recovery)");
}

static int sq_ghosts_purge(sg_store *st_, int64_t now)
{
    sg_sqlite *s = (sg_sqlite *)st_;
    static const enum stmt_id order[] = {ST_GHOSTS_ROOMS, ST_GHOSTS_SOCKETS, ST_GHOSTS_QUEUE,
                                         ST_GHOSTS_SESSIONS};
    sqlite3_stmt *due = stmt(s, ST_GHOSTS_DUE);
    if (!due)
        return -1;
    sqlite3_bind_int64(due, 1, now);
    int64_t any = step_int(s, due, "ghosts due");
    if (any <= 0)
        return any < 0 ? -1 : 0; /* none (every sweep but a few): one index lookup */
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof order / sizeof order[0]; i++) {
        sqlite3_stmt *st = stmt(s, order[i]);
        if (!st)
            return -1;
        sqlite3_bind_int64(st, 1, now);
        rc = exec_stmt(s, st, stmt_sql[order[i]]);
    }
    return rc < 0 ? rc : sqlite3_changes(s->db);
}

static const sg_store_ops sqlite_ops = {
    .version = sq_version,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .batch_begin = sq_batch_begin,
    .batch_end = sq_batch_end,
    .session_insert = sq_session_insert,
    .session_get = sq_session_get,
    .session_update = sq_session_update,
    .session_update_hot = sq_session_update_hot,
    .session_handshake = sq_session_handshake,
    .session_close = sq_session_close,
    .sessions_expired = sq_sessions_expired,
    .changed_since = sq_changed_since,
    .sessions_purge = sq_sessions_purge,
    .queue_push_as = sq_queue_push_as,
    .queue_count = sq_queue_count,
    .queue_shed = sq_queue_shed,
    .queue_read = sq_queue_read,
    .queue_trim = sq_queue_trim,
    .queue_drop = sq_queue_drop,
    .queue_pending = sq_queue_pending,
    .bcast_push = sq_bcast_push,
    .targets_all = sq_targets_all,
    .targets_count = sq_targets_count,
    .bcast_max = sq_bcast_max,
    .stream_read = sq_stream_read,
    .stream_pending = sq_stream_pending,
    .bcast_settle = sq_bcast_settle,
    .bcast_sessions = sq_bcast_sessions,
    .bcast_gc = sq_bcast_gc,
    .socket_insert = sq_socket_insert,
    .socket_find = sq_socket_find,
    .socket_delete = sq_socket_delete,
    .sockets_of = sq_sockets_of,
    .room_join = sq_room_join,
    .room_leave = sq_room_leave,
    .targets = sq_targets,
    .socket_get = sq_socket_get,
    .socket_rooms = sq_socket_rooms,
    .socket_data_set = sq_socket_data_set,
    .ack_next = sq_ack_next,
    .ack_insert = sq_ack_insert,
    .ack_take = sq_ack_take,
    .acks_expired = sq_acks_expired,
    .reply_insert = sq_reply_insert,
    .replies_take = sq_replies_take,
    .acks_forget = sq_acks_forget,
    .scalar = sq_scalar,
    .sessions_open = sq_sessions_open,
    .sockets_count = sq_sockets_count,
    .rate_take = sq_rate_take,
    .rate_purge = sq_rate_purge,
    .eid_next = sq_eid_next,
    .queue_push_eid = sq_queue_push_eid,
    .socket_set_pid = sq_socket_set_pid,
    .socket_ghost = sq_socket_ghost,
    .socket_by_pid = sq_socket_by_pid,
    .socket_restore = sq_socket_restore,
    .queue_trim_kept = sq_queue_trim_kept,
    .ghosts_purge = sq_ghosts_purge,
    .close = sq_close,
};
