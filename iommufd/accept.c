/* SPDX-License-Identifier: MIT */
/*
 * The kernel's acceptance rules as a table (accept.h). Every mask below is
 * written from the facts doc's field table (section 5), bit numbers as
 * printed there; nothing here comes from cmdq/.
 */
#include "iommufd/accept.h"

#include <errno.h>
#include <stddef.h>

/* Bits hi..lo of a dword. */
#define BITS(hi, lo) ((~0ull >> (63 - (hi))) & (~0ull << (lo)))

/* dword0 (facts 5) */
#define D0_OP BITS(7, 0)
#define D0_ATC_GLOBAL BITS(9, 9)
#define D0_SSV BITS(11, 11)
#define D0_SSID BITS(31, 12) /* CFGI_*, ATC_INV */
#define D0_SID BITS(63, 32) /* CFGI_*, ATC_INV */
#define D0_NUM BITS(16, 12) /* TLBI_* */
#define D0_SCALE BITS(24, 20) /* TLBI_*, with FEAT_RANGE_INV */
#define D0_SCALE_DS BITS(25, 25) /* SCALE bit 5: only with DS (4.3) */
#define D0_VMID BITS(47, 32) /* TLBI_* */
#define D0_ASID BITS(63, 48) /* TLBI_*: limited to asid_bits (4.3) */
/* dword1 */
#define D1_LEAF BITS(0, 0) /* CFGI_CD, TLBI_* */
#define D1_TTL BITS(9, 8)
#define D1_TG BITS(11, 10)
#define D1_VA BITS(63, 12) /* TLBI_NH_VA/VAA */
#define D1_ATC_SIZE BITS(5, 0)
#define D1_ATC_ADDR BITS(63, 12)

#define ATC_INV_SIZE_ALL 52

/* One row per opcode the kernel forwards (facts 4.1). */
enum row_kind {
	ROW_NONE,
	ROW_NSNH,
	ROW_ALL,
	ROW_ASID,
	ROW_VA,
	ROW_VAA,
	ROW_ATC,
	ROW_CD,
	ROW_CD_ALL
};

struct row {
	const char *name;
	enum row_kind kind;
	uint64_t allow0, allow1; /* allowed whatever the caps */
};

static const struct row rows[256] = {
	[0x30] = { "TLBI_NSNH_ALL", ROW_NSNH, 0, 0 },
	[0x10] = { "TLBI_NH_ALL", ROW_ALL, D0_VMID, 0 },
	[0x11] = { "TLBI_NH_ASID", ROW_ASID, D0_VMID, 0 },
	[0x12] = { "TLBI_NH_VA", ROW_VA, D0_VMID, D1_LEAF | D1_VA },
	[0x13] = { "TLBI_NH_VAA", ROW_VAA, D0_VMID, D1_LEAF | D1_VA },
	[0x40] = { "ATC_INV", ROW_ATC, D0_SID, D1_ATC_SIZE | D1_ATC_ADDR },
	[0x05] = { "CFGI_CD", ROW_CD, D0_SID, D1_LEAF },
	[0x06] = { "CFGI_CD_ALL", ROW_CD_ALL, D0_SID, 0 },
};

static int reject(const char **ret_reason, const char *why)
{
	if (ret_reason)
		*ret_reason = why;
	return -EIO;
}

/* arm_vsmmu_validate_range (facts 4.3). */
static const char *range_rule(const struct iofd_accept_caps *caps, uint64_t d0,
			      uint64_t d1)
{
	uint64_t tg = (d1 & D1_TG) >> 10, ttl = (d1 & D1_TTL) >> 8;
	bool num_scale = d0 & (D0_NUM | D0_SCALE | D0_SCALE_DS);

	if (!tg && (num_scale || ttl))
		return "range fields with TG = 0";
	if (tg == 2 && ttl == 1 && !caps->ds)
		return "TG = 16K with TTL = 1 without DS";
	if (tg && !num_scale && !ttl)
		return "TG != 0 with NUM = SCALE = TTL = 0 (reserved)";
	return NULL;
}

int iofd_accept_cmd(const struct iofd_accept_caps *caps, uint64_t d0,
		    uint64_t d1, const char **ret_reason)
{
	const struct row *r = &rows[d0 & D0_OP];
	uint64_t a0 = D0_OP | r->allow0, a1 = r->allow1;
	const char *why = NULL;

	switch (r->kind) {
	case ROW_NONE:
		return reject(ret_reason, "opcode not forwarded (facts 4.1)");
	case ROW_ASID:
	case ROW_VA:
	case ROW_VAA:
		/* The low asid_bits bits of the ASID field (VAA has none). */
		if (r->kind != ROW_VAA && caps->asid_bits)
			a0 |= caps->asid_bits >= 16 ?
				      D0_ASID :
				      BITS(47 + caps->asid_bits, 48);
		if (r->kind == ROW_ASID)
			break;
		if (caps->range_inv) {
			a0 |= D0_NUM | D0_SCALE;
			a0 |= caps->ds ? D0_SCALE_DS : 0;
			a1 |= D1_TG | D1_TTL;
		}
		why = range_rule(caps, d0, d1);
		break;
	case ROW_ATC:
		if (!caps->ats)
			return reject(ret_reason, "ATC_INV without ATS");
		if ((d1 & D1_ATC_SIZE) > ATC_INV_SIZE_ALL)
			return reject(ret_reason, "ATC_INV SIZE > 52");
		if (caps->ssid_bits)
			a0 |= D0_SSV | D0_SSID | D0_ATC_GLOBAL;
		break;
	case ROW_CD:
		if (caps->ssid_bits)
			a0 |= D0_SSID;
		break;
	case ROW_NSNH:
	case ROW_ALL:
	case ROW_CD_ALL:
		break;
	}
	if ((d0 & ~a0) || (d1 & ~a1))
		return reject(ret_reason, "bits outside the opcode's mask");
	if (why)
		return reject(ret_reason, why);
	return 0;
}
