/* SPDX-License-Identifier: MIT */
/*
 * smmu-bench --vcpu kvm: the modes on real vCPUs (bench/kvm/). Each VM is
 * a KVM VM whose vCPUs (one host thread each) run the guest program of
 * bench/kvm/guest-<arch>.S; it submits the workload's batches the way
 * Linux's arm-smmu-v3 driver does and the VMM side of each mode runs on
 * its MMIO exits. Results: bench/SCHEMA.md ("vcpu": "kvm").
 *
 * Thread context: kvmb_run() from the main thread; it starts and joins
 * every thread it uses.
 */
#ifndef SMMU_OFFLOAD_BENCH_KVM_BENCH_H
#define SMMU_OFFLOAD_BENCH_KVM_BENCH_H

#include <stdbool.h>
#include <stdint.h>

#include "bench/workload.h"
#include "iommufd/sim.h"

/* Exit status of smmu-bench --vcpu kvm and kvm-exit-costs when /dev/kvm
 * is missing or unusable (the automake/meson "skipped" status). */
#define KVMB_EXIT_NO_KVM 77

/* The options smmu-bench passes on; read-only during the run. */
struct kvmb_opts {
	bool modes[4]; /* qemu, qemu-batched, offload, vcmdq */
	unsigned int vms, vcpus, hsmmus;
	double duration; /* seconds per mode */
	uint64_t syncs; /* batches per vCPU instead of duration; 0 = off */
	uint64_t idle_active; /* --idle: active-phase batches, 0 = KVMI_ACTIVE */
	uint64_t seed;
	bool verify, quiet;
	struct iofd_sim_config sim; /* with its wait mode */
	unsigned int poll_us;
	unsigned int vcmdq_poll_us; /* 0: the service's default */
	bool msipoll; /* guests wait for SYNCs by MSI write (Linux's
		       * MSIPOLL), not by reading CMDQ_CONS */
	bool pin; /* offload, vcmdq: vCPU threads and service workers on disjoint
		   * halves of the CPUs this process may use */
	/*
	 * A test of the guest's CONS poll (check-smmu-bench-kvm.py, case
	 * lap): vCPU 0 of each VM holds its first CONS read after a SYNC
	 * until the other vCPUs moved CONS more than a queue past it, or
	 * finished; the index + wrap-bit test then reads that SYNC as not
	 * consumed.
	 */
	bool lap;
	/* --idle MS (kvm-idle.c): mode vcmdq, one guest beside @idle_queues
	 * idle vCMDQ queues; its idle-to-active round trips and its first
	 * command after MS ms idle. 0 = the normal run. */
	unsigned int idle_ms, idle_queues;
	const char *json;
};

/**
 * kvmb_run() - run the selected modes on KVM, print the table, write the
 * JSON. Return: 0; KVMB_EXIT_NO_KVM (one line on stderr said why); 1 on
 * a failed mode or stale oracle entries; 2 on bad options.
 */
int kvmb_run(const struct kvmb_opts *o, const struct wl *w);

#endif
