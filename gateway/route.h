/* route.h - the router of siogate-fcgi (an sg_parked_router, parked.h):
 * looks at a complete FastCGI request -- REQUEST_METHOD, the path
 * (REQUEST_URI, DOCUMENT_URI or SCRIPT_NAME), QUERY_STRING (transport,
 * EIO, sid), HTTP_ORIGIN, CONTENT_LENGTH -- and answers into resp what
 * needs no store (404, CORS preflight, Engine.IO errors), or says which
 * engine call the request is for.
 *
 * Threads: one request at a time per call; cfg is read-only. */
#ifndef SG_ROUTE_H
#define SG_ROUTE_H

#include "buf.h"
#include "fcgi.h"
#include "parked.h"
#include "util.h"

/* ud is the sg_config (borrowed). Returns SG_PARKED_ANSWERED with a whole
 * CGI answer appended to resp, or the kind of engine call, with the
 * request's sid (valid, SG_ID_LEN characters) in sid for POST, GET and
 * TOOLARGE. r is borrowed. */
enum sg_parked_kind sg_fcgi_route(void *ud, const sg_fcgi_req *r, char sid[SG_ID_LEN + 1],
                                  sg_buf *resp);

#endif
