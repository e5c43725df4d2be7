/* engine.c - the protocol engine: Engine.IO sessions and Socket.IO
 * semantics over the store. See engine.h.
 *
 * Every public entry point runs one store transaction: it reads the
 * session, applies the packets (running plugin handlers, whose emits are
 * queued in the same transaction), writes the session back and commits;
 * then it rings the doorbell for every session it queued frames for. */
#include "engine.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "doorbell.h"
#include "log.h"
#include "plugins.h"
#include "socketio.h"
#include "store.h"
#include "engine_int.h"

/* ---- errors ----------------------------------------------------------- */

void sg_engine_error(int result, int *status, int *code, const char **message)
{
    static const struct { int status, code; const char *message; } map[] = {
        {400, 0, "Transport unknown"},
        {400, 1, "Session ID unknown"},
        {400, 2, "Bad handshake method"},
        {400, 3, "Bad request"},
        {403, 4, "Forbidden"},
        {400, 5, "Unsupported protocol version"},
        {413, -1, "Payload too large"},
        {500, -1, "Internal server error"},
        {429, 4, "Too many handshakes"},
        {503, 4, "Too many sessions"},
        {403, 4, "Forbidden"},
    };
    int i = -result - 1;
    if (i < 0 || i >= (int)(sizeof map / sizeof map[0]))
        i = -SG_E_INTERNAL - 1;
    *status = map[i].status;
    *code = map[i].code;
    *message = map[i].message;
}

void sg_engine_handshake_error(const sg_handshake *hs, int result, int *status, int *code,
                               const char **message)
{
    if (result == SG_E_REFUSED && hs) {
        *status = hs->refused_status;
        *code = hs->refused_code;
        *message = hs->refused_message;
        return;
    }
    sg_engine_error(result, status, code, message);
}

bool sg_engine_result_logged(int result)
{
    return result == SG_E_INTERNAL || result == SG_E_RATE || result == SG_E_FULL ||
           result == SG_E_REFUSED;
}

/* ---- queueing frames ---------------------------------------------------- */

void eng_mark_dirty(sg_worker *w, const char *sid)
{
    if (w->dirty.len == 1 && w->dirty.data[0] == SG_BELL_ALL[0])
        return; /* everyone is rung already */
    /* ids have a fixed length and no '\n': a substring match is exact; the
     * list stays within one datagram, so this scan stays short */
    if (w->dirty.len && strstr(w->dirty.data, sid))
        return;
    size_t len = strlen(sid);
    if (w->dirty.len + 1 + len > SG_BELL_MAX) {
        /* a fan-out wider than one datagram: ring "re-check everything" */
        sg_buf_reset(&w->dirty);
        sg_buf_puts(&w->dirty, SG_BELL_ALL);
        return;
    }
    if (w->dirty.len)
        sg_buf_putc(&w->dirty, '\n');
    sg_buf_puts(&w->dirty, sid);
}

void eng_forget_dirty(sg_worker *w)
{
    sg_buf_reset(&w->dirty);
    w->bcast_lo = w->bcast_hi = 0;
}

void eng_ring_dirty(sg_worker *w)
{
    if (w->batch)
        return; /* rung at sg_engine_batch_end, after the commit */
    if (w->dirty.len && w->self)
        sg_bell_ring_others(w->self, w->dirty.data, w->dirty.len);
    else if (w->dirty.len && w->bell)
        sg_bell_ring(w->bell, w->dirty.data, w->dirty.len);
    eng_forget_dirty(w);
}

/* The most sessions of its own a caller asks the broadcast log about by
 * name (see sg_own_fn): a session asked about costs about what 8 listed
 * recipients do, and a log row has at least broadcast_log_min. */
#define BCAST_ASK_MAX 128

/* v (BCAST_ASK_MAX long) filled by own with the caller's sessions when it
 * has few enough (*n of them), else NULL: list every recipient. */
static const char *const *own_sessions(const sg_worker *w, sg_own_fn own, void *ud,
                                       const char **v, size_t *n)
{
    size_t max = (size_t)w->e->cfg->broadcast_log_min / 8;
    if (max > BCAST_ASK_MAX)
        max = BCAST_ASK_MAX;
    *n = 0;
    if (!own || (*n = own(ud, v, max)) > max)
        return NULL;
    return v;
}

bool sg_engine_batch_dirty(sg_worker *w, size_t *pos, sg_own_fn own,
                           void (*fn)(void *ud, const char *sid), void *ud)
{
    const char *d = w->dirty.data;
    size_t len = w->dirty.len;
    if (len == 1 && d[0] == SG_BELL_ALL[0])
        return true;
    while (*pos < len) {
        size_t end = *pos;
        while (end < len && d[end] != '\n')
            end++;
        if (end - *pos == SG_ID_LEN) {
            char sid[SG_ID_LEN + 1];
            memcpy(sid, d + *pos, SG_ID_LEN);
            sid[SG_ID_LEN] = '\0';
            fn(ud, sid);
        }
        *pos = end < len ? end + 1 : end;
    }
    if (w->bcast_hi > w->bcast_lo) {
        /* the sessions the log rows appended since the last call name (the
         * store sees the batch's own writes); a failure leaves them to the
         * safety re-check */
        const char *v[BCAST_ASK_MAX];
        size_t n;
        const char *const *among = own_sessions(w, own, ud, v, &n);
        if (sg_store_bcast_sessions(w->store, w->bcast_lo, w->bcast_hi, among, n, fn, ud) < 0)
            sg_error("broadcast log: finding the sessions to wake failed");
        w->bcast_lo = w->bcast_hi;
    }
    return false;
}

void sg_worker_ring_others(sg_worker *w, sg_bell *waiter) { w->self = waiter; }

int sg_engine_changed_since(sg_worker *w, int64_t *mark, sg_own_fn own,
                            void (*fn)(void *ud, const char *sid), void *ud)
{
    const char *v[BCAST_ASK_MAX];
    size_t n;
    const char *const *among = own_sessions(w, own, ud, v, &n);
    return sg_store_changed_since(w->store, mark, among, n, fn, ud);
}

int sg_engine_bcast_since(sg_worker *w, int64_t *mark, sg_own_fn own,
                          void (*fn)(void *ud, const char *sid), void *ud)
{
    int64_t max = sg_store_bcast_max(w->store);
    if (max < 0)
        return -1;
    int64_t since = *mark;
    if (max <= since)
        return 0;
    *mark = max;
    if (since < 0 || !fn)
        return 0;
    const char *v[BCAST_ASK_MAX];
    size_t n;
    const char *const *among = own_sessions(w, own, ud, v, &n);
    return sg_store_bcast_sessions(w->store, since, max, among, n, fn, ud);
}

int eng_bcast_settle(sg_worker *w, const char *sid)
{
    sg_session *cur = w->ss && strcmp(w->ss->sid, sid) == 0 ? w->ss : NULL;
    int64_t seen = cur ? cur->bcast_seen : 0;
    bool moved;
    int rc = sg_store_bcast_settle(w->store, sid, cur ? cur->sent_upto : 0, &seen, &moved);
    if (rc == SG_STORE_NOTFOUND)
        return 0;
    if (rc != 0)
        return -1;
    if (cur)
        cur->bcast_seen = seen;
    if (moved) {
        /* frames it matched may be its own now: the log ring would not
         * name it any more */
        eng_mark_dirty(w, sid);
        if (cur)
            w->queued_own = true;
    }
    return 0;
}

/* The fast path's frames for w->direct_sid would pass what its connection
 * can take now (w->direct_max): they go to the store instead, in order,
 * and so does every frame after them in this transaction (nothing of the
 * session's was in the store when the fast path began: none is overtaken).
 * 0 or -1. */
static int spill_direct(sg_worker *w)
{
    const char *sid = w->direct_sid;
    w->direct_sid = NULL;
    for (size_t at = 0; at + 5 <= w->direct.len;) {
        const char *p = w->direct.data + at;
        uint32_t n;
        memcpy(&n, p + 1, sizeof n);
        if (sg_store_queue_add(w->store, sid, (p[0] & 1) != 0, (p[0] & 2) != 0, p + 5, n) < 0)
            return -1;
        at += 5 + (size_t)n;
    }
    sg_buf_reset(&w->direct);
    w->queued_own = true;
    eng_mark_dirty(w, sid);
    return 0;
}

/* Queue one frame for sid; eid > 0: of a recoverable event of nsp (never
 * volatile). */
static int push_frame(sg_worker *w, const char *sid, bool binary, bool is_volatile,
                      const void *frame, size_t len, const char *nsp, int64_t eid)
{
    /* a recoverable event is kept in the store until it is known to have
     * arrived: siogate-wsd's fast path ends here for this request (its
     * frames written after the commit would overtake it) */
    if (eid > 0 && w->direct_sid && strcmp(sid, w->direct_sid) == 0)
        w->direct_sid = NULL;
    if (w->direct_sid && strcmp(sid, w->direct_sid) == 0 &&
        (w->direct.len + 5 + len > w->direct_max) && spill_direct(w) < 0)
        return -1;
    if (w->direct_sid && strcmp(sid, w->direct_sid) == 0) {
        /* [flags: 1 binary, 2 volatile][length 4 bytes][frame] */
        uint8_t head[5] = {(uint8_t)(binary | (is_volatile ? 2 : 0))};
        uint32_t n = (uint32_t)len;
        if (len > UINT32_MAX)
            return -1;
        memcpy(head + 1, &n, sizeof n);
        if (sg_buf_append(&w->direct, head, sizeof head) < 0 ||
            sg_buf_append(&w->direct, frame, len) < 0)
            return -1;
        return 0;
    }
    if (w->ss && strcmp(sid, w->ss->sid) == 0)
        w->queued_own = true;
    if ((eid > 0 ? sg_store_queue_push_eid(w->store, sid, binary, frame, len, nsp, eid)
                 : sg_store_queue_add(w->store, sid, binary, is_volatile, frame, len)) < 0)
        return -1;
    if (sid[0] != '~') /* a recovery ghost: nobody waits for it */
        eng_mark_dirty(w, sid);
    return 0;
}

int eng_encode_sio(sg_encoded *out, enum sg_sio_type type, const char *nsp, int64_t id,
                   json_t *data)
{
    int rc = -1;
    sg_buf_init(&out->text);
    out->eid = 0;
    out->nsp = NULL;
    out->bins = json_array();
    if (!out->bins)
        goto out;
    sg_sio_packet p = {type, (char *)nsp, id, 0, data};
    if (data) {
        int n = sg_sio_deconstruct(&p.data, out->bins);
        data = p.data;
        if (n < 0)
            goto out;
        if (n > 0) {
            p.type = type == SG_SIO_ACK ? SG_SIO_BINARY_ACK
                     : type == SG_SIO_EVENT ? SG_SIO_BINARY_EVENT : type;
            p.attachments = (size_t)n;
        }
    }
    if (sg_buf_putc(&out->text, '0' + SG_EIO_MESSAGE) < 0 || sg_sio_encode(&out->text, &p) < 0)
        goto out;
    rc = 0;
out:
    json_decref(data);
    if (rc < 0)
        eng_encoded_clear(out);
    return rc;
}

void eng_encoded_clear(sg_encoded *e)
{
    sg_buf_free(&e->text);
    json_decref(e->bins);
    e->bins = NULL;
}

bool eng_recovery(const sg_worker *w) { return w->e->cfg->recovery_window > 0; }

int eng_encode_event(sg_worker *w, sg_encoded *out, const char *nsp, json_t *data)
{
    int64_t eid = 0;
    if (eng_recovery(w)) {
        char off[32];
        if (!data || (eid = sg_store_eid_next(w->store, sg_now_ms())) < 0)
            goto fail;
        snprintf(off, sizeof off, "%lld", (long long)eid);
        if (json_array_append_new(data, json_string(off)) < 0)
            goto fail;
    }
    if (eng_encode_sio(out, SG_SIO_EVENT, nsp, -1, data) < 0)
        return -1;
    out->eid = eid;
    out->nsp = eid ? nsp : NULL;
    return 0;
fail:
    json_decref(data);
    return -1;
}

int eng_queue_encoded(sg_worker *w, const char *sid, const sg_encoded *e, bool is_volatile)
{
    if (push_frame(w, sid, false, is_volatile, e->text.data, e->text.len, e->nsp, e->eid) < 0)
        goto fail;
    size_t i;
    json_t *b;
    json_array_foreach(e->bins, i, b) {
        size_t len;
        const void *bytes = sg_sio_binary_data(b, &len);
        if (push_frame(w, sid, true, is_volatile, bytes, len, e->nsp, e->eid) < 0)
            goto fail;
    }
    return 0;
fail:
    sg_error("cannot queue a packet for session " SG_SID_FMT, sid);
    return -1;
}

/* Queue one Socket.IO packet for sid; data is stolen (may hold binary
 * values, which become attachments). */
int eng_queue_sio(sg_worker *w, const char *sid, enum sg_sio_type type, const char *nsp,
                  int64_t id, json_t *data)
{
    sg_encoded e;
    if (eng_encode_sio(&e, type, nsp, id, data) < 0) {
        sg_error("cannot queue a packet for session " SG_SID_FMT, sid);
        return -1;
    }
    int rc = eng_queue_encoded(w, sid, &e, false);
    eng_encoded_clear(&e);
    return rc;
}

int eng_queue_eio(sg_worker *w, const char *sid, enum sg_eio_type type, const char *data)
{
    sg_buf f = SG_BUF_INIT;
    int rc = sg_buf_printf(&f, "%d%s", (int)type, data ? data : "");
    if (rc == 0)
        rc = push_frame(w, sid, false, false, f.data, f.len, NULL, 0);
    sg_buf_free(&f);
    return rc;
}

/* ---- sockets and sessions -------------------------------------------------- */

/* A socket leaves its session: its disconnect handlers run while it still
 * has its rooms and data (Socket.IO's "disconnecting"; emits to it are
 * refused already), then what the broadcast log holds for it is settled,
 * as decided while it was a member (the handlers' own broadcasts
 * included). 0 or -1. */
static int socket_leaving(sg_worker *w, const char *sid, const char *id, const char *nsp,
                          const char *reason)
{
    sg_ctx c;
    eng_ctx_init(&c, w, sid, id, nsp);
    c.gone = true;
    eng_run_disconnect(&c, reason);
    eng_ctx_clear(&c);
    return eng_bcast_settle(w, sid) < 0 ? -1 : 0;
}

/* Remove a socket and run its disconnect handlers (once: the row delete
 * happens in the same transaction). */
int eng_socket_gone(sg_worker *w, const char *sid, const char *id, const char *nsp,
                       const char *reason)
{
    if (socket_leaving(w, sid, id, nsp, reason) < 0)
        return -1;
    return sg_store_socket_delete(w->store, id) != 0 ? -1 : 0;
}

/* The disconnect reasons after which a socket can be recovered: those of
 * the reference server (socket.ts RECOVERABLE_DISCONNECT_REASONS). Not a
 * namespace disconnect by either side, nor "parse error". */
static bool recoverable(const char *reason)
{
    static const char *const list[] = {"transport error", "transport close", "forced close",
                                       "ping timeout", "server shutting down",
                                       "forced server close"};
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++)
        if (strcmp(reason, list[i]) == 0)
            return true;
    return false;
}

/* A socket whose session closed for a recoverable reason: its disconnect
 * handlers run as for eng_socket_gone, then it moves into the session's
 * ghost for recovery_window ms, rooms, data and event rows with it. */
static int socket_ghost(sg_worker *w, const char *sid, const char *id, const char *nsp,
                        const char *reason)
{
    if (socket_leaving(w, sid, id, nsp, reason) < 0)
        return -1;
    int64_t now = sg_now_ms();
    return sg_store_socket_ghost(w->store, id, sid, nsp, now,
                                 now + w->e->cfg->recovery_window) != 0 ? -1 : 0;
}

struct close_walk { sg_worker *w; const char *sid; const char *reason; int rc; };

static void close_socket_cb(void *ud, const char *id, const char *nsp)
{
    struct close_walk *cw = ud;
    int rc = eng_recovery(cw->w) && !cw->w->no_recover && recoverable(cw->reason)
                 ? socket_ghost(cw->w, cw->sid, id, nsp, cw->reason)
                 : eng_socket_gone(cw->w, cw->sid, id, nsp, cw->reason);
    if (rc < 0)
        cw->rc = -1;
}

static bool is_client_close(const char *reason)
{
    return strcmp(reason, "transport close") == 0;
}

/* 1 when the process named in a poller token (util.h) is alive.
 * A killed process stays a zombie until its parent reaps it (contrib/stack
 * looks twice a second, other supervisors when they like), and kill(pid, 0)
 * succeeds on a zombie: its state in /proc tells. Where /proc cannot be
 * read, kill's answer stands.
 *
 * A token of another pid space (another host on a shared store) cannot be
 * checked from here: it counts as gone. A client sends a GET only after
 * its previous one ended, so a GET held on another host when the next one
 * comes is one whose answer can no longer reach the client (its web
 * server or host died); the next GET takes over, as after a process of
 * this host died. What is lost is only the protection from a client that
 * overlaps its GETs on purpose across two hosts; within a host it stays. */
static bool poller_alive(const char *token)
{
    long pid = sg_token_local_pid(token);
    if (pid <= 0)
        return false;
    if (pid == (long)getpid())
        return true;
    if (kill((pid_t)pid, 0) != 0 && errno != EPERM)
        return false;
    char path[40], stat[256];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return errno != ENOENT; /* ENOENT: it went in between */
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = '\0';
    /* "pid (comm) S ...": comm may hold ')' itself, the last one ends it */
    const char *rp = strrchr(stat, ')');
    if (!rp || rp[1] != ' ')
        return true;
    return rp[2] != 'Z' && rp[2] != 'X';
}

/* The close marker frame queued by eng_close_session. Socket.IO frames all
 * start with '4' and pings are never queued last, so a 1-byte "1" or "6"
 * text frame can only be it. */
static bool is_close_marker(bool binary, const void *frame, size_t len)
{
    const char *f = frame;
    return !binary && len == 1 && (*f == '0' + SG_EIO_CLOSE || *f == '0' + SG_EIO_NOOP);
}

/* Reasons for which the reference server forgets a polling session at once
 * (its socket's onClose, not close()): the client stopped polling, closed
 * the transport itself or broke the heartbeat. A payload that is not
 * Engine.IO at all is one too (close_session's caller says so). */
static bool client_gone(const char *reason)
{
    return strcmp(reason, "ping timeout") == 0 || strcmp(reason, "transport close") == 0 ||
           strcmp(reason, "transport error") == 0;
}

/* Close ss (inside a transaction): mark it closed if it is open, then the
 * disconnect handlers of its sockets. ss->state is updated. forget: drop
 * what is queued when no GET is held, so that the next request gets 400
 * "Session ID unknown" (see client_gone). */
static int close_session(sg_worker *w, sg_session *ss, const char *reason, bool forget)
{
    int rc = sg_store_session_close(w->store, ss->sid, reason, sg_now_ms());
    if (rc == SG_STORE_NOTFOUND)
        return 0;
    if (rc != 0)
        return -1;
    sg_debug("session %s closed: %s", ss->sid, reason);
    bool polling = strcmp(ss->transport, "polling") == 0;
    bool held = ss->poller[0] && poller_alive(ss->poller);
    ss->state = SG_SESSION_CLOSED;
    ss->poller[0] = '\0';
    sg_copy(ss->close_reason, sizeof ss->close_reason, reason);
    struct close_walk cw = {w, ss->sid, reason, 0};
    if (sg_store_sockets_of(w->store, ss->sid, close_socket_cb, &cw) < 0)
        return -1;
    if (!polling) /* a WebSocket session ends with the WebSocket's own close */
        return cw.rc;
    if (forget && !held) {
        /* The reference server forgets the session at once (its buffer
         * with it), so the next request gets 400 "Session ID unknown", not
         * a close packet. */
        return sg_store_queue_drop(w->store, ss->sid) != 0 ? -1 : cw.rc;
    }
    /* The last word on polling, after whatever the handlers queued: the
     * close packet, or noop for the client's own close. It is queued, not
     * written into whatever GET is held now, so that a GET arriving later
     * still gets it, as from the reference server's buffered close (the
     * session is "closing" there until a GET took it). */
    if (eng_queue_eio(w, ss->sid, is_client_close(reason) ? SG_EIO_NOOP : SG_EIO_CLOSE,
                      NULL) < 0)
        return -1;
    return cw.rc;
}

int eng_close_session(sg_worker *w, sg_session *ss, const char *reason)
{
    return close_session(w, ss, reason, client_gone(reason));
}

/* A session whose heartbeat deadline passed before a request came (no
 * process held it then, or none noticed yet): close it now, as the
 * reference server's timer would have. ss open, inside its transaction.
 * true when it was expired (then closed: answer SG_E_SID, after the
 * commit; *rc is SG_E_INTERNAL on a store failure). */
static bool expired_now(sg_worker *w, sg_session *ss, int *rc)
{
    if (ss->state != SG_SESSION_OPEN || ss->expires_at >= sg_now_ms())
        return false;
    *rc = eng_close_session(w, ss, "ping timeout") < 0 ? SG_E_INTERNAL : SG_E_SID;
    return true;
}

int eng_close_sid(sg_worker *w, const char *sid, const char *reason)
{
    if (w->ss && strcmp(w->ss->sid, sid) == 0)
        return eng_close_session(w, w->ss, reason);
    sg_session ss;
    int rc = sg_store_session_get(w->store, sid, &ss);
    if (rc != 0)
        return rc == SG_STORE_NOTFOUND ? 0 : -1;
    rc = ss.state == SG_SESSION_OPEN ? eng_close_session(w, &ss, reason) : 0;
    if (rc == 0)
        rc = sg_store_session_update(w->store, &ss) == 0 ? 0 : -1;
    sg_session_clear(&ss);
    return rc;
}

static void schedule_ping(const sg_config *cfg, sg_session *ss, int64_t now)
{
    ss->ping_sent = 0;
    ss->next_ping_at = now + cfg->ping_interval;
    ss->expires_at = ss->next_ping_at + cfg->ping_timeout;
}

/* ---- Socket.IO dispatch ------------------------------------------------------- */

/* An offset as the client sends it back: the decimal of an eid. -1 when
 * it is not one (then nothing is recovered). */
static int64_t parse_offset(const char *t)
{
    int64_t v = 0;
    if (!*t || strlen(t) > 18)
        return -1;
    for (; *t; t++) {
        if (*t < '0' || *t > '9')
            return -1;
        v = v * 10 + (*t - '0');
    }
    return v;
}

/* A CONNECT to nsp carrying pid (and offset, NULL when the client saw no
 * event yet): recover the socket whose private id it is, if its ghost is
 * within the window (or its session is still open: the client came back
 * on a new connection before the old one was noticed gone, e.g. after a
 * server process was killed; that session is closed first). Then the
 * CONNECT reply, the events it missed after offset in order, and the
 * connection handlers (told it was recovered; connect middlewares are
 * skipped, as the reference's skipMiddlewares default). 1: recovered,
 * 0: not (connect as new), -1: store failure. */
static int sio_recover(sg_worker *w, sg_session *ss, const char *nsp, const char *pid,
                       const char *offset, json_t *auth)
{
    char id[SG_ID_LEN + 1], owner[SG_ID_LEN + 2], onsp[256];
    int state;
    int64_t until, off = -1;
    if (offset && (off = parse_offset(offset)) < 0)
        return 0;
    int rc = sg_store_socket_by_pid(w->store, pid, id, owner, sizeof owner, onsp, sizeof onsp,
                                    &state, &until);
    if (rc != 0)
        return rc == SG_STORE_NOTFOUND ? 0 : -1;
    if (strcmp(onsp, nsp) != 0 || strcmp(owner, ss->sid) == 0)
        return 0;
    if (state == SG_SESSION_OPEN) {
        /* closed now for a recoverable reason: the socket is a ghost's;
         * whoever holds the old connection learns it is closed */
        if (eng_close_sid(w, owner, "transport close") < 0)
            return -1;
        eng_mark_dirty(w, owner);
        rc = sg_store_socket_by_pid(w->store, pid, id, owner, sizeof owner, onsp, sizeof onsp,
                                    &state, &until);
        if (rc != 0)
            return rc == SG_STORE_NOTFOUND ? 0 : -1;
    }
    if (state != SG_SESSION_GHOST || until < sg_now_ms())
        return 0;
    if (eng_bcast_settle(w, ss->sid) < 0)
        return -1;
    ss->connect_by = 0;
    if (eng_queue_sio(w, ss->sid, SG_SIO_CONNECT, nsp, -1,
                      json_pack("{s:s,s:s}", "sid", id, "pid", pid)) < 0)
        return -1;
    int n = sg_store_socket_restore(w->store, id, owner, ss->sid, nsp, off);
    if (n < 0)
        return -1;
    if (n > 0) {
        eng_mark_dirty(w, ss->sid);
        w->queued_own = true;
    }
    sg_debug("session %s: socket %s on %s recovered from %s, %d frames replayed", ss->sid, id,
             nsp, owner, n);
    sg_ctx c;
    eng_ctx_init(&c, w, ss->sid, id, nsp);
    c.recovered = true;
    eng_run_connection(&c, auth);
    rc = c.failed ? -1 : 1;
    eng_ctx_clear(&c);
    return rc;
}

static int sio_connect(sg_worker *w, sg_session *ss, const char *nsp, json_t *auth)
{
    if (!sg_plugins_serves(w->e->reg, nsp)) {
        json_t *err = json_pack("{s:s}", "message", "Invalid namespace");
        return eng_queue_sio(w, ss->sid, SG_SIO_CONNECT_ERROR, nsp, -1, err);
    }
    int64_t max = w->e->cfg->max_sockets_per_session;
    if (max > 0) {
        int64_t n = sg_store_sockets_count(w->store, ss->sid);
        if (n < 0)
            return -1;
        if (n >= max) {
            sg_debug("session %s: CONNECT to %s refused: %lld sockets (max_sockets_per_session)",
                     ss->sid, nsp, (long long)n);
            json_t *err = json_pack("{s:s}", "message", "Too many sockets");
            return eng_queue_sio(w, ss->sid, SG_SIO_CONNECT_ERROR, nsp, -1, err);
        }
    }
    bool recovery = eng_recovery(w);
    if (recovery && auth) {
        json_t *pid = json_object_get(auth, "pid"), *off = json_object_get(auth, "offset");
        if (json_is_string(pid) && (!off || json_is_string(off))) {
            int r = sio_recover(w, ss, nsp, json_string_value(pid),
                                off ? json_string_value(off) : NULL, auth);
            if (r != 0)
                return r < 0 ? -1 : 0;
        }
    }
    json_t *empty = NULL;
    if (!auth && !(auth = empty = json_object()))
        return -1;
    char id[SG_ID_LEN + 1], pid[SG_ID_LEN + 1];
    int rc = -1;
    if (sg_id_new(id) < 0 || (recovery && sg_id_new(pid) < 0))
        goto out;
    sg_ctx c;
    eng_ctx_init(&c, w, ss->sid, id, nsp);
    eng_run_use(&c, auth);
    if (c.failed)
        goto out_ctx;
    if (c.rejected) {
        json_t *err = json_pack("{s:s}", "message", c.reject_message ? c.reject_message : "");
        if (err && c.reject_data) {
            json_object_set_new(err, "data", c.reject_data);
            c.reject_data = NULL;
        }
        rc = eng_queue_sio(w, ss->sid, SG_SIO_CONNECT_ERROR, nsp, -1, err);
        goto out_ctx;
    }
    if (eng_bcast_settle(w, ss->sid) < 0 ||
        sg_store_socket_insert(w->store, id, ss->sid, nsp, sg_now_ms()) != 0 ||
        (recovery && sg_store_socket_set_pid(w->store, id, pid) != 0))
        goto out_ctx;
    ss->connect_by = 0;
    /* the CONNECT reply goes out before anything the connection handlers
     * emit; with recovery on it carries the private id the client sends
     * back to recover this socket */
    if (eng_queue_sio(w, ss->sid, SG_SIO_CONNECT, nsp, -1,
                      recovery ? json_pack("{s:s,s:s}", "sid", id, "pid", pid)
                               : json_pack("{s:s}", "sid", id)) < 0)
        goto out_ctx;
    eng_run_connection(&c, auth);
    rc = c.failed ? -1 : 0;
out_ctx:
    eng_ctx_clear(&c);
out:
    json_decref(empty);
    return rc;
}

static int sio_event(sg_worker *w, sg_session *ss, const char *socket_id, sg_sio_packet *p)
{
    json_t *name = json_array_get(p->data, 0);
    char numbuf[32];
    const char *event;
    if (json_is_string(name)) {
        event = json_string_value(name);
    } else {
        snprintf(numbuf, sizeof numbuf, "%.17g", json_number_value(name));
        event = numbuf;
    }
    json_t *args = json_array();
    if (!args)
        return -1;
    for (size_t i = 1; i < json_array_size(p->data); i++)
        json_array_append(args, json_array_get(p->data, i));
    sg_ctx c;
    eng_ctx_init(&c, w, ss->sid, socket_id, p->nsp);
    c.ack_id = p->id;
    eng_run_event(&c, event, args);
    int rc = c.failed ? -1 : 0;
    eng_ctx_clear(&c);
    json_decref(args);
    return rc;
}

/* Result of handling one packet: 0 fine, -1 store failure, or a reason
 * to close the session. */
static const char *const CLOSE_PARSE = "parse error";
static const char *const CLOSE_FORCED = "forced close";

static int sio_dispatch(sg_worker *w, sg_session *ss, sg_sio_packet *p, const char **close)
{
    char id[SG_ID_LEN + 1];
    int found = sg_store_socket_find(w->store, ss->sid, p->nsp, id);
    if (found < 0)
        return -1;
    /* as the reference server: a CONNECT for a joined namespace, or any
     * other packet for a namespace not joined, is an invalid state that
     * closes the whole connection */
    if (p->type == SG_SIO_CONNECT) {
        if (found == 0) {
            *close = CLOSE_FORCED;
            return 0;
        }
        return sio_connect(w, ss, p->nsp, p->data);
    }
    if (found != 0 || p->type == SG_SIO_CONNECT_ERROR) {
        sg_warn("session " SG_SID_FMT ": packet type %d for namespace %s not joined: closing",
                ss->sid, (int)p->type, p->nsp);
        *close = CLOSE_FORCED;
        return 0;
    }
    switch (p->type) {
    case SG_SIO_DISCONNECT:
        return eng_socket_gone(w, ss->sid, id, p->nsp, "client namespace disconnect");
    case SG_SIO_EVENT:
    case SG_SIO_BINARY_EVENT:
        return sio_event(w, ss, id, p);
    case SG_SIO_ACK:
    case SG_SIO_BINARY_ACK:
        return p->id < 0 ? 0 : eng_ack_reply(w, id, p->id, p->data);
    default:
        return 0;
    }
}

/* ---- Engine.IO packets ----------------------------------------------------------- */

struct rx {
    sg_sio_packet pending;  /* a binary packet awaiting attachments */
    json_t *bins;           /* its attachments so far (binary values) */
    bool has_pending;
    sg_buf pending_raw;     /* the pending group in polling form, for ss->partial */
};

static int rx_finish_pending(sg_worker *w, sg_session *ss, struct rx *rx, const char **close)
{
    int rc = sg_sio_reconstruct(&rx->pending.data, rx->bins);
    if (rc != 0) {
        sg_warn("session " SG_SID_FMT ": bad binary packet: %s", ss->sid, sg_sio_strerror(rc));
        *close = CLOSE_PARSE;
        rc = 0;
    } else {
        rc = sio_dispatch(w, ss, &rx->pending, close);
    }
    sg_sio_packet_clear(&rx->pending);
    json_array_clear(rx->bins);
    sg_buf_reset(&rx->pending_raw);
    rx->has_pending = false;
    return rc;
}

static int handle_eio(sg_worker *w, sg_session *ss, const sg_eio_packet *pk, struct rx *rx,
                      const char **close)
{
    if (rx->has_pending) {
        if (pk->type != SG_EIO_MESSAGE || !pk->binary) {
            sg_warn("session " SG_SID_FMT ": text packet while binary attachments were expected", ss->sid);
            *close = CLOSE_PARSE;
            return 0;
        }
        json_t *b = sg_sio_binary_new(pk->data, pk->len);
        if (!b || json_array_append_new(rx->bins, b) < 0 ||
            sg_eio_encode_polling(&rx->pending_raw, pk) < 0)
            return -1;
        if (json_array_size(rx->bins) == rx->pending.attachments)
            return rx_finish_pending(w, ss, rx, close);
        return 0;
    }
    switch (pk->type) {
    case SG_EIO_PONG:
        schedule_ping(w->e->cfg, ss, sg_now_ms());
        return 0;
    case SG_EIO_PING:
        /* Engine.IO v4: the server pings, never the client */
        sg_warn("session " SG_SID_FMT ": ping from the client (invalid heartbeat direction)", ss->sid);
        *close = "transport error";
        return 0;
    case SG_EIO_CLOSE:
        *close = "transport close";
        return 0;
    case SG_EIO_MESSAGE:
        break;
    default:
        return 0; /* open, upgrade, noop: nothing to do on this side */
    }
    if (pk->binary) {
        sg_warn("session " SG_SID_FMT ": binary packet without a binary Socket.IO packet before it", ss->sid);
        *close = CLOSE_PARSE;
        return 0;
    }
    sg_sio_packet p;
    const sg_config *cfg = w->e->cfg;
    sg_sio_limits lim = {(size_t)cfg->max_attachments, (int)cfg->max_json_depth};
    int rc = sg_sio_decode_limited(pk->data, pk->len, &lim, &p);
    if (rc == SG_SIO_ENOMEM)
        return -1;
    if (rc != 0) {
        sg_warn("session " SG_SID_FMT ": invalid Socket.IO packet: %s", ss->sid, sg_sio_strerror(rc));
        *close = CLOSE_PARSE;
        return 0;
    }
    if (p.type == SG_SIO_BINARY_EVENT || p.type == SG_SIO_BINARY_ACK) {
        /* the decoder guarantees 1..max_attachments attachments */
        rx->pending = p;
        rx->has_pending = true;
        return sg_eio_encode_polling(&rx->pending_raw, pk);
    }
    rc = sio_dispatch(w, ss, &p, close);
    sg_sio_packet_clear(&p);
    return rc;
}

/* Apply pkts to ss inside the caller's transaction. Returns 0, or -1 on a
 * store failure; *bad is set when the session was closed for a protocol
 * error. */
static int apply_packets(sg_worker *w, sg_session *ss, const sg_eio_packets *pkts, bool *bad)
{
    int rc = -1;
    const char *close = NULL;
    struct rx rx = {.bins = json_array()};
    sg_eio_packets prev;
    sg_eio_packets_init(&prev);
    if (!rx.bins)
        goto out;
    /* an incomplete binary packet left by the previous request comes first */
    if (ss->partial.len &&
        sg_eio_decode_payload(ss->partial.data, ss->partial.len, &prev) != 0)
        goto out;
    sg_buf_reset(&ss->partial);
    for (size_t pass = 0; pass < 2; pass++) {
        const sg_eio_packets *list = pass == 0 ? &prev : pkts;
        for (size_t i = 0; i < list->n && !close && ss->state == SG_SESSION_OPEN; i++)
            if (handle_eio(w, ss, &list->v[i], &rx, &close) < 0)
                goto out;
    }
    if (close) {
        *bad = close == CLOSE_PARSE;
        if (eng_close_session(w, ss, close) < 0)
            goto out;
    } else if (rx.has_pending && (int64_t)rx.pending_raw.len > w->e->cfg->max_payload) {
        /* attachments spread over requests are bounded like one request */
        sg_warn("session " SG_SID_FMT ": binary packet beyond max_payload", ss->sid);
        *bad = true;
        if (eng_close_session(w, ss, CLOSE_PARSE) < 0)
            goto out;
    } else if (rx.has_pending &&
               sg_buf_append(&ss->partial, rx.pending_raw.data, rx.pending_raw.len) < 0) {
        goto out;
    }
    rc = 0;
out:
    sg_sio_packet_clear(&rx.pending);
    json_decref(rx.bins);
    sg_buf_free(&rx.pending_raw);
    sg_eio_packets_free(&prev);
    return rc;
}

/* ---- transactions -------------------------------------------------------------- */

/* Begin and load the open session sid. SG_OK, SG_E_SID (nothing begun is
 * left open), SG_E_INTERNAL. */
static int begin_session(sg_worker *w, const char *sid, sg_session *ss, bool allow_closed)
{
    if (!sg_id_valid(sid))
        return SG_E_SID;
    if (sg_store_begin(w->store) != 0)
        return SG_E_INTERNAL;
    int rc = sg_store_session_get(w->store, sid, ss);
    if (rc == 0 && (allow_closed || ss->state == SG_SESSION_OPEN)) {
        eng_tx_enter(w);
        w->ss = ss;
        w->ss_read = *ss;
        sg_buf_init(&w->ss_read.partial); /* the copy does not own it */
        w->ss_read_partial = ss->partial.len;
        return SG_OK;
    }
    if (rc == 0)
        sg_session_clear(ss);
    sg_store_rollback(w->store);
    return rc == SG_STORE_NOTFOUND || rc == 0 ? SG_E_SID : SG_E_INTERNAL;
}

/* Leave the session as it was and answer rc (an error that changes nothing). */
static int abort_session(sg_worker *w, sg_session *ss, int rc)
{
    eng_tx_leave(w);
    w->ss = NULL;
    sg_store_rollback(w->store);
    if (!w->batch) /* in a batch, what others committed is rung at its end */
        eng_forget_dirty(w);
    sg_session_clear(ss);
    return rc;
}

/* Did the request change ss since begin_session read it? A session with a
 * partial binary packet, before or after, counts as changed (the buffers
 * are not compared). */
static bool session_changed(const sg_worker *w, const sg_session *ss)
{
    const sg_session *r = &w->ss_read;
    return ss->partial.len > 0 || w->ss_read_partial > 0 || ss->state != r->state ||
           strcmp(ss->transport, r->transport) != 0 || ss->next_ping_at != r->next_ping_at ||
           ss->ping_sent != r->ping_sent || ss->expires_at != r->expires_at ||
           ss->connect_by != r->connect_by || ss->sent_upto != r->sent_upto ||
           strcmp(ss->poller, r->poller) != 0 || ss->upgrading != r->upgrading ||
           ss->bcast_seen != r->bcast_seen;
}

/* Did the request change only the hot fields (sg_store_session_update_hot)?
 * Most do: a GET answered moves sent_upto, poller and the ping schedule. */
static bool session_hot_only(const sg_worker *w, const sg_session *ss)
{
    const sg_session *r = &w->ss_read;
    return ss->state == r->state && ss->expires_at == r->expires_at &&
           ss->connect_by == r->connect_by && ss->upgrading == r->upgrading;
}

/* Write ss back (unless unchanged: a POST of messages, a re-check that
 * leaves a GET waiting write nothing; only its hot fields when the others
 * are as read), commit, ring; or roll back when result is internal.
 *
 * The hot write (measured 2026-12-06, broadcast to 1,000 parked polls):
 * the session's UPDATE was 21 % of siogate-fcgi's samples, two per
 * delivered message (the re-check that answers the GET, the GET that
 * parks again); SQLite does the full one in ~7 us a row, the hot one in
 * ~3.5 us, as it touches no index and wakes no trigger. */
static int end_session(sg_worker *w, sg_session *ss, int result)
{
    eng_tx_leave(w);
    w->ss = NULL;
    if (result != SG_E_INTERNAL && session_changed(w, ss) &&
        (session_hot_only(w, ss) ? sg_store_session_update_hot(w->store, ss)
                                 : sg_store_session_update(w->store, ss)) != 0)
        result = SG_E_INTERNAL;
    if (result != SG_E_INTERNAL && sg_store_commit(w->store) != 0)
        result = SG_E_INTERNAL;
    if (result == SG_E_INTERNAL) {
        sg_store_rollback(w->store);
        if (!w->batch)
            eng_forget_dirty(w);
    } else {
        eng_ring_dirty(w);
    }
    sg_session_clear(ss);
    return result;
}

/* ---- public: engine and workers ------------------------------------------------------ */

/* full: migrate the store and load the plugins (servers); otherwise
 * neither (an emitter: the CLI's emit, whose caller checked the schema). */
static sg_engine *engine_new(const sg_config *cfg, bool full)
{
    sg_engine *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->cfg = cfg;
    eng_host_init(&e->host, e);
    if (full) {
        sg_store *s = sg_store_open(cfg->db);
        if (!s)
            goto fail;
        sg_store_close(s);
    }
    if (!(e->bell_dir = sg_config_bell_dir(cfg)))
        goto fail;
    if (!(e->reg = sg_plugins_load(cfg->plugins, full ? cfg->nplugins : 0, &e->host)))
        goto fail;
    return e;
fail:
    sg_engine_free(e);
    return NULL;
}

sg_engine *sg_engine_new(const sg_config *cfg) { return engine_new(cfg, true); }

sg_engine *sg_engine_new_emitter(const sg_config *cfg) { return engine_new(cfg, false); }

void sg_engine_free(sg_engine *e)
{
    if (!e)
        return;
    sg_plugins_free(e->reg);
    free(e->bell_dir);
    free(e);
}

const sg_config *sg_engine_config(const sg_engine *e) { return e->cfg; }

int sg_engine_batch_begin(sg_worker *w)
{
    if (w->batch || sg_store_batch_begin(w->store) != 0)
        return SG_E_INTERNAL;
    w->batch = true;
    return SG_OK;
}

int sg_engine_batch_end(sg_worker *w)
{
    if (!w->batch)
        return SG_E_INTERNAL;
    w->batch = false;
    int rc = sg_store_batch_end(w->store) == 0 ? SG_OK : SG_E_INTERNAL;
    if (rc == SG_OK)
        eng_ring_dirty(w);
    else
        eng_forget_dirty(w);
    return rc;
}

sg_worker *sg_worker_new_on(sg_engine *e, sg_store *s)
{
    sg_worker *w = calloc(1, sizeof *w);
    if (!s || !w) {
        sg_store_close(s);
        free(w);
        return NULL;
    }
    w->e = e;
    w->store = s;
    sg_buf_init(&w->dirty);
    sg_buf_init(&w->direct);
    if (!(w->bell = sg_bell_ringer_db(e->bell_dir, e->cfg->db))) {
        sg_worker_free(w);
        return NULL;
    }
    return w;
}

sg_worker *sg_worker_new(sg_engine *e) { return sg_worker_new_on(e, sg_store_open(e->cfg->db)); }

void sg_worker_free(sg_worker *w)
{
    if (!w)
        return;
    sg_store_close(w->store);
    sg_bell_close(w->bell);
    sg_buf_free(&w->dirty);
    sg_buf_free(&w->direct);
    free(w);
}

/* ---- public: sessions ------------------------------------------------------------------ */

/* {"address":…,"url":…,"query":{…},"headers":{…},"time":ms} (new), or
 * NULL when memory ran out. */
static json_t *handshake_object(const sg_handshake *hs, int64_t now)
{
    json_t *o = json_object(), *q = json_object(), *h = json_object();
    if (!o || !q || !h)
        goto fail;
    if (hs->query) {
        /* names and values percent-decoded, the first of a name kept; a
         * name or value that is not UTF-8 once decoded, or a name holding
         * a %00, is left out */
        for (const char *p = hs->query; *p;) {
            size_t seg = strcspn(p, "&");
            size_t klen = strcspn(p, "=&");
            if (klen > 0) {
                const char *v = klen < seg ? p + klen + 1 : p + seg;
                size_t keylen, vlen;
                char *key = sg_pct_decode(p, klen, &keylen);
                char *val = sg_pct_decode(v, (size_t)(p + seg - v), &vlen);
                if (key && val && strlen(key) == keylen && !json_object_get(q, key))
                    json_object_set_new(q, key, json_stringn(val, vlen));
                free(key);
                free(val);
            }
            p += seg;
            if (*p)
                p++;
        }
    }
    for (const char *const *p = hs->headers; p && p[0] && p[1]; p += 2)
        json_object_set_new(h, p[0], json_string(p[1]));
    /* every call made (each steals its value, even when it fails) */
    int bad = json_object_set_new(o, "address",
                                  hs->address ? json_string(hs->address) : json_null());
    bad |= json_object_set_new(o, "url", hs->url ? json_string(hs->url) : json_null());
    bad |= json_object_set_new(o, "query", q);
    bad |= json_object_set_new(o, "headers", h);
    bad |= json_object_set_new(o, "time", json_integer(now));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
fail:
    json_decref(o);
    json_decref(q);
    json_decref(h);
    return NULL;
}

/* The plugins' allow_request handlers on hs (before the session exists).
 * SG_OK, SG_E_REFUSED (hs->refused_* set) or SG_E_INTERNAL. */
static int allow_request(sg_worker *w, sg_handshake *hs, json_t *handshake,
                         const char *transport)
{
    json_t *info = json_copy(handshake); /* shallow: query and headers shared */
    json_t *origin = json_object_get(json_object_get(handshake, "headers"), "origin");
    if (!info || json_object_set_new(info, "transport", json_string(transport)) ||
        json_object_set(info, "origin", origin ? origin : json_null())) {
        json_decref(info);
        return SG_E_INTERNAL;
    }
    sg_request req = {.w = w, .code = 4};
    eng_run_allow_request(&req, info);
    json_decref(info);
    if (!req.refused)
        return SG_OK;
    int status, code;
    const char *message;
    /* Engine.IO code N is result -N-1: 403 for 4 (Forbidden), else 400 */
    sg_engine_error(-req.code - 1, &status, &code, &message);
    hs->refused_status = status;
    hs->refused_code = code;
    snprintf(hs->refused_message, sizeof hs->refused_message, "%s",
             req.message[0] ? req.message : message);
    return SG_E_REFUSED;
}

/* Handshakes refused by a limit are logged at most once per
 * REFUSAL_LOG_MS per limit and process (a flood must not flood the log). */
#define REFUSAL_LOG_MS 10000

struct refusals {
    _Atomic int64_t last_log;   /* sg_mono_ms() of the last message */
    _Atomic int64_t count;      /* refused since */
};
static struct refusals rate_refusals, full_refusals;

/* Count a refusal; true when it is to be logged, with *n refused since the
 * last message (this one included). */
static bool refusal_logged(struct refusals *r, int64_t *n)
{
    *n = ++r->count;
    int64_t now = sg_mono_ms(), last = r->last_log;
    if (now - last < REFUSAL_LOG_MS || !atomic_compare_exchange_strong(&r->last_log, &last, now))
        return false;
    r->count = 0;
    return true;
}

/* The limits checked in the handshake's transaction: SG_OK, SG_E_RATE,
 * SG_E_FULL or SG_E_INTERNAL. */
static int check_limits(sg_worker *w, const sg_handshake *hs, int64_t now)
{
    const sg_config *cfg = w->e->cfg;
    if (cfg->handshakes_per_second > 0 && hs->address) {
        int t = sg_store_rate_take(w->store, hs->address, cfg->handshakes_per_second, now);
        if (t < 0)
            return SG_E_INTERNAL;
        int64_t n;
        if (t == 0 && refusal_logged(&rate_refusals, &n))
            sg_warn("handshake from %s refused: over handshakes_per_second = %lld (%lld "
                    "refused in this process since the last such message)", hs->address,
                    (long long)cfg->handshakes_per_second, (long long)n);
        if (t == 0)
            return SG_E_RATE;
    }
    if (cfg->max_sessions > 0) {
        int64_t n = sg_store_sessions_open(w->store);
        if (n < 0)
            return SG_E_INTERNAL;
        int64_t k;
        if (n >= cfg->max_sessions && refusal_logged(&full_refusals, &k))
            sg_warn("handshake from %s refused: %lld sessions open, max_sessions = %lld (%lld "
                    "refused in this process since the last such message)",
                    hs->address ? hs->address : "?", (long long)n,
                    (long long)cfg->max_sessions, (long long)k);
        if (n >= cfg->max_sessions)
            return SG_E_FULL;
    }
    return SG_OK;
}

/* max_queued_packets (config.h): what was queued for a session and not
 * handed to its transport yet is counted when a request of its own comes
 * (a POST, a GET, WebSocket frames), after the request's packets were
 * applied, in the request's transaction: once per request, never per
 * frame queued (a count per push made a per-recipient broadcast to 10,000
 * sockets take 89-95 ms instead of 41-81 ms), so an emitter never pays
 * for it. A client that sends nothing at all is left to its heartbeat
 * deadline. Its own queue rows are counted (a packet with attachments is
 * one Engine.IO packet per frame), not the broadcast log's rows, which
 * every session shares: counting which of those a session's sockets match
 * costs what a take costs (~2 us a row), and the log is bounded by the
 * slowest session's heartbeat deadline anyway (the sweep deletes what
 * every open session has evaluated). Over the limit: its volatile packets
 * go first; if it is still over, the session is closed with "transport
 * error" (what a transport that fails gives: the reference server has no
 * outbound limit, its buffer grows until the heartbeat ends the session)
 * and its queue deleted. Both are logged at most once per REFUSAL_LOG_MS
 * per process, with a count and the first characters of the session id
 * (a session id is a credential: the log is not the place for one). */
static struct refusals queue_sheds, queue_closes;

/* The check above for ss (open or not), inside its transaction. 0: within
 * the limit (volatile packets dropped, perhaps); 1: it was over: ss is
 * closed; -1: a store failure. */
static int queue_limit(sg_worker *w, sg_session *ss)
{
    int64_t max = w->e->cfg->max_queued_packets;
    if (max <= 0 || ss->state != SG_SESSION_OPEN)
        return 0;
    int64_t n = sg_store_queue_count(w->store, ss->sid, ss->sent_upto, max + 1);
    if (n < 0)
        return -1;
    if (n <= max)
        return 0;
    int shed = sg_store_queue_shed(w->store, ss->sid, ss->sent_upto);
    if (shed < 0)
        return -1;
    int64_t k;
    if (shed > 0) {
        if (refusal_logged(&queue_sheds, &k))
            sg_info("session " SG_SID_FMT ": over max_queued_packets = %lld: %d volatile frames dropped "
                    "(%lld such drops in this process since the last such message)",
                    ss->sid, (long long)max, shed, (long long)k);
        if ((n = sg_store_queue_count(w->store, ss->sid, ss->sent_upto, max + 1)) < 0)
            return -1;
        if (n <= max)
            return 0;
    }
    if (refusal_logged(&queue_closes, &k))
        sg_warn("session " SG_SID_FMT ": more than max_queued_packets = %lld packets queued: closed "
                "(transport error) (%lld sessions in this process since the last such message)",
                ss->sid, (long long)max, (long long)k);
    /* what it missed is gone: its sockets cannot be recovered whole */
    w->no_recover = true;
    int rc = sg_store_queue_drop(w->store, ss->sid) != 0 ||
             eng_close_session(w, ss, "transport error") < 0 ? -1 : 1;
    w->no_recover = false;
    return rc;
}

int sg_engine_open(sg_worker *w, sg_handshake *hs, const char *transport,
                   char sid[SG_ID_LEN + 1], sg_buf *open_packet)
{
    const sg_config *cfg = w->e->cfg;
    bool polling = strcmp(transport, "polling") == 0;
    if (!polling && strcmp(transport, "websocket") != 0)
        return SG_E_TRANSPORT;
    int64_t now = sg_now_ms();
    sg_session ss;
    memset(&ss, 0, sizeof ss);
    sg_buf_init(&ss.partial);
    if (sg_id_new(ss.sid) < 0)
        return SG_E_INTERNAL;
    sg_copy(ss.transport, sizeof ss.transport, transport);
    ss.created_at = now;
    schedule_ping(cfg, &ss, now);
    ss.connect_by = now + cfg->connect_timeout;
    json_t *handshake = handshake_object(hs, now);
    char *hj = handshake ? json_dumps(handshake, JSON_COMPACT) : NULL;
    int rc = hj ? allow_request(w, hs, handshake, transport) : SG_E_INTERNAL;
    json_decref(handshake);
    if (rc != SG_OK) {
        free(hj);
        return rc;
    }
    if (sg_store_begin(w->store) != 0) {
        free(hj);
        return SG_E_INTERNAL;
    }
    rc = check_limits(w, hs, now);
    if (rc == SG_OK)
        rc = sg_store_session_insert(w->store, &ss, hj) == 0 && sg_store_commit(w->store) == 0
                 ? SG_OK : SG_E_INTERNAL;
    free(hj);
    if (rc != SG_OK) {
        sg_store_rollback(w->store);
        return rc;
    }
    memcpy(sid, ss.sid, sizeof ss.sid);
    if (sg_buf_printf(open_packet,
                      "0{\"sid\":\"%s\",\"upgrades\":[%s],\"pingInterval\":%lld,"
                      "\"pingTimeout\":%lld,\"maxPayload\":%lld}",
                      ss.sid, polling ? "\"websocket\"" : "", (long long)cfg->ping_interval,
                      (long long)cfg->ping_timeout, (long long)cfg->max_payload) < 0)
        return SG_E_INTERNAL;
    sg_debug("session %s opened (%s)", ss.sid, transport);
    return SG_OK;
}

int sg_engine_cookie(const sg_config *cfg, const char *sid, sg_buf *out)
{
    static const char *const samesite[] = {NULL, "Strict", "Lax", "None"};
    if (!cfg->cookie)
        return 0;
    /* the attributes in the order of the reference's cookie.serialize */
    int rc = sg_buf_printf(out, "Set-Cookie: %s=%s; Path=%s", cfg->cookie, sid,
                           cfg->cookie_path ? cfg->cookie_path : "/");
    if (cfg->cookie_httponly)
        rc |= sg_buf_puts(out, "; HttpOnly");
    if (cfg->cookie_secure)
        rc |= sg_buf_puts(out, "; Secure");
    if (cfg->cookie_samesite > SG_SAMESITE_OFF && cfg->cookie_samesite <= SG_SAMESITE_NONE)
        rc |= sg_buf_printf(out, "; SameSite=%s", samesite[cfg->cookie_samesite]);
    rc |= sg_buf_puts(out, "\r\n");
    return rc ? -1 : 0;
}

int sg_engine_receive(sg_worker *w, const char *sid, const sg_eio_packets *pkts)
{
    sg_session ss;
    int rc = begin_session(w, sid, &ss, false);
    if (rc != SG_OK)
        return rc;
    bool bad = false;
    rc = apply_packets(w, &ss, pkts, &bad) < 0 || queue_limit(w, &ss) < 0 ? SG_E_INTERNAL : SG_OK;
    rc = end_session(w, &ss, rc);
    return rc == SG_OK && bad ? SG_E_BADREQ : rc;
}

int sg_engine_ws_receive(sg_worker *w, const char *sid, const char *owner,
                        const sg_eio_packets *pkts, size_t direct_max,
                        int (*fn)(void *ud, bool binary, const void *frame, size_t len),
                        void *ud, bool *take_due)
{
    *take_due = true;
    sg_session ss;
    int rc = begin_session(w, sid, &ss, false);
    if (rc != SG_OK)
        return rc;
    /* the fast path only while this connection holds the session and
     * nothing queued before would be overtaken; only messages, whose
     * handlers leave the session open (a close or an upgrade packet takes
     * the queued path, and a take then sees the change) */
    bool direct = strcmp(ss.transport, "websocket") == 0 && strcmp(ss.poller, owner) == 0;
    for (size_t i = 0; i < pkts->n && direct; i++)
        direct = pkts->v[i].type == SG_EIO_MESSAGE || pkts->v[i].type == SG_EIO_PONG;
    if (direct) {
        int pending = sg_store_stream_pending(w->store, sid, ss.sent_upto, ss.bcast_seen);
        if (pending < 0)
            return end_session(w, &ss, SG_E_INTERNAL);
        direct = pending == 0;
    }
    sg_buf_reset(&w->direct);
    w->direct_sid = direct ? ss.sid : NULL;
    w->direct_max = direct_max;
    w->queued_own = false;
    bool bad = false;
    rc = apply_packets(w, &ss, pkts, &bad) < 0 ? SG_E_INTERNAL : SG_OK;
    /* on the fast path with nothing of its own queued, its queue is as
     * empty as it was: no count (see queue_limit) */
    bool empty = w->direct_sid && !w->queued_own;
    w->direct_sid = NULL;
    int over = rc == SG_OK && !empty ? queue_limit(w, &ss) : 0;
    if (over < 0)
        rc = SG_E_INTERNAL;
    else if (over > 0)
        sg_buf_reset(&w->direct); /* closed: nothing more goes to it */
    bool open = ss.state == SG_SESSION_OPEN;
    rc = end_session(w, &ss, rc);
    if (rc == SG_OK && bad)
        rc = SG_E_BADREQ;
    if (rc == SG_OK) {
        *take_due = w->queued_own || !open;
        for (size_t at = 0; at + 5 <= w->direct.len;) {
            const char *p = w->direct.data + at;
            uint32_t n;
            memcpy(&n, p + 1, sizeof n);
            if (fn(ud, (p[0] & 1) != 0, p + 5, n) != 0) {
                rc = SG_E_INTERNAL;
                break;
            }
            at += 5 + (size_t)n;
        }
    }
    sg_buf_reset(&w->direct);
    return rc;
}

int sg_engine_close(sg_worker *w, const char *sid, const char *reason)
{
    sg_session ss;
    int rc = begin_session(w, sid, &ss, false);
    if (rc != SG_OK)
        return rc;
    rc = eng_close_session(w, &ss, reason) < 0 ? SG_E_INTERNAL : SG_OK;
    return end_session(w, &ss, rc);
}

struct sweep { sg_worker *w; int64_t now; int closed; };

static void sweep_one(void *ud, const char *sid)
{
    struct sweep *sw = ud;
    sg_session ss;
    if (begin_session(sw->w, sid, &ss, false) != SG_OK)
        return;
    const char *reason = NULL;
    if (ss.expires_at < sw->now)
        reason = "ping timeout";
    else if (ss.connect_by && ss.connect_by < sw->now)
        reason = CLOSE_FORCED; /* no namespace joined within connect_timeout */
    int rc = SG_OK;
    if (reason) {
        rc = eng_close_session(sw->w, &ss, reason) < 0 ? SG_E_INTERNAL : SG_OK;
        if (rc == SG_OK)
            sw->closed++;
    }
    end_session(sw->w, &ss, rc);
}

/* Closed sessions are kept this long (ms) for late requests to get a
 * clean "Session ID unknown" and a last flush, then purged. */
#define PURGE_AFTER_MS 60000

int sg_engine_sweep(sg_worker *w)
{
    struct sweep sw = {w, sg_now_ms(), 0};
    if (sg_store_sessions_expired(w->store, sw.now, 256, sweep_one, &sw) < 0 ||
        eng_acks_expire(w, sw.now) < 0)
        return -1;
    if (sg_store_begin(w->store) == 0) {
        /* a token bucket untouched for a second is full: its row means nothing */
        if (sg_store_sessions_purge(w->store, sw.now - PURGE_AFTER_MS) < 0 ||
            sg_store_rate_purge(w->store, sw.now - 1000) < 0 ||
            sg_store_bcast_gc(w->store, INT64_MAX) < 0 ||
            sg_store_ghosts_purge(w->store, sw.now) < 0)
            sg_store_rollback(w->store);
        else
            sg_store_commit(w->store);
    }
    return sw.closed;
}

/* ---- public: polling --------------------------------------------------------------------- */

int sg_engine_post(sg_worker *w, const char *sid, const char *body, size_t len)
{
    const sg_config *cfg = w->e->cfg;
    sg_eio_packets pkts;
    sg_eio_packets_init(&pkts);
    if ((int64_t)len > cfg->max_payload) {
        int rc = sg_engine_close(w, sid, "transport error");
        sg_warn("session " SG_SID_FMT ": POST of %zu bytes beyond max_payload %lld", sid, len,
                (long long)cfg->max_payload);
        return rc == SG_OK ? SG_E_TOOLARGE : rc;
    }
    sg_session ss;
    int rc = begin_session(w, sid, &ss, false);
    if (rc != SG_OK)
        return rc;
    if (expired_now(w, &ss, &rc)) {
        /* the pong came too late: the session is gone (rc: SG_E_SID) */
    } else if (strcmp(ss.transport, "polling") != 0) {
        rc = SG_E_BADREQ; /* upgraded: polling requests are refused */
    } else {
        int drc = sg_eio_decode_payload(body, len, &pkts);
        if (drc == SG_EIO_ENOMEM) {
            rc = SG_E_INTERNAL;
        } else if (drc != 0) {
            sg_warn("session " SG_SID_FMT ": bad polling payload: %s", sid, sg_eio_strerror(drc));
            /* not Engine.IO at all: the reference forgets the session */
            rc = close_session(w, &ss, CLOSE_PARSE, true) < 0 ? SG_E_INTERNAL : SG_OK;
        } else {
            /* a packet the protocol forbids closes the session ("parse
             * error"); the POST itself was received: "ok", as from the
             * reference server, and the client learns of the close on its
             * GET */
            bool bad = false;
            rc = apply_packets(w, &ss, &pkts, &bad) < 0 || queue_limit(w, &ss) < 0
                     ? SG_E_INTERNAL : SG_OK;
        }
    }
    sg_eio_packets_free(&pkts);
    return end_session(w, &ss, rc);
}

struct take {
    sg_buf *payload;
    bool closed;          /* the session is closed: mind the close marker */
    int n;                /* frames in the payload */
    bool marker;          /* the close marker is in the payload */
};

static int take_frame(void *ud, bool binary, const void *frame, size_t len)
{
    struct take *t = ud;
    if (t->closed && is_close_marker(binary, frame, len)) {
        /* the close goes alone, in a later response than what came before
         * it, as from the reference server: a client handles a close at
         * once but Socket.IO packets a tick later */
        if (t->n > 0)
            return 1;
        t->marker = true;
    }
    t->n++;
    return sg_eio_append_polling(t->payload, binary, frame, len) < 0 ? -1 : 0;
}

/* An upgrade whose "5" does not come within this time is given up (the
 * WebSocket daemon also aborts it when the connection ends first). */
#define UPGRADE_LIMIT_MS 10000
/* During an upgrade a GET with nothing to carry is answered noop, so that
 * the client can pause polling and send "5": the reference server's upgrade
 * timer writes it into a held GET every this many ms from the "2probe" on.
 * Until that first tick a GET is held (one held before the probe too: the
 * probe's ring re-arms it), so that a "5" committed meanwhile turns it into
 * a 400 (see poll_common) however the GET and the "5" raced to the two
 * daemons; after it, the noop comes at once (the reference: at the next
 * tick). */
#define UPGRADE_NOOP_MS 100

/* What a GET answers for session ss now (inside the transaction). */
static int poll_take(sg_worker *w, sg_session *ss, const char *token, sg_buf *payload,
                     int64_t *wake_at)
{
    const sg_config *cfg = w->e->cfg;
    int64_t now = sg_now_ms();
    if (ss->state == SG_SESSION_OPEN && ss->expires_at < now &&
        eng_close_session(w, ss, "ping timeout") < 0)
        return SG_E_INTERNAL;
    struct take t = {payload, ss->state != SG_SESSION_OPEN, 0, false};
    /* A due ping goes straight into this answer: queueing it would cost an
     * insert now and a delete at the next GET, for every session once per
     * ping interval (most of what idle sessions cost). Lost with the
     * answer, it is lost as the reference server loses it: the heartbeat
     * deadline then closes a session whose client is gone anyway. */
    if (ss->state == SG_SESSION_OPEN && !ss->ping_sent && now >= ss->next_ping_at) {
        if (sg_eio_append_polling(payload, false, "2", 1) < 0)
            return SG_E_INTERNAL;
        ss->ping_sent = 1;
        t.n = 1;
    }
    int n = sg_store_stream_read(w->store, ss->sid, ss->sent_upto, &ss->bcast_seen,
                                 (size_t)cfg->max_payload, take_frame, &t, &ss->sent_upto, NULL);
    if (n < 0)
        return SG_E_INTERNAL;
    n = t.n; /* the ping included */
    if (ss->state != SG_SESSION_OPEN) {
        ss->poller[0] = '\0';
        if (n == 0) /* a GET held across the close that already went out */
            n = sg_eio_append_polling(payload, false, "6", 1) < 0 ? -1 : 1;
        if (n < 0 || (t.marker && sg_store_queue_drop(w->store, ss->sid) != 0))
            return SG_E_INTERNAL;
        return SG_OK;
    }
    if (ss->upgrading && now - ss->upgrading > UPGRADE_LIMIT_MS) {
        sg_warn("session " SG_SID_FMT ": upgrade not completed within %d ms: stays on polling", ss->sid,
                UPGRADE_LIMIT_MS);
        ss->upgrading = 0;
    }
    int64_t tick = 0; /* upgrading: when a held GET is answered noop */
    if (n == 0 && ss->upgrading) {
        if (now - ss->upgrading >= UPGRADE_NOOP_MS)
            n = sg_eio_append_polling(payload, false, "6", 1) < 0 ? -1 : 1; /* let it pause */
        else
            tick = ss->upgrading + UPGRADE_NOOP_MS;
    }
    if (n < 0)
        return SG_E_INTERNAL;
    if (n > 0) {
        ss->poller[0] = '\0';
        return SG_OK;
    }
    sg_copy(ss->poller, sizeof ss->poller, token);
    *wake_at = ss->ping_sent ? ss->expires_at : ss->next_ping_at;
    if (ss->connect_by && ss->connect_by < *wake_at)
        *wake_at = ss->connect_by;
    if (tick && tick < *wake_at)
        *wake_at = tick;
    return SG_WAIT;
}

static int poll_common(sg_worker *w, const char *sid, const char *token, sg_buf *payload,
                       int64_t *wake_at, bool first)
{
    sg_session ss;
    int over;
    int rc = begin_session(w, sid, &ss, true);
    if (rc != SG_OK)
        return rc;
    if (first && ss.state != SG_SESSION_OPEN) {
        /* closed: a last GET still gets what was queued before the close
         * (then the close packet); after that the session is unknown */
        int pending = sg_store_queue_pending(w->store, sid, ss.sent_upto);
        if (pending <= 0)
            return abort_session(w, &ss, pending < 0 ? SG_E_INTERNAL : SG_E_SID);
    } else if (first) {
        if (expired_now(w, &ss, &rc)) {
            /* gone before this GET came (rc: SG_E_SID) */
        } else if (strcmp(ss.transport, "polling") != 0) {
            rc = SG_E_BADREQ;
        } else if (ss.poller[0] && strcmp(ss.poller, token) != 0 && poller_alive(ss.poller)) {
            sg_warn("session " SG_SID_FMT ": overlapping GET requests: closing", sid);
            rc = eng_close_session(w, &ss, "transport error") < 0 ? SG_E_INTERNAL : SG_E_BADREQ;
        } else if (sg_store_queue_trim(w->store, sid, ss.sent_upto) != 0) {
            /* the client polls again: what the previous response carried arrived */
            rc = SG_E_INTERNAL;
        } else if ((over = queue_limit(w, &ss)) != 0) {
            /* closed over max_queued_packets: gone before this GET, as
             * for expired_now (its queue went with it) */
            rc = over < 0 ? SG_E_INTERNAL : SG_E_SID;
        }
    } else if (ss.state == SG_SESSION_OPEN && strcmp(ss.transport, "polling") != 0) {
        /* The "5" came while this GET was held. The reference server answers
         * a GET it held then with the close packet, and one that comes after
         * the "5" with 400: siogate cannot tell this GET from one sent after
         * the "5" that reached this process before the WebSocket daemon
         * committed it, so it answers as if the "5" had been first (the
         * client does not poll after its "5" anyway: either answer ends the
         * polling transport, and the session goes on over the WebSocket). */
        return abort_session(w, &ss, SG_E_BADREQ);
    } else if (ss.state == SG_SESSION_OPEN && strcmp(ss.poller, token) != 0) {
        /* the slot was taken from this GET; answer it noop */
        rc = sg_buf_putc(payload, '0' + SG_EIO_NOOP) < 0 ? SG_E_INTERNAL : SG_OK;
        return abort_session(w, &ss, rc);
    }
    if (rc == SG_OK)
        rc = poll_take(w, &ss, token, payload, wake_at);
    if (rc == SG_E_BADREQ && ss.state == SG_SESSION_OPEN) {
        /* refused without a close (e.g. upgraded session): change nothing */
        return abort_session(w, &ss, rc);
    }
    return end_session(w, &ss, rc);
}

int sg_engine_poll(sg_worker *w, const char *sid, const char *token, sg_buf *payload,
                   int64_t *wake_at)
{
    return poll_common(w, sid, token, payload, wake_at, true);
}

int sg_engine_poll_again(sg_worker *w, const char *sid, const char *token, sg_buf *payload,
                         int64_t *wake_at)
{
    return poll_common(w, sid, token, payload, wake_at, false);
}

int sg_engine_poll_release(sg_worker *w, const char *sid, const char *token)
{
    sg_session ss;
    int rc = begin_session(w, sid, &ss, false);
    if (rc != SG_OK)
        return rc == SG_E_SID ? SG_OK : rc;
    if (strcmp(ss.poller, token) == 0)
        ss.poller[0] = '\0';
    return end_session(w, &ss, SG_OK);
}

/* ---- public: websocket ------------------------------------------------------------------- */

/* Begin on sid, which must be open; SG_OK or an error (nothing left begun). */
static int ws_begin(sg_worker *w, const char *sid, sg_session *ss)
{
    return begin_session(w, sid, ss, false);
}

int sg_engine_ws_probe(sg_worker *w, const char *sid)
{
    sg_session ss;
    int rc = ws_begin(w, sid, &ss);
    if (rc != SG_OK)
        return rc;
    if (strcmp(ss.transport, "polling") != 0 ||
        (ss.upgrading && sg_now_ms() - ss.upgrading <= UPGRADE_LIMIT_MS))
        return abort_session(w, &ss, SG_E_BADREQ);
    ss.upgrading = sg_now_ms();
    eng_mark_dirty(w, sid); /* a held GET is answered noop at the upgrade's first tick */
    return end_session(w, &ss, SG_OK);
}

int sg_engine_ws_upgrade(sg_worker *w, const char *sid, const char *owner)
{
    sg_session ss;
    int rc = ws_begin(w, sid, &ss);
    if (rc != SG_OK)
        return rc;
    if (strcmp(ss.transport, "polling") != 0 || !ss.upgrading)
        return abort_session(w, &ss, SG_E_BADREQ);
    /* the client sends "5" only after its last poll completed: what that
     * poll carried has arrived */
    if (sg_store_queue_trim(w->store, sid, ss.sent_upto) != 0)
        return end_session(w, &ss, SG_E_INTERNAL);
    snprintf(ss.transport, sizeof ss.transport, "websocket");
    sg_copy(ss.poller, sizeof ss.poller, owner);
    ss.upgrading = 0;
    eng_mark_dirty(w, sid);
    return end_session(w, &ss, SG_OK);
}

int sg_engine_ws_abort(sg_worker *w, const char *sid)
{
    sg_session ss;
    int rc = ws_begin(w, sid, &ss);
    if (rc != SG_OK)
        return rc;
    if (!ss.upgrading)
        return abort_session(w, &ss, SG_OK);
    ss.upgrading = 0;
    return end_session(w, &ss, SG_OK);
}

int sg_engine_ws_can_upgrade(sg_worker *w, const char *sid)
{
    if (!sg_id_valid(sid))
        return SG_E_SID;
    sg_session ss;
    int rc = sg_store_session_get(w->store, sid, &ss);
    if (rc == SG_STORE_NOTFOUND)
        return SG_E_SID;
    if (rc != 0)
        return SG_E_INTERNAL;
    int64_t now = sg_now_ms();
    if (ss.state != SG_SESSION_OPEN || ss.expires_at < now)
        rc = SG_E_SID;
    else if (strcmp(ss.transport, "polling") != 0 ||
             (ss.upgrading && now - ss.upgrading <= UPGRADE_LIMIT_MS))
        rc = SG_E_BADREQ;
    else
        rc = SG_OK;
    sg_session_clear(&ss);
    return rc;
}

int sg_engine_ws_attach(sg_worker *w, const char *sid, const char *owner)
{
    sg_session ss;
    int rc = ws_begin(w, sid, &ss);
    if (rc != SG_OK)
        return rc;
    if (strcmp(ss.transport, "websocket") != 0 || ss.poller[0])
        return abort_session(w, &ss, SG_E_BADREQ);
    sg_copy(ss.poller, sizeof ss.poller, owner);
    return end_session(w, &ss, SG_OK);
}

struct ws_take {
    int (*fn)(void *ud, bool binary, const void *frame, size_t len);
    void *ud;
};

static int ws_take_frame(void *ud, bool binary, const void *frame, size_t len)
{
    struct ws_take *t = ud;
    if (is_close_marker(binary, frame, len))
        return 0; /* a WebSocket session ends with the WebSocket's own close */
    return t->fn(t->ud, binary, frame, len);
}

int sg_engine_ws_take(sg_worker *w, const char *sid, const char *owner, size_t max_bytes,
                      int (*fn)(void *ud, bool binary, const void *frame, size_t len),
                      void *ud, int64_t *wake_at, bool *more)
{
    sg_session ss;
    int rc = begin_session(w, sid, &ss, true);
    if (rc != SG_OK)
        return rc;
    if (strcmp(ss.transport, "websocket") != 0 || strcmp(ss.poller, owner) != 0) {
        if (ss.state != SG_SESSION_OPEN)
            return abort_session(w, &ss, SG_E_SID);
        return abort_session(w, &ss, SG_E_BADREQ);
    }
    int64_t now = sg_now_ms();
    bool changed = false;
    if (ss.state == SG_SESSION_OPEN && ss.expires_at < now) {
        if (eng_close_session(w, &ss, "ping timeout") < 0)
            return end_session(w, &ss, SG_E_INTERNAL);
        changed = true;
    }
    /* a due ping goes straight to the connection: queueing it would ring
     * this very daemon for one more take */
    if (ss.state == SG_SESSION_OPEN && !ss.ping_sent && now >= ss.next_ping_at &&
        fn(ud, false, "2", 1) == 0) {
        ss.ping_sent = 1;
        changed = true;
    }
    struct ws_take t = {fn, ud};
    int64_t before = ss.sent_upto, seen = ss.bcast_seen;
    if (sg_store_stream_read(w->store, sid, ss.sent_upto, &ss.bcast_seen, max_bytes,
                             ws_take_frame, &t, &ss.sent_upto, more) < 0)
        return end_session(w, &ss, SG_E_INTERNAL);
    if (ss.bcast_seen != seen)
        changed = true;
    /* a WebSocket delivers in order or dies: what was written is done */
    if (ss.sent_upto != before) {
        /* with recovery on, the events of the window stay (below
         * sent_upto) until they are older than it: written is not yet
         * arrived, and a client recovering gets them again unless its
         * offset says it has them */
        int64_t window = w->e->cfg->recovery_window;
        if ((window > 0 ? sg_store_queue_trim_kept(w->store, sid, ss.sent_upto,
                                                   (now - window) * 1000)
                        : sg_store_queue_trim(w->store, sid, ss.sent_upto)) != 0)
            return end_session(w, &ss, SG_E_INTERNAL);
        changed = true;
    }
    if (ss.state != SG_SESSION_OPEN) {
        if (sg_store_queue_drop(w->store, sid) != 0)
            return end_session(w, &ss, SG_E_INTERNAL);
        rc = end_session(w, &ss, SG_OK);
        return rc == SG_OK ? SG_E_SID : rc;
    }
    *wake_at = ss.ping_sent ? ss.expires_at : ss.next_ping_at;
    if (ss.connect_by && ss.connect_by < *wake_at)
        *wake_at = ss.connect_by;
    if (!changed)
        return abort_session(w, &ss, SG_OK); /* nothing to write: no commit */
    return end_session(w, &ss, SG_OK);
}
