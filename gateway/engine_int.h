/* engine_int.h - what engine.c (the protocol) and host.c (the plugin host)
 * share. Not installed, not for the transports. */
#ifndef SG_ENGINE_INT_H
#define SG_ENGINE_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "doorbell.h"
#include "engine.h"
#include "plugin.h"
#include "plugins.h"
#include "socketio.h"
#include "store.h"

struct sg_engine {
    const sg_config *cfg;
    sg_host host;
    sg_registry *reg;
    char *bell_dir;
};

struct sg_worker {
    sg_engine *e;
    sg_store *store;
    sg_bell *bell;
    sg_bell *self;    /* set: ring through it, skipping its own socket */
    sg_buf dirty;     /* sids queued for in this transaction, '\n'-separated */
    bool in_tx;       /* a transaction is open (handlers run inside it) */
    sg_session *ss;   /* the session being processed in it, or NULL */
    sg_session ss_read; /* ss as begin_session read it, without its partial
                           (ss_read.partial stays empty, never owned) */
    size_t ss_read_partial; /* the length of the partial it read */
    bool batch;       /* in sg_engine_batch_begin/end: rings wait for the end */
    /* sg_engine_ws_receive's local fast path: frames for direct_sid (when
     * set) collect in direct as [flags 1 byte][length 4 bytes][frame], up
     * to direct_max bytes (then they go to the store: spill_direct) */
    const char *direct_sid;
    sg_buf direct;
    size_t direct_max;
    bool queued_own;  /* a frame for the receiving session went to the store */
    bool no_recover;  /* closing a session whose queue was dropped (over
                         max_queued_packets): its sockets are not kept for
                         connection state recovery, whatever the reason */
    /* broadcast log rows this transaction (or batch) appended: seq range
     * (bcast_lo, bcast_hi], for the sessions of this process to take */
    int64_t bcast_lo, bcast_hi;
};

/* The context of one handler call (plugin.h's sg_ctx). Strings borrowed. */
struct sg_ctx {
    sg_worker *w;
    const char *sid;
    const char *socket_id;
    const char *nsp;
    size_t plugin;         /* index of the plugin whose handler runs */
    int64_t ack_id;        /* the event's ack id, -1 when none or answered */
    bool gone;             /* the socket left: no emits */
    bool in_use;           /* a connect middleware runs: reject allowed */
    bool recovered;        /* connection handlers: the socket was recovered */
    bool rejected;
    char *reject_message;  /* owned */
    json_t *reject_data;   /* owned */
    json_t *handshake;     /* owned, loaded on first use */
    int failed;            /* a host call failed in the store */
};

/* A handshake being decided by allow_request handlers (plugin.h's
 * sg_request). */
struct sg_request {
    sg_worker *w;
    size_t plugin;         /* index of the plugin whose handler runs */
    bool refused;
    int code;              /* Engine.IO error code, when refused */
    char message[SG_REFUSE_MESSAGE_MAX + 1];
};

/* ---- engine.c ---- */

/* The doorbell token of a broadcast log row ("look for sessions that a
 * new log row names"); never a session id (base64url has no '+'). */
#define ENG_BELL_LOG SG_BELL_LOG
/* Note sid (or ENG_BELL_LOG) for the doorbell rung after the commit. */
void eng_mark_dirty(sg_worker *w, const char *sid);
/* Before a membership change of sid's sockets: settle its stream (see
 * sg_store_bcast_settle). Inside a transaction. 0 or -1. */
int eng_bcast_settle(sg_worker *w, const char *sid);
/* After a commit (outside a batch): ring for what it changed, forget it. */
void eng_ring_dirty(sg_worker *w);
/* After a rollback: forget what was noted for the doorbell. */
void eng_forget_dirty(sg_worker *w);
/* A Socket.IO packet encoded once, for many recipients: the Engine.IO
 * text frame ("4" + the packet) and its attachments (binary values). */
typedef struct sg_encoded {
    sg_buf text;
    json_t *bins;
    int64_t eid;          /* a recoverable event's offset (its rows keep it), or 0 */
    const char *nsp;      /* with eid: its namespace (borrowed) */
} sg_encoded;
/* Encode (data stolen); clear it with eng_encoded_clear. 0 or -1 (out is
 * then cleared). */
int eng_encode_sio(sg_encoded *out, enum sg_sio_type type, const char *nsp, int64_t id,
                   json_t *data);
void eng_encoded_clear(sg_encoded *e);
/* Connection state recovery is on (config recovery_window > 0). */
bool eng_recovery(const sg_worker *w);
/* Encode an EVENT packet of nsp (data = [event, ...args], stolen) that
 * can be recovered (no ack id, not volatile): while recovery is on it gets
 * the next offset (inside the transaction) as its last argument, a JSON
 * string, and out->eid; else as eng_encode_sio. 0 or -1. */
int eng_encode_event(sg_worker *w, sg_encoded *out, const char *nsp, json_t *data);
/* Queue an encoded packet's frames for sid, marked volatile when
 * is_volatile (max_queued_packets drops those first). 0 or -1. */
int eng_queue_encoded(sg_worker *w, const char *sid, const sg_encoded *e, bool is_volatile);
/* Queue a Socket.IO packet for sid (data stolen; binary values become
 * attachments). 0 or -1. */
int eng_queue_sio(sg_worker *w, const char *sid, enum sg_sio_type type, const char *nsp,
                  int64_t id, json_t *data);
int eng_queue_eio(sg_worker *w, const char *sid, enum sg_eio_type type, const char *data);
/* Remove a socket and run its disconnect handlers. */
int eng_socket_gone(sg_worker *w, const char *sid, const char *id, const char *nsp,
                    const char *reason);
/* Close session ss (open, inside a transaction): its sockets' disconnect
 * handlers run with reason. */
int eng_close_session(sg_worker *w, sg_session *ss, const char *reason);
/* Close session sid, whichever is the one being processed. */
int eng_close_sid(sg_worker *w, const char *sid, const char *reason);

/* ---- host.c ---- */

void eng_host_init(sg_host *h, sg_engine *e);
void eng_ctx_init(sg_ctx *c, sg_worker *w, const char *sid, const char *socket_id,
                  const char *nsp);
void eng_ctx_clear(sg_ctx *c);

/* Run handlers for c: connect middleware (sets c->rejected), connection,
 * event (per-packet middleware first), disconnect, and a server-to-client
 * ack reply (args NULL on timeout). Failures of handlers are logged. */
void eng_run_use(sg_ctx *c, json_t *auth);
void eng_run_connection(sg_ctx *c, json_t *auth);
void eng_run_event(sg_ctx *c, const char *event, json_t *args);
void eng_run_disconnect(sg_ctx *c, const char *reason);
/* Run the allow_request handlers on info (borrowed) until one refuses:
 * then req->refused, with code and message set. */
void eng_run_allow_request(sg_request *req, json_t *info);
/* A reply to ack id of socket c->socket_id arrived (args) or timed out
 * (args NULL): run its handler once. 0, or -1 on a store failure. */
int eng_ack_reply(sg_worker *w, const char *socket_id, int64_t id, json_t *args);
/* Ack handlers whose deadline passed (from sg_engine_sweep). */
int eng_acks_expire(sg_worker *w, int64_t now);

/* Mark w as the worker whose transaction is open on this thread (handlers
 * calling the host without a context then use it), and unmark it. */
void eng_tx_enter(sg_worker *w);
void eng_tx_leave(sg_worker *w);
/* Open a transaction unless one is open; *own tells whether this call did. */
int eng_tx_begin(sg_worker *w, bool *own);
/* Close what eng_tx_begin opened: commit (and ring) when ok, else roll back. */
int eng_tx_end(sg_worker *w, bool own, int ok);

#endif
