/* ws.h - the server side of RFC 6455 that is not framing: SHA-1, the
 * opening handshake (parsing an HTTP/1.1 request, checking it, the
 * Sec-WebSocket-Accept key, the 101 and error answers), and writing the
 * headers of the unmasked frames a server sends. Reading frames (unmasking,
 * reassembly, UTF-8 validation of text, control frames) is wslay's job, in
 * siogate-wsd.
 *
 * Pure functions over byte buffers: no I/O. */
#ifndef SG_WS_H
#define SG_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "buf.h"

/* ---- SHA-1 (FIPS 180-4), for the accept key only ---------------------- */

#define SG_SHA1_LEN 20

typedef struct sg_sha1_ctx {
    uint32_t h[5];
    uint64_t len;          /* bytes hashed so far */
    uint8_t block[64];
    size_t used;           /* bytes in block */
} sg_sha1_ctx;

void sg_sha1_init(sg_sha1_ctx *s);
void sg_sha1_update(sg_sha1_ctx *s, const void *data, size_t n);
void sg_sha1_final(sg_sha1_ctx *s, uint8_t out[SG_SHA1_LEN]);
/* One call: out = SHA-1(data[0..n)). */
void sg_sha1(const void *data, size_t n, uint8_t out[SG_SHA1_LEN]);

/* ---- the opening handshake -------------------------------------------- */

/* Largest request head (request line and headers) accepted. */
#define SG_WS_MAX_HEAD 8192
/* Most header lines accepted in one request. */
#define SG_WS_MAX_HEADERS 100
/* Length of a Sec-WebSocket-Accept value (base64 of 20 bytes). */
#define SG_WS_ACCEPT_LEN 28

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key value:
 * base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")). */
void sg_ws_accept_key(const char *key, size_t keylen, char out[SG_WS_ACCEPT_LEN + 1]);

/* Where the request head ends in buf[0..len): the number of bytes up to
 * and including the empty line ("\r\n\r\n", or "\n\n" from sloppy
 * clients), or 0 when it has not arrived yet. */
size_t sg_ws_head_end(const char *buf, size_t len);

/* A parsed request head. Every string points into one owned copy. */
typedef struct sg_ws_request {
    char *mem;                 /* owned: the copy, cut into strings */
    const char *method;        /* "GET" */
    const char *target;        /* request-target as sent ("/socket.io/?EIO=4&...") */
    const char *path;          /* target's path (absolute-form reduced), owned by mem */
    const char *query;         /* after '?', or "" */
    int http_minor;            /* 1 for HTTP/1.1 */
    const char **headers;      /* owned: name, value, ..., NULL; names lower-case,
                                  values without surrounding white space */
    size_t nheaders;
} sg_ws_request;

enum sg_ws_parse {
    SG_WS_PARSE_OK = 0,
    SG_WS_PARSE_BAD = -1,      /* malformed: answer 400 */
    SG_WS_PARSE_NOMEM = -2,
    SG_WS_PARSE_TOO_MANY = -3, /* more than SG_WS_MAX_HEADERS lines: answer 431 */
};

/* Parse the request head buf[0..len) (as delimited by sg_ws_head_end)
 * into req. On error req is left empty (safe to free). */
int sg_ws_request_parse(const char *buf, size_t len, sg_ws_request *req);
void sg_ws_request_free(sg_ws_request *req);

/* The value of the first header named name (lower-case), or NULL. */
const char *sg_ws_request_header(const sg_ws_request *req, const char *name);

/* 1 when some header named name (lower-case) holds token in its
 * comma-separated list, compared case-insensitively ("Connection:
 * keep-alive, Upgrade" holds "upgrade"), else 0. */
int sg_ws_header_has_token(const sg_ws_request *req, const char *name, const char *token);

/* 1 when the request asks for a WebSocket at all (an Upgrade header
 * holding the token "websocket"), else 0. */
int sg_ws_is_upgrade(const sg_ws_request *req);

/* Check the WebSocket opening handshake (RFC 6455 4.2.1): GET, HTTP/1.1 or
 * later, Host, Upgrade: websocket, Connection: Upgrade, a
 * Sec-WebSocket-Key that is the base64 of 16 bytes, Sec-WebSocket-Version
 * 13. Returns 0 with the Sec-WebSocket-Accept value in accept, or the HTTP
 * status to answer instead: 400 (*why says what was wrong), or 426 for a
 * version other than 13 (answer with sg_ws_response_426). */
int sg_ws_handshake_check(const sg_ws_request *req, char accept[SG_WS_ACCEPT_LEN + 1],
                          const char **why);

/* 1 when path[0..len) is cfg_path (which ends with '/') or cfg_path
 * without its trailing slash, else 0. */
int sg_ws_path_ok(const char *path, size_t len, const char *cfg_path);

/* Append the 101 answer that completes the handshake, with extra header
 * lines ("Name: value\r\n"..., e.g. a Set-Cookie; NULL for none). 0 or -1
 * (ENOMEM). */
int sg_ws_response_101(sg_buf *out, const char *accept, const char *extra);
/* Append an error answer with "Connection: close": status and its reason
 * phrase, content_type (omitted when NULL), Content-Length, body. */
int sg_ws_response_error(sg_buf *out, int status, const char *content_type, const char *body);
/* An Engine.IO error: status with the JSON {"code":code,"message":...}. */
int sg_ws_response_eio(sg_buf *out, int status, int code, const char *message);
/* 426 Upgrade Required with "Sec-WebSocket-Version: 13". */
int sg_ws_response_426(sg_buf *out);

/* ---- frames a server writes ------------------------------------------- */

enum sg_ws_opcode {
    SG_WS_CONT = 0x0,
    SG_WS_TEXT = 0x1,
    SG_WS_BINARY = 0x2,
    SG_WS_CLOSE = 0x8,
    SG_WS_PING = 0x9,
    SG_WS_PONG = 0xa,
};

/* Largest frame header: 2 bytes, 8 of extended length, no mask. */
#define SG_WS_MAX_HEADER 10

/* Write the header of a final, unmasked frame of opcode with a payload of
 * len bytes into out; returns its length (2, 4 or 10). */
size_t sg_ws_frame_header(uint8_t out[SG_WS_MAX_HEADER], int opcode, uint64_t len);

/* Write a whole close frame with status code (no reason) into out;
 * returns its length (4). */
size_t sg_ws_close_frame(uint8_t out[4], uint16_t code);

#endif
