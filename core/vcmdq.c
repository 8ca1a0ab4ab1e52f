/* SPDX-License-Identifier: MIT */
/*
 * The control side of software vCMDQs (core.h): guest RAM regions, the
 * register page, BASE and the gate. Each call checks what it can without
 * the worker (fds, sizes, version), then hands the objects to the worker
 * of the vSMMU's host SMMU through the mailbox, with the deadline of
 * every control call (ctl.c); the worker owns the page and the guest RAM
 * table from then on. Lookups take svc->lock, never across a wait.
 *
 * Thread context: control threads, except core_vcmdq_get/put (either).
 */
#include "core/vcmdq_i.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/barrier.h"

void core_vcmdq_get(struct core_vcmdq *vc)
{
	atomic_fetch_add_explicit((_Atomic unsigned int *)&vc->refs, 1,
				  memory_order_relaxed);
}

void core_vcmdq_put(struct core_vcmdq *vc)
{
	if (!vc || atomic_fetch_sub_explicit((_Atomic unsigned int *)&vc->refs,
					     1, memory_order_acq_rel) != 1)
		return;
	/* Unmapped by the worker when it unlinked it; never linked: no
	 * queue was enabled, so no gmem pin is dropped here. */
	ring_vcmdq_unmap(&vc->v);
	if (vc->irq_fd >= 0)
		close(vc->irq_fd);
	if (vc->uffd >= 0)
		close(vc->uffd);
	core_vsmmu_put(vc->vs);
	free(vc);
}

static struct core_vcmdq *find_vcmdq(struct core_service *svc, uint32_t id)
{
	for (uint32_t i = 0; i < svc->n_vcmdqs; i++)
		if (svc->vcmdqs[i]->id == id && !svc->vcmdqs[i]->attaching)
			return svc->vcmdqs[i];
	return NULL;
}

static void reg_remove_locked(struct core_service *svc, struct core_vcmdq *vc)
{
	for (uint32_t i = 0; i < svc->n_vcmdqs; i++)
		if (svc->vcmdqs[i] == vc) {
			svc->vcmdqs[i] = svc->vcmdqs[--svc->n_vcmdqs];
			return;
		}
}

void core_vcmdq_unregister_vsmmu_locked(struct core_service *svc,
					struct core_vsmmu *vs)
{
	for (uint32_t i = svc->n_vcmdqs; i-- > 0;) {
		struct core_vcmdq *vc = svc->vcmdqs[i];

		if (vc->vs != vs || vc->attaching)
			continue;
		svc->vcmdqs[i] = svc->vcmdqs[--svc->n_vcmdqs];
		/* The worker keeps its own reference while it drains. */
		core_vcmdq_put(vc);
	}
}

/* ---- guest RAM ------------------------------------------------------------ */

int core_gmem_add(struct core_service *svc, uint32_t vsmmu_id, int memfd,
		  uint64_t offset, uint64_t gpa, uint64_t size)
{
	struct core_msg *m;
	int r;

	if (memfd < 0)
		return -EBADF;
	r = core_vsmmu_msg(svc, vsmmu_id, CORE_MSG_ADD_GMEM, &m);
	if (r < 0)
		return r;
	/* The message's own fd: the caller may close its fd at any time,
	 * even while a timed-out message still waits for the worker. */
	m->fd = fcntl(memfd, F_DUPFD_CLOEXEC, 3);
	if (m->fd < 0) {
		r = -errno;
		core_msg_put(m);
		return r;
	}
	m->offset = offset;
	m->gpa = gpa;
	m->size = size;
	r = core_worker_call(m->vs->w, m, false);
	core_msg_put(m);
	return r;
}

int core_gmem_remove(struct core_service *svc, uint32_t vsmmu_id, uint64_t gpa,
		     uint64_t size)
{
	struct core_msg *m;
	int r;

	r = core_vsmmu_msg(svc, vsmmu_id, CORE_MSG_DEL_GMEM, &m);
	if (r < 0)
		return r;
	m->gpa = gpa;
	m->size = size;
	r = core_worker_call(m->vs->w, m, true);
	core_msg_put(m);
	return r;
}

/* ---- register pages -------------------------------------------------------- */

/* Reserve @vc's place: the vCMDQ budget, the one-page-one-consumer rule.
 * Caller holds svc->lock. */
static int vcmdq_reserve_locked(struct core_service *svc, struct core_vcmdq *vc,
				struct core_vsmmu *vs)
{
	struct core_vcmdq **a;

	if (svc->n_vcmdqs >= svc->max_rings)
		return -EMFILE;
	for (uint32_t i = 0; i < svc->n_vcmdqs; i++)
		if (svc->vcmdqs[i]->file_dev == vc->file_dev &&
		    svc->vcmdqs[i]->file_ino == vc->file_ino)
			return -EEXIST;
	if (svc->n_vcmdqs == svc->cap_vcmdqs) {
		uint32_t cap = svc->cap_vcmdqs ? svc->cap_vcmdqs * 2 : 16;

		a = realloc(svc->vcmdqs, cap * sizeof(*a));
		if (!a)
			return -ENOMEM;
		svc->vcmdqs = a;
		svc->cap_vcmdqs = cap;
	}
	svc->vcmdqs[svc->n_vcmdqs++] = vc;
	core_vcmdq_get(vc); /* the registry's */
	core_vsmmu_get(vs);
	vc->vs = vs;
	vc->attaching = true;
	vc->id = svc->next_id++;
	return 0;
}

static int vcmdq_check_args(struct core_service *svc, int page_memfd,
			    unsigned int nq, uint32_t version,
			    uint32_t features, int irq_fd)
{
	int r;

	/* A wrong irq fd first: the errno the RPC server passes on as is. */
	if (irq_fd >= 0) {
		r = common_fd_check_eventfd(irq_fd);
		if (r < 0)
			return r;
	}
	r = ring_vcmdq_mode_check(version, features);
	if (r < 0)
		return r;
	if (!nq || nq > SMMU_VCMDQ_MAX_QUEUES)
		return -EINVAL;
	if (page_memfd < 0)
		return -EBADF;
	if (irq_fd >= 0 && !svc->signal_ok)
		return -EOPNOTSUPP;
	return 0;
}

int core_vcmdq_attach(struct core_service *svc, uint32_t vsmmu_id,
		      int page_memfd, unsigned int nq, uint32_t version,
		      uint32_t features, int irq_fd, uint32_t *ret_id)
{
	struct core_msg *m = NULL;
	struct core_vsmmu *vs;
	struct core_vcmdq *vc;
	bool registered = false;
	struct stat st;
	int rc;

	rc = vcmdq_check_args(svc, page_memfd, nq, version, features, irq_fd);
	if (rc < 0)
		return rc;
	if (fstat(page_memfd, &st) < 0)
		return -errno;
	vc = calloc(1, sizeof(*vc) + nq * sizeof(vc->q[0]));
	if (!vc)
		return -ENOMEM;
	vc->refs = 1; /* ours */
	vc->irq_fd = -1;
	vc->uffd = -1;
	vc->nq = nq;
	vc->file_dev = st.st_dev;
	vc->file_ino = st.st_ino;
	for (unsigned int l = 0; l < nq; l++) {
		vc->q[l].vc = vc;
		vc->q[l].l = l;
		vc->q[l].open_seg = -1;
	}
	pthread_mutex_lock(&svc->lock);
	vs = NULL;
	for (uint32_t i = 0; i < svc->n_vsmmus; i++)
		if (svc->vsmmus[i]->id == vsmmu_id)
			vs = svc->vsmmus[i];
	rc = vs ? vcmdq_reserve_locked(svc, vc, vs) : -ENOENT;
	registered = rc == 0;
	pthread_mutex_unlock(&svc->lock);
	if (rc < 0)
		goto out;
	if (irq_fd >= 0) {
		vc->irq_fd = fcntl(irq_fd, F_DUPFD_CLOEXEC, 3);
		if (vc->irq_fd < 0) {
			rc = -errno;
			goto out;
		}
	}
	/* Maps the page (checks seals and size); the gmem table is only
	 * remembered here, used by the worker. */
	rc = ring_vcmdq_map(page_memfd, nq, vs->gmem, &vc->v);
	if (rc < 0)
		goto out;
	m = core_msg_new(CORE_MSG_ADD_VCMDQ);
	if (!m) {
		rc = -ENOMEM;
		goto out;
	}
	core_vcmdq_get(vc);
	m->vcmdq = vc;
	rc = core_worker_call(vs->w, m, false);
	if (rc < 0)
		goto out;
	pthread_mutex_lock(&svc->lock);
	/* A destroy of its vSMMU meanwhile: it detaches the vCMDQ. */
	if (vs->registered) {
		vc->attaching = false;
		*ret_id = vc->id;
		registered = false;
	} else {
		rc = -ENOENT;
	}
	pthread_mutex_unlock(&svc->lock);
out:
	if (registered) {
		pthread_mutex_lock(&svc->lock);
		reg_remove_locked(svc, vc);
		pthread_mutex_unlock(&svc->lock);
		core_vcmdq_put(vc); /* the registry's */
	}
	core_msg_put(m);
	core_vcmdq_put(vc);
	return rc;
}

/* A message about registered vCMDQ @id, holding a reference to it. */
static int vcmdq_msg(struct core_service *svc, uint32_t id,
		     enum core_msg_type type, bool unregister,
		     struct core_msg **ret)
{
	struct core_msg *m = core_msg_new(type);
	struct core_vcmdq *vc;

	if (!m)
		return -ENOMEM;
	pthread_mutex_lock(&svc->lock);
	vc = find_vcmdq(svc, id);
	if (vc && unregister)
		reg_remove_locked(svc, vc); /* its reference is the message's */
	else if (vc)
		core_vcmdq_get(vc);
	pthread_mutex_unlock(&svc->lock);
	if (!vc) {
		core_msg_put(m);
		return -ENOENT;
	}
	m->vcmdq = vc;
	*ret = m;
	return 0;
}

int core_vcmdq_detach(struct core_service *svc, uint32_t vcmdq_id)
{
	struct core_msg *m;
	int r;

	r = vcmdq_msg(svc, vcmdq_id, CORE_MSG_DEL_VCMDQ, true, &m);
	if (r < 0)
		return r;
	/* Drained and unlinked by the worker, released by the last put;
	 * posted even to a stuck worker (it detaches when it recovers). */
	r = core_worker_call(m->vcmdq->vs->w, m, true);
	core_msg_put(m);
	return r;
}

int core_vcmdq_set_base(struct core_service *svc, uint32_t vcmdq_id,
			unsigned int lidx, uint64_t base)
{
	struct core_msg *m;
	int r;

	r = vcmdq_msg(svc, vcmdq_id, CORE_MSG_VCMDQ_BASE, false, &m);
	if (r < 0)
		return r;
	m->lidx = lidx;
	m->base = base;
	r = core_worker_call(m->vcmdq->vs->w, m, false);
	core_msg_put(m);
	return r;
}

int core_vcmdq_set_ready(struct core_service *svc, uint32_t vcmdq_id,
			 unsigned int lidx, bool ready)
{
	struct core_msg *m;
	int r;

	r = vcmdq_msg(svc, vcmdq_id, CORE_MSG_VCMDQ_READY, false, &m);
	if (r < 0)
		return r;
	m->lidx = lidx;
	m->ready = ready;
	r = core_worker_call(m->vcmdq->vs->w, m, false);
	core_msg_put(m);
	return r;
}

int core_vcmdq_set_uffd(struct core_service *svc, uint32_t vcmdq_id, int uffd,
			uint64_t vmm_addr)
{
	struct core_msg *m;
	int r;

	r = common_fd_check_uffd(uffd);
	if (r < 0)
		return r;
	if (vmm_addr & ((uint64_t)sysconf(_SC_PAGESIZE) - 1))
		return -EINVAL;
	r = vcmdq_msg(svc, vcmdq_id, CORE_MSG_VCMDQ_UFFD, false, &m);
	if (r < 0)
		return r;
	m->fd = fcntl(uffd, F_DUPFD_CLOEXEC, 3);
	if (m->fd < 0) {
		r = -errno;
		core_msg_put(m);
		return r;
	}
	m->base = vmm_addr;
	r = core_worker_call(m->vcmdq->vs->w, m, false);
	core_msg_put(m);
	return r;
}

/* ---- statistics ------------------------------------------------------------- */

int core_vcmdq_stats(struct core_service *svc, uint32_t id,
		     struct core_vcmdq_stats *out)
{
	struct core_vcmdq *vc;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&svc->lock);
	vc = find_vcmdq(svc, id);
	if (vc) {
		/* Worker-written counters: relaxed snapshots. */
		out->id = vc->id;
		out->vsmmu_id = vc->vs->id;
		out->nq = vc->nq;
		for (unsigned int l = 0; l < vc->nq; l++) {
			out->state[l] = READ_ONCE(vc->q[l].st_state);
			if (out->state[l] == CORE_VQ_HALTED)
				out->err[l] = READ_ONCE(vc->q[l].st_err);
		}
		out->err_seq = READ_ONCE(vc->st_err_seq);
		out->entries = READ_ONCE(vc->st_entries);
		out->syncs = READ_ONCE(vc->st_syncs);
		out->signals = READ_ONCE(vc->st_signals);
		out->wakeups = READ_ONCE(vc->st_wakeups);
		for (unsigned int k = 0; k < CORE_HALT_SLOTS; k++)
			out->halts[k] = READ_ONCE(vc->st_halts[k]);
		out->arms = READ_ONCE(vc->st_arms);
		out->faults = READ_ONCE(vc->st_faults);
		out->armed = READ_ONCE(vc->st_armed);
	}
	pthread_mutex_unlock(&svc->lock);
	return vc ? 0 : -ENOENT;
}

int core_list_vcmdqs(struct core_service *svc, uint32_t vsmmu_id, uint32_t *ids,
		     uint32_t max, uint32_t *ret_n)
{
	uint32_t n = 0;

	pthread_mutex_lock(&svc->lock);
	for (uint32_t i = 0; i < svc->n_vcmdqs; i++) {
		struct core_vcmdq *vc = svc->vcmdqs[i];

		if (vc->attaching || (vsmmu_id && vc->vs->id != vsmmu_id))
			continue;
		if (n < max)
			ids[n] = vc->id;
		n++;
	}
	pthread_mutex_unlock(&svc->lock);
	*ret_n = n;
	return 0;
}

int core_vcmdq_queues(struct core_service *svc, uint32_t id,
		      struct core_vq_info *out, unsigned int max,
		      unsigned int *ret_nq)
{
	struct core_vcmdq *vc;

	pthread_mutex_lock(&svc->lock);
	vc = find_vcmdq(svc, id);
	/* Registered, so mapped: the worker unmaps only after the
	 * registry let go of it (detach, vSMMU destroy). */
	for (unsigned int l = 0; vc && l < vc->nq && l < max; l++) {
		struct ring_vcmdq_view v;

		ring_vcmdq_view_read(&vc->v, l, &v);
		out[l] = (struct core_vq_info){
			.state = (uint8_t)v.state,
			.ready = v.ready,
			.base_set = v.base_set,
			.err = v.err,
			.prod = v.prod,
			.cons = v.cons,
			.log2size = (uint32_t)(v.base &
					       SMMU_VCMDQ_BASE_LOG2SIZE_MASK),
			.base_gpa = v.base & SMMU_VCMDQ_BASE_ADDR_MASK,
		};
	}
	if (vc)
		*ret_nq = vc->nq;
	pthread_mutex_unlock(&svc->lock);
	return vc ? 0 : -ENOENT;
}

_Static_assert(CORE_GMEM_MAX_REGIONS == RING_GMEM_MAX_REGIONS,
	       "core.h's region bound is ring_gmem's");

int core_list_gmem(struct core_service *svc, uint32_t vsmmu_id,
		   struct core_gmem_info *out, unsigned int max,
		   unsigned int *ret_n)
{
	struct ring_gmem_info g[RING_GMEM_MAX_REGIONS];
	unsigned int n = 0;
	int r = -ENOENT;

	pthread_mutex_lock(&svc->lock);
	for (uint32_t i = 0; i < svc->n_vsmmus; i++)
		if (svc->vsmmus[i]->id == vsmmu_id) {
			/* Allocated at create, freed at the last put. */
			r = ring_gmem_list(svc->vsmmus[i]->gmem, g,
					   RING_GMEM_MAX_REGIONS, &n);
			break;
		}
	pthread_mutex_unlock(&svc->lock);
	if (r)
		return r;
	for (unsigned int i = 0; i < n && i < max; i++)
		out[i] = (struct core_gmem_info){ g[i].gpa, g[i].size,
						  g[i].offset };
	*ret_n = n;
	return 0;
}
