/* SPDX-License-Identifier: MIT */
/*
 * The VMM side of one vSMMU's shared ring, as smmu-bench's offload modes
 * (modes-offload.c, modes-connect.c) and the KVM harness (kvm/kvm-bench.c)
 * hold it: the ring memfd, the doorbell and completion eventfds
 * (O_CLOEXEC, non-blocking) and the producer over them.
 *
 * Thread context: owned by whoever owns the struct that embeds it (set up
 * and torn down by the main thread; pushed to by one producer at a time).
 */
#ifndef SMMU_OFFLOAD_BENCH_VMM_RING_H
#define SMMU_OFFLOAD_BENCH_VMM_RING_H

#include <stdbool.h>

#include <smmu-offload/ring-prod.h>

struct bench_ring {
	int memfd, db, cq; /* -1 when not open */
	bool ok; /* @p initialised */
	struct ring_prod p;
};

/* bench_ring_reset() - mark @br empty (no fds, no producer), so that
 * bench_ring_close() may run on it whether or not bench_ring_open() did. */
void bench_ring_reset(struct bench_ring *br);

/* bench_ring_open() - a ring of 2^@log2 entries, its two eventfds and the
 * producer. @br must be empty (bench_ring_reset()). Returns 0 or -errno;
 * on error what was made stays in @br for bench_ring_close(). */
int bench_ring_open(struct bench_ring *br, unsigned int log2);

/* bench_ring_close() - unmap the producer and close the fds, in any state
 * bench_ring_reset() or bench_ring_open() left; @br is empty after. The
 * consumer must be detached first (the service's free drains it). */
void bench_ring_close(struct bench_ring *br);

#endif
