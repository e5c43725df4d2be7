/* test_engineio.c - unit tests for gateway/engineio.c */
#include <stdlib.h>

#include "engineio.h"
#include "tap.h"

/* A string literal and its length (it may hold NULs). */
#define S(lit) lit, sizeof lit - 1

/* ---- single text packets -------------------------------------------- */

static const struct {
    const char *in;
    size_t n;
    int type;
    const char *data;
    size_t len;
} good_packets[] = {
    /* engine.io-protocol v4, handshake example */
    {S("0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
       "\"pingTimeout\":20000,\"maxPayload\":1000000}"),
     SG_EIO_OPEN,
     S("{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
       "\"pingTimeout\":20000,\"maxPayload\":1000000}")},
    {S("1"), SG_EIO_CLOSE, S("")},
    {S("2"), SG_EIO_PING, S("")},
    {S("2probe"), SG_EIO_PING, S("probe")},
    {S("3"), SG_EIO_PONG, S("")},
    {S("3probe"), SG_EIO_PONG, S("probe")},
    {S("4hello"), SG_EIO_MESSAGE, S("hello")},
    {S("4HelloWorld"), SG_EIO_MESSAGE, S("HelloWorld")},
    {S("4"), SG_EIO_MESSAGE, S("")},
    {S("40"), SG_EIO_MESSAGE, S("0")},
    {S("42[\"hey\",\"Jude\"]"), SG_EIO_MESSAGE, S("2[\"hey\",\"Jude\"]")},
    {S("4\xe2\x82\xac"), SG_EIO_MESSAGE, S("\xe2\x82\xac")}, /* the euro sign of the history notes */
    {S("4a\0b"), SG_EIO_MESSAGE, S("a\0b")},                /* NULs are data */
    {S("4b"), SG_EIO_MESSAGE, S("b")},                      /* 'b' after the type is data */
    {S("5"), SG_EIO_UPGRADE, S("")},
    {S("6"), SG_EIO_NOOP, S("")},
};

TEST("engineio: decode every packet type and the protocol examples")
{
    for (size_t i = 0; i < sizeof good_packets / sizeof *good_packets; i++) {
        sg_eio_packet p;
        int rc = sg_eio_decode_packet(good_packets[i].in, good_packets[i].n, &p);
        if (rc != SG_EIO_OK)
            printf("#   case %zu\n", i);
        CHECK_INT(rc, SG_EIO_OK);
        CHECK_INT(p.type, good_packets[i].type);
        CHECK(!p.binary);
        CHECK(p.data != NULL);
        CHECK_MEM(p.data, p.len, good_packets[i].data, good_packets[i].len);
        if (p.data)
            CHECK_INT(p.data[p.len], 0);
        sg_eio_packet_clear(&p);
        CHECK(p.data == NULL);
        CHECK_INT(p.len, 0);
    }
}

static const struct {
    const char *in;
    size_t n;
    int err;
} bad_packets[] = {
    {S(""), SG_EIO_EEMPTY},
    {S("7"), SG_EIO_ETYPE},
    {S("9hello"), SG_EIO_ETYPE},
    {S("/"), SG_EIO_ETYPE},       /* '0' - 1 */
    {S(":"), SG_EIO_ETYPE},       /* '9' + 1 */
    {S("b"), SG_EIO_ETYPE},       /* binary form: payload records only */
    {S("bAQIDBA=="), SG_EIO_ETYPE},
    {S(" 4hello"), SG_EIO_ETYPE},
    {S("\x1e" "4"), SG_EIO_ETYPE},
    {S("\0" "4"), SG_EIO_ETYPE},
    {S("-1"), SG_EIO_ETYPE},
    {S("x"), SG_EIO_ETYPE},
    {S("\xff"), SG_EIO_ETYPE},
};

TEST("engineio: decode rejects malformed packets with the right code")
{
    for (size_t i = 0; i < sizeof bad_packets / sizeof *bad_packets; i++) {
        sg_eio_packet p = {SG_EIO_PONG, true, (char *)"garbage", 7}; /* must be overwritten */
        int rc = sg_eio_decode_packet(bad_packets[i].in, bad_packets[i].n, &p);
        if (rc != bad_packets[i].err)
            printf("#   case %zu\n", i);
        CHECK_INT(rc, bad_packets[i].err);
        CHECK(p.data == NULL);
        CHECK_INT(p.len, 0);
        CHECK(!p.binary);
    }
}

TEST("engineio: decode reads no byte beyond n")
{
    /* a heap copy without terminator so ASan catches any over-read */
    static const char src[] = "4hello";
    for (size_t n = 0; n <= 6; n++) {
        char *in = malloc(n ? n : 1);
        memcpy(in, src, n);
        sg_eio_packet p;
        int rc = sg_eio_decode_packet(in, n, &p);
        CHECK_INT(rc, n ? SG_EIO_OK : SG_EIO_EEMPTY);
        if (rc == SG_EIO_OK)
            CHECK_MEM(p.data, p.len, src + 1, n - 1);
        sg_eio_packet_clear(&p);
        free(in);
    }
}

/* ---- polling payloads ----------------------------------------------- */

struct pkt {
    int type;
    int binary;
    const char *data;
    size_t len;
};

static const struct {
    const char *name;
    const char *in;
    size_t n;
    size_t count;
    struct pkt p[4];
} good_payloads[] = {
    {"protocol example: text", S("4hello\x1e" "2\x1e" "4world"), 3,
     {{SG_EIO_MESSAGE, 0, S("hello")}, {SG_EIO_PING, 0, S("")}, {SG_EIO_MESSAGE, 0, S("world")}}},
    {"protocol example: binary", S("4hello\x1e" "bAQIDBA=="), 2,
     {{SG_EIO_MESSAGE, 0, S("hello")}, {SG_EIO_MESSAGE, 1, S("\x01\x02\x03\x04")}}},
    {"sample session: two events", S("42[\"hello\"]\x1e" "42[\"world\"]"), 2,
     {{SG_EIO_MESSAGE, 0, S("2[\"hello\"]")}, {SG_EIO_MESSAGE, 0, S("2[\"world\"]")}}},
    {"sample session: connect", S("40"), 1, {{SG_EIO_MESSAGE, 0, S("0")}}},
    {"close", S("1"), 1, {{SG_EIO_CLOSE, 0, S("")}}},
    {"pong then noop", S("3\x1e" "6"), 2, {{SG_EIO_PONG, 0, S("")}, {SG_EIO_NOOP, 0, S("")}}},
    {"binary event then attachment",
     S("451-[\"baz\",{\"_placeholder\":true,\"num\":0}]\x1e" "bAQIDBA=="), 2,
     {{SG_EIO_MESSAGE, 0, S("51-[\"baz\",{\"_placeholder\":true,\"num\":0}]")},
      {SG_EIO_MESSAGE, 1, S("\x01\x02\x03\x04")}}},
    {"empty binary", S("b"), 1, {{SG_EIO_MESSAGE, 1, S("")}}},
    {"unpadded base64", S("bAQIDBA"), 1, {{SG_EIO_MESSAGE, 1, S("\x01\x02\x03\x04")}}},
    {"binary with NUL bytes", S("bAAEA"), 1, {{SG_EIO_MESSAGE, 1, S("\x00\x01\x00")}}},
    {"upgrade", S("5"), 1, {{SG_EIO_UPGRADE, 0, S("")}}},
    {"open", S("0{}"), 1, {{SG_EIO_OPEN, 0, S("{}")}}},
};

TEST("engineio: decode payloads (protocol examples and more)")
{
    for (size_t i = 0; i < sizeof good_payloads / sizeof *good_payloads; i++) {
        sg_eio_packets ps;
        sg_eio_packets_init(&ps);
        int rc = sg_eio_decode_payload(good_payloads[i].in, good_payloads[i].n, &ps);
        if (rc != SG_EIO_OK || ps.n != good_payloads[i].count)
            printf("#   case \"%s\"\n", good_payloads[i].name);
        CHECK_INT(rc, SG_EIO_OK);
        CHECK_INT(ps.n, good_payloads[i].count);
        for (size_t k = 0; k < ps.n && k < good_payloads[i].count; k++) {
            const struct pkt *want = &good_payloads[i].p[k];
            CHECK_INT(ps.v[k].type, want->type);
            CHECK_INT(ps.v[k].binary, want->binary);
            CHECK(ps.v[k].data != NULL);
            CHECK_MEM(ps.v[k].data, ps.v[k].len, want->data, want->len);
            CHECK_INT(ps.v[k].data[ps.v[k].len], 0);
        }
        sg_eio_packets_free(&ps);
        CHECK(ps.v == NULL);
        CHECK_INT(ps.n, 0);
    }
}

static const struct {
    const char *in;
    size_t n;
    int err;
} bad_payloads[] = {
    {S(""), SG_EIO_EEMPTY},
    {S("\x1e"), SG_EIO_EEMPTY},
    {S("4a\x1e"), SG_EIO_EEMPTY},            /* trailing separator */
    {S("\x1e" "4a"), SG_EIO_EEMPTY},         /* leading separator */
    {S("4a\x1e\x1e" "4b"), SG_EIO_EEMPTY},   /* empty record in the middle */
    {S("\x1e\x1e"), SG_EIO_EEMPTY},
    {S("7"), SG_EIO_ETYPE},
    {S("4a\x1e" "7"), SG_EIO_ETYPE},
    {S("4a\x1e" "x\x1e" "4b"), SG_EIO_ETYPE},
    {S("4a\x1e" " 4b"), SG_EIO_ETYPE},
    {S("B"), SG_EIO_ETYPE},                  /* only lower-case 'b' */
    {S("bA"), SG_EIO_EBASE64},               /* 4k+1 */
    {S("b!!!!"), SG_EIO_EBASE64},
    {S("bAQ=D"), SG_EIO_EBASE64},
    {S("4a\x1e" "bAQID BA=="), SG_EIO_EBASE64},
    {S("4a\x1e" "b-_-_"), SG_EIO_EBASE64},   /* URL-safe alphabet */
    {S("bAQIDBA==\x1e" "9"), SG_EIO_ETYPE},
};

TEST("engineio: decode rejects malformed payloads, all or nothing")
{
    for (size_t i = 0; i < sizeof bad_payloads / sizeof *bad_payloads; i++) {
        sg_eio_packets ps;
        sg_eio_packets_init(&ps);
        CHECK_INT(sg_eio_packets_push(&ps, SG_EIO_MESSAGE, false, "keep", 4), 0);
        int rc = sg_eio_decode_payload(bad_payloads[i].in, bad_payloads[i].n, &ps);
        if (rc != bad_payloads[i].err)
            printf("#   case %zu\n", i);
        CHECK_INT(rc, bad_payloads[i].err);
        CHECK_INT(ps.n, 1);
        CHECK_MEM(ps.v[0].data, ps.v[0].len, "keep", 4);
        CHECK_INT(ps.v[0].type, SG_EIO_MESSAGE);
        sg_eio_packets_free(&ps);
    }
}

TEST("engineio: decode payload appends after existing packets")
{
    sg_eio_packets ps;
    sg_eio_packets_init(&ps);
    CHECK_INT(sg_eio_decode_payload(S("2"), &ps), SG_EIO_OK);
    CHECK_INT(sg_eio_decode_payload(S("4a\x1e" "bYg=="), &ps), SG_EIO_OK);
    CHECK_INT(ps.n, 3);
    CHECK_INT(ps.v[0].type, SG_EIO_PING);
    CHECK_MEM(ps.v[1].data, ps.v[1].len, "a", 1);
    CHECK(ps.v[2].binary);
    CHECK_MEM(ps.v[2].data, ps.v[2].len, "b", 1);
    sg_eio_packets_free(&ps);
}

TEST("engineio: a payload of many records")
{
    sg_buf in = SG_BUF_INIT;
    for (int i = 0; i < 5000; i++)
        CHECK_INT(sg_eio_encode_polling_parts(&in, SG_EIO_MESSAGE, i % 2, "xy", 2), 0);
    sg_eio_packets ps;
    sg_eio_packets_init(&ps);
    CHECK_INT(sg_eio_decode_payload(in.data, in.len, &ps), SG_EIO_OK);
    CHECK_INT(ps.n, 5000);
    int ok = 1;
    for (size_t i = 0; i < ps.n; i++)
        ok &= ps.v[i].binary == (i % 2) && ps.v[i].len == 2 && !memcmp(ps.v[i].data, "xy", 2);
    CHECK(ok);
    /* the same with one bad record at the very end: nothing is kept */
    CHECK_INT(sg_buf_puts(&in, "\x1e" "8"), 0);
    sg_eio_packets_free(&ps);
    CHECK_INT(sg_eio_decode_payload(in.data, in.len, &ps), SG_EIO_ETYPE);
    CHECK_INT(ps.n, 0);
    sg_eio_packets_free(&ps);
    sg_buf_free(&in);
}

TEST("engineio: decode payload reads no byte beyond n")
{
    static const char src[] = "4hello\x1e" "bAQIDBA==";
    for (size_t n = 1; n < sizeof src; n++) {
        char *in = malloc(n);
        memcpy(in, src, n);
        sg_eio_packets ps;
        sg_eio_packets_init(&ps);
        int rc = sg_eio_decode_payload(in, n, &ps);
        /* cut inside the base64 the result may be valid or not, never a crash */
        CHECK(rc == SG_EIO_OK || rc == SG_EIO_EEMPTY || rc == SG_EIO_EBASE64);
        sg_eio_packets_free(&ps);
        free(in);
    }
}

/* ---- encoding -------------------------------------------------------- */

TEST("engineio: encode_polling_parts for every packet type")
{
    static const struct {
        int type;
        int binary;
        const char *data;
        size_t len;
        const char *want;
    } cases[] = {
        {SG_EIO_OPEN, 0, S("{\"sid\":\"x\"}"), "0{\"sid\":\"x\"}"},
        {SG_EIO_CLOSE, 0, S(""), "1"},
        {SG_EIO_PING, 0, S(""), "2"},
        {SG_EIO_PING, 0, S("probe"), "2probe"},
        {SG_EIO_PONG, 0, S("probe"), "3probe"},
        {SG_EIO_MESSAGE, 0, S("hello"), "4hello"},
        {SG_EIO_UPGRADE, 0, S(""), "5"},
        {SG_EIO_NOOP, 0, S(""), "6"},
        {SG_EIO_MESSAGE, 1, S("\x01\x02\x03\x04"), "bAQIDBA=="},
        {SG_EIO_MESSAGE, 1, S(""), "b"},
        {SG_EIO_MESSAGE, 1, S("\0"), "bAA=="},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        sg_buf b = SG_BUF_INIT;
        CHECK_INT(sg_eio_encode_polling_parts(&b, cases[i].type, cases[i].binary,
                                              cases[i].data, cases[i].len), 0);
        CHECK_STR(sg_buf_str(&b), cases[i].want);
        /* the same through a packet */
        sg_buf b2 = SG_BUF_INIT;
        sg_eio_packet p = {cases[i].type, cases[i].binary, (char *)cases[i].data, cases[i].len};
        CHECK_INT(sg_eio_encode_polling(&b2, &p), 0);
        CHECK_STR(sg_buf_str(&b2), cases[i].want);
        sg_buf_free(&b);
        sg_buf_free(&b2);
    }
}

TEST("engineio: encode_polling joins records with 0x1e (protocol examples)")
{
    sg_buf b = SG_BUF_INIT;
    CHECK_INT(sg_eio_encode_polling_parts(&b, SG_EIO_MESSAGE, false, "hello", 5), 0);
    CHECK_INT(sg_eio_encode_polling_parts(&b, SG_EIO_PING, false, NULL, 0), 0);
    CHECK_INT(sg_eio_encode_polling_parts(&b, SG_EIO_MESSAGE, false, "world", 5), 0);
    CHECK_STR(sg_buf_str(&b), "4hello\x1e" "2\x1e" "4world");
    sg_buf_reset(&b);
    CHECK_INT(sg_eio_encode_polling_parts(&b, SG_EIO_MESSAGE, false, "hello", 5), 0);
    CHECK_INT(sg_eio_encode_polling_parts(&b, SG_EIO_MESSAGE, true, "\x01\x02\x03\x04", 4), 0);
    CHECK_STR(sg_buf_str(&b), "4hello\x1e" "bAQIDBA==");
    sg_buf_free(&b);
}

TEST("engineio: encode_polling refuses an unknown type and leaves out as it was")
{
    sg_buf b = SG_BUF_INIT;
    CHECK_INT(sg_buf_puts(&b, "4a"), 0);
    CHECK_INT(sg_eio_encode_polling_parts(&b, (enum sg_eio_type)7, false, "x", 1), -1);
    CHECK_INT(sg_eio_encode_polling_parts(&b, (enum sg_eio_type)-1, false, "x", 1), -1);
    CHECK_STR(sg_buf_str(&b), "4a");
    sg_buf_free(&b);
}

TEST("engineio: append_polling copies text frames and base64s binary frames")
{
    static const struct {
        int binary;
        const char *frame;
        size_t len;
    } frames[] = {
        {0, S("0{\"sid\":\"abc\"}")},
        {0, S("40{\"sid\":\"def\"}")},
        {0, S("451-[\"baz\",{\"_placeholder\":true,\"num\":0}]")},
        {1, S("\x01\x02\x03\x04")},
        {0, S("2")},
        {1, S("")},
        {0, S("6")},
    };
    static const char want[] = "0{\"sid\":\"abc\"}\x1e" "40{\"sid\":\"def\"}\x1e"
                               "451-[\"baz\",{\"_placeholder\":true,\"num\":0}]\x1e"
                               "bAQIDBA==\x1e" "2\x1e" "b\x1e" "6";
    sg_buf b = SG_BUF_INIT;
    for (size_t i = 0; i < sizeof frames / sizeof *frames; i++)
        CHECK_INT(sg_eio_append_polling(&b, frames[i].binary, frames[i].frame, frames[i].len), 0);
    CHECK_MEM(b.data, b.len, want, sizeof want - 1);

    /* and back: the decoder gives the frames again */
    sg_eio_packets ps;
    sg_eio_packets_init(&ps);
    CHECK_INT(sg_eio_decode_payload(b.data, b.len, &ps), SG_EIO_OK);
    CHECK_INT(ps.n, sizeof frames / sizeof *frames);
    for (size_t i = 0; i < ps.n && i < sizeof frames / sizeof *frames; i++) {
        CHECK_INT(ps.v[i].binary, frames[i].binary);
        if (frames[i].binary) {
            CHECK_INT(ps.v[i].type, SG_EIO_MESSAGE);
            CHECK_MEM(ps.v[i].data, ps.v[i].len, frames[i].frame, frames[i].len);
        } else {
            CHECK_INT('0' + ps.v[i].type, frames[i].frame[0]);
            CHECK_MEM(ps.v[i].data, ps.v[i].len, frames[i].frame + 1, frames[i].len - 1);
        }
    }
    sg_eio_packets_free(&ps);
    sg_buf_free(&b);
}

TEST("engineio: encode then decode round trip of every type")
{
    static const unsigned char bin[] = {0, 1, 2, 0xfe, 0xff, 0x1e, 'b'};
    sg_eio_packets src, dst;
    sg_eio_packets_init(&src);
    sg_eio_packets_init(&dst);
    for (int t = SG_EIO_OPEN; t <= SG_EIO_NOOP; t++)
        CHECK_INT(sg_eio_packets_push(&src, t, false, "data\xc3\xa9", 6), 0);
    CHECK_INT(sg_eio_packets_push(&src, SG_EIO_MESSAGE, true, bin, sizeof bin), 0);
    CHECK_INT(sg_eio_packets_push(&src, SG_EIO_PING, false, NULL, 0), 0);
    sg_buf b = SG_BUF_INIT;
    for (size_t i = 0; i < src.n; i++)
        CHECK_INT(sg_eio_encode_polling(&b, &src.v[i]), 0);
    CHECK_INT(sg_eio_decode_payload(b.data, b.len, &dst), SG_EIO_OK);
    CHECK_INT(dst.n, src.n);
    for (size_t i = 0; i < src.n && i < dst.n; i++) {
        CHECK_INT(dst.v[i].type, src.v[i].type);
        CHECK_INT(dst.v[i].binary, src.v[i].binary);
        CHECK_MEM(dst.v[i].data, dst.v[i].len, src.v[i].data, src.v[i].len);
    }
    sg_buf_free(&b);
    sg_eio_packets_free(&src);
    sg_eio_packets_free(&dst);
}

/* ---- packet lists ----------------------------------------------------- */

TEST("engineio: packets_push copies, free empties and the list is reusable")
{
    sg_eio_packets ps;
    sg_eio_packets_init(&ps);
    char data[] = "abc";
    for (int i = 0; i < 100; i++)
        CHECK_INT(sg_eio_packets_push(&ps, SG_EIO_MESSAGE, false, data, 3), 0);
    data[0] = 'X'; /* the list holds its own copies */
    CHECK_INT(ps.n, 100);
    CHECK(ps.cap >= 100);
    CHECK_STR(ps.v[99].data, "abc");
    CHECK(ps.v[0].data != ps.v[1].data);
    CHECK_INT(sg_eio_packets_push(&ps, SG_EIO_PING, false, NULL, 0), 0);
    CHECK_STR(ps.v[100].data, ""); /* NUL-terminated even when empty */
    sg_eio_packets_free(&ps);
    CHECK_INT(ps.n, 0);
    CHECK(ps.v == NULL);
    CHECK_INT(sg_eio_packets_push(&ps, SG_EIO_PONG, false, "z", 1), 0);
    CHECK_INT(ps.n, 1);
    sg_eio_packets_free(&ps);
    sg_eio_packets_free(&ps); /* twice is harmless */
}

TEST("engineio: strerror names every error")
{
    static const int codes[] = {SG_EIO_OK,    SG_EIO_ENOMEM,  SG_EIO_EEMPTY,
                                SG_EIO_ETYPE, SG_EIO_EBASE64, SG_EIO_EBINARY};
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
        const char *s = sg_eio_strerror(codes[i]);
        CHECK(s != NULL && *s);
        for (size_t k = 0; k < i; k++)
            CHECK(strcmp(s, sg_eio_strerror(codes[k])) != 0);
    }
    CHECK(sg_eio_strerror(-100) != NULL);
}

TEST("engineio: the error body is JSON with the message escaped")
{
    sg_buf b = SG_BUF_INIT;
    CHECK_INT(sg_eio_error_json(&b, 1, "Session ID unknown"), 0);
    CHECK_STR(sg_buf_str(&b), "{\"code\":1,\"message\":\"Session ID unknown\"}");
    sg_buf_reset(&b);
    CHECK_INT(sg_eio_error_json(&b, 4, "a \"q\" \\ \x01\n\xc3\xa9"), 0);
    CHECK_STR(sg_buf_str(&b), "{\"code\":4,\"message\":\"a \\\"q\\\" \\\\ \\u0001\\u000a\xc3\xa9\"}");
    sg_buf_reset(&b);
    CHECK_INT(sg_eio_error_json(&b, 0, NULL), 0);
    CHECK_STR(sg_buf_str(&b), "{\"code\":0,\"message\":\"\"}");
    sg_buf_free(&b);
}

int main(void) { return tap_run(); }
