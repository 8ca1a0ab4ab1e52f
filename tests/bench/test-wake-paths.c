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
	int r;
	char err[256];
};

static void *vcpu_main(void *arg)
{
	struct vcpu_arg *a = arg;

	a->r = kvmh_vcpu_run(&a->w->c, kwk_mmio, a->w, a->err, sizeof(a->err));
	/* R_DONE: pairs with A_DONE in run_done(). */
	__atomic_store_n(&a->w->done, true, __ATOMIC_RELEASE);
	kwk_wake(a->w);
	return NULL;
}

static bool run_done(struct kwk *w)
{
	/* A_DONE: pairs with R_DONE. */
	return __atomic_load_n(&w->done, __ATOMIC_ACQUIRE);
}

FIXTURE(wake)
{
	struct kwk w;
	struct vcpu_arg va;
	pthread_t th;
	bool made, th_on;
};

FIXTURE_SETUP(wake)
{
	memset(self, 0, sizeof(*self));
}

FIXTURE_TEARDOWN(wake)
{
	if (self->th_on) {
		kvmh_vcpu_kick(&self->w.c);
		pthread_join(self->th, NULL);
	}
	if (self->made)
		kwk_free(&self->w);
}

/* Make the VM; SKIP only if this kernel has no usable userfaultfd WP. */
static void wake_new(struct t_fixture_wake *self, enum kwk_path path)
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
}

static void wake_start(struct t_fixture_wake *self)
{
	self->va.w = &self->w;
	ASSERT_EQ(0, pthread_create(&self->th, NULL, vcpu_main, &self->va));
	self->th_on = true;
}

static void wake_join(struct t_fixture_wake *self)
{
	pthread_join(self->th, NULL);
	self->th_on = false;
	if (self->va.r)
		FAIL("vCPU: %s", self->va.err);
}

static void gated(struct t_fixture_wake *self, enum kwk_path path)
{
	struct kwk *w = &self->w;
	const uint64_t n = 50;

	wake_new(self, path);
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
		ASSERT_FALSE(run_done(w));
		EXPECT_TRUE(kwk_events(w) > ev0);
		/* The service saw the event before the store landed. */
		EXPECT_EQ((uint32_t)(i - 1),
			  __atomic_load_n(&w->ev_prod, __ATOMIC_RELAXED));
		while (kwk_prod(w) != (uint32_t)i) {
			ASSERT_FALSE(run_done(w));
			ASSERT_EQ(0, *kwk_field(w, KG_W_BAD));
		}
		kwk_set_cons(w, (uint32_t)i);
		/* The guest ends right after its last SEQ: look again. */
		while (*kwk_field(w, KG_W_SEQ) < i)
			ASSERT_FALSE(run_done(w) &&
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
	uint64_t stores;
	uint32_t last;
	uint64_t arms, disarms, wakes, rechecks, inflight, backwards, beyond;
};

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* One look at PROD: check it, answer it in CONS. */
static uint32_t observe(struct kwk *w, struct stats *st)
{
	uint32_t p = kwk_prod(w);

	/* A lost store: the guest read back something else (fail now,
	 * before the guest waits forever for a CONS that never comes). */
	ASSERT_EQ(0, *kwk_field(w, KG_W_BAD));
	if (p < st->last)
		st->backwards++;
	if (p > st->stores)
		st->beyond++;
	if (p != st->last) {
		st->last = p;
		kwk_set_cons(w, p);
	}
	return p;
}

/* Armed: sleep until an event, a random disarm or the run's end,
 * checking for a store that completed without an event. */
static void idle_phase(struct kwk *w, struct stats *st, uint64_t *rng)
{
	uint64_t c0 = kwk_events(w);
	uint32_t p0 = st->last, p1;
	int r;

	if (observe(w, st) != p0) {
		/* Stored before the arm took effect: stay active. */
		st->rechecks++;
		ASSERT_OK(kwk_disarm(w));
		return;
	}
	for (;;) {
		r = kwk_sleep(w, (int)(xs(rng) % 3));
		ASSERT_TRUE(r >= 0);
		p1 = kwk_prod(w);
		if (r == 0 && p1 != p0 && kwk_events(w) == c0) {
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
		observe(w, st);
		if (r == 1) {
			st->wakes++;
			return;
		}
		if (run_done(w))
			return;
		if (xs(rng) & 1) {
			st->disarms++;
			ASSERT_OK(kwk_disarm(w));
			return;
		}
	}
}

static void random_run(struct t_fixture_wake *self, enum kwk_path path)
{
	const char *env = getenv("WAKE_STRESS_ITERS");
	struct kwk *w = &self->w;
	struct stats st;
	uint64_t rng = t_seed() | 1;

	memset(&st, 0, sizeof(st));
	st.stores = env ? strtoull(env, NULL, 0) : 20000;
	st.stores = (st.stores + 7) & ~7ull; /* the last store syncs */
	ASSERT_TRUE(st.stores >= 8);
	wake_new(self, path);
	*kwk_field(w, KG_V_ITERS) = st.stores;
	*kwk_field(w, KG_W_FLAGS) = KG_WF_CHECK;
	*kwk_field(w, KG_W_SYNCMASK) = 7;
	*kwk_field(w, KG_W_SPINMASK) = 0x3ff;
	*kwk_field(w, KG_W_SEED) = rng;
	wake_start(self);
	while (!run_done(w)) {
		uint64_t polls = xs(&rng) % 4096;

		for (uint64_t k = 0; k < polls && !run_done(w); k++) {
			observe(w, &st);
			__builtin_ia32_pause();
		}
		ASSERT_OK(kwk_arm(w, NULL));
		st.arms++;
		idle_phase(w, &st, &rng);
	}
	wake_join(self);
	observe(w, &st);
	printf("# %s: %" PRIu64 " stores, %" PRIu64 " arms, %" PRIu64
	       " events, %" PRIu64 " woken, %" PRIu64
	       " random disarms, %" PRIu64
	       " stores seen at the re-check, %" PRIu64
	       " waits for a wake in flight\n",
	       path == KWK_UFFD ? "uffd" :
	       path == KWK_SLOT ? "slot" :
				  "slot-defer",
	       st.stores, st.arms, kwk_events(w), st.wakes, st.disarms,
	       st.rechecks, st.inflight);
	EXPECT_EQ(0, *kwk_field(w, KG_W_BAD));
	EXPECT_EQ((uint32_t)st.stores, kwk_prod(w));
	EXPECT_EQ(0, st.backwards);
	EXPECT_EQ(0, st.beyond);
	EXPECT_EQ(0, w->thread_err);
	/* The run exercised the trap at all. */
	EXPECT_TRUE(st.arms > 0);
	EXPECT_TRUE(kwk_events(w) > 0);
}

TEST_F_TIMEOUT(wake, uffd_random, 300)
{
	random_run(self, KWK_UFFD);
}

TEST_F_TIMEOUT(wake, slot_random, 300)
{
	random_run(self, KWK_SLOT);
}

TEST_F(wake, slot_defer_gated)
{
	gated(self, KWK_SLOT_DEFER);
}

TEST_F_TIMEOUT(wake, slot_defer_random, 300)
{
	random_run(self, KWK_SLOT_DEFER);
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
