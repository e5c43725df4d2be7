/* test_config.c - the configuration file: defaults, every key, errors with
 * their exact messages, CRLF, comments, files on disk. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "config.h"
#include "store.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME "t.conf"

static int is_default(const sg_config *c)
{
    return c->db && !strcmp(c->db, "/var/lib/siogate/siogate.db") && c->nplugins == 0 &&
           c->path && !strcmp(c->path, "/socket.io/") && c->ping_interval == 25000 &&
           c->ping_timeout == 20000 && c->connect_timeout == 45000 &&
           c->max_payload == 1000000 && c->cors_origin == NULL && c->max_sessions == 100000 &&
           c->max_sockets_per_session == 100 && c->handshakes_per_second == 0 &&
           c->max_attachments == 10 && c->max_json_depth == 128 && c->cookie == NULL &&
           c->cookie_path && !strcmp(c->cookie_path, "/") &&
           c->cookie_samesite == SG_SAMESITE_LAX && c->cookie_httponly == 1 &&
           c->cookie_secure == 0 && c->max_queued_packets == 1000;
}

/* Write text[0..len) to a new file in a new temp dir; path[] gets its name. */
static int write_tmp(char dir[32], char path[64], const char *text, size_t len)
{
    snprintf(dir, 32, "/tmp/sgconf.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, 64, "%s/siogate.conf", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, len);
    close(fd);
    return n == (ssize_t)len ? 0 : -1;
}

static void rm_tmp(const char *dir, const char *path)
{
    unlink(path);
    rmdir(dir);
}

TEST("config: defaults")
{
    sg_config c;
    CHECK_INT(sg_config_defaults(&c), 0);
    CHECK(is_default(&c));
    CHECK_STR(c.db, "/var/lib/siogate/siogate.db");
    CHECK_STR(c.path, "/socket.io/");
    CHECK_INT(c.ping_interval, 25000);
    CHECK_INT(c.ping_timeout, 20000);
    CHECK_INT(c.connect_timeout, 45000);
    CHECK_INT(c.max_payload, 1000000);
    CHECK(c.cors_origin == NULL);
    CHECK(c.plugins == NULL);
    CHECK_INT(c.nplugins, 0);
    CHECK(c.source == NULL);
    sg_config_free(&c);
    CHECK(c.db == NULL && c.path == NULL);
    sg_config_free(&c); /* twice is fine */
    sg_config_free(NULL);
    CHECK_INT(sg_config_defaults(&c), 0); /* reusable */
    CHECK(is_default(&c));
    sg_config_free(&c);
    CHECK_STR(SG_DEFAULT_CONF, SG_SYSCONFDIR "/siogate/siogate.conf");
}

TEST("config: every key parsed")
{
    static const char text[] =
        "db = /srv/sio/app.db\n"
        "plugin = /usr/lib/siogate/echo.so\n"
        "path = /rt/\n"
        "ping_interval = 1000\n"
        "ping_timeout = 2000\n"
        "connect_timeout = 3000\n"
        "max_payload = 4096\n"
        "cors_origin = https://a.example https://b.example\n";
    sg_config c;
    char err[256] = "";
    CHECK_INT(sg_config_defaults(&c), 0);
    CHECK_INT(sg_config_parse(&c, NAME, text, err, sizeof err), 0);
    CHECK_STR(err, "");
    CHECK_STR(c.db, "/srv/sio/app.db");
    CHECK_INT(c.nplugins, 1);
    if (c.nplugins == 1)
        CHECK_STR(c.plugins[0], "/usr/lib/siogate/echo.so");
    CHECK_STR(c.path, "/rt/");
    CHECK_INT(c.ping_interval, 1000);
    CHECK_INT(c.ping_timeout, 2000);
    CHECK_INT(c.connect_timeout, 3000);
    CHECK_INT(c.max_payload, 4096);
    CHECK_STR(c.cors_origin, "https://a.example https://b.example");
    CHECK_STR(c.source, NAME);
    sg_config_free(&c);
}

TEST("config: bell_dir, and the doorbell directory for each kind of db")
{
    sg_config c;
    char err[256] = "";
    CHECK_INT(sg_config_defaults(&c), 0);
    CHECK(c.bell_dir == NULL);
    char *d = sg_config_bell_dir(&c);
    CHECK_STR(d, "/var/lib/siogate/siogate.db.bells");
    free(d);
    /* PostgreSQL: a URI or a keyword/value string */
    static const char *const pg[] = {"postgresql://siogate@db1/siogate", "postgres://h/x",
                                     "host=db1 dbname=siogate", "dbname=siogate",
                                     "user=sg", "port=5433", "hostaddr=10.0.0.1",
                                     "service=sg", "password=x host=y"};
    for (size_t i = 0; i < sizeof pg / sizeof pg[0]; i++) {
        sg_config_free(&c);
        CHECK_INT(sg_config_defaults(&c), 0);
        char text[128];
        snprintf(text, sizeof text, "db = %s\n", pg[i]);
        CHECK_INT(sg_config_parse(&c, NAME, text, err, sizeof err), 0);
        CHECK(sg_store_is_pg(c.db));
        d = sg_config_bell_dir(&c);
        CHECK_STR(d, "/var/lib/siogate/bells");
        free(d);
    }
    /* SQLite paths, even ones that look a little like the above */
    static const char *const lite[] = {"/srv/postgresql://x", "postgresql:/x", "hosts=x",
                                       "./host=x", "Postgresql://x", "app.db", ""};
    for (size_t i = 0; i < sizeof lite / sizeof lite[0]; i++)
        CHECK(!sg_store_is_pg(lite[i]));
    CHECK(!sg_store_is_pg(NULL));
    /* set: used as it is, for either kind */
    CHECK_INT(sg_config_parse(&c, NAME, "bell_dir = /run/siogate/bells\n", err, sizeof err), 0);
    CHECK_STR(err, "");
    CHECK_STR(c.bell_dir, "/run/siogate/bells");
    d = sg_config_bell_dir(&c);
    CHECK_STR(d, "/run/siogate/bells");
    free(d);
    CHECK_INT(sg_config_parse(&c, NAME, "db = /srv/app.db\nbell_dir = /run/b\n", err, sizeof err), 0);
    d = sg_config_bell_dir(&c);
    CHECK_STR(d, "/run/b");
    free(d);
    /* once per file, not empty */
    CHECK_INT(sg_config_parse(&c, NAME, "bell_dir = /a\nbell_dir = /b\n", err, sizeof err), -1);
    CHECK_STR(err, NAME ":2: 'bell_dir' already set on line 1");
    CHECK_INT(sg_config_parse(&c, NAME, "bell_dir =\n", err, sizeof err), -1);
    CHECK_STR(c.bell_dir, "/run/b");
    sg_config_free(&c);
}

TEST("config: plugin repeats, in order, appended to what c holds")
{
    sg_config c;
    char err[256] = "";
    CHECK_INT(sg_config_defaults(&c), 0);
    CHECK_INT(sg_config_parse(&c, NAME,
                              "plugin = c.so\nplugin=a.so\n# plugin = x.so\nplugin =  b.so  \n",
                              err, sizeof err), 0);
    CHECK_STR(err, "");
    CHECK_INT(c.nplugins, 3);
    if (c.nplugins == 3) {
        CHECK_STR(c.plugins[0], "c.so");
        CHECK_STR(c.plugins[1], "a.so");
        CHECK_STR(c.plugins[2], "b.so");
    }
    /* a second file adds to the list and overrides single keys */
    CHECK_INT(sg_config_parse(&c, "second.conf", "plugin = d.so\ndb = /x.db\n", err, sizeof err), 0);
    CHECK_INT(c.nplugins, 4);
    if (c.nplugins == 4)
        CHECK_STR(c.plugins[3], "d.so");
    CHECK_STR(c.db, "/x.db");
    CHECK_STR(c.source, "second.conf");
    sg_config_free(&c);
}

struct ok_case {
    const char *text;
    const char *key;     /* field checked */
    const char *want_s;  /* string fields */
    long long want_i;    /* integer fields */
};

static const struct ok_case ok_cases[] = {
    /* integers: decimal digits, full range */
    {"ping_interval = 1", "ping_interval", NULL, 1},
    {"ping_interval = 86400000", "ping_interval", NULL, 86400000},
    {"ping_timeout = 007", "ping_timeout", NULL, 7},
    {"connect_timeout=45001", "connect_timeout", NULL, 45001},
    {"max_payload = 1073741824", "max_payload", NULL, 1073741824},
    {"max_payload = 1", "max_payload", NULL, 1},
    {"max_sessions = 0", "max_sessions", NULL, 0},
    {"max_sessions = 1000000000", "max_sessions", NULL, 1000000000},
    {"max_sockets_per_session = 0", "max_sockets_per_session", NULL, 0},
    {"max_sockets_per_session = 3", "max_sockets_per_session", NULL, 3},
    {"handshakes_per_second = 1000000", "handshakes_per_second", NULL, 1000000},
    {"max_attachments = 100000", "max_attachments", NULL, 100000},
    {"max_json_depth = 1", "max_json_depth", NULL, 1},
    {"max_json_depth = 1024", "max_json_depth", NULL, 1024},
    {"max_queued_packets = 0", "max_queued_packets", NULL, 0},
    {"max_queued_packets = 1000000000", "max_queued_packets", NULL, 1000000000},
    {"cookie = io", "cookie", "io", 0},
    {"cookie = my-sess.id_2", "cookie", "my-sess.id_2", 0},
    {"cookie_path = /app/", "cookie_path", "/app/", 0},
    {"cookie_samesite = strict", "cookie_samesite", NULL, SG_SAMESITE_STRICT},
    {"cookie_samesite = None", "cookie_samesite", NULL, SG_SAMESITE_NONE},
    {"cookie_samesite = OFF", "cookie_samesite", NULL, SG_SAMESITE_OFF},
    {"cookie_httponly = no", "cookie_httponly", NULL, 0},
    {"cookie_httponly = On", "cookie_httponly", NULL, 1},
    {"cookie_secure = true", "cookie_secure", NULL, 1},
    {"cookie_secure = 0", "cookie_secure", NULL, 0},
    /* path: normalised to end with '/' */
    {"path = /", "path", "/", 0},
    {"path = /socket.io", "path", "/socket.io/", 0},
    {"path = /a/b/", "path", "/a/b/", 0},
    /* values: split at the first '=', inner '#' and blanks kept, ends trimmed */
    {"cors_origin = *", "cors_origin", "*", 0},
    {"cors_origin = https://a.example#frag", "cors_origin", "https://a.example#frag", 0},
    {"cors_origin = a=b=c", "cors_origin", "a=b=c", 0},
    {"cors_origin=x", "cors_origin", "x", 0},
    {"  \tcors_origin \t=\t https://a  https://b \t ", "cors_origin", "https://a  https://b", 0},
    {"db = /var/db/my file.db", "db", "/var/db/my file.db", 0},
    {"db = relative.db", "db", "relative.db", 0},
    {"db=/x\n", "db", "/x", 0},
    {"db = /no/final/newline", "db", "/no/final/newline", 0},
    {"\xEF\xBB\xBF" "db = /bom", "db", "/bom", 0},
    {"db = /\xC3\xA9t\xC3\xA9.db", "db", "/\xC3\xA9t\xC3\xA9.db", 0},
};

static int64_t int_field(const sg_config *c, const char *key)
{
    if (!strcmp(key, "ping_interval")) return c->ping_interval;
    if (!strcmp(key, "ping_timeout")) return c->ping_timeout;
    if (!strcmp(key, "connect_timeout")) return c->connect_timeout;
    if (!strcmp(key, "max_payload")) return c->max_payload;
    if (!strcmp(key, "max_sessions")) return c->max_sessions;
    if (!strcmp(key, "max_sockets_per_session")) return c->max_sockets_per_session;
    if (!strcmp(key, "handshakes_per_second")) return c->handshakes_per_second;
    if (!strcmp(key, "max_attachments")) return c->max_attachments;
    if (!strcmp(key, "max_json_depth")) return c->max_json_depth;
    if (!strcmp(key, "max_queued_packets")) return c->max_queued_packets;
    if (!strcmp(key, "cookie_samesite")) return c->cookie_samesite;
    if (!strcmp(key, "cookie_httponly")) return c->cookie_httponly;
    if (!strcmp(key, "cookie_secure")) return c->cookie_secure;
    return -1;
}

static const char *str_field(const sg_config *c, const char *key)
{
    if (!strcmp(key, "db")) return c->db;
    if (!strcmp(key, "path")) return c->path;
    if (!strcmp(key, "cors_origin")) return c->cors_origin;
    if (!strcmp(key, "cookie")) return c->cookie;
    if (!strcmp(key, "cookie_path")) return c->cookie_path;
    return NULL;
}

TEST("config: values accepted (table)")
{
    for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
        const struct ok_case *t = &ok_cases[i];
        sg_config c;
        char err[256] = "";
        CHECK_INT(sg_config_defaults(&c), 0);
        int rc = sg_config_parse(&c, NAME, t->text, err, sizeof err);
        if (rc != 0)
            printf("#   case %zu \"%s\": %s\n", i, t->text, err);
        CHECK_INT(rc, 0);
        if (t->want_s)
            CHECK_STR(str_field(&c, t->key), t->want_s);
        else
            CHECK_INT(int_field(&c, t->key), t->want_i);
        sg_config_free(&c);
    }
}

struct err_case {
    const char *text;
    const char *msg;
};

static const struct err_case err_cases[] = {
    /* unknown key */
    {"foo = 1", NAME ":1: unknown key 'foo'"},
    {"DB = /x", NAME ":1: unknown key 'DB'"},
    {"ping interval = 5", NAME ":1: unknown key 'ping interval'"},
    {"db = /x\n\nplugins = a.so\n", NAME ":3: unknown key 'plugins'"},
    {"f\x01o\to = 1", NAME ":1: unknown key 'f?o?o'"},
    {"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk = 1",
     NAME ":1: unknown key 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...'"},
    /* bad integers */
    {"ping_interval = abc", NAME ":1: 'ping_interval' must be a decimal integer, not 'abc'"},
    {"ping_interval = +5", NAME ":1: 'ping_interval' must be a decimal integer, not '+5'"},
    {"ping_interval = -5", NAME ":1: 'ping_interval' must be a decimal integer, not '-5'"},
    {"ping_timeout = 5ms", NAME ":1: 'ping_timeout' must be a decimal integer, not '5ms'"},
    {"ping_timeout = 0x10", NAME ":1: 'ping_timeout' must be a decimal integer, not '0x10'"},
    {"connect_timeout = 1.5", NAME ":1: 'connect_timeout' must be a decimal integer, not '1.5'"},
    {"connect_timeout = 1e3", NAME ":1: 'connect_timeout' must be a decimal integer, not '1e3'"},
    {"max_payload = 10 00", NAME ":1: 'max_payload' must be a decimal integer, not '10 00'"},
    {"max_payload = 99999999999999999999999x",
     NAME ":1: 'max_payload' must be a decimal integer, not '99999999999999999999999x'"},
    /* out of range */
    {"ping_interval = 0", NAME ":1: 'ping_interval' must be between 1 and 86400000, not '0'"},
    {"ping_interval = 86400001",
     NAME ":1: 'ping_interval' must be between 1 and 86400000, not '86400001'"},
    {"ping_timeout = 000", NAME ":1: 'ping_timeout' must be between 1 and 86400000, not '000'"},
    {"connect_timeout = 99999999999999999999999",
     NAME ":1: 'connect_timeout' must be between 1 and 86400000, not '99999999999999999999999'"},
    {"max_payload = 1073741825",
     NAME ":1: 'max_payload' must be between 1 and 1073741824, not '1073741825'"},
    {"max_attachments = 0", NAME ":1: 'max_attachments' must be between 1 and 100000, not '0'"},
    {"max_json_depth = 1025", NAME ":1: 'max_json_depth' must be between 1 and 1024, not '1025'"},
    {"max_sessions = -1", NAME ":1: 'max_sessions' must be a decimal integer, not '-1'"},
    {"max_queued_packets = 1000000001",
     NAME ":1: 'max_queued_packets' must be between 0 and 1000000000, not '1000000001'"},
    {"cookie = a;b", NAME ":1: 'cookie' must be a cookie name (letters, digits, "
                     "!#$%&'*+-.^_`|~), not 'a;b'"},
    {"cookie = io=x", NAME ":1: 'cookie' must be a cookie name (letters, digits, "
                      "!#$%&'*+-.^_`|~), not 'io=x'"},
    {"cookie_path = /a b", NAME ":1: 'cookie_path' must be a cookie path (no white space, "
                           "';' or ','), not '/a b'"},
    {"cookie_path = /a;Domain=evil", NAME ":1: 'cookie_path' must be a cookie path (no white "
                                     "space, ';' or ','), not '/a;Domain=evil'"},
    {"cookie_samesite = lax-ish", NAME ":1: 'cookie_samesite' must be one of off, Strict, Lax, "
                                  "None, not 'lax-ish'"},
    {"cookie_secure = maybe", NAME ":1: 'cookie_secure' must be yes or no, not 'maybe'"},
    /* repeated single-valued keys */
    {"db = /a\n\ndb = /b\n", NAME ":3: 'db' already set on line 1"},
    {"path = /a/\n#\npath = /a/\n", NAME ":3: 'path' already set on line 1"},
    {"ping_interval = 1\nping_interval = 1\n", NAME ":2: 'ping_interval' already set on line 1"},
    {"cors_origin = *\r\ncors_origin = *\r\n", NAME ":2: 'cors_origin' already set on line 1"},
    /* missing '=' or key */
    {"db /x", NAME ":1: missing '=' (expected key = value)"},
    {"# ok\n\nplugin\n", NAME ":3: missing '=' (expected key = value)"},
    {"= /x", NAME ":1: missing key before '='"},
    /* empty values */
    {"db =", NAME ":1: empty value for 'db'"},
    {"db =   \t\r\n", NAME ":1: empty value for 'db'"},
    {"plugin=", NAME ":1: empty value for 'plugin'"},
    {"cors_origin = ", NAME ":1: empty value for 'cors_origin'"},
    {"ping_interval =", NAME ":1: empty value for 'ping_interval'"},
    /* path */
    {"path = socket.io/", NAME ":1: 'path' must begin with '/', not 'socket.io/'"},
    {"path = http://x/socket.io/", NAME ":1: 'path' must begin with '/', not 'http://x/socket.io/'"},
    {"path = /a b/", NAME ":1: 'path' must be a URL path (no white space, '?' or '#'), not '/a b/'"},
    {"path = /a?b", NAME ":1: 'path' must be a URL path (no white space, '?' or '#'), not '/a?b'"},
    {"path = /a#b", NAME ":1: 'path' must be a URL path (no white space, '?' or '#'), not '/a#b'"},
    /* the first error wins; line numbers count every line */
    {"# c\n\n  \ndb = /x\nbogus\nfoo = 1\n", NAME ":5: missing '=' (expected key = value)"},
    {"db = /x\r\n\r\nping_interval = no\r\n",
     NAME ":3: 'ping_interval' must be a decimal integer, not 'no'"},
};

TEST("config: errors name the file and line (table)")
{
    for (size_t i = 0; i < sizeof err_cases / sizeof err_cases[0]; i++) {
        const struct err_case *t = &err_cases[i];
        sg_config c;
        char err[256] = "untouched";
        CHECK_INT(sg_config_defaults(&c), 0);
        int rc = sg_config_parse(&c, NAME, t->text, err, sizeof err);
        CHECK_INT(rc, -1);
        if (strcmp(err, t->msg))
            printf("#   case %zu\n", i);
        CHECK_STR(err, t->msg);
        CHECK(strchr(err, '\n') == NULL);
        CHECK(is_default(&c)); /* nothing applied */
        CHECK(c.source == NULL);
        sg_config_free(&c);
    }
}

TEST("config: a failed parse leaves c as it was")
{
    sg_config c;
    char err[256];
    CHECK_INT(sg_config_defaults(&c), 0);
    CHECK_INT(sg_config_parse(&c, "a.conf", "plugin = a.so\nping_timeout = 5\n", err, sizeof err), 0);
    CHECK_INT(sg_config_parse(&c, "b.conf", "plugin = b.so\ndb = /b\nping_timeout = x\n", err,
                              sizeof err), -1);
    CHECK_STR(err, "b.conf:3: 'ping_timeout' must be a decimal integer, not 'x'");
    CHECK_INT(c.nplugins, 1);
    CHECK_STR(c.db, "/var/lib/siogate/siogate.db");
    CHECK_INT(c.ping_timeout, 5);
    CHECK_STR(c.source, "a.conf");
    /* no buffer, or a tiny one, is fine */
    CHECK_INT(sg_config_parse(&c, "b.conf", "x", NULL, 0), -1);
    char small[8];
    CHECK_INT(sg_config_parse(&c, "b.conf", "x", small, sizeof small), -1);
    CHECK_STR(small, "b.conf:");
    sg_config_free(&c);
}

TEST("config: CRLF line ends")
{
    sg_config c;
    char err[256] = "";
    CHECK_INT(sg_config_defaults(&c), 0);
    CHECK_INT(sg_config_parse(&c, NAME,
                              "# windows\r\n\r\ndb = /w.db\r\nplugin = a.so\r\nplugin = b.so\r\n"
                              "path = /io\r\nping_interval = 300\r\ncors_origin = *\r\n",
                              err, sizeof err), 0);
    CHECK_STR(err, "");
    CHECK_STR(c.db, "/w.db");
    CHECK_INT(c.nplugins, 2);
    if (c.nplugins == 2) {
        CHECK_STR(c.plugins[0], "a.so");
        CHECK_STR(c.plugins[1], "b.so");
    }
    CHECK_STR(c.path, "/io/");
    CHECK_INT(c.ping_interval, 300);
    CHECK_STR(c.cors_origin, "*");
    sg_config_free(&c);
}

TEST("config: comments and blank lines")
{
    sg_config c;
    char err[256] = "";
    CHECK_INT(sg_config_defaults(&c), 0);
    CHECK_INT(sg_config_parse(&c, NAME, "", err, sizeof err), 0);
    CHECK(is_default(&c));
    CHECK_INT(sg_config_parse(&c, NAME,
                              "# siogate.conf\n\n   \n\t\n  # db = /commented\n#db=/x\n"
                              "#\n# plugin = nope.so\n\n\n",
                              err, sizeof err), 0);
    CHECK_STR(err, "");
    CHECK(is_default(&c));
    /* '#' after a value is part of it; a commented-out key is not repeated */
    CHECK_INT(sg_config_parse(&c, NAME, "# cors_origin = a\ncors_origin = b # not a comment\n",
                              err, sizeof err), 0);
    CHECK_STR(c.cors_origin, "b # not a comment");
    sg_config_free(&c);
}

TEST("config: long lines are read whole")
{
    size_t n = 200000;
    char *text = malloc(n + 64);
    CHECK(text != NULL);
    if (!text)
        return;
    int k = snprintf(text, 64, "cors_origin = ");
    memset(text + k, 'o', n);
    snprintf(text + k + n, 64, "\nping_interval = 9\n");
    sg_config c;
    char err[256] = "";
    CHECK_INT(sg_config_defaults(&c), 0);
    CHECK_INT(sg_config_parse(&c, NAME, text, err, sizeof err), 0);
    CHECK_INT(c.cors_origin ? strlen(c.cors_origin) : 0, n);
    CHECK_INT(c.ping_interval, 9);
    /* an error in a long line is shown cut, on one line */
    memcpy(text, "ping_timeout = ", 15);
    memset(text + 15, '7', n);
    text[15 + n] = 'x';
    text[16 + n] = '\0';
    CHECK_INT(sg_config_parse(&c, NAME, text, err, sizeof err), -1);
    CHECK(strncmp(err, NAME ":1: 'ping_timeout' must be a decimal integer, not '7777", 56) == 0);
    CHECK(strlen(err) < 160);
    CHECK(strstr(err, "...'") != NULL);
    sg_config_free(&c);
    free(text);
}

TEST("config: load a real file")
{
    static const char text[] = "# test\r\ndb = /tmp/x.db\nplugin = a.so\nplugin = b.so\n"
                               "max_payload = 2048\npath = /sio";
    char dir[32], path[64];
    CHECK(write_tmp(dir, path, text, sizeof text - 1) == 0);
    sg_config c;
    char err[256] = "";
    CHECK_INT(sg_config_defaults(&c), 0);
    CHECK_INT(sg_config_load(&c, path, err, sizeof err), 0);
    CHECK_STR(err, "");
    CHECK_STR(c.db, "/tmp/x.db");
    CHECK_INT(c.nplugins, 2);
    CHECK_INT(c.max_payload, 2048);
    CHECK_STR(c.path, "/sio/");
    CHECK_STR(c.source, path);
    sg_config_free(&c);
    rm_tmp(dir, path);

    /* errors in a file name its path */
    CHECK(write_tmp(dir, path, "db = /a\nnope\n", 13) == 0);
    CHECK_INT(sg_config_defaults(&c), 0);
    CHECK_INT(sg_config_load(&c, path, err, sizeof err), -1);
    char want[160];
    snprintf(want, sizeof want, "%s:2: missing '=' (expected key = value)", path);
    CHECK_STR(err, want);
    CHECK(is_default(&c));
    sg_config_free(&c);
    rm_tmp(dir, path);

    /* a NUL byte is an error, not the end of the file */
    CHECK(write_tmp(dir, path, "db = /a\nplugin = x\0y.so\n", 24) == 0);
    CHECK_INT(sg_config_defaults(&c), 0);
    CHECK_INT(sg_config_load(&c, path, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:2: NUL byte in line", path);
    CHECK_STR(err, want);
    sg_config_free(&c);
    rm_tmp(dir, path);

    /* an empty file */
    CHECK(write_tmp(dir, path, "", 0) == 0);
    CHECK_INT(sg_config_defaults(&c), 0);
    CHECK_INT(sg_config_load(&c, path, err, sizeof err), 0);
    CHECK(is_default(&c));
    sg_config_free(&c);
    rm_tmp(dir, path);
}

TEST("config: load a missing file or a directory")
{
    sg_config c;
    char err[256] = "";
    CHECK_INT(sg_config_defaults(&c), 0);
    errno = 0;
    CHECK_INT(sg_config_load(&c, "/nonexistent/siogate.conf", err, sizeof err), -1);
    CHECK_INT(errno, ENOENT);
    CHECK_STR(err, "/nonexistent/siogate.conf: No such file or directory");
    CHECK(is_default(&c));
    char dir[] = "/tmp/sgconf.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    CHECK_INT(sg_config_load(&c, dir, err, sizeof err), -1);
    char want[64];
    snprintf(want, sizeof want, "%s: Is a directory", dir);
    CHECK_STR(err, want);
    rmdir(dir);
    CHECK(is_default(&c));
    sg_config_free(&c);
}

int main(void)
{
    return tap_run();
}
