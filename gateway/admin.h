/* admin.h - the store queries of the gateway CLI that the engine does not
 * offer: listing sockets and rooms, statistics, joining and leaving rooms
 * on behalf of sockets.
 *
 * An sg_admin is one connection of its own to the store the db value
 * names (sg_store_is_pg: a PostgreSQL connection string, else a SQLite
 * file path), never creating the store nor migrating it (that is
 * `siogate init`'s job), waiting at most SG_ADMIN_LOCK_MS for a lock
 * another process holds (SG_ADMIN_BUSY). Prepared statements (or
 * statements with bound parameters) only; every value is bound. Reads
 * run in one read transaction (a consistent snapshot: SQLite's WAL
 * readers, PostgreSQL's REPEATABLE READ READ ONLY, never wait for
 * writers); writes in one write transaction (SQLite's BEGIN IMMEDIATE,
 * PostgreSQL's BEGIN with the store's single-writer advisory lock).
 *
 * SQLite: admin_sqlite.c; PostgreSQL: admin_pg.c (admin_int.h).
 *
 * Nothing here logs: a failing call returns a code and leaves a message
 * ("what happened", no advice) in sg_admin_error(), for the caller to
 * word. Messages never hold the password of a connection string. One
 * thread at a time per sg_admin.
 *
 * Only sockets of open sessions count as live: the rows of a closed
 * session that a server has not yet removed are never shown nor joined. */
#ifndef SG_ADMIN_H
#define SG_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/* Results (0 or a positive count means success where noted). */
#define SG_ADMIN_OK 0
#define SG_ADMIN_ERR (-1)       /* any other failure (message in sg_admin_error) */
#define SG_ADMIN_BUSY (-2)      /* the store stayed locked past SG_ADMIN_LOCK_MS */
#define SG_ADMIN_MISSING (-3)   /* open: no store file at that path (SQLite); cannot
                                   connect to the database (PostgreSQL) */
#define SG_ADMIN_SCHEMA (-4)    /* open: the store's schema is not this program's */
#define SG_ADMIN_NOTFOUND (-5)  /* no such (live) socket */
#define SG_ADMIN_NOT_APPLICABLE (-6) /* checkpoint: the store has no WAL of ours
                                        (PostgreSQL checkpoints its own) */

/* How long a call waits for a lock held by another process. */
#define SG_ADMIN_LOCK_MS 10000

typedef struct sg_admin sg_admin;

/* Open the store path names (a file path or a PostgreSQL connection
 * string). On success *out is the connection; otherwise *out is NULL and a
 * message "what happened" is written into err. Returns SG_ADMIN_OK,
 * SG_ADMIN_MISSING (the file does not exist; PostgreSQL: the connection
 * failed, libpq's reason in err), SG_ADMIN_SCHEMA (not initialised, older
 * or newer than this program: *version tells which, 0 for a database
 * without siogate's tables, when not NULL), SG_ADMIN_BUSY or
 * SG_ADMIN_ERR. */
int sg_admin_open(const char *path, sg_admin **out, int *version, char *err, size_t errcap);
void sg_admin_close(sg_admin *a);

typedef struct sg_store sg_store;
/* A store (store.h) on a's connection, for the engine calls of the same
 * process: one connection and one schema read instead of two. The caller
 * owns it and closes it (sg_store_close) before sg_admin_close(a); a and
 * the store are used one call at a time. NULL on failure (logged). */
sg_store *sg_admin_store(sg_admin *a);

/* The message of the last failure (borrowed; "" when none). */
const char *sg_admin_error(const sg_admin *a);

/* The live sockets of namespace nsp (NULL: every namespace) that are
 * members of room (NULL: any), ordered by namespace, then age. *out gets
 * a new JSON array of
 *   {"id", "nsp", "sid", "transport", "rooms": [own id first, then the
 *    others sorted], "data": socket.data or null, "connected_at": ms}
 * and, with details, "handshake": {address, url, query, headers, time}
 * (as plugins see it). Returns the count or a negative result. */
int sg_admin_sockets(sg_admin *a, const char *nsp, const char *room, bool details,
                     json_t **out);

/* The rooms of nsp (NULL: every namespace) that have live members, the
 * rooms named after a socket's own id excluded: *out gets a new JSON array
 * of {"nsp", "room", "members"} ordered by namespace and name. Returns the
 * count or a negative result. */
int sg_admin_rooms(sg_admin *a, const char *nsp, json_t **out);

/* The namespace of a live socket, copied into nsp[0..cap). SG_ADMIN_OK,
 * SG_ADMIN_NOTFOUND, or a negative result. */
int sg_admin_socket_nsp(sg_admin *a, const char *socket_id, char *nsp, size_t cap);

/* One selection of sockets for sg_admin_rooms_change(): a single socket
 * (socket_id set; nsp, when set, must be its namespace) or the live
 * members of room from_room in nsp (NULL: in every namespace, each socket
 * acting in its own namespace). */
typedef struct sg_admin_sel {
    const char *socket_id;
    const char *from_room;
    const char *nsp;
} sg_admin_sel;

/* Make the selected sockets join (or, join false, leave) every room of
 * rooms (NULL-terminated), in one transaction. A socket never leaves the
 * room named by its own id (that request is skipped). *affected gets the
 * number of distinct sockets selected. SG_ADMIN_OK, SG_ADMIN_NOTFOUND (a
 * selected single socket is not live: nothing was changed), or a negative
 * result. No packets are queued, but a socket's pending broadcast log rows
 * become its session's own rows first (sg_store_bcast_settle): *settled
 * gets the number of sessions that happened to (ring them). */
int sg_admin_rooms_change(sg_admin *a, bool join, const sg_admin_sel *sel, size_t nsel,
                          const char *const *rooms, int *affected, int *settled);

/* Figures about the store: *out gets a new JSON object
 *   {"sessions": {"open", "closed", "polling", "websocket"},
 *    "sockets": {"total", "namespaces": {NSP: {"polling", "websocket"}}},
 *    "rooms": count of named rooms with live members,
 *    "queue": {"frames", "bytes"},         frames queued, sent or not
 *    "acks": {"pending"},                   server-to-client acks awaited
 *    "store": {"path", "schema", "db_bytes", "wal_bytes", "shm_bytes",
 *              "total_bytes"}}
 * ("polling"/"websocket" of sessions count open sessions). SG_ADMIN_OK or
 * a negative result. */
int sg_admin_stats(sg_admin *a, json_t **out);
/* On PostgreSQL "store" is {"path": the connection string as
 * sg_admin_db_shown shows it, "schema", "db_bytes": the size of siogate's
 * tables with their indexes and TOAST (pg_total_relation_size), and
 * "total_bytes": the same}: the server's WAL and the rest of the database
 * are not siogate's to count, so there is no wal_bytes nor shm_bytes. */

/* A passive WAL checkpoint (never waits for readers or writers): *done and
 * *total get the frames checkpointed and in the WAL (-1 when not in WAL
 * mode). SG_ADMIN_OK or a negative result; on PostgreSQL, whose server
 * checkpoints its own WAL, SG_ADMIN_NOT_APPLICABLE (nothing was done). */
int sg_admin_checkpoint(sg_admin *a, int *done, int *total);

/* db (a config's db value, borrowed) as it may be shown in a message or
 * an output, into out[0..cap): a file path as it is; a PostgreSQL
 * connection string with its password (if any) replaced by "***"
 * wherever libpq would find one. */
void sg_admin_db_shown(const char *db, char *out, size_t cap);
/* text (borrowed) as it may be shown when db names a PostgreSQL store: a
 * new string (the caller frees it; NULL on ENOMEM) where db itself reads
 * as sg_admin_db_shown shows it and the password libpq finds in db as
 * "***" (when at least SG_ADMIN_SCRUB_MIN bytes long: a shorter one would
 * mask ordinary words). For what others logged (the store's, the
 * doorbell's and the plugins' lines the CLI passes on). */
#define SG_ADMIN_SCRUB_MIN 4
char *sg_admin_scrub(const char *db, const char *text);

#endif
