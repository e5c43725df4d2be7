/* bench_plugin.c - the handlers of the benchmarks (tests/bench/compare).
 *
 * tests/bench/reference.mjs has exactly the same ones on the reference
 * socket.io server, so that both sides do the same work:
 *
 * Namespace "/":
 *   "message-with-ack" ...args   acknowledged with the same arguments;
 *   "join" room                  the socket joins room, then the ack (no
 *                                arguments);
 *   "broadcast" room, payload    "tick" payload to every socket in room
 *                                (io.to(room).emit("tick", payload)); acked
 *                                (no arguments) when the client asks.
 *
 * Built by `make bench-programs` as tests/bench/bench_plugin.so; never
 * installed. */
#include <siogate/plugin.h>

SG_PLUGIN_DECLARE;

static const sg_host *host;

static int on_message_with_ack(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)ud;
    return host->ack(ctx, json_copy(args));
}

static int on_join(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)ud;
    const char *room = json_string_value(json_array_get(args, 0));
    if (!room || host->join(ctx, room) < 0)
        return -1;
    return host->ack(ctx, NULL);
}

static int on_broadcast(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)ud;
    const char *room = json_string_value(json_array_get(args, 0));
    json_t *payload = json_array_get(args, 1);
    if (!room || !payload)
        return -1;
    const char *to[] = {room, NULL};
    sg_target t = {.rooms = to};
    if (host->emit_to(ctx, &t, "tick", json_pack("[O]", payload)) < 0)
        return -1;
    host->ack(ctx, NULL); /* -1 (debug log only) when the client asked for none */
    return 0;
}

int sg_plugin_init(const sg_host *h, sg_plugin *self)
{
    SG_PLUGIN_CHECK(h);
    host = h;
    if (h->on_event(self, "/", "message-with-ack", on_message_with_ack, NULL) < 0 ||
        h->on_event(self, "/", "join", on_join, NULL) < 0 ||
        h->on_event(self, "/", "broadcast", on_broadcast, NULL) < 0)
        return -1;
    return 0;
}
