/* SPDX-License-Identifier: MIT */
/*
 * The project's clock readings, in nanoseconds: one copy for every folder
 * (core, ring's producer, the daemon, the benchmarks).
 *
 * Contract: header-only, no state, no allocation; callable from any
 * thread. A clock_gettime() failure cannot happen for these clock ids on
 * Linux, so it is not reported.
 */
#ifndef SMMU_OFFLOAD_COMMON_CLOCK_H
#define SMMU_OFFLOAD_COMMON_CLOCK_H

#include <stdint.h>
#include <time.h>

/* common_clock_ns() - @id's current value in ns (0 if @id is unusable). */
static inline uint64_t common_clock_ns(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* common_now_ns() - CLOCK_MONOTONIC in ns: deadlines and latencies. */
static inline uint64_t common_now_ns(void)
{
	return common_clock_ns(CLOCK_MONOTONIC);
}

/* common_thread_cpu_ns() - the calling thread's CPU time in ns. */
static inline uint64_t common_thread_cpu_ns(void)
{
	return common_clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

#endif
