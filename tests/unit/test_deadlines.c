/* test_deadlines.c - unit tests for gateway/deadlines.c */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "deadlines.h"
#include "tap.h"

/* realloc that fails on demand (glibc: the real one is __libc_realloc).
 * Not under ASan, whose allocator this would bypass; valgrind replaces it
 * (faults_work says). */
static bool fail_realloc;
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
extern void *__libc_realloc(void *p, size_t size);
void *realloc(void *p, size_t size)
{
    return fail_realloc ? NULL : __libc_realloc(p, size);
}

static bool faults_work(void)
{
    void *(*volatile call)(void *, size_t) = realloc; /* not inlined */
    void *p = malloc(1);
    fail_realloc = true;
    void *r = p ? call(p, 64) : NULL;
    fail_realloc = false;
    bool ok = p && r == NULL;
    free(r ? r : p);
    return ok;
}
#else
static bool faults_work(void) { return false; }
#endif

struct item {
    char pad[3];            /* something before the timer: offset != 0 */
    sg_deadline timer;
    int id;
    bool queued;            /* the reference */
    int64_t at;
};

static struct item *item_of(sg_deadline *d) { return SG_CONTAINER_OF(d, struct item, timer); }

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The heap's shape and the reference agree; count failed checks. */
static int verify(const sg_deadlines *q, struct item *items, size_t n)
{
    int bad = 0;
    size_t queued = 0;
    int64_t min = INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        struct item *x = &items[i];
        if (!x->queued) {
            bad += x->timer.slot != 0;
            continue;
        }
        queued++;
        if (x->at < min)
            min = x->at;
        bad += x->timer.at != x->at;
        bad += x->timer.slot == 0 || x->timer.slot > q->len || q->heap[x->timer.slot] != &x->timer;
    }
    bad += q->len != queued;
    for (size_t i = 2; i <= q->len; i++)
        bad += q->heap[i / 2]->at > q->heap[i]->at;
    sg_deadline *f = sg_deadlines_first(q);
    bad += queued ? (!f || f->at != min) : f != NULL;
    return bad;
}

TEST("deadlines: a fixed sequence comes out in order")
{
    static const struct {
        int item;     /* -1: pop */
        int64_t at;   /* set: the deadline; pop: now */
        int want;     /* pop: the item expected, -1 for none */
    } steps[] = {
        {0, 50, 0},  {1, 10, 0},   {2, 30, 0},   {3, 20, 0},  {-1, 5, -1},
        {-1, 10, 1}, {-1, 15, -1}, {2, 15, 0},   {-1, 15, 2}, {0, 25, 0},
        {-1, 100, 3}, {-1, 100, 0}, {-1, 100, -1},
    };
    struct item items[4];
    memset(items, 0, sizeof items);
    sg_deadlines q = SG_DEADLINES_INIT;
    for (size_t s = 0; s < sizeof steps / sizeof *steps; s++) {
        if (steps[s].item >= 0) {
            CHECK_INT(sg_deadlines_set(&q, &items[steps[s].item].timer, steps[s].at), 0);
            continue;
        }
        sg_deadline *d = sg_deadlines_pop(&q, steps[s].at);
        int got = d ? (int)(item_of(d) - items) : -1;
        if (got != steps[s].want)
            printf("#   step %zu: popped %d, expected %d\n", s, got, steps[s].want);
        CHECK_INT(got, steps[s].want);
        if (d)
            CHECK_INT(d->slot, 0);
    }
    CHECK_INT(q.len, 0);
    CHECK(sg_deadlines_first(&q) == NULL);
    sg_deadlines_free(&q);
}

TEST("deadlines: remove of an item not queued, and of the last one")
{
    struct item a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    sg_deadlines q;
    sg_deadlines_init(&q);
    sg_deadlines_remove(&q, &a.timer); /* not queued: nothing */
    CHECK_INT(q.len, 0);
    CHECK_INT(sg_deadlines_set(&q, &a.timer, 7), 0);
    CHECK_INT(sg_deadlines_set(&q, &b.timer, 9), 0);
    sg_deadlines_remove(&q, &b.timer); /* the last slot */
    CHECK_INT(q.len, 1);
    CHECK_INT(b.timer.slot, 0);
    CHECK(sg_deadlines_first(&q) == &a.timer);
    sg_deadlines_remove(&q, &a.timer);
    sg_deadlines_remove(&q, &a.timer); /* twice */
    CHECK_INT(q.len, 0);
    CHECK(sg_deadlines_pop(&q, INT64_MAX) == NULL);
    sg_deadlines_free(&q);
    sg_deadlines_free(&q); /* twice is harmless */
}

TEST("deadlines: random set, fix, remove, pop against a sorted reference")
{
    static const struct {
        unsigned seed;
        size_t nitems;
        int ops;
        int64_t spread;   /* deadlines drawn from [0, spread): small means ties */
        int set_pct, remove_pct; /* the rest are pops */
    } cases[] = {
        {11, 1000, 10000, 1000000, 60, 20},
        {12, 1000, 10000, 50, 50, 25},     /* many equal deadlines */
        {13, 5000, 10000, 1 << 30, 85, 5}, /* mostly growing */
        {14, 64, 10000, 100, 40, 30},      /* small and busy */
        {15, 1, 1000, 10, 50, 25},         /* one item */
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        srand(cases[c].seed);
        size_t n = cases[c].nitems;
        struct item *items = calloc(n, sizeof *items);
        int64_t *ref = malloc(n * sizeof *ref);
        CHECK(items && ref);
        if (!items || !ref) {
            free(items);
            free(ref);
            return;
        }
        for (size_t i = 0; i < n; i++)
            items[i].id = (int)i;
        sg_deadlines q = SG_DEADLINES_INIT;
        int bad = 0;
        for (int op = 0; op < cases[c].ops; op++) {
            int r = rand() % 100;
            struct item *x = &items[(size_t)rand() % n];
            if (r < cases[c].set_pct) { /* a push, or a fix when queued */
                int64_t at = (int64_t)((unsigned)rand() % (uint64_t)cases[c].spread);
                bad += sg_deadlines_set(&q, &x->timer, at) != 0;
                x->queued = true;
                x->at = at;
            } else if (r < cases[c].set_pct + cases[c].remove_pct) {
                sg_deadlines_remove(&q, &x->timer);
                x->queued = false;
            } else {
                int64_t now = (int64_t)((unsigned)rand() % (uint64_t)cases[c].spread);
                int64_t min = INT64_MAX;
                for (size_t i = 0; i < n; i++)
                    if (items[i].queued && items[i].at < min)
                        min = items[i].at;
                sg_deadline *d = sg_deadlines_pop(&q, now);
                if (min > now) {
                    bad += d != NULL;
                } else if (!d) {
                    bad++;
                } else {
                    struct item *y = item_of(d);
                    bad += !y->queued || y->at != min || d->slot != 0;
                    y->queued = false;
                }
            }
            if (op % 500 == 499)
                bad += verify(&q, items, n);
        }
        bad += verify(&q, items, n);
        /* drain: the sorted reference */
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (items[i].queued)
                ref[m++] = items[i].at;
        qsort(ref, m, sizeof *ref, cmp_i64);
        size_t k = 0;
        for (sg_deadline *d; (d = sg_deadlines_pop(&q, INT64_MAX)); k++) {
            bad += k >= m || d->at != ref[k];
            item_of(d)->queued = false;
        }
        bad += k != m || q.len != 0;
        if (bad)
            printf("#   case %zu (seed %u): %d mismatches\n", c, cases[c].seed, bad);
        CHECK_INT(bad, 0);
        sg_deadlines_free(&q);
        free(items);
        free(ref);
    }
}

TEST("deadlines: out of memory, a new item is left out and the rest work on")
{
    if (!faults_work()) {
        printf("# skipped: realloc cannot be made to fail here\n");
        return;
    }
    sg_deadlines q = SG_DEADLINES_INIT;
    enum { N = 200 };
    static struct item items[N];
    memset(items, 0, sizeof items);
    fail_realloc = true;
    CHECK_INT(sg_deadlines_set(&q, &items[0].timer, 5), -1);
    fail_realloc = false;
    CHECK_INT(items[0].timer.slot, 0);
    CHECK_INT(q.len, 0);
    /* fill up to the capacity (heap[0] is not an item), then fail the growth */
    size_t i = 0;
    for (; i < N && (q.cap == 0 || q.len + 1 < q.cap); i++) {
        CHECK_INT(sg_deadlines_set(&q, &items[i].timer, (int64_t)(N - i)), 0);
        items[i].queued = true;
        items[i].at = (int64_t)(N - i);
    }
    CHECK(i < N);
    size_t len = q.len;
    fail_realloc = true;
    CHECK_INT(sg_deadlines_set(&q, &items[i].timer, 0), -1);
    CHECK_INT(items[i].timer.slot, 0);
    CHECK_INT(q.len, len);
    /* a queued item moves without allocating */
    CHECK_INT(sg_deadlines_set(&q, &items[1].timer, -1), 0);
    items[1].at = -1;
    fail_realloc = false;
    CHECK_INT(verify(&q, items, N), 0);
    CHECK(sg_deadlines_first(&q) == &items[1].timer);
    sg_deadlines_free(&q);
}

int main(void) { return tap_run(); }
