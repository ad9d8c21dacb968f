/* cfg: the configuration table and its INI loader (libinih).
 *
 * One row per key: where it lives in struct cfg, its type, default and bounds.
 * libinih's Debian build passes no line numbers to the handler, so the file is
 * fed through our own line reader, which counts the lines it hands over. */
#include "core/cfg.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum cfg_type { CFG_T_STR, CFG_T_INT, CFG_T_I64 };

struct cfg_key {
	const char *section, *name;
	enum cfg_type type;
	size_t off;
	const char *def;
	int64_t min, max;
};

/* clang-format off */
#define S(sec, key, d) {#sec, #key, CFG_T_STR, offsetof(cfg, sec.key), d, 0, 0}
#define I(sec, key, d, lo, hi) {#sec, #key, CFG_T_INT, offsetof(cfg, sec.key), d, lo, hi}
#define L(sec, key, d, lo, hi) {#sec, #key, CFG_T_I64, offsetof(cfg, sec.key), d, lo, hi}

static const struct cfg_key cfg_keys[] = {
	S(server, listen, "127.0.0.1:8080"),
	S(server, public_url, "http://127.0.0.1:8080"),
	L(server, max_body, "4194304", 1024, 64 * 1024 * 1024),
	S(store, path, "var/loket.db"),
	S(store, synchronous, "FULL"),
	I(store, busy_timeout_ms, "5000", 0, 600000),
	I(store, batch_max, "256", 1, 10000),
	S(bot, intents, "intents"),
	S(bot, language, "id"),
	I(bot, fallbacks_before_escalate, "2", 0, 100),
	I(bot, rate_limit_per_minute, "20", 0, 100000),
	S(office, name, "DPMPPTSP Kabupaten Tabanan"),
	S(office, phone, "(0361) 7991652"),
	S(office, whatsapp, "081239324511"),
	S(office, email, ""),
	S(office, forms_url, "http://dpmptsp.tabanankab.go.id/formulir-pendaftaran-izin"),
	S(office, timezone, "Asia/Makassar"),
	S(office, hours, "Mon-Fri 08:00-15:00"),
	S(office, instagram, "dpmpptsp tabanan"),
	S(office, facebook, "Dpmpptsp Tabanan"),
	S(office, oss_help, "081332327511"),
	S(whatsapp, phone_number_id, ""),
	S(whatsapp, access_token, ""),
	S(whatsapp, app_secret, ""),
	S(whatsapp, verify_token, ""),
	S(whatsapp, api_base, "https://graph.facebook.com/v21.0"),
	I(whatsapp, send_rate, "80", 1, 100000),
	S(twilio, account_sid, ""),
	S(twilio, auth_token, ""),
	S(twilio, from, ""),
	S(twilio, api_base, "https://api.twilio.com"),
	S(kannel, sendsms_url, ""),
	S(kannel, username, ""),
	S(kannel, password, ""),
	S(kannel, secret, ""),
	I(sender, max_attempts, "8", 1, 1000),
	L(sender, backoff_initial_ms, "1000", 1, 86400000),
	L(sender, backoff_max_ms, "300000", 1, 86400000),
	I(sender, timeout_ms, "10000", 100, 600000),
	I(sender, concurrency, "32", 1, 1024),
	I(console, session_hours, "12", 1, 24 * 365),
	S(log, level, "info"),
};

#undef S
#undef I
#undef L
/* clang-format on */

struct cfg_parse {
	cfg *c;
	FILE *f;
	const char *path;
	int line;
	char *err;
	size_t errlen, errused;
	int nerr;
};

static void cfg_err(struct cfg_parse *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	p->nerr++;
	if (p->errused + 1 >= p->errlen)
		return;
	n = snprintf(p->err + p->errused, p->errlen - p->errused, "%s:%d: ", p->path, p->line);
	if (n < 0 || (size_t)n >= p->errlen - p->errused) {
		p->errused = p->errlen - 1;
		return;
	}
	p->errused += (size_t)n;
	va_start(ap, fmt);
	n = vsnprintf(p->err + p->errused, p->errlen - p->errused, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= p->errlen - p->errused) {
		p->errused = p->errlen - 1;
		return;
	}
	p->errused += (size_t)n;
	if (p->errused + 1 < p->errlen) {
		p->err[p->errused++] = '\n';
		p->err[p->errused] = '\0';
	}
}

/* Expands ${NAME} from the environment into out. An unset variable becomes "".
 * Returns 0, or -1 when the result does not fit or a ${ is not closed. */
static int cfg_expand(const char *in, char *out, size_t outlen)
{
	size_t o = 0;

	while (*in) {
		const char *val = NULL;
		size_t vlen = 0;

		if (in[0] == '$' && in[1] == '{') {
			const char *end = strchr(in + 2, '}');
			char name[128];
			size_t nlen;

			if (!end)
				return -1;
			nlen = (size_t)(end - (in + 2));
			if (nlen == 0 || nlen >= sizeof(name))
				return -1;
			memcpy(name, in + 2, nlen);
			name[nlen] = '\0';
			val = getenv(name);
			if (!val)
				val = "";
			vlen = strlen(val);
			in = end + 1;
		} else {
			val = in;
			vlen = 1;
			in++;
		}
		if (o + vlen >= outlen)
			return -1;
		memcpy(out + o, val, vlen);
		o += vlen;
	}
	out[o] = '\0';
	return 0;
}

static int cfg_set(cfg *c, const struct cfg_key *k, const char *value, char *why, size_t whylen)
{
	char buf[CFG_STR_MAX];
	char *end;
	long long v;

	if (cfg_expand(value, buf, sizeof(buf)) != 0) {
		snprintf(why, whylen, "value too long or unclosed ${");
		return -1;
	}
	if (k->type == CFG_T_STR) {
		memcpy((char *)c + k->off, buf, strlen(buf) + 1);
		return 0;
	}
	errno = 0;
	v = strtoll(buf, &end, 10);
	if (errno || end == buf || *end != '\0') {
		snprintf(why, whylen, "expected a whole number, got \"%.64s\"", buf);
		return -1;
	}
	if (v < k->min || v > k->max) {
		snprintf(why, whylen, "%lld is out of range [%lld, %lld]", v, (long long)k->min, (long long)k->max);
		return -1;
	}
	if (k->type == CFG_T_INT)
		*(int *)(void *)((char *)c + k->off) = (int)v;
	else
		*(int64_t *)(void *)((char *)c + k->off) = (int64_t)v;
	return 0;
}

static const struct cfg_key *cfg_find(const char *section, const char *name)
{
	for (size_t i = 0; i < sizeof(cfg_keys) / sizeof(cfg_keys[0]); i++)
		if (strcmp(cfg_keys[i].section, section) == 0 && strcmp(cfg_keys[i].name, name) == 0)
			return &cfg_keys[i];
	return NULL;
}

void cfg_defaults(cfg *c)
{
	char why[256];

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < sizeof(cfg_keys) / sizeof(cfg_keys[0]); i++)
		(void)cfg_set(c, &cfg_keys[i], cfg_keys[i].def, why, sizeof(why));
}

static char *cfg_reader(char *str, int num, void *stream)
{
	struct cfg_parse *p = stream;
	char *r = fgets(str, num, p->f);

	if (r)
		p->line++;
	return r;
}

static int cfg_handler(void *user, const char *section, const char *name, const char *value)
{
	struct cfg_parse *p = user;
	const struct cfg_key *k = cfg_find(section, name);
	char why[256];

	if (!k) {
		if (section[0] == '\0')
			cfg_err(p, "key \"%s\" is outside any [section]", name);
		else
			cfg_err(p, "unknown key \"%s\" in [%s]", name, section);
		return 1; /* keep going: report every problem */
	}
	if (cfg_set(p->c, k, value, why, sizeof(why)) != 0)
		cfg_err(p, "[%s] %s: %s", section, name, why);
	return 1;
}

static int cfg_check(struct cfg_parse *p)
{
	cfg *c = p->c;
	char host[256];
	int port;

	p->line = 0;
	if (cfg_split_listen(c->server.listen, host, sizeof(host), &port) != 0)
		cfg_err(p, "[server] listen: expected host:port, got \"%s\"", c->server.listen);
	if (strcmp(c->store.synchronous, "FULL") != 0 && strcmp(c->store.synchronous, "NORMAL") != 0)
		cfg_err(p, "[store] synchronous: expected FULL or NORMAL, got \"%s\"", c->store.synchronous);
	if (c->sender.backoff_initial_ms > c->sender.backoff_max_ms)
		cfg_err(p, "[sender] backoff_initial_ms is larger than backoff_max_ms");
	if (strcmp(c->log.level, "error") && strcmp(c->log.level, "warn") && strcmp(c->log.level, "info") &&
	    strcmp(c->log.level, "debug"))
		cfg_err(p, "[log] level: expected error, warn, info or debug, got \"%s\"", c->log.level);
	if (strlen(c->bot.language) < 2 || strlen(c->bot.language) > 7)
		cfg_err(p, "[bot] language: expected a language code such as id or en");
	return p->nerr ? -1 : 0;
}

int cfg_load(cfg *c, const char *path, char *err, size_t errlen)
{
	struct cfg_parse p = {.c = c, .path = path, .err = err, .errlen = errlen};
	int rc;

	if (errlen)
		err[0] = '\0';
	cfg_defaults(c);
	if (!path)
		return 0;
	snprintf(c->source, sizeof(c->source), "%s", path);
	p.f = fopen(path, "r");
	if (!p.f) {
		cfg_err(&p, "cannot open: %s", strerror(errno));
		return -1;
	}
	rc = ini_parse_stream(cfg_reader, &p, cfg_handler, &p);
	fclose(p.f);
	if (rc > 0) {
		p.line = rc;
		cfg_err(&p, "not a valid INI line (expected key = value or [section])");
	} else if (rc < 0) {
		cfg_err(&p, "cannot read the file");
	}
	if (p.nerr)
		return -1;
	return cfg_check(&p);
}

int cfg_split_listen(const char *listen, char *host, size_t hostlen, int *port)
{
	const char *colon = strrchr(listen, ':');
	char *end;
	long v;
	size_t hl;

	if (!colon)
		return -1;
	hl = (size_t)(colon - listen);
	if (hl >= hostlen)
		return -1;
	memcpy(host, listen, hl);
	host[hl] = '\0';
	errno = 0;
	v = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end != '\0' || v < 0 || v > 65535)
		return -1;
	*port = (int)v;
	return 0;
}
