/* SPDX-License-Identifier: MIT */
/*
 * A minimal VMM for the KVM harness: one KVM VM with memfd-backed guest
 * RAM, vCPUs whose KVM_RUN loops the caller drives (one host thread per
 * vCPU), MMIO exits handed to a callback, exits counted by reason.
 * The architecture part (page tables, descriptor tables, registers) is
 * vmm-<arch>.c; the guest program is guest-<arch>.S (bench/kvm/guest.h).
 *
 * Thread context: kvmh_vm_* from one control thread; kvmh_vcpu_run() on
 * the vCPU's own thread (one thread per vCPU, for the vCPU's lifetime);
 * kvmh_vcpu_kick() from any thread. Guest RAM is shared with the guest:
 * the host reads what the guest wrote with one load per field.
 * Nothing here logs; functions return 0 or -errno, and fill @err (if
 * given) with what failed.
 */
#ifndef SMMU_OFFLOAD_BENCH_KVM_VMM_H
#define SMMU_OFFLOAD_BENCH_KVM_VMM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A VM: owned by the control thread that made it; its vCPU threads only
 * read it and use @ram. */
struct kvmh_vm {
	int kvm_fd, vm_fd, mem_fd;
	uint8_t *ram;
	size_t ram_size;
	int run_size; /* KVM_GET_VCPU_MMAP_SIZE */
};

/* Exits by reason, counted from KVM_RUN returns. Owned by the vCPU's
 * thread; read after it stopped. */
struct kvmh_exits {
	uint64_t mmio_write, mmio_read, other, intr;
	uint64_t runs; /* KVM_RUN calls */
};

/* A vCPU: owned by the thread in kvmh_vcpu_run(); kvmh_vcpu_kick() only
 * touches @stop, @running and kvm_run.immediate_exit. */
struct kvmh_vcpu {
	struct kvmh_vm *vm;
	int fd;
	unsigned int idx;
	void *run; /* struct kvm_run, mmap'd */
	pthread_t thread; /* set by kvmh_vcpu_run() for kvmh_vcpu_kick() */
	bool running; /* atomic: @thread is set */
	bool stop; /* atomic: kvmh_vcpu_kick() asked to stop */
	struct kvmh_exits exits;
};

/*
 * What an MMIO exit handler returns: KVMH_CONTINUE (KVM_RUN again),
 * KVMH_DONE (the guest finished: kvmh_vcpu_run() returns 0), or -errno
 * (kvmh_vcpu_run() returns it). For a read, fill @data[0 .. @len).
 */
#define KVMH_CONTINUE 0
#define KVMH_DONE 1
typedef int (*kvmh_mmio_fn)(void *ctx, struct kvmh_vcpu *c, uint64_t addr,
			    uint8_t *data, uint32_t len, bool is_write);

/**
 * kvmh_open() - open /dev/kvm and check it is usable: API version 12 and
 * a VM with one vCPU can be created.
 * Return: 0 with *@ret_fd (O_CLOEXEC); -ENOENT/-EACCES (no /dev/kvm or
 * no access), -ENOTSUP (wrong API version or unsupported architecture),
 * or the errno of the failing ioctl.
 */
int kvmh_open(int *ret_fd, char *err, size_t errlen);

/**
 * kvmh_vm_new() - create a VM on @kvm_fd (not consumed) with @ram_size
 * bytes of memfd-backed RAM at guest address 0 (@mem_fd: sealed against
 * shrinking and growing, so a service may map it: ring/gmem.h), the guest program copied
 * to KG_CODE and the architecture's tables set up.
 */
int kvmh_vm_new(struct kvmh_vm *vm, int kvm_fd, size_t ram_size, char *err,
		size_t errlen);
/* kvmh_vm_free() - also after a failed kvmh_vm_new(). */
void kvmh_vm_free(struct kvmh_vm *vm);

/**
 * kvmh_vcpu_new() - create vCPU @idx, entering the guest program at
 * KG_CODE with its block KG_VCPU(@idx) as argument and stack.
 */
int kvmh_vcpu_new(struct kvmh_vm *vm, unsigned int idx, struct kvmh_vcpu *c,
		  char *err, size_t errlen);
/* kvmh_vcpu_free() - also after a failed kvmh_vcpu_new(). */
void kvmh_vcpu_free(struct kvmh_vcpu *c);

/**
 * kvmh_vcpu_run() - KVM_RUN until @fn returns KVMH_DONE or an error, or
 * kvmh_vcpu_kick() (then -EINTR). Exits other than MMIO that the guest
 * cannot cause on purpose (shutdown, failed entry, internal error, hlt)
 * end the run with -EIO and a message in @err.
 */
int kvmh_vcpu_run(struct kvmh_vcpu *c, kvmh_mmio_fn fn, void *ctx, char *err,
		  size_t errlen);

/* kvmh_vcpu_kick() - make kvmh_vcpu_run() return -EINTR soon. */
void kvmh_vcpu_kick(struct kvmh_vcpu *c);

/* kvmh_tsc_hz() - the host TSC rate, measured over 50 ms against
 * CLOCK_MONOTONIC. The guest's TSC runs at the same rate. x86 only. */
uint64_t kvmh_tsc_hz(void);

/* kvmh_slot_set() - memory slot @slot (1.. : 0 is RAM) maps @size bytes
 * at @host to guest-physical @gpa (page aligned); @size 0 deletes it. */
int kvmh_slot_set(struct kvmh_vm *vm, uint32_t slot, uint64_t gpa,
		  uint64_t size, void *host);

/* Register an ioeventfd (4-byte writes at @addr) or a coalesced-MMIO
 * zone; the exit-cost programs use them. */
int kvmh_ioeventfd(struct kvmh_vm *vm, uint64_t addr, int efd);
int kvmh_coalesced_zone(struct kvmh_vm *vm, uint64_t addr, uint32_t size);

/* Architecture part (vmm-<arch>.c). */
int kvmh_arch_vm_setup(struct kvmh_vm *vm, char *err, size_t errlen);
int kvmh_arch_vcpu_setup(struct kvmh_vcpu *c, uint64_t entry, uint64_t arg,
			 uint64_t stack, char *err, size_t errlen);

/* The guest program (guest-<arch>.S). */
extern const unsigned char kvm_guest_start[], kvm_guest_end[];

#endif
