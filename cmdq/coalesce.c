/* SPDX-License-Identifier: MIT */
/*
 * cmdq_coalesce(): the rules of cmdq.h, as passes over an index array.
 *
 * Complexity: O(n log n) time (each pass is one sort of the candidate
 * commands plus a linear sweep), no heap, about 12 KiB of stack. Commands
 * are handled in windows of COALESCE_WINDOW; each window is coalesced on
 * its own, so nothing is lost for correctness beyond a window, only some
 * shortening. For the common batch (1..8 commands) the passes touch a
 * handful of entries each.
 *
 * VMIDs are ignored when comparing TLBI commands: one batch belongs to one
 * vSMMU and the kernel overwrites the VMID of every TLBI_NH_* with that
 * vSMMU's (facts 4.1), and rewrites TLBI_NSNH_ALL to TLBI_NH_ALL.
 */
#include "cmdq/cmdq.h"

#include <stdlib.h>

#define COALESCE_WINDOW 512
/* Opcode 0 is no command: a dropped entry, removed by the final compaction. */
#define TOMBSTONE 0

struct ent {
	uint64_t k1, k2;
	uint32_t idx;
};

static int ent_cmp(const void *pa, const void *pb)
{
	const struct ent *a = pa, *b = pb;

	if (a->k1 != b->k1)
		return a->k1 < b->k1 ? -1 : 1;
	if (a->k2 != b->k2)
		return a->k2 < b->k2 ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static bool ent_less(const struct ent *a, const struct ent *b)
{
	if (a->k1 != b->k1)
		return a->k1 < b->k1;
	if (a->k2 != b->k2)
		return a->k2 < b->k2;
	return a->idx < b->idx;
}

/*
 * The worker coalesces every batch, most of a few dozen commands: there
 * glibc's qsort (a merge sort calling ent_cmp through a pointer) was most
 * of the service's instructions per command (docs/PERFORMANCE.md,
 * callgrind). Insertion sort, inline, up to ENT_SMALL entries.
 */
#define ENT_SMALL 48

static void ent_sort(struct ent *e, size_t m)
{
	if (m > ENT_SMALL) {
		qsort(e, m, sizeof(*e), ent_cmp);
		return;
	}
	for (size_t i = 1; i < m; i++) {
		struct ent x = e[i];
		size_t j = i;

		for (; j > 0 && ent_less(&x, &e[j - 1]); j--)
			e[j] = e[j - 1];
		e[j] = x;
	}
}

/* The opcode of a live FORWARD command, else 0 (left alone). */
static uint8_t fwd_op(const struct cmdq_cmd *c)
{
	if (cmdq_cmd_opcode(c) == TOMBSTONE ||
	    cmdq_classify(c) != CMDQ_CLASS_FORWARD)
		return 0;
	return cmdq_cmd_opcode(c);
}

static void drop(struct cmdq_cmd *c)
{
	c->d[0] = TOMBSTONE;
	c->d[1] = 0;
}

/* TLBI_NH_ALL / TLBI_NSNH_ALL drop every earlier TLBI_NH_* and NSNH_ALL. */
static void pass_all(struct cmdq_cmd *c, size_t n)
{
	size_t last = n;

	for (size_t i = n; i-- > 0;) {
		uint8_t op = fwd_op(&c[i]);

		if (op == CMDQ_OP_TLBI_NH_ALL || op == CMDQ_OP_TLBI_NSNH_ALL) {
			last = i;
			break;
		}
	}
	for (size_t i = 0; i < last && last < n; i++)
		if (cmdq_order_class(&c[i]) == CMDQ_ORDER_TLB)
			drop(&c[i]);
}

/*
 * CFGI_CD_ALL(s) drops earlier CFGI_CD(s, any SSID, any Leaf) and
 * CFGI_CD_ALL(s): it invalidates every CD and every L1CD descriptor cached
 * through StreamID s (SMMUv3 4.3.4), a superset of any CFGI_CD(s). Sorted
 * by (SID, position), each group is swept backwards from its last
 * superseder.
 *
 * There is deliberately no TLBI counterpart: TLBI_NH_ASID(a) does not
 * supersede TLBI_NH_VA(a, va), because by-VA invalidation also removes
 * global (nG = 0) entries for va, of any ASID, and by-ASID invalidation
 * removes only non-global ones (SMMUv3 4.4.2.2, 4.4.2.4). Only
 * TLBI_NH_ALL / TLBI_NSNH_ALL cover a by-VA invalidation (pass_all).
 */
static void pass_supersede(struct cmdq_cmd *c, size_t n, struct ent *e)
{
	size_t m = 0;

	for (size_t i = 0; i < n; i++) {
		uint8_t op = fwd_op(&c[i]);

		if (op == CMDQ_OP_CFGI_CD || op == CMDQ_OP_CFGI_CD_ALL)
			e[m++] =
				(struct ent){ cmdq_sid(&c[i]), 0, (uint32_t)i };
	}
	if (m < 2)
		return;
	ent_sort(e, m);
	for (size_t j = m; j-- > 0;) {
		bool superseded = false;
		size_t k = j;

		/* One group: e[first..j] share the SID. */
		for (;; k--) {
			struct cmdq_cmd *ci = &c[e[k].idx];

			if (superseded)
				drop(ci);
			else if (cmdq_cmd_opcode(ci) == CMDQ_OP_CFGI_CD_ALL)
				superseded = true;
			if (k == 0 || e[k - 1].k1 != e[j].k1)
				break;
		}
		j = k;
	}
}

/* Exact duplicates (VMID ignored for TLBIs): keep the first. */
static void pass_dups(struct cmdq_cmd *c, size_t n, struct ent *e)
{
	size_t m = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t d0 = c[i].d[0];

		if (!fwd_op(&c[i]))
			continue;
		if (cmdq_order_class(&c[i]) == CMDQ_ORDER_TLB)
			d0 &= ~cmdq_field_mask(CMDQ_F_VMID);
		e[m++] = (struct ent){ d0, c[i].d[1], (uint32_t)i };
	}
	ent_sort(e, m);
	for (size_t j = 1; j < m; j++)
		if (e[j].k1 == e[j - 1].k1 && e[j].k2 == e[j - 1].k2)
			drop(&c[e[j].idx]);
}

/* SCALE d0[24:20] without DS; d0[25] (SCALE >= 32) needs DS. */
#define MERGE_SCALE_MAX 31

static unsigned int granule_shift(unsigned int tg)
{
	return 12 + 2 * (tg - 1); /* 4K, 16K, 64K */
}

/* First granule and count of a range-form TLBI_NH_VA/VAA. */
static uint64_t range_start(const struct cmdq_cmd *c)
{
	return cmdq_addr(c) >> granule_shift((unsigned int)cmdq_tlbi_tg(c));
}

static uint64_t range_len(const struct cmdq_cmd *c)
{
	return (cmdq_tlbi_num(c) + 1) << cmdq_tlbi_scale(c);
}

/*
 * Rewrite @a to cover the union of @a and @b if that union is one range
 * exactly representable as (NUM + 1) << SCALE with SCALE <= 31 (SCALE >= 32
 * needs DS, which we cannot see; pass_ranges leaves such inputs alone).
 * Leaf is the AND: a Leaf = 1 invalidation need not remove walk-cache
 * (table) entries, so only a non-leaf one covers a non-leaf one. TTL is
 * kept only if equal, else 0 (any level): a TTL hint limits what must be
 * invalidated to leaf entries of that level (SMMUv3 4.4.1.1). Both inputs
 * share the TG, and only entries of that granule need be invalidated.
 */
static bool merge_range(struct cmdq_cmd *a, const struct cmdq_cmd *b)
{
	uint64_t s = range_start(a), e = s + range_len(a);
	uint64_t bs = range_start(b), be = bs + range_len(b);
	uint64_t len, odd;
	unsigned int scale;
	uint64_t ttl = cmdq_tlbi_ttl(a) == cmdq_tlbi_ttl(b) ? cmdq_tlbi_ttl(a) :
							      0;

	if (bs > e || s > be)
		return false; /* a gap: the union is not one range */
	if (bs < s)
		s = bs;
	if (be > e)
		e = be;
	len = e - s;
	scale = (unsigned int)__builtin_ctzll(len);
	odd = len >> scale;
	if (odd - 1 > CMDQ_TLBI_RANGE_NUM_MAX || scale > MERGE_SCALE_MAX)
		return false;
	if (odd == 1 && scale == 0 && ttl == 0)
		return false; /* NUM = SCALE = TTL = 0 with TG set: reserved */
	cmdq_set(a, CMDQ_F_ADDR,
		 s << granule_shift((unsigned int)cmdq_tlbi_tg(a)));
	cmdq_set(a, CMDQ_F_NUM, odd - 1);
	cmdq_set(a, CMDQ_F_SCALE, scale);
	cmdq_set(a, CMDQ_F_TTL, ttl);
	cmdq_set(a, CMDQ_F_LEAF, cmdq_leaf(a) & cmdq_leaf(b));
	return true;
}

/*
 * Range-form (TG != 0) TLBI_NH_VA/VAA of one (opcode, ASID, TG), sorted by
 * start, merged greedily with their successor while the union is
 * representable. Only granule-aligned addresses and SCALE <= 31 take part
 * (so no range length or end overflows). Range-form and non-range (TG = 0)
 * commands never merge: TG != 0 limits the invalidation to entries of that
 * granule, TG = 0 does not.
 */
static void pass_ranges(struct cmdq_cmd *c, size_t n, struct ent *e)
{
	size_t m = 0;

	for (size_t i = 0; i < n; i++) {
		uint8_t op = fwd_op(&c[i]);
		unsigned int tg = (unsigned int)cmdq_tlbi_tg(&c[i]);
		uint64_t asid;

		if ((op != CMDQ_OP_TLBI_NH_VA && op != CMDQ_OP_TLBI_NH_VAA) ||
		    !tg)
			continue;
		if (cmdq_addr(&c[i]) & ((1ull << granule_shift(tg)) - 1) ||
		    cmdq_tlbi_scale(&c[i]) > MERGE_SCALE_MAX)
			continue;
		asid = op == CMDQ_OP_TLBI_NH_VA ? cmdq_tlbi_asid(&c[i]) : 0;
		e[m++] = (struct ent){ (uint64_t)op << 32 | asid << 8 | tg,
				       range_start(&c[i]), (uint32_t)i };
	}
	ent_sort(e, m);
	for (size_t j = 0, cur = 0; j < m; j++) {
		if (j == 0 || e[j].k1 != e[cur].k1 ||
		    !merge_range(&c[e[cur].idx], &c[e[j].idx]))
			cur = j;
		else
			drop(&c[e[j].idx]);
	}
}

size_t cmdq_coalesce(struct cmdq_cmd *cmds, size_t n)
{
	struct ent e[COALESCE_WINDOW];
	size_t out = 0;

	/* Opcode 0 is our tombstone; such an entry is no FORWARD command
	 * (contract violation): leave the batch as it is. */
	for (size_t i = 0; i < n; i++)
		if (cmdq_cmd_opcode(&cmds[i]) == TOMBSTONE)
			return n;
	for (size_t w = 0; w < n; w += COALESCE_WINDOW) {
		size_t m = n - w < COALESCE_WINDOW ? n - w : COALESCE_WINDOW;

		if (m < 2)
			continue;
		pass_all(cmds + w, m);
		pass_supersede(cmds + w, m, e);
		pass_dups(cmds + w, m, e);
		pass_ranges(cmds + w, m, e);
	}
	/* Stable compaction keeps ring order among the survivors. */
	for (size_t i = 0; i < n; i++)
		if (cmdq_cmd_opcode(&cmds[i]) != TOMBSTONE)
			cmds[out++] = cmds[i];
	return out;
}
