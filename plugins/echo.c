/* echo.c - the echo plugin: the behaviour the integration tests rely on
 * (a contract: keep it stable).
 *
 * Namespaces "/" and "/custom":
 *   - on every connection, emit "auth" with the client's CONNECT payload
 *     (or {} when it sent none);
 *   - on "/", "message" is emitted back to the sender as "message-back"
 *     with the same arguments (binary included), and "message-with-ack"
 *     is acknowledged with the same arguments. */
#include <siogate/plugin.h>

SG_PLUGIN_DECLARE;

static const sg_host *host;

static int on_connection(sg_ctx *ctx, json_t *auth, void *ud)
{
    (void)ud;
    return host->emit(ctx, "auth", json_pack("[O]", auth));
}

static int on_message(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)ud;
    return host->emit(ctx, "message-back", json_copy(args));
}

static int on_message_with_ack(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)ud;
    return host->ack(ctx, json_copy(args));
}

int sg_plugin_init(const sg_host *h, sg_plugin *self)
{
    SG_PLUGIN_CHECK(h);
    host = h;
    if (h->on_connection(self, "/", on_connection, NULL) < 0 ||
        h->on_connection(self, "/custom", on_connection, NULL) < 0 ||
        h->on_event(self, "/", "message", on_message, NULL) < 0 ||
        h->on_event(self, "/", "message-with-ack", on_message_with_ack, NULL) < 0)
        return -1;
    return 0;
}
