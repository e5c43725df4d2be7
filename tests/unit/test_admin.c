/* test_admin.c - the CLI's own store queries (admin.h), and how the CLI
 * shows a db value.
 *
 * The queries run on a SQLite store here; compiled a second time with
 * SG_TEST_PG as test_admin_pg, the same tests run on PostgreSQL when the
 * environment variable SG_TEST_PG holds a connection string (a server
 * where it may create a database of its own, each store a fresh schema
 * in it: pgtest.h says why), with PostgreSQL's own added (the lock held by
 * another connection: SG_ADMIN_BUSY after SG_ADMIN_LOCK_MS, reads go on);
 * skipped without it.
 *
 * The db value as shown: a PostgreSQL connection string never with its
 * password, wherever libpq would find one; and the scrubbing of text
 * that others (the store's log, the doorbell's) wrote. Each case also
 * asks libpq (PQconninfoParse) what the password is, so that a masked
 * text that still holds it fails whatever this file expects. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <libpq-fe.h>

#include "admin.h"
#include "log.h"
#include "pgtest.h"
#include "store_int.h"
#include "tap.h"

static char dir[64];
static char path[2048];

/* libpq's password of db ("" when none). */
static void libpq_pw(const char *db, char *out, size_t cap)
{
    out[0] = '\0';
    PQconninfoOption *opts = PQconninfoParse(db, NULL);
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val)
            snprintf(out, cap, "%s", o->val);
    PQconninfoFree(opts);
}

#ifndef SG_TEST_PG
static const struct {
    const char *db, *shown;
} cases[] = {
    /* SQLite paths and connection strings without a password: as written */
    {"/var/lib/siogate/siogate.db", "/var/lib/siogate/siogate.db"},
    {"postgresql://siogate@127.0.0.1:5432/db", "postgresql://siogate@127.0.0.1:5432/db"},
    {"host=db1 dbname=siogate", "host=db1 dbname=siogate"},
    /* the URI's user part */
    {"postgresql://siogate:s3cret@127.0.0.1:5432/db", "postgresql://siogate:***@127.0.0.1:5432/db"},
    {"postgres://u:p%40ss@h/db", "postgres://u:***@h/db"},
    /* libpq takes the text up to the first '@' (no '/' before): '?' too */
    {"postgresql://u:pa?ss@h/db", "postgresql://u:***@h/db"},
    {"postgresql://:only@h/db", "postgresql://:***@h/db"},
    /* query parameters, their names percent-decoded as libpq does */
    {"postgresql://h/db?sslmode=disable&password=other&application_name=x",
     "postgresql://h/db?sslmode=disable&password=***&application_name=x"},
    {"postgresql://h/db?pass%77ord=hidden1", "postgresql://h/db?pass%77ord=***"},
    {"postgresql://u:one1@h/db?password=two2", "postgresql://u:***@h/db?password=***"},
    /* keyword/value: plain, quoted with escapes, spaces around '=' */
    {"host=h user=u password=s3cret dbname=d", "host=h user=u password=*** dbname=d"},
    {"host=h password = 'a b\\' c' dbname=d", "host=h password = *** dbname=d"},
    {"password=xyz9", "password=***"},
    {"password=a\\ b host=h", "password=*** host=h"},
    {"dbname=d password='unterminated", "dbname=d password=***"},
};

TEST("admin: a db value is shown without the password libpq would use")
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char shown[512], pw[256];
        sg_admin_db_shown(cases[i].db, shown, sizeof shown);
        CHECK_STR(shown, cases[i].shown);
        libpq_pw(cases[i].db, pw, sizeof pw);
        if (*pw && strstr(shown, pw)) {
            printf("#   case %zu: shown \"%s\" holds libpq's password\n", i, shown);
            *tap_failed = 1;
        }
    }
}

TEST("admin: a password the scanner would miss is still never shown")
{
    /* the same password twice: libpq takes the last; both are masked,
     * and a text that held either would be rebuilt from libpq's options */
    char shown[512];
    sg_admin_db_shown("password=first1 host=h password=second2", shown, sizeof shown);
    CHECK(!strstr(shown, "first1"));
    CHECK(!strstr(shown, "second2"));
    CHECK(strstr(shown, "host=h") != NULL);
    /* a cut buffer cuts, never shows more */
    sg_admin_db_shown("postgresql://u:secretpw@h/db", shown, 12);
    CHECK_STR(shown, "postgresql:");
    sg_admin_db_shown("postgresql://u:secretpw@h/db", shown, 1);
    CHECK_STR(shown, "");
}

TEST("admin: scrub replaces the whole connection string and the password in any text")
{
    const char *db = "postgresql://siogate:hunter2@127.0.0.1:55432/smoke1";
    char *t = sg_admin_scrub(db, "doorbell: cannot create postgresql://siogate:hunter2@"
                                 "127.0.0.1:55432/smoke1.bells: No such file");
    CHECK_STR(t, "doorbell: cannot create postgresql://siogate:***@127.0.0.1:55432/smoke1.bells: "
                 "No such file");
    free(t);
    t = sg_admin_scrub(db, "password hunter2 twice: hunter2");
    CHECK_STR(t, "password *** twice: ***");
    free(t);
    /* percent-encoded in the URI, decoded by libpq: both forms go */
    t = sg_admin_scrub("postgresql://u:p%40ssw0rd@h/db", "raw postgresql://u:p%40ssw0rd@h/db, "
                                                         "decoded p@ssw0rd");
    CHECK_STR(t, "raw postgresql://u:***@h/db, decoded ***");
    free(t);
    /* a password shorter than SG_ADMIN_SCRUB_MIN masks no ordinary word */
    t = sg_admin_scrub("host=h password=ab", "a table");
    CHECK_STR(t, "a table");
    free(t);
    /* a SQLite path: the text as it is */
    t = sg_admin_scrub("/tmp/x.db", "store /tmp/x.db: locked");
    CHECK_STR(t, "store /tmp/x.db: locked");
    free(t);
}

#endif

/* ---- the queries, on a store filled through store.h ---------------------------------- */

#ifdef SG_TEST_PG
static sg_store *fresh(void)
{
    return pgtest_schema(path, sizeof path) == 0 ? sg_store_open(path) : NULL;
}
#define LATEST sg_store_pg_latest_version()
#define SET_VERSION_999 "UPDATE schema_version SET version = 999"
#else
static sg_store *fresh(void)
{
    static int n;
    snprintf(path, sizeof path, "%s/s%d.db", dir, n++);
    return sg_store_open(path);
}
#define LATEST sg_store_latest_version("siogate.db")
#define SET_VERSION_999 "PRAGMA user_version = 999"
#endif

/* Run sql on the store at path, on a connection of its own. */
static bool exec_sql(const char *sql)
{
#ifdef SG_TEST_PG
    PGconn *c = PQconnectdb(path);
    PGresult *r = PQexec(c, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        printf("# %s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
    return ok;
#else
    sqlite3 *db = NULL;
    bool ok = sqlite3_open(path, &db) == SQLITE_OK &&
              sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
    sqlite3_close(db);
    return ok;
#endif
}

#define SID1 "AAAAAAAAAAAAAAAAAAAA"
#define SID2 "BBBBBBBBBBBBBBBBBBBB"
#define SID3 "CCCCCCCCCCCCCCCCCCCC"
#define K1 "k1k1k1k1k1k1k1k1k1k1"
#define K2 "k2k2k2k2k2k2k2k2k2k2"
#define K3 "k3k3k3k3k3k3k3k3k3k3"
#define K4 "k4k4k4k4k4k4k4k4k4k4"

static int add_session(sg_store *s, const char *sid, const char *transport)
{
    sg_session ss;
    memset(&ss, 0, sizeof ss);
    sg_buf_init(&ss.partial);
    snprintf(ss.sid, sizeof ss.sid, "%s", sid);
    snprintf(ss.transport, sizeof ss.transport, "%s", transport);
    ss.created_at = 1000;
    ss.next_ping_at = 2000;
    ss.expires_at = 3000;
    return sg_store_session_insert(s, &ss, "{\"address\":\"127.0.0.1\"}");
}

/* Sessions S1 (polling) and S2 (websocket) open, S3 closed; sockets K1
 * (S1, /, at 100) in red and blue, K2 (S2, /, at 200) in red, K3 (S1,
 * /chat, at 150) in red, K4 (S3, /, at 50: not live) in red. An admin
 * on it into *a. */
static bool fill(sg_admin **a)
{
    *a = NULL;
    sg_store *s = fresh();
    bool ok = s && add_session(s, SID1, "polling") == 0 && add_session(s, SID2, "websocket") == 0 &&
              add_session(s, SID3, "polling") == 0 &&
              sg_store_socket_insert(s, K1, SID1, "/", 100) == 0 &&
              sg_store_socket_insert(s, K2, SID2, "/", 200) == 0 &&
              sg_store_socket_insert(s, K3, SID1, "/chat", 150) == 0 &&
              sg_store_socket_insert(s, K4, SID3, "/", 50) == 0 &&
              sg_store_room_join(s, "/", "red", K1) == 0 &&
              sg_store_room_join(s, "/", "blue", K1) == 0 &&
              sg_store_room_join(s, "/", "red", K2) == 0 &&
              sg_store_room_join(s, "/chat", "red", K3) == 0 &&
              sg_store_room_join(s, "/", "red", K4) == 0 &&
              sg_store_session_close(s, SID3, "transport close", 4000) == 0;
    sg_store_close(s);
    char err[1024];
    int version;
    if (ok && sg_admin_open(path, a, &version, err, sizeof err) != SG_ADMIN_OK) {
        printf("# open: %s\n", err);
        ok = false;
    }
    return ok;
}

/* The listing as "id:nsp:transport:rooms,..." lines. */
static char *sockets_text(sg_admin *a, const char *nsp, const char *room)
{
    json_t *list;
    int n = sg_admin_sockets(a, nsp, room, false, &list);
    if (n < 0)
        return strdup(sg_admin_error(a));
    sg_buf b = SG_BUF_INIT;
    size_t i, k;
    json_t *o, *r;
    json_array_foreach(list, i, o) {
        sg_buf_printf(&b, "%s:%s:%s:", json_string_value(json_object_get(o, "id")),
                      json_string_value(json_object_get(o, "nsp")),
                      json_string_value(json_object_get(o, "transport")));
        json_array_foreach(json_object_get(o, "rooms"), k, r)
            sg_buf_printf(&b, "%s%s", k ? "," : "", json_string_value(r));
        sg_buf_putc(&b, '\n');
    }
    json_decref(list);
    return sg_buf_steal(&b);
}

static char *rooms_text(sg_admin *a, const char *nsp)
{
    json_t *list;
    if (sg_admin_rooms(a, nsp, &list) < 0)
        return strdup(sg_admin_error(a));
    sg_buf b = SG_BUF_INIT;
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o)
        sg_buf_printf(&b, "%s %s %lld\n", json_string_value(json_object_get(o, "nsp")),
                      json_string_value(json_object_get(o, "room")),
                      (long long)json_integer_value(json_object_get(o, "members")));
    json_decref(list);
    return sg_buf_steal(&b);
}

#define CHECK_TEXT(expr, want)                                                 \
    do {                                                                       \
        char *t_ = (expr);                                                     \
        CHECK_STR(t_, want);                                                   \
        free(t_);                                                              \
    } while (0)

TEST("admin: sockets lists the live ones by namespace then age, own room first")
{
    sg_admin *a;
    CHECK(fill(&a));
    if (!a)
        return;
    CHECK_TEXT(sockets_text(a, NULL, NULL), K1 ":/:polling:" K1 ",blue,red\n"
                                            K2 ":/:websocket:" K2 ",red\n"
                                            K3 ":/chat:polling:" K3 ",red\n");
    CHECK_TEXT(sockets_text(a, "/chat", NULL), K3 ":/chat:polling:" K3 ",red\n");
    CHECK_TEXT(sockets_text(a, NULL, "blue"), K1 ":/:polling:" K1 ",blue,red\n");
    CHECK_TEXT(sockets_text(a, "/", "red"), K1 ":/:polling:" K1 ",blue,red\n"
                                            K2 ":/:websocket:" K2 ",red\n");
    CHECK_TEXT(sockets_text(a, "/none", NULL), "");
    /* details: the handshake, the data (null when unset), the time */
    json_t *list;
    CHECK_INT(sg_admin_sockets(a, "/chat", NULL, true, &list), 1);
    json_t *o = json_array_get(list, 0);
    CHECK_STR(json_string_value(json_object_get(o, "sid")), SID1);
    CHECK_STR(json_string_value(json_object_get(json_object_get(o, "handshake"), "address")),
              "127.0.0.1");
    CHECK(json_is_null(json_object_get(o, "data")));
    CHECK_INT(json_integer_value(json_object_get(o, "connected_at")), 150);
    json_decref(list);
    CHECK_INT(sg_admin_sockets(a, "/chat", NULL, false, &list), 1);
    CHECK(json_object_get(json_array_get(list, 0), "handshake") == NULL);
    json_decref(list);
    char nsp[64];
    CHECK_INT(sg_admin_socket_nsp(a, K3, nsp, sizeof nsp), SG_ADMIN_OK);
    CHECK_STR(nsp, "/chat");
    CHECK_INT(sg_admin_socket_nsp(a, K4, nsp, sizeof nsp), SG_ADMIN_NOTFOUND);
    CHECK_INT(sg_admin_socket_nsp(a, "nosuch", nsp, sizeof nsp), SG_ADMIN_NOTFOUND);
    CHECK_TEXT(rooms_text(a, NULL), "/ blue 1\n/ red 2\n/chat red 1\n");
    CHECK_TEXT(rooms_text(a, "/chat"), "/chat red 1\n");
    sg_admin_close(a);
}

TEST("admin: join and leave, one transaction, the own room kept")
{
    sg_admin *a;
    CHECK(fill(&a));
    if (!a)
        return;
    int affected, settled;
    const char *const bg[] = {"blue", "green", NULL};
    sg_admin_sel one = {K2, NULL, NULL};
    CHECK_INT(sg_admin_rooms_change(a, true, &one, 1, bg, &affected, &settled), SG_ADMIN_OK);
    CHECK_INT(affected, 1);
    CHECK_INT(settled, 0);
    CHECK_TEXT(rooms_text(a, NULL), "/ blue 2\n/ green 1\n/ red 2\n/chat red 1\n");
    /* the members of red in /: out of red, and never out of their own */
    const char *const out[] = {"red", K1, K2, NULL};
    sg_admin_sel members = {NULL, "red", "/"};
    CHECK_INT(sg_admin_rooms_change(a, false, &members, 1, out, &affected, &settled), SG_ADMIN_OK);
    CHECK_INT(affected, 2);
    CHECK_TEXT(sockets_text(a, "/", NULL), K1 ":/:polling:" K1 ",blue\n"
                                           K2 ":/:websocket:" K2 ",blue,green\n");
    /* a socket that is not live: nothing of the whole request is done */
    const char *const x[] = {"x", NULL};
    sg_admin_sel two[] = {{K1, NULL, NULL}, {K4, NULL, NULL}};
    CHECK_INT(sg_admin_rooms_change(a, true, two, 2, x, &affected, &settled), SG_ADMIN_NOTFOUND);
    CHECK(strstr(sg_admin_error(a), K4) != NULL);
    /* nor one in another namespace than asked */
    sg_admin_sel wrong = {K3, NULL, "/"};
    CHECK_INT(sg_admin_rooms_change(a, true, &wrong, 1, x, &affected, &settled), SG_ADMIN_NOTFOUND);
    CHECK_TEXT(rooms_text(a, NULL), "/ blue 2\n/ green 1\n/chat red 1\n");
    /* every namespace: each member in its own */
    sg_admin_sel blue = {NULL, "blue", NULL};
    CHECK_INT(sg_admin_rooms_change(a, true, &blue, 1, x, &affected, &settled), SG_ADMIN_OK);
    CHECK_INT(affected, 2);
    CHECK_TEXT(rooms_text(a, NULL), "/ blue 2\n/ green 1\n/ x 2\n/chat red 1\n");
    /* the engine's store on the same connection sees it */
    sg_store *s = sg_admin_store(a);
    CHECK(s != NULL);
    if (s) {
        json_t *r = sg_store_socket_rooms(s, K2);
        char *t = json_dumps(r, JSON_COMPACT);
        CHECK_STR(t, "[\"" K2 "\",\"blue\",\"green\",\"x\"]");
        free(t);
        json_decref(r);
        sg_store_close(s);
    }
    sg_admin_close(a);
}

TEST("admin: stats, and the checkpoint")
{
    sg_admin *a;
    CHECK(fill(&a));
    if (!a)
        return;
    json_t *st;
    CHECK_INT(sg_admin_stats(a, &st), SG_ADMIN_OK);
    char *t = json_dumps(st, JSON_COMPACT);
    json_t *part = json_pack("{s:O,s:O,s:O,s:O}", "sessions", json_object_get(st, "sessions"),
                             "sockets", json_object_get(st, "sockets"),
                             "rooms", json_object_get(st, "rooms"),
                             "acks", json_object_get(st, "acks"));
    CHECK_TEXT(json_dumps(part, JSON_COMPACT | JSON_SORT_KEYS),
               "{\"acks\":{\"pending\":0},\"rooms\":3,\"sessions\":{\"closed\":1,\"open\":2,"
               "\"polling\":1,\"recoverable\":0,\"websocket\":1},\"sockets\":{\"namespaces\":"
               "{\"/\":{\"polling\":1,\"websocket\":1},\"/chat\":{\"polling\":1,\"websocket\":0}},"
               "\"total\":3}}");
    json_t *store = json_object_get(st, "store");
    CHECK_INT(json_integer_value(json_object_get(store, "schema")), LATEST);
    json_int_t db = json_integer_value(json_object_get(store, "db_bytes"));
    CHECK(db > 0);
    const char *shown = json_string_value(json_object_get(store, "path"));
    int done, total;
#ifdef SG_TEST_PG
    CHECK(json_object_get(store, "wal_bytes") == NULL);
    CHECK(json_object_get(store, "shm_bytes") == NULL);
    CHECK_INT(json_integer_value(json_object_get(store, "total_bytes")), db);
    char pw[256];
    libpq_pw(path, pw, sizeof pw);
    CHECK(*pw && shown && !strstr(shown, pw) && !strstr(t, pw));
    CHECK(shown && strstr(shown, "password='***'") == NULL && strstr(shown, "password=***"));
    CHECK_INT(sg_admin_checkpoint(a, &done, &total), SG_ADMIN_NOT_APPLICABLE);
    CHECK_INT(done, -1);
    CHECK(strstr(sg_admin_error(a), "PostgreSQL") != NULL);
#else
    CHECK_STR(shown, path);
    CHECK(json_object_get(store, "wal_bytes") != NULL);
    CHECK_INT(json_integer_value(json_object_get(store, "total_bytes")),
              db + json_integer_value(json_object_get(store, "wal_bytes")) +
                  json_integer_value(json_object_get(store, "shm_bytes")));
    CHECK_INT(sg_admin_checkpoint(a, &done, &total), SG_ADMIN_OK);
    CHECK(total >= 0);
#endif
    free(t);
    json_decref(part);
    json_decref(st);
    sg_admin_close(a);
}

TEST("admin: open refuses a missing store, one without schema, and a newer one")
{
    sg_admin *a;
    char err[1024];
    int version;
#ifdef SG_TEST_PG
    /* nothing listens on port 1 */
    CHECK_INT(sg_admin_open("postgresql://u:s3cr3t@127.0.0.1:1/x", &a, &version, err, sizeof err),
              SG_ADMIN_MISSING);
    CHECK(strstr(err, "cannot connect") && !strstr(err, "s3cr3t"));
    CHECK_INT(pgtest_schema(path, sizeof path), 0);
#else
    snprintf(path, sizeof path, "%s/missing.db", dir);
    CHECK_INT(sg_admin_open(path, &a, &version, err, sizeof err), SG_ADMIN_MISSING);
    snprintf(path, sizeof path, "%s/empty.db", dir);
    FILE *f = fopen(path, "w");
    if (f)
        fclose(f);
#endif
    CHECK_INT(sg_admin_open(path, &a, &version, err, sizeof err), SG_ADMIN_SCHEMA);
    CHECK(a == NULL);
    CHECK_INT(version, 0);
    CHECK(strstr(err, "not initialised") != NULL);
    sg_store *s = sg_store_open(path);
    CHECK(s != NULL);
    CHECK_INT(sg_admin_open(path, &a, &version, err, sizeof err), SG_ADMIN_OK);
    CHECK_INT(version, LATEST);
    sg_admin_close(a);
    sg_store_close(s);
    CHECK(exec_sql(SET_VERSION_999));
    CHECK_INT(sg_admin_open(path, &a, &version, err, sizeof err), SG_ADMIN_SCHEMA);
    CHECK_INT(version, 999);
    CHECK(strstr(err, "newer") != NULL);
}

#ifdef SG_TEST_PG
TEST("admin on PostgreSQL: the writers' lock held elsewhere is SG_ADMIN_BUSY; reads go on")
{
    sg_admin *a;
    CHECK(fill(&a));
    if (!a)
        return;
    PGconn *other = PQconnectdb(path);
    PGresult *r = PQexec(other, "BEGIN; SELECT pg_advisory_xact_lock(1397313351)");
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK);
    PQclear(r);
    CHECK_TEXT(rooms_text(a, "/chat"), "/chat red 1\n");
    int affected, settled;
    const char *const x[] = {"x", NULL};
    sg_admin_sel one = {K1, NULL, NULL};
    CHECK_INT(sg_admin_rooms_change(a, true, &one, 1, x, &affected, &settled), SG_ADMIN_BUSY);
    CHECK(strstr(sg_admin_error(a), "locked") != NULL);
    PQclear(PQexec(other, "COMMIT"));
    PQfinish(other);
    CHECK_INT(sg_admin_rooms_change(a, true, &one, 1, x, &affected, &settled), SG_ADMIN_OK);
    CHECK_TEXT(rooms_text(a, NULL), "/ blue 1\n/ red 2\n/ x 1\n/chat red 1\n");
    sg_admin_close(a);
}

TEST("admin on PostgreSQL: join --room reads the members once it holds the writers' lock")
{
    sg_admin *a;
    CHECK(fill(&a));
    if (!a)
        return;
    /* another writer holds the lock and adds K2 to blue; it commits a
     * second after saying so, while the join waits for the lock: the join
     * must then see K2 among blue's members (read after the lock, not
     * before) */
    int fds[2];
    CHECK_INT(pipe(fds), 0);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        PGconn *c = PQconnectdb(path);
        PGresult *r = PQexec(c, "BEGIN; SELECT pg_advisory_xact_lock(1397313351);"
                                " INSERT INTO rooms (nsp, room, socket_id)"
                                " VALUES ('/', 'blue', '" K2 "')");
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        ssize_t w = write(fds[1], "x", 1);
        usleep(1000 * 1000);
        r = PQexec(c, "COMMIT");
        ok = ok && w == 1 && PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        PQfinish(c); /* nothing left for valgrind's leak check in the child */
        _exit(ok ? 0 : 1);
    }
    char ch;
    CHECK_INT(read(fds[0], &ch, 1), 1);
    int affected, settled;
    const char *const y[] = {"y", NULL};
    sg_admin_sel blue = {NULL, "blue", "/"};
    CHECK_INT(sg_admin_rooms_change(a, true, &blue, 1, y, &affected, &settled), SG_ADMIN_OK);
    CHECK_INT(affected, 2);
    int status = -1;
    CHECK_INT(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(fds[0]);
    close(fds[1]);
    CHECK_TEXT(rooms_text(a, "/"), "/ blue 2\n/ red 2\n/ y 2\n");
    sg_admin_close(a);
}
#endif
int main(void)
{
    sg_log_init("test_admin", SG_LOG_ERROR + (getenv("SG_DEBUG") ? 3 : 0));
#ifdef SG_TEST_PG
    int started = pgtest_start("admin");
    if (started != 0) {
        pgtest_end(); /* what a failed start made */
        return started < 0;
    }
#endif
    snprintf(dir, sizeof dir, "/tmp/sg-test-admin-XXXXXX");
    if (!mkdtemp(dir))
        return 99;
    int rc = tap_run();
#ifdef SG_TEST_PG
    if (pgtest_end() != 0)
        rc = 1;
#endif
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}
