/* pgtest.c - a PostgreSQL database of its own for a unit test (pgtest.h). */
#include "pgtest.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libpq-fe.h>

#include "buf.h"

static PGconn *maint; /* SG_TEST_PG's database: creates and drops ours */
static PGconn *own;   /* ours: creates the schemas */
static char dbname[64];
static int nschemas;

static void put_kv(sg_buf *b, const char *kw, const char *val)
{
    sg_buf_printf(b, "%s%s='", b->len ? " " : "", kw);
    for (const char *c = val; *c; c++) {
        if (*c == '\\' || *c == '\'')
            sg_buf_putc(b, '\\');
        sg_buf_putc(b, *c);
    }
    sg_buf_putc(b, '\'');
}

/* Into out: SG_TEST_PG's keywords with dbname ours and the options given
 * (NULL: none). Returns 0, or -1. */
static int conninfo(sg_buf *out, const char *options)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(getenv("SG_TEST_PG"), &err);
    if (!opts) {
        printf("# SG_TEST_PG: %s", err ? err : "out of memory\n");
        PQfreemem(err);
        return -1;
    }
    static const char *const first[] = {"host", "hostaddr", "port", "user"};
    for (size_t i = 0; i < sizeof first / sizeof first[0]; i++)
        for (PQconninfoOption *o = opts; o->keyword; o++)
            if (o->val && !strcmp(o->keyword, first[i]))
                put_kv(out, o->keyword, o->val);
    put_kv(out, "dbname", dbname);
    bool pw = false;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        bool done = !strcmp(o->keyword, "options") || !strcmp(o->keyword, "dbname");
        for (size_t i = 0; i < sizeof first / sizeof first[0]; i++)
            done |= !strcmp(o->keyword, first[i]);
        pw |= o->val && !strcmp(o->keyword, "password");
        if (o->val && !done)
            put_kv(out, o->keyword, o->val);
    }
    if (!pw)
        put_kv(out, "password", "n0t-shown");
    if (options)
        put_kv(out, "options", options);
    PQconninfoFree(opts);
    return 0;
}

/* Runs sql on c; false (printed why) unless it succeeded. */
static bool run(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        printf("# %s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

int pgtest_start(const char *prog)
{
    const char *conn = getenv("SG_TEST_PG");
    if (!conn || !*conn) {
        printf("1..0 # SKIP SG_TEST_PG is not set (a PostgreSQL connection string"
               " whose role may create databases)\n");
        return 1;
    }
    maint = PQconnectdb(conn);
    if (PQstatus(maint) != CONNECTION_OK) {
        printf("Bail out! SG_TEST_PG: cannot connect: %s", PQerrorMessage(maint));
        return -1;
    }
    PQclear(PQexec(maint, "SET client_min_messages = warning"));
    char sql[128];
    snprintf(dbname, sizeof dbname, "sg_%s_%d", prog, (int)getpid());
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", dbname);
    if (!run(maint, sql)) {
        printf("Bail out! SG_TEST_PG: cannot create this test's database\n");
        dbname[0] = '\0';
        return -1;
    }
    sg_buf b = SG_BUF_INIT;
    if (conninfo(&b, NULL) == 0)
        own = PQconnectdb(sg_buf_str(&b));
    sg_buf_free(&b);
    if (PQstatus(own) != CONNECTION_OK) {
        printf("Bail out! %s: cannot connect: %s", dbname,
               own ? PQerrorMessage(own) : "no connection string\n");
        return -1;
    }
    PQclear(PQexec(own, "SET client_min_messages = warning"));
    return 0;
}

int pgtest_schema(char *path, size_t cap)
{
    char schema[32], sql[64], opt[64];
    snprintf(schema, sizeof schema, "s%d", nschemas++);
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s", schema);
    if (!own || !run(own, sql))
        return -1;
    snprintf(opt, sizeof opt, "-c search_path=%s", schema);
    sg_buf b = SG_BUF_INIT;
    int rc = conninfo(&b, opt);
    if (rc == 0 && b.len >= cap) {
        printf("# the connection string is longer than %zu bytes\n", cap);
        rc = -1;
    }
    if (rc == 0)
        memcpy(path, sg_buf_str(&b), b.len + 1);
    sg_buf_free(&b);
    return rc;
}

int pgtest_end(void)
{
    int rc = 0;
    PQfinish(own);
    own = NULL;
    if (dbname[0]) {
        /* FORCE: a test that failed half-way may have left a store open */
        char sql[128];
        snprintf(sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", dbname);
        if (!run(maint, sql))
            rc = -1;
        dbname[0] = '\0';
    }
    PQfinish(maint);
    maint = NULL;
    return rc;
}
