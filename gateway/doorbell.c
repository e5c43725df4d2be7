/* doorbell.c - cross-process wake-ups over unix datagram sockets.
 *
 * Layout: DIR/<pid>-<n>.sock, one per waiter (n counts the waiters opened
 * by one process). A ring is one sendto() per socket in DIR, from one
 * non-blocking socket, to addresses prepared when the listing was read: the
 * steady state costs one stat(DIR) plus one sendto() per waiter and
 * allocates nothing.
 *
 * Measured with tests/unit/bench_doorbell.c (2 vCPU VM, Linux 6.18, three
 * runs): ring -> recv in another process blocked in epoll_wait, 2,000 rings
 * 1 ms apart: p50 20-23 us, p99 56-78 us (0.43 ms with the machine busy
 * building; max 0.15-11 ms: scheduling);
 * back to back: p50 17-18 us, p99 110-120 us. sg_bell_ring() costs p50
 * 1.1 us with no waiter (the stat), 3.3-4 us with one, 17-20 us with
 * eight (~2 us per sendto by path; a connected socket per waiter would
 * take ~1.5 us off each, at one fd per waiter per ringer). An idle waiter
 * in epoll_wait with a 1 s re-check timeout: 0.4-0.5 ms CPU in 10 s
 * (0.005 %); without the timeout, none.
 *
 * Things the kernel decides, which shape the code below:
 *
 * - A unix datagram socket queues at most net.unix.max_dgram_qlen + 1
 *   datagrams (Linux default 10, so 11); the next sendto() fails with
 *   EAGAIN whatever SO_RCVBUF says. A ring dropped that way loses the ids
 *   it carried until the waiter's re-check timeout. The ringer remembers
 *   the drop per waiter ("owed") and sends "*" instead of its next message
 *   to that waiter, which shortens the loss to "until the next ring". A
 *   waiter that reads 11 or more datagrams in one drain may have missed
 *   some (of the last ring of a burst); whether that is worth a re-check of
 *   everything, and how often, is the caller's call (parked.c makes it,
 *   rate-limited). A datagram longer than the caller's buffer is returned
 *   as "*" rather than as a cut list.
 * - Queued datagrams are charged to the *sender's* send buffer until read,
 *   so a waiter that is alive but not reading (stopped, wedged) holds up to
 *   11 datagrams of every ringer's buffer; with the default 208 KB and 4 KB
 *   messages, two such waiters were enough to make every further ring fail
 *   with EAGAIN. The ringer asks for SO_SNDBUF 1 MB (the kernel caps it at
 *   net.core.wmem_max, doubled).
 * - Directory mtimes come from a coarse clock (one tick, 1-10 ms): a
 *   socket bound in the same tick as the listing was read leaves the mtime
 *   unchanged. A listing whose mtime is that close to the time it was read
 *   is "racy" and is read again on the next ring, until it is not (as git
 *   does for its index).
 *
 * Threads: one sg_bell per thread at a time (see doorbell.h); the only
 * shared state is the atomic per-process counter of waiter names. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "doorbell.h"

#include "doorbell_int.h"
#include "log.h"
#include "store.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* strerror() is not thread-safe; the GNU strerror_r() returns a string
 * that lives as long as the compound literal: the enclosing block. */
#define ERRSTR(e) strerror_r((e), (char[128]){0}, 128)

#define BELL_SUFFIX ".sock"
#define BELL_RCVBUF (256 * 1024)
#define BELL_SNDBUF (1024 * 1024)
/* Listing freshness: an mtime within this distance of the time the listing
 * was read may still change without changing its value. Filesystems that
 * store whole seconds (tv_nsec == 0) get the longer bound. */
#define BELL_RACY_NS (50L * 1000 * 1000)
#define BELL_RACY_COARSE_NS (2100L * 1000 * 1000)

struct bell_peer {
    struct sockaddr_un addr;
    socklen_t addrlen;
    unsigned char dead; /* ENOENT/ECONNREFUSED/...: skipped until the next listing */
    unsigned char owed; /* a ring to it was dropped: its next datagram is "*" */
};

struct sg_bell {
    char *dir;
    int fd;             /* sends; a waiter's is also bound and receives */
    char *path;         /* the waiter's own socket file; NULL for a ringer */
    pid_t owner;        /* the process that bound path: only it unlinks it */

    struct bell_peer *peers; /* the cached listing */
    size_t npeers, cappeers;
    int listed;         /* peers reflects the directory as of (dev, ino, mtime) */
    dev_t dir_dev;
    ino_t dir_ino;
    struct timespec mtime;
    int racy;           /* mtime too close to the read: read again next time */
    int failing;        /* a local error was logged; quiet until it clears */
    bell_remote *remote; /* NOTIFY/LISTEN for other hosts (PostgreSQL), or NULL */
};

static atomic_uint bell_seq;

char *sg_bell_dir_for(const char *db_path)
{
    if (!db_path) {
        errno = EINVAL;
        return NULL;
    }
    if (sg_store_is_pg(db_path))
        return strdup(SG_BELL_DIR_PG);
    size_t n = strlen(db_path);
    char *s = malloc(n + sizeof ".bells");
    if (!s)
        return NULL;
    memcpy(s, db_path, n);
    memcpy(s + n, ".bells", sizeof ".bells");
    return s;
}

/* Build "dir/name" into a sockaddr_un; -1 when it does not fit. */
static int bell_addr(struct sockaddr_un *sa, socklen_t *salen, const char *dir,
                     const char *name)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    int n = snprintf(sa->sun_path, sizeof sa->sun_path, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof sa->sun_path)
        return -1;
    *salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
    return 0;
}

static sg_bell *bell_open(const char *dir)
{
    sg_bell *b = NULL;
    struct stat st;

    if (!dir || !*dir) {
        sg_error("doorbell: no directory given");
        errno = EINVAL;
        return NULL;
    }
    /* the shortest socket name is "1-0.sock" */
    if (strlen(dir) + sizeof "/1-0" BELL_SUFFIX > sizeof ((struct sockaddr_un *)0)->sun_path) {
        sg_error("doorbell: directory %s is too long for unix socket paths "
                 "(%zu bytes; a socket path holds at most %zu)", dir, strlen(dir),
                 sizeof ((struct sockaddr_un *)0)->sun_path - 1);
        errno = ENAMETOOLONG;
        return NULL;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        int e = errno;
        sg_error("doorbell: cannot create %s: %s", dir, ERRSTR(e));
        errno = e;
        return NULL;
    }
    if (stat(dir, &st) < 0) {
        int e = errno;
        sg_error("doorbell: %s: %s", dir, ERRSTR(e));
        errno = e;
        return NULL;
    }
    if (!S_ISDIR(st.st_mode)) {
        sg_error("doorbell: %s exists and is not a directory", dir);
        errno = ENOTDIR;
        return NULL;
    }
    /* only the store's user may ring or listen: 0700 whatever the umask
     * (which can only have taken bits away from mkdir's mode), also for a
     * directory an older siogate made with the umask's mode */
    if ((st.st_mode & 07777) != 0700 && st.st_uid == geteuid()) {
        if (chmod(dir, 0700) < 0)
            sg_warn("doorbell: chmod 0700 %s: %s", dir, ERRSTR(errno));
        else if (st.st_mode & 077)
            sg_info("doorbell: %s was mode %04o: made 0700", dir, (unsigned)(st.st_mode & 07777));
    }

    b = calloc(1, sizeof *b);
    if (!b)
        goto nomem;
    b->fd = -1;
    b->dir = strdup(dir);
    if (!b->dir)
        goto nomem;
    b->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (b->fd < 0) {
        int e = errno;
        sg_error("doorbell: socket: %s", ERRSTR(e));
        errno = e;
        goto fail;
    }
    int sndbuf = BELL_SNDBUF;
    if (setsockopt(b->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) < 0)
        sg_warn("doorbell: SO_SNDBUF: %s", ERRSTR(errno));
    return b;

nomem:
    sg_error("doorbell: out of memory");
    errno = ENOMEM;
fail:;
    int e = errno;
    sg_bell_close(b);
    errno = e;
    return NULL;
}

sg_bell *sg_bell_ringer(const char *dir)
{
    return bell_open(dir);
}

sg_bell *sg_bell_waiter(const char *dir)
{
    sg_bell *b = bell_open(dir);
    if (!b)
        return NULL;

    char name[64];
    struct sockaddr_un sa;
    socklen_t salen;
    pid_t pid = getpid();
    snprintf(name, sizeof name, "%ld-%u" BELL_SUFFIX, (long)pid,
             atomic_fetch_add(&bell_seq, 1));
    if (bell_addr(&sa, &salen, dir, name) < 0) {
        sg_error("doorbell: socket path %s/%s is too long (%zu bytes; "
                 "a unix socket path holds at most %zu)", dir, name,
                 strlen(dir) + 1 + strlen(name), sizeof sa.sun_path - 1);
        errno = ENAMETOOLONG;
        goto fail;
    }
    /* a file of this name is left by an earlier process with our pid */
    if (unlink(sa.sun_path) < 0 && errno != ENOENT) {
        sg_error("doorbell: cannot remove stale %s: %s", sa.sun_path, ERRSTR(errno));
        goto fail;
    }
    if (bind(b->fd, (struct sockaddr *)&sa, salen) < 0) {
        sg_error("doorbell: bind %s: %s", sa.sun_path, ERRSTR(errno));
        goto fail;
    }
    /* owner only (the directory keeps others out as well); a failure
     * leaves the directory's protection, so it is not fatal */
    if (chmod(sa.sun_path, 0600) < 0)
        sg_warn("doorbell: chmod 0600 %s: %s", sa.sun_path, ERRSTR(errno));
    b->owner = pid;
    b->path = strdup(sa.sun_path);
    if (!b->path) {
        /* not yet recorded, so sg_bell_close would leave the file behind */
        int e = errno;
        unlink(sa.sun_path);
        sg_error("doorbell: out of memory");
        errno = e;
        goto fail;
    }
    int rcvbuf = BELL_RCVBUF;
    if (setsockopt(b->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0)
        sg_warn("doorbell: SO_RCVBUF: %s", ERRSTR(errno));
    return b;

fail:;
    int e = errno;
    sg_bell_close(b);
    errno = e;
    return NULL;
}

sg_bell *sg_bell_ringer_db(const char *dir, const char *db)
{
    sg_bell *b = bell_open(dir);
    if (b && sg_store_is_pg(db) && !(b->remote = bell_remote_open(db, dir, -1))) {
        sg_bell_close(b);
        return NULL;
    }
    return b;
}

sg_bell *sg_bell_waiter_db(const char *dir, const char *db)
{
    sg_bell *b = sg_bell_waiter(dir);
    if (b && sg_store_is_pg(db) && !(b->remote = bell_remote_open(db, dir, b->fd))) {
        sg_bell_close(b);
        return NULL;
    }
    return b;
}

int sg_bell_fd(const sg_bell *b)
{
    if (b && b->remote && b->path)
        return bell_remote_fd(b->remote);
    return b && b->path ? b->fd : -1;
}

int sg_bell_remote_up(const sg_bell *b)
{
    return b && b->remote ? bell_remote_up(b->remote) : -1;
}

static int name_is_bell(const char *name)
{
    size_t n = strlen(name), s = sizeof BELL_SUFFIX - 1;
    return name[0] != '.' && n > s && memcmp(name + n - s, BELL_SUFFIX, s) == 0;
}

/* Read the directory into b->peers (only here does ringing allocate). */
static int bell_list(sg_bell *b)
{
    int dfd = open(b->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    DIR *d = fdopendir(dfd);
    if (!d) {
        int e = errno;
        close(dfd);
        errno = e;
        return -1;
    }
    struct bell_peer *peers = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno)
                goto out;
            break;
        }
        if (!name_is_bell(de->d_name))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct bell_peer *p = realloc(peers, ncap * sizeof *p);
            if (!p)
                goto out;
            peers = p;
            cap = ncap;
        }
        struct bell_peer *p = &peers[n];
        if (bell_addr(&p->addr, &p->addrlen, b->dir, de->d_name) < 0) {
            sg_warn("doorbell: %s/%s: path too long for a unix socket, skipped",
                    b->dir, de->d_name);
            continue;
        }
        p->dead = 0;
        p->owed = 0;
        /* a drop owed to a waiter survives the re-read */
        for (size_t i = 0; i < b->npeers; i++)
            if (b->peers[i].owed &&
                strcmp(b->peers[i].addr.sun_path, p->addr.sun_path) == 0) {
                p->owed = 1;
                break;
            }
        n++;
    }
    free(b->peers);
    b->peers = peers;
    b->npeers = n;
    b->cappeers = cap;
    peers = NULL;
    rc = 0;
out:;
    int e = errno;
    free(peers);
    closedir(d);
    errno = e;
    return rc;
}

static int64_t ts_ns(const struct timespec *t)
{
    return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/* Make b->peers current: one stat() when nothing changed. */
static int bell_refresh(sg_bell *b)
{
    struct stat st;
    if (stat(b->dir, &st) < 0)
        return -1;
    if (b->listed && !b->racy && st.st_dev == b->dir_dev && st.st_ino == b->dir_ino &&
        st.st_mtim.tv_sec == b->mtime.tv_sec && st.st_mtim.tv_nsec == b->mtime.tv_nsec)
        return 0;

    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (bell_list(b) < 0)
        return -1;
    b->listed = 1;
    b->dir_dev = st.st_dev;
    b->dir_ino = st.st_ino;
    b->mtime = st.st_mtim;
    /* a change after the stat above gets an mtime of (coarse) now or later;
     * trust the listing only when that cannot equal st_mtim. An mtime far
     * in the future (the clock was set back) cannot be met again either. */
    int64_t age = ts_ns(&now) - ts_ns(&st.st_mtim);
    int64_t bound = st.st_mtim.tv_nsec == 0 ? BELL_RACY_COARSE_NS : BELL_RACY_NS;
    b->racy = age > -bound && age < bound;
    return 0;
}

static int ring(sg_bell *b, const char *msg, size_t len, bool others);

int sg_bell_ring(sg_bell *b, const char *msg, size_t len) { return ring(b, msg, len, false); }

int sg_bell_ring_others(sg_bell *b, const char *msg, size_t len)
{
    return ring(b, msg, len, true);
}

static int ring_local(sg_bell *b, const char *msg, size_t len, bool others);

static int ring(sg_bell *b, const char *msg, size_t len, bool others)
{
    if (!b || (!msg && len)) {
        errno = EINVAL;
        return -1;
    }
    /* an empty datagram would read as "nothing pending": say "*" instead */
    if (len == 0 || len > SG_BELL_MAX) {
        msg = SG_BELL_ALL;
        len = sizeof SG_BELL_ALL - 1;
    }
    /* this host first (microseconds), then the others (a round trip) */
    int reached = ring_local(b, msg, len, others);
    if (b->remote)
        bell_remote_ring(b->remote, msg, len);
    return reached;
}

static int ring_local(sg_bell *b, const char *msg, size_t len, bool others)
{
    if (bell_refresh(b) < 0) {
        if (!b->failing)
            sg_error("doorbell: cannot list %s: %s", b->dir, ERRSTR(errno));
        b->failing = 1;
        return -1;
    }
    if (b->failing)
        sg_info("doorbell: %s is listed again", b->dir);
    b->failing = 0;

    int reached = 0;
    for (size_t i = 0; i < b->npeers; i++) {
        struct bell_peer *p = &b->peers[i];
        if (p->dead || (others && b->path && strcmp(p->addr.sun_path, b->path) == 0))
            continue;
        const char *m = p->owed ? SG_BELL_ALL : msg;
        size_t mlen = p->owed ? sizeof SG_BELL_ALL - 1 : len;
        ssize_t n;
        do
            n = sendto(b->fd, m, mlen, MSG_DONTWAIT | MSG_NOSIGNAL,
                       (const struct sockaddr *)&p->addr, p->addrlen);
        while (n < 0 && errno == EINTR);
        if (n >= 0) {
            p->owed = 0;
            reached++;
            continue;
        }
        switch (errno) {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
        case ENOBUFS:
            /* its queue (or our send buffer) is full: it will be woken by
             * what is queued, and told "*" next time */
            p->owed = 1;
            break;
        case ECONNREFUSED:
            /* nobody bound to it any more: the owner died */
            if (unlink(p->addr.sun_path) < 0 && errno != ENOENT)
                sg_warn("doorbell: cannot remove dead %s: %s", p->addr.sun_path,
                        ERRSTR(errno));
            else
                sg_debug("doorbell: removed dead %s", p->addr.sun_path);
            p->dead = 1;
            break;
        case ENOENT:
            p->dead = 1; /* closed and removed since the listing */
            break;
        default:
            /* not ours to remove (another user's, a stream socket...) */
            sg_warn("doorbell: %s: %s; skipped until the directory changes",
                    p->addr.sun_path, ERRSTR(errno));
            p->dead = 1;
            break;
        }
    }
    return reached;
}

static int recv_any(sg_bell *b, char *buf, size_t cap, bool *remote);

int sg_bell_recv(sg_bell *b, char *buf, size_t cap)
{
    bool remote;
    return recv_any(b, buf, cap, &remote);
}

/* sg_bell_recv, saying whether the message came from another host */
static int recv_any(sg_bell *b, char *buf, size_t cap, bool *remote)
{
    *remote = false;
    if (!b || !b->path || !buf || cap < 2) {
        errno = EINVAL;
        return -1;
    }
    if (b->remote) {
        int n = bell_remote_recv(b->remote, buf, cap);
        if (n > 0) {
            *remote = true;
            return n;
        }
    }
    size_t max = cap - 1;
    if (max > INT_MAX)
        max = INT_MAX;
    for (;;) {
        ssize_t n = recv(b->fd, buf, max, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                buf[0] = '\0';
                return 0;
            }
            return -1;
        }
        if (n == 0)
            continue; /* an empty datagram says nothing */
        if ((size_t)n > max) {
            /* did not fit: a cut list would name a wrong id */
            memcpy(buf, SG_BELL_ALL, sizeof SG_BELL_ALL);
            return (int)(sizeof SG_BELL_ALL - 1);
        }
        buf[n] = '\0';
        return (int)n;
    }
}

void sg_bell_close(sg_bell *b)
{
    if (!b)
        return;
    /* a forked child closing its copy must not remove the parent's socket */
    if (b->path && b->owner == getpid())
        unlink(b->path);
    bell_remote_close(b->remote); /* before fd: its epoll set holds fd */
    if (b->fd >= 0)
        close(b->fd);
    free(b->path);
    free(b->dir);
    free(b->peers);
    free(b);
}

int sg_bell_drain(sg_bell *b, int max, void (*fn)(void *ud, const char *sid), void *ud,
                  bool *all, bool *log)
{
    char buf[SG_BELL_MAX + 1];
    int count = 0, remote_count = 0, n = 0;
    bool remote = false;
    /* datagrams are counted (a full queue drops them); notifications from
     * other hosts are not, but are bounded by max as well */
    while (count < max && remote_count < max && (n = recv_any(b, buf, sizeof buf, &remote)) > 0) {
        if (remote)
            remote_count++;
        else
            count++;
        for (const char *s = buf, *end = buf + n; s < end;) {
            const char *nl = memchr(s, '\n', (size_t)(end - s));
            const char *e = nl ? nl : end;
            size_t len = (size_t)(e - s);
            if (len == 1 && s[0] == SG_BELL_ALL[0]) {
                *all = true;
            } else if (len == 1 && s[0] == SG_BELL_LOG[0]) {
                *log = true;
            } else if (len == SG_ID_LEN) {
                char sid[SG_ID_LEN + 1];
                memcpy(sid, s, len);
                sid[len] = '\0';
                fn(ud, sid);
            }
            s = e + 1;
        }
    }
    return n < 0 ? -1 : count;
}

int sg_bell_queue_len(void)
{
    int v = 10;
    FILE *f = fopen("/proc/sys/net/unix/max_dgram_qlen", "re");
    if (f) {
        if (fscanf(f, "%d", &v) != 1 || v < 1)
            v = 10;
        fclose(f);
    }
    return v;
}
