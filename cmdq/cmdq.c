/* SPDX-License-Identifier: MIT */
/* Opcode table, byte order and classification. */
#include "cmdq/cmdq.h"
#include "cmdq/cmdq_i.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

/* On a little-endian host le64toh() is nothing: a plain 16-byte copy. */
static inline struct cmdq_cmd cmd_from_le(const void *le)
{
	struct cmdq_cmd c;

	memcpy(&c, le, sizeof(c));
	c.d[0] = le64toh(c.d[0]);
	c.d[1] = le64toh(c.d[1]);
	return c;
}

struct cmdq_cmd cmdq_cmd_from_le(const void *le)
{
	return cmd_from_le(le);
}

void cmdq_cmd_to_le(const struct cmdq_cmd *c, void *le)
{
	uint64_t w[2] = { htole64(c->d[0]), htole64(c->d[1]) };

	memcpy(le, w, sizeof(w));
}

#define F_(e, n, w, s, b, a)                                            \
	[CMDQ_F_##e] = {                                                \
		.name = n, .word = w, .shift = s, .width = b, .addr = a \
	},
const struct cmdq_field_desc cmdq_fields[CMDQ_F_COUNT] = { CMDQ_FIELD_LIST_(
	F_) };
#undef F_

/*
 * QEMU 7.2's emulated SMMUv3 as the traces' guest saw it: ASID16, no
 * substreams (QEMU 7.2 leaves IDR1.SSIDSIZE 0), 16-bit StreamIDs, RIL (the
 * guest driver reports RANGE_INV), no ATS, no DS; the 4K and 64K granules.
 */
const struct cmdq_caps cmdq_caps_qemu = {
	.asid_bits = 16,
	.ssid_bits = 0,
	.sid_bits = 16,
	.range_inv = true,
	.gran4k = true,
	.gran64k = true,
};

const struct cmdq_caps cmdq_caps_full = {
	.asid_bits = 16,
	.ssid_bits = 20,
	.sid_bits = 32,
	.range_inv = true,
	.ats = true,
	.ds = true,
	.gran4k = true,
	.gran16k = true,
	.gran64k = true,
};

/* Which stream identifiers an opcode carries (struct cmdq_info). */
enum { ID_SID = 1 << 0, ID_SSID = 1 << 1, ID_SSID_IF_SSV = 1 << 2 };

struct op_info {
	const char *name;
	const char *res0; /* reason when bits outside the allowed ones are set */
	enum cmdq_class cls;
	uint8_t order; /* enum cmdq_order_class, FORWARD only */
	uint8_t ids; /* ID_* */
};

#define OP_(op, c, o, i)                                      \
	[CMDQ_OP_##op] = { .name = #op,                       \
			   .res0 = #op ": reserved bits set", \
			   .cls = CMDQ_CLASS_##c,             \
			   .order = o,                        \
			   .ids = i }
static const struct op_info op_table[256] = {
	OP_(PREFETCH_CONFIG, NOP, 0, ID_SID | ID_SSID_IF_SSV),
	OP_(PREFETCH_ADDR, NOP, 0, ID_SID | ID_SSID_IF_SSV),
	OP_(CFGI_STE, VMM_ONLY, 0, ID_SID),
	OP_(CFGI_STE_RANGE, VMM_ONLY, 0, ID_SID),
	OP_(CFGI_CD, FORWARD, CMDQ_ORDER_CFG, ID_SID | ID_SSID),
	OP_(CFGI_CD_ALL, FORWARD, CMDQ_ORDER_CFG, ID_SID),
	OP_(CFGI_VMS_PIDM, ILLEGAL, 0, 0),
	OP_(TLBI_NH_ALL, FORWARD, CMDQ_ORDER_TLB, 0),
	OP_(TLBI_NH_ASID, FORWARD, CMDQ_ORDER_TLB, 0),
	OP_(TLBI_NH_VA, FORWARD, CMDQ_ORDER_TLB, 0),
	OP_(TLBI_NH_VAA, FORWARD, CMDQ_ORDER_TLB, 0),
	OP_(TLBI_EL3_ALL, ILLEGAL, 0, 0),
	OP_(TLBI_EL3_VA, ILLEGAL, 0, 0),
	OP_(TLBI_EL2_ALL, ILLEGAL, 0, 0),
	OP_(TLBI_EL2_ASID, ILLEGAL, 0, 0),
	OP_(TLBI_EL2_VA, ILLEGAL, 0, 0),
	OP_(TLBI_EL2_VAA, ILLEGAL, 0, 0),
	OP_(TLBI_S12_VMALL, ILLEGAL, 0, 0),
	OP_(TLBI_S2_IPA, ILLEGAL, 0, 0),
	OP_(TLBI_NSNH_ALL, FORWARD, CMDQ_ORDER_TLB, 0),
	OP_(ATC_INV, FORWARD, CMDQ_ORDER_ATC, ID_SID | ID_SSID_IF_SSV),
	OP_(PRI_RESP, ILLEGAL, 0, ID_SID | ID_SSID_IF_SSV),
	OP_(RESUME, ILLEGAL, 0, ID_SID),
	OP_(STALL_TERM, ILLEGAL, 0, ID_SID),
	OP_(SYNC, SYNC, 0, 0),
};
#undef OP_

const char *cmdq_op_name(uint8_t op)
{
	return op_table[op].name;
}

int cmdq_op_from_name(const char *name, size_t len)
{
	for (unsigned int op = 0; op < 256; op++) {
		const char *n = op_table[op].name;

		if (n && strlen(n) == len && !memcmp(n, name, len))
			return (int)op;
	}
	return -EINVAL;
}

static inline enum cmdq_class classify(const struct op_info *oi,
				       const struct cmdq_cmd *c)
{
	/* Unknown opcodes have a zeroed entry: name NULL. */
	if (!oi->name || cmdq_ssec(c))
		return CMDQ_CLASS_ILLEGAL;
	if (oi->cls == CMDQ_CLASS_SYNC && cmdq_sync_cs(c) == 3)
		return CMDQ_CLASS_ILLEGAL;
	return oi->cls;
}

enum cmdq_class cmdq_classify(const struct cmdq_cmd *c)
{
	return classify(&op_table[cmdq_cmd_opcode(c)], c);
}

unsigned int cmdq_order_class(const struct cmdq_cmd *c)
{
	if (cmdq_classify(c) != CMDQ_CLASS_FORWARD)
		return 0;
	return op_table[cmdq_cmd_opcode(c)].order;
}

/*
 * Validation state: the bits allowed so far and the first reason found.
 * Specific reasons (a gated field in use) win over the generic RES0 one.
 */
struct vstate {
	const struct cmdq_cmd *c;
	uint64_t allowed[2];
	const char *why;
};

/*
 * allow_bits(), allow() and check() are always inlined: called with a
 * constant field, the field table lookups and masks fold to constants.
 * Out of line (as gcc -O2 left them) they were more than half of the
 * validation's instructions (consumer-drive, callgrind).
 */
static inline __attribute__((always_inline)) void
allow_bits(struct vstate *v, unsigned int word, uint64_t mask, bool gate,
	   const char *why_if_used)
{
	if (gate)
		v->allowed[word] |= mask;
	else if (!v->why && (v->c->d[word] & mask))
		v->why = why_if_used;
}

static inline __attribute__((always_inline)) void
allow(struct vstate *v, enum cmdq_field f, bool gate, const char *why_if_used)
{
	allow_bits(v, cmdq_field_pos_[f].word, cmdq_field_mask(f), gate,
		   why_if_used);
}

static inline __attribute__((always_inline)) void
check(struct vstate *v, bool bad, const char *why)
{
	if (!v->why && bad)
		v->why = why;
}

/* TLBI_NH_VA / TLBI_NH_VAA: address, leaf, and the range fields. */
static void allow_tlbi_va(struct vstate *v, const struct cmdq_caps *caps)
{
	const char *no_ril = "TLBI: range fields (NUM/SCALE/TG/TTL) need RIL";
	/*
	 * SCALE is d0[24:20] (0..31) with RIL; its sixth bit, d0[25]
	 * (SCALE >= 32), exists only with DS (SMMUv3 4.4.1.1, facts 4.3).
	 */
	uint64_t scale_top = 1ull << 25;
	struct cmdq_tlbi_range r = cmdq_tlbi_range_get(v->c);

	allow(v, CMDQ_F_LEAF, true, NULL);
	allow(v, CMDQ_F_ADDR, true, NULL);
	allow(v, CMDQ_F_NUM, caps->range_inv, no_ril);
	allow_bits(v, 0, cmdq_field_mask(CMDQ_F_SCALE) & ~scale_top,
		   caps->range_inv, no_ril);
	allow_bits(v, 0, scale_top, caps->range_inv && caps->ds,
		   caps->range_inv ? "TLBI: SCALE >= 32 needs DS" : no_ril);
	allow(v, CMDQ_F_TG, caps->range_inv, no_ril);
	allow(v, CMDQ_F_TTL, caps->range_inv, no_ril);

	check(v, !r.tg && (r.num || r.scale || r.ttl),
	      "TLBI: NUM/SCALE/TTL set with TG = 0");
	check(v, r.tg && !r.num && !r.scale && !r.ttl,
	      "TLBI: TG != 0 with NUM = SCALE = TTL = 0 is reserved");
	check(v, r.tg == CMDQ_TG_16K && r.ttl == 1 && !caps->ds,
	      "TLBI: TG = 16K with TTL = 1 needs DS");
	check(v, !cmdq_granule_ok_(caps, r.tg),
	      "TLBI: TG names a granule the host does not support");
}

static void allow_asid(struct vstate *v, const struct cmdq_caps *caps)
{
	uint64_t m = cmdq_field_mask(CMDQ_F_ASID), ok = cmdq_asid_ok_(caps);

	allow_bits(v, 0, ok, true, NULL);
	allow_bits(v, 0, m & ~ok, false,
		   "TLBI: ASID wider than the host's ASID size");
}

static void allow_forward(struct vstate *v, const struct cmdq_caps *caps)
{
	const char *no_ss = "substream fields need host SSID support";
	bool ss = caps->ssid_bits != 0;

	switch (cmdq_cmd_opcode(v->c)) {
	case CMDQ_OP_TLBI_NSNH_ALL:
		break;
	case CMDQ_OP_TLBI_NH_VA:
		allow_tlbi_va(v, caps);
		/* fall through */
	case CMDQ_OP_TLBI_NH_ASID:
		allow_asid(v, caps);
		/* fall through */
	case CMDQ_OP_TLBI_NH_ALL:
		allow(v, CMDQ_F_VMID, true, NULL);
		break;
	case CMDQ_OP_TLBI_NH_VAA:
		allow_tlbi_va(v, caps);
		allow(v, CMDQ_F_VMID, true, NULL);
		break;
	case CMDQ_OP_ATC_INV:
		check(v, !caps->ats, "ATC_INV: host has no ATS");
		check(v, cmdq_atc_size(v->c) > CMDQ_ATC_INV_SIZE_ALL,
		      "ATC_INV: Size > 52");
		allow(v, CMDQ_F_SID, true, NULL);
		allow(v, CMDQ_F_ADDR, true, NULL);
		allow(v, CMDQ_F_ATC_SIZE, true, NULL);
		allow(v, CMDQ_F_SSV, ss, no_ss);
		allow(v, CMDQ_F_SSID, ss, no_ss);
		allow(v, CMDQ_F_GLOBAL, ss, no_ss);
		break;
	case CMDQ_OP_CFGI_CD:
		allow(v, CMDQ_F_LEAF, true, NULL);
		allow(v, CMDQ_F_SSID, ss, no_ss);
		/* fall through */
	case CMDQ_OP_CFGI_CD_ALL:
		allow(v, CMDQ_F_SID, true, NULL);
		break;
	}
}

/* cmdq_validate() of @c, whose op_table entry is @oi and class @cls. */
static enum cmdq_cerror validate(const struct cmdq_caps *caps,
				 const struct cmdq_cmd *c,
				 const struct op_info *oi, enum cmdq_class cls,
				 const char **ret_reason)
{
	uint8_t op = cmdq_cmd_opcode(c);
	struct vstate v = { .c = c, .allowed = { cmdq_field_mask(CMDQ_F_OP) } };

	switch (cls) {
	case CMDQ_CLASS_ILLEGAL:
		if (!oi->name)
			v.why = "unknown opcode";
		else if (cmdq_ssec(c))
			v.why = "SSEC set (Secure command on a Non-secure queue)";
		else if (oi->cls == CMDQ_CLASS_SYNC)
			v.why = "SYNC: CS = 3 is reserved";
		else
			v.why = "opcode not accepted for a nested guest";
		break;
	case CMDQ_CLASS_VMM_ONLY:
		v.why = "handled by the VMM (nested STE), illegal in a ring";
		break;
	case CMDQ_CLASS_SYNC:
		allow(&v, CMDQ_F_CS, true, NULL);
		allow(&v, CMDQ_F_MSH, true, NULL);
		allow(&v, CMDQ_F_MSIATTR, true, NULL);
		allow(&v, CMDQ_F_MSIDATA, true, NULL);
		allow(&v, CMDQ_F_MSIADDR, true, NULL);
		break;
	case CMDQ_CLASS_NOP:
		allow(&v, CMDQ_F_SID, true, NULL);
		allow(&v, CMDQ_F_SSV, true, NULL);
		allow(&v, CMDQ_F_SSID, true, NULL);
		if (op == CMDQ_OP_PREFETCH_ADDR) {
			allow(&v, CMDQ_F_PREFETCH_SIZE, true, NULL);
			allow(&v, CMDQ_F_ADDR, true, NULL);
		}
		break;
	case CMDQ_CLASS_FORWARD:
		allow_forward(&v, caps);
		break;
	}
	if (!v.why && ((c->d[0] & ~v.allowed[0]) || (c->d[1] & ~v.allowed[1])))
		v.why = oi->res0;
	if (!v.why)
		return CMDQ_CERROR_NONE;
	if (ret_reason)
		*ret_reason = v.why;
	return CMDQ_CERROR_ILL;
}

enum cmdq_cerror cmdq_validate(const struct cmdq_caps *caps,
			       const struct cmdq_cmd *c,
			       const char **ret_reason)
{
	const struct op_info *oi = &op_table[cmdq_cmd_opcode(c)];

	return validate(caps, c, oi, classify(oi, c), ret_reason);
}

/* Everything of struct cmdq_info but the CERROR code, from one lookup. */
static inline struct cmdq_info
info_of(const struct cmdq_cmd *c, const struct op_info *oi, enum cmdq_class cls)
{
	struct cmdq_info info = {
		.op = cmdq_cmd_opcode(c),
		.cls = (uint8_t)cls,
		.order = cls == CMDQ_CLASS_FORWARD ? oi->order : 0,
	};

	if (oi->ids & ID_SID) {
		info.flags |= CMDQ_INFO_SID;
		info.sid = (uint32_t)cmdq_sid(c);
	}
	if ((oi->ids & ID_SSID) ||
	    ((oi->ids & ID_SSID_IF_SSV) && cmdq_ssv(c))) {
		info.flags |= CMDQ_INFO_SSID;
		info.ssid = (uint32_t)cmdq_ssid(c);
	}
	return info;
}

void cmdq_info_unvalidated(const struct cmdq_cmd *c, struct cmdq_info *ret)
{
	const struct op_info *oi = &op_table[cmdq_cmd_opcode(c)];

	*ret = info_of(c, oi, classify(oi, c));
}

/*
 * One table lookup gives class, ordering class and which identifiers the
 * opcode has; validation reuses the class instead of classifying again.
 * The common commands take cmdq_decode_fast_() (cmdq.h) and carry no
 * identifiers.
 */
/*
 * Out of line, so that the fast path of cmdq_decode() saves no registers
 * for it (the prologue was a quarter of its instructions).
 */
static __attribute__((noinline)) enum cmdq_cerror
decode_slow(const struct cmdq_caps *caps, const struct cmdq_cmd *c,
	    struct cmdq_info *ret_info)
{
	const struct op_info *oi = &op_table[cmdq_cmd_opcode(c)];
	enum cmdq_class cls = classify(oi, c);
	struct cmdq_info info = info_of(c, oi, cls);

	info.cerror = (uint8_t)validate(caps, c, oi, cls, NULL);
	*ret_info = info;
	return (enum cmdq_cerror)info.cerror;
}

enum cmdq_cerror cmdq_decode_full_(const struct cmdq_caps *caps,
				   const void *le_entry,
				   struct cmdq_cmd *ret_cmd,
				   struct cmdq_info *ret_info)
{
	struct cmdq_cmd c = cmd_from_le(le_entry);
	int cls = cmdq_decode_fast_(caps, &c);

	*ret_cmd = c;
	if (cls < 0)
		return decode_slow(caps, ret_cmd, ret_info);
	*ret_info = (struct cmdq_info){
		.op = cmdq_cmd_opcode(&c),
		.cls = (uint8_t)cls,
		.order = cls == CMDQ_CLASS_FORWARD ? CMDQ_ORDER_TLB : 0,
	};
	return CMDQ_CERROR_NONE;
}

/*
 * The masks are cmdq_validate()'s allowed bits for these opcodes (see
 * allow_tlbi_va() and allow_asid()), folded once per set of caps instead
 * of once per command: a TLBI_NH_VA spent ~10 instructions on them.
 */
void cmdq_caps_prepare(struct cmdq_caps *caps)
{
	const uint64_t scale_top = 1ull << 25; /* SCALE >= 32 needs DS */
	uint64_t a0 = cmdq_field_mask(CMDQ_F_OP) | cmdq_field_mask(CMDQ_F_VMID);
	uint64_t a1 = cmdq_field_mask(CMDQ_F_LEAF) |
		      cmdq_field_mask(CMDQ_F_ADDR);
	uint64_t va_a0 = a0;
	uint16_t ok = 1; /* TG 0 (no range) only with TTL 0 */

	if (caps->range_inv) {
		va_a0 |= cmdq_field_mask(CMDQ_F_NUM) |
			 (cmdq_field_mask(CMDQ_F_SCALE) & ~scale_top) |
			 (caps->ds ? scale_top : 0);
		a1 |= cmdq_field_mask(CMDQ_F_TG) | cmdq_field_mask(CMDQ_F_TTL);
	}
	for (unsigned int tg = 1; tg < 4; tg++) {
		for (unsigned int ttl = 0; ttl < 4; ttl++) {
			if (!cmdq_granule_ok_(caps, tg) ||
			    (tg == CMDQ_TG_16K && ttl == 1 && !caps->ds))
				continue;
			ok |= (uint16_t)(1u << (tg << 2 | ttl));
		}
	}
	caps->nh_va_a0_ = va_a0 | cmdq_asid_ok_(caps);
	caps->nh_vaa_a0_ = va_a0;
	caps->nh_asid_a0_ = a0 | cmdq_asid_ok_(caps);
	caps->va_a1_ = a1;
	caps->tg_ttl_ok_ = ok;
}

struct cmdq_tlbi_range cmdq_tlbi_range_get(const struct cmdq_cmd *c)
{
	struct cmdq_tlbi_range r = {
		.num = (uint8_t)cmdq_tlbi_num(c),
		.scale = (uint8_t)cmdq_tlbi_scale(c),
		.tg = (uint8_t)cmdq_tlbi_tg(c),
		.ttl = (uint8_t)cmdq_tlbi_ttl(c),
	};

	return r;
}

/* One (field, value) of a builder; the list is applied in order. */
struct fset {
	enum cmdq_field f;
	uint64_t v;
};

static struct cmdq_cmd build(uint8_t op, const struct fset *fs, size_t n,
			     const struct cmdq_tlbi_range *r)
{
	struct cmdq_cmd c = { { op, 0 } };

	for (size_t i = 0; i < n; i++)
		cmdq_set(&c, fs[i].f, fs[i].v);
	if (r) {
		cmdq_set(&c, CMDQ_F_NUM, r->num);
		cmdq_set(&c, CMDQ_F_SCALE, r->scale);
		cmdq_set(&c, CMDQ_F_TG, r->tg);
		cmdq_set(&c, CMDQ_F_TTL, r->ttl);
	}
	return c;
}

/* BUILD_(op, range, { CMDQ_F_x, v }, ...): a command with those fields. */
#define BUILD_(op, r, ...)                                        \
	build(CMDQ_OP_##op, (const struct fset[]){ __VA_ARGS__ }, \
	      sizeof((const struct fset[]){ __VA_ARGS__ }) /      \
		      sizeof(struct fset),                        \
	      r)

struct cmdq_cmd cmdq_build_prefetch_config(uint32_t sid, bool ssv,
					   uint32_t ssid)
{
	return BUILD_(PREFETCH_CONFIG, NULL, { CMDQ_F_SID, sid },
		      { CMDQ_F_SSV, ssv }, { CMDQ_F_SSID, ssid });
}

struct cmdq_cmd cmdq_build_prefetch_addr(uint32_t sid, bool ssv, uint32_t ssid,
					 uint64_t addr, uint8_t size)
{
	return BUILD_(PREFETCH_ADDR, NULL, { CMDQ_F_SID, sid },
		      { CMDQ_F_SSV, ssv }, { CMDQ_F_SSID, ssid },
		      { CMDQ_F_ADDR, addr }, { CMDQ_F_PREFETCH_SIZE, size });
}

struct cmdq_cmd cmdq_build_cfgi_ste(uint32_t sid, bool leaf)
{
	return BUILD_(CFGI_STE, NULL, { CMDQ_F_SID, sid },
		      { CMDQ_F_LEAF, leaf });
}

struct cmdq_cmd cmdq_build_cfgi_ste_range(uint32_t sid, uint8_t range)
{
	return BUILD_(CFGI_STE_RANGE, NULL, { CMDQ_F_SID, sid },
		      { CMDQ_F_RANGE, range });
}

struct cmdq_cmd cmdq_build_cfgi_all(void)
{
	return cmdq_build_cfgi_ste_range(0, CMDQ_CFGI_RANGE_ALL);
}

struct cmdq_cmd cmdq_build_cfgi_cd(uint32_t sid, uint32_t ssid, bool leaf)
{
	return BUILD_(CFGI_CD, NULL, { CMDQ_F_SID, sid }, { CMDQ_F_SSID, ssid },
		      { CMDQ_F_LEAF, leaf });
}

struct cmdq_cmd cmdq_build_cfgi_cd_all(uint32_t sid)
{
	return BUILD_(CFGI_CD_ALL, NULL, { CMDQ_F_SID, sid });
}

struct cmdq_cmd cmdq_build_tlbi_nh_all(uint16_t vmid)
{
	return BUILD_(TLBI_NH_ALL, NULL, { CMDQ_F_VMID, vmid });
}

struct cmdq_cmd cmdq_build_tlbi_nh_asid(uint16_t asid, uint16_t vmid)
{
	return BUILD_(TLBI_NH_ASID, NULL, { CMDQ_F_ASID, asid },
		      { CMDQ_F_VMID, vmid });
}

struct cmdq_cmd cmdq_build_tlbi_nh_va(uint16_t asid, uint16_t vmid, uint64_t va,
				      bool leaf,
				      const struct cmdq_tlbi_range *r)
{
	return BUILD_(TLBI_NH_VA, r, { CMDQ_F_ASID, asid },
		      { CMDQ_F_VMID, vmid }, { CMDQ_F_ADDR, va },
		      { CMDQ_F_LEAF, leaf });
}

struct cmdq_cmd cmdq_build_tlbi_nh_vaa(uint16_t vmid, uint64_t va, bool leaf,
				       const struct cmdq_tlbi_range *r)
{
	return BUILD_(TLBI_NH_VAA, r, { CMDQ_F_VMID, vmid },
		      { CMDQ_F_ADDR, va }, { CMDQ_F_LEAF, leaf });
}

struct cmdq_cmd cmdq_build_tlbi_el2_all(void)
{
	return build(CMDQ_OP_TLBI_EL2_ALL, NULL, 0, NULL);
}

struct cmdq_cmd cmdq_build_tlbi_el2_asid(uint16_t asid)
{
	return BUILD_(TLBI_EL2_ASID, NULL, { CMDQ_F_ASID, asid });
}

struct cmdq_cmd cmdq_build_tlbi_el2_va(uint16_t asid, uint64_t va, bool leaf,
				       const struct cmdq_tlbi_range *r)
{
	return BUILD_(TLBI_EL2_VA, r, { CMDQ_F_ASID, asid },
		      { CMDQ_F_ADDR, va }, { CMDQ_F_LEAF, leaf });
}

struct cmdq_cmd cmdq_build_tlbi_el2_vaa(uint64_t va, bool leaf,
					const struct cmdq_tlbi_range *r)
{
	return BUILD_(TLBI_EL2_VAA, r, { CMDQ_F_ADDR, va },
		      { CMDQ_F_LEAF, leaf });
}

struct cmdq_cmd cmdq_build_tlbi_s12_vmall(uint16_t vmid)
{
	return BUILD_(TLBI_S12_VMALL, NULL, { CMDQ_F_VMID, vmid });
}

struct cmdq_cmd cmdq_build_tlbi_s2_ipa(uint16_t vmid, uint64_t ipa, bool leaf,
				       const struct cmdq_tlbi_range *r)
{
	return BUILD_(TLBI_S2_IPA, r, { CMDQ_F_VMID, vmid },
		      { CMDQ_F_IPA, ipa }, { CMDQ_F_LEAF, leaf });
}

struct cmdq_cmd cmdq_build_tlbi_nsnh_all(void)
{
	return build(CMDQ_OP_TLBI_NSNH_ALL, NULL, 0, NULL);
}

struct cmdq_cmd cmdq_build_atc_inv(uint32_t sid, bool ssv, uint32_t ssid,
				   bool global, uint64_t addr, uint8_t size)
{
	return BUILD_(ATC_INV, NULL, { CMDQ_F_SID, sid }, { CMDQ_F_SSV, ssv },
		      { CMDQ_F_SSID, ssid }, { CMDQ_F_GLOBAL, global },
		      { CMDQ_F_ADDR, addr }, { CMDQ_F_ATC_SIZE, size });
}

struct cmdq_cmd cmdq_build_pri_resp(uint32_t sid, bool ssv, uint32_t ssid,
				    uint16_t grpid, uint8_t resp)
{
	return BUILD_(PRI_RESP, NULL, { CMDQ_F_SID, sid }, { CMDQ_F_SSV, ssv },
		      { CMDQ_F_SSID, ssid }, { CMDQ_F_PRI_GRPID, grpid },
		      { CMDQ_F_PRI_RESP, resp });
}

struct cmdq_cmd cmdq_build_resume(uint32_t sid, uint8_t resp, uint16_t stag)
{
	return BUILD_(RESUME, NULL, { CMDQ_F_SID, sid },
		      { CMDQ_F_RESUME_RESP, resp }, { CMDQ_F_STAG, stag });
}

struct cmdq_cmd cmdq_build_stall_term(uint32_t sid)
{
	return BUILD_(STALL_TERM, NULL, { CMDQ_F_SID, sid });
}

struct cmdq_cmd cmdq_build_sync(uint8_t cs, uint8_t msh, uint8_t msiattr,
				uint32_t msidata, uint64_t msiaddr)
{
	return BUILD_(SYNC, NULL, { CMDQ_F_CS, cs }, { CMDQ_F_MSH, msh },
		      { CMDQ_F_MSIATTR, msiattr }, { CMDQ_F_MSIDATA, msidata },
		      { CMDQ_F_MSIADDR, msiaddr });
}
