/* test_socketio.c - unit tests for gateway/socketio.c */
#include <stdlib.h>

#include "socketio.h"
#include "tap.h"

/* A string literal and its length (it may hold NULs). */
#define S(lit) lit, sizeof lit - 1

/* Parse JSON text (any value); NULL text gives NULL. */
static json_t *J(const char *text)
{
    json_error_t err;
    if (!text)
        return NULL;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!v)
        printf("# bad JSON in test: %s: %s\n", text, err.text);
    return v;
}

/* 1 if v (may be NULL) equals the JSON text want (may be NULL). */
static int json_is(const json_t *v, const char *want)
{
    json_t *w = J(want);
    int same = (!v && !w) || (v && w && json_equal(v, w));
    json_decref(w);
    return same;
}

/* Encode p and return the text (caller frees), or NULL. */
static char *encode(const sg_sio_packet *p)
{
    sg_buf b = SG_BUF_INIT;
    if (sg_sio_encode(&b, p) < 0) {
        sg_buf_free(&b);
        return NULL;
    }
    return sg_buf_steal(&b);
}

/* ---- decoding: valid packets ------------------------------------------ */

static const struct {
    const char *in;
    int type;
    const char *nsp;
    long long id;
    size_t att;
    const char *data; /* JSON text, NULL when absent */
} good[] = {
    /* socket.io-protocol v5, "Packet encoding" tables */
    {"0", SG_SIO_CONNECT, "/", -1, 0, NULL},
    {"0{\"sid\":\"wZX3oN0bSVIhsaknAAAI\"}", SG_SIO_CONNECT, "/", -1, 0, "{\"sid\":\"wZX3oN0bSVIhsaknAAAI\"}"},
    {"0/admin,", SG_SIO_CONNECT, "/admin", -1, 0, NULL},
    {"0/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}", SG_SIO_CONNECT, "/admin", -1, 0,
     "{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}"},
    {"4{\"message\":\"Not authorized\"}", SG_SIO_CONNECT_ERROR, "/", -1, 0, "{\"message\":\"Not authorized\"}"},
    {"2[\"foo\"]", SG_SIO_EVENT, "/", -1, 0, "[\"foo\"]"},
    {"2/admin,[\"bar\"]", SG_SIO_EVENT, "/admin", -1, 0, "[\"bar\"]"},
    {"51-[\"baz\",{\"_placeholder\":true,\"num\":0}]", SG_SIO_BINARY_EVENT, "/", -1, 1,
     "[\"baz\",{\"_placeholder\":true,\"num\":0}]"},
    {"52-/admin,[\"baz\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]",
     SG_SIO_BINARY_EVENT, "/admin", -1, 2,
     "[\"baz\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]"},
    {"212[\"foo\"]", SG_SIO_EVENT, "/", 12, 0, "[\"foo\"]"},
    {"312[]", SG_SIO_ACK, "/", 12, 0, "[]"},
    {"2/admin,13[\"foo\"]", SG_SIO_EVENT, "/admin", 13, 0, "[\"foo\"]"},
    {"3/admin,13[\"bar\"]", SG_SIO_ACK, "/admin", 13, 0, "[\"bar\"]"},
    {"51-14[\"foo\",{\"_placeholder\":true,\"num\":0}]", SG_SIO_BINARY_EVENT, "/", 14, 1,
     "[\"foo\",{\"_placeholder\":true,\"num\":0}]"},
    {"314[\"bar\"]", SG_SIO_ACK, "/", 14, 0, "[\"bar\"]"},
    {"215[\"foo\"]", SG_SIO_EVENT, "/", 15, 0, "[\"foo\"]"},
    {"61-15[\"bar\",{\"_placeholder\":true,\"num\":0}]", SG_SIO_BINARY_ACK, "/", 15, 1,
     "[\"bar\",{\"_placeholder\":true,\"num\":0}]"},
    {"1", SG_SIO_DISCONNECT, "/", -1, 0, NULL},
    {"1/admin,", SG_SIO_DISCONNECT, "/admin", -1, 0, NULL},
    /* sample session (Engine.IO '4' stripped) */
    {"2[\"hey\",\"Jude\"]", SG_SIO_EVENT, "/", -1, 0, "[\"hey\",\"Jude\"]"},
    {"2[\"hello\"]", SG_SIO_EVENT, "/", -1, 0, "[\"hello\"]"},
    {"0/admin,{\"sid\":\"-G5j-67EZFp-q59rADQM\"}", SG_SIO_CONNECT, "/admin", -1, 0,
     "{\"sid\":\"-G5j-67EZFp-q59rADQM\"}"},
    {"2/admin,1[\"tellme\"]", SG_SIO_EVENT, "/admin", 1, 0, "[\"tellme\"]"},
    {"61-/admin,1[{\"_placeholder\":true,\"num\":0}]", SG_SIO_BINARY_ACK, "/admin", 1, 1,
     "[{\"_placeholder\":true,\"num\":0}]"},
    /* "Connection to a namespace" examples */
    {"0/admin,{\"token\":\"123\"}", SG_SIO_CONNECT, "/admin", -1, 0, "{\"token\":\"123\"}"},
    /* namespaces: up to the first ',' or to the end */
    {"0/custom", SG_SIO_CONNECT, "/custom", -1, 0, NULL},
    {"1/chat", SG_SIO_DISCONNECT, "/chat", -1, 0, NULL},
    {"2/chat,[\"x\"]", SG_SIO_EVENT, "/chat", -1, 0, "[\"x\"]"},
    {"2/chat,12[\"a\",1]", SG_SIO_EVENT, "/chat", 12, 0, "[\"a\",1]"},
    {"0/,{}", SG_SIO_CONNECT, "/", -1, 0, "{}"},
    {"0/", SG_SIO_CONNECT, "/", -1, 0, NULL},
    {"2/a/b,[\"x\"]", SG_SIO_EVENT, "/a/b", -1, 0, "[\"x\"]"},
    {"2/a b?c=1,[\"x\"]", SG_SIO_EVENT, "/a b?c=1", -1, 0, "[\"x\"]"},
    {"2/\xc3\xa9t\xc3\xa9,[\"x\"]", SG_SIO_EVENT, "/\xc3\xa9t\xc3\xa9", -1, 0, "[\"x\"]"},
    /* payload validity, accepted side */
    {"0{}", SG_SIO_CONNECT, "/", -1, 0, "{}"},
    {"0/admin,1{}", SG_SIO_CONNECT, "/admin", 1, 0, "{}"},
    {"4\"error\"", SG_SIO_CONNECT_ERROR, "/", -1, 0, "\"error\""},
    {"4/x,{\"message\":\"a\",\"data\":{\"x\":1}}", SG_SIO_CONNECT_ERROR, "/x", -1, 0,
     "{\"message\":\"a\",\"data\":{\"x\":1}}"},
    {"2[1]", SG_SIO_EVENT, "/", -1, 0, "[1]"},
    {"2[1.5,\"x\"]", SG_SIO_EVENT, "/", -1, 0, "[1.5,\"x\"]"},
    {"2[\"Connect\"]", SG_SIO_EVENT, "/", -1, 0, "[\"Connect\"]"},
    {"2[\"connecting\"]", SG_SIO_EVENT, "/", -1, 0, "[\"connecting\"]"},
    {"2[\"\"]", SG_SIO_EVENT, "/", -1, 0, "[\"\"]"},
    {"2[\"a\\u0000b\"]", SG_SIO_EVENT, "/", -1, 0, "[\"a\\u0000b\"]"}, /* NUL in a string */
    /* integers beyond 64 bits: numbers, as to JavaScript (found by fuzzing) */
    {"2[\"a\",99999999999999999999]", SG_SIO_EVENT, "/", -1, 0, "[\"a\",1e20]"},
    {"2[\"x\",100000000000000000000]", SG_SIO_EVENT, "/", -1, 0, "[\"x\",1e20]"},
    {"3[\"connect\"]", SG_SIO_ACK, "/", -1, 0, "[\"connect\"]"}, /* ACK names nothing */
    {"3[null,{}]", SG_SIO_ACK, "/", -1, 0, "[null,{}]"},
    {"51-[\"connect_errors\",1]", SG_SIO_BINARY_EVENT, "/", -1, 1, "[\"connect_errors\",1]"},
    {"61-[]", SG_SIO_BINARY_ACK, "/", -1, 1, "[]"},
    {"510-[\"x\"]", SG_SIO_BINARY_EVENT, "/", -1, 10, "[\"x\"]"},
    {"5001-[\"x\"]", SG_SIO_BINARY_EVENT, "/", -1, 1, "[\"x\"]"},
    /* ack ids */
    {"20[\"a\"]", SG_SIO_EVENT, "/", 0, 0, "[\"a\"]"},
    {"2007[\"a\"]", SG_SIO_EVENT, "/", 7, 0, "[\"a\"]"},
    {"29007199254740991[\"a\"]", SG_SIO_EVENT, "/", 9007199254740991LL, 0, "[\"a\"]"},
    {"2000000000000000000000000001[\"a\"]", SG_SIO_EVENT, "/", 1, 0, "[\"a\"]"},
    /* JSON: whitespace around the value, duplicate keys (last wins) */
    {"2 [\"a\"] ", SG_SIO_EVENT, "/", -1, 0, "[\"a\"]"},
    {"2[\"a\",{\"k\":1,\"k\":2}]", SG_SIO_EVENT, "/", -1, 0, "[\"a\",{\"k\":2}]"},
    {"2[\"\\u00e9\\n\\\"\"]", SG_SIO_EVENT, "/", -1, 0, "[\"\xc3\xa9\\n\\\"\"]"},
};

TEST("socketio: decode every packet type and every protocol example")
{
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        sg_sio_packet p;
        int rc = sg_sio_decode(good[i].in, strlen(good[i].in), &p);
        if (rc != SG_SIO_OK)
            printf("#   input %s\n", good[i].in);
        CHECK_INT(rc, SG_SIO_OK);
        CHECK_INT(p.type, good[i].type);
        CHECK_STR(p.nsp, good[i].nsp);
        CHECK_INT(p.id, good[i].id);
        CHECK_INT(p.attachments, good[i].att);
        if (!json_is(p.data, good[i].data))
            printf("#   input %s: data differs\n", good[i].in);
        CHECK(json_is(p.data, good[i].data));
        sg_sio_packet_clear(&p);
        CHECK(p.nsp == NULL && p.data == NULL);
    }
}

/* ---- decoding: malformed packets ---------------------------------------- */

static const struct {
    const char *in;
    size_t n;
    int err;
} bad[] = {
    {S(""), SG_SIO_EEMPTY},
    /* type */
    {S("7"), SG_SIO_ETYPE},
    {S("8[\"a\"]"), SG_SIO_ETYPE},
    {S("9"), SG_SIO_ETYPE},
    {S("a"), SG_SIO_ETYPE},
    {S("-1"), SG_SIO_ETYPE},
    {S("/"), SG_SIO_ETYPE},
    {S(" 2[\"a\"]"), SG_SIO_ETYPE},
    {S("\0"), SG_SIO_ETYPE},
    {S("42[\"a\"]x"), SG_SIO_EJSON}, /* '4' CONNECT_ERROR, id 2, then garbage */
    /* attachments */
    {S("5[\"a\"]"), SG_SIO_EATTACHMENTS},
    {S("5"), SG_SIO_EATTACHMENTS},
    {S("6"), SG_SIO_EATTACHMENTS},
    {S("51"), SG_SIO_EATTACHMENTS},
    {S("51[\"a\"]"), SG_SIO_EATTACHMENTS},
    {S("5-[\"a\"]"), SG_SIO_EATTACHMENTS},
    {S("50-[\"a\"]"), SG_SIO_EATTACHMENTS},   /* as socket.io-parser 4.2.5+ */
    {S("5a-[\"a\"]"), SG_SIO_EATTACHMENTS},
    {S("5 1-[\"a\"]"), SG_SIO_EATTACHMENTS},
    {S("51 -[\"a\"]"), SG_SIO_EATTACHMENTS},
    {S("5/x,1-[\"a\"]"), SG_SIO_EATTACHMENTS},
    {S("511-[\"a\"]"), SG_SIO_EATTACHMENTS}, /* > SG_SIO_MAX_ATTACHMENTS */
    {S("599999999999999999999999-[\"a\"]"), SG_SIO_EATTACHMENTS},
    {S("21-[\"a\"]"), SG_SIO_EATTACHMENTS},   /* a count on a non-binary type */
    {S("2-[\"a\"]"), SG_SIO_EATTACHMENTS},
    {S("31-[]"), SG_SIO_EATTACHMENTS},
    {S("01-{}"), SG_SIO_EATTACHMENTS},
    {S("11-"), SG_SIO_EATTACHMENTS},
    {S("41-\"x\""), SG_SIO_EATTACHMENTS},
    /* namespace */
    {S("2/a\0b,[\"x\"]"), SG_SIO_ENSP},
    {S("2/\xff,[\"x\"]"), SG_SIO_ENSP},
    {S("2/\xc3,[\"x\"]"), SG_SIO_ENSP},       /* truncated sequence */
    {S("2/\xc0\xaf,[\"x\"]"), SG_SIO_ENSP},   /* overlong '/' */
    {S("2/\xed\xa0\x80,[\"x\"]"), SG_SIO_ENSP}, /* surrogate */
    {S("0/\xf4\x90\x80\x80"), SG_SIO_ENSP},   /* above U+10FFFF */
    /* ack id */
    {S("29007199254740992[\"a\"]"), SG_SIO_EID},
    {S("299999999999999999999999999[\"a\"]"), SG_SIO_EID},
    {S("3/chat,18446744073709551617[]"), SG_SIO_EID},
    /* JSON */
    {S("2[\"a\""), SG_SIO_EJSON},
    {S("2[\"a\"]]"), SG_SIO_EJSON},
    {S("2[\"a\"]x"), SG_SIO_EJSON},
    {S("2[\"a\"][]"), SG_SIO_EJSON},
    {S("2['a']"), SG_SIO_EJSON},
    {S("2[\"a\",]"), SG_SIO_EJSON},
    {S("2[\"a\"]\0"), SG_SIO_EJSON},
    {S("2[\"a\0\"]"), SG_SIO_EJSON},
    {S("2[\"a\",{\"\\u0000bin\":\"x\"}]"), SG_SIO_EJSON}, /* NUL in a key: never */
    {S("2[\"a\",\"\\ud800\"]"), SG_SIO_EJSON},  /* lone surrogate */
    {S("2[\"\xff\"]"), SG_SIO_EJSON},           /* invalid UTF-8 */
    {S("2[\"a\",NaN]"), SG_SIO_EJSON},
    {S("2/chat,x"), SG_SIO_EJSON},
    {S("0admin,{}"), SG_SIO_EJSON},             /* namespace without '/' */
    {S("2 "), SG_SIO_EJSON},
    {S("1/chat,12x"), SG_SIO_EJSON},
    /* payload per type */
    {S("0[]"), SG_SIO_EPAYLOAD},
    {S("0\"x\""), SG_SIO_EPAYLOAD},
    {S("0null"), SG_SIO_EPAYLOAD},
    {S("01"), SG_SIO_OK}, /* id 1, no data: fine */
    {S("0 1"), SG_SIO_EPAYLOAD},
    {S("1{}"), SG_SIO_EPAYLOAD},
    {S("1[]"), SG_SIO_EPAYLOAD},
    {S("1/admin,\"x\""), SG_SIO_EPAYLOAD},
    {S("1null"), SG_SIO_EPAYLOAD},
    {S("2"), SG_SIO_EPAYLOAD},
    {S("212"), SG_SIO_EPAYLOAD},
    {S("2/chat"), SG_SIO_EPAYLOAD},
    {S("2/chat,"), SG_SIO_EPAYLOAD},
    {S("2/chat[\"a\"]"), SG_SIO_EPAYLOAD}, /* no ',': all of it is the namespace */
    {S("2/a,b,[\"x\"]"), SG_SIO_EJSON},
    {S("2[]"), SG_SIO_EPAYLOAD},
    {S("2{}"), SG_SIO_EPAYLOAD},
    {S("2\"foo\""), SG_SIO_EPAYLOAD},
    {S("2[null]"), SG_SIO_EPAYLOAD},
    {S("2[true]"), SG_SIO_EPAYLOAD},
    {S("2[[\"a\"]]"), SG_SIO_EPAYLOAD},
    {S("2[{\"a\":1}]"), SG_SIO_EPAYLOAD},
    {S("2[\"connect\"]"), SG_SIO_EPAYLOAD},
    {S("2[\"connect_error\"]"), SG_SIO_EPAYLOAD},
    {S("2[\"disconnect\",1]"), SG_SIO_EPAYLOAD},
    {S("2[\"disconnecting\"]"), SG_SIO_EPAYLOAD},
    {S("2[\"newListener\"]"), SG_SIO_EPAYLOAD},
    {S("2/admin,5[\"removeListener\"]"), SG_SIO_EPAYLOAD},
    {S("51-[\"connect\",{\"_placeholder\":true,\"num\":0}]"), SG_SIO_EPAYLOAD},
    {S("51-[]"), SG_SIO_EPAYLOAD},
    {S("51-{}"), SG_SIO_EPAYLOAD},
    {S("51-"), SG_SIO_EPAYLOAD},
    {S("3"), SG_SIO_EPAYLOAD},
    {S("312"), SG_SIO_EPAYLOAD},
    {S("3{}"), SG_SIO_EPAYLOAD},
    {S("3\"x\""), SG_SIO_EPAYLOAD},
    {S("31null"), SG_SIO_EPAYLOAD},
    {S("61-{}"), SG_SIO_EPAYLOAD},
    {S("61-1"), SG_SIO_EPAYLOAD},
    {S("4"), SG_SIO_EPAYLOAD},
    {S("4[]"), SG_SIO_EPAYLOAD},
    {S("41"), SG_SIO_EPAYLOAD},
    {S("4null"), SG_SIO_EPAYLOAD},
    {S("4/x,12"), SG_SIO_EPAYLOAD},
};

TEST("socketio: decode rejects every malformed packet with its error code")
{
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sg_sio_packet p = {SG_SIO_ACK, (char *)"junk", 5, 5, (json_t *)&p}; /* overwritten */
        int rc = sg_sio_decode(bad[i].in, bad[i].n, &p);
        if (rc != bad[i].err)
            printf("#   case %zu: %.*s\n", i, (int)bad[i].n, bad[i].in);
        CHECK_INT(rc, bad[i].err);
        if (rc == SG_SIO_OK) {
            sg_sio_packet_clear(&p);
            continue;
        }
        CHECK(p.nsp == NULL);
        CHECK(p.data == NULL);
        CHECK_INT(p.id, -1);
    }
}

TEST("socketio: every prefix of valid packets decodes without reading past n")
{
    static const char *const src[] = {
        "52-/admin,123[\"baz\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]",
        "0/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}",
        "3/chat,9007199254740991[\"x\",{\"a\":[1,2,{\"b\":\"\\\"]\"}]}]",
    };
    int ok = 1;
    for (size_t s = 0; s < sizeof src / sizeof *src; s++) {
        size_t len = strlen(src[s]);
        for (size_t n = 0; n <= len; n++) {
            char *in = malloc(n ? n : 1); /* no terminator: ASan sees over-reads */
            memcpy(in, src[s], n);
            sg_sio_packet p;
            int rc = sg_sio_decode(in, n, &p);
            ok &= rc <= 0 && rc >= SG_SIO_EPLACEHOLDER;
            sg_sio_packet_clear(&p);
            free(in);
        }
    }
    CHECK(ok);
}

/* ---- encoding ----------------------------------------------------------- */

static const struct {
    int type;
    const char *nsp;
    long long id;
    size_t att;
    const char *data;
    const char *want;
} enc[] = {
    /* the protocol document's tables */
    {SG_SIO_CONNECT, "/", -1, 0, NULL, "0"},
    {SG_SIO_CONNECT, "/", -1, 0, "{\"sid\":\"wZX3oN0bSVIhsaknAAAI\"}", "0{\"sid\":\"wZX3oN0bSVIhsaknAAAI\"}"},
    {SG_SIO_CONNECT, "/admin", -1, 0, NULL, "0/admin,"},
    {SG_SIO_CONNECT, "/admin", -1, 0, "{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}",
     "0/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}"},
    {SG_SIO_CONNECT_ERROR, "/", -1, 0, "{\"message\":\"Not authorized\"}", "4{\"message\":\"Not authorized\"}"},
    {SG_SIO_EVENT, "/", -1, 0, "[\"foo\"]", "2[\"foo\"]"},
    {SG_SIO_EVENT, "/admin", -1, 0, "[\"bar\"]", "2/admin,[\"bar\"]"},
    {SG_SIO_BINARY_EVENT, "/", -1, 1, "[\"baz\",{\"_placeholder\":true,\"num\":0}]",
     "51-[\"baz\",{\"_placeholder\":true,\"num\":0}]"},
    {SG_SIO_BINARY_EVENT, "/admin", -1, 2,
     "[\"baz\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]",
     "52-/admin,[\"baz\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]"},
    {SG_SIO_EVENT, "/", 12, 0, "[\"foo\"]", "212[\"foo\"]"},
    {SG_SIO_ACK, "/", 12, 0, "[]", "312[]"},
    {SG_SIO_EVENT, "/admin", 13, 0, "[\"foo\"]", "2/admin,13[\"foo\"]"},
    {SG_SIO_ACK, "/admin", 13, 0, "[\"bar\"]", "3/admin,13[\"bar\"]"},
    {SG_SIO_BINARY_EVENT, "/", 14, 1, "[\"foo\",{\"_placeholder\":true,\"num\":0}]",
     "51-14[\"foo\",{\"_placeholder\":true,\"num\":0}]"},
    {SG_SIO_ACK, "/", 14, 0, "[\"bar\"]", "314[\"bar\"]"},
    {SG_SIO_EVENT, "/", 15, 0, "[\"foo\"]", "215[\"foo\"]"},
    {SG_SIO_BINARY_ACK, "/", 15, 1, "[\"bar\",{\"_placeholder\":true,\"num\":0}]",
     "61-15[\"bar\",{\"_placeholder\":true,\"num\":0}]"},
    {SG_SIO_DISCONNECT, "/", -1, 0, NULL, "1"},
    {SG_SIO_DISCONNECT, "/admin", -1, 0, NULL, "1/admin,"},
    /* sample session */
    {SG_SIO_CONNECT, "/", -1, 0, "{\"sid\":\"wZX3oN0bSVIhsaknAAAI\"}", "0{\"sid\":\"wZX3oN0bSVIhsaknAAAI\"}"},
    {SG_SIO_EVENT, "/", -1, 0, "[\"hey\",\"Jude\"]", "2[\"hey\",\"Jude\"]"},
    {SG_SIO_BINARY_ACK, "/admin", 1, 1, "[{\"_placeholder\":true,\"num\":0}]",
     "61-/admin,1[{\"_placeholder\":true,\"num\":0}]"},
    /* replies siogate sends */
    {SG_SIO_CONNECT, "/", -1, 0, "{\"sid\":\"abc\"}", "0{\"sid\":\"abc\"}"},
    {SG_SIO_CONNECT, "/custom", -1, 0, "{\"sid\":\"abc\"}", "0/custom,{\"sid\":\"abc\"}"},
    {SG_SIO_CONNECT_ERROR, "/", -1, 0, "{\"message\":\"Invalid namespace\"}",
     "4{\"message\":\"Invalid namespace\"}"},
    {SG_SIO_CONNECT_ERROR, "/x", -1, 0, "{\"message\":\"no\",\"data\":{\"a\":[1,2]}}",
     "4/x,{\"message\":\"no\",\"data\":{\"a\":[1,2]}}"},
    {SG_SIO_BINARY_EVENT, "/", -1, 1, "[\"message\",{\"_placeholder\":true,\"num\":0}]",
     "51-[\"message\",{\"_placeholder\":true,\"num\":0}]"},
    {SG_SIO_ACK, "/", 12, 0, "[\"x\"]", "312[\"x\"]"},
    {SG_SIO_EVENT, "/chat", 12, 0, "[\"a\",1]", "2/chat,12[\"a\",1]"},
    {SG_SIO_DISCONNECT, "/chat", -1, 0, NULL, "1/chat,"},
    {SG_SIO_CONNECT_ERROR, "/", -1, 0, "\"plain\"", "4\"plain\""},
    /* namespace "/" , NULL and "" are the main namespace; null data is omitted */
    {SG_SIO_CONNECT, NULL, -1, 0, NULL, "0"},
    {SG_SIO_CONNECT, "", 3, 0, NULL, "03"},
    {SG_SIO_CONNECT, "/x", -1, 0, "null", "0/x,"},
    {SG_SIO_ACK, "/", 0, 0, "[]", "30[]"},
    {SG_SIO_ACK, "/", 9007199254740991LL, 0, "[]", "39007199254740991[]"},
    {SG_SIO_BINARY_EVENT, "/", -1, 0, "[\"x\"]", "50-[\"x\"]"},
    {SG_SIO_BINARY_ACK, "/a", 7, 10, "[]", "610-/a,7[]"},
};

TEST("socketio: encode is byte for byte the reference's (protocol tables)")
{
    for (size_t i = 0; i < sizeof enc / sizeof *enc; i++) {
        sg_sio_packet p = {enc[i].type, (char *)enc[i].nsp, enc[i].id, enc[i].att, J(enc[i].data)};
        char *s = encode(&p);
        CHECK_STR(s, enc[i].want);
        free(s);
        json_decref(p.data);
    }
}

TEST("socketio: encode appends to existing contents")
{
    sg_buf b = SG_BUF_INIT;
    CHECK_INT(sg_buf_putc(&b, '4'), 0); /* the Engine.IO message type, added by callers */
    sg_sio_packet p = {SG_SIO_CONNECT, (char *)"/custom", -1, 0, J("{\"sid\":\"abc\"}")};
    CHECK_INT(sg_sio_encode(&b, &p), 0);
    CHECK_STR(sg_buf_str(&b), "40/custom,{\"sid\":\"abc\"}");
    json_decref(p.data);
    sg_buf_free(&b);
}

TEST("socketio: decode then encode gives the input back")
{
    static const char *const wire[] = {
        "0", "0{\"sid\":\"wZX3oN0bSVIhsaknAAAI\"}", "0/admin,", "0/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}",
        "4{\"message\":\"Not authorized\"}", "2[\"foo\"]", "2/admin,[\"bar\"]",
        "51-[\"baz\",{\"_placeholder\":true,\"num\":0}]",
        "52-/admin,[\"baz\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]",
        "212[\"foo\"]", "312[]", "2/admin,13[\"foo\"]", "3/admin,13[\"bar\"]",
        "51-14[\"foo\",{\"_placeholder\":true,\"num\":0}]", "314[\"bar\"]", "215[\"foo\"]",
        "61-15[\"bar\",{\"_placeholder\":true,\"num\":0}]", "1", "1/admin,",
        "2/admin,1[\"tellme\"]", "61-/admin,1[{\"_placeholder\":true,\"num\":0}]",
        "2[\"a\",{\"z\":1,\"a\":[true,false,null],\"m\":{\"\":\"\"}},-3,0.5]",
        "4\"x\"", "3[]", "2[\"\xe2\x82\xac\xf0\x9f\x98\x80\"]",
    };
    for (size_t i = 0; i < sizeof wire / sizeof *wire; i++) {
        sg_sio_packet p;
        CHECK_INT(sg_sio_decode(wire[i], strlen(wire[i]), &p), SG_SIO_OK);
        char *s = encode(&p);
        CHECK_STR(s, wire[i]);
        free(s);
        sg_sio_packet_clear(&p);
    }
}

TEST("socketio: encode normalises as the reference does")
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"0/admin", "0/admin,"},          /* no comma in, comma out */
        {"0/", "0"},                      /* "/" is the main namespace */
        {"0/,{}", "0{}"},
        {"2007[\"a\"]", "27[\"a\"]"},     /* leading zeros of the id */
        {"2 [ \"a\" , 1 ]\n", "2[\"a\",1]"}, /* compact */
        {"5001-[\"x\"]", "51-[\"x\"]"},
        {"2[\"a\",{\"k\":1,\"k\":2}]", "2[\"a\",{\"k\":2}]"},
        {"2[\"a\",2.0,1E2,-0.0,1e21,0.1]", "2[\"a\",2,100,0,1e+21,0.1]"},
        {"2[\"\\u00e9\\/\\u001F\"]", "2[\"\xc3\xa9/\\u001f\"]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        sg_sio_packet p;
        CHECK_INT(sg_sio_decode(cases[i].in, strlen(cases[i].in), &p), SG_SIO_OK);
        char *s = encode(&p);
        CHECK_STR(s, cases[i].want);
        free(s);
        sg_sio_packet_clear(&p);
    }
}

TEST("socketio: numbers are written as JavaScript writes them")
{
    /* expected strings produced by JSON.stringify in Node 20 */
    static const struct {
        double d;
        const char *want;
    } reals[] = {
        {0.1, "0.1"}, {0.2 + 0.1, "0.30000000000000004"}, {1.0 / 3, "0.3333333333333333"},
        {2.0, "2"}, {-2.5, "-2.5"}, {100.0, "100"}, {-0.0, "0"}, {0.0, "0"},
        {1e21, "1e+21"}, {1e20, "100000000000000000000"}, {123456789012345680000.0, "123456789012345680000"},
        {1e-7, "1e-7"}, {1.5e-7, "1.5e-7"}, {1e-6, "0.000001"}, {1.234e-6, "0.000001234"},
        {5e-324, "5e-324"}, {1.7976931348623157e308, "1.7976931348623157e+308"},
        {9007199254740992.0, "9007199254740992"}, {9223372036854775808.0, "9223372036854776000"},
        {1e100, "1e+100"}, {-1.5e-10, "-1.5e-10"}, {12345.678, "12345.678"}, {4.35, "4.35"},
        {9.999999999999999e20, "999999999999999900000"}, {2.5e-5, "0.000025"},
    };
    for (size_t i = 0; i < sizeof reals / sizeof *reals; i++) {
        sg_sio_packet p = {SG_SIO_ACK, NULL, -1, 0, json_pack("[f]", reals[i].d)};
        char *s = encode(&p);
        char want[64];
        snprintf(want, sizeof want, "3[%s]", reals[i].want);
        CHECK_STR(s, want);
        free(s);
        json_decref(p.data);
    }
    static const struct {
        json_int_t v;
        const char *want;
    } ints[] = {
        {0, "0"}, {-1, "-1"}, {9007199254740991LL, "9007199254740991"},
        {-9007199254740992LL, "-9007199254740992"},
        {9007199254740993LL, "9007199254740992"}, /* beyond 2^53: the nearest double */
        {1152921504606846977LL, "1152921504606847000"},
        {INT64_MAX, "9223372036854776000"}, {INT64_MIN, "-9223372036854776000"},
    };
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        sg_sio_packet p = {SG_SIO_ACK, NULL, -1, 0, json_pack("[I]", ints[i].v)};
        char *s = encode(&p);
        char want[64];
        snprintf(want, sizeof want, "3[%s]", ints[i].want);
        CHECK_STR(s, want);
        free(s);
        json_decref(p.data);
    }
}

TEST("socketio: strings are escaped as JSON.stringify escapes them")
{
    static const struct {
        const char *s;
        size_t n;
        const char *want;
    } cases[] = {
        {S("plain"), "\"plain\""},
        {S("q\"b\\s/"), "\"q\\\"b\\\\s/\""},
        {S("\b\t\n\f\r"), "\"\\b\\t\\n\\f\\r\""},
        {S("\x01\x1f\x0b"), "\"\\u0001\\u001f\\u000b\""},
        {S("\x7f"), "\"\x7f\""},
        {S("\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80"), "\"\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80\""},
        {S("a\0b"), "\"a\\u0000b\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *a = json_array();
        json_array_append_new(a, json_stringn(cases[i].s, cases[i].n));
        sg_sio_packet p = {SG_SIO_ACK, NULL, -1, 0, a};
        char *s = encode(&p);
        char want[64];
        snprintf(want, sizeof want, "3[%s]", cases[i].want);
        CHECK_STR(s, want);
        free(s);
        json_decref(a);
    }
    /* keys too, in insertion order */
    json_t *o = json_object();
    json_object_set_new(o, "z\n", json_integer(1));
    json_object_set_new(o, "a", json_integer(2));
    sg_sio_packet p = {SG_SIO_CONNECT, NULL, -1, 0, o};
    char *s = encode(&p);
    CHECK_STR(s, "0{\"z\\n\":1,\"a\":2}");
    free(s);
    json_decref(o);
}

TEST("socketio: encode refuses what it cannot write, leaving out as it was")
{
    json_t *cases[5];
    cases[0] = json_pack("[so]", "x", sg_sio_binary_new("ab", 2)); /* binary value left in */
    cases[1] = json_array();
    json_array_append_new(cases[1], json_stringn_nocheck("\xff\xfe", 2)); /* not UTF-8 */
    cases[2] = json_array();
    json_array_append_new(cases[2], json_stringn_nocheck("\xed\xa0\x80", 3)); /* surrogate */
    json_t *deep = json_array(), *cur = deep;
    for (int i = 0; i < SG_SIO_DEPTH_CAP + 72; i++) {
        json_t *c = json_array();
        json_array_append_new(cur, c);
        cur = c;
    }
    cases[3] = deep;
    cases[4] = json_object();
    json_object_set_new(cases[4], "\xc3\xa9", json_true());
    for (size_t i = 0; i < 5; i++) {
        sg_buf b = SG_BUF_INIT;
        CHECK_INT(sg_buf_puts(&b, "4"), 0);
        sg_sio_packet p = {SG_SIO_ACK, (char *)"/n", 1, 0, cases[i]};
        int rc = sg_sio_encode(&b, &p);
        if (i == 4) { /* the control: valid, so it is written */
            CHECK_INT(rc, 0);
            CHECK_STR(sg_buf_str(&b), "43/n,1{\"\xc3\xa9\":true}");
        } else {
            CHECK_INT(rc, -1);
            CHECK_STR(sg_buf_str(&b), "4");
        }
        sg_buf_free(&b);
        json_decref(cases[i]);
    }
    sg_buf b = SG_BUF_INIT;
    sg_sio_packet p = {(enum sg_sio_type)7, NULL, -1, 0, NULL};
    CHECK_INT(sg_sio_encode(&b, &p), -1);
    CHECK_INT(b.len, 0);
    sg_buf_free(&b);
}

/* ---- nesting depth ------------------------------------------------------ */

/* An event whose second argument nests arrays so that the packet's data
 * is depth levels deep: 2["ev",[[...[0]...]]] (or [" [{",[" [{",... ]]). */
static char *nested_event(int depth, int with_strings)
{
    sg_buf b = SG_BUF_INIT;
    sg_buf_puts(&b, "2[\"ev\",");
    for (int i = 1; i < depth; i++)
        sg_buf_puts(&b, with_strings ? "[\"[{\"," : "[");
    sg_buf_putc(&b, '0');
    for (int i = 1; i < depth; i++)
        sg_buf_putc(&b, ']');
    sg_buf_putc(&b, ']');
    return sg_buf_steal(&b);
}

TEST("socketio: decode bounds the nesting depth (128 levels)")
{
    sg_sio_packet p;
    char *s = nested_event(128, 0);
    CHECK_INT(sg_sio_decode(s, strlen(s), &p), SG_SIO_OK);
    char *again = encode(&p); /* whatever decodes can be encoded */
    CHECK_STR(again, s);
    free(again);
    sg_sio_packet_clear(&p);
    free(s);

    s = nested_event(129, 0);
    CHECK_INT(sg_sio_decode(s, strlen(s), &p), SG_SIO_EJSON);
    free(s);

    s = nested_event(5000, 0); /* beyond jansson's own limit as well */
    CHECK_INT(sg_sio_decode(s, strlen(s), &p), SG_SIO_EJSON);
    free(s);

    /* brackets inside strings do not count */
    s = nested_event(100, 1);
    CHECK_INT(sg_sio_decode(s, strlen(s), &p), SG_SIO_OK);
    sg_sio_packet_clear(&p);
    free(s);
    sg_buf b = SG_BUF_INIT;
    sg_buf_puts(&b, "2[\"");
    for (int i = 0; i < 1000; i++)
        sg_buf_puts(&b, "[{\\\"");
    sg_buf_puts(&b, "\"]");
    CHECK_INT(sg_sio_decode(b.data, b.len, &p), SG_SIO_OK);
    sg_sio_packet_clear(&p);
    sg_buf_free(&b);
}

TEST("socketio: decode_limited applies max_json_depth and max_attachments")
{
    sg_sio_packet p;
    sg_sio_limits lim = {2, 3};
    char *s = nested_event(3, 0);
    CHECK_INT(sg_sio_decode_limited(s, strlen(s), &lim, &p), SG_SIO_OK);
    sg_sio_packet_clear(&p);
    free(s);
    s = nested_event(4, 0);
    CHECK_INT(sg_sio_decode_limited(s, strlen(s), &lim, &p), SG_SIO_EJSON);
    free(s);
    static const char two[] = "52-[\"a\",{\"_placeholder\":true,\"num\":0},"
                              "{\"_placeholder\":true,\"num\":1}]";
    CHECK_INT(sg_sio_decode_limited(two, strlen(two), &lim, &p), SG_SIO_OK);
    sg_sio_packet_clear(&p);
    CHECK_INT(sg_sio_decode_limited("53-[\"a\"]", 8, &lim, &p), SG_SIO_EATTACHMENTS);
    /* up to the cap, which every walk allows */
    lim = (sg_sio_limits){100000, SG_SIO_DEPTH_CAP};
    s = nested_event(SG_SIO_DEPTH_CAP, 0);
    CHECK_INT(sg_sio_decode_limited(s, strlen(s), &lim, &p), SG_SIO_OK);
    char *again = encode(&p);
    CHECK_STR(again, s);
    free(again);
    sg_sio_packet_clear(&p);
    free(s);
    s = nested_event(SG_SIO_DEPTH_CAP + 1, 0);
    CHECK_INT(sg_sio_decode_limited(s, strlen(s), &lim, &p), SG_SIO_EJSON);
    free(s);
    CHECK_INT(sg_sio_decode_limited("511-[\"a\"]", 9, &lim, &p), SG_SIO_OK);
    sg_sio_packet_clear(&p);
}

/* ---- binary values ---------------------------------------------------- */

TEST("socketio: binary values hold bytes and are recognised exactly")
{
    static const unsigned char bytes[] = {0, 1, 2, 0xff, 0};
    json_t *v = sg_sio_binary_new(bytes, sizeof bytes);
    CHECK(v != NULL);
    CHECK(sg_sio_is_binary(v));
    size_t len = 99;
    const void *d = sg_sio_binary_data(v, &len);
    CHECK_MEM(d, len, bytes, sizeof bytes);
    CHECK(sg_sio_has_binary(v));
    json_decref(v);

    json_t *empty = sg_sio_binary_new(NULL, 0);
    CHECK(sg_sio_is_binary(empty));
    d = sg_sio_binary_data(empty, &len);
    CHECK(d != NULL);
    CHECK_INT(len, 0);
    json_decref(empty);

    /* look-alikes are not binary values */
    json_t *not_bin[7];
    not_bin[0] = J("{\"bin\":\"x\"}");
    not_bin[1] = json_object();
    json_object_setn_new(not_bin[1], "\0bin", 4, json_integer(1)); /* value not a string */
    not_bin[2] = sg_sio_binary_new("x", 1);
    json_object_set_new(not_bin[2], "extra", json_true()); /* two keys */
    not_bin[3] = json_object();
    json_object_setn_new(not_bin[3], "\0bi", 3, json_string("x")); /* other key */
    not_bin[4] = J("\"bin\"");
    not_bin[5] = J("[]");
    not_bin[6] = J("{\"_placeholder\":true,\"num\":0}");
    for (size_t i = 0; i < 7; i++) {
        CHECK(!sg_sio_is_binary(not_bin[i]));
        CHECK(sg_sio_binary_data(not_bin[i], &len) == NULL);
        CHECK_INT(len, 0);
        CHECK(!sg_sio_has_binary(not_bin[i]));
        json_decref(not_bin[i]);
    }
    CHECK(!sg_sio_is_binary(NULL));
    CHECK(!sg_sio_has_binary(NULL));
}

TEST("socketio: has_binary finds binary values at any depth")
{
    json_t *a = json_pack("[s,{s:[i,{s:o}]}]", "ev", "k", 1, "deep", sg_sio_binary_new("b", 1));
    CHECK(sg_sio_has_binary(a));
    json_t *b = J("[\"ev\",{\"k\":[1,{\"deep\":\"b\"}]},null,true,1.5]");
    CHECK(!sg_sio_has_binary(b));
    json_decref(a);
    json_decref(b);
}

/* Encode a deconstructed packet, as siogate sends a binary event. */
static char *deconstruct_and_encode(enum sg_sio_type type, const char *nsp, int64_t id,
                                    json_t *data, json_t *bins)
{
    int n = sg_sio_deconstruct(&data, bins);
    if (n < 0) {
        json_decref(data);
        return NULL;
    }
    sg_sio_packet p = {type, (char *)nsp, id, (size_t)n, data};
    char *s = encode(&p);
    json_decref(data);
    return s;
}

TEST("socketio: deconstruct gives the protocol's binary examples")
{
    json_t *bins = json_array();
    char *s = deconstruct_and_encode(SG_SIO_BINARY_EVENT, "/", -1,
                                     json_pack("[so]", "baz", sg_sio_binary_new("\x01\x02\x03\x04", 4)),
                                     bins);
    CHECK_STR(s, "51-[\"baz\",{\"_placeholder\":true,\"num\":0}]");
    CHECK_INT(json_array_size(bins), 1);
    size_t len;
    const void *d = sg_sio_binary_data(json_array_get(bins, 0), &len);
    CHECK_MEM(d, len, "\x01\x02\x03\x04", 4);
    free(s);
    json_array_clear(bins);

    s = deconstruct_and_encode(SG_SIO_BINARY_EVENT, "/admin", -1,
                               json_pack("[soo]", "baz", sg_sio_binary_new("\x01\x02", 2),
                                         sg_sio_binary_new("\x03\x04", 2)),
                               bins);
    CHECK_STR(s, "52-/admin,[\"baz\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]");
    CHECK_INT(json_array_size(bins), 2);
    d = sg_sio_binary_data(json_array_get(bins, 1), &len);
    CHECK_MEM(d, len, "\x03\x04", 2);
    free(s);
    json_array_clear(bins);

    s = deconstruct_and_encode(SG_SIO_BINARY_ACK, "/admin", 1,
                               json_pack("[o]", sg_sio_binary_new("\x01\x02\x03\x04", 4)), bins);
    CHECK_STR(s, "61-/admin,1[{\"_placeholder\":true,\"num\":0}]");
    free(s);
    json_array_clear(bins);

    s = deconstruct_and_encode(SG_SIO_BINARY_EVENT, "/", 14,
                               json_pack("[so]", "foo", sg_sio_binary_new("\x01\x02\x03\x04", 4)), bins);
    CHECK_STR(s, "51-14[\"foo\",{\"_placeholder\":true,\"num\":0}]");
    free(s);
    json_decref(bins);
}

TEST("socketio: deconstruct numbers depth-first, in order, arrays and objects")
{
    json_t *bins = json_array();
    json_t *data = json_pack("[s,{s:o,s:[o,{s:o}],s:i},o]", "ev", "a", sg_sio_binary_new("0", 1),
                             "b", sg_sio_binary_new("1", 1), "c", sg_sio_binary_new("2", 1), "d", 7,
                             sg_sio_binary_new("3", 1));
    char *s = deconstruct_and_encode(SG_SIO_BINARY_EVENT, "/", -1, data, bins);
    CHECK_STR(s, "54-[\"ev\",{\"a\":{\"_placeholder\":true,\"num\":0},\"b\":[{\"_placeholder\":true,"
                 "\"num\":1},{\"c\":{\"_placeholder\":true,\"num\":2}}],\"d\":7},{\"_placeholder\":"
                 "true,\"num\":3}]");
    for (size_t i = 0; i < 4; i++) {
        size_t len;
        const char *d = sg_sio_binary_data(json_array_get(bins, i), &len);
        CHECK_INT(len, 1);
        CHECK_INT(d ? d[0] : 0, '0' + (int)i);
    }
    free(s);
    json_array_clear(bins);

    /* a binary value after other keys: they are copied in their order */
    data = json_pack("{s:i,s:o,s:i}", "k1", 1, "k2", sg_sio_binary_new("x", 1), "k3", 3);
    s = deconstruct_and_encode(SG_SIO_BINARY_ACK, "/", 3, json_pack("[o]", data), bins);
    CHECK_STR(s, "61-3[{\"k1\":1,\"k2\":{\"_placeholder\":true,\"num\":0},\"k3\":3}]");
    free(s);
    json_decref(bins);
}

TEST("socketio: deconstruct leaves its input untouched (copy on write)")
{
    json_t *bin = sg_sio_binary_new("xy", 2);
    json_t *plain = J("{\"k\":[1,2,3]}");
    json_t *orig = json_pack("[sOO]", "ev", plain, bin);
    json_t *data = json_incref(orig); /* shared with someone else */
    json_t *bins = json_array();
    CHECK_INT(sg_sio_deconstruct(&data, bins), 1);
    CHECK(data != orig);
    CHECK(json_array_get(orig, 2) == bin);           /* the shared copy still holds bytes */
    CHECK(json_array_get(data, 1) == plain);         /* untouched subtrees are shared */
    CHECK(json_is(json_array_get(data, 2), "{\"_placeholder\":true,\"num\":0}"));
    CHECK(json_array_get(bins, 0) == bin);           /* the value itself was moved */
    json_decref(data);
    json_decref(orig);
    json_decref(bins);
    json_decref(plain);
    json_decref(bin);
}

TEST("socketio: deconstruct without binary returns 0 and the same data")
{
    json_t *bins = json_array();
    json_t *data = J("[\"ev\",{\"a\":[1,{\"b\":null}]},\"s\"]");
    json_t *before = data;
    CHECK_INT(sg_sio_deconstruct(&data, bins), 0);
    CHECK(data == before);
    CHECK_INT(json_array_size(bins), 0);
    json_decref(data);

    json_t *none = NULL;
    CHECK_INT(sg_sio_deconstruct(&none, bins), 0);
    CHECK(none == NULL);

    /* a binary value as the whole data */
    json_t *top = sg_sio_binary_new("z", 1);
    CHECK_INT(sg_sio_deconstruct(&top, bins), 1);
    CHECK(json_is(top, "{\"_placeholder\":true,\"num\":0}"));
    CHECK(sg_sio_is_binary(json_array_get(bins, 0)));
    json_decref(top);

    /* bins must be an array */
    json_t *d2 = J("[1]");
    CHECK_INT(sg_sio_deconstruct(&d2, NULL), -1);
    json_decref(d2);
    json_decref(bins);
}

TEST("socketio: deconstruct refuses over-deep data and changes nothing")
{
    json_t *data = json_array(), *cur = data;
    for (int i = 0; i < SG_SIO_DEPTH_CAP + 172; i++) {
        json_t *c = json_array();
        json_array_append_new(cur, c);
        cur = c;
    }
    json_array_append_new(cur, sg_sio_binary_new("x", 1));
    json_array_insert_new(data, 0, sg_sio_binary_new("y", 1));
    json_t *bins = json_array(), *before = data;
    CHECK_INT(sg_sio_deconstruct(&data, bins), -1);
    CHECK(data == before);
    CHECK_INT(json_array_size(bins), 0);
    CHECK(sg_sio_is_binary(json_array_get(data, 0)));
    json_decref(data);
    json_decref(bins);
}

/* ---- reconstruct ------------------------------------------------------ */

static json_t *bins_of(int n)
{
    json_t *bins = json_array();
    for (int i = 0; i < n; i++) {
        char c = (char)('A' + i);
        json_array_append_new(bins, sg_sio_binary_new(&c, 1));
    }
    return bins;
}

/* A copy of v where each binary value becomes the string "#" + its bytes. */
static json_t *show_binary(const json_t *v)
{
    size_t len;
    const char *d = sg_sio_binary_data(v, &len);
    if (d) {
        char s[16] = "#";
        memcpy(s + 1, d, len < 14 ? len : 14);
        return json_string(s);
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        for (size_t i = 0; i < json_array_size(v); i++)
            json_array_append_new(a, show_binary(json_array_get(v, i)));
        return a;
    }
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *key;
        json_t *e;
        json_object_foreach((json_t *)v, key, e)
            json_object_set_new(o, key, show_binary(e));
        return o;
    }
    return json_deep_copy(v);
}

TEST("socketio: reconstruct puts attachments back")
{
    static const struct {
        const char *data;
        int nbins;
        const char *want; /* binary value i shown as "#A", "#B", ... */
    } cases[] = {
        {"[\"baz\",{\"_placeholder\":true,\"num\":0}]", 1, "[\"baz\",\"#A\"]"},
        {"[\"baz\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]", 2,
         "[\"baz\",\"#A\",\"#B\"]"},
        {"[\"x\",{\"_placeholder\":true,\"num\":1},{\"_placeholder\":true,\"num\":0}]", 2,
         "[\"x\",\"#B\",\"#A\"]"},
        {"[\"x\",{\"a\":{\"b\":[{\"_placeholder\":true,\"num\":0}]}}]", 1, "[\"x\",{\"a\":{\"b\":[\"#A\"]}}]"},
        {"[\"x\",{\"z\":1,\"y\":[2,{\"_placeholder\":true,\"num\":0}],\"w\":3}]", 1,
         "[\"x\",{\"z\":1,\"y\":[2,\"#A\"],\"w\":3}]"},
        {"[\"x\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":0}]", 1,
         "[\"x\",\"#A\",\"#A\"]"},
        /* as the reference: extra keys do not matter, "_placeholder" must be true */
        {"[\"x\",{\"num\":0,\"_placeholder\":true,\"more\":1}]", 1, "[\"x\",\"#A\"]"},
        {"[\"x\",{\"_placeholder\":false,\"num\":0},{\"_placeholder\":true,\"num\":0}]", 1,
         "[\"x\",{\"_placeholder\":false,\"num\":0},\"#A\"]"},
        {"[\"x\",{\"_placeholder\":1,\"num\":0},{\"_placeholder\":true,\"num\":0}]", 1,
         "[\"x\",{\"_placeholder\":1,\"num\":0},\"#A\"]"},
        {"[\"no placeholders\",{\"a\":[1]}]", 0, "[\"no placeholders\",{\"a\":[1]}]"},
        {"{\"_placeholder\":true,\"num\":0}", 1, "\"#A\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *bins = bins_of(cases[i].nbins);
        json_t *data = J(cases[i].data);
        CHECK_INT(sg_sio_reconstruct(&data, bins), SG_SIO_OK);
        json_t *shown = show_binary(data);
        if (!json_is(shown, cases[i].want))
            printf("#   case %zu\n", i);
        CHECK(json_is(shown, cases[i].want));
        json_decref(shown);
        json_decref(data);
        json_decref(bins);
    }
}

/* n arrays, each inside the one before (new). */
static json_t *nested_arrays(int n)
{
    json_t *top = json_array(), *cur = top;
    for (int i = 1; i < n; i++) {
        json_t *c = json_array();
        json_array_append_new(cur, c);
        cur = c;
    }
    return top;
}

TEST("socketio: unsendable names what encode refuses for its content, and agrees at the depth limit")
{
    json_t *v = json_array();
    json_array_append_new(v, json_stringn_nocheck("a\xc0\xaf", 3)); /* overlong */
    CHECK_STR(sg_sio_unsendable(v), "a string that is not UTF-8 text");
    json_decref(v);
    v = json_pack("[{s:b}]", "ok", 1);
    json_object_setn_nocheck(json_array_get(v, 0), "\xed\xa0\x80", 3, json_true());
    CHECK_STR(sg_sio_unsendable(v), "a key that is not UTF-8 text");
    json_decref(v);
    v = json_pack("[so]", "x", sg_sio_binary_new("ab", 2)); /* taken out before encoding */
    CHECK(sg_sio_unsendable(v) == NULL);
    json_decref(v);
    CHECK(sg_sio_unsendable(NULL) == NULL);
    /* SG_SIO_DEPTH_CAP + 1 nested arrays are written, one more is not */
    for (int n = SG_SIO_DEPTH_CAP + 1; n <= SG_SIO_DEPTH_CAP + 2; n++) {
        v = nested_arrays(n);
        sg_buf b = SG_BUF_INIT;
        sg_sio_packet p = {SG_SIO_EVENT, (char *)"/", -1, 0, v};
        int rc = sg_sio_encode(&b, &p);
        CHECK_INT(rc, n == SG_SIO_DEPTH_CAP + 1 ? 0 : -1);
        const char *why = sg_sio_unsendable(v);
        CHECK(rc == 0 ? why == NULL : why && !strcmp(why, "arrays or objects nested too deep"));
        sg_buf_free(&b);
        json_decref(v);
    }
}

TEST("socketio: reconstruct shares the attachments and leaves its input untouched")
{
    json_t *bins = bins_of(1);
    json_t *orig = J("[\"x\",{\"k\":\"v\"},{\"_placeholder\":true,\"num\":0}]");
    json_t *data = json_incref(orig);
    CHECK_INT(sg_sio_reconstruct(&data, bins), SG_SIO_OK);
    CHECK(data != orig);
    CHECK(json_array_get(data, 2) == json_array_get(bins, 0));
    CHECK(json_array_get(data, 1) == json_array_get(orig, 1));
    CHECK(json_is(orig, "[\"x\",{\"k\":\"v\"},{\"_placeholder\":true,\"num\":0}]"));
    json_decref(bins); /* data holds its own reference */
    CHECK(sg_sio_is_binary(json_array_get(data, 2)));
    json_decref(data);
    json_decref(orig);

    /* keys keep their order in the copied object */
    bins = bins_of(1);
    data = J("{\"z\":1,\"y\":{\"_placeholder\":true,\"num\":0},\"w\":3}");
    CHECK_INT(sg_sio_reconstruct(&data, bins), SG_SIO_OK);
    const char *order[3] = {"z", "y", "w"};
    size_t k = 0;
    for (void *it = json_object_iter(data); it; it = json_object_iter_next(data, it), k++)
        CHECK_STR(json_object_iter_key(it), k < 3 ? order[k] : "");
    CHECK_INT(k, 3);
    CHECK(sg_sio_is_binary(json_object_get(data, "y")));
    json_decref(data);
    json_decref(bins);
}

TEST("socketio: reconstruct rejects bad placeholders, changing nothing")
{
    static const struct {
        const char *data;
        int nbins;
    } cases[] = {
        {"[\"x\",{\"_placeholder\":true,\"num\":1}]", 1},      /* index out of range */
        {"[\"x\",{\"_placeholder\":true,\"num\":-1}]", 1},     /* negative */
        {"[\"x\",{\"_placeholder\":true,\"num\":0}]", 0},      /* no attachment at all */
        {"[\"x\",{\"_placeholder\":true,\"num\":0.5}]", 1},    /* not an integer */
        {"[\"x\",{\"_placeholder\":true,\"num\":0.0}]", 1},
        {"[\"x\",{\"_placeholder\":true,\"num\":\"0\"}]", 1},  /* a string */
        {"[\"x\",{\"_placeholder\":true}]", 1},                /* no num */
        {"[\"x\",{\"_placeholder\":true,\"num\":null}]", 1},
        {"[\"x\",{\"_placeholder\":true,\"num\":9223372036854775807}]", 1},
        {"[\"x\"]", 1},                                          /* attachment unused */
        {"[\"x\",{\"_placeholder\":true,\"num\":0}]", 2},      /* second one unused */
        {"[\"x\",{\"_placeholder\":true,\"num\":1},{\"_placeholder\":true,\"num\":1}]", 2},
        {"[\"x\",{\"a\":[{\"_placeholder\":true,\"num\":0}]},{\"_placeholder\":true,\"num\":5}]", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *bins = bins_of(cases[i].nbins);
        json_t *data = J(cases[i].data), *before = data;
        int rc = sg_sio_reconstruct(&data, bins);
        if (rc != SG_SIO_EPLACEHOLDER)
            printf("#   case %zu\n", i);
        CHECK_INT(rc, SG_SIO_EPLACEHOLDER);
        CHECK(data == before);
        CHECK(json_is(data, cases[i].data));
        json_decref(data);
        json_decref(bins);
    }
    /* no data at all but an attachment */
    json_t *bins = bins_of(1), *none = NULL;
    CHECK_INT(sg_sio_reconstruct(&none, bins), SG_SIO_EPLACEHOLDER);
    json_decref(bins);
    bins = bins_of(0);
    CHECK_INT(sg_sio_reconstruct(&none, bins), SG_SIO_OK);
    json_decref(bins);
}

TEST("socketio: reconstruct refuses over-deep data")
{
    json_t *data = json_array(), *cur = data;
    for (int i = 0; i < SG_SIO_DEPTH_CAP + 172; i++) {
        json_t *c = json_array();
        json_array_append_new(cur, c);
        cur = c;
    }
    json_array_append_new(cur, J("{\"_placeholder\":true,\"num\":0}"));
    json_t *bins = bins_of(1), *before = data;
    CHECK_INT(sg_sio_reconstruct(&data, bins), SG_SIO_EPLACEHOLDER);
    CHECK(data == before);
    json_decref(data);
    json_decref(bins);
}

TEST("socketio: a binary event end to end (deconstruct, encode, decode, reconstruct)")
{
    static const unsigned char img[] = {0x89, 'P', 'N', 'G', 0, 0x1e, 0xff};
    json_t *bins = json_array();
    json_t *data = json_pack("[s,{s:o,s:s},o]", "upload", "file", sg_sio_binary_new(img, sizeof img),
                             "name", "a.png", sg_sio_binary_new("", 0));
    char *wire = deconstruct_and_encode(SG_SIO_BINARY_EVENT, "/files", 42, data, bins);
    CHECK_STR(wire, "52-/files,42[\"upload\",{\"file\":{\"_placeholder\":true,\"num\":0},\"name\":"
                    "\"a.png\"},{\"_placeholder\":true,\"num\":1}]");
    sg_sio_packet p;
    CHECK_INT(sg_sio_decode(wire, strlen(wire), &p), SG_SIO_OK);
    CHECK_INT(p.type, SG_SIO_BINARY_EVENT);
    CHECK_INT(p.attachments, json_array_size(bins));
    CHECK_INT(p.id, 42);
    CHECK_STR(p.nsp, "/files");
    CHECK_INT(sg_sio_reconstruct(&p.data, bins), SG_SIO_OK);
    size_t len;
    const void *d = sg_sio_binary_data(json_object_get(json_array_get(p.data, 1), "file"), &len);
    CHECK_MEM(d, len, img, sizeof img);
    d = sg_sio_binary_data(json_array_get(p.data, 2), &len);
    CHECK(d != NULL);
    CHECK_INT(len, 0);
    CHECK(sg_sio_has_binary(p.data));
    sg_sio_packet_clear(&p);
    free(wire);
    json_decref(bins);
}

TEST("socketio: strerror names every error")
{
    static const int codes[] = {SG_SIO_OK,          SG_SIO_ENOMEM, SG_SIO_EEMPTY, SG_SIO_ETYPE,
                                SG_SIO_EATTACHMENTS, SG_SIO_ENSP,   SG_SIO_EID,    SG_SIO_EJSON,
                                SG_SIO_EPAYLOAD,     SG_SIO_EPLACEHOLDER};
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
        const char *s = sg_sio_strerror(codes[i]);
        CHECK(s != NULL && *s);
        for (size_t k = 0; k < i; k++)
            CHECK(strcmp(s, sg_sio_strerror(codes[k])) != 0);
    }
    CHECK(sg_sio_strerror(42) != NULL);
}

int main(void) { return tap_run(); }
