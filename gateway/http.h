/* http.h - small helpers for FastCGI requests (libfcgi FCGX_Request):
 * reading parameters and the body, writing a response with status,
 * headers and body, CORS, and the Engine.IO error JSON.
 *
 * Response headers follow the reference server (engine.io 6): a GET
 * answer is "text/plain; charset=UTF-8", a POST answer "ok" is
 * "text/html", both with "Cache-Control: no-store"; an Engine.IO error is
 * "application/json" with {"code":N,"message":"..."}. Every response here
 * also carries Content-Length and, when the configuration asks for it,
 * the CORS headers.
 *
 * Threads: every function works on one request, used by one thread at a
 * time; cfg is read-only. */
#ifndef SG_HTTP_H
#define SG_HTTP_H

#include <stddef.h>
#include <fcgiapp.h>
#include "buf.h"
#include "config.h"

/* A FastCGI parameter (CGI variable such as "REQUEST_METHOD" or
 * "HTTP_ORIGIN"), borrowed from the request, or NULL when absent. */
const char *sg_http_param(const FCGX_Request *r, const char *name);

/* The request path, without the query string, borrowed into [*path, +*len):
 * REQUEST_URI up to '?', else DOCUMENT_URI, else SCRIPT_NAME. 0, or -1 when
 * the web server gave none of them. */
int sg_http_path(const FCGX_Request *r, const char **path, size_t *len);

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
char **sg_http_headers_new(const FCGX_Request *r);

/* Read the request body (FCGI_STDIN) to its end into out, accepting at
 * most max bytes whatever CONTENT_LENGTH says. Returns 0, 1 when the body
 * is longer than max (reading stops there), -1 when reading failed (the
 * web server aborted) or memory ran out (*oom set to 1). */
int sg_http_read_body(FCGX_Request *r, size_t max, sg_buf *out, int *oom);

/* Read and discard FCGI_STDIN to its end. 0, or -1 on a read error. After
 * this the connection is silent until the web server aborts or closes it. */
int sg_http_drain_input(FCGX_Request *r);

/* The reason phrase for an HTTP status ("OK", "Bad Request", ...). */
const char *sg_http_reason(int status);

/* Append the CORS response headers ("Name: value\r\n" lines) that cfg
 * asks for, for a request from origin (may be NULL). preflight adds the
 * OPTIONS answers; request_headers is the Access-Control-Request-Headers
 * value to allow (may be NULL). Nothing when cfg->cors_origin is NULL.
 * 0 or -1 (ENOMEM). */
int sg_http_cors_headers(const sg_config *cfg, const char *origin, int preflight,
                         const char *request_headers, sg_buf *out);

/* Write a complete response: "Status:", Content-Type (omitted when
 * content_type is NULL), Content-Length, Cache-Control: no-store, the CORS
 * headers for the request, then body[0..len). 0, or -1 when writing
 * failed (the web server went away) or memory ran out. */
int sg_http_respond(FCGX_Request *r, const sg_config *cfg, int status,
                    const char *content_type, const void *body, size_t len);

/* An Engine.IO error answer: status with {"code":code,"message":...}
 * (application/json); a code < 0 gives status with an empty body. */
int sg_http_respond_error(FCGX_Request *r, const sg_config *cfg, int status,
                          int code, const char *message);

/* The answer for a negative engine result (sg_engine_error()). */
int sg_http_respond_result(FCGX_Request *r, const sg_config *cfg, int result);

/* The answer to a CORS preflight (OPTIONS): 204 with the CORS headers. */
int sg_http_respond_preflight(FCGX_Request *r, const sg_config *cfg);

/* Finish the request (libfcgi's FCGX_Finish_r) and always close the
 * connection, even when the web server asked to keep it: a kept
 * connection would tie an accept thread to one web-server connection.
 * When the input was read to its end this is sg_http_finish_nowait();
 * otherwise libfcgi lingers up to 2 s reading the connection to its end
 * before closing it, so that an unread request body (a refused POST)
 * cannot turn into a reset that loses the answer. The FCGX_Request itself
 * stays allocated and can be passed to FCGX_InitRequest again. */
void sg_http_finish(FCGX_Request *r);

/* The same without waiting: writes the end of the request, shuts the
 * connection down for writing, discards whatever the web server sent
 * that is already here, and closes. For requests whose input was read to
 * its end (held polls), answered from the event loop, which must not
 * block on a web server's round trip. */
void sg_http_finish_nowait(FCGX_Request *r);

#endif
