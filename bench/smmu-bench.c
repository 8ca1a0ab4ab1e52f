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
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <smmu-offload/client.h>
#include <smmu-offload/ring-prod.h>

#include "core/hist.h"
#include "bench/kvm/kvm-bench.h"
#include "bench/workload.h"
#include "config.h"
#include "core/core.h"
#include "iommufd/sim.h"

enum mode { M_QEMU, M_QEMU_BATCHED, M_OFFLOAD, M_COUNT };
static const char *const mode_names[M_COUNT] = { "qemu", "qemu-batched",
						 "offload" };

#define MAX_VMS 256
#define MAX_IDLE_RINGS 1024
#define STUCK_NS (UINT64_C(10) * 1000000000u)

/* Command-line options; read-only once the runs start. */
struct opts {
	const char *workload;
	bool modes[M_COUNT];
	const char *backend;
	unsigned int vms, vcpus, hsmmus, threads;
	unsigned int vsmmus; /* per VM */
	unsigned int devices; /* per vSMMU; 0 = the workload's own */
	unsigned int nvs; /* vms * vsmmus: the vSMMUs (struct vm) */
	unsigned int flood; /* --flood: flooding VMs (one vSMMU each) */
	unsigned int nall; /* nvs + flood: flooders are vms[nvs ..] */
	double rate; /* open loop: SYNC groups per second per VM; 0 = closed */
	bool poisson; /* open loop: exponential gaps, else fixed */
	double duration;
	uint64_t syncs; /* per vCPU; 0 = run for duration */
	uint64_t seed;
	bool verify, quiet;
	enum iofd_sim_wait wait;
	bool wait_set;
	uint64_t sleep_over_ns; /* sim block: a sleep's overshoot here */
	struct iofd_sim_config sim;
	enum core_issue_mode issue;
	unsigned int poll_us, max_inflight;
	uint64_t rate_cmds; /* offload: per-vSMMU limit, commands/s; 0 = off */
	enum core_loop_kind loop;
	unsigned int ring_log2;
	uint64_t trace_batches;
	uint64_t fault_drop; /* test hook: drop every Nth forwarded command */
	const char *connect; /* offload through smmu-offloadd at this socket */
	unsigned int idle_ms; /* --idle: measure idle rings instead */
	const char *json, *plot;
	bool kvm, kvm_msi, kvm_pin; /* --vcpu kvm|kvm-msipoll, --kvm-pin:
				     * bench/kvm/kvm-bench.h */
	int vcmdq; /* -m vcmdq (--vcpu kvm only): 1 asked, 0 not, -1
		    * default (-m not given) */
};

/* Per producer thread; merged by the main thread after the join. */
struct counters {
	struct core_hist lat; /* publish -> SYNC seen complete, ns */
	uint64_t cmds, fwd, syncs, batches, waited;
	uint64_t handler_ns; /* vCPU held by the VMM's trap handler */
	uint64_t blocked_ns; /* PROD write -> guest may pass its CMD_SYNC */
	uint64_t wait_ns; /* publish -> last SYNC seen complete */
	uint64_t cpu_ns; /* the thread's own CPU time */
	uint64_t checked, stale, errors;
	uint64_t dropped; /* --fault-drop */
	uint64_t scheduled; /* open loop: batches started on a schedule */
	uint64_t lag_ns; /* open loop: start - scheduled time, summed */
	uint64_t fwd_seen; /* for --fault-drop */
};

/*
 * --fault-drop: a deliberately broken VMM that loses every Nth forwarded
 * command after the oracle was filled for it, so that a test can prove
 * the oracle check catches a missing invalidation.
 */
static bool fault_drop(const struct opts *o, struct counters *c)
{
	if (!o->fault_drop || ++c->fwd_seen % o->fault_drop)
		return false;
	c->dropped++;
	return true;
}

/*
 * One simulated vCPU: a closed loop of batches, or with --rate an open
 * loop: batch i is due at t_sched, whether or not batch i - 1 completed,
 * and its latency counts from t_sched, so queueing behind a slow SYNC is
 * measured instead of hidden (coordinated omission). Owned by its thread.
 */
struct slot {
	struct wl_stream ws;
	struct wl_batch b;
	bool have_batch, busy;
	uint32_t idx; /* ring index of the batch's last CMD_SYNC */
	uint64_t t_pub; /* latency start: publish, or open loop t_lat0 */
	uint64_t waited;
	uint64_t t_sched; /* open loop: when the next batch is due */
	uint64_t t_lat0; /* open loop: when the pushed batch was due */
	uint64_t arng; /* open loop: arrival process state */
	uint64_t t_prod; /* offload: first push attempt of the pending batch
			  * (the guest's PROD write); 0 = none */
};

/* One vSMMU of a VM (the VM itself unless --vsmmus-per-vm): its vIOMMU,
 * and in offload mode its ring. */
struct vm {
	struct iofd_viommu *vi;
	pthread_mutex_t lock; /* qemu modes: the VMM's vSMMU CMDQ lock */
	uint32_t vsmmu, ring_id;
	int memfd, db, cq;
	struct ring_prod p;
	bool ring_ok;
	struct slot *slot;
	uint32_t nosync_pending; /* offload: batches without a SYNC pushed
				  * since the last publish */
};

struct run;

/* A producer thread. */
struct worker {
	struct run *run;
	pthread_t th;
	unsigned int id; /* qemu: vCPU index vm * vcpus + slot; offload: 0.. */
	struct counters c;
	uint64_t progress; /* waited batches, atomic (relaxed) for stderr */
	char err[256];
};

struct run {
	const struct opts *o;
	const struct wl *w;
	enum mode mode;
	struct vm *vms;
	struct worker *wk;
	unsigned int nwk;
	struct worker *fl; /* --flood: one per flooding VM */
	unsigned int stop; /* atomic */
	pthread_mutex_t gate_lock;
	pthread_cond_t gate;
	int go; /* under gate_lock: enum gate_go */
	unsigned int flood_ready; /* under gate_lock: flooders that published */
};

enum gate_go { GO_ABORT = -1, GO_CLOSED, GO_FLOOD, GO_ALL };

/*
 * Producer threads start together, when the main thread says so: the
 * flooders at GO_FLOOD, the measured threads (@level GO_ALL) after them.
 */
static bool run_gate(struct run *run, int level)
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
static void flood_published(struct run *run)
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

/* What a mode measured. */
struct result {
	bool ran;
	int err;
	char errmsg[256];
	char layout[200];
	unsigned int threads;
	double wall_s;
	struct counters c;
	struct iofd_counters be; /* summed over the host SMMUs */
	uint64_t caller_charged_ns; /* summed over the vIOMMUs */
	bool has_svc, verified;
	uint64_t svc_cpu_ns, svc_ioctls, svc_sleeps;
	const char *loop;
	char loop_buf[16];
	uint64_t proc_cpu_ns;
	long nvcsw, nivcsw;
	uint64_t flood_cmds, flood_syncs; /* --flood: never in c */
	enum mode mode;
	uint32_t hsmmu_mask; /* host SMMUs that carried measured traffic */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool stopping(struct run *run)
{
	return __atomic_load_n(&run->stop, __ATOMIC_ACQUIRE);
}

static bool slot_finished(const struct run *run, const struct slot *s)
{
	return run->o->syncs && s->waited >= run->o->syncs;
}

/* What one struct vm is: a VM, or one of a VM's vSMMUs. */
static const char *unit_name(const struct opts *o)
{
	return o->vsmmus > 1 ? "vSMMU" : "VM";
}

static bool verify_on(const struct opts *o)
{
	return o->verify && !strcmp(o->backend, "sim");
}

/* The oracle lives in the sim: in the daemon's process with --connect. */
static bool verifying(const struct run *run)
{
	return verify_on(run->o) &&
	       !(run->mode == M_OFFLOAD && run->o->connect);
}

/* Account a batch the guest wrote (both paths). */
static void count_batch(struct counters *c, const struct wl_batch *b,
			uint64_t handler_ns)
{
	c->batches++;
	c->cmds += b->n;
	c->fwd += b->nfwd;
	c->syncs += b->n - b->nfwd;
	c->handler_ns += handler_ns;
}

/* The guest saw its CMD_SYNC complete @lat ns after publishing it. */
static void count_sync(struct worker *wk, struct slot *s, struct vm *vm,
		       uint64_t lat)
{
	struct counters *c = &wk->c;
	unsigned int checked = 0;

	core_hist_add(&c->lat, lat);
	c->wait_ns += lat;
	c->waited++;
	s->waited++;
	__atomic_fetch_add(&wk->progress, 1, __ATOMIC_RELAXED);
	if (verifying(wk->run)) {
		c->stale += wl_check(&s->ws, vm->vi, &checked);
		c->checked += checked;
	}
}

/* ---- open loop --------------------------------------------------------- */

static double slot_rate(const struct opts *o)
{
	return o->rate / (double)(o->vsmmus * o->vcpus);
}

/* The gap to a slot's next arrival: fixed, or exponential (Poisson). */
static uint64_t arrival_gap(const struct opts *o, struct slot *s)
{
	double mean = 1e9 / slot_rate(o);
	double u;

	if (!o->poisson)
		return (uint64_t)mean;
	/* splitmix64 -> uniform (0, 1] */
	s->arng += UINT64_C(0x9e3779b97f4a7c15);
	u = (double)((wl_mix64(s->arng) >> 11) + 1) * 0x1p-53;
	return (uint64_t)(-log(u) * mean);
}

/* The first arrival: a random phase, so that slots do not march in step. */
static void slot_schedule(const struct opts *o, struct slot *s, uint64_t seed,
			  uint64_t t0)
{
	s->arng = seed * UINT64_C(0xd1342543de82ef95) + 1;
	if (o->poisson) {
		s->t_sched = t0 + arrival_gap(o, s);
	} else {
		s->arng += UINT64_C(0x9e3779b97f4a7c15);
		s->t_sched = t0 + wl_mix64(s->arng) %
					  ((uint64_t)(1e9 / slot_rate(o)) + 1);
	}
}

/* A batch starts: take its due time, schedule the next one. */
static void slot_start(const struct opts *o, struct counters *c, struct slot *s,
		       uint64_t now)
{
	s->t_lat0 = s->t_sched;
	c->scheduled++;
	c->lag_ns += now > s->t_sched ? now - s->t_sched : 0;
	s->t_sched += arrival_gap(o, s);
}

/* Sleep until @t, at most 100 ms (the caller re-checks stop). */
static void sleep_until(uint64_t t)
{
	uint64_t now = now_ns();
	struct timespec ts;

	if (t <= now)
		return;
	if (t - now > 100000000u)
		t = now + 100000000u;
	ts.tv_sec = (time_t)(t / 1000000000u);
	ts.tv_nsec = (long)(t % 1000000000u);
	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

/* ---- qemu and qemu-batched: the vCPU thread issues the ioctls ---------- */

/*
 * The forwardable commands of @b into @fwd (SYNCs left out), cut into
 * ioctls at every guest CMD_SYNC that separates two ordering classes
 * (enum cmdq_order_class): a correct batching VMM must keep that SYNC a
 * host sync, exactly as the service does. Chunk k is fwd[chunk[k] ..
 * chunk[k + 1]). Return: the number of chunks.
 */
static uint32_t batch_chunks(const struct opts *o, struct counters *c,
			     const struct wl_batch *b, struct cmdq_cmd *fwd,
			     uint32_t *ret_nf, uint32_t *chunk)
{
	unsigned int pending = 0, before = 0; /* classes in the chunk; of
						* those before its last SYNC */
	uint32_t nf = 0, n = 0;

	chunk[0] = 0;
	for (uint32_t i = 0; i < b->n; i++) {
		unsigned int cls;

		if (cmdq_classify(&b->cmd[i]) == CMDQ_CLASS_SYNC) {
			before = pending;
			continue;
		}
		if (fault_drop(o, c))
			continue;
		cls = cmdq_order_class(&b->cmd[i]);
		if (before & ~cls) {
			chunk[++n] = nf;
			pending = before = 0;
		}
		pending |= cls;
		fwd[nf++] = b->cmd[i];
	}
	if (nf)
		chunk[++n] = nf;
	*ret_nf = nf;
	return n;
}

static void *qemu_main(void *arg)
{
	struct worker *wk = arg;
	struct run *run = wk->run;
	struct vm *vm = &run->vms[wk->id / run->o->vcpus];
	struct slot *s = &vm->slot[wk->id % run->o->vcpus];
	struct cmdq_cmd fwd[WL_MAX_BATCH];
	uint32_t chunk[WL_MAX_BATCH + 1];
	uint64_t cpu0;

	if (!run_gate(run, GO_ALL))
		return NULL;
	cpu0 = thread_cpu_ns();
	if (run->o->rate)
		slot_schedule(run->o, s, run->o->seed ^ wk->id, now_ns());
	while (!stopping(run) && !slot_finished(run, s)) {
		uint32_t nf = 0, nchunk, done = 0;
		uint64_t t0, t1, lat0;
		int rc = 0;

		if (run->o->rate) {
			t0 = now_ns();
			if (t0 < s->t_sched) {
				sleep_until(s->t_sched);
				continue; /* re-check stop */
			}
			slot_start(run->o, &wk->c, s, t0);
		}
		wl_next(&s->ws, &s->b);
		if (verifying(run) && wl_fill(&s->ws, vm->vi, &s->b)) {
			snprintf(wk->err, sizeof(wk->err),
				 "oracle fill failed");
			wk->c.errors++;
			break;
		}
		nchunk = batch_chunks(run->o, &wk->c, &s->b, fwd, &nf, chunk);
		/* The trapped PROD write: QEMU holds the vSMMU's queue lock
		 * while it walks the commands. */
		t0 = now_ns();
		pthread_mutex_lock(&vm->lock);
		if (run->mode == M_QEMU) {
			for (uint32_t i = 0; i < nf && !rc; i++)
				rc = iofd_invalidate(vm->vi, &fwd[i], 1, &done);
		} else {
			for (uint32_t k = 0; k < nchunk && !rc; k++)
				rc = iofd_invalidate(vm->vi, &fwd[chunk[k]],
						     chunk[k + 1] - chunk[k],
						     &done);
		}
		pthread_mutex_unlock(&vm->lock);
		t1 = now_ns();
		if (rc) {
			snprintf(wk->err, sizeof(wk->err),
				 "iofd_invalidate: %s (done %u)", strerror(-rc),
				 done);
			wk->c.errors++;
			break;
		}
		count_batch(&wk->c, &s->b, t1 - t0);
		/* The SYNC completed inside the trap: the guest was blocked
		 * exactly as long as its vCPU thread was held. */
		wk->c.blocked_ns += t1 - t0;
		lat0 = run->o->rate ? s->t_lat0 : t0;
		if (s->b.last_sync >= 0)
			count_sync(wk, s, vm, t1 - lat0);
	}
	wk->c.cpu_ns = thread_cpu_ns() - cpu0;
	return NULL;
}

/* ---- offload: producers push into rings, the service issues ------------ */

/* Push @s's next batch (kept across -EAGAIN). Return: 0, 1 = ring full,
 * or -errno. */
static int offload_push(struct worker *wk, struct vm *vm, struct slot *s)
{
	struct smmu_ring_entry e[WL_MAX_BATCH];
	uint32_t first = 0, n = 0, last = 0;
	uint64_t t0, t1;
	int rc;

	if (!s->have_batch) {
		if (wk->run->o->rate)
			slot_start(wk->run->o, &wk->c, s, now_ns());
		wl_next(&s->ws, &s->b);
		if (verifying(wk->run) && wl_fill(&s->ws, vm->vi, &s->b))
			return -ENOMEM;
		s->have_batch = true;
	}
	t0 = now_ns();
	/* The guest's PROD write began at the first attempt: a full ring
	 * keeps it blocked until a retry succeeds. */
	if (!s->t_prod)
		s->t_prod = t0;
	for (uint32_t i = 0; i < s->b.n; i++) {
		if (cmdq_classify(&s->b.cmd[i]) != CMDQ_CLASS_SYNC &&
		    fault_drop(wk->run->o, &wk->c))
			continue;
		if ((int)i == s->b.last_sync)
			last = n;
		cmdq_cmd_to_le(&s->b.cmd[i], &e[n++]);
	}
	rc = ring_prod_push(&vm->p, e, n, &first);
	if (rc == -EAGAIN)
		return 1;
	if (rc)
		return rc;
	s->have_batch = false;
	t1 = now_ns();
	count_batch(&wk->c, &s->b, t1 - t0);
	if (s->b.last_sync >= 0) {
		/* Blocked until the SYNC is seen complete: count_sync(). */
		s->busy = true;
		s->idx = first + last;
	} else {
		/* No SYNC: the guest goes on once its PROD write returns:
		 * the push now, the publish in offload_trap(). */
		wk->c.blocked_ns += t1 - s->t_prod;
		s->t_prod = 0;
		vm->nosync_pending++;
	}
	return 0;
}

static void offload_fail(struct worker *wk, struct vm *vm, const char *what,
			 int rc)
{
	uint32_t err = 0, where = 0;

	if (!ring_prod_halt_info(&vm->p, &err, &where))
		snprintf(wk->err, sizeof(wk->err),
			 "%s: ring %u halted, err %#x at %u", what, vm->ring_id,
			 err, where);
	else
		snprintf(wk->err, sizeof(wk->err),
			 "%s: %s (ring %u: prod %u cons %u svc_flags %#x "
			 "prod_flags %#x)",
			 what, strerror(rc < 0 ? -rc : rc), vm->ring_id,
			 __atomic_load_n(&vm->p.hdr->prod, __ATOMIC_RELAXED),
			 __atomic_load_n(&vm->p.hdr->cons, __ATOMIC_RELAXED),
			 __atomic_load_n(&vm->p.hdr->svc_flags,
					 __ATOMIC_RELAXED),
			 __atomic_load_n(&vm->p.hdr->prod_flags,
					 __ATOMIC_RELAXED));
	wk->c.errors++;
}

/*
 * The trap handlers of @vm's idle vCPUs: push each one's next batch, then
 * one publish (the guests' PROD write). A batch without a SYNC does not
 * block its vCPU: it goes on with the next one. Open loop: *@next_due is
 * lowered to the earliest arrival not due yet. Return: 0, or -errno with
 * wk->err set.
 */
static int offload_trap(struct worker *wk, struct vm *vm, bool stop,
			uint64_t now, uint64_t *next_due)
{
	struct run *run = wk->run;
	const struct opts *o = run->o;
	bool pushed = false;
	uint64_t t0, t1;
	int rc;

	for (unsigned int k = 0; k < o->vcpus && !stop; k++) {
		struct slot *s = &vm->slot[k];

		while (!s->busy && !slot_finished(run, s)) {
			if (o->rate && !s->have_batch && s->t_sched > now) {
				if (s->t_sched < *next_due)
					*next_due = s->t_sched;
				break;
			}
			rc = offload_push(wk, vm, s);
			if (rc < 0) {
				offload_fail(wk, vm, "push", rc);
				return rc;
			}
			if (rc)
				break;
			pushed = true;
		}
	}
	if (!pushed)
		return 0;
	t0 = now_ns();
	rc = ring_prod_publish(&vm->p);
	t1 = now_ns();
	if (rc) {
		offload_fail(wk, vm, "publish", rc);
		return rc;
	}
	wk->c.handler_ns += t1 - t0;
	/* Every batch without a SYNC waited for this publish; those with
	 * one count it in their PROD write -> SYNC complete span. */
	wk->c.blocked_ns += (t1 - t0) * vm->nosync_pending;
	vm->nosync_pending = 0;
	for (unsigned int k = 0; k < o->vcpus; k++)
		if (vm->slot[k].busy && !vm->slot[k].t_pub)
			vm->slot[k].t_pub = o->rate ? vm->slot[k].t_lat0 : t0;
	return 0;
}

/* The guests' side of a SYNC in flight. */
struct offload_poll {
	bool progress, any_busy;
	struct slot *oldest; /* the oldest SYNC still in flight */
	struct vm *oldest_vm;
};

/* The guests polling for their CMD_SYNCs: count the completed ones. */
static void offload_collect(struct worker *wk, struct offload_poll *p)
{
	struct run *run = wk->run;
	const struct opts *o = run->o;

	memset(p, 0, sizeof(*p));
	for (unsigned int v = wk->id; v < o->nvs; v += run->nwk) {
		struct vm *vm = &run->vms[v];

		for (unsigned int k = 0; k < o->vcpus; k++) {
			struct slot *s = &vm->slot[k];
			uint64_t t;

			if (!s->busy)
				continue;
			if (ring_prod_done_upto(&vm->p, s->idx)) {
				t = now_ns();
				count_sync(wk, s, vm, t - s->t_pub);
				wk->c.blocked_ns += t - s->t_prod;
				s->busy = false;
				s->t_pub = s->t_prod = 0;
				p->progress = true;
				continue;
			}
			p->any_busy = true;
			if (!p->oldest || s->t_pub < p->oldest->t_pub) {
				p->oldest = s;
				p->oldest_vm = vm;
			}
		}
	}
}

/* --syncs: has every vCPU of this producer finished? */
static bool offload_all_finished(struct worker *wk)
{
	struct run *run = wk->run;
	const struct opts *o = run->o;

	for (unsigned int v = wk->id; v < o->nvs; v += run->nwk)
		for (unsigned int k = 0; k < o->vcpus; k++)
			if (!slot_finished(run, &run->vms[v].slot[k]))
				return false;
	return true;
}

static void *offload_main(void *arg)
{
	struct worker *wk = arg;
	struct run *run = wk->run;
	const struct opts *o = run->o;
	uint64_t cpu0, last_progress;
	unsigned int idle = 0;

	if (!run_gate(run, GO_ALL))
		return NULL;
	cpu0 = thread_cpu_ns();
	last_progress = now_ns();
	if (o->rate)
		for (unsigned int v = wk->id; v < o->nvs; v += run->nwk)
			for (unsigned int k = 0; k < o->vcpus; k++)
				slot_schedule(
					o, &run->vms[v].slot[k],
					o->seed ^ ((uint64_t)v * o->vcpus + k),
					last_progress);
	for (;;) {
		bool stop = stopping(run);
		uint64_t now = now_ns(), next_due = UINT64_MAX;
		struct offload_poll p;
		int rc;

		for (unsigned int v = wk->id; v < o->nvs; v += run->nwk)
			if (offload_trap(wk, &run->vms[v], stop, now,
					 &next_due))
				goto out;
		offload_collect(wk, &p);
		if (p.progress) {
			idle = 0;
			last_progress = now_ns();
			continue;
		}
		if (!p.any_busy) {
			/* Stopped, or every vCPU finished its --syncs. */
			if (stop || (o->syncs && offload_all_finished(wk)))
				break;
			/* Open loop: nothing in flight until the next
			 * arrival; else the rings are full. */
			if (o->rate && next_due != UINT64_MAX)
				sleep_until(next_due);
			else
				sched_yield();
			continue;
		}
		if (now_ns() - last_progress > STUCK_NS) {
			offload_fail(wk, p.oldest_vm, "no completion for 10 s",
				     ETIMEDOUT);
			goto out;
		}
		/* Spin a little (completions come within microseconds under
		 * load), then sleep on the oldest SYNC's completion eventfd. */
		if (++idle < 64 ||
		    (o->rate && next_due < now_ns() + 1500000u)) {
			sched_yield();
			continue;
		}
		idle = 0;
		rc = ring_prod_wait(&p.oldest_vm->p, p.oldest->idx, 0, 1);
		if (rc && rc != -ETIMEDOUT) {
			offload_fail(wk, p.oldest_vm, "wait", rc);
			goto out;
		}
	}
out:
	wk->c.cpu_ns = thread_cpu_ns() - cpu0;
	return NULL;
}

/* ---- noisy neighbour (--flood) ----------------------------------------- */

#define FLOOD_BATCH 32 /* TLBI_NH_ASIDs per PROD write / ioctl */
#define FLOOD_SYNC_EVERY 8 /* batches between the flooder's SYNCs */

/*
 * A flooding VM's commands: distinct ASIDs, so that coalescing cannot fold
 * a batch into one command. The ASIDs are the flooder's own (its own
 * VMID), nothing in the oracle is filled for them.
 */
static void flood_cmds(struct cmdq_cmd *c, uint64_t round)
{
	for (unsigned int i = 0; i < FLOOD_BATCH; i++)
		c[i] = cmdq_build_tlbi_nh_asid(
			(uint16_t)(1 + (round * FLOOD_BATCH + i) % 4096), 0);
}

static void *flood_main(void *arg)
{
	struct worker *wk = arg;
	struct run *run = wk->run;
	struct vm *vm = &run->vms[wk->id];
	struct cmdq_cmd c[FLOOD_BATCH + 1];
	struct smmu_ring_entry e[FLOOD_BATCH + 1];
	uint64_t cpu0, round = 0;
	uint32_t first, done = 0;
	int rc = 0;

	if (!run_gate(run, GO_FLOOD))
		return NULL;
	cpu0 = thread_cpu_ns();
	while (!stopping(run)) {
		bool sync = round % FLOOD_SYNC_EVERY == FLOOD_SYNC_EVERY - 1;
		uint32_t n = FLOOD_BATCH;

		flood_cmds(c, round);
		if (run->mode == M_OFFLOAD) {
			if (sync)
				c[n++] = cmdq_build_sync(0, 3, 0xf, 0, 0);
			for (uint32_t i = 0; i < n; i++)
				cmdq_cmd_to_le(&c[i], &e[i]);
			rc = ring_prod_push(&vm->p, e, n, &first);
			if (rc == -EAGAIN) {
				/* Ring full: keep it full, never wait. */
				sched_yield();
				continue;
			}
			if (!rc)
				rc = ring_prod_publish(&vm->p);
			if (rc) {
				offload_fail(wk, vm, "flood", rc);
				break;
			}
		} else if (run->mode == M_QEMU) {
			for (uint32_t i = 0; i < n && !rc; i++)
				rc = iofd_invalidate(vm->vi, &c[i], 1, &done);
		} else {
			rc = iofd_invalidate(vm->vi, c, n, &done);
		}
		if (rc) {
			snprintf(wk->err, sizeof(wk->err),
				 "flood: iofd_invalidate: %s", strerror(-rc));
			wk->c.errors++;
			break;
		}
		wk->c.cmds += n;
		wk->c.syncs += n - FLOOD_BATCH;
		if (!round++)
			flood_published(run);
	}
	if (!round)
		flood_published(run); /* failed: the error ends the run */
	wk->c.cpu_ns = thread_cpu_ns() - cpu0;
	return NULL;
}

/* ---- setup and teardown of one mode ------------------------------------ */

static const char *const hsmmu_names[] = {
	"smmu0",  "smmu1",  "smmu2",  "smmu3",	"smmu4",  "smmu5",
	"smmu6",  "smmu7",  "smmu8",  "smmu9",	"smmu10", "smmu11",
	"smmu12", "smmu13", "smmu14", "smmu15",
};
#define MAX_HSMMU (sizeof(hsmmu_names) / sizeof(hsmmu_names[0]))

static uint32_t vm_dev_id(unsigned int vm, unsigned int k)
{
	/* A sim device id is its pSID: unique over all VMs. */
	return 0x10000u + vm * WL_MAX_SIDS + k;
}

static void sim_config(const struct opts *o, struct iofd_sim_config *sim)
{
	*sim = o->sim;
	sim->wait = o->wait;
}

/* vSMMU @v's host SMMU carried measured traffic (flooders do not count). */
static void hsmmu_mark(const struct opts *o, struct result *res, unsigned int v,
		       const struct iofd_counters *vc)
{
	if (v < o->nvs && vc->ioctls)
		res->hsmmu_mask |= 1u << (v % o->hsmmus);
}

struct qemu_env {
	struct iofd_backend *b;
	struct iofd_hsmmu *h[MAX_HSMMU];
	uint32_t vdev[MAX_IDLE_RINGS][WL_MAX_SIDS];
};

static int qemu_setup(struct run *run, struct qemu_env *env, char *err,
		      size_t errlen)
{
	const struct opts *o = run->o;
	struct iofd_sim_config sim;
	struct iofd_config cfg = { .kind = o->backend, .sim = &sim };
	struct iofd_viommu_spec spec = { .iommufd = -1 };
	int r;

	sim_config(o, &sim);
	r = iofd_backend_new(&cfg, &env->b);
	if (r) {
		snprintf(err, errlen, "iofd_backend_new: %s", strerror(-r));
		return r;
	}
	for (unsigned int i = 0; i < o->hsmmus; i++) {
		r = iofd_hsmmu_open(env->b, hsmmu_names[i], &env->h[i]);
		if (r) {
			snprintf(err, errlen, "iofd_hsmmu_open: %s",
				 strerror(-r));
			return r;
		}
	}
	for (unsigned int v = 0; v < o->nall; v++) {
		struct vm *vm = &run->vms[v];

		r = iofd_viommu_bind(env->h[v % o->hsmmus], &spec, &vm->vi);
		for (unsigned int k = 0; !r && k < run->w->nsids; k++)
			r = iofd_vdev_alloc(vm->vi, vm_dev_id(v, k),
					    run->w->sids[k], &env->vdev[v][k]);
		if (r) {
			snprintf(err, errlen, "vm %u: bind/vdev: %s", v,
				 strerror(-r));
			return r;
		}
	}
	return 0;
}

static void qemu_teardown(struct run *run, struct qemu_env *env,
			  struct result *res)
{
	const struct opts *o = run->o;

	for (unsigned int v = 0; v < o->nall; v++) {
		struct vm *vm = &run->vms[v];
		struct iofd_counters vc;

		if (!vm->vi)
			continue;
		iofd_viommu_counters(vm->vi, &vc);
		res->caller_charged_ns += vc.charged_ns;
		hsmmu_mark(o, res, v, &vc);
		for (unsigned int k = 0; k < run->w->nsids; k++)
			if (env->vdev[v][k])
				iofd_vdev_destroy(vm->vi, env->vdev[v][k]);
		iofd_viommu_unbind(vm->vi);
		vm->vi = NULL;
	}
	for (unsigned int i = 0; i < o->hsmmus; i++) {
		struct iofd_counters hc;

		if (!env->h[i])
			continue;
		iofd_hsmmu_counters(env->h[i], &hc);
		res->be.ioctls += hc.ioctls;
		res->be.cmds += hc.cmds;
		res->be.host_syncs += hc.host_syncs;
		res->be.errors += hc.errors;
		res->be.charged_ns += hc.charged_ns;
		iofd_hsmmu_close(env->h[i]);
	}
	iofd_backend_free(env->b);
}

/* The VMM side of a VM's ring: memfd, doorbell, completion eventfd. */
static int vm_ring_new(struct vm *vm, unsigned int log2)
{
	int r = ring_memfd_create(log2, &vm->memfd);

	if (r)
		return r;
	vm->db = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vm->cq = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->db < 0 || vm->cq < 0)
		return -errno;
	r = ring_prod_init(&vm->p, vm->memfd, vm->db, vm->cq);
	if (!r)
		vm->ring_ok = true;
	return r;
}

static void vm_ring_free(struct vm *vm)
{
	if (vm->ring_ok)
		ring_prod_done(&vm->p);
	if (vm->memfd >= 0)
		close(vm->memfd);
	if (vm->db >= 0)
		close(vm->db);
	if (vm->cq >= 0)
		close(vm->cq);
	vm->ring_ok = false;
	vm->memfd = vm->db = vm->cq = -1;
	vm->vi = NULL;
}

static int offload_setup(struct run *run, struct core_service **ret_svc,
			 char *err, size_t errlen)
{
	const struct opts *o = run->o;
	struct iofd_sim_config sim;
	struct core_config cfg = {
		.backend = { .kind = o->backend, .sim = &sim },
		.hsmmu_names = hsmmu_names,
		.n_hsmmu = o->hsmmus,
		.issue_mode = o->issue,
		.poll_us = o->poll_us,
		.max_inflight = o->max_inflight,
		.rate_cmds = o->rate_cmds,
		.loop = o->loop,
	};
	struct iofd_viommu_spec spec = { .iommufd = -1 };
	struct core_service *svc = NULL;
	int r;

	sim_config(o, &sim);
	r = core_service_new(&cfg, &svc);
	if (r) {
		snprintf(err, errlen, "core_service_new: %s", strerror(-r));
		return r;
	}
	*ret_svc = svc;
	for (unsigned int v = 0; v < o->nall; v++) {
		struct vm *vm = &run->vms[v];
		uint32_t vdev;

		r = core_vsmmu_create(svc, hsmmu_names[v % o->hsmmus], &spec,
				      &vm->vsmmu);
		for (unsigned int k = 0; !r && k < run->w->nsids; k++)
			r = core_device_attach(svc, vm->vsmmu, vm_dev_id(v, k),
					       run->w->sids[k], &vdev);
		if (r) {
			snprintf(err, errlen, "vm %u: vsmmu/device: %s", v,
				 strerror(-r));
			return r;
		}
		vm->vi = core_vsmmu_viommu(svc, vm->vsmmu);
		r = vm_ring_new(vm, o->ring_log2);
		if (!r)
			r = core_ring_attach(svc, vm->vsmmu, vm->memfd, vm->db,
					     vm->cq, &vm->ring_id);
		if (r) {
			snprintf(err, errlen, "vm %u: ring: %s", v,
				 strerror(-r));
			return r;
		}
	}
	return 0;
}

static void offload_teardown(struct run *run, struct core_service *svc,
			     struct result *res)
{
	const struct opts *o = run->o;

	if (svc) {
		struct core_service_stats ss;

		if (!core_service_stats(svc, &ss))
			res->loop = ss.loop;
		for (unsigned int i = 0; i < o->hsmmus; i++) {
			struct core_hsmmu_stats hs;

			if (core_hsmmu_stats(svc, i, &hs))
				continue;
			res->has_svc = true;
			res->svc_cpu_ns += hs.worker_cpu_ns + hs.issuer_cpu_ns;
			res->svc_ioctls += hs.ioctls;
			res->svc_sleeps += hs.sleeps;
			res->be.ioctls += hs.backend.ioctls;
			res->be.cmds += hs.backend.cmds;
			res->be.host_syncs += hs.backend.host_syncs;
			res->be.errors += hs.backend.errors;
			res->be.charged_ns += hs.backend.charged_ns;
		}
		for (unsigned int v = 0; v < o->nall; v++) {
			struct iofd_counters vc;

			if (!run->vms[v].vi)
				continue;
			iofd_viommu_counters(run->vms[v].vi, &vc);
			res->caller_charged_ns += vc.charged_ns;
			hsmmu_mark(o, res, v, &vc);
		}
		/* Drains the rings: nothing is left in flight. */
		core_service_free(svc);
	}
	for (unsigned int v = 0; v < o->nall; v++)
		vm_ring_free(&run->vms[v]);
}

/* ---- offload through smmu-offloadd (--connect) --------------------------- */

/* Host SMMU counters of the daemon, summed over the ones we use. */
struct daemon_ctr {
	uint64_t ioctls, cmds, host_syncs, errors, charged, cpu, sleeps;
};

static uint64_t stat_u64(const struct smmu_client_stats *st, const char *name)
{
	uint64_t v = 0;

	smmu_client_stats_get(st, name, &v);
	return v;
}

static int daemon_read(struct smmu_client *c, unsigned int n,
		       struct daemon_ctr *out, struct result *res)
{
	memset(out, 0, sizeof(*out));
	for (unsigned int i = 0; i < n; i++) {
		struct smmu_client_stats *st = NULL;
		const char *loop;
		int r = smmu_client_stats(c, SMMU_CLIENT_SCOPE_HSMMU, i, &st);

		if (r)
			return r;
		out->ioctls += stat_u64(st, "backend_ioctls");
		out->cmds += stat_u64(st, "backend_cmds");
		out->host_syncs += stat_u64(st, "backend_host_syncs");
		out->errors += stat_u64(st, "backend_errors");
		out->charged += stat_u64(st, "backend_charged_ns");
		out->cpu += stat_u64(st, "worker_cpu_ns") +
			    stat_u64(st, "issuer_cpu_ns");
		out->sleeps += stat_u64(st, "sleeps");
		loop = smmu_client_stats_label(st, "loop");
		if (loop)
			snprintf(res->loop_buf, sizeof(res->loop_buf), "%s",
				 loop);
		smmu_client_stats_free(st);
	}
	res->loop = res->loop_buf[0] ? res->loop_buf : NULL;
	return 0;
}

static int connect_setup(struct run *run, struct smmu_client **ret_c,
			 struct daemon_ctr *before, struct result *res)
{
	const struct opts *o = run->o;
	struct smmu_client_hsmmu *hs = NULL;
	struct smmu_client *c = NULL;
	uint32_t n = 0;
	int r;

	r = smmu_client_connect(o->connect, "smmu-bench", &c);
	if (r) {
		snprintf(res->errmsg, sizeof(res->errmsg), "connect %s: %s",
			 o->connect, strerror(-r));
		return r;
	}
	*ret_c = c;
	if (strcmp(smmu_client_backend(c), o->backend)) {
		snprintf(res->errmsg, sizeof(res->errmsg),
			 "the daemon runs backend %s, --backend is %s",
			 smmu_client_backend(c), o->backend);
		return -EINVAL;
	}
	r = smmu_client_list_hsmmus(c, &hs, &n);
	if (!r && n < o->hsmmus) {
		snprintf(res->errmsg, sizeof(res->errmsg),
			 "the daemon serves %u host SMMUs, --hsmmus asks %u", n,
			 o->hsmmus);
		free(hs);
		return -ENOENT;
	}
	for (unsigned int v = 0; !r && v < o->nvs; v++) {
		struct vm *vm = &run->vms[v];
		uint32_t vdev;

		r = smmu_client_vsmmu_create(c, hs[v % o->hsmmus].name, -1, 0,
					     0, &vm->vsmmu);
		for (unsigned int k = 0; !r && k < run->w->nsids; k++)
			r = smmu_client_device_attach(c, vm->vsmmu,
						      vm_dev_id(v, k),
						      run->w->sids[k], &vdev);
		if (!r)
			r = vm_ring_new(vm, o->ring_log2);
		if (!r)
			r = smmu_client_ring_attach(c, vm->vsmmu, vm->memfd,
						    vm->db, vm->cq,
						    &vm->ring_id);
		if (r)
			snprintf(res->errmsg, sizeof(res->errmsg),
				 "vm %u: %s (%s)", v, strerror(-r),
				 smmu_client_error(c));
	}
	free(hs);
	if (!r)
		r = daemon_read(c, o->hsmmus, before, res);
	return r;
}

static void connect_teardown(struct run *run, struct smmu_client *c,
			     const struct daemon_ctr *before, bool measured,
			     struct result *res)
{
	struct daemon_ctr after;

	if (c && measured && !daemon_read(c, run->o->hsmmus, &after, res)) {
		res->has_svc = true;
		res->be.ioctls = after.ioctls - before->ioctls;
		res->be.cmds = after.cmds - before->cmds;
		res->be.host_syncs = after.host_syncs - before->host_syncs;
		res->be.errors = after.errors - before->errors;
		res->be.charged_ns = after.charged - before->charged;
		res->svc_cpu_ns = after.cpu - before->cpu;
		res->svc_sleeps = after.sleeps - before->sleeps;
		/* The daemon's per-vSMMU counters are not read: every vSMMU
		 * carried traffic when its guests issued commands. */
		for (unsigned int v = 0; v < run->o->nvs && res->c.fwd; v++)
			res->hsmmu_mask |= 1u << (v % run->o->hsmmus);
	}
	/* Closing the connection drains and frees everything it made. */
	smmu_client_free(c);
	for (unsigned int v = 0; v < run->o->nvs; v++)
		vm_ring_free(&run->vms[v]);
}

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
		uint64_t t = now_ns();

		if (t >= end)
			break;
		if (show && t >= next) {
			fprintf(stderr,
				"\r  %-12s %4.1f / %.1f s, %" PRIu64
				" guest SYNCs",
				mode_names[run->mode], (double)(t - t0) / 1e9,
				o->duration, progress_of(run));
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

	if (run->mode == M_OFFLOAD && o->connect)
		snprintf(res->layout, sizeof(res->layout),
			 "%u producer thread%s x %u %s%s each; the service is "
			 "smmu-offloadd at %s (another process)",
			 run->nwk, run->nwk > 1 ? "s" : "", per, unit_name(o),
			 o->nvs > 1 ? "s" : "", o->connect);
	else if (run->mode == M_OFFLOAD)
		snprintf(res->layout, sizeof(res->layout),
			 "%u producer thread%s x %u %s%s each, %u worker%s "
			 "(%s issue), embedded",
			 run->nwk, run->nwk > 1 ? "s" : "", per, unit_name(o),
			 o->nvs > 1 ? "s" : "", o->hsmmus,
			 o->hsmmus > 1 ? "s" : "",
			 o->issue == CORE_ISSUE_INLINE ? "inline" : "async");
	else
		snprintf(res->layout, sizeof(res->layout),
			 "%u vCPU threads (%u %ss x %u), ioctl on the vCPU",
			 run->nwk, o->nvs, unit_name(o), o->vcpus);
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

static int run_mode(const struct opts *o, const struct wl *w, enum mode mode,
		    struct result *res)
{
	struct run run = { .o = o,
			   .w = w,
			   .mode = mode,
			   .gate_lock = PTHREAD_MUTEX_INITIALIZER,
			   .gate = PTHREAD_COND_INITIALIZER };
	struct qemu_env *qenv = NULL;
	struct core_service *svc = NULL;
	struct smmu_client *client = NULL;
	struct daemon_ctr dbefore;
	bool measured = false;
	struct rusage ru0, ru1;
	pthread_attr_t attr;
	unsigned int started = 0, nfl = 0;
	uint64_t t0, t1, nglobal = (uint64_t)o->nvs * o->vcpus;
	int r;

	memset(res, 0, sizeof(*res));
	res->ran = true;
	res->mode = mode;
	core_hist_init(&res->c.lat);
	run.vms = calloc(o->nall, sizeof(*run.vms));
	run.nwk = mode == M_OFFLOAD ? o->threads : o->nvs * o->vcpus;
	if (run.nwk > o->nvs && mode == M_OFFLOAD)
		run.nwk = o->nvs;
	run.wk = calloc(run.nwk, sizeof(*run.wk));
	run.fl = calloc(o->flood ? o->flood : 1, sizeof(*run.fl));
	if (!run.vms || !run.wk || !run.fl) {
		r = -ENOMEM;
		goto out_free;
	}
	for (unsigned int v = 0; v < o->nall; v++) {
		struct vm *vm = &run.vms[v];

		vm->memfd = vm->db = vm->cq = -1;
		pthread_mutex_init(&vm->lock, NULL);
		vm->slot = calloc(o->vcpus, sizeof(*vm->slot));
		if (!vm->slot) {
			r = -ENOMEM;
			goto out_free;
		}
		for (unsigned int k = 0; k < o->vcpus && v < o->nvs; k++)
			wl_stream_init(&vm->slot[k].ws, w, o->seed, k,
				       (uint64_t)v * o->vcpus + k, nglobal);
	}
	if (mode == M_OFFLOAD && o->connect)
		r = connect_setup(&run, &client, &dbefore, res);
	else if (mode == M_OFFLOAD)
		r = offload_setup(&run, &svc, res->errmsg, sizeof(res->errmsg));
	else if ((qenv = calloc(1, sizeof(*qenv))))
		r = qemu_setup(&run, qenv, res->errmsg, sizeof(res->errmsg));
	else
		r = -ENOMEM;
	mode_layout(&run, res);
	res->threads = run.nwk;
	res->verified = verifying(&run);
	if (r)
		goto out_teardown;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (unsigned int i = 0; i < run.nwk; i++) {
		struct worker *wk = &run.wk[i];

		wk->run = &run;
		wk->id = i;
		core_hist_init(&wk->c.lat);
		if (pthread_create(&wk->th, &attr,
				   mode == M_OFFLOAD ? offload_main : qemu_main,
				   wk)) {
			r = -EAGAIN;
			snprintf(res->errmsg, sizeof(res->errmsg),
				 "pthread_create failed after %u threads", i);
			break;
		}
		started++;
	}
	for (unsigned int i = 0; i < o->flood && started == run.nwk; i++) {
		struct worker *wk = &run.fl[i];

		wk->run = &run;
		wk->id = o->nvs + i;
		if (pthread_create(&wk->th, &attr, flood_main, wk)) {
			r = -EAGAIN;
			snprintf(res->errmsg, sizeof(res->errmsg),
				 "pthread_create failed after %u flooders", i);
			break;
		}
		nfl++;
	}
	pthread_attr_destroy(&attr);
	if (started < run.nwk || nfl < o->flood) {
		run_open(&run, GO_ABORT);
		for (unsigned int i = 0; i < started; i++)
			pthread_join(run.wk[i].th, NULL);
		for (unsigned int i = 0; i < nfl; i++)
			pthread_join(run.fl[i].th, NULL);
		goto out_teardown;
	}
	getrusage(RUSAGE_SELF, &ru0);
	/* The start barrier: the flood is on before the measured VMs start. */
	run_open(&run, GO_FLOOD);
	flood_wait_published(&run, nfl);
	run_open(&run, GO_ALL);
	t0 = now_ns();
	run_wait(&run, t0);
	if (!o->syncs)
		__atomic_store_n(&run.stop, 1, __ATOMIC_RELEASE);
	for (unsigned int i = 0; i < run.nwk; i++)
		pthread_join(run.wk[i].th, NULL);
	t1 = now_ns();
	/* The flood lasts as long as the measured window, then stops. */
	__atomic_store_n(&run.stop, 1, __ATOMIC_RELEASE);
	for (unsigned int i = 0; i < nfl; i++) {
		struct worker *fw = &run.fl[i];

		pthread_join(fw->th, NULL);
		res->flood_cmds += fw->c.cmds;
		res->flood_syncs += fw->c.syncs;
		if (fw->err[0] && !res->errmsg[0]) {
			snprintf(res->errmsg, sizeof(res->errmsg), "%s",
				 fw->err);
			r = -EIO;
		}
	}
	getrusage(RUSAGE_SELF, &ru1);
	measured = true;

	res->wall_s = (double)(t1 - t0) / 1e9;
	res->proc_cpu_ns = tv_ns(ru1.ru_utime) + tv_ns(ru1.ru_stime) -
			   tv_ns(ru0.ru_utime) - tv_ns(ru0.ru_stime);
	res->nvcsw = ru1.ru_nvcsw - ru0.ru_nvcsw;
	res->nivcsw = ru1.ru_nivcsw - ru0.ru_nivcsw;
	if (counters_merge(&run, res))
		r = -EIO;
out_teardown:
	if (mode == M_OFFLOAD && o->connect)
		connect_teardown(&run, client, &dbefore, measured, res);
	else if (mode == M_OFFLOAD)
		offload_teardown(&run, svc, res);
	else if (qenv)
		qemu_teardown(&run, qenv, res);
	free(qenv);
out_free:
	if (run.vms)
		for (unsigned int v = 0; v < o->nall; v++) {
			pthread_mutex_destroy(&run.vms[v].lock);
			free(run.vms[v].slot);
		}
	free(run.vms);
	free(run.wk);
	free(run.fl);
	res->err = r;
	if (r && !res->errmsg[0])
		snprintf(res->errmsg, sizeof(res->errmsg), "%s", strerror(-r));
	return r;
}

/*
 * --idle MS: the cost of attached but idle rings. Every ring completes one
 * CMD_SYNC (so the worker has seen it), then nothing is written for a
 * settling time longer than the poll window and for MS milliseconds in
 * which the service's thread CPU time is measured.
 */
static uint64_t svc_cpu(struct core_service *svc, unsigned int n,
			uint64_t *ret_sleeps)
{
	uint64_t cpu = 0;

	*ret_sleeps = 0;
	for (unsigned int i = 0; i < n; i++) {
		struct core_hsmmu_stats hs;

		if (!core_hsmmu_stats(svc, i, &hs)) {
			cpu += hs.worker_cpu_ns + hs.issuer_cpu_ns;
			*ret_sleeps += hs.sleeps;
		}
	}
	return cpu;
}

static int run_idle(const struct opts *o, const struct wl *w)
{
	struct run run = { .o = o, .w = w, .mode = M_OFFLOAD };
	struct core_service *svc = NULL;
	struct rusage ru0, ru1;
	char err[256] = "";
	uint64_t c0, c1, s0, s1, t0, t1;
	int r;

	run.vms = calloc(o->nvs, sizeof(*run.vms));
	if (!run.vms)
		return -ENOMEM;
	for (unsigned int v = 0; v < o->nvs; v++)
		run.vms[v].memfd = run.vms[v].db = run.vms[v].cq = -1;
	r = offload_setup(&run, &svc, err, sizeof(err));
	for (unsigned int v = 0; !r && v < o->nvs; v++) {
		struct cmdq_cmd c = cmdq_build_sync(2, 3, 0xf, 0, 0);
		struct smmu_ring_entry e;
		uint32_t idx;

		cmdq_cmd_to_le(&c, &e);
		r = ring_prod_push(&run.vms[v].p, &e, 1, &idx);
		if (!r)
			r = ring_prod_wait(&run.vms[v].p, idx, 100000, 5000);
		if (r)
			snprintf(err, sizeof(err), "ring %u: first SYNC: %s", v,
				 strerror(-r));
	}
	if (!r) {
		/* Past every ring's poll window: the worker may sleep. */
		poll(NULL, 0, 100 + (int)(o->poll_us / 1000));
		getrusage(RUSAGE_SELF, &ru0);
		t0 = now_ns();
		c0 = svc_cpu(svc, o->hsmmus, &s0);
		poll(NULL, 0, (int)o->idle_ms);
		c1 = svc_cpu(svc, o->hsmmus, &s1);
		t1 = now_ns();
		getrusage(RUSAGE_SELF, &ru1);
		printf("idle: %u rings on %u host SMMU%s (%s), poll_us %u, "
		       "%.3f s: service CPU %.3f ms = %.4f%% of one CPU; "
		       "worker sleeps %" PRIu64 "; process context switches "
		       "%ld voluntary, %ld involuntary\n",
		       o->nvs, o->hsmmus, o->hsmmus > 1 ? "s" : "",
		       core_service_loop_name(svc), o->poll_us,
		       (double)(t1 - t0) / 1e9, (double)(c1 - c0) / 1e6,
		       100.0 * (double)(c1 - c0) / (double)(t1 - t0), s1 - s0,
		       ru1.ru_nvcsw - ru0.ru_nvcsw,
		       ru1.ru_nivcsw - ru0.ru_nivcsw);
	} else {
		fprintf(stderr, "smmu-bench: idle: %s\n", err);
	}
	{
		struct result res;

		memset(&res, 0, sizeof(res));
		offload_teardown(&run, svc, &res);
	}
	free(run.vms);
	return r;
}

/* ---- derived metrics ------------------------------------------------------ */

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
		uint64_t t = now_ns() + 300;
		struct timespec ts = { .tv_sec = (time_t)(t / 1000000000u),
				       .tv_nsec = (long)(t % 1000000000u) };

		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts,
				       NULL) == EINTR)
			;
		d[i] = now_ns() - t;
	}
	qsort(d, sizeof(d) / sizeof(d[0]), sizeof(d[0]), cmp_u64);
	return d[50];
}

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
static bool wall_fair(const struct opts *o)
{
	return strcmp(o->backend, "sim") || o->wait != IOFD_SIM_WAIT_BLOCK;
}

/* ---- output ------------------------------------------------------------------ */

#define ROW_COUNT 1u /* a count: in "counts", not "metrics"; no ratio */
#define ROW_SVC 2u /* service only: "-" / null without one; no ratio */
#define ROW_ORACLE 4u /* the oracle's: "n/a" when off; not a metric */
#define ROW_QEMU 8u /* qemu modes only: "-" / null for offload; no ratio */

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
	       !((rw->flags & ROW_QEMU) && r->mode == M_OFFLOAD);
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
	{ "guest blocked per command, ns", "guest_blocked_ns_per_cmd", 1, 0,
	  g_blocked },
	{ "guest blocked (cost model), ns/cmd",
	  "guest_blocked_model_ns_per_cmd", 1, ROW_QEMU, g_blocked_model },
	{ "guest commands", "guest_cmds", 0, ROW_COUNT, g_cmds },
	{ "guest CMD_SYNCs", "guest_syncs", 0, ROW_COUNT, g_syncs },
	{ "throughput, cmds/s per host SMMU", "cmds_per_s_per_hsmmu", 0, 0,
	  g_tput },
	{ "vCPU thread held (secondary), ns/cmd", "handler_ns_per_cmd", 1, 0,
	  g_handler },
	{ "vCPU thread held (cost model), ns/cmd", "handler_model_ns_per_cmd",
	  1, 0, g_handler_model },
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

static const char *wait_name(enum iofd_sim_wait w)
{
	return w == IOFD_SIM_WAIT_SPIN	? "spin" :
	       w == IOFD_SIM_WAIT_BLOCK ? "block" :
					  "none";
}

static const char *loop_opt_name(enum core_loop_kind l)
{
	return l == CORE_LOOP_URING ? "io_uring" :
	       l == CORE_LOOP_EPOLL ? "epoll" :
				      "auto";
}

static bool mode_ok(const struct result *res, int m)
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
		       wait_name(o->wait), o->sim.ioctl_ns, o->sim.cmd_ns,
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
	       verify_on(o) && o->connect && o->modes[M_OFFLOAD] ?
		       "every waited SYNC checked (offload through the daemon: "
		       "not reachable)" :
	       verify_on(o)		  ? "every waited SYNC checked" :
	       !strcmp(o->backend, "sim") ? "off (--no-verify)" :
					    "n/a (null backend)",
	       o->seed, o->poll_us, loop_opt_name(o->loop),
	       o->max_inflight ? o->max_inflight : CORE_DEFAULT_INFLIGHT);
}

/* Each mode's layout and wall time, and the open loop's rates. */
static void print_layouts(const struct opts *o, const struct result *res)
{
	for (int m = 0; m < M_COUNT; m++)
		if (res[m].ran)
			printf("  %-13s %s, %.2f s wall%s%s\n", mode_names[m],
			       res[m].layout, res[m].wall_s,
			       m == M_OFFLOAD && res[m].loop ? ", loop " : "",
			       m == M_OFFLOAD && res[m].loop ? res[m].loop :
							       "");
	for (int m = 0; m < M_COUNT && o->rate; m++)
		if (mode_ok(res, m))
			printf("  %-13s open loop: achieved %.0f of %.0f SYNC "
			       "groups/s offered (%.1f%%), mean start lag "
			       "%.1f us\n",
			       mode_names[m], achieved(&res[m]),
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
	if (wall_fair(o)) {
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
	bool ratio_ok = mode_ok(res, M_OFFLOAD) && mode_ok(res, M_QEMU);
	char cell[32];

	printf("\n%-38s", "metric");
	for (int m = 0; m < M_COUNT; m++)
		if (res[m].ran)
			printf(" %13s", mode_names[m]);
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
			       mode_names[m], o->flood, o->flood > 1 ? "s" : "",
			       (double)res[m].flood_cmds / res[m].wall_s);
	for (int m = 0; m < M_COUNT; m++)
		if (res[m].ran && res[m].err)
			printf("%s: ERROR: %s\n", mode_names[m], res[m].errmsg);
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

static void print_table(const struct opts *o, const struct wl *w,
			const struct result *res)
{
	print_config(o, w);
	print_layouts(o, res);
	print_basis(o);
	print_rows(o, res);
	print_notes(o, res);
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

/* {"qemu": v, "qemu-batched": v, "offload": v} of row @rw, null where
 * not measured. */
static void json_by_mode(FILE *f, const struct opts *o,
			 const struct result *res, const struct row *rw)
{
	for (int m = 0; m < M_COUNT; m++) {
		fprintf(f, "%s\"%s\": ", m ? ", " : "{", mode_names[m]);
		if (mode_ok(res, m) && row_has(rw, &res[m]))
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
	double b = mode_ok(res, M_OFFLOAD) ? g_blocked(o, &res[M_OFFLOAD]) : 0;

	fprintf(f, "  \"summary\": {\"guest_blocked_ns_per_cmd\": ");
	json_by_mode(f, o, res, row_of(g_blocked));
	fprintf(f,
		",\n    \"headline\": \"guest_blocked_ns_per_cmd\", "
		"\"basis\": \"wall\", \"comparable\": %s, \"basis_note\": ",
		wall_fair(o) ? "true" : "false");
	json_str(f,
		 wall_fair(o) ?
			 "wall clock in every mode" :
			 "sim wait block: every mode's wall clock includes "
			 "the simulator's sleep overshoot (config."
			 "sim_sleep_overshoot_ns, two sleeps per host call); "
			 "compare with --wait spin, or the qemu modes' cost "
			 "model");
	fprintf(f, ",\n    \"guest_blocked_qemu_over_offload\": ");
	if (mode_ok(res, M_QEMU) && b > 0)
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
	json_str(f, u.sysname);
	fprintf(f, ", \"release\": ");
	json_str(f, u.release);
	fprintf(f, ", \"kernel_version\": ");
	json_str(f, u.version);
	fprintf(f, ", \"arch\": ");
	json_str(f, u.machine);
	fprintf(f, "},\n");
}

static void json_config(FILE *f, const struct opts *o, const struct wl *w)
{
	fprintf(f, "  \"config\": {\"workload\": ");
	json_str(f, w->name);
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
		o->seed, verify_on(o) ? "true" : "false", o->backend,
		wait_name(o->wait), o->sim.ioctl_ns, o->sim.cmd_ns,
		o->sim.sync_ns,
		o->issue == CORE_ISSUE_INLINE ? "inline" : "async", o->poll_us,
		loop_opt_name(o->loop), o->ring_log2,
		o->max_inflight ? o->max_inflight : CORE_DEFAULT_INFLIGHT,
		o->rate_cmds, o->vsmmus, w->nsids,
		!o->rate   ? "closed" :
		o->poisson ? "open-poisson" :
			     "open-fixed",
		o->rate);
	if (o->connect)
		json_str(f, o->connect);
	else
		fprintf(f, "null");
	fprintf(f,
		", \"flood_vms\": %u, \"sim_sleep_overshoot_ns\": ", o->flood);
	if (wall_fair(o))
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
	fprintf(f,
		", \"p50\": %" PRIu64 ", \"p90\": %" PRIu64
		", \"p99\": %" PRIu64 ", \"p999\": %" PRIu64
		", \"max\": %" PRIu64 "},",
		core_hist_quantile(&r->c.lat, 0.5),
		core_hist_quantile(&r->c.lat, 0.9),
		core_hist_quantile(&r->c.lat, 0.99),
		core_hist_quantile(&r->c.lat, 0.999), r->c.lat.max);
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

static void json_mode(FILE *f, const struct opts *o, int m,
		      const struct result *r)
{
	fprintf(f, "\n    {\"mode\": \"%s\", \"ok\": %s, \"error\": ",
		mode_names[m], r->err ? "false" : "true");
	if (r->err)
		json_str(f, r->errmsg);
	else
		fprintf(f, "null");
	fprintf(f, ", \"layout\": ");
	json_str(f, r->layout);
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
	json_metrics(f, o, r);
	json_mode_tail(f, o, r);
}

static void json_ratios(FILE *f, const struct opts *o, const struct result *res)
{
	bool first = true;

	fprintf(f, "\n  ],\n  \"ratios_qemu_over_offload\": ");
	if (!mode_ok(res, M_QEMU) || !mode_ok(res, M_OFFLOAD)) {
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

static int write_json(const char *path, const struct opts *o,
		      const struct wl *w, const struct result *res)
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

/* Is @prog an executable somewhere in $PATH? */
static bool in_path(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[4096];

	while (path && *path) {
		const char *end = strchr(path, ':');
		size_t len = end ? (size_t)(end - path) : strlen(path);

		if (len && len + strlen(prog) + 2 < sizeof(buf)) {
			snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, path,
				 prog);
			if (!access(buf, X_OK))
				return true;
		}
		path = end ? end + 1 : NULL;
	}
	return false;
}

/* Latency CDF per mode and a per-command cost bar chart, as SVG. */
static int write_plots(const char *dir, const struct opts *o,
		       const struct wl *w, const struct result *res)
{
	char path[4096];
	FILE *f;
	int rc;

	snprintf(path, sizeof(path), "%s/latency-cdf.dat", dir);
	f = fopen(path, "we");
	if (!f)
		return -errno;
	for (int m = 0; m < M_COUNT; m++) {
		const struct core_hist *h = &res[m].c.lat;
		uint64_t seen = 0;

		if (!res[m].ran || res[m].err)
			continue;
		/* The block's first line is its title (columnheader). */
		fprintf(f, "%s\n", mode_names[m]);
		for (unsigned int i = 0; i < CORE_HIST_BUCKETS; i++) {
			if (!h->b[i])
				continue;
			seen += h->b[i];
			fprintf(f, "%.3f %.6f\n",
				(double)core_hist_upper(i) / 1000.0,
				(double)seen / (double)h->count);
		}
		fprintf(f, "\n\n");
	}
	fclose(f);
	snprintf(path, sizeof(path), "%s/per-cmd.dat", dir);
	f = fopen(path, "we");
	if (!f)
		return -errno;
	fprintf(f,
		"# mode guest_blocked_ns_per_cmd held_ns_per_cmd "
		"sync_wait_ns_per_cmd host_syncs_per_1000 ioctls_per_1000\n");
	for (int m = 0; m < M_COUNT; m++)
		if (mode_ok(res, m))
			fprintf(f, "%s %.2f %.2f %.2f %.2f %.2f\n",
				mode_names[m], g_blocked(o, &res[m]),
				g_handler(o, &res[m]), g_wait(o, &res[m]),
				g_hsyncs(o, &res[m]), g_ioctls(o, &res[m]));
	fclose(f);
	snprintf(path, sizeof(path), "%s/plots.gp", dir);
	f = fopen(path, "we");
	if (!f)
		return -errno;
	fprintf(f,
		"set terminal svg size 800,500 dynamic\n"
		"set output '%s/latency-cdf.svg'\n"
		"set title 'guest CMD_SYNC latency CDF (%s, %u VMs, %u host "
		"SMMUs)' noenhanced\n"
		"set xlabel 'latency, us (log)'\nset ylabel 'fraction'\n"
		"set logscale x\nset key bottom right\nset grid\n"
		"plot for [i=0:*] '%s/latency-cdf.dat' index i using 1:2 "
		"with steps lw 2 title columnheader(1)\n",
		dir, w->name, o->vms, o->hsmmus, dir);
	fprintf(f,
		"reset\nset terminal svg size 800,500 dynamic\n"
		"set output '%s/per-cmd.svg'\n"
		"set title 'per guest command (%s, %s)' noenhanced\n"
		"set style data histograms\nset style fill solid 0.8\n"
		"set logscale y\nset ylabel 'ns per guest command (log)'\n"
		"set grid ytics\n"
		"plot '%s/per-cmd.dat' using 2:xtic(1) title 'guest blocked "
		"(PROD write to SYNC passed)', '' using 3 title 'vCPU thread "
		"held (secondary)'\n",
		dir, w->name,
		wall_fair(o) ? "wall clock" :
			       "wall clock incl. sim sleep overshoot",
		dir);
	fclose(f);
	if (!in_path("gnuplot")) {
		printf("plots: gnuplot not installed: wrote the data and "
		       "%s/plots.gp only (apt-get install gnuplot-nox)\n",
		       dir);
		return 0;
	}
	snprintf(path, sizeof(path), "gnuplot '%s/plots.gp'", dir);
	rc = system(path);
	if (rc) {
		printf("plots: gnuplot failed (status %d)\n", rc);
		return -EIO;
	}
	printf("plots: %s/latency-cdf.svg %s/per-cmd.svg\n", dir, dir);
	return 0;
}

/* ---- options ------------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: smmu-bench [options]\n"
		"  -w, --workload W     strict-unmap (default), lazy-flush, "
		"mixed, storm,\n"
		"                       trace:FILE[.xz], noisy (see --flood)\n"
		"  -m, --modes LIST     comma list of qemu,qemu-batched,"
		"offload (default all),\n"
		"                       vcmdq (--vcpu kvm only; default there "
		"for strict-unmap\n"
		"                       and lazy-flush)\n"
		"  -b, --backend B      sim (default) or null\n"
		"  -n, --vms N          VMs, 1..256 (default 16)\n"
		"      --vcpus N        vCPUs (closed loops) per vSMMU (default 1;"
		" traces <= 16)\n"
		"      --vsmmus-per-vm N  vSMMUs per VM, each its own ring and "
		"vIOMMU, on\n"
		"                       consecutive host SMMUs (default 1)\n"
		"      --devices N      generators: devices (vSIDs) per vSMMU, "
		"1..16 (default 1)\n"
		"      --rate R         open loop: R guest SYNC groups per second"
		" per VM, spread\n"
		"                       over its vCPUs; latency counts from the "
		"scheduled time\n"
		"      --flood N        noisy neighbour: N more VMs (one vSMMU "
		"each) flood\n"
		"                       TLBI_NH_ASID without waiting; counted "
		"apart (flood cmds/s)\n"
		"                       -w noisy = -w strict-unmap -n 63 -H 1 "
		"--flood 1\n"
		"      --arrival A      open loop: poisson (default) or fixed "
		"gaps\n"
		"  -H, --hsmmus N       host SMMUs, 1..16 (default 2)\n"
		"  -T, --threads N      offload producer threads (default 1)\n"
		"  -d, --duration S     seconds per mode (default 2)\n"
		"  -k, --syncs K        instead: K waited SYNCs per vCPU\n"
		"      --seed N         workload seed (default 1)\n"
		"      --no-verify      do not check the sim oracle\n"
		"      --wait W         sim wait mode block (default), spin, "
		"none; block's sleeps\n"
		"                       overshoot: wall clock then not "
		"comparable between modes\n"
		"      --ioctl-ns N, --cmd-ns N, --sync-ns N   sim cost model\n"
		"      --issue M        offload issue mode inline (default) or "
		"async\n"
		"      --poll-us N      offload worker poll window (default "
		"%u)\n"
		"      --loop L         auto (default), uring, epoll\n"
		"      --max-inflight N async: ioctls in flight per host SMMU "
		"(default 4)\n"
		"      --ring-log2 N    ring entries (default 10)\n"
		"      --rate-cmds N    offload: per-vSMMU rate limit, "
		"commands/s (default 0 = off)\n"
		"      --trace-batches N  load at most N batches of a trace\n"
		"      --connect SOCKET offload through a running smmu-offloadd "
		"(its own backend\n"
		"                       config; the oracle is not reachable "
		"there)\n"
		"      --idle MS        instead: service CPU of --vms idle "
		"rings (<= 1024) over MS ms\n"
		"      --json FILE      write the results (bench/SCHEMA.md)\n"
		"      --plot DIR       write SVG charts with gnuplot\n"
		"      --fault-drop N   test hook: lose every Nth forwarded "
		"command (the oracle\n"
		"                       must then report stale entries)\n"
		"      --vcpu V         thread (default), kvm: real vCPUs "
		"(bench/kvm/; exit 77\n"
		"                       without a usable /dev/kvm), kvm-msipoll: "
		"the same, SYNCs\n"
		"                       waited for by MSI write (Linux MSIPOLL)\n"
		"      --kvm-pin        --vcpu kvm, offload and vcmdq: vCPU "
		"threads and "
		"service workers\n"
		"                       on separate halves of the CPUs\n"
		"  -q, --quiet          no progress line\n",
		CORE_DEFAULT_POLL_US);
}

static int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int parse_modes(const char *s, bool *modes, int *vcmdq)
{
	char buf[128], *save = NULL, *tok;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", s);
	memset(modes, 0, M_COUNT * sizeof(*modes));
	*vcmdq = 0;
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		int m;

		if (!strcmp(tok, "vcmdq")) { /* bench/kvm/kvm-vcmdq.c */
			*vcmdq = 1;
			continue;
		}
		for (m = 0; m < M_COUNT; m++)
			if (!strcmp(tok, mode_names[m]))
				break;
		if (m == M_COUNT)
			return -EINVAL;
		modes[m] = true;
	}
	return 0;
}

enum {
	OPT_VCPUS = 256,
	OPT_SEED,
	OPT_NO_VERIFY,
	OPT_WAIT,
	OPT_IOCTL_NS,
	OPT_CMD_NS,
	OPT_SYNC_NS,
	OPT_ISSUE,
	OPT_POLL,
	OPT_LOOP,
	OPT_INFLIGHT,
	OPT_RING,
	OPT_TRACE_BATCHES,
	OPT_JSON,
	OPT_PLOT,
	OPT_FAULT_DROP,
	OPT_CONNECT,
	OPT_IDLE,
	OPT_VSMMUS,
	OPT_DEVICES,
	OPT_RATE,
	OPT_ARRIVAL,
	OPT_FLOOD,
	OPT_RATE_CMDS,
	OPT_VCPU,
	OPT_KVM_PIN,
};

static const struct option long_opts[] = {
	{ "workload", required_argument, NULL, 'w' },
	{ "modes", required_argument, NULL, 'm' },
	{ "backend", required_argument, NULL, 'b' },
	{ "vms", required_argument, NULL, 'n' },
	{ "vcpus", required_argument, NULL, OPT_VCPUS },
	{ "hsmmus", required_argument, NULL, 'H' },
	{ "threads", required_argument, NULL, 'T' },
	{ "duration", required_argument, NULL, 'd' },
	{ "syncs", required_argument, NULL, 'k' },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "no-verify", no_argument, NULL, OPT_NO_VERIFY },
	{ "wait", required_argument, NULL, OPT_WAIT },
	{ "ioctl-ns", required_argument, NULL, OPT_IOCTL_NS },
	{ "cmd-ns", required_argument, NULL, OPT_CMD_NS },
	{ "sync-ns", required_argument, NULL, OPT_SYNC_NS },
	{ "issue", required_argument, NULL, OPT_ISSUE },
	{ "poll-us", required_argument, NULL, OPT_POLL },
	{ "loop", required_argument, NULL, OPT_LOOP },
	{ "max-inflight", required_argument, NULL, OPT_INFLIGHT },
	{ "ring-log2", required_argument, NULL, OPT_RING },
	{ "trace-batches", required_argument, NULL, OPT_TRACE_BATCHES },
	{ "json", required_argument, NULL, OPT_JSON },
	{ "plot", required_argument, NULL, OPT_PLOT },
	{ "fault-drop", required_argument, NULL, OPT_FAULT_DROP },
	{ "connect", required_argument, NULL, OPT_CONNECT },
	{ "idle", required_argument, NULL, OPT_IDLE },
	{ "vsmmus-per-vm", required_argument, NULL, OPT_VSMMUS },
	{ "devices", required_argument, NULL, OPT_DEVICES },
	{ "rate", required_argument, NULL, OPT_RATE },
	{ "arrival", required_argument, NULL, OPT_ARRIVAL },
	{ "flood", required_argument, NULL, OPT_FLOOD },
	{ "rate-cmds", required_argument, NULL, OPT_RATE_CMDS },
	{ "vcpu", required_argument, NULL, OPT_VCPU },
	{ "kvm-pin", no_argument, NULL, OPT_KVM_PIN },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int parse_opts(int argc, char **argv, struct opts *o)
{
	bool vms_set = false, hsmmus_set = false, flood_set = false;
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->workload = "strict-unmap";
	o->modes[M_QEMU] = o->modes[M_QEMU_BATCHED] = o->modes[M_OFFLOAD] = 1;
	o->vcmdq = -1;
	o->backend = "sim";
	o->vms = 16;
	o->vcpus = 1;
	o->vsmmus = 1;
	o->poisson = true;
	o->hsmmus = 2;
	o->threads = 1;
	o->duration = 2.0;
	o->seed = 1;
	o->verify = true;
	o->wait = IOFD_SIM_WAIT_BLOCK;
	iofd_sim_config_default(&o->sim);
	o->issue = CORE_ISSUE_INLINE;
	o->poll_us = CORE_DEFAULT_POLL_US;
	o->loop = CORE_LOOP_AUTO;
	o->ring_log2 = 10;

	while ((c = getopt_long(argc, argv, "w:m:b:n:H:T:d:k:qh", long_opts,
				NULL)) != -1) {
		int r = 0;

		switch (c) {
		case 'w':
			o->workload = optarg;
			break;
		case 'm':
			r = parse_modes(optarg, o->modes, &o->vcmdq);
			break;
		case 'b':
			o->backend = optarg;
			if (strcmp(optarg, "sim") && strcmp(optarg, "null"))
				r = -EINVAL;
			break;
		case 'n':
			r = parse_uint(optarg, 1, MAX_IDLE_RINGS, &v);
			o->vms = (unsigned int)v;
			vms_set = true;
			break;
		case OPT_VCPUS:
			r = parse_uint(optarg, 1, WL_MAX_STREAMS, &v);
			o->vcpus = (unsigned int)v;
			break;
		case 'H':
			r = parse_uint(optarg, 1, MAX_HSMMU, &v);
			o->hsmmus = (unsigned int)v;
			hsmmus_set = true;
			break;
		case 'T':
			r = parse_uint(optarg, 1, 64, &v);
			o->threads = (unsigned int)v;
			break;
		case 'd': {
			char *end;

			o->duration = strtod(optarg, &end);
			if (*end || !(o->duration > 0 && o->duration <= 3600))
				r = -EINVAL;
			break;
		}
		case 'k':
			r = parse_uint(optarg, 1, UINT64_C(1) << 40, &o->syncs);
			break;
		case OPT_SEED:
			r = parse_uint(optarg, 0, UINT64_MAX, &o->seed);
			break;
		case OPT_NO_VERIFY:
			o->verify = false;
			break;
		case OPT_WAIT:
			o->wait_set = true;
			if (!strcmp(optarg, "block"))
				o->wait = IOFD_SIM_WAIT_BLOCK;
			else if (!strcmp(optarg, "spin"))
				o->wait = IOFD_SIM_WAIT_SPIN;
			else if (!strcmp(optarg, "none"))
				o->wait = IOFD_SIM_WAIT_NONE;
			else
				r = -EINVAL;
			break;
		case OPT_IOCTL_NS:
			r = parse_uint(optarg, 0, 100000000, &v);
			o->sim.ioctl_ns = (uint32_t)v;
			break;
		case OPT_CMD_NS:
			r = parse_uint(optarg, 0, 100000000, &v);
			o->sim.cmd_ns = (uint32_t)v;
			break;
		case OPT_SYNC_NS:
			r = parse_uint(optarg, 0, 100000000, &v);
			o->sim.sync_ns = (uint32_t)v;
			break;
		case OPT_ISSUE:
			if (!strcmp(optarg, "async"))
				o->issue = CORE_ISSUE_ASYNC;
			else if (!strcmp(optarg, "inline"))
				o->issue = CORE_ISSUE_INLINE;
			else
				r = -EINVAL;
			break;
		case OPT_POLL:
			r = parse_uint(optarg, 0, 1000000, &v);
			o->poll_us = (unsigned int)v;
			break;
		case OPT_LOOP:
			if (!strcmp(optarg, "auto"))
				o->loop = CORE_LOOP_AUTO;
			else if (!strcmp(optarg, "uring"))
				o->loop = CORE_LOOP_URING;
			else if (!strcmp(optarg, "epoll"))
				o->loop = CORE_LOOP_EPOLL;
			else
				r = -EINVAL;
			break;
		case OPT_INFLIGHT:
			r = parse_uint(optarg, 1, 256, &v);
			o->max_inflight = (unsigned int)v;
			break;
		case OPT_RING:
			r = parse_uint(optarg, 7, 16, &v);
			o->ring_log2 = (unsigned int)v;
			break;
		case OPT_TRACE_BATCHES:
			r = parse_uint(optarg, 1, UINT64_MAX,
				       &o->trace_batches);
			break;
		case OPT_JSON:
			o->json = optarg;
			break;
		case OPT_PLOT:
			o->plot = optarg;
			break;
		case OPT_VSMMUS:
			r = parse_uint(optarg, 1, MAX_HSMMU, &v);
			o->vsmmus = (unsigned int)v;
			break;
		case OPT_DEVICES:
			r = parse_uint(optarg, 1, WL_MAX_SIDS, &v);
			o->devices = (unsigned int)v;
			break;
		case OPT_RATE: {
			char *end;

			o->rate = strtod(optarg, &end);
			if (*end || !(o->rate > 0 && o->rate <= 1e7))
				r = -EINVAL;
			break;
		}
		case OPT_ARRIVAL:
			if (!strcmp(optarg, "poisson"))
				o->poisson = true;
			else if (!strcmp(optarg, "fixed"))
				o->poisson = false;
			else
				r = -EINVAL;
			break;
		case OPT_RATE_CMDS:
			r = parse_uint(optarg, 0, UINT64_C(1) << 40,
				       &o->rate_cmds);
			break;
		case OPT_FLOOD:
			r = parse_uint(optarg, 0, MAX_VMS, &v);
			o->flood = (unsigned int)v;
			flood_set = true;
			break;
		case OPT_IDLE:
			r = parse_uint(optarg, 1, 600000, &v);
			o->idle_ms = (unsigned int)v;
			break;
		case OPT_CONNECT:
			o->connect = optarg;
			break;
		case OPT_FAULT_DROP:
			r = parse_uint(optarg, 1, UINT64_MAX, &o->fault_drop);
			break;
		case OPT_VCPU:
			o->kvm_msi = !strcmp(optarg, "kvm-msipoll");
			o->kvm = o->kvm_msi || !strcmp(optarg, "kvm");
			if (!o->kvm && strcmp(optarg, "thread"))
				r = -EINVAL;
			break;
		case OPT_KVM_PIN:
			o->kvm_pin = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -EINVAL;
		}
		if (r) {
			const char *name = "?";

			for (const struct option *lo = long_opts; lo->name;
			     lo++)
				if (lo->val == c)
					name = lo->name;
			fprintf(stderr, "smmu-bench: bad value for --%s: %s\n",
				name, optarg ? optarg : "");
			return r;
		}
	}
	if (optind != argc)
		return -EINVAL;
	/* The issue 8 scenario; explicit options still win. */
	if (!strcmp(o->workload, "noisy")) {
		o->workload = "strict-unmap";
		if (!vms_set)
			o->vms = 63;
		if (!hsmmus_set)
			o->hsmmus = 1;
		if (!flood_set)
			o->flood = 1;
	}
	if (o->kvm_pin && !o->kvm) {
		fprintf(stderr, "smmu-bench: --kvm-pin needs --vcpu kvm\n");
		return -EINVAL;
	}
	if (o->vcmdq == 1 && (!o->kvm || o->kvm_msi)) {
		fprintf(stderr, "smmu-bench: mode vcmdq needs --vcpu kvm\n");
		return -EINVAL;
	}
	if (o->flood && (o->connect || o->idle_ms)) {
		fprintf(stderr, "smmu-bench: --flood runs with the embedded "
				"service only, not with --connect or --idle\n");
		return -EINVAL;
	}
	o->nvs = o->vms * o->vsmmus;
	o->nall = o->nvs + o->flood;
	return 0;
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
			       .poll_us = o->poll_us,
			       .pin = o->kvm_pin,
			       .msipoll = o->kvm_msi,
			       .json = o->json };

	if (strcmp(o->backend, "sim") || o->connect || o->flood || o->rate ||
	    o->vsmmus > 1 || o->plot || o->fault_drop) {
		fprintf(stderr, "smmu-bench: --vcpu kvm runs the sim backend, "
				"closed loop, one vSMMU per VM, without "
				"--connect, --flood, --plot, --fault-drop\n");
		return 2;
	}
	memcpy(k.modes, o->modes, M_COUNT * sizeof(*o->modes));
	/* vcmdq by default where its guest can run the workload. */
	k.modes[M_COUNT] = o->vcmdq == 1 ||
			   (o->vcmdq < 0 && !o->kvm_msi &&
			    (w->kind == WL_STRICT || w->kind == WL_LAZY));
	k.sim.wait = o->wait;
	return kvmb_run(&k, w);
}

int main(int argc, char **argv)
{
	struct result res[M_COUNT];
	char errbuf[512];
	struct opts o;
	struct wl w;
	bool fail = false;
	int r;

	if (parse_opts(argc, argv, &o)) {
		usage(stderr);
		return 2;
	}
	r = wl_init(&w, o.workload, o.trace_batches, errbuf, sizeof(errbuf));
	if (r) {
		fprintf(stderr, "smmu-bench: %s\n", errbuf);
		return 2;
	}
	if (o.devices && wl_set_devices(&w, o.devices)) {
		fprintf(stderr, "smmu-bench: --devices: a trace attaches the "
				"devices it names\n");
		wl_free(&w);
		return 2;
	}
	if (o.nvs > MAX_IDLE_RINGS) {
		fprintf(stderr, "smmu-bench: at most %u rings\n",
			MAX_IDLE_RINGS);
		wl_free(&w);
		return 2;
	}
	if (o.idle_ms) {
		r = run_idle(&o, &w);
		wl_free(&w);
		return r ? 1 : 0;
	}
	if (o.nall > MAX_VMS) {
		fprintf(stderr,
			"smmu-bench: at most %u vSMMUs (VMs x --vsmmus-per-vm "
			"+ --flood; %u with --idle)\n",
			MAX_VMS, MAX_IDLE_RINGS);
		wl_free(&w);
		return 2;
	}
	if (o.connect && !o.wait_set) {
		/* smmu-offloadd runs the sim with its documented defaults,
		 * which spin: the local baselines must match. */
		o.wait = IOFD_SIM_WAIT_SPIN;
	}
	if (o.vcpus > wl_max_streams(&w)) {
		fprintf(stderr, "smmu-bench: at most %u vCPUs per VM with %s\n",
			wl_max_streams(&w), w.name);
		wl_free(&w);
		return 2;
	}
	/*
	 * Sleeps in the sim (BLOCK) and in the service end at the simulated
	 * completion, not 50 us later: every thread created from here on
	 * inherits a 1 ns timer slack.
	 */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	if (o.kvm) {
		r = run_kvm(&o, &w);
		wl_free(&w);
		return r;
	}
	if (!wall_fair(&o))
		o.sleep_over_ns = sleep_overshoot_ns();
	memset(res, 0, sizeof(res));
	for (int m = 0; m < M_COUNT; m++) {
		if (!o.modes[m])
			continue;
		if (run_mode(&o, &w, (enum mode)m, &res[m]))
			fail = true;
		if (res[m].c.stale || res[m].c.errors)
			fail = true;
	}
	print_table(&o, &w, res);
	if (o.json) {
		r = write_json(o.json, &o, &w, res);
		if (r) {
			fprintf(stderr, "smmu-bench: %s: %s\n", o.json,
				strerror(-r));
			fail = true;
		}
	}
	if (o.plot) {
		r = write_plots(o.plot, &o, &w, res);
		if (r) {
			fprintf(stderr, "smmu-bench: plots in %s: %s\n", o.plot,
				strerror(-r));
			fail = true;
		}
	}
	wl_free(&w);
	return fail ? 1 : 0;
}
