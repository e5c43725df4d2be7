/* admin_int.h - what every implementation of admin.h provides (admin.c
 * dispatches to it, as store.c does for the stores): admin_sqlite.c on a
 * SQLite file, admin_pg.c on a PostgreSQL connection string. Each
 * defines a struct whose first member is an sg_admin and a table of
 * these functions, with the meanings and ownership of the sg_admin_X
 * call of the same name (admin.h). */
#ifndef SG_ADMIN_INT_H
#define SG_ADMIN_INT_H

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

/* The implementations' open: the contract of sg_admin_open. */
int sg_admin_sqlite_open(const char *path, sg_admin **out, int *version, char *err,
                         size_t errcap);
int sg_admin_pg_open(const char *conninfo, sg_admin **out, int *version, char *err,
                     size_t errcap);

#endif
