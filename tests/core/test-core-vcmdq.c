/* SPDX-License-Identifier: MIT */
/*
 * core: the software vCMDQ end to end on the sim backend. The test plays
 * the VMM (guest RAM memfd, register-page memfd, BASE and gate forwarded)
 * and the guest's tegra241-cmdqv driver (queue init, CONFIG.EN handshake,
 * entries and PROD stored straight into shared memory, CONS polled, the
 * ILL skip routine and GERRORN acknowledgement). The oracle is the sim's
 * TLB: a translation filled before a command must be gone once its
 * CMD_SYNC is seen complete in CONS. The guest's predicates are its own
 * (index/wrap arithmetic of the driver), never the service's.
 *
 * Waits poll shared memory (the guest cannot do otherwise: no signal
 * exists for CONS) with a backstop deadline against a hang.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <smmu-offload/ring-prod.h>
#include <smmu-offload/vcmdq.h>

#include "cmdq/cmdq.h"
#include "core/core.h"
#include "core/core_test.h"
#include "iommufd/sim.h"
#include "common/barrier.h"
#include "tests/harness.h"

#define WAIT_MS 10000
#define RAM_GPA 0x80000000ULL
#define RAM_SIZE (4ULL << 20)

struct guest {
	int ram_fd, page_fd, irq_fd;
	uint8_t *ram, *page;
	uint32_t id; /* vCMDQ id */
	uint32_t prod[SMMU_VCMDQ_MAX_QUEUES];
	uint32_t log2[SMMU_VCMDQ_MAX_QUEUES];
	uint64_t qgpa[SMMU_VCMDQ_MAX_QUEUES];
};

static int memfd_sealed(const char *name, uint64_t size, unsigned int seals)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);

	ASSERT_GE(fd, 0);
	ASSERT_OK(ftruncate(fd, (off_t)size) ? -errno : 0);
	ASSERT_OK(fcntl(fd, F_ADD_SEALS, seals) ? -errno : 0);
	return fd;
}

static void *map_fd(int fd, uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	ASSERT_TRUE(p != MAP_FAILED);
	return p;
}

/* The event loop of the next svc_new() (the uffd tests run both). */
static enum core_loop_kind test_loop = CORE_LOOP_AUTO;

static struct core_service *svc_new(struct iofd_sim_config *sim,
				    enum core_issue_mode mode)
{
	static const char *const names[] = { "smmu0" };
	struct core_config cfg = {
		.backend = { .kind = "sim", .sim = sim },
		.hsmmu_names = names,
		.n_hsmmu = 1,
		.issue_mode = mode,
		.loop = test_loop,
	};
	struct core_service *svc = NULL;

	iofd_sim_config_default(sim);
	sim->wait = IOFD_SIM_WAIT_NONE;
	ASSERT_OK(core_service_new(&cfg, &svc));
	return svc;
}

static uint32_t vsmmu_new(struct core_service *svc)
{
	struct core_vsmmu_spec spec = { .iommufd = -1 };
	uint32_t id = 0;

	ASSERT_OK(core_vsmmu_create(svc, "smmu0", &spec, &id));
	return id;
}

/* The VMM's side: guest RAM registered, the page attached. */
static void guest_new(struct core_service *svc, uint32_t vs, unsigned int nq,
		      struct guest *g)
{
	memset(g, 0, sizeof(*g));
	g->ram_fd = memfd_sealed("ram", RAM_SIZE, F_SEAL_SHRINK);
	g->page_fd = memfd_sealed("page", SMMU_VCMDQ_FILE_SIZE,
				  F_SEAL_SHRINK | F_SEAL_GROW);
	g->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_GE(g->irq_fd, 0);
	g->ram = map_fd(g->ram_fd, RAM_SIZE);
	g->page = map_fd(g->page_fd, SMMU_VCMDQ_FILE_SIZE);
	ASSERT_OK(core_gmem_add(svc, vs, g->ram_fd, 0, RAM_GPA, RAM_SIZE));
	ASSERT_OK(core_vcmdq_attach(svc, vs, g->page_fd, nq, SMMU_VCMDQ_VERSION,
				    0, g->irq_fd, &g->id));
}

static void guest_free(struct guest *g)
{
	munmap(g->ram, RAM_SIZE);
	munmap(g->page, SMMU_VCMDQ_FILE_SIZE);
	close(g->ram_fd);
	close(g->page_fd);
	close(g->irq_fd);
}

static struct smmu_vcmdq_regs *regs(struct guest *g, unsigned int l)
{
	return smmu_vcmdq_regs(g->page, l);
}

static struct smmu_ring_entry *gq(struct guest *g, unsigned int l)
{
	return (struct smmu_ring_entry *)(g->ram + (g->qgpa[l] - RAM_GPA));
}

static void pause_us(long us)
{
	struct timespec ts = { 0, us * 1000 };

	nanosleep(&ts, NULL);
}

/* Poll @reg until (value & @mask) == @want; false at the backstop. */
static bool wait_reg(uint32_t *reg, uint32_t mask, uint32_t want)
{
	for (int i = 0; i < WAIT_MS * 20; i++) {
		if ((__atomic_load_n(reg, __ATOMIC_ACQUIRE) & mask) == want)
			return true;
		pause_us(50);
	}
	return false;
}

/*
 * The driver's queue init and enable (facts 2.3): CONS and PROD cleared
 * while disabled, BASE (trapped, forwarded by the VMM), the gate, then
 * CONFIG.EN and STATUS.ENABLED polled.
 */
static void guest_enable(struct core_service *svc, struct guest *g,
			 unsigned int l, uint64_t qgpa, uint32_t log2)
{
	g->qgpa[l] = qgpa;
	g->log2[l] = log2;
	g->prod[l] = 0;
	__atomic_store_n(&regs(g, l)->cons, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&regs(g, l)->prod, 0, __ATOMIC_RELEASE);
	ASSERT_OK(core_vcmdq_set_base(svc, g->id, l,
				      smmu_vcmdq_base(qgpa, log2)));
	ASSERT_OK(core_vcmdq_set_ready(svc, g->id, l, true));
	__atomic_store_n(&regs(g, l)->config, SMMU_VCMDQ_CONFIG_EN,
			 __ATOMIC_RELEASE);
	ASSERT_TRUE(wait_reg(&regs(g, l)->status, SMMU_VCMDQ_STATUS_ENABLED,
			     SMMU_VCMDQ_STATUS_ENABLED));
}

static uint32_t hw(const struct guest *g, unsigned int l, uint32_t pos)
{
	return pos & ((2u << g->log2[l]) - 1);
}

/* Stores @c at PROD and publishes it; returns the entry's position. */
static uint32_t guest_put(struct guest *g, unsigned int l, struct cmdq_cmd c)
{
	uint32_t pos = g->prod[l];

	cmdq_cmd_to_le(&c, &gq(g, l)[pos & ((1u << g->log2[l]) - 1)]);
	g->prod[l] = pos + 1;
	/* G_PROD: the entry before PROD. */
	__atomic_store_n(&regs(g, l)->prod, hw(g, l, g->prod[l]),
			 __ATOMIC_RELEASE);
	return pos;
}

static struct cmdq_cmd sync_none(void)
{
	return cmdq_build_sync(0, 3, 0xf, 0, 0);
}

/*
 * The driver's CONS poll for its CMD_SYNC at @pos: done once CONS is past
 * it (wrap-aware, as queue_consumed() in Linux). Returns the CONS.ERR
 * seen (0: completed).
 */
static uint32_t guest_wait(struct guest *g, unsigned int l, uint32_t pos)
{
	uint32_t size = 1u << g->log2[l];

	for (int i = 0; i < WAIT_MS * 20; i++) {
		uint32_t c =
			__atomic_load_n(&regs(g, l)->cons, __ATOMIC_ACQUIRE);
		uint32_t err = (c & SMMU_VCMDQ_CONS_ERR_MASK) >>
			       SMMU_VCMDQ_CONS_ERR_SHIFT;
		uint32_t idx = c & (size - 1), wrp = c & size;
		uint32_t pidx = pos & (size - 1), pwrp = pos & size;

		if ((wrp == pwrp && idx > pidx) || (wrp != pwrp && idx <= pidx))
			return 0;
		if (err)
			return err;
		pause_us(20);
	}
	ASSERT_TRUE(!"CONS never passed the CMD_SYNC");
	return 0;
}

static uint32_t cons_idx(struct guest *g, unsigned int l)
{
	return __atomic_load_n(&regs(g, l)->cons, __ATOMIC_ACQUIRE) &
	       ((2u << g->log2[l]) - 1);
}

/* Acknowledge GERROR and wait for the service to clear CONS.ERR. */
static void guest_ack(struct guest *g, unsigned int l)
{
	__atomic_store_n(&regs(g, l)->gerrorn,
			 __atomic_load_n(&regs(g, l)->gerror, __ATOMIC_ACQUIRE),
			 __ATOMIC_RELEASE);
	ASSERT_TRUE(wait_reg(&regs(g, l)->cons, SMMU_VCMDQ_CONS_ERR_MASK, 0));
}

/* The driver's error routine: replace the entry at CONS with a CMD_SYNC
 * and acknowledge GERROR through GERRORN. */
static void guest_skip(struct guest *g, unsigned int l)
{
	uint32_t c = cons_idx(g, l);
	struct cmdq_cmd s = sync_none();

	cmdq_cmd_to_le(&s, &gq(g, l)[c & ((1u << g->log2[l]) - 1)]);
	guest_ack(g, l);
}

static bool irq_wait(struct guest *g)
{
	struct pollfd p = { .fd = g->irq_fd, .events = POLLIN };
	uint64_t v;

	if (poll(&p, 1, WAIT_MS) != 1)
		return false;
	return read(g->irq_fd, &v, sizeof(v)) == sizeof(v) && v > 0;
}

/* ---- commands complete; 0 stale after a completed CMD_SYNC ------------ */

static void run_oracle(enum core_issue_mode mode)
{
	struct iofd_sim_config sim;
	struct core_service *svc = svc_new(&sim, mode);
	uint32_t vs = vsmmu_new(svc);
	struct iofd_viommu *v = core_vsmmu_viommu(svc, vs);
	struct core_vcmdq_stats st;
	struct guest g;
	uint32_t stale = 0;

	guest_new(svc, vs, 2, &g);
	/* A small queue: the run wraps it many times. */
	guest_enable(svc, &g, 0, RAM_GPA + 0x10000, 4);
	guest_enable(svc, &g, 1, RAM_GPA + 0x20000, 8);
	for (uint32_t i = 0; i < 3000; i++) {
		unsigned int l = i & 1;
		uint16_t asid = (uint16_t)(1 + i % 200);
		uint64_t va = 0x100000 + ((uint64_t)i << 12);
		uint32_t s;

		ASSERT_OK(iofd_sim_tlb_fill(v, asid, va));
		guest_put(&g, l,
			  cmdq_build_tlbi_nh_va(asid, 0, va, true, NULL));
		s = guest_put(&g, l, sync_none());
		ASSERT_EQ(guest_wait(&g, l, s), 0u);
		stale += iofd_sim_tlb_lookup(v, asid, va);
	}
	EXPECT_EQ(stale, 0u);
	ASSERT_OK(core_vcmdq_stats(svc, g.id, &st));
	EXPECT_EQ(st.entries, 6000u);
	EXPECT_EQ(st.syncs, 3000u);
	EXPECT_EQ(st.state[0], CORE_VQ_ON);
	ASSERT_OK(core_vcmdq_detach(svc, g.id));
	ASSERT_ERR(-ENOENT, core_vcmdq_detach(svc, g.id));
	ASSERT_OK(core_vsmmu_destroy(svc, vs));
	core_service_free(svc);
	guest_free(&g);
}

TEST(oracle_inline)
{
	run_oracle(CORE_ISSUE_INLINE);
}

TEST(oracle_async)
{
	run_oracle(CORE_ISSUE_ASYNC);
}

/* ---- ILL halts only that queue; GERRORN resumes ---------------------- */

static void run_ill(enum core_issue_mode mode)
{
	struct iofd_sim_config sim;
	struct core_service *svc = svc_new(&sim, mode);
	uint32_t vs = vsmmu_new(svc);
	struct iofd_viommu *v = core_vsmmu_viommu(svc, vs);
	struct core_vcmdq_stats st;
	struct ring_prod rp;
	int rfd, db, cq;
	uint32_t rid, bad, s, vdev, idx = 0;
	struct smmu_ring_entry e;
	struct cmdq_cmd c;
	struct guest g;

	/* A ring on the same vSMMU keeps going too. */
	ASSERT_OK(ring_memfd_create(7, &rfd));
	db = eventfd(0, EFD_CLOEXEC);
	cq = eventfd(0, EFD_CLOEXEC);
	ASSERT_OK(ring_prod_init(&rp, rfd, db, cq));
	ASSERT_OK(core_ring_attach(svc, vs, rfd, db, cq, &rid));
	ASSERT_OK(core_device_attach(svc, vs, 0x100, 0x8, &vdev));

	guest_new(svc, vs, 2, &g);
	guest_enable(svc, &g, 0, RAM_GPA + 0x10000, 6);
	guest_enable(svc, &g, 1, RAM_GPA + 0x20000, 6);
	guest_put(&g, 0, cmdq_build_tlbi_nh_asid(1, 0));
	/* Not accepted on a guest-owned VINTF: CONS.ERR = ILL there. */
	bad = guest_put(&g, 0, cmdq_build_cfgi_ste(0x8, true));
	s = guest_put(&g, 0, sync_none());
	ASSERT_EQ(guest_wait(&g, 0, s), SMMU_VCMDQ_CERROR_ILL);
	EXPECT_EQ(cons_idx(&g, 0), hw(&g, 0, bad));
	ASSERT_TRUE(irq_wait(&g));
	EXPECT_NE(regs(&g, 0)->gerror & SMMU_VCMDQ_GERROR_CMDQ_ERR,
		  regs(&g, 0)->gerrorn & SMMU_VCMDQ_GERROR_CMDQ_ERR);
	EXPECT_EQ(smmu_vcmdq_svc(g.page)->err_map[0] & 1u, 1u);

	/* Queue 1 and the ring are unaffected. */
	ASSERT_OK(iofd_sim_tlb_fill(v, 9, 0x9000));
	guest_put(&g, 1, cmdq_build_tlbi_nh_va(9, 0, 0x9000, true, NULL));
	ASSERT_EQ(guest_wait(&g, 1, guest_put(&g, 1, sync_none())), 0u);
	EXPECT_FALSE(iofd_sim_tlb_lookup(v, 9, 0x9000));
	c = cmdq_build_sync(0, 3, 0xf, 0, 0);
	cmdq_cmd_to_le(&c, &e);
	ASSERT_OK(ring_prod_push(&rp, &e, 1, &idx));
	ASSERT_OK(ring_prod_publish(&rp));
	ASSERT_OK(ring_prod_wait(&rp, idx, 20000, WAIT_MS));

	/* An ATC_INV naming an unattached vSID is ILL too; attached is fine. */
	guest_put(&g, 1, cmdq_build_atc_inv(0x8, false, 0, false, 0x4000, 0));
	ASSERT_EQ(guest_wait(&g, 1, guest_put(&g, 1, sync_none())), 0u);
	bad = guest_put(&g, 1,
			cmdq_build_atc_inv(0x9, false, 0, false, 0x4000, 0));
	ASSERT_EQ(guest_wait(&g, 1, guest_put(&g, 1, sync_none())),
		  SMMU_VCMDQ_CERROR_ILL);
	EXPECT_EQ(cons_idx(&g, 1), hw(&g, 1, bad));

	/* The skip routine and the acknowledgement resume queue 0 at CONS. */
	guest_skip(&g, 0);
	ASSERT_EQ(guest_wait(&g, 0, s), 0u);
	ASSERT_EQ(guest_wait(&g, 0, guest_put(&g, 0, sync_none())), 0u);
	EXPECT_EQ(regs(&g, 0)->cons & SMMU_VCMDQ_CONS_ERR_MASK, 0u);

	ASSERT_OK(core_vcmdq_stats(svc, g.id, &st));
	EXPECT_EQ(st.halts[0], 2u);
	EXPECT_EQ(st.state[0], CORE_VQ_ON);
	EXPECT_EQ(st.state[1], CORE_VQ_HALTED);
	EXPECT_EQ(st.err[1], SMMU_VCMDQ_CERROR_ILL);
	EXPECT_GE(st.signals, 2u);
	/* List's view: the worker's copies agree with what the guest saw. */
	{
		struct core_vq_info q[2];
		unsigned int nq = 0;

		ASSERT_OK(core_vcmdq_queues(svc, g.id, q, 2, &nq));
		ASSERT_EQ(nq, 2u);
		EXPECT_EQ(q[0].state, CORE_VQ_ON);
		EXPECT_EQ(q[0].err, 0u);
		EXPECT_EQ(q[0].cons, regs(&g, 0)->cons);
		EXPECT_EQ(q[0].prod, regs(&g, 0)->prod);
		EXPECT_EQ(q[1].state, CORE_VQ_HALTED);
		EXPECT_EQ(q[1].err, SMMU_VCMDQ_CERROR_ILL);
		EXPECT_EQ(q[1].cons, hw(&g, 1, bad));
		EXPECT_TRUE(q[1].ready && q[1].base_set);
		EXPECT_EQ(q[1].base_gpa, RAM_GPA + 0x20000);
		EXPECT_EQ(q[1].log2size, 6u);
	}

	/* The vSMMU goes with its ring and vCMDQ attached: it drains both. */
	ASSERT_OK(core_vsmmu_destroy(svc, vs));
	ASSERT_ERR(-ENOENT, core_vcmdq_stats(svc, g.id, &st));
	{
		struct core_vq_info q[2];
		struct core_gmem_info gi[1];
		unsigned int n;

		ASSERT_ERR(-ENOENT, core_vcmdq_queues(svc, g.id, q, 2, &n));
		ASSERT_ERR(-ENOENT, core_list_gmem(svc, vs, gi, 1, &n));
	}
	core_service_free(svc);
	ring_prod_done(&rp);
	close(rfd);
	close(db);
	close(cq);
	guest_free(&g);
}

TEST(ill_halts_one_queue_inline)
{
	run_ill(CORE_ISSUE_INLINE);
}

TEST(ill_halts_one_queue_async)
{
	run_ill(CORE_ISSUE_ASYNC);
}

/* ---- a backend error halts at the culprit ---------------------------- */

TEST(backend_error_halts_at_culprit)
{
	struct iofd_sim_config sim;
	struct core_service *svc;
	struct guest g;
	uint32_t vs, a, s;

	iofd_sim_config_default(&sim);
	sim.wait = IOFD_SIM_WAIT_NONE;
	sim.fail_at_cmd = 3;
	sim.fail_errno = EIO;
	{
		static const char *const names[] = { "smmu0" };
		struct core_config cfg = {
			.backend = { .kind = "sim", .sim = &sim },
			.hsmmu_names = names,
			.n_hsmmu = 1,
		};

		ASSERT_OK(core_service_new(&cfg, &svc));
	}
	vs = vsmmu_new(svc);
	guest_new(svc, vs, 1, &g);
	guest_enable(svc, &g, 0, RAM_GPA, 5);
	guest_put(&g, 0, cmdq_build_tlbi_nh_asid(1, 0));
	guest_put(&g, 0, cmdq_build_tlbi_nh_asid(2, 0));
	ASSERT_EQ(guest_wait(&g, 0, guest_put(&g, 0, sync_none())), 0u);
	a = guest_put(&g, 0, cmdq_build_tlbi_nh_asid(3, 0)); /* 3rd: fails */
	guest_put(&g, 0, cmdq_build_tlbi_nh_asid(4, 0));
	s = guest_put(&g, 0, sync_none());
	ASSERT_EQ(guest_wait(&g, 0, s), SMMU_VCMDQ_CERROR_ILL);
	EXPECT_EQ(cons_idx(&g, 0), hw(&g, 0, a));
	ASSERT_TRUE(irq_wait(&g));
	/* Acknowledged without a skip: the entry is taken again (the sim
	 * fails only once) and the queue completes. */
	guest_ack(&g, 0);
	ASSERT_EQ(guest_wait(&g, 0, s), 0u);
	core_service_free(svc);
	guest_free(&g);
}

/* ---- refusals ------------------------------------------------------------ */

TEST(refusals)
{
	struct iofd_sim_config sim;
	struct core_service *svc = svc_new(&sim, CORE_ISSUE_INLINE);
	uint32_t vs = vsmmu_new(svc), id;
	struct guest g;
	int unsealed, efd;

	guest_new(svc, vs, 4, &g);
	/* Overlapping guest RAM; unsealed memfd; a second page; bad args. */
	ASSERT_ERR(-EEXIST, core_gmem_add(svc, vs, g.ram_fd, 0,
					  RAM_GPA + RAM_SIZE - 4096, 8192));
	unsealed = memfd_create("x", MFD_CLOEXEC);
	ASSERT_OK(ftruncate(unsealed, 1 << 20));
	ASSERT_ERR(-EPERM,
		   core_gmem_add(svc, vs, unsealed, 0, 0x10000000, 1 << 20));
	ASSERT_ERR(-EPERM, core_vcmdq_attach(svc, vs, unsealed, 1,
					     SMMU_VCMDQ_VERSION, 0, -1, &id));
	ASSERT_ERR(-EEXIST, core_vcmdq_attach(svc, vs, g.page_fd, 1,
					      SMMU_VCMDQ_VERSION, 0, -1, &id));
	ASSERT_ERR(-EPROTONOSUPPORT,
		   core_vcmdq_attach(svc, vs, g.page_fd, 1,
				     SMMU_VCMDQ_VERSION_WORD(2, 0), 0, -1,
				     &id));
	ASSERT_ERR(-EOPNOTSUPP,
		   core_vcmdq_attach(svc, vs, g.page_fd, 1, SMMU_VCMDQ_VERSION,
				     1, -1, &id));
	ASSERT_ERR(-EINVAL, core_vcmdq_attach(svc, vs, g.page_fd, 0,
					      SMMU_VCMDQ_VERSION, 0, -1, &id));
	efd = eventfd(0, EFD_CLOEXEC);
	ASSERT_ERR(-EBADF,
		   core_vcmdq_attach(svc, vs, g.page_fd, 1, SMMU_VCMDQ_VERSION,
				     0, unsealed, &id));
	ASSERT_ERR(-ENOENT, core_vcmdq_attach(svc, 999, g.page_fd, 1,
					      SMMU_VCMDQ_VERSION, 0, efd, &id));
	ASSERT_ERR(-EINVAL, core_vcmdq_set_base(svc, g.id, 4, 0));
	ASSERT_ERR(-ENOENT, core_vcmdq_set_base(svc, 999, 0, 0));
	/* A queue latched in a region pins it. */
	guest_enable(svc, &g, 0, RAM_GPA, 4);
	ASSERT_ERR(-EBUSY, core_gmem_remove(svc, vs, RAM_GPA, RAM_SIZE));
	__atomic_store_n(&regs(&g, 0)->config, 0, __ATOMIC_RELEASE);
	ASSERT_TRUE(
		wait_reg(&regs(&g, 0)->status, SMMU_VCMDQ_STATUS_ENABLED, 0));
	ASSERT_OK(core_gmem_remove(svc, vs, RAM_GPA, RAM_SIZE));
	/* A BASE outside guest RAM: CMDQ_INIT_ERR, the queue stays off. */
	ASSERT_OK(
		core_vcmdq_set_base(svc, g.id, 1, smmu_vcmdq_base(RAM_GPA, 4)));
	ASSERT_OK(core_vcmdq_set_ready(svc, g.id, 1, true));
	__atomic_store_n(&regs(&g, 1)->config, 1, __ATOMIC_RELEASE);
	ASSERT_TRUE(wait_reg(&regs(&g, 1)->gerror,
			     SMMU_VCMDQ_GERROR_CMDQ_INIT_ERR,
			     SMMU_VCMDQ_GERROR_CMDQ_INIT_ERR));
	EXPECT_EQ(regs(&g, 1)->status, 0u);
	close(unsealed);
	close(efd);
	core_service_free(svc);
	guest_free(&g);
}

/* ---- detach while busy ------------------------------------------------- */

struct busy {
	struct guest *g;
	unsigned int stop; /* atomic */
	uint32_t done;
};

/* A guest that keeps its queue full of TLBIs, never waiting. */
static void *busy_main(void *arg)
{
	struct busy *b = arg;
	struct guest *g = b->g;
	uint32_t size = 1u << g->log2[0];

	while (!__atomic_load_n(&b->stop, __ATOMIC_ACQUIRE)) {
		uint32_t c = cons_idx(g, 0);
		uint32_t used = (g->prod[0] - c) & (2 * size - 1);

		if (used < size) {
			guest_put(g, 0,
				  cmdq_build_tlbi_nh_asid(
					  (uint16_t)(g->prod[0] & 0xff), 0));
			b->done++;
		} else {
			sched_yield();
		}
	}
	return NULL;
}

TEST(detach_and_destroy_while_busy)
{
	struct iofd_sim_config sim;
	struct core_service *svc = svc_new(&sim, CORE_ISSUE_ASYNC);
	uint32_t vs = vsmmu_new(svc), vs2 = vsmmu_new(svc);
	struct core_vcmdq_stats st;
	struct guest g, g2;
	struct busy b = { .g = &g }, b2 = { .g = &g2 };
	pthread_t t, t2;

	guest_new(svc, vs, 1, &g);
	guest_new(svc, vs2, 1, &g2);
	guest_enable(svc, &g, 0, RAM_GPA, 6);
	guest_enable(svc, &g2, 0, RAM_GPA, 6);
	ASSERT_OK(pthread_create(&t, NULL, busy_main, &b));
	ASSERT_OK(pthread_create(&t2, NULL, busy_main, &b2));
	/* Until the worker has taken a good many of each. */
	for (int i = 0; i < WAIT_MS * 20; i++) {
		struct core_vcmdq_stats s2;
		struct core_gmem_info gi[CORE_GMEM_MAX_REGIONS];
		struct core_vq_info q;
		unsigned int n;

		ASSERT_OK(core_vcmdq_stats(svc, g.id, &st));
		ASSERT_OK(core_vcmdq_stats(svc, g2.id, &s2));
		/* List's reads race the busy worker (TSan checks them). */
		ASSERT_OK(core_vcmdq_queues(svc, g.id, &q, 1, &n));
		ASSERT_EQ(q.state, CORE_VQ_ON);
		ASSERT_OK(
			core_list_gmem(svc, vs, gi, CORE_GMEM_MAX_REGIONS, &n));
		ASSERT_EQ(n, 1u);
		if (st.entries > 1000 && s2.entries > 1000)
			break;
		pause_us(50);
	}
	ASSERT_GT(st.entries, 1000u);
	ASSERT_OK(core_vcmdq_detach(svc, g.id));
	ASSERT_OK(core_vsmmu_destroy(svc, vs2));
	__atomic_store_n(&b.stop, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&b2.stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	pthread_join(t2, NULL);
	ASSERT_OK(core_vsmmu_destroy(svc, vs));
	core_service_free(svc);
	guest_free(&g);
	guest_free(&g2);
}

/* ---- a hostile guest beside a good one -------------------------------- */

struct scribbler {
	struct guest *g;
	unsigned int stop; /* atomic */
	uint64_t seed;
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Any value anywhere in its page and its queue. */
static void *scribble_main(void *arg)
{
	struct scribbler *sc = arg;
	uint32_t *page = (uint32_t *)sc->g->page;
	uint64_t *q = (uint64_t *)(void *)sc->g->ram;

	while (!__atomic_load_n(&sc->stop, __ATOMIC_ACQUIRE)) {
		uint64_t r = rnd(&sc->seed);

		if (r & 1)
			__atomic_store_n(&page[(r >> 8) % 64],
					 (uint32_t)(r >> 32), __ATOMIC_RELEASE);
		else
			__atomic_store_n(&q[(r >> 8) % 4096],
					 rnd(&sc->seed) & 0xffffffffff0000ffULL,
					 __ATOMIC_RELAXED);
	}
	return NULL;
}

TEST(hostile_guest_beside_good_one)
{
	struct iofd_sim_config sim;
	struct core_service *svc = svc_new(&sim, CORE_ISSUE_INLINE);
	uint32_t bad_vs = vsmmu_new(svc), good_vs = vsmmu_new(svc);
	struct iofd_viommu *v = core_vsmmu_viommu(svc, good_vs);
	struct scribbler sc = { .seed = 0x9e3779b97f4a7c15ULL };
	struct guest bad, good;
	uint32_t stale = 0;
	pthread_t t;

	guest_new(svc, bad_vs, 2, &bad);
	guest_new(svc, good_vs, 1, &good);
	guest_enable(svc, &bad, 0, RAM_GPA, 8);
	guest_enable(svc, &bad, 1, RAM_GPA + 0x1000, 4);
	guest_enable(svc, &good, 0, RAM_GPA, 6);
	sc.g = &bad;
	ASSERT_OK(pthread_create(&t, NULL, scribble_main, &sc));
	for (uint32_t i = 0; i < 2000; i++) {
		uint64_t va = 0x200000 + ((uint64_t)i << 12);

		ASSERT_OK(iofd_sim_tlb_fill(v, 7, va));
		guest_put(&good, 0,
			  cmdq_build_tlbi_nh_va(7, 0, va, true, NULL));
		ASSERT_EQ(guest_wait(&good, 0,
				     guest_put(&good, 0, sync_none())),
			  0u);
		stale += iofd_sim_tlb_lookup(v, 7, va);
		/* The scribbled gate and base too, now and then. */
		if (!(i % 100)) {
			ASSERT_OK(core_vcmdq_set_base(svc, bad.id, i / 100 % 2,
						      rnd(&sc.seed)));
			ASSERT_OK(
				core_vcmdq_set_ready(svc, bad.id, 0, i & 256));
		}
	}
	__atomic_store_n(&sc.stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	EXPECT_EQ(stale, 0u);
	ASSERT_OK(core_vsmmu_destroy(svc, bad_vs));
	core_service_free(svc);
	guest_free(&bad);
	guest_free(&good);
}

/* ---- wake-up by userfaultfd write-protect ------------------------------ */

/*
 * The test is the VMM: its mapping of the page (the one the guest
 * writes through here) is registered with a uffd in WP mode and given to
 * the service. Each round waits until the service armed the protection
 * (its queue went idle), then the guest stores PROD through the mapping:
 * the store faults and stalls until the worker un-protects; the command
 * must complete every time (a lost wake-up hangs the guest here).
 */
static void wait_armed(struct core_service *svc, uint32_t id,
		       struct core_vcmdq_stats *st)
{
	ASSERT_OK(core_vcmdq_stats(svc, id, st));
	for (int k = 0; k < WAIT_MS * 10 && !st->armed; k++) {
		pause_us(100);
		ASSERT_OK(core_vcmdq_stats(svc, id, st));
	}
	ASSERT_TRUE(st->armed);
}

static void run_uffd_wakes(void);

TEST_TIMEOUT(uffd_wp_wakes_idle_queue, 120)
{
	run_uffd_wakes();
}

TEST_TIMEOUT(uffd_wp_wakes_idle_queue_epoll, 120)
{
	test_loop = CORE_LOOP_EPOLL;
	run_uffd_wakes();
}

static void run_uffd_wakes(void)
{
	struct iofd_sim_config sim;
	struct core_service *svc = svc_new(&sim, CORE_ISSUE_INLINE);
	uint32_t vs = vsmmu_new(svc);
	struct core_vcmdq_stats st;
	struct uffdio_register reg;
	struct uffdio_api api;
	struct guest g;
	int uffd;

	guest_new(svc, vs, 2, &g);
	guest_enable(svc, &g, 0, RAM_GPA, 5);
	guest_enable(svc, &g, 1, RAM_GPA + 0x1000, 5);
	/* In-process stores are user-mode faults: USER_MODE_ONLY is enough
	 * (KVM's would need a full uffd: docs/PERFORMANCE.md). */
	uffd = (int)syscall(SYS_userfaultfd,
			    O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (uffd < 0)
		SKIP("userfaultfd unavailable here");
	memset(&api, 0, sizeof(api));
	api.api = UFFD_API;
	api.features = UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
	if (ioctl(uffd, UFFDIO_API, &api))
		SKIP("no UFFD_FEATURE_WP_HUGETLBFS_SHMEM");
	memset(&reg, 0, sizeof(reg));
	reg.range.start = (uint64_t)(uintptr_t)g.page;
	reg.range.len = SMMU_VCMDQ_PAGE0_SIZE;
	reg.mode = UFFDIO_REGISTER_MODE_WP;
	ASSERT_OK(ioctl(uffd, UFFDIO_REGISTER, &reg) ? -errno : 0);
	ASSERT_ERR(-EBADF, core_vcmdq_set_uffd(svc, g.id, g.irq_fd,
					       (uint64_t)(uintptr_t)g.page));
	ASSERT_ERR(-EINVAL, core_vcmdq_set_uffd(svc, g.id, uffd, 1));
	ASSERT_OK(core_vcmdq_set_uffd(svc, g.id, uffd,
				      (uint64_t)(uintptr_t)g.page));
	ASSERT_ERR(-EALREADY, core_vcmdq_set_uffd(svc, g.id, uffd,
						  (uint64_t)(uintptr_t)g.page));
	for (unsigned int i = 0; i < 100; i++) {
		unsigned int l = i & 1;

		/* Until armed (the queues went idle since the last command). */
		wait_armed(svc, g.id, &st);
		guest_put(&g, l, cmdq_build_tlbi_nh_asid(1, 0));
		ASSERT_EQ(guest_wait(&g, l, guest_put(&g, l, sync_none())), 0u);
	}
	ASSERT_OK(core_vcmdq_stats(svc, g.id, &st));
	EXPECT_GE(st.faults, 100u);
	EXPECT_GE(st.arms, 100u);
	EXPECT_EQ(st.syncs, 100u);
	/*
	 * Stores at random moments around the arming (the queue goes idle
	 * 50 us after its last command): a store between the worker's last
	 * look and the protection must be seen by the look after arming.
	 */
	{
		uint64_t seed = 0x2545f4914f6cdd1dULL;

		for (unsigned int i = 0; i < 2000; i++) {
			unsigned int l = i & 1;
			uint32_t s;

			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			if (seed & 1)
				pause_us((long)(seed >> 8) % 150);
			s = guest_put(&g, l, sync_none());
			ASSERT_EQ(guest_wait(&g, l, s), 0u);
		}
	}
	/* Detached while armed: nothing stays protected (the store below
	 * would stall for ever otherwise). */
	wait_armed(svc, g.id, &st);
	ASSERT_OK(core_vcmdq_detach(svc, g.id));
	__atomic_store_n(&regs(&g, 0)->prod, 0, __ATOMIC_RELEASE);
	core_service_free(svc);
	close(uffd);
	guest_free(&g);
}

/* ---- 1000 idle queues ----------------------------------------------------- */

/*
 * 8 vSMMUs x 125 enabled queues with nothing to do: once they went idle,
 * the worker makes no pass (it only runs its idle timer) until a guest
 * writes; then that command completes. The worker's CPU time over the
 * idle stretch is printed (the figure docs state), not asserted.
 */
TEST_TIMEOUT(idle_queues_cost_no_pass, 120)
{
	struct iofd_sim_config sim;
	struct core_service *svc = svc_new(&sim, CORE_ISSUE_INLINE);
	struct core_hsmmu_stats h0, h1;
	struct guest g[8];
	uint32_t vs[8];
	uint64_t t0, t1;
	struct timespec ts;

	for (int i = 0; i < 8; i++) {
		vs[i] = vsmmu_new(svc);
		guest_new(svc, vs[i], 125, &g[i]);
		for (unsigned int l = 0; l < 125; l++)
			guest_enable(svc, &g[i], l, RAM_GPA + 0x1000 * l, 4);
	}
	/* Until every queue left the active set (a pass-free stretch of 20
	 * idle checks), then measure over 200 more. */
	ASSERT_OK(core_hsmmu_stats(svc, 0, &h0));
	for (int i = 0; i < WAIT_MS; i++) {
		uint64_t c0 = h0.vcmdq_idle_checks, p0 = h0.passes;

		while (h0.vcmdq_idle_checks < c0 + 20) {
			pause_us(500);
			ASSERT_OK(core_hsmmu_stats(svc, 0, &h0));
		}
		if (h0.passes == p0)
			break;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
	do {
		pause_us(1000);
		ASSERT_OK(core_hsmmu_stats(svc, 0, &h1));
	} while (h1.vcmdq_idle_checks < h0.vcmdq_idle_checks + 200);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t1 = (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
	EXPECT_EQ(h1.passes, h0.passes);
	printf("# 1000 idle queues: %.2f%% of a core (%llu ns worker CPU in "
	       "%.1f ms, %llu idle checks)\n",
	       100.0 * (double)(h1.worker_cpu_ns - h0.worker_cpu_ns) /
		       (double)(t1 - t0),
	       (unsigned long long)(h1.worker_cpu_ns - h0.worker_cpu_ns),
	       (double)(t1 - t0) / 1e6,
	       (unsigned long long)(h1.vcmdq_idle_checks -
				    h0.vcmdq_idle_checks));
	/* The next command on any of them is seen and completes. */
	ASSERT_EQ(guest_wait(&g[5], 77, guest_put(&g[5], 77, sync_none())), 0u);
	core_service_free(svc);
	for (int i = 0; i < 8; i++)
		guest_free(&g[i]);
}

/*
 * The same 1000 idle queues, each page write-protected through a uffd:
 * once all are armed the worker has no timer and sleeps until a store.
 * Over a 200 ms stretch: no worker pass, no sleep ended, no idle check
 * (the printed CPU time is the figure docs state). Then a store on one
 * page completes.
 */
TEST_TIMEOUT(idle_queues_with_uffd_wake_nothing, 120)
{
	struct iofd_sim_config sim;
	struct core_service *svc = svc_new(&sim, CORE_ISSUE_INLINE);
	struct core_hsmmu_stats h0, h1;
	struct core_vcmdq_stats st;
	struct guest g[8];
	int uffd[8];
	uint32_t vs[8];
	struct timespec ts = { 0, 200 * 1000 * 1000 };

	for (int i = 0; i < 8; i++) {
		struct uffdio_register reg;
		struct uffdio_api api;

		vs[i] = vsmmu_new(svc);
		guest_new(svc, vs[i], 125, &g[i]);
		for (unsigned int l = 0; l < 125; l++)
			guest_enable(svc, &g[i], l, RAM_GPA + 0x1000 * l, 4);
		uffd[i] = (int)syscall(SYS_userfaultfd,
				       O_CLOEXEC | O_NONBLOCK |
					       UFFD_USER_MODE_ONLY);
		if (uffd[i] < 0)
			SKIP("userfaultfd unavailable here");
		memset(&api, 0, sizeof(api));
		api.api = UFFD_API;
		api.features = UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
		if (ioctl(uffd[i], UFFDIO_API, &api))
			SKIP("no UFFD_FEATURE_WP_HUGETLBFS_SHMEM");
		memset(&reg, 0, sizeof(reg));
		reg.range.start = (uint64_t)(uintptr_t)g[i].page;
		reg.range.len = SMMU_VCMDQ_PAGE0_SIZE;
		reg.mode = UFFDIO_REGISTER_MODE_WP;
		ASSERT_OK(ioctl(uffd[i], UFFDIO_REGISTER, &reg) ? -errno : 0);
		ASSERT_OK(core_vcmdq_set_uffd(svc, g[i].id, uffd[i],
					      (uint64_t)(uintptr_t)g[i].page));
	}
	for (int i = 0; i < 8; i++)
		wait_armed(svc, g[i].id, &st);
	ASSERT_OK(core_hsmmu_stats(svc, 0, &h0));
	nanosleep(&ts, NULL); /* the stretch measured, not a wait */
	ASSERT_OK(core_hsmmu_stats(svc, 0, &h1));
	EXPECT_EQ(h1.passes, h0.passes);
	EXPECT_EQ(h1.sleeps, h0.sleeps);
	EXPECT_EQ(h1.vcmdq_idle_checks, h0.vcmdq_idle_checks);
	printf("# 1000 idle queues, uffd-armed: %llu ns worker CPU in 200 ms\n",
	       (unsigned long long)(h1.worker_cpu_ns - h0.worker_cpu_ns));
	ASSERT_EQ(guest_wait(&g[3], 42, guest_put(&g[3], 42, sync_none())), 0u);
	ASSERT_OK(core_vcmdq_stats(svc, g[3].id, &st));
	EXPECT_GE(st.faults, 1u);
	core_service_free(svc);
	for (int i = 0; i < 8; i++) {
		close(uffd[i]);
		guest_free(&g[i]);
	}
}

TEST_HARNESS_MAIN
