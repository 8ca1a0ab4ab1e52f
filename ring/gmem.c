/* SPDX-License-Identifier: MIT */
/*
 * Guest memory table. Every check happens before the mapping, every
 * range computation is written so that it cannot overflow a uint64_t.
 */
#include "ring/gmem.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/barrier.h"
#include "ring/ring_i.h"

/* Largest file page size honoured for alignment (a 1 GiB huge page). */
#define GMEM_MAX_ALIGN (1ULL << 30)

void ring_gmem_init(struct ring_gmem *g, uint64_t max_total)
{
	long ps = sysconf(_SC_PAGESIZE);

	memset(g, 0, sizeof(*g));
	g->max_total = max_total;
	g->page = ps > 0 ? (uint64_t)ps : 4096;
}

/*
 * Publish slot @i as @info (size 0: free) for ring_gmem_list(): a sequence
 * count, odd while the slot changes. R_PUB pairs with the reader's A_PUB.
 */
static void gmem_publish(struct ring_gmem *g, unsigned int i,
			 const struct ring_gmem_info *info)
{
	uint32_t seq = g->pub_seq + 1;

	WRITE_ONCE(g->pub_seq, seq);
	/* F_PUB1 (pairs with F_PUB2 in ring_gmem_list()): a reader that
	 * saw any field change sees the odd count after it. */
	smp_mb();
	WRITE_ONCE(g->pub[i].gpa, info->gpa);
	WRITE_ONCE(g->pub[i].size, info->size);
	WRITE_ONCE(g->pub[i].offset, info->offset);
	smp_store_release(&g->pub_seq, seq + 1); /* R_PUB */
}

static void gmem_unmap(struct ring_gmem_region *r)
{
	/* The whole reservation: guards, alignment slack and the region. */
	munmap(r->res, r->res_len);
	memset(r, 0, sizeof(*r));
}

void ring_gmem_done(struct ring_gmem *g)
{
	static const struct ring_gmem_info none;

	for (unsigned int i = 0; i < RING_GMEM_MAX_REGIONS; i++)
		if (g->r[i].used) {
			gmem_publish(g, i, &none);
			gmem_unmap(&g->r[i]);
		}
	g->total = 0;
}

/* [a, a + alen) and [b, b + blen) intersect; both ends known not to wrap. */
static bool gmem_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static int gmem_check_args(const struct ring_gmem *g, uint64_t offset,
			   uint64_t gpa, uint64_t size)
{
	uint64_t pm = g->page - 1;

	if (!size || (gpa & pm) || (offset & pm) || (size & pm))
		return -EINVAL;
	/* gpa + size and offset + size must be representable (and the
	 * offset an off_t); the two guard pages must fit a size_t. */
	if (gpa > UINT64_MAX - size || offset > (uint64_t)INT64_MAX - size)
		return -EINVAL;
	if (size > (uint64_t)SIZE_MAX - 2 * g->page - GMEM_MAX_ALIGN)
		return -EINVAL;
	return 0;
}

/*
 * The file's own page size: st_blksize is the huge page size on
 * hugetlbfs (where mmap needs addresses, offsets and lengths aligned to
 * it), the base page size on tmpfs.
 */
static uint64_t gmem_file_align(const struct ring_gmem *g,
				const struct stat *st)
{
	uint64_t b = (uint64_t)st->st_blksize;

	if (b > g->page && b <= GMEM_MAX_ALIGN && !(b & (b - 1)))
		return b;
	return g->page;
}

static int gmem_check_fd(const struct ring_gmem *g, int memfd, uint64_t offset,
			 uint64_t size, uint64_t *ret_align)
{
	struct stat st;
	uint64_t align;
	int r;

	r = ring_memfd_check(memfd, F_SEAL_SHRINK, &st);
	if (r < 0)
		return r;
	if ((uint64_t)st.st_size < offset + size)
		return -EMSGSIZE;
	align = gmem_file_align(g, &st);
	if ((offset | size) & (align - 1))
		return -EINVAL;
	*ret_align = align;
	return 0;
}

/*
 * Reserve guard + (alignment slack) + size + guard as PROT_NONE, then map
 * the file over an @align-aligned address in the middle: at least one
 * inaccessible page on each side.
 */
static int gmem_map(const struct ring_gmem *g, int memfd, uint64_t offset,
		    uint64_t size, uint64_t align, struct ring_gmem_region *r)
{
	size_t slack = align > g->page ? (size_t)align : 0;
	size_t len = (size_t)(size + 2 * g->page) + slack;
	uint8_t *res, *want, *host;

	res = mmap(NULL, len, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		return -errno;
	want = (uint8_t *)(((uintptr_t)res + g->page + align - 1) &
			   ~(uintptr_t)(align - 1));
	host = mmap(want, (size_t)size, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_FIXED, memfd, (off_t)offset);
	if (host == MAP_FAILED) {
		int ret = -errno;

		munmap(res, len);
		return ret;
	}
	r->host = host;
	r->res = res;
	r->res_len = len;
	return 0;
}

int ring_gmem_add(struct ring_gmem *g, int memfd, uint64_t offset, uint64_t gpa,
		  uint64_t size)
{
	struct ring_gmem_region *slot = NULL;
	uint64_t align = 0;
	int ret;

	ret = gmem_check_args(g, offset, gpa, size);
	if (ret)
		return ret;
	for (unsigned int i = 0; i < RING_GMEM_MAX_REGIONS; i++) {
		struct ring_gmem_region *r = &g->r[i];

		if (!r->used) {
			if (!slot)
				slot = r;
			continue;
		}
		if (gmem_overlap(gpa, size, r->gpa, r->size))
			return -EEXIST;
	}
	if (!slot || size > g->max_total - g->total)
		return -ENOSPC;
	ret = gmem_check_fd(g, memfd, offset, size, &align);
	if (ret)
		return ret;
	ret = gmem_map(g, memfd, offset, size, align, slot);
	if (ret)
		return ret;
	slot->gpa = gpa;
	slot->size = size;
	slot->pins = 0;
	slot->used = true;
	g->total += size;
	gmem_publish(g, (unsigned int)(slot - g->r),
		     &(struct ring_gmem_info){ gpa, size, offset });
	return 0;
}

int ring_gmem_remove(struct ring_gmem *g, uint64_t gpa, uint64_t size)
{
	for (unsigned int i = 0; i < RING_GMEM_MAX_REGIONS; i++) {
		struct ring_gmem_region *r = &g->r[i];

		if (!r->used || r->gpa != gpa || r->size != size)
			continue;
		if (r->pins)
			return -EBUSY;
		g->total -= r->size;
		gmem_publish(g, i, &(struct ring_gmem_info){ 0, 0, 0 });
		gmem_unmap(r);
		return 0;
	}
	return -ENOENT;
}

/* The slot holding all of [gpa, gpa + len), or -EINVAL / -EFAULT. */
static int gmem_find(const struct ring_gmem *g, uint64_t gpa, uint64_t len)
{
	if (!len)
		return -EINVAL;
	for (unsigned int i = 0; i < RING_GMEM_MAX_REGIONS; i++) {
		const struct ring_gmem_region *r = &g->r[i];
		uint64_t off;

		if (!r->used || gpa < r->gpa)
			continue;
		/* Differences only: no sum of guest values can wrap. */
		off = gpa - r->gpa;
		if (off >= r->size)
			continue;
		if (len > r->size - off)
			return -EFAULT; /* runs past the end of its region */
		return (int)i;
	}
	return -EFAULT;
}

int ring_gmem_translate(const struct ring_gmem *g, uint64_t gpa, uint64_t len,
			void **ret_host)
{
	int i = gmem_find(g, gpa, len);

	if (i < 0)
		return i;
	*ret_host = g->r[i].host + (gpa - g->r[i].gpa);
	return 0;
}

int ring_gmem_pin(struct ring_gmem *g, uint64_t gpa, uint64_t len,
		  void **ret_host)
{
	int i = gmem_find(g, gpa, len);

	if (i < 0)
		return i;
	g->r[i].pins++;
	*ret_host = g->r[i].host + (gpa - g->r[i].gpa);
	return i;
}

void ring_gmem_unpin(struct ring_gmem *g, int handle)
{
	/* A stale handle (table already torn down) is ignored. */
	if (handle < 0 || handle >= (int)RING_GMEM_MAX_REGIONS ||
	    !g->r[handle].used || !g->r[handle].pins)
		return;
	g->r[handle].pins--;
}

/* Attempts of ring_gmem_list(): a change publishes in a few stores. */
#define GMEM_LIST_TRIES 64

int ring_gmem_list(const struct ring_gmem *g, struct ring_gmem_info *out,
		   unsigned int max, unsigned int *ret_n)
{
	/* READ_ONCE takes a non-const lvalue; the stores are the owner's. */
	struct ring_gmem *w = (struct ring_gmem *)g;

	for (unsigned int t = 0; t < GMEM_LIST_TRIES; t++) {
		/* A_PUB: pairs with R_PUB in gmem_publish(). */
		uint32_t seq = smp_load_acquire(&w->pub_seq);
		unsigned int n = 0;

		if (seq & 1)
			continue;
		for (unsigned int i = 0; i < RING_GMEM_MAX_REGIONS; i++) {
			struct ring_gmem_info x = {
				.gpa = READ_ONCE(w->pub[i].gpa),
				.size = READ_ONCE(w->pub[i].size),
				.offset = READ_ONCE(w->pub[i].offset),
			};

			if (!x.size)
				continue;
			if (n < max)
				out[n] = x;
			n++;
		}
		/* F_PUB2 (pairs with F_PUB1): the fields are read before
		 * the count again. */
		smp_mb();
		if (READ_ONCE(w->pub_seq) == seq) {
			*ret_n = n;
			return 0;
		}
	}
	return -EAGAIN;
}
