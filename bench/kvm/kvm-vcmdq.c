/* SPDX-License-Identifier: MIT */
/*
 * smmu-bench --vcpu kvm, mode vcmdq: the software Tegra241 CMDQV (issue
 * 15) on real vCPUs. The guest runs KG_PROG_VCMDQ (guest.h): the stock
 * tegra241-cmdqv driver's reset sequence, then per batch its commands into
 * its own queue in guest RAM, one PROD store into the register page and a
 * CONS poll there, neither of which exits. A batch with a command the
 * VCMDQ rejects (CFGI_CD in mixed, storm, traces) goes to the SMMU CMDQ
 * instead, through the trapped registers of mode qemu, served inline on
 * the PROD exit (kvm-vsmmu.c on_prod_base()); the harness thread below
 * treats both kinds of batch alike.
 *
 * The VMM side, as a real VMM does it (docs/RING-PROTOCOL.md section 12,
 * ../shared/docs/tegra241-cmdqv-facts.md section 4):
 *  - guest RAM is registered with the service as one memory table region
 *    (core_gmem_add() of the RAM memfd, sealed against shrinking);
 *  - the register page is a memfd of SMMU_VCMDQ_FILE_SIZE bytes attached
 *    with core_vcmdq_attach() (two logical queues, an error eventfd); its
 *    first 64 KiB are a RAM memory slot at the VINTF0 page0 address of the
 *    CMDQV window (KG_CMDQV + KG_CV_PAGE0), from setup on (a VMM following
 *    QEMU maps it only while VINTF0 CONFIG.EN = 1 and traps it otherwise;
 *    the reset's page0 stores while the gate is closed change nothing the
 *    service acts on, so the harness keeps it simple);
 *  - the rest of the window traps (kvmv_mmio()): the config page (CMDQV
 *    CONFIG/STATUS/PARAM, the error maps, CMDQ_ALLOC, VINTF0 CONFIG/STATUS
 *    and SID slots) is served from a register cache; page1 BASE writes are
 *    forwarded with core_vcmdq_set_base() before the vCPU resumes; the
 *    gate (core_vcmdq_set_ready()) follows CMDQ_ALLOC.ALLOCATED && VINTF0
 *    EN && CMDQV EN.
 * The service's worker of the vSMMU's host SMMU consumes the queues in
 * place and issues to the sim backend, as in mode offload.
 *
 * The harness around it: no exit per batch means no PROD exit to hang the
 * oracle and the slot refill on, so a harness thread does both. When the
 * guest has completed batch j (KG_V_BATCHES, after its CONS poll saw the
 * SYNC), it takes the round trip the guest left in the slot, checks the
 * oracle entries of the batches up to j, refills batch j's slot; it fills
 * the oracle for a batch before it makes it ready (R_READY), at most
 * kvmv_run.ahead batches beyond the completed ones: KVMV_AHEAD_STRICT for
 * strict-unmap (so the guest rarely waits for this thread, which sleeps
 * whenever a pass found nothing to do, about half the time the ready
 * batches last: each wake takes a CPU from a vCPU or the worker, and a
 * batch in flight then waits for it, so fewer wakes are fewer slow
 * batches), 1 (lock-step)
 * where a batch invalidates a whole ASID and would remove the next
 * batch's fills before that batch ran. Fills are kept per batch and a check looks only at
 * batches the completed SYNC covers. The guest waits for READY before it
 * takes the lock, outside its measured round trip.
 *
 * Threads: kvmv_mmio() on vCPU threads under the VM's vSMMU lock (the
 * core calls from there are control calls, which any thread may make);
 * the harness thread owns the vCPUs' ready/done_seen, streams, slots,
 * fills and oracle counters from kvmv_start() to kvmv_stop(), the main
 * thread before and after.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <smmu-offload/vcmdq.h>

#include "bench/kvm/guest.h"
#include "bench/kvm/kvm-bench_i.h"
#include "core/core.h"

#define KVMV_SLOT 1 /* memory slot of the register page */
#define KVMV_NSID 16u /* VINTF SID_MATCH/REPLACE slots (PARAM) */
/* Harness: when a pass moved nothing it sleeps about half the time the
 * ready batches last at the rate the guests completed them, within these
 * bounds (harness_nap_ns()). */
#define KVMV_NAP_MIN_NS 100000
#define KVMV_NAP_MAX_NS 2000000
/* strict-unmap: batches ready beyond the completed ones (< KG_NSLOTS). */
#define KVMV_AHEAD_STRICT (KG_NSLOTS - 32)

/* The oracle entries filled for one batch, kept apart until a SYNC at or
 * after that batch on the same queue was seen complete (harness thread).
 * @vcmdq: the batch's queue, 1 its VCMDQ, 0 the SMMU CMDQ. */
struct kvmv_fills {
	struct wl_fill f[WL_MAX_FILLS];
	unsigned int n;
	unsigned int vcmdq;
};

/* One VM's CMDQV. The register cache is guarded by the VM's vSMMU lock
 * (kvmb_vm.lock). */
struct kvmv_vm {
	int page_fd, irq_fd;
	uint8_t *page; /* the VMM's mapping of the whole memfd */
	bool slot_ok;
	uint32_t id; /* the service's vCMDQ, 0 = none */
	bool uffd; /* idle queues wake by uffd-wp, not the idle timer */
	uint32_t cmdqv_config, vintf_config;
	uint32_t int_mask[2];
	uint32_t alloc[KG_VCMDQ_NQ];
	uint64_t base[KG_VCMDQ_NQ], cons_indx_base[KG_VCMDQ_NQ];
	uint32_t sid_match[KVMV_NSID], sid_replace[KVMV_NSID];
	bool ready[KG_VCMDQ_NQ];
	/* Harness thread: per vCPU, the fills of batch b at [b % KG_NSLOTS];
	 * checked[k]: batches of vCPU k whose fills were checked. */
	struct kvmv_fills (*fills)[KG_NSLOTS];
	uint64_t *checked;
	/* Per vCPU and queue (kvmv_fills.vcmdq): fills of batches without a
	 * SYNC that a SYNC on the other queue did not cover (traces). */
	struct kvmv_fills (*carry)[2];
};

struct kvmv_run {
	pthread_t harness;
	bool harness_started;
	bool stop; /* atomic: kvmv_stop() */
	uint64_t ahead; /* batches the guest may be ready beyond done */
	uint64_t harness_cpu_ns;
	int harness_rc; /* harness thread, read after the join */
	char harness_err[128];
};

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

bool kvmv_cmd_accepted(const struct cmdq_cmd *c)
{
	uint8_t op = (uint8_t)c->d[0];

	return op == SMMU_VCMDQ_OP_TLBI_NH_ASID ||
	       op == SMMU_VCMDQ_OP_TLBI_NH_VA || op == SMMU_VCMDQ_OP_ATC_INV ||
	       op == SMMU_VCMDQ_OP_CMD_SYNC;
}

/* The queue the guest program picks for @b (guest.h KG_PROG_VCMDQ). */
static bool batch_on_vcmdq(const struct wl_batch *b)
{
	for (uint32_t i = 0; i < b->n; i++)
		if (!kvmv_cmd_accepted(&b->cmd[i]))
			return false;
	return true;
}

/* ---- the trapped window ------------------------------------------------ */

/* Recompute every queue's gate; forward the changes. Under vm->lock. */
static int gates_update(struct kvmb_run *run, struct kvmv_vm *q)
{
	bool on = (q->cmdqv_config & 1) && (q->vintf_config & 1);
	int r = 0;

	for (unsigned int l = 0; l < KG_VCMDQ_NQ && !r; l++) {
		bool ready = on && (q->alloc[l] & 1);

		if (ready == q->ready[l])
			continue;
		q->ready[l] = ready;
		r = core_vcmdq_set_ready(run->svc, q->id, l, ready);
	}
	return r;
}

/* The 128-bit error map of the service page, word @w (A_ERR first). */
static uint32_t err_word(struct kvmv_vm *q, unsigned int w)
{
	struct smmu_vcmdq_svc *svc = smmu_vcmdq_svc(q->page);

	(void)__atomic_load_n(&svc->err_seq, __ATOMIC_ACQUIRE); /* A_ERR */
	return __atomic_load_n(&svc->err_map[w], __ATOMIC_RELAXED);
}

static int cfg_read(struct kvmv_vm *q, uint64_t off, uint64_t *v)
{
	if (off == KG_CV_CONFIG)
		*v = q->cmdqv_config;
	else if (off == KG_CV_PARAM)
		*v = KG_CV_PARAM_VALUE;
	else if (off == KG_CV_STATUS)
		*v = q->cmdqv_config & 1;
	else if (off == KG_CV_VINTF_ERR_MAP)
		*v = (err_word(q, 0) | err_word(q, 1) | err_word(q, 2) |
		      err_word(q, 3)) != 0;
	else if (off == KG_CV_VINTF_ERR_MAP + 4)
		*v = 0;
	else if (off == KG_CV_VINTF_INT_MASK || off == KG_CV_VINTF_INT_MASK + 4)
		*v = q->int_mask[(off - KG_CV_VINTF_INT_MASK) / 4];
	else if (off >= KG_CV_CMDQ_ERR_MAP && off < KG_CV_CMDQ_ERR_MAP + 16)
		*v = err_word(q, (unsigned int)(off - KG_CV_CMDQ_ERR_MAP) / 4);
	else if (off >= KG_CV_ALLOC && off < KG_CV_ALLOC + 4 * KG_VCMDQ_NQ)
		*v = q->alloc[(off - KG_CV_ALLOC) / 4];
	else if (off == KG_CV_VINTF_CONFIG)
		*v = q->vintf_config & ~(uint32_t)KG_CV_VINTF_HYP_OWN;
	else if (off == KG_CV_VINTF_STATUS)
		*v = q->vintf_config & 1;
	else if (off >= KG_CV_VINTF_SID_MATCH &&
		 off < KG_CV_VINTF_SID_MATCH + 4 * KVMV_NSID)
		*v = q->sid_match[(off - KG_CV_VINTF_SID_MATCH) / 4];
	else if (off >= KG_CV_VINTF_SID_REPLACE &&
		 off < KG_CV_VINTF_SID_REPLACE + 4 * KVMV_NSID)
		*v = q->sid_replace[(off - KG_CV_VINTF_SID_REPLACE) / 4];
	else if (off >= KG_CV_VINTF_LVCMDQ_ERR_MAP &&
		 off < KG_CV_VINTF_LVCMDQ_ERR_MAP + 16)
		*v = err_word(q,
			      (unsigned int)(off - KG_CV_VINTF_LVCMDQ_ERR_MAP) /
				      4) |
		     (uint64_t)err_word(
			     q,
			     (unsigned int)(off - KG_CV_VINTF_LVCMDQ_ERR_MAP) /
					     4 +
				     1)
			     << 32;
	else
		return -EIO;
	return 0;
}

static int cfg_write(struct kvmb_run *run, struct kvmv_vm *q, uint64_t off,
		     uint64_t v)
{
	uint32_t w = (uint32_t)v;

	if (off == KG_CV_CONFIG)
		q->cmdqv_config = w;
	else if (off == KG_CV_VINTF_INT_MASK || off == KG_CV_VINTF_INT_MASK + 4)
		q->int_mask[(off - KG_CV_VINTF_INT_MASK) / 4] = w;
	else if (off >= KG_CV_ALLOC && off < KG_CV_ALLOC + 4 * KG_VCMDQ_NQ)
		q->alloc[(off - KG_CV_ALLOC) / 4] = w;
	else if (off == KG_CV_VINTF_CONFIG)
		q->vintf_config = w; /* VMID ignored: the host's is used */
	else if (off >= KG_CV_VINTF_SID_MATCH &&
		 off < KG_CV_VINTF_SID_MATCH + 4 * KVMV_NSID)
		q->sid_match[(off - KG_CV_VINTF_SID_MATCH) / 4] = w;
	else if (off >= KG_CV_VINTF_SID_REPLACE &&
		 off < KG_CV_VINTF_SID_REPLACE + 4 * KVMV_NSID)
		q->sid_replace[(off - KG_CV_VINTF_SID_REPLACE) / 4] = w;
	else
		return -EIO;
	return gates_update(run, q);
}

/* Page1 of queue @l: BASE (64 bits, or two halves) and CONS_INDX_BASE. */
static int page1_access(struct kvmb_run *run, struct kvmv_vm *q, unsigned int l,
			uint64_t off, uint32_t len, uint64_t *v, bool is_write)
{
	uint64_t *reg = off < KG_CV_CONS_INDX_BASE ? &q->base[l] :
						     &q->cons_indx_base[l];
	unsigned int sh = (unsigned int)(off & 4) * 8;

	if (off >= 0x10 || (len == 8 && (off & 4)))
		return -EIO;
	if (!is_write) {
		*v = len == 8 ? *reg : (uint32_t)(*reg >> sh);
		return 0;
	}
	if (len == 8)
		*reg = *v;
	else
		*reg = (*reg & ~(0xffffffffULL << sh)) | (uint64_t)(uint32_t)*v
								 << sh;
	/* Forwarded before the vCPU resumes: its CONFIG.EN store cannot
	 * overtake it (ring_vcmdq_set_base()). */
	return reg == &q->base[l] ?
		       core_vcmdq_set_base(run->svc, q->id, l, q->base[l]) :
		       0;
}

int kvmv_mmio(struct kvmb_vcpu *vc, uint64_t off, uint8_t *data, uint32_t len,
	      bool is_write)
{
	struct kvmb_vm *vm = vc->vm;
	struct kvmv_vm *q = vm->vq;
	uint64_t v = 0;
	int rc;

	if (!q || (len != 4 && len != 8) || (off & (len - 1))) {
		snprintf(vc->err, sizeof(vc->err),
			 "vCPU %u: CMDQV %s of %u bytes at +%#llx: %s",
			 vc->c.idx, is_write ? "write" : "read", len,
			 (unsigned long long)off,
			 q ? "bad size or alignment" : "no CMDQV");
		return -EIO;
	}
	if (is_write)
		memcpy(&v, data, len); /* x86: little-endian, as MMIO */
	pthread_mutex_lock(&vm->lock);
	if (off >= KG_CV_PAGE1 &&
	    off < KG_CV_PAGE1 + SMMU_VCMDQ_QUEUE_STRIDE * KG_VCMDQ_NQ) {
		unsigned int l = (unsigned int)((off - KG_CV_PAGE1) /
						SMMU_VCMDQ_QUEUE_STRIDE);

		rc = page1_access(vm->run, q, l, (off - KG_CV_PAGE1) % 0x80,
				  len, &v, is_write);
	} else if (off < 0x10000 && len == 4) {
		rc = is_write ? cfg_write(vm->run, q, off, v) :
				cfg_read(q, off, &v);
	} else if (off == KG_CV_VINTF_LVCMDQ_ERR_MAP ||
		   off == KG_CV_VINTF_LVCMDQ_ERR_MAP + 8) {
		rc = is_write ? -EIO : cfg_read(q, off, &v);
	} else {
		rc = -EIO;
	}
	pthread_mutex_unlock(&vm->lock);
	if (rc) {
		snprintf(vc->err, sizeof(vc->err),
			 "vCPU %u: CMDQV %s of %u bytes at +%#llx: %s",
			 vc->c.idx, is_write ? "write" : "read", len,
			 (unsigned long long)off, strerror(-rc));
		return rc;
	}
	if (!is_write)
		memcpy(data, &v, len);
	return 0;
}

/* ---- the harness thread: slots and oracle, lock-step per vCPU ---------- */

static void fills_append(struct kvmv_fills *dst, const struct kvmv_fills *src)
{
	for (unsigned int i = 0; i < src->n && dst->n < WL_MAX_FILLS; i++)
		dst->f[dst->n++] = src->f[i];
}

static bool fill_same(const struct wl_fill *a, const struct wl_fill *b)
{
	return a->kind == b->kind && a->asid == b->asid && a->sid == b->sid &&
	       a->ssid == b->ssid && a->addr == b->addr;
}

/*
 * Drop from @now the entries that a batch after done_seen, made ready
 * already, filled too: the harness may have filled it after the guest ran
 * the invalidation of done_seen's batch (it reads KG_V_BATCHES once a pass
 * and fills ahead of the guest), and the entry found then is that later
 * batch's, which nothing has invalidated yet. Only after a stale finding
 * (rare, and scanning every ready batch's fills costs).
 */
static void drop_refilled(struct kvmb_vcpu *vc, struct kvmv_fills *now)
{
	struct kvmv_vm *q = vc->vm->vq;
	unsigned int k = vc->c.idx, n = 0;

	for (unsigned int i = 0; i < now->n; i++) {
		bool again = false;

		for (uint64_t b = vc->done_seen + 1; b < vc->ready && !again;
		     b++) {
			const struct kvmv_fills *bf =
				&q->fills[k][b % KG_NSLOTS];

			for (unsigned int j = 0; j < bf->n && !again; j++)
				again = fill_same(&bf->f[j], &now->f[i]);
		}
		if (!again)
			now->f[n++] = now->f[i];
	}
	now->n = n;
}

/*
 * The guest saw the SYNC of batch done_seen complete: check the fills of
 * every batch up to it on the same queue (a SYNC completes only its own
 * queue's commands; the other queue's go to carry until a SYNC there),
 * not those of batches made ready after it, which nothing has invalidated
 * yet.
 */
static void oracle_check(struct kvmb_vcpu *vc)
{
	struct kvmv_vm *q = vc->vm->vq;
	unsigned int k = vc->c.idx, checked = 0, stale;
	unsigned int p = q->fills[k][vc->done_seen % KG_NSLOTS].vcmdq;
	struct kvmv_fills now = { .n = 0 };

	fills_append(&now, &q->carry[k][p]);
	q->carry[k][p].n = 0;
	for (; q->checked[k] <= vc->done_seen; q->checked[k]++) {
		struct kvmv_fills *bf = &q->fills[k][q->checked[k] % KG_NSLOTS];

		fills_append(bf->vcmdq == p ? &now : &q->carry[k][bf->vcmdq],
			     bf);
		bf->n = 0;
	}
	memcpy(vc->ws.fill, now.f, now.n * sizeof(now.f[0]));
	vc->ws.nfill = now.n;
	stale = wl_check(&vc->ws, vc->vm->vi, &checked);
	if (stale) {
		drop_refilled(vc, &now);
		memcpy(vc->ws.fill, now.f, now.n * sizeof(now.f[0]));
		vc->ws.nfill = now.n;
		stale = wl_check(&vc->ws, vc->vm->vi, &checked);
	}
	vc->stale += stale;
	vc->checked += checked;
}

static void take_done(struct kvmb_vcpu *vc)
{
	struct kvmb_run *run = vc->vm->run;
	struct kvmh_vm *kvm = &vc->vm->kvm;
	uint64_t base = KG_VCPU(vc->c.idx);
	unsigned int k = (unsigned int)(vc->done_seen % KG_NSLOTS);
	struct wl_batch *b = &vc->hb[k];

	/* A_BATCHES was the caller's acquire: the slot's LAT is final (the
	 * guest may be a batch further, so KG_V_LAT may be a later one). */
	if (b->last_sync >= 0) {
		uint64_t lat;

		memcpy(&lat,
		       kvm->ram + base + KG_SLOTS + (size_t)k * KG_SLOT_SIZE +
			       KG_S_LAT,
		       sizeof(lat));
		core_hist_add(&vc->lat, kvmb_ticks_ns(run, lat));
	}
	kvmb_count_batch(vc, b);
	if (b->last_sync >= 0 && kvmb_verifying(run))
		oracle_check(vc);
	kvmb_slot_refill(vc, k, b);
	vc->done_seen++;
}

/* One step for @vc; @feed: make its next batch ready. Return: it made
 * progress. */
bool kvmv_harness_step(struct kvmb_vcpu *vc, bool feed)
{
	struct kvmv_run *vr = vc->vm->run->vq;
	struct kvmb_run *run = vc->vm->run;
	struct kvmh_vm *kvm = &vc->vm->kvm;
	uint64_t base = KG_VCPU(vc->c.idx), done;
	bool moved = false;

	/* A_BATCHES: pairs with the guest's KG_V_BATCHES increment, its
	 * last store of a batch (x86 stores are ordered). */
	done = __atomic_load_n(kvmb_ram64(kvm, base + KG_V_BATCHES),
			       __ATOMIC_ACQUIRE);
	while (vc->done_seen < done && vc->done_seen < vc->ready) {
		take_done(vc);
		moved = true;
	}
	while (feed && vc->ready < vc->done_seen + vr->ahead &&
	       !vr->harness_rc &&
	       (!run->o->syncs || vc->ready < run->o->syncs)) {
		struct wl_batch *b = &vc->hb[vc->ready % KG_NSLOTS];
		struct kvmv_fills *bf =
			&vc->vm->vq->fills[vc->c.idx][vc->ready % KG_NSLOTS];

		/* Its fills go apart: a check after an earlier SYNC must
		 * not look at them. */
		vc->ws.nfill = 0;
		if (kvmb_verifying(run) && wl_fill(&vc->ws, vc->vm->vi, b)) {
			snprintf(vr->harness_err, sizeof(vr->harness_err),
				 "VM vCPU %u: oracle fill failed", vc->c.idx);
			vr->harness_rc = -ENOMEM;
			return moved;
		}
		memcpy(bf->f, vc->ws.fill, vc->ws.nfill * sizeof(bf->f[0]));
		bf->n = vc->ws.nfill;
		bf->vcmdq = batch_on_vcmdq(b);
		vc->ws.nfill = 0;
		vc->ready++;
		/* R_READY: the slot and the oracle before the guest sees it. */
		__atomic_store_n(kvmb_ram64(kvm, base + KG_V_READY), vc->ready,
				 __ATOMIC_RELEASE);
		moved = true;
	}
	return moved;
}

static void harness_pass_all(struct kvmb_run *run, bool feed, bool *ret_moved)
{
	*ret_moved = false;
	for (unsigned int v = 0; v < run->o->vms; v++)
		for (unsigned int k = 0; k < run->o->vcpus; k++)
			if (kvmv_harness_step(&run->vms[v].vc[k], feed))
				*ret_moved = true;
}

void kvmv_set_ahead(struct kvmb_run *run, uint64_t ahead)
{
	run->vq->ahead = ahead;
}

bool kvmv_stopping(struct kvmb_run *run)
{
	return __atomic_load_n(&run->vq->stop, __ATOMIC_ACQUIRE);
}

uint32_t kvmv_id(const struct kvmb_vm *vm)
{
	return vm->vq ? vm->vq->id : 0;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * How long the harness may sleep after a pass that left every vCPU its
 * ready batches: half the time the fewest-lasting vCPU's ready batches
 * take at the rate it completed batches over the last @dt_ns (the other
 * half is slack for a late wake-up), within KVMV_NAP_MIN_NS ..
 * KVMV_NAP_MAX_NS. A vCPU that completed none (setup, stopped) does not
 * bound it; lock-step (ahead 1) comes out at the minimum.
 */
static uint64_t harness_nap_ns(struct kvmb_run *run, uint64_t dt_ns)
{
	uint64_t nap = KVMV_NAP_MAX_NS;

	for (unsigned int v = 0; v < run->o->vms; v++)
		for (unsigned int k = 0; k < run->o->vcpus; k++) {
			struct kvmb_vcpu *vc = &run->vms[v].vc[k];
			uint64_t d = vc->done_seen - vc->nap_seen, t;

			vc->nap_seen = vc->done_seen;
			if (!d)
				continue;
			t = (vc->ready - vc->done_seen) * dt_ns / d / 2;
			if (t < nap)
				nap = t;
		}
	return nap < KVMV_NAP_MIN_NS ? KVMV_NAP_MIN_NS : nap;
}

static void *harness_main(void *arg)
{
	struct kvmb_run *run = arg;
	uint64_t cpu0 = thread_cpu_ns(), t0 = mono_ns();
	bool moved;

	/* kvmb_sched_snap() counts it by name. */
	pthread_setname_np(pthread_self(), "kvm-harness");
	if (run->idle) {
		kvmi_harness(run);
		run->vq->harness_cpu_ns = thread_cpu_ns() - cpu0;
		return NULL;
	}
	while (!__atomic_load_n(&run->vq->stop, __ATOMIC_ACQUIRE)) {
		uint64_t t1, nap;
		struct timespec ts;

		harness_pass_all(run, true, &moved);
		if (moved)
			continue;
		/* Sleep, not spin or yield: the vCPU threads spin in their
		 * guests and never yield, and only a thread that slept gets
		 * the CPU back from them promptly. The guests run ahead of
		 * it meanwhile (kvmv_run.ahead). */
		t1 = mono_ns();
		nap = harness_nap_ns(run, t1 - t0);
		t0 = t1;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)nap;
		nanosleep(&ts, NULL);
	}
	run->vq->harness_cpu_ns = thread_cpu_ns() - cpu0;
	return NULL;
}

/* ---- setup, start, stop ------------------------------------------------- */

static int page_create(struct kvmv_vm *q)
{
	q->page_fd =
		memfd_create("vcmdq-page", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (q->page_fd < 0)
		return -errno;
	if (ftruncate(q->page_fd, SMMU_VCMDQ_FILE_SIZE) ||
	    fcntl(q->page_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW))
		return -errno;
	q->page = mmap(NULL, SMMU_VCMDQ_FILE_SIZE, PROT_READ | PROT_WRITE,
		       MAP_SHARED, q->page_fd, 0);
	if (q->page == MAP_FAILED) {
		q->page = NULL;
		return -errno;
	}
	return 0;
}

/*
 * The idle wake-up of docs/PERFORMANCE.md "vCMDQ wake-up paths": a
 * userfaultfd with page0's mapping (the memory slot's) registered for
 * write-protect, handed to the service, which arms it when every queue is
 * idle and un-protects on the guest's first store. Our copy is closed at
 * once: the VMM never uses it, and the service's copy alone keeps the
 * registration. Return: 0, or -errno (the caller keeps the idle timer).
 */
static int uffd_attach(struct kvmb_run *run, struct kvmv_vm *q)
{
	struct uffdio_api api = { .api = UFFD_API,
				  .features = UFFD_FEATURE_WP_HUGETLBFS_SHMEM };
	struct uffdio_register reg = {
		.range = { .start = (uint64_t)(uintptr_t)q->page,
			   .len = SMMU_VCMDQ_PAGE0_SIZE },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	int fd, r = 0;

	fd = (int)syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, UFFDIO_API, &api) || ioctl(fd, UFFDIO_REGISTER, &reg))
		r = -errno;
	else if (!(reg.ioctls & (1ull << _UFFDIO_WRITEPROTECT)))
		r = -EOPNOTSUPP;
	if (!r)
		r = core_vcmdq_set_uffd(run->svc, q->id, fd,
					(uint64_t)(uintptr_t)q->page);
	close(fd);
	return r;
}

static int vm_setup(struct kvmb_run *run, struct kvmb_vm *vm, char *err,
		    size_t errlen)
{
	struct kvmv_vm *q;
	const char *what;
	int r;

	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	vm->vq = q;
	q->page_fd = q->irq_fd = -1;
	q->cmdqv_config = 1; /* reset: EN = 1, as QEMU */
	q->fills = calloc(run->o->vcpus, sizeof(*q->fills));
	q->checked = calloc(run->o->vcpus, sizeof(*q->checked));
	q->carry = calloc(run->o->vcpus, sizeof(*q->carry));
	if (!q->fills || !q->checked || !q->carry)
		return -ENOMEM;
	what = "register page";
	r = page_create(q);
	if (r)
		goto fail;
	what = "register page slot";
	r = kvmh_slot_set(&vm->kvm, KVMV_SLOT, KG_CMDQV + KG_CV_PAGE0,
			  SMMU_VCMDQ_PAGE0_SIZE, q->page);
	if (r)
		goto fail;
	q->slot_ok = true;
	what = "core_gmem_add";
	r = core_gmem_add(run->svc, vm->vsmmu, vm->kvm.mem_fd, 0, 0,
			  vm->kvm.ram_size);
	if (r)
		goto fail;
	what = "error eventfd";
	q->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->irq_fd < 0) {
		r = -errno;
		goto fail;
	}
	what = "core_vcmdq_attach";
	r = core_vcmdq_attach(run->svc, vm->vsmmu, q->page_fd, KG_VCMDQ_NQ,
			      SMMU_VCMDQ_VERSION, 0, q->irq_fd, &q->id);
	if (r)
		goto fail;
	/* Without userfaultfd (no permission, old kernel): the idle timer. */
	q->uffd = !uffd_attach(run, q);
	for (unsigned int k = 0; k < run->o->vcpus; k++) {
		uint64_t base = KG_VCPU(k);

		*kvmb_ram64(&vm->kvm, base + KG_V_PROG) = KG_PROG_VCMDQ;
		*kvmb_ram64(&vm->kvm, base + KG_V_QUEUE) = k % KG_VCMDQ_NQ;
		*kvmb_ram64(&vm->kvm, base + KG_V_VINIT) = k == 0;
		*kvmb_ram64(&vm->kvm, base + KG_V_VTIMEOUT) = run->tsc_hz;
	}
	return 0;
fail:
	snprintf(err, errlen, "%s: %s", what, strerror(-r));
	return r;
}

int kvmv_setup(struct kvmb_run *run, char *err, size_t errlen)
{
	int r = 0;

	run->vq = calloc(1, sizeof(*run->vq));
	if (!run->vq)
		return -ENOMEM;
	/* Ahead only where no batch invalidates a whole address space (a
	 * TLBI_NH_ASID would remove the next batches' fills before their own
	 * commands ran, and the oracle could not see those lost). A
	 * strict-unmap range (<= 16 pages of 2^18) covers another batch's
	 * probe with probability ~6e-5: the same effect, negligibly. */
	run->vq->ahead = run->w->kind == WL_STRICT ? KVMV_AHEAD_STRICT : 1;
	for (unsigned int v = 0; v < run->o->vms && !r; v++)
		r = vm_setup(run, &run->vms[v], err, errlen);
	if (!r && run->o->idle_ms)
		r = kvmi_setup(run, err, errlen);
	return r;
}

int kvmv_start(struct kvmb_run *run)
{
	struct kvmv_run *vr = run->vq;
	int r;

	r = -pthread_create(&vr->harness, NULL, harness_main, run);
	vr->harness_started = !r;
	return r;
}

void kvmv_stop(struct kvmb_run *run)
{
	struct kvmv_run *vr = run->vq;
	bool moved;

	if (!vr)
		return;
	__atomic_store_n(&vr->stop, true, __ATOMIC_RELEASE);
	if (vr->harness_started) {
		pthread_join(vr->harness, NULL);
		vr->harness_started = false;
	}
	/* The vCPUs stopped: take their last completed batches. */
	harness_pass_all(run, false, &moved);
}

void kvmv_collect(struct kvmb_run *run, struct kvmb_result *res)
{
	res->consumer = "service";
	kvmi_collect(run, res);
	if (!run->vq)
		return;
	res->harness_cpu_ns = run->vq->harness_cpu_ns;
	if (run->vq->harness_rc && !res->errmsg[0]) {
		snprintf(res->errmsg, sizeof(res->errmsg), "%s",
			 run->vq->harness_err);
		res->err = run->vq->harness_rc;
	}
	for (unsigned int v = 0; v < run->o->vms; v++) {
		struct kvmb_vm *vm = &run->vms[v];
		struct core_vcmdq_stats st;

		if (vm->vq && vm->vq->id &&
		    !core_vcmdq_stats(run->svc, vm->vq->id, &st)) {
			for (unsigned int e = 0; e < 4; e++)
				res->vcmdq_halts += st.halts[e];
			res->vcmdq_faults += st.faults;
			res->vcmdq_arms += st.arms;
		}
		if (vm->vq)
			res->vcmdq_wake = vm->vq->uffd ? "uffd-wp" :
							 "idle timer";
		for (unsigned int k = 0; k < vm->nvc; k++) {
			uint64_t base = KG_VCPU(k);
			uint64_t e = *kvmb_ram64(&vm->kvm, base + KG_V_VERR);
			uint64_t gb =
				*kvmb_ram64(&vm->kvm, base + KG_V_BASECMDS);

			res->base_batches += vm->vc[k].base_batches;
			res->base_cmds += vm->vc[k].base_cmds;
			/* Every SMMU CMDQ batch ends in the guest's CONS poll,
			 * which the stop flag does not cut short. */
			if (!e && gb != vm->vc[k].base_cmds &&
			    !res->errmsg[0]) {
				snprintf(
					res->errmsg, sizeof(res->errmsg),
					"VM %u vCPU %u: the guest sent %llu "
					"commands to the SMMU CMDQ, the VMM "
					"saw %llu",
					v, k, (unsigned long long)gb,
					(unsigned long long)vm->vc[k].base_cmds);
				res->err = -EIO;
			}
			res->harness_wait_ns += kvmb_ticks_ns(
				run, *kvmb_ram64(&vm->kvm, base + KG_V_HWAIT));
			if (e && !res->errmsg[0]) {
				snprintf(res->errmsg, sizeof(res->errmsg),
					 "VM %u vCPU %u: guest error %llu "
					 "(guest.h KG_VE_*), detail %#llx",
					 v, k, (unsigned long long)e,
					 (unsigned long long)*kvmb_ram64(
						 &vm->kvm,
						 base + KG_V_VERRVAL));
				res->err = -EIO;
			}
		}
	}
	if (res->vcmdq_halts && !res->errmsg[0]) {
		snprintf(res->errmsg, sizeof(res->errmsg),
			 "%llu vCMDQ queue errors",
			 (unsigned long long)res->vcmdq_halts);
		res->err = -EIO;
	}
}

/* Before the service goes: detach (drains what the worker took). */
void kvmv_teardown(struct kvmb_run *run)
{
	kvmv_stop(run);
	kvmi_teardown(run);
	for (unsigned int v = 0; run->vms && v < run->o->vms; v++) {
		struct kvmv_vm *q = run->vms[v].vq;

		if (!q)
			continue;
		if (q->id && run->svc)
			core_vcmdq_detach(run->svc, q->id);
		if (q->slot_ok && run->vms[v].kvm_ok)
			kvmh_slot_set(&run->vms[v].kvm, KVMV_SLOT,
				      KG_CMDQV + KG_CV_PAGE0, 0, q->page);
		if (q->page)
			munmap(q->page, SMMU_VCMDQ_FILE_SIZE);
		if (q->page_fd >= 0)
			close(q->page_fd);
		if (q->irq_fd >= 0)
			close(q->irq_fd);
		free(q->fills);
		free(q->checked);
		free(q->carry);
		free(q);
		run->vms[v].vq = NULL;
	}
	free(run->vq);
	run->vq = NULL;
}
