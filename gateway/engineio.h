/* engineio.h - Engine.IO v4 packet and polling-payload codec.
 *
 * Pure functions over byte buffers: no I/O, no store. See the
 * engine.io-protocol document, revision 4.
 *
 * A text packet is one ASCII digit (its type) followed by UTF-8 data.
 * In a polling payload, packets are joined by the record separator 0x1e;
 * a binary packet there is 'b' followed by the base64 of its bytes.
 * Over WebSocket a text packet is a text frame and a binary packet a
 * binary frame holding the bytes alone (type message implied). */
#ifndef SG_ENGINEIO_H
#define SG_ENGINEIO_H

#include <stdbool.h>
#include <stddef.h>
#include "buf.h"

#define SG_EIO_SEPARATOR '\x1e'

enum sg_eio_type {
    SG_EIO_OPEN = 0,
    SG_EIO_CLOSE = 1,
    SG_EIO_PING = 2,
    SG_EIO_PONG = 3,
    SG_EIO_MESSAGE = 4,
    SG_EIO_UPGRADE = 5,
    SG_EIO_NOOP = 6,
};

/* Decoding errors (negative). */
enum sg_eio_err {
    SG_EIO_OK = 0,
    SG_EIO_ENOMEM = -1,
    SG_EIO_EEMPTY = -2,    /* empty payload or empty packet */
    SG_EIO_ETYPE = -3,     /* first character is not a packet type 0-6 */
    SG_EIO_EBASE64 = -4,   /* 'b' packet whose base64 is invalid */
    SG_EIO_EBINARY = -5,   /* binary packet where none is allowed */
};
/* A static English message for an sg_eio_err. */
const char *sg_eio_strerror(int err);

typedef struct sg_eio_packet {
    enum sg_eio_type type;
    bool binary;     /* binary message: data holds raw bytes */
    char *data;      /* owned, NUL-terminated (binary data may hold NULs) */
    size_t len;
} sg_eio_packet;

typedef struct sg_eio_packets {
    sg_eio_packet *v; /* owned array */
    size_t n, cap;
} sg_eio_packets;

void sg_eio_packet_clear(sg_eio_packet *p);
void sg_eio_packets_init(sg_eio_packets *ps);
/* Frees every packet and the array; leaves ps empty and reusable. */
void sg_eio_packets_free(sg_eio_packets *ps);
/* Append a copy of (type, binary, data, len). 0 or SG_EIO_ENOMEM. */
int sg_eio_packets_push(sg_eio_packets *ps, enum sg_eio_type type, bool binary,
                        const void *data, size_t len);

/* Decode one text packet (a WebSocket text frame, or one record of a
 * polling payload without its 'b' form). On success fills *out (owned by
 * the caller, release with sg_eio_packet_clear). On error *out is cleared. */
int sg_eio_decode_packet(const char *in, size_t n, sg_eio_packet *out);

/* Decode a polling payload (the body of a POST) and append its packets to
 * out. All or nothing: on error, out is left as it was. An empty body and
 * an empty record are SG_EIO_EEMPTY. */
int sg_eio_decode_payload(const char *in, size_t n, sg_eio_packets *out);

/* Append one packet in its polling form to out, preceded by the record
 * separator when out is not empty. Text: the type digit then data;
 * binary: 'b' then base64(data). 0 or -1 (ENOMEM). */
int sg_eio_encode_polling(sg_buf *out, const sg_eio_packet *p);
/* Same, from parts. For text, data is the packet's data after the digit. */
int sg_eio_encode_polling_parts(sg_buf *out, enum sg_eio_type type, bool binary,
                                const void *data, size_t len);

/* Append one stored frame in its polling form, preceded by the separator
 * when out is not empty: a text frame is the whole text packet (type digit
 * included) and is copied as it is; a binary frame (raw bytes) becomes
 * 'b' + base64. 0 or -1 (ENOMEM). */
int sg_eio_append_polling(sg_buf *out, bool binary, const void *frame, size_t len);

/* Append the JSON body of an Engine.IO error response,
 * {"code":CODE,"message":"MESSAGE"}, to out; message (may be NULL) is
 * escaped for JSON ('"', '\\', control characters). 0, or -1 (out of
 * memory: out may hold part of it). */
int sg_eio_error_json(sg_buf *out, int code, const char *message);

#endif
