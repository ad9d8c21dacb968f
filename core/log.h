/* log: one line per event on stderr, "ts level event key=value ...".
 *
 * Values that come from citizens or providers go through log_kv_str(), which
 * quotes them and escapes control characters, so a message cannot forge a log
 * line. Phone numbers and other contact addresses go through log_mask() at info
 * level. Nothing here knows a secret: callers never pass tokens or passwords. */
#ifndef LOKET_LOG_H
#define LOKET_LOG_H

#include <stddef.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Sets the threshold from "error", "warn", "info" or "debug". Returns 0 or -1. */
int log_set_level(const char *name);
int log_enabled(enum log_level level);

/* Sends every later line to fd instead of stderr (tests keep their own
 * failure messages on stderr this way). The caller owns fd. */
void log_set_fd(int fd);

/* Writes one line: level, event, then fmt (printf-style, expected to be
 * "key=value key=value"). Thread-safe: the line is written with one write(2). */
void log_event(enum log_level level, const char *event, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Quotes s for a key=value log line into out (always NUL-terminated): control
 * characters and quotes are escaped, long values are cut with "...".
 * Returns out. */
const char *log_kv_str(const char *s, char *out, size_t outlen);

/* Masks a contact address for logs below debug level: keeps the first 4 and last
 * 2 characters ("6281********90"). Returns out. */
const char *log_mask(const char *addr, char *out, size_t outlen);

#endif
