/* The gateway opens several handles on one database in one process (writer,
 * sender, event loop). Opening a handle must not disturb the locks the others
 * hold: POSIX drops all of a process's locks on a file when any descriptor of
 * it is closed, and then another process closing the database deletes the live
 * WAL, so later commits vanish on a crash. */
#include "tests/store/store_test_util.h"

#include <sys/wait.h>

/* In another program (exec'd: a forked copy would share this process's
 * SQLite lock bookkeeping): open and close the database, like `sqlite3
 * loket.db` or a backup script would. */
static void outsider_opens_and_closes(const char *path)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		char script[512];
		snprintf(script, sizeof script,
			 "import sqlite3; db = sqlite3.connect('%s'); db.execute('select count(*) from messages'); "
			 "db.close()",
			 path);
		execlp("python3", "python3", "-c", script, (char *)NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_store_second_handle_keeps_the_first_handles_locks(void **state)
{
	char dir[64], path[128], wal[140];
	t_decider t = {0};
	store *a, *b;
	store_inbound_result r;

	(void)state;
	t_mkdir(dir, sizeof dir);
	t_path(path, sizeof path, dir, "loket.db");
	snprintf(wal, sizeof wal, "%s-wal", path);
	a = t_open(path, 1000);
	r = t_one(a, &t, t_in("whatsapp", "6281", "m1", "halo", 1000));
	assert_int_equal(r.rc, STORE_OK);
	b = t_open(path, 1000); /* the sender's handle, opened after the writer's */
	outsider_opens_and_closes(path);
	/* the live WAL is still there... */
	assert_int_equal(access(wal, F_OK), 0);
	r = t_one(a, &t, t_in("whatsapp", "6281", "m2", "formulir", 2000));
	assert_int_equal(r.rc, STORE_OK);
	/* ...and what a commits after it is visible to everyone else */
	assert_int_equal(t_sql_int(path, "select count(*) from messages where direction = 'in'"), 2);
	store_close(b);
	store_close(a);
	assert_int_equal(t_sql_int(path, "select count(*) from messages where direction = 'in'"), 2);
	t_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_store_second_handle_keeps_the_first_handles_locks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
