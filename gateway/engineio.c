/* engineio.c - Engine.IO v4 packet and polling-payload codec.
 *
 * Pure functions over byte buffers. A polling payload is a list of
 * records joined by 0x1e; a record is either a text packet (type digit
 * then data) or 'b' + base64 for a binary message. */
#include "engineio.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"

const char *sg_eio_strerror(int err)
{
    switch (err) {
    case SG_EIO_OK:
        return "success";
    case SG_EIO_ENOMEM:
        return "out of memory";
    case SG_EIO_EEMPTY:
        return "empty payload or packet";
    case SG_EIO_ETYPE:
        return "unknown packet type";
    case SG_EIO_EBASE64:
        return "invalid base64 in binary packet";
    case SG_EIO_EBINARY:
        return "binary packet not allowed here";
    default:
        return "unknown error";
    }
}

void sg_eio_packet_clear(sg_eio_packet *p)
{
    free(p->data);
    p->type = SG_EIO_OPEN;
    p->binary = false;
    p->data = NULL;
    p->len = 0;
}

void sg_eio_packets_init(sg_eio_packets *ps)
{
    ps->v = NULL;
    ps->n = ps->cap = 0;
}

void sg_eio_packets_free(sg_eio_packets *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        sg_eio_packet_clear(&ps->v[i]);
    free(ps->v);
    sg_eio_packets_init(ps);
}

/* A NUL-terminated copy of data[0..len). */
static char *copy_bytes(const void *data, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;
    char *p = malloc(len + 1);
    if (!p)
        return NULL;
    if (len)
        memcpy(p, data, len);
    p[len] = '\0';
    return p;
}

/* Append a packet that takes ownership of data (freed on failure). */
static int packets_push_owned(sg_eio_packets *ps, enum sg_eio_type type, bool binary,
                              char *data, size_t len)
{
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 8;
        if (cap < ps->cap || cap > SIZE_MAX / sizeof *ps->v)
            goto fail;
        sg_eio_packet *v = realloc(ps->v, cap * sizeof *v);
        if (!v)
            goto fail;
        ps->v = v;
        ps->cap = cap;
    }
    ps->v[ps->n++] = (sg_eio_packet){type, binary, data, len};
    return SG_EIO_OK;
fail:
    free(data);
    return SG_EIO_ENOMEM;
}

int sg_eio_packets_push(sg_eio_packets *ps, enum sg_eio_type type, bool binary,
                        const void *data, size_t len)
{
    char *copy = copy_bytes(data, len);
    if (!copy)
        return SG_EIO_ENOMEM;
    return packets_push_owned(ps, type, binary, copy, len);
}

int sg_eio_decode_packet(const char *in, size_t n, sg_eio_packet *out)
{
    *out = (sg_eio_packet){SG_EIO_OPEN, false, NULL, 0};
    if (n == 0)
        return SG_EIO_EEMPTY;
    if (in[0] < '0' || in[0] > '6')
        return SG_EIO_ETYPE; /* 'b' included: text frames only */
    char *data = copy_bytes(in + 1, n - 1);
    if (!data)
        return SG_EIO_ENOMEM;
    out->type = (enum sg_eio_type)(in[0] - '0');
    out->data = data;
    out->len = n - 1;
    return SG_EIO_OK;
}

/* Decode one record of a polling payload and append it to out. */
static int decode_record(const char *in, size_t n, sg_eio_packets *out)
{
    if (n == 0)
        return SG_EIO_EEMPTY;
    if (in[0] == 'b') {
        sg_buf b = SG_BUF_INIT;
        int rc = sg_base64_decode(&b, in + 1, n - 1);
        if (rc < 0) {
            sg_buf_free(&b);
            return rc == -2 ? SG_EIO_EBASE64 : SG_EIO_ENOMEM;
        }
        size_t len = b.len;
        char *data = sg_buf_steal(&b); /* "" when empty */
        if (!data)
            return SG_EIO_ENOMEM;
        return packets_push_owned(out, SG_EIO_MESSAGE, true, data, len);
    }
    sg_eio_packet p;
    int rc = sg_eio_decode_packet(in, n, &p);
    if (rc != SG_EIO_OK)
        return rc;
    return packets_push_owned(out, p.type, false, p.data, p.len);
}

int sg_eio_decode_payload(const char *in, size_t n, sg_eio_packets *out)
{
    size_t n0 = out->n;
    int rc = SG_EIO_OK;

    if (n == 0)
        return SG_EIO_EEMPTY;

    size_t start = 0;
    for (;;) {
        const char *sep = memchr(in + start, SG_EIO_SEPARATOR, n - start);
        size_t end = sep ? (size_t)(sep - in) : n;
        rc = decode_record(in + start, end - start, out);
        if (rc != SG_EIO_OK)
            goto fail;
        if (!sep)
            break;
        start = end + 1;
    }
    return SG_EIO_OK;

fail:
    while (out->n > n0)
        sg_eio_packet_clear(&out->v[--out->n]);
    return rc;
}

/* Truncate b back to len (undo a partial append). */
static void buf_truncate(sg_buf *b, size_t len)
{
    if (b->data) {
        b->len = len;
        b->data[len] = '\0';
    }
}

/* One record of a polling payload: the separator when out is not empty,
 * then 'b' + base64 for binary, else the type digit (when type >= 0) and
 * the text. All or nothing. */
static int put_record(sg_buf *out, int type, bool binary, const void *data, size_t len)
{
    size_t len0 = out->len;

    if (out->len > 0 && sg_buf_putc(out, SG_EIO_SEPARATOR) < 0)
        goto fail;
    if (binary) {
        if (sg_buf_putc(out, 'b') < 0 || sg_base64_encode(out, data, len) < 0)
            goto fail;
    } else {
        if ((type >= 0 && sg_buf_putc(out, (char)('0' + type)) < 0) ||
            sg_buf_append(out, data, len) < 0)
            goto fail;
    }
    return 0;
fail:
    buf_truncate(out, len0);
    return -1;
}

int sg_eio_encode_polling(sg_buf *out, const sg_eio_packet *p)
{
    return sg_eio_encode_polling_parts(out, p->type, p->binary, p->data, p->len);
}

int sg_eio_encode_polling_parts(sg_buf *out, enum sg_eio_type type, bool binary,
                                const void *data, size_t len)
{
    if ((unsigned)type > SG_EIO_NOOP)
        return -1;
    return put_record(out, (int)type, binary, data, len);
}

int sg_eio_append_polling(sg_buf *out, bool binary, const void *frame, size_t len)
{
    return put_record(out, -1, binary, frame, len);
}

int sg_eio_error_json(sg_buf *out, int code, const char *message)
{
    if (sg_buf_printf(out, "{\"code\":%d,\"message\":\"", code) < 0)
        return -1;
    for (const unsigned char *p = (const unsigned char *)(message ? message : ""); *p; p++) {
        int rc;
        if (*p == '"' || *p == '\\')
            rc = sg_buf_printf(out, "\\%c", *p);
        else if (*p < 0x20)
            rc = sg_buf_printf(out, "\\u%04x", *p);
        else
            rc = sg_buf_putc(out, (char)*p);
        if (rc < 0)
            return -1;
    }
    return sg_buf_puts(out, "\"}") < 0 ? -1 : 0;
}
