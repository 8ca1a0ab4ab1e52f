/* SPDX-License-Identifier: MIT */
/*
 * core/stats: the descriptor tables are well formed, and each published
 * name reads the field it names. The expected values are written here
 * field by field, not derived from the tables.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "core/stats.h"
#include "tests/harness.h"

static const enum core_stat_scope scopes[] = {
	CORE_STAT_SERVICE, CORE_STAT_HSMMU, CORE_STAT_VSMMU,
	CORE_STAT_RING,	   CORE_STAT_VCMDQ,
};

static const size_t scope_size[] = {
	[CORE_STAT_SERVICE] = sizeof(struct core_service_stats),
	[CORE_STAT_HSMMU] = sizeof(struct core_hsmmu_stats),
	[CORE_STAT_VSMMU] = sizeof(struct core_vsmmu_stats),
	[CORE_STAT_RING] = sizeof(struct core_ring_stats),
	[CORE_STAT_VCMDQ] = sizeof(struct core_vcmdq_stats),
};

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

TEST(tables_well_formed)
{
	const char *metrics[128];
	size_t n_metrics = 0;

	for (size_t si = 0; si < sizeof(scopes) / sizeof(scopes[0]); si++) {
		char keys[64][48];
		size_t nk = 0, n;
		const struct core_stat_desc *t =
			core_stats_table(scopes[si], &n);

		ASSERT_NONNULL(t);
		ASSERT_GT(n, 0);
		for (size_t k = 0; k < n; k++) {
			const struct core_stat_desc *d = &t[k];
			bool array = d->kind != CORE_STAT_HISTOGRAM &&
				     (d->n > 1 || d->label_values);

			ASSERT_TRUE(d->key || d->metric);
			ASSERT_NONNULL(d->help);
			ASSERT_GT(strlen(d->help), 0);
			if (d->kind == CORE_STAT_HISTOGRAM) {
				/* Per host SMMU, named by its summary. */
				ASSERT_EQ(scopes[si], CORE_STAT_HSMMU);
				ASSERT_NULL(d->key);
				ASSERT_NONNULL(d->metric);
				ASSERT_NONNULL(d->summary);
				ASSERT_NONNULL(d->bounds);
				ASSERT_GT(d->n_bounds, 0);
				for (unsigned int b = 1; b < d->n_bounds; b++)
					ASSERT_LT(d->bounds[b - 1],
						  d->bounds[b]);
				for (unsigned int e = 0; e < 5; e++) {
					ASSERT_LT(nk, 64);
					snprintf(keys[nk], sizeof(keys[nk]),
						 "%s", d->summary[e]);
					for (size_t j = 0; j < nk; j++)
						ASSERT_NE(strcmp(keys[j],
								 keys[nk]),
							  0);
					nk++;
				}
			}
			ASSERT_TRUE(d->kind == CORE_STAT_HISTOGRAM ||
				    d->size == 1 || d->size == 4 ||
				    d->size == 8);
			ASSERT_GE(d->n, 1);
			ASSERT_LE(d->off + (size_t)d->size * d->n,
				  scope_size[scopes[si]]);
			/* OWN qualifies SHARED; only the service has either. */
			if (d->flags & CORE_STAT_OWN)
				ASSERT_TRUE(d->flags & CORE_STAT_SHARED);
			if (d->flags & (CORE_STAT_SHARED | CORE_STAT_OWN))
				ASSERT_EQ(scopes[si], CORE_STAT_SERVICE);
			if (array) {
				ASSERT_NONNULL(d->label);
				ASSERT_NONNULL(d->label_values);
			}
			if (d->metric) {
				ASSERT_EQ(strncmp(d->metric, "smmu_offload_",
						  13),
					  0);
				/* Prometheus: counters end in _total. */
				ASSERT_EQ(ends_with(d->metric, "_total"),
					  d->kind == CORE_STAT_COUNTER);
				for (size_t m = 0; m < n_metrics; m++)
					ASSERT_NE(strcmp(metrics[m], d->metric),
						  0);
				ASSERT_LT(n_metrics, 128);
				metrics[n_metrics++] = d->metric;
			}
			if (!d->key)
				continue;
			for (unsigned int e = 0; e < d->n; e++) {
				ASSERT_LT(nk, 64);
				if (array)
					snprintf(keys[nk], sizeof(keys[nk]),
						 "%s_%s", d->key,
						 d->label_values[e]);
				else
					snprintf(keys[nk], sizeof(keys[nk]),
						 "%s", d->key);
				for (size_t j = 0; j < nk; j++)
					ASSERT_NE(strcmp(keys[j], keys[nk]), 0);
				nk++;
			}
		}
	}
	size_t n;

	ASSERT_NULL(core_stats_table((enum core_stat_scope)99, &n));
	ASSERT_EQ(n, 0);
}

/* The value GetStats publishes as @name (KEY or KEY_LABELVALUE), or -1. */
static int64_t lookup(enum core_stat_scope scope, const void *st,
		      const char *name)
{
	size_t n;
	const struct core_stat_desc *t = core_stats_table(scope, &n);
	char buf[64];

	for (size_t k = 0; k < n; k++) {
		if (!t[k].key || t[k].kind == CORE_STAT_HISTOGRAM)
			continue;
		for (unsigned int e = 0; e < t[k].n; e++) {
			if (t[k].label_values)
				snprintf(buf, sizeof(buf), "%s_%s", t[k].key,
					 t[k].label_values[e]);
			else
				snprintf(buf, sizeof(buf), "%s", t[k].key);
			if (!strcmp(buf, name))
				return (int64_t)core_stat_value(&t[k], st, e);
		}
	}
	return -1;
}

/* Every element of the metric family @metric, in order, into @out. */
static unsigned int metric_values(enum core_stat_scope scope, const void *st,
				  const char *metric, uint64_t *out)
{
	size_t n;
	const struct core_stat_desc *t = core_stats_table(scope, &n);

	for (size_t k = 0; k < n; k++) {
		if (!t[k].metric || strcmp(t[k].metric, metric))
			continue;
		for (unsigned int e = 0; e < t[k].n; e++)
			out[e] = core_stat_value(&t[k], st, e);
		return t[k].n;
	}
	return 0;
}

/* The flags of the GetStats entry @name, or -1. */
static int flags_of(enum core_stat_scope scope, const char *name)
{
	size_t n;
	const struct core_stat_desc *t = core_stats_table(scope, &n);

	for (size_t k = 0; k < n; k++)
		if (t[k].key && !strcmp(t[k].key, name))
			return t[k].flags;
	return -1;
}

TEST(service_names_read_their_fields)
{
	struct core_service_stats s;
	uint64_t v[1];

	memset(&s, 0, sizeof(s));
	s.n_hsmmu = 1;
	s.n_vsmmus = 2;
	s.n_rings = 3;
	s.n_devices = 4;
	s.fd_limit = 5;
	s.max_rings = 6;
	s.rings_refused = 7;
	s.rings_alloc = 8;
	s.workers_stuck = 9;
	EXPECT_EQ(lookup(CORE_STAT_SERVICE, &s, "n_hsmmu"), 1);
	EXPECT_EQ(lookup(CORE_STAT_SERVICE, &s, "n_vsmmus"), 2);
	EXPECT_EQ(lookup(CORE_STAT_SERVICE, &s, "n_rings"), 3);
	EXPECT_EQ(lookup(CORE_STAT_SERVICE, &s, "n_devices"), 4);
	EXPECT_EQ(lookup(CORE_STAT_SERVICE, &s, "fd_limit"), 5);
	EXPECT_EQ(lookup(CORE_STAT_SERVICE, &s, "max_rings"), 6);
	EXPECT_EQ(lookup(CORE_STAT_SERVICE, &s, "rings_alloc"), 8);
	EXPECT_EQ(lookup(CORE_STAT_SERVICE, &s, "workers_stuck"), 9);
	ASSERT_EQ(metric_values(CORE_STAT_SERVICE, &s,
				"smmu_offload_ring_attach_refused_total", v),
		  1);
	EXPECT_EQ(v[0], 7);
	/* What a non-admin may see (docs/RPC.md, "Who sees what"). */
	EXPECT_EQ(flags_of(CORE_STAT_SERVICE, "n_hsmmu"), 0);
	EXPECT_EQ(flags_of(CORE_STAT_SERVICE, "fd_limit"), 0);
	EXPECT_EQ(flags_of(CORE_STAT_SERVICE, "max_rings"), 0);
	EXPECT_EQ(flags_of(CORE_STAT_SERVICE, "n_vsmmus"),
		  CORE_STAT_SHARED | CORE_STAT_OWN);
	EXPECT_EQ(flags_of(CORE_STAT_SERVICE, "n_rings"),
		  CORE_STAT_SHARED | CORE_STAT_OWN);
	EXPECT_EQ(flags_of(CORE_STAT_SERVICE, "n_devices"),
		  CORE_STAT_SHARED | CORE_STAT_OWN);
	EXPECT_EQ(flags_of(CORE_STAT_SERVICE, "rings_alloc"), CORE_STAT_SHARED);
	EXPECT_EQ(flags_of(CORE_STAT_SERVICE, "workers_stuck"),
		  CORE_STAT_SHARED);
}

TEST(hsmmu_names_read_their_fields)
{
	struct core_hsmmu_stats s;
	uint64_t v[8];

	memset(&s, 0, sizeof(s));
	s.n_vsmmus = 1;
	s.n_rings = 2;
	s.passes = 3;
	s.sleeps = 4;
	s.ioctls = 5;
	s.cmds_issued = 6;
	s.host_syncs = 7;
	s.inflight = 8;
	s.worker_cpu_ns = 9;
	s.issuer_cpu_ns = 10;
	s.stuck = 1;
	s.ctl_timeouts = 12;
	s.backend.ioctls = 13;
	s.backend.cmds = 14;
	s.backend.host_syncs = 15;
	s.backend.errors = 16;
	s.backend.charged_ns = 17;
	for (int k = 0; k < 4; k++)
		s.halts[k] = 20 + k;

	EXPECT_EQ(lookup(CORE_STAT_HSMMU, &s, "n_vsmmus"), 1);
	EXPECT_EQ(lookup(CORE_STAT_HSMMU, &s, "n_rings"), 2);
	EXPECT_EQ(lookup(CORE_STAT_HSMMU, &s, "passes"), 3);
	EXPECT_EQ(lookup(CORE_STAT_HSMMU, &s, "sleeps"), 4);
	EXPECT_EQ(lookup(CORE_STAT_HSMMU, &s, "ioctls"), 5);
	EXPECT_EQ(lookup(CORE_STAT_HSMMU, &s, "cmds_issued"), 6);
	EXPECT_EQ(lookup(CORE_STAT_HSMMU, &s, "host_syncs"), 7);
	EXPECT_EQ(lookup(CORE_STAT_HSMMU, &s, "inflight"), 8);
	EXPECT_EQ(lookup(CORE_STAT_HSMMU, &s, "worker_cpu_ns"), 9);
	EXPECT_EQ(lookup(CORE_STAT_HSMMU, &s, "issuer_cpu_ns"), 10);
	EXPECT_EQ(lookup(CORE_STAT_HSMMU, &s, "worker_stuck"), 1);
	EXPECT_EQ(lookup(CORE_STAT_HSMMU, &s, "ctl_timeouts"), 12);
	EXPECT_EQ(lookup(CORE_STAT_HSMMU, &s, "backend_ioctls"), 13);
	EXPECT_EQ(lookup(CORE_STAT_HSMMU, &s, "backend_cmds"), 14);
	EXPECT_EQ(lookup(CORE_STAT_HSMMU, &s, "backend_host_syncs"), 15);
	EXPECT_EQ(lookup(CORE_STAT_HSMMU, &s, "backend_errors"), 16);
	EXPECT_EQ(lookup(CORE_STAT_HSMMU, &s, "backend_charged_ns"), 17);
	/* The histograms, by kind, with their GetStats summary names. */
	size_t n, seen = 0;
	const struct core_stat_desc *t = core_stats_table(CORE_STAT_HSMMU, &n);

	for (size_t k = 0; k < n; k++) {
		if (t[k].kind != CORE_STAT_HISTOGRAM)
			continue;
		seen++;
		if (t[k].off == CORE_HIST_SYNC_NS) {
			EXPECT_EQ(
				strcmp(t[k].metric,
				       "smmu_offload_hsmmu_sync_latency_seconds"),
				0);
			EXPECT_EQ(strcmp(t[k].summary[0], "sync_latency_count"),
				  0);
			EXPECT_EQ(strcmp(t[k].summary[4],
					 "sync_latency_max_ns"),
				  0);
			EXPECT_TRUE(t[k].flags & CORE_STAT_NS);
		} else if (t[k].off == CORE_HIST_CALL_NS) {
			EXPECT_EQ(
				strcmp(t[k].metric,
				       "smmu_offload_hsmmu_backend_call_seconds"),
				0);
			EXPECT_EQ(strcmp(t[k].summary[2],
					 "backend_call_p50_ns"),
				  0);
			EXPECT_TRUE(t[k].flags & CORE_STAT_NS);
		} else {
			EXPECT_EQ(t[k].off, CORE_HIST_BATCH_CMDS);
			EXPECT_EQ(strcmp(t[k].metric,
					 "smmu_offload_hsmmu_batch_commands"),
				  0);
			EXPECT_EQ(strcmp(t[k].summary[1], "batch_cmds_sum"), 0);
			EXPECT_FALSE(t[k].flags & CORE_STAT_NS);
		}
	}
	EXPECT_EQ(seen, 3);
	/* Host SMMU halts are exported to /metrics only. */
	EXPECT_EQ(lookup(CORE_STAT_HSMMU, &s, "halts_ill"), -1);
	ASSERT_EQ(metric_values(CORE_STAT_HSMMU, &s,
				"smmu_offload_hsmmu_halts_total", v),
		  4);
	for (int k = 0; k < 4; k++)
		EXPECT_EQ(v[k], 20 + k);
}

TEST(vsmmu_names_read_their_fields)
{
	struct core_vsmmu_stats s;
	uint64_t v[8];

	memset(&s, 0, sizeof(s));
	s.n_rings = 1;
	s.n_devices = 2;
	s.entries = 3;
	s.cmds_forwarded = 4;
	s.cmds_issued = 5;
	s.coalesced = 6;
	s.syncs = 7;
	s.ioctls = 8;
	s.host_syncs = 9;
	s.backend_errors = 10;
	s.throttled = 11;
	s.halts[0] = 20;
	s.halts[1] = 21;
	s.halts[2] = 22;
	s.halts[3] = 23;
	s.cmds_by_class[0] = 30;
	s.cmds_by_class[1] = 31;
	s.cmds_by_class[2] = 32;

	EXPECT_EQ(lookup(CORE_STAT_VSMMU, &s, "n_rings"), 1);
	EXPECT_EQ(lookup(CORE_STAT_VSMMU, &s, "n_devices"), 2);
	EXPECT_EQ(lookup(CORE_STAT_VSMMU, &s, "entries"), 3);
	EXPECT_EQ(lookup(CORE_STAT_VSMMU, &s, "cmds_forwarded"), 4);
	EXPECT_EQ(lookup(CORE_STAT_VSMMU, &s, "cmds_issued"), 5);
	EXPECT_EQ(lookup(CORE_STAT_VSMMU, &s, "coalesced"), 6);
	EXPECT_EQ(lookup(CORE_STAT_VSMMU, &s, "syncs"), 7);
	EXPECT_EQ(lookup(CORE_STAT_VSMMU, &s, "ioctls"), 8);
	EXPECT_EQ(lookup(CORE_STAT_VSMMU, &s, "host_syncs"), 9);
	EXPECT_EQ(lookup(CORE_STAT_VSMMU, &s, "backend_errors"), 10);
	EXPECT_EQ(lookup(CORE_STAT_VSMMU, &s, "throttled"), 11);
	EXPECT_EQ(lookup(CORE_STAT_VSMMU, &s, "halts_ill"), 20);
	EXPECT_EQ(lookup(CORE_STAT_VSMMU, &s, "halts_abt"), 21);
	EXPECT_EQ(lookup(CORE_STAT_VSMMU, &s, "halts_atc_inv_sync"), 22);
	EXPECT_EQ(lookup(CORE_STAT_VSMMU, &s, "halts_other"), 23);
	ASSERT_EQ(metric_values(CORE_STAT_VSMMU, &s,
				"smmu_offload_vsmmu_commands_by_class_total",
				v),
		  3);
	EXPECT_EQ(v[0], 30);
	EXPECT_EQ(v[1], 31);
	EXPECT_EQ(v[2], 32);
}

TEST(ring_and_vcmdq_names_read_their_fields)
{
	struct core_ring_stats r;
	struct core_vcmdq_stats q;

	memset(&r, 0, sizeof(r));
	r.vsmmu_id = 1;
	r.prod = 2;
	r.cons = 3;
	r.halted = true;
	r.err = 5;
	r.err_index = 6;
	r.entries = 7;
	r.syncs = 8;
	r.signals = 9;
	r.wakeups = 10;
	EXPECT_EQ(lookup(CORE_STAT_RING, &r, "vsmmu_id"), 1);
	EXPECT_EQ(lookup(CORE_STAT_RING, &r, "prod"), 2);
	EXPECT_EQ(lookup(CORE_STAT_RING, &r, "cons"), 3);
	EXPECT_EQ(lookup(CORE_STAT_RING, &r, "halted"), 1);
	EXPECT_EQ(lookup(CORE_STAT_RING, &r, "err"), 5);
	EXPECT_EQ(lookup(CORE_STAT_RING, &r, "err_index"), 6);
	EXPECT_EQ(lookup(CORE_STAT_RING, &r, "entries"), 7);
	EXPECT_EQ(lookup(CORE_STAT_RING, &r, "syncs"), 8);
	EXPECT_EQ(lookup(CORE_STAT_RING, &r, "signals"), 9);
	EXPECT_EQ(lookup(CORE_STAT_RING, &r, "wakeups"), 10);

	memset(&q, 0, sizeof(q));
	q.vsmmu_id = 1;
	q.nq = 2;
	q.err_seq = 3;
	q.entries = 4;
	q.syncs = 5;
	q.signals = 6;
	q.wakeups = 7;
	q.halts[0] = 8;
	q.halts[1] = 9;
	q.halts[2] = 10;
	q.halts[3] = 11;
	q.armed = true;
	q.arms = 13;
	q.faults = 14;
	EXPECT_EQ(lookup(CORE_STAT_VCMDQ, &q, "vsmmu_id"), 1);
	EXPECT_EQ(lookup(CORE_STAT_VCMDQ, &q, "nq"), 2);
	EXPECT_EQ(lookup(CORE_STAT_VCMDQ, &q, "err_seq"), 3);
	EXPECT_EQ(lookup(CORE_STAT_VCMDQ, &q, "entries"), 4);
	EXPECT_EQ(lookup(CORE_STAT_VCMDQ, &q, "syncs"), 5);
	EXPECT_EQ(lookup(CORE_STAT_VCMDQ, &q, "signals"), 6);
	EXPECT_EQ(lookup(CORE_STAT_VCMDQ, &q, "wakeups"), 7);
	EXPECT_EQ(lookup(CORE_STAT_VCMDQ, &q, "halts_ill"), 8);
	EXPECT_EQ(lookup(CORE_STAT_VCMDQ, &q, "halts_abt"), 9);
	EXPECT_EQ(lookup(CORE_STAT_VCMDQ, &q, "halts_atc_inv_sync"), 10);
	/* A vCMDQ has no "other" halt in GetStats. */
	EXPECT_EQ(lookup(CORE_STAT_VCMDQ, &q, "halts_other"), -1);
	EXPECT_EQ(lookup(CORE_STAT_VCMDQ, &q, "uffd_armed"), 1);
	EXPECT_EQ(lookup(CORE_STAT_VCMDQ, &q, "uffd_arms"), 13);
	EXPECT_EQ(lookup(CORE_STAT_VCMDQ, &q, "uffd_faults"), 14);
}

TEST_HARNESS_MAIN
