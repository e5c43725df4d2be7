/* admin_sqlite.c - the CLI's own store queries on a SQLite store. See
 * admin.h and admin_int.h.
 *
 * The schema is schema/0001_init.sql (and 0002, 0003: handshakes apart):
 * sessions (state 0 open, 1 closed),
 * sockets (one per namespace connection), rooms (nsp, room, socket_id;
 * every socket is in the room named by its id), queue, acks. */
#include "admin_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sqlite3.h>

#include "store_int.h"

typedef struct admin_sqlite {
    sg_admin base;
    sqlite3 *db;
    char *path;
    int version;
    struct timespec busy_since;   /* first retry of the current wait */
} admin_sqlite;

/* ---- errors ------------------------------------------------------------------ */

#define set_err(a, ...) sg_admin_set_err(&(a)->base, __VA_ARGS__)

static bool is_busy(int rc)
{
    rc &= 0xff;
    return rc == SQLITE_BUSY || rc == SQLITE_LOCKED;
}

/* Map a SQLite result of what to ours, with a message. */
static int fail(admin_sqlite *a, int rc, const char *what)
{
    if (is_busy(rc)) {
        set_err(a, "%s: the store stayed locked for more than %d ms", what, SG_ADMIN_LOCK_MS);
        return SG_ADMIN_BUSY;
    }
    set_err(a, "%s: %s", what, a->db ? sqlite3_errmsg(a->db) : sqlite3_errstr(rc));
    return SG_ADMIN_ERR;
}

/* ---- the connection ------------------------------------------------------------ */

static int64_t ms_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Like the store's: short sleeps (DESIGN §5: SQLite's own handler sleeps up
 * to 100 ms between retries and stalls behind busy writers), bounded by
 * time rather than by a count of retries. */
static int busy_handler(void *ud, int count)
{
    admin_sqlite *a = ud;
    if (count == 0)
        clock_gettime(CLOCK_MONOTONIC, &a->busy_since);
    else if (ms_since(&a->busy_since) >= SG_ADMIN_LOCK_MS)
        return 0;
    struct timespec ts = {0, 100 * 1000};
    nanosleep(&ts, NULL);
    return 1;
}

static int prepare(admin_sqlite *a, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v2(a->db, sql, -1, st, NULL);
    if (rc != SQLITE_OK) {
        *st = NULL;
        return fail(a, rc, "prepare");
    }
    return SG_ADMIN_OK;
}

static int exec_simple(admin_sqlite *a, const char *sql)
{
    sqlite3_stmt *st;
    int rc = prepare(a, sql, &st);
    if (rc != SG_ADMIN_OK)
        return rc;
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SG_ADMIN_OK : fail(a, rc, sql);
}

static int begin_read(admin_sqlite *a) { return exec_simple(a, "BEGIN"); }
static int begin_write(admin_sqlite *a) { return exec_simple(a, "BEGIN IMMEDIATE"); }
static int commit(admin_sqlite *a) { return exec_simple(a, "COMMIT"); }

static void rollback(admin_sqlite *a)
{
    if (!sqlite3_get_autocommit(a->db))
        sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
}

/* A read query ends with its snapshot released, whatever rc says. */
static int end_read(admin_sqlite *a, int rc)
{
    if (rc >= 0) {
        int c = commit(a);
        if (c < 0)
            rc = c;
    }
    rollback(a);
    return rc;
}

static void close_sqlite(admin_sqlite *a);
static const sg_admin_ops sqlite_ops;

int sg_admin_sqlite_open(const char *path, sg_admin **out, int *version, char *err,
                         size_t errcap)
{
    *out = NULL;
    if (version)
        *version = -1;
    struct stat sb;
    if (stat(path, &sb) < 0) {
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        return errno == ENOENT ? SG_ADMIN_MISSING : SG_ADMIN_ERR;
    }
    admin_sqlite *a = calloc(1, sizeof *a);
    if (!a || !(a->path = strdup(path))) {
        free(a);
        snprintf(err, errcap, "out of memory");
        return SG_ADMIN_ERR;
    }
    a->base.ops = &sqlite_ops;
    int rc = sqlite3_open_v2(path, &a->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                             NULL);
    if (rc != SQLITE_OK) {
        rc = fail(a, rc, "cannot open");
        goto out;
    }
    sqlite3_busy_handler(a->db, busy_handler, a);
    sqlite3_stmt *st;
    if ((rc = prepare(a, "PRAGMA user_version", &st)) != SG_ADMIN_OK)
        goto out;
    int step = sqlite3_step(st);
    a->version = step == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    if (step != SQLITE_ROW) {
        rc = fail(a, step, "read the schema version");
        goto out;
    }
    if (version)
        *version = a->version;
    int latest = sg_store_sqlite_latest_version();
    if (a->version != latest) {
        set_err(a, a->version == 0 ? "the store is not initialised"
                   : a->version < latest ? "the store is at schema version %d, older than this program's (%d)"
                   : "the store is at schema version %d, newer than this program's (%d)",
                a->version, latest);
        rc = SG_ADMIN_SCHEMA;
        goto out;
    }
    /* our writes are as durable as the servers' (WAL, synchronous=NORMAL) */
    if ((rc = exec_simple(a, "PRAGMA synchronous = NORMAL")) != SG_ADMIN_OK)
        goto out;
    *out = &a->base;
    return SG_ADMIN_OK;
out:
    snprintf(err, errcap, "%s: %s", path, a->base.err);
    close_sqlite(a);
    return rc;
}

static void close_sqlite(admin_sqlite *a)
{
    if (!a)
        return;
    sqlite3_close(a->db);
    free(a->path);
    free(a);
}

/* ---- helpers -------------------------------------------------------------------- */

static void bind_text(sqlite3_stmt *st, int i, const char *t)
{
    if (t)
        sqlite3_bind_text(st, i, t, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* A text column (valid until the statement steps on). */
static sg_admin_text column_text(sqlite3_stmt *st, int col)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    return (sg_admin_text){t, t ? (size_t)sqlite3_column_bytes(st, col) : 0};
}

static json_t *column_string(sqlite3_stmt *st, int col)
{
    return sg_admin_json_string(column_text(st, col));
}

/* Append v (stolen) to array arr; false on ENOMEM. */
static bool push(json_t *arr, json_t *v)
{
    return v && json_array_append_new(arr, v) == 0;
}

/* ---- sockets -------------------------------------------------------------------------- */

#define LIVE_SOCKETS                                                                    \
    " FROM sockets s JOIN sessions ss ON ss.sid = s.sid"                                \
    " WHERE ss.state = 0 AND (?1 IS NULL OR s.nsp = ?1)"                                \
    " AND (?2 IS NULL OR EXISTS (SELECT 1 FROM rooms r"                                 \
    "      WHERE r.nsp = s.nsp AND r.room = ?2 AND r.socket_id = s.id))"

static int socket_rooms(admin_sqlite *a, sqlite3_stmt *st, const char *id, const char *nsp,
                        json_t **out)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    bind_text(st, 1, id);
    bind_text(st, 2, nsp);
    json_t *arr = json_array();
    int rc;
    while (arr && (rc = sqlite3_step(st)) == SQLITE_ROW)
        if (!push(arr, column_string(st, 0)))
            break;
    if (!arr || rc != SQLITE_DONE) {
        json_decref(arr);
        return arr ? fail(a, rc, "read rooms") : (set_err(a, "out of memory"), SG_ADMIN_ERR);
    }
    *out = arr;
    return SG_ADMIN_OK;
}

/* End a listing's read: hand arr to *out and return its size, or release
 * it and return the error. */
static int list_done(admin_sqlite *a, int rc, json_t *arr, json_t **out)
{
    rc = end_read(a, rc);
    if (rc >= 0 && !arr) {
        set_err(a, "out of memory");
        rc = SG_ADMIN_ERR;
    }
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return (int)json_array_size(arr);
}

static int sockets(admin_sqlite *a, const char *nsp, const char *room, bool details,
                     json_t **out)
{
    *out = NULL;
    sqlite3_stmt *st = NULL, *rst = NULL;
    json_t *arr = json_array();
    int rc = begin_read(a);
    if (rc < 0)
        goto out;
    if ((rc = prepare(a,
                      "SELECT s.id, s.nsp, s.sid, ss.transport, s.data, s.created_at,"
                      " (SELECT handshake FROM handshakes h WHERE h.sid = s.sid)"
                      LIVE_SOCKETS " ORDER BY s.nsp, s.created_at, s.id",
                      &st)) < 0 ||
        (rc = prepare(a,
                      "SELECT room FROM rooms WHERE socket_id = ?1 AND nsp = ?2"
                      " ORDER BY room = socket_id DESC, room",
                      &rst)) < 0)
        goto out;
    bind_text(st, 1, nsp);
    bind_text(st, 2, room);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        const char *snsp = (const char *)sqlite3_column_text(st, 1);
        json_t *rooms = NULL;
        if ((rc = socket_rooms(a, rst, id, snsp, &rooms)) < 0)
            goto out;
        sg_admin_text handshake = column_text(st, 6);
        json_t *o = sg_admin_socket_json(column_text(st, 0), column_text(st, 1),
                                         column_text(st, 2), column_text(st, 3), rooms,
                                         column_text(st, 4), sqlite3_column_int64(st, 5),
                                         details ? &handshake : NULL);
        if (!push(arr, o)) {
            set_err(a, "out of memory");
            rc = SG_ADMIN_ERR;
            goto out;
        }
    }
    rc = step == SQLITE_DONE ? SG_ADMIN_OK : fail(a, step, "list sockets");
out:
    sqlite3_finalize(st);
    sqlite3_finalize(rst);
    return list_done(a, rc, arr, out);
}

static int socket_nsp(admin_sqlite *a, const char *socket_id, char *nsp, size_t cap)
{
    sqlite3_stmt *st;
    int rc = prepare(a,
                     "SELECT s.nsp FROM sockets s JOIN sessions ss ON ss.sid = s.sid"
                     " WHERE s.id = ?1 AND ss.state = 0",
                     &st);
    if (rc < 0)
        return rc;
    bind_text(st, 1, socket_id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        snprintf(nsp, cap, "%s", (const char *)sqlite3_column_text(st, 0));
        rc = SG_ADMIN_OK;
    } else if (step == SQLITE_DONE) {
        set_err(a, "no live socket %s", socket_id);
        rc = SG_ADMIN_NOTFOUND;
    } else {
        rc = fail(a, step, "find socket");
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---- rooms ------------------------------------------------------------------------------ */

static int rooms_list(admin_sqlite *a, const char *nsp, json_t **out)
{
    *out = NULL;
    sqlite3_stmt *st = NULL;
    json_t *arr = json_array();
    int rc = begin_read(a);
    if (rc < 0)
        goto out;
    if ((rc = prepare(a,
                      "SELECT r.nsp, r.room, count(*)"
                      " FROM rooms r JOIN sockets s ON s.id = r.socket_id"
                      " JOIN sessions ss ON ss.sid = s.sid"
                      " WHERE ss.state = 0 AND r.room <> r.socket_id"
                      " AND (?1 IS NULL OR r.nsp = ?1)"
                      " GROUP BY r.nsp, r.room ORDER BY r.nsp, r.room",
                      &st)) < 0)
        goto out;
    bind_text(st, 1, nsp);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = json_pack("{s:o,s:o,s:I}", "nsp", column_string(st, 0), "room",
                              column_string(st, 1), "members",
                              (json_int_t)sqlite3_column_int64(st, 2));
        if (!push(arr, o)) {
            set_err(a, "out of memory");
            rc = SG_ADMIN_ERR;
            goto out;
        }
    }
    rc = step == SQLITE_DONE ? SG_ADMIN_OK : fail(a, step, "list rooms");
out:
    sqlite3_finalize(st);
    return list_done(a, rc, arr, out);
}

/* ---- join and leave ------------------------------------------------------------------------ */

struct change {
    admin_sqlite *a;
    bool join;
    const char *const *rooms;
    sqlite3_stmt *op;       /* the INSERT or DELETE, bound per (nsp, room, socket) */
    json_t *seen;           /* socket ids affected (object used as a set) */
    sg_store *store;        /* on a->db, for the broadcast log */
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
    if (src < 0) {
        set_err(c->a, "cannot settle the broadcast log of socket %s", id);
        return SG_ADMIN_ERR;
    }
    c->settled += moved;
    for (const char *const *r = c->rooms; *r; r++) {
        sqlite3_reset(c->op);
        sqlite3_clear_bindings(c->op);
        bind_text(c->op, 1, nsp);
        bind_text(c->op, 2, *r);
        bind_text(c->op, 3, id);
        int step = sqlite3_step(c->op);
        if (step != SQLITE_DONE)
            return fail(c->a, step, c->join ? "join" : "leave");
    }
    if (json_object_set_new(c->seen, id, json_true()) < 0) {
        set_err(c->a, "out of memory");
        return SG_ADMIN_ERR;
    }
    return SG_ADMIN_OK;
}

static int change_socket(struct change *c, const sg_admin_sel *sel)
{
    char nsp[1024];
    int rc = socket_nsp(c->a, sel->socket_id, nsp, sizeof nsp);
    if (rc == SG_ADMIN_OK && sel->nsp && strcmp(sel->nsp, nsp) != 0) {
        set_err(c->a, "socket %s is in namespace %s, not %s", sel->socket_id, nsp, sel->nsp);
        rc = SG_ADMIN_NOTFOUND;
    }
    return rc == SG_ADMIN_OK ? apply(c, sel->socket_id, nsp) : rc;
}

static int change_room(struct change *c, const sg_admin_sel *sel)
{
    sqlite3_stmt *st;
    int rc = prepare(c->a,
                     "SELECT r.socket_id, r.nsp FROM rooms r JOIN sockets s ON s.id = r.socket_id"
                     " JOIN sessions ss ON ss.sid = s.sid"
                     " WHERE r.room = ?1 AND (?2 IS NULL OR r.nsp = ?2) AND ss.state = 0"
                     " ORDER BY r.nsp, s.created_at, s.id",
                     &st);
    if (rc < 0)
        return rc;
    bind_text(st, 1, sel->from_room);
    bind_text(st, 2, sel->nsp);
    /* the members first, then the changes: leaving FROM itself must not
     * disturb the scan */
    json_t *members = json_array();
    int step;
    while (members && (step = sqlite3_step(st)) == SQLITE_ROW)
        if (!push(members, json_pack("[o,o]", column_string(st, 0), column_string(st, 1))))
            break;
    sqlite3_finalize(st);
    if (!members || step != SQLITE_DONE) {
        json_decref(members);
        return members && step != SQLITE_ROW ? fail(c->a, step, "list members")
                                             : (set_err(c->a, "out of memory"), SG_ADMIN_ERR);
    }
    size_t i;
    json_t *m;
    rc = SG_ADMIN_OK;
    json_array_foreach(members, i, m) {
        if ((rc = apply(c, json_string_value(json_array_get(m, 0)),
                        json_string_value(json_array_get(m, 1)))) < 0)
            break;
    }
    json_decref(members);
    return rc;
}

static int rooms_change(admin_sqlite *a, bool join, const sg_admin_sel *sel, size_t nsel,
                          const char *const *rooms, int *affected, int *settled)
{
    *affected = *settled = 0;
    struct change c = {a, join, rooms, NULL, json_object(), sg_store_borrow(a->db, a->path), 0};
    if (!c.seen || !c.store) {
        set_err(a, "out of memory");
        return SG_ADMIN_ERR;
    }
    int rc = begin_write(a);
    if (rc < 0)
        goto out;
    if ((rc = prepare(a,
                      join ? "INSERT OR IGNORE INTO rooms (nsp, room, socket_id) VALUES (?1, ?2, ?3)"
                           : "DELETE FROM rooms WHERE nsp = ?1 AND room = ?2 AND socket_id = ?3"
                             " AND room <> socket_id",
                      &c.op)) < 0)
        goto out;
    for (size_t i = 0; i < nsel && rc >= 0; i++)
        rc = sel[i].socket_id ? change_socket(&c, &sel[i]) : change_room(&c, &sel[i]);
    if (rc >= 0)
        rc = commit(a);
out:
    sqlite3_finalize(c.op);
    rollback(a);
    if (rc >= 0) {
        *affected = (int)json_object_size(c.seen);
        *settled = c.settled;
    }
    json_decref(c.seen);
    sg_store_close(c.store);
    return rc;
}

/* ---- statistics --------------------------------------------------------------------------- */

/* Run a query and call fn per row; SG_ADMIN_OK or a negative result. */
static int each_row(admin_sqlite *a, const char *sql, int (*fn)(void *ud, sqlite3_stmt *st),
                    void *ud)
{
    sqlite3_stmt *st;
    int rc = prepare(a, sql, &st);
    if (rc < 0)
        return rc;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        if (fn(ud, st) < 0) {
            sqlite3_finalize(st);
            set_err(a, "out of memory");
            return SG_ADMIN_ERR;
        }
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? SG_ADMIN_OK : fail(a, step, sql);
}

/* The rows of the stats queries, into an sg_admin_figures (admin_int.h). */

/* (state, transport, count) */
static int row_sessions(void *ud, sqlite3_stmt *st)
{
    return sg_admin_figures_sessions(ud, sqlite3_column_int(st, 0),
                                     (const char *)sqlite3_column_text(st, 1),
                                     sqlite3_column_int64(st, 2));
}

/* (nsp, transport, count) */
static int row_sockets(void *ud, sqlite3_stmt *st)
{
    return sg_admin_figures_sockets(ud, (const char *)sqlite3_column_text(st, 0),
                                    (const char *)sqlite3_column_text(st, 1),
                                    sqlite3_column_int64(st, 2));
}

/* (count, bytes) */
static int row_queue(void *ud, sqlite3_stmt *st)
{
    return sg_admin_figures_queue(ud, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1));
}

/* (count): into the json_int_t ud */
static int row_count(void *ud, sqlite3_stmt *st)
{
    *(json_int_t *)ud = sqlite3_column_int64(st, 0);
    return 0;
}

static json_int_t file_size(const char *path, const char *suffix)
{
    char p[4096];
    struct stat sb;
    snprintf(p, sizeof p, "%s%s", path, suffix);
    return stat(p, &sb) == 0 ? (json_int_t)sb.st_size : 0;
}

static int stats(admin_sqlite *a, json_t **out)
{
    *out = NULL;
    sg_admin_figures st;
    int rc = SG_ADMIN_ERR;
    if (sg_admin_figures_init(&st) < 0) {
        set_err(a, "out of memory");
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
        (rc = each_row(a, "SELECT count(*), coalesce(sum(length(frame)), 0) FROM queue",
                       row_queue, &st)) < 0 ||
        (rc = each_row(a,
                       "SELECT count(*) FROM (SELECT DISTINCT r.nsp, r.room FROM rooms r"
                       " JOIN sockets s ON s.id = r.socket_id JOIN sessions ss ON ss.sid = s.sid"
                       " WHERE ss.state = 0 AND r.room <> r.socket_id)",
                       row_count, &st.rooms)) < 0 ||
        (rc = each_row(a, "SELECT count(*) FROM acks", row_count, &st.acks)) < 0)
        goto out;
    rc = end_read(a, rc);
    if (rc < 0)
        goto out;
    json_int_t db = file_size(a->path, ""), wal = file_size(a->path, "-wal"),
               shm = file_size(a->path, "-shm");
    *out = sg_admin_figures_json(&st, json_pack("{s:s,s:i,s:I,s:I,s:I,s:I}", "path", a->path,
                                                "schema", a->version, "db_bytes", db,
                                                "wal_bytes", wal, "shm_bytes", shm,
                                                "total_bytes", db + wal + shm));
    if (!*out) {
        set_err(a, "out of memory");
        rc = SG_ADMIN_ERR;
    }
out:
    rollback(a);
    sg_admin_figures_free(&st);
    return rc < 0 ? rc : SG_ADMIN_OK;
}

static int checkpoint(admin_sqlite *a, int *done, int *total)
{
    *done = *total = -1;
    int rc = sqlite3_wal_checkpoint_v2(a->db, NULL, SQLITE_CHECKPOINT_PASSIVE, total, done);
    /* another checkpoint is running: fine, it does the work */
    if (rc == SQLITE_OK || is_busy(rc))
        return SG_ADMIN_OK;
    return fail(a, rc, "checkpoint");
}

/* ---- the table ---------------------------------------------------------------------------- */

#define SELF(b) ((admin_sqlite *)(b))

static sg_store *op_store(sg_admin *b) { return sg_store_borrow(SELF(b)->db, SELF(b)->path); }

static int op_sockets(sg_admin *b, const char *nsp, const char *room, bool details, json_t **out)
{
    return sockets(SELF(b), nsp, room, details, out);
}

static int op_rooms(sg_admin *b, const char *nsp, json_t **out)
{
    return rooms_list(SELF(b), nsp, out);
}

static int op_socket_nsp(sg_admin *b, const char *socket_id, char *nsp, size_t cap)
{
    return socket_nsp(SELF(b), socket_id, nsp, cap);
}

static int op_rooms_change(sg_admin *b, bool join, const sg_admin_sel *sel, size_t nsel,
                           const char *const *rooms, int *affected, int *settled)
{
    return rooms_change(SELF(b), join, sel, nsel, rooms, affected, settled);
}

static int op_stats(sg_admin *b, json_t **out) { return stats(SELF(b), out); }

static int op_checkpoint(sg_admin *b, int *done, int *total)
{
    return checkpoint(SELF(b), done, total);
}

static void op_close(sg_admin *b) { close_sqlite(SELF(b)); }

static const sg_admin_ops sqlite_ops = {
    .store = op_store,
    .sockets = op_sockets,
    .rooms = op_rooms,
    .socket_nsp = op_socket_nsp,
    .rooms_change = op_rooms_change,
    .stats = op_stats,
    .checkpoint = op_checkpoint,
    .close = op_close,
};
