/* util.h - small helpers shared by all programs: clocks, ids, strings. */
#ifndef SG_UTIL_H
#define SG_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Length of an Engine.IO session id or a Socket.IO socket id:
 * 15 bytes from the CSPRNG (120 bits) as base64url, 20 characters. */
#define SG_ID_LEN 20

/* The struct of type that holds *ptr as its member (intrusive containers:
 * sidmap.h, deadlines.h). */
#define SG_CONTAINER_OF(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Milliseconds of CLOCK_REALTIME (stored in the database, shared between
 * processes) and of CLOCK_MONOTONIC (local timers). */
int64_t sg_now_ms(void);
int64_t sg_mono_ms(void);

/* Write a fresh unguessable id and its NUL into out[SG_ID_LEN + 1].
 * Returns 0, or -1 if the kernel's random source failed. */
int sg_id_new(char out[SG_ID_LEN + 1]);
/* 1 when s is a syntactically valid id (length and alphabet), else 0. */
int sg_id_valid(const char *s);
/* Copy the string src (NULL: "") into dst[cap], cut to fit and always
 * NUL-terminated (cap > 0): snprintf(dst, cap, "%s", src) without its
 * cost, for the copies of a request's path. */
void sg_copy(char *dst, size_t cap, const char *src);

/* 1 when s[0..n) is well-formed UTF-8 (no overlong forms, surrogates or
 * code points above U+10FFFF; NUL bytes count as text), else 0. */
int sg_utf8_valid(const char *s, size_t n);

/* Percent-decode the n bytes at s ('+' is a space, a '%' not followed by
 * two hex digits stays as it is). Returns a new NUL-terminated string
 * (caller frees; a decoded %00 is a NUL inside it, *outlen counts it when
 * outlen is not NULL), or NULL (ENOMEM). */
char *sg_pct_decode(const char *s, size_t n, size_t *outlen);
/* Find a query-string parameter: the first one whose percent-decoded name
 * is name. Returns its value percent-decoded (a new string, caller frees;
 * it ends at a decoded %00), "" for a name without '=', or NULL when
 * absent (or ENOMEM). */
char *sg_query_get(const char *query, const char *name);

/* ---- poller tokens: who holds a polling GET or a WebSocket -------------
 *
 * "<pid>.<n>@<space>": the process, a number of its own, and its pid
 * space: 12 hex digits of a hash of the machine's boot id and the pid
 * namespace, so that processes on different hosts sharing one store (the
 * PostgreSQL store) never take each other's pids for their own. */
#define SG_TOKEN_MAX 48

/* This process's pid space (a static string; the same for the whole
 * process, its threads included). */
const char *sg_pid_space(void);
/* Write the token of (pid, n) of this pid space into out[SG_TOKEN_MAX]. */
void sg_token_make(char out[SG_TOKEN_MAX], long pid, uint64_t n);
/* The pid a token names, when it is of this pid space; 0 when it is of
 * another (or names none). A token without "@<space>" (written before
 * they had one) is taken as of this pid space. */
long sg_token_local_pid(const char *token);

#endif
