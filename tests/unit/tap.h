/* tap.h - a minimal TAP producer for the C unit tests.
 *
 *   TEST("engineio: decode ping") { ... CHECK(cond); CHECK_STR(a, b); ... }
 *   int main(void) { return tap_run(); }
 *   SKIP("reason") inside a TEST reports it skipped.
 *
 * Each TEST is one TAP test point ("ok N - name"); a failed CHECK prints a
 * diagnostic with file and line and marks the point "not ok". */
#ifndef SG_TAP_H
#define SG_TAP_H

#include <stdio.h>
#include <string.h>

typedef void (*tap_fn)(int *failed);
struct tap_case { const char *name; tap_fn fn; };

#define TAP_MAX 512
static struct tap_case tap_cases[TAP_MAX];
static int tap_ncases;

#define TAP_CAT2(a, b) a##b
#define TAP_CAT(a, b) TAP_CAT2(a, b)
#define TEST(name)                                                             \
    static void TAP_CAT(tap_t_, __LINE__)(int *tap_failed);                    \
    __attribute__((constructor)) static void TAP_CAT(tap_r_, __LINE__)(void)   \
    {                                                                          \
        if (tap_ncases < TAP_MAX)                                              \
            tap_cases[tap_ncases++] = (struct tap_case){name, TAP_CAT(tap_t_, __LINE__)}; \
    }                                                                          \
    static void TAP_CAT(tap_t_, __LINE__)(int *tap_failed)

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            printf("#   %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
            *tap_failed = 1;                                                   \
        }                                                                      \
    } while (0)

#define CHECK_INT(a, b)                                                        \
    do {                                                                       \
        long long tap_a = (long long)(a), tap_b = (long long)(b);              \
        if (tap_a != tap_b) {                                                  \
            printf("#   %s:%d: %s == %lld, expected %lld\n", __FILE__, __LINE__, \
                   #a, tap_a, tap_b);                                          \
            *tap_failed = 1;                                                   \
        }                                                                      \
    } while (0)

#define CHECK_STR(a, b)                                                        \
    do {                                                                       \
        const char *tap_a = (a), *tap_b = (b);                                 \
        if (!tap_a || !tap_b || strcmp(tap_a, tap_b) != 0) {                   \
            printf("#   %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__,     \
                   __LINE__, #a, tap_a ? tap_a : "(null)", tap_b ? tap_b : "(null)"); \
            *tap_failed = 1;                                                   \
        }                                                                      \
    } while (0)

#define CHECK_MEM(a, alen, b, blen)                                            \
    do {                                                                       \
        size_t tap_al = (alen), tap_bl = (blen);                               \
        if (tap_al != tap_bl || memcmp((a), (b), tap_al) != 0) {               \
            printf("#   %s:%d: %s differs from %s (%zu vs %zu bytes)\n",       \
                   __FILE__, __LINE__, #a, #b, tap_al, tap_bl);                \
            *tap_failed = 1;                                                   \
        }                                                                      \
    } while (0)

/* SKIP("why"): the test point is reported "ok N - name # SKIP why" and the
 * test returns (a CHECK that failed before it still fails the point). */
static const char *tap_skip_reason;
#define SKIP(why)                                                              \
    do {                                                                       \
        tap_skip_reason = (why);                                               \
        return;                                                                \
    } while (0)

static inline int tap_run(void)
{
    int bad = 0;
    printf("1..%d\n", tap_ncases);
    for (int i = 0; i < tap_ncases; i++) {
        int failed = 0;
        tap_skip_reason = NULL;
        tap_cases[i].fn(&failed);
        if (tap_skip_reason && !failed)
            printf("ok %d - %s # SKIP %s\n", i + 1, tap_cases[i].name, tap_skip_reason);
        else
            printf("%s %d - %s\n", failed ? "not ok" : "ok", i + 1, tap_cases[i].name);
        fflush(stdout);
        bad |= failed;
    }
    return bad;
}

#endif
