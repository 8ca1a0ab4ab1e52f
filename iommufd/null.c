/* SPDX-License-Identifier: MIT */
/*
 * The null backend: every invalidation succeeds at once. It measures the
 * service's own overhead, so it does nothing but count (in backend.c).
 */
#define SMMU_OFFLOAD_IOFD_INTERNAL
#include "iommufd/iofd_i.h"

#include <errno.h>
#include <stdint.h>

static int null_vdev_alloc(struct iofd_viommu *v, uint32_t dev_id,
			   uint64_t vsid, uint32_t *ret_vdev_id)
{
	uintptr_t next = (uintptr_t)v->priv + 1;

	if (vsid > UINT32_MAX)
		return -EINVAL;
	/* Control thread only: no lock needed for the id counter. */
	v->priv = (void *)next;
	*ret_vdev_id = (uint32_t)next;
	return 0;
}

static int null_vdev_destroy(struct iofd_viommu *v, uint32_t vdev_id)
{
	if (!vdev_id || vdev_id > (uintptr_t)v->priv)
		return -ENOENT;
	return 0;
}

static int null_invalidate(struct iofd_viommu *v, const struct cmdq_cmd *cmds,
			   uint32_t n, struct iofd_inv_result *ret,
			   struct iofd_counters *delta, struct iofd_error *err)
{
	delta->ioctls = 1;
	delta->cmds = n;
	delta->host_syncs = iofd_host_syncs(n);
	ret->done = n;
	return 0;
}

const struct iofd_ops iofd_null_ops = {
	.kind = "null",
	.vdev_alloc = null_vdev_alloc,
	.vdev_destroy = null_vdev_destroy,
	.invalidate = null_invalidate,
};
