/* abi_1_0.c - a plugin as built against plugin ABI 1.0, before
 * allow_request and refuse were appended to the table (1.1): it declares
 * {1, 0} and checks for that minor, and must load and serve on this host
 * (the table only grows at its end). It serves "/old": a client that emits
 * "hello" gets "hello-from-1.0" back. */
#include <siogate/plugin.h>

SG_PLUGIN_EXPORT const uint32_t sg_plugin_abi[2] = {1, 0};

static const sg_host *host;

static int on_hello(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)args, (void)ud;
    return host->emit(ctx, "hello-from-1.0", NULL);
}

int sg_plugin_init(const sg_host *h, sg_plugin *self)
{
    if (h->abi_major != 1) /* any minor of major 1 has what 1.0 had */
        return -1;
    host = h;
    return h->on_event(self, "/old", "hello", on_hello, NULL);
}
