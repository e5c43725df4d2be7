/* plugins.h - loading plugins and looking up their handlers.
 *
 * The registry is filled while each plugin's sg_plugin_init runs and is
 * read-only afterwards, so any thread may look handlers up. */
#ifndef SG_PLUGINS_H
#define SG_PLUGINS_H

#include <stdbool.h>
#include <stddef.h>
#include "plugin.h"

enum sg_handler_kind { SG_H_USE, SG_H_CONNECTION, SG_H_EVENT, SG_H_DISCONNECT, SG_H_PACKET,
                       SG_H_ACK, SG_H_REQUEST };

typedef struct sg_handler {
    enum sg_handler_kind kind;
    char *nsp;           /* owned; a name or an fnmatch(3) pattern; "" for SG_H_ACK and
                            SG_H_REQUEST (not tied to a namespace) */
    char *event;         /* owned; NULL = catch-all (SG_H_EVENT); the name for SG_H_ACK */
    void (*fn)(void);    /* cast to the kind's type before calling */
    void *ud;
    size_t plugin;       /* index into the registry's plugins */
} sg_handler;

typedef struct sg_registry sg_registry;

/* The file that the `plugin =` value `name` (borrowed) names, as a new
 * string, or NULL when out of memory: a value with a '/' as it is, a bare
 * name (`echo`, `echo.so`) in $SIOGATE_PLUGIN_DIR if set, else in the
 * directory `make install` puts the plugins in (SG_PKGLIBDIR). */
char *sg_plugin_file(const char *name);

/* Load every plugin in paths (borrowed; each as sg_plugin_file resolves
 * it), in order, handing each the host
 * table (borrowed; must outlive the registry; its registration members are
 * overwritten by sg_plugins_host_init). Returns NULL if any plugin fails,
 * every problem logged with the file name; nothing stays loaded then. */
sg_registry *sg_plugins_load(char *const *paths, size_t n, sg_host *host);
void sg_plugins_free(sg_registry *r);

/* Fill host's registration members (use, on_connection, on_event,
 * on_disconnect, use_packet, on_ack, allow_request) with the registry's implementations. */
void sg_plugins_host_init(sg_host *host);

/* 1 if some plugin registered anything for nsp (by name or pattern). */
bool sg_plugins_serves(const sg_registry *r, const char *nsp);

/* The ack handler registered under name, or NULL. */
const sg_handler *sg_plugins_ack(const sg_registry *r, const char *name);

/* Call fn for each handler of kind on nsp, in registration order. For
 * SG_H_EVENT, per plugin: its handlers named event, or when it has none,
 * its catch-alls. SG_H_ACK and SG_H_REQUEST take nsp "". Stops when fn returns non-zero and returns that value. */
int sg_plugins_each(const sg_registry *r, enum sg_handler_kind kind, const char *nsp,
                    const char *event, int (*fn)(void *ud, const sg_handler *h), void *ud);

/* The file name of plugin index i (borrowed). */
const char *sg_plugins_name(const sg_registry *r, size_t i);

#endif
