/* fcgi_main.c - siogate-fcgi: the FastCGI responder for the Engine.IO
 * polling transport.
 *
 * Threads:
 *   - main: parses the command line, loads the configuration, creates the
 *     engine and the listening socket, starts the others, then waits in
 *     sigwait() for SIGTERM/SIGINT and shuts everything down in order;
 *   - N accept threads (--threads, default 4), each with its own
 *     sg_worker: FCGX_Accept_r, answer the request, FCGX_Finish_r. A GET
 *     for which the engine has nothing yet is handed to...
 *   - the parked loop (parked.c): one epoll thread holding every waiting
 *     GET until a ring, its deadline or a hang-up.
 *
 * Signals: SIGTERM, SIGINT and SIGUSR2 are blocked in every thread
 * (libfcgi's own SIGTERM/SIGUSR1 flags never come into play); SIGPIPE is
 * ignored, so a web server that went away is a write error. On shutdown
 * the main thread sets a flag and sends SIGUSR2 to each accept thread
 * that is not done, every 20 ms: accept threads unblock SIGUSR2 only
 * while inside FCGX_Accept_r, which was initialised with
 * FCGI_FAIL_ACCEPT_ON_INTR, so accept() returns EINTR. (shutdown() of the
 * listening socket would also wake them, but that socket may be shared
 * with sibling processes spawned by the web server or spawn-fcgi.) Then
 * every held GET is released and answered with the noop packet "6". */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "buf.h"
#include "config.h"
#include "daemon.h"
#include "engine.h"
#include "http.h"
#include "log.h"
#include "parked.h"
#include "util.h"

/* libfcgi's own cleanup (fcgios.h, not installed): frees what FCGX_Init
 * allocated, so that nothing is left at exit. */
extern void OS_LibShutdown(void);

#define DEFAULT_THREADS 4
#define MAX_THREADS 1024

static const char CT_TEXT[] = "text/plain; charset=UTF-8";

struct app {
    const sg_config *cfg;
    sg_engine *engine;
    sg_parked *parked;
    int listen_fd;
    bool nodelay;               /* TCP over IPv6: libfcgi sets TCP_NODELAY only for IPv4 */
    atomic_bool stopping;
    atomic_uint_fast64_t tokens;
    long pid;
};

struct acceptor {
    struct app *app;
    sg_worker *w;
    pthread_t tid;
    bool started;
    atomic_bool done;
    sg_buf payload;
};

/* ---------------------------------------------------------------- requests */

enum { ANSWERED = 0, PARKED = 1 };

static const char *addr_of(const FCGX_Request *r)
{
    const char *a = sg_http_param(r, "REMOTE_ADDR");
    return a ? a : "?";
}

/* Answer with the error for an engine result; log it once. */
static void fail(struct acceptor *a, FCGX_Request *r, const char *method, int rc,
                 const char *why)
{
    int status, code;
    const char *msg;
    sg_engine_error(rc, &status, &code, &msg);
    if (rc != SG_E_INTERNAL) /* the engine logs its internal errors itself */
        sg_warn("%s from %s: %d %s%s%s", method, addr_of(r), status, msg ? msg : "error",
                why ? ": " : "", why ? why : "");
    if (sg_http_respond_result(r, a->app->cfg, rc) < 0)
        sg_debug("%s from %s: the web server went away before the answer", method, addr_of(r));
}

static void ok(struct acceptor *a, FCGX_Request *r, const char *method, const char *ctype,
               const char *body, size_t len)
{
    if (sg_http_respond(r, a->app->cfg, 200, ctype, body, len) < 0)
        sg_debug("%s from %s: the web server went away before the answer", method, addr_of(r));
}

static void handshake(struct acceptor *a, FCGX_Request *r)
{
    char **headers = sg_http_headers_new(r);
    if (!headers) {
        sg_error("handshake: out of memory");
        sg_http_respond_result(r, a->app->cfg, SG_E_INTERNAL);
        return;
    }
    sg_handshake hs = {
        .address = sg_http_param(r, "REMOTE_ADDR"),
        .url = sg_http_param(r, "REQUEST_URI"),
        .query = sg_http_param(r, "QUERY_STRING"),
        .headers = (const char *const *)headers,
    };
    char sid[SG_ID_LEN + 1] = "";
    sg_buf body = SG_BUF_INIT;
    int rc = sg_engine_open(a->w, &hs, "polling", sid, &body);
    free(headers);
    if (rc == SG_OK) {
        sg_debug("handshake from %s: session %s", addr_of(r), sid);
        ok(a, r, "GET", CT_TEXT, sg_buf_str(&body), body.len);
    } else {
        fail(a, r, "GET", rc < 0 ? rc : SG_E_INTERNAL, "handshake");
    }
    sg_buf_free(&body);
}

/* A body beyond max_payload: the session is closed ("transport error"),
 * as sg_engine_post does for one, and the answer is 413. */
static void too_large(struct acceptor *a, FCGX_Request *r, const char *sid, const char *why)
{
    int rc = sg_engine_close(a->w, sid, "transport error");
    fail(a, r, "POST", rc == SG_E_SID ? SG_E_SID : SG_E_TOOLARGE, why);
}

static void post(struct acceptor *a, FCGX_Request *r, const char *sid)
{
    const sg_config *cfg = a->app->cfg;
    size_t max = cfg->max_payload > 0 ? (size_t)cfg->max_payload : 0;
    const char *cl = sg_http_param(r, "CONTENT_LENGTH");
    if (cl && *cl) {
        const char *p = cl;
        while (*p >= '0' && *p <= '9')
            p++;
        if (*p) {
            fail(a, r, "POST", SG_E_BADREQ, "bad CONTENT_LENGTH");
            return;
        }
        if (p - cl > 19 || strtoull(cl, NULL, 10) > max) {
            /* refused unread: libfcgi's close reads the rest and drops it */
            too_large(a, r, sid, "body longer than max_payload");
            return;
        }
    }
    sg_buf body = SG_BUF_INIT;
    int oom = 0;
    int rc = sg_http_read_body(r, max, &body, &oom);
    if (rc == 1) {
        too_large(a, r, sid, "body longer than max_payload (CONTENT_LENGTH was wrong)");
    } else if (rc < 0 && oom) {
        sg_error("POST from %s: out of memory reading the body", addr_of(r));
        sg_http_respond_result(r, cfg, SG_E_INTERNAL);
    } else if (rc < 0) {
        fail(a, r, "POST", SG_E_BADREQ, "reading the body failed (aborted by the web server)");
    } else {
        rc = sg_engine_post(a->w, sid, body.data ? body.data : "", body.len);
        if (rc == SG_OK)
            /* as the reference server: text/html, so that old browsers
             * never offer "ok" as a download */
            ok(a, r, "POST", "text/html", "ok", 2);
        else
            fail(a, r, "POST", rc < 0 ? rc : SG_E_INTERNAL, NULL);
    }
    sg_buf_free(&body);
}

static int get(struct acceptor *a, FCGX_Request *r, const char *sid)
{
    struct app *app = a->app;
    char token[48];
    snprintf(token, sizeof token, "%ld.%" PRIuFAST64, app->pid,
             atomic_fetch_add_explicit(&app->tokens, 1, memory_order_relaxed));
    uint64_t epoch = sg_parked_epoch(app->parked);
    int64_t wake_at = 0;
    sg_buf_reset(&a->payload);
    int rc = sg_engine_poll(a->w, sid, token, &a->payload, &wake_at);
    if (rc == SG_WAIT) {
        sg_parked_hold(app->parked, a->w, r, sid, token, wake_at, epoch);
        return PARKED;
    }
    if (rc == SG_OK)
        ok(a, r, "GET", CT_TEXT, sg_buf_str(&a->payload), a->payload.len);
    else
        fail(a, r, "GET", rc < 0 ? rc : SG_E_INTERNAL, NULL);
    return ANSWERED;
}

static int handle(struct acceptor *a, FCGX_Request *r)
{
    const sg_config *cfg = a->app->cfg;
    const char *method = sg_http_param(r, "REQUEST_METHOD");
    if (!method || !*method)
        method = "?";
    if (!sg_http_header_value_ok(method)) /* only for the log */
        method = "?";

    /* Every request but a POST (whose body is read or refused later) has
     * its FCGI_STDIN read to the end first: a GET must be, before it is
     * held, so that anything readable on the connection afterwards means
     * the web server aborted or closed it; and a request read to the end
     * is finished without libfcgi's lingering close. */
    if (strcmp(method, "POST") != 0 && sg_http_drain_input(r) < 0) {
        sg_debug("%s from %s: aborted by the web server", method, addr_of(r));
        return ANSWERED;
    }

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
        if (sg_http_respond(r, cfg, 404, CT_TEXT, nf, sizeof nf - 1) < 0)
            sg_debug("%s from %s: the web server went away before the answer", method,
                     addr_of(r));
        return ANSWERED;
    }
    /* a reflected Origin must be a valid header value (as the reference) */
    if (!sg_http_header_value_ok(sg_http_param(r, "HTTP_ORIGIN"))) {
        fail(a, r, method, SG_E_BADREQ, "invalid Origin header");
        return ANSWERED;
    }
    if (strcmp(method, "OPTIONS") == 0 && cfg->cors_origin) {
        if (sg_http_respond_preflight(r, cfg) < 0)
            sg_debug("OPTIONS from %s: the web server went away before the answer", addr_of(r));
        return ANSWERED;
    }

    const char *query = sg_http_param(r, "QUERY_STRING");
    int result = ANSWERED;
    char *transport = sg_query_get(query, "transport");
    char *sid = sg_query_get(query, "sid");
    char *eio = sg_query_get(query, "EIO");
    if (sid && !*sid) { /* "sid=" is no sid, as in the reference */
        free(sid);
        sid = NULL;
    }

    if (!transport || strcmp(transport, "polling") != 0) {
        if (transport && strcmp(transport, "websocket") == 0)
            fail(a, r, method, SG_E_BADREQ, "WebSocket requests belong to siogate-wsd");
        else
            fail(a, r, method, SG_E_TRANSPORT, NULL);
    } else if (!sid) {
        if (strcmp(method, "GET") != 0)
            fail(a, r, method, SG_E_METHOD, NULL);
        else if (!eio || strcmp(eio, "4") != 0)
            fail(a, r, method, SG_E_VERSION, NULL);
        else
            handshake(a, r);
    } else if (!eio || strcmp(eio, "4") != 0) {
        fail(a, r, method, SG_E_VERSION, NULL);
    } else if (!sg_id_valid(sid)) {
        fail(a, r, method, SG_E_SID, "malformed sid");
    } else if (strcmp(method, "POST") == 0) {
        post(a, r, sid);
    } else if (strcmp(method, "GET") == 0) {
        result = get(a, r, sid);
    } else {
        fail(a, r, method, SG_E_BADREQ, "method not allowed");
    }
    free(transport);
    free(sid);
    free(eio);
    return result;
}

/* ---------------------------------------------------------------- threads */

static void *accept_main(void *arg)
{
    struct acceptor *a = arg;
    struct app *app = a->app;
    FCGX_Request *req = NULL;
    sigset_t wake;
    sigemptyset(&wake);
    sigaddset(&wake, SIGUSR2);

    while (!atomic_load(&app->stopping)) {
        if (!req && !(req = malloc(sizeof *req))) {
            sg_error("accept: out of memory");
            usleep(100000);
            continue;
        }
        FCGX_InitRequest(req, app->listen_fd, FCGI_FAIL_ACCEPT_ON_INTR);
        pthread_sigmask(SIG_UNBLOCK, &wake, NULL);
        int rc = atomic_load(&app->stopping) ? -EINTR : FCGX_Accept_r(req);
        pthread_sigmask(SIG_BLOCK, &wake, NULL);
        if (rc < 0) {
            if (atomic_load(&app->stopping))
                break;
            if (rc != -EINTR) {
                /* EMFILE and the like: do not spin */
                sg_error("accept: %s", rc > -4096 ? strerror(-rc) : "libfcgi error");
                usleep(100000);
            }
            continue;
        }
        if (app->nodelay) {
            int one = 1;
            setsockopt(req->ipcFd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        if (handle(a, req) == PARKED) {
            req = NULL; /* the parked loop owns it now */
        } else {
            sg_http_finish(req);
        }
    }
    free(req); /* finished, or never accepted */
    atomic_store(&a->done, true);
    return NULL;
}

static void wake_handler(int sig) { (void)sig; }

/* ---------------------------------------------------------------- main */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: siogate-fcgi [--conf FILE] [--listen unix:PATH | --listen HOST:PORT]\n"
            "                    [--threads N] [--verbose]\n"
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
            "  -t, --threads N      accept threads (default %d); held polls take no thread\n"
            "  -v, --verbose        log debug messages\n"
            "  -h, --help           show this text\n"
            "\n"
            "SIGTERM or SIGINT: stop accepting, answer every held poll with the noop\n"
            "packet, exit 0. Exit status 2: bad usage or configuration; 1: other failure.\n",
            DEFAULT_THREADS);
}

int main(int argc, char **argv)
{
    const char *conf = NULL, *listen_spec = NULL;
    long nthreads = DEFAULT_THREADS;
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
            nthreads = strtol(optarg, &end, 10);
            if (*end || !*optarg || nthreads < 1 || nthreads > MAX_THREADS) {
                fprintf(stderr, "siogate-fcgi: --threads: expected 1 to %d\n", MAX_THREADS);
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
    sa.sa_handler = wake_handler; /* no SA_RESTART: accept() must fail with EINTR */
    sigaction(SIGUSR2, &sa, NULL);
    sigset_t stopset, blocked;
    sigemptyset(&stopset);
    sigaddset(&stopset, SIGTERM);
    sigaddset(&stopset, SIGINT);
    blocked = stopset;
    sigaddset(&blocked, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &blocked, NULL);
    sg_daemon_raise_fd_limit();

    int status = 1;
    struct app app = {.cfg = &cfg, .listen_fd = -1, .pid = (long)getpid()};
    atomic_init(&app.stopping, false);
    atomic_init(&app.tokens, 1);
    char *unix_path = NULL;
    struct acceptor *acc = NULL;

    if (FCGX_Init() != 0) {
        fprintf(stderr, "siogate-fcgi: FCGX_Init failed\n");
        goto out;
    }
    if (!listen_spec && FCGX_IsCGI()) {
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
    app.engine = sg_engine_new(&cfg);
    if (!app.engine)
        goto out;
    if (!listen_spec) {
        app.listen_fd = 0; /* FCGI_LISTENSOCK_FILENO */
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getsockname(0, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_INET6)
            app.nodelay = true;
    } else {
        app.listen_fd = sg_daemon_listen("siogate-fcgi", listen_spec, &unix_path, &app.nodelay);
        if (app.listen_fd == -2)
            status = 2;
    }
    if (app.listen_fd < 0)
        goto out;

    app.parked = sg_parked_new(app.engine);
    if (!app.parked)
        goto out;
    acc = calloc((size_t)nthreads, sizeof *acc);
    if (!acc) {
        sg_error("out of memory");
        goto out;
    }
    for (long i = 0; i < nthreads; i++) {
        acc[i].app = &app;
        atomic_init(&acc[i].done, false);
        sg_buf_init(&acc[i].payload);
        if (!(acc[i].w = sg_worker_new(app.engine)))
            goto stop;
    }
    if (sg_parked_start(app.parked) < 0)
        goto stop;
    for (long i = 0; i < nthreads; i++) {
        int rc = pthread_create(&acc[i].tid, NULL, accept_main, &acc[i]);
        if (rc) {
            sg_error("pthread_create: %s", strerror(rc));
            goto stop;
        }
        acc[i].started = true;
    }
    sg_info("ready: %s, %ld accept thread%s, path %s", listen_spec ? listen_spec : "standard input",
            nthreads, nthreads == 1 ? "" : "s", cfg.path);

    int sig = 0;
    while (sigwait(&stopset, &sig) != 0)
        ;
    sg_info("%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    status = 0;

stop:
    atomic_store(&app.stopping, true);
    if (acc) {
        for (;;) {
            bool all = true;
            for (long i = 0; i < nthreads; i++)
                if (acc[i].started && !atomic_load(&acc[i].done)) {
                    all = false;
                    pthread_kill(acc[i].tid, SIGUSR2);
                }
            if (all)
                break;
            nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
        }
        for (long i = 0; i < nthreads; i++)
            if (acc[i].started)
                pthread_join(acc[i].tid, NULL);
    }
    sg_parked_stop(app.parked); /* answers every held GET with noop */
out:
    sg_parked_free(app.parked);
    if (acc) {
        for (long i = 0; i < nthreads; i++) {
            if (acc[i].w)
                sg_worker_free(acc[i].w);
            sg_buf_free(&acc[i].payload);
        }
        free(acc);
    }
    if (app.listen_fd > 0)
        close(app.listen_fd);
    if (unix_path) {
        unlink(unix_path);
        free(unix_path);
    }
    if (app.engine)
        sg_engine_free(app.engine);
    sg_config_free(&cfg);
    OS_LibShutdown();
    if (status == 0)
        sg_info("stopped");
    return status;
}
