/* buf.c - growable byte buffer. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sg_buf_init(sg_buf *b) { b->data = NULL; b->len = b->cap = 0; }

void sg_buf_free(sg_buf *b)
{
    free(b->data);
    sg_buf_init(b);
}

void sg_buf_reset(sg_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

int sg_buf_reserve(sg_buf *b, size_t extra)
{
    if (extra > (size_t)-1 / 2 - b->len)
        return -1;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int sg_buf_append(sg_buf *b, const void *p, size_t n)
{
    if (sg_buf_reserve(b, n) < 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int sg_buf_puts(sg_buf *b, const char *s) { return sg_buf_append(b, s, strlen(s)); }

int sg_buf_putc(sg_buf *b, char c) { return sg_buf_append(b, &c, 1); }

int sg_buf_printf(sg_buf *b, const char *fmt, ...)
{
    /* into the room there is, once; measured first only when it is short */
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n >= room) {
        if (sg_buf_reserve(b, (size_t)n) < 0)
            return -1;
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
    return 0;
}

int sg_buf_put_i64(sg_buf *b, int64_t x)
{
    char d[24], *p = d + sizeof d;
    /* in unsigned arithmetic: -INT64_MIN does not fit an int64_t */
    uint64_t u = x < 0 ? 0 - (uint64_t)x : (uint64_t)x;
    do
        *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (x < 0)
        *--p = '-';
    return sg_buf_append(b, p, (size_t)(d + sizeof d - p));
}

char *sg_buf_steal(sg_buf *b)
{
    char *p = b->data;
    if (!p && !(p = calloc(1, 1)))
        return NULL;
    sg_buf_init(b);
    return p;
}

const char *sg_buf_str(const sg_buf *b) { return b->data ? b->data : ""; }
