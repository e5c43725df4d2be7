/* socketio.c - Socket.IO v5 packet codec, binary placeholders included.
 *
 * Decoding follows socket.io-parser (Decoder#decodeString and
 * isPayloadValid), stricter where the reference relies on JavaScript's
 * loose number conversions. Encoding follows Encoder#encodeAsString and
 * writes JSON exactly as JSON.stringify does (see write_json), so that
 * what siogate sends is byte for byte what the reference server sends.
 *
 * Every walk over a JSON tree is recursive and bounded by SG_SIO_DEPTH_CAP
 * nested arrays/objects; the decoder refuses data deeper than its limit
 * (at most that cap: config max_json_depth) before jansson even sees it,
 * so hostile input cannot exhaust the stack. */
#include "socketio.h"
#include "util.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest ack id: Number.MAX_SAFE_INTEGER. */
#define SIO_MAX_ID ((int64_t)9007199254740991)

/* The key of a binary value: NUL, "bin" (4 bytes). JSON text never
 * produces it: jansson refuses NUL in keys. */
#define BIN_KEY "\0bin"
#define BIN_KEY_LEN 4

static const char *const reserved_events[] = {
    "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener",
};

const char *sg_sio_strerror(int err)
{
    switch (err) {
    case SG_SIO_OK:
        return "success";
    case SG_SIO_ENOMEM:
        return "out of memory";
    case SG_SIO_EEMPTY:
        return "empty packet";
    case SG_SIO_ETYPE:
        return "unknown packet type";
    case SG_SIO_EATTACHMENTS:
        return "illegal attachments";
    case SG_SIO_ENSP:
        return "invalid namespace";
    case SG_SIO_EID:
        return "invalid ack id";
    case SG_SIO_EJSON:
        return "invalid JSON";
    case SG_SIO_EPAYLOAD:
        return "invalid payload";
    case SG_SIO_EPLACEHOLDER:
        return "invalid placeholder";
    default:
        return "unknown error";
    }
}

void sg_sio_packet_clear(sg_sio_packet *p)
{
    free(p->nsp);
    json_decref(p->data);
    *p = (sg_sio_packet){SG_SIO_CONNECT, NULL, -1, 0, NULL};
}

/* ---- helpers -------------------------------------------------------- */

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* 1 if the JSON text s[0..n) nests arrays/objects at most max_depth
 * deep (brackets inside strings do not count). Malformed text is left to
 * the parser, which stops at the first error, before any unbalanced part. */
static int json_depth_ok(const char *s, size_t n, int max_depth)
{
    int depth = 0, in_str = 0;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth)
                return 0;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return 1;
}

static int is_reserved_event(const json_t *name)
{
    const char *s = json_string_value(name);
    size_t len = json_string_length(name);

    for (size_t i = 0; i < sizeof reserved_events / sizeof *reserved_events; i++) {
        if (strlen(reserved_events[i]) == len && memcmp(reserved_events[i], s, len) == 0)
            return 1;
    }
    return 0;
}

/* isPayloadValid of socket.io-parser; data NULL when the packet has none
 * (which only CONNECT and DISCONNECT allow, as the protocol says). */
static int payload_valid(enum sg_sio_type type, const json_t *data)
{
    switch (type) {
    case SG_SIO_CONNECT:
        return !data || json_is_object(data);
    case SG_SIO_DISCONNECT:
        return !data;
    case SG_SIO_CONNECT_ERROR:
        return json_is_string(data) || json_is_object(data);
    case SG_SIO_EVENT:
    case SG_SIO_BINARY_EVENT: {
        const json_t *first = json_array_get(data, 0); /* NULL if not an array or empty */
        return json_is_number(first) || (json_is_string(first) && !is_reserved_event(first));
    }
    case SG_SIO_ACK:
    case SG_SIO_BINARY_ACK:
        return json_is_array(data);
    }
    return 0;
}

/* ---- decoding ------------------------------------------------------- */

int sg_sio_decode(const char *in, size_t n, sg_sio_packet *out)
{
    static const sg_sio_limits defaults = {SG_SIO_MAX_ATTACHMENTS, SG_SIO_MAX_DEPTH};
    return sg_sio_decode_limited(in, n, &defaults, out);
}

int sg_sio_decode_limited(const char *in, size_t n, const sg_sio_limits *lim,
                          sg_sio_packet *out)
{
    int max_depth = lim->max_depth < 1 ? 1
                    : lim->max_depth > SG_SIO_DEPTH_CAP ? SG_SIO_DEPTH_CAP : lim->max_depth;
    sg_sio_packet p = {SG_SIO_CONNECT, NULL, -1, 0, NULL};
    size_t i, j;
    int rc;

    *out = p;
    if (n == 0)
        return SG_SIO_EEMPTY;
    if (in[0] < '0' || in[0] > '6')
        return SG_SIO_ETYPE;
    p.type = (enum sg_sio_type)(in[0] - '0');
    i = 1;

    /* <attachments>- : required for the binary types, refused otherwise */
    for (j = i; j < n && is_digit(in[j]); j++)
        ;
    if (p.type == SG_SIO_BINARY_EVENT || p.type == SG_SIO_BINARY_ACK) {
        size_t count = 0;
        if (j == i || j == n || in[j] != '-')
            return SG_SIO_EATTACHMENTS;
        for (size_t k = i; k < j; k++) {
            count = count * 10 + (size_t)(in[k] - '0');
            if (count > lim->max_attachments)
                return SG_SIO_EATTACHMENTS;
        }
        if (count == 0) /* as socket.io-parser >= 4.2.5 */
            return SG_SIO_EATTACHMENTS;
        p.attachments = count;
        i = j + 1;
    } else if (j < n && in[j] == '-') {
        return SG_SIO_EATTACHMENTS;
    }

    /* <namespace>, : from '/' to the first ',' or to the end */
    if (i < n && in[i] == '/') {
        const char *comma = memchr(in + i, ',', n - i);
        size_t end = comma ? (size_t)(comma - in) : n;
        if (memchr(in + i, '\0', end - i) || !sg_utf8_valid(in + i, end - i))
            return SG_SIO_ENSP;
        p.nsp = malloc(end - i + 1);
        if (!p.nsp)
            return SG_SIO_ENOMEM;
        memcpy(p.nsp, in + i, end - i);
        p.nsp[end - i] = '\0';
        i = comma ? end + 1 : n;
    } else {
        p.nsp = malloc(2);
        if (!p.nsp)
            return SG_SIO_ENOMEM;
        memcpy(p.nsp, "/", 2);
    }

    /* <ack id> */
    if (i < n && is_digit(in[i])) {
        int64_t id = 0;
        for (; i < n && is_digit(in[i]); i++) {
            id = id * 10 + (in[i] - '0');
            if (id > SIO_MAX_ID) {
                rc = SG_SIO_EID;
                goto fail;
            }
        }
        p.id = id;
    }

    /* <JSON data>: the rest, all of it */
    if (i < n) {
        json_error_t err;
        if (!json_depth_ok(in + i, n - i, max_depth)) {
            rc = SG_SIO_EJSON;
            goto fail;
        }
        /* NUL is allowed in strings, as the reference allows it; jansson
         * never allows it in keys, so a binary value's "\0bin" key cannot
         * be forged from the wire */
        p.data = json_loadb(in + i, n - i, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        /* An integer beyond 64 bits is a number to JavaScript (and what
         * sg_sio_encode writes for a large double, as JSON.stringify does):
         * read that packet's numbers as doubles rather than refuse it. */
        if (!p.data && json_error_code(&err) == json_error_numeric_overflow)
            p.data = json_loadb(in + i, n - i,
                                JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &err);
        if (!p.data) {
            rc = json_error_code(&err) == json_error_out_of_memory ? SG_SIO_ENOMEM
                                                                    : SG_SIO_EJSON;
            goto fail;
        }
    }
    if (!payload_valid(p.type, p.data)) {
        rc = SG_SIO_EPAYLOAD;
        goto fail;
    }
    *out = p;
    return SG_SIO_OK;

fail:
    sg_sio_packet_clear(&p);
    return rc;
}

/* ---- JSON output as JSON.stringify writes it ------------------------- */

static int write_json(sg_buf *b, const json_t *v, int depth);

/* A JSON string. JSON.stringify escapes '"', '\\' and the C0 controls
 * (\b \t \n \f \r by name, the others as \u00xx in lower case) and
 * nothing else. Invalid UTF-8 is refused. */
static int write_string(sg_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;

    if (!sg_utf8_valid(s, n) || sg_buf_putc(b, '"') < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7];
        size_t elen = 2;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        esc[0] = '\\';
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\t': esc[1] = 't'; break;
        case '\n': esc[1] = 'n'; break;
        case '\f': esc[1] = 'f'; break;
        case '\r': esc[1] = 'r'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        if (sg_buf_append(b, s + run, i - run) < 0 || sg_buf_append(b, esc, elen) < 0)
            return -1;
        run = i + 1;
    }
    if (sg_buf_append(b, s + run, n - run) < 0)
        return -1;
    return sg_buf_putc(b, '"');
}

/* A number as JavaScript's Number.prototype.toString writes it: the
 * shortest digits that read back as the same double, in plain notation
 * for 1e-7 <= |d| < 1e21 and in exponent notation ("1e+21", "1.5e-7")
 * otherwise; -0 is "0", and non-finite values are null, as in JSON. */
static int write_double(sg_buf *b, double d)
{
    char tmp[40], digits[24], out[48];
    size_t nd = 0, o = 0;
    int k, e;

    if (!isfinite(d))
        return sg_buf_puts(b, "null");
    if (d == 0)
        return sg_buf_putc(b, '0');
    for (k = 1; k <= 17; k++) {
        snprintf(tmp, sizeof tmp, "%.*e", k - 1, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    /* tmp is [-]D[.DDD]e(+|-)XX */
    const char *q = tmp;
    if (*q == '-') {
        out[o++] = '-';
        q++;
    }
    for (; *q && *q != 'e' && *q != 'E'; q++) {
        if (is_digit(*q) && nd < sizeof digits)
            digits[nd++] = *q;
    }
    if (!*q)
        return -1;
    e = atoi(q + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;

    /* ECMA-262 Number::toString: value = digits x 10^(n - k) */
    int kk = (int)nd, n = e + 1;
    if (kk <= n && n <= 21) {
        memcpy(out + o, digits, nd);
        o += nd;
        for (int z = 0; z < n - kk; z++)
            out[o++] = '0';
    } else if (0 < n && n <= 21) {
        memcpy(out + o, digits, (size_t)n);
        o += (size_t)n;
        out[o++] = '.';
        memcpy(out + o, digits + n, nd - (size_t)n);
        o += nd - (size_t)n;
    } else if (-6 < n && n <= 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int z = 0; z < -n; z++)
            out[o++] = '0';
        memcpy(out + o, digits, nd);
        o += nd;
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            memcpy(out + o, digits + 1, nd - 1);
            o += nd - 1;
        }
        o += (size_t)snprintf(out + o, sizeof out - o, "e%c%d", n - 1 >= 0 ? '+' : '-',
                              abs(n - 1));
    }
    return sg_buf_append(b, out, o);
}

static int write_json(sg_buf *b, const json_t *v, int depth)
{
    switch (json_typeof(v)) {
    case JSON_NULL:
        return sg_buf_puts(b, "null");
    case JSON_TRUE:
        return sg_buf_puts(b, "true");
    case JSON_FALSE:
        return sg_buf_puts(b, "false");
    case JSON_INTEGER: {
        json_int_t x = json_integer_value(v);
        /* beyond 2^53 JavaScript only has the nearest double */
        if (x > SIO_MAX_ID + 1 || x < -SIO_MAX_ID - 1)
            return write_double(b, (double)x);
        return sg_buf_put_i64(b, (int64_t)x);
    }
    case JSON_REAL:
        return write_double(b, json_real_value(v));
    case JSON_STRING:
        return write_string(b, json_string_value(v), json_string_length(v));
    case JSON_ARRAY: {
        if (depth >= SG_SIO_DEPTH_CAP + 1) /* +1: room for a placeholder */
            return -1;
        if (sg_buf_putc(b, '[') < 0)
            return -1;
        for (size_t i = 0; i < json_array_size(v); i++) {
            if ((i && sg_buf_putc(b, ',') < 0) || write_json(b, json_array_get(v, i), depth + 1) < 0)
                return -1;
        }
        return sg_buf_putc(b, ']');
    }
    case JSON_OBJECT: {
        json_t *obj = (json_t *)v; /* the iterator API takes no const */
        int first = 1;
        if (depth >= SG_SIO_DEPTH_CAP + 1 || sg_sio_is_binary(v))
            return -1;
        if (sg_buf_putc(b, '{') < 0)
            return -1;
        for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
            if (!first && sg_buf_putc(b, ',') < 0)
                return -1;
            first = 0;
            if (write_string(b, json_object_iter_key(it), json_object_iter_key_len(it)) < 0 ||
                sg_buf_putc(b, ':') < 0 ||
                write_json(b, json_object_iter_value(it), depth + 1) < 0)
                return -1;
        }
        return sg_buf_putc(b, '}');
    }
    }
    return -1;
}

/* sg_sio_unsendable below, depth as write_json counts it. */
static const char *unsendable(const json_t *v, int depth)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return sg_utf8_valid(json_string_value(v), json_string_length(v))
                   ? NULL : "a string that is not UTF-8 text";
    case JSON_ARRAY:
        if (depth >= SG_SIO_DEPTH_CAP + 1)
            return "arrays or objects nested too deep";
        for (size_t i = 0; i < json_array_size(v); i++) {
            const char *why = unsendable(json_array_get(v, i), depth + 1);
            if (why)
                return why;
        }
        return NULL;
    case JSON_OBJECT: {
        if (sg_sio_is_binary(v)) /* an attachment: sg_sio_deconstruct takes it out */
            return NULL;
        if (depth >= SG_SIO_DEPTH_CAP + 1)
            return "arrays or objects nested too deep";
        json_t *obj = (json_t *)v; /* the iterator API takes no const */
        for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
            if (!sg_utf8_valid(json_object_iter_key(it), json_object_iter_key_len(it)))
                return "a key that is not UTF-8 text";
            const char *why = unsendable(json_object_iter_value(it), depth + 1);
            if (why)
                return why;
        }
        return NULL;
    }
    default:
        return NULL;
    }
}

const char *sg_sio_unsendable(const json_t *v) { return v ? unsendable(v, 0) : NULL; }

/* ---- encoding ------------------------------------------------------- */

int sg_sio_encode(sg_buf *out, const sg_sio_packet *p)
{
    size_t len0 = out->len;

    if ((unsigned)p->type > SG_SIO_BINARY_ACK)
        return -1;
    if (sg_buf_putc(out, (char)('0' + p->type)) < 0)
        goto fail;
    if (p->type == SG_SIO_BINARY_EVENT || p->type == SG_SIO_BINARY_ACK) {
        if (p->attachments > INT64_MAX || sg_buf_put_i64(out, (int64_t)p->attachments) < 0 ||
            sg_buf_putc(out, '-') < 0)
            goto fail;
    }
    /* as the reference: a namespace other than "/" is always followed by
     * ',' ("1/admin,"), even when nothing follows */
    if (p->nsp && p->nsp[0] && strcmp(p->nsp, "/") != 0) {
        if (sg_buf_puts(out, p->nsp) < 0 || sg_buf_putc(out, ',') < 0)
            goto fail;
    }
    if (p->id >= 0 && sg_buf_put_i64(out, p->id) < 0)
        goto fail;
    /* `null != obj.data`: absent and null data are both omitted */
    if (p->data && !json_is_null(p->data) && write_json(out, p->data, 0) < 0)
        goto fail;
    return 0;

fail:
    if (out->data) {
        out->len = len0;
        out->data[len0] = '\0';
    }
    return -1;
}

/* ---- binary values -------------------------------------------------- */

json_t *sg_sio_binary_new(const void *data, size_t len)
{
    json_t *obj = json_object();
    json_t *bytes = json_stringn_nocheck(len ? data : "", len);

    if (!obj || !bytes)
        goto fail;
    if (json_object_setn_new(obj, BIN_KEY, BIN_KEY_LEN, bytes) < 0) {
        bytes = NULL; /* stolen even on failure */
        goto fail;
    }
    return obj;
fail:
    json_decref(bytes);
    json_decref(obj);
    return NULL;
}

int sg_sio_is_binary(const json_t *v)
{
    if (!json_is_object(v) || json_object_size(v) != 1)
        return 0;
    return json_is_string(json_object_getn(v, BIN_KEY, BIN_KEY_LEN));
}

const void *sg_sio_binary_data(const json_t *v, size_t *len)
{
    if (!sg_sio_is_binary(v)) {
        if (len)
            *len = 0;
        return NULL;
    }
    const json_t *bytes = json_object_getn(v, BIN_KEY, BIN_KEY_LEN);
    if (len)
        *len = json_string_length(bytes);
    return json_string_value(bytes);
}

static int has_binary(const json_t *v, int depth)
{
    if (sg_sio_is_binary(v))
        return 1;
    if (depth >= SG_SIO_DEPTH_CAP) /* deeper data cannot be encoded anyway */
        return 0;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (has_binary(json_array_get(v, i), depth + 1))
                return 1;
        }
    } else if (json_is_object(v)) {
        json_t *obj = (json_t *)v;
        for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
            if (has_binary(json_object_iter_value(it), depth + 1))
                return 1;
        }
    }
    return 0;
}

int sg_sio_has_binary(const json_t *v) { return v ? has_binary(v, 0) : 0; }

/* A copy-on-write walk: map_tree() returns in *res a new reference to v
 * with every node that visit() replaces replaced, copying only the arrays
 * and objects on the way to a replaced node (the input is never changed,
 * so data shared with others stays intact). */
struct walk {
    /* 1: replaced (*res set, new reference), 0: not special, < 0: error */
    int (*visit)(struct walk *w, json_t *v, json_t **res);
    int depth_error; /* returned when the tree nests too deep */
    json_t *bins;
    unsigned char *used; /* reconstruct: attachments referenced */
};

static int map_tree(struct walk *w, json_t *v, int depth, json_t **res)
{
    json_t *copy = NULL, *nc = NULL;
    int rc = w->visit(w, v, res);

    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (!json_is_array(v) && !json_is_object(v)) {
        *res = json_incref(v);
        return 0;
    }
    if (depth >= SG_SIO_DEPTH_CAP)
        return w->depth_error;

    if (json_is_array(v)) {
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n; i++) {
            json_t *c = json_array_get(v, i);
            if ((rc = map_tree(w, c, depth + 1, &nc)) < 0)
                goto fail;
            if (nc != c && !copy) {
                if (!(copy = json_array()))
                    goto enomem;
                for (size_t k = 0; k < i; k++) {
                    if (json_array_append(copy, json_array_get(v, k)) < 0)
                        goto enomem;
                }
            }
            if (copy) {
                rc = json_array_append_new(copy, nc);
                nc = NULL;
                if (rc < 0)
                    goto enomem;
            } else {
                json_decref(nc);
                nc = NULL;
            }
        }
    } else {
        for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it)) {
            json_t *c = json_object_iter_value(it);
            if ((rc = map_tree(w, c, depth + 1, &nc)) < 0)
                goto fail;
            if (nc != c && !copy) {
                if (!(copy = json_object()))
                    goto enomem;
                for (void *k = json_object_iter(v); k != it; k = json_object_iter_next(v, k)) {
                    if (json_object_setn(copy, json_object_iter_key(k), json_object_iter_key_len(k),
                                         json_object_iter_value(k)) < 0)
                        goto enomem;
                }
            }
            if (copy) {
                rc = json_object_setn_new(copy, json_object_iter_key(it),
                                          json_object_iter_key_len(it), nc);
                nc = NULL;
                if (rc < 0)
                    goto enomem;
            } else {
                json_decref(nc);
                nc = NULL;
            }
        }
    }
    *res = copy ? copy : json_incref(v);
    return 0;

enomem:
    rc = SG_SIO_ENOMEM;
fail:
    json_decref(nc);
    json_decref(copy);
    return rc;
}

static json_t *placeholder_new(size_t num)
{
    json_t *ph = json_object();

    if (!ph || json_object_set_new(ph, "_placeholder", json_true()) < 0 ||
        json_object_set_new(ph, "num", json_integer((json_int_t)num)) < 0) {
        json_decref(ph);
        return NULL;
    }
    return ph;
}

static int deconstruct_visit(struct walk *w, json_t *v, json_t **res)
{
    if (!sg_sio_is_binary(v))
        return 0;
    size_t num = json_array_size(w->bins);
    json_t *ph = placeholder_new(num);
    if (!ph || json_array_append(w->bins, v) < 0) {
        json_decref(ph);
        return SG_SIO_ENOMEM;
    }
    *res = ph;
    return 1;
}

int sg_sio_deconstruct(json_t **data, json_t *bins)
{
    struct walk w = {deconstruct_visit, SG_SIO_ENOMEM, bins, NULL};
    size_t n0 = json_array_size(bins);
    json_t *res = NULL;

    if (!json_is_array(bins))
        return -1;
    if (!*data)
        return n0 <= INT_MAX ? (int)n0 : -1;
    if (map_tree(&w, *data, 0, &res) < 0)
        goto fail;
    if (json_array_size(bins) > INT_MAX) {
        json_decref(res);
        goto fail;
    }
    json_decref(*data);
    *data = res;
    return (int)json_array_size(bins);

fail:
    while (json_array_size(bins) > n0)
        json_array_remove(bins, json_array_size(bins) - 1);
    return -1;
}

static int reconstruct_visit(struct walk *w, json_t *v, json_t **res)
{
    if (!json_is_object(v) || !json_is_true(json_object_get(v, "_placeholder")))
        return 0;
    /* as the reference, any object with "_placeholder": true is one */
    json_t *num = json_object_get(v, "num");
    if (!json_is_integer(num))
        return SG_SIO_EPLACEHOLDER;
    json_int_t i = json_integer_value(num);
    if (i < 0 || (uint64_t)i >= json_array_size(w->bins))
        return SG_SIO_EPLACEHOLDER;
    w->used[i] = 1;
    *res = json_incref(json_array_get(w->bins, (size_t)i));
    return 1;
}

int sg_sio_reconstruct(json_t **data, json_t *bins)
{
    size_t n = json_array_size(bins);
    struct walk w = {reconstruct_visit, SG_SIO_EPLACEHOLDER, bins, NULL};
    json_t *res = NULL;
    int rc;

    if (!(w.used = calloc(n ? n : 1, 1)))
        return SG_SIO_ENOMEM;
    if (*data && (rc = map_tree(&w, *data, 0, &res)) < 0)
        goto out;
    rc = SG_SIO_OK;
    for (size_t i = 0; i < n; i++) {
        if (!w.used[i]) {
            rc = SG_SIO_EPLACEHOLDER; /* an attachment nobody refers to */
            goto out;
        }
    }
    if (*data) {
        json_decref(*data);
        *data = res;
        res = NULL;
    }
out:
    json_decref(res);
    free(w.used);
    return rc;
}
