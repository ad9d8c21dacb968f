/* Tests of the sender thread against tests/integration/provider.py (a fake
 * WhatsApp Cloud API on 127.0.0.1, started here by fork/exec and stopped by
 * PID) and a temporary SQLite store: delivery, order, each failure class, the
 * 24-hour window, the rate limit, stopping with a request in flight, and that
 * the access token never reaches the log. The test_attached_* tests start the
 * sender without a store handle (own_store 0) and play the gateway's writer
 * themselves: their runner only notes that a store turn is wanted, and the
 * test thread runs take / run (inside a round on its own handle) / give:
 * delivery through turns, the durability gate (gw_sender_synced), a failed
 * round, rows leased as they were written, the runner's calls and detaching
 * it, and stopping while outcomes wait for a turn. Run from the repository
 * root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/cfg.h"
#include "core/log.h"
#include "gateway/gw_sender.h"
#include "store/store.h"

#define TOKEN "TESTTOKEN-s3cr3t"
#define PNID "109876543210987"

static pid_t provider_pid = -1;
static int provider_port;
static char tmpdir[256];
static char logpath[300];
static int log_fd = -1;
static int db_counter;
static int in_counter;

/* ---- clocks ---- */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* ---- the provider ---- */

typedef struct buf {
	char *p;
	size_t n;
} buf;

static size_t buf_write(char *d, size_t sz, size_t nm, void *u)
{
	buf *b = u;
	char *p = realloc(b->p, b->n + sz * nm + 1);
	if (!p)
		return 0;
	memcpy(p + b->n, d, sz * nm);
	b->p = p;
	b->n += sz * nm;
	p[b->n] = '\0';
	return sz * nm;
}

/* A request to the provider's control interface; returns the body (malloc'd). */
static char *provider_call(const char *method, const char *path, const char *body)
{
	CURL *e = curl_easy_init();
	char url[128];
	buf b = {NULL, 0};
	long code = 0;

	assert_non_null(e);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", provider_port, path);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
	if (body)
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, buf_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
	if (curl_easy_perform(e) != CURLE_OK)
		fail_msg("provider %s %s: no answer", method, path);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(e);
	if (code != 200)
		fail_msg("provider %s %s: http %ld", method, path, code);
	return b.p ? b.p : strdup("");
}

static void provider_mode(const char *mode, int count)
{
	char body[96];
	if (count > 0)
		snprintf(body, sizeof(body), "{\"mode\":\"%s\",\"count\":%d}", mode, count);
	else
		snprintf(body, sizeof(body), "{\"mode\":\"%s\"}", mode);
	free(provider_call("POST", "/_control", body));
}

static void provider_reset(void)
{
	free(provider_call("POST", "/_reset", ""));
}

/* The recorded requests (a JSON array the caller decrefs). */
static json_t *provider_requests(void)
{
	char *raw = provider_call("GET", "/_requests", NULL);
	json_error_t jerr;
	json_t *j = json_loads(raw, 0, &jerr);
	free(raw);
	assert_true(json_is_array(j));
	return j;
}

static size_t provider_count(void)
{
	json_t *j = provider_requests();
	size_t n = json_array_size(j);
	json_decref(j);
	return n;
}

/* The JSON body of recorded request i. */
static json_t *request_body(json_t *reqs, size_t i)
{
	json_error_t jerr;
	json_t *b = json_loads(json_string_value(json_object_get(json_array_get(reqs, i), "body")), 0, &jerr);
	assert_non_null(b);
	return b;
}

static int group_setup(void **state)
{
	char portfile[300];

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/loket-sender-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(portfile, sizeof(portfile), "%s/port", tmpdir);
	provider_pid = fork();
	if (provider_pid < 0)
		return -1;
	if (provider_pid == 0) {
		execlp("python3", "python3", "tests/integration/provider.py", "--port", "0", "--portfile", portfile,
		       (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200 && !provider_port; i++) {
		FILE *f = fopen(portfile, "r");
		if (f) {
			if (fscanf(f, "%d", &provider_port) != 1)
				provider_port = 0;
			fclose(f);
		}
		if (!provider_port)
			sleep_ms(25);
	}
	if (!provider_port) {
		fprintf(stderr, "the provider did not start (run from the repository root)\n");
		return -1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);

	/* every log line of the run goes to a file, checked for the token at the end
	 * (cmocka's failure messages stay on stderr) */
	snprintf(logpath, sizeof(logpath), "%s/log", tmpdir);
	log_fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (log_fd < 0)
		return -1;
	log_set_fd(log_fd);
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[600];

	(void)state;
	if (log_fd >= 0) {
		log_set_fd(STDERR_FILENO);
		close(log_fd);
	}
	if (provider_pid > 0) {
		kill(provider_pid, SIGTERM);
		waitpid(provider_pid, NULL, 0);
	}
	curl_global_cleanup();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (getenv("LOKET_KEEP_TMP") == NULL && system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return 0;
}

/* ---- store and config ---- */

typedef struct fixture {
	cfg c;
	store *st;
	gw_sender *s;
} fixture;

static void fixture_init(fixture *f)
{
	store_opts o;
	char err[256];

	memset(f, 0, sizeof(*f));
	cfg_defaults(&f->c);
	snprintf(f->c.store.path, sizeof(f->c.store.path), "%s/t%d.db", tmpdir, ++db_counter);
	snprintf(f->c.store.synchronous, sizeof(f->c.store.synchronous), "NORMAL");
	f->c.store.busy_timeout_ms = 2000;
	snprintf(f->c.whatsapp.api_base, sizeof(f->c.whatsapp.api_base), "http://127.0.0.1:%d/v21.0", provider_port);
	snprintf(f->c.whatsapp.phone_number_id, sizeof(f->c.whatsapp.phone_number_id), PNID);
	snprintf(f->c.whatsapp.access_token, sizeof(f->c.whatsapp.access_token), TOKEN);
	f->c.whatsapp.send_rate = 1000;
	f->c.sender.max_attempts = 5;
	f->c.sender.backoff_initial_ms = 50;
	f->c.sender.backoff_max_ms = 400;
	f->c.sender.timeout_ms = 2000;
	f->c.sender.concurrency = 8;
	memset(&o, 0, sizeof(o));
	o.path = f->c.store.path;
	o.busy_timeout_ms = 2000;
	f->st = store_open(&o, err, sizeof(err));
	if (!f->st)
		fail_msg("store_open: %s", err);
	provider_reset();
}

static void fixture_start(fixture *f)
{
	char err[256];
	f->s = gw_sender_start(&f->c, 1, err, sizeof(err));
	if (!f->s)
		fail_msg("gw_sender_start: %s", err);
}

static void fixture_done(fixture *f)
{
	gw_sender_stop(f->s, 1000);
	gw_sender_free(f->s);
	store_close(f->st);
	provider_reset();
}

typedef struct decide_ctx {
	int n;
	const char *texts[STORE_OUT_MAX];
	char payloads[STORE_OUT_MAX][256];
} decide_ctx;

static int decide(void *ctx, size_t index, const store_inbound *in, const store_conv *conv, store_decision *d)
{
	decide_ctx *dc = ctx;

	(void)index;
	(void)in;
	memset(d, 0, sizeof(*d));
	d->next = conv->bot;
	d->n_out = dc->n;
	for (int i = 0; i < dc->n; i++) {
		snprintf(dc->payloads[i], sizeof(dc->payloads[i]), "{\"text\":\"%s\"}", dc->texts[i]);
		d->out[i].text = dc->texts[i];
		d->out[i].payload = dc->payloads[i];
		d->out[i].queue = 1;
	}
	return 0;
}

/* A citizen at address writes on channel at at_ms; the bot answers with the
 * given texts, queued for the sender. Fills res. */
static void inbound(fixture *f, const char *channel, const char *address, int64_t at_ms, int n,
		    const char *const *texts, store_inbound_result *res)
{
	decide_ctx dc;
	store_inbound in;
	char pid[32];
	int rc;

	memset(&dc, 0, sizeof(dc));
	dc.n = n;
	for (int i = 0; i < n; i++)
		dc.texts[i] = texts[i];
	snprintf(pid, sizeof(pid), "wamid.in.%d", ++in_counter);
	memset(&in, 0, sizeof(in));
	in.channel = channel;
	in.address = address;
	in.display_name = "Budi";
	in.provider_id = pid;
	in.kind = "text";
	in.text = "halo";
	in.at_ms = at_ms;
	rc = store_inbound_batch(f->st, &in, 1, decide, &dc, res);
	if (rc != STORE_OK || res->rc != STORE_OK || res->n_out != n)
		fail_msg("store_inbound_batch: rc %d/%d n_out %d: %s", rc, res->rc, res->n_out, store_errmsg(f->st));
}

static void msg_status(fixture *f, int64_t conv, int64_t id, char *out, size_t outlen)
{
	store_msg *msgs = NULL;
	size_t n = 0;

	out[0] = '\0';
	if (store_msgs_since(f->st, conv, 0, 100, &msgs, &n) != STORE_OK)
		return; /* busy: the caller polls again */
	for (size_t i = 0; i < n; i++)
		if (msgs[i].id == id)
			snprintf(out, outlen, "%s", msgs[i].status);
	store_msgs_free(msgs, n);
}

/* Waits up to timeout_ms for message id to reach status want. */
static void wait_status(fixture *f, int64_t conv, int64_t id, const char *want, int timeout_ms)
{
	char st[32] = "";
	int64_t end = now_ms() + timeout_ms;

	while (now_ms() < end) {
		msg_status(f, conv, id, st, sizeof(st));
		if (strcmp(st, want) == 0)
			return;
		sleep_ms(20);
	}
	fail_msg("message %lld: status \"%s\", want \"%s\" (log: %s)", (long long)id, st, want, logpath);
}

/* ---- tests ---- */

static void test_sender_delivers(void **state)
{
	static const char *const texts[] = {"Kantor buka Senin-Jumat 08.00-15.00."};
	fixture f;
	store_inbound_result res;
	json_t *reqs, *r, *h, *b;
	gw_sender_stats st;
	char wamid[64];

	(void)state;
	fixture_init(&f);
	fixture_start(&f);
	inbound(&f, "whatsapp", "6281234567890", now_ms(), 1, texts, &res);
	gw_sender_wake(f.s);
	wait_status(&f, res.conversation_id, res.out_ids[0], "sent", 5000);

	reqs = provider_requests();
	assert_int_equal(json_array_size(reqs), 1);
	r = json_array_get(reqs, 0);
	assert_string_equal(json_string_value(json_object_get(r, "method")), "POST");
	assert_string_equal(json_string_value(json_object_get(r, "path")), "/v21.0/" PNID "/messages");
	h = json_object_get(r, "headers");
	assert_string_equal(json_string_value(json_object_get(h, "Authorization")), "Bearer " TOKEN);
	assert_string_equal(json_string_value(json_object_get(h, "Content-Type")), "application/json");
	b = request_body(reqs, 0);
	assert_string_equal(json_string_value(json_object_get(b, "messaging_product")), "whatsapp");
	assert_string_equal(json_string_value(json_object_get(b, "to")), "6281234567890");
	assert_string_equal(json_string_value(json_object_get(b, "type")), "text");
	assert_string_equal(json_string_value(json_object_get(json_object_get(b, "text"), "body")), texts[0]);
	json_decref(b);
	json_decref(reqs);

	/* the provider's id was kept: its status callback finds the message */
	snprintf(wamid, sizeof(wamid), "wamid.test.1");
	assert_int_equal(store_msg_status(f.st, "whatsapp", "6281234567890", wamid, "delivered", NULL, now_ms()),
			 STORE_OK);
	wait_status(&f, res.conversation_id, res.out_ids[0], "delivered", 1000);

	gw_sender_stats_get(f.s, &st);
	assert_int_equal(st.sent, 1);
	assert_int_equal(st.retried + st.failed + st.dead + st.window_closed, 0);
	assert_int_equal(st.lat_count, 1);
	assert_int_equal(st.lat_bucket[GW_SEND_LAT_BUCKETS], 1); /* cumulative: +Inf holds all */
	assert_int_equal(st.running, 1);
	assert_non_null(gw_sender_lat_bounds());
	fixture_done(&f);
}

static void test_sender_keeps_order(void **state)
{
	static const char *const a[] = {"satu", "dua", "tiga", "empat"};
	static const char *const b[] = {"one", "two"};
	fixture f;
	store_inbound_result ra, rb;
	json_t *reqs;
	const char *seen_a[4];
	size_t na = 0;

	(void)state;
	fixture_init(&f);
	inbound(&f, "whatsapp", "6281111111111", now_ms(), 4, a, &ra);
	inbound(&f, "whatsapp", "6282222222222", now_ms(), 2, b, &rb);
	fixture_start(&f);
	wait_status(&f, ra.conversation_id, ra.out_ids[3], "sent", 5000);
	wait_status(&f, rb.conversation_id, rb.out_ids[1], "sent", 5000);
	for (int i = 0; i < 3; i++)
		wait_status(&f, ra.conversation_id, ra.out_ids[i], "sent", 100);

	reqs = provider_requests();
	assert_int_equal(json_array_size(reqs), 6);
	for (size_t i = 0; i < json_array_size(reqs); i++) {
		json_t *body = request_body(reqs, i);
		if (strcmp(json_string_value(json_object_get(body, "to")), "6281111111111") == 0 && na < 4)
			seen_a[na++] =
			    strdup(json_string_value(json_object_get(json_object_get(body, "text"), "body")));
		json_decref(body);
	}
	assert_int_equal(na, 4);
	for (size_t i = 0; i < 4; i++) {
		if (strcmp(seen_a[i], a[i]) != 0)
			fail_msg("message %zu of the conversation went out as \"%s\", want \"%s\"", i, seen_a[i], a[i]);
		free((char *)seen_a[i]);
	}
	json_decref(reqs);
	fixture_done(&f);
}

/* Many replies across many conversations while another connection keeps
 * committing new ones (as the gateway's writer does): every one is sent once,
 * its outcome recorded (the sender records a loop turn's outcomes in one
 * transaction), and the outbox ends empty. */
static void test_sender_records_many_outcomes(void **state)
{
	static const char *const two[] = {"pertama", "kedua"};
	enum { CONVS = 30 };
	fixture f;
	store_inbound_result res[CONVS];
	store_outbox_counts oc;
	gw_sender_stats st;
	char addr[32];
	int64_t deadline;

	(void)state;
	fixture_init(&f);
	f.c.sender.concurrency = 16;
	fixture_start(&f);
	for (int i = 0; i < CONVS; i++) {
		snprintf(addr, sizeof(addr), "62855%07d", i);
		inbound(&f, "whatsapp", addr, now_ms(), 2, two, &res[i]);
		gw_sender_wake(f.s);
	}
	deadline = now_ms() + 10000;
	for (;;) {
		assert_int_equal(store_outbox_counts_get(f.st, now_ms(), &oc), STORE_OK);
		gw_sender_stats_get(f.s, &st);
		if (oc.pending + oc.leased + oc.dead == 0 && st.sent == 2 * CONVS)
			break;
		if (now_ms() > deadline)
			fail_msg("after 10 s: %lld pending, %lld leased, %lld dead, %llu sent, want %d sent",
				 (long long)oc.pending, (long long)oc.leased, (long long)oc.dead,
				 (unsigned long long)st.sent, 2 * CONVS);
		sleep_ms(20);
	}
	for (int i = 0; i < CONVS; i++)
		for (int k = 0; k < 2; k++)
			wait_status(&f, res[i].conversation_id, res[i].out_ids[k], "sent", 100);
	assert_int_equal(provider_count(), 2 * CONVS);
	assert_int_equal(st.retried + st.failed + st.dead + st.window_closed, 0);
	fixture_done(&f);
}

/* One failure of the given mode, then the provider accepts: the message goes
 * on the second attempt, at least min_gap_ms after the first. */
static void retried_then_sent(const char *mode, int timeout_ms, int min_gap_ms)
{
	static const char *const texts[] = {"Coba lagi"};
	fixture f;
	store_inbound_result res;
	json_t *reqs;
	double t0, t1;
	gw_sender_stats st;

	fixture_init(&f);
	f.c.sender.timeout_ms = timeout_ms;
	provider_mode(mode, 1);
	fixture_start(&f);
	inbound(&f, "whatsapp", "6283333333333", now_ms(), 1, texts, &res);
	gw_sender_wake(f.s);
	wait_status(&f, res.conversation_id, res.out_ids[0], "sent", 8000);
	reqs = provider_requests();
	if (json_array_size(reqs) != 2)
		fail_msg("mode %s: %zu requests, want 2 (one failed attempt, one sent)", mode, json_array_size(reqs));
	t0 = json_real_value(json_object_get(json_array_get(reqs, 0), "time"));
	t1 = json_real_value(json_object_get(json_array_get(reqs, 1), "time"));
	if ((t1 - t0) * 1000 < min_gap_ms)
		fail_msg("mode %s: retried after %.0f ms, want at least %d", mode, (t1 - t0) * 1000, min_gap_ms);
	json_decref(reqs);
	gw_sender_stats_get(f.s, &st);
	assert_int_equal(st.retried, 1);
	assert_int_equal(st.sent, 1);
	fixture_done(&f);
}

static void test_sender_500_then_ok(void **state)
{
	(void)state;
	/* backoff after the first attempt: 50 ms with equal jitter, so >= 25 ms */
	retried_then_sent("500", 2000, 25);
}

static void test_sender_429_retried_later(void **state)
{
	(void)state;
	/* a throttled retry doubles once more: 100 ms with jitter, so >= 50 ms */
	retried_then_sent("429", 2000, 50);
}

static void test_sender_timeout_retried(void **state)
{
	(void)state;
	/* the first request hangs until the 300 ms timeout */
	retried_then_sent("hang", 300, 300);
}

/* A failure that retrying cannot fix: one request, then the final status. */
static void failed_once(const char *mode, const char *want_status)
{
	static const char *const texts[] = {"Halo"};
	fixture f;
	store_inbound_result res;
	store_outbox_counts oc;
	gw_sender_stats st;

	fixture_init(&f);
	provider_mode(mode, 0);
	fixture_start(&f);
	inbound(&f, "whatsapp", "6284444444444", now_ms(), 1, texts, &res);
	gw_sender_wake(f.s);
	wait_status(&f, res.conversation_id, res.out_ids[0], want_status, 5000);
	sleep_ms(300); /* several backoff periods: no retry may follow */
	if (provider_count() != 1)
		fail_msg("mode %s: %zu requests, want exactly 1", mode, provider_count());
	assert_int_equal(store_outbox_counts_get(f.st, now_ms(), &oc), STORE_OK);
	assert_int_equal(oc.pending, 0);
	assert_int_equal(oc.dead, 1);
	gw_sender_stats_get(f.s, &st);
	assert_int_equal(st.retried, 0);
	assert_int_equal(st.sent, 0);
	fixture_done(&f);
}

static void test_sender_bad_request_fails(void **state)
{
	(void)state;
	failed_once("bad", "failed");
}

static void test_sender_window_closed_by_provider(void **state)
{
	(void)state;
	failed_once("window", "window_closed");
}

static void test_sender_dead_after_max_attempts(void **state)
{
	static const char *const texts[] = {"Halo"};
	fixture f;
	store_inbound_result res;
	gw_sender_stats st;

	(void)state;
	fixture_init(&f);
	f.c.sender.max_attempts = 3;
	provider_mode("500", 0);
	fixture_start(&f);
	inbound(&f, "whatsapp", "6285555555555", now_ms(), 1, texts, &res);
	gw_sender_wake(f.s);
	wait_status(&f, res.conversation_id, res.out_ids[0], "dead", 8000);
	sleep_ms(300);
	assert_int_equal(provider_count(), 3);
	gw_sender_stats_get(f.s, &st);
	assert_int_equal(st.retried, 2);
	assert_int_equal(st.dead, 1);
	fixture_done(&f);
}

static void test_sender_window_closed_without_request(void **state)
{
	static const char *const texts[] = {"Terlambat"};
	fixture f;
	store_inbound_result res;
	gw_sender_stats st;

	(void)state;
	fixture_init(&f);
	fixture_start(&f);
	inbound(&f, "whatsapp", "6286666666666", now_ms() - 25LL * 3600 * 1000, 1, texts, &res);
	gw_sender_wake(f.s);
	wait_status(&f, res.conversation_id, res.out_ids[0], "window_closed", 5000);
	assert_int_equal(provider_count(), 0);
	gw_sender_stats_get(f.s, &st);
	assert_int_equal(st.window_closed, 1);
	fixture_done(&f);
}

static void test_sender_rate_limit(void **state)
{
	static const char *const texts[] = {"Antre"};
	enum { N = 20, RATE = 10 };
	fixture f;
	store_inbound_result res[N];
	json_t *reqs;
	double first, last;

	(void)state;
	fixture_init(&f);
	f.c.whatsapp.send_rate = RATE;
	f.c.sender.concurrency = 32;
	for (int i = 0; i < N; i++) {
		char addr[32];
		snprintf(addr, sizeof(addr), "62870000000%02d", i);
		inbound(&f, "whatsapp", addr, now_ms(), 1, texts, &res[i]);
	}
	fixture_start(&f);
	for (int i = 0; i < N; i++)
		wait_status(&f, res[i].conversation_id, res[i].out_ids[0], "sent", 8000);
	reqs = provider_requests();
	assert_int_equal(json_array_size(reqs), N);
	first = last = json_real_value(json_object_get(json_array_get(reqs, 0), "time"));
	for (size_t i = 0; i < N; i++) {
		double t = json_real_value(json_object_get(json_array_get(reqs, i), "time"));
		first = t < first ? t : first;
		last = t > last ? t : last;
	}
	/* a burst of RATE, then RATE per second: the other 10 take >= 0.9 s */
	if (last - first < 0.85)
		fail_msg("%d messages at %d/s went out in %.2f s", N, RATE, last - first);
	json_decref(reqs);
	fixture_done(&f);
}

static void test_sender_unknown_channel_fails(void **state)
{
	static const char *const texts[] = {"SMS"};
	fixture f;
	store_inbound_result res;

	(void)state;
	fixture_init(&f);
	fixture_start(&f);
	inbound(&f, "kannel", "6287777777777", now_ms(), 1, texts, &res);
	gw_sender_wake(f.s);
	wait_status(&f, res.conversation_id, res.out_ids[0], "failed", 5000);
	assert_int_equal(provider_count(), 0);
	fixture_done(&f);
}

/* Without credentials (sandbox) nothing is sent and nothing is lost. */
static void test_sender_unconfigured_keeps_items(void **state)
{
	static const char *const texts[] = {"Nanti"};
	fixture f;
	store_inbound_result res;
	store_outbox_counts oc;
	char st[32];

	(void)state;
	fixture_init(&f);
	f.c.whatsapp.access_token[0] = '\0';
	fixture_start(&f);
	inbound(&f, "whatsapp", "6288888888888", now_ms(), 1, texts, &res);
	gw_sender_wake(f.s);
	sleep_ms(400);
	assert_int_equal(provider_count(), 0);
	msg_status(&f, res.conversation_id, res.out_ids[0], st, sizeof(st));
	assert_string_not_equal(st, "sent");
	assert_string_not_equal(st, "failed");
	assert_int_equal(store_outbox_counts_get(f.st, now_ms(), &oc), STORE_OK);
	assert_int_equal(oc.pending + oc.leased, 1);
	assert_int_equal(oc.dead, 0);
	fixture_done(&f);
}

/* Stopping while a request hangs returns within the drain time; the message
 * stays in the outbox for the next run. */
static void test_sender_stop_drains(void **state)
{
	static const char *const texts[] = {"Tertunda"};
	fixture f;
	store_inbound_result res;
	store_outbox_counts oc;
	gw_sender_stats st;
	int64_t t0;

	(void)state;
	fixture_init(&f);
	f.c.sender.timeout_ms = 10000;
	provider_mode("hang", 0);
	fixture_start(&f);
	inbound(&f, "whatsapp", "6289999999999", now_ms(), 1, texts, &res);
	gw_sender_wake(f.s);
	for (int i = 0; i < 250 && provider_count() == 0; i++)
		sleep_ms(20);
	assert_int_equal(provider_count(), 1);
	gw_sender_stats_get(f.s, &st);
	assert_int_equal(st.in_flight, 1);
	t0 = now_ms();
	gw_sender_stop(f.s, 300);
	gw_sender_free(f.s);
	f.s = NULL;
	if (now_ms() - t0 > 2000)
		fail_msg("stop took %lld ms with a 300 ms drain", (long long)(now_ms() - t0));
	assert_int_equal(store_outbox_counts_get(f.st, now_ms(), &oc), STORE_OK);
	assert_int_equal(oc.pending + oc.leased, 1);
	assert_int_equal(oc.dead, 0);
	gw_sender_stop(NULL, 0);
	gw_sender_free(NULL);
	fixture_done(&f);
}

/* ---- the attached sender (own_store 0): the test plays the writer ---- */

/* The runner: called from the sender's thread with its mailbox lock held, so
 * it only notes the wish and signals the test thread. */
typedef struct runner {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int wanted; /* a turn was asked for since the last runner_wait */
	int calls;  /* every call since start */
} runner;

static void runner_fn(void *arg)
{
	runner *r = arg;

	pthread_mutex_lock(&r->lock);
	r->wanted = 1;
	r->calls++;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static int runner_calls(runner *r)
{
	pthread_mutex_lock(&r->lock);
	int n = r->calls;
	pthread_mutex_unlock(&r->lock);
	return n;
}

static void runner_set_wanted(runner *r, int wanted)
{
	pthread_mutex_lock(&r->lock);
	r->wanted = wanted;
	pthread_mutex_unlock(&r->lock);
}

/* Waits up to ms for the sender to ask for a turn; 1 (and the wish consumed)
 * when it did. */
static int runner_wait(runner *r, int ms)
{
	struct timespec until;
	int got;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&r->lock);
	while (!r->wanted)
		if (pthread_cond_timedwait(&r->cond, &r->lock, &until) != 0)
			break;
	got = r->wanted;
	r->wanted = 0;
	pthread_mutex_unlock(&r->lock);
	return got;
}

/* One for the whole run, so a sender a failed test left behind never calls
 * into a dead stack frame. */
static runner the_runner = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

static runner *fixture_start_attached(fixture *f)
{
	runner *r = &the_runner;
	char err[256];

	pthread_mutex_lock(&r->lock);
	r->wanted = r->calls = 0;
	pthread_mutex_unlock(&r->lock);
	f->s = gw_sender_start(&f->c, 0, err, sizeof(err));
	if (!f->s)
		fail_msg("gw_sender_start(own_store 0): %s", err);
	gw_sender_set_runner(f->s, runner_fn, r);
	return r;
}

/* Detaches the runner, stops the sender without waiting, frees it. */
static void fixture_done_attached(fixture *f)
{
	if (f->s) {
		gw_sender_set_runner(f->s, NULL, NULL);
		gw_sender_stop(f->s, 0);
		gw_sender_free(f->s);
		f->s = NULL;
	}
	fixture_done(f);
}

#define TL_MAX 32

/* What one turn held, copied before give frees it. */
typedef struct turn_log {
	size_t lease_max, n_results, n_items, n_fresh;
	int rc_results, rc_lease;
	int64_t result_id[TL_MAX];
	int outcome[TL_MAX];
	char provider_id[TL_MAX][64];
	int64_t item_id[TL_MAX], fresh_id[TL_MAX];
} turn_log;

/* One store turn on the test's handle, as the gateway's writer runs it: take
 * (lease: new rows were queued), a round in which the citizens at addrs (may
 * be 0 of them) write and each gets reply (their outbox rows leased as they
 * are written when the turn leases), run, then commit, or roll back when
 * fail is set (the round failed: nothing of it kept), and give with seq and
 * the round's rc. Returns 0 when take had no work (no round then). */
static int turn_ex(fixture *f, int lease, int64_t seq, int fail, const char *const *addrs, size_t n_addrs,
		   const char *reply, turn_log *tl)
{
	gw_sender_turn t;
	store_inbound_result res;
	int rc;

	memset(tl, 0, sizeof(*tl));
	if (!gw_sender_turn_take(f->s, &t, lease || n_addrs > 0))
		return 0;
	tl->lease_max = t.lease_max;
	tl->n_results = t.n_results;
	for (size_t i = 0; i < t.n_results && i < TL_MAX; i++) {
		tl->result_id[i] = t.results[i].id;
		tl->outcome[i] = t.results[i].outcome;
		snprintf(tl->provider_id[i], sizeof(tl->provider_id[i]), "%s",
			 t.results[i].provider_id ? t.results[i].provider_id : "");
	}
	assert_int_equal(store_round_begin(f->st), STORE_OK);
	if (n_addrs) {
		if (t.lease_max)
			store_outbox_fresh_begin(f->st, t.lease_max, now_ms(), t.lease_ms);
		for (size_t i = 0; i < n_addrs; i++)
			inbound(f, "whatsapp", addrs[i], now_ms(), 1, &reply, &res);
		store_outbox_fresh_take(f->st, &t.fresh, &t.n_fresh);
	}
	tl->n_fresh = t.n_fresh;
	for (size_t i = 0; i < t.n_fresh && i < TL_MAX; i++)
		tl->fresh_id[i] = t.fresh[i].id;
	gw_sender_turn_run(f->st, &t, now_ms());
	tl->rc_results = t.rc_results;
	tl->rc_lease = t.rc_lease;
	tl->n_items = t.n_items;
	for (size_t i = 0; i < t.n_items && i < TL_MAX; i++)
		tl->item_id[i] = t.items[i].id;
	if (fail) {
		store_round_rollback(f->st);
		rc = STORE_ERR;
	} else {
		rc = store_round_commit(f->st);
		assert_int_equal(rc, STORE_OK);
	}
	t.seq = seq;
	gw_sender_turn_give(f->s, &t, rc);
	return 1;
}

static int turn(fixture *f, int lease, int64_t seq, int fail, turn_log *tl)
{
	return turn_ex(f, lease, seq, fail, NULL, 0, NULL, tl);
}

/* Runs a committed turn (seq 0) whenever the sender asks for one, until the
 * outbox is empty and the sender counted want_sent messages sent. */
static void pump_until_sent(fixture *f, runner *r, uint64_t want_sent, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	store_outbox_counts oc;
	gw_sender_stats st;
	turn_log tl;

	for (;;) {
		if (runner_wait(r, 20))
			turn(f, 0, 0, 0, &tl);
		assert_int_equal(store_outbox_counts_get(f->st, now_ms(), &oc), STORE_OK);
		gw_sender_stats_get(f->s, &st);
		if (oc.pending + oc.leased + oc.dead == 0 && st.sent >= want_sent)
			break;
		if (now_ms() > end)
			fail_msg(
			    "after %d ms: outbox %lld pending %lld leased %lld dead, %llu sent, want %llu (log: %s)",
			    timeout_ms, (long long)oc.pending, (long long)oc.leased, (long long)oc.dead,
			    (unsigned long long)st.sent, (unsigned long long)want_sent, logpath);
	}
	assert_int_equal(st.sent, want_sent);
}

/* The message's status and provider id, read from the file with SQL. */
static void db_msg(fixture *f, int64_t id, char *status, size_t slen, char *pid, size_t plen)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;

	status[0] = pid[0] = '\0';
	if (sqlite3_open_v2(f->c.store.path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		fail_msg("sqlite3_open_v2(%s): %s", f->c.store.path, sqlite3_errmsg(db));
	sqlite3_busy_timeout(db, 2000);
	if (sqlite3_prepare_v2(db, "SELECT status, provider_id FROM messages WHERE id = ?", -1, &q, NULL) != SQLITE_OK)
		fail_msg("prepare: %s", sqlite3_errmsg(db));
	sqlite3_bind_int64(q, 1, id);
	if (sqlite3_step(q) == SQLITE_ROW) {
		const unsigned char *a = sqlite3_column_text(q, 0), *b = sqlite3_column_text(q, 1);
		snprintf(status, slen, "%s", a ? (const char *)a : "");
		snprintf(pid, plen, "%s", b ? (const char *)b : "");
	}
	sqlite3_finalize(q);
	sqlite3_close(db);
}

/* The first column of sql's first row, read on a handle of its own. */
static int64_t db_count(fixture *f, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	int64_t n = -1;

	if (sqlite3_open_v2(f->c.store.path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		fail_msg("sqlite3_open_v2(%s): %s", f->c.store.path, sqlite3_errmsg(db));
	sqlite3_busy_timeout(db, 2000);
	if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return n;
}

static int64_t db_outbox_rows(fixture *f)
{
	return db_count(f, "SELECT COUNT(*) FROM outbox");
}

/* Waits up to timeout_ms until the provider recorded want requests. */
static void wait_provider(size_t want, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	size_t n;

	while ((n = provider_count()) < want && now_ms() < end)
		sleep_ms(10);
	if (n != want)
		fail_msg("the provider received %zu requests, want %zu (log: %s)", n, want, logpath);
}

/* Waits until no request is in flight: every answer is classified, its
 * outcome posted for the next turn. */
static void wait_idle(fixture *f, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	gw_sender_stats st;

	for (;;) {
		gw_sender_stats_get(f->s, &st);
		if (st.in_flight == 0)
			break;
		if (now_ms() > end)
			fail_msg("%llu requests still in flight after %d ms", (unsigned long long)st.in_flight,
				 timeout_ms);
		sleep_ms(5);
	}
	sleep_ms(50); /* the loop posts what it classified right after */
}

static int has_id(const int64_t *v, size_t n, int64_t id)
{
	for (size_t i = 0; i < n && i < TL_MAX; i++)
		if (v[i] == id)
			return 1;
	return 0;
}

/* Replies leased in a turn go out without any further turn; their outcomes
 * come back in a later turn's results, and only that turn's commit makes the
 * messages "sent" with the provider's id and removes their outbox rows. */
static void test_attached_delivers_through_turns(void **state)
{
	static const char *const texts[] = {"Loket buka pukul 08.00."};
	static const char *const addrs[] = {"6281300000001", "6281300000002", "6281300000003"};
	enum { N = 3 };
	fixture f;
	runner *r;
	store_inbound_result res[N];
	turn_log tl;
	int64_t got_id[N];
	char got_pid[N][64], status[32], pid[64];
	size_t n_got = 0;
	int64_t end;

	(void)state;
	fixture_init(&f);
	r = fixture_start_attached(&f);
	for (int i = 0; i < N; i++)
		inbound(&f, "whatsapp", addrs[i], now_ms(), 1, texts, &res[i]);

	/* the writer's turn after committing new rows leases them */
	assert_int_equal(turn(&f, 1, 0, 0, &tl), 1);
	assert_int_equal(tl.n_results, 0);
	assert_int_equal(tl.rc_lease, STORE_OK);
	assert_int_equal(tl.n_items, N);
	for (int i = 0; i < N; i++)
		assert_true(has_id(tl.item_id, tl.n_items, res[i].out_ids[0]));
	wait_provider(N, 5000);
	wait_idle(&f, 5000);

	/* sent, but nothing recorded until a turn records it */
	for (int i = 0; i < N; i++) {
		db_msg(&f, res[i].out_ids[0], status, sizeof(status), pid, sizeof(pid));
		assert_string_equal(status, "queued");
		assert_string_equal(pid, "");
	}
	assert_int_equal(db_outbox_rows(&f), N);

	/* the outcomes arrive in the next turns' results */
	end = now_ms() + 5000;
	while (n_got < N) {
		if (now_ms() > end)
			fail_msg("%zu of %d outcomes offered to the runner in 5 s", n_got, N);
		if (!runner_wait(r, 50))
			continue;
		if (!turn(&f, 0, 0, 0, &tl))
			continue;
		assert_int_equal(tl.rc_results, STORE_OK);
		for (size_t i = 0; i < tl.n_results; i++) {
			assert_int_equal(tl.outcome[i], STORE_OUTBOX_SENT);
			assert_true(strncmp(tl.provider_id[i], "wamid.test.", 11) == 0);
			assert_true(n_got < N);
			got_id[n_got] = tl.result_id[i];
			snprintf(got_pid[n_got], sizeof(got_pid[n_got]), "%s", tl.provider_id[i]);
			n_got++;
		}
	}
	for (int i = 0; i < N; i++)
		assert_true(has_id(got_id, n_got, res[i].out_ids[0]));

	/* that turn's commit recorded them */
	assert_int_equal(db_outbox_rows(&f), 0);
	for (size_t k = 0; k < n_got; k++) {
		db_msg(&f, got_id[k], status, sizeof(status), pid, sizeof(pid));
		assert_string_equal(status, "sent");
		assert_string_equal(pid, got_pid[k]);
	}
	pump_until_sent(&f, r, N, 2000);
	assert_int_equal(provider_count(), N);
	fixture_done_attached(&f);
}

/* A reply leased in round 7 does not leave before round 7 is durable. */
static void test_attached_waits_for_sync(void **state)
{
	static const char *const texts[] = {"Setelah fsync."};
	fixture f;
	runner *r;
	store_inbound_result res;
	turn_log tl;

	(void)state;
	fixture_init(&f);
	r = fixture_start_attached(&f);
	inbound(&f, "whatsapp", "6281400000001", now_ms(), 1, texts, &res);
	assert_int_equal(turn(&f, 1, 7, 0, &tl), 1);
	assert_int_equal(tl.n_items, 1);
	assert_int_equal(tl.item_id[0], res.out_ids[0]);

	sleep_ms(500);
	if (provider_count() != 0)
		fail_msg("a reply of round 7 was sent before any round was synced");
	gw_sender_synced(f.s, 6);
	sleep_ms(300);
	if (provider_count() != 0)
		fail_msg("a reply of round 7 was sent when only round 6 was synced");
	gw_sender_synced(f.s, 7);
	wait_provider(1, 3000);
	pump_until_sent(&f, r, 1, 3000);
	wait_status(&f, res.conversation_id, res.out_ids[0], "sent", 100);
	fixture_done_attached(&f);
}

/* A round that fails (rolled back, give's rc STORE_ERR) loses nothing: its
 * outcomes are offered again on the next take, and the rows it leased are not
 * sent (the lease was never written); the next good round leases them again. */
static void test_attached_failed_round(void **state)
{
	static const char *const texts[] = {"Sekali saja."};
	static const char *const addrs[] = {"6281500000001", "6281500000002", "6281500000003"};
	fixture f;
	runner *r;
	store_inbound_result res[3];
	turn_log tl, bad;
	gw_sender_stats st;
	char status[32], pid[64];
	json_t *reqs;
	int seen[3] = {0, 0, 0};

	(void)state;
	fixture_init(&f);
	r = fixture_start_attached(&f);
	inbound(&f, "whatsapp", addrs[0], now_ms(), 1, texts, &res[0]);
	inbound(&f, "whatsapp", addrs[1], now_ms(), 1, texts, &res[1]);
	assert_int_equal(turn(&f, 1, 0, 0, &tl), 1);
	assert_int_equal(tl.n_items, 2);
	wait_provider(2, 5000);
	wait_idle(&f, 5000);
	assert_true(runner_wait(r, 2000));

	/* a third reply is queued; the failing round records the two outcomes
	 * and leases it, then is rolled back */
	inbound(&f, "whatsapp", addrs[2], now_ms(), 1, texts, &res[2]);
	assert_int_equal(turn(&f, 1, 0, 1, &bad), 1);
	assert_true(bad.n_results >= 1);
	assert_int_equal(bad.rc_results, STORE_OK);
	assert_int_equal(bad.n_items, 1);
	assert_int_equal(bad.item_id[0], res[2].out_ids[0]);

	sleep_ms(500);
	if (provider_count() != 2)
		fail_msg("%zu requests after the failed round, want 2: a row it leased was sent", provider_count());
	for (int i = 0; i < 2; i++) {
		db_msg(&f, res[i].out_ids[0], status, sizeof(status), pid, sizeof(pid));
		assert_string_equal(status, "queued");
	}
	assert_int_equal(db_outbox_rows(&f), 3);
	gw_sender_stats_get(f.s, &st);
	assert_int_equal(st.sent, 0);

	/* the next take offers the same outcomes again */
	assert_int_equal(turn(&f, 0, 0, 0, &tl), 1);
	assert_true(tl.n_results >= bad.n_results);
	for (size_t i = 0; i < bad.n_results; i++) {
		size_t k = 0;
		while (k < tl.n_results && tl.result_id[k] != bad.result_id[i])
			k++;
		if (k == tl.n_results)
			fail_msg("outcome of message %lld not offered again after the failed round",
				 (long long)bad.result_id[i]);
		assert_int_equal(tl.outcome[k], bad.outcome[i]);
		assert_string_equal(tl.provider_id[k], bad.provider_id[i]);
	}
	/* and the row of the failed lease is leased again */
	assert_int_equal(tl.n_items, 1);
	assert_int_equal(tl.item_id[0], res[2].out_ids[0]);

	pump_until_sent(&f, r, 3, 5000);
	reqs = provider_requests();
	assert_int_equal(json_array_size(reqs), 3);
	for (size_t i = 0; i < 3; i++) {
		json_t *b = request_body(reqs, i);
		const char *to = json_string_value(json_object_get(b, "to"));
		for (int k = 0; k < 3; k++)
			if (to && strcmp(to, addrs[k]) == 0)
				seen[k]++;
		json_decref(b);
	}
	json_decref(reqs);
	for (int k = 0; k < 3; k++) {
		if (seen[k] != 1)
			fail_msg("%s got %d requests, want 1", addrs[k], seen[k]);
		db_msg(&f, res[k].out_ids[0], status, sizeof(status), pid, sizeof(pid));
		assert_string_equal(status, "sent");
		assert_true(strncmp(pid, "wamid.test.", 11) == 0);
	}
	fixture_done_attached(&f);
}

/* Rows leased as the round writes them (t.fresh) are sent without a lease
 * query; when the round fails they are dropped, never sent. */
static void test_attached_fresh_rows(void **state)
{
	static const char *const addrs[] = {"6281600000001", "6281600000002"};
	fixture f;
	runner *r;
	turn_log tl;
	store_conv conv;
	char status[32], pid[64];

	(void)state;
	fixture_init(&f);
	r = fixture_start_attached(&f);

	/* a failed round: its rows were never written, its fresh items dropped */
	assert_int_equal(turn_ex(&f, 1, 0, 1, addrs, 2, "Ditolak", &tl), 1);
	assert_int_equal(tl.n_fresh, 2);
	sleep_ms(500);
	if (provider_count() != 0)
		fail_msg("%zu requests for the rows of a rolled-back round", provider_count());
	assert_int_equal(store_conv_find(f.st, "whatsapp", addrs[0], &conv), STORE_ERR_NOTFOUND);

	/* the same round committed: sent at once (seq 0), not leased twice */
	assert_int_equal(turn_ex(&f, 1, 0, 0, addrs, 2, "Diterima", &tl), 1);
	assert_int_equal(tl.n_fresh, 2);
	assert_int_equal(tl.n_items, 0);
	wait_provider(2, 5000);
	pump_until_sent(&f, r, 2, 5000);
	assert_int_equal(provider_count(), 2);
	for (int i = 0; i < 2; i++) {
		db_msg(&f, tl.fresh_id[i], status, sizeof(status), pid, sizeof(pid));
		assert_string_equal(status, "sent");
		assert_true(strncmp(pid, "wamid.test.", 11) == 0);
	}
	fixture_done_attached(&f);
}

/* The runner is called as soon as outcomes wait: a conversation's replies go
 * out one after the other (each is leased once the previous one is recorded),
 * so a chain of 12 taking turns only when asked is quick; were the runner
 * called on the 200 ms tick alone it would take over 2 s. Detached, it is not
 * called any more; attached again while a turn is wanted, it is called at
 * once. */
static void test_attached_runner_calls(void **state)
{
	static const char *const four[] = {"a", "b", "c", "d"};
	enum { N = 12 };
	fixture f;
	runner *r;
	store_inbound_result res[N / 4], late;
	turn_log tl;
	int calls0, calls1;
	int64_t t0, took;

	(void)state;
	fixture_init(&f);
	r = fixture_start_attached(&f);
	assert_true(runner_wait(r, 2000)); /* the lease it asks for on start */
	assert_int_equal(turn(&f, 1, 0, 0, &tl), 1);
	assert_int_equal(tl.n_items, 0);
	for (int i = 0; i < N / 4; i++)
		inbound(&f, "whatsapp", "6281700000001", now_ms(), 4, four, &res[i]);
	calls0 = runner_calls(r);
	t0 = now_ms();
	gw_sender_wake(f.s);
	pump_until_sent(&f, r, N, 10000);
	took = now_ms() - t0;
	if (took > 1500)
		fail_msg("a chain of %d replies took %lld ms: the runner is not called when outcomes wait", N,
			 (long long)took);
	if (runner_calls(r) - calls0 < N)
		fail_msg("the runner was called %d times for %d outcomes", runner_calls(r) - calls0, N);

	gw_sender_set_runner(f.s, NULL, NULL);
	calls1 = runner_calls(r);
	inbound(&f, "whatsapp", "6281700000002", now_ms(), 1, four, &late);
	gw_sender_wake(f.s);
	sleep_ms(500);
	assert_int_equal(runner_calls(r), calls1);
	assert_int_equal(provider_count(), N);

	runner_set_wanted(r, 0);
	gw_sender_set_runner(f.s, runner_fn, r);
	assert_int_equal(runner_calls(r), calls1 + 1);
	pump_until_sent(&f, r, N + 1, 5000);
	wait_status(&f, late.conversation_id, late.out_ids[0], "sent", 100);
	fixture_done_attached(&f);
}

/* The writer thread of test_attached_stop_*: runs turns whenever asked until
 * told to stop. */
/* Two citizens at addrs each get a reply, both leased in one turn and
 * accepted by the provider; their outcomes wait for the next turn. */
static void two_sent_not_recorded(fixture *f, const char *const *addrs, const char *const *texts,
				  store_inbound_result res[2])
{
	turn_log tl;

	for (int i = 0; i < 2; i++)
		inbound(f, "whatsapp", addrs[i], now_ms(), 1, texts, &res[i]);
	assert_int_equal(turn(f, 1, 0, 0, &tl), 1);
	assert_int_equal(tl.n_items, 2);
	wait_provider(2, 5000);
	wait_idle(f, 5000);
}

typedef struct turner {
	fixture *f;
	runner *r;
	atomic_int stop;
	int delay_ms;
	int with_results;
} turner;

static void *turner_main(void *arg)
{
	turner *tu = arg;
	turn_log tl;

	sleep_ms(tu->delay_ms); /* busy with a round of its own first */
	while (!atomic_load(&tu->stop))
		if (runner_wait(tu->r, 10) && turn(tu->f, 0, 0, 0, &tl) && tl.n_results)
			tu->with_results++;
	return NULL;
}

/* Stopping with outcomes waiting for a turn: stop waits for the runner to
 * record them (the test's other thread runs turns, its first one 200 ms after
 * stop was called), counts them, and returns as soon as they are, well
 * before the drain time. */
static void test_attached_stop_records_outcomes(void **state)
{
	static const char *const texts[] = {"Sebelum tutup."};
	static const char *const addrs[] = {"6281800000001", "6281800000002"};
	fixture f;
	runner *r;
	store_inbound_result res[2];
	turner tu;
	pthread_t th;
	char status[32], pid[64];
	gw_sender_stats st;
	int64_t t0, took;

	(void)state;
	fixture_init(&f);
	r = fixture_start_attached(&f);
	two_sent_not_recorded(&f, addrs, texts, res);
	assert_int_equal(db_outbox_rows(&f), 2); /* not recorded yet */

	memset(&tu, 0, sizeof(tu));
	tu.f = &f;
	tu.r = r;
	tu.delay_ms = 200;
	atomic_store(&tu.stop, 0);
	runner_set_wanted(r, 1); /* it may have been called before the thread waits */
	assert_int_equal(pthread_create(&th, NULL, turner_main, &tu), 0);
	t0 = now_ms();
	gw_sender_stop(f.s, 5000);
	took = now_ms() - t0;
	atomic_store(&tu.stop, 1);
	pthread_join(th, NULL);
	if (took > 2500)
		fail_msg("stop took %lld ms although the outcomes were recorded at once", (long long)took);
	assert_true(tu.with_results >= 1);
	assert_int_equal(db_outbox_rows(&f), 0);
	for (int i = 0; i < 2; i++) {
		db_msg(&f, res[i].out_ids[0], status, sizeof(status), pid, sizeof(pid));
		assert_string_equal(status, "sent");
		assert_true(strncmp(pid, "wamid.test.", 11) == 0);
	}
	gw_sender_stats_get(f.s, &st);
	assert_int_equal(st.sent, 2);
	assert_int_equal(st.running, 0);
	assert_int_equal(provider_count(), 2);
	fixture_done_attached(&f);
}

/* Wakes the sender and waits until it has held want replies for refused
 * credentials; st is its stats then. */
static void wait_unauthorized(fixture *f, uint64_t want, int timeout_ms, gw_sender_stats *st)
{
	int64_t end = now_ms() + timeout_ms;

	gw_sender_wake(f->s);
	do {
		sleep_ms(20);
		gw_sender_stats_get(f->s, st);
	} while (st->unauthorized < want && now_ms() < end);
	assert_int_equal(st->unauthorized, want);
}

/* An expired token (401, Meta's 190) is not the reply's fault: the reply
 * waits in the outbox without counting an attempt (max_attempts is 1 here, so
 * any counted attempt would make it dead), the channel's other replies wait
 * without a request while the channel is held, the stats say the credentials
 * are refused, and once the provider accepts them again everything goes. */
static void test_sender_expired_token_holds_replies(void **state)
{
	static const char *const texts[] = {"Izin usaha?"};
	static const char *const addrs[] = {"6281700000001", "6281700000002", "6281700000003"};
	fixture f;
	store_inbound_result res[3];
	gw_sender_stats st;
	char sql[200];

	(void)state;
	fixture_init(&f);
	f.c.sender.max_attempts = 1;
	f.c.sender.backoff_max_ms = 4000; /* the channel is held this long */
	provider_mode("expired", 0);
	fixture_start(&f);
	inbound(&f, "whatsapp", addrs[0], now_ms(), 1, texts, &res[0]);
	wait_unauthorized(&f, 1, 5000, &st);
	assert_int_equal(st.credentials_refused, 1);
	assert_int_equal(st.dead + st.failed + st.retried, 0);
	assert_int_equal(provider_count(), 1);
	snprintf(sql, sizeof(sql),
		 "SELECT COUNT(*) FROM outbox WHERE message_id = %lld AND attempts = 0 AND dead = 0"
		 " AND last_error LIKE '190 %%'",
		 (long long)res[0].out_ids[0]);
	assert_int_equal(db_count(&f, sql), 1);
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM messages WHERE id = %lld AND status = 'queued'",
		 (long long)res[0].out_ids[0]);
	assert_int_equal(db_count(&f, sql), 1);

	/* while held, two more replies wait without a request */
	for (int i = 1; i < 3; i++)
		inbound(&f, "whatsapp", addrs[i], now_ms(), 1, texts, &res[i]);
	wait_unauthorized(&f, 3, 1000, &st);
	assert_int_equal(provider_count(), 1);

	/* the token works again: all three go, the first one included */
	provider_mode("ok", 0);
	for (int i = 0; i < 3; i++)
		wait_status(&f, res[i].conversation_id, res[i].out_ids[0], "sent", 12000);
	gw_sender_stats_get(f.s, &st);
	assert_int_equal(st.sent, 3);
	assert_int_equal(st.credentials_refused, 0);
	assert_int_equal(st.dead + st.failed, 0);
	assert_int_equal(provider_count(), 4);
	assert_int_equal(db_outbox_rows(&f), 0);
	fixture_done(&f);
}

typedef struct stopper {
	gw_sender *s;
	atomic_int returned;
} stopper;

static void *stopper_main(void *arg)
{
	stopper *sp = arg;

	gw_sender_stop(sp->s, 5000);
	atomic_store(&sp->returned, 1);
	return NULL;
}

/* Stopping while the writer holds a turn with our outcomes in it: between
 * take and give they are on none of the sender's lists, and a sender that
 * exited then would never count what the turn recorded (/metrics and the
 * stop line would say fewer were sent than the store does). Stop waits for
 * the give. Deterministic: the turn is held for 300 ms by this thread. */
static void test_attached_stop_waits_for_a_taken_turn(void **state)
{
	static const char *const texts[] = {"Tunggu sebentar."};
	static const char *const addrs[] = {"6281800000011", "6281800000012"};
	fixture f;
	store_inbound_result res[2];
	gw_sender_turn t;
	stopper sp;
	pthread_t th;
	gw_sender_stats st;
	char status[32], pid[64];

	(void)state;
	fixture_init(&f);
	(void)fixture_start_attached(&f);
	two_sent_not_recorded(&f, addrs, texts, res);

	assert_int_equal(gw_sender_turn_take(f.s, &t, 0), 1);
	assert_int_equal(t.n_results, 2);
	sp.s = f.s;
	atomic_store(&sp.returned, 0);
	assert_int_equal(pthread_create(&th, NULL, stopper_main, &sp), 0);
	sleep_ms(300);
	if (atomic_load(&sp.returned))
		fail_msg("gw_sender_stop returned while a turn still held its outcomes");

	assert_int_equal(store_round_begin(f.st), STORE_OK);
	assert_int_equal(gw_sender_turn_run(f.st, &t, now_ms()), STORE_OK);
	assert_int_equal(store_round_commit(f.st), STORE_OK);
	gw_sender_turn_give(f.s, &t, STORE_OK);
	pthread_join(th, NULL);

	gw_sender_stats_get(f.s, &st);
	assert_int_equal(st.sent, 2);
	assert_int_equal(st.running, 0);
	assert_int_equal(db_outbox_rows(&f), 0);
	for (int i = 0; i < 2; i++) {
		db_msg(&f, res[i].out_ids[0], status, sizeof(status), pid, sizeof(pid));
		assert_string_equal(status, "sent");
	}
	fixture_done_attached(&f);
}

/* Stopping with outcomes waiting and nobody running turns: stop gives up
 * after the drain time, and nothing is lost (the rows stay in the outbox, to
 * be sent again after their lease). */
static void test_attached_stop_without_turns_keeps_rows(void **state)
{
	static const char *const texts[] = {"Nanti lagi."};
	fixture f;
	runner *r;
	store_inbound_result res;
	turn_log tl;
	store_outbox_counts oc;
	char status[32], pid[64];
	int64_t t0, took;

	(void)state;
	fixture_init(&f);
	r = fixture_start_attached(&f);
	inbound(&f, "whatsapp", "6281900000001", now_ms(), 1, texts, &res);
	assert_int_equal(turn(&f, 1, 0, 0, &tl), 1);
	assert_int_equal(tl.n_items, 1);
	wait_provider(1, 5000);
	wait_idle(&f, 5000);
	assert_true(runner_wait(r, 2000)); /* asked for a turn nobody runs */
	t0 = now_ms();
	gw_sender_stop(f.s, 300);
	took = now_ms() - t0;
	if (took < 250 || took > 2000)
		fail_msg("stop took %lld ms with a 300 ms drain and outcomes waiting", (long long)took);
	gw_sender_set_runner(f.s, NULL, NULL);
	gw_sender_free(f.s);
	f.s = NULL;
	assert_int_equal(store_outbox_counts_get(f.st, now_ms(), &oc), STORE_OK);
	assert_int_equal(oc.pending + oc.leased, 1);
	assert_int_equal(oc.dead, 0);
	db_msg(&f, res.out_ids[0], status, sizeof(status), pid, sizeof(pid));
	assert_string_equal(status, "queued");
	fixture_done_attached(&f);
}

/* Runs last: nothing in the whole run's log may carry the access token. */
static void test_sender_log_has_no_token(void **state)
{
	FILE *fp = fopen(logpath, "r");
	char line[4096];
	int sent_lines = 0;

	(void)state;
	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp)) {
		if (strstr(line, TOKEN) || strstr(line, "s3cr3t"))
			fail_msg("the access token reached the log: %s", line);
		if (strstr(line, " send ") && strstr(line, "outcome=sent"))
			sent_lines++;
		if (strstr(line, "6281234567890"))
			fail_msg("an unmasked phone number reached the log: %s", line);
	}
	fclose(fp);
	assert_true(sent_lines > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sender_delivers),
	    cmocka_unit_test(test_sender_keeps_order),
	    cmocka_unit_test(test_sender_records_many_outcomes),
	    cmocka_unit_test(test_sender_500_then_ok),
	    cmocka_unit_test(test_sender_429_retried_later),
	    cmocka_unit_test(test_sender_timeout_retried),
	    cmocka_unit_test(test_sender_bad_request_fails),
	    cmocka_unit_test(test_sender_window_closed_by_provider),
	    cmocka_unit_test(test_sender_dead_after_max_attempts),
	    cmocka_unit_test(test_sender_window_closed_without_request),
	    cmocka_unit_test(test_sender_expired_token_holds_replies),
	    cmocka_unit_test(test_sender_rate_limit),
	    cmocka_unit_test(test_sender_unknown_channel_fails),
	    cmocka_unit_test(test_sender_unconfigured_keeps_items),
	    cmocka_unit_test(test_sender_stop_drains),
	    cmocka_unit_test(test_attached_delivers_through_turns),
	    cmocka_unit_test(test_attached_waits_for_sync),
	    cmocka_unit_test(test_attached_failed_round),
	    cmocka_unit_test(test_attached_fresh_rows),
	    cmocka_unit_test(test_attached_runner_calls),
	    cmocka_unit_test(test_attached_stop_records_outcomes),
	    cmocka_unit_test(test_attached_stop_waits_for_a_taken_turn),
	    cmocka_unit_test(test_attached_stop_without_turns_keeps_rows),
	    cmocka_unit_test(test_sender_log_has_no_token),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
