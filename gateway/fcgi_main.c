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
 *     complete request (route.c: what needs no store is answered at
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
#include "log.h"
#include "store.h"
#include "parked.h"
#include "route.h"
#include "util.h"

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

    loop = sg_parked_new(engine, listen_fd, nodelay, sg_fcgi_route, &cfg);
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
