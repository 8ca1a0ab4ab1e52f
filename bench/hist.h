/* SPDX-License-Identifier: MIT */
/*
 * bench_hist: a log-linear latency histogram without sampling loss.
 *
 * Values (nanoseconds, any uint64_t) fall into buckets of relative width
 * 1/32: values below 64 are exact, above that each power of two is split
 * into 32 linear sub-buckets, so a reported percentile is within 3.2% of
 * the true value (it is the upper edge of its bucket, never below the
 * true value). Count, sum, min and max are exact. 1920 buckets, 15 KiB.
 *
 * Thread context: a histogram is owned by one thread; merge per-thread
 * histograms with bench_hist_merge() after the threads stopped. No
 * allocation, no locking, nothing logs.
 */
#ifndef SMMU_OFFLOAD_BENCH_HIST_H
#define SMMU_OFFLOAD_BENCH_HIST_H

#include <stdint.h>

#define BENCH_HIST_SUB_BITS 5
#define BENCH_HIST_BUCKETS \
	((64 - BENCH_HIST_SUB_BITS + 1) << BENCH_HIST_SUB_BITS)

struct bench_hist {
	uint64_t count, sum, min, max;
	uint64_t b[BENCH_HIST_BUCKETS];
};

/* bench_hist_init() - empty the histogram. */
void bench_hist_init(struct bench_hist *h);

/* bench_hist_add() - record one value. */
void bench_hist_add(struct bench_hist *h, uint64_t v);

/* bench_hist_merge() - add every value of @src to @dst. */
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);

/*
 * bench_hist_quantile() - the smallest bucket upper edge below or at which
 * at least @q (0 < q <= 1) of the values lie, clamped to the exact max;
 * q = 1 gives the exact max. 0 for an empty histogram.
 */
uint64_t bench_hist_quantile(const struct bench_hist *h, double q);

/* Bucket index of @v, and the largest value of bucket @idx. */
unsigned int bench_hist_index(uint64_t v);
uint64_t bench_hist_upper(unsigned int idx);

#endif
