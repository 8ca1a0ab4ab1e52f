/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "bench/hist.h"

#define SUB (1u << BENCH_HIST_SUB_BITS)

void bench_hist_init(struct bench_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

unsigned int bench_hist_index(uint64_t v)
{
	unsigned int msb, e;

	if (v < 2 * SUB)
		return (unsigned int)v;
	/* v >> e has its top bit at BENCH_HIST_SUB_BITS: the sub-bucket is
	 * the next bits, and exponent e starts the next run of SUB indices. */
	msb = 63u - (unsigned int)__builtin_clzll(v);
	e = msb - BENCH_HIST_SUB_BITS;
	return e * SUB + (unsigned int)(v >> e);
}

uint64_t bench_hist_upper(unsigned int idx)
{
	unsigned int e;
	uint64_t base;

	if (idx < 2 * SUB)
		return idx;
	e = idx / SUB - 1;
	base = (uint64_t)(idx % SUB + SUB) << e;
	/* The last bucket ends at UINT64_MAX: avoid the overflow. */
	return base + ((UINT64_C(1) << e) - 1);
}

void bench_hist_add(struct bench_hist *h, uint64_t v)
{
	h->b[bench_hist_index(v)]++;
	h->count++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
	for (unsigned int i = 0; i < BENCH_HIST_BUCKETS; i++)
		dst->b[i] += src->b[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t bench_hist_quantile(const struct bench_hist *h, double q)
{
	uint64_t want, seen = 0, up;

	if (!h->count)
		return 0;
	if (q >= 1.0)
		return h->max;
	/* The rank of the quantile, rounded up, at least the first value. */
	want = (uint64_t)(q * (double)h->count);
	if ((double)want < q * (double)h->count)
		want++;
	if (!want)
		want = 1;
	for (unsigned int i = 0; i < BENCH_HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= want) {
			up = bench_hist_upper(i);
			return up < h->max ? up : h->max;
		}
	}
	return h->max;
}
