/* SPDX-License-Identifier: MIT */
/*
 * The worker's consuming side: one round-robin pass over the active rings
 * takes each ring's entries (at most its budget, within the vSMMU's token
 * bucket), copies each out of shared memory once, decodes and validates
 * it and builds the vSMMU's open batch, cutting at guest ordering points.
 * vcmdq_w.c does the same for software vCMDQ queues with the batch helpers
 * exported here.
 *
 * Everything in this file runs on the worker thread.
 */
#include "core/worker_i.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

/* ---- consuming a ring ----------------------------------------------------- */

bool core_vsmmu_has_vsid(const struct core_vsmmu *vs, uint64_t vsid)
{
	for (uint32_t i = 0; i < vs->n_devs; i++)
		if (vs->devs[i].vsid == vsid)
			return true;
	return false;
}

bool core_vsmmu_take_tokens(struct core_worker *w, struct core_vsmmu *vs,
			    uint64_t now, uint32_t *budget)
{
	const struct core_config *cfg = wcfg(w);
	double burst = cfg->rate_burst;

	if (!cfg->rate_cmds)
		return true;
	vs->tokens +=
		(double)(now - vs->tokens_ns) * 1e-9 * (double)cfg->rate_cmds;
	vs->tokens_ns = now;
	if (vs->tokens > burst)
		vs->tokens = burst;
	if (vs->tokens < 1.0) {
		STAT_ADD(vs->st_throttled, 1);
		w->throttled = true;
		return false;
	}
	if (*budget > vs->tokens)
		*budget = (uint32_t)vs->tokens;
	return true;
}

/* Opens @r's run in the open batch @b; its entries start at @start. */
static struct core_seg *seg_open(struct core_batch *b, struct core_ring *r,
				 uint32_t start)
{
	struct core_seg *sg;

	r->open_seg = (int)core_batch_seg_open(b, start, r->epoch);
	sg = &b->segs[r->open_seg];
	sg->ring = r;
	r->batches++;
	return sg;
}

enum core_admit core_vsmmu_admit(struct core_vsmmu *vs, unsigned int seg,
				 uint32_t idx)
{
	struct core_batch *b = vs->open;
	unsigned int oc = b->info[b->n].order;

	if (core_batch_admit(b, seg, idx) == CORE_ADMIT_CUT)
		return CORE_ADMIT_CUT;
	STAT_ADD(vs->st_fwd, 1);
	STAT_ADD(vs->st_class[core_cmd_class_of(oc)], 1);
	return CORE_ADMIT_OK;
}

/*
 * Takes up to the per-ring budget of entries from @r into its vSMMU's open
 * batch. Returns the number of entries taken.
 */
static uint32_t ring_pump(struct core_worker *w, struct core_ring *r,
			  uint64_t now)
{
	const struct core_config *cfg = wcfg(w);
	struct core_vsmmu *vs = r->vs;
	struct core_batch *b = vs->open;
	uint32_t avail, budget, got, first, taken = 0, i;
	bool new_seg = false;
	struct core_seg *sg;
	int rc;

	if (r->err_pending || r->detaching || vs->destroy_msg)
		return 0;
	if (r->rc.halted) {
		if (!ring_cons_resume_requested(&r->rc))
			return 0;
		ring_cons_resume(&r->rc);
		r->epoch++;
	}
	rc = ring_cons_poll(&r->rc, &avail);
	if (rc == -EPROTO) {
		r->epoch++;
		STAT_ADD(vs->st_halts[CORE_HALT_OTHER], 1);
		STAT_ADD(w->st_halts[CORE_HALT_OTHER], 1);
		core_ring_signal(r);
		return 0;
	}
	if (rc < 0 || !avail)
		return 0;
	/* Entries wait for room in the open batch: a completion, not
	 * polling, will make progress. */
	r->blocked = true;
	budget = core_vsmmu_room(w, vs, r->open_seg, avail, now);
	if (!budget)
		return 0;
	r->blocked = false;

	got = ring_cons_claim(&r->rc, budget);
	first = r->rc.fetch - got;
	if (!b->n_entries)
		b->t_open = now;
	if (r->open_seg < 0) {
		seg_open(b, r, first);
		new_seg = true;
	}
	sg = &b->segs[r->open_seg];

	for (i = 0; i < got; i++) {
		uint32_t idx = sg->end;
		const struct cmdq_info *inf = &b->info[b->n];

		/* The one copy out of shared memory (ring_cons_load). */
		struct smmu_ring_entry e = ring_cons_load(&r->rc, first + i);

		/*
		 * Decoded once, straight into the batch's next slot (budget
		 * <= cap - n keeps it in bounds): forwarding it is then
		 * batch_admit(); any other class leaves the slot free.
		 */
		if (cmdq_decode(&vs->caps, &e, &b->cmds[b->n],
				&b->info[b->n]) != CMDQ_CERROR_NONE) {
			core_ring_set_error(r, idx, SMMU_RING_ERR_CERROR_ILL);
			break;
		}
		if (inf->cls == CMDQ_CLASS_SYNC) {
			core_batch_sync(b, (unsigned int)r->open_seg, idx);
		} else if (inf->cls == CMDQ_CLASS_FORWARD) {
			if ((inf->flags & CMDQ_INFO_SID) &&
			    !core_vsmmu_has_vsid(vs, inf->sid)) {
				core_ring_set_error(r, idx,
						    SMMU_RING_ERR_CERROR_ILL);
				break;
			}
			/* An ordering point: it goes in the next batch. */
			if (core_vsmmu_admit(vs, (unsigned int)r->open_seg,
					     idx) == CORE_ADMIT_CUT) {
				ring_cons_rewind(&r->rc, idx);
				r->blocked = true;
				break;
			}
		} else if (inf->cls != CMDQ_CLASS_NOP) {
			core_ring_set_error(r, idx, SMMU_RING_ERR_CERROR_ILL);
			break;
		}
		sg->end = idx + 1;
		b->n_entries++;
		taken++;
	}
	if (i < got && !r->err_pending)
		ring_cons_rewind(&r->rc, sg->end);
	if (new_seg && !taken) {
		/* Nothing went in: an empty run would hold the ring. */
		b->n_segs--;
		r->open_seg = -1;
		r->batches--;
	}
	if (cfg->rate_cmds)
		vs->tokens -= taken;
	STAT_ADD(r->st_entries, taken);
	STAT_ADD(vs->st_entries, taken);
	return taken;
}

/*
 * One round-robin pass over the active rings, each taking at most its
 * budget, so a flooding ring cannot starve the others. Returns entries
 * taken; counts in w->polling the rings still inside their poll window.
 */
uint32_t core_pump_active(struct core_worker *w)
{
	uint64_t now = core_now_ns();
	uint64_t poll_ns = (uint64_t)wcfg(w)->poll_us * 1000;
	struct core_ring **pp = &w->active, *r;
	uint32_t total = 0;

	w->now = now;
	w->polling = 0;
	w->throttled = false;
	while ((r = *pp)) {
		uint32_t n;

		r->blocked = false;
		n = ring_pump(w, r, now);
		total += core_vsmmu_try_issue(w, r->vs);
		if (n) {
			r->last_work_ns = now;
			total += n;
		} else if (!r->blocked && now - r->last_work_ns >= poll_ns) {
			/*
			 * Idle past the poll window: from now on the VMM
			 * rings the doorbell. The re-check inside closes the
			 * race with a producer that did not see the flag.
			 */
			if (!ring_cons_set_need_wakeup(&r->rc)) {
				/* A completion above may have put a rewound ring
				 * at the head of the list: unlink r where it is. */
				while (*pp != r)
					pp = &(*pp)->next_active;
				r->active = false;
				*pp = r->next_active;
				continue;
			}
			/* Entries arrived meanwhile and the flag is clear
			 * again: no doorbell will come, take them next. */
			w->polling++;
		} else if (!r->blocked) {
			w->polling++;
		}
		pp = &r->next_active;
	}
	return total;
}
