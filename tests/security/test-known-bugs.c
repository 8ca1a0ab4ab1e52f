/* SPDX-License-Identifier: MIT */
/*
 * Known bugs, reproduced deterministically (docs/SECURITY.md, section 4).
 * Each test PASSES while the bug is there and says so in a TAP comment;
 * it FAILS once the bug is gone, asking to turn it into a regression
 * test. This keeps CI green without hiding the bug.
 *
 * known_bug_completion_eventfd_window: the worker checks the VMM's
 * completion eventfd with poll(POLLOUT), then write()s it. A VMM that
 * saturates the counter between the two blocks the worker in write(2)
 * (the eventfd is in blocking mode: the VMM chose so, and O_NONBLOCK lives
 * in the open file description the VMM shares). The race window is tiny;
 * here it is hit every time by interposing poll() in this executable (core
 * is linked statically, so its poll() call binds to ours): right after
 * the real poll says POLLOUT on the bad VM's eventfd, "the VMM" saturates
 * it. Then the good VM on the same host SMMU must complete a SYNC; while
 * the bug exists, it cannot (the one worker is stuck) until the bad VM
 * reads its eventfd.
 */
#include <errno.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <smmu-offload/ring-prod.h>

#include "cmdq/cmdq.h"
#include "core/core.h"
#include "iommufd/sim.h"
#include "tests/harness.h"

#define STALL_MS 1000

/* The interposer's target: an fd of ours; armed by the test. */
static int race_fd = -1;
static unsigned int race_armed; /* atomic */
static unsigned int race_fired; /* atomic */

static bool same_file(int a, int b)
{
	pid_t p = getpid();

	return syscall(SYS_kcmp, p, p, KCMP_FILE, a, b) == 0;
}

/*
 * poll(2) for the whole executable: the real call, plus, once armed, the
 * hostile VMM's move in the window the worker leaves open.
 */
int poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	struct timespec ts, *tsp = NULL;
	long r;

	if (timeout >= 0) {
		ts.tv_sec = timeout / 1000;
		ts.tv_nsec = (long)(timeout % 1000) * 1000000;
		tsp = &ts;
	}
	r = syscall(SYS_ppoll, fds, nfds, tsp, NULL, (size_t)8);
	if (r == 1 && nfds == 1 && fds[0].events == POLLOUT &&
	    (fds[0].revents & POLLOUT) &&
	    __atomic_load_n(&race_armed, __ATOMIC_ACQUIRE) &&
	    same_file(fds[0].fd, race_fd) &&
	    !__atomic_exchange_n(&race_fired, 1, __ATOMIC_ACQ_REL)) {
		uint64_t v = 0, max = 0xfffffffffffffffeull;
		struct pollfd in = { .fd = race_fd, .events = POLLIN };

		/* Empty the counter (read only if it would not block), then
		 * fill it to the maximum: the next write(2) blocks. */
		if (syscall(SYS_ppoll, &in, 1, &(struct timespec){ 0, 0 }, NULL,
			    (size_t)8) == 1 &&
		    read(race_fd, &v, sizeof(v)) != sizeof(v))
			abort();
		if (write(race_fd, &max, sizeof(max)) != sizeof(max))
			abort();
	}
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return (int)r;
}

struct vmring {
	int memfd, db, cq;
	struct ring_prod p;
	uint32_t id;
};

static void vmring_new(struct core_service *svc, uint32_t vs, struct vmring *r)
{
	ASSERT_OK(ring_memfd_create(5, &r->memfd));
	r->db = eventfd(0, EFD_CLOEXEC);
	r->cq = eventfd(0, EFD_CLOEXEC); /* blocking, as a VMM may leave it */
	ASSERT_GE(r->db, 0);
	ASSERT_GE(r->cq, 0);
	ASSERT_OK(ring_prod_init(&r->p, r->memfd, r->db, r->cq));
	ASSERT_OK(core_ring_attach(svc, vs, r->memfd, r->db, r->cq, &r->id));
}

static void vmring_free(struct vmring *r)
{
	ring_prod_done(&r->p);
	close(r->memfd);
	close(r->db);
	close(r->cq);
}

static uint32_t push_pair(struct vmring *r)
{
	struct cmdq_cmd c[2] = {
		cmdq_build_tlbi_nh_asid(1, 0),
		cmdq_build_sync(CMDQ_SYNC_CS_SEV, CMDQ_SYNC_MSH_ISH,
				CMDQ_SYNC_MSIATTR_OIWB, 0, 0),
	};
	struct smmu_ring_entry e[2];
	uint32_t first;

	cmdq_cmd_to_le(&c[0], &e[0]);
	cmdq_cmd_to_le(&c[1], &e[1]);
	ASSERT_OK(ring_prod_push(&r->p, e, 2, &first));
	ASSERT_OK(ring_prod_publish(&r->p));
	return first + 1;
}

TEST_TIMEOUT(known_bug_completion_eventfd_window, 60)
{
	static const char *const names[] = { "smmu0" };
	struct iofd_sim_config sim;
	struct core_config cfg = {
		.backend = { .kind = "sim", .sim = &sim },
		.hsmmu_names = names,
		.n_hsmmu = 1,
		.poll_us = 50,
	};
	struct iofd_viommu_spec spec = { .iommufd = -1 };
	struct core_service *svc = NULL;
	struct vmring good, bad;
	uint32_t vs_good, vs_bad, idx;
	uint64_t v;
	double t0;
	int r;

	iofd_sim_config_default(&sim);
	sim.wait = IOFD_SIM_WAIT_NONE;
	ASSERT_OK(core_service_new(&cfg, &svc));
	ASSERT_OK(core_vsmmu_create(svc, "smmu0", &spec, &vs_good));
	ASSERT_OK(core_vsmmu_create(svc, "smmu0", &spec, &vs_bad));
	vmring_new(svc, vs_good, &good);
	vmring_new(svc, vs_bad, &bad);
	/* The good VM works, spinning (it never asks for a signal). */
	idx = push_pair(&good);
	ASSERT_OK(ring_prod_wait(&good.p, idx, 5000000000ull, 0));

	/* The bad VM asks for a signal on every completion, then races. */
	bad.p.prod_flags = SMMU_RING_WANT_SIGNAL;
	__atomic_store_n(&bad.p.hdr->prod_flags, SMMU_RING_WANT_SIGNAL,
			 __ATOMIC_RELEASE);
	race_fd = bad.cq;
	__atomic_store_n(&race_armed, 1, __ATOMIC_RELEASE);
	idx = push_pair(&bad);
	/* The bad SYNC completes, the worker checks POLLOUT: ours fires,
	 * and the worker's write(2) follows before it does anything else. */
	t0 = t_now();
	while (!__atomic_load_n(&race_fired, __ATOMIC_ACQUIRE)) {
		if (t_now() - t0 > 5)
			FAIL("the interposed poll() never saw the worker's "
			     "POLLOUT check (signalling changed?)");
		sched_yield();
	}
	ASSERT_TRUE(ring_prod_done_upto(&bad.p, idx));

	/* Can the good VM still get a SYNC through? Spin up to STALL_MS. */
	t0 = t_now();
	idx = push_pair(&good);
	r = ring_prod_wait(&good.p, idx, (uint64_t)STALL_MS * 1000000, 0);
	if (r == 0)
		FAIL("known bug not reproduced (good SYNC done in %.1f ms): "
		     "fixed? Then make this a regression test that requires "
		     "it, and update docs/SECURITY.md section 4",
		     (t_now() - t0) * 1e3);
	ASSERT_ERR(-ETIMEDOUT, r);
	printf("# KNOWN BUG reproduced: one VMM saturating its completion "
	       "eventfd after the worker's POLLOUT check blocks the worker "
	       "in write(2); another VM's SYNC waited %.0f ms and counting\n",
	       (t_now() - t0) * 1e3);
	fflush(stdout);

	/* The bad VM reads its eventfd: the worker goes on at once. */
	ASSERT_EQ(read(bad.cq, &v, sizeof(v)), (ssize_t)sizeof(v));
	ASSERT_OK(ring_prod_wait(&good.p, idx, 5000000000ull, 0));
	core_service_free(svc);
	vmring_free(&good);
	vmring_free(&bad);
}

TEST_HARNESS_MAIN
