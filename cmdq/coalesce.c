/* SPDX-License-Identifier: MIT */
/*
 * cmdq_coalesce(): the rules of cmdq.h, as passes over an index array.
 *
 * Complexity: O(n log n) time (each pass is one sort of the candidate
 * commands plus a linear sweep), no heap, about 33 KiB of stack (41 KiB
 * for cmdq_coalesce(), which decodes a window into its own array). Commands
 * are handled in windows of COALESCE_WINDOW; each window is coalesced on
 * its own, so nothing is lost for correctness beyond a window, only some
 * shortening. The passes read opcode, class and SID from the caller's
 * struct cmdq_info; only the fields they compare or merge (addresses,
 * ranges, ASID) are read from the commands.
 *
 * The common batch (TLBI_NH_VA of one ASID, or one or a few per ASID as
 * when a worker gathers the unmaps of many vCPUs; nothing to merge) costs
 * one linear scan and a sort of the few candidates that are not isolated
 * (often none): the superseding passes run only when a superseder is in
 * the window, and duplicates and range merges share one sort
 * (pass_tlbi_va). The general passes (pass_dups, pass_ranges) remain for
 * windows whose candidates that are not isolated span more groups.
 *
 * VMIDs are ignored when comparing TLBI commands: one batch belongs to one
 * vSMMU and the kernel overwrites the VMID of every TLBI_NH_* with that
 * vSMMU's (facts 4.1), and rewrites TLBI_NSNH_ALL to TLBI_NH_ALL.
 */
#include "cmdq/cmdq.h"
#include "cmdq/cmdq_i.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define COALESCE_WINDOW 512

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

/*
 * One window of a batch: its commands, what the caller decoded of each
 * (as passed in: merges change addresses and ranges, never the opcode or
 * SID), and which ones a pass dropped.
 */
struct win {
	struct cmdq_cmd *c;
	const struct cmdq_info *inf;
	bool *dead;
	size_t n;
	struct ent *e; /* [COALESCE_WINDOW] sort scratch */
	uint64_t *key, *tmp, *grp; /* [COALESCE_WINDOW] each, pass_tlbi_va */
	uint64_t *ht; /* [2 * COALESCE_WINDOW] */
	bool superseded; /* pass_all() and pass_supersede() have run */
};

/* The sort scratch of one coalescing call, reused by every window. */
struct scratch {
	struct ent e[COALESCE_WINDOW];
	uint64_t key[COALESCE_WINDOW], tmp[COALESCE_WINDOW];
	uint64_t grp[COALESCE_WINDOW];
	uint64_t ht[2 * COALESCE_WINDOW]; /* iso_add()'s bitmaps */
};

/* The opcode of a live FORWARD command, else 0 (left alone). */
static uint8_t fwd_op(const struct win *w, size_t i)
{
	if (w->dead[i] || w->inf[i].cls != CMDQ_CLASS_FORWARD)
		return 0;
	return w->inf[i].op;
}

/* A live command of ordering class @order (FORWARD commands only). */
static bool live_order(const struct win *w, size_t i, unsigned int order)
{
	return !w->dead[i] && w->inf[i].cls == CMDQ_CLASS_FORWARD &&
	       w->inf[i].order == order;
}

/* TLBI_NH_ALL / TLBI_NSNH_ALL drop every earlier TLBI_NH_* and NSNH_ALL. */
static void pass_all(struct win *w)
{
	size_t last = w->n;

	for (size_t i = w->n; i-- > 0;) {
		uint8_t op = fwd_op(w, i);

		if (op == CMDQ_OP_TLBI_NH_ALL || op == CMDQ_OP_TLBI_NSNH_ALL) {
			last = i;
			break;
		}
	}
	for (size_t i = 0; i < last && last < w->n; i++)
		if (live_order(w, i, CMDQ_ORDER_TLB))
			w->dead[i] = true;
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
static void pass_supersede(struct win *w)
{
	struct ent *e = w->e;
	size_t m = 0;

	for (size_t i = 0; i < w->n; i++) {
		uint8_t op = fwd_op(w, i);

		if (op == CMDQ_OP_CFGI_CD || op == CMDQ_OP_CFGI_CD_ALL)
			e[m++] = (struct ent){ w->inf[i].sid, 0, (uint32_t)i };
	}
	if (m < 2)
		return;
	ent_sort(e, m);
	for (size_t j = m; j-- > 0;) {
		bool superseded = false;
		size_t k = j;

		/* One group: e[first..j] share the SID. */
		for (;; k--) {
			uint32_t ci = e[k].idx;

			if (superseded)
				w->dead[ci] = true;
			else if (w->inf[ci].op == CMDQ_OP_CFGI_CD_ALL)
				superseded = true;
			if (k == 0 || e[k - 1].k1 != e[j].k1)
				break;
		}
		j = k;
	}
}

/* Exact duplicates (VMID ignored for TLBIs): keep the first. */
static void pass_dups(struct win *w)
{
	struct ent *e = w->e;
	size_t m = 0;

	for (size_t i = 0; i < w->n; i++) {
		uint64_t d0 = w->c[i].d[0];

		if (!fwd_op(w, i))
			continue;
		if (w->inf[i].order == CMDQ_ORDER_TLB)
			d0 &= ~cmdq_field_mask(CMDQ_F_VMID);
		e[m++] = (struct ent){ d0, w->c[i].d[1], (uint32_t)i };
	}
	ent_sort(e, m);
	for (size_t j = 1; j < m; j++)
		if (e[j].k1 == e[j - 1].k1 && e[j].k2 == e[j - 1].k2)
			w->dead[e[j].idx] = true;
}

/* SCALE d0[24:20] without DS; d0[25] (SCALE >= 32) needs DS. */
#define MERGE_SCALE_MAX 31

static inline unsigned int granule_shift(unsigned int tg)
{
	return 12 + 2 * (tg - 1); /* 4K, 16K, 64K */
}

/* First granule and count of a range-form TLBI_NH_VA/VAA. */
static inline uint64_t range_start(const struct cmdq_cmd *c)
{
	return cmdq_addr(c) >> granule_shift((unsigned int)cmdq_tlbi_tg(c));
}

static inline uint64_t range_len(const struct cmdq_cmd *c)
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
static void pass_ranges(struct win *w)
{
	struct cmdq_cmd *c = w->c;
	struct ent *e = w->e;
	size_t m = 0;

	for (size_t i = 0; i < w->n; i++) {
		uint8_t op = fwd_op(w, i);
		unsigned int tg;
		uint64_t asid;

		if (op != CMDQ_OP_TLBI_NH_VA && op != CMDQ_OP_TLBI_NH_VAA)
			continue;
		tg = (unsigned int)cmdq_tlbi_tg(&c[i]);
		if (!tg ||
		    cmdq_addr(&c[i]) & ((1ull << granule_shift(tg)) - 1) ||
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
			w->dead[e[j].idx] = true;
	}
}

/*
 * The key sort of pass_tlbi_va: insertion sort for short runs, else a
 * bottom-up merge sort through @tmp. Keys are distinct (the low bits are
 * the index), so stability does not matter.
 */
#define KEY_SMALL 16

static void key_isort(uint64_t *k, size_t m)
{
	for (size_t i = 1; i < m; i++) {
		uint64_t x = k[i];
		size_t j = i;

		for (; j > 0 && x < k[j - 1]; j--)
			k[j] = k[j - 1];
		k[j] = x;
	}
}

static void key_sort(uint64_t *k, uint64_t *tmp, size_t m)
{
	uint64_t *src = k, *dst = tmp;

	if (m <= KEY_SMALL) {
		key_isort(k, m);
		return;
	}
	for (size_t i = 0; i < m; i += KEY_SMALL)
		key_isort(k + i, m - i < KEY_SMALL ? m - i : KEY_SMALL);
	for (size_t w = KEY_SMALL; w < m; w *= 2) {
		for (size_t lo = 0; lo < m; lo += 2 * w) {
			size_t mid = lo + w < m ? lo + w : m;
			size_t hi = lo + 2 * w < m ? lo + 2 * w : m;
			size_t a = lo, b = mid, o = lo;

			while (a < mid && b < hi)
				dst[o++] = src[a] < src[b] ? src[a++] :
							     src[b++];
			while (a < mid)
				dst[o++] = src[a++];
			while (b < hi)
				dst[o++] = src[b++];
		}
		uint64_t *t = src;

		src = dst;
		dst = t;
	}
	if (src != k)
		memcpy(k, src, m * sizeof(*k));
}

/* pass_tlbi_va()'s keys: group << 61 | start << 9 | index. */
#define KEY_GROUPS 8
#define KEY_IDX_BITS 9
#define KEY_GROUP_SHIFT 61

_Static_assert(COALESCE_WINDOW <= 1u << KEY_IDX_BITS, "index fits the key");

/*
 * Detecting the batch with nothing to merge before sorting. Two candidates
 * of one group that touch or overlap (s1 <= s2 <= s1 + len1) lie at most
 * one bucket apart when a bucket is 2^B granules and every length is at
 * most 2^B; so do duplicates (same start). A candidate whose bucket holds
 * no other candidate of its group, and whose neighbouring buckets hold
 * none, is isolated: it touches no candidate, nor any union of candidates
 * (a union that reaches it contains a member that starts or ends within
 * one length of it), so it takes part in no merge and no duplicate, and
 * leaving it out of the sort changes no merge of the others: no range
 * that reaches past it without touching it could have merged across it.
 * Two bitmaps say which (group, bucket) slots hold one candidate or more,
 * and which hold two or more. One bit per slot, slot = (bucket + hash of
 * the group's (opcode, ASID, TG)) mod (64 per command of the window, or
 * per candidate on a refill, rounded up to a power of two), so
 * neighbouring buckets of a group are neighbouring bits. Slots may
 * collide: a collision only makes a candidate look non-isolated, and it
 * is then sorted. The slots are filled during pass_tlbi_va()'s scan (no
 * second pass over the keys) and read once. Hashing the group itself,
 * not its index, lets the scan see any number of groups: only the
 * candidates that are not isolated need a group index (at most
 * KEY_GROUPS), so a batch of one unmap per vCPU, each with its own ASID,
 * takes this path too.
 */
#define SLOTS_PER_CAND 64

static inline bool bit_get(const uint64_t *bm, size_t i)
{
	return bm[i / 64] >> (i % 64) & 1;
}

static inline void bit_set(uint64_t *bm, size_t i)
{
	bm[i / 64] |= 1ull << (i % 64);
}

/*
 * The slot bitmaps for up to @m candidates: a power of two of words
 * (<= COALESCE_WINDOW), so slots wrap; cleared. Returns the slot mask.
 */
static size_t iso_clear(struct win *w, size_t m)
{
	size_t words = 1;

	while (words * 64 < m * SLOTS_PER_CAND)
		words *= 2;
	memset(w->ht, 0, words * sizeof(*w->ht));
	memset(w->ht + COALESCE_WINDOW, 0, words * sizeof(*w->ht));
	return words * 64 - 1;
}

/* A group's slot offset: the multiply mixes the ASID into the low bits. */
static inline uint64_t iso_hash(uint64_t k1)
{
	return k1 * 0x9e3779b97f4a7c15ull >> 32;
}

/*
 * Candidate @j of the group hashed to @h, first granule @start, in bucket
 * width 2^@b.
 */
static inline void iso_add(struct win *w, size_t j, uint64_t h, uint64_t start,
			   unsigned int b, size_t mask)
{
	uint64_t *seen = w->ht, *twice = w->ht + COALESCE_WINDOW;
	size_t sl = (size_t)((start >> b) + h) & mask;

	if (bit_get(seen, sl))
		bit_set(twice, sl);
	bit_set(seen, sl);
	w->tmp[j] = sl;
}

/*
 * The index of group @k1 among the kept candidates' groups (@group[0,
 * *ng), numbered in order of first appearance), or -1 if it needs more
 * than KEY_GROUPS groups.
 */
static inline int key_group(uint64_t k1, uint64_t *group, unsigned int *ng)
{
	unsigned int g;

	/* Usually one group: the first compare finds it. */
	if (*ng && group[0] == k1)
		return 0;
	for (g = 1; g < *ng && group[g] != k1; g++)
		;
	if (g >= *ng) {
		if (*ng == KEY_GROUPS)
			return -1;
		g = (*ng)++;
		group[g] = k1;
	}
	return (int)g;
}

/*
 * Drops the isolated candidates from @key[0, m) (start << KEY_IDX_BITS |
 * index, group @grp[j]), whose slots iso_add() recorded with a bucket
 * width 2^b >= every length, and gives each one kept its group's index
 * (key_group()) in the key's top bits. Returns how many remain, or
 * SIZE_MAX if they need more than KEY_GROUPS groups (the keys are then
 * partly rewritten: the caller uses the general passes).
 */
static size_t iso_keep(struct win *w, size_t m, size_t mask)
{
	const uint64_t *seen = w->ht, *twice = w->ht + COALESCE_WINDOW;
	uint64_t group[KEY_GROUPS];
	unsigned int ng = 0;
	size_t out = 0;
	int g;

	for (size_t j = 0; j < m; j++) {
		uint64_t k = w->key[j];
		size_t sl = (size_t)w->tmp[j], bit = sl % 64;
		bool near;

		/* Both neighbours in sl's word, one shift; else bit by bit. */
		if (bit - 1 < 62)
			near = (seen[sl / 64] >> (bit - 1) & 5) ||
			       (twice[sl / 64] >> bit & 1);
		else
			near = bit_get(twice, sl) ||
			       bit_get(seen, (sl - 1) & mask) ||
			       bit_get(seen, (sl + 1) & mask);
		if (!near)
			continue;
		g = key_group(w->grp[j], group, &ng);
		if (g < 0)
			return SIZE_MAX;
		w->key[out++] = (uint64_t)g << KEY_GROUP_SHIFT | k;
	}
	return out;
}

/*
 * A window of at most ISO_PAIRS commands skips the bitmaps (clearing them
 * and the two passes cost more than comparing every pair of so few
 * candidates), and so does the scan that would fill them. At 8, callgrind
 * (bench/coalesce-replay -k 4): 5.66 M -> 4.44 M Ir; at 16 windows of 16
 * candidates (-k 16) cost more by pairs than with the bitmaps.
 */
#define ISO_PAIRS 8

_Static_assert(ISO_PAIRS <= 32, "one bit per candidate in a uint32_t");

/*
 * iso_keep() for m <= ISO_PAIRS candidates, by pairs: a candidate is kept
 * if another of its group starts in its own or a neighbouring bucket of
 * 2^b >= every length granules (lenor is the OR of (length - 1)).
 */
static size_t iso_keep_pairs(struct win *w, size_t m, uint64_t lenor)
{
	unsigned int sh =
		KEY_IDX_BITS +
		(lenor ? 64 - (unsigned int)__builtin_clzll(lenor) : 0);
	uint64_t group[KEY_GROUPS];
	unsigned int ng = 0;
	uint32_t near = 0;
	size_t out = 0;
	int g;

	for (size_t j = 1; j < m; j++) {
		uint64_t bj = w->key[j] >> sh, gj = w->grp[j];

		for (size_t k = 0; k < j; k++)
			if (w->grp[k] == gj && (w->key[k] >> sh) - bj + 1 <= 2)
				near |= 1u << j | 1u << k;
	}
	for (size_t j = 0; near; j++, near >>= 1) {
		if (!(near & 1))
			continue;
		g = key_group(w->grp[j], group, &ng);
		if (g < 0)
			return SIZE_MAX;
		w->key[out++] = (uint64_t)g << KEY_GROUP_SHIFT | w->key[j];
	}
	return out;
}

/*
 * pass_tlbi_va() adds each candidate's slot as it scans, with buckets of
 * 2^ISO_B0 granules, before it knows the longest range; a window with a
 * longer one is refilled with the width it needs (iso_refill()). A wider
 * bucket than needed is still exact (only fewer candidates look
 * isolated); 32 granules covers the unmaps of a few pages that are the
 * common batch.
 */
#define ISO_B0 5

/* Refills the slots of @key[0, m) (not yet keyed with their group) with
 * 2^b >= every length (lenor is the OR of (length - 1)); returns the slot
 * mask. */
static size_t iso_refill(struct win *w, size_t m, uint64_t lenor)
{
	unsigned int b = lenor ? 64 - (unsigned int)__builtin_clzll(lenor) : 0;
	size_t mask = iso_clear(w, m);

	for (size_t j = 0; j < m; j++)
		iso_add(w, j, iso_hash(w->grp[j]), w->key[j] >> KEY_IDX_BITS, b,
			mask);
	return mask;
}

/*
 * pass_dups() and pass_ranges() in one sort, for the common batch: every
 * range candidate of pass_ranges() that is not isolated in at most
 * KEY_GROUPS (opcode, ASID, TG) groups (usually one: a guest unmapping in
 * one address space; any number when each ASID has one candidate). A
 * candidate is one 64-bit key, group << 61 | start << 9 | index (start <
 * 2^52: the address is 52 bits above 4 KiB; index < 512), so the sort
 * moves 8 bytes and compares once, and sorted keys are in pass_ranges()'s
 * (group, start, index) order. Exact duplicates of a candidate are
 * candidates with the same group and start: the lowest index of each
 * equal set survives, as in pass_dups(). The other FORWARD commands go
 * through pass_dups()'s sort. Same result as pass_dups() then
 * pass_ranges(); returns TV_GROUPS (nothing done) when the candidates that
 * are not isolated need more groups, and the caller runs those two passes
 * instead (the scan was complete: no opcode 0, no live superseder). The
 * scan stops at the first superseder until the superseding passes have
 * run (TV_SUPERSEDER), and at an opcode-0 entry (TV_OPCODE0).
 */
enum tv_result {
	TV_DONE, /* duplicates and merges done */
	TV_GROUPS, /* too many groups: nothing done, use the general passes
		    * (the scan saw every command) */
	TV_SUPERSEDER, /* a superseder, and w->superseded is not set */
	TV_OPCODE0, /* an opcode-0 entry: leave the batch alone */
};

/*
 * pass_tlbi_va()'s body. @fill: the window is longer than ISO_PAIRS, so
 * the scan fills the isolation bitmaps; a constant at each call (always
 * inlined), so the scan loop does not test it.
 */
static inline __attribute__((always_inline)) enum tv_result
tv_body(struct win *w, bool fill)
{
	const uint64_t vmid = cmdq_field_mask(CMDQ_F_VMID);
	struct cmdq_cmd *c = w->c;
	size_t m = 0, mo = 0;
	uint64_t cur_end = 0, lenor = 0;
	size_t mask = fill ? iso_clear(w, w->n) : 0;

	for (size_t i = 0, n = w->n; i < n; i++) {
		const struct cmdq_info *inf = &w->inf[i];
		/* A private copy: the key stores below cannot alias it. */
		const struct cmdq_cmd x = c[i];
		uint8_t op = inf->op;
		unsigned int tg, sh;
		uint64_t k1, d0, addr, start;

		if (!op)
			return TV_OPCODE0;
		/* Nothing is dead before the superseding passes. */
		if (inf->cls != CMDQ_CLASS_FORWARD ||
		    (w->superseded && w->dead[i]))
			continue;
		tg = (unsigned int)cmdq_tlbi_tg(&x);
		sh = granule_shift(tg);
		addr = cmdq_addr(&x);
		if ((op != CMDQ_OP_TLBI_NH_VA && op != CMDQ_OP_TLBI_NH_VAA) ||
		    !tg || addr & ((1ull << sh) - 1) ||
		    cmdq_tlbi_scale(&x) > MERGE_SCALE_MAX) {
			/* Superseders are never range candidates: looking
			 * for them costs the common batch nothing. */
			if (!w->superseded && (op == CMDQ_OP_TLBI_NH_ALL ||
					       op == CMDQ_OP_TLBI_NSNH_ALL ||
					       op == CMDQ_OP_CFGI_CD_ALL))
				return TV_SUPERSEDER;
			d0 = x.d[0];
			if (inf->order == CMDQ_ORDER_TLB)
				d0 &= ~vmid;
			w->e[mo++] = (struct ent){ d0, x.d[1], (uint32_t)i };
			continue;
		}
		k1 = (uint64_t)op << 32 |
		     (op == CMDQ_OP_TLBI_NH_VA ? cmdq_tlbi_asid(&x) : 0) << 8 |
		     tg;
		start = addr >> sh;
		if (fill)
			iso_add(w, m, iso_hash(k1), start, ISO_B0, mask);
		/* The group index comes with iso_keep(), for the kept. */
		w->grp[m] = k1;
		w->key[m++] = start << KEY_IDX_BITS | i;
		lenor |= range_len(&x) - 1;
	}
	if (m >= 2 && !fill) {
		m = iso_keep_pairs(w, m, lenor);
		if (m == SIZE_MAX)
			return TV_GROUPS;
	} else if (m >= 2) {
		if (lenor >> ISO_B0)
			mask = iso_refill(w, m, lenor);
		m = iso_keep(w, m, mask);
		if (m == SIZE_MAX)
			return TV_GROUPS;
	}
	/* Exact duplicates among the others (pass_dups()). */
	if (mo >= 2) {
		ent_sort(w->e, mo);
		for (size_t j = 1; j < mo; j++)
			if (w->e[j].k1 == w->e[j - 1].k1 &&
			    w->e[j].k2 == w->e[j - 1].k2)
				w->dead[w->e[j].idx] = true;
	}
	if (m < 2)
		return TV_DONE;
	key_sort(w->key, w->tmp, m);
	/* Duplicates: same group and start, then equal bits (VMID aside). */
	for (size_t j = 1; j < m; j++) {
		size_t ci = w->key[j] & ((1u << KEY_IDX_BITS) - 1);

		for (size_t k = j;
		     k-- > 0 &&
		     w->key[k] >> KEY_IDX_BITS == w->key[j] >> KEY_IDX_BITS;) {
			size_t ck = w->key[k] & ((1u << KEY_IDX_BITS) - 1);

			if (!w->dead[ck] &&
			    !((c[ck].d[0] ^ c[ci].d[0]) & ~vmid) &&
			    c[ck].d[1] == c[ci].d[1]) {
				w->dead[ci] = true;
				break;
			}
		}
	}
	/*
	 * Range merges of the survivors (pass_ranges()). Sorted by start, a
	 * candidate that starts after the current range's end leaves a gap,
	 * which merge_range() would refuse: skip the call.
	 */
	for (size_t j = 0, cur = SIZE_MAX; j < m; j++) {
		size_t ci = w->key[j] & ((1u << KEY_IDX_BITS) - 1);
		uint64_t start =
			(w->key[j] & ((1ull << KEY_GROUP_SHIFT) - 1)) >>
			KEY_IDX_BITS;
		struct cmdq_cmd *a;

		if (w->dead[ci])
			continue;
		if (cur != SIZE_MAX &&
		    w->key[j] >> KEY_GROUP_SHIFT ==
			    w->key[cur] >> KEY_GROUP_SHIFT &&
		    start <= cur_end) {
			a = &c[w->key[cur] & ((1u << KEY_IDX_BITS) - 1)];
			if (merge_range(a, &c[ci])) {
				w->dead[ci] = true;
				cur_end = range_start(a) + range_len(a);
				continue;
			}
		}
		cur = j;
		cur_end = start + range_len(&c[ci]);
	}
	return TV_DONE;
}

/* A window of at most ISO_PAIRS commands: its own copy of the code, so
 * that the longer windows' is compiled as if it were alone. */
static __attribute__((noinline)) enum tv_result pass_tlbi_va_few(struct win *w)
{
	return tv_body(w, false);
}

static enum tv_result pass_tlbi_va(struct win *w)
{
	if (w->n <= ISO_PAIRS)
		return pass_tlbi_va_few(w);
	return tv_body(w, true);
}

/*
 * Coalesces cmds[at, at + m) (m <= COALESCE_WINDOW), described by inf[0,
 * m), and moves its survivors down to cmds[out, ...), in order; out <= at,
 * so later windows are untouched. Returns the new out, or SIZE_MAX (and
 * nothing changed) if the window holds an opcode-0 entry.
 */
static size_t coalesce_window(struct cmdq_cmd *cmds, size_t at, size_t m,
			      const struct cmdq_info *inf, size_t out,
			      struct scratch *sc)
{
	bool dead[COALESCE_WINDOW];
	struct win w = { .c = cmds + at,
			 .inf = inf,
			 .dead = dead,
			 .n = m,
			 .e = sc->e,
			 .key = sc->key,
			 .tmp = sc->tmp,
			 .grp = sc->grp,
			 .ht = sc->ht };
	enum tv_result r = TV_DONE;
	size_t i = 0;

	memset(dead, 0, m * sizeof(*dead));
	if (m >= 2) {
		r = pass_tlbi_va(&w);
		if (r == TV_SUPERSEDER) {
			/* Only marks so far: the commands are untouched. */
			w.superseded = true;
			pass_all(&w);
			pass_supersede(&w);
			r = pass_tlbi_va(&w);
		}
		if (r == TV_OPCODE0)
			return SIZE_MAX;
		if (r == TV_GROUPS) {
			/* A complete scan: no opcode 0, and any superseder
			 * has been dealt with. */
			pass_dups(&w);
			pass_ranges(&w);
		}
	}
	/* Stable compaction keeps ring order among the survivors; nothing
	 * moves before the first dropped command, found a word at a time. */
	if (out == at) {
		for (; i + 8 <= m; i += 8) {
			uint64_t d8;

			memcpy(&d8, dead + i, sizeof(d8));
			if (d8)
				break;
		}
		for (; i < m && !dead[i]; i++)
			;
		out += i;
	}
	for (; i < m; i++)
		if (!dead[i])
			cmds[out++] = cmds[at + i];
	return out;
}

size_t cmdq_coalesce_info(struct cmdq_cmd *cmds, const struct cmdq_info *info,
			  size_t n)
{
	struct scratch sc;
	size_t out = 0;

	/*
	 * Opcode 0 is no command (contract violation): leave the batch. One
	 * window finds it before it changes anything; with more, an earlier
	 * window would already be coalesced.
	 */
	if (n > COALESCE_WINDOW)
		for (size_t i = 0; i < n; i++)
			if (info[i].op == 0)
				return n;
	for (size_t at = 0; at < n; at += COALESCE_WINDOW) {
		size_t m = n - at < COALESCE_WINDOW ? n - at : COALESCE_WINDOW;

		out = coalesce_window(cmds, at, m, info + at, out, &sc);
		if (out == SIZE_MAX)
			return n;
	}
	return out;
}

/* For callers that did not decode: the decoding is done once, here. */
size_t cmdq_coalesce(struct cmdq_cmd *cmds, size_t n)
{
	struct cmdq_info inf[COALESCE_WINDOW];
	struct scratch sc;
	size_t out = 0;

	for (size_t i = 0; i < n; i++)
		if (cmdq_cmd_opcode(&cmds[i]) == 0)
			return n;
	for (size_t at = 0; at < n; at += COALESCE_WINDOW) {
		size_t m = n - at < COALESCE_WINDOW ? n - at : COALESCE_WINDOW;

		for (size_t i = 0; i < m; i++)
			cmdq_info_unvalidated(&cmds[at + i], &inf[i]);
		out = coalesce_window(cmds, at, m, inf, out, &sc);
		if (out == SIZE_MAX)
			return n; /* not reached: checked above */
	}
	return out;
}
