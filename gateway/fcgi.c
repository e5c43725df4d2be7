/* fcgi.c - the FastCGI responder protocol as a pure codec. See fcgi.h.
 *
 * Record layout (FastCGI 1.0): version (1), type, request id (2, big
 * endian), content length (2), padding length, reserved; the content; the
 * padding. Name-value pairs: each length is one byte below 128, else four
 * bytes with the top bit set. */
#include "fcgi.h"

#include <stdlib.h>
#include <string.h>

enum {
    T_BEGIN_REQUEST = 1, T_ABORT_REQUEST = 2, T_END_REQUEST = 3, T_PARAMS = 4, T_STDIN = 5,
    T_STDOUT = 6, T_STDERR = 7, T_DATA = 8, T_GET_VALUES = 9, T_GET_VALUES_RESULT = 10,
    T_UNKNOWN_TYPE = 11,
};
enum { ROLE_RESPONDER = 1, FLAG_KEEP_CONN = 1 };
enum { REQUEST_COMPLETE = 0, CANT_MPX_CONN = 1, UNKNOWN_ROLE = 3 };
enum { HEADER = 8, MAX_CONTENT = 65535 };

/* parser states */
enum { ST_IDLE, ST_PARAMS, ST_STDIN, ST_READY };

void sg_fcgi_parser_init(sg_fcgi_parser *p, size_t max_body)
{
    memset(p, 0, sizeof *p);
    p->max_body = max_body;
    sg_buf_init(&p->req.body);
    sg_buf_init(&p->params);
}

static void req_clear(sg_fcgi_parser *p)
{
    free(p->req.envp);
    p->req.envp = NULL;
    sg_buf_free(&p->req.body);
    sg_buf_free(&p->params);
    p->req.id = 0;
    p->req.keep_conn = false;
    p->req.too_large = false;
    p->state = ST_IDLE;
}

void sg_fcgi_parser_free(sg_fcgi_parser *p) { req_clear(p); }

void sg_fcgi_done(sg_fcgi_parser *p) { req_clear(p); }

static int put_header(sg_buf *out, int type, uint16_t id, size_t len)
{
    unsigned char h[HEADER] = {1, (unsigned char)type, (unsigned char)(id >> 8),
                               (unsigned char)id, (unsigned char)(len >> 8),
                               (unsigned char)len, 0, 0};
    return sg_buf_append(out, h, sizeof h);
}

static int end_request(sg_buf *out, uint16_t id, int protocol_status)
{
    unsigned char body[8] = {0, 0, 0, 0, (unsigned char)protocol_status, 0, 0, 0};
    return put_header(out, T_END_REQUEST, id, sizeof body) < 0 ||
                   sg_buf_append(out, body, sizeof body) < 0
               ? -1 : 0;
}

/* One name-value length at *pos of buf[0..len): -1 when cut short. */
static long nv_len(const unsigned char *buf, size_t len, size_t *pos)
{
    if (*pos >= len)
        return -1;
    if (buf[*pos] < 0x80)
        return buf[(*pos)++];
    if (len - *pos < 4)
        return -1;
    const unsigned char *b = buf + *pos;
    *pos += 4;
    return (long)(((unsigned long)(b[0] & 0x7f) << 24) | ((unsigned long)b[1] << 16) |
                  ((unsigned long)b[2] << 8) | b[3]);
}

/* Walk the name-value pairs of buf: fn for each; -1 when malformed. */
static int nv_walk(const unsigned char *buf, size_t len,
                   int (*fn)(void *ud, const unsigned char *name, size_t nlen,
                             const unsigned char *value, size_t vlen),
                   void *ud)
{
    size_t pos = 0;
    while (pos < len) {
        long n = nv_len(buf, len, &pos), v = n < 0 ? -1 : nv_len(buf, len, &pos);
        if (v < 0 || (size_t)n > len - pos || (size_t)v > len - pos - (size_t)n)
            return -1;
        if (fn(ud, buf + pos, (size_t)n, buf + pos + n, (size_t)v) < 0)
            return -1;
        pos += (size_t)n + (size_t)v;
    }
    return 0;
}

struct envp_build { size_t count, bytes; char **envp; char *store; };

static int envp_measure(void *ud, const unsigned char *name, size_t nlen,
                        const unsigned char *value, size_t vlen)
{
    (void)name, (void)value;
    struct envp_build *b = ud;
    b->count++;
    b->bytes += nlen + 1 + vlen + 1;
    return 0;
}

static int envp_fill(void *ud, const unsigned char *name, size_t nlen,
                     const unsigned char *value, size_t vlen)
{
    struct envp_build *b = ud;
    b->envp[b->count++] = b->store;
    memcpy(b->store, name, nlen);
    b->store[nlen] = '=';
    memcpy(b->store + nlen + 1, value, vlen);
    b->store[nlen + 1 + vlen] = '\0';
    b->store += nlen + 1 + vlen + 1;
    return 0;
}

/* p->params into p->req.envp. 0 or -1 (malformed, or out of memory). */
static int build_envp(sg_fcgi_parser *p)
{
    const unsigned char *raw = (const unsigned char *)p->params.data;
    struct envp_build b = {0, 0, NULL, NULL};
    if (nv_walk(raw, p->params.len, envp_measure, &b) < 0)
        return -1;
    size_t ptrs = (b.count + 1) * sizeof(char *);
    char **envp = malloc(ptrs + b.bytes);
    if (!envp)
        return -1;
    b.envp = envp;
    b.store = (char *)envp + ptrs;
    b.count = 0;
    nv_walk(raw, p->params.len, envp_fill, &b);
    envp[b.count] = NULL;
    p->req.envp = envp;
    sg_buf_free(&p->params);
    return 0;
}

/* The answer to FCGI_GET_VALUES: the variables asked for that we know,
 * each once however often it was asked (so the answer fits one record). */
struct values { sg_buf *pairs; unsigned done; };

static int put_nv_len(sg_buf *out, size_t n)
{
    if (n < 0x80)
        return sg_buf_putc(out, (char)n);
    unsigned char b[4] = {(unsigned char)(0x80 | (n >> 24)), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8), (unsigned char)n};
    return sg_buf_append(out, b, 4);
}

static int value_of(void *ud, const unsigned char *name, size_t nlen,
                    const unsigned char *value, size_t vlen)
{
    (void)value, (void)vlen;
    struct values *v = ud;
    static const struct { const char *name, *value; } known[] = {
        {"FCGI_MAX_CONNS", "10000"}, {"FCGI_MAX_REQS", "10000"}, {"FCGI_MPXS_CONNS", "0"},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        size_t kl = strlen(known[i].name), vl = strlen(known[i].value);
        if (kl != nlen || memcmp(name, known[i].name, kl) != 0 || (v->done & (1u << i)))
            continue;
        v->done |= 1u << i;
        if (put_nv_len(v->pairs, kl) < 0 || put_nv_len(v->pairs, vl) < 0 ||
            sg_buf_append(v->pairs, known[i].name, kl) < 0 ||
            sg_buf_append(v->pairs, known[i].value, vl) < 0)
            return -1;
    }
    return 0;
}

static int get_values(const unsigned char *content, size_t len, sg_buf *out)
{
    sg_buf pairs = SG_BUF_INIT;
    struct values v = {&pairs, 0};
    /* a malformed query gets what could be read of it */
    (void)nv_walk(content, len, value_of, &v);
    int rc = put_header(out, T_GET_VALUES_RESULT, 0, pairs.len) < 0 ||
                     sg_buf_append(out, pairs.data ? pairs.data : "", pairs.len) < 0
                 ? -1 : 0;
    sg_buf_free(&pairs);
    return rc;
}

int sg_fcgi_parse(sg_fcgi_parser *p, const void *in, size_t len, size_t *used, sg_buf *out)
{
    const unsigned char *b = in;
    *used = 0;
    while (len - *used >= HEADER) {
        const unsigned char *h = b + *used;
        size_t clen = ((size_t)h[4] << 8) | h[5], total = HEADER + clen + h[6];
        if (h[0] != 1)
            return SG_FCGI_ERROR;
        if (len - *used < total)
            return SG_FCGI_MORE;
        *used += total;
        int type = h[1];
        uint16_t id = (uint16_t)((h[2] << 8) | h[3]);
        const unsigned char *c = h + HEADER;

        if (id == 0) { /* management records */
            if (type == T_GET_VALUES) {
                if (get_values(c, clen, out) < 0)
                    return SG_FCGI_ERROR;
            } else {
                unsigned char body[8] = {(unsigned char)type, 0, 0, 0, 0, 0, 0, 0};
                if (put_header(out, T_UNKNOWN_TYPE, 0, sizeof body) < 0 ||
                    sg_buf_append(out, body, sizeof body) < 0)
                    return SG_FCGI_ERROR;
            }
            continue;
        }
        if (type == T_BEGIN_REQUEST) {
            if (clen < 8)
                return SG_FCGI_ERROR;
            int role = (c[0] << 8) | c[1];
            if (p->state != ST_IDLE) {
                if (id != p->req.id && end_request(out, id, CANT_MPX_CONN) < 0)
                    return SG_FCGI_ERROR;
                if (id == p->req.id)
                    return SG_FCGI_ERROR; /* the same id begun twice */
                continue;
            }
            if (role != ROLE_RESPONDER) {
                if (end_request(out, id, UNKNOWN_ROLE) < 0)
                    return SG_FCGI_ERROR;
                continue;
            }
            p->req.id = id;
            p->req.keep_conn = (c[2] & FLAG_KEEP_CONN) != 0;
            p->state = ST_PARAMS;
            continue;
        }
        if (p->state == ST_IDLE || id != p->req.id)
            continue; /* for a request that is over (aborted, refused): dropped */
        switch (type) {
        case T_ABORT_REQUEST: {
            bool complete = p->state == ST_READY;
            if (end_request(out, id, REQUEST_COMPLETE) < 0)
                return SG_FCGI_ERROR;
            if (complete)
                return SG_FCGI_ABORT;
            req_clear(p);
            continue;
        }
        case T_PARAMS:
            if (p->state != ST_PARAMS)
                return SG_FCGI_ERROR;
            if (clen == 0) {
                if (build_envp(p) < 0)
                    return SG_FCGI_ERROR;
                p->state = ST_STDIN;
                continue;
            }
            if (p->params.len + clen > SG_FCGI_MAX_PARAMS ||
                sg_buf_append(&p->params, c, clen) < 0)
                return SG_FCGI_ERROR;
            continue;
        case T_STDIN:
            if (p->state != ST_STDIN)
                return SG_FCGI_ERROR;
            if (clen == 0) {
                p->state = ST_READY;
                return SG_FCGI_REQUEST;
            }
            /* beyond the limit the rest is dropped, so what is kept is
             * always a prefix of the body */
            if (p->req.too_large || p->req.body.len + clen > p->max_body) {
                p->req.too_large = true;
                continue;
            }
            if (sg_buf_append(&p->req.body, c, clen) < 0)
                return SG_FCGI_ERROR;
            continue;
        case T_DATA:
            continue; /* the FILTER role's; a responder ignores it */
        default:
            return SG_FCGI_ERROR; /* END_REQUEST, STDOUT, ... from the web server */
        }
    }
    return SG_FCGI_MORE;
}

const char *sg_fcgi_param(const sg_fcgi_req *r, const char *name)
{
    if (!r || !r->envp || !name)
        return NULL;
    size_t n = strlen(name);
    for (char **e = r->envp; *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

int sg_fcgi_answer(sg_buf *out, uint16_t id, const void *resp, size_t len)
{
    const char *p = resp;
    while (len > 0) {
        size_t n = len > MAX_CONTENT ? MAX_CONTENT : len;
        if (put_header(out, T_STDOUT, id, n) < 0 || sg_buf_append(out, p, n) < 0)
            return -1;
        p += n;
        len -= n;
    }
    return put_header(out, T_STDOUT, id, 0) < 0 ? -1 : end_request(out, id, REQUEST_COMPLETE);
}
