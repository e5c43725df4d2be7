/* fuzz_wshandshake.c - fuzz target for the WebSocket opening handshake
 * (gateway/ws.h): sg_ws_head_end, sg_ws_request_parse, the header
 * look-ups, sg_ws_handshake_check, sg_ws_path_ok and the answers.
 *
 * The input is an HTTP request head as it arrives on a socket. The head
 * (up to the empty line) is parsed, and so is the whole input. A parsed
 * request must be well formed (GET-like method, lower-case header names);
 * an accepted handshake must have the accept key of its
 * Sec-WebSocket-Key. Any broken invariant aborts. See tests/fuzz/README. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const char *buf, size_t len)
{
    sg_ws_request req;
    int rc = sg_ws_request_parse(buf, len, &req);

    if (rc != SG_WS_PARSE_OK) {
        if (rc != SG_WS_PARSE_BAD && rc != SG_WS_PARSE_NOMEM && rc != SG_WS_PARSE_TOO_MANY)
            abort();
        if (req.mem || req.headers || req.nheaders)
            abort(); /* left empty */
        sg_ws_request_free(&req);
        return;
    }
    if (!req.method || !req.method[0] || !req.target || !req.path || !req.query ||
        req.http_minor < 0 || req.http_minor > 9 || req.nheaders > SG_WS_MAX_HEADERS ||
        !req.headers || req.headers[2 * req.nheaders])
        abort();
    for (size_t i = 0; i < req.nheaders; i++) {
        const char *name = req.headers[2 * i], *value = req.headers[2 * i + 1];
        if (!name || !value || !name[0])
            abort();
        for (const char *c = name; *c; c++)
            if ((*c >= 'A' && *c <= 'Z') || *c == ':' || *c == ' ')
                abort();
        size_t vl = strlen(value);
        if (vl && (value[0] == ' ' || value[0] == '\t' || value[vl - 1] == ' ' ||
                   value[vl - 1] == '\t'))
            abort();
        if (sg_ws_request_header(&req, name) == NULL)
            abort();
    }
    (void)sg_ws_request_header(&req, "host");
    (void)sg_ws_header_has_token(&req, "connection", "upgrade");
    int upgrade = sg_ws_is_upgrade(&req);

    char accept[SG_WS_ACCEPT_LEN + 1];
    const char *why = NULL;
    memset(accept, 0, sizeof accept);
    int status = sg_ws_handshake_check(&req, accept, &why);
    sg_buf out = SG_BUF_INIT;
    if (status == 0) {
        const char *key = sg_ws_request_header(&req, "sec-websocket-key");
        char expect[SG_WS_ACCEPT_LEN + 1];
        if (!upgrade || strcmp(req.method, "GET") != 0 || !key)
            abort();
        sg_ws_accept_key(key, strlen(key), expect);
        if (strlen(accept) != SG_WS_ACCEPT_LEN || strcmp(accept, expect) != 0)
            abort();
        (void)sg_ws_response_101(&out, accept, NULL);
    } else {
        if ((status != 400 && status != 426 && status != 500) || !why || !why[0])
            abort();
        if (status == 426)
            (void)sg_ws_response_426(&out);
        else
            (void)sg_ws_response_error(&out, status, "text/plain", why);
    }
    /* the path against the default and the root configuration */
    size_t pl = strlen(req.path);
    int ok = sg_ws_path_ok(req.path, pl, "/socket.io/");
    if (ok && strcmp(req.path, "/socket.io/") != 0 && strcmp(req.path, "/socket.io") != 0)
        abort();
    if (sg_ws_path_ok(req.path, pl, "/") != (strcmp(req.path, "/") == 0))
        abort();
    sg_buf_free(&out);
    sg_ws_request_free(&req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    size_t end = sg_ws_head_end(buf, size);

    if (end > size)
        abort();
    if (end > 0)
        check(buf, end);
    if (end != size)
        check(buf, size);
    return 0;
}
