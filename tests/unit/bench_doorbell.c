/* bench_doorbell.c - doorbell numbers (not part of make check).
 *
 *   gcc -std=c11 -O2 -D_GNU_SOURCE -Igateway -o /tmp/bench_doorbell \
 *       tests/unit/bench_doorbell.c gateway/doorbell.c gateway/log.c
 *   /tmp/bench_doorbell [N] [idle-seconds]
 *
 * 1. latency: a forked child blocks in epoll_wait on a waiter; the parent
 *    rings N times (default 2000), 1 ms apart, each datagram carrying the
 *    CLOCK_MONOTONIC time of the ring; the child reports p50/p99/max of
 *    ring -> recv.
 * 2. burst: the same without the pause (the child drains as fast as it can).
 * 3. ring cost: the time of one sg_bell_ring() to 1 and to 8 waiters.
 * 4. idle CPU: a child waits in epoll_wait with the 1 s re-check timeout
 *    for S seconds (default 10); its user+system CPU is reported.
 * 5. with SG_TEST_PG set (a PostgreSQL conninfo): 1 and 2 across "hosts":
 *    the child waits in another bell directory, so every ring reaches it by
 *    NOTIFY/LISTEN; and the cost of one sg_bell_ring() (one round trip).
 *    Build it with make tests/unit/bench_doorbell (it needs libpq). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "doorbell.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t pct(const int64_t *v, int n, double p)
{
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

/* Child: receive n timestamped rings, print the latency percentiles. */
static int child_latency(const char *dir, const char *db, int wr, int n, const char *label)
{
    sg_bell *w = sg_bell_waiter_db(dir, db);
    if (!w)
        return 1;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, sg_bell_fd(w), &ev);
    int64_t *lat = calloc((size_t)n, sizeof *lat);
    if (!lat)
        return 1;
    int got = 0, stars = 0;
    if (write(wr, "r", 1) != 1)
        return 1;
    while (got + stars < n) {
        int k = epoll_wait(ep, &ev, 1, 5000);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        char buf[SG_BELL_MAX + 1];
        int len;
        while ((len = sg_bell_recv(w, buf, sizeof buf)) > 0) {
            int64_t t = now_ns();
            if (buf[0] == '*') {
                stars++;
                continue;
            }
            if (got + stars < n)
                lat[got++] = t - strtoll(buf, NULL, 10);
        }
    }
    qsort(lat, (size_t)got, sizeof *lat, cmp_i64);
    if (got)
        printf("%-26s n=%d  p50 %.1f us  p90 %.1f us  p99 %.1f us  max %.1f us  (\"*\": %d)\n",
               label, got, pct(lat, got, .50) / 1e3, pct(lat, got, .90) / 1e3,
               pct(lat, got, .99) / 1e3, lat[got - 1] / 1e3, stars);
    else
        printf("%-26s nothing received\n", label);
    fflush(stdout);
    free(lat);
    close(ep);
    sg_bell_close(w);
    return got + stars == n ? 0 : 1;
}

/* Ring from rdir; the child waits in wdir (the same, or another "host"). */
static int run_latency_db(const char *rdir, const char *wdir, const char *db, int n,
                          int64_t gap_ns, const char *label)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return 1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        _exit(child_latency(wdir, db, p[1], n, label));
    }
    close(p[1]);
    char c;
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    if (poll(&pf, 1, 5000) != 1 || read(p[0], &c, 1) != 1)
        return 1;
    close(p[0]);
    sg_bell *r = sg_bell_ringer_db(rdir, db);
    int64_t *cost = calloc((size_t)n, sizeof *cost);
    if (!r || !cost)
        return 1;
    int sent = 0;
    bool local = !strcmp(rdir, wdir);
    for (int i = 0; i < n; i++) {
        if (gap_ns)
            sleep_ns(gap_ns);
        char m[32];
        int len = snprintf(m, sizeof m, "%" PRId64, now_ns());
        int rc;
        int64_t t0 = now_ns();
        while ((rc = sg_bell_ring(r, m, (size_t)len)) == 0 && local) {
            /* burst mode: queue full; give the child a moment */
            sleep_ns(20000);
            len = snprintf(m, sizeof m, "%" PRId64, now_ns());
        }
        cost[i] = now_ns() - t0;
        sent += rc > 0;
    }
    sg_bell_close(r);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!local) {
        qsort(cost, (size_t)n, sizeof *cost, cmp_i64);
        printf("%-26s n=%d  p50 %.1f us  p90 %.1f us  p99 %.1f us  max %.1f us\n",
               "  one ring (NOTIFY)", n, pct(cost, n, .50) / 1e3, pct(cost, n, .90) / 1e3,
               pct(cost, n, .99) / 1e3, cost[n - 1] / 1e3);
        fflush(stdout);
    }
    free(cost);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

static int run_latency(const char *dir, int n, int64_t gap_ns, const char *label)
{
    return run_latency_db(dir, dir, NULL, n, gap_ns, label);
}

static void ring_cost(const char *dir, int nwaiters)
{
    sg_bell *w[8];
    for (int i = 0; i < nwaiters; i++)
        w[i] = sg_bell_waiter(dir);
    sg_bell *r = sg_bell_ringer(dir);
    const char msg[] = "AAAAAAAAAAAAAAAAAAAA";
    int rounds = 20000;
    int64_t *t = calloc((size_t)rounds, sizeof *t);
    char buf[64];
    sg_bell_ring(r, msg, sizeof msg - 1); /* read the listing */
    for (int i = 0; i < nwaiters; i++)
        while (sg_bell_recv(w[i], buf, sizeof buf) > 0)
            ;
    for (int k = 0; k < rounds; k++) {
        int64_t a = now_ns();
        sg_bell_ring(r, msg, sizeof msg - 1);
        t[k] = now_ns() - a;
        for (int i = 0; i < nwaiters; i++)
            while (sg_bell_recv(w[i], buf, sizeof buf) > 0)
                ;
    }
    qsort(t, (size_t)rounds, sizeof *t, cmp_i64);
    printf("ring cost, %d waiter%s         p50 %.2f us  p99 %.2f us\n", nwaiters,
           nwaiters != 1 ? "s" : " ", pct(t, rounds, .5) / 1e3, pct(t, rounds, .99) / 1e3);
    free(t);
    sg_bell_close(r);
    for (int i = 0; i < nwaiters; i++)
        sg_bell_close(w[i]);
}

static int run_idle(const char *dir, int seconds)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return 1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        sg_bell *w = sg_bell_waiter(dir);
        int ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN};
        epoll_ctl(ep, EPOLL_CTL_ADD, sg_bell_fd(w), &ev);
        struct rusage r0, r1;
        getrusage(RUSAGE_SELF, &r0);
        int64_t end = now_ns() + (int64_t)seconds * 1000000000, wakes = 0;
        while (now_ns() < end) {
            int k = epoll_wait(ep, &ev, 1, 1000); /* the safety-net re-check */
            wakes++;
            char buf[64];
            if (k > 0)
                while (sg_bell_recv(w, buf, sizeof buf) > 0)
                    ;
        }
        getrusage(RUSAGE_SELF, &r1);
        double cpu = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) +
                     (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) / 1e6 +
                     (double)(r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) +
                     (r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e6;
        printf("idle waiter, %d s            CPU %.3f ms total (%.4f %%), %" PRId64
               " wake-ups (1 s timeout)\n",
               seconds, cpu * 1e3, cpu / seconds * 100, wakes);
        fflush(stdout);
        close(ep);
        sg_bell_close(w);
        close(p[1]);
        _exit(0);
    }
    close(p[1]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    close(p[0]);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    int idle = argc > 2 ? atoi(argv[2]) : 10;
    if (n <= 0 || idle <= 0) {
        fprintf(stderr, "usage: %s [N] [idle-seconds]\n", argv[0]);
        return 2;
    }
    char root[] = "/tmp/sgbench.XXXXXX";
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    char db[64];
    snprintf(db, sizeof db, "%s/db", root);
    char *dir = sg_bell_dir_for(db);
    int rc = 0;
    rc |= run_latency(dir, n, 1000000, "latency, 1 ms apart");
    rc |= run_latency(dir, n, 0, "latency, back to back");
    ring_cost(dir, 0);
    ring_cost(dir, 1);
    ring_cost(dir, 8);
    rc |= run_idle(dir, idle);
    const char *pg = getenv("SG_TEST_PG");
    char other[64];
    snprintf(other, sizeof other, "%s/other-host.bells", root);
    if (pg && *pg) {
        rc |= run_latency_db(dir, other, pg, n, 1000000, "NOTIFY, 1 ms apart");
        rc |= run_latency_db(dir, other, pg, n, 0, "NOTIFY, back to back");
    }
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)))
            if (de->d_name[0] != '.') {
                char p[512];
                snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
                unlink(p);
            }
        closedir(d);
    }
    rmdir(dir);
    char origin[128];
    snprintf(origin, sizeof origin, "%s/origin", other);
    unlink(origin);
    rmdir(other);
    rmdir(root);
    free(dir);
    return rc;
}
