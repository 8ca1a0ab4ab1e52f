/* SPDX-License-Identifier: MIT */
/* The VMM side of a vSMMU's ring in smmu-bench: see vmm-ring.h. */
#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bench/vmm-ring.h"

void bench_ring_reset(struct bench_ring *br)
{
	br->memfd = br->db = br->cq = -1;
	br->ok = false;
}

int bench_ring_open(struct bench_ring *br, unsigned int log2)
{
	int r = ring_memfd_create(log2, &br->memfd);

	if (r)
		return r;
	br->db = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	br->cq = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (br->db < 0 || br->cq < 0)
		return -errno;
	r = ring_prod_init(&br->p, br->memfd, br->db, br->cq);
	if (!r)
		br->ok = true;
	return r;
}

void bench_ring_close(struct bench_ring *br)
{
	if (br->ok)
		ring_prod_done(&br->p);
	if (br->memfd >= 0)
		close(br->memfd);
	if (br->db >= 0)
		close(br->db);
	if (br->cq >= 0)
		close(br->cq);
	bench_ring_reset(br);
}
