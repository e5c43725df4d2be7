/* config.h - the configuration file.
 *
 * Format: one "key = value" per line; blank lines and lines whose first
 * non-blank character is '#' are ignored; white space around key and value
 * is trimmed; a key that may repeat (plugin) is given once per line.
 * Unknown keys, repeated single keys, missing '=', and bad values are
 * errors naming the file and the line. */
#ifndef SG_CONFIG_H
#define SG_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define SG_BROADCAST_LOG_MIN_DEFAULT 1000
#define SG_MAX_QUEUED_PACKETS_DEFAULT 1000
#define SG_DEFAULT_CONF SG_SYSCONFDIR "/siogate/siogate.conf"

/* cookie_samesite values: off (no attribute), Strict, Lax, None */
enum { SG_SAMESITE_OFF, SG_SAMESITE_STRICT, SG_SAMESITE_LAX, SG_SAMESITE_NONE };

typedef struct sg_config {
    char *db;               /* "db": path of the SQLite file (default /var/lib/siogate/siogate.db),
                               or a PostgreSQL connection string (sg_store_is_pg) */
    char *bell_dir;         /* "bell_dir": the directory of the doorbell sockets; NULL:
                               the default for db (sg_bell_dir_for; sg_config_bell_dir) */
    char **plugins;         /* "plugin" (repeatable): paths of .so files, in order */
    size_t nplugins;
    char *path;             /* "path": default "/socket.io/", always begins and ends with '/' */
    int64_t ping_interval;  /* "ping_interval" ms, default 25000, 1..86400000 */
    int64_t ping_timeout;   /* "ping_timeout" ms, default 20000, 1..86400000 */
    int64_t connect_timeout;/* "connect_timeout" ms, default 45000, 1..86400000 */
    int64_t max_payload;    /* "max_payload" bytes, default 1000000, 1..1073741824 */
    int64_t broadcast_log_min; /* "broadcast_log_min": a broadcast to at least this
                               many sockets is one log row per frame, not a row per
                               recipient; default SG_BROADCAST_LOG_MIN_DEFAULT,
                               0..1000000000 (0: every broadcast) */
    int64_t recovery_window; /* "recovery_window" ms: connection state recovery
                               (a client back within it gets its socket, rooms, data
                               and missed events); default 0 = off, 0..86400000 */
    char *cors_origin;      /* "cors_origin": NULL (same-origin only), "*" (any
                               origin, reflected), or space-separated origins */
    /* limits (0 = no limit where the range allows it) */
    int64_t max_sessions;   /* "max_sessions": open sessions in the store, default 100000, 0..1e9 */
    int64_t max_sockets_per_session; /* "max_sockets_per_session": namespaces one
                               session may join, default 100, 0..1000000 */
    int64_t handshakes_per_second; /* "handshakes_per_second": per remote address,
                               default 0 (no limit), 0..1000000 */
    int64_t max_attachments;/* "max_attachments": binary attachments of one packet,
                               default 10, 1..100000 */
    int64_t max_json_depth; /* "max_json_depth": nesting of a packet's JSON,
                               default 128, 1..1024 (SG_SIO_DEPTH_CAP) */
    int64_t max_queued_packets; /* "max_queued_packets": Engine.IO packets queued
                               for one session and not handed to its transport
                               yet (its own queue rows; broadcast log rows not
                               counted), checked at each request of its own;
                               default SG_MAX_QUEUED_PACKETS_DEFAULT, 0..1e9
                               (0: no limit) */
    /* the "io" cookie of the reference server (off unless cookie is set) */
    char *cookie;           /* "cookie": its name (the reference's is "io"); NULL: no cookie */
    char *cookie_path;      /* "cookie_path", default "/" */
    int64_t cookie_samesite;/* "cookie_samesite": SG_SAMESITE_*, default Lax */
    int64_t cookie_httponly;/* "cookie_httponly": 0/1, default 1 */
    int64_t cookie_secure;  /* "cookie_secure": 0/1, default 0 */
    char *source;           /* the file it was read from (or NULL for defaults) */
} sg_config;

/* Fill c with the defaults (all strings owned by c). 0 or -1 (ENOMEM). */
int sg_config_defaults(sg_config *c);

/* Read the file at path over what c holds (fill c with sg_config_defaults
 * first; "plugin" lines are appended). Returns 0, or -1 with a message
 * "PATH:LINE: what is wrong" (or "PATH: strerror") written into
 * err[0..errcap). On error c is left as it was (always safe to
 * sg_config_free). */
int sg_config_load(sg_config *c, const char *path, char *err, size_t errcap);

/* Parse text (as if read from a file named name). Same contract. */
int sg_config_parse(sg_config *c, const char *name, const char *text,
                    char *err, size_t errcap);

/* The doorbell directory c names: bell_dir, or the default for db (db
 * with ".bells" appended for SQLite, /var/lib/siogate/bells for
 * PostgreSQL). New string (caller frees), NULL on ENOMEM. */
char *sg_config_bell_dir(const sg_config *c);

/* Release everything c owns; c can be reused after sg_config_defaults. */
void sg_config_free(sg_config *c);

#endif
