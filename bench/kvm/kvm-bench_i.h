/* SPDX-License-Identifier: MIT */
/* Internals shared by kvm-bench.c (the runs) and kvm-report.c (output). */
#ifndef SMMU_OFFLOAD_BENCH_KVM_BENCH_I_H
#define SMMU_OFFLOAD_BENCH_KVM_BENCH_I_H

#include <stdbool.h>
#include <stdint.h>

#include "bench/kvm/kvm-bench.h"
#include "bench/kvm/vmm.h"
#include "core/hist.h"

enum kvmb_mode { KVMB_QEMU, KVMB_QEMU_BATCHED, KVMB_OFFLOAD, KVMB_NMODES };
extern const char *const kvmb_mode_names[KVMB_NMODES];

/* Offload: how long a CONS read exit spins on the ring before it sleeps
 * on the completion eventfd. */
#define KVMB_SPIN_NS 50000u

/* What one mode measured, summed over vCPUs; written by the main thread
 * after the join. */
struct kvmb_result {
	bool ran;
	int err;
	char errmsg[256];
	double wall_s;
	uint64_t cmds, fwd, syncs, batches; /* guest side, from the VMM */
	uint64_t guest_cmds, guest_batches; /* as the guest counted */
	uint64_t busy_ns, spin_ns; /* guest rdtsc: in the driver, lock wait */
	struct core_hist lat; /* guest rdtsc: PROD write -> SYNC seen, ns */
	struct kvmh_exits exits; /* the DONE exit of each vCPU excluded */
	uint64_t handler_ns; /* vCPU threads in MMIO exit handlers */
	uint64_t prod_ns, cons_ns; /* of which in PROD writes, CONS reads */
	struct core_hist prod_h, cons_h; /* the same per exit */
	uint64_t vcpu_cpu_ns, svc_cpu_ns;
	uint64_t svc_sleeps; /* offload: worker sleeps in the kernel */
	uint64_t ioctls, host_syncs;
	uint64_t checked, stale;
	bool verified, has_svc;
	unsigned int hsmmus_used;
};

void kvmb_print(const struct kvmb_opts *o, const struct wl *w, uint64_t tsc_hz,
		const struct kvmb_result *res);
int kvmb_write_json(const char *path, const struct kvmb_opts *o,
		    const struct wl *w, uint64_t tsc_hz,
		    const struct kvmb_result *res);

#endif
