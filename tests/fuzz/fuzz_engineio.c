/* fuzz_engineio.c - fuzz target for the Engine.IO codec (gateway/engineio.h).
 *
 * The input is decoded as a text packet (sg_eio_decode_packet) and as a
 * polling payload (sg_eio_decode_payload). What decodes is encoded again,
 * once with sg_eio_encode_polling and once with sg_eio_append_polling
 * (the stored-frame path): both encodings must be the same bytes, and
 * decoding them must give back the same packets. Any difference aborts.
 * See tests/fuzz/README. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engineio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int packet_eq(const sg_eio_packet *a, const sg_eio_packet *b)
{
    return a->type == b->type && a->binary == b->binary && a->len == b->len &&
           (a->len == 0 || memcmp(a->data, b->data, a->len) == 0) &&
           a->data && b->data && a->data[a->len] == '\0' && b->data[b->len] == '\0';
}

/* Encode ps both ways; decode; compare. ENOMEM is not a finding. */
static void round_trip(const sg_eio_packets *ps)
{
    sg_buf enc = SG_BUF_INIT, app = SG_BUF_INIT, frame = SG_BUF_INIT;
    sg_eio_packets again;

    sg_eio_packets_init(&again);
    for (size_t i = 0; i < ps->n; i++) {
        const sg_eio_packet *p = &ps->v[i];
        if (sg_eio_encode_polling(&enc, p) < 0)
            goto out;
        /* a stored frame: raw bytes for binary, the whole packet for text */
        sg_buf_reset(&frame);
        if (!p->binary && sg_buf_putc(&frame, (char)('0' + p->type)) < 0)
            goto out;
        if (sg_buf_append(&frame, p->data, p->len) < 0)
            goto out;
        if (sg_eio_append_polling(&app, p->binary, frame.data, frame.len) < 0)
            goto out;
    }
    if (enc.len != app.len || memcmp(sg_buf_str(&enc), sg_buf_str(&app), enc.len) != 0)
        abort(); /* the two encoders disagree */
    int rc = sg_eio_decode_payload(enc.data, enc.len, &again);
    if (rc == SG_EIO_ENOMEM)
        goto out;
    if (rc != SG_EIO_OK || again.n != ps->n)
        abort(); /* an encoding that does not decode */
    for (size_t i = 0; i < ps->n; i++)
        if (!packet_eq(&ps->v[i], &again.v[i]))
            abort(); /* decodes to something else */
out:
    sg_eio_packets_free(&again);
    sg_buf_free(&enc);
    sg_buf_free(&app);
    sg_buf_free(&frame);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;

    /* one text packet (a WebSocket text frame) */
    sg_eio_packet p;
    int rc = sg_eio_decode_packet(in, size, &p);
    if (rc == SG_EIO_OK) {
        if (p.binary || p.len != size - 1 || (unsigned)p.type > SG_EIO_NOOP)
            abort();
        /* in a payload 0x1e would split it: only a packet without one
         * survives the polling form whole */
        if (!memchr(p.data, SG_EIO_SEPARATOR, p.len)) {
            sg_eio_packets one = {&p, 1, 1};
            round_trip(&one);
        }
    } else if (p.data || p.len) {
        abort(); /* *out must be cleared on error */
    }
    sg_eio_packet_clear(&p);

    /* a polling payload, appended after one packet already there */
    sg_eio_packets ps;
    sg_eio_packets_init(&ps);
    if (sg_eio_packets_push(&ps, SG_EIO_NOOP, false, "", 0) != SG_EIO_OK) {
        sg_eio_packets_free(&ps);
        return 0;
    }
    rc = sg_eio_decode_payload(in, size, &ps);
    if (rc == SG_EIO_OK) {
        if (ps.n < 2)
            abort();
        round_trip(&ps);
    } else if (ps.n != 1 || ps.v[0].type != SG_EIO_NOOP) {
        abort(); /* all or nothing */
    }
    sg_eio_packets_free(&ps);
    return 0;
}
