/* store.h - the store: sessions, sockets, rooms, outbound queues.
 *
 * The one narrow interface between siogate and its database. One sg_store
 * is one connection, used by one thread at a time; prepared statements
 * kept per connection. Two implementations (store_int.h):
 * - SQLite (a file path, the default): WAL mode, synchronous=NORMAL, a
 *   busy handler that sleeps ~100 us between retries (see DESIGN §5) up
 *   to a bounded total. Migrations (schema/NNNN_*.sql, compiled in) are
 *   applied on open above PRAGMA user_version.
 * - PostgreSQL (a libpq connection string, see sg_store_is_pg): writers
 *   serialized by an advisory lock taken at BEGIN, lock_timeout 10 s.
 *   Migrations (schema/pg/NNNN_*.sql) above the table schema_version.
 *
 * Results: 0 success, SG_STORE_NOTFOUND when the row does not exist,
 * SG_STORE_BUSY when the database stayed locked past the timeout, -1 on
 * any other failure. Failures are logged by the store. */
#ifndef SG_STORE_H
#define SG_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <sqlite3.h>

#include "buf.h"
#include "util.h"

#define SG_STORE_NOTFOUND 1
#define SG_STORE_BUSY (-2)

typedef struct sg_store sg_store;

/* The callbacks of the calls that list rows (each gets copies, borrowed
 * for the call). */
typedef void (*sg_sid_fn)(void *ud, const char *sid);
typedef int (*sg_frame_fn)(void *ud, bool binary, const void *frame, size_t len);
typedef void (*sg_target_fn)(void *ud, const char *id, const char *sid, bool ready);
typedef void (*sg_socket_fn)(void *ud, const char *id, const char *nsp);
typedef void (*sg_expired_ack_fn)(void *ud, const char *socket_id, int64_t id);
typedef void (*sg_reply_fn)(void *ud, const char *socket_id, const char *args);

/* Whether db (a config's `db` value, borrowed) names a PostgreSQL
 * database: a URI starting with postgresql:// or postgres://, or a libpq
 * keyword/value string starting with host=, hostaddr=, dbname=, user=,
 * port=, service= or password=. Anything else is a SQLite file path. */
bool sg_store_is_pg(const char *db);
/* Open the store db names (sg_store_is_pg: PostgreSQL, connecting; else
 * the SQLite file, created if needed) and migrate. NULL on failure
 * (logged). db is borrowed. */
sg_store *sg_store_open(const char *db);
/* A store on db, a connection to path that the caller opened at the
 * current schema, with a busy handler of its own, and keeps open until
 * after sg_store_close (which then finalizes this store's statements and
 * leaves db open). No migration, no PRAGMA: one connection serves both
 * owners, for a short-lived process that opens the store once (the CLI).
 * NULL on failure (logged). */
sg_store *sg_store_borrow(sqlite3 *db, const char *path);
/* SQLite's process-wide settings; call before the process's first
 * connection (later calls change nothing). Every process: no memory
 * statistics, whose global mutex SQLite takes on every allocation.
 * short_lived (the CLI): no bulk page-cache or lookaside allocation at
 * open either, memory as it is needed: each page first touched costs a
 * page fault, and a process's first faults are most of a short command's
 * time (measured on the 2-core VM: 15-40 us a fault; 20 of an emit's 175
 * were these allocations). */
void sg_store_process_init(bool short_lived);
void sg_store_close(sg_store *s);
/* Move checkpoints off the request path, for a daemon: store connections
 * opened from now on in this process leave them to a background thread
 * with its own connection to path, which runs a passive checkpoint when
 * the WAL reached 1,000 pages or a second after the last commit. 0 or -1
 * (logged; SQLite's automatic checkpoints then stay). Stop it after the
 * last connection of this process was closed. A PostgreSQL path: 0,
 * nothing to do. */
int sg_store_checkpointer_start(const char *path);
void sg_store_checkpointer_stop(void);

/* The schema version the store is at (after open); the latest this
 * program knows for the store db names (SQLite's and PostgreSQL's
 * migrations are numbered apart). */
int sg_store_version(sg_store *s);
int sg_store_latest_version(const char *db);

/* BEGIN IMMEDIATE (takes the write lock now, so a transaction never fails
 * half-way on a lock upgrade), COMMIT, ROLLBACK. Inside a batch they are a
 * savepoint, its release and its rollback. */
int sg_store_begin(sg_store *s);
int sg_store_commit(sg_store *s);
void sg_store_rollback(sg_store *s);
/* A batch: one transaction around many begin/commit pairs (group commit;
 * one writer's turn of an event loop). What a commit inside it released
 * becomes durable, and visible to other connections, at sg_store_batch_end;
 * a rollback inside it undoes only its own part. Inside a batch the SQLite
 * store answers session_get, stream_pending and socket_find again from
 * what it read before while nothing can have changed it (store_sqlite.c,
 * "the read memo"): the answers are the database's all the same. */
int sg_store_batch_begin(sg_store *s);
int sg_store_batch_end(sg_store *s);

/* ---- sessions ---------------------------------------------------------- */

/* SG_SESSION_GHOST: not a connection but the sockets of a closed session
 * kept for connection state recovery (sid '~' + the session's; schema
 * 0007). */
enum { SG_SESSION_OPEN = 0, SG_SESSION_CLOSED = 1, SG_SESSION_GHOST = 2 };

typedef struct sg_session {
    char sid[SG_ID_LEN + 1];
    int state;
    char transport[16];
    int64_t created_at;
    int64_t next_ping_at;
    int ping_sent;
    int64_t expires_at;
    int64_t connect_by;     /* 0 = none */
    int64_t sent_upto;
    char poller[64];        /* polling: GET in flight; websocket: the holder; "" = none */
    int64_t upgrading;      /* when "2probe" came (ms), until "5"; 0 = not upgrading */
    char close_reason[40];  /* set when state is closed (read only) */
    int64_t bcast_seen;     /* broadcast log rows up to this seq were evaluated;
                               written back as max(stored, this) */
    sg_buf partial;         /* owned; empty = none */
} sg_session;

/* Release what a session owns (its partial buffer). */
void sg_session_clear(sg_session *ss);

/* Insert a new session; handshake is a JSON text (borrowed). */
int sg_store_session_insert(sg_store *s, const sg_session *ss, const char *handshake);
/* Read one (open or closed). out must be cleared by the caller after. */
int sg_store_session_get(sg_store *s, const char *sid, sg_session *out);
/* Write back the mutable fields: state, transport, next_ping_at, ping_sent,
 * expires_at, connect_by, sent_upto, poller, upgrading, partial, and
 * bcast_seen as max(stored, ss's). */
int sg_store_session_update(sg_store *s, const sg_session *ss);
/* Write back only the hot fields: transport, next_ping_at, ping_sent,
 * sent_upto, poller, partial, bcast_seen (as session_update does). For a
 * caller that knows state, expires_at, connect_by and upgrading are as
 * stored: those are indexed or read by a trigger, and leaving them out
 * halves the cost of the write (about 3.5 against 7 us a row in SQLite). */
int sg_store_session_update_hot(sg_store *s, const sg_session *ss);
/* The handshake JSON (new reference) or NULL. */
json_t *sg_store_session_handshake(sg_store *s, const char *sid);
/* Mark closed with reason (its queue stays, for the transport to flush).
 * Returns 0 if this call closed it, SG_STORE_NOTFOUND if it was unknown or
 * already closed. */
int sg_store_session_close(sg_store *s, const char *sid, const char *reason, int64_t now);
/* Call fn for up to max open sessions whose expires_at or connect_by has
 * passed at now (ids copied for the callback; borrowed during the call). */
int sg_store_sessions_expired(sg_store *s, int64_t now, int max,
                              void (*fn)(void *ud, const char *sid), void *ud);
/* What a held GET may have to answer since *mark: fn(ud, sid) for every
 * session with frames queued after seq *mark, every session a broadcast
 * log row after *mark names, and every open session in the middle of an
 * upgrade (ids copied first; fn may use the store).
 * *mark becomes the highest seq in the queue (it never goes back). With
 * *mark < 0 only the mark is set. One indexed query, whatever the number
 * of sessions (among, n: for the log rows, as sg_store_bcast_sessions).
 * Returns the number of calls, or -1. */
int sg_store_changed_since(sg_store *s, int64_t *mark, const char *const *among, size_t n,
                           void (*fn)(void *ud, const char *sid), void *ud);
/* Delete sessions closed before `before`, with their queues. Returns the
 * count or -1. */
int sg_store_sessions_purge(sg_store *s, int64_t before);

/* ---- outbound queue ----------------------------------------------------- */

/* Append a frame for sid. Returns its seq (> 0) or -1. */
int64_t sg_store_queue_push(sg_store *s, const char *sid, bool binary,
                            const void *frame, size_t len);
/* The same, marked volatile when is_volatile (a frame of a volatile
 * packet: sg_store_queue_shed may delete it). */
int64_t sg_store_queue_push_as(sg_store *s, const char *sid, bool binary, bool is_volatile,
                               const void *frame, size_t len);
/* The same when the seq is not wanted: 0 or -1. Inside a transaction a
 * store may send it later, with its next statement or the COMMIT, which
 * then fails if it did (store_pg.c). */
int sg_store_queue_add(sg_store *s, const char *sid, bool binary, bool is_volatile,
                       const void *frame, size_t len);
/* The number of sid's own frames with seq > after (broadcast log rows are
 * not counted), counting no further than cap (cap < 0: all), so that the
 * cost is bounded by cap whatever the queue holds. >= 0, or -1. */
int64_t sg_store_queue_count(sg_store *s, const char *sid, int64_t after, int64_t cap);
/* Delete sid's volatile frames with seq > after, whole packets only (the
 * attachments of a packet whose text frame is at or below after stay).
 * Returns the number of frames deleted, or -1. */
int sg_store_queue_shed(sg_store *s, const char *sid, int64_t after);
/* Call fn for each frame of sid with seq > after, in order, until fn
 * returns non-zero or max_bytes of frames were passed (at least one frame
 * always is). *last gets the seq of the last frame passed (unchanged when
 * none). Returns the number of frames passed, or -1. */
int sg_store_queue_read(sg_store *s, const char *sid, int64_t after, size_t max_bytes,
                        int (*fn)(void *ud, bool binary, const void *frame, size_t len),
                        void *ud, int64_t *last);
/* Delete frames of sid with seq <= upto. */
int sg_store_queue_trim(sg_store *s, const char *sid, int64_t upto);
/* Delete every frame of sid. */
int sg_store_queue_drop(sg_store *s, const char *sid);
/* 1 if sid has frames with seq > after, 0 if not, -1 on error. */
int sg_store_queue_pending(sg_store *s, const char *sid, int64_t after);

/* ---- the broadcast log ----------------------------------------------------
 *
 * A broadcast to many sockets is one row per frame with sid '' and its
 * target (schema/0004_broadcast_log.sql). A session's stream is its own
 * frames after sent_upto merged by seq with the log rows after
 * max(sent_upto, bcast_seen) that its sockets' rooms match now; before a
 * socket of a session joins, leaves, connects or disconnects, the caller
 * settles it (sg_store_bcast_settle), so that what a broadcast reaches is
 * decided by the membership when it was emitted. */

/* Append one frame of a broadcast to nsp's sockets in any of rooms (a
 * JSON array text, NULL = the whole namespace), in none of except (JSON
 * array text or NULL), other than skip (a socket id or NULL). Returns its
 * seq (> 0) or -1. */
int64_t sg_store_bcast_push(sg_store *s, const char *nsp, const char *rooms, const char *except,
                            const char *skip, bool binary, const void *frame, size_t len);
/* sg_store_targets with the sockets of the recovery ghosts too (their
 * sid starts with '~'; never ready). For emits while recovery_window is
 * on: a ghost keeps the events sent to its rooms. */
int sg_store_targets_all(sg_store *s, const char *nsp, const char *rooms, const char *except,
                         const char *skip, void (*fn)(void *ud, const char *id, const char *sid,
                                                      bool ready),
                         void *ud);
/* The number of sockets sg_store_targets would call back for, or -1. */
int sg_store_targets_count(sg_store *s, const char *nsp, const char *rooms, const char *except,
                           const char *skip);
/* The highest seq of a log row (0 when none), or -1. */
int64_t sg_store_bcast_max(sg_store *s);
/* sg_store_queue_read over sid's stream: its own frames after `after` and
 * the log rows after max(after, *bseen) it matches, in seq order. *bseen
 * becomes the highest log seq evaluated (never lower: the log rows after
 * the last frame passed are left for the next read when it stopped early).
 * *early (unless NULL) tells whether it did: frames were left, by fn or by
 * max_bytes. */
int sg_store_stream_read(sg_store *s, const char *sid, int64_t after, int64_t *bseen,
                         size_t max_bytes,
                         int (*fn)(void *ud, bool binary, const void *frame, size_t len),
                         void *ud, int64_t *last, bool *early);
/* 1 if sid's stream after (after, bafter) has a frame, 0 if not, -1. */
int sg_store_stream_pending(sg_store *s, const char *sid, int64_t after, int64_t bafter);
/* Before a membership change of sid's sockets: the log rows its stream
 * holds now become its own rows (with its pending own frames, re-queued
 * in seq order after everything queued so far), and its stored bcast_seen
 * moves past them. The frontier is read from the session row; sent_upto
 * and *bseen are the caller's copies (the higher values win); *bseen gets
 * the frontier after. Nothing is written when no log row is pending;
 * *moved tells whether something was. 0, SG_STORE_NOTFOUND, -1. */
int sg_store_bcast_settle(sg_store *s, const char *sid, int64_t sent_upto, int64_t *bseen,
                          bool *moved);
/* fn(ud, sid) for each session whose sockets a log row with seq in
 * (after, upto] names (ids copied first); among (n valid session ids, or
 * NULL for every session): only those are asked about, one index lookup
 * each, instead of listing every recipient. Returns the count or -1. */
int sg_store_bcast_sessions(sg_store *s, int64_t after, int64_t upto, const char *const *among,
                            size_t n, void (*fn)(void *ud, const char *sid), void *ud);
/* Delete the log rows at or below upto that every open session has
 * evaluated or taken. (A recovery window passes the seq it must keep
 * from, less one.) Returns the count or -1. */
int sg_store_bcast_gc(sg_store *s, int64_t upto);

/* ---- sockets and rooms -------------------------------------------------- */

/* Insert a socket and its own-id room. */
int sg_store_socket_insert(sg_store *s, const char *id, const char *sid, const char *nsp,
                           int64_t now);
/* The id of sid's socket on nsp, into id[SG_ID_LEN + 1]. */
int sg_store_socket_find(sg_store *s, const char *sid, const char *nsp, char *id);
/* Delete a socket and its room memberships. */
int sg_store_socket_delete(sg_store *s, const char *id);
/* Call fn(ud, id, nsp) for every socket of sid (copied before the calls, so
 * fn may change the store). */
int sg_store_sockets_of(sg_store *s, const char *sid,
                        void (*fn)(void *ud, const char *id, const char *nsp), void *ud);

int sg_store_room_join(sg_store *s, const char *nsp, const char *room, const char *socket_id);
int sg_store_room_leave(sg_store *s, const char *nsp, const char *room, const char *socket_id);

/* Call fn(ud, id, sid, ready) for each socket of the open sessions that is
 * a member of nsp and: of any room in rooms (a JSON array text; NULL = the
 * whole namespace), of no room in except (JSON array text or NULL), and
 * not skip (a socket id or NULL). ready: the session can take a packet
 * now (a WebSocket, or a GET held). Rows are copied before the calls.
 * Returns the count or -1. */
int sg_store_targets(sg_store *s, const char *nsp, const char *rooms, const char *except,
                     const char *skip, void (*fn)(void *ud, const char *id, const char *sid,
                                                  bool ready),
                     void *ud);
/* One connected socket: its session id (into sid[SG_ID_LEN + 1]),
 * namespace (nsp, nspcap bytes) and data (new reference, JSON null when
 * unset); any output may be NULL. 0, SG_STORE_NOTFOUND (also for a socket
 * kept in a recovery ghost: not connected) or -1. */
int sg_store_socket_get(sg_store *s, const char *id, char *sid, char *nsp, size_t nspcap,
                        json_t **data);
/* The rooms of a socket, its own first (new JSON array), NULL on failure. */
json_t *sg_store_socket_rooms(sg_store *s, const char *id);
/* Set socket.data to json (a JSON text, NULL to unset). */
int sg_store_socket_data_set(sg_store *s, const char *id, const char *json);

/* ---- server-to-client acks ------------------------------------------------ */

/* Allocate the next ack id of a socket (>= 0), or -1. */
int64_t sg_store_ack_next(sg_store *s, const char *socket_id);
int sg_store_ack_insert(sg_store *s, const char *socket_id, int64_t id, const char *sid,
                        const char *nsp, const char *name, int64_t deadline, const char *data);
/* Remove an awaited ack and append its sid, nsp, name and data (each
 * NUL-terminated, data "" when none) to out. 0, SG_STORE_NOTFOUND, -1. */
int sg_store_ack_take(sg_store *s, const char *socket_id, int64_t id, sg_buf *out);
/* Call fn for up to max acks whose deadline passed (copied first). */
int sg_store_acks_expired(sg_store *s, int64_t now, int max,
                          void (*fn)(void *ud, const char *socket_id, int64_t id), void *ud);

/* Mailboxes of acks asked from outside the servers (names start with '@'):
 * store a reply (args: a JSON array text); take every reply of a mailbox
 * (fn gets copies; the rows are deleted); forget a mailbox (its awaited
 * acks and its replies). Replies are purged with the closed sessions. */
int sg_store_reply_insert(sg_store *s, const char *name, const char *socket_id, const char *args,
                          int64_t at);
int sg_store_replies_take(sg_store *s, const char *name,
                          void (*fn)(void *ud, const char *socket_id, const char *args), void *ud);
int sg_store_acks_forget(sg_store *s, const char *name);

/* Run `sql` (a literal, e.g. for the CLI's maintenance commands) and
 * return its single integer result, or -1. */
int64_t sg_store_scalar(sg_store *s, const char *sql);

/* ---- limits (schema 0004) ------------------------------------------------ */

/* The number of open sessions (a counter the schema's triggers keep, so
 * this is one row read). >= 0, or -1 on error. */
int64_t sg_store_sessions_open(sg_store *s);
/* The number of sockets (namespaces joined) of session sid, or -1. */
int64_t sg_store_sockets_count(sg_store *s, const char *sid);
/* Take one handshake from address's token bucket (borrowed): it holds rate
 * tokens at most and gains rate per second; now in ms. Inside a
 * transaction. 1: taken; 0: the bucket is empty (nothing written); -1:
 * store error. */
int sg_store_rate_take(sg_store *s, const char *address, int64_t rate, int64_t now);
/* Forget the buckets last touched at or before `before` (full again when
 * that is a second ago). The number deleted, or -1. */
int sg_store_rate_purge(sg_store *s, int64_t before);

/* ---- connection state recovery (schema 0007) -------------------------------
 *
 * Only used while recovery_window is on. A recoverable event's queue rows
 * carry its offset (eid) and namespace; a socket whose session closed for
 * a recoverable reason moves into the session's ghost ('~' + sid, state
 * 2, expires_at = the end of the window) with its rooms, data and event
 * rows; a CONNECT with its pid moves it back. */

/* The next event offset: max(previous + 1, now * 1000), store-wide and
 * increasing with the commit order (inside the write transaction). > 0,
 * or -1. */
int64_t sg_store_eid_next(sg_store *s, int64_t now);
/* sg_store_queue_push for a frame of a recoverable event of nsp
 * (borrowed) with offset eid. Returns its seq or -1. */
int64_t sg_store_queue_push_eid(sg_store *s, const char *sid, bool binary, const void *frame,
                                size_t len, const char *nsp, int64_t eid);
/* Give socket id its private id pid (borrowed). 0 or -1. */
int sg_store_socket_set_pid(sg_store *s, const char *id, const char *pid);
/* Socket id of session sid on nsp becomes a ghost's (created with
 * expires_at = until, or extended to it): it keeps its rooms and data,
 * and sid's event rows of nsp go with it. 0 or -1. */
int sg_store_socket_ghost(sg_store *s, const char *id, const char *sid, const char *nsp,
                          int64_t now, int64_t until);
/* The socket whose pid is pid: its id (id[SG_ID_LEN + 1]), session (sid,
 * sidcap bytes: a ghost's is '~' + SG_ID_LEN), namespace, the session's
 * state and expires_at. 0, SG_STORE_NOTFOUND or -1. */
int sg_store_socket_by_pid(sg_store *s, const char *pid, char *id, char *sid, size_t sidcap,
                           char *nsp, size_t nspcap, int *state, int64_t *until);
/* Move socket id from ghost to session sid, queue for sid the ghost's
 * event rows of nsp with an offset above offset (-1: all), in order, and
 * drop the rest; the ghost goes when it has no socket left. Returns the
 * number of frames queued, or -1. */
int sg_store_socket_restore(sg_store *s, const char *id, const char *ghost, const char *sid,
                            const char *nsp, int64_t offset);
/* sg_store_queue_trim that keeps the event rows with eid >= keep_from
 * (a WebSocket's frames are written, not yet known to have arrived). */
int sg_store_queue_trim_kept(sg_store *s, const char *sid, int64_t upto, int64_t keep_from);
/* Delete the ghosts whose window ended before now, with their sockets,
 * rooms and rows (also once recovery_window was turned off: nothing is
 * left behind). One index lookup when there are none. Returns the number
 * of ghosts deleted, or -1. */
int sg_store_ghosts_purge(sg_store *s, int64_t now);

#endif
