/* SPDX-License-Identifier: MIT */
/*
 * A batch's backend call and what its result means for the rings: which
 * originals completed, which were issued, and the ring error a failure
 * maps to. core_batch_execute() runs on an issuer thread (async) or on
 * the worker (inline); it touches only the batch's result fields.
 */
#include "core/core_i.h"

#include <errno.h>
#include <string.h>

/* The result of a backend call on the originals, exact (see core_batch). */
static void batch_result(struct core_batch *b, int rc, uint32_t done)
{
	b->rc = rc;
	if (!rc) {
		b->done = b->issued = b->n;
		return;
	}
	b->done = done < b->n ? done : b->n - 1;
	b->issued = b->done;
	/* ETIMEDOUT: the host chunk starting at done was issued. */
	if (rc == -ETIMEDOUT)
		b->issued = b->n - b->done > IOFD_HOST_CHUNK ?
				    b->done + IOFD_HOST_CHUNK :
				    b->n;
}

/*
 * Runs the backend call for a batch. The coalesced list is issued; if it
 * fails, the position of the failure in it says nothing exact about the
 * originals. After an illegal command or a host error the originals are
 * issued again in full (invalidations are idempotent) to learn exactly
 * which command failed and what completed. A host sync timeout is never
 * issued again (that would cost the guest a second timeout while the host
 * queue is in trouble): what is known is reported instead.
 */
void core_batch_execute(struct core_batch *b)
{
	struct iofd_viommu *v = b->vs->viommu;
	bool coalesced = b->n_issue != b->n ||
			 memcmp(b->issue, b->cmds, b->n * sizeof(*b->cmds));
	uint32_t done = 0;
	int rc;

	rc = iofd_invalidate(v, b->issue, b->n_issue, &done);
	if (!rc || !coalesced) {
		batch_result(b, rc, done);
		return;
	}
	if (rc == -ETIMEDOUT) {
		/*
		 * In the originals' terms nothing is known complete, and
		 * everything was issued only if the timed-out chunk was the
		 * last one (the coalesced list covers every original).
		 */
		b->rc = rc;
		b->done = 0;
		b->issued = b->n_issue - done <= IOFD_HOST_CHUNK ? b->n : 0;
		return;
	}
	b->reissued = true;
	done = 0;
	rc = iofd_invalidate(v, b->cmds, b->n, &done);
	batch_result(b, rc, done);
}

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
