/* admin_int.h - what every implementation of admin.h provides (admin.c
 * dispatches to it, as store.c does for the stores): admin_sqlite.c on a
 * SQLite file, admin_pg.c on a PostgreSQL connection string. Each
 * defines a struct whose first member is an sg_admin and a table of
 * these functions, with the meanings and ownership of the sg_admin_X
 * call of the same name (admin.h). */
#ifndef SG_ADMIN_INT_H
#define SG_ADMIN_INT_H

#include <jansson.h>
#include <stddef.h>

#include "admin.h"

typedef struct sg_admin_ops {
    sg_store *(*store)(sg_admin *a);
    int (*sockets)(sg_admin *a, const char *nsp, const char *room, bool details, json_t **out);
    int (*rooms)(sg_admin *a, const char *nsp, json_t **out);
    int (*socket_nsp)(sg_admin *a, const char *socket_id, char *nsp, size_t cap);
    int (*rooms_change)(sg_admin *a, bool join, const sg_admin_sel *sel, size_t nsel,
                        const char *const *rooms, int *affected, int *settled);
    int (*stats)(sg_admin *a, json_t **out);
    int (*checkpoint)(sg_admin *a, int *done, int *total);
    void (*close)(sg_admin *a);
} sg_admin_ops;

struct sg_admin {
    const sg_admin_ops *ops;
    char err[512];          /* the last failure's message ("" when none) */
};

/* Write the message of a failure into a->err. */
void sg_admin_set_err(sg_admin *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- what the implementations build alike from their rows (admin.c) */

/* A text column as an implementation read it: p NULL for SQL NULL; len
 * its bytes (it may hold NULs). Borrowed. */
typedef struct sg_admin_text {
    const char *p;
    size_t len;
} sg_admin_text;

/* New references, NULL only on ENOMEM: t as a JSON string (null for SQL
 * NULL); t parsed as JSON (null for SQL NULL or unreadable). */
json_t *sg_admin_json_string(sg_admin_text t);
json_t *sg_admin_json_parse(sg_admin_text t);

/* One entry of sg_admin_sockets (admin.h) from a row's columns: rooms (a
 * JSON array, stolen, also on failure) as "rooms", data and handshake
 * parsed; handshake NULL without details. New object, NULL on ENOMEM. */
json_t *sg_admin_socket_json(sg_admin_text id, sg_admin_text nsp, sg_admin_text sid,
                             sg_admin_text transport, json_t *rooms, sg_admin_text data,
                             json_int_t connected_at, const sg_admin_text *handshake);

/* sg_admin_stats's figures (admin.h), added up row by row: init, then any number
 * of the row functions (-1 on ENOMEM), then sg_admin_figures_json, then
 * free (always). */
typedef struct sg_admin_figures {
    json_t *sessions, *sockets, *queue;
    json_int_t rooms, acks;
} sg_admin_figures;
int sg_admin_figures_init(sg_admin_figures *st);
/* n sessions in state with transport (NULL when unknown) */
int sg_admin_figures_sessions(sg_admin_figures *st, int state, const char *transport,
                              json_int_t n);
/* n live sockets of namespace nsp whose sessions use transport (NULL: unknown) */
int sg_admin_figures_sockets(sg_admin_figures *st, const char *nsp, const char *transport,
                             json_int_t n);
int sg_admin_figures_queue(sg_admin_figures *st, json_int_t frames, json_int_t bytes);
/* The whole object, with store (stolen, also on failure) as "store". New
 * object, NULL on ENOMEM. */
json_t *sg_admin_figures_json(const sg_admin_figures *st, json_t *store);
void sg_admin_figures_free(sg_admin_figures *st);

/* The implementations' open: the contract of sg_admin_open. */
int sg_admin_sqlite_open(const char *path, sg_admin **out, int *version, char *err,
                         size_t errcap);
int sg_admin_pg_open(const char *conninfo, sg_admin **out, int *version, char *err,
                     size_t errcap);

#endif
