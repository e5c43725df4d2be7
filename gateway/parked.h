/* parked.h - the event loop of siogate-fcgi: every request's engine work,
 * in group-committed batches, and the held (parked) polling GETs.
 *
 * One thread serves the FastCGI connections of the web server (fcgi.h:
 * non-blocking, a connection kept open by the web server serves request
 * after request), asks the router (fcgi_main.c) what each complete
 * request needs -- an answer that needs no store (a wrong path, a CORS
 * preflight, a bad query), or the engine: a handshake, a POST, a GET -- and
 * runs the engine for all of them. Whatever is ready at one turn of the loop -- new requests, held
 * GETs that a doorbell ring, a timer or the safety re-check made due,
 * requests whose web server hung up, the once-a-second sweep -- runs in one
 * store transaction (sg_engine_batch_begin/end: a savepoint per call), and
 * the answers are written after its commit. A held GET of this process
 * whose session got a packet in the same batch (an ack to a POST, a
 * broadcast) is answered in that same batch: no doorbell round trip to
 * itself (this loop rings only the other processes).
 *
 * A GET for which the engine has nothing yet stays here, in no thread of
 * its own, until
 *   - a doorbell ring names its session (or is "*");
 *   - the engine's wake_at (the next ping, the heartbeat deadline) is due;
 *   - the safety re-check (every SG_PARKED_RECHECK_MS: one query for the
 *     sessions that got frames or began an upgrade since the last one; rings
 *     are hints, see doorbell.h) names its session;
 * and is forgotten without an answer (sg_engine_poll_release) when the web
 * server closes the FastCGI connection or sends anything on it (abort).
 *
 * Threads: the loop runs in a thread of its own; the functions below are
 * called from one other thread (main). */
#ifndef SG_PARKED_H
#define SG_PARKED_H

#include <stdint.h>
#include "buf.h"
#include "engine.h"
#include "fcgi.h"

/* The safety re-check of the held polls (ms). */
#define SG_PARKED_RECHECK_MS 1000
/* Period of sg_engine_sweep (ms). */
#define SG_PARKED_SWEEP_MS 1000

typedef struct sg_parked sg_parked;

/* What a request asks of the engine (the router's verdict). */
enum sg_parked_kind {
    SG_PARKED_ANSWERED = -1, /* the router answered it itself (resp) */
    SG_PARKED_OPEN,          /* handshake GET (no sid): sg_engine_open */
    SG_PARKED_POST,          /* POST with its body: sg_engine_post */
    SG_PARKED_GET,           /* GET: sg_engine_poll, held while it waits */
    SG_PARKED_TOOLARGE,      /* POST beyond max_payload: the session is closed, 413 */
};

/* The router (route.c): looks at a complete request r and either
 * appends a whole CGI answer to resp (SG_PARKED_ANSWERED) or says what the
 * engine must do, with the session id copied into sid. Runs in the loop's
 * thread; must not block. */
typedef enum sg_parked_kind (*sg_parked_router)(void *ud, const sg_fcgi_req *r,
                                                char sid[SG_ID_LEN + 1], sg_buf *resp);

/* Create the loop for engine e (borrowed; outlives the loop) serving the
 * FastCGI listening socket listen_fd (borrowed; made non-blocking; TCP
 * connections get TCP_NODELAY when nodelay): its own sg_worker, a
 * doorbell waiter in the directory of the engine's database, epoll. Not
 * running yet. NULL on failure (logged). */
sg_parked *sg_parked_new(sg_engine *e, int listen_fd, bool nodelay, sg_parked_router route,
                         void *route_ud);

/* Start the loop thread. 0, or -1 (logged). */
int sg_parked_start(sg_parked *p);

/* Stop the loop: it accepts no more connections, answers every request it
 * has read (held GETs are released and answered with the Engine.IO noop
 * packet "6"), writes what it can within a second, closes every
 * connection; then the thread ends. Safe when the loop never started. */
void sg_parked_stop(sg_parked *p);

/* Free everything (after sg_parked_stop). NULL is fine. */
void sg_parked_free(sg_parked *p);

#endif
