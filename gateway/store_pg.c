/* store_pg.c - the store on PostgreSQL (a libpq connection string as the
 * `db` value). See store.h and store_int.h: every op has the meaning of
 * the SQLite store's (store_sqlite.c), on the schema of schema/pg/.
 *
 * One sg_store is one connection. Statements are prepared once per
 * connection, on first use; frames and the partial buffer travel as
 * binary bytea, every other parameter as text, results in binary.
 *
 * Round trips are what a request pays (~37 us each on loopback, against
 * ~0.05 ms of server time for most statements here): BEGIN with the lock,
 * a batch part's SAVEPOINT and RELEASE, and the writes whose only result
 * is their success and that cannot fail on a healthy connection (write_p:
 * a session's update, a queue's trim, ...) are not sent when asked for
 * but in one pipeline (libpq's pipeline mode) with the next statement
 * that has a result, or with the COMMIT; a transaction or part in which
 * no statement ran sends nothing at all ("what a transaction owes",
 * below). Not on a borrowed connection, whose owner runs statements of
 * its own inside the transaction: there they are sent at once.
 *
 * SQLite's single writer, reproduced: a write transaction (sg_store_begin
 * outside a batch, sg_store_batch_begin) is BEGIN (READ COMMITTED) and
 * pg_advisory_xact_lock(SG_PG_LOCK), one constant key, so writers are
 * serialized and queue seq (a sequence, taken inside the lock) grows in
 * commit order, which sg_store_changed_since's mark relies on. The
 * operations that allocate a seq or an event offset take the lock in a
 * transaction of their own when they are called outside one. Inside a
 * batch, begin/commit/rollback are SAVEPOINT/RELEASE/ROLLBACK TO. Every
 * connection sets lock_timeout = 10s: a writer that waited longer gets
 * SG_STORE_BUSY (SQLSTATE 55P03; a deadlock, 40P01, too).
 *
 * Logs name the store by host, port and database only: a conninfo may
 * carry a password. */
#include "store_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pq.h"

#include "log.h"

extern const char *const sg_schema_pg_migrations[];

/* The advisory lock every writer takes (and the migrations): "SIOG". */
#define SG_PG_LOCK "1397313351"
#define LOCK_TIMEOUT_MS 10000

static const sg_store_ops pg_ops;

/* The commands a transaction owes the server, sent with its next statement. */
#define SQL_LOCK "SELECT pg_advisory_xact_lock(" SG_PG_LOCK ")"
static const char sql_begin[] = "BEGIN", sql_lock[] = SQL_LOCK,
                  sql_savepoint[] = "SAVEPOINT sg_tx", sql_release[] = "RELEASE sg_tx";

enum stmt_id {
    ST_SESSION_INSERT, ST_SESSION_GET, ST_SESSION_UPDATE, ST_SESSION_UPDATE_HOT,
    ST_SESSION_HANDSHAKE,
    ST_SESSION_CLOSE, ST_SESSION_EXPIRED, ST_SESSION_PURGE,
    ST_QUEUE_PUSH, ST_QUEUE_READ, ST_QUEUE_TRIM, ST_QUEUE_PENDING, ST_QUEUE_DROP,
    ST_SOCKET_INSERT, ST_SOCKET_FIND, ST_SOCKET_DELETE, ST_SOCKETS_OF, ST_ROOM_JOIN,
    ST_ROOM_LEAVE, ST_TARGETS, ST_SOCKET_GET, ST_SOCKET_ROOMS, ST_DATA_SET,
    ST_ACK_NEXT, ST_ACK_INSERT, ST_ACK_TAKE, ST_ACKS_EXPIRED,
    ST_REPLY_INSERT, ST_REPLIES_TAKE, ST_ACKS_FORGET,
    ST_QUEUE_MAX, ST_CHANGED,
    ST_OPEN_SESSIONS, ST_SOCKETS_COUNT, ST_RATE_GET, ST_RATE_PUT, ST_RATE_PURGE,
    ST_TARGETS_COUNT, ST_BCAST_PUSH, ST_STREAM_READ, ST_STREAM_PENDING, ST_BCAST_MAX,
    ST_FRONTIER, ST_BCAST_REQUEUE, ST_QUEUE_TRIM_RANGE, ST_BCAST_SEEN, ST_BCAST_SESSIONS,
    ST_BCAST_AMONG,
    ST_BCAST_GC, ST_QUEUE_COUNT, ST_QUEUE_SHED,
    ST_EID_NEXT, ST_QUEUE_PUSH_EID, ST_SOCKET_PID, ST_GHOST, ST_BY_PID, ST_RESTORE_SOCKET,
    ST_RESTORE_QUEUE, ST_RESTORE_DROP, ST_GHOST_EMPTY, ST_QUEUE_TRIM_KEPT, ST_GHOSTS_PURGE,
    ST_GHOSTS_DUE, ST_TARGETS_ALL,
    ST_COUNT
};

/* The sockets a target names ($1 nsp, $2 rooms as a JSON array or NULL
 * for the whole namespace, $3 rooms excepted as a JSON array, $4 a socket
 * id skipped or NULL); the caller adds the session states. TARGET_IDS and
 * TARGET_IDS_OWN as store_sqlite.c's: each room $2 names found by rooms'
 * primary key (= ANY of an array, which a generic plan keeps; the walk
 * before filtered the namespace through `$2 IS NULL OR ...`). */
#define TARGET_IDS \
    "SELECT r.socket_id AS id FROM rooms r WHERE r.nsp = $1::text" \
    " AND r.room = ANY (ARRAY(SELECT jsonb_array_elements_text($2::jsonb)))" \
    " UNION SELECT r.socket_id FROM rooms r WHERE $2::text IS NULL AND r.nsp = $1::text"
#define TARGET_IDS_OWN TARGET_IDS " AND r.room = r.socket_id"
#define TARGETS_FROM \
    " FROM (" TARGET_IDS ") t JOIN sockets s ON s.id = t.id JOIN sessions ss ON ss.sid = s.sid" \
    " WHERE ($4::text IS NULL OR s.id <> $4::text)" \
    " AND NOT EXISTS (SELECT 1 FROM rooms x WHERE x.nsp = $1::text AND x.socket_id = s.id" \
    "   AND x.room IN (SELECT jsonb_array_elements_text($3::jsonb)))"

/* How a broadcast log row q (sid '') names its sockets (store_sqlite.c
 * says it whole). LOG_EXCLUDES: socket s is not skipped by q. LOG_MATCH:
 * q names socket s through its membership r, for a walk of s's rooms. */
#define LOG_EXCLUDES \
    " (q.skip IS NULL OR s.id <> q.skip)" \
    " AND (q.except_rooms IS NULL OR NOT EXISTS (SELECT 1 FROM rooms x" \
    "   WHERE x.nsp = q.nsp AND x.socket_id = s.id" \
    "   AND x.room IN (SELECT jsonb_array_elements_text(q.except_rooms::jsonb))))"
#define LOG_MATCH \
    " r.nsp = q.nsp AND s.id = r.socket_id" \
    " AND (CASE WHEN q.rooms IS NULL THEN r.room = r.socket_id" \
    "      ELSE r.room IN (SELECT jsonb_array_elements_text(q.rooms::jsonb)) END)" \
    " AND" LOG_EXCLUDES

/* Session $1's stream: its own frames after $2 and the log rows after $3
 * its sockets match now (see store_sqlite.c's STREAM). */
#define STREAM \
    "SELECT seq, \"binary\", frame, volatile FROM queue WHERE sid = $1::text AND seq > $2::bigint" \
    " UNION ALL SELECT q.seq, q.\"binary\", q.frame, NULL::integer FROM queue q" \
    " WHERE q.sid = '' AND q.seq > $3::bigint AND EXISTS (SELECT 1 FROM sockets s JOIN rooms r" \
    "   ON r.socket_id = s.id WHERE s.sid = $1::text AND s.nsp = q.nsp AND" LOG_MATCH ")"

/* the sessions of recovery ghosts whose window ended before $1 */
#define GHOSTS_DUE_SIDS "(SELECT sid FROM sessions WHERE state = 2 AND expires_at < $1::bigint)"

static const char *const stmt_sql[ST_COUNT] = {
    /* with its handshake, apart from the hot columns: one round trip */
    [ST_SESSION_INSERT] =
        "WITH s AS (INSERT INTO sessions (sid, state, transport, created_at, next_ping_at,"
        " ping_sent, expires_at, connect_by, sent_upto, poller, partial, bcast_seen)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
        " (SELECT coalesce(max(seq), 0) FROM queue WHERE sid = '')))"
        " INSERT INTO handshakes (sid, handshake) VALUES ($1, $12)",
    [ST_SESSION_GET] =
        "SELECT state, transport, created_at, next_ping_at, ping_sent, expires_at,"
        " connect_by, sent_upto, poller, partial, close_reason, upgrading, bcast_seen"
        " FROM sessions WHERE sid = $1",
    [ST_SESSION_UPDATE] =
        "UPDATE sessions SET state = $2, transport = $3, next_ping_at = $4, ping_sent = $5,"
        " expires_at = $6, connect_by = $7, sent_upto = $8, poller = $9, partial = $10,"
        " upgrading = $11, bcast_seen = greatest(bcast_seen, $12::bigint) WHERE sid = $1",
    /* no indexed column, none a trigger reads: a HOT update, no new index entries */
    [ST_SESSION_UPDATE_HOT] =
        "UPDATE sessions SET transport = $2, next_ping_at = $3, ping_sent = $4,"
        " sent_upto = $5, poller = $6, partial = $7,"
        " bcast_seen = greatest(bcast_seen, $8::bigint) WHERE sid = $1",
    [ST_SESSION_HANDSHAKE] = "SELECT handshake FROM handshakes WHERE sid = $1",
    [ST_SESSION_CLOSE] =
        "UPDATE sessions SET state = 1, closed_at = $3, close_reason = $2, poller = NULL,"
        " partial = NULL WHERE sid = $1 AND state = 0",
    /* LIMIT over the union, as in SQLite */
    [ST_SESSION_EXPIRED] =
        "SELECT sid FROM sessions WHERE state = 0 AND expires_at < $1::bigint"
        " UNION SELECT sid FROM sessions"
        " WHERE state = 0 AND connect_by IS NOT NULL AND connect_by < $1::bigint LIMIT $2",
    /* the queues, ack replies and handshakes of the sessions closed before
     * $1, then the sessions (counted): one statement, one snapshot */
    [ST_SESSION_PURGE] =
        "WITH q AS (DELETE FROM queue WHERE sid IN"
        "   (SELECT sid FROM sessions WHERE state = 1 AND closed_at < $1::bigint)),"
        " a AS (DELETE FROM ack_replies WHERE at < $1::bigint),"
        " h AS (DELETE FROM handshakes WHERE sid IN"
        "   (SELECT sid FROM sessions WHERE state = 1 AND closed_at < $1::bigint))"
        " DELETE FROM sessions WHERE state = 1 AND closed_at < $1::bigint",
    [ST_QUEUE_PUSH] =
        "INSERT INTO queue (sid, \"binary\", frame, volatile) VALUES ($1, $2, $3, $4)"
        " RETURNING seq",
    /* up to the first frame that would pass $3 bytes (read_frames stops
     * before it, and so knows it stopped early): a long queue is not
     * sent whole for a response that takes a part of it */
    [ST_QUEUE_READ] =
        "SELECT seq, \"binary\", frame FROM (SELECT seq, \"binary\", frame,"
        " sum(octet_length(frame)) OVER (ORDER BY seq) - octet_length(frame) AS before"
        " FROM queue WHERE sid = $1 AND seq > $2) t WHERE before <= $3::bigint ORDER BY seq",
    [ST_QUEUE_TRIM] = "DELETE FROM queue WHERE sid = $1 AND seq <= $2",
    [ST_QUEUE_PENDING] = "SELECT 1 FROM queue WHERE sid = $1 AND seq > $2 LIMIT 1",
    [ST_QUEUE_DROP] = "DELETE FROM queue WHERE sid = $1",
    /* the socket and its own-id room */
    [ST_SOCKET_INSERT] =
        "WITH k AS (INSERT INTO sockets (id, sid, nsp, created_at) VALUES ($1, $2, $3, $4))"
        " INSERT INTO rooms (nsp, room, socket_id) VALUES ($3, $1, $1) ON CONFLICT DO NOTHING",
    [ST_SOCKET_FIND] = "SELECT id FROM sockets WHERE sid = $1 AND nsp = $2",
    [ST_SOCKET_DELETE] =
        "WITH r AS (DELETE FROM rooms WHERE socket_id = $1) DELETE FROM sockets WHERE id = $1",
    [ST_SOCKETS_OF] = "SELECT id, nsp FROM sockets WHERE sid = $1 ORDER BY created_at, id",
    [ST_ROOM_JOIN] =
        "INSERT INTO rooms (nsp, room, socket_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    [ST_ROOM_LEAVE] = "DELETE FROM rooms WHERE nsp = $1 AND room = $2 AND socket_id = $3",
    [ST_TARGETS] =
        "SELECT s.id, s.sid, (ss.transport = 'websocket' OR ss.poller IS NOT NULL),"
        " s.created_at" TARGETS_FROM " AND ss.state = 0 ORDER BY s.created_at, s.id",
    [ST_TARGETS_COUNT] =
        "SELECT count(*) FROM (" TARGET_IDS_OWN ") t WHERE ($4::text IS NULL OR t.id <> $4::text)"
        " AND NOT EXISTS (SELECT 1 FROM rooms x WHERE x.nsp = $1::text AND x.socket_id = t.id"
        "   AND x.room IN (SELECT jsonb_array_elements_text($3::jsonb)))",
    [ST_BCAST_PUSH] =
        "INSERT INTO queue (sid, \"binary\", frame, nsp, rooms, except_rooms, skip)"
        " VALUES ('', $1, $2, $3, $4, $5, $6) RETURNING seq",
    /* the frames (up to $4 bytes, as ST_QUEUE_READ), then a row (k = 1)
     * with the log's highest seq, read in the same snapshot */
    [ST_STREAM_READ] =
        "SELECT seq, \"binary\", frame, 0 AS k FROM (SELECT t.*,"
        " sum(octet_length(t.frame)) OVER (ORDER BY t.seq) - octet_length(t.frame) AS before"
        " FROM (" STREAM ") t) u WHERE before <= $4::bigint"
        " UNION ALL SELECT (SELECT coalesce(max(seq), 0) FROM queue WHERE sid = ''), 0, NULL, 1"
        " ORDER BY 4, 1",
    [ST_STREAM_PENDING] = "SELECT 1 FROM (" STREAM ") t LIMIT 1",
    [ST_BCAST_MAX] = "SELECT coalesce(max(seq), 0) FROM queue WHERE sid = ''",
    /* with the log's highest seq and the queue's: one round trip */
    [ST_FRONTIER] =
        "SELECT sent_upto, bcast_seen, (SELECT coalesce(max(seq), 0) FROM queue WHERE sid = ''),"
        " (SELECT coalesce(max(seq), 0) FROM queue) FROM sessions WHERE sid = $1",
    /* $4: the highest seq when it began; the copies come after it, in order */
    [ST_BCAST_REQUEUE] =
        "INSERT INTO queue (sid, \"binary\", frame, volatile)"
        " SELECT $1::text, \"binary\", frame, volatile"
        " FROM (" STREAM ") t WHERE seq <= $4::bigint ORDER BY seq",
    [ST_QUEUE_TRIM_RANGE] = "DELETE FROM queue WHERE sid = $1 AND seq > $2 AND seq <= $3",
    [ST_BCAST_SEEN] =
        "UPDATE sessions SET bcast_seen = greatest(bcast_seen, $2::bigint) WHERE sid = $1",
    /* as store_sqlite.c's: the rows naming rooms, each room found by
     * rooms' primary key (= ANY of an array: the planner misjudges a join
     * to the JSON's elements and scans rooms whole), then the
     * namespace-wide rows. Measured 2026-12-07 on a scratch database, a
     * row naming a room of 1,000 in a namespace of 21,000 sockets (43,000
     * memberships), EXPLAIN ANALYZE: 48-66 -> 3.2 ms (a LATERAL join to
     * the elements: 12.7-14.5 ms); with 3,000 memberships 6.0 -> 1.9 ms */
    [ST_BCAST_SESSIONS] =
        "SELECT s.sid FROM queue q JOIN rooms r ON r.nsp = q.nsp"
        " AND r.room = ANY (ARRAY(SELECT jsonb_array_elements_text(q.rooms::jsonb)))"
        " JOIN sockets s ON s.id = r.socket_id"
        " WHERE q.sid = '' AND q.seq > $1::bigint AND q.seq <= $2::bigint AND" LOG_EXCLUDES
        " UNION SELECT s.sid FROM queue q JOIN rooms r ON r.nsp = q.nsp AND r.room = r.socket_id"
        " JOIN sockets s ON s.id = r.socket_id WHERE q.sid = '' AND q.seq > $1::bigint"
        " AND q.seq <= $2::bigint AND q.rooms IS NULL AND" LOG_EXCLUDES,
    /* the same, asked about the sessions of the array $3 only (see
     * store_sqlite.c's ST_BCAST_AMONG) */
    [ST_BCAST_AMONG] =
        "SELECT DISTINCT s.sid FROM sockets s JOIN queue q ON q.sid = '' AND q.seq > $1::bigint"
        " AND q.seq <= $2::bigint AND q.nsp = s.nsp JOIN rooms r ON r.socket_id = s.id"
        " WHERE s.sid = ANY($3::text[]) AND" LOG_MATCH,
    [ST_BCAST_GC] =
        "DELETE FROM queue WHERE sid = '' AND seq <= least($1::bigint,"
        " (SELECT coalesce(min(greatest(sent_upto, bcast_seen)), $1::bigint)"
        "  FROM sessions WHERE state = 0))",
    [ST_EID_NEXT] =
        "UPDATE counters SET n = greatest(n + 1, $1::bigint * 1000) WHERE name = 'eid'"
        " RETURNING n",
    [ST_QUEUE_PUSH_EID] =
        "INSERT INTO queue (sid, \"binary\", frame, nsp, eid) VALUES ($1, $2, $3, $4, $5)"
        " RETURNING seq",
    [ST_SOCKET_PID] = "UPDATE sockets SET pid = $2 WHERE id = $1",
    /* the ghost session ('~' + $1, created or extended to $5), the socket
     * $2 and $1's event rows of nsp $3 moved into it */
    [ST_GHOST] =
        "WITH g AS (INSERT INTO sessions (sid, state, transport, created_at, next_ping_at,"
        "   expires_at) VALUES ('~' || $1::text, 2, 'ghost', $4, 0, $5)"
        "   ON CONFLICT (sid) DO UPDATE"
        "   SET expires_at = greatest(sessions.expires_at, excluded.expires_at)),"
        " k AS (UPDATE sockets SET sid = '~' || $1::text WHERE id = $2)"
        " UPDATE queue SET sid = '~' || $1::text"
        " WHERE sid = $1::text AND nsp = $3 AND eid IS NOT NULL",
    [ST_BY_PID] =
        "SELECT s.id, s.sid, s.nsp, ss.state, ss.expires_at FROM sockets s"
        " JOIN sessions ss ON ss.sid = s.sid WHERE s.pid = $1",
    [ST_RESTORE_SOCKET] = "UPDATE sockets SET sid = $2 WHERE id = $1",
    /* $1 ghost, $2 the new session, $3 nsp, $4 the client's offset */
    [ST_RESTORE_QUEUE] =
        "INSERT INTO queue (sid, \"binary\", frame, nsp, eid)"
        " SELECT $2::text, \"binary\", frame, nsp, eid"
        " FROM queue WHERE sid = $1::text AND nsp = $3 AND eid > $4 ORDER BY seq",
    [ST_RESTORE_DROP] = "DELETE FROM queue WHERE sid = $1 AND nsp = $2",
    [ST_GHOST_EMPTY] =
        "DELETE FROM sessions WHERE sid = $1::text AND state = 2"
        " AND NOT EXISTS (SELECT 1 FROM sockets WHERE sid = $1::text)",
    [ST_QUEUE_TRIM_KEPT] =
        "DELETE FROM queue WHERE sid = $1 AND seq <= $2 AND (eid IS NULL OR eid < $3)",
    /* the ghosts due, with their rooms, sockets and rows (counted) */
    [ST_GHOSTS_PURGE] =
        "WITH r AS (DELETE FROM rooms WHERE socket_id IN (SELECT id FROM sockets WHERE sid IN"
        "   " GHOSTS_DUE_SIDS ")),"
        " k AS (DELETE FROM sockets WHERE sid IN " GHOSTS_DUE_SIDS "),"
        " q AS (DELETE FROM queue WHERE sid IN " GHOSTS_DUE_SIDS ")"
        " DELETE FROM sessions WHERE state = 2 AND expires_at < $1::bigint",
    /* one lookup of the index sessions_expiry (state, expires_at) */
    [ST_GHOSTS_DUE] = "SELECT 1 FROM sessions WHERE state = 2 AND expires_at < $1 LIMIT 1",
    /* ST_TARGETS with the ghosts' sockets too (never ready) */
    [ST_TARGETS_ALL] =
        "SELECT s.id, s.sid, ss.state = 0 AND"
        " (ss.transport = 'websocket' OR ss.poller IS NOT NULL), s.created_at"
        TARGETS_FROM " AND ss.state IN (0, 2) ORDER BY s.created_at, s.id",
    /* a recovery ghost's socket (sid '~' + ...) is not connected: not found */
    [ST_SOCKET_GET] =
        "SELECT sid, nsp, data FROM sockets WHERE id = $1 AND substr(sid, 1, 1) <> '~'",
    [ST_SOCKET_ROOMS] =
        "SELECT room FROM rooms WHERE socket_id = $1 ORDER BY room = socket_id DESC, room",
    [ST_DATA_SET] = "UPDATE sockets SET data = $2 WHERE id = $1",
    [ST_ACK_NEXT] =
        "UPDATE sockets SET next_ack = next_ack + 1 WHERE id = $1 RETURNING next_ack - 1",
    [ST_ACK_INSERT] =
        "INSERT INTO acks (socket_id, id, sid, nsp, name, deadline, data)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
    [ST_ACK_TAKE] =
        "DELETE FROM acks WHERE socket_id = $1 AND id = $2 RETURNING sid, nsp, name, data",
    [ST_ACKS_EXPIRED] =
        "SELECT socket_id, id FROM acks WHERE deadline < $1 ORDER BY deadline LIMIT $2",
    [ST_REPLY_INSERT] =
        "INSERT INTO ack_replies (name, socket_id, args, at) VALUES ($1, $2, $3, $4)",
    [ST_REPLIES_TAKE] =
        "WITH d AS (DELETE FROM ack_replies WHERE name = $1 RETURNING id, socket_id, args)"
        " SELECT socket_id, args FROM d ORDER BY id",
    [ST_ACKS_FORGET] =
        "WITH a AS (DELETE FROM acks WHERE name = $1::text)"
        " DELETE FROM ack_replies WHERE at < 0 OR name = $1::text",
    [ST_QUEUE_MAX] = "SELECT max(seq) FROM queue",
    /* a range of the queue's primary key, and the partial index
     * sessions_upgrading */
    [ST_CHANGED] =
        "SELECT sid FROM queue WHERE seq > $1"
        " UNION SELECT sid FROM sessions WHERE upgrading <> 0 AND state = 0",
    [ST_OPEN_SESSIONS] = "SELECT n FROM counters WHERE name = 'open_sessions'",
    [ST_SOCKETS_COUNT] = "SELECT count(*) FROM sockets WHERE sid = $1",
    [ST_RATE_GET] = "SELECT tokens, at FROM handshake_rate WHERE address = $1",
    [ST_RATE_PUT] =
        "INSERT INTO handshake_rate (address, tokens, at) VALUES ($1, $2, $3)"
        " ON CONFLICT (address) DO UPDATE SET tokens = excluded.tokens, at = excluded.at",
    [ST_RATE_PURGE] = "DELETE FROM handshake_rate WHERE at <= $1",
    /* $3 NULL: no LIMIT */
    [ST_QUEUE_COUNT] =
        "SELECT count(*) FROM (SELECT 1 FROM queue WHERE sid = $1 AND seq > $2 LIMIT $3) t",
    /* whole packets only: see store_sqlite.c's ST_QUEUE_SHED */
    [ST_QUEUE_SHED] =
        "DELETE FROM queue WHERE sid = $1::text AND volatile = 1 AND seq >= (SELECT seq"
        " FROM queue WHERE sid = $1::text AND seq > $2 AND \"binary\" = 0 ORDER BY seq LIMIT 1)",
};

typedef struct sg_pg {
    sg_store base;         /* first: the interface (store_int.h) */
    PGconn *conn;
    char *name;            /* for logs: postgresql://host:port/dbname, no password */
    bool prepared[ST_COUNT];
    int version;
    bool batch;            /* a batch transaction is open: begin/commit are savepoints */
    bool sp_open;          /* a savepoint of the batch is open (or owed) */
    bool sp_made;          /* ... and the server has it */
    bool in_tx;            /* a transaction is open (or owed: tx_owed) */
    bool tx_owed;          /* ... and its BEGIN is still in owe[] */
    int sp_at;             /* owe[] index of the open part's SAVEPOINT, or -1 */
    struct owed *owe;      /* commands owed, in order (owe_*) */
    size_t nowe, owe_cap;
    bool defer;            /* owe them (else send them at once: borrowed) */
    bool borrowed;         /* conn is the caller's (sg_store_pg_borrow) */
} sg_pg;

/* ---- parameters and results ---------------------------------------------- */

#define MAXP 12

/* The parameters of one statement: text, except bytea (binary). */
typedef struct pgp {
    int n;
    const char *v[MAXP];
    int len[MAXP];
    int fmt[MAXP];
    char num[MAXP][32];
    bool bad;              /* a value did not fit (a frame over 2 GB) */
} pgp;

static void p_text(pgp *p, const char *t)
{
    p->v[p->n] = t;
    p->len[p->n] = 0;
    p->fmt[p->n] = 0;
    p->n++;
}

/* NULL for NULL or "" (as store_sqlite.c's bind_text_or_null) */
static void p_text_or_null(pgp *p, const char *t) { p_text(p, t && *t ? t : NULL); }
static void p_null(pgp *p) { p_text(p, NULL); }

static void p_i64(pgp *p, int64_t x)
{
    snprintf(p->num[p->n], sizeof p->num[p->n], "%lld", (long long)x);
    p_text(p, p->num[p->n]);
}

static void p_i64_or_null(pgp *p, int64_t x)
{
    if (x)
        p_i64(p, x);
    else
        p_null(p);
}

static void p_size(pgp *p, size_t x) { p_i64(p, x > INT64_MAX ? INT64_MAX : (int64_t)x); }

static void p_double(pgp *p, double x)
{
    snprintf(p->num[p->n], sizeof p->num[p->n], "%.17g", x);
    p_text(p, p->num[p->n]);
}

static void p_bytes(pgp *p, const void *data, size_t len)
{
    if (len > INT_MAX)
        p->bad = true;
    p->v[p->n] = len ? data : "";
    p->len[p->n] = len > INT_MAX ? 0 : (int)len;
    p->fmt[p->n] = 1;
    p->n++;
}

/* NULL when empty (as bind_partial) */
static void p_partial(pgp *p, const sg_buf *b)
{
    if (b->len)
        p_bytes(p, b->data, b->len);
    else
        p_null(p);
}

/* An integer column (int2/int4/int8/bool, binary or text), 0 when NULL
 * (as sqlite3_column_int64). */
static int64_t col_i64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
    int len = PQgetlength(r, row, col);
    if (PQfformat(r, col) == 0)
        return strtoll((const char *)p, NULL, 10);
    uint64_t v = 0;
    for (int i = 0; i < len && i < 8; i++)
        v = v << 8 | p[i];
    switch (len) {
    case 1: return (int64_t)p[0];
    case 2: return (int16_t)(uint16_t)v;
    case 4: return (int32_t)(uint32_t)v;
    default: return (int64_t)v;
    }
}

static double col_double(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0.0;
    if (PQfformat(r, col) == 0)
        return strtod(PQgetvalue(r, row, col), NULL);
    const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
    if (PQgetlength(r, row, col) != 8)
        return 0.0;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    double d;
    memcpy(&d, &v, sizeof d);
    return d;
}

/* A text column: libpq ends every value with a NUL, binary ones too, and
 * text holds none; "" when NULL. */
static const char *col_text(const PGresult *r, int row, int col)
{
    return PQgetvalue(r, row, col);
}

static void copy_text(char *dst, size_t cap, const PGresult *r, int row, int col)
{
    sg_copy(dst, cap, col_text(r, row, col));
}

/* ---- errors, statements, transactions ------------------------------------ */

/* The redacted name of conninfo for logs (new string, NULL when out of
 * memory): host, port and database, never the password. */
static char *redacted_name(const char *conninfo)
{
    const char *host = NULL, *port = NULL, *dbname = NULL;
    char *err = NULL;
    PQconninfoOption *opts = sg_pq_load() == 0 ? PQconninfoParse(conninfo, &err) : NULL;
    char *out = NULL;
    sg_buf b = SG_BUF_INIT;
    if (!opts) {
        if (err)
            PQfreemem(err);
        out = strdup("postgresql (unparsable connection string)");
        goto done;
    }
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !*o->val)
            continue;
        if (!strcmp(o->keyword, "host") || (!host && !strcmp(o->keyword, "hostaddr")))
            host = o->val;
        else if (!strcmp(o->keyword, "port"))
            port = o->val;
        else if (!strcmp(o->keyword, "dbname"))
            dbname = o->val;
    }
    if (sg_buf_printf(&b, "postgresql://%s%s%s/%s", host ? host : "", port ? ":" : "",
                      port ? port : "", dbname ? dbname : "") == 0)
        out = sg_buf_steal(&b);
    PQconninfoFree(opts);
done:
    sg_buf_free(&b);
    return out;
}

/* Log a failure of `what` (r may be NULL: the connection's error) and
 * return the store's result code for it. */
static int pg_fail(sg_pg *s, const PGresult *r, const char *what)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state && (!strcmp(state, "55P03") || !strcmp(state, "40P01"))) {
        sg_error("store %s: %s: database locked past lock_timeout (%d ms)", s->name, what,
                 LOCK_TIMEOUT_MS);
        return SG_STORE_BUSY;
    }
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg)
        msg = r && *PQresultErrorMessage(r) ? PQresultErrorMessage(r) : PQerrorMessage(s->conn);
    int n = (int)strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        n--;
    sg_error("store %s: %s: %.*s", s->name, what, n, msg);
    return -1;
}

static void notice(void *ud, const char *msg)
{
    sg_pg *s = ud;
    int n = (int)strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        n--;
    sg_debug("store %s: %.*s", s->name, n, msg);
}

/* Run a constant command (no parameters, e.g. "COMMIT"). 0, or the
 * result code (logged). tag: the command tag it must end with, or NULL. */
static int command(sg_pg *s, const char *sql, const char *tag)
{
    PGresult *r = PQexec(s->conn, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = pg_fail(s, r, sql);
    else if (tag && strcmp(PQcmdStatus(r), tag) != 0) {
        /* COMMIT of a transaction an error aborted answers ROLLBACK */
        sg_error("store %s: %s: the transaction was rolled back", s->name, sql);
        rc = -1;
    }
    PQclear(r);
    return rc;
}

/* A lost connection comes back between transactions (PostgreSQL
 * restarted): its prepared statements and settings are gone. */
static void reconnect_if_lost(sg_pg *s)
{
    if (PQstatus(s->conn) != CONNECTION_BAD || (s->in_tx && !s->tx_owed))
        return;
    PQreset(s->conn);
    if (PQstatus(s->conn) != CONNECTION_OK)
        return; /* the statement fails and says why */
    memset(s->prepared, 0, sizeof s->prepared);
    sg_warn("store %s: connection lost: reconnected", s->name);
    if (!s->borrowed)
        command(s, "SET lock_timeout = '10s'", NULL);
}

static const char *stmt_name(enum stmt_id id, char buf[16])
{
    snprintf(buf, 16, "sgs_%d", (int)id);
    return buf;
}

/* Prepare statement id on this connection, once. 0 or the result code. */
static int prepare(sg_pg *s, enum stmt_id id)
{
    char name[16];
    if (s->prepared[id])
        return 0;
    PGresult *r = PQprepare(s->conn, stmt_name(id, name), stmt_sql[id], 0, NULL);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = pg_fail(s, r, stmt_sql[id]);
    else
        s->prepared[id] = true;
    PQclear(r);
    return rc;
}

/* ---- what a transaction owes ---------------------------------------------
 *
 * Nothing a transaction asks for is sent before it must be: BEGIN with
 * the writers' lock, a batch part's SAVEPOINT and RELEASE, and the writes
 * whose only result is their success (write_p) are appended to owe[] and
 * go out in one pipeline with the next statement that has a result, or
 * with the COMMIT: one round trip for all of them. A write owed this way
 * that fails is told by the statement or the COMMIT it went out with: a
 * later part's, or the batch's, which then fails (siogate-fcgi answers
 * every request of the batch as failed). So only writes that cannot fail
 * on a healthy connection holding the writers' lock are owed: keyed
 * UPDATEs and DELETEs, and the queue's INSERT (no constraint but NOT
 * NULL), whose text parameters are identifiers the gateway made (never a
 * room name or a plugin's JSON, which PostgreSQL could refuse as text). */

/* One owed command: a constant one (sql), or prepared statement id with
 * a copy of its parameters (data: the values, one after the other). */
struct owed {
    const char *sql;
    enum stmt_id id;
    const char *what;
    int n;
    char *data;
    int off[MAXP];         /* offset of value i in data, -1 for NULL */
    int len[MAXP], fmt[MAXP];
};

/* Forget the owed commands from index `from` on. */
static void owe_drop(sg_pg *s, size_t from)
{
    for (size_t i = from; i < s->nowe; i++)
        free(s->owe[i].data);
    if (from < s->nowe)
        s->nowe = from;
}

static struct owed *owe_slot(sg_pg *s)
{
    if (s->nowe == s->owe_cap) {
        size_t cap = s->owe_cap ? 2 * s->owe_cap : 16;
        struct owed *o = realloc(s->owe, cap * sizeof *o);
        if (!o) {
            sg_error("store %s: out of memory", s->name);
            return NULL;
        }
        s->owe = o;
        s->owe_cap = cap;
    }
    struct owed *o = &s->owe[s->nowe];
    memset(o, 0, sizeof *o);
    return o;
}

static int owe_sql(sg_pg *s, const char *sql)
{
    struct owed *o = owe_slot(s);
    if (!o)
        return -1;
    o->sql = o->what = sql;
    s->nowe++;
    return 0;
}

/* Owe statement id with a copy of p. 0 or the result code. */
static int owe_stmt(sg_pg *s, enum stmt_id id, const pgp *p, const char *what)
{
    int rc = prepare(s, id);
    if (rc != 0)
        return rc;
    struct owed *o = owe_slot(s);
    if (!o)
        return -1;
    size_t total = 0;
    for (int i = 0; i < p->n; i++)
        if (p->v[i])
            total += p->fmt[i] ? (size_t)p->len[i] : strlen(p->v[i]) + 1;
    if (total > INT_MAX || !(o->data = malloc(total ? total : 1))) {
        sg_error("store %s: %s: out of memory", s->name, what);
        return -1;
    }
    o->id = id;
    o->what = what;
    o->n = p->n;
    size_t at = 0;
    for (int i = 0; i < p->n; i++) {
        o->fmt[i] = p->fmt[i];
        o->len[i] = p->len[i];
        o->off[i] = -1;
        if (!p->v[i])
            continue;
        size_t len = p->fmt[i] ? (size_t)p->len[i] : strlen(p->v[i]) + 1;
        memcpy(o->data + at, p->v[i], len);
        o->off[i] = (int)at;
        at += len;
    }
    s->nowe++;
    return 0;
}

static bool owe_has_stmt(const sg_pg *s)
{
    for (size_t i = 0; i < s->nowe; i++)
        if (!s->owe[i].sql)
            return true;
    return false;
}

/* Send the owed commands, then prepared statement `name` with p, or the
 * constant command final_sql, or nothing more (both NULL), in one pipeline:
 * one round trip. Returns the result of the last command sent (the caller
 * clears it), or NULL with *rc the result code of the first that failed
 * (logged; a failed BEGIN or lock leaves the transaction for the caller's
 * rollback, as a failed statement does); NULL with *rc 0 when nothing
 * was sent. owe[] is empty after. */
static PGresult *pipeline(sg_pg *s, const char *name, const pgp *p, const char *final_sql,
                          const char *what, int *rc)
{
    PGresult *out = NULL, *r;
    const char *failed = NULL;
    size_t sent = 0, n = s->nowe + (name || final_sql ? 1 : 0);
    int sp_at = s->sp_at;
    *rc = 0;
    if (!n)
        return NULL;
    *rc = -1;
    s->tx_owed = false;
    s->sp_at = -1;
    if (!PQenterPipelineMode(s->conn)) {
        owe_drop(s, 0);
        pg_fail(s, NULL, "pipeline");
        return NULL;
    }
    bool ok = true;
    for (size_t i = 0; ok && i < s->nowe; i++) {
        const struct owed *o = &s->owe[i];
        if (o->sql) {
            ok = PQsendQueryParams(s->conn, o->sql, 0, NULL, NULL, NULL, NULL, 1);
        } else {
            const char *v[MAXP];
            char sname[16];
            for (int k = 0; k < o->n; k++)
                v[k] = o->off[k] < 0 ? NULL : o->data + o->off[k];
            ok = PQsendQueryPrepared(s->conn, stmt_name(o->id, sname), o->n, v, o->len, o->fmt, 1);
        }
        sent += ok;
    }
    if (ok && name)
        ok = PQsendQueryPrepared(s->conn, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                                 p ? p->fmt : NULL, 1);
    else if (ok && final_sql)
        ok = PQsendQueryParams(s->conn, final_sql, 0, NULL, NULL, NULL, NULL, 1);
    ok = ok && PQpipelineSync(s->conn);
    if (!ok) {
        /* the connection failed: nothing more comes */
        *rc = pg_fail(s, NULL, what);
        PQexitPipelineMode(s->conn);
        owe_drop(s, 0);
        return NULL;
    }
    /* each query's result, then NULL; then the sync's */
    for (size_t q = 0; q < n; q++) {
        const char *qwhat = q < s->nowe ? s->owe[q].what : what;
        r = PQgetResult(s->conn);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            if (q == n - 1 && q >= s->nowe)
                out = r, r = NULL;
            else if (sp_at >= 0 && q == (size_t)sp_at)
                s->sp_made = true;
        } else if (st != PGRES_PIPELINE_ABORTED && !failed) {
            failed = qwhat;
            *rc = pg_fail(s, r, failed);
        }
        PQclear(r);
        while ((r = PQgetResult(s->conn)) != NULL)
            PQclear(r);
    }
    while ((r = PQgetResult(s->conn)) != NULL && PQresultStatus(r) != PGRES_PIPELINE_SYNC)
        PQclear(r);
    PQclear(r);
    PQexitPipelineMode(s->conn);
    bool want_out = name || final_sql;
    owe_drop(s, 0);
    if (failed || (want_out && !out)) {
        if (!failed)
            *rc = pg_fail(s, NULL, what);
        PQclear(out);
        return NULL;
    }
    *rc = 0;
    return out;
}

/* Send what is owed now, alone (before a statement that is not one of
 * ours: sg_store_scalar; or at once, on a borrowed connection). 0 or the
 * result code. */
static int flush_owed(sg_pg *s)
{
    int rc;
    PGresult *r = pipeline(s, NULL, NULL, NULL, "owed commands", &rc);
    PQclear(r);
    return rc;
}

/* Run statement id with the parameters p (after what is owed); results
 * in binary. The result (the caller clears it) or NULL with *rc the
 * result code (logged). */
static PGresult *run(sg_pg *s, enum stmt_id id, const pgp *p, const char *what, int *rc)
{
    char name[16];
    *rc = -1;
    if (p && p->bad) {
        sg_error("store %s: %s: a value over 2 GB", s->name, what);
        return NULL;
    }
    reconnect_if_lost(s);
    if ((*rc = prepare(s, id)) != 0)
        return NULL;
    PGresult *r = pipeline(s, stmt_name(id, name), p, NULL, what, rc);
    return *rc == 0 ? r : NULL;
}

/* A statement whose result is only its success: 0 or the result code. */
static int exec_p(sg_pg *s, enum stmt_id id, const pgp *p, const char *what)
{
    int rc;
    PGresult *r = run(s, id, p, what, &rc);
    PQclear(r);
    return rc;
}

/* A write that cannot fail on a healthy connection holding the lock (see
 * "what a transaction owes"): inside a transaction of our own it is owed,
 * and 0 returned; else run as exec_p. */
static int write_p(sg_pg *s, enum stmt_id id, const pgp *p, const char *what)
{
    if (!s->defer || !s->in_tx || p->bad)
        return exec_p(s, id, p, what);
    return owe_stmt(s, id, p, what);
}

/* The number of rows a statement changed, or the result code (< 0). */
static int changes_p(sg_pg *s, enum stmt_id id, const pgp *p, const char *what)
{
    int rc;
    PGresult *r = run(s, id, p, what, &rc);
    if (!r)
        return rc;
    int n = atoi(PQcmdTuples(r));
    PQclear(r);
    return n;
}

/* The integer in row 0, column 0 (0 when NULL), none_value when there is
 * no row; -1 on error. */
static int64_t int_p(sg_pg *s, enum stmt_id id, const pgp *p, int64_t none_value,
                     const char *what)
{
    int rc;
    PGresult *r = run(s, id, p, what, &rc);
    if (!r)
        return -1;
    int64_t v = PQntuples(r) > 0 ? col_i64(r, 0, 0) : none_value;
    PQclear(r);
    return v;
}

static int pg_rollback_tx(sg_pg *s)
{
    bool sent = !s->tx_owed;
    s->in_tx = s->tx_owed = false;
    owe_drop(s, 0);
    s->sp_at = -1;
    s->sp_made = false;
    if (sent && PQtransactionStatus(s->conn) != PQTRANS_IDLE &&
        PQtransactionStatus(s->conn) != PQTRANS_UNKNOWN)
        return command(s, "ROLLBACK", NULL);
    return 0;
}

/* BEGIN and the writers' lock: owed, sent with the next statement. */
static int pg_begin_tx(sg_pg *s)
{
    if (s->in_tx)
        return -1;
    reconnect_if_lost(s);
    owe_drop(s, 0);
    s->sp_at = -1;
    if (owe_sql(s, sql_begin) != 0 || owe_sql(s, sql_lock) != 0) {
        owe_drop(s, 0);
        return -1;
    }
    s->in_tx = s->tx_owed = true;
    if (s->defer)
        return 0;
    int rc = flush_owed(s);
    if (rc != 0)
        pg_rollback_tx(s);
    return rc;
}

/* The same, now (migrations). */
static int pg_begin_now(sg_pg *s)
{
    int rc = command(s, "BEGIN; " SQL_LOCK, NULL);
    if (rc != 0)
        command(s, "ROLLBACK", NULL);
    return rc;
}

/* COMMIT, with what is owed (a last RELEASE left out: COMMIT releases
 * every savepoint); nothing when no statement ran. */
static int pg_commit_tx(sg_pg *s)
{
    if (s->tx_owed && !owe_has_stmt(s)) {
        owe_drop(s, 0); /* no statement ran: nothing to commit */
        s->in_tx = s->tx_owed = false;
        return 0;
    }
    if (s->nowe && s->owe[s->nowe - 1].sql == sql_release)
        owe_drop(s, s->nowe - 1);
    int rc;
    PGresult *r = pipeline(s, NULL, NULL, "COMMIT", "COMMIT", &rc);
    if (rc == 0 && strcmp(PQcmdStatus(r), "COMMIT") != 0) {
        /* COMMIT of a transaction an error aborted answers ROLLBACK */
        sg_error("store %s: COMMIT: the transaction was rolled back", s->name);
        rc = -1;
    }
    PQclear(r);
    s->in_tx = false;
    if (rc != 0)
        pg_rollback_tx(s);
    return rc;
}

static int pg_version(sg_store *st_) { return ((sg_pg *)st_)->version; }

static void pg_rollback(sg_store *st_);

static int pg_begin(sg_store *st_)
{
    sg_pg *s = (sg_pg *)st_;
    if (!s->batch)
        return pg_begin_tx(s);
    if (s->sp_open || owe_sql(s, sql_savepoint) != 0)
        return -1;
    s->sp_at = (int)s->nowe - 1;
    s->sp_made = false;
    s->sp_open = true;
    int rc = s->defer ? 0 : flush_owed(s);
    if (rc != 0)
        s->sp_open = false;
    return rc;
}

static int pg_commit(sg_store *st_)
{
    sg_pg *s = (sg_pg *)st_;
    if (s->batch) {
        if (!s->sp_open)
            return -1;
        s->sp_open = false;
        int rc = 0;
        if (s->sp_at >= 0 && (size_t)s->sp_at == s->nowe - 1)
            owe_drop(s, (size_t)s->sp_at); /* no statement ran in it */
        else if (s->sp_at >= 0 || s->sp_made)
            rc = owe_sql(s, sql_release);
        else
            rc = -1; /* it never began (the batch's BEGIN failed) */
        s->sp_at = -1;
        s->sp_made = false;
        return rc != 0 ? rc : s->defer ? 0 : flush_owed(s);
    }
    return pg_commit_tx(s);
}

static void pg_rollback(sg_store *st_)
{
    sg_pg *s = (sg_pg *)st_;
    if (s->batch) {
        if (!s->sp_open)
            return;
        s->sp_open = false;
        if (s->sp_at >= 0) {
            owe_drop(s, (size_t)s->sp_at); /* not sent: neither it nor what it did */
        } else if (s->sp_made) {
            owe_drop(s, 0); /* what is owed came after the SAVEPOINT */
            command(s, "ROLLBACK TO sg_tx; RELEASE sg_tx", NULL);
        }
        /* else it never began: the batch's BEGIN failed, and so will its end */
        s->sp_at = -1;
        s->sp_made = false;
        return;
    }
    pg_rollback_tx(s);
}

static int pg_batch_begin(sg_store *st_)
{
    sg_pg *s = (sg_pg *)st_;
    if (s->batch)
        return -1;
    int rc = pg_begin_tx(s);
    s->batch = rc == 0;
    return rc;
}

static int pg_batch_end(sg_store *st_)
{
    sg_pg *s = (sg_pg *)st_;
    if (!s->batch)
        return -1;
    if (s->sp_open)
        pg_rollback(&s->base);
    s->batch = false;
    return pg_commit_tx(s);
}

/* An operation that allocates a queue seq or an event offset takes the
 * writers' lock: in its own transaction when none is open (*own set). */
static int autotx_begin(sg_pg *s, bool *own)
{
    *own = !s->in_tx;
    return *own ? pg_begin_tx(s) : 0;
}

static int autotx_end(sg_pg *s, bool own, int rc)
{
    if (!own)
        return rc;
    if (rc < 0) {
        pg_rollback_tx(s);
        return rc;
    }
    int crc = pg_commit_tx(s);
    return crc != 0 ? crc : rc;
}

/* ---- open, migrate, close ------------------------------------------------ */

int sg_store_pg_latest_version(void)
{
    int n = 0;
    while (sg_schema_pg_migrations[n])
        n++;
    return n;
}

/* The version in schema_version: 0 when there is no such table yet, -1
 * on error. */
static int read_version(sg_pg *s)
{
    PGresult *r = PQexec(s->conn, "SELECT coalesce(max(version), 0) FROM schema_version");
    int v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        v = (int)col_i64(r, 0, 0);
    else if (PQresultStatus(r) == PGRES_FATAL_ERROR && PQresultErrorField(r, PG_DIAG_SQLSTATE) &&
             !strcmp(PQresultErrorField(r, PG_DIAG_SQLSTATE), "42P01"))
        v = 0; /* undefined_table: a new database */
    else
        pg_fail(s, r, "read schema_version");
    PQclear(r);
    return v;
}

/* Apply the migrations above schema_version, all in one transaction that
 * holds the writers' lock: of two processes that start at once, the
 * second finds the work done. */
static int migrate(sg_pg *s)
{
    int latest = sg_store_pg_latest_version();
    /* up to date (every open but the first): no lock taken */
    int v = read_version(s);
    if (v == latest) {
        s->version = latest;
        return 0;
    }
    if (v < 0)
        return -1;
    if (pg_begin_now(s) != 0)
        return -1;
    if (command(s, "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)",
                NULL) != 0)
        goto fail;
    if ((v = read_version(s)) < 0)
        goto fail;
    if (v > latest) {
        sg_error("store %s: schema version %d is newer than this program's (%d)", s->name, v,
                 latest);
        goto fail;
    }
    for (int k = v; k < latest; k++) {
        if (command(s, sg_schema_pg_migrations[k], NULL) != 0)
            goto fail;
        char num[16];
        snprintf(num, sizeof num, "%d", k + 1);
        const char *vals[1] = {num};
        PGresult *r = PQexecParams(s->conn,
                                   "WITH d AS (DELETE FROM schema_version)"
                                   " INSERT INTO schema_version (version) VALUES ($1)",
                                   1, NULL, vals, NULL, NULL, 0);
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            pg_fail(s, r, "write schema_version");
        PQclear(r);
        if (!ok)
            goto fail;
        sg_info("store %s: applied migration pg/%04d", s->name, k + 1);
    }
    if (command(s, "COMMIT", "COMMIT") != 0) {
        command(s, "ROLLBACK", NULL);
        return -1;
    }
    s->version = latest;
    return 0;
fail:
    sg_error("store %s: migration failed", s->name);
    command(s, "ROLLBACK", NULL);
    return -1;
}

static void pg_close(sg_store *st_)
{
    sg_pg *s = (sg_pg *)st_;
    if (!s)
        return;
    if (!s->borrowed)
        PQfinish(s->conn);
    owe_drop(s, 0);
    free(s->owe);
    free(s->name);
    free(s);
}

static sg_pg *pg_new(const char *conninfo)
{
    sg_pg *s = calloc(1, sizeof *s);
    if (!s || !(s->name = redacted_name(conninfo))) {
        free(s);
        sg_error("store postgresql: out of memory");
        return NULL;
    }
    s->base.ops = &pg_ops;
    s->sp_at = -1;
    return s;
}

/* Ownership: conninfo is borrowed (not kept); the store returned is the
 * caller's, freed by sg_store_close (which closes the connection). */
sg_store *sg_store_pg_open(const char *conninfo)
{
    sg_pg *s = pg_new(conninfo);
    if (!s)
        return NULL;
    s->conn = sg_pq_load() == 0 ? PQconnectdb(conninfo) : NULL;
    if (!s->conn || PQstatus(s->conn) != CONNECTION_OK) {
        const char *msg = s->conn         ? PQerrorMessage(s->conn)
                          : *sg_pq_error() ? sg_pq_error()
                                           : "out of memory";
        int n = (int)strlen(msg);
        while (n > 0 && msg[n - 1] == '\n')
            n--;
        sg_error("store %s: cannot connect: %.*s", s->name, n, msg);
        goto fail;
    }
    PQsetNoticeProcessor(s->conn, notice, s);
    s->defer = true; /* the connection is this store's alone */
    if (command(s, "SET lock_timeout = '10s'", NULL) != 0)
        goto fail;
    if (migrate(s) < 0)
        goto fail;
    return &s->base;
fail:
    pg_close(&s->base);
    return NULL;
}

/* Ownership: conn stays the caller's, open until after sg_store_close
 * (which leaves it open); conninfo is borrowed (only its host, port and
 * database are kept, for logs). The caller's connection is at the
 * current schema and has the settings it wants (sg_store_pg_open sets
 * lock_timeout = '10s'). The statements this store prepares stay on the
 * connection, and a later store on it uses them. BEGIN (with the writers'
 * lock), SAVEPOINT and RELEASE are sent when asked for, so that the
 * caller's own statements between sg_store_begin and sg_store_commit run
 * inside the transaction. NULL on failure (logged). */
sg_store *sg_store_pg_borrow(PGconn *conn, const char *conninfo)
{
    sg_pg *s = pg_new(conninfo);
    if (!s)
        return NULL;
    s->conn = conn;
    s->borrowed = true;
    s->version = sg_store_pg_latest_version();
    /* statements an earlier store prepared on this connection (preparing
     * one again would fail, and abort the transaction around it) */
    PGresult *r = PQexec(conn, "SELECT name FROM pg_prepared_statements WHERE name LIKE 'sgs\\_%'");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        pg_fail(s, r, "list prepared statements");
        PQclear(r);
        pg_close(&s->base);
        return NULL;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        int id = atoi(PQgetvalue(r, i, 0) + 4);
        if (id >= 0 && id < ST_COUNT)
            s->prepared[id] = true;
    }
    PQclear(r);
    return &s->base;
}

/* ---- sessions ------------------------------------------------------------ */

static int pg_session_insert(sg_store *st_, const sg_session *ss, const char *handshake)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_text(&p, ss->sid);
    p_i64(&p, ss->state);
    p_text(&p, ss->transport);
    p_i64(&p, ss->created_at);
    p_i64(&p, ss->next_ping_at);
    p_i64(&p, ss->ping_sent);
    p_i64(&p, ss->expires_at);
    p_i64_or_null(&p, ss->connect_by);
    p_i64(&p, ss->sent_upto);
    p_text_or_null(&p, ss->poller);
    p_partial(&p, &ss->partial);
    p_text(&p, handshake);
    return exec_p(s, ST_SESSION_INSERT, &p, "insert session");
}

static int pg_session_get(sg_store *st_, const char *sid, sg_session *out)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_text(&p, sid);
    int rc;
    PGresult *r = run(s, ST_SESSION_GET, &p, "get session", &rc);
    if (!r)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return SG_STORE_NOTFOUND;
    }
    sg_buf_init(&out->partial);
    sg_copy(out->sid, sizeof out->sid, sid);
    out->state = (int)col_i64(r, 0, 0);
    copy_text(out->transport, sizeof out->transport, r, 0, 1);
    out->created_at = col_i64(r, 0, 2);
    out->next_ping_at = col_i64(r, 0, 3);
    out->ping_sent = (int)col_i64(r, 0, 4);
    out->expires_at = col_i64(r, 0, 5);
    out->connect_by = col_i64(r, 0, 6);
    out->sent_upto = col_i64(r, 0, 7);
    copy_text(out->poller, sizeof out->poller, r, 0, 8);
    copy_text(out->close_reason, sizeof out->close_reason, r, 0, 10);
    out->upgrading = col_i64(r, 0, 11);
    out->bcast_seen = col_i64(r, 0, 12);
    int plen = PQgetisnull(r, 0, 9) ? 0 : PQgetlength(r, 0, 9);
    rc = 0;
    if (plen > 0 && sg_buf_append(&out->partial, PQgetvalue(r, 0, 9), (size_t)plen) < 0) {
        sg_error("store %s: out of memory", s->name);
        rc = -1;
    }
    PQclear(r);
    return rc;
}

/* ST_SESSION_UPDATE, or with hot ST_SESSION_UPDATE_HOT: the same
 * parameters in the same order, without state, expires_at, connect_by and
 * upgrading (PostgreSQL wants no unused ones). */
static int session_write(sg_pg *s, bool hot, const sg_session *ss)
{
    pgp p = {0};
    p_text(&p, ss->sid);
    if (!hot)
        p_i64(&p, ss->state);
    p_text(&p, ss->transport);
    p_i64(&p, ss->next_ping_at);
    p_i64(&p, ss->ping_sent);
    if (!hot) {
        p_i64(&p, ss->expires_at);
        p_i64_or_null(&p, ss->connect_by);
    }
    p_i64(&p, ss->sent_upto);
    p_text_or_null(&p, ss->poller);
    p_partial(&p, &ss->partial);
    if (!hot)
        p_i64(&p, ss->upgrading);
    p_i64(&p, ss->bcast_seen);
    return write_p(s, hot ? ST_SESSION_UPDATE_HOT : ST_SESSION_UPDATE, &p, "update session");
}

static int pg_session_update(sg_store *st_, const sg_session *ss)
{
    return session_write((sg_pg *)st_, false, ss);
}

static int pg_session_update_hot(sg_store *st_, const sg_session *ss)
{
    return session_write((sg_pg *)st_, true, ss);
}

static json_t *pg_session_handshake(sg_store *st_, const char *sid)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_text(&p, sid);
    int rc;
    PGresult *r = run(s, ST_SESSION_HANDSHAKE, &p, "get handshake", &rc);
    json_t *hs = NULL;
    if (r && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
        hs = json_loads(col_text(r, 0, 0), JSON_DECODE_ANY, NULL);
    PQclear(r);
    return hs;
}

static int pg_session_close(sg_store *st_, const char *sid, const char *reason, int64_t now)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_text(&p, sid);
    p_text(&p, reason);
    p_i64(&p, now);
    int n = changes_p(s, ST_SESSION_CLOSE, &p, "close session");
    return n < 0 ? n : n == 0 ? SG_STORE_NOTFOUND : 0;
}

/* fn(ud, sid) for column 0 of every row of statement id (the result is
 * read whole first, so fn may use the store). The count, or < 0. */
static int each_sid(sg_pg *s, enum stmt_id id, const pgp *p, const char *what,
                    void (*fn)(void *ud, const char *sid), void *ud)
{
    int rc;
    PGresult *r = run(s, id, p, what, &rc);
    if (!r)
        return rc;
    int n = PQntuples(r);
    for (int i = 0; i < n; i++)
        fn(ud, col_text(r, i, 0));
    PQclear(r);
    return n;
}

static int pg_sessions_expired(sg_store *st_, int64_t now, int max,
                               void (*fn)(void *ud, const char *sid), void *ud)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_i64(&p, now);
    p_i64(&p, max);
    return each_sid(s, ST_SESSION_EXPIRED, &p, "expired sessions", fn, ud);
}

static int pg_bcast_sessions(sg_store *st_, int64_t after, int64_t upto, const char *const *among,
                             size_t n, void (*fn)(void *ud, const char *sid), void *ud)
{
    sg_pg *s = (sg_pg *)st_;
    sg_buf ids = SG_BUF_INIT;
    pgp p = {0};
    p_i64(&p, after);
    p_i64(&p, upto);
    if (among && sg_store_id_list(&ids, among, n, false) < 0)
        return -1;
    if (among)
        p_text(&p, ids.data);
    int rc = each_sid(s, among ? ST_BCAST_AMONG : ST_BCAST_SESSIONS, &p, "broadcast sessions", fn, ud);
    sg_buf_free(&ids);
    return rc;
}

static int pg_changed_since(sg_store *st_, int64_t *mark, const char *const *among, size_t n,
                            void (*fn)(void *ud, const char *sid), void *ud)
{
    sg_pg *s = (sg_pg *)st_;
    int rc;
    PGresult *r = run(s, ST_QUEUE_MAX, NULL, "queue max", &rc);
    if (!r)
        return rc;
    int64_t max = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? col_i64(r, 0, 0) : -1;
    PQclear(r);
    int64_t since = *mark;
    if (max > *mark)
        *mark = max;
    if (since < 0)
        return 0;
    pgp p = {0};
    p_i64(&p, since);
    int k = each_sid(s, ST_CHANGED, &p, "changed sessions", fn, ud);
    if (k < 0)
        return k;
    /* the sessions a broadcast log row since then names (rarely any) */
    int m = pg_bcast_sessions(&s->base, since, *mark, among, n, fn, ud);
    return m < 0 ? m : k + m;
}

static int pg_sessions_purge(sg_store *st_, int64_t before)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_i64(&p, before);
    return changes_p(s, ST_SESSION_PURGE, &p, "purge sessions");
}

/* ---- queue ----------------------------------------------------------------- */

/* ST_QUEUE_PUSH's parameters */
static void push_params(pgp *p, const char *sid, bool binary, bool is_volatile, const void *frame,
                        size_t len)
{
    p_text(p, sid);
    p_i64(p, binary);
    p_bytes(p, frame, len);
    if (is_volatile)
        p_i64(p, 1);
    else
        p_null(p); /* not volatile */
}

static int64_t pg_queue_push_as(sg_store *st_, const char *sid, bool binary, bool is_volatile,
                                const void *frame, size_t len)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    push_params(&p, sid, binary, is_volatile, frame, len);
    bool own;
    if (autotx_begin(s, &own) != 0)
        return -1;
    int64_t seq = int_p(s, ST_QUEUE_PUSH, &p, -1, "queue push");
    return autotx_end(s, own, seq < 0 ? -1 : 0) < 0 ? -1 : seq;
}

/* Inside a transaction of our own, owed (an INSERT with no constraint but
 * NOT NULL, of a sid the store gave: see "what a transaction owes"). */
static int pg_queue_add(sg_store *st_, const char *sid, bool binary, bool is_volatile,
                        const void *frame, size_t len)
{
    sg_pg *s = (sg_pg *)st_;
    if (!s->defer || !s->in_tx)
        return pg_queue_push_as(st_, sid, binary, is_volatile, frame, len) < 0 ? -1 : 0;
    pgp p = {0};
    push_params(&p, sid, binary, is_volatile, frame, len);
    return write_p(s, ST_QUEUE_PUSH, &p, "queue push");
}

static int64_t pg_queue_count(sg_store *st_, const char *sid, int64_t after, int64_t cap)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_text(&p, sid);
    p_i64(&p, after);
    if (cap < 0)
        p_null(&p); /* LIMIT NULL: none */
    else
        p_i64(&p, cap);
    return int_p(s, ST_QUEUE_COUNT, &p, -1, "queue count");
}

static int pg_queue_shed(sg_store *st_, const char *sid, int64_t after)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_text(&p, sid);
    p_i64(&p, after);
    return changes_p(s, ST_QUEUE_SHED, &p, "queue shed");
}

/* Pass the frames of a (seq, binary, frame) result to fn; see
 * sg_store_queue_read. *cut is set when it stopped before the last row. */
static int read_frames(const PGresult *r, int rows, size_t max_bytes,
                       int (*fn)(void *ud, bool binary, const void *frame, size_t len),
                       void *ud, int64_t *last, bool *cut)
{
    int n = 0;
    size_t bytes = 0;
    *cut = false;
    for (int i = 0; i < rows; i++) {
        size_t len = (size_t)PQgetlength(r, i, 2);
        if (n > 0 && bytes + len > max_bytes) {
            *cut = true;
            break;
        }
        int64_t seq = col_i64(r, i, 0);
        if (fn(ud, col_i64(r, i, 1) != 0, PQgetvalue(r, i, 2), len) != 0) {
            *cut = true;
            break;
        }
        *last = seq;
        bytes += len;
        n++;
    }
    return n;
}

static int pg_queue_read(sg_store *st_, const char *sid, int64_t after, size_t max_bytes,
                         int (*fn)(void *ud, bool binary, const void *frame, size_t len),
                         void *ud, int64_t *last)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_text(&p, sid);
    p_i64(&p, after);
    p_size(&p, max_bytes);
    int rc;
    PGresult *r = run(s, ST_QUEUE_READ, &p, "queue read", &rc);
    if (!r)
        return rc;
    bool cut;
    int n = read_frames(r, PQntuples(r), max_bytes, fn, ud, last, &cut);
    PQclear(r);
    return n;
}

static int pg_queue_trim(sg_store *st_, const char *sid, int64_t upto)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_text(&p, sid);
    p_i64(&p, upto);
    return write_p(s, ST_QUEUE_TRIM, &p, "queue trim");
}

static int pg_queue_drop(sg_store *st_, const char *sid)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_text(&p, sid);
    return write_p(s, ST_QUEUE_DROP, &p, "drop queue");
}

static int pg_queue_pending(sg_store *st_, const char *sid, int64_t after)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_text(&p, sid);
    p_i64(&p, after);
    int rc;
    PGresult *r = run(s, ST_QUEUE_PENDING, &p, "queue pending", &rc);
    if (!r)
        return rc;
    int any = PQntuples(r) > 0;
    PQclear(r);
    return any;
}

/* ---- the broadcast log ----------------------------------------------------- */

static int64_t pg_bcast_max(sg_store *st_)
{
    return int_p((sg_pg *)st_, ST_BCAST_MAX, NULL, 0, "broadcast log max");
}

static void p_stream(pgp *p, const char *sid, int64_t after, int64_t bafter)
{
    p_text(p, sid);
    p_i64(p, after);
    p_i64(p, bafter > after ? bafter : after);
}

static int64_t pg_bcast_push(sg_store *st_, const char *nsp, const char *rooms,
                             const char *except, const char *skip, bool binary,
                             const void *frame, size_t len)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_i64(&p, binary);
    p_bytes(&p, frame, len);
    p_text(&p, nsp);
    p_text_or_null(&p, rooms);
    p_text_or_null(&p, except);
    p_text_or_null(&p, skip);
    bool own;
    if (autotx_begin(s, &own) != 0)
        return -1;
    int64_t seq = int_p(s, ST_BCAST_PUSH, &p, -1, "broadcast push");
    return autotx_end(s, own, seq < 0 ? -1 : 0) < 0 ? -1 : seq;
}

static int pg_stream_read(sg_store *st_, const char *sid, int64_t after, int64_t *bseen,
                          size_t max_bytes,
                          int (*fn)(void *ud, bool binary, const void *frame, size_t len),
                          void *ud, int64_t *last, bool *cut)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_stream(&p, sid, after, *bseen);
    p_size(&p, max_bytes);
    int rc;
    PGresult *r = run(s, ST_STREAM_READ, &p, "stream read", &rc);
    if (!r)
        return rc;
    int rows = PQntuples(r);
    if (rows < 1 || col_i64(r, rows - 1, 3) != 1) {
        sg_error("store %s: stream read: no log max row", s->name);
        PQclear(r);
        return -1;
    }
    int n = read_frames(r, rows - 1, max_bytes, fn, ud, last, cut);
    int64_t bmax = col_i64(r, rows - 1, 0);
    PQclear(r);
    /* every log row up to the last frame passed was evaluated; without a
     * cut, every log row there is */
    int64_t seen = *cut ? (n > 0 ? *last : 0) : bmax;
    if (seen > *bseen)
        *bseen = seen;
    return n;
}

static int pg_stream_pending(sg_store *st_, const char *sid, int64_t after, int64_t bafter)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_stream(&p, sid, after, bafter);
    int rc;
    PGresult *r = run(s, ST_STREAM_PENDING, &p, "stream pending", &rc);
    if (!r)
        return rc;
    int any = PQntuples(r) > 0;
    PQclear(r);
    return any;
}

static int bcast_settle(sg_pg *s, const char *sid, int64_t sent_upto, int64_t *bseen,
                        bool *moved)
{
    pgp p = {0};
    p_text(&p, sid);
    int rc;
    PGresult *r = run(s, ST_FRONTIER, &p, "session frontier", &rc);
    if (!r)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return SG_STORE_NOTFOUND;
    }
    int64_t row_sent = col_i64(r, 0, 0), row_seen = col_i64(r, 0, 1);
    int64_t max = col_i64(r, 0, 2), top = col_i64(r, 0, 3);
    PQclear(r);
    if (row_sent > sent_upto)
        sent_upto = row_sent;
    if (*bseen > row_seen)
        row_seen = *bseen;
    if (max <= row_seen || max <= sent_upto) {
        *bseen = row_seen;
        return 0; /* no log row it has not evaluated: nothing to keep */
    }
    /* its pending stream becomes its own rows, in order, after everything
     * queued so far (top): copied, then the originals of its own rows
     * deleted */
    pgp q = {0};
    p_stream(&q, sid, sent_upto, row_seen);
    p_i64(&q, top);
    if ((rc = exec_p(s, ST_BCAST_REQUEUE, &q, "broadcast requeue")) != 0)
        return rc;
    pgp t = {0};
    p_text(&t, sid);
    p_i64(&t, sent_upto);
    p_i64(&t, top);
    if ((rc = write_p(s, ST_QUEUE_TRIM_RANGE, &t, "broadcast requeue trim")) != 0)
        return rc;
    pgp b = {0};
    p_text(&b, sid);
    p_i64(&b, max);
    *bseen = max;
    *moved = true;
    return write_p(s, ST_BCAST_SEEN, &b, "broadcast seen");
}

static int pg_bcast_settle(sg_store *st_, const char *sid, int64_t sent_upto, int64_t *bseen,
                           bool *moved)
{
    sg_pg *s = (sg_pg *)st_;
    *moved = false;
    bool own;
    if (autotx_begin(s, &own) != 0)
        return -1;
    int rc = bcast_settle(s, sid, sent_upto, bseen, moved);
    return autotx_end(s, own, rc);
}

static int pg_bcast_gc(sg_store *st_, int64_t upto)
{
    sg_pg *s = (sg_pg *)st_;
    /* no log row (most sweeps): no look at every open session */
    int64_t max = pg_bcast_max(&s->base);
    if (max <= 0)
        return max < 0 ? -1 : 0;
    pgp p = {0};
    p_i64(&p, upto);
    return changes_p(s, ST_BCAST_GC, &p, "broadcast log gc");
}

/* ---- sockets and rooms ------------------------------------------------------- */

static int pg_socket_insert(sg_store *st_, const char *id, const char *sid, const char *nsp,
                            int64_t now)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_text(&p, id);
    p_text(&p, sid);
    p_text(&p, nsp);
    p_i64(&p, now);
    return exec_p(s, ST_SOCKET_INSERT, &p, "insert socket");
}

static int pg_socket_find(sg_store *st_, const char *sid, const char *nsp, char *id)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_text(&p, sid);
    p_text(&p, nsp);
    int rc;
    PGresult *r = run(s, ST_SOCKET_FIND, &p, "find socket", &rc);
    if (!r)
        return rc;
    rc = SG_STORE_NOTFOUND;
    if (PQntuples(r) > 0) {
        copy_text(id, SG_ID_LEN + 1, r, 0, 0);
        rc = 0;
    }
    PQclear(r);
    return rc;
}

static int pg_socket_delete(sg_store *st_, const char *id)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_text(&p, id);
    return write_p(s, ST_SOCKET_DELETE, &p, "delete socket");
}

static int pg_sockets_of(sg_store *st_, const char *sid,
                         void (*fn)(void *ud, const char *id, const char *nsp), void *ud)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_text(&p, sid);
    int rc;
    PGresult *r = run(s, ST_SOCKETS_OF, &p, "sockets of session", &rc);
    if (!r)
        return rc;
    int n = PQntuples(r);
    for (int i = 0; i < n; i++)
        fn(ud, col_text(r, i, 0), col_text(r, i, 1));
    PQclear(r);
    return n;
}

static int room_op(sg_pg *s, enum stmt_id id, const char *nsp, const char *room,
                   const char *socket_id, const char *what)
{
    pgp p = {0};
    p_text(&p, nsp);
    p_text(&p, room);
    p_text(&p, socket_id);
    return exec_p(s, id, &p, what);
}

static int pg_room_join(sg_store *st_, const char *nsp, const char *room, const char *socket_id)
{
    return room_op((sg_pg *)st_, ST_ROOM_JOIN, nsp, room, socket_id, "join room");
}

static int pg_room_leave(sg_store *st_, const char *nsp, const char *room,
                         const char *socket_id)
{
    return room_op((sg_pg *)st_, ST_ROOM_LEAVE, nsp, room, socket_id, "leave room");
}

/* ---- targets, socket data, acks ------------------------------------------------ */

static void p_target(pgp *p, const char *nsp, const char *rooms, const char *except,
                     const char *skip)
{
    p_text(p, nsp);
    p_text_or_null(p, rooms);
    p_text(p, except ? except : "[]");
    p_text_or_null(p, skip);
}

static int targets(sg_pg *s, enum stmt_id which, const char *nsp, const char *rooms,
                   const char *except, const char *skip,
                   void (*fn)(void *ud, const char *id, const char *sid, bool ready), void *ud)
{
    pgp p = {0};
    p_target(&p, nsp, rooms, except, skip);
    int rc;
    PGresult *r = run(s, which, &p, "targets", &rc);
    if (!r)
        return rc;
    int n = PQntuples(r);
    for (int i = 0; i < n; i++)
        fn(ud, col_text(r, i, 0), col_text(r, i, 1), col_i64(r, i, 2) != 0);
    PQclear(r);
    return n;
}

static int pg_targets(sg_store *st_, const char *nsp, const char *rooms, const char *except,
                      const char *skip,
                      void (*fn)(void *ud, const char *id, const char *sid, bool ready),
                      void *ud)
{
    return targets((sg_pg *)st_, ST_TARGETS, nsp, rooms, except, skip, fn, ud);
}

static int pg_targets_all(sg_store *st_, const char *nsp, const char *rooms, const char *except,
                          const char *skip,
                          void (*fn)(void *ud, const char *id, const char *sid, bool ready),
                          void *ud)
{
    return targets((sg_pg *)st_, ST_TARGETS_ALL, nsp, rooms, except, skip, fn, ud);
}

static int pg_targets_count(sg_store *st_, const char *nsp, const char *rooms,
                            const char *except, const char *skip)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_target(&p, nsp, rooms, except, skip);
    int64_t n = int_p(s, ST_TARGETS_COUNT, &p, -1, "count targets");
    return n < 0 ? -1 : (int)n;
}

static int pg_socket_get(sg_store *st_, const char *id, char *sid, char *nsp, size_t nspcap,
                         json_t **data)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_text(&p, id);
    int rc;
    PGresult *r = run(s, ST_SOCKET_GET, &p, "get socket", &rc);
    if (!r)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return SG_STORE_NOTFOUND;
    }
    if (sid)
        copy_text(sid, SG_ID_LEN + 1, r, 0, 0);
    if (nsp)
        copy_text(nsp, nspcap, r, 0, 1);
    if (data)
        *data = PQgetisnull(r, 0, 2)
                    ? json_null()
                    : json_loads(col_text(r, 0, 2), JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    PQclear(r);
    return data && !*data ? -1 : 0;
}

static json_t *pg_socket_rooms(sg_store *st_, const char *id)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_text(&p, id);
    int rc;
    PGresult *r = run(s, ST_SOCKET_ROOMS, &p, "socket rooms", &rc);
    if (!r)
        return NULL;
    json_t *a = json_array();
    for (int i = 0; a && i < PQntuples(r); i++) {
        if (json_array_append_new(a, json_string(col_text(r, i, 0))) < 0) {
            json_decref(a);
            a = NULL;
        }
    }
    PQclear(r);
    return a;
}

static int pg_socket_data_set(sg_store *st_, const char *id, const char *json)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_text(&p, id);
    p_text_or_null(&p, json);
    int n = changes_p(s, ST_DATA_SET, &p, "set socket data");
    return n < 0 ? n : n ? 0 : SG_STORE_NOTFOUND;
}

static int64_t pg_ack_next(sg_store *st_, const char *socket_id)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_text(&p, socket_id);
    return int_p(s, ST_ACK_NEXT, &p, -1, "next ack id");
}

static int pg_ack_insert(sg_store *st_, const char *socket_id, int64_t id, const char *sid,
                         const char *nsp, const char *name, int64_t deadline, const char *data)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_text(&p, socket_id);
    p_i64(&p, id);
    p_text(&p, sid);
    p_text(&p, nsp);
    p_text(&p, name);
    p_i64(&p, deadline);
    p_text_or_null(&p, data);
    return exec_p(s, ST_ACK_INSERT, &p, "insert ack");
}

static int pg_ack_take(sg_store *st_, const char *socket_id, int64_t id, sg_buf *out)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_text(&p, socket_id);
    p_i64(&p, id);
    int rc;
    PGresult *r = run(s, ST_ACK_TAKE, &p, "take ack", &rc);
    if (!r)
        return rc;
    rc = PQntuples(r) > 0 ? 0 : SG_STORE_NOTFOUND;
    for (int c = 0; rc == 0 && c < 4; c++) {
        const char *t = col_text(r, 0, c);
        if (sg_buf_append(out, t, strlen(t) + 1) < 0) {
            sg_error("store %s: out of memory", s->name);
            rc = -1;
        }
    }
    PQclear(r);
    return rc;
}

static int pg_acks_expired(sg_store *st_, int64_t now, int max,
                           void (*fn)(void *ud, const char *socket_id, int64_t id), void *ud)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_i64(&p, now);
    p_i64(&p, max);
    int rc;
    PGresult *r = run(s, ST_ACKS_EXPIRED, &p, "expired acks", &rc);
    if (!r)
        return rc;
    int n = PQntuples(r);
    for (int i = 0; i < n; i++)
        fn(ud, col_text(r, i, 0), col_i64(r, i, 1));
    PQclear(r);
    return n;
}

static int pg_reply_insert(sg_store *st_, const char *name, const char *socket_id,
                           const char *args, int64_t at)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_text(&p, name);
    p_text(&p, socket_id);
    p_text(&p, args);
    p_i64(&p, at);
    return exec_p(s, ST_REPLY_INSERT, &p, "insert ack reply");
}

static int pg_replies_take(sg_store *st_, const char *name,
                           void (*fn)(void *ud, const char *socket_id, const char *args),
                           void *ud)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_text(&p, name);
    int rc;
    PGresult *r = run(s, ST_REPLIES_TAKE, &p, "take ack replies", &rc);
    if (!r)
        return rc;
    int n = PQntuples(r);
    for (int i = 0; i < n; i++)
        fn(ud, col_text(r, i, 0), col_text(r, i, 1));
    PQclear(r);
    return n;
}

static int pg_acks_forget(sg_store *st_, const char *name)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_text(&p, name);
    return exec_p(s, ST_ACKS_FORGET, &p, "forget acks");
}

/* sql is a literal of the caller's (no parameters): text results. */
static int64_t pg_scalar(sg_store *st_, const char *sql)
{
    sg_pg *s = (sg_pg *)st_;
    if (flush_owed(s) != 0)
        return -1;
    PGresult *r = PQexecParams(s->conn, sql, 0, NULL, NULL, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    int64_t v = -1;
    if (st == PGRES_TUPLES_OK && PQntuples(r) > 0 && PQnfields(r) > 0)
        v = col_i64(r, 0, 0);
    else if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
        pg_fail(s, r, sql);
    PQclear(r);
    return v;
}

/* ---- limits ------------------------------------------------------------------ */

static int64_t pg_sessions_open(sg_store *st_)
{
    return int_p((sg_pg *)st_, ST_OPEN_SESSIONS, NULL, 0, "count open sessions");
}

static int64_t pg_sockets_count(sg_store *st_, const char *sid)
{
    pgp p = {0};
    p_text(&p, sid);
    return int_p((sg_pg *)st_, ST_SOCKETS_COUNT, &p, 0, "count sockets");
}

static int pg_rate_take(sg_store *st_, const char *address, int64_t rate, int64_t now)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_text(&p, address);
    int rc;
    PGresult *r = run(s, ST_RATE_GET, &p, "read handshake rate", &rc);
    if (!r)
        return -1;
    double tokens = (double)rate; /* no row: a full bucket */
    if (PQntuples(r) > 0) {
        int64_t at = col_i64(r, 0, 1);
        tokens = col_double(r, 0, 0);
        if (now > at) /* a clock stepped back refills nothing */
            tokens += (double)(now - at) * (double)rate / 1000.0;
        if (tokens > (double)rate)
            tokens = (double)rate;
    }
    PQclear(r);
    if (tokens < 1.0)
        return 0; /* nothing written: a refused handshake costs no write */
    pgp w = {0};
    p_text(&w, address);
    p_double(&w, tokens - 1.0);
    p_i64(&w, now);
    return exec_p(s, ST_RATE_PUT, &w, "write handshake rate") != 0 ? -1 : 1;
}

static int pg_rate_purge(sg_store *st_, int64_t before)
{
    pgp p = {0};
    p_i64(&p, before);
    return changes_p((sg_pg *)st_, ST_RATE_PURGE, &p, "purge handshake rates");
}

/* ---- connection state recovery ------------------------------------------------ */

static int64_t pg_eid_next(sg_store *st_, int64_t now)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_i64(&p, now);
    bool own;
    if (autotx_begin(s, &own) != 0)
        return -1;
    int64_t eid = int_p(s, ST_EID_NEXT, &p, 0, "next event offset");
    if (eid == 0) {
        sg_error("store %s: no 'eid' counter row", s->name);
        eid = -1;
    }
    return autotx_end(s, own, eid < 0 ? -1 : 0) < 0 ? -1 : eid;
}

static int64_t pg_queue_push_eid(sg_store *st_, const char *sid, bool binary, const void *frame,
                                 size_t len, const char *nsp, int64_t eid)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_text(&p, sid);
    p_i64(&p, binary);
    p_bytes(&p, frame, len);
    p_text(&p, nsp);
    p_i64(&p, eid);
    bool own;
    if (autotx_begin(s, &own) != 0)
        return -1;
    int64_t seq = int_p(s, ST_QUEUE_PUSH_EID, &p, -1, "queue push (offset)");
    return autotx_end(s, own, seq < 0 ? -1 : 0) < 0 ? -1 : seq;
}

static int pg_socket_set_pid(sg_store *st_, const char *id, const char *pid)
{
    pgp p = {0};
    p_text(&p, id);
    p_text(&p, pid);
    return write_p((sg_pg *)st_, ST_SOCKET_PID, &p, "set socket pid");
}

static int pg_socket_ghost(sg_store *st_, const char *id, const char *sid, const char *nsp,
                           int64_t now, int64_t until)
{
    pgp p = {0};
    p_text(&p, sid);
    p_text(&p, id);
    p_text(&p, nsp);
    p_i64(&p, now);
    p_i64(&p, until);
    return exec_p((sg_pg *)st_, ST_GHOST, &p, "ghost socket");
}

static int pg_socket_by_pid(sg_store *st_, const char *pid, char *id, char *sid, size_t sidcap,
                            char *nsp, size_t nspcap, int *state, int64_t *until)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_text(&p, pid);
    int rc;
    PGresult *r = run(s, ST_BY_PID, &p, "socket by pid", &rc);
    if (!r)
        return rc;
    rc = SG_STORE_NOTFOUND;
    if (PQntuples(r) > 0) {
        copy_text(id, SG_ID_LEN + 1, r, 0, 0);
        copy_text(sid, sidcap, r, 0, 1);
        copy_text(nsp, nspcap, r, 0, 2);
        *state = (int)col_i64(r, 0, 3);
        *until = col_i64(r, 0, 4);
        rc = 0;
    }
    PQclear(r);
    return rc;
}

static int socket_restore(sg_pg *s, const char *id, const char *ghost, const char *sid,
                          const char *nsp, int64_t offset)
{
    pgp p = {0};
    p_text(&p, id);
    p_text(&p, sid);
    int rc = exec_p(s, ST_RESTORE_SOCKET, &p, "restore socket");
    if (rc != 0)
        return rc;
    pgp q = {0};
    p_text(&q, ghost);
    p_text(&q, sid);
    p_text(&q, nsp);
    p_i64(&q, offset);
    int n = changes_p(s, ST_RESTORE_QUEUE, &q, "replay missed events");
    if (n < 0)
        return n;
    pgp d = {0};
    p_text(&d, ghost);
    p_text(&d, nsp);
    if ((rc = exec_p(s, ST_RESTORE_DROP, &d, "drop replayed events")) != 0)
        return rc;
    pgp g = {0};
    p_text(&g, ghost);
    rc = exec_p(s, ST_GHOST_EMPTY, &g, "drop empty ghost");
    return rc != 0 ? rc : n;
}

static int pg_socket_restore(sg_store *st_, const char *id, const char *ghost, const char *sid,
                             const char *nsp, int64_t offset)
{
    sg_pg *s = (sg_pg *)st_;
    bool own;
    if (autotx_begin(s, &own) != 0)
        return -1;
    int rc = socket_restore(s, id, ghost, sid, nsp, offset);
    return autotx_end(s, own, rc);
}

static int pg_queue_trim_kept(sg_store *st_, const char *sid, int64_t upto, int64_t keep_from)
{
    pgp p = {0};
    p_text(&p, sid);
    p_i64(&p, upto);
    p_i64(&p, keep_from);
    return write_p((sg_pg *)st_, ST_QUEUE_TRIM_KEPT, &p, "queue trim (recovery)");
}

static int pg_ghosts_purge(sg_store *st_, int64_t now)
{
    sg_pg *s = (sg_pg *)st_;
    pgp p = {0};
    p_i64(&p, now);
    int64_t any = int_p(s, ST_GHOSTS_DUE, &p, 0, "ghosts due");
    if (any <= 0)
        return any < 0 ? -1 : 0; /* none (every sweep but a few): one index lookup */
    return changes_p(s, ST_GHOSTS_PURGE, &p, "purge ghosts");
}

static const sg_store_ops pg_ops = {
    .version = pg_version,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .batch_begin = pg_batch_begin,
    .batch_end = pg_batch_end,
    .session_insert = pg_session_insert,
    .session_get = pg_session_get,
    .session_update = pg_session_update,
    .session_update_hot = pg_session_update_hot,
    .session_handshake = pg_session_handshake,
    .session_close = pg_session_close,
    .sessions_expired = pg_sessions_expired,
    .changed_since = pg_changed_since,
    .sessions_purge = pg_sessions_purge,
    .queue_push_as = pg_queue_push_as,
    .queue_add = pg_queue_add,
    .queue_count = pg_queue_count,
    .queue_shed = pg_queue_shed,
    .queue_read = pg_queue_read,
    .queue_trim = pg_queue_trim,
    .queue_drop = pg_queue_drop,
    .queue_pending = pg_queue_pending,
    .bcast_push = pg_bcast_push,
    .targets_all = pg_targets_all,
    .targets_count = pg_targets_count,
    .bcast_max = pg_bcast_max,
    .stream_read = pg_stream_read,
    .stream_pending = pg_stream_pending,
    .bcast_settle = pg_bcast_settle,
    .bcast_sessions = pg_bcast_sessions,
    .bcast_gc = pg_bcast_gc,
    .socket_insert = pg_socket_insert,
    .socket_find = pg_socket_find,
    .socket_delete = pg_socket_delete,
    .sockets_of = pg_sockets_of,
    .room_join = pg_room_join,
    .room_leave = pg_room_leave,
    .targets = pg_targets,
    .socket_get = pg_socket_get,
    .socket_rooms = pg_socket_rooms,
    .socket_data_set = pg_socket_data_set,
    .ack_next = pg_ack_next,
    .ack_insert = pg_ack_insert,
    .ack_take = pg_ack_take,
    .acks_expired = pg_acks_expired,
    .reply_insert = pg_reply_insert,
    .replies_take = pg_replies_take,
    .acks_forget = pg_acks_forget,
    .scalar = pg_scalar,
    .sessions_open = pg_sessions_open,
    .sockets_count = pg_sockets_count,
    .rate_take = pg_rate_take,
    .rate_purge = pg_rate_purge,
    .eid_next = pg_eid_next,
    .queue_push_eid = pg_queue_push_eid,
    .socket_set_pid = pg_socket_set_pid,
    .socket_ghost = pg_socket_ghost,
    .socket_by_pid = pg_socket_by_pid,
    .socket_restore = pg_socket_restore,
    .queue_trim_kept = pg_queue_trim_kept,
    .ghosts_purge = pg_ghosts_purge,
    .close = pg_close,
};
