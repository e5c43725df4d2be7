/* cli_main.c - siogate, the gateway CLI: emit and administer from a shell
 * or cron, through the same store and the same emit function as plugins.
 *
 *   siogate [--conf FILE] [--verbose] COMMAND [OPTIONS] [ARGS]
 *
 * One function per command (cmd_*), found in the table `commands`; each
 * parses its own options with getopt_long and has its own --help. The
 * manual is docs/siogate.1; keep the two in step.
 *
 * Output contract: nothing on stdout on success unless asked for (a
 * listing, --json, --verbose, --ack replies); errors are one line on
 * stderr, "siogate CMD: what happened; what to do".
 *
 * Exit codes: 0 success, 1 runtime failure, 2 usage or configuration
 * error, 3 the store stayed locked past its timeout, 4 emit --ack: not
 * every socket acknowledged in time.
 *
 * Logging: the engine and the store log to stderr (log.h). While a
 * command runs, that stream is captured into a memory file; on success
 * the captured lines are passed through unchanged (warnings of plugins,
 * say), on failure the first error among them is folded into the one-line
 * message (all of them follow with --verbose). The store reports a lock
 * held past its timeout only in its log line ("database locked past"),
 * which is how an engine call's SG_STORE_BUSY becomes exit code 3.
 *
 * Start-up is most of a short emit: the store is opened once (the
 * worker uses the admin connection: sg_worker_new_on), the plugins are
 * not loaded (sg_engine_new_emitter), SQLite's lookaside and page-cache
 * preallocation are off. What is left is the process itself, measured
 * with perf stat -r 300, alternating (2 vCPU VM, 2026-12-07): /bin/true
 * 1.7-2.1 ms of CPU and 47 page faults; `siogate --version` 2.8-4.3 ms and
 * 95 (the loader mapping and relocating libsqlite3, libjansson, libm:
 * an anonymous page fault costs ~11 us here); `siogate emit` with a
 * server's connection open 4.8-6.2 ms and 145. Linking SQLite and jansson
 * statically saved 0.35-0.5 ms of that (tried, not done: Debian's
 * libraries stay shared, for their security updates). From `siogate emit`
 * started to a held poll having it: tests/bench/compare --only cli-emit. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>

#include "admin.h"
#include "buf.h"
#include "config.h"
#include "doorbell.h"
#include "engine.h"
#include "log.h"
#include "plugin.h"
#include "plugins.h"
#include "socketio.h"
#include "store.h"
#include "util.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

enum { EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_LOCKED = 3, EXIT_TIMEOUT = 4 };

/* The store's log line for SG_STORE_BUSY (store.c: store_rc). */
#define STORE_LOCKED_TEXT "database locked past"
/* SQLite's own message, logged when opening the store (its migration
 * check takes the write lock) gives up on the lock. */
#define SQLITE_LOCKED_TEXT "database is locked"

/* ---- state of one run ----------------------------------------------------------- */

struct cli {
    const char *cmd;          /* the command's name, for messages */
    const char *conf_path;    /* NULL: the default, which may be missing */
    int verbose;
    bool cfg_ready;
    sg_config cfg;
    char db_shown[1024];      /* cfg.db as messages show it (no password) */
    sg_admin *admin;
    sg_engine *engine;
    sg_worker *worker;
};

/* The configured store as messages show it: a PostgreSQL connection
 * string without its password (sg_admin_db_shown). */
static const char *db_shown(struct cli *c)
{
    if (!c->db_shown[0])
        sg_admin_db_shown(c->cfg.db, c->db_shown, sizeof c->db_shown);
    return c->db_shown;
}

static bool db_is_pg(struct cli *c) { return sg_store_is_pg(c->cfg.db); }

/* ---- stderr: our messages, and the captured log ---------------------------------- */

static struct {
    int fd;       /* the memory file the log goes to, -1 when not capturing */
    int saved;    /* the real stderr while capturing */
} logcap = {-1, -1};

/* Our own messages always reach the real stderr. */
static void say(struct cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct cli *c, const char *fmt, ...)
{
    char line[2048];
    int n = snprintf(line, sizeof line, "siogate%s%s: ", c->cmd ? " " : "", c->cmd ? c->cmd : "");
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len] = '\0';
    /* a cause folded in from the log may name the store with its password */
    char *clean = c->cfg_ready && sg_store_is_pg(c->cfg.db) ? sg_admin_scrub(c->cfg.db, line)
                                                          : NULL;
    if (clean) {
        snprintf(line, sizeof line - 1, "%s", clean);
        len = strlen(line);
        free(clean);
    }
    line[len++] = '\n';
    ssize_t w = write(logcap.saved >= 0 ? logcap.saved : STDERR_FILENO, line, len);
    (void)w;
}

static void cap_start(void)
{
    if (logcap.fd >= 0)
        return;
    int fd = memfd_create("siogate-log", MFD_CLOEXEC);
    if (fd < 0) {
        FILE *f = tmpfile();
        fd = f ? dup(fileno(f)) : -1;
        if (f)
            fclose(f);
    }
    if (fd < 0)
        return; /* no capture: the log goes to stderr as it comes */
    fflush(stderr);
    logcap.saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    if (logcap.saved < 0 || dup2(fd, STDERR_FILENO) < 0) {
        if (logcap.saved >= 0)
            close(logcap.saved);
        logcap.saved = -1;
        close(fd);
        return;
    }
    logcap.fd = fd;
}

static off_t cap_size(void)
{
    struct stat sb;
    return logcap.fd >= 0 && fstat(logcap.fd, &sb) == 0 ? sb.st_size : 0;
}

/* What was captured from offset from on (new string; "" when nothing). */
static char *cap_text(off_t from)
{
    off_t end = cap_size();
    size_t n = end > from ? (size_t)(end - from) : 0;
    char *t = malloc(n + 1);
    if (!t)
        return NULL;
    ssize_t got = n ? pread(logcap.fd, t, n, from) : 0;
    t[got > 0 ? (size_t)got : 0] = '\0';
    return t;
}

/* Stop capturing; write what was captured to the real stderr if replay. */
static void cap_stop(struct cli *c, bool replay)
{
    if (logcap.fd < 0)
        return;
    fflush(stderr);
    char *t = replay ? cap_text(0) : NULL;
    if (t && c->cfg_ready && sg_store_is_pg(c->cfg.db)) {
        /* the log of the store, the doorbell or a plugin may name the
         * store with its password */
        char *clean = sg_admin_scrub(c->cfg.db, t);
        free(t);
        t = clean;
    }
    dup2(logcap.saved, STDERR_FILENO);
    close(logcap.saved);
    close(logcap.fd);
    logcap.fd = logcap.saved = -1;
    if (t && *t) {
        ssize_t w = write(STDERR_FILENO, t, strlen(t));
        (void)w;
    }
    free(t);
}

/* The text of the first log line of level "error" captured since from
 * ("prog[pid]: error: TEXT"), into buf; false when there is none. */
static bool cap_first_error(off_t from, char *buf, size_t cap_len)
{
    char *t = cap_text(from);
    bool found = false;
    for (char *line = t; line && *line && !found;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *e = strstr(line, "]: error: ");
        if (e) {
            snprintf(buf, cap_len, "%s", e + strlen("]: error: "));
            found = true;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(t);
    return found;
}

static bool cap_says_locked(off_t from)
{
    char *t = cap_text(from);
    bool locked = t && (strstr(t, STORE_LOCKED_TEXT) || strstr(t, SQLITE_LOCKED_TEXT));
    free(t);
    return locked;
}

/* An engine or store call failed: one line naming the cause (the first
 * logged error) and what to do; the exit code (3 when it was the lock). */
static int engine_failed(struct cli *c, off_t mark, const char *what, const char *advice)
{
    char cause[1024];
    if (cap_says_locked(mark)) {
        say(c, "%s: the store %s stayed locked longer than the store's timeout; "
               "retry later (another process holds a long write transaction)",
            what, db_shown(c));
        return EXIT_LOCKED;
    }
    if (cap_first_error(mark, cause, sizeof cause))
        say(c, "%s: %s; %s", what, cause, advice);
    else
        say(c, "%s; %s", what, advice);
    return EXIT_FAIL;
}

/* ---- small helpers ------------------------------------------------------------------ */

/* A growable NULL-terminated list of borrowed strings. */
struct strv {
    const char **v;
    size_t n, cap;
};

static void strv_push(struct strv *s, const char *x)
{
    if (s->n + 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        const char **v = realloc(s->v, cap * sizeof *v);
        if (!v) {
            fprintf(stderr, "siogate: out of memory\n");
            exit(EXIT_FAIL);
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = x;
    s->v[s->n] = NULL;
}

static void strv_free(struct strv *s)
{
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

/* Write s as one whitespace-free field: bytes <= 0x20, 0x7f and '\'
 * become \xHH; the empty string is "" . */
static void put_field(FILE *f, const char *s)
{
    if (!*s) {
        fputs("\"\"", f);
        return;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= 0x20 || *p == 0x7f || *p == '\\')
            fprintf(f, "\\x%02x", *p);
        else
            putc(*p, f);
    }
}

/* Print v as one line of compact JSON on stdout. */
static void put_json(json_t *v)
{
    json_dumpf(v, stdout, JSON_COMPACT | JSON_ENCODE_ANY);
    putchar('\n');
}

/* Flush stdout; a write error (a full disk, a closed pipe) is a failure. */
static int finish_output(struct cli *c, int rc)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        say(c, "cannot write the output: %s", strerror(errno));
        return rc ? rc : EXIT_FAIL;
    }
    return rc;
}

/* Read a whole file ("-": standard input) into *out (owned, +1 NUL). */
static int read_all(const char *path, char **out, size_t *len)
{
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t cap = 65536, n = 0;
    char *b = malloc(cap + 1);
    for (;;) {
        if (!b) {
            errno = ENOMEM;
            break;
        }
        if (n == cap) {
            char *nb = realloc(b, cap * 2 + 1);
            if (!nb) {
                free(b);
                b = NULL;
                errno = ENOMEM;
                break;
            }
            b = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(b);
            b = NULL;
            errno = e;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (fd != STDIN_FILENO)
        close(fd);
    if (!b)
        return -1;
    b[n] = '\0';
    *out = b;
    *len = n;
    return 0;
}

/* A duration: a decimal number with an optional unit "ms", "s" (the
 * default) or "m", > 0 and at most a day. Milliseconds, or -1. */
static int64_t parse_duration(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !(v > 0))
        return -1;
    double scale = 1000;
    if (strcmp(end, "ms") == 0)
        scale = 1;
    else if (strcmp(end, "m") == 0)
        scale = 60000;
    else if (*end && strcmp(end, "s") != 0)
        return -1;
    double ms = v * scale;
    if (ms < 1 || ms > 86400000.0)
        return -1;
    return (int64_t)(ms + 0.5);
}

/* Names of namespaces, rooms, sockets and events are UTF-8 text, as the
 * servers, their plugins and both stores take them (PostgreSQL refuses
 * other bytes; SQLite would keep a name nothing else can match or list).
 * 0, or EXIT_USAGE having said which of the n names v (given as what: an
 * option, or "ROOM" for an operand) is not. */
static int names_text(struct cli *c, const char *what, const char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!sg_utf8_valid(v[i], strlen(v[i]))) {
            say(c, "%s: a name that is not UTF-8 text; names of namespaces, rooms, sockets "
                   "and events are text", what);
            return EXIT_USAGE;
        }
    return 0;
}

/* An --nsp value (NULL: none given) begins with '/' and is text: 0, or
 * EXIT_USAGE having said why not. */
static int nsp_check(struct cli *c, const char *nsp)
{
    if (nsp && nsp[0] != '/') {
        say(c, "--nsp %s: a namespace begins with '/' (e.g. /chat)", nsp);
        return EXIT_USAGE;
    }
    return nsp ? names_text(c, "--nsp", &nsp, 1) : 0;
}

/* ---- options --------------------------------------------------------------------------- */

struct command;
static void command_help(FILE *f, const struct command *cmd);
static const struct command *find_command(const char *name);

/* The argument getopt just refused. For a short option, GNU getopt has
 * moved optind past the element only when the refused character was its
 * last; otherwise the element is still argv[optind]. */
static const char *refused_arg(int argc, char **argv)
{
    const char *prev = optind >= 1 && optind - 1 < argc ? argv[optind - 1] : "";
    if (!optopt)
        return prev; /* a long option: always moved past */
    size_t n = strlen(prev);
    if (prev[0] == '-' && prev[1] != '-' && n > 1 && prev[n - 1] == optopt)
        return prev;
    if (optind < argc && argv[optind][0] == '-' && argv[optind][1] != '-')
        return argv[optind];
    return NULL;
}

/* Common endings of every command's getopt loop. Returns -1 to go on,
 * or the exit code to return now. */
static int common_opt(struct cli *c, int o, int argc, char **argv)
{
    switch (o) {
    case 'h':
        command_help(stdout, find_command(c->cmd));
        return 0;
    case 'v':
        if (++c->verbose > 1)
            sg_log_init("siogate", SG_LOG_INFO);
        return -1;
    case ':':
        say(c, "option '%s' needs a value; see 'siogate %s --help'", argv[optind - 1], c->cmd);
        return EXIT_USAGE;
    default: {
        const char *bad = refused_arg(argc, argv);
        /* an argument that begins with '-' (a negative number, or a socket
         * id: ids may begin with '-') looks like an option */
        if (bad && bad[0] == '-' && bad[1] != '-' &&
            (strchr("0123456789.", bad[1]) || sg_id_valid(bad)))
            say(c, "unknown option '%s'; put '--' before the arguments when one begins "
                   "with '-' (a negative number, a socket id): siogate %s [OPTIONS] -- ARG...",
                bad, c->cmd);
        else if (optopt)
            say(c, "unknown option '-%c'; see 'siogate %s --help'", optopt, c->cmd);
        else
            say(c, "unknown option '%s'; see 'siogate %s --help'", bad, c->cmd);
        return EXIT_USAGE;
    }
    }
}

#define COMMON_LONG {"help", no_argument, NULL, 'h'}, {"verbose", no_argument, NULL, 'v'}

static void getopt_reset(void)
{
    optind = 0; /* glibc: full re-initialisation */
    opterr = 0;
}

/* ---- what commands need -------------------------------------------------------------------- */

static int need_config(struct cli *c)
{
    if (c->cfg_ready)
        return 0;
    char err[1024] = "out of memory";
    if (sg_config_defaults(&c->cfg) < 0) {
        say(c, "out of memory");
        return EXIT_FAIL;
    }
    c->cfg_ready = true;
    const char *path = c->conf_path ? c->conf_path : SG_DEFAULT_CONF;
    if (!c->conf_path && access(path, F_OK) < 0 && errno == ENOENT)
        return 0; /* like the servers: no default file, the built-in defaults */
    if (access(path, R_OK) < 0) {
        say(c, "cannot read the configuration %s: %s; give --conf FILE (or set SIOGATE_CONF)",
            path, strerror(errno));
        return EXIT_USAGE;
    }
    if (sg_config_load(&c->cfg, path, err, sizeof err) < 0) {
        say(c, "%s; fix the configuration ('siogate --conf %s check' lists every problem)", err,
            path);
        return EXIT_USAGE;
    }
    return 0;
}

/* The CLI's own connection; the store must exist at this program's schema. */
static int need_admin(struct cli *c)
{
    int rc = need_config(c);
    if (rc || c->admin)
        return rc;
    cap_start();
    char err[1024];
    int version;
    rc = sg_admin_open(c->cfg.db, &c->admin, &version, err, sizeof err);
    switch (rc) {
    case SG_ADMIN_OK:
        return 0;
    case SG_ADMIN_MISSING:
        if (db_is_pg(c))
            say(c, "%s; check the db setting, that the PostgreSQL server runs and that the "
                   "database and role exist", err);
        else
            say(c, "no store at %s; create it with 'siogate init' (or set db in the "
                   "configuration)", c->cfg.db);
        return EXIT_FAIL;
    case SG_ADMIN_SCHEMA:
        if (version == 0 && db_is_pg(c))
            say(c, "%s; create the schema with 'siogate init'", err);
        else if (version >= 0 && version > sg_store_latest_version(c->cfg.db))
            say(c, "%s; use the siogate that matches the servers", err);
        else
            say(c, "%s; run 'siogate migrate'", err);
        return EXIT_FAIL;
    case SG_ADMIN_BUSY:
        say(c, "%s; retry later", err);
        return EXIT_LOCKED;
    default:
        say(c, "%s; check the db setting and the %s", err,
            db_is_pg(c) ? "role's privileges" : "file's permissions");
        return EXIT_FAIL;
    }
}

/* An admin call failed with rc: say it, return the exit code. */
static int admin_failed(struct cli *c, int rc, const char *what)
{
    if (rc == SG_ADMIN_BUSY) {
        say(c, "%s: %s; retry later", what, sg_admin_error(c->admin));
        return EXIT_LOCKED;
    }
    say(c, "%s: %s; check the store with 'siogate stats'", what, sg_admin_error(c->admin));
    return EXIT_FAIL;
}

/* The engine and a worker: with the plugins loaded when their handlers may
 * run (disconnect, gc), without them for emit (handlers never run on an
 * emit, and loading them is most of a short emit's start-up). The store is
 * checked first by need_admin, so that a missing store is not silently
 * created. */
static int need_engine(struct cli *c, bool plugins)
{
    int rc = need_admin(c);
    if (rc || c->worker)
        return rc;
    off_t mark = cap_size();
    if (!(c->engine = plugins ? sg_engine_new(&c->cfg) : sg_engine_new_emitter(&c->cfg)))
        return engine_failed(c, mark, "cannot start the engine",
                             "run 'siogate check' to see every problem");
    if (!(c->worker = sg_worker_new_on(c->engine, sg_admin_store(c->admin))))
        return engine_failed(c, mark, "cannot open the store",
                             db_is_pg(c) ? "check the db setting and the role's privileges"
                                         : "check the db setting and the file's permissions");
    return 0;
}

/* ---- emit -------------------------------------------------------------------------------------- */

static const char *const reserved_events[] = {
    "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener",
    NULL,
};

struct acks {
    json_t *pending;     /* socket id -> true, still awaited */
    int got;
};

static void ack_print(void *ud, const char *socket_id, json_t *args)
{
    struct acks *a = ud;
    if (!json_object_get(a->pending, socket_id))
        return; /* not ours, or a second reply */
    json_object_del(a->pending, socket_id);
    a->got++;
    json_t *line = json_pack("{s:s,s:O}", "id", socket_id, "args", args);
    if (line)
        put_json(line);
    json_decref(line);
    fflush(stdout);
}

/* Wait for the replies to mailbox until every socket in asked answered or
 * timeout_ms passed; print each as it comes. */
static int ack_wait(struct cli *c, const char *mailbox, json_t *asked, int64_t timeout_ms,
                    sg_bell *bell, off_t mark)
{
    struct acks a = {json_object(), 0};
    size_t i;
    json_t *id;
    json_array_foreach(asked, i, id) json_object_set_new(a.pending, json_string_value(id), json_true());
    int64_t deadline = sg_mono_ms() + timeout_ms;
    int rc = 0;
    for (;;) {
        if (sg_engine_ack_replies(c->worker, mailbox, ack_print, &a) < 0) {
            rc = engine_failed(c, mark, "cannot read the acknowledgements",
                               "check the store with 'siogate stats'");
            break;
        }
        if (json_object_size(a.pending) == 0)
            break;
        int64_t left = deadline - sg_mono_ms();
        if (left <= 0)
            break;
        /* a ring naming our mailbox (or "*") is the cue; anything else is
         * another session's business. The store is re-read at least every
         * 250 ms anyway: a ring is a hint. */
        int64_t until = sg_mono_ms() + (left < 250 ? left : 250);
        bool cue = false;
        while (!cue) {
            int64_t wait = until - sg_mono_ms();
            if (wait <= 0)
                break;
            struct pollfd p = {bell ? sg_bell_fd(bell) : -1, POLLIN, 0};
            int n = poll(&p, 1, (int)wait);
            if (n < 0 && errno != EINTR)
                break;
            char msg[SG_BELL_MAX + 1];
            int len;
            while (bell && (len = sg_bell_recv(bell, msg, sizeof msg)) > 0)
                if (strcmp(msg, SG_BELL_ALL) == 0 || strstr(msg, mailbox))
                    cue = true;
        }
    }
    if (rc == 0 && json_object_size(a.pending) > 0) {
        /* name the silent sockets: the first few, then how many more */
        size_t missing = json_object_size(a.pending), shown = 0;
        sg_buf ids = SG_BUF_INIT;
        const char *k;
        json_t *v;
        json_object_foreach(a.pending, k, v) {
            if (shown == 10) {
                sg_buf_printf(&ids, " and %zu more", missing - shown);
                break;
            }
            sg_buf_printf(&ids, "%s%s", shown++ ? " " : "", k);
        }
        say(c, "%zu of %zu socket(s) did not acknowledge within %lld ms: %s; "
               "raise --ack or check those clients",
            missing, json_array_size(asked), (long long)timeout_ms, sg_buf_str(&ids));
        sg_buf_free(&ids);
        rc = EXIT_TIMEOUT;
    }
    json_decref(a.pending);
    return rc;
}

/* The event's arguments (*args, new, also on failure: the caller frees
 * it): the JSON ARGs argv[first..argc), or the array on standard input,
 * then the --bin files. 0 or an exit code. */
static int emit_args(struct cli *c, int first, int argc, char **argv, bool args_stdin,
                     const struct strv *bins, json_t **args)
{
    if (args_stdin) {
        char *text;
        size_t len;
        json_error_t je;
        if (read_all("-", &text, &len) < 0) {
            say(c, "cannot read standard input: %s", strerror(errno));
            return EXIT_FAIL;
        }
        *args = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        free(text);
        if (!*args || !json_is_array(*args)) {
            if (*args)
                say(c, "standard input holds JSON but not an array; give one array of the "
                       "arguments, e.g. [1,\"two\",{\"three\":3}]");
            else
                say(c, "standard input is not JSON (line %d: %s); give one array of the "
                       "arguments, e.g. [1,\"two\",{\"three\":3}]", je.line, je.text);
            return EXIT_USAGE;
        }
    } else {
        if (!(*args = json_array())) {
            say(c, "out of memory");
            return EXIT_FAIL;
        }
        for (int i = first; i < argc; i++) {
            json_error_t je;
            json_t *v = json_loads(argv[i], JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
            if (!v) {
                say(c, "argument %d is not JSON: '%.60s%s' (%s); quote strings as '\"text\"'",
                    i - first + 1, argv[i], strlen(argv[i]) > 60 ? "..." : "", je.text);
                return EXIT_USAGE;
            }
            if (json_array_append_new(*args, v) < 0) {
                say(c, "out of memory");
                return EXIT_FAIL;
            }
        }
    }
    for (size_t i = 0; i < bins->n; i++) {
        char *bytes;
        size_t len;
        if (read_all(bins->v[i], &bytes, &len) < 0) {
            say(c, "--bin %s: %s; give a readable file (or - for standard input)", bins->v[i],
                strerror(errno));
            return EXIT_FAIL;
        }
        json_t *b = sg_sio_binary_new(bytes, len);
        free(bytes);
        if (!b || json_array_append_new(*args, b) < 0) {
            say(c, "out of memory");
            return EXIT_FAIL;
        }
    }
    return 0;
}

/* --socket without --nsp: the namespace of the live ones among sockets
 * into found ("" when none is live). 0 or an exit code. */
static int emit_nsp(struct cli *c, const struct strv *sockets, char *found, size_t cap)
{
    *found = '\0';
    for (size_t i = 0; i < sockets->n; i++) {
        char here[1024];
        int r = sg_admin_socket_nsp(c->admin, sockets->v[i], here, sizeof here);
        if (r == SG_ADMIN_NOTFOUND)
            continue; /* not live: it is reached by nothing */
        if (r < 0)
            return admin_failed(c, r, "cannot look the socket up");
        if (*found && strcmp(found, here) != 0) {
            say(c, "the sockets are in different namespaces (%s, %s); emit to each "
                   "namespace separately, with --nsp", found, here);
            return EXIT_FAIL;
        }
        snprintf(found, cap, "%s", here);
    }
    return 0;
}

static int cmd_emit(struct cli *c, int argc, char **argv)
{
    static const char so[] = ":n:t:x:s:vh";
    static const struct option lo[] = {
        {"nsp", required_argument, NULL, 'n'},    {"to", required_argument, NULL, 't'},
        {"except", required_argument, NULL, 'x'}, {"socket", required_argument, NULL, 's'},
        {"args-stdin", no_argument, NULL, 'I'},   {"bin", required_argument, NULL, 'b'},
        {"volatile", no_argument, NULL, 'V'},     {"ack", required_argument, NULL, 'a'},
        COMMON_LONG,                              {NULL, 0, NULL, 0},
    };
    const char *nsp = NULL;
    struct strv to = {0}, except = {0}, sockets = {0}, bins = {0};
    bool args_stdin = false, is_volatile = false;
    int64_t ack_ms = 0;
    json_t *args = NULL;
    int rc = 0, o;
    getopt_reset();
    while (rc == 0 && (o = getopt_long(argc, argv, so, lo, NULL)) != -1) {
        switch (o) {
        case 'n': nsp = optarg; break;
        case 't': strv_push(&to, optarg); break;
        case 'x': strv_push(&except, optarg); break;
        case 's': strv_push(&sockets, optarg); break;
        case 'b': strv_push(&bins, optarg); break;
        case 'I': args_stdin = true; break;
        case 'V': is_volatile = true; break;
        case 'a':
            if ((ack_ms = parse_duration(optarg)) < 0) {
                say(c, "--ack %s: not a duration; give e.g. 5 (seconds), 1.5s or 500ms", optarg);
                rc = EXIT_USAGE;
            }
            break;
        default: {
            int r = common_opt(c, o, argc, argv);
            if (r >= 0)
                rc = r ? r : -1;
        }
        }
    }
    if (rc)
        goto out;
    /* ---- check the request before touching anything */
    if (optind >= argc) {
        say(c, "no EVENT given; usage: siogate emit [OPTIONS] EVENT [ARG]...");
        rc = EXIT_USAGE;
        goto out;
    }
    const char *event = argv[optind++];
    if (!*event) {
        say(c, "the EVENT name is empty; give a name");
        rc = EXIT_USAGE;
        goto out;
    }
    for (const char *const *r = reserved_events; *r; r++)
        if (strcmp(event, *r) == 0) {
            say(c, "'%s' is a reserved event name that clients never see; choose another name",
                event);
            rc = EXIT_USAGE;
            goto out;
        }
    if ((rc = nsp_check(c, nsp)) || (rc = names_text(c, "EVENT", &event, 1)))
        goto out;
    const struct strv *lists[] = {&to, &except, &sockets};
    const char *names[] = {"--to", "--except", "--socket"};
    for (size_t l = 0; l < 3; l++) {
        for (size_t i = 0; i < lists[l]->n; i++)
            if (!*lists[l]->v[i]) {
                say(c, "%s needs a non-empty name", names[l]);
                rc = EXIT_USAGE;
                goto out;
            }
        if ((rc = names_text(c, names[l], lists[l]->v, lists[l]->n)))
            goto out;
    }
    if (args_stdin && optind < argc) {
        say(c, "give the arguments either on the command line or with --args-stdin, not both");
        rc = EXIT_USAGE;
        goto out;
    }
    size_t from_stdin = 0;
    for (size_t i = 0; i < bins.n; i++)
        from_stdin += strcmp(bins.v[i], "-") == 0;
    if (from_stdin + args_stdin > 1) {
        say(c, "standard input can be read only once (--args-stdin, --bin -); "
               "put the other data in a file");
        rc = EXIT_USAGE;
        goto out;
    }
    if ((rc = emit_args(c, optind, argc, argv, args_stdin, &bins, &args)))
        goto out;
    /* ---- the store */
    if ((rc = need_admin(c)))
        goto out;
    char found[1024];
    if (!nsp && sockets.n) {
        if ((rc = emit_nsp(c, &sockets, found, sizeof found)))
            goto out;
        if (*found)
            nsp = found;
    }
    if (!nsp)
        nsp = "/";
    struct strv rooms = {0};
    for (size_t i = 0; i < to.n; i++)
        strv_push(&rooms, to.v[i]);
    for (size_t i = 0; i < sockets.n; i++)
        strv_push(&rooms, sockets.v[i]); /* every socket is in its own room */
    /* no --to and no --socket: rooms NULL, the whole namespace */
    sg_target t = {nsp, rooms.v, except.v, is_volatile ? SG_EMIT_VOLATILE : 0};
    if ((rc = need_engine(c, false))) {
        strv_free(&rooms);
        goto out;
    }
    off_t mark = cap_size();
    if (ack_ms == 0) {
        int n = sg_engine_emit(c->worker, &t, event, args);
        args = NULL; /* stolen */
        if (n < 0)
            rc = engine_failed(c, mark, "the emit failed", "check the store with 'siogate stats'");
        else if (c->verbose)
            printf("%d\n", n);
    } else {
        /* a mailbox unique to this run; the waiter listens before the emit,
         * so no ring can be missed */
        char id[SG_ID_LEN + 1], mailbox[64];
        sg_id_new(id);
        snprintf(mailbox, sizeof mailbox, "@cli.%ld.%s", (long)getpid(), id);
        char *dir = sg_config_bell_dir(&c->cfg);
        sg_bell *bell = dir ? sg_bell_waiter_db(dir, c->cfg.db) : NULL;
        free(dir);
        json_t *asked = json_array();
        int n = sg_engine_emit_ack(c->worker, &t, event, args, mailbox, ack_ms, asked);
        args = NULL;
        if (n < 0) {
            rc = engine_failed(c, mark, "the emit failed", "check the store with 'siogate stats'");
        } else {
            if (c->verbose) /* stdout carries only the replies */
                say(c, "asked %d socket%s", n, n == 1 ? "" : "s");
            rc = ack_wait(c, mailbox, asked, ack_ms, bell, mark);
            sg_engine_ack_forget(c->worker, mailbox);
        }
        json_decref(asked);
        sg_bell_close(bell);
    }
    strv_free(&rooms);
out:
    if (rc < 0)
        rc = 0; /* --help */
    json_decref(args);
    strv_free(&to);
    strv_free(&except);
    strv_free(&sockets);
    strv_free(&bins);
    return finish_output(c, rc);
}

/* ---- sockets, rooms, stats ------------------------------------------------------------------ */

/* Parse options shared by the listing commands: with_room for sockets
 * (--room), with_nsp for sockets and rooms (--nsp). */
struct list_opts {
    const char *nsp, *room;
    bool json;
};

static int list_options(struct cli *c, int argc, char **argv, bool with_nsp, bool with_room,
                        struct list_opts *lo_out)
{
    static const struct option all[] = {
        {"json", no_argument, NULL, 'j'},      COMMON_LONG,
        {"nsp", required_argument, NULL, 'n'}, {"room", required_argument, NULL, 'r'},
        {NULL, 0, NULL, 0},
    };
    static const struct option no_room[] = {
        {"json", no_argument, NULL, 'j'},      COMMON_LONG,
        {"nsp", required_argument, NULL, 'n'}, {NULL, 0, NULL, 0},
    };
    static const struct option json_only[] = {
        {"json", no_argument, NULL, 'j'}, COMMON_LONG, {NULL, 0, NULL, 0},
    };
    const char *so = with_room ? ":n:r:jvh" : with_nsp ? ":n:jvh" : ":jvh";
    const struct option *lo = with_room ? all : with_nsp ? no_room : json_only;
    int o;
    getopt_reset();
    while ((o = getopt_long(argc, argv, so, lo, NULL)) != -1) {
        switch (o) {
        case 'n': lo_out->nsp = optarg; break;
        case 'r': lo_out->room = optarg; break;
        case 'j': lo_out->json = true; break;
        default: {
            int r = common_opt(c, o, argc, argv);
            if (r >= 0)
                return r ? r : -1;
        }
        }
    }
    if (optind < argc) {
        say(c, "unexpected argument '%s'; see 'siogate %s --help'", argv[optind], c->cmd);
        return EXIT_USAGE;
    }
    int rc = nsp_check(c, lo_out->nsp);
    return rc ? rc : lo_out->room ? names_text(c, "--room", &lo_out->room, 1) : 0;
}

static int cmd_sockets(struct cli *c, int argc, char **argv)
{
    struct list_opts lo = {0};
    int rc = list_options(c, argc, argv, true, true, &lo);
    if (rc)
        return rc < 0 ? 0 : rc;
    if ((rc = need_admin(c)))
        return rc;
    json_t *list;
    int n = sg_admin_sockets(c->admin, lo.nsp, lo.room, lo.json, &list);
    if (n < 0)
        return admin_failed(c, n, "cannot list the sockets");
    if (lo.json) {
        put_json(list);
    } else {
        size_t i;
        json_t *s;
        json_array_foreach(list, i, s) {
            const char *id = json_string_value(json_object_get(s, "id"));
            put_field(stdout, id);
            putchar(' ');
            put_field(stdout, json_string_value(json_object_get(s, "nsp")));
            putchar(' ');
            put_field(stdout, json_string_value(json_object_get(s, "transport")));
            size_t k;
            json_t *r;
            json_array_foreach(json_object_get(s, "rooms"), k, r) {
                if (strcmp(json_string_value(r), id) == 0)
                    continue; /* its own room: the ID column */
                putchar(' ');
                put_field(stdout, json_string_value(r));
            }
            putchar('\n');
        }
    }
    json_decref(list);
    return finish_output(c, 0);
}

static int cmd_rooms(struct cli *c, int argc, char **argv)
{
    struct list_opts lo = {0};
    int rc = list_options(c, argc, argv, true, false, &lo);
    if (rc)
        return rc < 0 ? 0 : rc;
    if ((rc = need_admin(c)))
        return rc;
    json_t *list;
    int n = sg_admin_rooms(c->admin, lo.nsp, &list);
    if (n < 0)
        return admin_failed(c, n, "cannot list the rooms");
    if (lo.json) {
        put_json(list);
    } else {
        size_t i;
        json_t *r;
        json_array_foreach(list, i, r) {
            put_field(stdout, json_string_value(json_object_get(r, "nsp")));
            putchar(' ');
            put_field(stdout, json_string_value(json_object_get(r, "room")));
            printf(" %lld\n", (long long)json_integer_value(json_object_get(r, "members")));
        }
    }
    json_decref(list);
    return finish_output(c, 0);
}

static long long ival(json_t *o, const char *path1, const char *path2)
{
    json_t *v = json_object_get(o, path1);
    if (path2)
        v = json_object_get(v, path2);
    return (long long)json_integer_value(v);
}

/* A label value in the plain stats: "..." with \ " and newline escaped. */
static void put_label(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            printf("\\%c", *s);
        else if (*s == '\n')
            fputs("\\n", stdout);
        else
            putchar(*s);
    }
    putchar('"');
}

static int cmd_stats(struct cli *c, int argc, char **argv)
{
    struct list_opts lo = {0};
    int rc = list_options(c, argc, argv, false, false, &lo);
    if (rc)
        return rc < 0 ? 0 : rc;
    if ((rc = need_admin(c)))
        return rc;
    json_t *st;
    if ((rc = sg_admin_stats(c->admin, &st)) < 0)
        return admin_failed(c, rc, "cannot read the statistics");
    if (lo.json) {
        put_json(st);
    } else {
        printf("sessions_open %lld\n", ival(st, "sessions", "open"));
        printf("sessions_closed %lld\n", ival(st, "sessions", "closed"));
        printf("sessions_polling %lld\n", ival(st, "sessions", "polling"));
        printf("sessions_websocket %lld\n", ival(st, "sessions", "websocket"));
        printf("sessions_recoverable %lld\n", ival(st, "sessions", "recoverable"));
        printf("sockets %lld\n", ival(st, "sockets", "total"));
        const char *nsp;
        json_t *by;
        json_object_foreach(json_object_get(json_object_get(st, "sockets"), "namespaces"), nsp, by) {
            const char *tr;
            json_t *n;
            json_object_foreach(by, tr, n) {
                fputs("sockets{nsp=", stdout);
                put_label(nsp);
                fputs(",transport=", stdout);
                put_label(tr);
                printf("} %lld\n", (long long)json_integer_value(n));
            }
        }
        printf("rooms %lld\n", ival(st, "rooms", NULL));
        printf("queued_frames %lld\n", ival(st, "queue", "frames"));
        printf("queued_bytes %lld\n", ival(st, "queue", "bytes"));
        printf("acks_pending %lld\n", ival(st, "acks", "pending"));
        printf("store_db_bytes %lld\n", ival(st, "store", "db_bytes"));
        /* PostgreSQL: no files of ours beside the tables (sg_admin_stats) */
        if (json_object_get(json_object_get(st, "store"), "wal_bytes"))
            printf("store_wal_bytes %lld\n", ival(st, "store", "wal_bytes"));
        if (json_object_get(json_object_get(st, "store"), "shm_bytes"))
            printf("store_shm_bytes %lld\n", ival(st, "store", "shm_bytes"));
        printf("store_bytes %lld\n", ival(st, "store", "total_bytes"));
        printf("schema_version %lld\n", ival(st, "store", "schema"));
    }
    json_decref(st);
    return finish_output(c, 0);
}

/* ---- join, leave ----------------------------------------------------------------------------- */

static int rooms_change(struct cli *c, int argc, char **argv, bool join)
{
    static const char so[] = ":n:s:r:vh";
    static const struct option lo[] = {
        {"nsp", required_argument, NULL, 'n'}, {"socket", required_argument, NULL, 's'},
        {"room", required_argument, NULL, 'r'}, COMMON_LONG,
        {NULL, 0, NULL, 0},
    };
    const char *nsp = NULL;
    struct strv socks = {0}, froms = {0}, rooms = {0};
    sg_admin_sel *sel = NULL;
    int rc = 0, o;
    getopt_reset();
    while (rc == 0 && (o = getopt_long(argc, argv, so, lo, NULL)) != -1) {
        switch (o) {
        case 'n': nsp = optarg; break;
        case 's': strv_push(&socks, optarg); break;
        case 'r': strv_push(&froms, optarg); break;
        default: {
            int r = common_opt(c, o, argc, argv);
            if (r >= 0)
                rc = r ? r : -1;
        }
        }
    }
    if (rc)
        goto out;
    for (int i = optind; i < argc; i++)
        strv_push(&rooms, argv[i]);
    if (!socks.n && !froms.n) {
        say(c, "say whose rooms change: --socket ID or --room FROM; usage: siogate %s "
               "(--socket ID | --room FROM)... ROOM...", c->cmd);
        rc = EXIT_USAGE;
    } else if (!rooms.n) {
        say(c, "no ROOM given; usage: siogate %s (--socket ID | --room FROM)... ROOM...", c->cmd);
        rc = EXIT_USAGE;
    } else if (!(rc = nsp_check(c, nsp)) && !(rc = names_text(c, "ROOM", rooms.v, rooms.n)) &&
               !(rc = names_text(c, "--room", froms.v, froms.n))) {
        rc = names_text(c, "--socket", socks.v, socks.n);
    }
    for (size_t i = 0; rc == 0 && i < rooms.n + froms.n + socks.n; i++) {
        const char *v = i < rooms.n ? rooms.v[i]
                        : i < rooms.n + froms.n ? froms.v[i - rooms.n]
                        : socks.v[i - rooms.n - froms.n];
        if (!*v) {
            say(c, "empty names are not rooms nor sockets; give a name");
            rc = EXIT_USAGE;
        }
    }
    if (rc)
        goto out;
    size_t nsel = socks.n + froms.n;
    sel = calloc(nsel, sizeof *sel);
    if (!sel) {
        say(c, "out of memory");
        rc = EXIT_FAIL;
        goto out;
    }
    for (size_t i = 0; i < socks.n; i++)
        sel[i] = (sg_admin_sel){socks.v[i], NULL, nsp};
    for (size_t i = 0; i < froms.n; i++)
        sel[socks.n + i] = (sg_admin_sel){NULL, froms.v[i], nsp};
    if ((rc = need_admin(c)))
        goto out;
    int affected, settled;
    int r = sg_admin_rooms_change(c->admin, join, sel, nsel, rooms.v, &affected, &settled);
    if (r >= 0 && settled > 0) {
        /* broadcasts became their sessions' own frames: a rare event, so
         * every held session is re-checked */
        char *dir = sg_config_bell_dir(&c->cfg);
        sg_bell *bell = dir ? sg_bell_ringer_db(dir, c->cfg.db) : NULL;
        if (bell)
            sg_bell_ring(bell, SG_BELL_ALL, 1);
        sg_bell_close(bell);
        free(dir);
    }
    if (r == SG_ADMIN_NOTFOUND) {
        say(c, "%s; nothing changed (list the live sockets with 'siogate sockets')",
            sg_admin_error(c->admin));
        rc = EXIT_FAIL;
    } else if (r < 0) {
        rc = admin_failed(c, r, join ? "cannot join" : "cannot leave");
    } else if (c->verbose) {
        printf("%d\n", affected);
    }
out:
    if (rc < 0)
        rc = 0;
    free(sel);
    strv_free(&socks);
    strv_free(&froms);
    strv_free(&rooms);
    return finish_output(c, rc);
}

static int cmd_join(struct cli *c, int argc, char **argv) { return rooms_change(c, argc, argv, true); }
static int cmd_leave(struct cli *c, int argc, char **argv) { return rooms_change(c, argc, argv, false); }

/* ---- disconnect ------------------------------------------------------------------------------- */

static int cmd_disconnect(struct cli *c, int argc, char **argv)
{
    static const char so[] = ":n:s:r:acvh";
    static const struct option lo[] = {
        {"nsp", required_argument, NULL, 'n'}, {"socket", required_argument, NULL, 's'},
        {"room", required_argument, NULL, 'r'}, {"all", no_argument, NULL, 'a'},
        {"close", no_argument, NULL, 'c'},      COMMON_LONG,
        {NULL, 0, NULL, 0},
    };
    const char *nsp = NULL;
    struct strv socks = {0}, froms = {0};
    bool all = false, close_conn = false;
    json_t *targets = NULL;
    int rc = 0, o;
    getopt_reset();
    while (rc == 0 && (o = getopt_long(argc, argv, so, lo, NULL)) != -1) {
        switch (o) {
        case 'n': nsp = optarg; break;
        case 's': strv_push(&socks, optarg); break;
        case 'r': strv_push(&froms, optarg); break;
        case 'a': all = true; break;
        case 'c': close_conn = true; break;
        default: {
            int r = common_opt(c, o, argc, argv);
            if (r >= 0)
                rc = r ? r : -1;
        }
        }
    }
    if (rc)
        goto out;
    int kinds = (socks.n > 0) + (froms.n > 0) + all;
    if (optind < argc) {
        say(c, "unexpected argument '%s'; see 'siogate disconnect --help'", argv[optind]);
        rc = EXIT_USAGE;
    } else if (kinds != 1) {
        say(c, "%s; usage: siogate disconnect (--socket ID | --room ROOM | --all) [--close]",
            kinds ? "give only one of --socket, --room and --all"
                  : "say which sockets: --socket ID, --room ROOM or --all");
        rc = EXIT_USAGE;
    } else if (!(rc = nsp_check(c, nsp)) && !(rc = names_text(c, "--room", froms.v, froms.n))) {
        rc = names_text(c, "--socket", socks.v, socks.n);
    }
    if (rc)
        goto out;
    if ((rc = need_admin(c)))
        goto out;
    /* the sockets, as [id, ...], before anything changes */
    targets = json_array();
    for (size_t i = 0; i < socks.n; i++) {
        char here[1024];
        int r = sg_admin_socket_nsp(c->admin, socks.v[i], here, sizeof here);
        if (r == SG_ADMIN_OK && nsp && strcmp(here, nsp) != 0)
            r = SG_ADMIN_NOTFOUND;
        if (r == SG_ADMIN_NOTFOUND) {
            say(c, "no live socket %s%s%s; list them with 'siogate sockets'", socks.v[i],
                nsp ? " in namespace " : "", nsp ? nsp : "");
            rc = EXIT_FAIL;
            goto out;
        }
        if (r < 0) {
            rc = admin_failed(c, r, "cannot look the socket up");
            goto out;
        }
        json_array_append_new(targets, json_string(socks.v[i]));
    }
    for (size_t i = 0; i < froms.n || (all && i == 0); i++) {
        json_t *list;
        int n = sg_admin_sockets(c->admin, nsp, all ? NULL : froms.v[i], false, &list);
        if (n < 0) {
            rc = admin_failed(c, n, "cannot list the sockets");
            goto out;
        }
        size_t k;
        json_t *s;
        json_array_foreach(list, k, s) json_array_append(targets, json_object_get(s, "id"));
        json_decref(list);
    }
    if ((rc = need_engine(c, true)))
        goto out;
    int done = 0;
    size_t i;
    json_t *id;
    json_array_foreach(targets, i, id) {
        off_t mark = cap_size();
        int r = sg_engine_disconnect(c->worker, json_string_value(id), close_conn);
        if (r == SG_OK) {
            done++;
        } else if (r != SG_E_SID) {
            /* SG_E_SID: gone meanwhile (its client left, or --close took
             * its session with an earlier socket): nothing to do */
            rc = engine_failed(c, mark, "the disconnect failed",
                               "check the store with 'siogate stats'");
            break;
        }
    }
    if (rc == 0 && c->verbose)
        printf("%d\n", done);
out:
    if (rc < 0)
        rc = 0;
    json_decref(targets);
    strv_free(&socks);
    strv_free(&froms);
    return finish_output(c, rc);
}

/* ---- init, migrate, gc ---------------------------------------------------------------------- */

/* Commands without options of their own. Returns -1 to go on. */
static int plain_options(struct cli *c, int argc, char **argv)
{
    static const char so[] = ":vh";
    static const struct option lo[] = {COMMON_LONG, {NULL, 0, NULL, 0}};
    int o;
    getopt_reset();
    while ((o = getopt_long(argc, argv, so, lo, NULL)) != -1) {
        int r = common_opt(c, o, argc, argv);
        if (r >= 0)
            return r;
    }
    if (optind < argc) {
        say(c, "unexpected argument '%s'; see 'siogate %s --help'", argv[optind], c->cmd);
        return EXIT_USAGE;
    }
    return -1;
}

static int cmd_init(struct cli *c, int argc, char **argv)
{
    int rc = plain_options(c, argc, argv);
    if (rc >= 0)
        return rc;
    if ((rc = need_config(c)))
        return rc;
    cap_start();
    off_t mark = cap_size();
    sg_store *s = sg_store_open(c->cfg.db);
    if (!s)
        return engine_failed(c, mark, "cannot create or migrate the store",
                             db_is_pg(c) ? "check the db setting, that the PostgreSQL server "
                                           "runs and that the role may create tables"
                                         : "check the db setting and that its directory is "
                                           "writable");
    int v = sg_store_version(s);
    sg_store_close(s);
    if (c->verbose)
        printf("%d\n", v);
    return finish_output(c, 0);
}

static int cmd_gc(struct cli *c, int argc, char **argv)
{
    int rc = plain_options(c, argc, argv);
    if (rc >= 0)
        return rc;
    if ((rc = need_engine(c, true)))
        return rc;
    /* each sweep closes up to a batch of expired sessions, each in its own
     * transaction, with its disconnect handlers run once (a session a
     * server closed meanwhile is skipped); repeat while there is work */
    long total = 0;
    off_t mark = cap_size();
    for (;;) {
        int n = sg_engine_sweep(c->worker);
        if (n < 0)
            return engine_failed(c, mark, "the sweep failed", "check the store with 'siogate stats'");
        total += n;
        if (n == 0)
            break;
    }
    int done, in_wal;
    int r = sg_admin_checkpoint(c->admin, &done, &in_wal);
    if (r == SG_ADMIN_NOT_APPLICABLE) {
        /* PostgreSQL: its server checkpoints. Not a failure, and gc's
         * output stays the same on both stores: an info line (-v -v) */
        sg_info("gc: %s", sg_admin_error(c->admin));
    } else if (r < 0) {
        return admin_failed(c, r, "the checkpoint failed");
    }
    if (c->verbose)
        printf("%ld\n", total);
    return finish_output(c, 0);
}

/* ---- check ---------------------------------------------------------------------------------------- */

struct checker {
    struct cli *c;
    int problems;
};

static void problem(struct checker *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct checker *k, const char *fmt, ...)
{
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    say(k->c, "%s", msg);
    k->problems++;
}

static void fine(struct checker *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fine(struct checker *k, const char *fmt, ...)
{
    if (!k->c->verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("ok: ", stdout);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
}

/* Report every error line captured since mark as a problem. */
static int report_captured(struct checker *k, off_t mark)
{
    char *t = cap_text(mark);
    int n = 0;
    for (char *line = t; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *e = strstr(line, "]: error: ");
        if (e) {
            problem(k, "%s", e + strlen("]: error: "));
            n++;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(t);
    return n;
}

/* The configuration, line by line, so that every bad line is reported:
 * each line is parsed over what the good lines before it built (a line
 * that fails leaves the configuration as it was). A line is parsed as the
 * text of its own line number (preceded by empty lines), so that messages
 * name the right line. */
static void check_config(struct checker *k, const char *path)
{
    struct cli *c = k->c;
    char err[1024];
    if (sg_config_defaults(&c->cfg) < 0) {
        problem(k, "out of memory");
        return;
    }
    c->cfg_ready = true;
    if (!path) {
        if (access(SG_DEFAULT_CONF, F_OK) < 0 && errno == ENOENT) {
            fine(k, "no configuration file at %s: the built-in defaults apply", SG_DEFAULT_CONF);
            return;
        }
        path = SG_DEFAULT_CONF;
    }
    sg_config whole;
    bool whole_ok = sg_config_defaults(&whole) == 0 &&
                    sg_config_load(&whole, path, err, sizeof err) == 0;
    sg_config_free(&whole);
    if (whole_ok) {
        sg_config_load(&c->cfg, path, err, sizeof err);
        fine(k, "configuration %s", path);
        return;
    }
    char *text;
    size_t len;
    if (read_all(path, &text, &len) < 0) {
        problem(k, "%s: %s; give a readable file with --conf", path, strerror(errno));
        return;
    }
    int before = k->problems;
    sg_buf one = SG_BUF_INIT;
    int lineno = 1;
    for (char *line = text; line && *line; lineno++) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        sg_buf_reset(&one);
        for (int i = 1; i < lineno; i++)
            sg_buf_putc(&one, '\n');
        sg_buf_puts(&one, line);
        char lerr[1024];
        if (sg_config_parse(&c->cfg, path, sg_buf_str(&one), lerr, sizeof lerr) < 0)
            problem(k, "%s", lerr);
        line = nl ? nl + 1 : NULL;
    }
    sg_buf_free(&one);
    free(text);
    /* what only the whole file shows (a key given twice, say) */
    if (k->problems == before)
        problem(k, "%s", err);
}

/* A PostgreSQL store: reachable, and at this program's schema or without
 * one yet (what 'siogate init' creates, as a missing file for SQLite). */
static void check_store_pg(struct checker *k)
{
    struct cli *c = k->c;
    sg_admin *a;
    char err[1024];
    int version;
    int rc = sg_admin_open(c->cfg.db, &a, &version, err, sizeof err);
    if (rc == SG_ADMIN_OK) {
        fine(k, "store %s (schema version %d)", db_shown(c), version);
        sg_admin_close(a);
    } else if (rc == SG_ADMIN_SCHEMA && version == 0) {
        fine(k, "the store %s has no siogate schema yet ('siogate init' creates it)",
             db_shown(c));
    } else if (rc == SG_ADMIN_SCHEMA && version > 0 && version < sg_store_latest_version(c->cfg.db)) {
        problem(k, "%s; run 'siogate migrate'", err);
    } else if (rc == SG_ADMIN_MISSING) {
        problem(k, "%s; check the db setting, that the PostgreSQL server runs and that the "
                   "database and role exist", err);
    } else {
        problem(k, "%s", err);
    }
}

static void check_store(struct checker *k)
{
    struct cli *c = k->c;
    const char *db = c->cfg.db;
    if (sg_store_is_pg(db)) {
        check_store_pg(k);
        return;
    }
    struct stat sb;
    if (stat(db, &sb) < 0) {
        char *dir = strdup(db);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        const char *d = !dir ? "." : slash == dir ? "/" : slash ? (*slash = '\0', dir) : ".";
        if (access(d, W_OK) < 0)
            problem(k, "the store %s does not exist and its directory %s is not writable (%s); "
                       "create the directory for the user that runs siogate",
                    db, d, strerror(errno));
        else
            fine(k, "the store %s does not exist yet ('siogate init' creates it)", db);
        free(dir);
        return;
    }
    sg_admin *a;
    char err[1024];
    int version;
    int rc = sg_admin_open(db, &a, &version, err, sizeof err);
    if (rc == SG_ADMIN_OK) {
        fine(k, "store %s (schema version %d)", db, version);
        sg_admin_close(a);
    } else if (rc == SG_ADMIN_SCHEMA && version >= 0 && version < sg_store_latest_version(db)) {
        problem(k, "%s; run 'siogate migrate'", err);
    } else {
        problem(k, "%s", err);
    }
}

/* Load plugins with the engine against a throw-away in-memory store, so
 * that checking changes nothing on disk. */
static bool try_plugins(struct checker *k, char **paths, size_t n)
{
    sg_config tmp = k->c->cfg;
    tmp.db = (char *)":memory:";
    tmp.plugins = paths;
    tmp.nplugins = n;
    off_t mark = cap_size();
    sg_engine *e = sg_engine_new(&tmp);
    if (e) {
        sg_engine_free(e);
        return true;
    }
    if (report_captured(k, mark) == 0)
        problem(k, "cannot load %s", n == 1 ? paths[0] : "the plugins together");
    return false;
}

static void check_plugins(struct checker *k)
{
    sg_config *cfg = &k->c->cfg;
    bool each_ok = true;
    for (size_t i = 0; i < cfg->nplugins; i++) {
        char *file = sg_plugin_file(cfg->plugins[i]);
        if (!file || access(file, R_OK) < 0) {
            int err = file ? errno : ENOMEM;
            if (strcmp(file ? file : "", cfg->plugins[i]))
                problem(k, "plugin %s (%s): %s; fix the plugin line (a name installed in the "
                           "plugin directory, or a path)",
                        cfg->plugins[i], file ? file : "?", strerror(err));
            else
                problem(k, "plugin %s: %s; fix the plugin line (a path relative to the directory "
                           "the programs run in, or absolute)",
                        cfg->plugins[i], strerror(err));
            free(file);
            each_ok = false;
            continue;
        }
        free(file);
        if (try_plugins(k, &cfg->plugins[i], 1))
            fine(k, "plugin %s", cfg->plugins[i]);
        else
            each_ok = false;
    }
    /* together: conflicts between plugins (an ack name twice, say) */
    if (each_ok && cfg->nplugins > 1 && try_plugins(k, cfg->plugins, cfg->nplugins))
        fine(k, "the %zu plugins together", cfg->nplugins);
}

static int cmd_check(struct cli *c, int argc, char **argv)
{
    int rc = plain_options(c, argc, argv);
    if (rc >= 0)
        return rc;
    cap_start();
    struct checker k = {c, 0};
    check_config(&k, c->conf_path);
    check_store(&k);
    check_plugins(&k);
    if (k.problems) {
        say(c, "%d problem%s found", k.problems, k.problems == 1 ? "" : "s");
        return finish_output(c, EXIT_FAIL);
    }
    return finish_output(c, 0);
}

/* ---- the table --------------------------------------------------------------------------------- */

static int cmd_help(struct cli *c, int argc, char **argv);

struct command {
    const char *name;
    int (*run)(struct cli *c, int argc, char **argv);
    const char *usage;    /* after "siogate " */
    const char *summary;
    const char *help;     /* the options and details */
};

static const struct command commands[] = {
    {"emit", cmd_emit,
     "emit [--nsp NSP] [--to ROOM]... [--except ROOM]... [--socket ID]...\n"
     "             [--volatile] [--bin FILE]... [--ack TIMEOUT] EVENT [ARG]...\n"
     "       siogate emit [OPTIONS] --args-stdin EVENT < ARRAY.json",
     "emit an event to sockets, as a plugin would",
     "Each ARG is one JSON value: quote strings ('\"text\"'); a word that is not\n"
     "JSON is an error. Put '--' before arguments that begin with '-'.\n"
     "Without --to and --socket the whole namespace is reached.\n"
     "\n"
     "  -n, --nsp NSP        namespace (default /, or the namespace of the\n"
     "                       --socket sockets)\n"
     "  -t, --to ROOM        members of ROOM (repeatable: the union)\n"
     "  -x, --except ROOM    skip the members of ROOM (repeatable)\n"
     "  -s, --socket ID      the socket ID (repeatable)\n"
     "      --args-stdin     read the arguments from standard input: one JSON array\n"
     "      --bin FILE       add the bytes of FILE as a binary argument, after the\n"
     "                       others (repeatable; - is standard input)\n"
     "      --volatile       skip clients that cannot take the packet right now\n"
     "      --ack TIMEOUT    ask each socket for an acknowledgement and print the\n"
     "                       replies as they come, one JSON line each:\n"
     "                       {\"id\":SOCKET,\"args\":[...]}; TIMEOUT in seconds, or\n"
     "                       with a unit: 500ms, 2s, 1m. Exit 4 when some did not\n"
     "                       answer in time (their ids on stderr)\n"
     "  -v, --verbose        print the number of sockets reached (with --ack: on\n"
     "                       stderr, \"siogate emit: asked N sockets\")\n"
     "  -h, --help           this text\n"},
    {"sockets", cmd_sockets, "sockets [--nsp NSP] [--room ROOM] [--json]",
     "list the live sockets",
     "One line per socket: ID NSP TRANSPORT [ROOM]... (its own room left out).\n"
     "Bytes <= 0x20, 0x7f and '\\' in names are shown as \\xHH.\n"
     "\n"
     "  -n, --nsp NSP        only this namespace (default: every namespace)\n"
     "  -r, --room ROOM      only members of ROOM\n"
     "  -j, --json           one JSON array of {\"id\",\"nsp\",\"sid\",\"transport\",\n"
     "                       \"rooms\",\"data\",\"connected_at\",\"handshake\"}\n"
     "  -h, --help           this text\n"},
    {"rooms", cmd_rooms, "rooms [--nsp NSP] [--json]", "list the rooms and their member counts",
     "One line per room with live members: NSP ROOM COUNT (the rooms named\n"
     "after a socket's own id left out).\n"
     "\n"
     "  -n, --nsp NSP        only this namespace (default: every namespace)\n"
     "  -j, --json           one JSON array of {\"nsp\",\"room\",\"members\"}\n"
     "  -h, --help           this text\n"},
    {"join", cmd_join, "join (--socket ID | --room FROM)... [--nsp NSP] ROOM...",
     "make sockets join rooms",
     "  -s, --socket ID      the socket ID (repeatable)\n"
     "  -r, --room FROM      every member of the room FROM (repeatable)\n"
     "  -n, --nsp NSP        only in this namespace (default: each socket's own)\n"
     "  -v, --verbose        print the number of sockets selected\n"
     "  -h, --help           this text\n"},
    {"leave", cmd_leave, "leave (--socket ID | --room FROM)... [--nsp NSP] ROOM...",
     "make sockets leave rooms",
     "A socket never leaves the room named by its own id.\n"
     "\n"
     "  -s, --socket ID      the socket ID (repeatable)\n"
     "  -r, --room FROM      every member of the room FROM (repeatable)\n"
     "  -n, --nsp NSP        only in this namespace (default: each socket's own)\n"
     "  -v, --verbose        print the number of sockets selected\n"
     "  -h, --help           this text\n"},
    {"disconnect", cmd_disconnect,
     "disconnect (--socket ID... | --room ROOM... | --all) [--nsp NSP] [--close]",
     "disconnect sockets (the server's disconnect)",
     "The clients get a DISCONNECT; disconnect handlers run with the reason\n"
     "\"server namespace disconnect\".\n"
     "\n"
     "  -s, --socket ID      the socket ID (repeatable)\n"
     "  -r, --room ROOM      every member of ROOM (repeatable)\n"
     "  -a, --all            every socket\n"
     "  -n, --nsp NSP        only this namespace (default: every namespace)\n"
     "  -c, --close          also close each client's connection (all its sockets)\n"
     "  -v, --verbose        print the number of sockets disconnected\n"
     "  -h, --help           this text\n"},
    {"stats", cmd_stats, "stats [--json]", "show figures about the store",
     "Plain output: KEY VALUE lines (sessions, sockets by namespace and\n"
     "transport, rooms, queued frames, pending acks, store file sizes;\n"
     "PostgreSQL: the size of siogate's tables, no WAL nor SHM lines).\n"
     "\n"
     "  -j, --json           one JSON object\n"
     "  -h, --help           this text\n"},
    {"init", cmd_init, "init", "create the store, or bring it to the latest schema",
     "  -v, --verbose        print the schema version\n"
     "  -h, --help           this text\n"},
    {"migrate", cmd_init, "migrate", "bring the store to the latest schema (as init)",
     "  -v, --verbose        print the schema version\n"
     "  -h, --help           this text\n"},
    {"gc", cmd_gc, "gc", "expire dead sessions (safe from cron, at any frequency)",
     "Closes the sessions whose heartbeat or connect deadline passed, running\n"
     "their disconnect handlers exactly once (also when a server does the\n"
     "same at the same time), expires awaited acks, purges old closed\n"
     "sessions, then checkpoints the WAL without waiting for anyone (SQLite;\n"
     "PostgreSQL checkpoints its own).\n"
     "\n"
     "  -v, --verbose        print the number of sessions closed\n"
     "  -h, --help           this text\n"},
    {"check", cmd_check, "check", "validate the configuration, the store and every plugin",
     "Reports every problem found, one line each, and exits 1 if there were\n"
     "any. Plugins are loaded against a throw-away in-memory store.\n"
     "\n"
     "  -v, --verbose        also say what is fine, on stdout\n"
     "  -h, --help           this text\n"},
    {"help", cmd_help, "help [COMMAND]", "show the help of siogate or of a command", ""},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; name && i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void command_help(FILE *f, const struct command *cmd)
{
    if (!cmd)
        return;
    fprintf(f, "usage: siogate %s\n\n%s.\n", cmd->usage, cmd->summary);
    if (*cmd->help)
        fprintf(f, "\n%s", cmd->help);
    fprintf(f, "\nGlobal options (before the command): --conf FILE, --verbose.\n"
               "See siogate(1).\n");
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: siogate [--conf FILE] [--verbose] COMMAND [OPTIONS] [ARGS]\n"
            "\n"
            "The gateway CLI of siogate: emit and administer through the store.\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
            "\n"
            "options:\n"
            "  -c, --conf FILE  configuration file (default $SIOGATE_CONF, else\n"
            "                   %s; built-in defaults when that is missing)\n"
            "  -v, --verbose    counts on stdout (twice: info log lines too)\n"
            "  -V, --version    print the version\n"
            "  -h, --help       this text; 'siogate COMMAND --help' for a command\n"
            "\n"
            "A 'plugin = NAME' without a '/' is NAME.so in $SIOGATE_PLUGIN_DIR, else\n"
            "in %s.\n"
            "\n"
            "Exit status: 0 success, 1 failure, 2 bad usage or configuration,\n"
            "3 the store stayed locked, 4 emit --ack: some acknowledgements missing.\n",
            SG_DEFAULT_CONF, SG_PKGLIBDIR);
}

static int cmd_help(struct cli *c, int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        command_help(stdout, find_command("help"));
        return finish_output(c, 0);
    }
    if (argc > 2) {
        say(c, "give at most one COMMAND; usage: siogate help [COMMAND]");
        return EXIT_USAGE;
    }
    if (argc < 2) {
        usage(stdout);
        return finish_output(c, 0);
    }
    const struct command *cmd = find_command(argv[1]);
    if (!cmd) {
        say(c, "unknown command '%s'; 'siogate help' lists them", argv[1]);
        return EXIT_USAGE;
    }
    command_help(stdout, cmd);
    return finish_output(c, 0);
}

/* ---- main ----------------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"conf", required_argument, NULL, 'c'},
        {"verbose", no_argument, NULL, 'v'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli c = {0};
    sg_store_process_init(true);
    c.conf_path = getenv("SIOGATE_CONF");
    if (c.conf_path && !*c.conf_path)
        c.conf_path = NULL;
    int o;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "+:c:vVh", opts, NULL)) != -1) {
        switch (o) {
        case 'c': c.conf_path = optarg; break;
        case 'v': c.verbose++; break;
        case 'V': printf("siogate %s\n", PACKAGE_VERSION); return finish_output(&c, 0);
        case 'h': usage(stdout); return finish_output(&c, 0);
        case ':':
            say(&c, "option '%s' needs a value; try 'siogate --help'", argv[optind - 1]);
            return EXIT_USAGE;
        default:
            if (optopt)
                say(&c, "unknown option '-%c'; try 'siogate --help'", optopt);
            else
                say(&c, "unknown option '%s'; try 'siogate --help'", argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        say(&c, "no command given; try 'siogate --help'");
        return EXIT_USAGE;
    }
    const struct command *cmd = find_command(argv[optind]);
    if (!cmd) {
        say(&c, "unknown command '%s'; 'siogate --help' lists them", argv[optind]);
        return EXIT_USAGE;
    }
    c.cmd = cmd->name;
    if (c.conf_path && !*c.conf_path) {
        say(&c, "--conf needs a file name; give --conf FILE");
        return EXIT_USAGE;
    }
    sg_log_init("siogate", c.verbose > 1 ? SG_LOG_INFO : SG_LOG_WARN);
    int rc = cmd->run(&c, argc - optind, argv + optind);
    sg_worker_free(c.worker);
    sg_engine_free(c.engine);
    sg_admin_close(c.admin);
    /* the log lines of a success pass through; after a failure, its one
     * line said it (all of them with --verbose) */
    cap_stop(&c, rc == 0 || c.verbose > 0);
    if (c.cfg_ready)
        sg_config_free(&c.cfg);
    return rc;
}
