/* SPDX-License-Identifier: MIT */
/*
 * The software vCMDQ consumer (ring/vcmdq_cons.h) against a software
 * guest that follows the Linux tegra241-cmdqv driver (facts 2.3 enable
 * handshake, 2.5 submission, 2.6 CONS polling, 2.8 ISR and ILL skip
 * routine), a test "worker" that fetches, records and completes, and a
 * hostile guest. Every wait is a bounded loop of "service pass, then
 * guest re-reads the register": no sleeps, no clocks.
 *
 * Oracles are the test's own: the guest's completion predicate is the
 * driver's (facts 2.6) on raw register values; the worker's log of
 * issued commands is compared with what the guest wrote; the opcode
 * policy is checked against cmdq's opcode constants.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cmdq/cmdq.h"
#include "common/barrier.h"
#include "ring/vcmdq_cons.h"
#include "tests/harness.h"
#include "tests/ring/vcmdq-guest.h"

/* ---- tests ---------------------------------------------------------- */

VCMDQ_ENV_FIXTURE(vq, 2)

TEST(opcode_policy_and_mode)
{
	/* Our constants against cmdq's (an independent table). */
	EXPECT_EQ(SMMU_VCMDQ_OP_TLBI_NH_ASID, CMDQ_OP_TLBI_NH_ASID);
	EXPECT_EQ(SMMU_VCMDQ_OP_TLBI_NH_VA, CMDQ_OP_TLBI_NH_VA);
	EXPECT_EQ(SMMU_VCMDQ_OP_ATC_INV, CMDQ_OP_ATC_INV);
	EXPECT_EQ(SMMU_VCMDQ_OP_CMD_SYNC, CMDQ_OP_SYNC);
	EXPECT_EQ(SMMU_VCMDQ_CERROR_ILL, CMDQ_CERROR_ILL);
	EXPECT_EQ(SMMU_VCMDQ_CERROR_ABT, CMDQ_CERROR_ABT);
	EXPECT_EQ(SMMU_VCMDQ_CERROR_ATC_INV_SYNC, CMDQ_CERROR_ATC_INV_SYNC);
	for (uint64_t op = 0; op < 256; op++) {
		bool want = op == CMDQ_OP_TLBI_NH_ASID ||
			    op == CMDQ_OP_TLBI_NH_VA || op == CMDQ_OP_ATC_INV ||
			    op == CMDQ_OP_SYNC;

		EXPECT_EQ(ring_vcmdq_cmd_allowed(op | 0xabcd0000ULL << 32),
			  want);
	}
	for (uint64_t cs = 1; cs < 4; cs++)
		EXPECT_FALSE(ring_vcmdq_cmd_allowed(CMDQ_OP_SYNC | cs << 12));
	EXPECT_TRUE(ring_vcmdq_cmd_allowed(le64toh(sync_none().le[0])));

	EXPECT_OK(ring_vcmdq_mode_check(SMMU_VCMDQ_VERSION, 0));
	EXPECT_OK(ring_vcmdq_mode_check(SMMU_VCMDQ_VERSION_WORD(1, 9), 0));
	EXPECT_ERR(-EPROTONOSUPPORT,
		   ring_vcmdq_mode_check(SMMU_VCMDQ_VERSION_WORD(2, 0), 0));
	EXPECT_ERR(-EPROTONOSUPPORT, ring_vcmdq_mode_check(0, 0));
	EXPECT_ERR(-EOPNOTSUPP, ring_vcmdq_mode_check(SMMU_VCMDQ_VERSION, 1));
	EXPECT_EQ(smmu_vcmdq_base(0x12345000ULL | 0x7, 8), 0x12345008ULL);
}

TEST(map_refusals)
{
	struct ring_gmem g;
	struct ring_vcmdq v;
	int fd, p[2];

	ring_gmem_init(&g, 1ULL << 30);
	fd = memfd_create("page", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ASSERT_GE(fd, 0);
	ASSERT_OK(ftruncate(fd, SMMU_VCMDQ_FILE_SIZE));
	EXPECT_ERR(-EPERM, ring_vcmdq_map(fd, 2, &g, &v));
	ASSERT_OK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK));
	EXPECT_ERR(-EPERM, ring_vcmdq_map(fd, 2, &g, &v));
	ASSERT_OK(fcntl(fd, F_ADD_SEALS, F_SEAL_GROW));
	EXPECT_ERR(-EINVAL, ring_vcmdq_map(fd, 0, &g, &v));
	EXPECT_ERR(-EINVAL, ring_vcmdq_map(fd, 2, NULL, &v));
	EXPECT_ERR(-EINVAL,
		   ring_vcmdq_map(fd, SMMU_VCMDQ_MAX_QUEUES + 1, &g, &v));
	ASSERT_OK(ring_vcmdq_map(fd, SMMU_VCMDQ_MAX_QUEUES, &g, &v));
	EXPECT_ERR(-EINVAL, ring_vcmdq_set_base(&v, SMMU_VCMDQ_MAX_QUEUES, 0));
	ring_vcmdq_unmap(&v);
	close(fd);

	fd = memfd_create("page", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ASSERT_GE(fd, 0);
	ASSERT_OK(ftruncate(fd, SMMU_VCMDQ_PAGE0_SIZE));
	ASSERT_OK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW));
	EXPECT_ERR(-EMSGSIZE, ring_vcmdq_map(fd, 2, &g, &v));
	close(fd);

	ASSERT_OK(pipe2(p, O_CLOEXEC));
	EXPECT_ERR(-EBADF, ring_vcmdq_map(p[0], 2, &g, &v));
	close(p[0]);
	close(p[1]);
}

/* Facts 2.3 + 2.5 + 2.6 on both queues of the VINTF. */
TEST_F(vq, linux_enable_submit_sync)
{
	struct env *e = &self->e;
	struct smmu_ring_entry c[6];
	uint32_t last;

	ASSERT_OK(guest_queue_init(e, 0, RAM_GPA, 8));
	ASSERT_OK(guest_queue_init(e, 1, RAM_GPA + 0x10000, 4));
	EXPECT_EQ(ring_vcmdq_state(&e->v, 0), RING_VCMDQ_ON);
	EXPECT_EQ(READ_ONCE(regs(e, 1)->status), SMMU_VCMDQ_STATUS_ENABLED);
	EXPECT_EQ(READ_ONCE(regs(e, 0)->gerror), 0);

	for (unsigned int l = 0; l < 2; l++) {
		for (int i = 0; i < 5; i++)
			c[i] = tlbi_va(l + 1, 0x1000 * (uint64_t)i);
		c[5] = sync_none();
		ASSERT_OK(guest_submit(e, l, c, 6, &last));
		EXPECT_EQ(last, 5);
		ASSERT_OK(guest_wait_sync(e, l, last));
		EXPECT_EQ(READ_ONCE(regs(e, l)->cons), 6);
		ASSERT_EQ(e->nlog[l], 6);
		EXPECT_TRUE(!memcmp(e->log[l], c, sizeof(c)));
	}
	EXPECT_EQ(e->events & RING_VCMDQ_EV_ERROR, 0);
	EXPECT_EQ(READ_ONCE(smmu_vcmdq_svc(e->page)->err_seq), 0);
}

/* Small queue, many wraps, the guest waiting on a full queue. */
TEST_F(vq, wrap_and_full)
{
	struct env *e = &self->e;
	struct smmu_ring_entry c[8];
	uint64_t rs = t_seed();
	uint32_t sent = 0, last;

	ASSERT_OK(guest_queue_init(e, 0, RAM_GPA + 0x4000, 3));
	e->budget = 3;
	for (int b = 0; b < 400; b++) {
		uint32_t n = 1 + (uint32_t)(t_rand(&rs) % 8);
		bool sync = t_rand(&rs) % 2;

		for (uint32_t i = 0; i < n; i++)
			c[i] = tlbi_va(1, 0x1000ULL * (sent + i));
		if (sync)
			c[n - 1] = sync_none();
		ASSERT_OK(guest_submit(e, 0, c, n, &last));
		for (uint32_t i = 0; i < n; i++)
			ASSERT_TRUE(
				!memcmp(&c[i], &gq(e, 0)[(sent + i) & 7], 16));
		sent += n;
		if (sync)
			ASSERT_OK(guest_wait_sync(e, 0, last));
	}
	for (int i = 0; i < POLL_MAX && e->nlog[0] < sent; i++)
		service_pass(e);
	ASSERT_EQ(e->nlog[0], sent);
	for (uint32_t i = 0; i < sent; i++)
		if ((le64toh(e->log[0][i].le[0]) & 0xff) != CMDQ_OP_SYNC)
			ASSERT_EQ(le64toh(e->log[0][i].le[1]) & ~0xfffULL,
				  0x1000ULL * i);
	EXPECT_EQ(READ_ONCE(regs(e, 0)->cons), sent & 15);
}

/* The largest queue (2^19 entries, 8 MiB), all the way round. */
TEST_F(vq, max_queue_wraps)
{
	struct env *e = &self->e;
	struct smmu_ring_entry c[64];
	const uint32_t total = (1u << 19) + 640;
	uint32_t last;

	e->budget = 64;
	ASSERT_OK(guest_queue_init(e, 0, RAM_GPA + (16ULL << 20), 19));
	for (uint32_t sent = 0; sent < total; sent += 64) {
		for (int i = 0; i < 63; i++)
			c[i] = tlbi_va(2, 0x1000ULL * (sent + (uint32_t)i));
		c[63] = sync_none();
		ASSERT_OK(guest_submit(e, 0, c, 64, &last));
		ASSERT_OK(guest_wait_sync(e, 0, last));
	}
	EXPECT_EQ(e->nlog[0], total);
	/* Wrapped once: wrap bit set, index 640. */
	EXPECT_EQ(READ_ONCE(regs(e, 0)->cons), (1u << 19) | 640);
	EXPECT_EQ(le64toh(e->log[0][total - 2].le[1]) & ~0xfffULL,
		  0x1000ULL * (total - 2));
}

/* Facts 2.8: ILL halt, ISR, skip routine, resume. */
TEST_F(vq, ill_skip_routine)
{
	struct env *e = &self->e;
	struct smmu_vcmdq_svc *svc = smmu_vcmdq_svc(e->page);
	struct smmu_ring_entry c[5];
	uint32_t last, cons;

	ASSERT_OK(guest_queue_init(e, 1, RAM_GPA + 0x20000, 5));
	c[0] = tlbi_va(1, 0x1000);
	c[1] = tlbi_va(1, 0x2000);
	c[2] = cmd(CMDQ_OP_CFGI_STE | 8ULL << 32, 1); /* not for a VCMDQ */
	c[3] = tlbi_va(1, 0x3000);
	c[4] = sync_none();
	ASSERT_OK(guest_submit(e, 1, c, 5, &last));
	for (int i = 0; i < 4; i++)
		service_pass(e);

	/* Halted on the bad entry, everything before it complete. */
	cons = READ_ONCE(regs(e, 1)->cons);
	EXPECT_EQ(cons, 2u | SMMU_VCMDQ_CERROR_ILL << 24);
	EXPECT_EQ(ring_vcmdq_state(&e->v, 1), RING_VCMDQ_HALTED);
	EXPECT_NE(READ_ONCE(regs(e, 1)->gerror) & 1,
		  READ_ONCE(regs(e, 1)->gerrorn) & 1);
	EXPECT_EQ(READ_ONCE(svc->err_map[0]), 1u << 1);
	EXPECT_EQ(READ_ONCE(svc->err_seq), 1);
	EXPECT_TRUE(e->events & RING_VCMDQ_EV_ERROR);
	EXPECT_EQ(READ_ONCE(regs(e, 1)->status), SMMU_VCMDQ_STATUS_ENABLED);
	ASSERT_EQ(e->nlog[1], 2);
	EXPECT_FALSE(guest_sync_done(cons, last, 5));

	ASSERT_EQ(guest_isr(e), 1);
	ASSERT_OK(guest_wait_sync(e, 1, last));
	/* ERR cleared by the acknowledgement; map bit gone. */
	EXPECT_EQ(READ_ONCE(regs(e, 1)->cons), 5);
	EXPECT_EQ(READ_ONCE(svc->err_map[0]), 0);
	EXPECT_EQ(READ_ONCE(svc->err_seq), 1);
	ASSERT_EQ(e->nlog[1], 5);
	EXPECT_TRUE(!memcmp(&e->log[1][2], &c[4], 16)); /* the replacement */
	EXPECT_TRUE(!memcmp(&e->log[1][3], &c[3], 16));
	/* A second ISR run finds nothing to do (ERR = NONE). */
	EXPECT_EQ(guest_isr(e), 0);
}

TEST_F(vq, sync_with_completion_signal_is_ill)
{
	struct env *e = &self->e;
	struct smmu_ring_entry c[2] = { tlbi_va(1, 0),
					cmd(CMDQ_OP_SYNC | 1ULL << 12, 0) };
	uint32_t last;

	ASSERT_OK(guest_queue_init(e, 0, RAM_GPA, 4));
	ASSERT_OK(guest_submit(e, 0, c, 2, &last));
	service_pass(e);
	EXPECT_EQ(READ_ONCE(regs(e, 0)->cons), 1u | 1u << 24);
	ASSERT_EQ(guest_isr(e), 1);
	ASSERT_OK(guest_wait_sync(e, 0, last));
	EXPECT_EQ(READ_ONCE(regs(e, 0)->cons), 2);
}

/* An ILL behind entries in flight is published only once they complete. */
TEST_F(vq, ill_waits_for_inflight)
{
	struct env *e = &self->e;
	struct smmu_ring_entry c[4] = { tlbi_va(1, 0), tlbi_va(1, 0x1000),
					cmd(0x99, 0), sync_none() };
	struct ring_vcmdq_span sp;
	uint32_t last;

	ASSERT_OK(guest_queue_init(e, 0, RAM_GPA, 4));
	e->defer = true;
	ASSERT_OK(guest_submit(e, 0, c, 4, &last));
	service_pass(e);
	sp = e->last[0];
	EXPECT_EQ(sp.n, 2);
	EXPECT_EQ(ring_vcmdq_state(&e->v, 0), RING_VCMDQ_ON);
	EXPECT_EQ(READ_ONCE(regs(e, 0)->cons), 0);
	EXPECT_EQ(READ_ONCE(regs(e, 0)->gerror), 0);
	/* Completing more than fetched is refused; part of it is fine. */
	EXPECT_ERR(-EINVAL, ring_vcmdq_complete(&e->v, 0, sp.gen, 3));
	EXPECT_OK(ring_vcmdq_complete(&e->v, 0, sp.gen, 1));
	EXPECT_EQ(READ_ONCE(regs(e, 0)->cons), 1);
	EXPECT_OK(ring_vcmdq_complete(&e->v, 0, sp.gen, 2));
	EXPECT_EQ(READ_ONCE(regs(e, 0)->cons), 2u | 1u << 24);
	EXPECT_EQ(ring_vcmdq_state(&e->v, 0), RING_VCMDQ_HALTED);
	EXPECT_ERR(-ESTALE, ring_vcmdq_complete(&e->v, 0, sp.gen, 2));
	e->defer = false;
	ASSERT_EQ(guest_isr(e), 1);
	ASSERT_OK(guest_wait_sync(e, 0, last));
}

/* Errors found after the fetch: backend failure, ATC timeout. */
TEST_F(vq, late_halts)
{
	struct env *e = &self->e;
	struct smmu_ring_entry c[4] = { tlbi_va(1, 0), tlbi_va(1, 0x1000),
					tlbi_va(1, 0x2000), sync_none() };
	struct ring_vcmdq_span sp;
	uint32_t last;

	ASSERT_OK(guest_queue_init(e, 0, RAM_GPA, 4));
	e->defer = true;
	ASSERT_OK(guest_submit(e, 0, c, 4, &last));
	service_pass(e);
	sp = e->last[0];
	ASSERT_EQ(sp.n, 4);
	EXPECT_ERR(-EINVAL, ring_vcmdq_halt(&e->v, 0, sp.gen, 4, 1));
	EXPECT_ERR(-EINVAL, ring_vcmdq_halt(&e->v, 0, sp.gen, 1, 0));
	EXPECT_ERR(-EINVAL, ring_vcmdq_halt(&e->v, 0, sp.gen, 1, 4));
	EXPECT_ERR(-ESTALE, ring_vcmdq_halt(&e->v, 0, sp.gen + 1, 1, 1));
	/* Backend failed command 2; then (later) an earlier one, 1: wins. */
	EXPECT_OK(ring_vcmdq_halt(&e->v, 0, sp.gen, 2, SMMU_VCMDQ_CERROR_ILL));
	EXPECT_OK(ring_vcmdq_halt(&e->v, 0, sp.gen, 1,
				  SMMU_VCMDQ_CERROR_ATC_INV_SYNC));
	EXPECT_OK(ring_vcmdq_halt(&e->v, 0, sp.gen, 3,
				  SMMU_VCMDQ_CERROR_ILL)); /* after: ignored */
	EXPECT_EQ(READ_ONCE(regs(e, 0)->cons), 0);
	/* The whole batch completes on the host: clamped to the halt. */
	EXPECT_OK(ring_vcmdq_complete(&e->v, 0, sp.gen, 4));
	EXPECT_EQ(READ_ONCE(regs(e, 0)->cons),
		  1u | SMMU_VCMDQ_CERROR_ATC_INV_SYNC << 24);
	/* ATC_INV_SYNC: the skip routine changes nothing, acks; retried. */
	e->defer = false;
	e->nlog[0] = 0;
	ASSERT_EQ(guest_isr(e), 1);
	ASSERT_OK(guest_wait_sync(e, 0, last));
	ASSERT_EQ(e->nlog[0], 3);
	EXPECT_TRUE(!memcmp(e->log[0], &c[1], 3 * 16));
}

/*
 * Entries given back (ring_vcmdq_rewind()) are fetched again, and a halt
 * pending among them is dropped with them: the ILL at index 2 is found
 * again when index 2 is fetched again, not left blocking index 0..1.
 */
TEST_F(vq, rewind_gives_back_and_refetches)
{
	struct env *e = &self->e;
	struct smmu_ring_entry c[4] = { tlbi_va(1, 0), tlbi_va(1, 0x1000),
					cmd(0x99, 0), sync_none() };
	struct ring_vcmdq_span sp;
	uint32_t last;

	ASSERT_OK(guest_queue_init(e, 0, RAM_GPA, 4));
	e->defer = true;
	ASSERT_OK(guest_submit(e, 0, c, 4, &last));
	service_pass(e);
	sp = e->last[0];
	ASSERT_EQ(sp.n, 2); /* the ILL at 2 is pending */
	EXPECT_ERR(-EINVAL, ring_vcmdq_rewind(&e->v, 0, sp.gen, 3));
	EXPECT_ERR(-ESTALE, ring_vcmdq_rewind(&e->v, 0, sp.gen + 1, 0));
	EXPECT_ERR(-EINVAL, ring_vcmdq_rewind(&e->v, 3, sp.gen, 0));
	/* Give back 1..: 0 completes, no halt is published at 2 yet. */
	ASSERT_OK(ring_vcmdq_rewind(&e->v, 0, sp.gen, 1));
	EXPECT_OK(ring_vcmdq_complete(&e->v, 0, sp.gen, 1));
	EXPECT_EQ(READ_ONCE(regs(e, 0)->cons), 1);
	EXPECT_EQ(ring_vcmdq_state(&e->v, 0), RING_VCMDQ_ON);
	/* Fetched again from 1: 1 again, then the ILL at 2 again. */
	service_pass(e);
	sp = e->last[0];
	EXPECT_EQ(sp.first, 1);
	EXPECT_EQ(sp.n, 1);
	EXPECT_OK(ring_vcmdq_complete(&e->v, 0, sp.gen, 2));
	EXPECT_EQ(READ_ONCE(regs(e, 0)->cons), 2u | 1u << 24);
	EXPECT_EQ(ring_vcmdq_state(&e->v, 0), RING_VCMDQ_HALTED);
	e->defer = false;
	ASSERT_EQ(guest_isr(e), 1);
	ASSERT_OK(guest_wait_sync(e, 0, last));
}

/*
 * Completions of work fetched before a halt must not complete what is
 * fetched again after the acknowledgement.
 */
TEST_F(vq, stale_completion_after_resume)
{
	struct env *e = &self->e;
	struct smmu_ring_entry c[4] = { tlbi_va(1, 0), tlbi_va(1, 0x1000),
					tlbi_va(1, 0x2000), sync_none() };
	struct ring_vcmdq_span old;
	uint32_t last;

	ASSERT_OK(guest_queue_init(e, 0, RAM_GPA, 4));
	e->defer = true;
	ASSERT_OK(guest_submit(e, 0, c, 4, &last));
	service_pass(e);
	old = e->last[0];
	ASSERT_EQ(old.n, 4);
	/* Command 1 failed on the host; command 0 completed. */
	ASSERT_OK(ring_vcmdq_halt(&e->v, 0, old.gen, 1, SMMU_VCMDQ_CERROR_ILL));
	ASSERT_OK(ring_vcmdq_complete(&e->v, 0, old.gen, 1));
	EXPECT_EQ(READ_ONCE(regs(e, 0)->cons), 1u | 1u << 24);
	ASSERT_EQ(guest_isr(e), 1); /* replaces command 1 with a SYNC */
	service_pass(e); /* resumes, fetches 1..3 again, not completed */
	EXPECT_EQ(ring_vcmdq_state(&e->v, 0), RING_VCMDQ_ON);
	EXPECT_EQ(ring_vcmdq_inflight(&e->v, 0), 3);
	EXPECT_NE(e->last[0].gen, old.gen);
	/* The old batch's completion arrives late: ignored. */
	EXPECT_ERR(-ESTALE, ring_vcmdq_complete(&e->v, 0, old.gen, 4));
	EXPECT_ERR(-ESTALE, ring_vcmdq_halt(&e->v, 0, old.gen, 2, 1));
	EXPECT_EQ(READ_ONCE(regs(e, 0)->cons), 1);
	EXPECT_OK(ring_vcmdq_complete(&e->v, 0, e->last[0].gen, 4));
	EXPECT_TRUE(guest_sync_done(READ_ONCE(regs(e, 0)->cons), last, 4));
}

/* PROD garbage: ABT at CONS, halting only this queue. */
TEST_F(vq, bad_prod_is_abt)
{
	struct env *e = &self->e;
	struct smmu_ring_entry c[2] = { tlbi_va(3, 0), sync_none() };
	static const uint32_t bad[] = { 1u << 5 | 1, 0x80000001, 17, 22 };
	uint32_t last, ok_last;

	ASSERT_OK(guest_queue_init(e, 0, RAM_GPA, 4)); /* 16 entries */
	ASSERT_OK(guest_queue_init(e, 1, RAM_GPA + 0x1000, 4));
	ASSERT_OK(guest_submit(e, 0, c, 2, &last));
	ASSERT_OK(guest_wait_sync(e, 0, last));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint32_t gerror = READ_ONCE(regs(e, 0)->gerror);

		/* Bits above the wrap bit; ERR-field games; a legal value
		 * over unwritten slots; 20 ahead of CONS 2 in a 16-entry
		 * queue. */
		WRITE_ONCE(regs(e, 0)->prod, bad[i]);
		service_pass(e);
		if (bad[i] == 17) {
			/* 17 = wrap|1: 15 entries ahead of cons 2: legal,
			 * but it claims slots the guest never wrote... they
			 * hold zeros: opcode 0 is ILL at cons. */
			EXPECT_EQ(READ_ONCE(regs(e, 0)->cons) >> 24,
				  SMMU_VCMDQ_CERROR_ILL);
		} else {
			EXPECT_EQ(READ_ONCE(regs(e, 0)->cons),
				  2u | SMMU_VCMDQ_CERROR_ABT << 24);
		}
		EXPECT_NE(READ_ONCE(regs(e, 0)->gerror), gerror);
		EXPECT_EQ(ring_vcmdq_state(&e->v, 0), RING_VCMDQ_HALTED);
		/* The other queue still works. */
		ASSERT_OK(guest_submit(e, 1, c, 2, &ok_last));
		ASSERT_OK(guest_wait_sync(e, 1, ok_last));
		/* The guest fixes PROD and acks (ILL: it also rewrites). */
		WRITE_ONCE(regs(e, 0)->prod, 2);
		guest_isr(e);
		service_pass(e);
		EXPECT_EQ(ring_vcmdq_state(&e->v, 0), RING_VCMDQ_ON);
		EXPECT_EQ(READ_ONCE(regs(e, 0)->cons), 2);
	}
	/* PROD behind what was fetched: ABT. */
	e->defer = true;
	ASSERT_OK(guest_submit(e, 0, c, 2, &last));
	service_pass(e);
	EXPECT_EQ(ring_vcmdq_inflight(&e->v, 0), 2);
	WRITE_ONCE(regs(e, 0)->prod, 3);
	service_pass(e);
	EXPECT_EQ(READ_ONCE(regs(e, 0)->cons),
		  2u | SMMU_VCMDQ_CERROR_ABT << 24);
	EXPECT_ERR(-ESTALE, ring_vcmdq_complete(&e->v, 0, e->last[0].gen, 4));
	e->defer = false;
	WRITE_ONCE(regs(e, 0)->prod, 4);
	guest_isr(e);
	ASSERT_OK(guest_wait_sync(e, 0, last));
}

/* Enable failures: CMDQ_INIT_ERR, STATUS stays 0; a later good BASE works. */
TEST_F(vq, enable_failures_init_err)
{
	struct env *e = &self->e;
	struct smmu_vcmdq_regs *r = regs(e, 0);
	const uint64_t bad[] = {
		smmu_vcmdq_base(0x1000, 4), /* not guest RAM */
		smmu_vcmdq_base(RAM_GPA + (8ULL << 20), 19), /* straddles */
		smmu_vcmdq_base(RAM_GPA + RAM_TOTAL, 4), /* past the end */
		smmu_vcmdq_base(RAM_GPA - 0x100, 4), /* just before */
		smmu_vcmdq_base(RAM_GPA + 0x100, 5), /* misaligned */
		smmu_vcmdq_base(RAM_GPA, 20), /* too large */
		smmu_vcmdq_base(RAM_GPA, 4) | 1ULL << 48, /* reserved bit */
	};
	uint32_t gerror = 0;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ring_vcmdq_set_base(&e->v, 0, bad[i]);
		WRITE_ONCE(r->config, SMMU_VCMDQ_CONFIG_EN);
		for (int k = 0; k < 3; k++)
			service_pass(e);
		EXPECT_EQ(READ_ONCE(r->status), 0);
		EXPECT_EQ(ring_vcmdq_state(&e->v, 0), RING_VCMDQ_OFF);
		/* Toggled once, not once per pass. */
		gerror ^= SMMU_VCMDQ_GERROR_CMDQ_INIT_ERR;
		EXPECT_EQ(READ_ONCE(r->gerror), gerror);
		/* The guest acks and retries (EN 0, EN 1). */
		WRITE_ONCE(r->gerrorn, gerror);
		WRITE_ONCE(r->config, 0);
		service_pass(e);
	}
	/* No BASE at all. */
	ring_vcmdq_unmap(&e->v);
	ASSERT_OK(ring_vcmdq_map(e->page_fd, 2, &e->g, &e->v));
	ring_vcmdq_set_ready(&e->v, 0, true);
	WRITE_ONCE(r->config, SMMU_VCMDQ_CONFIG_EN);
	service_pass(e);
	EXPECT_EQ(READ_ONCE(r->status), 0);
	EXPECT_NE(READ_ONCE(r->gerror), gerror);
	/* The VMM's gate closed: no attempt, no error. */
	gerror = READ_ONCE(r->gerror);
	WRITE_ONCE(r->gerrorn, gerror);
	ring_vcmdq_set_ready(&e->v, 0, false);
	ring_vcmdq_set_base(&e->v, 0, smmu_vcmdq_base(RAM_GPA, 4));
	service_pass(e);
	EXPECT_EQ(READ_ONCE(r->status), 0);
	EXPECT_EQ(READ_ONCE(r->gerror), gerror);
	/* Gate opens with EN still 1: enabled (as QEMU retries). */
	ring_vcmdq_set_ready(&e->v, 0, true);
	service_pass(e);
	EXPECT_EQ(READ_ONCE(r->status), SMMU_VCMDQ_STATUS_ENABLED);
	/* The Linux sequence works after all that. */
	ASSERT_OK(guest_queue_init(e, 0, RAM_GPA + RAM_A, 4));
}

/* EN 0 with work in flight: STATUS 1 until it drains; nothing reset. */
TEST_F(vq, disable_drains_and_keeps_registers)
{
	struct env *e = &self->e;
	struct smmu_vcmdq_regs *r = regs(e, 0);
	struct smmu_ring_entry c[3] = { tlbi_va(1, 0), tlbi_va(1, 0x1000),
					sync_none() };
	struct ring_vcmdq_span sp;
	uint32_t last;

	ASSERT_OK(guest_queue_init(e, 0, RAM_GPA, 4));
	e->defer = true;
	ASSERT_OK(guest_submit(e, 0, c, 3, &last));
	service_pass(e);
	sp = e->last[0];
	WRITE_ONCE(r->config, 0);
	service_pass(e);
	EXPECT_EQ(ring_vcmdq_state(&e->v, 0), RING_VCMDQ_DRAINING);
	EXPECT_EQ(READ_ONCE(r->status), SMMU_VCMDQ_STATUS_ENABLED);
	EXPECT_OK(ring_vcmdq_complete(&e->v, 0, sp.gen, sp.first + 1));
	EXPECT_EQ(READ_ONCE(r->status), SMMU_VCMDQ_STATUS_ENABLED);
	EXPECT_OK(ring_vcmdq_complete(&e->v, 0, sp.gen, sp.first + 3));
	EXPECT_EQ(READ_ONCE(r->status), 0);
	EXPECT_EQ(ring_vcmdq_state(&e->v, 0), RING_VCMDQ_OFF);
	EXPECT_EQ(READ_ONCE(r->cons), 3);
	EXPECT_EQ(READ_ONCE(r->prod), 3);
	EXPECT_ERR(-ESTALE, ring_vcmdq_complete(&e->v, 0, sp.gen, 3));

	/* Re-enable without the driver's reset: continues at CONS 3. */
	e->defer = false;
	WRITE_ONCE(r->config, SMMU_VCMDQ_CONFIG_EN);
	service_pass(e);
	EXPECT_EQ(READ_ONCE(r->status), SMMU_VCMDQ_STATUS_ENABLED);
	e->prod[0] = 3;
	ASSERT_OK(guest_submit(e, 0, c, 3, &last));
	ASSERT_OK(guest_wait_sync(e, 0, last));
	EXPECT_EQ(READ_ONCE(r->cons), 6);

	/* Gate closes while enabled: off at once, STATUS 0. */
	ring_vcmdq_set_ready(&e->v, 0, false);
	EXPECT_EQ(READ_ONCE(r->status), 0);
	EXPECT_EQ(READ_ONCE(r->cons), 6);
}

/* GERRORN written ahead of an error: GERROR is not toggled, still halts. */
TEST_F(vq, gerrorn_games)
{
	struct env *e = &self->e;
	struct smmu_vcmdq_regs *r = regs(e, 0);
	struct smmu_ring_entry c[2] = { cmd(0x03, 0), sync_none() };
	uint32_t last;

	ASSERT_OK(guest_queue_init(e, 0, RAM_GPA, 4));
	/* Spam while running: nothing happens. */
	for (uint32_t i = 0; i < 50; i++) {
		WRITE_ONCE(r->gerrorn, i * 0x9e3779b9u);
		service_pass(e);
		EXPECT_EQ(ring_vcmdq_state(&e->v, 0), RING_VCMDQ_ON);
	}
	WRITE_ONCE(r->gerrorn, SMMU_VCMDQ_GERROR_CMDQ_ERR); /* pre-toggled */
	ASSERT_OK(guest_submit(e, 0, c, 2, &last));
	service_pass(e);
	EXPECT_EQ(READ_ONCE(r->gerror), 0); /* already "active" */
	EXPECT_EQ(ring_vcmdq_state(&e->v, 0), RING_VCMDQ_HALTED);
	/* Values that keep bit0 different do not resume. */
	for (uint32_t i = 0; i < 50; i++) {
		WRITE_ONCE(r->gerrorn, (i << 1) | 1);
		service_pass(e);
		ASSERT_EQ(ring_vcmdq_state(&e->v, 0), RING_VCMDQ_HALTED);
	}
	ASSERT_EQ(guest_isr(e), 1);
	ASSERT_OK(guest_wait_sync(e, 0, last));
}

/* STATUS, GERROR and CONS are read-only on hardware: stores are undone. */
TEST_F(vq, owned_registers_repaired)
{
	struct env *e = &self->e;
	struct smmu_vcmdq_regs *r = regs(e, 0);
	struct smmu_ring_entry c[2] = { tlbi_va(1, 0), sync_none() };
	uint32_t last;

	ASSERT_OK(guest_queue_init(e, 0, RAM_GPA, 4));
	ASSERT_OK(guest_submit(e, 0, c, 2, &last));
	ASSERT_OK(guest_wait_sync(e, 0, last));
	WRITE_ONCE(r->status, 0x6aed7b48);
	WRITE_ONCE(r->gerror, 0xffffffff);
	WRITE_ONCE(r->cons, 0x7f000009);
	service_pass(e);
	EXPECT_EQ(READ_ONCE(r->status), SMMU_VCMDQ_STATUS_ENABLED);
	EXPECT_EQ(READ_ONCE(r->gerror), 0);
	EXPECT_EQ(READ_ONCE(r->cons), 2);
	/* OFF: STATUS is repaired, CONS is the guest's to reset. */
	ASSERT_OK(guest_config(e, 0, 0));
	WRITE_ONCE(r->status, 1);
	WRITE_ONCE(r->cons, 0);
	service_pass(e);
	EXPECT_EQ(READ_ONCE(r->status), 0);
	EXPECT_EQ(READ_ONCE(r->cons), 0);
}

/* A service restart: the page is attached again. */
TEST_F(vq, reattach_continues)
{
	struct env *e = &self->e;
	struct smmu_ring_entry c[3] = { tlbi_va(1, 0), cmd(0x30, 0),
					sync_none() };
	uint32_t last;

	ASSERT_OK(guest_queue_init(e, 0, RAM_GPA, 4));
	ASSERT_OK(guest_queue_init(e, 1, RAM_GPA + 0x1000, 4));
	ASSERT_OK(guest_submit(e, 0, c, 3, &last));
	service_pass(e); /* queue 0 halts at 1 */
	ASSERT_OK(guest_submit(e, 1, c, 1, &last));
	/* Died before fetching queue 1's entry; a new instance attaches. */
	ring_vcmdq_unmap(&e->v);
	ASSERT_OK(ring_vcmdq_map(e->page_fd, 2, &e->g, &e->v));
	EXPECT_EQ(READ_ONCE(smmu_vcmdq_svc(e->page)->err_map[0]), 1);
	for (unsigned int l = 0; l < 2; l++) {
		ring_vcmdq_set_base(&e->v, l, smmu_vcmdq_base(e->qgpa[l], 4));
		ring_vcmdq_set_ready(&e->v, l, true);
	}
	service_pass(e);
	EXPECT_EQ(ring_vcmdq_state(&e->v, 0), RING_VCMDQ_HALTED);
	EXPECT_EQ(READ_ONCE(regs(e, 0)->cons), 1u | 1u << 24);
	EXPECT_EQ(READ_ONCE(regs(e, 1)->cons), 1);
	ASSERT_EQ(guest_isr(e), 1);
	ASSERT_OK(guest_wait_sync(e, 0, 2));
}

/*
 * Hostile guest on queue 0 (random stores to every register and to its
 * queue, BASE changes through the VMM) while a correct guest drives queue
 * 1 of the same page. Queue 1 must deliver every command; queue 0 must
 * keep its invariants and only ever fetch accepted opcodes.
 */
TEST_F(vq, hostile_scribbler)
{
	struct env *e = &self->e;
	uint64_t rs = t_seed() ^ 0x7e57ULL;
	uint32_t sent = 0;
	uint32_t *w0 = (uint32_t *)regs(e, 0);

	ASSERT_OK(guest_queue_init(e, 0, RAM_GPA, 5));
	ASSERT_OK(guest_queue_init(e, 1, RAM_GPA + 0x8000, 6));
	for (int step = 0; step < 20000; step++) {
		uint64_t x = t_rand(&rs);
		uint32_t val = (uint32_t)(x >> 32);
		struct ring_vcmdq_q *q = &e->v.q[0];

		switch (x % 8) {
		case 0: /* any register word of queue 0 (and beyond) */
			WRITE_ONCE(w0[(x >> 8) % 32], val);
			break;
		case 1: /* PROD near cons, the likely-legal kind */
			WRITE_ONCE(regs(e, 0)->prod,
				   (READ_ONCE(regs(e, 0)->cons) + (val % 40)) &
					   (val & 1 ? 63 : 0xffffffff));
			break;
		case 2: /* entries: random or accepted */
			gq(e, 0)[(x >> 8) % 32] = val & 1 ? cmd(x, val) :
							    tlbi_va(1, val);
			break;
		case 3:
			WRITE_ONCE(regs(e, 0)->config, val & 3);
			break;
		case 4: /* GERRORN: spam or a real ack */
			WRITE_ONCE(regs(e, 0)->gerrorn,
				   val & 1 ? READ_ONCE(regs(e, 0)->gerror) :
					     val);
			break;
		case 5: /* the VMM forwards a BASE write */
			ring_vcmdq_set_base(
				&e->v, 0,
				val & 1 ? smmu_vcmdq_base(RAM_GPA + ((x >> 8) &
								     0xfff000),
							  (val >> 1) % 21) :
					  x);
			break;
		case 6:
			e->budget = 1 + val % 20;
			break;
		default: /* queue 1: a correct guest */
			ASSERT_OK(guest_round(e, 1, 9, 0x1000ULL * (sent + 1)));
			sent += 4;
			break;
		}
		service_pass(e);
		/* Queue 0's private state stays inside its queue. */
		if (q->state != RING_VCMDQ_OFF) {
			ASSERT_TRUE(q->ents != NULL);
			ASSERT_LE(q->fetch - q->cons, q->size);
			ASSERT_LE(q->prod - q->cons, q->size);
			ASSERT_LE(q->fetch - q->cons, q->prod - q->cons);
		}
		if (q->state == RING_VCMDQ_HALTED)
			ASSERT_TRUE(e->v.err_map[0] & 1);
	}
	ASSERT_EQ(e->nlog[1], sent);
	for (uint32_t i = 0; i < e->nlog[0]; i++)
		ASSERT_TRUE(
			ring_vcmdq_cmd_allowed(le64toh(e->log[0][i].le[0])));
	EXPECT_EQ(ring_vcmdq_state(&e->v, 1), RING_VCMDQ_ON);
}

TEST_HARNESS_MAIN
