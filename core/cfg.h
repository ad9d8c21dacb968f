/* cfg: loket's configuration, read from one INI file with libinih.
 *
 * Every key is one row of a table in cfg.c (section, name, type, default, bounds).
 * A value written ${NAME} is taken from the environment. An unknown key, a bad
 * value or an unset ${NAME} that a key needs is reported as "file:line: message".
 * Without a file, every key has its documented default (config.example repeats
 * them). The struct is plain data: copy it, read it from any thread. */
#ifndef LOKET_CFG_H
#define LOKET_CFG_H

#include <stddef.h>
#include <stdint.h>

#define CFG_STR_MAX 512

typedef char cfg_str[CFG_STR_MAX];

typedef struct cfg {
	struct {
		cfg_str listen;	    /* host:port */
		cfg_str public_url; /* the URL providers call; Twilio signs it */
		int64_t max_body;   /* bytes */
	} server;
	struct {
		cfg_str path;
		cfg_str synchronous; /* NORMAL or FULL */
		int busy_timeout_ms;
		int batch_max; /* inbound messages per commit under load */
	} store;
	struct {
		cfg_str intents;
		cfg_str language;
		int fallbacks_before_escalate;
		int rate_limit_per_minute;
	} bot;
	struct {
		cfg_str name, phone, whatsapp, email, forms_url, timezone, hours;
		cfg_str instagram, facebook, oss_help;
	} office;
	struct {
		cfg_str phone_number_id, access_token, app_secret, verify_token, api_base;
		int send_rate;
	} whatsapp;
	struct {
		cfg_str account_sid, auth_token, from, api_base;
	} twilio;
	struct {
		cfg_str sendsms_url, username, password, secret;
	} kannel;
	struct {
		int max_attempts;
		int64_t backoff_initial_ms, backoff_max_ms;
		int timeout_ms;
		int concurrency;
	} sender;
	struct {
		int session_hours;
	} console;
	struct {
		cfg_str level; /* error, warn, info, debug */
	} log;
	char source[CFG_STR_MAX]; /* the file it came from, or "" for defaults */
} cfg;

/* Fills *c with every default. Never fails. */
void cfg_defaults(cfg *c);

/* Reads path over the defaults. Returns 0, or -1 after writing one
 * "file:line: message" per problem to err (NUL-terminated, truncated to errlen).
 * A NULL path just sets the defaults and returns 0. */
int cfg_load(cfg *c, const char *path, char *err, size_t errlen);

/* Parses "host:port" (host may be empty, "*", a name or an IPv4 address).
 * Returns 0 and fills host (errlen-sized) and *port, or -1. */
int cfg_split_listen(const char *listen, char *host, size_t hostlen, int *port);

#endif
