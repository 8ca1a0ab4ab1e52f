/* SPDX-License-Identifier: MIT */
/*
 * The iommufd uAPI subset smmu-offload uses, defined here so the build
 * does not depend on the installed linux/iommufd.h (Debian bookworm ships
 * 6.1, which has none of the vIOMMU ioctls). Names carry our own prefix
 * (iofd_abi_ / IOFD_ABI_) so they never clash with the system header;
 * tests/iommufd/test-abi.c compares every definition the system header
 * does have with ours.
 *
 * Layouts, sizes and errno rules: ../shared/docs/iommufd-smmuv3-facts.md
 * sections 1-3. Every size and offset is fixed by _Static_assert below.
 * All structs are the kernel ABI: host byte order, except the SMMUv3
 * command and event words, which are little-endian.
 */
#ifndef SMMU_OFFLOAD_IOMMUFD_ABI_H
#define SMMU_OFFLOAD_IOMMUFD_ABI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>

#define IOFD_ABI_TYPE ';' /* 0x3B */
#define IOFD_ABI_CMD_BASE 0x80

enum {
	IOFD_ABI_CMD_DESTROY = IOFD_ABI_CMD_BASE,
	IOFD_ABI_CMD_IOAS_ALLOC = 0x81,
	IOFD_ABI_CMD_HWPT_ALLOC = 0x89,
	IOFD_ABI_CMD_GET_HW_INFO = 0x8a,
	IOFD_ABI_CMD_HWPT_INVALIDATE = 0x8d,
	IOFD_ABI_CMD_VIOMMU_ALLOC = 0x90,
	IOFD_ABI_CMD_VDEVICE_ALLOC = 0x91,
	IOFD_ABI_CMD_VEVENTQ_ALLOC = 0x93,
	IOFD_ABI_CMD_HW_QUEUE_ALLOC = 0x94,
	/* CONFIG_IOMMUFD_TEST only; our fake /dev/iommu uses the number. */
	IOFD_ABI_CMD_TEST = IOFD_ABI_CMD_BASE + 32,
};

/* Every iommufd ioctl is _IO(';', nr): no size or direction encoded. */
#define IOFD_ABI_DESTROY _IO(IOFD_ABI_TYPE, IOFD_ABI_CMD_DESTROY)
#define IOFD_ABI_IOAS_ALLOC _IO(IOFD_ABI_TYPE, IOFD_ABI_CMD_IOAS_ALLOC)
#define IOFD_ABI_HWPT_ALLOC _IO(IOFD_ABI_TYPE, IOFD_ABI_CMD_HWPT_ALLOC)
#define IOFD_ABI_GET_HW_INFO _IO(IOFD_ABI_TYPE, IOFD_ABI_CMD_GET_HW_INFO)
#define IOFD_ABI_HWPT_INVALIDATE \
	_IO(IOFD_ABI_TYPE, IOFD_ABI_CMD_HWPT_INVALIDATE)
#define IOFD_ABI_VIOMMU_ALLOC _IO(IOFD_ABI_TYPE, IOFD_ABI_CMD_VIOMMU_ALLOC)
#define IOFD_ABI_VDEVICE_ALLOC _IO(IOFD_ABI_TYPE, IOFD_ABI_CMD_VDEVICE_ALLOC)
#define IOFD_ABI_VEVENTQ_ALLOC _IO(IOFD_ABI_TYPE, IOFD_ABI_CMD_VEVENTQ_ALLOC)
#define IOFD_ABI_TEST_CMD _IO(IOFD_ABI_TYPE, IOFD_ABI_CMD_TEST)

/**
 * struct iofd_abi_destroy - IOMMU_DESTROY.
 * @size: sizeof(struct iofd_abi_destroy).
 * @id:   any destroyable object id.
 */
struct iofd_abi_destroy {
	uint32_t size;
	uint32_t id;
};

/**
 * struct iofd_abi_ioas_alloc - IOMMU_IOAS_ALLOC.
 * @size:        sizeof(struct iofd_abi_ioas_alloc).
 * @flags:       must be 0.
 * @out_ioas_id: the new IOAS.
 */
struct iofd_abi_ioas_alloc {
	uint32_t size;
	uint32_t flags;
	uint32_t out_ioas_id;
};

/**
 * struct iofd_abi_hwpt_alloc - IOMMU_HWPT_ALLOC.
 * @size: sizeof; @flags: IOFD_ABI_HWPT_ALLOC_*; @dev_id: device;
 * @pt_id: IOAS, parent HWPT or vIOMMU; @out_hwpt_id: result;
 * @__reserved: 0; @data_type: IOFD_ABI_HWPT_DATA_*; @data_len, @data_uptr:
 * driver data; @fault_id: with FAULT_ID_VALID; @__reserved2: 0.
 */
struct iofd_abi_hwpt_alloc {
	uint32_t size;
	uint32_t flags;
	uint32_t dev_id;
	uint32_t pt_id;
	uint32_t out_hwpt_id;
	uint32_t __reserved;
	uint32_t data_type;
	uint32_t data_len;
	uint64_t data_uptr;
	uint32_t fault_id;
	uint32_t __reserved2;
};

#define IOFD_ABI_HWPT_ALLOC_NEST_PARENT (1u << 0)
#define IOFD_ABI_HWPT_DATA_NONE 0u
#define IOFD_ABI_HWPT_DATA_ARM_SMMUV3 2u

/**
 * struct iofd_abi_hw_info - IOMMU_GET_HW_INFO.
 * @size:      sizeof.
 * @flags:     bit0 INPUT_TYPE (newer kernels); other bits EOPNOTSUPP.
 * @dev_id:    the device.
 * @data_len:  in: buffer length; out: the kernel's data length.
 * @data_uptr: buffer for the driver data (struct iofd_abi_hw_info_smmuv3).
 * @in_data_type: with INPUT_TYPE, the requested type; out: the type.
 * @out_max_pasid_log2: 0 = no PASID.
 * @__reserved: must be 0.
 * @out_capabilities: IOFD_ABI_HW_CAP_*.
 */
struct iofd_abi_hw_info {
	uint32_t size;
	uint32_t flags;
	uint32_t dev_id;
	uint32_t data_len;
	uint64_t data_uptr;
	uint32_t in_data_type; /* union with out_data_type */
	uint8_t out_max_pasid_log2;
	uint8_t __reserved[3];
	uint64_t out_capabilities;
};

#define IOFD_ABI_HW_INFO_FLAG_INPUT_TYPE (1u << 0)
#define IOFD_ABI_HW_INFO_TYPE_DEFAULT 0u
#define IOFD_ABI_HW_INFO_TYPE_ARM_SMMUV3 2u

/**
 * struct iofd_abi_hw_info_smmuv3 - GET_HW_INFO data of an SMMUv3.
 * @flags:      driver flags.
 * @__reserved: 0.
 * @idr:        raw SMMU_IDR0..IDR5.
 * @iidr:       SMMU_IIDR.
 * @aidr:       SMMU_AIDR.
 */
struct iofd_abi_hw_info_smmuv3 {
	uint32_t flags;
	uint32_t __reserved;
	uint32_t idr[6];
	uint32_t iidr;
	uint32_t aidr;
};

/**
 * struct iofd_abi_hwpt_invalidate - IOMMU_HWPT_INVALIDATE.
 * @size:       sizeof.
 * @hwpt_id:    for SMMUv3: the vIOMMU id.
 * @data_uptr:  the entry array.
 * @data_type:  IOFD_ABI_INVALIDATE_DATA_ARM_SMMUV3 (1).
 * @entry_len:  bytes per entry (16).
 * @entry_num:  in: entries; out: entries handled (always written back).
 * @__reserved: must be 0.
 */
struct iofd_abi_hwpt_invalidate {
	uint32_t size;
	uint32_t hwpt_id;
	uint64_t data_uptr;
	uint32_t data_type;
	uint32_t entry_len;
	uint32_t entry_num;
	uint32_t __reserved;
};

#define IOFD_ABI_INVALIDATE_DATA_VTD_S1 0u
#define IOFD_ABI_INVALIDATE_DATA_ARM_SMMUV3 1u

/**
 * struct iofd_abi_smmuv3_inv - one SMMUv3 invalidation entry.
 * @cmd: the raw 128-bit command queue entry, little-endian words.
 */
struct iofd_abi_smmuv3_inv {
	uint64_t cmd[2];
};

/**
 * struct iofd_abi_viommu_alloc - IOMMU_VIOMMU_ALLOC.
 * @size: sizeof; @flags: 0; @type: IOFD_ABI_VIOMMU_TYPE_*; @dev_id: a
 * device on the target IOMMU; @hwpt_id: the nest-parent HWPT;
 * @out_viommu_id: result; @data_len, @data_uptr: driver data;
 * @__reserved: 0.
 */
struct iofd_abi_viommu_alloc {
	uint32_t size;
	uint32_t flags;
	uint32_t type;
	uint32_t dev_id;
	uint32_t hwpt_id;
	uint32_t out_viommu_id;
	uint32_t data_len;
	uint32_t __reserved;
	uint64_t data_uptr;
};

#define IOFD_ABI_VIOMMU_TYPE_DEFAULT 0u
#define IOFD_ABI_VIOMMU_TYPE_ARM_SMMUV3 1u

/**
 * struct iofd_abi_vdevice_alloc - IOMMU_VDEVICE_ALLOC.
 * @size: sizeof; @viommu_id: the vIOMMU; @dev_id: the device;
 * @out_vdevice_id: result; @virt_id: the guest StreamID.
 */
struct iofd_abi_vdevice_alloc {
	uint32_t size;
	uint32_t viommu_id;
	uint32_t dev_id;
	uint32_t out_vdevice_id;
	uint64_t virt_id;
};

/**
 * struct iofd_abi_veventq_alloc - IOMMU_VEVENTQ_ALLOC.
 * @size: sizeof; @flags: 0; @viommu_id: the vIOMMU; @type:
 * IOFD_ABI_VEVENTQ_TYPE_*; @veventq_depth: > 0; @out_veventq_id,
 * @out_veventq_fd: results; @__reserved: 0.
 */
struct iofd_abi_veventq_alloc {
	uint32_t size;
	uint32_t flags;
	uint32_t viommu_id;
	uint32_t type;
	uint32_t veventq_depth;
	uint32_t out_veventq_id;
	uint32_t out_veventq_fd;
	uint32_t __reserved;
};

#define IOFD_ABI_VEVENTQ_TYPE_DEFAULT 0u
#define IOFD_ABI_VEVENTQ_TYPE_ARM_SMMUV3 1u

/**
 * struct iofd_abi_vevent_header - precedes every record read from a vEVENTQ.
 * @flags:    IOFD_ABI_VEVENTQ_FLAG_LOST_EVENTS: events were lost before
 *            this point (such a header has no payload).
 * @sequence: 0..INT_MAX, then wraps to 0; a gap means lost events.
 */
struct iofd_abi_vevent_header {
	uint32_t flags;
	uint32_t sequence;
};

#define IOFD_ABI_VEVENTQ_FLAG_LOST_EVENTS (1u << 0)

/**
 * struct iofd_abi_vevent_smmuv3 - SMMUv3 vEVENTQ payload.
 * @evt: the raw event record, little-endian words, StreamID (evt[0]
 *       bits 63:32) replaced by the vSID.
 */
struct iofd_abi_vevent_smmuv3 {
	uint64_t evt[4];
};

/* Sizes and offsets: facts doc sections 1 and 2. */
#define IOFD_ABI_CHECK_(s, f, off) \
	_Static_assert(offsetof(struct s, f) == (off), #s "." #f)
_Static_assert(sizeof(struct iofd_abi_destroy) == 8, "destroy size");
IOFD_ABI_CHECK_(iofd_abi_destroy, id, 4);
_Static_assert(sizeof(struct iofd_abi_ioas_alloc) == 12, "ioas_alloc size");
IOFD_ABI_CHECK_(iofd_abi_ioas_alloc, flags, 4);
IOFD_ABI_CHECK_(iofd_abi_ioas_alloc, out_ioas_id, 8);
_Static_assert(sizeof(struct iofd_abi_hwpt_alloc) == 48, "hwpt_alloc size");
IOFD_ABI_CHECK_(iofd_abi_hwpt_alloc, flags, 4);
IOFD_ABI_CHECK_(iofd_abi_hwpt_alloc, dev_id, 8);
IOFD_ABI_CHECK_(iofd_abi_hwpt_alloc, pt_id, 12);
IOFD_ABI_CHECK_(iofd_abi_hwpt_alloc, out_hwpt_id, 16);
IOFD_ABI_CHECK_(iofd_abi_hwpt_alloc, __reserved, 20);
IOFD_ABI_CHECK_(iofd_abi_hwpt_alloc, data_type, 24);
IOFD_ABI_CHECK_(iofd_abi_hwpt_alloc, data_len, 28);
IOFD_ABI_CHECK_(iofd_abi_hwpt_alloc, data_uptr, 32);
IOFD_ABI_CHECK_(iofd_abi_hwpt_alloc, fault_id, 40);
IOFD_ABI_CHECK_(iofd_abi_hwpt_alloc, __reserved2, 44);
_Static_assert(sizeof(struct iofd_abi_hw_info) == 40, "hw_info size");
IOFD_ABI_CHECK_(iofd_abi_hw_info, flags, 4);
IOFD_ABI_CHECK_(iofd_abi_hw_info, dev_id, 8);
IOFD_ABI_CHECK_(iofd_abi_hw_info, data_len, 12);
IOFD_ABI_CHECK_(iofd_abi_hw_info, data_uptr, 16);
IOFD_ABI_CHECK_(iofd_abi_hw_info, in_data_type, 24);
IOFD_ABI_CHECK_(iofd_abi_hw_info, out_max_pasid_log2, 28);
IOFD_ABI_CHECK_(iofd_abi_hw_info, __reserved, 29);
IOFD_ABI_CHECK_(iofd_abi_hw_info, out_capabilities, 32);
_Static_assert(sizeof(struct iofd_abi_hw_info_smmuv3) == 40, "smmuv3 info");
IOFD_ABI_CHECK_(iofd_abi_hw_info_smmuv3, __reserved, 4);
IOFD_ABI_CHECK_(iofd_abi_hw_info_smmuv3, idr, 8);
IOFD_ABI_CHECK_(iofd_abi_hw_info_smmuv3, iidr, 32);
IOFD_ABI_CHECK_(iofd_abi_hw_info_smmuv3, aidr, 36);
_Static_assert(sizeof(struct iofd_abi_hwpt_invalidate) == 32, "invalidate");
IOFD_ABI_CHECK_(iofd_abi_hwpt_invalidate, hwpt_id, 4);
IOFD_ABI_CHECK_(iofd_abi_hwpt_invalidate, data_uptr, 8);
IOFD_ABI_CHECK_(iofd_abi_hwpt_invalidate, data_type, 16);
IOFD_ABI_CHECK_(iofd_abi_hwpt_invalidate, entry_len, 20);
IOFD_ABI_CHECK_(iofd_abi_hwpt_invalidate, entry_num, 24);
IOFD_ABI_CHECK_(iofd_abi_hwpt_invalidate, __reserved, 28);
_Static_assert(sizeof(struct iofd_abi_smmuv3_inv) == 16, "smmuv3 entry");
_Static_assert(sizeof(struct iofd_abi_viommu_alloc) == 40, "viommu_alloc");
IOFD_ABI_CHECK_(iofd_abi_viommu_alloc, flags, 4);
IOFD_ABI_CHECK_(iofd_abi_viommu_alloc, type, 8);
IOFD_ABI_CHECK_(iofd_abi_viommu_alloc, dev_id, 12);
IOFD_ABI_CHECK_(iofd_abi_viommu_alloc, hwpt_id, 16);
IOFD_ABI_CHECK_(iofd_abi_viommu_alloc, out_viommu_id, 20);
IOFD_ABI_CHECK_(iofd_abi_viommu_alloc, data_len, 24);
IOFD_ABI_CHECK_(iofd_abi_viommu_alloc, __reserved, 28);
IOFD_ABI_CHECK_(iofd_abi_viommu_alloc, data_uptr, 32);
_Static_assert(sizeof(struct iofd_abi_vdevice_alloc) == 24, "vdevice_alloc");
IOFD_ABI_CHECK_(iofd_abi_vdevice_alloc, viommu_id, 4);
IOFD_ABI_CHECK_(iofd_abi_vdevice_alloc, dev_id, 8);
IOFD_ABI_CHECK_(iofd_abi_vdevice_alloc, out_vdevice_id, 12);
IOFD_ABI_CHECK_(iofd_abi_vdevice_alloc, virt_id, 16);
_Static_assert(sizeof(struct iofd_abi_veventq_alloc) == 32, "veventq_alloc");
IOFD_ABI_CHECK_(iofd_abi_veventq_alloc, flags, 4);
IOFD_ABI_CHECK_(iofd_abi_veventq_alloc, viommu_id, 8);
IOFD_ABI_CHECK_(iofd_abi_veventq_alloc, type, 12);
IOFD_ABI_CHECK_(iofd_abi_veventq_alloc, veventq_depth, 16);
IOFD_ABI_CHECK_(iofd_abi_veventq_alloc, out_veventq_id, 20);
IOFD_ABI_CHECK_(iofd_abi_veventq_alloc, out_veventq_fd, 24);
IOFD_ABI_CHECK_(iofd_abi_veventq_alloc, __reserved, 28);
_Static_assert(sizeof(struct iofd_abi_vevent_header) == 8, "vevent header");
IOFD_ABI_CHECK_(iofd_abi_vevent_header, sequence, 4);
_Static_assert(sizeof(struct iofd_abi_vevent_smmuv3) == 32, "smmuv3 event");
_Static_assert(IOFD_ABI_HWPT_INVALIDATE == 0x3B8D, "ioctl numbering");
_Static_assert(IOFD_ABI_GET_HW_INFO == 0x3B8A, "ioctl numbering");

/*
 * Dispatcher minimum sizes: offsetofend() of the last field of the
 * original struct (facts doc section 1); shorter -> EINVAL.
 */
#define IOFD_ABI_MIN_DESTROY 8u
#define IOFD_ABI_MIN_IOAS_ALLOC 12u
#define IOFD_ABI_MIN_HWPT_ALLOC 24u
#define IOFD_ABI_MIN_GET_HW_INFO 32u
#define IOFD_ABI_MIN_HWPT_INVALIDATE 32u
#define IOFD_ABI_MIN_VIOMMU_ALLOC 24u
#define IOFD_ABI_MIN_VDEVICE_ALLOC 24u
#define IOFD_ABI_MIN_VEVENTQ_ALLOC 28u

#endif
