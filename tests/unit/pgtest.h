/* pgtest.h - a PostgreSQL database of its own for a unit test that runs on
 * PostgreSQL (test_store_pg, test_admin_pg: SG_TEST_PG).
 *
 * The store's writers serialize on one advisory lock (SG_PG_LOCK in
 * gateway/store_pg.c), and PostgreSQL's advisory locks are per database.
 * Some tests hold that lock on purpose until a writer's lock_timeout
 * (10 s) has passed; any other test program writing in the same database
 * meanwhile (make check -j2) waits as long, under the sanitizers past its
 * own lock_timeout, and fails with SG_STORE_BUSY in a test that has
 * nothing to do with locks. So each program works in a database of its
 * own, sg_<prog>_<pid>, made by pgtest_start on SG_TEST_PG's server (its
 * role needs CREATEDB: tests/pg-cluster's superuser) and dropped, with
 * every schema in it, by pgtest_end. Each store inside is a fresh schema
 * (pgtest_schema). */
#ifndef SG_PGTEST_H
#define SG_PGTEST_H

#include <stddef.h>

/* Connects to SG_TEST_PG and makes this program's database. Returns 0; 1
 * when SG_TEST_PG is unset or empty (it printed the TAP plan that skips
 * the program: return 0 from main); -1 on failure (it printed "Bail out!"
 * with the reason: pgtest_end, then return 1). */
int pgtest_start(const char *prog);

/* A new empty schema in this program's database. Writes into path (cap
 * bytes) a keyword connection string for it: SG_TEST_PG's with dbname this
 * database, options "-c search_path=<schema>", host first (so that
 * sg_store_is_pg knows it), and a password (which trust authentication
 * ignores) unless SG_TEST_PG has one: what outputs must never show.
 * Returns 0, or -1 (printed why). */
int pgtest_schema(char *path, size_t cap);

/* Drops this program's database (and its connections). Returns 0, or -1
 * (printed why). Safe when pgtest_start did not return 0. */
int pgtest_end(void);

#endif
