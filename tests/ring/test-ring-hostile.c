/* SPDX-License-Identifier: MIT */
/*
 * Hostile producer: a thread scribbles random values over every byte a
 * VMM can write in ring A (prod, prod_flags, resume_seq, the identity
 * line, entries, and even the service's own line) while the consumer
 * polls, fetches, completes, halts and resumes it. The consumer must never
 * crash or copy out of bounds (run under ASan), must halt with
 * SMMU_RING_ERR_PROTO when prod is out of range, and ring B, served by
 * the same consumer thread and fed by a correct producer thread, must
 * deliver every command in order.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/barrier.h"
#include "ring/ring_cons.h"
#include "tests/harness.h"
#include <smmu-offload/ring-prod.h>

#define A_LOG2 6
#define B_LOG2 7
#define B_COUNT 300000u
#define A_MIN_PASSES 200000u
#define A_MIN_SECONDS 1.0
#define A_MAX_SECONDS 30.0

struct hostile {
	int fd_a, fd_b;
	unsigned int stop; /* READ_ONCE/WRITE_ONCE */
	/*
	 * The consumer's private halt_seq, so the scribbler can acknowledge
	 * halts correctly now and then even after it corrupted the shared
	 * copy (the service never reads that copy back).
	 */
	uint32_t halt_seq;
	uint64_t scribbles;
	int prod_err;
};

/* The scribbler has its own mapping, as a VMM process would. */
static void *scribbler(void *arg)
{
	struct hostile *h = arg;
	size_t len = smmu_ring_bytes(A_LOG2);
	uint64_t rnd = t_seed() ^ 0x5c81bb1e;
	struct smmu_ring_hdr *hdr;
	uint32_t *words;

	hdr = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, h->fd_a, 0);
	if (hdr == MAP_FAILED)
		return NULL;
	words = (uint32_t *)hdr;
	while (!READ_ONCE(h->stop)) {
		uint64_t r = t_rand(&rnd);
		uint32_t v = (uint32_t)(r >> 32);
		uint32_t cons = READ_ONCE(hdr->cons);

		/* r % 64 picks the target; weights favour the interesting */
		uint32_t pick = (uint32_t)(r % 64);

		if (pick < 6) { /* prod anywhere */
			WRITE_ONCE(hdr->prod, v);
		} else if (pick < 18) { /* prod near cons: often legal */
			WRITE_ONCE(hdr->prod, cons + (v % 80) - 8);
		} else if (pick < 22) {
			WRITE_ONCE(hdr->prod_flags, v);
		} else if (pick < 30) { /* acknowledge the halt, or not */
			WRITE_ONCE(hdr->resume_seq,
				   v & 3 ? READ_ONCE(h->halt_seq) : v);
		} else if (pick < 34) { /* identity line */
			WRITE_ONCE(words[v % 16], (uint32_t)r);
		} else if (pick < 35) { /* service line: never read back */
			WRITE_ONCE(words[32 + v % 16], (uint32_t)r);
		} else { /* entries */
			struct smmu_ring_entry *e = (void *)(hdr + 1);

			e[v & ((1u << A_LOG2) - 1)].le[r & 1] = r;
		}
		h->scribbles++;
	}
	munmap(hdr, len);
	return NULL;
}

static uint64_t tag(uint64_t seq)
{
	return seq * 0x9e3779b97f4a7c15ull + 1;
}

/* A correct VMM on ring B, spinning (no eventfds). */
static void *producer_b(void *arg)
{
	struct hostile *h = arg;
	struct smmu_ring_entry e[16];
	struct ring_prod p;
	uint32_t sent = 0, first;
	int ret;

	ret = ring_prod_init(&p, h->fd_b, -1, -1);
	while (!ret && sent < B_COUNT) {
		uint32_t n = sent % 16 + 1;

		if (n > B_COUNT - sent)
			n = B_COUNT - sent;
		for (uint32_t i = 0; i < n; i++) {
			e[i].le[0] = sent + i;
			e[i].le[1] = tag(sent + i);
		}
		ret = ring_prod_push(&p, e, n, &first);
		if (ret == -EAGAIN) {
			ret = ring_prod_wait(&p, p.prod - p.size + n - 1, 0,
					     10000);
			continue;
		}
		if (!ret)
			ret = ring_prod_publish(&p);
		sent += n;
	}
	h->prod_err = ret;
	ring_prod_done(&p);
	return NULL;
}

struct a_stats {
	uint64_t passes, fetched, proto, halts, resumes;
};

/* One consumer pass over the hostile ring; asserts the invariants. */
static void serve_a(struct ring_cons *a, uint64_t *rnd, struct a_stats *st)
{
	uint64_t r = t_rand(rnd);
	struct smmu_ring_entry *buf;
	uint32_t avail = 0, k, got, inflight;
	int ret;

	st->passes++;
	ret = ring_cons_poll(a, &avail);
	if (ret == -EPROTO) {
		st->proto++;
		ASSERT_TRUE(a->halted);
		return;
	}
	if (ret == -EPIPE) {
		ASSERT_TRUE(a->halted);
		if (ring_cons_resume_requested(a)) {
			ring_cons_resume(a);
			st->resumes++;
		} else if (r % 4 == 0 && !ring_cons_set_need_wakeup(a)) {
			ring_cons_clear_need_wakeup(a);
		}
		return;
	}
	ASSERT_OK(ret);
	ASSERT_LE(avail, a->size);
	ASSERT_LE(a->prod - a->cons, a->size);

	/* A buffer of exactly k entries: ASan catches any overrun. */
	k = (uint32_t)(r % 64) + 1;
	buf = malloc(k * sizeof(*buf));
	ASSERT_NONNULL(buf);
	got = ring_cons_fetch(a, buf, k);
	free(buf);
	ASSERT_LE(got, k);
	ASSERT_LE(got, avail);
	st->fetched += got;
	inflight = ring_cons_inflight(a);
	ASSERT_LE(inflight, a->size);

	r >>= 8;
	if (r % 64 == 0 && inflight) {
		ring_cons_halt(a, a->cons + (uint32_t)(r >> 8) % inflight,
			       SMMU_RING_ERR_CERROR_ILL);
		st->halts++;
	} else {
		ring_cons_complete(a, a->cons + (uint32_t)(r >> 8) %
							(inflight + 1));
	}
	(void)ring_cons_want_signal(a);
	if (r % 16 == 1 && !ring_cons_set_need_wakeup(a))
		ring_cons_clear_need_wakeup(a);
}

TEST_TIMEOUT(hostile_producer_contained, 60)
{
	struct hostile h = { 0 };
	struct ring_cons a, b;
	struct a_stats st = { 0 };
	struct smmu_ring_entry buf[32];
	uint64_t rnd = t_seed(), sum = 0, want = 0;
	uint32_t received = 0, bad = 0;
	pthread_t ts, tp;
	double start;

	ASSERT_OK(ring_memfd_create(A_LOG2, &h.fd_a));
	ASSERT_OK(ring_memfd_create(B_LOG2, &h.fd_b));
	ASSERT_OK(ring_cons_map(h.fd_a, &a));
	ASSERT_OK(ring_cons_map(h.fd_b, &b));
	ASSERT_EQ(pthread_create(&ts, NULL, scribbler, &h), 0);
	ASSERT_EQ(pthread_create(&tp, NULL, producer_b, &h), 0);

	/* The worker's loop: both rings, round-robin. */
	start = t_now();
	/*
	 * At least a second and every interesting outcome seen once (on a
	 * loaded machine the scribbler may get little CPU: keep going, up to
	 * A_MAX_SECONDS, rather than judge a run that saw nothing).
	 */
	while (received < B_COUNT || st.passes < A_MIN_PASSES ||
	       t_now() - start < A_MIN_SECONDS ||
	       ((!st.fetched || !st.proto || !st.resumes) &&
		t_now() - start < A_MAX_SECONDS)) {
		uint32_t avail, n;

		serve_a(&a, &rnd, &st);
		WRITE_ONCE(h.halt_seq, a.halt_seq);
		if (received == B_COUNT)
			continue;
		ASSERT_OK(ring_cons_poll(&b, &avail));
		n = ring_cons_fetch(&b, buf, 32);
		for (uint32_t i = 0; i < n; i++) {
			bad += buf[i].le[0] != received + i ||
			       buf[i].le[1] != tag(received + i);
			sum += buf[i].le[1];
		}
		received += n;
		ring_cons_complete(&b, b.fetch);
	}
	WRITE_ONCE(h.stop, 1);
	ASSERT_EQ(pthread_join(ts, NULL), 0);
	ASSERT_EQ(pthread_join(tp, NULL), 0);

	printf("# ring A: %" PRIu64 " passes, %" PRIu64 " scribbles, %" PRIu64
	       " fetched, %" PRIu64 " PROTO halts, %" PRIu64
	       " error halts, %" PRIu64 " resumes\n",
	       st.passes, h.scribbles, st.fetched, st.proto, st.halts,
	       st.resumes);
	for (uint32_t i = 0; i < B_COUNT; i++)
		want += tag(i);
	ASSERT_OK(h.prod_err);
	ASSERT_EQ(received, B_COUNT);
	ASSERT_EQ(bad, 0);
	ASSERT_EQ(sum, want);
	ASSERT_FALSE(b.halted);
	/* the hostile ring was really exercised, and contained */
	ASSERT_GT(st.proto, 0);
	ASSERT_GT(st.resumes, 0);
	ASSERT_GT(st.fetched, 0);
	/* the consumer's own view never changed under the scribbling */
	ASSERT_EQ(a.size, 1u << A_LOG2);
	ASSERT_EQ(a.mask, a.size - 1);
	ASSERT_EQ((char *)a.entries - (char *)a.hdr, SMMU_RING_HDR_SIZE);

	/* Quiet now: an out-of-range prod halts with PROTO at cons. */
	if (a.halted) {
		WRITE_ONCE(a.hdr->resume_seq, a.halt_seq);
		ASSERT_TRUE(ring_cons_resume_requested(&a));
		ring_cons_resume(&a);
	}
	ring_cons_complete(&a, a.fetch);
	smp_store_release(&a.hdr->prod, a.cons + a.size + 1);
	ASSERT_ERR(-EPROTO, ring_cons_poll(&a, &(uint32_t){ 0 }));
	ASSERT_EQ(a.hdr->err, SMMU_RING_ERR_PROTO);
	ASSERT_EQ(a.hdr->err_index, a.cons);
	ASSERT_EQ(a.hdr->cons, a.cons);
	ASSERT_EQ(a.hdr->svc_flags & SMMU_RING_HALTED, SMMU_RING_HALTED);

	ring_cons_unmap(&a);
	ring_cons_unmap(&b);
	close(h.fd_a);
	close(h.fd_b);
}

TEST_HARNESS_MAIN
