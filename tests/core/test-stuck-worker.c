/* SPDX-License-Identifier: MIT */
/*
 * A stuck worker (a backend call that does not return) degrades its own
 * host SMMU only (core.h, "Control calls and deadlines"): control calls
 * about it fail with -ETIMEDOUT after the deadline, then at once; it is
 * reported in the stats; calls about other host SMMUs and statistics go
 * on; what was detached or destroyed meanwhile is released when it
 * answers again, and what was created meanwhile is not left behind.
 *
 * The stuck backend call: the sim in BLOCK mode sleeps in
 * clock_nanosleep(); this executable interposes it (core and iommufd are
 * linked statically, so their calls bind to ours) and, once armed, holds
 * smmu0's worker thread there until the test opens the gate.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <smmu-offload/ring-prod.h>

#include "cmdq/cmdq.h"
#include "core/core.h"
#include "iommufd/sim.h"
#include "tests/lib/tlib-core.h"

/* Long enough that a loaded machine (or TSan) never misses it by being
 * slow; only the held worker does. */
#define CTL_TIMEOUT_MS 2000
#define WAIT_S 20 /* generous: only a hang exceeds it */

static unsigned int gate_armed; /* atomic */
static sem_t gate_entered, gate_open;

int clock_nanosleep(clockid_t clk, int flags, const struct timespec *req,
		    struct timespec *rem)
{
	char name[16] = "";

	if (__atomic_load_n(&gate_armed, __ATOMIC_ACQUIRE) &&
	    !pthread_getname_np(pthread_self(), name, sizeof(name)) &&
	    !strcmp(name, "smmu-smmu0") &&
	    __atomic_exchange_n(&gate_armed, 0, __ATOMIC_ACQ_REL)) {
		sem_post(&gate_entered);
		while (sem_wait(&gate_open) < 0)
			;
	}
	if (syscall(SYS_clock_nanosleep, clk, flags, req, rem) < 0)
		return errno;
	return 0;
}

/* db blocking, cq non-blocking (a VMM's choice each). */
static void vmring_new(struct core_service *svc, uint32_t vs,
		       struct tlib_ring *r)
{
	tlib_ring_new(r, 6, 0);
	ASSERT_EQ(fcntl(r->cq, F_SETFL, O_NONBLOCK), 0);
	ASSERT_OK(_tlib_core_ring_attach(svc, vs, r));
}

static uint32_t push_pair(struct tlib_ring *r)
{
	return tlib_ring_push_pair(r, cmdq_build_tlbi_nh_asid(1, 0));
}

static struct core_service *svc_new(struct iofd_sim_config *sim,
				    unsigned int ctl_timeout_ms)
{
	struct core_config cfg = {
		TLIB_CORE_CFG(sim, 2),
		.ctl_timeout_ms = ctl_timeout_ms,
	};

	iofd_sim_config_default(sim);
	sim->wait = IOFD_SIM_WAIT_BLOCK;
	return tlib_svc_new(&cfg);
}

/* Holds smmu0's worker in the backend: push a SYNC, wait until it is in. */
static uint32_t make_stuck(struct tlib_ring *r)
{
	uint32_t idx;

	sem_init(&gate_entered, 0, 0);
	sem_init(&gate_open, 0, 0);
	__atomic_store_n(&gate_armed, 1, __ATOMIC_RELEASE);
	idx = push_pair(r);
	if (tlib_sem_wait(&gate_entered, WAIT_S * 1000))
		FAIL("smmu0's worker never reached the backend");
	return idx;
}

static void stats_of(struct core_service *svc, unsigned int i,
		     struct core_hsmmu_stats *hs)
{
	ASSERT_OK(core_hsmmu_stats(svc, i, hs));
}

/* smmu1 serves as if nothing happened. */
static void other_hsmmu_works(struct core_service *svc, struct tlib_ring *r)
{
	struct core_vsmmu_spec spec = { .iommufd = -1 };
	struct core_hsmmu_stats hs;
	uint32_t vs, vdev, idx, ids[8], n;

	ASSERT_OK(core_vsmmu_create(svc, "smmu1", &spec, &vs));
	ASSERT_OK(core_device_attach(svc, vs, 0x300, 0x3, &vdev));
	ASSERT_OK(core_list_vsmmus(svc, ids, 8, &n));
	ASSERT_OK(core_device_detach(svc, vs, 0x3));
	ASSERT_OK(core_vsmmu_destroy(svc, vs));
	idx = push_pair(r);
	ASSERT_OK(ring_prod_wait(&r->p, idx, 1000000, WAIT_S * 1000));
	stats_of(svc, 1, &hs);
	ASSERT_FALSE(hs.stuck);
	ASSERT_EQ(hs.ctl_timeouts, 0);
}

TEST_TIMEOUT(stuck_worker_degrades_its_own_hsmmu_only, 120)
{
	struct core_vsmmu_spec spec = { .iommufd = -1 };
	struct iofd_sim_config sim;
	struct core_service *svc;
	struct core_service_stats ss;
	struct core_hsmmu_stats hs;
	struct core_ring_stats rs;
	struct core_device_info dev[4];
	struct tlib_ring ra, rc;
	uint32_t vs_a, vs_b, vs_c, vdev, idx, n;
	int fds0 = tlib_fds(0), fds_attached;
	double t0;

	svc = svc_new(&sim, CTL_TIMEOUT_MS);
	ASSERT_OK(core_vsmmu_create(svc, "smmu0", &spec, &vs_a));
	ASSERT_OK(core_vsmmu_create(svc, "smmu0", &spec, &vs_b));
	ASSERT_OK(core_vsmmu_create(svc, "smmu1", &spec, &vs_c));
	vmring_new(svc, vs_a, &ra);
	vmring_new(svc, vs_c, &rc);
	fds_attached = tlib_fds(0);

	idx = make_stuck(&ra);

	/* The first call waits its deadline, then reports the worker. */
	ASSERT_ERR(-ETIMEDOUT,
		   core_device_attach(svc, vs_b, 0x200, 0x9, &vdev));
	stats_of(svc, 0, &hs);
	ASSERT_TRUE(hs.stuck);
	ASSERT_EQ(hs.ctl_timeouts, 1);
	/* Later ones fail at once (and are counted). */
	ASSERT_ERR(-ETIMEDOUT, core_ring_resume(svc, ra.id));
	ASSERT_ERR(-ETIMEDOUT,
		   core_device_attach(svc, vs_b, 0x201, 0xa, &vdev));
	stats_of(svc, 0, &hs);
	ASSERT_EQ(hs.ctl_timeouts, 3);
	ASSERT_OK(core_service_stats(svc, &ss));
	ASSERT_EQ(ss.workers_stuck, 1);
	/* Listings do not wait for the worker. */
	ASSERT_OK(core_list_devices(svc, vs_b, dev, 4, &n));
	ASSERT_EQ(n, 0);

	other_hsmmu_works(svc, &rc);

	/* Detach and destroy: the ids go at once, the objects stay held. */
	ASSERT_ERR(-ETIMEDOUT, core_ring_detach(svc, ra.id));
	ASSERT_ERR(-ENOENT, core_ring_stats(svc, ra.id, &rs));
	ASSERT_ERR(-ETIMEDOUT, core_vsmmu_destroy(svc, vs_a));
	ASSERT_ERR(-ENOENT, core_vsmmu_destroy(svc, vs_a));
	ASSERT_OK(core_service_stats(svc, &ss));
	ASSERT_EQ(ss.n_rings, 1);
	ASSERT_EQ(ss.rings_alloc, 2); /* ra's fds are still open */
	ASSERT_EQ(tlib_fds(0), fds_attached);

	other_hsmmu_works(svc, &rc);

	/* It recovers: the held SYNC completes (the detach drained it),
	 * the worker answers, ra is released. */
	sem_post(&gate_open);
	ASSERT_OK(ring_prod_wait(&ra.p, idx, 1000000, WAIT_S * 1000));
	for (t0 = t_now();; sched_yield()) {
		ASSERT_OK(core_service_stats(svc, &ss));
		stats_of(svc, 0, &hs);
		if ((!hs.stuck && ss.rings_alloc == 1) || t_now() - t0 > WAIT_S)
			break;
	}
	ASSERT_FALSE(hs.stuck);
	ASSERT_EQ(ss.rings_alloc, 1);
	ASSERT_EQ(ss.workers_stuck, 0);
	ASSERT_EQ(ss.n_vsmmus, 2);
	ASSERT_EQ(hs.ctl_timeouts, 5); /* kept: a counter */
	ASSERT_EQ(tlib_fds(0), fds_attached - 3); /* ra's memfd, doorbell,
						    completion dups */
	/* The attaches that timed out left nothing behind. */
	ASSERT_OK(core_list_devices(svc, vs_b, dev, 4, &n));
	ASSERT_EQ(n, 0);
	ASSERT_OK(core_device_attach(svc, vs_b, 0x200, 0x9, &vdev));
	ASSERT_OK(core_ring_stats(svc, rc.id, &rs));

	ASSERT_OK(core_service_free(svc));
	tlib_ring_free(&ra);
	tlib_ring_free(&rc);
	ASSERT_EQ(tlib_fds(0), fds0);
}

/*
 * core_service_free() with a worker that never comes back returns within
 * its bound. Run in a child: the stuck worker is left running, and the
 * service deliberately not freed (LeakSanitizer would see that; the
 * child leaves with _exit()).
 */
TEST_TIMEOUT(service_free_returns_with_a_stuck_worker, 120)
{
	struct pollfd pfd;
	int pipefd[2], status;
	char c = 0;
	pid_t pid;

	ASSERT_EQ(pipe(pipefd), 0);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct core_vsmmu_spec spec = { .iommufd = -1 };
		struct iofd_sim_config sim;
		struct core_service *svc;
		struct tlib_ring r;
		uint32_t vs;
		char ok;

		close(pipefd[0]);
		svc = svc_new(&sim, CTL_TIMEOUT_MS);
		if (core_vsmmu_create(svc, "smmu0", &spec, &vs))
			_exit(2);
		vmring_new(svc, vs, &r);
		make_stuck(&r);
		/* It says that it left a worker behind. */
		ok = core_service_free(svc) == -ETIMEDOUT ? 'T' : 'F';
		if (write(pipefd[1], &ok, 1) != 1)
			_exit(3);
		_exit(0);
	}
	close(pipefd[1]);
	pfd = (struct pollfd){ .fd = pipefd[0], .events = POLLIN };
	if (poll(&pfd, 1, WAIT_S * 1000) != 1) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		FAIL("core_service_free() did not return with a stuck worker");
	}
	ASSERT_EQ(read(pipefd[0], &c, 1), 1);
	ASSERT_EQ(c, 'T');
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);
	close(pipefd[0]);
}

/*
 * Control calls from many threads at once, racing each other on the same
 * objects (an attach against a destroy of its vSMMU, detaches of the same
 * ring): no lock is held across the waits any more, so the references
 * and the worker's checks must keep every object alive exactly as long
 * as needed. Afterwards nothing is left: no ring holds fds, no fd leaks
 * (and, under the sanitizers, no memory).
 */
struct racer {
	struct core_service *svc;
	unsigned int seed;
	uint32_t *shared_vs; /* atomic: a vSMMU every racer attaches to */
};

static void *racer_main(void *arg)
{
	struct racer *rc = arg;
	struct core_vsmmu_spec spec = { .iommufd = -1 };
	const char *hs = rc->seed % 2 ? "smmu1" : "smmu0";

	for (int i = 0; i < 150; i++) {
		uint32_t vs, other, ring, vdev;
		int memfd, db, r;

		if (core_vsmmu_create(rc->svc, hs, &spec, &vs))
			return (void *)1;
		/* Publish ours, take someone else's: attach to it while its
		 * owner may be destroying it. */
		other = __atomic_exchange_n(rc->shared_vs, vs,
					    __ATOMIC_ACQ_REL);
		if (ring_memfd_create(4, &memfd))
			return (void *)2;
		db = eventfd(0, EFD_CLOEXEC);
		r = core_ring_attach(rc->svc, other ? other : vs, memfd, db, -1,
				     &ring);
		if (r && r != -ENOENT)
			return (void *)3;
		if (!r) {
			r = core_ring_detach(rc->svc, ring);
			if (r && r != -ENOENT)
				return (void *)4;
		}
		r = core_device_attach(rc->svc, other ? other : vs,
				       0x1000 + rc->seed, 0x10 + rc->seed,
				       &vdev);
		if (r && r != -ENOENT && r != -EEXIST)
			return (void *)5;
		if (other) {
			r = core_vsmmu_destroy(rc->svc, other);
			if (r && r != -ENOENT)
				return (void *)6;
		}
		close(memfd);
		close(db);
	}
	return NULL;
}

TEST_TIMEOUT(concurrent_control_calls, 240)
{
	struct iofd_sim_config sim;
	struct core_service *svc;
	struct core_service_stats ss;
	struct racer rc[4];
	pthread_t th[4];
	uint32_t shared = 0, ids[1024], n;
	int fds0 = tlib_fds(0);
	void *ret;

	svc = svc_new(&sim, 60000);
	for (unsigned int i = 0; i < 4; i++) {
		rc[i] = (struct racer){ svc, i, &shared };
		ASSERT_EQ(pthread_create(&th[i], NULL, racer_main, &rc[i]), 0);
	}
	for (unsigned int i = 0; i < 4; i++) {
		ASSERT_EQ(pthread_join(th[i], &ret), 0);
		ASSERT_NULL(ret);
	}
	/* What is left: vSMMUs nobody destroyed, no ring. */
	ASSERT_OK(core_list_vsmmus(svc, ids, 1024, &n));
	for (uint32_t i = 0; i < n && i < 1024; i++)
		ASSERT_OK(core_vsmmu_destroy(svc, ids[i]));
	ASSERT_OK(core_service_stats(svc, &ss));
	ASSERT_EQ(ss.n_vsmmus, 0);
	ASSERT_EQ(ss.n_rings, 0);
	ASSERT_EQ(ss.rings_alloc, 0);
	ASSERT_EQ(ss.ctl_timeouts, 0);
	core_service_free(svc);
	ASSERT_EQ(tlib_fds(0), fds0);
}

TEST_HARNESS_MAIN
