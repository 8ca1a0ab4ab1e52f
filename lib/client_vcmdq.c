/* SPDX-License-Identifier: MIT */
/*
 * libsmmu-offload client: the software vCMDQ and guest-memory calls
 * (protocol mode 2) on the connection of client.c. Guest-memory regions,
 * vCMDQs and each queue's BASE, ready gate and userfaultfd are recorded
 * (with F_DUPFD_CLOEXEC dups of their fds) so that smmu_client_reconnect()
 * creates them again: regions and attaches in creation order, queue state
 * after every object exists.
 */
#include <smmu-offload/client.h>
#include <smmu-offload/vcmdq.h>

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdlib.h>

#include "lib/client_i.h"
#include "rpc/frame.h"
#include "rpc/smmu_offload.pb-c.h"

/* ---- raw requests (current service ids) ---------------------------------- */

static int gmem_add_raw(struct smmu_client *c, uint32_t vsmmu_id, int memfd,
			uint64_t offset, uint64_t gpa, uint64_t size)
{
	SmmuOffload__Request req = SMMU_OFFLOAD__REQUEST__INIT;
	SmmuOffload__AddGuestMemory body = SMMU_OFFLOAD__ADD_GUEST_MEMORY__INIT;
	struct rpc_fds fds;

	if (memfd < 0)
		return -EBADF;
	rpc_fds_init(&fds);
	fds.fd[fds.n++] = memfd;
	body.vsmmu_id = vsmmu_id;
	body.offset = offset;
	body.gpa = gpa;
	body.size = size;
	req.body_case = SMMU_OFFLOAD__REQUEST__BODY_ADD_GUEST_MEMORY;
	req.add_guest_memory = &body;
	return client_call_done(c, &req, &fds);
}

static int gmem_remove_raw(struct smmu_client *c, uint32_t vsmmu_id,
			   uint64_t gpa, uint64_t size)
{
	SmmuOffload__Request req = SMMU_OFFLOAD__REQUEST__INIT;
	SmmuOffload__RemoveGuestMemory body =
		SMMU_OFFLOAD__REMOVE_GUEST_MEMORY__INIT;

	body.vsmmu_id = vsmmu_id;
	body.gpa = gpa;
	body.size = size;
	req.body_case = SMMU_OFFLOAD__REQUEST__BODY_REMOVE_GUEST_MEMORY;
	req.remove_guest_memory = &body;
	return client_call_done(c, &req, NULL);
}

static int vcmdq_attach_raw(struct smmu_client *c, uint32_t vsmmu_id,
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
	body.vsmmu_id = vsmmu_id;
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

static int vcmdq_detach_raw(struct smmu_client *c, uint32_t vcmdq_id)
{
	SmmuOffload__Request req = SMMU_OFFLOAD__REQUEST__INIT;
	SmmuOffload__DetachVcmdq body = SMMU_OFFLOAD__DETACH_VCMDQ__INIT;

	body.vcmdq_id = vcmdq_id;
	req.body_case = SMMU_OFFLOAD__REQUEST__BODY_DETACH_VCMDQ;
	req.detach_vcmdq = &body;
	return client_call_done(c, &req, NULL);
}

static int vcmdq_set_base_raw(struct smmu_client *c, uint32_t vcmdq_id,
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

static int vcmdq_set_ready_raw(struct smmu_client *c, uint32_t vcmdq_id,
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

static int vcmdq_set_uffd_raw(struct smmu_client *c, uint32_t vcmdq_id,
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

/* ---- recorded calls (the caller's ids) ----------------------------------- */

int smmu_client_gmem_add(struct smmu_client *c, uint32_t vsmmu_id, int memfd,
			 uint64_t offset, uint64_t gpa, uint64_t size)
{
	struct client_obj o = { .kind = OBJ_GMEM,
				.vsmmu = vsmmu_id,
				.offset = offset,
				.gpa = gpa,
				.size = size };
	int r;

	r = gmem_add_raw(c, client_cur_id(c, OBJ_VSMMU, vsmmu_id), memfd,
			 offset, gpa, size);
	if (r)
		return r;
	r = client_obj_add(c, &o, &memfd, 1, NULL);
	if (r)
		(void)gmem_remove_raw(c, client_cur_id(c, OBJ_VSMMU, vsmmu_id),
				      gpa, size);
	return r;
}

int smmu_client_gmem_remove(struct smmu_client *c, uint32_t vsmmu_id,
			    uint64_t gpa, uint64_t size)
{
	int r = gmem_remove_raw(c, client_cur_id(c, OBJ_VSMMU, vsmmu_id), gpa,
				size);

	if (!r)
		client_obj_forget(c, OBJ_GMEM, vsmmu_id, gpa, size);
	return r;
}

int smmu_client_vcmdq_attach(struct smmu_client *c, uint32_t vsmmu_id,
			     int page_memfd, unsigned int nq, int irq_fd,
			     uint32_t *ret_id)
{
	struct client_obj o = { .kind = OBJ_VCMDQ, .vsmmu = vsmmu_id };
	int fds[2] = { page_memfd, irq_fd };
	uint32_t id;
	int r;

	r = vcmdq_attach_raw(c, client_cur_id(c, OBJ_VSMMU, vsmmu_id),
			     page_memfd, nq, irq_fd, &id);
	if (r)
		return r;
	/* The service accepted @nq, so it is at most SMMU_VCMDQ_MAX_QUEUES
	 * (128 = the two words of the bitmaps). */
	if (nq > SMMU_VCMDQ_MAX_QUEUES) {
		r = -EPROTO;
		goto err_detach;
	}
	o.vq = calloc(1, sizeof(*o.vq) + nq * sizeof(o.vq->base[0]));
	if (!o.vq) {
		r = -ENOMEM;
		goto err_detach;
	}
	o.vq->nq = nq;
	o.cur = id;
	r = client_obj_add(c, &o, fds, 2, ret_id);
	if (r)
		goto err_detach;
	return 0;

err_detach:
	(void)vcmdq_detach_raw(c, id);
	return r;
}

int smmu_client_vcmdq_detach(struct smmu_client *c, uint32_t vcmdq_id)
{
	int r = vcmdq_detach_raw(c, client_cur_id(c, OBJ_VCMDQ, vcmdq_id));

	if (!r)
		client_obj_forget(c, OBJ_VCMDQ, vcmdq_id, 0, 0);
	return r;
}

static void bit_set(uint64_t *map, unsigned int l, bool on)
{
	if (on)
		map[l / 64] |= 1ull << (l % 64);
	else
		map[l / 64] &= ~(1ull << (l % 64));
}

static bool bit_get(const uint64_t *map, unsigned int l)
{
	return map[l / 64] >> (l % 64) & 1;
}

int smmu_client_vcmdq_set_base(struct smmu_client *c, uint32_t vcmdq_id,
			       unsigned int lidx, uint64_t base)
{
	struct client_obj *o = client_obj_find(c, OBJ_VCMDQ, vcmdq_id);
	int r;

	r = vcmdq_set_base_raw(c, client_cur_id(c, OBJ_VCMDQ, vcmdq_id), lidx,
			       base);
	if (!r && o && lidx < o->vq->nq) {
		o->vq->base[lidx] = base;
		bit_set(o->vq->has_base, lidx, true);
	}
	return r;
}

int smmu_client_vcmdq_set_ready(struct smmu_client *c, uint32_t vcmdq_id,
				unsigned int lidx, bool ready)
{
	struct client_obj *o = client_obj_find(c, OBJ_VCMDQ, vcmdq_id);
	int r;

	r = vcmdq_set_ready_raw(c, client_cur_id(c, OBJ_VCMDQ, vcmdq_id), lidx,
				ready);
	if (!r && o && lidx < o->vq->nq)
		bit_set(o->vq->ready, lidx, ready);
	return r;
}

int smmu_client_vcmdq_set_uffd(struct smmu_client *c, uint32_t vcmdq_id,
			       int uffd, uint64_t vmm_addr)
{
	struct client_obj *o = client_obj_find(c, OBJ_VCMDQ, vcmdq_id);
	int dup, r;

	if (uffd < 0)
		return -EBADF;
	/* The dup first: once the service holds the uffd, failing here
	 * would leave a state the client cannot replay. */
	dup = o ? fcntl(uffd, F_DUPFD_CLOEXEC, 3) : -1;
	if (o && dup < 0)
		return -errno;
	r = vcmdq_set_uffd_raw(c, client_cur_id(c, OBJ_VCMDQ, vcmdq_id), uffd,
			       vmm_addr);
	if (r || !o) {
		if (dup >= 0)
			close(dup);
		return r;
	}
	if (o->fd[2] >= 0)
		close(o->fd[2]);
	o->fd[2] = dup;
	o->vq->uffd_addr = vmm_addr;
	return 0;
}

/* ---- replay on reconnect (client.c) -------------------------------------- */

int client_vcmdq_replay_obj(struct smmu_client *c, struct client_obj *o)
{
	uint32_t vs = client_cur_id(c, OBJ_VSMMU, o->vsmmu);

	if (o->kind == OBJ_GMEM)
		return gmem_add_raw(c, vs, o->fd[0], o->offset, o->gpa,
				    o->size);
	return vcmdq_attach_raw(c, vs, o->fd[0], o->vq->nq, o->fd[1], &o->cur);
}

int client_vcmdq_replay_state(struct smmu_client *c, struct client_obj *o)
{
	const struct client_vq *vq = o->vq;
	int r;

	for (unsigned int l = 0; l < vq->nq; l++) {
		if (bit_get(vq->has_base, l)) {
			r = vcmdq_set_base_raw(c, o->cur, l, vq->base[l]);
			if (r)
				return r;
		}
		if (bit_get(vq->ready, l)) {
			r = vcmdq_set_ready_raw(c, o->cur, l, true);
			if (r)
				return r;
		}
	}
	if (o->fd[2] >= 0)
		return vcmdq_set_uffd_raw(c, o->cur, o->fd[2], vq->uffd_addr);
	return 0;
}

/* ---- List: vCMDQ queues and guest RAM ----------------------------------- */

/* A queue state of the reply; a newer service's value is UNKNOWN. */
static enum smmu_client_vq_state vq_state(SmmuOffload__VcmdqQueueState s)
{
	switch (s) {
	case SMMU_OFFLOAD__VCMDQ_QUEUE_STATE__VCMDQ_QUEUE_OFF:
		return SMMU_CLIENT_VQ_OFF;
	case SMMU_OFFLOAD__VCMDQ_QUEUE_STATE__VCMDQ_QUEUE_ON:
		return SMMU_CLIENT_VQ_ON;
	case SMMU_OFFLOAD__VCMDQ_QUEUE_STATE__VCMDQ_QUEUE_DRAINING:
		return SMMU_CLIENT_VQ_DRAINING;
	case SMMU_OFFLOAD__VCMDQ_QUEUE_STATE__VCMDQ_QUEUE_HALTED:
		return SMMU_CLIENT_VQ_HALTED;
	default:
		return SMMU_CLIENT_VQ_UNKNOWN;
	}
}

int client_list_vcmdq_extras(const SmmuOffload__ListReply *lr,
			     struct smmu_client_list *l)
{
	size_t nvq = 0, k = 0;

	for (size_t i = 0; i < lr->n_vcmdqs; i++)
		nvq += lr->vcmdqs[i]->n_queues;
	if (nvq && !(l->vqueues = calloc(nvq, sizeof(*l->vqueues))))
		return -ENOMEM;
	if (lr->n_guest_memory &&
	    !(l->gmem = calloc(lr->n_guest_memory, sizeof(*l->gmem))))
		return -ENOMEM;
	for (size_t i = 0; i < lr->n_vcmdqs; i++) {
		for (size_t j = 0; j < lr->vcmdqs[i]->n_queues; j++) {
			const SmmuOffload__VcmdqQueueInfo *p =
				lr->vcmdqs[i]->queues[j];

			l->vqueues[k++] = (struct smmu_client_vcmdq_queue){
				.vcmdq_id = lr->vcmdqs[i]->id,
				.lidx = p->lidx,
				.state = p->has_state ? vq_state(p->state) :
							SMMU_CLIENT_VQ_UNKNOWN,
				.ready = p->ready,
				.base_set = p->base_set,
				.err = p->err,
				.base_gpa = p->base_gpa,
				.log2size = p->log2size,
				.prod = p->prod,
				.cons = p->cons,
			};
		}
	}
	l->n_vqueues = (uint32_t)nvq;
	for (size_t i = 0; i < lr->n_guest_memory; i++) {
		const SmmuOffload__GuestMemoryInfo *p = lr->guest_memory[i];

		l->gmem[i] = (struct smmu_client_gmem){
			.vsmmu_id = p->vsmmu_id,
			.gpa = p->gpa,
			.size = p->size,
			.offset = p->offset,
			.owned = p->owned,
		};
	}
	l->n_gmem = (uint32_t)lr->n_guest_memory;
	return 0;
}
