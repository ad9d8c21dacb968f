/* bench_store: inbound messages per second through the whole
 * store_inbound_batch path (duplicate check, contact and conversation upsert,
 * rate window, decide, inbound row, state update, one reply with its outbox
 * row and status history), with synchronous=NORMAL and FULL and 1, 10, 100
 * messages per commit. Each run uses a fresh database file in DIR (default:
 * the current directory) on the real disk; the figure printed is the median of
 * three runs. Usage: bench_store [-d DIR] [-n MESSAGES] [-b BATCH] [-s FULL|NORMAL] [-c CONTACTS]
 * -b and -s run only that row; -c 0 gives every four messages a new contact
 * (the gateway benchmark's traffic: new contacts and conversations all along),
 * else the messages cycle over CONTACTS contacts (default 1000). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

static long contacts = 1000;
#define RUNS 3

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What gw_handle_decide does to the store, minus the bot: one reply, queued. */
static int decide(void *ctx, size_t index, const store_inbound *in, const store_conv *conv, store_decision *d)
{
	(void)ctx;
	(void)index;
	(void)in;
	d->intent = "jam_layanan";
	d->next = conv->bot;
	snprintf(d->next.lang, sizeof d->next.lang, "id");
	snprintf(d->next.context, sizeof d->next.context, "jam_layanan");
	d->n_out = 1;
	d->out[0].text = "Kantor buka Senin-Jumat pukul 08.00-15.00 WITA.";
	d->out[0].payload = "{\"type\":\"text\",\"text\":\"Kantor buka Senin-Jumat pukul 08.00-15.00 WITA.\"}";
	d->out[0].queue = 1;
	return 0;
}

static void cleanup(const char *path)
{
	char p[4200];
	unlink(path);
	snprintf(p, sizeof p, "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof p, "%s-shm", path);
	unlink(p);
}

/* Messages per second for one run, or -1. */
static double run(const char *dir, int full, size_t batch, size_t total)
{
	char path[4096], err[512];
	snprintf(path, sizeof path, "%s/bench-store-%d.db", dir, (int)getpid());
	cleanup(path);
	store_opts o = {.path = path, .synchronous_full = full, .busy_timeout_ms = 5000};
	store *s = store_open(&o, err, sizeof err);
	if (!s) {
		fprintf(stderr, "bench_store: %s\n", err);
		return -1;
	}
	store_inbound *in = calloc(batch, sizeof *in);
	store_inbound_result *res = calloc(batch, sizeof *res);
	char(*pid)[32] = calloc(batch, sizeof *pid);
	char(*addr)[32] = calloc(batch, sizeof *addr);
	double rate = -1;
	if (!in || !res || !pid || !addr)
		goto out;
	double t0 = now_s();
	for (size_t done = 0; done < total; done += batch) {
		for (size_t i = 0; i < batch; i++) {
			size_t k = done + i;
			snprintf(pid[i], sizeof pid[i], "wamid.HBgM%010zu", k);
			if (contacts > 0)
				snprintf(addr[i], sizeof addr[i], "6281%08zu", (k * 7919) % (size_t)contacts);
			else
				snprintf(addr[i], sizeof addr[i], "6281%09zu", k / 4);
			in[i] = (store_inbound){.channel = "whatsapp",
						.address = addr[i],
						.provider_id = pid[i],
						.kind = "text",
						.text = "jam buka kantor hari ini?",
						.at_ms = 1700000000000LL + (int64_t)k};
		}
		int rc = store_inbound_batch(s, in, batch, decide, NULL, res);
		if (rc != STORE_OK) {
			fprintf(stderr, "bench_store: %s: %s\n", store_rc_str(rc), store_errmsg(s));
			goto out;
		}
	}
	rate = (double)total / (now_s() - t0);
out:
	free(in);
	free(res);
	free(pid);
	free(addr);
	store_close(s);
	cleanup(path);
	return rate;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	const char *dir = ".";
	long total = 20000, only_batch = 0;
	int only_sync = -1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-d") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
			total = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "-b") == 0 && i + 1 < argc)
			only_batch = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			contacts = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
			only_sync = strcmp(argv[++i], "FULL") == 0;
		else {
			fprintf(
			    stderr,
			    "usage: bench_store [-d DIR] [-n MESSAGES] [-b BATCH] [-s FULL|NORMAL] [-c CONTACTS]\n");
			return 2;
		}
	}
	if (total < 100)
		total = 100;
	size_t batches[] = {1, 10, 100};
	size_t n_batches = sizeof batches / sizeof batches[0];
	if (only_batch > 0) {
		batches[0] = (size_t)only_batch;
		n_batches = 1;
	}
	printf("%-12s %-10s %10s %14s %12s\n", "synchronous", "per commit", "messages", "messages/s", "commits/s");
	for (int full = 0; full <= 1; full++) {
		if (only_sync >= 0 && full != only_sync)
			continue;
		for (size_t b = 0; b < n_batches; b++) {
			size_t n = (size_t)total - (size_t)total % batches[b];
			double r[RUNS];
			for (int k = 0; k < RUNS; k++)
				if ((r[k] = run(dir, full, batches[b], n)) < 0)
					return 1;
			qsort(r, RUNS, sizeof r[0], cmp);
			printf("%-12s %-10zu %10zu %14.0f %12.0f\n", full ? "FULL" : "NORMAL", batches[b], n,
			       r[RUNS / 2], r[RUNS / 2] / (double)batches[b]);
			fflush(stdout);
		}
	}
	return 0;
}
