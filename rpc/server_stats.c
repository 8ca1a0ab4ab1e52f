/* SPDX-License-Identifier: MIT */
/*
 * rpc server: what a caller may see. Hello's host SMMU list, GetStats and
 * List. An admin (root, the daemon's own uid) sees everything; any other
 * peer sees only the objects its own connection created, and of the
 * shared numbers only those that do not add up other VMs' activity (the
 * table is in docs/RPC.md, "Who sees what"). The connection, not the uid,
 * is the unit: several VMMs often run under one uid (libvirt's qemu user),
 * and one VM must not read another's vSIDs or counters.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "core/core.h"
#include "core/hist.h"
#include "core/stats.h"
#include "rpc/server_i.h"

/*
 * The host SMMUs: names and modes for everyone (a VMM needs them to
 * create a vSMMU); how many vSMMUs and rings each carries (other VMs)
 * only for an admin.
 */
int srv_fill_host_smmus(struct rpc_conn *c, struct reply *rp,
			SmmuOffload__HostSmmu ***ret_arr, size_t *ret_n)
{
	struct rpc_server *srv = c->srv;
	struct core_service_stats ss;
	SmmuOffload__HostSmmu **ptrs, *hs;
	char *names;
	int r;

	r = core_service_stats(srv->svc, &ss);
	if (r)
		return srv_fail(rp, -r, "service stats");
	ptrs = srv_reply_alloc(rp, ss.n_hsmmu * sizeof(*ptrs));
	hs = srv_reply_alloc(rp, ss.n_hsmmu * sizeof(*hs));
	names = srv_reply_alloc(rp, (size_t)ss.n_hsmmu * CORE_NAME_MAX);
	if (!ptrs || !hs || !names)
		return srv_fail(rp, ENOMEM, "host SMMU list");
	for (unsigned int i = 0; i < ss.n_hsmmu; i++) {
		struct core_hsmmu_stats hst;

		r = core_hsmmu_stats(srv->svc, i, &hst);
		if (r)
			return srv_fail(rp, -r, "host SMMU %u stats", i);
		memcpy(names + (size_t)i * CORE_NAME_MAX, hst.name,
		       CORE_NAME_MAX);
		names[(size_t)i * CORE_NAME_MAX + CORE_NAME_MAX - 1] = '\0';
		hs[i] = (SmmuOffload__HostSmmu)SMMU_OFFLOAD__HOST_SMMU__INIT;
		hs[i].name = names + (size_t)i * CORE_NAME_MAX;
		hs[i].loop = (char *)(hst.loop ? hst.loop : "");
		hs[i].issue_mode =
			(char *)(hst.issue_mode ? hst.issue_mode : "");
		hs[i].has_n_vsmmus = hs[i].has_n_rings = c->peer.admin;
		hs[i].n_vsmmus = hst.n_vsmmus;
		hs[i].n_rings = hst.n_rings;
		ptrs[i] = &hs[i];
	}
	*ret_arr = ptrs;
	*ret_n = ss.n_hsmmu;
	return 0;
}

/* Counter/label accumulation for GetStats. */
struct stats_out {
	struct reply *rp;
	SmmuOffload__Counter *c;
	SmmuOffload__Counter **cp;
	size_t nc, maxc;
	SmmuOffload__Label *l;
	SmmuOffload__Label **lp;
	size_t nl, maxl;
	char *names; /* the array elements' counter names */
	size_t names_used;
};

#define STATS_MAX_COUNTERS 48
#define STATS_MAX_LABELS 8
/* Room for the names of array elements ("halts_atc_inv_sync"). */
#define STATS_NAMES_BYTES 512

static void put_counter(struct stats_out *o, const char *name, uint64_t v)
{
	if (o->nc == o->maxc)
		return;
	o->c[o->nc] = (SmmuOffload__Counter)SMMU_OFFLOAD__COUNTER__INIT;
	o->c[o->nc].name = (char *)name;
	o->c[o->nc].value = v;
	o->cp[o->nc] = &o->c[o->nc];
	o->nc++;
}

static void put_label(struct stats_out *o, const char *name, const char *v)
{
	if (o->nl == o->maxl || !v)
		return;
	o->l[o->nl] = (SmmuOffload__Label)SMMU_OFFLOAD__LABEL__INIT;
	o->l[o->nl].name = (char *)name;
	o->l[o->nl].value = (char *)v;
	o->lp[o->nl] = &o->l[o->nl];
	o->nl++;
}

/*
 * Every GetStats number of @scope's table in @stats (a struct of that
 * scope), CORE_STAT_SHARED ones only if @all (an admin) or, with
 * CORE_STAT_OWN, as the caller put its own count in @stats; an array element is named KEY_LABELVALUE. -ENOSPC if the
 * names outgrow STATS_NAMES_BYTES (a table grew: raise it).
 */
static int put_table(struct stats_out *o, enum core_stat_scope scope,
		     const void *stats, bool all)
{
	size_t n;
	const struct core_stat_desc *t = core_stats_table(scope, &n);

	for (size_t k = 0; k < n; k++) {
		const struct core_stat_desc *d = &t[k];

		if (!d->key || d->kind == CORE_STAT_HISTOGRAM)
			continue;
		if (!all && (d->flags & CORE_STAT_SHARED) &&
		    !(d->flags & CORE_STAT_OWN))
			continue;
		if (d->n == 1 && !d->label_values) {
			put_counter(o, d->key, core_stat_value(d, stats, 0));
			continue;
		}
		for (unsigned int i = 0; i < d->n; i++) {
			size_t len =
				strlen(d->key) + strlen(d->label_values[i]) + 2;
			char *name = o->names + o->names_used;

			if (len > STATS_NAMES_BYTES - o->names_used)
				return -ENOSPC;
			snprintf(name, len, "%s_%s", d->key,
				 d->label_values[i]);
			o->names_used += len;
			put_counter(o, name, core_stat_value(d, stats, i));
		}
	}
	return 0;
}

/*
 * A histogram's summary, the same data as the metrics endpoint's
 * histograms: count, sum, p50/p99 (bucket upper edges, within 3.2%),
 * exact max. Missing (allocation failure) rather than wrong.
 */
static void put_hist(struct stats_out *o, struct core_service *svc,
		     unsigned int idx, const struct core_stat_desc *d)
{
	struct core_hist *h = malloc(sizeof(*h));

	if (!h)
		return;
	if (!core_hsmmu_hist(svc, idx, (enum core_hist_kind)d->off, h)) {
		put_counter(o, d->summary[0], h->count);
		put_counter(o, d->summary[1], h->sum);
		put_counter(o, d->summary[2], core_hist_quantile(h, 0.5));
		put_counter(o, d->summary[3], core_hist_quantile(h, 0.99));
		put_counter(o, d->summary[4], h->count ? h->max : 0);
	}
	free(h);
}

/* Service-wide: the caller's own object counts unless it is an admin. */
static int stats_service(struct rpc_conn *c, struct stats_out *o)
{
	struct rpc_server *srv = c->srv;
	struct core_service_stats s;
	int r = core_service_stats(srv->svc, &s);

	if (r)
		return r;
	if (!c->peer.admin) {
		s.n_vsmmus = c->n_vsmmus;
		s.n_rings = c->n_rings;
		s.n_devices = c->n_devs;
	}
	r = put_table(o, CORE_STAT_SERVICE, &s, c->peer.admin);
	if (r)
		return r;
	/* The server's own numbers: not core's, so not in its table. */
	if (c->peer.admin) {
		put_counter(o, "clients", srv->n_conns + srv->n_admin);
		put_counter(o, "admin_clients", srv->n_admin);
		put_counter(o, "clients_total", srv->conns_total);
		put_counter(o, "clients_refused", srv->conns_refused);
		put_counter(o, "hello_timeouts", srv->hello_timeouts);
		put_counter(o, "fd_exhausted", srv->fd_exhausted);
		put_counter(o, "requests", srv->requests);
		put_counter(o, "bad_requests", srv->bad_requests);
	}
	put_label(o, "version", PACKAGE_VERSION);
	put_label(o, "loop", s.loop);
	put_label(o, "backend", s.backend);
	put_label(o, "signal", s.signal);
	return 0;
}

/* One host SMMU: every number on it adds up every VM on it. */
static int stats_hsmmu(struct rpc_conn *c, uint32_t idx, char *name,
		       struct stats_out *o)
{
	struct rpc_server *srv = c->srv;
	const struct core_stat_desc *t;
	struct core_hsmmu_stats s;
	size_t n;
	int r;

	if (!c->peer.admin)
		return -EPERM;
	r = core_hsmmu_stats(srv->svc, idx, &s);
	if (r)
		return r;
	memcpy(name, s.name, CORE_NAME_MAX);
	name[CORE_NAME_MAX - 1] = '\0';
	put_label(o, "name", name);
	put_label(o, "loop", s.loop);
	put_label(o, "issue_mode", s.issue_mode);
	r = put_table(o, CORE_STAT_HSMMU, &s, true);
	if (r)
		return r;
	t = core_stats_table(CORE_STAT_HSMMU, &n);
	for (size_t k = 0; k < n; k++)
		if (t[k].kind == CORE_STAT_HISTOGRAM)
			put_hist(o, srv->svc, idx, &t[k]);
	return 0;
}

static int stats_vsmmu(struct rpc_conn *c, uint32_t id, char *name,
		       struct stats_out *o)
{
	struct core_vsmmu_stats s;
	int r = core_vsmmu_stats(c->srv->svc, id, &s);

	if (r)
		return r;
	memcpy(name, s.hsmmu, CORE_NAME_MAX);
	name[CORE_NAME_MAX - 1] = '\0';
	put_label(o, "hsmmu", name);
	return put_table(o, CORE_STAT_VSMMU, &s, true);
}

static int stats_ring(struct rpc_conn *c, uint32_t id, struct stats_out *o)
{
	struct core_ring_stats s;
	int r = core_ring_stats(c->srv->svc, id, &s);

	if (r)
		return r;
	return put_table(o, CORE_STAT_RING, &s, true);
}

static int stats_vcmdq(struct rpc_conn *c, uint32_t id, struct stats_out *o)
{
	struct core_vcmdq_stats s;
	uint64_t on = 0, halted = 0;
	int r = core_vcmdq_stats(c->srv->svc, id, &s);

	if (r)
		return r;
	for (uint32_t l = 0; l < s.nq; l++) {
		on += s.state[l] == CORE_VQ_ON;
		halted += s.state[l] == CORE_VQ_HALTED;
	}
	/* Derived from the per-queue states, not a field of the table. */
	put_counter(o, "queues_on", on);
	put_counter(o, "queues_halted", halted);
	return put_table(o, CORE_STAT_VCMDQ, &s, true);
}

int srv_do_get_stats(struct rpc_conn *c, const SmmuOffload__GetStats *m,
		     struct reply *rp)
{
	struct stats_out o = { .rp = rp };
	char *name;
	int r;

	o.maxc = STATS_MAX_COUNTERS;
	o.maxl = STATS_MAX_LABELS;
	o.c = srv_reply_alloc(rp, o.maxc * sizeof(*o.c));
	o.cp = srv_reply_alloc(rp, o.maxc * sizeof(*o.cp));
	o.l = srv_reply_alloc(rp, o.maxl * sizeof(*o.l));
	o.lp = srv_reply_alloc(rp, o.maxl * sizeof(*o.lp));
	name = srv_reply_alloc(rp, CORE_NAME_MAX + STATS_NAMES_BYTES);
	if (!o.c || !o.cp || !o.l || !o.lp || !name)
		return srv_fail(rp, ENOMEM, "GetStats");
	o.names = name + CORE_NAME_MAX;

	switch (m->scope) {
	case SMMU_OFFLOAD__STATS_SCOPE__STATS_SCOPE_SERVICE:
		r = stats_service(c, &o);
		break;
	case SMMU_OFFLOAD__STATS_SCOPE__STATS_SCOPE_HOST_SMMU:
		r = stats_hsmmu(c, m->id, name, &o);
		if (r == -EPERM)
			return srv_fail(
				rp, EPERM,
				"GetStats host SMMU %u: its counters add up every VM on it (admin only)",
				m->id);
		break;
	case SMMU_OFFLOAD__STATS_SCOPE__STATS_SCOPE_VSMMU:
		/* Another connection's vSMMU: EPERM (admins see all). */
		if (!c->peer.admin) {
			r = srv_check_vsmmu(c, rp, m->id);
			if (r)
				return r;
		}
		r = stats_vsmmu(c, m->id, name, &o);
		break;
	case SMMU_OFFLOAD__STATS_SCOPE__STATS_SCOPE_RING:
		if (!c->peer.admin) {
			r = srv_check_ring(c, rp, m->id);
			if (r)
				return r;
		}
		r = stats_ring(c, m->id, &o);
		break;
	case SMMU_OFFLOAD__STATS_SCOPE__STATS_SCOPE_VCMDQ:
		if (!c->peer.admin) {
			r = srv_check_vcmdq(c, rp, m->id);
			if (r)
				return r;
		}
		r = stats_vcmdq(c, m->id, &o);
		break;
	default:
		return srv_fail(rp, EOPNOTSUPP, "GetStats scope %d",
				(int)m->scope);
	}
	if (r)
		return srv_fail(rp, -r, "GetStats scope %d id %u",
				(int)m->scope, m->id);
	rp->stats.scope = m->scope;
	rp->stats.has_id = true;
	rp->stats.id = m->id;
	rp->stats.counters = o.cp;
	rp->stats.n_counters = o.nc;
	rp->stats.labels = o.lp;
	rp->stats.n_labels = o.nl;
	rp->resp.result_case = SMMU_OFFLOAD__RESPONSE__RESULT_GET_STATS;
	rp->resp.get_stats = &rp->stats;
	return 0;
}

/*
 * The vSMMU ids List reports: every one (or @filter) for an admin, the
 * connection's own (or @filter if it is one of them) for anyone else.
 */
static int list_vsmmu_ids(struct rpc_conn *c, uint32_t filter, struct reply *rp,
			  uint32_t *vids, uint32_t *ret_n)
{
	struct core_vsmmu_stats vs;
	uint32_t total, n = 0;
	int r;

	if (filter) {
		if (!c->peer.admin)
			return srv_check_vsmmu(c, rp, filter);
		r = core_vsmmu_stats(c->srv->svc, filter, &vs);
		if (r)
			return srv_fail(rp, -r, "List vSMMU %u", filter);
		vids[0] = filter;
		*ret_n = 1;
		return 0;
	}
	if (!c->peer.admin) {
		for (unsigned int i = 0; i < c->n_vsmmus && n < RPC_LIST_MAX;
		     i++)
			vids[n++] = c->vsmmus[i];
		rp->list.truncated = c->n_vsmmus > n;
		*ret_n = n;
		return 0;
	}
	r = core_list_vsmmus(c->srv->svc, vids, RPC_LIST_MAX, &total);
	if (r)
		return srv_fail(rp, -r, "List");
	*ret_n = total < RPC_LIST_MAX ? total : RPC_LIST_MAX;
	rp->list.truncated = total > RPC_LIST_MAX;
	return 0;
}

/* The ring ids: every one (on @filter) for an admin, else the caller's. */
static int list_ring_ids(struct rpc_conn *c, uint32_t filter, struct reply *rp,
			 uint32_t *rids, uint32_t *ret_n)
{
	uint32_t total, n = 0;
	int r;

	if (!c->peer.admin) {
		for (unsigned int i = 0; i < c->n_rings; i++) {
			if (filter && c->rings[i].vsmmu_id != filter)
				continue;
			if (n == RPC_LIST_MAX) {
				rp->list.truncated = true;
				break;
			}
			rids[n++] = c->rings[i].id;
		}
		*ret_n = n;
		return 0;
	}
	r = core_list_rings(c->srv->svc, filter, rids, RPC_LIST_MAX, &total);
	if (r)
		return srv_fail(rp, -r, "List rings");
	*ret_n = total < RPC_LIST_MAX ? total : RPC_LIST_MAX;
	if (total > RPC_LIST_MAX)
		rp->list.truncated = true;
	return 0;
}

/* A vCMDQ queue's state in the reply (enum core_vq_state -> proto). */
static SmmuOffload__VcmdqQueueState vq_state(uint8_t s)
{
	switch (s) {
	case CORE_VQ_OFF:
		return SMMU_OFFLOAD__VCMDQ_QUEUE_STATE__VCMDQ_QUEUE_OFF;
	case CORE_VQ_ON:
		return SMMU_OFFLOAD__VCMDQ_QUEUE_STATE__VCMDQ_QUEUE_ON;
	case CORE_VQ_DRAINING:
		return SMMU_OFFLOAD__VCMDQ_QUEUE_STATE__VCMDQ_QUEUE_DRAINING;
	case CORE_VQ_HALTED:
		return SMMU_OFFLOAD__VCMDQ_QUEUE_STATE__VCMDQ_QUEUE_HALTED;
	default:
		return SMMU_OFFLOAD__VCMDQ_QUEUE_STATE__VCMDQ_QUEUE_STATE_UNSET;
	}
}

/*
 * The reply's entries of vCMDQ @id's queues: @q[0..nq) into the budget
 * @qi/@qp (*@used of RPC_LIST_MAX taken so far); the halted count from
 * the same snapshot. Queues beyond the budget are left out (truncated).
 */
static void list_vcmdq_queues(struct reply *rp, SmmuOffload__VcmdqInfo *vi,
			      const struct core_vq_info *q, unsigned int nq,
			      SmmuOffload__VcmdqQueueInfo *qi,
			      SmmuOffload__VcmdqQueueInfo **qp, uint32_t *used)
{
	vi->queues = qp + *used;
	for (unsigned int l = 0; l < nq; l++) {
		SmmuOffload__VcmdqQueueInfo *e = &qi[*used];

		vi->halted += q[l].state == CORE_VQ_HALTED;
		if (*used == RPC_LIST_MAX) {
			rp->list.truncated = true;
			continue;
		}
		*e = (SmmuOffload__VcmdqQueueInfo)
			SMMU_OFFLOAD__VCMDQ_QUEUE_INFO__INIT;
		e->has_lidx = e->has_state = e->has_ready = e->has_err =
			e->has_base_set = e->has_prod = e->has_cons = true;
		e->lidx = l;
		e->state = vq_state(q[l].state);
		e->ready = q[l].ready;
		e->err = q[l].err;
		e->base_set = q[l].base_set;
		e->has_base_gpa = e->has_log2size = q[l].base_set;
		e->base_gpa = q[l].base_gpa;
		e->log2size = q[l].log2size;
		e->prod = q[l].prod;
		e->cons = q[l].cons;
		qp[(*used)++] = e;
		vi->n_queues++;
	}
}

/* The vCMDQs of the List reply: every one (on @filter) for an admin,
 * else the caller's; each with its queues, RPC_LIST_MAX queues in all. */
static int list_vcmdqs(struct rpc_conn *c, uint32_t filter, struct reply *rp)
{
	/* One block: ids, infos, pointers, queue infos, queue pointers. */
	uint8_t *blk = srv_reply_alloc(
		rp, RPC_LIST_MAX *
			    (sizeof(uint32_t) + sizeof(SmmuOffload__VcmdqInfo) +
			     sizeof(SmmuOffload__VcmdqInfo *) +
			     sizeof(SmmuOffload__VcmdqQueueInfo) +
			     sizeof(SmmuOffload__VcmdqQueueInfo *)));
	struct core_vq_info q[CORE_VCMDQ_MAX_QUEUES];
	SmmuOffload__VcmdqQueueInfo *qi, **qp;
	SmmuOffload__VcmdqInfo *vi, **vp;
	uint32_t *ids, n = 0, total, used = 0;

	if (!blk)
		return srv_fail(rp, ENOMEM, "List");
	/* Pointer-aligned pieces first, the ids (4 bytes each) last. */
	vi = (SmmuOffload__VcmdqInfo *)(void *)blk;
	vp = (SmmuOffload__VcmdqInfo **)(void *)(vi + RPC_LIST_MAX);
	qi = (SmmuOffload__VcmdqQueueInfo *)(void *)(vp + RPC_LIST_MAX);
	qp = (SmmuOffload__VcmdqQueueInfo **)(void *)(qi + RPC_LIST_MAX);
	ids = (uint32_t *)(void *)(qp + RPC_LIST_MAX);
	if (c->peer.admin) {
		if (core_list_vcmdqs(c->srv->svc, filter, ids, RPC_LIST_MAX,
				     &total))
			total = 0;
		n = total < RPC_LIST_MAX ? total : RPC_LIST_MAX;
		if (total > RPC_LIST_MAX)
			rp->list.truncated = true;
	} else {
		for (unsigned int i = 0; i < c->n_vcmdqs && n < RPC_LIST_MAX;
		     i++)
			if (!filter || c->vcmdqs[i].vsmmu_id == filter)
				ids[n++] = c->vcmdqs[i].id;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct core_vcmdq_stats s;
		size_t k = rp->list.n_vcmdqs;
		unsigned int nq;

		/* Gone meanwhile: skip it. */
		if (core_vcmdq_stats(c->srv->svc, ids[i], &s) ||
		    core_vcmdq_queues(c->srv->svc, ids[i], q,
				      CORE_VCMDQ_MAX_QUEUES, &nq))
			continue;
		vi[k] = (SmmuOffload__VcmdqInfo)SMMU_OFFLOAD__VCMDQ_INFO__INIT;
		vi[k].id = ids[i];
		vi[k].has_vsmmu_id = vi[k].has_nq = vi[k].has_halted =
			vi[k].has_owned = true;
		vi[k].vsmmu_id = s.vsmmu_id;
		vi[k].nq = nq;
		list_vcmdq_queues(rp, &vi[k], q, nq, qi, qp, &used);
		vi[k].owned = srv_conn_find_vcmdq(c, ids[i]) >= 0;
		vp[k] = &vi[k];
		rp->list.n_vcmdqs++;
	}
	rp->list.vcmdqs = vp;
	return 0;
}

/*
 * The guest RAM regions of listed vSMMU @vid (@owned: the caller's) into
 * @gi/@gp, RPC_LIST_MAX in all. A table that kept changing while it was
 * read is left out and marks the reply truncated (ask again).
 */
static void list_gmem(struct core_service *svc, struct reply *rp, uint32_t vid,
		      bool owned, SmmuOffload__GuestMemoryInfo *gi,
		      SmmuOffload__GuestMemoryInfo **gp)
{
	struct core_gmem_info g[CORE_GMEM_MAX_REGIONS];
	unsigned int n;
	size_t k;
	int r = core_list_gmem(svc, vid, g, CORE_GMEM_MAX_REGIONS, &n);

	if (r) {
		/* -ENOENT: destroyed since it was listed: nothing to show. */
		if (r == -EAGAIN)
			rp->list.truncated = true;
		return;
	}
	for (unsigned int i = 0; i < n && i < CORE_GMEM_MAX_REGIONS; i++) {
		k = rp->list.n_guest_memory;
		if (k == RPC_LIST_MAX) {
			rp->list.truncated = true;
			return;
		}
		gi[k] = (SmmuOffload__GuestMemoryInfo)
			SMMU_OFFLOAD__GUEST_MEMORY_INFO__INIT;
		gi[k].has_vsmmu_id = gi[k].has_gpa = gi[k].has_size =
			gi[k].has_offset = gi[k].has_owned = true;
		gi[k].vsmmu_id = vid;
		gi[k].gpa = g[i].gpa;
		gi[k].size = g[i].size;
		gi[k].offset = g[i].offset;
		gi[k].owned = owned;
		gp[k] = &gi[k];
		rp->list.n_guest_memory++;
	}
}

int srv_do_list(struct rpc_conn *c, const SmmuOffload__List *m,
		struct reply *rp)
{
	struct core_service *svc = c->srv->svc;
	uint32_t filter = m->has_vsmmu_id ? m->vsmmu_id : 0;
	uint32_t *vids, *rids, nv = 0, nr = 0, nd = 0;
	SmmuOffload__VsmmuInfo *vi, **vp;
	SmmuOffload__RingInfo *ri, **rpp;
	SmmuOffload__DeviceInfo *di, **dp;
	SmmuOffload__GuestMemoryInfo *gi, **gp;
	struct core_device_info *devs;
	char *names;
	int r;

	vids = srv_reply_alloc(rp, RPC_LIST_MAX * sizeof(*vids));
	rids = srv_reply_alloc(rp, RPC_LIST_MAX * sizeof(*rids));
	/* One block for the three info arrays and the pointer arrays. */
	vi = srv_reply_alloc(rp, RPC_LIST_MAX * (sizeof(*vi) + sizeof(*vp) +
						 sizeof(*ri) + sizeof(*rpp) +
						 sizeof(*di) + sizeof(*dp) +
						 sizeof(*devs)));
	names = srv_reply_alloc(rp, (size_t)RPC_LIST_MAX * CORE_NAME_MAX);
	gi = srv_reply_alloc(rp, RPC_LIST_MAX * (sizeof(*gi) + sizeof(*gp)));
	if (!vids || !rids || !vi || !names || !gi)
		return srv_fail(rp, ENOMEM, "List");
	gp = (SmmuOffload__GuestMemoryInfo **)(void *)(gi + RPC_LIST_MAX);
	vp = (SmmuOffload__VsmmuInfo **)(vi + RPC_LIST_MAX);
	ri = (SmmuOffload__RingInfo *)(vp + RPC_LIST_MAX);
	rpp = (SmmuOffload__RingInfo **)(ri + RPC_LIST_MAX);
	di = (SmmuOffload__DeviceInfo *)(rpp + RPC_LIST_MAX);
	dp = (SmmuOffload__DeviceInfo **)(di + RPC_LIST_MAX);
	devs = (struct core_device_info *)(dp + RPC_LIST_MAX);

	r = list_vsmmu_ids(c, filter, rp, vids, &nv);
	if (r)
		return r;
	for (uint32_t i = 0; i < nv; i++) {
		struct core_vsmmu_stats vs;
		uint32_t n;

		/* Gone between the listing and now: skip it. */
		if (core_vsmmu_stats(svc, vids[i], &vs))
			continue;
		vi[i] = (SmmuOffload__VsmmuInfo)SMMU_OFFLOAD__VSMMU_INFO__INIT;
		vi[i].id = vids[i];
		memcpy(names + (size_t)i * CORE_NAME_MAX, vs.hsmmu,
		       CORE_NAME_MAX);
		names[(size_t)i * CORE_NAME_MAX + CORE_NAME_MAX - 1] = '\0';
		vi[i].host_smmu = names + (size_t)i * CORE_NAME_MAX;
		vi[i].has_n_rings = vi[i].has_n_devices = vi[i].has_owned =
			true;
		vi[i].n_rings = vs.n_rings;
		vi[i].n_devices = vs.n_devices;
		vi[i].owned = srv_conn_has_vsmmu(c, vids[i]);
		vp[rp->list.n_vsmmus++] = &vi[i];

		if (nd < RPC_LIST_MAX &&
		    !core_list_devices(svc, vids[i], devs + nd,
				       RPC_LIST_MAX - nd, &n)) {
			uint32_t got =
				n < RPC_LIST_MAX - nd ? n : RPC_LIST_MAX - nd;

			if (n > got)
				rp->list.truncated = true;
			for (uint32_t k = nd; k < nd + got; k++) {
				di[k] = (SmmuOffload__DeviceInfo)
					SMMU_OFFLOAD__DEVICE_INFO__INIT;
				di[k].vsmmu_id = vids[i];
				di[k].vsid = devs[k].vsid;
				di[k].has_dev_id = di[k].has_vdev_id =
					di[k].has_owned = true;
				di[k].dev_id = devs[k].dev_id;
				di[k].vdev_id = devs[k].vdev_id;
				di[k].owned = vi[i].owned;
				dp[k] = &di[k];
			}
			nd += got;
		}
		list_gmem(svc, rp, vids[i], vi[i].owned, gi, gp);
	}
	r = list_ring_ids(c, filter, rp, rids, &nr);
	if (r)
		return r;
	for (uint32_t i = 0; i < nr; i++) {
		struct core_ring_stats rs;
		size_t k = rp->list.n_rings;

		if (core_ring_stats(svc, rids[i], &rs))
			continue;
		ri[k] = (SmmuOffload__RingInfo)SMMU_OFFLOAD__RING_INFO__INIT;
		ri[k].id = rids[i];
		ri[k].has_vsmmu_id = ri[k].has_halted = ri[k].has_err =
			ri[k].has_owned = true;
		ri[k].vsmmu_id = rs.vsmmu_id;
		ri[k].halted = rs.halted;
		ri[k].err = rs.err;
		ri[k].owned = srv_conn_find_ring(c, rids[i]) >= 0;
		rpp[k] = &ri[k];
		rp->list.n_rings++;
	}
	r = list_vcmdqs(c, filter, rp);
	if (r)
		return r;
	rp->list.vsmmus = vp;
	rp->list.rings = rpp;
	rp->list.devices = dp;
	rp->list.n_devices = nd;
	rp->list.guest_memory = gp;
	rp->list.has_truncated = true;
	rp->resp.result_case = SMMU_OFFLOAD__RESPONSE__RESULT_LIST;
	rp->resp.list = &rp->list;
	return 0;
}
