/* SPDX-License-Identifier: MIT */
/* The kernel backend: real iommufd ioctls (work in progress). */
#define SMMU_OFFLOAD_IOFD_INTERNAL
#include "iommufd/iofd_i.h"

#include <errno.h>

static int kernel_invalidate(struct iofd_viommu *v, const struct cmdq_cmd *cmds,
			     uint32_t n, uint32_t *ret_done,
			     struct iofd_counters *delta)
{
	*ret_done = 0;
	return -EOPNOTSUPP;
}

static int kernel_hsmmu_open(struct iofd_hsmmu *h)
{
	return -ENOENT;
}

const struct iofd_ops iofd_kernel_ops = {
	.kind = "kernel",
	.hsmmu_open = kernel_hsmmu_open,
	.invalidate = kernel_invalidate,
};
