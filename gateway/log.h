/* log.h - one line per event on stderr: "siogate-fcgi[pid]: level: text". */
#ifndef SG_LOG_H
#define SG_LOG_H

enum sg_log_level { SG_LOG_ERROR = 0, SG_LOG_WARN = 1, SG_LOG_INFO = 2, SG_LOG_DEBUG = 3 };

/* Set once at start: program name (borrowed, must outlive the process)
 * and the most verbose level printed (default SG_LOG_INFO). */
void sg_log_init(const char *prog, int level);
void sg_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sg_logv(int level, const char *fmt, __builtin_va_list ap);

#define sg_error(...) sg_log(SG_LOG_ERROR, __VA_ARGS__)
#define sg_warn(...)  sg_log(SG_LOG_WARN, __VA_ARGS__)
#define sg_info(...)  sg_log(SG_LOG_INFO, __VA_ARGS__)
#define sg_debug(...) sg_log(SG_LOG_DEBUG, __VA_ARGS__)

#endif
