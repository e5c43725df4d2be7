/* store.c - the store interface: picks the implementation a `db` value
 * names and dispatches every call to it. See store.h and store_int.h. */
#include "store_int.h"

#include <string.h>

#include "util.h"

void sg_session_clear(sg_session *ss) { sg_buf_free(&ss->partial); }

bool sg_store_is_pg(const char *db)
{
    static const char *const prefixes[] = {
        "postgresql://", "postgres://", "host=", "hostaddr=", "dbname=",
        "user=", "port=", "service=", "password=",
    };
    if (!db)
        return false;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (!strncmp(db, prefixes[i], strlen(prefixes[i])))
            return true;
    return false;
}

sg_store *sg_store_open(const char *db)
{
    return sg_store_is_pg(db) ? sg_store_pg_open(db) : sg_store_sqlite_open(db);
}

int sg_store_latest_version(const char *db)
{
    return sg_store_is_pg(db) ? sg_store_pg_latest_version() : sg_store_sqlite_latest_version();
}

int sg_store_checkpointer_start(const char *db)
{
    /* PostgreSQL checkpoints on its own */
    return sg_store_is_pg(db) ? 0 : sg_store_sqlite_checkpointer_start(db);
}

void sg_store_close(sg_store *s)
{
    if (s)
        s->ops->close(s);
}

int64_t sg_store_queue_push(sg_store *s, const char *sid, bool binary, const void *frame,
                            size_t len)
{
    return s->ops->queue_push_as(s, sid, binary, false, frame, len);
}

int sg_store_version(sg_store *s) { return s->ops->version(s); }
int sg_store_begin(sg_store *s) { return s->ops->begin(s); }
int sg_store_commit(sg_store *s) { return s->ops->commit(s); }
void sg_store_rollback(sg_store *s) { s->ops->rollback(s); }
int sg_store_batch_begin(sg_store *s) { return s->ops->batch_begin(s); }
int sg_store_batch_end(sg_store *s) { return s->ops->batch_end(s); }

int sg_store_session_insert(sg_store *s, const sg_session *ss, const char *handshake)
{
    return s->ops->session_insert(s, ss, handshake);
}

int sg_store_session_get(sg_store *s, const char *sid, sg_session *out)
{
    return s->ops->session_get(s, sid, out);
}

int sg_store_session_update(sg_store *s, const sg_session *ss)
{
    return s->ops->session_update(s, ss);
}

int sg_store_session_update_hot(sg_store *s, const sg_session *ss)
{
    return s->ops->session_update_hot(s, ss);
}

json_t *sg_store_session_handshake(sg_store *s, const char *sid)
{
    return s->ops->session_handshake(s, sid);
}

int sg_store_session_close(sg_store *s, const char *sid, const char *reason, int64_t now)
{
    return s->ops->session_close(s, sid, reason, now);
}

int sg_store_sessions_expired(sg_store *s, int64_t now, int max, sg_sid_fn fn, void *ud)
{
    return s->ops->sessions_expired(s, now, max, fn, ud);
}

int sg_store_changed_since(sg_store *s, int64_t *mark, const char *const *among, size_t n,
                           sg_sid_fn fn, void *ud)
{
    return s->ops->changed_since(s, mark, among, n, fn, ud);
}

int sg_store_sessions_purge(sg_store *s, int64_t before)
{
    return s->ops->sessions_purge(s, before);
}

int64_t sg_store_queue_push_as(sg_store *s, const char *sid, bool binary, bool is_volatile,
                               const void *frame, size_t len)
{
    return s->ops->queue_push_as(s, sid, binary, is_volatile, frame, len);
}

int sg_store_queue_add(sg_store *s, const char *sid, bool binary, bool is_volatile,
                       const void *frame, size_t len)
{
    if (s->ops->queue_add)
        return s->ops->queue_add(s, sid, binary, is_volatile, frame, len);
    return s->ops->queue_push_as(s, sid, binary, is_volatile, frame, len) < 0 ? -1 : 0;
}

int64_t sg_store_queue_count(sg_store *s, const char *sid, int64_t after, int64_t cap)
{
    return s->ops->queue_count(s, sid, after, cap);
}

int sg_store_queue_shed(sg_store *s, const char *sid, int64_t after)
{
    return s->ops->queue_shed(s, sid, after);
}

int sg_store_queue_read(sg_store *s, const char *sid, int64_t after, size_t max_bytes,
                        sg_frame_fn fn, void *ud, int64_t *last)
{
    return s->ops->queue_read(s, sid, after, max_bytes, fn, ud, last);
}

int sg_store_queue_trim(sg_store *s, const char *sid, int64_t upto)
{
    return s->ops->queue_trim(s, sid, upto);
}

int sg_store_queue_drop(sg_store *s, const char *sid) { return s->ops->queue_drop(s, sid); }

int sg_store_queue_pending(sg_store *s, const char *sid, int64_t after)
{
    return s->ops->queue_pending(s, sid, after);
}

int64_t sg_store_bcast_push(sg_store *s, const char *nsp, const char *rooms, const char *except,
                            const char *skip, bool binary, const void *frame, size_t len)
{
    return s->ops->bcast_push(s, nsp, rooms, except, skip, binary, frame, len);
}

int sg_store_targets_all(sg_store *s, const char *nsp, const char *rooms, const char *except,
                         const char *skip, sg_target_fn fn, void *ud)
{
    return s->ops->targets_all(s, nsp, rooms, except, skip, fn, ud);
}

int sg_store_targets_count(sg_store *s, const char *nsp, const char *rooms, const char *except,
                           const char *skip)
{
    return s->ops->targets_count(s, nsp, rooms, except, skip);
}

int64_t sg_store_bcast_max(sg_store *s) { return s->ops->bcast_max(s); }

int sg_store_stream_read(sg_store *s, const char *sid, int64_t after, int64_t *bseen,
                         size_t max_bytes, sg_frame_fn fn, void *ud, int64_t *last, bool *early)
{
    bool cut = false;
    int n = s->ops->stream_read(s, sid, after, bseen, max_bytes, fn, ud, last, &cut);
    if (early)
        *early = cut;
    return n;
}

int sg_store_stream_pending(sg_store *s, const char *sid, int64_t after, int64_t bafter)
{
    return s->ops->stream_pending(s, sid, after, bafter);
}

int sg_store_bcast_settle(sg_store *s, const char *sid, int64_t sent_upto, int64_t *bseen,
                          bool *moved)
{
    return s->ops->bcast_settle(s, sid, sent_upto, bseen, moved);
}

int sg_store_bcast_sessions(sg_store *s, int64_t after, int64_t upto, const char *const *among,
                            size_t n, sg_sid_fn fn, void *ud)
{
    return s->ops->bcast_sessions(s, after, upto, among, n, fn, ud);
}

int sg_store_bcast_gc(sg_store *s, int64_t upto) { return s->ops->bcast_gc(s, upto); }

int sg_store_socket_insert(sg_store *s, const char *id, const char *sid, const char *nsp,
                           int64_t now)
{
    return s->ops->socket_insert(s, id, sid, nsp, now);
}

int sg_store_socket_find(sg_store *s, const char *sid, const char *nsp, char *id)
{
    return s->ops->socket_find(s, sid, nsp, id);
}

int sg_store_socket_delete(sg_store *s, const char *id) { return s->ops->socket_delete(s, id); }

int sg_store_sockets_of(sg_store *s, const char *sid, sg_socket_fn fn, void *ud)
{
    return s->ops->sockets_of(s, sid, fn, ud);
}

int sg_store_room_join(sg_store *s, const char *nsp, const char *room, const char *socket_id)
{
    return s->ops->room_join(s, nsp, room, socket_id);
}

int sg_store_room_leave(sg_store *s, const char *nsp, const char *room, const char *socket_id)
{
    return s->ops->room_leave(s, nsp, room, socket_id);
}

int sg_store_targets(sg_store *s, const char *nsp, const char *rooms, const char *except,
                     const char *skip, sg_target_fn fn, void *ud)
{
    return s->ops->targets(s, nsp, rooms, except, skip, fn, ud);
}

int sg_store_socket_get(sg_store *s, const char *id, char *sid, char *nsp, size_t nspcap,
                        json_t **data)
{
    return s->ops->socket_get(s, id, sid, nsp, nspcap, data);
}

json_t *sg_store_socket_rooms(sg_store *s, const char *id) { return s->ops->socket_rooms(s, id); }

int sg_store_socket_data_set(sg_store *s, const char *id, const char *json)
{
    return s->ops->socket_data_set(s, id, json);
}

int64_t sg_store_ack_next(sg_store *s, const char *socket_id)
{
    return s->ops->ack_next(s, socket_id);
}

int sg_store_ack_insert(sg_store *s, const char *socket_id, int64_t id, const char *sid,
                        const char *nsp, const char *name, int64_t deadline, const char *data)
{
    return s->ops->ack_insert(s, socket_id, id, sid, nsp, name, deadline, data);
}

int sg_store_ack_take(sg_store *s, const char *socket_id, int64_t id, sg_buf *out)
{
    return s->ops->ack_take(s, socket_id, id, out);
}

int sg_store_acks_expired(sg_store *s, int64_t now, int max, sg_expired_ack_fn fn, void *ud)
{
    return s->ops->acks_expired(s, now, max, fn, ud);
}

int sg_store_reply_insert(sg_store *s, const char *name, const char *socket_id, const char *args,
                          int64_t at)
{
    return s->ops->reply_insert(s, name, socket_id, args, at);
}

int sg_store_replies_take(sg_store *s, const char *name, sg_reply_fn fn, void *ud)
{
    return s->ops->replies_take(s, name, fn, ud);
}

int sg_store_acks_forget(sg_store *s, const char *name) { return s->ops->acks_forget(s, name); }
int64_t sg_store_scalar(sg_store *s, const char *sql) { return s->ops->scalar(s, sql); }
int64_t sg_store_sessions_open(sg_store *s) { return s->ops->sessions_open(s); }

int64_t sg_store_sockets_count(sg_store *s, const char *sid)
{
    return s->ops->sockets_count(s, sid);
}

int sg_store_rate_take(sg_store *s, const char *address, int64_t rate, int64_t now)
{
    return s->ops->rate_take(s, address, rate, now);
}

int sg_store_rate_purge(sg_store *s, int64_t before) { return s->ops->rate_purge(s, before); }
int64_t sg_store_eid_next(sg_store *s, int64_t now) { return s->ops->eid_next(s, now); }

int64_t sg_store_queue_push_eid(sg_store *s, const char *sid, bool binary, const void *frame,
                                size_t len, const char *nsp, int64_t eid)
{
    return s->ops->queue_push_eid(s, sid, binary, frame, len, nsp, eid);
}

int sg_store_socket_set_pid(sg_store *s, const char *id, const char *pid)
{
    return s->ops->socket_set_pid(s, id, pid);
}

int sg_store_socket_ghost(sg_store *s, const char *id, const char *sid, const char *nsp,
                          int64_t now, int64_t until)
{
    return s->ops->socket_ghost(s, id, sid, nsp, now, until);
}

int sg_store_socket_by_pid(sg_store *s, const char *pid, char *id, char *sid, size_t sidcap,
                           char *nsp, size_t nspcap, int *state, int64_t *until)
{
    return s->ops->socket_by_pid(s, pid, id, sid, sidcap, nsp, nspcap, state, until);
}

int sg_store_socket_restore(sg_store *s, const char *id, const char *ghost, const char *sid,
                            const char *nsp, int64_t offset)
{
    return s->ops->socket_restore(s, id, ghost, sid, nsp, offset);
}

int sg_store_queue_trim_kept(sg_store *s, const char *sid, int64_t upto, int64_t keep_from)
{
    return s->ops->queue_trim_kept(s, sid, upto, keep_from);
}

int sg_store_ghosts_purge(sg_store *s, int64_t now) { return s->ops->ghosts_purge(s, now); }

int sg_store_id_list(sg_buf *b, const char *const *among, size_t n, bool json)
{
    bool first = true;
    if (sg_buf_putc(b, json ? '[' : '{') < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!sg_id_valid(among[i]))
            continue;
        if ((!first && sg_buf_putc(b, ',') < 0) || (json && sg_buf_putc(b, '"') < 0) ||
            sg_buf_puts(b, among[i]) < 0 || (json && sg_buf_putc(b, '"') < 0))
            return -1;
        first = false;
    }
    return sg_buf_putc(b, json ? ']' : '}');
}
