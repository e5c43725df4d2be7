/* admin_pg.c - the CLI's own store queries on a PostgreSQL store. See
 * admin.h and admin_int.h; the SQL is admin_sqlite.c's on the schema of
 * schema/pg/ (identifiers and room names are COLLATE "C", so ORDER BY
 * sorts bytewise as SQLite's BINARY does).
 *
 * One connection (libpq), lock_timeout = SG_ADMIN_LOCK_MS as the store's
 * connections have: a lock held longer by another process is SQLSTATE
 * 55P03, SG_ADMIN_BUSY. Each query is one PQexecParams with its values
 * bound as parameters (a one-shot CLI gains nothing from preparing).
 * Reads run in one REPEATABLE READ READ ONLY transaction (one snapshot
 * for the whole listing). The write (join/leave) is a transaction of the
 * store borrowed on this connection (sg_store_pg_borrow): its
 * sg_store_begin takes the writers' advisory lock, so the change is
 * serialized with every server's writes exactly as theirs are with each
 * other, and the broadcast log is settled by the same calls as on SQLite.
 *
 * Messages name the store as sg_admin_db_shown shows it (no password). */
#include "admin_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pq.h"

#include "store_int.h"

typedef struct admin_pg {
    sg_admin base;
    PGconn *conn;
    char *conninfo;          /* as configured: only for sg_store_pg_borrow */
    char shown[512];         /* for messages and stats: no password */
    int version;
} admin_pg;

#define set_err(a, ...) sg_admin_set_err(&(a)->base, __VA_ARGS__)
#define SELF(b) ((admin_pg *)(b))

/* The tables of schema/pg/ (and the store's schema_version), for the size
 * in stats. */
#define SG_PG_TABLES                                                                    \
    "'sessions', 'handshakes', 'sockets', 'rooms', 'queue', 'acks', 'ack_replies',"     \
    " 'counters', 'handshake_rate', 'schema_version'"

static const sg_admin_ops pg_admin_ops;

/* ---- errors ---------------------------------------------------------------------- */

/* msg without its trailing newlines and spaces, and with the line breaks
 * of libpq's multi-line messages folded into "; ", into a->err after
 * "what: ". */
static void set_err_pg(admin_pg *a, const char *what, const char *msg)
{
    char one[400];
    size_t n = 0;
    for (const char *p = msg; *p && n < sizeof one - 3; p++) {
        if (*p == '\n') {
            while (p[1] == '\t' || p[1] == ' ')
                p++;
            if (p[1]) {
                one[n++] = ';';
                one[n++] = ' ';
            }
        } else {
            one[n++] = *p;
        }
    }
    while (n > 0 && (one[n - 1] == ' ' || one[n - 1] == ';'))
        n--;
    one[n] = '\0';
    set_err(a, "%s: %s", what, one);
}

/* Map a failed result (r may be NULL: the connection's error) of what to
 * our result, with a message. */
static int fail(admin_pg *a, const PGresult *r, const char *what)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state && (strcmp(state, "55P03") == 0 || strcmp(state, "40P01") == 0)) {
        set_err(a, "%s: the store stayed locked for more than %d ms", what, SG_ADMIN_LOCK_MS);
        return SG_ADMIN_BUSY;
    }
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    set_err_pg(a, what, msg ? msg : PQerrorMessage(a->conn));
    return SG_ADMIN_ERR;
}

/* A store call failed with rc (its log line has the details). */
static int store_fail(admin_pg *a, int rc, const char *what)
{
    if (rc == SG_STORE_BUSY) {
        set_err(a, "%s: the store stayed locked for more than %d ms", what, SG_ADMIN_LOCK_MS);
        return SG_ADMIN_BUSY;
    }
    set_err(a, "%s: the store failed (run with --verbose for its log)", what);
    return SG_ADMIN_ERR;
}

static int oom(admin_pg *a)
{
    set_err(a, "out of memory");
    return SG_ADMIN_ERR;
}

/* ---- statements ---------------------------------------------------------------------- */

/* Run sql with n text parameters (a NULL value is SQL NULL). *out gets
 * the result (the caller clears it) when it holds rows or is a command's;
 * SG_ADMIN_OK or a negative result. */
static int query(admin_pg *a, const char *sql, int n, const char *const *values,
                 PGresult **out, const char *what)
{
    PGresult *r = PQexecParams(a->conn, sql, n, NULL, values, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        int rc = fail(a, r, what);
        PQclear(r);
        return rc;
    }
    if (out)
        *out = r;
    else
        PQclear(r);
    return SG_ADMIN_OK;
}

static int exec_simple(admin_pg *a, const char *sql) { return query(a, sql, 0, NULL, NULL, sql); }

static int begin_read(admin_pg *a)
{
    return exec_simple(a, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
}

static void rollback(admin_pg *a)
{
    if (PQtransactionStatus(a->conn) != PQTRANS_IDLE) {
        PGresult *r = PQexec(a->conn, "ROLLBACK");
        PQclear(r);
    }
}

/* A read ends with its snapshot released, whatever rc says. */
static int end_read(admin_pg *a, int rc)
{
    if (rc >= 0) {
        int c = exec_simple(a, "COMMIT");
        if (c < 0)
            rc = c;
    }
    rollback(a);
    return rc;
}

/* A text column (valid while r is). */
static sg_admin_text col_text(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return (sg_admin_text){NULL, 0};
    return (sg_admin_text){PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col)};
}

static json_t *col_string(const PGresult *r, int row, int col)
{
    return sg_admin_json_string(col_text(r, row, col));
}

static json_int_t col_int(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : (json_int_t)strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static bool push(json_t *arr, json_t *v) { return v && json_array_append_new(arr, v) == 0; }

/* ---- the connection ---------------------------------------------------------------------- */

static void quiet(void *ud, const char *msg)
{
    (void)ud;
    (void)msg;
}

static void close_pg(admin_pg *a)
{
    if (!a)
        return;
    PQfinish(a->conn);
    free(a->conninfo);
    free(a);
}

int sg_admin_pg_open(const char *conninfo, sg_admin **out, int *version, char *err, size_t errcap)
{
    *out = NULL;
    if (version)
        *version = -1;
    admin_pg *a = calloc(1, sizeof *a);
    if (!a || !(a->conninfo = strdup(conninfo))) {
        free(a);
        snprintf(err, errcap, "out of memory");
        return SG_ADMIN_ERR;
    }
    a->base.ops = &pg_admin_ops;
    sg_admin_db_shown(conninfo, a->shown, sizeof a->shown);
    /* the connection string may be a URI or keyword=value pairs: as the
     * dbname of PQconnectdbParams it is expanded like PQconnectdb's */
    const char *const keys[] = {"dbname", "fallback_application_name", NULL};
    const char *const vals[] = {conninfo, "siogate", NULL};
    int rc = SG_ADMIN_ERR;
    if (sg_pq_load() != 0) {
        set_err(a, "%s", sg_pq_error());
        goto out;
    }
    a->conn = PQconnectdbParams(keys, vals, 1);
    if (!a->conn) {
        set_err(a, "out of memory");
        goto out;
    }
    if (PQstatus(a->conn) != CONNECTION_OK) {
        set_err_pg(a, "cannot connect", PQerrorMessage(a->conn));
        rc = SG_ADMIN_MISSING;
        goto out;
    }
    PQsetNoticeProcessor(a->conn, quiet, NULL);
    char ms[32];
    snprintf(ms, sizeof ms, "%dms", SG_ADMIN_LOCK_MS);
    const char *p[1] = {ms};
    if ((rc = query(a, "SELECT set_config('lock_timeout', $1, false)", 1, p, NULL,
                    "set lock_timeout")) < 0)
        goto out;
    /* as the store reads it: no schema_version table, a database siogate
     * never initialised */
    PGresult *r = PQexec(a->conn, "SELECT coalesce(max(version), 0) FROM schema_version");
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        a->version = (int)col_int(r, 0, 0);
    } else {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (state && strcmp(state, "42P01") == 0) {
            a->version = 0;
        } else {
            rc = fail(a, r, "read the schema version");
            PQclear(r);
            goto out;
        }
    }
    PQclear(r);
    if (version)
        *version = a->version;
    int latest = sg_store_pg_latest_version();
    if (a->version != latest) {
        if (a->version == 0)
            set_err(a, "the database has no siogate schema (not initialised)");
        else
            set_err(a, a->version < latest
                           ? "the store is at schema version %d, older than this program's (%d)"
                           : "the store is at schema version %d, newer than this program's (%d)",
                    a->version, latest);
        rc = SG_ADMIN_SCHEMA;
        goto out;
    }
    *out = &a->base;
    return SG_ADMIN_OK;
out:
    snprintf(err, errcap, "%s: %s", a->shown, a->base.err);
    close_pg(a);
    return rc;
}

/* ---- sockets ------------------------------------------------------------------------------ */

/* End a listing's read: hand arr to *out and return its size, or release
 * it and return the error. */
static int list_done(admin_pg *a, int rc, json_t *arr, json_t **out)
{
    rc = end_read(a, rc);
    if (rc >= 0 && !arr)
        rc = oom(a);
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return (int)json_array_size(arr);
}

static int op_sockets(sg_admin *b, const char *nsp, const char *room, bool details, json_t **out)
{
    admin_pg *a = SELF(b);
    *out = NULL;
    PGresult *r = NULL;
    json_t *arr = json_array();
    const char *p[3] = {nsp, room, details ? "t" : "f"};
    int rc = begin_read(a);
    if (rc < 0)
        goto out;
    /* a socket's rooms in the same row: its own first, then by name */
    if ((rc = query(a,
                    "SELECT s.id, s.nsp, s.sid, ss.transport, s.data, s.created_at,"
                    " CASE WHEN $3::boolean THEN"
                    "  (SELECT h.handshake FROM handshakes h WHERE h.sid = s.sid) END,"
                    " (SELECT json_agg(r.room ORDER BY r.room = s.id DESC, r.room)"
                    "  FROM rooms r WHERE r.socket_id = s.id AND r.nsp = s.nsp)"
                    " FROM sockets s JOIN sessions ss ON ss.sid = s.sid"
                    " WHERE ss.state = 0 AND ($1::text IS NULL OR s.nsp = $1)"
                    " AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM rooms r"
                    "      WHERE r.nsp = s.nsp AND r.room = $2 AND r.socket_id = s.id))"
                    " ORDER BY s.nsp, s.created_at, s.id",
                    3, p, &r, "list sockets")) < 0)
        goto out;
    for (int i = 0; arr && i < PQntuples(r); i++) {
        json_t *rooms = sg_admin_json_parse(col_text(r, i, 7));
        if (json_is_null(rooms)) {
            json_decref(rooms);
            rooms = json_array();
        }
        sg_admin_text handshake = col_text(r, i, 6);
        json_t *o = sg_admin_socket_json(col_text(r, i, 0), col_text(r, i, 1), col_text(r, i, 2),
                                         col_text(r, i, 3), rooms, col_text(r, i, 4),
                                         col_int(r, i, 5), details ? &handshake : NULL);
        if (!push(arr, o)) {
            rc = oom(a);
            goto out;
        }
    }
out:
    PQclear(r);
    return list_done(a, rc, arr, out);
}

/* nsp of live socket id (in the current transaction, if any). */
static int op_socket_nsp(sg_admin *b, const char *socket_id, char *nsp, size_t cap)
{
    admin_pg *a = SELF(b);
    PGresult *r;
    const char *p[1] = {socket_id};
    int rc = query(a,
                   "SELECT s.nsp FROM sockets s JOIN sessions ss ON ss.sid = s.sid"
                   " WHERE s.id = $1 AND ss.state = 0",
                   1, p, &r, "find socket");
    if (rc < 0)
        return rc;
    if (PQntuples(r) > 0) {
        snprintf(nsp, cap, "%s", PQgetvalue(r, 0, 0));
    } else {
        set_err(a, "no live socket %s", socket_id);
        rc = SG_ADMIN_NOTFOUND;
    }
    PQclear(r);
    return rc;
}

/* ---- rooms ---------------------------------------------------------------------------------- */

static int op_rooms(sg_admin *b, const char *nsp, json_t **out)
{
    admin_pg *a = SELF(b);
    *out = NULL;
    PGresult *r = NULL;
    json_t *arr = json_array();
    const char *p[1] = {nsp};
    int rc = begin_read(a);
    if (rc < 0)
        goto out;
    if ((rc = query(a,
                    "SELECT r.nsp, r.room, count(*)"
                    " FROM rooms r JOIN sockets s ON s.id = r.socket_id"
                    " JOIN sessions ss ON ss.sid = s.sid"
                    " WHERE ss.state = 0 AND r.room <> r.socket_id"
                    " AND ($1::text IS NULL OR r.nsp = $1)"
                    " GROUP BY r.nsp, r.room ORDER BY r.nsp, r.room",
                    1, p, &r, "list rooms")) < 0)
        goto out;
    for (int i = 0; arr && i < PQntuples(r); i++) {
        json_t *o = json_pack("{s:o,s:o,s:I}", "nsp", col_string(r, i, 0), "room",
                              col_string(r, i, 1), "members", col_int(r, i, 2));
        if (!push(arr, o)) {
            rc = oom(a);
            goto out;
        }
    }
out:
    PQclear(r);
    return list_done(a, rc, arr, out);
}

/* ---- join and leave ------------------------------------------------------------------------------ */

struct change {
    admin_pg *a;
    bool join;
    const char *rooms_json; /* the rooms as one JSON array text */
    json_t *seen;           /* socket ids affected (object used as a set) */
    sg_store *store;        /* on a->conn: the write transaction, the broadcast log */
    int settled;
};

static int apply(struct change *c, const char *id, const char *nsp)
{
    /* a broadcast logged before reaches the members of then */
    char sid[SG_ID_LEN + 1];
    int64_t seen = 0;
    bool moved = false;
    int src = sg_store_socket_get(c->store, id, sid, NULL, 0, NULL);
    if (src == 0)
        src = sg_store_bcast_settle(c->store, sid, 0, &seen, &moved);
    if (src < 0)
        return store_fail(c->a, src, "cannot settle the broadcast log");
    if (src == SG_STORE_NOTFOUND) {
        set_err(c->a, "cannot settle the broadcast log of socket %s: it is gone", id);
        return SG_ADMIN_ERR;
    }
    c->settled += moved;
    /* every room in one statement; a socket never leaves its own room */
    const char *p[3] = {nsp, c->rooms_json, id};
    int rc = query(c->a,
                   c->join ? "INSERT INTO rooms (nsp, room, socket_id)"
                             " SELECT $1, x, $3 FROM json_array_elements_text($2::json) x"
                             " ON CONFLICT DO NOTHING"
                           : "DELETE FROM rooms WHERE nsp = $1 AND socket_id = $3"
                             " AND room <> socket_id"
                             " AND room IN (SELECT json_array_elements_text($2::json))",
                   3, p, NULL, c->join ? "join" : "leave");
    if (rc < 0)
        return rc;
    if (json_object_set_new(c->seen, id, json_true()) < 0)
        return oom(c->a);
    return SG_ADMIN_OK;
}

static int change_socket(struct change *c, const sg_admin_sel *sel)
{
    char nsp[1024];
    int rc = op_socket_nsp(&c->a->base, sel->socket_id, nsp, sizeof nsp);
    if (rc == SG_ADMIN_OK && sel->nsp && strcmp(sel->nsp, nsp) != 0) {
        set_err(c->a, "socket %s is in namespace %s, not %s", sel->socket_id, nsp, sel->nsp);
        rc = SG_ADMIN_NOTFOUND;
    }
    return rc == SG_ADMIN_OK ? apply(c, sel->socket_id, nsp) : rc;
}

static int change_room(struct change *c, const sg_admin_sel *sel)
{
    PGresult *r;
    const char *p[2] = {sel->from_room, sel->nsp};
    /* the members first (a whole result), then the changes */
    int rc = query(c->a,
                   "SELECT r.socket_id, r.nsp FROM rooms r JOIN sockets s ON s.id = r.socket_id"
                   " JOIN sessions ss ON ss.sid = s.sid"
                   " WHERE r.room = $1 AND ($2::text IS NULL OR r.nsp = $2) AND ss.state = 0"
                   " ORDER BY r.nsp, s.created_at, s.id",
                   2, p, &r, "list members");
    if (rc < 0)
        return rc;
    for (int i = 0; rc >= 0 && i < PQntuples(r); i++)
        rc = apply(c, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
    PQclear(r);
    return rc;
}

static int op_rooms_change(sg_admin *b, bool join, const sg_admin_sel *sel, size_t nsel,
                           const char *const *rooms, int *affected, int *settled)
{
    admin_pg *a = SELF(b);
    *affected = *settled = 0;
    char *rooms_json = NULL;
    json_t *list = json_array();
    for (const char *const *r = rooms; list && *r; r++)
        if (json_array_append_new(list, json_string(*r)) < 0) {
            json_decref(list);
            list = NULL;
        }
    if (list)
        rooms_json = json_dumps(list, JSON_COMPACT);
    json_decref(list);
    struct change c = {a, join, rooms_json, json_object(), NULL, 0};
    int rc;
    if (!rooms_json || !c.seen) {
        /* json_string refuses text that is not UTF-8, as PostgreSQL would */
        set_err(a, "a room name is not UTF-8 text (or out of memory)");
        rc = SG_ADMIN_ERR;
        goto out;
    }
    if (!(c.store = sg_store_pg_borrow(a->conn, a->conninfo))) {
        rc = store_fail(a, -1, "cannot use the store");
        goto out;
    }
    /* BEGIN and the writers' advisory lock, as every writer takes it.
     * The store owes them to its next statement (it pipelines them): a
     * store lookup that finds nothing (no socket has the id ""), so that
     * they are sent, and the lock held, before our own statements read
     * the members and change the rooms; a lock that timed out fails it
     * with SG_STORE_BUSY */
    int src = sg_store_begin(c.store);
    if (src == 0 && (src = sg_store_socket_get(c.store, "", NULL, NULL, 0, NULL)) ==
                        SG_STORE_NOTFOUND)
        src = 0;
    if (src != 0) {
        rc = store_fail(a, src, "take the writers' lock");
        if (PQtransactionStatus(a->conn) != PQTRANS_IDLE)
            sg_store_rollback(c.store);
        goto out;
    }
    rc = SG_ADMIN_OK;
    for (size_t i = 0; i < nsel && rc >= 0; i++)
        rc = sel[i].socket_id ? change_socket(&c, &sel[i]) : change_room(&c, &sel[i]);
    if (rc >= 0 && (src = sg_store_commit(c.store)) != 0)
        rc = store_fail(a, src, "commit");
    if (rc < 0)
        sg_store_rollback(c.store);
out:
    rollback(a);
    if (rc >= 0) {
        *affected = (int)json_object_size(c.seen);
        *settled = c.settled;
    }
    json_decref(c.seen);
    free(rooms_json);
    sg_store_close(c.store);
    return rc;
}

/* ---- statistics ------------------------------------------------------------------------------ */

/* Run a query and call fn per row; SG_ADMIN_OK or a negative result. */
static int each_row(admin_pg *a, const char *sql, int (*fn)(void *ud, const PGresult *r, int row),
                    void *ud)
{
    PGresult *r;
    int rc = query(a, sql, 0, NULL, &r, sql);
    if (rc < 0)
        return rc;
    for (int i = 0; rc >= 0 && i < PQntuples(r); i++)
        if (fn(ud, r, i) < 0)
            rc = oom(a);
    PQclear(r);
    return rc;
}

/* The rows of the stats queries, into an sg_admin_figures (admin_int.h). */

/* (state, transport, count) */
static int row_sessions(void *ud, const PGresult *r, int row)
{
    return sg_admin_figures_sessions(ud, (int)col_int(r, row, 0), col_text(r, row, 1).p,
                                     col_int(r, row, 2));
}

/* (nsp, transport, count) */
static int row_sockets(void *ud, const PGresult *r, int row)
{
    return sg_admin_figures_sockets(ud, PQgetvalue(r, row, 0), col_text(r, row, 1).p,
                                    col_int(r, row, 2));
}

/* (count, bytes) */
static int row_queue(void *ud, const PGresult *r, int row)
{
    return sg_admin_figures_queue(ud, col_int(r, row, 0), col_int(r, row, 1));
}

/* (count): into the json_int_t ud */
static int row_count(void *ud, const PGresult *r, int row)
{
    *(json_int_t *)ud = col_int(r, row, 0);
    return 0;
}

static int op_stats(sg_admin *b, json_t **out)
{
    admin_pg *a = SELF(b);
    *out = NULL;
    sg_admin_figures st;
    json_int_t bytes = 0;
    int rc = SG_ADMIN_ERR;
    if (sg_admin_figures_init(&st) < 0) {
        rc = oom(a);
        goto out;
    }
    if ((rc = begin_read(a)) < 0 ||
        (rc = each_row(a, "SELECT state, transport, count(*) FROM sessions GROUP BY 1, 2",
                       row_sessions, &st)) < 0 ||
        (rc = each_row(a,
                       "SELECT s.nsp, ss.transport, count(*) FROM sockets s"
                       " JOIN sessions ss ON ss.sid = s.sid WHERE ss.state = 0"
                       " GROUP BY 1, 2 ORDER BY 1, 2",
                       row_sockets, &st)) < 0 ||
        (rc = each_row(a, "SELECT count(*), coalesce(sum(octet_length(frame)), 0) FROM queue",
                       row_queue, &st)) < 0 ||
        (rc = each_row(a,
                       "SELECT count(*) FROM (SELECT DISTINCT r.nsp, r.room FROM rooms r"
                       " JOIN sockets s ON s.id = r.socket_id JOIN sessions ss ON ss.sid = s.sid"
                       " WHERE ss.state = 0 AND r.room <> r.socket_id) x",
                       row_count, &st.rooms)) < 0 ||
        (rc = each_row(a, "SELECT count(*) FROM acks", row_count, &st.acks)) < 0 ||
        (rc = each_row(a,
                       "SELECT coalesce(sum(pg_total_relation_size(t)), 0) FROM"
                       " (SELECT to_regclass(n) t FROM unnest(ARRAY[" SG_PG_TABLES "]) n) x"
                       " WHERE t IS NOT NULL",
                       row_count, &bytes)) < 0)
        goto out;
    if ((rc = end_read(a, rc)) < 0)
        goto out;
    *out = sg_admin_figures_json(&st, json_pack("{s:s,s:i,s:I,s:I}", "path", a->shown, "schema",
                                                a->version, "db_bytes", bytes, "total_bytes",
                                                bytes));
    if (!*out)
        rc = oom(a);
out:
    rollback(a);
    sg_admin_figures_free(&st);
    return rc < 0 ? rc : SG_ADMIN_OK;
}

/* PostgreSQL's checkpointer writes its WAL back on its own schedule, and
 * forcing one (CHECKPOINT) is a superuser's heavy tool, not a cron job's:
 * nothing to do, and the caller is told so. */
static int op_checkpoint(sg_admin *b, int *done, int *total)
{
    *done = *total = -1;
    set_err(SELF(b), "no checkpoint on PostgreSQL: the server checkpoints its own WAL");
    return SG_ADMIN_NOT_APPLICABLE;
}

/* ---- the table ---------------------------------------------------------------------------------- */

static sg_store *op_store(sg_admin *b) { return sg_store_pg_borrow(SELF(b)->conn, SELF(b)->conninfo); }

static void op_close(sg_admin *b) { close_pg(SELF(b)); }

static const sg_admin_ops pg_admin_ops = {
    .store = op_store,
    .sockets = op_sockets,
    .rooms = op_rooms,
    .socket_nsp = op_socket_nsp,
    .rooms_change = op_rooms_change,
    .stats = op_stats,
    .checkpoint = op_checkpoint,
    .close = op_close,
};
