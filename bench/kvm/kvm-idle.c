/* SPDX-License-Identifier: MIT */
/*
 * smmu-bench --vcpu kvm --idle MS -n N (issue 15, "1000 attached idle
 * software vCMDQs"): mode vcmdq with one KVM guest (1 VM x 1 vCPU) whose
 * page shares its host SMMU's worker with N more enabled, idle vCMDQ
 * queues (pages of up to KVMI_QUEUES_PER_PAGE queues, one vSMMU each,
 * every page write-protected through a userfaultfd as the guest's is).
 * The harness thread paces the guest in three phases:
 *  1. active: KVMI_ACTIVE batches (-k K: K) as in the normal run (round
 *     trip p50);
 *  2. transitions: KVMI_TRANSITIONS batches, each made ready only once
 *     the worker has armed the guest's page (its queues idle for poll_us
 *     and the protection set): the guest's PROD store faults and the
 *     round trip includes the whole idle-to-active path; then
 *     KVMI_LONG_TRANSITIONS more, each KVMI_LONG_GAP_NS after the arm
 *     (the worker's CPU, idle meanwhile, has left its halt-poll window
 *     and halted: a guest kernel's cpuidle haltpoll polls ~200 us);
 *  3. idle: once every page is armed, MS ms without a command, over which
 *     the service's CPU time is taken; then one batch, whose round trip
 *     is "the first command after MS ms idle".
 * The guest waits for the harness outside its round trip, so each round
 * trip is the guest's PROD store to CONS past its SYNC, as in the table.
 *
 * Threads: kvmi_setup()/kvmi_teardown()/kvmi_collect() on the main
 * thread; kvmi_harness() is the harness thread's body in this mode and
 * owns struct kvmi_run's results until the join.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <smmu-offload/vcmdq.h>

#include "bench/kvm/kvm-bench_i.h"
#include "core/core.h"

#define KVMI_QUEUES_PER_PAGE 125u /* 8 pages for 1000 */
#define KVMI_QLOG2 4 /* 16 entries per idle queue */
#define KVMI_RAM_SIZE (KVMI_QUEUES_PER_PAGE * 0x1000u)
#define KVMI_ACTIVE 20000u
/* Batches ready ahead in the active phase: few enough that the drain
 * before the transitions ends quickly on a loaded machine (< KG_NSLOTS). */
#define KVMI_AHEAD 63u
#define KVMI_TRANSITIONS 200u
#define KVMI_LONG_TRANSITIONS 50u
#define KVMI_LONG_GAP_NS 10000000 /* 10 ms */
#define KVMI_NAP_NS 20000
#define KVMI_WAIT_NS (UINT64_C(5) * 1000000000u) /* any one wait */

/* One idle page: its vSMMU, guest RAM, page, uffd (main thread). */
struct kvmi_page {
	uint32_t vsmmu, id;
	int ram_fd, page_fd, uffd;
	void *page;
	unsigned int nq;
};

struct kvmi_run {
	struct kvmi_page *pages;
	unsigned int npages;
	/* round trips of the transitions right after the arm, and of
	 * those KVMI_LONG_GAP_NS after it, ns */
	struct core_hist trans, trans_long;
	uint64_t active_p50, first_ns, idle_ns, svc_cpu_ns, passes, sleeps;
	uint64_t faults0, faults1; /* the guest page's, before/after */
	int rc;
	char err[160];
};

static int memfd_sized(const char *name, uint64_t size, unsigned int seals)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) || fcntl(fd, F_ADD_SEALS, seals)) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

/* The VMM's side of one idle page, as kvm-vcmdq.c does it for the guest's,
 * and the guest driver's enable of each queue (CONFIG.EN, STATUS). */
static int page_setup(struct kvmb_run *run, struct kvmi_page *p)
{
	struct core_vsmmu_spec spec = { .iommufd = -1 };
	struct uffdio_api api = { .api = UFFD_API,
				  .features = UFFD_FEATURE_WP_HUGETLBFS_SHMEM };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_WP };
	int r;

	r = core_vsmmu_create(run->svc, "smmu0", &spec, &p->vsmmu);
	if (r)
		return r;
	p->ram_fd = memfd_sized("idle-ram", KVMI_RAM_SIZE, F_SEAL_SHRINK);
	if (p->ram_fd < 0)
		return p->ram_fd;
	p->page_fd = memfd_sized("idle-page", SMMU_VCMDQ_FILE_SIZE,
				 F_SEAL_SHRINK | F_SEAL_GROW);
	if (p->page_fd < 0)
		return p->page_fd;
	p->page = mmap(NULL, SMMU_VCMDQ_FILE_SIZE, PROT_READ | PROT_WRITE,
		       MAP_SHARED, p->page_fd, 0);
	if (p->page == MAP_FAILED) {
		p->page = NULL;
		return -errno;
	}
	r = core_gmem_add(run->svc, p->vsmmu, p->ram_fd, 0, 0, KVMI_RAM_SIZE);
	if (!r)
		r = core_vcmdq_attach(run->svc, p->vsmmu, p->page_fd, p->nq,
				      SMMU_VCMDQ_VERSION, 0, -1, &p->id);
	for (unsigned int l = 0; !r && l < p->nq; l++) {
		r = core_vcmdq_set_base(run->svc, p->id, l,
					smmu_vcmdq_base((uint64_t)l * 0x1000,
							KVMI_QLOG2));
		if (!r)
			r = core_vcmdq_set_ready(run->svc, p->id, l, true);
		__atomic_store_n(&smmu_vcmdq_regs(p->page, l)->config,
				 SMMU_VCMDQ_CONFIG_EN, __ATOMIC_RELEASE);
	}
	if (r)
		return r;
	p->uffd = (int)syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (p->uffd < 0)
		return -errno;
	reg.range.start = (uint64_t)(uintptr_t)p->page;
	reg.range.len = SMMU_VCMDQ_PAGE0_SIZE;
	if (ioctl(p->uffd, UFFDIO_API, &api) ||
	    ioctl(p->uffd, UFFDIO_REGISTER, &reg))
		return -errno;
	return core_vcmdq_set_uffd(run->svc, p->id, p->uffd,
				   (uint64_t)(uintptr_t)p->page);
}

int kvmi_setup(struct kvmb_run *run, char *err, size_t errlen)
{
	unsigned int n = run->o->idle_queues;
	struct kvmi_run *ir;
	int r = 0;

	ir = calloc(1, sizeof(*ir));
	if (!ir)
		return -ENOMEM;
	run->idle = ir;
	core_hist_init(&ir->trans);
	core_hist_init(&ir->trans_long);
	ir->npages = (n + KVMI_QUEUES_PER_PAGE - 1) / KVMI_QUEUES_PER_PAGE;
	ir->pages = calloc(ir->npages ? ir->npages : 1, sizeof(*ir->pages));
	if (!ir->pages)
		return -ENOMEM;
	for (unsigned int i = 0; i < ir->npages; i++) {
		ir->pages[i].ram_fd = ir->pages[i].page_fd = -1;
		ir->pages[i].uffd = -1;
	}
	for (unsigned int i = 0; i < ir->npages && !r; i++) {
		struct kvmi_page *p = &ir->pages[i];

		p->nq = n - i * KVMI_QUEUES_PER_PAGE < KVMI_QUEUES_PER_PAGE ?
				n - i * KVMI_QUEUES_PER_PAGE :
				KVMI_QUEUES_PER_PAGE;
		r = page_setup(run, p);
		if (r)
			snprintf(err, errlen, "idle vCMDQ page %u: %s", i,
				 strerror(-r));
	}
	return r;
}

void kvmi_teardown(struct kvmb_run *run)
{
	struct kvmi_run *ir = run->idle;

	if (!ir)
		return;
	for (unsigned int i = 0; ir->pages && i < ir->npages; i++) {
		struct kvmi_page *p = &ir->pages[i];

		if (p->id && run->svc)
			core_vcmdq_detach(run->svc, p->id);
		if (p->page)
			munmap(p->page, SMMU_VCMDQ_FILE_SIZE);
		if (p->uffd >= 0)
			close(p->uffd);
		if (p->page_fd >= 0)
			close(p->page_fd);
		if (p->ram_fd >= 0)
			close(p->ram_fd);
	}
	free(ir->pages);
	free(ir);
	run->idle = NULL;
}

/* ---- the harness thread in this mode -------------------------------------- */

static void nap(long ns)
{
	struct timespec ts = { 0, ns };

	nanosleep(&ts, NULL);
}

/* Is vCMDQ @id's page write-protected now? Its faults in *@ret_faults. */
static bool armed(struct kvmb_run *run, uint32_t id, uint64_t *ret_faults)
{
	struct core_vcmdq_stats st;

	if (core_vcmdq_stats(run->svc, id, &st))
		return false;
	if (ret_faults)
		*ret_faults = st.faults;
	return st.armed;
}

/* Wait until every page (the guest's, and the idle ones) is armed. */
static int wait_all_armed(struct kvmb_run *run, struct kvmi_run *ir)
{
	uint64_t t0 = kvmb_now_ns();
	bool all;

	do {
		all = armed(run, kvmv_id(&run->vms[0]), NULL);
		for (unsigned int i = 0; all && i < ir->npages; i++)
			all = armed(run, ir->pages[i].id, NULL);
		if (all)
			return 0;
		nap(KVMI_NAP_NS);
	} while (kvmb_now_ns() - t0 < KVMI_WAIT_NS && !kvmv_stopping(run));
	return -ETIMEDOUT;
}

/* The guest's round trip of batch @b (its slot's KG_S_LAT), ns. */
static uint64_t slot_lat(struct kvmb_vcpu *vc, uint64_t b)
{
	uint64_t lat;

	memcpy(&lat,
	       vc->vm->kvm.ram + KG_VCPU(vc->c.idx) + KG_SLOTS +
		       (size_t)(b % KG_NSLOTS) * KG_SLOT_SIZE + KG_S_LAT,
	       sizeof(lat));
	return kvmb_ticks_ns(vc->vm->run, lat);
}

/* Make one batch ready (lock-step) and wait until the guest completed it.
 * Return: its round trip (ns), or 0 on a timeout. */
static uint64_t one_batch(struct kvmb_run *run, struct kvmb_vcpu *vc)
{
	uint64_t b = vc->ready, t0 = kvmb_now_ns(), lat;

	kvmv_harness_step(vc, true);
	if (vc->ready != b + 1)
		return 0;
	while (__atomic_load_n(kvmb_ram64(&vc->vm->kvm,
					  KG_VCPU(vc->c.idx) + KG_V_BATCHES),
			       __ATOMIC_ACQUIRE) <= b) {
		if (kvmb_now_ns() - t0 > KVMI_WAIT_NS || kvmv_stopping(run))
			return 0;
		nap(KVMI_NAP_NS);
	}
	lat = slot_lat(vc, b); /* before the step refills the slot */
	kvmv_harness_step(vc, false);
	return lat;
}

static void fail(struct kvmi_run *ir, int rc, const char *what)
{
	if (ir->rc)
		return;
	ir->rc = rc;
	snprintf(ir->err, sizeof(ir->err), "--idle: %s: %s", what,
		 strerror(-rc));
}

void kvmi_harness(struct kvmb_run *run)
{
	struct kvmi_run *ir = run->idle;
	struct kvmb_vcpu *vc = &run->vms[0].vc[0];
	uint64_t c0, c1, s0, s1, p0, p1, t0, lat;
	struct timespec ts;

	/* 1. Active, as the normal run paces it. */
	uint64_t active = run->o->idle_active ? run->o->idle_active :
						KVMI_ACTIVE;

	kvmv_set_ahead(run, KVMI_AHEAD);
	while (vc->done_seen < active && !kvmv_stopping(run))
		if (!kvmv_harness_step(vc, true))
			nap(KVMI_NAP_NS);
	ir->active_p50 = core_hist_quantile(&vc->lat, 0.5);
	kvmv_set_ahead(run, 1);
	t0 = kvmb_now_ns();
	while (vc->done_seen < vc->ready && !kvmv_stopping(run) &&
	       kvmb_now_ns() - t0 < KVMI_WAIT_NS)
		if (!kvmv_harness_step(vc, false))
			nap(KVMI_NAP_NS);
	/* 2. Transitions: each batch only once the guest's page is armed. */
	for (unsigned int i = 0;
	     i < KVMI_TRANSITIONS + KVMI_LONG_TRANSITIONS && !ir->rc; i++) {
		t0 = kvmb_now_ns();
		while (!armed(run, kvmv_id(&run->vms[0]), NULL)) {
			if (kvmb_now_ns() - t0 > KVMI_WAIT_NS ||
			    kvmv_stopping(run)) {
				fail(ir, -ETIMEDOUT, "guest page never armed");
				break;
			}
			nap(KVMI_NAP_NS);
		}
		if (i >= KVMI_TRANSITIONS)
			nap(KVMI_LONG_GAP_NS);
		lat = ir->rc ? 0 : one_batch(run, vc);
		if (!ir->rc && !lat)
			fail(ir, -ETIMEDOUT, "transition batch");
		if (lat)
			core_hist_add(i < KVMI_TRANSITIONS ? &ir->trans :
							     &ir->trans_long,
				      lat);
	}
	/* 3. Every page armed, then the idle stretch, then one command. */
	if (!ir->rc && wait_all_armed(run, ir))
		fail(ir, -ETIMEDOUT, "pages never all armed");
	if (!ir->rc) {
		armed(run, kvmv_id(&run->vms[0]), &ir->faults0);
		c0 = kvmb_svc_cpu(run, &s0, &p0);
		t0 = kvmb_now_ns();
		ts.tv_sec = run->o->idle_ms / 1000;
		ts.tv_nsec = (long)(run->o->idle_ms % 1000) * 1000000;
		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
		c1 = kvmb_svc_cpu(run, &s1, &p1);
		ir->idle_ns = kvmb_now_ns() - t0;
		ir->svc_cpu_ns = c1 - c0;
		ir->sleeps = s1 - s0;
		ir->passes = p1 - p0;
		ir->first_ns = one_batch(run, vc);
		if (!ir->first_ns)
			fail(ir, -ETIMEDOUT, "first batch after idle");
		armed(run, kvmv_id(&run->vms[0]), &ir->faults1);
	}
	/* R_STOP: the guest polls KG_VM_STOP while it waits for a batch. */
	__atomic_store_n(kvmb_ram64(&run->vms[0].kvm, KG_VM + KG_VM_STOP), 1,
			 __ATOMIC_RELEASE);
}

void kvmi_collect(struct kvmb_run *run, struct kvmb_result *res)
{
	struct kvmi_run *ir = run->idle;

	if (!ir)
		return;
	res->idle.queues = run->o->idle_queues;
	res->idle.pages = ir->npages;
	res->idle.active_p50 = ir->active_p50;
	res->idle.trans_n = ir->trans.count;
	res->idle.trans_p50 = core_hist_quantile(&ir->trans, 0.5);
	res->idle.trans_p90 = core_hist_quantile(&ir->trans, 0.9);
	res->idle.trans_max = ir->trans.max;
	res->idle.long_n = ir->trans_long.count;
	res->idle.long_p50 = core_hist_quantile(&ir->trans_long, 0.5);
	res->idle.long_p90 = core_hist_quantile(&ir->trans_long, 0.9);
	res->idle.first_ns = ir->first_ns;
	res->idle.first_faulted = ir->faults1 > ir->faults0;
	res->idle.idle_ns = ir->idle_ns;
	res->idle.svc_cpu_ns = ir->svc_cpu_ns;
	res->idle.passes = ir->passes;
	res->idle.sleeps = ir->sleeps;
	if (ir->rc && !res->errmsg[0]) {
		snprintf(res->errmsg, sizeof(res->errmsg), "%s", ir->err);
		res->err = ir->rc;
	}
}
