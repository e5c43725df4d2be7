/* tests/plugins/faults.c - a plugin that crashes on request, for
 * tests/integration/faults.test.mjs. Namespace "/":
 *
 *   "crash"      emit_to every socket of "/": "before-crash" [pid] (rows
 *                of the handler's own transaction), then abort(): the
 *                process dies inside the handler, that transaction is never
 *                committed, so nobody may ever receive "before-crash"
 *   "pid"        acks [pid of the process that ran the handler]
 *
 * Load it after echo.so (the echo application's events stay as they are). */
#include <siogate/plugin.h>

#include <stdlib.h>
#include <unistd.h>

SG_PLUGIN_DECLARE;

static const sg_host *host;

static int ev_crash(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)args, (void)ud;
    sg_target t = {.nsp = "/"};
    host->emit_to(ctx, &t, "before-crash", json_pack("[i]", (int)getpid()));
    abort();
}

static int ev_pid(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)args, (void)ud;
    return host->ack(ctx, json_pack("[i]", (int)getpid()));
}

int sg_plugin_init(const sg_host *h, sg_plugin *self)
{
    SG_PLUGIN_CHECK(h);
    host = h;
    if (h->on_event(self, "/", "crash", ev_crash, NULL) < 0 ||
        h->on_event(self, "/", "pid", ev_pid, NULL) < 0)
        return -1;
    return 0;
}
