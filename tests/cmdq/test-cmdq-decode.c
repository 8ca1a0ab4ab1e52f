/* SPDX-License-Identifier: MIT */
/*
 * cmdq_decode(): every opcode against a table written by hand from the
 * facts doc (sections 4.1 and 5), the info fields, the CERROR code, the
 * byte order of the entry; and, on random commands, agreement with the
 * separate cmdq_classify(), cmdq_validate() and cmdq_order_class().
 */
#include "cmdq/cmdq.h"
#include "tests/harness.h"

/* The entry as the guest writes it: d0 then d1, each little-endian. */
static void le_bytes(uint64_t d0, uint64_t d1, uint8_t *out)
{
	for (unsigned int i = 0; i < 8; i++) {
		out[i] = (uint8_t)(d0 >> (8 * i));
		out[8 + i] = (uint8_t)(d1 >> (8 * i));
	}
}

static enum cmdq_cerror decode_raw(const struct cmdq_caps *caps, uint64_t d0,
				   uint64_t d1, struct cmdq_cmd *c,
				   struct cmdq_info *inf)
{
	uint8_t le[CMDQ_ENT_SIZE];

	le_bytes(d0, d1, le);
	return cmdq_decode(caps, le, c, inf);
}

/* Hand table: class, ordering class, SID field, SSID (always / if SSV). */
struct want {
	enum cmdq_class cls;
	unsigned int order;
	bool sid, ssid, ssid_if_ssv;
};

#define W_(c, o, s, ss, sv)                                              \
	(struct want)                                                    \
	{                                                                \
		.cls = CMDQ_CLASS_##c, .order = o, .sid = s, .ssid = ss, \
		.ssid_if_ssv = sv                                        \
	}

static struct want want_of(unsigned int op)
{
	switch (op) {
	case 0x01: /* PREFETCH_CONFIG */
	case 0x02: /* PREFETCH_ADDR */
		return W_(NOP, 0, true, false, true);
	case 0x03: /* CFGI_STE */
	case 0x04: /* CFGI_STE_RANGE */
		return W_(VMM_ONLY, 0, true, false, false);
	case 0x05: /* CFGI_CD */
		return W_(FORWARD, CMDQ_ORDER_CFG, true, true, false);
	case 0x06: /* CFGI_CD_ALL */
		return W_(FORWARD, CMDQ_ORDER_CFG, true, false, false);
	case 0x10: /* TLBI_NH_ALL */
	case 0x11: /* TLBI_NH_ASID */
	case 0x12: /* TLBI_NH_VA */
	case 0x13: /* TLBI_NH_VAA */
	case 0x30: /* TLBI_NSNH_ALL */
		return W_(FORWARD, CMDQ_ORDER_TLB, false, false, false);
	case 0x40: /* ATC_INV */
		return W_(FORWARD, CMDQ_ORDER_ATC, true, false, true);
	case 0x41: /* PRI_RESP */
		return W_(ILLEGAL, 0, true, false, true);
	case 0x44: /* RESUME */
	case 0x45: /* STALL_TERM */
		return W_(ILLEGAL, 0, true, false, false);
	case 0x46: /* SYNC */
		return W_(SYNC, 0, false, false, false);
	}
	return W_(ILLEGAL, 0, false, false, false);
}

/*
 * Every opcode with SID 0x1234_5678 in d0[63:32], SSV set and SSID 0x9abcd
 * in d0[31:12] where the opcode has them, else only the opcode.
 */
TEST(every_opcode)
{
	unsigned int n_cls[5] = { 0 };

	for (unsigned int op = 0; op < 256; op++) {
		struct want w = want_of(op);
		uint64_t d0 = op;
		struct cmdq_cmd c;
		struct cmdq_info inf;
		enum cmdq_cerror e;

		if (w.sid)
			d0 |= 0x12345678ull << 32;
		if (w.ssid || w.ssid_if_ssv)
			d0 |= 0x9abcdull << 12;
		if (w.ssid_if_ssv)
			d0 |= 1ull << 11;
		memset(&inf, 0xa5, sizeof(inf));
		e = decode_raw(&cmdq_caps_full, d0, 0, &c, &inf);
		EXPECT_EQ(c.d[0], d0);
		EXPECT_EQ(c.d[1], 0);
		EXPECT_EQ(inf.op, op);
		EXPECT_EQ(inf.cls, w.cls);
		EXPECT_EQ(inf.order, w.order);
		EXPECT_EQ(e, inf.cerror);
		/* Forwarded, completed or marker: legal as built; the rest
		 * never is. */
		EXPECT_EQ(inf.cerror,
			  w.cls == CMDQ_CLASS_ILLEGAL ||
					  w.cls == CMDQ_CLASS_VMM_ONLY ?
				  CMDQ_CERROR_ILL :
				  CMDQ_CERROR_NONE);
		EXPECT_EQ(!!(inf.flags & CMDQ_INFO_SID), w.sid);
		EXPECT_EQ(inf.sid, w.sid ? 0x12345678u : 0);
		EXPECT_EQ(!!(inf.flags & CMDQ_INFO_SSID),
			  w.ssid || w.ssid_if_ssv);
		EXPECT_EQ(inf.ssid, w.ssid || w.ssid_if_ssv ? 0x9abcdu : 0);
		EXPECT_EQ(inf.flags & ~(CMDQ_INFO_SID | CMDQ_INFO_SSID), 0);
		n_cls[w.cls]++;
	}
	/* The hand table names 25 opcodes: 8 FORWARD, 1 SYNC, 2 NOP, 2
	 * VMM_ONLY (facts section 5). */
	EXPECT_EQ(n_cls[CMDQ_CLASS_FORWARD], 8);
	EXPECT_EQ(n_cls[CMDQ_CLASS_SYNC], 1);
	EXPECT_EQ(n_cls[CMDQ_CLASS_NOP], 2);
	EXPECT_EQ(n_cls[CMDQ_CLASS_VMM_ONLY], 2);
}

/* Identifiers appear only where the opcode has them and SSV says so. */
TEST(info_ids)
{
	struct cmdq_cmd c;
	struct cmdq_info inf;

	/* ATC_INV without SSV: SID only, whatever d0[31:12] holds. */
	decode_raw(&cmdq_caps_full, 0x40 | 0x777ull << 32 | 0x55ull << 12, 0,
		   &c, &inf);
	EXPECT_EQ(inf.flags, CMDQ_INFO_SID);
	EXPECT_EQ(inf.sid, 0x777);
	EXPECT_EQ(inf.ssid, 0);
	/* CFGI_CD has no SSV: its SSID always applies, 0 too. */
	decode_raw(&cmdq_caps_full, 0x05 | 0x8ull << 32, 1, &c, &inf);
	EXPECT_EQ(inf.flags, CMDQ_INFO_SID | CMDQ_INFO_SSID);
	EXPECT_EQ(inf.sid, 8);
	EXPECT_EQ(inf.ssid, 0);
	/* TLBIs carry VMID/ASID in d0[63:32]: no SID. */
	decode_raw(&cmdq_caps_full, 0x11 | 0x00050003ull << 32, 0, &c, &inf);
	EXPECT_EQ(inf.flags, 0);
	EXPECT_EQ(inf.sid, 0);
	/* CMD_SYNC's d0[63:32] is MSIData: no SID. */
	decode_raw(&cmdq_caps_full, 0x46 | 0xdeadbeefull << 32, 0, &c, &inf);
	EXPECT_EQ(inf.cls, CMDQ_CLASS_SYNC);
	EXPECT_EQ(inf.flags, 0);
	/* The largest SID and SSID fit. */
	decode_raw(&cmdq_caps_full,
		   0x40 | 0xffffffffull << 32 | 1ull << 11 | 0xfffffull << 12,
		   0, &c, &inf);
	EXPECT_EQ(inf.sid, 0xffffffffu);
	EXPECT_EQ(inf.ssid, 0xfffffu);
}

/* The CERROR code: class rules and caps rules, return == info.cerror. */
TEST(cerror)
{
	static const struct cmdq_caps no_ril = {
		.asid_bits = 16,
		.gran4k = true,
	};
	/* TLBI_NH_VA, TG 4K, NUM 1, TTL 3, ASID 1: range form. */
	const uint64_t va0 = 0x12 | 1ull << 12 | 1ull << 48;
	const uint64_t va1 = 0x1000 | 1u << 10 | 3u << 8;
	struct cmdq_cmd c;
	struct cmdq_info inf;

	EXPECT_EQ(decode_raw(&cmdq_caps_full, va0, va1, &c, &inf),
		  CMDQ_CERROR_NONE);
	/* The class does not depend on the caps; validity does. */
	EXPECT_EQ(decode_raw(&no_ril, va0, va1, &c, &inf), CMDQ_CERROR_ILL);
	EXPECT_EQ(inf.cerror, CMDQ_CERROR_ILL);
	EXPECT_EQ(inf.cls, CMDQ_CLASS_FORWARD);
	EXPECT_EQ(inf.order, CMDQ_ORDER_TLB);
	/* ATC_INV needs ATS. */
	EXPECT_EQ(decode_raw(&cmdq_caps_qemu, 0x40, 0, &c, &inf),
		  CMDQ_CERROR_ILL);
	EXPECT_EQ(inf.cls, CMDQ_CLASS_FORWARD);
	/* SSEC makes any opcode ILLEGAL, and takes its ordering class. */
	EXPECT_EQ(decode_raw(&cmdq_caps_full, 0x11 | 1u << 10, 0, &c, &inf),
		  CMDQ_CERROR_ILL);
	EXPECT_EQ(inf.cls, CMDQ_CLASS_ILLEGAL);
	EXPECT_EQ(inf.order, 0);
	EXPECT_EQ(inf.op, 0x11);
	/* CMD_SYNC CS = 3 is reserved. */
	EXPECT_EQ(decode_raw(&cmdq_caps_full, 0x46 | 3u << 12, 0, &c, &inf),
		  CMDQ_CERROR_ILL);
	EXPECT_EQ(inf.cls, CMDQ_CLASS_ILLEGAL);
	/* A reserved bit of CMD_SYNC (d1[1:0]). */
	EXPECT_EQ(decode_raw(&cmdq_caps_full, 0x46, 1, &c, &inf),
		  CMDQ_CERROR_ILL);
	EXPECT_EQ(inf.cls, CMDQ_CLASS_SYNC);
	/* The command is written out even when it fails. */
	EXPECT_EQ(c.d[0], 0x46);
	EXPECT_EQ(c.d[1], 1);
}

/* Byte order, at any alignment; on a little-endian host, the same bytes. */
TEST(endianness)
{
	/* TLBI_NH_VA, ASID 0x0102, VMID 0x0304, address 0x1122334455667000,
	 * Leaf, written byte by byte as the guest's queue holds it. */
	const uint8_t le[16] = {
		0x12, 0x00, 0x00, 0x00, 0x04, 0x03, 0x02, 0x01,
		0x01, 0x70, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11
	};
	uint8_t buf[CMDQ_ENT_SIZE + 8], out[CMDQ_ENT_SIZE];

	for (unsigned int off = 0; off < 8; off++) {
		struct cmdq_cmd c;
		struct cmdq_info inf;

		memcpy(buf + off, le, sizeof(le));
		ASSERT_EQ(cmdq_decode(&cmdq_caps_full, buf + off, &c, &inf),
			  CMDQ_CERROR_NONE);
		EXPECT_EQ(c.d[0], 0x0102030400000012ull);
		EXPECT_EQ(c.d[1], 0x1122334455667001ull);
		EXPECT_EQ(inf.op, CMDQ_OP_TLBI_NH_VA);
		EXPECT_EQ(cmdq_tlbi_asid(&c), 0x0102);
		EXPECT_EQ(cmdq_tlbi_vmid(&c), 0x0304);
		cmdq_cmd_to_le(&c, out);
		EXPECT_EQ(memcmp(out, le, sizeof(le)), 0);
		/* The one representation: on a little-endian host the
		 * decoded command is the entry itself (no swap anywhere). */
		if (CMDQ_CMD_IS_LE)
			EXPECT_EQ(memcmp(&c, le, sizeof(le)), 0);
	}
	EXPECT_EQ(CMDQ_CMD_IS_LE, __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__);
}

/*
 * Random caps into @rc, prepared for the fast path when @prepare (the
 * worker's case) and left unprepared otherwise (every caps-gated TLBI then
 * takes the full path).
 */
static const struct cmdq_caps *pick_caps(uint64_t *s, struct cmdq_caps *rc,
					 bool prepare)
{
	static const struct cmdq_caps small = {
		.asid_bits = 8,
		.sid_bits = 8,
		.gran4k = true,
	};
	uint64_t r = t_rand(s);

	switch (r % 4) {
	case 0:
		*rc = cmdq_caps_qemu;
		break;
	case 1:
		*rc = cmdq_caps_full;
		break;
	case 2:
		*rc = small;
		break;
	default:
		r >>= 2;
		*rc = (struct cmdq_caps){
			.asid_bits = r & 1 ? 16 : 8,
			.ssid_bits = (uint8_t)(r & 2 ? 20 : 0),
			.sid_bits = 32,
			.range_inv = r & 4,
			.ats = r & 8,
			.ds = r & 16,
			.gran4k = r & 32,
			.gran16k = r & 64,
			.gran64k = r & 128,
		};
	}
	if (prepare)
		cmdq_caps_prepare(rc);
	return rc;
}

/* An opcode the table knows most of the time, sparse random bits. */
static void random_cmd(uint64_t *s, uint64_t *d0, uint64_t *d1)
{
	static const uint8_t ops[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
				       0x10, 0x11, 0x12, 0x13, 0x30, 0x40,
				       0x41, 0x44, 0x45, 0x46, 0x20, 0x18 };
	uint64_t r = t_rand(s);
	unsigned int sparse = 2 + (unsigned int)(r % 4);
	uint64_t a = ~0ull, b = ~0ull;

	for (unsigned int i = 0; i < sparse; i++) {
		a &= t_rand(s);
		b &= t_rand(s);
	}
	if (r >> 60 == 0)
		b = 0;
	*d0 = (a & ~0xffull) | ((r >> 8) % 8 ? ops[(r >> 16) % sizeof(ops)] :
					       (uint8_t)(r >> 24));
	*d1 = b;
}

/*
 * Property: decode is the old three functions in one pass, on random
 * commands and caps; and it actually meets every class and both codes.
 */
TEST_TIMEOUT(agrees_with_classify_validate, 60)
{
	uint64_t seed = t_seed(), s = seed;
	unsigned int seen_cls[5] = { 0 }, seen_ok = 0, seen_ill = 0;
	const unsigned int cases = 300000;

	for (unsigned int i = 0; i < cases; i++) {
		struct cmdq_caps rc;
		const struct cmdq_caps *caps = pick_caps(&s, &rc, true);
		struct cmdq_cmd c, raw;
		struct cmdq_info inf;
		enum cmdq_cerror e;

		random_cmd(&s, &raw.d[0], &raw.d[1]);
		e = decode_raw(caps, raw.d[0], raw.d[1], &c, &inf);
		if (c.d[0] != raw.d[0] || c.d[1] != raw.d[1] ||
		    inf.cls != cmdq_classify(&raw) ||
		    inf.order != cmdq_order_class(&raw) ||
		    inf.cerror != cmdq_validate(caps, &raw, NULL) ||
		    e != inf.cerror || inf.op != cmdq_cmd_opcode(&raw) ||
		    ((inf.flags & CMDQ_INFO_SID) &&
		     inf.sid != cmdq_sid(&raw)) ||
		    ((inf.flags & CMDQ_INFO_SSID) &&
		     inf.ssid != cmdq_ssid(&raw))) {
			t_report(__FILE__, __LINE__,
				 "seed %#" PRIx64 " case %u: %#" PRIx64
				 ":%#" PRIx64 " decoded differently",
				 seed, i, raw.d[0], raw.d[1]);
			t_abort();
		}
		seen_cls[inf.cls]++;
		if (inf.cerror == CMDQ_CERROR_NONE)
			seen_ok++;
		else
			seen_ill++;
	}
	for (unsigned int k = 0; k < 5; k++)
		EXPECT_GT(seen_cls[k], 100);
	EXPECT_GT(seen_ok, cases / 50);
	EXPECT_GT(seen_ill, cases / 50);
	printf("# decode: seed %#" PRIx64 ", %u cases, %u valid\n", seed, cases,
	       seen_ok);
}

/* cmdq_coalesce_info() leaves a batch holding an opcode-0 entry alone. */
/*
 * Property: prepared caps (fast path from the masks) and the same caps
 * unprepared (full path for every caps-gated TLBI) decode every random
 * command alike, and preparing changes no field it reads.
 */
TEST_TIMEOUT(prepared_matches_unprepared, 60)
{
	uint64_t seed = t_seed(), s = seed;
	unsigned int seen_fast_ok = 0;
	const unsigned int cases = 300000;

	for (unsigned int i = 0; i < cases; i++) {
		struct cmdq_caps u, p;
		struct cmdq_cmd cu, cp, raw;
		struct cmdq_info iu, ip;
		enum cmdq_cerror eu, ep;

		pick_caps(&s, &u, false);
		p = u;
		cmdq_caps_prepare(&p);
		ASSERT_EQ(p.asid_bits, u.asid_bits);
		ASSERT_EQ(p.ssid_bits, u.ssid_bits);
		ASSERT_EQ(p.sid_bits, u.sid_bits);
		ASSERT_TRUE(p.range_inv == u.range_inv && p.ats == u.ats &&
			    p.ds == u.ds && p.gran4k == u.gran4k &&
			    p.gran16k == u.gran16k && p.gran64k == u.gran64k);
		random_cmd(&s, &raw.d[0], &raw.d[1]);
		memset(&iu, 0xa5, sizeof(iu));
		memset(&ip, 0x5a, sizeof(ip));
		eu = decode_raw(&u, raw.d[0], raw.d[1], &cu, &iu);
		ep = decode_raw(&p, raw.d[0], raw.d[1], &cp, &ip);
		if (eu != ep || cu.d[0] != cp.d[0] || cu.d[1] != cp.d[1] ||
		    iu.op != ip.op || iu.cls != ip.cls ||
		    iu.order != ip.order || iu.cerror != ip.cerror ||
		    iu.flags != ip.flags || iu.sid != ip.sid ||
		    iu.ssid != ip.ssid) {
			t_report(__FILE__, __LINE__,
				 "seed %#" PRIx64 " case %u: %#" PRIx64
				 ":%#" PRIx64 " decoded differently prepared",
				 seed, i, raw.d[0], raw.d[1]);
			t_abort();
		}
		if (ep == CMDQ_CERROR_NONE && (ip.op == CMDQ_OP_TLBI_NH_VA ||
					       ip.op == CMDQ_OP_TLBI_NH_VAA))
			seen_fast_ok++;
	}
	/* The random commands reach the masks' accepting side too. */
	EXPECT_GT(seen_fast_ok, cases / 1000);
}

TEST(coalesce_info_opcode0)
{
	struct cmdq_cmd c[3];
	struct cmdq_info inf[3];

	for (unsigned int i = 0; i < 2; i++)
		decode_raw(&cmdq_caps_full, 0x11 | 1ull << 48, 0, &c[i],
			   &inf[i]);
	decode_raw(&cmdq_caps_full, 0, 0, &c[2], &inf[2]);
	EXPECT_EQ(cmdq_coalesce_info(c, inf, 3), 3);
	/* Without it the duplicate goes. */
	EXPECT_EQ(cmdq_coalesce_info(c, inf, 2), 1);
}

TEST_HARNESS_MAIN
