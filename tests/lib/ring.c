/* SPDX-License-Identifier: MIT */
/* A VMM's side of one ring; see tlib.h. */
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "tests/lib/tlib.h"

int _tlib_ring_new(struct tlib_ring *r, uint32_t log2, int efd_flags)
{
	int ret;

	memset(r, 0, sizeof(*r));
	r->memfd = r->db = r->cq = -1;
	ret = ring_memfd_create(log2, &r->memfd);
	if (ret)
		return ret;
	r->db = eventfd(0, EFD_CLOEXEC | efd_flags);
	if (r->db < 0)
		return -errno;
	r->cq = eventfd(0, EFD_CLOEXEC | efd_flags);
	if (r->cq < 0)
		return -errno;
	return ring_prod_init(&r->p, r->memfd, r->db, r->cq);
}

void tlib_ring_new(struct tlib_ring *r, uint32_t log2, int efd_flags)
{
	ASSERT_OK(_tlib_ring_new(r, log2, efd_flags));
}

void tlib_ring_free(struct tlib_ring *r)
{
	ring_prod_done(&r->p);
	tlib_close(&r->memfd);
	tlib_close(&r->db);
	tlib_close(&r->cq);
}

struct cmdq_cmd tlib_sync_cmd(void)
{
	return cmdq_build_sync(CMDQ_SYNC_CS_SEV, CMDQ_SYNC_MSH_ISH,
			       CMDQ_SYNC_MSIATTR_OIWB, 0, 0);
}

struct smmu_ring_entry tlib_entry(struct cmdq_cmd c)
{
	struct smmu_ring_entry e;

	cmdq_cmd_to_le(&c, &e);
	return e;
}

int _tlib_ring_push(struct tlib_ring *r, struct cmdq_cmd c, uint32_t *ret)
{
	struct smmu_ring_entry e = tlib_entry(c);

	return ring_prod_push(&r->p, &e, 1, ret);
}

uint32_t tlib_ring_push(struct tlib_ring *r, struct cmdq_cmd c)
{
	uint32_t idx = 0;

	ASSERT_OK(_tlib_ring_push(r, c, &idx));
	return idx;
}

uint32_t tlib_ring_push_wait(struct tlib_ring *r, struct cmdq_cmd c,
			     int wait_ms)
{
	uint32_t idx = 0;
	int rc;

	/* A full ring drains as the service completes: wait for space. */
	while ((rc = _tlib_ring_push(r, c, &idx)) == -EAGAIN)
		ASSERT_OK(ring_prod_wait(&r->p, r->p.prod - 1, 1000, wait_ms));
	ASSERT_OK(rc);
	return idx;
}

int _tlib_ring_push_sync(struct tlib_ring *r, const struct cmdq_cmd *cmds,
			 uint32_t n, uint32_t *ret_sync)
{
	struct smmu_ring_entry e[16];
	uint32_t first = 0;
	int ret;

	ASSERT_LT(n, 16);
	for (uint32_t i = 0; i < n; i++)
		e[i] = tlib_entry(cmds[i]);
	e[n] = tlib_entry(tlib_sync_cmd());
	ret = ring_prod_push(&r->p, e, n + 1, &first);
	if (ret)
		return ret;
	if (ret_sync)
		*ret_sync = first + n;
	return ring_prod_publish(&r->p);
}

uint32_t tlib_ring_push_sync(struct tlib_ring *r, const struct cmdq_cmd *cmds,
			     uint32_t n)
{
	uint32_t sync = 0;

	ASSERT_OK(_tlib_ring_push_sync(r, cmds, n, &sync));
	return sync;
}

uint32_t tlib_ring_push_pair(struct tlib_ring *r, struct cmdq_cmd a)
{
	return tlib_ring_push_sync(r, &a, 1);
}

int _tlib_ring_run(struct tlib_ring *r, const struct cmdq_cmd *cmds, uint32_t n,
		   int wait_ms, uint32_t *ret_sync)
{
	uint32_t sync = 0;
	int ret = _tlib_ring_push_sync(r, cmds, n, &sync);

	if (ret)
		return ret;
	if (ret_sync)
		*ret_sync = sync;
	return ring_prod_wait(&r->p, sync, 10000, wait_ms);
}

void tlib_ring_run(struct tlib_ring *r, const struct cmdq_cmd *cmds, uint32_t n,
		   int wait_ms)
{
	ASSERT_OK(_tlib_ring_run(r, cmds, n, wait_ms, NULL));
}
