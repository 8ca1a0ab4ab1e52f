/* SPDX-License-Identifier: MIT */
/*
 * ring-bench: single-producer/single-consumer throughput of the shared
 * ring, in commands per second, for batch sizes 1, 8 and 64.
 *
 * Modes:  spin     no eventfds; both sides poll the header (yielding
 *                  the CPU between checks when there is nothing to do).
 *         eventfd  the consumer sleeps on the doorbell after NEED_WAKEUP,
 *                  the producer on the completion eventfd after WANT_SIGNAL;
 *                  both first poll for -s ns (default 0: sleep at once;
 *                  the producer through ring_prod_wait's spin_ns).
 * Loads:  stream   push and publish batches; wait only when the ring is
 *                  full (throughput).
 *         sync     wait for each batch to complete before the next, like
 *                  a guest CMD_SYNC after every batch (round trip bound).
 *
 * Each cell runs -t seconds, -r times; the table shows medians. The
 * consumer copies up to -c entries out per pass (default 64; 0 = the
 * producer's batch) and completes them: the ring protocol's cost,
 * without validation or issuing. -b, -m and -L pick the batch sizes
 * (default 1,8,64), modes and loads: `ring-bench -m spin -L stream -b 16
 * -c 0` is the ceiling beside a worker whose ring budget is 16
 * (scripts/perf-issue16.sh).
 *
 * Usage: ring-bench [-r reps] [-t seconds] [-l log2_entries] [-s spin_ns]
 *                   [-b B,B..] [-c max] [-m spin|eventfd] [-L stream|sync]
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/barrier.h"
#include "common/cpu.h"
#include "ring/ring_cons.h"
#include <smmu-offload/ring-prod.h>

enum { MODE_SPIN, MODE_EVENTFD, MODE_NR };
enum { LOAD_STREAM, LOAD_SYNC, LOAD_NR };
static const char *const mode_name[MODE_NR] = { "spin", "eventfd" };
static const char *const load_name[LOAD_NR] = { "stream", "sync" };
#define MAX_BATCHES 8
#define MAX_BATCH 256 /* entries per push and per consumer pass */
#define MAX_REPS 99

struct opts {
	int reps;
	double seconds;
	uint32_t log2;
	uint64_t spin_ns;
	uint32_t batches[MAX_BATCHES];
	unsigned int nbatch;
	uint32_t cons_max; /* entries per consumer pass; 0 = the batch */
	int only_mode, only_load; /* -1 = all */
};

/* One run. Producer-thread fields, then consumer-thread fields. */
struct run {
	struct ring_prod p;
	struct ring_cons rc;
	int mode, load;
	uint32_t batch, cons_max;
	double seconds;
	uint64_t spin_ns;
	int doorbell, completion;
	uint64_t total; /* release/acquire with done */
	unsigned int done;
	int prod_err;
	/* consumer */
	uint64_t received, wakeups, signals;
	int cons_err;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *producer(void *arg)
{
	struct run *r = arg;
	struct smmu_ring_entry e[MAX_BATCH];
	uint64_t sent = 0, one = 1;
	uint64_t spin = r->mode == MODE_SPIN ? 0 : r->spin_ns;
	double deadline = now_s() + r->seconds;
	uint32_t first;
	int ret = 0;

	memset(e, 0, sizeof(e));
	while (now_s() < deadline) {
		for (uint32_t i = 0; i < r->batch; i++)
			e[i].le[0] = sent + i;
		ret = ring_prod_push(&r->p, e, r->batch, &first);
		if (ret == -EAGAIN) {
			ret = ring_prod_wait(
				&r->p, r->p.prod - r->p.size + r->batch - 1,
				spin, 10000);
			if (ret)
				break;
			continue;
		}
		if (ret)
			break;
		sent += r->batch;
		ret = ring_prod_publish(&r->p);
		if (ret)
			break;
		if (r->load == LOAD_SYNC) {
			ret = ring_prod_wait(&r->p, first + r->batch - 1, spin,
					     10000);
			if (ret)
				break;
		}
	}
	if (!ret)
		ret = ring_prod_publish(&r->p);
	r->prod_err = ret;
	r->total = sent;
	smp_store_release(&r->done, 1); /* pairs with the consumer's acquire */
	/* The consumer may be asleep on the doorbell. */
	if (r->doorbell >= 0 && write(r->doorbell, &one, sizeof(one)) < 0)
		r->prod_err = -errno;
	return NULL;
}

static void *consumer(void *arg)
{
	struct run *r = arg;
	struct smmu_ring_entry buf[MAX_BATCH];
	uint64_t one = 1, v, idle = 0;
	double idle_since = 0;
	int ret = 0;

	for (;;) {
		uint32_t avail, n;

		ret = ring_cons_poll(&r->rc, &avail);
		if (ret)
			break;
		if (avail) {
			idle_since = 0;
			n = ring_cons_fetch(&r->rc, buf, r->cons_max);
			r->received += n;
			ring_cons_complete(&r->rc, r->rc.fetch);
			if (ring_cons_want_signal(&r->rc)) {
				r->signals++;
				if (write(r->completion, &one, sizeof(one)) <
				    0) {
					ret = -errno;
					break;
				}
			}
			continue;
		}
		/* done is acquired before total (release in producer). */
		if (smp_load_acquire(&r->done) && r->received == r->total)
			break;
		if (r->mode == MODE_SPIN) {
			/* Poll; yield now and then like ring_prod_wait()
			 * without an fd, so two pollers share a busy core. */
			if (++idle % 1024 == 0)
				sched_yield();
			else
				common_cpu_relax();
			continue;
		}
		/* Like the worker: poll a bounded time before sleeping. */
		if (r->spin_ns) {
			double t = now_s();

			if (!idle_since)
				idle_since = t;
			if ((t - idle_since) * 1e9 < (double)r->spin_ns) {
				common_cpu_relax();
				continue;
			}
		}
		idle_since = 0;
		if (ring_cons_set_need_wakeup(&r->rc))
			continue;
		r->wakeups++;
		if (read(r->doorbell, &v, sizeof(v)) < 0) {
			ret = -errno;
			break;
		}
		ring_cons_clear_need_wakeup(&r->rc);
	}
	r->cons_err = ret;
	return NULL;
}

/* Returns commands per second, or a negative errno. */
static double run_once(const struct opts *o, int mode, int load, uint32_t batch,
		       double *ret_wakeups_per_k)
{
	struct run r = { .mode = mode,
			 .load = load,
			 .batch = batch,
			 .cons_max = o->cons_max ? o->cons_max : batch,
			 .seconds = o->seconds,
			 .spin_ns = o->spin_ns,
			 .doorbell = -1,
			 .completion = -1 };
	pthread_t pt, ct;
	double t0, t1;
	int memfd, ret;

	ret = ring_memfd_create(o->log2, &memfd);
	if (ret)
		return ret;
	if (mode == MODE_EVENTFD) {
		r.doorbell = eventfd(0, EFD_CLOEXEC);
		r.completion = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (r.doorbell < 0 || r.completion < 0)
			return -errno;
	}
	ret = ring_prod_init(&r.p, memfd, r.doorbell, r.completion);
	if (ret)
		return ret;
	ret = ring_cons_map(memfd, &r.rc);
	if (ret)
		return ret;

	t0 = now_s();
	if (pthread_create(&ct, NULL, consumer, &r) ||
	    pthread_create(&pt, NULL, producer, &r))
		return -EAGAIN;
	pthread_join(pt, NULL);
	pthread_join(ct, NULL);
	t1 = now_s();

	ring_prod_done(&r.p);
	ring_cons_unmap(&r.rc);
	close(memfd);
	if (r.doorbell >= 0)
		close(r.doorbell);
	if (r.completion >= 0)
		close(r.completion);
	if (r.prod_err)
		return r.prod_err;
	if (r.cons_err)
		return r.cons_err;
	if (r.received != r.total)
		return -EIO;
	*ret_wakeups_per_k = r.received ? (double)(r.wakeups + r.signals) *
						  1000.0 / (double)r.received :
					  0;
	return (double)r.received / (t1 - t0);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [-r reps (1-%d)] [-t seconds] [-l log2_entries] "
		"[-s spin_ns]\n"
		"       [-b batch,batch.. (1-%d, at most %d sizes; default "
		"1,8,64)]\n"
		"       [-c consumer max per pass (0 = the batch; default 64)]\n"
		"       [-m spin|eventfd] [-L stream|sync]\n",
		argv0, MAX_REPS, MAX_BATCH, MAX_BATCHES);
}

/* -b: a comma list of batch sizes. Return: 0 or -EINVAL. */
static int parse_batches(const char *s, struct opts *o)
{
	char *end;

	o->nbatch = 0;
	for (;;) {
		unsigned long v = strtoul(s, &end, 10);

		if (end == s || !v || v > MAX_BATCH || o->nbatch == MAX_BATCHES)
			return -EINVAL;
		o->batches[o->nbatch++] = (uint32_t)v;
		if (!*end)
			return 0;
		if (*end != ',')
			return -EINVAL;
		s = end + 1;
	}
}

/* -m / -L: the index of @s in @names, or -1. */
static int pick(const char *s, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -1;
}

/* Run the selected cells; fill mcmd/wk. Return: 0, or 1 (printed). */
static int run_cells(const struct opts *o, double (*mcmd)[LOAD_NR][MAX_BATCHES],
		     double (*wk)[LOAD_NR][MAX_BATCHES])
{
	for (int m = 0; m < MODE_NR; m++) {
		for (int l = 0; l < LOAD_NR; l++) {
			if ((o->only_mode >= 0 && m != o->only_mode) ||
			    (o->only_load >= 0 && l != o->only_load))
				continue;
			for (unsigned int b = 0; b < o->nbatch; b++) {
				double v[MAX_REPS], w[MAX_REPS];

				for (int i = 0; i < o->reps; i++) {
					v[i] = run_once(o, m, l, o->batches[b],
							&w[i]);
					if (v[i] < 0) {
						fprintf(stderr,
							"ring-bench: %s/%s/%u: "
							"%s\n",
							mode_name[m],
							load_name[l],
							o->batches[b],
							strerror((int)-v[i]));
						return 1;
					}
				}
				mcmd[m][l][b] = median(v, o->reps) / 1e6;
				wk[m][l][b] = median(w, o->reps);
			}
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = { .reps = 5,
			  .seconds = 0.2,
			  .log2 = 10,
			  .batches = { 1, 8, 64 },
			  .nbatch = 3,
			  .cons_max = 64,
			  .only_mode = -1,
			  .only_load = -1 };
	double mcmd[MODE_NR][LOAD_NR][MAX_BATCHES];
	double wk[MODE_NR][LOAD_NR][MAX_BATCHES];
	bool bad = false;
	int c;

	while ((c = getopt(argc, argv, "r:t:l:s:b:c:m:L:h")) != -1) {
		switch (c) {
		case 'r':
			o.reps = atoi(optarg);
			break;
		case 't':
			o.seconds = atof(optarg);
			break;
		case 'l':
			o.log2 = (uint32_t)atoi(optarg);
			break;
		case 's':
			o.spin_ns = strtoull(optarg, NULL, 0);
			break;
		case 'b':
			bad |= parse_batches(optarg, &o) != 0;
			break;
		case 'c':
			o.cons_max = (uint32_t)atoi(optarg);
			bad |= o.cons_max > MAX_BATCH;
			break;
		case 'm':
			o.only_mode = pick(optarg, mode_name, MODE_NR);
			bad |= o.only_mode < 0;
			break;
		case 'L':
			o.only_load = pick(optarg, load_name, LOAD_NR);
			bad |= o.only_load < 0;
			break;
		default:
			usage(argv[0]);
			return c == 'h' ? 0 : 2;
		}
	}
	for (unsigned int b = 0; b < o.nbatch; b++)
		bad |= o.log2 <= SMMU_RING_MAX_LOG2 &&
		       o.batches[b] > (1u << o.log2) / 2;
	if (bad || o.reps < 1 || o.reps > MAX_REPS || o.seconds <= 0 ||
	    o.log2 < SMMU_RING_MIN_LOG2 || o.log2 > SMMU_RING_MAX_LOG2 ||
	    (1u << o.log2) < 64) {
		usage(argv[0]);
		return 2;
	}
	if (run_cells(&o, mcmd, wk))
		return 1;

	printf("ring-bench: %d repetitions x %.2f s, ring of %u entries, "
	       "consumer max %s%u per pass, eventfd spin %llu ns; median over "
	       "repetitions\n\n",
	       o.reps, o.seconds, 1u << o.log2, o.cons_max ? "" : "= batch, ",
	       o.cons_max ? o.cons_max : 0, (unsigned long long)o.spin_ns);
	printf("%-8s %-7s |", "mode", "load");
	for (unsigned int b = 0; b < o.nbatch; b++)
		printf("  batch %-3u Mcmd/s", o.batches[b]);
	printf(" | consumer sleeps + signals per 1k cmds (b=");
	for (unsigned int b = 0; b < o.nbatch; b++)
		printf("%s%u", b ? "/" : "", o.batches[b]);
	printf(")\n");
	for (int m = 0; m < MODE_NR; m++) {
		for (int l = 0; l < LOAD_NR; l++) {
			if ((o.only_mode >= 0 && m != o.only_mode) ||
			    (o.only_load >= 0 && l != o.only_load))
				continue;
			printf("%-8s %-7s |", mode_name[m], load_name[l]);
			for (unsigned int b = 0; b < o.nbatch; b++)
				printf("  %16.2f", mcmd[m][l][b]);
			printf(" |");
			for (unsigned int b = 0; b < o.nbatch; b++)
				printf("%s%.1f", b ? " /" : " ", wk[m][l][b]);
			printf("\n");
		}
	}
	return 0;
}
