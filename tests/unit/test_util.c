/* test_util.c - ids from the OS CSPRNG, the log's one-line rule, and the query string.
 *
 * getrandom(2) is interposed here (the test binary's definition wins over
 * libc's for the statically linked library): the ids must be made of its
 * bytes, survive short reads and EINTR, and fail, never fall back to a
 * weaker source, when it fails. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "util.h"
#include "tap.h"

static enum { REAL, FIXED, SHORT_EINTR, FAIL } mode = REAL;
static int calls;

ssize_t getrandom(void *buf, size_t n, unsigned int flags)
{
    calls++;
    switch (mode) {
    case REAL:
        return syscall(SYS_getrandom, buf, n, flags);
    case FAIL:
        errno = ENOSYS;
        return -1;
    case SHORT_EINTR:
        if (calls == 2) {
            errno = EINTR;
            return -1;
        }
        if (n > 4)
            n = 4;
        /* fall through */
    case FIXED:
        break;
    }
    static unsigned char next;
    for (size_t i = 0; i < n; i++)
        ((unsigned char *)buf)[i] = next++;
    return (ssize_t)n;
}

TEST("ids: 120 bits from getrandom, base64url, no fallback when it fails")
{
    char id[SG_ID_LEN + 1];
    mode = FIXED;
    calls = 0;
    CHECK_INT(sg_id_new(id), 0);
    CHECK_STR(id, "AAECAwQFBgcICQoLDA0O"); /* the bytes 0x00..0x0e */
    CHECK_INT(calls, 1);
    mode = SHORT_EINTR;
    calls = 0;
    CHECK_INT(sg_id_new(id), 0);
    CHECK_STR(id, "DxAREhMUFRYXGBkaGxwd"); /* 0x0f..0x1d, in reads of 4 */
    CHECK_INT(calls, 5);
    mode = FAIL;
    memset(id, 'x', sizeof id);
    CHECK_INT(sg_id_new(id), -1);
    mode = REAL;
    char seen[200][SG_ID_LEN + 1];
    int dup = 0;
    for (int i = 0; i < 200; i++) {
        CHECK_INT(sg_id_new(seen[i]), 0);
        CHECK(sg_id_valid(seen[i]));
        for (int j = 0; j < i; j++)
            dup += !strcmp(seen[i], seen[j]);
    }
    CHECK_INT(dup, 0);
}

TEST("query: values and names percent-decoded, the first match, '+' a space")
{
    char *v;
#define GOT(q, n, want)                                                                            \
    do {                                                                                           \
        v = sg_query_get(q, n);                                                                    \
        CHECK(v != NULL);                                                                          \
        CHECK_STR(v ? v : "(null)", want);                                                         \
        free(v);                                                                                   \
    } while (0)
    GOT("EIO=4&transport=polling&t=x", "transport", "polling");
    GOT("a=1&a=2", "a", "1");
    GOT("q=x+y%20z%2B", "q", "x y z+");
    GOT("s%69d=abc&sid=def", "sid", "abc"); /* the name decoded */
    GOT("my+key=1&my%20key=2", "my key", "1");
    GOT("flag&x=1", "flag", "");
    GOT("x=%4", "x", "%4");                 /* not an escape: as it is */
    GOT("x=%zz%", "x", "%zz%");
    GOT("x=a%00b", "x", "a");               /* a C string ends at the NUL */
#undef GOT
    CHECK(sg_query_get("sidx=1&xsid=2&si=3", "sid") == NULL);
    CHECK(sg_query_get("s%00id=1", "s") == NULL);
    CHECK(sg_query_get("", "sid") == NULL);
    CHECK(sg_query_get(NULL, "sid") == NULL);
    CHECK(sg_query_get("&&=&", "sid") == NULL);
    size_t n = 0;
    v = sg_pct_decode("a%00b+", 6, &n);
    CHECK(v != NULL && n == 4 && memcmp(v, "a\0b ", 5) == 0);
    free(v);
}

TEST("log: control bytes in a message become '?': one event, one line")
{
    int fds[2];
    CHECK_INT(pipe(fds), 0);
    int saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    sg_log_init("t", SG_LOG_INFO);
    sg_log(SG_LOG_WARN, "namespace %s not joined", "/a\nt[1]: error: forged\r\x1b[2J\x7f");
    sg_log(SG_LOG_DEBUG, "not printed at info");
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    char buf[512] = "";
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    buf[n > 0 ? n : 0] = '\0';
    char want[256];
    snprintf(want, sizeof want, "t[%ld]: warning: namespace /a?t[1]: error: forged??[2J? not joined\n",
             (long)getpid());
    CHECK_STR(buf, want);
}

TEST("tokens: of this pid space, stable; another space's name no local pid")
{
    const char *space = sg_pid_space();
    CHECK_INT((int)strlen(space), 12);
    CHECK(strspn(space, "0123456789abcdef") == 12);
    CHECK(sg_pid_space() == space);
    char t[SG_TOKEN_MAX];
    sg_token_make(t, 4242, 18446744073709551615ULL);
    char want[SG_TOKEN_MAX];
    snprintf(want, sizeof want, "4242.18446744073709551615@%s", space);
    CHECK_STR(t, want);
    CHECK_INT((int)sg_token_local_pid(t), 4242);
    CHECK_INT((int)sg_token_local_pid("4242.7"), 4242);        /* written before spaces */
    CHECK_INT((int)sg_token_local_pid(strcmp(space, "000000000000") ? "4242.7@000000000000"
                                                                   : "4242.7@000000000001"), 0);
    CHECK_INT((int)sg_token_local_pid("4242.7@"), 0);
    CHECK_INT((int)sg_token_local_pid(""), 0);
    CHECK_INT((int)sg_token_local_pid("x.1"), 0);
    CHECK_INT((int)sg_token_local_pid("-5.1"), 0);
    CHECK_INT((int)sg_token_local_pid("99999999999999999999.1"), 0);
    CHECK_INT((int)sg_token_local_pid("12"), 0);
}

int main(void) { return tap_run(); }

TEST("ids: sg_id_valid takes 20 characters of base64url, nothing else; sg_copy cuts and ends with NUL")
{
    CHECK(sg_id_valid("AZaz09-_AZaz09-_AZaz"));
    CHECK(!sg_id_valid("AZaz09-_AZaz09-_AZa"));   /* 19 */
    CHECK(!sg_id_valid("AZaz09-_AZaz09-_AZaz0")); /* 21 */
    CHECK(!sg_id_valid("AZaz09-_AZaz09-_AZa="));
    CHECK(!sg_id_valid("AZaz09-_AZaz09-_AZa\xc3"));
    CHECK(!sg_id_valid("AZaz09-_AZ az09-_AZa"));
    CHECK(!sg_id_valid(""));
    CHECK(!sg_id_valid(NULL));
    char d[4];
    sg_copy(d, sizeof d, "abcdef");
    CHECK_STR(d, "abc");
    sg_copy(d, sizeof d, "ab");
    CHECK_STR(d, "ab");
    sg_copy(d, sizeof d, NULL);
    CHECK_STR(d, "");
    sg_copy(d, 1, "xyz");
    CHECK_STR(d, "");
}
