/* test_admin.c - how the CLI shows a db value: a PostgreSQL connection
 * string never with its password, wherever libpq would find one; and the
 * scrubbing of text that others (the store's log, the doorbell's) wrote.
 *
 * Each case also asks libpq (PQconninfoParse) what the password is, so
 * that a masked text that still holds it fails whatever this file
 * expects. */
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>

#include "admin.h"
#include "tap.h"

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

int main(void) { return tap_run(); }
