/* SPDX-License-Identifier: MIT */
/*
 * smmu-bench internals: the structs every part of the program shares and
 * the calls between its files. Not a library: one program, split by
 * concern (the layout is in smmu-bench.c's header comment).
 *
 * Thread context: struct opts is read-only once the runs start; struct
 * run belongs to the main thread (run_mode()), its workers each to their
 * own thread (see each struct); struct result is written by the main
 * thread only, after the producer threads have been joined.
 */
#ifndef SMMU_OFFLOAD_BENCH_SMMU_BENCH_I_H
#define SMMU_OFFLOAD_BENCH_SMMU_BENCH_I_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <smmu-offload/client.h>
#include <smmu-offload/ring-prod.h>

#include "bench/vmm-ring.h"
#include "bench/workload.h"
#include "common/clock.h"
#include "core/core.h"
#include "core/core_test.h"
#include "core/hist.h"
#include "iommufd/sim.h"

enum mode { M_QEMU, M_QEMU_BATCHED, M_OFFLOAD, M_COUNT };
/* "qemu", "qemu-batched", "offload": options, table and JSON. */
extern const char *const sb_mode_names[M_COUNT];

/* The host SMMUs' names, smmu0 .. smmu15 (MAX_HSMMU of them). */
extern const char *const sb_hsmmu_names[];
#define MAX_HSMMU 16u

#define MAX_VMS 256
#define MAX_IDLE_RINGS 1024

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
	/* The embedded service's settings, set by core_config_set() under
	 * the daemon's names; backend and host SMMUs are filled in per run. */
	struct core_config svc;
	unsigned int ring_log2;
	uint64_t trace_batches;
	uint64_t fault_drop; /* test hook: drop every Nth forwarded command */
	const char *connect; /* offload through smmu-offloadd at this socket */
	unsigned int idle_ms; /* --idle: measure idle rings instead */
	const char *json, *plot;
	bool kvm_lap; /* --kvm-lap */
	bool kvm, kvm_msi, kvm_pin; /* --vcpu kvm|kvm-msipoll, --kvm-pin:
				     * bench/kvm/kvm-bench.h */
	int vcmdq; /* -m vcmdq (--vcpu kvm only): 1 asked, 0 not, -1
		    * default (-m not given) */
	bool stream; /* --producer stream: modes-stream.c */
	uint32_t stream_batch; /* entries per publish; 0 = the ring budget */
	uint32_t stream_every; /* a CMD_SYNC as every Nth entry */
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
 * and in offload mode its ring. Set up and torn down by the main thread;
 * while the threads run, qemu modes share it among its vCPU threads under
 * @lock, offload gives it to one producer thread (vms[v] to wk[v % nwk])
 * and a flooder's to that flooder. */
struct vm {
	struct iofd_viommu *vi;
	pthread_mutex_t lock; /* qemu modes: the VMM's vSMMU CMDQ lock */
	uint32_t vsmmu, ring_id;
	struct bench_ring ring; /* offload modes */
	struct slot *slot;
	uint32_t nosync_pending; /* offload: batches without a SYNC pushed
				  * since the last publish */
};

struct run;

/* A producer thread; owned by its thread until joined. */
struct worker {
	struct run *run;
	pthread_t th;
	unsigned int id; /* qemu: vCPU index vm * vcpus + slot; offload: 0.. */
	struct counters c;
	uint64_t progress; /* waited batches, atomic (relaxed) for stderr */
	char err[256];
};

/* The start gate's levels: the flooders start at GO_FLOOD, the measured
 * threads at GO_ALL (smmu-bench.c). */
enum gate_go { GO_ABORT = -1, GO_CLOSED, GO_FLOOD, GO_ALL };

/* One mode's run; owned by the main thread (run_mode()). */
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

/* What a mode measured; written by the main thread only (the producer
 * threads' counters are merged in after the join). */
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
	/* offload: each host SMMU's stats at teardown (JSON service_stats) */
	struct core_hsmmu_stats svc_hs[MAX_HSMMU];
	unsigned int n_svc_hs;
	const char *loop;
	char loop_buf[16];
	uint64_t proc_cpu_ns;
	long nvcsw, nivcsw;
	uint64_t flood_cmds, flood_syncs; /* --flood: never in c */
	enum mode mode;
	bool stream; /* offload with --producer stream: no guest waits */
	uint32_t hsmmu_mask; /* host SMMUs that carried measured traffic */
};

/* Another process's host SMMU counters (--connect), summed over the ones
 * we use; the main thread's, read before and after the measured window. */
struct daemon_ctr {
	uint64_t ioctls, cmds, host_syncs, errors, charged, cpu, sleeps;
};

static inline uint64_t sb_now_ns(void)
{
	return common_now_ns();
}

static inline uint64_t sb_thread_cpu_ns(void)
{
	return common_thread_cpu_ns();
}

/* The measured window is over (run->stop, set by the main thread). */
static inline bool sb_stopping(struct run *run)
{
	return __atomic_load_n(&run->stop, __ATOMIC_ACQUIRE);
}

static inline bool sb_slot_finished(const struct run *run, const struct slot *s)
{
	return run->o->syncs && s->waited >= run->o->syncs;
}

/* What one struct vm is: a VM, or one of a VM's vSMMUs. */
static inline const char *sb_unit_name(const struct opts *o)
{
	return o->vsmmus > 1 ? "vSMMU" : "VM";
}

static inline bool sb_verify_on(const struct opts *o)
{
	return o->verify && !strcmp(o->backend, "sim");
}

/* The oracle lives in the sim: in the daemon's process with --connect. */
static inline bool sb_verifying(const struct run *run)
{
	return sb_verify_on(run->o) &&
	       !(run->mode == M_OFFLOAD && run->o->connect);
}

static inline uint32_t sb_vm_dev_id(unsigned int vm, unsigned int k)
{
	/* A sim device id is its pSID: unique over all VMs. */
	return 0x10000u + vm * WL_MAX_SIDS + k;
}

static inline void sb_sim_config(const struct opts *o,
				 struct iofd_sim_config *sim)
{
	*sim = o->sim;
	sim->wait = o->wait;
}

/* A host SMMU's backend counters into res->be (both in-process modes). */
static inline void sb_backend_add(struct result *res,
				  const struct iofd_counters *hc)
{
	res->be.ioctls += hc->ioctls;
	res->be.cmds += hc->cmds;
	res->be.host_syncs += hc->host_syncs;
	res->be.errors += hc->errors;
	res->be.charged_ns += hc->charged_ns;
}

/* vSMMU @v's vIOMMU @vi into @res: the sim time charged to its callers,
 * and whether its host SMMU carried measured traffic (flooders do not
 * count). */
static inline void sb_viommu_add(const struct opts *o, struct result *res,
				 unsigned int v, struct iofd_viommu *vi)
{
	struct iofd_counters vc;

	iofd_viommu_counters(vi, &vc);
	res->caller_charged_ns += vc.charged_ns;
	if (v < o->nvs && vc.ioctls)
		res->hsmmu_mask |= 1u << (v % o->hsmmus);
}

/* Per command and per batch on every mode's hot path: inline. */
/*
 * --fault-drop: a deliberately broken VMM that loses every Nth forwarded
 * command after the oracle was filled for it, so that a test can prove
 * the oracle check catches a missing invalidation.
 */
static inline bool sb_fault_drop(const struct opts *o, struct counters *c)
{
	if (!o->fault_drop || ++c->fwd_seen % o->fault_drop)
		return false;
	c->dropped++;
	return true;
}

/* Account a batch the guest wrote (both paths). */
static inline void sb_count_batch(struct counters *c, const struct wl_batch *b,
				  uint64_t handler_ns)
{
	c->batches++;
	c->cmds += b->n;
	c->fwd += b->nfwd;
	c->syncs += b->n - b->nfwd;
	c->handler_ns += handler_ns;
}

/* ---- smmu-bench.c: the run ------------------------------------------- */

/* Producer threads wait here until the main thread opens @level (enum
 * gate_go). Return: false if the run was aborted. */
bool sb_run_gate(struct run *run, int level);
/* A flooder has published its first batch (or given up before it). */
void sb_flood_published(struct run *run);

/* ---- load.c: the simulated guests ------------------------------------ */

void sb_count_sync(struct worker *wk, struct slot *s, struct vm *vm,
		   uint64_t lat);
void sb_slot_schedule(const struct opts *o, struct slot *s, uint64_t seed,
		      uint64_t t0);
void sb_slot_start(const struct opts *o, struct counters *c, struct slot *s,
		   uint64_t now);
void sb_sleep_until(uint64_t t);
/* --flood: a flooding VM's thread (arg: its struct worker). */
void *sb_flood_main(void *arg);

/* ---- modes-qemu.c: qemu and qemu-batched ----------------------------- */

struct qemu_env;
/* A simulated vCPU's thread (arg: its struct worker). */
void *sb_qemu_main(void *arg);
/* Backend, host SMMUs, every VM's vIOMMU and devices; *@ret_env is set
 * even on failure, for sb_qemu_teardown(). Return: 0 or -errno, @err
 * says why. */
int sb_qemu_setup(struct run *run, struct qemu_env **ret_env, char *err,
		  size_t errlen);
/* Counters into @res, then everything sb_qemu_setup() made is freed. */
void sb_qemu_teardown(struct run *run, struct qemu_env *env,
		      struct result *res);

/* ---- modes-offload.c: the embedded service, --idle ------------------- */

/* A producer thread driving VMs wk->id, wk->id + nwk, ... */
void *sb_offload_main(void *arg);
/* Record why @vm's ring failed in wk->err. */
void sb_offload_fail(struct worker *wk, struct vm *vm, const char *what,
		     int rc);
int sb_offload_setup(struct run *run, struct core_service **ret_svc, char *err,
		     size_t errlen);
void sb_offload_teardown(struct run *run, struct core_service *svc,
			 struct result *res);
/* Close a VM's ring (bench_ring_close()) and forget its vIOMMU. */
void sb_vm_ring_free(struct vm *vm);
/* --idle MS: print the service CPU of idle rings. Return: 0 or -errno. */
int sb_run_idle(const struct opts *o, const struct wl *w);

/* ---- modes-stream.c: --producer stream ------------------------------ */

/* One ring's streaming producer (arg: its struct worker; wk->id is the
 * index of the ring's struct vm). */
void *sb_stream_main(void *arg);

/* ---- modes-connect.c: offload through smmu-offloadd (--connect) ------ */

int sb_connect_setup(struct run *run, struct smmu_client **ret_c,
		     struct daemon_ctr *before, struct result *res);
void sb_connect_teardown(struct run *run, struct smmu_client *c,
			 const struct daemon_ctr *before, bool measured,
			 struct result *res);

/* ---- report.c: metrics, the table, the JSON -------------------------- */

bool sb_mode_ok(const struct result *res, int m);
/* Are wall-clock times comparable between the modes? */
bool sb_wall_fair(const struct opts *o);
/* The value of metric @key (a JSON "metrics" key) for @r. */
double sb_metric(const struct opts *o, const struct result *r, const char *key);
void sb_print_table(const struct opts *o, const struct wl *w,
		    const struct result *res);
/* bench/SCHEMA.md. Return: 0 or -errno. */
int sb_write_json(const char *path, const struct opts *o, const struct wl *w,
		  const struct result *res);

/* ---- plots.c ---------------------------------------------------------- */

/* Data, gnuplot script and (with gnuplot) SVGs in @dir. Return: 0 or
 * -errno. */
int sb_write_plots(const char *dir, const struct opts *o, const struct wl *w,
		   const struct result *res);

/* ---- options.c -------------------------------------------------------- */

void sb_usage(FILE *f);
/* Return: 0, or -EINVAL (a line on stderr may say why). */
int sb_parse_opts(int argc, char **argv, struct opts *o);

#endif
