/* SPDX-License-Identifier: MIT */
/*
 * libsmmu-offload client: the software vCMDQ and guest-memory calls
 * (protocol mode 2). Plain request/reply on the connection of client.c;
 * nothing here is recorded, so smmu_client_reconnect() does not replay it.
 */
#include <smmu-offload/client.h>
#include <smmu-offload/vcmdq.h>

#include <errno.h>

#include "lib/client_i.h"
#include "rpc/frame.h"
#include "rpc/smmu_offload.pb-c.h"

/* ---- software vCMDQ: plain calls, not replayed on reconnect -------------- */

int smmu_client_gmem_add(struct smmu_client *c, uint32_t vsmmu_id, int memfd,
			 uint64_t offset, uint64_t gpa, uint64_t size)
{
	SmmuOffload__Request req = SMMU_OFFLOAD__REQUEST__INIT;
	SmmuOffload__AddGuestMemory body = SMMU_OFFLOAD__ADD_GUEST_MEMORY__INIT;
	struct rpc_fds fds;

	if (memfd < 0)
		return -EBADF;
	rpc_fds_init(&fds);
	fds.fd[fds.n++] = memfd;
	body.vsmmu_id = client_cur_id(c, OBJ_VSMMU, vsmmu_id);
	body.offset = offset;
	body.gpa = gpa;
	body.size = size;
	req.body_case = SMMU_OFFLOAD__REQUEST__BODY_ADD_GUEST_MEMORY;
	req.add_guest_memory = &body;
	return client_call_done(c, &req, &fds);
}

int smmu_client_gmem_remove(struct smmu_client *c, uint32_t vsmmu_id,
			    uint64_t gpa, uint64_t size)
{
	SmmuOffload__Request req = SMMU_OFFLOAD__REQUEST__INIT;
	SmmuOffload__RemoveGuestMemory body =
		SMMU_OFFLOAD__REMOVE_GUEST_MEMORY__INIT;

	body.vsmmu_id = client_cur_id(c, OBJ_VSMMU, vsmmu_id);
	body.gpa = gpa;
	body.size = size;
	req.body_case = SMMU_OFFLOAD__REQUEST__BODY_REMOVE_GUEST_MEMORY;
	req.remove_guest_memory = &body;
	return client_call_done(c, &req, NULL);
}

int smmu_client_vcmdq_attach(struct smmu_client *c, uint32_t vsmmu_id,
			     int page_memfd, unsigned int nq, int irq_fd,
			     uint32_t *ret_id)
{
	SmmuOffload__Request req = SMMU_OFFLOAD__REQUEST__INIT;
	SmmuOffload__AttachVcmdq body = SMMU_OFFLOAD__ATTACH_VCMDQ__INIT;
	SmmuOffload__Response *resp;
	struct rpc_fds fds;
	int r;

	if (page_memfd < 0)
		return -EBADF;
	rpc_fds_init(&fds);
	fds.fd[fds.n++] = page_memfd;
	if (irq_fd >= 0)
		fds.fd[fds.n++] = irq_fd;
	body.vsmmu_id = client_cur_id(c, OBJ_VSMMU, vsmmu_id);
	body.nq = nq;
	body.version = SMMU_VCMDQ_VERSION;
	req.body_case = SMMU_OFFLOAD__REQUEST__BODY_ATTACH_VCMDQ;
	req.attach_vcmdq = &body;
	r = client_call_expect(c, &req, &fds,
			       SMMU_OFFLOAD__RESPONSE__RESULT_ATTACH_VCMDQ,
			       &resp);
	if (r)
		return r;
	*ret_id = resp->attach_vcmdq->vcmdq_id;
	smmu_offload__response__free_unpacked(resp, NULL);
	return 0;
}

int smmu_client_vcmdq_detach(struct smmu_client *c, uint32_t vcmdq_id)
{
	SmmuOffload__Request req = SMMU_OFFLOAD__REQUEST__INIT;
	SmmuOffload__DetachVcmdq body = SMMU_OFFLOAD__DETACH_VCMDQ__INIT;

	body.vcmdq_id = vcmdq_id;
	req.body_case = SMMU_OFFLOAD__REQUEST__BODY_DETACH_VCMDQ;
	req.detach_vcmdq = &body;
	return client_call_done(c, &req, NULL);
}

int smmu_client_vcmdq_set_base(struct smmu_client *c, uint32_t vcmdq_id,
			       unsigned int lidx, uint64_t base)
{
	SmmuOffload__Request req = SMMU_OFFLOAD__REQUEST__INIT;
	SmmuOffload__SetVcmdqBase body = SMMU_OFFLOAD__SET_VCMDQ_BASE__INIT;

	body.vcmdq_id = vcmdq_id;
	body.lidx = lidx;
	body.base_reg = base;
	req.body_case = SMMU_OFFLOAD__REQUEST__BODY_SET_VCMDQ_BASE;
	req.set_vcmdq_base = &body;
	return client_call_done(c, &req, NULL);
}

int smmu_client_vcmdq_set_ready(struct smmu_client *c, uint32_t vcmdq_id,
				unsigned int lidx, bool ready)
{
	SmmuOffload__Request req = SMMU_OFFLOAD__REQUEST__INIT;
	SmmuOffload__SetVcmdqReady body = SMMU_OFFLOAD__SET_VCMDQ_READY__INIT;

	body.vcmdq_id = vcmdq_id;
	body.lidx = lidx;
	body.ready = ready;
	req.body_case = SMMU_OFFLOAD__REQUEST__BODY_SET_VCMDQ_READY;
	req.set_vcmdq_ready = &body;
	return client_call_done(c, &req, NULL);
}

int smmu_client_vcmdq_set_uffd(struct smmu_client *c, uint32_t vcmdq_id,
			       int uffd, uint64_t vmm_addr)
{
	SmmuOffload__Request req = SMMU_OFFLOAD__REQUEST__INIT;
	SmmuOffload__SetVcmdqUffd body = SMMU_OFFLOAD__SET_VCMDQ_UFFD__INIT;
	struct rpc_fds fds;

	if (uffd < 0)
		return -EBADF;
	rpc_fds_init(&fds);
	fds.fd[fds.n++] = uffd;
	body.vcmdq_id = vcmdq_id;
	body.vmm_addr = vmm_addr;
	req.body_case = SMMU_OFFLOAD__REQUEST__BODY_SET_VCMDQ_UFFD;
	req.set_vcmdq_uffd = &body;
	return client_call_done(c, &req, &fds);
}
