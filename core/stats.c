/* SPDX-License-Identifier: MIT */
/*
 * The statistics tables. Names, help texts and orders are the ones
 * GetStats and /metrics published before the tables existed: dashboards
 * and scripts depend on them, so an entry is renamed never, only added.
 */
#include <stdbool.h>
#include <string.h>

#include "core/core.h"
#include "core/stats.h"

#define FSIZE(type, f) sizeof(((struct type *)0)->f)
#define ARRLEN(type, f) (FSIZE(type, f) / FSIZE(type, f[0]))

/* A scalar field of struct core_<scope>_stats. */
#define S(type, key_, metric_, kind_, f, flags_, help_)                     \
	{                                                                   \
		.key = key_, .metric = metric_, .help = help_,              \
		.kind = CORE_STAT_##kind_, .off = offsetof(struct type, f), \
		.size = FSIZE(type, f), .n = 1, .flags = flags_             \
	}
/* The first @n elements of an array field, one label value each. */
#define A(type, key_, metric_, kind_, f, n_, label_, values, help_)         \
	{                                                                   \
		.key = key_, .metric = metric_, .help = help_,              \
		.kind = CORE_STAT_##kind_, .off = offsetof(struct type, f), \
		.size = FSIZE(type, f[0]), .n = n_, .label = label_,        \
		.label_values = values                                      \
	}

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* core_*_stats.halts[]: by CMDQ error code (core.h). */
static const char *const halt_names[CORE_HALT_SLOTS] = {
	[CORE_HALT_ILL] = "ill",
	[CORE_HALT_ABT] = "abt",
	[CORE_HALT_ATC_INV_SYNC] = "atc_inv_sync",
	[CORE_HALT_OTHER] = "other",
};
/* core_vsmmu_stats.cmds_by_class[]: cmdq's order classes. */
static const char *const class_names[CORE_CLASSES] = {
	[CORE_CLASS_TLB] = "tlb",
	[CORE_CLASS_CFG] = "cfg",
	[CORE_CLASS_ATC] = "atc",
};

/* core_stat_desc.off is 16 bits wide. */
_Static_assert(sizeof(struct core_service_stats) <= UINT16_MAX &&
		       sizeof(struct core_hsmmu_stats) <= UINT16_MAX &&
		       sizeof(struct core_vsmmu_stats) <= UINT16_MAX &&
		       sizeof(struct core_ring_stats) <= UINT16_MAX &&
		       sizeof(struct core_vcmdq_stats) <= UINT16_MAX,
	       "stats struct too large for core_stat_desc.off");
_Static_assert(ARRLEN(core_hsmmu_stats, halts) == ARRAY_SIZE(halt_names),
	       "hsmmu halts");
_Static_assert(ARRLEN(core_vsmmu_stats, halts) == ARRAY_SIZE(halt_names),
	       "vsmmu halts");
_Static_assert(ARRLEN(core_vsmmu_stats, cmds_by_class) ==
		       ARRAY_SIZE(class_names),
	       "classes");

#define SV(...) S(core_service_stats, __VA_ARGS__)
static const struct core_stat_desc service_table[] = {
	SV("n_hsmmu", "smmu_offload_host_smmus", GAUGE, n_hsmmu, 0,
	   "Host SMMUs served (one worker thread each)."),
	SV("n_vsmmus", "smmu_offload_vsmmus", GAUGE, n_vsmmus,
	   CORE_STAT_SHARED | CORE_STAT_OWN, "Guest vSMMUs bound."),
	SV("n_rings", "smmu_offload_rings", GAUGE, n_rings,
	   CORE_STAT_SHARED | CORE_STAT_OWN, "Command rings attached."),
	SV("n_devices", "smmu_offload_devices", GAUGE, n_devices,
	   CORE_STAT_SHARED | CORE_STAT_OWN, "Devices (vDEVICEs) attached."),
	SV("fd_limit", "smmu_offload_fd_limit", GAUGE, fd_limit, 0,
	   "RLIMIT_NOFILE soft limit of the daemon."),
	SV("max_rings", "smmu_offload_rings_max", GAUGE, max_rings, 0,
	   "Rings accepted in total before new attaches fail (fd budget)."),
	SV(NULL, "smmu_offload_ring_attach_refused_total", COUNTER,
	   rings_refused, CORE_STAT_SHARED,
	   "Ring attaches refused at the ring limit (fd budget)."),
	SV("rings_alloc", NULL, GAUGE, rings_alloc, CORE_STAT_SHARED,
	   "Rings holding fds, detached ones a stuck worker still holds included."),
	SV("workers_stuck", NULL, GAUGE, workers_stuck, CORE_STAT_SHARED,
	   "Host SMMUs whose worker is stuck."),
};
#undef SV

/* A host SMMU histogram, enum core_hist_kind @hk. */
#define H(metric_, hk, flags_, summary_, bounds_, help_)                       \
	{                                                                      \
		.metric = metric_, .help = help_, .kind = CORE_STAT_HISTOGRAM, \
		.off = hk, .n = 5, .flags = flags_, .summary = summary_,       \
		.bounds = bounds_, .n_bounds = ARRAY_SIZE(bounds_)             \
	}

static const char *const sync_summary[5] = {
	"sync_latency_count",  "sync_latency_sum_ns", "sync_latency_p50_ns",
	"sync_latency_p99_ns", "sync_latency_max_ns",
};
static const char *const call_summary[5] = {
	"backend_call_count",  "backend_call_sum_ns", "backend_call_p50_ns",
	"backend_call_p99_ns", "backend_call_max_ns",
};
static const char *const batch_summary[5] = {
	"batch_count",	  "batch_cmds_sum", "batch_cmds_p50",
	"batch_cmds_p99", "batch_cmds_max",
};

/*
 * Histogram bounds. A core_hist bucket is counted under a bound only when
 * its whole range lies at or below it (upper edge <= bound): cumulative
 * counts never include a value above the bound, and a value just below a
 * bound may be counted one bound later (core_hist's buckets are within
 * 3.2% of their value; below 64 they are exact).
 */
static const uint64_t sync_bounds_ns[] = {
	1000,	   2500,      5000,	 10000,	     25000,
	50000,	   100000,    250000,	 500000,     1000000,
	2500000,   5000000,   10000000,	 25000000,   50000000,
	100000000, 250000000, 500000000, 1000000000,
};
/* Powers of two below 64 are exact buckets; 63 is one host command
 * queue chunk (IOFD_HOST_CHUNK); 127..1023 are bucket upper edges. */
static const uint64_t batch_bounds[] = { 1,  2,	  4,   8,   16,	 32,
					 63, 127, 255, 511, 1023 };

#define HS(...) S(core_hsmmu_stats, __VA_ARGS__)
static const struct core_stat_desc hsmmu_table[] = {
	HS("n_vsmmus", "smmu_offload_hsmmu_vsmmus", GAUGE, n_vsmmus, 0,
	   "vSMMUs bound to the host SMMU."),
	HS("n_rings", "smmu_offload_hsmmu_rings", GAUGE, n_rings, 0,
	   "Rings the host SMMU's worker drains."),
	HS("passes", "smmu_offload_hsmmu_worker_passes_total", COUNTER, passes,
	   0, "Worker loop passes that found work."),
	HS("sleeps", "smmu_offload_hsmmu_worker_sleeps_total", COUNTER, sleeps,
	   0, "Times the worker slept in the kernel waiting for work."),
	HS("ioctls", "smmu_offload_hsmmu_ioctls_total", COUNTER, ioctls, 0,
	   "Invalidation ioctls issued."),
	HS("cmds_issued", "smmu_offload_hsmmu_commands_issued_total", COUNTER,
	   cmds_issued, 0,
	   "Commands issued to the host SMMU after coalescing."),
	HS("host_syncs", "smmu_offload_hsmmu_host_syncs_total", COUNTER,
	   host_syncs, 0, "Host CMD_SYNCs the invalidations cost."),
	HS("inflight", "smmu_offload_hsmmu_inflight_ioctls", GAUGE, inflight, 0,
	   "Asynchronous invalidation ioctls in flight now."),
	HS("worker_cpu_ns", "smmu_offload_hsmmu_worker_cpu_seconds_total",
	   COUNTER, worker_cpu_ns, CORE_STAT_NS,
	   "CPU time of the worker thread."),
	HS("issuer_cpu_ns", "smmu_offload_hsmmu_issuer_cpu_seconds_total",
	   COUNTER, issuer_cpu_ns, CORE_STAT_NS,
	   "CPU time of the issuer threads."),
	HS("worker_stuck", "smmu_offload_hsmmu_worker_stuck", GAUGE, stuck, 0,
	   "1 while the worker has not answered a control request within its deadline."),
	HS("ctl_timeouts", "smmu_offload_hsmmu_control_timeouts_total", COUNTER,
	   ctl_timeouts, 0,
	   "Control requests to this host SMMU that failed with ETIMEDOUT."),
	HS("backend_ioctls", "smmu_offload_hsmmu_backend_ioctls_total", COUNTER,
	   backend.ioctls, 0, "Invalidation calls that reached the backend."),
	HS("backend_cmds", "smmu_offload_hsmmu_backend_commands_total", COUNTER,
	   backend.cmds, 0, "Commands in the calls that reached the backend."),
	HS("backend_host_syncs", "smmu_offload_hsmmu_backend_host_syncs_total",
	   COUNTER, backend.host_syncs, 0,
	   "Host CMD_SYNCs the backend counted."),
	HS("backend_errors", "smmu_offload_hsmmu_backend_errors_total", COUNTER,
	   backend.errors, 0,
	   "Backend invalidation calls that returned an error, the calls "
	   "that localise a failing command included."),
	HS("backend_charged_ns",
	   "smmu_offload_hsmmu_backend_charged_seconds_total", COUNTER,
	   backend.charged_ns, CORE_STAT_NS,
	   "Simulated host time charged (sim backend only, else 0)."),
	/* Unlike the vSMMU family, these survive the vSMMUs they count. */
	A(core_hsmmu_stats, NULL, "smmu_offload_hsmmu_halts_total", COUNTER,
	  halts, CORE_HALT_SLOTS, "error", halt_names,
	  "Ring halts of every vSMMU of the host SMMU, destroyed ones included, by CMDQ error code."),
	H("smmu_offload_hsmmu_sync_latency_seconds", CORE_HIST_SYNC_NS,
	  CORE_STAT_NS, sync_summary, sync_bounds_ns,
	  "Service-side guest CMD_SYNC latency: first entry of its batch taken from the ring to completion."),
	H("smmu_offload_hsmmu_batch_commands", CORE_HIST_BATCH_CMDS, 0,
	  batch_summary, batch_bounds,
	  "Commands per backend invalidation call, after coalescing."),
	H("smmu_offload_hsmmu_backend_call_seconds", CORE_HIST_CALL_NS,
	  CORE_STAT_NS, call_summary, sync_bounds_ns,
	  "Wall time of each backend invalidation call, measured by the thread that made it (worker inline, issuer async)."),
};
#undef HS

#define VS(...) S(core_vsmmu_stats, __VA_ARGS__)
static const struct core_stat_desc vsmmu_table[] = {
	VS("n_rings", "smmu_offload_vsmmu_rings", GAUGE, n_rings, 0,
	   "Rings attached to the vSMMU."),
	VS("n_devices", "smmu_offload_vsmmu_devices", GAUGE, n_devices, 0,
	   "Devices (vDEVICEs) attached to the vSMMU."),
	VS("entries", "smmu_offload_vsmmu_ring_entries_total", COUNTER, entries,
	   0, "Ring entries consumed, every command class."),
	VS("cmds_forwarded", "smmu_offload_vsmmu_commands_forwarded_total",
	   COUNTER, cmds_forwarded, 0,
	   "Invalidation commands taken from the rings for the host."),
	A(core_vsmmu_stats, NULL, "smmu_offload_vsmmu_commands_by_class_total",
	  COUNTER, cmds_by_class, CORE_CLASSES, "class", class_names,
	  "Forwarded commands by class: tlb (TLBI_NH_*, TLBI_NSNH_ALL), cfg (CFGI_CD*), atc (ATC_INV)."),
	VS("cmds_issued", "smmu_offload_vsmmu_commands_issued_total", COUNTER,
	   cmds_issued, 0, "Commands issued to the host after coalescing."),
	VS("coalesced", "smmu_offload_vsmmu_commands_coalesced_total", COUNTER,
	   coalesced, 0, "Forwarded commands made redundant by coalescing."),
	VS("syncs", "smmu_offload_vsmmu_syncs_total", COUNTER, syncs, 0,
	   "Guest CMD_SYNCs completed."),
	VS("ioctls", "smmu_offload_vsmmu_ioctls_total", COUNTER, ioctls, 0,
	   "Invalidation ioctls issued for this vSMMU."),
	VS("host_syncs", "smmu_offload_vsmmu_host_syncs_total", COUNTER,
	   host_syncs, 0, "Host CMD_SYNCs issued for this vSMMU."),
	A(core_vsmmu_stats, "halts", "smmu_offload_vsmmu_halts_total", COUNTER,
	  halts, CORE_HALT_SLOTS, "error", halt_names,
	  "Ring halts on a guest command error, by CMDQ error code."),
	VS("backend_errors", "smmu_offload_vsmmu_backend_errors_total", COUNTER,
	   backend_errors, 0,
	   "Invalidation ioctls for this vSMMU that failed."),
	VS("throttled", "smmu_offload_vsmmu_throttled_total", COUNTER,
	   throttled, 0,
	   "Worker passes in which the rate limit stopped this vSMMU."),
};
#undef VS

#define RS(...) S(core_ring_stats, __VA_ARGS__)
static const struct core_stat_desc ring_table[] = {
	RS("vsmmu_id", NULL, GAUGE, vsmmu_id, 0, "The ring's vSMMU."),
	RS("prod", NULL, GAUGE, prod, 0,
	   "Producer index the worker last read."),
	RS("cons", NULL, GAUGE, cons, 0,
	   "Consumer index the worker last published."),
	RS("halted", NULL, GAUGE, halted, 0, "1 while the ring is halted."),
	RS("err", NULL, GAUGE, err, 0, "Error code of the halt."),
	RS("err_index", NULL, GAUGE, err_index, 0,
	   "Index of the entry the ring halted on."),
	RS("entries", NULL, COUNTER, entries, 0, "Ring entries consumed."),
	RS("syncs", NULL, COUNTER, syncs, 0, "Guest CMD_SYNCs completed."),
	RS("signals", NULL, COUNTER, signals, 0,
	   "Completion signals sent to the VMM."),
	RS("wakeups", NULL, COUNTER, wakeups, 0,
	   "Times the VMM woke the worker."),
};
#undef RS

/* GetStats has always shown a vCMDQ's halts up to ATC_INV_SYNC only. */
#define VQ(...) S(core_vcmdq_stats, __VA_ARGS__)
static const struct core_stat_desc vcmdq_table[] = {
	VQ("vsmmu_id", NULL, GAUGE, vsmmu_id, 0, "The vCMDQ's vSMMU."),
	VQ("nq", NULL, GAUGE, nq, 0, "Queues of the vCMDQ."),
	VQ("err_seq", NULL, COUNTER, err_seq, 0,
	   "Queue errors reported so far."),
	VQ("entries", NULL, COUNTER, entries, 0, "Queue entries consumed."),
	VQ("syncs", NULL, COUNTER, syncs, 0, "Guest CMD_SYNCs completed."),
	VQ("signals", NULL, COUNTER, signals, 0,
	   "Signals on the vCMDQ's irq eventfd."),
	VQ("wakeups", NULL, COUNTER, wakeups, 0,
	   "Idle queues found active by the idle timer."),
	A(core_vcmdq_stats, "halts", NULL, COUNTER, halts, CORE_HALT_OTHER,
	  "error", halt_names, "Queue halts by CMDQ error code."),
	VQ("uffd_armed", NULL, GAUGE, armed, 0,
	   "1 while the queue page is write-protected."),
	VQ("uffd_arms", NULL, COUNTER, arms, 0,
	   "Write protections armed on the queue page."),
	VQ("uffd_faults", NULL, COUNTER, faults, 0,
	   "Write-protect faults taken."),
};
#undef VQ

const struct core_stat_desc *core_stats_table(enum core_stat_scope scope,
					      size_t *ret_n)
{
	switch (scope) {
	case CORE_STAT_SERVICE:
		*ret_n = ARRAY_SIZE(service_table);
		return service_table;
	case CORE_STAT_HSMMU:
		*ret_n = ARRAY_SIZE(hsmmu_table);
		return hsmmu_table;
	case CORE_STAT_VSMMU:
		*ret_n = ARRAY_SIZE(vsmmu_table);
		return vsmmu_table;
	case CORE_STAT_RING:
		*ret_n = ARRAY_SIZE(ring_table);
		return ring_table;
	case CORE_STAT_VCMDQ:
		*ret_n = ARRAY_SIZE(vcmdq_table);
		return vcmdq_table;
	}
	*ret_n = 0;
	return NULL;
}

uint64_t core_stat_value(const struct core_stat_desc *d, const void *stats,
			 unsigned int i)
{
	const char *p = (const char *)stats + d->off + (size_t)i * d->size;
	uint64_t v64;
	uint32_t v32;
	bool b;

	switch (d->size) {
	case sizeof(b):
		memcpy(&b, p, sizeof(b));
		return b;
	case sizeof(v32):
		memcpy(&v32, p, sizeof(v32));
		return v32;
	default:
		memcpy(&v64, p, sizeof(v64));
		return v64;
	}
}
