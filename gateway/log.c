/* log.c - one line per event on stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static const char *log_prog = "siogate";
static int log_level = SG_LOG_INFO;

void sg_log_init(const char *prog, int level)
{
    log_prog = prog;
    log_level = level;
}

void sg_logv(int level, const char *fmt, va_list ap)
{
    static const char *names[] = {"error", "warning", "info", "debug"};
    if (level > log_level)
        return;
    if (level < 0 || level > SG_LOG_DEBUG)
        level = SG_LOG_ERROR;
    char line[2048];
    int n = snprintf(line, sizeof line, "%s[%ld]: %s: ", log_prog, (long)getpid(), names[level]);
    if (n < 0)
        return;
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    /* one line per message whatever it quotes: a control byte from a
     * client (a namespace, a path) must not start a forged log line */
    for (size_t i = (size_t)n; i < len; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            line[i] = '?';
    line[len++] = '\n';
    /* one write(2) per line, so lines of concurrent threads never interleave */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void sg_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sg_logv(level, fmt, ap);
    va_end(ap);
}
