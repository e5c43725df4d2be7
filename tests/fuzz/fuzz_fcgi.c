/* fuzz_fcgi.c - fuzz target for the FastCGI codec (gateway/fcgi.h).
 *
 * The first byte of the input says how many bytes one read of the
 * connection brings (its low 7 bits; 0: the whole rest at once) and, in
 * its top bit, whether requests are parked (answered only once the bytes
 * read are used up, as a long poll is, so that the web server can abort
 * them first). The rest of the input is what the web server sends. It
 * goes through a parser (max_body 1000) as siogate-fcgi's event loop
 * would: the bytes not used yet are given again with the next ones; a
 * request is answered (sg_fcgi_answer) and done, an abort is done, an
 * error ends the connection.
 *
 * Invariants (any broken one aborts): a parse uses whole records only, and
 * asks for more only when no whole record is left; a request has an id, a
 * NULL-terminated environment of NAME=value strings whose names
 * sg_fcgi_param finds, and a body within max_body; an abort is for the
 * request read and queues its END_REQUEST; everything appended to out by a
 * call is whole, well-formed records (version 1, length within 65535, a
 * type the gateway may send, END_REQUEST and UNKNOWN_TYPE of 8 bytes).
 * Each parse gets a buffer of exactly the bytes it may read, so that ASan
 * sees a read beyond them. See tests/fuzz/README. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fcgi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { HDR = 8, MAX_BODY = 1000 };
enum { T_END_REQUEST = 3, T_STDOUT = 6, T_GET_VALUES_RESULT = 10, T_UNKNOWN_TYPE = 11 };

static size_t record_len(const unsigned char *h)
{
    return HDR + (((size_t)h[4] << 8) | h[5]) + h[6];
}

/* Whether used ends a record of b[0..n) (counting from the start). */
static int ends_record(const unsigned char *b, size_t n, size_t used)
{
    size_t pos = 0;
    while (pos < used) {
        if (n - pos < HDR)
            return 0;
        pos += record_len(b + pos);
    }
    return pos == used;
}

/* out[from..len) must be whole records the gateway may send. When end is
 * set, the last of them must be END_REQUEST for that id. */
static void check_out(const sg_buf *out, size_t from, int want_end, unsigned end_id)
{
    const unsigned char *b = (const unsigned char *)out->data;
    size_t pos = from;
    int last_type = -1;
    unsigned last_id = 0;
    while (pos < out->len) {
        if (out->len - pos < HDR || b[pos] != 1 || out->len - pos < record_len(b + pos))
            abort(); /* cut short, or not FastCGI */
        int type = b[pos + 1];
        unsigned id = ((unsigned)b[pos + 2] << 8) | b[pos + 3];
        size_t clen = ((size_t)b[pos + 4] << 8) | b[pos + 5];
        const unsigned char *c = b + pos + HDR;
        switch (type) {
        case T_END_REQUEST:
            if (id == 0 || clen != 8 || (c[4] != 0 && c[4] != 1 && c[4] != 3))
                abort();
            break;
        case T_STDOUT:
            if (id == 0)
                abort();
            break;
        case T_GET_VALUES_RESULT:
            if (id != 0)
                abort();
            break;
        case T_UNKNOWN_TYPE:
            if (id != 0 || clen != 8)
                abort();
            break;
        default:
            abort(); /* nothing else goes to the web server */
        }
        last_type = type;
        last_id = id;
        pos += record_len(b + pos);
    }
    if (want_end && (last_type != T_END_REQUEST || last_id != end_id))
        abort();
}

/* A complete request, checked, then answered the way the gateway does. */
static void answer(sg_fcgi_parser *p, sg_buf *out)
{
    const sg_fcgi_req *r = &p->req;
    if (r->id == 0 || !r->envp || r->body.len > MAX_BODY)
        abort();
    if (r->body.data && r->body.data[r->body.len] != '\0')
        abort();
    if (!r->body.data && r->body.len)
        abort();
    for (char **e = r->envp; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue; /* a name holding a NUL: cut there (no web server sends one) */
        size_t nl = (size_t)(eq - *e);
        char name[64];
        if (nl < sizeof name) {
            memcpy(name, *e, nl);
            name[nl] = '\0';
            if (!sg_fcgi_param(r, name))
                abort(); /* the first of that name, at least, is found */
        }
    }
    const char *method = sg_fcgi_param(r, "REQUEST_METHOD");
    const char *query = sg_fcgi_param(r, "QUERY_STRING");
    const char *origin = sg_fcgi_param(r, "HTTP_ORIGIN");
    (void)sg_fcgi_param(r, "CONTENT_LENGTH");
    (void)sg_fcgi_param(r, "");

    sg_buf resp = SG_BUF_INIT;
    if (sg_buf_printf(&resp, "Status: %s\r\nContent-Type: text/plain\r\n", r->too_large
                      ? "413 Payload Too Large" : "200 OK") < 0 ||
        (origin && sg_buf_printf(&resp, "Access-Control-Allow-Origin: %s\r\n", origin) < 0) ||
        sg_buf_printf(&resp, "\r\n%s %s ", method ? method : "-", query ? query : "-") < 0 ||
        sg_buf_append(&resp, r->body.data ? r->body.data : "", r->body.len) < 0) {
        sg_buf_free(&resp);
        return; /* out of memory: not a finding */
    }
    size_t from = out->len;
    if (sg_fcgi_answer(out, r->id, resp.data, resp.len) == 0)
        check_out(out, from, 1, r->id);
    sg_buf_free(&resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t step = data[0] & 0x7f ? data[0] & 0x7f : size;
    int park = data[0] & 0x80, parked = 0;
    const unsigned char *in = data + 1;
    size_t len = size - 1, avail = 0, start = 0;

    sg_fcgi_parser p;
    sg_buf out = SG_BUF_INIT;
    sg_fcgi_parser_init(&p, MAX_BODY);
    for (;;) {
        avail = len - avail > step ? avail + step : len; /* one more read */
        for (;;) {
            size_t n = avail - start, used = (size_t)-1;
            unsigned char *copy = malloc(n ? n : 1);
            if (!copy)
                goto out;
            memcpy(copy, in + start, n);
            size_t from = out.len;
            int rc = sg_fcgi_parse(&p, copy, n, &used, &out);
            free(copy);
            if (rc == SG_FCGI_ERROR) {
                check_out(&out, from, 0, 0); /* what came before the error */
                goto out; /* the connection is closed */
            }
            if (used > n || !ends_record(in + start, n, used))
                abort();
            start += used;
            switch (rc) {
            case SG_FCGI_MORE:
                check_out(&out, from, 0, 0);
                if (avail - start >= HDR && avail - start >= record_len(in + start))
                    abort(); /* a whole record left unread */
                if (parked) { /* the long poll's answer */
                    answer(&p, &out);
                    sg_fcgi_done(&p);
                    parked = 0;
                }
                break;
            case SG_FCGI_REQUEST:
                check_out(&out, from, 0, 0);
                if (parked)
                    abort(); /* a second request before the first was done */
                if (park) {
                    parked = 1;
                    break;
                }
                answer(&p, &out);
                sg_fcgi_done(&p);
                break;
            case SG_FCGI_ABORT:
                check_out(&out, from, 1, p.req.id);
                if (!parked)
                    abort(); /* only a request read and not answered is aborted */
                sg_fcgi_done(&p);
                parked = 0;
                break;
            default:
                abort();
            }
            if (rc == SG_FCGI_MORE)
                break;
        }
        sg_buf_reset(&out); /* written to the web server */
        if (avail == len)
            break;
    }
out:
    sg_fcgi_parser_free(&p); /* in whatever state it was left */
    sg_buf_free(&out);
    return 0;
}
