/* SPDX-License-Identifier: MIT */
/*
 * smmu-bench output: the derived metrics (one row table, struct row, read
 * by the text table, the JSON and the plots), the text table and the JSON
 * (bench/SCHEMA.md).
 */
#include <errno.h>
#include <inttypes.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench/json.h"
#include "bench/smmu-bench_i.h"
#include "config.h"
#include "core/stats.h"

/* ---- derived metrics ------------------------------------------------------ */

static double per_cmd(const struct result *r, double v)
{
	return r->c.cmds ? v / (double)r->c.cmds : 0;
}

static double per_1000(const struct result *r, uint64_t v)
{
	return r->c.cmds ? 1000.0 * (double)v / (double)r->c.cmds : 0;
}

/* Open loop: waited SYNC groups per second, over all VMs. */
static double achieved(const struct result *r)
{
	return r->wall_s > 0 ? (double)r->c.waited / r->wall_s : 0;
}

static double lag_us(const struct result *r)
{
	return r->c.scheduled ?
		       (double)r->c.lag_ns / (double)r->c.scheduled / 1000.0 :
		       0;
}

/* The host SMMUs that carried the measured VMs' traffic: fewer than
 * configured when there are fewer vSMMUs (a -n 1 ceiling run uses one);
 * the configured number if none did. */
static unsigned int hsmmus_used(const struct opts *o, const struct result *r)
{
	unsigned int n = (unsigned int)__builtin_popcount(r->hsmmu_mask);

	return n ? n : o->hsmmus;
}

static double tput(const struct opts *o, const struct result *r)
{
	return r->wall_s > 0 ?
		       (double)r->c.cmds / r->wall_s / hsmmus_used(o, r) :
		       0;
}

/*
 * Are wall-clock times comparable between the modes? Not with the sim's
 * block wait: each simulated call sleeps twice, and a sleep overshoots
 * here by several times the modelled cost. Every mode carries that
 * (qemu modes on the vCPU thread, offload in the service's worker or
 * issuer before it completes the guest's SYNC), so it dilutes real
 * differences and the qemu modes' wall figures are not their modelled
 * ones.
 */
bool sb_wall_fair(const struct opts *o)
{
	return strcmp(o->backend, "sim") || o->wait != IOFD_SIM_WAIT_BLOCK;
}

/* ---- output ------------------------------------------------------------------ */

#define ROW_COUNT 1u /* a count: in "counts", not "metrics"; no ratio */
#define ROW_SVC 2u /* service only: "-" / null without one; no ratio */
#define ROW_ORACLE 4u /* the oracle's: "n/a" when off; not a metric */
#define ROW_QEMU 8u /* qemu modes only: "-" / null for offload; no ratio */
/* A waiting guest's: "-" / null with --producer stream (none waits). */
#define ROW_GUEST 16u

struct row {
	const char *name, *key;
	int kind; /* 0 count, 1 float, 2 us (from ns), 3 percent */
	unsigned int flags; /* ROW_* */
	double (*get)(const struct opts *o, const struct result *r);
};

static bool row_metric(const struct row *rw)
{
	return !(rw->flags & (ROW_COUNT | ROW_ORACLE));
}

static bool row_ratio(const struct row *rw)
{
	return !(rw->flags & (ROW_COUNT | ROW_ORACLE | ROW_SVC | ROW_QEMU));
}

/* Has row @rw a value for mode result @r? (null / "-" if not) */
static bool row_has(const struct row *rw, const struct result *r)
{
	return !((rw->flags & ROW_SVC) && !r->has_svc) &&
	       !((rw->flags & ROW_QEMU) && r->mode == M_OFFLOAD) &&
	       !((rw->flags & ROW_GUEST) && r->stream);
}

#define GETTER(fn, expr)                                               \
	static double fn(const struct opts *o, const struct result *r) \
	{                                                              \
		(void)o;                                               \
		return (expr);                                         \
	}

/* The headline: the guest's PROD write until it may pass its CMD_SYNC
 * (qemu modes: the trap, the SYNC completes in it; offload: push,
 * publish and the wait for the SYNC; a batch without a SYNC: its trap). */
GETTER(g_blocked, per_cmd(r, (double)r->c.blocked_ns))
/* The same by the cost model, qemu modes only: their trap is the sim's
 * time charged to the vCPU (host queueing included). Offload's path (ring,
 * worker, the sim in the worker, completion) has no model. */
GETTER(g_blocked_model, per_cmd(r, (double)r->caller_charged_ns))
GETTER(g_cmds, (double)r->c.cmds)
GETTER(g_syncs, (double)r->c.syncs)
GETTER(g_tput, tput(o, r))
GETTER(g_handler, per_cmd(r, (double)r->c.handler_ns))
/* The vCPU's stall as the cost model charges it: the qemu modes wait for
 * the simulated host (queueing included); offload's vCPU never calls the
 * backend, its push + publish is real work, so its wall time stands. */
GETTER(g_handler_model, r->mode == M_OFFLOAD ?
				per_cmd(r, (double)r->c.handler_ns) :
				per_cmd(r, (double)r->caller_charged_ns))
GETTER(g_wait, per_cmd(r, (double)r->c.wait_ns))
GETTER(g_ioctls, per_1000(r, r->be.ioctls))
GETTER(g_hsyncs, per_1000(r, r->be.host_syncs))
GETTER(g_p50, (double)core_hist_quantile(&r->c.lat, 0.5))
GETTER(g_p90, (double)core_hist_quantile(&r->c.lat, 0.9))
GETTER(g_p99, (double)core_hist_quantile(&r->c.lat, 0.99))
GETTER(g_p999, (double)core_hist_quantile(&r->c.lat, 0.999))
GETTER(g_max, (double)r->c.lat.max)
GETTER(g_charged, per_cmd(r, (double)r->caller_charged_ns))
GETTER(g_busy, r->wall_s > 0 ? 100.0 * (double)r->be.charged_ns /
				       (r->wall_s * 1e9 * o->hsmmus) :
			       0)
GETTER(g_prod_cpu, per_cmd(r, (double)r->c.cpu_ns))
GETTER(g_svc_cpu, per_cmd(r, (double)r->svc_cpu_ns))
GETTER(g_proc_cpu, per_cmd(r, (double)r->proc_cpu_ns))
GETTER(g_nvcsw, (double)r->nvcsw)
GETTER(g_nivcsw, (double)r->nivcsw)
GETTER(g_stale, (double)r->c.stale)

/* Table rows and JSON "metrics" keys, in this order: the headline first. */
static const struct row rows[] = {
	{ "guest blocked per command, ns", "guest_blocked_ns_per_cmd", 1,
	  ROW_GUEST, g_blocked },
	{ "guest blocked (cost model), ns/cmd",
	  "guest_blocked_model_ns_per_cmd", 1, ROW_QEMU, g_blocked_model },
	{ "guest commands", "guest_cmds", 0, ROW_COUNT, g_cmds },
	{ "guest CMD_SYNCs", "guest_syncs", 0, ROW_COUNT, g_syncs },
	{ "throughput, cmds/s per host SMMU", "cmds_per_s_per_hsmmu", 0, 0,
	  g_tput },
	{ "vCPU thread held (secondary), ns/cmd", "handler_ns_per_cmd", 1,
	  ROW_GUEST, g_handler },
	{ "vCPU thread held (cost model), ns/cmd", "handler_model_ns_per_cmd",
	  1, ROW_GUEST, g_handler_model },
	{ "guest SYNC wait, ns/cmd", "sync_wait_ns_per_cmd", 1, 0, g_wait },
	{ "ioctls per 1000 cmds", "ioctls_per_1000_cmds", 1, 0, g_ioctls },
	{ "host CMD_SYNCs per 1000 cmds", "host_syncs_per_1000_cmds", 1, 0,
	  g_hsyncs },
	{ "SYNC latency p50, us", "p50_ns", 2, 0, g_p50 },
	{ "SYNC latency p90, us", "p90_ns", 2, 0, g_p90 },
	{ "SYNC latency p99, us", "p99_ns", 2, 0, g_p99 },
	{ "SYNC latency p99.9, us", "p999_ns", 2, 0, g_p999 },
	{ "SYNC latency max, us", "max_ns", 2, 0, g_max },
	{ "sim time charged to callers, ns/cmd", "caller_charged_ns_per_cmd", 1,
	  0, g_charged },
	{ "host queue busy (sim charged), %", "host_queue_busy_pct", 3, 0,
	  g_busy },
	{ "vCPU/producer CPU, ns/cmd", "producer_cpu_ns_per_cmd", 1, 0,
	  g_prod_cpu },
	{ "service CPU (worker+issuer), ns/cmd", "service_cpu_ns_per_cmd", 1,
	  ROW_SVC, g_svc_cpu },
	{ "process CPU, ns/cmd", "process_cpu_ns_per_cmd", 1, 0, g_proc_cpu },
	{ "voluntary context switches", "ctx_voluntary", 0, 0, g_nvcsw },
	{ "involuntary context switches", "ctx_involuntary", 0, 0, g_nivcsw },
	{ "oracle: stale after SYNC", "stale", 0, ROW_ORACLE, g_stale },
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

/* The row of getter @get (one of rows[]). */
static const struct row *row_of(double (*get)(const struct opts *,
					      const struct result *))
{
	size_t i = 0;

	while (i < NROWS - 1 && rows[i].get != get)
		i++;
	return &rows[i];
}

double sb_metric(const struct opts *o, const struct result *r, const char *key)
{
	for (size_t i = 0; i < NROWS; i++)
		if (!strcmp(rows[i].key, key))
			return rows[i].get(o, r);
	return 0;
}

static void fmt_cell(char *buf, size_t len, int kind, double v)
{
	switch (kind) {
	case 0:
		snprintf(buf, len, "%.0f", v);
		break;
	case 2:
		snprintf(buf, len, "%.2f", v / 1000.0);
		break;
	case 3:
		snprintf(buf, len, "%.1f", v);
		break;
	default:
		snprintf(buf, len, v >= 100 ? "%.0f" : "%.2f", v);
		break;
	}
}

static const char *loop_opt_name(enum core_loop_kind l)
{
	return l == CORE_LOOP_URING ? "io_uring" :
	       l == CORE_LOOP_EPOLL ? "epoll" :
				      "auto";
}

bool sb_mode_ok(const struct result *res, int m)
{
	return res[m].ran && !res[m].err;
}

/* The run's configuration, above the table. */
static void print_config(const struct opts *o, const struct wl *w)
{
	printf("smmu-bench %s: workload %s, %u VM%s x %u vSMMU%s x %u "
	       "vCPU%s, %u device%s per vSMMU, %u host SMMU%s, backend %s",
	       PACKAGE_VERSION, w->name, o->vms, o->vms > 1 ? "s" : "",
	       o->vsmmus, o->vsmmus > 1 ? "s" : "", o->vcpus,
	       o->vcpus > 1 ? "s" : "", w->nsids, w->nsids > 1 ? "s" : "",
	       o->hsmmus, o->hsmmus > 1 ? "s" : "", o->backend);
	if (!strcmp(o->backend, "sim"))
		printf(" (wait %s, ioctl %u ns, cmd %u ns, sync %u ns)",
		       bj_wait_name(o->wait), o->sim.ioctl_ns, o->sim.cmd_ns,
		       o->sim.sync_ns);
	if (o->syncs)
		printf(", %" PRIu64 " SYNCs per vCPU per mode\n", o->syncs);
	else
		printf(", %.1f s per mode\n", o->duration);
	if (o->rate)
		printf("open loop: %.1f guest SYNC groups/s per VM (%s "
		       "arrivals), offered %.0f/s in total; latency from the "
		       "scheduled time\n",
		       o->rate, o->poisson ? "Poisson" : "fixed-interval",
		       o->rate * o->vms);
	else
		printf("closed loop: each vCPU waits for its SYNC before the "
		       "next batch\n");
	if (w->kind == WL_TRACE)
		printf("trace: %u batches, %" PRIu64 " commands kept, %" PRIu64
		       " VMM-only/hint commands skipped\n",
		       w->trace.nbatch, w->trace.ncmds, w->trace.skipped);
	if (o->connect)
		printf("offload: through smmu-offloadd at %s, with the daemon's "
		       "own service and sim configuration (documented "
		       "defaults; the options below apply to the embedded "
		       "service only); the sim oracle is in the daemon: "
		       "offload is not verified\n",
		       o->connect);
	printf("oracle: %s; seed %" PRIu64
	       "; offload: poll_us %u, loop %s, max_inflight %u\n",
	       sb_verify_on(o) && o->connect && o->modes[M_OFFLOAD] ?
		       "every waited SYNC checked (offload through the daemon: "
		       "not reachable)" :
	       sb_verify_on(o)		  ? "every waited SYNC checked" :
	       !strcmp(o->backend, "sim") ? "off (--no-verify)" :
					    "n/a (null backend)",
	       o->seed, o->svc.poll_us, loop_opt_name(o->svc.loop),
	       o->svc.max_inflight ? o->svc.max_inflight :
				     CORE_DEFAULT_INFLIGHT);
}

/* Each mode's layout and wall time, and the open loop's rates. */
static void print_layouts(const struct opts *o, const struct result *res)
{
	for (int m = 0; m < M_COUNT; m++)
		if (res[m].ran)
			printf("  %-13s %s, %.2f s wall%s%s\n",
			       sb_mode_names[m], res[m].layout, res[m].wall_s,
			       m == M_OFFLOAD && res[m].loop ? ", loop " : "",
			       m == M_OFFLOAD && res[m].loop ? res[m].loop :
							       "");
	for (int m = 0; m < M_COUNT && o->rate; m++)
		if (sb_mode_ok(res, m))
			printf("  %-13s open loop: achieved %.0f of %.0f SYNC "
			       "groups/s offered (%.1f%%), mean start lag "
			       "%.1f us\n",
			       sb_mode_names[m], achieved(&res[m]),
			       o->rate * o->vms,
			       100.0 * achieved(&res[m]) / (o->rate * o->vms),
			       lag_us(&res[m]));
}

/* What the headline row measures, and on which clock: said above it. */
static void print_basis(const struct opts *o)
{
	printf("\nHeadline (first row): guest blocked per command, from the "
	       "guest's PROD write until\nit may pass its CMD_SYNC; wall "
	       "clock in every mode. ");
	if (sb_wall_fair(o)) {
		printf("Basis: wall clock, comparable\nbetween the modes%s.\n",
		       strcmp(o->backend, "sim") ?
			       "" :
		       o->wait == IOFD_SIM_WAIT_SPIN ?
			       " (sim wait spin: the "
			       "modelled host time is spent, "
			       "not slept)" :
			       " (sim wait none: no host time "
			       "in any mode)");
		return;
	}
	printf("Basis: NOT comparable under sim\nwait block: each "
	       "simulated call sleeps twice and a sleep overshoots by "
	       "%.1f us here\n(measured at start) against %u ns modelled per "
	       "one-command ioctl, in every mode\n(qemu: on the vCPU thread; "
	       "offload: in the service before the SYNC completes).\nCompare "
	       "the modes with --wait spin; the qemu modes' cost model rows "
	       "give their\nmodelled time.\n",
	       (double)o->sleep_over_ns / 1000.0,
	       o->sim.ioctl_ns + o->sim.sync_ns + o->sim.cmd_ns);
}

/* One table cell: a value, or why there is none. */
static void fmt_row_cell(char *cell, size_t len, const struct opts *o,
			 const struct row *rw, const struct result *r)
{
	if (r->err)
		snprintf(cell, len, "error");
	else if (!row_has(rw, r))
		snprintf(cell, len, "-");
	else if ((rw->flags & ROW_ORACLE) && !r->verified)
		snprintf(cell, len, "n/a");
	else
		fmt_cell(cell, len, rw->kind, rw->get(o, r));
}

static void print_rows(const struct opts *o, const struct result *res)
{
	bool ratio_ok = sb_mode_ok(res, M_OFFLOAD) && sb_mode_ok(res, M_QEMU);
	char cell[32];

	printf("\n%-38s", "metric");
	for (int m = 0; m < M_COUNT; m++)
		if (res[m].ran)
			printf(" %13s", sb_mode_names[m]);
	if (ratio_ok)
		printf(" %13s", "qemu/offload");
	printf("\n");
	for (size_t i = 0; i < NROWS; i++) {
		const struct row *rw = &rows[i];

		printf("%-38s", rw->name);
		for (int m = 0; m < M_COUNT; m++) {
			if (!res[m].ran)
				continue;
			fmt_row_cell(cell, sizeof(cell), o, rw, &res[m]);
			printf(" %13s", cell);
		}
		if (ratio_ok && row_ratio(rw)) {
			double a = rw->get(o, &res[M_QEMU]);
			double b = rw->get(o, &res[M_OFFLOAD]);

			if (b > 0)
				printf(" %12.2fx", a / b);
		}
		printf("\n");
	}
}

/* Below the table: the flood, errors, and how to read the rows. */
static void print_notes(const struct opts *o, const struct result *res)
{
	for (int m = 0; m < M_COUNT && o->flood; m++)
		if (res[m].ran && res[m].wall_s > 0)
			printf("%s: flood: %u VM%s, %.0f cmds/s (not in the "
			       "metrics above)\n",
			       sb_mode_names[m], o->flood,
			       o->flood > 1 ? "s" : "",
			       (double)res[m].flood_cmds / res[m].wall_s);
	for (int m = 0; m < M_COUNT; m++)
		if (res[m].ran && res[m].err)
			printf("%s: ERROR: %s\n", sb_mode_names[m],
			       res[m].errmsg);
	printf("\nGuest blocked: the guest's PROD write until it may pass its "
	       "CMD_SYNC (qemu modes:\nthe trapped write, the SYNC completes "
	       "in it; offload: push + publish + the wait for\nthe SYNC). "
	       "vCPU thread held (secondary): the trapped write alone "
	       "(offload: push +\npublish; the guest still waits for its "
	       "SYNC after it). Guest SYNC wait: publish ->\nCMD_SYNC seen "
	       "complete. Cost model: the sim's charged time for the qemu "
	       "modes' trap;\noffload has no model of its ring path (wall). "
	       "Throughput: per host SMMU that carried\ntraffic. Ratios: "
	       "qemu / offload (> 1: offload lower, i.e. better, for "
	       "times; for\nthroughput and queue busy, > 1 means qemu is "
	       "higher).\n");
}

void sb_print_table(const struct opts *o, const struct wl *w,
		    const struct result *res)
{
	print_config(o, w);
	print_layouts(o, res);
	print_basis(o);
	print_rows(o, res);
	print_notes(o, res);
}

/* {"qemu": v, "qemu-batched": v, "offload": v} of row @rw, null where
 * not measured. */
static void json_by_mode(FILE *f, const struct opts *o,
			 const struct result *res, const struct row *rw)
{
	for (int m = 0; m < M_COUNT; m++) {
		fprintf(f, "%s\"%s\": ", m ? ", " : "{", sb_mode_names[m]);
		if (sb_mode_ok(res, m) && row_has(rw, &res[m]))
			fprintf(f, "%.3f", rw->get(o, &res[m]));
		else
			fprintf(f, "null");
	}
	fprintf(f, "}");
}

/* The summary: the headline metric first, on which clock, side by side. */
static void json_summary(FILE *f, const struct opts *o,
			 const struct result *res)
{
	double b = sb_mode_ok(res, M_OFFLOAD) ? g_blocked(o, &res[M_OFFLOAD]) :
						0;

	fprintf(f, "  \"summary\": {\"guest_blocked_ns_per_cmd\": ");
	json_by_mode(f, o, res, row_of(g_blocked));
	fprintf(f,
		",\n    \"headline\": \"guest_blocked_ns_per_cmd\", "
		"\"basis\": \"wall\", \"comparable\": %s, \"basis_note\": ",
		sb_wall_fair(o) ? "true" : "false");
	bj_str(f, sb_wall_fair(o) ?
			  "wall clock in every mode" :
			  "sim wait block: every mode's wall clock includes "
			  "the simulator's sleep overshoot (config."
			  "sim_sleep_overshoot_ns, two sleeps per host call); "
			  "compare with --wait spin, or the qemu modes' cost "
			  "model");
	fprintf(f, ",\n    \"guest_blocked_qemu_over_offload\": ");
	if (sb_mode_ok(res, M_QEMU) && b > 0)
		fprintf(f, "%.4f", g_blocked(o, &res[M_QEMU]) / b);
	else
		fprintf(f, "null");
	fprintf(f, ",\n    \"guest_blocked_model_ns_per_cmd\": ");
	json_by_mode(f, o, res, row_of(g_blocked_model));
	fprintf(f, ",\n    \"vcpu_thread_held_ns_per_cmd\": ");
	json_by_mode(f, o, res, row_of(g_handler));
	fprintf(f, "},\n");
}

static void json_machine(FILE *f)
{
	struct utsname u;

	uname(&u);
	fprintf(f, "  \"machine\": {\"nproc\": %ld, \"sysname\": ",
		sysconf(_SC_NPROCESSORS_ONLN));
	bj_str(f, u.sysname);
	fprintf(f, ", \"release\": ");
	bj_str(f, u.release);
	fprintf(f, ", \"kernel_version\": ");
	bj_str(f, u.version);
	fprintf(f, ", \"arch\": ");
	bj_str(f, u.machine);
	fprintf(f, "},\n");
}

static void json_config(FILE *f, const struct opts *o, const struct wl *w)
{
	fprintf(f, "  \"config\": {\"workload\": ");
	bj_str(f, w->name);
	fprintf(f,
		", \"vms\": %u, \"vcpus_per_vm\": %u, \"hsmmus\": %u, "
		"\"producer_threads\": %u, \"duration_s\": %.3f, "
		"\"syncs_per_vcpu\": %" PRIu64 ", \"seed\": %" PRIu64
		", \"verify\": %s, \"backend\": \"%s\", "
		"\"sim\": {\"wait\": \"%s\", \"ioctl_ns\": %u, \"cmd_ns\": %u, "
		"\"sync_ns\": %u}, \"offload\": {\"issue_mode\": \"%s\", "
		"\"poll_us\": %u, \"loop\": \"%s\", \"ring_log2\": %u, "
		"\"max_inflight\": %u, \"rate_cmds\": %" PRIu64 "}, "
		"\"timer_slack_ns\": 1, \"vsmmus_per_vm\": %u, "
		"\"devices_per_vsmmu\": %u, \"load\": \"%s\", "
		"\"rate_per_vm\": %.3f, \"connect\": ",
		o->vms, o->vcpus, o->hsmmus, o->threads, o->duration, o->syncs,
		o->seed, sb_verify_on(o) ? "true" : "false", o->backend,
		bj_wait_name(o->wait), o->sim.ioctl_ns, o->sim.cmd_ns,
		o->sim.sync_ns,
		o->svc.issue_mode == CORE_ISSUE_AUTO   ? "auto" :
		o->svc.issue_mode == CORE_ISSUE_INLINE ? "inline" :
							 "async",
		o->svc.poll_us, loop_opt_name(o->svc.loop), o->ring_log2,
		o->svc.max_inflight ? o->svc.max_inflight :
				      CORE_DEFAULT_INFLIGHT,
		o->svc.rate_cmds, o->vsmmus, w->nsids,
		!o->rate   ? "closed" :
		o->poisson ? "open-poisson" :
			     "open-fixed",
		o->rate);
	bj_str_or_null(f, o->connect);
	if (o->stream)
		fprintf(f,
			", \"producer\": {\"kind\": \"stream\", \"batch\": %u, "
			"\"sync_every\": %u}",
			o->stream_batch, o->stream_every);
	else
		fprintf(f, ", \"producer\": {\"kind\": \"closed\", "
			   "\"batch\": null, \"sync_every\": null}");
	fprintf(f,
		", \"flood_vms\": %u, \"sim_sleep_overshoot_ns\": ", o->flood);
	if (sb_wall_fair(o))
		fprintf(f, "null},\n");
	else
		fprintf(f, "%" PRIu64 "},\n", o->sleep_over_ns);
	fprintf(f, "  \"trace\": ");
	if (w->kind == WL_TRACE)
		fprintf(f,
			"{\"batches\": %u, \"cmds\": %" PRIu64
			", \"skipped\": %" PRIu64 "},\n",
			w->trace.nbatch, w->trace.ncmds, w->trace.skipped);
	else
		fprintf(f, "null,\n");
}

/* A mode's "metrics": every metric row, the headline first. */
static void json_metrics(FILE *f, const struct opts *o, const struct result *r)
{
	bool first = true;

	fprintf(f, "\n     \"metrics\": {");
	for (size_t i = 0; i < NROWS; i++) {
		const struct row *rw = &rows[i];

		if (!row_metric(rw))
			continue;
		fprintf(f, "%s\"%s\": ", first ? "" : ", ", rw->key);
		first = false;
		if (!row_has(rw, r))
			fprintf(f, "null");
		else
			fprintf(f, "%.3f", rw->get(o, r));
	}
	fprintf(f, "},");
}

/* The rest of a mode's object: latency, oracle, open loop, flood. */
static void json_mode_tail(FILE *f, const struct opts *o,
			   const struct result *r)
{
	fprintf(f,
		"\n     \"latency_ns\": {\"count\": %" PRIu64
		", \"mean\": %.1f, \"min\": %" PRIu64,
		r->c.lat.count,
		r->c.lat.count ? (double)r->c.lat.sum / (double)r->c.lat.count :
				 0.0,
		r->c.lat.count ? r->c.lat.min : 0);
	bj_hist_tail(f, &r->c.lat);
	fputc(',', f);
	fprintf(f,
		"\n     \"oracle\": {\"enabled\": %s, \"checked\": "
		"%" PRIu64 ", \"stale\": %" PRIu64
		", \"dropped_by_fault_hook\": %" PRIu64 "},",
		r->verified ? "true" : "false", r->c.checked, r->c.stale,
		r->c.dropped);
	if (o->rate)
		fprintf(f,
			"\n     \"open_loop\": {\"offered_per_s\": %.3f, "
			"\"achieved_per_s\": %.3f, \"scheduled\": "
			"%" PRIu64 ", \"start_lag_ns_mean\": %.1f}",
			o->rate * o->vms, achieved(r), r->c.scheduled,
			lag_us(r) * 1000.0);
	else
		fprintf(f, "\n     \"open_loop\": null");
	if (o->flood)
		fprintf(f,
			",\n     \"flood\": {\"vms\": %u, \"cmds\": "
			"%" PRIu64 ", \"syncs\": %" PRIu64
			", \"cmds_per_s\": %.1f}}",
			o->flood, r->flood_cmds, r->flood_syncs,
			r->wall_s > 0 ? (double)r->flood_cmds / r->wall_s :
					0.0);
	else
		fprintf(f, ",\n     \"flood\": null}");
}

/*
 * offload: every host SMMU's counters under the names GetStats gives
 * them (core/stats.h's table); null for the other modes.
 */
static void json_service_stats(FILE *f, const struct result *r)
{
	size_t n;
	const struct core_stat_desc *t = core_stats_table(CORE_STAT_HSMMU, &n);
	char name[IOFD_NAME_MAX + 1];

	fprintf(f, "\n     \"service_stats\": ");
	if (!r->n_svc_hs) {
		fprintf(f, "null,");
		return;
	}
	fprintf(f, "[");
	for (unsigned int i = 0; i < r->n_svc_hs; i++) {
		const struct core_hsmmu_stats *hs = &r->svc_hs[i];

		memcpy(name, hs->name, IOFD_NAME_MAX);
		name[IOFD_NAME_MAX] = '\0';
		fprintf(f, "%s{\"name\": ", i ? ", " : "");
		bj_str(f, name);
		for (size_t k = 0; k < n; k++) {
			if (!t[k].key || t[k].kind == CORE_STAT_HISTOGRAM)
				continue;
			for (unsigned int e = 0; e < t[k].n; e++) {
				if (t[k].label_values)
					fprintf(f, ", \"%s_%s\": ", t[k].key,
						t[k].label_values[e]);
				else
					fprintf(f, ", \"%s\": ", t[k].key);
				fprintf(f, "%" PRIu64,
					core_stat_value(&t[k], hs, e));
			}
		}
		fprintf(f, "}");
	}
	fprintf(f, "],");
}

static void json_mode(FILE *f, const struct opts *o, int m,
		      const struct result *r)
{
	fprintf(f, "\n    {\"mode\": \"%s\", \"ok\": %s, \"error\": ",
		sb_mode_names[m], r->err ? "false" : "true");
	if (r->err)
		bj_str(f, r->errmsg);
	else
		fprintf(f, "null");
	fprintf(f, ", \"layout\": ");
	bj_str(f, r->layout);
	fprintf(f,
		", \"threads\": %u, \"hsmmus_used\": %u, \"loop\": %s%s%s, "
		"\"wall_s\": %.6f,"
		"\n     \"counts\": {\"guest_cmds\": %" PRIu64
		", \"guest_syncs\": %" PRIu64 ", \"forwarded\": %" PRIu64
		", \"batches\": %" PRIu64 ", \"waited_syncs\": %" PRIu64
		", \"ioctls\": %" PRIu64 ", \"host_cmds\": %" PRIu64
		", \"host_syncs\": %" PRIu64 ", \"backend_errors\": %" PRIu64
		"},",
		r->threads, hsmmus_used(o, r), r->loop ? "\"" : "",
		r->loop ? r->loop : "null", r->loop ? "\"" : "", r->wall_s,
		r->c.cmds, r->c.syncs, r->c.fwd, r->c.batches, r->c.waited,
		r->be.ioctls, r->be.cmds, r->be.host_syncs, r->be.errors);
	json_service_stats(f, r);
	json_metrics(f, o, r);
	json_mode_tail(f, o, r);
}

static void json_ratios(FILE *f, const struct opts *o, const struct result *res)
{
	bool first = true;

	fprintf(f, "\n  ],\n  \"ratios_qemu_over_offload\": ");
	if (!sb_mode_ok(res, M_QEMU) || !sb_mode_ok(res, M_OFFLOAD)) {
		fprintf(f, "null\n}\n");
		return;
	}
	fprintf(f, "{");
	for (size_t i = 0; i < NROWS; i++) {
		const struct row *rw = &rows[i];
		double b = rw->get(o, &res[M_OFFLOAD]);

		if (!row_ratio(rw))
			continue;
		fprintf(f, "%s\"%s\": ", first ? "" : ", ", rw->key);
		first = false;
		if (b > 0)
			fprintf(f, "%.4f", rw->get(o, &res[M_QEMU]) / b);
		else
			fprintf(f, "null");
	}
	fprintf(f, "}\n}\n");
}

int sb_write_json(const char *path, const struct opts *o, const struct wl *w,
		  const struct result *res)
{
	FILE *f = fopen(path, "we");
	bool first = true;

	if (!f)
		return -errno;
	fprintf(f, "{\n  \"schema\": \"smmu-bench/1\",\n");
	fprintf(f, "  \"version\": \"%s\",\n", PACKAGE_VERSION);
	json_summary(f, o, res);
	json_machine(f);
	json_config(f, o, w);
	fprintf(f, "  \"modes\": [");
	for (int m = 0; m < M_COUNT; m++) {
		if (!res[m].ran)
			continue;
		fprintf(f, "%s", first ? "" : ",");
		first = false;
		json_mode(f, o, m, &res[m]);
	}
	json_ratios(f, o, res);
	if (fclose(f))
		return -errno;
	return 0;
}
