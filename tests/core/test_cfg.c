/* Config tests: defaults, ${NAME} from the environment, and a "file:line:"
 * message for each kind of mistake an operator makes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cfg.h"

static char path[64];

static void write_cfg(const char *text)
{
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "/tmp/loket-cfg-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
}

static void test_cfg_defaults_match_the_contract(void **state)
{
	cfg c;
	char err[256];

	(void)state;
	assert_int_equal(cfg_load(&c, NULL, err, sizeof(err)), 0);
	assert_string_equal(c.server.listen, "127.0.0.1:8080");
	assert_int_equal(c.server.max_body, 4194304);
	assert_string_equal(c.store.path, "var/loket.db");
	assert_string_equal(c.bot.language, "id");
	assert_int_equal(c.bot.fallbacks_before_escalate, 2);
	assert_int_equal(c.bot.rate_limit_per_minute, 20);
	assert_int_equal(c.whatsapp.send_rate, 80);
	assert_int_equal(c.sender.max_attempts, 8);
	assert_int_equal(c.sender.backoff_initial_ms, 1000);
	assert_int_equal(c.sender.backoff_max_ms, 300000);
	assert_int_equal(c.sender.timeout_ms, 10000);
	assert_int_equal(c.console.session_hours, 12);
	assert_string_equal(c.office.phone, "(0361) 7991652");
}

static void test_cfg_shipped_example_loads(void **state)
{
	cfg c;
	char err[4096];

	(void)state;
	setenv("WHATSAPP_TOKEN", "tok-123", 1);
	unsetenv("OFFICE_EMAIL");
	if (cfg_load(&c, "config.example", err, sizeof(err)) != 0) {
		print_error("%s", err);
		fail();
	}
	assert_string_equal(c.whatsapp.access_token, "tok-123");
	assert_string_equal(c.office.email, "");
	unsetenv("WHATSAPP_TOKEN");
}

static void test_cfg_env_and_inline_comments(void **state)
{
	cfg c;
	char err[1024];

	(void)state;
	setenv("LOKET_TEST_SECRET", "s3cret", 1);
	write_cfg("[server]\nlisten = 127.0.0.1:9090          ; host:port\n"
		  "[whatsapp]\napp_secret = ${LOKET_TEST_SECRET}\nverify_token = pre-${LOKET_TEST_SECRET}-post\n");
	assert_int_equal(cfg_load(&c, path, err, sizeof(err)), 0);
	assert_string_equal(c.server.listen, "127.0.0.1:9090");
	assert_string_equal(c.whatsapp.app_secret, "s3cret");
	assert_string_equal(c.whatsapp.verify_token, "pre-s3cret-post");
	unlink(path);
}

static const struct {
	const char *label, *text, *want;
} bad[] = {
    {"unknown key", "[server]\nlisten = 127.0.0.1:1\nlisen = x\n", ":3: unknown key \"lisen\" in [server]"},
    {"unknown section", "\n[serverx]\nlisten = 1\n", ":3: unknown key \"listen\" in [serverx]"},
    {"not a number", "[bot]\nfallbacks_before_escalate = two\n",
     ":2: [bot] fallbacks_before_escalate: expected a whole number"},
    {"out of range", "[sender]\nmax_attempts = 0\n", ":2: [sender] max_attempts: 0 is out of range"},
    {"bad listen", "[server]\nlisten = localhost\n", "[server] listen: expected host:port"},
    {"bad synchronous", "[store]\nsynchronous = SOMETIMES\n", "[store] synchronous: expected FULL or NORMAL"},
    {"unclosed variable", "[office]\nemail = ${OFFICE_EMAIL\n", ":2: [office] email: value too long or unclosed ${"},
    {"garbage line", "[server]\nthis is not ini\n", ":2: not a valid INI line"},
    {"key outside a section", "listen = 1\n", ":1: key \"listen\" is outside any [section]"},
};

static void test_cfg_errors_name_file_and_line(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg c;
		char err[1024], want[256];

		write_cfg(bad[i].text);
		snprintf(want, sizeof(want), "%s", bad[i].want);
		if (cfg_load(&c, path, err, sizeof(err)) == 0 || !strstr(err, want) || !strstr(err, path)) {
			print_error("case \"%s\": want \"%s\" in:\n%s\n", bad[i].label, want, err);
			unlink(path);
			fail();
		}
		unlink(path);
	}
}

static void test_cfg_missing_file(void **state)
{
	cfg c;
	char err[512];

	(void)state;
	assert_int_equal(cfg_load(&c, "/nonexistent/loket.ini", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/loket.ini:0: cannot open"));
}

static void test_cfg_split_listen(void **state)
{
	char host[64];
	int port;

	(void)state;
	assert_int_equal(cfg_split_listen("127.0.0.1:8080", host, sizeof(host), &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 8080);
	assert_int_equal(cfg_split_listen(":80", host, sizeof(host), &port), 0);
	assert_string_equal(host, "");
	assert_int_equal(cfg_split_listen("x:99999", host, sizeof(host), &port), -1);
	assert_int_equal(cfg_split_listen("x:", host, sizeof(host), &port), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cfg_defaults_match_the_contract),
	    cmocka_unit_test(test_cfg_shipped_example_loads),
	    cmocka_unit_test(test_cfg_env_and_inline_comments),
	    cmocka_unit_test(test_cfg_errors_name_file_and_line),
	    cmocka_unit_test(test_cfg_missing_file),
	    cmocka_unit_test(test_cfg_split_listen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
