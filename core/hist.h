/* SPDX-License-Identifier: MIT */
/*
 * core_hist: a log-linear histogram without sampling loss, for latencies
 * (ns) and sizes. Values below 64 are exact; above, each power of two is
 * split into 32 linear sub-buckets, so a reported percentile is within
 * 3.2% of the true value (the upper edge of its bucket, never below it).
 * Count, sum, min and max are exact. 1920 buckets, 15 KiB. smmu-bench and
 * the service's metrics share it (Debian has no HdrHistogram library).
 *
 * Thread context: one writer. core_hist_add() for a histogram only its
 * owner reads; core_hist_add_shared() when other threads take
 * core_hist_snapshot()s concurrently (relaxed atomics, no lock). Nothing
 * allocates, locks or logs.
 */
#ifndef SMMU_OFFLOAD_CORE_HIST_H
#define SMMU_OFFLOAD_CORE_HIST_H

#include <stdint.h>

#define CORE_HIST_SUB_BITS 5
#define CORE_HIST_BUCKETS ((64 - CORE_HIST_SUB_BITS + 1) << CORE_HIST_SUB_BITS)

struct core_hist {
	uint64_t count, sum, min, max;
	uint64_t b[CORE_HIST_BUCKETS];
};

/* core_hist_init() - empty the histogram. */
void core_hist_init(struct core_hist *h);

/* core_hist_add() - record @v; single-threaded use. */
void core_hist_add(struct core_hist *h, uint64_t v);

/* core_hist_add_shared() - record @v @n times; the writer of a histogram
 * others snapshot. */
void core_hist_add_shared(struct core_hist *h, uint64_t v, uint64_t n);

/* core_hist_snapshot() - copy @src (being written by its owner) to @dst. */
void core_hist_snapshot(struct core_hist *dst, const struct core_hist *src);

/* core_hist_merge() - add every value of @src to @dst. */
void core_hist_merge(struct core_hist *dst, const struct core_hist *src);

/*
 * core_hist_quantile() - the smallest bucket upper edge below or at which
 * at least @q (0 < q <= 1) of the values lie, clamped to the exact max;
 * q = 1 gives the exact max. 0 for an empty histogram.
 */
uint64_t core_hist_quantile(const struct core_hist *h, double q);

/* Bucket index of @v, and the largest value of bucket @idx. */
unsigned int core_hist_index(uint64_t v);
uint64_t core_hist_upper(unsigned int idx);

#endif
