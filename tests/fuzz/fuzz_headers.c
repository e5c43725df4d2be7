/* fuzz_headers.c - fuzz target for what the gateway reads from the
 * FastCGI parameters: the HTTP headers handed to plugins
 * (sg_http_headers_new), the request path (sg_http_path), Origin and
 * Access-Control-Request-Headers in the CORS answers
 * (sg_http_cors_headers), and siogate-fcgi's router (route.h) on all of
 * them.
 *
 * The first byte of the input picks the configuration (cgi.h) and, in its
 * top bit, whether the body was too large; the rest
 * is cut at each LF or NUL into parameters ("NAME=value"; a line without
 * '=' is dropped, as fcgi.c never makes one). After them come defaults
 * for a handshake (REQUEST_METHOD=GET, the query, REQUEST_URI), which a
 * parameter of the input shadows (the first one counts).
 *
 * Invariants (any broken one aborts): the headers are exactly the HTTP_*
 * parameters (but HTTP_CONTENT_TYPE and HTTP_CONTENT_LENGTH) and
 * CONTENT_TYPE and CONTENT_LENGTH, in order, named in lower case with '-'
 * for '_', with their values; the path is a prefix of REQUEST_URI,
 * DOCUMENT_URI or SCRIPT_NAME without '?'; the CORS lines and the
 * router's answer are well-formed CGI (cgi.h). See tests/fuzz/README. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cgi.h"
#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_VARS = 200 };

static const char *value_of(char **envp, const char *name)
{
    size_t n = strlen(name);
    for (char **e = envp; *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

/* The model of sg_http_headers_new for one variable: its header name
 * (into name) or 0. */
static int model_header(const char *var, char *name)
{
    size_t n = (size_t)(strchr(var, '=') - var);
    const char *s;
    if ((n == 17 && strncmp(var, "HTTP_CONTENT_TYPE", 17) == 0) ||
        (n == 19 && strncmp(var, "HTTP_CONTENT_LENGTH", 19) == 0))
        return 0;
    if (n > 5 && strncmp(var, "HTTP_", 5) == 0) {
        s = var + 5;
        n -= 5;
    } else if ((n == 12 && strncmp(var, "CONTENT_TYPE", 12) == 0) ||
               (n == 14 && strncmp(var, "CONTENT_LENGTH", 14) == 0)) {
        s = var;
    } else {
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        name[i] = s[i] == '_' ? '-' : (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : s[i];
    name[n] = '\0';
    return 1;
}

static void check_headers(char **envp, char *scratch)
{
    char **h = sg_http_headers_new(&(sg_fcgi_req){.envp = envp});
    if (!h)
        return; /* ENOMEM */
    size_t k = 0;
    for (char **e = envp; *e; e++) {
        if (!model_header(*e, scratch))
            continue;
        if (!h[k] || !h[k + 1] || strcmp(h[k], scratch) != 0 ||
            strcmp(h[k + 1], strchr(*e, '=') + 1) != 0)
            abort();
        k += 2;
    }
    if (h[k])
        abort();
    free(h);
}

static void check_path(const sg_fcgi_req *r)
{
    const char *path;
    size_t len;
    if (sg_http_path(r, &path, &len) < 0) {
        const char *u = value_of(r->envp, "REQUEST_URI"), *d = value_of(r->envp, "DOCUMENT_URI"),
                   *s = value_of(r->envp, "SCRIPT_NAME");
        if ((u && *u) || (d && *d) || (s && *s))
            abort();
        return;
    }
    if (memchr(path, '?', len) || (path[len] != '\0' && path[len] != '?'))
        abort();
    (void)sg_http_path_ok(path, len, "/socket.io/");
}

static void check_cors(const sg_config *cfg, const sg_fcgi_req *r)
{
    for (int preflight = 0; preflight < 2; preflight++) {
        sg_buf out = SG_BUF_INIT;
        if (sg_buf_puts(&out, "Status: 200 OK\r\nContent-Length: 0\r\n") == 0 &&
            sg_http_cors_headers(cfg, sg_http_param(r, "HTTP_ORIGIN"), preflight,
                                 sg_http_param(r, "HTTP_ACCESS_CONTROL_REQUEST_HEADERS"),
                                 &out) == 0 &&
            sg_buf_puts(&out, "\r\n") == 0)
            cgi_check_answer(out.data, out.len);
        sg_buf_free(&out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char defaults[][64] = {
        "REQUEST_METHOD=GET", "QUERY_STRING=EIO=4&transport=polling",
        "REQUEST_URI=/socket.io/?EIO=4&transport=polling", "REMOTE_ADDR=127.0.0.1"};
    enum { NDEF = sizeof defaults / sizeof defaults[0] };
    if (size < 1)
        return 0;
    sg_config cfg;
    cgi_config(&cfg, data[0]);
    char *text = malloc(size), *scratch = malloc(size + 1);
    char *envp[MAX_VARS + NDEF + 1];
    size_t n = 0;
    if (!text || !scratch)
        goto out;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    for (char *p = text; p < text + size - 1 && n < MAX_VARS;) {
        size_t l = strcspn(p, "\n");
        p[l] = '\0';
        if (strchr(p, '='))
            envp[n++] = p;
        p += l + 1;
    }
    for (size_t i = 0; i < NDEF; i++)
        envp[n++] = defaults[i];
    envp[n] = NULL;

    /* the top bit: the body went beyond max_payload (a 413 for a POST) */
    sg_fcgi_req r = {.id = 1, .envp = envp, .body = SG_BUF_INIT, .too_large = data[0] & 0x80};
    check_headers(envp, scratch);
    check_path(&r);
    check_cors(&cfg, &r);
    (void)cgi_route(&cfg, &r);
out:
    sg_config_free(&cfg);
    free(text);
    free(scratch);
    return 0;
}
