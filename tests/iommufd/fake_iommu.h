/* SPDX-License-Identifier: MIT */
/*
 * The fake /dev/iommu (tests only): an interposer of open()/ioctl() that
 * serves open("/dev/iommu") with a memfd holding the whole iommufd state,
 * and implements the iommufd ioctls smmu-offload uses with the kernel's
 * dispatch and errno rules (facts doc sections 2-4). See
 * docs/COST-MODEL.md "fake /dev/iommu".
 *
 * The fake fd is an ordinary memfd: dup(), fcntl(), fork() and SCM_RIGHTS
 * work unchanged, and every process that has the interposer loaded
 * recognises it by the magic at offset 0 and maps the same state (with a
 * process-shared mutex). Any other fd goes to the real ioctl().
 *
 * Environment, read when /dev/iommu is opened:
 *   FAKE_IOMMU_GEN=A|B      entry_num semantics (default B)
 *   FAKE_IOMMU_FAULT=E:N    E = EIO or ETIMEDOUT: the N-th entry (1-based)
 *                           converted from now on fails
 *
 * Test-only setup and inspection: ioctl(fd, IOFD_ABI_TEST_CMD,
 * struct fake_iommu_cmd) (the number of the kernel's IOMMU_TEST_CMD).
 */
#ifndef SMMU_OFFLOAD_FAKE_IOMMU_H
#define SMMU_OFFLOAD_FAKE_IOMMU_H

#include <stdbool.h>
#include <stdint.h>

#define FAKE_IOMMU_MAGIC 0x554d4d4f494b4146ull /* "FAKIOMMU" */
#define FAKE_IOMMU_SMMUS 4 /* fake host SMMUs, index 0..3 */
#define FAKE_IOMMU_LOG 4096 /* issued commands kept */

/* SET_FAULT: the invalidation ioctl hangs instead of failing. */
#define FAKE_IOMMU_FAULT_HANG 10000

enum fake_iommu_op {
	/* Add a mock device: @smmu, @arg64 = pSID, @arg32 = num_streams
	 * (0 means 1). Out: @id = dev_id. */
	FAKE_IOMMU_OP_ADD_DEV = 1,
	/* Set entry_num semantics: @arg32 = 'A' or 'B'. */
	FAKE_IOMMU_OP_SET_GEN,
	/* Fail the @arg64-th entry converted from now on (1-based) with
	 * @arg32 = EIO or ETIMEDOUT, or make the ioctl converting it never
	 * return (@arg32 = FAKE_IOMMU_FAULT_HANG: a wedged host queue; the
	 * shared state is unlocked first); @arg64 = 0 disarms. */
	FAKE_IOMMU_OP_SET_FAULT,
	/* Copy log entries [@arg64, ...) into @uptr, at most @arg32 of them.
	 * Out: @arg32 = copied, @id = total logged so far. */
	FAKE_IOMMU_OP_GET_LOG,
	/* Out: @arg64 = HWPT_INVALIDATE calls that reached the driver,
	 * @arg32 = host CMD_SYNCs issued, @id = FAKE_IOMMU_MAGIC low 32. */
	FAKE_IOMMU_OP_STATS,
	/* Set the raw IDR0..5 of fake SMMU @smmu from @uptr (u32[6]). */
	FAKE_IOMMU_OP_SET_IDR,
};

/**
 * struct fake_iommu_cmd - IOFD_ABI_TEST_CMD argument.
 * @size: sizeof(struct fake_iommu_cmd).
 * @op:   enum fake_iommu_op.
 * @id:   in/out id.
 * @smmu: fake host SMMU index.
 * @arg32, @arg64, @uptr: per op.
 */
struct fake_iommu_cmd {
	uint32_t size;
	uint32_t op;
	uint32_t id;
	uint32_t smmu;
	uint32_t arg32;
	uint32_t __pad;
	uint64_t arg64;
	uint64_t uptr;
};

/* One issued host command: after VMID and vSID -> pSID rewriting. */
struct fake_iommu_log_ent {
	uint32_t viommu_id;
	uint32_t smmu;
	uint64_t cmd[2]; /* CPU order */
};

/*
 * The test seam the kernel backend looks up with dlsym() (see
 * iommufd/kernel.c iofd_iommufd_check()): true if @fd is a fake iommufd.
 */
bool iofd_test_seam_is_iommufd(int fd);

/* Referenced by tests linked with the fake (not preloaded) so that the
 * linker keeps the library. Always returns FAKE_IOMMU_MAGIC. */
uint64_t fake_iommu_linked(void);

#endif
