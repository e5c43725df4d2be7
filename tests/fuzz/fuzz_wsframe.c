/* fuzz_wsframe.c - fuzz target for reading WebSocket frames as
 * siogate-wsd reads them: a wslay server context with siogate-wsd's
 * settings (the message limit max_payload) and callbacks of the same
 * shape (gateway/wsd_main.c), then each message through
 * sg_eio_decode_packet and back out with sg_ws_frame_header; wslay's own
 * answers (pongs, close replies) and siogate's close frame
 * (sg_ws_close_frame) go to the same output.
 *
 * The first byte of the input says how many bytes one read brings (its
 * low 6 bits; 0: all at once), and in its top bit which limit applies
 * (64 bytes, or 100000); the rest is what the client sends. Each read
 * ends in WSLAY_ERR_WOULDBLOCK, as a drained socket does, and reading
 * goes on while wslay reads and bytes are left.
 *
 * Invariants (any broken one aborts): a text or binary message is within
 * the limit, and a text message is valid UTF-8; everything written is
 * whole, well-formed server frames (final, unmasked, a known opcode;
 * control frames within 125 bytes; a close frame's payload empty or a
 * status code a server may send); once wslay stops reading it reads
 * nothing more. See tests/fuzz/README. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <wslay/wslay.h>

#include "buf.h"
#include "engineio.h"
#include "ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct conn {
    const uint8_t *in;
    size_t len, off, chunk, budget; /* budget: bytes left in this read */
    uint64_t limit;
    sg_buf out;
    bool failed; /* ENOMEM: no finding */
};

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *ud)
{
    (void)flags;
    struct conn *c = ud;
    size_t n = c->len - c->off;
    if (n > c->budget)
        n = c->budget;
    if (n > len)
        n = len;
    if (n == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    memcpy(buf, c->in + c->off, n);
    c->off += n;
    c->budget -= n;
    return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *ud)
{
    (void)flags;
    struct conn *c = ud;
    if (sg_buf_append(&c->out, data, len) < 0) {
        c->failed = true;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

/* 1 when s[0..n) is UTF-8 (RFC 3629: no surrogates, nothing over
 * U+10FFFF, shortest forms only). */
static int utf8_ok(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t b = s[i];
        size_t k;
        uint32_t cp;
        if (b < 0x80) {
            i++;
            continue;
        } else if (b >= 0xc2 && b <= 0xdf) {
            k = 1, cp = b & 0x1f;
        } else if (b >= 0xe0 && b <= 0xef) {
            k = 2, cp = b & 0x0f;
        } else if (b >= 0xf0 && b <= 0xf4) {
            k = 3, cp = b & 0x07;
        } else {
            return 0;
        }
        if (n - i - 1 < k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *ud)
{
    (void)ctx;
    struct conn *c = ud;
    bool text = arg->opcode == WSLAY_TEXT_FRAME;
    if (!text && arg->opcode != WSLAY_BINARY_FRAME)
        return;
    if (arg->msg_length > c->limit || (text && !utf8_ok(arg->msg, arg->msg_length)))
        abort();
    /* as siogate-wsd: a text message is an Engine.IO packet */
    if (text) {
        sg_eio_packet p;
        if (sg_eio_decode_packet((const char *)arg->msg, arg->msg_length, &p) == SG_EIO_OK)
            sg_eio_packet_clear(&p);
    }
    /* and a frame goes back the way siogate-wsd writes its frames */
    uint8_t h[SG_WS_MAX_HEADER];
    size_t hl = sg_ws_frame_header(h, text ? SG_WS_TEXT : SG_WS_BINARY, arg->msg_length);
    if (sg_buf_append(&c->out, h, hl) < 0 ||
        sg_buf_append(&c->out, arg->msg, arg->msg_length) < 0)
        c->failed = true;
}

/* A close code a server may send (RFC 6455 7.4). */
static int code_ok(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
           (code >= 3000 && code <= 4999);
}

/* out[0..len) must be whole server frames. */
static void check_out(const uint8_t *b, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        if (len - pos < 2)
            abort();
        uint8_t op = b[pos] & 0x0f;
        if ((b[pos] & 0xf0) != 0x80 || (b[pos + 1] & 0x80))
            abort(); /* FIN, no RSV bits, no mask */
        uint64_t n = b[pos + 1] & 0x7f;
        size_t hl = 2;
        if (n == 126) {
            if (len - pos < 4)
                abort();
            n = (uint64_t)b[pos + 2] << 8 | b[pos + 3];
            hl = 4;
            if (n < 126)
                abort(); /* not the shortest form */
        } else if (n == 127) {
            if (len - pos < 10)
                abort();
            n = 0;
            for (int i = 2; i < 10; i++)
                n = n << 8 | b[pos + i];
            hl = 10;
            if (n <= 0xffff || n >> 63)
                abort();
        }
        if (n > len - pos - hl)
            abort();
        const uint8_t *p = b + pos + hl;
        switch (op) {
        case 0x1:
        case 0x2:
            break;
        case 0x8:
            if (n == 1 || n > 125 || (n >= 2 && !code_ok((unsigned)p[0] << 8 | p[1])))
                abort();
            break;
        case 0x9:
        case 0xa:
            if (n > 125)
                abort();
            break;
        default:
            abort();
        }
        pos += hl + (size_t)n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct conn c = {
        .in = data + 1,
        .len = size - 1,
        .chunk = data[0] & 0x3f,
        .limit = data[0] & 0x80 ? 64 : 100000,
        .out = SG_BUF_INIT,
    };
    if (!c.chunk)
        c.chunk = c.len ? c.len : 1;
    struct wslay_event_callbacks cbs = {.recv_callback = recv_cb, .send_callback = send_cb,
                                        .on_msg_recv_callback = msg_cb};
    wslay_event_context_ptr ws;
    if (wslay_event_context_server_init(&ws, &cbs, &c) != 0)
        goto out;
    wslay_event_config_set_max_recv_msg_length(ws, c.limit);
    int rc = 0;
    while (c.off < c.len && !c.failed && wslay_event_get_read_enabled(ws)) {
        c.budget = c.chunk;
        rc = wslay_event_recv(ws);
        if (rc != 0)
            break; /* a protocol error: siogate-wsd sends 1002 and closes */
        if (wslay_event_want_write(ws) && wslay_event_send(ws) != 0)
            break;
    }
    if (rc == 0 && !wslay_event_get_read_enabled(ws)) {
        c.budget = c.chunk;
        if (wslay_event_recv(ws) != 0 || c.budget != c.chunk)
            abort(); /* read on after it stopped reading */
    }
    if (rc != 0 && rc != WSLAY_ERR_NOMEM && !c.failed) {
        uint8_t f[4];
        if (sg_buf_append(&c.out, f, sg_ws_close_frame(f, 1002)) < 0)
            c.failed = true;
    } else if (!c.failed && wslay_event_want_write(ws)) {
        (void)wslay_event_send(ws); /* the close reply wslay queued */
    }
    wslay_event_context_free(ws);
    if (!c.failed)
        check_out((const uint8_t *)c.out.data, c.out.len);
out:
    sg_buf_free(&c.out);
    return 0;
}
