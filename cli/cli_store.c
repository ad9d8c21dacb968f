/* cli_store: the operator's commands on the database: `loket stats`,
 * `loket backup`, `loket purge` and `loket agent add|list|disable|enable|passwd`.
 *
 * Each opens its own store handle from the config's [store] section and leaves
 * the SQL to store/. Passwords are read from stdin (without echo on a
 * terminal), hashed with libsodium's crypto_pwhash_str and wiped; they are
 * never printed or logged. Every change is written to the audit log as
 * "cli:<unix user>". */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "cli/cli.h"
#include "store/store.h"

#define DAY_MS 86400000LL
#define PW_MIN_CHARS 8
#define PW_MAX_BYTES 1024

/* ---- shared ---- */

typedef struct store_args {
	const char *config;
	int json;
	const char *since, *from, *to, *older_than, *role;
	const char *pos[3];
	int n_pos;
} store_args;

/* Parses argv[first..]: -c FILE, the options a command allows (a NULL-ended
 * list of names) and up to 3 positional arguments. 0 or -1 (message printed). */
static int parse(int argc, char **argv, int first, const char *const *allowed, store_args *a)
{
	memset(a, 0, sizeof *a);
	for (int i = first; i < argc; i++) {
		const char *o = argv[i];
		const char **slot = NULL;
		int allowed_here = 0;
		for (const char *const *p = allowed; *p; p++)
			if (strcmp(*p, o) == 0)
				allowed_here = 1;
		if (strcmp(o, "-c") == 0)
			slot = &a->config;
		else if (allowed_here && strcmp(o, "--json") == 0) {
			a->json = 1;
			continue;
		} else if (allowed_here && strcmp(o, "--since") == 0)
			slot = &a->since;
		else if (allowed_here && strcmp(o, "--from") == 0)
			slot = &a->from;
		else if (allowed_here && strcmp(o, "--to") == 0)
			slot = &a->to;
		else if (allowed_here && strcmp(o, "--older-than") == 0)
			slot = &a->older_than;
		else if (allowed_here && strcmp(o, "--role") == 0)
			slot = &a->role;
		if (slot) {
			if (i + 1 >= argc) {
				fprintf(stderr, "loket %s: %s needs a value\n", argv[0], o);
				return -1;
			}
			*slot = argv[++i];
			continue;
		}
		if (o[0] == '-' && o[1]) {
			fprintf(stderr, "loket %s: unknown option %s\n", argv[0], o);
			return -1;
		}
		if (a->n_pos == 3) {
			fprintf(stderr, "loket %s: too many arguments\n", argv[0]);
			return -1;
		}
		a->pos[a->n_pos++] = o;
	}
	return 0;
}

/* A whole decimal number in [min, max], or -1. */
static long long parse_num(const char *s, long long min, long long max)
{
	char *end = NULL;
	if (!s || !*s)
		return -1;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	return v;
}

static store *open_store(const cfg *c, int readonly, const char *cmd)
{
	char err[1024];
	store_opts o = {
	    .path = c->store.path,
	    .synchronous_full = strcmp(c->store.synchronous, "FULL") == 0,
	    .busy_timeout_ms = c->store.busy_timeout_ms > 0 ? c->store.busy_timeout_ms : 5000,
	    .readonly = readonly,
	};
	store *s = store_open(&o, err, sizeof err);
	if (!s)
		fprintf(stderr, "loket %s: %s\n", cmd, err);
	return s;
}

/* "cli:<unix user>" for the audit log. */
static void who(char *out, size_t len)
{
	struct passwd *pw = getpwuid(geteuid());
	int n = snprintf(out, len, "cli:%s", pw && pw->pw_name ? pw->pw_name : "unknown");
	if (n < 0 || (size_t)n >= len)
		snprintf(out, len, "cli");
}

/* Prints untrusted text with control characters escaped. */
static void print_safe(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
}

/* ---- stats ---- */

/* Midnight starting YYYY-MM-DD in the office's time zone, in ms; -1 if bad. */
static long long day_start_ms(const char *date, const char *tz)
{
	int y, m, d;
	char tail;
	if (!date || sscanf(date, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || m < 1 || m > 12 || d < 1 || d > 31)
		return -1;
	if (tz && *tz)
		setenv("TZ", tz, 1);
	tzset();
	struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_isdst = -1};
	time_t t = mktime(&tm);
	if (t == (time_t)-1 || tm.tm_mday != d)
		return -1;
	return (long long)t * 1000;
}

static void fmt_day(long long ms, char *out, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	if (!localtime_r(&t, &tm) || strftime(out, len, "%Y-%m-%d %H:%M", &tm) == 0)
		snprintf(out, len, "%lld", ms);
}

static void fmt_wait(double s, char *out, size_t len)
{
	if (s < 120)
		snprintf(out, len, "%.0f s", s);
	else if (s < 7200)
		snprintf(out, len, "%.1f min", s / 60);
	else
		snprintf(out, len, "%.1f h", s / 3600);
}

static int stats_json(const store_stats *st, const store_outbox_counts *oc, long long now, long long from, long long to)
{
	json_t *o = json_object(), *in = json_array(), *un = json_array();
	if (!o || !in || !un)
		goto oom;
	json_object_set_new(o, "from_ms", json_integer(from));
	json_object_set_new(o, "to_ms", json_integer(to));
	json_object_set_new(o, "inbound", json_integer(st->inbound));
	json_object_set_new(o, "outbound", json_integer(st->outbound));
	json_object_set_new(o, "fallbacks", json_integer(st->fallbacks));
	json_object_set_new(o, "conversations", json_integer(st->conversations));
	json_object_set_new(o, "escalations", json_integer(st->escalations));
	json_object_set_new(o, "claimed", json_integer(st->claimed));
	json_object_set_new(o, "wait_p50_s", json_real(st->wait_p50_s));
	json_object_set_new(o, "wait_p90_s", json_real(st->wait_p90_s));
	json_object_set_new(o, "wait_max_s", json_real(st->wait_max_s));
	json_object_set_new(o, "dead_letters", json_integer(st->dead_letters));
	json_object_set_new(o, "outbox_waiting", json_integer(oc->pending + oc->leased));
	json_object_set_new(o, "outbox_oldest_age_s",
			    json_integer(oc->oldest_pending_ms ? (now - oc->oldest_pending_ms) / 1000 : 0));
	json_object_set_new(o, "ratings", json_integer(st->ratings));
	json_object_set_new(o, "rating_avg", json_real(st->rating_avg));
	for (size_t i = 0; i < st->n_intents; i++)
		json_array_append_new(in, json_pack("{s:s, s:I}", "intent", st->intents[i].key, "count",
						    (json_int_t)st->intents[i].count));
	for (size_t i = 0; i < st->n_unmatched; i++) {
		/* A truncated text may not be valid UTF-8: jansson then refuses it. */
		json_t *t = json_string(st->unmatched[i].key);
		json_array_append_new(un, json_pack("{s:o, s:I}", "text", t ? t : json_null(), "count",
						    (json_int_t)st->unmatched[i].count));
	}
	json_object_set_new(o, "intents", in);
	json_object_set_new(o, "unmatched", un);
	char *txt = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(o);
	if (!txt)
		return 1;
	printf("%s\n", txt);
	free(txt);
	return 0;
oom:
	json_decref(o);
	json_decref(in);
	json_decref(un);
	return 1;
}

static void stats_text(const store_stats *st, const store_outbox_counts *oc, long long now, long long from,
		       long long to, const char *tz)
{
	char a[64], b[64], w50[32], w90[32], wmax[32];
	fmt_day(from, a, sizeof a);
	fmt_day(to, b, sizeof b);
	printf("loket stats from %s to %s (%s)\n\n", a, b, tz && *tz ? tz : "local time");
	printf("  messages in       %lld\n", (long long)st->inbound);
	printf("  messages out      %lld\n", (long long)st->outbound);
	printf("  not understood    %lld", (long long)st->fallbacks);
	if (st->inbound)
		printf(" (%.1f%%)", 100.0 * (double)st->fallbacks / (double)st->inbound);
	printf("\n  conversations     %lld\n", (long long)st->conversations);
	printf("  escalations       %lld, claimed %lld\n", (long long)st->escalations, (long long)st->claimed);
	if (st->claimed) {
		fmt_wait(st->wait_p50_s, w50, sizeof w50);
		fmt_wait(st->wait_p90_s, w90, sizeof w90);
		fmt_wait(st->wait_max_s, wmax, sizeof wmax);
		printf("  wait for an agent median %s, p90 %s, longest %s\n", w50, w90, wmax);
	}
	printf("  undeliverable     %lld\n", (long long)st->dead_letters);
	/* not sent yet, the rows a sender holds included */
	printf("  waiting to send   %lld now", (long long)(oc->pending + oc->leased));
	if (oc->pending + oc->leased && oc->oldest_pending_ms) {
		char age[32];
		fmt_wait((double)(now - oc->oldest_pending_ms) / 1000.0, age, sizeof age);
		printf(", the oldest for %s (loket serve sends them; its log says why not)", age);
	}
	printf("\n");
	if (st->ratings)
		printf("  ratings           %lld, mean %.1f of 5\n", (long long)st->ratings, st->rating_avg);
	printf("\nmost asked intents:\n");
	if (!st->n_intents)
		printf("  (none)\n");
	for (size_t i = 0; i < st->n_intents; i++)
		printf("  %6lld  %s\n", (long long)st->intents[i].count, st->intents[i].key);
	printf("\nmost frequent messages the bot did not understand (write intents for these):\n");
	if (!st->n_unmatched)
		printf("  (none)\n");
	for (size_t i = 0; i < st->n_unmatched; i++) {
		printf("  %6lld  \"", (long long)st->unmatched[i].count);
		print_safe(stdout, st->unmatched[i].key);
		printf("\"\n");
	}
}

int cli_stats(int argc, char **argv)
{
	static const char *const allowed[] = {"--json", "--since", "--from", "--to", NULL};
	store_args a;
	cfg c;
	int rc = 1;
	store *s = NULL;
	if (parse(argc, argv, 1, allowed, &a) < 0 || a.n_pos || (a.since && (a.from || a.to)) || (!a.from != !a.to)) {
		fprintf(stderr,
			"usage: loket stats [-c FILE] [--json] [--since DAYS | --from YYYY-MM-DD --to YYYY-MM-DD]\n");
		return 2;
	}
	if (cli_config_load(a.config, &c) != 0)
		return 1;
	long long now = clock_wall_ms(), from, to;
	if (a.from) {
		from = day_start_ms(a.from, c.office.timezone);
		long long last = day_start_ms(a.to, c.office.timezone);
		if (from < 0 || last < 0 || last < from) {
			fprintf(stderr, "loket stats: --from and --to take dates YYYY-MM-DD, from not after to\n");
			return 2;
		}
		to = day_start_ms(a.to, c.office.timezone) + DAY_MS; /* --to's day is included */
	} else {
		long long days = a.since ? parse_num(a.since, 1, 36500) : 30;
		if (days < 0) {
			fprintf(stderr, "loket stats: --since takes a number of days (1..36500)\n");
			return 2;
		}
		if (c.office.timezone[0])
			setenv("TZ", c.office.timezone, 1);
		tzset();
		from = now - days * DAY_MS;
		to = now + 1;
	}
	if (!(s = open_store(&c, 1, "stats")))
		return 1;
	store_stats st;
	int src = store_stats_get(s, from, to, &st);
	if (src != STORE_OK) {
		fprintf(stderr, "loket stats: %s: %s\n", store_rc_str(src), store_errmsg(s));
		goto out;
	}
	store_outbox_counts oc;
	if ((src = store_outbox_counts_get(s, now, &oc)) != STORE_OK) {
		fprintf(stderr, "loket stats: %s: %s\n", store_rc_str(src), store_errmsg(s));
		goto out;
	}
	if (a.json)
		rc = stats_json(&st, &oc, now, from, to);
	else {
		stats_text(&st, &oc, now, from, to, c.office.timezone);
		rc = 0;
	}
out:
	store_close(s);
	return rc;
}

/* ---- backup and purge ---- */

int cli_backup(int argc, char **argv)
{
	static const char *const allowed[] = {NULL};
	store_args a;
	cfg c;
	char err[1024], by[96];
	if (parse(argc, argv, 1, allowed, &a) < 0 || a.n_pos != 1) {
		fprintf(stderr, "usage: loket backup [-c FILE] DEST\n");
		return 2;
	}
	if (cli_config_load(a.config, &c) != 0)
		return 1;
	store *s = open_store(&c, 0, "backup");
	if (!s)
		return 1;
	int rc = store_backup(s, a.pos[0], err, sizeof err);
	if (rc != STORE_OK) {
		fprintf(stderr, "loket backup: %s\n", err);
		store_close(s);
		return 1;
	}
	who(by, sizeof by);
	store_audit(s, by, "backup", a.pos[0], NULL, clock_wall_ms());
	store_close(s);
	struct stat sb;
	if (stat(a.pos[0], &sb) == 0)
		printf("backup written to %s (%lld bytes, mode 0600)\n", a.pos[0], (long long)sb.st_size);
	return 0;
}

int cli_purge(int argc, char **argv)
{
	static const char *const allowed[] = {"--older-than", NULL};
	store_args a;
	cfg c;
	char by[96], detail[64], day[64];
	if (parse(argc, argv, 1, allowed, &a) < 0 || a.n_pos || !a.older_than) {
		fprintf(stderr, "usage: loket purge [-c FILE] --older-than DAYS\n");
		return 2;
	}
	long long days = parse_num(a.older_than, 1, 36500);
	if (days < 0) {
		fprintf(stderr, "loket purge: --older-than takes a number of days (1..36500)\n");
		return 2;
	}
	if (cli_config_load(a.config, &c) != 0)
		return 1;
	store *s = open_store(&c, 0, "purge");
	if (!s)
		return 1;
	long long now = clock_wall_ms(), before = now - days * DAY_MS;
	int64_t n = 0;
	int rc = store_purge(s, before, &n);
	if (rc != STORE_OK) {
		/* Batches already done stay done; running it again finishes the job. */
		fprintf(stderr, "loket purge: %s after %lld messages: %s\n", store_rc_str(rc), (long long)n,
			store_errmsg(s));
		store_close(s);
		return 1;
	}
	who(by, sizeof by);
	snprintf(detail, sizeof detail, "older_than_days=%lld purged=%lld", days, (long long)n);
	store_audit(s, by, "purge", "messages", detail, now);
	store_close(s);
	if (c.office.timezone[0])
		setenv("TZ", c.office.timezone, 1);
	tzset();
	fmt_day(before, day, sizeof day);
	printf("blanked the text of %lld messages from before %s\n", (long long)n, day);
	return 0;
}

/* ---- agents ---- */

/* Reads one line from stdin into buf without echo when it is a terminal.
 * Returns its length, or -1. */
static int read_secret(const char *prompt, char *buf, size_t len)
{
	int tty = isatty(STDIN_FILENO);
	struct termios old, quiet;
	if (tty) {
		fprintf(stderr, "%s", prompt);
		fflush(stderr);
		if (tcgetattr(STDIN_FILENO, &old) == 0) {
			quiet = old;
			quiet.c_lflag &= ~(tcflag_t)ECHO;
			tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
		} else {
			tty = 0;
		}
	}
	char *line = fgets(buf, (int)len, stdin);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (!line)
		return -1;
	size_t n = strlen(buf);
	if (n == len - 1 && buf[n - 1] != '\n')
		return -1; /* longer than we accept */
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	return (int)n;
}

/* Characters (UTF-8 code points) of s. */
static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

/* Reads a password (twice on a terminal) and hashes it into hash. 0 or -1. */
static int new_password_hash(const char *cmd, const char *name, char hash[crypto_pwhash_STRBYTES])
{
	char pw[PW_MAX_BYTES + 2], again[PW_MAX_BYTES + 2], prompt[128];
	int rc = -1;
	snprintf(prompt, sizeof prompt, "Password for %s: ", name);
	if (read_secret(prompt, pw, sizeof pw) < 0) {
		fprintf(stderr, "loket agent %s: no password on stdin (one line, at most %d bytes)\n", cmd,
			PW_MAX_BYTES);
		goto out;
	}
	if (utf8_chars(pw) < PW_MIN_CHARS) {
		fprintf(stderr, "loket agent %s: the password must have at least %d characters\n", cmd, PW_MIN_CHARS);
		goto out;
	}
	if (isatty(STDIN_FILENO)) {
		if (read_secret("Again: ", again, sizeof again) < 0 || strcmp(pw, again) != 0) {
			fprintf(stderr, "loket agent %s: the passwords differ\n", cmd);
			goto out;
		}
	}
	if (crypto_pwhash_str(hash, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
			      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
		fprintf(stderr, "loket agent %s: out of memory while hashing\n", cmd);
		goto out;
	}
	rc = 0;
out:
	sodium_memzero(pw, sizeof pw);
	sodium_memzero(again, sizeof again);
	return rc;
}

static int agent_usage(void)
{
	fprintf(stderr, "usage: loket agent add [-c FILE] NAME [--role agent|admin]   (password on stdin)\n"
			"       loket agent list [-c FILE]\n"
			"       loket agent disable [-c FILE] NAME\n"
			"       loket agent enable [-c FILE] NAME\n"
			"       loket agent passwd [-c FILE] NAME   (password on stdin)\n");
	return 2;
}

static int agent_list(store *s)
{
	store_agent *v = NULL;
	size_t n = 0;
	int rc = store_agent_list(s, &v, &n);
	if (rc != STORE_OK) {
		fprintf(stderr, "loket agent list: %s: %s\n", store_rc_str(rc), store_errmsg(s));
		return 1;
	}
	printf("%-24s %-6s %-9s %s\n", "NAME", "ROLE", "STATUS", "CREATED");
	for (size_t i = 0; i < n; i++) {
		char day[64];
		fmt_day(v[i].created_ms, day, sizeof day);
		printf("%-24s %-6s %-9s %s\n", v[i].name, v[i].role, v[i].disabled ? "disabled" : "active", day);
	}
	free(v);
	return 0;
}

int cli_agent(int argc, char **argv)
{
	static const char *const allowed[] = {"--role", NULL};
	store_args a;
	cfg c;
	char by[96], hash[crypto_pwhash_STRBYTES], object[STORE_AGENT_MAX + 8];
	int rc = 1, src;
	store *s = NULL;
	if (argc < 2)
		return agent_usage();
	const char *cmd = argv[1];
	int is_add = strcmp(cmd, "add") == 0, is_list = strcmp(cmd, "list") == 0;
	int is_disable = strcmp(cmd, "disable") == 0, is_enable = strcmp(cmd, "enable") == 0;
	int is_passwd = strcmp(cmd, "passwd") == 0;
	if (!(is_add || is_list || is_disable || is_enable || is_passwd))
		return agent_usage();
	if (parse(argc, argv, 2, allowed, &a) < 0 || (is_list ? a.n_pos != 0 : a.n_pos != 1) || (a.role && !is_add))
		return agent_usage();
	const char *name = a.n_pos ? a.pos[0] : NULL;
	const char *role = a.role ? a.role : "agent";
	if (is_add && strcmp(role, "agent") != 0 && strcmp(role, "admin") != 0) {
		fprintf(stderr, "loket agent add: --role is agent or admin\n");
		return 2;
	}
	if (name && (!*name || strlen(name) >= STORE_AGENT_MAX)) {
		fprintf(stderr, "loket agent %s: the name must have 1 to %d bytes\n", cmd, STORE_AGENT_MAX - 1);
		return 2;
	}
	if (cli_config_load(a.config, &c) != 0)
		return 1;
	if (sodium_init() < 0) {
		fprintf(stderr, "loket agent: libsodium failed to start\n");
		return 1;
	}
	if (!(s = open_store(&c, 0, "agent")))
		return 1;
	if (is_list) {
		rc = agent_list(s);
		goto out;
	}
	long long now = clock_wall_ms();
	store_agent existing;
	src = store_agent_get(s, name, &existing);
	if (is_add && src == STORE_OK) {
		fprintf(stderr, "loket agent add: an agent named %s exists\n", name);
		goto out;
	}
	if (!is_add && src != STORE_OK) {
		fprintf(stderr, "loket agent %s: %s\n", cmd,
			src == STORE_ERR_NOTFOUND ? "no such agent" : store_errmsg(s));
		goto out;
	}
	if ((is_add || is_passwd) && new_password_hash(cmd, name, hash) < 0)
		goto out;
	if (is_add)
		src = store_agent_add(s, name, role, hash, now);
	else if (is_passwd)
		src = store_agent_set_pwhash(s, name, hash, now);
	else
		src = store_agent_set_disabled(s, name, is_disable, now);
	sodium_memzero(hash, sizeof hash);
	if (src != STORE_OK) {
		fprintf(stderr, "loket agent %s: %s: %s\n", cmd, store_rc_str(src), store_errmsg(s));
		goto out;
	}
	who(by, sizeof by);
	snprintf(object, sizeof object, "agent:%s", name);
	char what[32];
	snprintf(what, sizeof what, "agent_%s", cmd);
	store_audit(s, by, what, object, is_add ? role : NULL, now);
	printf("agent %s: %s\n", name,
	       is_add	    ? "added"
	       : is_passwd  ? "password changed"
	       : is_disable ? "disabled"
			    : "enabled");
	rc = 0;
out:
	store_close(s);
	return rc;
}
