/* SPDX-License-Identifier: MIT */
/*
 * Guest memory table. Every check happens before the mapping, every
 * range computation is written so that it cannot overflow a uint64_t.
 */
#include "ring/gmem.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void ring_gmem_init(struct ring_gmem *g, uint64_t max_total)
{
	long ps = sysconf(_SC_PAGESIZE);

	memset(g, 0, sizeof(*g));
	g->max_total = max_total;
	g->page = ps > 0 ? (uint64_t)ps : 4096;
}

static void gmem_unmap(const struct ring_gmem *g, struct ring_gmem_region *r)
{
	/* The reservation starts one guard page before the region. */
	munmap(r->host - g->page, (size_t)(r->size + 2 * g->page));
	memset(r, 0, sizeof(*r));
}

void ring_gmem_done(struct ring_gmem *g)
{
	for (unsigned int i = 0; i < RING_GMEM_MAX_REGIONS; i++)
		if (g->r[i].used)
			gmem_unmap(g, &g->r[i]);
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
	if (size > (uint64_t)SIZE_MAX - 2 * g->page)
		return -EINVAL;
	return 0;
}

static int gmem_check_fd(int memfd, uint64_t end)
{
	struct stat st;
	int seals;

	if (fstat(memfd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EBADF;
	seals = fcntl(memfd, F_GET_SEALS);
	if (seals < 0)
		return -errno; /* EINVAL: not a memfd */
	if (!(seals & F_SEAL_SHRINK))
		return -EPERM;
	/*
	 * The size only stopped shrinking when the seal was set, which may
	 * be after the first fstat: take it again now.
	 */
	if (fstat(memfd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size < end)
		return -EMSGSIZE;
	return 0;
}

/* Reserve guard + size + guard, then map the file over the middle. */
static int gmem_map(const struct ring_gmem *g, int memfd, uint64_t offset,
		    uint64_t size, uint8_t **ret_host)
{
	size_t len = (size_t)(size + 2 * g->page);
	uint8_t *res, *host;

	res = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED)
		return -errno;
	host = mmap(res + g->page, (size_t)size, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_FIXED, memfd, (off_t)offset);
	if (host == MAP_FAILED) {
		int ret = -errno;

		munmap(res, len);
		return ret;
	}
	*ret_host = host;
	return 0;
}

int ring_gmem_add(struct ring_gmem *g, int memfd, uint64_t offset, uint64_t gpa,
		  uint64_t size)
{
	struct ring_gmem_region *slot = NULL;
	uint8_t *host = NULL;
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
	ret = gmem_check_fd(memfd, offset + size);
	if (ret)
		return ret;
	ret = gmem_map(g, memfd, offset, size, &host);
	if (ret)
		return ret;
	slot->gpa = gpa;
	slot->size = size;
	slot->host = host;
	slot->pins = 0;
	slot->used = true;
	g->total += size;
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
		gmem_unmap(g, r);
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
	if (handle < 0 || handle >= (int)RING_GMEM_MAX_REGIONS)
		return;
	assert(g->r[handle].used && g->r[handle].pins);
	if (g->r[handle].pins)
		g->r[handle].pins--;
}
