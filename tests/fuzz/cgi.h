/* cgi.h - helpers shared by the fuzz targets that drive siogate-fcgi's
 * router (fuzz_query.c, fuzz_headers.c): a configuration picked by one
 * input byte, and the check that an answer is one well-formed CGI
 * response. Static functions: each target includes this once. */
#ifndef SG_FUZZ_CGI_H
#define SG_FUZZ_CGI_H

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "route.h"

/* The defaults, with cors_origin NULL, "*" or a list (pick % 3) and the
 * path "/socket.io/" or "/" (pick / 3 % 2). abort() when memory ran out:
 * a target cannot go on without its configuration. */
static void cgi_config(sg_config *cfg, unsigned pick)
{
    sg_log_init("fuzz", -1); /* the router logs every refusal: not here */
    static const char *const cors[] = {NULL, "*", "https://a.example https://b.example"};
    if (sg_config_defaults(cfg) < 0)
        abort();
    if (cors[pick % 3] && !(cfg->cors_origin = strdup(cors[pick % 3])))
        abort();
    if (pick / 3 % 2) {
        free(cfg->path);
        if (!(cfg->path = strdup("/")))
            abort();
    }
}

/* resp[0..len) must be one CGI answer: "Status: NNN reason" and header
 * lines, each ending in CRLF and holding no other control character than
 * TAB, an empty line, then exactly Content-Length bytes of body. */
static void cgi_check_answer(const char *resp, size_t len)
{
    if (len < 12 || memcmp(resp, "Status: ", 8) != 0)
        abort();
    for (int i = 8; i < 11; i++)
        if (resp[i] < '0' || resp[i] > '9')
            abort();
    size_t pos = 0, body_len = (size_t)-1;
    for (;;) {
        const char *eol = memchr(resp + pos, '\n', len - pos);
        if (!eol || eol == resp + pos || eol[-1] != '\r')
            abort(); /* every line ends in CRLF */
        size_t n = (size_t)(eol - 1 - (resp + pos));
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)resp[pos + i];
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                abort(); /* a header split or smuggled by a request value */
        }
        if (n > 16 && memcmp(resp + pos, "Content-Length: ", 16) == 0) {
            if (body_len != (size_t)-1)
                abort();
            body_len = strtoul(resp + pos + 16, NULL, 10);
        }
        pos = (size_t)(eol - resp) + 1;
        if (n == 0)
            break;
    }
    if (body_len == (size_t)-1 || len - pos != body_len)
        abort();
}

/* Route r through sg_fcgi_route and check what comes out: an answer is
 * well formed; a request for the engine has answered nothing and, but for
 * a handshake, carries a valid sid; a handshake is a GET. Returns the
 * kind. */
static enum sg_parked_kind cgi_route(const sg_config *cfg, const sg_fcgi_req *r)
{
    sg_buf resp = SG_BUF_INIT;
    char sid[SG_ID_LEN + 1];
    memset(sid, 0, sizeof sid);
    enum sg_parked_kind kind = sg_fcgi_route((void *)cfg, r, sid, &resp);
    const char *method = NULL;
    for (char **e = r->envp; e && *e; e++)
        if (strncmp(*e, "REQUEST_METHOD=", 15) == 0) {
            method = *e + 15;
            break;
        }
    switch (kind) {
    case SG_PARKED_ANSWERED:
        if (resp.len) /* empty only when memory ran out */
            cgi_check_answer(resp.data, resp.len);
        break;
    case SG_PARKED_OPEN:
        if (resp.len || !method || strcmp(method, "GET") != 0)
            abort();
        break;
    case SG_PARKED_POST:
    case SG_PARKED_TOOLARGE:
    case SG_PARKED_GET:
        if (resp.len || !sg_id_valid(sid) || !method ||
            strcmp(method, kind == SG_PARKED_GET ? "GET" : "POST") != 0)
            abort();
        break;
    default:
        abort();
    }
    sg_buf_free(&resp);
    return kind;
}

#endif
