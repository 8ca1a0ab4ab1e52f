/* SPDX-License-Identifier: MIT */
/*
 * core/batch.h - the batch: the FORWARD commands of one vSMMU that go to
 * the backend together, from admission to the per-run settlement plan.
 *
 * A pure module: no threads, locks, statistics, rings or worker state.
 * Its functions read and write the batch they are given (and call the
 * backend through the function they are given) and nothing else, so they
 * run on whichever thread owns the batch (core_i.h: the worker, or an
 * issuer while the batch is in flight) and are tested directly
 * (tests/core/test-batch.c) and measured directly (bench/consumer-drive).
 *
 * Lifecycle, one call each:
 *   admit   core_batch_seg_open(), core_batch_sync(), core_batch_admit():
 *           the caller copies and decodes each entry straight into the
 *           batch's next slot; admission records where it came from and
 *           applies the ordering rule (a guest CMD_SYNC between ordering
 *           classes is a cut: the command goes in the next batch).
 *   seal    core_batch_seal(): the coalesced copy that is issued.
 *   execute core_batch_execute(): the backend call(s) and the ONLY place
 *           that maps backend results to per-command outcomes, including
 *           all failure localisation (re-issue of the originals after a
 *           coalesced list failed; bisection of a host chunk a backend
 *           could not pin down). Backends report, they never retry.
 *   settle  core_batch_settle(): per run, complete up to X passing S
 *           guest CMD_SYNCs, then nothing / give back from X / halt at Y
 *           with error E. The caller applies the plan to its rings.
 */
#ifndef SMMU_OFFLOAD_CORE_BATCH_H
#define SMMU_OFFLOAD_CORE_BATCH_H

#include <stdbool.h>
#include <stdint.h>

#include <smmu-offload/ring.h>

#include "cmdq/cmdq.h"
#include "core/core.h"
#include "iommufd/iofd.h"

struct core_ring;
struct core_vq;
struct core_vsmmu;
struct core_issuer;

/*
 * A contiguous run of one ring's (or vCMDQ queue's) entries inside a
 * batch: [start, end). @epoch: the ring's epoch (a queue's generation)
 * when the run was taken; a halt or rewind moves it and makes the run
 * stale (its completion then publishes nothing). @ring and @vq are the
 * caller's: batch.c never reads them.
 */
struct core_seg {
	struct core_ring *ring; /* NULL for a vCMDQ queue's run */
	struct core_vq *vq; /* NULL for a ring's run */
	uint32_t start, end;
	uint32_t epoch;
	uint32_t syncs; /* guest CMD_SYNCs in the run */
	unsigned int mask; /* enum cmdq_order_class of its commands */
	bool synced; /* a CMD_SYNC follows a command of the run */
	bool has_atc;
	bool pending; /* a command of the run has no CMD_SYNC after it yet */
};

/*
 * A guest CMD_SYNC that follows commands of its run: the run's commands
 * at batch positions below @pos (and above its previous mark) have it as
 * their first CMD_SYNC, at ring index @idx. Recorded only when the run
 * has such a command (core_seg.pending), so a batch holds at most one
 * per original: per command, admission records nothing about later
 * CMD_SYNCs, and core_batch_sync_at() finds them on failure only.
 */
struct core_sync_mark {
	uint32_t pos;
	uint32_t idx;
	uint32_t seg;
};

/* enum core_batch_owner: who may touch an async batch (core_batch.owner). */
enum core_batch_owner {
	CORE_BATCH_WORKER,
	CORE_BATCH_ISSUER,
};

/*
 * A batch: the commands of one vSMMU issued by one core_batch_execute().
 * Owned by the worker, except while in flight in async mode: from the
 * hand-off (release store of @owner = ISSUER) until the worker has seen
 * the issuer's completion CQE (acquire load of @owner = WORKER), the
 * issuer owns it and core_batch_execute() writes the result fields; the
 * worker touches none of it meanwhile (issuer.c). @vs, @owner, @issuer,
 * @call_ns and @next_done are the worker's: batch.c never reads them.
 */
struct core_batch {
	struct core_vsmmu *vs;
	uint64_t seq;
	uint32_t cap; /* = config max_batch */
	uint32_t n; /* original FORWARD commands */
	uint32_t n_entries; /* ring entries accounted (all classes) */
	struct cmdq_cmd *cmds; /* [cap] originals, ring order per ring */
	struct cmdq_info *info; /* [cap] cmdq_decode() of each original */
	uint32_t *idx; /* [cap] ring index of each original */
	uint8_t *seg_of; /* [cap] segment of each original */
	uint32_t *syncs_before; /* [cap] CMD_SYNCs of its run before each */
	struct core_sync_mark *marks; /* [cap] in ring order per run */
	uint32_t n_marks;
	struct cmdq_cmd *issue; /* [cap] the coalesced copy that is issued */
	uint32_t n_issue;
	uint64_t t_open; /* when its first entry was taken (ns) */
	struct core_seg segs[CORE_MAX_VSMMU_RINGS];
	uint32_t n_segs;
	/*
	 * Result (core_batch_execute()). On failure, originals [0, done)
	 * completed and [done, issued) were issued but are not known
	 * complete (a host sync timed out); nothing from issued on is
	 * known to have been issued. issued == done for every error but
	 * ETIMEDOUT.
	 */
	int rc;
	uint32_t done;
	uint32_t issued;
	bool reissued; /* the coalesced call failed; originals re-issued */
	uint32_t calls; /* backend calls it took */
	unsigned int owner; /* atomic, enum core_batch_owner */
	struct core_issuer *issuer; /* async: its issuer (worker-owned) */
	uint64_t call_ns; /* the backend call's wall time, set with @rc */
	struct core_batch *next_done; /* epoll completion stack link */
};

/* A batch for @cap commands (reset, seq 0), or NULL (out of memory). */
struct core_batch *core_batch_new(uint32_t cap);
void core_batch_free(struct core_batch *b);
/* Empty @b for reuse as batch number @seq. */
void core_batch_reset(struct core_batch *b, uint64_t seq);

/* ---- admit ---------------------------------------------------------------- */

/*
 * Opens a run in @b whose entries start at ring index @start, taken in
 * ring epoch @epoch; returns its index. The caller checks
 * b->n_segs < CORE_MAX_VSMMU_RINGS first and sets the run's ring or vq;
 * a run that stays empty is dropped with b->n_segs-- while it is last.
 */
unsigned int core_batch_seg_open(struct core_batch *b, uint32_t start,
				 uint32_t epoch);

/*
 * A guest CMD_SYNC at ring index @idx of run @seg. (This and
 * core_batch_admit() run once per entry: inline, as the worker's loop
 * had them.)
 */
static inline void core_batch_sync(struct core_batch *b, unsigned int seg,
				   uint32_t idx)
{
	struct core_seg *sg = &b->segs[seg];

	sg->syncs++;
	if (!sg->pending)
		return;
	/* It follows a command of the run (so sg->mask != 0). Where a
	 * failure of the commands before it halts: one mark, not a write
	 * per command. */
	sg->synced = true;
	sg->pending = false;
	b->marks[b->n_marks++] =
		(struct core_sync_mark){ b->n, idx, (uint32_t)seg };
}

/*
 * The ring index of the first guest CMD_SYNC after original @j in its
 * run, or @j's own ring index while no CMD_SYNC followed it. O(marks):
 * for settlement after a failure, and tests.
 */
uint32_t core_batch_sync_at(const struct core_batch *b, uint32_t j);

enum core_admit {
	CORE_ADMIT_OK, /* admitted: b->n counts it */
	CORE_ADMIT_CUT, /* an ordering point: not admitted, it starts the
			 * next batch (the caller gives it back) */
};

/*
 * Admits the FORWARD command the caller decoded into b->cmds[b->n] and
 * b->info[b->n] (b->n < b->cap), taken from ring index @idx of run @seg.
 * The ordering rule: once a guest CMD_SYNC followed a command of the run,
 * a command of another ordering class (cmdq_info.order) is a cut, so that
 * the host sync between the classes stays a host sync.
 */
static inline enum core_admit core_batch_admit(struct core_batch *b,
					       unsigned int seg, uint32_t idx)
{
	struct core_seg *sg = &b->segs[seg];
	unsigned int oc = b->info[b->n].order;

	/* A guest SYNC between classes is an ordering point. */
	if (sg->synced && (sg->mask & ~oc))
		return CORE_ADMIT_CUT;
	sg->mask |= oc;
	sg->has_atc |= oc == CMDQ_ORDER_ATC;
	sg->pending = true;
	b->idx[b->n] = idx;
	b->syncs_before[b->n] = sg->syncs;
	b->seg_of[b->n] = (uint8_t)seg;
	b->n++;
	return CORE_ADMIT_OK;
}

/* ---- seal ----------------------------------------------------------------- */

/*
 * Builds b->issue, the list issued for the originals: cmdq's coalescing
 * (cmdq_coalesce_info()) of b->cmds. Returns b->n_issue (0 iff b->n == 0:
 * nothing to execute).
 */
uint32_t core_batch_seal(struct core_batch *b);

/* ---- execute -------------------------------------------------------------- */

/*
 * The backend call: issue @n >= 1 commands once, never retry, and report
 * (iommufd/iofd.h, iofd_invalidate_call()): 0, or -errno with
 * ret->done = how many leading commands are known complete and ret->bad =
 * the index of the failing command when the backend knows it exactly
 * (>= done), else IOFD_INV_BAD_UNKNOWN. After -ETIMEDOUT the host chunk
 * starting at ret->done (at most IOFD_HOST_CHUNK commands) was issued.
 */
typedef int core_batch_call_fn(void *ctx, const struct cmdq_cmd *cmds,
			       uint32_t n, struct iofd_inv_result *ret);

/* The production call: iofd_invalidate_call() on the iofd_viommu @viommu. */
int core_batch_call_iofd(void *viommu, const struct cmdq_cmd *cmds, uint32_t n,
			 struct iofd_inv_result *ret);

/*
 * Bound on backend calls while localising one list: the first call, then
 * at most ~2 * log2(IOFD_HOST_CHUNK) while narrowing down a chunk, plus
 * slack. Reaching it reports -EIO at the first command not known
 * complete.
 */
#define CORE_BATCH_MAX_CALLS 32

/* What issuing one list came to (core_batch_localise()). */
struct core_batch_outcome {
	uint32_t done; /* [0, done) complete */
	uint32_t issued; /* [done, issued) issued, not known complete */
	uint32_t calls; /* backend calls made */
};

/*
 * Issues @list[0, @n) through @call and localises a failure exactly:
 * -EIO: command ret->done is the illegal one (everything before it
 * complete, each issued once except commands a backend accepted into a
 * failing call but did not send). Where the backend knows the failing
 * command (ret->bad) the commands before it are issued again; where it
 * does not (a host chunk dropped whole), the chunk is bisected. A host
 * sync timeout (-ETIMEDOUT) is never issued again (the guest would pay a
 * second timeout while the host queue is in trouble): what is known is
 * reported. Other errors are reported as the backend gave them. Returns
 * 0 (ret->done == ret->issued == n) or that -errno.
 */
int core_batch_localise(core_batch_call_fn *call, void *ctx,
			const struct cmdq_cmd *list, uint32_t n,
			struct core_batch_outcome *ret);

/*
 * Runs the sealed batch @b (b->n >= 1) through @call and sets b->rc,
 * b->done, b->issued, b->reissued, b->calls in terms of the originals.
 * The coalesced list is issued once; if it fails, its failure position
 * says nothing exact about the originals, so the originals are localised
 * (core_batch_localise(); invalidations are idempotent), except after a
 * host sync timeout, which is never issued again.
 */
void core_batch_execute(struct core_batch *b, core_batch_call_fn *call,
			void *ctx);

/* ---- settle --------------------------------------------------------------- */

/*
 * The one mapping from a failed backend call to the error its ring halts
 * with (docs/RING-PROTOCOL.md section 8): -EIO -> CERROR_ILL; -ETIMEDOUT
 * -> CERROR_ATC_INV_SYNC if @atc (an ATC_INV was among the commands whose
 * host sync timed out), else BACKEND; -ENOENT -> DETACHED (the vIOMMU
 * behind the vSMMU is gone); anything else -> BACKEND.
 */
uint32_t core_ring_err(int rc, bool atc);

/*
 * A run's settlement: complete it up to ring index @upto, which passes
 * @syncs guest CMD_SYNCs; then, if @rewind, give back its entries from
 * @upto on (they are taken again).
 */
struct core_seg_plan {
	uint32_t upto;
	uint32_t syncs;
	bool rewind;
};

/*
 * A batch's settlement. Success: every run completes to its end.
 * Failure: one culprit run (@halt_seg) halts at @halt_idx with @err after
 * completing up to it (passing @halt_syncs CMD_SYNCs), if the run is
 * still current (not stale: the caller knows); a stale culprit, and every
 * other run, follows its seg[] plan: complete up to its first command not
 * known complete and give back the rest.
 */
struct core_settle {
	int halt_seg; /* -1: success */
	uint32_t halt_idx, halt_syncs;
	uint32_t err; /* SMMU_RING_ERR_* of the halt */
	struct core_seg_plan seg[CORE_MAX_VSMMU_RINGS];
};

/*
 * The settlement of the executed batch @b (b->n >= 1, or b->rc == 0).
 * A timed-out host sync blames the first ATC_INV among the commands it
 * covered and halts its run at the guest CMD_SYNC after it, as
 * SMMU_CMDQ_CONS does (facts 5), when that CMD_SYNC is in the batch and
 * every command of the run before it was issued; any other failure halts
 * the culprit's run at its first command not known complete.
 */
void core_batch_settle(const struct core_batch *b, struct core_settle *ret);

#endif
