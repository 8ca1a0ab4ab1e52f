/* SPDX-License-Identifier: MIT */
/*
 * cmdq: the SMMUv3 command model. Pure functions, no I/O, no allocation
 * unless a function says so; callable from any thread.
 *
 * A command is one 16-byte SMMUv3 command-queue entry: two 64-bit words.
 * struct cmdq_cmd holds them in CPU byte order; the ring and the kernel ABI
 * carry them little-endian. That is the one representation from the ring
 * copy to the ioctl array: on a little-endian host (CMDQ_CMD_IS_LE) it is
 * the entry's own layout, so cmdq_decode() and cmdq_cmd_from_le() are
 * plain copies and the kernel backend hands the array to the ioctl as it
 * is; only a big-endian host swaps, in cmdq_decode()/cmdq_cmd_from_le() and
 * cmdq_cmd_to_le().
 *
 * Field positions: ../shared/docs/iommufd-smmuv3-facts.md section 5 (SMMUv3
 * spec names, Linux arm-smmu-v3.h macro names in the comments).
 */
#ifndef SMMU_OFFLOAD_CMDQ_H
#define SMMU_OFFLOAD_CMDQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CMDQ_ENT_SIZE 16

struct cmdq_cmd {
	uint64_t d[2]; /* dword0, dword1 in CPU byte order */
};

_Static_assert(sizeof(struct cmdq_cmd) == CMDQ_ENT_SIZE, "cmdq entry size");

/* True when struct cmdq_cmd's memory is the little-endian queue entry. */
#define CMDQ_CMD_IS_LE (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)

/* Opcodes, dword0[7:0]. */
enum cmdq_op {
	CMDQ_OP_PREFETCH_CONFIG = 0x01,
	CMDQ_OP_PREFETCH_ADDR = 0x02,
	CMDQ_OP_CFGI_STE = 0x03,
	CMDQ_OP_CFGI_STE_RANGE = 0x04, /* CFGI_ALL when Range = 31 */
	CMDQ_OP_CFGI_CD = 0x05,
	CMDQ_OP_CFGI_CD_ALL = 0x06,
	CMDQ_OP_CFGI_VMS_PIDM = 0x07,
	CMDQ_OP_TLBI_NH_ALL = 0x10,
	CMDQ_OP_TLBI_NH_ASID = 0x11,
	CMDQ_OP_TLBI_NH_VA = 0x12,
	CMDQ_OP_TLBI_NH_VAA = 0x13,
	CMDQ_OP_TLBI_EL3_ALL = 0x18,
	CMDQ_OP_TLBI_EL3_VA = 0x1a,
	CMDQ_OP_TLBI_EL2_ALL = 0x20,
	CMDQ_OP_TLBI_EL2_ASID = 0x21,
	CMDQ_OP_TLBI_EL2_VA = 0x22,
	CMDQ_OP_TLBI_EL2_VAA = 0x23,
	CMDQ_OP_TLBI_S12_VMALL = 0x28,
	CMDQ_OP_TLBI_S2_IPA = 0x2a,
	CMDQ_OP_TLBI_NSNH_ALL = 0x30,
	CMDQ_OP_ATC_INV = 0x40,
	CMDQ_OP_PRI_RESP = 0x41,
	CMDQ_OP_RESUME = 0x44,
	CMDQ_OP_STALL_TERM = 0x45,
	CMDQ_OP_SYNC = 0x46,
};

/* SMMU_CMDQ_CONS.ERR codes (bits [30:24]). */
enum cmdq_cerror {
	CMDQ_CERROR_NONE = 0,
	CMDQ_CERROR_ILL = 1,
	CMDQ_CERROR_ABT = 2,
	CMDQ_CERROR_ATC_INV_SYNC = 3,
};

/*
 * What the service does with a command found in a ring.
 * FORWARD: the kernel accepts it (CFGI_CD, CFGI_CD_ALL, TLBI_NH_ALL/ASID/
 *          VA/VAA, TLBI_NSNH_ALL, ATC_INV).
 * SYNC:    CMD_SYNC, a completion marker; consumed by the service.
 * VMM_ONLY:CFGI_STE, CFGI_STE_RANGE; the VMM installs nested STEs itself,
 *          so one in a ring is a VMM bug and is illegal there.
 * NOP:     PREFETCH_*: hints, completed without being forwarded.
 * ILLEGAL: everything else, unknown opcodes, SSEC set, CMD_SYNC CS = 3.
 */
enum cmdq_class {
	CMDQ_CLASS_FORWARD,
	CMDQ_CLASS_SYNC,
	CMDQ_CLASS_VMM_ONLY,
	CMDQ_CLASS_NOP,
	CMDQ_CLASS_ILLEGAL,
};

/*
 * Host SMMU capabilities that decide what a guest may send. Filled from
 * GET_HW_INFO's IDR registers (kernel backend) or from configuration (sim).
 */
struct cmdq_caps {
	uint8_t asid_bits; /* 8 or 16 (IDR0.ASID16) */
	uint8_t ssid_bits; /* IDR1.SSIDSIZE; 0 = no substreams */
	uint8_t sid_bits; /* IDR1.SIDSIZE */
	bool range_inv; /* IDR3.RIL: TLBI range fields allowed */
	bool ats; /* IDR0.ATS: ATC_INV allowed */
	bool ds; /* IDR5.DS: 52-bit VA with 4K/16K: SCALE bit 5, TG=16K TTL=1 */
	bool gran4k, gran16k, gran64k; /* IDR5.GRAN* */
	/*
	 * Derived by cmdq_caps_prepare() from the fields above, for
	 * cmdq_decode()'s fast path; internal (trailing underscore). All zero
	 * (never prepared) sends every TLBI_NH_VA/VAA/ASID down the exact full
	 * path: the same result, more instructions. Stale after a change to
	 * the fields above: prepare again.
	 */
	uint64_t nh_va_a0_; /* TLBI_NH_VA: allowed bits of dword0 */
	uint64_t nh_vaa_a0_; /* TLBI_NH_VAA: allowed bits of dword0 */
	uint64_t nh_asid_a0_; /* TLBI_NH_ASID: allowed bits of dword0 */
	uint64_t va_a1_; /* TLBI_NH_VA/VAA: allowed bits of dword1 */
	uint16_t tg_ttl_ok_; /* bit (TG << 2 | TTL) set: a legal pair */
};

/* A caps profile matching QEMU's emulated SMMUv3 (the traces' source). */
extern const struct cmdq_caps cmdq_caps_qemu;
/* A caps profile with every optional feature present. */
extern const struct cmdq_caps cmdq_caps_full;

/*
 * cmdq_caps_prepare() - derive @caps's decode masks from its fields, once
 * per set of caps (e.g. when a vSMMU binds them), so that cmdq_decode()
 * does not recompute them per command.
 * @caps: the caps to complete; their other fields are left unchanged.
 *
 * Optional: cmdq_decode() gives the same result for prepared and
 * unprepared caps (unprepared ones take the slower full path for
 * TLBI_NH_VA/VAA/ASID). Thread context: any; pure on @caps.
 */
void cmdq_caps_prepare(struct cmdq_caps *caps);

static inline uint8_t cmdq_cmd_opcode(const struct cmdq_cmd *c)
{
	return (uint8_t)(c->d[0] & 0xff);
}

/*
 * Fields. One list (CMDQ_FIELD_LIST_, facts section 5) says where each
 * field lives; the enum, the position table below, cmdq_fields[] and the
 * named accessors are all generated from it, so no field position is
 * written twice. Which fields a given opcode has is the business of the
 * builders and of cmdq_validate(): the accessors do not check the opcode.
 *
 * Address fields (CMDQ_F_ADDR, CMDQ_F_IPA, CMDQ_F_MSIADDR) are read and
 * written as addresses: the value is the bits in place (an aligned address),
 * not shifted down. All other fields are plain unsigned numbers.
 *
 * X(enum suffix, text name, dword, lowest bit, width, address?)
 */
#define CMDQ_FIELD_LIST_(X)                                                   \
	X(OP, "op", 0, 0, 8, false) /* d0[7:0] */                             \
	X(GLOBAL, "global", 0, 9, 1, false) /* d0[9], ATC_INV */              \
	X(SSEC, "ssec", 0, 10, 1, false) /* d0[10] */                         \
	X(SSV, "ssv", 0, 11, 1, false) /* d0[11] */                           \
	X(SSID, "ssid", 0, 12, 20, false) /* d0[31:12], CFGI_*, ATC_INV */    \
	X(SID, "sid", 0, 32, 32, false) /* d0[63:32], CFGI_*, ATC_INV, ... */ \
	X(NUM, "num", 0, 12, 5, false) /* d0[16:12], TLBI_* range */          \
	X(SCALE, "scale", 0, 20, 6, false) /* d0[25:20], d0[25] needs DS */   \
	X(VMID, "vmid", 0, 32, 16, false) /* d0[47:32], TLBI_* */             \
	X(ASID, "asid", 0, 48, 16, false) /* d0[63:48], TLBI_* */             \
	X(CS, "cs", 0, 12, 2, false) /* d0[13:12], CMD_SYNC */                \
	X(MSH, "msh", 0, 22, 2, false) /* d0[23:22], CMD_SYNC */              \
	X(MSIATTR, "msiattr", 0, 24, 4, false) /* d0[27:24], CMD_SYNC */      \
	X(MSIDATA, "msidata", 0, 32, 32, false) /* d0[63:32], CMD_SYNC */     \
	X(RESUME_RESP, "resp", 0, 12, 2, false) /* d0[13:12], RESUME */       \
	X(LEAF, "leaf", 1, 0, 1, false) /* d1[0], CFGI_STE/CD, TLBI_* */      \
	X(RANGE, "range", 1, 0, 5, false) /* d1[4:0], CFGI_STE_RANGE */       \
	X(TTL, "ttl", 1, 8, 2, false) /* d1[9:8], TLBI_* */                   \
	X(TG, "tg", 1, 10, 2, false) /* d1[11:10], TLBI_* */                  \
	X(ADDR, "addr", 1, 12, 52,                                            \
	  true) /* d1[63:12], TLBI VA, ATC_INV, ... */                        \
	X(IPA, "ipa", 1, 12, 40, true) /* d1[51:12], TLBI_S2_IPA */           \
	X(ATC_SIZE, "size", 1, 0, 6, false) /* d1[5:0], ATC_INV */            \
	X(PREFETCH_SIZE, "size", 1, 0, 5, false) /* d1[4:0], PREFETCH_ADDR */ \
	X(PRI_GRPID, "grpid", 1, 0, 9, false) /* d1[8:0], PRI_RESP */         \
	X(PRI_RESP, "resp", 1, 12, 2, false) /* d1[13:12], PRI_RESP */        \
	X(STAG, "stag", 1, 0, 16, false) /* d1[15:0], RESUME */               \
	X(MSIADDR, "msiaddr", 1, 2, 50, true) /* d1[51:2], CMD_SYNC */

#define CMDQ_FIELD_ENUM_(e, n, w, s, b, a) CMDQ_F_##e,
enum cmdq_field { CMDQ_FIELD_LIST_(CMDQ_FIELD_ENUM_) CMDQ_F_COUNT };
#undef CMDQ_FIELD_ENUM_

struct cmdq_field_desc {
	const char *name; /* lower case, as in the text trace format */
	uint8_t word; /* 0 or 1 */
	uint8_t shift; /* lowest bit */
	uint8_t width; /* bits */
	bool addr; /* value is an in-place address, see above */
};

/* Read-only after load; indexed by enum cmdq_field. */
extern const struct cmdq_field_desc cmdq_fields[CMDQ_F_COUNT];

/*
 * The positions again, as a static table in every user: with a constant
 * field, gcc folds cmdq_get()/cmdq_set() to a mask and a shift. Through
 * the extern cmdq_fields[] it cannot (another unit defines it), and the
 * loads were ~12 M instructions of coalescing at budget 64
 * (docs/PERFORMANCE.md).
 */
struct cmdq_field_pos_ {
	uint8_t word, shift, width;
	bool addr;
};
#define CMDQ_FIELD_POS_(e, n, w, s, b, a) \
	[CMDQ_F_##e] = { .word = w, .shift = s, .width = b, .addr = a },
static const struct cmdq_field_pos_ cmdq_field_pos_[CMDQ_F_COUNT] = {
	CMDQ_FIELD_LIST_(CMDQ_FIELD_POS_)
};
#undef CMDQ_FIELD_POS_

/* cmdq_field_mask() - the bits of @f within its dword. */
static inline uint64_t cmdq_field_mask(enum cmdq_field f)
{
	const struct cmdq_field_pos_ *d = &cmdq_field_pos_[f];

	return (~0ull >> (64 - d->width)) << d->shift;
}

/* cmdq_get() - the value of field @f of @c (see "Address fields"). */
static inline uint64_t cmdq_get(const struct cmdq_cmd *c, enum cmdq_field f)
{
	const struct cmdq_field_pos_ *d = &cmdq_field_pos_[f];
	uint64_t v = c->d[d->word] & cmdq_field_mask(f);

	return d->addr ? v : v >> d->shift;
}

/*
 * cmdq_set() - store @v into field @f of @c. Bits of @v that do not fit the
 * field (and, for address fields, the bits below its alignment) are dropped;
 * the other fields are untouched.
 */
static inline void cmdq_set(struct cmdq_cmd *c, enum cmdq_field f, uint64_t v)
{
	const struct cmdq_field_pos_ *d = &cmdq_field_pos_[f];
	uint64_t m = cmdq_field_mask(f);

	c->d[d->word] = (c->d[d->word] & ~m) |
			((d->addr ? v : v << d->shift) & m);
}

/* Named accessors: cmdq_sid(&c) == cmdq_get(&c, CMDQ_F_SID), etc. */
#define CMDQ_ACCESSOR_(name, f)                                      \
	static inline uint64_t cmdq_##name(const struct cmdq_cmd *c) \
	{                                                            \
		return cmdq_get(c, f);                               \
	}
CMDQ_ACCESSOR_(global, CMDQ_F_GLOBAL)
CMDQ_ACCESSOR_(ssec, CMDQ_F_SSEC)
CMDQ_ACCESSOR_(ssv, CMDQ_F_SSV)
CMDQ_ACCESSOR_(ssid, CMDQ_F_SSID)
CMDQ_ACCESSOR_(sid, CMDQ_F_SID)
CMDQ_ACCESSOR_(tlbi_num, CMDQ_F_NUM)
CMDQ_ACCESSOR_(tlbi_scale, CMDQ_F_SCALE)
CMDQ_ACCESSOR_(tlbi_vmid, CMDQ_F_VMID)
CMDQ_ACCESSOR_(tlbi_asid, CMDQ_F_ASID)
CMDQ_ACCESSOR_(sync_cs, CMDQ_F_CS)
CMDQ_ACCESSOR_(sync_msh, CMDQ_F_MSH)
CMDQ_ACCESSOR_(sync_msiattr, CMDQ_F_MSIATTR)
CMDQ_ACCESSOR_(sync_msidata, CMDQ_F_MSIDATA)
CMDQ_ACCESSOR_(sync_msiaddr, CMDQ_F_MSIADDR)
CMDQ_ACCESSOR_(resume_resp, CMDQ_F_RESUME_RESP)
CMDQ_ACCESSOR_(resume_stag, CMDQ_F_STAG)
CMDQ_ACCESSOR_(leaf, CMDQ_F_LEAF)
CMDQ_ACCESSOR_(cfgi_range, CMDQ_F_RANGE)
CMDQ_ACCESSOR_(tlbi_ttl, CMDQ_F_TTL)
CMDQ_ACCESSOR_(tlbi_tg, CMDQ_F_TG)
CMDQ_ACCESSOR_(addr, CMDQ_F_ADDR)
CMDQ_ACCESSOR_(tlbi_ipa, CMDQ_F_IPA)
CMDQ_ACCESSOR_(atc_size, CMDQ_F_ATC_SIZE)
CMDQ_ACCESSOR_(prefetch_size, CMDQ_F_PREFETCH_SIZE)
CMDQ_ACCESSOR_(pri_grpid, CMDQ_F_PRI_GRPID)
CMDQ_ACCESSOR_(pri_resp, CMDQ_F_PRI_RESP)
#undef CMDQ_ACCESSOR_

/* Encoded values. */
enum { CMDQ_TG_NONE = 0, CMDQ_TG_4K = 1, CMDQ_TG_16K = 2, CMDQ_TG_64K = 3 };
enum { CMDQ_SYNC_CS_NONE = 0, CMDQ_SYNC_CS_IRQ = 1, CMDQ_SYNC_CS_SEV = 2 };
enum { CMDQ_SYNC_MSH_ISH = 3, CMDQ_SYNC_MSIATTR_OIWB = 0xf };
#define CMDQ_ATC_INV_SIZE_ALL 52
#define CMDQ_CFGI_RANGE_ALL 31
#define CMDQ_TLBI_RANGE_NUM_MAX 31

/*
 * The TLBI range part (facts section 5): (num + 1) << scale granules of
 * size tg starting at the address; ttl is the level hint. All zero = a
 * single non-range invalidation.
 */
struct cmdq_tlbi_range {
	uint8_t num, scale, tg, ttl;
};

/*
 * Builders: each returns a command with the opcode and the named fields set
 * and every other bit zero. Values are truncated to their field widths;
 * address arguments are truncated to their alignment. @r may be NULL (no
 * range). None validates: use cmdq_validate().
 */
struct cmdq_cmd cmdq_build_prefetch_config(uint32_t sid, bool ssv,
					   uint32_t ssid);
struct cmdq_cmd cmdq_build_prefetch_addr(uint32_t sid, bool ssv, uint32_t ssid,
					 uint64_t addr, uint8_t size);
struct cmdq_cmd cmdq_build_cfgi_ste(uint32_t sid, bool leaf);
struct cmdq_cmd cmdq_build_cfgi_ste_range(uint32_t sid, uint8_t range);
/* CFGI_ALL: CFGI_STE_RANGE with SID 0, Range 31. */
struct cmdq_cmd cmdq_build_cfgi_all(void);
struct cmdq_cmd cmdq_build_cfgi_cd(uint32_t sid, uint32_t ssid, bool leaf);
struct cmdq_cmd cmdq_build_cfgi_cd_all(uint32_t sid);
struct cmdq_cmd cmdq_build_tlbi_nh_all(uint16_t vmid);
struct cmdq_cmd cmdq_build_tlbi_nh_asid(uint16_t asid, uint16_t vmid);
struct cmdq_cmd cmdq_build_tlbi_nh_va(uint16_t asid, uint16_t vmid, uint64_t va,
				      bool leaf,
				      const struct cmdq_tlbi_range *r);
struct cmdq_cmd cmdq_build_tlbi_nh_vaa(uint16_t vmid, uint64_t va, bool leaf,
				       const struct cmdq_tlbi_range *r);
struct cmdq_cmd cmdq_build_tlbi_el2_all(void);
struct cmdq_cmd cmdq_build_tlbi_el2_asid(uint16_t asid);
struct cmdq_cmd cmdq_build_tlbi_el2_va(uint16_t asid, uint64_t va, bool leaf,
				       const struct cmdq_tlbi_range *r);
struct cmdq_cmd cmdq_build_tlbi_el2_vaa(uint64_t va, bool leaf,
					const struct cmdq_tlbi_range *r);
struct cmdq_cmd cmdq_build_tlbi_s12_vmall(uint16_t vmid);
struct cmdq_cmd cmdq_build_tlbi_s2_ipa(uint16_t vmid, uint64_t ipa, bool leaf,
				       const struct cmdq_tlbi_range *r);
struct cmdq_cmd cmdq_build_tlbi_nsnh_all(void);
struct cmdq_cmd cmdq_build_atc_inv(uint32_t sid, bool ssv, uint32_t ssid,
				   bool global, uint64_t addr, uint8_t size);
struct cmdq_cmd cmdq_build_pri_resp(uint32_t sid, bool ssv, uint32_t ssid,
				    uint16_t grpid, uint8_t resp);
struct cmdq_cmd cmdq_build_resume(uint32_t sid, uint8_t resp, uint16_t stag);
struct cmdq_cmd cmdq_build_stall_term(uint32_t sid);
struct cmdq_cmd cmdq_build_sync(uint8_t cs, uint8_t msh, uint8_t msiattr,
				uint32_t msidata, uint64_t msiaddr);

/* cmdq_tlbi_range_get() - the range part of a TLBI command. */
struct cmdq_tlbi_range cmdq_tlbi_range_get(const struct cmdq_cmd *c);

/*
 * cmdq_cmd_from_le() - convert a 16-byte little-endian queue entry.
 * @le: the entry, at any alignment (it may sit in shared memory: the caller
 *      copies before it validates, this function reads each byte once).
 */
struct cmdq_cmd cmdq_cmd_from_le(const void *le);
/* cmdq_cmd_to_le() - store @c as a 16-byte little-endian entry at @le. */
void cmdq_cmd_to_le(const struct cmdq_cmd *c, void *le);

/* cmdq_op_name() - the spec name ("TLBI_NH_VA"), or NULL if unknown. */
const char *cmdq_op_name(uint8_t op);
/*
 * cmdq_op_from_name() - the opcode named @name (as cmdq_op_name() spells
 * it), or -EINVAL. @len: length of @name (it need not be terminated).
 */
int cmdq_op_from_name(const char *name, size_t len);

/* cmdq_classify() - the class of @c by opcode and the SSEC/CS checks. */
enum cmdq_class cmdq_classify(const struct cmdq_cmd *c);

/*
 * cmdq_validate() - check @c against what the host accepts.
 * @caps:       the host SMMU's capabilities.
 * @c:          the command (already copied out of shared memory).
 * @ret_reason: if non-NULL, set on failure to a static human-readable
 *              reason ("TLBI_NH_VA: RES0 bits set in dword1").
 *
 * Applies the newer kernel's per-opcode allowed-bit masks and range rules
 * to FORWARD commands, so nothing the service forwards can be rejected by
 * the kernel or wedge the host queue; checks SYNC and NOP commands for
 * reserved bits; VMM_ONLY and ILLEGAL commands always fail.
 * Like the kernel, it limits the ASID to caps->asid_bits but does not check
 * other values against the host's ranges (SID, SSID, address: CONSTRAINED
 * UNPREDICTABLE and scoped to the guest, facts 4.3). SCALE's sixth bit,
 * d0[25] (SCALE >= 32), needs caps->ds; a TG naming a granule the host
 * lacks fails (a service rule beyond the kernel's, docs/ARCHITECTURE.md).
 * Thread context: any; pure.
 *
 * Return: CMDQ_CERROR_NONE (0) if the command is acceptable, else
 * CMDQ_CERROR_ILL.
 */
enum cmdq_cerror cmdq_validate(const struct cmdq_caps *caps,
			       const struct cmdq_cmd *c,
			       const char **ret_reason);

/*
 * Ordering classes of forwarded commands. Within one guest SYNC group the
 * SMMU gives no completion order, so any mix may share one host sync. A
 * guest CMD_SYNC between two commands of *different* classes is a real
 * ordering point (CFGI_CD before the TLBI that relies on the new CD; TLBI
 * before the ATC_INV that must not refetch a stale translation) and must
 * stay a host sync: the later command goes in a later ioctl.
 */
enum cmdq_order_class {
	CMDQ_ORDER_TLB = 1 << 0, /* TLBI_NH_*, TLBI_NSNH_ALL */
	CMDQ_ORDER_CFG = 1 << 1, /* CFGI_CD, CFGI_CD_ALL */
	CMDQ_ORDER_ATC = 1 << 2, /* ATC_INV */
};

/* cmdq_order_class() - the ordering class of a FORWARD command, else 0. */
unsigned int cmdq_order_class(const struct cmdq_cmd *c);

/*
 * What the service needs to know about a command, learnt once by
 * cmdq_decode(): everything downstream of the ring copy (the ordering cut,
 * the vSID check, batch building, coalescing, failure handling) reads this
 * and never decodes the command's bits again.
 */
struct cmdq_info {
	uint8_t op; /* opcode, dword0[7:0] */
	uint8_t cls; /* enum cmdq_class */
	uint8_t order; /* enum cmdq_order_class if FORWARD, else 0 */
	uint8_t cerror; /* enum cmdq_cerror: NONE or ILL */
	uint8_t flags; /* CMDQ_INFO_* */
	uint32_t sid; /* StreamID if CMDQ_INFO_SID, else 0 */
	uint32_t ssid; /* SubstreamID if CMDQ_INFO_SSID, else 0 */
};

enum {
	/* The opcode has a StreamID field (CFGI_*, ATC_INV, PRI_RESP,
	 * RESUME, STALL_TERM, PREFETCH_*): @sid is dword0[63:32]. */
	CMDQ_INFO_SID = 1 << 0,
	/* A SubstreamID applies: CFGI_CD always, ATC_INV / PRI_RESP /
	 * PREFETCH_* when SSV is set. @ssid is dword0[31:12]. */
	CMDQ_INFO_SSID = 1 << 1,
};

/*
 * cmdq_decode() - the one decode step of a queue entry.
 * @caps:     the host SMMU's capabilities (for the CERROR code).
 * @le_entry: the 16-byte little-endian entry, at any alignment; a private
 *            copy (the caller copies shared memory before it validates).
 * @ret_cmd:  the command in the representation of struct cmdq_cmd.
 * @ret_info: opcode, class (cmdq_classify()), ordering class
 *            (cmdq_order_class()), SID/SSID where the opcode has them, and
 *            the CERROR code (cmdq_validate(), without the reason).
 *
 * Both outputs are always written, whatever the command. Thread context:
 * any; pure.
 *
 * Return: @ret_info->cerror: CMDQ_CERROR_NONE if the service may act on
 * the command (forward it, complete it as a SYNC or NOP), else
 * CMDQ_CERROR_ILL.
 */
static inline enum cmdq_cerror cmdq_decode(const struct cmdq_caps *caps,
					   const void *le_entry,
					   struct cmdq_cmd *ret_cmd,
					   struct cmdq_info *ret_info);

/*
 * Below: cmdq_decode()'s inline fast path, so the worker's per-entry loop
 * pays no call for the commands nearly every guest batch is made of
 * (CMD_SYNC, TLBI_NH_*, TLBI_NSNH_ALL). Internal (trailing underscore):
 * use cmdq_decode().
 */

/* Whether TG @tg names a granule the host has (TG 0: no range, fine). */
static inline bool cmdq_granule_ok_(const struct cmdq_caps *caps,
				    unsigned int tg)
{
	switch (tg) {
	case CMDQ_TG_4K:
		return caps->gran4k;
	case CMDQ_TG_16K:
		return caps->gran16k;
	case CMDQ_TG_64K:
		return caps->gran64k;
	}
	return true;
}

/* The ASID bits a host with @caps accepts. */
static inline uint64_t cmdq_asid_ok_(const struct cmdq_caps *caps)
{
	uint64_t m = cmdq_field_mask(CMDQ_F_ASID);

	return caps->asid_bits >= 16 ?
		       m :
		       (((1ull << caps->asid_bits) - 1) << 48) & m;
}

/*
 * For CMD_SYNC, TLBI_NH_* and TLBI_NSNH_ALL, validation is "no bit outside
 * the opcode's allowed masks" (which also rules out SSEC) plus the TLBI
 * range rules, with cmdq_validate()'s caps gates, read from the masks
 * cmdq_caps_prepare() derived. Returns the class (CMDQ_CLASS_SYNC or
 * CMDQ_CLASS_FORWARD, ordering class TLB) only if cmdq_validate() accepts
 * @c; -1 means "take the full path", never "invalid", so every other
 * command (and every caps-gated one with unprepared caps, whose masks are
 * zero) keeps cmdq_validate()'s exact rules. cmdq tests check the two
 * agree.
 */
static inline int cmdq_decode_va_(const struct cmdq_caps *caps,
				  const struct cmdq_cmd *c, uint64_t a0)
{
	unsigned int tg, ttl, num, scale;

	if ((c->d[0] & ~a0) | (c->d[1] & ~caps->va_a1_))
		return -1;
	/*
	 * The range rules; all fields zero without RIL (masked above). The
	 * table holds the granule and 16K/TTL=1 gates and "no TTL without
	 * TG"; the rest is "TG set exactly when some range field is".
	 */
	tg = (unsigned int)cmdq_tlbi_tg(c);
	ttl = (unsigned int)cmdq_tlbi_ttl(c);
	num = (unsigned int)cmdq_tlbi_num(c);
	scale = (unsigned int)cmdq_tlbi_scale(c);
	if (!((caps->tg_ttl_ok_ >> (tg << 2 | ttl)) & 1) ||
	    !tg != !(num | scale | ttl))
		return -1;
	return CMDQ_CLASS_FORWARD;
}

static inline int cmdq_decode_fast_(const struct cmdq_caps *caps,
				    const struct cmdq_cmd *c)
{
	uint64_t a0 = cmdq_field_mask(CMDQ_F_OP);
	uint8_t op = cmdq_cmd_opcode(c);

	/* The two commands of a strict unmap first, without a jump table. */
	if (op == CMDQ_OP_SYNC) {
		a0 |= cmdq_field_mask(CMDQ_F_CS) | cmdq_field_mask(CMDQ_F_MSH) |
		      cmdq_field_mask(CMDQ_F_MSIATTR) |
		      cmdq_field_mask(CMDQ_F_MSIDATA);
		if (cmdq_sync_cs(c) == 3 || (c->d[0] & ~a0) ||
		    (c->d[1] & ~cmdq_field_mask(CMDQ_F_MSIADDR)))
			return -1;
		return CMDQ_CLASS_SYNC;
	}
	if (op == CMDQ_OP_TLBI_NH_VA)
		return cmdq_decode_va_(caps, c, caps->nh_va_a0_);
	switch (op) {
	case CMDQ_OP_TLBI_NH_VAA:
		return cmdq_decode_va_(caps, c, caps->nh_vaa_a0_);
	case CMDQ_OP_TLBI_NSNH_ALL:
		break;
	case CMDQ_OP_TLBI_NH_ALL:
		a0 |= cmdq_field_mask(CMDQ_F_VMID);
		break;
	case CMDQ_OP_TLBI_NH_ASID:
		a0 = caps->nh_asid_a0_;
		break;
	default:
		return -1;
	}
	if (c->d[0] & ~a0 || c->d[1])
		return -1;
	return CMDQ_CLASS_FORWARD;
}

/* The whole of cmdq_decode(), out of line (and on a big-endian host). */
enum cmdq_cerror cmdq_decode_full_(const struct cmdq_caps *caps,
				   const void *le_entry,
				   struct cmdq_cmd *ret_cmd,
				   struct cmdq_info *ret_info);

static inline enum cmdq_cerror cmdq_decode(const struct cmdq_caps *caps,
					   const void *le_entry,
					   struct cmdq_cmd *ret_cmd,
					   struct cmdq_info *ret_info)
{
#if CMDQ_CMD_IS_LE
	struct cmdq_cmd c;
	int cls;

	memcpy(&c, le_entry, sizeof(c)); /* the one read of @le_entry */
	cls = cmdq_decode_fast_(caps, &c);
	if (cls >= 0) {
		*ret_cmd = c;
		*ret_info = (struct cmdq_info){
			.op = cmdq_cmd_opcode(&c),
			.cls = (uint8_t)cls,
			.order = cls == CMDQ_CLASS_FORWARD ? CMDQ_ORDER_TLB : 0,
		};
		return CMDQ_CERROR_NONE;
	}
	/* The copy is the little-endian entry: never read @le_entry twice. */
	return cmdq_decode_full_(caps, &c, ret_cmd, ret_info);
#else
	return cmdq_decode_full_(caps, le_entry, ret_cmd, ret_info);
#endif
}

/*
 * cmdq_coalesce() - shorten the commands of one batch (one vSMMU, one
 * future ioctl) without changing what the batch invalidates.
 * @cmds: FORWARD commands, in ring order; rewritten in place.
 * @n:    how many.
 *
 * The batch is completed as a whole (every guest CMD_SYNC it covers is
 * signalled only after the whole batch completed), so commands may be
 * dropped or merged across guest SYNCs that the caller allowed into one
 * batch (see enum cmdq_order_class). Rules (the complete list, with the
 * reasoning, in docs/ARCHITECTURE.md "Coalescing rules"): exact duplicates
 * dropped; TLBI_NH_ALL and TLBI_NSNH_ALL supersede every earlier TLBI_NH_*;
 * CFGI_CD_ALL(sid) supersedes earlier CFGI_CD(sid, ...); VA ranges of one
 * opcode, ASID and TG merged only when the merged range covers exactly
 * their union. TLBI_NH_ASID supersedes no TLBI_NH_VA: by-VA invalidation
 * also removes global (nG = 0) entries, by-ASID invalidation does not.
 * The result invalidates a superset of the input.
 *
 * Details: VMIDs are ignored when comparing TLBIs (the kernel overwrites
 * them with the vSMMU's, facts 4.1). Range merges: only range-form
 * TLBI_NH_VA/VAA (TG != 0, granule-aligned address, SCALE <= 31) of one
 * opcode, ASID and TG, whose union is one range of exactly
 * (NUM + 1) << SCALE granules, NUM <= 31, SCALE <= 31 (>= 32 needs DS);
 * Leaf of the result is the AND, TTL kept if equal else 0, and a merge that
 * would produce the reserved NUM = SCALE = TTL = 0 is skipped. Survivors
 * keep their ring order; a merged command takes the place of the one with
 * the lowest address. Entries that are not FORWARD are left alone, and a
 * batch containing an opcode-0 entry is returned unchanged.
 *
 * Complexity: O(n log n) time, no allocation, ~29 KiB of stack; batches
 * longer than 512 are coalesced in independent windows of 512.
 * Thread context: any; @cmds is owned by the caller.
 *
 * Return: the new count (<= @n); @n only if @cmds is unchanged (a merge
 * always drops a command), so a caller can tell "nothing coalesced"
 * without comparing.
 */
size_t cmdq_coalesce(struct cmdq_cmd *cmds, size_t n);

/*
 * cmdq_coalesce_info() - cmdq_coalesce() for a caller that has decoded the
 * commands: @info[i] is what cmdq_decode() said of @cmds[i] as passed in.
 * The passes read opcode, class, ordering class and SID from @info instead
 * of decoding each command again. @info is not changed: it still describes
 * the commands as they were passed (the caller's originals). Same rules,
 * result and thread context as cmdq_coalesce(), ~21 KiB of stack.
 */
size_t cmdq_coalesce_info(struct cmdq_cmd *cmds, const struct cmdq_info *info,
			  size_t n);

#endif
