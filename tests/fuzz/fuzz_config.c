/* fuzz_config.c - fuzz target for the configuration parser (gateway/config.h).
 *
 * The input, as text (up to its first NUL), is parsed over the defaults
 * (sg_config_parse). On error the message must name the file and the
 * configuration must be left as it was; on success the documented ranges
 * must hold, and parsing the same text again over the result must succeed
 * too (single keys may repeat across files, "plugin" lines are appended).
 * Everything is released with sg_config_free. See tests/fuzz/README. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NAME "fuzz.conf"

static int str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static int same(const sg_config *a, const sg_config *b, int plugins)
{
    if (!str_eq(a->db, b->db) || !str_eq(a->path, b->path) ||
        !str_eq(a->cors_origin, b->cors_origin) || a->ping_interval != b->ping_interval ||
        a->ping_timeout != b->ping_timeout || a->connect_timeout != b->connect_timeout ||
        a->max_payload != b->max_payload)
        return 0;
    if (!plugins)
        return 1;
    if (a->nplugins != b->nplugins)
        return 0;
    for (size_t i = 0; i < a->nplugins; i++)
        if (!str_eq(a->plugins[i], b->plugins[i]))
            return 0;
    return 1;
}

static void check_ranges(const sg_config *c)
{
    size_t pl = c->path ? strlen(c->path) : 0;
    if (!c->db || !c->path || pl == 0 || c->path[0] != '/' || c->path[pl - 1] != '/')
        abort();
    if (c->ping_interval < 1 || c->ping_interval > 86400000 || c->ping_timeout < 1 ||
        c->ping_timeout > 86400000 || c->connect_timeout < 1 ||
        c->connect_timeout > 86400000 || c->max_payload < 1 || c->max_payload > 1073741824)
        abort();
    for (size_t i = 0; i < c->nplugins; i++)
        if (!c->plugins[i])
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sg_config c, ref, again;
    char err[256];
    char *text = malloc(size + 1);
    int have_c = 0, have_ref = 0, have_again = 0;

    if (!text)
        return 0;
    if (size)
        memcpy(text, data, size);
    text[size] = '\0';
    if (sg_config_defaults(&c) < 0 || !(have_c = 1) || sg_config_defaults(&ref) < 0)
        goto out;
    have_ref = 1;

    if (sg_config_parse(&c, NAME, text, err, sizeof err) < 0) {
        if (strncmp(err, NAME, strlen(NAME)) != 0)
            abort(); /* the message names the file */
        if (!same(&c, &ref, 1))
            abort(); /* left as it was */
        goto out;
    }
    check_ranges(&c);

    /* the same text over the result: same values, plugins twice */
    if (sg_config_defaults(&again) < 0)
        goto out;
    have_again = 1;
    if (sg_config_parse(&again, NAME, text, err, sizeof err) < 0)
        goto out; /* ENOMEM: the text was accepted once already */
    if (sg_config_parse(&again, NAME, text, err, sizeof err) < 0) {
        if (strstr(err, "memory"))
            goto out;
        abort();
    }
    check_ranges(&again);
    if (!same(&c, &again, 0) || again.nplugins != 2 * c.nplugins)
        abort();
out:
    if (have_c)
        sg_config_free(&c);
    if (have_ref)
        sg_config_free(&ref);
    if (have_again)
        sg_config_free(&again);
    free(text);
    return 0;
}
