/* SPDX-License-Identifier: MIT */
/*
 * core statistics: one descriptor per number of the core_*_stats structs
 * (core.h). GetStats, the metrics endpoint and everything printing them
 * loop over these tables; adding a counter is one field in a stats struct
 * plus one line in core/stats.c. The tables are constant and may be read
 * from any thread.
 */
#ifndef CORE_STATS_H
#define CORE_STATS_H

#include <stddef.h>
#include <stdint.h>

enum core_stat_kind {
	CORE_STAT_COUNTER, /* monotonic */
	CORE_STAT_GAUGE, /* a level, may go down */
	/* A host SMMU's core_hist (core_hsmmu_hist(), @off: its enum
	 * core_hist_kind): GetStats gives the @summary, /metrics buckets. */
	CORE_STAT_HISTOGRAM,
};

/* Which struct a descriptor's offset is in. */
enum core_stat_scope {
	CORE_STAT_SERVICE, /* struct core_service_stats */
	CORE_STAT_HSMMU, /* struct core_hsmmu_stats */
	CORE_STAT_VSMMU, /* struct core_vsmmu_stats */
	CORE_STAT_RING, /* struct core_ring_stats */
	CORE_STAT_VCMDQ, /* struct core_vcmdq_stats */
};

/* The value is in nanoseconds; the metrics endpoint exports seconds. */
#define CORE_STAT_NS 0x1u
/* Service scope: the number adds up every VM's objects or activity, so a
 * reader that may only see its own (docs/RPC.md) must not get it. */
#define CORE_STAT_SHARED 0x2u
/* With SHARED: such a reader is shown the count of its own objects. */
#define CORE_STAT_OWN 0x4u

struct core_stat_desc {
	/* GetStats counter name (and smmu-offloadctl's JSON key); NULL: not
	 * reported by GetStats. An array's elements are "KEY_LABELVALUE". */
	const char *key;
	/* Prometheus family name; NULL: not exported there. */
	const char *metric;
	const char *help;
	enum core_stat_kind kind;
	uint16_t off; /* offsetof() in the scope's struct */
	uint8_t size; /* of one element: 1 (bool), 4 or 8 */
	uint8_t n; /* elements: 1 for a scalar */
	uint8_t flags; /* CORE_STAT_* */
	/* Arrays: the label naming an element (metrics) and one value per
	 * element, which also makes the GetStats key. */
	const char *label;
	const char *const *label_values;
	/* Histograms: the GetStats names of count, sum, p50, p99 and max,
	 * and the upper bounds of the /metrics buckets (ascending). */
	const char *const *summary;
	const uint64_t *bounds;
	uint8_t n_bounds;
};

/* The table of @scope and its length; NULL (and 0) for an unknown one. */
const struct core_stat_desc *core_stats_table(enum core_stat_scope scope,
					      size_t *ret_n);

/* Element @i (< d->n) of @d in @stats, a struct of the table's scope;
 * not for a CORE_STAT_HISTOGRAM. */
uint64_t core_stat_value(const struct core_stat_desc *d, const void *stats,
			 unsigned int i);

#endif
