/* gw_whatsapp: the WhatsApp Cloud API channel. Pure transformations, no I/O:
 * Meta's webhook body -> messages and statuses, one outbox item -> the Graph API
 * request that sends it, Meta's answer -> a send outcome. The server owns the
 * routes (and calls gw_whatsapp_verify before parse), the sender owns curl.
 *
 * A sample inbound notification (POST /webhook/whatsapp, signed with
 * X-Hub-Signature-256: sha256=HEX(HMAC-SHA256(app_secret, body))):
 *
 *   {"object": "whatsapp_business_account",
 *    "entry": [{"id": "1029...", "changes": [{"field": "messages", "value": {
 *      "messaging_product": "whatsapp",
 *      "metadata": {"display_phone_number": "6281190001234", "phone_number_id": "1098..."},
 *      "contacts": [{"profile": {"name": "Budi Santoso"}, "wa_id": "6281234567890"}],
 *      "messages": [{"from": "6281234567890", "id": "wamid.HBg...", "timestamp": "1767256321",
 *                    "type": "text", "text": {"body": "Halo"}}]}}]}]}
 *
 * Status notifications carry "statuses": [{"id", "status", "timestamp",
 * "recipient_id", "errors": [{"code", "title"}]}] in the same place.
 *
 * Outbound (see docs/sender.md for the choices): plain text, interactive reply
 * buttons (1-3), an interactive list (4-10), or a document for a form whose URL
 * is a file. */
#include "gateway/gw_whatsapp.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bot/bot_text.h"
#include "gateway/gw_channel.h"
#include "gateway/gw_json.h"

/* Limits of the Cloud API (characters, not bytes). */
#define WA_MAX_TEXT 4096
#define WA_MAX_BODY 1024 /* interactive body text, document caption */
#define WA_MAX_BUTTON_TITLE 20
#define WA_MAX_BUTTON_ID 256
#define WA_MAX_ROW_TITLE 24
#define WA_MAX_ROW_ID 200
#define WA_MAX_ROWS 10
#define WA_LIST_LABEL "Menu" /* the list's opening button: reads the same in id and en */
#define WA_ERRMSG_MAX 160    /* bytes of Meta's message kept in an error */

/* ---- small helpers ---- */

static void wa_err(char *err, size_t errlen, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
}

static const char *wa_str(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Bytes of the first max_chars UTF-8 characters of s (s is valid UTF-8: it
 * comes from a checked document, or from gw_payload). */
static size_t wa_utf8_prefix(const char *s, size_t max_chars)
{
	size_t i = 0, chars = 0;

	while (s[i]) {
		if (((unsigned char)s[i] & 0xC0) != 0x80) {
			if (chars == max_chars)
				break;
			chars++;
		}
		i++;
	}
	return i;
}

static size_t wa_utf8_len(const char *s)
{
	size_t chars = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			chars++;
	return chars;
}

/* ---- signature ---- */

static int wa_hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* One keyed HMAC-SHA256 context per thread, kept between webhooks: OpenSSL
 * 3's one-shot HMAC() fetches the algorithm and builds a context on every
 * call, a tenth of the lws thread's time at 12,000 webhooks a second. The
 * context is re-keyed when the secret differs from the one it holds (a copy,
 * wiped when replaced or when the thread ends). */
typedef struct wa_mac_cache {
	EVP_MAC *mac;
	EVP_MAC_CTX *ctx;
	char *key;
	size_t key_len;
} wa_mac_cache;

static pthread_key_t wa_mac_key;
static pthread_once_t wa_mac_once = PTHREAD_ONCE_INIT;
static int wa_mac_key_ok;

static void wa_mac_drop_key(wa_mac_cache *m)
{
	if (m->key) {
		OPENSSL_cleanse(m->key, m->key_len);
		free(m->key);
	}
	m->key = NULL;
	m->key_len = 0;
}

static void wa_mac_free(void *p)
{
	wa_mac_cache *m = p;

	if (!m)
		return;
	wa_mac_drop_key(m);
	EVP_MAC_CTX_free(m->ctx);
	EVP_MAC_free(m->mac);
	free(m);
}

static void wa_mac_key_init(void)
{
	wa_mac_key_ok = pthread_key_create(&wa_mac_key, wa_mac_free) == 0;
}

/* This thread's cache with a context ready for HMAC-SHA256, or NULL. */
static wa_mac_cache *wa_mac_get(void)
{
	wa_mac_cache *m;
	char digest[] = "SHA256";
	OSSL_PARAM params[2];

	if (pthread_once(&wa_mac_once, wa_mac_key_init) != 0 || !wa_mac_key_ok)
		return NULL;
	if ((m = pthread_getspecific(wa_mac_key)))
		return m;
	if (!(m = calloc(1, sizeof(*m))))
		return NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!(m->mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) || !(m->ctx = EVP_MAC_CTX_new(m->mac)) ||
	    !EVP_MAC_CTX_set_params(m->ctx, params) || pthread_setspecific(wa_mac_key, m) != 0) {
		wa_mac_free(m);
		return NULL;
	}
	return m;
}

/* HMAC-SHA256(key, data) into out through the thread's cached context, or
 * with the one-shot function when there is none. 0 or -1. */
static int wa_hmac_sha256(const char *key, size_t klen, const unsigned char *data, size_t len, unsigned char out[32])
{
	wa_mac_cache *m = wa_mac_get();
	unsigned int olen = 0;
	size_t outl = 0;

	if (m) {
		int ok;
		if (m->key && m->key_len == klen && CRYPTO_memcmp(m->key, key, klen) == 0) {
			ok = EVP_MAC_init(m->ctx, NULL, 0, NULL); /* the same key again */
		} else {
			wa_mac_drop_key(m);
			ok = EVP_MAC_init(m->ctx, (const unsigned char *)key, klen, NULL);
			if (ok && (m->key = malloc(klen + 1))) {
				memcpy(m->key, key, klen);
				m->key_len = klen;
			}
		}
		if (ok && EVP_MAC_update(m->ctx, data, len) && EVP_MAC_final(m->ctx, out, &outl, 32) && outl == 32)
			return 0;
		wa_mac_drop_key(m); /* a context in an unknown state is re-keyed next time */
		return -1;
	}
	if (klen > INT_MAX || !HMAC(EVP_sha256(), key, (int)klen, data, len, out, &olen) || olen != 32)
		return -1;
	return 0;
}

int gw_whatsapp_verify(const char *app_secret, const char *body, size_t len, const char *header)
{
	static const char prefix[] = "sha256=";
	unsigned char want[32], got[32];
	const char *hex;
	size_t hexlen;

	if (!app_secret || !app_secret[0] || !header || (!body && len))
		return -1;
	if (strncmp(header, prefix, sizeof(prefix) - 1) != 0)
		return -1;
	hex = header + sizeof(prefix) - 1;
	hexlen = strlen(hex);
	while (hexlen && (hex[hexlen - 1] == ' ' || hex[hexlen - 1] == '\t' || hex[hexlen - 1] == '\r' ||
			  hex[hexlen - 1] == '\n'))
		hexlen--;
	if (hexlen != 64)
		return -1;
	for (size_t i = 0; i < 32; i++) {
		int hi = wa_hexval(hex[2 * i]), lo = wa_hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		want[i] = (unsigned char)(hi << 4 | lo);
	}
	if (wa_hmac_sha256(app_secret, strlen(app_secret), (const unsigned char *)(body ? body : ""), len, got) != 0)
		return -1;
	return CRYPTO_memcmp(want, got, 32) == 0 ? 0 : -1;
}

/* ---- inbound ----
 *
 * Webhooks (and, in wa_classify, Meta's answers to sends) are parsed with
 * cJSON, the rest of loket uses jansson: on the lws
 * thread, for every webhook, jansson's character-at-a-time reader took 6.1 us
 * for a typical 450-byte notification and cJSON 1.2 us. cJSON is more lenient
 * than jansson where it matters here, so this file adds the checks jansson
 * made: the body must be UTF-8 without a NUL byte or a \u0000 escape (cJSON
 * would cut the string there) and nothing but blank space after the document
 * (wa_body_ok, wa_parse), and a key read twice in one object is refused
 * (wa_get) rather than guessed. Numbers are doubles: only timestamps and
 * error codes are read, as whole numbers. */

typedef struct wa_doc {
	cJSON *root;
	int dup; /* a key read here appears twice in its object */
} wa_doc;

/* o[key], or NULL; a second member with the same key marks the document. */
static const cJSON *wa_get(wa_doc *d, const cJSON *o, const char *key)
{
	const cJSON *found = NULL, *c;

	if (!cJSON_IsObject(o))
		return NULL;
	cJSON_ArrayForEach(c, o)
	{
		if (!c->string || strcmp(c->string, key) != 0)
			continue;
		if (found) {
			d->dup = 1;
			break;
		}
		found = c;
	}
	return found;
}

static const char *wa_jstr(wa_doc *d, const cJSON *o, const char *key)
{
	const cJSON *v = wa_get(d, o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The array a's first element, or NULL when a is no array or empty. */
static cJSON *wa_first(const cJSON *a)
{
	return cJSON_IsArray(a) ? a->child : NULL;
}

/* 0 when the body is UTF-8 without NUL bytes or \u0000 escapes, else -1.
 * (A backslash always starts an escape in valid JSON; outside a string cJSON
 * refuses it anyway.) */
static int wa_body_ok(const char *b, size_t len)
{
	for (size_t i = 0; i < len;) {
		unsigned char ch = (unsigned char)b[i];
		if (ch == 0)
			return -1;
		if (ch == '\\') {
			if (len - i >= 6 && memcmp(b + i + 1, "u0000", 5) == 0)
				return -1;
			i += 2;
		} else if (ch < 0x80) {
			i++;
		} else {
			size_t l = bot_text_utf8_len(b + i, len - i);
			if (!l)
				return -1;
			i += l;
		}
	}
	return 0;
}

/* A whole number in a JSON number: 0 and *out, or -1. */
static int wa_whole(const cJSON *v, long long min, long long max, long long *out)
{
	double x;

	if (!cJSON_IsNumber(v))
		return -1;
	x = v->valuedouble;
	if (!(x >= (double)min && x <= (double)max) || (double)(long long)x != x)
		return -1;
	*out = (long long)x;
	return 0;
}

/* Meta's timestamps are decimal strings of Unix seconds; accept a number too.
 * 0 and *ms filled, or -1. */
static int wa_timestamp(const cJSON *v, int64_t *ms)
{
	long long secs;

	if (cJSON_IsNumber(v)) {
		if (wa_whole(v, 0, INT64_MAX / 1000, &secs) != 0)
			return -1;
	} else if (cJSON_IsString(v)) {
		const char *s = v->valuestring;
		char *end = NULL;
		if (s[0] < '0' || s[0] > '9')
			return -1;
		errno = 0;
		secs = strtoll(s, &end, 10);
		if (errno || *end)
			return -1;
	} else {
		return -1;
	}
	if (secs < 0 || secs > INT64_MAX / 1000)
		return -1;
	*ms = (int64_t)secs * 1000;
	return 0;
}

static const char *wa_display_name(wa_doc *d, const cJSON *value, const char *wa_id)
{
	const cJSON *ct;

	for (ct = wa_first(wa_get(d, value, "contacts")); ct; ct = ct->next) {
		const char *id = wa_jstr(d, ct, "wa_id");
		if (id && strcmp(id, wa_id) == 0)
			return wa_jstr(d, wa_get(d, ct, "profile"), "name");
	}
	return NULL;
}

static int wa_is_media(const char *type)
{
	static const char *const kinds[] = {"image", "document", "audio", "video", "sticker", "voice", NULL};
	for (size_t i = 0; kinds[i]; i++)
		if (strcmp(type, kinds[i]) == 0)
			return 1;
	return 0;
}

/* Fills *m from one messages[] element. Returns 0 or -1 with the reason. */
static int wa_parse_message(wa_doc *d, const cJSON *value, const cJSON *msg, store_inbound *m, char *err, size_t errlen)
{
	const char *type;

	memset(m, 0, sizeof(*m));
	if (!cJSON_IsObject(msg)) {
		wa_err(err, errlen, "message is not an object");
		return -1;
	}
	m->channel = "whatsapp";
	m->address = wa_jstr(d, msg, "from");
	m->provider_id = wa_jstr(d, msg, "id");
	type = wa_jstr(d, msg, "type");
	if (!m->address || !m->address[0] || !m->provider_id || !m->provider_id[0] || !type) {
		wa_err(err, errlen, "message without from, id or type");
		return -1;
	}
	if (wa_timestamp(wa_get(d, msg, "timestamp"), &m->at_ms) != 0) {
		wa_err(err, errlen, "message with a bad timestamp");
		return -1;
	}
	m->display_name = wa_display_name(d, value, m->address);

	if (strcmp(type, "text") == 0) {
		m->kind = "text";
		m->text = wa_jstr(d, wa_get(d, msg, "text"), "body");
		if (!m->text) {
			wa_err(err, errlen, "text message without text.body");
			return -1;
		}
	} else if (strcmp(type, "interactive") == 0) {
		const cJSON *ia = wa_get(d, msg, "interactive");
		const char *itype = wa_jstr(d, ia, "type");
		const cJSON *reply = NULL;
		if (itype && (strcmp(itype, "button_reply") == 0 || strcmp(itype, "list_reply") == 0))
			reply = wa_get(d, ia, itype);
		if (reply) {
			m->kind = "button";
			m->button = wa_jstr(d, reply, "id");
			m->text = wa_jstr(d, reply, "title");
			if (!m->button) {
				wa_err(err, errlen, "interactive reply without id");
				return -1;
			}
		} else {
			/* flows and other interactive answers: kept, not understood */
			m->kind = "media";
			m->media_type = "interactive";
		}
	} else if (strcmp(type, "button") == 0) {
		const cJSON *b = wa_get(d, msg, "button");
		m->kind = "button";
		m->button = wa_jstr(d, b, "payload");
		m->text = wa_jstr(d, b, "text");
		if (!m->button && !m->text) {
			wa_err(err, errlen, "button message without payload");
			return -1;
		}
	} else if (wa_is_media(type)) {
		const cJSON *md = wa_get(d, msg, type);
		m->kind = "media";
		m->media_id = wa_jstr(d, md, "id");
		m->media_type = wa_jstr(d, md, "mime_type");
		if (!m->media_type)
			m->media_type = type;
		m->text = wa_jstr(d, md, "caption");
	} else if (strcmp(type, "reaction") == 0) {
		/* an emoji on one of our messages (none: the reaction was taken
		 * back); kept as the text, so a transcript shows it */
		m->kind = "event";
		m->media_type = "reaction";
		m->text = wa_jstr(d, wa_get(d, msg, "reaction"), "emoji");
	} else if (strcmp(type, "system") == 0) {
		/* WhatsApp's own notice (the citizen changed number): kept with
		 * its text for the transcript */
		m->kind = "event";
		m->media_type = "system";
		m->text = wa_jstr(d, wa_get(d, msg, "system"), "body");
	} else {
		/* location, contacts, unsupported, ...: the type names it */
		m->kind = "media";
		m->media_type = type;
	}
	return 0;
}

/* Fills *st from one statuses[] element; a failure's "<code> <title>" is
 * added to the element so that the document owns it. */
static int wa_parse_status(wa_doc *d, cJSON *sobj, gw_status *st, char *err, size_t errlen)
{
	const cJSON *e0;

	memset(st, 0, sizeof(*st));
	if (!cJSON_IsObject(sobj)) {
		wa_err(err, errlen, "status is not an object");
		return -1;
	}
	st->provider_id = wa_jstr(d, sobj, "id");
	st->recipient = wa_jstr(d, sobj, "recipient_id");
	st->status = wa_jstr(d, sobj, "status");
	if (!st->provider_id || !st->provider_id[0] || !st->status || !st->status[0]) {
		wa_err(err, errlen, "status without id or status");
		return -1;
	}
	if (wa_timestamp(wa_get(d, sobj, "timestamp"), &st->at_ms) != 0) {
		wa_err(err, errlen, "status with a bad timestamp");
		return -1;
	}
	e0 = wa_first(wa_get(d, sobj, "errors"));
	if (cJSON_IsObject(e0)) {
		const char *title = wa_jstr(d, e0, "title");
		const cJSON *added;
		char buf[256];
		long long code;
		int tl, k;

		if (!title)
			title = wa_jstr(d, e0, "message");
		tl = title ? (int)wa_utf8_prefix(title, 100) : 0;
		if (tl > 200) /* 100 characters of at most 2 bytes each fit; longer ones go whole-character */
			tl = (int)wa_utf8_prefix(title, 50);
		if (wa_whole(wa_get(d, e0, "code"), -999999999999LL, 999999999999LL, &code) == 0)
			k = snprintf(buf, sizeof(buf), "%lld%s%.*s", code, title ? " " : "", tl, title ? title : "");
		else
			k = snprintf(buf, sizeof(buf), "%.*s", title ? tl : 5, title ? title : "error");
		if (k < 0 || (size_t)k >= sizeof(buf) || !(added = cJSON_AddStringToObject(sobj, "loket_error", buf))) {
			wa_err(err, errlen, "out of memory");
			return -1;
		}
		st->error = added->valuestring;
	}
	return 0;
}

static void wa_doc_free(void *root)
{
	cJSON_Delete(root);
}

static int wa_parse(const cfg *c, const char *body, size_t len, gw_parsed *out, char *err, size_t errlen)
{
	wa_doc d = {0};
	const cJSON *entries, *entry;
	const char *object, *end = NULL;
	size_t n_msgs = 0, n_st = 0, im = 0, is = 0;
	int rc = -1;

	(void)c;
	memset(out, 0, sizeof(*out));
	if (!body || len == 0) {
		wa_err(err, errlen, "empty body");
		goto out;
	}
	if (wa_body_ok(body, len) != 0 || !(d.root = cJSON_ParseWithLengthOpts(body, len, &end, 0))) {
		wa_err(err, errlen, "not JSON");
		goto out;
	}
	while (end < body + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
		end++;
	if (end != body + len) {
		wa_err(err, errlen, "not JSON: data after the document");
		goto out;
	}
	object = wa_jstr(&d, d.root, "object");
	if (!cJSON_IsObject(d.root) || !object || strcmp(object, "whatsapp_business_account") != 0) {
		wa_err(err, errlen, "not a whatsapp_business_account notification");
		goto out;
	}
	entries = wa_get(&d, d.root, "entry");
	if (!cJSON_IsArray(entries)) {
		wa_err(err, errlen, "entry missing");
		goto out;
	}

	/* pass 1: check the shape and count */
	cJSON_ArrayForEach(entry, entries)
	{
		const cJSON *changes = wa_get(&d, entry, "changes"), *ch;
		if (!cJSON_IsArray(changes)) {
			wa_err(err, errlen, "entry without changes");
			goto out;
		}
		cJSON_ArrayForEach(ch, changes)
		{
			const char *field = wa_jstr(&d, ch, "field");
			const cJSON *value = wa_get(&d, ch, "value"), *msgs, *sts;
			if (!cJSON_IsObject(ch)) {
				wa_err(err, errlen, "change is not an object");
				goto out;
			}
			if (field && strcmp(field, "messages") != 0)
				continue; /* account updates and other fields: not ours */
			if (!cJSON_IsObject(value)) {
				wa_err(err, errlen, "change without value");
				goto out;
			}
			msgs = wa_get(&d, value, "messages");
			sts = wa_get(&d, value, "statuses");
			if ((msgs && !cJSON_IsArray(msgs)) || (sts && !cJSON_IsArray(sts))) {
				wa_err(err, errlen, "messages or statuses is not an array");
				goto out;
			}
			for (const cJSON *x = wa_first(msgs); x; x = x->next)
				n_msgs++;
			for (const cJSON *x = wa_first(sts); x; x = x->next)
				n_st++;
		}
	}
	if (n_msgs && !(out->msgs = calloc(n_msgs, sizeof(*out->msgs)))) {
		wa_err(err, errlen, "out of memory");
		goto out;
	}
	if (n_st && !(out->statuses = calloc(n_st, sizeof(*out->statuses)))) {
		wa_err(err, errlen, "out of memory");
		goto out;
	}

	/* pass 2: fill */
	cJSON_ArrayForEach(entry, entries)
	{
		const cJSON *ch;
		cJSON_ArrayForEach(ch, wa_get(&d, entry, "changes"))
		{
			const char *field = wa_jstr(&d, ch, "field");
			const cJSON *value = wa_get(&d, ch, "value");
			cJSON *x;
			if (field && strcmp(field, "messages") != 0)
				continue;
			for (x = wa_first(wa_get(&d, value, "messages")); x; x = x->next)
				if (wa_parse_message(&d, value, x, &out->msgs[im++], err, errlen) != 0)
					goto out;
			for (x = wa_first(wa_get(&d, value, "statuses")); x; x = x->next)
				if (wa_parse_status(&d, x, &out->statuses[is++], err, errlen) != 0)
					goto out;
		}
	}
	if (d.dup) {
		wa_err(err, errlen, "not JSON: a key appears twice in one object");
		goto out;
	}
	out->n_msgs = im;
	out->n_statuses = is;
	out->owner = d.root;
	out->owner_free = wa_doc_free;
	d.root = NULL;
	rc = 0;
out:
	if (rc != 0) {
		free(out->msgs);
		free(out->statuses);
		memset(out, 0, sizeof(*out));
	}
	cJSON_Delete(d.root);
	return rc;
}

/* ---- outbound ---- */

static int wa_has_url(const char *s)
{
	return strstr(s, "http://") != NULL || strstr(s, "https://") != NULL;
}

/* The file name of a URL that points at a downloadable file (.pdf, .doc, ...),
 * copied into name; 0 when it is one, -1 when it looks like a page. */
static int wa_file_name(const char *url, char *name, size_t namelen)
{
	static const char *const exts[] = {".pdf", ".doc", ".docx", ".xls", ".xlsx", ".zip", NULL};
	size_t end = strcspn(url, "?#"), start = end;
	const char *scheme = strstr(url, "://");
	size_t min = scheme ? (size_t)(scheme - url) + 3 : 0;
	int k;

	while (start > min && url[start - 1] != '/')
		start--;
	if (start <= min && scheme)
		return -1; /* "https://host" alone */
	for (size_t i = 0; exts[i]; i++) {
		size_t el = strlen(exts[i]);
		if (end - start > el && strncasecmp(url + end - el, exts[i], el) == 0) {
			k = snprintf(name, namelen, "%.*s", (int)(end - start), url + start);
			return (k < 0 || (size_t)k >= namelen) ? -1 : 0;
		}
	}
	return -1;
}

/* ---- the request body, written straight into one buffer (gw_json) ---- */

/* "key": the first max_chars characters of value */
static void wa_put_kv_cut(gw_json *b, int first, const char *key, const char *value, size_t max_chars)
{
	if (!first)
		gw_json_raw(b, ",", 1);
	gw_json_str(b, key, strlen(key));
	gw_json_raw(b, ":", 1);
	gw_json_str(b, value, wa_utf8_prefix(value, max_chars));
}

/* "type":"text","text":{"body","preview_url"} */
static void wa_body_text(gw_json *b, const char *text)
{
	gw_json_lit(b, ",\"type\":\"text\",\"text\":{");
	gw_json_kv(b, 1, "body", text);
	if (wa_has_url(text))
		gw_json_lit(b, ",\"preview_url\":true");
	gw_json_lit(b, "}");
}

/* Reply buttons (1-3), with the form's document as header when there is one. */
static void wa_body_buttons(gw_json *b, const char *text, const json_t *buttons, size_t n, const char *doc_url,
			    const char *doc_name)
{
	gw_json_lit(b, ",\"type\":\"interactive\",\"interactive\":{\"type\":\"button\"");
	if (doc_url) {
		gw_json_lit(b, ",\"header\":{\"type\":\"document\",\"document\":{");
		gw_json_kv(b, 1, "link", doc_url);
		gw_json_kv(b, 0, "filename", doc_name);
		gw_json_lit(b, "}}");
	}
	gw_json_lit(b, ",\"body\":{");
	gw_json_kv(b, 1, "text", text);
	gw_json_lit(b, "},\"action\":{\"buttons\":[");
	for (size_t i = 0; i < n; i++) {
		const json_t *bt = json_array_get(buttons, i);
		gw_json_lit(b, i ? ",{\"type\":\"reply\",\"reply\":{" : "{\"type\":\"reply\",\"reply\":{");
		wa_put_kv_cut(b, 1, "id", wa_str(bt, "id"), WA_MAX_BUTTON_ID);
		wa_put_kv_cut(b, 0, "title", wa_str(bt, "title"), WA_MAX_BUTTON_TITLE);
		gw_json_lit(b, "}}");
	}
	gw_json_lit(b, "]}}");
}

/* A list message (4-10 choices). */
static void wa_body_list(gw_json *b, const char *text, const json_t *buttons, size_t n)
{
	if (n > WA_MAX_ROWS)
		n = WA_MAX_ROWS;
	gw_json_lit(b, ",\"type\":\"interactive\",\"interactive\":{\"type\":\"list\",\"body\":{");
	gw_json_kv(b, 1, "text", text);
	gw_json_lit(b, "},\"action\":{");
	gw_json_kv(b, 1, "button", WA_LIST_LABEL);
	gw_json_lit(b, ",\"sections\":[{");
	gw_json_kv(b, 1, "title", WA_LIST_LABEL);
	gw_json_lit(b, ",\"rows\":[");
	for (size_t i = 0; i < n; i++) {
		const json_t *bt = json_array_get(buttons, i);
		gw_json_lit(b, i ? ",{" : "{");
		wa_put_kv_cut(b, 1, "id", wa_str(bt, "id"), WA_MAX_ROW_ID);
		wa_put_kv_cut(b, 0, "title", wa_str(bt, "title"), WA_MAX_ROW_TITLE);
		gw_json_lit(b, "}");
	}
	gw_json_lit(b, "]}]}}");
}

static void wa_body_document(gw_json *b, const char *url, const char *name, const char *caption)
{
	gw_json_lit(b, ",\"type\":\"document\",\"document\":{");
	gw_json_kv(b, 1, "link", url);
	gw_json_kv(b, 0, "filename", name);
	if (caption[0])
		gw_json_kv(b, 0, "caption", caption);
	gw_json_lit(b, "}");
}

static int wa_add_header(gw_request *req, const char *name, const char *value)
{
	size_t n = strlen(name) + 2 + strlen(value) + 1;
	char *h;

	if (req->n_headers >= GW_REQ_HEADERS_MAX || !(h = malloc(n)))
		return -1;
	snprintf(h, n, "%s: %s", name, value);
	req->headers[req->n_headers++] = h;
	return 0;
}

/* A payload's buttons are usable when every one has a string id and title. */
static size_t wa_buttons_ok(const json_t *buttons)
{
	size_t n = json_array_size(buttons);
	for (size_t i = 0; i < n; i++) {
		const json_t *b = json_array_get(buttons, i);
		if (!wa_str(b, "id") || !wa_str(b, "title") || !wa_str(b, "id")[0] || !wa_str(b, "title")[0])
			return 0;
	}
	return n;
}

/* The body after "to" (type and content, closing brace included) for a
 * reply's text and neutral payload, into *rest. 0, or -1 with the reason. */
static int wa_body_rest(const char *text, const char *payload_text, char **rest, size_t *rest_len, char *err,
			size_t errlen)
{
	json_t *payload = NULL, *buttons = NULL;
	gw_json body = {0};
	json_error_t jerr;
	const char *doc_url = NULL;
	char doc_name[256] = "";
	size_t n_buttons = 0;
	int rc = -1;

	if (payload_text && payload_text[0]) {
		const json_t *form;
		payload = json_loads(payload_text, 0, &jerr);
		if (!json_is_object(payload)) {
			wa_err(err, errlen, "payload is not a JSON object");
			goto out;
		}
		if (wa_str(payload, "text"))
			text = wa_str(payload, "text");
		buttons = json_object_get(payload, "buttons");
		n_buttons = wa_buttons_ok(buttons);
		form = json_object_get(payload, "form");
		if (wa_str(form, "url") && wa_file_name(wa_str(form, "url"), doc_name, sizeof(doc_name)) == 0)
			doc_url = wa_str(form, "url");
	}
	if (!text || !text[0]) {
		if (!doc_url) {
			wa_err(err, errlen, "nothing to send: empty text");
			goto out;
		}
		text = "";
	}
	/* Interactive bodies and captions hold 1024 characters: a longer text goes
	 * as plain text (the engine's text already names the choices and the link). */
	if (wa_utf8_len(text) > WA_MAX_BODY) {
		wa_body_text(&body, text);
	} else if (n_buttons >= 1 && n_buttons <= 3) {
		if (!text[0])
			text = doc_name;
		wa_body_buttons(&body, text, buttons, n_buttons, doc_url, doc_name);
	} else if (n_buttons >= 4 && text[0]) {
		wa_body_list(&body, text, buttons, n_buttons);
	} else if (doc_url) {
		wa_body_document(&body, doc_url, doc_name, text);
	} else {
		wa_body_text(&body, text);
	}
	gw_json_lit(&body, "}");
	if (body.bad_utf8) {
		wa_err(err, errlen, "text is not valid UTF-8");
		goto out;
	}
	*rest_len = body.len;
	if (!(*rest = gw_json_take(&body))) {
		wa_err(err, errlen, "out of memory");
		goto out;
	}
	rc = 0;
out:
	gw_json_free(&body);
	json_decref(payload);
	return rc;
}

/* ---- built bodies, kept per thread ----
 *
 * The bot's replies repeat (a few dozen intents, two languages), and turning
 * a reply's stored payload into Meta's body (parsing the payload's JSON,
 * choosing buttons, a list or a document, escaping) was a fifth of the
 * sender's time. So the part of the body after the recipient is kept per
 * (text, payload), in a small direct-mapped table per thread, and a request
 * is the recipient spliced in front of it. Entries are compared in full, so
 * a hash collision costs a rebuild, never a wrong message. */

#define WA_BODY_CACHE 128 /* entries per thread */

typedef struct wa_body_ent {
	uint64_t h;
	char *text, *payload; /* the key, copies */
	char *rest;
	size_t rest_len;
} wa_body_ent;

typedef struct wa_body_cache {
	wa_body_ent e[WA_BODY_CACHE];
} wa_body_cache;

static pthread_key_t wa_body_key;
static pthread_once_t wa_body_once = PTHREAD_ONCE_INIT;
static int wa_body_key_ok;

static void wa_body_ent_clear(wa_body_ent *e)
{
	free(e->text);
	free(e->payload);
	free(e->rest);
	memset(e, 0, sizeof(*e));
}

static void wa_body_cache_free(void *p)
{
	wa_body_cache *c = p;

	if (!c)
		return;
	for (size_t i = 0; i < WA_BODY_CACHE; i++)
		wa_body_ent_clear(&c->e[i]);
	free(c);
}

static void wa_body_key_init(void)
{
	wa_body_key_ok = pthread_key_create(&wa_body_key, wa_body_cache_free) == 0;
}

static wa_body_cache *wa_body_cache_get(void)
{
	wa_body_cache *c;

	if (pthread_once(&wa_body_once, wa_body_key_init) != 0 || !wa_body_key_ok)
		return NULL;
	if ((c = pthread_getspecific(wa_body_key)))
		return c;
	if (!(c = calloc(1, sizeof(*c))))
		return NULL;
	if (pthread_setspecific(wa_body_key, c) != 0) {
		free(c);
		return NULL;
	}
	return c;
}

static uint64_t wa_hash(uint64_t h, const char *s)
{
	/* FNV-1a, with a separator so ("ab","c") and ("a","bc") differ */
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return (h ^ (s ? 0xFF : 0xFE)) * 1099511628211ULL;
}

static int wa_same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The body's rest for (text, payload): from this thread's table, else built
 * (and kept when it could be). *owned is set when the caller must free it. */
static const char *wa_body_rest_cached(const char *text, const char *payload, size_t *len, int *owned, char *err,
				       size_t errlen)
{
	wa_body_cache *c = wa_body_cache_get();
	uint64_t h = wa_hash(wa_hash(14695981039346656037ULL, text), payload);
	wa_body_ent *e = c ? &c->e[h % WA_BODY_CACHE] : NULL;
	char *rest = NULL;

	*owned = 0;
	if (e && e->rest && e->h == h && wa_same(e->text, text) && wa_same(e->payload, payload)) {
		*len = e->rest_len;
		return e->rest;
	}
	if (wa_body_rest(text, payload, &rest, len, err, errlen) != 0)
		return NULL;
	if (e) {
		char *kt = text ? strdup(text) : NULL, *kp = payload ? strdup(payload) : NULL;
		if ((!text || kt) && (!payload || kp)) {
			wa_body_ent_clear(e);
			e->h = h;
			e->text = kt;
			e->payload = kp;
			e->rest = rest;
			e->rest_len = *len;
			return rest;
		}
		free(kt);
		free(kp);
	}
	*owned = 1;
	return rest;
}

/* Points req at {api_base}/{phone_number_id}{suffix} with the access token
 * as Bearer: what every Graph API request of ours shares. 0, or -1 when out
 * of memory. */
static int wa_request_to(const cfg *c, const char *suffix, gw_request *req)
{
	size_t base = strlen(c->whatsapp.api_base), ulen, alen;
	char *auth;
	int rc;

	while (base && c->whatsapp.api_base[base - 1] == '/')
		base--;
	ulen = base + 1 + strlen(c->whatsapp.phone_number_id) + strlen(suffix) + 1;
	if (!(req->url = malloc(ulen)))
		return -1;
	snprintf(req->url, ulen, "%.*s/%s%s", (int)base, c->whatsapp.api_base, c->whatsapp.phone_number_id, suffix);
	alen = strlen("Bearer ") + strlen(c->whatsapp.access_token) + 1;
	if (!(auth = malloc(alen)))
		return -1;
	snprintf(auth, alen, "Bearer %s", c->whatsapp.access_token);
	rc = wa_add_header(req, "Authorization", auth);
	explicit_bzero(auth, alen);
	free(auth);
	return rc;
}

int gw_whatsapp_build_check(const cfg *c, gw_request *req)
{
	memset(req, 0, sizeof(*req));
	if (wa_request_to(c, "?fields=id,display_phone_number", req) != 0) {
		gw_request_cleanup(req);
		return -1;
	}
	return 0;
}

static int wa_build(const cfg *c, const store_outbox_item *it, gw_request *req, char *err, size_t errlen)
{
	gw_json body = {0};
	const char *rest;
	size_t rest_len = 0;
	int rc = -1, owned = 0;

	memset(req, 0, sizeof(*req));
	if (!(rest = wa_body_rest_cached(it->text, it->payload, &rest_len, &owned, err, errlen)))
		goto out;
	if (!it->address[0]) {
		wa_err(err, errlen, "no recipient");
		goto out;
	}
	gw_json_lit(&body, "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\"");
	gw_json_kv(&body, 0, "to", it->address);
	gw_json_raw(&body, rest, rest_len);
	if (body.bad_utf8) {
		wa_err(err, errlen, "recipient is not valid UTF-8");
		goto out;
	}
	if (body.failed)
		goto oom;

	if (wa_request_to(c, "/messages", req) != 0 || wa_add_header(req, "Content-Type", "application/json") != 0)
		goto oom;
	req->body_len = body.len;
	req->body = gw_json_take(&body);
	rc = 0;
	goto out;
oom:
	wa_err(err, errlen, "out of memory");
out:
	if (rc != 0)
		gw_request_cleanup(req);
	gw_json_free(&body);
	if (owned)
		free((char *)rest);
	return rc;
}

/* ---- the answer ---- */

static int wa_code_in(long long code, const long long *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (set[i] == code)
			return 1;
	return 0;
}

static gw_send_class wa_classify(long http_status, const char *body, size_t len, char *provider_id, size_t idlen,
				 char *err, size_t errlen)
{
	/* Meta's throttling codes: app/account/pair rate limits, spam limit. */
	static const long long throttle[] = {4, 80007, 130429, 131048, 131056};
	wa_doc d = {0};
	const cJSON *error;
	long long code = 0;
	int has_code = 0;
	gw_send_class cls;

	if (provider_id && idlen)
		provider_id[0] = '\0';
	if (err && errlen)
		err[0] = '\0';
	if (http_status == 0) {
		wa_err(err, errlen, "no answer (transport error or timeout)");
		return GW_SEND_RETRY;
	}
	/* an answer that is not UTF-8 JSON reads as an empty one (cJSON, checked
	 * as the webhooks are: the id and the message go to the database and logs) */
	if (body && len && wa_body_ok(body, len) == 0)
		d.root = cJSON_ParseWithLength(body, len);

	if (http_status >= 200 && http_status < 300) {
		const char *id = wa_jstr(&d, wa_first(wa_get(&d, d.root, "messages")), "id");
		if (id && provider_id && idlen)
			snprintf(provider_id, idlen, "%s", id);
		if (!id)
			wa_err(err, errlen, "accepted without a message id");
		cJSON_Delete(d.root);
		return GW_SEND_OK;
	}

	error = wa_get(&d, d.root, "error");
	has_code = wa_whole(wa_get(&d, error, "code"), -(1LL << 53), 1LL << 53, &code) == 0;
	if (err && errlen) {
		const char *m = wa_jstr(&d, error, "message");
		char msgbuf[WA_ERRMSG_MAX + 1];
		size_t ml = m ? wa_utf8_prefix(m, WA_ERRMSG_MAX) : 0;
		if (ml > WA_ERRMSG_MAX)
			ml = WA_ERRMSG_MAX;
		while (ml && m && ((unsigned char)m[ml] & 0xC0) == 0x80)
			ml--;
		snprintf(msgbuf, sizeof(msgbuf), "%.*s", (int)ml, m ? m : "");
		if (has_code)
			snprintf(err, errlen, "%lld %s", code, m ? msgbuf : "error");
		else
			snprintf(err, errlen, "http %ld", http_status);
	}
	if (has_code && code == 131047)
		cls = GW_SEND_WINDOW_CLOSED;
	else if (http_status == 401 || (has_code && code == 190))
		cls = GW_SEND_UNAUTHORIZED; /* the token expired or is wrong: ours to fix */
	else if (http_status == 429 || (has_code && wa_code_in(code, throttle, sizeof(throttle) / sizeof(throttle[0]))))
		cls = GW_SEND_RETRY_LATER;
	else if (http_status >= 500)
		cls = GW_SEND_RETRY;
	else
		cls = GW_SEND_PERMANENT; /* 4xx, and redirects nobody should send us */
	cJSON_Delete(d.root);
	return cls;
}

static int wa_configured(const cfg *c)
{
	return c->whatsapp.phone_number_id[0] != '\0' && c->whatsapp.access_token[0] != '\0';
}

const gw_channel_ops gw_whatsapp_ops = {
    .name = "whatsapp",
    .configured = wa_configured,
    .parse = wa_parse,
    .build = wa_build,
    .classify = wa_classify,
    .max_text = WA_MAX_TEXT,
};
