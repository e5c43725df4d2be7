/* http.c - request helpers: parameters, headers, responses, CORS. See http.h. */
#include "http.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "engineio.h"

/* How long a browser may cache a preflight answer (s). Chromium caps it at
 * 7200, Firefox at 86400. */
#define SG_CORS_MAX_AGE 7200

const char *sg_http_param(const sg_fcgi_req *r, const char *name)
{
    return sg_fcgi_param(r, name);
}

int sg_http_path(const sg_fcgi_req *r, const char **path, size_t *len)
{
    const char *p = sg_http_param(r, "REQUEST_URI");
    if (!p || !*p)
        p = sg_http_param(r, "DOCUMENT_URI");
    if (!p || !*p)
        p = sg_http_param(r, "SCRIPT_NAME");
    if (!p || !*p)
        return -1;
    const char *q = strchr(p, '?');
    *path = p;
    *len = q ? (size_t)(q - p) : strlen(p);
    return 0;
}

int sg_http_path_ok(const char *path, size_t len, const char *cfg_path)
{
    if (!path || !cfg_path)
        return 0;
    size_t n = strlen(cfg_path);
    if (len == n && memcmp(path, cfg_path, n) == 0)
        return 1;
    /* cfg_path always ends with '/': also accept it without the slash */
    if (n > 1 && cfg_path[n - 1] == '/' && len == n - 1 && memcmp(path, cfg_path, len) == 0)
        return 1;
    return 0;
}

int sg_http_header_value_ok(const char *v)
{
    if (!v)
        return 1;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return 0;
    return 1;
}

/* The header name for a CGI variable, or 0 when it is not a header. */
static size_t header_name_len(const char *var, const char **start)
{
    const char *eq = strchr(var, '=');
    if (!eq)
        return 0;
    size_t n = (size_t)(eq - var);
    /* lighttpd and nginx also send HTTP_CONTENT_LENGTH / HTTP_CONTENT_TYPE:
     * the CGI variables below are the ones every server sends, once */
    if ((n == 17 && strncmp(var, "HTTP_CONTENT_TYPE", 17) == 0) ||
        (n == 19 && strncmp(var, "HTTP_CONTENT_LENGTH", 19) == 0))
        return 0;
    if (n > 5 && strncmp(var, "HTTP_", 5) == 0) {
        *start = var + 5;
        return n - 5;
    }
    if ((n == 12 && strncmp(var, "CONTENT_TYPE", 12) == 0) ||
        (n == 14 && strncmp(var, "CONTENT_LENGTH", 14) == 0)) {
        *start = var;
        return n;
    }
    return 0;
}

char **sg_http_headers_new(const sg_fcgi_req *r)
{
    size_t count = 0, bytes = 0;
    if (r && r->envp) {
        for (char **e = r->envp; *e; e++) {
            const char *s;
            size_t n = header_name_len(*e, &s);
            if (!n)
                continue;
            count++;
            bytes += n + 1 + strlen(s + n + 1) + 1; /* name, value after '=' */
        }
    }
    size_t ptrs = (2 * count + 1) * sizeof(char *);
    char **out = malloc(ptrs + bytes);
    if (!out)
        return NULL;
    char *store = (char *)out + ptrs;
    size_t k = 0;
    if (count) {
        for (char **e = r->envp; *e; e++) {
            const char *s;
            size_t n = header_name_len(*e, &s);
            if (!n)
                continue;
            out[k++] = store;
            for (size_t i = 0; i < n; i++)
                *store++ = s[i] == '_' ? '-' : (char)tolower((unsigned char)s[i]);
            *store++ = '\0';
            const char *v = s + n + 1;
            size_t vl = strlen(v);
            out[k++] = store;
            memcpy(store, v, vl + 1);
            store += vl + 1;
        }
    }
    out[k] = NULL;
    return out;
}

const char *sg_http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default:  return status < 300 ? "OK" : status < 500 ? "Bad Request" : "Internal Server Error";
    }
}

/* 1 when origin is one of the space-separated origins in list. */
static int origin_listed(const char *list, const char *origin)
{
    size_t olen = strlen(origin);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *e = p;
        while (*e && *e != ' ' && *e != '\t')
            e++;
        if ((size_t)(e - p) == olen && olen && memcmp(p, origin, olen) == 0)
            return 1;
        p = e;
    }
    return 0;
}

int sg_http_cors_headers(const sg_config *cfg, const char *origin, int preflight,
                         const char *request_headers, sg_buf *out)
{
    if (!cfg || !cfg->cors_origin)
        return 0;
    if (origin && (!*origin || !sg_http_header_value_ok(origin)))
        origin = NULL;
    const char *allow = NULL;
    if (strcmp(cfg->cors_origin, "*") == 0)
        allow = origin ? origin : "*";
    else if (origin && origin_listed(cfg->cors_origin, origin))
        allow = origin;
    int rc = 0;
    if (allow) {
        rc |= sg_buf_printf(out, "Access-Control-Allow-Origin: %s\r\n"
                                 "Access-Control-Allow-Credentials: true\r\n", allow);
        if (preflight) {
            rc |= sg_buf_puts(out, "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n");
            if (request_headers && *request_headers && sg_http_header_value_ok(request_headers))
                rc |= sg_buf_printf(out, "Access-Control-Allow-Headers: %s\r\n", request_headers);
            rc |= sg_buf_printf(out, "Access-Control-Max-Age: %d\r\n", SG_CORS_MAX_AGE);
        }
    }
    /* the answer depends on these request headers: tell caches */
    rc |= sg_buf_puts(out, preflight ? "Vary: Origin, Access-Control-Request-Headers\r\n"
                                     : "Vary: Origin\r\n");
    return rc ? -1 : 0;
}

static int respond(const sg_fcgi_req *r, sg_buf *out, const sg_config *cfg, int status,
                   const char *content_type, const void *body, size_t len, int preflight,
                   const char *extra)
{
    size_t mark = out->len; /* on failure out is cut back to it */
    int rc = sg_buf_printf(out, "Status: %d %s\r\n", status, sg_http_reason(status));
    if (content_type)
        rc |= sg_buf_printf(out, "Content-Type: %s\r\n", content_type);
    rc |= sg_buf_printf(out, "Content-Length: %zu\r\nCache-Control: no-store\r\n", len);
    if (extra)
        rc |= sg_buf_puts(out, extra);
    /* as the reference server: keep old IE from mangling the answers */
    const char *ua = sg_http_param(r, "HTTP_USER_AGENT");
    if (ua && (strstr(ua, ";MSIE") || strstr(ua, "Trident/")))
        rc |= sg_buf_puts(out, "X-XSS-Protection: 0\r\n");
    rc |= sg_http_cors_headers(cfg, sg_http_param(r, "HTTP_ORIGIN"), preflight,
                               preflight ? sg_http_param(r, "HTTP_ACCESS_CONTROL_REQUEST_HEADERS")
                                         : NULL,
                               out);
    rc |= sg_buf_puts(out, "\r\n");
    if (!rc && len)
        rc = sg_buf_append(out, body, len);
    if (rc && out->data) {
        out->len = mark;
        out->data[mark] = '\0';
    }
    return rc ? -1 : 0;
}

int sg_http_respond(const sg_fcgi_req *r, sg_buf *out, const sg_config *cfg, int status,
                    const char *content_type, const void *body, size_t len)
{
    return respond(r, out, cfg, status, content_type, body, len, 0, NULL);
}

int sg_http_respond_with(const sg_fcgi_req *r, sg_buf *out, const sg_config *cfg, int status,
                         const char *content_type, const void *body, size_t len,
                         const char *extra)
{
    return respond(r, out, cfg, status, content_type, body, len, 0, extra);
}

int sg_http_respond_preflight(const sg_fcgi_req *r, sg_buf *out, const sg_config *cfg)
{
    return respond(r, out, cfg, 204, NULL, "", 0, 1, NULL);
}

int sg_http_respond_error(const sg_fcgi_req *r, sg_buf *out, const sg_config *cfg, int status,
                          int code, const char *message)
{
    if (code < 0)
        return respond(r, out, cfg, status, NULL, "", 0, 0, NULL);
    sg_buf b = SG_BUF_INIT;
    int rc = sg_eio_error_json(&b, code, message);
    if (rc) {
        sg_buf_free(&b);
        return -1;
    }
    rc = respond(r, out, cfg, status, "application/json", b.data, b.len, 0, NULL);
    sg_buf_free(&b);
    return rc;
}

int sg_http_respond_result(const sg_fcgi_req *r, sg_buf *out, const sg_config *cfg, int result)
{
    int status = 500, code = -1;
    const char *message = NULL;
    sg_engine_error(result, &status, &code, &message);
    return sg_http_respond_error(r, out, cfg, status, code, message);
}
