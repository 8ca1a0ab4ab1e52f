/* SPDX-License-Identifier: MIT */
/*
 * bench_hist: bucket boundaries and quantiles against exact sorted
 * quantiles of random data (log-linear buckets: reported value >= the
 * true value and within 1/32 of it).
 */
#include <stdlib.h>

#include "bench/hist.h"
#include "tests/harness.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

TEST(index_monotonic_and_upper_edges)
{
	unsigned int prev = 0;

	/* Every value lies in its bucket: upper(index(v) - 1) < v <=
	 * upper(index(v)), and indices never decrease. */
	for (uint64_t v = 0; v < 1000000; v += 1 + v / 64) {
		unsigned int i = bench_hist_index(v);

		ASSERT_GE(i, prev);
		ASSERT_LE(v, bench_hist_upper(i));
		if (i)
			ASSERT_LT(bench_hist_upper(i - 1), v);
		prev = i;
	}
	EXPECT_EQ(bench_hist_index(63), 63);
	EXPECT_EQ(bench_hist_upper(63), 63);
	EXPECT_LT(bench_hist_index(UINT64_MAX), BENCH_HIST_BUCKETS);
	EXPECT_EQ(bench_hist_upper(bench_hist_index(UINT64_MAX)), UINT64_MAX);
}

TEST(quantiles_within_bucket_error)
{
	static const double qs[] = { 0.01, 0.5, 0.9, 0.99, 0.999 };
	enum { N = 100000 };
	uint64_t *v = malloc(N * sizeof(*v)), seed = t_seed(), sum = 0;
	struct bench_hist h;

	ASSERT_NONNULL(v);
	bench_hist_init(&h);
	for (int i = 0; i < N; i++) {
		/* Log-uniform from 1 ns to ~1 s: every bucket range used. */
		v[i] = (t_rand(&seed) % 1000) << (t_rand(&seed) % 20);
		bench_hist_add(&h, v[i]);
		sum += v[i];
	}
	qsort(v, N, sizeof(*v), cmp_u64);
	EXPECT_EQ(h.count, N);
	EXPECT_EQ(h.sum, sum);
	EXPECT_EQ(h.min, v[0]);
	EXPECT_EQ(h.max, v[N - 1]);
	EXPECT_EQ(bench_hist_quantile(&h, 1.0), v[N - 1]);
	for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
		/* The exact quantile: the value of rank ceil(q * N). */
		uint64_t want = v[(size_t)(qs[k] * N + 0.999999) - 1];
		uint64_t got = bench_hist_quantile(&h, qs[k]);

		EXPECT_GE(got, want);
		EXPECT_LE(got, want + want / 32 + 1);
	}
	free(v);
}

TEST(merge_equals_single)
{
	struct bench_hist a, b, all;
	uint64_t seed = t_seed();

	bench_hist_init(&a);
	bench_hist_init(&b);
	bench_hist_init(&all);
	EXPECT_EQ(bench_hist_quantile(&all, 0.5), 0);
	for (int i = 0; i < 10000; i++) {
		uint64_t x = t_rand(&seed) % 5000000;

		bench_hist_add(i % 3 ? &a : &b, x);
		bench_hist_add(&all, x);
	}
	bench_hist_merge(&a, &b);
	EXPECT_EQ(a.count, all.count);
	EXPECT_EQ(a.min, all.min);
	EXPECT_EQ(a.max, all.max);
	EXPECT_EQ(memcmp(a.b, all.b, sizeof(a.b)), 0);
}

TEST_HARNESS_MAIN
