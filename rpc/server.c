/* SPDX-License-Identifier: MIT */
/*
 * rpc server. One struct rpc_conn per accepted socket; requests are
 * served synchronously on the libevent thread, one datagram per read
 * callback so a busy peer cannot starve the others (libevent runs the
 * callbacks of ready sockets round-robin).
 */
#include "rpc/server.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "core/core.h"
#include "core/hist.h"
#include "rpc/frame.h"
#include "rpc/smmu_offload.pb-c.h"

#define RPC_PROTOCOL_VERSION 1u
/* Feature bits this server implements (none yet in version 1). */
#define RPC_FEATURES 0u
/*
 * Objects of each kind one List reply carries at most. Worst case per
 * entry: vSMMU ~90 bytes (63-byte host SMMU name), ring ~25, device ~35;
 * 256 of each is ~38 KiB, inside RPC_FRAME_MAX.
 */
#define RPC_LIST_MAX 256u

struct owned_ring {
	uint32_t id;
	uint32_t vsmmu_id;
};

struct owned_dev {
	uint32_t vsmmu_id;
	uint64_t vsid;
};

/**
 * struct rpc_conn - one client connection. Owned by the libevent thread.
 * @srv:      the server.
 * @sock:     the connected socket (non-blocking).
 * @ev:       read event.
 * @uid, @gid, @pid: SO_PEERCRED at accept time.
 * @serial:   connection number for logs.
 * @hello:    the handshake happened.
 * @name:     client name from Hello.
 * @vsmmus, @rings, @devs: objects this connection created (arrays of the
 *            per-connection limits' size), with their counts.
 */
struct rpc_conn {
	struct rpc_server *srv;
	int sock;
	struct event *ev;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	uint64_t serial;
	bool hello;
	char name[64];
	uint32_t *vsmmus;
	unsigned int n_vsmmus;
	struct owned_ring *rings;
	unsigned int n_rings;
	struct owned_dev *devs;
	unsigned int n_devs;
	struct rpc_conn *next;
	struct rpc_conn **pprev;
};

/**
 * struct rpc_server - the listening socket and its connections. Owned by
 * the libevent thread.
 */
struct rpc_server {
	struct event_base *base;
	struct core_service *svc;
	struct rpc_server_config cfg;
	char *path;
	uid_t allow_uids[RPC_MAX_ALLOW];
	gid_t allow_gids[RPC_MAX_ALLOW];
	int lsock;
	struct event *lev;
	struct rpc_conn *conns;
	unsigned int n_conns;
	uint64_t serial;
	uint64_t conns_total, conns_refused, requests, bad_requests;
	uint8_t *buf; /* RPC_FRAME_MAX receive buffer, shared: one thread */
};

static void srv_log(struct rpc_server *srv, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void srv_log(struct rpc_server *srv, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!srv->cfg.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	srv->cfg.log(srv->cfg.log_opaque, level, msg);
}

/* ---- replies -------------------------------------------------------- */

/*
 * A reply under construction: the envelope, the result bodies on the
 * stack, heap blocks to free after sending, the error message.
 */
struct reply {
	SmmuOffload__Response resp;
	SmmuOffload__Empty done;
	SmmuOffload__HelloReply hello;
	SmmuOffload__ListHostSmmusReply hsmmus;
	SmmuOffload__CreateVsmmuReply create;
	SmmuOffload__AttachDeviceReply attach_dev;
	SmmuOffload__AttachRingReply attach_ring;
	SmmuOffload__GetStatsReply stats;
	SmmuOffload__ListReply list;
	void *heap[8];
	unsigned int n_heap;
	char msg[256];
};

static void reply_init(struct reply *rp, uint64_t id)
{
	memset(rp, 0, sizeof(*rp));
	rp->resp = (SmmuOffload__Response)SMMU_OFFLOAD__RESPONSE__INIT;
	rp->resp.id = id;
	rp->done = (SmmuOffload__Empty)SMMU_OFFLOAD__EMPTY__INIT;
	rp->hello = (SmmuOffload__HelloReply)SMMU_OFFLOAD__HELLO_REPLY__INIT;
	rp->hsmmus = (SmmuOffload__ListHostSmmusReply)
		SMMU_OFFLOAD__LIST_HOST_SMMUS_REPLY__INIT;
	rp->create = (SmmuOffload__CreateVsmmuReply)
		SMMU_OFFLOAD__CREATE_VSMMU_REPLY__INIT;
	rp->attach_dev = (SmmuOffload__AttachDeviceReply)
		SMMU_OFFLOAD__ATTACH_DEVICE_REPLY__INIT;
	rp->attach_ring = (SmmuOffload__AttachRingReply)
		SMMU_OFFLOAD__ATTACH_RING_REPLY__INIT;
	rp->stats =
		(SmmuOffload__GetStatsReply)SMMU_OFFLOAD__GET_STATS_REPLY__INIT;
	rp->list = (SmmuOffload__ListReply)SMMU_OFFLOAD__LIST_REPLY__INIT;
}

/* Heap block freed with the reply; NULL when out of memory (or full). */
static void *reply_alloc(struct reply *rp, size_t size)
{
	void *p;

	if (rp->n_heap == sizeof(rp->heap) / sizeof(rp->heap[0]))
		return NULL;
	p = calloc(1, size ? size : 1);
	if (p)
		rp->heap[rp->n_heap++] = p;
	return p;
}

static void reply_done(struct reply *rp)
{
	for (unsigned int i = 0; i < rp->n_heap; i++)
		free(rp->heap[i]);
	rp->n_heap = 0;
}

/* Record an error: returns -@err so handlers can "return fail(...)". */
static int fail(struct reply *rp, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct reply *rp, int err, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(rp->msg, sizeof(rp->msg), fmt, ap);
	va_end(ap);
	n = strlen(rp->msg);
	snprintf(rp->msg + n, sizeof(rp->msg) - n, ": %s", strerror(err));
	return -err;
}

/* ---- ownership ------------------------------------------------------ */

static bool conn_has_vsmmu(const struct rpc_conn *c, uint32_t id)
{
	for (unsigned int i = 0; i < c->n_vsmmus; i++)
		if (c->vsmmus[i] == id)
			return true;
	return false;
}

static int conn_find_ring(const struct rpc_conn *c, uint32_t id)
{
	for (unsigned int i = 0; i < c->n_rings; i++)
		if (c->rings[i].id == id)
			return (int)i;
	return -1;
}

static int conn_find_dev(const struct rpc_conn *c, uint32_t vsmmu_id,
			 uint64_t vsid)
{
	for (unsigned int i = 0; i < c->n_devs; i++)
		if (c->devs[i].vsmmu_id == vsmmu_id && c->devs[i].vsid == vsid)
			return (int)i;
	return -1;
}

static bool others_have_vsmmu(const struct rpc_conn *c, uint32_t id)
{
	for (const struct rpc_conn *o = c->srv->conns; o; o = o->next)
		if (o != c && conn_has_vsmmu(o, id))
			return true;
	return false;
}

static bool others_have_ring(const struct rpc_conn *c, uint32_t id)
{
	for (const struct rpc_conn *o = c->srv->conns; o; o = o->next)
		if (o != c && conn_find_ring(o, id) >= 0)
			return true;
	return false;
}

/*
 * A vSMMU this connection may change: -EPERM if another connection owns
 * it, -ENOENT if nobody does.
 */
static int check_vsmmu(struct rpc_conn *c, struct reply *rp, uint32_t id)
{
	if (conn_has_vsmmu(c, id))
		return 0;
	if (others_have_vsmmu(c, id))
		return fail(rp, EPERM, "vSMMU %u belongs to another connection",
			    id);
	return fail(rp, ENOENT, "vSMMU %u", id);
}

static int check_ring(struct rpc_conn *c, struct reply *rp, uint32_t id)
{
	if (conn_find_ring(c, id) >= 0)
		return 0;
	if (others_have_ring(c, id))
		return fail(rp, EPERM, "ring %u belongs to another connection",
			    id);
	return fail(rp, ENOENT, "ring %u", id);
}

static void forget_ring(struct rpc_conn *c, int idx)
{
	c->rings[idx] = c->rings[--c->n_rings];
}

static void forget_dev(struct rpc_conn *c, int idx)
{
	c->devs[idx] = c->devs[--c->n_devs];
}

/* Drop the table entries of vSMMU @id and of everything on it. */
static void forget_vsmmu(struct rpc_conn *c, uint32_t id)
{
	for (unsigned int i = 0; i < c->n_rings;) {
		if (c->rings[i].vsmmu_id == id)
			forget_ring(c, (int)i);
		else
			i++;
	}
	for (unsigned int i = 0; i < c->n_devs;) {
		if (c->devs[i].vsmmu_id == id)
			forget_dev(c, (int)i);
		else
			i++;
	}
	for (unsigned int i = 0; i < c->n_vsmmus; i++) {
		if (c->vsmmus[i] == id) {
			c->vsmmus[i] = c->vsmmus[--c->n_vsmmus];
			break;
		}
	}
}

/* ---- handlers ------------------------------------------------------- */

static int fill_host_smmus(struct rpc_server *srv, struct reply *rp,
			   SmmuOffload__HostSmmu ***ret_arr, size_t *ret_n)
{
	struct core_service_stats ss;
	SmmuOffload__HostSmmu **ptrs, *hs;
	char *names;
	int r;

	r = core_service_stats(srv->svc, &ss);
	if (r)
		return fail(rp, -r, "service stats");
	ptrs = reply_alloc(rp, ss.n_hsmmu * sizeof(*ptrs));
	hs = reply_alloc(rp, ss.n_hsmmu * sizeof(*hs));
	names = reply_alloc(rp, (size_t)ss.n_hsmmu * IOFD_NAME_MAX);
	if (!ptrs || !hs || !names)
		return fail(rp, ENOMEM, "host SMMU list");
	for (unsigned int i = 0; i < ss.n_hsmmu; i++) {
		struct core_hsmmu_stats hst;

		r = core_hsmmu_stats(srv->svc, i, &hst);
		if (r)
			return fail(rp, -r, "host SMMU %u stats", i);
		memcpy(names + (size_t)i * IOFD_NAME_MAX, hst.name,
		       IOFD_NAME_MAX);
		names[(size_t)i * IOFD_NAME_MAX + IOFD_NAME_MAX - 1] = '\0';
		hs[i] = (SmmuOffload__HostSmmu)SMMU_OFFLOAD__HOST_SMMU__INIT;
		hs[i].name = names + (size_t)i * IOFD_NAME_MAX;
		hs[i].loop = (char *)(hst.loop ? hst.loop : "");
		hs[i].issue_mode =
			(char *)(hst.issue_mode ? hst.issue_mode : "");
		hs[i].has_n_vsmmus = hs[i].has_n_rings = true;
		hs[i].n_vsmmus = hst.n_vsmmus;
		hs[i].n_rings = hst.n_rings;
		ptrs[i] = &hs[i];
	}
	*ret_arr = ptrs;
	*ret_n = ss.n_hsmmu;
	return 0;
}

static int do_hello(struct rpc_conn *c, const SmmuOffload__Hello *h,
		    struct reply *rp)
{
	struct rpc_server *srv = c->srv;
	int r;

	rp->hello.protocol_version = RPC_PROTOCOL_VERSION;
	rp->hello.has_features = true;
	rp->hello.features = RPC_FEATURES;
	rp->hello.server_version = (char *)PACKAGE_VERSION;
	rp->hello.backend =
		(char *)iofd_backend_kind(core_service_backend(srv->svc));
	rp->resp.result_case = SMMU_OFFLOAD__RESPONSE__RESULT_HELLO;
	rp->resp.hello = &rp->hello;
	if (c->hello)
		return fail(rp, EALREADY, "handshake already done");
	if (h->protocol_version != RPC_PROTOCOL_VERSION)
		return fail(rp, EPROTONOSUPPORT,
			    "protocol version %u (server speaks %u)",
			    h->protocol_version, RPC_PROTOCOL_VERSION);
	r = fill_host_smmus(srv, rp, &rp->hello.host_smmus,
			    &rp->hello.n_host_smmus);
	if (r)
		return r;
	snprintf(c->name, sizeof(c->name), "%s",
		 h->client_name ? h->client_name : "");
	/* Peer-chosen text goes into one-line logs: no control bytes. */
	for (char *p = c->name; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	c->hello = true;
	srv_log(srv, LOG_INFO, "client %" PRIu64 " (pid %d uid %u) is \"%s\"",
		c->serial, (int)c->pid, (unsigned int)c->uid, c->name);
	return 0;
}

static int do_list_hsmmus(struct rpc_conn *c, struct reply *rp)
{
	int r = fill_host_smmus(c->srv, rp, &rp->hsmmus.host_smmus,
				&rp->hsmmus.n_host_smmus);

	if (r)
		return r;
	rp->resp.result_case = SMMU_OFFLOAD__RESPONSE__RESULT_LIST_HOST_SMMUS;
	rp->resp.list_host_smmus = &rp->hsmmus;
	return 0;
}

static int do_create_vsmmu(struct rpc_conn *c,
			   const SmmuOffload__CreateVsmmu *m,
			   struct rpc_fds *fds, struct reply *rp)
{
	struct rpc_server *srv = c->srv;
	const char *kind = iofd_backend_kind(core_service_backend(srv->svc));
	bool kernel = !strcmp(kind, "kernel");
	struct iofd_viommu_spec spec = { .iommufd = -1 };
	uint32_t id;
	int r;

	if (kernel && fds->n != 1)
		return fail(
			rp, EINVAL,
			"CreateVsmmu: the kernel backend needs the VMM's iommufd (1 fd, got %u)",
			fds->n);
	if (!kernel && fds->n)
		return fail(rp, EINVAL,
			    "CreateVsmmu: the %s backend takes no fd (got %u)",
			    kind, fds->n);
	if (c->n_vsmmus >= srv->cfg.max_vsmmus)
		return fail(rp, EMFILE, "CreateVsmmu: limit of %u vSMMUs",
			    srv->cfg.max_vsmmus);
	if (kernel) {
		if (iofd_iommufd_check(fds->fd[0]))
			return fail(
				rp, EBADF,
				"CreateVsmmu: the fd is not an iommufd (/dev/iommu)");
		spec.iommufd = fds->fd[0];
		spec.viommu_id = m->viommu_id;
		spec.dev_id = m->dev_id;
	}
	r = core_vsmmu_create(srv->svc, m->host_smmu, &spec, &id);
	if (r)
		return fail(rp, -r, "CreateVsmmu on host SMMU \"%s\"",
			    m->host_smmu);
	c->vsmmus[c->n_vsmmus++] = id;
	rp->create.vsmmu_id = id;
	rp->resp.result_case = SMMU_OFFLOAD__RESPONSE__RESULT_CREATE_VSMMU;
	rp->resp.create_vsmmu = &rp->create;
	srv_log(srv, LOG_INFO, "client %" PRIu64 ": vSMMU %u on %s", c->serial,
		id, m->host_smmu);
	return 0;
}

static void set_done(struct reply *rp)
{
	rp->resp.result_case = SMMU_OFFLOAD__RESPONSE__RESULT_DONE;
	rp->resp.done = &rp->done;
}

static int do_destroy_vsmmu(struct rpc_conn *c,
			    const SmmuOffload__DestroyVsmmu *m,
			    struct reply *rp)
{
	int r = check_vsmmu(c, rp, m->vsmmu_id);

	if (r)
		return r;
	r = core_vsmmu_destroy(c->srv->svc, m->vsmmu_id);
	/* -ENOENT: core no longer has it; our table must not either.
	 * -ETIMEDOUT: the id is gone too (core.h); the stuck worker finishes
	 * the destroy when it recovers. */
	if (r && r != -ENOENT && r != -ETIMEDOUT)
		return fail(rp, -r, "DestroyVsmmu %u", m->vsmmu_id);
	forget_vsmmu(c, m->vsmmu_id);
	if (r)
		return fail(rp, -r, "DestroyVsmmu %u", m->vsmmu_id);
	set_done(rp);
	return 0;
}

static int do_attach_device(struct rpc_conn *c,
			    const SmmuOffload__AttachDevice *m,
			    struct reply *rp)
{
	struct rpc_server *srv = c->srv;
	uint32_t vdev;
	int r = check_vsmmu(c, rp, m->vsmmu_id);

	if (r)
		return r;
	if (c->n_devs >= srv->cfg.max_devices)
		return fail(rp, EMFILE, "AttachDevice: limit of %u devices",
			    srv->cfg.max_devices);
	r = core_device_attach(srv->svc, m->vsmmu_id, m->dev_id, m->vsid,
			       &vdev);
	if (r)
		return fail(rp, -r,
			    "AttachDevice vSMMU %u dev %u vSID 0x%" PRIx64,
			    m->vsmmu_id, m->dev_id, m->vsid);
	c->devs[c->n_devs++] = (struct owned_dev){ m->vsmmu_id, m->vsid };
	rp->attach_dev.vdev_id = vdev;
	rp->resp.result_case = SMMU_OFFLOAD__RESPONSE__RESULT_ATTACH_DEVICE;
	rp->resp.attach_device = &rp->attach_dev;
	return 0;
}

static int do_detach_device(struct rpc_conn *c,
			    const SmmuOffload__DetachDevice *m,
			    struct reply *rp)
{
	int r = check_vsmmu(c, rp, m->vsmmu_id);
	int idx;

	if (r)
		return r;
	idx = conn_find_dev(c, m->vsmmu_id, m->vsid);
	if (idx < 0)
		return fail(rp, ENOENT, "DetachDevice vSID 0x%" PRIx64,
			    m->vsid);
	r = core_device_detach(c->srv->svc, m->vsmmu_id, m->vsid);
	if (r && r != -ENOENT && r != -ETIMEDOUT)
		return fail(rp, -r, "DetachDevice vSID 0x%" PRIx64, m->vsid);
	forget_dev(c, idx);
	if (r)
		return fail(rp, -r, "DetachDevice vSID 0x%" PRIx64, m->vsid);
	set_done(rp);
	return 0;
}

static int do_attach_ring(struct rpc_conn *c, const SmmuOffload__AttachRing *m,
			  struct rpc_fds *fds, struct reply *rp)
{
	struct rpc_server *srv = c->srv;
	int complete_fd = -1;
	uint32_t id;
	int r = check_vsmmu(c, rp, m->vsmmu_id);

	if (r)
		return r;
	if (fds->n != 2 && fds->n != 3)
		return fail(
			rp, EINVAL,
			"AttachRing needs 2 or 3 fds (memfd, doorbell, [completion]), got %u",
			fds->n);
	if (c->n_rings >= srv->cfg.max_rings)
		return fail(rp, EMFILE, "AttachRing: limit of %u rings",
			    srv->cfg.max_rings);
	if (rpc_fd_check_eventfd(fds->fd[1]))
		return fail(rp, EBADF,
			    "AttachRing: doorbell is not an eventfd");
	if (fds->n == 3) {
		complete_fd = fds->fd[2];
		if (rpc_fd_check_eventfd(complete_fd))
			return fail(
				rp, EBADF,
				"AttachRing: completion fd is not an eventfd");
	}
	/* The memfd (seals, size, header) is checked by ring_cons_map(). */
	r = core_ring_attach(srv->svc, m->vsmmu_id, fds->fd[0], fds->fd[1],
			     complete_fd, &id);
	if (r)
		return fail(rp, -r, "AttachRing on vSMMU %u", m->vsmmu_id);
	c->rings[c->n_rings++] = (struct owned_ring){ id, m->vsmmu_id };
	rp->attach_ring.ring_id = id;
	rp->resp.result_case = SMMU_OFFLOAD__RESPONSE__RESULT_ATTACH_RING;
	rp->resp.attach_ring = &rp->attach_ring;
	srv_log(srv, LOG_INFO, "client %" PRIu64 ": ring %u on vSMMU %u",
		c->serial, id, m->vsmmu_id);
	return 0;
}

static int do_detach_ring(struct rpc_conn *c, const SmmuOffload__DetachRing *m,
			  struct reply *rp)
{
	int r = check_ring(c, rp, m->ring_id);

	if (r)
		return r;
	r = core_ring_detach(c->srv->svc, m->ring_id);
	if (r && r != -ENOENT && r != -ETIMEDOUT)
		return fail(rp, -r, "DetachRing %u", m->ring_id);
	forget_ring(c, conn_find_ring(c, m->ring_id));
	if (r)
		return fail(rp, -r, "DetachRing %u", m->ring_id);
	set_done(rp);
	return 0;
}

static int do_resume_ring(struct rpc_conn *c, const SmmuOffload__ResumeRing *m,
			  struct reply *rp)
{
	int r = check_ring(c, rp, m->ring_id);

	if (r)
		return r;
	r = core_ring_resume(c->srv->svc, m->ring_id);
	if (r)
		return fail(rp, -r, "ResumeRing %u", m->ring_id);
	set_done(rp);
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
};

#define STATS_MAX_COUNTERS 48
#define STATS_MAX_LABELS 8

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

static void put_backend(struct stats_out *o, const struct iofd_counters *b)
{
	put_counter(o, "backend_ioctls", b->ioctls);
	put_counter(o, "backend_cmds", b->cmds);
	put_counter(o, "backend_host_syncs", b->host_syncs);
	put_counter(o, "backend_errors", b->errors);
	put_counter(o, "backend_charged_ns", b->charged_ns);
}

/*
 * A histogram's summary, the same data as the metrics endpoint's
 * histograms: count, sum, p50/p99 (bucket upper edges, within 3.2%),
 * exact max. Missing (allocation failure) rather than wrong.
 */
static void put_hist(struct stats_out *o, struct core_service *svc,
		     unsigned int idx, enum core_hist_kind kind,
		     const char *const names[5])
{
	struct core_hist *h = malloc(sizeof(*h));

	if (!h)
		return;
	if (!core_hsmmu_hist(svc, idx, kind, h)) {
		put_counter(o, names[0], h->count);
		put_counter(o, names[1], h->sum);
		put_counter(o, names[2], core_hist_quantile(h, 0.5));
		put_counter(o, names[3], core_hist_quantile(h, 0.99));
		put_counter(o, names[4], h->count ? h->max : 0);
	}
	free(h);
}

static const char *const sync_hist_names[5] = {
	"sync_latency_count",  "sync_latency_sum_ns", "sync_latency_p50_ns",
	"sync_latency_p99_ns", "sync_latency_max_ns",
};
static const char *const batch_hist_names[5] = {
	"batch_count",	  "batch_cmds_sum", "batch_cmds_p50",
	"batch_cmds_p99", "batch_cmds_max",
};

static int do_get_stats(struct rpc_conn *c, const SmmuOffload__GetStats *m,
			struct reply *rp)
{
	struct rpc_server *srv = c->srv;
	struct stats_out o = { .rp = rp };
	char *name;
	int r = 0;

	o.maxc = STATS_MAX_COUNTERS;
	o.maxl = STATS_MAX_LABELS;
	o.c = reply_alloc(rp, o.maxc * sizeof(*o.c));
	o.cp = reply_alloc(rp, o.maxc * sizeof(*o.cp));
	o.l = reply_alloc(rp, o.maxl * sizeof(*o.l));
	o.lp = reply_alloc(rp, o.maxl * sizeof(*o.lp));
	name = reply_alloc(rp, IOFD_NAME_MAX);
	if (!o.c || !o.cp || !o.l || !o.lp || !name)
		return fail(rp, ENOMEM, "GetStats");

	switch (m->scope) {
	case SMMU_OFFLOAD__STATS_SCOPE__STATS_SCOPE_SERVICE: {
		struct core_service_stats s;

		r = core_service_stats(srv->svc, &s);
		if (r)
			break;
		put_counter(&o, "n_hsmmu", s.n_hsmmu);
		put_counter(&o, "n_vsmmus", s.n_vsmmus);
		put_counter(&o, "n_rings", s.n_rings);
		put_counter(&o, "n_devices", s.n_devices);
		put_counter(&o, "fd_limit", s.fd_limit);
		put_counter(&o, "max_rings", s.max_rings);
		put_counter(&o, "rings_alloc", s.rings_alloc);
		put_label(&o, "signal", s.signal);
		put_counter(&o, "clients", srv->n_conns);
		put_counter(&o, "clients_total", srv->conns_total);
		put_counter(&o, "clients_refused", srv->conns_refused);
		put_counter(&o, "requests", srv->requests);
		put_counter(&o, "bad_requests", srv->bad_requests);
		put_label(&o, "version", PACKAGE_VERSION);
		put_label(&o, "loop", s.loop);
		put_label(&o, "backend", s.backend);
		break;
	}
	case SMMU_OFFLOAD__STATS_SCOPE__STATS_SCOPE_HOST_SMMU: {
		struct core_hsmmu_stats s;

		r = core_hsmmu_stats(srv->svc, m->id, &s);
		if (r)
			break;
		memcpy(name, s.name, IOFD_NAME_MAX);
		name[IOFD_NAME_MAX - 1] = '\0';
		put_label(&o, "name", name);
		put_label(&o, "loop", s.loop);
		put_label(&o, "issue_mode", s.issue_mode);
		put_counter(&o, "n_vsmmus", s.n_vsmmus);
		put_counter(&o, "n_rings", s.n_rings);
		put_counter(&o, "passes", s.passes);
		put_counter(&o, "sleeps", s.sleeps);
		put_counter(&o, "ioctls", s.ioctls);
		put_counter(&o, "cmds_issued", s.cmds_issued);
		put_counter(&o, "host_syncs", s.host_syncs);
		put_counter(&o, "inflight", s.inflight);
		put_counter(&o, "worker_cpu_ns", s.worker_cpu_ns);
		put_counter(&o, "issuer_cpu_ns", s.issuer_cpu_ns);
		put_counter(&o, "worker_stuck", s.stuck);
		put_counter(&o, "ctl_timeouts", s.ctl_timeouts);
		put_backend(&o, &s.backend);
		put_hist(&o, srv->svc, m->id, CORE_HIST_SYNC_NS,
			 sync_hist_names);
		put_hist(&o, srv->svc, m->id, CORE_HIST_BATCH_CMDS,
			 batch_hist_names);
		break;
	}
	case SMMU_OFFLOAD__STATS_SCOPE__STATS_SCOPE_VSMMU: {
		struct core_vsmmu_stats s;

		r = core_vsmmu_stats(srv->svc, m->id, &s);
		if (r)
			break;
		memcpy(name, s.hsmmu, IOFD_NAME_MAX);
		name[IOFD_NAME_MAX - 1] = '\0';
		put_label(&o, "hsmmu", name);
		put_counter(&o, "n_rings", s.n_rings);
		put_counter(&o, "n_devices", s.n_devices);
		put_counter(&o, "entries", s.entries);
		put_counter(&o, "cmds_forwarded", s.cmds_forwarded);
		put_counter(&o, "cmds_issued", s.cmds_issued);
		put_counter(&o, "coalesced", s.coalesced);
		put_counter(&o, "syncs", s.syncs);
		put_counter(&o, "ioctls", s.ioctls);
		put_counter(&o, "host_syncs", s.host_syncs);
		put_counter(&o, "halts_ill", s.halts[0]);
		put_counter(&o, "halts_abt", s.halts[1]);
		put_counter(&o, "halts_atc_inv_sync", s.halts[2]);
		put_counter(&o, "halts_other", s.halts[3]);
		put_counter(&o, "backend_errors", s.backend_errors);
		put_counter(&o, "throttled", s.throttled);
		break;
	}
	case SMMU_OFFLOAD__STATS_SCOPE__STATS_SCOPE_RING: {
		struct core_ring_stats s;

		r = core_ring_stats(srv->svc, m->id, &s);
		if (r)
			break;
		put_counter(&o, "vsmmu_id", s.vsmmu_id);
		put_counter(&o, "prod", s.prod);
		put_counter(&o, "cons", s.cons);
		put_counter(&o, "halted", s.halted);
		put_counter(&o, "err", s.err);
		put_counter(&o, "err_index", s.err_index);
		put_counter(&o, "entries", s.entries);
		put_counter(&o, "syncs", s.syncs);
		put_counter(&o, "signals", s.signals);
		put_counter(&o, "wakeups", s.wakeups);
		break;
	}
	default:
		return fail(rp, EOPNOTSUPP, "GetStats scope %d", (int)m->scope);
	}
	if (r)
		return fail(rp, -r, "GetStats scope %d id %u", (int)m->scope,
			    m->id);
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

static int do_list(struct rpc_conn *c, const SmmuOffload__List *m,
		   struct reply *rp)
{
	struct core_service *svc = c->srv->svc;
	uint32_t filter = m->has_vsmmu_id ? m->vsmmu_id : 0;
	uint32_t *vids, *rids, nv = 0, nr = 0, nd = 0, total;
	SmmuOffload__VsmmuInfo *vi, **vp;
	SmmuOffload__RingInfo *ri, **rpp;
	SmmuOffload__DeviceInfo *di, **dp;
	struct core_device_info *devs;
	char *names;
	int r;

	vids = reply_alloc(rp, RPC_LIST_MAX * sizeof(*vids));
	rids = reply_alloc(rp, RPC_LIST_MAX * sizeof(*rids));
	/* One block for the three info arrays and the pointer arrays. */
	vi = reply_alloc(rp, RPC_LIST_MAX *
				     (sizeof(*vi) + sizeof(*vp) + sizeof(*ri) +
				      sizeof(*rpp) + sizeof(*di) + sizeof(*dp) +
				      sizeof(*devs)));
	names = reply_alloc(rp, (size_t)RPC_LIST_MAX * IOFD_NAME_MAX);
	if (!vids || !rids || !vi || !names)
		return fail(rp, ENOMEM, "List");
	vp = (SmmuOffload__VsmmuInfo **)(vi + RPC_LIST_MAX);
	ri = (SmmuOffload__RingInfo *)(vp + RPC_LIST_MAX);
	rpp = (SmmuOffload__RingInfo **)(ri + RPC_LIST_MAX);
	di = (SmmuOffload__DeviceInfo *)(rpp + RPC_LIST_MAX);
	dp = (SmmuOffload__DeviceInfo **)(di + RPC_LIST_MAX);
	devs = (struct core_device_info *)(dp + RPC_LIST_MAX);

	if (filter) {
		struct core_vsmmu_stats vs;

		r = core_vsmmu_stats(svc, filter, &vs);
		if (r)
			return fail(rp, -r, "List vSMMU %u", filter);
		vids[0] = filter;
		nv = 1;
	} else {
		r = core_list_vsmmus(svc, vids, RPC_LIST_MAX, &total);
		if (r)
			return fail(rp, -r, "List");
		nv = total < RPC_LIST_MAX ? total : RPC_LIST_MAX;
		rp->list.truncated = total > RPC_LIST_MAX;
	}
	for (uint32_t i = 0; i < nv; i++) {
		struct core_vsmmu_stats vs;
		uint32_t n;

		/* Gone between the listing and now: skip it. */
		if (core_vsmmu_stats(svc, vids[i], &vs))
			continue;
		vi[i] = (SmmuOffload__VsmmuInfo)SMMU_OFFLOAD__VSMMU_INFO__INIT;
		vi[i].id = vids[i];
		memcpy(names + (size_t)i * IOFD_NAME_MAX, vs.hsmmu,
		       IOFD_NAME_MAX);
		names[(size_t)i * IOFD_NAME_MAX + IOFD_NAME_MAX - 1] = '\0';
		vi[i].host_smmu = names + (size_t)i * IOFD_NAME_MAX;
		vi[i].has_n_rings = vi[i].has_n_devices = vi[i].has_owned =
			true;
		vi[i].n_rings = vs.n_rings;
		vi[i].n_devices = vs.n_devices;
		vi[i].owned = conn_has_vsmmu(c, vids[i]);
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
	}
	r = core_list_rings(svc, filter, rids, RPC_LIST_MAX, &total);
	if (r)
		return fail(rp, -r, "List rings");
	nr = total < RPC_LIST_MAX ? total : RPC_LIST_MAX;
	if (total > RPC_LIST_MAX)
		rp->list.truncated = true;
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
		ri[k].owned = conn_find_ring(c, rids[i]) >= 0;
		rpp[k] = &ri[k];
		rp->list.n_rings++;
	}
	rp->list.vsmmus = vp;
	rp->list.rings = rpp;
	rp->list.devices = dp;
	rp->list.n_devices = nd;
	rp->list.has_truncated = true;
	rp->resp.result_case = SMMU_OFFLOAD__RESPONSE__RESULT_LIST;
	rp->resp.list = &rp->list;
	return 0;
}

static int dispatch(struct rpc_conn *c, const SmmuOffload__Request *req,
		    struct rpc_fds *fds, struct reply *rp)
{
	/* Only the requests that pass fds may carry any. */
	bool takes_fds =
		req->body_case == SMMU_OFFLOAD__REQUEST__BODY_CREATE_VSMMU ||
		req->body_case == SMMU_OFFLOAD__REQUEST__BODY_ATTACH_RING;

	if (fds->n && !takes_fds)
		return fail(rp, EINVAL, "request %d takes no fds (got %u)",
			    (int)req->body_case, fds->n);
	if (req->body_case == SMMU_OFFLOAD__REQUEST__BODY_HELLO)
		return do_hello(c, req->hello, rp);
	if (!c->hello)
		return fail(rp, EPROTO, "the first request must be Hello");

	switch (req->body_case) {
	case SMMU_OFFLOAD__REQUEST__BODY_LIST_HOST_SMMUS:
		return do_list_hsmmus(c, rp);
	case SMMU_OFFLOAD__REQUEST__BODY_CREATE_VSMMU:
		return do_create_vsmmu(c, req->create_vsmmu, fds, rp);
	case SMMU_OFFLOAD__REQUEST__BODY_DESTROY_VSMMU:
		return do_destroy_vsmmu(c, req->destroy_vsmmu, rp);
	case SMMU_OFFLOAD__REQUEST__BODY_ATTACH_DEVICE:
		return do_attach_device(c, req->attach_device, rp);
	case SMMU_OFFLOAD__REQUEST__BODY_DETACH_DEVICE:
		return do_detach_device(c, req->detach_device, rp);
	case SMMU_OFFLOAD__REQUEST__BODY_ATTACH_RING:
		return do_attach_ring(c, req->attach_ring, fds, rp);
	case SMMU_OFFLOAD__REQUEST__BODY_DETACH_RING:
		return do_detach_ring(c, req->detach_ring, rp);
	case SMMU_OFFLOAD__REQUEST__BODY_RESUME_RING:
		return do_resume_ring(c, req->resume_ring, rp);
	case SMMU_OFFLOAD__REQUEST__BODY_GET_STATS:
		return do_get_stats(c, req->get_stats, rp);
	case SMMU_OFFLOAD__REQUEST__BODY_LIST:
		return do_list(c, req->list, rp);
	default:
		/* A newer client's request: its oneof member is unknown. */
		return fail(rp, EOPNOTSUPP, "unknown request");
	}
}

/* ---- connections ---------------------------------------------------- */

/*
 * Tear down everything @c created, rings first (their drain needs the
 * devices still attached), then devices, then the vSMMUs.
 */
static void conn_release(struct rpc_conn *c)
{
	struct rpc_server *srv = c->srv;
	int r;

	while (c->n_rings) {
		struct owned_ring *o = &c->rings[c->n_rings - 1];

		r = core_ring_detach(srv->svc, o->id);
		if (r)
			srv_log(srv, LOG_WARNING,
				"client %" PRIu64 ": detaching ring %u: %s",
				c->serial, o->id, strerror(-r));
		c->n_rings--;
	}
	while (c->n_devs) {
		struct owned_dev *o = &c->devs[c->n_devs - 1];

		r = core_device_detach(srv->svc, o->vsmmu_id, o->vsid);
		if (r)
			srv_log(srv, LOG_WARNING,
				"client %" PRIu64 ": detaching vSID 0x%" PRIx64
				": %s",
				c->serial, o->vsid, strerror(-r));
		c->n_devs--;
	}
	while (c->n_vsmmus) {
		uint32_t id = c->vsmmus[c->n_vsmmus - 1];

		r = core_vsmmu_destroy(srv->svc, id);
		if (r)
			srv_log(srv, LOG_WARNING,
				"client %" PRIu64 ": destroying vSMMU %u: %s",
				c->serial, id, strerror(-r));
		c->n_vsmmus--;
	}
}

static void conn_free(struct rpc_conn *c)
{
	struct rpc_server *srv;

	if (!c)
		return;
	srv = c->srv;
	if (c->n_rings || c->n_devs || c->n_vsmmus)
		srv_log(srv, LOG_NOTICE,
			"client %" PRIu64
			" gone: releasing %u rings, %u devices, %u vSMMUs",
			c->serial, c->n_rings, c->n_devs, c->n_vsmmus);
	conn_release(c);
	if (c->ev)
		event_free(c->ev);
	if (c->sock >= 0)
		close(c->sock);
	if (c->pprev) {
		*c->pprev = c->next;
		if (c->next)
			c->next->pprev = c->pprev;
		srv->n_conns--;
	}
	free(c->vsmmus);
	free(c->rings);
	free(c->devs);
	free(c);
}

/* Send @rp; false if the connection must be dropped. */
static bool conn_send(struct rpc_conn *c, struct reply *rp, int err)
{
	int r;

	if (err) {
		rp->resp.has_error = true;
		rp->resp.error = -err;
		rp->resp.message = rp->msg;
	}
	r = rpc_msg_send(c->sock, &rp->resp.base, NULL);
	if (r == -EMSGSIZE) {
		/* A result that outgrew the frame (a bug): say so, keep the
		 * connection. */
		SmmuOffload__Response small = SMMU_OFFLOAD__RESPONSE__INIT;

		small.id = rp->resp.id;
		small.has_error = true;
		small.error = EMSGSIZE;
		small.message = (char *)"reply larger than the frame limit";
		r = rpc_msg_send(c->sock, &small.base, NULL);
	}
	if (r) {
		/*
		 * -EAGAIN: the peer does not read its replies and its
		 * socket buffer is full; we never queue for it.
		 */
		srv_log(c->srv, LOG_NOTICE,
			"client %" PRIu64 ": dropping connection: reply: %s",
			c->serial, strerror(-r));
		return false;
	}
	return true;
}

static void on_conn_read(evutil_socket_t fd, short what, void *arg)
{
	struct rpc_conn *c = arg;
	struct rpc_server *srv = c->srv;
	ProtobufCMessage *m = NULL;
	SmmuOffload__Request *req;
	struct rpc_fds fds;
	struct reply rp;
	size_t len;
	bool keep;
	int r;

	(void)fd;
	(void)what;
	r = rpc_frame_recv(c->sock, srv->buf, &len, &fds);
	if (r == -EAGAIN)
		return;
	if (r == -EMSGSIZE || r == -EPROTO) {
		srv->bad_requests++;
		srv_log(srv, LOG_NOTICE, "client %" PRIu64 ": bad datagram: %s",
			c->serial, strerror(-r));
		reply_init(&rp, 0);
		fail(&rp, -r, "%s",
		     r == -EMSGSIZE ?
			     "datagram longer than the frame limit" :
			     "too many fds or unexpected control message");
		if (!conn_send(c, &rp, r))
			conn_free(c);
		return;
	}
	if (r) {
		if (r != -EPIPE && r != -ECONNRESET)
			srv_log(srv, LOG_NOTICE,
				"client %" PRIu64 ": receive: %s", c->serial,
				strerror(-r));
		srv_log(srv, LOG_INFO, "client %" PRIu64 " disconnected",
			c->serial);
		conn_free(c);
		return;
	}

	srv->requests++;
	r = rpc_msg_decode(&smmu_offload__request__descriptor, srv->cfg.alloc,
			   srv->buf, len, &m);
	if (r) {
		srv->bad_requests++;
		rpc_fds_close(&fds);
		srv_log(srv, LOG_NOTICE,
			"client %" PRIu64 ": undecodable request (%zu bytes)",
			c->serial, len);
		reply_init(&rp, 0);
		fail(&rp, -r, "undecodable request");
		if (!conn_send(c, &rp, r))
			conn_free(c);
		return;
	}
	req = (SmmuOffload__Request *)m;
	reply_init(&rp, req->id);
	r = dispatch(c, req, &fds, &rp);
	/* core dups what it keeps: ours are always closed here. */
	rpc_fds_close(&fds);
	if (r) {
		srv->bad_requests++;
		srv_log(srv, LOG_DEBUG, "client %" PRIu64 ": %s", c->serial,
			rp.msg);
	}
	keep = conn_send(c, &rp, r);
	reply_done(&rp);
	rpc_msg_free(m, srv->cfg.alloc);
	if (!keep)
		conn_free(c);
}

static bool peer_allowed(const struct rpc_server *srv, uid_t uid, gid_t gid)
{
	if (uid == 0 || uid == geteuid())
		return true;
	for (unsigned int i = 0; i < srv->cfg.n_allow_uids; i++)
		if (srv->allow_uids[i] == uid)
			return true;
	for (unsigned int i = 0; i < srv->cfg.n_allow_gids; i++)
		if (srv->allow_gids[i] == gid)
			return true;
	return false;
}

/* Tell a peer why it is refused (best effort), then hang up. */
static void refuse(int sock, int err, const char *msg)
{
	SmmuOffload__Response resp = SMMU_OFFLOAD__RESPONSE__INIT;

	resp.id = 0;
	resp.has_error = true;
	resp.error = err;
	resp.message = (char *)msg;
	rpc_msg_send(sock, &resp.base, NULL);
	close(sock);
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
	struct rpc_server *srv = arg;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct rpc_conn *c;
	char msg[128];
	int sock;

	(void)fd;
	(void)what;
	sock = accept4(srv->lsock, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (sock < 0) {
		if (errno != EAGAIN && errno != EINTR)
			srv_log(srv, LOG_WARNING, "accept: %s",
				strerror(errno));
		return;
	}
	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
		srv_log(srv, LOG_WARNING, "SO_PEERCRED: %s", strerror(errno));
		close(sock);
		return;
	}
	if (!peer_allowed(srv, cred.uid, cred.gid)) {
		srv->conns_refused++;
		srv_log(srv, LOG_WARNING,
			"refused connection from pid %d uid %u gid %u: not in the allowed uids/gids",
			(int)cred.pid, (unsigned int)cred.uid,
			(unsigned int)cred.gid);
		snprintf(msg, sizeof(msg), "uid %u gid %u is not allowed",
			 (unsigned int)cred.uid, (unsigned int)cred.gid);
		refuse(sock, EACCES, msg);
		return;
	}
	if (srv->n_conns >= srv->cfg.max_clients) {
		srv->conns_refused++;
		srv_log(srv, LOG_WARNING,
			"refused connection from pid %d: %u clients connected",
			(int)cred.pid, srv->n_conns);
		refuse(sock, EMFILE, "too many clients");
		return;
	}

	c = calloc(1, sizeof(*c));
	if (!c)
		goto err_nomem;
	c->srv = srv;
	c->sock = sock;
	c->uid = cred.uid;
	c->gid = cred.gid;
	c->pid = cred.pid;
	c->serial = ++srv->serial;
	c->vsmmus = calloc(srv->cfg.max_vsmmus, sizeof(*c->vsmmus));
	c->rings = calloc(srv->cfg.max_rings, sizeof(*c->rings));
	c->devs = calloc(srv->cfg.max_devices, sizeof(*c->devs));
	c->ev = event_new(srv->base, sock, EV_READ | EV_PERSIST, on_conn_read,
			  c);
	if (!c->vsmmus || !c->rings || !c->devs || !c->ev ||
	    event_add(c->ev, NULL))
		goto err_free;
	c->next = srv->conns;
	if (c->next)
		c->next->pprev = &c->next;
	c->pprev = &srv->conns;
	srv->conns = c;
	srv->n_conns++;
	srv->conns_total++;
	srv_log(srv, LOG_INFO, "client %" PRIu64 " connected: pid %d uid %u",
		c->serial, (int)cred.pid, (unsigned int)cred.uid);
	return;

err_free:
	conn_free(c);
	return;
err_nomem:
	srv_log(srv, LOG_ERR, "out of memory accepting a client");
	close(sock);
}

/* ---- listening socket ----------------------------------------------- */

/*
 * Look at an existing @path: a live server -> -EADDRINUSE; not a socket
 * -> -ENOTSOCK; nothing there -> 0; a stale socket -> 1.
 */
static int probe(const struct sockaddr_un *sa)
{
	struct stat st;
	int s, r;

	if (lstat(sa->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -ENOTSOCK;
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	r = connect(s, (const struct sockaddr *)sa, sizeof(*sa));
	if (r == 0) {
		close(s);
		return -EADDRINUSE;
	}
	r = errno;
	close(s);
	return r == ECONNREFUSED ? 1 : -r;
}

/* probe(), and remove a stale socket. */
static int clear_stale(const struct sockaddr_un *sa)
{
	int r = probe(sa);

	if (r <= 0)
		return r;
	if (unlink(sa->sun_path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int rpc_socket_probe(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	r = probe(&sa);
	return r > 0 ? 0 : r;
}

static int listen_socket(const char *path, mode_t mode, int *ret)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old;
	int s, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	r = clear_stale(&sa);
	if (r)
		return r;
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0)
		return -errno;
	/*
	 * The umask makes the file no more permissive than @mode from the
	 * moment it exists; chmod then sets exactly @mode (the umask may have
	 * removed bits the caller asked for).
	 */
	old = umask(0777 & ~mode);
	r = bind(s, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0) {
		r = -errno;
		goto err_close;
	}
	if (chmod(path, mode) < 0 || listen(s, 64) < 0) {
		r = -errno;
		goto err_unlink;
	}
	*ret = s;
	return 0;

err_unlink:
	unlink(path);
err_close:
	close(s);
	return r;
}

int rpc_server_new(struct event_base *base, struct core_service *svc,
		   const struct rpc_server_config *cfg, struct rpc_server **ret)
{
	struct rpc_server *srv;
	int r;

	if (!cfg->path || cfg->n_allow_uids > RPC_MAX_ALLOW ||
	    cfg->n_allow_gids > RPC_MAX_ALLOW || (cfg->mode & ~0666u))
		return -EINVAL;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->lsock = -1;
	srv->base = base;
	srv->svc = svc;
	srv->cfg = *cfg;
	if (!srv->cfg.mode)
		srv->cfg.mode = RPC_DEFAULT_SOCKET_MODE;
	if (!srv->cfg.max_clients)
		srv->cfg.max_clients = RPC_DEFAULT_MAX_CLIENTS;
	if (!srv->cfg.max_vsmmus)
		srv->cfg.max_vsmmus = RPC_DEFAULT_MAX_VSMMUS;
	if (!srv->cfg.max_rings)
		srv->cfg.max_rings = RPC_DEFAULT_MAX_RINGS;
	if (!srv->cfg.max_devices)
		srv->cfg.max_devices = RPC_DEFAULT_MAX_DEVICES;
	if (cfg->n_allow_uids)
		memcpy(srv->allow_uids, cfg->allow_uids,
		       cfg->n_allow_uids * sizeof(uid_t));
	if (cfg->n_allow_gids)
		memcpy(srv->allow_gids, cfg->allow_gids,
		       cfg->n_allow_gids * sizeof(gid_t));
	srv->cfg.allow_uids = NULL;
	srv->cfg.allow_gids = NULL;
	srv->path = strdup(cfg->path);
	srv->buf = malloc(RPC_FRAME_MAX);
	if (!srv->path || !srv->buf) {
		r = -ENOMEM;
		goto err_free;
	}
	r = listen_socket(srv->path, srv->cfg.mode, &srv->lsock);
	if (r)
		goto err_free;
	srv->lev = event_new(base, srv->lsock, EV_READ | EV_PERSIST, on_accept,
			     srv);
	if (!srv->lev || event_add(srv->lev, NULL)) {
		r = -ENOMEM;
		goto err_free;
	}
	*ret = srv;
	return 0;

err_free:
	/* Also closes and unlinks the socket if it was created. */
	rpc_server_free(srv);
	return r;
}

void rpc_server_free(struct rpc_server *srv)
{
	if (!srv)
		return;
	while (srv->conns)
		conn_free(srv->conns);
	if (srv->lev)
		event_free(srv->lev);
	if (srv->lsock >= 0) {
		close(srv->lsock);
		unlink(srv->path);
	}
	free(srv->path);
	free(srv->buf);
	free(srv);
}

unsigned int rpc_server_clients(const struct rpc_server *srv)
{
	return srv->n_conns;
}

void rpc_server_counters(const struct rpc_server *srv,
			 struct rpc_server_counters *out)
{
	*out = (struct rpc_server_counters){
		.clients_total = srv->conns_total,
		.clients_refused = srv->conns_refused,
		.requests = srv->requests,
		.bad_requests = srv->bad_requests,
	};
}
