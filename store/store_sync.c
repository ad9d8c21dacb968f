/* store_sync: making a handle's commits durable from another thread.
 *
 * A handle opened with sync_later commits without waiting for the disk (in
 * WAL mode: the commit's frames are written to the -wal file, not fsynced).
 * A store_syncer, made from it, fsyncs that same WAL file on its own file
 * descriptor (an fsync covers the file, whichever descriptor wrote it), so
 * the gateway's writer can run its next transaction while the previous one
 * reaches the disk, and acknowledges each message only after the fdatasync
 * that followed its commit returned: the durability of synchronous=FULL,
 * with one fsync covering every transaction committed since the last one.
 *
 * The WAL file exists from the first write on and keeps its inode while a
 * connection is open (checkpoints rewrite it in place); the syncer still
 * checks the inode on each call and reopens when the file was replaced, and
 * fsyncs the directory whenever it opened a file, so the file's name is
 * durable too. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_int.h"

struct store_syncer {
	char wal[4096 + 8];
	char dir[4096];
	int fd;
	dev_t dev;
	ino_t ino;
};

store_syncer *store_syncer_new(store *s)
{
	store_syncer *y = calloc(1, sizeof *y);
	if (!y)
		return NULL;
	y->fd = -1;
	snprintf(y->wal, sizeof y->wal, "%s-wal", s->path);
	snprintf(y->dir, sizeof y->dir, "%s", s->path);
	char *slash = strrchr(y->dir, '/');
	if (!slash)
		snprintf(y->dir, sizeof y->dir, ".");
	else if (slash == y->dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	return y;
}

static int sync_dir(const store_syncer *y)
{
	int fd = open(y->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

/* Opens the WAL file when not open yet, or when the path names another file. */
static int sync_open(store_syncer *y)
{
	struct stat now;
	if (stat(y->wal, &now) != 0)
		return errno == ENOENT ? 0 : -1; /* nothing committed in WAL mode yet */
	if (y->fd >= 0 && now.st_dev == y->dev && now.st_ino == y->ino)
		return 0;
	if (y->fd >= 0)
		close(y->fd);
	y->fd = open(y->wal, O_RDONLY | O_CLOEXEC);
	if (y->fd < 0)
		return -1;
	struct stat st;
	if (fstat(y->fd, &st) != 0)
		return -1;
	y->dev = st.st_dev;
	y->ino = st.st_ino;
	return sync_dir(y);
}

int store_syncer_sync(store_syncer *y)
{
	if (!y)
		return -1;
	if (sync_open(y) != 0)
		return -1;
	if (y->fd < 0)
		return 0;
	return fdatasync(y->fd);
}

void store_syncer_free(store_syncer *y)
{
	if (!y)
		return;
	if (y->fd >= 0)
		close(y->fd);
	free(y);
}
