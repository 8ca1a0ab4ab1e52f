/* SPDX-License-Identifier: MIT */
/*
 * smmu-bench: today's VMM path against smmu-offload, side by side, in one
 * run, on the same workload and the same (simulated) host SMMUs.
 *
 * Modes:
 *   qemu          one iofd_invalidate() per guest command (entry_num = 1)
 *                 on the vCPU thread, synchronously: QEMU's accel path.
 *   qemu-batched  one iofd_invalidate() per guest PROD write, SYNCs left
 *                 out, on the vCPU thread.
 *   offload       the embedded service (core/core.h): the vCPU pushes the
 *                 batch into its VM's ring, publishes, and the guest waits
 *                 for its CMD_SYNC through ring_prod_done_upto(). With
 *                 --connect SOCKET the service is a running smmu-offloadd
 *                 instead (rings handed over with the client library);
 *                 its sim oracle is then out of reach.
 * --idle MS measures the service CPU of idle rings instead.
 *
 * Noisy neighbour (--flood N, or -w noisy): N more VMs, each its own
 * vSMMU (vIOMMU, ring) on the same host SMMUs, publish TLBI_NH_ASID
 * commands as fast as they can, one thread per flooding VM that never
 * waits for a SYNC (offload: keeps its ring full, a SYNC every few
 * batches; qemu modes: invalidates on its own vIOMMU back to back). The
 * flooders' commands and latencies are counted apart (flood cmds/s) and
 * never in the measured VMs' metrics. The measured VMs start only once
 * every flooder has published its first batch (a start barrier), so the
 * flood is on for the whole measured window, however the threads are
 * scheduled.
 *
 * Load: closed loop by default (each simulated vCPU waits for its SYNC
 * before writing the next batch, like a guest driver); --rate R makes it
 * open: batches arrive on a seeded Poisson (or fixed) schedule, R per
 * second per VM, and latency counts from the scheduled time.
 * Topology: --vms VMs x --vsmmus-per-vm vSMMUs (each one struct vm below:
 * a vIOMMU and, in offload mode, a ring) x --vcpus vCPUs, --devices vSIDs
 * per vSMMU, --hsmmus host SMMUs.
 *
 * Thread layout (2-core machine, many simulated vCPUs): in the qemu modes
 * every simulated vCPU is a thread that holds its VM's CMDQ lock around
 * the ioctls, as QEMU serialises a vSMMU's queue, and the sim backend's
 * BLOCK wait mode sleeps instead of spinning so that hundreds of vCPU
 * threads fit on two cores. In offload mode a few producer threads each
 * drive many VMs without blocking: push and publish every idle vCPU's next
 * batch, then collect completions, sleeping on one ring's completion
 * eventfd only when nothing completed for a while. Wall time on this
 * machine and the time the sim charges (its cost model) therefore differ;
 * both are reported.
 *
 * Every completed guest CMD_SYNC is checked against the sim's IOTLB
 * oracle (unless --no-verify): the workload fills an entry each of its
 * invalidations must remove, and after the SYNC it must be gone.
 * JSON schema: bench/SCHEMA.md. Results: docs/PERFORMANCE.md.
 *
 * Files (one program, split by concern; the shared structs and the calls
 * between the files are in smmu-bench_i.h, prefix sb_):
 *   smmu-bench.c      main, the start gate, one mode's run (threads, the
 *                     measured window, merging the counters), --vcpu kvm
 *   options.c         the command line: usage, defaults, parsing
 *   load.c            the simulated guests in every mode: SYNC accounting,
 *                     the oracle check, open-loop arrivals, --flood's
 *                     flooding VMs
 *   modes-qemu.c      qemu and qemu-batched: vCPU threads, their setup
 *   modes-offload.c   offload with the embedded service; --idle
 *   modes-connect.c   offload through smmu-offloadd (--connect)
 *   report.c          the derived metrics (one row table), text table, JSON
 *   plots.c           --plot: gnuplot data, script and SVGs
 *   workload.c        the workloads (bench/workload.h, shared with tests)
 *   kvm/              --vcpu kvm: real vCPUs (bench/kvm/kvm-bench.h)
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "bench/kvm/kvm-bench.h"
#include "bench/smmu-bench_i.h"

const char *const sb_mode_names[M_COUNT] = { "qemu", "qemu-batched",
					     "offload" };

const char *const sb_hsmmu_names[] = {
	"smmu0",  "smmu1",  "smmu2",  "smmu3",	"smmu4",  "smmu5",
	"smmu6",  "smmu7",  "smmu8",  "smmu9",	"smmu10", "smmu11",
	"smmu12", "smmu13", "smmu14", "smmu15",
};
_Static_assert(sizeof(sb_hsmmu_names) / sizeof(sb_hsmmu_names[0]) == MAX_HSMMU,
	       "one name per host SMMU");

/* ---- the start gate ----------------------------------------------------- */

/*
 * Producer threads start together, when the main thread says so: the
 * flooders at GO_FLOOD, the measured threads (@level GO_ALL) after them.
 */
bool sb_run_gate(struct run *run, int level)
{
	int go;

	pthread_mutex_lock(&run->gate_lock);
	while (run->go != GO_ABORT && run->go < level)
		pthread_cond_wait(&run->gate, &run->gate_lock);
	go = run->go;
	pthread_mutex_unlock(&run->gate_lock);
	return go > 0;
}

/* A flooder has published its first batch (or given up before it). */
void sb_flood_published(struct run *run)
{
	pthread_mutex_lock(&run->gate_lock);
	run->flood_ready++;
	pthread_cond_broadcast(&run->gate);
	pthread_mutex_unlock(&run->gate_lock);
}

/* The start barrier: wait until each of @n flooders has published. */
static void flood_wait_published(struct run *run, unsigned int n)
{
	pthread_mutex_lock(&run->gate_lock);
	while (run->flood_ready < n)
		pthread_cond_wait(&run->gate, &run->gate_lock);
	pthread_mutex_unlock(&run->gate_lock);
}

static void run_open(struct run *run, int go)
{
	pthread_mutex_lock(&run->gate_lock);
	run->go = go;
	pthread_cond_broadcast(&run->gate);
	pthread_mutex_unlock(&run->gate_lock);
}

/* ---- one mode's run -------------------------------------------------------- */

static uint64_t tv_ns(struct timeval tv)
{
	return (uint64_t)tv.tv_sec * 1000000000u + (uint64_t)tv.tv_usec * 1000u;
}

static uint64_t progress_of(const struct run *run)
{
	uint64_t n = 0;

	for (unsigned int i = 0; i < run->nwk; i++)
		n += __atomic_load_n(&run->wk[i].progress, __ATOMIC_RELAXED);
	return n;
}

/* Wait for the measured window to end, with a progress line on stderr. */
static void run_wait(struct run *run, uint64_t t0)
{
	const struct opts *o = run->o;
	uint64_t end = t0 + (uint64_t)(o->duration * 1e9);
	bool show = !o->quiet && !o->syncs && o->duration > 2.0;
	uint64_t next = t0 + 1000000000u;

	if (o->syncs)
		return; /* the threads stop on their own */
	for (;;) {
		uint64_t t = sb_now_ns();

		if (t >= end)
			break;
		if (show && t >= next) {
			fprintf(stderr,
				"\r  %-12s %4.1f / %.1f s, %" PRIu64
				" guest SYNCs",
				sb_mode_names[run->mode],
				(double)(t - t0) / 1e9, o->duration,
				progress_of(run));
			next += 1000000000u;
		}
		t = end - t < 200000000u ? end - t : 200000000u;
		poll(NULL, 0, (int)(t / 1000000u) + 1);
	}
	if (show)
		fprintf(stderr, "\r%*s\r", 60, "");
}

/* How @run's mode is laid out on threads, for the table and JSON. */
static void mode_layout(const struct run *run, struct result *res)
{
	const struct opts *o = run->o;
	unsigned int per = (o->nvs + run->nwk - 1) / run->nwk;

	if (run->mode == M_OFFLOAD && o->stream)
		snprintf(res->layout, sizeof(res->layout),
			 "%u streaming producer%s (one per ring, %u entries "
			 "per publish, a CMD_SYNC every %u), %s",
			 run->nwk, run->nwk > 1 ? "s" : "", o->stream_batch,
			 o->stream_every,
			 o->connect ? "smmu-offloadd (another process)" :
				      "embedded service");
	else if (run->mode == M_OFFLOAD && o->connect)
		snprintf(res->layout, sizeof(res->layout),
			 "%u producer thread%s x %u %s%s each; the service is "
			 "smmu-offloadd at %s (another process)",
			 run->nwk, run->nwk > 1 ? "s" : "", per,
			 sb_unit_name(o), o->nvs > 1 ? "s" : "", o->connect);
	else if (run->mode == M_OFFLOAD)
		snprintf(res->layout, sizeof(res->layout),
			 "%u producer thread%s x %u %s%s each, %u worker%s "
			 "(%s issue), embedded",
			 run->nwk, run->nwk > 1 ? "s" : "", per,
			 sb_unit_name(o), o->nvs > 1 ? "s" : "", o->hsmmus,
			 o->hsmmus > 1 ? "s" : "",
			 o->svc.issue_mode == CORE_ISSUE_AUTO	? "auto" :
			 o->svc.issue_mode == CORE_ISSUE_INLINE ? "inline" :
								  "async");
	else
		snprintf(res->layout, sizeof(res->layout),
			 "%u vCPU threads (%u %ss x %u), ioctl on the vCPU",
			 run->nwk, o->nvs, sb_unit_name(o), o->vcpus);
}

/* Sum the producer threads' counters into @res. Return: -EIO if one of
 * them failed (its message in res->errmsg), else 0. */
static int counters_merge(const struct run *run, struct result *res)
{
	int r = 0;

	for (unsigned int i = 0; i < run->nwk; i++) {
		const struct counters *c = &run->wk[i].c;

		core_hist_merge(&res->c.lat, &c->lat);
		res->c.cmds += c->cmds;
		res->c.fwd += c->fwd;
		res->c.syncs += c->syncs;
		res->c.batches += c->batches;
		res->c.waited += c->waited;
		res->c.handler_ns += c->handler_ns;
		res->c.blocked_ns += c->blocked_ns;
		res->c.wait_ns += c->wait_ns;
		res->c.cpu_ns += c->cpu_ns;
		res->c.checked += c->checked;
		res->c.stale += c->stale;
		res->c.errors += c->errors;
		res->c.dropped += c->dropped;
		res->c.scheduled += c->scheduled;
		res->c.lag_ns += c->lag_ns;
		if (run->wk[i].err[0] && !res->errmsg[0]) {
			snprintf(res->errmsg, sizeof(res->errmsg), "%s",
				 run->wk[i].err);
			r = -EIO;
		}
	}
	return r;
}

/* The VMs, their vCPU slots and workload streams, the thread arrays. */
static int run_alloc(struct run *run)
{
	const struct opts *o = run->o;
	uint64_t nglobal = (uint64_t)o->nvs * o->vcpus;

	run->vms = calloc(o->nall, sizeof(*run->vms));
	run->nwk = run->mode == M_OFFLOAD ? o->threads : o->nvs * o->vcpus;
	if (run->mode == M_OFFLOAD && (run->nwk > o->nvs || o->stream))
		run->nwk = o->nvs; /* --producer stream: one per ring */
	run->wk = calloc(run->nwk, sizeof(*run->wk));
	run->fl = calloc(o->flood ? o->flood : 1, sizeof(*run->fl));
	if (!run->vms || !run->wk || !run->fl)
		return -ENOMEM;
	for (unsigned int v = 0; v < o->nall; v++) {
		struct vm *vm = &run->vms[v];

		bench_ring_reset(&vm->ring);
		pthread_mutex_init(&vm->lock, NULL);
		vm->slot = calloc(o->vcpus, sizeof(*vm->slot));
		if (!vm->slot)
			return -ENOMEM;
		for (unsigned int k = 0; k < o->vcpus && v < o->nvs; k++)
			wl_stream_init(&vm->slot[k].ws, run->w, o->seed, k,
				       (uint64_t)v * o->vcpus + k, nglobal);
	}
	return 0;
}

static void run_free(struct run *run)
{
	if (run->vms)
		for (unsigned int v = 0; v < run->o->nall; v++) {
			pthread_mutex_destroy(&run->vms[v].lock);
			free(run->vms[v].slot);
		}
	free(run->vms);
	free(run->wk);
	free(run->fl);
}

/* What one mode sets up besides the VMs: one of the three is used. */
struct mode_env {
	struct qemu_env *qenv; /* qemu modes */
	struct core_service *svc; /* offload, embedded */
	struct smmu_client *client; /* offload --connect */
	struct daemon_ctr before; /* --connect: the daemon's counters */
};

static int mode_setup(struct run *run, struct mode_env *env, struct result *res)
{
	if (run->mode == M_OFFLOAD && run->o->connect)
		return sb_connect_setup(run, &env->client, &env->before, res);
	if (run->mode == M_OFFLOAD)
		return sb_offload_setup(run, &env->svc, res->errmsg,
					sizeof(res->errmsg));
	return sb_qemu_setup(run, &env->qenv, res->errmsg, sizeof(res->errmsg));
}

static void mode_teardown(struct run *run, struct mode_env *env, bool measured,
			  struct result *res)
{
	if (run->mode == M_OFFLOAD && run->o->connect)
		sb_connect_teardown(run, env->client, &env->before, measured,
				    res);
	else if (run->mode == M_OFFLOAD)
		sb_offload_teardown(run, env->svc, res);
	else if (env->qenv)
		sb_qemu_teardown(run, env->qenv, res);
}

/* Start the producer threads, then the flooders; they wait at the gate.
 * On failure the started ones are let go and joined. Return: 0 or
 * -EAGAIN (res->errmsg says how far it got). */
static int run_start(struct run *run, unsigned int *ret_nfl, struct result *res)
{
	unsigned int started = 0, nfl = 0;
	pthread_attr_t attr;
	int r = 0;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (unsigned int i = 0; i < run->nwk; i++) {
		struct worker *wk = &run->wk[i];

		wk->run = run;
		wk->id = i;
		core_hist_init(&wk->c.lat);
		if (pthread_create(&wk->th, &attr,
				   run->mode != M_OFFLOAD ? sb_qemu_main :
				   run->o->stream	  ? sb_stream_main :
							    sb_offload_main,
				   wk)) {
			r = -EAGAIN;
			snprintf(res->errmsg, sizeof(res->errmsg),
				 "pthread_create failed after %u threads", i);
			break;
		}
		started++;
	}
	for (unsigned int i = 0; i < run->o->flood && !r; i++) {
		struct worker *wk = &run->fl[i];

		wk->run = run;
		wk->id = run->o->nvs + i;
		if (pthread_create(&wk->th, &attr, sb_flood_main, wk)) {
			r = -EAGAIN;
			snprintf(res->errmsg, sizeof(res->errmsg),
				 "pthread_create failed after %u flooders", i);
			break;
		}
		nfl++;
	}
	pthread_attr_destroy(&attr);
	if (r) {
		run_open(run, GO_ABORT);
		for (unsigned int i = 0; i < started; i++)
			pthread_join(run->wk[i].th, NULL);
		for (unsigned int i = 0; i < nfl; i++)
			pthread_join(run->fl[i].th, NULL);
	}
	*ret_nfl = nfl;
	return r;
}

/* Join the flooders into @res. Return: -EIO if one failed, else 0. */
static int flood_join(struct run *run, unsigned int nfl, struct result *res)
{
	int r = 0;

	for (unsigned int i = 0; i < nfl; i++) {
		struct worker *fw = &run->fl[i];

		pthread_join(fw->th, NULL);
		res->flood_cmds += fw->c.cmds;
		res->flood_syncs += fw->c.syncs;
		if (fw->err[0] && !res->errmsg[0]) {
			snprintf(res->errmsg, sizeof(res->errmsg), "%s",
				 fw->err);
			r = -EIO;
		}
	}
	return r;
}

/* Open the gate, wait out the measured window, join every thread and
 * merge what they counted into @res. Return: 0, or -EIO if a thread
 * failed. */
static int run_measure(struct run *run, unsigned int nfl, struct result *res)
{
	struct rusage ru0, ru1;
	uint64_t t0, t1;
	int r;

	getrusage(RUSAGE_SELF, &ru0);
	/* The start barrier: the flood is on before the measured VMs start. */
	run_open(run, GO_FLOOD);
	flood_wait_published(run, nfl);
	run_open(run, GO_ALL);
	t0 = sb_now_ns();
	run_wait(run, t0);
	if (!run->o->syncs)
		__atomic_store_n(&run->stop, 1, __ATOMIC_RELEASE);
	for (unsigned int i = 0; i < run->nwk; i++)
		pthread_join(run->wk[i].th, NULL);
	t1 = sb_now_ns();
	/* The flood lasts as long as the measured window, then stops. */
	__atomic_store_n(&run->stop, 1, __ATOMIC_RELEASE);
	r = flood_join(run, nfl, res);
	getrusage(RUSAGE_SELF, &ru1);

	res->wall_s = (double)(t1 - t0) / 1e9;
	res->proc_cpu_ns = tv_ns(ru1.ru_utime) + tv_ns(ru1.ru_stime) -
			   tv_ns(ru0.ru_utime) - tv_ns(ru0.ru_stime);
	res->nvcsw = ru1.ru_nvcsw - ru0.ru_nvcsw;
	res->nivcsw = ru1.ru_nivcsw - ru0.ru_nivcsw;
	if (counters_merge(run, res))
		r = -EIO;
	return r;
}

/* Run mode @mode once and fill @res. Return: 0 or -errno (res->errmsg
 * says why). */
static int run_mode(const struct opts *o, const struct wl *w, enum mode mode,
		    struct result *res)
{
	struct run run = { .o = o,
			   .w = w,
			   .mode = mode,
			   .gate_lock = PTHREAD_MUTEX_INITIALIZER,
			   .gate = PTHREAD_COND_INITIALIZER };
	struct mode_env env = { NULL, NULL, NULL, { 0 } };
	bool measured = false;
	unsigned int nfl = 0;
	int r;

	memset(res, 0, sizeof(*res));
	res->ran = true;
	res->mode = mode;
	res->stream = mode == M_OFFLOAD && o->stream;
	core_hist_init(&res->c.lat);
	r = run_alloc(&run);
	if (r)
		goto out_free;
	r = mode_setup(&run, &env, res);
	mode_layout(&run, res);
	res->threads = run.nwk;
	res->verified = sb_verifying(&run);
	if (!r)
		r = run_start(&run, &nfl, res);
	if (!r) {
		r = run_measure(&run, nfl, res);
		measured = true;
	}
	mode_teardown(&run, &env, measured, res);
out_free:
	run_free(&run);
	res->err = r;
	if (r && !res->errmsg[0])
		snprintf(res->errmsg, sizeof(res->errmsg), "%s", strerror(-r));
	return r;
}

/* ---- before the runs ------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The median overshoot of a 300 ns absolute clock_nanosleep() here, timer
 * slack 1 ns: what each sleep of the sim's block wait adds to the wall
 * clock on top of the modelled time (SCHEMA.md sim_sleep_overshoot_ns).
 */
static uint64_t sleep_overshoot_ns(void)
{
	uint64_t d[101];

	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
		uint64_t t = sb_now_ns() + 300;
		struct timespec ts = { .tv_sec = (time_t)(t / 1000000000u),
				       .tv_nsec = (long)(t % 1000000000u) };

		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts,
				       NULL) == EINTR)
			;
		d[i] = sb_now_ns() - t;
	}
	qsort(d, sizeof(d) / sizeof(d[0]), sizeof(d[0]), cmp_u64);
	return d[50];
}

/* --vcpu kvm: the modes on real vCPUs (bench/kvm/kvm-bench.h). */
static int run_kvm(const struct opts *o, const struct wl *w)
{
	struct kvmb_opts k = { .vms = o->vms,
			       .vcpus = o->vcpus,
			       .hsmmus = o->hsmmus,
			       .duration = o->duration,
			       .syncs = o->syncs,
			       .seed = o->seed,
			       .verify = o->verify,
			       .quiet = o->quiet,
			       .sim = o->sim,
			       .poll_us = o->svc.poll_us,
			       .vcmdq_poll_us = o->svc.vcmdq_poll_us,
			       .pin = o->kvm_pin,
			       .lap = o->kvm_lap,
			       .msipoll = o->kvm_msi,
			       .json = o->json };

	if (strcmp(o->backend, "sim") || o->connect || o->flood || o->rate ||
	    o->vsmmus > 1 || o->plot || o->fault_drop) {
		fprintf(stderr, "smmu-bench: --vcpu kvm runs the sim backend, "
				"closed loop, one vSMMU per VM, without "
				"--connect, --flood, --plot, --fault-drop\n");
		return 2;
	}
	_Static_assert(M_COUNT + 1 == sizeof(k.modes), "kvm modes: + vcmdq");
	memcpy(k.modes, o->modes, M_COUNT * sizeof(*o->modes));
	/* vcmdq by default (its guest sends batches with commands a VCMDQ
	 * rejects to the trapped SMMU CMDQ); not with MSIPOLL, which a VCMDQ
	 * does not do. */
	k.modes[M_COUNT] = o->vcmdq == 1 || (o->vcmdq < 0 && !o->kvm_msi);
	k.sim.wait = o->wait;
	if (o->idle_ms) {
		/* One guest beside --vms idle queues, mode vcmdq only; the
		 * harness ends the guest (kvm-idle.c), not a batch count. */
		if (w->kind != WL_STRICT) {
			fprintf(stderr, "smmu-bench: --vcpu kvm --idle runs "
					"strict-unmap\n");
			return 2;
		}
		k.idle_ms = o->idle_ms;
		k.idle_active = o->syncs; /* -k K: the active phase's batches */
		k.idle_queues = o->vms;
		k.vms = k.vcpus = 1;
		k.syncs = UINT64_C(1) << 40;
		memset(k.modes, 0, sizeof(k.modes));
		k.modes[M_COUNT] = true;
	}
	return kvmb_run(&k, w);
}

/* Say on stderr that writing @what failed with @r (if it did). */
static bool write_failed(int r, const char *what)
{
	if (!r)
		return false;
	fprintf(stderr, "smmu-bench: %s: %s\n", what, strerror(-r));
	return true;
}

/* Every selected mode in turn, then the table, JSON and plots. Return:
 * the exit status, 1 if a mode failed, found stale entries, or an output
 * could not be written. */
static int run_modes(struct opts *o, const struct wl *w)
{
	struct result res[M_COUNT];
	char what[4200];
	bool fail = false;

	if (!sb_wall_fair(o))
		o->sleep_over_ns = sleep_overshoot_ns();
	memset(res, 0, sizeof(res));
	for (int m = 0; m < M_COUNT; m++) {
		if (!o->modes[m])
			continue;
		if (run_mode(o, w, (enum mode)m, &res[m]))
			fail = true;
		if (res[m].c.stale || res[m].c.errors)
			fail = true;
	}
	sb_print_table(o, w, res);
	if (o->json && write_failed(sb_write_json(o->json, o, w, res), o->json))
		fail = true;
	if (o->plot) {
		snprintf(what, sizeof(what), "plots in %s", o->plot);
		if (write_failed(sb_write_plots(o->plot, o, w, res), what))
			fail = true;
	}
	return fail ? 1 : 0;
}

/* The checks that need the workload, then --idle, --vcpu kvm or the
 * modes. Return: the exit status. */
static int run_checked(struct opts *o, struct wl *w)
{
	if (o->devices && wl_set_devices(w, o->devices)) {
		fprintf(stderr, "smmu-bench: --devices: a trace attaches the "
				"devices it names\n");
		return 2;
	}
	if (o->nvs > MAX_IDLE_RINGS) {
		fprintf(stderr, "smmu-bench: at most %u rings\n",
			MAX_IDLE_RINGS);
		return 2;
	}
	if (o->idle_ms && !o->kvm)
		return sb_run_idle(o, w) ? 1 : 0;
	/* --vcpu kvm --idle: --vms counts idle queues (run_kvm()). */
	if (o->nall > MAX_VMS && !o->idle_ms) {
		fprintf(stderr,
			"smmu-bench: at most %u vSMMUs (VMs x --vsmmus-per-vm "
			"+ --flood; %u with --idle)\n",
			MAX_VMS, MAX_IDLE_RINGS);
		return 2;
	}
	if (o->connect && !o->wait_set) {
		/* smmu-offloadd runs the sim with its documented defaults,
		 * which spin: the local baselines must match. */
		o->wait = IOFD_SIM_WAIT_SPIN;
	}
	if (o->vcpus > wl_max_streams(w)) {
		fprintf(stderr, "smmu-bench: at most %u vCPUs per VM with %s\n",
			wl_max_streams(w), w->name);
		return 2;
	}
	/*
	 * Sleeps in the sim (BLOCK) and in the service end at the simulated
	 * completion, not 50 us later: every thread created from here on
	 * inherits a 1 ns timer slack.
	 */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	if (o->kvm)
		return run_kvm(o, w);
	return run_modes(o, w);
}

int main(int argc, char **argv)
{
	char errbuf[512];
	struct opts o;
	struct wl w;
	int r;

	if (sb_parse_opts(argc, argv, &o)) {
		sb_usage(stderr);
		return 2;
	}
	r = wl_init(&w, o.workload, o.trace_batches, errbuf, sizeof(errbuf));
	if (r) {
		fprintf(stderr, "smmu-bench: %s\n", errbuf);
		return 2;
	}
	r = run_checked(&o, &w);
	wl_free(&w);
	return r;
}
