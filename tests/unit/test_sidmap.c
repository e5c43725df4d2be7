/* test_sidmap.c - unit tests for gateway/sidmap.c */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "sidmap.h"
#include "util.h"
#include "tap.h"

/* calloc that fails on demand (glibc: the real one is __libc_calloc), to
 * see the map stay correct when it cannot grow. Not under ASan, whose
 * allocator this would bypass; valgrind replaces it (faults_work says). */
static bool fail_calloc;
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
extern void *__libc_calloc(size_t n, size_t size);
void *calloc(size_t n, size_t size)
{
    return fail_calloc ? NULL : __libc_calloc(n, size);
}

static bool faults_work(void)
{
    void *(*volatile call)(size_t, size_t) = calloc; /* not inlined */
    fail_calloc = true;
    void *p = call(1, 1);
    fail_calloc = false;
    bool ok = p == NULL;
    free(p);
    return ok;
}
#else
static bool faults_work(void) { return false; }
#endif

struct item {
    int tag;                 /* something before the node: offset != 0 */
    sg_sidnode node;
    char sid[SG_ID_LEN + 1];
    bool in;                 /* the reference: is it in the map? */
    int seen;
};

static struct item *item_of(sg_sidnode *n) { return SG_CONTAINER_OF(n, struct item, node); }

/* the k-th id of a pool: distinct, SG_ID_LEN characters */
static void pool_sid(char out[SG_ID_LEN + 1], unsigned k)
{
    snprintf(out, SG_ID_LEN + 1, "sid-%016u", k);
}

/* items[i] gets the id of pool_sid(i % nsids), or of a random one */
static void fill(struct item *items, size_t n, unsigned nsids, bool random)
{
    memset(items, 0, n * sizeof *items);
    for (size_t i = 0; i < n; i++) {
        pool_sid(items[i].sid, random ? (unsigned)rand() % nsids : (unsigned)(i % nsids));
        items[i].node.sid = items[i].sid;
        items[i].tag = (int)i;
    }
}

static bool is_pow2(size_t n) { return n && !(n & (n - 1)); }

/* Compare everything the map says with the reference; count failed checks. */
static int verify(sg_sidmap *m, struct item *items, size_t nitems, unsigned nsids, bool can_grow)
{
    int bad = 0;
    size_t in = 0;
    for (size_t i = 0; i < nitems; i++) {
        items[i].seen = 0;
        in += items[i].in;
    }
    if (m->count != in)
        bad++;
    if (!is_pow2(m->nbuckets) || (can_grow && m->count > m->nbuckets))
        bad++;
    /* every node once, and only those in */
    sg_sidmap_iter it;
    size_t visited = 0;
    for (sg_sidnode *n = sg_sidmap_iter_first(m, &it); n; n = sg_sidmap_iter_next(&it)) {
        item_of(n)->seen++;
        visited++;
    }
    if (visited != in)
        bad++;
    for (size_t i = 0; i < nitems; i++)
        if (items[i].seen != (items[i].in ? 1 : 0))
            bad++;
    /* find + next: exactly the items in with that sid (one id past the pool: none) */
    for (unsigned k = 0; k <= nsids; k++) {
        char sid[SG_ID_LEN + 1];
        pool_sid(sid, k);
        size_t want = 0, got = 0;
        for (size_t i = 0; i < nitems; i++)
            if (items[i].in && strcmp(items[i].sid, sid) == 0)
                want++;
        for (sg_sidnode *n = sg_sidmap_find(m, sid); n; n = sg_sidmap_next(n)) {
            struct item *x = item_of(n);
            if (!x->in || strcmp(x->sid, sid) != 0 || n->sid != x->sid)
                bad++;
            got++;
        }
        if (got != want)
            bad++;
    }
    return bad;
}

TEST("sidmap: a fixed sequence of adds, dels and finds")
{
    enum { ADD, DEL, FIND };
    static const struct {
        int op;
        int item;     /* index into items */
        int want;     /* DEL: return value; FIND: nodes found with that sid */
        size_t count; /* count after the step */
    } steps[] = {
        {FIND, 0, 0, 0}, {ADD, 0, 0, 1}, {FIND, 0, 1, 1}, {FIND, 1, 0, 1},
        {ADD, 1, 0, 2},  {ADD, 2, 0, 3}, /* item 2 has item 0's sid */
        {FIND, 0, 2, 3}, {FIND, 2, 2, 3}, {DEL, 0, 1, 2}, {DEL, 0, 0, 2},
        {FIND, 0, 1, 2}, {DEL, 2, 1, 1}, {FIND, 2, 0, 1}, {DEL, 1, 1, 0},
        {FIND, 1, 0, 0}, {ADD, 2, 0, 1}, {FIND, 0, 1, 1}, {DEL, 2, 1, 0},
    };
    struct item items[3];
    memset(items, 0, sizeof items);
    strcpy(items[0].sid, "aaaaaaaaaaaaaaaaaaaa");
    strcpy(items[1].sid, "bbbbbbbbbbbbbbbbbbbb");
    strcpy(items[2].sid, "aaaaaaaaaaaaaaaaaaaa");
    for (int i = 0; i < 3; i++)
        items[i].node.sid = items[i].sid;
    sg_sidmap m;
    CHECK_INT(sg_sidmap_init(&m, 1), 0);
    for (size_t s = 0; s < sizeof steps / sizeof *steps; s++) {
        struct item *x = &items[steps[s].item];
        if (steps[s].op == ADD) {
            sg_sidmap_add(&m, &x->node);
        } else if (steps[s].op == DEL) {
            CHECK_INT(sg_sidmap_del(&m, &x->node), steps[s].want);
        } else {
            int got = 0;
            for (sg_sidnode *n = sg_sidmap_find(&m, x->sid); n; n = sg_sidmap_next(n)) {
                CHECK_STR(n->sid, x->sid);
                got++;
            }
            if (got != steps[s].want)
                printf("#   step %zu: found %d, expected %d\n", s, got, steps[s].want);
            CHECK_INT(got, steps[s].want);
        }
        CHECK_INT(m.count, steps[s].count);
    }
    sg_sidmap_free(&m);
    CHECK(m.buckets == NULL);
    sg_sidmap_free(&m); /* twice is harmless */
}

TEST("sidmap: init rounds the bucket count up to a power of two")
{
    static const struct {
        size_t ask, want;
    } cases[] = {{0, 1}, {1, 1}, {2, 2}, {3, 4}, {64, 64}, {65, 128}, {1000, 1024}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        sg_sidmap m;
        CHECK_INT(sg_sidmap_init(&m, cases[i].ask), 0);
        CHECK_INT(m.nbuckets, cases[i].want);
        CHECK_INT(m.count, 0);
        CHECK(sg_sidmap_find(&m, "x") == NULL);
        sg_sidmap_iter it;
        CHECK(sg_sidmap_iter_first(&m, &it) == NULL);
        sg_sidmap_free(&m);
    }
}

TEST("sidmap: random adds, dels and finds with growth, against a reference")
{
    static const struct {
        unsigned seed;
        size_t buckets;  /* to begin with */
        size_t nitems;
        unsigned nsids;  /* distinct ids among the items (fewer: several per id) */
        int ops;
        int add_pct;     /* of the ops; the rest are dels */
    } cases[] = {
        {1, 1, 2000, 2000, 10000, 70},  /* one per id, grows from 1 bucket */
        {2, 64, 3000, 700, 10000, 60},  /* about 4 per id */
        {3, 1024, 500, 50, 10000, 50},  /* 10 per id, no growth needed */
        {4, 2, 4000, 4000, 10000, 90},  /* mostly adds: many doublings */
        {5, 16, 1000, 1, 5000, 55},     /* all the same id */
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        srand(cases[c].seed);
        size_t n = cases[c].nitems;
        struct item *items = malloc(n * sizeof *items);
        CHECK(items != NULL);
        if (!items)
            return;
        fill(items, n, cases[c].nsids, true);
        sg_sidmap m;
        CHECK_INT(sg_sidmap_init(&m, cases[c].buckets), 0);
        int bad = 0;
        for (int op = 0; op < cases[c].ops; op++) {
            struct item *x = &items[(size_t)rand() % n];
            if (rand() % 100 < cases[c].add_pct) {
                if (!x->in) {
                    sg_sidmap_add(&m, &x->node);
                    x->in = true;
                }
            } else {
                bad += sg_sidmap_del(&m, &x->node) != (x->in ? 1 : 0);
                x->in = false;
            }
            /* a lookup of a random id every op (present or not) */
            char sid[SG_ID_LEN + 1];
            pool_sid(sid, (unsigned)rand() % (cases[c].nsids + 1));
            sg_sidnode *f = sg_sidmap_find(&m, sid);
            bool any = false;
            for (size_t i = 0; i < n && !any; i++)
                any = items[i].in && strcmp(items[i].sid, sid) == 0;
            bad += (f != NULL) != any;
            if (op % 1000 == 999)
                bad += verify(&m, items, n, cases[c].nsids, true);
        }
        bad += verify(&m, items, n, cases[c].nsids, true);
        if (bad)
            printf("#   case %zu (seed %u): %d mismatches\n", c, cases[c].seed, bad);
        CHECK_INT(bad, 0);
        sg_sidmap_free(&m);
        free(items);
    }
}

TEST("sidmap: the iterator survives removing the node it gave")
{
    enum { N = 300 };
    static struct item items[N];
    fill(items, N, 97, false);
    sg_sidmap m;
    CHECK_INT(sg_sidmap_init(&m, 4), 0);
    for (unsigned i = 0; i < N; i++) {
        sg_sidmap_add(&m, &items[i].node);
        items[i].in = true;
    }
    sg_sidmap_iter it;
    for (sg_sidnode *n = sg_sidmap_iter_first(&m, &it); n; n = sg_sidmap_iter_next(&it)) {
        struct item *x = item_of(n);
        if (x->tag % 3 == 0) {
            CHECK_INT(sg_sidmap_del(&m, n), 1);
            x->in = false;
        }
    }
    CHECK_INT(verify(&m, items, N, 97, true), 0);
    /* and removing every node found for one id, reading next first */
    char sid[SG_ID_LEN + 1];
    pool_sid(sid, 5);
    for (sg_sidnode *n = sg_sidmap_find(&m, sid), *next; n; n = next) {
        next = sg_sidmap_next(n);
        CHECK_INT(sg_sidmap_del(&m, n), 1);
        item_of(n)->in = false;
    }
    CHECK(sg_sidmap_find(&m, sid) == NULL);
    CHECK_INT(verify(&m, items, N, 97, true), 0);
    sg_sidmap_free(&m);
}

TEST("sidmap: a failed allocation while growing only makes chains longer")
{
    enum { N = 500 };
    static struct item items[N];
    sg_sidmap m;
    if (!faults_work()) {
        printf("# skipped: calloc cannot be made to fail here\n");
        return;
    }
    fill(items, N, 200, false);
    CHECK_INT(sg_sidmap_init(&m, 2), 0);
    fail_calloc = true;
    for (unsigned i = 0; i < N; i++) {
        sg_sidmap_add(&m, &items[i].node);
        items[i].in = true;
    }
    fail_calloc = false;
    CHECK_INT(m.nbuckets, 2);
    CHECK_INT(verify(&m, items, N, 200, false), 0);
    for (unsigned i = 0; i < N; i += 2) {
        CHECK_INT(sg_sidmap_del(&m, &items[i].node), 1);
        items[i].in = false;
    }
    CHECK_INT(verify(&m, items, N, 200, false), 0);
    /* memory is back: each add doubles again, nothing is lost */
    for (unsigned i = 0; i < N; i += 2) {
        sg_sidmap_add(&m, &items[i].node);
        items[i].in = true;
    }
    CHECK(m.nbuckets > 2);
    CHECK_INT(verify(&m, items, N, 200, false), 0);
    sg_sidmap_free(&m);

    fail_calloc = true;
    CHECK_INT(sg_sidmap_init(&m, 8), -1);
    fail_calloc = false;
    CHECK_INT(m.nbuckets, 0);
    CHECK_INT(m.count, 0);
    sg_sidmap_free(&m);
}

int main(void) { return tap_run(); }
