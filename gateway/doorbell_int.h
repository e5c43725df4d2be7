/* doorbell_int.h - the doorbell's link to other hosts (doorbell_pg.c),
 * used by doorbell.c only. See doorbell.h for what it does. */
#ifndef SG_DOORBELL_INT_H
#define SG_DOORBELL_INT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct bell_remote bell_remote;

/* NOTIFY/LISTEN on the PostgreSQL server conninfo names, for the bell
 * directory dir (which gives the origin: the id in dir/origin, made on
 * first use). A waiter (recv_fd >= 0, its datagram socket) also LISTENs:
 * it waits up to a moment for the LISTEN to be in place, and carries an
 * epoll fd that holds recv_fd and its own fds (bell_remote_fd). A ringer
 * connects on its first ring. NULL on a local failure (logged); a server
 * that cannot be reached is not one: it is retried later. */
bell_remote *bell_remote_open(const char *conninfo, const char *dir, int recv_fd);

/* The waiter's epoll fd (readable when a datagram, a notification or a
 * reconnect is due), or -1 for a ringer. */
int bell_remote_fd(const bell_remote *r);

/* NOTIFY msg[0..len) to the other hosts (len <= SG_BELL_MAX, not 0).
 * Waits at most BELL_PG_WAIT_MS (once per outage). 1 when the
 * notification was sent, 0 when it was not (it is owed: the next one
 * sent says "*"). */
int bell_remote_ring(bell_remote *r, const char *msg, size_t len);

/* For a waiter: take one pending message from another host (or "*" after
 * a reconnect) into buf (NUL-terminated, cap >= 2). Returns its length, 0
 * when none is pending. Also moves the connection along (reconnects). */
int bell_remote_recv(bell_remote *r, char *buf, size_t cap);

/* 1 when the LISTEN (waiter) or the NOTIFY connection (ringer) is up, 0
 * when not (yet). */
int bell_remote_up(const bell_remote *r);

/* Close (a forked child leaves the parent's connections alone). NULL is fine. */
void bell_remote_close(bell_remote *r);

#endif
