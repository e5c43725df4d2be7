/* siogate/plugin.h - the plugin ABI of siogate.
 *
 * A plugin is a shared object exporting one function:
 *
 *     int sg_plugin_init(const sg_host *host, sg_plugin *self);
 *
 * The host calls it once, right after loading the file (RTLD_LOCAL), with
 * its function table. The plugin checks the ABI (SG_PLUGIN_CHECK below),
 * registers its handlers through the table and returns 0; any other value
 * refuses the plugin and the program does not start. Registration is only
 * allowed during sg_plugin_init; later calls fail with -1.
 *
 * The table only grows at its end: a plugin built against minor N runs on
 * every host of the same major with minor >= N. Each member is marked with
 * the version that added it. A host refuses a plugin whose required major
 * differs from its own, naming the file and both versions.
 *
 * Threads and processes: a handler runs in whichever process received the
 * packet (a FastCGI worker thread, the WebSocket daemon), possibly in
 * several threads at once. Keep state in socket data or in your own
 * storage, never in globals that you expect to be shared.
 *
 * JSON follows jansson's reference rules: values handed to a handler are
 * borrowed (valid until it returns; json_incref to keep one); values handed
 * to the host (emit, ack, reject) are stolen, even when the call fails, so
 * host->emit(ctx, "x", json_pack(...)) never leaks.
 *
 * Binary arguments are "binary values" made with host->binary_new() and
 * read with host->binary_data(); they may appear anywhere in arguments and
 * travel as Socket.IO attachments. A binary value is a JSON object to
 * jansson (json_is_object() is true): test with binary_data(v, &len) !=
 * NULL, never by shape. It cannot be stored in socket data.
 *
 * Return values: 0 on success, -1 on failure (bad arguments, the socket is
 * gone, the store failed); failures are logged by the host. */
#ifndef SIOGATE_PLUGIN_H
#define SIOGATE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SG_ABI_MAJOR 1
#define SG_ABI_MINOR 3

/* The context of one handler call: one socket (namespace connection) and,
 * for events, the packet being handled. Valid only during the call. */
typedef struct sg_ctx sg_ctx;
/* The plugin being initialised; valid only during sg_plugin_init. */
typedef struct sg_plugin sg_plugin;
/* A handshake being decided by allow_request handlers (1.1); valid only
 * during the call. */
typedef struct sg_request sg_request;
/* An event answered later, from any thread (1.2): see defer/finish. */
typedef struct sg_deferred sg_deferred;

/* Middleware at connect: look at the CONNECT payload (auth, borrowed; an
 * empty object when the client sent none) and the handshake (host->
 * handshake). Return 0 to accept, or call host->reject() and return 1. */
typedef int (*sg_connect_fn)(sg_ctx *ctx, json_t *auth, void *ud);
/* After a socket joined a namespace (its CONNECT reply is already queued). */
typedef int (*sg_connection_fn)(sg_ctx *ctx, json_t *auth, void *ud);
/* An event. args: a JSON array of the arguments (borrowed), the event name
 * excluded. When the client asked for an acknowledgement, host->ack()
 * answers it (once). */
typedef int (*sg_event_fn)(sg_ctx *ctx, const char *event, json_t *args, void *ud);
/* The socket left the namespace; reason is one of Socket.IO's strings
 * ("client namespace disconnect", "transport close", "ping timeout", ...).
 * Called exactly once per socket, in some process. Emits to this socket are
 * no longer possible. */
typedef void (*sg_disconnect_fn)(sg_ctx *ctx, const char *reason, void *ud);

/* Per-packet middleware: runs for every incoming event on its namespace
 * before the event handlers. Return 0 to let the event through; anything
 * else drops it (logged at debug level; an ack the client asked for is
 * not answered, as with the reference server's socket.use() refusing). */
typedef int (*sg_packet_fn)(sg_ctx *ctx, const char *event, json_t *args, void *ud);
/* A server-to-client acknowledgement arrived, or timed out. ctx is the
 * socket that was asked (when it has left, ctx still names it but emits to
 * it fail). args: the client's reply (a JSON array, borrowed), or NULL on
 * timeout. data: what the emitter attached (borrowed; JSON null when none).
 * Runs exactly once per emit_with_ack, in whichever process receives the
 * reply or notices the timeout. */
typedef void (*sg_ack_fn)(sg_ctx *ctx, const char *name, json_t *args, json_t *data, void *ud);
/* 1.1: a client asks to open a session (the Engine.IO handshake: a polling
 * GET or a WebSocket without a sid), before the session exists, as the
 * reference server's allowRequest. info (borrowed) is
 * {"address":…,"origin":…,"transport":"polling"|"websocket","url":…,
 *  "query":{…},"headers":{…},"time":ms} (address and origin may be null;
 * header names lower-case). Return 0 to let it through; to refuse, call
 * host->refuse(req, code, message) and return 1. Non-zero without refuse
 * refuses as well, with 403 {"code":4,"message":"Forbidden"}. Runs in
 * whichever process took the handshake, before any transaction: no emits
 * (there is no socket yet); keep it quick, it delays the client's open. */
typedef int (*sg_allow_request_fn)(sg_request *req, json_t *info, void *ud);

enum sg_log_level_plugin { SG_PLUGIN_LOG_ERROR = 0, SG_PLUGIN_LOG_WARN = 1,
                           SG_PLUGIN_LOG_INFO = 2, SG_PLUGIN_LOG_DEBUG = 3 };

/* Who an emit_to reaches. Every socket is in the room named by its id, so a
 * room list can name single sockets too. */
typedef struct sg_target {
    const char *nsp;            /* namespace; NULL = the context's (required without ctx) */
    const char *const *rooms;   /* NULL-terminated; the union of their members.
                                   NULL or EMPTY: the whole namespace (as the
                                   reference server: an empty list built at
                                   run time broadcasts to everyone) */
    const char *const *except;  /* NULL-terminated rooms whose members are skipped; NULL: none */
    unsigned flags;             /* SG_EMIT_* */
} sg_target;

#define SG_EMIT_BROADCAST 1u    /* skip the context's own socket (socket.broadcast) */
#define SG_EMIT_VOLATILE 2u     /* may be dropped for a client not ready to receive now */

typedef struct sg_host {
    /* ---- 1.0 ---------------------------------------------------------- */
    uint32_t abi_major;     /* SG_ABI_MAJOR of the host */
    uint32_t abi_minor;     /* SG_ABI_MINOR of the host */
    size_t size;            /* sizeof(sg_host) of the host */

    /* Registration (only inside sg_plugin_init). nsp is a namespace name
     * ("/", "/chat"). Registering anything for a namespace makes the host
     * serve it. event NULL in on_event registers a catch-all, called for
     * events that no named handler of this plugin takes. ud is passed back
     * to the handler as it is. */
    int (*use)(sg_plugin *p, const char *nsp, sg_connect_fn fn, void *ud);
    int (*on_connection)(sg_plugin *p, const char *nsp, sg_connection_fn fn, void *ud);
    int (*on_event)(sg_plugin *p, const char *nsp, const char *event,
                    sg_event_fn fn, void *ud);
    int (*on_disconnect)(sg_plugin *p, const char *nsp, sg_disconnect_fn fn, void *ud);

    /* The context. Strings are borrowed, valid during the call. */
    const char *(*socket_id)(sg_ctx *ctx);
    const char *(*nsp)(sg_ctx *ctx);
    /* The handshake of the session as a JSON object (borrowed):
     * {"address":…,"url":…,"query":{…},"headers":{…},"time":ms}. */
    json_t *(*handshake)(sg_ctx *ctx);

    /* Emit event with args (a JSON array, stolen; NULL for none) to this
     * context's socket. */
    int (*emit)(sg_ctx *ctx, const char *event, json_t *args);
    /* Acknowledge the event being handled with args (a JSON array, stolen;
     * NULL for none). -1 (logged at debug level only) if the client asked
     * for no ack or it was sent already. */
    int (*ack)(sg_ctx *ctx, json_t *args);
    /* From a connect middleware: refuse the connection; the client's
     * connect_error gets message (copied) and data (stolen, may be NULL). */
    int (*reject)(sg_ctx *ctx, const char *message, json_t *data);

    /* Binary values. binary_new copies len bytes (new reference, NULL on
     * ENOMEM); binary_data returns the bytes (borrowed from v) and sets
     * *len, or NULL when v is not a binary value. */
    json_t *(*binary_new)(const void *data, size_t len);
    const void *(*binary_data)(const json_t *v, size_t *len);

    /* Log one line through the host, prefixed with the plugin's file name
     * (ctx may be NULL: then without it, e.g. in sg_plugin_init). */
    void (*log)(sg_ctx *ctx, int level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

    /* More registration (only inside sg_plugin_init). A namespace given to
     * any registration may be a pattern: '*' matches any run of characters
     * and '?' one (fnmatch(3) rules), e.g. "/tenant-*" serves every
     * namespace of that shape (dynamic namespaces); host->nsp() tells which.
     * on_ack registers the handler that gets the replies (and timeouts) of
     * emit_with_ack calls made with that name, by any process. Ack names
     * are one space shared by all plugins: a name registered twice is
     * refused (the second plugin fails to load); names starting with '@'
     * are reserved for the host. */
    int (*use_packet)(sg_plugin *p, const char *nsp, sg_packet_fn fn, void *ud);
    int (*on_ack)(sg_plugin *p, const char *name, sg_ack_fn fn, void *ud);

    /* Emit to a target: rooms of a namespace, all but some rooms, the whole
     * namespace, everyone but the sender (SG_EMIT_BROADCAST). ctx may be NULL
     * (a plugin's own thread or timer): then t->nsp is required. args is a
     * JSON array (stolen; NULL for none). Returns the number of sockets
     * reached, or -1. "send" is emit_to / emit with the event "message". */
    int (*emit_to)(sg_ctx *ctx, const sg_target *t, const char *event, json_t *args);
    /* Emit to the context's socket asking for an acknowledgement. The reply,
     * or a timeout after timeout_ms, goes to the ack handler registered as
     * ack_name (see on_ack), with data (stolen, may be NULL). */
    int (*emit_with_ack)(sg_ctx *ctx, const char *event, json_t *args,
                         const char *ack_name, int64_t timeout_ms, json_t *data);

    /* Rooms of the context's socket. rooms() returns a new JSON array of
     * names (its own id included), NULL on failure. Names of rooms and
     * namespaces given to any call are UTF-8 text; other bytes make the
     * call fail (-1 or NULL, logged). */
    int (*join)(sg_ctx *ctx, const char *room);
    int (*leave)(sg_ctx *ctx, const char *room);
    json_t *(*rooms)(sg_ctx *ctx);

    /* socket.data: a JSON value kept with the socket in the store, seen by
     * every process and the CLI. get_data returns a new reference (JSON
     * null when unset, NULL on failure); set_data steals data. */
    json_t *(*get_data)(sg_ctx *ctx);
    int (*set_data)(sg_ctx *ctx, json_t *data);

    /* Disconnect the context's socket from its namespace (the client gets
     * DISCONNECT; handlers get "server namespace disconnect"); with close
     * non-zero, every socket of its client and then the connection itself. */
    int (*disconnect)(sg_ctx *ctx, int close);

    /* fetchSockets(): the sockets of nsp (NULL: the context's) in any of
     * rooms (NULL-terminated; NULL: all), as a new JSON array of
     * {"id":…,"nsp":…,"rooms":[…],"data":…,"handshake":{…}}; NULL on failure.
     * ctx may be NULL (then nsp is required). */
    json_t *(*fetch_sockets)(sg_ctx *ctx, const char *nsp, const char *const *rooms);

    /* ---- 1.1 ---------------------------------------------------------- */
    /* Register a handler that may refuse a handshake (only inside
     * sg_plugin_init; see sg_allow_request_fn). Handlers of all plugins run
     * in load order until one refuses. */
    int (*allow_request)(sg_plugin *p, sg_allow_request_fn fn, void *ud);
    /* From an allow_request handler: refuse with the Engine.IO error code
     * (0..5; 4 "Forbidden" is what the reference's allowRequest sends) and
     * message (copied, at most 200 bytes kept; NULL: the code's standard
     * message). The client gets HTTP 403 for code 4, else 400, with
     * {"code":code,"message":message}. -1 for a code outside 0..5 (the
     * request is refused all the same, with code 4). */
    int (*refuse)(sg_request *req, int code, const char *message);

    /* ---- 1.2 ---------------------------------------------------------- */
    /* Slow work off the handler. A handler runs inside its process's
     * transaction, and siogate-wsd serves every WebSocket of its process
     * from one thread: a handler that waits (a database, an HTTP call)
     * holds up every client of that process and the store's writers
     * meanwhile. Instead, defer(ctx) in the handler takes over the
     * event's acknowledgement (if the client asked for one) and returns a
     * handle (owned by the plugin until finish; NULL on failure, or when
     * ctx has no socket); the handler starts its work elsewhere (its own
     * thread) and returns at once. Later, from any thread, finish(d,
     * args) sends the acknowledgement with args (a JSON array, stolen;
     * NULL: no arguments) in a transaction of its own, and frees d; call
     * it exactly once per handle, also when the client asked for no
     * acknowledgement (then args are dropped). It returns -1 (logged)
     * when args are not an array or the socket is gone meanwhile (the
     * client disconnected; also while its socket waits to be recovered:
     * an acknowledgement is not replayed, as in the reference), 0
     * otherwise. Meanwhile that thread may emit
     * with emit_to(NULL, …) (target.nsp set; the socket's own id as its
     * room reaches just it) and use fetch_sockets(NULL, …). The host does
     * not wait for deferred work when it stops: finish what you can in
     * the plugin's own shutdown. */
    sg_deferred *(*defer)(sg_ctx *ctx);
    int (*finish)(sg_deferred *d, json_t *args);

    /* ---- 1.3 ---------------------------------------------------------- */
    /* From a connection handler: 1 when the socket was recovered (config
     * recovery_window: its client came back within the window with the
     * socket's private id; it has its id, rooms and data back and gets the
     * events it missed), 0 for a new connection (and in any other
     * handler). */
    int (*recovered)(sg_ctx *ctx);
} sg_host;

/* What a plugin exports (default visibility even under -fvisibility=hidden,
 * C linkage even from C++). */
#define SG_PLUGIN_EXPORT __attribute__((visibility("default")))

/* The entry point every plugin exports. */
SG_PLUGIN_EXPORT int sg_plugin_init(const sg_host *host, sg_plugin *self);
/* The ABI a plugin was built for: {major, minor}; define it with
 * SG_PLUGIN_DECLARE. */
SG_PLUGIN_EXPORT extern const uint32_t sg_plugin_abi[2];
typedef int (*sg_plugin_init_fn)(const sg_host *host, sg_plugin *self);

/* Put first in sg_plugin_init: refuses a host of another major or an
 * older minor than the one this plugin was built against. */
#define SG_PLUGIN_CHECK(host)                                              \
    do {                                                                   \
        if ((host)->abi_major != SG_ABI_MAJOR ||                           \
            (int64_t)(host)->abi_minor < (int64_t)SG_ABI_MINOR)            \
            return -1;                                                     \
    } while (0)

/* Every plugin also exports its required ABI, which the host checks
 * before calling sg_plugin_init (so a mismatch is named clearly). */
#define SG_PLUGIN_DECLARE                                                  \
    SG_PLUGIN_EXPORT const uint32_t sg_plugin_abi[2] = {SG_ABI_MAJOR, SG_ABI_MINOR}

#ifdef __cplusplus
}
#endif
#endif
