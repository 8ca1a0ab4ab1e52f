/* SPDX-License-Identifier: MIT */
/*
 * smmu-bench offload: the embedded service (core/core.h). A few producer
 * threads each drive many VMs without blocking: push and publish every
 * idle vCPU's next batch, then collect completions. Also --idle, the cost
 * of attached but idle rings.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench/smmu-bench_i.h"

/* No completion for this long: the run fails instead of hanging. */
#define STUCK_NS (UINT64_C(10) * 1000000000u)

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
			sb_slot_start(wk->run->o, &wk->c, s, sb_now_ns());
		wl_next(&s->ws, &s->b);
		if (sb_verifying(wk->run) && wl_fill(&s->ws, vm->vi, &s->b))
			return -ENOMEM;
		s->have_batch = true;
	}
	t0 = sb_now_ns();
	/* The guest's PROD write began at the first attempt: a full ring
	 * keeps it blocked until a retry succeeds. */
	if (!s->t_prod)
		s->t_prod = t0;
	for (uint32_t i = 0; i < s->b.n; i++) {
		if (cmdq_classify(&s->b.cmd[i]) != CMDQ_CLASS_SYNC &&
		    sb_fault_drop(wk->run->o, &wk->c))
			continue;
		if ((int)i == s->b.last_sync)
			last = n;
		cmdq_cmd_to_le(&s->b.cmd[i], &e[n++]);
	}
	rc = ring_prod_push(&vm->ring.p, e, n, &first);
	if (rc == -EAGAIN)
		return 1;
	if (rc)
		return rc;
	s->have_batch = false;
	t1 = sb_now_ns();
	sb_count_batch(&wk->c, &s->b, t1 - t0);
	if (s->b.last_sync >= 0) {
		/* Blocked until the SYNC is seen complete: sb_count_sync(). */
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

void sb_offload_fail(struct worker *wk, struct vm *vm, const char *what, int rc)
{
	uint32_t err = 0, where = 0;

	if (!ring_prod_halt_info(&vm->ring.p, &err, &where))
		snprintf(wk->err, sizeof(wk->err),
			 "%s: ring %u halted, err %#x at %u", what, vm->ring_id,
			 err, where);
	else
		snprintf(wk->err, sizeof(wk->err),
			 "%s: %s (ring %u: prod %u cons %u svc_flags %#x "
			 "prod_flags %#x)",
			 what, strerror(rc < 0 ? -rc : rc), vm->ring_id,
			 __atomic_load_n(&vm->ring.p.hdr->prod,
					 __ATOMIC_RELAXED),
			 __atomic_load_n(&vm->ring.p.hdr->cons,
					 __ATOMIC_RELAXED),
			 __atomic_load_n(&vm->ring.p.hdr->svc_flags,
					 __ATOMIC_RELAXED),
			 __atomic_load_n(&vm->ring.p.hdr->prod_flags,
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

		while (!s->busy && !sb_slot_finished(run, s)) {
			if (o->rate && !s->have_batch && s->t_sched > now) {
				if (s->t_sched < *next_due)
					*next_due = s->t_sched;
				break;
			}
			rc = offload_push(wk, vm, s);
			if (rc < 0) {
				sb_offload_fail(wk, vm, "push", rc);
				return rc;
			}
			if (rc)
				break;
			pushed = true;
		}
	}
	if (!pushed)
		return 0;
	t0 = sb_now_ns();
	rc = ring_prod_publish(&vm->ring.p);
	t1 = sb_now_ns();
	if (rc) {
		sb_offload_fail(wk, vm, "publish", rc);
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
			if (ring_prod_done_upto(&vm->ring.p, s->idx)) {
				t = sb_now_ns();
				sb_count_sync(wk, s, vm, t - s->t_pub);
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
			if (!sb_slot_finished(run, &run->vms[v].slot[k]))
				return false;
	return true;
}

void *sb_offload_main(void *arg)
{
	struct worker *wk = arg;
	struct run *run = wk->run;
	const struct opts *o = run->o;
	uint64_t cpu0, last_progress;
	unsigned int idle = 0;

	if (!sb_run_gate(run, GO_ALL))
		return NULL;
	cpu0 = sb_thread_cpu_ns();
	last_progress = sb_now_ns();
	if (o->rate)
		for (unsigned int v = wk->id; v < o->nvs; v += run->nwk)
			for (unsigned int k = 0; k < o->vcpus; k++)
				sb_slot_schedule(
					o, &run->vms[v].slot[k],
					o->seed ^ ((uint64_t)v * o->vcpus + k),
					last_progress);
	for (;;) {
		bool stop = sb_stopping(run);
		uint64_t now = sb_now_ns(), next_due = UINT64_MAX;
		struct offload_poll p;
		int rc;

		for (unsigned int v = wk->id; v < o->nvs; v += run->nwk)
			if (offload_trap(wk, &run->vms[v], stop, now,
					 &next_due))
				goto out;
		offload_collect(wk, &p);
		if (p.progress) {
			idle = 0;
			last_progress = sb_now_ns();
			continue;
		}
		if (!p.any_busy) {
			/* Stopped, or every vCPU finished its --syncs. */
			if (stop || (o->syncs && offload_all_finished(wk)))
				break;
			/* Open loop: nothing in flight until the next
			 * arrival; else the rings are full. */
			if (o->rate && next_due != UINT64_MAX)
				sb_sleep_until(next_due);
			else
				sched_yield();
			continue;
		}
		if (sb_now_ns() - last_progress > STUCK_NS) {
			sb_offload_fail(wk, p.oldest_vm,
					"no completion for 10 s", ETIMEDOUT);
			goto out;
		}
		/* Spin a little (completions come within microseconds under
		 * load), then sleep on the oldest SYNC's completion eventfd. */
		if (++idle < 64 ||
		    (o->rate && next_due < sb_now_ns() + 1500000u)) {
			sched_yield();
			continue;
		}
		idle = 0;
		rc = ring_prod_wait(&p.oldest_vm->ring.p, p.oldest->idx, 0, 1);
		if (rc && rc != -ETIMEDOUT) {
			sb_offload_fail(wk, p.oldest_vm, "wait", rc);
			goto out;
		}
	}
out:
	wk->c.cpu_ns = sb_thread_cpu_ns() - cpu0;
	return NULL;
}

/* Closes @vm's ring and forgets its vIOMMU (the service owned it). */
void sb_vm_ring_free(struct vm *vm)
{
	bench_ring_close(&vm->ring);
	vm->vi = NULL;
}

int sb_offload_setup(struct run *run, struct core_service **ret_svc, char *err,
		     size_t errlen)
{
	const struct opts *o = run->o;
	struct iofd_sim_config sim;
	struct core_config cfg = o->svc;
	struct core_vsmmu_spec spec = { .iommufd = -1 };
	struct core_service *svc = NULL;
	int r;

	cfg.backend.kind = o->backend;
	cfg.backend.sim = &sim;
	cfg.hsmmu_names = sb_hsmmu_names;
	cfg.n_hsmmu = o->hsmmus;
	sb_sim_config(o, &sim);
	r = core_service_new(&cfg, &svc);
	if (r) {
		snprintf(err, errlen, "core_service_new: %s", strerror(-r));
		return r;
	}
	*ret_svc = svc;
	for (unsigned int v = 0; v < o->nall; v++) {
		struct vm *vm = &run->vms[v];
		uint32_t vdev;

		r = core_vsmmu_create(svc, sb_hsmmu_names[v % o->hsmmus], &spec,
				      &vm->vsmmu);
		for (unsigned int k = 0; !r && k < run->w->nsids; k++)
			r = core_device_attach(svc, vm->vsmmu,
					       sb_vm_dev_id(v, k),
					       run->w->sids[k], &vdev);
		if (r) {
			snprintf(err, errlen, "vm %u: vsmmu/device: %s", v,
				 strerror(-r));
			return r;
		}
		vm->vi = core_vsmmu_viommu(svc, vm->vsmmu);
		r = bench_ring_open(&vm->ring, o->ring_log2);
		if (!r)
			r = core_ring_attach(svc, vm->vsmmu, vm->ring.memfd,
					     vm->ring.db, vm->ring.cq,
					     &vm->ring_id);
		if (r) {
			snprintf(err, errlen, "vm %u: ring: %s", v,
				 strerror(-r));
			return r;
		}
	}
	return 0;
}

void sb_offload_teardown(struct run *run, struct core_service *svc,
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
			if (res->n_svc_hs < MAX_HSMMU)
				res->svc_hs[res->n_svc_hs++] = hs;
			res->svc_cpu_ns += hs.worker_cpu_ns + hs.issuer_cpu_ns;
			res->svc_ioctls += hs.ioctls;
			res->svc_sleeps += hs.sleeps;
			sb_backend_add(
				res,
				&(struct iofd_counters){
					.ioctls = hs.backend.ioctls,
					.cmds = hs.backend.cmds,
					.host_syncs = hs.backend.host_syncs,
					.errors = hs.backend.errors,
					.charged_ns = hs.backend.charged_ns,
				});
		}
		for (unsigned int v = 0; v < o->nall; v++)
			if (run->vms[v].vi)
				sb_viommu_add(o, res, v, run->vms[v].vi);
		/* Drains the rings: nothing is left in flight. */
		core_service_free(svc);
	}
	for (unsigned int v = 0; v < o->nall; v++)
		sb_vm_ring_free(&run->vms[v]);
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

int sb_run_idle(const struct opts *o, const struct wl *w)
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
		bench_ring_reset(&run.vms[v].ring);
	r = sb_offload_setup(&run, &svc, err, sizeof(err));
	for (unsigned int v = 0; !r && v < o->nvs; v++) {
		struct cmdq_cmd c = cmdq_build_sync(2, 3, 0xf, 0, 0);
		struct smmu_ring_entry e;
		uint32_t idx;

		cmdq_cmd_to_le(&c, &e);
		r = ring_prod_push(&run.vms[v].ring.p, &e, 1, &idx);
		if (!r)
			r = ring_prod_wait(&run.vms[v].ring.p, idx, 100000,
					   5000);
		if (r)
			snprintf(err, sizeof(err), "ring %u: first SYNC: %s", v,
				 strerror(-r));
	}
	if (!r) {
		/* Past every ring's poll window: the worker may sleep. */
		poll(NULL, 0, 100 + (int)(o->svc.poll_us / 1000));
		getrusage(RUSAGE_SELF, &ru0);
		t0 = sb_now_ns();
		c0 = svc_cpu(svc, o->hsmmus, &s0);
		poll(NULL, 0, (int)o->idle_ms);
		c1 = svc_cpu(svc, o->hsmmus, &s1);
		t1 = sb_now_ns();
		getrusage(RUSAGE_SELF, &ru1);
		printf("idle: %u rings on %u host SMMU%s (%s), poll_us %u, "
		       "%.3f s: service CPU %.3f ms = %.4f%% of one CPU; "
		       "worker sleeps %" PRIu64 "; process context switches "
		       "%ld voluntary, %ld involuntary\n",
		       o->nvs, o->hsmmus, o->hsmmus > 1 ? "s" : "",
		       core_service_loop_name(svc), o->svc.poll_us,
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
		sb_offload_teardown(&run, svc, &res);
	}
	free(run.vms);
	return r;
}
