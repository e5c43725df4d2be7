/* wsd_main.c - siogate-wsd: the WebSocket daemon, the Engine.IO
 * "websocket" transport.
 *
 * One thread, one epoll set, non-blocking sockets, many connections:
 *   - the listening socket;
 *   - a signalfd for SIGTERM/SIGINT;
 *   - the doorbell waiter (doorbell.h): rings name sessions whose store
 *     queue changed, or "*";
 *   - every connection.
 *
 * A connection goes through these states:
 *   HTTP    reading the request head (at most SG_WS_MAX_HEAD bytes, within
 *           HANDSHAKE_TIMEOUT_MS, else it is closed: slowloris). Every
 *           Engine.IO check is made before the upgrade, as the reference
 *           server does (path -> 404; not an upgrade, wrong transport,
 *           EIO other than 4, unknown sid -> 400 with the Engine.IO JSON
 *           error); then the RFC 6455 checks (400, or 426 for a version
 *           other than 13), then 101.
 *   PROBE   upgrade from polling (the URL has a sid): waiting for "2probe";
 *           sg_engine_ws_probe, answer "3probe". A session upgraded or
 *           being upgraded by another WebSocket already gets its 101 and
 *           the close at once, as from the reference server (checked before
 *           the 101, then again while no probe came: 100, 200, 400 ms...);
 *   PROBED  waiting for "5": sg_engine_ws_upgrade. Before the upgrade only
 *           those two packets are accepted; anything else, or no upgrade
 *           within UPGRADE_TIMEOUT_MS, closes the WebSocket and leaves the
 *           session on polling (the reference's maybeUpgrade).
 *   OPEN    the connection carries the session: sg_engine_open +
 *           sg_engine_ws_attach for a session born on the WebSocket (the
 *           open packet is the first frame), or the upgrade above.
 *   CLOSING a close frame (or an HTTP error answer) is being written; then
 *           shutdown(SHUT_WR) and wait for the peer's EOF, at most
 *           CLOSE_LINGER_MS.
 *
 * One turn of the loop: read every readable connection (wslay parses,
 * unmasks, reassembles, validates UTF-8 and answers pings); the packets
 * one connection delivered in the turn go to sg_engine_receive in one call
 * (one transaction: group commit). Then rings and due timers mark
 * connections, and every connection marked this turn gets one
 * sg_engine_ws_take, whose frames are written straight into the
 * connection's output buffer and sent.
 *
 * Rings. The engine rings every waiter after each commit, this process's
 * own included, and the kernel queues at most net.unix.max_dgram_qlen
 * datagrams (often 10) per waiter; beyond that rings are dropped. So the
 * doorbell is drained after every engine call, not once per turn: a busy
 * turn never fills the queue with its own rings, and a drain that finds
 * half a queue or more means rings from other processes may have been
 * lost: every open session is then taken again (at most once per
 * FULL_RECHECK_GAP_MS, delayed, never skipped). That makes losses
 * visible, so the per-connection safety re-check can be slow
 * (RECHECK_MS); every session is taken at its ping time anyway.
 *
 * Timers: a min-heap (deadlines.h) on CLOCK_MONOTONIC ms, one deadline per
 * connection: the handshake or upgrade timeout, the close linger, or for
 * an open session the engine's wake_at (next ping, heartbeat deadline)
 * capped by the safety re-check (RECHECK_MS). sg_engine_sweep runs once a
 * second.
 *
 * Measured (2 vCPU shared with other test runs, loopback, tests/bench):
 * 10,000 idle sessions cost 9.1 KB each (RSS delta; 8.8 KB of it is
 * wslay's context with its two 4 KB buffers) and 6-7 % of a core with the
 * default 25 s ping interval (four store transactions per session per
 * ping cycle); a safety re-check every 5 s instead of 30 s made it 11.7 %.
 * Echo with 50 socket.io-client clients: 7-10k acked events/s with one
 * event in flight per client (two transactions per event: receive, take),
 * 24-27k/s with four in flight (their packets share a transaction). perf:
 * 65 % kernel (WAL writes, file locks, fdatasync), 25 % SQLite, under 3 %
 * this file and wslay. One transaction per loop turn (an experiment with
 * savepoints, rings deferred to the commit) gave 22.5k/s at one in flight.
 *
 * Back-pressure: a connection's output buffer is allocated when there is
 * something to send and freed once sent. While it holds OUT_LIMIT bytes or
 * more, take passes no more frames (they stay queued in the store) and the
 * connection is taken again once the buffer drains below OUT_LIMIT / 2.
 * The local fast path is bounded the same way: what would pass OUT_LIMIT
 * goes to the store (sg_engine_ws_receive's direct_max), so a client that
 * sends acked events and never reads grows the store, where
 * max_queued_packets closes its session, not this process. A client that
 * does not read at all never answers a ping and the heartbeat closes its
 * session.
 *
 * Close codes: 1000 when the session ends (closed by the engine, the
 * client, or taken by another connection) or an upgrade is refused; 1001
 * on shutdown (the session is closed with "server shutting down": a
 * WebSocket session cannot be resumed by another process); 1002 for a
 * protocol error of the client (wslay: unmasked frame, control frame over
 * 125 bytes or fragmented, bad opcode or close code; here: an Engine.IO
 * packet that does not decode, session closed with "parse error"); 1007
 * for a text message that is not UTF-8; 1009 for a message over
 * max_payload; 1011 for an internal error. The reference server sends its
 * close frames without a status code in all these cases except the ones ws
 * detects itself (1002, 1007, 1009). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <wslay/wslay.h>

#include "buf.h"
#include "config.h"
#include "daemon.h"
#include "deadlines.h"
#include "doorbell.h"
#include "engine.h"
#include "engineio.h"
#include "log.h"
#include "store.h"
#include "sidmap.h"
#include "util.h"
#include "ws.h"

static const char PROG[] = "siogate-wsd";

#define HANDSHAKE_TIMEOUT_MS 10000  /* request head complete within */
#define UPGRADE_TIMEOUT_MS 10000    /* "5" within (the reference's upgradeTimeout) */
#define CLOSE_LINGER_MS 2000        /* wait for the peer's EOF after our close */
#define STOP_GRACE_MS 2000          /* on SIGTERM, for the close frames to go */
#define RECHECK_MS 30000            /* safety re-check of an open session */
#define SWEEP_MS 1000               /* sg_engine_sweep period */
#define MIN_DELAY_MS 10             /* a re-check is never armed sooner */
#define INTERNAL_RETRY_MS 1000      /* after a store failure */
#define ACCEPT_PAUSE_MS 100         /* after EMFILE and the like */
#define PROBE_RECHECK_MS 100        /* before "2probe": is the session still upgradable? */
#define OUT_LIMIT (1u << 20)        /* back-pressure threshold per connection */
#define READ_BUDGET (256u * 1024)   /* bytes read per connection per turn */
#define HEAD_INITIAL 1024           /* first allocation for a request head */
#define MAX_EVENTS 256
#define MAX_ACCEPTS 128             /* per turn */
#define MAX_DATAGRAMS 4096          /* per drain, so rings cannot starve the rest */
#define FULL_RECHECK_GAP_MS 1000
/* Takes per transaction: a turn that makes 1,000 connections due (a
 * broadcast) commits and writes every 128 takes, so the first members have
 * it after 128 takes, not after all of them. Measured with 1,000 WebSocket
 * members (tests/bench/compare --only ws-broadcast, alternating runs, p50s):
 * siogate-wsd on its own port, first member 11.6-18.8 -> 4.3-6.6 ms, every
 * delivery 16-24 -> 13-17 ms, the last member unchanged (20-30 ms); behind
 * nginx first 13-21 -> 5-8 ms, every delivery 25-37 -> 23-35 ms, but the
 * last member 1-4 ms later in two runs of three (32-49 -> 34-54 ms): nginx,
 * on the same core, forwards each chunk while the next is taken. 256 gave
 * a little less of both, 64 a later last member. */
#define TAKES_PER_COMMIT 128

enum state { ST_HTTP, ST_PROBE, ST_PROBED, ST_OPEN, ST_CLOSING };

struct conn {
    int fd;
    uint8_t state;
    bool dead;          /* destroyed this turn; freed at its end */
    bool dirty;         /* in the take list of this turn */
    bool blocked;       /* output over OUT_LIMIT: take again when it drains */
    bool flush_due;     /* in the flush list: this turn's transaction writes to its output */
    bool received;      /* ... and holds packets it received (or its probe, its upgrade) */
    bool opened;        /* ... and the session its 101 answers */
    bool out_armed;     /* EPOLLOUT registered */
    bool in_hash;       /* node is in d->sessions */
    bool shut;          /* shutdown(SHUT_WR) done */
    bool eof, ioerr;    /* seen by the wslay recv callback this turn */
    bool parse_error;   /* an Engine.IO packet did not decode */
    uint16_t stop_code; /* close the WebSocket with this code after reading */
    uint32_t budget;    /* bytes left to read this turn */
    char owner[SG_TOKEN_MAX]; /* its token "<pid>.<n>@<space>" (util.h), made once */
    int64_t upgrade_by; /* PROBE, PROBED: "5" by then (CLOCK_MONOTONIC ms) */
    char sid[SG_ID_LEN + 1];
    char *in;           /* request head; after it, bytes that followed it */
    uint32_t in_len, in_cap, in_off;
    char *out;          /* bytes to send: out[out_off..out_len) */
    size_t out_off, out_len, out_cap;
    size_t kept;        /* flush_due: bytes pending before the transaction wrote */
    wslay_event_context_ptr ws;
    sg_eio_packets rx;  /* packets read this turn */
    sg_deadline timer;  /* CLOCK_MONOTONIC ms, in d->timers */
    sg_sidnode node;    /* keyed by sid, in d->sessions while in_hash */
    struct conn *dnext;          /* take list / graveyard */
    struct conn *fnext;          /* flush list */
    struct conn *prev, *next;    /* every connection */
    char addr[INET6_ADDRSTRLEN];
};

struct wsd {
    const sg_config *cfg;
    sg_engine *engine;
    sg_worker *w;
    sg_bell *bell;
    int epfd, lfd, sigfd;
    bool listening, stopping;
    int64_t stop_at, accept_resume_at, next_sweep, last_full_recheck;
    long pid;
    uint64_t next_id;
    struct wslay_event_callbacks cbs;

    struct conn *all;            /* every connection */
    size_t nconns;
    sg_sidmap sessions;          /* open sessions by sid */
    sg_deadlines timers;         /* one per connection */
    struct conn *dirty;          /* to take this turn */
    struct conn *flushes;        /* to write after this turn's commit */
    bool in_batch;               /* this turn's transaction is open */
    struct conn *grave;          /* to free at the end of this turn */
    int pressure;                /* datagrams per drain that suggest drops */
    bool full_recheck_due;       /* drops suspected within FULL_RECHECK_GAP_MS */
    int64_t bmark;               /* broadcast log seq of the last log ring */
};

static struct wsd *G; /* the wslay callbacks reach the daemon through it */

/* epoll tags of the special descriptors */
static char tag_listen, tag_signal, tag_bell;

/* ---------------------------------------------------------------- helpers */

static size_t out_pending(const struct conn *c) { return c->out_len - c->out_off; }

/* What the output may still take before OUT_LIMIT (0 when at or over it). */
static size_t out_room(const struct conn *c)
{
    return out_pending(c) < OUT_LIMIT ? OUT_LIMIT - out_pending(c) : 0;
}

static int out_append(struct conn *c, const void *p, size_t n)
{
    if (c->out_off && c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_len + n > c->out_cap) {
        if (c->out_off) { /* compact first */
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
        }
        if (c->out_len + n > c->out_cap) {
            size_t cap = c->out_cap ? c->out_cap : 512;
            while (cap < c->out_len + n)
                cap *= 2;
            char *o = realloc(c->out, cap);
            if (!o)
                return -1;
            c->out = o;
            c->out_cap = cap;
        }
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return 0;
}

static void out_free(struct conn *c)
{
    free(c->out);
    c->out = NULL;
    c->out_off = c->out_len = c->out_cap = 0;
}

/* One whole unmasked message into the output buffer. */
static int out_frame(struct conn *c, int opcode, const void *p, size_t n)
{
    uint8_t h[SG_WS_MAX_HEADER];
    size_t hl = sg_ws_frame_header(h, opcode, n);
    size_t before = c->out_len;
    if (out_append(c, h, hl) < 0)
        return -1;
    if (n && out_append(c, p, n) < 0) {
        c->out_len = before;
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- tables */

static void hash_add(struct wsd *d, struct conn *c)
{
    if (c->in_hash)
        return;
    c->node.sid = c->sid;
    sg_sidmap_add(&d->sessions, &c->node);
    c->in_hash = true;
}

static void hash_del(struct wsd *d, struct conn *c)
{
    if (!c->in_hash)
        return;
    sg_sidmap_del(&d->sessions, &c->node);
    c->in_hash = false;
}

static struct conn *conn_of(sg_deadline *t) { return SG_CONTAINER_OF(t, struct conn, timer); }

/* Arm c's timer at deadline (CLOCK_MONOTONIC ms). 0, or -1 on ENOMEM. */
static int schedule(struct wsd *d, struct conn *c, int64_t deadline)
{
    return sg_deadlines_set(&d->timers, &c->timer, deadline);
}

/* The deadline of an open session after a take that said wake_at
 * (CLOCK_REALTIME ms, 0 for none). */
static int64_t deadline_for(int64_t wake_at)
{
    int64_t now = sg_mono_ms();
    int64_t dl = now + RECHECK_MS;
    if (wake_at > 0) {
        int64_t w = now + (wake_at - sg_now_ms()) + 1; /* never a millisecond early */
        if (w < dl)
            dl = w;
    }
    return dl < now + MIN_DELAY_MS ? now + MIN_DELAY_MS : dl;
}

/* ---------------------------------------------------------------- lifecycle */

/* The next check of a connection waiting for "2probe": PROBE_RECHECK_MS
 * after the 101, then each after twice the time before it (200, 400,
 * 800 ms...), so that a WebSocket that never sends its probe costs a few
 * store reads, not one every PROBE_RECHECK_MS until UPGRADE_TIMEOUT_MS. */
static int64_t probe_recheck_at(const struct conn *c)
{
    int64_t now = sg_mono_ms();
    int64_t since = now - (c->upgrade_by - UPGRADE_TIMEOUT_MS);
    int64_t t = now + (since < PROBE_RECHECK_MS ? PROBE_RECHECK_MS : since);
    return t < c->upgrade_by ? t : c->upgrade_by;
}

static void mark_dirty(struct wsd *d, struct conn *c)
{
    if (c->dirty || c->dead || c->state != ST_OPEN)
        return;
    c->dirty = true;
    c->dnext = d->dirty;
    d->dirty = c;
}

static void set_events(struct wsd *d, struct conn *c, bool want_out)
{
    if (c->out_armed == want_out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(d->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        sg_error("connection from %s: epoll_ctl(MOD): %s", c->addr, strerror(errno));
    else
        c->out_armed = want_out;
}

/* Forget c now: out of epoll (by closing), the table, the heap; its memory
 * is freed at the end of the turn (it may still be on this turn's lists). */
/* A connection that probed but never upgraded ends: the session goes on
 * polling (its GETs are held again instead of answered noop). */
static void leave_probe(struct wsd *d, struct conn *c)
{
    if (c->state == ST_PROBED) {
        sg_engine_ws_abort(d->w, c->sid);
        c->state = ST_PROBE;
    }
}

static void destroy(struct wsd *d, struct conn *c)
{
    if (c->dead)
        return;
    c->dead = true;
    leave_probe(d, c);
    hash_del(d, c);
    sg_deadlines_remove(&d->timers, &c->timer);
    close(c->fd);
    c->fd = -1;
    if (c->ws) {
        wslay_event_context_free(c->ws);
        c->ws = NULL;
    }
    free(c->in);
    c->in = NULL;
    out_free(c);
    sg_eio_packets_free(&c->rx);
    if (c->prev)
        c->prev->next = c->next;
    else
        d->all = c->next;
    if (c->next)
        c->next->prev = c->prev;
    d->nconns--;
    if (!c->dirty) { /* a dirty one is on the take list: freed after it */
        c->dnext = d->grave;
        d->grave = c;
    }
}

/* The session is gone for the transport's own reason: tell the engine. */
static void engine_close(struct wsd *d, struct conn *c, const char *reason)
{
    if (c->state != ST_OPEN)
        return;
    int rc = sg_engine_close(d->w, c->sid, reason);
    if (rc == SG_OK)
        sg_debug("session %s: closed (%s)", c->sid, reason);
    else if (rc != SG_E_SID)
        sg_error("session " SG_SID_FMT ": closing it (%s) failed", c->sid, reason);
}

/* Send what is buffered (of a connection the open transaction wrote to:
 * after its commit). On a write error the connection is lost. */
static void flush(struct wsd *d, struct conn *c)
{
    if (c->dead || (c->flush_due && d->in_batch))
        return;
    int rc = sg_daemon_send(c->fd, c->out, c->out_len, &c->out_off);
    if (rc > 0) {
        set_events(d, c, true);
        return;
    }
    if (rc < 0) {
        int err = errno;
        sg_debug("connection from %s: write: %s", c->addr, strerror(err));
        engine_close(d, c, err == EPIPE || err == ECONNRESET ? "transport close"
                                                             : "transport error");
        destroy(d, c);
        return;
    }
    out_free(c);
    set_events(d, c, false);
    if (c->state == ST_CLOSING && !c->shut) {
        shutdown(c->fd, SHUT_WR);
        c->shut = true;
    }
    if (c->blocked) {
        c->blocked = false;
        mark_dirty(d, c);
    }
}

/* Called after the output shrank: resume taking below half the limit. */
static void maybe_unblock(struct wsd *d, struct conn *c)
{
    if (c->blocked && out_pending(c) < OUT_LIMIT / 2) {
        c->blocked = false;
        mark_dirty(d, c);
    }
}

/* Enter CLOSING: what is buffered (an error answer, or a close frame)
 * goes out, then SHUT_WR, then wait for the peer's EOF. */
static void closing(struct wsd *d, struct conn *c)
{
    if (c->dead)
        return;
    leave_probe(d, c);
    hash_del(d, c);
    if (c->ws) {
        wslay_event_context_free(c->ws);
        c->ws = NULL;
    }
    free(c->in);
    c->in = NULL;
    sg_eio_packets_free(&c->rx);
    c->state = ST_CLOSING;
    c->blocked = false;
    if (schedule(d, c, sg_mono_ms() + CLOSE_LINGER_MS) < 0) {
        destroy(d, c);
        return;
    }
    flush(d, c);
}

/* Close the WebSocket with code (unless a close frame was already queued
 * by wslay, which then goes out as it is). The session is not touched. */
static void close_ws(struct wsd *d, struct conn *c, uint16_t code)
{
    if (c->dead || c->state == ST_CLOSING)
        return;
    if (c->ws) {
        int rc = wslay_event_queue_close(c->ws, code, NULL, 0);
        if (rc != 0 && rc != WSLAY_ERR_NO_MORE_MSG)
            sg_debug("connection from %s: queueing the close frame failed", c->addr);
        if (wslay_event_send(c->ws) != 0)
            sg_debug("connection from %s: writing the close frame failed", c->addr);
    } else {
        uint8_t f[4];
        out_append(c, f, sg_ws_close_frame(f, code));
    }
    closing(d, c);
}

/* Answer an HTTP error and close. */
static void http_fail(struct wsd *d, struct conn *c, sg_buf *answer)
{
    if (answer->len)
        out_append(c, answer->data, answer->len);
    closing(d, c);
}

/* What the open transaction takes or receives for c goes out after its
 * commit, once, and never if the commit fails: nothing goes out that the
 * commit could still undo. Called before the transaction writes to c's
 * output (received: it holds packets c received; c->opened is set by the
 * caller when it opens c's session). */
static void join_batch(struct wsd *d, struct conn *c, bool received)
{
    if (!d->in_batch)
        return;
    c->received |= received;
    if (c->flush_due)
        return;
    c->flush_due = true;
    c->kept = out_pending(c);
    c->fnext = d->flushes;
    d->flushes = c;
}

/* The transaction that wrote to c's output did not commit: what it wrote
 * there goes (what was buffered before stays). What it took is still
 * queued in the store, taken again after INTERNAL_RETRY_MS. Packets it
 * received are lost, so the client must know, as a polling client knows
 * from the 500 to its POST: the WebSocket closes with 1011 (or at once,
 * when the turn had queued its close frame). A session opened on the
 * WebSocket was never stored: a 500 instead of its 101, as to a polling
 * handshake. Measured before this: the frames went out all the same, and
 * the packets taken went out again at the next take; a handshake got its
 * 101 and "open" (tests/integration/faults.test.mjs, a full disk). */
static void batch_failed(struct wsd *d, struct conn *c)
{
    c->out_len = c->out_off + c->kept;
    if (c->opened) {
        sg_buf ans = SG_BUF_INIT;
        sg_ws_response_error(&ans, 500, NULL, NULL);
        http_fail(d, c, &ans);
        sg_buf_free(&ans);
    } else if (c->state == ST_OPEN && !c->received) {
        c->blocked = false;
        schedule(d, c, sg_mono_ms() + INTERNAL_RETRY_MS);
        flush(d, c);
    } else if (c->state == ST_CLOSING) {
        destroy(d, c);
    } else {
        engine_close(d, c, "transport error");
        close_ws(d, c, 1011);
    }
}

/* Open the turn's transaction; d->in_batch says whether it is open. */
static void begin_batch(struct wsd *d) { d->in_batch = sg_engine_batch_begin(d->w) == SG_OK; }

/* End the turn's transaction (if one is open), then write what it took and
 * received; after a failed commit, batch_failed() instead. A destroyed
 * connection stays allocated until the end of the turn (free_grave), so
 * the list holds no dangling pointer. */
static void commit_and_flush(struct wsd *d)
{
    bool failed = d->in_batch && sg_engine_batch_end(d->w) != SG_OK;
    if (failed)
        sg_error("committing this turn's packets failed");
    d->in_batch = false;
    while (d->flushes) {
        struct conn *c = d->flushes;
        d->flushes = c->fnext;
        c->flush_due = false;
        if (!c->dead && failed)
            batch_failed(d, c);
        else if (!c->dead)
            flush(d, c);
        c->received = c->opened = false;
    }
}

/* ---------------------------------------------------------------- wslay */

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                          void *ud)
{
    (void)flags;
    struct conn *c = ud;
    if (c->in) { /* bytes that came right after the request head */
        size_t n = c->in_len - c->in_off;
        if (n > len)
            n = len;
        memcpy(buf, c->in + c->in_off, n);
        c->in_off += (uint32_t)n;
        if (c->in_off >= c->in_len) {
            free(c->in);
            c->in = NULL;
        }
        return (ssize_t)n;
    }
    if (c->budget == 0) { /* fairness: the rest next turn (epoll is level-triggered) */
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (len > c->budget)
        len = c->budget;
    for (;;) {
        ssize_t n = recv(c->fd, buf, len, 0);
        if (n > 0) {
            /* A short read drained the socket: the next recv would only
             * say EAGAIN, one wasted syscall per frame (a third of the
             * syscalls of an echo). Epoll is level-triggered, so bytes
             * that arrive after this are reported next turn. */
            c->budget = (size_t)n < len ? 0 : c->budget - (uint32_t)n;
            return n;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
            return -1;
        }
        if (n == 0 || errno == ECONNRESET)
            c->eof = true;
        else
            c->ioerr = true;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
}

/* wslay's own frames (pongs, close replies): into the output buffer,
 * whole, so wslay never holds a partly written frame. */
static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                          void *ud)
{
    (void)flags;
    struct conn *c = ud;
    if (out_append(c, data, len) < 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

/* Stop reading; after this turn's reading the WebSocket is closed with code. */
static void stop_reading(struct conn *c, uint16_t code)
{
    if (!c->stop_code)
        c->stop_code = code;
    wslay_event_shutdown_read(c->ws);
}

static uint16_t code_for(int rc) { return rc == SG_E_INTERNAL ? 1011 : 1000; }

/* "2probe" and "5", before the upgrade. */
static void on_upgrade_packet(struct wsd *d, struct conn *c, bool text, const uint8_t *m, size_t n)
{
    bool probe = text && n == 6 && memcmp(m, "2probe", 6) == 0;
    bool upgrade = text && n == 1 && m[0] == '5';
    join_batch(d, c, true);
    if (probe && c->state == ST_PROBE) {
        int rc = sg_engine_ws_probe(d->w, c->sid);
        if (rc != SG_OK) {
            sg_warn("connection from %s: probe for session " SG_SID_FMT " refused (%d)", c->addr, c->sid, rc);
            stop_reading(c, code_for(rc));
            return;
        }
        c->state = ST_PROBED;
        schedule(d, c, c->upgrade_by);
        if (out_frame(c, SG_WS_TEXT, "3probe", 6) < 0)
            stop_reading(c, 1011);
    } else if (probe) { /* a repeated probe gets its answer again, as in the reference */
        if (out_frame(c, SG_WS_TEXT, "3probe", 6) < 0)
            stop_reading(c, 1011);
    } else if (upgrade && c->state == ST_PROBED) {
        int rc = sg_engine_ws_upgrade(d->w, c->sid, c->owner);
        if (rc != SG_OK) {
            sg_warn("connection from %s: upgrade of session " SG_SID_FMT " refused (%d)", c->addr, c->sid, rc);
            stop_reading(c, code_for(rc));
            return;
        }
        sg_debug("session %s: upgraded to websocket (%s)", c->sid, c->owner);
        c->state = ST_OPEN;
        hash_add(d, c);
        mark_dirty(d, c);
    } else {
        sg_warn("connection from %s: unexpected packet before the upgrade of session " SG_SID_FMT, c->addr,
                c->sid);
        stop_reading(c, 1000);
    }
}

static void ws_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                      void *ud)
{
    (void)ctx;
    struct conn *c = ud;
    struct wsd *d = G;
    bool text = arg->opcode == WSLAY_TEXT_FRAME;
    if (!text && arg->opcode != WSLAY_BINARY_FRAME)
        return; /* ping, pong, close: wslay's business */
    if (c->stop_code || c->parse_error)
        return;
    if (c->state == ST_PROBE || c->state == ST_PROBED) {
        on_upgrade_packet(d, c, text, arg->msg, arg->msg_length);
        return;
    }
    if (c->state != ST_OPEN)
        return;
    if (!text) {
        if (sg_eio_packets_push(&c->rx, SG_EIO_MESSAGE, true, arg->msg, arg->msg_length) < 0)
            stop_reading(c, 1011);
        return;
    }
    sg_eio_packet p;
    int rc = sg_eio_decode_packet((const char *)arg->msg, arg->msg_length, &p);
    if (rc == SG_EIO_ENOMEM) {
        stop_reading(c, 1011);
        return;
    }
    if (rc != SG_EIO_OK) {
        sg_warn("session " SG_SID_FMT ": bad packet from %s: %s", c->sid, c->addr, sg_eio_strerror(rc));
        c->parse_error = true;
        wslay_event_shutdown_read(c->ws);
        return;
    }
    /* move it in, no copy */
    sg_eio_packets *ps = &c->rx;
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 4;
        sg_eio_packet *v = realloc(ps->v, cap * sizeof *v);
        if (!v) {
            sg_eio_packet_clear(&p);
            stop_reading(c, 1011);
            return;
        }
        ps->v = v;
        ps->cap = cap;
    }
    ps->v[ps->n++] = p;
}


/* ---------------------------------------------------------------- taking */

static int take_frame(void *ud, bool binary, const void *frame, size_t len)
{
    struct conn *c = ud;
    if (out_pending(c) >= OUT_LIMIT) {
        c->blocked = true;
        return 1;
    }
    if (out_frame(c, binary ? SG_WS_BINARY : SG_WS_TEXT, frame, len) < 0) {
        sg_error("connection from %s: out of memory for a frame", c->addr);
        c->blocked = true; /* taken again when what is buffered drained */
        return 1;
    }
    return 0;
}

static int direct_frame(void *ud, bool binary, const void *frame, size_t len)
{
    struct conn *c = ud;
    return out_frame(c, binary ? SG_WS_BINARY : SG_WS_TEXT, frame, len) < 0 ? -1 : 0;
}

static void take(struct wsd *d, struct conn *c)
{
    if (c->dead || c->state != ST_OPEN)
        return;
    int64_t wake_at = 0;
    /* what fits under OUT_LIMIT is read from the store (one frame at
     * least); the rest is taken once this has gone out */
    bool more = false;
    join_batch(d, c, false);
    int rc = sg_engine_ws_take(d->w, c->sid, c->owner, out_room(c), take_frame, c, &wake_at, &more);
    if (more)
        c->blocked = true;
    if (rc == SG_OK) {
        if (schedule(d, c, deadline_for(wake_at)) < 0) {
            sg_error("session " SG_SID_FMT ": out of memory for a timer", c->sid);
            engine_close(d, c, "transport error");
            close_ws(d, c, 1011);
            return;
        }
        flush(d, c);
    } else if (rc == SG_E_SID) {
        sg_debug("session %s: closed; closing its WebSocket", c->sid);
        close_ws(d, c, 1000);
    } else if (rc == SG_E_BADREQ) {
        sg_info("session " SG_SID_FMT ": held by another connection now; closing this one", c->sid);
        close_ws(d, c, 1000);
    } else {
        schedule(d, c, sg_mono_ms() + INTERNAL_RETRY_MS);
        flush(d, c);
    }
}

/* ---------------------------------------------------------------- reading */

/* Hand this turn's packets to the engine. false when c was closed. */
static bool deliver(struct wsd *d, struct conn *c)
{
    if (c->state != ST_OPEN || !c->rx.n)
        return true;
    /* The local fast path: what the handlers answer this very connection
     * (acks above all) comes back here, written after the commit, instead
     * of a round trip through the queue (measured: see the commit). What
     * went to the queue for this session is taken in this turn. */
    bool take_due = true;
    join_batch(d, c, true);
    /* within OUT_LIMIT, as takes are: beyond it the answers wait in the
     * store (where max_queued_packets bounds them) and the connection is
     * taken again once its buffer drained (take_due; a take then blocks) */
    int rc = sg_engine_ws_receive(d->w, c->sid, c->owner, &c->rx, out_room(c), direct_frame, c,
                                  &take_due);
    sg_eio_packets_free(&c->rx);
    if (rc == SG_OK) {
        if (out_pending(c))
            flush(d, c);
        if (take_due)
            mark_dirty(d, c);
        return true;
    }
    if (rc == SG_E_SID) {
        close_ws(d, c, 1000);
    } else if (rc == SG_E_BADREQ) {
        /* a packet the protocol forbids: the engine closed the session */
        sg_warn("session " SG_SID_FMT ": closed by the engine after a bad packet from %s", c->sid, c->addr);
        close_ws(d, c, 1002);
    } else {
        engine_close(d, c, "transport error");
        close_ws(d, c, 1011);
    }
    return false;
}

static void ws_read(struct wsd *d, struct conn *c)
{
    c->budget = READ_BUDGET;
    c->eof = c->ioerr = false;
    int rc = wslay_event_recv(c->ws);
    if (c->dead)
        return;
    /* the pongs wslay queued answer pings that came before the packets
     * complete now: they go first (deliver() appends answers to the output) */
    if (rc == 0 && wslay_event_get_read_enabled(c->ws) && wslay_event_want_write(c->ws) &&
        wslay_event_send(c->ws) != 0) {
        engine_close(d, c, "transport error");
        destroy(d, c);
        return;
    }
    bool delivered = deliver(d, c);
    if (c->dead || c->state == ST_CLOSING)
        return;
    if (rc != 0) {
        if (c->eof || c->ioerr) {
            sg_debug("connection from %s: %s", c->addr, c->eof ? "closed by the peer" : "read error");
            engine_close(d, c, c->eof ? "transport close" : "transport error");
            destroy(d, c);
            return;
        }
        if (rc == WSLAY_ERR_NOMEM) {
            engine_close(d, c, "transport error");
            close_ws(d, c, 1011);
            return;
        }
        /* wslay's frame layer refused a frame (a control frame over 125
         * bytes or fragmented, a bad extended length) and queued a close
         * frame without a status code: send 1002 instead */
        sg_warn("connection from %s: WebSocket protocol error", c->addr);
        engine_close(d, c, "transport error");
        wslay_event_context_free(c->ws);
        c->ws = NULL;
        close_ws(d, c, 1002);
        return;
    }
    if (!delivered)
        return;
    if (c->parse_error) {
        engine_close(d, c, "parse error");
        close_ws(d, c, 1002);
        return;
    }
    if (c->stop_code) {
        uint16_t code = c->stop_code;
        if (code == 1011)
            engine_close(d, c, "transport error");
        close_ws(d, c, code);
        return;
    }
    if (!wslay_event_get_read_enabled(c->ws)) {
        if (wslay_event_get_close_received(c->ws)) {
            sg_debug("connection from %s: close frame (%u)", c->addr,
                     wslay_event_get_status_code_received(c->ws));
            engine_close(d, c, "transport close");
        } else { /* wslay queued 1002, 1007 or 1009 */
            sg_warn("connection from %s: WebSocket protocol error", c->addr);
            engine_close(d, c, "transport error");
        }
        close_ws(d, c, 1000); /* sends the close frame wslay queued */
        return;
    }
    if (wslay_event_want_write(c->ws) && wslay_event_send(c->ws) != 0) {
        engine_close(d, c, "transport error");
        destroy(d, c);
        return;
    }
    if (out_pending(c))
        flush(d, c);
}

/* ---------------------------------------------------------------- handshake */

static bool is_local_peer(const char *addr)
{
    return strcmp(addr, "unix") == 0 || strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0;
}

/* The address the engine records: the peer's, or behind a local proxy the
 * last entry of X-Forwarded-For (the one the proxy added). */
static const char *client_address(const struct conn *c, const sg_ws_request *req, char *buf,
                                  size_t cap)
{
    const char *xff = sg_ws_request_header(req, "x-forwarded-for");
    if (!xff || !is_local_peer(c->addr))
        return c->addr;
    const char *last = strrchr(xff, ',');
    last = last ? last + 1 : xff;
    while (*last == ' ' || *last == '\t')
        last++;
    size_t n = strlen(last);
    while (n && (last[n - 1] == ' ' || last[n - 1] == '\t'))
        n--;
    if (!n || n >= cap)
        return c->addr;
    memcpy(buf, last, n);
    buf[n] = '\0';
    return buf;
}

/* An Engine.IO refusal before the upgrade: 400 (or the result's status)
 * with the JSON error; hs: the handshake, when it was one. */
static void eio_fail(struct wsd *d, struct conn *c, sg_buf *ans, int result, const char *why,
                     const sg_handshake *hs)
{
    int status, code;
    const char *msg;
    sg_engine_handshake_error(hs, result, &status, &code, &msg);
    if (!sg_engine_result_logged(result))
        sg_warn("connection from %s: %d %s%s%s", c->addr, status, msg, why ? ": " : "",
                why ? why : "");
    if (code >= 0)
        sg_ws_response_eio(ans, status, code, msg);
    else
        sg_ws_response_error(ans, status, "text/plain; charset=UTF-8", msg);
    http_fail(d, c, ans);
}

static void start_ws(struct wsd *d, struct conn *c)
{
    if (wslay_event_context_server_init(&c->ws, &d->cbs, c) != 0) {
        c->ws = NULL;
        sg_error("connection from %s: out of memory for the WebSocket", c->addr);
        return;
    }
    wslay_event_config_set_max_recv_msg_length(c->ws, (uint64_t)d->cfg->max_payload);
}

static void handle_request(struct wsd *d, struct conn *c, size_t headlen)
{
    const sg_config *cfg = d->cfg;
    sg_buf ans = SG_BUF_INIT;
    sg_ws_request req;
    char *transport = NULL, *eio = NULL, *sid = NULL;
    int prc = sg_ws_request_parse(c->in, headlen, &req);
    if (prc != SG_WS_PARSE_OK) {
        int status = prc == SG_WS_PARSE_TOO_MANY ? 431 : prc == SG_WS_PARSE_NOMEM ? 500 : 400;
        sg_warn("connection from %s: %d: %s", c->addr, status,
                status == 400 ? "malformed request head" : "cannot parse the request head");
        sg_ws_response_error(&ans, status, NULL, NULL);
        http_fail(d, c, &ans);
        goto out;
    }
    if (!sg_ws_path_ok(req.path, strlen(req.path), cfg->path)) {
        sg_warn("connection from %s: 404 not the Socket.IO path %s: %.200s", c->addr, cfg->path,
                req.path);
        sg_ws_response_error(&ans, 404, "text/plain; charset=UTF-8", "Not Found\n");
        http_fail(d, c, &ans);
        goto out;
    }
    transport = sg_query_get(req.query, "transport");
    eio = sg_query_get(req.query, "EIO");
    sid = sg_query_get(req.query, "sid");
    if (sid && !*sid) { /* "sid=" is no sid, as in the reference */
        free(sid);
        sid = NULL;
    }
    if (!transport || strcmp(transport, "websocket") != 0) {
        if (transport && strcmp(transport, "polling") == 0)
            eio_fail(d, c, &ans, SG_E_BADREQ, "polling requests belong to siogate-fcgi", NULL);
        else
            eio_fail(d, c, &ans, SG_E_TRANSPORT, NULL, NULL);
        goto out;
    }
    if (!sg_ws_is_upgrade(&req)) {
        eio_fail(d, c, &ans, SG_E_BADREQ, "transport=websocket without \"Upgrade: websocket\"",
                 NULL);
        goto out;
    }
    if (!eio || strcmp(eio, "4") != 0) {
        eio_fail(d, c, &ans, SG_E_VERSION, NULL, NULL);
        goto out;
    }
    bool refuse = false; /* an upgrade refused after the 101 */
    if (sid) {
        if (!sg_id_valid(sid)) {
            eio_fail(d, c, &ans, SG_E_SID, "malformed sid", NULL);
            goto out;
        }
        /* does the session exist? (the reference answers 400 before
         * upgrading); is it upgraded or upgrading already? (the reference
         * completes the handshake and closes the WebSocket at once) */
        int rc = sg_engine_ws_can_upgrade(d->w, sid);
        if (rc == SG_E_BADREQ) {
            refuse = true;
        } else if (rc != SG_OK) {
            eio_fail(d, c, &ans, rc == SG_E_SID ? SG_E_SID : SG_E_INTERNAL, NULL, NULL);
            goto out;
        }
    }
    char accept[SG_WS_ACCEPT_LEN + 1];
    const char *why = NULL;
    int st = sg_ws_handshake_check(&req, accept, &why);
    if (st != 0) {
        sg_warn("connection from %s: %d: %s", c->addr, st, why ? why : "bad handshake");
        if (st == 426)
            sg_ws_response_426(&ans);
        else
            sg_ws_response_error(&ans, st, "text/plain; charset=UTF-8", why);
        http_fail(d, c, &ans);
        goto out;
    }

    char open_sid[SG_ID_LEN + 1] = "";
    sg_buf open_packet = SG_BUF_INIT;
    if (!sid) {
        char abuf[INET6_ADDRSTRLEN + 16];
        sg_handshake hs = {
            .address = client_address(c, &req, abuf, sizeof abuf),
            .url = req.target,
            .query = req.query,
            .headers = req.headers,
        };
        join_batch(d, c, true);
        c->opened = d->in_batch;
        int rc = sg_engine_open(d->w, &hs, "websocket", open_sid, &open_packet);
        if (rc != SG_OK) {
            sg_buf_free(&open_packet);
            eio_fail(d, c, &ans, rc < 0 ? rc : SG_E_INTERNAL, "handshake", &hs);
            goto out;
        }
    }
    start_ws(d, c);
    sg_buf cookie = SG_BUF_INIT; /* a new session's Set-Cookie, if configured */
    int crc = sid ? 0 : sg_engine_cookie(d->cfg, open_sid, &cookie);
    int arc = crc < 0 ? -1 : sg_ws_response_101(&ans, accept, cookie.len ? cookie.data : NULL);
    sg_buf_free(&cookie);
    if (!c->ws || arc < 0 || out_append(c, ans.data, ans.len) < 0) {
        if (!sid)
            sg_engine_close(d->w, open_sid, "transport error");
        sg_buf_free(&open_packet);
        sg_buf_reset(&ans);
        sg_ws_response_error(&ans, 500, NULL, NULL);
        http_fail(d, c, &ans);
        goto out;
    }
    /* keep what followed the head for wslay; the head itself is done */
    if (headlen < c->in_len) {
        c->in_off = (uint32_t)headlen;
    } else {
        free(c->in);
        c->in = NULL;
    }
    if (sid && refuse) {
        sg_copy(c->sid, sizeof c->sid, sid);
        c->state = ST_PROBE;
        sg_info("connection from %s: session " SG_SID_FMT " is upgraded or upgrading already: closing this "
                "WebSocket", c->addr, c->sid);
        sg_buf_free(&open_packet);
        close_ws(d, c, 1000);
        goto out;
    } else if (sid) {
        sg_copy(c->sid, sizeof c->sid, sid);
        c->state = ST_PROBE;
        c->upgrade_by = sg_mono_ms() + UPGRADE_TIMEOUT_MS;
        sg_debug("connection from %s: upgrade of session %s begins", c->addr, c->sid);
        schedule(d, c, probe_recheck_at(c));
    } else {
        memcpy(c->sid, open_sid, sizeof c->sid);
        int rc = sg_engine_ws_attach(d->w, c->sid, c->owner);
        c->state = ST_OPEN;
        if (rc != SG_OK || out_frame(c, SG_WS_TEXT, open_packet.data, open_packet.len) < 0) {
            sg_error("session " SG_SID_FMT ": attaching it to its WebSocket failed (%d)", c->sid, rc);
            engine_close(d, c, "transport error");
            sg_buf_free(&open_packet);
            close_ws(d, c, 1011);
            goto out;
        }
        sg_debug("connection from %s: session %s (%s)", c->addr, c->sid, c->owner);
        hash_add(d, c);
        mark_dirty(d, c);
        schedule(d, c, deadline_for(0));
    }
    sg_buf_free(&open_packet);
    flush(d, c);
    if (!c->dead && c->in)
        ws_read(d, c); /* frames sent before the 101 was read */
out:
    sg_buf_free(&ans);
    free(transport);
    free(eio);
    free(sid);
    sg_ws_request_free(&req);
}

static void head_too_large(struct wsd *d, struct conn *c)
{
    sg_warn("connection from %s: 431: request head over %d bytes", c->addr, SG_WS_MAX_HEAD);
    sg_buf ans = SG_BUF_INIT;
    sg_ws_response_error(&ans, 431, NULL, NULL);
    http_fail(d, c, &ans);
    sg_buf_free(&ans);
}

static void read_head(struct wsd *d, struct conn *c)
{
    for (;;) {
        if (c->in_len == c->in_cap) {
            if (c->in_cap > SG_WS_MAX_HEAD) {
                head_too_large(d, c);
                return;
            }
            uint32_t cap = c->in_cap ? c->in_cap * 2 : HEAD_INITIAL;
            if (cap > SG_WS_MAX_HEAD + 1)
                cap = SG_WS_MAX_HEAD + 1;
            char *n = realloc(c->in, cap);
            if (!n) {
                sg_error("connection from %s: out of memory", c->addr);
                destroy(d, c);
                return;
            }
            c->in = n;
            c->in_cap = cap;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            sg_debug("connection from %s: gone before its request was complete", c->addr);
            destroy(d, c);
            return;
        }
        uint32_t from = c->in_len > 3 ? c->in_len - 3 : 0;
        c->in_len += (uint32_t)n;
        size_t end = sg_ws_head_end(c->in + from, c->in_len - from);
        if (end) {
            end += from;
            if (end > SG_WS_MAX_HEAD)
                head_too_large(d, c);
            else
                handle_request(d, c, end);
            return;
        }
    }
}

/* CLOSING: whatever arrives is dropped until EOF. */
static void drain(struct wsd *d, struct conn *c)
{
    char buf[4096];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        destroy(d, c);
        return;
    }
}

static void on_conn(struct wsd *d, struct conn *c, uint32_t events)
{
    if (c->dead)
        return;
    if (events & EPOLLOUT) {
        flush(d, c);
        if (c->dead)
            return;
        maybe_unblock(d, c);
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    switch (c->state) {
    case ST_HTTP: read_head(d, c); break;
    case ST_CLOSING: drain(d, c); break;
    default:
        if (c->ws)
            ws_read(d, c);
        else
            destroy(d, c);
    }
}

/* ---------------------------------------------------------------- accept */

static void accept_all(struct wsd *d)
{
    for (int i = 0; i < MAX_ACCEPTS; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(d->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            sg_error("accept: %s; pausing %d ms", strerror(errno), ACCEPT_PAUSE_MS);
            if (epoll_ctl(d->epfd, EPOLL_CTL_DEL, d->lfd, NULL) == 0)
                d->listening = false;
            d->accept_resume_at = sg_mono_ms() + ACCEPT_PAUSE_MS;
            return;
        }
        struct conn *c = calloc(1, sizeof *c);
        if (!c) {
            sg_error("accept: out of memory");
            close(fd);
            return;
        }
        c->fd = fd;
        sg_token_make(c->owner, d->pid, d->next_id++);
        sg_eio_packets_init(&c->rx);
        if (ss.ss_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, c->addr, sizeof c->addr);
        } else if (ss.ss_family == AF_INET6) {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, c->addr, sizeof c->addr);
        } else {
            strcpy(c->addr, "unix");
        }
        if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ||
            schedule(d, c, sg_mono_ms() + HANDSHAKE_TIMEOUT_MS) < 0) {
            sg_error("accept: %s", strerror(errno));
            close(fd);
            free(c);
            return;
        }
        c->next = d->all;
        if (d->all)
            d->all->prev = c;
        d->all = c;
        d->nconns++;
    }
}

static void resume_accepting(struct wsd *d)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &tag_listen};
    if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->lfd, &ev) == 0)
        d->listening = true;
    else
        d->accept_resume_at = sg_mono_ms() + ACCEPT_PAUSE_MS;
}

/* ---------------------------------------------------------------- rings */

/* The next connection marked dirty that is alive, unmarked; dead ones on
 * the way go to the grave. NULL when none is left. */
static struct conn *next_dirty(struct wsd *d)
{
    while (d->dirty) {
        struct conn *c = d->dirty;
        d->dirty = c->dnext;
        c->dirty = false;
        if (!c->dead)
            return c;
        c->dnext = d->grave;
        d->grave = c;
    }
    return NULL;
}

static void mark_all(struct wsd *d)
{
    d->full_recheck_due = false;
    sg_sidmap_iter it;
    for (sg_sidnode *n = sg_sidmap_iter_first(&d->sessions, &it); n; n = sg_sidmap_iter_next(&it))
        mark_dirty(d, SG_CONTAINER_OF(n, struct conn, node));
    d->last_full_recheck = sg_mono_ms();
}

static void ring_one(void *ud, const char *sid)
{
    struct wsd *d = ud;
    for (sg_sidnode *x = sg_sidmap_find(&d->sessions, sid); x; x = sg_sidmap_next(x))
        mark_dirty(d, SG_CONTAINER_OF(x, struct conn, node));
}

/* sg_own_fn: the sessions of the open WebSockets (into v when at most max). */
static size_t open_sids(void *ud, const char **v, size_t max)
{
    struct wsd *d = ud;
    size_t n = d->sessions.count, k = 0;
    if (n > max)
        return n;
    for (struct conn *c = d->all; c && k < n; c = c->next)
        if (c->in_hash)
            v[k++] = c->sid;
    return k;
}

static void take_rings(struct wsd *d)
{
    bool all = false, log = false;
    int count = sg_bell_drain(d->bell, MAX_DATAGRAMS, ring_one, d, &all, &log);
    if (count < 0)
        sg_error("doorbell: receiving a ring failed");
    /* the connections of the sessions new broadcast log rows name: one read */
    if (log && !all &&
        sg_engine_bcast_since(d->w, &d->bmark, open_sids, d->sessions.count ? ring_one : NULL, d) < 0)
        sg_error("doorbell: finding the sessions of a broadcast failed");
    if (!all && count >= d->pressure) {
        sg_debug("doorbell: %d rings in one drain, some may be lost: re-checking all", count);
        d->full_recheck_due = true;
    }
    if (all)
        mark_all(d);
}

/* A suspected loss is never forgotten, only delayed to at most one full
 * re-check per FULL_RECHECK_GAP_MS. */
static void full_recheck_if_due(struct wsd *d)
{
    if (d->full_recheck_due && sg_mono_ms() - d->last_full_recheck >= FULL_RECHECK_GAP_MS) {
        d->full_recheck_due = false;
        mark_all(d);
    }
}

/* ---------------------------------------------------------------- timers */

static void expire(struct wsd *d, struct conn *c)
{
    switch (c->state) {
    case ST_HTTP:
        sg_warn("connection from %s: no complete request within %d ms", c->addr,
                HANDSHAKE_TIMEOUT_MS);
        destroy(d, c);
        break;
    case ST_PROBE:
        /* no "2probe" yet: another WebSocket may have upgraded the session
         * meanwhile (the reference closes this one at once then) */
        if (sg_mono_ms() < c->upgrade_by) {
            int rc = sg_engine_ws_can_upgrade(d->w, c->sid);
            if (rc == SG_OK || rc == SG_E_INTERNAL) {
                schedule(d, c, probe_recheck_at(c));
            } else {
                sg_info("connection from %s: session " SG_SID_FMT " %s meanwhile: closing this WebSocket",
                        c->addr, c->sid, rc == SG_E_SID ? "closed" : "upgraded");
                close_ws(d, c, 1000);
            }
            break;
        }
        /* fall through */
    case ST_PROBED:
        sg_warn("connection from %s: session " SG_SID_FMT " not upgraded within %d ms", c->addr, c->sid,
                UPGRADE_TIMEOUT_MS);
        close_ws(d, c, 1000);
        break;
    case ST_OPEN: mark_dirty(d, c); break;
    default: destroy(d, c); break;
    }
}

static void run_timers(struct wsd *d)
{
    int64_t now = sg_mono_ms();
    for (sg_deadline *t; (t = sg_deadlines_pop(&d->timers, now));)
        expire(d, conn_of(t));
    if (!d->listening && !d->stopping && d->accept_resume_at && now >= d->accept_resume_at) {
        d->accept_resume_at = 0;
        resume_accepting(d);
    }
}

/* ---------------------------------------------------------------- stop */

static void begin_stop(struct wsd *d, int sig)
{
    sg_info("%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    d->stopping = true;
    d->stop_at = sg_mono_ms() + STOP_GRACE_MS;
    if (d->listening)
        epoll_ctl(d->epfd, EPOLL_CTL_DEL, d->lfd, NULL);
    d->listening = false;
    size_t sessions = 0;
    for (struct conn *c = d->all, *next; c; c = next) {
        next = c->next;
        switch (c->state) {
        case ST_HTTP: destroy(d, c); break;
        case ST_OPEN:
            sessions++;
            engine_close(d, c, "server shutting down");
            close_ws(d, c, 1001);
            break;
        case ST_PROBE:
        case ST_PROBED: close_ws(d, c, 1001); break;
        default: break;
        }
    }
    if (sessions)
        sg_info("closed %zu WebSocket session%s", sessions, sessions == 1 ? "" : "s");
}

/* ---------------------------------------------------------------- loop */

static void free_grave(struct wsd *d)
{
    for (struct conn *c = d->grave, *next; c; c = next) {
        next = c->dnext;
        free(c);
    }
    d->grave = NULL;
}

static void run(struct wsd *d)
{
    struct epoll_event evs[MAX_EVENTS];
    d->next_sweep = sg_mono_ms() + SWEEP_MS;
    d->last_full_recheck = sg_mono_ms();
    for (;;) {
        int64_t now = sg_mono_ms();
        if (d->stopping && (!d->all || now >= d->stop_at))
            break;
        int64_t until = d->next_sweep;
        sg_deadline *first = sg_deadlines_first(&d->timers);
        if (first && first->at < until)
            until = first->at;
        if (d->accept_resume_at && d->accept_resume_at < until)
            until = d->accept_resume_at;
        if (d->stopping && d->stop_at < until)
            until = d->stop_at;
        if (d->full_recheck_due && d->last_full_recheck + FULL_RECHECK_GAP_MS < until)
            until = d->last_full_recheck + FULL_RECHECK_GAP_MS;
        int timeout = until <= now || d->dirty ? 0 : (int)(until - now);

        int n = epoll_wait(d->epfd, evs, MAX_EVENTS, timeout);
        if (n < 0) {
            if (errno != EINTR) {
                sg_error("epoll_wait: %s", strerror(errno));
                usleep(100000);
            }
            n = 0;
        }
        /* A turn woken only by rings (another process committed) drains
         * them first: when none names a connection of ours and no timer is
         * due, the turn needs no transaction at all. */
        bool only_rings = n > 0 && !d->stopping;
        for (int i = 0; i < n && only_rings; i++)
            if (evs[i].data.ptr != &tag_bell)
                only_rings = false;
        if (only_rings) {
            take_rings(d);
            sg_deadline *t = sg_deadlines_first(&d->timers);
            if (!d->dirty && !d->full_recheck_due && (!t || t->at > sg_mono_ms()) &&
                sg_mono_ms() < d->next_sweep)
                continue;
            n = 0;
        }
        /* one transaction for the whole turn (group commit): every
         * connection's packets and takes commit once, and the doorbell rings
         * once after it (a turn of more than TAKES_PER_COMMIT takes commits
         * after each such chunk); measured: echo with one event in flight
         * per client went from 7-10k to ~22k acked events/s */
        begin_batch(d);
        bool rang = false;
        for (int i = 0; i < n; i++) {
            void *tag = evs[i].data.ptr;
            if (tag == &tag_listen) {
                if (!d->stopping)
                    accept_all(d);
            } else if (tag == &tag_signal) {
                struct signalfd_siginfo si;
                while (read(d->sigfd, &si, sizeof si) == (ssize_t)sizeof si)
                    if (!d->stopping)
                        begin_stop(d, (int)si.ssi_signo);
            } else if (tag == &tag_bell) {
                rang = true;
            } else {
                on_conn(d, tag, evs[i].events);
            }
        }
        if (!d->stopping) {
            if (rang)
                take_rings(d);
            full_recheck_if_due(d);
            run_timers(d);
            /* Our own connections of the sessions this turn queued frames
             * for are taken in this same transaction (this daemon rings
             * only the other processes: no datagram to itself and no empty
             * turn after it). A take queues nothing, so this ends. */
            size_t pos = 0;
            bool all = false;
            int takes = 0;
            for (;;) {
                if (d->in_batch && !all && sg_engine_batch_dirty(d->w, &pos, open_sids, ring_one, d)) {
                    all = true; /* too many to list: every connection */
                    mark_all(d);
                }
                if (!d->dirty)
                    break;
                if (takes == TAKES_PER_COMMIT) {
                    /* what this transaction queued was scanned just above
                     * (pos): the next one begins with nothing unseen */
                    takes = 0;
                    if (d->in_batch) {
                        commit_and_flush(d);
                        begin_batch(d);
                        pos = 0;
                    }
                }
                for (struct conn *c; takes < TAKES_PER_COMMIT && (c = next_dirty(d)); takes++)
                    take(d, c);
            }
        }
        commit_and_flush(d);
        if (!d->stopping) {
            now = sg_mono_ms();
            if (now >= d->next_sweep) {
                int closed = sg_engine_sweep(d->w);
                if (closed > 0)
                    sg_debug("sweep: %d session%s timed out", closed, closed == 1 ? "" : "s");
                d->next_sweep = sg_mono_ms() + SWEEP_MS;
            }
        } else {
            if (rang) /* keep the queue from filling */
                while (sg_bell_recv(d->bell, (char[64]){0}, 64) > 0)
                    ;
            int64_t t = sg_mono_ms();
            for (sg_deadline *dl; (dl = sg_deadlines_pop(&d->timers, t));)
                destroy(d, conn_of(dl));
            while (next_dirty(d)) /* nothing is taken any more */
                ;
        }
        free_grave(d);
    }
    /* whatever is left after the grace period */
    while (d->all)
        destroy(d, d->all);
    while (d->dirty) {
        struct conn *c = d->dirty;
        d->dirty = c->dnext;
        c->dnext = d->grave;
        d->grave = c;
    }
    free_grave(d);
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: siogate-wsd [--conf FILE] [--listen HOST:PORT | --listen unix:PATH]\n"
            "                   [--verbose]\n"
            "       siogate-wsd --help\n"
            "\n"
            "The WebSocket daemon of siogate: the Engine.IO \"websocket\" transport, both\n"
            "sessions that start on a WebSocket and upgrades from polling. The web server\n"
            "proxies requests with \"Upgrade: websocket\" for the Socket.IO path to it.\n"
            "\n"
            "  -c, --conf FILE      configuration file, the one siogate-fcgi reads (default\n"
            "                       " SG_DEFAULT_CONF "; built-in defaults when that\n"
            "                       default file is missing)\n"
            "  -l, --listen ADDR    listen on unix:PATH (a stale socket file is replaced;\n"
            "                       the socket is made mode 0666, so protect its directory)\n"
            "                       or HOST:PORT ([V6]:PORT, or *:PORT for every address);\n"
            "                       without it standard input must be a listening socket\n"
            "  -v, --verbose        log debug messages\n"
            "  -h, --help           show this text\n"
            "\n"
            "SIGTERM or SIGINT: close every WebSocket (close code 1001) and its session\n"
            "(\"server shutting down\"), exit 0. Exit status 2: bad usage or configuration;\n"
            "1: other failure.\n");
}

static bool is_listening_socket(int fd)
{
    int v = 0;
    socklen_t l = sizeof v;
    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) == 0 && v;
}

int main(int argc, char **argv)
{
    const char *conf = NULL, *listen_spec = NULL;
    int verbose = 0;
    static const struct option opts[] = {
        {"conf", required_argument, NULL, 'c'}, {"listen", required_argument, NULL, 'l'},
        {"verbose", no_argument, NULL, 'v'},    {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "c:l:vh", opts, NULL)) != -1) {
        switch (o) {
        case 'c': conf = optarg; break;
        case 'l': listen_spec = optarg; break;
        case 'v': verbose = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", PROG, argv[optind]);
        usage(stderr);
        return 2;
    }
    sg_log_init(PROG, verbose ? SG_LOG_DEBUG : SG_LOG_INFO);

    sg_config cfg;
    char err[512];
    if (sg_config_defaults(&cfg) < 0) {
        fprintf(stderr, "%s: out of memory\n", PROG);
        return 1;
    }
    if (!conf && access(SG_DEFAULT_CONF, F_OK) < 0 && errno == ENOENT) {
        sg_info("%s is missing: using the built-in defaults", SG_DEFAULT_CONF);
    } else if (sg_config_load(&cfg, conf ? conf : SG_DEFAULT_CONF, err, sizeof err) < 0) {
        fprintf(stderr, "%s: %s\n", PROG, err);
        sg_config_free(&cfg);
        return 2;
    }

    /* signals: SIGTERM/SIGINT through a signalfd, blocked before anything
     * (a plugin's threads included) exists; SIGPIPE ignored */
    struct sigaction sa = {.sa_handler = SIG_IGN};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL);
    sigset_t stopset;
    sigemptyset(&stopset);
    sigaddset(&stopset, SIGTERM);
    sigaddset(&stopset, SIGINT);
    sigprocmask(SIG_BLOCK, &stopset, NULL);
    sg_daemon_raise_fd_limit();

    int status = 1;
    struct wsd d = {.cfg = &cfg, .epfd = -1, .lfd = -1, .sigfd = -1, .pid = (long)getpid(),
                    .next_id = 1};
    G = &d;
    d.cbs.recv_callback = ws_recv_cb;
    d.cbs.send_callback = ws_send_cb;
    d.cbs.on_msg_recv_callback = ws_msg_cb;
    d.pressure = sg_bell_queue_len() / 2;
    if (d.pressure < 2)
        d.pressure = 2;
    char *unix_path = NULL;

    if (!listen_spec && !is_listening_socket(0)) {
        fprintf(stderr, "%s: standard input is not a listening socket: give --listen "
                        "unix:PATH or HOST:PORT\n", PROG);
        status = 2;
        goto out;
    }
    if (listen_spec && strncmp(listen_spec, "unix:", 5) != 0 && !strrchr(listen_spec, ':')) {
        fprintf(stderr, "%s: --listen %s: expected unix:PATH or HOST:PORT\n", PROG, listen_spec);
        status = 2;
        goto out;
    }

    sg_store_process_init(false);
    d.engine = sg_engine_new(&cfg);
    if (!d.engine)
        goto out;
    sg_store_checkpointer_start(cfg.db); /* without it, SQLite's own checkpoints */
    d.w = sg_worker_new(d.engine);
    if (!d.w)
        goto out;
    char *dir = sg_config_bell_dir(&cfg);
    if (!dir) {
        sg_error("out of memory");
        goto out;
    }
    d.bell = sg_bell_waiter_db(dir, cfg.db);
    free(dir);
    if (!d.bell)
        goto out;
    sg_worker_ring_others(d.w, d.bell);
    d.bmark = -1;
    if (sg_engine_bcast_since(d.w, &d.bmark, NULL, ring_one, &d) < 0)
        goto out;
    if (sg_sidmap_init(&d.sessions, 1024) < 0) {
        sg_error("out of memory");
        goto out;
    }
    d.epfd = epoll_create1(EPOLL_CLOEXEC);
    d.sigfd = signalfd(-1, &stopset, SFD_NONBLOCK | SFD_CLOEXEC);
    if (d.epfd < 0 || d.sigfd < 0) {
        sg_error("%s", strerror(errno));
        goto out;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &tag_signal};
    if (epoll_ctl(d.epfd, EPOLL_CTL_ADD, d.sigfd, &ev) < 0) {
        sg_error("epoll_ctl: %s", strerror(errno));
        goto out;
    }
    ev.data.ptr = &tag_bell;
    if (epoll_ctl(d.epfd, EPOLL_CTL_ADD, sg_bell_fd(d.bell), &ev) < 0) {
        sg_error("epoll_ctl(doorbell): %s", strerror(errno));
        goto out;
    }

    /* the socket last: once it exists the program is ready */
    if (!listen_spec) {
        d.lfd = 0;
    } else {
        bool ipv6;
        d.lfd = sg_daemon_listen(PROG, listen_spec, &unix_path, &ipv6);
        if (d.lfd == -2)
            status = 2;
        if (d.lfd < 0)
            goto out;
    }
    int fl = fcntl(d.lfd, F_GETFL);
    if (fl < 0 || fcntl(d.lfd, F_SETFL, fl | O_NONBLOCK) < 0) {
        sg_error("listening socket: %s", strerror(errno));
        goto out;
    }
    ev.data.ptr = &tag_listen;
    if (epoll_ctl(d.epfd, EPOLL_CTL_ADD, d.lfd, &ev) < 0) {
        sg_error("epoll_ctl(listen): %s", strerror(errno));
        goto out;
    }
    d.listening = true;
    sg_info("ready: %s, path %s", listen_spec ? listen_spec : "standard input", cfg.path);
    run(&d);
    status = 0;

out:
    if (d.lfd > 0)
        close(d.lfd);
    if (unix_path) {
        unlink(unix_path);
        free(unix_path);
    }
    if (d.sigfd >= 0)
        close(d.sigfd);
    if (d.epfd >= 0)
        close(d.epfd);
    sg_sidmap_free(&d.sessions);
    sg_deadlines_free(&d.timers);
    sg_bell_close(d.bell);
    if (d.w)
        sg_worker_free(d.w);
    if (d.engine)
        sg_engine_free(d.engine);
    sg_store_checkpointer_stop();
    sg_config_free(&cfg);
    if (status == 0)
        sg_info("stopped");
    return status;
}
