/* daemon.c - the listening socket and the descriptor limit of the siogate
 * daemons. See daemon.h. */
#include "daemon.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

static int listen_unix(const char *prog, const char *path, char **created)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!*path || strlen(path) >= sizeof sa.sun_path) {
        fprintf(stderr, "%s: --listen unix:%s: path empty or too long (max %zu)\n", prog, path,
                sizeof sa.sun_path - 1);
        return -2;
    }
    strcpy(sa.sun_path, path);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            fprintf(stderr, "%s: %s exists and is not a socket\n", prog, path);
            return -1;
        }
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0) {
            fprintf(stderr, "%s: socket: %s\n", prog, strerror(errno));
            return -1;
        }
        int c = connect(probe, (struct sockaddr *)&sa, sizeof sa);
        int err = errno;
        close(probe);
        if (c == 0) {
            fprintf(stderr, "%s: %s: a running process listens there\n", prog, path);
            return -1;
        }
        if (err != ECONNREFUSED) {
            fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(err));
            return -1;
        }
        if (unlink(path) < 0) { /* stale socket of a dead process */
            fprintf(stderr, "%s: removing stale %s: %s\n", prog, path, strerror(errno));
            return -1;
        }
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "%s: socket: %s\n", prog, strerror(errno));
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        fprintf(stderr, "%s: bind %s: %s\n", prog, path, strerror(errno));
        close(fd);
        return -1;
    }
    /* the web server may run as another user: 0666, protect the directory */
    if (chmod(path, 0666) < 0 || listen(fd, SOMAXCONN) < 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    *created = strdup(path);
    if (!*created) {
        fprintf(stderr, "%s: out of memory\n", prog);
        close(fd);
        unlink(path);
        return -1;
    }
    return fd;
}

static int listen_tcp(const char *prog, const char *spec, bool *ipv6)
{
    const char *colon = strrchr(spec, ':');
    if (!colon || !colon[1]) {
        fprintf(stderr, "%s: --listen %s: expected unix:PATH or HOST:PORT\n", prog, spec);
        return -2;
    }
    char host[256];
    size_t hl = (size_t)(colon - spec);
    const char *h = spec;
    if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= sizeof host) {
        fprintf(stderr, "%s: --listen %s: host name too long\n", prog, spec);
        return -2;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    const char *port = colon + 1;
    char *end;
    long pn = strtol(port, &end, 10);
    if (*end || pn < 1 || pn > 65535) {
        fprintf(stderr, "%s: --listen %s: bad port\n", prog, spec);
        return -2;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *res = NULL;
    int g = getaddrinfo(hl && strcmp(host, "*") != 0 ? host : NULL, port, &hints, &res);
    if (g) {
        fprintf(stderr, "%s: --listen %s: %s\n", prog, spec, gai_strerror(g));
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0) {
            *ipv6 = ai->ai_family == AF_INET6;
            break;
        }
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        fprintf(stderr, "%s: --listen %s: %s\n", prog, spec, strerror(err));
    return fd;
}

int sg_daemon_listen(const char *prog, const char *spec, char **created, bool *ipv6)
{
    *created = NULL;
    *ipv6 = false;
    if (strncmp(spec, "unix:", 5) == 0)
        return listen_unix(prog, spec + 5, created);
    if (!strrchr(spec, ':')) {
        fprintf(stderr, "%s: --listen %s: expected unix:PATH or HOST:PORT\n", prog, spec);
        return -2;
    }
    return listen_tcp(prog, spec, ipv6);
}

void sg_daemon_raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            sg_debug("setrlimit(RLIMIT_NOFILE): %s", strerror(errno));
    }
}

int sg_daemon_send(int fd, const char *buf, size_t len, size_t *off)
{
    while (*off < len) {
        ssize_t n = send(fd, buf + *off, len - *off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            *off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 1;
        if (n == 0)
            errno = EIO;
        return -1;
    }
    return 0;
}
