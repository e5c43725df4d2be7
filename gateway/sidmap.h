/* sidmap.h - intrusive hash table of items keyed by session id.
 *
 * An item embeds an sg_sidnode and sets its sid (pointing into the item,
 * unchanged while the node is in the map) before sg_sidmap_add. The map
 * owns only its bucket array: it never allocates or frees nodes. Several
 * nodes may carry the same sid; sg_sidmap_find gives the first of them and
 * sg_sidmap_next the following ones. Get the item back from its node with
 * SG_CONTAINER_OF.
 *
 * Separate chaining, FNV-1a, a power-of-two number of buckets that doubles
 * when the count reaches it (load factor 1). A failed allocation while
 * growing only leaves the chains longer: adding never fails.
 *
 * Threads: none; one map is used by one thread at a time. */
#ifndef SG_SIDMAP_H
#define SG_SIDMAP_H

#include <stddef.h>

#include "util.h"


typedef struct sg_sidnode {
    struct sg_sidnode *next; /* chain; the map's business */
    const char *sid;         /* the key, NUL-terminated; set by the item */
} sg_sidnode;

typedef struct sg_sidmap {
    sg_sidnode **buckets; /* owned */
    size_t nbuckets;      /* a power of two */
    size_t count;         /* nodes in the map (read it, do not write it) */
} sg_sidmap;

/* Visits every node of a map: see sg_sidmap_iter_first. */
typedef struct sg_sidmap_iter {
    const sg_sidmap *m;
    size_t bucket;
    sg_sidnode *next;
} sg_sidmap_iter;

/* An empty map of nbuckets buckets to begin with (rounded up to a power of
 * two; at least 1). 0, or -1 when memory runs out (m is then empty and
 * safe to free). */
int sg_sidmap_init(sg_sidmap *m, size_t nbuckets);
/* Free the bucket array (not the nodes). m is left empty; calling it again
 * is harmless. */
void sg_sidmap_free(sg_sidmap *m);

/* Add n, whose n->sid is set. n must not be in a map already. */
void sg_sidmap_add(sg_sidmap *m, sg_sidnode *n);
/* Remove n. 1 when it was in m, 0 when not (nothing changes). */
int sg_sidmap_del(sg_sidmap *m, sg_sidnode *n);

/* The first node whose sid is sid, or NULL. */
sg_sidnode *sg_sidmap_find(const sg_sidmap *m, const char *sid);
/* The node after n with the same sid as n, or NULL. Read it before
 * removing n when the loop body may remove n. */
sg_sidnode *sg_sidmap_next(const sg_sidnode *n);

/* Every node of m, in no particular order:
 *   for (n = sg_sidmap_iter_first(m, &it); n; n = sg_sidmap_iter_next(&it))
 * The body may remove the node it was given, but must not add any. */
sg_sidnode *sg_sidmap_iter_first(const sg_sidmap *m, sg_sidmap_iter *it);
sg_sidnode *sg_sidmap_iter_next(sg_sidmap_iter *it);

#endif
