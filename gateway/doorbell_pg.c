/* doorbell_pg.c - the doorbell across hosts: NOTIFY/LISTEN on channel
 * "siogate" of the PostgreSQL server that holds the store.
 *
 * A ring is "SELECT pg_notify('siogate', ORIGIN '\n' MSG)", prepared once
 * per connection, on a connection of the bell's own (never the store's:
 * a NOTIFY inside the store's transaction would wait for its commit, and
 * the store's connection has its own life). ORIGIN ("@" and 20 id
 * characters, kept in DIR/origin and made by the first process that
 * needs it) names the bell directory, that is the host: a waiter skips
 * the notifications of its own directory, whose rings it got as
 * datagrams already.
 *
 * The ringer has no event loop: a ring moves its connection along
 * (connect, prepare, the previous NOTIFY's result) and waits for the
 * answer at most BELL_PG_WAIT_MS, one round trip when the server is well.
 * A ring that waited in vain makes the next ones not wait at all until
 * the connection is up again (so a server that does not answer costs one
 * wait per outage, not one per ring); a connection that fails is retried
 * after a backoff (BELL_PG_BACKOFF_MIN_MS doubling to _MAX_MS, jittered).
 * A ring that could not be sent is lost, and owed: the next notification
 * sent says "*".
 *
 * The waiter LISTENs on its own connection, non-blocking, from an epoll
 * fd (the one sg_bell_fd gives) that holds the datagram socket, the
 * libpq socket (re-registered as libpq changes it while connecting), a
 * timerfd (the backoff, the connect deadline) and an eventfd (set while a
 * notification taken from libpq is held, since the socket no longer says
 * so). bell_remote_recv does the work when the caller drains. When the
 * LISTEN comes back after an outage, the waiter reports "*" once: the
 * notifications of the outage are gone.
 *
 * Fork: a child closing a bell it inherited must not end the parent's
 * sessions: its libpq sockets are pointed at /dev/null before PQfinish,
 * and the epoll set (shared with the parent) is left as it is.
 *
 * Measured with tests/unit/bench_doorbell (SG_TEST_PG; PostgreSQL 15 on
 * loopback, the 2-vCPU VM at load average 3.6, two runs): one ring, a
 * NOTIFY round trip, p50 48-117 us, p99 1.6-5.9 ms; ring -> recv in
 * another process waiting in another bell directory, p50 0.17-0.44 ms,
 * p99 4.6-8.3 ms (the datagram: p50 ~25 us). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "doorbell_int.h"

#include "doorbell.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include "pq.h"
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define ERRSTR(e) strerror_r((e), (char[128]){0}, 128)

#define BELL_CHANNEL "siogate"
#define BELL_STMT "sg_bell_notify"
#define BELL_PG_WAIT_MS 250        /* the longest a ring waits */
#define BELL_PG_OPEN_WAIT_MS 2000  /* a new waiter waits this long for its LISTEN */
#define BELL_PG_CLOSE_WAIT_MS 1000 /* a closing bell waits this long to send a ring it owes */
#define BELL_PG_CONNECT_MS 10000   /* an attempt (connect + LISTEN/PREPARE) not done by then fails */
#define BELL_PG_STALL_MS 10000     /* a NOTIFY unanswered this long: the connection is dropped */
#define BELL_PG_BACKOFF_MIN_MS 100
#define BELL_PG_BACKOFF_MAX_MS 30000
#define BELL_NOTIFY_MAX 7999       /* a NOTIFY payload is shorter than 8000 bytes */
#define ORIGIN_LEN (1 + SG_ID_LEN) /* "@" and an id: never a session id */

enum pgc_state { C_DOWN, C_CONNECTING, C_SETUP, C_READY, C_BUSY };

struct pgc {
    PGconn *conn;
    enum pgc_state st;
    bool want_write; /* the socket must become writable (connecting, flushing) */
    int64_t retry_at; /* C_DOWN: not before */
    int64_t backoff;  /* the wait after the next failure */
    int64_t since;    /* C_CONNECTING, C_SETUP: the attempt's start; C_BUSY: the send */
    bool lost;        /* it failed since it was last up (or before it ever was) */
    bool quiet;       /* a failure was logged; the next ones are not, until it is up */
    const char *role;
};

struct bell_remote {
    char *conninfo;
    char origin[ORIGIN_LEN + 1];
    pid_t owner;
    uint32_t seed;

    struct pgc ring;
    bool owed;      /* a notification was not sent: the next one says "*" */
    bool impatient; /* a ring waited in vain: none waits until the connection is up */

    /* a waiter's */
    bool listen;
    struct pgc lis;
    int epfd, tfd, evfd;
    int reg_fd;       /* the libpq socket registered in epfd, or -1 */
    uint32_t reg_ev;
    int64_t timer_at; /* what tfd is armed for (0: disarmed) */
    bool ev_on;       /* evfd holds a count */
    bool report_all;  /* the LISTEN is back after an outage: say "*" once */
    PGnotify *next;   /* taken from libpq, not returned yet */
};

/* ---------------------------------------------------------------- origin */

static bool origin_ok(const char *s, size_t n)
{
    if (n < ORIGIN_LEN || s[0] != '@')
        return false;
    for (size_t i = 1; i < ORIGIN_LEN; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!(ch == '-' || ch == '_' || (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
              (ch >= 'A' && ch <= 'Z')))
            return false;
    }
    return n == ORIGIN_LEN || s[ORIGIN_LEN] == '\n';
}

/* The origin of dir: dir/origin, made (atomically: the first one linked
 * wins) when missing or not one. 0, or -1 (logged). */
static int origin_load(const char *dir, char out[ORIGIN_LEN + 1])
{
    char path[PATH_MAX], tmp[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/origin", dir) >= (int)sizeof path ||
        snprintf(tmp, sizeof tmp, "%s/.origin.%ld", dir, (long)getpid()) >= (int)sizeof tmp) {
        sg_error("doorbell: %s: path too long", dir);
        return -1;
    }
    for (int attempt = 0; attempt < 3; attempt++) {
        bool bad = false; /* there, but not an origin */
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0) {
            char buf[64];
            ssize_t n = read(fd, buf, sizeof buf);
            close(fd);
            if (n > 0 && origin_ok(buf, (size_t)n)) {
                memcpy(out, buf, ORIGIN_LEN);
                out[ORIGIN_LEN] = '\0';
                return 0;
            }
            bad = true;
        } else if (errno != ENOENT) {
            sg_error("doorbell: %s: %s", path, ERRSTR(errno));
            return -1;
        }
        char id[SG_ID_LEN + 1], text[ORIGIN_LEN + 2];
        if (sg_id_new(id) < 0) {
            sg_error("doorbell: no random bytes: %s", ERRSTR(errno));
            return -1;
        }
        snprintf(text, sizeof text, "@%s\n", id);
        unlink(tmp);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
            sg_error("doorbell: cannot create %s: %s", tmp, ERRSTR(errno));
            return -1;
        }
        ssize_t w = write(fd, text, ORIGIN_LEN + 1);
        int e = errno;
        close(fd);
        if (w != ORIGIN_LEN + 1) {
            unlink(tmp);
            sg_error("doorbell: cannot write %s: %s", tmp, w < 0 ? ERRSTR(e) : "short write");
            return -1;
        }
        /* missing: link() keeps whichever process linked first (EEXIST
         * for the others, who read it next turn); not an origin: replaced */
        int rc = bad ? rename(tmp, path) : link(tmp, path);
        e = errno;
        unlink(tmp);
        if (rc < 0 && e != EEXIST) {
            sg_error("doorbell: cannot create %s: %s", path, ERRSTR(e));
            return -1;
        }
        if (bad)
            sg_warn("doorbell: %s was not an origin id: replaced", path);
    }
    sg_error("doorbell: %s keeps changing", path);
    return -1;
}

/* ---------------------------------------------------------------- connections */

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    sg_debug("doorbell: PostgreSQL says: %s", message);
}

static uint32_t next_rand(bell_remote *r)
{
    /* xorshift32: only to spread reconnects of many processes */
    uint32_t x = r->seed;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return r->seed = x ? x : 0x9e3779b9u;
}

/* Close c's connection; in a forked child without a word to the server. */
static void pgc_drop(bell_remote *r, struct pgc *c)
{
    if (!c->conn)
        return;
    bool child = r->owner != getpid();
    /* the epoll set is shared with the parent after a fork: a child's
     * DEL would take the parent's socket out of it */
    if (c == &r->lis && r->reg_fd >= 0 && !child)
        epoll_ctl(r->epfd, EPOLL_CTL_DEL, r->reg_fd, NULL); /* may be gone with its fd */
    if (c == &r->lis)
        r->reg_fd = -1;
    int fd = PQsocket(c->conn);
    if (child && fd >= 0) {
        int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (nul >= 0) {
            dup2(nul, fd); /* the parent's session stays; the terminate goes nowhere */
            close(nul);
        }
    }
    PQfinish(c->conn);
    c->conn = NULL;
}

static void pgc_fail(bell_remote *r, struct pgc *c, const char *why)
{
    if (!c->quiet) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", why ? why : c->conn ? PQerrorMessage(c->conn) : "?");
        size_t n = strlen(msg);
        while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
            msg[--n] = '\0';
        for (char *p = msg; *p; p++)
            if (*p == '\n' || *p == '\t')
                *p = ' ';
        sg_warn("doorbell: the PostgreSQL %s connection failed (%s); retried with a backoff%s",
                c->role, msg, c == &r->lis ? ", rings from other hosts wait for it" : "");
        c->quiet = true;
    }
    if (c == &r->ring && c->st == C_BUSY)
        r->owed = true; /* the last notification may not have gone */
    pgc_drop(r, c);
    c->st = C_DOWN;
    c->lost = true;
    c->want_write = false;
    int64_t half = c->backoff / 2;
    c->retry_at = sg_mono_ms() + half + (int64_t)(next_rand(r) % (uint32_t)(half + 1));
    c->backoff = c->backoff * 2 > BELL_PG_BACKOFF_MAX_MS ? BELL_PG_BACKOFF_MAX_MS : c->backoff * 2;
}

static void pgc_start(bell_remote *r, struct pgc *c)
{
    /* ours first: the conninfo (dbname, expanded) overrides them */
    const char *const keys[] = {"fallback_application_name", "keepalives_idle",
                                "keepalives_interval", "keepalives_count", "dbname", NULL};
    const char *const vals[] = {c == &r->lis ? "siogate-bell-listen" : "siogate-bell-notify",
                                "60", "10", "3", r->conninfo, NULL};
    c->since = sg_mono_ms();
    c->conn = sg_pq_load() == 0 ? PQconnectStartParams(keys, vals, 1) : NULL;
    if (!c->conn) {
        pgc_fail(r, c, *sg_pq_error() ? sg_pq_error() : "out of memory");
        return;
    }
    if (PQstatus(c->conn) == CONNECTION_BAD) {
        pgc_fail(r, c, NULL);
        return;
    }
    PQsetNoticeProcessor(c->conn, quiet_notice, NULL);
    c->st = C_CONNECTING;
    c->want_write = true;
}

/* Move c along without waiting: connect, LISTEN or PREPARE, results. */
static void pgc_step(bell_remote *r, struct pgc *c)
{
    int64_t now = sg_mono_ms();
    if (c->st == C_DOWN) {
        if (now < c->retry_at)
            return;
        pgc_start(r, c);
        if (c->st != C_CONNECTING)
            return;
    }
    if (c->st == C_CONNECTING) {
        /* PQconnectPoll only when its socket is ready the way it asked */
        struct pollfd pf = {PQsocket(c->conn), (short)(c->want_write ? POLLOUT : POLLIN), 0};
        if (pf.fd >= 0 && poll(&pf, 1, 0) == 0) {
            if (now - c->since > BELL_PG_CONNECT_MS)
                pgc_fail(r, c, "no connection within 10 s");
            return;
        }
        PostgresPollingStatusType p = PQconnectPoll(c->conn);
        if (p == PGRES_POLLING_FAILED) {
            pgc_fail(r, c, NULL);
            return;
        }
        if (p != PGRES_POLLING_OK) {
            c->want_write = p == PGRES_POLLING_WRITING;
            if (now - c->since > BELL_PG_CONNECT_MS)
                pgc_fail(r, c, "no connection within 10 s");
            return;
        }
        int ok = PQsetnonblocking(c->conn, 1) == 0 &&
                 (c == &r->lis ? PQsendQuery(c->conn, "LISTEN " BELL_CHANNEL)
                               : PQsendPrepare(c->conn, BELL_STMT, "SELECT pg_notify($1, $2)", 2,
                                               NULL));
        if (!ok) {
            pgc_fail(r, c, NULL);
            return;
        }
        c->st = C_SETUP;
    }
    int f = PQflush(c->conn);
    if (f < 0 || !PQconsumeInput(c->conn)) {
        pgc_fail(r, c, NULL);
        return;
    }
    c->want_write = f == 1;
    char err[200] = "";
    while ((c->st == C_SETUP || c->st == C_BUSY) && !PQisBusy(c->conn)) {
        PGresult *res = PQgetResult(c->conn);
        if (res) {
            ExecStatusType s = PQresultStatus(res);
            if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK && !err[0])
                snprintf(err, sizeof err, "%s", PQresultErrorMessage(res));
            PQclear(res);
            continue;
        }
        /* the command is done */
        if (c->st == C_SETUP && err[0]) {
            pgc_fail(r, c, err); /* LISTEN or PREPARE refused */
            return;
        }
        if (err[0] && !c->quiet) {
            sg_warn("doorbell: NOTIFY failed: %s", err);
            c->quiet = true;
        }
        if (c->st == C_SETUP) {
            if (c->lost)
                sg_info("doorbell: the PostgreSQL %s connection is up again", c->role);
            c->quiet = false;
            c->backoff = BELL_PG_BACKOFF_MIN_MS;
            if (c->lost && c == &r->lis)
                r->report_all = true;
            c->lost = false;
        }
        c->st = C_READY;
        if (c == &r->ring)
            r->impatient = false;
    }
    if (PQstatus(c->conn) == CONNECTION_BAD) {
        pgc_fail(r, c, NULL);
        return;
    }
    if (c->st == C_SETUP && now - c->since > BELL_PG_CONNECT_MS)
        pgc_fail(r, c, "no answer to LISTEN/PREPARE within 10 s");
    else if (c->st == C_BUSY && now - c->since > BELL_PG_STALL_MS)
        pgc_fail(r, c, "no answer to NOTIFY within 10 s");
}

/* Wait until c's socket may move it along, at most ms. */
static void pgc_wait(struct pgc *c, int64_t ms)
{
    struct pollfd p = {c->conn ? PQsocket(c->conn) : -1, POLLIN, 0};
    if (c->want_write)
        p.events = c->st == C_CONNECTING ? POLLOUT : POLLIN | POLLOUT;
    if (ms > INT_MAX)
        ms = INT_MAX;
    if (ms > 0 && poll(&p, 1, (int)ms) < 0 && errno != EINTR)
        sg_debug("doorbell: poll: %s", ERRSTR(errno));
}

/* ---------------------------------------------------------------- the waiter's fds */

enum { TAG_DGRAM, TAG_PG, TAG_TIMER, TAG_EVENT };

static void reg_update(bell_remote *r)
{
    struct pgc *c = &r->lis;
    int fd = c->conn ? PQsocket(c->conn) : -1;
    /* connecting: exactly the way libpq asked (the other would keep the
     * epoll fd readable with nothing to do) */
    uint32_t ev = !c->want_write ? EPOLLIN : c->st == C_CONNECTING ? EPOLLOUT : EPOLLIN | EPOLLOUT;
    struct epoll_event e = {.events = ev, .data.u32 = TAG_PG};
    if (fd != r->reg_fd && r->reg_fd >= 0) {
        epoll_ctl(r->epfd, EPOLL_CTL_DEL, r->reg_fd, NULL); /* may be gone with its fd */
        r->reg_fd = -1;
    }
    if (fd < 0)
        return;
    /* while connecting, libpq may close a socket and open another under
     * the same number (a second address): its registration went with
     * the old one, so it is made again */
    if (fd == r->reg_fd && ev == r->reg_ev && c->st != C_CONNECTING)
        return;
    int rc = fd == r->reg_fd ? epoll_ctl(r->epfd, EPOLL_CTL_MOD, fd, &e) : -1;
    if (rc < 0)
        rc = epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &e);
    if (rc < 0 && errno == EEXIST)
        rc = epoll_ctl(r->epfd, EPOLL_CTL_MOD, fd, &e);
    if (rc < 0) {
        sg_warn("doorbell: epoll_ctl(PostgreSQL socket): %s", ERRSTR(errno));
        r->reg_fd = -1;
        return;
    }
    r->reg_fd = fd;
    r->reg_ev = ev;
}

static void timer_update(bell_remote *r)
{
    struct pgc *c = &r->lis;
    int64_t at = 0;
    if (c->st == C_DOWN)
        at = c->retry_at > 0 ? c->retry_at : 1;
    else if (c->st == C_CONNECTING || c->st == C_SETUP)
        at = c->since + BELL_PG_CONNECT_MS + 1;
    if (at == r->timer_at)
        return;
    struct itimerspec its = {{0, 0}, {0, 0}};
    if (at) {
        its.it_value.tv_sec = (time_t)(at / 1000);
        its.it_value.tv_nsec = (long)(at % 1000) * 1000000;
    }
    if (timerfd_settime(r->tfd, at ? TFD_TIMER_ABSTIME : 0, &its, NULL) < 0)
        sg_warn("doorbell: timerfd_settime: %s", ERRSTR(errno));
    else
        r->timer_at = at;
}

static void ev_mark(bell_remote *r, bool on)
{
    if (on == r->ev_on)
        return;
    uint64_t one = 1;
    ssize_t n = on ? write(r->evfd, &one, sizeof one) : read(r->evfd, &one, sizeof one);
    (void)n;
    r->ev_on = on;
}

/* ---------------------------------------------------------------- API */

bell_remote *bell_remote_open(const char *conninfo, const char *dir, int recv_fd)
{
    bell_remote *r = calloc(1, sizeof *r);
    if (!r || !(r->conninfo = strdup(conninfo))) {
        sg_error("doorbell: out of memory");
        free(r);
        return NULL;
    }
    r->owner = getpid();
    r->seed = (uint32_t)r->owner * 2654435761u ^ (uint32_t)sg_mono_ms();
    r->epfd = r->tfd = r->evfd = r->reg_fd = -1;
    r->ring = (struct pgc){.st = C_DOWN, .backoff = BELL_PG_BACKOFF_MIN_MS, .role = "NOTIFY"};
    r->lis = (struct pgc){.st = C_DOWN, .backoff = BELL_PG_BACKOFF_MIN_MS, .role = "LISTEN"};
    if (origin_load(dir, r->origin) < 0) {
        /* a process that cannot use this host's directory (another user:
         * its datagrams do not reach this host's waiters either) rings
         * under an origin of its own, which every waiter hears */
        char id[SG_ID_LEN + 1];
        if (sg_id_new(id) < 0) {
            sg_error("doorbell: no random bytes: %s", ERRSTR(errno));
            goto fail;
        }
        snprintf(r->origin, sizeof r->origin, "@%s", id);
        sg_warn("doorbell: rings to other hosts go out under an origin of this process's own");
    }
    if (recv_fd < 0)
        return r; /* a ringer connects on its first ring */

    r->listen = true;
    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    r->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    r->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->epfd < 0 || r->tfd < 0 || r->evfd < 0) {
        sg_error("doorbell: %s", ERRSTR(errno));
        goto fail;
    }
    const struct { int fd; uint32_t tag; } fds[] = {
        {recv_fd, TAG_DGRAM}, {r->tfd, TAG_TIMER}, {r->evfd, TAG_EVENT}};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
        struct epoll_event e = {.events = EPOLLIN, .data.u32 = fds[i].tag};
        if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fds[i].fd, &e) < 0) {
            sg_error("doorbell: epoll_ctl: %s", ERRSTR(errno));
            goto fail;
        }
    }
    /* the LISTEN in place before the caller reads the store, mostly: a
     * server slower than this is waited for by the event loop */
    int64_t deadline = sg_mono_ms() + BELL_PG_OPEN_WAIT_MS;
    for (;;) {
        pgc_step(r, &r->lis);
        int64_t left = deadline - sg_mono_ms();
        if (r->lis.st == C_READY || r->lis.st == C_DOWN || left <= 0)
            break;
        pgc_wait(&r->lis, left);
    }
    reg_update(r);
    timer_update(r);
    return r;

fail:
    bell_remote_close(r);
    return NULL;
}

int bell_remote_fd(const bell_remote *r) { return r && r->listen ? r->epfd : -1; }

int bell_remote_up(const bell_remote *r)
{
    if (!r)
        return 0;
    if (r->listen)
        return r->lis.st == C_READY;
    return r->ring.st == C_READY || r->ring.st == C_BUSY;
}

int bell_remote_ring(bell_remote *r, const char *msg, size_t len)
{
    struct pgc *c = &r->ring;
    char payload[ORIGIN_LEN + 1 + SG_BELL_MAX + 1];
    if (r->owed || len == 0 || len > SG_BELL_MAX || ORIGIN_LEN + 1 + len > BELL_NOTIFY_MAX) {
        msg = SG_BELL_ALL;
        len = sizeof SG_BELL_ALL - 1;
    }
    memcpy(payload, r->origin, ORIGIN_LEN);
    payload[ORIGIN_LEN] = '\n';
    memcpy(payload + ORIGIN_LEN + 1, msg, len);
    payload[ORIGIN_LEN + 1 + len] = '\0';

    int64_t deadline = sg_mono_ms() + BELL_PG_WAIT_MS;
    bool sent = false;
    /* each turn moves the connection along or waits for its socket; the
     * deadline ends it */
    for (;;) {
        pgc_step(r, c);
        if (c->st == C_READY) {
            if (sent)
                break; /* answered: one round trip */
            const char *const vals[2] = {BELL_CHANNEL, payload};
            if (!PQsendQueryPrepared(c->conn, BELL_STMT, 2, vals, NULL, NULL, 0)) {
                pgc_fail(r, c, NULL);
                break;
            }
            c->st = C_BUSY;
            c->since = sg_mono_ms();
            sent = true;
            r->owed = false;
            continue;
        }
        if (c->st == C_DOWN)
            break;
        int64_t left = deadline - sg_mono_ms();
        if (r->impatient || left <= 0) {
            r->impatient = true;
            break;
        }
        pgc_wait(c, left);
    }
    if (!sent)
        r->owed = true; /* (a sent one that failed was made owed by pgc_fail) */
    return sent && c->st != C_DOWN ? 1 : 0;
}

/* The next notification from another host, or NULL. */
static PGnotify *take(bell_remote *r)
{
    PGnotify *n = r->next;
    if (n) {
        r->next = NULL;
        return n;
    }
    while (r->lis.conn && (n = PQnotifies(r->lis.conn))) {
        const char *p = n->extra ? n->extra : "";
        bool self = strncmp(p, r->origin, ORIGIN_LEN) == 0 &&
                    (p[ORIGIN_LEN] == '\n' || p[ORIGIN_LEN] == '\0');
        if (!self && strcmp(n->relname, BELL_CHANNEL) == 0)
            return n;
        PQfreemem(n);
    }
    return NULL;
}

int bell_remote_recv(bell_remote *r, char *buf, size_t cap)
{
    if (!r || !r->listen || cap < 2)
        return 0;
    if (!r->next) {
        uint64_t ticks;
        ssize_t got = read(r->tfd, &ticks, sizeof ticks); /* a due timer is handled below */
        (void)got;
        pgc_step(r, &r->lis);
        reg_update(r);
        timer_update(r);
    }
    int len = 0;
    if (r->report_all) {
        r->report_all = false;
        memcpy(buf, SG_BELL_ALL, sizeof SG_BELL_ALL);
        len = (int)(sizeof SG_BELL_ALL - 1);
    } else {
        PGnotify *n = take(r);
        if (n) {
            /* "ORIGIN\nMSG"; a payload without an origin (someone's
             * NOTIFY siogate, 'ids') is all message; an empty one is "*" */
            const char *p = n->extra ? n->extra : "";
            const char *nl = strchr(p, '\n');
            const char *m = nl && origin_ok(p, (size_t)(nl - p) + 1) ? nl + 1 : p;
            size_t mlen = strlen(m);
            if (mlen == 0 || mlen > cap - 1 || mlen > INT_MAX) {
                m = SG_BELL_ALL;
                mlen = sizeof SG_BELL_ALL - 1;
            }
            memcpy(buf, m, mlen);
            buf[mlen] = '\0';
            len = (int)mlen;
            PQfreemem(n);
        }
    }
    if (len == 0) {
        buf[0] = '\0';
        ev_mark(r, false);
        return 0;
    }
    /* libpq may hold more that its socket no longer announces */
    if (!r->next)
        r->next = take(r);
    ev_mark(r, r->next != NULL);
    return len;
}

/* At close, a ring owed to the other hosts (a short-lived process, such
 * as siogate emit, may have rung once while its connection was still
 * being made) is sent as "*" if that can be done within
 * BELL_PG_CLOSE_WAIT_MS, waiting for the backoff too. A NOTIFY in flight
 * needs no wait: the server runs it before it reads the Terminate that
 * PQfinish sends after it. */
static void flush_owed(bell_remote *r)
{
    struct pgc *c = &r->ring;
    int64_t deadline = sg_mono_ms() + BELL_PG_CLOSE_WAIT_MS;
    while (r->owed) {
        pgc_step(r, c);
        if (c->st == C_READY) {
            char payload[ORIGIN_LEN + 3];
            snprintf(payload, sizeof payload, "%s\n" SG_BELL_ALL, r->origin);
            const char *const vals[2] = {BELL_CHANNEL, payload};
            if (PQsendQueryPrepared(c->conn, BELL_STMT, 2, vals, NULL, NULL, 0) &&
                PQflush(c->conn) == 0)
                r->owed = false;
            break;
        }
        int64_t left = deadline - sg_mono_ms();
        if (c->st == C_DOWN && c->retry_at > deadline)
            break;
        if (left <= 0)
            break;
        if (c->st == C_DOWN) {
            int64_t ms = c->retry_at - sg_mono_ms();
            struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
            if (ms > 0)
                nanosleep(&ts, NULL);
        } else {
            pgc_wait(c, left);
        }
    }
}

void bell_remote_close(bell_remote *r)
{
    if (!r)
        return;
    if (r->owed && r->owner == getpid())
        flush_owed(r);
    if (r->next)
        PQfreemem(r->next);
    pgc_drop(r, &r->ring);
    pgc_drop(r, &r->lis);
    if (r->epfd >= 0)
        close(r->epfd);
    if (r->tfd >= 0)
        close(r->tfd);
    if (r->evfd >= 0)
        close(r->evfd);
    free(r->conninfo);
    free(r);
}
