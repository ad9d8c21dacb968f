/* gw_checkpoint: the WAL checkpointer thread (see gw_checkpoint.h).
 *
 * A loop on a condition variable with a timeout: check (a PASSIVE checkpoint
 * is itself the check: it returns the WAL's length and copies what it can),
 * then sleep GW_CKPT_BUSY_MS when it was long, GW_CKPT_IDLE_MS otherwise. */
#include "core/clock.h"
#include "gateway/gw_checkpoint.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "store/store.h"

#define GW_CKPT_PAGES 2000    /* copy soon again while this much is not in the file */
#define GW_CKPT_RESTART 8000  /* a WAL this long (32 MiB of 4 KiB pages) is started over, */
#define GW_CKPT_TAIL 1000     /* once a passive pass left at most this much to copy */
#define GW_CKPT_BUSY_MS 20    /* look again this soon after a long WAL */
#define GW_CKPT_IDLE_MS 500   /* and this often otherwise */
#define GW_CKPT_LOG_EVERY 100 /* a failing checkpoint is logged this often */

struct gw_checkpoint {
	store *st;
	pthread_t thread;
	int started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stopping;
	int restarted_at; /* the WAL's length at the last RESTART */
	int last_wal;	  /* the WAL's length at the last pass */
};

static const char *const gw_ckpt_mode_name[] = {"passive", "restart", "truncate"};

static int gw_ckpt_one(gw_checkpoint *k, int mode, int *failures, int *wal, int *copied)
{
	int rc = store_checkpoint(k->st, mode, wal, copied);

	if (rc == STORE_OK) {
		*failures = 0;
		return 0;
	}
	/* busy (another checkpoint, a backup, the writer past the busy timeout)
	 * or an I/O error: the writer goes on, the WAL only grows; again later */
	if ((*failures)++ % GW_CKPT_LOG_EVERY == 0) {
		char er[200];
		log_event(LOG_WARN, "checkpoint_failed", "mode=%s rc=%s detail=%s tries=%d", gw_ckpt_mode_name[mode],
			  store_rc_str(rc), log_kv_str(store_errmsg(k->st), er, sizeof(er)), *failures);
	}
	return -1;
}

/* A passive pass copies while the writer goes on; under steady load the
 * writer keeps adding, so the WAL is never found fully copied and would grow
 * without end (1 GB in 10 s at 10,000 messages/s). Once it is long and a
 * passive pass left only a short tail, a RESTART copies that tail holding
 * the write lock for a few milliseconds, and the next commit starts the WAL
 * over from its beginning. */
static void gw_ckpt_run(gw_checkpoint *k, int *failures, int *long_wal)
{
	int wal = 0, copied = 0;

	*long_wal = 0;
	if (gw_ckpt_one(k, STORE_CKPT_PASSIVE, failures, &wal, &copied) != 0)
		return;
	/* Idle (nothing committed since the last pass, all copied): cut the -wal
	 * file to zero bytes, so the disk space a burst took comes back. Never
	 * under load: a file cut then is grown again block by block, inside the
	 * writer's commits (a limit on the WAL's size raised the p99 from 18 to
	 * 30 ms in the benchmark). */
	if (wal > 0 && wal == copied && wal == k->last_wal) {
		if (gw_ckpt_one(k, STORE_CKPT_TRUNCATE, failures, &wal, &copied) == 0)
			log_event(LOG_DEBUG, "checkpoint", "mode=truncate");
		k->last_wal = 0;
		return;
	}
	k->last_wal = wal;
	/* After a RESTART the WAL keeps its old length until the next commit
	 * starts it over: an idle gateway would restart it again every pass. */
	if (wal >= GW_CKPT_RESTART && wal - copied <= GW_CKPT_TAIL && wal != k->restarted_at) {
		if (gw_ckpt_one(k, STORE_CKPT_RESTART, failures, &wal, &copied) != 0)
			return;
		k->restarted_at = wal;
		log_event(LOG_DEBUG, "checkpoint", "mode=restart wal_pages=%d copied=%d", wal, copied);
		return;
	}
	*long_wal = wal - copied > GW_CKPT_PAGES || wal >= GW_CKPT_RESTART;
	log_event(LOG_DEBUG, "checkpoint", "mode=passive wal_pages=%d copied=%d", wal, copied);
}

static void *gw_ckpt_main(void *arg)
{
	gw_checkpoint *k = arg;
	pthread_setname_np(pthread_self(), "loket-ckpt");
	int failures = 0, long_wal = 0;

	pthread_mutex_lock(&k->lock);
	while (!k->stopping) {
		struct timespec until;
		int64_t ms = long_wal ? GW_CKPT_BUSY_MS : GW_CKPT_IDLE_MS;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += ms / 1000;
		until.tv_nsec += (ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&k->cond, &k->lock, &until);
		if (k->stopping)
			break;
		pthread_mutex_unlock(&k->lock);
		gw_ckpt_run(k, &failures, &long_wal);
		pthread_mutex_lock(&k->lock);
	}
	pthread_mutex_unlock(&k->lock);
	gw_ckpt_run(k, &failures, &long_wal);
	return NULL;
}

gw_checkpoint *gw_checkpoint_start(const cfg *c, char *err, size_t errlen)
{
	gw_checkpoint *k = calloc(1, sizeof(*k));
	store_opts so;
	char serr[256] = "";

	if (!k) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&k->lock, NULL);
	pthread_cond_init(&k->cond, NULL);
	memset(&so, 0, sizeof(so));
	so.path = c->store.path;
	so.synchronous_full = strcmp(c->store.synchronous, "NORMAL") != 0;
	so.busy_timeout_ms = c->store.busy_timeout_ms;
	if (!(k->st = store_open(&so, serr, sizeof(serr)))) {
		snprintf(err, errlen, "checkpointer: %s", serr);
		goto fail;
	}
	if (pthread_create(&k->thread, NULL, gw_ckpt_main, k) != 0) {
		snprintf(err, errlen, "checkpointer: cannot start its thread");
		goto fail;
	}
	k->started = 1;
	return k;
fail:
	gw_checkpoint_stop(k);
	return NULL;
}

void gw_checkpoint_stop(gw_checkpoint *k)
{
	if (!k)
		return;
	if (k->started) {
		pthread_mutex_lock(&k->lock);
		k->stopping = 1;
		pthread_cond_signal(&k->cond);
		pthread_mutex_unlock(&k->lock);
		pthread_join(k->thread, NULL);
	}
	store_close(k->st);
	pthread_cond_destroy(&k->cond);
	pthread_mutex_destroy(&k->lock);
	free(k);
}
