/* SPDX-License-Identifier: MIT */
/*
 * A hostile guest with real concurrency: a thread (its own mappings, as a
 * guest vCPU would have) scribbles over queue 0's registers and flips its
 * queue slots between an accepted command and an illegal one while the
 * service thread polls, fetches and completes, and a correct guest drives
 * queue 1 of the same page from the service thread's loop. The service
 * must never crash or read outside the queue (run under ASan), must only
 * ever hand out accepted commands (it judges its copy, whatever the slot
 * holds a moment later), queue 1 must deliver every command in order, and
 * afterwards the Linux init sequence must bring queue 0 back.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cmdq/cmdq.h"
#include "common/barrier.h"
#include "ring/vcmdq_cons.h"
#include "tests/harness.h"
#include "tests/ring/vcmdq-guest.h"

#define PASSES 40000
#define Q0_GPA (RAM_GPA + 0x4000) /* queue 0: 32 entries */
#define Q1_GPA (RAM_GPA + 0x8000)

/*
 * The two threads run in loose lockstep: the scribbler stays at most one
 * pass's worth of writes (WRITES_PER_PASS) ahead of the service thread,
 * and the service thread at most one pass ahead of the scribbler, so they
 * interleave whatever the scheduler does (on a loaded machine a
 * free-running thread may do all its writes in one time slice while the
 * other waits for a CPU). Each side yields while it waits for the other's
 * progress counter: an event, not a time.
 */
#define WRITES_PER_PASS 8

struct scribbler {
	int page_fd, ram_fd;
	unsigned int stop; /* READ_ONCE/WRITE_ONCE */
	uint64_t writes; /* written by the scribbler */
	uint64_t passes; /* written by the service thread */
};

static void *scribble(void *arg)
{
	struct scribbler *s = arg;
	uint64_t rs = t_seed() ^ 0x5c81bb1eULL;
	uint8_t *page, *ram;
	uint32_t *qw; /* queue 0 memory as words */
	struct smmu_vcmdq_regs *r;
	uint32_t v, slot;

	page = mmap(NULL, SMMU_VCMDQ_FILE_SIZE, PROT_READ | PROT_WRITE,
		    MAP_SHARED, s->page_fd, 0);
	ram = mmap(NULL, RAM_TOTAL, PROT_READ | PROT_WRITE, MAP_SHARED,
		   s->ram_fd, 0);
	if (page == MAP_FAILED || ram == MAP_FAILED)
		return NULL;
	r = smmu_vcmdq_regs(page, 0);
	qw = (uint32_t *)(ram + (Q0_GPA - RAM_GPA));
	while (!READ_ONCE(s->stop)) {
		uint64_t x;

		if (s->writes >= READ_ONCE(s->passes) * WRITES_PER_PASS) {
			sched_yield(); /* wait for the service's next pass */
			continue;
		}
		x = t_rand(&rs);
		v = (uint32_t)(x >> 32);
		slot = (x >> 8) % 32;

		switch (x % 20) {
		case 0: /* any word of queue 0's registers */
			WRITE_ONCE(((uint32_t *)r)[(x >> 8) % 32], v);
			break;
		case 1:
		case 2:
		case 3:
		case 4: /* PROD a little ahead of CONS, mostly legal */
			WRITE_ONCE(r->prod, (READ_ONCE(r->cons) + v % 33) & 63);
			break;
		case 5:
			WRITE_ONCE(r->config, v % 8 != 0);
			break;
		case 6:
		case 7:
		case 8: /* acknowledge */
			WRITE_ONCE(r->gerrorn, READ_ONCE(r->gerror));
			break;
		default: /* flip a slot: accepted <-> illegal, word by word */
			WRITE_ONCE(qw[4 * slot], v % 4 ? CMDQ_OP_TLBI_NH_VA :
							 CMDQ_OP_CFGI_STE);
			WRITE_ONCE(qw[4 * slot + 1], 7u << 16);
			WRITE_ONCE(qw[4 * slot + 2], v & ~0xfffu);
			WRITE_ONCE(qw[4 * slot + 3], 0);
			break;
		}
		WRITE_ONCE(s->writes, s->writes + 1);
	}
	munmap(page, SMMU_VCMDQ_FILE_SIZE);
	munmap(ram, RAM_TOTAL);
	return NULL;
}

VCMDQ_ENV_FIXTURE(hostile, 2)

TEST_F_TIMEOUT(hostile, concurrent_scribbler, 120)
{
	struct env *e = &self->e;
	struct scribbler s = { .page_fd = e->page_fd, .ram_fd = e->ram_fd };
	struct smmu_ring_entry c[4];
	const struct ring_vcmdq_q *q = &e->v.q[0];
	uint64_t rs = t_seed();
	uint32_t sent = 0, last;
	pthread_t th;

	ASSERT_OK(guest_queue_init(e, 0, Q0_GPA, 5));
	ASSERT_OK(guest_queue_init(e, 1, Q1_GPA, 6));
	ASSERT_OK(pthread_create(&th, NULL, scribble, &s));
	for (int pass = 0; pass < PASSES; pass++) {
		uint64_t x = t_rand(&rs);

		while (READ_ONCE(s.writes) + WRITES_PER_PASS <
		       s.passes * WRITES_PER_PASS)
			sched_yield(); /* wait for the scribbler's share */

		if (x % 64 == 0) /* the VMM forwards a BASE now and then */
			ring_vcmdq_set_base(
				&e->v, 0,
				x & 64 ? smmu_vcmdq_base(Q0_GPA, 5) : x >> 8);
		if (x % 16 == 1) {
			ASSERT_OK(guest_round(e, 1, 9, 0x1000ULL * (sent + 1)));
			sent += 4;
		}
		service_pass(e);
		WRITE_ONCE(s.passes, s.passes + 1);
		if (q->state != RING_VCMDQ_OFF) {
			ASSERT_LE(q->fetch - q->cons, q->prod - q->cons);
			ASSERT_LE(q->prod - q->cons, q->size);
		}
	}
	WRITE_ONCE(s.stop, 1);
	ASSERT_OK(pthread_join(th, NULL));

	ASSERT_EQ(e->nlog[1], sent);
	for (uint32_t i = 0; i < sent; i++)
		ASSERT_EQ(le64toh(e->log[1][i].le[0]) & 0xff,
			  i % 4 == 3 ? CMDQ_OP_SYNC : CMDQ_OP_TLBI_NH_VA);
	for (uint32_t i = 0; i < e->nlog[0]; i++)
		ASSERT_TRUE(
			ring_vcmdq_cmd_allowed(le64toh(e->log[0][i].le[0])));
	printf("# %" PRIu64 " guest writes, queue 0 handed out %u commands\n",
	       s.writes, e->nlog[0]);

	/* The guest's own init sequence recovers queue 0. */
	/* One pass puts back what the scribbler stored over the service's
	 * registers after the last one. */
	service_pass(e);
	ASSERT_OK(guest_queue_init(e, 0, Q0_GPA, 5));
	c[0] = tlbi_va(3, 0x5000);
	c[1] = sync_none();
	ASSERT_OK(guest_submit(e, 0, c, 2, &last));
	ASSERT_OK(guest_wait_sync(e, 0, last));
	EXPECT_EQ(READ_ONCE(regs(e, 0)->cons), 2);
}

TEST_HARNESS_MAIN
