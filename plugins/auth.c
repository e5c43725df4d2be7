/* auth.c - token authentication for the namespace "/private".
 *
 * Configuration: the environment variable SIOGATE_AUTH_TOKENS of the
 * gateway processes, read once when the plugin is loaded: a comma-separated
 * list of USER:TOKEN entries, e.g.
 *
 *     SIOGATE_AUTH_TOKENS='alice:9f2c1e...,bob:77ab03...'
 *
 * White space around entries is ignored; a TOKEN is anything but commas.
 * An entry without ':' is a bare token whose user is called "token-N" (N
 * its position, from 1). The plugin refuses to load (and siogate to start)
 * when the variable is unset or holds no entry: an authentication plugin
 * that lets nobody in, or everybody, should not start quietly. Set it
 * where the gateway is started (a systemd unit's Environment=, or the
 * FastCGI spawner's environment), never in the web server's config, which
 * its users may read.
 *
 * Behaviour:
 *  - connect middleware: the client's CONNECT payload must carry the token,
 *    io("/private", { auth: { token: "9f2c1e..." } }). Otherwise the client
 *    gets connect_error with message "unauthorized" and data
 *    {"reason": "missing token" | "unknown token", "hint": "..."};
 *  - on connection: the socket data becomes {"user": USER} (seen by every
 *    process, by other plugins and by fetch_sockets), and the client gets
 *    "welcome" {"user": USER, "id": SOCKET-ID};
 *  - "whoami" is acknowledged with the socket data.
 *
 * The token list is a global: it is written once, in sg_plugin_init, and
 * only read afterwards, which is safe from any thread. */
#include <siogate/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

SG_PLUGIN_DECLARE;

#define NSP "/private"
#define ENV "SIOGATE_AUTH_TOKENS"

static const sg_host *host;

struct entry {
    char *user;
    char *token;
    size_t len;
};
static struct entry *entries;
static size_t nentries;

/* ---- the token list ------------------------------------------------------- */

static void free_entries(void)
{
    for (size_t i = 0; i < nentries; i++) {
        free(entries[i].user);
        free(entries[i].token);
    }
    free(entries);
    entries = NULL;
    nentries = 0;
}

/* Runs when the plugin is unloaded (dlclose), so a host that loads and
 * unloads plugins leaks nothing. */
__attribute__((destructor)) static void on_unload(void) { free_entries(); }

static char *dup_trimmed(const char *s, size_t len)
{
    while (len && (*s == ' ' || *s == '\t' || *s == '\n'))
        s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n'))
        len--;
    char *r = malloc(len + 1);
    if (r) {
        memcpy(r, s, len);
        r[len] = '\0';
    }
    return r;
}

/* Parse the variable into entries; -1 (logged) when it is unusable. */
static int load_tokens(void)
{
    const char *list = getenv(ENV);
    if (!list) {
        host->log(NULL, SG_PLUGIN_LOG_ERROR, "auth: %s is not set: no token would be accepted", ENV);
        return -1;
    }
    size_t cap = 1;
    for (const char *p = list; *p; p++)
        cap += *p == ',';
    if (!(entries = calloc(cap, sizeof *entries)))
        return -1;
    for (const char *p = list;; p++) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char *item = dup_trimmed(p, len);
        if (!item)
            return -1;
        if (*item) {
            struct entry *e = &entries[nentries++];
            char *colon = strchr(item, ':');
            char name[32];
            snprintf(name, sizeof name, "token-%zu", nentries);
            e->user = colon ? dup_trimmed(item, (size_t)(colon - item)) : strdup(name);
            e->token = colon ? dup_trimmed(colon + 1, strlen(colon + 1)) : strdup(item);
            free(item);
            if (!e->user || !e->token)
                return -1;
            if (!*e->user || !*e->token) {
                host->log(NULL, SG_PLUGIN_LOG_ERROR,
                          "auth: %s: entry %zu has an empty user or token", ENV, nentries);
                return -1;
            }
            e->len = strlen(e->token);
        } else {
            free(item);
        }
        if (!end)
            break;
        p = end;
    }
    if (nentries == 0) {
        host->log(NULL, SG_PLUGIN_LOG_ERROR, "auth: %s holds no token", ENV);
        return -1;
    }
    return 0;
}

/* Constant time in the token's content, so that response times do not
 * tell how much of a guess was right. */
static int same(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char d = alen != blen;
    for (size_t i = 0; i < blen; i++)
        d |= (unsigned char)(b[i] ^ a[alen ? i % alen : 0]);
    return alen != 0 && d == 0;
}

/* The user owning token, or NULL. Every entry is compared. */
static const char *user_of(const char *token, size_t len)
{
    const char *user = NULL;
    for (size_t i = 0; i < nentries; i++)
        if (same(token, len, entries[i].token, entries[i].len))
            user = entries[i].user;
    return user;
}

/* ---- handlers ------------------------------------------------------------------ */

static int check_token(sg_ctx *ctx, json_t *auth, void *ud)
{
    (void)ud;
    json_t *token = json_object_get(auth, "token");
    if (!json_is_string(token)) {
        host->reject(ctx, "unauthorized",
                     json_pack("{s:s,s:s}", "reason", "missing token", "hint",
                               "connect with io(\"" NSP "\", { auth: { token: \"...\" } })"));
        return 1;
    }
    if (!user_of(json_string_value(token), json_string_length(token))) {
        host->log(ctx, SG_PLUGIN_LOG_INFO, "auth: unknown token from %s",
                  json_string_value(json_object_get(host->handshake(ctx), "address")));
        host->reject(ctx, "unauthorized",
                     json_pack("{s:s,s:s}", "reason", "unknown token", "hint",
                               "check the token, or ask the site's administrator for one"));
        return 1;
    }
    return 0;
}

static int on_connection(sg_ctx *ctx, json_t *auth, void *ud)
{
    (void)ud;
    json_t *token = json_object_get(auth, "token");
    /* the middleware accepted this very payload: the token is known */
    const char *user = user_of(json_string_value(token), json_string_length(token));
    if (!user)
        return -1;
    if (host->set_data(ctx, json_pack("{s:s}", "user", user)) < 0)
        return -1;
    return host->emit(ctx, "welcome",
                      json_pack("[{s:s,s:s}]", "user", user, "id", host->socket_id(ctx)));
}

static int on_whoami(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)args, (void)ud;
    json_t *data = host->get_data(ctx);
    if (!data)
        return -1;
    return host->ack(ctx, json_pack("[o]", data));
}

int sg_plugin_init(const sg_host *h, sg_plugin *self)
{
    SG_PLUGIN_CHECK(h);
    host = h;
    free_entries(); /* in case of a second init in one process */
    if (load_tokens() < 0) {
        free_entries();
        return -1;
    }
    if (h->use(self, NSP, check_token, NULL) < 0 ||
        h->on_connection(self, NSP, on_connection, NULL) < 0 ||
        h->on_event(self, NSP, "whoami", on_whoami, NULL) < 0) {
        free_entries();
        return -1;
    }
    h->log(NULL, SG_PLUGIN_LOG_INFO, "auth: %zu token%s for %s", nentries,
           nentries == 1 ? "" : "s", NSP);
    return 0;
}
