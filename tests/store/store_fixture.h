/* The per-test database most store tests use: a fresh file in one temporary
 * directory per binary, opened before each test as `s` and closed after it.
 * Define T_FIXTURE_NAME ("in", "out", ...) and T_FIXTURE_BUSY_MS before
 * including; main() removes the directory with t_fixture_done(). */
#ifndef LOKET_STORE_FIXTURE_H
#define LOKET_STORE_FIXTURE_H

#include "tests/store/store_test_util.h"

static char dir[256];
static char path[512];
static store *s;

static int setup(void **state)
{
	static int n;
	char name[32];

	(void)state;
	if (!dir[0])
		t_mkdir(dir, sizeof dir);
	snprintf(name, sizeof name, "%s%d.db", T_FIXTURE_NAME, n++);
	t_path(path, sizeof path, dir, name);
	s = t_open(path, T_FIXTURE_BUSY_MS);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	store_close(s);
	s = NULL;
	return 0;
}

/* Removes the fixture's directory; returns rc, for `return t_fixture_done(rc);`. */
static inline int t_fixture_done(int rc)
{
	if (dir[0])
		t_rmdir(dir);
	return rc;
}

#endif
