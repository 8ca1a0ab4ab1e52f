/* SPDX-License-Identifier: MIT */
/*
 * Minimal VMM: VM, memory, vCPUs, the KVM_RUN loop. Facts used (from
 * include/uapi/linux/kvm.h and the KVM API documentation): KVM_RUN
 * returns with kvm_run.exit_reason set; for KVM_EXIT_MMIO the access is
 * in kvm_run.mmio and, for a read, the data the VMM stores there is what
 * the guest reads when KVM_RUN is called again; kvm_run.immediate_exit
 * makes KVM_RUN return -EINTR at once, which closes the window between a
 * stop check and the ioctl that a signal alone leaves open.
 */
#include "bench/kvm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench/kvm/guest.h"

/* The kick signal: interrupts KVM_RUN; its handler does nothing. */
#define KVMH_SIG (SIGRTMIN + 3)

static void kick_handler(int sig)
{
	(void)sig;
}

static int fail(char *err, size_t errlen, int r, const char *what)
{
	if (err)
		snprintf(err, errlen, "%s: %s", what, strerror(-r));
	return r;
}

int kvmh_open(int *ret_fd, char *err, size_t errlen)
{
	struct sigaction sa;
	struct kvmh_vm vm;
	struct kvmh_vcpu c;
	int fd, r;

	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errlen, -errno, "/dev/kvm");
	r = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (r != KVM_API_VERSION) {
		close(fd);
		if (err)
			snprintf(err, errlen,
				 "/dev/kvm: API version %d, not %d", r,
				 KVM_API_VERSION);
		return -ENOTSUP;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(KVMH_SIG, &sa, NULL);
	/* A usable KVM creates a VM and a vCPU with our setup. */
	r = kvmh_vm_new(&vm, fd, KG_RAM_SIZE, err, errlen);
	if (!r) {
		r = kvmh_vcpu_new(&vm, 0, &c, err, errlen);
		kvmh_vcpu_free(&c);
	}
	kvmh_vm_free(&vm);
	if (r) {
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

int kvmh_vm_new(struct kvmh_vm *vm, int kvm_fd, size_t ram_size, char *err,
		size_t errlen)
{
	struct kvm_userspace_memory_region mr;
	size_t code = (size_t)(kvm_guest_end - kvm_guest_start);
	int r;

	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = kvm_fd;
	vm->vm_fd = vm->mem_fd = -1;
	vm->ram = MAP_FAILED;
	if (code > KG_CODE_MAX || ram_size < KG_RAM_SIZE)
		return fail(err, errlen, -EINVAL, "guest image");
	vm->run_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size < (int)sizeof(struct kvm_run))
		return fail(err, errlen, vm->run_size < 0 ? -errno : -EINVAL,
			    "KVM_GET_VCPU_MMAP_SIZE");
	vm->vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return fail(err, errlen, -errno, "KVM_CREATE_VM");
	/* KVM_CREATE_VM gives an fd without O_CLOEXEC on old kernels. */
	fcntl(vm->vm_fd, F_SETFD, FD_CLOEXEC);
	vm->mem_fd =
		memfd_create("kvm-guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (vm->mem_fd < 0)
		return fail(err, errlen, -errno, "memfd_create");
	if (ftruncate(vm->mem_fd, (off_t)ram_size))
		return fail(err, errlen, -errno, "ftruncate");
	/* A service that maps guest RAM (ring/gmem.h) needs it unshrinkable. */
	if (fcntl(vm->mem_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW))
		return fail(err, errlen, -errno, "F_ADD_SEALS");
	vm->ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       vm->mem_fd, 0);
	if (vm->ram == MAP_FAILED)
		return fail(err, errlen, -errno, "mmap guest RAM");
	vm->ram_size = ram_size;
	memset(&mr, 0, sizeof(mr));
	mr.slot = 0;
	mr.guest_phys_addr = 0;
	mr.memory_size = ram_size;
	mr.userspace_addr = (uint64_t)(uintptr_t)vm->ram;
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr))
		return fail(err, errlen, -errno, "KVM_SET_USER_MEMORY_REGION");
	memcpy(vm->ram + KG_CODE, kvm_guest_start, code);
	r = kvmh_arch_vm_setup(vm, err, errlen);
	return r;
}

void kvmh_vm_free(struct kvmh_vm *vm)
{
	if (vm->ram != MAP_FAILED && vm->ram)
		munmap(vm->ram, vm->ram_size);
	if (vm->mem_fd >= 0)
		close(vm->mem_fd);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	vm->ram = MAP_FAILED;
	vm->mem_fd = vm->vm_fd = -1;
}

int kvmh_vcpu_new(struct kvmh_vm *vm, unsigned int idx, struct kvmh_vcpu *c,
		  char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->vm = vm;
	c->idx = idx;
	c->run = MAP_FAILED;
	if (idx >= KG_MAX_VCPUS) {
		c->fd = -1;
		return fail(err, errlen, -EINVAL, "vCPU index");
	}
	c->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)idx);
	if (c->fd < 0)
		return fail(err, errlen, -errno, "KVM_CREATE_VCPU");
	fcntl(c->fd, F_SETFD, FD_CLOEXEC);
	c->run = mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE,
		      MAP_SHARED, c->fd, 0);
	if (c->run == MAP_FAILED)
		return fail(err, errlen, -errno, "mmap kvm_run");
	return kvmh_arch_vcpu_setup(c, KG_CODE, KG_VCPU(idx),
				    KG_VCPU(idx) + KG_VCPU_SIZE, err, errlen);
}

void kvmh_vcpu_free(struct kvmh_vcpu *c)
{
	if (c->run != MAP_FAILED && c->run)
		munmap(c->run, (size_t)c->vm->run_size);
	if (c->fd >= 0)
		close(c->fd);
	c->run = MAP_FAILED;
	c->fd = -1;
}

static int run_exit(struct kvmh_vcpu *c, struct kvm_run *run, kvmh_mmio_fn fn,
		    void *ctx, char *err, size_t errlen)
{
	switch (run->exit_reason) {
	case KVM_EXIT_MMIO:
		if (run->mmio.is_write)
			c->exits.mmio_write++;
		else
			c->exits.mmio_read++;
		if (run->mmio.len > sizeof(run->mmio.data))
			return fail(err, errlen, -EIO, "MMIO length");
		return fn(ctx, c, run->mmio.phys_addr, run->mmio.data,
			  run->mmio.len, run->mmio.is_write);
	case KVM_EXIT_INTR:
		c->exits.intr++;
		return KVMH_CONTINUE;
	case KVM_EXIT_FAIL_ENTRY:
		if (err)
			snprintf(err, errlen,
				 "vCPU %u: KVM_EXIT_FAIL_ENTRY, reason %#llx",
				 c->idx,
				 (unsigned long long)run->fail_entry
					 .hardware_entry_failure_reason);
		return -EIO;
	case KVM_EXIT_INTERNAL_ERROR:
		if (err)
			snprintf(
				err, errlen,
				"vCPU %u: KVM_EXIT_INTERNAL_ERROR, suberror %u",
				c->idx, run->internal.suberror);
		return -EIO;
	default:
		c->exits.other++;
		if (err)
			snprintf(err, errlen, "vCPU %u: unexpected exit %u",
				 c->idx, run->exit_reason);
		return -EIO;
	}
}

int kvmh_vcpu_run(struct kvmh_vcpu *c, kvmh_mmio_fn fn, void *ctx, char *err,
		  size_t errlen)
{
	struct kvm_run *run = c->run;

	c->thread = pthread_self();
	/* R_RUNNING: pairs with A_RUNNING in kvmh_vcpu_kick(). */
	__atomic_store_n(&c->running, true, __ATOMIC_RELEASE);
	for (;;) {
		int r;

		/* A_STOP: pairs with R_STOP in kvmh_vcpu_kick(). */
		if (__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE))
			return -EINTR;
		c->exits.runs++;
		if (ioctl(c->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				c->exits.intr++;
				run->immediate_exit = 0;
				continue;
			}
			return fail(err, errlen, -errno, "KVM_RUN");
		}
		r = run_exit(c, run, fn, ctx, err, errlen);
		if (r == KVMH_DONE)
			return 0;
		if (r)
			return r;
	}
}

void kvmh_vcpu_kick(struct kvmh_vcpu *c)
{
	struct kvm_run *run = c->run;

	/* R_STOP: pairs with A_STOP in kvmh_vcpu_run(). */
	__atomic_store_n(&c->stop, true, __ATOMIC_RELEASE);
	__atomic_store_n(&run->immediate_exit, 1, __ATOMIC_RELAXED);
	/* A_RUNNING: pairs with R_RUNNING; before it, the stop flag is
	 * seen at the loop's first check. */
	if (__atomic_load_n(&c->running, __ATOMIC_ACQUIRE))
		pthread_kill(c->thread, KVMH_SIG);
}

int kvmh_slot_set(struct kvmh_vm *vm, uint32_t slot, uint64_t gpa,
		  uint64_t size, void *host)
{
	struct kvm_userspace_memory_region mr;

	memset(&mr, 0, sizeof(mr));
	mr.slot = slot;
	mr.guest_phys_addr = gpa;
	mr.memory_size = size;
	mr.userspace_addr = (uint64_t)(uintptr_t)host;
	return ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr) ? -errno : 0;
}

int kvmh_ioeventfd(struct kvmh_vm *vm, uint64_t addr, int efd)
{
	struct kvm_ioeventfd io;

	memset(&io, 0, sizeof(io));
	io.addr = addr;
	io.len = 4;
	io.fd = efd;
	return ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) ? -errno : 0;
}

int kvmh_coalesced_zone(struct kvmh_vm *vm, uint64_t addr, uint32_t size)
{
	struct kvm_coalesced_mmio_zone z;

	memset(&z, 0, sizeof(z));
	z.addr = addr;
	z.size = size;
	return ioctl(vm->vm_fd, KVM_REGISTER_COALESCED_MMIO, &z) ? -errno : 0;
}
