/* fcgi_main.c - siogate-fcgi: the FastCGI responder for the Engine.IO
 * polling transport.
 *
 * Threads:
 *   - main: parses the command line, loads the configuration, creates the
 *     engine and the listening socket, starts the loop, then waits in
 *     sigwait() for SIGTERM/SIGINT and stops it;
 *   - the loop (parked.c): one epoll thread that serves every FastCGI
 *     connection (fcgi.c: the protocol, non-blocking; a connection the web
 *     server keeps open serves request after request), routes each
 *     complete request (route() below: what needs no store is answered at
 *     once), runs the engine for handshakes, POSTs and GETs -- all that is
 *     ready at once in one store transaction (group commit) -- answers
 *     after the commit, and holds every waiting GET until a ring, its
 *     deadline or a hang-up;
 *   - the store's checkpointer (store.h), off the request path.
 *
 * Why not libfcgi's threaded accept loop (FCGX_Accept_r), which siogate-fcgi
 * used until 2026-12-04: every request then cost a thread hand-off to the
 * loop, libfcgi's per-request stream buffers (16 KB, allocated in one
 * thread and freed in another), a poll() and two signal-mask changes, and
 * a connection per request (libfcgi cannot hand a kept connection to an
 * event loop, so fastcgi_keep_conn was off). Measured with
 * tests/bench/compare, one core: see tests/bench/README.
 *
 * Signals: SIGTERM and SIGINT are blocked in every thread and taken by
 * sigwait() in main; SIGPIPE is ignored (writes also say MSG_NOSIGNAL). On
 * stop the loop accepts no more connections, answers every request it has
 * read, releases every held GET with the noop packet "6", and ends. */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "daemon.h"
#include "engine.h"
#include "http.h"
#include "log.h"
#include "store.h"
#include "parked.h"
#include "util.h"

static const char CT_TEXT[] = "text/plain; charset=UTF-8";

/* ---------------------------------------------------------------- routing */

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

/* The router (parked.h): what needs no store is answered here. */
static enum sg_parked_kind route(void *ud, const sg_fcgi_req *r, char sid_out[SG_ID_LEN + 1],
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

/* ---------------------------------------------------------------- main */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: siogate-fcgi [--conf FILE] [--listen unix:PATH | --listen HOST:PORT]\n"
            "                    [--verbose]\n"
            "       siogate-fcgi --help\n"
            "\n"
            "The FastCGI responder of siogate for the Engine.IO polling transport.\n"
            "\n"
            "  -c, --conf FILE      configuration file (default " SG_DEFAULT_CONF ";\n"
            "                       built-in defaults when that default file is missing)\n"
            "  -l, --listen ADDR    listen on unix:PATH (a stale socket file is replaced;\n"
            "                       the socket is made mode 0666, so protect its directory)\n"
            "                       or HOST:PORT ([V6]:PORT, or *:PORT for every address);\n"
            "                       without it the FastCGI listening socket is standard\n"
            "                       input, as when the web server spawns the program\n"
            "  -t, --threads N      accepted and ignored (one event loop serves every\n"
            "                       request since 2026-12; kept so that old units work)\n"
            "  -v, --verbose        log debug messages\n"
            "  -h, --help           show this text\n"
            "\n"
            "FCGI_WEB_SERVER_ADDRS (environment): the addresses a TCP web server may\n"
            "connect from, comma-separated (unset: any).\n"
            "\n"
            "SIGTERM or SIGINT: stop accepting, answer every held poll with the noop\n"
            "packet, exit 0. Exit status 2: bad usage or configuration; 1: other failure.\n");
}

/* Is fd a listening socket (as when the web server spawns us)? */
static bool listening(int fd)
{
    int on = 0;
    socklen_t len = sizeof on;
    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on;
}

int main(int argc, char **argv)
{
    const char *conf = NULL, *listen_spec = NULL;
    int verbose = 0;
    static const struct option opts[] = {
        {"conf", required_argument, NULL, 'c'},   {"listen", required_argument, NULL, 'l'},
        {"threads", required_argument, NULL, 't'}, {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "c:l:t:vh", opts, NULL)) != -1) {
        switch (o) {
        case 'c': conf = optarg; break;
        case 'l': listen_spec = optarg; break;
        case 't': {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end || !*optarg || n < 1 || n > 1024) {
                fprintf(stderr, "siogate-fcgi: --threads: expected 1 to 1024\n");
                return 2;
            }
            break;
        }
        case 'v': verbose = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "siogate-fcgi: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    sg_log_init("siogate-fcgi", verbose ? SG_LOG_DEBUG : SG_LOG_INFO);

    /* ---- configuration */
    sg_config cfg;
    char err[512];
    if (sg_config_defaults(&cfg) < 0) {
        fprintf(stderr, "siogate-fcgi: out of memory\n");
        return 1;
    }
    if (!conf && access(SG_DEFAULT_CONF, F_OK) < 0 && errno == ENOENT) {
        sg_info("%s is missing: using the built-in defaults", SG_DEFAULT_CONF);
    } else if (sg_config_load(&cfg, conf ? conf : SG_DEFAULT_CONF, err, sizeof err) < 0) {
        fprintf(stderr, "siogate-fcgi: %s\n", err);
        sg_config_free(&cfg);
        return 2;
    }

    /* ---- signals, before any thread exists */
    struct sigaction sa = {.sa_handler = SIG_IGN};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL);
    sigset_t stopset;
    sigemptyset(&stopset);
    sigaddset(&stopset, SIGTERM);
    sigaddset(&stopset, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stopset, NULL);
    sg_daemon_raise_fd_limit();

    int status = 1;
    sg_engine *engine = NULL;
    sg_parked *loop = NULL;
    int listen_fd = -1;
    bool nodelay = false;
    char *unix_path = NULL;

    if (!listen_spec && !listening(0)) {
        fprintf(stderr, "siogate-fcgi: standard input is not a listening socket: give --listen "
                        "unix:PATH or HOST:PORT, or let the web server spawn siogate-fcgi\n");
        status = 2;
        goto out;
    }
    if (listen_spec && strncmp(listen_spec, "unix:", 5) != 0 && !strrchr(listen_spec, ':')) {
        fprintf(stderr, "siogate-fcgi: --listen %s: expected unix:PATH or HOST:PORT\n",
                listen_spec);
        status = 2;
        goto out;
    }

    /* ---- engine (migrations, plugins), then the socket: once the socket
     * exists the program is ready */
    sg_store_process_init(false);
    engine = sg_engine_new(&cfg);
    if (!engine)
        goto out;
    sg_store_checkpointer_start(cfg.db); /* without it, SQLite's own checkpoints */
    if (!listen_spec) {
        listen_fd = 0; /* FCGI_LISTENSOCK_FILENO */
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getsockname(0, (struct sockaddr *)&ss, &sl) == 0 &&
            (ss.ss_family == AF_INET || ss.ss_family == AF_INET6))
            nodelay = true;
    } else {
        bool ipv6 = false;
        listen_fd = sg_daemon_listen("siogate-fcgi", listen_spec, &unix_path, &ipv6);
        if (listen_fd == -2)
            status = 2;
        nodelay = !unix_path;
    }
    if (listen_fd < 0)
        goto out;

    loop = sg_parked_new(engine, listen_fd, nodelay, route, &cfg);
    if (!loop || sg_parked_start(loop) < 0)
        goto out;
    sg_info("ready: %s, path %s", listen_spec ? listen_spec : "standard input", cfg.path);

    int sig = 0;
    while (sigwait(&stopset, &sig) != 0)
        ;
    sg_info("%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    status = 0;

out:
    sg_parked_stop(loop); /* answers every held GET with noop */
    sg_parked_free(loop);
    if (listen_fd > 0)
        close(listen_fd);
    if (unix_path) {
        unlink(unix_path);
        free(unix_path);
    }
    if (engine)
        sg_engine_free(engine);
    sg_store_checkpointer_stop();
    sg_config_free(&cfg);
    if (status == 0)
        sg_info("stopped");
    return status;
}
