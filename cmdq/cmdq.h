/* SPDX-License-Identifier: MIT */
/*
 * cmdq: the SMMUv3 command model. Pure functions, no I/O, no allocation
 * unless a function says so; callable from any thread.
 *
 * A command is one 16-byte SMMUv3 command-queue entry: two 64-bit words.
 * struct cmdq_cmd holds them in CPU byte order; the ring and the kernel ABI
 * carry them little-endian, converted only by cmdq_cmd_from_le() and
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

#define CMDQ_ENT_SIZE 16

struct cmdq_cmd {
	uint64_t d[2]; /* dword0, dword1 in CPU byte order */
};

_Static_assert(sizeof(struct cmdq_cmd) == CMDQ_ENT_SIZE, "cmdq entry size");

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
};

/* A caps profile matching QEMU's emulated SMMUv3 (the traces' source). */
extern const struct cmdq_caps cmdq_caps_qemu;
/* A caps profile with every optional feature present. */
extern const struct cmdq_caps cmdq_caps_full;

static inline uint8_t cmdq_cmd_opcode(const struct cmdq_cmd *c)
{
	return (uint8_t)(c->d[0] & 0xff);
}

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
 * cmdq_coalesce() - shorten the commands of one batch (one vSMMU, one
 * future ioctl) without changing what the batch invalidates.
 * @cmds: FORWARD commands, in ring order; rewritten in place.
 * @n:    how many.
 *
 * The batch is completed as a whole (every guest CMD_SYNC it covers is
 * signalled only after the whole batch completed), so commands may be
 * dropped or merged across guest SYNCs that the caller allowed into one
 * batch (see enum cmdq_order_class). Rules: exact duplicates dropped;
 * TLBI_NH_ALL and TLBI_NSNH_ALL supersede every earlier TLBI_NH_*;
 * TLBI_NH_ASID(a) supersedes earlier TLBI_NH_VA(a, ...); CFGI_CD_ALL(sid)
 * supersedes earlier CFGI_CD(sid, ...); VA ranges of one ASID merged only
 * when the merged range covers exactly their union or a correct superset.
 * The result invalidates a superset of the input.
 *
 * Return: the new count (<= @n).
 */
size_t cmdq_coalesce(struct cmdq_cmd *cmds, size_t n);

#endif
