/* SPDX-License-Identifier: MIT */
/*
 * smmu-bench --vcpu kvm output: the table and the JSON (schema
 * "smmu-bench-kvm/1", bench/SCHEMA.md). Every time in the guest comes from
 * rdtsc in the guest, converted with the host's TSC rate.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench/json.h"
#include "bench/kvm/guest.h"
#include "bench/kvm/kvm-bench_i.h"
#include "config.h"

static double per(uint64_t v, uint64_t n)
{
	return n ? (double)v / (double)n : 0;
}

static uint64_t exits_total(const struct kvmb_result *r)
{
	return r->exits.mmio_write + r->exits.mmio_read + r->exits.other +
	       r->exits.intr;
}

struct krow {
	const char *name, *key;
	int kind; /* 0 count, 1 float, 2 us from ns */
	double (*get)(const struct kvmb_opts *o, const struct kvmb_result *r);
};

#define KGET(fn, expr)                                \
	static double fn(const struct kvmb_opts *o,   \
			 const struct kvmb_result *r) \
	{                                             \
		(void)o;                              \
		return (expr);                        \
	}

KGET(k_blocked, per(r->busy_ns, r->guest_cmds))
KGET(k_lockwait, per(r->spin_ns, r->guest_cmds))
KGET(k_p50, (double)core_hist_quantile(&r->lat, 0.5))
KGET(k_p90, (double)core_hist_quantile(&r->lat, 0.9))
KGET(k_p99, (double)core_hist_quantile(&r->lat, 0.99))
KGET(k_p999, (double)core_hist_quantile(&r->lat, 0.999))
KGET(k_max, (double)r->lat.max)
KGET(k_exits, per(exits_total(r), r->cmds))
KGET(k_exits_batch, per(exits_total(r), r->batches))
KGET(k_wr, per(r->exits.mmio_write, r->cmds))
KGET(k_rd, per(r->exits.mmio_read, r->cmds))
KGET(k_handler, per(r->handler_ns, r->cmds))
KGET(k_prod_exit, per(r->prod_ns, r->exits.mmio_write))
KGET(k_cons_exit, per(r->cons_ns, r->exits.mmio_read))
KGET(k_prod_p50, (double)core_hist_quantile(&r->prod_h, 0.5))
KGET(k_cons_p50, (double)core_hist_quantile(&r->cons_h, 0.5))
KGET(k_vcpu_cpu, per(r->vcpu_cpu_ns, r->cmds))
KGET(k_svc_cpu, per(r->svc_cpu_ns, r->cmds))
KGET(k_sleeps, per(r->svc_sleeps, r->batches))
KGET(k_msi_cpu, per(r->msi_cpu_ns, r->cmds))
KGET(k_host_cpu, per(r->vcpu_cpu_ns + r->svc_cpu_ns + r->msi_cpu_ns, r->cmds))
KGET(k_tput, r->wall_s > 0 && r->hsmmus_used ?
		     (double)r->cmds / r->wall_s / r->hsmmus_used :
		     0)
KGET(k_ioctls, 1000.0 * per(r->ioctls, r->cmds))
KGET(k_cmds, (double)r->cmds)
KGET(k_batches, (double)r->batches)
KGET(k_stale, (double)r->stale)
KGET(k_setup_exits,
     (double)(r->setup_exits.mmio_write + r->setup_exits.mmio_read +
	      r->setup_exits.other + r->setup_exits.intr))
KGET(k_backend_call, per(r->backend_ns, r->ioctls))
KGET(k_harness_cpu, per(r->harness_cpu_ns, r->cmds))
KGET(k_harness_wait, per(r->harness_wait_ns, r->batches))
KGET(k_wake_faults, per(r->vcmdq_faults, r->cmds))
KGET(k_vq_cmds, (double)(r->cmds - r->base_cmds))
KGET(k_base_cmds, (double)r->base_cmds)
KGET(k_base_batches, (double)r->base_batches)

KGET(k_call_p50, (double)r->call_p50)
KGET(k_call_p99, (double)r->call_p99)
KGET(k_rtt_call, r->call_p50 ? (double)core_hist_quantile(&r->lat, 0.5) /
				       (double)r->call_p50 :
			       0)
KGET(k_ssync_p50, (double)r->ssync_p50)
KGET(k_ssync_p99, (double)r->ssync_p99)
KGET(k_outside, (double)core_hist_quantile(&r->lat, 0.5) - (double)r->ssync_p50)
KGET(k_take_p50, (double)r->take_p50)
KGET(k_done_p50, (double)r->done_p50)
KGET(k_pass_p50, (double)r->pass_p50)
KGET(k_pass_p99, (double)r->pass_p99)
KGET(k_wait_worker,
     r->wall_s > 0 ?
	     (double)r->sched.wait_ns[KVMB_SCHED_WORKER] / 1e3 / r->wall_s :
	     0)
KGET(k_wait_vcpu, r->wall_s > 0 ? (double)r->sched.wait_ns[KVMB_SCHED_VCPU] /
					  1e3 / r->wall_s :
				  0)
KGET(k_harness_slices,
     r->wall_s > 0 ? (double)r->sched.slices[KVMB_SCHED_HARNESS] / r->wall_s :
		     0)

static const struct krow krows[] = {
	{ "guest blocked per command, ns", "guest_blocked_ns_per_cmd", 1,
	  k_blocked },
	{ "  of which guest lock wait, ns", "guest_lock_wait_ns_per_cmd", 1,
	  k_lockwait },
	{ "guest SYNC round trip p50, us", "p50", 2, k_p50 },
	{ "guest SYNC round trip p90, us", "p90", 2, k_p90 },
	{ "guest SYNC round trip p99, us", "p99", 2, k_p99 },
	{ "guest SYNC round trip p99.9, us", "p999", 2, k_p999 },
	{ "guest SYNC round trip max, us", "max", 2, k_max },
	{ "VM exits per command", "exits_per_cmd", 1, k_exits },
	{ "VM exits per PROD write", "exits_per_batch", 1, k_exits_batch },
	{ "  setup exits (vcmdq: before the run)", "setup_exits", 0,
	  k_setup_exits },
	{ "  vcmdq idle wake faults per command", "wake_faults_per_cmd", 1,
	  k_wake_faults },
	{ "  cmds via VCMDQ (vcmdq: no exit)", "vcmdq_path_cmds", 0,
	  k_vq_cmds },
	{ "  cmds via SMMU CMDQ (vcmdq: trapped)", "base_cmdq_cmds", 0,
	  k_base_cmds },
	{ "  SMMU CMDQ PROD writes (vcmdq)", "base_cmdq_batches", 0,
	  k_base_batches },
	{ "  MMIO write exits per command", "mmio_write_per_cmd", 1, k_wr },
	{ "  MMIO read exits per command", "mmio_read_per_cmd", 1, k_rd },
	{ "VMM in exit handlers, ns/cmd", "handler_ns_per_cmd", 1, k_handler },
	{ "  VMM per PROD write exit p50, us", "prod_exit_handler_p50_ns", 2,
	  k_prod_p50 },
	{ "  VMM per PROD write exit mean, us", "prod_exit_handler_ns", 2,
	  k_prod_exit },
	{ "  VMM per CONS read exit p50, us", "cons_exit_handler_p50_ns", 2,
	  k_cons_p50 },
	{ "  VMM per CONS read exit mean, us", "cons_exit_handler_ns", 2,
	  k_cons_exit },
	{ "vCPU threads CPU, ns/cmd", "vcpu_cpu_ns_per_cmd", 1, k_vcpu_cpu },
	{ "service CPU (worker+issuer), ns/cmd", "service_cpu_ns_per_cmd", 1,
	  k_svc_cpu },
	{ "service worker sleeps per PROD write", "worker_sleeps_per_batch", 1,
	  k_sleeps },
	{ "VMM MSI completion thread CPU, ns/cmd", "completion_cpu_ns_per_cmd",
	  1, k_msi_cpu },
	{ "host CPU (all of the above), ns/cmd", "host_cpu_ns_per_cmd", 1,
	  k_host_cpu },
	{ "throughput, cmds/s per host SMMU used", "cmds_per_s_per_hsmmu", 0,
	  k_tput },
	{ "ioctls per 1000 cmds", "ioctls_per_1000_cmds", 1, k_ioctls },
	{ "backend (sim) modelled time per call, us", "backend_ns_per_call", 2,
	  k_backend_call },
	{ "backend call measured p50, us", "backend_call_p50_ns", 2,
	  k_call_p50 },
	{ "backend call measured p99, us", "backend_call_p99_ns", 2,
	  k_call_p99 },
	{ "SYNC round trip p50 / backend call p50", "rtt_p50_over_call_p50", 1,
	  k_rtt_call },
	{ "service: first entry -> SYNC done p50, us", "service_sync_p50_ns", 2,
	  k_ssync_p50 },
	{ "service: first entry -> SYNC done p99, us", "service_sync_p99_ns", 2,
	  k_ssync_p99 },
	{ "  of which first entry -> call p50, us", "take_p50_ns", 2,
	  k_take_p50 },
	{ "  of which call return -> CONS p50, us", "done_p50_ns", 2,
	  k_done_p50 },
	{ "round trip p50 - service p50, us", "outside_service_p50_ns", 2,
	  k_outside },
	{ "  worker pass interval p50, us", "pass_p50_ns", 2, k_pass_p50 },
	{ "  worker pass interval p99, us", "pass_p99_ns", 2, k_pass_p99 },
	{ "workers waiting for a CPU, us per s", "worker_runq_wait_us_per_s", 1,
	  k_wait_worker },
	{ "vCPU threads waiting for a CPU, us per s", "vcpu_runq_wait_us_per_s",
	  1, k_wait_vcpu },
	{ "vcmdq harness thread CPU, ns/cmd", "harness_cpu_ns_per_cmd", 1,
	  k_harness_cpu },
	{ "vcmdq harness runs per s", "harness_runs_per_s", 1,
	  k_harness_slices },
	{ "vcmdq guest wait for the harness, ns/batch",
	  "harness_wait_ns_per_batch", 1, k_harness_wait },
	{ "guest commands", "guest_cmds", 0, k_cmds },
	{ "guest PROD writes (batches)", "batches", 0, k_batches },
	{ "oracle: stale after SYNC", "stale", 0, k_stale },
};
#define NKROWS (sizeof(krows) / sizeof(krows[0]))

/* Rows that do not apply to mode @m: "-" in the table, null in JSON. */
static bool not_applicable(const struct kvmb_opts *o, int m,
			   const struct kvmb_result *r, const struct krow *rw)
{
	double (*g)(const struct kvmb_opts *, const struct kvmb_result *) =
		rw->get;
	bool svc_row = g == k_svc_cpu || g == k_sleeps || g == k_call_p50 ||
		       g == k_wait_worker || g == k_call_p99 ||
		       g == k_rtt_call || g == k_ssync_p50 || g == k_outside ||
		       g == k_take_p50 || g == k_ssync_p99;
	/* Recorded for vCMDQ segments and passes only. */
	bool vcmdq_row = g == k_harness_cpu || g == k_harness_wait ||
			 g == k_harness_slices || g == k_wake_faults ||
			 g == k_setup_exits || g == k_done_p50 ||
			 g == k_pass_p50 || g == k_pass_p99 || g == k_vq_cmds ||
			 g == k_base_cmds || g == k_base_batches;

	return (svc_row && !r->has_svc) || (vcmdq_row && m != KVMB_VCMDQ) ||
	       (g == k_msi_cpu && !(o->msipoll && m == KVMB_OFFLOAD));
}

/* JSON "metrics": the rows not reported elsewhere in the mode object. */
static bool in_metrics(const struct krow *rw)
{
	return rw->get != k_p50 && rw->get != k_p90 && rw->get != k_p99 &&
	       rw->get != k_p999 && rw->get != k_max && rw->get != k_cmds &&
	       rw->get != k_batches && rw->get != k_stale &&
	       rw->get != k_exits && rw->get != k_wr && rw->get != k_rd &&
	       rw->get != k_setup_exits;
}

/* --idle (kvm-idle.c): issue 15's idle figure. */
static void print_idle(const struct kvmb_opts *o, const struct kvmb_result *r)
{
	double cpu = per(r->idle.svc_cpu_ns, r->idle.idle_ns);
	double first = (double)r->idle.first_ns / 1000.0;
	double trans = (double)r->idle.trans_p50 / 1000.0;
	double tlong = (double)r->idle.long_p50 / 1000.0;

	printf("\nidle: %u idle vCMDQ queues (%u pages, uffd-wp) and the "
	       "guest's 2 queues on one worker\n",
	       r->idle.queues, r->idle.pages);
	printf("  guest round trip while active, p50: %.2f us\n",
	       (double)r->idle.active_p50 / 1000.0);
	printf("  idle-to-active round trips, batch made ready once the "
	       "page was armed, %" PRIu64 ":\n    p50 %.2f us, p90 %.2f us, "
	       "max %.2f us\n",
	       r->idle.trans_n, trans, (double)r->idle.trans_p90 / 1000.0,
	       (double)r->idle.trans_max / 1000.0);
	printf("  the same 10 ms after the arm (the worker's CPU idle "
	       "long enough to halt), %" PRIu64 ":\n    p50 %.2f us, p90 "
	       "%.2f us\n",
	       r->idle.long_n, tlong, (double)r->idle.long_p90 / 1000.0);
	printf("  %u ms idle, every page armed: service CPU %.3f ms = "
	       "%.4f%% of a core; worker passes %" PRIu64 ", sleeps "
	       "%" PRIu64 "\n",
	       o->idle_ms, (double)r->idle.svc_cpu_ns / 1e6, 100.0 * cpu,
	       r->idle.passes, r->idle.sleeps);
	printf("  first command after the idle: %.2f us = %.2fx the "
	       "idle-to-active p50 right after the arm,\n    %.2fx the one "
	       "10 ms after (its store %s the armed page)\n",
	       first, trans > 0 ? first / trans : 0,
	       tlong > 0 ? first / tlong : 0,
	       r->idle.first_faulted ? "faulted on" : "did NOT fault on");
}

void kvmb_print(const struct kvmb_opts *o, const struct wl *w, uint64_t tsc_hz,
		const struct kvmb_result *res)
{
	char cell[32];

	printf("smmu-bench %s --vcpu kvm: workload %s, %u VM%s x %u vCPU%s "
	       "(KVM, guest at CPL3), %u host SMMU%s, sim (wait %s, ioctl %u "
	       "ns, cmd %u ns, sync %u ns), ",
	       PACKAGE_VERSION, w->name, o->vms, o->vms > 1 ? "s" : "",
	       o->vcpus, o->vcpus > 1 ? "s" : "", o->hsmmus,
	       o->hsmmus > 1 ? "s" : "", bj_wait_name(o->sim.wait),
	       o->sim.ioctl_ns, o->sim.cmd_ns, o->sim.sync_ns);
	if (o->syncs)
		printf("%" PRIu64 " PROD writes per vCPU per mode\n", o->syncs);
	else
		printf("%.1f s per mode\n", o->duration);
	printf("guest: Linux arm-smmu-v3 submission (lock, copy, one PROD "
	       "write, %s), queue of %u entries; TSC %.3f GHz; oracle "
	       "%s; offload: poll_us %u, CONS exit spins %u us then sleeps%s\n",
	       o->msipoll ? "SYNC by MSI write polled in RAM (MSIPOLL)" :
			    "poll CONS",
	       KG_CMDQ_ENTS, (double)tsc_hz / 1e9,
	       o->verify ? "on" : "off (--no-verify)", o->poll_us,
	       KVMB_SPIN_NS / 1000,
	       o->pin ? ", vCPU threads and service workers pinned apart "
			"(--kvm-pin)" :
			"");
	for (int m = 0; m < KVMB_NMODES; m++)
		if (res[m].ran)
			printf("  %-13s %.2f s wall, exits: %" PRIu64
			       " MMIO write, %" PRIu64 " MMIO read, %" PRIu64
			       " other\n",
			       kvmb_mode_names[m], res[m].wall_s,
			       res[m].exits.mmio_write, res[m].exits.mmio_read,
			       res[m].exits.other + res[m].exits.intr);
	if (res[KVMB_VCMDQ].ran)
		printf("  vcmdq: setup (CMDQV reset, before the run) %" PRIu64
		       " MMIO write, %" PRIu64 " MMIO read exits, not counted "
		       "above; consumer: %s; idle wake-up: %s (%" PRIu64
		       " protections armed, %" PRIu64 " guest write faults)\n",
		       res[KVMB_VCMDQ].setup_exits.mmio_write,
		       res[KVMB_VCMDQ].setup_exits.mmio_read,
		       res[KVMB_VCMDQ].consumer ? res[KVMB_VCMDQ].consumer :
						  "-",
		       res[KVMB_VCMDQ].vcmdq_wake ? res[KVMB_VCMDQ].vcmdq_wake :
						    "-",
		       res[KVMB_VCMDQ].vcmdq_arms,
		       res[KVMB_VCMDQ].vcmdq_faults);
	printf("\n%-40s", "metric (real vCPUs)");
	for (int m = 0; m < KVMB_NMODES; m++)
		if (res[m].ran)
			printf(" %13s", kvmb_mode_names[m]);
	printf("\n");
	for (size_t i = 0; i < NKROWS; i++) {
		const struct krow *rw = &krows[i];

		printf("%-40s", rw->name);
		for (int m = 0; m < KVMB_NMODES; m++) {
			double v;

			if (!res[m].ran)
				continue;
			v = rw->get(o, &res[m]);
			if (res[m].err)
				snprintf(cell, sizeof(cell), "error");
			else if (not_applicable(o, m, &res[m], rw))
				snprintf(cell, sizeof(cell), "-");
			else if (rw->get == k_stale && !res[m].verified)
				snprintf(cell, sizeof(cell), "n/a");
			else if (rw->kind == 0)
				snprintf(cell, sizeof(cell), "%.0f", v);
			else if (rw->kind == 2)
				snprintf(cell, sizeof(cell), "%.2f",
					 v / 1000.0);
			else
				snprintf(cell, sizeof(cell),
					 v >= 100 ? "%.0f" : "%.2f", v);
			printf(" %13s", cell);
		}
		printf("\n");
	}
	for (int m = 0; m < KVMB_NMODES; m++)
		if (res[m].ran && res[m].err)
			printf("%s: ERROR: %s\n", kvmb_mode_names[m],
			       res[m].errmsg);
	if (o->idle_ms && res[KVMB_VCMDQ].ran && !res[KVMB_VCMDQ].err)
		print_idle(o, &res[KVMB_VCMDQ]);
	printf("\nGuest blocked: rdtsc in the guest from taking the CMDQ lock "
	       "to seeing its CMD_SYNC\ncomplete (no SYNC: to after the PROD "
	       "write), per command. SYNC round trip: PROD write\nto CONS "
	       "showing the SYNC consumed. Exits counted from KVM_RUN returns "
	       "(the final DONE\nstore excluded). vcmdq: PROD store and CONS "
	       "poll in the shared register page\n(no exit), round trip = "
	       "PROD store to CONS past the SYNC; a batch with a command the "
	       "VCMDQ\nrejects (CFGI_*) goes to the trapped SMMU CMDQ, its "
	       "exits counted above.\nService rows: its "
	       "histograms (bucket upper edges, within 3.2%%). Backend call: "
	       "the call's wall time;\nservice first entry -> SYNC done: "
	       "from the pass that took the batch's first entry to\nits "
	       "completion (vcmdq: CONS stored); round trip - service: the "
	       "guest's PROD store\nuntil that pass plus CONS reaching the "
	       "guest (medians subtracted: indicative).\n");
}

static void json_mode(FILE *f, const struct kvmb_opts *o, int m,
		      const struct kvmb_result *r)
{
	bool first = true;

	fprintf(f, "\n    {\"mode\": \"%s\", \"ok\": %s, \"error\": ",
		kvmb_mode_names[m], r->err ? "false" : "true");
	if (r->err)
		bj_str(f, r->errmsg);
	else
		fprintf(f, "null");
	fprintf(f,
		", \"wall_s\": %.6f,\n     \"counts\": {\"guest_cmds\": %" PRIu64
		", \"guest_syncs\": %" PRIu64 ", \"forwarded\": %" PRIu64
		", \"batches\": %" PRIu64 ", \"guest_counted_cmds\": %" PRIu64
		", \"guest_counted_batches\": %" PRIu64
		", \"guest_seen_syncs\": %" PRIu64 ", \"ioctls\": %" PRIu64
		", \"host_syncs\": %" PRIu64 ", \"msi_writes\": %" PRIu64 "},",
		r->wall_s, r->cmds, r->syncs, r->fwd, r->batches, r->guest_cmds,
		r->guest_batches, r->guest_syncs_seen, r->ioctls, r->host_syncs,
		r->msi_writes);
	fprintf(f,
		"\n     \"exits_per_cmd\": %.4f, \"exits_by_reason\": "
		"{\"mmio_write\": %" PRIu64 ", \"mmio_read\": %" PRIu64
		", \"other\": %" PRIu64 "},",
		k_exits(o, r), r->exits.mmio_write, r->exits.mmio_read,
		r->exits.other + r->exits.intr);
	fprintf(f,
		"\n     \"setup_exits_by_reason\": {\"mmio_write\": %" PRIu64
		", \"mmio_read\": %" PRIu64 ", \"other\": %" PRIu64
		"}, \"consumer\": ",
		r->setup_exits.mmio_write, r->setup_exits.mmio_read,
		r->setup_exits.other + r->setup_exits.intr);
	bj_str_or_null(f, r->consumer);
	fprintf(f, ", \"vcmdq_wake\": ");
	bj_str_or_null(f, r->vcmdq_wake);
	fprintf(f,
		", \"vcmdq_wake_arms\": %" PRIu64
		", \"vcmdq_wake_faults\": %" PRIu64 ",",
		r->vcmdq_arms, r->vcmdq_faults);
	fprintf(f,
		"\n     \"guest_sync_ns\": {\"count\": %" PRIu64
		", \"mean\": %.1f",
		r->lat.count, per(r->lat.sum, r->lat.count));
	bj_hist_tail(f, &r->lat);
	fputc(',', f);
	fprintf(f, "\n     \"metrics\": {");
	for (size_t i = 0; i < NKROWS; i++) {
		const struct krow *rw = &krows[i];

		if (!in_metrics(rw))
			continue;
		fprintf(f, "%s\"%s\": ", first ? "" : ", ", rw->key);
		first = false;
		if (not_applicable(o, m, r, rw))
			fprintf(f, "null");
		else
			fprintf(f, "%.3f", rw->get(o, r));
	}
	fprintf(f, "},");
	if (o->idle_ms && m == KVMB_VCMDQ)
		fprintf(f,
			"\n     \"idle\": {\"idle_ms\": %u, \"queues\": %u, "
			"\"pages\": %u, \"active_p50_ns\": %" PRIu64
			", \"transitions\": %" PRIu64
			", \"transition_p50_ns\": %" PRIu64
			", \"transition_p90_ns\": %" PRIu64
			", \"transition_max_ns\": %" PRIu64
			", \"transitions_10ms\": %" PRIu64
			", \"transition_10ms_p50_ns\": %" PRIu64
			", \"transition_10ms_p90_ns\": %" PRIu64
			", \"idle_ns\": %" PRIu64
			", \"service_cpu_ns\": %" PRIu64
			", \"worker_passes\": %" PRIu64
			", \"worker_sleeps\": %" PRIu64
			", \"first_after_idle_ns\": %" PRIu64
			", \"first_faulted\": %s},",
			o->idle_ms, r->idle.queues, r->idle.pages,
			r->idle.active_p50, r->idle.trans_n, r->idle.trans_p50,
			r->idle.trans_p90, r->idle.trans_max, r->idle.long_n,
			r->idle.long_p50, r->idle.long_p90, r->idle.idle_ns,
			r->idle.svc_cpu_ns, r->idle.passes, r->idle.sleeps,
			r->idle.first_ns,
			r->idle.first_faulted ? "true" : "false");
	fprintf(f,
		"\n     \"oracle\": {\"enabled\": %s, \"checked\": %" PRIu64
		", \"stale\": %" PRIu64 "}}",
		r->verified ? "true" : "false", r->checked, r->stale);
}

int kvmb_write_json(const char *path, const struct kvmb_opts *o,
		    const struct wl *w, uint64_t tsc_hz,
		    const struct kvmb_result *res)
{
	struct utsname u;
	FILE *f = fopen(path, "we");
	bool first = true;

	if (!f)
		return -errno;
	uname(&u);
	fprintf(f, "{\n  \"schema\": \"smmu-bench-kvm/1\",\n");
	fprintf(f, "  \"version\": \"%s\",\n  \"vcpu\": \"kvm\",\n",
		PACKAGE_VERSION);
	fprintf(f, "  \"machine\": {\"nproc\": %ld, \"release\": ",
		sysconf(_SC_NPROCESSORS_ONLN));
	bj_str(f, u.release);
	fprintf(f, ", \"arch\": ");
	bj_str(f, u.machine);
	fprintf(f, ", \"tsc_hz\": %" PRIu64 "},\n  \"config\": {\"workload\": ",
		tsc_hz);
	bj_str(f, w->name);
	fprintf(f,
		", \"vms\": %u, \"vcpus_per_vm\": %u, \"hsmmus\": %u, "
		"\"duration_s\": %.3f, \"batches_per_vcpu\": %" PRIu64
		", \"seed\": %" PRIu64
		", \"verify\": %s, \"backend\": \"sim\", "
		"\"sim\": {\"wait\": \"%s\", \"ioctl_ns\": %u, \"cmd_ns\": %u, "
		"\"sync_ns\": %u}, \"offload\": {\"issue_mode\": \"inline\", "
		"\"poll_us\": %u, \"cons_spin_ns\": %u, \"pinned\": %s}, "
		"\"guest\": "
		"{\"cpl\": 3, \"cmdq_entries\": %u, \"slots\": %u, "
		"\"sync_wait\": \"%s\"}},\n",
		o->vms, o->vcpus, o->hsmmus, o->duration, o->syncs, o->seed,
		o->verify ? "true" : "false", bj_wait_name(o->sim.wait),
		o->sim.ioctl_ns, o->sim.cmd_ns, o->sim.sync_ns, o->poll_us,
		KVMB_SPIN_NS, o->pin ? "true" : "false", KG_CMDQ_ENTS,
		KG_NSLOTS, o->msipoll ? "msipoll" : "cons");
	fprintf(f, "  \"modes\": [");
	for (int m = 0; m < KVMB_NMODES; m++) {
		if (!res[m].ran)
			continue;
		if (!first)
			fputc(',', f);
		first = false;
		json_mode(f, o, m, &res[m]);
	}
	fprintf(f, "\n  ]\n}\n");
	if (fclose(f))
		return -errno;
	return 0;
}
