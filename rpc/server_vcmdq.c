/* SPDX-License-Identifier: MIT */
/*
 * rpc server: the software vCMDQ requests (protocol mode 2): guest memory
 * (AddGuestMemory, RemoveGuestMemory) and the vCMDQs themselves
 * (AttachVcmdq, DetachVcmdq, SetVcmdqBase/Ready, SetVcmdqUffd). Each
 * checks that the connection owns what it names before it calls core.
 * Everything here runs on the libevent thread (see server.h).
 */
#include "rpc/server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

#include "core/core.h"
#include "rpc/frame.h"
#include "rpc/server_i.h"
#include "rpc/smmu_offload.pb-c.h"

/* ---- software vCMDQ ----------------------------------------------------- */

int srv_do_add_gmem(struct rpc_conn *c, const SmmuOffload__AddGuestMemory *m,
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
	srv_set_done(rp);
	return 0;
}

int srv_do_remove_gmem(struct rpc_conn *c,
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
	srv_set_done(rp);
	return 0;
}

int srv_do_attach_vcmdq(struct rpc_conn *c, const SmmuOffload__AttachVcmdq *m,
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

int srv_do_detach_vcmdq(struct rpc_conn *c, const SmmuOffload__DetachVcmdq *m,
			struct reply *rp)
{
	int r = srv_check_vcmdq(c, rp, m->vcmdq_id);

	if (r)
		return r;
	r = core_vcmdq_detach(c->srv->svc, m->vcmdq_id);
	if (r && r != -ENOENT && r != -ETIMEDOUT)
		return srv_fail(rp, -r, "DetachVcmdq %u", m->vcmdq_id);
	srv_forget_vcmdq(c, srv_conn_find_vcmdq(c, m->vcmdq_id));
	if (r)
		return srv_fail(rp, -r, "DetachVcmdq %u", m->vcmdq_id);
	srv_set_done(rp);
	return 0;
}

int srv_do_set_vcmdq(struct rpc_conn *c, const SmmuOffload__Request *req,
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
	srv_set_done(rp);
	return 0;
}

int srv_do_set_vcmdq_uffd(struct rpc_conn *c,
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
	srv_set_done(rp);
	return 0;
}
