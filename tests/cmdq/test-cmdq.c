/* SPDX-License-Identifier: MIT */
/*
 * cmdq: byte order of the 16-byte entry, builders and accessors against
 * constants computed by hand from the facts doc field table (section 5).
 */
#include "cmdq/cmdq.h"
#include "tests/harness.h"

TEST(cmd_le_roundtrip)
{
	/* Bytes as the guest writes them to its queue: little-endian. */
	const uint8_t le[16] = {
		0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
		0x01, 0x10, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00
	};
	struct cmdq_cmd c = cmdq_cmd_from_le(le);
	uint8_t out[16];

	ASSERT_EQ(c.d[0], 0x0001000000000012ull);
	ASSERT_EQ(c.d[1], 0x0000000100001001ull);
	ASSERT_EQ(cmdq_cmd_opcode(&c), CMDQ_OP_TLBI_NH_VA);
	cmdq_cmd_to_le(&c, out);
	ASSERT_EQ(memcmp(out, le, sizeof(le)), 0);
}

struct fv {
	enum cmdq_field f;
	uint64_t v;
};

struct pattern {
	const char *what;
	uint64_t d0, d1; /* hand-computed */
	struct cmdq_cmd built;
	struct fv fields[8]; /* decoded back; list ends at .f == CMDQ_F_OP */
};

#define P_(w, a, b, bld, ...)                                          \
	{                                                              \
		.what = w, .d0 = a, .d1 = b, .built = bld, .fields = { \
			__VA_ARGS__                                    \
		}                                                      \
	}

static void check_pattern(const struct pattern *p)
{
	struct cmdq_cmd c = { { p->d0, p->d1 } };

	if (p->built.d[0] != p->d0 || p->built.d[1] != p->d1)
		t_report(__FILE__, __LINE__,
			 "%s: built %#" PRIx64 ":%#" PRIx64 " want %#" PRIx64
			 ":%#" PRIx64,
			 p->what, p->built.d[0], p->built.d[1], p->d0, p->d1);
	EXPECT_EQ(p->built.d[0], p->d0);
	EXPECT_EQ(p->built.d[1], p->d1);
	EXPECT_EQ(cmdq_cmd_opcode(&c), p->d0 & 0xff);
	for (const struct fv *f = p->fields; f->f != CMDQ_F_OP; f++) {
		if (cmdq_get(&c, f->f) != f->v)
			t_report(__FILE__, __LINE__, "%s: field %s", p->what,
				 cmdq_fields[f->f].name);
		EXPECT_EQ(cmdq_get(&c, f->f), f->v);
	}
}

TEST(patterns_every_opcode)
{
	const struct cmdq_tlbi_range r_va = {
		.num = 3, .scale = 1, .tg = 1, .ttl = 3
	};
	const struct cmdq_tlbi_range r_ipa = { .num = 1, .tg = 3, .ttl = 2 };
	const struct pattern pats[] = {
		P_("PREFETCH_CONFIG", 0x0000000812345801ull, 0,
		   cmdq_build_prefetch_config(8, true, 0x12345),
		   { CMDQ_F_SID, 8 }, { CMDQ_F_SSV, 1 },
		   { CMDQ_F_SSID, 0x12345 }),
		P_("PREFETCH_ADDR", 0x0000001000000002ull,
		   0x0000000abcdef01full,
		   cmdq_build_prefetch_addr(0x10, false, 0, 0xabcdef000, 0x1f),
		   { CMDQ_F_SID, 0x10 }, { CMDQ_F_ADDR, 0xabcdef000 },
		   { CMDQ_F_PREFETCH_SIZE, 0x1f }, { CMDQ_F_SSV, 0 }),
		P_("CFGI_STE", 0x0000001800000003ull, 1,
		   cmdq_build_cfgi_ste(0x18, true), { CMDQ_F_SID, 0x18 },
		   { CMDQ_F_LEAF, 1 }),
		P_("CFGI_STE_RANGE", 0x0000002000000004ull, 5,
		   cmdq_build_cfgi_ste_range(0x20, 5), { CMDQ_F_SID, 0x20 },
		   { CMDQ_F_RANGE, 5 }),
		P_("CFGI_ALL", 0x04, 0x1f, cmdq_build_cfgi_all(),
		   { CMDQ_F_RANGE, 31 }, { CMDQ_F_SID, 0 }),
		P_("CFGI_CD", 0xdeadbeeffffff005ull, 1,
		   cmdq_build_cfgi_cd(0xdeadbeef, 0xfffff, true),
		   { CMDQ_F_SID, 0xdeadbeef }, { CMDQ_F_SSID, 0xfffff },
		   { CMDQ_F_LEAF, 1 }, { CMDQ_F_SSV, 0 }),
		P_("CFGI_CD_ALL", 0x0000000700000006ull, 0,
		   cmdq_build_cfgi_cd_all(7), { CMDQ_F_SID, 7 }),
		P_("TLBI_NH_ALL", 0x0000123400000010ull, 0,
		   cmdq_build_tlbi_nh_all(0x1234), { CMDQ_F_VMID, 0x1234 },
		   { CMDQ_F_ASID, 0 }),
		P_("TLBI_NH_ASID", 0xbeef000100000011ull, 0,
		   cmdq_build_tlbi_nh_asid(0xbeef, 1), { CMDQ_F_ASID, 0xbeef },
		   { CMDQ_F_VMID, 1 }),
		P_("TLBI_NH_VA", 0x0003000000103012ull, 0x00000000ffff6701ull,
		   cmdq_build_tlbi_nh_va(3, 0, 0xffff6000, true, &r_va),
		   { CMDQ_F_ASID, 3 }, { CMDQ_F_VMID, 0 }, { CMDQ_F_NUM, 3 },
		   { CMDQ_F_SCALE, 1 }, { CMDQ_F_TG, 1 }, { CMDQ_F_TTL, 3 },
		   { CMDQ_F_LEAF, 1 }),
		P_("TLBI_NH_VAA", 0x0000000200000013ull, 0x0000fffffffff000ull,
		   cmdq_build_tlbi_nh_vaa(2, 0x0000fffffffff000ull, false,
					  NULL),
		   { CMDQ_F_VMID, 2 }, { CMDQ_F_ADDR, 0x0000fffffffff000ull },
		   { CMDQ_F_LEAF, 0 }, { CMDQ_F_TG, 0 }),
		P_("TLBI_EL2_ALL", 0x20, 0, cmdq_build_tlbi_el2_all(),
		   { CMDQ_F_SSEC, 0 }),
		P_("TLBI_EL2_ASID", 0x0005000000000021ull, 0,
		   cmdq_build_tlbi_el2_asid(5), { CMDQ_F_ASID, 5 }),
		P_("TLBI_EL2_VA", 0x0005000000000022ull, 0x1001,
		   cmdq_build_tlbi_el2_va(5, 0x1000, true, NULL),
		   { CMDQ_F_ASID, 5 }, { CMDQ_F_ADDR, 0x1000 },
		   { CMDQ_F_LEAF, 1 }),
		P_("TLBI_EL2_VAA", 0x23, 0x2000,
		   cmdq_build_tlbi_el2_vaa(0x2000, false, NULL),
		   { CMDQ_F_ADDR, 0x2000 }),
		P_("TLBI_S12_VMALL", 0x0000000900000028ull, 0,
		   cmdq_build_tlbi_s12_vmall(9), { CMDQ_F_VMID, 9 }),
		P_("TLBI_S2_IPA", 0x000000090000102aull, 0x000ffffffffffe01ull,
		   cmdq_build_tlbi_s2_ipa(9, 0x000ffffffffff000ull, true,
					  &r_ipa),
		   { CMDQ_F_VMID, 9 }, { CMDQ_F_IPA, 0x000ffffffffff000ull },
		   { CMDQ_F_NUM, 1 }, { CMDQ_F_TG, 3 }, { CMDQ_F_TTL, 2 },
		   { CMDQ_F_LEAF, 1 }),
		/* IPA is d1[51:12]: higher and lower bits are dropped. */
		P_("TLBI_S2_IPA trunc", 0x2a, 0x1000,
		   cmdq_build_tlbi_s2_ipa(0, 0xfff0000000001fffull, false,
					  NULL),
		   { CMDQ_F_IPA, 0x1000 }),
		P_("TLBI_NSNH_ALL", 0x30, 0, cmdq_build_tlbi_nsnh_all(),
		   { CMDQ_F_VMID, 0 }),
		P_("ATC_INV", 0x0000001000abca40ull, 0x7034,
		   cmdq_build_atc_inv(0x10, true, 0xabc, true, 0x7000, 52),
		   { CMDQ_F_SID, 0x10 }, { CMDQ_F_SSV, 1 },
		   { CMDQ_F_SSID, 0xabc }, { CMDQ_F_GLOBAL, 1 },
		   { CMDQ_F_ADDR, 0x7000 }, { CMDQ_F_ATC_SIZE, 52 }),
		P_("PRI_RESP", 0x0000002000001841ull, 0x21ff,
		   cmdq_build_pri_resp(0x20, true, 1, 0x1ff, 2),
		   { CMDQ_F_SID, 0x20 }, { CMDQ_F_SSID, 1 }, { CMDQ_F_SSV, 1 },
		   { CMDQ_F_PRI_GRPID, 0x1ff }, { CMDQ_F_PRI_RESP, 2 }),
		P_("RESUME", 0x0000003000001044ull, 0xbeef,
		   cmdq_build_resume(0x30, 1, 0xbeef), { CMDQ_F_SID, 0x30 },
		   { CMDQ_F_RESUME_RESP, 1 }, { CMDQ_F_STAG, 0xbeef }),
		P_("STALL_TERM", 0x0000004000000045ull, 0,
		   cmdq_build_stall_term(0x40), { CMDQ_F_SID, 0x40 }),
		P_("SYNC", 0xcafef00d0fc02046ull, 0x0000fedcba987654ull,
		   cmdq_build_sync(CMDQ_SYNC_CS_SEV, CMDQ_SYNC_MSH_ISH,
				   CMDQ_SYNC_MSIATTR_OIWB, 0xcafef00d,
				   0x0000fedcba987654ull),
		   { CMDQ_F_CS, 2 }, { CMDQ_F_MSH, 3 }, { CMDQ_F_MSIATTR, 0xf },
		   { CMDQ_F_MSIDATA, 0xcafef00d },
		   { CMDQ_F_MSIADDR, 0x0000fedcba987654ull }),
	};

	for (size_t i = 0; i < sizeof(pats) / sizeof(pats[0]); i++)
		check_pattern(&pats[i]);
}

/* The named accessors read the same bits as cmdq_get(). */
TEST(named_accessors)
{
	const struct cmdq_cmd c = { { 0xbeef000100103012ull,
				      0x00000000ffff6701ull } };
	struct cmdq_tlbi_range r = cmdq_tlbi_range_get(&c);

	ASSERT_EQ(cmdq_tlbi_asid(&c), 0xbeef);
	ASSERT_EQ(cmdq_tlbi_vmid(&c), 1);
	ASSERT_EQ(cmdq_addr(&c), 0xffff6000);
	ASSERT_EQ(cmdq_leaf(&c), 1);
	ASSERT_EQ(r.num, 3);
	ASSERT_EQ(r.scale, 1);
	ASSERT_EQ(r.tg, 1);
	ASSERT_EQ(r.ttl, 3);
}

/* cmdq_set() touches only its field and truncates. */
TEST(set_truncates)
{
	struct cmdq_cmd c = { { ~0ull, ~0ull } };

	cmdq_set(&c, CMDQ_F_NUM, 0x20); /* 6 bits into a 5-bit field */
	ASSERT_EQ(c.d[0], 0xfffffffffffe0fffull);
	cmdq_set(&c, CMDQ_F_ADDR, 0x1fff); /* low 12 bits dropped */
	ASSERT_EQ(c.d[1], 0x0000000000001fffull);
	cmdq_set(&c, CMDQ_F_MSIADDR, 0); /* d1[51:2] */
	ASSERT_EQ(c.d[1], 0x0000000000000003ull);
}

TEST_HARNESS_MAIN
