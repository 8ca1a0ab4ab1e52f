/* SPDX-License-Identifier: MIT */
/*
 * ring_gmem: a guest memory table. A VMM registers guest RAM regions
 * (memfd, file offset, guest-physical base, size), as vhost-user's memory
 * table does; the service maps them and translates guest-physical ranges
 * to host pointers with every bound checked. The guest owns the contents
 * of this memory: whoever reads through a translated pointer copies first
 * and validates the copy.
 *
 * Decisions:
 *  - The fd is not kept: ring_gmem_add() maps it and the mapping holds
 *    the file; the caller closes its fd whenever it likes.
 *  - Shrinking is made impossible, not survived: a region must be a memfd
 *    sealed with F_SEAL_SHRINK and at least offset + size bytes long
 *    (growing is harmless). No SIGBUS handler anywhere.
 *  - Each region is mapped with a PROT_NONE guard page on both sides, so
 *    a bounds bug faults at once instead of reading a neighbouring
 *    mapping. A hugetlbfs memfd is mapped at an address aligned to its
 *    huge page size (its st_blksize), and its offset and size must be
 *    multiples of it (untested here: no huge pages on the test machine).
 *  - A range is valid only inside one region: two regions adjacent in
 *    guest-physical space are unrelated host mappings.
 *  - A region that a user pinned (a queue latched in it) cannot be
 *    removed (-EBUSY) until it is unpinned.
 *
 * Thread context: a struct ring_gmem is owned by one thread; nothing here
 * is thread-safe for the same table, except ring_gmem_list() (any thread,
 * lock-free: it reads the owner's published copy). Nothing logs.
 */
#ifndef SMMU_OFFLOAD_RING_GMEM_H
#define SMMU_OFFLOAD_RING_GMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RING_GMEM_MAX_REGIONS 32u

/**
 * struct ring_gmem_region - one mapped region. Owned by the table's thread.
 * @gpa:   guest-physical base (page aligned).
 * @size:  bytes (page aligned, > 0).
 * @host:  host address of @gpa (between the guard pages).
 * @res, @res_len: the whole reservation (guards, alignment slack, region).
 * @pins:  users that hold pointers into the region.
 * @used:  the slot holds a region.
 */
struct ring_gmem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *host;
	uint8_t *res;
	size_t res_len;
	uint32_t pins;
	bool used;
};

/* What ring_gmem_list() reports of a region: as it was added. */
struct ring_gmem_info {
	uint64_t gpa, size, offset;
};

/**
 * struct ring_gmem - the table.
 * @r:         slots; unordered (lookups scan at most 32 entries, and only
 *             when a queue is enabled, never per command).
 * @total:     bytes registered.
 * @max_total: bound on @total given at init.
 * @page:      host page size: the alignment of gpa, offset and size.
 * @pub, @pub_seq: the regions as other threads see them (@pub[i].size 0:
 *             slot free), written by the owner only, under the sequence
 *             count @pub_seq (odd while a change is being published).
 */
struct ring_gmem {
	struct ring_gmem_region r[RING_GMEM_MAX_REGIONS];
	uint64_t total;
	uint64_t max_total;
	uint64_t page;
	struct ring_gmem_info pub[RING_GMEM_MAX_REGIONS];
	uint32_t pub_seq;
};

/* ring_gmem_init() - an empty table accepting at most @max_total bytes. */
void ring_gmem_init(struct ring_gmem *g, uint64_t max_total);

/**
 * ring_gmem_done() - unmap every region (pins are dropped: the caller
 * guarantees no user is left). @g may be zeroed.
 */
void ring_gmem_done(struct ring_gmem *g);

/**
 * ring_gmem_add() - check and map a guest RAM region.
 * @memfd:  the fd; not consumed, not kept.
 * @offset: file offset of the region.
 * @gpa:    guest-physical base.
 * @size:   bytes.
 *
 * Return: 0, or
 *   -EINVAL  size 0, gpa/offset/size not page aligned (offset/size:
 *            not aligned to a hugetlbfs file's huge page), gpa + size
 *            or offset + size overflows, or the fd is not a memfd;
 *   -EBADF   not a regular file;
 *   -EPERM   F_SEAL_SHRINK missing;
 *   -EMSGSIZE the file is shorter than offset + size;
 *   -EEXIST  overlaps a registered region in guest-physical space;
 *   -ENOSPC  the table is full or @max_total would be exceeded;
 *   or an mmap errno.
 */
int ring_gmem_add(struct ring_gmem *g, int memfd, uint64_t offset, uint64_t gpa,
		  uint64_t size);

/**
 * ring_gmem_remove() - unmap the region registered as exactly
 * [@gpa, @gpa + @size).
 * Return: 0, -ENOENT (no such region), -EBUSY (pinned).
 */
int ring_gmem_remove(struct ring_gmem *g, uint64_t gpa, uint64_t size);

/**
 * ring_gmem_translate() - host pointer of the guest-physical range
 * [@gpa, @gpa + @len), which must lie entirely inside one region.
 * Overflow-safe for any @gpa and @len.
 * Return: 0 with *@ret_host set; -EINVAL for @len 0; -EFAULT otherwise.
 * The pointer is valid until the region is removed.
 */
int ring_gmem_translate(const struct ring_gmem *g, uint64_t gpa, uint64_t len,
			void **ret_host);

/**
 * ring_gmem_pin() - ring_gmem_translate(), and keep the region from being
 * removed until ring_gmem_unpin(@handle).
 * Return: a handle >= 0 with *@ret_host set, or the errno of translate.
 */
int ring_gmem_pin(struct ring_gmem *g, uint64_t gpa, uint64_t len,
		  void **ret_host);

/**
 * ring_gmem_list() - the registered regions, from any thread (as long as
 * @g is not freed): up to @max of them into @out, their number in
 * *@ret_n. A consistent snapshot of the table at one moment.
 * Return: 0; -EAGAIN when the owner changed the table during every one of
 * a bounded number of attempts (never waits for the owner).
 */
int ring_gmem_list(const struct ring_gmem *g, struct ring_gmem_info *out,
		   unsigned int max, unsigned int *ret_n);

/* ring_gmem_unpin() - drop a pin; @handle < 0 (or stale) is ignored. */
void ring_gmem_unpin(struct ring_gmem *g, int handle);

#endif
