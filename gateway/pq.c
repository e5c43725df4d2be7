/* pq.c - libpq, loaded at the first use of a PostgreSQL store. See pq.h. */
#define SG_PQ_IMPL
#include "pq.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "log.h"

/* the soname of libpq since PostgreSQL 8.0 */
#define SG_PQ_SONAME "libpq.so.5"

struct sg_pq sg_pq;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int loaded = -1;
static char why[256];

static void load(void)
{
    void *h = dlopen(SG_PQ_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(why, sizeof why, "cannot load %s (Debian: libpq5): %s", SG_PQ_SONAME,
                 e ? e : "?");
        goto fail;
    }
    /* dlsym's void * to a function pointer: POSIX guarantees it works */
#define SG_PQ_SYM(f)                                                              \
    if (!(*(void **)&sg_pq.f = dlsym(h, #f))) {                                   \
        snprintf(why, sizeof why, "%s has no %s (libpq 14 or later needed)", \
                 SG_PQ_SONAME, #f);                                               \
        goto fail;                                                                \
    }
    SG_PQ_FUNCS(SG_PQ_SYM)
#undef SG_PQ_SYM
    loaded = 0;
    return;
fail:
    sg_error("PostgreSQL store: %s", why);
    /* h stays open: a half-filled table is never used (loaded is -1) */
}

int sg_pq_load(void)
{
    pthread_once(&once, load);
    return loaded;
}

const char *sg_pq_error(void) { return why; }
