/* config.c - the configuration file: "key = value" lines.
 *
 * Parsing is all-or-nothing: the file is applied to a copy of the caller's
 * sg_config, which replaces it only when every line was good, so on error
 * the caller still holds exactly what it had (the defaults, usually).
 * Lines have no length limit; the value runs from the first '=' to the end
 * of the line, so it may contain '=' and '#'; a '#' starts a comment only
 * as the first non-blank character of a line. A UTF-8 byte order mark at
 * the start of the file and a '\r' before each '\n' are ignored. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "config.h"

#include "buf.h"
#include "doorbell.h"
#include "socketio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* strerror() is not thread-safe; the GNU strerror_r() returns a string
 * that lives as long as the compound literal: the enclosing block. */
#define ERRSTR(e) strerror_r((e), (char[128]){0}, 128)

#define CFG_MAX_FILE (16u * 1024 * 1024) /* no real configuration comes near */
#define CFG_MAX_MS 86400000
#define CFG_QUOTE_MAX 60                  /* bytes of a value shown in a message */

enum cfg_kind { CFG_STR, CFG_LIST, CFG_PATH, CFG_INT, CFG_WORD, CFG_TOKEN };
enum cfg_id { K_DB, K_PLUGIN, K_PATH, K_PING_INTERVAL, K_PING_TIMEOUT, K_CONNECT_TIMEOUT,
              K_MAX_PAYLOAD, K_CORS_ORIGIN, K_MAX_SESSIONS, K_MAX_SOCKETS, K_HANDSHAKE_RATE,
              K_MAX_ATTACHMENTS, K_MAX_JSON_DEPTH, K_COOKIE, K_COOKIE_PATH, K_COOKIE_SAMESITE,
              K_COOKIE_HTTPONLY, K_COOKIE_SECURE, K_BROADCAST_LOG_MIN, K_MAX_QUEUED,
              K_RECOVERY_WINDOW, K_BELL_DIR };

struct cfg_key {
    const char *name;
    enum cfg_id id;
    enum cfg_kind kind;
    int64_t min, max;     /* CFG_INT */
    const char *const *words; /* CFG_WORD: the values (any case), NULL-terminated;
                                 the field gets the index modulo nwords */
    int64_t nwords;
};

/* CFG_WORD value lists */
static const char *const cfg_bool[] = {"no", "yes", "false", "true", "off", "on", "0", "1", NULL};
static const char *const cfg_samesite[] = {"off", "Strict", "Lax", "None", NULL};

static const struct cfg_key cfg_keys[] = {
    {"db", K_DB, CFG_STR, 0, 0, NULL, 0},
    {"plugin", K_PLUGIN, CFG_LIST, 0, 0, NULL, 0},
    {"path", K_PATH, CFG_PATH, 0, 0, NULL, 0},
    {"ping_interval", K_PING_INTERVAL, CFG_INT, 1, CFG_MAX_MS, NULL, 0},
    {"ping_timeout", K_PING_TIMEOUT, CFG_INT, 1, CFG_MAX_MS, NULL, 0},
    {"connect_timeout", K_CONNECT_TIMEOUT, CFG_INT, 1, CFG_MAX_MS, NULL, 0},
    {"max_payload", K_MAX_PAYLOAD, CFG_INT, 1, 1073741824, NULL, 0},
    {"cors_origin", K_CORS_ORIGIN, CFG_STR, 0, 0, NULL, 0},
    {"max_sessions", K_MAX_SESSIONS, CFG_INT, 0, 1000000000, NULL, 0},
    {"max_sockets_per_session", K_MAX_SOCKETS, CFG_INT, 0, 1000000, NULL, 0},
    {"handshakes_per_second", K_HANDSHAKE_RATE, CFG_INT, 0, 1000000, NULL, 0},
    {"max_attachments", K_MAX_ATTACHMENTS, CFG_INT, 1, 100000, NULL, 0},
    {"max_json_depth", K_MAX_JSON_DEPTH, CFG_INT, 1, SG_SIO_DEPTH_CAP, NULL, 0},
    {"cookie", K_COOKIE, CFG_TOKEN, 0, 0, NULL, 0},
    {"cookie_path", K_COOKIE_PATH, CFG_TOKEN, 0, 0, NULL, 0},
    {"cookie_samesite", K_COOKIE_SAMESITE, CFG_WORD, 0, 0, cfg_samesite, 4},
    {"cookie_httponly", K_COOKIE_HTTPONLY, CFG_WORD, 0, 0, cfg_bool, 2},
    {"cookie_secure", K_COOKIE_SECURE, CFG_WORD, 0, 0, cfg_bool, 2},
    {"broadcast_log_min", K_BROADCAST_LOG_MIN, CFG_INT, 0, 1000000000, NULL, 0},
    {"max_queued_packets", K_MAX_QUEUED, CFG_INT, 0, 1000000000, NULL, 0},
    {"recovery_window", K_RECOVERY_WINDOW, CFG_INT, 0, CFG_MAX_MS, NULL, 0},
    {"bell_dir", K_BELL_DIR, CFG_STR, 0, 0, NULL, 0},
};
#define CFG_NKEYS (sizeof cfg_keys / sizeof cfg_keys[0])

/* The field of a CFG_STR, CFG_PATH or CFG_TOKEN key. */
static char **field_str(sg_config *c, enum cfg_id id)
{
    switch (id) {
    case K_DB: return &c->db;
    case K_BELL_DIR: return &c->bell_dir;
    case K_PATH: return &c->path;
    case K_CORS_ORIGIN: return &c->cors_origin;
    case K_COOKIE: return &c->cookie;
    case K_COOKIE_PATH: return &c->cookie_path;
    default: return NULL;
    }
}

/* The field of a CFG_INT or CFG_WORD key. */
static int64_t *field_int(sg_config *c, enum cfg_id id)
{
    switch (id) {
    case K_PING_INTERVAL: return &c->ping_interval;
    case K_PING_TIMEOUT: return &c->ping_timeout;
    case K_CONNECT_TIMEOUT: return &c->connect_timeout;
    case K_MAX_PAYLOAD: return &c->max_payload;
    case K_MAX_SESSIONS: return &c->max_sessions;
    case K_MAX_SOCKETS: return &c->max_sockets_per_session;
    case K_HANDSHAKE_RATE: return &c->handshakes_per_second;
    case K_MAX_ATTACHMENTS: return &c->max_attachments;
    case K_MAX_JSON_DEPTH: return &c->max_json_depth;
    case K_COOKIE_SAMESITE: return &c->cookie_samesite;
    case K_COOKIE_HTTPONLY: return &c->cookie_httponly;
    case K_COOKIE_SECURE: return &c->cookie_secure;
    case K_BROADCAST_LOG_MIN: return &c->broadcast_log_min;
    case K_MAX_QUEUED: return &c->max_queued_packets;
    case K_RECOVERY_WINDOW: return &c->recovery_window;
    default: return NULL;
    }
}

/* ---------------------------------------------------------------- state */

void sg_config_free(sg_config *c)
{
    if (!c)
        return;
    free(c->db);
    free(c->bell_dir);
    for (size_t i = 0; i < c->nplugins; i++)
        free(c->plugins[i]);
    free(c->plugins);
    free(c->path);
    free(c->cors_origin);
    free(c->cookie);
    free(c->cookie_path);
    free(c->source);
    memset(c, 0, sizeof *c);
}

int sg_config_defaults(sg_config *c)
{
    memset(c, 0, sizeof *c);
    c->db = strdup("/var/lib/siogate/siogate.db");
    c->path = strdup("/socket.io/");
    c->ping_interval = 25000;
    c->ping_timeout = 20000;
    c->connect_timeout = 45000;
    c->max_payload = 1000000;
    c->max_sessions = 100000;
    c->max_sockets_per_session = 100;
    c->handshakes_per_second = 0;
    c->max_attachments = SG_SIO_MAX_ATTACHMENTS;
    c->max_json_depth = SG_SIO_MAX_DEPTH;
    c->cookie_path = strdup("/");
    c->cookie_samesite = SG_SAMESITE_LAX;
    c->cookie_httponly = 1;
    c->cookie_secure = 0;
    c->broadcast_log_min = SG_BROADCAST_LOG_MIN_DEFAULT;
    c->max_queued_packets = SG_MAX_QUEUED_PACKETS_DEFAULT;
    if (!c->db || !c->path || !c->cookie_path) {
        sg_config_free(c);
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

static int dup_opt(char **dst, const char *src)
{
    *dst = NULL;
    if (src && !(*dst = strdup(src)))
        return -1;
    return 0;
}

/* A deep copy of src into *dst (zeroed first). 0 or -1 (ENOMEM, dst freed). */
static int config_copy(sg_config *dst, const sg_config *src)
{
    memset(dst, 0, sizeof *dst);
    dst->ping_interval = src->ping_interval;
    dst->ping_timeout = src->ping_timeout;
    dst->connect_timeout = src->connect_timeout;
    dst->max_payload = src->max_payload;
    dst->max_sessions = src->max_sessions;
    dst->max_sockets_per_session = src->max_sockets_per_session;
    dst->handshakes_per_second = src->handshakes_per_second;
    dst->max_attachments = src->max_attachments;
    dst->max_json_depth = src->max_json_depth;
    dst->cookie_samesite = src->cookie_samesite;
    dst->cookie_httponly = src->cookie_httponly;
    dst->cookie_secure = src->cookie_secure;
    dst->broadcast_log_min = src->broadcast_log_min;
    dst->max_queued_packets = src->max_queued_packets;
    dst->recovery_window = src->recovery_window;
    if (dup_opt(&dst->db, src->db) < 0 || dup_opt(&dst->bell_dir, src->bell_dir) < 0 ||
        dup_opt(&dst->path, src->path) < 0 ||
        dup_opt(&dst->cors_origin, src->cors_origin) < 0 ||
        dup_opt(&dst->cookie, src->cookie) < 0 || dup_opt(&dst->cookie_path, src->cookie_path) < 0 ||
        dup_opt(&dst->source, src->source) < 0)
        goto nomem;
    if (src->nplugins) {
        dst->plugins = calloc(src->nplugins, sizeof *dst->plugins);
        if (!dst->plugins)
            goto nomem;
        for (size_t i = 0; i < src->nplugins; i++) {
            char *p = strdup(src->plugins[i]);
            if (!p)
                goto nomem;
            dst->plugins[i] = p;
            dst->nplugins = i + 1;
        }
    }
    return 0;
nomem:
    sg_config_free(dst);
    errno = ENOMEM;
    return -1;
}

char *sg_config_bell_dir(const sg_config *c)
{
    if (!c) {
        errno = EINVAL;
        return NULL;
    }
    return c->bell_dir ? strdup(c->bell_dir) : sg_bell_dir_for(c->db);
}

/* ---------------------------------------------------------------- errors */

static void set_err(char *err, size_t errcap, const char *name, size_t line,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void set_err(char *err, size_t errcap, const char *name, size_t line,
                    const char *fmt, ...)
{
    if (!err || !errcap)
        return;
    int n = line ? snprintf(err, errcap, "%s:%zu: ", name, line)
                 : snprintf(err, errcap, "%s: ", name);
    if (n < 0 || (size_t)n >= errcap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errcap - (size_t)n, fmt, ap);
    va_end(ap);
}

/* s[0..len) made fit for a one-line message: control bytes as '?', at most
 * CFG_QUOTE_MAX bytes (cut at a UTF-8 boundary) and then "...". */
static void quote(char *out, size_t cap, const char *s, size_t len)
{
    size_t n = len, o = 0;
    int cut = 0;
    if (n > CFG_QUOTE_MAX) {
        n = CFG_QUOTE_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--; /* s[n] would be a continuation byte: end before its lead */
        cut = 1;
    }
    for (size_t i = 0; i < n && o + 4 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[o++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    if (cut && o + 4 <= cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* ---------------------------------------------------------------- parsing */

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

static void trim(const char **b, const char **e)
{
    while (*b < *e && is_blank(**b))
        (*b)++;
    while (*e > *b && is_blank((*e)[-1]))
        (*e)--;
}

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* Strictly decimal: digits only. 0, 1 (not digits) or 2 (out of range). */
static int parse_int(const char *v, size_t n, int64_t min, int64_t max, int64_t *out)
{
    int64_t x = 0;
    int over = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return 1;
        if (!over) {
            x = x * 10 + (v[i] - '0');
            if (x > max)
                over = 1;
        }
    }
    if (over || x < min)
        return 2;
    *out = x;
    return 0;
}

enum { LINE_OK = 0, LINE_BAD = -1, LINE_NOMEM = -2 };

/* Apply one key = value to w. */
static int apply(sg_config *w, const struct cfg_key *k, const char *v, size_t vn,
                 const char *name, size_t line, char *err, size_t errcap)
{
    char q[CFG_QUOTE_MAX + 8];
    switch (k->kind) {
    case CFG_INT: {
        int64_t x = 0;
        int rc = parse_int(v, vn, k->min, k->max, &x);
        if (rc) {
            quote(q, sizeof q, v, vn);
            if (rc == 1)
                set_err(err, errcap, name, line, "'%s' must be a decimal integer, not '%s'",
                        k->name, q);
            else
                set_err(err, errcap, name, line,
                        "'%s' must be between %lld and %lld, not '%s'", k->name,
                        (long long)k->min, (long long)k->max, q);
            return LINE_BAD;
        }
        *field_int(w, k->id) = x;
        return LINE_OK;
    }
    case CFG_PATH: {
        if (v[0] != '/') {
            quote(q, sizeof q, v, vn);
            set_err(err, errcap, name, line, "'%s' must begin with '/', not '%s'", k->name, q);
            return LINE_BAD;
        }
        for (size_t i = 0; i < vn; i++) {
            unsigned char ch = (unsigned char)v[i];
            if (ch <= 0x20 || ch == 0x7f || ch == '?' || ch == '#') {
                quote(q, sizeof q, v, vn);
                set_err(err, errcap, name, line,
                        "'%s' must be a URL path (no white space, '?' or '#'), not '%s'",
                        k->name, q);
                return LINE_BAD;
            }
        }
        int slash = v[vn - 1] == '/';
        char *p = malloc(vn + 2);
        if (!p)
            return LINE_NOMEM;
        memcpy(p, v, vn);
        if (!slash)
            p[vn++] = '/';
        p[vn] = '\0';
        char **f = field_str(w, k->id);
        free(*f);
        *f = p;
        return LINE_OK;
    }
    case CFG_WORD: {
        for (int64_t i = 0; k->words[i]; i++) {
            if (strlen(k->words[i]) == vn && !strncasecmp(k->words[i], v, vn)) {
                *field_int(w, k->id) = i % k->nwords;
                return LINE_OK;
            }
        }
        quote(q, sizeof q, v, vn);
        set_err(err, errcap, name, line, "'%s' must be %s, not '%s'", k->name,
                k->words == cfg_bool ? "yes or no" : "one of off, Strict, Lax, None", q);
        return LINE_BAD;
    }
    case CFG_TOKEN:
        /* a cookie's name (an RFC 6265 token) or path (no ';', no control
         * characters, no white space): copied into a header as they are */
        for (size_t i = 0; i < vn; i++) {
            unsigned char ch = (unsigned char)v[i];
            if (ch <= 0x20 || ch >= 0x7f || ch == ';' || ch == ',' ||
                (k->id == K_COOKIE && strchr("()<>@:\\\"/[]?={}", ch))) {
                quote(q, sizeof q, v, vn);
                set_err(err, errcap, name, line, "'%s' must be a cookie %s, not '%s'", k->name,
                        k->id == K_COOKIE ? "name (letters, digits, !#$%&'*+-.^_`|~)"
                                          : "path (no white space, ';' or ',')",
                        q);
                return LINE_BAD;
            }
        }
        /* fall through */
    case CFG_STR: {
        char *p = dup_n(v, vn);
        if (!p)
            return LINE_NOMEM;
        char **f = field_str(w, k->id);
        free(*f);
        *f = p;
        return LINE_OK;
    }
    case CFG_LIST: {
        char *p = dup_n(v, vn);
        if (!p)
            return LINE_NOMEM;
        char **l = realloc(w->plugins, (w->nplugins + 1) * sizeof *l);
        if (!l) {
            free(p);
            return LINE_NOMEM;
        }
        l[w->nplugins++] = p;
        w->plugins = l;
        return LINE_OK;
    }
    }
    return LINE_BAD;
}

/* One line, without its '\n'. */
static int parse_line(sg_config *w, size_t seen[], const char *b, const char *e,
                      const char *name, size_t line, char *err, size_t errcap)
{
    char q[CFG_QUOTE_MAX + 8];
    if (memchr(b, '\0', (size_t)(e - b))) {
        set_err(err, errcap, name, line, "NUL byte in line");
        return LINE_BAD;
    }
    trim(&b, &e);
    if (b == e || *b == '#')
        return LINE_OK;
    const char *eq = memchr(b, '=', (size_t)(e - b));
    if (!eq) {
        set_err(err, errcap, name, line, "missing '=' (expected key = value)");
        return LINE_BAD;
    }
    const char *kb = b, *ke = eq, *vb = eq + 1, *ve = e;
    trim(&kb, &ke);
    trim(&vb, &ve);
    if (kb == ke) {
        set_err(err, errcap, name, line, "missing key before '='");
        return LINE_BAD;
    }
    size_t kn = (size_t)(ke - kb);
    const struct cfg_key *k = NULL;
    size_t ki = 0;
    for (; ki < CFG_NKEYS; ki++)
        if (strlen(cfg_keys[ki].name) == kn && !memcmp(cfg_keys[ki].name, kb, kn)) {
            k = &cfg_keys[ki];
            break;
        }
    if (!k) {
        quote(q, sizeof q, kb, kn);
        set_err(err, errcap, name, line, "unknown key '%s'", q);
        return LINE_BAD;
    }
    if (vb == ve) {
        set_err(err, errcap, name, line, "empty value for '%s'", k->name);
        return LINE_BAD;
    }
    if (k->kind != CFG_LIST && seen[ki]) {
        set_err(err, errcap, name, line, "'%s' already set on line %zu", k->name, seen[ki]);
        return LINE_BAD;
    }
    int rc = apply(w, k, vb, (size_t)(ve - vb), name, line, err, errcap);
    if (rc == LINE_OK)
        seen[ki] = line;
    return rc;
}

static int parse_text(sg_config *c, const char *name, const char *text, size_t len,
                      char *err, size_t errcap)
{
    sg_config w;
    size_t seen[CFG_NKEYS] = {0};

    if (!name)
        name = "(config)";
    if (err && errcap)
        err[0] = '\0';
    if (!c || (!text && len)) {
        set_err(err, errcap, name, 0, "%s", ERRSTR(EINVAL));
        errno = EINVAL;
        return -1;
    }
    if (config_copy(&w, c) < 0)
        goto nomem;

    const char *p = text, *end = text + len;
    if (len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3))
        p += 3;
    size_t line = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        int rc = parse_line(&w, seen, p, le, name, ++line, err, errcap);
        if (rc == LINE_NOMEM)
            goto nomem;
        if (rc != LINE_OK) {
            sg_config_free(&w);
            errno = EINVAL;
            return -1;
        }
        p = nl ? nl + 1 : end;
    }

    char *src = strdup(name);
    if (!src)
        goto nomem;
    free(w.source);
    w.source = src;
    sg_config_free(c);
    *c = w;
    return 0;

nomem:
    sg_config_free(&w);
    set_err(err, errcap, name, 0, "out of memory");
    errno = ENOMEM;
    return -1;
}

int sg_config_parse(sg_config *c, const char *name, const char *text, char *err,
                    size_t errcap)
{
    return parse_text(c, name, text, text ? strlen(text) : 0, err, errcap);
}

int sg_config_load(sg_config *c, const char *path, char *err, size_t errcap)
{
    sg_buf b = SG_BUF_INIT;
    int fd = -1, rc = -1, e = 0;

    if (err && errcap)
        err[0] = '\0';
    if (!c || !path) {
        set_err(err, errcap, path ? path : "(config)", 0, "%s", ERRSTR(EINVAL));
        errno = EINVAL;
        return -1;
    }
    do
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        goto sys;
    struct stat st;
    if (fstat(fd, &st) < 0)
        goto sys;
    if (S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        goto sys;
    }
    for (;;) {
        if (sg_buf_reserve(&b, 64 * 1024) < 0) {
            errno = ENOMEM;
            goto sys;
        }
        ssize_t n = read(fd, b.data + b.len, b.cap - b.len - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto sys;
        }
        if (n == 0)
            break;
        b.len += (size_t)n;
        b.data[b.len] = '\0';
        if (b.len > CFG_MAX_FILE) {
            set_err(err, errcap, path, 0, "file too large (more than %u bytes)", CFG_MAX_FILE);
            e = EFBIG;
            goto out;
        }
    }
    rc = parse_text(c, path, b.data ? b.data : "", b.len, err, errcap);
    e = errno;
    goto out;

sys:
    e = errno;
    set_err(err, errcap, path, 0, "%s", ERRSTR(e));
out:
    if (fd >= 0)
        close(fd);
    sg_buf_free(&b);
    errno = e;
    return rc;
}
