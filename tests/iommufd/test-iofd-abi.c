/* SPDX-License-Identifier: MIT */
/*
 * Our iommufd ABI definitions (iommufd/iommufd_abi.h) against the system
 * header, for whatever the system header has (Debian bookworm's 6.1
 * linux-libc-dev has only the IOAS-era ioctls). The sizes and offsets
 * themselves are fixed by _Static_assert in iommufd_abi.h.
 */
#include <stddef.h>

#include "iommufd/iommufd_abi.h"
#include "tests/harness.h"

#if defined(__has_include)
#if __has_include(<linux/iommufd.h>)
#include <linux/iommufd.h>
#define HAVE_SYS_IOMMUFD 1
#endif
#endif

#define SAME_FIELD(ours, theirs, of, tf)                     \
	do {                                                 \
		ASSERT_EQ(offsetof(struct ours, of),         \
			  offsetof(struct theirs, tf));      \
		ASSERT_EQ(sizeof(((struct ours *)0)->of),    \
			  sizeof(((struct theirs *)0)->tf)); \
	} while (0)

TEST(abi_against_system_header)
{
	unsigned int compared = 0;

#ifdef HAVE_SYS_IOMMUFD
#ifdef IOMMU_DESTROY
	ASSERT_EQ(IOMMU_DESTROY, IOFD_ABI_DESTROY);
	ASSERT_EQ(sizeof(struct iommu_destroy),
		  sizeof(struct iofd_abi_destroy));
	SAME_FIELD(iofd_abi_destroy, iommu_destroy, id, id);
	compared++;
#endif
#ifdef IOMMU_IOAS_ALLOC
	ASSERT_EQ(IOMMU_IOAS_ALLOC, IOFD_ABI_IOAS_ALLOC);
	ASSERT_EQ(sizeof(struct iommu_ioas_alloc),
		  sizeof(struct iofd_abi_ioas_alloc));
	SAME_FIELD(iofd_abi_ioas_alloc, iommu_ioas_alloc, flags, flags);
	SAME_FIELD(iofd_abi_ioas_alloc, iommu_ioas_alloc, out_ioas_id,
		   out_ioas_id);
	compared++;
#endif
#ifdef IOMMU_HWPT_ALLOC
	ASSERT_EQ(IOMMU_HWPT_ALLOC, IOFD_ABI_HWPT_ALLOC);
	SAME_FIELD(iofd_abi_hwpt_alloc, iommu_hwpt_alloc, pt_id, pt_id);
	SAME_FIELD(iofd_abi_hwpt_alloc, iommu_hwpt_alloc, out_hwpt_id,
		   out_hwpt_id);
	compared++;
#endif
#ifdef IOMMU_GET_HW_INFO
	ASSERT_EQ(IOMMU_GET_HW_INFO, IOFD_ABI_GET_HW_INFO);
	SAME_FIELD(iofd_abi_hw_info, iommu_hw_info, dev_id, dev_id);
	SAME_FIELD(iofd_abi_hw_info, iommu_hw_info, data_len, data_len);
	SAME_FIELD(iofd_abi_hw_info, iommu_hw_info, data_uptr, data_uptr);
	SAME_FIELD(iofd_abi_hw_info, iommu_hw_info, out_capabilities,
		   out_capabilities);
	compared++;
#endif
#ifdef IOMMU_HWPT_INVALIDATE
	ASSERT_EQ(IOMMU_HWPT_INVALIDATE, IOFD_ABI_HWPT_INVALIDATE);
	ASSERT_EQ(sizeof(struct iommu_hwpt_invalidate),
		  sizeof(struct iofd_abi_hwpt_invalidate));
	SAME_FIELD(iofd_abi_hwpt_invalidate, iommu_hwpt_invalidate, hwpt_id,
		   hwpt_id);
	SAME_FIELD(iofd_abi_hwpt_invalidate, iommu_hwpt_invalidate, data_uptr,
		   data_uptr);
	SAME_FIELD(iofd_abi_hwpt_invalidate, iommu_hwpt_invalidate, entry_num,
		   entry_num);
	compared++;
#endif
#ifdef IOMMU_VIOMMU_ALLOC
	ASSERT_EQ(IOMMU_VIOMMU_ALLOC, IOFD_ABI_VIOMMU_ALLOC);
	ASSERT_EQ(sizeof(struct iommu_viommu_alloc),
		  sizeof(struct iofd_abi_viommu_alloc));
	SAME_FIELD(iofd_abi_viommu_alloc, iommu_viommu_alloc, out_viommu_id,
		   out_viommu_id);
	compared++;
#endif
#ifdef IOMMU_VDEVICE_ALLOC
	ASSERT_EQ(IOMMU_VDEVICE_ALLOC, IOFD_ABI_VDEVICE_ALLOC);
	ASSERT_EQ(sizeof(struct iommu_vdevice_alloc),
		  sizeof(struct iofd_abi_vdevice_alloc));
	SAME_FIELD(iofd_abi_vdevice_alloc, iommu_vdevice_alloc, virt_id,
		   virt_id);
	compared++;
#endif
#ifdef IOMMU_VEVENTQ_ALLOC
	ASSERT_EQ(IOMMU_VEVENTQ_ALLOC, IOFD_ABI_VEVENTQ_ALLOC);
	ASSERT_EQ(sizeof(struct iommu_veventq_alloc),
		  sizeof(struct iofd_abi_veventq_alloc));
	SAME_FIELD(iofd_abi_veventq_alloc, iommu_veventq_alloc, out_veventq_fd,
		   out_veventq_fd);
	compared++;
#endif
#endif
	if (!compared)
		SKIP("the system has no <linux/iommufd.h> to compare with");
	printf("# compared %u ioctl definitions with the system header\n",
	       compared);
	/* Every iommufd.h since 6.0 has DESTROY and IOAS_ALLOC. */
	ASSERT_GE(compared, 2);
}

/* The numbering rule itself: _IO(';', nr), nothing else encoded. */
TEST(abi_numbers)
{
	ASSERT_EQ(IOFD_ABI_DESTROY, 0x3B80);
	ASSERT_EQ(IOFD_ABI_IOAS_ALLOC, 0x3B81);
	ASSERT_EQ(IOFD_ABI_HWPT_ALLOC, 0x3B89);
	ASSERT_EQ(IOFD_ABI_GET_HW_INFO, 0x3B8A);
	ASSERT_EQ(IOFD_ABI_HWPT_INVALIDATE, 0x3B8D);
	ASSERT_EQ(IOFD_ABI_VIOMMU_ALLOC, 0x3B90);
	ASSERT_EQ(IOFD_ABI_VDEVICE_ALLOC, 0x3B91);
	ASSERT_EQ(IOFD_ABI_VEVENTQ_ALLOC, 0x3B93);
	ASSERT_EQ(IOFD_ABI_TEST_CMD, 0x3BA0);
}

TEST_HARNESS_MAIN
