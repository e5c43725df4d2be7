/* wakeup.c - benchmark: commit-to-response latency of a held poll.
 *
 *   wakeup URL DB [N]
 *
 * Opens an Engine.IO session through the web server at URL (e.g.
 * http://127.0.0.1:8080, the path /socket.io/), then N times (default 200):
 * sends a GET that the gateway parks, waits 20 ms, and - as another
 * process would, e.g. the CLI - commits one packet for the session into
 * the store DB and rings the doorbell. It measures the time from the
 * commit's return to the arrival of the complete HTTP response, and prints
 * p50, p90, p99 and max in milliseconds. Loopback only; bounded in count
 * and time (each response is awaited at most 5 s). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "doorbell.h"
#include "store.h"
#include "log.h"

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int http_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("connect");
        exit(1);
    }
    return fd;
}

/* Send a GET and read the whole response body into body (cap bytes).
 * Returns the body length, or -1 on timeout/error. */
static int http_get(int fd, const char *target, char *body, size_t cap, int timeout_ms)
{
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", target);
    if (write(fd, req, (size_t)n) != n)
        return -1;
    char buf[65536];
    size_t have = 0;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, timeout_ms) <= 0)
            return -1;
        ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
        if (r <= 0)
            return -1;
        have += (size_t)r;
        buf[have] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        char *cl = strcasestr(buf, "\r\nContent-Length:");
        if (!cl)
            return -1;
        size_t len = (size_t)strtoul(cl + 17, NULL, 10);
        size_t hdr = (size_t)(end + 4 - buf);
        if (have < hdr + len)
            continue;
        if (len >= cap)
            len = cap - 1;
        memcpy(body, end + 4, len);
        body[len] = '\0';
        return (int)len;
    }
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: wakeup URL DB [N]\n");
        return 2;
    }
    int port = 0;
    if (sscanf(argv[1], "http://127.0.0.1:%d", &port) != 1) {
        fprintf(stderr, "wakeup: URL must be http://127.0.0.1:PORT\n");
        return 2;
    }
    int n = argc > 3 ? atoi(argv[3]) : 200;
    if (n < 1 || n > 100000)
        n = 200;
    sg_log_init("wakeup", SG_LOG_WARN);
    sg_store *s = sg_store_open(argv[2]);
    char *dir = sg_bell_dir_for(argv[2]);
    sg_bell *bell = dir ? sg_bell_ringer(dir) : NULL;
    if (!s || !bell)
        return 1;
    int fd = http_connect(port);
    char body[65536], target[256], sid[SG_ID_LEN + 1];
    if (http_get(fd, "/socket.io/?EIO=4&transport=polling", body, sizeof body, 5000) < 0 ||
        sscanf(body, "0{\"sid\":\"%20[^\"]\"", sid) != 1) {
        fprintf(stderr, "wakeup: handshake failed: %s\n", body);
        return 1;
    }
    snprintf(target, sizeof target, "/socket.io/?EIO=4&transport=polling&sid=%s", sid);
    double *lat = calloc((size_t)n, sizeof *lat);
    char req[512];
    int rn = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", target);
    for (int i = 0; i < n; i++) {
        /* the GET goes out; the gateway parks it */
        if (write(fd, req, (size_t)rn) != rn)
            return 1;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
        char frame[64];
        int fl = snprintf(frame, sizeof frame, "42[\"tick\",%d]", i);
        if (sg_store_begin(s) != 0 || sg_store_queue_push(s, sid, false, frame, (size_t)fl) < 0 ||
            sg_store_commit(s) != 0)
            return 1;
        double t0 = now_us();
        sg_bell_ring(bell, sid, strlen(sid));
        /* read the response the ring released */
        char buf[65536];
        size_t have = 0;
        int done = 0;
        while (!done) {
            struct pollfd p = {fd, POLLIN, 0};
            if (poll(&p, 1, 5000) <= 0) {
                fprintf(stderr, "wakeup: no response within 5 s at round %d\n", i);
                return 1;
            }
            ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
            if (r <= 0)
                return 1;
            have += (size_t)r;
            buf[have] = '\0';
            char *end = strstr(buf, "\r\n\r\n");
            char *cl = strcasestr(buf, "\r\nContent-Length:");
            if (end && cl && have >= (size_t)(end + 4 - buf) + strtoul(cl + 17, NULL, 10))
                done = 1;
        }
        lat[i] = (now_us() - t0) / 1000.0;
        if (!strstr(buf, frame)) {
            fprintf(stderr, "wakeup: round %d: unexpected response: %s\n", i, buf);
            return 1;
        }
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp);
    printf("commit-to-response latency over %d held polls (ms): p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n",
           n, lat[n / 2], lat[n * 9 / 10], lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1],
           lat[n - 1]);
    free(lat);
    free(dir);
    sg_bell_close(bell);
    sg_store_close(s);
    close(fd);
    return 0;
}
