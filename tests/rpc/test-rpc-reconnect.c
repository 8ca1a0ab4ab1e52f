/* SPDX-License-Identifier: MIT */
/*
 * smmu_client_reconnect(): smmu-offloadd is SIGKILLed with a guest SYNC
 * published but not yet consumed, restarted on the same socket, and the
 * client library alone brings the VMM back: it reconnects, re-creates the
 * vSMMU, the device and the ring on the same memfd, and the new service
 * completes the pending SYNC from the consumer index in shared memory.
 * The ids the VMM holds keep working. With no service, the call gives up
 * after its timeout. The software vCMDQ comes back too: guest memory, the
 * register page, the queue's BASE and ready gate, the userfaultfd (a guest
 * store stalled on the dead service's write protection completes), and an
 * unacknowledged command error stays until the guest acknowledges it.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <smmu-offload/client.h>
#include <smmu-offload/ring-prod.h>
#include <smmu-offload/vcmdq.h>

#include "cmdq/cmdq.h"
#include "tests/harness.h"
#include "tests/lib/tlib.h"

FIXTURE(rc)
{
	struct tlib_daemon d;
	struct smmu_client *c;
	struct tlib_ring r;
};

FIXTURE_SETUP(rc)
{
	tlib_daemon_init(&self->d, tlib_daemon_quiet);
	self->r.memfd = self->r.db = self->r.cq = -1;
}

FIXTURE_TEARDOWN(rc)
{
	smmu_client_free(self->c);
	tlib_ring_free(&self->r);
	tlib_daemon_cleanup(&self->d);
}

TEST_F_TIMEOUT(rc, sigkill_restart_reconnect_completes, 60)
{
	uint32_t vs = 0, vdev = 0, rid = 0, idx;

	tlib_daemon_start(&self->d, NULL);
	struct smmu_client_hsmmu *hs = NULL;
	uint32_t n = 0;

	ASSERT_OK(smmu_client_connect(self->d.sock, "reconnect", &self->c));
	ASSERT_OK(smmu_client_list_hsmmus(self->c, &hs, &n));
	ASSERT_GE(n, 1);
	ASSERT_OK(smmu_client_vsmmu_create(self->c, hs[0].name, -1, 0, 0, &vs));
	free(hs);
	ASSERT_OK(smmu_client_device_attach(self->c, vs, 0x100, 0x8, &vdev));
	tlib_ring_new(&self->r, 6, 0);
	tlib_client_ring_attach(self->c, vs, &self->r);
	rid = self->r.id;
	idx = tlib_ring_push_pair(&self->r, cmdq_build_tlbi_nh_asid(1, 0));
	ASSERT_OK(ring_prod_wait(&self->r.p, idx, 10000, 10000));

	/* The service dies; the guest goes on publishing meanwhile. */
	tlib_daemon_kill(&self->d);
	idx = tlib_ring_push_pair(&self->r, cmdq_build_tlbi_nh_asid(2, 0));
	ASSERT_FALSE(ring_prod_done_upto(&self->r.p, idx));
	tlib_daemon_start(&self->d, NULL);

	ASSERT_OK(smmu_client_reconnect(self->c, 10000));
	/* The new instance resumes the ring where the old one stopped. */
	ASSERT_OK(ring_prod_wait(&self->r.p, idx, 10000, 10000));
	idx = tlib_ring_push_pair(&self->r, cmdq_build_tlbi_nh_asid(3, 0));
	ASSERT_OK(ring_prod_wait(&self->r.p, idx, 10000, 10000));

	/* The VMM's ids still name its objects on the new service. */
	ASSERT_ERR(-EALREADY, smmu_client_ring_resume(self->c, rid));
	ASSERT_OK(smmu_client_ring_detach(self->c, rid));
	ASSERT_OK(smmu_client_device_detach(self->c, vs, 0x8));
	ASSERT_OK(smmu_client_vsmmu_destroy(self->c, vs));
	ASSERT_ERR(-ENOENT, smmu_client_vsmmu_destroy(self->c, vs));
	tlib_daemon_stop(&self->d);
}

/* Nobody listening: retries with backoff, then gives up at the timeout. */
TEST_F_TIMEOUT(rc, no_service_times_out, 30)
{
	tlib_daemon_start(&self->d, NULL);
	ASSERT_OK(smmu_client_connect(self->d.sock, "reconnect", &self->c));
	tlib_daemon_kill(&self->d);
	ASSERT_ERR(-ETIMEDOUT, smmu_client_reconnect(self->c, 200));
	/* And it recovers once the service is back. */
	tlib_daemon_start(&self->d, NULL);
	ASSERT_OK(smmu_client_reconnect(self->c, 10000));
	tlib_daemon_stop(&self->d);
}

/* ---- software vCMDQ --------------------------------------------------- */

#define WAIT_MS 10000
#define VQ_GPA 0x40000000ULL
#define VQ_RAM (1ULL << 20)

/* A guest's vCMDQ: guest RAM, the register page (VMM mappings). */
struct vq {
	int ram, page;
	uint8_t *pm, *rm;
	struct smmu_vcmdq_regs *q;
	struct smmu_ring_entry *ents;
	uint32_t prod;
};

static void vq_new(struct vq *v)
{
	v->ram = tlib_memfd_sealed("vq", VQ_RAM, F_SEAL_SHRINK);
	v->page = tlib_memfd_sealed("vq", SMMU_VCMDQ_FILE_SIZE,
				    F_SEAL_SHRINK | F_SEAL_GROW);
	v->pm = mmap(NULL, SMMU_VCMDQ_FILE_SIZE, PROT_READ | PROT_WRITE,
		     MAP_SHARED, v->page, 0);
	v->rm = mmap(NULL, VQ_RAM, PROT_READ | PROT_WRITE, MAP_SHARED, v->ram,
		     0);
	ASSERT_TRUE(v->pm != MAP_FAILED && v->rm != MAP_FAILED);
	v->q = smmu_vcmdq_regs(v->pm, 0);
	v->ents = (struct smmu_ring_entry *)(void *)v->rm;
	v->prod = 0;
}

static void vq_free(struct vq *v)
{
	munmap(v->pm, SMMU_VCMDQ_FILE_SIZE);
	munmap(v->rm, VQ_RAM);
	close(v->ram);
	close(v->page);
}

/* The guest: @cmd into the 64-entry queue; PROD is published separately. */
static void vq_put(struct vq *v, struct cmdq_cmd cmd)
{
	v->ents[v->prod % 64] = tlib_entry(cmd);
	v->prod++;
}

static void vq_publish(struct vq *v)
{
	__atomic_store_n(&v->q->prod, v->prod & 127, __ATOMIC_RELEASE);
}

/* The VMM's setup, attach before guest memory on purpose: the replay must
 * still set the queue's BASE only once the region exists again. */
static uint32_t vq_setup(struct smmu_client *c, uint32_t vs, struct vq *v)
{
	uint32_t id;

	ASSERT_OK(smmu_client_vcmdq_attach(c, vs, v->page, 1, -1, &id));
	ASSERT_OK(smmu_client_gmem_add(c, vs, v->ram, 0, VQ_GPA, VQ_RAM));
	ASSERT_OK(smmu_client_vcmdq_set_base(c, id, 0,
					     smmu_vcmdq_base(VQ_GPA, 6)));
	ASSERT_OK(smmu_client_vcmdq_set_ready(c, id, 0, true));
	__atomic_store_n(&v->q->config, SMMU_VCMDQ_CONFIG_EN, __ATOMIC_RELEASE);
	ASSERT_TRUE(tlib_wait_u32(&v->q->status, SMMU_VCMDQ_STATUS_ENABLED,
				  SMMU_VCMDQ_STATUS_ENABLED, WAIT_MS));
	return id;
}

static void *store_prod(void *arg)
{
	vq_publish(arg); /* stalls on the write protection */
	return NULL;
}

TEST_F_TIMEOUT(rc, vcmdq_survives_restart, 60)
{
	struct smmu_client_list *l;
	struct vq v;
	uint32_t vs, id;
	pthread_t t;
	int uffd;

	vq_new(&v);
	tlib_daemon_start(&self->d, NULL);
	ASSERT_OK(smmu_client_connect(self->d.sock, "reconnect", &self->c));
	ASSERT_OK(smmu_client_vsmmu_create(self->c, "sim0", -1, 0, 0, &vs));
	id = vq_setup(self->c, vs, &v);
	vq_put(&v, cmdq_build_tlbi_nh_asid(1, 0));
	vq_put(&v, cmdq_build_sync(0, 3, 0xf, 0, 0));
	vq_publish(&v);
	ASSERT_TRUE(tlib_wait_u32(&v.q->cons, 127, v.prod & 127, WAIT_MS));
	{
		struct uffdio_api api = {
			.api = UFFD_API,
			.features = UFFD_FEATURE_WP_HUGETLBFS_SHMEM
		};
		struct uffdio_register reg = {
			.range = { .start = (uint64_t)(uintptr_t)v.pm,
				   .len = SMMU_VCMDQ_PAGE0_SIZE },
			.mode = UFFDIO_REGISTER_MODE_WP,
		};

		uffd = (int)syscall(SYS_userfaultfd,
				    O_CLOEXEC | O_NONBLOCK |
					    UFFD_USER_MODE_ONLY);
		ASSERT_GE(uffd, 0);
		ASSERT_EQ(ioctl(uffd, UFFDIO_API, &api), 0);
		ASSERT_EQ(ioctl(uffd, UFFDIO_REGISTER, &reg), 0);
		ASSERT_OK(smmu_client_vcmdq_set_uffd(
			self->c, id, uffd, (uint64_t)(uintptr_t)v.pm));
		close(uffd); /* the client keeps its own dup */
	}
	for (double dl = tlib_deadline(WAIT_MS);
	     !tlib_stat(self->c, SMMU_CLIENT_SCOPE_VCMDQ, id, "uffd_armed");)
		ASSERT_GT(tlib_left_ms(dl), 0);

	/* The service dies with the page protected; the guest's next PROD
	 * store stalls until the new instance lifts the protection. */
	tlib_daemon_kill(&self->d);
	vq_put(&v, cmdq_build_tlbi_nh_asid(2, 0));
	vq_put(&v, cmdq_build_sync(0, 3, 0xf, 0, 0));
	ASSERT_EQ(pthread_create(&t, NULL, store_prod, &v), 0);
	tlib_daemon_start(&self->d, NULL);
	ASSERT_OK(smmu_client_reconnect(self->c, 10000));
	ASSERT_EQ(pthread_join(t, NULL), 0);
	ASSERT_TRUE(tlib_wait_u32(&v.q->cons, 127, v.prod & 127, WAIT_MS));
	vq_put(&v, cmdq_build_tlbi_nh_asid(3, 0));
	vq_put(&v, cmdq_build_sync(0, 3, 0xf, 0, 0));
	vq_publish(&v);
	ASSERT_TRUE(tlib_wait_u32(&v.q->cons, 127, v.prod & 127, WAIT_MS));
	/* The new service took exactly the commands published since. */
	ASSERT_EQ(tlib_stat(self->c, SMMU_CLIENT_SCOPE_VCMDQ, id, "entries"),
		  4);
	ASSERT_EQ(tlib_stat(self->c, SMMU_CLIENT_SCOPE_VCMDQ, id, "syncs"), 2);
	ASSERT_OK(smmu_client_list(self->c, 0, &l));
	ASSERT_EQ(l->n_vcmdqs, 1);
	ASSERT_EQ(l->vcmdqs[0].nq, 1);
	ASSERT_EQ(l->vcmdqs[0].n_halted, 0);
	smmu_client_list_free(l);
	/* The caller's ids still name its objects. */
	ASSERT_ERR(-EBUSY,
		   smmu_client_gmem_remove(self->c, vs, VQ_GPA, VQ_RAM));
	ASSERT_OK(smmu_client_vcmdq_detach(self->c, id));
	ASSERT_ERR(-ENOENT, smmu_client_vcmdq_detach(self->c, id));
	ASSERT_OK(smmu_client_gmem_remove(self->c, vs, VQ_GPA, VQ_RAM));
	tlib_daemon_stop(&self->d);
	vq_free(&v);
}

/* A queue halted by a command error when the service dies is still halted
 * after the restart (GERROR != GERRORN in the page the guest reads); the
 * guest's acknowledgement resumes it on the new service. */
TEST_F_TIMEOUT(rc, vcmdq_halted_stays_halted, 60)
{
	struct smmu_client_list *l;
	struct vq v;
	uint32_t vs, id, bad;

	vq_new(&v);
	tlib_daemon_start(&self->d, NULL);
	ASSERT_OK(smmu_client_connect(self->d.sock, "reconnect", &self->c));
	ASSERT_OK(smmu_client_vsmmu_create(self->c, "sim0", -1, 0, 0, &vs));
	id = vq_setup(self->c, vs, &v);
	bad = v.prod;
	vq_put(&v, cmdq_build_cfgi_all()); /* not accepted on a vCMDQ */
	vq_put(&v, cmdq_build_sync(0, 3, 0xf, 0, 0));
	vq_publish(&v);
	ASSERT_TRUE(tlib_wait_u32(&v.q->gerror, SMMU_VCMDQ_GERROR_CMDQ_ERR,
				  SMMU_VCMDQ_GERROR_CMDQ_ERR, WAIT_MS));
	ASSERT_EQ(v.q->cons & 127, bad & 127);

	tlib_daemon_kill(&self->d);
	tlib_daemon_start(&self->d, NULL);
	ASSERT_OK(smmu_client_reconnect(self->c, 10000));
	/* The new worker looks at the page on its next pass. */
	for (double dl = tlib_deadline(WAIT_MS);;) {
		uint32_t halted;

		ASSERT_OK(smmu_client_list(self->c, 0, &l));
		ASSERT_EQ(l->n_vcmdqs, 1);
		halted = l->vcmdqs[0].n_halted;
		smmu_client_list_free(l);
		if (halted == 1)
			break;
		ASSERT_GT(tlib_left_ms(dl), 0);
		sched_yield();
	}
	ASSERT_EQ(v.q->cons & 127, bad & 127);
	ASSERT_EQ((v.q->cons & SMMU_VCMDQ_CONS_ERR_MASK) >>
			  SMMU_VCMDQ_CONS_ERR_SHIFT,
		  SMMU_VCMDQ_CERROR_ILL);

	/* The guest fixes the entry and acknowledges. */
	v.ents[bad % 64] = tlib_entry(cmdq_build_sync(0, 3, 0xf, 0, 0));
	__atomic_store_n(&v.q->gerrorn, v.q->gerror, __ATOMIC_RELEASE);
	ASSERT_TRUE(tlib_wait_u32(&v.q->cons, 127, v.prod & 127, WAIT_MS));
	ASSERT_OK(smmu_client_list(self->c, 0, &l));
	ASSERT_EQ(l->vcmdqs[0].n_halted, 0);
	smmu_client_list_free(l);
	ASSERT_OK(smmu_client_vcmdq_detach(self->c, id));
	tlib_daemon_stop(&self->d);
	vq_free(&v);
}

TEST_HARNESS_MAIN
