/* deadlines.c - intrusive binary min-heap of deadlines.
 *
 * One-based: the parent of slot i is i / 2, its children 2i and 2i + 1,
 * so that a slot is also the "queued" flag. */
#include "deadlines.h"

#include <stdlib.h>

void sg_deadlines_init(sg_deadlines *q)
{
    q->heap = NULL;
    q->len = q->cap = 0;
}

void sg_deadlines_free(sg_deadlines *q)
{
    free(q->heap);
    sg_deadlines_init(q);
}

static void put(sg_deadlines *q, size_t i, sg_deadline *d)
{
    q->heap[i] = d;
    d->slot = i;
}

static void up(sg_deadlines *q, size_t i)
{
    sg_deadline *d = q->heap[i];
    while (i > 1) {
        size_t parent = i / 2;
        if (q->heap[parent]->at <= d->at)
            break;
        put(q, i, q->heap[parent]);
        i = parent;
    }
    put(q, i, d);
}

static void down(sg_deadlines *q, size_t i)
{
    sg_deadline *d = q->heap[i];
    for (;;) {
        size_t c = 2 * i;
        if (c > q->len)
            break;
        if (c < q->len && q->heap[c + 1]->at < q->heap[c]->at)
            c++;
        if (d->at <= q->heap[c]->at)
            break;
        put(q, i, q->heap[c]);
        i = c;
    }
    put(q, i, d);
}

int sg_deadlines_set(sg_deadlines *q, sg_deadline *d, int64_t at)
{
    d->at = at;
    if (d->slot) {
        up(q, d->slot);
        down(q, d->slot);
        return 0;
    }
    if (q->len + 1 >= q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        if (cap > (size_t)-1 / sizeof *q->heap)
            return -1;
        sg_deadline **h = realloc(q->heap, cap * sizeof *h);
        if (!h)
            return -1;
        q->heap = h;
        q->cap = cap;
    }
    put(q, ++q->len, d);
    up(q, q->len);
    return 0;
}

void sg_deadlines_remove(sg_deadlines *q, sg_deadline *d)
{
    size_t i = d->slot;
    if (!i)
        return;
    d->slot = 0;
    sg_deadline *last = q->heap[q->len--];
    if (i > q->len)
        return; /* d was the last */
    put(q, i, last);
    up(q, i);
    down(q, last->slot);
}

sg_deadline *sg_deadlines_first(const sg_deadlines *q) { return q->len ? q->heap[1] : NULL; }

sg_deadline *sg_deadlines_pop(sg_deadlines *q, int64_t now)
{
    sg_deadline *d = sg_deadlines_first(q);
    if (!d || d->at > now)
        return NULL;
    sg_deadlines_remove(q, d);
    return d;
}
