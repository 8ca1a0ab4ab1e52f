/* SPDX-License-Identifier: MIT */
/*
 * Two threads move many commands through one ring with the real
 * notification protocol: the consumer sleeps in a blocking read of the
 * doorbell eventfd after NEED_WAKEUP, the producer sleeps on the
 * completion eventfd through ring_prod_wait() (WANT_SIGNAL). Every command
 * is checked in order and summed; a lost wakeup shows up as a timeout.
 *
 * Count: $RING_STRESS_COUNT, else 10 million, also under TSan (the run is
 * syscall-bound: ~2.5 s normally, ~4 s under TSan on the 2-core CI box).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "ring/ring_cons.h"
#include "tests/harness.h"
#include <smmu-offload/ring-prod.h>

#define STRESS_DEFAULT_COUNT 10000000u
#define STRESS_LOG2 8
#define STRESS_START 0xffff0000u /* crosses the u32 index wrap */
#define STRESS_SLEEP_MS 10000 /* a sleep this long is a lost wakeup */

struct stress {
	struct ring_prod p;
	struct ring_cons rc;
	int memfd, doorbell, completion;
	uint32_t count;
	/* producer results (producer thread) */
	uint64_t sum_sent;
	int prod_err;
	uint64_t prod_waits;
	/* consumer results (consumer thread) */
	uint64_t sum_recv;
	uint32_t received;
	uint32_t out_of_order;
	int cons_err;
	uint64_t cons_sleeps, signals;
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ull;
	x ^= x >> 27;
	x *= 0x81dadef4bc2dd44dull;
	return x ^ (x >> 33);
}

static uint32_t stress_count(void)
{
	const char *s = getenv("RING_STRESS_COUNT");

	return s ? (uint32_t)strtoul(s, NULL, 0) : STRESS_DEFAULT_COUNT;
}

static void *producer(void *arg)
{
	struct stress *st = arg;
	struct smmu_ring_entry e[64];
	struct ring_prod *p = &st->p;
	uint64_t rnd = t_seed();
	uint32_t sent = 0, first;
	int ret = 0;

	while (sent < st->count) {
		uint64_t r = t_rand(&rnd);
		uint32_t n = (uint32_t)(r % 64) + 1;

		if (n > st->count - sent)
			n = st->count - sent;
		for (uint32_t i = 0; i < n; i++) {
			uint64_t seq = sent + i;

			e[i].le[0] = seq;
			e[i].le[1] = mix(seq);
		}
		ret = ring_prod_push(p, e, n, &first);
		if (ret == -EAGAIN) {
			/* Wait for the n oldest slots, sleeping if needed. */
			ret = ring_prod_wait(p, p->prod - p->size + n - 1,
					     (r >> 8) % 4000, STRESS_SLEEP_MS);
			st->prod_waits++;
			if (ret)
				goto out;
			continue;
		}
		if (ret)
			goto out;
		for (uint32_t i = 0; i < n; i++)
			st->sum_sent += mix(sent + i);
		sent += n;
		ret = ring_prod_publish(p);
		if (ret)
			goto out;
		/* Like a guest CMD_SYNC: sometimes wait for completion. */
		if ((r >> 16) % 8 == 0) {
			ret = ring_prod_wait(p, first + n - 1, (r >> 24) % 2000,
					     STRESS_SLEEP_MS);
			st->prod_waits++;
			if (ret)
				goto out;
		}
	}
	ret = ring_prod_wait(p, p->prod - 1, 0, STRESS_SLEEP_MS);
out:
	st->prod_err = ret;
	return NULL;
}

/* Blocking wait on the doorbell, bounded so a lost wakeup fails. */
static int doorbell_wait(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint64_t v;
	int ret;

	do
		ret = poll(&pfd, 1, STRESS_SLEEP_MS);
	while (ret < 0 && errno == EINTR);
	if (ret < 0)
		return -errno;
	if (ret == 0)
		return -ETIMEDOUT;
	if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		return -errno;
	return 0;
}

static void *consumer(void *arg)
{
	struct stress *st = arg;
	struct smmu_ring_entry buf[64];
	struct ring_cons *rc = &st->rc;
	uint64_t one = 1;
	int ret = 0;

	while (st->received < st->count) {
		uint32_t avail, n;

		ret = ring_cons_poll(rc, &avail);
		if (ret)
			goto out;
		if (!avail) {
			if (ring_cons_set_need_wakeup(rc))
				continue;
			st->cons_sleeps++;
			ret = doorbell_wait(st->doorbell);
			ring_cons_clear_need_wakeup(rc);
			if (ret)
				goto out;
			continue;
		}
		n = ring_cons_fetch(rc, buf, 64);
		for (uint32_t i = 0; i < n; i++) {
			uint64_t seq = st->received + i;

			if (buf[i].le[0] != seq || buf[i].le[1] != mix(seq))
				st->out_of_order++;
			st->sum_recv += mix(buf[i].le[0]);
		}
		st->received += n;
		ring_cons_complete(rc, rc->fetch);
		if (ring_cons_want_signal(rc)) {
			st->signals++;
			if (write(st->completion, &one, sizeof(one)) < 0) {
				ret = -errno;
				goto out;
			}
		}
	}
out:
	st->cons_err = ret;
	return NULL;
}

TEST_TIMEOUT(two_threads_in_order, 120)
{
	struct stress st = { .count = stress_count() };
	struct smmu_ring_entry *cons_entries;
	struct smmu_ring_hdr *cons_hdr;
	uint32_t start = STRESS_START;
	pthread_t pt, ct;

	ASSERT_GT(st.count, 0);
	ASSERT_OK(ring_memfd_create(STRESS_LOG2, &st.memfd));
	ASSERT_EQ(pwrite(st.memfd, &start, 4,
			 offsetof(struct smmu_ring_hdr, prod)),
		  4);
	ASSERT_EQ(pwrite(st.memfd, &start, 4,
			 offsetof(struct smmu_ring_hdr, cons)),
		  4);
	/* Blocking doorbell (the consumer really sleeps in read/poll). */
	st.doorbell = eventfd(0, EFD_CLOEXEC);
	st.completion = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_GE(st.doorbell, 0);
	ASSERT_GE(st.completion, 0);

	ASSERT_OK(ring_prod_init(&st.p, st.memfd, st.doorbell, st.completion));
	ASSERT_OK(ring_cons_map(st.memfd, &st.rc));
	/*
	 * TSan tracks virtual addresses: with two mappings of the memfd it
	 * cannot relate the producer's writes to the consumer's reads. Run
	 * the consumer on the producer's mapping (same bytes, same layout)
	 * so a missing release/acquire shows up as a data race.
	 */
	cons_hdr = st.rc.hdr;
	cons_entries = st.rc.entries;
	st.rc.hdr = st.p.hdr;
	st.rc.entries = st.p.entries;

	ASSERT_EQ(pthread_create(&ct, NULL, consumer, &st), 0);
	ASSERT_EQ(pthread_create(&pt, NULL, producer, &st), 0);
	ASSERT_EQ(pthread_join(pt, NULL), 0);
	ASSERT_EQ(pthread_join(ct, NULL), 0);
	st.rc.hdr = cons_hdr;
	st.rc.entries = cons_entries;
	ring_cons_unmap(&st.rc);
	ring_prod_done(&st.p);

	printf("# %u commands, %" PRIu64 " producer waits, %" PRIu64
	       " completion signals, %" PRIu64 " consumer sleeps\n",
	       st.count, st.prod_waits, st.signals, st.cons_sleeps);
	ASSERT_OK(st.prod_err);
	ASSERT_OK(st.cons_err);
	ASSERT_EQ(st.received, st.count);
	ASSERT_EQ(st.out_of_order, 0);
	ASSERT_EQ(st.sum_recv, st.sum_sent);
	/* Both sleeping paths were exercised, not just spinning. */
	ASSERT_GT(st.cons_sleeps, 0);
	ASSERT_GT(st.signals, 0);
	close(st.memfd);
	close(st.doorbell);
	close(st.completion);
}

TEST_HARNESS_MAIN
