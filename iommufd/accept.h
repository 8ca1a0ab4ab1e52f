/* SPDX-License-Identifier: MIT */
/*
 * iofd_accept: what a newer ("Gen B") kernel accepts in one
 * IOMMU_HWPT_INVALIDATE entry for an SMMUv3 vIOMMU, as a table written from
 * ../shared/docs/iommufd-smmuv3-facts.md sections 4.1 (opcode policy), 4.3
 * (per-opcode allowed-bit masks, range rules) and 5 (field positions).
 *
 * It is deliberately independent of cmdq/ (it includes no cmdq header and
 * shares no code or field table with it): the sim backend and the fake
 * /dev/iommu use it to play the kernel, so that "the backend rejected
 * nothing" says something about cmdq_validate(), the code under test,
 * instead of being true by construction. tests/iommufd/test-iofd-accept.c
 * checks that the two agree on every opcode and bit.
 *
 * Pure functions, any thread.
 */
#ifndef SMMU_OFFLOAD_IOFD_ACCEPT_H
#define SMMU_OFFLOAD_IOFD_ACCEPT_H

#include <stdbool.h>
#include <stdint.h>

/* The host SMMU features the kernel's checks depend on (facts 2.2, 4.3). */
struct iofd_accept_caps {
	uint8_t asid_bits; /* 8 or 16: IDR0.ASID16 */
	uint8_t ssid_bits; /* IDR1.SSIDSIZE; 0 = no substreams */
	bool range_inv; /* IDR3.RIL: FEAT_RANGE_INV */
	bool ats; /* IDR0.ATS */
	bool ds; /* IDR5.DS */
};

/*
 * iofd_accept_cmd() - would the kernel accept this guest command?
 * @caps:       the host SMMU's features.
 * @d0, @d1:    the command's two dwords, CPU byte order.
 * @ret_reason: if non-NULL, set on rejection to a static reason.
 *
 * Accepted: the forwardable opcodes of facts 4.1 (CFGI_CD, CFGI_CD_ALL,
 * TLBI_NH_ALL/ASID/VA/VAA, TLBI_NSNH_ALL, ATC_INV) whose set bits are all
 * in the opcode's allowed mask for @caps and that pass the range and
 * ATC_INV rules of 4.3. Values inside allowed fields (SID, SSID, address)
 * are not checked, as the kernel does not.
 *
 * Return: 0 if accepted, -EIO (the kernel's errno) if not.
 */
int iofd_accept_cmd(const struct iofd_accept_caps *caps, uint64_t d0,
		    uint64_t d1, const char **ret_reason);

#endif
