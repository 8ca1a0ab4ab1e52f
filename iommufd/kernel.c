/* SPDX-License-Identifier: MIT */
/*
 * The kernel backend: real iommufd ioctls on a dup of the VMM's iommufd.
 * ABI and errno rules: iommufd_abi.h and the facts doc sections 2-4.
 */
#define SMMU_OFFLOAD_IOFD_INTERNAL
#include "iommufd/iofd_i.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "iommufd/iommufd_abi.h"

/*
 * Until a vIOMMU's GET_HW_INFO tells us better, validate for the most
 * restrictive SMMUv3 a guest can nest on: nothing optional.
 */
static const struct cmdq_caps kernel_min_caps = {
	.asid_bits = 8,
	.ssid_bits = 0,
	.sid_bits = 32,
	.gran4k = true,
};

/* Owned by the viommu's issuer (invalidate never runs concurrently). */
struct kernel_viommu {
	int fd; /* our dup of the VMM's iommufd */
	uint32_t viommu_id;
	/* little-endian copy of the array, big-endian hosts only */
	struct iofd_abi_smmuv3_inv *buf;
	uint32_t cap;
};

static int kernel_hsmmu_open(struct iofd_hsmmu *h)
{
	char(*names)[IOFD_NAME_MAX];
	size_t n, i, max = 64;
	int r;

	names = calloc(max, IOFD_NAME_MAX);
	if (!names)
		return -ENOMEM;
	r = iofd_discover(h->b->sysfs_root, names, max, &n);
	if (r < 0)
		goto out;
	r = -ENOENT;
	for (i = 0; i < n && i < max; i++)
		if (!strcmp(names[i], h->name))
			r = 0;
	h->caps = kernel_min_caps;
out:
	free(names);
	return r;
}

/* The misc device number of /dev/iommu, from sysfs ("10:123"). */
static int kernel_iommu_devt(dev_t *ret)
{
	unsigned int maj, min;
	FILE *f;
	int n;

	f = fopen("/sys/class/misc/iommu/dev", "re");
	if (!f)
		return -errno;
	n = fscanf(f, "%u:%u", &maj, &min);
	fclose(f);
	if (n != 2)
		return -EINVAL;
	*ret = makedev(maj, min);
	return 0;
}

/*
 * Is @fd an iommufd? A real one is the character device of the misc
 * device "iommu" (there may be no /dev/iommu node in our mount namespace,
 * so compare with sysfs, not with stat("/dev/iommu")).
 *
 * TEST SEAM (docs/COST-MODEL.md "fake /dev/iommu"): the fake /dev/iommu
 * used by the tests is a memfd, not a character device. If, and only if,
 * the process has the test interposer loaded (it exports
 * IOFD_TEST_SEAM_SYMBOL; production binaries never contain that symbol),
 * a descriptor that is not a character device is passed to the
 * interposer's own recogniser. Character devices are always judged by
 * their device number alone, so the seam never widens what a real fd may
 * be.
 */
#define IOFD_TEST_SEAM_SYMBOL "iofd_test_seam_is_iommufd"

int iofd_iommufd_check(int fd)
{
	bool (*seam)(int fd);
	struct stat st;
	dev_t devt = 0;
	int r;

	if (fd < 0 || fstat(fd, &st))
		return -EBADF;
	if (S_ISCHR(st.st_mode)) {
		r = kernel_iommu_devt(&devt);
		if (r < 0)
			return -EBADF;
		return st.st_rdev == devt ? 0 : -EBADF;
	}
	*(void **)&seam = dlsym(RTLD_DEFAULT, IOFD_TEST_SEAM_SYMBOL);
	if (seam && seam(fd))
		return 0;
	return -EBADF;
}

/* Registers of a host SMMU as GET_HW_INFO shows them: IDR0..5, IIDR, AIDR. */
#define KERNEL_HW_REGS 8

/*
 * GET_HW_INFO of device @dev_id: the registers of the SMMU it sits behind
 * (raw, into @regs) and the caps they give. -EINVAL: not an SMMUv3.
 */
static int kernel_hw_info(int fd, uint32_t dev_id, struct cmdq_caps *ret,
			  uint32_t regs[KERNEL_HW_REGS])
{
	struct iofd_abi_hw_info_smmuv3 data = { 0 };
	struct iofd_abi_hw_info info = {
		.size = sizeof(info),
		.dev_id = dev_id,
		.data_len = sizeof(data),
		.data_uptr = (uintptr_t)&data,
	};

	if (ioctl(fd, IOFD_ABI_GET_HW_INFO, &info))
		return -errno;
	if (info.in_data_type != IOFD_ABI_HW_INFO_TYPE_ARM_SMMUV3)
		return -EINVAL;
	memcpy(regs, data.idr, sizeof(data.idr));
	regs[6] = data.iidr;
	regs[7] = data.aidr;
	return iofd_caps_from_idr(data.idr, ret) ? -EINVAL : 0;
}

/*
 * Is device @dev_id behind host SMMU @h, as far as registers tell? The
 * iommufd uAPI names no SMMU instance: GET_HW_INFO gives the registers of
 * the device's SMMU. Once @h's are known (first bind with a dev_id), a
 * device whose SMMU shows others is behind another SMMU: -EXDEV. Returns
 * the device's caps and whether @h's registers were known.
 */
static int kernel_check_dev(struct iofd_hsmmu *h, int fd, uint32_t dev_id,
			    struct cmdq_caps *caps,
			    uint32_t regs[KERNEL_HW_REGS], bool *known)
{
	int r = kernel_hw_info(fd, dev_id, caps, regs);

	if (r < 0)
		return r;
	pthread_mutex_lock(&h->lock);
	*known = h->caps_from_hw;
	if (*known && memcmp(regs, h->hw_regs, sizeof(h->hw_regs)))
		r = -EXDEV;
	pthread_mutex_unlock(&h->lock);
	return r;
}

/* Invalidate with entry_num = 0: only to learn whether the id exists. */
static int kernel_probe_viommu(int fd, uint32_t viommu_id)
{
	struct iofd_abi_hwpt_invalidate a = {
		.size = sizeof(a),
		.hwpt_id = viommu_id,
		.data_type = IOFD_ABI_INVALIDATE_DATA_ARM_SMMUV3,
		.entry_len = sizeof(struct iofd_abi_smmuv3_inv),
	};

	/* Gen A answers EINVAL even for a good vIOMMU, Gen B 0; only
	 * ENOENT is conclusive. */
	if (ioctl(fd, IOFD_ABI_HWPT_INVALIDATE, &a) && errno == ENOENT)
		return -ENOENT;
	return 0;
}

static int kernel_viommu_bind(struct iofd_viommu *v,
			      const struct iofd_viommu_spec *spec)
{
	uint32_t regs[KERNEL_HW_REGS];
	struct kernel_viommu *kv;
	struct cmdq_caps caps;
	bool known;
	int r;

	if (!spec)
		return -EINVAL;
	r = iofd_iommufd_check(spec->iommufd);
	if (r < 0)
		return r;
	kv = calloc(1, sizeof(*kv));
	if (!kv)
		return -ENOMEM;
	kv->viommu_id = spec->viommu_id;
	kv->fd = fcntl(spec->iommufd, F_DUPFD_CLOEXEC, 3);
	if (kv->fd < 0) {
		r = -errno;
		goto err_free;
	}
	r = kernel_probe_viommu(kv->fd, kv->viommu_id);
	if (r < 0)
		goto err_close;
	if (spec->dev_id) {
		r = kernel_check_dev(v->h, kv->fd, spec->dev_id, &caps, regs,
				     &known);
		if (r < 0)
			goto err_close;
		if (!known) {
			/* Control thread: the only writer of caps. */
			v->h->caps = caps;
			pthread_mutex_lock(&v->h->lock);
			memcpy(v->h->hw_regs, regs, sizeof(regs));
			v->h->caps_from_hw = true;
			pthread_mutex_unlock(&v->h->lock);
		}
	}
	v->priv = kv;
	return 0;

err_close:
	close(kv->fd);
err_free:
	free(kv);
	return r;
}

static void kernel_viommu_unbind(struct iofd_viommu *v)
{
	struct kernel_viommu *kv = v->priv;
	struct iofd_hsmmu *h = v->h;

	close(kv->fd);
	free(kv->buf);
	free(kv);
	/*
	 * The last vIOMMU leaves: forget the registers it (or an earlier
	 * one) set, as a restart would, so that a binder that named the
	 * wrong SMMU does not lock others out after it is gone.
	 */
	if (h->nviommus == 1) {
		h->caps = kernel_min_caps;
		pthread_mutex_lock(&h->lock);
		h->caps_from_hw = false;
		memset(h->hw_regs, 0, sizeof(h->hw_regs));
		pthread_mutex_unlock(&h->lock);
	}
}

static int kernel_vdev_alloc(struct iofd_viommu *v, uint32_t dev_id,
			     uint64_t vsid, uint32_t *ret_vdev_id)
{
	struct kernel_viommu *kv = v->priv;
	struct iofd_abi_vdevice_alloc a = {
		.size = sizeof(a),
		.viommu_id = kv->viommu_id,
		.dev_id = dev_id,
		.virt_id = vsid,
	};
	uint32_t regs[KERNEL_HW_REGS];
	struct cmdq_caps caps;
	bool known;
	int r;

	/* Commands carry a 32-bit SID: a larger vSID is unreachable. */
	if (vsid > UINT32_MAX)
		return -EINVAL;
	/*
	 * The kernel refuses a device that is not behind the vIOMMU's SMMU;
	 * this refuses one whose SMMU is not the host SMMU the vSMMU was
	 * bound to. Together: a vSMMU with a device is behind that host SMMU,
	 * whatever dev_id (or none) it was bound with.
	 */
	r = kernel_check_dev(v->h, kv->fd, dev_id, &caps, regs, &known);
	if (r < 0)
		return r;
	if (ioctl(kv->fd, IOFD_ABI_VDEVICE_ALLOC, &a))
		return -errno;
	*ret_vdev_id = a.out_vdevice_id;
	return 0;
}

static int kernel_vdev_destroy(struct iofd_viommu *v, uint32_t vdev_id)
{
	struct kernel_viommu *kv = v->priv;
	struct iofd_abi_destroy a = { .size = sizeof(a), .id = vdev_id };

	if (ioctl(kv->fd, IOFD_ABI_DESTROY, &a))
		return -errno;
	return 0;
}

_Static_assert(sizeof(struct iofd_abi_smmuv3_inv) == sizeof(struct cmdq_cmd),
	       "a command is one ABI entry");

/*
 * The ioctl's entry array for @cmds. On a little-endian host the array of
 * struct cmdq_cmd is already the ABI's (cmdq.h: one representation from
 * the ring copy to the ioctl): it is passed as it is, no copy, no swap.
 * A big-endian host converts into kv->buf.
 */
static int kernel_entries(struct kernel_viommu *kv, const struct cmdq_cmd *cmds,
			  uint32_t n, const struct iofd_abi_smmuv3_inv **ret)
{
	if (CMDQ_CMD_IS_LE) {
		/* Only the kernel reads it through this type. */
		*ret = (const struct iofd_abi_smmuv3_inv *)(const void *)cmds;
		return 0;
	}
	if (n > kv->cap) {
		struct iofd_abi_smmuv3_inv *nb;

		nb = realloc(kv->buf, (size_t)n * sizeof(*nb));
		if (!nb)
			return -ENOMEM;
		kv->buf = nb;
		kv->cap = n;
	}
	for (uint32_t i = 0; i < n; i++)
		cmdq_cmd_to_le(&cmds[i], &kv->buf[i]);
	*ret = kv->buf;
	return 0;
}

/* One HWPT_INVALIDATE of ent[first, first + count); *ret_num = entry_num. */
static int kernel_ioctl_inv(struct kernel_viommu *kv,
			    const struct iofd_abi_smmuv3_inv *ent,
			    uint32_t first, uint32_t count, uint32_t *ret_num,
			    struct iofd_counters *delta)
{
	struct iofd_abi_hwpt_invalidate a = {
		.size = sizeof(a),
		.hwpt_id = kv->viommu_id,
		.data_uptr = (uintptr_t)(ent + first),
		.data_type = IOFD_ABI_INVALIDATE_DATA_ARM_SMMUV3,
		.entry_len = sizeof(struct iofd_abi_smmuv3_inv),
		.entry_num = count,
	};
	int r = 0;

	delta->ioctls++;
	if (ioctl(kv->fd, IOFD_ABI_HWPT_INVALIDATE, &a))
		r = -errno;
	/* Never trust a count beyond what we passed. */
	*ret_num = a.entry_num < count ? a.entry_num : count;
	return r;
}

static uint32_t kernel_floor_chunk(uint32_t k)
{
	return k / IOFD_HOST_CHUNK * IOFD_HOST_CHUNK;
}

/*
 * One HWPT_INVALIDATE of the whole list, reported over both kernel
 * generations (facts doc 4.2, 4.3; the contract in iofd.h). After EIO
 * with entry_num k only g = 63 * floor(k / 63) entries are guaranteed
 * issued (Gen A converted [g, k) but never sent them; Gen B reports
 * issued chunks only, so its k is always a multiple of 63). k % 63 != 0
 * can only be Gen A: entry k is the illegal one exactly. On a chunk
 * boundary it is Gen B (the illegal entry is somewhere in the next chunk,
 * dropped whole) or Gen A with the illegal entry at exactly g: unknown.
 * Narrowing down is core's (core_batch_localise()), never retried here.
 *
 * ETIMEDOUT: Gen A reports e - 1 for a chunk ending at e; 63 * floor()
 * of that is the chunk start, complete before it.
 */
static int kernel_invalidate(struct iofd_viommu *v, const struct cmdq_cmd *cmds,
			     uint32_t n, struct iofd_inv_result *ret,
			     struct iofd_counters *delta,
			     struct iofd_error *err)
{
	struct kernel_viommu *kv = v->priv;
	const struct iofd_abi_smmuv3_inv *ent;
	uint32_t k, g, span;
	int r;

	r = kernel_entries(kv, cmds, n, &ent);
	if (r)
		return r;
	r = kernel_ioctl_inv(kv, ent, 0, n, &k, delta);
	if (!r) {
		delta->cmds += n;
		delta->host_syncs += iofd_host_syncs(n);
		ret->done = n;
		return 0;
	}
	err->op = "IOMMU_HWPT_INVALIDATE";
	err->first = 0;
	err->count = n;
	err->entry_num = k;
	if (r != -EIO && r != -ETIMEDOUT)
		return r;
	g = kernel_floor_chunk(k);
	delta->cmds += g;
	delta->host_syncs += g / IOFD_HOST_CHUNK;
	ret->done = g;
	if (r == -ETIMEDOUT) {
		span = n - g;
		delta->cmds += span < IOFD_HOST_CHUNK ? span : IOFD_HOST_CHUNK;
		delta->host_syncs++;
	} else if (k != g && k < n) {
		ret->bad = k; /* Gen A: exact */
	}
	return r;
}

const struct iofd_ops iofd_kernel_ops = {
	.kind = "kernel",
	.hsmmu_open = kernel_hsmmu_open,
	.viommu_bind = kernel_viommu_bind,
	.viommu_unbind = kernel_viommu_unbind,
	.vdev_alloc = kernel_vdev_alloc,
	.vdev_destroy = kernel_vdev_destroy,
	.invalidate = kernel_invalidate,
};
