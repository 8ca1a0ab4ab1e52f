/* SPDX-License-Identifier: MIT */
/*
 * cmdq_coalesce(): a property test against an independent model of what a
 * list of commands invalidates, plus hand-made cases that show it really
 * shortens. The model ignores VMIDs (the kernel overwrites them, facts 4.1).
 *
 * The model records what each command is *required* to invalidate (SMMUv3
 * sections 4.3, 4.4, 4.5): the coalesced batch must be required to
 * invalidate everything the original batch was. Where a command may
 * invalidate more than required, the model does not count it.
 */
#include "cmdq/cmdq.h"
#include "tests/harness.h"

#include <stdlib.h>

#define N_ASID 4
#define GLOBAL N_ASID /* the "ASID" index of global (nG = 0) entries */
#define N_SID 4
#define N_SSID 4
#define N_LVL 4 /* walk levels 0..3 */
#define N_GRAN 3 /* 4K, 16K, 64K */
#define PAGES 2048 /* 4 KiB pages modelled */

/*
 * What is invalidated. TLB: (ASID or GLOBAL, walk level, leaf/table entry,
 * granule the entry was inserted with, 4K page); only leaf entries can be
 * global (nG is a leaf descriptor bit), so tlb[GLOBAL][.][1] stays 0. CD:
 * (SID, SSID, CD / L1CD descriptor); ATC: (SID, no-PASID or SSID, 4K page).
 */
struct model {
	uint8_t tlb[N_ASID + 1][N_LVL][2][N_GRAN][PAGES];
	uint8_t cd[N_SID][N_SSID][2];
	uint8_t atc[N_SID][N_SSID + 1][PAGES];
};

/*
 * A TLBI by VA (or everything, @all): @asid is the ASID, or -1 for all
 * ASIDs (TLBI_NH_VAA); @tg 0 = any granule (no range), else only entries
 * inserted with that granule; @ttl 0 = any level, else leaf entries at
 * level @ttl and, if !@leaf, table entries at the levels above it.
 * By-VA invalidation includes global entries (SMMUv3 4.4.2.3-4).
 */
static void tlb_mark_va(struct model *m, int asid, uint64_t p0, uint64_t np,
			unsigned int tg, unsigned int ttl, bool leaf)
{
	for (int a = 0; a <= N_ASID; a++) {
		if (asid >= 0 && a != asid && a != GLOBAL)
			continue;
		for (unsigned int lvl = 0; lvl < N_LVL; lvl++) {
			for (int kind = 0; kind < 2; kind++) {
				/* kind 0 = leaf entry, 1 = table entry */
				if (kind && (leaf || a == GLOBAL))
					continue;
				if (ttl && !kind && lvl != ttl)
					continue;
				if (ttl && kind && lvl >= ttl)
					continue;
				for (unsigned int g = 0; g < N_GRAN; g++) {
					if (tg && g != tg - 1)
						continue;
					for (uint64_t p = p0;
					     p < p0 + np && p < PAGES; p++)
						m->tlb[a][lvl][kind][g][p] = 1;
				}
			}
		}
	}
}

/* TLBI_NH_ASID: every non-global entry of @asid (SMMUv3 4.4.2.2). */
static void tlb_mark_asid(struct model *m, int asid)
{
	memset(m->tlb[asid], 1, sizeof(m->tlb[asid]));
}

/* TLBI_NH_ALL / TLBI_NSNH_ALL: everything, global entries included. */
static void tlb_mark_all(struct model *m)
{
	memset(m->tlb, 1, sizeof(m->tlb));
	/* Keep the "no global table entries" invariant of struct model. */
	for (unsigned int l = 0; l < N_LVL; l++)
		memset(m->tlb[GLOBAL][l][1], 0, sizeof(m->tlb[GLOBAL][l][1]));
}

static void model_tlbi_va(struct model *m, uint64_t d0, uint64_t d1, int asid)
{
	unsigned int tg = (d1 >> 10) & 3, ttl = (d1 >> 8) & 3;
	unsigned int num = (d0 >> 12) & 31, scale = (d0 >> 20) & 63;
	bool leaf = d1 & 1;
	uint64_t page = (d1 & ~0xfffull) >> 12;

	if (!tg) {
		tlb_mark_va(m, asid, page, 1, 0, 0, leaf);
		return;
	}
	/* Range: (NUM + 1) << SCALE granules from the granule-aligned
	 * address; granule in 4K pages: 1, 4, 16. */
	unsigned int gs = 2 * (tg - 1);
	uint64_t np = scale >= 32 ? PAGES : ((uint64_t)num + 1) << scale << gs;

	tlb_mark_va(m, asid, page >> gs << gs, np, tg, ttl, leaf);
}

/*
 * ATC_INV (PCIe ATS invalidation, SMMUv3 4.5): SSV = 0 is required to
 * remove the entries without PASID; SSV = 1 those of SSID, and with
 * Global = 1 those of every PASID. (An SSV = 0 invalidation also removes
 * PASID-tagged entries on real devices; the model does not count on it.)
 */
static void model_atc(struct model *m, uint64_t d0, uint64_t d1)
{
	uint32_t sid = (uint32_t)(d0 >> 32), ssid = (d0 >> 12) & 0xfffff;
	bool ssv = (d0 >> 11) & 1, global = (d0 >> 9) & 1;
	unsigned int size = d1 & 63;
	uint64_t np = size >= 52 ? PAGES : 1ull << size;
	uint64_t p0 = size >= 52 ? 0 : ((d1 >> 12) & ~(np - 1));

	for (unsigned int sub = 0; sub <= N_SSID; sub++) {
		if (!ssv ? sub != 0 :
			   (sub == 0 || (!global && sub != ssid + 1)))
			continue;
		for (uint64_t p = p0; p < p0 + np && p < PAGES; p++)
			m->atc[sid][sub][p] = 1;
	}
}

/* Decode from raw bit positions (facts section 5), not cmdq accessors. */
static void model_apply(struct model *m, const struct cmdq_cmd *c)
{
	uint64_t d0 = c->d[0], d1 = c->d[1];
	int asid = (int)(d0 >> 48);
	uint32_t sid = (uint32_t)(d0 >> 32), ssid = (d0 >> 12) & 0xfffff;
	bool leaf = d1 & 1;

	switch (d0 & 0xff) {
	case 0x10:
	case 0x30:
		tlb_mark_all(m);
		break;
	case 0x11:
		tlb_mark_asid(m, asid);
		break;
	case 0x12:
		model_tlbi_va(m, d0, d1, asid);
		break;
	case 0x13:
		model_tlbi_va(m, d0, d1, -1);
		break;
	case 0x05:
		m->cd[sid][ssid][0] = 1;
		if (!leaf)
			m->cd[sid][ssid][1] = 1;
		break;
	case 0x06:
		/* All CDs and L1CDs of the StreamID (SMMUv3 4.3.4). */
		memset(m->cd[sid], 1, sizeof(m->cd[sid]));
		break;
	case 0x40:
		model_atc(m, d0, d1);
		break;
	default:
		t_report(__FILE__, __LINE__, "unexpected command %#" PRIx64,
			 d0);
		t_abort();
	}
}

static void model_build(struct model *m, const struct cmdq_cmd *c, size_t n)
{
	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < n; i++)
		model_apply(m, &c[i]);
}

/* How many atoms @a invalidates that @b does not. */
static size_t model_missing(const struct model *a, const struct model *b)
{
	const uint8_t *pa = (const uint8_t *)a, *pb = (const uint8_t *)b;
	size_t miss = 0;

	for (size_t i = 0; i < sizeof(*a); i++)
		miss += pa[i] && !pb[i];
	return miss;
}

static unsigned int rnd(uint64_t *s, unsigned int n)
{
	return (unsigned int)(t_rand(s) % n);
}

/*
 * TLBI_NH_VA/VAA: one in five without range; else any granule (4K, 16K,
 * 64K), SCALE mostly small (so neighbours merge) but up to 39 (SCALE >= 32
 * needs DS, which cmdq_caps_full has), TTL any level with the address
 * aligned as that level needs (SMMUv3 4.4.1.1 makes other addresses
 * UNPREDICTABLE).
 */
static struct cmdq_cmd gen_tlbi_va(uint64_t *s, bool vaa)
{
	static const uint8_t tgs[] = { CMDQ_TG_4K, CMDQ_TG_4K, CMDQ_TG_16K,
				       CMDQ_TG_64K };
	uint16_t asid = (uint16_t)rnd(s, N_ASID), vmid = (uint16_t)rnd(s, 2);
	bool leaf = rnd(s, 4) != 0;
	struct cmdq_tlbi_range r = { 0 };
	uint64_t page;

	if (rnd(s, 5) == 0) {
		page = rnd(s, 64);
	} else {
		unsigned int gs, k = rnd(s, 16);

		r.tg = tgs[rnd(s, 4)];
		gs = 2 * (r.tg - 1u);
		r.num = (uint8_t)(rnd(s, 3) ? rnd(s, 4) : rnd(s, 32));
		r.scale = (uint8_t)(k < 10 ? rnd(s, 3) :
				    k < 15 ? rnd(s, 12) :
					     rnd(s, 40));
		r.ttl = (uint8_t)(rnd(s, 2) ? 3 : rnd(s, 4));
		if (!r.num && !r.scale && !r.ttl)
			r.ttl = 3;
		/* Levels 1 and 2 hold blocks: align the address to one (in
		 * 4K pages; 16K TTL 1 is 64 GiB: page 0). */
		page = (uint64_t)rnd(s, 96 >> gs) << gs;
		if (r.ttl == 2)
			page &= ~((1ull << (gs + 9 + gs / 2 * 2)) - 1);
		if (r.ttl == 1)
			page = 0;
	}
	if (vaa)
		return cmdq_build_tlbi_nh_vaa(vmid, page << 12, leaf, &r);
	return cmdq_build_tlbi_nh_va(asid, vmid, page << 12, leaf, &r);
}

/* ATC_INV: with and without PASID, Global, sizes up to "all" (52). */
static struct cmdq_cmd gen_atc(uint64_t *s, uint32_t sid, uint32_t ssid)
{
	bool ssv = rnd(s, 2), global = ssv && rnd(s, 4) == 0;
	unsigned int k = rnd(s, 10);
	uint8_t size = (uint8_t)(k < 8 ? rnd(s, 5) : k < 9 ? rnd(s, 12) : 52);

	return cmdq_build_atc_inv(sid, ssv, ssid, global,
				  (uint64_t)rnd(s, 64) << 12, size);
}

static struct cmdq_cmd gen_cmd(uint64_t *s)
{
	unsigned int k = rnd(s, 100);
	uint32_t sid = rnd(s, N_SID), ssid = rnd(s, N_SSID);

	if (k < 45)
		return gen_tlbi_va(s, false);
	if (k < 55)
		return gen_tlbi_va(s, true);
	if (k < 63)
		return cmdq_build_tlbi_nh_asid((uint16_t)rnd(s, N_ASID),
					       (uint16_t)rnd(s, 2));
	if (k < 65)
		return cmdq_build_tlbi_nh_all((uint16_t)rnd(s, 2));
	if (k < 66)
		return cmdq_build_tlbi_nsnh_all();
	if (k < 80)
		return cmdq_build_cfgi_cd(sid, ssid, rnd(s, 2));
	if (k < 85)
		return cmdq_build_cfgi_cd_all(sid);
	return gen_atc(s, sid, ssid);
}

/* Ordering class from the opcode alone (facts 4.1), not cmdq_order_class. */
static unsigned int op_class(const struct cmdq_cmd *c)
{
	switch (c->d[0] & 0xff) {
	case 0x05:
	case 0x06:
		return 2;
	case 0x40:
		return 3;
	default:
		return 1;
	}
}

/*
 * Commands of different classes keep their order: the output's sequence of
 * class runs is a subsequence of the input's, so nothing of one class moves
 * ahead of another class's command that preceded it (the SYNC ordering the
 * caller relies on, enum cmdq_order_class).
 */
static bool class_order_kept(const struct cmdq_cmd *in, size_t n,
			     const struct cmdq_cmd *out, size_t m)
{
	size_t i = 0;

	for (size_t j = 0; j < m; j++) {
		unsigned int k = op_class(&out[j]);

		while (i < n && op_class(&in[i]) != k)
			i++;
		if (i == n)
			return false;
		/* Stay in this run of class k for the next output command. */
	}
	return true;
}

#define MAX_N 1500

TEST_TIMEOUT(coalesce_property, 60)
{
	static struct cmdq_cmd in[MAX_N], out[MAX_N], out2[MAX_N];
	static struct cmdq_info info[MAX_N], info0[MAX_N];
	static struct model before, after;
	uint64_t seed = t_seed(), s = seed;
	size_t total_in = 0, total_out = 0;
	const unsigned int cases = 4000;

	for (unsigned int i = 0; i < cases; i++) {
		size_t n = i % 200 == 199 ? 1 + rnd(&s, MAX_N) :
					    1 + rnd(&s, 24);
		size_t m;

		/* Runs of identical or neighbouring commands, too. */
		for (size_t j = 0; j < n; j++)
			in[j] = j && rnd(&s, 8) == 0 ? in[j - 1] : gen_cmd(&s);
		memcpy(out, in, n * sizeof(in[0]));
		m = cmdq_coalesce(out, n);
		ASSERT_LE(m, n);
		/* The count says whether anything changed (core relies on it). */
		if (m == n)
			ASSERT_EQ(memcmp(out, in, n * sizeof(in[0])), 0);
		/* The worker's path: decoded once, coalesced from the info. */
		for (size_t j = 0; j < n; j++) {
			uint8_t le[CMDQ_ENT_SIZE];

			cmdq_cmd_to_le(&in[j], le);
			cmdq_decode(&cmdq_caps_full, le, &out2[j], &info[j]);
		}
		memcpy(info0, info, n * sizeof(info[0]));
		ASSERT_EQ(cmdq_coalesce_info(out2, info, n), m);
		ASSERT_EQ(memcmp(out2, out, m * sizeof(out[0])), 0);
		ASSERT_EQ(memcmp(info0, info, n * sizeof(info[0])), 0);
		model_build(&before, in, n);
		model_build(&after, out, m);
		if (model_missing(&before, &after)) {
			t_report(__FILE__, __LINE__,
				 "seed %#" PRIx64
				 " case %u: n %zu -> %zu loses "
				 "%zu invalidations",
				 seed, i, n, m, model_missing(&before, &after));
			t_abort();
		}
		if (!class_order_kept(in, n, out, m)) {
			t_report(__FILE__, __LINE__,
				 "seed %#" PRIx64 " case %u: classes reordered",
				 seed, i);
			t_abort();
		}
		for (size_t j = 0; j < m; j++) {
			const char *why = NULL;

			if (cmdq_validate(&cmdq_caps_full, &out[j], &why)) {
				t_report(__FILE__, __LINE__,
					 "case %u: output %zu invalid: %s", i,
					 j, why);
				t_abort();
			}
		}
		total_in += n;
		total_out += m;
	}
	/* It must actually shorten random batches, not just be the identity. */
	ASSERT_LT(total_out, total_in * 9 / 10);
	printf("# coalesce: seed %#" PRIx64 ", %u cases, %zu -> %zu commands\n",
	       seed, cases, total_in, total_out);
}

static const struct cmdq_tlbi_range r4k1 = { .tg = CMDQ_TG_4K, .ttl = 3 };

static struct cmdq_cmd va(uint16_t asid, uint64_t page, uint8_t num,
			  uint8_t scale)
{
	struct cmdq_tlbi_range r = r4k1;

	r.num = num;
	r.scale = scale;
	return cmdq_build_tlbi_nh_va(asid, 0, page << 12, true, &r);
}

static size_t coalesce(struct cmdq_cmd *c, size_t n)
{
	return cmdq_coalesce(c, n);
}

static uint64_t range_len_pages(const struct cmdq_cmd *c)
{
	return ((c->d[0] >> 12 & 31) + 1) << (c->d[0] >> 20 & 31);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

TEST(coalesce_rules)
{
	struct cmdq_cmd dup[] = { va(1, 0, 0, 0), va(1, 0, 0, 0) };
	struct cmdq_cmd all[] = { va(1, 0, 0, 0),
				  va(2, 9, 0, 0),
				  cmdq_build_cfgi_cd(1, 0, true),
				  cmdq_build_atc_inv(1, 0, 0, 0, 0, 0),
				  cmdq_build_tlbi_nh_asid(3, 0),
				  cmdq_build_tlbi_nh_all(0) };
	struct cmdq_cmd asid[] = {
		va(1, 0, 0, 0), cmdq_build_tlbi_nh_vaa(0, 0x5000, true, NULL),
		va(2, 0, 0, 0), cmdq_build_tlbi_nh_asid(1, 7)
	};
	struct cmdq_cmd later[] = { cmdq_build_tlbi_nh_asid(1, 0),
				    va(1, 0, 0, 0) };
	struct cmdq_cmd cd[] = { cmdq_build_cfgi_cd(8, 1, true),
				 cmdq_build_cfgi_cd(9, 1, true),
				 cmdq_build_cfgi_cd_all(8) };

	ASSERT_EQ(coalesce(dup, N(dup)), 1);
	ASSERT_EQ(coalesce(all, N(all)), 3);
	ASSERT_EQ(cmdq_cmd_opcode(&all[0]), CMDQ_OP_CFGI_CD);
	ASSERT_EQ(cmdq_cmd_opcode(&all[1]), CMDQ_OP_ATC_INV);
	ASSERT_EQ(cmdq_cmd_opcode(&all[2]), CMDQ_OP_TLBI_NH_ALL);
	/* TLBI_NH_ASID(1) does not cover TLBI_NH_VA(1, ...): the by-VA one
	 * also removes global entries for its VA. Nothing goes. */
	ASSERT_EQ(coalesce(asid, N(asid)), 4);
	ASSERT_EQ(cmdq_cmd_opcode(&asid[0]), CMDQ_OP_TLBI_NH_VA);
	ASSERT_EQ(cmdq_tlbi_asid(&asid[0]), 1);
	ASSERT_EQ(cmdq_cmd_opcode(&asid[1]), CMDQ_OP_TLBI_NH_VAA);
	ASSERT_EQ(cmdq_tlbi_asid(&asid[2]), 2);
	ASSERT_EQ(cmdq_cmd_opcode(&asid[3]), CMDQ_OP_TLBI_NH_ASID);
	ASSERT_EQ(coalesce(later, N(later)), 2);
	ASSERT_EQ(coalesce(cd, N(cd)), 2);
	ASSERT_EQ(cmdq_sid(&cd[0]), 9);
	ASSERT_EQ(cmdq_cmd_opcode(&cd[1]), CMDQ_OP_CFGI_CD_ALL);
	/* Single commands and empty lists are left alone. */
	ASSERT_EQ(coalesce(dup, 1), 1);
	ASSERT_EQ(coalesce(dup, 0), 0);
}

/*
 * Regressions for issue 12 item 2: each batch must come back whole, in
 * order. The by-ASID and leaf-only commands cover less than what they
 * follow.
 */
TEST(coalesce_keeps_what_is_not_covered)
{
	struct cmdq_cmd nonleaf = va(1, 0, 0, 0);
	struct cmdq_cmd cases[][2] = {
		/* Global entries at the VA: only the by-VA one removes them. */
		{ va(1, 0, 0, 0), cmdq_build_tlbi_nh_asid(1, 0) },
		{ cmdq_build_tlbi_nh_va(1, 0, 0x5000, true, NULL),
		  cmdq_build_tlbi_nh_asid(1, 0) },
		{ cmdq_build_tlbi_nh_asid(1, 0),
		  cmdq_build_tlbi_nh_va(1, 0, 0x5000, false, NULL) },
		/* A non-leaf TLBI (walk-cache entries too) is not covered by
		 * a leaf-only one on a neighbouring page's range with
		 * another TTL (the merge would be reserved, see below). */
		{ nonleaf, va(1, 0, 0, 0) },
		/* TG limits the entries to one granule: 4K and 64K ranges
		 * of the same pages never merge. */
		{ va(1, 0, 15, 0),
		  cmdq_build_tlbi_nh_va(1, 0, 0, true,
					&(struct cmdq_tlbi_range){
						.tg = CMDQ_TG_64K, .ttl = 3 }) },
		/* ATC: without PASID, with PASID 1, Global: all different. */
		{ cmdq_build_atc_inv(1, false, 0, false, 0, 52),
		  cmdq_build_atc_inv(1, true, 1, true, 0, 52) },
		/* CFGI_CD Leaf = 0 also drops the L1CD: not covered by a
		 * Leaf = 1 one. */
		{ cmdq_build_cfgi_cd(1, 2, false),
		  cmdq_build_cfgi_cd(1, 2, true) },
	};

	struct cmdq_cmd lnl[] = { va(1, 0, 0, 0), va(1, 0, 0, 0) };

	cmdq_set(&cases[3][0], CMDQ_F_LEAF, 0);
	cmdq_set(&cases[3][1], CMDQ_F_TTL, 2);
	for (size_t i = 0; i < N(cases); i++) {
		struct cmdq_cmd want[2] = { cases[i][0], cases[i][1] };

		if (coalesce(cases[i], 2) != 2 ||
		    memcmp(cases[i], want, sizeof(want)))
			FAIL("case %zu: changed", i);
	}
	/* Leaf-only then non-leaf on the same page: one non-leaf survives
	 * (it covers the leaf one), never a leaf-only one. */
	cmdq_set(&lnl[1], CMDQ_F_LEAF, 0);
	ASSERT_EQ(coalesce(lnl, N(lnl)), 1);
	ASSERT_EQ(cmdq_leaf(&lnl[0]), 0);
}

TEST(coalesce_ranges)
{
	/* Pages 0-1 and 2-3 -> 0-3: NUM 0, SCALE 2. */
	struct cmdq_cmd adj[] = { va(1, 2, 1, 0), va(1, 0, 1, 0) };
	/* 32 pages and 1 more: 33 is not (NUM + 1) << SCALE. */
	struct cmdq_cmd big[] = { va(1, 0, 31, 0), va(1, 32, 0, 0) };
	struct cmdq_cmd gap[] = { va(1, 0, 0, 0), va(1, 2, 0, 0) };
	struct cmdq_cmd asids[] = { va(1, 0, 0, 0), va(2, 1, 0, 0) };
	struct cmdq_cmd ttl[] = { va(1, 0, 0, 0), va(1, 0, 0, 0) };
	struct cmdq_cmd leaf[] = { va(1, 0, 0, 0), va(1, 1, 0, 0) };

	ASSERT_EQ(coalesce(adj, N(adj)), 1);
	/* Hand-computed: ASID 1, SCALE 2 at d0[24:20], op 0x12; TG 4K,
	 * TTL 3, leaf. */
	ASSERT_EQ(adj[0].d[0], 0x0001000000200012ull);
	ASSERT_EQ(adj[0].d[1], 0x0000000000000701ull);
	ASSERT_EQ(coalesce(big, N(big)), 2);
	ASSERT_EQ(coalesce(gap, N(gap)), 2);
	ASSERT_EQ(coalesce(asids, N(asids)), 2);
	/* Same page, different TTL: the merge would need TTL 0 with
	 * NUM = SCALE = 0, which is reserved: keep both. */
	cmdq_set(&ttl[1], CMDQ_F_TTL, 2);
	ASSERT_EQ(coalesce(ttl, N(ttl)), 2);
	/* Leaf AND: a non-leaf part makes the merge non-leaf. */
	cmdq_set(&leaf[1], CMDQ_F_LEAF, 0);
	ASSERT_EQ(coalesce(leaf, N(leaf)), 1);
	ASSERT_EQ(cmdq_leaf(&leaf[0]), 0);
	ASSERT_EQ(range_len_pages(&leaf[0]), 2);
}

/*
 * Ranges spread over an address space, the common strict-unmap batch: the
 * far ones are left alone (and skip the sort), near ones still merge, and
 * a merged range goes on absorbing what touches the union.
 */
TEST(coalesce_spread_ranges)
{
	/* Pages 0 and 1 merge; 1000 twice is a duplicate; 5000 alone. */
	struct cmdq_cmd far[] = { va(1, 0, 0, 0), va(1, 1000, 0, 0),
				  va(1, 5000, 0, 0), va(1, 1, 0, 0),
				  va(1, 1000, 0, 0) };
	/* 16 pages at 16, one far page, 32 at 32, 16 at 0: one 64-page
	 * range at 0 (in the place of the one at page 0) and the far one. */
	struct cmdq_cmd chain[] = { va(1, 16, 0, 4), va(1, 100000, 0, 0),
				    va(1, 32, 0, 5), va(1, 0, 0, 4) };

	ASSERT_EQ(coalesce(far, N(far)), 3);
	ASSERT_EQ(cmdq_addr(&far[0]), 0);
	ASSERT_EQ(range_len_pages(&far[0]), 2);
	ASSERT_EQ(cmdq_addr(&far[1]), 1000ull << 12);
	ASSERT_EQ(range_len_pages(&far[1]), 1);
	ASSERT_EQ(cmdq_addr(&far[2]), 5000ull << 12);
	ASSERT_EQ(coalesce(chain, N(chain)), 2);
	ASSERT_EQ(cmdq_addr(&chain[0]), 100000ull << 12);
	ASSERT_EQ(range_len_pages(&chain[0]), 1);
	ASSERT_EQ(cmdq_addr(&chain[1]), 0);
	ASSERT_EQ(range_len_pages(&chain[1]), 64);
}

/*
 * A range longer than the buckets the scan starts with (32 granules):
 * 64 pages at 0 touches 16 pages at 64 two short buckets away, so the
 * isolation test must widen its buckets, and the two merge into 80 pages
 * (NUM 4, SCALE 4).
 */
TEST(coalesce_long_range_touches)
{
	struct cmdq_cmd c[] = { va(1, 0, 0, 6), va(1, 100000, 0, 0),
				va(1, 64, 0, 4) };

	ASSERT_EQ(coalesce(c, N(c)), 2);
	ASSERT_EQ(cmdq_addr(&c[0]), 0);
	ASSERT_EQ(range_len_pages(&c[0]), 80);
	ASSERT_EQ(cmdq_addr(&c[1]), 100000ull << 12);
}

/*
 * A worker's batch gathered from many vCPUs: one unmap per ASID, more
 * ASIDs than the fast path's sort keys have group indices (8). Each
 * ASID's page 0 stays (an ASID's TLBI never merges with another's), the
 * one ASID with a neighbouring page and the one with a duplicate still
 * shorten; with more than 8 ASIDs that do merge, too; and in a window of
 * a few commands (compared by pairs) likewise.
 */
TEST(coalesce_many_asids)
{
	struct cmdq_cmd one[18], pairs[24];
	struct cmdq_cmd few[] = { va(1, 0, 0, 0), va(2, 0, 0, 0),
				  va(3, 0, 0, 0), va(4, 0, 0, 0),
				  va(2, 1, 0, 0), va(4, 0, 0, 0) };

	for (uint16_t a = 1; a <= 16; a++)
		one[a - 1] = va(a, 0, 0, 0);
	one[16] = va(3, 1, 0, 0);
	one[17] = va(9, 0, 0, 0);
	ASSERT_EQ(coalesce(one, N(one)), 16);
	for (uint16_t a = 1; a <= 16; a++) {
		EXPECT_EQ(cmdq_tlbi_asid(&one[a - 1]), a);
		EXPECT_EQ(cmdq_addr(&one[a - 1]), 0);
		EXPECT_EQ(range_len_pages(&one[a - 1]), a == 3 ? 2 : 1);
	}
	for (uint16_t a = 1; a <= 12; a++) {
		pairs[2 * (a - 1)] = va(a, 1000u * a + 1, 0, 0);
		pairs[2 * (a - 1) + 1] = va(a, 1000u * a, 0, 0);
	}
	ASSERT_EQ(coalesce(pairs, N(pairs)), 12);
	for (uint16_t a = 1; a <= 12; a++) {
		EXPECT_EQ(cmdq_tlbi_asid(&pairs[a - 1]), a);
		EXPECT_EQ(cmdq_addr(&pairs[a - 1]), (1000ull * a) << 12);
		EXPECT_EQ(range_len_pages(&pairs[a - 1]), 2);
	}
	ASSERT_EQ(coalesce(few, N(few)), 4);
	for (uint16_t a = 1; a <= 4; a++) {
		EXPECT_EQ(cmdq_tlbi_asid(&few[a - 1]), a);
		EXPECT_EQ(range_len_pages(&few[a - 1]), a == 2 ? 2 : 1);
	}
}

TEST_HARNESS_MAIN
