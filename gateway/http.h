/* http.h - small helpers for FastCGI requests (fcgi.h): reading
 * parameters and headers, writing a CGI response with status, headers and
 * body, CORS, and the Engine.IO error JSON.
 *
 * Response headers follow the reference server (engine.io 6): a GET
 * answer is "text/plain; charset=UTF-8", a POST answer "ok" is
 * "text/html", both with "Cache-Control: no-store"; an Engine.IO error is
 * "application/json" with {"code":N,"message":"..."}. Every response here
 * also carries Content-Length and, when the configuration asks for it,
 * the CORS headers.
 *
 * A response is appended to a buffer in CGI form ("Status:" and the other
 * headers, a blank line, the body), which the caller sends with
 * sg_fcgi_answer.
 *
 * Threads: every function works on one request, used by one thread at a
 * time; cfg is read-only. */
#ifndef SG_HTTP_H
#define SG_HTTP_H

#include <stddef.h>
#include "buf.h"
#include "config.h"
#include "fcgi.h"

/* A FastCGI parameter (CGI variable such as "REQUEST_METHOD" or
 * "HTTP_ORIGIN"), borrowed from the request, or NULL when absent. */
const char *sg_http_param(const sg_fcgi_req *r, const char *name);

/* The request path, without the query string, borrowed into [*path, +*len):
 * REQUEST_URI up to '?', else DOCUMENT_URI, else SCRIPT_NAME. 0, or -1 when
 * the web server gave none of them. */
int sg_http_path(const sg_fcgi_req *r, const char **path, size_t *len);

/* 1 when path[0..len) is cfg_path (which ends with '/') or cfg_path
 * without its trailing slash, else 0. */
int sg_http_path_ok(const char *path, size_t len, const char *cfg_path);

/* 1 when v may be copied into a response header (no control characters
 * other than TAB, so no CR/LF injection), else 0. NULL is acceptable. */
int sg_http_header_value_ok(const char *v);

/* The request's HTTP headers as a NULL-terminated name, value, name,
 * value, ... array (the form sg_handshake.headers takes): every HTTP_*
 * parameter with its name lower-cased and '_' turned into '-'
 * (HTTP_USER_AGENT -> "user-agent"), plus CONTENT_TYPE and
 * CONTENT_LENGTH when present. One allocation; free with free().
 * NULL on ENOMEM. */
char **sg_http_headers_new(const sg_fcgi_req *r);

/* The reason phrase for an HTTP status ("OK", "Bad Request", ...). */
const char *sg_http_reason(int status);

/* Append the CORS response headers ("Name: value\r\n" lines) that cfg
 * asks for, for a request from origin (may be NULL). preflight adds the
 * OPTIONS answers; request_headers is the Access-Control-Request-Headers
 * value to allow (may be NULL). Nothing when cfg->cors_origin is NULL.
 * 0 or -1 (ENOMEM). */
int sg_http_cors_headers(const sg_config *cfg, const char *origin, int preflight,
                         const char *request_headers, sg_buf *out);

/* Append a complete response to out: "Status:", Content-Type (omitted
 * when content_type is NULL), Content-Length, Cache-Control: no-store, the
 * CORS headers for request r, then body[0..len). 0, or -1 when memory ran
 * out (out is then as it was). */
int sg_http_respond(const sg_fcgi_req *r, sg_buf *out, const sg_config *cfg, int status,
                    const char *content_type, const void *body, size_t len);

/* sg_http_respond with extra header lines ("Name: value\r\n"..., e.g. a
 * Set-Cookie; NULL for none) after Cache-Control. */
int sg_http_respond_with(const sg_fcgi_req *r, sg_buf *out, const sg_config *cfg, int status,
                         const char *content_type, const void *body, size_t len,
                         const char *extra);

/* An Engine.IO error answer: status with {"code":code,"message":...}
 * (application/json); a code < 0 gives status with an empty body. */
int sg_http_respond_error(const sg_fcgi_req *r, sg_buf *out, const sg_config *cfg, int status,
                          int code, const char *message);

/* The answer for a negative engine result (sg_engine_error()). */
int sg_http_respond_result(const sg_fcgi_req *r, sg_buf *out, const sg_config *cfg, int result);

/* The answer to a CORS preflight (OPTIONS): 204 with the CORS headers. */
int sg_http_respond_preflight(const sg_fcgi_req *r, sg_buf *out, const sg_config *cfg);

#endif
