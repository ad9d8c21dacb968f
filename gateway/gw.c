/* gw: `loket serve`: start-up, signals, the event loop and an orderly stop.
 *
 * Start-up opens the store once (creating or migrating the file, fatal when it
 * cannot), loads the intent set, starts the sender, binds the server, then
 * starts the writer. SIGTERM and SIGINT are blocked in every thread and taken
 * by a small signal thread with sigtimedwait, which only sets a flag and wakes
 * the loop; after a signal it keeps waking the loop every 100 ms so the drain
 * below never waits on an idle poll. Stopping answers every new request with
 * 503 and Connection: close, waits (up to 10 s) until every
 * request taken has been committed and answered, closes the connections,
 * stops the sender with a 5 s drain (the writer, still running, records its
 * last outcomes), then the writer. The threads and queues are described in
 * docs/gateway.md. */
#include "core/clock.h"
#include "gateway/gw.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/log.h"
#include "gateway/gw_metrics.h"
#include "gateway/gw_sender.h"
#include "gateway/gw_server.h"
#include "gateway/gw_writer.h"
#include "store/store.h"

#define GW_DRAIN_MS 10000 /* how long a stop waits for requests in flight */
#define GW_SENDER_DRAIN_MS 5000

typedef struct gw_sig {
	sigset_t set;
	gw_server *srv;
	int stops; /* signals received (atomic) */
	int quit;  /* the thread should end (atomic) */
} gw_sig;

static void *gw_sig_main(void *arg)
{
	gw_sig *g = arg;
	pthread_setname_np(pthread_self(), "loket-signals");

	while (!__atomic_load_n(&g->quit, __ATOMIC_ACQUIRE)) {
		struct timespec ts = {0, 100 * 1000 * 1000};
		int sig = sigtimedwait(&g->set, NULL, &ts);

		if (sig > 0) {
			int n = __atomic_add_fetch(&g->stops, 1, __ATOMIC_ACQ_REL);

			log_event(LOG_INFO, "signal", "signal=%s count=%d", sig == SIGTERM ? "TERM" : "INT", n);
		}
		if (__atomic_load_n(&g->stops, __ATOMIC_ACQUIRE))
			gw_server_wake(g->srv);
	}
	return NULL;
}

/* The directory /console/ and /chat/ are served from: console/ in the working
 * directory, like the default store and intents paths. */
static void gw_console_dir(char *out, size_t outlen)
{
	char buf[PATH_MAX];

	if (realpath("console", buf)) {
		if ((size_t)snprintf(out, outlen, "%s", buf) < outlen)
			return;
	}
	log_event(LOG_WARN, "console_missing", "dir=console detail=\"/chat/ and /console/ will answer 404\"");
	if ((size_t)snprintf(out, outlen, "%s", "console") >= outlen)
		out[0] = '\0';
}

int gw_serve(const cfg *c, const char *config_path)
{
	gw_sig sig;
	pthread_t sig_thread;
	int sig_started = 0, rc = 1;
	sigset_t old;
	bot_set *set = NULL;
	store *st = NULL;
	gw_metrics *metrics = NULL;
	gw_sender *sender = NULL;
	gw_server *srv = NULL;
	gw_writer *writer = NULL;
	char err[512] = "", console[PATH_MAX], q[600];
	store_opts so;
	int64_t deadline;

	if (c->log.level[0] && log_set_level(c->log.level) != 0)
		log_event(LOG_WARN, "config", "detail=\"unknown log.level, keeping info\"");
	if (sodium_init() < 0) {
		log_event(LOG_ERROR, "fatal", "detail=\"libsodium cannot start\"");
		return 1;
	}

	/* Every thread started from here on inherits the blocked signals. */
	memset(&sig, 0, sizeof(sig));
	sigemptyset(&sig.set);
	sigaddset(&sig.set, SIGTERM);
	sigaddset(&sig.set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sig.set, &old);
	signal(SIGPIPE, SIG_IGN);

	memset(&so, 0, sizeof(so));
	so.path = c->store.path;
	so.synchronous_full = strcmp(c->store.synchronous, "NORMAL") != 0;
	so.busy_timeout_ms = c->store.busy_timeout_ms;
	st = store_open(&so, err, sizeof(err));
	if (!st) {
		fprintf(stderr, "loket serve: cannot open the store %s: %s\n", c->store.path, err);
		log_event(LOG_ERROR, "fatal", "what=store path=%s detail=%s", log_kv_str(c->store.path, q, 200),
			  log_kv_str(err, q + 200, sizeof(q) - 200));
		goto out;
	}
	set = cli_bot_load(c, NULL);
	if (!set) {
		fprintf(stderr, "loket serve: the intents in %s do not load (run `loket check`)\n", c->bot.intents);
		log_event(LOG_ERROR, "fatal", "what=intents dir=%s", log_kv_str(c->bot.intents, q, sizeof(q)));
		goto out;
	}
	metrics = gw_metrics_new();
	if (!metrics) {
		log_event(LOG_ERROR, "fatal", "what=oom");
		goto out;
	}
	sender = gw_sender_start(c, 0, err, sizeof(err));
	if (!sender) {
		fprintf(stderr, "loket serve: the sender does not start: %s\n", err);
		log_event(LOG_ERROR, "fatal", "what=sender detail=%s", log_kv_str(err, q, sizeof(q)));
		goto out;
	}
	gw_console_dir(console, sizeof(console));
	{
		gw_server_opts o = {.c = c, .console_dir = console, .metrics = metrics, .sender = sender, .ro = st};

		srv = gw_server_new(&o, err, sizeof(err));
	}
	if (!srv) {
		fprintf(stderr, "loket serve: %s\n", err);
		log_event(LOG_ERROR, "fatal", "what=listen detail=%s", log_kv_str(err, q, sizeof(q)));
		goto out;
	}
	{
		gw_writer_opts wo = {
		    .c = c, .set = set, .metrics = metrics, .sender = sender, .wake = gw_server_wake, .wake_arg = srv};

		writer = gw_writer_start(&wo, err, sizeof(err));
	}
	if (!writer) {
		fprintf(stderr, "loket serve: %s\n", err);
		log_event(LOG_ERROR, "fatal", "what=writer detail=%s", log_kv_str(err, q, sizeof(q)));
		goto out;
	}
	gw_server_set_writer(srv, writer);
	sig.srv = srv;
	if (pthread_create(&sig_thread, NULL, gw_sig_main, &sig) != 0) {
		log_event(LOG_ERROR, "fatal", "what=signal_thread");
		goto out;
	}
	sig_started = 1;

	log_event(LOG_INFO, "serve_start",
		  "listen=%s store=%s synchronous=%s intents=%zu config=%s whatsapp=%s signed_webhooks=%d",
		  c->server.listen, log_kv_str(c->store.path, q, 200), c->store.synchronous, bot_set_intent_count(set),
		  log_kv_str(config_path ? config_path : "(defaults)", q + 200, 200),
		  c->whatsapp.access_token[0] && c->whatsapp.phone_number_id[0] ? "live" : "sandbox",
		  c->whatsapp.app_secret[0] != 0);

	while (!__atomic_load_n(&sig.stops, __ATOMIC_ACQUIRE))
		if (gw_server_service(srv) < 0) {
			log_event(LOG_ERROR, "loop_failed", "detail=\"lws_service failed\"");
			break;
		}

	/* ---- stop: take nothing new, answer what was taken ---- */
	log_event(LOG_INFO, "serve_draining", "waiting=%zu queued=%zu", gw_server_waiting(srv),
		  gw_writer_pending(writer));
	gw_server_drain_begin(srv);
	deadline = clock_mono_ms() + GW_DRAIN_MS;
	while ((gw_writer_pending(writer) || gw_server_waiting(srv)) && clock_mono_ms() < deadline &&
	       __atomic_load_n(&sig.stops, __ATOMIC_ACQUIRE) < 3)
		if (gw_server_service(srv) < 0)
			break;
	if (gw_writer_pending(writer) || gw_server_waiting(srv))
		log_event(LOG_WARN, "serve_drain_incomplete", "waiting=%zu queued=%zu", gw_server_waiting(srv),
			  gw_writer_pending(writer));
	rc = 0;
out:
	if (sig_started) {
		__atomic_store_n(&sig.quit, 1, __ATOMIC_RELEASE);
		pthread_join(sig_thread, NULL);
	}
	gw_server_close(srv);
	/* the sender first: the writer records its last outcomes */
	gw_sender_stop(sender, GW_SENDER_DRAIN_MS);
	gw_writer_stop(writer);
	gw_server_free(srv);
	gw_sender_free(sender);
	gw_metrics_free(metrics);
	bot_set_free(set);
	store_close(st);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)
		log_event(LOG_INFO, "serve_stop", "exit=0");
	return rc;
}
