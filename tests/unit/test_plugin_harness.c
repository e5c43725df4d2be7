/* test_plugin_harness.c - a plugin under test with a fake host table.
 *
 * The way to unit-test a plugin without a server: dlopen it, hand its
 * sg_plugin_init a table of fake host functions that record what the
 * plugin registers and emits, then call its handlers directly. Here on
 * plugins/echo.so. */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin.h"
#include "plugins.h"
#include "socketio.h"
#include "tap.h"

/* ---- the fake host ---- */

struct sg_ctx { const char *nsp; int64_t ack_id; };

struct reg { int kind; char nsp[32]; char event[32]; void (*fn)(void); };
static struct reg regs[32];
static int nregs;
static char last_emit[256], last_ack[256];

static int fake_reg(int kind, const char *nsp, const char *event, void (*fn)(void))
{
    if (nregs == 32)
        return -1;
    regs[nregs].kind = kind;
    snprintf(regs[nregs].nsp, sizeof regs[nregs].nsp, "%s", nsp ? nsp : "");
    snprintf(regs[nregs].event, sizeof regs[nregs].event, "%s", event ? event : "*");
    regs[nregs++].fn = fn;
    return 0;
}
static int f_use(sg_plugin *p, const char *nsp, sg_connect_fn fn, void *ud)
{ (void)p; (void)ud; return fake_reg(0, nsp, NULL, (void (*)(void))fn); }
static int f_conn(sg_plugin *p, const char *nsp, sg_connection_fn fn, void *ud)
{ (void)p; (void)ud; return fake_reg(1, nsp, NULL, (void (*)(void))fn); }
static int f_event(sg_plugin *p, const char *nsp, const char *ev, sg_event_fn fn, void *ud)
{ (void)p; (void)ud; return fake_reg(2, nsp, ev, (void (*)(void))fn); }
static int f_disc(sg_plugin *p, const char *nsp, sg_disconnect_fn fn, void *ud)
{ (void)p; (void)ud; return fake_reg(3, nsp, NULL, (void (*)(void))fn); }

/* records "event:<compact JSON of args, binary values as their length>" */
static void record(char *out, size_t cap, const char *event, json_t *args)
{
    json_t *bins = json_array();
    sg_sio_deconstruct(&args, bins);
    char *j = args ? json_dumps(args, JSON_COMPACT) : strdup("null");
    snprintf(out, cap, "%s:%s+%zu", event, j, json_array_size(bins));
    free(j);
    json_decref(args);
    json_decref(bins);
}
static int f_emit(sg_ctx *c, const char *event, json_t *args)
{ (void)c; record(last_emit, sizeof last_emit, event, args); return 0; }
static int f_ack(sg_ctx *c, json_t *args)
{ if (c->ack_id < 0) { json_decref(args); return -1; }
  record(last_ack, sizeof last_ack, "ack", args); c->ack_id = -1; return 0; }
static const char *f_nsp(sg_ctx *c) { return c->nsp; }
static void f_log(sg_ctx *c, int level, const char *fmt, ...) { (void)c; (void)level; (void)fmt; }

static sg_host fake_host(void)
{
    sg_host h;
    memset(&h, 0, sizeof h);
    h.abi_major = SG_ABI_MAJOR;
    h.abi_minor = SG_ABI_MINOR;
    h.size = sizeof h;
    h.use = f_use;
    h.on_connection = f_conn;
    h.on_event = f_event;
    h.on_disconnect = f_disc;
    h.emit = f_emit;
    h.ack = f_ack;
    h.nsp = f_nsp;
    h.log = f_log;
    h.binary_new = sg_sio_binary_new;
    h.binary_data = sg_sio_binary_data;
    return h;
}

static struct reg *find(int kind, const char *nsp, const char *event)
{
    for (int i = 0; i < nregs; i++)
        if (regs[i].kind == kind && strcmp(regs[i].nsp, nsp) == 0 &&
            (!event || strcmp(regs[i].event, event) == 0))
            return &regs[i];
    return NULL;
}

static void *plugin;
static sg_host host;

TEST("harness: echo.so registers its namespaces and handlers with a fake host")
{
    const char *b = getenv("SG_BUILDDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/plugins/echo.so", b ? b : ".");
    plugin = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    CHECK(plugin != NULL);
    if (!plugin)
        return;
    const uint32_t *abi = dlsym(plugin, "sg_plugin_abi");
    CHECK(abi && abi[0] == SG_ABI_MAJOR);
    sg_plugin_init_fn init;
    void *sym = dlsym(plugin, "sg_plugin_init");
    CHECK(sym != NULL);
    memcpy(&init, &sym, sizeof init);
    host = fake_host();
    CHECK_INT(init(&host, NULL), 0);
    CHECK(find(1, "/", NULL) && find(1, "/custom", NULL));
    CHECK(find(2, "/", "message") && find(2, "/", "message-with-ack"));
    CHECK(find(2, "/custom", "message") == NULL);
}

TEST("harness: a host of another major is refused by SG_PLUGIN_CHECK")
{
    if (!plugin)
        return;
    sg_plugin_init_fn init;
    void *sym = dlsym(plugin, "sg_plugin_init");
    memcpy(&init, &sym, sizeof init);
    sg_host other = fake_host();
    other.abi_major = SG_ABI_MAJOR + 1;
    CHECK(init(&other, NULL) != 0);
}

TEST("harness: handlers called directly: connection, message, message-with-ack")
{
    struct reg *conn = find(1, "/", NULL), *msg = find(2, "/", "message"),
               *ackd = find(2, "/", "message-with-ack");
    if (!conn || !msg || !ackd)
        return;
    sg_ctx ctx = {"/", -1};
    sg_connection_fn cf;
    memcpy(&cf, &conn->fn, sizeof cf);
    json_t *auth = json_pack("{s:s}", "token", "abc");
    CHECK_INT(cf(&ctx, auth, NULL), 0);
    CHECK_STR(last_emit, "auth:[{\"token\":\"abc\"}]+0");
    json_decref(auth);

    sg_event_fn ef;
    memcpy(&ef, &msg->fn, sizeof ef);
    json_t *args = json_pack("[i,s,o]", 1, "two", sg_sio_binary_new("\x01\x02", 2));
    CHECK_INT(ef(&ctx, "message", args, NULL), 0);
    CHECK_STR(last_emit, "message-back:[1,\"two\",{\"_placeholder\":true,\"num\":0}]+1");
    /* the handler only borrowed args: still intact, binary included */
    size_t len = 0;
    CHECK(sg_sio_binary_data(json_array_get(args, 2), &len) && len == 2);

    memcpy(&ef, &ackd->fn, sizeof ef);
    ctx.ack_id = 7;
    CHECK_INT(ef(&ctx, "message-with-ack", args, NULL), 0);
    CHECK_STR(last_ack, "ack:[1,\"two\",{\"_placeholder\":true,\"num\":0}]+1");
    ctx.ack_id = -1; /* no ack asked: the plugin's ack fails, the handler reports it */
    CHECK(ef(&ctx, "message-with-ack", args, NULL) != 0);
    json_decref(args);
}

TEST("plugin names: a path is kept, a bare name is looked up in the plugin dir")
{
    char *saved = getenv("SIOGATE_PLUGIN_DIR") ? strdup(getenv("SIOGATE_PLUGIN_DIR")) : NULL;
    char *p;
    unsetenv("SIOGATE_PLUGIN_DIR");
    p = sg_plugin_file("echo");
    CHECK_STR(p, SG_PKGLIBDIR "/echo.so");
    free(p);
    p = sg_plugin_file("echo.so");
    CHECK_STR(p, SG_PKGLIBDIR "/echo.so");
    free(p);
    setenv("SIOGATE_PLUGIN_DIR", "", 1); /* empty: as if unset */
    p = sg_plugin_file("auth");
    CHECK_STR(p, SG_PKGLIBDIR "/auth.so");
    free(p);
    setenv("SIOGATE_PLUGIN_DIR", "/opt/sg/plugins", 1);
    p = sg_plugin_file("chat");
    CHECK_STR(p, "/opt/sg/plugins/chat.so");
    free(p);
    p = sg_plugin_file("my.plugin.so");
    CHECK_STR(p, "/opt/sg/plugins/my.plugin.so");
    free(p);
    /* anything with a slash is a path, absolute or relative */
    p = sg_plugin_file("./echo.so");
    CHECK_STR(p, "./echo.so");
    free(p);
    p = sg_plugin_file("plugins/echo");
    CHECK_STR(p, "plugins/echo");
    free(p);
    p = sg_plugin_file("/usr/lib/x.so");
    CHECK_STR(p, "/usr/lib/x.so");
    free(p);
    if (saved)
        setenv("SIOGATE_PLUGIN_DIR", saved, 1);
    else
        unsetenv("SIOGATE_PLUGIN_DIR");
    free(saved);
}

/* ---- an allow_request handler (ABI 1.1), on tests/plugins/allow.so ---- */

struct sg_request { int code; char message[64]; };
static sg_allow_request_fn allow_fn;
static int f_allow_request(sg_plugin *p, sg_allow_request_fn fn, void *ud)
{ (void)p; (void)ud; allow_fn = fn; return 0; }
static int f_refuse(sg_request *req, int code, const char *message)
{ req->code = code; snprintf(req->message, sizeof req->message, "%s", message ? message : ""); return 0; }

TEST("harness: an allow_request handler called directly with a handshake object")
{
    const char *b = getenv("SG_BUILDDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/tests/plugins/allow.so", b ? b : ".");
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    CHECK(dl != NULL);
    if (!dl)
        return;
    const uint32_t *abi = dlsym(dl, "sg_plugin_abi");
    CHECK(abi && abi[0] == 1 && abi[1] == SG_ABI_MINOR); /* built against this header */
    sg_plugin_init_fn init;
    void *sym = dlsym(dl, "sg_plugin_init");
    memcpy(&init, &sym, sizeof init);
    sg_host h = fake_host();
    h.allow_request = f_allow_request;
    h.refuse = f_refuse;
    CHECK_INT(init(&h, NULL), 0);
    CHECK(allow_fn != NULL);
    if (allow_fn) {
        sg_request req = {-1, ""};
        json_t *info = json_pack("{s:{}}", "query");
        CHECK_INT(allow_fn(&req, info, NULL), 0); /* let through */
        CHECK_INT(req.code, -1);
        json_decref(info);
        info = json_pack("{s:{s:s}}", "query", "deny", "code3");
        CHECK_INT(allow_fn(&req, info, NULL), 1);
        CHECK_INT(req.code, 3);
        CHECK_STR(req.message, "Bad client");
        json_decref(info);
    }
    dlclose(dl);
}

int main(void)
{
    int rc = tap_run();
    if (plugin)
        dlclose(plugin);
    return rc;
}
