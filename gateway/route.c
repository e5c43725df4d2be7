/* route.c - the router of siogate-fcgi (route.h). */
#include "route.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "http.h"
#include "log.h"
#include "util.h"

static const char CT_TEXT[] = "text/plain; charset=UTF-8";

static const char *addr_of(const sg_fcgi_req *r)
{
    const char *a = sg_http_param(r, "REMOTE_ADDR");
    return a ? a : "?";
}

/* Answer with the error for an engine result; log it once. */
static enum sg_parked_kind fail(const sg_config *cfg, const sg_fcgi_req *r, sg_buf *resp,
                                const char *method, int rc, const char *why)
{
    int status, code;
    const char *msg;
    sg_engine_error(rc, &status, &code, &msg);
    sg_warn("%s from %s: %d %s%s%s", method, addr_of(r), status, msg ? msg : "error",
            why ? ": " : "", why ? why : "");
    if (sg_http_respond_result(r, resp, cfg, rc) < 0)
        sg_error("%s from %s: out of memory for the answer", method, addr_of(r));
    return SG_PARKED_ANSWERED;
}

/* A POST: its CONTENT_LENGTH must be a number; the body beyond
 * max_payload was not kept (r->too_large). */
static enum sg_parked_kind post(const sg_config *cfg, const sg_fcgi_req *r, sg_buf *resp)
{
    const char *cl = sg_http_param(r, "CONTENT_LENGTH");
    if (cl && *cl) {
        const char *p = cl;
        while (*p >= '0' && *p <= '9')
            p++;
        if (*p)
            return fail(cfg, r, resp, "POST", SG_E_BADREQ, "bad CONTENT_LENGTH");
    }
    return r->too_large ? SG_PARKED_TOOLARGE : SG_PARKED_POST;
}

enum sg_parked_kind sg_fcgi_route(void *ud, const sg_fcgi_req *r, char sid_out[SG_ID_LEN + 1],
                                 sg_buf *resp)
{
    const sg_config *cfg = ud;
    const char *method = sg_http_param(r, "REQUEST_METHOD");
    if (!method || !*method || !sg_http_header_value_ok(method)) /* only for the log */
        method = "?";

    const char *path = NULL;
    size_t plen = 0;
    if (sg_http_path(r, &path, &plen) < 0 || !sg_http_path_ok(path, plen, cfg->path)) {
        if (!path || !sg_http_header_value_ok(path)) {
            path = "?";
            plen = 1;
        }
        sg_warn("%s from %s: 404 not the Socket.IO path %s: %.*s", method, addr_of(r),
                cfg->path, (int)(plen > 200 ? 200 : plen), path);
        static const char nf[] = "Not Found\n";
        if (sg_http_respond(r, resp, cfg, 404, CT_TEXT, nf, sizeof nf - 1) < 0)
            sg_error("%s from %s: out of memory for the answer", method, addr_of(r));
        return SG_PARKED_ANSWERED;
    }
    /* a reflected Origin must be a valid header value (as the reference) */
    if (!sg_http_header_value_ok(sg_http_param(r, "HTTP_ORIGIN")))
        return fail(cfg, r, resp, method, SG_E_BADREQ, "invalid Origin header");
    if (strcmp(method, "OPTIONS") == 0 && cfg->cors_origin) {
        if (sg_http_respond_preflight(r, resp, cfg) < 0)
            sg_error("OPTIONS from %s: out of memory for the answer", addr_of(r));
        return SG_PARKED_ANSWERED;
    }

    const char *query = sg_http_param(r, "QUERY_STRING");
    enum sg_parked_kind kind = SG_PARKED_ANSWERED;
    char *transport = sg_query_get(query, "transport");
    char *sid = sg_query_get(query, "sid");
    char *eio = sg_query_get(query, "EIO");
    if (sid && !*sid) { /* "sid=" is no sid, as in the reference */
        free(sid);
        sid = NULL;
    }

    if (!transport || strcmp(transport, "polling") != 0) {
        if (transport && strcmp(transport, "websocket") == 0)
            fail(cfg, r, resp, method, SG_E_BADREQ, "WebSocket requests belong to siogate-wsd");
        else
            fail(cfg, r, resp, method, SG_E_TRANSPORT, NULL);
    } else if (!sid) {
        if (strcmp(method, "GET") != 0)
            fail(cfg, r, resp, method, SG_E_METHOD, NULL);
        else if (!eio || strcmp(eio, "4") != 0)
            fail(cfg, r, resp, method, SG_E_VERSION, NULL);
        else
            kind = SG_PARKED_OPEN;
    } else if (!eio || strcmp(eio, "4") != 0) {
        fail(cfg, r, resp, method, SG_E_VERSION, NULL);
    } else if (!sg_id_valid(sid)) {
        fail(cfg, r, resp, method, SG_E_SID, "malformed sid");
    } else if (strcmp(method, "POST") == 0) {
        kind = post(cfg, r, resp);
    } else if (strcmp(method, "GET") == 0) {
        kind = SG_PARKED_GET;
    } else {
        fail(cfg, r, resp, method, SG_E_BADREQ, "method not allowed");
    }
    if (kind != SG_PARKED_ANSWERED && kind != SG_PARKED_OPEN)
        memcpy(sid_out, sid, SG_ID_LEN + 1); /* sg_id_valid: exactly SG_ID_LEN */
    free(transport);
    free(sid);
    free(eio);
    return kind;
}
