/* SPDX-License-Identifier: MIT */
/* Internals shared by kvm-bench.c (the runs) and kvm-report.c (output). */
#ifndef SMMU_OFFLOAD_BENCH_KVM_BENCH_I_H
#define SMMU_OFFLOAD_BENCH_KVM_BENCH_I_H

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <smmu-offload/ring-prod.h>

#include "bench/kvm/kvm-bench.h"
#include "bench/kvm/vmm.h"
#include "bench/vmm-ring.h"
#include "common/clock.h"
#include "common/cpu.h"
#include "core/core.h"
#include "core/core_test.h"
#include "core/hist.h"
#include "bench/kvm/guest.h"

enum kvmb_mode {
	KVMB_QEMU,
	KVMB_QEMU_BATCHED,
	KVMB_OFFLOAD,
	KVMB_VCMDQ,
	KVMB_NMODES
};
extern const char *const kvmb_mode_names[KVMB_NMODES];

/* Offload: how long a CONS read exit spins on the ring before it sleeps
 * on the completion eventfd. */
#define KVMB_SPIN_NS 50000u

/* kvmb_sched_snap(): per thread class, the scheduler's counters. */
enum {
	KVMB_SCHED_WORKER,
	KVMB_SCHED_VCPU,
	KVMB_SCHED_HARNESS,
	KVMB_SCHED_NCLASS
};
struct kvmb_sched {
	uint64_t wait_ns[KVMB_SCHED_NCLASS]; /* runnable, not running */
	uint64_t slices[KVMB_SCHED_NCLASS]; /* times put on a CPU */
};
void kvmb_sched_snap(struct kvmb_sched *s);
/* @s -= @s0, each counter clamped at 0 (threads that ended). */
void kvmb_sched_delta(struct kvmb_sched *s, const struct kvmb_sched *s0);

/* What one mode measured, summed over vCPUs; written by the main thread
 * after the join. */
struct kvmb_result {
	bool ran;
	int err;
	char errmsg[256];
	double wall_s;
	uint64_t cmds, fwd, syncs, batches; /* guest side, from the VMM */
	uint64_t guest_cmds, guest_batches; /* as the guest counted */
	uint64_t guest_syncs_seen; /* SYNC waits the guest saw end */
	uint64_t busy_ns, spin_ns; /* guest rdtsc: in the driver, lock wait */
	struct core_hist lat; /* guest rdtsc: PROD write -> SYNC seen, ns */
	struct kvmh_exits exits; /* the DONE exit of each vCPU excluded;
				  * vcmdq: the measured phase only */
	struct kvmh_exits setup_exits; /* vcmdq: up to KG_MMIO_SETUP */
	uint64_t backend_ns; /* sim: host time charged to the calls */
	/* offload, vcmdq: the service's histograms over its host SMMUs
	 * (core.h CORE_HIST_*), p50 and p99 in ns: the backend call's wall
	 * time, the worker's first entry -> completion, and the diagnostics
	 * (first entry -> call, call return -> CONS, pass interval). */
	uint64_t call_p50, call_p99, ssync_p50, ssync_p99;
	uint64_t take_p50, done_p50, pass_p50, pass_p99;
	struct kvmb_sched sched; /* over the measured window */
	/* --idle (kvm-idle.c): the idle queues, the guest's round trips by
	 * phase (ns), the service over the idle stretch. */
	struct {
		unsigned int queues, pages;
		uint64_t active_p50, trans_n, trans_p50, trans_p90, trans_max;
		uint64_t long_n, long_p50, long_p90; /* 10 ms after the arm */
		uint64_t first_ns;
		bool first_faulted; /* its PROD store hit the armed page */
		uint64_t idle_ns, svc_cpu_ns, passes, sleeps;
	} idle;
	uint64_t harness_cpu_ns; /* vcmdq: the harness thread (oracle, slots) */
	uint64_t harness_wait_ns; /* vcmdq: guests waiting for a ready batch */
	uint64_t vcmdq_halts; /* vcmdq: queue errors the consumer raised */
	/* vcmdq: batches (PROD writes) and commands the VMM took through the
	 * trapped SMMU CMDQ (the rest went to the VCMDQs). */
	uint64_t base_batches, base_cmds;
	/* vcmdq: the service's idle wake-up ("uffd-wp" or "idle timer"), its
	 * protections armed and write faults taken over the whole mode. */
	const char *vcmdq_wake;
	uint64_t vcmdq_arms, vcmdq_faults;
	const char *consumer; /* vcmdq: who consumed the queues */
	uint64_t handler_ns; /* vCPU threads in MMIO exit handlers */
	uint64_t prod_ns, cons_ns; /* of which in PROD writes, CONS reads */
	struct core_hist prod_h, cons_h; /* the same per exit */
	uint64_t vcpu_cpu_ns, svc_cpu_ns;
	uint64_t svc_sleeps; /* offload: worker sleeps in the kernel */
	uint64_t msi_writes, msi_cpu_ns; /* MSIPOLL: MSIs, completion CPU */
	uint64_t ioctls, host_syncs;
	uint64_t checked, stale;
	bool verified, has_svc;
	unsigned int hsmmus_used;
};

#define KVMB_MAX_HSMMU 16u
#define KVMB_STUCK_NS (UINT64_C(10) * 1000000000u)

struct kvmb_run;
struct kvmb_vm;
struct kvmv_vm;
struct kvmv_run;
struct kvmi_run;

/* One vCPU: owned by its vCPU thread from the gate to the join. */
struct kvmb_vcpu {
	struct kvmh_vcpu c;
	struct kvmb_vm *vm;
	pthread_t th;
	struct wl_stream ws;
	struct wl_batch *hb; /* host copies of the KG_NSLOTS slots */
	uint64_t submitted; /* PROD writes seen: the next slot's number */
	bool sync_pending; /* its last batch's SYNC not yet seen complete */
	uint32_t sync_idx; /* that SYNC's linear queue index */
	bool lapped; /* --kvm-lap: the hold was done */
	uint64_t lat_seen; /* KG_V_LAT_SEQ picked up so far */
	struct core_hist lat;
	struct core_hist prod_h, cons_h; /* VMM time per PROD / CONS exit */
	/* vcmdq: the exits up to the KG_MMIO_SETUP store (vCPU thread);
	 * the batches made ready and seen done (harness thread). */
	struct kvmh_exits setup_exits;
	bool setup_seen;
	uint64_t ready, done_seen;
	uint64_t nap_seen; /* done_seen at the harness's last nap estimate */
	/* vcmdq: the SMMU CMDQ PROD writes and their commands (vCPU thread). */
	uint64_t base_batches, base_cmds;
	uint64_t cmds, fwd, syncs, batches, checked, stale;
	uint64_t handler_ns, prod_ns, cons_ns, cpu_ns;
	int rc;
	char err[256];
};

/* The entries of one PROD write: done when the ring consumed ring_last. */
struct kvmb_seg {
	uint32_t end; /* linear queue index after the write */
	uint32_t ring_last;
	bool ring; /* anything pushed (else done at once) */
};

/* One VM and its vSMMU. The lock is the VMM's vSMMU lock: it guards
 * every field after it; the vCPU threads of the VM take it. */
/* offload: a CMD_SYNC with CS=SIG_IRQ waiting for its MSI write. */
struct kvmb_msi {
	uint32_t ring; /* its ring index */
	uint32_t data; /* MSIData */
	uint64_t addr; /* MSIAddr */
};

struct kvmb_vm {
	struct kvmb_run *run;
	struct kvmh_vm kvm;
	bool kvm_ok, lock_ok;
	pthread_mutex_t lock;
	struct iofd_viommu *vi;
	uint32_t vdev[WL_MAX_SIDS]; /* qemu modes */
	uint32_t prod, cons; /* linear queue indexes */
	unsigned int vcpus_done; /* --kvm-lap: vCPU threads out of KVM_RUN
				  * (atomic, relaxed: a hint to stop waiting) */
	uint32_t vsmmu, ring_id;
	struct bench_ring ring; /* offload */
	struct kvmb_seg seg[KG_CMDQ_ENTS];
	uint32_t seg_head, seg_tail;
	bool sync_out; /* a pushed SYNC not yet seen complete */
	uint32_t sync_ring; /* the last one's ring index */
	/* offload + MSIPOLL: the VMM's completion thread (kvmb_msi_main())
	 * performs the MSI writes of completed SYNCs, oldest first. */
	struct kvmb_msi msi[KG_CMDQ_ENTS];
	uint32_t msi_head, msi_tail;
	pthread_cond_t msi_cv; /* signalled when a SYNC is queued or on stop */
	bool msi_cv_ok, msi_stop, msi_started;
	pthread_t msi_th;
	int msi_rc;
	uint64_t msi_writes; /* MSI writes performed (every mode) */
	uint64_t msi_cpu_ns; /* the completion thread's CPU time */
	struct kvmb_vcpu *vc;
	unsigned int nvc;
	struct kvmv_vm *vq; /* vcmdq: the CMDQV (kvm-vcmdq.c) */
};

/* One mode's run: owned by the main thread; vCPU threads read it (the
 * gate under gate_lock). */
struct kvmb_run {
	const struct kvmb_opts *o;
	const struct wl *w;
	enum kvmb_mode mode;
	int kvm_fd;
	uint64_t tsc_hz;
	struct kvmb_vm *vms;
	struct iofd_backend *be; /* qemu modes */
	struct iofd_hsmmu *h[KVMB_MAX_HSMMU];
	struct core_service *svc; /* offload */
	struct kvmv_run *vq; /* vcmdq (kvm-vcmdq.c) */
	struct kvmi_run *idle; /* vcmdq --idle (kvm-idle.c) */
	bool pin; /* --kvm-pin, offload: vcpu_cpus / svc_cpus */
	cpu_set_t vcpu_cpus;
	char svc_cpus[512];
	pthread_mutex_t gate_lock;
	pthread_cond_t gate;
	int go; /* under gate_lock: 1 start, -1 abort */
};

static inline uint64_t kvmb_now_ns(void)
{
	return common_now_ns();
}

static inline bool kvmb_verifying(const struct kvmb_run *run)
{
	return run->o->verify;
}

static inline uint64_t *kvmb_ram64(struct kvmh_vm *vm, uint64_t addr)
{
	return (uint64_t *)(void *)(vm->ram + addr);
}

static inline uint64_t kvmb_ticks_ns(const struct kvmb_run *run, uint64_t ticks)
{
	return (uint64_t)((double)ticks * 1e9 / (double)run->tsc_hz);
}

/* Make @b the next batch of @vc's stream and write it into slot @k of
 * @vc's block (guest RAM). */
void kvmb_slot_refill(struct kvmb_vcpu *vc, unsigned int k, struct wl_batch *b);

/* Count batch @b as forwarded by @vc (its owner thread). */
static inline void kvmb_count_batch(struct kvmb_vcpu *vc,
				    const struct wl_batch *b)
{
	vc->batches++;
	vc->cmds += b->n;
	vc->fwd += b->nfwd;
	vc->syncs += b->n - b->nfwd;
}
/* offload + MSIPOLL: a VM's completion thread (arg: struct kvmb_vm). */
void *kvmb_msi_main(void *arg);
/* The MMIO exit handler of every vCPU (kvmh_mmio_fn). */
int kvmb_on_mmio(void *ctx, struct kvmh_vcpu *c, uint64_t addr, uint8_t *data,
		 uint32_t len, bool is_write);

/*
 * vcmdq mode (kvm-vcmdq.c). kvmv_setup() after setup_guest(): the
 * register page, its memory slot, the consumer's view of guest RAM, the
 * vCPUs' program fields. kvmv_start() before the vCPUs may run (the
 * consumer must answer the enable handshake), kvmv_stop() after they
 * were joined; kvmv_collect() adds its counters, kvmv_teardown() frees.
 * kvmv_mmio() on a vCPU thread: the trapped CMDQV window (@off from
 * KG_CMDQV), under the VM's lock.
 */
int kvmv_setup(struct kvmb_run *run, char *err, size_t errlen);
int kvmv_start(struct kvmb_run *run);
void kvmv_stop(struct kvmb_run *run);
void kvmv_collect(struct kvmb_run *run, struct kvmb_result *res);
void kvmv_teardown(struct kvmb_run *run);
int kvmv_mmio(struct kvmb_vcpu *vc, uint64_t off, uint8_t *data, uint32_t len,
	      bool is_write);
/* Does a guest-owned VINTF accept @c (TLBI_NH_ASID, TLBI_NH_VA, ATC_INV,
 * CMD_SYNC)? The guest sends a batch with any other command to the SMMU
 * CMDQ instead. */
bool kvmv_cmd_accepted(const struct cmdq_cmd *c);
/*
 * The harness thread's pieces, for kvm-idle.c (harness thread): one step
 * for @vc (take its completed batches; with @feed make batches ready up
 * to kvmv_run.ahead beyond the completed ones; true if it moved), that
 * bound, whether kvmv_stop() was called, and a VM's vCMDQ id.
 */
bool kvmv_harness_step(struct kvmb_vcpu *vc, bool feed);
void kvmv_set_ahead(struct kvmb_run *run, uint64_t ahead);
bool kvmv_stopping(struct kvmb_run *run);
uint32_t kvmv_id(const struct kvmb_vm *vm);

/*
 * --idle (kvm-idle.c): kvmi_setup() at the end of kvmv_setup() attaches
 * the idle queues; kvmi_harness() is the harness thread's body then;
 * kvmi_collect() from kvmv_collect(); kvmi_teardown() detaches.
 */
int kvmi_setup(struct kvmb_run *run, char *err, size_t errlen);
void kvmi_harness(struct kvmb_run *run);
void kvmi_collect(struct kvmb_run *run, struct kvmb_result *res);
void kvmi_teardown(struct kvmb_run *run);
/* Service CPU (worker + issuers), worker sleeps and passes so far, over
 * the host SMMUs (kvm-bench.c; any thread). */
uint64_t kvmb_svc_cpu(struct kvmb_run *run, uint64_t *ret_sleeps,
		      uint64_t *ret_passes);

void kvmb_print(const struct kvmb_opts *o, const struct wl *w, uint64_t tsc_hz,
		const struct kvmb_result *res);
int kvmb_write_json(const char *path, const struct kvmb_opts *o,
		    const struct wl *w, uint64_t tsc_hz,
		    const struct kvmb_result *res);

#endif
