/* fail_init.c - a plugin whose sg_plugin_init fails (as one would when its
 * configuration is missing). The host must refuse it, naming the file, and
 * not start. It registers a handler first: nothing of it may stay behind. */
#include <siogate/plugin.h>

SG_PLUGIN_DECLARE;

static int on_connection(sg_ctx *ctx, json_t *auth, void *ud)
{
    (void)ctx, (void)auth, (void)ud;
    return 0;
}

int sg_plugin_init(const sg_host *host, sg_plugin *self)
{
    SG_PLUGIN_CHECK(host);
    host->on_connection(self, "/", on_connection, NULL);
    host->log(NULL, SG_PLUGIN_LOG_ERROR, "fail_init: refusing to start, as asked");
    return -1;
}
