/* SPDX-License-Identifier: MIT */
/*
 * ring_cons: the service (consumer) half of the shared ring. The producer
 * is untrusted: every value it writes is read once per pass into a local,
 * checked, and entries are copied to private memory before anyone looks at
 * them. A violation halts this ring only (SMMU_RING_ERR_PROTO).
 *
 * Thread context: a struct ring_cons is owned by one thread (the worker of
 * the host SMMU the ring is bound to); no function here is thread-safe for
 * the same ring_cons. Nothing here logs or allocates after ring_cons_map().
 */
#ifndef SMMU_OFFLOAD_RING_CONS_H
#define SMMU_OFFLOAD_RING_CONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <smmu-offload/ring.h>

/**
 * struct ring_cons - consumer state of one ring. Owned by the worker.
 * @hdr:      the shared header (hostile memory).
 * @entries:  the shared entries (hostile memory).
 * @map_len:  bytes mapped.
 * @mask:     size - 1, from the header copy validated at map time.
 * @size:     number of entries.
 * @prod:     last producer index seen and validated.
 * @fetch:    next index to copy out; cons <= fetch <= prod.
 * @cons:     private copy of the published consumer index.
 * @halted:   the ring is halted (HALTED published); nothing is fetched.
 * @halt_seq: private copy of the published halt_seq.
 * @svc_flags: private copy of the published svc_flags (the service is the
 *            only writer; the shared word is never read back).
 * @view:     what the ring looks like, for other threads (statistics).
 */
/*
 * struct ring_cons_view - the consumer's own copies of its indices and
 * halt state, never read back from shared memory (the VMM can write it).
 * Written by the owner with relaxed atomic stores, each before the shared
 * store it mirrors, so a VMM that saw a completion or halt finds it here;
 * any thread may read it with ring_cons_view_read().
 * @prod:     the last producer index validated by ring_cons_poll().
 * @cons:     the consumer index published.
 * @err:      SMMU_RING_ERR_* of the halt, or NONE.
 * @err_index: where the ring halted.
 * @halted:   1 while halted.
 */
struct ring_cons_view {
	uint32_t prod, cons, err, err_index, halted;
};

struct ring_cons {
	struct smmu_ring_hdr *hdr;
	struct smmu_ring_entry *entries;
	size_t map_len;
	uint32_t mask;
	uint32_t size;
	uint32_t prod;
	uint32_t fetch;
	uint32_t cons;
	bool halted;
	uint32_t halt_seq;
	uint32_t svc_flags;
	struct ring_cons_view view;
};

/* ring_cons_view_read() - a relaxed snapshot of @rc->view; any thread, as
 * long as @rc stays mapped. Fields may come from different moments. */
void ring_cons_view_read(const struct ring_cons *rc,
			 struct ring_cons_view *out);

/**
 * ring_cons_map() - check a ring memfd received from a VMM and map it.
 * @memfd: the fd; not consumed (the caller keeps and closes it).
 * @rc:    filled on success.
 *
 * Refuses an fd that is not a memfd sealed with F_SEAL_SHRINK and
 * F_SEAL_GROW (an unsealed file could be truncated under the mapping and
 * kill the service with SIGBUS), whose size is not exactly
 * smmu_ring_bytes(log2_entries), or whose header has a wrong magic, major
 * version, entry size, hdr_size, log2_entries or unknown features. The
 * header is copied once; later changes to line 0 by the VMM are ignored.
 * Resumes from the consumer index in shared memory (a ring re-attached
 * after a service restart goes on where it stopped); if that index is
 * behind prod by more than the ring size the ring is halted as PROTO. A
 * ring that was halted (HALTED in shared memory) stays halted with its
 * halt_seq; ring_cons_resume_requested() tells whether the VMM already
 * acknowledged it. NEED_WAKEUP is cleared.
 *
 * Return: 0, or -EBADF (not a file), -EINVAL (not a memfd: no seals
 * support), -EPERM (required seals missing), -EMSGSIZE (size mismatch),
 * -EPROTO (bad magic, entry or header size, log2), -EPROTONOSUPPORT (major
 * version), -EOPNOTSUPP (unknown feature bits), or an mmap errno.
 */
int ring_cons_map(int memfd, struct ring_cons *rc);

/* ring_cons_unmap() - unmap; @rc may be zeroed or half-initialised. */
void ring_cons_unmap(struct ring_cons *rc);

/**
 * ring_cons_poll() - read the producer index once and check it.
 * @rc:        the ring.
 * @ret_avail: set to prod - fetch, the entries ready to fetch.
 *
 * Return: 0; -EPIPE if the ring is halted (nothing to fetch); -EPROTO if
 * the new producer index moved backwards past fetch or claims more than
 * the ring size beyond cons: the ring is then halted with
 * SMMU_RING_ERR_PROTO at cons.
 */
int ring_cons_poll(struct ring_cons *rc, uint32_t *ret_avail);

/**
 * ring_cons_fetch() - copy up to @n entries at the fetch index out of
 * shared memory and advance the fetch index.
 * Return: the number copied (<= @n and <= the last poll's avail).
 */
uint32_t ring_cons_fetch(struct ring_cons *rc, struct smmu_ring_entry *dst,
			 uint32_t n);

/**
 * ring_cons_claim() - ring_cons_fetch() without the copy: advance the fetch
 * index over up to @n entries and leave them in shared memory, for a caller
 * that copies each one once, with ring_cons_load(), straight to where it
 * goes (the worker decodes into its batch: one copy instead of two).
 * Return: the number claimed (<= @n and <= the last poll's avail); they
 * are the ring indices [fetch - ret, fetch).
 */
uint32_t ring_cons_claim(struct ring_cons *rc, uint32_t n);

/**
 * ring_cons_load() - the one read of claimed entry @idx (an index in
 * [cons, fetch)): both words are loaded exactly once, as volatile, into
 * the private copy returned, so the compiler cannot read shared memory
 * again after the caller validated the copy. The VMM may be rewriting the
 * entry meanwhile: the copy may mix its old and new words, and is
 * validated like any other entry. Entries up to the polled prod were made
 * visible by ring_cons_poll()'s acquire (A_PROD).
 */
static inline struct smmu_ring_entry ring_cons_load(const struct ring_cons *rc,
						    uint32_t idx)
{
	const volatile uint64_t *w = rc->entries[idx & rc->mask].le;
	struct smmu_ring_entry e = { { w[0], w[1] } };

	return e;
}

/**
 * ring_cons_complete() - publish that every entry before @new_cons has
 * completed (release store R_CONS, pairs with the VMM's A_CONS).
 * @new_cons must lie in [cons, fetch]; anything else is a caller bug
 * (asserted). While the ring is halted this does nothing: cons stays on
 * the halt index, and entries in flight when the ring halted are fetched
 * (and issued) again after the resume; invalidations are idempotent.
 */
void ring_cons_complete(struct ring_cons *rc, uint32_t new_cons);

/**
 * ring_cons_want_signal() - after ring_cons_complete(), does the VMM wait
 * on its completion eventfd? Contains the full barrier that orders the
 * cons store before the WANT_SIGNAL load (pairs with the VMM's barrier
 * between setting WANT_SIGNAL and re-reading cons), so a VMM that goes to
 * sleep is always either seen here or sees the new cons itself.
 */
bool ring_cons_want_signal(struct ring_cons *rc);

/**
 * ring_cons_halt() - stop the ring at @index with @err (SMMU_RING_ERR_*).
 * Publishes cons = @index (everything before it must have completed),
 * err, err_index, halt_seq + 1, then HALTED (R_HALT). Rewinds fetch to
 * @index: fetched-but-unissued entries after it are dropped and fetched
 * again after a resume. @index must lie in [cons, fetch] (asserted). Does
 * nothing if the ring is already halted (the first error wins). The
 * caller then signals the VMM's completion eventfd if
 * ring_cons_want_signal() says so, exactly as after a completion.
 */
void ring_cons_halt(struct ring_cons *rc, uint32_t index, uint32_t err);

/**
 * ring_cons_resume_requested() - has the VMM acknowledged the current
 * halt (resume_seq == halt_seq, acquire A_RESUME)?
 */
bool ring_cons_resume_requested(struct ring_cons *rc);

/**
 * ring_cons_resume() - clear HALTED and err; fetching restarts at cons
 * (the entry that halted the ring is read again: the guest fixed it).
 * Completions of commands fetched before the halt must not reach
 * ring_cons_complete() after this (they would complete entries fetched
 * anew, or trip its assertion): drop them, e.g. with a halt epoch.
 */
void ring_cons_resume(struct ring_cons *rc);

/**
 * ring_cons_set_need_wakeup() - set NEED_WAKEUP before sleeping, then
 * re-check: returns true if entries arrived (or a resume was requested)
 * in the meantime, in which case the caller must not sleep (the flag is
 * cleared again). The full barrier between the flag store and the prod
 * re-read pairs with the VMM's barrier between its prod store and its
 * NEED_WAKEUP read.
 */
bool ring_cons_set_need_wakeup(struct ring_cons *rc);

/* ring_cons_clear_need_wakeup() - clear NEED_WAKEUP (worker is awake). */
void ring_cons_clear_need_wakeup(struct ring_cons *rc);

/**
 * ring_cons_rewind() - give back entries fetched but not completed:
 * fetching restarts at @index (they are copied out again, and checked
 * again, by the next ring_cons_fetch()). @index is clamped to
 * [cons, fetch]; nothing happens while halted.
 */
void ring_cons_rewind(struct ring_cons *rc, uint32_t index);

/* Number of entries fetched but not yet completed (fetch - cons). */
static inline uint32_t ring_cons_inflight(const struct ring_cons *rc)
{
	return rc->fetch - rc->cons;
}

#endif
