/* Tests of the WhatsApp Cloud API channel: webhook signatures (Meta's
 * algorithm, vectors in tests/fixtures/whatsapp_signature_vectors.json), parsing
 * of every inbound fixture and of malformed bodies, the request built for each
 * kind of reply, and the classification of Meta's answers. Fixtures are read
 * from tests/fixtures (run from the repository root) or $LOKET_FIXTURES. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_channel.h"
#include "gateway/gw_whatsapp.h"

/* ---- helpers ---- */

static char *read_fixture(const char *name, size_t *len)
{
	const char *dir = getenv("LOKET_FIXTURES");
	char path[1024];
	FILE *f;
	char *buf = NULL;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir && dir[0] ? dir : "tests/fixtures", name);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open fixture %s (run from the repository root or set LOKET_FIXTURES)", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return buf;
}

static void test_cfg(cfg *c)
{
	cfg_defaults(c);
	snprintf(c->whatsapp.phone_number_id, sizeof(c->whatsapp.phone_number_id), "109876543210987");
	snprintf(c->whatsapp.access_token, sizeof(c->whatsapp.access_token), "EAAtestTOKEN");
	snprintf(c->whatsapp.app_secret, sizeof(c->whatsapp.app_secret), "0123456789abcdef0123456789abcdef");
	snprintf(c->whatsapp.api_base, sizeof(c->whatsapp.api_base), "http://127.0.0.1:9/v21.0/");
}

/* Follows a dotted path ("interactive.action.buttons.0.reply.id") into j. */
static json_t *jpath(json_t *j, const char *path)
{
	const char *p = path;

	while (j && *p) {
		char key[64];
		size_t n = strcspn(p, ".");
		if (n >= sizeof(key))
			return NULL;
		memcpy(key, p, n);
		key[n] = '\0';
		if (json_is_array(j)) {
			char *end;
			unsigned long i = strtoul(key, &end, 10);
			j = *end ? NULL : json_array_get(j, i);
		} else {
			j = json_object_get(j, key);
		}
		p += n;
		if (*p == '.')
			p++;
	}
	return j;
}

/* want: "s:text" a string, "b:true" true, "n:3" an array of 3, "-" absent. */
static void check_path(const char *label, json_t *doc, const char *path, const char *want)
{
	json_t *v = jpath(doc, path);

	if (strcmp(want, "-") == 0) {
		if (v)
			fail_msg("%s: %s should be absent", label, path);
		return;
	}
	if (!v)
		fail_msg("%s: %s missing", label, path);
	if (strncmp(want, "s:", 2) == 0) {
		if (!json_is_string(v) || strcmp(json_string_value(v), want + 2) != 0)
			fail_msg("%s: %s = \"%s\", want \"%s\"", label, path,
				 json_is_string(v) ? json_string_value(v) : "(not a string)", want + 2);
	} else if (strcmp(want, "b:true") == 0) {
		if (!json_is_true(v))
			fail_msg("%s: %s is not true", label, path);
	} else if (strncmp(want, "n:", 2) == 0) {
		if (!json_is_array(v) || json_array_size(v) != strtoul(want + 2, NULL, 10))
			fail_msg("%s: %s has %zu elements, want %s", label, path, json_array_size(v), want + 2);
	} else {
		fail_msg("%s: bad expectation %s", label, want);
	}
}

/* ---- signatures ---- */

static void test_wa_signature_vectors(void **state)
{
	json_error_t jerr;
	size_t len;
	char *raw = read_fixture("whatsapp_signature_vectors.json", &len);
	json_t *doc = json_loadb(raw, len, 0, &jerr), *vecs;

	(void)state;
	assert_non_null(doc);
	vecs = json_object_get(doc, "vectors");
	assert_true(json_array_size(vecs) >= 2);
	for (size_t i = 0; i < json_array_size(vecs); i++) {
		json_t *v = json_array_get(vecs, i);
		const char *name = json_string_value(json_object_get(v, "name"));
		const char *secret = json_string_value(json_object_get(v, "app_secret"));
		const char *header = json_string_value(json_object_get(v, "expected_header"));
		const char *file = json_string_value(json_object_get(v, "raw_body_file"));
		char *body = NULL;
		size_t blen;

		if (file) {
			body = read_fixture(file, &blen);
		} else {
			const char *b = json_string_value(json_object_get(v, "raw_body"));
			assert_non_null(b);
			body = strdup(b);
			blen = strlen(b);
		}
		if (gw_whatsapp_verify(secret, body, blen, header) != 0)
			fail_msg("vector %s: valid signature rejected", name);
		/* the same body one byte shorter must fail */
		if (gw_whatsapp_verify(secret, body, blen - 1, header) != -1)
			fail_msg("vector %s: truncated body accepted", name);
		free(body);
	}
	json_decref(doc);
	free(raw);
}

static void test_wa_signature_rejects(void **state)
{
	const char *secret = "0123456789abcdef0123456789abcdef";
	const char *body = "{\"object\":\"whatsapp_business_account\",\"entry\":[]}";
	const char *good = "sha256=eefab58106e73358686845848feb95c56372e7391b3dc050b6a31c8c5f347ece";
	static const struct {
		const char *label, *secret, *header;
		int want;
	} cases[] = {
	    {"the right one", "0123456789abcdef0123456789abcdef",
	     "sha256=eefab58106e73358686845848feb95c56372e7391b3dc050b6a31c8c5f347ece", 0},
	    {"upper-case hex", "0123456789abcdef0123456789abcdef",
	     "sha256=EEFAB58106E73358686845848FEB95C56372E7391B3DC050B6A31C8C5F347ECE", 0},
	    {"trailing CRLF", "0123456789abcdef0123456789abcdef",
	     "sha256=eefab58106e73358686845848feb95c56372e7391b3dc050b6a31c8c5f347ece\r\n", 0},
	    {"wrong secret", "0123456789abcdef0123456789abcdee",
	     "sha256=eefab58106e73358686845848feb95c56372e7391b3dc050b6a31c8c5f347ece", -1},
	    {"last digit changed", "0123456789abcdef0123456789abcdef",
	     "sha256=eefab58106e73358686845848feb95c56372e7391b3dc050b6a31c8c5f347ecf", -1},
	    {"missing header", "0123456789abcdef0123456789abcdef", NULL, -1},
	    {"empty header", "0123456789abcdef0123456789abcdef", "", -1},
	    {"prefix only", "0123456789abcdef0123456789abcdef", "sha256=", -1},
	    {"sha1 prefix", "0123456789abcdef0123456789abcdef",
	     "sha1=eefab58106e73358686845848feb95c56372e7391b3dc050b6a31c8c5f347ece", -1},
	    {"no prefix", "0123456789abcdef0123456789abcdef",
	     "eefab58106e73358686845848feb95c56372e7391b3dc050b6a31c8c5f347ece", -1},
	    {"63 digits", "0123456789abcdef0123456789abcdef",
	     "sha256=eefab58106e73358686845848feb95c56372e7391b3dc050b6a31c8c5f347ec", -1},
	    {"65 digits", "0123456789abcdef0123456789abcdef",
	     "sha256=eefab58106e73358686845848feb95c56372e7391b3dc050b6a31c8c5f347ece0", -1},
	    {"not hex", "0123456789abcdef0123456789abcdef",
	     "sha256=zefab58106e73358686845848feb95c56372e7391b3dc050b6a31c8c5f347ece", -1},
	    {"empty secret", "", "sha256=eefab58106e73358686845848feb95c56372e7391b3dc050b6a31c8c5f347ece", -1},
	    {"NULL secret", NULL, "sha256=eefab58106e73358686845848feb95c56372e7391b3dc050b6a31c8c5f347ece", -1},
	};

	(void)state;
	(void)secret;
	(void)good;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (gw_whatsapp_verify(cases[i].secret, body, strlen(body), cases[i].header) != cases[i].want)
			fail_msg("signature case \"%s\": want %d", cases[i].label, cases[i].want);
	/* a body with one byte changed */
	{
		char *b = strdup(body);
		b[3] = 'X';
		assert_int_equal(gw_whatsapp_verify(secret, b, strlen(b), good), -1);
		free(b);
	}
	/* an empty body is verified like any other */
	assert_int_equal(gw_whatsapp_verify(secret, NULL, 0, good), -1);
}

/* The HMAC context is kept per thread between calls: secrets that change from
 * call to call (a prefix of the other included), a failed check in between,
 * and other threads checking at the same time must not change any answer. */
typedef struct sig_round {
	int rounds, wrong; /* wrong: answers that differed from the expected */
} sig_round;

static void *sig_worker(void *arg)
{
	static const char body[] = "{\"object\":\"whatsapp_business_account\",\"entry\":[]}";
	static const char good[] = "sha256=eefab58106e73358686845848feb95c56372e7391b3dc050b6a31c8c5f347ece";
	static const struct {
		const char *secret;
		int want;
	} seq[] = {
	    {"0123456789abcdef0123456789abcdef", 0},
	    {"0123456789abcdef0123456789abcde", -1}, /* a prefix of the right one */
	    {"0123456789abcdef0123456789abcdef", 0},
	    {"0123456789abcdef0123456789abcdef0", -1}, /* one longer */
	    {"0123456789abcdef0123456789abcdef", 0},
	    {"0123456789abcdef0123456789abcdef", 0},
	};
	sig_round *r = arg;

	for (int i = 0; i < r->rounds; i++)
		for (size_t k = 0; k < sizeof(seq) / sizeof(seq[0]); k++) {
			if (gw_whatsapp_verify(seq[k].secret, body, strlen(body), good) != seq[k].want)
				r->wrong++;
			/* the same key, a body one byte short: refused, and the next still passes */
			if (seq[k].want == 0 && gw_whatsapp_verify(seq[k].secret, body, strlen(body) - 1, good) != -1)
				r->wrong++;
		}
	return NULL;
}

static void test_wa_signature_cached_context(void **state)
{
	sig_round main_r = {200, 0}, r[3] = {{200, 0}, {200, 0}, {200, 0}};
	pthread_t t[3];

	(void)state;
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&t[i], NULL, sig_worker, &r[i]), 0);
	sig_worker(&main_r);
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		if (r[i].wrong)
			fail_msg("thread %d: %d wrong signature answers", i, r[i].wrong);
	}
	if (main_r.wrong)
		fail_msg("main thread: %d wrong signature answers", main_r.wrong);
}

/* ---- parsing inbound fixtures ---- */

static void parse_fixture(const char *name, gw_parsed *p)
{
	cfg c;
	char err[128] = "";
	size_t len;
	char *body = read_fixture(name, &len);
	int rc;

	test_cfg(&c);
	rc = gw_whatsapp_ops.parse(&c, body, len, p, err, sizeof(err));
	free(body); /* the parsed strings must not point into the body */
	if (rc != 0)
		fail_msg("%s: parse failed: %s", name, err);
}

static void test_wa_parse_text(void **state)
{
	gw_parsed p;

	(void)state;
	parse_fixture("whatsapp_text.json", &p);
	assert_int_equal(p.n_msgs, 1);
	assert_int_equal(p.n_statuses, 0);
	assert_string_equal(p.msgs[0].channel, "whatsapp");
	assert_string_equal(p.msgs[0].kind, "text");
	assert_string_equal(p.msgs[0].address, "6281234567890");
	assert_string_equal(p.msgs[0].display_name, "Budi Santoso");
	assert_string_equal(p.msgs[0].provider_id,
			    "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABIYFDNFQjBDMUM4M0I5NDRFNThBMUQyAA==");
	assert_string_equal(p.msgs[0].text, "Halo, saya mau cek status pesanan saya");
	assert_null(p.msgs[0].button);
	assert_null(p.msgs[0].media_id);
	assert_null(p.msgs[0].media_type);
	assert_int_equal(p.msgs[0].at_ms, 1767256321000LL);
	gw_parsed_free(&p);
	assert_null(p.msgs);
	assert_null(p.owner);
}

static void test_wa_parse_button_reply(void **state)
{
	gw_parsed p;

	(void)state;
	parse_fixture("whatsapp_button_reply.json", &p);
	assert_int_equal(p.n_msgs, 1);
	assert_string_equal(p.msgs[0].kind, "button");
	assert_string_equal(p.msgs[0].button, "cek-pesanan");
	assert_string_equal(p.msgs[0].text, "Cek pesanan");
	assert_string_equal(p.msgs[0].address, "6281234567890");
	assert_string_equal(p.msgs[0].display_name, "Budi Santoso");
	assert_string_equal(p.msgs[0].provider_id,
			    "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABIYFDNBN0YwOUUyQjY0QzFENUU4RjMxAA==");
	assert_int_equal(p.msgs[0].at_ms, 1767256389000LL);
	gw_parsed_free(&p);
}

static void test_wa_parse_list_reply(void **state)
{
	gw_parsed p;

	(void)state;
	parse_fixture("whatsapp_list_reply.json", &p);
	assert_int_equal(p.n_msgs, 1);
	assert_string_equal(p.msgs[0].kind, "button");
	assert_string_equal(p.msgs[0].button, "jne_reg");
	assert_string_equal(p.msgs[0].text, "JNE Reguler");
	assert_int_equal(p.msgs[0].at_ms, 1767256455000LL);
	gw_parsed_free(&p);
}

static void test_wa_parse_image(void **state)
{
	gw_parsed p;

	(void)state;
	parse_fixture("whatsapp_image.json", &p);
	assert_int_equal(p.n_msgs, 1);
	assert_string_equal(p.msgs[0].kind, "media");
	assert_string_equal(p.msgs[0].media_id, "1290457783211456");
	assert_string_equal(p.msgs[0].media_type, "image/jpeg");
	assert_string_equal(p.msgs[0].text, "Bukti transfer");
	assert_null(p.msgs[0].button);
	assert_int_equal(p.msgs[0].at_ms, 1767256512000LL);
	gw_parsed_free(&p);
}

static void test_wa_parse_status_delivered(void **state)
{
	gw_parsed p;

	(void)state;
	parse_fixture("whatsapp_status_delivered.json", &p);
	assert_int_equal(p.n_msgs, 0);
	assert_int_equal(p.n_statuses, 1);
	assert_string_equal(p.statuses[0].provider_id,
			    "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEkM0MUU3QTkzQjI4RDA1RjZFMQA=");
	assert_string_equal(p.statuses[0].status, "delivered");
	assert_null(p.statuses[0].error);
	assert_int_equal(p.statuses[0].at_ms, 1767256330000LL);
	gw_parsed_free(&p);
}

static void test_wa_parse_status_failed(void **state)
{
	gw_parsed p;

	(void)state;
	parse_fixture("whatsapp_status_failed.json", &p);
	assert_int_equal(p.n_statuses, 1);
	assert_string_equal(p.statuses[0].status, "failed");
	assert_string_equal(p.statuses[0].error, "131047 Re-engagement message");
	assert_int_equal(p.statuses[0].at_ms, 1767345600000LL);
	gw_parsed_free(&p);
}

/* Several messages and statuses across entries and changes, other message
 * types, a contact list that does not name the sender. */
static void test_wa_parse_mixed_batch(void **state)
{
	static const char body[] =
	    "{\"object\":\"whatsapp_business_account\",\"entry\":["
	    "{\"id\":\"1\",\"changes\":[{\"field\":\"messages\",\"value\":{"
	    "\"contacts\":[{\"wa_id\":\"62811\",\"profile\":{\"name\":\"Ayu\"}}],"
	    "\"messages\":["
	    "{\"from\":\"62811\",\"id\":\"m1\",\"timestamp\":\"100\",\"type\":\"location\",\"location\":{\"latitude\":-"
	    "8.5}},"
	    "{\"from\":\"62822\",\"id\":\"m2\",\"timestamp\":200,\"type\":\"document\",\"document\":{\"id\":\"d1\","
	    "\"mime_type\":\"application/pdf\"}},"
	    "{\"from\":\"62811\",\"id\":\"m3\",\"timestamp\":\"300\",\"type\":\"button\",\"button\":{\"payload\":"
	    "\"formulir\",\"text\":\"Formulir\"}},"
	    "{\"from\":\"62811\",\"id\":\"m4\",\"timestamp\":\"400\",\"type\":\"reaction\",\"reaction\":{"
	    "\"message_id\":\"wamid.OURS\",\"emoji\":\"\\uD83D\\uDC4D\"}},"
	    "{\"from\":\"62811\",\"id\":\"m5\",\"timestamp\":\"401\",\"type\":\"reaction\",\"reaction\":{"
	    "\"message_id\":\"wamid.OURS\"}},"
	    "{\"from\":\"62811\",\"id\":\"m6\",\"timestamp\":\"402\",\"type\":\"system\",\"system\":{"
	    "\"body\":\"Ayu changed their phone number\",\"wa_id\":\"62899\",\"type\":\"user_changed_number\"}}"
	    "]}},"
	    "{\"field\":\"account_update\",\"value\":{\"event\":\"x\"}}]},"
	    "{\"id\":\"2\",\"changes\":[{\"field\":\"messages\",\"value\":{"
	    "\"statuses\":[{\"id\":\"s1\",\"status\":\"read\",\"timestamp\":\"500\",\"recipient_id\":\"62811\"},"
	    "{\"id\":\"s2\",\"status\":\"failed\",\"timestamp\":\"600\",\"errors\":[{\"code\":131026}]}]}}]}]}";
	cfg c;
	gw_parsed p;
	char err[128];

	(void)state;
	test_cfg(&c);
	assert_int_equal(gw_whatsapp_ops.parse(&c, body, strlen(body), &p, err, sizeof(err)), 0);
	assert_int_equal(p.n_msgs, 6);
	assert_int_equal(p.n_statuses, 2);
	assert_string_equal(p.msgs[0].kind, "media");
	assert_string_equal(p.msgs[0].media_type, "location");
	assert_string_equal(p.msgs[0].display_name, "Ayu");
	assert_string_equal(p.msgs[1].media_type, "application/pdf");
	assert_string_equal(p.msgs[1].media_id, "d1");
	assert_null(p.msgs[1].display_name);
	assert_int_equal(p.msgs[1].at_ms, 200000);
	assert_string_equal(p.msgs[2].kind, "button");
	assert_string_equal(p.msgs[2].button, "formulir");
	assert_string_equal(p.msgs[2].text, "Formulir");
	assert_string_equal(p.msgs[3].kind, "event");
	assert_string_equal(p.msgs[3].media_type, "reaction");
	assert_string_equal(p.msgs[3].text, "\xF0\x9F\x91\x8D"); /* the emoji, for the transcript */
	assert_string_equal(p.msgs[4].media_type, "reaction");
	assert_null(p.msgs[4].text); /* taken back */
	assert_string_equal(p.msgs[5].kind, "event");
	assert_string_equal(p.msgs[5].media_type, "system");
	assert_string_equal(p.msgs[5].text, "Ayu changed their phone number");
	assert_string_equal(p.statuses[0].status, "read");
	assert_string_equal(p.statuses[0].recipient, "62811");
	assert_string_equal(p.statuses[1].error, "131026");
	assert_null(p.statuses[1].recipient); /* kept: the writer reports it unknown */
	gw_parsed_free(&p);
}

static void test_wa_parse_malformed(void **state)
{
	static const struct {
		const char *label, *body;
	} cases[] = {
	    {"empty body", ""},
	    {"not JSON", "hello"},
	    {"truncated JSON", "{\"object\":\"whatsapp_business_account\",\"entry\":["},
	    {"JSON array", "[1,2,3]"},
	    {"JSON string", "\"whatsapp_business_account\""},
	    {"wrong object", "{\"object\":\"page\",\"entry\":[]}"},
	    {"object not a string", "{\"object\":7,\"entry\":[]}"},
	    {"missing entry", "{\"object\":\"whatsapp_business_account\"}"},
	    {"entry an object", "{\"object\":\"whatsapp_business_account\",\"entry\":{}}"},
	    {"entry of numbers", "{\"object\":\"whatsapp_business_account\",\"entry\":[1]}"},
	    {"changes a string", "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":\"x\"}]}"},
	    {"change a number", "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[5]}]}"},
	    {"value missing",
	     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"field\":\"messages\"}]}]}"},
	    {"messages an object",
	     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"value\":{\"messages\":{}}}]}]}"},
	    {"message a string", "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"value\":{"
				 "\"messages\":[\"x\"]}}]}]}"},
	    {"message without from",
	     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"value\":{\"messages\":["
	     "{\"id\":\"a\",\"timestamp\":\"1\",\"type\":\"text\",\"text\":{\"body\":\"x\"}}]}}]}]}"},
	    {"from a number",
	     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"value\":{\"messages\":["
	     "{\"from\":628,\"id\":\"a\",\"timestamp\":\"1\",\"type\":\"text\",\"text\":{\"body\":\"x\"}}]}}]}]}"},
	    {"text body a number",
	     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"value\":{\"messages\":["
	     "{\"from\":\"62\",\"id\":\"a\",\"timestamp\":\"1\",\"type\":\"text\",\"text\":{\"body\":5}}]}}]}]}"},
	    {"text missing",
	     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"value\":{\"messages\":["
	     "{\"from\":\"62\",\"id\":\"a\",\"timestamp\":\"1\",\"type\":\"text\"}]}}]}]}"},
	    {"huge timestamp",
	     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"value\":{\"messages\":["
	     "{\"from\":\"62\",\"id\":\"a\",\"timestamp\":\"99999999999999999999999\",\"type\":\"text\",\"text\":{"
	     "\"body\":\"x\"}}]}}]}]}"},
	    {"timestamp overflowing ms",
	     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"value\":{\"messages\":["
	     "{\"from\":\"62\",\"id\":\"a\",\"timestamp\":9223372036854775807,\"type\":\"text\",\"text\":{\"body\":"
	     "\"x\"}}]}}]}]}"},
	    {"negative timestamp",
	     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"value\":{\"messages\":["
	     "{\"from\":\"62\",\"id\":\"a\",\"timestamp\":\"-5\",\"type\":\"text\",\"text\":{\"body\":\"x\"}}]}}]}]}"},
	    {"timestamp with letters",
	     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"value\":{\"messages\":["
	     "{\"from\":\"62\",\"id\":\"a\",\"timestamp\":\"12x\",\"type\":\"text\",\"text\":{\"body\":\"x\"}}]}}]}]}"},
	    {"status without id",
	     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"value\":{\"statuses\":["
	     "{\"status\":\"read\",\"timestamp\":\"1\"}]}}]}]}"},
	    {"statuses a number",
	     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"value\":{\"statuses\":3}}]}]}"},
	    {"duplicate keys", "{\"object\":\"whatsapp_business_account\",\"object\":\"x\",\"entry\":[]}"},
	    {"interactive reply without id",
	     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"value\":{\"messages\":["
	     "{\"from\":\"62\",\"id\":\"a\",\"timestamp\":\"1\",\"type\":\"interactive\",\"interactive\":"
	     "{\"type\":\"button_reply\",\"button_reply\":{\"title\":7}}}]}}]}]}"},
	};
	cfg c;

	(void)state;
	test_cfg(&c);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		gw_parsed p;
		char err[128] = "";
		int rc = gw_whatsapp_ops.parse(&c, cases[i].body, strlen(cases[i].body), &p, err, sizeof(err));
		if (rc != -1)
			fail_msg("malformed case \"%s\": parse returned %d", cases[i].label, rc);
		if (!err[0])
			fail_msg("malformed case \"%s\": no reason given", cases[i].label);
		if (p.msgs || p.statuses || p.owner)
			fail_msg("malformed case \"%s\": output not cleared", cases[i].label);
	}
	/* NULL body, and a body with an embedded NUL */
	{
		gw_parsed p;
		char err[64];
		assert_int_equal(gw_whatsapp_ops.parse(&c, NULL, 0, &p, err, sizeof(err)), -1);
		assert_int_equal(gw_whatsapp_ops.parse(&c, "{\"a\":\0}", 7, &p, err, sizeof(err)), -1);
	}
	/* an empty entry list is valid: nothing in it */
	{
		gw_parsed p;
		char err[64];
		const char *b = "{\"object\":\"whatsapp_business_account\",\"entry\":[]}";
		assert_int_equal(gw_whatsapp_ops.parse(&c, b, strlen(b), &p, err, sizeof(err)), 0);
		assert_int_equal(p.n_msgs + p.n_statuses, 0);
		gw_parsed_free(&p);
	}
}

/* The checks cJSON does not make and jansson did (gw_whatsapp.c, inbound):
 * every case is one text message whose raw JSON differs. */
#define WA_ONE(from, msg_json)                                                                                         \
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"value\":{\"messages\":[{\"from\":" from \
	",\"id\":\"a\",\"timestamp\":\"1\",\"type\":\"text\",\"text\":" msg_json "}]}}]}]}"

static void test_wa_parse_strictness(void **state)
{
	static const struct {
		const char *label, *body;
		const char *want_text; /* NULL: refused */
	} cases[] = {
	    {"plain", WA_ONE("\"62\"", "{\"body\":\"halo\"}"), "halo"},
	    {"escapes decoded", WA_ONE("\"62\"", "{\"body\":\"a\\\"b\\\\c\\/d\\n\\u00e9\"}"), "a\"b\\c/d\n\xc3\xa9"},
	    {"surrogate pair", WA_ONE("\"62\"", "{\"body\":\"\\ud83d\\ude4f\"}"), "\xf0\x9f\x99\x8f"},
	    {"raw UTF-8", WA_ONE("\"62\"", "{\"body\":\"terima kasih \xf0\x9f\x99\x8f\"}"),
	     "terima kasih \xf0\x9f\x99\x8f"},
	    {"a lone surrogate", WA_ONE("\"62\"", "{\"body\":\"\\ud83d\"}"), NULL},
	    {"invalid UTF-8 in a string", WA_ONE("\"62\"", "{\"body\":\"a\xff\"}"), NULL},
	    {"overlong UTF-8", WA_ONE("\"62\"", "{\"body\":\"\xc0\xaf\"}"), NULL},
	    {"a \\u0000 escape", WA_ONE("\"62\"", "{\"body\":\"ab\\u0000cd\"}"), NULL},
	    {"an escaped backslash before u0000", WA_ONE("\"62\"", "{\"body\":\"ab\\\\u0000\"}"), "ab\\u0000"},
	    {"the key read twice", WA_ONE("\"62\"", "{\"body\":\"a\",\"body\":\"b\"}"), NULL},
	    {"from twice", WA_ONE("\"62\",\"from\":\"63\"", "{\"body\":\"a\"}"), NULL},
	    {"a key twice where nothing is read", WA_ONE("\"62\"", "{\"body\":\"a\",\"x\":1,\"x\":2}"), "a"},
	    {"a huge number where nothing is read",
	     WA_ONE("\"62\"", "{\"body\":\"a\",\"n\":1234567890123456789012345}"), "a"},
	    {"trailing data", WA_ONE("\"62\"", "{\"body\":\"a\"}") "x", NULL},
	    {"a second document", WA_ONE("\"62\"", "{\"body\":\"a\"}") "{}", NULL},
	    {"trailing blank space", WA_ONE("\"62\"", "{\"body\":\"a\"}") " \r\n", "a"},
	};
	cfg c;

	(void)state;
	test_cfg(&c);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		gw_parsed p;
		char err[128] = "";
		int rc = gw_whatsapp_ops.parse(&c, cases[i].body, strlen(cases[i].body), &p, err, sizeof(err));
		if (!cases[i].want_text) {
			if (rc != -1 || !err[0] || p.msgs || p.owner)
				fail_msg("case \"%s\": accepted (rc %d)", cases[i].label, rc);
			continue;
		}
		if (rc != 0)
			fail_msg("case \"%s\": refused: %s", cases[i].label, err);
		if (p.n_msgs != 1 || strcmp(p.msgs[0].text, cases[i].want_text) != 0)
			fail_msg("case \"%s\": text \"%s\"", cases[i].label, p.n_msgs ? p.msgs[0].text : "-");
		gw_parsed_free(&p);
	}

	/* timestamps: whole numbers only, as a string or a number */
	static const struct {
		const char *ts;
		int64_t want_ms; /* -1: refused */
	} ts[] = {{"1700000000", 1700000000000},
		  {"\"1700000000\"", 1700000000000},
		  {"1e3", 1000000},
		  {"1.5", -1},
		  {"-1", -1},
		  {"\"\"", -1},
		  {"true", -1},
		  {"9223372036854776", -1}};
	for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
		char body[512];
		gw_parsed p;
		char err[128] = "";
		snprintf(body, sizeof(body),
			 "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"value\":{\"messages\":"
			 "[{\"from\":\"62\",\"id\":\"a\",\"timestamp\":%s,\"type\":\"text\",\"text\":{\"body\":\"x\"}}]"
			 "}}]}]}",
			 ts[i].ts);
		int rc = gw_whatsapp_ops.parse(&c, body, strlen(body), &p, err, sizeof(err));
		if (ts[i].want_ms < 0) {
			if (rc != -1)
				fail_msg("timestamp %s accepted", ts[i].ts);
			continue;
		}
		if (rc != 0 || p.msgs[0].at_ms != ts[i].want_ms)
			fail_msg("timestamp %s: rc %d", ts[i].ts, rc);
		gw_parsed_free(&p);
	}
}

/* Mutations of the fixtures (bytes flipped, inserted, deleted, cut, spliced
 * from another fixture), 20,000 of them from a fixed seed: parse never
 * crashes (the suite also runs under ASan), fails with a reason and an empty
 * result, or succeeds with messages that have what the writer needs and text
 * that is valid UTF-8. */
static void test_wa_parse_mutations(void **state)
{
	static const char *const names[] = {
	    "whatsapp_text.json",  "whatsapp_button_reply.json",     "whatsapp_list_reply.json",
	    "whatsapp_image.json", "whatsapp_status_delivered.json", "whatsapp_status_failed.json"};
	enum { N = sizeof(names) / sizeof(names[0]) };
	static const char tokens[] = "{}[]\",:\\u0000\xff\xc3\xa9 09-.eE";
	char *src[N];
	size_t len[N];
	uint64_t seed = 0x10ce7;
	int ok = 0, refused = 0;
	cfg c;

	(void)state;
	test_cfg(&c);
	for (size_t i = 0; i < N; i++)
		src[i] = read_fixture(names[i], &len[i]);
	for (int it = 0; it < 20000; it++) {
		size_t k = (size_t)(seed % N), n = len[k], cap = n * 2 + 64;
		char *b = malloc(cap);
		assert_non_null(b);
		memcpy(b, src[k], n);
		for (int m = 0, muts = 1 + (int)((seed >> 8) % 4); m < muts; m++) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			size_t at = n ? (size_t)(seed >> 33) % n : 0;
			switch ((seed >> 20) % 5) {
			case 0: /* flip a byte */
				if (n)
					b[at] = (char)(seed >> 40);
				break;
			case 1: /* insert a token byte */
				if (n + 1 < cap) {
					memmove(b + at + 1, b + at, n - at);
					b[at] = tokens[(seed >> 45) % (sizeof(tokens) - 1)];
					n++;
				}
				break;
			case 2: /* delete a run */
				if (n) {
					size_t run = 1 + (size_t)(seed >> 50) % 8;
					if (run > n - at)
						run = n - at;
					memmove(b + at, b + at + run, n - at - run);
					n -= run;
				}
				break;
			case 3: /* cut */
				n = at;
				break;
			default: { /* splice a piece of another fixture */
				size_t o = (size_t)(seed >> 12) % N, from = len[o] ? (size_t)(seed >> 24) % len[o] : 0;
				size_t run = 1 + (size_t)(seed >> 52) % 32;
				if (run > len[o] - from)
					run = len[o] - from;
				if (n + run < cap) {
					memmove(b + at + run, b + at, n - at);
					memcpy(b + at, src[o] + from, run);
					n += run;
				}
			}
			}
		}
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;

		gw_parsed p;
		char err[128] = "";
		char *exact = malloc(n ? n : 1); /* exactly n bytes: ASan sees any read past the end */
		assert_non_null(exact);
		memcpy(exact, b, n);
		int rc = gw_whatsapp_ops.parse(&c, exact, n, &p, err, sizeof(err));
		if (rc != 0) {
			if (rc != -1 || !err[0] || p.msgs || p.statuses || p.owner)
				fail_msg("mutation %d: rc %d, reason \"%s\"", it, rc, err);
			refused++;
		} else {
			for (size_t i = 0; i < p.n_msgs; i++) {
				const store_inbound *m = &p.msgs[i];
				if (!m->channel || !m->address || !m->address[0] || !m->provider_id || !m->kind)
					fail_msg("mutation %d: message %zu incomplete", it, i);
				json_t *js = m->text ? json_string(m->text) : NULL; /* jansson checks UTF-8 */
				if (m->text && !js)
					fail_msg("mutation %d: text not UTF-8", it);
				json_decref(js);
			}
			for (size_t i = 0; i < p.n_statuses; i++)
				if (!p.statuses[i].provider_id || !p.statuses[i].status)
					fail_msg("mutation %d: status %zu incomplete", it, i);
			gw_parsed_free(&p);
			ok++;
		}
		free(exact);
		free(b);
	}
	print_message("mutations: %d parsed, %d refused\n", ok, refused);
	/* both outcomes were exercised */
	assert_true(ok > 100);
	assert_true(refused > 100);
	for (size_t i = 0; i < N; i++)
		free(src[i]);
}

/* ---- building requests ---- */

/* 9 and 7 emoji (4 bytes each); 9 em dashes (3 bytes) separated by spaces */
#define EMO "\xf0\x9f\x99\x82"
#define E7 EMO EMO EMO EMO EMO EMO EMO
#define E9 E7 EMO EMO
#define DASH "\xe2\x80\x94"
#define D9 DASH " " DASH " " DASH " " DASH " " DASH " " DASH " " DASH " " DASH " " DASH

typedef struct build_case {
	const char *label;
	const char *payload; /* NULL: text only */
	const char *text;
	struct {
		const char *path, *want;
	} checks[10];
} build_case;

static const build_case build_cases[] = {
    {"plain text",
     "{\"text\":\"Kantor buka jam 08.00.\"}",
     "Kantor buka jam 08.00.",
     {{"messaging_product", "s:whatsapp"},
      {"recipient_type", "s:individual"},
      {"to", "s:6281234567890"},
      {"type", "s:text"},
      {"text.body", "s:Kantor buka jam 08.00."},
      {"text.preview_url", "-"},
      {"interactive", "-"}}},
    {"no payload: the stored text", NULL, "Terima kasih.", {{"type", "s:text"}, {"text.body", "s:Terima kasih."}}},
    {"text with a link previews it",
     "{\"text\":\"Formulir: https://dpmptsp.tabanankab.go.id/formulir\"}",
     "x",
     {{"type", "s:text"},
      {"text.body", "s:Formulir: https://dpmptsp.tabanankab.go.id/formulir"},
      {"text.preview_url", "b:true"}}},
    {"3 buttons",
     "{\"text\":\"Pilih:\",\"buttons\":[{\"id\":\"formulir\",\"title\":\"Formulir\"},"
     "{\"id\":\"kontak\",\"title\":\"Kontak\"},{\"id\":\"petugas\",\"title\":\"Petugas\"}]}",
     "Pilih:",
     {{"type", "s:interactive"},
      {"interactive.type", "s:button"},
      {"interactive.body.text", "s:Pilih:"},
      {"interactive.action.buttons", "n:3"},
      {"interactive.action.buttons.0.type", "s:reply"},
      {"interactive.action.buttons.0.reply.id", "s:formulir"},
      {"interactive.action.buttons.2.reply.title", "s:Petugas"},
      {"interactive.header", "-"},
      {"text", "-"}}},
    {"5 buttons become a list",
     "{\"text\":\"Layanan:\",\"buttons\":[{\"id\":\"a\",\"title\":\"Satu\"},{\"id\":\"b\",\"title\":\"Dua\"},"
     "{\"id\":\"c\",\"title\":\"Tiga\"},{\"id\":\"d\",\"title\":\"Empat\"},{\"id\":\"e\",\"title\":\"Lima\"}]}",
     "Layanan:",
     {{"type", "s:interactive"},
      {"interactive.type", "s:list"},
      {"interactive.body.text", "s:Layanan:"},
      {"interactive.action.button", "s:Menu"},
      {"interactive.action.sections", "n:1"},
      {"interactive.action.sections.0.rows", "n:5"},
      {"interactive.action.sections.0.rows.0.id", "s:a"},
      {"interactive.action.sections.0.rows.4.title", "s:Lima"},
      {"interactive.action.buttons", "-"}}},
    {"12 buttons: a list of 10",
     "{\"text\":\"x\",\"buttons\":[{\"id\":\"1\",\"title\":\"1\"},{\"id\":\"2\",\"title\":\"2\"},"
     "{\"id\":\"3\",\"title\":\"3\"},{\"id\":\"4\",\"title\":\"4\"},{\"id\":\"5\",\"title\":\"5\"},"
     "{\"id\":\"6\",\"title\":\"6\"},{\"id\":\"7\",\"title\":\"7\"},{\"id\":\"8\",\"title\":\"8\"},"
     "{\"id\":\"9\",\"title\":\"9\"},{\"id\":\"10\",\"title\":\"10\"},{\"id\":\"11\",\"title\":\"11\"},"
     "{\"id\":\"12\",\"title\":\"12\"}]}",
     "x",
     {{"interactive.type", "s:list"},
      {"interactive.action.sections.0.rows", "n:10"},
      {"interactive.action.sections.0.rows.9.id", "s:10"}}},
    {"long button titles cut at 20 characters",
     "{\"text\":\"Pilih\",\"buttons\":[{\"id\":\"pbg\",\"title\":\"Persetujuan Bangunan Gedung\"},"
     "{\"id\":\"e\",\"title\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
     "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"},"
     "{\"id\":\"emoji\",\"title\":\"Hubungi kami " E9 "\"}]}",
     "Pilih",
     {{"interactive.type", "s:button"},
      {"interactive.action.buttons.0.reply.title", "s:Persetujuan Bangunan"},
      {"interactive.action.buttons.1.reply.title",
       "s:\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"},
      {"interactive.action.buttons.2.reply.title", "s:Hubungi kami " E7}}},
    {"long row titles cut at 24 characters",
     "{\"text\":\"Pilih\",\"buttons\":[{\"id\":\"sktm\",\"title\":\"Surat Keterangan Tidak Mampu\"},"
     "{\"id\":\"b\",\"title\":\"B\"},{\"id\":\"c\",\"title\":\"C\"},"
     "{\"id\":\"d\",\"title\":\"Izin " D9 " \xe2\x80\x94 \xe2\x80\x94\"}]}",
     "Pilih",
     {{"interactive.type", "s:list"},
      {"interactive.action.sections.0.rows.0.title", "s:Surat Keterangan Tidak M"},
      {"interactive.action.sections.0.rows.3.title", "s:Izin " D9 " \xe2\x80\x94"}}},
    {"a .pdf form is a document",
     "{\"text\":\"Formulir PBG terlampir.\",\"form\":{\"id\":\"pbg\",\"title\":\"Formulir PBG\","
     "\"url\":\"https://dpmptsp.tabanankab.go.id/files/formulir-pbg.pdf\"}}",
     "Formulir PBG terlampir.",
     {{"type", "s:document"},
      {"document.link", "s:https://dpmptsp.tabanankab.go.id/files/formulir-pbg.pdf"},
      {"document.filename", "s:formulir-pbg.pdf"},
      {"document.caption", "s:Formulir PBG terlampir."},
      {"text", "-"}}},
    {"an upper-case .DOCX with a query is a document",
     "{\"text\":\"Unduh:\",\"form\":{\"id\":\"siup\",\"title\":\"SIUP\","
     "\"url\":\"http://example.go.id/dl/SIUP.DOCX?v=2#top\"}}",
     "Unduh:",
     {{"type", "s:document"},
      {"document.link", "s:http://example.go.id/dl/SIUP.DOCX?v=2#top"},
      {"document.filename", "s:SIUP.DOCX"}}},
    {"a page form goes as text with a preview",
     "{\"text\":\"Formulir: http://dpmptsp.tabanankab.go.id/formulir-pendaftaran-izin\","
     "\"form\":{\"id\":\"daftar\",\"title\":\"Pendaftaran\","
     "\"url\":\"http://dpmptsp.tabanankab.go.id/formulir-pendaftaran-izin\"}}",
     "x",
     {{"type", "s:text"},
      {"text.body", "s:Formulir: http://dpmptsp.tabanankab.go.id/formulir-pendaftaran-izin"},
      {"text.preview_url", "b:true"},
      {"document", "-"}}},
    {"a URL whose query only mentions .pdf is a page",
     "{\"text\":\"Lihat http://x.go.id/view?file=a.pdf\",\"form\":{\"id\":\"a\",\"title\":\"A\","
     "\"url\":\"http://x.go.id/view?file=a.pdf\"}}",
     "x",
     {{"type", "s:text"}, {"text.preview_url", "b:true"}}},
    {"buttons and a .pdf form: buttons under a document header",
     "{\"text\":\"Ini formulirnya.\",\"buttons\":[{\"id\":\"petugas\",\"title\":\"Petugas\"}],"
     "\"form\":{\"id\":\"pbg\",\"title\":\"PBG\",\"url\":\"https://x.go.id/pbg.pdf\"}}",
     "Ini formulirnya.",
     {{"type", "s:interactive"},
      {"interactive.type", "s:button"},
      {"interactive.header.type", "s:document"},
      {"interactive.header.document.link", "s:https://x.go.id/pbg.pdf"},
      {"interactive.header.document.filename", "s:pbg.pdf"},
      {"interactive.action.buttons", "n:1"}}},
    {"a button without a title is ignored: text",
     "{\"text\":\"Halo\",\"buttons\":[{\"id\":\"a\"}]}",
     "Halo",
     {{"type", "s:text"}, {"text.body", "s:Halo"}}},
};

static void test_wa_build_cases(void **state)
{
	cfg c;

	(void)state;
	test_cfg(&c);
	for (size_t i = 0; i < sizeof(build_cases) / sizeof(build_cases[0]); i++) {
		const build_case *bc = &build_cases[i];
		store_outbox_item it;
		gw_request req;
		char err[128] = "";
		json_error_t jerr;
		json_t *doc;

		memset(&it, 0, sizeof(it));
		it.id = 1;
		snprintf(it.channel, sizeof(it.channel), "whatsapp");
		snprintf(it.address, sizeof(it.address), "6281234567890");
		it.text = (char *)bc->text;
		it.payload = (char *)bc->payload;
		if (gw_whatsapp_ops.build(&c, &it, &req, err, sizeof(err)) != 0)
			fail_msg("build case \"%s\": failed: %s", bc->label, err);
		if (strcmp(req.url, "http://127.0.0.1:9/v21.0/109876543210987/messages") != 0)
			fail_msg("build case \"%s\": url %s", bc->label, req.url);
		if (req.n_headers != 2 || strcmp(req.headers[0], "Authorization: Bearer EAAtestTOKEN") != 0 ||
		    strcmp(req.headers[1], "Content-Type: application/json") != 0)
			fail_msg("build case \"%s\": wrong headers", bc->label);
		assert_null(req.userpwd);
		assert_non_null(req.body);
		assert_int_equal(req.body_len, strlen(req.body));
		doc = json_loadb(req.body, req.body_len, 0, &jerr);
		if (!doc)
			fail_msg("build case \"%s\": body is not JSON: %s", bc->label, req.body);
		for (size_t k = 0; k < 10 && bc->checks[k].path; k++)
			check_path(bc->label, doc, bc->checks[k].path, bc->checks[k].want);
		json_decref(doc);
		gw_request_cleanup(&req);
		assert_null(req.url);
	}
}

static void test_wa_build_long_text_drops_interactive(void **state)
{
	cfg c;
	store_outbox_item it;
	gw_request req;
	char err[128], text[1100], payload[1400];
	json_error_t jerr;
	json_t *doc;

	(void)state;
	test_cfg(&c);
	memset(text, 'a', 1025);
	text[1025] = '\0';
	snprintf(payload, sizeof(payload), "{\"text\":\"%s\",\"buttons\":[{\"id\":\"x\",\"title\":\"X\"}]}", text);
	memset(&it, 0, sizeof(it));
	snprintf(it.address, sizeof(it.address), "62812");
	it.text = text;
	it.payload = payload;
	assert_int_equal(gw_whatsapp_ops.build(&c, &it, &req, err, sizeof(err)), 0);
	doc = json_loads(req.body, 0, &jerr);
	assert_non_null(doc);
	check_path("1025 chars with a button", doc, "type", "s:text");
	json_decref(doc);
	gw_request_cleanup(&req);

	/* exactly 1024 characters still fit an interactive body */
	text[1024] = '\0';
	snprintf(payload, sizeof(payload), "{\"text\":\"%s\",\"buttons\":[{\"id\":\"x\",\"title\":\"X\"}]}", text);
	assert_int_equal(gw_whatsapp_ops.build(&c, &it, &req, err, sizeof(err)), 0);
	doc = json_loads(req.body, 0, &jerr);
	check_path("1024 chars with a button", doc, "type", "s:interactive");
	json_decref(doc);
	gw_request_cleanup(&req);
}

/* Bodies are kept per (text, payload) in a small table per thread: many more
 * distinct replies than the table holds, built twice for two recipients in
 * opposite orders (so slots are shared and replaced), must each come out with
 * their own text and the right recipient. */
static void test_wa_build_kept_bodies(void **state)
{
	cfg c;
	store_outbox_item it;
	gw_request req;
	char err[128], payload[128], want[64];
	json_error_t jerr;
	json_t *doc;
	const char *to[2] = {"6281111111111", "6282222222222"};

	(void)state;
	test_cfg(&c);
	for (int round = 0; round < 2; round++) {
		for (int k = 0; k < 300; k++) {
			int i = round ? 299 - k : k;
			memset(&it, 0, sizeof(it));
			snprintf(it.address, sizeof(it.address), "%s", to[round]);
			snprintf(payload, sizeof(payload), "{\"text\":\"reply %d\"}", i);
			it.text = "stored text";
			it.payload = payload;
			assert_int_equal(gw_whatsapp_ops.build(&c, &it, &req, err, sizeof(err)), 0);
			doc = json_loads(req.body, 0, &jerr);
			assert_non_null(doc);
			snprintf(want, sizeof(want), "s:reply %d", i);
			check_path("kept body text", doc, "text.body", want);
			snprintf(want, sizeof(want), "s:%s", to[round]);
			check_path("kept body recipient", doc, "to", want);
			json_decref(doc);
			gw_request_cleanup(&req);
		}
	}
	/* the same payload with another stored text is another body */
	memset(&it, 0, sizeof(it));
	snprintf(it.address, sizeof(it.address), "%s", to[0]);
	it.text = "first";
	assert_int_equal(gw_whatsapp_ops.build(&c, &it, &req, err, sizeof(err)), 0);
	doc = json_loads(req.body, 0, &jerr);
	check_path("text without payload", doc, "text.body", "s:first");
	json_decref(doc);
	gw_request_cleanup(&req);
	it.text = "second";
	assert_int_equal(gw_whatsapp_ops.build(&c, &it, &req, err, sizeof(err)), 0);
	doc = json_loads(req.body, 0, &jerr);
	check_path("another text without payload", doc, "text.body", "s:second");
	json_decref(doc);
	gw_request_cleanup(&req);
}

/* The request body is written by hand: whatever a reply's text holds must come
 * back out of a JSON parser byte for byte, and text that is not UTF-8 must be
 * refused rather than sent as broken JSON. */
static void test_wa_build_escapes_text(void **state)
{
	static const struct {
		const char *label, *text;
	} round[] = {
	    {"quotes and backslashes", "say \"halo\" \\ C:\\path\\"},
	    {"control characters", "a\nb\rc\td\be\ff\x01g\x1fh"},
	    {"slash and html", "</script> a/b"},
	    {"multi-byte", "Sampai jumpa \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x80\xa8 end"},
	    {"escape at the very end", "ends with a quote\""},
	    {"only an escape", "\n"},
	    {"DEL kept", "x\x7fy"},
	};
	static const struct {
		const char *label, *text;
	} bad[] = {
	    {"lone continuation byte", "a\x80z"},	{"overlong slash", "a\xc0\xafz"},
	    {"overlong three bytes", "a\xe0\x80\xafz"}, {"surrogate", "a\xed\xa0\x80z"},
	    {"past U+10FFFF", "a\xf4\x90\x80\x80z"},	{"F5 lead byte", "a\xf5\x80\x80\x80z"},
	    {"truncated at the end", "abc\xe2\x82"},	{"lead byte then ASCII", "a\xc3z"},
	};
	cfg c;
	store_outbox_item it;
	gw_request req;
	char err[128];
	json_error_t jerr;
	json_t *doc;

	(void)state;
	test_cfg(&c);
	memset(&it, 0, sizeof(it));
	snprintf(it.address, sizeof(it.address), "62812\"x");
	for (size_t i = 0; i < sizeof(round) / sizeof(round[0]); i++) {
		const char *got;
		it.text = (char *)round[i].text;
		it.payload = NULL;
		if (gw_whatsapp_ops.build(&c, &it, &req, err, sizeof(err)) != 0)
			fail_msg("escape case \"%s\": build failed: %s", round[i].label, err);
		doc = json_loadb(req.body, req.body_len, 0, &jerr);
		if (!doc)
			fail_msg("escape case \"%s\": body is not JSON: %s", round[i].label, req.body);
		got = json_string_value(json_object_get(json_object_get(doc, "text"), "body"));
		if (!got || strcmp(got, round[i].text) != 0)
			fail_msg("escape case \"%s\": text came back as \"%s\"", round[i].label, got ? got : "(none)");
		if (strcmp(json_string_value(json_object_get(doc, "to")), "62812\"x") != 0)
			fail_msg("escape case \"%s\": recipient changed", round[i].label);
		json_decref(doc);
		gw_request_cleanup(&req);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		it.text = (char *)bad[i].text;
		it.payload = NULL;
		err[0] = '\0';
		if (gw_whatsapp_ops.build(&c, &it, &req, err, sizeof(err)) != -1)
			fail_msg("bad UTF-8 case \"%s\": built a request", bad[i].label);
		if (!strstr(err, "UTF-8"))
			fail_msg("bad UTF-8 case \"%s\": reason \"%s\"", bad[i].label, err);
		assert_null(req.body);
		assert_null(req.url);
	}
	/* a button title is cut at 20 characters, not 20 bytes */
	it.text = (char *)"Pilih";
	it.payload = (char *)"{\"text\":\"Pilih\",\"buttons\":[{\"id\":\"a\\\"b\",\"title\":"
			     "\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
			     "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9XYZ\"}]}";
	assert_int_equal(gw_whatsapp_ops.build(&c, &it, &req, err, sizeof(err)), 0);
	doc = json_loadb(req.body, req.body_len, 0, &jerr);
	assert_non_null(doc);
	{
		const json_t *action = json_object_get(json_object_get(doc, "interactive"), "action");
		const json_t *reply = json_object_get(json_array_get(json_object_get(action, "buttons"), 0), "reply");
		const char *title = json_string_value(json_object_get(reply, "title"));
		assert_non_null(title);
		assert_int_equal(strlen(title), 40); /* twenty two-byte characters, "XYZ" cut */
		assert_string_equal(json_string_value(json_object_get(reply, "id")), "a\"b");
	}
	json_decref(doc);
	gw_request_cleanup(&req);
}

static void test_wa_build_refuses(void **state)
{
	static const struct {
		const char *label, *payload, *text;
	} cases[] = {
	    {"payload not JSON", "{text", "x"},
	    {"payload an array", "[1]", "x"},
	    {"empty text, no form", "{\"text\":\"\"}", ""},
	    {"nothing at all", NULL, ""},
	};
	cfg c;

	(void)state;
	test_cfg(&c);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		store_outbox_item it;
		gw_request req;
		char err[128] = "";

		memset(&it, 0, sizeof(it));
		snprintf(it.address, sizeof(it.address), "62812");
		it.text = (char *)cases[i].text;
		it.payload = (char *)cases[i].payload;
		if (gw_whatsapp_ops.build(&c, &it, &req, err, sizeof(err)) != -1)
			fail_msg("refuse case \"%s\": build succeeded", cases[i].label);
		if (!err[0])
			fail_msg("refuse case \"%s\": no reason", cases[i].label);
		assert_null(req.url);
		assert_null(req.body);
	}
}

/* ---- classifying answers ---- */

static void test_wa_classify(void **state)
{
	char *ok = read_fixture("whatsapp_send_ok.json", NULL);
	char *rl = read_fixture("whatsapp_send_error_ratelimit.json", NULL);
	const struct {
		const char *label;
		long http;
		const char *body;
		gw_send_class want;
		const char *want_id, *want_err; /* NULL: not checked */
	} cases[] = {
	    {"fixture ok", 200, ok, GW_SEND_OK, "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEkM0MUU3QTkzQjI4RDA1RjZFMQA=", NULL},
	    {"201 ok", 201, "{\"messages\":[{\"id\":\"wamid.x\"}]}", GW_SEND_OK, "wamid.x", NULL},
	    {"200 without an id", 200, "{}", GW_SEND_OK, "", NULL},
	    {"transport failure", 0, NULL, GW_SEND_RETRY, "", NULL},
	    {"500 with error", 500, "{\"error\":{\"code\":1,\"message\":\"An unknown error occurred\"}}", GW_SEND_RETRY,
	     "", "1 An unknown error occurred"},
	    {"503 empty", 503, "", GW_SEND_RETRY, "", "http 503"},
	    {"502 html", 502, "<html>bad gateway</html>", GW_SEND_RETRY, "", "http 502"},
	    {"fixture rate limit", 429, rl, GW_SEND_RETRY_LATER, "", "130429 (#130429) Rate limit hit"},
	    {"429 no body", 429, "", GW_SEND_RETRY_LATER, "", NULL},
	    {"code 4 app rate", 400, "{\"error\":{\"code\":4,\"message\":\"Application request limit reached\"}}",
	     GW_SEND_RETRY_LATER, "", NULL},
	    {"code 80007", 400, "{\"error\":{\"code\":80007,\"message\":\"x\"}}", GW_SEND_RETRY_LATER, "", NULL},
	    {"code 131048 spam", 400, "{\"error\":{\"code\":131048,\"message\":\"x\"}}", GW_SEND_RETRY_LATER, "", NULL},
	    {"code 131056 pair", 400, "{\"error\":{\"code\":131056,\"message\":\"x\"}}", GW_SEND_RETRY_LATER, "", NULL},
	    {"code 130429 in a 500", 500, "{\"error\":{\"code\":130429,\"message\":\"x\"}}", GW_SEND_RETRY_LATER, "",
	     NULL},
	    {"window closed", 400, "{\"error\":{\"code\":131047,\"message\":\"Re-engagement message\"}}",
	     GW_SEND_WINDOW_CLOSED, "", "131047 Re-engagement message"},
	    {"invalid parameter", 400, "{\"error\":{\"code\":100,\"message\":\"(#100) Invalid parameter\"}}",
	     GW_SEND_PERMANENT, "", "100 (#100) Invalid parameter"},
	    {"expired token", 401, "{\"error\":{\"code\":190,\"message\":\"Error validating access token\"}}",
	     GW_SEND_UNAUTHORIZED, "", "190 Error validating access token"},
	    {"code 190 in a 400", 400, "{\"error\":{\"code\":190,\"message\":\"Invalid OAuth access token\"}}",
	     GW_SEND_UNAUTHORIZED, "", NULL},
	    {"401 no body", 401, "", GW_SEND_UNAUTHORIZED, "", "http 401"},
	    {"403 permission: permanent", 403, "{\"error\":{\"code\":10,\"message\":\"Permission denied\"}}",
	     GW_SEND_PERMANENT, "", NULL},
	    {"404 empty", 404, NULL, GW_SEND_PERMANENT, "", "http 404"},
	    {"error of wrong type", 400, "{\"error\":\"nope\"}", GW_SEND_PERMANENT, "", "http 400"},
	    {"redirect", 302, "", GW_SEND_PERMANENT, "", NULL},
	    {"answer not UTF-8: read as empty", 400, "{\"error\":{\"code\":131047,\"message\":\"bad \xff\"}}",
	     GW_SEND_PERMANENT, "", "http 400"},
	    {"id not UTF-8: none", 200, "{\"messages\":[{\"id\":\"wamid.\xc3\"}]}", GW_SEND_OK, "", NULL},
	    {"code not a whole number", 400, "{\"error\":{\"code\":131047.5,\"message\":\"x\"}}", GW_SEND_PERMANENT, "",
	     "http 400"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char id[256] = "junk", err[256] = "junk";
		gw_send_class got =
		    gw_whatsapp_ops.classify(cases[i].http, cases[i].body, cases[i].body ? strlen(cases[i].body) : 0,
					     id, sizeof(id), err, sizeof(err));
		if (got != cases[i].want)
			fail_msg("classify case \"%s\": got %s, want %s", cases[i].label, gw_send_class_name(got),
				 gw_send_class_name(cases[i].want));
		if (cases[i].want_id && strcmp(id, cases[i].want_id) != 0)
			fail_msg("classify case \"%s\": id \"%s\", want \"%s\"", cases[i].label, id, cases[i].want_id);
		if (cases[i].want_err && strcmp(err, cases[i].want_err) != 0)
			fail_msg("classify case \"%s\": error \"%s\", want \"%s\"", cases[i].label, err,
				 cases[i].want_err);
		if (got != GW_SEND_OK && !err[0])
			fail_msg("classify case \"%s\": no error text", cases[i].label);
	}
	free(ok);
	free(rl);
}

/* ---- the rest of the ops, the channel table ---- */

static void test_wa_configured_and_lookup(void **state)
{
	cfg c;

	(void)state;
	cfg_defaults(&c);
	assert_int_equal(gw_whatsapp_ops.configured(&c), 0);
	snprintf(c.whatsapp.phone_number_id, sizeof(c.whatsapp.phone_number_id), "1098");
	assert_int_equal(gw_whatsapp_ops.configured(&c), 0);
	snprintf(c.whatsapp.access_token, sizeof(c.whatsapp.access_token), "tok");
	assert_int_equal(gw_whatsapp_ops.configured(&c), 1);
	c.whatsapp.phone_number_id[0] = '\0';
	assert_int_equal(gw_whatsapp_ops.configured(&c), 0);

	assert_int_equal(gw_whatsapp_ops.max_text, 4096);
	assert_ptr_equal(gw_channel_lookup("whatsapp"), &gw_whatsapp_ops);
	assert_null(gw_channel_lookup("nope"));
	assert_null(gw_channel_lookup(""));
	assert_null(gw_channel_lookup(NULL));
	assert_string_equal(gw_send_class_name(GW_SEND_OK), "ok");
	assert_string_equal(gw_send_class_name(GW_SEND_RETRY_LATER), "retry_later");
	assert_string_equal(gw_send_class_name(GW_SEND_WINDOW_CLOSED), "window_closed");
	gw_parsed_free(NULL);
	gw_request_cleanup(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wa_signature_vectors),
	    cmocka_unit_test(test_wa_signature_rejects),
	    cmocka_unit_test(test_wa_signature_cached_context),
	    cmocka_unit_test(test_wa_parse_text),
	    cmocka_unit_test(test_wa_parse_button_reply),
	    cmocka_unit_test(test_wa_parse_list_reply),
	    cmocka_unit_test(test_wa_parse_image),
	    cmocka_unit_test(test_wa_parse_status_delivered),
	    cmocka_unit_test(test_wa_parse_status_failed),
	    cmocka_unit_test(test_wa_parse_mixed_batch),
	    cmocka_unit_test(test_wa_parse_malformed),
	    cmocka_unit_test(test_wa_parse_strictness),
	    cmocka_unit_test(test_wa_parse_mutations),
	    cmocka_unit_test(test_wa_build_cases),
	    cmocka_unit_test(test_wa_build_long_text_drops_interactive),
	    cmocka_unit_test(test_wa_build_kept_bodies),
	    cmocka_unit_test(test_wa_build_escapes_text),
	    cmocka_unit_test(test_wa_build_refuses),
	    cmocka_unit_test(test_wa_classify),
	    cmocka_unit_test(test_wa_configured_and_lookup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
