/* socketio.h - Socket.IO v5 packet codec, binary placeholders included.
 *
 * Pure functions: no I/O, no store. See the socket.io-protocol document,
 * revision 5. A packet in text form is
 *
 *     <type>[<attachments>-][<namespace>,][<ack id>][<JSON data>]
 *
 * Binary arguments are represented, inside siogate, by "binary values":
 * jansson objects made by sg_sio_binary_new() that hold raw bytes (see
 * below). On the wire they become {"_placeholder":true,"num":N} and the
 * bytes travel as N-th attachment (a binary Engine.IO message). */
#ifndef SG_SOCKETIO_H
#define SG_SOCKETIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "buf.h"

enum sg_sio_type {
    SG_SIO_CONNECT = 0,
    SG_SIO_DISCONNECT = 1,
    SG_SIO_EVENT = 2,
    SG_SIO_ACK = 3,
    SG_SIO_CONNECT_ERROR = 4,
    SG_SIO_BINARY_EVENT = 5,
    SG_SIO_BINARY_ACK = 6,
};

enum sg_sio_err {
    SG_SIO_OK = 0,
    SG_SIO_ENOMEM = -1,
    SG_SIO_EEMPTY = -2,        /* empty packet */
    SG_SIO_ETYPE = -3,         /* unknown packet type */
    SG_SIO_EATTACHMENTS = -4,  /* bad or missing attachment count ("5-") */
    SG_SIO_ENSP = -5,          /* namespace not starting with '/' or unterminated */
    SG_SIO_EID = -6,           /* ack id out of range */
    SG_SIO_EJSON = -7,         /* data is not valid JSON */
    SG_SIO_EPAYLOAD = -8,      /* JSON valid but not allowed for this type */
    SG_SIO_EPLACEHOLDER = -9,  /* placeholder index invalid or unmatched */
};
const char *sg_sio_strerror(int err);

#define SG_SIO_MAX_ATTACHMENTS 10 /* as socket.io-parser's default maxAttachments */
#define SG_SIO_MAX_DEPTH 128      /* default nesting bound of a packet's JSON */
#define SG_SIO_DEPTH_CAP 1024     /* the largest bound: every JSON walk stops there */

/* What the decoder accepts (config max_attachments, max_json_depth). */
typedef struct sg_sio_limits {
    size_t max_attachments;   /* of a BINARY_* packet, >= 1 */
    int max_depth;            /* nested arrays/objects, 1..SG_SIO_DEPTH_CAP */
} sg_sio_limits;

typedef struct sg_sio_packet {
    enum sg_sio_type type;
    char *nsp;            /* owned; "/" when the packet names none */
    int64_t id;           /* ack id, or -1 when none */
    size_t attachments;   /* BINARY_*: number of attachments announced */
    json_t *data;         /* owned (a reference); NULL when absent */
} sg_sio_packet;

void sg_sio_packet_clear(sg_sio_packet *p);

/* Decode the text form. Validates the payload as the reference parser
 * does: CONNECT data absent or an object; DISCONNECT no data; CONNECT_ERROR
 * a string or an object; EVENT / BINARY_EVENT a non-empty array whose
 * first element is a string that is not a reserved name ("connect",
 * "connect_error", "disconnect", "disconnecting", "newListener",
 * "removeListener") or a number; ACK / BINARY_ACK an array. Ack ids fit
 * in 0..2^53-1. Placeholders are left in data as they came; see
 * sg_sio_reconstruct(). On error *out is cleared. */
int sg_sio_decode(const char *in, size_t n, sg_sio_packet *out);
/* The same with the limits lim (borrowed) instead of the defaults
 * (SG_SIO_MAX_ATTACHMENTS, SG_SIO_MAX_DEPTH). Beyond them:
 * SG_SIO_EATTACHMENTS, SG_SIO_EJSON. */
int sg_sio_decode_limited(const char *in, size_t n, const sg_sio_limits *lim,
                          sg_sio_packet *out);

/* Encode the text form (appends to out). data must be JSON without binary
 * values (run sg_sio_deconstruct() first); it is dumped compact, in
 * insertion order. Namespace "/" is omitted; any other namespace is always
 * followed by ',' as the reference encoder does ("1/admin,"). 0 or -1. */
int sg_sio_encode(sg_buf *out, const sg_sio_packet *p);
/* Why sg_sio_encode would refuse data (a packet's, binary values still in
 * it) for what it holds rather than for memory: "a string that is not
 * UTF-8 text" (jansson's *_nocheck makes them), "a key that is not UTF-8
 * text" or "arrays or objects nested too deep"; NULL when it would not,
 * and for NULL. For callers that must refuse a value before they write
 * anything. */
const char *sg_sio_unsendable(const json_t *v);

/* ---- binary values ---------------------------------------------------- */

/* A new binary value holding a copy of data[0..len) (NULL on ENOMEM). */
json_t *sg_sio_binary_new(const void *data, size_t len);
/* 1 if v is a binary value. */
int sg_sio_is_binary(const json_t *v);
/* Its bytes (borrowed, valid while v lives) and length; NULL if v is not
 * a binary value. */
const void *sg_sio_binary_data(const json_t *v, size_t *len);
/* 1 if v contains a binary value at any depth. */
int sg_sio_has_binary(const json_t *v);

/* Replace every binary value in *data by a placeholder and append its
 * bytes, in order, to bins (an array of binary values; the reference is
 * moved). *data may be replaced by a new reference (the old one released).
 * Returns the number of attachments (>= 0) or -1 on ENOMEM. */
int sg_sio_deconstruct(json_t **data, json_t *bins);
/* Replace every placeholder in *data by the matching element of bins (an
 * array of binary values; borrowed, each used one gets a new reference).
 * Every index must be < json_array_size(bins), and every attachment must
 * be referenced. 0 or SG_SIO_EPLACEHOLDER / SG_SIO_ENOMEM. */
int sg_sio_reconstruct(json_t **data, json_t *bins);

#endif
