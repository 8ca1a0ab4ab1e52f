/* SPDX-License-Identifier: MIT */
/*
 * x86-64 part of the harness VMM: the guest starts in 64-bit long mode at
 * CPL3, set up entirely from the host (no boot code runs in the guest).
 * Why CPL3: on these machines KVM is nested and software-assisted, and
 * guest code at CPL0 runs emulated, ~1000x slower
 * (../shared/docs/platform-notes.md); at CPL3 it runs natively. So:
 * code and data segments have DPL 3, every page-table level has the U
 * bit, RFLAGS.IOPL = 3, interrupts stay off.
 *
 * Tables in guest RAM (bench/kvm/guest.h): a GDT (null, kernel code,
 * kernel data, user code, user data, 64-bit TSS), one PML4 entry, two PDPT
 * entries and two page directories of 2 MiB pages identity-mapping 0..2
 * GiB: RAM at the bottom, the vSMMU window KG_MMIO at 1 GiB (no memory
 * slot: every access exits).
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "bench/kvm/guest.h"
#include "bench/kvm/vmm.h"
#include "common/clock.h"

#define CR0_PE (1u << 0)
#define CR0_MP (1u << 1)
#define CR0_ET (1u << 4)
#define CR0_NE (1u << 5)
#define CR0_WP (1u << 16)
#define CR0_AM (1u << 18)
#define CR0_PG (1u << 31)
#define CR4_PAE (1u << 5)
#define CR4_OSFXSR (1u << 9)
#define CR4_OSXMMEXCPT (1u << 10)
#define EFER_SCE (1u << 0)
#define EFER_LME (1u << 8)
#define EFER_LMA (1u << 10)
#define EFER_NXE (1u << 11)

#define PTE_P (1ull << 0)
#define PTE_RW (1ull << 1)
#define PTE_US (1ull << 2)
#define PTE_PS (1ull << 7)

#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UCODE (0x18 | 3)
#define SEL_UDATA (0x20 | 3)
#define SEL_TSS 0x28

/* A GDT code/data descriptor: flat, 4 KiB granularity. */
static uint64_t gdt_entry(unsigned int type, unsigned int dpl, bool l)
{
	uint64_t d = 0xffffull; /* limit 15:0 */

	d |= (uint64_t)(type | 0x10) << 40; /* S = 1 */
	d |= (uint64_t)dpl << 45;
	d |= 1ull << 47; /* P */
	d |= 0xfull << 48; /* limit 19:16 */
	d |= (l ? 1ull << 53 : 1ull << 54); /* L, or D/B for data */
	d |= 1ull << 55; /* G */
	return d;
}

int kvmh_arch_vm_setup(struct kvmh_vm *vm, char *err, size_t errlen)
{
	uint64_t *gdt = (uint64_t *)(void *)(vm->ram + KG_GDT);
	uint64_t *pml4 = (uint64_t *)(void *)(vm->ram + KG_PML4);
	uint64_t *pdpt = (uint64_t *)(void *)(vm->ram + KG_PDPT);
	uint64_t *pd = (uint64_t *)(void *)(vm->ram + KG_PD);
	uint64_t tss = KG_TSS;

	(void)err;
	(void)errlen;
	gdt[0] = 0;
	gdt[1] = gdt_entry(0xb, 0, true);
	gdt[2] = gdt_entry(0x3, 0, false);
	gdt[3] = gdt_entry(0xb, 3, true);
	gdt[4] = gdt_entry(0x3, 3, false);
	/* 64-bit TSS descriptor (busy), 16 bytes. */
	gdt[5] = 0x67 | (tss & 0xffffff) << 16 | 0xbull << 40 | 1ull << 47 |
		 (tss >> 24 & 0xff) << 56;
	gdt[6] = tss >> 32;
	pml4[0] = KG_PDPT | PTE_P | PTE_RW | PTE_US;
	for (unsigned int g = 0; g < 2; g++) {
		pdpt[g] = (KG_PD + g * 0x1000ull) | PTE_P | PTE_RW | PTE_US;
		for (unsigned int i = 0; i < 512; i++)
			pd[g * 512 + i] = ((uint64_t)(g * 512 + i) << 21) |
					  PTE_P | PTE_RW | PTE_US | PTE_PS;
	}
	return 0;
}

static void seg_set(struct kvm_segment *s, uint16_t sel, unsigned int type,
		    unsigned int dpl, bool code)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = (uint8_t)type;
	s->present = 1;
	s->dpl = (uint8_t)dpl;
	s->db = code ? 0 : 1;
	s->s = 1;
	s->l = code ? 1 : 0;
	s->g = 1;
}

/* Give the guest the host's supported CPUID (long mode among it). */
static int set_cpuid(struct kvmh_vcpu *c)
{
	unsigned int n = 128;
	struct kvm_cpuid2 *cpuid;
	int r = 0;

	cpuid = calloc(1, sizeof(*cpuid) + n * sizeof(cpuid->entries[0]));
	if (!cpuid)
		return -ENOMEM;
	cpuid->nent = n;
	if (ioctl(c->vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) ||
	    ioctl(c->fd, KVM_SET_CPUID2, cpuid))
		r = -errno;
	free(cpuid);
	return r;
}

int kvmh_arch_vcpu_setup(struct kvmh_vcpu *c, uint64_t entry, uint64_t arg,
			 uint64_t stack, char *err, size_t errlen)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int r;

	r = set_cpuid(c);
	if (r) {
		snprintf(err, errlen, "KVM_SET_CPUID2: %s", strerror(-r));
		return r;
	}
	if (ioctl(c->fd, KVM_GET_SREGS, &sregs)) {
		r = -errno;
		snprintf(err, errlen, "KVM_GET_SREGS: %s", strerror(-r));
		return r;
	}
	sregs.cr3 = KG_PML4;
	sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
	sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM |
		    CR0_PG;
	sregs.efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
	seg_set(&sregs.cs, SEL_UCODE, 0xb, 3, true);
	seg_set(&sregs.ds, SEL_UDATA, 0x3, 3, false);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	memset(&sregs.tr, 0, sizeof(sregs.tr));
	sregs.tr.base = KG_TSS;
	sregs.tr.limit = 0x67;
	sregs.tr.selector = SEL_TSS;
	sregs.tr.type = 0xb;
	sregs.tr.present = 1;
	sregs.gdt.base = KG_GDT;
	sregs.gdt.limit = 7 * 8 - 1;
	if (ioctl(c->fd, KVM_SET_SREGS, &sregs)) {
		r = -errno;
		snprintf(err, errlen, "KVM_SET_SREGS: %s", strerror(-r));
		return r;
	}
	memset(&regs, 0, sizeof(regs));
	regs.rip = entry;
	regs.rdi = arg;
	regs.rsp = stack;
	regs.rflags = 0x3002; /* IOPL 3, reserved bit 1; IF = 0 */
	if (ioctl(c->fd, KVM_SET_REGS, &regs)) {
		r = -errno;
		snprintf(err, errlen, "KVM_SET_REGS: %s", strerror(-r));
		return r;
	}
	return 0;
}

uint64_t kvmh_tsc_hz(void)
{
	struct timespec ts = { 0, 50000000 };
	uint64_t t0, t1, c0, c1;

	t0 = common_now_ns();
	c0 = __builtin_ia32_rdtsc();
	nanosleep(&ts, NULL);
	t1 = common_now_ns();
	c1 = __builtin_ia32_rdtsc();
	return (uint64_t)((double)(c1 - c0) * 1e9 / (double)(t1 - t0));
}
