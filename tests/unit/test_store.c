/* test_store.c - the SQLite store, on a fresh database in a temp dir.
 *
 * Compiled a second time with SG_TEST_PG as test_store_pg: the same tests
 * on the PostgreSQL store, when the environment variable SG_TEST_PG holds
 * a connection string (a server where it may create a database of its
 * own, each store a fresh schema in it: pgtest.h says why); skipped
 * without it. The SQLite-only tests (file modes, SQLite migrations) are
 * left out there, and PostgreSQL's own added. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/wait.h>

#include <sqlite3.h>

#include "store.h"
#include "log.h"
#include "tap.h"

#ifdef SG_TEST_PG
#include <libpq-fe.h>
#include "store_int.h"
#include "pgtest.h"
#endif

extern const char *const sg_schema_migrations[];

static char dir[64];
static char path[2048];

#ifdef SG_TEST_PG
static sg_store *fresh(void)
{
    return pgtest_schema(path, sizeof path) == 0 ? sg_store_open(path) : NULL;
}
#define SCHEMA_VERSION_SET_999 "UPDATE schema_version SET version = 999"
#define LATEST_VERSION() sg_store_pg_latest_version()
#else
static sg_store *fresh(void)
{
    static int n;
    snprintf(path, sizeof path, "%s/s%d.db", dir, n++);
    return sg_store_open(path);
}
#define SCHEMA_VERSION_SET_999 "PRAGMA user_version = 999"
#define LATEST_VERSION() sg_store_latest_version("siogate.db")
#endif

static void mk_session(sg_session *ss, const char *sid)
{
    memset(ss, 0, sizeof *ss);
    sg_buf_init(&ss->partial);
    snprintf(ss->sid, sizeof ss->sid, "%s", sid);
    snprintf(ss->transport, sizeof ss->transport, "polling");
    ss->created_at = 1000;
    ss->next_ping_at = 2000;
    ss->expires_at = 3000;
    ss->connect_by = 2500;
}

#define SID1 "AAAAAAAAAAAAAAAAAAAA"
#define SID2 "BBBBBBBBBBBBBBBBBBBB"

TEST("store: open creates and migrates to the latest version")
{
    sg_store *s = fresh();
    CHECK(s != NULL);
    CHECK_INT(sg_store_version(s), LATEST_VERSION());
    CHECK(LATEST_VERSION() >= 1);
    sg_store_close(s);
    /* reopening an existing store applies nothing and keeps the version */
    s = sg_store_open(path);
    CHECK(s != NULL);
    CHECK_INT(sg_store_version(s), LATEST_VERSION());
#ifdef SG_TEST_PG
    CHECK_INT(sg_store_scalar(s, "SELECT count(*) FROM schema_version"), 1);
    CHECK_INT(sg_store_scalar(s, "SELECT version FROM schema_version"), LATEST_VERSION());
    CHECK(sg_store_pg_latest_version() >= 1);
#else
    CHECK_INT(sg_store_scalar(s, "PRAGMA journal_mode = WAL") >= 0, 1);
#endif
    sg_store_close(s);
}

#ifndef SG_TEST_PG
TEST("store: a version 2 store is taken forward with its sessions' handshakes")
{
    /* a store as siogate left it before schema 0003: the handshake in the
     * session row */
    static int n;
    snprintf(path, sizeof path, "%s/v2-%d.db", dir, n++);
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db, sg_schema_migrations[0], NULL, NULL, NULL), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db, sg_schema_migrations[1], NULL, NULL, NULL), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db,
                           "PRAGMA user_version = 2;"
                           "INSERT INTO sessions (sid, transport, created_at, next_ping_at,"
                           " expires_at, handshake) VALUES ('" SID1 "', 'polling', 1, 2, 3,"
                           " '{\"address\":\"10.1.2.3\"}')",
                           NULL, NULL, NULL),
              SQLITE_OK);
    sqlite3_close(db);

    sg_store *s = sg_store_open(path);
    CHECK(s != NULL);
    CHECK_INT(sg_store_version(s), LATEST_VERSION());
    json_t *hs = sg_store_session_handshake(s, SID1);
    CHECK(hs != NULL);
    CHECK_STR(json_string_value(json_object_get(hs, "address")), "10.1.2.3");
    json_decref(hs);
    /* the session's columns came along; purging it takes its handshake */
    sg_session got;
    CHECK_INT(sg_store_session_get(s, SID1, &got), 0);
    CHECK_INT(got.expires_at, 3);
    sg_session_clear(&got);
    CHECK_INT(sg_store_session_close(s, SID1, "transport close", 10), 0);
    CHECK_INT(sg_store_sessions_purge(s, 11), 1);
    CHECK(sg_store_session_handshake(s, SID1) == NULL);
    CHECK_INT(sg_store_scalar(s, "SELECT count(*) FROM handshakes"), 0);
    sg_store_close(s);
}

TEST("store: a version 6 store is taken forward to recovery (schema 0007), its rows kept")
{
    static int n;
    snprintf(path, sizeof path, "%s/v6-%d.db", dir, n++);
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    for (int k = 0; k < 6; k++)
        CHECK_INT(sqlite3_exec(db, sg_schema_migrations[k], NULL, NULL, NULL), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db,
                           "PRAGMA user_version = 6;"
                           "INSERT INTO sockets (id, sid, nsp, created_at) VALUES ('sockA', '" SID1
                           "', '/', 1);"
                           "INSERT INTO queue (sid, binary, frame) VALUES ('" SID1 "', 0, 'f');",
                           NULL, NULL, NULL),
              SQLITE_OK);
    sqlite3_close(db);
    sg_store *s = sg_store_open(path);
    CHECK(s != NULL);
    CHECK_INT(sg_store_version(s), LATEST_VERSION());
    CHECK(sg_store_latest_version("x.db") >= 7);
    CHECK_INT(sg_store_scalar(s, "SELECT count(*) FROM sockets WHERE id = 'sockA' AND pid IS NULL"), 1);
    CHECK_INT(sg_store_scalar(s, "SELECT count(*) FROM queue WHERE frame = 'f' AND eid IS NULL"), 1);
    CHECK_INT(sg_store_eid_next(s, 2), 2000);
    CHECK_INT(sg_store_socket_set_pid(s, "sockA", "p"), 0);
    /* a pid is unique */
    CHECK_INT(sg_store_socket_insert(s, "sockB", SID2, "/", 1), 0);
    CHECK(sg_store_socket_set_pid(s, "sockB", "p") != 0);
    sg_store_close(s);
}

TEST("store: a new store and its WAL are 0600 whatever the umask; an existing one keeps its mode")
{
    mode_t old = umask(0);
    sg_store *s = fresh();
    CHECK(s != NULL);
    sg_session ss;
    mk_session(&ss, SID1);
    CHECK_INT(sg_store_session_insert(s, &ss, "{}"), 0); /* the WAL has frames now */
    struct stat st;
    CHECK_INT(stat(path, &st), 0);
    CHECK_INT(st.st_mode & 07777, 0600);
    char wal[sizeof path + 8];
    snprintf(wal, sizeof wal, "%s-wal", path);
    CHECK_INT(stat(wal, &st), 0);
    CHECK_INT(st.st_mode & 07777, 0600);
    sg_store_close(s);
    /* the administrator's choice for an existing file stands */
    CHECK_INT(chmod(path, 0640), 0);
    s = sg_store_open(path);
    CHECK(s != NULL);
    CHECK_INT(stat(path, &st), 0);
    CHECK_INT(st.st_mode & 07777, 0640);
    sg_store_close(s);
    umask(old);
}

TEST("store: open fails cleanly on an unwritable path")
{
    CHECK(sg_store_open("/nonexistent-dir/x/y.db") == NULL);
}
#else
TEST("store: a PostgreSQL value is told from a file path")
{
    CHECK(sg_store_is_pg("postgresql://u@h/db"));
    CHECK(sg_store_is_pg("postgres://h"));
    CHECK(sg_store_is_pg("host=h dbname=d"));
    CHECK(sg_store_is_pg("dbname=d"));
    CHECK(sg_store_is_pg("service=s"));
    CHECK(!sg_store_is_pg("/var/lib/siogate/siogate.db"));
    CHECK(!sg_store_is_pg("siogate.db"));
    CHECK(!sg_store_is_pg("postgresql.db"));
    CHECK(!sg_store_is_pg(""));
}

TEST("store: a failed connection is logged without its password")
{
    char logf[128];
    snprintf(logf, sizeof logf, "%s/log", dir);
    fflush(stderr);
    int saved = dup(2);
    int fd = open(logf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    /* port 1 of loopback: refused at once */
    sg_store *s = sg_store_open("postgresql://someone:s3cr3tpw@127.0.0.1:1/somedb");
    sg_store *k = sg_store_open("host=127.0.0.1 port=1 password=s3cr3tpw dbname=otherdb");
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    CHECK(s == NULL && k == NULL);
    char text[4096] = "";
    FILE *f = fopen(logf, "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = '\0';
    if (f)
        fclose(f);
    CHECK(strstr(text, "127.0.0.1:1/somedb") != NULL);
    CHECK(strstr(text, "127.0.0.1:1/otherdb") != NULL);
    CHECK(strstr(text, "s3cr3tpw") == NULL);
}

TEST("store: processes that open a new database at once migrate it once")
{
    CHECK_INT(pgtest_schema(path, sizeof path), 0);
    enum { PROCS = 4 };
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        if (pids[p] == 0) {
            sg_store *c = sg_store_open(path);
            int bad = !c || sg_store_version(c) != LATEST_VERSION();
            sg_store_close(c);
            _exit(bad);
        }
    }
    int ok = 1;
    for (int p = 0; p < PROCS; p++) {
        int st;
        waitpid(pids[p], &st, 0);
        ok &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    CHECK(ok);
    sg_store *s = sg_store_open(path);
    CHECK(s != NULL);
    CHECK_INT(sg_store_scalar(s, "SELECT count(*) FROM schema_version"), 1);
    CHECK_INT(sg_store_scalar(s, "SELECT count(*) FROM counters"), 2);
    sg_store_close(s);
}

TEST("store: a writer that waits for the lock past lock_timeout gets SG_STORE_BUSY")
{
    sg_store *s = fresh();
    sg_store *other = sg_store_open(path);
    CHECK(s && other);
    /* 10 s in the store; shortened here */
    CHECK_INT(sg_store_scalar(other, "SET lock_timeout = '200ms'"), -1);
    CHECK_INT(sg_store_begin(s), 0);
    CHECK(sg_store_queue_push(s, SID1, false, "a", 1) > 0); /* holds the lock now */
    sg_session ss;
    mk_session(&ss, SID2);
    CHECK_INT(sg_store_begin(other), 0);
    CHECK_INT(sg_store_session_insert(other, &ss, "{}"), SG_STORE_BUSY);
    sg_store_rollback(other);
    /* inside a batch too: the part fails, the batch's rollback path works */
    CHECK_INT(sg_store_batch_begin(other), 0);
    CHECK_INT(sg_store_begin(other), 0);
    CHECK_INT(sg_store_session_insert(other, &ss, "{}"), SG_STORE_BUSY);
    sg_store_rollback(other);
    CHECK(sg_store_batch_end(other) != 0);
    CHECK_INT(sg_store_commit(s), 0);
    /* the lock is free: the same connection writes again */
    CHECK_INT(sg_store_begin(other), 0);
    CHECK_INT(sg_store_session_insert(other, &ss, "{}"), 0);
    CHECK_INT(sg_store_commit(other), 0);
    CHECK_INT(sg_store_sessions_open(s), 1);
    CHECK_INT(sg_store_queue_pending(other, SID1, 0), 1);
    /* a transaction or a batch part in which nothing ran sends nothing */
    CHECK_INT(sg_store_begin(other), 0);
    CHECK_INT(sg_store_commit(other), 0);
    CHECK_INT(sg_store_batch_begin(other), 0);
    CHECK_INT(sg_store_begin(other), 0);
    CHECK_INT(sg_store_commit(other), 0);
    CHECK_INT(sg_store_begin(other), 0);
    sg_store_rollback(other);
    CHECK_INT(sg_store_batch_end(other), 0);
    sg_store_close(other);
    sg_store_close(s);
}

struct frames_got {
    int n;
    size_t len[2];
    unsigned char first[16];
    bool binary[2];
};

static int frame_copy(void *ud, bool binary, const void *frame, size_t len)
{
    struct frames_got *got = ud;
    if (got->n < 2) {
        got->len[got->n] = len;
        got->binary[got->n] = binary;
        if (got->n == 0)
            memcpy(got->first, frame, len < sizeof got->first ? len : sizeof got->first);
    }
    got->n++;
    return 0;
}

TEST("store: frames are bytes: NULs and high bytes come back as written")
{
    sg_store *s = fresh();
    static const unsigned char bin[] = {0, 1, 0xff, 0x80, 0, '\\', '\'', 'x'};
    CHECK(sg_store_queue_push(s, SID1, true, bin, sizeof bin) > 0);
    CHECK(sg_store_queue_push(s, SID1, false, "", 0) > 0);
    struct frames_got got = {0};
    int64_t last = 0;
    CHECK_INT(sg_store_queue_read(s, SID1, 0, 1 << 20, frame_copy, &got, &last), 2);
    CHECK_INT(got.len[0], sizeof bin);
    CHECK_MEM(got.first, got.len[0], bin, sizeof bin);
    CHECK(got.binary[0] && !got.binary[1]);
    CHECK_INT(got.len[1], 0);
    sg_store_close(s);
}
#endif

TEST("store: a store newer than the program is refused")
{
    sg_store *s = fresh();
    sg_store_scalar(s, SCHEMA_VERSION_SET_999);
    sg_store_close(s);
    CHECK(sg_store_open(path) == NULL);
}

TEST("store: session insert, get, update, close")
{
    sg_store *s = fresh();
    sg_session ss, got;
    mk_session(&ss, SID1);
    CHECK_INT(sg_store_session_insert(s, &ss, "{\"address\":\"127.0.0.1\"}"), 0);
    CHECK_INT(sg_store_session_get(s, SID1, &got), 0);
    CHECK_STR(got.transport, "polling");
    CHECK_INT(got.next_ping_at, 2000);
    CHECK_INT(got.connect_by, 2500);
    CHECK_INT(got.partial.len, 0);
    CHECK_STR(got.poller, "");
    got.sent_upto = 7;
    snprintf(got.poller, sizeof got.poller, "12.3");
    sg_buf_append(&got.partial, "b\0c", 3);
    CHECK_INT(sg_store_session_update(s, &got), 0);
    sg_session_clear(&got);
    CHECK_INT(sg_store_session_get(s, SID1, &got), 0);
    CHECK_INT(got.sent_upto, 7);
    CHECK_STR(got.poller, "12.3");
    CHECK_MEM(got.partial.data, got.partial.len, "b\0c", 3);
    sg_session_clear(&got);
    json_t *hs = sg_store_session_handshake(s, SID1);
    CHECK_STR(json_string_value(json_object_get(hs, "address")), "127.0.0.1");
    json_decref(hs);
    CHECK_INT(sg_store_session_get(s, SID2, &got), SG_STORE_NOTFOUND);
    CHECK(sg_store_queue_push(s, SID1, false, "42", 2) > 0);
    CHECK_INT(sg_store_session_close(s, SID1, "ping timeout", 5000), 0);
    CHECK_INT(sg_store_session_close(s, SID1, "ping timeout", 5000), SG_STORE_NOTFOUND);
    CHECK_INT(sg_store_queue_pending(s, SID1, 0), 1); /* kept for a last flush */
    CHECK_INT(sg_store_session_get(s, SID1, &got), 0);
    CHECK_INT(got.state, SG_SESSION_CLOSED);
    CHECK_STR(got.close_reason, "ping timeout");
    sg_session_clear(&got);
    CHECK_INT(sg_store_sessions_purge(s, 5000), 0);
    CHECK_INT(sg_store_sessions_purge(s, 5001), 1);
    CHECK_INT(sg_store_session_get(s, SID1, &got), SG_STORE_NOTFOUND);
    CHECK_INT(sg_store_queue_pending(s, SID1, 0), 0);
    CHECK(sg_store_queue_push(s, SID2, false, "42", 2) > 0);
    CHECK_INT(sg_store_queue_drop(s, SID2), 0);
    CHECK_INT(sg_store_queue_pending(s, SID2, 0), 0);
    sg_store_close(s);
}

TEST("store: a hot session update writes only the columns no index or trigger reads")
{
    sg_store *s = fresh();
    sg_session ss, got;
    mk_session(&ss, SID1);
    ss.bcast_seen = 0;
    CHECK_INT(sg_store_session_insert(s, &ss, "{}"), 0);
    CHECK_INT(sg_store_session_get(s, SID1, &got), 0);
    sg_session_clear(&got);
    snprintf(ss.transport, sizeof ss.transport, "websocket");
    ss.next_ping_at = 4000;
    ss.ping_sent = 1;
    ss.sent_upto = 9;
    snprintf(ss.poller, sizeof ss.poller, "7.1");
    sg_buf_append(&ss.partial, "p\0q", 3);
    ss.bcast_seen = 5;
    /* these are the caller's to leave as read: a hot write keeps the stored ones */
    ss.state = SG_SESSION_CLOSED;
    ss.expires_at = 1;
    ss.connect_by = 0;
    ss.upgrading = 77;
    CHECK_INT(sg_store_session_update_hot(s, &ss), 0);
    CHECK_INT(sg_store_session_get(s, SID1, &got), 0);
    CHECK_STR(got.transport, "websocket");
    CHECK_INT(got.next_ping_at, 4000);
    CHECK_INT(got.ping_sent, 1);
    CHECK_INT(got.sent_upto, 9);
    CHECK_STR(got.poller, "7.1");
    CHECK_MEM(got.partial.data, got.partial.len, "p\0q", 3);
    CHECK_INT(got.bcast_seen, 5);
    CHECK_INT(got.state, SG_SESSION_OPEN);
    CHECK_INT(got.expires_at, 3000);
    CHECK_INT(got.connect_by, 2500);
    CHECK_INT(got.upgrading, 0);
    sg_session_clear(&got);
    CHECK_INT(sg_store_sessions_open(s), 1);
    /* bcast_seen only moves forward; an empty poller and partial are none */
    ss.bcast_seen = 2;
    ss.poller[0] = '\0';
    sg_buf_reset(&ss.partial);
    CHECK_INT(sg_store_session_update_hot(s, &ss), 0);
    CHECK_INT(sg_store_session_get(s, SID1, &got), 0);
    CHECK_INT(got.bcast_seen, 5);
    CHECK_STR(got.poller, "");
    CHECK_INT(got.partial.len, 0);
    sg_session_clear(&got);
    sg_session_clear(&ss);
    sg_store_close(s);
}

TEST("store: the open-session counter follows inserts, closes and purges")
{
    sg_store *s = fresh();
    sg_session ss;
    CHECK_INT(sg_store_sessions_open(s), 0);
    mk_session(&ss, SID1);
    CHECK_INT(sg_store_session_insert(s, &ss, "{}"), 0);
    mk_session(&ss, SID2);
    CHECK_INT(sg_store_session_insert(s, &ss, "{}"), 0);
    CHECK_INT(sg_store_sessions_open(s), 2);
    /* an update that keeps the state (every poll) changes nothing */
    ss.sent_upto = 3;
    CHECK_INT(sg_store_session_update(s, &ss), 0);
    CHECK_INT(sg_store_sessions_open(s), 2);
    CHECK_INT(sg_store_session_close(s, SID1, "transport close", 10), 0);
    CHECK_INT(sg_store_sessions_open(s), 1);
    CHECK_INT(sg_store_sessions_purge(s, 11), 1); /* a closed one: no change */
    CHECK_INT(sg_store_sessions_open(s), 1);
    sg_store_scalar(s, "DELETE FROM sessions WHERE sid = '" SID2 "'"); /* no row: -1 */
    CHECK_INT(sg_store_sessions_open(s), 0);
    sg_store_close(s);
}

TEST("store: handshake token buckets per address")
{
    sg_store *s = fresh();
    /* rate 3: a full bucket gives 3 at once, then one per 1000/3 ms */
    for (int i = 0; i < 3; i++)
        CHECK_INT(sg_store_rate_take(s, "10.0.0.1", 3, 1000), 1);
    CHECK_INT(sg_store_rate_take(s, "10.0.0.1", 3, 1000), 0);
    CHECK_INT(sg_store_rate_take(s, "10.0.0.1", 3, 1300), 0);   /* 0.9 token */
    CHECK_INT(sg_store_rate_take(s, "10.0.0.1", 3, 1334), 1);   /* 1.002 */
    CHECK_INT(sg_store_rate_take(s, "10.0.0.1", 3, 1334), 0);
    CHECK_INT(sg_store_rate_take(s, "10.0.0.2", 3, 1334), 1);   /* another address */
    CHECK_INT(sg_store_rate_take(s, "10.0.0.1", 3, 500), 0);    /* clock went back */
    /* refilled, never beyond the rate */
    for (int i = 0; i < 3; i++)
        CHECK_INT(sg_store_rate_take(s, "10.0.0.1", 3, 100000), 1);
    CHECK_INT(sg_store_rate_take(s, "10.0.0.1", 3, 100000), 0);
    /* purge: rows last touched at or before the time given */
    CHECK_INT(sg_store_rate_purge(s, 99999), 1);
    CHECK_INT(sg_store_scalar(s, "SELECT count(*) FROM handshake_rate"), 1);
    sg_store_close(s);
}

static int nexp;
static void count_expired(void *ud, const char *sid) { (void)ud; (void)sid; nexp++; }

TEST("store: expired sessions by heartbeat and by connect deadline")
{
    sg_store *s = fresh();
    sg_session a, b;
    mk_session(&a, SID1);
    mk_session(&b, SID2);
    b.connect_by = 0;
    b.expires_at = 9000;
    sg_store_session_insert(s, &a, "{}");
    sg_store_session_insert(s, &b, "{}");
    nexp = 0;
    CHECK_INT(sg_store_sessions_expired(s, 2000, 10, count_expired, NULL), 0);
    nexp = 0;
    CHECK_INT(sg_store_sessions_expired(s, 2600, 10, count_expired, NULL), 1); /* connect_by */
    CHECK_INT(nexp, 1);
    CHECK_INT(sg_store_sessions_expired(s, 9001, 10, count_expired, NULL), 2);
    CHECK_INT(sg_store_sessions_expired(s, 9001, 1, count_expired, NULL), 1);
    sg_store_session_close(s, SID1, "x", 1);
    CHECK_INT(sg_store_sessions_expired(s, 9001, 10, count_expired, NULL), 1);
    sg_store_close(s);
}

struct frames { sg_buf all; int n; };
static int collect_frame(void *ud, bool binary, const void *f, size_t len)
{
    struct frames *fr = ud;
    sg_buf_putc(&fr->all, binary ? 'B' : 'T');
    sg_buf_append(&fr->all, f, len);
    sg_buf_putc(&fr->all, '|');
    fr->n++;
    return 0;
}

TEST("store: queue push, read in order with a byte limit, trim")
{
    sg_store *s = fresh();
    int64_t a = sg_store_queue_push(s, SID1, false, "42[\"a\"]", 7);
    int64_t b = sg_store_queue_push(s, SID1, true, "\x01\x00\x02", 3);
    int64_t c = sg_store_queue_push(s, SID2, false, "2", 1);
    int64_t d = sg_store_queue_push(s, SID1, false, "", 0);
    CHECK(a > 0 && b > a && c > b && d > c);
    struct frames fr = {SG_BUF_INIT, 0};
    int64_t last = 0;
    CHECK_INT(sg_store_queue_read(s, SID1, 0, 1 << 20, collect_frame, &fr, &last), 3);
    CHECK_MEM(fr.all.data, fr.all.len, "T42[\"a\"]|B\x01\x00\x02|T|", 16);
    CHECK_INT(last, d);
    /* byte limit: the first frame always passes */
    sg_buf_reset(&fr.all);
    CHECK_INT(sg_store_queue_read(s, SID1, 0, 1, collect_frame, &fr, &last), 1);
    CHECK_INT(last, a);
    CHECK_INT(sg_store_queue_read(s, SID1, a, 3, collect_frame, &fr, &last), 2);
    CHECK_INT(sg_store_queue_pending(s, SID1, d), 0);
    CHECK_INT(sg_store_queue_pending(s, SID1, b), 1);
    CHECK_INT(sg_store_queue_trim(s, SID1, b), 0);
    last = 0;
    sg_buf_reset(&fr.all);
    CHECK_INT(sg_store_queue_read(s, SID1, 0, 1 << 20, collect_frame, &fr, &last), 1);
    CHECK_INT(last, d);
    CHECK_INT(sg_store_queue_pending(s, SID2, 0), 1);
    sg_buf_free(&fr.all);
    sg_store_close(s);
}

static void add_sid(void *ud, const char *sid)
{
    sg_buf *b = ud;
    sg_buf_puts(b, sid);
    sg_buf_putc(b, '|');
}

/* sid's stream after (after, *seen), as "T<frame>|" strings */
static int stream(sg_store *s, const char *sid, int64_t after, int64_t *seen, size_t max,
                  struct frames *fr, int64_t *last)
{
    sg_buf_reset(&fr->all);
    fr->n = 0;
    return sg_store_stream_read(s, sid, after, seen, max, collect_frame, fr, last, NULL);
}

TEST("store: the broadcast log: targets, order with own frames, frontier, settle, gc")
{
    sg_store *s = fresh();
    sg_session a, b;
    mk_session(&a, SID1);
    mk_session(&b, SID2);
    CHECK_INT(sg_store_session_insert(s, &a, "{}"), 0);
    CHECK_INT(sg_store_session_insert(s, &b, "{}"), 0);
    CHECK_INT(sg_store_socket_insert(s, "sockA", SID1, "/", 1), 0);
    CHECK_INT(sg_store_socket_insert(s, "sockB", SID2, "/", 2), 0);
    CHECK_INT(sg_store_room_join(s, "/", "r", "sockA"), 0);
    CHECK_INT(sg_store_room_join(s, "/", "r", "sockB"), 0);
    CHECK_INT(sg_store_room_join(s, "/", "mute", "sockB"), 0);
    CHECK_INT(sg_store_targets_count(s, "/", "[\"r\"]", NULL, NULL), 2);
    CHECK_INT(sg_store_targets_count(s, "/", "[\"r\",\"mute\"]", NULL, NULL), 2);
    CHECK_INT(sg_store_targets_count(s, "/", NULL, "[\"mute\"]", NULL), 1);
    CHECK_INT(sg_store_targets_count(s, "/", NULL, NULL, "sockA"), 1);
    CHECK_INT(sg_store_targets_count(s, "/other", NULL, NULL, NULL), 0);

    int64_t o1 = sg_store_queue_push(s, SID1, false, "own1", 4);
    int64_t l1 = sg_store_bcast_push(s, "/", "[\"r\"]", NULL, NULL, false, "all", 3);
    int64_t l2 = sg_store_bcast_push(s, "/", "[\"r\"]", "[\"mute\"]", NULL, false, "notB", 4);
    int64_t l3 = sg_store_bcast_push(s, "/", NULL, NULL, "sockA", true, "\x01", 1);
    int64_t l4 = sg_store_bcast_push(s, "/x", NULL, NULL, NULL, false, "nsx", 3);
    int64_t o2 = sg_store_queue_push(s, SID1, false, "own2", 4);
    CHECK(o1 > 0 && l1 > o1 && l2 > l1 && l3 > l2 && l4 > l3 && o2 > l4);
    CHECK_INT(sg_store_bcast_max(s), l4);
    /* each session: its own frames and the rows it matches, in seq order */
    struct frames fr = {SG_BUF_INIT, 0};
    int64_t seen = 0, last = 0;
    CHECK_INT(stream(s, SID1, 0, &seen, 1 << 20, &fr, &last), 4);
    CHECK_MEM(fr.all.data, fr.all.len, "Town1|Tall|TnotB|Town2|", 23);
    CHECK_INT(seen, l4);
    CHECK_INT(last, o2);
    seen = 0;
    CHECK_INT(stream(s, SID2, 0, &seen, 1 << 20, &fr, &last), 2);
    CHECK_MEM(fr.all.data, fr.all.len, "Tall|B\x01|", 8);
    CHECK_INT(sg_store_stream_pending(s, SID2, 0, l4), 0);
    CHECK_INT(sg_store_stream_pending(s, SID2, 0, l2), 1);
    /* cut by the byte limit: the frontier stops at the last frame passed */
    seen = 0;
    CHECK_INT(stream(s, SID1, 0, &seen, 4, &fr, &last), 1);
    CHECK_INT(seen, o1);
    CHECK_INT(stream(s, SID1, last, &seen, 7, &fr, &last), 2);
    CHECK_MEM(fr.all.data, fr.all.len, "Tall|TnotB|", 11);
    CHECK_INT(seen, l2);
    /* the sessions the rows name (for the wake-ups) */
    sg_buf ids = SG_BUF_INIT;
    CHECK_INT(sg_store_bcast_sessions(s, o1, l1, NULL, 0, add_sid, &ids), 2);
    sg_buf_reset(&ids);
    CHECK_INT(sg_store_bcast_sessions(s, l1, l2, NULL, 0, add_sid, &ids), 1);
    CHECK_MEM(ids.data, ids.len, SID1 "|", 21);
    sg_buf_reset(&ids);
    CHECK_INT(sg_store_bcast_sessions(s, l2, l3, NULL, 0, add_sid, &ids), 1); /* skip */
    CHECK_MEM(ids.data, ids.len, SID2 "|", 21);
    sg_buf_reset(&ids);
    /* each session once, whether rooms or the namespace named it */
    CHECK_INT(sg_store_bcast_sessions(s, o1, l3, NULL, 0, add_sid, &ids), 2);
    sg_buf_reset(&ids);
    CHECK_INT(sg_store_bcast_sessions(s, l3, l4, NULL, 0, add_sid, &ids), 0);
    /* ... asked about some sessions only (ids that are no session's, or
     * not ids at all, are no one's) */
    const char *both[] = {SID2, "no-such-session-id-0", SID1, "'\"]"};
    CHECK_INT(sg_store_bcast_sessions(s, o1, l1, both, 4, add_sid, &ids), 2);
    sg_buf_reset(&ids);
    CHECK_INT(sg_store_bcast_sessions(s, o1, l1, both, 1, add_sid, &ids), 1);
    CHECK_MEM(ids.data, ids.len, SID2 "|", 21);
    sg_buf_reset(&ids);
    CHECK_INT(sg_store_bcast_sessions(s, l1, l2, both, 1, add_sid, &ids), 0); /* notB */
    CHECK_INT(sg_store_bcast_sessions(s, l2, l3, both, 1, add_sid, &ids), 1);
    sg_buf_reset(&ids);
    CHECK_INT(sg_store_bcast_sessions(s, o1, l4, both, 0, add_sid, &ids), 0);
    CHECK_INT(sg_store_bcast_sessions(s, o1, l4, both + 1, 1, add_sid, &ids), 0);

    /* settle: B leaves "r" after the broadcasts; what it matched before is
     * its own now, in order, after everything else; its frontier moved */
    CHECK_INT(sg_store_queue_push(s, SID2, false, "ownB", 4) > l4, 1);
    int64_t bseen = 0;
    bool moved = false;
    CHECK_INT(sg_store_bcast_settle(s, SID2, 0, &bseen, &moved), 0);
    CHECK(moved);
    CHECK_INT(bseen, l4);
    CHECK_INT(sg_store_room_leave(s, "/", "r", "sockB"), 0);
    CHECK_INT(sg_store_socket_delete(s, "sockB"), 0);
    sg_session got;
    CHECK_INT(sg_store_session_get(s, SID2, &got), 0);
    CHECK_INT(got.bcast_seen, l4);
    sg_session_clear(&got);
    seen = 0;
    CHECK_INT(stream(s, SID2, 0, &seen, 1 << 20, &fr, &last), 3);
    CHECK_MEM(fr.all.data, fr.all.len, "Tall|B\x01|TownB|", 14);
    CHECK(last > o2);
    /* settling again writes nothing */
    CHECK_INT(sg_store_bcast_settle(s, SID2, 0, &bseen, &moved), 0);
    CHECK(!moved);
    /* the stored frontier never goes back */
    mk_session(&b, SID2);
    b.bcast_seen = 1;
    CHECK_INT(sg_store_session_update(s, &b), 0);
    CHECK_INT(sg_store_session_get(s, SID2, &got), 0);
    CHECK_INT(got.bcast_seen, l4);
    sg_session_clear(&got);

    /* gc: nothing while A has not taken them; then up to A's frontier */
    CHECK_INT(sg_store_bcast_gc(s, INT64_MAX), 0);
    mk_session(&a, SID1);
    a.sent_upto = l2;
    CHECK_INT(sg_store_session_update(s, &a), 0);
    CHECK_INT(sg_store_bcast_gc(s, l1), 1); /* a recovery window's bound */
    CHECK_INT(sg_store_bcast_gc(s, INT64_MAX), 1);
    CHECK_INT(sg_store_scalar(s, "SELECT count(*) FROM queue WHERE sid = ''"), 2);
    /* a new session starts after the log */
    sg_session c;
    mk_session(&c, "CCCCCCCCCCCCCCCCCCCC");
    CHECK_INT(sg_store_session_insert(s, &c, "{}"), 0);
    CHECK_INT(sg_store_session_get(s, c.sid, &got), 0);
    CHECK_INT(got.bcast_seen, l4);
    sg_session_clear(&got);
    a.bcast_seen = l4;
    CHECK_INT(sg_store_session_update(s, &a), 0);
    CHECK_INT(sg_store_bcast_gc(s, INT64_MAX), 2);
    sg_buf_free(&ids);
    sg_buf_free(&fr.all);
    sg_store_close(s);
}

TEST("store: max_queued_packets: count bounded by its cap, volatile frames shed as whole packets")
{
    sg_store *s = fresh();
    /* SID1: a volatile packet with an attachment, its text frame handed
     * out (at or below `after`), then an own packet, a volatile one with
     * an attachment, a broadcast log row, one more volatile */
    int64_t v0 = sg_store_queue_push_as(s, SID1, false, true, "451-[\"v0\"]", 10);
    int64_t v0b = sg_store_queue_push_as(s, SID1, true, true, "\x01", 1);
    int64_t n1 = sg_store_queue_push(s, SID1, false, "42[\"n1\"]", 8);
    int64_t v1 = sg_store_queue_push_as(s, SID1, false, true, "451-[\"v1\"]", 10);
    int64_t v1b = sg_store_queue_push_as(s, SID1, true, true, "\x02", 1);
    int64_t l = sg_store_bcast_push(s, "/", NULL, NULL, NULL, false, "42[\"log\"]", 9);
    int64_t o2 = sg_store_queue_push(s, SID2, false, "42[\"other\"]", 11);
    int64_t v2 = sg_store_queue_push_as(s, SID1, false, true, "42[\"v2\"]", 8);
    CHECK(v0 > 0 && v0b > v0 && n1 > v0b && v1 > n1 && v1b > v1 && l > v1b && o2 > l && v2 > o2);
    /* its own rows after `after` only: the log row and SID2's are not its */
    CHECK_INT(sg_store_queue_count(s, SID1, 0, -1), 6);
    CHECK_INT(sg_store_queue_count(s, SID1, v0, -1), 5);
    CHECK_INT(sg_store_queue_count(s, SID1, v0, 3), 3);
    CHECK_INT(sg_store_queue_count(s, SID1, v2, 10), 0);
    CHECK_INT(sg_store_queue_count(s, SID2, 0, 10), 1);
    /* shed after v0: v0's attachment stays (its text frame went out), the
     * whole of v1 and v2 go, n1 stays */
    CHECK_INT(sg_store_queue_shed(s, SID1, v0), 3);
    struct frames fr = {SG_BUF_INIT, 0};
    int64_t last = 0;
    CHECK_INT(sg_store_queue_read(s, SID1, v0, 1 << 20, collect_frame, &fr, &last), 2);
    CHECK_MEM(fr.all.data, fr.all.len, "B\x01|T42[\"n1\"]|", 13);
    CHECK_INT(sg_store_queue_shed(s, SID1, v0), 0);
    /* nothing after `after` but attachments: nothing shed */
    CHECK_INT(sg_store_queue_trim(s, SID1, v0b), 0);
    CHECK_INT(sg_store_queue_push_as(s, SID1, true, true, "\x03", 1) > 0, 1);
    CHECK_INT(sg_store_queue_shed(s, SID1, n1), 0);
    /* the log row and the other session's row are untouched */
    CHECK_INT(sg_store_scalar(s, "SELECT count(*) FROM queue WHERE sid <> 'AAAAAAAAAAAAAAAAAAAA'"), 2);
    sg_buf_free(&fr.all);
    sg_store_close(s);
}

TEST("store: a settle carries the volatile mark of the frames it re-queues")
{
    sg_store *s = fresh();
    sg_session a;
    mk_session(&a, SID1);
    CHECK_INT(sg_store_session_insert(s, &a, "{}"), 0);
    CHECK_INT(sg_store_socket_insert(s, "sockA", SID1, "/", 1), 0);
    CHECK_INT(sg_store_queue_push_as(s, SID1, false, true, "vol", 3) > 0, 1);
    CHECK_INT(sg_store_bcast_push(s, "/", NULL, NULL, NULL, false, "log", 3) > 0, 1);
    CHECK_INT(sg_store_queue_push(s, SID1, false, "own", 3) > 0, 1);
    int64_t bseen = 0;
    bool moved = false;
    CHECK_INT(sg_store_bcast_settle(s, SID1, 0, &bseen, &moved), 0);
    CHECK(moved);
    CHECK_INT(sg_store_queue_count(s, SID1, 0, -1), 3);
    CHECK_INT(sg_store_queue_shed(s, SID1, 0), 1);
    struct frames fr = {SG_BUF_INIT, 0};
    int64_t last = 0;
    CHECK_INT(sg_store_queue_read(s, SID1, 0, 1 << 20, collect_frame, &fr, &last), 2);
    CHECK_MEM(fr.all.data, fr.all.len, "Tlog|Town|", 10);
    sg_buf_free(&fr.all);
    sg_store_close(s);
}

static int nsock;
static void count_sock(void *ud, const char *id, const char *nsp)
{
    (void)ud;
    (void)id;
    if (nsp[0] == '/')
        nsock++;
}

TEST("store: sockets, their own room, rooms, delete")
{
    sg_store *s = fresh();
    CHECK_INT(sg_store_socket_insert(s, "sockA", SID1, "/", 1), 0);
    CHECK_INT(sg_store_socket_insert(s, "sockB", SID1, "/custom", 2), 0);
    CHECK(sg_store_socket_insert(s, "sockC", SID1, "/", 3) != 0); /* one per namespace */
    char id[SG_ID_LEN + 1];
    CHECK_INT(sg_store_socket_find(s, SID1, "/custom", id), 0);
    CHECK_STR(id, "sockB");
    CHECK_INT(sg_store_socket_find(s, SID2, "/", id), SG_STORE_NOTFOUND);
    CHECK_INT(sg_store_scalar(s, "SELECT count(*) FROM rooms WHERE room = socket_id"), 2);
    CHECK_INT(sg_store_room_join(s, "/", "lobby", "sockA"), 0);
    CHECK_INT(sg_store_room_join(s, "/", "lobby", "sockA"), 0); /* idempotent */
    CHECK_INT(sg_store_scalar(s, "SELECT count(*) FROM rooms WHERE room = 'lobby'"), 1);
    CHECK_INT(sg_store_room_leave(s, "/", "lobby", "sockA"), 0);
    CHECK_INT(sg_store_scalar(s, "SELECT count(*) FROM rooms WHERE room = 'lobby'"), 0);
    sg_store_room_join(s, "/", "lobby", "sockA");
    nsock = 0;
    CHECK_INT(sg_store_sockets_of(s, SID1, count_sock, NULL), 2);
    CHECK_INT(nsock, 2);
    CHECK_INT(sg_store_scalar(s, "SELECT count(*) FROM sockets WHERE sid = '" SID1 "'"), 2);
    CHECK_INT(sg_store_socket_delete(s, "sockA"), 0);
    CHECK_INT(sg_store_scalar(s, "SELECT count(*) FROM sockets WHERE sid = '" SID1 "'"), 1);
    CHECK_INT(sg_store_scalar(s, "SELECT count(*) FROM rooms WHERE socket_id = 'sockA'"), 0);
    sg_store_close(s);
}

/* frames of a session, "text|text|..." in seq order (binary shown as "#") */
static int cat_frame(void *ud, bool binary, const void *frame, size_t len)
{
    sg_buf *b = ud;
    if (b->len)
        sg_buf_putc(b, '|');
    if (binary)
        sg_buf_putc(b, '#');
    else
        sg_buf_append(b, frame, len);
    return 0;
}

static void stream_of(sg_store *s, const char *sid, sg_buf *out)
{
    int64_t last = 0;
    sg_buf_reset(out);
    sg_store_queue_read(s, sid, 0, SIZE_MAX, cat_frame, out, &last);
    sg_buf_putc(out, '\0');
}

static int ntargets;
static char targets_seen[256];
static void count_target(void *ud, const char *id, const char *sid, bool ready)
{
    (void)ud, (void)ready;
    ntargets++;
    strncat(targets_seen, sid[0] == '~' ? "~" : "", sizeof targets_seen - strlen(targets_seen) - 1);
    strncat(targets_seen, id, sizeof targets_seen - strlen(targets_seen) - 1);
    strncat(targets_seen, " ", sizeof targets_seen - strlen(targets_seen) - 1);
}

TEST("store: recovery: offsets, ghosts keep rooms, data and events, restore replays after the offset")
{
    sg_store *s = fresh();
    sg_session a, b;
    mk_session(&a, SID1);
    mk_session(&b, SID2);
    CHECK_INT(sg_store_session_insert(s, &a, "{}"), 0);
    CHECK_INT(sg_store_session_insert(s, &b, "{}"), 0);
    /* offsets: increasing, at least now * 1000 */
    int64_t e1 = sg_store_eid_next(s, 5000);
    int64_t e2 = sg_store_eid_next(s, 5000);
    int64_t e3 = sg_store_eid_next(s, 4000); /* a clock stepped back: still increasing */
    CHECK_INT(e1, 5000000);
    CHECK_INT(e2, 5000001);
    CHECK_INT(e3, 5000002);
    /* a socket with a pid, in a room, with data and events of two namespaces */
    CHECK_INT(sg_store_socket_insert(s, "sockA", SID1, "/", 1), 0);
    CHECK_INT(sg_store_socket_set_pid(s, "sockA", "pidA"), 0);
    CHECK_INT(sg_store_socket_insert(s, "sockB", SID1, "/x", 1), 0);
    CHECK_INT(sg_store_room_join(s, "/", "lobby", "sockA"), 0);
    CHECK_INT(sg_store_socket_data_set(s, "sockA", "{\"k\":1}"), 0);
    CHECK(sg_store_queue_push(s, SID1, false, "40", 2) > 0); /* no offset: not kept */
    CHECK(sg_store_queue_push_eid(s, SID1, false, "e1", 2, "/", e1) > 0);
    CHECK(sg_store_queue_push_eid(s, SID1, true, "b", 1, "/", e1) > 0);
    CHECK(sg_store_queue_push_eid(s, SID1, false, "x2", 2, "/x", e2) > 0);
    CHECK(sg_store_queue_push_eid(s, SID1, false, "e3", 2, "/", e3) > 0);
    /* the session closes: sockA becomes the ghost's, with its events of "/" */
    CHECK_INT(sg_store_session_close(s, SID1, "transport close", 6000), 0);
    CHECK_INT(sg_store_socket_ghost(s, "sockA", SID1, "/", 6000, 9000), 0);
    CHECK_INT(sg_store_socket_delete(s, "sockB"), 0);
    CHECK_INT(sg_store_scalar(s, "SELECT state FROM sessions WHERE sid = '~" SID1 "'"), 2);
    CHECK_INT(sg_store_scalar(s, "SELECT expires_at FROM sessions WHERE sid = '~" SID1 "'"), 9000);
    CHECK_INT(sg_store_sessions_open(s), 1); /* a ghost is not an open session */
    sg_buf got = SG_BUF_INIT;
    stream_of(s, SID1, &got);
    CHECK_STR(got.data, "40|x2"); /* what stays with the closed session */
    stream_of(s, "~" SID1, &got);
    CHECK_STR(got.data, "e1|#|e3");
    /* a ghost is listed for a recoverable emit, never for the others */
    ntargets = 0;
    targets_seen[0] = '\0';
    CHECK_INT(sg_store_targets(s, "/", "[\"lobby\"]", NULL, NULL, count_target, NULL), 0);
    CHECK_INT(sg_store_targets_all(s, "/", "[\"lobby\"]", NULL, NULL, count_target, NULL), 1);
    CHECK_STR(targets_seen, "~sockA ");
    /* found by pid */
    char id[SG_ID_LEN + 1], owner[SG_ID_LEN + 2], nsp[64];
    int state;
    int64_t until;
    CHECK_INT(sg_store_socket_by_pid(s, "nope", id, owner, sizeof owner, nsp, sizeof nsp, &state,
                                     &until), SG_STORE_NOTFOUND);
    CHECK_INT(sg_store_socket_by_pid(s, "pidA", id, owner, sizeof owner, nsp, sizeof nsp, &state,
                                     &until), 0);
    CHECK_STR(id, "sockA");
    CHECK_STR(owner, "~" SID1);
    CHECK_STR(nsp, "/");
    CHECK_INT(state, SG_SESSION_GHOST);
    CHECK_INT(until, 9000);
    /* restored into SID2 after offset e1: e3 only; the ghost goes */
    CHECK_INT(sg_store_socket_restore(s, "sockA", owner, SID2, "/", e1), 1);
    stream_of(s, SID2, &got);
    CHECK_STR(got.data, "e3");
    CHECK_INT(sg_store_scalar(s, "SELECT count(*) FROM sessions WHERE sid = '~" SID1 "'"), 0);
    char sid[SG_ID_LEN + 1];
    json_t *data = NULL;
    CHECK_INT(sg_store_socket_get(s, "sockA", sid, NULL, 0, &data), 0);
    CHECK_STR(sid, SID2);
    CHECK_INT(json_integer_value(json_object_get(data, "k")), 1);
    json_decref(data);
    json_t *rooms = sg_store_socket_rooms(s, "sockA");
    CHECK_INT(json_array_size(rooms), 2);
    CHECK_STR(json_string_value(json_array_get(rooms, 1)), "lobby");
    json_decref(rooms);
    /* no offset (-1): every kept event, binary frames with their text */
    CHECK_INT(sg_store_session_close(s, SID2, "ping timeout", 7000), 0);
    CHECK_INT(sg_store_socket_ghost(s, "sockA", SID2, "/", 7000, 10000), 0);
    /* kept for recovery, it is not a connected socket */
    CHECK_INT(sg_store_socket_get(s, "sockA", sid, NULL, 0, NULL), SG_STORE_NOTFOUND);
    CHECK(sg_store_queue_push_eid(s, "~" SID2, false, "e4", 2, "/", sg_store_eid_next(s, 7000)) > 0);
    mk_session(&a, "CCCCCCCCCCCCCCCCCCCC");
    CHECK_INT(sg_store_session_insert(s, &a, "{}"), 0);
    CHECK_INT(sg_store_socket_restore(s, "sockA", "~" SID2, a.sid, "/", -1), 2);
    stream_of(s, a.sid, &got);
    CHECK_STR(got.data, "e3|e4");
    sg_buf_free(&got);
    sg_store_close(s);
}

TEST("store: recovery: kept frames trimmed by age; ghosts purged after their window")
{
    sg_store *s = fresh();
    sg_session a;
    mk_session(&a, SID1);
    CHECK_INT(sg_store_session_insert(s, &a, "{}"), 0);
    int64_t old = sg_store_eid_next(s, 1000), recent = sg_store_eid_next(s, 50000);
    int64_t q1 = sg_store_queue_push(s, SID1, false, "3", 1);
    sg_store_queue_push_eid(s, SID1, false, "old", 3, "/", old);
    sg_store_queue_push_eid(s, SID1, false, "new", 3, "/", recent);
    int64_t q4 = sg_store_queue_push_eid(s, SID1, false, "later", 5, "/", recent + 1);
    CHECK(q1 > 0 && q4 > 0);
    /* written up to the third frame; events from 40 s on are kept */
    CHECK_INT(sg_store_queue_trim_kept(s, SID1, q4 - 1, 40000 * 1000), 0);
    sg_buf got = SG_BUF_INIT;
    stream_of(s, SID1, &got);
    CHECK_STR(got.data, "new|later");
    /* a ghost with a socket and a room, purged once its window ended */
    CHECK_INT(sg_store_socket_insert(s, "sockA", SID1, "/", 1), 0);
    CHECK_INT(sg_store_room_join(s, "/", "lobby", "sockA"), 0);
    CHECK_INT(sg_store_session_close(s, SID1, "transport error", 60000), 0);
    CHECK_INT(sg_store_socket_ghost(s, "sockA", SID1, "/", 60000, 61000), 0);
    CHECK_INT(sg_store_ghosts_purge(s, 61000), 0); /* not before its end */
    CHECK_INT(sg_store_ghosts_purge(s, 61001), 1);
    CHECK_INT(sg_store_scalar(s, "SELECT count(*) FROM sockets"), 0);
    CHECK_INT(sg_store_scalar(s, "SELECT count(*) FROM rooms"), 0);
    CHECK_INT(sg_store_scalar(s, "SELECT count(*) FROM queue WHERE sid = '~" SID1 "'"), 0);
    CHECK_INT(sg_store_scalar(s, "SELECT count(*) FROM sessions WHERE state = 2"), 0);
    sg_buf_free(&got);
    sg_store_close(s);
}

TEST("store: rollback discards a transaction")
{
    sg_store *s = fresh();
    CHECK_INT(sg_store_begin(s), 0);
    sg_store_queue_push(s, SID1, false, "x", 1);
    sg_store_rollback(s);
    CHECK_INT(sg_store_queue_pending(s, SID1, 0), 0);
    CHECK_INT(sg_store_begin(s), 0);
    sg_store_queue_push(s, SID1, false, "x", 1);
    CHECK_INT(sg_store_commit(s), 0);
    CHECK_INT(sg_store_queue_pending(s, SID1, 0), 1);
    sg_store_close(s);
}

TEST("store: a batch commits its parts once; a rolled-back part is undone alone")
{
    sg_store *s = fresh();
    sg_store *other = sg_store_open(path);
    CHECK_INT(sg_store_batch_begin(s), 0);
    CHECK(sg_store_batch_begin(s) != 0); /* no nesting */
    CHECK_INT(sg_store_begin(s), 0);
    sg_store_queue_push(s, SID1, false, "a", 1);
    CHECK_INT(sg_store_commit(s), 0);
    CHECK_INT(sg_store_begin(s), 0);
    sg_store_queue_push(s, SID1, false, "b", 1);
    sg_store_rollback(s); /* only this part */
    CHECK_INT(sg_store_begin(s), 0);
    sg_store_queue_push(s, SID2, false, "c", 1);
    CHECK_INT(sg_store_commit(s), 0);
    /* nothing visible to another connection before the end */
    CHECK_INT(sg_store_queue_pending(other, SID1, 0), 0);
    CHECK_INT(sg_store_batch_end(s), 0);
    CHECK(sg_store_batch_end(s) != 0);
    CHECK_INT(sg_store_scalar(other, "SELECT count(*) FROM queue WHERE sid = 'AAAAAAAAAAAAAAAAAAAA'"), 1);
    CHECK_INT(sg_store_queue_pending(other, SID2, 0), 1);
    /* after the batch, begin/commit are transactions again */
    CHECK_INT(sg_store_begin(s), 0);
    sg_store_queue_push(s, SID1, false, "d", 1);
    CHECK_INT(sg_store_commit(s), 0);
    CHECK_INT(sg_store_scalar(other, "SELECT count(*) FROM queue WHERE sid = 'AAAAAAAAAAAAAAAAAAAA'"), 2);
    sg_store_close(other);
    sg_store_close(s);
}

/* The three reads the SQLite store keeps inside a batch (store_sqlite.c,
 * the read memo) of SID1, in one line: "TRANSPORT PING_SENT PENDING
 * SOCKET" (SOCKET "-" when none; "error" when a read failed). */
static const char *reads(sg_store *s, char *out, size_t cap)
{
    sg_session got;
    char id[SG_ID_LEN + 1] = "-";
    int pending = sg_store_stream_pending(s, SID1, 0, 0);
    int found = sg_store_socket_find(s, SID1, "/", id);
    if (pending < 0 || (found != 0 && found != SG_STORE_NOTFOUND) ||
        sg_store_session_get(s, SID1, &got) != 0)
        return "error";
    snprintf(out, cap, "%s %d %d %s", got.transport, got.ping_sent, pending, id);
    sg_session_clear(&got);
    return out;
}

/* What another connection committed between batches, what this one wrote
 * in the batch and what a rollback undid must all be read. */
TEST("store: in a batch, reads see others' commits, own writes and rollbacks")
{
    sg_store *s = fresh();
    sg_store *other = sg_store_open(path);
    CHECK(s && other);
    char line[128];
    sg_session ss;
    mk_session(&ss, SID1);
    CHECK(sg_store_begin(s) == 0 && sg_store_session_insert(s, &ss, "{}") == 0 &&
          sg_store_socket_insert(s, "sockA", SID1, "/", 1) == 0 && sg_store_commit(s) == 0);
    for (int round = 0; round < 2; round++) { /* the second reads kept answers */
        CHECK(sg_store_batch_begin(s) == 0 && sg_store_begin(s) == 0);
        CHECK_STR(reads(s, line, sizeof line), "polling 0 0 sockA");
        CHECK(sg_store_commit(s) == 0 && sg_store_batch_end(s) == 0);
    }
    /* another connection changes all three between two batches */
    snprintf(ss.transport, sizeof ss.transport, "websocket");
    CHECK(sg_store_begin(other) == 0 && sg_store_session_update(other, &ss) == 0 &&
          sg_store_queue_push(other, SID1, false, "x", 1) > 0 &&
          sg_store_socket_delete(other, "sockA") == 0 && sg_store_commit(other) == 0);
    CHECK(sg_store_batch_begin(s) == 0 && sg_store_begin(s) == 0);
    CHECK_STR(reads(s, line, sizeof line), "websocket 0 1 -");
    /* its own writes, read back at once */
    ss.ping_sent = 1;
    CHECK_INT(sg_store_session_update(s, &ss), 0);
    CHECK_INT(sg_store_queue_trim(s, SID1, INT64_MAX), 0);
    CHECK_STR(reads(s, line, sizeof line), "websocket 1 0 -");
    CHECK_INT(sg_store_commit(s), 0);
    /* what was read after a write that is rolled back is gone with it */
    CHECK_INT(sg_store_begin(s), 0);
    CHECK_INT(sg_store_socket_insert(s, "sockB", SID1, "/", 2), 0);
    CHECK_STR(reads(s, line, sizeof line), "websocket 1 0 sockB");
    sg_store_rollback(s);
    CHECK_INT(sg_store_begin(s), 0);
    CHECK_STR(reads(s, line, sizeof line), "websocket 1 0 -");
    CHECK(sg_store_commit(s) == 0 && sg_store_batch_end(s) == 0);
    /* the next batch reads its own committed writes */
    CHECK(sg_store_batch_begin(s) == 0 && sg_store_begin(s) == 0);
    CHECK_STR(reads(s, line, sizeof line), "websocket 1 0 -");
    CHECK(sg_store_commit(s) == 0 && sg_store_batch_end(s) == 0);
    sg_store_close(other);
    sg_store_close(s);
}

#ifdef SG_TEST_PG
TEST("store: owed writes keep their part's fate; one that fails fails the batch, not a store call")
{
    sg_store *s = fresh();
    sg_store *other = sg_store_open(path);
    CHECK(s && other);
    sg_session ss;
    mk_session(&ss, SID1);
    CHECK(sg_store_begin(s) == 0 && sg_store_session_insert(s, &ss, "{}") == 0 &&
          sg_store_queue_push(s, SID1, false, "a", 1) > 0 &&
          sg_store_queue_push(s, SID1, false, "b", 1) > 0 && sg_store_commit(s) == 0);
    int64_t first = sg_store_scalar(other, "SELECT min(seq) FROM queue");
    /* part 1 updates and trims (both owed), part 2 does the same and is
     * rolled back: part 1's writes are in, part 2's are not */
    CHECK_INT(sg_store_batch_begin(s), 0);
    CHECK_INT(sg_store_begin(s), 0);
    ss.ping_sent = 1;
    CHECK_INT(sg_store_session_update(s, &ss), 0);
    CHECK_INT(sg_store_queue_trim(s, SID1, first), 0);
    CHECK_INT(sg_store_commit(s), 0);
    CHECK_INT(sg_store_begin(s), 0);
    ss.expires_at = 9999;
    CHECK_INT(sg_store_session_update(s, &ss), 0);
    CHECK_INT(sg_store_queue_trim(s, SID1, first + 1), 0);
    sg_store_rollback(s);
    /* read in the batch: what part 1 owed went out before it */
    CHECK_INT(sg_store_queue_count(s, SID1, 0, -1), 1);
    CHECK_INT(sg_store_batch_end(s), 0);
    CHECK_INT(sg_store_scalar(other, "SELECT ping_sent * 10000 + expires_at FROM sessions"), 13000);
    CHECK_INT(sg_store_scalar(other, "SELECT count(*) FROM queue"), 1);
    /* the same, the rolled-back part's SAVEPOINT sent (a read in it) */
    CHECK_INT(sg_store_batch_begin(s), 0);
    CHECK_INT(sg_store_begin(s), 0);
    CHECK_INT(sg_store_queue_count(s, SID1, 0, -1), 1);
    CHECK_INT(sg_store_queue_trim(s, SID1, first + 1), 0);
    sg_store_rollback(s);
    CHECK_INT(sg_store_batch_end(s), 0);
    CHECK_INT(sg_store_scalar(other, "SELECT count(*) FROM queue"), 1);
    /* a write that fails when it goes out (a trigger refuses it): the
     * call that owed it said 0, the batch's end fails, nothing is in */
    CHECK_INT(sg_store_scalar(other, "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql"
                                     " AS $$BEGIN RAISE EXCEPTION 'refused'; END$$"), -1);
    CHECK_INT(sg_store_scalar(other, "CREATE TRIGGER refuse BEFORE DELETE ON queue"
                                     " FOR EACH ROW EXECUTE FUNCTION refuse()"), -1);
    CHECK_INT(sg_store_batch_begin(s), 0);
    CHECK_INT(sg_store_begin(s), 0);
    ss.ping_sent = 2;
    CHECK_INT(sg_store_session_update(s, &ss), 0);
    CHECK_INT(sg_store_queue_trim(s, SID1, first + 1), 0);
    CHECK_INT(sg_store_commit(s), 0);
    CHECK(sg_store_batch_end(s) != 0);
    CHECK_INT(sg_store_scalar(other, "SELECT ping_sent FROM sessions"), 1);
    CHECK_INT(sg_store_scalar(other, "SELECT count(*) FROM queue"), 1);
    /* outside a batch: the transaction's COMMIT fails; then all is well */
    CHECK_INT(sg_store_begin(s), 0);
    CHECK_INT(sg_store_queue_trim(s, SID1, first + 1), 0);
    CHECK(sg_store_commit(s) != 0);
    CHECK_INT(sg_store_scalar(other, "DROP TRIGGER refuse ON queue"), -1);
    CHECK_INT(sg_store_begin(s), 0);
    CHECK_INT(sg_store_queue_trim(s, SID1, first + 1), 0);
    CHECK_INT(sg_store_commit(s), 0);
    CHECK_INT(sg_store_scalar(other, "SELECT count(*) FROM queue"), 0);
    sg_buf_free(&ss.partial);
    sg_store_close(other);
    sg_store_close(s);
}
#endif

#ifdef SG_TEST_PG
TEST("store: a borrowed connection serves the store and stays open after it")
{
    sg_store *s = fresh();
    sg_store_close(s);
    PGconn *db = PQconnectdb(path);
    CHECK(PQstatus(db) == CONNECTION_OK);
    sg_store *b = sg_store_pg_borrow(db, path);
    CHECK(b != NULL);
    CHECK_INT(sg_store_version(b), LATEST_VERSION());
    CHECK(sg_store_begin(b) == 0 && sg_store_queue_push(b, SID1, false, "x", 1) > 0 &&
          sg_store_commit(b) == 0);
    sg_store_close(b);
    /* a second store on it finds the statements the first prepared, also
     * inside a transaction */
    b = sg_store_pg_borrow(db, path);
    CHECK(b != NULL);
    CHECK(sg_store_begin(b) == 0 && sg_store_queue_push(b, SID1, false, "y", 1) > 0 &&
          sg_store_commit(b) == 0);
    sg_store_close(b);
    /* begin sends BEGIN and takes the lock at once: the caller's own
     * statements are inside the store's transaction */
    b = sg_store_pg_borrow(db, path);
    CHECK_INT(sg_store_begin(b), 0);
    PGresult *own = PQexec(db, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                               " AND pid = pg_backend_pid()");
    CHECK_STR(PQntuples(own) ? PQgetvalue(own, 0, 0) : "", "1");
    PQclear(own);
    PQclear(PQexec(db, "INSERT INTO rooms (nsp, room, socket_id) VALUES ('/', 'r', 'x')"));
    sg_store_rollback(b);
    sg_store_close(b);
    own = PQexec(db, "SELECT count(*) FROM rooms");
    CHECK_STR(PQntuples(own) ? PQgetvalue(own, 0, 0) : "", "0");
    PQclear(own);
    /* the connection is still the caller's, and open */
    PGresult *r = PQexec(db, "SELECT count(*) FROM queue");
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK);
    CHECK_STR(PQntuples(r) ? PQgetvalue(r, 0, 0) : "", "2");
    PQclear(r);
    PQfinish(db);
}
#else
TEST("store: a borrowed connection serves the store and stays open after it")
{
    sg_store *s = fresh();
    sg_store_close(s);
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sg_store *b = sg_store_borrow(db, path);
    CHECK(b != NULL);
    CHECK_INT(sg_store_version(b), LATEST_VERSION());
    CHECK(sg_store_begin(b) == 0 && sg_store_queue_push(b, SID1, false, "x", 1) > 0 &&
          sg_store_commit(b) == 0);
    sg_store_close(b);
    /* the connection is still the caller's, and open */
    sqlite3_stmt *st = NULL;
    CHECK_INT(sqlite3_prepare_v2(db, "SELECT count(*) FROM queue", -1, &st, NULL), SQLITE_OK);
    CHECK_INT(sqlite3_step(st), SQLITE_ROW);
    CHECK_INT(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    CHECK_INT(sqlite3_close(db), SQLITE_OK);
}
#endif

TEST("store: concurrent writer processes never fail with 'locked'")
{
    sg_store *s = fresh();
    sg_store_close(s);
    enum { PROCS = 4, EACH = 300 };
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        if (pids[p] == 0) {
            sg_store *c = sg_store_open(path);
            int bad = !c;
            for (int i = 0; c && i < EACH; i++) {
                if (sg_store_begin(c) != 0 || sg_store_queue_push(c, SID1, false, "x", 1) < 0 ||
                    sg_store_commit(c) != 0)
                    bad = 1;
            }
            sg_store_close(c);
            _exit(bad);
        }
    }
    int ok = 1;
    for (int p = 0; p < PROCS; p++) {
        int st;
        waitpid(pids[p], &st, 0);
        ok &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    CHECK(ok);
    s = sg_store_open(path);
    CHECK_INT(sg_store_scalar(s, "SELECT count(*) FROM queue"), PROCS * EACH);
    sg_store_close(s);
}

int main(void)
{
    sg_log_init("test_store", SG_LOG_ERROR + (getenv("SG_DEBUG") ? 3 : 0));
#ifdef SG_TEST_PG
    int started = pgtest_start("store");
    if (started != 0) {
        pgtest_end(); /* what a failed start made */
        return started < 0;
    }
#endif
    snprintf(dir, sizeof dir, "/tmp/sg-test-store-XXXXXX");
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
