/* test_ws.c - SHA-1 (RFC 3174 vectors), the accept key (RFC 6455 example),
 * request-head parsing and every refusal of the opening handshake, the
 * answers, and server frame headers. */
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "ws.h"

static void hex(const uint8_t *d, size_t n, char *out)
{
    static const char x[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = x[d[i] >> 4];
        out[2 * i + 1] = x[d[i] & 15];
    }
    out[2 * n] = '\0';
}

static const char *sha1_hex(const void *data, size_t n)
{
    static char out[2 * SG_SHA1_LEN + 1];
    uint8_t d[SG_SHA1_LEN];
    sg_sha1(data, n, d);
    hex(d, sizeof d, out);
    return out;
}

/* ---------------------------------------------------------------- SHA-1 */

TEST("sha1: RFC 3174 test 1 (abc)")
{
    CHECK_STR(sha1_hex("abc", 3), "a9993e364706816aba3e25717850c26c9cd0d89d");
}

TEST("sha1: RFC 3174 test 2 (448 bits)")
{
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    CHECK_STR(sha1_hex(m, strlen(m)), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

TEST("sha1: RFC 3174 test 3 (a million 'a', fed in odd pieces)")
{
    sg_sha1_ctx s;
    sg_sha1_init(&s);
    char chunk[997];
    memset(chunk, 'a', sizeof chunk);
    size_t left = 1000000;
    while (left) {
        size_t n = left < sizeof chunk ? left : sizeof chunk;
        sg_sha1_update(&s, chunk, n);
        left -= n;
    }
    uint8_t d[SG_SHA1_LEN];
    char out[41];
    sg_sha1_final(&s, d);
    hex(d, sizeof d, out);
    CHECK_STR(out, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

TEST("sha1: RFC 3174 test 4 (640 bytes, in one call and byte by byte)")
{
    char m[641] = "";
    for (int i = 0; i < 10; i++)
        strcat(m, "0123456701234567012345670123456701234567012345670123456701234567");
    CHECK_STR(sha1_hex(m, 640), "dea356a2cddd90c7a7ecedc5ebb563934f460452");
    sg_sha1_ctx s;
    sg_sha1_init(&s);
    for (int i = 0; i < 640; i++)
        sg_sha1_update(&s, m + i, 1);
    uint8_t d[SG_SHA1_LEN];
    char out[41];
    sg_sha1_final(&s, d);
    hex(d, sizeof d, out);
    CHECK_STR(out, "dea356a2cddd90c7a7ecedc5ebb563934f460452");
}

TEST("sha1: empty input and the 55/56/64-byte padding edges")
{
    CHECK_STR(sha1_hex("", 0), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    char m[65];
    memset(m, 'a', sizeof m);
    CHECK_STR(sha1_hex(m, 55), "c1c8bbdc22796e28c0e15163d20899b65621d65a");
    CHECK_STR(sha1_hex(m, 56), "c2db330f6083854c99d4b5bfb6e8f29f201be699");
    CHECK_STR(sha1_hex(m, 64), "0098ba824b5c16427bd7a1122a5a442a25ec644d");
}

/* ---------------------------------------------------------------- accept key */

TEST("accept key: the RFC 6455 example")
{
    char acc[SG_WS_ACCEPT_LEN + 1];
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    sg_ws_accept_key(key, strlen(key), acc);
    CHECK_STR(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

/* ---------------------------------------------------------------- parsing */

static const char GOOD[] =
    "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
    "Host: example.com\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "User-Agent:   spaced value \t \r\n"
    "\r\n";

TEST("head end: complete, incomplete, bare LF, trailing bytes")
{
    CHECK_INT(sg_ws_head_end(GOOD, strlen(GOOD)), strlen(GOOD));
    CHECK_INT(sg_ws_head_end(GOOD, strlen(GOOD) - 1), 0);
    CHECK_INT(sg_ws_head_end(GOOD, 20), 0);
    const char lf[] = "GET / HTTP/1.1\nHost: a\n\nxyz";
    CHECK_INT(sg_ws_head_end(lf, strlen(lf)), strlen(lf) - 3);
    char more[sizeof GOOD + 8];
    snprintf(more, sizeof more, "%s\x81\x86", GOOD);
    CHECK_INT(sg_ws_head_end(more, strlen(more)), strlen(GOOD));
}

TEST("parse: a good request")
{
    sg_ws_request r;
    CHECK_INT(sg_ws_request_parse(GOOD, strlen(GOOD), &r), SG_WS_PARSE_OK);
    CHECK_STR(r.method, "GET");
    CHECK_STR(r.target, "/socket.io/?EIO=4&transport=websocket");
    CHECK_STR(r.path, "/socket.io/");
    CHECK_STR(r.query, "EIO=4&transport=websocket");
    CHECK_INT(r.http_minor, 1);
    CHECK_INT(r.nheaders, 6);
    CHECK_STR(r.headers[0], "host");
    CHECK_STR(r.headers[1], "example.com");
    CHECK_STR(sg_ws_request_header(&r, "sec-websocket-key"), "dGhlIHNhbXBsZSBub25jZQ==");
    CHECK_STR(sg_ws_request_header(&r, "user-agent"), "spaced value");
    CHECK(sg_ws_request_header(&r, "Host") == NULL); /* names are lower-case */
    CHECK(r.headers[12] == NULL);
    CHECK(sg_ws_is_upgrade(&r));
    char acc[SG_WS_ACCEPT_LEN + 1];
    const char *why = NULL;
    CHECK_INT(sg_ws_handshake_check(&r, acc, &why), 0);
    CHECK_STR(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    sg_ws_request_free(&r);
    sg_ws_request_free(&r); /* twice is fine */
}

TEST("parse: absolute-form target, no query, fragment")
{
    sg_ws_request r;
    const char a[] = "GET http://h:8080/socket.io/?EIO=4 HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK_INT(sg_ws_request_parse(a, strlen(a), &r), SG_WS_PARSE_OK);
    CHECK_STR(r.path, "/socket.io/");
    CHECK_STR(r.query, "EIO=4");
    sg_ws_request_free(&r);
    const char b[] = "GET /x#frag HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK_INT(sg_ws_request_parse(b, strlen(b), &r), SG_WS_PARSE_OK);
    CHECK_STR(r.path, "/x");
    CHECK_STR(r.query, "");
    sg_ws_request_free(&r);
    const char c[] = "GET https://h HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK_INT(sg_ws_request_parse(c, strlen(c), &r), SG_WS_PARSE_OK);
    CHECK_STR(r.path, "/");
    sg_ws_request_free(&r);
}

TEST("parse: malformed heads are refused")
{
    static const char *bad[] = {
        "",                                              /* nothing */
        "\r\n\r\n",                                      /* empty request line */
        "GET /\r\nHost: h\r\n\r\n",                      /* no version */
        "GET  / HTTP/1.1\r\nHost: h\r\n\r\n",            /* double space */
        "GET / HTTP/1.1 x\r\nHost: h\r\n\r\n",           /* extra word */
        "G(T / HTTP/1.1\r\nHost: h\r\n\r\n",             /* method not a token */
        "GET / HTTP/2.0\r\nHost: h\r\n\r\n",             /* not HTTP/1.x */
        "GET / HTTP/1.1\r\nHost h\r\n\r\n",              /* no colon */
        "GET / HTTP/1.1\r\n: h\r\n\r\n",                 /* empty name */
        "GET / HTTP/1.1\r\nHost : h\r\n\r\n",            /* space before colon */
        "GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n",  /* obs-fold */
        "GET / HTTP/1.1\r\nX: a\x01z\r\n\r\n",           /* control character */
        "GET / HTTP/1.1\r\nX: a\x7fz\r\n\r\n",           /* DEL */
        "GET / HTTP/1.1\r\nHost: h\r\n",                 /* no empty line */
        "GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n",        /* control in target */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sg_ws_request r;
        int rc = sg_ws_request_parse(bad[i], strlen(bad[i]), &r);
        if (rc != SG_WS_PARSE_BAD)
            printf("#   case %zu: %d\n", i, rc);
        CHECK_INT(rc, SG_WS_PARSE_BAD);
        CHECK(r.mem == NULL && r.headers == NULL);
    }
    /* a NUL inside a header value */
    const char nul[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
    sg_ws_request r;
    CHECK_INT(sg_ws_request_parse(nul, sizeof nul - 1, &r), SG_WS_PARSE_BAD);
    sg_ws_request_free(&r);
    /* ... or inside the request line, after the version (found by fuzzing) */
    const char nul2[] = "GET / HTTP/1.1\0junk\r\nHost: x\r\n\r\n";
    CHECK_INT(sg_ws_request_parse(nul2, sizeof nul2 - 1, &r), SG_WS_PARSE_BAD);
}

TEST("parse: too many header lines")
{
    sg_buf b = SG_BUF_INIT;
    sg_buf_puts(&b, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < SG_WS_MAX_HEADERS; i++)
        sg_buf_printf(&b, "X-%d: %d\r\n", i, i);
    sg_buf_puts(&b, "\r\n");
    sg_ws_request r;
    CHECK_INT(sg_ws_request_parse(b.data, b.len, &r), SG_WS_PARSE_OK);
    CHECK_INT(r.nheaders, SG_WS_MAX_HEADERS);
    CHECK_STR(sg_ws_request_header(&r, "x-99"), "99");
    sg_ws_request_free(&r);
    b.len -= 2;
    sg_buf_puts(&b, "One-More: 1\r\n\r\n");
    CHECK_INT(sg_ws_request_parse(b.data, b.len, &r), SG_WS_PARSE_TOO_MANY);
    sg_buf_free(&b);
}

TEST("tokens: Connection and Upgrade lists, case-insensitive, several lines")
{
    const char h[] = "GET / HTTP/1.1\r\n"
                     "Connection: keep-alive ,  UPGRADE\r\n"
                     "Upgrade: h2c\r\n"
                     "Upgrade: foo, WebSocket\r\n"
                     "\r\n";
    sg_ws_request r;
    CHECK_INT(sg_ws_request_parse(h, strlen(h), &r), SG_WS_PARSE_OK);
    CHECK(sg_ws_header_has_token(&r, "connection", "upgrade"));
    CHECK(sg_ws_header_has_token(&r, "connection", "keep-alive"));
    CHECK(!sg_ws_header_has_token(&r, "connection", "keep"));
    CHECK(sg_ws_is_upgrade(&r));
    sg_ws_request_free(&r);
    const char n[] = "GET / HTTP/1.1\r\nUpgrade: websocketx\r\n\r\n";
    CHECK_INT(sg_ws_request_parse(n, strlen(n), &r), SG_WS_PARSE_OK);
    CHECK(!sg_ws_is_upgrade(&r));
    sg_ws_request_free(&r);
}

/* Build GOOD with one line replaced (or removed when repl is ""). */
static int check_variant(const char *from, const char *repl, const char **why)
{
    sg_buf b = SG_BUF_INIT;
    const char *at = strstr(GOOD, from);
    if (!at)
        return -1;
    const char *eol = strstr(at, "\r\n") + 2;
    sg_buf_append(&b, GOOD, (size_t)(at - GOOD));
    sg_buf_puts(&b, repl);
    sg_buf_puts(&b, eol);
    sg_ws_request r;
    int rc = sg_ws_request_parse(b.data, b.len, &r);
    sg_buf_free(&b);
    if (rc != 0)
        return -1;
    char acc[SG_WS_ACCEPT_LEN + 1];
    *why = NULL;
    rc = sg_ws_handshake_check(&r, acc, why);
    sg_ws_request_free(&r);
    return rc;
}

TEST("handshake: each bad case is refused with its status")
{
    static const struct { const char *from, *repl; int status; } cases[] = {
        {"GET ", "POST /socket.io/ HTTP/1.1\r\n", 400},
        {"GET ", "GET /socket.io/ HTTP/1.0\r\n", 400},
        {"Host:", "", 400},
        {"Host:", "Host: \r\n", 400},
        {"Host:", "Host: a\r\nHost: b\r\n", 400},
        {"Upgrade:", "", 400},
        {"Upgrade:", "Upgrade: h2c\r\n", 400},
        {"Connection:", "", 400},
        {"Connection:", "Connection: keep-alive\r\n", 400},
        {"Sec-WebSocket-Key:", "", 400},
        {"Sec-WebSocket-Key:", "Sec-WebSocket-Key: \r\n", 400},
        {"Sec-WebSocket-Key:", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n", 400},
        {"Sec-WebSocket-Key:", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==x\r\n", 400},
        {"Sec-WebSocket-Key:", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q==\r\n", 400},
        {"Sec-WebSocket-Key:", "Sec-WebSocket-Key: YWJjZGVmZ2hpamtsbW5vcHE=\r\n", 400}, /* 17 bytes */
        {"Sec-WebSocket-Key:",
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
         400},
        {"Sec-WebSocket-Version:", "", 400},
        {"Sec-WebSocket-Version:", "Sec-WebSocket-Version: 8\r\n", 426},
        {"Sec-WebSocket-Version:", "Sec-WebSocket-Version: 13, 8\r\n", 426},
        {"Sec-WebSocket-Version:", "Sec-WebSocket-Version: 14\r\n", 426},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *why = NULL;
        int st = check_variant(cases[i].from, cases[i].repl, &why);
        if (st != cases[i].status)
            printf("#   case %zu (%s): %d\n", i, cases[i].repl, st);
        CHECK_INT(st, cases[i].status);
        CHECK(why != NULL);
    }
    /* accepted variants */
    const char *why = NULL;
    CHECK_INT(check_variant("Connection:", "connection: keep-alive, Upgrade\r\n", &why), 0);
    CHECK_INT(check_variant("Upgrade:", "UPGRADE: WebSocket\r\n", &why), 0);
    CHECK_INT(check_variant("GET ", "GET /socket.io/ HTTP/1.2\r\n", &why), 0);
}

TEST("path: with and without the trailing slash")
{
    CHECK(sg_ws_path_ok("/socket.io/", 11, "/socket.io/"));
    CHECK(sg_ws_path_ok("/socket.io", 10, "/socket.io/"));
    CHECK(!sg_ws_path_ok("/socket.io/x", 12, "/socket.io/"));
    CHECK(!sg_ws_path_ok("/socket.i", 9, "/socket.io/"));
    CHECK(!sg_ws_path_ok("/", 1, "/socket.io/"));
    CHECK(sg_ws_path_ok("/", 1, "/"));
    CHECK(!sg_ws_path_ok("", 0, "/"));
}

/* ---------------------------------------------------------------- answers */

TEST("answers: 101, Engine.IO error JSON, 426, plain error")
{
    sg_buf b = SG_BUF_INIT;
    CHECK_INT(sg_ws_response_101(&b, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", NULL), 0);
    CHECK_STR(b.data, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
    sg_buf_reset(&b);
    CHECK_INT(sg_ws_response_eio(&b, 400, 5, "Unsupported protocol version"), 0);
    CHECK(strncmp(b.data, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
    CHECK(strstr(b.data, "\r\nConnection: close\r\n") != NULL);
    CHECK(strstr(b.data, "\r\nContent-Type: application/json\r\n") != NULL);
    CHECK(strstr(b.data, "\r\nContent-Length: 51\r\n") != NULL);
    const char *body = strstr(b.data, "\r\n\r\n");
    CHECK(body && strcmp(body + 4, "{\"code\":5,\"message\":\"Unsupported protocol version\"}") == 0);
    sg_buf_reset(&b);
    CHECK_INT(sg_ws_response_eio(&b, 400, 3, "a \"q\"\n"), 0);
    body = strstr(b.data, "\r\n\r\n");
    CHECK(body && strcmp(body + 4, "{\"code\":3,\"message\":\"a \\\"q\\\"\\u000a\"}") == 0);
    sg_buf_reset(&b);
    CHECK_INT(sg_ws_response_426(&b), 0);
    CHECK(strncmp(b.data, "HTTP/1.1 426 Upgrade Required\r\n", 31) == 0);
    CHECK(strstr(b.data, "\r\nSec-WebSocket-Version: 13\r\n") != NULL);
    sg_buf_reset(&b);
    CHECK_INT(sg_ws_response_error(&b, 431, NULL, NULL), 0);
    CHECK_STR(b.data, "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n"
                      "Content-Length: 0\r\nCache-Control: no-store\r\n\r\n");
    sg_buf_free(&b);
}

/* ---------------------------------------------------------------- frames */

TEST("frames: header lengths 7, 16 and 64 bits; close frame")
{
    uint8_t h[SG_WS_MAX_HEADER];
    CHECK_INT(sg_ws_frame_header(h, SG_WS_TEXT, 0), 2);
    CHECK(h[0] == 0x81 && h[1] == 0);
    CHECK_INT(sg_ws_frame_header(h, SG_WS_BINARY, 125), 2);
    CHECK(h[0] == 0x82 && h[1] == 125);
    CHECK_INT(sg_ws_frame_header(h, SG_WS_TEXT, 126), 4);
    CHECK(h[1] == 126 && h[2] == 0 && h[3] == 126);
    CHECK_INT(sg_ws_frame_header(h, SG_WS_TEXT, 65535), 4);
    CHECK(h[1] == 126 && h[2] == 0xff && h[3] == 0xff);
    CHECK_INT(sg_ws_frame_header(h, SG_WS_TEXT, 65536), 10);
    static const uint8_t big[] = {0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0};
    CHECK_MEM(h, 10, big, 10);
    CHECK_INT(sg_ws_frame_header(h, SG_WS_PING, 0x0102030405ULL), 10);
    static const uint8_t big2[] = {0x89, 127, 0, 0, 0, 1, 2, 3, 4, 5};
    CHECK_MEM(h, 10, big2, 10);
    uint8_t c[4];
    CHECK_INT(sg_ws_close_frame(c, 1002), 4);
    static const uint8_t cl[] = {0x88, 2, 0x03, 0xea};
    CHECK_MEM(c, 4, cl, 4);
}

int main(void) { return tap_run(); }
