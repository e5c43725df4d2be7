/* doorbell.h - cross-process wake-ups ("the store changed for these
 * sessions"), as hints: a waiter that misses a ring loses latency, never
 * data, because it re-checks the store on a bounded timeout anyway.
 *
 * Each waiting process binds one unix datagram socket in a directory
 * shared by every process of one store (by default the database path with
 * ".bells" appended). A writer, after its commit, sends one datagram to
 * every socket in that directory: session ids separated by '\n', or the
 * single byte "*" meaning "re-check every session you hold"; among the
 * ids, the token "+" means "the broadcast log has new rows". A socket
 * whose owner died (ECONNREFUSED) is unlinked by the first writer that
 * notices. The directory listing is cached and re-read when its mtime
 * changes. Sending never blocks (MSG_DONTWAIT); a full receive queue drops
 * the ring, which the waiter's timeout covers. Datagrams are at most
 * SG_BELL_MAX bytes; a longer list is sent as "*".
 *
 * Threads: a sg_bell is used by one thread at a time. */
#ifndef SG_DOORBELL_H
#define SG_DOORBELL_H

#include <stdbool.h>
#include <stddef.h>

#define SG_BELL_MAX 4096
#define SG_BELL_ALL "*"
/* "The broadcast log has new rows": look up which sessions they name. */
#define SG_BELL_LOG "+"

typedef struct sg_bell sg_bell;

/* The directory for a database path: new string (caller frees), NULL on ENOMEM. */
char *sg_bell_dir_for(const char *db_path);

/* Open a ringer (send side) for dir, creating dir (mode 0700) if missing.
 * Returns NULL on failure (logged). */
sg_bell *sg_bell_ringer(const char *dir);

/* Open a waiter: a ringer that also binds its own socket in dir
 * ("<pid>-<n>.sock"), non-blocking, close-on-exec. Its fd is epoll-able. */
sg_bell *sg_bell_waiter(const char *dir);

/* The waiter's receive fd (for epoll), or -1 for a ringer. */
int sg_bell_fd(const sg_bell *b);

/* Ring every waiter in the directory (including this process's own)
 * with msg[0..len) (ids joined by '\n', or SG_BELL_ALL). Never blocks;
 * returns the number of waiters reached, -1 on a local error. */
int sg_bell_ring(sg_bell *b, const char *msg, size_t len);

/* The same, but a waiter does not ring its own socket (for a loop that
 * handles its own sessions itself). For a ringer, sg_bell_ring. */
int sg_bell_ring_others(sg_bell *b, const char *msg, size_t len);

/* Receive one pending datagram into buf (NUL-terminated; cap includes the
 * NUL). Returns its length, 0 when none is pending, -1 on error. */
int sg_bell_recv(sg_bell *b, char *buf, size_t cap);

/* Receive up to max pending datagrams and call fn(ud, sid) for each
 * session id in them (NUL-terminated, SG_ID_LEN characters; other tokens
 * are skipped). *all is set when a datagram said "re-check everything"
 * (SG_BELL_ALL), *log when one carried SG_BELL_LOG. Returns the number of
 * datagrams received (a count near sg_bell_queue_len() means rings may
 * have been dropped), -1 on error. */
int sg_bell_drain(sg_bell *b, int max, void (*fn)(void *ud, const char *sid), void *ud,
                  bool *all, bool *log);

/* How many datagrams the kernel queues for one waiter before dropping
 * rings (net.unix.max_dgram_qlen; 10 when it cannot be read). */
int sg_bell_queue_len(void);

/* Close; a waiter unlinks its socket file. NULL is fine. */
void sg_bell_close(sg_bell *b);

#endif
