/* util.c - clocks, ids, query strings. */
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sg_now_ms(void) { return clock_ms(CLOCK_REALTIME); }
int64_t sg_mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }

static const char id_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int sg_id_new(char out[SG_ID_LEN + 1])
{
    unsigned char raw[15];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)n;
    }
    /* 15 bytes = 120 bits = 20 base64url characters, no padding */
    for (size_t i = 0, o = 0; i < sizeof raw; i += 3) {
        unsigned v = (unsigned)raw[i] << 16 | (unsigned)raw[i + 1] << 8 | raw[i + 2];
        out[o++] = id_alphabet[(v >> 18) & 63];
        out[o++] = id_alphabet[(v >> 12) & 63];
        out[o++] = id_alphabet[(v >> 6) & 63];
        out[o++] = id_alphabet[v & 63];
    }
    out[SG_ID_LEN] = '\0';
    return 0;
}

int sg_id_valid(const char *s)
{
    if (!s)
        return 0;
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        /* id_alphabet */
        if (n == SG_ID_LEN || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                                (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return 0;
    }
    return n == SG_ID_LEN;
}

void sg_copy(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strnlen(src, cap - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decode the character at s[i] (of n): *c gets it; returns how many bytes
 * it took (3 for "%hh", else 1; '+' is a space). */
static size_t pct_char(const char *s, size_t i, size_t n, char *c)
{
    int h1, h2;
    if (s[i] == '%' && i + 2 < n && (h1 = hexval((unsigned char)s[i + 1])) >= 0 &&
        (h2 = hexval((unsigned char)s[i + 2])) >= 0) {
        *c = (char)(h1 << 4 | h2);
        return 3;
    }
    *c = s[i] == '+' ? ' ' : s[i];
    return 1;
}

char *sg_pct_decode(const char *s, size_t n, size_t *outlen)
{
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; o++)
        i += pct_char(s, i, n, &out[o]);
    out[o] = '\0';
    if (outlen)
        *outlen = o;
    return out;
}

/* 1 when the n bytes at s, percent-decoded, are name exactly. */
static int name_is(const char *s, size_t n, const char *name)
{
    for (size_t i = 0; i < n; name++) {
        char c;
        i += pct_char(s, i, n, &c);
        if (*name != c || c == '\0')
            return 0;
    }
    return *name == '\0';
}

char *sg_query_get(const char *query, const char *name)
{
    if (!query)
        return NULL;
    for (const char *p = query;;) {
        size_t seg = strcspn(p, "&");
        size_t klen = strcspn(p, "=&");
        if (name_is(p, klen, name)) {
            const char *v = klen < seg ? p + klen + 1 : p + seg;
            return sg_pct_decode(v, (size_t)(p + seg - v), NULL);
        }
        if (!p[seg])
            return NULL;
        p += seg + 1;
    }
}

/* ---- poller tokens ------------------------------------------------------- */

static char pid_space[13];
static pthread_once_t pid_space_once = PTHREAD_ONCE_INIT;

/* FNV-1a over s, continued from h */
static uint64_t fnv1a(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void pid_space_init(void)
{
    char boot[64] = "", ns[64] = "";
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
    if (f) {
        if (!fgets(boot, sizeof boot, f))
            boot[0] = '\0';
        fclose(f);
    }
    ssize_t n = readlink("/proc/self/ns/pid", ns, sizeof ns - 1);
    ns[n > 0 ? n : 0] = '\0';
    if (!boot[0] && gethostname(boot, sizeof boot - 1) != 0)
        boot[0] = '\0';
    uint64_t h = fnv1a(0xcbf29ce484222325ULL, boot, strlen(boot));
    h = fnv1a(h, ns, strlen(ns));
    snprintf(pid_space, sizeof pid_space, "%012" PRIx64, (uint64_t)(h & 0xffffffffffffULL));
}

const char *sg_pid_space(void)
{
    pthread_once(&pid_space_once, pid_space_init);
    return pid_space;
}

void sg_token_make(char out[SG_TOKEN_MAX], long pid, uint64_t n)
{
    snprintf(out, SG_TOKEN_MAX, "%ld.%" PRIu64 "@%s", pid, n, sg_pid_space());
}

long sg_token_local_pid(const char *token)
{
    char *end;
    errno = 0;
    long pid = strtol(token, &end, 10);
    if (errno || pid <= 0 || *end != '.')
        return 0;
    const char *at = strchr(end, '@');
    if (at && strcmp(at + 1, sg_pid_space()) != 0)
        return 0;
    return pid;
}

/* Checks each sequence's lead byte, length, continuation bytes and the
 * code point it decodes to. */
int sg_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}
