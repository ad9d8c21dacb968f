/* gw_web: the web chat channel and its websocket protocol.
 *
 * A sample exchange (client frames first, JSON text frames):
 *   -> {"type":"hello","session":"3f9c...32 hex","since":41}
 *   <- {"type":"session","id":"3f9c...","office":"DPMPPTSP Kabupaten Tabanan"}
 *   <- {"type":"message","from":"bot","text":"...","buttons":[],"seq":42}
 *   -> {"type":"message","text":"jam buka kantor?","id":"c-7"}
 *   <- {"type":"message","from":"bot","text":"...","buttons":[{"id":"kontak","title":"Kontak"}],"seq":44}
 *   <- {"type":"state","state":"queued","position":1}
 *
 * A session is the conversation's address on channel "web": 32 random hex
 * characters from libsodium, a bearer secret the page keeps. Each socket keeps
 * a bounded queue of outgoing frames written in LWS_CALLBACK_SERVER_WRITEABLE;
 * a client that stops reading is closed rather than buffered without end. The
 * bot's replies come back from the writer as copies in the job (gw_web_job_done)
 * and go to every socket of the session. Missed messages are read from the
 * store with the lws thread's own handle. */
#include "core/clock.h"
#include "gateway/gw_web.h"

#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "gateway/gw_channel.h"

#define GW_WEB_RX_MAX (32 * 1024)    /* bytes of one client frame (JSON-escaped text) */
#define GW_WEB_QUEUE_FRAMES 256	     /* frames waiting for a client, at most */
#define GW_WEB_QUEUE_BYTES (1 << 20) /* bytes waiting for a client, at most */
#define GW_WEB_HISTORY_MAX 200	     /* messages sent on resume */
#define GW_WEB_SESSION_HEX 32
#define GW_WEB_HELLO_WAIT_US 250000 /* how long a new socket may take to say hello */

/* ---- the channel ops ---- */

static int gw_web_configured(const cfg *c)
{
	(void)c;
	return 1;
}

static int gw_web_parse(const cfg *c, const char *body, size_t len, gw_parsed *out, char *err, size_t errlen)
{
	(void)c;
	(void)body;
	(void)len;
	(void)out;
	snprintf(err, errlen, "web chat messages arrive over %s", GW_WEB_PATH);
	return -1;
}

static int gw_web_build(const cfg *c, const store_outbox_item *it, gw_request *req, char *err, size_t errlen)
{
	(void)c;
	(void)it;
	(void)req;
	snprintf(err, errlen, "web chat replies are pushed over the websocket, not sent");
	return -1;
}

static gw_send_class gw_web_classify(long http_status, const char *body, size_t len, char *provider_id, size_t idlen,
				     char *err, size_t errlen)
{
	(void)http_status;
	(void)body;
	(void)len;
	if (idlen)
		provider_id[0] = '\0';
	snprintf(err, errlen, "not sent by the sender");
	return GW_SEND_PERMANENT;
}

const gw_channel_ops gw_web_ops = {
    .name = "web",
    .configured = gw_web_configured,
    .parse = gw_web_parse,
    .build = gw_web_build,
    .classify = gw_web_classify,
    .max_text = 0,
};

/* ---- sockets and sessions ---- */

typedef struct gw_web_frame {
	struct gw_web_frame *next;
	size_t len;
	unsigned char data[]; /* LWS_PRE + len */
} gw_web_frame;

typedef struct gw_web_pss {
	struct gw_web_pss *next; /* gw_web.socks */
	struct lws *wsi;
	int linked;
	char session[GW_WEB_SESSION_HEX + 1]; /* "" until assigned */
	int mode;			      /* the state last told to the client, -1 none */
	char *rx;
	size_t rx_len;
	int rx_drop; /* the current message was too long: skip to its end */
	gw_web_frame *q_head, *q_tail;
	size_t q_n, q_bytes;
	int kill; /* close at the next writable */
} gw_web_pss;

struct gw_web {
	gw_web_opts o;
	gw_writer *writer;
	gw_web_pss *socks;
	size_t n_socks;
};

gw_web *gw_web_new(const gw_web_opts *o)
{
	gw_web *web = calloc(1, sizeof(*web));

	if (web)
		web->o = *o;
	return web;
}

void gw_web_free(gw_web *web)
{
	free(web);
}

void gw_web_set_writer(gw_web *web, gw_writer *w)
{
	if (web)
		web->writer = w;
}

size_t gw_web_pss_size(void)
{
	return sizeof(gw_web_pss);
}

size_t gw_web_sockets(const gw_web *web)
{
	return web ? web->n_socks : 0;
}

static void gw_web_queue_free(gw_web_pss *pss)
{
	gw_web_frame *f, *next;

	for (f = pss->q_head; f; f = next) {
		next = f->next;
		free(f);
	}
	pss->q_head = pss->q_tail = NULL;
	pss->q_n = pss->q_bytes = 0;
}

/* Queues one JSON frame (takes the reference to obj). A client too slow to
 * take what it is sent is closed. */
static void gw_web_send(gw_web *web, gw_web_pss *pss, json_t *obj)
{
	char *text = NULL;
	gw_web_frame *f = NULL;
	size_t len;

	if (!obj || pss->kill)
		goto out;
	text = json_dumps(obj, JSON_COMPACT);
	if (!text)
		goto out;
	len = strlen(text);
	if (pss->q_n >= GW_WEB_QUEUE_FRAMES || pss->q_bytes + len > GW_WEB_QUEUE_BYTES) {
		gw_metrics_reject(web->o.metrics, GW_REJ_SLOW_CLIENT);
		log_event(LOG_WARN, "chat_slow_client", "frames=%zu bytes=%zu", pss->q_n, pss->q_bytes);
		pss->kill = 1;
		lws_callback_on_writable(pss->wsi);
		goto out;
	}
	f = malloc(sizeof(*f) + LWS_PRE + len);
	if (!f)
		goto out;
	f->next = NULL;
	f->len = len;
	memcpy(f->data + LWS_PRE, text, len);
	if (pss->q_tail)
		pss->q_tail->next = f;
	else
		pss->q_head = f;
	pss->q_tail = f;
	pss->q_n++;
	pss->q_bytes += len;
	f = NULL;
	lws_callback_on_writable(pss->wsi);
out:
	free(text);
	json_decref(obj);
}

static void gw_web_error(gw_web *web, gw_web_pss *pss, const char *code, const char *message)
{
	gw_web_send(web, pss, json_pack("{s:s, s:s, s:s}", "type", "error", "code", code, "message", message));
}

static void gw_web_session_send(gw_web *web, gw_web_pss *pss)
{
	/* The office's name lets the page title itself from the config. */
	gw_web_send(
	    web, pss,
	    json_pack("{s:s, s:s, s:s}", "type", "session", "id", pss->session, "office", web->o.c->office.name));
}

static int gw_web_session_valid(const char *s)
{
	size_t n = 0;

	if (!s)
		return 0;
	for (; s[n]; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
			return 0;
	return n == GW_WEB_SESSION_HEX;
}

static void gw_web_session_new(gw_web *web, gw_web_pss *pss)
{
	unsigned char raw[GW_WEB_SESSION_HEX / 2];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(pss->session, sizeof(pss->session), raw, sizeof(raw));
	pss->mode = BOT_MODE_BOT;
	lws_set_timer_usecs(pss->wsi, LWS_SET_TIMER_USEC_CANCEL);
	log_event(LOG_INFO, "chat_session", "new=1 sockets=%zu", web->n_socks);
	gw_web_session_send(web, pss);
}

/* Frees the jansson document a web chat message's strings live in. */
static void gw_web_doc_free(void *doc)
{
	json_decref(doc);
}

/* A message frame from a stored message or a fresh reply: the text and the
 * buttons come from the neutral payload when there is one. */
static json_t *gw_web_message_frame(const char *from, int64_t seq, const char *text, const char *payload)
{
	json_t *frame = NULL, *p = NULL, *buttons = NULL, *pb, *pt, *form;
	size_t i;

	p = payload ? json_loads(payload, 0, NULL) : NULL;
	pt = p ? json_object_get(p, "text") : NULL;
	if (json_is_string(pt))
		text = json_string_value(pt);
	buttons = json_array();
	if (!buttons)
		goto out;
	pb = p ? json_object_get(p, "buttons") : NULL;
	if (json_is_array(pb))
		for (i = 0; i < json_array_size(pb); i++) {
			json_t *b = json_array_get(pb, i);
			const char *id = json_string_value(json_object_get(b, "id"));
			const char *title = json_string_value(json_object_get(b, "title"));

			if (id)
				json_array_append_new(buttons,
						      json_pack("{s:s, s:s}", "id", id, "title", title ? title : id));
		}
	frame = json_pack("{s:s, s:s, s:s, s:O, s:I}", "type", "message", "from", from, "text", text ? text : "",
			  "buttons", buttons, "seq", (json_int_t)seq);
	form = p ? json_object_get(p, "form") : NULL;
	if (frame && json_is_object(form))
		json_object_set(frame, "form", form);
out:
	json_decref(buttons);
	json_decref(p);
	return frame;
}

/* The position of a queued conversation among those waiting (1 = next), or 0. */
static int gw_web_queue_position(gw_web *web, int64_t conversation_id)
{
	store_conv *convs = NULL;
	size_t n = 0;
	int pos = 0;

	if (!web->o.ro || store_queue_list(web->o.ro, 1000, &convs, &n) != STORE_OK)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (convs[i].id == conversation_id) {
			pos = (int)i + 1;
			break;
		}
	store_convs_free(convs);
	return pos;
}

static void gw_web_state_send(gw_web *web, gw_web_pss *pss, int mode, int64_t conversation_id)
{
	int pos = mode == BOT_MODE_QUEUED ? gw_web_queue_position(web, conversation_id) : 0;

	pss->mode = mode;
	gw_web_send(
	    web, pss,
	    json_pack("{s:s, s:s, s:i}", "type", "state", "state", bot_mode_name((bot_mode)mode), "position", pos));
}

/* hello with a known session: the conversation's state and what was missed. */
static void gw_web_resume(gw_web *web, gw_web_pss *pss, int64_t since, int want_history)
{
	store_conv conv;
	store_msg *msgs = NULL;
	size_t n = 0;

	if (!web->o.ro || store_conv_find(web->o.ro, "web", pss->session, &conv) != STORE_OK) {
		pss->mode = BOT_MODE_BOT;
		return;
	}
	if (want_history && store_msgs_since(web->o.ro, conv.id, since, GW_WEB_HISTORY_MAX, &msgs, &n) == STORE_OK) {
		for (size_t i = 0; i < n; i++)
			if (strcmp(msgs[i].direction, "out") == 0)
				gw_web_send(web, pss,
					    gw_web_message_frame(msgs[i].author[0] ? "agent" : "bot", msgs[i].id,
								 msgs[i].text, msgs[i].payload));
		store_msgs_free(msgs, n);
	}
	if (conv.bot.mode != BOT_MODE_BOT)
		gw_web_state_send(web, pss, (int)conv.bot.mode, conv.id);
	else
		pss->mode = BOT_MODE_BOT;
}

static void gw_web_on_hello(gw_web *web, gw_web_pss *pss, json_t *root)
{
	const char *sess = json_string_value(json_object_get(root, "session"));
	json_t *since = json_object_get(root, "since");

	if (!gw_web_session_valid(sess)) {
		if (sess)
			gw_web_error(web, pss, "bad_request", "unknown session; starting a new one");
		if (!pss->session[0])
			gw_web_session_new(web, pss);
		return;
	}
	memcpy(pss->session, sess, GW_WEB_SESSION_HEX + 1);
	lws_set_timer_usecs(pss->wsi, LWS_SET_TIMER_USEC_CANCEL);
	log_event(LOG_INFO, "chat_session", "new=0 sockets=%zu", web->n_socks);
	gw_web_session_send(web, pss);
	gw_web_resume(web, pss, json_is_integer(since) ? (int64_t)json_integer_value(since) : 0,
		      json_is_integer(since));
}

static void gw_web_on_message(gw_web *web, gw_web_pss *pss, json_t *root)
{
	json_t *jt = json_object_get(root, "text"), *jb = json_object_get(root, "button"),
	       *ji = json_object_get(root, "id");
	const char *text = json_string_value(jt), *button = json_string_value(jb), *id = json_string_value(ji);
	json_t *own = NULL;
	gw_job *j = NULL;
	store_inbound *in = NULL;
	char pid[GW_WEB_SESSION_HEX + 2 + 100];
	int n;

	if ((jt && !text) || (jb && !button) || (ji && !id) || (!text && !button) || (text && !button && !text[0])) {
		gw_metrics_reject(web->o.metrics, GW_REJ_BAD_REQUEST);
		gw_web_error(web, pss, "bad_request", "a message needs a non-empty \"text\" or a \"button\"");
		return;
	}
	if (text && json_string_length(jt) > GW_WEB_TEXT_MAX) {
		gw_metrics_reject(web->o.metrics, GW_REJ_TOO_LONG);
		gw_web_error(web, pss, "too_long", "messages are limited to 4096 bytes");
		return;
	}
	if ((button && strlen(button) >= BOT_NAME_MAX) || (id && strlen(id) > 100)) {
		gw_metrics_reject(web->o.metrics, GW_REJ_BAD_REQUEST);
		gw_web_error(web, pss, "bad_request", "button or id too long");
		return;
	}
	if (!pss->session[0])
		gw_web_session_new(web, pss);
	if (!web->writer) {
		gw_web_error(web, pss, "unavailable", "the service is starting or stopping; try again");
		return;
	}

	/* The job owns its strings through one json object, as channels do. */
	own = json_object();
	j = gw_job_new(GW_JOB_INBOUND);
	in = calloc(1, sizeof(*in));
	if (!own || !j || !in)
		goto oom;
	json_object_set_new(own, "address", json_string(pss->session));
	if (text)
		json_object_set(own, "text", jt);
	if (button)
		json_object_set(own, "button", jb);
	if (id) {
		/* dedup is per channel: scope the client's id to its session */
		n = snprintf(pid, sizeof(pid), "%s:%s", pss->session, id);
		if (n < 0 || (size_t)n >= sizeof(pid))
			goto oom;
		json_object_set_new(own, "id", json_string(pid));
	}
	in->channel = "web";
	in->address = json_string_value(json_object_get(own, "address"));
	in->provider_id = id ? json_string_value(json_object_get(own, "id")) : NULL;
	in->kind = button ? "button" : "text";
	in->text = text ? json_string_value(json_object_get(own, "text")) : NULL;
	in->button = button ? json_string_value(json_object_get(own, "button")) : NULL;
	in->at_ms = clock_wall_ms();
	if (!in->address || (id && !in->provider_id) || (text && !in->text) || (button && !in->button))
		goto oom;
	j->parsed.msgs = in;
	j->parsed.n_msgs = 1;
	j->parsed.owner = own;
	j->parsed.owner_free = gw_web_doc_free;
	in = NULL;
	own = NULL;
	j->channel = "web";
	j->want_replies = 1;
	memcpy(j->tag, pss->session, GW_WEB_SESSION_HEX + 1);
	if (gw_writer_submit(web->writer, j) != 0) {
		gw_job_free(j);
		gw_metrics_reject(web->o.metrics, GW_REJ_OVERLOAD);
		gw_web_error(web, pss, "busy", "too many messages right now; try again");
		return;
	}
	return;
oom:
	json_decref(own);
	free(in);
	gw_job_free(j);
	gw_web_error(web, pss, "unavailable", "out of memory");
}

static void gw_web_on_frame(gw_web *web, gw_web_pss *pss, const char *buf, size_t len)
{
	json_error_t jerr;
	json_t *root = json_loadb(buf, len, 0, &jerr);
	const char *type = root ? json_string_value(json_object_get(root, "type")) : NULL;

	if (!root || !json_is_object(root) || !type) {
		gw_metrics_reject(web->o.metrics, GW_REJ_BAD_REQUEST);
		gw_web_error(web, pss, "bad_request", "expected a JSON object with a \"type\"");
		goto out;
	}
	if (strcmp(type, "hello") == 0)
		gw_web_on_hello(web, pss, root);
	else if (strcmp(type, "message") == 0)
		gw_web_on_message(web, pss, root);
	else {
		gw_metrics_reject(web->o.metrics, GW_REJ_BAD_REQUEST);
		gw_web_error(web, pss, "bad_request", "unknown type");
	}
out:
	json_decref(root);
}

static void gw_web_receive(gw_web *web, struct lws *wsi, gw_web_pss *pss, const void *in, size_t len)
{
	int last = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);

	if (!pss->rx_drop) {
		if (pss->rx_len + len > GW_WEB_RX_MAX) {
			pss->rx_drop = 1;
			pss->rx_len = 0;
		} else {
			char *nb = realloc(pss->rx, pss->rx_len + len + 1);

			if (!nb) {
				pss->rx_drop = 1;
				pss->rx_len = 0;
			} else {
				pss->rx = nb;
				memcpy(pss->rx + pss->rx_len, in, len);
				pss->rx_len += len;
			}
		}
	}
	if (!last)
		return;
	if (pss->rx_drop) {
		gw_metrics_reject(web->o.metrics, GW_REJ_TOO_LONG);
		gw_web_error(web, pss, "too_long", "messages are limited to 4096 bytes");
	} else {
		gw_web_on_frame(web, pss, pss->rx, pss->rx_len);
	}
	pss->rx_drop = 0;
	pss->rx_len = 0;
}

void gw_web_job_done(gw_web *web, gw_job *j)
{
	if (!web)
		goto out;
	for (gw_web_pss *pss = web->socks; pss; pss = pss->next) {
		if (strcmp(pss->session, j->tag) != 0)
			continue;
		if (j->http_status != 200) {
			gw_web_error(web, pss, "unavailable", "your message was not saved; please send it again");
			continue;
		}
		for (int i = 0; i < j->n_replies; i++)
			gw_web_send(
			    web, pss,
			    gw_web_message_frame("bot", j->replies[i].id, j->replies[i].text, j->replies[i].payload));
		if (j->mode >= 0 && j->mode != pss->mode)
			gw_web_state_send(web, pss, j->mode, j->conversation_id);
	}
out:
	gw_job_free(j);
}

/* ---- the protocol callback ---- */

int gw_web_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	gw_web_pss *pss = user;
	const struct lws_protocols *proto = lws_get_protocol(wsi);
	gw_web *web = proto ? proto->user : NULL;
	char uri[128];

	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* lws routes by subprotocol: refuse the right protocol on the wrong path */
		if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 || strcmp(uri, GW_WEB_PATH) != 0)
			return 1;
		return 0;
	case LWS_CALLBACK_ESTABLISHED:
		if (!web || !pss)
			return -1;
		memset(pss, 0, sizeof(*pss));
		pss->wsi = wsi;
		pss->mode = -1;
		pss->next = web->socks;
		web->socks = pss;
		pss->linked = 1;
		web->n_socks++;
		lws_set_timer_usecs(wsi, GW_WEB_HELLO_WAIT_US);
		return 0;
	case LWS_CALLBACK_TIMER:
		if (web && pss && pss->linked && !pss->session[0])
			gw_web_session_new(web, pss);
		return 0;
	case LWS_CALLBACK_RECEIVE:
		if (web && pss && pss->linked)
			gw_web_receive(web, wsi, pss, in, len);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE: {
		gw_web_frame *f;

		if (!pss || pss->kill)
			return -1;
		f = pss->q_head;
		if (!f)
			return 0;
		if (lws_write(wsi, f->data + LWS_PRE, f->len, LWS_WRITE_TEXT) < (int)f->len)
			return -1;
		pss->q_head = f->next;
		if (!pss->q_head)
			pss->q_tail = NULL;
		pss->q_n--;
		pss->q_bytes -= f->len;
		free(f);
		if (pss->q_head)
			lws_callback_on_writable(wsi);
		return 0;
	}
	case LWS_CALLBACK_CLOSED:
		if (web && pss && pss->linked) {
			gw_web_pss **pp;

			for (pp = &web->socks; *pp; pp = &(*pp)->next)
				if (*pp == pss) {
					*pp = pss->next;
					break;
				}
			pss->linked = 0;
			web->n_socks--;
			gw_web_queue_free(pss);
			free(pss->rx);
			pss->rx = NULL;
		}
		return 0;
	default:
		break;
	}
	return 0;
}
