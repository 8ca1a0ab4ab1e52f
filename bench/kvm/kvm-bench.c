/* SPDX-License-Identifier: MIT */
/*
 * smmu-bench --vcpu kvm: the modes with the guest on real vCPUs.
 *
 * Each VM is a KVM VM (bench/kvm/vmm.h) running guest-<arch>.S: its vCPUs
 * share one command queue in guest RAM, take the guest's lock, copy a
 * batch in, write CMDQ_PROD once and poll CMDQ_CONS for their CMD_SYNC.
 * Both registers trap (KVM_EXIT_MMIO) to the vCPU's own host thread,
 * where the VMM side of the mode runs, under the vSMMU's lock as in QEMU:
 *   qemu          PROD exit: one iofd_invalidate() per forwarded command,
 *                 then CONS = PROD; the CONS read just answers.
 *   qemu-batched  PROD exit: one iofd_invalidate() per PROD write (cut only
 *                 at a SYNC between two ordering classes, as smmu-bench's
 *                 thread mode does), then CONS = PROD.
 *   offload       PROD exit: push the forwardable commands and SYNCs into
 *                 the VM's ring (ring-prod.h) and publish; CONS read exit
 *                 with anything pending: spin KVMB_SPIN_NS on the ring,
 *                 then ring_prod_wait(), and answer once the last SYNC
 *                 pushed (and every PROD write before it) completed: one
 *                 CONS exit per SYNC.
 *   vcmdq         the software Tegra241 CMDQV (kvm-vcmdq.c): the guest runs
 *                 the tegra241-cmdqv driver's protocol against a register
 *                 page mapped as RAM; the service consumes its queue in
 *                 guest RAM; no exit after setup for batches of
 *                 TLBI_NH_*, ATC_INV and SYNC. A batch with any other
 *                 command (CFGI_CD: mixed, storm, traces) goes to the
 *                 SMMU CMDQ, trapped and served as in mode qemu (one call
 *                 per command, inline on the PROD exit).
 * --vcpu kvm-msipoll (msipoll): the guest's last SYNC asks for an MSI
 * write into its own queue slot and the guest polls RAM, as Linux's
 * MSIPOLL; the qemu modes write the MSI at the end of the PROD exit,
 * offload from a completion thread per VM (kvmb_msi_main()).
 * The harness around the VMM: the host prepares each vCPU's batches
 * (bench/workload.h) in KG_NSLOTS slots of guest RAM and refills a slot on
 * the PROD exit that submitted it; the sim oracle is filled for a batch on
 * its PROD exit, before anything is forwarded, and checked on the CONS
 * read that shows the guest its SYNC complete (msipoll: on its next PROD
 * write or its end, which come after it saw the MSI). The guest measures with
 * rdtsc (the TSC runs at the host's rate here) and leaves its last SYNC
 * round trip in its block, which the host picks up on the next exit.
 */
#include "bench/kvm/kvm-bench.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <smmu-offload/ring-prod.h>

#include "bench/kvm/guest.h"
#include "bench/kvm/kvm-bench_i.h"
#include "common/clock.h"
#include "core/core.h"
#include "core/core_test.h"

const char *const kvmb_mode_names[KVMB_NMODES] = { "qemu", "qemu-batched",
						   "offload", "vcmdq" };
_Static_assert(KVMB_NMODES == sizeof(((struct kvmb_opts *)0)->modes),
	       "kvmb_opts.modes");
/* The guest masks slot numbers; its stack grows down from the block's end. */
_Static_assert((KG_NSLOTS & (KG_NSLOTS - 1)) == 0, "KG_NSLOTS power of two");
_Static_assert(KG_SLOTS + KG_NSLOTS * KG_SLOT_SIZE + 0x10000 <= KG_VCPU_SIZE,
	       "slots and a 64 KiB stack fit the vCPU block");

#define KVMB_MAX_VMS 64
#define KVMB_RING_LOG2 10 /* > KG_CMDQ_LOG2: a push never finds it full */

static const char *const hsmmu_names[] = {
	"smmu0",  "smmu1",  "smmu2",  "smmu3",	"smmu4",  "smmu5",
	"smmu6",  "smmu7",  "smmu8",  "smmu9",	"smmu10", "smmu11",
	"smmu12", "smmu13", "smmu14", "smmu15",
};
_Static_assert(sizeof(hsmmu_names) / sizeof(hsmmu_names[0]) == KVMB_MAX_HSMMU,
	       "host SMMU names");

static void *vcpu_main(void *arg)
{
	struct kvmb_vcpu *vc = arg;
	struct kvmb_run *run = vc->vm->run;
	uint64_t cpu0;
	int go;

	pthread_mutex_lock(&run->gate_lock);
	while (!run->go)
		pthread_cond_wait(&run->gate, &run->gate_lock);
	go = run->go;
	pthread_mutex_unlock(&run->gate_lock);
	if (go < 0)
		return NULL;
	if (run->pin)
		pthread_setaffinity_np(pthread_self(), sizeof(run->vcpu_cpus),
				       &run->vcpu_cpus);
	cpu0 = common_thread_cpu_ns();
	vc->rc = kvmh_vcpu_run(&vc->c, kvmb_on_mmio, vc, vc->err,
			       sizeof(vc->err));
	__atomic_fetch_add(&vc->vm->vcpus_done, 1, __ATOMIC_RELAXED);
	vc->cpu_ns = common_thread_cpu_ns() - cpu0;
	return NULL;
}

/* ---- setup and teardown of one mode ------------------------------------ */

static uint32_t vm_dev_id(unsigned int vm, unsigned int k)
{
	/* A sim device id is its pSID: unique over all VMs. */
	return 0x10000u + vm * WL_MAX_SIDS + k;
}

static int setup_qemu(struct kvmb_run *run, char *err, size_t errlen)
{
	const struct kvmb_opts *o = run->o;
	struct iofd_sim_config sim = o->sim;
	struct iofd_config cfg = { .kind = "sim", .sim = &sim };
	struct iofd_viommu_spec spec = { .iommufd = -1 };
	int r;

	r = iofd_backend_new(&cfg, &run->be);
	for (unsigned int i = 0; !r && i < o->hsmmus; i++)
		r = iofd_hsmmu_open(run->be, hsmmu_names[i], &run->h[i]);
	for (unsigned int v = 0; !r && v < o->vms; v++) {
		struct kvmb_vm *vm = &run->vms[v];

		r = iofd_viommu_bind(run->h[v % o->hsmmus], &spec, &vm->vi);
		for (unsigned int k = 0; !r && k < run->w->nsids; k++)
			r = iofd_vdev_alloc(vm->vi, vm_dev_id(v, k),
					    run->w->sids[k], &vm->vdev[k]);
	}
	if (r)
		snprintf(err, errlen, "sim backend setup: %s", strerror(-r));
	return r;
}

static int setup_offload(struct kvmb_run *run, char *err, size_t errlen)
{
	const struct kvmb_opts *o = run->o;
	struct iofd_sim_config sim = o->sim;
	struct core_config cfg = {
		.backend = { .kind = "sim", .sim = &sim },
		.hsmmu_names = hsmmu_names,
		.n_hsmmu = o->hsmmus,
		.issue_mode = CORE_ISSUE_INLINE,
		.poll_us = o->poll_us,
		.vcmdq_poll_us = o->vcmdq_poll_us,
		.cpus = run->pin ? run->svc_cpus : NULL,
		/* The latency split of the report (kvmb_result.take_p50...):
		 * a clock read per backend call more for the worker. */
		.diag_hists = true,
	};
	struct core_vsmmu_spec spec = { .iommufd = -1 };
	uint32_t vdev;
	int r;

	r = core_service_new(&cfg, &run->svc);
	for (unsigned int v = 0; !r && v < o->vms; v++) {
		struct kvmb_vm *vm = &run->vms[v];

		r = core_vsmmu_create(run->svc, hsmmu_names[v % o->hsmmus],
				      &spec, &vm->vsmmu);
		for (unsigned int k = 0; !r && k < run->w->nsids; k++)
			r = core_device_attach(run->svc, vm->vsmmu,
					       vm_dev_id(v, k), run->w->sids[k],
					       &vdev);
		if (r)
			break;
		vm->vi = core_vsmmu_viommu(run->svc, vm->vsmmu);
		if (run->mode == KVMB_VCMDQ)
			continue; /* kvmv_setup() attaches its page instead */
		r = bench_ring_open(&vm->ring, KVMB_RING_LOG2);
		if (r)
			break;
		r = core_ring_attach(run->svc, vm->vsmmu, vm->ring.memfd,
				     vm->ring.db, vm->ring.cq, &vm->ring_id);
	}
	if (r)
		snprintf(err, errlen, "service setup: %s", strerror(-r));
	return r;
}

/* A VM's guest: KVM VM, vCPUs, each vCPU's stream and filled slots. */
static int setup_guest(struct kvmb_run *run, unsigned int v, char *err,
		       size_t errlen)
{
	const struct kvmb_opts *o = run->o;
	struct kvmb_vm *vm = &run->vms[v];
	uint64_t nglobal = (uint64_t)o->vms * o->vcpus;
	int r;

	r = kvmh_vm_new(&vm->kvm, run->kvm_fd, KG_RAM_SIZE, err, errlen);
	vm->kvm_ok = true; /* kvmh_vm_free() undoes a partial one too */
	if (r)
		return r;
	vm->vc = calloc(o->vcpus, sizeof(*vm->vc));
	if (!vm->vc)
		return -ENOMEM;
	for (unsigned int k = 0; k < o->vcpus; k++) {
		struct kvmb_vcpu *vc = &vm->vc[k];
		uint64_t base = KG_VCPU(k);

		vc->vm = vm;
		vc->c.fd = -1;
		core_hist_init(&vc->lat);
		core_hist_init(&vc->prod_h);
		core_hist_init(&vc->cons_h);
		r = kvmh_vcpu_new(&vm->kvm, k, &vc->c, err, errlen);
		vm->nvc++; /* kvmh_vcpu_free() undoes a partial one too */
		if (r)
			return r;
		vc->hb = calloc(KG_NSLOTS, sizeof(*vc->hb));
		if (!vc->hb)
			return -ENOMEM;
		wl_stream_init(&vc->ws, run->w, o->seed, k,
			       (uint64_t)v * o->vcpus + k, nglobal);
		for (unsigned int s = 0; s < KG_NSLOTS; s++)
			kvmb_slot_refill(vc, s, &vc->hb[s]);
		*kvmb_ram64(&vm->kvm, base + KG_V_PROG) = KG_PROG_BENCH;
		*kvmb_ram64(&vm->kvm, base + KG_V_LIMIT) = o->syncs;
		*kvmb_ram64(&vm->kvm, base + KG_V_MSIPOLL) = o->msipoll;
	}
	return 0;
}

static void teardown(struct kvmb_run *run, struct kvmb_result *res)
{
	const struct kvmb_opts *o = run->o;

	/* vcmdq: its threads stop before the VMs and the backend go. */
	kvmv_teardown(run);
	for (unsigned int v = 0; run->vms && v < o->vms; v++) {
		struct kvmb_vm *vm = &run->vms[v];

		for (unsigned int k = 0; vm->vc && k < o->vcpus; k++) {
			if (k < vm->nvc)
				kvmh_vcpu_free(&vm->vc[k].c);
			free(vm->vc[k].hb);
		}
		free(vm->vc);
		if (vm->kvm_ok)
			kvmh_vm_free(&vm->kvm);
		if (vm->vi && run->be) {
			for (unsigned int k = 0; k < run->w->nsids; k++)
				if (vm->vdev[k])
					iofd_vdev_destroy(vm->vi, vm->vdev[k]);
			iofd_viommu_unbind(vm->vi);
		}
	}
	for (unsigned int i = 0; run->be && i < o->hsmmus; i++) {
		struct iofd_counters hc;

		if (!run->h[i])
			continue;
		iofd_hsmmu_counters(run->h[i], &hc);
		res->ioctls += hc.ioctls;
		res->host_syncs += hc.host_syncs;
		res->backend_ns += hc.charged_ns;
		iofd_hsmmu_close(run->h[i]);
	}
	iofd_backend_free(run->be);
	for (unsigned int i = 0; run->svc && i < o->hsmmus; i++) {
		struct core_hsmmu_stats hs;

		if (core_hsmmu_stats(run->svc, i, &hs))
			continue;
		res->ioctls += hs.backend.ioctls;
		res->host_syncs += hs.backend.host_syncs;
		res->backend_ns += hs.backend.charged_ns;
	}
	/* Drains the rings: nothing is left in flight. */
	core_service_free(run->svc);
	for (unsigned int v = 0; run->vms && v < o->vms; v++) {
		struct kvmb_vm *vm = &run->vms[v];

		bench_ring_close(&vm->ring);
		if (vm->lock_ok)
			pthread_mutex_destroy(&vm->lock);
		if (vm->msi_cv_ok)
			pthread_cond_destroy(&vm->msi_cv);
	}
	free(run->vms);
}

/*
 * The scheduler's view of this process's threads by class (their names:
 * the service's workers "smmu-*", the vCPU threads "kvm-vcpu", the vcmdq
 * harness "kvm-harness"): time runnable but waiting for a CPU and
 * timeslices (/proc/self/task/TID/schedstat, fields 2 and 3). A thread
 * that ended before the snapshot is not counted (none do in a run).
 */
void kvmb_sched_snap(struct kvmb_sched *s)
{
	static const char *const prefix[KVMB_SCHED_NCLASS] = { "smmu-",
							       "kvm-vcpu",
							       "kvm-harness" };
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;

	memset(s, 0, sizeof(*s));
	while (d && (de = readdir(d))) {
		char path[300], comm[32] = "";
		unsigned long long run_ns, wait_ns, slices;
		FILE *f;
		int c;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
			 de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (!fgets(comm, sizeof(comm), f))
			comm[0] = '\0';
		fclose(f);
		for (c = 0; c < KVMB_SCHED_NCLASS; c++)
			if (!strncmp(comm, prefix[c], strlen(prefix[c])))
				break;
		if (c == KVMB_SCHED_NCLASS)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/schedstat",
			 de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fscanf(f, "%llu %llu %llu", &run_ns, &wait_ns, &slices) ==
		    3) {
			s->wait_ns[c] += wait_ns;
			s->slices[c] += slices;
		}
		fclose(f);
	}
	if (d)
		closedir(d);
}

void kvmb_sched_delta(struct kvmb_sched *s, const struct kvmb_sched *s0)
{
	for (int c = 0; c < KVMB_SCHED_NCLASS; c++) {
		/* A class whose threads ended meanwhile: unknown, 0. */
		s->wait_ns[c] = s->wait_ns[c] >= s0->wait_ns[c] ?
					s->wait_ns[c] - s0->wait_ns[c] :
					0;
		s->slices[c] = s->slices[c] >= s0->slices[c] ?
				       s->slices[c] - s0->slices[c] :
				       0;
	}
}

/* Median and p99 of the service's histogram @kind over its host SMMUs
 * (0 without a service or without that histogram). */
static void svc_hist(struct kvmb_run *run, enum core_hist_kind kind,
		     uint64_t *ret_p50, uint64_t *ret_p99)
{
	static struct core_hist all, one; /* main thread; 15 KiB each */

	core_hist_init(&all);
	for (unsigned int i = 0; run->svc && i < run->o->hsmmus; i++)
		if (!core_hsmmu_hist(run->svc, i, kind, &one))
			core_hist_merge(&all, &one);
	*ret_p50 = core_hist_quantile(&all, 0.5);
	if (ret_p99)
		*ret_p99 = core_hist_quantile(&all, 0.99);
}

static void svc_hists(struct kvmb_run *run, struct kvmb_result *res)
{
	svc_hist(run, CORE_HIST_CALL_NS, &res->call_p50, &res->call_p99);
	svc_hist(run, CORE_HIST_SYNC_NS, &res->ssync_p50, &res->ssync_p99);
	svc_hist(run, CORE_HIST_DIAG_TAKE_NS, &res->take_p50, NULL);
	svc_hist(run, CORE_HIST_DIAG_DONE_NS, &res->done_p50, NULL);
	svc_hist(run, CORE_HIST_DIAG_PASS_NS, &res->pass_p50, &res->pass_p99);
}

uint64_t kvmb_svc_cpu(struct kvmb_run *run, uint64_t *ret_sleeps,
		      uint64_t *ret_passes)
{
	uint64_t cpu = 0, passes = 0;

	*ret_sleeps = 0;
	for (unsigned int i = 0; run->svc && i < run->o->hsmmus; i++) {
		struct core_hsmmu_stats hs;

		if (!core_hsmmu_stats(run->svc, i, &hs)) {
			cpu += hs.worker_cpu_ns + hs.issuer_cpu_ns;
			*ret_sleeps += hs.sleeps;
			passes += hs.passes;
		}
	}
	if (ret_passes)
		*ret_passes = passes;
	return cpu;
}

static void gate_open(struct kvmb_run *run, int go)
{
	pthread_mutex_lock(&run->gate_lock);
	run->go = go;
	pthread_cond_broadcast(&run->gate);
	pthread_mutex_unlock(&run->gate_lock);
}

/*
 * Join every started vCPU thread; kick the stragglers after 10 s (60 s
 * with -k). A kicked vCPU returns -EINTR with no message of its own: say
 * here that it was stuck, and where (its exits tell a CONS poll that never
 * saw its SYNC from a PROD or CMDQV handler that never returned).
 */
static void join_all(struct kvmb_run *run, unsigned int started)
{
	const struct kvmb_opts *o = run->o;
	struct timespec dl;
	unsigned int n = 0, secs;
	bool kicked = false;

	clock_gettime(CLOCK_REALTIME, &dl);
	secs = KVMB_STUCK_NS / 1000000000u;
	if (o->syncs)
		secs += 50; /* the guests stop on their own */
	dl.tv_sec += secs;
	for (unsigned int v = 0; v < o->vms; v++)
		for (unsigned int k = 0; k < o->vcpus && n < started;
		     k++, n++) {
			struct kvmb_vcpu *vc = &run->vms[v].vc[k];

			if (pthread_timedjoin_np(vc->th, NULL, &dl)) {
				for (unsigned int w = 0; w < o->vms; w++)
					for (unsigned int j = 0; j < o->vcpus;
					     j++)
						kvmh_vcpu_kick(
							&run->vms[w].vc[j].c);
				kicked = true;
				pthread_join(vc->th, NULL);
			}
		}
	n = 0;
	for (unsigned int v = 0; v < o->vms && kicked; v++)
		for (unsigned int k = 0; k < o->vcpus && n < started;
		     k++, n++) {
			struct kvmb_vcpu *vc = &run->vms[v].vc[k];
			const struct kvmh_exits *x = &vc->c.exits;

			if (vc->rc != -EINTR || vc->err[0])
				continue;
			snprintf(vc->err, sizeof(vc->err),
				 "VM %u vCPU %u: stuck, kicked after %u s "
				 "(%llu batches, %llu MMIO reads, %llu writes)",
				 v, k, secs, (unsigned long long)vc->batches,
				 (unsigned long long)x->mmio_read,
				 (unsigned long long)x->mmio_write);
		}
}

/* Sum the vCPUs into @res (after the join). */
static void collect(struct kvmb_run *run, struct kvmb_result *res)
{
	const struct kvmb_opts *o = run->o;

	for (unsigned int v = 0; v < o->vms; v++) {
		struct kvmb_vm *vm = &run->vms[v];

		res->msi_writes += vm->msi_writes;
		res->msi_cpu_ns += vm->msi_cpu_ns;
		if (vm->msi_rc && !res->errmsg[0]) {
			snprintf(res->errmsg, sizeof(res->errmsg),
				 "VM %u: MSI completion thread: %s", v,
				 strerror(-vm->msi_rc));
			res->err = vm->msi_rc;
		}
		for (unsigned int k = 0; k < o->vcpus; k++) {
			struct kvmb_vcpu *vc = &vm->vc[k];
			uint64_t base = KG_VCPU(k);

			core_hist_merge(&res->lat, &vc->lat);
			core_hist_merge(&res->prod_h, &vc->prod_h);
			core_hist_merge(&res->cons_h, &vc->cons_h);
			res->cmds += vc->cmds;
			res->fwd += vc->fwd;
			res->syncs += vc->syncs;
			res->batches += vc->batches;
			res->checked += vc->checked;
			res->stale += vc->stale;
			res->handler_ns += vc->handler_ns;
			res->prod_ns += vc->prod_ns;
			res->cons_ns += vc->cons_ns;
			res->vcpu_cpu_ns += vc->cpu_ns;
			res->exits.mmio_write += vc->c.exits.mmio_write;
			res->exits.mmio_read += vc->c.exits.mmio_read;
			res->exits.other += vc->c.exits.other;
			res->exits.intr += vc->c.exits.intr;
			res->exits.runs += vc->c.exits.runs;
			if (!vc->rc && res->exits.mmio_write)
				res->exits.mmio_write--; /* the DONE store */
			/* vcmdq: setup's exits apart from the measured ones. */
			res->setup_exits.mmio_write +=
				vc->setup_exits.mmio_write;
			res->setup_exits.mmio_read += vc->setup_exits.mmio_read;
			res->setup_exits.other += vc->setup_exits.other;
			res->setup_exits.intr += vc->setup_exits.intr;
			res->exits.mmio_write -= vc->setup_exits.mmio_write;
			res->exits.mmio_read -= vc->setup_exits.mmio_read;
			res->exits.other -= vc->setup_exits.other;
			res->exits.intr -= vc->setup_exits.intr;
			res->guest_cmds +=
				*kvmb_ram64(&vm->kvm, base + KG_V_CMDS);
			res->guest_batches +=
				*kvmb_ram64(&vm->kvm, base + KG_V_BATCHES);
			res->guest_syncs_seen +=
				*kvmb_ram64(&vm->kvm, base + KG_V_LAT_SEQ);
			res->busy_ns += kvmb_ticks_ns(
				run, *kvmb_ram64(&vm->kvm, base + KG_V_BUSY));
			res->spin_ns += kvmb_ticks_ns(
				run, *kvmb_ram64(&vm->kvm, base + KG_V_SPIN));
			/* CPL0 would run emulated, ~1000x slower here: a
			 * setup that lost CPL3 must not pass as a result. */
			if (!vc->rc &&
			    (*kvmb_ram64(&vm->kvm, base + KG_V_CS) & 3) != 3) {
				vc->rc = -EPERM;
				snprintf(
					vc->err, sizeof(vc->err),
					"vCPU %u ran at CPL %u, not 3", k,
					(unsigned int)(*kvmb_ram64(
							       &vm->kvm,
							       base + KG_V_CS) &
						       3));
			}
			if ((vc->rc || vc->err[0]) && !res->errmsg[0]) {
				/* Every error path sets vc->err; this is
				 * the net under a new one that does not. */
				if (vc->err[0])
					snprintf(res->errmsg,
						 sizeof(res->errmsg), "%s",
						 vc->err);
				else
					snprintf(res->errmsg,
						 sizeof(res->errmsg),
						 "VM %u vCPU %u: %s", v, k,
						 strerror(vc->rc ? -vc->rc :
								   EIO));
				res->err = vc->rc ? vc->rc : -EIO;
			}
		}
	}
}

/* Stop and join the MSI completion threads (after the vCPUs stopped). */
static void msi_stop_all(struct kvmb_run *run)
{
	for (unsigned int v = 0; v < run->o->vms; v++) {
		struct kvmb_vm *vm = &run->vms[v];

		if (!vm->msi_started)
			continue;
		pthread_mutex_lock(&vm->lock);
		vm->msi_stop = true;
		pthread_cond_broadcast(&vm->msi_cv);
		pthread_mutex_unlock(&vm->lock);
		pthread_join(vm->msi_th, NULL);
		vm->msi_started = false;
	}
}

/* Start the vCPU threads, run the measured window, stop, join. */
static int measure(struct kvmb_run *run, struct kvmb_result *res)
{
	const struct kvmb_opts *o = run->o;
	unsigned int started = 0, total = o->vms * o->vcpus;
	uint64_t t0, t1, s0, z0, z1;
	struct kvmb_sched sch0;
	int r = 0;

	for (unsigned int v = 0; v < o->vms && !r; v++)
		for (unsigned int k = 0; k < o->vcpus && !r; k++) {
			r = -pthread_create(&run->vms[v].vc[k].th, NULL,
					    vcpu_main, &run->vms[v].vc[k]);
			if (!r) {
				/* kvmb_sched_snap() counts them by name. */
				pthread_setname_np(run->vms[v].vc[k].th,
						   "kvm-vcpu");
				started++;
			}
		}
	/* offload + MSIPOLL: a completion thread per VM writes the MSIs. */
	for (unsigned int v = 0;
	     v < o->vms && !r && o->msipoll && run->mode == KVMB_OFFLOAD; v++) {
		r = -pthread_create(&run->vms[v].msi_th, NULL, kvmb_msi_main,
				    &run->vms[v]);
		run->vms[v].msi_started = !r;
	}
	/* vcmdq: the consumer answers the guests' enable handshake. */
	if (!r && run->mode == KVMB_VCMDQ)
		r = kvmv_start(run);
	if (r) {
		gate_open(run, -1);
		join_all(run, started);
		msi_stop_all(run);
		kvmv_stop(run);
		snprintf(res->errmsg, sizeof(res->errmsg),
			 "pthread_create failed after %u vCPU threads",
			 started);
		return r;
	}
	s0 = kvmb_svc_cpu(run, &z0, NULL);
	kvmb_sched_snap(&sch0);
	t0 = kvmb_now_ns();
	gate_open(run, 1);
	if (!o->syncs) {
		struct timespec ts = {
			.tv_sec = (time_t)o->duration,
			.tv_nsec = (long)((o->duration -
					   (double)(time_t)o->duration) *
					  1e9),
		};

		nanosleep(&ts, NULL);
		/* R_STOP: the guests poll KG_VM_STOP before each batch. */
		for (unsigned int v = 0; v < o->vms; v++)
			__atomic_store_n(kvmb_ram64(&run->vms[v].kvm,
						    KG_VM + KG_VM_STOP),
					 1, __ATOMIC_RELEASE);
	}
	/* Before the vCPU threads end (a batch-count run: after, so
	 * without them: kvmb_sched_delta() leaves them out). */
	if (!o->syncs)
		kvmb_sched_snap(&res->sched);
	join_all(run, total);
	t1 = kvmb_now_ns();
	if (o->syncs)
		kvmb_sched_snap(&res->sched);
	kvmb_sched_delta(&res->sched, &sch0);
	msi_stop_all(run);
	kvmv_stop(run);
	res->wall_s = (double)(t1 - t0) / 1e9;
	res->svc_cpu_ns = kvmb_svc_cpu(run, &z1, NULL) - s0;
	res->svc_sleeps = z1 - z0;
	res->has_svc = run->svc != NULL;
	svc_hists(run, res);
	collect(run, res);
	if (run->mode == KVMB_VCMDQ)
		kvmv_collect(run, res);
	return res->err;
}

/*
 * --kvm-pin: the first half of the CPUs this process may use for the vCPU
 * threads, the rest (a CPU list for core_config.cpus) for the workers.
 */
static int pin_split(struct kvmb_run *run)
{
	cpu_set_t all;
	int n, k = 0;
	size_t len = 0;

	if (sched_getaffinity(0, sizeof(all), &all))
		return -errno;
	n = CPU_COUNT(&all);
	if (n < 2)
		return -EINVAL;
	CPU_ZERO(&run->vcpu_cpus);
	run->svc_cpus[0] = '\0';
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &all))
			continue;
		if (k++ < n / 2)
			CPU_SET(c, &run->vcpu_cpus);
		else if (len + 12 < sizeof(run->svc_cpus))
			len += (size_t)snprintf(run->svc_cpus + len,
						sizeof(run->svc_cpus) - len,
						"%s%d", len ? "," : "", c);
	}
	run->pin = true;
	return 0;
}

static int run_mode(const struct kvmb_opts *o, const struct wl *w,
		    enum kvmb_mode mode, int kvm_fd, uint64_t hz,
		    struct kvmb_result *res)
{
	struct kvmb_run run = { .o = o,
				.w = w,
				.mode = mode,
				.kvm_fd = kvm_fd,
				.tsc_hz = hz,
				.gate_lock = PTHREAD_MUTEX_INITIALIZER,
				.gate = PTHREAD_COND_INITIALIZER };
	int r;

	memset(res, 0, sizeof(*res));
	res->ran = true;
	res->verified = o->verify;
	res->hsmmus_used = o->vms < o->hsmmus ? o->vms : o->hsmmus;
	if (o->pin && (mode == KVMB_OFFLOAD || mode == KVMB_VCMDQ)) {
		r = pin_split(&run);
		if (r) {
			snprintf(res->errmsg, sizeof(res->errmsg),
				 "--kvm-pin: needs 2 CPUs or more");
			goto out;
		}
	}
	core_hist_init(&res->lat);
	core_hist_init(&res->prod_h);
	core_hist_init(&res->cons_h);
	run.vms = calloc(o->vms, sizeof(*run.vms));
	if (!run.vms) {
		r = -ENOMEM;
		goto out;
	}
	for (unsigned int v = 0; v < o->vms; v++) {
		struct kvmb_vm *vm = &run.vms[v];

		vm->run = &run;
		bench_ring_reset(&vm->ring);
		pthread_mutex_init(&vm->lock, NULL);
		vm->lock_ok = true;
		pthread_cond_init(&vm->msi_cv, NULL);
		vm->msi_cv_ok = true;
	}
	r = mode == KVMB_OFFLOAD || mode == KVMB_VCMDQ ?
		    setup_offload(&run, res->errmsg, sizeof(res->errmsg)) :
		    setup_qemu(&run, res->errmsg, sizeof(res->errmsg));
	for (unsigned int v = 0; !r && v < o->vms; v++)
		r = setup_guest(&run, v, res->errmsg, sizeof(res->errmsg));
	if (!r && mode == KVMB_VCMDQ)
		r = kvmv_setup(&run, res->errmsg, sizeof(res->errmsg));
	if (!r)
		r = measure(&run, res);
out:
	teardown(&run, res);
	res->err = r;
	if (r && !res->errmsg[0])
		snprintf(res->errmsg, sizeof(res->errmsg), "%s", strerror(-r));
	return r;
}

int kvmb_run(const struct kvmb_opts *o, const struct wl *w)
{
	struct kvmb_result res[KVMB_NMODES];
	char err[256] = "";
	bool fail = false;
	uint64_t hz;
	int kvm_fd, r;

	if (o->vms > KVMB_MAX_VMS || o->vcpus > KG_MAX_VCPUS ||
	    o->hsmmus > KVMB_MAX_HSMMU || o->vcpus > wl_max_streams(w)) {
		fprintf(stderr,
			"smmu-bench: --vcpu kvm: at most %u VMs, %u vCPUs "
			"per VM (%u with %s), %u host SMMUs\n",
			KVMB_MAX_VMS, KG_MAX_VCPUS, wl_max_streams(w), w->name,
			KVMB_MAX_HSMMU);
		return 2;
	}
	r = kvmh_open(&kvm_fd, err, sizeof(err));
	if (r) {
		fprintf(stderr, "smmu-bench: --vcpu kvm: no usable KVM: %s\n",
			err);
		return KVMB_EXIT_NO_KVM;
	}
	hz = kvmh_tsc_hz();
	memset(res, 0, sizeof(res));
	for (int m = 0; m < KVMB_NMODES; m++) {
		if (!o->modes[m])
			continue;
		if (run_mode(o, w, (enum kvmb_mode)m, kvm_fd, hz, &res[m]) ||
		    res[m].stale)
			fail = true;
	}
	close(kvm_fd);
	kvmb_print(o, w, hz, res);
	if (o->json) {
		r = kvmb_write_json(o->json, o, w, hz, res);
		if (r) {
			fprintf(stderr, "smmu-bench: %s: %s\n", o->json,
				strerror(-r));
			fail = true;
		}
	}
	return fail ? 1 : 0;
}
