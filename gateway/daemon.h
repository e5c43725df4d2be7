/* daemon.h - what the siogate daemons (siogate-fcgi, siogate-wsd) share:
 * the listening socket that --listen names, and the descriptor limit. */
#ifndef SG_DAEMON_H
#define SG_DAEMON_H

#include <stdbool.h>
#include <stddef.h>

/* Open the listening socket for spec:
 *   "unix:PATH"   a unix stream socket; a stale socket file (nobody
 *                 listening) is replaced, a live one or another kind of
 *                 file is an error; made mode 0666 (protect its directory)
 *                 and its path returned in *created (caller unlinks and
 *                 frees it);
 *   "HOST:PORT", "[V6]:PORT", ":PORT" or "*:PORT" (every address): TCP,
 *                 SO_REUSEADDR; *ipv6 tells whether it is an IPv6 socket.
 * Close-on-exec, blocking (set O_NONBLOCK yourself if you want it), listen
 * backlog SOMAXCONN. prog prefixes the messages, written to stderr.
 * Returns the fd, -1 on failure, -2 when spec is malformed (bad usage). */
int sg_daemon_listen(const char *prog, const char *spec, char **created, bool *ipv6);

/* Send buf[*off..len) on the non-blocking socket fd, *off advancing: 0
 * when all of it went, 1 when the socket is full (wait for EPOLLOUT), -1
 * when the peer is gone (errno set; EIO for a send that wrote nothing). */
int sg_daemon_send(int fd, const char *buf, size_t len, size_t *off);

/* Raise RLIMIT_NOFILE's soft limit to its hard limit (many connections). */
void sg_daemon_raise_fd_limit(void);

#endif
