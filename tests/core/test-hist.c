/* SPDX-License-Identifier: MIT */
/* core_hist: buckets, quantiles against an exact sort, merge, snapshot. */
#include <stdlib.h>

#include "core/hist.h"
#include "tests/harness.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

TEST(bucket_edges)
{
	/* Every value lies in its bucket, within 1/32 of the upper edge. */
	uint64_t s = t_seed();

	for (int i = 0; i < 200000; i++) {
		uint64_t v = t_rand(&s) >> (t_rand(&s) % 64);
		unsigned int idx = core_hist_index(v);
		uint64_t up = core_hist_upper(idx);

		ASSERT_LT(idx, CORE_HIST_BUCKETS);
		ASSERT_GE(up, v);
		if (idx)
			ASSERT_LT(core_hist_upper(idx - 1), v);
		ASSERT_LE((double)(up - v), (double)v / 32.0 + 1.0);
	}
	ASSERT_EQ(core_hist_upper(CORE_HIST_BUCKETS - 1), UINT64_MAX);
	for (uint64_t v = 0; v < 64; v++)
		ASSERT_EQ(core_hist_upper(core_hist_index(v)), v);
}

TEST(quantiles_match_sort)
{
	enum { N = 10007 };
	uint64_t *v = malloc(N * sizeof(*v)), s = t_seed();
	static const double qs[] = { 0.01, 0.5, 0.9, 0.99, 0.999, 1.0 };
	struct core_hist h;

	ASSERT_NONNULL(v);
	core_hist_init(&h);
	for (int i = 0; i < N; i++) {
		/* Latency-like: mostly microseconds, a long tail. */
		v[i] = 1000 + t_rand(&s) % 5000;
		if (i % 97 == 0)
			v[i] *= 300;
		core_hist_add(&h, v[i]);
	}
	qsort(v, N, sizeof(*v), cmp_u64);
	ASSERT_EQ(h.count, N);
	ASSERT_EQ(h.min, v[0]);
	ASSERT_EQ(h.max, v[N - 1]);
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		size_t rank = (size_t)(qs[i] * N + 0.999999);
		uint64_t exact = v[(rank ? rank : 1) - 1];
		uint64_t got = core_hist_quantile(&h, qs[i]);

		/* Never below the truth, at most one bucket above. */
		EXPECT_GE(got, exact);
		EXPECT_LE((double)got, (double)exact * (1.0 + 1.0 / 32) + 1);
	}
	free(v);
}

TEST(merge_and_snapshot)
{
	struct core_hist a, b, c;

	core_hist_init(&a);
	core_hist_init(&b);
	core_hist_add_shared(&a, 100, 3);
	core_hist_add(&b, 5);
	core_hist_add(&b, 1 << 20);
	core_hist_merge(&a, &b);
	core_hist_snapshot(&c, &a);
	ASSERT_EQ(c.count, 5);
	ASSERT_EQ(c.sum, 300 + 5 + (1 << 20));
	ASSERT_EQ(c.min, 5);
	ASSERT_EQ(c.max, 1 << 20);
	ASSERT_EQ(core_hist_quantile(&c, 0.5),
		  core_hist_upper(core_hist_index(100)));
	core_hist_init(&c);
	ASSERT_EQ(core_hist_quantile(&c, 0.5), 0);
}

TEST_HARNESS_MAIN
