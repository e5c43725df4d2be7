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
 * Across hosts (a PostgreSQL store: sg_bell_ringer_db/sg_bell_waiter_db
 * with a db for which sg_store_is_pg is true): a ring also goes to the
 * other hosts as a NOTIFY on channel "siogate" of that server, payload
 * ORIGIN '\n' MSG, where MSG is the datagram's message and ORIGIN ("@"
 * and 20 random id characters) is read from DIR/origin, made by the first
 * process that needs it: one per bell directory, so one per host (a
 * process that cannot use DIR/origin takes one of its own). Every
 * waiter LISTENs on a connection of its own and skips notifications of
 * its own origin (its host's rings came as datagrams). The ringer NOTIFYs
 * on a connection of its own, made on its first ring, with one round
 * trip ("SELECT pg_notify($1, $2)", prepared), waiting at most 250 ms for
 * it, and not at all after such a wait ran out until the connection is up
 * again; a ring it could not send is lost, and the next one it sends says
 * "*". A connection that fails is retried after a backoff (0.1 s
 * doubling to 30 s, jittered). A waiter whose LISTEN connection broke
 * reports "*" once when it is back: notifications sent meanwhile are
 * gone. Here too a lost ring costs latency, not data: the waiter's
 * bounded re-check covers it.
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
/* The default directory for a PostgreSQL store (the config's bell_dir
 * sets another): its sockets are this host's. */
#define SG_BELL_DIR_PG "/var/lib/siogate/bells"

typedef struct sg_bell sg_bell;

/* The default directory for a db value: the SQLite path with ".bells"
 * appended, or SG_BELL_DIR_PG for a PostgreSQL store (sg_store_is_pg).
 * New string (caller frees), NULL on ENOMEM. The config's bell_dir
 * overrides it (sg_config_bell_dir). */
char *sg_bell_dir_for(const char *db_path);

/* Open a ringer (send side) for dir, creating dir (mode 0700) if missing.
 * Returns NULL on failure (logged). */
sg_bell *sg_bell_ringer(const char *dir);

/* Open a waiter: a ringer that also binds its own socket in dir
 * ("<pid>-<n>.sock"), non-blocking, close-on-exec. Its fd is epoll-able. */
sg_bell *sg_bell_waiter(const char *dir);

/* sg_bell_ringer and sg_bell_waiter for the store db (borrowed): when db
 * is PostgreSQL, the bell also rings and hears other hosts (see above).
 * A server that cannot be reached is no failure: it is retried. NULL on
 * a local failure (logged). */
sg_bell *sg_bell_ringer_db(const char *dir, const char *db);
sg_bell *sg_bell_waiter_db(const char *dir, const char *db);

/* The waiter's receive fd (for epoll or poll: readable while something
 * waits for sg_bell_recv or sg_bell_drain, which must be called then),
 * or -1 for a ringer. With other hosts, it is an epoll fd holding the
 * datagram socket and the LISTEN connection's fds. */
int sg_bell_fd(const sg_bell *b);

/* Whether the link to other hosts is up: 1 (the waiter's LISTEN is in
 * place; the ringer's connection is up), 0 (not now), -1 (no such link). */
int sg_bell_remote_up(const sg_bell *b);

/* Ring every waiter in the directory (including this process's own)
 * with msg[0..len) (ids joined by '\n', or SG_BELL_ALL), and the other
 * hosts when there are. Never blocks on this host; returns the number of
 * waiters of this host reached, -1 on a local error. */
int sg_bell_ring(sg_bell *b, const char *msg, size_t len);

/* The same, but a waiter does not ring its own socket (for a loop that
 * handles its own sessions itself). For a ringer, sg_bell_ring. */
int sg_bell_ring_others(sg_bell *b, const char *msg, size_t len);

/* Receive one pending message (a datagram, or a notification from another
 * host) into buf (NUL-terminated; cap includes the NUL). Returns its
 * length, 0 when none is pending, -1 on error. */
int sg_bell_recv(sg_bell *b, char *buf, size_t cap);

/* Receive up to max pending datagrams and call fn(ud, sid) for each
 * session id in them (NUL-terminated, SG_ID_LEN characters; other tokens
 * are skipped). *all is set when a datagram said "re-check everything"
 * (SG_BELL_ALL), *log when one carried SG_BELL_LOG. Returns the number of
 * datagrams received (a count near sg_bell_queue_len() means rings may
 * have been dropped; up to max notifications from other hosts are taken
 * as well, not counted), -1 on error. */
int sg_bell_drain(sg_bell *b, int max, void (*fn)(void *ud, const char *sid), void *ud,
                  bool *all, bool *log);

/* How many datagrams the kernel queues for one waiter before dropping
 * rings (net.unix.max_dgram_qlen; 10 when it cannot be read). */
int sg_bell_queue_len(void);

/* Close; a waiter unlinks its socket file. NULL is fine. A bell that owes
 * other hosts a ring (one it could not send) first sends them "*" if it
 * can within a second (for a short-lived process: siogate emit). */
void sg_bell_close(sg_bell *b);

#endif
