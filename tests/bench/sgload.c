/* sgload.c - benchmark: a light Socket.IO v4 load client (one thread, epoll).
 *
 *   sgload echo      --url URL [--transport polling|websocket] [--clients 50]
 *                    [--seconds 10] [--warmup 2]
 *   sgload broadcast --url URL [--clients 1000] [--interval-ms 200] [--count 50]
 *                    [--sender polling|websocket] [--bystanders 0]
 *   sgload idle      --url URL [--clients 5000] [--seconds 10]
 *   sgload emit      --url URL --siogate PATH --conf FILE [--runs 100]
 *   common: [--path /socket.io/] [--room bench] [--batch 64]
 *           [--setup-timeout 60] [--quiet]
 *
 * The stock Node client saturates its own core long before a server on
 * another core does (DESIGN §5), so the benchmarks speak the protocol
 * themselves: raw Engine.IO v4 over nonblocking sockets in one epoll loop.
 *
 *  - Polling: like a browser, a client holds two HTTP/1.1 keep-alive
 *    connections, one for its GETs (always one in flight, re-sent as soon
 *    as a response arrives) and one for its POSTs (at most one in flight;
 *    what is emitted meanwhile waits and goes out in the next one, joined
 *    with \x1e as the protocol says). A connection is (re)opened when a
 *    request needs it; a request written on a kept-alive connection that
 *    the server closed before answering is retried once on a fresh one.
 *    Responses may have a Content-Length, be chunked, or end at EOF.
 *  - WebSocket: transport=websocket directly (no upgrade from polling),
 *    masked client frames, pings answered with pongs.
 *  - Engine.IO: pings "2" are answered with "3"; Socket.IO: a client sends
 *    CONNECT "40" to "/" and is connected on "40{...}".
 *
 * Scenarios (the handlers are tests/bench/bench_plugin.c and
 * tests/bench/reference.mjs):
 *  - echo: each client has one "message-with-ack" in flight, closed loop;
 *    after --warmup seconds the measurement runs --seconds: acked events
 *    per second and the latency from emit to ack;
 *  - broadcast: --clients polling clients join room --room (event "join",
 *    acked); one more client, the sender, emits ["broadcast", room, SEQ]
 *    every --interval-ms, --count times; every member gets "tick" SEQ. The
 *    latency of a broadcast is from the sender's emit until the LAST
 *    member has it (and the first, for reference; and all_p50_ms, the p50
 *    over every delivery: each member, each broadcast); duplicates and
 *    gaps are counted. --bystanders N more polling clients connect and
 *    keep a GET held without joining (a deployment's clients that poll
 *    while the rest upgraded: what do the broadcasts cost their process?);
 *  - idle: --clients polling clients connect and each keeps a GET held for
 *    --seconds, answering pings; the round trip of each pong (its POST) in
 *    the window is taken;
 *  - emit: one polling client joins --room; --runs times, 20 ms after its
 *    GET was re-sent, `PATH --conf FILE emit --to ROOM tick N` is started
 *    and the time until the client has "tick" N is taken (process start
 *    included, as tests/bench/cli_emit.mjs does).
 *
 * Output, on stdout: the line "ready" when the measured window begins
 * (after the connections are set up and, for echo, the warm-up), then one
 * line of key=value numbers when it ends; tests/bench/compare samples the
 * servers' CPU time between the two. Errors (HTTP statuses other than
 * 200/101, connections lost with a request in flight, CONNECT errors) are
 * counted and reported in that line, never fatal; the first few are shown
 * on stderr. Exit 0 when the scenario ran (even with errors), 1 when it
 * could not (no client connected), 2 for bad arguments.
 *
 * Bounded: by --count/--runs/--seconds, and setting up the connections
 * gives up after --setup-timeout seconds (going on with those connected).
 * Loopback only: URL must be http://127.x.x.x:PORT or http://localhost:PORT.
 * At most --batch clients are setting up at once, so that the server's
 * listen queue is not flooded. RLIMIT_NOFILE is raised as needed (a
 * polling client takes two descriptors). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ------------------------------------------------------------------ options */

enum mode { M_ECHO, M_BROADCAST, M_IDLE, M_EMIT };

static struct {
    enum mode mode;
    struct sockaddr_in addr;
    char host[96];          /* the Host header: "127.0.0.1:PORT" */
    const char *path;       /* Engine.IO path, begins and ends with '/' */
    int websocket;          /* echo: transport websocket */
    int sender_ws;          /* broadcast: the sender uses a WebSocket */
    int clients;
    int bystanders;         /* broadcast: polling clients that do not join */
    double seconds, warmup;
    int interval_ms, count, runs;
    int batch;
    double setup_timeout;
    const char *room, *siogate, *conf;
    int quiet;
} opt = {
    .path = "/socket.io/", .clients = -1, .seconds = 10, .warmup = 2,
    .interval_ms = 200, .count = 50, .runs = 100, .batch = 64,
    .setup_timeout = 60, .room = "bench",
};

/* ------------------------------------------------------------------ helpers */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("sgload: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* A growable byte buffer. Allocation failure ends the program: a load
 * client has nothing sensible to do without memory. */
typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void buf_reserve(buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        die("out of memory");
    b->p = p;
    b->cap = cap;
}

static void buf_add(buf *b, const void *data, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Drop the first n bytes. */
static void buf_consume(buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->p, b->p + n, b->len - n);
        b->len -= n;
    }
    if (b->p)
        b->p[b->len] = '\0';
}

static void buf_free(buf *b)
{
    free(b->p);
    *b = (buf){0};
}

/* A growing array of latencies (ms) and its percentiles. */
typedef struct samples {
    double *v;
    size_t n, cap;
} samples;

static void samples_add(samples *s, double x)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        double *v = realloc(s->v, cap * sizeof *v);
        if (!v)
            die("out of memory");
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = x;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void samples_sort(samples *s)
{
    if (s->n)
        qsort(s->v, s->n, sizeof *s->v, cmp_double);
}

/* Percentile p (0-100) of sorted samples, nearest rank; 0 when empty. */
static double pct(const samples *s, double p)
{
    if (!s->n)
        return 0;
    size_t rank = (size_t)(p / 100.0 * (double)s->n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > s->n)
        rank = s->n;
    return s->v[rank - 1];
}

/* ------------------------------------------------------------------ counters */

static struct {
    long http_400, http_4xx, http_5xx, http_other; /* statuses other than 200/101 */
    long conn_err;      /* a connection failed or was lost with a request in flight */
    long retries;       /* requests re-sent on a fresh connection (kept-alive one closed) */
    long parse_err;     /* malformed HTTP, WebSocket or Engine.IO from the server */
    long eio_close;     /* the server closed the session (Engine.IO close, WS close) */
    long sio_error;     /* CONNECT_ERROR or DISCONNECT from the server */
    long setup_failed;  /* clients that never got connected */
    long bad_ack;       /* an ack for no event in flight, or with a wrong id */
    long dead;          /* clients lost after being connected */
    long pongs;         /* pings answered */
} cnt;

static int shown;       /* errors shown on stderr so far */

static void show(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void show(const char *fmt, ...)
{
    if (opt.quiet || ++shown > 10)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("sgload: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (shown == 10)
        fputs("sgload: (further errors only counted)\n", stderr);
}

/* ------------------------------------------------------------------ clients */

enum role { R_GET, R_POST, R_WS };
enum cstate { C_NEW, C_HANDSHAKE, C_CONNECTING, C_READY, C_DEAD };

struct client;

/* One TCP connection. Its epoll data is (generation << 32 | id), so that an
 * event still in the batch for a descriptor that was closed (and maybe
 * reused) in the meantime is recognised and skipped. */
typedef struct conn {
    int fd;                 /* -1: closed */
    uint32_t id, gen;
    enum role role;
    struct client *cl;
    int connecting;         /* nonblocking connect() in progress */
    int busy;               /* a request is out, its response not yet in */
    int got;                /* bytes of the response received so far */
    int reused;             /* a response came on this connection before */
    int retried;            /* the request in flight was re-sent once */
    int ws_open;            /* WebSocket: after the 101 */
    double sent_at;         /* polling POST: when its request went out */
    uint32_t events;        /* what epoll watches now */
    buf out;                /* HTTP: the request (kept until answered, for a
                             * retry); WebSocket: frames not yet written */
    size_t out_off;         /* bytes of out written */
    buf in;                 /* bytes read, not yet parsed */
    buf frag;               /* WebSocket: a fragmented message being assembled */
} conn;

typedef struct client {
    int idx;
    enum cstate state;
    int ws;                 /* WebSocket transport (conns[0] is the socket) */
    int sender;             /* broadcast: the sender */
    int bystander;          /* broadcast: polls, never joins */
    char sid[64];
    conn c[2];              /* polling: R_GET, R_POST; websocket: R_WS */
    buf pending;            /* polling: packets for the next POST, \x1e-joined */
    /* echo, and the acks of "join" */
    unsigned ack_id;        /* id of the event in flight (0: none) */
    double sent;            /* when it was emitted */
    int joined;
    long last_tick;         /* broadcast: the last SEQ received */
} client;

static client *clients;
static int nclients;        /* including the broadcast sender */
static conn **conns;        /* by conn id */
static int ep = -1;

static int setup_active;    /* clients setting up (C_HANDSHAKE, C_CONNECTING) */
static int next_start;      /* the next client to start */
static int n_ready;         /* clients that got connected (and are not dead) */
static int n_resolved;      /* clients connected or given up */

/* scenario hooks, below */
static void on_connected(client *cl);
static void on_event(client *cl, const char *data, size_t len);
static void on_ack(client *cl, unsigned long id, const char *data, size_t len);
static void on_lost(client *cl);
static void on_posted(conn *c);

static void conn_close(conn *c)
{
    if (c->fd >= 0)
        close(c->fd);       /* leaves the epoll set with it */
    c->fd = -1;
    c->gen++;
    c->connecting = c->ws_open = 0;
    c->events = 0;
    c->in.len = c->frag.len = 0;
}

static void conn_watch(conn *c)
{
    uint32_t want = EPOLLIN | EPOLLRDHUP;
    if (c->connecting || c->out_off < c->out.len)
        want |= EPOLLOUT;
    if (want == c->events)
        return;
    struct epoll_event ev = {.events = want, .data.u64 = (uint64_t)c->gen << 32 | c->id};
    if (epoll_ctl(ep, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    c->events = want;
}

static int conn_open(conn *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        show("socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&opt.addr, sizeof opt.addr) < 0 && errno != EINPROGRESS) {
        show("connect: %s", strerror(errno));
        close(fd);
        return -1;
    }
    c->fd = fd;
    c->connecting = 1;
    c->reused = 0;
    c->events = 0;
    conn_watch(c);
    return 0;
}

/* Write what is pending; -1 when the connection failed. */
static int conn_flush(conn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->fd, c->out.p + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            return -1;
        }
        c->out_off += (size_t)n;
    }
    if (c->role == R_WS && c->out_off == c->out.len)
        c->out.len = c->out_off = 0;
    conn_watch(c);
    return 0;
}

static void client_dead(client *cl, int lost);

/* Send the request now in c->out, opening the connection if needed. */
static void conn_request(conn *c)
{
    c->out_off = 0;
    c->busy = 1;
    c->got = 0;
    if (c->fd < 0 && conn_open(c) < 0) {
        cnt.conn_err++;
        client_dead(c->cl, 1);
        return;
    }
    if (!c->connecting && conn_flush(c) < 0) {
        /* a kept-alive connection the server has just closed */
        conn_close(c);
        cnt.retries++;
        c->retried = 1;
        if (conn_open(c) < 0) {
            cnt.conn_err++;
            client_dead(c->cl, 1);
        }
    }
}

/* The connection broke. With a request out and nothing of its response
 * in, on a connection that had served one before (the server closed it as
 * idle while the request was on its way): re-send it once on a fresh one. */
static void conn_broken(conn *c, const char *why)
{
    int busy = c->busy;
    int retry = busy && c->got == 0 && c->reused && !c->retried && c->role != R_WS;
    conn_close(c);
    if (!busy && c->role != R_WS)
        return; /* an idle keep-alive connection closed: reopened when needed */
    if (retry) {
        cnt.retries++;
        c->retried = 1;
        if (conn_open(c) == 0)
            return; /* conn_flush runs once it is connected */
    }
    cnt.conn_err++;
    show("client %d: %s connection: %s", c->cl->idx,
         c->role == R_GET ? "GET" : c->role == R_POST ? "POST" : "WebSocket", why);
    client_dead(c->cl, 1);
}

static void client_dead(client *cl, int lost)
{
    if (cl->state == C_DEAD)
        return;
    enum cstate was = cl->state;
    cl->state = C_DEAD;
    for (int i = 0; i < 2; i++) {
        conn_close(&cl->c[i]);
        cl->c[i].busy = 0;
    }
    cl->pending.len = 0;
    if (was == C_READY) {
        n_ready--;
        if (lost)
            cnt.dead++;
        on_lost(cl);
    } else {
        if (was == C_HANDSHAKE || was == C_CONNECTING)
            setup_active--;
        cnt.setup_failed++;
        n_resolved++;
    }
}

/* ------------------------------------------------------------------ HTTP */

typedef struct http_res {
    int status;
    int close;              /* the server closes the connection after it */
    size_t used;            /* bytes of input it took */
    const char *body;
    size_t blen;
} http_res;

/* Value of header line [l, e) if its name is name (with the colon), else NULL. */
static const char *header_value(const char *l, const char *e, const char *name)
{
    size_t n = strlen(name);
    if ((size_t)(e - l) < n || strncasecmp(l, name, n) != 0)
        return NULL;
    l += n;
    while (l < e && (*l == ' ' || *l == '\t'))
        l++;
    return l;
}

/* Parse one response at p[0..n). 1: complete (r filled; a chunked body is
 * decoded into scratch), 0: more bytes needed, -1: malformed. eof: the
 * server closed the connection after these bytes. */
static int http_parse(const char *p, size_t n, int eof, http_res *r, buf *scratch)
{
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end)
        return n > 65536 ? -1 : 0;
    size_t hlen = (size_t)(end - p) + 4;
    if (hlen < 14 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ')
        return -1;
    r->status = atoi(p + 9);
    r->close = p[7] == '0';
    long clen = -1;
    int chunked = 0;
    const char *l = memchr(p, '\n', hlen);
    while (l && ++l < end) {
        const char *e = memchr(l, '\r', (size_t)(end + 2 - l));
        const char *v;
        if (!e)
            break;
        if ((v = header_value(l, e, "content-length:")))
            clen = strtol(v, NULL, 10);
        else if ((v = header_value(l, e, "transfer-encoding:")))
            chunked = memmem(v, (size_t)(e - v), "chunked", 7) != NULL;
        else if ((v = header_value(l, e, "connection:"))) {
            if (strncasecmp(v, "close", 5) == 0)
                r->close = 1;
            else if (strncasecmp(v, "keep-alive", 10) == 0)
                r->close = 0;
        }
        l = memchr(e, '\n', (size_t)(end + 2 - e));
    }
    const char *b = p + hlen;
    size_t avail = n - hlen;
    if (r->status / 100 == 1 || r->status == 204 || r->status == 304) {
        r->body = b;
        r->blen = 0;
        r->used = hlen;
    } else if (chunked) {
        scratch->len = 0;
        size_t off = 0;
        for (;;) {
            const char *crlf = memmem(b + off, avail - off, "\r\n", 2);
            if (!crlf)
                return avail - off > 64 ? -1 : 0;
            char *num_end;
            unsigned long size = strtoul(b + off, &num_end, 16);
            if (num_end == b + off)
                return -1;
            off = (size_t)(crlf - b) + 2;
            if (size == 0) {
                /* trailers (none expected) up to an empty line */
                for (;;) {
                    const char *t = memmem(b + off, avail - off, "\r\n", 2);
                    if (!t)
                        return 0;
                    size_t tl = (size_t)(t - (b + off));
                    off += tl + 2;
                    if (tl == 0)
                        break;
                }
                break;
            }
            if (avail - off < size + 2)
                return 0;
            buf_add(scratch, b + off, size);
            off += size + 2;
        }
        r->body = scratch->p ? scratch->p : "";
        r->blen = scratch->len;
        r->used = hlen + off;
    } else if (clen >= 0) {
        if (avail < (size_t)clen)
            return 0;
        r->body = b;
        r->blen = (size_t)clen;
        r->used = hlen + (size_t)clen;
    } else {
        /* no framing: the body ends with the connection */
        if (!eof)
            return 0;
        r->body = b;
        r->blen = avail;
        r->used = n;
        r->close = 1;
    }
    return 1;
}

static void request_get(client *cl, int handshake)
{
    conn *c = &cl->c[R_GET];
    c->out.len = 0;
    if (handshake)
        buf_printf(&c->out, "GET %s?EIO=4&transport=polling HTTP/1.1\r\nHost: %s\r\n\r\n",
                   opt.path, opt.host);
    else
        buf_printf(&c->out, "GET %s?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: %s\r\n\r\n",
                   opt.path, cl->sid, opt.host);
    c->retried = 0;
    conn_request(c);
}

/* Send what is pending in one POST (when none is out). */
static void post_flush(client *cl)
{
    conn *c = &cl->c[R_POST];
    if (c->busy || !cl->pending.len || cl->state == C_DEAD)
        return;
    c->out.len = 0;
    buf_printf(&c->out,
               "POST %s?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: %s\r\n"
               "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: %zu\r\n\r\n",
               opt.path, cl->sid, opt.host, cl->pending.len);
    buf_add(&c->out, cl->pending.p, cl->pending.len);
    cl->pending.len = 0;
    c->retried = 0;
    c->sent_at = now_ms();
    conn_request(c);
}

static void ws_send(client *cl, int opcode, const char *data, size_t len);

/* Send one Engine.IO packet. */
static void send_packet(client *cl, const char *data, size_t len)
{
    if (cl->state == C_DEAD)
        return;
    if (cl->ws) {
        ws_send(cl, 0x1, data, len);
        return;
    }
    if (cl->pending.len)
        buf_add(&cl->pending, "\x1e", 1);
    buf_add(&cl->pending, data, len);
    post_flush(cl);
}

static void send_str(client *cl, const char *s)
{
    send_packet(cl, s, strlen(s));
}

/* ------------------------------------------------------------------ Engine.IO, Socket.IO */

static void become_ready(client *cl)
{
    cl->state = C_READY;
    setup_active--;
    n_ready++;
    n_resolved++;
    on_connected(cl);
}

/* The handshake: 0{"sid":"…",…}. */
static int take_sid(client *cl, const char *p, size_t n)
{
    const char *s = memmem(p, n, "\"sid\":\"", 7);
    if (!s)
        return -1;
    s += 7;
    const char *e = memchr(s, '"', n - (size_t)(s - p));
    if (!e || e == s || (size_t)(e - s) >= sizeof cl->sid)
        return -1;
    memcpy(cl->sid, s, (size_t)(e - s));
    cl->sid[e - s] = '\0';
    return 0;
}

static void sio_packet(client *cl, const char *p, size_t n)
{
    if (n == 0) {
        cnt.parse_err++;
        return;
    }
    switch (p[0]) {
    case '0': /* CONNECT to "/" */
        if (cl->state == C_CONNECTING)
            become_ready(cl);
        break;
    case '2': /* EVENT */
        on_event(cl, p + 1, n - 1);
        break;
    case '3': { /* ACK id[...] */
        size_t i = 1;
        unsigned long id = 0;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            id = id * 10 + (unsigned long)(p[i++] - '0');
        on_ack(cl, id, p + i, n - i);
        break;
    }
    case '1': /* DISCONNECT */
    case '4': /* CONNECT_ERROR */
        cnt.sio_error++;
        show("client %d: Socket.IO %s: %.*s", cl->idx, p[0] == '1' ? "DISCONNECT" : "CONNECT_ERROR",
             (int)(n > 200 ? 200 : n), p);
        client_dead(cl, 1);
        break;
    default:
        break; /* binary events: not used here */
    }
}

static void eio_packet(client *cl, const char *p, size_t n)
{
    if (n == 0 || cl->state == C_DEAD)
        return;
    switch (p[0]) {
    case '0': /* open (WebSocket: the first message) */
        if (cl->state == C_HANDSHAKE && take_sid(cl, p, n) == 0) {
            cl->state = C_CONNECTING;
            send_str(cl, "40");
        }
        break;
    case '1':
        cnt.eio_close++;
        show("client %d: the server closed the session (Engine.IO close)%s", cl->idx,
             cl->c[R_POST].busy ? "; its last POST is still unanswered" : "");
        client_dead(cl, 1);
        break;
    case '2':
        cnt.pongs++;
        send_str(cl, "3");
        break;
    case '4':
        sio_packet(cl, p + 1, n - 1);
        break;
    default:
        break; /* pong, noop */
    }
}

static void eio_payload(client *cl, const char *p, size_t n)
{
    while (n && cl->state != C_DEAD) {
        const char *sep = memchr(p, '\x1e', n);
        size_t len = sep ? (size_t)(sep - p) : n;
        eio_packet(cl, p, len);
        if (!sep)
            break;
        p += len + 1;
        n -= len + 1;
    }
}

static void http_error(client *cl, conn *c, int status, const char *body, size_t blen)
{
    if (status == 400)
        cnt.http_400++;
    else if (status / 100 == 4)
        cnt.http_4xx++;
    else if (status / 100 == 5)
        cnt.http_5xx++;
    else
        cnt.http_other++;
    show("client %d: %s: HTTP %d %.*s", cl->idx, c->role == R_GET ? "GET" : c->role == R_POST ? "POST" : "upgrade",
         status, (int)(blen > 200 ? 200 : blen), body);
    client_dead(cl, 1);
}

static void on_response(conn *c, int status, const char *body, size_t blen)
{
    client *cl = c->cl;
    c->busy = 0;
    c->reused = 1;
    c->out.len = c->out_off = 0;
    if (cl->state == C_DEAD)
        return;
    if (c->role == R_WS) {
        if (status != 101) {
            http_error(cl, c, status, body, blen);
            return;
        }
        c->ws_open = 1;
        return;
    }
    if (status != 200) {
        http_error(cl, c, status, body, blen);
        return;
    }
    if (c->role == R_POST) {
        on_posted(c);
        post_flush(cl);
        return;
    }
    if (cl->state == C_HANDSHAKE) {
        if (blen == 0 || body[0] != '0' || take_sid(cl, body, blen) < 0) {
            cnt.parse_err++;
            show("client %d: bad handshake: %.*s", cl->idx, (int)(blen > 200 ? 200 : blen), body);
            client_dead(cl, 0);
            return;
        }
        cl->state = C_CONNECTING;
        send_str(cl, "40");
    } else {
        eio_payload(cl, body, blen);
    }
    if (cl->state != C_DEAD)
        request_get(cl, 0);
}

/* ------------------------------------------------------------------ WebSocket */

static uint32_t rng_state = 2463534242u;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* Queue one masked frame (client frames must be masked, RFC 6455 5.3). */
static void ws_send(client *cl, int opcode, const char *data, size_t len)
{
    conn *c = &cl->c[0];
    unsigned char h[14];
    size_t hl = 0;
    h[hl++] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        h[hl++] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        h[hl++] = 0x80 | 126;
        h[hl++] = (unsigned char)(len >> 8);
        h[hl++] = (unsigned char)len;
    } else {
        h[hl++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            h[hl++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    uint32_t m = rng();
    unsigned char mask[4] = {(unsigned char)m, (unsigned char)(m >> 8), (unsigned char)(m >> 16),
                             (unsigned char)(m >> 24)};
    memcpy(h + hl, mask, 4);
    hl += 4;
    buf_add(&c->out, h, hl);
    buf_reserve(&c->out, len);
    char *dst = c->out.p + c->out.len;
    for (size_t i = 0; i < len; i++)
        dst[i] = (char)(data[i] ^ mask[i & 3]);
    c->out.len += len;
    if (c->fd >= 0 && !c->connecting && conn_flush(c) < 0)
        conn_broken(c, strerror(errno));
}

/* Parse the frames in c->in. */
static void ws_input(conn *c)
{
    client *cl = c->cl;
    size_t off = 0;
    while (c->fd >= 0 && cl->state != C_DEAD) {
        const unsigned char *p = (const unsigned char *)c->in.p + off;
        size_t n = c->in.len - off;
        if (n < 2)
            break;
        int fin = p[0] & 0x80, op = p[0] & 0x0f, masked = p[1] & 0x80;
        uint64_t len = p[1] & 0x7f;
        size_t hl = 2;
        if (len == 126) {
            if (n < 4)
                break;
            len = (uint64_t)p[2] << 8 | p[3];
            hl = 4;
        } else if (len == 127) {
            if (n < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | p[2 + i];
            hl = 10;
        }
        if (masked)
            hl += 4;
        if (len > (1u << 26)) {
            cnt.parse_err++;
            conn_broken(c, "frame too large");
            return;
        }
        if (n < hl + len)
            break;
        char *data = (char *)c->in.p + off + hl;
        if (masked)
            for (uint64_t i = 0; i < len; i++)
                data[i] ^= (char)p[hl - 4 + (i & 3)];
        off += hl + (size_t)len;
        switch (op) {
        case 0x0: case 0x1: case 0x2:
            if (op != 0)
                c->frag.len = 0;
            buf_add(&c->frag, data, (size_t)len);
            if (fin) {
                /* copy: the handler may send, or end the client */
                buf msg = {0};
                buf_add(&msg, c->frag.p, c->frag.len);
                c->frag.len = 0;
                if (op != 0x2)
                    eio_packet(cl, msg.p, msg.len);
                buf_free(&msg);
            }
            break;
        case 0x8:
            cnt.eio_close++;
            show("client %d: WebSocket closed by the server (code %d)", cl->idx,
                 len >= 2 ? ((unsigned char)data[0] << 8 | (unsigned char)data[1]) : 0);
            client_dead(cl, 1);
            return;
        case 0x9:
            ws_send(cl, 0xA, data, (size_t)len);
            break;
        default:
            break;
        }
    }
    if (c->fd >= 0)
        buf_consume(&c->in, off);
}

static void request_ws(client *cl)
{
    conn *c = &cl->c[0];
    c->out.len = 0;
    /* the key is the RFC's sample nonce: the server only hashes it */
    buf_printf(&c->out,
               "GET %s?EIO=4&transport=websocket HTTP/1.1\r\nHost: %s\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
               opt.path, opt.host);
    c->retried = 0;
    conn_request(c);
}

/* ------------------------------------------------------------------ the loop */

static buf scratch;         /* decoded chunked bodies */

static void conn_input(conn *c, int eof)
{
    uint32_t gen = c->gen; /* eof is about this connection, not one opened since */
    while (c->fd >= 0 && c->gen == gen && c->in.len) {
        if (c->ws_open) {
            ws_input(c);
            break;
        }
        http_res r;
        int rc = http_parse(c->in.p, c->in.len, eof, &r, &scratch);
        if (rc == 0)
            break;
        if (rc < 0) {
            cnt.parse_err++;
            show("client %d: malformed HTTP response: %.*s", c->cl->idx,
                 (int)(c->in.len > 200 ? 200 : c->in.len), c->in.p);
            c->busy = 0;
            conn_close(c);
            client_dead(c->cl, 1);
            return;
        }
        /* copy the body out: handling it may send on this connection */
        buf body = {0};
        buf_add(&body, r.body, r.blen);
        buf_consume(&c->in, r.used);
        int status = r.status;
        if (r.close && status != 101)
            conn_close(c); /* whatever follows a closing response is dropped */
        if (!c->busy) {
            cnt.parse_err++;   /* a response nobody asked for */
        } else {
            on_response(c, status, body.p ? body.p : "", body.len);
        }
        buf_free(&body);
    }
    if (eof && c->fd >= 0 && c->gen == gen)
        conn_broken(c, c->busy ? "closed by the server" : "closed");
}

static void conn_event(conn *c, uint32_t ev)
{
    if (c->connecting) {
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            c->reused = 0;
            conn_broken(c, strerror(err));
            return;
        }
        c->connecting = 0;
    }
    if ((ev & EPOLLOUT) && conn_flush(c) < 0) {
        conn_broken(c, strerror(errno));
        return;
    }
    if (!(ev & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)))
        return;
    int eof = 0;
    for (;;) {
        buf_reserve(&c->in, 65536);
        ssize_t n = recv(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len - 1, 0);
        if (n > 0) {
            c->in.len += (size_t)n;
            c->in.p[c->in.len] = '\0';
            c->got += (int)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            eof = 1;
        break;
    }
    conn_input(c, eof);
}

static void client_start(client *cl)
{
    cl->state = C_HANDSHAKE;
    setup_active++;
    if (cl->ws)
        request_ws(cl);
    else
        request_get(cl, 1);
}

/* Start clients while fewer than --batch are setting up. */
static void pace(void)
{
    while (next_start < nclients && setup_active < opt.batch)
        client_start(&clients[next_start++]);
}

static int done;            /* the scenario has finished */
static double wake_at;      /* the scenario's next timer (0: none) */

static void tick(double now);

static void loop(void)
{
    struct epoll_event evs[512];
    while (!done) {
        double now = now_ms();
        pace();
        tick(now);
        if (done)
            break;
        int timeout = 100;
        if (wake_at > 0) {
            double d = wake_at - now_ms();
            timeout = d <= 0 ? 0 : d < 100 ? (int)d + 1 : 100;
        }
        int n = epoll_wait(ep, evs, (int)(sizeof evs / sizeof *evs), timeout);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            uint32_t id = (uint32_t)evs[i].data.u64, gen = (uint32_t)(evs[i].data.u64 >> 32);
            conn *c = conns[id];
            if (c->fd < 0 || c->gen != gen)
                continue; /* closed since */
            conn_event(c, evs[i].events);
        }
    }
}

/* ------------------------------------------------------------------ scenarios */

static double t_setup;      /* when the clients started connecting */
static double t_start;      /* echo: when the loop began; others: the window */
static double t_measure;    /* echo: end of the warm-up */
static double t_end;        /* end of the measured window */
static double t_setup_done; /* when they were (the clients' set-up time) */
static int phase;           /* 0 setting up, 1 warm-up/running, 2 draining */
static int said_ready;
static samples lat;         /* echo, emit: latencies (ms) */

static void ready(void)
{
    if (said_ready)
        return;
    said_ready = 1;
    printf("ready\n");
    fflush(stdout);
}

static void print_errors(void)
{
    printf(" setup_s=%.3f", (t_setup_done - t_setup) / 1000);
    printf(" http400=%ld http4xx=%ld http5xx=%ld http_other=%ld conn_err=%ld retries=%ld"
           " parse_err=%ld eio_close=%ld sio_error=%ld setup_failed=%ld dead=%ld bad_ack=%ld"
           " pongs=%ld\n",
           cnt.http_400, cnt.http_4xx, cnt.http_5xx, cnt.http_other, cnt.conn_err, cnt.retries,
           cnt.parse_err, cnt.eio_close, cnt.sio_error, cnt.setup_failed, cnt.dead, cnt.bad_ack,
           cnt.pongs);
    fflush(stdout);
}

/* ---- echo */

static long echo_events;

static void echo_emit(client *cl)
{
    char pkt[96];
    cl->ack_id++;
    if (cl->ack_id == 0)
        cl->ack_id = 1;
    int n = snprintf(pkt, sizeof pkt, "42%u[\"message-with-ack\",\"hello\",%u]", cl->ack_id, cl->ack_id);
    cl->sent = now_ms();
    send_packet(cl, pkt, (size_t)n);
}

/* ---- broadcast */

static client *sender;
static int n_joined;
static int b_seq;           /* broadcasts emitted */
static double b_next;       /* when the next one is due */
static double *b_sent, *b_first, *b_last;
static int *b_recv;
static long b_dups, b_gaps;

static void join_room(client *cl)
{
    char pkt[160];
    cl->ack_id++;
    int n = snprintf(pkt, sizeof pkt, "42%u[\"join\",\"%s\"]", cl->ack_id, opt.room);
    send_packet(cl, pkt, (size_t)n);
}

/* ---- emit */

static int e_run;           /* runs done */
static double e_due;        /* when the next CLI starts (0: not scheduled) */
static double e_started;    /* when the running one started */
static pid_t e_pid;
static long e_lost, e_failed;

static void emit_schedule(double now)
{
    e_due = now + 20;   /* the GET re-sent after the previous event is held by then */
}

static void emit_reap(void)
{
    if (e_pid <= 0)
        return;
    int st;
    if (waitpid(e_pid, &st, 0) == e_pid && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
        e_failed++;
    e_pid = 0;
}

static void emit_start(void)
{
    char n[32], to[128];
    snprintf(n, sizeof n, "%d", e_run);
    snprintf(to, sizeof to, "%s", opt.room);
    char *argv[] = {(char *)opt.siogate, "--conf", (char *)opt.conf, "emit", "--to", to,
                    "tick", n, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    e_started = now_ms();
    int rc = posix_spawn(&e_pid, opt.siogate, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        die("%s: %s", opt.siogate, strerror(rc));
    e_due = 0;
}

/* ---- hooks */

static void on_connected(client *cl)
{
    if (opt.mode == M_BROADCAST && !cl->sender && !cl->bystander)
        join_room(cl);
    else if (opt.mode == M_EMIT)
        join_room(cl);
    else if (opt.mode == M_ECHO && phase == 1)
        echo_emit(cl); /* late: joins the running loop */
}

/* A number after the event name: ["tick",N]. */
static long tick_arg(const char *p, size_t n)
{
    static const char want[] = "[\"tick\",";
    if (n < sizeof want || memcmp(p, want, sizeof want - 1) != 0)
        return -1;
    return strtol(p + sizeof want - 1, NULL, 10);
}

static void on_event(client *cl, const char *p, size_t n)
{
    long seq = tick_arg(p, n);
    if (seq < 0)
        return;
    double now = now_ms();
    if (opt.mode == M_BROADCAST) {
        if (seq >= opt.count) {
            cnt.parse_err++;
            return;
        }
        if (seq <= cl->last_tick) {
            b_dups++;
            return;
        }
        if (seq > cl->last_tick + 1)
            b_gaps += seq - cl->last_tick - 1;
        cl->last_tick = seq;
        if (b_recv[seq]++ == 0)
            b_first[seq] = now;
        b_last[seq] = now;
        samples_add(&lat, now - b_sent[seq]); /* every delivery */
    } else if (opt.mode == M_EMIT) {
        if (seq != e_run || e_started == 0)
            return;
        samples_add(&lat, now - e_started);
        e_started = 0;
        emit_reap();
        e_run++;
        emit_schedule(now);
    }
}

static void on_ack(client *cl, unsigned long id, const char *p, size_t n)
{
    (void)p, (void)n;
    if (id == 0 || id != cl->ack_id) {
        cnt.bad_ack++;
        return;
    }
    double now = now_ms();
    if (opt.mode == M_ECHO) {
        if (now >= t_measure && now < t_end) {
            echo_events++;
            samples_add(&lat, now - cl->sent);
        }
        if (now < t_end)
            echo_emit(cl);
        else
            cl->ack_id = 0;
    } else if (!cl->joined) {
        cl->joined = 1;
        n_joined++;
        if (opt.mode == M_EMIT)
            emit_schedule(now);
    }
}

static void on_lost(client *cl)
{
    if (cl->joined) {
        cl->joined = 0;
        n_joined--;
    }
}

/* Everything set up (connected or given up)? */
static int setup_done(double now)
{
    if (n_resolved >= nclients) {
        if (t_setup_done == 0)
            t_setup_done = now;
        return 1;
    }
    if (now - t_setup < opt.setup_timeout * 1000)
        return 0;
    /* give up on the stragglers */
    for (int i = 0; i < nclients; i++)
        if (clients[i].state != C_READY && clients[i].state != C_DEAD) {
            show("client %d: not connected after %.0f s", i, opt.setup_timeout);
            client_dead(&clients[i], 0);
        }
    next_start = nclients;
    t_setup_done = now;
    return 1;
}

static void finish_echo(void)
{
    samples_sort(&lat);
    double secs = (t_end - t_measure) / 1000;
    printf("events=%ld seconds=%.3f rate=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f"
           " clients=%d connected=%d",
           echo_events, secs, (double)echo_events / secs, pct(&lat, 50), pct(&lat, 90),
           pct(&lat, 99), lat.n ? lat.v[lat.n - 1] : 0.0, nclients, n_ready);
    print_errors();
}

static void finish_broadcast(void)
{
    samples last = {0}, first = {0};
    long delivered = 0, complete = 0;
    int members = n_joined;
    for (int s = 0; s < b_seq; s++) {
        delivered += b_recv[s];
        if (b_recv[s] > 0)
            samples_add(&first, b_first[s] - b_sent[s]);
        if (b_recv[s] >= members && members > 0) {
            complete++;
            samples_add(&last, b_last[s] - b_sent[s]);
        }
    }
    samples_sort(&last);
    samples_sort(&first);
    samples_sort(&lat);
    printf("last_p50_ms=%.3f last_p90_ms=%.3f last_max_ms=%.3f first_p50_ms=%.3f"
           " all_p50_ms=%.3f sent=%d complete=%ld delivered=%ld expected=%ld members=%d"
           " clients=%d dups=%ld gaps=%ld",
           pct(&last, 50), pct(&last, 90), last.n ? last.v[last.n - 1] : 0.0, pct(&first, 50),
           pct(&lat, 50), b_seq, complete, delivered, (long)b_seq * members, members,
           nclients - 1, b_dups, b_gaps);
    print_errors();
    free(last.v);
    free(first.v);
}

static samples pong_rtt;    /* idle: the pongs' round trips in the window (ms) */

/* A POST was answered: in idle, a pong (nothing else is posted). */
static void on_posted(conn *c)
{
    if (opt.mode == M_IDLE && phase == 1)
        samples_add(&pong_rtt, now_ms() - c->sent_at);
}

static void finish_idle(void)
{
    int held = 0, posting = 0, post_connecting = 0;
    double oldest = 0, now = now_ms();
    for (int i = 0; i < nclients; i++) {
        const client *cl = &clients[i];
        if (cl->state != C_READY)
            continue;
        held += cl->c[R_GET].busy;
        posting += cl->c[R_POST].busy;
        post_connecting += cl->c[R_POST].busy && cl->c[R_POST].connecting;
        if (cl->c[R_POST].busy && now - cl->c[R_POST].sent_at > oldest)
            oldest = now - cl->c[R_POST].sent_at;
    }
    /* posting: POSTs (pongs) unanswered at the end, post_connecting: of
     * which the server has not even accepted the connection yet,
     * post_oldest_ms: the longest any of them has waited; pong_*: the round
     * trips of the pongs answered in the window */
    samples_sort(&pong_rtt);
    printf("held=%d clients=%d connected=%d seconds=%.3f posting=%d post_connecting=%d"
           " post_oldest_ms=%.3f pong_p50_ms=%.3f pong_p99_ms=%.3f pong_max_ms=%.3f", held,
           nclients, n_ready, (t_end - t_start) / 1000, posting, post_connecting, oldest,
           pct(&pong_rtt, 50), pct(&pong_rtt, 99), pong_rtt.n ? pong_rtt.v[pong_rtt.n - 1] : 0);
    free(pong_rtt.v);
    print_errors();
}

static void finish_emit(void)
{
    samples_sort(&lat);
    printf("runs=%zu p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f lost=%ld cli_failed=%ld",
           lat.n, pct(&lat, 50), pct(&lat, 90), pct(&lat, 99), lat.n ? lat.v[lat.n - 1] : 0.0,
           e_lost, e_failed);
    print_errors();
}

static void tick(double now)
{
    wake_at = 0;
    switch (opt.mode) {
    case M_ECHO:
        if (phase == 0) {
            if (!setup_done(now))
                return;
            if (!n_ready)
                die("no client connected");
            phase = 1;
            t_start = now;
            t_measure = now + opt.warmup * 1000;
            t_end = t_measure + opt.seconds * 1000;
            for (int i = 0; i < nclients; i++)
                if (clients[i].state == C_READY)
                    echo_emit(&clients[i]);
        }
        if (now >= t_measure)
            ready();
        if (now >= t_end) {
            finish_echo();
            done = 1;
            return;
        }
        wake_at = now < t_measure ? t_measure : t_end;
        return;
    case M_BROADCAST:
        if (phase == 0) {
            if (!setup_done(now) || sender->state == C_HANDSHAKE || sender->state == C_CONNECTING)
                return;
            /* every connected member has joined (or is gone) */
            int pending = 0;
            for (int i = 0; i < nclients; i++)
                pending += clients[i].state == C_READY && !clients[i].sender &&
                           !clients[i].bystander && !clients[i].joined;
            if (pending) {
                if (now - t_setup < opt.setup_timeout * 1000)
                    return;
                show("%d clients did not get their join acknowledged", pending);
            }
            if (sender->state != C_READY || !n_joined)
                die("no sender or no member connected");
            phase = 1;
            ready();
            t_start = b_next = now;
        }
        if (phase == 1) {
            while (b_seq < opt.count && now >= b_next) {
                char pkt[192];
                int n = snprintf(pkt, sizeof pkt, "42[\"broadcast\",\"%s\",%d]", opt.room, b_seq);
                b_sent[b_seq++] = now;
                send_packet(sender, pkt, (size_t)n);
                b_next += opt.interval_ms;
            }
            if (b_seq < opt.count) {
                wake_at = b_next;
                return;
            }
            phase = 2;
            t_end = now + 10000; /* waiting for stragglers: at most 10 s */
        }
        {
            int all = 1;
            for (int s = 0; s < b_seq && all; s++)
                all = b_recv[s] >= n_joined;
            if (all || now >= t_end || sender->state == C_DEAD) {
                finish_broadcast();
                done = 1;
                return;
            }
        }
        wake_at = t_end;
        return;
    case M_IDLE:
        if (phase == 0) {
            if (!setup_done(now))
                return;
            if (!n_ready)
                die("no client connected");
            phase = 1;
            int held = 0;
            for (int i = 0; i < nclients; i++)
                held += clients[i].state == C_READY;
            printf("ready held=%d\n", held);
            fflush(stdout);
            said_ready = 1;
            t_start = now;
            t_end = now + opt.seconds * 1000;
        }
        if (now >= t_end) {
            finish_idle();
            done = 1;
            return;
        }
        wake_at = t_end;
        return;
    case M_EMIT:
        if (phase == 0) {
            if (!setup_done(now) || (clients[0].state == C_READY && !clients[0].joined))
                return;
            if (!n_joined)
                die("the client did not connect or join");
            phase = 1;
            ready();
        }
        if (e_run >= opt.runs || clients[0].state == C_DEAD) {
            emit_reap();
            finish_emit();
            done = 1;
            return;
        }
        if (e_started > 0 && now - e_started > 5000) {
            /* no event within 5 s: count it lost, go on */
            show("emit run %d: no event within 5 s", e_run);
            e_lost++;
            e_started = 0;
            emit_reap();
            e_run++;
            emit_schedule(now);
        }
        if (e_due > 0 && now >= e_due)
            emit_start();
        wake_at = e_due > 0 ? e_due : e_started + 5000;
        return;
    }
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *f)
{
    fputs("usage: sgload echo      --url URL [--transport polling|websocket] [--clients 50]\n"
          "                        [--seconds 10] [--warmup 2]\n"
          "       sgload broadcast --url URL [--clients 1000] [--interval-ms 200] [--count 50]\n"
          "                        [--sender polling|websocket] [--bystanders 0]\n"
          "       sgload idle      --url URL [--clients 5000] [--seconds 10]\n"
          "       sgload emit      --url URL --siogate PATH --conf FILE [--runs 100]\n"
          "common: [--path /socket.io/] [--room bench] [--batch 64] [--setup-timeout 60] [--quiet]\n"
          "URL: http://127.x.x.x:PORT or http://localhost:PORT (loopback only)\n",
          f);
}

static void bad(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void bad(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("sgload: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    usage(stderr);
    exit(2);
}

static double num(const char *name, const char *v, double min, double max)
{
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end || !(d >= min && d <= max))
        bad("%s: '%s' is not a number in [%g, %g]", name, v, min, max);
    return d;
}

/* http://127.x.x.x:PORT[/] or http://localhost:PORT[/]: loopback only. */
static void parse_url(const char *url)
{
    char host[64];
    int port = 0, n = 0;
    if (sscanf(url, "http://%63[^:/]:%d%n", host, &port, &n) != 2 || port < 1 || port > 65535 ||
        (url[n] && strcmp(url + n, "/") != 0))
        bad("--url %s: expected http://127.0.0.1:PORT", url);
    struct in_addr a;
    if (strcmp(host, "localhost") == 0)
        a.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &a) != 1 || (ntohl(a.s_addr) >> 24) != 127)
        bad("--url %s: loopback addresses only (127.x.x.x, localhost)", url);
    opt.addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = a};
    snprintf(opt.host, sizeof opt.host, "%s:%d", host, port);
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *m = argv[1];
    if (!strcmp(m, "echo"))
        opt.mode = M_ECHO;
    else if (!strcmp(m, "broadcast"))
        opt.mode = M_BROADCAST;
    else if (!strcmp(m, "idle"))
        opt.mode = M_IDLE;
    else if (!strcmp(m, "emit"))
        opt.mode = M_EMIT;
    else
        bad("unknown mode '%s'", m);
    const char *url = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--quiet")) {
            opt.quiet = 1;
            continue;
        }
        if (i + 1 >= argc)
            bad("%s needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--url"))
            url = v;
        else if (!strcmp(a, "--path"))
            opt.path = v;
        else if (!strcmp(a, "--transport") || !strcmp(a, "--sender")) {
            int ws = !strcmp(v, "websocket");
            if (!ws && strcmp(v, "polling"))
                bad("%s: polling or websocket", a);
            if (!strcmp(a, "--sender"))
                opt.sender_ws = ws;
            else
                opt.websocket = ws;
        } else if (!strcmp(a, "--clients"))
            opt.clients = (int)num(a, v, 1, 100000);
        else if (!strcmp(a, "--bystanders"))
            opt.bystanders = (int)num(a, v, 0, 100000);
        else if (!strcmp(a, "--seconds"))
            opt.seconds = num(a, v, 0.1, 3600);
        else if (!strcmp(a, "--warmup"))
            opt.warmup = num(a, v, 0, 600);
        else if (!strcmp(a, "--interval-ms"))
            opt.interval_ms = (int)num(a, v, 1, 60000);
        else if (!strcmp(a, "--count"))
            opt.count = (int)num(a, v, 1, 100000);
        else if (!strcmp(a, "--runs"))
            opt.runs = (int)num(a, v, 1, 100000);
        else if (!strcmp(a, "--batch"))
            opt.batch = (int)num(a, v, 1, 10000);
        else if (!strcmp(a, "--setup-timeout"))
            opt.setup_timeout = num(a, v, 1, 3600);
        else if (!strcmp(a, "--room"))
            opt.room = v;
        else if (!strcmp(a, "--siogate"))
            opt.siogate = v;
        else if (!strcmp(a, "--conf"))
            opt.conf = v;
        else
            bad("unknown option %s", a);
    }
    if (!url)
        bad("--url is required");
    parse_url(url);
    size_t pl = strlen(opt.path);
    if (pl < 2 || opt.path[0] != '/' || opt.path[pl - 1] != '/' || strpbrk(opt.path, " ?#\r\n"))
        bad("--path %s: begins and ends with '/'", opt.path);
    if (strpbrk(opt.room, "\"\\") || strlen(opt.room) > 64)
        bad("--room: at most 64 characters, no quotes or backslashes");
    if (opt.mode == M_EMIT && (!opt.siogate || !opt.conf))
        bad("emit needs --siogate PATH and --conf FILE");
    if (opt.clients < 0)
        opt.clients = opt.mode == M_ECHO ? 50 : opt.mode == M_BROADCAST ? 1000 : opt.mode == M_IDLE ? 5000 : 1;
    if (opt.mode == M_EMIT)
        opt.clients = 1;

    if (opt.mode != M_BROADCAST)
        opt.bystanders = 0;
    nclients = opt.clients + (opt.mode == M_BROADCAST) + opt.bystanders;
    /* two descriptors per polling client, and some room */
    struct rlimit rl;
    rlim_t need = (rlim_t)nclients * 2 + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
        if (rl.rlim_cur < need) {
            rl.rlim_max = rl.rlim_cur = need; /* as root this may work */
        }
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            die("%d clients need %lu descriptors: %s (ulimit -n)", nclients, (unsigned long)need,
                strerror(errno));
    }
    signal(SIGPIPE, SIG_IGN);
    rng_state ^= (uint32_t)getpid() * 2654435761u;

    ep = epoll_create1(EPOLL_CLOEXEC);
    clients = calloc((size_t)nclients, sizeof *clients);
    conns = calloc((size_t)nclients * 2, sizeof *conns);
    if (ep < 0 || !clients || !conns)
        die("setup: %s", strerror(errno));
    for (int i = 0; i < nclients; i++) {
        client *cl = &clients[i];
        cl->idx = i;
        cl->last_tick = -1;
        cl->ws = opt.websocket;
        if (opt.mode == M_BROADCAST && i == 0) {
            /* the sender first: it is ready by the time the members are */
            cl->sender = 1;
            cl->ws = opt.sender_ws;
            sender = cl;
        } else if (i > opt.clients) {
            cl->bystander = 1; /* the last ones */
            cl->ws = 0;
        }
        for (int k = 0; k < 2; k++) {
            conn *c = &cl->c[k];
            c->fd = -1;
            c->id = (uint32_t)(i * 2 + k);
            c->role = cl->ws ? R_WS : (enum role)k;
            c->cl = cl;
            conns[c->id] = c;
        }
    }
    if (opt.mode == M_BROADCAST) {
        b_sent = calloc((size_t)opt.count, sizeof *b_sent);
        b_first = calloc((size_t)opt.count, sizeof *b_first);
        b_last = calloc((size_t)opt.count, sizeof *b_last);
        b_recv = calloc((size_t)opt.count, sizeof *b_recv);
        if (!b_sent || !b_first || !b_last || !b_recv)
            die("out of memory");
    }
    t_setup = now_ms();
    loop();

    /* the servers see the connections closed when we exit */
    for (int i = 0; i < nclients; i++) {
        for (int k = 0; k < 2; k++) {
            conn_close(&clients[i].c[k]);
            buf_free(&clients[i].c[k].in);
            buf_free(&clients[i].c[k].out);
            buf_free(&clients[i].c[k].frag);
        }
        buf_free(&clients[i].pending);
    }
    free(clients);
    free(conns);
    free(lat.v);
    free(b_sent);
    free(b_first);
    free(b_last);
    free(b_recv);
    buf_free(&scratch);
    close(ep);
    return 0;
}
