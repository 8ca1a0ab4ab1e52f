/* SPDX-License-Identifier: MIT */
/*
 * smmu-bench offload --connect: the service is a running smmu-offloadd;
 * the rings are handed over with the client library and the daemon's
 * counters read before and after the measured window. Its sim oracle is
 * out of reach.
 */
#include <errno.h>
#include <stdlib.h>

#include "bench/smmu-bench_i.h"

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

int sb_connect_setup(struct run *run, struct smmu_client **ret_c,
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
						      sb_vm_dev_id(v, k),
						      run->w->sids[k], &vdev);
		if (!r)
			r = bench_ring_open(&vm->ring, o->ring_log2);
		if (!r)
			r = smmu_client_ring_attach(c, vm->vsmmu,
						    vm->ring.memfd, vm->ring.db,
						    vm->ring.cq, &vm->ring_id);
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

void sb_connect_teardown(struct run *run, struct smmu_client *c,
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
		sb_vm_ring_free(&run->vms[v]);
}
