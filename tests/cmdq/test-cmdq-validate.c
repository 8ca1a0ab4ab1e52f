/* SPDX-License-Identifier: MIT */
/*
 * cmdq: classification and validation. The allowed-bit masks here are
 * written out by hand from the facts doc (section 4.3 and 5), independently
 * of cmdq.c's field table, so a wrong field position fails here.
 */
#include "cmdq/cmdq.h"
#include "tests/harness.h"

/* _validate() raw; validate() must pass; validate_err() must fail (ILL). */
static enum cmdq_cerror _validate(const struct cmdq_caps *caps, uint64_t d0,
				  uint64_t d1, const char **why)
{
	struct cmdq_cmd c = { { d0, d1 } };

	return cmdq_validate(caps, &c, why);
}

#define validate(caps, d0, d1)                                             \
	do {                                                               \
		const char *why_ = "(none)";                               \
		enum cmdq_cerror e_ = _validate(caps, d0, d1, &why_);      \
		if (e_ != CMDQ_CERROR_NONE)                                \
			t_report(__FILE__, __LINE__,                       \
				 "%#" PRIx64 ":%#" PRIx64 " rejected: %s", \
				 (uint64_t)(d0), (uint64_t)(d1), why_);    \
		ASSERT_EQ(e_, CMDQ_CERROR_NONE);                           \
	} while (0)

#define validate_err(caps, d0, d1)                                          \
	do {                                                                \
		const char *why_ = NULL;                                    \
		ASSERT_EQ(_validate(caps, d0, d1, &why_), CMDQ_CERROR_ILL); \
		ASSERT_NONNULL(why_);                                       \
		ASSERT_GT(strlen(why_), 5);                                 \
	} while (0)

static const struct cmdq_caps caps_small = {
	.asid_bits = 8,
	.sid_bits = 8,
	.gran4k = true,
};

TEST(classify_every_opcode)
{
	for (unsigned int op = 0; op < 256; op++) {
		enum cmdq_class want = CMDQ_CLASS_ILLEGAL;
		struct cmdq_cmd c = { { op, 0 } };

		switch (op) {
		case 0x01:
		case 0x02:
			want = CMDQ_CLASS_NOP;
			break;
		case 0x03:
		case 0x04:
			want = CMDQ_CLASS_VMM_ONLY;
			break;
		case 0x05:
		case 0x06:
		case 0x10:
		case 0x11:
		case 0x12:
		case 0x13:
		case 0x30:
		case 0x40:
			want = CMDQ_CLASS_FORWARD;
			break;
		case 0x46:
			want = CMDQ_CLASS_SYNC;
			break;
		}
		EXPECT_EQ(cmdq_classify(&c), want);
		/* SSEC (d0 bit 10) makes anything illegal. */
		c.d[0] |= 1u << 10;
		EXPECT_EQ(cmdq_classify(&c), CMDQ_CLASS_ILLEGAL);
	}
}

TEST(classify_sync_cs)
{
	/* CS at d0[13:12]: 0, 1, 2 fine, 3 reserved. */
	const uint64_t cs[4] = { 0x46, 0x1046, 0x2046, 0x3046 };

	for (unsigned int i = 0; i < 3; i++) {
		struct cmdq_cmd c = { { cs[i], 0 } };

		ASSERT_EQ(cmdq_classify(&c), CMDQ_CLASS_SYNC);
		validate(&cmdq_caps_qemu, cs[i], 0);
	}
	struct cmdq_cmd c3 = { { cs[3], 0 } };

	ASSERT_EQ(cmdq_classify(&c3), CMDQ_CLASS_ILLEGAL);
	validate_err(&cmdq_caps_full, cs[3], 0);
}

TEST(op_names)
{
	ASSERT_STREQ(cmdq_op_name(0x12), "TLBI_NH_VA");
	ASSERT_STREQ(cmdq_op_name(0x46), "SYNC");
	ASSERT_STREQ(cmdq_op_name(0x04), "CFGI_STE_RANGE");
	ASSERT_NULL(cmdq_op_name(0x08));
	ASSERT_NULL(cmdq_op_name(0xff));
	ASSERT_EQ(cmdq_op_from_name("ATC_INV", 7), 0x40);
	ASSERT_EQ(cmdq_op_from_name("ATC_INVX", 7), 0x40);
	ASSERT_EQ(cmdq_op_from_name("ATC_IN", 6), -EINVAL);
	for (unsigned int op = 0; op < 256; op++) {
		const char *n = cmdq_op_name((uint8_t)op);

		if (n)
			EXPECT_EQ(cmdq_op_from_name(n, strlen(n)), (int)op);
	}
}

TEST(order_class)
{
	const struct {
		uint64_t d0;
		unsigned int cls;
	} t[] = {
		{ 0x10, CMDQ_ORDER_TLB },
		{ 0x11, CMDQ_ORDER_TLB },
		{ 0x12, CMDQ_ORDER_TLB },
		{ 0x13, CMDQ_ORDER_TLB },
		{ 0x30, CMDQ_ORDER_TLB },
		{ 0x05, CMDQ_ORDER_CFG },
		{ 0x06, CMDQ_ORDER_CFG },
		{ 0x40, CMDQ_ORDER_ATC },
		{ 0x46, 0 },
		{ 0x03, 0 },
		{ 0x01, 0 },
		{ 0x20, 0 },
		{ 0x412, 0 }, /* SSEC */
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct cmdq_cmd c = { { t[i].d0, 0 } };

		EXPECT_EQ(cmdq_order_class(&c), t[i].cls);
	}
}

/* Every opcode that is not FORWARD/SYNC/NOP fails whatever its bits. */
TEST(validate_rejects_non_forwarded)
{
	for (unsigned int op = 0; op < 256; op++) {
		struct cmdq_cmd c = { { op, 0 } };
		enum cmdq_class k = cmdq_classify(&c);

		if (k == CMDQ_CLASS_ILLEGAL || k == CMDQ_CLASS_VMM_ONLY)
			validate_err(&cmdq_caps_full, op, 0);
		else
			validate(&cmdq_caps_full, op, 0);
	}
}

struct bitcase {
	const char *what;
	const struct cmdq_caps *caps;
	uint64_t base[2]; /* a valid command */
	uint64_t allowed[2]; /* bits that may be set (opcode bits excluded) */
};

/* Hand-computed from facts 4.3 / 5; see the comments for the fields. */
static const struct bitcase bitcases[] = {
	{ "NSNH_ALL full", &cmdq_caps_full, { 0x30, 0 }, { 0xff, 0 } },
	/* VMID d0[47:32] */
	{ "NH_ALL full",
	  &cmdq_caps_full,
	  { 0x10, 0 },
	  { 0x0000ffff000000ffull, 0 } },
	/* + ASID d0[63:48] */
	{ "NH_ASID full",
	  &cmdq_caps_full,
	  { 0x11, 0 },
	  { 0xffffffff000000ffull, 0 } },
	{ "NH_ASID asid8",
	  &caps_small,
	  { 0x11, 0 },
	  { 0x00ffffff000000ffull, 0 } },
	/* + NUM d0[16:12], SCALE d0[25:20] (DS); d1 LEAF, TTL, TG,
	 * VA[63:12]. Base: TG=4K NUM=1 (a valid range). */
	{ "NH_VA full",
	  &cmdq_caps_full,
	  { 0x0001000000001012ull, 0x400 },
	  { 0xffffffff03f1f0ffull, 0xffffffffffffff01ull } },
	/* No DS: SCALE is d0[24:20]; its sixth bit (d0 bit 25) not allowed
	 * (SMMUv3 4.4.1.1, facts 4.3 "SCALE bit5 only with DS"). */
	{ "NH_VA qemu",
	  &cmdq_caps_qemu,
	  { 0x0001000000001012ull, 0x400 },
	  { 0xffffffff01f1f0ffull, 0xffffffffffffff01ull } },
	/* No RIL: no NUM/SCALE/TG/TTL; 8-bit ASID. */
	{ "NH_VA small",
	  &caps_small,
	  { 0x0001000000000012ull, 0x1000 },
	  { 0x00ffffff000000ffull, 0xfffffffffffff001ull } },
	{ "NH_VAA full",
	  &cmdq_caps_full,
	  { 0x1013, 0x400 },
	  { 0x0000ffff03f1f0ffull, 0xffffffffffffff01ull } },
	{ "NH_VAA small",
	  &caps_small,
	  { 0x13, 0 },
	  { 0x0000ffff000000ffull, 0xfffffffffffff001ull } },
	/* SID d0[63:32], SSID d0[31:12], SSV b11, GLOBAL b9; d1 SIZE[5:0],
	 * ADDR[63:12]. */
	{ "ATC_INV full",
	  &cmdq_caps_full,
	  { 0x40, 0 },
	  { 0xfffffffffffffaffull, 0xfffffffffffff03full } },
	{ "ATC_INV nossid",
	  &(const struct cmdq_caps){ .ats = true },
	  { 0x40, 0 },
	  { 0xffffffff000000ffull, 0xfffffffffffff03full } },
	/* SID, SSID (no SSV); d1 LEAF */
	{ "CFGI_CD full",
	  &cmdq_caps_full,
	  { 0x05, 0 },
	  { 0xfffffffffffff0ffull, 1 } },
	{ "CFGI_CD qemu",
	  &cmdq_caps_qemu,
	  { 0x05, 0 },
	  { 0xffffffff000000ffull, 1 } },
	{ "CFGI_CD_ALL qemu",
	  &cmdq_caps_qemu,
	  { 0x06, 0 },
	  { 0xffffffff000000ffull, 0 } },
	/* CS[13:12] MSH[23:22] MSIATTR[27:24] MSIDATA[63:32]; MSIADDR[51:2] */
	{ "SYNC",
	  &cmdq_caps_qemu,
	  { 0x46, 0 },
	  { 0xffffffff0fc030ffull, 0x000ffffffffffffcull } },
	/* SID, SSID, SSV */
	{ "PREFETCH_CONFIG",
	  &cmdq_caps_qemu,
	  { 0x01, 0 },
	  { 0xfffffffffffff8ffull, 0 } },
	/* + d1 SIZE[4:0], ADDR[63:12] */
	{ "PREFETCH_ADDR",
	  &cmdq_caps_qemu,
	  { 0x02, 0 },
	  { 0xfffffffffffff8ffull, 0xfffffffffffff01full } },
};

TEST(validate_every_bit)
{
	for (size_t i = 0; i < sizeof(bitcases) / sizeof(bitcases[0]); i++) {
		const struct bitcase *b = &bitcases[i];
		unsigned int bad = 0;

		validate(b->caps, b->base[0], b->base[1]);
		/* Bits 0-7 are the opcode: changing one is another command. */
		for (unsigned int bit = 8; bit < 128; bit++) {
			unsigned int w = bit / 64;
			uint64_t m = 1ull << (bit % 64);
			uint64_t d[2] = { b->base[0], b->base[1] };
			enum cmdq_cerror want = (b->allowed[w] & m) ?
							CMDQ_CERROR_NONE :
							CMDQ_CERROR_ILL;
			enum cmdq_cerror got;

			d[w] |= m;
			got = _validate(b->caps, d[0], d[1], NULL);
			if (got != want) {
				t_report(__FILE__, __LINE__,
					 "%s: bit %u: got %d want %d", b->what,
					 bit, got, want);
				bad++;
			}
		}
		EXPECT_EQ(bad, 0);
	}
}

TEST(validate_atc)
{
	/* SIZE d1[5:0]: 52 is "all", 53..63 illegal. */
	validate(&cmdq_caps_full, 0x40, 52);
	validate_err(&cmdq_caps_full, 0x40, 53);
	validate_err(&cmdq_caps_full, 0x40, 63);
	/* No ATS: illegal even when otherwise perfect. */
	validate_err(&cmdq_caps_qemu, 0x40, 0);
}

static const struct cmdq_caps caps_16k_nods = {
	.asid_bits = 16,
	.range_inv = true,
	.gran16k = true,
};

TEST(validate_range_rules)
{
	const struct cmdq_caps *f = &cmdq_caps_full;
	const struct cmdq_caps *q = &cmdq_caps_qemu;
	/* TLBI_NH_VA ASID 1: d0 base; NUM at <<12, SCALE at <<20. */
	const uint64_t va = 0x0001000000000012ull, vaa = 0x13;
	const uint64_t tg4k = 1 << 10, tg16k = 2 << 10, tg64k = 3 << 10;

	/* TG = 0: NUM, SCALE, TTL must be 0. */
	validate(f, va, 0x1000);
	validate_err(f, va | (1 << 12), 0x1000);
	validate_err(f, va | (1 << 20), 0x1000);
	validate_err(f, va, 0x1000 | (3 << 8));
	validate_err(f, vaa, 0x1000 | (1 << 8));
	/* TG != 0 with NUM = SCALE = TTL = 0: reserved. */
	validate_err(f, va, 0x1000 | tg4k);
	validate_err(f, vaa, 0x1000 | tg64k);
	validate(f, va, 0x1000 | tg4k | (3 << 8));
	validate(f, va | (1 << 20), 0x1000 | tg4k);
	/* TG = 16K TTL = 1 needs DS; TTL 2 does not. */
	validate(f, va | (1 << 12), tg16k | (1 << 8));
	validate_err(&caps_16k_nods, va | (1 << 12), tg16k | (1 << 8));
	validate(&caps_16k_nods, va | (1 << 12), tg16k | (2 << 8));
	/* TG must name a granule the host has: QEMU profile lacks 16K. */
	validate_err(q, va | (1 << 12), tg16k | (2 << 8));
	validate(q, va | (1 << 12), tg64k | (2 << 8));
	validate_err(&caps_small, va, 0x1000 | tg4k | (3 << 8));
	/* SCALE >= 32 (d0 bit 25) needs DS; 16..31 do not. */
	validate(f, va | (32u << 20), tg4k);
	validate(f, va | (39u << 20), tg4k);
	validate_err(q, va | (32u << 20), tg4k);
	validate(q, va | (16u << 20), tg4k);
	validate(q, va | (31u << 20), tg4k);
}

TEST(validate_reason_strings)
{
	const char *why = NULL;

	ASSERT_EQ(_validate(&cmdq_caps_qemu, 0x03, 0, &why), CMDQ_CERROR_ILL);
	ASSERT_NONNULL(strstr(why, "VMM"));
	ASSERT_EQ(_validate(&cmdq_caps_qemu, 0x99, 0, &why), CMDQ_CERROR_ILL);
	ASSERT_STREQ(why, "unknown opcode");
	ASSERT_EQ(_validate(&cmdq_caps_qemu, 0x40, 0, &why), CMDQ_CERROR_ILL);
	ASSERT_NONNULL(strstr(why, "ATS"));
	ASSERT_EQ(_validate(&cmdq_caps_qemu, 0x30, 2, &why), CMDQ_CERROR_ILL);
	ASSERT_STREQ(why, "TLBI_NSNH_ALL: reserved bits set");
	/* ret_reason untouched on success. */
	why = "keep";
	ASSERT_EQ(_validate(&cmdq_caps_qemu, 0x30, 0, &why), CMDQ_CERROR_NONE);
	ASSERT_STREQ(why, "keep");
	/* NULL reason pointer is allowed. */
	ASSERT_EQ(_validate(&cmdq_caps_qemu, 0x30, 2, NULL), CMDQ_CERROR_ILL);
}

TEST_HARNESS_MAIN
