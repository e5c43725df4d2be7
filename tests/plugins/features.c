/* features.c - a test plugin that exposes every host function through
 * events, so that the integration tests (tests/integration/plugin-*.test.mjs)
 * can drive the whole plugin ABI through the real stack.
 *
 * Namespace "/f" (every event acks when the client asked for it):
 *   connect middleware   rejects when the handshake query has deny=1
 *                        (message "denied", data {query, ua}); with
 *                        deny=unsendable tries two rejects the host refuses
 *                        first (message "denied after", data {message,
 *                        data}: what they returned); returns -1
 *                        without rejecting when auth.fail is true
 *   on connection        emits "hello" {id, nsp, auth, handshake, recovered}
 *                        (recovered: host->recovered(), ABI 1.3)
 *   per-packet mw        drops every event named "forbidden"
 *   catch-all            acks ["catch-all", event] and emits "caught" [event]
 *   "echo" ...           emits "echo" with the same arguments
 *   "seq" n              checks handler order through socket data: acks
 *                        nothing, emits "seq" [n, previous n or null, pid]
 *   "whoami"             acks {id, nsp, pid}
 *   "join" r | [r...]    joins, acks rooms()
 *   "leave" r            leaves, acks rooms()
 *   "rooms"              acks rooms()
 *   "emit-to" spec       emit_to(spec); acks [count]. spec: {event, args,
 *                        nsp, rooms:[], except:[], broadcast, volatile,
 *                        noctx (ctx NULL: requires nsp)}
 *   "later" spec         as "emit-to", from a thread of the plugin with ctx
 *                        NULL after spec.delay_ms; acks [0] at once
 *   "set-data" v         set_data(v); acks [get_data(), pid]
 *   "get-data"           acks [get_data(), pid]
 *   "kick" {close}       acks [], then host->disconnect(ctx, close) ("disconnect"
 *                        is a reserved event name in the clients)
 *   "fetch" {nsp, rooms} acks [fetch_sockets()]
 *   "ask" {event, args, timeout, data}
 *                        emit_with_ack to the sender, ack name "ask"; acks
 *                        [rc, pid]. The ack handler emits "asked-reply"
 *                        {args, data, pid} or "asked-timeout" {data, pid}
 *   "binary-ack" ...     acks [{lengths of the binary arguments (null for
 *                        others)}, a binary of the first one's bytes
 *                        reversed, the arguments as received]
 *   "bytes" what <bin>   a name of the binary's bytes given to one host call
 *                        (join, leave, emit-room, emit-except, emit-nsp,
 *                        emit-event, fetch-room, fetch-nsp, set-data,
 *                        arg-*: the name in the arguments of an emit, ack
 *                        or emit_with_ack); acks [result, rooms()]: names
 *                        and arguments that are not UTF-8
 *   "fail"               two handlers: the first returns -1 (logged by the
 *                        host), the second still runs and acks ["after-fail"]
 *   on disconnect        emit_to room "observers" of "/f": "gone" {id, reason}
 *
 * Namespace "/q": the events of "/f" (acks and emit-to alike), but nothing
 * emitted on connection; the connection handler sets socket data
 * {"recovered": host->recovered()} (1.3), which "set-data" may replace.
 * On "/f", "hello" also carries "recovered".
 *
 * Namespace pattern "/tenant-*": on connection emits "hello" [nsp()];
 * "whoami" acks {id, nsp}.
 *
 * Every reply carries what the plugin saw, never what the test expects: the
 * tests do the checking. */
#include <siogate/plugin.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

SG_PLUGIN_DECLARE;

static const sg_host *host;

/* ---- helpers ------------------------------------------------------------- */

/* A NULL-terminated array of the strings in a (a JSON array of strings or
 * one string); the strings are borrowed from a. NULL when a is absent or
 * null (which emit_to and fetch_sockets read as "no list"). *bad is set on a
 * malformed list. Free the result with free(). */
static const char **str_list(json_t *a, int *bad)
{
    if (!a || json_is_null(a))
        return NULL;
    size_t n = json_is_string(a) ? 1 : json_array_size(a);
    if (!json_is_string(a) && !json_is_array(a)) {
        *bad = 1;
        return NULL;
    }
    const char **v = calloc(n + 1, sizeof *v);
    if (!v) {
        *bad = 1;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_is_string(a) ? a : json_array_get(a, i);
        if (!json_is_string(s)) {
            free(v);
            *bad = 1;
            return NULL;
        }
        v[i] = json_string_value(s);
    }
    return v;
}

/* ack() only when the client asked for one; the host answers -1 (and logs)
 * otherwise, which these tests do not want in the log. */
static int reply(sg_ctx *ctx, json_t *args) { return host->ack(ctx, args); }

/* ---- connection ----------------------------------------------------------- */

static int mw_connect(sg_ctx *ctx, json_t *auth, void *ud)
{
    (void)ud;
    json_t *hs = host->handshake(ctx);
    json_t *query = json_object_get(hs, "query");
    json_t *headers = json_object_get(hs, "headers");
    if (json_is_true(json_object_get(auth, "fail")))
        return -1; /* a broken middleware: the host must refuse all the same */
    const char *deny = json_string_value(json_object_get(query, "deny"));
    if (deny && strcmp(deny, "1") == 0) {
        host->reject(ctx, "denied",
                     json_pack("{s:O?,s:O?}", "query", query, "ua",
                               json_object_get(headers, "user-agent")));
        return 1;
    }
    if (deny && strcmp(deny, "unsendable") == 0) {
        /* two rejects the host refuses (a message, then data, that are not
         * UTF-8 text), then one it takes, which tells what the two gave */
        int m = host->reject(ctx, "\xff", NULL);
        int d = host->reject(ctx, "denied", json_pack("[o]", json_stringn_nocheck("\xff", 1)));
        host->reject(ctx, "denied after", json_pack("{s:i,s:i}", "message", m, "data", d));
        return 1;
    }
    return 0;
}

static int on_connection(sg_ctx *ctx, json_t *auth, void *ud)
{
    (void)ud;
    return host->emit(ctx, "hello",
                      json_pack("[{s:s,s:s,s:O,s:O?,s:b}]", "id", host->socket_id(ctx), "nsp",
                                host->nsp(ctx), "auth", auth, "handshake", host->handshake(ctx),
                                "recovered", host->recovered(ctx)));
}

/* "/q": no event on connection (a client there has seen no event yet);
 * the connection handler tells whether it was recovered through socket
 * data {"recovered": bool} (read with "get-data"). */
static int quiet_connection(sg_ctx *ctx, json_t *auth, void *ud)
{
    (void)auth, (void)ud;
    return host->set_data(ctx, json_pack("{s:b}", "recovered", host->recovered(ctx)));
}

static void on_disconnect(sg_ctx *ctx, const char *reason, void *ud)
{
    (void)ud;
    static const char *const observers[] = {"observers", NULL};
    sg_target t = {.nsp = "/f", .rooms = observers};
    host->emit_to(ctx, &t, "gone",
                  json_pack("[{s:s,s:s}]", "id", host->socket_id(ctx), "reason", reason));
}

static int mw_packet(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)ctx, (void)args, (void)ud;
    return strcmp(event, "forbidden") == 0 ? 1 : 0;
}

static int on_any(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)args, (void)ud;
    host->emit(ctx, "caught", json_pack("[s]", event));
    /* the host logs an error when no ack was asked for: harmless here */
    reply(ctx, json_pack("[s,s]", "catch-all", event));
    return 0;
}

/* ---- events ---------------------------------------------------------------- */

static int ev_echo(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)ud;
    return host->emit(ctx, "echo", json_copy(args));
}

static int ev_seq(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)ud;
    json_t *data = host->get_data(ctx);
    if (!data)
        return -1;
    json_t *prev = json_object_get(data, "seq");
    json_t *out = json_pack("[O,O,I]", json_array_get(args, 0), prev ? prev : json_null(),
                            (json_int_t)getpid());
    json_t *next = json_is_object(data) ? json_copy(data) : json_object();
    json_decref(data);
    if (!next || json_object_set(next, "seq", json_array_get(args, 0)) < 0) {
        json_decref(next);
        json_decref(out);
        return -1;
    }
    if (host->set_data(ctx, next) < 0) {
        json_decref(out);
        return -1;
    }
    return host->emit(ctx, "seq", out);
}

static int ev_whoami(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)args, (void)ud;
    return reply(ctx, json_pack("[{s:s,s:s,s:I}]", "id", host->socket_id(ctx), "nsp",
                                host->nsp(ctx), "pid", (json_int_t)getpid()));
}

static int ev_join(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)ud;
    int bad = 0;
    const char **rooms = str_list(json_array_get(args, 0), &bad);
    if (bad || !rooms) {
        free(rooms);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; rooms[i] && rc == 0; i++)
        rc = strcmp(event, "join") == 0 ? host->join(ctx, rooms[i]) : host->leave(ctx, rooms[i]);
    free(rooms);
    if (rc < 0)
        return -1;
    json_t *r = host->rooms(ctx);
    return r ? reply(ctx, json_pack("[o]", r)) : -1;
}

static int ev_rooms(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)args, (void)ud;
    json_t *r = host->rooms(ctx);
    return r ? reply(ctx, json_pack("[o]", r)) : -1;
}

/* emit_to as spec says; ctx may be NULL. */
static int emit_spec(sg_ctx *ctx, json_t *spec)
{
    int bad = 0;
    const char **rooms = str_list(json_object_get(spec, "rooms"), &bad);
    const char **except = str_list(json_object_get(spec, "except"), &bad);
    const char *event = json_string_value(json_object_get(spec, "event"));
    json_t *args = json_object_get(spec, "args");
    int rc = -1;
    if (!bad && event) {
        sg_target t = {
            .nsp = json_string_value(json_object_get(spec, "nsp")),
            .rooms = rooms,
            .except = except,
            .flags = (json_is_true(json_object_get(spec, "broadcast")) ? SG_EMIT_BROADCAST : 0) |
                     (json_is_true(json_object_get(spec, "volatile")) ? SG_EMIT_VOLATILE : 0),
        };
        rc = host->emit_to(ctx, &t, event, args ? json_copy(args) : NULL);
    }
    free(rooms);
    free(except);
    return rc;
}

static int ev_emit_to(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)ud;
    json_t *spec = json_array_get(args, 0);
    int n = emit_spec(json_is_true(json_object_get(spec, "noctx")) ? NULL : ctx, spec);
    return reply(ctx, json_pack("[i]", n));
}

/* "later": a thread of the plugin emitting with ctx NULL, as a timer would.
 * Threads still running are waited for when the plugin is unloaded (the
 * destructor below), so that dlclose() never unmaps code a thread runs. */
static atomic_int threads_running;

static void *later_main(void *arg)
{
    json_t *spec = arg;
    json_int_t ms = json_integer_value(json_object_get(spec, "delay_ms"));
    if (ms > 0)
        nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000L}, NULL);
    if (emit_spec(NULL, spec) < 0)
        host->log(NULL, SG_PLUGIN_LOG_ERROR, "later: emit_to failed");
    json_decref(spec);
    atomic_fetch_sub(&threads_running, 1);
    return NULL;
}

static int ev_later(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)ud;
    json_t *spec = json_deep_copy(json_array_get(args, 0));
    if (!spec)
        return -1;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    atomic_fetch_add(&threads_running, 1);
    int rc = pthread_create(&t, &attr, later_main, spec);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        atomic_fetch_sub(&threads_running, 1);
        json_decref(spec);
        return -1;
    }
    return reply(ctx, json_pack("[i]", 0));
}

__attribute__((destructor)) static void wait_threads(void)
{
    for (int i = 0; i < 500 && atomic_load(&threads_running) > 0; i++)
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
}

static int ev_set_data(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)ud;
    json_t *v = json_array_get(args, 0);
    if (host->set_data(ctx, v ? json_deep_copy(v) : json_null()) < 0)
        return -1;
    json_t *d = host->get_data(ctx);
    return d ? reply(ctx, json_pack("[o,I]", d, (json_int_t)getpid())) : -1;
}

static int ev_get_data(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)args, (void)ud;
    json_t *d = host->get_data(ctx);
    return d ? reply(ctx, json_pack("[o,I]", d, (json_int_t)getpid())) : -1;
}

static int ev_disconnect(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)ud;
    int close = json_is_true(json_object_get(json_array_get(args, 0), "close"));
    reply(ctx, NULL);
    return host->disconnect(ctx, close);
}

static int ev_fetch(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)ud;
    json_t *spec = json_array_get(args, 0);
    int bad = 0;
    const char **rooms = str_list(json_object_get(spec, "rooms"), &bad);
    if (bad)
        return -1;
    json_t *list = host->fetch_sockets(json_is_true(json_object_get(spec, "noctx")) ? NULL : ctx,
                                       json_string_value(json_object_get(spec, "nsp")), rooms);
    free(rooms);
    return list ? reply(ctx, json_pack("[o]", list)) : -1;
}

static int ev_ask(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)ud;
    json_t *spec = json_array_get(args, 0);
    json_t *a = json_object_get(spec, "args");
    json_t *d = json_object_get(spec, "data");
    json_int_t timeout = json_integer_value(json_object_get(spec, "timeout"));
    const char *ev = json_string_value(json_object_get(spec, "event"));
    int rc = host->emit_with_ack(ctx, ev ? ev : "ask", a ? json_copy(a) : NULL, "ask",
                                 timeout > 0 ? timeout : 5000, d ? json_deep_copy(d) : NULL);
    return reply(ctx, json_pack("[i,I]", rc, (json_int_t)getpid()));
}

static void on_ask_reply(sg_ctx *ctx, const char *name, json_t *args, json_t *data, void *ud)
{
    (void)name, (void)ud;
    if (args)
        host->emit(ctx, "asked-reply",
                   json_pack("[{s:O,s:O,s:I}]", "args", args, "data", data, "pid",
                             (json_int_t)getpid()));
    else
        host->emit(ctx, "asked-timeout",
                   json_pack("[{s:O,s:I}]", "data", data, "pid", (json_int_t)getpid()));
}

static int ev_binary_ack(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)ud;
    json_t *lens = json_array();
    json_t *rev = NULL;
    size_t i;
    json_t *v;
    json_array_foreach(args, i, v) {
        size_t len;
        const unsigned char *b = host->binary_data(v, &len);
        json_array_append_new(lens, b ? json_integer((json_int_t)len) : json_null());
        if (b && !rev) {
            unsigned char *r = malloc(len ? len : 1);
            if (!r)
                break;
            for (size_t k = 0; k < len; k++)
                r[k] = b[len - 1 - k];
            rev = host->binary_new(r, len);
            free(r);
        }
    }
    return reply(ctx, json_pack("[o,o,O]", lens, rev ? rev : json_null(), args));
}

/* "bytes" what <binary>: a name made of the binary's bytes (any bytes but
 * NUL), given to one host call; acks [result, rooms()] where result is
 * the call's (join/leave: 0 or -1; emit-*: the count or -1; fetch-*: the
 * number of sockets or -1 for NULL). what: join, leave, emit-room (to that
 * room), emit-except (to all of the namespace but that room), emit-nsp (to
 * all of that namespace), emit-event (to the sender, the name is the
 * event's), event-emit and event-ask (emit and emit_with_ack of an event
 * of that name), fetch-room, fetch-nsp; emits are of "bytes-got"; set-data
 * ({"k": the name as a string made with json_stringn_nocheck}); the
 * name as an argument: arg-emit (emit), arg-emit-to (emit_to the
 * sender), arg-ack (ack), arg-ask (emit_with_ack), each [string], and
 * arg-key (emit, [{name: true}]) and arg-deep (emit, the name as a
 * string in arrays nested 1,100 deep). */
static int ev_bytes(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)ud;
    const char *what = json_string_value(json_array_get(args, 0));
    size_t len;
    const char *b = host->binary_data(json_array_get(args, 1), &len);
    char *name = b ? malloc(len + 1) : NULL;
    if (!what || !name || memchr(b, '\0', len)) {
        free(name);
        return -1;
    }
    memcpy(name, b, len);
    name[len] = '\0';
    const char *one[] = {name, NULL};
    const char *own[] = {host->socket_id(ctx), NULL};
    sg_target t = {0};
    long rc = -2;
    if (!strcmp(what, "join") || !strcmp(what, "leave")) {
        rc = !strcmp(what, "join") ? host->join(ctx, name) : host->leave(ctx, name);
    } else if (!strncmp(what, "emit-", 5)) {
        t.rooms = !strcmp(what, "emit-room") ? one : !strcmp(what, "emit-event") ? own : NULL;
        t.except = !strcmp(what, "emit-except") ? one : NULL;
        t.nsp = !strcmp(what, "emit-nsp") ? name : NULL;
        rc = host->emit_to(ctx, &t, !strcmp(what, "emit-event") ? name : "bytes-got", NULL);
    } else if (!strcmp(what, "event-emit")) {
        rc = host->emit(ctx, name, NULL);
    } else if (!strcmp(what, "event-ask")) {
        rc = host->emit_with_ack(ctx, name, NULL, "ask", 1000, NULL);
    } else if (!strncmp(what, "arg-", 4)) {
        /* the name as a string argument (json_stringn_nocheck), or as an
         * object's key, or "deep": arrays nested 1,100 deep */
        json_t *arg;
        if (!strcmp(what, "arg-key")) {
            arg = json_object();
            json_object_setn_nocheck(arg, name, len, json_true());
        } else if (!strcmp(what, "arg-deep")) {
            arg = json_string(name);
            for (int i = 0; i < 1100 && arg; i++)
                arg = json_pack("[o]", arg);
        } else {
            arg = json_stringn_nocheck(name, len);
        }
        json_t *out = json_pack("[o]", arg);
        if (!strcmp(what, "arg-ack"))
            rc = host->ack(ctx, out);
        else if (!strcmp(what, "arg-ask"))
            rc = host->emit_with_ack(ctx, "bytes-got", out, "ask", 1000, NULL);
        else if (!strcmp(what, "arg-emit-to"))
            rc = host->emit_to(ctx, &(sg_target){.rooms = own}, "bytes-got", out);
        else
            rc = host->emit(ctx, "bytes-got", out);
    } else if (!strcmp(what, "set-data")) {
        rc = host->set_data(ctx, json_pack("{s:o}", "k", json_stringn_nocheck(name, len)));
    } else if (!strncmp(what, "fetch-", 6)) {
        json_t *r = host->fetch_sockets(ctx, !strcmp(what, "fetch-nsp") ? name : NULL,
                                        !strcmp(what, "fetch-room") ? one : NULL);
        rc = r ? (long)json_array_size(r) : -1;
        json_decref(r);
    }
    free(name);
    json_t *r = host->rooms(ctx);
    if (rc == -2 || !r) {
        json_decref(r);
        return -1;
    }
    return reply(ctx, json_pack("[I,o]", (json_int_t)rc, r));
}

static int ev_fail(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)ctx, (void)event, (void)args, (void)ud;
    return -1;
}

static int ev_after_fail(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)args, (void)ud;
    return reply(ctx, json_pack("[s]", "after-fail"));
}

/* ---- dynamic namespaces ------------------------------------------------------- */

static int tenant_connection(sg_ctx *ctx, json_t *auth, void *ud)
{
    (void)auth, (void)ud;
    return host->emit(ctx, "hello", json_pack("[s]", host->nsp(ctx)));
}

static int tenant_whoami(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)args, (void)ud;
    return reply(ctx, json_pack("[{s:s,s:s}]", "id", host->socket_id(ctx), "nsp", host->nsp(ctx)));
}

/* ---- init ----------------------------------------------------------------------- */

int sg_plugin_init(const sg_host *h, sg_plugin *self)
{
    SG_PLUGIN_CHECK(h);
    host = h;
    static const struct {
        const char *event;
        sg_event_fn fn;
    } events[] = {
        {"echo", ev_echo},         {"seq", ev_seq},
        {"whoami", ev_whoami},     {"join", ev_join},
        {"leave", ev_join},        {"rooms", ev_rooms},
        {"emit-to", ev_emit_to},   {"later", ev_later},
        {"set-data", ev_set_data}, {"get-data", ev_get_data},
        {"kick", ev_disconnect}, {"fetch", ev_fetch},
        {"ask", ev_ask},           {"binary-ack", ev_binary_ack},
        {"fail", ev_fail},         {"fail", ev_after_fail},
        {"bytes", ev_bytes},
    };
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++)
        if (h->on_event(self, "/f", events[i].event, events[i].fn, NULL) < 0 ||
            h->on_event(self, "/q", events[i].event, events[i].fn, NULL) < 0)
            return -1;
    if (h->use(self, "/f", mw_connect, NULL) < 0 ||
        h->on_connection(self, "/f", on_connection, NULL) < 0 ||
        h->on_connection(self, "/q", quiet_connection, NULL) < 0 ||
        h->on_disconnect(self, "/f", on_disconnect, NULL) < 0 ||
        h->use_packet(self, "/f", mw_packet, NULL) < 0 ||
        h->on_event(self, "/f", NULL, on_any, NULL) < 0 ||
        h->on_ack(self, "ask", on_ask_reply, NULL) < 0 ||
        h->on_connection(self, "/tenant-*", tenant_connection, NULL) < 0 ||
        h->on_event(self, "/tenant-*", "whoami", tenant_whoami, NULL) < 0)
        return -1;
    return 0;
}
