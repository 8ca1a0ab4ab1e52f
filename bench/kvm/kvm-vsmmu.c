/* SPDX-License-Identifier: MIT */
/*
 * The VMM side of smmu-bench --vcpu kvm, on a vCPU's MMIO exits: the
 * vSMMU's CMDQ_PROD and CMDQ_CONS registers for the three modes and for
 * vcmdq's SMMU CMDQ (batches its VCMDQ rejects: on_prod_base()), and the
 * harness's part around them (the batch slots, the oracle, the guest's
 * round-trip samples). kvm-bench.c says what each mode does; this file
 * runs on the vCPU threads, under the vSMMU lock where kvmb_vm says.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "bench/kvm/guest.h"
#include "bench/kvm/kvm-bench_i.h"

/*
 * Has the linear CONS @cons passed the entry at linear index @idx? Not
 * queue_consumed() on the register encoding: the other vCPUs can move
 * CONS more than a queue's worth past a SYNC before its vCPU reads it.
 */
static bool consumed(uint32_t cons, uint32_t idx)
{
	return (int32_t)(cons - idx) > 0;
}

void kvmb_slot_refill(struct kvmb_vcpu *vc, unsigned int k, struct wl_batch *b)
{
	uint8_t *s = vc->vm->kvm.ram + KG_VCPU(vc->c.idx) + KG_SLOTS +
		     (size_t)k * KG_SLOT_SIZE;
	uint32_t sync;

	wl_next(&vc->ws, b);
	sync = (uint32_t)(b->last_sync + 1);
	memcpy(s + KG_S_N, &b->n, sizeof(b->n));
	memcpy(s + KG_S_SYNC, &sync, sizeof(sync));
	for (uint32_t i = 0; i < b->n; i++)
		cmdq_cmd_to_le(&b->cmd[i], s + KG_S_CMDS + 16 * i);
}

/* The guest's last SYNC round trip, if it measured a new one. */
static void lat_take(struct kvmb_vcpu *vc)
{
	struct kvmh_vm *vm = &vc->vm->kvm;
	uint64_t base = KG_VCPU(vc->c.idx);
	uint64_t seq = *kvmb_ram64(vm, base + KG_V_LAT_SEQ);

	if (seq != vc->lat_seen) {
		vc->lat_seen = seq;
		core_hist_add(&vc->lat,
			      kvmb_ticks_ns(vc->vm->run,
					    *kvmb_ram64(vm, base + KG_V_LAT)));
	}
}

/* The new entries of a PROD write of @reg: [*ret_old, *ret_new). Under
 * the vSMMU lock. A value that would put more than a queue's worth
 * between CONS and PROD is the guest's error. */
static int prod_span(struct kvmb_vm *vm, uint32_t reg, uint32_t *ret_old,
		     uint32_t *ret_new)
{
	uint32_t n = (reg - vm->prod) & KG_CMDQ_PMASK;

	if (vm->prod + n - vm->cons > KG_CMDQ_ENTS)
		return -EPROTO;
	*ret_old = vm->prod;
	*ret_new = vm->prod + n;
	return 0;
}

/* Copy the queue entry at linear index @i out of guest RAM. */
static struct cmdq_cmd queue_cmd(struct kvmb_vm *vm, uint32_t i)
{
	return cmdq_cmd_from_le(vm->kvm.ram + KG_CMDQ +
				16 * (i & (KG_CMDQ_ENTS - 1)));
}

/* qemu / qemu-batched on the PROD exit: the backend calls, inline. */
/*
 * A completed CMD_SYNC with CS=SIG_IRQ: its MSI write, 32 bits of MSIData
 * at MSIAddr in guest RAM (Linux's MSIPOLL polls that word). An address
 * outside RAM or not 4-byte aligned is dropped, as an SMMU's write to
 * nowhere would be. Under the vSMMU lock.
 */
static void sync_msi(struct kvmb_vm *vm, uint64_t addr, uint32_t data)
{
	if (addr & 3 || addr >= vm->kvm.ram_size || vm->kvm.ram_size - addr < 4)
		return;
	/* R_MSI: the completion (the backend call, or the ring's cons read
	 * with acquire) happens before the guest can see the word. */
	__atomic_store_n((uint32_t *)(void *)(vm->kvm.ram + addr), data,
			 __ATOMIC_RELEASE);
	vm->msi_writes++;
}

static bool sync_is_msi(const struct cmdq_cmd *c)
{
	return cmdq_classify(c) == CMDQ_CLASS_SYNC &&
	       cmdq_sync_cs(c) == CMDQ_SYNC_CS_IRQ;
}

static int prod_qemu(struct kvmb_vm *vm, uint32_t old, uint32_t new)
{
	struct cmdq_cmd fwd[KG_CMDQ_ENTS], msi[KG_CMDQ_ENTS];
	uint32_t chunk[KG_CMDQ_ENTS + 1], nf = 0, n = 0, done = 0, nmsi = 0;
	unsigned int pending = 0, before = 0;
	int rc = 0;

	chunk[0] = 0;
	for (uint32_t i = old; i != new; i++) {
		struct cmdq_cmd c = queue_cmd(vm, i);
		enum cmdq_class cls = cmdq_classify(&c);
		unsigned int oc;

		if (cls == CMDQ_CLASS_SYNC) {
			before = pending;
			if (sync_is_msi(&c))
				msi[nmsi++] = c;
			continue;
		}
		if (cls != CMDQ_CLASS_FORWARD)
			continue; /* the VMM's own, or a NOP */
		/* A SYNC between two ordering classes stays a host sync. */
		oc = cmdq_order_class(&c);
		if (before & ~oc) {
			chunk[++n] = nf;
			pending = before = 0;
		}
		pending |= oc;
		fwd[nf++] = c;
	}
	if (nf)
		chunk[++n] = nf;
	/* vcmdq's SMMU CMDQ: one call per command, as QEMU's smmuv3-accel
	 * (tegra241-cmdqv-facts.md 4). */
	if (vm->run->mode == KVMB_QEMU || vm->run->mode == KVMB_VCMDQ) {
		for (uint32_t i = 0; i < nf && !rc; i++)
			rc = iofd_invalidate(vm->vi, &fwd[i], 1, &done);
	} else {
		for (uint32_t k = 0; k < n && !rc; k++)
			rc = iofd_invalidate(vm->vi, &fwd[chunk[k]],
					     chunk[k + 1] - chunk[k], &done);
	}
	vm->cons = new;
	/* Everything completed inline: signal the SYNCs that asked for it. */
	for (uint32_t i = 0; i < nmsi && !rc; i++)
		sync_msi(vm, cmdq_sync_msiaddr(&msi[i]),
			 (uint32_t)cmdq_sync_msidata(&msi[i]));
	return rc;
}

/* offload on the PROD exit: push and publish, remember the segment. */
static int prod_offload(struct kvmb_vm *vm, uint32_t old, uint32_t new)
{
	struct smmu_ring_entry e[KG_CMDQ_ENTS];
	struct kvmb_msi msi[KG_CMDQ_ENTS];
	struct kvmb_seg *s;
	uint32_t m = 0, first = 0, nmsi = 0;
	int last_sync = -1, rc;

	for (uint32_t i = old; i != new; i++) {
		struct cmdq_cmd c = queue_cmd(vm, i);
		enum cmdq_class cls = cmdq_classify(&c);

		if (cls != CMDQ_CLASS_FORWARD && cls != CMDQ_CLASS_SYNC)
			continue;
		if (cls == CMDQ_CLASS_SYNC)
			last_sync = (int)m;
		if (sync_is_msi(&c))
			msi[nmsi++] = (struct kvmb_msi){
				.ring = m,
				.data = (uint32_t)cmdq_sync_msidata(&c),
				.addr = cmdq_sync_msiaddr(&c),
			};
		cmdq_cmd_to_le(&c, &e[m++]);
	}
	if (m) {
		/* The ring holds more than the guest queue: never full. */
		rc = ring_prod_push(&vm->ring.p, e, m, &first);
		if (!rc)
			rc = ring_prod_publish(&vm->ring.p);
		if (rc)
			return rc;
	}
	s = &vm->seg[vm->seg_tail++ % KG_CMDQ_ENTS];
	s->end = new;
	s->ring = m > 0;
	s->ring_last = first + m - 1;
	if (last_sync >= 0) {
		vm->sync_out = true;
		vm->sync_ring = first + (uint32_t)last_sync;
	}
	/* At most one per queue entry in flight: the FIFO cannot overflow. */
	for (uint32_t k = 0; k < nmsi; k++) {
		msi[k].ring += first;
		vm->msi[vm->msi_tail++ % KG_CMDQ_ENTS] = msi[k];
	}
	if (nmsi)
		pthread_cond_signal(&vm->msi_cv);
	return 0;
}

static void seg_retire(struct kvmb_vm *vm);

/*
 * offload + MSIPOLL: the VMM's completion thread of one VM. The guest
 * polls guest RAM and never exits for its SYNC, so somebody must see the
 * ring complete and write the MSI: spin KVMB_SPIN_NS on the oldest SYNC,
 * then ring_prod_wait() in 1 ms slices (the lock is dropped between
 * them), write, retire. Sleeps on msi_cv while nothing is queued.
 */
void *kvmb_msi_main(void *arg)
{
	struct kvmb_vm *vm = arg;
	struct timespec ts;
	uint64_t since = 0;

	if (vm->run->pin)
		pthread_setaffinity_np(pthread_self(),
				       sizeof(vm->run->vcpu_cpus),
				       &vm->run->vcpu_cpus);
	pthread_mutex_lock(&vm->lock);
	while (!vm->msi_stop) {
		struct kvmb_msi *e = &vm->msi[vm->msi_head % KG_CMDQ_ENTS];
		uint64_t now;
		int rc;

		if (vm->msi_head == vm->msi_tail) {
			pthread_cond_wait(&vm->msi_cv, &vm->lock);
			since = 0;
			continue;
		}
		if (ring_prod_done_upto(&vm->ring.p, e->ring)) {
			sync_msi(vm, e->addr, e->data);
			vm->msi_head++;
			seg_retire(vm);
			since = 0;
			continue;
		}
		now = kvmb_now_ns();
		if (!since)
			since = now;
		if (now - since < KVMB_SPIN_NS) {
			pthread_mutex_unlock(&vm->lock);
			common_cpu_relax();
			pthread_mutex_lock(&vm->lock);
			continue;
		}
		rc = ring_prod_wait(&vm->ring.p, e->ring, 0, 1);
		if ((rc && rc != -ETIMEDOUT) || now - since > KVMB_STUCK_NS) {
			vm->msi_rc = rc ? rc : -ETIMEDOUT;
			break;
		}
		if (rc == -ETIMEDOUT) {
			/* Let PROD exits of this VM in between. */
			pthread_mutex_unlock(&vm->lock);
			pthread_mutex_lock(&vm->lock);
		}
	}
	pthread_mutex_unlock(&vm->lock);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	vm->msi_cpu_ns =
		(uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	return NULL;
}

/* offload: retire the PROD writes the service completed (CONS moves). */
static void seg_retire(struct kvmb_vm *vm)
{
	while (vm->seg_head != vm->seg_tail) {
		struct kvmb_seg *s = &vm->seg[vm->seg_head % KG_CMDQ_ENTS];

		if (s->ring && !ring_prod_done_upto(&vm->ring.p, s->ring_last))
			break;
		vm->cons = s->end;
		vm->seg_head++;
	}
	if (vm->sync_out && ring_prod_done_upto(&vm->ring.p, vm->sync_ring))
		vm->sync_out = false;
}

/*
 * offload on the CONS read exit: with anything pending, wait until every
 * PROD write completed (a bounded spin, then the ring's wait in slices of
 * 1 ms so that the vSMMU lock is dropped between them), then answer.
 */
static int cons_offload(struct kvmb_vm *vm, uint32_t *ret_cons)
{
	uint64_t start = kvmb_now_ns();

	for (;;) {
		uint64_t now = kvmb_now_ns();
		uint32_t idx;
		int rc = 0;

		pthread_mutex_lock(&vm->lock);
		seg_retire(vm);
		if (!vm->sync_out && vm->seg_head == vm->seg_tail) {
			*ret_cons = vm->cons;
			pthread_mutex_unlock(&vm->lock);
			return 0;
		}
		idx = vm->sync_out ?
			      vm->sync_ring :
			      vm->seg[vm->seg_head % KG_CMDQ_ENTS].ring_last;
		if (now - start >= KVMB_SPIN_NS)
			rc = ring_prod_wait(&vm->ring.p, idx, 0, 1);
		pthread_mutex_unlock(&vm->lock);
		if (rc && rc != -ETIMEDOUT)
			return rc;
		if (now - start > KVMB_STUCK_NS)
			return -ETIMEDOUT;
		if (now - start < KVMB_SPIN_NS)
			common_cpu_relax();
	}
}

/*
 * --kvm-lap: hold vCPU 0's first CONS read after a SYNC (its guest has
 * dropped the queue lock, as a vCPU descheduled before its poll would
 * be) until CONS is more than a queue past that SYNC or the other vCPUs
 * are done; 10 s at most.
 */
static void lap_hold(struct kvmb_vcpu *vc)
{
	struct kvmb_vm *vm = vc->vm;
	uint64_t start = kvmb_now_ns();

	vc->lapped = true;
	for (;;) {
		uint32_t ahead;

		pthread_mutex_lock(&vm->lock);
		ahead = vm->cons - vc->sync_idx;
		pthread_mutex_unlock(&vm->lock);
		if ((ahead > KG_CMDQ_ENTS && ahead < UINT32_MAX / 2) ||
		    __atomic_load_n(&vm->vcpus_done, __ATOMIC_RELAXED) + 1 >=
			    vm->run->o->vcpus ||
		    kvmb_now_ns() - start > KVMB_STUCK_NS)
			return;
		sched_yield();
	}
}

/* The guest wrote CMDQ_PROD: the harness part, around the VMM's. */
/* The guest saw its pending SYNC complete: check the oracle. */
static void sync_seen(struct kvmb_vcpu *vc)
{
	unsigned int checked = 0;

	vc->sync_pending = false;
	if (kvmb_verifying(vc->vm->run)) {
		vc->stale += wl_check(&vc->ws, vc->vm->vi, &checked);
		vc->checked += checked;
	}
}

static int on_prod(struct kvmb_vcpu *vc, uint32_t reg)
{
	struct kvmb_vm *vm = vc->vm;
	struct kvmb_run *run = vm->run;
	unsigned int k = (unsigned int)(vc->submitted % KG_NSLOTS);
	struct wl_batch *b = &vc->hb[k];
	uint32_t old, new;
	int rc;

	lat_take(vc);
	/* MSIPOLL: the guest got past its last SYNC without an exit. */
	if (vc->sync_pending && run->o->msipoll)
		sync_seen(vc);
	if (kvmb_verifying(run) && wl_fill(&vc->ws, vm->vi, b)) {
		snprintf(vc->err, sizeof(vc->err), "oracle fill failed");
		return -ENOMEM;
	}
	pthread_mutex_lock(&vm->lock);
	rc = prod_span(vm, reg, &old, &new);
	if (!rc && new - old != b->n)
		rc = -EPROTO; /* not the batch the host put in the slot */
	if (!rc)
		rc = run->mode == KVMB_OFFLOAD ? prod_offload(vm, old, new) :
						 prod_qemu(vm, old, new);
	if (!rc)
		vm->prod = new;
	pthread_mutex_unlock(&vm->lock);
	if (rc) {
		snprintf(vc->err, sizeof(vc->err),
			 "vCPU %u: PROD write %#x (batch of %u): %s", vc->c.idx,
			 reg, b->n, strerror(-rc));
		return rc;
	}
	kvmb_count_batch(vc, b);
	if (b->last_sync >= 0) {
		vc->sync_pending = true;
		vc->sync_idx = old + (uint32_t)b->last_sync;
	}
	/* The guest copied the slot into the queue: refill it. */
	vc->submitted++;
	kvmb_slot_refill(vc, k, b);
	return 0;
}

/*
 * vcmdq: the guest wrote the SMMU CMDQ's PROD (a batch with a command its
 * VCMDQ rejects): the VMM's part alone, as in mode qemu; the harness
 * thread fills and checks the oracle and refills the slot around it
 * (kvm-vcmdq.c). The guest is in batch KG_V_BATCHES (it counts the batch
 * after its SYNC), whose slot is stable until then. Checked here, apart
 * from the guest program: the span is that slot's batch and holds a
 * command the VCMDQ rejects (kvmv_cmd_accepted()).
 */
static int on_prod_base(struct kvmb_vcpu *vc, uint32_t reg)
{
	struct kvmb_vm *vm = vc->vm;
	uint64_t base = KG_VCPU(vc->c.idx);
	uint64_t j = *kvmb_ram64(&vm->kvm, base + KG_V_BATCHES);
	uint32_t n, old, new;
	bool rejected = false;
	int rc;

	memcpy(&n,
	       vm->kvm.ram + base + KG_SLOTS +
		       (size_t)(j % KG_NSLOTS) * KG_SLOT_SIZE + KG_S_N,
	       sizeof(n));
	pthread_mutex_lock(&vm->lock);
	rc = prod_span(vm, reg, &old, &new);
	if (!rc && new - old != n)
		rc = -EPROTO; /* not the batch the host put in the slot */
	for (uint32_t i = old; !rc && i != new; i++) {
		struct cmdq_cmd c = queue_cmd(vm, i);

		rejected |= !kvmv_cmd_accepted(&c);
	}
	if (!rc && !rejected)
		rc = -EPROTO; /* the guest should have used its VCMDQ */
	if (!rc)
		rc = prod_qemu(vm, old, new);
	if (!rc)
		vm->prod = new;
	pthread_mutex_unlock(&vm->lock);
	if (rc) {
		snprintf(vc->err, sizeof(vc->err),
			 "vCPU %u: SMMU CMDQ PROD write %#x (batch %llu of %u, "
			 "vcmdq): %s",
			 vc->c.idx, reg, (unsigned long long)j, n,
			 strerror(-rc));
		return rc;
	}
	vc->base_batches++;
	vc->base_cmds += n;
	return 0;
}

/* The guest reads CMDQ_CONS. */
static int on_cons(struct kvmb_vcpu *vc, uint8_t *data, uint32_t len)
{
	struct kvmb_vm *vm = vc->vm;
	uint32_t cons, reg;
	int rc = 0;

	if (len != 4) {
		snprintf(vc->err, sizeof(vc->err),
			 "vCPU %u: CONS read of %u bytes", vc->c.idx, len);
		return -EPROTO;
	}
	if (vm->run->o->lap && vc->c.idx == 0 && vc->sync_pending &&
	    !vc->lapped)
		lap_hold(vc);
	if (vm->run->mode == KVMB_OFFLOAD) {
		rc = cons_offload(vm, &cons);
	} else {
		pthread_mutex_lock(&vm->lock);
		cons = vm->cons;
		pthread_mutex_unlock(&vm->lock);
	}
	if (rc) {
		snprintf(vc->err, sizeof(vc->err), "vCPU %u: CONS read: %s",
			 vc->c.idx, strerror(-rc));
		return rc;
	}
	reg = cons & KG_CMDQ_PMASK;
	memcpy(data, &reg, sizeof(reg)); /* x86: little-endian, as MMIO */
	if (vc->sync_pending && !vm->run->o->msipoll &&
	    consumed(cons, vc->sync_idx))
		sync_seen(vc);
	return 0;
}

int kvmb_on_mmio(void *ctx, struct kvmh_vcpu *c, uint64_t addr, uint8_t *data,
		 uint32_t len, bool is_write)
{
	struct kvmb_vcpu *vc = ctx;
	uint64_t t0 = kvmb_now_ns();
	uint32_t reg = 0;
	int rc;

	(void)c;
	if (vc->vm->run->mode == KVMB_VCMDQ) {
		/* Setup over: the exits so far are setup's, not the run's. */
		if (is_write && addr == KG_MMIO + KG_MMIO_SETUP &&
		    !vc->setup_seen) {
			vc->setup_exits = vc->c.exits;
			vc->setup_seen = true;
			vc->handler_ns = 0; /* the reset's traps are setup */
			return KVMH_CONTINUE;
		}
		if (addr == KG_MMIO + KG_MMIO_DONE)
			return KVMH_DONE; /* the harness took the samples */
		if (addr >= KG_CMDQV && addr - KG_CMDQV < KG_CV_SIZE) {
			rc = kvmv_mmio(vc, addr - KG_CMDQV, data, len,
				       is_write);
			vc->handler_ns += kvmb_now_ns() - t0;
			return rc;
		}
	}
	if (addr == KG_MMIO + KG_MMIO_DONE) {
		lat_take(vc);
		if (vc->sync_pending && vc->vm->run->o->msipoll)
			sync_seen(vc);
		return KVMH_DONE;
	}
	if (is_write && len == 4 && addr == KG_MMIO + KG_REG_CMDQ_PROD) {
		memcpy(&reg, data, sizeof(reg));
		rc = vc->vm->run->mode == KVMB_VCMDQ ? on_prod_base(vc, reg) :
						       on_prod(vc, reg);
		vc->prod_ns += kvmb_now_ns() - t0;
		core_hist_add(&vc->prod_h, kvmb_now_ns() - t0);
	} else if (!is_write && addr == KG_MMIO + KG_REG_CMDQ_CONS) {
		rc = on_cons(vc, data, len);
		vc->cons_ns += kvmb_now_ns() - t0;
		core_hist_add(&vc->cons_h, kvmb_now_ns() - t0);
	} else {
		snprintf(vc->err, sizeof(vc->err),
			 "vCPU %u: unexpected MMIO %s at %#llx", vc->c.idx,
			 is_write ? "write" : "read", (unsigned long long)addr);
		rc = -EIO;
	}
	vc->handler_ns += kvmb_now_ns() - t0;
	return rc;
}
