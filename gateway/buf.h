/* buf.h - growable byte buffer, always NUL-terminated.
 *
 * An sg_buf owns its data. All appenders return 0 on success and -1 when
 * memory runs out (the buffer is left as it was). */
#ifndef SG_BUF_H
#define SG_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct sg_buf {
    char *data;   /* NUL-terminated when non-NULL; owned */
    size_t len;   /* bytes used, not counting the terminator */
    size_t cap;
} sg_buf;

#define SG_BUF_INIT {NULL, 0, 0}

void sg_buf_init(sg_buf *b);
void sg_buf_free(sg_buf *b);
/* Keep the allocation, forget the contents. */
void sg_buf_reset(sg_buf *b);
int sg_buf_reserve(sg_buf *b, size_t extra);
int sg_buf_append(sg_buf *b, const void *p, size_t n);
int sg_buf_puts(sg_buf *b, const char *s);
int sg_buf_putc(sg_buf *b, char c);
int sg_buf_printf(sg_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append x in decimal (what "%" PRId64 prints, without printf's cost). */
int sg_buf_put_i64(sg_buf *b, int64_t x);
/* Returns the data (new, caller frees; "" when empty) and resets b. NULL on ENOMEM. */
char *sg_buf_steal(sg_buf *b);
/* The contents as a C string (borrowed; "" when empty). */
const char *sg_buf_str(const sg_buf *b);

#endif
