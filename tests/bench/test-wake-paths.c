/* SPDX-License-Identifier: MIT */
/*
 * The idle protection of a software vCMDQ register page on a real vCPU
 * (bench/kvm/wake.h): userfaultfd write-protect and a read-only memslot.
 *
 * gated: the host arms, then lets the guest store PROD = i; the store
 *   must be trapped (a wake event), must not be visible before the
 *   service saw the event, and must land (guest read-back, final PROD).
 * random: the guest stores an increasing PROD sequence with random
 *   pauses, waiting for CONS every 8th store; the worker polls, arms at
 *   random moments, re-checks PROD after arming, sleeps with random
 *   timeouts and disarms at random. Checked: every PROD the worker sees
 *   is >= the previous one and <= the last store; a store that lands
 *   while armed is followed by a wake (if PROD moved with no event since
 *   the arm, the worker blocks for that wake: a missed wake-up hangs
 *   here and the alarm fails the test, as it would hang the guest); the
 *   guest read back every store (checked at every look, so a lost store
 *   fails at once); the final PROD is the last store.
 * two_queues: the random run with two vCPUs, each storing into its own
 *   queue of the page (queue 1 at +0x80, as in Tegra241 page0), so traps
 *   of both are in flight at once and one un-protect releases both.
 * No timing thresholds: sleeps' timeouts only decide when the worker
 * looks and whether it disarms. WAKE_STRESS_ITERS sets the stores per
 * random run (default 20000). Exit 77 without a usable /dev/kvm.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/kvm/kvm-bench.h"
#include "bench/kvm/wake.h"
#include "tests/harness.h"

static int g_kvm_fd = -1;

struct vcpu_arg {
	struct kwk *w;
	struct kvmh_vcpu *c;
	bool done; /* atomic */
	int r;
	char err[256];
};

static void *vcpu_main(void *arg)
{
	struct vcpu_arg *a = arg;

	a->r = kvmh_vcpu_run(a->c, kwk_mmio, a->w, a->err, sizeof(a->err));
	/* R_DONE: pairs with A_DONE in run_done(). */
	__atomic_store_n(&a->done, true, __ATOMIC_RELEASE);
	kwk_wake(a->w);
	return NULL;
}

/* vCPU 0 is the kwk's; vCPU 1 (two-queue runs) stores into queue 1. */
FIXTURE(wake)
{
	struct kwk w;
	struct kvmh_vcpu c1;
	struct vcpu_arg va[2];
	pthread_t th[2];
	bool th_on[2];
	unsigned int nv;
	bool made, c1_made;
};

FIXTURE_SETUP(wake)
{
	memset(self, 0, sizeof(*self));
	self->nv = 1;
}

FIXTURE_TEARDOWN(wake)
{
	for (unsigned int v = 0; v < 2; v++) {
		if (!self->th_on[v])
			continue;
		kvmh_vcpu_kick(self->va[v].c);
		pthread_join(self->th[v], NULL);
	}
	if (self->c1_made)
		kvmh_vcpu_free(&self->c1);
	if (self->made)
		kwk_free(&self->w);
}

/* Every vCPU's run ended. */
static bool run_done(struct t_fixture_wake *self)
{
	for (unsigned int v = 0; v < self->nv; v++)
		/* A_DONE: pairs with R_DONE. */
		if (!__atomic_load_n(&self->va[v].done, __ATOMIC_ACQUIRE))
			return false;
	return true;
}

/* vCPU @v's block field @off. */
static volatile uint64_t *vfield(struct t_fixture_wake *self, unsigned int v,
				 unsigned int off)
{
	return (volatile uint64_t *)(void *)(self->w.vm.ram + KG_VCPU(v) + off);
}

/* Make the VM (and vCPU 1 for @nv = 2, storing into queue 1); SKIP only
 * if this kernel has no usable userfaultfd WP. */
static void wake_new(struct t_fixture_wake *self, enum kwk_path path,
		     unsigned int nv)
{
	char err[256] = "";
	int r;

	r = kwk_new(&self->w, g_kvm_fd, path, 0, err, sizeof(err));
	self->made = true;
	if (r && path == KWK_UFFD &&
	    (!strncmp(err, "userfaultfd", 11) ||
	     !strncmp(err, "UFFDIO_API", 10) ||
	     !strncmp(err, "UFFDIO_REGISTER", 15)))
		SKIP("no userfaultfd write-protect on shmem here");
	if (r)
		FAIL("kwk_new: %s", err);
	self->nv = nv;
	self->va[0].c = &self->w.c;
	if (nv < 2)
		return;
	r = kvmh_vcpu_new(&self->w.vm, 1, &self->c1, err, sizeof(err));
	self->c1_made = true;
	if (r)
		FAIL("vCPU 1: %s", err);
	self->va[1].c = &self->c1;
	*vfield(self, 1, KG_V_PROG) = KG_PROG_WAKE;
	*vfield(self, 1, KG_W_ADDR) = KG_W_PAGE + KWK_QSTRIDE + KG_W_PROD;
	*vfield(self, 1, KG_W_CADDR) = KG_W_PAGE + KWK_QSTRIDE + KG_W_CONS;
}

static void wake_start(struct t_fixture_wake *self)
{
	for (unsigned int v = 0; v < self->nv; v++) {
		self->va[v].w = &self->w;
		ASSERT_EQ(0, pthread_create(&self->th[v], NULL, vcpu_main,
					    &self->va[v]));
		self->th_on[v] = true;
	}
}

static void wake_join(struct t_fixture_wake *self)
{
	for (unsigned int v = 0; v < self->nv; v++) {
		pthread_join(self->th[v], NULL);
		self->th_on[v] = false;
	}
	for (unsigned int v = 0; v < self->nv; v++)
		if (self->va[v].r)
			FAIL("vCPU %u: %s", v, self->va[v].err);
}

static void gated(struct t_fixture_wake *self, enum kwk_path path)
{
	struct kwk *w = &self->w;
	const uint64_t n = 50;

	wake_new(self, path, 1);
	*kwk_field(w, KG_V_ITERS) = n;
	*kwk_field(w, KG_W_FLAGS) = KG_WF_GATE | KG_WF_CHECK;
	wake_start(self);
	for (uint64_t i = 1; i <= n; i++) {
		uint64_t ev0;
		int r;

		/* Finish a deferred flip still pending (it would disarm
		 * this arm), arm, and drop the wakes of the last store's
		 * disarms: the guest waits for GO, nothing else can wake. */
		ASSERT_OK(kwk_disarm(w));
		ASSERT_OK(kwk_arm(w, NULL));
		while ((r = kwk_sleep(w, 0)) == 1)
			;
		ASSERT_EQ(0, r);
		ev0 = kwk_events(w);
		ASSERT_EQ((uint32_t)(i - 1), kwk_prod(w));
		*kwk_field(w, KG_W_GO) = i;
		/* Wait on the event: a lost trap is a hang (the test's
		 * timeout), not a pass. */
		do {
			r = kwk_sleep(w, -1);
		} while (r == 0);
		ASSERT_EQ(1, r);
		ASSERT_FALSE(run_done(self));
		EXPECT_TRUE(kwk_events(w) > ev0);
		/* The service saw the event before the store landed. */
		EXPECT_EQ((uint32_t)(i - 1),
			  __atomic_load_n(&w->ev_prod, __ATOMIC_RELAXED));
		while (kwk_prod(w) != (uint32_t)i) {
			ASSERT_FALSE(run_done(self));
			ASSERT_EQ(0, *kwk_field(w, KG_W_BAD));
		}
		kwk_set_cons(w, (uint32_t)i);
		/* The guest ends right after its last SEQ: look again. */
		while (*kwk_field(w, KG_W_SEQ) < i)
			ASSERT_FALSE(run_done(self) &&
				     *kwk_field(w, KG_W_SEQ) < i);
	}
	wake_join(self);
	EXPECT_EQ(0, *kwk_field(w, KG_W_BAD));
	EXPECT_EQ((uint32_t)n, kwk_prod(w));
	EXPECT_EQ(0, w->thread_err);
}

TEST_F(wake, uffd_gated)
{
	gated(self, KWK_UFFD);
}

TEST_F(wake, slot_gated)
{
	gated(self, KWK_SLOT);
}

struct stats {
	unsigned int nq; /* queues (= vCPUs) */
	uint64_t stores; /* per queue */
	uint32_t last[2];
	uint64_t arms, disarms, wakes, rechecks, inflight, backwards, beyond;
};

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* The queues' PRODs now, summed: each only grows, so the sum changes
 * iff one did (going back is checked on its own). */
static uint64_t prod_sum(struct kwk *w, unsigned int nq)
{
	uint64_t sum = 0;

	for (unsigned int q = 0; q < nq; q++)
		sum += kwk_prod_q(w, q);
	return sum;
}

/* One look at every queue's PROD: check it, answer it in CONS. Return
 * the sum of what was seen. */
static uint64_t observe(struct t_fixture_wake *self, struct stats *st)
{
	struct kwk *w = &self->w;
	uint64_t sum = 0;

	for (unsigned int q = 0; q < st->nq; q++) {
		uint32_t p = kwk_prod_q(w, q);

		/* A lost store: the guest read back something else (fail
		 * now, before it waits forever for its CONS). */
		ASSERT_EQ(0, *vfield(self, q, KG_W_BAD));
		if (p < st->last[q])
			st->backwards++;
		if (p > st->stores)
			st->beyond++;
		if (p != st->last[q]) {
			st->last[q] = p;
			kwk_set_cons_q(w, q, p);
		}
		sum += p;
	}
	return sum;
}

static uint64_t last_sum(struct stats *st)
{
	return (uint64_t)st->last[0] + (st->nq > 1 ? st->last[1] : 0);
}

/* Armed: sleep until an event, a random disarm or the run's end,
 * checking for a store that completed without an event. */
static void idle_phase(struct t_fixture_wake *self, struct stats *st,
		       uint64_t *rng)
{
	struct kwk *w = &self->w;
	uint64_t c0 = kwk_events(w), p0 = last_sum(st);
	int r;

	if (observe(self, st) != p0) {
		/* Stored before the arm took effect: stay active. */
		st->rechecks++;
		ASSERT_OK(kwk_disarm(w));
		return;
	}
	for (;;) {
		r = kwk_sleep(w, (int)(xs(rng) % 3));
		ASSERT_TRUE(r >= 0);
		if (r == 0 && prod_sum(w, st->nq) != p0 &&
		    kwk_events(w) == c0) {
			/* A store landed after the re-check and no event
			 * since: its event may have been counted before c0
			 * (a store trapped during the arm's own slot flip),
			 * then its wake is still coming. Wait for it; if it
			 * never comes, the alarm fails the test (a missed
			 * wake-up: the guest's next CONS wait would hang). */
			st->inflight++;
			r = kwk_sleep(w, -1);
			ASSERT_EQ(1, r);
		}
		observe(self, st);
		if (r == 1) {
			st->wakes++;
			return;
		}
		if (run_done(self))
			return;
		if (xs(rng) & 1) {
			st->disarms++;
			ASSERT_OK(kwk_disarm(w));
			return;
		}
	}
}

static void random_run(struct t_fixture_wake *self, enum kwk_path path,
		       unsigned int nq)
{
	const char *env = getenv("WAKE_STRESS_ITERS");
	struct kwk *w = &self->w;
	struct stats st;
	uint64_t rng = t_seed() | 1;

	memset(&st, 0, sizeof(st));
	st.nq = nq;
	st.stores = (env ? strtoull(env, NULL, 0) : 20000) / nq;
	st.stores = (st.stores + 7) & ~7ull; /* the last store syncs */
	ASSERT_TRUE(st.stores >= 8);
	wake_new(self, path, nq);
	for (unsigned int v = 0; v < nq; v++) {
		*vfield(self, v, KG_V_ITERS) = st.stores;
		*vfield(self, v, KG_W_FLAGS) = KG_WF_CHECK;
		*vfield(self, v, KG_W_SYNCMASK) = 7;
		*vfield(self, v, KG_W_SPINMASK) = 0x3ff;
		*vfield(self, v, KG_W_SEED) = xs(&rng);
	}
	wake_start(self);
	while (!run_done(self)) {
		uint64_t polls = xs(&rng) % 4096;

		for (uint64_t k = 0; k < polls && !run_done(self); k++) {
			observe(self, &st);
			__builtin_ia32_pause();
		}
		ASSERT_OK(kwk_arm(w, NULL));
		st.arms++;
		idle_phase(self, &st, &rng);
	}
	wake_join(self);
	observe(self, &st);
	printf("# %s, %u queue(s): %" PRIu64 " stores each, %" PRIu64
	       " arms, %" PRIu64 " events, %" PRIu64 " woken, %" PRIu64
	       " random disarms, %" PRIu64
	       " stores seen at the re-check, %" PRIu64
	       " waits for a wake in flight, %" PRIu64
	       " faults already resolved\n",
	       path == KWK_UFFD ? "uffd" :
	       path == KWK_SLOT ? "slot" :
				  "slot-defer",
	       nq, st.stores, st.arms, kwk_events(w), st.wakes, st.disarms,
	       st.rechecks, st.inflight, w->stale_faults);
	for (unsigned int q = 0; q < nq; q++) {
		EXPECT_EQ(0, *vfield(self, q, KG_W_BAD));
		EXPECT_EQ((uint32_t)st.stores, kwk_prod_q(w, q));
	}
	EXPECT_EQ(0, st.backwards);
	EXPECT_EQ(0, st.beyond);
	EXPECT_EQ(0, w->thread_err);
	/* The run exercised the trap at all. */
	EXPECT_TRUE(st.arms > 0);
	EXPECT_TRUE(kwk_events(w) > 0);
}

TEST_F_TIMEOUT(wake, uffd_random, 300)
{
	random_run(self, KWK_UFFD, 1);
}

TEST_F_TIMEOUT(wake, slot_random, 300)
{
	random_run(self, KWK_SLOT, 1);
}

TEST_F(wake, slot_defer_gated)
{
	gated(self, KWK_SLOT_DEFER);
}

TEST_F_TIMEOUT(wake, slot_defer_random, 300)
{
	random_run(self, KWK_SLOT_DEFER, 1);
}

/*
 * Two vCPUs stalled on one armed page at once, released by one
 * un-protect: the uffd thread holds until it has read both faults (each
 * vCPU's store must fault while the page stays protected), then
 * un-protects once; both stores must land, each in its own queue.
 */
TEST_F(wake, uffd_two_vcpus_one_unprotect)
{
	struct kwk *w = &self->w;
	const uint64_t n = 20;

	wake_new(self, KWK_UFFD, 2);
	w->fault_batch = 2;
	for (unsigned int v = 0; v < 2; v++) {
		*vfield(self, v, KG_V_ITERS) = n;
		*vfield(self, v, KG_W_FLAGS) = KG_WF_GATE | KG_WF_CHECK;
	}
	wake_start(self);
	for (uint64_t i = 1; i <= n; i++) {
		uint64_t ev0;
		int r;

		ASSERT_OK(kwk_arm(w, NULL));
		while ((r = kwk_sleep(w, 0)) == 1)
			;
		ASSERT_EQ(0, r);
		ev0 = kwk_events(w);
		*vfield(self, 0, KG_W_GO) = i;
		*vfield(self, 1, KG_W_GO) = i;
		do {
			r = kwk_sleep(w, -1);
		} while (r == 0);
		ASSERT_EQ(1, r);
		ASSERT_FALSE(run_done(self));
		/* Both faulted before the one un-protect. */
		EXPECT_EQ(ev0 + 2, kwk_events(w));
		for (unsigned int q = 0; q < 2; q++) {
			while (kwk_prod_q(w, q) != (uint32_t)i) {
				ASSERT_FALSE(run_done(self));
				ASSERT_EQ(0, *vfield(self, q, KG_W_BAD));
			}
			kwk_set_cons_q(w, q, (uint32_t)i);
		}
		for (unsigned int v = 0; v < 2; v++)
			while (*vfield(self, v, KG_W_SEQ) < i)
				ASSERT_FALSE(run_done(self) &&
					     *vfield(self, v, KG_W_SEQ) < i);
	}
	wake_join(self);
	for (unsigned int q = 0; q < 2; q++) {
		EXPECT_EQ(0, *vfield(self, q, KG_W_BAD));
		EXPECT_EQ((uint32_t)n, kwk_prod_q(w, q));
	}
	EXPECT_EQ(0, w->thread_err);
}

/* Two vCPUs, each storing into its own queue of the one page: faults
 * (or exits) of both in flight at once. */
TEST_F_TIMEOUT(wake, uffd_two_queues_random, 300)
{
	random_run(self, KWK_UFFD, 2);
}

TEST_F_TIMEOUT(wake, slot_two_queues_random, 300)
{
	random_run(self, KWK_SLOT, 2);
}

int main(int argc, char **argv)
{
	char err[256] = "";

	if (kvmh_open(&g_kvm_fd, err, sizeof(err))) {
		fprintf(stderr, "test-wake-paths: no usable KVM: %s\n", err);
		return KVMB_EXIT_NO_KVM;
	}
	return t_main(argc, argv);
}
