/* fcgi.h - the FastCGI responder protocol (FastCGI 1.0) as a pure codec:
 * bytes from the web server in, requests out; answers in, records out. No
 * I/O: siogate-fcgi's event loop (parked.c) reads and writes the
 * connections and feeds them through here, so that a request costs no
 * thread hand-off and a connection the web server keeps open
 * (FCGI_KEEP_CONN, nginx's fastcgi_keep_conn) serves request after request.
 *
 * One request at a time per connection (FCGI_MPXS_CONNS is 0, as every
 * web server here uses it): a BEGIN_REQUEST for another id while one is
 * open is answered END_REQUEST FCGI_CANT_MPX_CONN. Roles other than
 * RESPONDER get FCGI_UNKNOWN_ROLE. FCGI_GET_VALUES is answered;
 * unknown record types get FCGI_UNKNOWN_TYPE. Parameters are bounded
 * (SG_FCGI_MAX_PARAMS bytes); the body is kept up to a limit the caller
 * sets, the rest is counted and dropped (the request is then marked
 * too_large), so a client cannot make the gateway buffer more than it
 * accepts.
 *
 * Threads: none; a parser belongs to one connection. */
#ifndef SG_FCGI_H
#define SG_FCGI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "buf.h"

#define SG_FCGI_MAX_PARAMS (256 * 1024)

/* A request: its parameters and body, complete. */
typedef struct sg_fcgi_req {
    uint16_t id;
    bool keep_conn;            /* the web server keeps the connection */
    char **envp;               /* "NAME=value" strings, NULL-terminated (owned) */
    sg_buf body;               /* FCGI_STDIN, up to the parser's limit */
    bool too_large;            /* the body went beyond the limit (the rest was dropped) */
} sg_fcgi_req;

/* The reading side of one connection. */
typedef struct sg_fcgi_parser {
    size_t max_body;           /* kept of a request's body; more: too_large */
    int state;                 /* internal */
    sg_fcgi_req req;           /* the request being read or answered */
    sg_buf params;             /* raw name-value pairs of req, while read */
} sg_fcgi_parser;

/* What sg_fcgi_parse found. */
enum {
    SG_FCGI_MORE = 0,          /* nothing complete: feed more bytes */
    SG_FCGI_REQUEST = 1,       /* p->req is complete: answer it (sg_fcgi_answer),
                                  then sg_fcgi_done before the next */
    SG_FCGI_ABORT = 2,         /* the web server aborted p->req (it was complete
                                  and not answered yet): sg_fcgi_done; no answer
                                  is needed but an END_REQUEST was queued */
    SG_FCGI_ERROR = -1,        /* not FastCGI, or out of memory: close */
};

void sg_fcgi_parser_init(sg_fcgi_parser *p, size_t max_body);
/* Free what the parser and its request own. */
void sg_fcgi_parser_free(sg_fcgi_parser *p);

/* Consume records from in[0..len): *used gets the number of bytes used
 * (a record is used whole or not at all). Answers that need no caller
 * (GET_VALUES_RESULT, UNKNOWN_TYPE, END_REQUEST for a refused request or
 * an abort) are appended to out. Stops at the first event; call again
 * with the rest. */
int sg_fcgi_parse(sg_fcgi_parser *p, const void *in, size_t len, size_t *used, sg_buf *out);

/* The request was answered (or aborted): forget it; the parser reads the
 * next one. */
void sg_fcgi_done(sg_fcgi_parser *p);

/* A parameter of r ("REQUEST_METHOD", "HTTP_ORIGIN", ...), borrowed, or
 * NULL. */
const char *sg_fcgi_param(const sg_fcgi_req *r, const char *name);

/* Append the answer to request id to out: resp[0..len) (a CGI response:
 * "Status: ...\r\n" headers, a blank line, the body) as FCGI_STDOUT
 * records, the empty one that ends the stream, and FCGI_END_REQUEST. 0 or
 * -1 (out of memory). */
int sg_fcgi_answer(sg_buf *out, uint16_t id, const void *resp, size_t len);

#endif
