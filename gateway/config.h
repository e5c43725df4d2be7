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
#define SG_DEFAULT_CONF SG_SYSCONFDIR "/siogate/siogate.conf"

typedef struct sg_config {
    char *db;               /* "db": path of the SQLite file (default /var/lib/siogate/siogate.db) */
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
    char *cors_origin;      /* "cors_origin": NULL (same-origin only), "*" (any
                               origin, reflected), or space-separated origins */
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

/* Release everything c owns; c can be reused after sg_config_defaults. */
void sg_config_free(sg_config *c);

#endif
