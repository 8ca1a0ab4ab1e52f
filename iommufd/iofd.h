/* SPDX-License-Identifier: MIT */
/*
 * iofd: the kernel boundary. One interface, three backends:
 *   kernel  real IOMMU_HWPT_INVALIDATE etc. on the VMM's iommufd
 *   sim     an emulated host SMMU: kernel-exact validation, a cost model,
 *           an IOTLB/config-cache oracle (iommufd/sim.h)
 *   null    accepts everything instantly, counts only
 *
 * Objects:
 *   struct iofd_backend  one per service; chosen by name.
 *   struct iofd_hsmmu    one physical (or simulated) host SMMU.
 *   struct iofd_viommu   one guest vSMMU bound to a host SMMU: for the
 *                        kernel backend, an iommufd fd + vIOMMU id.
 *
 * Thread context: open/close/bind/unbind and vdev calls come from the
 * control thread. iofd_invalidate_call() (and iofd_invalidate()) may run
 * concurrently on different
 * viommus (issuer threads), never concurrently on the same viommu of the
 * kernel backend (its per-viommu entry buffer); the sim (its per-viommu
 * lock) and null backends allow it on the same viommu, which the KVM
 * harness's vcmdq mode uses (its VMM's SMMU CMDQ beside the service's
 * worker). vdev calls may race with invalidations on the same viommu and
 * are safe.
 * Nothing here logs. All functions return 0 or -errno.
 */
#ifndef SMMU_OFFLOAD_IOFD_H
#define SMMU_OFFLOAD_IOFD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmdq/cmdq.h"

struct iofd_backend;
struct iofd_hsmmu;
struct iofd_viommu;

#define IOFD_NAME_MAX 64
/* The kernel issues nested invalidations in chunks of this many commands,
 * each followed by one host CMD_SYNC (CMDQ_BATCH_ENTRIES - 1 on arm64). */
#define IOFD_HOST_CHUNK 63

/* Counters, monotonically increasing; read with iofd_*_counters(). */
struct iofd_counters {
	uint64_t ioctls; /* invalidation calls that reached the backend */
	uint64_t cmds; /* commands in them */
	uint64_t host_syncs; /* host CMD_SYNCs they cost */
	uint64_t errors; /* calls that returned an error */
	uint64_t charged_ns; /* simulated host time charged (sim only) */
};

/**
 * struct iofd_viommu_spec - what to bind.
 * @iommufd:   kernel: the VMM's iommufd (the backend dups it); else -1.
 * @viommu_id: kernel: the vIOMMU object id in that iommufd.
 * @dev_id:    kernel: a device bound to that iommufd on this host SMMU,
 *             used for IOMMU_GET_HW_INFO; 0 to skip the check.
 */
struct iofd_viommu_spec {
	int iommufd;
	uint32_t viommu_id;
	uint32_t dev_id;
};

/**
 * struct iofd_config - backend configuration.
 * @kind:        "kernel", "sim" or "null".
 * @sim:         sim: cost model and caps; NULL for the documented defaults
 *               (docs/COST-MODEL.md).
 */
struct iofd_sim_config;
struct iofd_config {
	const char *kind;
	const struct iofd_sim_config *sim;
	/* kernel: sysfs class directory to discover host SMMUs in; NULL
	 * for "/sys/class/iommu" (tests pass a fake tree). */
	const char *sysfs_root;
};

/**
 * iofd_backend_new() - create a backend.
 * Return: 0, -EINVAL (unknown kind), -ENOMEM.
 */
int iofd_backend_new(const struct iofd_config *cfg, struct iofd_backend **ret);
/* iofd_backend_free() - free; all hsmmus must be closed. NULL is a no-op. */
void iofd_backend_free(struct iofd_backend *b);
const char *iofd_backend_kind(const struct iofd_backend *b);

/**
 * iofd_hsmmu_open() - open a host SMMU by name.
 * kernel: a name from /sys/class/iommu whose device is an SMMUv3; its caps
 * are read from the first bound vIOMMU's GET_HW_INFO (until then the most
 * restrictive profile is used). sim/null: any name; caps from config.
 * Return: 0, -ENOENT (no such SMMU), -EEXIST (already open), -ENOMEM.
 */
int iofd_hsmmu_open(struct iofd_backend *b, const char *name,
		    struct iofd_hsmmu **ret);
void iofd_hsmmu_close(struct iofd_hsmmu *h);
const char *iofd_hsmmu_name(const struct iofd_hsmmu *h);
/* The capabilities cmdq validation uses for this host SMMU. */
const struct cmdq_caps *iofd_hsmmu_caps(const struct iofd_hsmmu *h);
void iofd_hsmmu_counters(const struct iofd_hsmmu *h, struct iofd_counters *out);

/**
 * iofd_iommufd_check() - is @fd an iommufd?
 * The check iofd_viommu_bind() applies (a character device whose number
 * is the misc device "iommu"), including its documented test seam
 * (docs/COST-MODEL.md "fake /dev/iommu"); for the control plane to refuse
 * a wrong fd early. Return: 0, -EBADF. Any thread.
 */
int iofd_iommufd_check(int fd);

/**
 * iofd_viommu_bind() - bind a guest vSMMU to host SMMU @h.
 * kernel: checks that spec->iommufd is /dev/iommu (or the test seam, see
 * docs/COST-MODEL.md "fake /dev/iommu"), dups it, and if spec->dev_id is
 * set reads GET_HW_INFO and refuses a device that is not an SMMUv3.
 * The iommufd uAPI names no SMMU instance; what identifies the SMMU a
 * device sits behind is its registers (IDR0..5, IIDR, AIDR). The first
 * vIOMMU bound with a dev_id sets the host SMMU's registers and caps
 * (control thread; bind before handing the caps to workers); a later
 * dev_id whose SMMU shows other registers is behind another SMMU and is
 * refused with -EXDEV. Without a dev_id the check waits for the vIOMMU's
 * first vDEVICE (iofd_vdev_alloc()). When the last vIOMMU of the host
 * SMMU is unbound, its registers and caps are forgotten (as at a restart).
 * Return: 0, -EBADF (fd is not an iommufd), -ENOENT (no such vIOMMU or
 * device), -EXDEV (the device is behind another SMMU), -EINVAL (not an
 * SMMUv3), -ENOMEM, other -errno of GET_HW_INFO.
 */
int iofd_viommu_bind(struct iofd_hsmmu *h, const struct iofd_viommu_spec *spec,
		     struct iofd_viommu **ret);
/* iofd_viommu_unbind() - release; every vDEVICE must be destroyed first. */
void iofd_viommu_unbind(struct iofd_viommu *v);
void iofd_viommu_counters(const struct iofd_viommu *v,
			  struct iofd_counters *out);

/**
 * iofd_vdev_alloc() - create the vDEVICE binding @vsid to device @dev_id.
 * kernel: a device whose SMMU's registers differ from the host SMMU's
 * (once known, see iofd_viommu_bind()) is refused before the kernel is
 * asked; the kernel itself refuses a device that is not behind the
 * vIOMMU's SMMU (-EINVAL). Together they tie a vIOMMU with a device to
 * the host SMMU it was bound to. Any thread (the worker calls it).
 * Return: 0 with *@ret_vdev_id set; -EEXIST (device or vSID already bound),
 * -ENOENT (no such device), -EXDEV (the device is behind another SMMU),
 * -EINVAL, -EOPNOTSUPP, -ENOMEM.
 */
int iofd_vdev_alloc(struct iofd_viommu *v, uint32_t dev_id, uint64_t vsid,
		    uint32_t *ret_vdev_id);
/* iofd_vdev_destroy() - destroy a vDEVICE. Return: 0, -ENOENT, -EBUSY. */
int iofd_vdev_destroy(struct iofd_viommu *v, uint32_t vdev_id);

/* iofd_inv_result.bad when the backend cannot name the failing command. */
#define IOFD_INV_BAD_UNKNOWN UINT32_MAX

/**
 * struct iofd_inv_result - what one iofd_invalidate_call() established.
 * @done: how many leading commands are known complete (n on success).
 * @bad:  after -EIO, the index of the failing command when the backend
 *        knows it exactly (>= @done; the commands in [@done, @bad) were
 *        accepted but not sent and must be issued again), else
 *        IOFD_INV_BAD_UNKNOWN (the failing command is somewhere in the
 *        host chunk starting at @done, which was dropped whole).
 */
struct iofd_inv_result {
	uint32_t done;
	uint32_t bad;
};

/**
 * iofd_invalidate_call() - issue @n FORWARD commands for one vIOMMU once
 * and wait. No backend retries or localises: that is the caller's
 * (core/batch.h, core_batch_localise(), one layer for every backend).
 * @v:   the vIOMMU.
 * @cmds: commands (cmdq.h representation), guest VMID/SID (the host
 *       rewrites).
 * @n:   count, >= 1.
 * @ret: always set (struct iofd_inv_result).
 *
 * What each backend reports after -EIO: the sim names the failing command
 * exactly (done == bad). The kernel backend reports what entry_num
 * guarantees over both kernel generations (facts doc 4.2, 4.3): only
 * done = 63 * floor(k / 63) entries are known issued; k % 63 != 0 can
 * only be Gen A, where entry k is exactly the illegal one (bad = k); on a
 * chunk boundary (Gen B, or Gen A with the illegal entry first in its
 * chunk) bad is unknown. One ioctl per call.
 *
 * Return: 0; -EIO: an illegal command or one naming an unknown vSID
 * (CERROR_ILL for the ring); -ETIMEDOUT: the host CMD_SYNC of the host
 * chunk starting at ret->done timed out: the chunk's commands (at most
 * IOFD_HOST_CHUNK) were issued but are not known complete, later ones
 * were not issued (see docs/COST-MODEL.md "Errors"); other -errno from
 * the host (-ENOENT: the vIOMMU is gone, -EINVAL, -EOPNOTSUPP, -ENOMEM,
 * -EFAULT), nothing from ret->done on was issued. What a ring reports for
 * each is the caller's business (core: core_ring_err()); this layer only
 * reports errnos.
 */
int iofd_invalidate_call(struct iofd_viommu *v, const struct cmdq_cmd *cmds,
			 uint32_t n, struct iofd_inv_result *ret);

/**
 * iofd_invalidate() - iofd_invalidate_call() for callers that treat any
 * failure as final (benches, tools): *@ret_done = ret.done, always set.
 * Not exact after -EIO on the kernel backend (see above).
 */
int iofd_invalidate(struct iofd_viommu *v, const struct cmdq_cmd *cmds,
		    uint32_t n, uint32_t *ret_done);

/**
 * struct iofd_error - context of the last failed iofd_invalidate_call() of a
 * vIOMMU, for the caller's log line.
 * @err:       its return value (0: no failure yet).
 * @op:        static name of what failed ("IOMMU_HWPT_INVALIDATE", "sim").
 * @first:     index (in the iofd_invalidate_call() array) of the first
 *             command of the failing ioctl.
 * @count:     commands in the failing ioctl.
 * @entry_num: the entry_num it reported (kernel), or the failing index.
 * @ioctls:    ioctls made by that iofd_invalidate_call().
 */
struct iofd_error {
	int err;
	const char *op;
	uint32_t first;
	uint32_t count;
	uint32_t entry_num;
	uint32_t ioctls;
};

/* iofd_viommu_last_error() - copy the last failure's context. Any thread. */
void iofd_viommu_last_error(const struct iofd_viommu *v,
			    struct iofd_error *out);

/**
 * iofd_caps_from_idr() - decode SMMU_IDR0..5 (GET_HW_INFO) into cmdq caps.
 * @idr:      raw IDR0..IDR5 as reported by the kernel.
 * @ret_caps: set on success.
 *
 * Uses only the fields the uAPI tells VMMs to use plus IDR0.ATS (ATC_INV
 * is rejected by the newer kernel without it) and IDR5.DS (bit 3).
 * Return: 0; -EOPNOTSUPP if no translation granule is reported (not an
 * SMMUv3 a guest can nest on). Any thread.
 */
int iofd_caps_from_idr(const uint32_t idr[6], struct cmdq_caps *ret_caps);

/**
 * iofd_discover() - list the SMMUv3 instances of a sysfs iommu class dir.
 * @sysfs_root: e.g. "/sys/class/iommu"; NULL for that.
 * @names:      filled with up to @max names, sorted.
 * @max:        capacity of @names.
 * @ret_n:      set on success to the number of SMMUv3 instances found
 *              (may exceed @max; only @max are stored).
 *
 * An entry is an SMMUv3 if its device's driver is "arm-smmu-v3" or, when
 * the driver link is missing, its name has the driver's "smmu3." prefix.
 * Return: 0; -ENOENT (no such directory), -ENOMEM, other -errno of
 * opendir(). Any thread.
 */
int iofd_discover(const char *sysfs_root, char (*names)[IOFD_NAME_MAX],
		  size_t max, size_t *ret_n);

#endif
