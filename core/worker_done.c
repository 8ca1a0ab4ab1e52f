/* SPDX-License-Identifier: MIT */
/*
 * The worker's completion side: a finished batch completes its rings'
 * entries (or, when the backend call failed, halts the culprit's ring and
 * gives the rest back), rings halt once everything before their error has
 * completed, and the VMM is signalled.
 *
 * Everything in this file runs on the worker thread.
 */
#include "core/worker_i.h"

#include <errno.h>
#include <stdint.h>

/* ---- rings: completion, signalling, halting ----------------------------- */

void core_ring_signal(struct core_ring *r)
{
	if (r->complete_fd < 0 || !ring_cons_want_signal(&r->rc))
		return;
	/*
	 * Never write(2) the VMM's eventfd: it blocks on a full counter
	 * unless O_NONBLOCK, which the VMM can clear on the file description
	 * we share at any time. The kernel's eventfd_signal(), reached
	 * through an AIO completion, never blocks (signal.c).
	 */
	if (core_signal_post(&r->vs->w->sig, r->complete_fd) == 0)
		STAT_ADD(r->st_signals, 1);
}

void core_ring_activate(struct core_worker *w, struct core_ring *r)
{
	if (r->active || r->detaching)
		return;
	ring_cons_clear_need_wakeup(&r->rc);
	r->active = true;
	r->last_work_ns = core_now_ns();
	r->next_active = w->active;
	w->active = r;
}

/* Halts now if the ring has a pending error and everything before it has
 * completed. */
static void ring_try_halt(struct core_ring *r)
{
	if (!r->err_pending || r->rc.cons != r->err_idx)
		return;
	/* Counted before the halt is visible, as in seg_complete(). */
	STAT_ADD(r->vs->st_halts[core_halt_slot(r->err_code)], 1);
	STAT_ADD(r->vs->w->st_halts[core_halt_slot(r->err_code)], 1);
	ring_cons_halt(&r->rc, r->err_idx, r->err_code);
	r->err_pending = false;
	r->epoch++;
	core_ring_signal(r);
}

/*
 * Error found at ring index @idx: entries before it complete first (they
 * may sit in batches), then the ring halts there. Entries fetched after it
 * are given back.
 */
void core_ring_set_error(struct core_ring *r, uint32_t idx, uint32_t err)
{
	/* A later error found while filling a batch is superseded by an
	 * earlier one found when a batch fails: no need to compare. */
	if (r->rc.halted)
		return;
	r->err_pending = true;
	r->err_idx = idx;
	r->err_code = err;
	ring_cons_rewind(&r->rc, idx);
	ring_try_halt(r);
}

/*
 * Give back entries fetched but not completed, from @idx on. The ring
 * must be polled again: it may have gone idle (NEED_WAKEUP) since they
 * were taken, and its VMM, having published them, rings no doorbell.
 */
static void ring_rewind(struct core_worker *w, struct core_ring *r,
			uint32_t idx)
{
	if (r->rc.halted)
		return;
	ring_cons_rewind(&r->rc, idx);
	/* A pending error past @idx is found again when refetched. */
	r->err_pending = false;
	core_ring_activate(w, r);
}

/* ---- vSMMU batch lifecycle ---------------------------------------------- */

/* Last use of the batch's rings: a detached ring may be freed after. */
static void batch_release_segs(struct core_worker *w, struct core_batch *b)
{
	for (uint32_t s = 0; s < b->n_segs; s++) {
		struct core_ring *r = b->segs[s].ring;

		if (!r) {
			core_vq_seg_release(w, &b->segs[s], b == b->vs->open);
			continue;
		}
		r->batches--;
		if (b == r->vs->open)
			r->open_seg = -1;
		core_ring_check_detach(w, r);
	}
}

/* Gives back @sg's entries from @idx on (a ring's or a vCMDQ queue's). */
static void seg_rewind(struct core_worker *w, struct core_seg *sg, uint32_t idx)
{
	if (sg->vq)
		core_vq_seg_rewind(w, sg, idx);
	else
		ring_rewind(w, sg->ring, idx);
}

/* Drops the open batch: its entries go back to their rings. */
static void vsmmu_drop_open(struct core_worker *w, struct core_vsmmu *vs)
{
	struct core_batch *b = vs->open;

	for (uint32_t s = 0; s < b->n_segs; s++)
		seg_rewind(w, &b->segs[s], b->segs[s].start);
	batch_release_segs(w, b);
	core_batch_reset(b, b->seq);
}

/* Complete @sg's ring up to @upto, which passes @syncs guest CMD_SYNCs. */
static void seg_complete(struct core_seg *sg, uint32_t upto, uint32_t syncs)
{
	struct core_ring *r = sg->ring;

	if (!r) {
		core_vq_seg_complete(sg, upto, syncs);
		return;
	}
	/*
	 * A halt since the run was taken (epoch), or a rewind below it,
	 * makes it stale: the entries will be taken again.
	 */
	if (sg->epoch != r->epoch || r->rc.halted)
		return;
	if ((int32_t)(upto - r->rc.cons) > 0 &&
	    (int32_t)(r->rc.fetch - upto) >= 0) {
		/* Counted before the completion is visible (release in
		 * ring_cons_complete()): a VMM that saw its SYNC complete
		 * finds it in the stats. */
		STAT_ADD(r->st_syncs, syncs);
		STAT_ADD(r->vs->st_syncs, syncs);
		ring_cons_complete(&r->rc, upto);
	}
}

/*
 * Applies the settlement of the failed batch @b (core_batch_settle()):
 * the culprit's run halts, every other run completes up to its first
 * command not known complete and gets the rest back, as does everything
 * in the open batch, which was built on the assumption that this batch
 * succeeds.
 */
static void batch_fail(struct core_worker *w, struct core_batch *b,
		       const struct core_settle *p)
{
	struct core_vsmmu *vs = b->vs;

	STAT_ADD(vs->st_backend_errors, 1);
	STAT_ADD(w->st_backend_errors, 1);
	vsmmu_drop_open(w, vs);
	for (uint32_t s = 0; s < b->n_segs; s++) {
		struct core_seg *sg = &b->segs[s];
		bool culprit = (int)s == p->halt_seg;

		if (culprit && sg->vq && core_vq_seg_current(sg)) {
			seg_complete(sg, p->halt_idx, p->halt_syncs);
			core_vq_seg_halt(sg, p->halt_idx, p->err);
			continue;
		}
		if (culprit && sg->ring && sg->epoch == sg->ring->epoch) {
			seg_complete(sg, p->halt_idx, p->halt_syncs);
			core_ring_set_error(sg->ring, p->halt_idx, p->err);
			continue;
		}
		seg_complete(sg, p->seg[s].upto, p->seg[s].syncs);
		seg_rewind(w, sg, p->seg[s].upto);
	}
}

void core_batch_complete(struct core_worker *w, struct core_batch *b)
{
	struct core_vsmmu *vs = b->vs;

	struct core_settle plan;

	if (b->n) {
		STAT_ADD(vs->st_ioctls, b->calls);
		STAT_ADD(w->st_ioctls, b->calls);
		STAT_ADD(vs->st_host_syncs,
			 (b->n_issue + IOFD_HOST_CHUNK - 1) / IOFD_HOST_CHUNK);
		STAT_ADD(w->st_host_syncs,
			 (b->n_issue + IOFD_HOST_CHUNK - 1) / IOFD_HOST_CHUNK);
	}

	if (b->n)
		core_hist_add_shared(w->h_batch, b->n_issue, 1);
	core_batch_settle(b, &plan);
	if (plan.halt_seg < 0) {
		/* w->now: read at the call's end or the completion. */
		uint64_t lat = w->now - b->t_open;

		for (uint32_t s = 0; s < b->n_segs; s++) {
			/* Sampled before the completion, as in seg_complete(). */
			core_hist_add_shared(w->h_sync, lat, plan.seg[s].syncs);
			seg_complete(&b->segs[s], plan.seg[s].upto,
				     plan.seg[s].syncs);
		}
	} else {
		batch_fail(w, b, &plan);
	}
	for (uint32_t s = 0; s < b->n_segs; s++) {
		struct core_ring *r = b->segs[s].ring;

		if (!r) {
			core_vq_seg_done(w, &b->segs[s]);
			continue;
		}
		ring_try_halt(r);
		core_ring_signal(r);
	}
	batch_release_segs(w, b);
	vs->done_seq = b->seq;
	vs->inflight = NULL;
	vs->spare = b;
	core_vsmmu_check_fences(vs);
	/* vsmmu_check_destroy() runs from the loop, never from here: the
	 * vSMMU must outlive every caller on this stack. */
}
