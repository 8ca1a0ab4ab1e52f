/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "core/hist.h"

#include "common/barrier.h"

#define SUB (1u << CORE_HIST_SUB_BITS)

void core_hist_init(struct core_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

unsigned int core_hist_index(uint64_t v)
{
	unsigned int msb, e;

	if (v < 2 * SUB)
		return (unsigned int)v;
	/* v >> e has its top bit at CORE_HIST_SUB_BITS: the sub-bucket is
	 * the next bits, and exponent e starts the next run of SUB indices. */
	msb = 63u - (unsigned int)__builtin_clzll(v);
	e = msb - CORE_HIST_SUB_BITS;
	return e * SUB + (unsigned int)(v >> e);
}

uint64_t core_hist_upper(unsigned int idx)
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

void core_hist_add(struct core_hist *h, uint64_t v)
{
	h->b[core_hist_index(v)]++;
	h->count++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

void core_hist_add_shared(struct core_hist *h, uint64_t v, uint64_t n)
{
	unsigned int i = core_hist_index(v);

	if (!n)
		return;
	/* One writer: plain read-modify-write, untorn relaxed stores. */
	WRITE_ONCE(h->b[i], h->b[i] + n);
	WRITE_ONCE(h->count, h->count + n);
	WRITE_ONCE(h->sum, h->sum + v * n);
	if (v < h->min)
		WRITE_ONCE(h->min, v);
	if (v > h->max)
		WRITE_ONCE(h->max, v);
}

void core_hist_snapshot(struct core_hist *dst, const struct core_hist *src)
{
	/* Not a consistent cut: count may be a little ahead of the buckets
	 * or behind; quantiles tolerate it. */
	dst->count = READ_ONCE(src->count);
	dst->sum = READ_ONCE(src->sum);
	dst->min = READ_ONCE(src->min);
	dst->max = READ_ONCE(src->max);
	for (unsigned int i = 0; i < CORE_HIST_BUCKETS; i++)
		dst->b[i] = READ_ONCE(src->b[i]);
}

void core_hist_merge(struct core_hist *dst, const struct core_hist *src)
{
	for (unsigned int i = 0; i < CORE_HIST_BUCKETS; i++)
		dst->b[i] += src->b[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t core_hist_quantile(const struct core_hist *h, double q)
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
	for (unsigned int i = 0; i < CORE_HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= want) {
			up = core_hist_upper(i);
			return up < h->max ? up : h->max;
		}
	}
	return h->max;
}
