/* test_base64.c - unit tests for gateway/base64.c */
#include <stdlib.h>

#include "base64.h"
#include "tap.h"

struct vec {
    const char *raw;
    size_t rawlen;
    const char *b64;
};

#define V(raw, b64) {raw, sizeof raw - 1, b64}

/* RFC 4648 section 10, plus bytes that exercise every alphabet edge. */
static const struct vec vectors[] = {
    V("", ""),
    V("f", "Zg=="),
    V("fo", "Zm8="),
    V("foo", "Zm9v"),
    V("foob", "Zm9vYg=="),
    V("fooba", "Zm9vYmE="),
    V("foobar", "Zm9vYmFy"),
    V("\x01\x02\x03\x04", "AQIDBA=="),             /* engine.io-protocol example */
    V("\x00", "AA=="),
    V("\x00\x00\x00", "AAAA"),
    V("\xff", "/w=="),
    V("\xff\xff\xff", "////"),
    V("\xfb\xff", "+/8="),
    V("\xfb\xef\xbe", "++++"),
    V("\x00\x10\x83\x10\x51\x87\x20\x92\x8b\x30\xd3\x8f\x41\x14\x93\x51\x55\x97"
      "\x61\x96\x9b\x71\xd7\x9f\x82\x18\xa3\x92\x59\xa7\xa2\x9a\xab\xb2\xdb\xaf"
      "\xc3\x1c\xb3\xd3\x5d\xb7\xe3\x9e\xbb\xf3\xdf\xbf",
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"),
    V("hello world\n", "aGVsbG8gd29ybGQK"),
};

TEST("base64: encode test vectors")
{
    for (size_t i = 0; i < sizeof vectors / sizeof *vectors; i++) {
        sg_buf b = SG_BUF_INIT;
        CHECK_INT(sg_base64_encode(&b, vectors[i].raw, vectors[i].rawlen), 0);
        CHECK_STR(sg_buf_str(&b), vectors[i].b64);
        CHECK_INT(b.len, strlen(vectors[i].b64));
        sg_buf_free(&b);
    }
}

TEST("base64: decode test vectors (padded)")
{
    for (size_t i = 0; i < sizeof vectors / sizeof *vectors; i++) {
        sg_buf b = SG_BUF_INIT;
        const char *in = vectors[i].b64;
        CHECK_INT(sg_base64_decode(&b, in, strlen(in)), 0);
        CHECK_MEM(b.data ? b.data : "", b.len, vectors[i].raw, vectors[i].rawlen);
        if (b.data)
            CHECK_INT(b.data[b.len], 0);
        sg_buf_free(&b);
    }
}

TEST("base64: decode test vectors without padding")
{
    for (size_t i = 0; i < sizeof vectors / sizeof *vectors; i++) {
        sg_buf b = SG_BUF_INIT;
        const char *in = vectors[i].b64;
        size_t n = strlen(in);
        while (n && in[n - 1] == '=')
            n--;
        CHECK_INT(sg_base64_decode(&b, in, n), 0);
        CHECK_MEM(b.data ? b.data : "", b.len, vectors[i].raw, vectors[i].rawlen);
        sg_buf_free(&b);
    }
}

TEST("base64: round trip of every byte value and every length up to 300")
{
    unsigned char raw[300];
    for (size_t i = 0; i < sizeof raw; i++)
        raw[i] = (unsigned char)(i * 7 + 3);
    int ok = 1;
    for (size_t n = 0; n <= sizeof raw; n++) {
        sg_buf enc = SG_BUF_INIT, dec = SG_BUF_INIT;
        ok &= sg_base64_encode(&enc, raw, n) == 0;
        ok &= enc.len == (n + 2) / 3 * 4;
        ok &= sg_base64_decode(&dec, sg_buf_str(&enc), enc.len) == 0;
        ok &= dec.len == n && (n == 0 || memcmp(dec.data, raw, n) == 0);
        sg_buf_free(&enc);
        sg_buf_free(&dec);
    }
    CHECK(ok);
}

TEST("base64: encode and decode append to existing contents")
{
    sg_buf b = SG_BUF_INIT;
    CHECK_INT(sg_buf_puts(&b, "b"), 0);
    CHECK_INT(sg_base64_encode(&b, "\x01\x02\x03\x04", 4), 0);
    CHECK_STR(sg_buf_str(&b), "bAQIDBA==");
    CHECK_INT(sg_base64_decode(&b, "Zm9v", 4), 0);
    CHECK_MEM(b.data, b.len, "bAQIDBA==foo", 12);
    sg_buf_free(&b);
}

TEST("base64: invalid input is -2 and leaves out unchanged")
{
    static const char *const bad[] = {
        "A",          /* 4k+1 */
        "AAAAA",      /* 4k+1 */
        "Zg=",        /* padding with a length not multiple of 4 */
        "Zg===",      /* too much padding */
        "Z===",       /* 4k+1 once padding is removed */
        "====",       /* only padding */
        "=Zg=",       /* '=' at the start */
        "Zg==Zg==",   /* '=' in the middle */
        "Z=g=",       /* '=' in the middle */
        "Zm9v\n",     /* whitespace */
        "Zm 9v",      /* whitespace */
        "Zm9-",       /* URL-safe alphabet */
        "Zm9_",       /* URL-safe alphabet */
        "Zm9v!",      /* punctuation */
        "Zm\x80v",    /* high byte */
        "Zm\0v",      /* NUL inside */
    };
    static const size_t badlen[] = {1, 5, 3, 5, 4, 4, 4, 8, 4, 5, 5, 4, 4, 5, 4, 4};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sg_buf b = SG_BUF_INIT;
        CHECK_INT(sg_buf_puts(&b, "prefix"), 0);
        int rc = sg_base64_decode(&b, bad[i], badlen[i]);
        if (rc != -2)
            printf("#   case %zu\n", i);
        CHECK_INT(rc, -2);
        CHECK_INT(b.len, 6);
        CHECK_STR(sg_buf_str(&b), "prefix");
        sg_buf_free(&b);
    }
}

TEST("base64: invalid input on an empty buffer leaves it empty")
{
    sg_buf b = SG_BUF_INIT;
    CHECK_INT(sg_base64_decode(&b, "Zm9v*", 5), -2);
    CHECK_INT(b.len, 0);
    CHECK_STR(sg_buf_str(&b), "");
    sg_buf_free(&b);
}

TEST("base64: empty input decodes to nothing")
{
    sg_buf b = SG_BUF_INIT;
    CHECK_INT(sg_base64_decode(&b, "", 0), 0);
    CHECK_INT(b.len, 0);
    sg_buf_free(&b);
}

TEST("base64: non-canonical trailing bits are ignored (as Node's Buffer)")
{
    sg_buf b = SG_BUF_INIT;
    CHECK_INT(sg_base64_decode(&b, "Zh==", 4), 0); /* "Zg==" with stray bits */
    CHECK_MEM(b.data, b.len, "f", 1);
    sg_buf_reset(&b);
    CHECK_INT(sg_base64_decode(&b, "Zm9=", 4), 0);
    CHECK_MEM(b.data, b.len, "fo", 2);
    sg_buf_free(&b);
}

int main(void) { return tap_run(); }
