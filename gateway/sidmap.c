/* sidmap.c - intrusive hash table of items keyed by session id. */
#include "sidmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a */
static size_t sid_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

static sg_sidnode **bucket_of(const sg_sidmap *m, const char *sid)
{
    return &m->buckets[sid_hash(sid) & (m->nbuckets - 1)];
}

int sg_sidmap_init(sg_sidmap *m, size_t nbuckets)
{
    size_t n = 1;
    while (n < nbuckets && n <= SIZE_MAX / 2)
        n *= 2;
    m->count = 0;
    m->buckets = calloc(n, sizeof *m->buckets);
    m->nbuckets = m->buckets ? n : 0;
    return m->buckets ? 0 : -1;
}

void sg_sidmap_free(sg_sidmap *m)
{
    free(m->buckets);
    m->buckets = NULL;
    m->nbuckets = m->count = 0;
}

static void grow(sg_sidmap *m)
{
    if (m->nbuckets > SIZE_MAX / 2 / sizeof *m->buckets)
        return;
    size_t n = m->nbuckets * 2;
    sg_sidnode **b = calloc(n, sizeof *b);
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (sg_sidnode *x = m->buckets[i], *next; x; x = next) {
            next = x->next;
            size_t k = sid_hash(x->sid) & (n - 1);
            x->next = b[k];
            b[k] = x;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

void sg_sidmap_add(sg_sidmap *m, sg_sidnode *n)
{
    if (m->count >= m->nbuckets)
        grow(m);
    sg_sidnode **b = bucket_of(m, n->sid);
    n->next = *b;
    *b = n;
    m->count++;
}

int sg_sidmap_del(sg_sidmap *m, sg_sidnode *n)
{
    if (!m->nbuckets)
        return 0;
    for (sg_sidnode **pp = bucket_of(m, n->sid); *pp; pp = &(*pp)->next)
        if (*pp == n) {
            *pp = n->next;
            n->next = NULL;
            m->count--;
            return 1;
        }
    return 0;
}

sg_sidnode *sg_sidmap_find(const sg_sidmap *m, const char *sid)
{
    if (!m->count)
        return NULL;
    for (sg_sidnode *x = *bucket_of(m, sid); x; x = x->next)
        if (strcmp(x->sid, sid) == 0)
            return x;
    return NULL;
}

sg_sidnode *sg_sidmap_next(const sg_sidnode *n)
{
    for (sg_sidnode *x = n->next; x; x = x->next)
        if (strcmp(x->sid, n->sid) == 0)
            return x;
    return NULL;
}

/* The first node of the first non-empty bucket from it->bucket on. */
static sg_sidnode *iter_scan(sg_sidmap_iter *it)
{
    for (; it->bucket < it->m->nbuckets; it->bucket++) {
        sg_sidnode *x = it->m->buckets[it->bucket];
        if (x) {
            it->bucket++;
            it->next = x->next;
            return x;
        }
    }
    it->next = NULL;
    return NULL;
}

sg_sidnode *sg_sidmap_iter_first(const sg_sidmap *m, sg_sidmap_iter *it)
{
    it->m = m;
    it->bucket = 0;
    it->next = NULL;
    return iter_scan(it);
}

sg_sidnode *sg_sidmap_iter_next(sg_sidmap_iter *it)
{
    sg_sidnode *x = it->next;
    if (x) {
        it->next = x->next;
        return x;
    }
    return iter_scan(it);
}
