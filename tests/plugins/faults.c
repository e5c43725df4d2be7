/* tests/plugins/faults.c - a plugin that crashes on request, for
 * tests/integration/faults.test.mjs. Namespace "/":
 *
 *   "crash"      emit_to every socket of "/": "before-crash" [pid] (rows
 *                of the handler's own transaction), then abort(): the
 *                process dies inside the handler, that transaction is never
 *                committed, so nobody may ever receive "before-crash"
 *   "pid"        acks [pid of the process that ran the handler]
 *   "slow" [ms]  slow work done right (ABI 1.2): defers the event, returns
 *                at once, and a thread of this plugin acks ["done", ms]
 *                after ms milliseconds (0..10000) with host->finish
 *   "slow" [ms, "unsendable"]  the same, but finish is given arguments
 *                that cannot be sent (a string that is not UTF-8 text,
 *                made with json_stringn_nocheck): it fails, no ack
 *
 * Load it after echo.so (the echo application's events stay as they are). */
#include <siogate/plugin.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
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

/* The threads of "slow", joined when the plugin is unloaded (a thread
 * still running this code after dlclose would crash the process). A
 * test plugin: the list is only freed then. */
struct slow {
    sg_deferred *d;
    int ms;
    bool unsendable;
    pthread_t th;
    struct slow *next;
};
static pthread_mutex_t slow_mu = PTHREAD_MUTEX_INITIALIZER;
static struct slow *slows;

static void *slow_run(void *arg)
{
    struct slow *s = arg;
    usleep((useconds_t)s->ms * 1000);
    if (s->unsendable)
        host->finish(s->d, json_pack("[o]", json_stringn_nocheck("\xff", 1)));
    else
        host->finish(s->d, json_pack("[s,i]", "done", s->ms));
    return NULL;
}

static int ev_slow(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)ud;
    json_int_t ms = json_integer_value(json_array_get(args, 0));
    struct slow *s = calloc(1, sizeof *s);
    if (!s || ms < 0 || ms > 10000 || !(s->d = host->defer(ctx))) {
        free(s);
        return -1;
    }
    s->ms = (int)ms;
    const char *how = json_string_value(json_array_get(args, 1));
    s->unsendable = how && strcmp(how, "unsendable") == 0;
    pthread_mutex_lock(&slow_mu);
    int rc = pthread_create(&s->th, NULL, slow_run, s);
    if (rc == 0) {
        s->next = slows;
        slows = s;
    }
    pthread_mutex_unlock(&slow_mu);
    if (rc != 0) {
        host->finish(s->d, NULL);
        free(s);
        return -1;
    }
    return 0;
}

__attribute__((destructor)) static void slow_join_all(void)
{
    pthread_mutex_lock(&slow_mu);
    struct slow *s = slows;
    slows = NULL;
    pthread_mutex_unlock(&slow_mu);
    while (s) {
        struct slow *next = s->next;
        pthread_join(s->th, NULL);
        free(s);
        s = next;
    }
}

int sg_plugin_init(const sg_host *h, sg_plugin *self)
{
    SG_PLUGIN_CHECK(h);
    host = h;
    if (h->on_event(self, "/", "crash", ev_crash, NULL) < 0 ||
        h->on_event(self, "/", "pid", ev_pid, NULL) < 0 ||
        h->on_event(self, "/", "slow", ev_slow, NULL) < 0)
        return -1;
    return 0;
}
