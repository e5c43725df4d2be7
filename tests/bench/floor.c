/* floor.c - the floor under siogate-fcgi: a FastCGI backend that answers
 * tests/bench/compare's polling scenarios from memory and does nothing
 * else, so that what a run of it costs is (almost all) the web server's.
 *
 *   floor --conf FILE --listen unix:PATH     (FILE is ignored)
 *
 * A measuring instrument, not a server: compare's floor-nginx and
 * floor-lighttpd targets run it through contrib/stack in the place of
 * siogate-fcgi (polling only, no siogate-wsd), with the same web-server
 * configuration, to show how far below siogate a backend could take the
 * polling echo and the broadcast on the one core it shares with its web
 * server. It speaks just enough Engine.IO v4 polling and Socket.IO for
 * sgload and nothing else: one process, sessions in an array (sid "f" and
 * its index), no store, no durability, no pings, no JSON parser (the
 * packets sgload sends are taken apart by position), no limits on what a
 * session queues. Never use it for anything but a benchmark.
 *
 * Namespace "/" only, events as tests/bench/bench_plugin.c's:
 *   "message-with-ack" ...args   acknowledged with the same arguments;
 *   "join" room                  joins (one room per session), acked;
 *   "broadcast" room, payload    "tick" payload to every member, acked
 *                                when asked.
 * What a request queues for a session with a GET held is answered at the
 * end of that request, each held GET once (a broadcast: one pass). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "daemon.h"
#include "fcgi.h"
#include "util.h"

#define MAX_SESSIONS 20000
#define MAX_EVENTS 256
#define READ_CHUNK 16384
#define RS "\x1e"

struct conn {
    int fd;                     /* -1: closed, freed after this turn */
    sg_fcgi_parser p;
    sg_buf in, out;
    size_t out_off;
    int held_by;                /* its request is a GET held by this session, or -1 */
    bool watched;               /* in the epoll set */
    bool writing;               /* EPOLLOUT is on */
    bool close_after;
    struct conn *next_dead;
};

struct session {
    bool open;
    sg_buf q;                   /* packets queued, RS-separated */
    struct conn *held;
    bool dirty;                 /* queued for while held: answer after the request */
    char room[64];
};

static struct session sessions[MAX_SESSIONS];
static int nsessions;
static int dirty[MAX_SESSIONS], ndirty;
static int epfd;
static struct conn *dead;       /* closed this turn */
static volatile sig_atomic_t stopping;

static void on_signal(int sig) { (void)sig, stopping = 1; }

static void conn_close(struct conn *c)
{
    if (c->fd < 0)
        return;
    if (c->held_by >= 0 && sessions[c->held_by].held == c)
        sessions[c->held_by].held = NULL;
    close(c->fd);
    c->fd = -1;
    c->next_dead = dead;
    dead = c;
}

static void free_dead(void)
{
    for (struct conn *c = dead, *next; c; c = next) {
        next = c->next_dead;
        sg_fcgi_parser_free(&c->p);
        sg_buf_free(&c->in);
        sg_buf_free(&c->out);
        free(c);
    }
    dead = NULL;
}

/* c in the epoll set, reading and, if out, writing. As siogate-fcgi
 * (parked.c, conn_watch), a connection joins it only when it must wait,
 * so that one answered in the turn it was accepted in (lighttpd's, a
 * connection a request) costs no epoll_ctl. */
static void watch(struct conn *c, bool out)
{
    if (c->watched && c->writing == out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(epfd, c->watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev);
    c->watched = true;
    c->writing = out;
}

/* Write what c has; false when c is gone (closed). */
static bool conn_flush(struct conn *c)
{
    if (c->fd < 0)
        return false;
    int rc = sg_daemon_send(c->fd, c->out.data, c->out.len, &c->out_off);
    if (rc < 0) {
        conn_close(c);
        return false;
    }
    if (rc == 0) {
        sg_buf_reset(&c->out);
        c->out_off = 0;
        if (c->close_after) {
            conn_close(c);
            return false;
        }
    }
    watch(c, rc > 0);
    return true;
}

/* Answer c's request (queued on c->out; written by the caller). */
static void answer(struct conn *c, int status, const char *body, size_t len)
{
    sg_buf resp = SG_BUF_INIT;
    sg_buf_printf(&resp, "Status: %d %s\r\nContent-Type: text/plain; charset=UTF-8\r\n"
                  "Content-Length: %zu\r\n\r\n", status, status == 200 ? "OK" : "Bad Request", len);
    sg_buf_append(&resp, body, len);
    if (!c->p.req.keep_conn)
        c->close_after = true;
    if (sg_fcgi_answer(&c->out, c->p.req.id, resp.data, resp.len) < 0)
        c->close_after = true;
    sg_fcgi_done(&c->p);
    c->held_by = -1;
    sg_buf_free(&resp);
}

static void push(int i, const char *pkt, size_t len)
{
    struct session *s = &sessions[i];
    if (s->q.len)
        sg_buf_puts(&s->q, RS);
    sg_buf_append(&s->q, pkt, len);
    if (s->held && !s->dirty) {
        s->dirty = true;
        dirty[ndirty++] = i;
    }
}

/* The string from p to the next '"' (at most cap - 1 bytes) into out. */
static bool quoted(const char *p, const char *end, char *out, size_t cap)
{
    const char *q = memchr(p, '"', (size_t)(end - p));
    if (!q || (size_t)(q - p) >= cap)
        return false;
    memcpy(out, p, (size_t)(q - p));
    out[q - p] = '\0';
    return true;
}

/* One Socket.IO packet of session i, as sgload sends them. */
static void packet(int i, const char *p, size_t n)
{
    const char *end = p + n;
    char buf[512];
    if (n >= 2 && p[0] == '4' && p[1] == '0') {
        int k = snprintf(buf, sizeof buf, "40{\"sid\":\"x%d\"}", i);
        push(i, buf, (size_t)k);
        return;
    }
    if (n < 4 || p[0] != '4' || p[1] != '2')
        return; /* pongs, and what sgload never sends */
    const char *a = p + 2, *d = a;
    while (d < end && *d >= '0' && *d <= '9')
        d++;
    int idlen = (int)(d - a);
    if (end - d < 3 || d[0] != '[' || d[1] != '"')
        return;
    char name[32];
    if (!quoted(d + 2, end, name, sizeof name))
        return;
    const char *rest = d + 2 + strlen(name) + 1; /* after the name's closing quote */
    sg_buf out = SG_BUF_INIT;
    if (strcmp(name, "message-with-ack") == 0 && idlen) {
        sg_buf_printf(&out, "43%.*s[", idlen, a);
        if (rest < end && *rest == ',')
            sg_buf_append(&out, rest + 1, (size_t)(end - rest - 1));
        else
            sg_buf_puts(&out, "]");
        push(i, out.data, out.len);
    } else if (strcmp(name, "join") == 0 && rest + 2 < end) {
        if (quoted(rest + 2, end, sessions[i].room, sizeof sessions[i].room) && idlen) {
            sg_buf_printf(&out, "43%.*s[]", idlen, a);
            push(i, out.data, out.len);
        }
    } else if (strcmp(name, "broadcast") == 0 && rest + 2 < end) {
        char room[64];
        if (!quoted(rest + 2, end, room, sizeof room))
            goto done;
        const char *pl = rest + 2 + strlen(room) + 2; /* after `","ROOM",` */
        if (pl >= end)
            goto done;
        sg_buf_puts(&out, "42[\"tick\",");
        sg_buf_append(&out, pl, (size_t)(end - pl)); /* the payload and the closing ']' */
        for (int k = 0; k < nsessions; k++)
            if (sessions[k].open && strcmp(sessions[k].room, room) == 0)
                push(k, out.data, out.len);
        if (idlen) {
            int len = snprintf(buf, sizeof buf, "43%.*s[]", idlen, a);
            push(i, buf, (size_t)len);
        }
    }
done:
    sg_buf_free(&out);
}

/* The session a query string names: its index, -1 for none, -2 unknown. */
static int session_of(const char *qs)
{
    char *sid = sg_query_get(qs, "sid"), *e = NULL;
    if (!sid)
        return -1;
    long i = sid[0] == 'f' ? strtol(sid + 1, &e, 10) : -1;
    bool ok = e && e != sid + 1 && !*e && i >= 0 && i < nsessions && sessions[i].open;
    free(sid);
    return ok ? (int)i : -2;
}

static const char UNKNOWN[] = "{\"code\":1,\"message\":\"Session ID unknown\"}";

/* c's request, complete: answered, or its GET held. */
static void request(struct conn *c)
{
    const sg_fcgi_req *r = &c->p.req;
    const char *method = sg_fcgi_param(r, "REQUEST_METHOD");
    int i = session_of(sg_fcgi_param(r, "QUERY_STRING"));
    bool post = method && strcmp(method, "POST") == 0;
    char buf[256];
    if (i == -1 && !post && nsessions < MAX_SESSIONS) {
        i = nsessions++;
        sessions[i].open = true;
        int n = snprintf(buf, sizeof buf,
                         "0{\"sid\":\"f%d\",\"upgrades\":[],\"pingInterval\":300000,"
                         "\"pingTimeout\":20000,\"maxPayload\":1000000}", i);
        answer(c, 200, buf, (size_t)n);
        return;
    }
    if (i < 0) {
        answer(c, 400, UNKNOWN, sizeof UNKNOWN - 1);
        return;
    }
    struct session *s = &sessions[i];
    if (!post) {
        if (s->q.len) {
            answer(c, 200, s->q.data, s->q.len);
            sg_buf_reset(&s->q);
        } else if (s->held) {
            answer(c, 400, UNKNOWN, sizeof UNKNOWN - 1);
        } else {
            s->held = c;
            c->held_by = i;
        }
        return;
    }
    const char *b = r->body.data ? r->body.data : "", *end = b + r->body.len;
    while (b < end) {
        const char *e = memchr(b, RS[0], (size_t)(end - b));
        if (!e)
            e = end;
        packet(i, b, (size_t)(e - b));
        b = e + (e < end);
    }
    answer(c, 200, "ok", 2);
}

/* Answer the held GETs of the sessions the request queued for. */
static void answer_dirty(void)
{
    for (int k = 0; k < ndirty; k++) {
        struct session *s = &sessions[dirty[k]];
        s->dirty = false;
        struct conn *c = s->held;
        if (!c || !s->q.len)
            continue;
        s->held = NULL;
        answer(c, 200, s->q.data, s->q.len);
        sg_buf_reset(&s->q);
        conn_flush(c);
    }
    ndirty = 0;
}

static void readable(struct conn *c)
{
    sg_buf_reserve(&c->in, READ_CHUNK);
    ssize_t n = recv(c->fd, c->in.data + c->in.len, READ_CHUNK, MSG_DONTWAIT);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        conn_close(c);
        return;
    }
    c->in.len += (size_t)n;
    size_t off = 0;
    while (c->held_by < 0 && off < c->in.len) {
        size_t used = 0;
        int rc = sg_fcgi_parse(&c->p, c->in.data + off, c->in.len - off, &used, &c->out);
        off += used;
        if (rc == SG_FCGI_ERROR) {
            conn_close(c);
            return;
        }
        if (rc == SG_FCGI_REQUEST)
            request(c);
        else if (rc == SG_FCGI_ABORT)
            sg_fcgi_done(&c->p);
        else
            break;
    }
    memmove(c->in.data, c->in.data + off, c->in.len - off);
    c->in.len -= off;
    answer_dirty(); /* may answer on c too */
    if (c->out.len)
        conn_flush(c);
}

int main(int argc, char **argv)
{
    const char *listen_spec = NULL;
    for (int i = 1; i + 1 < argc; i += 2)
        if (strcmp(argv[i], "--listen") == 0)
            listen_spec = argv[i + 1];
    if (!listen_spec) {
        fprintf(stderr, "usage: floor --conf FILE --listen unix:PATH\n");
        return 2;
    }
    char *created = NULL;
    bool ipv6;
    int lfd = sg_daemon_listen("floor", listen_spec, &created, &ipv6);
    if (lfd < 0 || fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK) < 0)
        return 1;
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev);
    fprintf(stderr, "floor: ready: %s (a benchmark's instrument: no store, no pings)\n",
            listen_spec);
    struct epoll_event evs[MAX_EVENTS];
    while (!stopping) {
        int n = epoll_wait(epfd, evs, MAX_EVENTS, -1);
        for (int k = 0; k < n; k++) {
            struct conn *c = evs[k].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    c = calloc(1, sizeof *c);
                    if (!c) {
                        close(fd);
                        continue;
                    }
                    c->fd = fd;
                    c->held_by = -1;
                    sg_fcgi_parser_init(&c->p, 1 << 20);
                    readable(c); /* the web server wrote its request already */
                    if (c->fd >= 0)
                        watch(c, c->writing); /* a held GET, or waiting for more */
                }
                continue;
            }
            if (c->fd < 0 || ((evs[k].events & EPOLLOUT) && !conn_flush(c)))
                continue;
            if (evs[k].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                readable(c);
        }
        free_dead();
    }
    if (created)
        unlink(created);
    free(created);
    return 0;
}
