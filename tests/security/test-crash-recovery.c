/* SPDX-License-Identifier: MIT */
/*
 * Crash recovery: smmu-offloadd is SIGKILLed at random points while
 * several VMMs run a strict-unmap workload through it (sim backend), and
 * restarted on the same socket. Each VMM notices the service is gone (its
 * socket hangs up), reconnects when the service is back, re-creates its
 * vSMMU, device and ring on the *same* memfd and eventfds, and goes on
 * waiting for the guest SYNC it had published: the new service instance
 * resumes the ring from the consumer index in shared memory
 * (docs/RING-PROTOCOL.md, "Service restart").
 *
 * Checked: every SYNC completes, no ring ever halts, the new instance
 * consumes exactly the entries the shared cons had not covered (nothing
 * skipped: the entries counter of the re-attached ring reaches
 * prod - cons of the moment of re-attach), and the daemon exits 0 at the
 * end (ASan/LSan builds: no leak). The recovery time (SIGKILL to every
 * VMM completing a new SYNC) is printed per crash as a TAP comment.
 *
 * The IOTLB oracle lives inside the daemon and dies with it, so it cannot
 * judge across a crash; tests/core (in process) checks it for halts and
 * resumes, and the completion rule above is what carries it over.
 *
 * Two ways to recover: the VMM re-creates its objects itself when the
 * test announces the restart (sigkill_restart_every_sync_completes), or
 * the client library does it (library_reconnect): smmu_client_reconnect()
 * retries with backoff while the daemon is down, replays every vSMMU,
 * device and ring on the same fds, and the ids the VMM got the first
 * time keep working (checked at the end: stats, detach, destroy by them).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <smmu-offload/client.h>
#include <smmu-offload/ring-prod.h>

#include "cmdq/cmdq.h"
#include "tests/harness.h"
#include "tests/lib/tlib.h"

#define N_VMS 3
#define N_CRASHES 3
#define WAIT_SLICE_MS 20

/* ---- the VMMs ------------------------------------------------------- */

/* Shared between the main thread and the VMM threads, under @lock. */
struct world {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	const char *sock;
	bool lib; /* VMMs use smmu_client_reconnect() */
	unsigned int generation; /* daemon starts so far */
	bool stop;
	unsigned int failed; /* VMM threads that hit an error */
};

struct vmm {
	struct world *w;
	unsigned int n;
	pthread_t th;
	struct smmu_client *c;
	unsigned int gen; /* the daemon generation we are attached to */
	struct tlib_ring r; /* the same memfd and eventfds all along */
	uint32_t vsmmu_id, ring_id; /* lib: the ids the library gave us */
	/* Under w->lock: */
	uint64_t syncs; /* guest SYNCs completed */
	unsigned int attached_gen;
	uint32_t redo_from, redo_to; /* shared cons/prod at re-attach */
	char why[160];
};

static void vmm_fail(struct vmm *v, const char *what, int err)
{
	pthread_mutex_lock(&v->w->lock);
	snprintf(v->why, sizeof(v->why), "vmm %u: %s: %s", v->n, what,
		 strerror(err < 0 ? -err : err));
	v->w->failed++;
	pthread_cond_broadcast(&v->w->cond);
	pthread_mutex_unlock(&v->w->lock);
}

/*
 * Wait for a daemon generation newer than the one we saw die, then
 * create our objects again on the same ring memory. 0, or -errno if the
 * daemon died again meanwhile (the caller waits for the next one).
 */
static int vmm_attach(struct vmm *v)
{
	uint32_t vs = 0, vdev = 0;
	int r;

	pthread_mutex_lock(&v->w->lock);
	while (!v->w->stop && v->w->generation == v->gen)
		pthread_cond_wait(&v->w->cond, &v->w->lock);
	v->gen = v->w->generation;
	pthread_mutex_unlock(&v->w->lock);
	if (v->w->stop)
		return -ECANCELED;

	smmu_client_free(v->c);
	v->c = NULL;
	r = smmu_client_connect(v->w->sock, "crash-vmm", &v->c);
	if (!r)
		r = smmu_client_vsmmu_create(v->c, "sim0", -1, 0, 0, &vs);
	if (!r) {
		v->vsmmu_id = vs;
		r = smmu_client_device_attach(v->c, vs, 0x100 + v->n, 0x8,
					      &vdev);
	}
	if (!r) {
		uint32_t cons =
			__atomic_load_n(&v->r.p.hdr->cons, __ATOMIC_ACQUIRE);
		uint32_t prod =
			__atomic_load_n(&v->r.p.hdr->prod, __ATOMIC_ACQUIRE);

		r = smmu_client_ring_attach(v->c, vs, v->r.memfd, v->r.db,
					    v->r.cq, &v->ring_id);
		pthread_mutex_lock(&v->w->lock);
		v->attached_gen = v->gen;
		v->redo_from = cons;
		v->redo_to = prod;
		pthread_mutex_unlock(&v->w->lock);
	}
	return r;
}

/*
 * The library way: smmu_client_reconnect() retries with backoff until the
 * service is back and has our objects again. No timeout: the test always
 * restarts the daemon (its own timeout is the backstop).
 */
static int vmm_reconnect(struct vmm *v)
{
	uint32_t cons = __atomic_load_n(&v->r.p.hdr->cons, __ATOMIC_ACQUIRE);
	uint32_t prod = __atomic_load_n(&v->r.p.hdr->prod, __ATOMIC_ACQUIRE);
	int r;

	/* Nobody consumes while the service is down: these are the values
	 * the new instance attaches with. */
	r = smmu_client_reconnect(v->c, -1);
	if (r)
		return r;
	pthread_mutex_lock(&v->w->lock);
	v->attached_gen = v->w->generation;
	v->redo_from = cons;
	v->redo_to = prod;
	pthread_mutex_unlock(&v->w->lock);
	return 0;
}

static bool service_gone(struct vmm *v)
{
	struct pollfd p = { .fd = smmu_client_fd(v->c), .events = POLLIN };

	/* The service never talks unasked: readable = EOF or reset. */
	return poll(&p, 1, 0) == 1;
}

static void *vmm_main(void *arg)
{
	struct vmm *v = arg;
	uint64_t va = 0x100000;
	int r;

	while ((r = vmm_attach(v)) && r != -ECANCELED)
		;
	while (!__atomic_load_n(&v->w->stop, __ATOMIC_ACQUIRE)) {
		struct cmdq_tlbi_range rg = { .tg = CMDQ_TG_4K, .ttl = 3 };
		struct smmu_ring_entry e[2] = {
			tlib_entry(cmdq_build_tlbi_nh_va(1, 0, va, true, &rg)),
			tlib_entry(tlib_sync_cmd()),
		};
		uint32_t first;

		va += 0x1000;
		r = ring_prod_push(&v->r.p, e, 2, &first);
		if (r) {
			vmm_fail(v, "push", r);
			return NULL;
		}
		ring_prod_publish(&v->r.p);
		/* Wait for the SYNC, reattaching as often as needed. */
		for (;;) {
			r = ring_prod_wait(&v->r.p, first + 1, 10000,
					   WAIT_SLICE_MS);
			if (!r)
				break;
			if (r != -ETIMEDOUT) {
				vmm_fail(v, "wait", r);
				return NULL;
			}
			if (__atomic_load_n(&v->w->stop, __ATOMIC_ACQUIRE))
				return NULL;
			if (!service_gone(v))
				continue;
			if (v->w->lib) {
				r = vmm_reconnect(v);
				if (r) {
					vmm_fail(v, "reconnect", r);
					return NULL;
				}
				continue;
			}
			while ((r = vmm_attach(v)) && r != -ECANCELED)
				;
			if (r == -ECANCELED)
				return NULL;
		}
		pthread_mutex_lock(&v->w->lock);
		v->syncs++;
		pthread_cond_broadcast(&v->w->cond);
		pthread_mutex_unlock(&v->w->lock);
	}
	return NULL;
}

/* Wait (under w->lock) until every VMM has @min syncs, or one failed. */
static void wait_all(struct world *w, struct vmm *v, const uint64_t *min)
{
	for (;;) {
		unsigned int ok = 0;

		for (unsigned int i = 0; i < N_VMS; i++)
			ok += v[i].syncs >= min[i];
		if (ok == N_VMS || w->failed)
			return;
		pthread_cond_wait(&w->cond, &w->lock);
	}
}

/* Also after a failed ASSERT: no daemon outlives the test. */
TLIB_DAEMON_FIXTURE(crash, tlib_daemon_quiet)

/*
 * @lib: the VMMs recover with smmu_client_reconnect() (backoff, replay
 * of their objects, stable ids) instead of re-creating by hand when the
 * test announces the restart.
 */
static void run_crashes(struct tlib_daemon *dp, bool lib)
{
	struct world w = { .lock = PTHREAD_MUTEX_INITIALIZER,
			   .cond = PTHREAD_COND_INITIALIZER,
			   .lib = lib };
	int fds_before = tlib_fds(0);
	uint64_t rs = t_seed(), min[N_VMS];
	struct vmm v[N_VMS];
	static const char *const extra[] = { "--poll-us", "20", NULL };
	double worst = 0;

	w.sock = dp->sock;
	memset(v, 0, sizeof(v));
	for (unsigned int i = 0; i < N_VMS; i++) {
		v[i].w = &w;
		v[i].n = i;
		tlib_ring_new(&v[i].r, 6, 0);
	}
	tlib_daemon_start(dp, extra);
	pthread_mutex_lock(&w.lock);
	w.generation = 1;
	pthread_mutex_unlock(&w.lock);
	for (unsigned int i = 0; i < N_VMS; i++)
		ASSERT_EQ(pthread_create(&v[i].th, NULL, vmm_main, &v[i]), 0);

	for (unsigned int k = 0; k < N_CRASHES; k++) {
		double t_kill, t_back;
		uint32_t redo = 0;

		/* Let a random amount of work happen, then crash. */
		pthread_mutex_lock(&w.lock);
		for (unsigned int i = 0; i < N_VMS; i++)
			min[i] = v[i].syncs + 1 + t_rand(&rs) % 200;
		wait_all(&w, v, min);
		pthread_mutex_unlock(&w.lock);
		ASSERT_EQ(w.failed, 0);
		tlib_daemon_kill(dp);
		t_kill = t_now();

		tlib_daemon_start(dp, extra);
		pthread_mutex_lock(&w.lock);
		w.generation++;
		for (unsigned int i = 0; i < N_VMS; i++)
			min[i] = v[i].syncs + 2; /* one may complete unseen */
		pthread_cond_broadcast(&w.cond);
		wait_all(&w, v, min);
		pthread_mutex_unlock(&w.lock);
		ASSERT_EQ(w.failed, 0);
		t_back = t_now();
		if (t_back - t_kill > worst)
			worst = t_back - t_kill;
		printf("# crash %u: every VMM completing SYNCs again %.1f ms "
		       "after SIGKILL (daemon start-up included)\n",
		       k + 1, (t_back - t_kill) * 1e3);
		fflush(stdout);
		/* Everyone is on the new instance, which redid exactly the
		 * entries the shared cons had not covered. */
		for (unsigned int i = 0; i < N_VMS; i++) {
			struct smmu_client_stats *st = NULL;
			uint64_t entries = 0;
			uint32_t from, to, gen;

			pthread_mutex_lock(&w.lock);
			gen = v[i].attached_gen;
			from = v[i].redo_from;
			to = v[i].redo_to;
			pthread_mutex_unlock(&w.lock);
			ASSERT_EQ(gen, w.generation);
			redo += to - from;
			if (lib)
				continue; /* ids are the library's: below */
			/* Our own connection: the VMM's may be mid-call. */
			{
				struct smmu_client *c = NULL;

				ASSERT_OK(smmu_client_connect(dp->sock, "check",
							      &c));
				ASSERT_OK(smmu_client_stats(
					c, SMMU_CLIENT_SCOPE_RING, v[i].ring_id,
					&st));
				ASSERT_OK(smmu_client_stats_get(st, "entries",
								&entries));
				smmu_client_stats_free(st);
				smmu_client_free(c);
			}
			EXPECT_GE(entries, (uint64_t)(to - from));
		}
		printf("# crash %u: %u entries were pending in shared memory "
		       "and done by the new instance\n",
		       k + 1, redo);
		fflush(stdout);
	}

	pthread_mutex_lock(&w.lock);
	w.stop = true;
	pthread_cond_broadcast(&w.cond);
	pthread_mutex_unlock(&w.lock);
	for (unsigned int i = 0; i < N_VMS; i++) {
		uint32_t err = 0, where = 0;

		pthread_join(v[i].th, NULL);
		if (v[i].why[0])
			fprintf(stderr, "# %s\n", v[i].why);
		EXPECT_ERR(-ENOENT,
			   ring_prod_halt_info(&v[i].r.p, &err, &where));
		EXPECT_GT(v[i].syncs, 0);
	}
	ASSERT_EQ(w.failed, 0);
	printf("# worst recovery %.1f ms over %u crashes\n", worst * 1e3,
	       N_CRASHES);
	fflush(stdout);
	for (unsigned int i = 0; i < N_VMS; i++) {
		if (lib) {
			struct smmu_client_stats *st = NULL;
			uint64_t entries = 0;

			/* The first ids still name the re-created objects. */
			ASSERT_OK(smmu_client_stats(v[i].c,
						    SMMU_CLIENT_SCOPE_RING,
						    v[i].ring_id, &st));
			ASSERT_OK(
				smmu_client_stats_get(st, "entries", &entries));
			smmu_client_stats_free(st);
			EXPECT_GT(entries, 0);
			ASSERT_OK(
				smmu_client_ring_detach(v[i].c, v[i].ring_id));
			ASSERT_OK(smmu_client_vsmmu_destroy(v[i].c,
							    v[i].vsmmu_id));
		}
		smmu_client_free(v[i].c);
		tlib_ring_free(&v[i].r);
	}
	tlib_daemon_stop(dp);
	/* The library's dups of our fds are closed again. */
	EXPECT_EQ(tlib_fds(0), fds_before);
}

TEST_F_TIMEOUT(crash, sigkill_restart_every_sync_completes, 120)
{
	run_crashes(&self->d, false);
}

TEST_F_TIMEOUT(crash, library_reconnect, 120)
{
	run_crashes(&self->d, true);
}

/*
 * smmu_client_reconnect() while no daemon runs gives up at its timeout;
 * once the daemon is back it restores the objects, and ids stay unique
 * for the caller even when the new service instance hands out an id the
 * caller already holds for another object.
 */
TEST_F_TIMEOUT(crash, reconnect_timeout_and_id_clash, 60)
{
	struct tlib_daemon *dp = &self->d;
	struct smmu_client *c = NULL;
	struct smmu_client_list *l = NULL;
	uint32_t gone = 0, vs = 0, vs2 = 0;
	double t0;

	tlib_daemon_start(dp, NULL);
	ASSERT_OK(smmu_client_connect(dp->sock, "giveup", &c));
	ASSERT_OK(smmu_client_vsmmu_create(c, "sim0", -1, 0, 0, &gone));
	ASSERT_OK(smmu_client_vsmmu_create(c, "sim0", -1, 0, 0, &vs));
	ASSERT_OK(smmu_client_vsmmu_destroy(c, gone));
	tlib_daemon_kill(dp);

	/* No service: a deadline, then -ETIMEDOUT (not before it). */
	t0 = t_now();
	ASSERT_ERR(-ETIMEDOUT, smmu_client_reconnect(c, 30));
	EXPECT_GE(t_now() - t0, 0.030 - 0.002);

	/*
	 * The service is back: the one vSMMU left is re-created; the new
	 * instance counts from 1, so it gets the id of the destroyed one.
	 */
	tlib_daemon_start(dp, NULL);
	ASSERT_OK(smmu_client_reconnect(c, -1));
	ASSERT_OK(smmu_client_list(c, 0, &l));
	ASSERT_EQ(l->n_vsmmus, 1);
	EXPECT_TRUE(l->vsmmus[0].owned);
	EXPECT_EQ(l->vsmmus[0].id, gone); /* the service's id in replies */
	smmu_client_list_free(l);
	/*
	 * The next new vSMMU gets from the service the id @vs already stands
	 * for in the caller's hands: the two must stay distinguishable.
	 */
	ASSERT_OK(smmu_client_vsmmu_create(c, "sim0", -1, 0, 0, &vs2));
	EXPECT_NE(vs2, vs);
	ASSERT_OK(smmu_client_vsmmu_destroy(c, vs));
	ASSERT_OK(smmu_client_vsmmu_destroy(c, vs2));
	ASSERT_ERR(-ENOENT, smmu_client_vsmmu_destroy(c, vs));
	smmu_client_free(c);
	tlib_daemon_stop(dp);
}

TEST_HARNESS_MAIN
