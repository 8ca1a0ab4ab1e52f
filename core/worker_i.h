/* SPDX-License-Identifier: MIT */
/*
 * Worker internals shared by worker.c (the loop, issuing, start/stop),
 * worker_pump.c (ring entries into batches) and worker_done.c
 * (completion, halting, signalling). Not installed. Every
 * function here runs on the worker thread and touches only what it owns
 * (see core_i.h).
 */
#ifndef SMMU_OFFLOAD_CORE_WORKER_I_H
#define SMMU_OFFLOAD_CORE_WORKER_I_H

#include <stdint.h>

#include "common/barrier.h"
#include "core/vcmdq_i.h"

/* Statistics counters: one writer (this thread), relaxed readers. */
#define STAT_ADD(field, v) WRITE_ONCE(field, (field) + (v))

static inline const struct core_config *wcfg(const struct core_worker *w)
{
	return &w->svc->cfg;
}

/* The halts[] slot of ring error @err (SMMU_RING_ERR_*, core.h). */
static inline enum core_halt_slot core_halt_slot(uint32_t err)
{
	switch (err) {
	case SMMU_RING_ERR_CERROR_ILL:
		return CORE_HALT_ILL;
	case SMMU_RING_ERR_CERROR_ABT:
		return CORE_HALT_ABT;
	case SMMU_RING_ERR_CERROR_ATC_INV_SYNC:
		return CORE_HALT_ATC_INV_SYNC;
	default:
		return CORE_HALT_OTHER;
	}
}

/* The cmds_by_class[] slot of ordering class @order (enum cmdq_order_class). */
static inline enum core_cmd_class core_cmd_class_of(unsigned int order)
{
	switch (order) {
	case CMDQ_ORDER_TLB:
		return CORE_CLASS_TLB;
	case CMDQ_ORDER_CFG:
		return CORE_CLASS_CFG;
	default:
		return CORE_CLASS_ATC;
	}
}

/*
 * How many of @avail entries a ring or vCMDQ queue whose run in its
 * vSMMU's open batch is @open_seg (-1: none yet) may take this pass: its
 * budget, the batch's room, a free run slot, the vSMMU's tokens. 0: none
 * (the caller stays blocked: a completion or the token refill, not
 * polling, makes progress).
 */
static inline uint32_t core_vsmmu_room(struct core_worker *w,
				       struct core_vsmmu *vs, int open_seg,
				       uint32_t avail, uint64_t now)
{
	const struct core_batch *b = vs->open;
	uint32_t budget = wcfg(w)->ring_budget;

	if (b->n_segs == CORE_MAX_VSMMU_RINGS && open_seg < 0)
		return 0;
	if (budget > avail)
		budget = avail;
	if (budget > b->cap - b->n)
		budget = b->cap - b->n;
	if (!budget || !core_vsmmu_take_tokens(w, vs, now, &budget))
		return 0;
	return budget;
}

/* worker_done.c */
/* Signal @r's completion eventfd, if it has one and its VMM wants it. */
void core_ring_signal(struct core_ring *r);
/*
 * Error @err found at ring index @idx of @r: the entries before it
 * complete first, then the ring halts there; entries fetched after it are
 * given back. No-op on a halted ring.
 */
void core_ring_set_error(struct core_ring *r, uint32_t idx, uint32_t err);
/*
 * The backend call of @b (b->rc) is done: complete its runs (or fail
 * them: one culprit's ring halts), signal, and make @b the vSMMU's spare.
 */
void core_batch_complete(struct core_worker *w, struct core_batch *b);

/* worker_pump.c */
/*
 * One round-robin pass over the active rings, each taking at most its
 * budget into its vSMMU's open batch and issuing it if it may. Returns the
 * entries taken plus the batches issued; counts in w->polling the rings
 * still inside their poll window; w->throttled: a vSMMU ran out of tokens.
 */
uint32_t core_pump_active(struct core_worker *w);

#endif
