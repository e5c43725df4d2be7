/* fuzz_query.c - fuzz target for what the gateway reads from the query
 * string: sg_query_get (util.h) and siogate-fcgi's router (route.h) on
 * QUERY_STRING.
 *
 * The first byte of the input picks the method (GET, POST, OPTIONS,
 * PUT) and the configuration (cgi.h); the rest, up to a NUL, is the query
 * string, sent as QUERY_STRING and in REQUEST_URI. sg_query_get must find
 * what a plain reading of the query finds (the first "name" or "name=..."
 * segment whose name, percent-decoded, is the one asked for; its value
 * percent-decoded, '+' as space) for transport, sid,
 * EIO and the input's first name; the router's answer must be one
 * well-formed CGI response, or a request for the engine (cgi.h). See
 * tests/fuzz/README. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgi.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int hex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode the n bytes at s into out: '+' a space, "%hh" a byte. Its length. */
static size_t model_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
            out[o++] = (char)(hex(s[i + 1]) << 4 | hex(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    out[o] = '\0';
    return o;
}

/* The model: the value of the first segment whose decoded name is name,
 * decoded into out (as long as q), or -1. */
static long model_get(const char *q, const char *name, char *out)
{
    size_t nl = strlen(name);
    for (const char *seg = q;; ) {
        size_t sl = strcspn(seg, "&"), kl = strcspn(seg, "=&");
        if (model_decode(seg, kl, out) == nl && memcmp(out, name, nl) == 0) {
            const char *v = kl < sl ? seg + kl + 1 : seg + sl;
            return (long)model_decode(v, (size_t)(seg + sl - v), out);
        }
        if (!seg[sl])
            return -1;
        seg += sl + 1;
    }
}

static void check_get(const char *q, const char *name, char *scratch)
{
    long n = model_get(q, name, scratch);
    char *v = sg_query_get(q, name);
    if (n < 0 ? v != NULL : v && memcmp(v, scratch, (size_t)n + 1) != 0)
        abort();
    free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "POST", "OPTIONS", "PUT"};
    if (size < 1)
        return 0;
    size_t qlen = strnlen((const char *)data + 1, size - 1);
    char *q = malloc(qlen + 1), *scratch = malloc(qlen + 1);
    char *var_q = malloc(qlen + 16), *var_uri = malloc(qlen + 32), *name = malloc(qlen + 1);
    sg_config cfg;
    cgi_config(&cfg, data[0] >> 2);
    if (!q || !scratch || !var_q || !var_uri || !name)
        goto out;
    memcpy(q, data + 1, qlen);
    q[qlen] = '\0';

    check_get(q, "transport", scratch);
    check_get(q, "sid", scratch);
    check_get(q, "EIO", scratch);
    /* the first name, decoded (up to a %00 in it) */
    if (model_decode(q, strcspn(q, "=&"), name) && *name)
        check_get(q, name, scratch);

    char var_m[32];
    snprintf(var_m, sizeof var_m, "REQUEST_METHOD=%s", methods[data[0] & 3]);
    snprintf(var_q, qlen + 16, "QUERY_STRING=%s", q);
    snprintf(var_uri, qlen + 32, "REQUEST_URI=%s?%s", cfg.path, q);
    char *envp[] = {var_m, var_q, var_uri, "REMOTE_ADDR=127.0.0.1", "CONTENT_LENGTH=5",
                    "HTTP_ORIGIN=https://a.example", NULL};
    sg_fcgi_req r = {.id = 1, .envp = envp, .body = SG_BUF_INIT};
    (void)cgi_route(&cfg, &r);
out:
    sg_config_free(&cfg);
    free(q);
    free(scratch);
    free(var_q);
    free(var_uri);
    free(name);
    return 0;
}
