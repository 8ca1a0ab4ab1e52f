/* SPDX-License-Identifier: MIT */
/*
 * core: backend errors end to end, on the sim backend with fault
 * injection: where a ring halts and with which error, what completes
 * before it, that a timeout is not issued twice, that every other ring of
 * the vSMMU goes on (several rings per vSMMU, each event loop and issue
 * mode), and that one ring memfd cannot be attached twice.
 *
 * Interleavings are arranged with the sim's hold hook (a batch is kept in
 * flight until the test has seen the state it wants), never with sleeps;
 * the waits' deadlines are only a backstop against a hang.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <smmu-offload/ring-prod.h>

#include "cmdq/cmdq.h"
#include "core/core.h"
#include "core/core_test.h"
#include "core/core_i.h"
#include "iommufd/sim.h"
#include "tests/lib/tlib-core.h"

/* Backstop only: a correct run completes in milliseconds. */
#define WAIT_MS 10000

/*
 * The sim's hold hook: the first invalidation after arm() blocks until
 * release(), so its batch stays in flight meanwhile.
 */
struct gate {
	sem_t entered, go;
	unsigned int armed; /* atomic */
};

static void gate_hook(void *arg)
{
	struct gate *g = arg;

	if (!__atomic_exchange_n(&g->armed, 0, __ATOMIC_ACQ_REL))
		return;
	sem_post(&g->entered);
	while (sem_wait(&g->go) < 0 && errno == EINTR)
		;
}

static void gate_init(struct gate *g)
{
	sem_init(&g->entered, 0, 0);
	sem_init(&g->go, 0, 0);
	__atomic_store_n(&g->armed, 1, __ATOMIC_RELEASE);
}

static void gate_wait_entered(struct gate *g)
{
	ASSERT_OK(tlib_sem_wait(&g->entered, WAIT_MS));
}

static uint32_t push_sync(struct tlib_ring *r)
{
	return tlib_ring_push(r, cmdq_build_sync(0, 3, 0xf, 0, 0));
}

static void sync_wait(struct tlib_ring *r, uint32_t idx)
{
	ASSERT_OK(ring_prod_wait(&r->p, idx, 20000, WAIT_MS));
}

/* The ring halts before @idx completes; returns err, sets *where. */
static uint32_t halt_wait(struct tlib_ring *r, uint32_t idx, uint32_t *where)
{
	uint32_t err = 0;

	ASSERT_ERR(-EPIPE, ring_prod_wait(&r->p, idx, 20000, WAIT_MS));
	ASSERT_OK(ring_prod_halt_info(&r->p, &err, where));
	return err;
}

static uint64_t ring_entries(struct core_service *svc, uint32_t id)
{
	struct core_ring_stats rs;

	ASSERT_OK(core_ring_stats(svc, id, &rs));
	return rs.entries;
}

/*
 * Until the worker has taken @n entries of @r in total and then let the
 * ring go idle (NEED_WAKEUP: from now on only a doorbell wakes it).
 */
static void wait_taken_idle(struct core_service *svc, struct tlib_ring *r,
			    uint64_t n)
{
	struct timespec ts = { 0, 100000 };

	for (int i = 0; i < WAIT_MS * 10; i++) {
		uint32_t f =
			__atomic_load_n(&r->p.hdr->svc_flags, __ATOMIC_ACQUIRE);

		if (ring_entries(svc, r->id) == n && f & SMMU_RING_NEED_WAKEUP)
			return;
		nanosleep(&ts, NULL);
	}
	ASSERT_TRUE(!"the worker never took the entries and went idle");
}

/* ---- a rewound ring is polled again ---------------------------------- */

/*
 * Ring A's batch is in flight (held); rings B and C of the same vSMMU
 * publish, their entries go into the open batch (async: the worker is
 * free) and they go idle. A's batch then times out: the open batch is
 * given back, and B and C must be polled again although their VMMs ring
 * no doorbell.
 */
static void run_rewound_open(const struct tlib_variant *v)
{
	struct iofd_sim_config sim;
	struct core_service *svc;
	struct tlib_ring a, b, c;
	struct gate g;
	uint32_t vs, a0, as, bs, cs, err, where = 0;
	bool async = v->mode == CORE_ISSUE_ASYNC;

	tlib_sim_fail(&sim, 1, ETIMEDOUT);
	sim.hold = gate_hook;
	sim.hold_arg = &g;
	gate_init(&g);
	/* poll_us 0: a ring with nothing to do goes idle at once. */
	svc = tlib_svc_variant(v, 1, &sim, 0);
	vs = tlib_vsmmu_new(svc, "smmu0");
	tlib_core_ring(svc, vs, &a, 7);
	tlib_core_ring(svc, vs, &b, 7);
	tlib_core_ring(svc, vs, &c, 7);

	a0 = tlib_ring_push(&a, cmdq_build_tlbi_nh_asid(1, 0));
	as = push_sync(&a);
	ASSERT_OK(ring_prod_publish(&a.p));
	gate_wait_entered(&g);

	tlib_ring_push(&b, cmdq_build_tlbi_nh_asid(2, 0));
	bs = push_sync(&b);
	ASSERT_OK(ring_prod_publish(&b.p));
	tlib_ring_push(&c, cmdq_build_tlbi_nh_asid(3, 0));
	cs = push_sync(&c);
	ASSERT_OK(ring_prod_publish(&c.p));
	/* Inline: the worker itself is held; B and C wait in their rings. */
	if (async) {
		wait_taken_idle(svc, &b, 2);
		wait_taken_idle(svc, &c, 2);
	}
	sem_post(&g.go);

	err = halt_wait(&a, as, &where);
	EXPECT_EQ(err, SMMU_RING_ERR_BACKEND);
	EXPECT_EQ(where, a0);
	sync_wait(&b, bs);
	sync_wait(&c, cs);
	/* Async: their entries were given back and taken again. */
	EXPECT_EQ(ring_entries(svc, b.id), async ? 4u : 2u);
	EXPECT_EQ(ring_entries(svc, c.id), async ? 4u : 2u);

	tlib_ring_free(&a);
	tlib_ring_free(&b);
	tlib_ring_free(&c);
	core_service_free(svc);
	sem_destroy(&g.entered);
	sem_destroy(&g.go);
}

TLIB_TEST_VARIANTS(rewound_open)

/*
 * The same for a ring whose entries are in the failing batch itself,
 * behind the culprit: A1 is in flight (held); A2 (the culprit) and then B
 * go into the open batch, B goes idle; A1 completes, the batch [A2, B]
 * times out at A2 and B's part is given back.
 */
static void run_rewound_inflight(const struct tlib_variant *v)
{
	struct iofd_sim_config sim;
	struct core_service *svc;
	struct core_vsmmu_stats st;
	struct tlib_ring a, b;
	struct gate g;
	uint32_t vs, a1s, a2, a2s, bs, err, where = 0;
	bool async = v->mode == CORE_ISSUE_ASYNC;

	tlib_sim_fail(&sim, 2, ETIMEDOUT); /* A2's command */
	sim.hold = gate_hook;
	sim.hold_arg = &g;
	gate_init(&g);
	svc = tlib_svc_variant(v, 1, &sim, 0);
	vs = tlib_vsmmu_new(svc, "smmu0");
	tlib_core_ring(svc, vs, &a, 7);
	tlib_core_ring(svc, vs, &b, 7);

	tlib_ring_push(&a, cmdq_build_tlbi_nh_asid(1, 0));
	a1s = push_sync(&a);
	ASSERT_OK(ring_prod_publish(&a.p));
	gate_wait_entered(&g);

	a2 = tlib_ring_push(&a, cmdq_build_tlbi_nh_asid(3, 0));
	a2s = push_sync(&a);
	ASSERT_OK(ring_prod_publish(&a.p));
	if (async)
		wait_taken_idle(svc, &a, 4);
	/* Inline never puts two rings in one batch (each is issued as it
	 * is taken): B publishes after A2 failed, which only checks that B
	 * is unaffected. */
	if (!async) {
		sem_post(&g.go);
		ASSERT_ERR(-EPIPE, ring_prod_wait(&a.p, a2s, 20000, WAIT_MS));
	}
	tlib_ring_push(&b, cmdq_build_tlbi_nh_asid(2, 0));
	bs = push_sync(&b);
	ASSERT_OK(ring_prod_publish(&b.p));
	if (async) {
		wait_taken_idle(svc, &b, 2);
		sem_post(&g.go);
	}

	sync_wait(&a, a1s);
	err = halt_wait(&a, a2s, &where);
	EXPECT_EQ(err, SMMU_RING_ERR_BACKEND);
	EXPECT_EQ(where, a2);
	sync_wait(&b, bs);
	EXPECT_EQ(ring_entries(svc, b.id), async ? 4u : 2u);
	ASSERT_OK(core_vsmmu_stats(svc, vs, &st));
	EXPECT_EQ(st.backend_errors, 1);

	tlib_ring_free(&a);
	tlib_ring_free(&b);
	core_service_free(svc);
	sem_destroy(&g.entered);
	sem_destroy(&g.go);
}

TLIB_TEST_VARIANTS(rewound_inflight)

/* ---- timeouts ---------------------------------------------------------- */

/*
 * An ATC invalidation whose host sync times out halts the ring at the
 * guest CMD_SYNC that follows it (SMMU_CMDQ_CONS.ERR = ATC_INV_SYNC points
 * at the CMD_SYNC): everything before the CMD_SYNC is consumed, an earlier
 * CMD_SYNC completed.
 */
static void run_atc_timeout_sync(const struct tlib_variant *v)
{
	struct iofd_sim_config sim;
	struct core_service *svc;
	struct core_vsmmu_stats st;
	struct tlib_ring r;
	uint32_t vs, vdev, s1, atc, s2, err, where = 0;

	tlib_sim_fail(&sim, 2, ETIMEDOUT);
	svc = tlib_svc_variant(v, 1, &sim, 50);
	vs = tlib_vsmmu_new(svc, "smmu0");
	ASSERT_OK(core_device_attach(svc, vs, 0x100, 0x8, &vdev));
	tlib_core_ring(svc, vs, &r, 7);

	tlib_ring_push(&r, cmdq_build_tlbi_nh_asid(1, 0));
	s1 = push_sync(&r);
	atc = tlib_ring_push(&r, cmdq_build_atc_inv(0x8, false, 0, false,
						    0x4000, 0));
	tlib_ring_push(&r, cmdq_build_cfgi_cd(0x8, 0, true));
	s2 = push_sync(&r);
	ASSERT_OK(ring_prod_publish(&r.p));

	err = halt_wait(&r, s2, &where);
	EXPECT_EQ(err, SMMU_RING_ERR_CERROR_ATC_INV_SYNC);
	EXPECT_EQ(where, s2);
	EXPECT_TRUE(ring_prod_done_upto(&r.p, s1));
	EXPECT_TRUE(ring_prod_done_upto(&r.p, atc + 1));
	EXPECT_FALSE(ring_prod_done_upto(&r.p, s2));
	ASSERT_OK(core_vsmmu_stats(svc, vs, &st));
	EXPECT_EQ(st.halts[2], 1);
	EXPECT_EQ(st.syncs, 1); /* s1; s2 did not complete */

	/* The guest retries the CMD_SYNC (Linux does): it completes. */
	ASSERT_OK(ring_prod_resume(&r.p));
	sync_wait(&r, s2);
	ASSERT_OK(core_vsmmu_stats(svc, vs, &st));
	EXPECT_EQ(st.syncs, 2);
	tlib_ring_free(&r);
	core_service_free(svc);
}

TLIB_TEST_VARIANTS(atc_timeout_sync)

/*
 * When the CMD_SYNC after the timed-out ATC_INV is not in the same host
 * call (here the ring budget, 64 entries, ends the batch before it), the
 * ring halts at its first command not known complete, and resuming
 * issues from there again.
 */
TEST(atc_timeout_sync_not_in_batch)
{
	struct iofd_sim_config sim;
	struct core_service *svc;
	struct tlib_ring r;
	uint32_t vs, vdev, first = 0, s, err, where = 0;

	tlib_sim_fail(&sim, 1, ETIMEDOUT);
	svc = tlib_svc_variant(&tlib_variants[1], 1, &sim, 50);
	vs = tlib_vsmmu_new(svc, "smmu0");
	ASSERT_OK(core_device_attach(svc, vs, 0x100, 0x8, &vdev));
	tlib_core_ring(svc, vs, &r, 7);
	for (uint32_t i = 0; i < CORE_DEFAULT_BUDGET; i++) {
		uint32_t idx = tlib_ring_push(
			&r, cmdq_build_atc_inv(0x8, false, 0, false,
					       (uint64_t)i << 12, 0));

		if (!i)
			first = idx;
	}
	s = push_sync(&r);
	ASSERT_OK(ring_prod_publish(&r.p));
	err = halt_wait(&r, s, &where);
	EXPECT_EQ(err, SMMU_RING_ERR_CERROR_ATC_INV_SYNC);
	EXPECT_EQ(where, first);
	ASSERT_OK(ring_prod_resume(&r.p));
	sync_wait(&r, s);
	tlib_ring_free(&r);
	core_service_free(svc);
}

/*
 * A coalesced batch whose host sync times out is not issued again: one
 * ioctl, one timeout for the guest. Nothing is known complete, the ring
 * halts at its first command (no ATC_INV: BACKEND).
 */
TEST(timeout_coalesced_not_reissued)
{
	struct iofd_sim_config sim;
	struct core_service *svc;
	struct core_vsmmu_stats st;
	struct iofd_counters c;
	struct tlib_ring r;
	uint32_t vs, first = 0, s, err, where = 0;

	tlib_sim_fail(&sim, 1, ETIMEDOUT);
	svc = tlib_svc_variant(&tlib_variants[1], 1, &sim, 50);
	vs = tlib_vsmmu_new(svc, "smmu0");
	tlib_core_ring(svc, vs, &r, 7);
	/* Twice the same command: coalesced into one. */
	first = tlib_ring_push(&r, cmdq_build_tlbi_nh_asid(1, 0));
	tlib_ring_push(&r, cmdq_build_tlbi_nh_asid(1, 0));
	s = push_sync(&r);
	ASSERT_OK(ring_prod_publish(&r.p));

	err = halt_wait(&r, s, &where);
	EXPECT_EQ(err, SMMU_RING_ERR_BACKEND);
	EXPECT_EQ(where, first);
	ASSERT_OK(core_vsmmu_stats(svc, vs, &st));
	EXPECT_EQ(st.cmds_issued, 1);
	EXPECT_EQ(st.ioctls, 1);
	iofd_viommu_counters(core_vsmmu_viommu(svc, vs), &c);
	EXPECT_EQ(c.ioctls, 1);
	EXPECT_EQ(c.host_syncs, 1);
	tlib_ring_free(&r);
	core_service_free(svc);
}

/* The same with an ATC_INV: the halt is at its CMD_SYNC. */
TEST(timeout_coalesced_atc_halts_at_sync)
{
	struct iofd_sim_config sim;
	struct core_service *svc;
	struct iofd_counters c;
	struct tlib_ring r;
	uint32_t vs, vdev, s, err, where = 0;

	tlib_sim_fail(&sim, 1, ETIMEDOUT);
	svc = tlib_svc_variant(&tlib_variants[0], 1, &sim, 50);
	vs = tlib_vsmmu_new(svc, "smmu0");
	ASSERT_OK(core_device_attach(svc, vs, 0x100, 0x8, &vdev));
	tlib_core_ring(svc, vs, &r, 7);
	tlib_ring_push(&r, cmdq_build_atc_inv(0x8, false, 0, false, 0x4000, 0));
	tlib_ring_push(&r, cmdq_build_atc_inv(0x8, false, 0, false, 0x4000, 0));
	s = push_sync(&r);
	ASSERT_OK(ring_prod_publish(&r.p));

	err = halt_wait(&r, s, &where);
	EXPECT_EQ(err, SMMU_RING_ERR_CERROR_ATC_INV_SYNC);
	EXPECT_EQ(where, s);
	iofd_viommu_counters(core_vsmmu_viommu(svc, vs), &c);
	EXPECT_EQ(c.ioctls, 1);
	tlib_ring_free(&r);
	core_service_free(svc);
}

/*
 * Uncoalesced, the timeout of the second host chunk is exact (the
 * kernel's entry_num for ETIMEDOUT: facts 4.2): the first chunk's
 * commands complete, the ring halts at the timed-out chunk's first one.
 */
TEST(timeout_second_chunk_exact)
{
	struct iofd_sim_config sim;
	struct core_service *svc;
	struct iofd_counters c;
	struct tlib_ring r;
	uint32_t vs, idx[70], s, err, where = 0;

	tlib_sim_fail(&sim, IOFD_HOST_CHUNK + 1, ETIMEDOUT);
	svc = tlib_svc_variant(&tlib_variants[1], 1, &sim, 50);
	vs = tlib_vsmmu_new(svc, "smmu0");
	tlib_core_ring(svc, vs, &r, 7);
	/* Distinct ASIDs: nothing to coalesce. */
	for (uint32_t i = 0; i < 70; i++)
		idx[i] = tlib_ring_push(
			&r, cmdq_build_tlbi_nh_asid((uint16_t)(i + 1), 0));
	s = push_sync(&r);
	ASSERT_OK(ring_prod_publish(&r.p));
	err = halt_wait(&r, s, &where);
	EXPECT_EQ(err, SMMU_RING_ERR_BACKEND);
	/* The first batch is the ring budget (64 entries): chunks of 63
	 * and 1; the second times out. */
	EXPECT_EQ(where, idx[IOFD_HOST_CHUNK]);
	EXPECT_TRUE(ring_prod_done_upto(&r.p, idx[IOFD_HOST_CHUNK - 1]));
	iofd_viommu_counters(core_vsmmu_viommu(svc, vs), &c);
	EXPECT_EQ(c.errors, 1);
	tlib_ring_free(&r);
	core_service_free(svc);
}

/* ---- the errno -> ring error mapping ----------------------------------- */

/* The backend says the vIOMMU is gone (ENOENT): DETACHED. */
TEST(backend_enoent_detached)
{
	struct iofd_sim_config sim;
	struct core_service *svc;
	struct core_vsmmu_stats st;
	struct tlib_ring r;
	uint32_t vs, first, s, err, where = 0;

	tlib_sim_fail(&sim, 1, ENOENT);
	svc = tlib_svc_variant(&tlib_variants[0], 1, &sim, 50);
	vs = tlib_vsmmu_new(svc, "smmu0");
	tlib_core_ring(svc, vs, &r, 7);
	first = tlib_ring_push(&r, cmdq_build_tlbi_nh_asid(1, 0));
	s = push_sync(&r);
	ASSERT_OK(ring_prod_publish(&r.p));
	err = halt_wait(&r, s, &where);
	EXPECT_EQ(err, SMMU_RING_ERR_DETACHED);
	EXPECT_EQ(where, first);
	ASSERT_OK(core_vsmmu_stats(svc, vs, &st));
	EXPECT_EQ(st.halts[3], 1);
	tlib_ring_free(&r);
	core_service_free(svc);
}

TEST(ring_err_mapping)
{
	EXPECT_EQ(core_ring_err(-EIO, false), SMMU_RING_ERR_CERROR_ILL);
	EXPECT_EQ(core_ring_err(-EIO, true), SMMU_RING_ERR_CERROR_ILL);
	EXPECT_EQ(core_ring_err(-ETIMEDOUT, true),
		  SMMU_RING_ERR_CERROR_ATC_INV_SYNC);
	EXPECT_EQ(core_ring_err(-ETIMEDOUT, false), SMMU_RING_ERR_BACKEND);
	EXPECT_EQ(core_ring_err(-ENOENT, false), SMMU_RING_ERR_DETACHED);
	EXPECT_EQ(core_ring_err(-EINVAL, false), SMMU_RING_ERR_BACKEND);
	EXPECT_EQ(core_ring_err(-ENOMEM, true), SMMU_RING_ERR_BACKEND);
}

/* ---- one memfd, one ring ----------------------------------------------- */

/*
 * The same ring memfd (or another fd of the same file) attached twice
 * would give one ring two consumers: refused, on the same vSMMU or any
 * other; after a detach the file may be attached again.
 */
TEST(memfd_attached_twice_refused)
{
	struct iofd_sim_config sim;
	struct core_service *svc;
	struct tlib_ring r;
	uint32_t vs, vs2, id = 0;
	char path[64];
	int fd2, fd3;

	tlib_sim_cfg(&sim);
	svc = tlib_svc_variant(&tlib_variants[1], 1, &sim, 50);
	vs = tlib_vsmmu_new(svc, "smmu0");
	vs2 = tlib_vsmmu_new(svc, "smmu0");
	tlib_core_ring(svc, vs, &r, 7);

	EXPECT_ERR(-EEXIST,
		   core_ring_attach(svc, vs, r.memfd, r.db, r.cq, &id));
	EXPECT_ERR(-EEXIST,
		   core_ring_attach(svc, vs2, r.memfd, r.db, r.cq, &id));
	fd2 = dup(r.memfd);
	ASSERT_GE(fd2, 0);
	EXPECT_ERR(-EEXIST, core_ring_attach(svc, vs, fd2, r.db, r.cq, &id));
	/* A new open file description of the same memfd. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", r.memfd);
	fd3 = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_GE(fd3, 0);
	EXPECT_ERR(-EEXIST, core_ring_attach(svc, vs2, fd3, r.db, r.cq, &id));

	/* The ring still works, and once detached the file is free. */
	sync_wait(&r, push_sync(&r));
	ASSERT_OK(core_ring_detach(svc, r.id));
	ASSERT_OK(core_ring_attach(svc, vs2, fd3, r.db, r.cq, &r.id));
	sync_wait(&r, push_sync(&r));

	close(fd2);
	close(fd3);
	tlib_ring_free(&r);
	core_service_free(svc);
}

/* ---- group commit: the worker drains while an ioctl is in flight ---- */

/*
 * Async: vSMMU X's first batch is held in its issuer. Meanwhile X's ring
 * gets ten guest SYNC groups, each its own publish as vCPUs do, and vSMMU
 * Y's ring one: Y's completes while X's batch is still held (the worker
 * keeps serving every ring), and all of X's entries are taken into X's
 * open batch before the release. Released, they go out as one ioctl: two
 * in all for eleven guest SYNCs.
 */
static void run_group_commit_held(const struct tlib_variant *v)
{
	struct iofd_sim_config sim;
	struct core_service *svc;
	struct core_vsmmu_stats st0, st;
	struct tlib_ring a, b;
	struct gate g;
	uint32_t x, y, first, last = 0, bs;

	tlib_sim_cfg(&sim);
	sim.hold = gate_hook;
	sim.hold_arg = &g;
	gate_init(&g);
	svc = tlib_svc_variant(v, 1, &sim, 0);
	x = tlib_vsmmu_new(svc, "smmu0");
	y = tlib_vsmmu_new(svc, "smmu0");
	tlib_core_ring(svc, x, &a, 7);
	tlib_core_ring(svc, y, &b, 7);
	ASSERT_OK(core_vsmmu_stats(svc, x, &st0));

	tlib_ring_push(&a, cmdq_build_tlbi_nh_asid(1, 0));
	first = push_sync(&a);
	ASSERT_OK(ring_prod_publish(&a.p));
	gate_wait_entered(&g);
	for (uint16_t i = 0; i < 10; i++) {
		tlib_ring_push(&a,
			       cmdq_build_tlbi_nh_asid((uint16_t)(2 + i), 0));
		last = push_sync(&a);
		ASSERT_OK(ring_prod_publish(&a.p));
	}
	tlib_ring_push(&b, cmdq_build_tlbi_nh_asid(20, 0));
	bs = push_sync(&b);
	ASSERT_OK(ring_prod_publish(&b.p));

	sync_wait(&b, bs);
	EXPECT_FALSE(ring_prod_done_upto(&a.p, first));
	wait_taken_idle(svc, &a, 22);
	EXPECT_FALSE(ring_prod_done_upto(&a.p, first));
	sem_post(&g.go);
	sync_wait(&a, last);
	ASSERT_OK(core_vsmmu_stats(svc, x, &st));
	EXPECT_EQ(st.syncs - st0.syncs, 11u);
	EXPECT_EQ(st.ioctls - st0.ioctls, 2u);

	tlib_ring_free(&a);
	tlib_ring_free(&b);
	core_service_free(svc);
	sem_destroy(&g.entered);
	sem_destroy(&g.go);
}

TEST(group_commit_held_uring_async)
{
	run_group_commit_held(&tlib_variants[0]);
}

TEST(group_commit_held_epoll_async)
{
	run_group_commit_held(&tlib_variants[2]);
}

/* ---- CORE_ISSUE_AUTO ---------------------------------------------------- */

/*
 * The rule alone: long calls switch to async, short ones back to inline,
 * and calls between the two thresholds keep whichever mode is in force.
 */
TEST(auto_rule_hysteresis)
{
	uint64_t ewma = 0, mid = (CORE_AUTO_ASYNC_NS + CORE_AUTO_INLINE_NS) / 2;
	bool async = false;
	int n;

	for (n = 0; n < 1000 && !async; n++)
		async = core_auto_async(async, &ewma, 3 * CORE_AUTO_ASYNC_NS);
	EXPECT_TRUE(async);
	EXPECT_GT(n, 1); /* one slow call is not enough */
	for (n = 0; n < 1000; n++)
		ASSERT_TRUE(core_auto_async(async, &ewma, mid));
	for (n = 0; n < 1000 && async; n++)
		async = core_auto_async(async, &ewma, 1000);
	EXPECT_FALSE(async);
	for (n = 0; n < 1000; n++)
		ASSERT_FALSE(core_auto_async(async, &ewma, mid));
}

/*
 * The service: auto starts inline and, once its host SMMU's calls take
 * 2 ms each (sim block), issues async; the rings complete either way.
 */
static void run_auto_switches(enum core_loop_kind loop)
{
	const struct tlib_variant v = { loop, CORE_ISSUE_AUTO };
	struct iofd_sim_config sim;
	struct core_hsmmu_stats hs;
	struct core_service *svc;
	struct tlib_ring a;
	uint32_t x, idx = 0;

	tlib_sim_cfg(&sim);
	sim.wait = IOFD_SIM_WAIT_BLOCK;
	sim.sync_ns = 2000000;
	svc = tlib_svc_variant(&v, 1, &sim, 0);
	x = tlib_vsmmu_new(svc, "smmu0");
	tlib_core_ring(svc, x, &a, 7);
	ASSERT_OK(core_hsmmu_stats(svc, 0, &hs));
	ASSERT_STREQ(hs.issue_mode, "auto:inline");
	for (uint16_t i = 0; i < 8; i++) {
		tlib_ring_push(&a,
			       cmdq_build_tlbi_nh_asid((uint16_t)(1 + i), 0));
		idx = push_sync(&a);
		ASSERT_OK(ring_prod_publish(&a.p));
		sync_wait(&a, idx);
	}
	ASSERT_OK(core_hsmmu_stats(svc, 0, &hs));
	ASSERT_STREQ(hs.issue_mode, "auto:async");
	tlib_ring_free(&a);
	core_service_free(svc);
}

TEST(auto_switches_uring)
{
	run_auto_switches(CORE_LOOP_URING);
}

TEST(auto_switches_epoll)
{
	run_auto_switches(CORE_LOOP_EPOLL);
}

TEST_HARNESS_MAIN
