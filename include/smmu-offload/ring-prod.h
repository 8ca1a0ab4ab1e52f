/* SPDX-License-Identifier: MIT */
/*
 * smmu-offload ring, VMM (producer) side. Installed as
 * smmu-offload/ring-prod.h; the layout is in smmu-offload/ring.h and the
 * protocol in docs/RING-PROTOCOL.md.
 *
 * The fast path takes no lock and makes no syscall: ring_prod_push()
 * writes entries, ring_prod_publish() makes them visible and writes the
 * doorbell eventfd only when the service said it is going to sleep
 * (NEED_WAKEUP); ring_prod_done_upto() tells whether a command (a guest
 * CMD_SYNC) has completed, and ring_prod_wait() spins for a bounded time
 * before sleeping on the completion eventfd (WANT_SIGNAL).
 *
 * Thread context: a struct ring_prod is owned by the one VMM thread that
 * produces into the ring (typically the thread emulating the guest's
 * CMDQ_PROD writes); no function is thread-safe for the same ring_prod.
 * Nothing here logs or allocates.
 *
 * Eventfds: @doorbell_fd is written by the VMM and read by the service
 * (registered over RPC); @completion_fd is written by the service and read
 * here. Either may be -1 here, but the service refuses a ring without a
 * doorbell (core_ring_attach(): -EBADF); without a completion fd
 * ring_prod_wait() spins until its timeout. Both must be eventfds (EFD_CLOEXEC; EFD_NONBLOCK
 * is recommended for the completion fd); the ring does not own them. The
 * service signals the completion fd from the kernel and never blocks on
 * it; its counter may read up to 2^64 - 1 (docs/RING-PROTOCOL.md 6).
 */
#ifndef SMMU_OFFLOAD_RING_PROD_H
#define SMMU_OFFLOAD_RING_PROD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <smmu-offload/ring.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * struct ring_prod - producer state of one ring. Owned by the producing
 * VMM thread. Treat as opaque; fields are listed so it can be embedded.
 * @hdr:           the shared header (mapped by ring_prod_init()).
 * @entries:       the shared entries.
 * @map_len:       bytes mapped.
 * @mask:          size - 1.
 * @size:          number of entries.
 * @prod:          next index to write (pushed, maybe not published).
 * @published:     last prod value stored to the header.
 * @cons:          last consumer index read from the header.
 * @prod_flags:    private copy of hdr->prod_flags (single writer).
 * @acked_seq:     halt_seq acknowledged by ring_prod_resume().
 * @doorbell_fd:   eventfd to ring when NEED_WAKEUP is set, or -1.
 * @completion_fd: eventfd the service writes when WANT_SIGNAL is set, or
 *                 -1.
 */
struct ring_prod {
	struct smmu_ring_hdr *hdr;
	struct smmu_ring_entry *entries;
	size_t map_len;
	uint32_t mask;
	uint32_t size;
	uint32_t prod;
	uint32_t published;
	uint32_t cons;
	uint32_t prod_flags;
	uint32_t acked_seq;
	int doorbell_fd;
	int completion_fd;
};

/**
 * ring_memfd_create() - create a v1 ring memfd of 1 << @log2_entries
 * entries, initialise its header (prod = cons = 0) and seal it with
 * F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL.
 * @log2_entries: SMMU_RING_MIN_LOG2 .. SMMU_RING_MAX_LOG2.
 * @ret_fd:       the new fd (MFD_CLOEXEC), owned by the caller; hand it to
 *                ring_prod_init() and, over RPC, to the service.
 *
 * Return: 0, -EINVAL (@log2_entries out of range), or the errno of
 * memfd_create/ftruncate/pwrite/fcntl (e.g. -EMFILE, -ENOMEM).
 */
int ring_memfd_create(uint32_t log2_entries, int *ret_fd);

/**
 * ring_prod_init() - map a ring memfd for producing.
 * @p:             filled on success.
 * @memfd:         a ring memfd (ring_memfd_create()); not consumed.
 * @doorbell_fd:   eventfd, or -1 (a consumer that polls; the service
 *                 requires one); not consumed.
 * @completion_fd: eventfd, or -1 (spin-only waits); not consumed.
 *
 * The producer index starts at hdr->prod and the consumer index at
 * hdr->cons, so a ring whose header was prepared differently (tests) or
 * that was already used goes on from there.
 *
 * Return: 0, -EPROTO (not a v1 ring header this library understands, or
 * prod/cons inconsistent), -EMSGSIZE (file size does not match), or the
 * errno of fstat/mmap.
 */
int ring_prod_init(struct ring_prod *p, int memfd, int doorbell_fd,
		   int completion_fd);

/* ring_prod_done() - unmap; @p may be zeroed or half-initialised. */
void ring_prod_done(struct ring_prod *p);

/**
 * ring_prod_space() - free entries right now (reads cons, A_CONS).
 * A consumer index that claims to be ahead of prod (a broken service)
 * reads as no space.
 */
uint32_t ring_prod_space(struct ring_prod *p);

/**
 * ring_prod_push() - copy @n entries into the ring after the pushed ones.
 * All or nothing. They are invisible to the service until
 * ring_prod_publish().
 * @ret_first_index: set to the index of the first entry; entry k of @e
 *                   has index first + k (pass it to ring_prod_done_upto()).
 *
 * Return: 0; -EAGAIN if fewer than @n entries are free (nothing written);
 * -EPIPE if the ring is halted and the halt was not acknowledged with
 * ring_prod_resume(); -EINVAL if @n exceeds the ring size.
 */
int ring_prod_push(struct ring_prod *p, const struct smmu_ring_entry *e,
		   uint32_t n, uint32_t *ret_first_index);

/**
 * ring_prod_publish() - make every pushed entry visible to the service
 * (release store of prod, R_PROD), then ring the doorbell if and only if
 * the service set NEED_WAKEUP (read after a full barrier, F_PUB). No
 * syscall when the service is awake or nothing new was pushed.
 *
 * Return: 0, or the errno of write(2) on the doorbell (entries are
 * published regardless).
 */
int ring_prod_publish(struct ring_prod *p);

/**
 * ring_prod_done_upto() - has the service completed the entry at @index
 * (cons has passed it)? A CMD_SYNC at @index completes every command
 * before it. Wrap-safe for any @index returned by ring_prod_push() within
 * the last 2^32 - size pushes; @index == the next push index is "not done".
 */
bool ring_prod_done_upto(struct ring_prod *p, uint32_t index);

/**
 * ring_prod_wait() - wait until ring_prod_done_upto(@index) or a halt.
 * @spin_ns:    first poll the header for this long (no syscall).
 * @timeout_ms: then sleep on the completion eventfd; < 0 waits forever.
 *              Without a completion eventfd, poll up to @timeout_ms more,
 *              with sched_yield() between checks.
 *
 * Sleeping sets WANT_SIGNAL, then (full barrier, F_WANT) re-checks cons
 * and HALTED before poll(2): a completion published before the flag was
 * visible is seen by the re-check, a later one makes the service write
 * the eventfd. WANT_SIGNAL is cleared before returning. Reads (drains) the
 * completion eventfd. Publishes pending pushes first.
 *
 * Return: 0 (done); -ETIMEDOUT; -EPIPE (the ring halted before @index
 * completed and the halt is not acknowledged: see ring_prod_halt_info());
 * or the errno of poll/read/the doorbell write.
 */
int ring_prod_wait(struct ring_prod *p, uint32_t index, uint64_t spin_ns,
		   int timeout_ms);

/**
 * ring_prod_halt_info() - is the ring halted, with which error and where?
 * @ret_err:   SMMU_RING_ERR_* (CERROR_* map to SMMU_CMDQ_CONS.ERR and
 *             GERROR.CMDQ_ERR; PROTO/BACKEND/DETACHED are service errors).
 * @ret_index: index of the entry that halted the ring (== cons).
 *
 * Return: 0 if halted and not yet acknowledged (outputs set), -ENOENT if
 * not halted (or the halt was already acknowledged).
 */
int ring_prod_halt_info(struct ring_prod *p, uint32_t *ret_err,
			uint32_t *ret_index);

/**
 * ring_prod_rewrite() - overwrite the entry at @index while the ring is
 * halted (the guest fixed the command that halted it, or the VMM replaced
 * it, e.g. by a CMD_SYNC). @index must lie in [cons, prod).
 *
 * Return: 0; -EINVAL (@index outside [cons, prod)); -EBUSY (not halted:
 * the service may be reading the entry).
 */
int ring_prod_rewrite(struct ring_prod *p, uint32_t index,
		      const struct smmu_ring_entry *e);

/**
 * ring_prod_resume() - acknowledge the current halt and ask the service
 * to go on from the halt index: stores resume_seq = halt_seq (release,
 * R_RESUME, which also publishes rewritten entries) and writes the
 * doorbell unconditionally (the service may sleep without NEED_WAKEUP
 * while halted). Pushing is allowed again at once.
 *
 * Return: 0; -ENOENT (not halted); or the errno of the doorbell write.
 */
int ring_prod_resume(struct ring_prod *p);

#ifdef __cplusplus
}
#endif

#endif
