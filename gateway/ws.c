/* ws.c - RFC 6455 server side without the framing: SHA-1, the opening
 * handshake, server frame headers. See ws.h. */
#include "ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "engineio.h"

/* ---------------------------------------------------------------- SHA-1 */

static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void sg_sha1_init(sg_sha1_ctx *s)
{
    s->h[0] = 0x67452301;
    s->h[1] = 0xefcdab89;
    s->h[2] = 0x98badcfe;
    s->h[3] = 0x10325476;
    s->h[4] = 0xc3d2e1f0;
    s->len = 0;
    s->used = 0;
}

void sg_sha1_update(sg_sha1_ctx *s, const void *data, size_t n)
{
    const uint8_t *p = data;
    s->len += n;
    if (s->used) {
        size_t take = 64 - s->used < n ? 64 - s->used : n;
        memcpy(s->block + s->used, p, take);
        s->used += take;
        p += take;
        n -= take;
        if (s->used < 64)
            return;
        sha1_block(s->h, s->block);
        s->used = 0;
    }
    for (; n >= 64; p += 64, n -= 64)
        sha1_block(s->h, p);
    memcpy(s->block, p, n);
    s->used = n;
}

void sg_sha1_final(sg_sha1_ctx *s, uint8_t out[SG_SHA1_LEN])
{
    uint64_t bits = s->len * 8;
    uint8_t pad[72] = {0x80};
    size_t padlen = (s->used < 56 ? 56 : 120) - s->used;
    for (int i = 0; i < 8; i++)
        pad[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
    sg_sha1_update(s, pad, padlen + 8);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->h[i];
    }
}

void sg_sha1(const void *data, size_t n, uint8_t out[SG_SHA1_LEN])
{
    sg_sha1_ctx s;
    sg_sha1_init(&s);
    sg_sha1_update(&s, data, n);
    sg_sha1_final(&s, out);
}

/* ---------------------------------------------------------------- accept key */

static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

void sg_ws_accept_key(const char *key, size_t keylen, char out[SG_WS_ACCEPT_LEN + 1])
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t d[SG_SHA1_LEN + 1];
    sg_sha1_ctx s;
    sg_sha1_init(&s);
    sg_sha1_update(&s, key, keylen);
    sg_sha1_update(&s, GUID, sizeof GUID - 1);
    sg_sha1_final(&s, d);
    d[SG_SHA1_LEN] = 0;
    /* 20 bytes: six whole groups of 3, then 2 bytes and one '=' */
    char *o = out;
    for (int i = 0; i < 21; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        *o++ = b64[v >> 18 & 63];
        *o++ = b64[v >> 12 & 63];
        *o++ = b64[v >> 6 & 63];
        *o++ = b64[v & 63];
    }
    out[SG_WS_ACCEPT_LEN - 1] = '=';
    out[SG_WS_ACCEPT_LEN] = '\0';
}

/* ---------------------------------------------------------------- request head */

size_t sg_ws_head_end(const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (i + 1 < len && buf[i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* RFC 9110 tchar */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-value octets: VCHAR, obs-text, SP, HTAB */
static int is_vchar(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

void sg_ws_request_free(sg_ws_request *req)
{
    free(req->mem);
    free(req->headers);
    memset(req, 0, sizeof *req);
}

/* Next line of [*p, end): its start and length without CRLF/LF; advances
 * *p past the line. -1 when no line ends before end. */
static int next_line(char **p, char *end, char **line, size_t *len)
{
    char *nl = memchr(*p, '\n', (size_t)(end - *p));
    if (!nl)
        return -1;
    *line = *p;
    *len = (size_t)(nl - *p);
    if (*len && nl[-1] == '\r')
        (*len)--;
    *p = nl + 1;
    return 0;
}

int sg_ws_request_parse(const char *buf, size_t len, sg_ws_request *req)
{
    memset(req, 0, sizeof *req);
    /* an HTTP head never holds a NUL: refuse it before any string function
     * could stop at one and see a shorter, valid-looking line */
    if (memchr(buf, '\0', len))
        return SG_WS_PARSE_BAD;
    /* the head, then a second copy of the target to cut path and query from */
    char *mem = malloc(2 * len + 2);
    if (!mem)
        return SG_WS_PARSE_NOMEM;
    memcpy(mem, buf, len);
    mem[len] = '\0';
    req->mem = mem;
    char *p = mem, *end = mem + len, *line;
    size_t ll;

    /* request line: METHOD SP TARGET SP HTTP/1.x */
    if (next_line(&p, end, &line, &ll) < 0 || ll == 0)
        goto bad;
    line[ll] = '\0';
    char *sp1 = strchr(line, ' ');
    if (!sp1 || sp1 == line)
        goto bad;
    char *sp2 = strchr(sp1 + 1, ' ');
    if (!sp2 || sp2 == sp1 + 1 || strchr(sp2 + 1, ' '))
        goto bad;
    *sp1 = *sp2 = '\0';
    for (char *c = line; *c; c++)
        if (!is_tchar((unsigned char)*c))
            goto bad;
    for (char *c = sp1 + 1; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c == 0x7f)
            goto bad;
    const char *ver = sp2 + 1;
    if (strncmp(ver, "HTTP/1.", 7) != 0 || ver[7] < '0' || ver[7] > '9' || ver[8])
        goto bad;
    req->method = line;
    req->target = sp1 + 1;
    req->http_minor = ver[7] - '0';

    /* path and query, from a copy of the target */
    size_t tl = strlen(req->target);
    char *t = mem + len + 1;
    memcpy(t, req->target, tl + 1);
    char *q = strchr(t, '?');
    if (q) {
        *q = '\0';
        req->query = q + 1;
    } else {
        req->query = "";
    }
    char *hash = strchr(t, '#');
    if (hash)
        *hash = '\0';
    if (strncmp(t, "http://", 7) == 0 || strncmp(t, "https://", 8) == 0) {
        char *slash = strchr(strstr(t, "//") + 2, '/');
        t = slash ? slash : (char *)"/";
    }
    req->path = t;

    /* headers */
    size_t cap = 16;
    req->headers = malloc((2 * cap + 1) * sizeof *req->headers);
    if (!req->headers) {
        sg_ws_request_free(req);
        return SG_WS_PARSE_NOMEM;
    }
    for (;;) {
        if (next_line(&p, end, &line, &ll) < 0)
            goto bad; /* no empty line: not a whole head */
        if (ll == 0)
            break;
        line[ll] = '\0';
        if (line[0] == ' ' || line[0] == '\t')
            goto bad; /* obs-fold */
        char *colon = strchr(line, ':');
        if (!colon || colon == line)
            goto bad;
        for (char *c = line; c < colon; c++) {
            if (!is_tchar((unsigned char)*c))
                goto bad; /* includes white space before the colon */
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        }
        *colon = '\0';
        char *v = colon + 1, *ve = line + ll;
        for (char *c = v; c < ve; c++)
            if (!is_vchar((unsigned char)*c))
                goto bad;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        *ve = '\0';
        if (req->nheaders == SG_WS_MAX_HEADERS) {
            sg_ws_request_free(req);
            return SG_WS_PARSE_TOO_MANY;
        }
        if (req->nheaders == cap) {
            cap *= 2;
            const char **nh = realloc(req->headers, (2 * cap + 1) * sizeof *nh);
            if (!nh) {
                sg_ws_request_free(req);
                return SG_WS_PARSE_NOMEM;
            }
            req->headers = nh;
        }
        req->headers[2 * req->nheaders] = line;
        req->headers[2 * req->nheaders + 1] = v;
        req->nheaders++;
    }
    req->headers[2 * req->nheaders] = NULL;
    return SG_WS_PARSE_OK;
bad:
    sg_ws_request_free(req);
    return SG_WS_PARSE_BAD;
}

const char *sg_ws_request_header(const sg_ws_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcmp(req->headers[2 * i], name) == 0)
            return req->headers[2 * i + 1];
    return NULL;
}

static size_t header_count(const sg_ws_request *req, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < req->nheaders; i++)
        n += strcmp(req->headers[2 * i], name) == 0;
    return n;
}

static int list_has_token(const char *v, const char *token)
{
    size_t tl = strlen(token);
    while (*v) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        const char *s = v;
        while (*v && *v != ',')
            v++;
        const char *e = v;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - s) == tl && strncasecmp(s, token, tl) == 0)
            return 1;
    }
    return 0;
}

int sg_ws_header_has_token(const sg_ws_request *req, const char *name, const char *token)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcmp(req->headers[2 * i], name) == 0 && list_has_token(req->headers[2 * i + 1], token))
            return 1;
    return 0;
}

int sg_ws_is_upgrade(const sg_ws_request *req)
{
    return sg_ws_header_has_token(req, "upgrade", "websocket");
}

int sg_ws_handshake_check(const sg_ws_request *req, char accept[SG_WS_ACCEPT_LEN + 1],
                          const char **why)
{
    const char *w = NULL;
    int status = 400;
    const char *key = sg_ws_request_header(req, "sec-websocket-key");
    const char *version = sg_ws_request_header(req, "sec-websocket-version");
    if (!req->method || strcmp(req->method, "GET") != 0)
        w = "the method is not GET";
    else if (req->http_minor < 1)
        w = "HTTP/1.1 is required";
    else if (header_count(req, "host") != 1 || !*sg_ws_request_header(req, "host"))
        w = "no Host header, or several";
    else if (!sg_ws_is_upgrade(req))
        w = "no \"Upgrade: websocket\"";
    else if (!sg_ws_header_has_token(req, "connection", "upgrade"))
        w = "no \"Connection: Upgrade\"";
    else if (!key || header_count(req, "sec-websocket-key") != 1)
        w = "no Sec-WebSocket-Key, or several";
    else if (!version || header_count(req, "sec-websocket-version") != 1)
        w = "no Sec-WebSocket-Version, or several";
    else if (strcmp(version, "13") != 0) {
        w = "Sec-WebSocket-Version is not 13";
        status = 426;
    } else {
        /* base64 of 16 bytes: 22 characters and "==" */
        size_t kl = strlen(key);
        sg_buf raw = SG_BUF_INIT;
        int rc = kl == 24 && key[22] == '=' && key[23] == '=' ? sg_base64_decode(&raw, key, kl) : -2;
        if (rc == 0 && raw.len != 16)
            rc = -2;
        sg_buf_free(&raw);
        if (rc == -1) {
            w = "out of memory";
            status = 500;
        } else if (rc != 0) {
            w = "Sec-WebSocket-Key is not the base64 of 16 bytes";
        } else {
            sg_ws_accept_key(key, kl, accept);
            return 0;
        }
    }
    if (why)
        *why = w;
    return status;
}

int sg_ws_path_ok(const char *path, size_t len, const char *cfg_path)
{
    size_t cl = strlen(cfg_path);
    if (len == cl && memcmp(path, cfg_path, cl) == 0)
        return 1;
    return cl > 1 && len == cl - 1 && memcmp(path, cfg_path, len) == 0;
}

/* ---------------------------------------------------------------- answers */

static const char *reason(int status)
{
    switch (status) {
    case 101: return "Switching Protocols";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

int sg_ws_response_101(sg_buf *out, const char *accept, const char *extra)
{
    return sg_buf_printf(out,
                         "HTTP/1.1 101 Switching Protocols\r\n"
                         "Upgrade: websocket\r\n"
                         "Connection: Upgrade\r\n"
                         "Sec-WebSocket-Accept: %s\r\n"
                         "%s"
                         "\r\n",
                         accept, extra ? extra : "");
}

static int response(sg_buf *out, int status, const char *extra, const char *content_type,
                    const char *body)
{
    size_t before = out->len;
    size_t bl = body ? strlen(body) : 0;
    int rc = sg_buf_printf(out, "HTTP/1.1 %d %s\r\nConnection: close\r\n%s", status,
                           reason(status), extra ? extra : "");
    if (rc == 0 && content_type)
        rc = sg_buf_printf(out, "Content-Type: %s\r\n", content_type);
    if (rc == 0)
        rc = sg_buf_printf(out, "Content-Length: %zu\r\nCache-Control: no-store\r\n\r\n", bl);
    if (rc == 0 && bl)
        rc = sg_buf_append(out, body, bl);
    if (rc < 0) {
        out->len = before;
        if (out->data)
            out->data[before] = '\0';
    }
    return rc;
}

int sg_ws_response_error(sg_buf *out, int status, const char *content_type, const char *body)
{
    return response(out, status, NULL, content_type, body);
}

int sg_ws_response_eio(sg_buf *out, int status, int code, const char *message)
{
    sg_buf body = SG_BUF_INIT;
    int rc = sg_eio_error_json(&body, code, message);
    if (rc == 0)
        rc = response(out, status, NULL, "application/json", sg_buf_str(&body));
    sg_buf_free(&body);
    return rc;
}

int sg_ws_response_426(sg_buf *out)
{
    return response(out, 426, "Sec-WebSocket-Version: 13\r\n", "text/plain; charset=UTF-8",
                    "Upgrade Required: Sec-WebSocket-Version 13\n");
}

/* ---------------------------------------------------------------- frames */

size_t sg_ws_frame_header(uint8_t out[SG_WS_MAX_HEADER], int opcode, uint64_t len)
{
    out[0] = (uint8_t)(0x80 | (opcode & 0x0f));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len < 65536) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

size_t sg_ws_close_frame(uint8_t out[4], uint16_t code)
{
    out[0] = 0x80 | SG_WS_CLOSE;
    out[1] = 2;
    out[2] = (uint8_t)(code >> 8);
    out[3] = (uint8_t)code;
    return 4;
}
