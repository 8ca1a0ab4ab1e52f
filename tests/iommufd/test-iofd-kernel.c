/* SPDX-License-Identifier: MIT */
/*
 * The iommufd ABI rules and the kernel backend, against the fake
 * /dev/iommu (fake_iommu.c; linked into this binary or LD_PRELOADed, see
 * meson.build). Iommufd-selftest style: _x() raw ioctl, x() must succeed,
 * x_err(E, ...) must fail with E.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/batch.h"
#include "iommufd/iofd.h"
#include "iommufd/iommufd_abi.h"
#include "tests/lib/tlib-core.h"
#include "tests/iommufd/fake_iommu.h"

#ifdef FAKE_IOMMU_LINKED
/* Linked (not preloaded) with the fake: keep the library's DT_NEEDED. */
__attribute__((constructor)) static void keep_fake(void)
{
	if (fake_iommu_linked() != FAKE_IOMMU_MAGIC)
		abort();
}
#endif

static int do_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

/* ---- the fake's test commands ---- */

static int _fake_cmd(int fd, struct fake_iommu_cmd *c)
{
	c->size = sizeof(*c);
	return do_ioctl(fd, IOFD_ABI_TEST_CMD, c);
}

static uint32_t fake_add_dev(int fd, uint32_t smmu, uint32_t psid,
			     uint32_t nstreams)
{
	struct fake_iommu_cmd c = { .op = FAKE_IOMMU_OP_ADD_DEV,
				    .smmu = smmu,
				    .arg64 = psid,
				    .arg32 = nstreams };

	ASSERT_OK(_fake_cmd(fd, &c));
	return c.id;
}

static void fake_set_gen(int fd, char gen)
{
	struct fake_iommu_cmd c = { .op = FAKE_IOMMU_OP_SET_GEN,
				    .arg32 = (uint32_t)gen };

	ASSERT_OK(_fake_cmd(fd, &c));
}

static void fake_set_fault(int fd, int e, uint64_t at)
{
	struct fake_iommu_cmd c = { .op = FAKE_IOMMU_OP_SET_FAULT,
				    .arg32 = (uint32_t)e,
				    .arg64 = at };

	ASSERT_OK(_fake_cmd(fd, &c));
}

/* Raw IDR0..5 of fake SMMU @smmu (GET_HW_INFO of its devices). */
static void fake_set_idr(int fd, uint32_t smmu, const uint32_t idr[6])
{
	struct fake_iommu_cmd c = { .op = FAKE_IOMMU_OP_SET_IDR,
				    .smmu = smmu,
				    .uptr = (uintptr_t)idr };

	ASSERT_OK(_fake_cmd(fd, &c));
}

/* Log entries from @from; returns how many (<= max). */
static uint32_t fake_log(int fd, uint64_t from, struct fake_iommu_log_ent *out,
			 uint32_t max, uint32_t *total)
{
	struct fake_iommu_cmd c = { .op = FAKE_IOMMU_OP_GET_LOG,
				    .arg64 = from,
				    .arg32 = max,
				    .uptr = (uintptr_t)out };

	ASSERT_OK(_fake_cmd(fd, &c));
	if (total)
		*total = c.id;
	return c.arg32;
}

static uint64_t fake_ninv(int fd)
{
	struct fake_iommu_cmd c = { .op = FAKE_IOMMU_OP_STATS };

	ASSERT_OK(_fake_cmd(fd, &c));
	ASSERT_EQ(c.id, (uint32_t)FAKE_IOMMU_MAGIC);
	return c.arg64;
}

/* ---- iommufd ioctl helper trios ---- */

static int _destroy(int fd, uint32_t id)
{
	struct iofd_abi_destroy a = { .size = sizeof(a), .id = id };

	return do_ioctl(fd, IOFD_ABI_DESTROY, &a);
}
#define destroy(fd, id) ASSERT_OK(_destroy(fd, id))
#define destroy_err(e, fd, id) ASSERT_ERR(-(e), _destroy(fd, id))

static int _ioas_alloc(int fd, uint32_t flags, uint32_t *id)
{
	struct iofd_abi_ioas_alloc a = { .size = sizeof(a), .flags = flags };
	int r = do_ioctl(fd, IOFD_ABI_IOAS_ALLOC, &a);

	if (!r)
		*id = a.out_ioas_id;
	return r;
}

static int _hwpt_alloc(int fd, uint32_t flags, uint32_t dev, uint32_t pt,
		       uint32_t type, const void *data, uint32_t len,
		       uint32_t *id)
{
	struct iofd_abi_hwpt_alloc a = { .size = sizeof(a),
					 .flags = flags,
					 .dev_id = dev,
					 .pt_id = pt,
					 .data_type = type,
					 .data_len = len,
					 .data_uptr = (uintptr_t)data };
	int r = do_ioctl(fd, IOFD_ABI_HWPT_ALLOC, &a);

	if (!r)
		*id = a.out_hwpt_id;
	return r;
}

static int _viommu_alloc(int fd, uint32_t flags, uint32_t type, uint32_t dev,
			 uint32_t hwpt, uint32_t *id)
{
	struct iofd_abi_viommu_alloc a = { .size = sizeof(a),
					   .flags = flags,
					   .type = type,
					   .dev_id = dev,
					   .hwpt_id = hwpt };
	int r = do_ioctl(fd, IOFD_ABI_VIOMMU_ALLOC, &a);

	if (!r)
		*id = a.out_viommu_id;
	return r;
}

static int _vdevice_alloc(int fd, uint32_t viommu, uint32_t dev, uint64_t vsid,
			  uint32_t *id)
{
	struct iofd_abi_vdevice_alloc a = { .size = sizeof(a),
					    .viommu_id = viommu,
					    .dev_id = dev,
					    .virt_id = vsid };
	int r = do_ioctl(fd, IOFD_ABI_VDEVICE_ALLOC, &a);

	if (!r)
		*id = a.out_vdevice_id;
	return r;
}
#define vdevice_alloc(fd, v, d, s, id) \
	ASSERT_OK(_vdevice_alloc(fd, v, d, s, id))
#define vdevice_alloc_err(e, fd, v, d, s) \
	ASSERT_ERR(-(e), _vdevice_alloc(fd, v, d, s, &(uint32_t){ 0 }))

static int _veventq_alloc(struct iofd_abi_veventq_alloc *a, int fd)
{
	a->size = sizeof(*a);
	return do_ioctl(fd, IOFD_ABI_VEVENTQ_ALLOC, a);
}

static int _hw_info(int fd, struct iofd_abi_hw_info *a)
{
	a->size = sizeof(*a);
	return do_ioctl(fd, IOFD_ABI_GET_HW_INFO, a);
}

/* HWPT_INVALIDATE of @n LE entries at @data; *num = entry_num out. */
static int _invalidate(int fd, uint32_t id, const void *data, uint32_t len,
		       uint32_t n, uint32_t *num)
{
	struct iofd_abi_hwpt_invalidate a = {
		.size = sizeof(a),
		.hwpt_id = id,
		.data_uptr = (uintptr_t)data,
		.data_type = IOFD_ABI_INVALIDATE_DATA_ARM_SMMUV3,
		.entry_len = len,
		.entry_num = n,
	};
	int r = do_ioctl(fd, IOFD_ABI_HWPT_INVALIDATE, &a);

	*num = a.entry_num;
	return r;
}
#define invalidate_err(e, want_num, fd, id, data, len, n)                   \
	do {                                                                \
		uint32_t num_ = 777;                                        \
		ASSERT_ERR(-(e), _invalidate(fd, id, data, len, n, &num_)); \
		ASSERT_EQ(num_, want_num);                                  \
	} while (0)

/* Marker commands: TLBI_NH_VA with VA = (i + 1) pages, so logs can be
 * matched entry by entry. */
static struct cmdq_cmd marker(uint32_t i)
{
	return cmdq_build_tlbi_nh_va(1, 0, 0x1000ull * (i + 1), false, NULL);
}

static void to_le(const struct cmdq_cmd *c, uint32_t n,
		  struct iofd_abi_smmuv3_inv *out)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		cmdq_cmd_to_le(&c[i], &out[i]);
}

/* ---- fixture: one fake iommufd with a device, S2 parent and vIOMMU ---- */

#define PSID 0x900
#define VSID 0x10

FIXTURE(fake)
{
	int fd;
	uint32_t dev, dev2, ioas, s2, viommu;
};

FIXTURE_SETUP(fake)
{
	self->fd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	ASSERT_GE(self->fd, 0);
	ASSERT_EQ(fake_ninv(self->fd), 0);
	fake_set_gen(self->fd, 'B');
	self->dev = fake_add_dev(self->fd, 0, PSID, 1);
	self->dev2 = fake_add_dev(self->fd, 0, PSID + 1, 1);
	ASSERT_OK(_ioas_alloc(self->fd, 0, &self->ioas));
	ASSERT_OK(_hwpt_alloc(self->fd, IOFD_ABI_HWPT_ALLOC_NEST_PARENT,
			      self->dev, self->ioas, 0, NULL, 0, &self->s2));
	ASSERT_OK(_viommu_alloc(self->fd, 0, IOFD_ABI_VIOMMU_TYPE_ARM_SMMUV3,
				self->dev, self->s2, &self->viommu));
}

FIXTURE_TEARDOWN(fake)
{
	if (self->fd >= 0)
		close(self->fd);
}

TEST_F(fake, dispatch_rules)
{
	struct iofd_abi_destroy d = { .size = 4, .id = self->ioas };
	uint8_t big[24] = { 0 };

	/* unknown numbers and encoded sizes -> ENOTTY */
	ASSERT_ERR(-ENOTTY, do_ioctl(self->fd, _IO(';', 0x7f), &d));
	ASSERT_ERR(-ENOTTY, do_ioctl(self->fd, _IO(';', 0x95), &d));
	ASSERT_ERR(-ENOTTY,
		   do_ioctl(self->fd, _IOW(';', 0x80, uint32_t[2]), &d));
	/* size < min -> EINVAL */
	ASSERT_ERR(-EINVAL, do_ioctl(self->fd, IOFD_ABI_DESTROY, &d));
	/* unreadable argument -> EFAULT */
	ASSERT_ERR(-EFAULT, do_ioctl(self->fd, IOFD_ABI_DESTROY, NULL));
	/* longer struct with a non-zero tail -> E2BIG, zero tail accepted */
	memcpy(big, &(struct iofd_abi_destroy){ 24, 9999 }, 8);
	big[20] = 1;
	ASSERT_ERR(-E2BIG, do_ioctl(self->fd, IOFD_ABI_DESTROY, big));
	big[20] = 0;
	ASSERT_ERR(-ENOENT, do_ioctl(self->fd, IOFD_ABI_DESTROY, big));
}

TEST_F(fake, destroy)
{
	uint32_t vdev;

	destroy_err(ENOENT, self->fd, 9999);
	vdevice_alloc(self->fd, self->viommu, self->dev, VSID, &vdev);
	/* parents with children -> EBUSY; children first */
	destroy_err(EBUSY, self->fd, self->viommu);
	destroy_err(EBUSY, self->fd, self->s2);
	destroy_err(EBUSY, self->fd, self->ioas);
	destroy_err(EBUSY, self->fd, self->dev);
	destroy(self->fd, vdev);
	destroy_err(ENOENT, self->fd, vdev);
	destroy(self->fd, self->viommu);
	destroy(self->fd, self->s2);
	destroy(self->fd, self->ioas);
}

TEST_F(fake, ioas_and_hwpt_alloc)
{
	uint64_t ste[2] = { 1 | (5u << 1), 0 }; /* V, Config = S1 translate */
	uint32_t id, plain;

	ASSERT_ERR(-EOPNOTSUPP, _ioas_alloc(self->fd, 1, &id));
	ASSERT_ERR(-EOPNOTSUPP, _hwpt_alloc(self->fd, 1u << 1, self->dev,
					    self->ioas, 0, NULL, 0, &id));
	ASSERT_ERR(-ENOENT,
		   _hwpt_alloc(self->fd, 0, 9999, self->ioas, 0, NULL, 0, &id));
	ASSERT_ERR(-EINVAL,
		   _hwpt_alloc(self->fd, 0, self->dev, 9999, 0, NULL, 0, &id));
	/* data_type NONE needs data_len 0, any other type a non-zero one */
	ASSERT_ERR(-EINVAL, _hwpt_alloc(self->fd, 0, self->dev, self->ioas, 0,
					ste, 16, &id));
	/* nested on the vIOMMU */
	ASSERT_ERR(-EINVAL,
		   _hwpt_alloc(self->fd, 0, self->dev, self->viommu,
			       IOFD_ABI_HWPT_DATA_ARM_SMMUV3, ste, 0, &id));
	ASSERT_ERR(-EINVAL,
		   _hwpt_alloc(self->fd, 0, self->dev, self->viommu,
			       IOFD_ABI_HWPT_DATA_ARM_SMMUV3, ste, 8, &id));
	ste[0] = 1 | (7u << 1); /* Config 7 is not for guests */
	ASSERT_ERR(-EIO,
		   _hwpt_alloc(self->fd, 0, self->dev, self->viommu,
			       IOFD_ABI_HWPT_DATA_ARM_SMMUV3, ste, 16, &id));
	ste[0] = 1 | (5u << 1);
	ASSERT_OK(_hwpt_alloc(self->fd, 0, self->dev, self->viommu,
			      IOFD_ABI_HWPT_DATA_ARM_SMMUV3, ste, 16, &id));
	destroy_err(EBUSY, self->fd, self->viommu);
	destroy(self->fd, id);
	ASSERT_OK(_hwpt_alloc(self->fd, 0, self->dev, self->ioas, 0, NULL, 0,
			      &plain));
	destroy(self->fd, plain);
}

TEST_F(fake, get_hw_info)
{
	struct iofd_abi_hw_info_smmuv3 data;
	struct iofd_abi_hw_info a;
	uint8_t bigger[sizeof(data) + 8];

	memset(&a, 0, sizeof(a));
	memset(&data, 0xff, sizeof(data));
	a.dev_id = self->dev;
	a.data_len = sizeof(data);
	a.data_uptr = (uintptr_t)&data;
	ASSERT_OK(_hw_info(self->fd, &a));
	EXPECT_EQ(a.in_data_type, IOFD_ABI_HW_INFO_TYPE_ARM_SMMUV3);
	EXPECT_EQ(a.data_len, sizeof(data));
	EXPECT_EQ(data.idr[1] & 0x3f, 32);
	EXPECT_EQ(data.__reserved, 0);
	/* a larger buffer is zero-filled past the kernel's data */
	memset(bigger, 0xff, sizeof(bigger));
	a.data_len = sizeof(bigger);
	a.data_uptr = (uintptr_t)bigger;
	ASSERT_OK(_hw_info(self->fd, &a));
	EXPECT_EQ(bigger[sizeof(bigger) - 1], 0);
	EXPECT_EQ(a.data_len, sizeof(data));
	/* errors */
	a.flags = 1u << 1;
	ASSERT_ERR(-EOPNOTSUPP, _hw_info(self->fd, &a));
	a.flags = IOFD_ABI_HW_INFO_FLAG_INPUT_TYPE;
	a.in_data_type = 1; /* Intel VT-d */
	ASSERT_ERR(-EOPNOTSUPP, _hw_info(self->fd, &a));
	a.flags = 0;
	a.__reserved[1] = 1;
	ASSERT_ERR(-EOPNOTSUPP, _hw_info(self->fd, &a));
	a.__reserved[1] = 0;
	a.dev_id = 9999;
	ASSERT_ERR(-ENOENT, _hw_info(self->fd, &a));
}

TEST_F(fake, viommu_alloc)
{
	const uint32_t T = IOFD_ABI_VIOMMU_TYPE_ARM_SMMUV3;
	uint32_t id, plain, other_dev, other_s2;

	ASSERT_ERR(-EOPNOTSUPP,
		   _viommu_alloc(self->fd, 1, T, self->dev, self->s2, &id));
	ASSERT_ERR(-EOPNOTSUPP,
		   _viommu_alloc(self->fd, 0, IOFD_ABI_VIOMMU_TYPE_DEFAULT,
				 self->dev, self->s2, &id));
	ASSERT_ERR(-ENOENT, _viommu_alloc(self->fd, 0, T, 9999, self->s2, &id));
	/* hwpt_id that is not a paging HWPT (an IOAS) -> ENOENT */
	ASSERT_ERR(-ENOENT,
		   _viommu_alloc(self->fd, 0, T, self->dev, self->ioas, &id));
	ASSERT_OK(_hwpt_alloc(self->fd, 0, self->dev, self->ioas, 0, NULL, 0,
			      &plain));
	ASSERT_ERR(-EINVAL,
		   _viommu_alloc(self->fd, 0, T, self->dev, plain, &id));
	/* S2 parent on another SMMU */
	other_dev = fake_add_dev(self->fd, 1, 0x77, 1);
	ASSERT_OK(_hwpt_alloc(self->fd, IOFD_ABI_HWPT_ALLOC_NEST_PARENT,
			      other_dev, self->ioas, 0, NULL, 0, &other_s2));
	ASSERT_ERR(-EINVAL,
		   _viommu_alloc(self->fd, 0, T, self->dev, other_s2, &id));
	/* a second vIOMMU on the same parent is fine */
	ASSERT_OK(_viommu_alloc(self->fd, 0, T, self->dev2, self->s2, &id));
	destroy(self->fd, id);
}

TEST_F(fake, vdevice_alloc)
{
	uint32_t vdev, other, multi;

	vdevice_alloc(self->fd, self->viommu, self->dev, VSID, &vdev);
	vdevice_alloc_err(ENOENT, self->fd, 9999, self->dev2, VSID + 1);
	vdevice_alloc_err(ENOENT, self->fd, self->viommu, 9999, VSID + 1);
	vdevice_alloc_err(EEXIST, self->fd, self->viommu, self->dev, VSID + 1);
	vdevice_alloc_err(EEXIST, self->fd, self->viommu, self->dev2, VSID);
	other = fake_add_dev(self->fd, 2, 0x55, 1);
	vdevice_alloc_err(EINVAL, self->fd, self->viommu, other, VSID + 1);
	multi = fake_add_dev(self->fd, 0, 0x56, 2);
	vdevice_alloc_err(EOPNOTSUPP, self->fd, self->viommu, multi, VSID + 1);
	destroy(self->fd, vdev);
	/* the device is free again */
	vdevice_alloc(self->fd, self->viommu, self->dev, VSID, &vdev);
}

TEST_F(fake, veventq_alloc)
{
	struct iofd_abi_veventq_alloc a = { .viommu_id = self->viommu,
					    .type = 1,
					    .veventq_depth = 8 };
	struct iofd_abi_veventq_alloc b;

	b = a;
	b.flags = 1;
	ASSERT_ERR(-EOPNOTSUPP, _veventq_alloc(&b, self->fd));
	b = a;
	b.__reserved = 1;
	ASSERT_ERR(-EOPNOTSUPP, _veventq_alloc(&b, self->fd));
	b = a;
	b.type = IOFD_ABI_VEVENTQ_TYPE_DEFAULT;
	ASSERT_ERR(-EOPNOTSUPP, _veventq_alloc(&b, self->fd));
	b = a;
	b.veventq_depth = 0;
	ASSERT_ERR(-EINVAL, _veventq_alloc(&b, self->fd));
	b = a;
	b.viommu_id = 9999;
	ASSERT_ERR(-ENOENT, _veventq_alloc(&b, self->fd));
	ASSERT_OK(_veventq_alloc(&a, self->fd));
	ASSERT_GE((int)a.out_veventq_fd, 0);
	EXPECT_NE(fcntl((int)a.out_veventq_fd, F_GETFD) & FD_CLOEXEC, 0);
	close((int)a.out_veventq_fd);
	b = a;
	ASSERT_ERR(-EEXIST, _veventq_alloc(&b, self->fd));
	destroy_err(EBUSY, self->fd, self->viommu);
	destroy(self->fd, a.out_veventq_id);
}

/* Facts doc section 3.1, row by row. */
TEST_F(fake, invalidate_table)
{
	struct iofd_abi_smmuv3_inv e[2];
	struct iofd_abi_hwpt_invalidate a;
	uint64_t ste[2] = { 1 | (5u << 1), 0 };
	uint8_t wide[2][24] = { { 0 } };
	struct fake_iommu_log_ent log[4];
	uint32_t nested, plain, num, vdev;
	struct cmdq_cmd c[2];

	c[0] = cmdq_build_tlbi_nh_asid(3, 0);
	c[1] = cmdq_build_tlbi_nh_all(0);
	to_le(c, 2, e);
	vdevice_alloc(self->fd, self->viommu, self->dev, VSID, &vdev);

	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.hwpt_id = self->viommu;
	a.data_uptr = (uintptr_t)e;
	a.data_type = IOFD_ABI_INVALIDATE_DATA_ARM_SMMUV3;
	a.entry_len = 16;
	a.entry_num = 2;
	a.__reserved = 1;
	ASSERT_ERR(-EOPNOTSUPP,
		   do_ioctl(self->fd, IOFD_ABI_HWPT_INVALIDATE, &a));
	ASSERT_EQ(a.entry_num, 0);

	invalidate_err(EINVAL, 0, self->fd, self->viommu, NULL, 16, 2);
	invalidate_err(EINVAL, 0, self->fd, self->viommu, e, 0, 2);
	invalidate_err(ENOENT, 0, self->fd, 9999, e, 16, 2);
	invalidate_err(EINVAL, 0, self->fd, self->ioas, e, 16, 2);
	invalidate_err(EINVAL, 0, self->fd, self->s2, e, 16, 2);
	ASSERT_OK(_hwpt_alloc(self->fd, 0, self->dev, self->viommu,
			      IOFD_ABI_HWPT_DATA_ARM_SMMUV3, ste, 16, &nested));
	invalidate_err(EOPNOTSUPP, 0, self->fd, nested, e, 16, 2);
	ASSERT_OK(_hwpt_alloc(self->fd, 0, self->dev, self->ioas, 0, NULL, 0,
			      &plain));
	invalidate_err(EINVAL, 0, self->fd, plain, e, 16, 2);

	a.__reserved = 0;
	a.entry_num = 2;
	a.data_type = IOFD_ABI_INVALIDATE_DATA_VTD_S1;
	ASSERT_ERR(-EINVAL, do_ioctl(self->fd, IOFD_ABI_HWPT_INVALIDATE, &a));
	ASSERT_EQ(a.entry_num, 0);

	/* entry_num == 0: Gen A EINVAL, Gen B success (a type probe) */
	fake_set_gen(self->fd, 'A');
	invalidate_err(EINVAL, 0, self->fd, self->viommu, e, 16, 0);
	fake_set_gen(self->fd, 'B');
	ASSERT_OK(_invalidate(self->fd, self->viommu, e, 16, 0, &num));
	ASSERT_EQ(num, 0);

	/* wider entries: non-zero tail E2BIG, zero tail accepted */
	memcpy(wide[0], &e[0], 16);
	memcpy(wide[1], &e[1], 16);
	wide[1][20] = 1;
	invalidate_err(E2BIG, 0, self->fd, self->viommu, wide, 24, 2);
	wide[1][20] = 0;
	ASSERT_OK(_invalidate(self->fd, self->viommu, wide, 24, 2, &num));
	ASSERT_EQ(num, 2);
	/* shorter entries are zero-extended: 8 bytes of TLBI_NH_ASID */
	ASSERT_OK(_invalidate(self->fd, self->viommu, e, 8, 1, &num));
	ASSERT_EQ(num, 1);
	ASSERT_EQ(fake_log(self->fd, 2, log, 4, NULL), 1);
	EXPECT_EQ(log[0].cmd[0] & 0xff, CMDQ_OP_TLBI_NH_ASID);
	EXPECT_EQ(log[0].cmd[1], 0);

	/* unreadable array */
	invalidate_err(EFAULT, 0, self->fd, self->viommu,
		       (void *)(uintptr_t)(1ull << 46), 16, 2);
	destroy(self->fd, nested);
}

/* Facts 4.1: what is forwarded and how it is rewritten. */
TEST_F(fake, invalidate_rewrites)
{
	struct iofd_abi_smmuv3_inv e[4];
	struct fake_iommu_log_ent log[4];
	struct cmdq_cmd c[4];
	uint32_t vdev, num;

	vdevice_alloc(self->fd, self->viommu, self->dev, VSID, &vdev);
	c[0] = cmdq_build_cfgi_cd(VSID, 0, true);
	c[1] = cmdq_build_atc_inv(VSID, false, 0, false, 0, 2);
	c[2] = cmdq_build_tlbi_nsnh_all();
	c[3] = cmdq_build_tlbi_nh_asid(5, 0x99);
	to_le(c, 4, e);
	ASSERT_OK(_invalidate(self->fd, self->viommu, e, 16, 4, &num));
	ASSERT_EQ(num, 4);
	ASSERT_EQ(fake_log(self->fd, 0, log, 4, NULL), 4);
	EXPECT_EQ(log[0].cmd[0] >> 32, PSID);
	EXPECT_EQ(log[1].cmd[0] >> 32, PSID);
	EXPECT_EQ(log[2].cmd[0] & 0xff, CMDQ_OP_TLBI_NH_ALL);
	EXPECT_NE((log[3].cmd[0] >> 32) & 0xffff, 0x99);
	EXPECT_EQ(log[3].cmd[0] >> 48, 5);
	/* CFGI_STE and CMD_SYNC are never accepted */
	c[0] = cmdq_build_cfgi_ste(VSID, true);
	to_le(c, 1, e);
	invalidate_err(EIO, 0, self->fd, self->viommu, e, 16, 1);
	c[0] = cmdq_build_sync(CMDQ_SYNC_CS_SEV, 0, 0, 0, 0);
	to_le(c, 1, e);
	invalidate_err(EIO, 0, self->fd, self->viommu, e, 16, 1);
}

/*
 * Gen B's masks come from the fake's own table (iommufd/accept.c), not
 * from cmdq_validate(), the code under test: the default fake SMMU has no
 * 16K granule, yet a 16K-granule TLBI is accepted (the kernel does not
 * check granules; only the service refuses it), while a RES0 bit, a
 * SCALE bit 5 without DS and an ATC_INV SIZE of 53 are rejected. Gen A
 * forwards all of them unchecked (facts 4.2).
 */
TEST_F(fake, gen_b_masks_are_the_kernels)
{
	const struct cmdq_caps caps = { .asid_bits = 16,
					.ssid_bits = 20,
					.range_inv = true,
					.ats = true,
					.gran4k = true,
					.gran64k = true };
	struct iofd_abi_smmuv3_inv e[1];
	struct cmdq_cmd c[1];
	uint32_t num, vdev;

	vdevice_alloc(self->fd, self->viommu, self->dev, VSID, &vdev);
	c[0] = cmdq_build_tlbi_nh_va(
		1, 0, 0x10000, true,
		&(struct cmdq_tlbi_range){
			.num = 1, .tg = CMDQ_TG_16K, .ttl = 2 });
	ASSERT_EQ(cmdq_validate(&caps, &c[0], NULL), CMDQ_CERROR_ILL);
	to_le(c, 1, e);
	ASSERT_OK(_invalidate(self->fd, self->viommu, e, 16, 1, &num));
	ASSERT_EQ(num, 1);

	c[0].d[0] |= 1ull << 26; /* RES0 */
	to_le(c, 1, e);
	invalidate_err(EIO, 0, self->fd, self->viommu, e, 16, 1);
	c[0] = cmdq_build_tlbi_nh_vaa(
		0, 0x10000, true,
		&(struct cmdq_tlbi_range){
			.num = 1, .scale = 32, .tg = CMDQ_TG_4K, .ttl = 3 });
	to_le(c, 1, e);
	invalidate_err(EIO, 0, self->fd, self->viommu, e, 16, 1);
	c[0] = cmdq_build_atc_inv(VSID, false, 0, false, 0, 53);
	to_le(c, 1, e);
	invalidate_err(EIO, 0, self->fd, self->viommu, e, 16, 1);
	fake_set_gen(self->fd, 'A');
	ASSERT_OK(_invalidate(self->fd, self->viommu, e, 16, 1, &num));
	ASSERT_EQ(num, 1);
}

/* Facts 4.2/4.3: entry_num after EIO at k for both generations. */
TEST_F(fake, invalidate_partial_raw)
{
	struct iofd_abi_smmuv3_inv e[130];
	struct cmdq_cmd c[130];
	uint32_t i, total;

	for (i = 0; i < 130; i++)
		c[i] = marker(i);
	c[70] = cmdq_build_cfgi_cd_all(0x4444); /* unknown vSID */
	to_le(c, 130, e);
	fake_set_gen(self->fd, 'A');
	invalidate_err(EIO, 70, self->fd, self->viommu, e, 16, 130);
	fake_log(self->fd, 0, NULL, 0, &total);
	ASSERT_EQ(total, 63); /* only 63 * floor(70 / 63) issued */
	fake_set_gen(self->fd, 'B');
	invalidate_err(EIO, 63, self->fd, self->viommu, e, 16, 130);
	fake_log(self->fd, 0, NULL, 0, &total);
	ASSERT_EQ(total, 126);
	/* ETIMEDOUT on the chunk [63, 126): Gen A reports e - 1 = 125 */
	fake_set_gen(self->fd, 'A');
	c[70] = marker(70);
	to_le(c, 130, e);
	fake_set_fault(self->fd, ETIMEDOUT, 71);
	invalidate_err(ETIMEDOUT, 125, self->fd, self->viommu, e, 16, 130);
}

/* The environment variables, read when /dev/iommu is opened. */
TEST(fake_env)
{
	struct iofd_abi_smmuv3_inv e[3];
	struct cmdq_cmd c[3];
	uint32_t dev, ioas, s2, v, num, i;
	int fd;

	setenv("FAKE_IOMMU_GEN", "A", 1);
	setenv("FAKE_IOMMU_FAULT", "EIO:2", 1);
	fd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	unsetenv("FAKE_IOMMU_GEN");
	unsetenv("FAKE_IOMMU_FAULT");
	ASSERT_GE(fd, 0);
	EXPECT_NE(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
	dev = fake_add_dev(fd, 0, PSID, 1);
	ASSERT_OK(_ioas_alloc(fd, 0, &ioas));
	ASSERT_OK(_hwpt_alloc(fd, IOFD_ABI_HWPT_ALLOC_NEST_PARENT, dev, ioas, 0,
			      NULL, 0, &s2));
	ASSERT_OK(_viommu_alloc(fd, 0, IOFD_ABI_VIOMMU_TYPE_ARM_SMMUV3, dev, s2,
				&v));
	/* Gen A: an empty array is EINVAL */
	invalidate_err(EINVAL, 0, fd, v, e, 16, 0);
	for (i = 0; i < 3; i++)
		c[i] = marker(i);
	to_le(c, 3, e);
	/* the second entry converted fails, once */
	invalidate_err(EIO, 1, fd, v, e, 16, 3);
	ASSERT_OK(_invalidate(fd, v, e, 16, 3, &num));
	ASSERT_EQ(num, 3);
	close(fd);
}

/* ---- the kernel backend on the fake ---- */

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	return remove(path);
}

static void rm_tree(const char *root)
{
	if (root[0])
		nftw(root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void make_sysfs(char *root)
{
	char p[256], q[256];

	ASSERT_NONNULL(mkdtemp(root));
	snprintf(p, sizeof(p), "%s/smmu3.0x0000000009050000", root);
	ASSERT_EQ(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/smmu3.0x0000000009050000/device", root);
	ASSERT_EQ(mkdir(p, 0700), 0);
	snprintf(q, sizeof(q), "%s/arm-smmu-v3", root);
	ASSERT_EQ(mkdir(q, 0700), 0);
	snprintf(p, sizeof(p), "%s/smmu3.0x0000000009050000/device/driver",
		 root);
	ASSERT_EQ(symlink(q, p), 0);
}

FIXTURE(kb)
{
	struct t_fixture_fake f;
	char root[64];
	struct iofd_backend *b;
	struct iofd_hsmmu *h;
	struct iofd_viommu *v;
	uint32_t vdev;
};

FIXTURE_SETUP(kb)
{
	struct iofd_config cfg = { .kind = "kernel" };
	struct iofd_viommu_spec spec;

	t_setup_fake(&self->f);
	strcpy(self->root, "/tmp/iofd-ksysfs-XXXXXX");
	make_sysfs(self->root);
	cfg.sysfs_root = self->root;
	ASSERT_OK(iofd_backend_new(&cfg, &self->b));
	ASSERT_ERR(-ENOENT, iofd_hsmmu_open(self->b, "smmu3.nope", &self->h));
	ASSERT_OK(
		iofd_hsmmu_open(self->b, "smmu3.0x0000000009050000", &self->h));
	/* most restrictive until GET_HW_INFO */
	ASSERT_EQ(iofd_hsmmu_caps(self->h)->asid_bits, 8);
	spec = (struct iofd_viommu_spec){ .iommufd = self->f.fd,
					  .viommu_id = self->f.viommu,
					  .dev_id = self->f.dev };
	ASSERT_OK(iofd_viommu_bind(self->h, &spec, &self->v));
	ASSERT_OK(iofd_vdev_alloc(self->v, self->f.dev, VSID, &self->vdev));
}

FIXTURE_TEARDOWN(kb)
{
	tlib_iofd_close(self->b, self->h, self->v, self->vdev);
	t_teardown_fake(&self->f);
	rm_tree(self->root);
}

TEST_F(kb, bind_checks_fd)
{
	struct iofd_viommu_spec spec = { .viommu_id = self->f.viommu };
	struct iofd_viommu *v;
	int p[2], mfd;

	/* caps came from the fake's IDRs */
	EXPECT_EQ(iofd_hsmmu_caps(self->h)->asid_bits, 16);
	EXPECT_TRUE(iofd_hsmmu_caps(self->h)->range_inv);
	EXPECT_EQ(iofd_hsmmu_caps(self->h)->ssid_bits, 20);

	spec.iommufd = -1;
	ASSERT_ERR(-EBADF, iofd_viommu_bind(self->h, &spec, &v));
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	spec.iommufd = p[0];
	ASSERT_ERR(-EBADF, iofd_viommu_bind(self->h, &spec, &v));
	close(p[0]);
	close(p[1]);
	/* a character device that is not the iommu misc device */
	spec.iommufd = open("/dev/null", O_RDWR | O_CLOEXEC);
	ASSERT_GE(spec.iommufd, 0);
	ASSERT_ERR(-EBADF, iofd_viommu_bind(self->h, &spec, &v));
	close(spec.iommufd);
	/* a memfd that is not the fake's */
	mfd = memfd_create("not-iommu", MFD_CLOEXEC);
	ASSERT_GE(mfd, 0);
	ASSERT_EQ(ftruncate(mfd, 1 << 20), 0);
	spec.iommufd = mfd;
	ASSERT_ERR(-EBADF, iofd_viommu_bind(self->h, &spec, &v));
	ASSERT_ERR(-EBADF, iofd_iommufd_check(mfd));
	close(mfd);
	ASSERT_OK(iofd_iommufd_check(self->f.fd));
	/* the right fd, an id that does not exist */
	spec.iommufd = self->f.fd;
	spec.viommu_id = 9999;
	ASSERT_ERR(-ENOENT, iofd_viommu_bind(self->h, &spec, &v));
	/* GET_HW_INFO of an unknown device */
	spec.viommu_id = self->f.viommu;
	spec.dev_id = 9999;
	ASSERT_ERR(-ENOENT, iofd_viommu_bind(self->h, &spec, &v));
}

/*
 * A vIOMMU behind another SMMU than the host SMMU it is bound to: the
 * registers of its device's SMMU differ from the host's (known from the
 * first bind with a dev_id): -EXDEV at bind, and, for a vIOMMU bound
 * without a dev_id, at its first vDEVICE. The refused binder changes
 * nothing of the host's caps.
 */
TEST_F(kb, other_smmu_refused)
{
	/* fake SMMU 1: 8-bit ASIDs, no ATS; else as SMMU 0 */
	static const uint32_t idr[6] = { (1u << 1) | 1u,
					 (20u << 6) | 32u,
					 0,
					 1u << 10,
					 0,
					 (1u << 4) | (1u << 6) | 5u };
	struct iofd_viommu_spec spec = { .iommufd = self->f.fd };
	struct iofd_viommu *v = NULL;
	uint32_t d1, s2b, v1, id;

	fake_set_idr(self->f.fd, 1, idr);
	d1 = fake_add_dev(self->f.fd, 1, PSID + 10, 1);
	ASSERT_OK(_hwpt_alloc(self->f.fd, IOFD_ABI_HWPT_ALLOC_NEST_PARENT, d1,
			      self->f.ioas, 0, NULL, 0, &s2b));
	ASSERT_OK(_viommu_alloc(self->f.fd, 0, IOFD_ABI_VIOMMU_TYPE_ARM_SMMUV3,
				d1, s2b, &v1));
	spec.viommu_id = v1;
	spec.dev_id = d1;
	ASSERT_ERR(-EXDEV, iofd_viommu_bind(self->h, &spec, &v));
	EXPECT_EQ(iofd_hsmmu_caps(self->h)->asid_bits, 16);
	EXPECT_TRUE(iofd_hsmmu_caps(self->h)->ats);

	/* Bound without a dev_id: its first device tells. */
	spec.dev_id = 0;
	ASSERT_OK(iofd_viommu_bind(self->h, &spec, &v));
	ASSERT_ERR(-EXDEV, iofd_vdev_alloc(v, d1, 0x30, &id));
	iofd_viommu_unbind(v);

	/* A device behind the host SMMU is still accepted. */
	ASSERT_OK(iofd_vdev_alloc(self->v, self->f.dev2, 0x31, &id));
	ASSERT_OK(iofd_vdev_destroy(self->v, id));
}

/*
 * The first binder's registers hold only while a vIOMMU is bound: once
 * the last one is gone, the next binder sets them (a binder that named
 * the wrong SMMU does not lock others out after it left).
 */
TEST_F(kb, registers_forgotten_with_last_viommu)
{
	static const uint32_t idr[6] = { (1u << 1) | 1u,
					 (20u << 6) | 32u,
					 0,
					 1u << 10,
					 0,
					 (1u << 4) | (1u << 6) | 5u };
	struct iofd_viommu_spec spec = { .iommufd = self->f.fd };
	struct iofd_viommu *v = NULL;
	uint32_t d1, s2b, v1;

	ASSERT_OK(iofd_vdev_destroy(self->v, self->vdev));
	self->vdev = 0;
	iofd_viommu_unbind(self->v);
	self->v = NULL;
	EXPECT_EQ(iofd_hsmmu_caps(self->h)->asid_bits, 8);

	fake_set_idr(self->f.fd, 1, idr);
	d1 = fake_add_dev(self->f.fd, 1, PSID + 10, 1);
	ASSERT_OK(_hwpt_alloc(self->f.fd, IOFD_ABI_HWPT_ALLOC_NEST_PARENT, d1,
			      self->f.ioas, 0, NULL, 0, &s2b));
	ASSERT_OK(_viommu_alloc(self->f.fd, 0, IOFD_ABI_VIOMMU_TYPE_ARM_SMMUV3,
				d1, s2b, &v1));
	spec.viommu_id = v1;
	spec.dev_id = d1;
	ASSERT_OK(iofd_viommu_bind(self->h, &spec, &v));
	EXPECT_FALSE(iofd_hsmmu_caps(self->h)->ats);
	/* Now the SMMU 0 device is the one behind another SMMU. */
	spec.viommu_id = self->f.viommu;
	spec.dev_id = self->f.dev;
	ASSERT_ERR(-EXDEV, iofd_viommu_bind(self->h, &spec, &self->v));
	self->v = NULL;
	iofd_viommu_unbind(v);
}

TEST_F(kb, vdev)
{
	uint32_t id;

	ASSERT_ERR(-EEXIST, iofd_vdev_alloc(self->v, self->f.dev, 0x20, &id));
	ASSERT_ERR(-EEXIST, iofd_vdev_alloc(self->v, self->f.dev2, VSID, &id));
	ASSERT_ERR(-ENOENT, iofd_vdev_alloc(self->v, 9999, 0x20, &id));
	ASSERT_ERR(-EINVAL,
		   iofd_vdev_alloc(self->v, self->f.dev2, 1ull << 32, &id));
	ASSERT_OK(iofd_vdev_alloc(self->v, self->f.dev2, 0x20, &id));
	ASSERT_OK(iofd_vdev_destroy(self->v, id));
	ASSERT_ERR(-ENOENT, iofd_vdev_destroy(self->v, id));
}

TEST_F(kb, invalidate_happy)
{
	struct fake_iommu_log_ent log[130];
	struct iofd_counters ctr;
	struct cmdq_cmd c[130];
	uint32_t i, done;

	for (i = 0; i < 130; i++)
		c[i] = marker(i);
	c[5] = cmdq_build_cfgi_cd(VSID, 0, true);
	ASSERT_OK(iofd_invalidate(self->v, c, 130, &done));
	ASSERT_EQ(done, 130);
	ASSERT_EQ(fake_log(self->f.fd, 0, log, 130, NULL), 130);
	for (i = 0; i < 130; i++) {
		EXPECT_EQ(log[i].viommu_id, self->f.viommu);
		if (i != 5)
			EXPECT_EQ(log[i].cmd[1], c[i].d[1]);
	}
	EXPECT_EQ(log[5].cmd[0] >> 32, PSID);
	iofd_viommu_counters(self->v, &ctr);
	EXPECT_EQ(ctr.ioctls, 1);
	EXPECT_EQ(ctr.cmds, 130);
	EXPECT_EQ(ctr.host_syncs, 3);
	EXPECT_EQ(ctr.errors, 0);
	/* the bind probe was the only other invalidate call */
	EXPECT_EQ(fake_ninv(self->f.fd), 1);
}

/*
 * The kernel backend as the service drives it: one call per ioctl, the
 * failure localised by core's one layer (core_batch_localise()). Returns
 * its rc; *@ret_done: the commands known complete.
 */
static int localised(struct iofd_viommu *v, const struct cmdq_cmd *c,
		     uint32_t n, uint32_t *ret_done)
{
	struct core_batch_outcome o;
	int r = core_batch_localise(core_batch_call_iofd, v, c, n, &o);

	*ret_done = o.done;
	return r;
}

/*
 * Partial failure, both kernel generations, the illegal command at many
 * positions around the 63-chunk boundaries: ret_done is exact, and the
 * host log holds exactly commands [0, bad), in order, each once.
 */
static void check_partial(struct t_fixture_kb *self, char gen, uint32_t n,
			  uint32_t bad)
{
	struct fake_iommu_log_ent log[200];
	struct cmdq_cmd c[200];
	uint32_t i, done, total, from, got;

	fake_set_gen(self->f.fd, gen);
	fake_log(self->f.fd, 0, NULL, 0, &from);
	for (i = 0; i < n; i++)
		c[i] = marker(i);
	c[bad] = cmdq_build_cfgi_cd_all(0x4444); /* unknown vSID */
	done = 12345;
	ASSERT_ERR(-EIO, localised(self->v, c, n, &done));
	if (done != bad)
		FAIL("gen %c n %u bad %u: done %u", gen, n, bad, done);
	got = fake_log(self->f.fd, from, log, 200, &total);
	if (got != bad || total - from != bad)
		FAIL("gen %c n %u bad %u: %u issued", gen, n, bad, got);
	for (i = 0; i < bad; i++)
		if (log[i].cmd[1] != c[i].d[1])
			FAIL("gen %c bad %u: log[%u] wrong", gen, bad, i);
}

TEST_F(kb, partial_failure_gen_a)
{
	static const uint32_t bads[] = { 0,  1,	 5,   61,  62,	63,
					 64, 70, 125, 126, 127, 129 };
	size_t i;

	for (i = 0; i < sizeof(bads) / sizeof(bads[0]); i++)
		check_partial(self, 'A', 130, bads[i]);
	check_partial(self, 'A', 1, 0);
	check_partial(self, 'A', 63, 62);
}

TEST_F(kb, partial_failure_gen_b)
{
	static const uint32_t bads[] = { 0,  1,	 5,   61,  62,	63,
					 64, 70, 125, 126, 127, 129 };
	size_t i;

	for (i = 0; i < sizeof(bads) / sizeof(bads[0]); i++)
		check_partial(self, 'B', 130, bads[i]);
	check_partial(self, 'B', 1, 0);
	check_partial(self, 'B', 63, 62);
}

/* An injected EIO (illegal command the service could not predict). */
TEST_F(kb, injected_eio)
{
	struct fake_iommu_log_ent log[100];
	struct cmdq_cmd c[100];
	uint32_t i, done, from, got;

	for (i = 0; i < 100; i++)
		c[i] = marker(i);
	fake_set_gen(self->f.fd, 'A');
	fake_log(self->f.fd, 0, NULL, 0, &from);
	fake_set_fault(self->f.fd, EIO, 80); /* entry 79 of the first call */
	ASSERT_ERR(-EIO, localised(self->v, c, 100, &done));
	/* the fault fired once; the re-issue of [63, 79) went through, so
	 * the localisation reports 79 exactly */
	ASSERT_EQ(done, 79);
	got = fake_log(self->f.fd, from, log, 100, NULL);
	ASSERT_EQ(got, 79);
	for (i = 0; i < 79; i++)
		ASSERT_EQ(log[i].cmd[1], c[i].d[1]);
}

TEST_F(kb, timeout_not_retried)
{
	struct cmdq_cmd c[130];
	struct iofd_counters ctr;
	uint32_t i, done, total, from;
	char gen;

	for (i = 0; i < 130; i++)
		c[i] = marker(i);
	for (gen = 'A'; gen <= 'B'; gen++) {
		fake_set_gen(self->f.fd, gen);
		fake_log(self->f.fd, 0, NULL, 0, &from);
		fake_set_fault(self->f.fd, ETIMEDOUT, 71);
		ASSERT_ERR(-ETIMEDOUT, localised(self->v, c, 130, &done));
		ASSERT_EQ(done, 63);
		/* both chunks were issued once, the third never */
		fake_log(self->f.fd, 0, NULL, 0, &total);
		ASSERT_EQ(total - from, 126);
	}
	iofd_viommu_counters(self->v, &ctr);
	EXPECT_EQ(ctr.ioctls, 2);
	EXPECT_EQ(ctr.errors, 2);
}

TEST_F(kb, other_errno_surfaced)
{
	struct cmdq_cmd c = marker(0);
	struct iofd_error e;
	uint32_t done = 99;

	/* the VMM destroyed the vIOMMU behind our back */
	ASSERT_OK(iofd_vdev_destroy(self->v, self->vdev));
	self->vdev = 0;
	destroy(self->f.fd, self->f.viommu);
	ASSERT_ERR(-ENOENT, iofd_invalidate(self->v, &c, 1, &done));
	ASSERT_EQ(done, 0);
	iofd_viommu_last_error(self->v, &e);
	EXPECT_EQ(e.err, -ENOENT);
	ASSERT_STREQ(e.op, "IOMMU_HWPT_INVALIDATE");
	EXPECT_EQ(e.first, 0);
	EXPECT_EQ(e.count, 1);
	EXPECT_EQ(e.ioctls, 1);
}

/*
 * Issuers of different vIOMMUs run concurrently (iofd.h thread context):
 * two threads, one vIOMMU each, on one host SMMU and one fake iommufd.
 */
TEST_F(kb, concurrent_viommus)
{
	static struct fake_iommu_log_ent log[FAKE_IOMMU_LOG];
	struct iofd_viommu_spec spec = { .iommufd = self->f.fd };
	static struct cmdq_cmd c[2][100];
	struct tlib_issuer a[2] = { { self->v, c[0], 100, 20 },
				    { NULL, c[1], 100, 20 } };
	uint32_t v2, n[2] = { 0 }, from, got, i;
	struct iofd_counters hc;

	ASSERT_OK(_viommu_alloc(self->f.fd, 0, IOFD_ABI_VIOMMU_TYPE_ARM_SMMUV3,
				self->f.dev2, self->f.s2, &v2));
	spec.viommu_id = v2;
	ASSERT_OK(iofd_viommu_bind(self->h, &spec, &a[1].v));
	for (i = 0; i < 100; i++) {
		c[0][i] = marker(i);
		c[1][i] = marker(5000 + i);
	}
	fake_log(self->f.fd, 0, NULL, 0, &from);
	tlib_threads(tlib_issue, a, sizeof(a[0]), 2);
	got = fake_log(self->f.fd, from, log, FAKE_IOMMU_LOG, NULL);
	ASSERT_EQ(got, 4000);
	for (i = 0; i < got; i++)
		n[log[i].viommu_id == v2]++;
	EXPECT_EQ(n[0], 2000);
	EXPECT_EQ(n[1], 2000);
	iofd_hsmmu_counters(self->h, &hc);
	EXPECT_EQ(hc.cmds, 4000);
	EXPECT_EQ(hc.host_syncs, 40 * 2);
	iofd_viommu_unbind(a[1].v);
}

/*
 * DESIGN.md 6: the VMM opens /dev/iommu and passes the fd to the daemon.
 * A child process, given the fd by SCM_RIGHTS, binds the kernel backend
 * and invalidates; the parent sees the commands in the shared state.
 */
static int send_fd(int sock, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char byte = 'f';
	struct iovec iov = { &byte, 1 };
	struct msghdr m = { .msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &m, 0) == 1 ? 0 : -errno;
}

static int recv_fd(int sock)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	char byte;
	struct iovec iov = { &byte, 1 };
	struct msghdr m = { .msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	int fd;

	if (recvmsg(sock, &m, MSG_CMSG_CLOEXEC) != 1)
		return -1;
	cm = CMSG_FIRSTHDR(&m);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/* The daemon side: 0 on success, else the failing step (1..4). */
static int daemon_child(int sock, const char *root, uint32_t viommu,
			uint32_t dev)
{
	struct iofd_config cfg = { .kind = "kernel", .sysfs_root = root };
	struct iofd_viommu_spec spec = { .viommu_id = viommu, .dev_id = dev };
	struct iofd_backend *b;
	struct iofd_hsmmu *h;
	struct iofd_viommu *v;
	struct cmdq_cmd c[10];
	uint32_t i, done;

	spec.iommufd = recv_fd(sock);
	if (spec.iommufd < 0)
		return 1;
	if (iofd_backend_new(&cfg, &b) ||
	    iofd_hsmmu_open(b, "smmu3.0x0000000009050000", &h) ||
	    iofd_viommu_bind(h, &spec, &v))
		return 2;
	close(spec.iommufd); /* the backend holds its own dup */
	for (i = 0; i < 10; i++)
		c[i] = marker(1000 + i);
	if (iofd_invalidate(v, c, 10, &done) || done != 10)
		return 3;
	iofd_viommu_unbind(v);
	iofd_hsmmu_close(h);
	iofd_backend_free(b);
	return 0;
}

TEST_F(kb, fd_passed_to_another_process)
{
	struct fake_iommu_log_ent log[10];
	uint32_t from, i;
	int sv[2], status;
	pid_t pid;

	fake_log(self->f.fd, 0, NULL, 0, &from);
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		close(sv[0]);
		_exit(daemon_child(sv[1], self->root, self->f.viommu,
				   self->f.dev));
	}
	close(sv[1]);
	ASSERT_OK(send_fd(sv[0], self->f.fd));
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	close(sv[0]);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);
	ASSERT_EQ(fake_log(self->f.fd, from, log, 10, NULL), 10);
	for (i = 0; i < 10; i++)
		EXPECT_EQ(log[i].cmd[1], marker(1000 + i).d[1]);
}

TEST_HARNESS_MAIN
