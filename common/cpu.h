/* SPDX-License-Identifier: MIT */
/*
 * The spin-wait hint, one copy for every folder that busy-waits (ring's
 * producer, the benchmarks).
 *
 * Contract: header-only, no state; callable from any thread. Orders
 * nothing: a spin loop still needs its acquire load (common/barrier.h).
 */
#ifndef SMMU_OFFLOAD_COMMON_CPU_H
#define SMMU_OFFLOAD_COMMON_CPU_H

/* common_cpu_relax() - tell the CPU this is a spin loop (x86 pause, arm64
 * yield; nothing elsewhere). */
static inline void common_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ __volatile__("pause");
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

#endif
