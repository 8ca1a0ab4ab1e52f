/* SPDX-License-Identifier: MIT */
/*
 * Control messages to workers, with a deadline, and the references that
 * let a message and its objects outlive a caller that stopped waiting.
 *
 * Why: a worker can be slow (a host sync that takes seconds) or stuck (a
 * backend call that never returns). The control plane must not wait for
 * it forever, nor let one stuck worker freeze calls about other host
 * SMMUs. So a call waits until the service's ctl_timeout, then gives up;
 * the message is on the heap and reference-counted, so the worker can
 * still answer it later, and whatever the message owns (a detached ring,
 * a destroyed vSMMU) is released by whoever drops the last reference.
 * After one timeout the worker counts as stuck and further calls to it
 * fail at once, until it answers something again.
 *
 * Thread context: control threads, except core_msg_answer() and the puts,
 * which the worker calls too. Nothing here blocks without a deadline.
 */
#include "core/core_i.h"
#include "ring/gmem.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "common/barrier.h"

#define A(p) ((_Atomic unsigned int *)(p))

struct core_msg *core_msg_new(enum core_msg_type type)
{
	struct core_msg *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->type = type;
	m->refs = 1;
	m->state = CORE_MSG_POSTED;
	m->fd = -1;
	sem_init(&m->sem, 0, 0);
	return m;
}

void core_msg_put(struct core_msg *m)
{
	if (!m)
		return;
	/* acq_rel: the last owner sees every write of the others. */
	if (atomic_fetch_sub_explicit(A(&m->refs), 1, memory_order_acq_rel) !=
	    1)
		return;
	if (m->ring)
		core_ring_put(m->ring);
	if (m->vcmdq)
		core_vcmdq_put(m->vcmdq);
	if (m->vs)
		core_vsmmu_put(m->vs);
	if (m->fd >= 0)
		close(m->fd);
	sem_destroy(&m->sem);
	free(m);
}

void core_ring_get(struct core_ring *r)
{
	atomic_fetch_add_explicit(A(&r->refs), 1, memory_order_relaxed);
}

void core_ring_put(struct core_ring *r)
{
	struct core_vsmmu *vs;

	if (!r || atomic_fetch_sub_explicit(A(&r->refs), 1,
					    memory_order_acq_rel) != 1)
		return;
	vs = r->vs;
	ring_cons_unmap(&r->rc);
	if (r->memfd >= 0)
		close(r->memfd);
	if (r->doorbell_fd >= 0)
		close(r->doorbell_fd);
	if (r->complete_fd >= 0)
		close(r->complete_fd);
	if (vs) {
		atomic_fetch_sub_explicit(A(&vs->w->svc->rings_alloc), 1,
					  memory_order_relaxed);
		core_vsmmu_put(vs);
	}
	free(r);
}

void core_vsmmu_get(struct core_vsmmu *vs)
{
	atomic_fetch_add_explicit(A(&vs->refs), 1, memory_order_relaxed);
}

void core_vsmmu_put(struct core_vsmmu *vs)
{
	if (!vs || atomic_fetch_sub_explicit(A(&vs->refs), 1,
					     memory_order_acq_rel) != 1)
		return;
	/* The worker destroyed its vDEVICEs before it let go of it. */
	if (vs->viommu) {
		struct core_service *svc = vs->w->svc;

		pthread_mutex_lock(&svc->bind_lock);
		iofd_viommu_unbind(vs->viommu);
		pthread_mutex_unlock(&svc->bind_lock);
	}
	pthread_mutex_destroy(&vs->devs_lock);
	/* Unmapped by the worker already, unless it never served it. */
	if (vs->gmem)
		ring_gmem_done(vs->gmem);
	free(vs->gmem);
	free(vs);
}

void core_worker_post(struct core_worker *w, struct core_msg *m)
{
	uint64_t one = 1;
	ssize_t wr;

	atomic_fetch_add_explicit(A(&m->refs), 1, memory_order_relaxed);
	m->next = NULL;
	pthread_mutex_lock(&w->mbox_lock);
	*w->mbox_tail = m;
	w->mbox_tail = &m->next;
	/* R_MBOX: the message is linked before the flag is seen. */
	smp_store_release(&w->mbox_pending, 1);
	pthread_mutex_unlock(&w->mbox_lock);
	/* Our own non-blocking eventfd: a full counter already wakes. */
	wr = write(w->ctl_efd, &one, sizeof(one));
	(void)wr;
}

static void ctl_timed_out(struct core_worker *w)
{
	atomic_fetch_add_explicit((_Atomic uint64_t *)&w->st_ctl_timeouts, 1,
				  memory_order_relaxed);
	atomic_store_explicit(A(&w->stuck), 1, memory_order_relaxed);
}

int core_worker_call(struct core_worker *w, struct core_msg *m,
		     bool post_if_stuck)
{
	uint64_t deadline =
		core_now_ns() + (uint64_t)w->svc->cfg.ctl_timeout_ms * 1000000;
	struct timespec ts = {
		.tv_sec = (time_t)(deadline / 1000000000),
		.tv_nsec = (long)(deadline % 1000000000),
	};
	unsigned int expect = CORE_MSG_POSTED;
	int r;

	if (atomic_load_explicit(A(&w->stuck), memory_order_relaxed)) {
		if (post_if_stuck)
			core_worker_post(w, m);
		ctl_timed_out(w);
		return -ETIMEDOUT;
	}
	core_worker_post(w, m);
	do
		r = sem_clockwait(&m->sem, CLOCK_MONOTONIC, &ts);
	while (r < 0 && errno == EINTR);
	if (r < 0 && atomic_compare_exchange_strong_explicit(
			     A(&m->state), &expect, CORE_MSG_ABANDONED,
			     memory_order_acq_rel, memory_order_acquire)) {
		ctl_timed_out(w);
		return -ETIMEDOUT;
	}
	/*
	 * Answered (perhaps just as the deadline passed: the failed
	 * exchange acquired the worker's answer). A_ANSWER pairs with
	 * R_ANSWER in core_msg_answer().
	 */
	(void)atomic_load_explicit(A(&m->state), memory_order_acquire);
	/*
	 * The worker is done with the objects once it answered: release
	 * them here, before the caller returns (a detached ring's fds are
	 * closed when core_ring_detach() returns), not whenever the worker
	 * drops its reference to the message. Whichever put is the last
	 * sees these NULLs (acq_rel on @refs).
	 */
	core_ring_put(m->ring);
	if (m->vcmdq)
		core_vcmdq_put(m->vcmdq);
	core_vsmmu_put(m->vs);
	m->ring = NULL;
	m->vcmdq = NULL;
	m->vs = NULL;
	return m->result;
}

bool core_msg_answer(struct core_worker *w, struct core_msg *m, int result)
{
	unsigned int expect = CORE_MSG_POSTED;
	bool answered;

	m->result = result;
	/* R_ANSWER: @result (and ret_ fields) before the state. */
	answered = atomic_compare_exchange_strong_explicit(
		A(&m->state), &expect, CORE_MSG_ANSWERED, memory_order_acq_rel,
		memory_order_acquire);
	if (answered)
		sem_post(&m->sem);
	/* Any answer, late ones too, shows the worker is back. */
	atomic_store_explicit(A(&w->stuck), 0, memory_order_relaxed);
	return answered;
}
