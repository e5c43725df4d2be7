/* test_fcgi.c - unit tests for gateway/fcgi.c (FastCGI 1.0, the RESPONDER
 * role), written from the specification: the inputs are record streams
 * built here byte by byte, the outputs are decoded here again.
 *
 * Every parse gets a heap copy of exactly the bytes it may read, so that
 * ASan sees a read beyond len; every parser is freed in whatever state it
 * was left, so that LSan sees a leak. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "fcgi.h"
#include "tap.h"

/* A string literal and its length (it may hold NULs). */
#define S(lit) lit, sizeof lit - 1

/* ---- the protocol, as the specification numbers it ------------------- */

enum {
    FCGI_BEGIN_REQUEST = 1, FCGI_ABORT_REQUEST = 2, FCGI_END_REQUEST = 3, FCGI_PARAMS = 4,
    FCGI_STDIN = 5, FCGI_STDOUT = 6, FCGI_STDERR = 7, FCGI_DATA = 8, FCGI_GET_VALUES = 9,
    FCGI_GET_VALUES_RESULT = 10, FCGI_UNKNOWN_TYPE = 11,
};
enum { FCGI_RESPONDER = 1, FCGI_AUTHORIZER = 2, FCGI_FILTER = 3 };
enum { FCGI_KEEP_CONN = 1 };
enum { FCGI_REQUEST_COMPLETE = 0, FCGI_CANT_MPX_CONN = 1, FCGI_OVERLOADED = 2,
       FCGI_UNKNOWN_ROLE = 3 };
enum { HDR = 8, MAX_CONTENT = 65535 };

/* ---- building the web server's side ---------------------------------- */

/* Test scaffolding that cannot allocate is not what is tested. */
static void must(int rc)
{
    if (rc < 0) {
        printf("Bail out! out of memory\n");
        exit(1);
    }
}

/* One record; the padding bytes are not zero, to show they are ignored. */
static void rec_pad(sg_buf *b, int type, unsigned id, const void *c, size_t clen, unsigned pad)
{
    unsigned char h[HDR] = {1, (unsigned char)type, (unsigned char)(id >> 8), (unsigned char)id,
                            (unsigned char)(clen >> 8), (unsigned char)clen, (unsigned char)pad,
                            0};
    if (clen > MAX_CONTENT || pad > 255)
        must(-1);
    must(sg_buf_append(b, h, HDR));
    must(sg_buf_append(b, c ? c : "", clen));
    for (unsigned i = 0; i < pad; i++)
        must(sg_buf_putc(b, (char)0x5a));
}

static void rec(sg_buf *b, int type, unsigned id, const void *c, size_t clen)
{
    rec_pad(b, type, id, c, clen, 0);
}

static void begin(sg_buf *b, unsigned id, unsigned role, unsigned flags)
{
    unsigned char body[8] = {(unsigned char)(role >> 8), (unsigned char)role,
                             (unsigned char)flags, 0, 0, 0, 0, 0};
    rec(b, FCGI_BEGIN_REQUEST, id, body, sizeof body);
}

/* A stream: data[0..len) in records of chunk bytes (0: as few as
 * possible), then the empty record that ends it. */
static void stream_pad(sg_buf *b, int type, unsigned id, const void *data, size_t len,
                       size_t chunk, unsigned pad)
{
    const char *d = data;
    if (chunk == 0 || chunk > MAX_CONTENT)
        chunk = MAX_CONTENT;
    for (size_t off = 0; off < len; off += chunk)
        rec_pad(b, type, id, d + off, len - off < chunk ? len - off : chunk, pad);
    rec_pad(b, type, id, NULL, 0, pad);
}

static void stream(sg_buf *b, int type, unsigned id, const void *data, size_t len, size_t chunk)
{
    stream_pad(b, type, id, data, len, chunk, 0);
}

/* A name-value length: one byte below 128 unless forced into four. */
static void nv_len(sg_buf *b, size_t n, bool four)
{
    if (n < 0x80 && !four) {
        must(sg_buf_putc(b, (char)n));
        return;
    }
    unsigned char l[4] = {(unsigned char)(0x80 | (n >> 24)), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8), (unsigned char)n};
    must(sg_buf_append(b, l, 4));
}

static void nv(sg_buf *b, const char *name, const char *value, bool four_name, bool four_value)
{
    size_t nl = strlen(name), vl = strlen(value);
    nv_len(b, nl, four_name);
    nv_len(b, vl, four_value);
    must(sg_buf_append(b, name, nl));
    must(sg_buf_append(b, value, vl));
}

/* A whole request with a few parameters and a body, in one record each. */
static void simple_request(sg_buf *b, unsigned id, unsigned flags, const char *method,
                           const char *body)
{
    sg_buf pairs = SG_BUF_INIT;
    nv(&pairs, "REQUEST_METHOD", method, false, false);
    nv(&pairs, "REQUEST_URI", "/socket.io/?EIO=4&transport=polling", false, false);
    begin(b, id, FCGI_RESPONDER, flags);
    stream(b, FCGI_PARAMS, id, pairs.data, pairs.len, 0);
    stream(b, FCGI_STDIN, id, body, strlen(body), 0);
    sg_buf_free(&pairs);
}

/* ---- reading the gateway's side --------------------------------------- */

struct rec {
    int type;
    unsigned id;
    const unsigned char *c;
    size_t clen;
};

/* The records of out[0..len): their number, or -1 when they do not tile
 * the bytes exactly (a record cut short, a version other than 1). */
static int decode(const void *out, size_t len, struct rec *v, int max)
{
    const unsigned char *b = out;
    size_t pos = 0;
    int n = 0;
    while (pos < len) {
        if (len - pos < HDR || b[pos] != 1)
            return -1;
        size_t clen = ((size_t)b[pos + 4] << 8) | b[pos + 5], pad = b[pos + 6];
        if (len - pos - HDR < clen + pad)
            return -1;
        if (n < max)
            v[n] = (struct rec){b[pos + 1], ((unsigned)b[pos + 2] << 8) | b[pos + 3],
                                b + pos + HDR, clen};
        n++;
        pos += HDR + clen + pad;
    }
    return n;
}

/* An FCGI_END_REQUEST record for id with appStatus 0 and status. */
static bool is_end(const struct rec *r, unsigned id, unsigned status)
{
    static const unsigned char zero[8];
    return r->type == FCGI_END_REQUEST && r->id == id && r->clen == 8 &&
           memcmp(r->c, zero, 4) == 0 && r->c[4] == status && memcmp(r->c + 5, zero, 3) == 0;
}

/* out holds exactly one END_REQUEST, for id with status. */
static bool only_end(const sg_buf *out, unsigned id, unsigned status)
{
    struct rec r[4];
    return decode(out->data, out->len, r, 4) == 1 && is_end(&r[0], id, status);
}

/* Whether off ends a record of the well-formed stream in[0..len). */
static bool boundary(const unsigned char *in, size_t len, size_t off)
{
    size_t pos = 0;
    while (pos < off) {
        if (len - pos < HDR)
            return false;
        pos += HDR + (((size_t)in[pos + 4] << 8) | in[pos + 5]) + in[pos + 6];
    }
    return pos == off;
}

/* Whether in[0..n) begins with a complete record. */
static bool whole_record(const unsigned char *in, size_t n)
{
    return n >= HDR && n - HDR >= ((((size_t)in[4] << 8) | in[5]) + in[6]);
}

/* One sg_fcgi_parse over a heap copy of exactly in[0..n). */
static int parse1(sg_fcgi_parser *p, const void *in, size_t n, size_t *used, sg_buf *out)
{
    unsigned char *copy = malloc(n ? n : 1);
    if (!copy)
        must(-1);
    if (n)
        memcpy(copy, in, n);
    *used = (size_t)-1;
    int rc = sg_fcgi_parse(p, copy, n, used, out);
    free(copy);
    return rc;
}

/* Feed in[0..len) to p as a server reading its connection step bytes at a
 * time would (step 0: all at once): what was not used is given again with
 * the bytes that came after it. Stops at the first event; *done gets the
 * bytes of in used. Checks that every call uses whole records and leaves
 * no whole record unused when it asks for more. */
static int feed_(sg_fcgi_parser *p, const unsigned char *in, size_t len, size_t step,
                 size_t *done, sg_buf *out, int *tap_failed)
{
    size_t start = 0, avail = 0;
    int rc;
    for (;;) {
        avail = step && len - avail > step ? avail + step : len;
        size_t n = avail - start, used;
        rc = parse1(p, in + start, n, &used, out);
        if (rc == SG_FCGI_ERROR)
            break; /* *used is not specified then */
        CHECK(used <= n);
        if (used > n)
            break;
        CHECK(boundary(in, len, start + used));
        start += used;
        if (rc == SG_FCGI_MORE)
            CHECK(!whole_record(in + start, avail - start));
        if (rc != SG_FCGI_MORE || avail == len)
            break;
    }
    *done = start;
    return rc;
}

#define feed(p, in, len, step, done, out) \
    feed_((p), (const unsigned char *)(in), (len), (step), (done), (out), tap_failed)

static const size_t steps[] = {0, 1, 2, 3, 7, 8, 9, 17, 64, 1000, 4096};
#define NSTEPS (sizeof steps / sizeof *steps)

/* Whether feeding len bytes step at a time stays cheap (each call copies
 * what is pending). */
static bool step_ok(size_t len, size_t step)
{
    return step == 0 || len / step < 3000;
}

/* ---- data for the tables ---------------------------------------------- */

static char s127[128], s128[129], s300[301], big_body[100000];

__attribute__((constructor)) static void fill_data(void)
{
    memset(s127, 'a', 127);
    memset(s128, 'B', 128);
    for (size_t i = 0; i < 300; i++)
        s300[i] = (char)('a' + i % 26);
    for (size_t i = 0; i < sizeof big_body; i++)
        big_body[i] = (char)(i * 31 + 7); /* every byte value, NULs too */
}

/* ---- complete requests ----------------------------------------------- */

struct param {
    const char *name, *value;
    bool four_name, four_value; /* lengths in the four-byte form even if short */
};

static const struct req_case {
    const char *name;
    unsigned id, flags;
    bool keep_conn;
    struct param params[8];
    size_t params_chunk; /* pair bytes per PARAMS record; 0: one record */
    const char *body;
    size_t body_len;
    size_t stdin_chunk;  /* body bytes per STDIN record; 0: as few as possible */
    unsigned pad;        /* padding of every record but BEGIN_REQUEST */
    size_t max_body;     /* 0: 1 MiB */
    const char *missing[6];
} req_cases[] = {
    {"GET as nginx sends it, keep_conn off", 1, 0, false,
     {{"QUERY_STRING", "EIO=4&transport=polling&t=OaB1c2d", 0, 0},
      {"REQUEST_METHOD", "GET", 0, 0},
      {"CONTENT_LENGTH", "", 0, 0},
      {"HTTP_X_Y", "second", 0, 0}, /* the longer name first */
      {"HTTP_X", "first", 0, 0},
      {"HTTP_HOST", "example.org", 0, 0}},
     0, S(""), 0, 0, 0,
     {"HTTP_X_Y_Z", "HTTP", "HTTP_X_", "REQUEST_METHO", "", "QUERY_STRING="}},
    {"POST with FCGI_KEEP_CONN, PARAMS every 7 bytes, STDIN in 3 records", 7, FCGI_KEEP_CONN,
     true,
     {{"REQUEST_METHOD", "POST", 0, 0},
      {"CONTENT_TYPE", "text/plain;charset=UTF-8", 0, 0},
      {"CONTENT_LENGTH", "15", 0, 0},
      {"HTTP_X", "first", 0, 0},
      {"HTTP_X_Y", "second", 0, 0}},
     7, S("a=1&b=2&c=3&d=4"), 5, 0, 0, {"HTTP_X_Y_Z", "HTTP_", "CONTENT"}},
    {"PARAMS and STDIN one byte per record", 2, 0, false,
     {{"A", "1", 0, 0}, {"AB", "2", 0, 0}, {"ABC", "", 0, 0}},
     1, S("xyz\0\x01\xff"), 1, 0, 0, {"ABCD", "B"}},
    {"lengths 127 (one byte), 128 and 300 (four bytes), split across records", 0x0102, 0,
     false,
     {{"V127", s127, 0, 0},
      {"V128", s128, 0, 0},
      {"V300", s300, 0, 0},
      {s128, "long name", 0, 0},
      {"SHORT_IN_FOUR", "ok", true, true},
      {"EMPTY_IN_FOUR", "", false, true}},
     3, S("body"), 0, 0, 0, {"V12", "V3000"}},
    {"no parameters (only the empty PARAMS), empty STDIN, flags 0xff", 0xffff, 0xff, true,
     {{NULL, NULL, 0, 0}}, 0, S(""), 0, 0, 0, {"REQUEST_METHOD", ""}},
    {"padding 7 on every record, flags 0xfe (no KEEP_CONN bit)", 256, 0xfe, false,
     {{"EMPTY", "", 0, 0}, {"CONTENT_TYPE", "text/plain", 0, 0}},
     5, S("padded body"), 4, 7, 0, {"EMPT"}},
    {"padding 255, 100000-byte body in 65535-byte records, max_body exactly it", 3,
     FCGI_KEEP_CONN, true,
     {{"REQUEST_METHOD", "POST", 0, 0}, {"V300", s300, 0, 0}},
     0, big_body, sizeof big_body, 0, 255, sizeof big_body, {"REQUEST"}},
    {"100000-byte body in records of 1000", 4, 0, false,
     {{"REQUEST_METHOD", "POST", 0, 0}},
     100, big_body, sizeof big_body, 1000, 0, 0, {NULL}},
};

static size_t nparams(const struct req_case *c)
{
    size_t n = 0;
    while (n < sizeof c->params / sizeof *c->params && c->params[n].name)
        n++;
    return n;
}

static void build_case(sg_buf *in, const struct req_case *c)
{
    sg_buf pairs = SG_BUF_INIT;
    for (size_t i = 0; i < nparams(c); i++)
        nv(&pairs, c->params[i].name, c->params[i].value, c->params[i].four_name,
           c->params[i].four_value);
    begin(in, c->id, FCGI_RESPONDER, c->flags);
    stream_pad(in, FCGI_PARAMS, c->id, pairs.data, pairs.len, c->params_chunk, c->pad);
    stream_pad(in, FCGI_STDIN, c->id, c->body, c->body_len, c->stdin_chunk, c->pad);
    sg_buf_free(&pairs);
}

/* r is the request of c, complete. */
static void check_req(const struct req_case *c, const sg_fcgi_req *r, int *tap_failed)
{
    CHECK_INT(r->id, c->id);
    CHECK_INT(r->keep_conn, c->keep_conn);
    CHECK(!r->too_large);
    CHECK_MEM(r->body.data ? r->body.data : "", r->body.len, c->body, c->body_len);
    CHECK(r->envp != NULL);
    if (!r->envp)
        return;
    size_t n = nparams(c), i = 0;
    for (; i < n && r->envp[i]; i++) {
        size_t nl = strlen(c->params[i].name);
        CHECK(strncmp(r->envp[i], c->params[i].name, nl) == 0 && r->envp[i][nl] == '=');
        CHECK_STR(r->envp[i] + nl + 1, c->params[i].value);
    }
    CHECK_INT(i, n);
    CHECK(r->envp[n] == NULL);
    for (i = 0; i < n; i++)
        CHECK_STR(sg_fcgi_param(r, c->params[i].name), c->params[i].value);
    for (i = 0; i < sizeof c->missing / sizeof *c->missing && c->missing[i]; i++)
        CHECK(sg_fcgi_param(r, c->missing[i]) == NULL);
}

TEST("fcgi: complete RESPONDER requests, all at once and in pieces of every size")
{
    for (size_t i = 0; i < sizeof req_cases / sizeof *req_cases; i++) {
        const struct req_case *c = &req_cases[i];
        sg_buf in = SG_BUF_INIT;
        build_case(&in, c);
        for (size_t s = 0; s < NSTEPS; s++) {
            if (!step_ok(in.len, steps[s]))
                continue;
            int failed = 0, *outer = tap_failed;
            tap_failed = &failed; /* to tell which case failed */
            sg_fcgi_parser p;
            sg_buf out = SG_BUF_INIT;
            size_t done;
            sg_fcgi_parser_init(&p, c->max_body ? c->max_body : 1 << 20);
            int rc = feed(&p, in.data, in.len, steps[s], &done, &out);
            CHECK_INT(rc, SG_FCGI_REQUEST);
            CHECK_INT(done, in.len);
            CHECK_INT(out.len, 0); /* nothing to say to the web server yet */
            if (rc == SG_FCGI_REQUEST)
                check_req(c, &p.req, tap_failed);
            sg_fcgi_done(&p);
            sg_fcgi_parser_free(&p);
            sg_buf_free(&out);
            tap_failed = outer;
            if (failed) {
                printf("#   case %zu (%s), step %zu\n", i, c->name, steps[s]);
                *tap_failed = 1;
            }
        }
        sg_buf_free(&in);
    }
}

TEST("fcgi: parse stops at the request: a following record is left unused")
{
    sg_buf in = SG_BUF_INIT, out = SG_BUF_INIT;
    simple_request(&in, 1, FCGI_KEEP_CONN, "GET", "");
    size_t first = in.len;
    rec(&in, FCGI_GET_VALUES, 0, NULL, 0); /* would be answered at once */
    must(sg_buf_append(&in, "\x01\x01\x00", 3)); /* and a header cut short */
    sg_fcgi_parser p;
    sg_fcgi_parser_init(&p, 100);
    size_t used;
    CHECK_INT(parse1(&p, in.data, in.len, &used, &out), SG_FCGI_REQUEST);
    CHECK_INT(used, first);
    CHECK_INT(out.len, 0);
    sg_fcgi_done(&p);
    CHECK_INT(parse1(&p, in.data + first, in.len - first, &used, &out), SG_FCGI_MORE);
    CHECK_INT(used, HDR);
    struct rec r[2];
    CHECK_INT(decode(out.data, out.len, r, 2), 1);
    CHECK_INT(r[0].type, FCGI_GET_VALUES_RESULT);
    sg_fcgi_parser_free(&p);
    sg_buf_free(&in);
    sg_buf_free(&out);
}

TEST("fcgi: less than a header, or nothing, is MORE with nothing used")
{
    sg_buf in = SG_BUF_INIT, out = SG_BUF_INIT;
    begin(&in, 1, FCGI_RESPONDER, 0);
    sg_fcgi_parser p;
    sg_fcgi_parser_init(&p, 100);
    for (size_t n = 0; n < HDR + 8; n++) {
        size_t used;
        CHECK_INT(parse1(&p, in.data, n, &used, &out), SG_FCGI_MORE);
        CHECK_INT(used, 0);
    }
    CHECK_INT(out.len, 0);
    sg_fcgi_parser_free(&p);
    sg_buf_free(&in);
    sg_buf_free(&out);
}

TEST("fcgi: sg_fcgi_param without a request or a name is NULL")
{
    sg_fcgi_parser p;
    sg_fcgi_parser_init(&p, 100);
    CHECK(sg_fcgi_param(NULL, "REQUEST_METHOD") == NULL);
    CHECK(sg_fcgi_param(&p.req, "REQUEST_METHOD") == NULL); /* nothing read yet */
    sg_buf in = SG_BUF_INIT, out = SG_BUF_INIT;
    simple_request(&in, 1, 0, "GET", "");
    size_t used;
    CHECK_INT(parse1(&p, in.data, in.len, &used, &out), SG_FCGI_REQUEST);
    CHECK(sg_fcgi_param(&p.req, NULL) == NULL);
    CHECK_STR(sg_fcgi_param(&p.req, "REQUEST_METHOD"), "GET");
    sg_fcgi_parser_free(&p);
    sg_buf_free(&in);
    sg_buf_free(&out);
}

/* ---- the body limit --------------------------------------------------- */

static const struct {
    const char *name;
    size_t max_body;
    const char *pieces[4]; /* STDIN records */
    const char *kept;      /* the body kept; NULL: any prefix of what was sent */
    bool too_large;
} limit_cases[] = {
    {"exactly max_body", 10, {"hello", "world"}, "helloworld", false},
    {"one record more than max_body", 10, {"hello", "world", "!"}, "helloworld", true},
    {"a record that crosses max_body", 10, {"hello", "world!"}, NULL, true},
    {"a record that crosses max_body, then more", 10, {"hello", "world!", "x", "y"}, NULL, true},
    {"max_body 0, no body", 0, {NULL}, "", false},
    {"max_body 0, one byte", 0, {"x"}, "", true},
    {"the first record beyond max_body", 4, {"abcdefgh"}, NULL, true},
};

TEST("fcgi: a body beyond max_body sets too_large, keeps what fits, and the request completes")
{
    for (size_t i = 0; i < sizeof limit_cases / sizeof *limit_cases; i++) {
        sg_buf in = SG_BUF_INIT, out = SG_BUF_INIT, sent = SG_BUF_INIT, pairs = SG_BUF_INIT;
        nv(&pairs, "REQUEST_METHOD", "POST", false, false);
        begin(&in, 9, FCGI_RESPONDER, 0);
        stream(&in, FCGI_PARAMS, 9, pairs.data, pairs.len, 0);
        for (size_t k = 0; k < 4 && limit_cases[i].pieces[k]; k++) {
            const char *piece = limit_cases[i].pieces[k];
            rec(&in, FCGI_STDIN, 9, piece, strlen(piece));
            must(sg_buf_puts(&sent, piece));
        }
        rec(&in, FCGI_STDIN, 9, NULL, 0);
        for (size_t s = 0; s < NSTEPS; s++) {
            int failed = 0, *outer = tap_failed;
            tap_failed = &failed;
            sg_fcgi_parser p;
            size_t done;
            sg_fcgi_parser_init(&p, limit_cases[i].max_body);
            int rc = feed(&p, in.data, in.len, steps[s], &done, &out);
            CHECK_INT(rc, SG_FCGI_REQUEST);
            CHECK_INT(done, in.len);
            CHECK_INT(out.len, 0);
            CHECK_INT(p.req.too_large, limit_cases[i].too_large);
            CHECK(p.req.body.len <= limit_cases[i].max_body);
            if (limit_cases[i].kept)
                CHECK_MEM(sg_buf_str(&p.req.body), p.req.body.len, limit_cases[i].kept,
                          strlen(limit_cases[i].kept));
            CHECK_STR(sg_fcgi_param(&p.req, "REQUEST_METHOD"), "POST");
            sg_fcgi_parser_free(&p); /* without sg_fcgi_done: nothing may leak */
            tap_failed = outer;
            if (failed) {
                printf("#   case %zu (%s), step %zu\n", i, limit_cases[i].name, steps[s]);
                *tap_failed = 1;
            }
        }
        sg_buf_free(&in);
        sg_buf_free(&out);
        sg_buf_free(&sent);
        sg_buf_free(&pairs);
    }
}

/* Once a STDIN record does not fit, nothing more is kept: a later,
 * smaller record was once appended after the dropped one (max_body 10,
 * STDIN "hello", "world!", "x", "y" kept "helloxy"; max_body 4,
 * "abcdefgh", "xy" kept "xy"). */
TEST("fcgi: what is kept of a body beyond max_body is a prefix of it")
{
    for (size_t i = 0; i < sizeof limit_cases / sizeof *limit_cases; i++) {
        sg_buf in = SG_BUF_INIT, out = SG_BUF_INIT, sent = SG_BUF_INIT;
        begin(&in, 9, FCGI_RESPONDER, 0);
        stream(&in, FCGI_PARAMS, 9, NULL, 0, 0);
        const char *pieces[5] = {0};
        memcpy(pieces, limit_cases[i].pieces, sizeof limit_cases[i].pieces);
        if (i == 6)
            pieces[1] = "xy"; /* the second example above */
        for (size_t k = 0; k < 5 && pieces[k]; k++) {
            rec(&in, FCGI_STDIN, 9, pieces[k], strlen(pieces[k]));
            must(sg_buf_puts(&sent, pieces[k]));
        }
        rec(&in, FCGI_STDIN, 9, NULL, 0);
        sg_fcgi_parser p;
        size_t used;
        sg_fcgi_parser_init(&p, limit_cases[i].max_body);
        CHECK_INT(parse1(&p, in.data, in.len, &used, &out), SG_FCGI_REQUEST);
        bool prefix = p.req.body.len <= sent.len &&
                      memcmp(sg_buf_str(&p.req.body), sg_buf_str(&sent), p.req.body.len) == 0;
        if (!prefix)
            printf("#   case %zu (%s): kept \"%s\" of \"%s\"\n", i, limit_cases[i].name,
                   sg_buf_str(&p.req.body), sg_buf_str(&sent));
        CHECK(prefix);
        sg_fcgi_parser_free(&p);
        sg_buf_free(&in);
        sg_buf_free(&out);
        sg_buf_free(&sent);
    }
}

/* ---- the parameter limit ---------------------------------------------- */

/* A request whose PARAMS stream holds total bytes: one pair BIG. */
static void big_params(sg_buf *in, size_t total)
{
    sg_buf pairs = SG_BUF_INIT;
    size_t vl = total - (1 + 4 + 3);
    nv_len(&pairs, 3, false);
    nv_len(&pairs, vl, true);
    must(sg_buf_append(&pairs, "BIG", 3));
    must(sg_buf_reserve(&pairs, vl));
    memset(pairs.data + pairs.len, 'v', vl);
    pairs.len += vl;
    pairs.data[pairs.len] = '\0';
    begin(in, 1, FCGI_RESPONDER, 0);
    stream(in, FCGI_PARAMS, 1, pairs.data, pairs.len, 0);
    stream(in, FCGI_STDIN, 1, NULL, 0, 0);
    sg_buf_free(&pairs);
}

TEST("fcgi: PARAMS of SG_FCGI_MAX_PARAMS bytes are read; one byte more is an error")
{
    sg_buf in = SG_BUF_INIT, out = SG_BUF_INIT;
    sg_fcgi_parser p;
    size_t used;

    big_params(&in, SG_FCGI_MAX_PARAMS);
    sg_fcgi_parser_init(&p, 100);
    CHECK_INT(parse1(&p, in.data, in.len, &used, &out), SG_FCGI_REQUEST);
    CHECK_INT(used, in.len);
    const char *v = sg_fcgi_param(&p.req, "BIG");
    CHECK(v != NULL);
    if (v)
        CHECK_INT(strlen(v), SG_FCGI_MAX_PARAMS - 8);
    sg_fcgi_parser_free(&p);

    sg_buf_reset(&in);
    big_params(&in, SG_FCGI_MAX_PARAMS + 1);
    sg_fcgi_parser_init(&p, 100);
    CHECK_INT(parse1(&p, in.data, in.len, &used, &out), SG_FCGI_ERROR);
    sg_fcgi_parser_free(&p);

    /* many small records are counted together */
    sg_buf_reset(&in);
    begin(&in, 1, FCGI_RESPONDER, 0);
    sg_buf pair = SG_BUF_INIT;
    nv(&pair, "X", s300, false, false); /* 1 + 4 + 1 + 300 = 306 bytes */
    for (size_t total = 0; total <= SG_FCGI_MAX_PARAMS; total += pair.len)
        rec(&in, FCGI_PARAMS, 1, pair.data, pair.len);
    sg_fcgi_parser_init(&p, 100);
    CHECK_INT(parse1(&p, in.data, in.len, &used, &out), SG_FCGI_ERROR);
    sg_fcgi_parser_free(&p);
    CHECK_INT(out.len, 0);

    sg_buf_free(&pair);
    sg_buf_free(&in);
    sg_buf_free(&out);
}

/* ---- not FastCGI -------------------------------------------------------- */

TEST("fcgi: a version other than 1 is an error, on the first record or a later one")
{
    static const unsigned char versions[] = {0, 2, 3, 0x81, 0xff};
    for (size_t i = 0; i < sizeof versions; i++) {
        for (int at = 0; at < 3; at++) {
            sg_buf in = SG_BUF_INIT, out = SG_BUF_INIT;
            simple_request(&in, 1, 0, "GET", "abc");
            /* the first record, the first PARAMS record, the last one */
            size_t off = at == 0 ? 0 : at == 1 ? HDR + 8 : in.len - HDR;
            in.data[off] = (char)versions[i];
            for (size_t s = 0; s < NSTEPS; s++) {
                sg_fcgi_parser p;
                size_t done;
                sg_fcgi_parser_init(&p, 100);
                int rc = feed(&p, in.data, in.len, steps[s], &done, &out);
                if (rc != SG_FCGI_ERROR)
                    printf("#   version %u, record %d, step %zu\n", versions[i], at, steps[s]);
                CHECK_INT(rc, SG_FCGI_ERROR);
                sg_fcgi_parser_free(&p);
            }
            CHECK_INT(out.len, 0);
            sg_buf_free(&in);
            sg_buf_free(&out);
        }
    }
}

TEST("fcgi: an HTTP request sent to the FastCGI port is an error")
{
    static const char http[] = "GET /socket.io/?EIO=4 HTTP/1.1\r\nHost: x\r\n\r\n";
    sg_fcgi_parser p;
    sg_buf out = SG_BUF_INIT;
    size_t used;
    sg_fcgi_parser_init(&p, 100);
    CHECK_INT(parse1(&p, http, sizeof http - 1, &used, &out), SG_FCGI_ERROR);
    CHECK_INT(out.len, 0);
    sg_fcgi_parser_free(&p);
    sg_buf_free(&out);
}

static const struct {
    const char *name;
    const char *pairs;
    size_t len;
} bad_pairs[] = {
    {"name length beyond the content", S("\x05\x01" "abc")},
    {"value length beyond the content", S("\x01\x05" "ab")},
    {"value length one beyond", S("\x02\x02" "abc")},
    {"four-byte name length cut short", S("\x80\x00")},
    {"four-byte value length cut short", S("\x01\x80\x00\x00")},
    {"value length missing", S("\x01")},
    {"name length 0x7fffffff", S("\xff\xff\xff\xff\x00" "a")},
    {"value length 0x7fffffff", S("\x00\xff\xff\xff\xff" "a")},
    {"a good pair, then a cut one", S("\x01\x01" "ab" "\x03")},
    {"a good pair, then one too long", S("\x01\x01" "ab" "\x01\x01" "c")},
};

TEST("fcgi: malformed name-value pairs are an error at the empty PARAMS record")
{
    for (size_t i = 0; i < sizeof bad_pairs / sizeof *bad_pairs; i++) {
        for (size_t chunk = 0; chunk <= 1; chunk++) {
            sg_buf in = SG_BUF_INIT, out = SG_BUF_INIT;
            begin(&in, 1, FCGI_RESPONDER, 0);
            const char *d = bad_pairs[i].pairs;
            size_t n = bad_pairs[i].len, c = chunk ? chunk : n;
            for (size_t off = 0; off < n; off += c)
                rec(&in, FCGI_PARAMS, 1, d + off, n - off < c ? n - off : c);
            size_t before = in.len;
            rec(&in, FCGI_PARAMS, 1, NULL, 0);
            stream(&in, FCGI_STDIN, 1, NULL, 0, 0);

            sg_fcgi_parser p;
            size_t used;
            sg_fcgi_parser_init(&p, 100);
            int rc = parse1(&p, in.data, before, &used, &out);
            CHECK_INT(rc, SG_FCGI_MORE);
            CHECK_INT(used, before);
            rc = parse1(&p, in.data + before, in.len - before, &used, &out);
            if (rc != SG_FCGI_ERROR)
                printf("#   case %zu (%s)\n", i, bad_pairs[i].name);
            CHECK_INT(rc, SG_FCGI_ERROR);
            CHECK_INT(out.len, 0);
            sg_fcgi_parser_free(&p);
            sg_buf_free(&in);
            sg_buf_free(&out);
        }
    }
}

TEST("fcgi: a BEGIN_REQUEST shorter than its 8-byte body is an error")
{
    sg_buf in = SG_BUF_INIT, out = SG_BUF_INIT;
    rec(&in, FCGI_BEGIN_REQUEST, 1, "\x00\x01\x00", 3);
    sg_fcgi_parser p;
    size_t used;
    sg_fcgi_parser_init(&p, 100);
    CHECK_INT(parse1(&p, in.data, in.len, &used, &out), SG_FCGI_ERROR);
    sg_fcgi_parser_free(&p);
    sg_buf_free(&in);
    sg_buf_free(&out);
}

/* ---- roles and multiplexing ------------------------------------------ */

TEST("fcgi: a role other than RESPONDER gets FCGI_UNKNOWN_ROLE; the next request is read")
{
    static const unsigned roles[] = {0, FCGI_AUTHORIZER, FCGI_FILTER, 4, 0x0100, 0x0101,
                                     0xffff};
    for (size_t i = 0; i < sizeof roles / sizeof *roles; i++) {
        sg_buf in = SG_BUF_INIT, out = SG_BUF_INIT, pairs = SG_BUF_INIT;
        nv(&pairs, "REQUEST_METHOD", "PUT", false, false);
        begin(&in, 5, roles[i], FCGI_KEEP_CONN);
        /* the rest of the refused request, as a web server sends it anyway */
        stream(&in, FCGI_PARAMS, 5, pairs.data, pairs.len, 0);
        stream(&in, FCGI_STDIN, 5, S("refused"), 0);
        rec(&in, FCGI_DATA, 5, S("filter data"));
        rec(&in, FCGI_DATA, 5, NULL, 0);
        size_t refused = in.len;
        simple_request(&in, 6, 0, "GET", "ok");
        for (size_t s = 0; s < NSTEPS; s++) {
            sg_fcgi_parser p;
            size_t done;
            sg_fcgi_parser_init(&p, 100);
            sg_buf_reset(&out);
            int rc = feed(&p, in.data, in.len, steps[s], &done, &out);
            CHECK_INT(rc, SG_FCGI_REQUEST);
            CHECK_INT(done, in.len);
            CHECK(only_end(&out, 5, FCGI_UNKNOWN_ROLE));
            CHECK_INT(p.req.id, 6);
            CHECK_STR(sg_fcgi_param(&p.req, "REQUEST_METHOD"), "GET");
            CHECK_MEM(sg_buf_str(&p.req.body), p.req.body.len, "ok", 2);
            sg_fcgi_parser_free(&p);

            /* the refused request alone: nothing but the END_REQUEST */
            sg_fcgi_parser_init(&p, 100);
            sg_buf_reset(&out);
            rc = feed(&p, in.data, refused, steps[s], &done, &out);
            CHECK_INT(rc, SG_FCGI_MORE);
            CHECK_INT(done, refused);
            CHECK(only_end(&out, 5, FCGI_UNKNOWN_ROLE));
            sg_fcgi_parser_free(&p);
        }
        sg_buf_free(&in);
        sg_buf_free(&out);
        sg_buf_free(&pairs);
    }
}

TEST("fcgi: a BEGIN_REQUEST for another id while one is open gets FCGI_CANT_MPX_CONN")
{
    /* while the parameters, then the body, of request 1 are read */
    for (int at = 0; at < 2; at++) {
        sg_buf in = SG_BUF_INIT, out = SG_BUF_INIT, pairs = SG_BUF_INIT;
        nv(&pairs, "REQUEST_METHOD", "POST", false, false);
        nv(&pairs, "HTTP_X", "one", false, false);
        begin(&in, 1, FCGI_RESPONDER, FCGI_KEEP_CONN);
        rec(&in, FCGI_PARAMS, 1, pairs.data, 5);
        if (at == 1) {
            rec(&in, FCGI_PARAMS, 1, pairs.data + 5, pairs.len - 5);
            rec(&in, FCGI_PARAMS, 1, NULL, 0);
            rec(&in, FCGI_STDIN, 1, S("bo"));
        }
        begin(&in, 2, FCGI_RESPONDER, FCGI_KEEP_CONN);
        rec(&in, FCGI_PARAMS, 2, S("\x06\x03HTTP_Xtwo"));
        rec(&in, FCGI_PARAMS, 2, NULL, 0);
        stream(&in, FCGI_STDIN, 2, S("other body"), 0);
        rec(&in, FCGI_ABORT_REQUEST, 2, NULL, 0);
        if (at == 0) {
            rec(&in, FCGI_PARAMS, 1, pairs.data + 5, pairs.len - 5);
            rec(&in, FCGI_PARAMS, 1, NULL, 0);
            rec(&in, FCGI_STDIN, 1, S("bo"));
        }
        stream(&in, FCGI_STDIN, 1, S("dy"), 0);
        for (size_t s = 0; s < NSTEPS; s++) {
            sg_fcgi_parser p;
            size_t done;
            sg_fcgi_parser_init(&p, 100);
            sg_buf_reset(&out);
            int rc = feed(&p, in.data, in.len, steps[s], &done, &out);
            CHECK_INT(rc, SG_FCGI_REQUEST);
            CHECK_INT(done, in.len);
            CHECK(only_end(&out, 2, FCGI_CANT_MPX_CONN));
            CHECK_INT(p.req.id, 1);
            CHECK(p.req.keep_conn);
            CHECK_STR(sg_fcgi_param(&p.req, "HTTP_X"), "one");
            CHECK_MEM(sg_buf_str(&p.req.body), p.req.body.len, "body", 4);
            sg_fcgi_parser_free(&p);
        }
        sg_buf_free(&in);
        sg_buf_free(&out);
        sg_buf_free(&pairs);
    }
}

TEST("fcgi: a BEGIN_REQUEST for another id while a request waits for its answer: CANT_MPX_CONN")
{
    sg_buf in = SG_BUF_INIT, out = SG_BUF_INIT;
    simple_request(&in, 1, FCGI_KEEP_CONN, "GET", "");
    size_t first = in.len;
    begin(&in, 2, FCGI_RESPONDER, 0);
    sg_fcgi_parser p;
    size_t used;
    sg_fcgi_parser_init(&p, 100);
    CHECK_INT(parse1(&p, in.data, in.len, &used, &out), SG_FCGI_REQUEST);
    CHECK_INT(used, first);
    CHECK_INT(parse1(&p, in.data + first, in.len - first, &used, &out), SG_FCGI_MORE);
    CHECK_INT(used, in.len - first);
    CHECK(only_end(&out, 2, FCGI_CANT_MPX_CONN));
    CHECK_INT(p.req.id, 1); /* still there, to be answered */
    CHECK_STR(sg_fcgi_param(&p.req, "REQUEST_METHOD"), "GET");
    sg_fcgi_done(&p);
    sg_fcgi_parser_free(&p);
    sg_buf_free(&in);
    sg_buf_free(&out);
}

TEST("fcgi: a BEGIN_REQUEST for the open request's id is an error")
{
    /* while params are read, while the body is read, while it waits for its answer */
    for (int at = 0; at < 3; at++) {
        sg_buf in = SG_BUF_INIT, out = SG_BUF_INIT;
        begin(&in, 4, FCGI_RESPONDER, 0);
        if (at >= 1)
            stream(&in, FCGI_PARAMS, 4, S("\x01\x01" "ab"), 0);
        if (at >= 2)
            stream(&in, FCGI_STDIN, 4, NULL, 0, 0);
        size_t first = in.len;
        begin(&in, 4, FCGI_RESPONDER, 0);
        sg_fcgi_parser p;
        size_t used;
        sg_fcgi_parser_init(&p, 100);
        int rc = parse1(&p, in.data, in.len, &used, &out);
        if (at == 2) {
            CHECK_INT(rc, SG_FCGI_REQUEST);
            CHECK_INT(used, first);
            rc = parse1(&p, in.data + first, in.len - first, &used, &out);
        }
        CHECK_INT(rc, SG_FCGI_ERROR);
        CHECK_INT(out.len, 0);
        sg_fcgi_parser_free(&p);
        sg_buf_free(&in);
        sg_buf_free(&out);
    }
}

/* ---- aborts ------------------------------------------------------------ */

TEST("fcgi: ABORT_REQUEST before the request is complete: END_REQUEST, no event, idle again")
{
    /* after BEGIN_REQUEST, during PARAMS, after PARAMS, during STDIN */
    for (int at = 0; at < 4; at++) {
        sg_buf in = SG_BUF_INIT, out = SG_BUF_INIT, pairs = SG_BUF_INIT;
        nv(&pairs, "REQUEST_METHOD", "POST", false, false);
        nv(&pairs, "ABORTED", "yes", false, false);
        begin(&in, 3, FCGI_RESPONDER, FCGI_KEEP_CONN);
        if (at >= 1)
            rec(&in, FCGI_PARAMS, 3, pairs.data, pairs.len);
        if (at >= 2)
            rec(&in, FCGI_PARAMS, 3, NULL, 0);
        if (at >= 3)
            rec(&in, FCGI_STDIN, 3, S("part"));
        rec(&in, FCGI_ABORT_REQUEST, 3, NULL, 0);
        size_t aborted = in.len;
        /* what the web server may still send for it: dropped */
        rec(&in, FCGI_STDIN, 3, S("late"));
        rec(&in, FCGI_STDIN, 3, NULL, 0);
        /* another request: read (not refused as a second one) */
        simple_request(&in, 8, 0, "GET", "next");
        for (size_t s = 0; s < NSTEPS; s++) {
            sg_fcgi_parser p;
            size_t done;
            sg_fcgi_parser_init(&p, 100);
            sg_buf_reset(&out);
            int rc = feed(&p, in.data, aborted, steps[s], &done, &out);
            CHECK_INT(rc, SG_FCGI_MORE);
            CHECK_INT(done, aborted);
            CHECK(only_end(&out, 3, FCGI_REQUEST_COMPLETE));
            sg_buf_reset(&out);
            rc = feed(&p, in.data + aborted, in.len - aborted, steps[s], &done, &out);
            CHECK_INT(rc, SG_FCGI_REQUEST);
            CHECK_INT(done, in.len - aborted);
            CHECK_INT(out.len, 0);
            CHECK_INT(p.req.id, 8);
            CHECK(!p.req.keep_conn);
            CHECK(sg_fcgi_param(&p.req, "ABORTED") == NULL);
            CHECK_MEM(sg_buf_str(&p.req.body), p.req.body.len, "next", 4);
            sg_fcgi_parser_free(&p);

            /* the same id begun again after its abort is a new request */
            sg_fcgi_parser_init(&p, 100);
            sg_buf_reset(&out);
            sg_buf again = SG_BUF_INIT;
            must(sg_buf_append(&again, in.data, aborted));
            simple_request(&again, 3, 0, "GET", "again");
            rc = feed(&p, again.data, again.len, steps[s], &done, &out);
            CHECK_INT(rc, SG_FCGI_REQUEST);
            CHECK_INT(done, again.len);
            CHECK(only_end(&out, 3, FCGI_REQUEST_COMPLETE));
            CHECK_INT(p.req.id, 3);
            CHECK(sg_fcgi_param(&p.req, "ABORTED") == NULL);
            CHECK_MEM(sg_buf_str(&p.req.body), p.req.body.len, "again", 5);
            sg_fcgi_parser_free(&p);
            sg_buf_free(&again);
        }
        sg_buf_free(&in);
        sg_buf_free(&out);
        sg_buf_free(&pairs);
    }
}

TEST("fcgi: ABORT_REQUEST after the request is complete: SG_FCGI_ABORT and END_REQUEST")
{
    sg_buf in = SG_BUF_INIT, out = SG_BUF_INIT;
    simple_request(&in, 0x1234, FCGI_KEEP_CONN, "GET", "");
    size_t first = in.len;
    rec(&in, FCGI_ABORT_REQUEST, 0x1234, NULL, 0);
    size_t second = in.len;
    simple_request(&in, 0x1234, FCGI_KEEP_CONN, "POST", "after");
    sg_fcgi_parser p;
    size_t used;
    sg_fcgi_parser_init(&p, 100);
    CHECK_INT(parse1(&p, in.data, in.len, &used, &out), SG_FCGI_REQUEST);
    CHECK_INT(used, first);
    CHECK_INT(out.len, 0);
    CHECK_INT(parse1(&p, in.data + first, in.len - first, &used, &out), SG_FCGI_ABORT);
    CHECK_INT(used, second - first);
    CHECK_INT(p.req.id, 0x1234);
    CHECK(only_end(&out, 0x1234, FCGI_REQUEST_COMPLETE));
    sg_fcgi_done(&p);
    sg_buf_reset(&out);
    CHECK_INT(parse1(&p, in.data + second, in.len - second, &used, &out), SG_FCGI_REQUEST);
    CHECK_INT(used, in.len - second);
    CHECK_INT(out.len, 0);
    CHECK_STR(sg_fcgi_param(&p.req, "REQUEST_METHOD"), "POST");
    CHECK_MEM(sg_buf_str(&p.req.body), p.req.body.len, "after", 5);
    sg_fcgi_parser_free(&p);

    /* an ABORT_REQUEST for another id while one waits: dropped */
    sg_fcgi_parser_init(&p, 100);
    sg_buf_reset(&out);
    sg_buf_reset(&in);
    simple_request(&in, 1, FCGI_KEEP_CONN, "GET", "");
    first = in.len;
    rec(&in, FCGI_ABORT_REQUEST, 2, NULL, 0);
    CHECK_INT(parse1(&p, in.data, in.len, &used, &out), SG_FCGI_REQUEST);
    CHECK_INT(parse1(&p, in.data + first, in.len - first, &used, &out), SG_FCGI_MORE);
    CHECK_INT(used, in.len - first);
    CHECK_INT(out.len, 0);
    CHECK_INT(p.req.id, 1);
    sg_fcgi_parser_free(&p); /* without sg_fcgi_done */
    sg_buf_free(&in);
    sg_buf_free(&out);
}

TEST("fcgi: the parser can be freed after an abort without sg_fcgi_done")
{
    sg_buf in = SG_BUF_INIT, out = SG_BUF_INIT;
    simple_request(&in, 1, 0, "POST", "some body");
    size_t first = in.len;
    rec(&in, FCGI_ABORT_REQUEST, 1, NULL, 0);
    sg_fcgi_parser p;
    size_t used;
    sg_fcgi_parser_init(&p, 100);
    CHECK_INT(parse1(&p, in.data, in.len, &used, &out), SG_FCGI_REQUEST);
    CHECK_INT(parse1(&p, in.data + first, in.len - first, &used, &out), SG_FCGI_ABORT);
    sg_fcgi_parser_free(&p);
    sg_buf_free(&in);
    sg_buf_free(&out);
}

/* ---- management records ------------------------------------------------ */

/* The pairs of a GET_VALUES_RESULT, in order, as "NAME=value;" */
static bool result_pairs(const struct rec *r, sg_buf *s)
{
    size_t pos = 0;
    while (pos < r->clen) {
        size_t l[2];
        for (int k = 0; k < 2; k++) {
            if (pos >= r->clen)
                return false;
            if (r->c[pos] < 0x80) {
                l[k] = r->c[pos++];
            } else {
                if (r->clen - pos < 4)
                    return false;
                l[k] = ((size_t)(r->c[pos] & 0x7f) << 24) | ((size_t)r->c[pos + 1] << 16) |
                       ((size_t)r->c[pos + 2] << 8) | r->c[pos + 3];
                pos += 4;
            }
        }
        if (l[0] > r->clen - pos || l[1] > r->clen - pos - l[0])
            return false;
        must(sg_buf_append(s, r->c + pos, l[0]));
        must(sg_buf_putc(s, '='));
        must(sg_buf_append(s, r->c + pos + l[0], l[1]));
        must(sg_buf_putc(s, ';'));
        pos += l[0] + l[1];
    }
    return true;
}

/* "FCGI_MAX_CONNS=10000;" -> the value is a positive decimal number */
static bool positive(const char *s, const char *name)
{
    const char *v = strstr(s, name);
    if (!v)
        return false;
    v += strlen(name);
    if (*v < '1' || *v > '9')
        return false;
    while (*v >= '0' && *v <= '9')
        v++;
    return *v == ';';
}

TEST("fcgi: FCGI_GET_VALUES is answered with exactly the variables known")
{
    sg_buf q = SG_BUF_INIT, in = SG_BUF_INIT, out = SG_BUF_INIT, s = SG_BUF_INIT;
    nv(&q, "FCGI_MPXS_CONNS", "", false, false);
    nv(&q, "FCGI_UNKNOWN", "", false, false);
    nv(&q, "FCGI_MAX_CONNS", "", false, false);
    nv(&q, "FCGI_MAX", "", false, false);            /* a prefix of two known ones */
    nv(&q, "FCGI_MAX_REQS_X", "", false, false);     /* a known one is its prefix */
    nv(&q, "FCGI_MAX_REQS", "", false, true);        /* four-byte length form */
    rec(&in, FCGI_GET_VALUES, 0, q.data, q.len);
    for (size_t st = 0; st < NSTEPS; st++) {
        sg_fcgi_parser p;
        size_t done;
        sg_fcgi_parser_init(&p, 100);
        sg_buf_reset(&out);
        CHECK_INT(feed(&p, in.data, in.len, steps[st], &done, &out), SG_FCGI_MORE);
        CHECK_INT(done, in.len);
        struct rec r[2];
        CHECK_INT(decode(out.data, out.len, r, 2), 1);
        CHECK_INT(r[0].type, FCGI_GET_VALUES_RESULT);
        CHECK_INT(r[0].id, 0);
        sg_buf_reset(&s);
        CHECK(result_pairs(&r[0], &s));
        /* in the order asked (the spec does not require it; the names do) */
        CHECK(strncmp(sg_buf_str(&s), "FCGI_MPXS_CONNS=0;FCGI_MAX_CONNS=", 33) == 0);
        CHECK(positive(sg_buf_str(&s), ";FCGI_MAX_CONNS="));
        CHECK(positive(sg_buf_str(&s), ";FCGI_MAX_REQS="));
        CHECK(strstr(sg_buf_str(&s), "UNKNOWN") == NULL);
        CHECK(strstr(sg_buf_str(&s), "FCGI_MAX=") == NULL);
        CHECK(strstr(sg_buf_str(&s), "FCGI_MAX_REQS_X") == NULL);
        size_t semis = 0;
        for (const char *c = sg_buf_str(&s); *c; c++)
            semis += *c == ';';
        CHECK_INT(semis, 3);
        sg_fcgi_parser_free(&p);
    }

    /* an empty query, and one of unknown names only: an empty result */
    for (int k = 0; k < 2; k++) {
        sg_fcgi_parser p;
        size_t used;
        sg_buf_reset(&in);
        sg_buf_reset(&out);
        if (k == 0)
            rec(&in, FCGI_GET_VALUES, 0, NULL, 0);
        else
            rec(&in, FCGI_GET_VALUES, 0, S("\x03\x00" "FOO" "\x04\x01" "FCGIx"));
        sg_fcgi_parser_init(&p, 100);
        CHECK_INT(parse1(&p, in.data, in.len, &used, &out), SG_FCGI_MORE);
        CHECK_INT(used, in.len);
        struct rec r[2];
        CHECK_INT(decode(out.data, out.len, r, 2), 1);
        CHECK_INT(r[0].type, FCGI_GET_VALUES_RESULT);
        CHECK_INT(r[0].id, 0);
        CHECK_INT(r[0].clen, 0);
        sg_fcgi_parser_free(&p);
    }
    sg_buf_free(&q);
    sg_buf_free(&in);
    sg_buf_free(&out);
    sg_buf_free(&s);
}

TEST("fcgi: FCGI_GET_VALUES in the middle of a request is answered; the request goes on")
{
    sg_buf in = SG_BUF_INIT, out = SG_BUF_INIT;
    begin(&in, 1, FCGI_RESPONDER, 0);
    rec(&in, FCGI_PARAMS, 1, S("\x01\x01" "ab"));
    rec(&in, FCGI_GET_VALUES, 0, S("\x0f\x00" "FCGI_MPXS_CONNS"));
    rec(&in, FCGI_PARAMS, 1, NULL, 0);
    stream(&in, FCGI_STDIN, 1, S("x"), 0);
    sg_fcgi_parser p;
    size_t used;
    sg_fcgi_parser_init(&p, 100);
    CHECK_INT(parse1(&p, in.data, in.len, &used, &out), SG_FCGI_REQUEST);
    CHECK_INT(used, in.len);
    struct rec r[2];
    CHECK_INT(decode(out.data, out.len, r, 2), 1);
    CHECK_INT(r[0].type, FCGI_GET_VALUES_RESULT);
    CHECK_MEM(r[0].c, r[0].clen, "\x0f\x01" "FCGI_MPXS_CONNS0", 18);
    CHECK_STR(sg_fcgi_param(&p.req, "a"), "b");
    sg_fcgi_parser_free(&p);
    sg_buf_free(&in);
    sg_buf_free(&out);
}

/* A GET_VALUES record that repeats known names: each is answered once, so
 * the answer fits one record (4095 times "FCGI_MAX_CONNS" once gave 85,995
 * bytes of answer under a header that said 20,459). */
TEST("fcgi: the answer to a large FCGI_GET_VALUES is well-formed records")
{
    sg_buf q = SG_BUF_INIT, in = SG_BUF_INIT, out = SG_BUF_INIT;
    while (q.len + 16 <= MAX_CONTENT)
        nv(&q, "FCGI_MAX_CONNS", "", false, false);
    rec(&in, FCGI_GET_VALUES, 0, q.data, q.len);
    sg_fcgi_parser p;
    size_t used;
    sg_fcgi_parser_init(&p, 100);
    CHECK_INT(parse1(&p, in.data, in.len, &used, &out), SG_FCGI_MORE);
    CHECK_INT(used, in.len);
    struct rec r[4];
    int n = decode(out.data, out.len, r, 4);
    if (n < 0)
        printf("#   %zu bytes of answer, header says %u\n", out.len - HDR,
               out.len >= HDR ? ((unsigned char)out.data[4] << 8 | (unsigned char)out.data[5])
                              : 0);
    CHECK(n >= 1);
    for (int i = 0; i < n && i < 4; i++) {
        CHECK_INT(r[i].type, FCGI_GET_VALUES_RESULT);
        CHECK_INT(r[i].id, 0);
    }
    sg_fcgi_parser_free(&p);
    sg_buf_free(&q);
    sg_buf_free(&in);
    sg_buf_free(&out);
}

TEST("fcgi: an unknown management record gets FCGI_UNKNOWN_TYPE with its type")
{
    static const int types[] = {0, FCGI_BEGIN_REQUEST, FCGI_ABORT_REQUEST, FCGI_END_REQUEST,
                                FCGI_PARAMS, FCGI_STDIN, FCGI_STDOUT, FCGI_DATA,
                                FCGI_GET_VALUES_RESULT, FCGI_UNKNOWN_TYPE, 12, 0x80, 0xff};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        sg_buf in = SG_BUF_INIT, out = SG_BUF_INIT;
        rec_pad(&in, types[i], 0, S("\x00\x01\x01\x00\x00\x00\x00\x00"), 3);
        simple_request(&in, 1, 0, "GET", "");
        sg_fcgi_parser p;
        size_t used;
        sg_fcgi_parser_init(&p, 100);
        CHECK_INT(parse1(&p, in.data, in.len, &used, &out), SG_FCGI_REQUEST);
        CHECK_INT(used, in.len);
        struct rec r[2];
        int n = decode(out.data, out.len, r, 2);
        CHECK_INT(n, 1);
        if (n == 1) {
            CHECK_INT(r[0].type, FCGI_UNKNOWN_TYPE);
            CHECK_INT(r[0].id, 0);
            CHECK_INT(r[0].clen, 8);
            if (r[0].clen == 8) {
                CHECK_INT(r[0].c[0], types[i]);
                CHECK_MEM(r[0].c + 1, 7, "\0\0\0\0\0\0\0", 7);
            }
        }
        sg_fcgi_parser_free(&p);
        sg_buf_free(&in);
        sg_buf_free(&out);
    }
}

/* ---- records that are not for the open request ------------------------- */

static const int stray_types[] = {FCGI_ABORT_REQUEST, FCGI_END_REQUEST, FCGI_PARAMS, FCGI_STDIN,
                                  FCGI_STDOUT, FCGI_STDERR, FCGI_DATA, FCGI_GET_VALUES, 42};

TEST("fcgi: records for a request id that is not open are dropped")
{
    /* while idle, and while request 1 reads its parameters and its body */
    for (int at = 0; at < 3; at++) {
        sg_buf in = SG_BUF_INIT, out = SG_BUF_INIT;
        if (at >= 1) {
            begin(&in, 1, FCGI_RESPONDER, 0);
            rec(&in, FCGI_PARAMS, 1, S("\x01\x01" "ab"));
        }
        if (at >= 2) {
            rec(&in, FCGI_PARAMS, 1, NULL, 0);
            rec(&in, FCGI_STDIN, 1, S("bo"));
        }
        for (size_t i = 0; i < sizeof stray_types / sizeof *stray_types; i++) {
            rec(&in, stray_types[i], 7, S("stray"));
            rec(&in, stray_types[i], 7, NULL, 0);
            rec(&in, stray_types[i], 0x0100, S("stray")); /* 1 in the wrong byte */
        }
        size_t strays = in.len;
        if (at == 0)
            simple_request(&in, 1, 0, "GET", "body");
        if (at == 1) {
            rec(&in, FCGI_PARAMS, 1, NULL, 0);
            rec(&in, FCGI_STDIN, 1, S("bo"));
        }
        if (at >= 1)
            stream(&in, FCGI_STDIN, 1, S("dy"), 0);
        for (size_t s = 0; s < NSTEPS; s++) {
            sg_fcgi_parser p;
            size_t done;
            sg_fcgi_parser_init(&p, 100);
            sg_buf_reset(&out);
            int rc = feed(&p, in.data, strays, steps[s], &done, &out);
            CHECK_INT(rc, SG_FCGI_MORE);
            CHECK_INT(done, strays);
            CHECK_INT(out.len, 0);
            rc = feed(&p, in.data + strays, in.len - strays, steps[s], &done, &out);
            CHECK_INT(rc, SG_FCGI_REQUEST);
            CHECK_INT(done, in.len - strays);
            CHECK_INT(out.len, 0);
            CHECK_INT(p.req.id, 1);
            CHECK_MEM(sg_buf_str(&p.req.body), p.req.body.len, "body", 4);
            if (at >= 1)
                CHECK_STR(sg_fcgi_param(&p.req, "a"), "b");
            sg_fcgi_parser_free(&p);
        }
        sg_buf_free(&in);
        sg_buf_free(&out);
    }
}

TEST("fcgi: STDOUT, STDERR or END_REQUEST sent by the web server is an error")
{
    static const int types[] = {FCGI_STDOUT, FCGI_STDERR, FCGI_END_REQUEST};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        /* while the parameters are read, while the body is read */
        for (int at = 0; at < 2; at++) {
            for (int empty = 0; empty < 2; empty++) {
                sg_buf in = SG_BUF_INIT, out = SG_BUF_INIT;
                begin(&in, 1, FCGI_RESPONDER, 0);
                if (at == 1)
                    stream(&in, FCGI_PARAMS, 1, S("\x01\x01" "ab"), 0);
                size_t before = in.len;
                if (empty)
                    rec(&in, types[i], 1, NULL, 0);
                else
                    rec(&in, types[i], 1, S("Status: 200\r\n\r\n"));
                stream(&in, FCGI_STDIN, 1, NULL, 0, 0);
                sg_fcgi_parser p;
                size_t used;
                sg_fcgi_parser_init(&p, 100);
                CHECK_INT(parse1(&p, in.data, before, &used, &out), SG_FCGI_MORE);
                int rc = parse1(&p, in.data + before, in.len - before, &used, &out);
                if (rc != SG_FCGI_ERROR)
                    printf("#   type %d, at %d, empty %d\n", types[i], at, empty);
                CHECK_INT(rc, SG_FCGI_ERROR);
                sg_fcgi_parser_free(&p);
                sg_buf_free(&in);
                sg_buf_free(&out);
            }
        }
    }
}

TEST("fcgi: PARAMS after the empty PARAMS record, or STDIN after the empty STDIN, is an error")
{
    for (int k = 0; k < 2; k++) {
        sg_buf in = SG_BUF_INIT, out = SG_BUF_INIT;
        begin(&in, 1, FCGI_RESPONDER, 0);
        stream(&in, FCGI_PARAMS, 1, S("\x01\x01" "ab"), 0);
        size_t before = in.len;
        if (k == 0) {
            rec(&in, FCGI_PARAMS, 1, S("\x01\x01" "cd"));
        } else {
            rec(&in, FCGI_STDIN, 1, NULL, 0);
            before = in.len;
            rec(&in, FCGI_STDIN, 1, S("more"));
        }
        sg_fcgi_parser p;
        size_t used;
        sg_fcgi_parser_init(&p, 100);
        CHECK_INT(parse1(&p, in.data, before, &used, &out), k ? SG_FCGI_REQUEST : SG_FCGI_MORE);
        CHECK_INT(parse1(&p, in.data + before, in.len - before, &used, &out), SG_FCGI_ERROR);
        sg_fcgi_parser_free(&p);
        sg_buf_free(&in);
        sg_buf_free(&out);
    }
}

TEST("fcgi: DATA records (the FILTER role's stream) for the open request are ignored")
{
    sg_buf in = SG_BUF_INIT, out = SG_BUF_INIT;
    begin(&in, 1, FCGI_RESPONDER, 0);
    rec(&in, FCGI_DATA, 1, S("early"));
    stream(&in, FCGI_PARAMS, 1, S("\x01\x01" "ab"), 0);
    rec(&in, FCGI_DATA, 1, S("file data"));
    rec(&in, FCGI_STDIN, 1, S("bo"));
    rec(&in, FCGI_DATA, 1, NULL, 0);
    stream(&in, FCGI_STDIN, 1, S("dy"), 0);
    sg_fcgi_parser p;
    size_t used;
    sg_fcgi_parser_init(&p, 100);
    CHECK_INT(parse1(&p, in.data, in.len, &used, &out), SG_FCGI_REQUEST);
    CHECK_INT(used, in.len);
    CHECK_INT(out.len, 0);
    CHECK_STR(sg_fcgi_param(&p.req, "a"), "b");
    CHECK_MEM(sg_buf_str(&p.req.body), p.req.body.len, "body", 4);
    sg_fcgi_parser_free(&p);
    sg_buf_free(&in);
    sg_buf_free(&out);
}

/* ---- FCGI_KEEP_CONN: request after request ----------------------------- */

TEST("fcgi: keep_conn: two requests in one buffer, each read after sg_fcgi_done")
{
    sg_buf in = SG_BUF_INIT, out = SG_BUF_INIT, pairs = SG_BUF_INIT;
    nv(&pairs, "REQUEST_METHOD", "GET", false, false);
    nv(&pairs, "ONLY_FIRST", "1", false, false);
    nv(&pairs, "HTTP_X", "first", false, false);
    begin(&in, 1, FCGI_RESPONDER, FCGI_KEEP_CONN);
    stream_pad(&in, FCGI_PARAMS, 1, pairs.data, pairs.len, 4, 3);
    stream(&in, FCGI_STDIN, 1, S("first body"), 3);
    size_t first = in.len;
    sg_buf_reset(&pairs);
    nv(&pairs, "REQUEST_METHOD", "POST", false, false);
    nv(&pairs, "HTTP_X", "second", false, false);
    begin(&in, 1, FCGI_RESPONDER, FCGI_KEEP_CONN); /* the same id again, as nginx does */
    stream(&in, FCGI_PARAMS, 1, pairs.data, pairs.len, 0);
    stream(&in, FCGI_STDIN, 1, S("2nd"), 0);
    size_t second = in.len;
    begin(&in, 2, FCGI_RESPONDER, 0); /* a third, with another id, the last */
    stream(&in, FCGI_PARAMS, 2, NULL, 0, 0);
    stream(&in, FCGI_STDIN, 2, NULL, 0, 0);

    for (size_t s = 0; s < NSTEPS; s++) {
        sg_fcgi_parser p;
        size_t done;
        sg_fcgi_parser_init(&p, 100);
        sg_buf_reset(&out);
        int rc = feed(&p, in.data, in.len, steps[s], &done, &out);
        CHECK_INT(rc, SG_FCGI_REQUEST);
        CHECK_INT(done, first);
        CHECK_INT(p.req.id, 1);
        CHECK(p.req.keep_conn);
        CHECK_STR(sg_fcgi_param(&p.req, "ONLY_FIRST"), "1");
        CHECK_STR(sg_fcgi_param(&p.req, "HTTP_X"), "first");
        CHECK_MEM(sg_buf_str(&p.req.body), p.req.body.len, "first body", 10);
        CHECK_INT(sg_fcgi_answer(&out, p.req.id, S("Status: 200 OK\r\n\r\n")), 0);
        sg_fcgi_done(&p);

        rc = feed(&p, in.data + first, in.len - first, steps[s], &done, &out);
        CHECK_INT(rc, SG_FCGI_REQUEST);
        CHECK_INT(done, second - first);
        CHECK_INT(p.req.id, 1);
        CHECK(p.req.keep_conn);
        CHECK(!p.req.too_large);
        CHECK(sg_fcgi_param(&p.req, "ONLY_FIRST") == NULL);
        CHECK_STR(sg_fcgi_param(&p.req, "REQUEST_METHOD"), "POST");
        CHECK_STR(sg_fcgi_param(&p.req, "HTTP_X"), "second");
        CHECK_MEM(sg_buf_str(&p.req.body), p.req.body.len, "2nd", 3);
        sg_fcgi_done(&p);

        rc = feed(&p, in.data + second, in.len - second, steps[s], &done, &out);
        CHECK_INT(rc, SG_FCGI_REQUEST);
        CHECK_INT(done, in.len - second);
        CHECK_INT(p.req.id, 2);
        CHECK(!p.req.keep_conn);
        CHECK(sg_fcgi_param(&p.req, "REQUEST_METHOD") == NULL);
        CHECK_INT(p.req.body.len, 0);
        /* only the answer written above */
        struct rec r[4];
        CHECK_INT(decode(out.data, out.len, r, 4), 3);
        sg_fcgi_parser_free(&p); /* the third was never done */
    }
    sg_buf_free(&in);
    sg_buf_free(&out);
    sg_buf_free(&pairs);
}

TEST("fcgi: keep_conn: a too_large request does not make the next one too_large")
{
    sg_buf in = SG_BUF_INIT, out = SG_BUF_INIT;
    simple_request(&in, 1, FCGI_KEEP_CONN, "POST", "0123456789abcdef");
    size_t first = in.len;
    simple_request(&in, 1, FCGI_KEEP_CONN, "POST", "small");
    sg_fcgi_parser p;
    size_t used;
    sg_fcgi_parser_init(&p, 8);
    CHECK_INT(parse1(&p, in.data, in.len, &used, &out), SG_FCGI_REQUEST);
    CHECK_INT(used, first);
    CHECK(p.req.too_large);
    sg_fcgi_done(&p);
    CHECK_INT(parse1(&p, in.data + first, in.len - first, &used, &out), SG_FCGI_REQUEST);
    CHECK(!p.req.too_large);
    CHECK_MEM(sg_buf_str(&p.req.body), p.req.body.len, "small", 5);
    CHECK_INT(p.max_body, 8);
    sg_fcgi_parser_free(&p);
    sg_buf_free(&in);
    sg_buf_free(&out);
}

/* ---- answers ----------------------------------------------------------- */

static char big_resp[150000];

__attribute__((constructor)) static void fill_resp(void)
{
    static const char head[] = "Status: 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n";
    memcpy(big_resp, head, sizeof head - 1);
    for (size_t i = sizeof head - 1; i < sizeof big_resp; i++)
        big_resp[i] = (char)(i * 13 + i / 256);
}

static const struct {
    const char *name;
    unsigned id;
    const char *resp;
    size_t len;
} answers[] = {
    {"empty", 1, S("")},
    {"small", 2, S("Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nok")},
    {"with NULs", 0x0100, S("Status: 200 OK\r\n\r\n\0\x01\0")},
    {"65535 bytes", 0xffff, big_resp, 65535},
    {"65536 bytes", 0x1234, big_resp, 65536},
    {"150000 bytes", 7, big_resp, sizeof big_resp},
};

TEST("fcgi: sg_fcgi_answer: STDOUT records of the response, the empty STDOUT, END_REQUEST")
{
    for (size_t i = 0; i < sizeof answers / sizeof *answers; i++) {
        int failed = 0, *outer = tap_failed;
        tap_failed = &failed;
        sg_buf out = SG_BUF_INIT, got = SG_BUF_INIT;
        must(sg_buf_append(&out, S("already there")));
        CHECK_INT(sg_fcgi_answer(&out, (uint16_t)answers[i].id, answers[i].resp,
                                 answers[i].len), 0);
        CHECK(out.len > 13 && memcmp(out.data, "already there", 13) == 0);
        struct rec r[16];
        int n = decode(out.data + 13, out.len - 13, r, 16);
        CHECK(n >= 2 && n <= 16);
        if (n >= 2 && n <= 16) {
            for (int k = 0; k < n - 2; k++) {
                CHECK_INT(r[k].type, FCGI_STDOUT);
                CHECK_INT(r[k].id, answers[i].id);
                CHECK(r[k].clen > 0 && r[k].clen <= MAX_CONTENT);
                must(sg_buf_append(&got, r[k].c, r[k].clen));
            }
            CHECK_MEM(sg_buf_str(&got), got.len, answers[i].resp, answers[i].len);
            CHECK_INT(n - 2, (answers[i].len + MAX_CONTENT - 1) / MAX_CONTENT);
            CHECK_INT(r[n - 2].type, FCGI_STDOUT);
            CHECK_INT(r[n - 2].id, answers[i].id);
            CHECK_INT(r[n - 2].clen, 0);
            CHECK(is_end(&r[n - 1], answers[i].id, FCGI_REQUEST_COMPLETE));
        }
        sg_buf_free(&out);
        sg_buf_free(&got);
        tap_failed = outer;
        if (failed) {
            printf("#   case %zu (%s)\n", i, answers[i].name);
            *tap_failed = 1;
        }
    }
}

/* ---- reads and frees, whatever the state ------------------------------- */

/* A few streams, each cut after every byte: a parse of exactly that many
 * bytes (ASan: nothing read beyond), then sg_fcgi_parser_free in the state
 * it was left (LSan: nothing leaks). */
TEST("fcgi: every prefix of many streams: no read beyond len, no leak on free")
{
    sg_buf streams[10];
    for (size_t i = 0; i < 10; i++)
        sg_buf_init(&streams[i]);
    simple_request(&streams[0], 1, FCGI_KEEP_CONN, "POST", "body");
    simple_request(&streams[0], 1, FCGI_KEEP_CONN, "GET", "");
    build_case(&streams[1], &req_cases[3]);
    begin(&streams[2], 5, FCGI_AUTHORIZER, 0);
    simple_request(&streams[2], 6, 0, "GET", "");
    begin(&streams[3], 1, FCGI_RESPONDER, 0);
    rec(&streams[3], FCGI_PARAMS, 1, S("\x01\x01" "ab"));
    begin(&streams[3], 2, FCGI_RESPONDER, 0);
    rec(&streams[3], FCGI_ABORT_REQUEST, 1, NULL, 0);
    simple_request(&streams[4], 1, 0, "POST", "abc");
    rec(&streams[4], FCGI_ABORT_REQUEST, 1, NULL, 0);
    rec(&streams[5], FCGI_GET_VALUES, 0, S("\x0e\x00" "FCGI_MAX_CONNS" "\x0d\x00" "FCGI_MAX_REQS"));
    rec(&streams[5], 0x42, 0, S("x"));
    simple_request(&streams[6], 1, 0, "POST", "0123456789abcdef"); /* too large */
    begin(&streams[7], 1, FCGI_RESPONDER, 0);
    stream(&streams[7], FCGI_PARAMS, 1, S("\x05\x01" "abc"), 1); /* malformed */
    simple_request(&streams[8], 1, 0, "GET", "");
    rec(&streams[8], FCGI_STDOUT, 1, S("x"));
    begin(&streams[9], 1, FCGI_RESPONDER, 0);
    rec_pad(&streams[9], FCGI_PARAMS, 1, S("\x01\x02" "abc"), 200);
    rec_pad(&streams[9], FCGI_PARAMS, 1, NULL, 0, 1);
    rec_pad(&streams[9], FCGI_STDIN, 1, S("x"), 255);
    rec_pad(&streams[9], FCGI_STDIN, 1, NULL, 0, 255);

    for (size_t i = 0; i < 10; i++) {
        for (size_t n = 0; n <= streams[i].len; n++) {
            sg_fcgi_parser p;
            sg_buf out = SG_BUF_INIT;
            size_t used, start = 0;
            sg_fcgi_parser_init(&p, 8);
            /* as far as it goes, through every event */
            for (int k = 0; k < 20; k++) {
                int rc = parse1(&p, streams[i].data + start, n - start, &used, &out);
                if (rc == SG_FCGI_ERROR)
                    break;
                CHECK(used <= n - start);
                if (used > n - start)
                    break;
                start += used;
                if (rc == SG_FCGI_MORE)
                    break;
                if (k % 2 == 0 && rc == SG_FCGI_REQUEST)
                    continue; /* not done: the next parse sees the request still open */
                sg_fcgi_done(&p);
            }
            sg_fcgi_parser_free(&p);
            sg_buf_free(&out);
        }
    }
    for (size_t i = 0; i < 10; i++)
        sg_buf_free(&streams[i]);
}

TEST("fcgi: sg_fcgi_parser_free twice, and sg_fcgi_done on an idle parser, are harmless")
{
    sg_fcgi_parser p;
    sg_fcgi_parser_init(&p, 10);
    sg_fcgi_done(&p);
    sg_fcgi_parser_free(&p);
    sg_fcgi_parser_free(&p);
    CHECK(p.req.envp == NULL);
    CHECK(p.req.body.data == NULL);
    CHECK(p.params.data == NULL);
}

int main(void) { return tap_run(); }
