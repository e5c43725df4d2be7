/* parked.h - the event loop that holds parked polling GETs.
 *
 * The accept threads of siogate-fcgi answer what they can at once; a GET
 * for which sg_engine_poll() says SG_WAIT is handed over here, and one
 * thread holds all of them (no thread per held poll). It answers a held
 * GET when
 *   - a doorbell ring names its session (or is "*"): sg_engine_poll_again;
 *   - its wake_at (the engine's deadline, e.g. the next ping) is due;
 *   - its safety re-check is due (every SG_PARKED_RECHECK_MS, in case a
 *     ring was dropped; rings are hints, see doorbell.h);
 * and forgets it without an answer (sg_engine_poll_release) when the web
 * server closes the FastCGI connection or sends anything on it (abort).
 * Once a second it also runs sg_engine_sweep (ping timeouts).
 *
 * Threads: sg_parked_epoch and sg_parked_hold may be called from any
 * thread; the rest from the thread that owns the sg_parked. */
#ifndef SG_PARKED_H
#define SG_PARKED_H

#include <stdint.h>
#include <fcgiapp.h>
#include "engine.h"

/* Safety-net re-check of every held poll (ms). */
#define SG_PARKED_RECHECK_MS 5000
/* Period of sg_engine_sweep (ms). */
#define SG_PARKED_SWEEP_MS 1000

typedef struct sg_parked sg_parked;

/* Create the loop for engine e (borrowed; outlives the loop): its own
 * sg_worker, a doorbell waiter in the directory of the engine's database,
 * epoll. Not running yet. NULL on failure (logged). */
sg_parked *sg_parked_new(sg_engine *e);

/* Start the loop thread. 0, or -1 (logged). */
int sg_parked_start(sg_parked *p);

/* The ring epoch: read it before calling sg_engine_poll for a GET that
 * may be held, and pass it to sg_parked_hold, so that a ring that arrives
 * between the poll and the hand-over is not lost. */
uint64_t sg_parked_epoch(sg_parked *p);

/* Hand over a GET for which sg_engine_poll(sid, token) returned SG_WAIT
 * with *wake_at. req must have been malloc()ed, its input read to its end
 * (sg_http_drain_input); ownership passes to the loop in every case. w is
 * the caller's worker, used only when the loop is stopping (the GET is
 * then released and answered with the noop packet at once). */
void sg_parked_hold(sg_parked *p, sg_worker *w, FCGX_Request *req, const char *sid,
                    const char *token, int64_t wake_at, uint64_t epoch);

/* Stop the loop: every held GET is released and answered with the
 * Engine.IO noop packet "6"; then the thread ends. Call after the last
 * sg_parked_hold. Safe when the loop never started. */
void sg_parked_stop(sg_parked *p);

/* Free everything (after sg_parked_stop). NULL is fine. */
void sg_parked_free(sg_parked *p);

#endif
