/* deadlines.h - intrusive binary min-heap of deadlines (timers).
 *
 * An item embeds an sg_deadline, zeroed (slot 0: not queued) before its
 * first use. The queue owns only its array of pointers: it never
 * allocates or frees items. Get the item back from its sg_deadline with
 * SG_CONTAINER_OF. The unit of at is the caller's (siogate uses
 * CLOCK_MONOTONIC ms); of equal deadlines, which comes first is
 * unspecified.
 *
 * Threads: none; one queue is used by one thread at a time. */
#ifndef SG_DEADLINES_H
#define SG_DEADLINES_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"


typedef struct sg_deadline {
    int64_t at;  /* when; read it, change it only through sg_deadlines_set */
    size_t slot; /* position in the heap, 0 when not queued */
} sg_deadline;

typedef struct sg_deadlines {
    sg_deadline **heap; /* heap[1..len] in heap order; heap[0] unused; owned */
    size_t len, cap;    /* queued items; slots allocated (heap[0] included) */
} sg_deadlines;

#define SG_DEADLINES_INIT {NULL, 0, 0}

void sg_deadlines_init(sg_deadlines *q);
/* Free the array (not the items; their slots are left as they are). q is
 * left empty. */
void sg_deadlines_free(sg_deadlines *q);

/* Set d's deadline to at: queue d, or move it to its new place when it is
 * queued already (which never fails). 0, or -1 when memory runs out (d->at
 * is set, d is not queued). */
int sg_deadlines_set(sg_deadlines *q, sg_deadline *d, int64_t at);
/* Take d out of the queue; nothing when it is not queued. */
void sg_deadlines_remove(sg_deadlines *q, sg_deadline *d);

/* The earliest deadline (left queued), or NULL when the queue is empty. */
sg_deadline *sg_deadlines_first(const sg_deadlines *q);
/* Take the earliest deadline out of the queue and return it when it is at
 * or before now; NULL otherwise (or when empty). */
sg_deadline *sg_deadlines_pop(sg_deadlines *q, int64_t now);

#endif
