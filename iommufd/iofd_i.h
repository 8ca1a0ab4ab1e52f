/* SPDX-License-Identifier: MIT */
/*
 * iofd internals: the backend vtable and the common object layout shared
 * by backend.c and the three backends. Not for use outside iommufd/.
 */
#ifndef SMMU_OFFLOAD_IOFD_I_H
#define SMMU_OFFLOAD_IOFD_I_H

#ifndef SMMU_OFFLOAD_IOFD_INTERNAL
#error "iofd_i.h is internal to iommufd/"
#endif

#include <pthread.h>

#include "iommufd/iofd.h"
#include "iommufd/sim.h"

/*
 * One backend implementation. Every op is optional except invalidate;
 * a missing op succeeds trivially (vdev ops: -EOPNOTSUPP).
 *
 * invalidate() issues once, never retries, and reports as
 * iofd_invalidate_call() says (backend.c has set *ret to {0, unknown}). It
 * adds what it cost to @delta (ioctls, cmds, host_syncs,
 * charged_ns) whether it succeeds or fails; backend.c folds the delta into
 * the viommu and hsmmu counters and counts errors. On failure it may fill
 * @err (op, first, count, entry_num); backend.c completes and keeps it.
 */
struct iofd_ops {
	const char *kind;
	int (*backend_init)(struct iofd_backend *b);
	void (*backend_fini)(struct iofd_backend *b);
	int (*hsmmu_open)(struct iofd_hsmmu *h);
	void (*hsmmu_close)(struct iofd_hsmmu *h);
	int (*viommu_bind)(struct iofd_viommu *v,
			   const struct iofd_viommu_spec *spec);
	void (*viommu_unbind)(struct iofd_viommu *v);
	int (*vdev_alloc)(struct iofd_viommu *v, uint32_t dev_id, uint64_t vsid,
			  uint32_t *ret_vdev_id);
	int (*vdev_destroy)(struct iofd_viommu *v, uint32_t vdev_id);
	int (*invalidate)(struct iofd_viommu *v, const struct cmdq_cmd *cmds,
			  uint32_t n, struct iofd_inv_result *ret,
			  struct iofd_counters *delta, struct iofd_error *err);
};

extern const struct iofd_ops iofd_null_ops;
extern const struct iofd_ops iofd_sim_ops;
extern const struct iofd_ops iofd_kernel_ops;

/* Owned by the control thread; @lock protects @hsmmus. */
struct iofd_backend {
	const struct iofd_ops *ops;
	pthread_mutex_t lock;
	struct iofd_hsmmu *hsmmus;
	struct iofd_sim_config sim; /* sim and null: caps and costs */
	char sysfs_root[256];
	void *priv;
};

/*
 * Created and closed by the control thread. @caps is written only by the
 * control thread (open, first kernel bind); @lock protects @ctr, which
 * issuer threads of different viommus update concurrently, and @hw_regs,
 * which workers read when they allocate a vDEVICE.
 */
struct iofd_hsmmu {
	struct iofd_backend *b;
	struct iofd_hsmmu *next; /* b->lock */
	char name[IOFD_NAME_MAX];
	struct cmdq_caps caps;
	bool caps_from_hw; /* kernel: caps read from GET_HW_INFO (lock) */
	/* kernel: its registers as GET_HW_INFO reports them (IDR0..5, IIDR,
	 * AIDR), once caps_from_hw: what a device behind it must show */
	uint32_t hw_regs[8];
	unsigned int nviommus; /* control thread; counts the one unbinding */
	pthread_mutex_t lock;
	struct iofd_counters ctr;
	void *priv;
};

/* Bound by the control thread; @lock protects @ctr. */
struct iofd_viommu {
	struct iofd_hsmmu *h;
	pthread_mutex_t lock;
	struct iofd_counters ctr;
	struct iofd_error last_err; /* lock */
	void *priv;
};

/* iofd_counters_add() - *@dst += *@src, field by field. */
void iofd_counters_add(struct iofd_counters *dst,
		       const struct iofd_counters *src);

/* Host syncs needed for @n commands: one per IOFD_HOST_CHUNK. */
static inline uint32_t iofd_host_syncs(uint32_t n)
{
	return (n + IOFD_HOST_CHUNK - 1) / IOFD_HOST_CHUNK;
}

#endif
