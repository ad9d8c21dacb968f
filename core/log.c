/* log: key=value lines on stderr (or a chosen descriptor), escaping and masking of untrusted values. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int log_threshold = LOG_INFO;
static int log_fd = STDERR_FILENO;
static const char *const log_names[] = {"error", "warn", "info", "debug"};

int log_set_level(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(name, log_names[i]) == 0) {
			__atomic_store_n(&log_threshold, i, __ATOMIC_RELAXED);
			return 0;
		}
	return -1;
}

int log_enabled(enum log_level level)
{
	return (int)level <= __atomic_load_n(&log_threshold, __ATOMIC_RELAXED);
}

void log_set_fd(int fd)
{
	__atomic_store_n(&log_fd, fd, __ATOMIC_RELAXED);
}

void log_event(enum log_level level, const char *event, const char *fmt, ...)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int k;
	va_list ap;

	if (!log_enabled(level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	k = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
		     log_names[level], event);
	if (k < 0)
		return;
	n = (size_t)k < sizeof(line) ? (size_t)k : sizeof(line) - 1;
	va_start(ap, fmt);
	k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (k > 0)
		n += (size_t)k < sizeof(line) - n ? (size_t)k : sizeof(line) - n - 1;
	/* The formatted values were escaped by log_kv_str; a stray newline in fmt
	 * itself would still split the line, so flatten any that slipped in. */
	for (size_t i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	if (write(__atomic_load_n(&log_fd, __ATOMIC_RELAXED), line, n) < 0) {
		/* nowhere left to report it */
	}
}

const char *log_kv_str(const char *s, char *out, size_t outlen)
{
	size_t o = 0;
	const size_t reserve = 6; /* closing quote, "...", NUL */

	if (outlen < 8) {
		if (outlen)
			out[0] = '\0';
		return out;
	}
	out[o++] = '"';
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;
		char esc[8];
		size_t el;

		if (ch == '"' || ch == '\\') {
			esc[0] = '\\';
			esc[1] = (char)ch;
			el = 2;
		} else if (ch < 0x20 || ch == 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02x", ch);
			el = 4;
		} else {
			esc[0] = (char)ch;
			el = 1;
		}
		if (o + el + reserve > outlen) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(out + o, esc, el);
		o += el;
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}

const char *log_mask(const char *addr, char *out, size_t outlen)
{
	size_t n = addr ? strlen(addr) : 0;
	size_t o = 0;

	if (outlen == 0)
		return out;
	for (size_t i = 0; i < n && o + 1 < outlen; i++) {
		char ch = addr[i];
		if (log_enabled(LOG_DEBUG) || i < 4 || i + 2 >= n)
			out[o++] = (ch < 0x20 || ch == '"' || ch == '\\' || ch == ' ') ? '?' : ch;
		else
			out[o++] = '*';
	}
	out[o] = '\0';
	return out;
}
