/* parked.c - the event loop that holds parked polling GETs.
 *
 * One thread, one epoll set:
 *   - the doorbell waiter's datagram socket (rings: session ids, or "*");
 *   - an eventfd through which accept threads hand over GETs (a
 *     mutex-protected queue) or ask the loop to stop;
 *   - the FastCGI connection of every held GET, for EPOLLIN|EPOLLRDHUP:
 *     its input was read to its end before the hand-over, so anything
 *     readable there means the web server aborted or closed it.
 * Held GETs are found by session id in a hash table (sidmap.h: a ring costs
 * one lookup per id) and ordered by deadline in a min-heap (deadlines.h) on
 * CLOCK_MONOTONIC ms (the engine's CLOCK_REALTIME wake_at is converted on
 * arrival, so that clock steps do not stall or fire timers). A deadline is
 * the engine's wake_at or the safety re-check, whichever comes first. The
 * epoll timeout is the earliest deadline or the next sweep (1 s), so an
 * idle loop wakes once a second whatever the number of held polls, and
 * each held poll costs one re-check per SG_PARKED_RECHECK_MS.
 *
 * Lost-ring window. An accept thread polls the store, gets SG_WAIT and
 * hands the GET over; a ring for that session that the loop receives
 * before the hand-over would find nothing to wake. So the loop keeps the
 * last RING_MEMO ids it received in a ring buffer numbered by an atomic
 * epoch; the accept thread reads the epoch before polling, and on arrival
 * the loop re-checks at once when an id (or "*") recorded since that
 * epoch names the session.
 *
 * Dropped rings. Datagrams beyond the receive queue of the waiter
 * (net.unix.max_dgram_qlen, often only 10) are dropped by the kernel.
 * Besides the periodic re-check, when one wake-up drains at least half
 * that many datagrams the loop re-checks every held GET (at most once a
 * second). */
#include "parked.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "deadlines.h"
#include "doorbell.h"
#include "http.h"
#include "log.h"
#include "sidmap.h"
#include "util.h"

#define RING_MEMO 1024          /* ids remembered for the hand-over window */
#define MIN_DELAY_MS 10         /* a re-check is never re-armed sooner */
#define MAX_EVENTS 256
#define MAX_DATAGRAMS 4096      /* per wake-up, so rings cannot starve the rest */
#define FULL_RECHECK_GAP_MS 1000

static const char CT_TEXT[] = "text/plain; charset=UTF-8";

struct held {
    char sid[SG_ID_LEN + 1];
    char token[48];
    FCGX_Request *req;
    int64_t wake_at;            /* engine's deadline, CLOCK_REALTIME ms (0: none) */
    sg_deadline timer;          /* CLOCK_MONOTONIC ms, in p->timers */
    sg_sidnode node;            /* in p->by_sid */
    uint64_t epoch;             /* ring epoch read before the first poll */
    struct held *next;          /* hand-over queue */
};

struct sg_parked {
    sg_engine *engine;
    const sg_config *cfg;
    sg_worker *w;
    sg_bell *bell;
    int epfd, evfd;
    pthread_t thread;
    bool started;

    pthread_mutex_t mu;          /* guards q_head, q_tail, stop */
    struct held *q_head, *q_tail;
    bool stop;

    _Atomic uint64_t epoch;      /* number of ids ever recorded in memo */
    char memo[RING_MEMO][SG_ID_LEN + 1];

    /* loop thread only */
    sg_sidmap by_sid;            /* held GETs by session id */
    sg_deadlines timers;         /* every held GET but those being answered */
    sg_deadline **scratch;
    size_t scratch_cap;
    sg_buf payload;
    int pressure;                /* datagrams per wake-up that suggest drops */
    int64_t last_full_recheck;
    int64_t next_sweep;
};

/* epoll tags for the two special descriptors */
static char tag_bell, tag_wake;

/* ---------------------------------------------------------------- held GETs */

static struct held *held_of(sg_deadline *t) { return SG_CONTAINER_OF(t, struct held, timer); }

/* A copy of every held GET into p->scratch (so that answering them, which
 * changes the heap, is safe). Returns the count, or -1 on ENOMEM. */
static ssize_t snapshot(sg_parked *p)
{
    size_t n = p->timers.len;
    if (n > p->scratch_cap) {
        size_t cap = n + 64;
        sg_deadline **s = realloc(p->scratch, cap * sizeof *s);
        if (!s)
            return -1;
        p->scratch = s;
        p->scratch_cap = cap;
    }
    if (n)
        memcpy(p->scratch, p->timers.heap + 1, n * sizeof *p->scratch);
    return (ssize_t)n;
}

static int64_t deadline_for(int64_t wake_at)
{
    int64_t now = sg_mono_ms();
    int64_t d = now + SG_PARKED_RECHECK_MS;
    if (wake_at > 0) {
        /* +1: never wake a millisecond early because of rounding */
        int64_t w = now + (wake_at - sg_now_ms()) + 1;
        if (w < d)
            d = w;
    }
    if (d < now + MIN_DELAY_MS)
        d = now + MIN_DELAY_MS;
    return d;
}

/* Forget h: out of epoll, the table and the heap; finish and free it. */
static void drop(sg_parked *p, struct held *h, bool registered)
{
    if (registered) {
        if (epoll_ctl(p->epfd, EPOLL_CTL_DEL, h->req->ipcFd, NULL) < 0 && errno != EBADF &&
            errno != ENOENT)
            sg_error("held poll: epoll_ctl(DEL): %s", strerror(errno));
        sg_sidmap_del(&p->by_sid, &h->node);
        sg_deadlines_remove(&p->timers, &h->timer);
    }
    sg_http_finish_nowait(h->req);
    free(h->req);
    free(h);
}

static void answer_noop(const sg_config *cfg, sg_worker *w, struct held *h)
{
    sg_engine_poll_release(w, h->sid, h->token);
    if (sg_http_respond(h->req, cfg, 200, CT_TEXT, "6", 1) < 0)
        sg_debug("held poll: the web server went away before the noop answer");
}

/* The engine's answer for h: respond and forget h, or re-arm it. */
static void settle(sg_parked *p, struct held *h, int rc, int64_t wake_at, bool registered)
{
    if (rc == SG_WAIT) {
        h->wake_at = wake_at;
        if (sg_deadlines_set(&p->timers, &h->timer, deadline_for(wake_at)) < 0) {
            /* without a timer it could hang forever: answer noop now */
            sg_error("held poll: out of memory; answering noop");
            answer_noop(p->cfg, p->w, h);
            drop(p, h, registered);
        }
        return;
    }
    if (rc == SG_OK) {
        if (sg_http_respond(h->req, p->cfg, 200, CT_TEXT, p->payload.data ? p->payload.data : "",
                            p->payload.len) < 0)
            sg_debug("held poll: the web server went away before the answer");
    } else {
        int status, code;
        const char *msg;
        sg_engine_error(rc, &status, &code, &msg);
        if (rc != SG_E_INTERNAL) /* the engine logs its internal errors */
            sg_warn("held poll from %s: %s",
                    sg_http_param(h->req, "REMOTE_ADDR") ? sg_http_param(h->req, "REMOTE_ADDR")
                                                          : "?",
                    msg ? msg : "error");
        sg_http_respond_result(h->req, p->cfg, rc);
    }
    drop(p, h, registered);
}

static void recheck(sg_parked *p, struct held *h)
{
    sg_buf_reset(&p->payload);
    int64_t wake_at = 0;
    int rc = sg_engine_poll_again(p->w, h->sid, h->token, &p->payload, &wake_at);
    settle(p, h, rc, wake_at, true);
}

static void recheck_all(sg_parked *p)
{
    ssize_t n = snapshot(p);
    if (n < 0) {
        sg_error("held polls: out of memory for a full re-check");
        return;
    }
    for (ssize_t i = 0; i < n; i++)
        recheck(p, held_of(p->scratch[i]));
    p->last_full_recheck = sg_mono_ms();
}

/* The web server closed or aborted h's connection. */
static void hangup(sg_parked *p, struct held *h)
{
    sg_debug("held poll: the web server closed the connection");
    sg_engine_poll_release(p->w, h->sid, h->token);
    drop(p, h, true);
}

/* ---------------------------------------------------------------- rings */

static void memo_add(sg_parked *p, const char *id, size_t len)
{
    uint64_t e = atomic_load_explicit(&p->epoch, memory_order_relaxed);
    char *slot = p->memo[e % RING_MEMO];
    memcpy(slot, id, len);
    slot[len] = '\0';
    atomic_store_explicit(&p->epoch, e + 1, memory_order_release);
}

/* Was sid (or everything) rung since epoch? */
static bool rung_since(sg_parked *p, const char *sid, uint64_t since)
{
    uint64_t now = atomic_load_explicit(&p->epoch, memory_order_relaxed);
    if (now == since)
        return false;
    if (now - since > RING_MEMO)
        return true; /* forgotten: assume so */
    for (uint64_t e = since; e < now; e++) {
        const char *m = p->memo[e % RING_MEMO];
        if (strcmp(m, sid) == 0 || strcmp(m, SG_BELL_ALL) == 0)
            return true;
    }
    return false;
}

static void ring_one(void *ud, const char *sid)
{
    sg_parked *p = ud;
    memo_add(p, sid, SG_ID_LEN);
    for (sg_sidnode *n = sg_sidmap_find(&p->by_sid, sid), *next; n; n = next) {
        next = sg_sidmap_next(n); /* recheck may free n's GET, never another */
        recheck(p, SG_CONTAINER_OF(n, struct held, node));
    }
}

static void take_rings(sg_parked *p)
{
    bool all = false;
    int count = sg_bell_drain(p->bell, MAX_DATAGRAMS, ring_one, p, &all);
    if (count < 0)
        sg_error("doorbell: receiving a ring failed");
    if (all)
        memo_add(p, SG_BELL_ALL, 1);
    int64_t now = sg_mono_ms();
    if (!all && count >= p->pressure && now - p->last_full_recheck >= FULL_RECHECK_GAP_MS) {
        sg_debug("doorbell: %d rings in one wake-up, some may be lost: re-checking all", count);
        all = true;
    }
    if (all)
        recheck_all(p);
}

/* ---------------------------------------------------------------- hand-over */

static void admit(sg_parked *p, struct held *h)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = h};
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, h->req->ipcFd, &ev) < 0) {
        sg_error("held poll: epoll_ctl(ADD): %s; answering noop", strerror(errno));
        answer_noop(p->cfg, p->w, h);
        drop(p, h, false);
        return;
    }
    h->node.sid = h->sid;
    sg_sidmap_add(&p->by_sid, &h->node);
    if (sg_deadlines_set(&p->timers, &h->timer, deadline_for(h->wake_at)) < 0) {
        sg_error("held poll: out of memory; answering noop");
        answer_noop(p->cfg, p->w, h);
        drop(p, h, true);
        return;
    }
    if (rung_since(p, h->sid, h->epoch))
        recheck(p, h);
}

static void release_all(sg_parked *p, struct held *queue)
{
    size_t n = 0;
    for (struct held *h = queue, *next; h; h = next, n++) {
        next = h->next;
        answer_noop(p->cfg, p->w, h);
        drop(p, h, false);
    }
    while (p->timers.len) {
        struct held *h = held_of(p->timers.heap[p->timers.len]); /* the last: cheapest out */
        answer_noop(p->cfg, p->w, h);
        drop(p, h, true);
        n++;
    }
    if (n)
        sg_info("answered %zu held poll%s with noop", n, n == 1 ? "" : "s");
}

/* ---------------------------------------------------------------- loop */

static void *loop_main(void *arg)
{
    sg_parked *p = arg;
    struct epoll_event evs[MAX_EVENTS];
    p->next_sweep = sg_mono_ms() + SG_PARKED_SWEEP_MS;
    p->last_full_recheck = sg_mono_ms();

    for (;;) {
        int64_t now = sg_mono_ms();
        int64_t until = p->next_sweep;
        sg_deadline *first = sg_deadlines_first(&p->timers);
        if (first && first->at < until)
            until = first->at;
        int timeout = until <= now ? 0 : (int)(until - now);

        int n = epoll_wait(p->epfd, evs, MAX_EVENTS, timeout);
        if (n < 0) {
            if (errno != EINTR) {
                sg_error("held polls: epoll_wait: %s", strerror(errno));
                usleep(100000);
            }
            n = 0;
        }
        bool rang = false, woke = false;
        /* Hang-ups first: each descriptor appears once per batch, and
         * nothing else frees a held GET before this pass is over. */
        for (int i = 0; i < n; i++) {
            void *tag = evs[i].data.ptr;
            if (tag == &tag_bell)
                rang = true;
            else if (tag == &tag_wake)
                woke = true;
            else
                hangup(p, tag);
        }
        if (woke) {
            uint64_t v;
            if (read(p->evfd, &v, sizeof v) < 0 && errno != EAGAIN)
                sg_error("held polls: reading the eventfd: %s", strerror(errno));
            pthread_mutex_lock(&p->mu);
            struct held *q = p->q_head;
            bool stop = p->stop;
            p->q_head = p->q_tail = NULL;
            pthread_mutex_unlock(&p->mu);
            if (stop) {
                release_all(p, q);
                return NULL;
            }
            for (struct held *h = q, *next; h; h = next) {
                next = h->next;
                h->next = NULL;
                admit(p, h);
            }
        }
        if (rang)
            take_rings(p);

        now = sg_mono_ms();
        size_t due = 0;
        for (sg_deadline *t; (t = sg_deadlines_first(&p->timers)) && t->at <= now;) {
            if (due == p->scratch_cap) {
                size_t cap = p->scratch_cap ? p->scratch_cap * 2 : 64;
                sg_deadline **s = realloc(p->scratch, cap * sizeof *s);
                if (!s)
                    break;
                p->scratch = s;
                p->scratch_cap = cap;
            }
            sg_deadlines_remove(&p->timers, t);
            p->scratch[due++] = t;
        }
        /* out of the heap while they are answered; settle() puts the
         * waiting ones back */
        for (size_t i = 0; i < due; i++)
            recheck(p, held_of(p->scratch[i]));

        if (now >= p->next_sweep) {
            int closed = sg_engine_sweep(p->w);
            if (closed > 0)
                sg_debug("sweep: %d session%s timed out", closed, closed == 1 ? "" : "s");
            p->next_sweep = sg_mono_ms() + SG_PARKED_SWEEP_MS;
        }
    }
}

/* ---------------------------------------------------------------- API */

sg_parked *sg_parked_new(sg_engine *e)
{
    sg_parked *p = calloc(1, sizeof *p);
    if (!p) {
        sg_error("held polls: out of memory");
        return NULL;
    }
    p->engine = e;
    p->cfg = sg_engine_config(e);
    p->epfd = p->evfd = -1;
    pthread_mutex_init(&p->mu, NULL);
    sg_buf_init(&p->payload);
    atomic_init(&p->epoch, 0);
    p->pressure = sg_bell_queue_len() / 2;
    if (p->pressure < 2)
        p->pressure = 2;

    sg_deadlines_init(&p->timers);
    if (sg_sidmap_init(&p->by_sid, 64) < 0) {
        sg_error("held polls: out of memory");
        goto fail;
    }
    p->w = sg_worker_new(e);
    if (!p->w)
        goto fail;
    char *dir = sg_bell_dir_for(p->cfg->db);
    if (!dir) {
        sg_error("held polls: out of memory");
        goto fail;
    }
    p->bell = sg_bell_waiter(dir);
    free(dir);
    if (!p->bell)
        goto fail;
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    p->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->epfd < 0 || p->evfd < 0) {
        sg_error("held polls: %s", strerror(errno));
        goto fail;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &tag_wake};
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->evfd, &ev) < 0) {
        sg_error("held polls: epoll_ctl: %s", strerror(errno));
        goto fail;
    }
    ev.data.ptr = &tag_bell;
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, sg_bell_fd(p->bell), &ev) < 0) {
        sg_error("held polls: epoll_ctl(doorbell): %s", strerror(errno));
        goto fail;
    }
    return p;
fail:
    sg_parked_free(p);
    return NULL;
}

int sg_parked_start(sg_parked *p)
{
    int rc = pthread_create(&p->thread, NULL, loop_main, p);
    if (rc) {
        sg_error("held polls: pthread_create: %s", strerror(rc));
        return -1;
    }
    p->started = true;
    return 0;
}

uint64_t sg_parked_epoch(sg_parked *p)
{
    return atomic_load_explicit(&p->epoch, memory_order_acquire);
}

void sg_parked_hold(sg_parked *p, sg_worker *w, FCGX_Request *req, const char *sid,
                    const char *token, int64_t wake_at, uint64_t epoch)
{
    struct held *h = calloc(1, sizeof *h);
    if (!h || strlen(sid) > SG_ID_LEN || strlen(token) >= sizeof h->token) {
        sg_error("held poll: %s; answering noop", h ? "bad session id or token" : "out of memory");
        free(h);
        sg_engine_poll_release(w, sid, token);
        sg_http_respond(req, p->cfg, 200, CT_TEXT, "6", 1);
        sg_http_finish(req);
        free(req);
        return;
    }
    strcpy(h->sid, sid);
    strcpy(h->token, token);
    h->req = req;
    h->wake_at = wake_at;
    h->epoch = epoch;

    pthread_mutex_lock(&p->mu);
    bool stop = p->stop || !p->started;
    if (!stop) {
        if (p->q_tail)
            p->q_tail->next = h;
        else
            p->q_head = h;
        p->q_tail = h;
    }
    pthread_mutex_unlock(&p->mu);
    if (stop) {
        answer_noop(p->cfg, w, h);
        sg_http_finish(req);
        free(req);
        free(h);
        return;
    }
    uint64_t one = 1;
    if (write(p->evfd, &one, sizeof one) < 0 && errno != EAGAIN)
        sg_error("held polls: writing the eventfd: %s", strerror(errno));
}

void sg_parked_stop(sg_parked *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_mutex_unlock(&p->mu);
    if (!p->started)
        return;
    uint64_t one = 1;
    if (write(p->evfd, &one, sizeof one) < 0 && errno != EAGAIN)
        sg_error("held polls: writing the eventfd: %s", strerror(errno));
    pthread_join(p->thread, NULL);
    p->started = false;
}

void sg_parked_free(sg_parked *p)
{
    if (!p)
        return;
    /* nothing can be held once stopped; without a start nothing ever was */
    if (p->epfd >= 0)
        close(p->epfd);
    if (p->evfd >= 0)
        close(p->evfd);
    sg_bell_close(p->bell);
    if (p->w)
        sg_worker_free(p->w);
    sg_sidmap_free(&p->by_sid);
    sg_deadlines_free(&p->timers);
    free(p->scratch);
    sg_buf_free(&p->payload);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
