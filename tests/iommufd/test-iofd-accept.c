/* SPDX-License-Identifier: MIT */
/*
 * cmdq_validate() (the service's check, the code under test) against
 * iofd_accept_cmd() (the kernel's rules as the sim and the fake /dev/iommu
 * apply them, written independently from the facts doc): for every opcode,
 * every single bit and the interesting values of every field, under the
 * caps profiles of tests/cmdq/test-cmdq-validate.c and a sweep of the rest,
 * the service forwards a command exactly when the kernel accepts it.
 *
 * One difference is intended and pinned here: the service also refuses a
 * TLBI whose TG names a granule the host lacks (docs/ARCHITECTURE.md
 * "Validation"); the kernel does not check it. Any other disagreement
 * fails, and says which command.
 */
#include "cmdq/cmdq.h"
#include "iommufd/accept.h"
#include "tests/harness.h"

static struct iofd_accept_caps to_accept(const struct cmdq_caps *c)
{
	return (struct iofd_accept_caps){ .asid_bits = c->asid_bits,
					  .ssid_bits = c->ssid_bits,
					  .range_inv = c->range_inv,
					  .ats = c->ats,
					  .ds = c->ds };
}

/* The one intended difference: TG for a granule the host does not have. */
static bool granule_missing(const struct cmdq_caps *caps, uint64_t d0,
			    uint64_t d1)
{
	uint8_t op = d0 & 0xff;
	unsigned int tg = (d1 >> 10) & 3;

	if (op != 0x12 && op != 0x13)
		return false;
	return (tg == 1 && !caps->gran4k) || (tg == 2 && !caps->gran16k) ||
	       (tg == 3 && !caps->gran64k);
}

struct tally {
	unsigned long checked, accepted, bad;
};

static void agree(struct tally *t, const char *profile,
		  const struct cmdq_caps *caps, uint64_t d0, uint64_t d1)
{
	struct iofd_accept_caps ac = to_accept(caps);
	struct cmdq_cmd c = { { d0, d1 } };
	const char *why_k = NULL, *why_s = NULL;
	bool kernel = iofd_accept_cmd(&ac, d0, d1, &why_k) == 0;
	bool service = cmdq_classify(&c) == CMDQ_CLASS_FORWARD &&
		       cmdq_validate(caps, &c, &why_s) == CMDQ_CERROR_NONE;

	t->checked++;
	t->accepted += kernel;
	if (kernel == service)
		return;
	if (kernel && !service && granule_missing(caps, d0, d1))
		return;
	if (t->bad++ < 20)
		t_report(__FILE__, __LINE__,
			 "%s: %016" PRIx64 " %016" PRIx64
			 ": kernel table %s (%s), cmdq_validate %s (%s)",
			 profile, d0, d1, kernel ? "accepts" : "rejects",
			 why_k ? why_k : "-", service ? "accepts" : "rejects",
			 why_s ? why_s : "-");
}

static const struct cmdq_caps caps_small = { .asid_bits = 8,
					     .sid_bits = 8,
					     .gran4k = true };
static const struct cmdq_caps caps_16k_nods = { .asid_bits = 16,
						.range_inv = true,
						.gran16k = true };
static const struct cmdq_caps caps_ats_nossid = { .ats = true };

static const struct {
	const char *name;
	const struct cmdq_caps *caps;
} profiles[] = {
	{ "full", &cmdq_caps_full },	    { "qemu", &cmdq_caps_qemu },
	{ "small", &caps_small },	    { "16k-nods", &caps_16k_nods },
	{ "ats-nossid", &caps_ats_nossid },
};

/*
 * Commands that each rule can hinge on: a valid base per forwarded opcode
 * (so a single extra bit is judged alone) and the zero command.
 */
static const uint64_t bases[][2] = {
	{ 0, 0 },
	{ 0x0001000000001012ull, 0x400 }, /* NH_VA, TG 4K NUM 1 */
	{ 0x0000000000001013ull, 0x400 }, /* NH_VAA, TG 4K NUM 1 */
	{ 0x0001000000000012ull, 0x1000 }, /* NH_VA, no range */
	{ 0x0000000000000013ull, 0x1000 }, /* NH_VAA, no range */
	{ 0x0000000000000012ull, 0x800 | 0x100 }, /* NH_VA 16K TTL 1 */
	{ 0x0000000000000012ull, 0xc00 | 0x300 }, /* NH_VA 64K TTL 3 */
	{ 0x0000000000000012ull, 0x400 | 0x300 }, /* NH_VA 4K TTL 3 */
	{ 0x0000000000000040ull, 52 }, /* ATC_INV all */
	{ 0x0000000000000a40ull, 0 }, /* ATC_INV SSV Global */
};

TEST(every_opcode_and_bit)
{
	struct tally t = { 0 };

	for (size_t p = 0; p < sizeof(profiles) / sizeof(profiles[0]); p++) {
		const struct cmdq_caps *caps = profiles[p].caps;

		for (unsigned int op = 0; op < 256; op++) {
			for (size_t b = 0; b < sizeof(bases) / sizeof(bases[0]);
			     b++) {
				uint64_t d0 = (bases[b][0] & ~0xffull) | op;
				uint64_t d1 = bases[b][1];

				agree(&t, profiles[p].name, caps, d0, d1);
				for (unsigned int bit = 8; bit < 128; bit++) {
					uint64_t m = 1ull << (bit % 64);

					if (bit < 64)
						agree(&t, profiles[p].name,
						      caps, d0 ^ m, d1);
					else
						agree(&t, profiles[p].name,
						      caps, d0, d1 ^ m);
				}
			}
		}
	}
	printf("# %lu commands compared, %lu accepted by both\n", t.checked,
	       t.accepted);
	ASSERT_EQ(t.bad, 0);
	/* The sweep reaches acceptance, not only rejections. */
	ASSERT_GT(t.accepted, 1000);
}

/*
 * Field values: every TLBI range combination (TG, TTL, NUM corner, all 64
 * SCALE values), ASID widths, ATC_INV sizes 0..63 with SSV/Global, CFGI_CD
 * SSID, under every combination of the caps the rules read.
 */
TEST(field_values_and_caps_sweep)
{
	struct tally t = { 0 };
	char name[64];

	for (unsigned int k = 0; k < 128; k++) {
		struct cmdq_caps caps = {
			.asid_bits = k & 1 ? 16 : 8,
			.ssid_bits = k & 2 ? 20 : 0,
			.range_inv = k & 4,
			.ats = k & 8,
			.ds = k & 16,
			.gran4k = true,
			.gran16k = k & 32,
			.gran64k = k & 64,
		};

		snprintf(name, sizeof(name), "caps %#x", k);
		for (unsigned int op = 0x12; op <= 0x13; op++)
			for (unsigned int tg = 0; tg < 4; tg++)
				for (unsigned int ttl = 0; ttl < 4; ttl++)
					for (unsigned int sc = 0; sc < 64; sc++)
						for (unsigned int num = 0;
						     num < 32; num += 31)
							agree(&t, name, &caps,
							      op |
								      (uint64_t)num
									      << 12 |
								      (uint64_t)sc
									      << 20,
							      (uint64_t)tg << 10 |
								      (uint64_t)ttl
									      << 8 |
								      0x10000);
		for (unsigned int a = 0; a < 16; a++) {
			uint64_t asid = 1ull << a;

			agree(&t, name, &caps, 0x11 | asid << 48, 0);
			agree(&t, name, &caps, 0x12 | asid << 48, 0x2000);
			agree(&t, name, &caps, 0x13 | asid << 48, 0x2000);
		}
		for (unsigned int size = 0; size < 64; size++)
			for (unsigned int f = 0; f < 8; f++)
				agree(&t, name, &caps,
				      0x40 | (f & 1ull) << 9 |
					      (f & 2ull) << 10 |
					      (f & 4 ? 7ull << 12 : 0) |
					      5ull << 32,
				      size | 0x4000);
		for (unsigned int ssid = 0; ssid < 2; ssid++)
			for (unsigned int leaf = 0; leaf < 2; leaf++)
				agree(&t, name, &caps,
				      0x05 | (uint64_t)ssid << 12 | 3ull << 32,
				      leaf);
	}
	printf("# %lu commands compared, %lu accepted by both\n", t.checked,
	       t.accepted);
	ASSERT_EQ(t.bad, 0);
	ASSERT_GT(t.accepted, 1000);
}

TEST_HARNESS_MAIN
