/* SPDX-License-Identifier: MIT */
/*
 * A VMM must not be able to stall a worker through its completion eventfd
 * (docs/SECURITY.md, "Completion signals"). The fd is the VMM's: it can
 * fill the counter to 0xfffffffffffffffe and clear O_NONBLOCK on the file
 * description it shares with the service at any time, and then a
 * write(2) on it blocks. Each test below puts a VMM that does this with
 * WANT_SIGNAL set beside a well-behaved VM on the same host SMMU (one
 * worker serves both) and FAILS if that worker blocks: the good VM's
 * SYNCs must keep completing and control calls (stats, create/destroy,
 * detaching the hostile ring, freeing the service) must come back, each
 * within a deadline that only a hang exceeds.
 *
 * saturated_before_every_signal: deterministic. The counter is full and
 * the fd blocking before each of the bad VM's SYNCs, so every signal the
 * worker sends meets the state that blocked write(2). poll() and write()
 * are interposed for the whole executable (core is linked statically, so
 * its calls bind to ours): a POLLOUT check on the bad VM's eventfd is
 * answered by refilling the counter at once (the window a check-then-
 * write signaller leaves, won every time), and a write(2) on it from any
 * thread but the test's own fails the test (the service must not use it).
 *
 * saturating_vmm_races_signals: the real hostile pattern, many times: a
 * thread keeps refilling the counter and flipping O_NONBLOCK while the
 * bad VM streams SYNCs with WANT_SIGNAL set; both event loops.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <smmu-offload/ring-prod.h>

#include "cmdq/cmdq.h"
#include "core/core.h"
#include "iommufd/sim.h"
#include "tests/lib/tlib-core.h"

/* Deadlines: generous, a hang is forever. */
#define WAIT_NS 10000000000ull
#define CTL_TIMEOUT_MS 5000
#define SAT 0xfffffffffffffffeull

static int watched_fd = -1; /* the bad VM's completion eventfd */
static pthread_t test_thread;
static unsigned int bad_writes; /* atomic: write(2)s on it by others */

static bool same_file(int a, int b)
{
	pid_t p = getpid();

	return syscall(SYS_kcmp, p, p, KCMP_FILE, a, b) == 0;
}

/* write(2) for the whole executable: flags a service write on the bad
 * VM's eventfd, then does it (it would block: the test then fails on
 * its deadline, and says why). */
ssize_t write(int fd, const void *buf, size_t n)
{
	int wfd = __atomic_load_n(&watched_fd, __ATOMIC_ACQUIRE);

	if (wfd >= 0 && fd != wfd &&
	    !pthread_equal(pthread_self(), test_thread) && same_file(fd, wfd))
		__atomic_fetch_add(&bad_writes, 1, __ATOMIC_RELAXED);
	return syscall(SYS_write, fd, buf, n);
}

/*
 * poll(2) for the whole executable: a check-then-write signaller (poll
 * for POLLOUT, then write) loses the race every time here, because the
 * bad VM refills its counter right after any such check says writable.
 */
int poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	struct timespec ts, *tsp = NULL;
	int wfd = __atomic_load_n(&watched_fd, __ATOMIC_ACQUIRE);
	long r;

	if (timeout >= 0) {
		ts.tv_sec = timeout / 1000;
		ts.tv_nsec = (long)(timeout % 1000) * 1000000;
		tsp = &ts;
	}
	r = syscall(SYS_ppoll, fds, nfds, tsp, NULL, (size_t)8);
	if (r == 1 && nfds == 1 && (fds[0].revents & POLLOUT) && wfd >= 0 &&
	    !pthread_equal(pthread_self(), test_thread) &&
	    same_file(fds[0].fd, wfd)) {
		uint64_t v = SAT;

		if (syscall(SYS_write, wfd, &v, sizeof(v)) < 0 &&
		    errno != EAGAIN)
			abort();
	}
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return (int)r;
}

static uint32_t push_pair(struct tlib_ring *r)
{
	return tlib_ring_push_pair(r, cmdq_build_tlbi_nh_asid(1, 0));
}

/* Spin until the SYNC at @idx completed; a hang fails. */
static void wait_done(struct tlib_ring *r, uint32_t idx, const char *who)
{
	double t0 = t_now();

	while (!ring_prod_done_upto(&r->p, idx)) {
		if (t_now() - t0 > WAIT_NS * 1e-9)
			FAIL("%s: SYNC at %u not done after %.0f s: the worker "
			     "is blocked",
			     who, idx, WAIT_NS * 1e-9);
		sched_yield();
	}
}

static void want_signal(struct tlib_ring *r)
{
	r->p.prod_flags = SMMU_RING_WANT_SIGNAL;
	__atomic_store_n(&r->p.hdr->prod_flags, SMMU_RING_WANT_SIGNAL,
			 __ATOMIC_RELEASE);
}

/* Fill the counter to the maximum: the next write(2) would block. */
static void saturate(int fd)
{
	uint64_t v;
	struct pollfd in = { .fd = fd, .events = POLLIN };
	int fl = fcntl(fd, F_GETFL);

	/* Non-blocking for our own moves, blocking again after: the flag
	 * is in the description the service shares. */
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	if (poll(&in, 1, 0) == 1 && read(fd, &v, sizeof(v)) < 0 &&
	    errno != EAGAIN)
		abort();
	v = SAT;
	if (syscall(SYS_write, fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		abort();
	fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

static struct core_service *svc_new(struct iofd_sim_config *sim,
				    enum core_loop_kind loop)
{
	struct core_config cfg = {
		TLIB_CORE_CFG(sim, 1),
		.poll_us = 50,
		.loop = loop,
		.ctl_timeout_ms = CTL_TIMEOUT_MS,
	};

	tlib_sim_cfg(sim);
	return tlib_svc_new(&cfg);
}

/* Control calls that must come back while the bad VM misbehaves. */
static void control_calls_answer(struct core_service *svc)
{
	struct core_vsmmu_spec spec = { .iommufd = -1 };
	struct core_hsmmu_stats hs;
	uint32_t vs;

	ASSERT_OK(core_hsmmu_stats(svc, 0, &hs));
	ASSERT_FALSE(hs.stuck);
	ASSERT_OK(core_vsmmu_create(svc, "smmu0", &spec, &vs));
	ASSERT_OK(core_vsmmu_destroy(svc, vs));
}

static void check_not_stuck(struct core_service *svc)
{
	struct core_hsmmu_stats hs;

	ASSERT_OK(core_hsmmu_stats(svc, 0, &hs));
	ASSERT_FALSE(hs.stuck);
	ASSERT_EQ(hs.ctl_timeouts, 0);
	ASSERT_EQ(__atomic_load_n(&bad_writes, __ATOMIC_RELAXED), 0);
}

TEST_TIMEOUT(saturated_before_every_signal, 120)
{
	struct iofd_sim_config sim;
	struct core_service *svc;
	struct core_ring_stats rs;
	struct tlib_ring good, bad;
	uint32_t vs_good, vs_bad, idx;

	test_thread = pthread_self();
	svc = svc_new(&sim, CORE_LOOP_AUTO);
	vs_good = tlib_vsmmu_new(svc, "smmu0");
	vs_bad = tlib_vsmmu_new(svc, "smmu0");
	tlib_core_ring(svc, vs_good, &good, 10);
	tlib_core_ring(svc, vs_bad, &bad, 10);
	__atomic_store_n(&watched_fd, bad.cq, __ATOMIC_RELEASE);
	want_signal(&bad);

	for (int i = 0; i < 500; i++) {
		/* Half the time full before the signal, half the time left to
		 * the interposed poll() to fill in the window. */
		if (i % 2)
			saturate(bad.cq);
		idx = push_pair(&bad);
		wait_done(&bad, idx, "bad VM");
		idx = push_pair(&good);
		wait_done(&good, idx, "good VM");
		if (i % 100 == 0)
			control_calls_answer(svc);
	}
	/* The worker did signal (into the full counter), every time. */
	ASSERT_OK(core_ring_stats(svc, bad.id, &rs));
	ASSERT_GE(rs.signals, 500);
	check_not_stuck(svc);
	ASSERT_OK(core_ring_detach(svc, bad.id));
	__atomic_store_n(&watched_fd, -1, __ATOMIC_RELEASE);
	core_service_free(svc);
	tlib_ring_free(&good);
	tlib_ring_free(&bad);
}

struct saturator {
	int fd;
	unsigned int stop; /* atomic */
	uint64_t rounds;
};

static void *saturator_main(void *arg)
{
	struct saturator *s = arg;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		saturate(s->fd);
		s->rounds++;
		sched_yield();
	}
	return NULL;
}

static void race(enum core_loop_kind loop)
{
	struct iofd_sim_config sim;
	struct core_service *svc;
	struct core_service_stats ss;
	struct tlib_ring good, bad;
	struct saturator sat = { 0 };
	pthread_t th;
	uint32_t vs_good, vs_bad, idx;

	svc = svc_new(&sim, loop);
	vs_good = tlib_vsmmu_new(svc, "smmu0");
	vs_bad = tlib_vsmmu_new(svc, "smmu0");
	tlib_core_ring(svc, vs_good, &good, 10);
	tlib_core_ring(svc, vs_bad, &bad, 10);
	__atomic_store_n(&watched_fd, bad.cq, __ATOMIC_RELEASE);
	want_signal(&bad);
	sat.fd = bad.cq;
	ASSERT_EQ(pthread_create(&th, NULL, saturator_main, &sat), 0);

	for (int i = 0; i < 2000; i++) {
		idx = push_pair(&bad);
		wait_done(&bad, idx, "bad VM");
		idx = push_pair(&good);
		wait_done(&good, idx, "good VM");
		if (i % 250 == 0)
			control_calls_answer(svc);
	}
	/* Detach the hostile ring while it still races: must return. */
	ASSERT_OK(core_ring_detach(svc, bad.id));
	idx = push_pair(&good);
	wait_done(&good, idx, "good VM after the detach");
	check_not_stuck(svc);
	ASSERT_OK(core_service_stats(svc, &ss));
	ASSERT_EQ(ss.workers_stuck, 0);
	printf("# %s: 2000 SYNCs each, the saturator refilled %llu times\n",
	       core_service_loop_name(svc), (unsigned long long)sat.rounds);
	core_service_free(svc);
	__atomic_store_n(&watched_fd, -1, __ATOMIC_RELEASE);
	__atomic_store_n(&sat.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	tlib_ring_free(&good);
	tlib_ring_free(&bad);
}

TEST_TIMEOUT(saturating_vmm_races_signals_uring, 240)
{
	test_thread = pthread_self();
	race(CORE_LOOP_AUTO);
}

TEST_TIMEOUT(saturating_vmm_races_signals_epoll, 240)
{
	test_thread = pthread_self();
	race(CORE_LOOP_EPOLL);
}

TEST_HARNESS_MAIN
