/* SPDX-License-Identifier: MIT */
/*
 * rpc server. One struct rpc_conn per accepted socket; requests are
 * served synchronously on the libevent thread, one datagram per read
 * callback so a busy peer cannot starve the others (libevent runs the
 * callbacks of ready sockets round-robin). Accepting and authorising
 * peers is in server_accept.c, GetStats and List in server_stats.c.
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
#include "rpc/server_i.h"
#include "rpc/smmu_offload.pb-c.h"

#define RPC_PROTOCOL_VERSION 1u
/* Feature bits this server implements (none yet in version 1). */
#define RPC_FEATURES 0u

void srv_log(struct rpc_server *srv, int level, const char *fmt, ...)
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
	rp->attach_vcmdq = (SmmuOffload__AttachVcmdqReply)
		SMMU_OFFLOAD__ATTACH_VCMDQ_REPLY__INIT;
	rp->stats =
		(SmmuOffload__GetStatsReply)SMMU_OFFLOAD__GET_STATS_REPLY__INIT;
	rp->list = (SmmuOffload__ListReply)SMMU_OFFLOAD__LIST_REPLY__INIT;
}

void *srv_reply_alloc(struct reply *rp, size_t size)
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

int srv_fail(struct reply *rp, int err, const char *fmt, ...)
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

bool srv_conn_has_vsmmu(const struct rpc_conn *c, uint32_t id)
{
	for (unsigned int i = 0; i < c->n_vsmmus; i++)
		if (c->vsmmus[i] == id)
			return true;
	return false;
}

int srv_conn_find_ring(const struct rpc_conn *c, uint32_t id)
{
	for (unsigned int i = 0; i < c->n_rings; i++)
		if (c->rings[i].id == id)
			return (int)i;
	return -1;
}

int srv_conn_find_vcmdq(const struct rpc_conn *c, uint32_t id)
{
	for (unsigned int i = 0; i < c->n_vcmdqs; i++)
		if (c->vcmdqs[i].id == id)
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
		if (o != c && srv_conn_has_vsmmu(o, id))
			return true;
	return false;
}

static bool others_have_ring(const struct rpc_conn *c, uint32_t id)
{
	for (const struct rpc_conn *o = c->srv->conns; o; o = o->next)
		if (o != c && srv_conn_find_ring(o, id) >= 0)
			return true;
	return false;
}

int srv_check_vsmmu(struct rpc_conn *c, struct reply *rp, uint32_t id)
{
	if (srv_conn_has_vsmmu(c, id))
		return 0;
	if (others_have_vsmmu(c, id))
		return srv_fail(rp, EPERM,
				"vSMMU %u belongs to another connection", id);
	return srv_fail(rp, ENOENT, "vSMMU %u", id);
}

int srv_check_ring(struct rpc_conn *c, struct reply *rp, uint32_t id)
{
	if (srv_conn_find_ring(c, id) >= 0)
		return 0;
	if (others_have_ring(c, id))
		return srv_fail(rp, EPERM,
				"ring %u belongs to another connection", id);
	return srv_fail(rp, ENOENT, "ring %u", id);
}

int srv_check_vcmdq(struct rpc_conn *c, struct reply *rp, uint32_t id)
{
	if (srv_conn_find_vcmdq(c, id) >= 0)
		return 0;
	for (const struct rpc_conn *o = c->srv->conns; o; o = o->next)
		if (o != c && srv_conn_find_vcmdq(o, id) >= 0)
			return srv_fail(
				rp, EPERM,
				"vCMDQ %u belongs to another connection", id);
	return srv_fail(rp, ENOENT, "vCMDQ %u", id);
}

static void forget_vcmdq(struct rpc_conn *c, int idx)
{
	c->vcmdqs[idx] = c->vcmdqs[--c->n_vcmdqs];
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
	for (unsigned int i = 0; i < c->n_vcmdqs;) {
		if (c->vcmdqs[i].vsmmu_id == id)
			forget_vcmdq(c, (int)i);
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

static int do_hello(struct rpc_conn *c, const SmmuOffload__Hello *h,
		    struct reply *rp)
{
	struct rpc_server *srv = c->srv;
	int r;

	rp->hello.protocol_version = RPC_PROTOCOL_VERSION;
	rp->hello.has_features = true;
	rp->hello.features = RPC_FEATURES;
	rp->hello.server_version = (char *)PACKAGE_VERSION;
	rp->hello.backend = (char *)core_service_backend_name(srv->svc);
	rp->resp.result_case = SMMU_OFFLOAD__RESPONSE__RESULT_HELLO;
	rp->resp.hello = &rp->hello;
	if (c->hello)
		return srv_fail(rp, EALREADY, "handshake already done");
	if (h->protocol_version != RPC_PROTOCOL_VERSION)
		return srv_fail(rp, EPROTONOSUPPORT,
				"protocol version %u (server speaks %u)",
				h->protocol_version, RPC_PROTOCOL_VERSION);
	r = srv_fill_host_smmus(c, rp, &rp->hello.host_smmus,
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
	/* The handshake is in: the connection may stay as long as it likes. */
	event_free(c->hello_ev);
	c->hello_ev = NULL;
	srv_log(srv, LOG_INFO, "client %" PRIu64 " (pid %d uid %u) is \"%s\"",
		c->serial, (int)c->peer.pid, (unsigned int)c->peer.uid,
		c->name);
	return 0;
}

static int do_list_hsmmus(struct rpc_conn *c, struct reply *rp)
{
	int r = srv_fill_host_smmus(c, rp, &rp->hsmmus.host_smmus,
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
	struct core_vsmmu_spec spec = { .iommufd = fds->n ? fds->fd[0] : -1,
					.viommu_id = m->viommu_id,
					.dev_id = m->dev_id };
	uint32_t id;
	int r;

	/* What the backend needs (an iommufd or none) is core's to check. */
	if (fds->n > 1)
		return srv_fail(rp, EINVAL,
				"CreateVsmmu: at most 1 fd (got %u)", fds->n);
	if (c->n_vsmmus >= srv->cfg.max_vsmmus)
		return srv_fail(rp, EMFILE, "CreateVsmmu: limit of %u vSMMUs",
				srv->cfg.max_vsmmus);
	r = core_vsmmu_create(srv->svc, m->host_smmu, &spec, &id);
	/* core's errno says what was wrong: EINVAL, an iommufd missing
	 * (kernel) or one too many (sim, null); EBADF, not an iommufd. */
	if (r)
		return srv_fail(
			rp, -r,
			"CreateVsmmu on host SMMU \"%s\" (%s backend, %u fd)",
			m->host_smmu, core_service_backend_name(srv->svc),
			fds->n);
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
	int r = srv_check_vsmmu(c, rp, m->vsmmu_id);

	if (r)
		return r;
	r = core_vsmmu_destroy(c->srv->svc, m->vsmmu_id);
	/* -ENOENT: core no longer has it; our table must not either.
	 * -ETIMEDOUT: the id is gone too (core.h); the stuck worker finishes
	 * the destroy when it recovers. */
	if (r && r != -ENOENT && r != -ETIMEDOUT)
		return srv_fail(rp, -r, "DestroyVsmmu %u", m->vsmmu_id);
	forget_vsmmu(c, m->vsmmu_id);
	if (r)
		return srv_fail(rp, -r, "DestroyVsmmu %u", m->vsmmu_id);
	set_done(rp);
	return 0;
}

static int do_attach_device(struct rpc_conn *c,
			    const SmmuOffload__AttachDevice *m,
			    struct reply *rp)
{
	struct rpc_server *srv = c->srv;
	uint32_t vdev;
	int r = srv_check_vsmmu(c, rp, m->vsmmu_id);

	if (r)
		return r;
	if (c->n_devs >= srv->cfg.max_devices)
		return srv_fail(rp, EMFILE, "AttachDevice: limit of %u devices",
				srv->cfg.max_devices);
	r = core_device_attach(srv->svc, m->vsmmu_id, m->dev_id, m->vsid,
			       &vdev);
	if (r)
		return srv_fail(rp, -r,
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
	int r = srv_check_vsmmu(c, rp, m->vsmmu_id);
	int idx;

	if (r)
		return r;
	idx = conn_find_dev(c, m->vsmmu_id, m->vsid);
	if (idx < 0)
		return srv_fail(rp, ENOENT, "DetachDevice vSID 0x%" PRIx64,
				m->vsid);
	r = core_device_detach(c->srv->svc, m->vsmmu_id, m->vsid);
	if (r && r != -ENOENT && r != -ETIMEDOUT)
		return srv_fail(rp, -r, "DetachDevice vSID 0x%" PRIx64,
				m->vsid);
	forget_dev(c, idx);
	if (r)
		return srv_fail(rp, -r, "DetachDevice vSID 0x%" PRIx64,
				m->vsid);
	set_done(rp);
	return 0;
}

static int do_attach_ring(struct rpc_conn *c, const SmmuOffload__AttachRing *m,
			  struct rpc_fds *fds, struct reply *rp)
{
	struct rpc_server *srv = c->srv;
	int complete_fd = -1;
	uint32_t id;
	int r = srv_check_vsmmu(c, rp, m->vsmmu_id);

	if (r)
		return r;
	if (fds->n != 2 && fds->n != 3)
		return srv_fail(
			rp, EINVAL,
			"AttachRing needs 2 or 3 fds (memfd, doorbell, [completion]), got %u",
			fds->n);
	if (c->n_rings >= srv->cfg.max_rings)
		return srv_fail(rp, EMFILE, "AttachRing: limit of %u rings",
				srv->cfg.max_rings);
	if (fds->n == 3)
		complete_fd = fds->fd[2];
	/* Every fd (eventfds; memfd seals, size, header) is core's to check. */
	r = core_ring_attach(srv->svc, m->vsmmu_id, fds->fd[0], fds->fd[1],
			     complete_fd, &id);
	if (r)
		return srv_fail(
			rp, -r,
			"AttachRing on vSMMU %u (fds: ring memfd, doorbell eventfd%s)",
			m->vsmmu_id, fds->n == 3 ? ", completion eventfd" : "");
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
	int r = srv_check_ring(c, rp, m->ring_id);

	if (r)
		return r;
	r = core_ring_detach(c->srv->svc, m->ring_id);
	if (r && r != -ENOENT && r != -ETIMEDOUT)
		return srv_fail(rp, -r, "DetachRing %u", m->ring_id);
	forget_ring(c, srv_conn_find_ring(c, m->ring_id));
	if (r)
		return srv_fail(rp, -r, "DetachRing %u", m->ring_id);
	set_done(rp);
	return 0;
}

static int do_resume_ring(struct rpc_conn *c, const SmmuOffload__ResumeRing *m,
			  struct reply *rp)
{
	int r = srv_check_ring(c, rp, m->ring_id);

	if (r)
		return r;
	r = core_ring_resume(c->srv->svc, m->ring_id);
	if (r)
		return srv_fail(rp, -r, "ResumeRing %u", m->ring_id);
	set_done(rp);
	return 0;
}
/* ---- software vCMDQ ----------------------------------------------------- */

static int do_add_gmem(struct rpc_conn *c, const SmmuOffload__AddGuestMemory *m,
		       struct rpc_fds *fds, struct reply *rp)
{
	int r = srv_check_vsmmu(c, rp, m->vsmmu_id);

	if (r)
		return r;
	if (fds->n != 1)
		return srv_fail(rp, EINVAL,
				"AddGuestMemory needs 1 fd (memfd), got %u",
				fds->n);
	/* Seals, size, alignment, overlap, the per-vSMMU bound: core. */
	r = core_gmem_add(c->srv->svc, m->vsmmu_id, fds->fd[0], m->offset,
			  m->gpa, m->size);
	if (r)
		return srv_fail(rp, -r, "AddGuestMemory on vSMMU %u",
				m->vsmmu_id);
	set_done(rp);
	return 0;
}

static int do_remove_gmem(struct rpc_conn *c,
			  const SmmuOffload__RemoveGuestMemory *m,
			  struct reply *rp)
{
	int r = srv_check_vsmmu(c, rp, m->vsmmu_id);

	if (r)
		return r;
	r = core_gmem_remove(c->srv->svc, m->vsmmu_id, m->gpa, m->size);
	if (r)
		return srv_fail(rp, -r, "RemoveGuestMemory on vSMMU %u",
				m->vsmmu_id);
	set_done(rp);
	return 0;
}

static int do_attach_vcmdq(struct rpc_conn *c,
			   const SmmuOffload__AttachVcmdq *m,
			   struct rpc_fds *fds, struct reply *rp)
{
	struct rpc_server *srv = c->srv;
	int irq_fd = -1;
	uint32_t id;
	int r = srv_check_vsmmu(c, rp, m->vsmmu_id);

	if (r)
		return r;
	if (fds->n != 1 && fds->n != 2)
		return srv_fail(
			rp, EINVAL,
			"AttachVcmdq needs 1 or 2 fds (page, [irq]), got %u",
			fds->n);
	if (c->n_vcmdqs >= srv->cfg.max_rings)
		return srv_fail(rp, EMFILE, "AttachVcmdq: limit of %u",
				srv->cfg.max_rings);
	if (fds->n == 2)
		irq_fd = fds->fd[1];
	/* The page (memfd, seals, size), the irq eventfd, nq, version,
	 * features: core checks them all. */
	r = core_vcmdq_attach(srv->svc, m->vsmmu_id, fds->fd[0], m->nq,
			      m->version, m->has_features ? m->features : 0,
			      irq_fd, &id);
	if (r)
		return srv_fail(rp, -r,
				"AttachVcmdq on vSMMU %u (fds: page memfd%s)",
				m->vsmmu_id,
				fds->n == 2 ? ", irq eventfd" : "");
	c->vcmdqs[c->n_vcmdqs++] = (struct owned_ring){ id, m->vsmmu_id };
	rp->attach_vcmdq.vcmdq_id = id;
	rp->resp.result_case = SMMU_OFFLOAD__RESPONSE__RESULT_ATTACH_VCMDQ;
	rp->resp.attach_vcmdq = &rp->attach_vcmdq;
	srv_log(srv, LOG_INFO, "client %" PRIu64 ": vCMDQ %u on vSMMU %u",
		c->serial, id, m->vsmmu_id);
	return 0;
}

static int do_detach_vcmdq(struct rpc_conn *c,
			   const SmmuOffload__DetachVcmdq *m, struct reply *rp)
{
	int r = srv_check_vcmdq(c, rp, m->vcmdq_id);

	if (r)
		return r;
	r = core_vcmdq_detach(c->srv->svc, m->vcmdq_id);
	if (r && r != -ENOENT && r != -ETIMEDOUT)
		return srv_fail(rp, -r, "DetachVcmdq %u", m->vcmdq_id);
	forget_vcmdq(c, srv_conn_find_vcmdq(c, m->vcmdq_id));
	if (r)
		return srv_fail(rp, -r, "DetachVcmdq %u", m->vcmdq_id);
	set_done(rp);
	return 0;
}

static int do_set_vcmdq(struct rpc_conn *c, const SmmuOffload__Request *req,
			struct reply *rp)
{
	bool base = req->body_case ==
		    SMMU_OFFLOAD__REQUEST__BODY_SET_VCMDQ_BASE;
	uint32_t id = base ? req->set_vcmdq_base->vcmdq_id :
			     req->set_vcmdq_ready->vcmdq_id;
	int r = srv_check_vcmdq(c, rp, id);

	if (r)
		return r;
	if (base)
		r = core_vcmdq_set_base(c->srv->svc, id,
					req->set_vcmdq_base->lidx,
					req->set_vcmdq_base->base_reg);
	else
		r = core_vcmdq_set_ready(c->srv->svc, id,
					 req->set_vcmdq_ready->lidx,
					 req->set_vcmdq_ready->ready);
	if (r)
		return srv_fail(rp, -r, "%s %u",
				base ? "SetVcmdqBase" : "SetVcmdqReady", id);
	set_done(rp);
	return 0;
}

static int do_set_vcmdq_uffd(struct rpc_conn *c,
			     const SmmuOffload__SetVcmdqUffd *m,
			     struct rpc_fds *fds, struct reply *rp)
{
	int r = srv_check_vcmdq(c, rp, m->vcmdq_id);

	if (r)
		return r;
	if (fds->n != 1)
		return srv_fail(rp, EINVAL,
				"SetVcmdqUffd needs 1 fd (userfaultfd), got %u",
				fds->n);
	/* The fd kind (a userfaultfd) and the address: core. */
	r = core_vcmdq_set_uffd(c->srv->svc, m->vcmdq_id, fds->fd[0],
				m->vmm_addr);
	if (r)
		return srv_fail(rp, -r, "SetVcmdqUffd %u", m->vcmdq_id);
	set_done(rp);
	return 0;
}

static int dispatch(struct rpc_conn *c, const SmmuOffload__Request *req,
		    struct rpc_fds *fds, struct reply *rp)
{
	/* Only the requests that pass fds may carry any. */
	bool takes_fds =
		req->body_case == SMMU_OFFLOAD__REQUEST__BODY_CREATE_VSMMU ||
		req->body_case == SMMU_OFFLOAD__REQUEST__BODY_ATTACH_RING ||
		req->body_case ==
			SMMU_OFFLOAD__REQUEST__BODY_ADD_GUEST_MEMORY ||
		req->body_case == SMMU_OFFLOAD__REQUEST__BODY_ATTACH_VCMDQ ||
		req->body_case == SMMU_OFFLOAD__REQUEST__BODY_SET_VCMDQ_UFFD;

	if (fds->n && !takes_fds)
		return srv_fail(rp, EINVAL, "request %d takes no fds (got %u)",
				(int)req->body_case, fds->n);
	if (req->body_case == SMMU_OFFLOAD__REQUEST__BODY_HELLO)
		return do_hello(c, req->hello, rp);
	if (!c->hello)
		return srv_fail(rp, EPROTO, "the first request must be Hello");

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
		return srv_do_get_stats(c, req->get_stats, rp);
	case SMMU_OFFLOAD__REQUEST__BODY_LIST:
		return srv_do_list(c, req->list, rp);
	case SMMU_OFFLOAD__REQUEST__BODY_ADD_GUEST_MEMORY:
		return do_add_gmem(c, req->add_guest_memory, fds, rp);
	case SMMU_OFFLOAD__REQUEST__BODY_REMOVE_GUEST_MEMORY:
		return do_remove_gmem(c, req->remove_guest_memory, rp);
	case SMMU_OFFLOAD__REQUEST__BODY_ATTACH_VCMDQ:
		return do_attach_vcmdq(c, req->attach_vcmdq, fds, rp);
	case SMMU_OFFLOAD__REQUEST__BODY_DETACH_VCMDQ:
		return do_detach_vcmdq(c, req->detach_vcmdq, rp);
	case SMMU_OFFLOAD__REQUEST__BODY_SET_VCMDQ_BASE:
	case SMMU_OFFLOAD__REQUEST__BODY_SET_VCMDQ_READY:
		return do_set_vcmdq(c, req, rp);
	case SMMU_OFFLOAD__REQUEST__BODY_SET_VCMDQ_UFFD:
		return do_set_vcmdq_uffd(c, req->set_vcmdq_uffd, fds, rp);
	default:
		/* A newer client's request: its oneof member is unknown. */
		return srv_fail(rp, EOPNOTSUPP, "unknown request");
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

	while (c->n_vcmdqs) {
		struct owned_ring *o = &c->vcmdqs[c->n_vcmdqs - 1];

		r = core_vcmdq_detach(srv->svc, o->id);
		if (r)
			srv_log(srv, LOG_WARNING,
				"client %" PRIu64 ": detaching vCMDQ %u: %s",
				c->serial, o->id, strerror(-r));
		c->n_vcmdqs--;
	}
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

void srv_conn_free(struct rpc_conn *c)
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
	if (c->hello_ev)
		event_free(c->hello_ev);
	if (c->sock >= 0) {
		close(c->sock);
		srv_refill_reserve(srv);
	}
	if (c->pprev) {
		*c->pprev = c->next;
		if (c->next)
			c->next->pprev = c->pprev;
		if (c->on_admin)
			srv->n_admin--;
		else
			srv->n_conns--;
	}
	free(c->vsmmus);
	free(c->rings);
	free(c->vcmdqs);
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
		srv_fail(&rp, -r, "%s",
			 r == -EMSGSIZE ?
				 "datagram longer than the frame limit" :
				 "too many fds or unexpected control message");
		if (!conn_send(c, &rp, r))
			srv_conn_free(c);
		return;
	}
	if (r) {
		if (r != -EPIPE && r != -ECONNRESET)
			srv_log(srv, LOG_NOTICE,
				"client %" PRIu64 ": receive: %s", c->serial,
				strerror(-r));
		srv_log(srv, LOG_INFO, "client %" PRIu64 " disconnected",
			c->serial);
		srv_conn_free(c);
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
		srv_fail(&rp, -r, "undecodable request");
		if (!conn_send(c, &rp, r))
			srv_conn_free(c);
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
		srv_conn_free(c);
}

/*
 * The Hello deadline: a connection that has not completed the handshake
 * in time holds a slot for nothing (a peer can open many and stay
 * silent); tell it why (best effort), then hang up.
 */
static void on_hello_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct rpc_conn *c = arg;
	struct timeval tv = {
		.tv_sec = c->srv->cfg.hello_timeout_ms / 1000,
		.tv_usec = (c->srv->cfg.hello_timeout_ms % 1000) * 1000,
	};
	struct reply rp;
	char b;

	(void)fd;
	(void)what;
	/*
	 * The timer and the peer's datagram can become ready in the same
	 * loop iteration (a loaded daemon): a Hello already queued is not
	 * late. Give it one more period, once; the read callback runs first.
	 */
	if (!c->hello_extended &&
	    recv(c->sock, &b, 1, MSG_PEEK | MSG_DONTWAIT) >= 0 &&
	    !evtimer_add(c->hello_ev, &tv)) {
		c->hello_extended = true;
		return;
	}
	c->srv->hello_timeouts++;
	srv_log(c->srv, LOG_NOTICE,
		"client %" PRIu64 " (pid %d uid %u): no Hello within %u ms: "
		"closing",
		c->serial, (int)c->peer.pid, (unsigned int)c->peer.uid,
		c->srv->cfg.hello_timeout_ms);
	reply_init(&rp, 0);
	srv_fail(&rp, ETIMEDOUT, "no Hello within %u ms",
		 c->srv->cfg.hello_timeout_ms);
	conn_send(c, &rp, -ETIMEDOUT);
	srv_conn_free(c);
}

int srv_conn_add(struct rpc_server *srv, int sock, const struct rpc_peer *peer,
		 bool on_admin)
{
	struct timeval tv = {
		.tv_sec = srv->cfg.hello_timeout_ms / 1000,
		.tv_usec = (srv->cfg.hello_timeout_ms % 1000) * 1000,
	};
	struct rpc_conn *c = calloc(1, sizeof(*c));

	if (!c) {
		close(sock);
		return -ENOMEM;
	}
	c->srv = srv;
	c->sock = sock;
	c->peer = *peer;
	c->on_admin = on_admin;
	c->serial = ++srv->serial;
	c->vsmmus = calloc(srv->cfg.max_vsmmus, sizeof(*c->vsmmus));
	c->rings = calloc(srv->cfg.max_rings, sizeof(*c->rings));
	c->vcmdqs = calloc(srv->cfg.max_rings, sizeof(*c->vcmdqs));
	c->devs = calloc(srv->cfg.max_devices, sizeof(*c->devs));
	c->ev = event_new(srv->base, sock, EV_READ | EV_PERSIST, on_conn_read,
			  c);
	c->hello_ev = evtimer_new(srv->base, on_hello_timeout, c);
	if (!c->vsmmus || !c->rings || !c->vcmdqs || !c->devs || !c->ev ||
	    !c->hello_ev || event_add(c->ev, NULL) ||
	    evtimer_add(c->hello_ev, &tv)) {
		srv_conn_free(c);
		return -ENOMEM;
	}
	c->next = srv->conns;
	if (c->next)
		c->next->pprev = &c->next;
	c->pprev = &srv->conns;
	srv->conns = c;
	if (on_admin)
		srv->n_admin++;
	else
		srv->n_conns++;
	srv->conns_total++;
	srv_log(srv, LOG_INFO,
		"client %" PRIu64 " connected%s: pid %d uid %u gid %u%s",
		c->serial, on_admin ? " on the admin socket" : "",
		(int)peer->pid, (unsigned int)peer->uid,
		(unsigned int)peer->gid, peer->admin ? " (admin)" : "");
	return 0;
}

int rpc_server_new(struct event_base *base, struct core_service *svc,
		   const struct rpc_server_config *cfg, struct rpc_server **ret)
{
	unsigned int max_clients = cfg->max_clients ? cfg->max_clients :
						      RPC_DEFAULT_MAX_CLIENTS;
	struct rpc_server *srv;
	int r;

	if (!cfg->path || cfg->n_allow_uids > RPC_MAX_ALLOW ||
	    cfg->n_allow_gids > RPC_MAX_ALLOW || (cfg->mode & ~0666u) ||
	    cfg->max_clients_per_uid > max_clients)
		return -EINVAL;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->lsock = -1;
	srv->asock = -1;
	srv->reserve_fd = -1;
	srv->base = base;
	srv->svc = svc;
	srv->cfg = *cfg;
	if (!srv->cfg.mode)
		srv->cfg.mode = RPC_DEFAULT_SOCKET_MODE;
	if (!srv->cfg.max_clients)
		srv->cfg.max_clients = RPC_DEFAULT_MAX_CLIENTS;
	if (!srv->cfg.max_clients_per_uid)
		srv->cfg.max_clients_per_uid =
			srv->cfg.max_clients > 1 ? srv->cfg.max_clients / 2 : 1;
	if (!srv->cfg.hello_timeout_ms)
		srv->cfg.hello_timeout_ms = RPC_DEFAULT_HELLO_TIMEOUT_MS;
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
	srv->cfg.admin_path = NULL;
	srv->euid = geteuid();
	rpc_overflow_ids(&srv->overflow_uid, &srv->overflow_gid);
	srv->path = strdup(cfg->path);
	srv->admin_path = cfg->admin_path ? strdup(cfg->admin_path) : NULL;
	srv->buf = malloc(RPC_FRAME_MAX);
	if (!srv->path || !srv->buf || (cfg->admin_path && !srv->admin_path)) {
		r = -ENOMEM;
		goto err_free;
	}
	r = srv_listen(srv);
	if (r)
		goto err_free;
	*ret = srv;
	return 0;

err_free:
	/* Also closes and unlinks the sockets if they were created. */
	rpc_server_free(srv);
	return r;
}

void rpc_server_free(struct rpc_server *srv)
{
	if (!srv)
		return;
	while (srv->conns)
		srv_conn_free(srv->conns);
	srv_unlisten(srv);
	free(srv->path);
	free(srv->admin_path);
	free(srv->buf);
	free(srv);
}

unsigned int rpc_server_clients(const struct rpc_server *srv)
{
	return srv->n_conns + srv->n_admin;
}

void rpc_server_counters(const struct rpc_server *srv,
			 struct rpc_server_counters *out)
{
	*out = (struct rpc_server_counters){
		.clients_total = srv->conns_total,
		.clients_refused = srv->conns_refused,
		.requests = srv->requests,
		.bad_requests = srv->bad_requests,
		.hello_timeouts = srv->hello_timeouts,
		.fd_exhausted = srv->fd_exhausted,
	};
}
