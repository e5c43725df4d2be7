/* fuzz_socketio.c - fuzz target for the Socket.IO codec (gateway/socketio.h).
 *
 * The input is decoded as a text packet (sg_sio_decode). When it decodes,
 * it is encoded again (sg_sio_encode) and that must decode to a packet
 * with the same type, namespace, ack id and attachment count. Its data
 * also goes through sg_sio_reconstruct with 0, 1 and 2 binary values
 * (as the attachments that followed it), and what comes out through
 * sg_sio_deconstruct and sg_sio_encode. Any broken invariant aborts.
 * See tests/fuzz/README. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "socketio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void re_encode(const sg_sio_packet *p)
{
    sg_buf enc = SG_BUF_INIT;
    sg_sio_packet q;

    if (sg_sio_encode(&enc, p) < 0)
        goto out; /* ENOMEM only: the data came from JSON, without binary values */
    int rc = sg_sio_decode(sg_buf_str(&enc), enc.len, &q);
    if (rc == SG_SIO_ENOMEM)
        goto out;
    if (rc != SG_SIO_OK)
        abort(); /* an encoding that does not decode */
    if (q.type != p->type || strcmp(q.nsp, p->nsp) != 0 || q.id != p->id ||
        q.attachments != p->attachments)
        abort();
    /* null data is omitted, as the reference does */
    if (!p->data || json_is_null(p->data) ? q.data != NULL : q.data == NULL)
        abort();
    sg_sio_packet_clear(&q);
out:
    sg_buf_free(&enc);
}

/* Reconstruct a copy of p's data with nbins binary values. */
static void reconstruct(const sg_sio_packet *p, size_t nbins)
{
    json_t *bins = json_array(), *bins2 = json_array();
    json_t *data = NULL;
    sg_buf enc = SG_BUF_INIT;

    if (!bins || !bins2)
        goto out;
    for (size_t i = 0; i < nbins; i++) {
        static const char bytes[] = {'\0', '\x1e', 'b', '\xff'};
        if (json_array_append_new(bins, sg_sio_binary_new(bytes, i + 1)) < 0)
            goto out;
    }
    if (p->data && !(data = json_deep_copy(p->data)))
        goto out;
    int rc = sg_sio_reconstruct(&data, bins);
    if (rc == SG_SIO_ENOMEM)
        goto out;
    if (rc != SG_SIO_OK) {
        if (rc != SG_SIO_EPLACEHOLDER)
            abort();
        goto out;
    }
    /* every attachment is referenced: binary values iff there were any */
    if (sg_sio_has_binary(data) != (nbins > 0))
        abort();
    int n = sg_sio_deconstruct(&data, bins2);
    if (n < 0)
        goto out;
    /* each placeholder became one attachment (a value used twice counts twice) */
    if ((size_t)n < nbins || json_array_size(bins2) != (size_t)n || sg_sio_has_binary(data))
        abort();
    for (size_t i = 0; i < (size_t)n; i++)
        if (!sg_sio_is_binary(json_array_get(bins2, i)))
            abort();
    sg_sio_packet q = *p;
    q.data = data;
    if (n > 0) {
        if (q.type == SG_SIO_EVENT)
            q.type = SG_SIO_BINARY_EVENT;
        else if (q.type == SG_SIO_ACK)
            q.type = SG_SIO_BINARY_ACK;
        q.attachments = (size_t)n;
    }
    (void)sg_sio_encode(&enc, &q);
out:
    sg_buf_free(&enc);
    json_decref(data);
    json_decref(bins);
    json_decref(bins2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sg_sio_packet p;
    int rc = sg_sio_decode((const char *)data, size, &p);

    if (rc != SG_SIO_OK) {
        if (p.nsp || p.data || rc >= 0 || rc < SG_SIO_EPLACEHOLDER)
            abort(); /* *out cleared, a known error */
        return 0;
    }
    if ((unsigned)p.type > SG_SIO_BINARY_ACK || !p.nsp || p.nsp[0] != '/' ||
        p.id < -1 || p.id > ((int64_t)1 << 53) - 1 ||
        ((p.type == SG_SIO_BINARY_EVENT || p.type == SG_SIO_BINARY_ACK)
             ? p.attachments < 1 || p.attachments > SG_SIO_MAX_ATTACHMENTS
             : p.attachments != 0))
        abort();
    re_encode(&p);
    for (size_t nbins = 0; nbins <= 2; nbins++)
        reconstruct(&p, nbins);
    sg_sio_packet_clear(&p);
    return 0;
}
