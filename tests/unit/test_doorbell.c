/* test_doorbell.c - unix datagram doorbell: same process, forked
 * processes, dead sockets, limits, listing refresh. Every test works in its
 * own mkdtemp() directory under /tmp and removes it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "doorbell.h"
#include "log.h"
#include "tap.h"

#include <dirent.h>
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

int main(void)
{
    sg_log_init("test_doorbell", SG_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    return tap_run();
}
