/* cli_doctor: `loket doctor`, a deployment check that says what to fix, one
 * line each: the config, the intents, the database (writable, mode 0600), the
 * listen address, each channel's credentials (and, unless --offline, whether
 * the WhatsApp Cloud API accepts them), and the web pages. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "gateway/gw_whatsapp.h"
#include "store/store.h"

static int problems;

static void ok(const char *what)
{
	printf("ok    %s\n", what);
}

static void fix(const char *fmt, const char *a, const char *b)
{
	printf("FIX   ");
	printf(fmt, a ? a : "", b ? b : "");
	printf("\n");
	problems++;
}

static void note(const char *fmt, const char *a)
{
	printf("note  ");
	printf(fmt, a ? a : "");
	printf("\n");
}

static void check_listen(const cfg *c)
{
	char host[256];
	int port, fd, one = 1;
	struct sockaddr_in sa;

	if (cfg_split_listen(c->server.listen, host, sizeof(host), &port) != 0) {
		fix("[server] listen \"%s\" is not host:port%s", c->server.listen, NULL);
		return;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (host[0] && strcmp(host, "*") && inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		note("[server] listen host %s is a name: make sure it resolves to this machine", host);
		return;
	}
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		note("%s is in use: fine if `loket serve` is running, else stop what holds it", c->server.listen);
	else
		ok("listen address is free");
	close(fd);
	if (strcmp(host, "127.0.0.1") != 0 && strcmp(host, "localhost") != 0)
		note("listening on %s: put a TLS reverse proxy in front, providers need https", c->server.listen);
}

static void check_store(const cfg *c)
{
	store_opts so = {0};
	char err[512];
	struct stat st;
	store *s;

	so.path = c->store.path;
	so.synchronous_full = strcmp(c->store.synchronous, "FULL") == 0;
	so.busy_timeout_ms = c->store.busy_timeout_ms;
	s = store_open(&so, err, sizeof(err));
	if (!s) {
		fix("database %s cannot be opened: %s", c->store.path, err);
		return;
	}
	if (store_ping(s) != STORE_OK)
		fix("database %s is not writable now (%s)", c->store.path, store_errmsg(s));
	else
		ok("database opens and takes writes");
	store_close(s);
	if (stat(c->store.path, &st) == 0 && (st.st_mode & 077))
		fix("database %s is readable by others: chmod 600 %s", c->store.path, c->store.path);
	if (strcmp(c->store.synchronous, "FULL") != 0)
		note("[store] synchronous = %s: the last commits may be lost on a power cut", c->store.synchronous);
}

#define DOCTOR_ANSWER_MAX 16384

typedef struct doctor_answer {
	char buf[DOCTOR_ANSWER_MAX];
	size_t len;
} doctor_answer;

static size_t doctor_collect(char *data, size_t size, size_t n, void *arg)
{
	doctor_answer *a = arg;
	size_t take = size * n;

	if (take > sizeof(a->buf) - a->len)
		take = sizeof(a->buf) - a->len; /* the rest is not needed */
	memcpy(a->buf + a->len, data, take);
	a->len += take;
	return size * n;
}

/* Asks the Graph API for the configured phone number (the request
 * gw_whatsapp_build_check makes): the one request that tells whether the
 * token works and the id is that token's, without sending anyone a message. */
static void check_whatsapp_live(const cfg *c)
{
	char err[256] = "", id[64];
	struct curl_slist *hdr = NULL;
	doctor_answer *a = NULL;
	gw_request req;
	CURL *e = NULL;
	CURLcode rc;
	long http = 0;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (gw_whatsapp_build_check(c, &req) != 0) {
		note("could not check the WhatsApp token: %s", "out of memory");
		goto out_global;
	}
	for (int i = 0; i < req.n_headers; i++) {
		struct curl_slist *l = curl_slist_append(hdr, req.headers[i]);
		if (!l)
			goto oom;
		hdr = l;
	}
	if (!(a = calloc(1, sizeof(*a))) || !(e = curl_easy_init()))
		goto oom;
	curl_easy_setopt(e, CURLOPT_URL, req.url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, doctor_collect);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, a);
	rc = curl_easy_perform(e);
	if (rc != CURLE_OK) {
		printf("note  could not reach %s to check the token: %s\n", c->whatsapp.api_base,
		       curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &http);
	switch (gw_whatsapp_ops.classify(http, a->buf, a->len, id, sizeof(id), err, sizeof(err))) {
	case GW_SEND_OK:
		ok("the WhatsApp Cloud API accepts the access token for this phone_number_id");
		break;
	case GW_SEND_UNAUTHORIZED:
		fix("the WhatsApp Cloud API refuses [whatsapp] access_token (%s): replies would wait unsent; "
		    "make a new token%s",
		    err, NULL);
		break;
	case GW_SEND_RETRY:
	case GW_SEND_RETRY_LATER:
		printf("note  the WhatsApp Cloud API could not answer the check now (%s): try again later\n", err);
		break;
	default:
		fix("the WhatsApp Cloud API refused the check of [whatsapp] phone_number_id %s (%s)",
		    c->whatsapp.phone_number_id, err);
		break;
	}
	goto out;
oom:
	note("could not check the WhatsApp token: %s", "out of memory");
out:
	curl_slist_free_all(hdr); /* its copies of the header carry the token: curl frees them */
	if (e)
		curl_easy_cleanup(e);
	free(a);
	gw_request_cleanup(&req);
out_global:
	curl_global_cleanup();
}

static void check_channels(const cfg *c, int offline)
{
	if (!c->whatsapp.phone_number_id[0] || !c->whatsapp.access_token[0]) {
		note("WhatsApp runs in sandbox mode (%s): replies are stored, not sent",
		     "set [whatsapp] phone_number_id and access_token");
	} else {
		ok("WhatsApp credentials are set");
		if (!c->whatsapp.app_secret[0])
			fix("[whatsapp] app_secret is empty: anyone could post fake webhooks%s%s", NULL, NULL);
		if (!c->whatsapp.verify_token[0])
			fix("[whatsapp] verify_token is empty: Meta's verification handshake will fail%s%s", NULL,
			    NULL);
		if (strncmp(c->server.public_url, "https://", 8) != 0)
			fix("[server] public_url %s is not https: Meta only calls https webhooks%s",
			    c->server.public_url, NULL);
		if (!offline)
			check_whatsapp_live(c);
	}
	if (!c->office.email[0])
		note("[office] email is empty: replies leave the email line out (%s)", "set OFFICE_EMAIL");
}

int cli_doctor(int argc, char **argv)
{
	const char *path = NULL;
	int offline = 0;
	cfg c;
	bot_set *set;
	struct stat st;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "--offline") == 0) {
			offline = 1;
		} else {
			fprintf(stderr, "usage: loket doctor [-c FILE] [--offline]\n");
			return 2;
		}
	}
	problems = 0;
	if (cli_config_load(path, &c) != 0) {
		printf("FIX   the config file has errors (above)\n");
		return 1;
	}
	ok(path ? "config loads" : "no -c: using the built-in defaults");
	set = cli_bot_load(&c, NULL);
	if (!set)
		fix("intents in %s have errors (above): run loket check%s", c.bot.intents, NULL);
	else
		ok("intents load and pass every check");
	bot_set_free(set);
	check_store(&c);
	check_listen(&c);
	check_channels(&c, offline);
	if (stat("console/chat/index.html", &st) != 0)
		fix("console/chat/index.html is missing: run loket from its installation directory%s%s", NULL, NULL);
	else
		ok("web chat page found");
	printf("%d thing%s to fix\n", problems, problems == 1 ? "" : "s");
	return problems ? 1 : 0;
}
