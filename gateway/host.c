/* host.c - the plugin host: the sg_host function table that plugins call,
 * and the calls into plugin handlers. See plugin.h for the contract.
 *
 * Handlers run inside the transaction of the request that triggered them;
 * everything they emit is queued in that transaction. A host call without
 * a context (a plugin's own thread) runs in a transaction of its own, on a
 * store connection kept per thread. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "log.h"
#include "util.h"

/* The engine of this process, for host calls made without a context. */
static sg_engine *host_engine;
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void tls_free(void *w) { sg_worker_free(w); }
static void tls_make(void) { pthread_key_create(&tls_key, tls_free); }

/* The worker whose transaction is open on this thread, if any. */
static _Thread_local sg_worker *tls_current;

void eng_tx_enter(sg_worker *w)
{
    w->in_tx = true;
    tls_current = w;
}

void eng_tx_leave(sg_worker *w)
{
    w->in_tx = false;
    if (tls_current == w)
        tls_current = NULL;
}

/* The worker for a host call without a context: the one whose transaction
 * is open on this thread (a handler that passed no ctx: a second store
 * connection would wait for the lock this thread holds), else the thread's
 * own, created on first use (a plugin's thread or timer). */
static sg_worker *thread_worker(void)
{
    if (tls_current)
        return tls_current;
    pthread_once(&tls_once, tls_make);
    sg_worker *w = pthread_getspecific(tls_key);
    if (!w && host_engine && (w = sg_worker_new(host_engine)))
        pthread_setspecific(tls_key, w);
    return w;
}

/* ---- transactions ---------------------------------------------------------- */

int eng_tx_begin(sg_worker *w, bool *own)
{
    *own = false;
    if (w->in_tx)
        return 0;
    if (sg_store_begin(w->store) != 0)
        return -1;
    eng_tx_enter(w);
    *own = true;
    return 0;
}

int eng_tx_end(sg_worker *w, bool own, int ok)
{
    if (!own)
        return ok ? 0 : -1;
    eng_tx_leave(w);
    if (ok && sg_store_commit(w->store) == 0) {
        eng_ring_dirty(w);
        return 0;
    }
    sg_store_rollback(w->store);
    if (!w->batch)
        eng_forget_dirty(w);
    return -1;
}

/* ---- contexts --------------------------------------------------------------- */

void eng_ctx_init(sg_ctx *c, sg_worker *w, const char *sid, const char *socket_id,
                  const char *nsp)
{
    memset(c, 0, sizeof *c);
    c->w = w;
    c->sid = sid;
    c->socket_id = socket_id;
    c->nsp = nsp;
    c->ack_id = -1;
}

void eng_ctx_clear(sg_ctx *c)
{
    free(c->reject_message);
    json_decref(c->reject_data);
    json_decref(c->handshake);
}

static const char *plugin_name(sg_ctx *c)
{
    return sg_plugins_name(c->w->e->reg, c->plugin);
}

static void host_log(sg_ctx *c, int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c)
        sg_log(level, "plugin %s: %s", plugin_name(c), msg);
    else
        sg_log(level, "plugin: %s", msg);
}

/* The names a plugin passes (namespaces, rooms) are text: the store keeps
 * them as such, and PostgreSQL's refuses other bytes (SQLite's would keep
 * a room that rooms() and fetch_sockets() could then not list). So a name
 * that is not UTF-8 is refused here, on either store alike, as a misuse
 * of the call (logged, -1 or NULL), not as a failure of the handler's
 * transaction. */
static bool is_text(const char *s) { return sg_utf8_valid(s, strlen(s)); }

/* What is not UTF-8 text among a namespace and two room lists (each may
 * be NULL), or NULL when all are. */
static const char *not_text(const char *nsp, const char *const *rooms, const char *const *except)
{
    if (nsp && !is_text(nsp))
        return "the namespace is not UTF-8 text";
    for (const char *const *l = rooms; l && *l; l++)
        if (!is_text(*l))
            return "a room name is not UTF-8 text";
    for (const char *const *l = except; l && *l; l++)
        if (!is_text(*l))
            return "a room name in except is not UTF-8 text";
    return NULL;
}

/* Why the arguments a plugin gives cannot be sent (sg_sio_unsendable), as
 * a log line's end, or NULL. Checked before anything is written, so that
 * such a call fails alone instead of the handler's transaction. */
static const char *args_bad(const json_t *data, char *buf, size_t cap)
{
    const char *why = sg_sio_unsendable(data);
    if (!why)
        return NULL;
    snprintf(buf, cap, "the arguments hold %s", why);
    return buf;
}

/* A JSON array text of a NULL-terminated list (new), or NULL when the list
 * is NULL or empty. *bad is set on failure. */
static char *list_json(const char *const *list, bool *bad)
{
    if (!list || !list[0])
        return NULL;
    json_t *a = json_array();
    for (size_t i = 0; a && list[i]; i++)
        if (json_array_append_new(a, json_string(list[i])) < 0) {
            json_decref(a);
            a = NULL;
        }
    char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    if (!text)
        *bad = true;
    return text;
}

/* ---- context accessors -------------------------------------------------------- */

static const char *host_socket_id(sg_ctx *c) { return c->socket_id; }
static const char *host_nsp(sg_ctx *c) { return c->nsp; }
static int host_recovered(sg_ctx *c) { return c && c->recovered ? 1 : 0; }

static json_t *host_handshake(sg_ctx *c)
{
    if (!c->handshake)
        c->handshake = sg_store_session_handshake(c->w->store, c->sid);
    return c->handshake;
}

static json_t *host_binary_new(const void *data, size_t len) { return sg_sio_binary_new(data, len); }
static const void *host_binary_data(const json_t *v, size_t *len) { return sg_sio_binary_data(v, len); }

/* ---- emitting ------------------------------------------------------------------- */

/* data = [event, ...args]; args stolen. NULL on bad arguments
 * (event_bad names them). */
static json_t *event_array(const char *event, json_t *args)
{
    json_t *data = NULL;
    if (!event || (args && !json_is_array(args)))
        goto out;
    data = json_array();
    if (!data || json_array_append_new(data, json_string(event)) < 0 ||
        (args && json_array_extend(data, args) < 0)) {
        json_decref(data);
        data = NULL;
    }
out:
    json_decref(args);
    return data;
}

/* Why event_array gave NULL for event (or out of memory). */
static const char *event_bad(const char *event)
{
    return !event ? "no event name"
           : !is_text(event) ? "the event name is not UTF-8 text"
                             : "bad arguments (args must be an array)";
}

/* event as a log line may show it */
static const char *event_shown(const char *event)
{
    return !event ? "(null)" : is_text(event) ? event : "?";
}

static int host_emit(sg_ctx *c, const char *event, json_t *args)
{
    json_t *data = event_array(event, args);
    char buf[96];
    const char *bad = c->gone ? NULL : args_bad(data, buf, sizeof buf);
    if (!data || c->gone || bad) {
        host_log(c, SG_LOG_ERROR, "emit '%s': %s", event_shown(event),
                 !data ? event_bad(event) : c->gone ? "the socket is gone" : bad);
        json_decref(data);
        return -1;
    }
    /* with recovery on it gets an offset and is kept, as the reference's
     * socket.emit then goes through the session-aware adapter */
    sg_encoded e;
    if (eng_encode_event(c->w, &e, c->nsp, data) < 0) {
        c->failed = 1;
        return -1;
    }
    int rc = eng_queue_encoded(c->w, c->sid, &e, false);
    eng_encoded_clear(&e);
    if (rc < 0) {
        c->failed = 1;
        return -1;
    }
    return 0;
}

/* One packet to every socket a target names, each recipient queued in the
 * same transaction (the caller's, or one of its own). With reply_to, each
 * is asked for an ack answered into that mailbox. */
struct fanout {
    sg_worker *w;
    const char *nsp;
    json_t *data;         /* the packet's data, binary values included */
    sg_encoded enc;       /* without acks: the packet, encoded once for all */
    bool encoded;
    unsigned flags;
    const char *reply_to; /* NULL: no ack asked */
    int64_t deadline;     /* of the acks asked */
    json_t *asked;        /* ids of the sockets asked, or NULL */
    int n, rc;
};

static void fanout_one(void *ud, const char *id, const char *sid, bool ready)
{
    struct fanout *f = ud;
    if (f->rc < 0 || ((f->flags & SG_EMIT_VOLATILE) && !ready))
        return;
    if (sid[0] == '~') {
        /* a recovery ghost (only listed for a recoverable event): it keeps
         * the event for its client, but is not counted as reached */
        if (f->encoded && f->enc.eid > 0 && eng_queue_encoded(f->w, sid, &f->enc, false) < 0)
            f->rc = -1;
        return;
    }
    int64_t ack = -1;
    if (f->reply_to &&
        ((ack = sg_store_ack_next(f->w->store, id)) < 0 ||
         sg_store_ack_insert(f->w->store, id, ack, sid, f->nsp, f->reply_to, f->deadline,
                             NULL) != 0)) {
        f->rc = -1;
        return;
    }
    /* Without an ack id every recipient gets the same frames: encoded once
     * (a broadcast to 1,000 sockets encoded its packet 1,000 times), marked
     * volatile if it is (max_queued_packets drops those first). With one,
     * data is shared: each queue_sio steals a reference (never marked: an
     * ack asked is awaited until its timeout, so the packet is kept). */
    bool vol = (f->flags & SG_EMIT_VOLATILE) != 0;
    int rc = f->encoded ? eng_queue_encoded(f->w, sid, &f->enc, vol)
                        : eng_queue_sio(f->w, sid, SG_SIO_EVENT, f->nsp, ack, json_incref(f->data));
    if (rc < 0 ||
        (f->asked && json_array_append_new(f->asked, json_string(id)) < 0))
        f->rc = -1;
    else
        f->n++;
}

/* Append one frame to the broadcast log for f's target. 0 or -1. */
static int log_frame(struct fanout *f, const char *rooms, const char *except, const char *skip,
                     bool binary, const void *frame, size_t len)
{
    sg_worker *w = f->w;
    int64_t seq = sg_store_bcast_push(w->store, f->nsp, rooms, except, skip, binary, frame, len);
    if (seq < 0)
        return -1;
    if (w->bcast_hi <= w->bcast_lo)
        w->bcast_lo = seq - 1;
    w->bcast_hi = seq;
    return 0;
}

/* The broadcast log instead of a row per recipient (see store.h): the
 * packet's frames once, with the target. The rings name no session: every
 * process looks up which of its sessions the rows name. */
static int log_out(struct fanout *f, const char *rooms, const char *except, const char *skip)
{
    sg_worker *w = f->w;
    if (log_frame(f, rooms, except, skip, false, f->enc.text.data, f->enc.text.len) < 0)
        return -1;
    size_t i;
    json_t *b;
    json_array_foreach(f->enc.bins, i, b) {
        size_t len;
        const void *bytes = sg_sio_binary_data(b, &len);
        if (log_frame(f, rooms, except, skip, true, bytes, len) < 0)
            return -1;
    }
    eng_mark_dirty(w, ENG_BELL_LOG);
    /* siogate-wsd's local fast path ends here for this request: its frames
     * written after the commit would overtake this broadcast */
    w->direct_sid = NULL;
    w->queued_own = true;
    return 0;
}

/* Run f over the sockets of t (skip: a socket id left out, or NULL).
 * Takes f->data. Returns the number reached, or -1. */
static int fan_out(sg_worker *w, const sg_target *t, const char *skip, struct fanout *f)
{
    bool bad = false, own;
    char *rooms = list_json(t ? t->rooms : NULL, &bad);
    char *except = list_json(t ? t->except : NULL, &bad);
    f->w = w;
    f->flags = t ? t->flags : 0;
    /* with recovery on, an event without ack that is not volatile gets an
     * offset (inside the transaction: offsets follow the commit order) and
     * goes to each recipient's rows, the ghosts' too; the broadcast log is
     * not used */
    bool recover = eng_recovery(w) && !f->reply_to && !(f->flags & SG_EMIT_VOLATILE);
    if (!bad && f->data && f->nsp && !f->reply_to && !recover) {
        if (eng_encode_sio(&f->enc, SG_SIO_EVENT, f->nsp, -1, json_incref(f->data)) < 0)
            bad = true;
        else
            f->encoded = true;
    }
    if (bad || !f->data || !f->nsp || eng_tx_begin(w, &own) < 0) {
        f->rc = -1;
    } else if (recover) {
        if (eng_encode_event(w, &f->enc, f->nsp, json_incref(f->data)) < 0) {
            f->rc = -1;
        } else {
            f->encoded = true;
            if (sg_store_targets_all(w->store, f->nsp, rooms, except, skip, fanout_one, f) < 0)
                f->rc = -1;
        }
        if (eng_tx_end(w, own, f->rc == 0) < 0)
            f->rc = -1;
    } else {
        /* without acks and not volatile (which depends on each session's
         * state at the emit), a broadcast to many is logged once; the
         * count is what emit_to returns */
        int n = f->encoded && !(f->flags & SG_EMIT_VOLATILE)
                    ? sg_store_targets_count(w->store, f->nsp, rooms, except, skip) : 0;
        if (n < 0) {
            f->rc = -1;
        } else if (n > 0 && n >= w->e->cfg->broadcast_log_min) {
            if (log_out(f, rooms, except, skip) < 0)
                f->rc = -1;
            else
                f->n = n;
        } else if (sg_store_targets(w->store, f->nsp, rooms, except, skip, fanout_one, f) < 0) {
            f->rc = -1;
        }
        if (eng_tx_end(w, own, f->rc == 0) < 0)
            f->rc = -1;
    }
    free(rooms);
    free(except);
    if (f->encoded)
        eng_encoded_clear(&f->enc);
    json_decref(f->data);
    return f->rc < 0 ? -1 : f->n;
}

/* Emit to a target; the transaction is the caller's (or its own). */
static int emit_target(sg_worker *w, sg_ctx *c, const sg_target *t, const char *event,
                       json_t *args)
{
    struct fanout f = {.data = event_array(event, args),
                       .nsp = t && t->nsp ? t->nsp : c ? c->nsp : NULL};
    const char *why = !f.data  ? event_bad(event)
                      : !f.nsp ? "no namespace"
                               : not_text(f.nsp, t ? t->rooms : NULL, t ? t->except : NULL);
    char buf[96];
    if (!why)
        why = args_bad(f.data, buf, sizeof buf);
    if (why) {
        host_log(c, SG_LOG_ERROR, "emit_to '%s': %s", event_shown(event), why);
        json_decref(f.data);
        return -1;
    }
    const char *skip = t && (t->flags & SG_EMIT_BROADCAST) && c ? c->socket_id : NULL;
    int n = fan_out(w, t, skip, &f);
    if (n < 0 && c)
        c->failed = 1;
    return n;
}

static int host_emit_to(sg_ctx *c, const sg_target *t, const char *event, json_t *args)
{
    sg_worker *w = c ? c->w : thread_worker();
    if (!w) {
        json_decref(args);
        return -1;
    }
    return emit_target(w, c, t, event, args);
}

int sg_engine_emit(sg_worker *w, const sg_target *t, const char *event, json_t *args)
{
    return emit_target(w, NULL, t, event, args);
}

static int host_ack(sg_ctx *c, json_t *args)
{
    char buf[96];
    /* (the walk only for an ack that is due: a plugin may ack every event) */
    const char *bad = c->ack_id < 0 || c->gone ? NULL : args_bad(args, buf, sizeof buf);
    if (c->ack_id < 0 || c->gone || (args && !json_is_array(args)) || bad) {
        host_log(c, c->ack_id < 0 ? SG_LOG_DEBUG : SG_LOG_ERROR, "ack: %s",
                 c->ack_id < 0 ? "no acknowledgement expected (or already sent)"
                 : c->gone ? "the socket is gone"
                 : bad ? bad : "args must be an array");
        json_decref(args);
        return -1;
    }
    int64_t id = c->ack_id;
    c->ack_id = -1;
    if (!args && !(args = json_array()))
        return -1;
    if (eng_queue_sio(c->w, c->sid, SG_SIO_ACK, c->nsp, id, args) < 0) {
        c->failed = 1;
        return -1;
    }
    return 0;
}

static int host_emit_with_ack(sg_ctx *c, const char *event, json_t *args, const char *ack_name,
                              int64_t timeout_ms, json_t *data)
{
    json_t *pkt = event_array(event, args);
    char *dtext = data ? json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(data);
    int rc = -1;
    char buf[96];
    const char *bad = args_bad(pkt, buf, sizeof buf);
    if (!pkt || c->gone || !ack_name || !sg_plugins_ack(c->w->e->reg, ack_name) ||
        timeout_ms <= 0 || (data && !dtext) || bad) {
        host_log(c, SG_LOG_ERROR, "emit_with_ack '%s': %s", event_shown(event),
                 !pkt ? event_bad(event)
                 : c->gone ? "the socket is gone"
                 : timeout_ms <= 0 ? "the timeout must be positive"
                 : bad ? bad
                 : data && !dtext ? "the data cannot be stored (binary data, or a string that "
                                    "is not UTF-8 text?)"
                 : "no ack handler registered under that name");
        goto out;
    }
    int64_t id = sg_store_ack_next(c->w->store, c->socket_id);
    if (id < 0 ||
        sg_store_ack_insert(c->w->store, c->socket_id, id, c->sid, c->nsp, ack_name,
                            sg_now_ms() + timeout_ms, dtext) != 0 ||
        eng_queue_sio(c->w, c->sid, SG_SIO_EVENT, c->nsp, id, pkt) < 0) {
        pkt = NULL;
        c->failed = 1;
        goto out;
    }
    pkt = NULL;
    rc = 0;
out:
    json_decref(pkt);
    free(dtext);
    return rc;
}

static int host_reject(sg_ctx *c, const char *message, json_t *data)
{
    if (!c->in_use || c->rejected) {
        host_log(c, SG_LOG_ERROR, "reject: only once, from a connect middleware");
        json_decref(data);
        return -1;
    }
    char buf[96];
    const char *bad = message && !is_text(message) ? "the message is not UTF-8 text"
                                                   : args_bad(data, buf, sizeof buf);
    if (bad) {
        host_log(c, SG_LOG_ERROR, "reject: %s", bad);
        json_decref(data);
        return -1;
    }
    c->rejected = true;
    c->reject_message = strdup(message ? message : "Not authorized");
    c->reject_data = data;
    return 0;
}

/* ---- rooms and data ----------------------------------------------------------------- */

static int room_op(sg_ctx *c, const char *room, bool join)
{
    if (c->gone || !room || !*room || !is_text(room)) {
        host_log(c, SG_LOG_ERROR, "%s: %s", join ? "join" : "leave",
                 c->gone ? "the socket is gone"
                 : !room || !*room ? "no room name" : "the room name is not UTF-8 text");
        return -1;
    }
    /* a broadcast logged before reaches the members of then */
    int rc = eng_bcast_settle(c->w, c->sid);
    if (rc == 0)
        rc = join ? sg_store_room_join(c->w->store, c->nsp, room, c->socket_id)
                  : sg_store_room_leave(c->w->store, c->nsp, room, c->socket_id);
    if (rc != 0)
        c->failed = 1;
    return rc == 0 ? 0 : -1;
}

static int host_join(sg_ctx *c, const char *room) { return room_op(c, room, true); }
static int host_leave(sg_ctx *c, const char *room) { return room_op(c, room, false); }

static json_t *host_rooms(sg_ctx *c)
{
    /* still there while disconnect handlers run; [] once the socket left */
    return sg_store_socket_rooms(c->w->store, c->socket_id);
}

static json_t *host_get_data(sg_ctx *c)
{
    json_t *data = NULL;
    int rc = sg_store_socket_get(c->w->store, c->socket_id, NULL, NULL, 0, &data);
    if (rc == SG_STORE_NOTFOUND)
        return json_null();
    return rc == 0 ? data : NULL;
}

static int host_set_data(sg_ctx *c, json_t *data)
{
    char *text = data && !json_is_null(data)
                     ? json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    int rc = -1;
    /* a string made with jansson's *_nocheck may hold bytes that are not
     * UTF-8: json_dumps refuses it (text NULL) */
    if (c->gone || (data && !json_is_null(data) && !text) || sg_sio_has_binary(data)) {
        host_log(c, SG_LOG_ERROR, "set_data: %s",
                 c->gone ? "the socket is gone"
                         : "the value cannot be stored (binary data, or a string that is not "
                           "UTF-8 text?)");
        goto out;
    }
    rc = sg_store_socket_data_set(c->w->store, c->socket_id, text) == 0 ? 0 : -1;
    if (rc < 0)
        c->failed = 1;
out:
    free(text);
    json_decref(data);
    return rc;
}

/* ---- disconnecting --------------------------------------------------------------------- */

/* Socket id of session sid on nsp leaves by the server's will: DISCONNECT
 * to the client, "server namespace disconnect" to the handlers. */
static int server_disconnect(sg_worker *w, const char *sid, const char *id, const char *nsp)
{
    if (eng_queue_sio(w, sid, SG_SIO_DISCONNECT, nsp, -1, NULL) < 0)
        return -1;
    return eng_socket_gone(w, sid, id, nsp, "server namespace disconnect");
}

struct all_gone { sg_worker *w; const char *sid; int rc; };

static void all_gone_cb(void *ud, const char *id, const char *nsp)
{
    struct all_gone *a = ud;
    if (server_disconnect(a->w, a->sid, id, nsp) < 0)
        a->rc = -1;
}

/* Disconnect socket id of sid on nsp; with close, every socket of sid and
 * then the connection ("forced server close"). Inside a transaction. */
static int disconnect_socket(sg_worker *w, const char *sid, const char *id, const char *nsp,
                             bool close)
{
    if (!close)
        return server_disconnect(w, sid, id, nsp);
    struct all_gone a = {w, sid, 0};
    if (sg_store_sockets_of(w->store, sid, all_gone_cb, &a) < 0 || a.rc < 0)
        return -1;
    return eng_close_sid(w, sid, "forced server close");
}

static int host_disconnect(sg_ctx *c, int close)
{
    if (c->gone)
        return -1;
    /* the client already gone, or this very packet's socket: both fine */
    if (disconnect_socket(c->w, c->sid, c->socket_id, c->nsp, close != 0) < 0) {
        c->failed = 1;
        return -1;
    }
    c->gone = true;
    return 0;
}

int sg_engine_disconnect(sg_worker *w, const char *socket_id, bool close)
{
    char sid[SG_ID_LEN + 1], nsp[256];
    bool own;
    if (eng_tx_begin(w, &own) < 0)
        return SG_E_INTERNAL;
    int rc = sg_store_socket_get(w->store, socket_id, sid, nsp, sizeof nsp, NULL);
    if (rc == 0)
        rc = disconnect_socket(w, sid, socket_id, nsp, close) < 0 ? -1 : 0;
    if (eng_tx_end(w, own, rc >= 0) < 0)
        return SG_E_INTERNAL;
    return rc == SG_STORE_NOTFOUND ? SG_E_SID : rc < 0 ? SG_E_INTERNAL : SG_OK;
}

/* ---- fetch sockets -------------------------------------------------------------------- */

struct fetch { sg_worker *w; const char *nsp; json_t *out; int rc; };

static void fetch_one(void *ud, const char *id, const char *sid, bool ready)
{
    struct fetch *f = ud;
    (void)ready;
    json_t *data = NULL;
    if (f->rc < 0)
        return;
    if (sg_store_socket_get(f->w->store, id, NULL, NULL, 0, &data) != 0) {
        f->rc = -1;
        return;
    }
    json_t *hs = sg_store_session_handshake(f->w->store, sid);
    json_t *o = json_pack("{s:s,s:s,s:o,s:o,s:o}", "id", id, "nsp", f->nsp, "rooms",
                          sg_store_socket_rooms(f->w->store, id), "data", data, "handshake",
                          hs ? hs : json_object());
    if (!o || json_array_append_new(f->out, o) < 0)
        f->rc = -1;
}

static json_t *fetch_sockets(sg_worker *w, const char *nsp, const char *const *rooms)
{
    bool bad = false;
    char *rl = list_json(rooms, &bad);
    struct fetch f = {w, nsp, json_array(), 0};
    if (bad || !f.out || !nsp ||
        sg_store_targets(w->store, nsp, rl, NULL, NULL, fetch_one, &f) < 0 || f.rc < 0) {
        json_decref(f.out);
        f.out = NULL;
    }
    free(rl);
    return f.out;
}

static json_t *host_fetch_sockets(sg_ctx *c, const char *nsp, const char *const *rooms)
{
    sg_worker *w = c ? c->w : thread_worker();
    if (!w)
        return NULL;
    const char *why = not_text(nsp, rooms, NULL);
    if (why) {
        host_log(c, SG_LOG_ERROR, "fetch_sockets: %s", why);
        return NULL;
    }
    return fetch_sockets(w, nsp ? nsp : c ? c->nsp : NULL, rooms);
}

json_t *sg_engine_fetch_sockets(sg_worker *w, const char *nsp, const char *const *rooms)
{
    return fetch_sockets(w, nsp, rooms);
}

/* ---- deferred acknowledgements (1.2) ------------------------------------------------------ */

struct sg_deferred {
    char socket_id[SG_ID_LEN + 1];
    int64_t ack_id;   /* -1: the client asked for none */
    size_t plugin;    /* whose handler deferred it (for the log) */
};

static sg_deferred *host_defer(sg_ctx *c)
{
    if (!c || !c->socket_id || c->gone) {
        host_log(c, SG_LOG_ERROR, "defer: %s", !c ? "no context" : "the socket is gone");
        return NULL;
    }
    sg_deferred *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    sg_copy(d->socket_id, sizeof d->socket_id, c->socket_id);
    d->ack_id = c->ack_id;
    d->plugin = c->plugin;
    c->ack_id = -1; /* the handle answers it now */
    return d;
}

/* Queue the ACK ack_id with args (stolen; NULL: none) for socket_id on
 * its session now, in w's open transaction or one of its own. 0, or -1
 * when the socket is gone or the store failed. */
static int ack_socket(sg_worker *w, const char *socket_id, int64_t ack_id, json_t *args)
{
    char sid[SG_ID_LEN + 1], nsp[256];
    bool own;
    if (eng_tx_begin(w, &own) < 0) {
        json_decref(args);
        return -1;
    }
    int rc = sg_store_socket_get(w->store, socket_id, sid, nsp, sizeof nsp, NULL);
    /* (a socket kept for recovery is not found: an ack is not replayed) */
    if (rc == 0)
        rc = eng_queue_sio(w, sid, SG_SIO_ACK, nsp, ack_id, args ? args : json_array());
    else
        json_decref(args);
    if (eng_tx_end(w, own, rc == 0) < 0)
        return -1;
    return rc == 0 ? 0 : -1;
}

static int host_finish(sg_deferred *d, json_t *args)
{
    if (!d) {
        json_decref(args);
        return -1;
    }
    const char *name = host_engine ? sg_plugins_name(host_engine->reg, d->plugin) : "?";
    int rc = 0;
    char buf[96];
    const char *bad = args && !json_is_array(args) ? "args must be an array"
                                                   : args_bad(args, buf, sizeof buf);
    if (bad) {
        sg_log(SG_LOG_ERROR, "plugin %s: finish: %s", name, bad);
        json_decref(args);
        rc = -1;
    } else if (d->ack_id < 0) {
        json_decref(args);
    } else {
        sg_worker *w = thread_worker();
        if (!w)
            json_decref(args);
        if (!w || ack_socket(w, d->socket_id, d->ack_id, args) < 0) {
            sg_log(SG_LOG_WARN, "plugin %s: finish: the socket is gone (or the store failed)", name);
            rc = -1;
        }
    }
    free(d);
    return rc;
}

/* ---- calling handlers -------------------------------------------------------------------- */

struct call {
    sg_ctx *ctx;
    const char *event;
    json_t *arg;            /* auth or args (borrowed) */
    const char *reason;
    bool dropped;
    sg_request *req;        /* allow_request handlers: the request */
};

static void handler_failed(sg_ctx *c, const sg_handler *h, const char *what)
{
    sg_error("plugin %s: %s handler failed on namespace %s (socket %s)",
             sg_plugins_name(c->w->e->reg, h->plugin), what, c->nsp, c->socket_id);
}

static int call_use(void *ud, const sg_handler *h)
{
    struct call *k = ud;
    sg_connect_fn fn;
    memcpy(&fn, &h->fn, sizeof fn);
    k->ctx->plugin = h->plugin;
    int rc = fn(k->ctx, k->arg, h->ud);
    if (rc != 0 && !k->ctx->rejected) {
        /* a middleware that fails without saying why refuses the
         * connection all the same: never let a broken check through */
        handler_failed(k->ctx, h, "connect middleware");
        k->ctx->rejected = true;
        k->ctx->reject_message = strdup("Server error");
    }
    return k->ctx->rejected ? 1 : 0;
}

static int call_connection(void *ud, const sg_handler *h)
{
    struct call *k = ud;
    sg_connection_fn fn;
    memcpy(&fn, &h->fn, sizeof fn);
    k->ctx->plugin = h->plugin;
    if (fn(k->ctx, k->arg, h->ud) != 0)
        handler_failed(k->ctx, h, "connection");
    return 0;
}

static int call_packet(void *ud, const sg_handler *h)
{
    struct call *k = ud;
    sg_packet_fn fn;
    memcpy(&fn, &h->fn, sizeof fn);
    k->ctx->plugin = h->plugin;
    if (fn(k->ctx, k->event, k->arg, h->ud) != 0) {
        sg_debug("plugin %s: packet middleware dropped event '%s' on %s (socket %s)",
                 plugin_name(k->ctx), k->event, k->ctx->nsp, k->ctx->socket_id);
        k->dropped = true;
        return 1;
    }
    return 0;
}

static int call_event(void *ud, const sg_handler *h)
{
    struct call *k = ud;
    sg_event_fn fn;
    memcpy(&fn, &h->fn, sizeof fn);
    k->ctx->plugin = h->plugin;
    if (fn(k->ctx, k->event, k->arg, h->ud) != 0) {
        char what[160];
        snprintf(what, sizeof what, "event '%.100s'", k->event);
        handler_failed(k->ctx, h, what);
    }
    return 0;
}

static int call_disconnect(void *ud, const sg_handler *h)
{
    struct call *k = ud;
    sg_disconnect_fn fn;
    memcpy(&fn, &h->fn, sizeof fn);
    k->ctx->plugin = h->plugin;
    fn(k->ctx, k->reason, h->ud);
    return 0;
}

void eng_run_use(sg_ctx *c, json_t *auth)
{
    struct call k = {c, NULL, auth, NULL, false, NULL};
    c->in_use = true;
    sg_plugins_each(c->w->e->reg, SG_H_USE, c->nsp, NULL, call_use, &k);
    c->in_use = false;
}

void eng_run_connection(sg_ctx *c, json_t *auth)
{
    struct call k = {c, NULL, auth, NULL, false, NULL};
    sg_plugins_each(c->w->e->reg, SG_H_CONNECTION, c->nsp, NULL, call_connection, &k);
}

void eng_run_event(sg_ctx *c, const char *event, json_t *args)
{
    struct call k = {c, event, args, NULL, false, NULL};
    sg_plugins_each(c->w->e->reg, SG_H_PACKET, c->nsp, NULL, call_packet, &k);
    if (!k.dropped)
        sg_plugins_each(c->w->e->reg, SG_H_EVENT, c->nsp, event, call_event, &k);
}

void eng_run_disconnect(sg_ctx *c, const char *reason)
{
    struct call k = {c, NULL, NULL, reason, false, NULL};
    sg_plugins_each(c->w->e->reg, SG_H_DISCONNECT, c->nsp, NULL, call_disconnect, &k);
}

/* ---- allow_request ----------------------------------------------------------------------------- */

static int host_refuse(sg_request *req, int code, const char *message)
{
    if (!req)
        return -1;
    int rc = 0;
    if (code < 0 || code > 5) {
        sg_error("plugin %s: refuse with code %d (not an Engine.IO error code 0..5): "
                 "refused with code 4",
                 sg_plugins_name(req->w->e->reg, req->plugin), code);
        code = 4;
        rc = -1;
    }
    req->refused = true;
    req->code = code;
    req->message[0] = '\0';
    if (message) {
        /* at most SG_REFUSE_MESSAGE_MAX bytes, cut at a UTF-8 boundary */
        size_t n = strlen(message);
        if (n > SG_REFUSE_MESSAGE_MAX) {
            n = SG_REFUSE_MESSAGE_MAX;
            while (n > 0 && ((unsigned char)message[n] & 0xC0) == 0x80)
                n--;
        }
        memcpy(req->message, message, n);
        req->message[n] = '\0';
    }
    return rc;
}

static int call_request(void *ud, const sg_handler *h)
{
    struct call *k = ud;
    sg_request *req = k->req;
    sg_allow_request_fn fn;
    memcpy(&fn, &h->fn, sizeof fn);
    req->plugin = h->plugin;
    if (fn(req, k->arg, h->ud) != 0 && !req->refused) {
        /* as allowRequest's callback(null, false): Forbidden */
        req->refused = true;
        req->code = 4;
        req->message[0] = '\0';
    }
    if (req->refused)
        sg_debug("plugin %s: allow_request refused a handshake (code %d)",
                 sg_plugins_name(req->w->e->reg, h->plugin), req->code);
    return req->refused ? 1 : 0;
}

void eng_run_allow_request(sg_request *req, json_t *info)
{
    struct call k = {NULL, NULL, info, NULL, false, req};
    sg_plugins_each(req->w->e->reg, SG_H_REQUEST, "", NULL, call_request, &k);
}

/* ---- server-to-client acks ------------------------------------------------------------------ */

/* Keep a reply for mailbox name; binary attachments become placeholders. */
static int mailbox_put(sg_worker *w, const char *name, const char *socket_id, json_t *args)
{
    json_t *copy = json_incref(args), *bins = json_array();
    char *text = NULL;
    int rc = -1;
    if (bins && sg_sio_deconstruct(&copy, bins) >= 0 &&
        (text = json_dumps(copy, JSON_COMPACT | JSON_ENCODE_ANY)) &&
        sg_store_reply_insert(w->store, name, socket_id, text, sg_now_ms()) == 0) {
        eng_mark_dirty(w, name); /* the owner waits on the doorbell */
        rc = 0;
    }
    free(text);
    json_decref(copy);
    json_decref(bins);
    return rc;
}

int eng_ack_reply(sg_worker *w, const char *socket_id, int64_t id, json_t *args)
{
    sg_buf row = SG_BUF_INIT;
    int rc = sg_store_ack_take(w->store, socket_id, id, &row);
    if (rc != 0) {
        sg_buf_free(&row);
        if (rc == SG_STORE_NOTFOUND)
            sg_debug("socket %s: ack %lld: none awaited (late or unknown)", socket_id,
                     (long long)id);
        return rc == SG_STORE_NOTFOUND ? 0 : -1;
    }
    const char *sid = row.data;
    const char *nsp = sid + strlen(sid) + 1;
    const char *name = nsp + strlen(nsp) + 1;
    const char *dtext = name + strlen(name) + 1;
    json_t *data = *dtext ? json_loads(dtext, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL) : NULL;
    const sg_handler *h = sg_plugins_ack(w->e->reg, name);
    if (name[0] == '@') {
        /* a mailbox (the CLI's emit --ack): keep the reply for its owner */
        rc = args ? mailbox_put(w, name, socket_id, args) : 0;
    } else if (h) {
        sg_ctx c;
        eng_ctx_init(&c, w, sid, socket_id, nsp);
        c.plugin = h->plugin;
        char here[SG_ID_LEN + 1];
        c.gone = sg_store_socket_find(w->store, sid, nsp, here) != 0 ||
                 strcmp(here, socket_id) != 0;
        sg_ack_fn fn;
        memcpy(&fn, &h->fn, sizeof fn);
        fn(&c, name, args, data ? data : json_null(), h->ud);
        rc = c.failed ? -1 : 0;
        eng_ctx_clear(&c);
    } else {
        sg_warn("ack handler '%s' is not registered in this process", name);
    }
    json_decref(data);
    sg_buf_free(&row);
    return rc;
}

int sg_engine_emit_ack(sg_worker *w, const sg_target *t, const char *event, json_t *args,
                       const char *reply_to, int64_t timeout_ms, json_t *asked)
{
    struct fanout f = {.data = event_array(event, args), .nsp = t ? t->nsp : NULL,
                       .reply_to = reply_to, .deadline = sg_now_ms() + timeout_ms,
                       .asked = asked};
    if (!reply_to || reply_to[0] != '@' || timeout_ms <= 0) {
        json_decref(f.data);
        return -1;
    }
    return fan_out(w, t, NULL, &f);
}

struct replies {
    void (*fn)(void *ud, const char *socket_id, json_t *args);
    void *ud;
};

static void reply_one(void *ud, const char *socket_id, const char *args)
{
    struct replies *r = ud;
    json_t *v = json_loads(args, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (v)
        r->fn(r->ud, socket_id, v);
    json_decref(v);
}

int sg_engine_ack_replies(sg_worker *w, const char *reply_to,
                          void (*fn)(void *ud, const char *socket_id, json_t *args), void *ud)
{
    struct replies r = {fn, ud};
    bool own;
    if (eng_tx_begin(w, &own) < 0)
        return -1;
    int n = sg_store_replies_take(w->store, reply_to, reply_one, &r);
    return eng_tx_end(w, own, n >= 0) < 0 ? -1 : n;
}

int sg_engine_ack_forget(sg_worker *w, const char *reply_to)
{
    bool own;
    if (eng_tx_begin(w, &own) < 0)
        return -1;
    int rc = sg_store_acks_forget(w->store, reply_to);
    return eng_tx_end(w, own, rc == 0);
}

struct expire { sg_worker *w; int n; };

static void expire_one(void *ud, const char *socket_id, int64_t id)
{
    struct expire *x = ud;
    bool own;
    if (eng_tx_begin(x->w, &own) < 0)
        return;
    int rc = eng_ack_reply(x->w, socket_id, id, NULL);
    if (eng_tx_end(x->w, own, rc == 0) == 0)
        x->n++;
}

int eng_acks_expire(sg_worker *w, int64_t now)
{
    struct expire x = {w, 0};
    if (sg_store_acks_expired(w->store, now, 256, expire_one, &x) < 0)
        return -1;
    return x.n;
}

/* ---- the table ------------------------------------------------------------------------------ */

void eng_host_init(sg_host *h, sg_engine *e)
{
    host_engine = e;
    memset(h, 0, sizeof *h);
    h->abi_major = SG_ABI_MAJOR;
    h->abi_minor = SG_ABI_MINOR;
    h->size = sizeof *h;
    sg_plugins_host_init(h);
    h->socket_id = host_socket_id;
    h->nsp = host_nsp;
    h->handshake = host_handshake;
    h->emit = host_emit;
    h->ack = host_ack;
    h->reject = host_reject;
    h->binary_new = host_binary_new;
    h->binary_data = host_binary_data;
    h->log = host_log;
    h->emit_to = host_emit_to;
    h->emit_with_ack = host_emit_with_ack;
    h->join = host_join;
    h->leave = host_leave;
    h->rooms = host_rooms;
    h->get_data = host_get_data;
    h->set_data = host_set_data;
    h->disconnect = host_disconnect;
    h->fetch_sockets = host_fetch_sockets;
    /* 1.1 */
    h->refuse = host_refuse;
    /* 1.2 */
    h->defer = host_defer;
    h->finish = host_finish;
    /* 1.3 */
    h->recovered = host_recovered;
}
