/* SPDX-License-Identifier: MIT */
/*
 * The batch module (batch.h): admission, sealing, execution with the one
 * layer of failure localisation, and settlement. Pure: it touches only
 * the batch (and the list) it is given.
 */
#include "core/batch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct core_batch *core_batch_new(uint32_t cap)
{
	struct core_batch *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->cap = cap;
	b->cmds = calloc(cap, sizeof(*b->cmds));
	b->info = calloc(cap, sizeof(*b->info));
	b->issue = calloc(cap, sizeof(*b->issue));
	b->idx = calloc(cap, sizeof(*b->idx));
	b->seg_of = calloc(cap, sizeof(*b->seg_of));
	b->marks = calloc(cap, sizeof(*b->marks));
	b->syncs_before = calloc(cap, sizeof(*b->syncs_before));
	if (!b->cmds || !b->info || !b->issue || !b->idx || !b->seg_of ||
	    !b->marks || !b->syncs_before) {
		core_batch_free(b);
		return NULL;
	}
	return b;
}

void core_batch_free(struct core_batch *b)
{
	if (!b)
		return;
	free(b->cmds);
	free(b->info);
	free(b->issue);
	free(b->idx);
	free(b->seg_of);
	free(b->marks);
	free(b->syncs_before);
	free(b);
}

void core_batch_reset(struct core_batch *b, uint64_t seq)
{
	b->seq = seq;
	b->n = 0;
	b->n_entries = 0;
	b->n_issue = 0;
	b->n_segs = 0;
	b->n_marks = 0;
	b->rc = 0;
	b->done = 0;
	b->issued = 0;
	b->reissued = false;
	b->calls = 0;
	b->issuer = NULL;
	b->next_done = NULL;
}

/* ---- admit ---------------------------------------------------------------- */

unsigned int core_batch_seg_open(struct core_batch *b, uint32_t start,
				 uint32_t epoch)
{
	unsigned int s = b->n_segs++;
	struct core_seg *sg = &b->segs[s];

	memset(sg, 0, sizeof(*sg));
	sg->start = sg->end = start;
	sg->epoch = epoch;
	return s;
}

uint32_t core_batch_sync_at(const struct core_batch *b, uint32_t j)
{
	uint32_t seg = b->seg_of[j];

	for (uint32_t k = 0; k < b->n_marks; k++)
		if (b->marks[k].seg == seg && b->marks[k].pos > j)
			return b->marks[k].idx;
	return b->idx[j];
}

/* ---- seal ----------------------------------------------------------------- */

uint32_t core_batch_seal(struct core_batch *b)
{
	if (!b->n) {
		b->n_issue = 0;
		return 0;
	}
	memcpy(b->issue, b->cmds, b->n * sizeof(*b->cmds));
	b->n_issue = (uint32_t)cmdq_coalesce_info(b->issue, b->info, b->n);
	return b->n_issue;
}

/* ---- execute -------------------------------------------------------------- */

int core_batch_call_iofd(void *viommu, const struct cmdq_cmd *cmds, uint32_t n,
			 struct iofd_inv_result *ret)
{
	return iofd_invalidate_call(viommu, cmds, n, ret);
}

/*
 * Localisation over both kinds of backend report (facts doc 4.2, 4.3 for
 * the kernel's). After a failing call on [pos, hi):
 *  - bad known (Gen A with entry_num not on a chunk boundary, the sim):
 *    [pos + done, bad) are issued again (a Gen A kernel converted them
 *    but never sent them) and bad is the illegal command;
 *  - bad unknown (Gen B, which drops the failing chunk whole, or Gen A
 *    with the illegal entry first in its chunk): bisect the (at most
 *    IOFD_HOST_CHUNK) commands from pos + done: issue the first half;
 *    success moves on, EIO narrows. A range of one that fails is the
 *    illegal command.
 * Every command is issued once, except those re-issued after a call that
 * accepted but did not send them.
 */
int core_batch_localise(core_batch_call_fn *call, void *ctx,
			const struct cmdq_cmd *list, uint32_t n,
			struct core_batch_outcome *ret)
{
	uint32_t pos = 0, hi = n, bad = UINT32_MAX, bad_hi = 0, d, span;
	int rc = 0;

	ret->calls = 0;
	ret->issued = 0;
	while (pos < n) {
		struct iofd_inv_result res = { 0, IOFD_INV_BAD_UNKNOWN };

		if (ret->calls >= CORE_BATCH_MAX_CALLS) {
			rc = -EIO;
			break;
		}
		ret->calls++;
		rc = call(ctx, list + pos, hi - pos, &res);
		if (!rc) {
			pos = hi;
			if (pos == bad) {
				rc = -EIO;
				break;
			}
			hi = bad_hi > pos ? pos + (bad_hi - pos + 1) / 2 : n;
			continue;
		}
		/*
		 * Never trust a count beyond what was passed, nor a failed
		 * call that claims all of it: something in it failed.
		 */
		d = res.done < hi - pos ? res.done : hi - pos - 1;
		if (rc == -ETIMEDOUT) {
			pos += d;
			ret->issued = hi - pos > IOFD_HOST_CHUNK ?
					      pos + IOFD_HOST_CHUNK :
					      hi;
			break;
		}
		if (rc != -EIO) {
			pos += d;
			break;
		}
		if (res.bad != IOFD_INV_BAD_UNKNOWN && res.bad >= d &&
		    res.bad < hi - pos) {
			bad = pos + res.bad;
			pos += d;
			hi = bad;
			if (pos == bad)
				break;
			continue;
		}
		pos += d;
		span = hi - pos < IOFD_HOST_CHUNK ? hi - pos : IOFD_HOST_CHUNK;
		if (span <= 1)
			break; /* rc == -EIO at pos */
		bad_hi = pos + span;
		hi = pos + span / 2;
	}
	ret->done = pos;
	if (ret->issued < pos)
		ret->issued = pos;
	return pos == n ? 0 : rc;
}

/* @rc and the outcome of the originals' list, into @b. */
static void batch_result(struct core_batch *b, int rc,
			 const struct core_batch_outcome *o)
{
	b->rc = rc;
	b->calls += o->calls;
	if (!rc) {
		b->done = b->issued = b->n;
		return;
	}
	b->done = o->done < b->n ? o->done : b->n - 1;
	b->issued = o->issued > b->done ? o->issued : b->done;
}

void core_batch_execute(struct core_batch *b, core_batch_call_fn *call,
			void *ctx)
{
	struct iofd_inv_result res = { 0, IOFD_INV_BAD_UNKNOWN };
	struct core_batch_outcome o;
	uint32_t d;
	int rc;

	b->calls = 0;
	b->reissued = false;
	/* Same count: nothing coalesced, b->issue is b->cmds (cmdq.h). */
	if (b->n_issue == b->n) {
		rc = core_batch_localise(call, ctx, b->cmds, b->n, &o);
		batch_result(b, rc, &o);
		return;
	}
	b->calls = 1;
	rc = call(ctx, b->issue, b->n_issue, &res);
	if (!rc) {
		b->rc = 0;
		b->done = b->issued = b->n;
		return;
	}
	if (rc == -ETIMEDOUT) {
		/*
		 * In the originals' terms nothing is known complete, and
		 * everything was issued only if the timed-out chunk was the
		 * last one (the coalesced list covers every original).
		 */
		d = res.done < b->n_issue ? res.done : b->n_issue;
		b->rc = rc;
		b->done = 0;
		b->issued = b->n_issue - d <= IOFD_HOST_CHUNK ? b->n : 0;
		return;
	}
	b->reissued = true;
	rc = core_batch_localise(call, ctx, b->cmds, b->n, &o);
	batch_result(b, rc, &o);
}

/* ---- settle --------------------------------------------------------------- */

uint32_t core_ring_err(int rc, bool atc)
{
	switch (rc) {
	case -EIO:
		return SMMU_RING_ERR_CERROR_ILL;
	case -ETIMEDOUT:
		return atc ? SMMU_RING_ERR_CERROR_ATC_INV_SYNC :
			     SMMU_RING_ERR_BACKEND;
	case -ENOENT:
		return SMMU_RING_ERR_DETACHED;
	default:
		return SMMU_RING_ERR_BACKEND;
	}
}

/*
 * Where the culprit's run halts. A timed-out ATC invalidation halts at
 * the guest CMD_SYNC that follows it, as SMMU_CMDQ_CONS does (facts 5),
 * with the commands before that CMD_SYNC consumed: they were issued, the
 * host sync covering them timed out. That needs the CMD_SYNC in the batch
 * and every command of the run before it issued; otherwise the run
 * halts at its first command not known complete, which is taken again
 * after the resume. Returns the ring index; *@ret_syncs: the guest
 * CMD_SYNCs of the run before it.
 */
static uint32_t batch_halt_index(const struct core_batch *b, uint32_t cul,
				 uint32_t err, uint32_t *ret_syncs)
{
	uint8_t cs = b->seg_of[cul];
	uint32_t sync = core_batch_sync_at(b, cul), f, i;

	/* The run's first command not known complete (at most cul). */
	for (f = b->done; b->seg_of[f] != cs; f++)
		;
	*ret_syncs = b->syncs_before[f];
	if (err != SMMU_RING_ERR_CERROR_ATC_INV_SYNC || sync == b->idx[cul])
		return b->idx[f];
	for (i = f; i < b->n; i++) {
		if (b->seg_of[i] != cs)
			continue;
		if ((int32_t)(b->idx[i] - sync) > 0)
			break;
		if (i >= b->issued)
			return b->idx[f];
	}
	/* No CMD_SYNC between f and cul (one would end the run's class). */
	*ret_syncs = b->syncs_before[cul];
	return sync;
}

void core_batch_settle(const struct core_batch *b, struct core_settle *ret)
{
	uint32_t k = b->done, cul = k, i;
	bool atc = false;

	ret->halt_seg = -1;
	ret->halt_idx = ret->halt_syncs = 0;
	ret->err = 0;
	if (b->rc == 0) {
		for (uint32_t s = 0; s < b->n_segs; s++) {
			ret->seg[s].upto = b->segs[s].end;
			ret->seg[s].syncs = b->segs[s].syncs;
			ret->seg[s].rewind = false;
		}
		return;
	}
	/*
	 * A host sync times out on an ATC invalidation that does not
	 * complete: the culprit is the first ATC_INV among the commands it
	 * covered (any from k on when that is not known).
	 */
	if (b->rc == -ETIMEDOUT) {
		uint32_t end = b->issued > k ? b->issued : b->n;

		for (i = k; i < end && !atc; i++)
			if (b->info[i].op == CMDQ_OP_ATC_INV) {
				cul = i;
				atc = true;
			}
	}
	ret->err = core_ring_err(b->rc, atc);
	ret->halt_seg = b->seg_of[cul];
	ret->halt_idx = batch_halt_index(b, cul, ret->err, &ret->halt_syncs);
	/* Every run: complete up to its first command not known complete,
	 * give back the rest. */
	for (uint32_t s = 0; s < b->n_segs; s++) {
		struct core_seg_plan *p = &ret->seg[s];

		p->upto = b->segs[s].end;
		p->syncs = b->segs[s].syncs;
		p->rewind = true;
		for (i = k; i < b->n; i++) {
			if (b->seg_of[i] == s) {
				p->upto = b->idx[i];
				p->syncs = b->syncs_before[i];
				break;
			}
		}
	}
}
