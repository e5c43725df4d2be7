/* parked.c - the event loop of siogate-fcgi. See parked.h.
 *
 * One thread, one epoll set (level-triggered):
 *   - the FastCGI listening socket (accept4, non-blocking); a connection
 *     is read as soon as it is accepted (the web server wrote its request
 *     already), and joins the set only once it must wait (conn_watch);
 *   - every FastCGI connection that waits: read, fed through the FastCGI
 *     codec (fcgi.h), written when an answer is ready (EPOLLOUT only while
 *     an answer did not fit the socket); a read of 0 or an error is the
 *     web server hanging up: a held GET on it is released (abandoned poll);
 *   - the doorbell waiter's datagram socket (rings: session ids, or "*");
 *   - an eventfd through which the main thread asks the loop to stop.
 *
 * A turn of the loop gathers what is ready -- complete requests that need
 * the engine (jobs), hang-ups of held GETs, rings, due timers, the safety
 * re-check, the sweep -- and runs it all in one batch: one store
 * transaction, one doorbell ring to the other processes after its commit,
 * then every answer is written. Before the commit the loop asks the engine
 * which sessions the batch queued frames for (sg_engine_batch_dirty) and
 * re-checks its own held GETs of those sessions in the same batch: a POST's
 * ack reaches the GET held for it without a ring, and a broadcast to every
 * held GET of this process is one transaction, not one per GET. Its own
 * doorbell socket is never rung by itself (sg_worker_ring_others).
 *
 * Held GETs are found by session id in a hash table (sidmap.h: a ring costs
 * one lookup per id) and ordered by deadline in a min-heap (deadlines.h) on
 * CLOCK_MONOTONIC ms (the engine's CLOCK_REALTIME wake_at is converted on
 * arrival, so that clock steps do not stall or fire timers). A held GET has
 * a timer only for the engine's wake_at (its next ping or heartbeat
 * deadline, once per ping interval; during an upgrade, its noop 100 ms
 * after the probe); the safety net for a dropped ring is
 * one query every SG_PARKED_RECHECK_MS for the sessions that got frames
 * since the last one (sg_engine_changed_since), not a re-check per held
 * GET: an idle loop costs the same whatever the number of held polls.
 *
 * Dropped rings. Datagrams beyond the receive queue of the waiter
 * (net.unix.max_dgram_qlen, often only 10) are dropped by the kernel. When
 * one wake-up drains at least half that many datagrams the loop runs the
 * safety re-check soon (at most once per FULL_RECHECK_GAP_MS).
 *
 * Ownership: a connection owns its job (the request being handled); a job
 * points back at its connection. A connection that hangs up while its job
 * runs in the batch is closed after the batch (its answer dropped).
 *
 * Measured: see tests/bench/README (tests/bench/compare). */
#include "parked.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon.h"
#include "deadlines.h"
#include "doorbell.h"
#include "http.h"
#include "log.h"
#include "sidmap.h"
#include "util.h"

#define MAX_EVENTS 256
#define MAX_ACCEPTS 64          /* per turn, so a flood cannot starve the rest */
#define MAX_BATCH 256           /* jobs per batch; the rest wait for the next turn */
#define MAX_DATAGRAMS 4096      /* per wake-up, so rings cannot starve the rest */
#define FULL_RECHECK_GAP_MS 100 /* a re-check forced by ring pressure, at most this often */
#define MIN_DELAY_MS 10         /* a timer is never re-armed sooner */
#define TIMER_GRAIN_MS 250      /* held GETs' timers fall due together (deadline_for), */
                                /* at most a tenth of ping_timeout */
#define READ_CHUNK 16384
#define MAX_INPUT (SG_FCGI_MAX_PARAMS + 2 * 65536) /* unparsed bytes held per connection */
#define STOP_FLUSH_MS 1000      /* at stop, answers still unwritten after this are dropped */

static const char CT_TEXT[] = "text/plain; charset=UTF-8";

struct conn;

/* A request that needs the engine, from its routing to its answer. */
struct job {
    enum sg_parked_kind kind;
    struct conn *c;             /* NULL once the connection is gone */
    char sid[SG_ID_LEN + 1];    /* "" for a handshake */
    char token[SG_TOKEN_MAX];   /* a GET's poller token (util.h) */
    sg_buf buf;                 /* the answer's body */
    int rc;                     /* the engine's result, to answer */
    int refused_status, refused_code; /* SG_E_REFUSED: the answer (message in buf) */
    int64_t wake_at;            /* engine's deadline, CLOCK_REALTIME ms (0: none) */
    bool held;                  /* in by_sid and timers */
    bool due;                   /* rung: in p->due, re-checked in the next batch */
    struct job *next_due;
    sg_deadline timer;          /* CLOCK_MONOTONIC ms, in p->timers */
    sg_sidnode node;            /* in p->by_sid */
    struct job *next;           /* this turn's jobs, or this batch's answers */
};

/* A FastCGI connection of the web server. */
struct conn {
    int fd;
    sg_fcgi_parser parser;
    sg_buf in;                  /* read, not yet parsed */
    sg_buf out;                 /* records to write, from out_off */
    size_t out_off;
    struct job *job;            /* the request being handled, or NULL */
    bool watched;               /* in the epoll set (conn_watch) */
    bool writing;               /* EPOLLOUT is on */
    bool close_after;           /* close once out is written */
    bool dead;                  /* hung up while its job ran: close after the batch */
    struct conn *next_dead;
    struct conn *prev, *next;   /* every connection, in p->conns */
};

struct sg_parked {
    sg_engine *engine;
    const sg_config *cfg;
    sg_worker *w;
    sg_bell *bell;
    int epfd, evfd, listen_fd;
    bool nodelay;
    sg_parked_router route;
    void *route_ud;
    pthread_t thread;
    bool started;
    long pid;
    const char *allowed;         /* FCGI_WEB_SERVER_ADDRS, or NULL */

    pthread_mutex_t mu;          /* guards stop */
    bool stop;

    /* loop thread only */
    uint64_t tokens;
    struct conn *conns;          /* every connection */
    sg_sidmap by_sid;            /* held GETs by session id */
    sg_deadlines timers;         /* every held GET */
    struct job **scratch;
    size_t scratch_cap;
    struct job *jobs, **jobs_tail; /* this turn's new jobs */
    struct job *answers, **answers_tail; /* this batch's, answered after the commit */
    struct job *gone;            /* held GETs hung up: released in the batch, then freed */
    struct conn *dead;           /* connections to close after the batch */
    struct job *due;             /* held GETs rung since the last batch */
    bool due_all;                /* "*" rung: every held GET */
    sg_buf resp;                 /* scratch: a CGI answer */
    int pressure;                /* datagrams per wake-up that suggest drops */
    int64_t mark;                /* queue seq of the last safety re-check */
    int64_t bmark;               /* broadcast log seq of the last log ring */
    int64_t next_recheck;
    int64_t next_sweep;
};

/* epoll tags for the special descriptors */
static char tag_bell, tag_wake, tag_listen;

/* ---------------------------------------------------------------- connections */

static void conn_close(sg_parked *p, struct conn *c)
{
    close(c->fd); /* leaves the epoll set with it: the descriptor is not shared */
    sg_fcgi_parser_free(&c->parser);
    sg_buf_free(&c->in);
    sg_buf_free(&c->out);
    if (c->prev)
        c->prev->next = c->next;
    else
        p->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
}

/* Put c in the epoll set, reading and, if out, writing. A connection
 * joins it only once it must wait for something: more of its request, the
 * socket's room for an answer, its next request (FCGI_KEEP_CONN), or the
 * hang-up of its held GET. One that the web server opens for a single
 * request (lighttpd, Apache) and that is answered within the turn it was
 * accepted in never does: no epoll_ctl, and its close has no epoll entry
 * to remove. -1 (logged) when it cannot be watched. */
static int conn_watch(sg_parked *p, struct conn *c, bool out)
{
    if (c->watched && c->writing == out)
        return 0;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0),
                             .data.ptr = c};
    if (epoll_ctl(p->epfd, c->watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        sg_error("fastcgi: epoll_ctl: %s", strerror(errno));
        return -1;
    }
    c->watched = true;
    c->writing = out;
    return 0;
}

/* Write what c has to write. -1 when the connection is gone (closed). */
static int conn_flush(sg_parked *p, struct conn *c)
{
    int rc = sg_daemon_send(c->fd, c->out.data, c->out.len, &c->out_off);
    if (rc > 0)
        return conn_watch(p, c, true);
    if (rc < 0) {
        sg_debug("fastcgi: the web server went away before the answer");
        return -1;
    }
    sg_buf_free(&c->out); /* an idle or held connection keeps no buffer */
    c->out_off = 0;
    if (c->close_after && !c->job)
        return -1;
    /* its next request, or (a job pending) the hang-up of its held GET */
    return conn_watch(p, c, false);
}

/* ---------------------------------------------------------------- held GETs */

static struct job *job_of_timer(sg_deadline *t) { return SG_CONTAINER_OF(t, struct job, timer); }
static struct job *job_of_node(sg_sidnode *n) { return SG_CONTAINER_OF(n, struct job, node); }

static void job_free(struct job *j)
{
    sg_buf_free(&j->buf);
    free(j);
}

static int64_t deadline_for(const sg_parked *p, int64_t wake_at)
{
    int64_t now = sg_mono_ms();
    /* every session has an engine deadline (its ping); this is a backstop */
    int64_t d = now + 60 * 1000;
    if (wake_at > 0) {
        /* +1: never wake a millisecond early because of rounding */
        int64_t w = now + (wake_at - sg_now_ms()) + 1;
        if (w < d)
            d = w;
    }
    if (d < now + MIN_DELAY_MS)
        d = now + MIN_DELAY_MS;
    /* A deadline within a second is kept as it is: rounding it would delay
     * it by a large part of itself (an upgrade's noop, 100 ms away). */
    if (d - now < 1000)
        return d;
    /* Rounded up to a multiple of TIMER_GRAIN_MS, so that the pings of many
     * sessions fall due together and are answered in one batch (and their
     * pongs and the next GETs arrive together too): with 5,000 sessions and
     * the default 25 s interval, 200 pings a second become a batch every
     * TIMER_GRAIN_MS instead of a transaction each. A ping leaves at most
     * that much later: a client waits pingInterval + pingTimeout for it, so
     * the grain is at most a tenth of ping_timeout (20 s by default). */
    int64_t grain = p->cfg->ping_timeout / 10;
    if (grain > TIMER_GRAIN_MS)
        grain = TIMER_GRAIN_MS;
    if (grain < 1)
        grain = 1;
    return (d + grain - 1) / grain * grain;
}

/* Take j out of the table and the heap. */
static void unhold(sg_parked *p, struct job *j)
{
    if (!j->held)
        return;
    sg_sidmap_del(&p->by_sid, &j->node);
    sg_deadlines_remove(&p->timers, &j->timer);
    j->held = false;
}

/* A held GET whose web server aborted or hung up: released in the next
 * batch, then freed; its connection is no longer its own. */
static void abandon(sg_parked *p, struct job *j)
{
    unhold(p, j);
    j->c = NULL;
    j->next = p->gone;
    p->gone = j;
}

/* Answer j after this batch's commit. */
static void answer_later(sg_parked *p, struct job *j)
{
    unhold(p, j);
    j->next = NULL;
    *p->answers_tail = j;
    p->answers_tail = &j->next;
}

static void answer_noop(sg_parked *p, struct job *j)
{
    sg_engine_poll_release(p->w, j->sid, j->token);
    sg_buf_reset(&j->buf);
    j->rc = sg_buf_putc(&j->buf, '0' + SG_EIO_NOOP) < 0 ? SG_E_INTERNAL : SG_OK;
    answer_later(p, j);
}

/* The engine's result for a GET: hold it (or re-arm its timer) or answer it. */
static void settle(sg_parked *p, struct job *j, int rc, int64_t wake_at)
{
    if (rc != SG_WAIT) {
        j->rc = rc;
        answer_later(p, j);
        return;
    }
    j->wake_at = wake_at;
    if (j->c && (j->c->dead || conn_watch(p, j->c, j->c->writing) < 0)) {
        /* hung up already (it waited a turn beyond MAX_BATCH), or its
         * hang-up would go unseen: released, not held, or its session
         * would keep the GET's token and take the client's next GET for a
         * second one in flight */
        answer_noop(p, j);
        return;
    }
    if (!j->held) {
        j->node.sid = j->sid;
        sg_sidmap_add(&p->by_sid, &j->node);
        j->held = true;
    }
    if (sg_deadlines_set(&p->timers, &j->timer, deadline_for(p, wake_at)) < 0) {
        /* without a timer it could hang forever */
        sg_error("held poll: out of memory; answering noop");
        answer_noop(p, j);
    }
}

/* A held GET, again (after a ring, its timer, a re-check). */
static void recheck(sg_parked *p, struct job *j)
{
    sg_buf_reset(&j->buf);
    int64_t wake_at = 0;
    int rc = sg_engine_poll_again(p->w, j->sid, j->token, &j->buf, &wake_at);
    settle(p, j, rc, wake_at);
}

static void recheck_sid(void *ud, const char *sid)
{
    sg_parked *p = ud;
    for (sg_sidnode *n = sg_sidmap_find(&p->by_sid, sid), *next; n; n = next) {
        next = sg_sidmap_next(n); /* recheck may unhold n's GET, never another */
        recheck(p, job_of_node(n));
    }
}

/* Every held GET (a copy of the list first: answering changes the heap). */
static void recheck_all(sg_parked *p)
{
    size_t n = p->timers.len;
    if (n > p->scratch_cap) {
        size_t cap = n + 64;
        struct job **s = realloc(p->scratch, cap * sizeof *s);
        if (!s) {
            sg_error("held polls: out of memory for a full re-check");
            return;
        }
        p->scratch = s;
        p->scratch_cap = cap;
    }
    for (size_t i = 0; i < n; i++)
        p->scratch[i] = job_of_timer(p->timers.heap[i + 1]);
    for (size_t i = 0; i < n; i++)
        recheck(p, p->scratch[i]);
}

/* ---------------------------------------------------------------- requests */

/* A new job: run it in the engine (inside the batch). */
static void run(sg_parked *p, struct job *j)
{
    const sg_fcgi_req *r = &j->c->parser.req;
    switch (j->kind) {
    case SG_PARKED_OPEN: {
        char **headers = sg_http_headers_new(r);
        if (!headers) {
            sg_error("handshake: out of memory");
            j->rc = SG_E_INTERNAL;
            break;
        }
        sg_handshake hs = {
            .address = sg_http_param(r, "REMOTE_ADDR"),
            .url = sg_http_param(r, "REQUEST_URI"),
            .query = sg_http_param(r, "QUERY_STRING"),
            .headers = (const char *const *)headers,
        };
        j->rc = sg_engine_open(p->w, &hs, "polling", j->sid, &j->buf);
        free(headers);
        if (j->rc == SG_OK)
            sg_debug("handshake: session %s", j->sid);
        if (j->rc == SG_E_REFUSED) { /* hs goes away: keep the answer */
            j->refused_status = hs.refused_status;
            j->refused_code = hs.refused_code;
            sg_buf_reset(&j->buf);
            if (sg_buf_puts(&j->buf, hs.refused_message) < 0)
                j->rc = SG_E_INTERNAL;
        }
        break;
    }
    case SG_PARKED_POST:
        j->rc = sg_engine_post(p->w, j->sid, r->body.data ? r->body.data : "", r->body.len);
        if (j->rc == SG_OK)
            j->rc = sg_buf_puts(&j->buf, "ok") < 0 ? SG_E_INTERNAL : SG_OK;
        break;
    case SG_PARKED_TOOLARGE: {
        /* closed ("transport error") as sg_engine_post does for a body
         * beyond max_payload, answered 413 */
        int rc = sg_engine_close(p->w, j->sid, "transport error");
        j->rc = rc == SG_E_SID || rc == SG_E_INTERNAL ? rc : SG_E_TOOLARGE;
        sg_warn("POST for session " SG_SID_FMT ": body longer than max_payload", j->sid);
        break;
    }
    case SG_PARKED_GET: {
        sg_token_make(j->token, p->pid, ++p->tokens);
        int64_t wake_at = 0;
        int rc = sg_engine_poll(p->w, j->sid, j->token, &j->buf, &wake_at);
        settle(p, j, rc, wake_at);
        return;
    }
    case SG_PARKED_ANSWERED:
        break;
    }
    answer_later(p, j);
}

/* Queue resp (a CGI answer) on c for its current request and write. -1:
 * the connection is gone (closed). */
static int conn_answer(sg_parked *p, struct conn *c, const sg_buf *resp)
{
    uint16_t id = c->parser.req.id;
    if (!c->parser.req.keep_conn)
        c->close_after = true;
    sg_fcgi_done(&c->parser);
    if (sg_fcgi_answer(&c->out, id, resp->data ? resp->data : "", resp->len) < 0) {
        sg_error("fastcgi: out of memory for an answer");
        return -1;
    }
    return conn_flush(p, c);
}

static int conn_parse(sg_parked *p, struct conn *c);
static void conn_gone(sg_parked *p, struct conn *c);

static const char *method_of(const struct job *j)
{
    return j->kind == SG_PARKED_POST || j->kind == SG_PARKED_TOOLARGE ? "POST" : "GET";
}

/* Write j's answer (after the commit; committed says whether it was) and
 * free j. */
static void respond(sg_parked *p, struct job *j, bool committed)
{
    struct conn *c = j->c;
    if (!c || c->dead) { /* the web server hung up meanwhile */
        job_free(j);
        return;
    }
    int rc = committed ? j->rc : SG_E_INTERNAL;
    const sg_fcgi_req *r = &c->parser.req;
    const char *addr = sg_http_param(r, "REMOTE_ADDR");
    sg_buf_reset(&p->resp);
    int w;
    if (rc == SG_OK) {
        /* a POST's "ok" is text/html, as from the reference server, so that
         * old browsers never offer it as a download */
        const char *ctype = j->kind == SG_PARKED_POST ? "text/html" : CT_TEXT;
        sg_buf cookie = SG_BUF_INIT; /* the handshake's Set-Cookie, if configured */
        w = j->kind == SG_PARKED_OPEN ? sg_engine_cookie(p->cfg, j->sid, &cookie) : 0;
        if (w == 0)
            w = sg_http_respond_with(r, &p->resp, p->cfg, 200, ctype,
                                     j->buf.data ? j->buf.data : "", j->buf.len,
                                     cookie.len ? cookie.data : NULL);
        sg_buf_free(&cookie);
    } else {
        int status, code;
        const char *msg;
        sg_engine_error(rc, &status, &code, &msg);
        if (rc == SG_E_REFUSED) {
            status = j->refused_status;
            code = j->refused_code;
            msg = j->buf.data ? j->buf.data : "";
        }
        if (!sg_engine_result_logged(rc))
            sg_warn("%s from %s: %d %s", method_of(j), addr ? addr : "?", status,
                    msg ? msg : "error");
        else if (!committed)
            sg_error("%s from %s: the store's commit failed: 500", method_of(j),
                     addr ? addr : "?");
        w = sg_http_respond_error(r, &p->resp, p->cfg, status, code, msg);
    }
    c->job = NULL;
    job_free(j);
    if (w < 0)
        sg_error("fastcgi: out of memory for an answer");
    if (w < 0 || conn_answer(p, c, &p->resp) < 0)
        conn_close(p, c);
    else if (c->in.len && conn_parse(p, c) < 0) /* the next request, already read */
        conn_gone(p, c); /* which may have queued a job before the bad record */
}

/* Parse what c has read: answer what the router answers, queue jobs. -1:
 * close c (a protocol error; c is not closed here). */
static int conn_parse(sg_parked *p, struct conn *c)
{
    size_t off = 0;
    int rc = 0;
    while (rc == 0 && off < c->in.len) {
        size_t used = 0;
        int ev = sg_fcgi_parse(&c->parser, c->in.data + off, c->in.len - off, &used, &c->out);
        off += used;
        if (ev == SG_FCGI_ERROR) {
            sg_warn("fastcgi: not a FastCGI request, or out of memory: closing the connection");
            rc = -1;
        } else if (ev == SG_FCGI_ABORT) {
            struct job *j = c->job;
            if (j && j->held) {
                sg_debug("held poll: aborted by the web server");
                abandon(p, j);
                c->job = NULL;
            } else if (j) {
                j->c = NULL; /* runs in this turn's batch; its answer is dropped */
                c->job = NULL;
            }
            sg_fcgi_done(&c->parser);
        } else if (ev == SG_FCGI_REQUEST) {
            if (c->job) { /* cannot happen: the parser holds one request */
                rc = -1;
                break;
            }
            struct job *j = calloc(1, sizeof *j);
            if (!j) {
                sg_error("fastcgi: out of memory for a request");
                rc = -1;
                break;
            }
            sg_buf_init(&j->buf);
            sg_buf_reset(&p->resp);
            j->kind = p->route(p->route_ud, &c->parser.req, j->sid, &p->resp);
            if (j->kind == SG_PARKED_ANSWERED) {
                job_free(j);
                if (conn_answer(p, c, &p->resp) < 0)
                    return -1;
                continue;
            }
            j->c = c;
            c->job = j;
            *p->jobs_tail = j;
            p->jobs_tail = &j->next;
        } else {
            break; /* more bytes needed */
        }
    }
    if (off) {
        memmove(c->in.data, c->in.data + off, c->in.len - off);
        c->in.len -= off;
        c->in.data[c->in.len] = '\0';
    }
    if (rc == 0 && c->out.len && conn_flush(p, c) < 0)
        return -1;
    return rc;
}

/* The web server hung up on c (or broke it): forget it. */
static void conn_gone(sg_parked *p, struct conn *c)
{
    struct job *j = c->job;
    if (j && j->held) {
        sg_debug("held poll: the web server closed the connection");
        abandon(p, j);
    } else if (j) {
        /* queued for this turn's batch: closed after it */
        c->dead = true;
        c->next_dead = p->dead;
        p->dead = c;
        return;
    }
    conn_close(p, c);
}

/* Read what c has for us and parse it. false when c was closed, or is
 * closed after this turn's batch (conn_gone). */
static bool conn_readable(sg_parked *p, struct conn *c)
{
    for (;;) {
        if (c->in.len >= MAX_INPUT) {
            /* a long STDIN stream (a big POST) arrives faster than one
             * turn: parse what came so far, the parser keeps the body */
            if (conn_parse(p, c) < 0) {
                conn_gone(p, c);
                return false;
            }
            if (c->in.len >= MAX_INPUT) {
                /* the parser keeps what it needs; this much unparsed is abuse */
                sg_warn("fastcgi: a record beyond every limit: closing the connection");
                conn_gone(p, c);
                return false;
            }
        }
        if (sg_buf_reserve(&c->in, READ_CHUNK) < 0) {
            sg_error("fastcgi: out of memory reading a request");
            conn_gone(p, c);
            return false;
        }
        ssize_t n = recv(c->fd, c->in.data + c->in.len, READ_CHUNK, MSG_DONTWAIT);
        if (n > 0) {
            c->in.len += (size_t)n;
            c->in.data[c->in.len] = '\0';
            if ((size_t)n < READ_CHUNK)
                break;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        conn_gone(p, c); /* 0: closed; < 0: reset */
        return false;
    }
    if (conn_parse(p, c) < 0) {
        conn_gone(p, c);
        return false;
    }
    if (!c->in.len)
        sg_buf_free(&c->in); /* 16 KB less per held poll */
    return true;
}

/* FCGI_WEB_SERVER_ADDRS, as libfcgi reads it: a comma-separated list of
 * the addresses a TCP peer may have (unset: any). */
static bool peer_allowed(sg_parked *p, int fd)
{
    if (!p->allowed)
        return true;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char addr[INET6_ADDRSTRLEN] = "";
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
        return false;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof addr);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof addr);
    else
        return true; /* a unix socket: its directory's permissions decide */
    size_t n = strlen(addr);
    for (const char *s = p->allowed; *s;) {
        size_t len = strcspn(s, ",");
        while (len && (*s == ' ' || *s == '\t'))
            s++, len--;
        size_t l = len;
        while (l && (s[l - 1] == ' ' || s[l - 1] == '\t'))
            l--;
        if (l == n && memcmp(s, addr, n) == 0)
            return true;
        s += len;
        if (*s == ',')
            s++;
    }
    sg_warn("fastcgi: connection from %s refused (not in FCGI_WEB_SERVER_ADDRS)", addr);
    return false;
}

static void accept_some(sg_parked *p)
{
    for (int k = 0; k < MAX_ACCEPTS; k++) {
        int fd = accept4(p->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                /* EMFILE and the like: try again on the next turn */
                sg_error("fastcgi: accept: %s", strerror(errno));
            }
            return;
        }
        if (!peer_allowed(p, fd)) {
            close(fd);
            continue;
        }
        if (p->nodelay) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        struct conn *c = calloc(1, sizeof *c);
        if (!c) {
            sg_error("fastcgi: out of memory for a connection");
            close(fd);
            return;
        }
        c->fd = fd;
        sg_fcgi_parser_init(&c->parser,
                            p->cfg->max_payload > 0 ? (size_t)p->cfg->max_payload : 0);
        sg_buf_init(&c->in);
        sg_buf_init(&c->out);
        c->next = p->conns;
        if (p->conns)
            p->conns->prev = c;
        p->conns = c;
        /* A web server that connects for a request writes it at once: read
         * it now, for this turn's batch. Watched only if it must wait
         * (conn_watch); a request being handled is watched, if at all,
         * once it is answered or held. */
        if (conn_readable(p, c) && !c->job && conn_watch(p, c, c->out.len > 0) < 0)
            conn_close(p, c);
    }
}

/* ---------------------------------------------------------------- rings */

static void ring_one(void *ud, const char *sid)
{
    sg_parked *p = ud;
    for (sg_sidnode *n = sg_sidmap_find(&p->by_sid, sid); n; n = sg_sidmap_next(n)) {
        struct job *j = job_of_node(n);
        if (!j->due) {
            j->due = true;
            j->next_due = p->due;
            p->due = j;
        }
    }
}

/* sg_own_fn: the sessions of the held GETs (into v when at most max). */
static size_t held_sids(void *ud, const char **v, size_t max)
{
    sg_parked *p = ud;
    size_t n = p->timers.len;
    if (n > max)
        return n;
    for (size_t i = 0; i < n; i++)
        v[i] = job_of_timer(p->timers.heap[i + 1])->sid;
    return n;
}

/* The sessions rung, before any batch: their held GETs become due. A ring
 * for no GET held here (most of them, when siogate-wsd or another process
 * commits) costs no transaction. */
static void take_rings(sg_parked *p)
{
    bool all = false, log = false;
    int count = sg_bell_drain(p->bell, MAX_DATAGRAMS, ring_one, p, &all, &log);
    if (count < 0)
        sg_error("doorbell: receiving a ring failed");
    /* the held GETs of the sessions new broadcast log rows name: one read */
    if (log && !all &&
        sg_engine_bcast_since(p->w, &p->bmark, held_sids, p->by_sid.count ? ring_one : NULL, p) < 0)
        sg_error("doorbell: finding the sessions of a broadcast failed");
    if (all && p->timers.len)
        p->due_all = true;
    if (count >= p->pressure && !all) {
        int64_t now = sg_mono_ms();
        if (p->next_recheck > now + FULL_RECHECK_GAP_MS) {
            sg_debug("doorbell: %d rings in one wake-up, some may be lost: re-checking", count);
            p->next_recheck = now + FULL_RECHECK_GAP_MS;
        }
    }
}

/* ---------------------------------------------------------------- the batch */

static bool due_timer(sg_parked *p, int64_t now)
{
    sg_deadline *t = sg_deadlines_first(&p->timers);
    return t && t->at <= now;
}

/* One batch: everything ready now (jobs: at most MAX_BATCH of this turn's),
 * one transaction, then the answers. false: the store failed (the
 * transaction did not begin or commit, or a hung-up GET's release failed:
 * p->gone keeps what is still to release, for the next batch). */
static bool batch(sg_parked *p)
{
    struct job *jobs = p->jobs, **cut = &p->jobs;
    for (size_t n = 0; *cut && n < MAX_BATCH; n++)
        cut = &(*cut)->next;
    p->jobs = *cut;
    *cut = NULL;
    if (!p->jobs)
        p->jobs_tail = &p->jobs;

    p->answers = NULL;
    p->answers_tail = &p->answers;
    struct job *released = NULL;
    bool committed = sg_engine_batch_begin(p->w) == SG_OK;
    if (!committed) {
        /* the store is locked past its timeout, or broken: every new
         * request is answered 500; held GETs stay held (and the rung ones
         * due), the hung-up ones stay to release */
        for (struct job *j = jobs, *next; j; j = next) {
            next = j->next;
            answer_later(p, j);
        }
        goto answer;
    }

    /* hung-up GETs: freed once their release commits (a session whose
     * slot stays taken would close at its next GET) */
    struct job *retry = NULL;
    for (struct job *j = p->gone, *next; j; j = next) {
        next = j->next;
        struct job **to = sg_engine_poll_release(p->w, j->sid, j->token) == SG_OK ? &released : &retry;
        j->next = *to;
        *to = j;
    }
    p->gone = retry;
    /* the GETs rung: each is held still (hang-ups came before the rings) */
    bool all = p->due_all;
    for (struct job *j = p->due, *next; j; j = next) {
        next = j->next_due;
        j->due = false;
        if (!all && j->held)
            recheck(p, j);
    }
    p->due = NULL;
    p->due_all = false;
    for (struct job *j = jobs, *next; j; j = next) {
        next = j->next;
        if (j->c)
            run(p, j);
        else
            answer_later(p, j); /* aborted before it ran */
    }
    int64_t now = sg_mono_ms();
    if (!all && now >= p->next_recheck) {
        if (sg_engine_changed_since(p->w, &p->mark, held_sids, recheck_sid, p) < 0)
            sg_error("held polls: the safety re-check failed");
        p->next_recheck = now + SG_PARKED_RECHECK_MS;
    }
    while (due_timer(p, now))
        recheck(p, job_of_timer(sg_deadlines_first(&p->timers)));
    if (now >= p->next_sweep) {
        int closed = sg_engine_sweep(p->w);
        if (closed > 0)
            sg_debug("sweep: %d session%s timed out", closed, closed == 1 ? "" : "s");
        p->next_sweep = now + SG_PARKED_SWEEP_MS;
    }
    /* Our own held GETs of the sessions this batch changed, now rather
     * than after a ring to ourselves. A re-check that leaves a GET waiting
     * changes nothing, so this ends. */
    size_t pos = 0;
    for (;;) {
        if (all) {
            recheck_all(p);
            break;
        }
        size_t before = pos;
        all = sg_engine_batch_dirty(p->w, &pos, held_sids, recheck_sid, p);
        if (!all && pos == before)
            break;
    }
    committed = sg_engine_batch_end(p->w) == SG_OK;

answer:
    for (struct job *j = p->answers, *next; j; j = next) {
        next = j->next;
        respond(p, j, committed);
    }
    p->answers = NULL;
    /* (the due loop above spent p->due: a hung-up GET is in it no more) */
    for (struct job *j = released, *next; j; j = next) {
        next = j->next;
        if (committed) {
            job_free(j);
        } else {
            j->next = p->gone;
            p->gone = j;
        }
    }
    for (struct conn *c = p->dead, *next; c; c = next) {
        next = c->next_dead;
        /* its job was answered (and dropped) above, or still waits in
         * p->jobs (beyond MAX_BATCH, or read after this batch's answers):
         * then it must not point at the closed connection */
        if (c->job)
            c->job->c = NULL;
        conn_close(p, c);
    }
    p->dead = NULL;
    return committed && !p->gone;
}

/* At stop: every request read is answered (held GETs with noop), then
 * what is left unwritten gets STOP_FLUSH_MS, then every connection is
 * closed. */
static void finish_all(sg_parked *p, struct epoll_event *evs)
{
    epoll_ctl(p->epfd, EPOLL_CTL_DEL, p->listen_fd, NULL);
    while (p->jobs || p->gone) {
        if (!batch(p)) { /* stopping: no later batch will release them */
            for (struct job *j = p->gone, *next; j; j = next) {
                next = j->next;
                job_free(j);
            }
            p->gone = NULL;
        }
    }
    size_t n = p->timers.len;
    if (n) {
        p->answers = NULL;
        p->answers_tail = &p->answers;
        bool ok = sg_engine_batch_begin(p->w) == SG_OK;
        while (p->timers.len) {
            struct job *j = job_of_timer(p->timers.heap[p->timers.len]); /* cheapest out */
            if (ok)
                answer_noop(p, j);
            else
                answer_later(p, j);
        }
        if (ok)
            ok = sg_engine_batch_end(p->w) == SG_OK;
        for (struct job *j = p->answers, *next; j; j = next) {
            next = j->next;
            respond(p, j, ok);
        }
        p->answers = NULL;
        sg_info("answered %zu held poll%s with noop", n, n == 1 ? "" : "s");
    }
    /* the answers still in socket buffers' way */
    int64_t until = sg_mono_ms() + STOP_FLUSH_MS;
    for (int64_t now = sg_mono_ms(); now < until; now = sg_mono_ms()) {
        int k = epoll_wait(p->epfd, evs, MAX_EVENTS, (int)(until - now));
        bool pending = false;
        for (int i = 0; i < k; i++) {
            void *tag = evs[i].data.ptr;
            if (tag == &tag_bell || tag == &tag_wake || tag == &tag_listen)
                continue;
            struct conn *c = tag;
            if ((evs[i].events & EPOLLOUT) && conn_flush(p, c) < 0)
                conn_close(p, c);
            else if (c->out.len)
                pending = true;
        }
        if (!pending && k <= 0)
            break;
    }
    while (p->conns)
        conn_close(p, p->conns);
}

/* ---------------------------------------------------------------- loop */

static void *loop_main(void *arg)
{
    sg_parked *p = arg;
    struct epoll_event evs[MAX_EVENTS];
    p->next_sweep = sg_mono_ms() + SG_PARKED_SWEEP_MS;
    p->next_recheck = sg_mono_ms() + SG_PARKED_RECHECK_MS;

    for (;;) {
        int64_t now = sg_mono_ms();
        int64_t until = p->next_sweep < p->next_recheck ? p->next_sweep : p->next_recheck;
        sg_deadline *first = sg_deadlines_first(&p->timers);
        if (first && first->at < until)
            until = first->at;
        int timeout = p->jobs || until <= now ? 0 : (int)(until - now);

        int n = epoll_wait(p->epfd, evs, MAX_EVENTS, timeout);
        if (n < 0) {
            if (errno != EINTR) {
                sg_error("fastcgi loop: epoll_wait: %s", strerror(errno));
                usleep(100000);
            }
            n = 0;
        }
        bool rang = false, woke = false, accepting = false;
        for (int i = 0; i < n; i++) {
            void *tag = evs[i].data.ptr;
            if (tag == &tag_bell) {
                rang = true;
            } else if (tag == &tag_wake) {
                woke = true;
            } else if (tag == &tag_listen) {
                accepting = true;
            } else {
                struct conn *c = tag;
                if (c->dead)
                    continue;
                if ((evs[i].events & EPOLLOUT) && conn_flush(p, c) < 0) {
                    conn_gone(p, c);
                    continue;
                }
                if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                    conn_readable(p, c);
            }
        }
        if (accepting)
            accept_some(p);
        if (woke) {
            uint64_t v;
            if (read(p->evfd, &v, sizeof v) < 0 && errno != EAGAIN)
                sg_error("fastcgi loop: reading the eventfd: %s", strerror(errno));
            pthread_mutex_lock(&p->mu);
            bool stop = p->stop;
            pthread_mutex_unlock(&p->mu);
            if (stop) {
                finish_all(p, evs);
                return NULL;
            }
        }
        if (rang)
            take_rings(p);
        now = sg_mono_ms();
        if (p->jobs || p->due || p->due_all || p->gone || p->dead || due_timer(p, now) ||
            now >= p->next_recheck || now >= p->next_sweep)
            batch(p);
    }
}

/* ---------------------------------------------------------------- API */

sg_parked *sg_parked_new(sg_engine *e, int listen_fd, bool nodelay, sg_parked_router route,
                         void *route_ud)
{
    sg_parked *p = calloc(1, sizeof *p);
    if (!p) {
        sg_error("fastcgi loop: out of memory");
        return NULL;
    }
    p->engine = e;
    p->cfg = sg_engine_config(e);
    p->epfd = p->evfd = -1;
    p->listen_fd = listen_fd;
    p->nodelay = nodelay;
    p->route = route;
    p->route_ud = route_ud;
    p->pid = (long)getpid();
    p->mark = -1;
    p->jobs_tail = &p->jobs;
    p->allowed = getenv("FCGI_WEB_SERVER_ADDRS");
    if (p->allowed && !*p->allowed)
        p->allowed = NULL;
    sg_buf_init(&p->resp);
    pthread_mutex_init(&p->mu, NULL);
    p->pressure = sg_bell_queue_len() / 2;
    if (p->pressure < 2)
        p->pressure = 2;

    sg_deadlines_init(&p->timers);
    if (sg_sidmap_init(&p->by_sid, 64) < 0) {
        sg_error("fastcgi loop: out of memory");
        goto fail;
    }
    p->w = sg_worker_new(e);
    if (!p->w)
        goto fail;
    char *dir = sg_config_bell_dir(p->cfg);
    if (!dir) {
        sg_error("fastcgi loop: out of memory");
        goto fail;
    }
    p->bell = sg_bell_waiter_db(dir, p->cfg->db);
    free(dir);
    if (!p->bell)
        goto fail;
    sg_worker_ring_others(p->w, p->bell);
    /* the safety re-check starts from the queue as it is now */
    p->bmark = -1;
    if (sg_engine_changed_since(p->w, &p->mark, NULL, recheck_sid, p) < 0 ||
        sg_engine_bcast_since(p->w, &p->bmark, NULL, recheck_sid, p) < 0)
        goto fail;
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    p->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->epfd < 0 || p->evfd < 0) {
        sg_error("fastcgi loop: %s", strerror(errno));
        goto fail;
    }
    int fl = fcntl(listen_fd, F_GETFL);
    if (fl < 0 || fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        sg_error("fastcgi loop: the listening socket: %s", strerror(errno));
        goto fail;
    }
    struct { int fd; void *tag; } fds[] = {
        {p->evfd, &tag_wake}, {sg_bell_fd(p->bell), &tag_bell}, {listen_fd, &tag_listen},
    };
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = fds[i].tag};
        if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fds[i].fd, &ev) < 0) {
            sg_error("fastcgi loop: epoll_ctl: %s", strerror(errno));
            goto fail;
        }
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
        sg_error("fastcgi loop: pthread_create: %s", strerror(rc));
        return -1;
    }
    p->started = true;
    return 0;
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
        sg_error("fastcgi loop: writing the eventfd: %s", strerror(errno));
    pthread_join(p->thread, NULL);
    p->started = false;
}

void sg_parked_free(sg_parked *p)
{
    if (!p)
        return;
    /* a stop closed every connection; without a start there were none */
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
    sg_buf_free(&p->resp);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
