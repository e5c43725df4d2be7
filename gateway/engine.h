/* engine.h - the protocol engine: Engine.IO sessions and Socket.IO
 * semantics over the store, independent of any transport.
 *
 * The FastCGI front (polling) and the WebSocket daemon only move bytes in
 * and out of these functions. Every call that changes state does so in one
 * store transaction and, after its commit, rings the doorbell for the
 * sessions it queued packets for.
 *
 * Threads: one sg_engine per process, shared and read-only after
 * sg_engine_new(); one sg_worker per thread (it owns a store connection
 * and a doorbell ringer). */
#ifndef SG_ENGINE_H
#define SG_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include "buf.h"
#include "config.h"
#include "engineio.h"
#include "util.h"
#include "plugin.h"

typedef struct sg_engine sg_engine;
typedef struct sg_worker sg_worker;

/* Results. Negative values are Engine.IO errors; map them to an HTTP answer
 * with sg_engine_error(). */
enum sg_result {
    SG_OK = 0,
    SG_WAIT = 1,                  /* poll: nothing to send yet */
    SG_E_TRANSPORT = -1,          /* 400 {"code":0,"message":"Transport unknown"} */
    SG_E_SID = -2,                /* 400 code 1 "Session ID unknown" */
    SG_E_METHOD = -3,             /* 400 code 2 "Bad handshake method" */
    SG_E_BADREQ = -4,             /* 400 code 3 "Bad request" */
    SG_E_FORBIDDEN = -5,          /* 403 code 4 "Forbidden" */
    SG_E_VERSION = -6,            /* 400 code 5 "Unsupported protocol version" */
    SG_E_TOOLARGE = -7,           /* 413 (body beyond max_payload) */
    SG_E_INTERNAL = -8,           /* 500 (store failure; logged) */
    SG_E_RATE = -9,               /* 429 code 4 "Too many handshakes" (handshakes_per_second) */
    SG_E_FULL = -10,              /* 503 code 4 "Too many sessions" (max_sessions) */
    SG_E_REFUSED = -11,           /* a plugin's allow_request refused: 403 code 4
                                     "Forbidden" unless sg_handshake says otherwise */
};

/* HTTP status, Engine.IO error code (-1 when the body is not Engine.IO
 * JSON) and message for a negative result. */
void sg_engine_error(int result, int *status, int *code, const char **message);

#define SG_REFUSE_MESSAGE_MAX 200 /* bytes of a plugin's refusal message kept */

/* What a transport knows about the request that opened a session
 * (all borrowed for the duration of the call), and why it was refused. */
typedef struct sg_handshake {
    const char *address;            /* remote address, or NULL */
    const char *url;                /* request URI with query, or NULL */
    const char *query;              /* raw query string, or NULL */
    const char *const *headers;     /* name, value, name, value, ..., NULL;
                                       names lower-case */
    /* out, after SG_E_REFUSED: the status, Engine.IO code and message to
     * answer with (sg_engine_handshake_error fills them in for any result) */
    int refused_status, refused_code;
    char refused_message[SG_REFUSE_MESSAGE_MAX + 1];
} sg_handshake;

/* sg_engine_error for the result of sg_engine_open on hs: the plugin's
 * refusal for SG_E_REFUSED. *message borrowed from hs or static.
 * SG_E_RATE, SG_E_FULL and SG_E_REFUSED are logged by the engine (the
 * first two at most once per 10 s, the last at debug level): a transport
 * need not log them again. */
void sg_engine_handshake_error(const sg_handshake *hs, int result, int *status, int *code,
                               const char **message);
/* True for the results the engine logged itself (SG_E_INTERNAL and the
 * handshake refusals above). */
bool sg_engine_result_logged(int result);

/* Create the engine for cfg (borrowed; must outlive the engine): opens the
 * store once to apply migrations and loads every plugin. Returns NULL on
 * failure, every problem logged (file names included). */
sg_engine *sg_engine_new(const sg_config *cfg);
/* The same for a process that only emits (the CLI's emit): no plugin is
 * loaded and the store is neither opened nor migrated here, so the caller
 * must have checked its schema. Handlers never run in it; sg_engine_emit,
 * sg_engine_ack_replies and sg_engine_ack_forget work as usual. */
sg_engine *sg_engine_new_emitter(const sg_config *cfg);
void sg_engine_free(sg_engine *e);
const sg_config *sg_engine_config(const sg_engine *e);

/* A per-thread worker (new; free with sg_worker_free). NULL on failure. */
sg_worker *sg_worker_new(sg_engine *e);
typedef struct sg_store sg_store;
/* The same on store s (taken: closed by sg_worker_free, or here on
 * failure), e.g. a store on the CLI's admin connection (sg_admin_store). */
sg_worker *sg_worker_new_on(sg_engine *e, sg_store *s);
void sg_worker_free(sg_worker *w);

/* Group commit: every call between these two runs in one transaction (each
 * in a savepoint of its own, so a failure undoes only its part) and the
 * doorbell rings once, after the commit. For an event loop's turn: one
 * commit instead of one per call. Hold it briefly: it holds the store's
 * write lock. SG_OK or SG_E_INTERNAL. */
int sg_engine_batch_begin(sg_worker *w);
int sg_engine_batch_end(sg_worker *w);

/* The broadcast log rows of a batch or a ring name their recipients: at
 * least broadcast_log_min sessions, listed at 0.6 us each (3.2 before
 * fde882f; tests/bench/fanout) by every process that holds a connection
 * (a ring) or re-checks (siogate-fcgi, every second), whether the
 * recipients are its own or not. So sg_engine_batch_dirty,
 * sg_engine_changed_since and sg_engine_bcast_since take own (NULL: none
 * given), called with their ud only when there are log rows to resolve:
 * own(ud, v, max) returns how many sessions the caller has and, when that
 * is at most max, writes their ids to v (borrowed until the engine call
 * returns). With at most broadcast_log_min / 8 of them (128 at most) the
 * store is asked about those only, index lookups (1.5-2.8 us each).
 * Measured (nginx, 100 broadcasts to 1,000 WebSocket members, alternating
 * runs): siogate-fcgi's CPU holding 10 polls 630-690 -> 130 ms, holding
 * none 250 -> 40 ms; the members' latencies unchanged (last p50 54-56 ->
 * 51-53 ms). tests/bench/compare --only ws-broadcast --bystanders 10:
 * siogate-fcgi 3.8 -> 0.8 us per delivered message. */
typedef size_t (*sg_own_fn)(void *ud, const char **v, size_t max);

/* The sessions the open batch queued frames for (or otherwise changed for
 * a waiting transport), from *pos on: fn(ud, sid) for each, and *pos
 * moves past them, so that a caller sees each once however often it
 * asks. Returns true instead of calling fn when the batch changed too many
 * to list (a wide broadcast): every session may have something. For a
 * loop that answers its own held requests inside the batch; start with
 * *pos = 0 after sg_engine_batch_begin. */
bool sg_engine_batch_dirty(sg_worker *w, size_t *pos, sg_own_fn own,
                           void (*fn)(void *ud, const char *sid), void *ud);

typedef struct sg_bell sg_bell;
/* Ring through waiter (borrowed; must outlive w) instead of w's own
 * ringer, and never ring waiter itself: for the loop that owns waiter and
 * handles what w changed for its own sessions before the commit
 * (sg_engine_batch_dirty). */
void sg_worker_ring_others(sg_worker *w, sg_bell *waiter);

/* For a loop's safety re-check of its held requests (rings are hints):
 * fn(ud, sid) for every session that got frames since *mark or is in the
 * middle of an upgrade; *mark advances. Start with *mark = -1 (that call
 * only sets it). One indexed query. Returns the count or -1. */
int sg_engine_changed_since(sg_worker *w, int64_t *mark, sg_own_fn own,
                            void (*fn)(void *ud, const char *sid), void *ud);
/* After a broadcast log ring (sg_bell_drain's *log): fn(ud, sid) for every
 * session a broadcast log row after *mark names; *mark advances. Start
 * with *mark = -1 (that call only sets it). fn NULL: only *mark advances
 * (for a process that holds no connection now: listing a broadcast's
 * recipients for nothing cost siogate-wsd 4.4 us a recipient while
 * siogate-fcgi served 1,000 polls). Returns the count or -1. */
int sg_engine_bcast_since(sg_worker *w, int64_t *mark, sg_own_fn own,
                          void (*fn)(void *ud, const char *sid), void *ud);

/* ---- sessions ---------------------------------------------------------- */

/* Open a session (Engine.IO handshake) on transport ("polling" or
 * "websocket"). Writes the sid and appends the open packet
 * ("0{"sid":…,"upgrades":[…],"pingInterval":…,…}") to open_packet.
 * For polling the caller sends open_packet as the GET's body. Before the
 * session exists: the plugins' allow_request handlers (SG_E_REFUSED, hs's
 * refused_* fields say how to answer), then in the store transaction the
 * limits: hs->address over handshakes_per_second (SG_E_RATE; an address
 * NULL is not limited) and max_sessions open sessions (SG_E_FULL). */
int sg_engine_open(sg_worker *w, sg_handshake *hs, const char *transport,
                   char sid[SG_ID_LEN + 1], sg_buf *open_packet);

/* The reference server's cookie option: append the header line
 * "Set-Cookie: NAME=SID; Path=P[; HttpOnly][; Secure][; SameSite=S]\r\n"
 * for the session sid just opened to out, or nothing when cfg->cookie is
 * unset (the default). The transports send it with the handshake's
 * answer (the polling GET's 200, the WebSocket's 101). 0 or -1 (ENOMEM). */
int sg_engine_cookie(const sg_config *cfg, const char *sid, sg_buf *out);

/* Packets from the client, in order (borrowed). One transaction for all.
 * SG_OK, SG_E_SID (unknown or closed session), SG_E_BADREQ (a packet the
 * protocol forbids: the session is closed with "parse error"),
 * SG_E_INTERNAL. */
int sg_engine_receive(sg_worker *w, const char *sid, const sg_eio_packets *pkts);

/* sg_engine_receive for the packets read from the WebSocket that owner
 * holds for sid, with the local fast path (DESIGN §5): while nothing
 * queued for sid in the store would be overtaken, the frames the handlers
 * produce for sid itself (acks, a reply to the sender) are not queued but
 * handed to fn(ud, binary, frame, len), in order, after the receive
 * succeeded; in a batch they are not committed yet, so write them after
 * sg_engine_batch_end. direct_max: what the connection can take now, in
 * bytes (frames plus 5 bytes each; 0: nothing, SIZE_MAX: no bound): once
 * the fast path's frames would pass it, they and every later frame for
 * sid go to the store instead, in order (a client that sends without
 * reading grows the store, which max_queued_packets bounds, not the
 * transport's memory). A non-zero fn result stops it with SG_E_INTERNAL
 * (the rest is lost: close the connection). *take_due: something for sid
 * was queued in the store, or the session closed; take it (as after
 * sg_engine_receive, which is this with *take_due always true). Both
 * receives apply max_queued_packets (config.h) after the packets. */
int sg_engine_ws_receive(sg_worker *w, const char *sid, const char *owner,
                         const sg_eio_packets *pkts, size_t direct_max,
                         int (*fn)(void *ud, bool binary, const void *frame, size_t len),
                         void *ud, bool *take_due);

/* Close a session from the transport side (e.g. WebSocket gone) with a
 * disconnect reason such as "transport close" / "transport error".
 * Disconnect handlers fire exactly once across all processes. */
int sg_engine_close(sg_worker *w, const char *sid, const char *reason);

/* Close every session whose heartbeat or connect deadline has passed
 * ("ping timeout"; no namespace joined within connect_timeout). Returns the
 * number closed, or -1. */
int sg_engine_sweep(sg_worker *w);

/* ---- emitting and administering (shared by plugins and the CLI) ---------- */

/* Emit event with args (a JSON array, stolen; NULL for none) to the target
 * (plugin.h's sg_target: t->nsp required; SG_EMIT_BROADCAST has no sender
 * here). Its own transaction unless one is open. Returns the number of
 * sockets reached, or -1. */
int sg_engine_emit(sg_worker *w, const sg_target *t, const char *event, json_t *args);

/* Like sg_engine_emit, but each socket reached is asked for an
 * acknowledgement, answered into the mailbox reply_to (a name starting with
 * '@', unique to the caller, e.g. "@cli.<pid>.<n>"), where
 * sg_engine_ack_replies() finds it. Replies not taken and acks not answered
 * are purged after timeout_ms. Returns the number of sockets asked, or -1.
 * The ids of the sockets asked are appended to asked (a JSON array), if not
 * NULL. */
int sg_engine_emit_ack(sg_worker *w, const sg_target *t, const char *event, json_t *args,
                       const char *reply_to, int64_t timeout_ms, json_t *asked);
/* Take the replies that arrived in mailbox reply_to: fn(ud, socket_id,
 * args) per reply (args borrowed: the client's array, binary attachments
 * shown as {"_placeholder":true,"num":N}). Returns the count or -1. */
int sg_engine_ack_replies(sg_worker *w, const char *reply_to,
                          void (*fn)(void *ud, const char *socket_id, json_t *args), void *ud);
/* Forget what is left of mailbox reply_to (awaited acks and replies). */
int sg_engine_ack_forget(sg_worker *w, const char *reply_to);

/* Disconnect a socket by id (the client gets DISCONNECT, handlers get
 * "server namespace disconnect"); with close, every socket of its client
 * and the connection. SG_OK, SG_E_SID (no such socket), SG_E_INTERNAL. */
int sg_engine_disconnect(sg_worker *w, const char *socket_id, bool close);

/* fetchSockets(): the sockets of nsp in any of rooms (NULL-terminated;
 * NULL = all) as a new JSON array of {"id","nsp","rooms","data","handshake"};
 * NULL on failure. */
json_t *sg_engine_fetch_sockets(sg_worker *w, const char *nsp, const char *const *rooms);

/* ---- polling ----------------------------------------------------------- */

/* A POST body for sid: decode the payload and receive its packets. Returns
 * SG_OK (answer 200 "ok"; also when the payload or a packet in it was
 * malformed: the session is then closed with "parse error" and its GET
 * gets the close packet, as from the reference server), SG_E_SID (also
 * when its heartbeat deadline passed: it is closed now, "ping timeout"),
 * SG_E_BADREQ (the session was upgraded: polling is refused), SG_E_TOOLARGE
 * (len > max_payload: closed with "transport error"), SG_E_INTERNAL. After
 * its packets, max_queued_packets (config.h) is applied: SG_OK when that
 * closed the session too ("transport error"; the next request gets
 * SG_E_SID). */
int sg_engine_post(sg_worker *w, const char *sid, const char *body, size_t len);

/* A GET for sid, from the poller identified by token (unique within the
 * process, e.g. "<pid>.<counter>"), first call. Claims the session's one
 * GET slot. SG_OK: payload holds the response body (packets, a ping, or
 * the close/noop packet); the slot is released. SG_WAIT: nothing to send;
 * hold the request until a ring for sid or until *wake_at (CLOCK_REALTIME
 * ms), then call sg_engine_poll_again(). SG_E_SID (unknown or closed; or
 * its heartbeat deadline passed before this GET: it is closed now with
 * "ping timeout", and only a GET held at the close gets the close packet,
 * as from the reference server; or more than max_queued_packets were
 * queued for it: closed now with "transport error", its queue deleted),
 * SG_E_BADREQ (upgraded: polling is
 * refused; or a GET is already in flight for sid: the session is closed
 * with "transport error" and the held GET will return the close packet),
 * SG_E_INTERNAL. During an upgrade (after "2probe") a GET with nothing to
 * carry is answered noop, but not before 100 ms after the probe (the first
 * tick of the reference's upgrade timer): until then it is held, and gets
 * SG_E_BADREQ if the "5" is committed first. */
int sg_engine_poll(sg_worker *w, const char *sid, const char *token,
                   sg_buf *payload, int64_t *wake_at);
/* A held GET, after a ring or its wake_at: same results as sg_engine_poll
 * (SG_E_BADREQ when the session upgraded meanwhile). */
int sg_engine_poll_again(sg_worker *w, const char *sid, const char *token,
                         sg_buf *payload, int64_t *wake_at);
/* The held GET goes away without an answer carrying packets (the web
 * server hung up, or the process shuts down and answers noop itself):
 * release the slot. Nothing queued is lost. SG_OK (also when there was
 * nothing to release: the session is gone, or another GET holds it) or
 * SG_E_INTERNAL (the store failed: the slot stays taken; try again, or the
 * session's next GET is taken for a second one in flight). */
int sg_engine_poll_release(sg_worker *w, const char *sid, const char *token);

/* ---- websocket ----------------------------------------------------------
 *
 * The WebSocket daemon drives a session through these, plus
 * sg_engine_open(…, "websocket", …) for a session that starts on the
 * WebSocket, sg_engine_receive() for the packets it reads (one call per
 * turn of its loop: one transaction) and sg_engine_close() when the
 * connection ends ("transport close", or "transport error" after a
 * protocol error). owner identifies the connection, unique within the
 * host, e.g. "<pid>.<counter>" (a dead process's owner is recognised). */

/* An upgrade from polling begins: "2probe" arrived on a WebSocket for sid.
 * SG_OK: answer "3probe"; from now on a GET for sid with nothing to carry
 * is answered noop (from 100 ms after the probe on), so the client can
 * pause polling.
 * SG_E_SID (unknown or closed), SG_E_BADREQ (not a polling session:
 * already upgraded, or another WebSocket holds it). */
int sg_engine_ws_probe(sg_worker *w, const char *sid);

/* The upgrade completes: "5" arrived. The session's transport becomes
 * "websocket", held by owner; polling requests are refused from now on
 * (400, a held GET too). SG_OK, SG_E_SID, SG_E_BADREQ (no probe, or
 * already upgraded). */
int sg_engine_ws_upgrade(sg_worker *w, const char *sid, const char *owner);

/* The WebSocket that sent "2probe" ended before "5": the session stays on
 * polling (its GETs are held again). SG_OK, SG_E_SID. */
int sg_engine_ws_abort(sg_worker *w, const char *sid);

/* May a new WebSocket upgrade sid? (read only; before its 101). SG_OK: the
 * session is open on polling and no WebSocket is upgrading it; SG_E_BADREQ:
 * it is open but upgraded, born on a WebSocket, or another WebSocket is
 * upgrading it (the reference server then completes the WebSocket
 * handshake and closes it at once); SG_E_SID: unknown, closed, or past its
 * heartbeat deadline; SG_E_INTERNAL. */
int sg_engine_ws_can_upgrade(sg_worker *w, const char *sid);

/* Claim a session opened on the WebSocket by this connection (after
 * sg_engine_open(…, "websocket", …)). SG_OK or an error. */
int sg_engine_ws_attach(sg_worker *w, const char *sid, const char *owner);

/* Frames to write to the WebSocket now: fn is called for each queued
 * frame in order (text frames are whole Engine.IO text packets; binary
 * frames the raw bytes: exactly one WebSocket message each); a ping is
 * queued first when it is due. The frames passed are then removed from
 * the store (a WebSocket delivers in order or dies). On SG_OK *wake_at
 * (CLOCK_REALTIME ms) says when to call again at the latest (ping due,
 * heartbeat deadline) if no ring comes first. SG_E_SID: the session is
 * closed (or its heartbeat expired and it was closed now): close the
 * WebSocket. SG_E_BADREQ: owner does not hold the session (another
 * connection took it): close this WebSocket. fn returns 0, or non-zero to
 * stop (the frames not passed stay queued). At most max_bytes of frames
 * are read (one at least): a long queue is not loaded whole, on a store
 * that reads a result whole (PostgreSQL) for a connection that takes a
 * part of it. *more (unless NULL) tells whether frames were left, by fn
 * or by max_bytes: take again when there is room. */
int sg_engine_ws_take(sg_worker *w, const char *sid, const char *owner, size_t max_bytes,
                      int (*fn)(void *ud, bool binary, const void *frame, size_t len),
                      void *ud, int64_t *wake_at, bool *more);

#endif
