/* SPDX-License-Identifier: MIT */
/*
 * smmu-bench --vcpu kvm, mode vcmdq: the software Tegra241 CMDQV (issue
 * 15) on real vCPUs. The guest runs KG_PROG_VCMDQ (guest.h): the stock
 * tegra241-cmdqv driver's reset sequence, then per batch its commands into
 * its own queue in guest RAM, one PROD store into the register page and a
 * CONS poll there, neither of which exits.
 *
 * The VMM side, as a real VMM does it (docs/VMM-INTEGRATION.md):
 *  - the register page is a memfd of SMMU_VCMDQ_FILE_SIZE bytes; its
 *    first 64 KiB are a RAM memory slot at the VINTF0 page0 address of the
 *    CMDQV window (KG_CMDQV + KG_CV_PAGE0);
 *  - the rest of the window traps (kvmv_mmio()): the config page (CMDQV
 *    CONFIG/STATUS/PARAM, the error maps, CMDQ_ALLOC, VINTF0 CONFIG/STATUS
 *    and SID slots) is served from a register cache; page1 BASE writes are
 *    forwarded to the consumer (set_base) before the vCPU resumes; the
 *    consumer's gate (set_ready) follows CMDQ_ALLOC.ALLOCATED && VINTF0 EN
 *    && CMDQV EN;
 *  - guest RAM is registered with the consumer as a memory table region
 *    (the RAM memfd, sealed against shrinking).
 *
 * The consumer here is a CONSUMER STAND-IN, not the service worker: one
 * host thread per host SMMU drives ring/vcmdq_cons.h (the consumer library
 * the service's worker will run) over its VMs' queues and issues each
 * fetched run with one iofd_invalidate() on the sim backend (the qemu
 * modes' backend objects). It polls while any queue had work in the last
 * poll_us and then re-checks every KVMV_IDLE_NS. The service's API
 * (core_vcmdq_attach() and friends, branch vcmdq-core) replaces it.
 *
 * The harness around it: no exit per batch means no PROD exit to hang the
 * oracle and the slot refill on, so a harness thread does both lock-step
 * with each vCPU: when the guest has completed batch j (KG_V_BATCHES), it
 * takes the guest's round-trip sample, checks the oracle if batch j had a
 * SYNC (the guest saw it complete), refills batch j's slot, fills the
 * oracle for batch j + 1 and only then makes it ready (R_READY). The
 * guest waits for that before it takes the lock, outside its measured
 * round trip.
 *
 * Threads: kvmv_mmio() on vCPU threads under the VM's vSMMU lock; the
 * consumer threads take each VM's kvmv_vm.lock around a pass, and
 * kvmv_mmio() takes it around set_base/set_ready; the harness thread owns
 * the vCPUs' ready/done_seen, streams, slots and oracle counters from
 * kvmv_start() to kvmv_stop().
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <smmu-offload/vcmdq.h>

#include "bench/kvm/guest.h"
#include "bench/kvm/kvm-bench_i.h"
#include "ring/gmem.h"
#include "ring/vcmdq_cons.h"

#define KVMV_SLOT 1 /* memory slot of the register page */
#define KVMV_IDLE_NS 50000u /* stand-in: idle re-check period */
#define KVMV_BUDGET 64u /* entries per fetch */
#define KVMV_NSID 16u /* VINTF SID_MATCH/REPLACE slots (PARAM) */

/* One VM's CMDQV. The register cache is guarded by the VM's vSMMU lock
 * (kvmb_vm.lock); @lock guards @rv and @gmem (the consumer's state). */
struct kvmv_vm {
	int page_fd;
	uint8_t *page; /* the VMM's mapping of the whole memfd */
	bool slot_ok;
	uint32_t cmdqv_config, vintf_config;
	uint32_t int_mask[2];
	uint32_t alloc[KG_VCMDQ_NQ];
	uint64_t base[KG_VCMDQ_NQ], cons_indx_base[KG_VCMDQ_NQ];
	uint32_t sid_match[KVMV_NSID], sid_replace[KVMV_NSID];
	bool ready[KG_VCMDQ_NQ];
	/* The stand-in consumer. */
	pthread_mutex_t lock;
	bool lock_ok, gmem_ok, rv_ok;
	struct ring_gmem gmem;
	struct ring_vcmdq *rv;
	uint64_t idle_since; /* consumer thread: last pass with work */
	uint64_t halts; /* queue errors seen (consumer thread) */
};

/* One consumer thread: the VMs v with v % hsmmus == @i. */
struct kvmv_cons {
	struct kvmb_run *run;
	unsigned int i;
	pthread_t th;
	bool started;
	uint64_t cpu_ns, sleeps; /* its own, read after the join */
};

struct kvmv_run {
	struct kvmv_cons cons[KVMB_MAX_HSMMU];
	pthread_t harness;
	bool harness_started;
	bool stop; /* atomic: kvmv_stop() */
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

bool kvmv_workload_ok(const struct wl *w)
{
	if (w->kind == WL_STRICT || w->kind == WL_LAZY)
		return true;
	if (w->kind != WL_TRACE)
		return false; /* CFGI_CD: the SMMU CMDQ's, not a VCMDQ's */
	for (uint64_t i = 0; i < w->trace.start[w->trace.nbatch]; i++) {
		uint8_t op = (uint8_t)w->trace.cmds[i].d[0];

		if (op != SMMU_VCMDQ_OP_TLBI_NH_ASID &&
		    op != SMMU_VCMDQ_OP_TLBI_NH_VA &&
		    op != SMMU_VCMDQ_OP_ATC_INV && op != SMMU_VCMDQ_OP_CMD_SYNC)
			return false;
	}
	return true;
}

/* ---- the consumer's calls (the service's core_vcmdq_* later) ---------- */

static int cons_set_base(struct kvmv_vm *q, unsigned int l, uint64_t base)
{
	int r;

	pthread_mutex_lock(&q->lock);
	r = ring_vcmdq_set_base(q->rv, l, base);
	pthread_mutex_unlock(&q->lock);
	return r;
}

static int cons_set_ready(struct kvmv_vm *q, unsigned int l, bool ready)
{
	int r;

	pthread_mutex_lock(&q->lock);
	r = ring_vcmdq_set_ready(q->rv, l, ready);
	pthread_mutex_unlock(&q->lock);
	return r;
}

/* ---- the trapped window ------------------------------------------------ */

/* Recompute every queue's gate; forward the changes. Under vm->lock. */
static int gates_update(struct kvmv_vm *q)
{
	bool on = (q->cmdqv_config & 1) && (q->vintf_config & 1);
	int r = 0;

	for (unsigned int l = 0; l < KG_VCMDQ_NQ && !r; l++) {
		bool ready = on && (q->alloc[l] & 1);

		if (ready == q->ready[l])
			continue;
		q->ready[l] = ready;
		r = cons_set_ready(q, l, ready);
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

static int cfg_write(struct kvmv_vm *q, uint64_t off, uint64_t v)
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
	return gates_update(q);
}

/* Page1 of queue @l: BASE (64 bits, or two halves) and CONS_INDX_BASE. */
static int page1_access(struct kvmv_vm *q, unsigned int l, uint64_t off,
			uint32_t len, uint64_t *v, bool is_write)
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
	return reg == &q->base[l] ? cons_set_base(q, l, q->base[l]) : 0;
}

int kvmv_mmio(struct kvmb_vcpu *vc, uint64_t off, uint8_t *data, uint32_t len,
	      bool is_write)
{
	struct kvmb_vm *vm = vc->vm;
	struct kvmv_vm *q = vm->vq;
	uint64_t v = 0;
	int rc;

	if (!q || (len != 4 && len != 8) || (off & (len - 1)))
		return -EIO;
	if (is_write)
		memcpy(&v, data, len); /* x86: little-endian, as MMIO */
	pthread_mutex_lock(&vm->lock);
	if (off >= KG_CV_PAGE1 &&
	    off < KG_CV_PAGE1 + SMMU_VCMDQ_QUEUE_STRIDE * KG_VCMDQ_NQ) {
		unsigned int l = (unsigned int)((off - KG_CV_PAGE1) /
						SMMU_VCMDQ_QUEUE_STRIDE);

		rc = page1_access(q, l, (off - KG_CV_PAGE1) % 0x80, len, &v,
				  is_write);
	} else if (off < 0x10000 && len == 4) {
		rc = is_write ? cfg_write(q, off, v) : cfg_read(q, off, &v);
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

/* ---- the consumer stand-in --------------------------------------------- */

/* One fetch of queue @l, issued with one backend call, then completed.
 * Under q->lock. Return: entries consumed. */
static uint32_t cons_queue(struct kvmb_vm *vm, unsigned int l)
{
	struct kvmv_vm *q = vm->vq;
	struct smmu_ring_entry e[KVMV_BUDGET];
	struct cmdq_cmd fwd[KVMV_BUDGET];
	uint32_t pos[KVMV_BUDGET];
	struct ring_vcmdq_span sp;
	uint32_t avail = 0, n, nf = 0, done = 0;
	int r;

	if (ring_vcmdq_poll(q->rv, l, &avail) || !avail)
		return 0;
	n = ring_vcmdq_fetch(q->rv, l, e, KVMV_BUDGET, &sp);
	for (uint32_t i = 0; i < n; i++) {
		struct cmdq_cmd c = cmdq_cmd_from_le(&e[i]);

		if (cmdq_classify(&c) != CMDQ_CLASS_FORWARD)
			continue; /* CMD_SYNC: completion is CONS passing it */
		pos[nf] = sp.first + i;
		fwd[nf++] = c;
	}
	r = nf ? iofd_invalidate(vm->vi, fwd, nf, &done) : 0;
	if (r && done < nf) {
		/* Command pos[done] failed: everything before it completed. */
		ring_vcmdq_complete(q->rv, l, sp.gen, pos[done]);
		ring_vcmdq_halt(q->rv, l, sp.gen, pos[done],
				SMMU_VCMDQ_CERROR_ILL);
	} else if (n) {
		ring_vcmdq_complete(q->rv, l, sp.gen, sp.first + n);
	}
	if (ring_vcmdq_take_events(q->rv) & RING_VCMDQ_EV_ERROR)
		q->halts++;
	return n;
}

static void *cons_main(void *arg)
{
	struct kvmv_cons *c = arg;
	struct kvmb_run *run = c->run;
	const struct kvmb_opts *o = run->o;
	uint64_t busy = kvmb_now_ns(), cpu0 = thread_cpu_ns();

	while (!__atomic_load_n(&run->vq->stop, __ATOMIC_ACQUIRE)) {
		uint32_t got = 0;
		uint64_t now;

		for (unsigned int v = c->i; v < o->vms; v += o->hsmmus) {
			struct kvmv_vm *q = run->vms[v].vq;

			pthread_mutex_lock(&q->lock);
			for (unsigned int l = 0; l < KG_VCMDQ_NQ; l++)
				got += cons_queue(&run->vms[v], l);
			pthread_mutex_unlock(&q->lock);
		}
		now = kvmb_now_ns();
		if (got) {
			busy = now;
		} else if (now - busy > (uint64_t)o->poll_us * 1000u) {
			struct timespec ts = { 0, KVMV_IDLE_NS };

			nanosleep(&ts, NULL);
			c->sleeps++;
		} else {
			kvmb_cpu_relax();
		}
	}
	c->cpu_ns = thread_cpu_ns() - cpu0;
	return NULL;
}

/* ---- the harness thread: slots and oracle, lock-step per vCPU ---------- */

static void take_done(struct kvmb_vcpu *vc)
{
	struct kvmb_run *run = vc->vm->run;
	struct kvmh_vm *kvm = &vc->vm->kvm;
	uint64_t base = KG_VCPU(vc->c.idx);
	unsigned int k = (unsigned int)(vc->done_seen % KG_NSLOTS);
	struct wl_batch *b = &vc->hb[k];
	uint64_t seq;

	/* A_BATCHES was the caller's acquire: LAT_SEQ and LAT are final. */
	seq = __atomic_load_n(kvmb_ram64(kvm, base + KG_V_LAT_SEQ),
			      __ATOMIC_RELAXED);
	if (seq != vc->lat_seen) {
		vc->lat_seen = seq;
		core_hist_add(&vc->lat,
			      kvmb_ticks_ns(run,
					    *kvmb_ram64(kvm, base + KG_V_LAT)));
	}
	vc->batches++;
	vc->cmds += b->n;
	vc->fwd += b->nfwd;
	vc->syncs += b->n - b->nfwd;
	if (b->last_sync >= 0 && kvmb_verifying(run)) {
		unsigned int checked = 0;

		vc->stale += wl_check(&vc->ws, vc->vm->vi, &checked);
		vc->checked += checked;
	}
	wl_next(&vc->ws, b);
	kvmb_slot_write(vc, k, b);
	vc->done_seen++;
}

/* One step for @vc; @feed: make its next batch ready. Return: it made
 * progress. */
static bool harness_step(struct kvmb_vcpu *vc, bool feed)
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
	if (feed && vc->ready == vc->done_seen && !vr->harness_rc &&
	    (!run->o->syncs || vc->ready < run->o->syncs)) {
		struct wl_batch *b = &vc->hb[vc->ready % KG_NSLOTS];

		if (kvmb_verifying(run) && wl_fill(&vc->ws, vc->vm->vi, b)) {
			snprintf(vr->harness_err, sizeof(vr->harness_err),
				 "VM vCPU %u: oracle fill failed", vc->c.idx);
			vr->harness_rc = -ENOMEM;
			return moved;
		}
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
			if (harness_step(&run->vms[v].vc[k], feed))
				*ret_moved = true;
}

static void *harness_main(void *arg)
{
	struct kvmb_run *run = arg;
	uint64_t cpu0 = thread_cpu_ns(), idle = 0;
	bool moved;

	while (!__atomic_load_n(&run->vq->stop, __ATOMIC_ACQUIRE)) {
		harness_pass_all(run, true, &moved);
		if (moved)
			idle = 0;
		else if (++idle % 64 == 0)
			sched_yield(); /* let a vCPU or the consumer run */
		else
			kvmb_cpu_relax();
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

static int vm_setup(struct kvmb_run *run, struct kvmb_vm *vm, char *err,
		    size_t errlen)
{
	struct kvmv_vm *q;
	int r;

	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	vm->vq = q;
	q->page_fd = -1;
	q->cmdqv_config = 1; /* reset: EN = 1, as QEMU */
	if (pthread_mutex_init(&q->lock, NULL))
		return -ENOMEM;
	q->lock_ok = true;
	r = page_create(q);
	if (r) {
		snprintf(err, errlen, "register page: %s", strerror(-r));
		return r;
	}
	r = kvmh_slot_set(&vm->kvm, KVMV_SLOT, KG_CMDQV + KG_CV_PAGE0,
			  SMMU_VCMDQ_PAGE0_SIZE, q->page);
	if (r) {
		snprintf(err, errlen, "register page slot: %s", strerror(-r));
		return r;
	}
	q->slot_ok = true;
	/* The consumer's view: the memory table and the register page. */
	ring_gmem_init(&q->gmem, KG_RAM_SIZE);
	q->gmem_ok = true;
	r = ring_gmem_add(&q->gmem, vm->kvm.mem_fd, 0, 0, vm->kvm.ram_size);
	if (r) {
		snprintf(err, errlen, "guest memory table: %s", strerror(-r));
		return r;
	}
	q->rv = calloc(1, sizeof(*q->rv));
	if (!q->rv)
		return -ENOMEM;
	r = ring_vcmdq_map(q->page_fd, KG_VCMDQ_NQ, &q->gmem, q->rv);
	if (r) {
		snprintf(err, errlen, "vcmdq attach: %s", strerror(-r));
		return r;
	}
	q->rv_ok = true;
	for (unsigned int k = 0; k < run->o->vcpus; k++) {
		uint64_t base = KG_VCPU(k);

		*kvmb_ram64(&vm->kvm, base + KG_V_PROG) = KG_PROG_VCMDQ;
		*kvmb_ram64(&vm->kvm, base + KG_V_QUEUE) = k % KG_VCMDQ_NQ;
		*kvmb_ram64(&vm->kvm, base + KG_V_VINIT) = k == 0;
		*kvmb_ram64(&vm->kvm, base + KG_V_VTIMEOUT) = run->tsc_hz;
	}
	return 0;
}

int kvmv_setup(struct kvmb_run *run, char *err, size_t errlen)
{
	int r = 0;

	run->vq = calloc(1, sizeof(*run->vq));
	if (!run->vq)
		return -ENOMEM;
	for (unsigned int v = 0; v < run->o->vms && !r; v++)
		r = vm_setup(run, &run->vms[v], err, errlen);
	return r;
}

int kvmv_start(struct kvmb_run *run)
{
	struct kvmv_run *vr = run->vq;
	int r;

	for (unsigned int i = 0; i < run->o->hsmmus && i < run->o->vms; i++) {
		vr->cons[i].run = run;
		vr->cons[i].i = i;
		r = -pthread_create(&vr->cons[i].th, NULL, cons_main,
				    &vr->cons[i]);
		if (r)
			return r;
		vr->cons[i].started = true;
	}
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
	for (unsigned int i = 0; i < KVMB_MAX_HSMMU; i++)
		if (vr->cons[i].started) {
			pthread_join(vr->cons[i].th, NULL);
			vr->cons[i].started = false;
		}
	if (vr->harness_started) {
		pthread_join(vr->harness, NULL);
		vr->harness_started = false;
	}
	/* The vCPUs stopped: take their last completed batches. */
	harness_pass_all(run, false, &moved);
}

void kvmv_collect(struct kvmb_run *run, struct kvmb_result *res)
{
	res->consumer = "stand-in (ring/vcmdq_cons on a bench thread, "
			"not the service worker)";
	if (!run->vq)
		return;
	res->harness_cpu_ns = run->vq->harness_cpu_ns;
	/* The consumer stands for the service: its CPU is the service's. */
	res->has_svc = true;
	for (unsigned int i = 0; i < KVMB_MAX_HSMMU; i++) {
		res->svc_cpu_ns += run->vq->cons[i].cpu_ns;
		res->svc_sleeps += run->vq->cons[i].sleeps;
	}
	if (run->vq->harness_rc && !res->errmsg[0]) {
		snprintf(res->errmsg, sizeof(res->errmsg), "%s",
			 run->vq->harness_err);
		res->err = run->vq->harness_rc;
	}
	for (unsigned int v = 0; v < run->o->vms; v++) {
		struct kvmb_vm *vm = &run->vms[v];

		if (vm->vq)
			res->vcmdq_halts += vm->vq->halts;
		for (unsigned int k = 0; k < vm->nvc; k++) {
			uint64_t base = KG_VCPU(k);
			uint64_t e = *kvmb_ram64(&vm->kvm, base + KG_V_VERR);

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

void kvmv_teardown(struct kvmb_run *run)
{
	kvmv_stop(run);
	for (unsigned int v = 0; run->vms && v < run->o->vms; v++) {
		struct kvmv_vm *q = run->vms[v].vq;

		if (!q)
			continue;
		if (q->rv_ok)
			ring_vcmdq_unmap(q->rv);
		free(q->rv);
		if (q->gmem_ok)
			ring_gmem_done(&q->gmem);
		if (q->slot_ok && run->vms[v].kvm_ok)
			kvmh_slot_set(&run->vms[v].kvm, KVMV_SLOT,
				      KG_CMDQV + KG_CV_PAGE0, 0, q->page);
		if (q->page)
			munmap(q->page, SMMU_VCMDQ_FILE_SIZE);
		if (q->page_fd >= 0)
			close(q->page_fd);
		if (q->lock_ok)
			pthread_mutex_destroy(&q->lock);
		free(q);
		run->vms[v].vq = NULL;
	}
	free(run->vq);
	run->vq = NULL;
}
