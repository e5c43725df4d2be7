/* skeleton.c - the plugin to copy when you start a new one.
 *
 * What it does: serves the namespace "/skeleton". A client that emits
 * "ping" with an acknowledgement gets back
 *
 *     {"pong": true, "time": <server clock, ms since the epoch>, "count": N}
 *
 * where N counts the pings of this socket so far. The count lives in the
 * socket's data, kept by siogate in its store, so it is right whichever
 * gateway process handles the next ping.
 *
 *     const r = await io("/skeleton").emitWithAck("ping");   // r.count === 1
 *
 * To make your own: copy this file, rename the namespace and the events,
 * and build it outside siogate's tree (docs/plugins.md says more):
 *
 *     cc -shared -fPIC $(pkg-config --cflags siogate-plugin jansson) \
 *        -o myplugin.so myplugin.c $(pkg-config --libs jansson)
 *
 * then name it in siogate.conf (one line per plugin, loaded in order):
 *
 *     plugin = /usr/local/lib/siogate/myplugin.so
 *
 * Three rules to keep in mind while reading:
 *  1. Everything but sg_plugin_init is static: a plugin exports exactly
 *     sg_plugin_init and sg_plugin_abi.
 *  2. A handler may run in any gateway process and in several threads at
 *     once. Keep per-socket state in socket data (host->get_data/set_data),
 *     never in globals; a global set once in sg_plugin_init and only read
 *     afterwards (like `host` below) is fine.
 *  3. JSON you are handed is borrowed; JSON you hand to the host (emit, ack,
 *     set_data, reject) is stolen, even when the call fails. So
 *     host->ack(ctx, json_pack(...)) never leaks, and you never decref what
 *     you passed. */
#include <siogate/plugin.h> /* includes <jansson.h> */

#include <time.h>

/* The ABI this file is built against (SG_ABI_MAJOR.SG_ABI_MINOR of the
 * header). The host reads it before anything else and refuses a plugin of
 * another major, or of a newer minor than its own. Exactly once per .so. */
SG_PLUGIN_DECLARE;

#define NSP "/skeleton"

/* The host's function table, kept by sg_plugin_init. Read-only afterwards,
 * so sharing it between threads is safe. */
static const sg_host *host;

static json_int_t now_ms(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "ping": count it in socket data, then acknowledge.
 *
 * args is the JSON array of the event's arguments (borrowed: do not decref;
 * json_incref it if you want to keep it past the return). The return value
 * tells the host whether the handler worked: -1 makes it log a line naming
 * this plugin, the event and the socket; the client is not told. */
static int on_ping(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)args, (void)ud;

    /* get_data returns a NEW reference: JSON null when nothing was stored
     * yet, NULL when the store failed. Events of one socket are handled one
     * at a time, in the order the client sent them, so this read-modify-
     * write cannot race with the socket's next ping. */
    json_t *data = host->get_data(ctx);
    if (!data)
        return -1;
    json_int_t count = json_integer_value(json_object_get(data, "pings")) + 1;
    json_decref(data);

    /* set_data steals its argument, even on failure. */
    if (host->set_data(ctx, json_pack("{s:I}", "pings", count)) < 0)
        return -1;

    /* ack answers the client's callback, once; its arguments are a JSON
     * array (stolen). It fails (-1, logged) when the client sent "ping"
     * without asking for an acknowledgement, which we ignore: the count is
     * kept all the same. */
    host->ack(ctx, json_pack("[{s:b,s:I,s:I}]", "pong", 1, "time", now_ms(), "count", count));
    return 0;
}

/* A new socket joined "/skeleton". auth is what the client passed as
 * `auth` (borrowed; {} when nothing). Emits are allowed from here on: the
 * client receives them after its "connect". */
static int on_connection(sg_ctx *ctx, json_t *auth, void *ud)
{
    (void)auth, (void)ud;
    host->log(ctx, SG_PLUGIN_LOG_DEBUG, "socket %s connected", host->socket_id(ctx));
    return host->emit(ctx, "ready", json_pack("[{s:s}]", "ping", "emit \"ping\" with an ack"));
}

/* The socket left; reason is Socket.IO's ("client namespace disconnect",
 * "transport close", "ping timeout", ...). Called once per socket, in some
 * process. Nothing can be emitted to this socket any more (but a plugin
 * could still emit to others, with host->emit_to). */
static void on_disconnect(sg_ctx *ctx, const char *reason, void *ud)
{
    (void)ud;
    host->log(ctx, SG_PLUGIN_LOG_DEBUG, "socket %s left: %s", host->socket_id(ctx), reason);
}

/* The entry point, called once per process right after the file is loaded.
 * Check the ABI, keep the table, register handlers (only allowed here) and
 * return 0. Anything else refuses the plugin: siogate then does not start,
 * so fail here, loudly, rather than at the first event. */
int sg_plugin_init(const sg_host *h, sg_plugin *self)
{
    SG_PLUGIN_CHECK(h); /* returns -1 on a host of another major or older minor */
    host = h;

    /* Registering anything for a namespace makes siogate serve it. The
     * last argument (ud, here NULL) comes back to the handler as is. */
    if (h->on_connection(self, NSP, on_connection, NULL) < 0 ||
        h->on_event(self, NSP, "ping", on_ping, NULL) < 0 ||
        h->on_disconnect(self, NSP, on_disconnect, NULL) < 0)
        return -1;

    h->log(NULL, SG_PLUGIN_LOG_INFO, "skeleton: serving %s", NSP);
    return 0;
}
