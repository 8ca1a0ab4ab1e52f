/* SPDX-License-Identifier: MIT */
/*
 * smmu-bench qemu and qemu-batched: today's VMM path. Every simulated vCPU
 * is a thread that issues the ioctls itself, under its vSMMU's CMDQ lock,
 * as QEMU's accel path does.
 */
#include <errno.h>
#include <stdlib.h>

#include "bench/smmu-bench_i.h"

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
		if (sb_fault_drop(o, c))
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

void *sb_qemu_main(void *arg)
{
	struct worker *wk = arg;
	struct run *run = wk->run;
	struct vm *vm = &run->vms[wk->id / run->o->vcpus];
	struct slot *s = &vm->slot[wk->id % run->o->vcpus];
	struct cmdq_cmd fwd[WL_MAX_BATCH];
	uint32_t chunk[WL_MAX_BATCH + 1];
	uint64_t cpu0;

	if (!sb_run_gate(run, GO_ALL))
		return NULL;
	cpu0 = sb_thread_cpu_ns();
	if (run->o->rate)
		sb_slot_schedule(run->o, s, run->o->seed ^ wk->id, sb_now_ns());
	while (!sb_stopping(run) && !sb_slot_finished(run, s)) {
		uint32_t nf = 0, nchunk, done = 0;
		uint64_t t0, t1, lat0;
		int rc = 0;

		if (run->o->rate) {
			t0 = sb_now_ns();
			if (t0 < s->t_sched) {
				sb_sleep_until(s->t_sched);
				continue; /* re-check stop */
			}
			sb_slot_start(run->o, &wk->c, s, t0);
		}
		wl_next(&s->ws, &s->b);
		if (sb_verifying(run) && wl_fill(&s->ws, vm->vi, &s->b)) {
			snprintf(wk->err, sizeof(wk->err),
				 "oracle fill failed");
			wk->c.errors++;
			break;
		}
		nchunk = batch_chunks(run->o, &wk->c, &s->b, fwd, &nf, chunk);
		/* The trapped PROD write: QEMU holds the vSMMU's queue lock
		 * while it walks the commands. */
		t0 = sb_now_ns();
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
		t1 = sb_now_ns();
		if (rc) {
			snprintf(wk->err, sizeof(wk->err),
				 "iofd_invalidate: %s (done %u)", strerror(-rc),
				 done);
			wk->c.errors++;
			break;
		}
		sb_count_batch(&wk->c, &s->b, t1 - t0);
		/* The SYNC completed inside the trap: the guest was blocked
		 * exactly as long as its vCPU thread was held. */
		wk->c.blocked_ns += t1 - t0;
		lat0 = run->o->rate ? s->t_lat0 : t0;
		if (s->b.last_sync >= 0)
			sb_count_sync(wk, s, vm, t1 - lat0);
	}
	wk->c.cpu_ns = sb_thread_cpu_ns() - cpu0;
	return NULL;
}

struct qemu_env {
	struct iofd_backend *b;
	struct iofd_hsmmu *h[MAX_HSMMU];
	uint32_t vdev[MAX_IDLE_RINGS][WL_MAX_SIDS];
};

int sb_qemu_setup(struct run *run, struct qemu_env **ret_env, char *err,
		  size_t errlen)
{
	const struct opts *o = run->o;
	struct iofd_sim_config sim;
	struct iofd_config cfg = { .kind = o->backend, .sim = &sim };
	struct iofd_viommu_spec spec = { .iommufd = -1 };
	struct qemu_env *env = calloc(1, sizeof(*env));
	int r;

	*ret_env = env;
	if (!env)
		return -ENOMEM;
	sb_sim_config(o, &sim);
	r = iofd_backend_new(&cfg, &env->b);
	if (r) {
		snprintf(err, errlen, "iofd_backend_new: %s", strerror(-r));
		return r;
	}
	for (unsigned int i = 0; i < o->hsmmus; i++) {
		r = iofd_hsmmu_open(env->b, sb_hsmmu_names[i], &env->h[i]);
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
			r = iofd_vdev_alloc(vm->vi, sb_vm_dev_id(v, k),
					    run->w->sids[k], &env->vdev[v][k]);
		if (r) {
			snprintf(err, errlen, "vm %u: bind/vdev: %s", v,
				 strerror(-r));
			return r;
		}
	}
	return 0;
}

void sb_qemu_teardown(struct run *run, struct qemu_env *env, struct result *res)
{
	const struct opts *o = run->o;

	for (unsigned int v = 0; v < o->nall; v++) {
		struct vm *vm = &run->vms[v];

		if (!vm->vi)
			continue;
		sb_viommu_add(o, res, v, vm->vi);
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
		sb_backend_add(res, &hc);
		iofd_hsmmu_close(env->h[i]);
	}
	iofd_backend_free(env->b);
	free(env);
}
