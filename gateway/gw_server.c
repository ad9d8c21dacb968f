/* gw_server: the lws context, the routing table and the HTTP request cycle.
 *
 * protocols[0] ("http") receives every HTTP request that no file mount takes,
 * with the full URI: it looks the path up in gw_routes[], answers 404/405 itself,
 * checks POST bodies (Content-Length required, server.max_body), keeps the
 * signature header a route asks for, and calls the route's handler once the
 * body is complete. A handler either answers at once or submits a gw_job to
 * the writer and leaves the connection waiting; the writer wakes the loop with
 * lws_cancel_service(), and LWS_CALLBACK_EVENT_WAIT_CANCELLED hands each
 * finished job back to its connection (or to the web chat) to be answered in
 * LWS_CALLBACK_HTTP_WRITEABLE. A connection that closes while its job is in
 * flight clears the job's waiter, so the finished job is simply freed.
 *
 * Channels parse and verify; the writer commits; this file owns the sockets. */
#include "core/clock.h"
#include "gateway/gw_server.h"

#include <libwebsockets.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "gateway/gw_channel.h"
#include "gateway/gw_web.h"
#include "gateway/gw_whatsapp.h"

enum { GW_GET = 1u, GW_POST = 2u };

typedef struct gw_http_pss gw_http_pss;

/* One dynamic route. get/post answer (gw_http_respond) or submit a job; done
 * turns the finished job into the answer. */
typedef struct gw_route {
	const char *path;
	unsigned methods;
	const char *allow;	/* the Allow header of a 405 */
	const char *sig_header; /* custom header kept for post ("x-hub-signature-256:"), or NULL */
	int timed;		/* observed in loket_webhook_seconds */
	void (*get)(gw_server *s, gw_http_pss *pss);
	void (*post)(gw_server *s, gw_http_pss *pss);
	void (*done)(gw_server *s, gw_http_pss *pss, const gw_job *j);
} gw_route;

/* Per HTTP transaction (reset at each request of a keep-alive connection). */
struct gw_http_pss {
	struct lws *wsi;
	const gw_route *route;
	unsigned method;
	int64_t t0_us;
	char *body; /* Content-Length + 1 bytes, NUL-terminated */
	size_t body_len, body_expect;
	int body_started, body_done;
	char sig[192];
	int sig_len; /* -1: the header was absent */
	gw_job *job; /* in the writer's hands; its waiter is this pss */
	int waiting; /* counted in gw_server.waiting */
	int answered, written, close_after, close_pending;
	int status;
	const char *ctype, *allow;
	unsigned char *resp; /* LWS_PRE + body */
	size_t resp_len;
};

#define GW_MIME_N 11

struct gw_server {
	gw_server_opts o;
	struct lws_context *ctx;
	struct lws_protocols protocols[3];
	struct lws_http_mount mounts[2];
	struct lws_protocol_vhost_options mime[GW_MIME_N];
	char chat_dir[PATH_MAX];
	char console_dir[PATH_MAX];
	gw_writer *writer;
	gw_web *web;
	const gw_channel_ops *wa;
	int draining;
	size_t waiting;
	pthread_mutex_t wake_lock; /* guards ctx_dead against gw_server_wake */
	int ctx_dead;
};

/* ---- answers ---- */

/* Sets the answer of pss and asks for a writable callback. Returns 0, or -1
 * when out of memory (the caller closes the connection). */
static int gw_http_respond(gw_http_pss *pss, int status, const char *ctype, const char *body, size_t len)
{
	unsigned char *r;

	if (pss->answered)
		return 0;
	r = malloc(LWS_PRE + len + 1);
	if (!r)
		return -1;
	memcpy(r + LWS_PRE, body, len);
	r[LWS_PRE + len] = '\0';
	pss->resp = r;
	pss->resp_len = len;
	pss->status = status;
	pss->ctype = ctype;
	pss->answered = 1;
	lws_callback_on_writable(pss->wsi);
	return 0;
}

static int gw_http_text(gw_http_pss *pss, int status, const char *text)
{
	return gw_http_respond(pss, status, "text/plain; charset=utf-8", text, strlen(text));
}

/* Answers and, when the answer cannot be stored, closes the connection soon. */
static void gw_http_answer(gw_http_pss *pss, int status, const char *text)
{
	if (gw_http_text(pss, status, text) != 0)
		lws_set_timeout(pss->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
}

static void gw_http_json(gw_http_pss *pss, int status, const char *json)
{
	if (gw_http_respond(pss, status, "application/json", json, strlen(json)) != 0)
		lws_set_timeout(pss->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
}

static void gw_http_reset(gw_server *s, gw_http_pss *pss)
{
	if (pss->job) {
		pss->job->waiter = NULL; /* the writer's finished job will just be freed */
		pss->job = NULL;
	}
	if (pss->waiting) {
		pss->waiting = 0;
		s->waiting--;
	}
	free(pss->body);
	free(pss->resp);
	memset(pss, 0, sizeof(*pss));
	pss->sig_len = -1;
}

/* Writes the stored answer. Returns -1 when lws must close the connection. */
static int gw_http_write(gw_server *s, struct lws *wsi, gw_http_pss *pss)
{
	unsigned char hdr[LWS_PRE + 1024], *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof(hdr) - 1;
	static const char nostore[] = "no-store";

	if (pss->close_pending)
		return lws_partial_buffered(wsi) ? (lws_callback_on_writable(wsi), 0) : -1;
	if (!pss->answered || pss->written)
		return 0;
	if (lws_add_http_common_headers(wsi, (unsigned int)pss->status, pss->ctype, (lws_filepos_t)pss->resp_len, &p,
					end))
		return -1;
	if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL, (const unsigned char *)nostore,
					 (int)strlen(nostore), &p, end))
		return -1;
	if (pss->allow &&
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"allow:", (const unsigned char *)pss->allow,
					(int)strlen(pss->allow), &p, end))
		return -1;
	/* A body we did not read would be taken for the next request: close. */
	if (pss->method == GW_POST && !pss->body_done)
		pss->close_after = 1;
	if (s->draining)
		pss->close_after = 1;
	if (pss->close_after &&
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close", 5, &p, end))
		return -1;
	if (lws_finalize_http_header(wsi, &p, end))
		return -1;
	if (lws_get_network_wsi(wsi) == wsi && pss->resp_len <= (size_t)(end - p)) {
		/* HTTP/1 with a small answer: headers and body in one send, as
		 * lws_return_http_status does (one syscall per webhook instead of
		 * two: a tenth of the event loop's time at 20,000 webhooks/s) */
		memcpy(p, pss->resp + LWS_PRE, pss->resp_len);
		p += pss->resp_len;
		if (lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP) < (int)(p - start))
			return -1;
	} else {
		if (lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS) < (int)(p - start))
			return -1;
		if (lws_write(wsi, pss->resp + LWS_PRE, pss->resp_len, LWS_WRITE_HTTP_FINAL) < (int)pss->resp_len)
			return -1;
	}
	pss->written = 1;
	if (pss->route && pss->route->timed)
		gw_metrics_webhook_seconds(s->o.metrics, (double)(clock_mono_us() - pss->t0_us) / 1e6);
	if (pss->waiting) {
		pss->waiting = 0;
		s->waiting--;
	}
	if (pss->close_after) {
		if (lws_partial_buffered(wsi)) {
			pss->close_pending = 1;
			lws_callback_on_writable(wsi);
			return 0;
		}
		return -1;
	}
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* Hands a job to the writer on behalf of pss. Returns 0, or -1 after answering
 * 503 (the job is then freed). */
static int gw_http_submit(gw_server *s, gw_http_pss *pss, gw_job *j)
{
	j->waiter = pss;
	j->t0_us = pss->t0_us;
	if (!s->writer || s->draining || gw_writer_submit(s->writer, j) != 0) {
		gw_job_free(j);
		gw_metrics_reject(s->o.metrics, GW_REJ_OVERLOAD);
		log_event(LOG_WARN, "overload", "route=%s", pss->route->path);
		gw_http_answer(pss, 503, "busy, try again\n");
		return -1;
	}
	pss->job = j;
	return 0;
}

/* ---- routes ---- */

static int gw_secret_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la == 0 || la != lb)
		return 0;
	return sodium_memcmp(a, b, la) == 0;
}

/* The value of URL argument name ("hub.mode=") copied into out, or -1. lws
 * returns a pointer into its buffer just past the name. */
static int gw_urlarg(struct lws *wsi, const char *name, char *out, size_t outlen)
{
	char buf[512];
	const char *v = lws_get_urlarg_by_name(wsi, name, buf, (int)sizeof(buf));
	size_t n;

	if (!v)
		return -1;
	n = strlen(v);
	if (n >= outlen)
		return -1;
	memcpy(out, v, n + 1);
	return (int)n;
}

static void gw_route_wa_verify(gw_server *s, gw_http_pss *pss)
{
	char mode[32], token[CFG_STR_MAX], challenge[256];
	int lm, lt, lc;

	lm = gw_urlarg(pss->wsi, "hub.mode=", mode, sizeof(mode));
	lt = gw_urlarg(pss->wsi, "hub.verify_token=", token, sizeof(token));
	lc = gw_urlarg(pss->wsi, "hub.challenge=", challenge, sizeof(challenge));
	if (lm < 0 || strcmp(mode, "subscribe") != 0 || lt < 0 || lc <= 0 ||
	    !gw_secret_eq(token, s->o.c->whatsapp.verify_token)) {
		gw_metrics_reject(s->o.metrics, GW_REJ_BAD_VERIFY);
		log_event(LOG_WARN, "webhook_verify_refused", "channel=whatsapp");
		gw_http_answer(pss, 403, "forbidden\n");
		return;
	}
	log_event(LOG_INFO, "webhook_verified", "channel=whatsapp");
	if (gw_http_respond(pss, 200, "text/plain; charset=utf-8", challenge, (size_t)lc) != 0)
		lws_set_timeout(pss->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
}

static void gw_route_wa_post(gw_server *s, gw_http_pss *pss)
{
	const char *secret = s->o.c->whatsapp.app_secret;
	char err[160] = "", why[200];
	gw_job *j = NULL;

	if (secret[0] && (pss->sig_len < 0 || gw_whatsapp_verify(secret, pss->body, pss->body_len,
								 pss->sig_len < 0 ? NULL : pss->sig) != 0)) {
		gw_metrics_reject(s->o.metrics, GW_REJ_BAD_SIGNATURE);
		log_event(LOG_WARN, "webhook_refused", "channel=whatsapp reason=%s bytes=%zu",
			  pss->sig_len < 0 ? "no_signature" : "bad_signature", pss->body_len);
		gw_http_answer(pss, 403, "bad signature\n");
		return;
	}
	if (!s->wa || !s->wa->parse) {
		gw_http_answer(pss, 500, "no whatsapp channel\n");
		return;
	}
	j = gw_job_new(GW_JOB_INBOUND);
	if (!j) {
		gw_http_answer(pss, 503, "out of memory\n");
		return;
	}
	if (s->wa->parse(s->o.c, pss->body, pss->body_len, &j->parsed, err, sizeof(err)) != 0) {
		gw_job_free(j);
		gw_metrics_reject(s->o.metrics, GW_REJ_MALFORMED);
		log_event(LOG_WARN, "webhook_refused", "channel=whatsapp reason=malformed detail=%s bytes=%zu",
			  log_kv_str(err, why, sizeof(why)), pss->body_len);
		gw_http_answer(pss, 400, "malformed\n");
		return;
	}
	if (j->parsed.n_msgs == 0 && j->parsed.n_statuses == 0) {
		gw_job_free(j);
		gw_http_json(pss, 200, "{\"status\":\"ok\"}");
		return;
	}
	j->channel = "whatsapp";
	if (log_enabled(LOG_DEBUG))
		for (size_t i = 0; i < j->parsed.n_msgs; i++) {
			char who[64], id[96];

			log_event(LOG_DEBUG, "inbound", "channel=whatsapp from=%s id=%s kind=%s",
				  log_mask(j->parsed.msgs[i].address, who, sizeof(who)),
				  log_kv_str(j->parsed.msgs[i].provider_id, id, sizeof(id)),
				  j->parsed.msgs[i].kind ? j->parsed.msgs[i].kind : "-");
		}
	gw_http_submit(s, pss, j);
}

static void gw_route_wa_done(gw_server *s, gw_http_pss *pss, const gw_job *j)
{
	(void)s;
	if (j->http_status == 200) {
		gw_http_json(pss, 200, "{\"status\":\"ok\"}");
		return;
	}
	gw_http_json(pss, j->http_status, "{\"status\":\"error\",\"error\":\"store\"}");
}

static void gw_route_healthz(gw_server *s, gw_http_pss *pss)
{
	gw_job *j = gw_job_new(GW_JOB_PING);

	if (!j) {
		gw_http_answer(pss, 503, "out of memory\n");
		return;
	}
	gw_http_submit(s, pss, j);
}

static void gw_route_healthz_done(gw_server *s, gw_http_pss *pss, const gw_job *j)
{
	gw_sender_stats st;
	char body[512];
	int sender_ok = 0, store_ok = j->ping_rc == STORE_OK, n;

	memset(&st, 0, sizeof(st));
	if (s->o.sender) {
		gw_sender_stats_get(s->o.sender, &st);
		sender_ok = st.running != 0;
	}
	/* refused credentials stay 200: inbound messages are still taken and
	 * kept, and a balancer that dropped loket would lose those too */
	n = snprintf(body, sizeof(body),
		     "{\"status\":\"%s\",\"store\":\"%s\",\"sender\":\"%s\",\"credentials\":\"%s\",\"queue\":%lld}",
		     store_ok && sender_ok ? "ok" : "fail", store_ok ? "ok" : store_rc_str(j->ping_rc),
		     sender_ok ? "ok" : "stopped", st.credentials_refused ? "refused" : "ok",
		     j->counts_ok ? (long long)j->counts.pending : -1LL);
	if (n < 0 || (size_t)n >= sizeof(body)) {
		gw_http_answer(pss, 500, "healthz overflow\n");
		return;
	}
	if (!store_ok || !sender_ok)
		log_event(LOG_WARN, "healthz_fail", "store=%s sender=%s", store_ok ? "ok" : store_rc_str(j->ping_rc),
			  sender_ok ? "ok" : "stopped");
	gw_http_json(pss, store_ok && sender_ok ? 200 : 503, body);
}

static void gw_route_metrics(gw_server *s, gw_http_pss *pss)
{
	gw_metrics_extra x;
	store_conv *convs = NULL;
	size_t n = 0, len = 0;
	char *text;

	memset(&x, 0, sizeof(x));
	x.agent_queue = -1;
	if (s->o.sender) {
		gw_sender_stats_get(s->o.sender, &x.sender);
		x.have_sender = 1;
	}
	/* the writer's kept counts: an exact count reads every outbox row (50 ms
	 * with 300,000 waiting), on this thread, every scrape */
	if (gw_writer_outbox(s->writer, &x.counts.pending, &x.counts.dead) == 0) {
		int64_t held = s->o.sender ? (int64_t)gw_sender_held(s->o.sender) : 0;
		x.counts.leased = held < x.counts.pending ? held : x.counts.pending;
		x.counts.pending -= x.counts.leased;
		x.have_counts = 1;
	}
	if (s->o.ro) {
		if (store_queue_list(s->o.ro, 1000, &convs, &n) == STORE_OK) {
			x.agent_queue = (int64_t)n;
			store_convs_free(convs);
		}
	}
	text = gw_metrics_render(s->o.metrics, &x, &len);
	if (!text) {
		gw_http_answer(pss, 500, "out of memory\n");
		return;
	}
	if (gw_http_respond(pss, 200, "text/plain; version=0.0.4; charset=utf-8", text, len) != 0)
		lws_set_timeout(pss->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
	free(text);
}

/* Every dynamic HTTP route: one row each. Static files are the mounts in
 * gw_server_new; websockets are routed by subprotocol (GW_WEB_PATH). */
static const gw_route gw_routes[] = {
    {"/webhook/whatsapp", GW_GET | GW_POST, "GET, POST", "x-hub-signature-256:", 1, gw_route_wa_verify,
     gw_route_wa_post, gw_route_wa_done},
    {"/healthz", GW_GET, "GET", NULL, 0, gw_route_healthz, NULL, gw_route_healthz_done},
    {"/metrics", GW_GET, "GET", NULL, 0, gw_route_metrics, NULL, NULL},
};

static const gw_route *gw_route_find(const char *path)
{
	for (size_t i = 0; i < sizeof(gw_routes) / sizeof(gw_routes[0]); i++)
		if (strcmp(gw_routes[i].path, path) == 0)
			return &gw_routes[i];
	return NULL;
}

/* ---- the HTTP protocol callback ---- */

static unsigned gw_http_method(struct lws *wsi)
{
	if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI))
		return GW_GET;
	if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI))
		return GW_POST;
	return 0;
}

/* A new request: route it, check the body's length, keep the signature. */
static int gw_http_begin(gw_server *s, struct lws *wsi, gw_http_pss *pss, const char *uri)
{
	char cl[32];
	const gw_route *r;
	long long n;
	char *endp;

	gw_http_reset(s, pss);
	pss->wsi = wsi;
	pss->t0_us = clock_mono_us();
	pss->method = gw_http_method(wsi);
	s->waiting++;
	pss->waiting = 1;

	if (s->draining) {
		gw_metrics_reject(s->o.metrics, GW_REJ_OVERLOAD);
		gw_http_answer(pss, 503, "shutting down\n");
		return 0;
	}
	r = gw_route_find(uri);
	if (!r) {
		gw_metrics_reject(s->o.metrics, GW_REJ_NOT_FOUND);
		gw_http_answer(pss, 404, "not found\n");
		return 0;
	}
	pss->route = r;
	if (!(r->methods & pss->method)) {
		gw_metrics_reject(s->o.metrics, GW_REJ_METHOD);
		pss->allow = r->allow;
		gw_http_answer(pss, 405, "method not allowed\n");
		return 0;
	}
	if (pss->method == GW_GET) {
		r->get(s, pss);
		return 0;
	}

	/* POST: lws 4.1.6 reads a body without Content-Length as 100 MB. */
	if (lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0) {
		gw_metrics_reject(s->o.metrics, GW_REJ_NO_LENGTH);
		log_event(LOG_WARN, "request_refused", "route=%s reason=no_length", r->path);
		gw_http_answer(pss, 411, "length required\n");
		return 0;
	}
	n = strtoll(cl, &endp, 10);
	if (endp == cl || *endp || n < 0) {
		gw_metrics_reject(s->o.metrics, GW_REJ_MALFORMED);
		gw_http_answer(pss, 400, "bad content-length\n");
		return 0;
	}
	if (n > s->o.c->server.max_body) {
		gw_metrics_reject(s->o.metrics, GW_REJ_TOO_LARGE);
		log_event(LOG_WARN, "request_refused", "route=%s reason=too_large bytes=%lld max=%lld", r->path, n,
			  (long long)s->o.c->server.max_body);
		gw_http_answer(pss, 413, "payload too large\n");
		return 0;
	}
	if (r->sig_header) {
		pss->sig_len = lws_hdr_custom_copy(wsi, pss->sig, (int)sizeof(pss->sig), r->sig_header,
						   (int)strlen(r->sig_header));
		if (pss->sig_len < 0)
			pss->sig[0] = '\0';
	}
	pss->body_expect = (size_t)n;
	pss->body = malloc((size_t)n + 1);
	if (!pss->body) {
		gw_http_answer(pss, 503, "out of memory\n");
		return 0;
	}
	pss->body[0] = '\0';
	if (n == 0) {
		pss->body_done = 1;
		r->post(s, pss);
	}
	return 0;
}

static void gw_http_body(gw_server *s, gw_http_pss *pss, const void *in, size_t len)
{
	if (!pss->body || pss->answered || pss->body_done)
		return;
	if (len > pss->body_expect - pss->body_len) {
		gw_metrics_reject(s->o.metrics, GW_REJ_TOO_LARGE);
		gw_http_answer(pss, 413, "payload too large\n");
		return;
	}
	memcpy(pss->body + pss->body_len, in, len);
	pss->body_len += len;
	pss->body[pss->body_len] = '\0';
}

static void gw_http_body_done(gw_server *s, gw_http_pss *pss)
{
	if (!pss->body || pss->answered || pss->body_done || !pss->route)
		return;
	pss->body_done = 1;
	pss->route->post(s, pss);
}

/* Finished jobs: answer their connections, or push the web chat's replies. */
static void gw_server_collect(gw_server *s)
{
	gw_job *list, *j;

	if (!s->writer)
		return;
	list = gw_writer_take_done(s->writer);
	while ((j = list)) {
		gw_http_pss *pss;

		list = j->next;
		j->next = NULL;
		if (j->want_replies) {
			gw_web_job_done(s->web, j);
			continue;
		}
		pss = j->waiter;
		if (pss) {
			pss->job = NULL;
			if (pss->route && pss->route->done)
				pss->route->done(s, pss, j);
			else
				gw_http_answer(pss, 500, "no handler\n");
		}
		gw_job_free(j);
	}
}

static int gw_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	gw_http_pss *pss = user;
	gw_server *s = lws_context_user(lws_get_context(wsi));

	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* A websocket upgrade that named no subprotocol we serve. */
		return 1;
	case LWS_CALLBACK_HTTP:
		if (!pss)
			return -1;
		return gw_http_begin(s, wsi, pss, in ? (const char *)in : "");
	case LWS_CALLBACK_HTTP_BODY:
		if (pss)
			gw_http_body(s, pss, in, len);
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (pss)
			gw_http_body_done(s, pss);
		return 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (!pss)
			return 0;
		return gw_http_write(s, wsi, pss);
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		if (pss)
			gw_http_reset(s, pss);
		return 0;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		if (s)
			gw_server_collect(s);
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ---- lifecycle ---- */

static void gw_server_lws_log(int level, const char *line)
{
	char buf[512];
	size_t n = strlen(line);

	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	memcpy(buf, line, n);
	buf[n] = '\0';
	{
		char q[600];

		log_event(level & LLL_ERR ? LOG_ERROR : LOG_WARN, "lws", "msg=%s", log_kv_str(buf, q, sizeof(q)));
	}
}

static const char *const gw_mime_table[GW_MIME_N][2] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".webp", "image/webp"},
    {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"},
};

static int gw_path_join(char *out, size_t outlen, const char *dir, const char *sub)
{
	int n = snprintf(out, outlen, "%s%s%s", dir, sub[0] ? "/" : "", sub);

	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

gw_server *gw_server_new(const gw_server_opts *o, char *err, size_t errlen)
{
	struct lws_context_creation_info info;
	gw_server *s = NULL;
	char host[256];
	int port = 0;

	if (cfg_split_listen(o->c->server.listen, host, sizeof(host), &port) != 0) {
		snprintf(err, errlen, "server.listen: cannot parse \"%s\" as host:port", o->c->server.listen);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->o = *o;
	pthread_mutex_init(&s->wake_lock, NULL);
	s->wa = gw_channel_lookup("whatsapp");
	if (gw_path_join(s->chat_dir, sizeof(s->chat_dir), o->console_dir, "chat") != 0 ||
	    gw_path_join(s->console_dir, sizeof(s->console_dir), o->console_dir, "") != 0) {
		snprintf(err, errlen, "console directory path too long");
		goto fail;
	}
	{
		gw_web_opts wo = {.c = o->c, .ro = o->ro, .metrics = o->metrics};

		s->web = gw_web_new(&wo);
		if (!s->web) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}

	for (int i = 0; i < GW_MIME_N; i++) {
		s->mime[i].next = i + 1 < GW_MIME_N ? &s->mime[i + 1] : NULL;
		s->mime[i].name = gw_mime_table[i][0];
		s->mime[i].value = gw_mime_table[i][1];
	}
	s->mounts[0].mount_next = &s->mounts[1];
	s->mounts[0].mountpoint = "/chat";
	s->mounts[0].mountpoint_len = 5;
	s->mounts[0].origin = s->chat_dir;
	s->mounts[0].def = "index.html";
	s->mounts[0].origin_protocol = LWSMPRO_FILE;
	s->mounts[0].extra_mimetypes = s->mime;
	s->mounts[1].mountpoint = "/console";
	s->mounts[1].mountpoint_len = 8;
	s->mounts[1].origin = s->console_dir;
	s->mounts[1].def = "index.html";
	s->mounts[1].origin_protocol = LWSMPRO_FILE;
	s->mounts[1].extra_mimetypes = s->mime;

	s->protocols[0].name = "http";
	s->protocols[0].callback = gw_http_callback;
	s->protocols[0].per_session_data_size = sizeof(gw_http_pss);
	s->protocols[1].name = GW_WEB_PROTOCOL;
	s->protocols[1].callback = gw_web_callback;
	s->protocols[1].per_session_data_size = gw_web_pss_size();
	s->protocols[1].rx_buffer_size = 0;
	s->protocols[1].user = s->web;

	lws_set_log_level(LLL_ERR | LLL_WARN, gw_server_lws_log);
	memset(&info, 0, sizeof(info));
	info.port = port;
	info.iface = host[0] && strcmp(host, "*") != 0 ? host : NULL;
	info.protocols = s->protocols;
	info.mounts = s->mounts;
	info.user = s;
	info.options = LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_ENFORCE |
		       LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_DISABLE_IPV6;
	info.keepalive_timeout = 5;
	info.timeout_secs = 20;
	info.max_http_header_data = 2048;
	s->ctx = lws_create_context(&info);
	if (!s->ctx) {
		snprintf(err, errlen, "cannot listen on %s (address in use or not available?)", o->c->server.listen);
		goto fail;
	}
	return s;
fail:
	gw_server_free(s);
	return NULL;
}

void gw_server_set_writer(gw_server *s, gw_writer *w)
{
	s->writer = w;
	gw_web_set_writer(s->web, w);
}

void gw_server_wake(void *arg)
{
	gw_server *s = arg;

	if (!s)
		return;
	pthread_mutex_lock(&s->wake_lock);
	if (s->ctx && !s->ctx_dead)
		lws_cancel_service(s->ctx);
	pthread_mutex_unlock(&s->wake_lock);
}

int gw_server_service(gw_server *s)
{
	return lws_service(s->ctx, 0);
}

void gw_server_drain_begin(gw_server *s)
{
	if (s->draining)
		return;
	/* lws_context_deprecate() would close the listen socket, but 4.1.6 reads
	 * the listen wsi after freeing it (a crash); the listener therefore stays
	 * open until lws_context_destroy and every request it still brings is
	 * answered 503 with Connection: close, which providers retry. */
	s->draining = 1;
}

size_t gw_server_waiting(const gw_server *s)
{
	return s->waiting;
}

void gw_server_close(gw_server *s)
{
	if (!s || !s->ctx)
		return;
	pthread_mutex_lock(&s->wake_lock);
	s->ctx_dead = 1;
	pthread_mutex_unlock(&s->wake_lock);
	/* Closing the connections clears the waiter of every job still in the
	 * writer's hands; gw_writer_stop frees those jobs afterwards. */
	lws_context_destroy(s->ctx);
	s->ctx = NULL;
}

void gw_server_free(gw_server *s)
{
	if (!s)
		return;
	gw_server_close(s);
	gw_web_free(s->web);
	pthread_mutex_destroy(&s->wake_lock);
	free(s);
}
