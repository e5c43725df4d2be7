/* test_doorbell.c - unix datagram doorbell: same process, forked
 * processes, dead sockets, limits, listing refresh. Every test works in its
 * own mkdtemp() directory under /tmp and removes it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "doorbell.h"
#include "log.h"
#include "tap.h"
#include "util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

struct tmp {
    char root[64];  /* /tmp/sgbell.XXXXXX */
    char *dir;      /* root/db.bells */
};

static int tmp_make(struct tmp *t)
{
    snprintf(t->root, sizeof t->root, "/tmp/sgbell.XXXXXX");
    if (!mkdtemp(t->root))
        return -1;
    char db[128];
    snprintf(db, sizeof db, "%s/db", t->root);
    t->dir = sg_bell_dir_for(db);
    return t->dir ? 0 : -1;
}

static void rm_dir(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", path, de->d_name);
            struct stat st;
            if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                rm_dir(p);
            else
                unlink(p);
        }
        closedir(d);
    }
    rmdir(path);
}

static void tmp_clean(struct tmp *t)
{
    rm_dir(t->root);
    free(t->dir);
    t->dir = NULL;
}

static int count_socks(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l > 5 && !strcmp(de->d_name + l - 5, ".sock"))
            n++;
    }
    closedir(d);
    return n;
}

/* The path of this process's (only) waiter socket in dir. */
static int sock_path(const char *dir, pid_t pid, char *out, size_t cap)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    char prefix[32];
    snprintf(prefix, sizeof prefix, "%ld-", (long)pid);
    int found = -1;
    struct dirent *de;
    while ((de = readdir(d)))
        if (!strncmp(de->d_name, prefix, strlen(prefix))) {
            snprintf(out, cap, "%s/%s", dir, de->d_name);
            found = 0;
        }
    closedir(d);
    return found;
}

/* What a process that died without cleaning up leaves: a socket file with
 * nobody bound to it. */
static int make_stale(const char *dir, const char *name)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", dir, name);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    close(fd);
    return rc;
}

static int wait_readable(int fd, int ms)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    int n = -1;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0) {
        do
            n = epoll_wait(ep, &ev, 1, ms);
        while (n < 0 && errno == EINTR);
    }
    close(ep);
    return n;
}

static int queue_limit(void)
{
    int q = 10;
    FILE *f = fopen("/proc/sys/net/unix/max_dgram_qlen", "re");
    if (f) {
        if (fscanf(f, "%d", &q) != 1)
            q = 10;
        fclose(f);
    }
    return q + 1;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ---------------------------------------------------------------- tests */

TEST("doorbell: dir_for appends .bells")
{
    char *d = sg_bell_dir_for("/var/lib/siogate/siogate.db");
    CHECK_STR(d, "/var/lib/siogate/siogate.db.bells");
    free(d);
    d = sg_bell_dir_for("");
    CHECK_STR(d, ".bells");
    free(d);
    CHECK(sg_bell_dir_for(NULL) == NULL);
}

TEST("doorbell: ringer creates the directory 0700 and has no fd")
{
    struct tmp t;
    CHECK(tmp_make(&t) == 0);
    sg_bell *r = sg_bell_ringer(t.dir);
    CHECK(r != NULL);
    struct stat st;
    CHECK(stat(t.dir, &st) == 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK_INT(st.st_mode & 0777, 0700);
    CHECK_INT(sg_bell_fd(r), -1);
    char buf[16];
    CHECK_INT(sg_bell_recv(r, buf, sizeof buf), -1);
    CHECK_INT(sg_bell_ring(r, "x", 1), 0); /* nobody waits */
    sg_bell_close(r);
    sg_bell_close(NULL);
    tmp_clean(&t);
}

/* the first socket file in dir: its mode, or -1 */
static int sock_mode(const char *dir)
{
    DIR *d = opendir(dir);
    int mode = -1;
    struct dirent *de;
    while (d && mode < 0 && (de = readdir(d))) {
        char p[512];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (lstat(p, &st) == 0 && S_ISSOCK(st.st_mode))
            mode = (int)(st.st_mode & 07777);
    }
    if (d)
        closedir(d);
    return mode;
}

TEST("doorbell: directory 0700 and sockets 0600 whatever the umask; a loose directory is tightened")
{
    struct tmp t;
    CHECK(tmp_make(&t) == 0);
    mode_t old = umask(0); /* the loosest: mkdir and bind would give 0700 and 0777 */
    sg_bell *w = sg_bell_waiter(t.dir);
    CHECK(w != NULL);
    struct stat st;
    CHECK(stat(t.dir, &st) == 0);
    CHECK_INT(st.st_mode & 07777, 0700);
    CHECK_INT(sock_mode(t.dir), 0600);
    sg_bell_close(w);
    umask(0277); /* the tightest that still lets the owner read: mkdir would give 0500 */
    rmdir(t.dir);
    w = sg_bell_waiter(t.dir);
    CHECK(w != NULL);
    CHECK(stat(t.dir, &st) == 0);
    CHECK_INT(st.st_mode & 07777, 0700);
    sg_bell_close(w);
    umask(022);
    CHECK_INT(chmod(t.dir, 0755), 0); /* as an older siogate may have left it */
    sg_bell *r = sg_bell_ringer(t.dir);
    CHECK(r != NULL);
    CHECK(stat(t.dir, &st) == 0);
    CHECK_INT(st.st_mode & 07777, 0700);
    sg_bell_close(r);
    umask(old);
    tmp_clean(&t);
}

TEST("doorbell: waiter fd is non-blocking and close-on-exec; recv 0 when idle")
{
    struct tmp t;
    CHECK(tmp_make(&t) == 0);
    sg_bell *w = sg_bell_waiter(t.dir);
    CHECK(w != NULL);
    int fd = sg_bell_fd(w);
    CHECK(fd >= 0);
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
    char buf[64] = "junk";
    CHECK_INT(sg_bell_recv(w, buf, sizeof buf), 0);
    CHECK_STR(buf, "");
    CHECK_INT(count_socks(t.dir), 1);
    sg_bell_close(w);
    CHECK_INT(count_socks(t.dir), 0); /* close unlinks */
    tmp_clean(&t);
}

TEST("doorbell: ring reaches a waiter in the same process")
{
    struct tmp t;
    CHECK(tmp_make(&t) == 0);
    sg_bell *w = sg_bell_waiter(t.dir);
    sg_bell *r = sg_bell_ringer(t.dir);
    CHECK(w && r);
    const char msg[] = "AAAAAAAAAAAAAAAAAAAA\nBBBBBBBBBBBBBBBBBBBB";
    CHECK_INT(sg_bell_ring(r, msg, sizeof msg - 1), 1);
    CHECK_INT(wait_readable(sg_bell_fd(w), 1000), 1);
    char buf[SG_BELL_MAX + 1];
    CHECK_INT(sg_bell_recv(w, buf, sizeof buf), (int)(sizeof msg - 1));
    CHECK_STR(buf, msg);
    CHECK_INT(sg_bell_recv(w, buf, sizeof buf), 0);
    /* a waiter rings itself too */
    CHECK_INT(sg_bell_ring(w, "self", 4), 1);
    CHECK_INT(sg_bell_recv(w, buf, sizeof buf), 4);
    CHECK_STR(buf, "self");
    sg_bell_close(r);
    sg_bell_close(w);
    tmp_clean(&t);
}

TEST("doorbell: ring reaches a waiter in a forked child (epoll)")
{
    struct tmp t;
    CHECK(tmp_make(&t) == 0);
    int ready[2];
    CHECK(pipe2(ready, O_CLOEXEC) == 0);
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        int status = 1;
        sg_bell *w = sg_bell_waiter(t.dir);
        if (w) {
            ssize_t n = write(ready[1], "r", 1);
            char buf[256];
            if (n == 1 && wait_readable(sg_bell_fd(w), 2000) == 1 &&
                sg_bell_recv(w, buf, sizeof buf) == 14 && !strcmp(buf, "from-parent-42"))
                status = 0;
            sg_bell_close(w);
        }
        close(ready[1]);
        free(t.dir);
        _exit(status);
    }
    close(ready[1]);
    struct pollfd p = {.fd = ready[0], .events = POLLIN};
    char c = 0;
    int ok = poll(&p, 1, 3000) == 1 && read(ready[0], &c, 1) == 1 && c == 'r';
    CHECK(ok);
    close(ready[0]);
    sg_bell *r = sg_bell_ringer(t.dir);
    CHECK(r != NULL);
    if (ok && r)
        CHECK_INT(sg_bell_ring(r, "from-parent-42", 14), 1);
    else
        kill(pid, SIGKILL);
    int st = -1;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    CHECK(WIFEXITED(st));
    CHECK_INT(WEXITSTATUS(st), 0);
    sg_bell_close(r);
    CHECK_INT(count_socks(t.dir), 0); /* the child removed its socket */
    tmp_clean(&t);
}

TEST("doorbell: two waiters both get the message")
{
    struct tmp t;
    CHECK(tmp_make(&t) == 0);
    sg_bell *w1 = sg_bell_waiter(t.dir), *w2 = sg_bell_waiter(t.dir);
    sg_bell *r = sg_bell_ringer(t.dir);
    CHECK(w1 && w2 && r);
    CHECK(sg_bell_fd(w1) != sg_bell_fd(w2));
    CHECK_INT(count_socks(t.dir), 2);
    CHECK_INT(sg_bell_ring(r, "both", 4), 2);
    char buf[64];
    CHECK_INT(sg_bell_recv(w1, buf, sizeof buf), 4);
    CHECK_STR(buf, "both");
    CHECK_INT(sg_bell_recv(w2, buf, sizeof buf), 4);
    CHECK_STR(buf, "both");
    CHECK_INT(sg_bell_recv(w1, buf, sizeof buf), 0);
    CHECK_INT(sg_bell_recv(w2, buf, sizeof buf), 0);
    sg_bell_close(w1);
    CHECK_INT(sg_bell_ring(r, "one", 3), 1);
    CHECK_INT(sg_bell_recv(w2, buf, sizeof buf), 3);
    sg_bell_close(w2);
    sg_bell_close(r);
    tmp_clean(&t);
}

TEST("doorbell: a stale socket file is unlinked by ring and not counted")
{
    struct tmp t;
    CHECK(tmp_make(&t) == 0);
    sg_bell *w = sg_bell_waiter(t.dir); /* also creates the directory */
    sg_bell *r = sg_bell_ringer(t.dir);
    CHECK(w && r);
    CHECK(make_stale(t.dir, "999999-7.sock") == 0);
    CHECK(make_stale(t.dir, "999998-0.sock") == 0);
    CHECK_INT(count_socks(t.dir), 3);
    CHECK_INT(sg_bell_ring(r, "x", 1), 1);
    CHECK_INT(count_socks(t.dir), 1);
    char stale[256];
    snprintf(stale, sizeof stale, "%s/999999-7.sock", t.dir);
    CHECK(access(stale, F_OK) < 0 && errno == ENOENT);
    CHECK_INT(sg_bell_ring(r, "y", 1), 1);
    char buf[8];
    CHECK_INT(sg_bell_recv(w, buf, sizeof buf), 1);
    CHECK_STR(buf, "x");
    CHECK_INT(sg_bell_recv(w, buf, sizeof buf), 1);
    CHECK_STR(buf, "y");
    /* files that are not "*.sock" are none of the doorbell's business */
    char other[256];
    snprintf(other, sizeof other, "%s/notes.txt", t.dir);
    int fd = open(other, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    close(fd);
    CHECK_INT(sg_bell_ring(r, "z", 1), 1);
    CHECK(access(other, F_OK) == 0);
    sg_bell_close(r);
    sg_bell_close(w);
    tmp_clean(&t);
}

TEST("doorbell: a waiter replaces a stale file of its own name")
{
    struct tmp t;
    CHECK(tmp_make(&t) == 0);
    sg_bell *r = sg_bell_ringer(t.dir);
    CHECK(r != NULL);
    /* the next waiter of this process is "<pid>-<n>.sock", n unknown:
     * leave stale files for the next few n */
    sg_bell *probe = sg_bell_waiter(t.dir);
    CHECK(probe != NULL);
    char path[512];
    CHECK(sock_path(t.dir, getpid(), path, sizeof path) == 0);
    char *dash = strrchr(path, '-');
    unsigned n = (unsigned)strtoul(dash + 1, NULL, 10);
    sg_bell_close(probe);
    for (unsigned i = 1; i <= 4; i++) {
        char name[64];
        snprintf(name, sizeof name, "%ld-%u.sock", (long)getpid(), n + i);
        CHECK(make_stale(t.dir, name) == 0);
    }
    sg_bell *w = sg_bell_waiter(t.dir);
    CHECK(w != NULL);
    CHECK_INT(count_socks(t.dir), 4);
    CHECK_INT(sg_bell_ring(r, "m", 1), 1); /* the 3 other stale ones go */
    CHECK_INT(count_socks(t.dir), 1);
    char buf[8];
    CHECK_INT(sg_bell_recv(w, buf, sizeof buf), 1);
    sg_bell_close(w);
    sg_bell_close(r);
    tmp_clean(&t);
}

TEST("doorbell: over-long message becomes \"*\"; SG_BELL_MAX passes intact")
{
    struct tmp t;
    CHECK(tmp_make(&t) == 0);
    sg_bell *w = sg_bell_waiter(t.dir);
    CHECK(w != NULL);
    static char big[SG_BELL_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    char buf[SG_BELL_MAX + 1];
    CHECK_INT(sg_bell_ring(w, big, SG_BELL_MAX), 1);
    CHECK_INT(sg_bell_recv(w, buf, sizeof buf), SG_BELL_MAX);
    CHECK_MEM(buf, strlen(buf), big, (size_t)SG_BELL_MAX);
    CHECK_INT(sg_bell_ring(w, big, SG_BELL_MAX + 1), 1);
    CHECK_INT(sg_bell_recv(w, buf, sizeof buf), 1);
    CHECK_STR(buf, SG_BELL_ALL);
    /* an empty ring also says "*" (an empty datagram would read as nothing) */
    CHECK_INT(sg_bell_ring(w, "", 0), 1);
    CHECK_INT(sg_bell_recv(w, buf, sizeof buf), 1);
    CHECK_STR(buf, "*");
    CHECK_INT(sg_bell_ring(w, NULL, 3), -1);
    /* a datagram longer than the caller's buffer is "*", never a cut id */
    CHECK_INT(sg_bell_ring(w, "abcdefgh", 8), 1);
    CHECK_INT(sg_bell_recv(w, buf, 5), 1);
    CHECK_STR(buf, "*");
    CHECK_INT(sg_bell_recv(w, buf, 1), -1);
    CHECK_INT(sg_bell_recv(w, buf, sizeof buf), 0);
    sg_bell_close(w);
    tmp_clean(&t);
}

TEST("doorbell: a waiter appearing after the listing was cached is reached")
{
    struct tmp t;
    CHECK(tmp_make(&t) == 0);
    sg_bell *r = sg_bell_ringer(t.dir);
    sg_bell *w1 = sg_bell_waiter(t.dir);
    CHECK(r && w1);
    CHECK_INT(sg_bell_ring(r, "a", 1), 1);
    /* let the listing's mtime grow old enough to be trusted, ring again
     * (cache hit), then add a waiter: only the mtime can tell */
    sleep_ms(150);
    CHECK_INT(sg_bell_ring(r, "b", 1), 1);
    CHECK_INT(sg_bell_ring(r, "c", 1), 1);
    sg_bell *w2 = sg_bell_waiter(t.dir);
    CHECK(w2 != NULL);
    CHECK_INT(sg_bell_ring(r, "d", 1), 2);
    char buf[8];
    CHECK_INT(sg_bell_recv(w2, buf, sizeof buf), 1);
    CHECK_STR(buf, "d");
    /* and immediately after a change (same clock tick as the listing) */
    sg_bell *w3 = sg_bell_waiter(t.dir);
    CHECK(w3 != NULL);
    CHECK_INT(sg_bell_ring(r, "e", 1), 3);
    sg_bell *w4 = sg_bell_waiter(t.dir);
    CHECK(w4 != NULL);
    CHECK_INT(sg_bell_ring(r, "f", 1), 4);
    CHECK_INT(sg_bell_recv(w4, buf, sizeof buf), 1);
    CHECK_STR(buf, "f");
    /* a waiter that left is no longer counted */
    sg_bell_close(w3);
    sleep_ms(150);
    CHECK_INT(sg_bell_ring(r, "g", 1), 3);
    sg_bell_close(w4);
    sg_bell_close(w2);
    sg_bell_close(w1);
    sg_bell_close(r);
    tmp_clean(&t);
}

TEST("doorbell: a change in the clock tick of the listing is not missed")
{
    /* Directory mtimes come from a coarse clock: a socket bound in the
     * same tick as the ringer read the listing leaves the mtime as it was.
     * Simulated by putting the mtime back with utimensat(). */
    struct tmp t;
    CHECK(tmp_make(&t) == 0);
    sg_bell *r = sg_bell_ringer(t.dir);
    sg_bell *w1 = sg_bell_waiter(t.dir);
    CHECK(r && w1);
    struct stat st;
    CHECK(stat(t.dir, &st) == 0);
    CHECK_INT(sg_bell_ring(r, "a", 1), 1); /* listing read at mtime M */
    sg_bell *w2 = sg_bell_waiter(t.dir);
    CHECK(w2 != NULL);
    struct timespec ts[2] = {{0, UTIME_OMIT}, st.st_mtim};
    CHECK(utimensat(AT_FDCWD, t.dir, ts, 0) == 0); /* still M */
    CHECK_INT(sg_bell_ring(r, "b", 1), 2);
    char buf[8];
    CHECK_INT(sg_bell_recv(w2, buf, sizeof buf), 1);
    CHECK_STR(buf, "b");
    sg_bell_close(w2);
    sg_bell_close(w1);
    sg_bell_close(r);
    tmp_clean(&t);
}

TEST("doorbell: a full queue drops rings; the waiter is then told \"*\"")
{
    struct tmp t;
    CHECK(tmp_make(&t) == 0);
    sg_bell *w = sg_bell_waiter(t.dir);
    sg_bell *r = sg_bell_ringer(t.dir);
    CHECK(w && r);
    int limit = queue_limit(), reached = 0;
    for (int i = 0; i < limit + 5; i++) {
        char m[16];
        int n = snprintf(m, sizeof m, "id%d", i);
        int rc = sg_bell_ring(r, m, (size_t)n);
        CHECK(rc == 0 || rc == 1);
        reached += rc;
    }
    CHECK_INT(reached, limit);
    /* draining gives the datagrams that fit, in order */
    char buf[64];
    int got = 0, n;
    while ((n = sg_bell_recv(w, buf, sizeof buf)) > 0) {
        char want[16];
        snprintf(want, sizeof want, "id%d", got);
        CHECK_STR(buf, want);
        got++;
    }
    CHECK_INT(n, 0);
    CHECK_INT(got, limit);
    /* the ringer owes the dropped ones a "*", also across a re-read of
     * the listing (a new waiter appeared meanwhile) */
    sg_bell *w2 = sg_bell_waiter(t.dir);
    CHECK(w2 != NULL);
    CHECK_INT(sg_bell_ring(r, "next", 4), 2);
    CHECK_INT(sg_bell_recv(w, buf, sizeof buf), 1);
    CHECK_STR(buf, "*");
    CHECK_INT(sg_bell_recv(w2, buf, sizeof buf), 4);
    CHECK_STR(buf, "next");
    sg_bell_close(w2);
    CHECK_INT(sg_bell_ring(r, "next", 4), 1);
    CHECK_INT(sg_bell_recv(w, buf, sizeof buf), 4);
    CHECK_STR(buf, "next");
    /* a waiter that keeps up is never told "*" */
    for (int i = 0; i < 3 * limit; i++) {
        CHECK_INT(sg_bell_ring(r, "k", 1), 1);
        CHECK_INT(sg_bell_recv(w, buf, sizeof buf), 1);
        CHECK_STR(buf, "k");
        CHECK_INT(sg_bell_recv(w, buf, sizeof buf), 0);
    }
    sg_bell_close(r);
    sg_bell_close(w);
    tmp_clean(&t);
}

TEST("doorbell: a forked child closing its copy keeps the parent's socket")
{
    struct tmp t;
    CHECK(tmp_make(&t) == 0);
    sg_bell *w = sg_bell_waiter(t.dir);
    CHECK(w != NULL);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        sg_bell_close(w);
        free(t.dir);
        _exit(0);
    }
    CHECK(pid > 0);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    CHECK_INT(count_socks(t.dir), 1);
    CHECK_INT(sg_bell_ring(w, "still", 5), 1);
    sg_bell_close(w);
    tmp_clean(&t);
}

TEST("doorbell: socket paths over the sun_path limit fail cleanly")
{
    struct tmp t;
    CHECK(tmp_make(&t) == 0);
    char dir[300];
    /* 98 bytes: room for "/1-0.sock" (a ringer is fine), not for
     * "/<pid>-<n>.sock" with a pid of 3 digits or more */
    int n = snprintf(dir, sizeof dir, "%s/", t.root);
    while (n < 98)
        dir[n++] = 'd';
    dir[n] = '\0';
    sg_bell *r = sg_bell_ringer(dir);
    CHECK(r != NULL);
    if (getpid() >= 100)
        CHECK(sg_bell_waiter(dir) == NULL);
    CHECK_INT(count_socks(dir), 0);
    sg_bell_close(r);
    /* way too long even for a ringer: refused before anything is made */
    while (n < 200)
        dir[n++] = 'e';
    dir[n] = '\0';
    CHECK(sg_bell_ringer(dir) == NULL);
    CHECK(sg_bell_waiter(dir) == NULL);
    CHECK(access(dir, F_OK) < 0);
    CHECK(sg_bell_ringer("") == NULL);
    CHECK(sg_bell_ringer(NULL) == NULL);
    tmp_clean(&t);
}

TEST("doorbell: ringing a removed directory is a local error")
{
    struct tmp t;
    CHECK(tmp_make(&t) == 0);
    sg_bell *r = sg_bell_ringer(t.dir);
    CHECK(r != NULL);
    CHECK_INT(sg_bell_ring(r, "x", 1), 0);
    CHECK(rmdir(t.dir) == 0);
    CHECK_INT(sg_bell_ring(r, "x", 1), -1);
    CHECK_INT(sg_bell_ring(r, "x", 1), -1); /* logged once */
    CHECK(mkdir(t.dir, 0700) == 0);
    sg_bell *w = sg_bell_waiter(t.dir);
    CHECK(w != NULL);
    CHECK_INT(sg_bell_ring(r, "x", 1), 1);
    sg_bell_close(w);
    sg_bell_close(r);
    /* a file where the directory should be */
    char f[128];
    snprintf(f, sizeof f, "%s/file", t.root);
    int fd = open(f, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    close(fd);
    CHECK(sg_bell_ringer(f) == NULL);
    tmp_clean(&t);
}


/* ---------------------------------------------------------------- other hosts (PostgreSQL)
 *
 * These run when SG_TEST_PG holds a conninfo of a server the test may
 * NOTIFY on and terminate siogate-bell backends of (a throwaway cluster).
 * Two bell directories stand for two hosts. Waits are bounded (a few
 * seconds) and only end the waiting; nothing asserts a duration. */

#define PG_SKIP "SG_TEST_PG is not set (a PostgreSQL conninfo, e.g. postgresql://siogate@127.0.0.1:5432/postgres)"

static const char *test_pg(void)
{
    const char *s = getenv("SG_TEST_PG");
    return s && *s ? s : NULL;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The next message of w within ms: its length, 0 when none came. */
static int next_msg(sg_bell *w, char *buf, size_t cap, int ms)
{
    int64_t end = now_ms() + ms;
    for (;;) {
        int n = sg_bell_recv(w, buf, cap);
        if (n != 0)
            return n;
        int64_t left = end - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {sg_bell_fd(w), POLLIN, 0};
        poll(&p, 1, (int)left);
    }
}

/* One statement on a connection of the test's own; the first column of
 * the first row as a number, -1 on failure. */
static long pg_value(const char *pg, const char *sql)
{
    PGconn *c = PQconnectdb(pg);
    long v = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
            v = strtol(PQgetvalue(r, 0, 0), NULL, 10);
        else if (PQresultStatus(r) == PGRES_COMMAND_OK)
            v = 0;
        else
            printf("# %s: %s", sql, PQerrorMessage(c));
        PQclear(r);
    } else {
        printf("# connect: %s", PQerrorMessage(c));
    }
    PQfinish(c);
    return v;
}

/* Terminate (and wait for) the bells' LISTEN or NOTIFY backends, known
 * by their last statement (an application_name in SG_TEST_PG would
 * replace the bells' own). */
static long terminate(const char *pg, const char *which)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
             "WHERE datname = current_database() AND pid <> pg_backend_pid() AND %s",
             !strcmp(which, "siogate-bell-listen") ? "query = 'LISTEN siogate'"
                                                   : "query = 'SELECT pg_notify($1, $2)'");
    return pg_value(pg, sql);
}

static int read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return (int)n;
}

struct ids {
    int n;
    char last[SG_ID_LEN + 1];
};

static void take_id(void *ud, const char *sid)
{
    struct ids *ids = ud;
    ids->n++;
    snprintf(ids->last, sizeof ids->last, "%s", sid);
}

TEST("doorbell/pg: the directory of a PostgreSQL db is /var/lib/siogate/bells")
{
    char *d = sg_bell_dir_for("postgresql://siogate@db1/siogate");
    CHECK_STR(d, SG_BELL_DIR_PG);
    free(d);
    d = sg_bell_dir_for("host=db1 dbname=siogate");
    CHECK_STR(d, "/var/lib/siogate/bells");
    free(d);
    /* a SQLite db: no link to other hosts */
    struct tmp t;
    CHECK(tmp_make(&t) == 0);
    sg_bell *w = sg_bell_waiter_db(t.dir, "/nonexistent/app.db");
    CHECK(w != NULL);
    CHECK_INT(sg_bell_remote_up(w), -1);
    CHECK_INT(sg_bell_ring(w, "x", 1), 1);
    char buf[16];
    CHECK_INT(sg_bell_recv(w, buf, sizeof buf), 1);
    char p[256];
    snprintf(p, sizeof p, "%s/origin", t.dir);
    CHECK(access(p, F_OK) < 0); /* nothing new in the directory */
    sg_bell_close(w);
    tmp_clean(&t);
}

TEST("doorbell/pg: a ring crosses to another directory's waiter through NOTIFY, once")
{
    const char *pg = test_pg();
    if (!pg)
        SKIP(PG_SKIP);
    struct tmp a, b;
    CHECK(tmp_make(&a) == 0 && tmp_make(&b) == 0);
    sg_bell *wa = sg_bell_waiter_db(a.dir, pg), *wb = sg_bell_waiter_db(b.dir, pg);
    sg_bell *ra = sg_bell_ringer_db(a.dir, pg), *rb = sg_bell_ringer_db(b.dir, pg);
    CHECK(wa && wb && ra && rb);
    if (!wa || !wb || !ra || !rb)
        goto out;
    CHECK_INT(sg_bell_remote_up(wa), 1);
    CHECK_INT(sg_bell_remote_up(wb), 1);
    CHECK_INT(sg_bell_remote_up(ra), 0); /* connects on its first ring */
    /* one origin per directory */
    char pa[256], pb[256], oa[64] = "", ob[64] = "";
    snprintf(pa, sizeof pa, "%s/origin", a.dir);
    snprintf(pb, sizeof pb, "%s/origin", b.dir);
    CHECK_INT(read_file(pa, oa, sizeof oa), 22);
    CHECK_INT(read_file(pb, ob, sizeof ob), 22);
    CHECK(oa[0] == '@' && strcmp(oa, ob) != 0);

    char buf[SG_BELL_MAX + 1];
    CHECK_INT(sg_bell_ring(ra, "one-from-a", 10), 1); /* wa by datagram */
    CHECK_INT(sg_bell_remote_up(ra), 1);
    CHECK_INT(next_msg(wb, buf, sizeof buf, 5000), 10);
    CHECK_STR(buf, "one-from-a");
    CHECK_INT(sg_bell_ring(rb, "two-from-b", 10), 1); /* wb by datagram */
    CHECK_INT(sg_bell_ring(rb, "sentinel", 8), 1);
    /* wa: its own ring once (the datagram), b's two by NOTIFY. Had wa not
     * skipped its own notification, "one-from-a" would come twice before
     * "sentinel": a's NOTIFY committed before b's were sent, and one
     * connection delivers them in commit order
     * (sg_bell_recv serves notifications first: the datagram, queued
     * since the ring, is among what is pending once "sentinel" came.) */
    int ones = 0, twos = 0, others = 0, sentinels = 0;
    for (int i = 0; i < 10 && !sentinels; i++) {
        CHECK(next_msg(wa, buf, sizeof buf, 5000) > 0);
        sentinels += !strcmp(buf, "sentinel");
        ones += !strcmp(buf, "one-from-a");
        twos += !strcmp(buf, "two-from-b");
        others += strcmp(buf, "sentinel") && strcmp(buf, "one-from-a") && strcmp(buf, "two-from-b");
    }
    CHECK_INT(sentinels, 1);
    for (int i = 0; i < 10 && sg_bell_recv(wa, buf, sizeof buf) > 0; i++) {
        ones += !strcmp(buf, "one-from-a");
        others += strcmp(buf, "one-from-a") != 0;
    }
    CHECK_INT(ones, 1);
    CHECK_INT(twos, 1);
    CHECK_INT(others, 0);
    /* wb likewise: b's by datagram only, then a's next ring */
    CHECK_INT(next_msg(wb, buf, sizeof buf, 5000), 10);
    CHECK_STR(buf, "two-from-b");
    CHECK_INT(next_msg(wb, buf, sizeof buf, 5000), 8);
    CHECK_STR(buf, "sentinel");
    CHECK_INT(sg_bell_ring(ra, "three", 5), 1);
    CHECK_INT(next_msg(wb, buf, sizeof buf, 5000), 5);
    CHECK_STR(buf, "three");
    /* the longest message crosses intact, and so do "*" and "+" */
    char big[SG_BELL_MAX];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = i % 21 == 20 ? '\n' : (char)('a' + i % 26);
    CHECK_INT(sg_bell_ring(ra, big, sizeof big), 1);
    CHECK_INT(next_msg(wb, buf, sizeof buf, 5000), SG_BELL_MAX);
    CHECK_MEM(buf, strlen(buf), big, sizeof big);
    CHECK_INT(sg_bell_ring(ra, SG_BELL_LOG, 1), 1);
    CHECK_INT(next_msg(wb, buf, sizeof buf, 5000), 1);
    CHECK_STR(buf, SG_BELL_LOG);
    /* anyone's NOTIFY on the channel: a payload without an origin is all
     * message, an empty one is "*", one too long for the buffer is "*";
     * other channels are not heard */
    CHECK_INT(pg_value(pg, "NOTIFY other_channel, 'x'"), 0);
    CHECK_INT(pg_value(pg, "NOTIFY siogate, 'plain'"), 0);
    CHECK_INT(next_msg(wb, buf, sizeof buf, 5000), 5);
    CHECK_STR(buf, "plain");
    CHECK_INT(pg_value(pg, "NOTIFY siogate, ''"), 0);
    CHECK_INT(next_msg(wb, buf, sizeof buf, 5000), 1);
    CHECK_STR(buf, SG_BELL_ALL);
    CHECK_INT(pg_value(pg, "NOTIFY siogate, '@not-an-origin\nid'"), 0);
    CHECK_INT(next_msg(wb, buf, sizeof buf, 5000), 17);
    CHECK_STR(buf, "@not-an-origin\nid");
    CHECK_INT(pg_value(pg, "SELECT 0 FROM pg_notify('siogate', repeat('x', 7000))"), 0);
    CHECK_INT(next_msg(wb, buf, sizeof buf, 5000), 1);
    CHECK_STR(buf, SG_BELL_ALL);
    char small[8];
    CHECK_INT(pg_value(pg, "NOTIFY siogate, 'abcdefgh'"), 0);
    CHECK_INT(next_msg(wb, small, sizeof small, 5000), 1);
    CHECK_STR(small, SG_BELL_ALL);
    /* wa heard them too */
    while (next_msg(wa, buf, sizeof buf, 200) > 0)
        ;
    /* through sg_bell_drain: the ids are taken, and a notification is
     * not counted as a datagram (that count tells of a full queue) */
    CHECK_INT(sg_bell_ring(ra, "AAAAAAAAAAAAAAAAAAAA\nBBBBBBBBBBBBBBBBBBBB", 41), 1);
    CHECK_INT(sg_bell_ring(ra, SG_BELL_ALL, 1), 1);
    struct ids ids = {0, ""};
    bool all = false, log = false;
    int datagrams = 0;
    int64_t end = now_ms() + 5000;
    while (!all && now_ms() < end) {
        struct pollfd p = {sg_bell_fd(wb), POLLIN, 0};
        poll(&p, 1, 100);
        int n = sg_bell_drain(wb, 16, take_id, &ids, &all, &log);
        CHECK(n >= 0);
        datagrams += n > 0 ? n : 0;
    }
    CHECK(all);
    CHECK(!log);
    CHECK_INT(ids.n, 2);
    CHECK_STR(ids.last, "BBBBBBBBBBBBBBBBBBBB");
    CHECK_INT(datagrams, 0);
out:
    sg_bell_close(ra);
    sg_bell_close(rb);
    sg_bell_close(wa);
    sg_bell_close(wb);
    tmp_clean(&a);
    tmp_clean(&b);
}

TEST("doorbell/pg: a LISTEN connection terminated: the waiter reconnects and says * once")
{
    const char *pg = test_pg();
    if (!pg)
        SKIP(PG_SKIP);
    struct tmp a, b;
    CHECK(tmp_make(&a) == 0 && tmp_make(&b) == 0);
    sg_bell *w = sg_bell_waiter_db(a.dir, pg), *r = sg_bell_ringer_db(b.dir, pg);
    CHECK(w && r);
    if (!w || !r)
        goto out;
    CHECK_INT(sg_bell_remote_up(w), 1);
    char buf[SG_BELL_MAX + 1];
    CHECK_INT(sg_bell_ring(r, "before", 6), 0);
    CHECK_INT(next_msg(w, buf, sizeof buf, 5000), 6);
    CHECK_STR(buf, "before");
    CHECK(terminate(pg, "siogate-bell-listen") >= 1);
    /* what was sent while it was away is gone: it says so */
    CHECK_INT(next_msg(w, buf, sizeof buf, 10000), 1);
    CHECK_STR(buf, SG_BELL_ALL);
    CHECK_INT(sg_bell_remote_up(w), 1);
    /* once: the next message is the next ring */
    CHECK_INT(sg_bell_ring(r, "after", 5), 0);
    CHECK_INT(next_msg(w, buf, sizeof buf, 5000), 5);
    CHECK_STR(buf, "after");
    CHECK_INT(sg_bell_recv(w, buf, sizeof buf), 0);
out:
    sg_bell_close(r);
    sg_bell_close(w);
    tmp_clean(&a);
    tmp_clean(&b);
}

TEST("doorbell/pg: a NOTIFY connection terminated: its ring is lost, the next one says *")
{
    const char *pg = test_pg();
    if (!pg)
        SKIP(PG_SKIP);
    struct tmp a, b;
    CHECK(tmp_make(&a) == 0 && tmp_make(&b) == 0);
    sg_bell *w = sg_bell_waiter_db(a.dir, pg), *r = sg_bell_ringer_db(b.dir, pg);
    CHECK(w && r);
    if (!w || !r)
        goto out;
    char buf[SG_BELL_MAX + 1];
    CHECK_INT(sg_bell_ring(r, "first", 5), 0);
    CHECK_INT(next_msg(w, buf, sizeof buf, 5000), 5);
    CHECK_STR(buf, "first");
    CHECK(terminate(pg, "siogate-bell-notify") >= 1);
    /* rings until one gets through (after the reconnect's backoff): what
     * w hears first is "*", for the rings that were lost */
    int n = 0;
    for (int i = 0; i < 100 && n == 0; i++) {
        sg_bell_ring(r, "lost?", 5);
        n = next_msg(w, buf, sizeof buf, 50);
    }
    CHECK_INT(n, 1);
    CHECK_STR(buf, SG_BELL_ALL);
    CHECK_INT(sg_bell_remote_up(r), 1);
    /* and then the rings as they are */
    while (next_msg(w, buf, sizeof buf, 200) > 0) /* the last "lost?" may follow */
        ;
    CHECK_INT(sg_bell_ring(r, "again", 5), 0);
    CHECK_INT(next_msg(w, buf, sizeof buf, 5000), 5);
    CHECK_STR(buf, "again");
out:
    sg_bell_close(r);
    sg_bell_close(w);
    tmp_clean(&a);
    tmp_clean(&b);
}

TEST("doorbell/pg: a ringer closed owing a ring sends * before it goes")
{
    const char *pg = test_pg();
    if (!pg)
        SKIP(PG_SKIP);
    struct tmp a, b;
    CHECK(tmp_make(&a) == 0 && tmp_make(&b) == 0);
    sg_bell *w = sg_bell_waiter_db(a.dir, pg), *r = sg_bell_ringer_db(b.dir, pg);
    CHECK(w && r);
    if (!w || !r)
        goto out;
    char buf[SG_BELL_MAX + 1];
    CHECK_INT(sg_bell_ring(r, "first", 5), 0);
    CHECK_INT(next_msg(w, buf, sizeof buf, 5000), 5);
    CHECK(terminate(pg, "siogate-bell-notify") >= 1);
    /* a ring on the dead connection is lost (owed), and nothing retries
     * it until the next ring, or the close */
    sg_bell_ring(r, "lost", 4);
    CHECK_INT(next_msg(w, buf, sizeof buf, 300), 0);
    sg_bell_close(r);
    r = NULL;
    CHECK_INT(next_msg(w, buf, sizeof buf, 5000), 1);
    CHECK_STR(buf, SG_BELL_ALL);
out:
    sg_bell_close(r);
    sg_bell_close(w);
    tmp_clean(&a);
    tmp_clean(&b);
}

TEST("doorbell/pg: a forked child closing its copy leaves the parent's LISTEN alone")
{
    const char *pg = test_pg();
    if (!pg)
        SKIP(PG_SKIP);
    struct tmp a, b;
    CHECK(tmp_make(&a) == 0 && tmp_make(&b) == 0);
    sg_bell *w = sg_bell_waiter_db(a.dir, pg), *r = sg_bell_ringer_db(b.dir, pg);
    CHECK(w && r);
    if (!w || !r)
        goto out;
    char buf[SG_BELL_MAX + 1];
    CHECK_INT(sg_bell_ring(r, "one", 3), 0); /* r's connection is up too */
    CHECK_INT(next_msg(w, buf, sizeof buf, 5000), 3);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        sg_bell_close(r);
        sg_bell_close(w);
        _exit(0);
    }
    int status = -1;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && status == 0);
    /* both connections still serve the parent: no "*" (no reconnect),
     * and w's fd wakes for the notification (its epoll set, shared with
     * the child, still holds the LISTEN socket) */
    CHECK_INT(sg_bell_ring(r, "two", 3), 0);
    CHECK_INT(wait_readable(sg_bell_fd(w), 5000), 1);
    CHECK_INT(next_msg(w, buf, sizeof buf, 5000), 3);
    CHECK_STR(buf, "two");
    CHECK_INT(sg_bell_remote_up(w), 1);
    CHECK_INT(sg_bell_remote_up(r), 1);
out:
    sg_bell_close(r);
    sg_bell_close(w);
    tmp_clean(&a);
    tmp_clean(&b);
}

TEST("doorbell/pg: a directory whose origin cannot be read: an origin of the process's own")
{
    struct tmp t;
    CHECK(tmp_make(&t) == 0);
    CHECK(mkdir(t.dir, 0700) == 0);
    char p[256];
    snprintf(p, sizeof p, "%s/origin", t.dir);
    CHECK(symlink("/dev/null", p) == 0); /* not followed: unusable */
    const char *pg = test_pg();
    sg_bell *w = sg_bell_waiter_db(t.dir, pg ? pg : "postgresql://siogate@127.0.0.1:1/none");
    sg_bell *r = sg_bell_ringer_db(t.dir, pg ? pg : "postgresql://siogate@127.0.0.1:1/none");
    CHECK(w != NULL && r != NULL);
    if (w && r && pg) {
        /* two origins: w hears r's ring twice (the datagram, and the
         * notification it cannot tell from another host's) */
        char buf[64];
        CHECK_INT(sg_bell_ring(r, "twice", 5), 1);
        CHECK_INT(next_msg(w, buf, sizeof buf, 5000), 5);
        CHECK_STR(buf, "twice");
        CHECK_INT(next_msg(w, buf, sizeof buf, 5000), 5);
        CHECK_STR(buf, "twice");
    }
    sg_bell_close(r);
    sg_bell_close(w);
    tmp_clean(&t);
}

/* A TCP port that accepts connections and never answers (a server that
 * hangs), or, with listen_too false, one that refuses them (a server that
 * is down). The fd to close afterwards, the port in *port. */
static int dead_server(bool answer_never, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0 ||
        (answer_never && listen(fd, 64) < 0)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd; /* bound but not listening: connections are refused */
}

TEST("doorbell/pg: a server that hangs or is down: rings return, waiters do not spin")
{
    /* needs no server: runs without SG_TEST_PG too */
    for (int hang = 1; hang >= 0; hang--) {
        struct tmp t;
        CHECK(tmp_make(&t) == 0);
        int port = 0, fd = dead_server(hang, &port);
        CHECK(fd >= 0);
        char pg[128];
        snprintf(pg, sizeof pg, "postgresql://siogate@127.0.0.1:%d/postgres", port);
        const char *what = hang ? "hangs" : "is down";

        sg_bell *r = sg_bell_ringer_db(t.dir, pg);
        CHECK(r != NULL);
        int64_t t0 = now_ms();
        CHECK_INT(sg_bell_ring(r, "x", 1), 0);
        int64_t t1 = now_ms();
        for (int i = 0; i < 100; i++)
            CHECK_INT(sg_bell_ring(r, "y", 1), 0);
        int64_t t2 = now_ms();
        CHECK_INT(sg_bell_remote_up(r), 0);
        printf("# a server that %s: the first ring took %lld ms, the next 100 %lld ms\n", what,
               (long long)(t1 - t0), (long long)(t2 - t1));

        /* a waiter opens (its LISTEN is retried), hears its own host... */
        sg_bell *w = sg_bell_waiter_db(t.dir, pg);
        CHECK(w != NULL);
        if (w) {
            CHECK_INT(sg_bell_remote_up(w), 0);
            CHECK_INT(sg_bell_ring(r, "local", 5), 1);
            char buf[64];
            CHECK_INT(next_msg(w, buf, sizeof buf, 1000), 5);
            CHECK_STR(buf, "local");
            /* ...and its fd is not readable for nothing: over one second
             * it wakes for the retries only (a spin would be millions) */
            int wakes = 0, empty = 0;
            int64_t end = now_ms() + 1000;
            for (int64_t left; (left = end - now_ms()) > 0;) {
                struct pollfd p = {sg_bell_fd(w), POLLIN, 0};
                if (poll(&p, 1, (int)left) == 1) {
                    wakes++;
                    if (sg_bell_recv(w, buf, sizeof buf) == 0)
                        empty++;
                }
            }
            printf("# a server that %s: the waiter woke %d times in 1 s (%d with nothing)\n",
                   what, wakes, empty);
            CHECK(wakes < 100);
            CHECK_INT(sg_bell_remote_up(w), 0);
        }
        sg_bell_close(w);
        sg_bell_close(r);
        if (fd >= 0)
            close(fd);
        tmp_clean(&t);
    }
}

int main(void)
{
    sg_log_init("test_doorbell", SG_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    return tap_run();
}
