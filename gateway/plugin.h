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
 * travel as Socket.IO attachments.
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
#define SG_ABI_MINOR 0

/* The context of one handler call: one socket (namespace connection) and,
 * for events, the packet being handled. Valid only during the call. */
typedef struct sg_ctx sg_ctx;
/* The plugin being initialised; valid only during sg_plugin_init. */
typedef struct sg_plugin sg_plugin;

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

enum sg_log_level_plugin { SG_PLUGIN_LOG_ERROR = 0, SG_PLUGIN_LOG_WARN = 1,
                           SG_PLUGIN_LOG_INFO = 2, SG_PLUGIN_LOG_DEBUG = 3 };

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
     * NULL for none). -1 if the client asked for no ack or it was sent. */
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
     * (ctx may be NULL; p may be NULL outside init). */
    void (*log)(sg_ctx *ctx, int level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
} sg_host;

/* The entry point every plugin exports. */
int sg_plugin_init(const sg_host *host, sg_plugin *self);
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
    const uint32_t sg_plugin_abi[2] = {SG_ABI_MAJOR, SG_ABI_MINOR}

#ifdef __cplusplus
}
#endif
#endif
