/* plugins.c - dlopen plugins, check their ABI, keep their handlers. */
#include "plugins.h"

#include <dlfcn.h>
#include <fnmatch.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct sg_plugin {
    sg_registry *reg;
    size_t index;
    bool in_init;
};

struct loaded {
    char *path;
    void *dl;
    sg_plugin self;    /* handed to sg_plugin_init; kept so that a late
                          registration is refused, not a use after return */
};

struct sg_registry {
    struct loaded *plugins;
    size_t nplugins;
    sg_handler *h;
    size_t nh, caph;
};

static int add_handler(sg_plugin *p, enum sg_handler_kind kind, const char *nsp,
                       const char *event, void (*fn)(void), void *ud)
{
    if (!p || !p->in_init) {
        sg_error("plugin registration outside sg_plugin_init refused");
        return -1;
    }
    sg_registry *r = p->reg;
    const char *file = r->plugins[p->index].path;
    if (kind == SG_H_ACK ? !event || !*event : kind != SG_H_REQUEST && (!nsp || nsp[0] != '/')) {
        sg_error("plugin %s: registration refused: %s", file,
                 kind == SG_H_ACK ? "an ack handler needs a name"
                                  : "a namespace must start with '/'");
        return -1;
    }
    if (!fn) {
        sg_error("plugin %s: registration without a function refused", file);
        return -1;
    }
    if (kind == SG_H_ACK && event[0] == '@') {
        sg_error("plugin %s: ack handler names starting with '@' are reserved", file);
        return -1;
    }
    if (kind == SG_H_ACK && sg_plugins_ack(r, event)) {
        sg_error("plugin %s: ack handler '%s' registered twice", file, event);
        return -1;
    }
    if (r->nh == r->caph) {
        size_t cap = r->caph ? r->caph * 2 : 16;
        sg_handler *nh = realloc(r->h, cap * sizeof *nh);
        if (!nh)
            return -1;
        r->h = nh;
        r->caph = cap;
    }
    sg_handler *h = &r->h[r->nh];
    memset(h, 0, sizeof *h);
    h->kind = kind;
    h->fn = fn;
    h->ud = ud;
    h->plugin = p->index;
    if (!(h->nsp = strdup(nsp ? nsp : "")) || (event && !(h->event = strdup(event)))) {
        free(h->nsp);
        return -1;
    }
    r->nh++;
    return 0;
}

static int reg_use(sg_plugin *p, const char *nsp, sg_connect_fn fn, void *ud)
{
    return add_handler(p, SG_H_USE, nsp, NULL, (void (*)(void))fn, ud);
}

static int reg_connection(sg_plugin *p, const char *nsp, sg_connection_fn fn, void *ud)
{
    return add_handler(p, SG_H_CONNECTION, nsp, NULL, (void (*)(void))fn, ud);
}

static int reg_event(sg_plugin *p, const char *nsp, const char *event, sg_event_fn fn, void *ud)
{
    return add_handler(p, SG_H_EVENT, nsp, event, (void (*)(void))fn, ud);
}

static int reg_disconnect(sg_plugin *p, const char *nsp, sg_disconnect_fn fn, void *ud)
{
    return add_handler(p, SG_H_DISCONNECT, nsp, NULL, (void (*)(void))fn, ud);
}

static int reg_packet(sg_plugin *p, const char *nsp, sg_packet_fn fn, void *ud)
{
    return add_handler(p, SG_H_PACKET, nsp, NULL, (void (*)(void))fn, ud);
}

static int reg_ack(sg_plugin *p, const char *name, sg_ack_fn fn, void *ud)
{
    return add_handler(p, SG_H_ACK, NULL, name, (void (*)(void))fn, ud);
}

static int reg_request(sg_plugin *p, sg_allow_request_fn fn, void *ud)
{
    return add_handler(p, SG_H_REQUEST, NULL, NULL, (void (*)(void))fn, ud);
}

void sg_plugins_host_init(sg_host *host)
{
    host->allow_request = reg_request;
    host->use_packet = reg_packet;
    host->on_ack = reg_ack;
    host->use = reg_use;
    host->on_connection = reg_connection;
    host->on_event = reg_event;
    host->on_disconnect = reg_disconnect;
}

#ifndef SG_PKGLIBDIR
#define SG_PKGLIBDIR "/usr/local/lib/siogate"
#endif

/* The file a `plugin =` value names, as a new string (NULL when out of
 * memory). A value with a '/' is a path, used as it is (a relative one
 * against the current directory). A bare name is a plugin installed with
 * siogate: NAME or NAME.so in $SIOGATE_PLUGIN_DIR if set and not empty,
 * else in the pkglibdir of the build ($(libdir)/siogate). */
char *sg_plugin_file(const char *name)
{
    if (strchr(name, '/'))
        return strdup(name);
    const char *dir = getenv("SIOGATE_PLUGIN_DIR");
    if (!dir || !*dir)
        dir = SG_PKGLIBDIR;
    size_t n = strlen(name);
    const char *ext = n >= 3 && !strcmp(name + n - 3, ".so") ? "" : ".so";
    size_t cap = strlen(dir) + 1 + n + strlen(ext) + 1;
    char *p = malloc(cap);
    if (p)
        snprintf(p, cap, "%s/%s%s", dir, name, ext);
    return p;
}

static int load_one(sg_registry *r, const char *name, sg_host *host)
{
    struct loaded *l = &r->plugins[r->nplugins];
    l->path = sg_plugin_file(name);
    if (!l->path)
        return -1;
    r->nplugins++;
    const char *path = l->path;
    /* RTLD_LOCAL: plugins never see each other's symbols; RTLD_NOW: an
     * undefined symbol is reported here, naming the file, not at first use. */
    l->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!l->dl) {
        sg_error("plugin %s: cannot load: %s", path, dlerror());
        return -1;
    }
    const uint32_t *abi = dlsym(l->dl, "sg_plugin_abi");
    if (!abi) {
        sg_error("plugin %s: no sg_plugin_abi symbol (built without SG_PLUGIN_DECLARE?)", path);
        return -1;
    }
    if (abi[0] != SG_ABI_MAJOR || abi[1] > SG_ABI_MINOR) {
        sg_error("plugin %s: built for plugin ABI %u.%u, this siogate provides %u.%u",
                 path, (unsigned)abi[0], (unsigned)abi[1], SG_ABI_MAJOR, SG_ABI_MINOR);
        return -1;
    }
    sg_plugin_init_fn init;
    void *sym = dlsym(l->dl, "sg_plugin_init");
    if (!sym) {
        sg_error("plugin %s: no entry point sg_plugin_init", path);
        return -1;
    }
    memcpy(&init, &sym, sizeof init);
    l->self = (sg_plugin){r, r->nplugins - 1, true};
    int rc = init(host, &l->self);
    l->self.in_init = false;
    if (rc != 0) {
        sg_error("plugin %s: sg_plugin_init failed (returned %d)", path, rc);
        return -1;
    }
    sg_info("plugin %s loaded", path);
    return 0;
}

sg_registry *sg_plugins_load(char *const *paths, size_t n, sg_host *host)
{
    sg_registry *r = calloc(1, sizeof *r);
    if (!r || (n && !(r->plugins = calloc(n, sizeof *r->plugins)))) {
        free(r);
        sg_error("plugins: out of memory");
        return NULL;
    }
    sg_plugins_host_init(host);
    for (size_t i = 0; i < n; i++) {
        if (load_one(r, paths[i], host) < 0) {
            sg_plugins_free(r);
            return NULL;
        }
    }
    return r;
}

void sg_plugins_free(sg_registry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nh; i++) {
        free(r->h[i].nsp);
        free(r->h[i].event);
    }
    free(r->h);
    for (size_t i = 0; i < r->nplugins; i++) {
        if (r->plugins[i].dl)
            dlclose(r->plugins[i].dl);
        free(r->plugins[i].path);
    }
    free(r->plugins);
    free(r);
}

/* A registered namespace (name or pattern) against a namespace. */
static bool nsp_match(const char *pattern, const char *nsp)
{
    if (strpbrk(pattern, "*?["))
        return fnmatch(pattern, nsp, 0) == 0;
    return strcmp(pattern, nsp) == 0;
}

bool sg_plugins_serves(const sg_registry *r, const char *nsp)
{
    for (size_t i = 0; i < r->nh; i++)
        if (r->h[i].kind != SG_H_ACK && r->h[i].kind != SG_H_REQUEST &&
            nsp_match(r->h[i].nsp, nsp))
            return true;
    return false;
}

const sg_handler *sg_plugins_ack(const sg_registry *r, const char *name)
{
    for (size_t i = 0; i < r->nh; i++)
        if (r->h[i].kind == SG_H_ACK && strcmp(r->h[i].event, name) == 0)
            return &r->h[i];
    return NULL;
}

int sg_plugins_each(const sg_registry *r, enum sg_handler_kind kind, const char *nsp,
                    const char *event, int (*fn)(void *ud, const sg_handler *h), void *ud)
{
    for (size_t p = 0; p < r->nplugins; p++) {
        bool named = false;
        if (kind == SG_H_EVENT) {
            for (size_t i = 0; i < r->nh && !named; i++) {
                const sg_handler *h = &r->h[i];
                named = h->plugin == p && h->kind == kind && h->event &&
                        nsp_match(h->nsp, nsp) && strcmp(h->event, event) == 0;
            }
        }
        for (size_t i = 0; i < r->nh; i++) {
            const sg_handler *h = &r->h[i];
            if (h->plugin != p || h->kind != kind || !nsp_match(h->nsp, nsp))
                continue;
            if (kind == SG_H_EVENT &&
                (named ? !h->event || strcmp(h->event, event) != 0 : h->event != NULL))
                continue;
            int rc = fn(ud, h);
            if (rc)
                return rc;
        }
    }
    return 0;
}

const char *sg_plugins_name(const sg_registry *r, size_t i)
{
    return i < r->nplugins ? r->plugins[i].path : "?";
}
