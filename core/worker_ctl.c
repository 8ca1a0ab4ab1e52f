/* SPDX-License-Identifier: MIT */
/*
 * The worker's side of control messages (core/ctl.c posts them): adding
 * and removing vSMMUs, devices and rings, the drains a removal waits for
 * (ring detach, device fence, vSMMU destroy), and taking back an ADD whose
 * caller stopped waiting. Everything here runs on the worker thread.
 */
#include "core/vcmdq_i.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/barrier.h"

static const struct core_config *wcfg(const struct core_worker *w)
{
	return &w->svc->cfg;
}

static int worker_add_ring(struct core_worker *w, struct core_ring *r)
{
	struct core_vsmmu *vs = r->vs;
	uint32_t slot;
	int rc;

	/* A destroy posted before this attach got here first. */
	if (vs->dead || vs->destroy_msg)
		return -ENOENT;
	if (vs->n_rings == CORE_MAX_VSMMU_RINGS)
		return -ENOSPC;
	for (slot = 0; slot < w->n_slots; slot++)
		if (!w->slots[slot])
			break;
	if (slot == w->cap_slots) {
		uint32_t cap = w->cap_slots ? w->cap_slots * 2 : 64;
		struct core_ring **n = realloc(w->slots, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		memset(n + w->cap_slots, 0, (cap - w->cap_slots) * sizeof(*n));
		w->slots = n;
		w->cap_slots = cap;
	}
	r->slot = slot;
	r->open_seg = -1;
	rc = core_loop_watch(&w->loop, r->doorbell_fd, core_ring_token(r));
	if (rc < 0)
		return rc;
	w->slots[slot] = r;
	r->linked = true;
	core_ring_get(r); /* the worker's, dropped by ring_unlink() */
	if (slot == w->n_slots)
		w->n_slots++;
	vs->rings[vs->n_rings++] = r;
	/* Entries may already be waiting (re-attach after a restart). */
	core_ring_activate(w, r);
	return 0;
}

static void ring_unlink(struct core_worker *w, struct core_ring *r)
{
	struct core_vsmmu *vs = r->vs;
	struct core_ring **pp;

	for (pp = &w->active; *pp; pp = &(*pp)->next_active)
		if (*pp == r) {
			*pp = r->next_active;
			break;
		}
	r->active = false;
	r->linked = false;
	core_loop_unwatch(&w->loop, r->doorbell_fd, core_ring_token(r));
	w->slots[r->slot] = NULL;
	for (uint32_t i = 0; i < vs->n_rings; i++)
		if (vs->rings[i] == r) {
			vs->rings[i] = vs->rings[--vs->n_rings];
			break;
		}
	/* The last use of @r by this thread: it may be freed now. */
	core_ring_put(r);
}

/* A detaching ring leaves once no batch holds its entries. */
void core_ring_check_detach(struct core_worker *w, struct core_ring *r)
{
	struct core_msg *m = r->detach_msg;

	if (!r->detaching || r->batches || !r->linked)
		return;
	r->detach_msg = NULL;
	ring_unlink(w, r);
	if (m)
		core_msg_reply(w, m, 0);
}

static void ring_start_detach(struct core_worker *w, struct core_ring *r,
			      struct core_msg *m)
{
	struct core_vsmmu *vs = r->vs;

	r->detaching = true;
	r->detach_msg = m;
	/* What it has in the open batch still goes out: issue now. */
	if (r->open_seg >= 0)
		core_vsmmu_try_issue(w, vs);
	core_ring_check_detach(w, r);
}

void core_vsmmu_check_fences(struct core_vsmmu *vs)
{
	struct core_msg **pp = &vs->fences, *m;

	while ((m = *pp)) {
		if (vs->done_seq >= m->fence_seq) {
			*pp = m->next;
			core_msg_reply(vs->w, m,
				       iofd_vdev_destroy(vs->viommu,
							 m->ret_vdev_id));
			continue;
		}
		pp = &m->next;
	}
}

static void worker_del_device(struct core_worker *w, struct core_msg *m)
{
	struct core_vsmmu *vs = m->vs;
	struct core_batch *b = vs->open;
	uint32_t i;

	for (i = 0; i < vs->n_devs; i++)
		if (vs->devs[i].vsid == m->vsid)
			break;
	if (vs->dead || vs->destroy_msg || i == vs->n_devs) {
		core_msg_reply(w, m, -ENOENT);
		return;
	}
	m->ret_vdev_id = vs->devs[i].vdev_id;
	pthread_mutex_lock(&vs->devs_lock);
	vs->devs[i] = vs->devs[--vs->n_devs];
	pthread_mutex_unlock(&vs->devs_lock);
	/*
	 * The fence: commands already taken from the rings (in flight or in
	 * the open batch) were validated while the vSID existed and must
	 * complete before the vDEVICE goes; new ones are refused from now.
	 */
	if (b->n_entries)
		m->fence_seq = b->seq;
	else if (vs->inflight)
		m->fence_seq = vs->inflight->seq;
	else
		m->fence_seq = 0;
	m->next = vs->fences;
	vs->fences = m;
	core_vsmmu_try_issue(w, vs);
	core_vsmmu_check_fences(vs);
}

static int worker_add_device(struct core_vsmmu *vs, struct core_msg *m)
{
	uint32_t vdev;
	int rc;

	if (vs->dead || vs->destroy_msg)
		return -ENOENT;
	if (core_vsmmu_has_vsid(vs, m->vsid))
		return -EEXIST;
	if (vs->n_devs == CORE_MAX_DEVICES)
		return -ENOSPC;
	rc = iofd_vdev_alloc(vs->viommu, m->dev_id, m->vsid, &vdev);
	if (rc == 0) {
		pthread_mutex_lock(&vs->devs_lock);
		vs->devs[vs->n_devs].vsid = m->vsid;
		vs->devs[vs->n_devs].dev_id = m->dev_id;
		vs->devs[vs->n_devs].vdev_id = vdev;
		vs->n_devs++;
		pthread_mutex_unlock(&vs->devs_lock);
		m->ret_vdev_id = vdev;
	}
	return rc;
}

/* Undoes worker_add_device() for a caller that gave up: nothing can have
 * named the vSID since (the same pass). */
static void worker_undo_device(struct core_vsmmu *vs, uint64_t vsid)
{
	for (uint32_t i = 0; i < vs->n_devs; i++) {
		if (vs->devs[i].vsid != vsid)
			continue;
		iofd_vdev_destroy(vs->viommu, vs->devs[i].vdev_id);
		pthread_mutex_lock(&vs->devs_lock);
		vs->devs[i] = vs->devs[--vs->n_devs];
		pthread_mutex_unlock(&vs->devs_lock);
		return;
	}
}

/* Takes @vs off the worker: vDEVICEs, batches, device table. */
static void vsmmu_remove(struct core_worker *w, struct core_vsmmu *vs)
{
	struct core_device *devs = vs->devs;

	while (vs->n_devs) {
		iofd_vdev_destroy(vs->viommu, vs->devs[vs->n_devs - 1].vdev_id);
		pthread_mutex_lock(&vs->devs_lock);
		vs->n_devs--;
		pthread_mutex_unlock(&vs->devs_lock);
	}
	for (uint32_t i = 0; i < w->n_vsmmus; i++)
		if (w->vsmmus[i] == vs) {
			w->vsmmus[i] = w->vsmmus[--w->n_vsmmus];
			break;
		}
	core_batch_free(vs->open);
	core_batch_free(vs->spare);
	vs->open = vs->spare = NULL;
	core_vcmdq_vsmmu_remove(vs);
	pthread_mutex_lock(&vs->devs_lock);
	vs->devs = NULL;
	pthread_mutex_unlock(&vs->devs_lock);
	free(devs);
	vs->dead = true;
}

/* A destroyed vSMMU leaves once its rings are gone and fences done. */
static void vsmmu_check_destroy(struct core_worker *w, struct core_vsmmu *vs)
{
	struct core_msg *m = vs->destroy_msg;

	/* A vSMMU waiting for an issuer still has entries: its rings hold
	 * them (n_rings), so it cannot be on the wait queue here. */
	if (!m || vs->n_rings || vs->n_vcmdqs || vs->inflight || vs->fences ||
	    vs->waiting)
		return;
	vs->destroy_msg = NULL;
	vsmmu_remove(w, vs);
	/* Before the answer: the message's reference is the last then, and
	 * the caller releases the vSMMU before it returns. */
	core_vsmmu_put(vs); /* the worker's */
	core_msg_reply(w, m, 0);
}

/* Finish destroys whose drain completed. */
void core_sweep_destroys(struct core_worker *w)
{
	for (uint32_t i = w->n_vsmmus; i-- > 0;)
		if (w->vsmmus[i]->destroy_msg)
			vsmmu_check_destroy(w, w->vsmmus[i]);
}

static void vsmmu_start_destroy(struct core_worker *w, struct core_vsmmu *vs,
				struct core_msg *m)
{
	vs->destroy_msg = m;
	core_vsmmu_try_issue(w, vs);
	/* Rings drain and leave as their batches complete. */
	for (uint32_t i = vs->n_rings; i-- > 0;) {
		struct core_ring *r = vs->rings[i];

		r->detaching = true;
		core_ring_check_detach(w, r);
	}
	core_vcmdq_vsmmu_draining(w, vs);
	vsmmu_check_destroy(w, vs);
}

static int worker_add_vsmmu(struct core_worker *w, struct core_vsmmu *vs)
{
	uint32_t cap = wcfg(w)->max_batch;

	if (w->n_vsmmus == w->cap_vsmmus) {
		uint32_t n = w->cap_vsmmus ? w->cap_vsmmus * 2 : 16;
		struct core_vsmmu **p = realloc(w->vsmmus, n * sizeof(*p));

		if (!p)
			return -ENOMEM;
		w->vsmmus = p;
		w->cap_vsmmus = n;
	}
	vs->open = core_batch_new(cap);
	vs->spare = core_batch_new(cap);
	vs->devs = calloc(CORE_MAX_DEVICES, sizeof(*vs->devs));
	if (vs->open)
		vs->open->vs = vs;
	if (vs->spare)
		vs->spare->vs = vs;
	if (!vs->open || !vs->spare || !vs->devs) {
		core_batch_free(vs->open);
		core_batch_free(vs->spare);
		free(vs->devs);
		vs->open = vs->spare = NULL;
		vs->devs = NULL;
		return -ENOMEM;
	}
	core_batch_reset(vs->open, ++vs->next_seq);
	vs->tokens = wcfg(w)->rate_burst;
	vs->tokens_ns = core_now_ns();
	w->vsmmus[w->n_vsmmus++] = vs;
	core_vsmmu_get(vs); /* the worker's, dropped when it leaves */
	return 0;
}

/* An ADD whose caller gave up before the answer: take it back. */
static void msg_undo(struct core_worker *w, struct core_msg *m)
{
	switch (m->type) {
	case CORE_MSG_ADD_VSMMU:
		/* Fresh: no ring, no device, nothing in flight. */
		vsmmu_remove(w, m->vs);
		core_vsmmu_put(m->vs);
		break;
	case CORE_MSG_ADD_RING:
		/* Linked this pass: no batch holds its entries yet. */
		m->ring->detaching = true;
		ring_unlink(w, m->ring);
		break;
	case CORE_MSG_ADD_DEVICE:
		worker_undo_device(m->vs, m->vsid);
		break;
	case CORE_MSG_ADD_GMEM:
	case CORE_MSG_ADD_VCMDQ:
		core_vcmdq_msg_undo(w, m);
		break;
	default:
		break;
	}
}

/* Answers @m and drops the worker's reference to it. */
void core_msg_reply(struct core_worker *w, struct core_msg *m, int result)
{
	if (!core_msg_answer(w, m, result) && result == 0)
		msg_undo(w, m);
	core_msg_put(m);
}

static bool msg_is_add(const struct core_msg *m)
{
	return m->type == CORE_MSG_ADD_VSMMU || m->type == CORE_MSG_ADD_RING ||
	       m->type == CORE_MSG_ADD_DEVICE ||
	       m->type == CORE_MSG_RESUME_RING ||
	       m->type == CORE_MSG_ADD_GMEM || m->type == CORE_MSG_ADD_VCMDQ ||
	       m->type == CORE_MSG_VCMDQ_BASE ||
	       m->type == CORE_MSG_VCMDQ_READY ||
	       m->type == CORE_MSG_VCMDQ_UFFD;
}

static void handle_msg(struct core_worker *w, struct core_msg *m)
{
	/* Its caller gave up before we got here: an ADD is not wanted any
	 * more (a DEL still is: it releases what the caller let go of). */
	if (msg_is_add(m) && __atomic_load_n(&m->state, __ATOMIC_ACQUIRE) ==
				     CORE_MSG_ABANDONED) {
		core_msg_reply(w, m, -ETIMEDOUT);
		return;
	}
	switch (m->type) {
	case CORE_MSG_ADD_VSMMU:
		core_msg_reply(w, m, worker_add_vsmmu(w, m->vs));
		break;
	case CORE_MSG_DEL_VSMMU:
		if (m->vs->dead || m->vs->destroy_msg)
			core_msg_reply(w, m, -ENOENT);
		else
			vsmmu_start_destroy(w, m->vs, m);
		break;
	case CORE_MSG_ADD_DEVICE:
		core_msg_reply(w, m, worker_add_device(m->vs, m));
		break;
	case CORE_MSG_DEL_DEVICE:
		worker_del_device(w, m);
		break;
	case CORE_MSG_ADD_RING:
		core_msg_reply(w, m, worker_add_ring(w, m->ring));
		break;
	case CORE_MSG_DEL_RING:
		if (!m->ring->linked || m->ring->detaching)
			core_msg_reply(w, m, -ENOENT);
		else
			ring_start_detach(w, m->ring, m);
		break;
	case CORE_MSG_RESUME_RING:
		if (!m->ring->linked || m->ring->detaching) {
			core_msg_reply(w, m, -ENOENT);
			break;
		}
		if (!m->ring->rc.halted) {
			core_msg_reply(w, m, -EALREADY);
			break;
		}
		ring_cons_resume(&m->ring->rc);
		m->ring->epoch++;
		core_ring_activate(w, m->ring);
		core_msg_reply(w, m, 0);
		break;
	case CORE_MSG_STOP:
		w->stopping = true;
		w->stop_msg = m;
		break;
	default:
		core_vcmdq_handle_msg(w, m);
		break;
	}
}

int core_process_mailbox(struct core_worker *w)
{
	struct core_msg *list, *m;
	int n = 0;

	/* A_MBOX: pairs with R_MBOX in core_worker_call(). */
	if (!smp_load_acquire(&w->mbox_pending))
		return 0;
	pthread_mutex_lock(&w->mbox_lock);
	list = w->mbox_head;
	w->mbox_head = NULL;
	w->mbox_tail = &w->mbox_head;
	WRITE_ONCE(w->mbox_pending, 0);
	pthread_mutex_unlock(&w->mbox_lock);
	while ((m = list)) {
		list = m->next;
		m->next = NULL;
		handle_msg(w, m);
		n++;
	}
	return n;
}
