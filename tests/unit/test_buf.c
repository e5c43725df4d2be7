/* test_buf.c - unit tests for gateway/buf.c */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "tap.h"

TEST("buf: initial state is empty and reads as \"\"")
{
    sg_buf b = SG_BUF_INIT;
    CHECK(b.data == NULL);
    CHECK_INT(b.len, 0);
    CHECK_STR(sg_buf_str(&b), "");
    sg_buf_free(&b);
    sg_buf_init(&b);
    CHECK(b.data == NULL);
    CHECK_INT(b.cap, 0);
}

TEST("buf: append, puts, putc keep the NUL terminator")
{
    static const struct {
        const char *parts[4];
        const char *want;
    } cases[] = {
        {{"a", NULL}, "a"},
        {{"hello", ", ", "world", NULL}, "hello, world"},
        {{"", "", NULL}, ""},
        {{"x", "", "y", NULL}, "xy"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        sg_buf b = SG_BUF_INIT;
        for (int k = 0; cases[i].parts[k]; k++)
            CHECK_INT(sg_buf_puts(&b, cases[i].parts[k]), 0);
        CHECK_STR(sg_buf_str(&b), cases[i].want);
        CHECK_INT(b.len, strlen(cases[i].want));
        if (b.data)
            CHECK_INT(b.data[b.len], '\0');
        sg_buf_free(&b);
    }
}

TEST("buf: binary bytes with NULs")
{
    sg_buf b = SG_BUF_INIT;
    static const char bytes[] = {'a', 0, 'b', 0, (char)0xff};
    CHECK_INT(sg_buf_append(&b, bytes, sizeof bytes), 0);
    CHECK_INT(sg_buf_putc(&b, '\0'), 0);
    CHECK_INT(b.len, 6);
    CHECK_MEM(b.data, 5, bytes, sizeof bytes);
    CHECK_INT(b.data[5], 0);
    CHECK_INT(b.data[6], 0);
    sg_buf_free(&b);
}

TEST("buf: append of zero bytes from NULL is fine")
{
    sg_buf b = SG_BUF_INIT;
    CHECK_INT(sg_buf_append(&b, NULL, 0), 0);
    CHECK_INT(b.len, 0);
    CHECK_STR(sg_buf_str(&b), "");
    sg_buf_free(&b);
}

TEST("buf: growth over many appends")
{
    sg_buf b = SG_BUF_INIT;
    for (int i = 0; i < 10000; i++)
        CHECK_INT(sg_buf_putc(&b, (char)('a' + i % 26)), 0);
    CHECK_INT(b.len, 10000);
    CHECK(b.cap > b.len);
    int ok = 1;
    for (int i = 0; i < 10000; i++)
        ok &= b.data[i] == (char)('a' + i % 26);
    CHECK(ok);
    CHECK_INT(b.data[10000], 0);
    sg_buf_free(&b);
}

TEST("buf: printf formats and appends")
{
    static const struct {
        const char *prefix;
        int n;
        const char *s;
        const char *want;
    } cases[] = {
        {"", 0, "", "0:"},
        {"x", 42, "abc", "x42:abc"},
        {"", -7, "-", "-7:-"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        sg_buf b = SG_BUF_INIT;
        CHECK_INT(sg_buf_puts(&b, cases[i].prefix), 0);
        CHECK_INT(sg_buf_printf(&b, "%d:%s", cases[i].n, cases[i].s), 0);
        CHECK_STR(sg_buf_str(&b), cases[i].want);
        sg_buf_free(&b);
    }
}

TEST("buf: printf longer than the initial capacity")
{
    sg_buf b = SG_BUF_INIT;
    char big[1000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK_INT(sg_buf_printf(&b, "<%s>", big), 0);
    CHECK_INT(b.len, 1001);
    CHECK_INT(b.data[0], '<');
    CHECK_INT(b.data[1000], '>');
    CHECK_INT(b.data[1001], 0);
    sg_buf_free(&b);
}

TEST("buf: reset keeps the allocation and empties")
{
    sg_buf b = SG_BUF_INIT;
    CHECK_INT(sg_buf_puts(&b, "something"), 0);
    char *p = b.data;
    size_t cap = b.cap;
    sg_buf_reset(&b);
    CHECK(b.data == p);
    CHECK_INT(b.cap, cap);
    CHECK_INT(b.len, 0);
    CHECK_STR(sg_buf_str(&b), "");
    CHECK_INT(sg_buf_puts(&b, "again"), 0);
    CHECK_STR(sg_buf_str(&b), "again");
    sg_buf_free(&b);
    sg_buf_reset(&b); /* on an empty buffer: no-op */
    CHECK(b.data == NULL);
}

TEST("buf: steal returns the data and resets")
{
    sg_buf b = SG_BUF_INIT;
    CHECK_INT(sg_buf_puts(&b, "mine"), 0);
    char *s = sg_buf_steal(&b);
    CHECK_STR(s, "mine");
    CHECK(b.data == NULL);
    CHECK_INT(b.len, 0);
    free(s);
    s = sg_buf_steal(&b); /* empty: a fresh "" */
    CHECK(s != NULL);
    CHECK_STR(s, "");
    free(s);
}

TEST("buf: reserve refuses absurd sizes and leaves the buffer as it was")
{
    sg_buf b = SG_BUF_INIT;
    CHECK_INT(sg_buf_puts(&b, "keep"), 0);
    CHECK_INT(sg_buf_reserve(&b, SIZE_MAX), -1);
    CHECK_INT(sg_buf_reserve(&b, SIZE_MAX / 2), -1);
    CHECK_INT(sg_buf_append(&b, "x", SIZE_MAX - 2), -1);
    CHECK_STR(sg_buf_str(&b), "keep");
    CHECK_INT(b.len, 4);
    CHECK_INT(sg_buf_reserve(&b, 100), 0);
    CHECK(b.cap >= 105);
    CHECK_STR(sg_buf_str(&b), "keep");
    sg_buf_free(&b);
}

int main(void) { return tap_run(); }

TEST("buf: printf fits the room there is, exactly, or grows; put_i64 prints as PRId64")
{
    sg_buf b = SG_BUF_INIT;
    CHECK_INT(sg_buf_reserve(&b, 10), 0); /* 64 bytes: 63 and the NUL */
    size_t cap = b.cap;
    char fill[128];
    memset(fill, 'x', sizeof fill);
    /* all but two bytes, then the last one (its NUL fills the room), then more: grows */
    CHECK_INT(sg_buf_printf(&b, "%.*s", (int)cap - 2, fill), 0);
    CHECK_INT(b.len, cap - 2);
    CHECK_INT(b.cap, cap);
    CHECK_INT(sg_buf_printf(&b, "%s", "y"), 0);
    CHECK_INT(b.len, cap - 1);
    CHECK_INT(b.cap, cap);
    CHECK_INT(sg_buf_printf(&b, "%d", 42), 0);
    CHECK(b.cap > cap);
    CHECK_INT(b.len, cap + 1);
    CHECK_INT(b.data[b.len], '\0');
    CHECK(memcmp(b.data + cap - 2, "y42", 3) == 0);
    sg_buf_reset(&b);
    static const int64_t xs[] = {0, 7, -1, 10, 1234567890123LL, INT64_MAX, INT64_MIN};
    char want[256] = "";
    for (size_t i = 0; i < sizeof xs / sizeof *xs; i++) {
        CHECK_INT(sg_buf_put_i64(&b, xs[i]), 0);
        CHECK_INT(sg_buf_putc(&b, ','), 0);
        snprintf(want + strlen(want), sizeof want - strlen(want), "%" PRId64 ",", xs[i]);
    }
    CHECK_STR(sg_buf_str(&b), want);
    sg_buf_free(&b);
}
