/* log.h - one line per event on stderr: "siogate-fcgi[pid]: level: text".
 * Control bytes in the text (a client's namespace or path quoted in it)
 * are written as '?', so one event is always one line.
 *
 * What is logged: at the default level (info) siogate never logs what
 * clients send (event names and arguments, CONNECT auth, query strings,
 * headers, cookies); errors name the session id, the client's address and
 * the request path, and a namespace a client asked for. Payload-free
 * debug lines come with --verbose. Plugins log through host->log and are
 * responsible for what they write. */
#ifndef SG_LOG_H
#define SG_LOG_H

enum sg_log_level { SG_LOG_ERROR = 0, SG_LOG_WARN = 1, SG_LOG_INFO = 2, SG_LOG_DEBUG = 3 };

/* Set once at start: program name (borrowed, must outlive the process)
 * and the most verbose level printed (default SG_LOG_INFO). */
void sg_log_init(const char *prog, int level);
void sg_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sg_logv(int level, const char *fmt, __builtin_va_list ap);

/* A session id is a bearer credential: whoever has it can poll the
 * session's packets. Error, warning and info lines show its first six
 * characters (36 bits: enough to tell sessions apart in a log, not to
 * take one over) as "session " SG_SID_FMT; debug lines, off by default,
 * may show all of it. */
#define SG_SID_FMT "%.6s.."

#define sg_error(...) sg_log(SG_LOG_ERROR, __VA_ARGS__)
#define sg_warn(...)  sg_log(SG_LOG_WARN, __VA_ARGS__)
#define sg_info(...)  sg_log(SG_LOG_INFO, __VA_ARGS__)
#define sg_debug(...) sg_log(SG_LOG_DEBUG, __VA_ARGS__)

#endif
