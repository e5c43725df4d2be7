/* store_int.h - the interface every store implements (store.h is what
 * its callers see). An implementation defines a struct whose first member
 * is an sg_store, and a table of these functions; store.c dispatches each
 * sg_store_X(s, ...) to s->ops->X(s, ...). Every function has the meaning
 * and the ownership store.h gives sg_store_X; close frees the store.
 *
 * Two implementations: store_sqlite.c (a file path; the default) and
 * store_pg.c (a PostgreSQL connection string). */
#ifndef SG_STORE_INT_H
#define SG_STORE_INT_H

#include <libpq-fe.h>

#include "store.h"

typedef struct sg_store_ops {
    int (*version)(sg_store *s);
    int (*begin)(sg_store *s);
    int (*commit)(sg_store *s);
    void (*rollback)(sg_store *s);
    int (*batch_begin)(sg_store *s);
    int (*batch_end)(sg_store *s);
    int (*session_insert)(sg_store *s, const sg_session *ss, const char *handshake);
    int (*session_get)(sg_store *s, const char *sid, sg_session *out);
    int (*session_update)(sg_store *s, const sg_session *ss);
    int (*session_update_hot)(sg_store *s, const sg_session *ss);
    json_t *(*session_handshake)(sg_store *s, const char *sid);
    int (*session_close)(sg_store *s, const char *sid, const char *reason, int64_t now);
    int (*sessions_expired)(sg_store *s, int64_t now, int max, sg_sid_fn fn, void *ud);
    int (*changed_since)(sg_store *s, int64_t *mark, const char *const *among, size_t n,
                         sg_sid_fn fn, void *ud);
    int (*sessions_purge)(sg_store *s, int64_t before);
    int64_t (*queue_push_as)(sg_store *s, const char *sid, bool binary, bool is_volatile,
                             const void *frame, size_t len);
    /* optional: NULL is queue_push_as without its seq */
    int (*queue_add)(sg_store *s, const char *sid, bool binary, bool is_volatile,
                     const void *frame, size_t len);
    int64_t (*queue_count)(sg_store *s, const char *sid, int64_t after, int64_t cap);
    int (*queue_shed)(sg_store *s, const char *sid, int64_t after);
    int (*queue_read)(sg_store *s, const char *sid, int64_t after, size_t max_bytes,
                      sg_frame_fn fn, void *ud, int64_t *last);
    int (*queue_trim)(sg_store *s, const char *sid, int64_t upto);
    int (*queue_drop)(sg_store *s, const char *sid);
    int (*queue_pending)(sg_store *s, const char *sid, int64_t after);
    int64_t (*bcast_push)(sg_store *s, const char *nsp, const char *rooms, const char *except,
                          const char *skip, bool binary, const void *frame, size_t len);
    int (*targets_all)(sg_store *s, const char *nsp, const char *rooms, const char *except,
                       const char *skip, sg_target_fn fn, void *ud);
    int (*targets_count)(sg_store *s, const char *nsp, const char *rooms, const char *except,
                         const char *skip);
    int64_t (*bcast_max)(sg_store *s);
    int (*stream_read)(sg_store *s, const char *sid, int64_t after, int64_t *bseen,
                       size_t max_bytes, sg_frame_fn fn, void *ud, int64_t *last, bool *cut);
    int (*stream_pending)(sg_store *s, const char *sid, int64_t after, int64_t bafter);
    int (*bcast_settle)(sg_store *s, const char *sid, int64_t sent_upto, int64_t *bseen,
                        bool *moved);
    int (*bcast_sessions)(sg_store *s, int64_t after, int64_t upto, const char *const *among,
                          size_t n, sg_sid_fn fn, void *ud);
    int (*bcast_gc)(sg_store *s, int64_t upto);
    int (*socket_insert)(sg_store *s, const char *id, const char *sid, const char *nsp,
                         int64_t now);
    int (*socket_find)(sg_store *s, const char *sid, const char *nsp, char *id);
    int (*socket_delete)(sg_store *s, const char *id);
    int (*sockets_of)(sg_store *s, const char *sid, sg_socket_fn fn, void *ud);
    int (*room_join)(sg_store *s, const char *nsp, const char *room, const char *socket_id);
    int (*room_leave)(sg_store *s, const char *nsp, const char *room, const char *socket_id);
    int (*targets)(sg_store *s, const char *nsp, const char *rooms, const char *except,
                   const char *skip, sg_target_fn fn, void *ud);
    int (*socket_get)(sg_store *s, const char *id, char *sid, char *nsp, size_t nspcap,
                      json_t **data);
    json_t *(*socket_rooms)(sg_store *s, const char *id);
    int (*socket_data_set)(sg_store *s, const char *id, const char *json);
    int64_t (*ack_next)(sg_store *s, const char *socket_id);
    int (*ack_insert)(sg_store *s, const char *socket_id, int64_t id, const char *sid,
                      const char *nsp, const char *name, int64_t deadline, const char *data);
    int (*ack_take)(sg_store *s, const char *socket_id, int64_t id, sg_buf *out);
    int (*acks_expired)(sg_store *s, int64_t now, int max, sg_expired_ack_fn fn, void *ud);
    int (*reply_insert)(sg_store *s, const char *name, const char *socket_id, const char *args,
                        int64_t at);
    int (*replies_take)(sg_store *s, const char *name, sg_reply_fn fn, void *ud);
    int (*acks_forget)(sg_store *s, const char *name);
    int64_t (*scalar)(sg_store *s, const char *sql);
    int64_t (*sessions_open)(sg_store *s);
    int64_t (*sockets_count)(sg_store *s, const char *sid);
    int (*rate_take)(sg_store *s, const char *address, int64_t rate, int64_t now);
    int (*rate_purge)(sg_store *s, int64_t before);
    int64_t (*eid_next)(sg_store *s, int64_t now);
    int64_t (*queue_push_eid)(sg_store *s, const char *sid, bool binary, const void *frame,
                              size_t len, const char *nsp, int64_t eid);
    int (*socket_set_pid)(sg_store *s, const char *id, const char *pid);
    int (*socket_ghost)(sg_store *s, const char *id, const char *sid, const char *nsp,
                        int64_t now, int64_t until);
    int (*socket_by_pid)(sg_store *s, const char *pid, char *id, char *sid, size_t sidcap,
                         char *nsp, size_t nspcap, int *state, int64_t *until);
    int (*socket_restore)(sg_store *s, const char *id, const char *ghost, const char *sid,
                          const char *nsp, int64_t offset);
    int (*queue_trim_kept)(sg_store *s, const char *sid, int64_t upto, int64_t keep_from);
    int (*ghosts_purge)(sg_store *s, int64_t now);
    void (*close)(sg_store *s);
} sg_store_ops;

struct sg_store {
    const sg_store_ops *ops;
};

/* The SQLite store on the file at path (store_sqlite.c). NULL on failure
 * (logged). */
sg_store *sg_store_sqlite_open(const char *path);
/* The number of migrations of schema/ compiled in. */
int sg_store_sqlite_latest_version(void);
/* Appends the session ids among[0..n) to b as one query parameter: a JSON
 * array (json) or a PostgreSQL array literal; ids that are not valid
 * session ids are left out. 0, or -1 out of memory. */
int sg_store_id_list(sg_buf *b, const char *const *among, size_t n, bool json);

/* sg_store_checkpointer_start for a SQLite path. */
int sg_store_sqlite_checkpointer_start(const char *path);

/* The PostgreSQL store (store_pg.c) on a new connection to conninfo (any
 * libpq connection string; borrowed), migrated to the latest schema of
 * schema/pg/. NULL on failure (logged, without the password). */
sg_store *sg_store_pg_open(const char *conninfo);
/* A PostgreSQL store on conn, a connection the caller opened at the
 * current schema and keeps open until after sg_store_close (which then
 * leaves it open); conninfo (borrowed) only names it in logs. No
 * migration, no setting changed: the caller sets lock_timeout as it
 * wants (sg_store_pg_open sets '10s'). sg_store_begin sends BEGIN and
 * takes the writers' lock at once, so the caller's own statements until
 * sg_store_commit are inside that transaction. For the CLI, like
 * sg_store_borrow. NULL on failure (logged). */
sg_store *sg_store_pg_borrow(PGconn *conn, const char *conninfo);
/* The number of migrations of schema/pg/ compiled in. */
int sg_store_pg_latest_version(void);

#endif
