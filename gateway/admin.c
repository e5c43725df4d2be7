/* admin.c - the CLI's own store queries: picks the implementation the db
 * value names (sg_store_is_pg, as sg_store_open does) and dispatches to
 * it; builds, from the values of their rows, the JSON both implementations
 * return (a socket's entry, the stats' figures); and how a db value may be
 * shown. See admin.h and admin_int.h. */
#include "admin_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pq.h"

#include "buf.h"
#include "store_int.h"

void sg_admin_set_err(sg_admin *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->err, sizeof a->err, fmt, ap);
    va_end(ap);
}

const char *sg_admin_error(const sg_admin *a) { return a ? a->err : ""; }

int sg_admin_open(const char *path, sg_admin **out, int *version, char *err, size_t errcap)
{
    return sg_store_is_pg(path) ? sg_admin_pg_open(path, out, version, err, errcap)
                                : sg_admin_sqlite_open(path, out, version, err, errcap);
}

void sg_admin_close(sg_admin *a)
{
    if (a)
        a->ops->close(a);
}

sg_store *sg_admin_store(sg_admin *a) { return a->ops->store(a); }

int sg_admin_sockets(sg_admin *a, const char *nsp, const char *room, bool details, json_t **out)
{
    return a->ops->sockets(a, nsp, room, details, out);
}

int sg_admin_rooms(sg_admin *a, const char *nsp, json_t **out)
{
    return a->ops->rooms(a, nsp, out);
}

int sg_admin_socket_nsp(sg_admin *a, const char *socket_id, char *nsp, size_t cap)
{
    return a->ops->socket_nsp(a, socket_id, nsp, cap);
}

int sg_admin_rooms_change(sg_admin *a, bool join, const sg_admin_sel *sel, size_t nsel,
                          const char *const *rooms, int *affected, int *settled)
{
    return a->ops->rooms_change(a, join, sel, nsel, rooms, affected, settled);
}

int sg_admin_stats(sg_admin *a, json_t **out) { return a->ops->stats(a, out); }

int sg_admin_checkpoint(sg_admin *a, int *done, int *total)
{
    return a->ops->checkpoint(a, done, total);
}

/* ---- what the implementations build alike ---------------------------------------------- */

json_t *sg_admin_json_string(sg_admin_text t)
{
    return t.p ? json_stringn(t.p, t.len) : json_null();
}

json_t *sg_admin_json_parse(sg_admin_text t)
{
    json_t *v = t.p ? json_loadb(t.p, t.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL) : NULL;
    return v ? v : json_null();
}

json_t *sg_admin_socket_json(sg_admin_text id, sg_admin_text nsp, sg_admin_text sid,
                             sg_admin_text transport, json_t *rooms, sg_admin_text data,
                             json_int_t connected_at, const sg_admin_text *handshake)
{
    json_t *o = json_object();
    if (!o || !rooms || json_object_set_new(o, "id", sg_admin_json_string(id)) < 0 ||
        json_object_set_new(o, "nsp", sg_admin_json_string(nsp)) < 0 ||
        json_object_set_new(o, "sid", sg_admin_json_string(sid)) < 0 ||
        json_object_set_new(o, "transport", sg_admin_json_string(transport)) < 0 ||
        json_object_set(o, "rooms", rooms) < 0 ||
        json_object_set_new(o, "data", sg_admin_json_parse(data)) < 0 ||
        json_object_set_new(o, "connected_at", json_integer(connected_at)) < 0 ||
        (handshake && json_object_set_new(o, "handshake", sg_admin_json_parse(*handshake)) < 0)) {
        json_decref(o);
        o = NULL;
    }
    json_decref(rooms);
    return o;
}

int sg_admin_figures_init(sg_admin_figures *st)
{
    st->sessions = json_pack("{s:i,s:i,s:i,s:i,s:i}", "open", 0, "closed", 0, "polling", 0,
                             "websocket", 0, "recoverable", 0);
    st->sockets = json_pack("{s:i,s:{}}", "total", 0, "namespaces");
    st->queue = json_pack("{s:i,s:i}", "frames", 0, "bytes", 0);
    st->rooms = st->acks = 0;
    return st->sessions && st->sockets && st->queue ? 0 : -1;
}

/* o[key] += n */
static int add(json_t *o, const char *key, json_int_t n)
{
    json_int_t have = json_integer_value(json_object_get(o, key));
    return json_object_set_new(o, key, json_integer(have + n));
}

int sg_admin_figures_sessions(sg_admin_figures *st, int state, const char *transport,
                              json_int_t n)
{
    bool open = state == SG_SESSION_OPEN;
    /* a recovery ghost (schema 0007): the sockets of a closed session kept
     * for connection state recovery */
    if (add(st->sessions, open ? "open" : state == SG_SESSION_GHOST ? "recoverable" : "closed",
            n) < 0)
        return -1;
    if (open && transport &&
        (strcmp(transport, "polling") == 0 || strcmp(transport, "websocket") == 0))
        return add(st->sessions, transport, n);
    return 0;
}

int sg_admin_figures_sockets(sg_admin_figures *st, const char *nsp, const char *transport,
                             json_int_t n)
{
    json_t *nsps = json_object_get(st->sockets, "namespaces");
    json_t *per = json_object_get(nsps, nsp);
    if (!per) {
        per = json_pack("{s:i,s:i}", "polling", 0, "websocket", 0);
        if (!per || json_object_set_new(nsps, nsp, per) < 0)
            return -1;
    }
    if (add(per, transport ? transport : "unknown", n) < 0)
        return -1;
    return add(st->sockets, "total", n);
}

int sg_admin_figures_queue(sg_admin_figures *st, json_int_t frames, json_int_t bytes)
{
    return add(st->queue, "frames", frames) < 0 || add(st->queue, "bytes", bytes) < 0 ? -1 : 0;
}

json_t *sg_admin_figures_json(const sg_admin_figures *st, json_t *store)
{
    json_t *o = store ? json_pack("{s:O,s:O,s:I,s:O,s:{s:I},s:O}", "sessions", st->sessions,
                                  "sockets", st->sockets, "rooms", st->rooms, "queue",
                                  st->queue, "acks", "pending", st->acks, "store", store)
                      : NULL;
    json_decref(store);
    return o;
}

void sg_admin_figures_free(sg_admin_figures *st)
{
    json_decref(st->sessions);
    json_decref(st->sockets);
    json_decref(st->queue);
    st->sessions = st->sockets = st->queue = NULL;
}

/* ---- showing a db value ----------------------------------------------------------------
 *
 * The password is found where libpq finds it (fe-connect.c,
 * conninfo_uri_parse_options and conninfo_parse): in a URI, between the
 * first ':' and the '@' of the user part (the text before the first '@'
 * when no '/' comes first), or a query parameter whose name, percent-
 * decoded, is "password"; in a keyword/value string, the value of the
 * keyword "password" (quoted or not, with backslash escapes). Its bytes
 * become "***" and everything else is kept as written. Then, as a check
 * that does not depend on this scanner, libpq parses the value: when the
 * password it finds is still in the text, the text is rebuilt from
 * libpq's options without it. */

#define MASK "***"

/* The n bytes at k, percent-decoded, are "password". */
static bool uri_key_is_password(const char *k, size_t n)
{
    static const char want[] = "password";
    size_t w = 0;
    for (size_t i = 0; i < n; i++, w++) {
        int ch = (unsigned char)k[i];
        if (ch == '%' && i + 2 < n && isxdigit((unsigned char)k[i + 1]) &&
            isxdigit((unsigned char)k[i + 2])) {
            char hex[3] = {k[i + 1], k[i + 2], '\0'};
            ch = (int)strtol(hex, NULL, 16);
            i += 2;
        }
        if (w >= sizeof want - 1 || ch != want[w])
            return false;
    }
    return w == sizeof want - 1;
}

static void redact_uri(const char *s, sg_buf *b)
{
    const char *p = strstr(s, "://") + 3;
    sg_buf_append(b, s, (size_t)(p - s));
    const char *q = p;
    while (*q && *q != '@' && *q != '/')
        q++;
    if (*q == '@') {
        const char *colon = memchr(p, ':', (size_t)(q - p));
        if (colon) {
            sg_buf_append(b, p, (size_t)(colon + 1 - p));
            sg_buf_puts(b, MASK);
        } else {
            sg_buf_append(b, p, (size_t)(q - p));
        }
        p = q;
    }
    const char *qm = strchr(p, '?');
    if (!qm) {
        sg_buf_puts(b, p);
        return;
    }
    sg_buf_append(b, p, (size_t)(qm + 1 - p));
    for (p = qm + 1;;) {
        const char *amp = strchr(p, '&');
        const char *end = amp ? amp : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq && uri_key_is_password(p, (size_t)(eq - p))) {
            sg_buf_append(b, p, (size_t)(eq + 1 - p));
            sg_buf_puts(b, MASK);
        } else {
            sg_buf_append(b, p, (size_t)(end - p));
        }
        if (!amp)
            break;
        sg_buf_putc(b, '&');
        p = amp + 1;
    }
}

static void redact_keywords(const char *s, sg_buf *b)
{
    const char *p = s;
    while (*p) {
        if (isspace((unsigned char)*p)) {
            sg_buf_putc(b, *p++);
            continue;
        }
        const char *kw = p;
        while (*p && *p != '=' && !isspace((unsigned char)*p))
            p++;
        size_t kwlen = (size_t)(p - kw);
        while (isspace((unsigned char)*p))
            p++;
        if (*p != '=') { /* libpq refuses this; keep the word */
            sg_buf_append(b, kw, (size_t)(p - kw));
            continue;
        }
        p++;
        while (isspace((unsigned char)*p))
            p++;
        bool secret = kwlen == 8 && memcmp(kw, "password", 8) == 0;
        sg_buf_append(b, kw, (size_t)(p - kw));
        const char *val = p;
        if (*p == '\'') {
            for (p++; *p && *p != '\''; p++)
                if (*p == '\\' && p[1])
                    p++;
            if (*p == '\'')
                p++;
        } else {
            for (; *p && !isspace((unsigned char)*p); p++)
                if (*p == '\\' && p[1])
                    p++;
        }
        if (secret)
            sg_buf_puts(b, MASK);
        else
            sg_buf_append(b, val, (size_t)(p - val));
    }
}

/* What libpq would take for the password of db (a new string; NULL when
 * none or db does not parse), and *opts its parsed options (free with
 * PQconninfoFree; NULL when db does not parse). */
static char *libpq_password(const char *db, PQconninfoOption **opts)
{
    char *msg = NULL;
    *opts = NULL;
    if (sg_pq_load() != 0)
        return NULL;
    *opts = PQconninfoParse(db, &msg);
    if (msg)
        PQfreemem(msg);
    for (PQconninfoOption *o = *opts; o && o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val && *o->val)
            return strdup(o->val);
    return NULL;
}

void sg_admin_db_shown(const char *db, char *out, size_t cap)
{
    if (!cap)
        return;
    if (!db || !sg_store_is_pg(db)) {
        snprintf(out, cap, "%s", db ? db : "");
        return;
    }
    sg_buf b = SG_BUF_INIT;
    if (strncmp(db, "postgresql://", 13) == 0 || strncmp(db, "postgres://", 11) == 0)
        redact_uri(db, &b);
    else
        redact_keywords(db, &b);
    PQconninfoOption *opts;
    char *pw = libpq_password(db, &opts);
    const char *shown = sg_buf_str(&b);
    if (!shown || (pw && strstr(shown, pw))) {
        sg_buf_reset(&b);
        for (PQconninfoOption *o = opts; o && o->keyword; o++)
            if (o->val && *o->val && strcmp(o->keyword, "password") != 0)
                sg_buf_printf(&b, "%s%s=%s", b.len ? " " : "", o->keyword, o->val);
        shown = opts ? sg_buf_str(&b) : "(a PostgreSQL connection string)";
        if (!shown)
            shown = "(a PostgreSQL connection string)";
    }
    snprintf(out, cap, "%s", shown);
    if (pw) {
        explicit_bzero(pw, strlen(pw));
        free(pw);
    }
    if (opts)
        PQconninfoFree(opts);
    sg_buf_free(&b);
}

/* Replace every occurrence of needle (len n > 0) in *b's text by with. */
static void replace_all(sg_buf *b, const char *needle, size_t n, const char *with)
{
    const char *t = sg_buf_str(b);
    if (!strstr(t, needle))
        return;
    sg_buf out = SG_BUF_INIT;
    for (const char *hit; (hit = strstr(t, needle)); t = hit + n) {
        sg_buf_append(&out, t, (size_t)(hit - t));
        sg_buf_puts(&out, with);
    }
    sg_buf_puts(&out, t);
    if (b->data)
        explicit_bzero(b->data, b->len);
    sg_buf_free(b);
    *b = out;
}

char *sg_admin_scrub(const char *db, const char *text)
{
    sg_buf b = SG_BUF_INIT;
    if (sg_buf_puts(&b, text ? text : "") < 0) {
        sg_buf_free(&b);
        return NULL;
    }
    if (db && sg_store_is_pg(db)) {
        char shown[1024];
        sg_admin_db_shown(db, shown, sizeof shown);
        replace_all(&b, db, strlen(db), shown);
        PQconninfoOption *opts;
        char *pw = libpq_password(db, &opts);
        if (opts)
            PQconninfoFree(opts);
        if (pw && strlen(pw) >= SG_ADMIN_SCRUB_MIN)
            replace_all(&b, pw, strlen(pw), MASK);
        if (pw) {
            explicit_bzero(pw, strlen(pw));
            free(pw);
        }
    }
    char *out = sg_buf_steal(&b);
    sg_buf_free(&b);
    return out;
}
