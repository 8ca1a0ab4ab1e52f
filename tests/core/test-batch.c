/* SPDX-License-Identifier: MIT */
/*
 * The batch module (core/batch.h) on its own: the admission cut rule, the
 * settlement plans, and failure localisation against a fake backend
 * written here. The fake is an independent oracle: it never calls cmdq's
 * validation or coalescing; it fails at a chosen original command
 * (recognised by its marker) and reports what the iofd contract lets a
 * backend of each kind report: the sim (exact), the kernel's Gen A
 * (entry_num k: exact unless k is on a host chunk boundary, only whole
 * chunks before it sent) and Gen B (only whole chunks, never exact).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/batch.h"
#include "tests/harness.h"

#define NO_MARK UINT32_MAX
#define CHUNK IOFD_HOST_CHUNK
#define MAXN 256

/* A command whose identity is its marker (d[1]); the opcode in d[0]. */
static struct cmdq_cmd mk(uint8_t op, uint32_t mark)
{
	struct cmdq_cmd c;

	memset(&c, 0, sizeof(c));
	c.d[0] = op | ((uint64_t)mark << 32);
	c.d[1] = mark;
	return c;
}

struct fake {
	char kind; /* 'S' sim, 'A' Gen A, 'B' Gen B */
	int err; /* EIO or ETIMEDOUT */
	uint32_t bad_mark; /* the failing command, or NO_MARK */
	uint32_t calls;
	uint32_t sent[4 * MAXN]; /* markers sent to the "host", in order */
	uint32_t nsent;
};

static void fake_send(struct fake *f, const struct cmdq_cmd *c, uint32_t n)
{
	for (uint32_t i = 0; i < n && f->nsent < 4 * MAXN; i++)
		f->sent[f->nsent++] = (uint32_t)c[i].d[1];
}

static int fake_call(void *ctx, const struct cmdq_cmd *cmds, uint32_t n,
		     struct iofd_inv_result *ret)
{
	struct fake *f = ctx;
	uint32_t k, g;

	f->calls++;
	for (k = 0; k < n; k++)
		if ((uint32_t)cmds[k].d[1] == f->bad_mark)
			break;
	if (k == n) {
		fake_send(f, cmds, n);
		ret->done = n;
		return 0;
	}
	g = k / CHUNK * CHUNK;
	if (f->err == ETIMEDOUT) {
		/* The chunk holding it was sent; its host sync timed out. */
		fake_send(f, cmds, n - g < CHUNK ? n : g + CHUNK);
		ret->done = g;
		return -ETIMEDOUT;
	}
	if (f->kind == 'S') {
		fake_send(f, cmds, k);
		ret->done = k;
		ret->bad = k;
		return -EIO;
	}
	fake_send(f, cmds, g);
	ret->done = g;
	if (f->kind == 'A' && k != g)
		ret->bad = k;
	return -EIO;
}

static struct cmdq_cmd *marked_list(uint32_t n)
{
	struct cmdq_cmd *c = calloc(n, sizeof(*c));

	for (uint32_t i = 0; c && i < n; i++)
		c[i] = mk(CMDQ_OP_TLBI_NH_VA, i);
	return c;
}

/* ---- localisation ---------------------------------------------------------- */

/* EIO at @bad of @n for backend kind @kind: exact culprit and prefix. */
static void check_localise(char kind, uint32_t n, uint32_t bad)
{
	struct fake f = { .kind = kind, .err = EIO, .bad_mark = bad };
	struct cmdq_cmd *c = marked_list(n);
	struct core_batch_outcome o;
	int rc;

	ASSERT_TRUE(c != NULL);
	rc = core_batch_localise(fake_call, &f, c, n, &o);
	EXPECT_EQ(rc, -EIO);
	if (o.done != bad || o.issued != bad)
		FAIL("%c n %u bad %u: done %u issued %u", kind, n, bad, o.done,
		     o.issued);
	if (f.nsent != bad)
		FAIL("%c n %u bad %u: %u sent", kind, n, bad, f.nsent);
	for (uint32_t i = 0; i < f.nsent && i < bad; i++)
		if (f.sent[i] != i)
			FAIL("%c n %u bad %u: sent[%u] = %u", kind, n, bad, i,
			     f.sent[i]);
	EXPECT_EQ(o.calls, f.calls);
	EXPECT_TRUE(o.calls <= CORE_BATCH_MAX_CALLS);
	if (kind == 'S')
		EXPECT_EQ(o.calls, 1);
	free(c);
}

TEST(localise_chunk_boundaries)
{
	static const uint32_t bads[] = { 0,  1,	 5,   61,  62,	63,
					 64, 70, 125, 126, 127, 129 };
	static const char kinds[] = { 'S', 'A', 'B' };

	for (size_t k = 0; k < sizeof(kinds); k++) {
		for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++)
			check_localise(kinds[k], 130, bads[i]);
		check_localise(kinds[k], 1, 0);
		check_localise(kinds[k], 63, 62);
	}
}

TEST(localise_random)
{
	uint64_t seed = t_seed();

	for (int it = 0; it < 500; it++) {
		uint32_t n = 1 + (uint32_t)(t_rand(&seed) % MAXN);
		uint32_t bad = (uint32_t)(t_rand(&seed) % n);

		check_localise("SAB"[t_rand(&seed) % 3], n, bad);
	}
}

TEST(localise_success_one_call)
{
	struct fake f = { .kind = 'B', .err = EIO, .bad_mark = NO_MARK };
	struct cmdq_cmd *c = marked_list(200);
	struct core_batch_outcome o;

	ASSERT_TRUE(c != NULL);
	ASSERT_OK(core_batch_localise(fake_call, &f, c, 200, &o));
	EXPECT_EQ(o.done, 200);
	EXPECT_EQ(o.issued, 200);
	EXPECT_EQ(o.calls, 1);
	EXPECT_EQ(f.nsent, 200);
	free(c);
}

/* A backend that fails a call but claims every command of it done. */
static int lying_call(void *ctx, const struct cmdq_cmd *cmds, uint32_t n,
		      struct iofd_inv_result *ret)
{
	uint32_t *calls = ctx;

	(void)cmds;
	++*calls;
	ret->done = n;
	ret->bad = IOFD_INV_BAD_UNKNOWN;
	return -EIO;
}

/* A failed call never completes the list, whatever count it reports. */
TEST(localise_failed_call_claiming_all)
{
	struct cmdq_cmd *c = marked_list(CHUNK);
	struct core_batch_outcome o;
	uint32_t calls = 0;

	ASSERT_TRUE(c != NULL);
	ASSERT_ERR(-EIO, core_batch_localise(lying_call, &calls, c, CHUNK, &o));
	EXPECT_TRUE(o.done < CHUNK);
	EXPECT_EQ(o.calls, calls);
	EXPECT_TRUE(o.calls <= CORE_BATCH_MAX_CALLS);
	free(c);
}

/* A host sync timeout is never issued again: what is known is reported. */
TEST(localise_timeout_not_retried)
{
	for (char kind = 'A'; kind <= 'B'; kind++) {
		struct fake f = { .kind = kind,
				  .err = ETIMEDOUT,
				  .bad_mark = 70 };
		struct cmdq_cmd *c = marked_list(130);
		struct core_batch_outcome o;

		ASSERT_TRUE(c != NULL);
		ASSERT_ERR(-ETIMEDOUT,
			   core_batch_localise(fake_call, &f, c, 130, &o));
		EXPECT_EQ(o.done, 63);
		EXPECT_EQ(o.issued, 126);
		EXPECT_EQ(o.calls, 1);
		EXPECT_EQ(f.nsent, 126);
		free(c);
	}
}

/* ---- admission ------------------------------------------------------------- */

FIXTURE(bt)
{
	struct core_batch *b;
};

FIXTURE_SETUP(bt)
{
	self->b = core_batch_new(MAXN);
	ASSERT_TRUE(self->b != NULL);
}

FIXTURE_TEARDOWN(bt)
{
	core_batch_free(self->b);
}

/* Puts a FORWARD command of @op/@order at ring index @idx of @seg. */
static enum core_admit put(struct core_batch *b, unsigned int seg, uint32_t idx,
			   uint8_t op, unsigned int order)
{
	b->cmds[b->n] = mk(op, idx);
	memset(&b->info[b->n], 0, sizeof(b->info[b->n]));
	b->info[b->n].op = op;
	b->info[b->n].cls = CMDQ_CLASS_FORWARD;
	b->info[b->n].order = (uint8_t)order;
	return core_batch_admit(b, seg, idx);
}

#define TLB(b, s, i) put(b, s, i, CMDQ_OP_TLBI_NH_VA, CMDQ_ORDER_TLB)
#define ATC(b, s, i) put(b, s, i, CMDQ_OP_ATC_INV, CMDQ_ORDER_ATC)
#define CFG(b, s, i) put(b, s, i, 0x05 /* CFGI_CD */, CMDQ_ORDER_CFG)

TEST_F(bt, admit_mixed_run_then_sync)
{
	struct core_batch *b = self->b;
	unsigned int s = core_batch_seg_open(b, 10, 7);

	EXPECT_EQ(s, 0);
	EXPECT_EQ(b->segs[0].epoch, 7);
	EXPECT_EQ(b->segs[0].start, 10);
	/* Classes mix freely until a guest CMD_SYNC follows one... */
	EXPECT_EQ(TLB(b, s, 10), CORE_ADMIT_OK);
	EXPECT_EQ(CFG(b, s, 11), CORE_ADMIT_OK);
	core_batch_sync(b, s, 12);
	EXPECT_TRUE(b->segs[s].synced);
	/* ...after it, the run holds two classes: each of them is another
	 * class than one before the SYNC, so every command is a cut. */
	EXPECT_EQ(TLB(b, s, 13), CORE_ADMIT_CUT);
	EXPECT_EQ(CFG(b, s, 13), CORE_ADMIT_CUT);
	EXPECT_EQ(b->n, 2);
	EXPECT_EQ(b->segs[s].syncs, 1);
}

/* A CMD_SYNC before any command of the run orders nothing. */
TEST_F(bt, admit_leading_sync)
{
	struct core_batch *b = self->b;
	unsigned int s = core_batch_seg_open(b, 0, 0);

	core_batch_sync(b, s, 0);
	EXPECT_FALSE(b->segs[s].synced);
	EXPECT_EQ(TLB(b, s, 1), CORE_ADMIT_OK);
	EXPECT_EQ(CFG(b, s, 2), CORE_ADMIT_OK);
	EXPECT_EQ(b->syncs_before[0], 1);
}

TEST_F(bt, admit_cut_between_classes)
{
	struct core_batch *b = self->b;
	unsigned int s = core_batch_seg_open(b, 0, 0);

	EXPECT_EQ(TLB(b, s, 0), CORE_ADMIT_OK);
	EXPECT_EQ(TLB(b, s, 1), CORE_ADMIT_OK);
	core_batch_sync(b, s, 2);
	EXPECT_EQ(core_batch_sync_at(b, 0), 2);
	EXPECT_EQ(core_batch_sync_at(b, 1), 2);
	/* Same class after the SYNC: admitted. */
	EXPECT_EQ(TLB(b, s, 3), CORE_ADMIT_OK);
	EXPECT_EQ(b->syncs_before[2], 1);
	EXPECT_EQ(core_batch_sync_at(b, 2), 3); /* no SYNC after it yet */
	/* Another class after a SYNC: a cut, nothing recorded. */
	EXPECT_EQ(ATC(b, s, 4), CORE_ADMIT_CUT);
	EXPECT_EQ(CFG(b, s, 4), CORE_ADMIT_CUT);
	EXPECT_EQ(b->n, 3);
	EXPECT_FALSE(b->segs[s].has_atc);
	EXPECT_EQ(b->segs[s].mask, CMDQ_ORDER_TLB);
	/* A second run is independent: its first SYNC has no command yet. */
	s = core_batch_seg_open(b, 50, 0);
	core_batch_sync(b, s, 50);
	EXPECT_EQ(ATC(b, s, 51), CORE_ADMIT_OK);
	EXPECT_TRUE(b->segs[s].has_atc);
	EXPECT_EQ(b->seg_of[3], 1);
	EXPECT_EQ(b->syncs_before[3], 1);
}

/* ---- execute --------------------------------------------------------------- */

/* @n TLB commands of one run; b->issue a shorter "coalesced" list. */
static void fill_coalesced(struct core_batch *b, uint32_t n, uint32_t n_issue)
{
	unsigned int s = core_batch_seg_open(b, 0, 0);

	for (uint32_t i = 0; i < n; i++)
		TLB(b, s, i);
	for (uint32_t i = 0; i < n_issue; i++)
		b->issue[i] = mk(CMDQ_OP_TLBI_NH_VA, 1000 + i);
	b->n_issue = n_issue;
}

TEST_F(bt, execute_reissues_originals)
{
	struct fake f = { .kind = 'B', .err = EIO, .bad_mark = 1000 + 3 };
	struct core_batch *b = self->b;

	fill_coalesced(b, 100, 10);
	/* The coalesced list fails; the originals (markers 0..99) do not
	 * contain its culprit... */
	core_batch_execute(b, fake_call, &f);
	EXPECT_EQ(b->rc, 0);
	EXPECT_TRUE(b->reissued);
	EXPECT_EQ(b->done, 100);
	EXPECT_EQ(b->calls, 2);
}

TEST_F(bt, execute_localises_in_originals)
{
	uint64_t seed = t_seed();

	for (int it = 0; it < 100; it++) {
		struct core_batch *b = self->b;
		uint32_t n = 2 + (uint32_t)(t_rand(&seed) % (MAXN - 2));
		uint32_t bad = (uint32_t)(t_rand(&seed) % n);
		struct fake f = { .kind = "SAB"[t_rand(&seed) % 3],
				  .err = EIO,
				  .bad_mark = bad };

		core_batch_reset(b, (uint64_t)it);
		fill_coalesced(b, n, 1 + (uint32_t)(t_rand(&seed) % (n - 1)));
		/* The coalesced list fails too (its first command). */
		b->issue[0] = mk(CMDQ_OP_TLBI_NH_VA, bad);
		core_batch_execute(b, fake_call, &f);
		ASSERT_EQ(b->rc, -EIO);
		EXPECT_TRUE(b->reissued);
		if (b->done != bad || b->issued != bad)
			FAIL("n %u bad %u: done %u issued %u", n, bad, b->done,
			     b->issued);
		EXPECT_EQ(b->calls, f.calls);
	}
}

TEST_F(bt, execute_coalesced_timeout_not_reissued)
{
	struct core_batch *b = self->b;
	struct fake f = { .kind = 'A', .err = ETIMEDOUT, .bad_mark = 1000 };

	/* The timed-out chunk is the last: everything was issued. */
	fill_coalesced(b, 100, 50);
	core_batch_execute(b, fake_call, &f);
	EXPECT_EQ(b->rc, -ETIMEDOUT);
	EXPECT_FALSE(b->reissued);
	EXPECT_EQ(b->calls, 1);
	EXPECT_EQ(b->done, 0);
	EXPECT_EQ(b->issued, 100);
	/* Not the last chunk: nothing of the originals is known issued. */
	core_batch_reset(b, 1);
	fill_coalesced(b, 200, 150);
	f.calls = 0;
	core_batch_execute(b, fake_call, &f);
	EXPECT_EQ(b->rc, -ETIMEDOUT);
	EXPECT_EQ(b->calls, 1);
	EXPECT_EQ(b->done, 0);
	EXPECT_EQ(b->issued, 0);
}

/* ---- settle ---------------------------------------------------------------- */

TEST_F(bt, settle_success)
{
	struct core_batch *b = self->b;
	struct core_settle p;
	unsigned int s0 = core_batch_seg_open(b, 100, 0);
	unsigned int s1 = core_batch_seg_open(b, 500, 0);

	TLB(b, s0, 100);
	core_batch_sync(b, s0, 101);
	TLB(b, s1, 500);
	b->segs[s0].end = 102;
	b->segs[s1].end = 501;
	b->rc = 0;
	core_batch_settle(b, &p);
	EXPECT_EQ(p.halt_seg, -1);
	EXPECT_EQ(p.seg[s0].upto, 102);
	EXPECT_EQ(p.seg[s0].syncs, 1);
	EXPECT_FALSE(p.seg[s0].rewind);
	EXPECT_EQ(p.seg[s1].upto, 501);
	EXPECT_EQ(p.seg[s1].syncs, 0);
}

/*
 * Two interleaved runs, EIO at original k: the culprit's run halts at the
 * culprit with ILL; the other completes up to its first original from k
 * on (or its end) and gives back the rest. Oracle: a scan of the runs as
 * the test built them.
 */
TEST_F(bt, settle_eio_random)
{
	uint64_t seed = t_seed();

	for (int it = 0; it < 200; it++) {
		struct core_batch *b = self->b;
		uint32_t ridx[2] = { 100, 5000 }, rsyncs[2] = { 0, 0 };
		uint32_t n, k, want_upto, want_syncs;
		unsigned int seg_of[MAXN], idx_of[MAXN], sb[MAXN];
		struct core_settle p;

		core_batch_reset(b, (uint64_t)it);
		core_batch_seg_open(b, ridx[0], 0);
		core_batch_seg_open(b, ridx[1], 0);
		for (n = 0; n < 40;) {
			unsigned int s = (unsigned int)(t_rand(&seed) % 2);

			if (t_rand(&seed) % 4 == 0) {
				core_batch_sync(b, s, ridx[s]++);
				rsyncs[s]++;
				continue;
			}
			ASSERT_EQ(TLB(b, s, ridx[s]), CORE_ADMIT_OK);
			seg_of[n] = s;
			idx_of[n] = ridx[s]++;
			sb[n] = rsyncs[s];
			n++;
		}
		b->segs[0].end = ridx[0];
		b->segs[1].end = ridx[1];
		k = (uint32_t)(t_rand(&seed) % n);
		b->rc = -EIO;
		b->done = b->issued = k;
		core_batch_settle(b, &p);
		ASSERT_EQ(p.halt_seg, (int)seg_of[k]);
		EXPECT_EQ(p.err, SMMU_RING_ERR_CERROR_ILL);
		EXPECT_EQ(p.halt_idx, idx_of[k]);
		EXPECT_EQ(p.halt_syncs, sb[k]);
		for (unsigned int s = 0; s < 2; s++) {
			want_upto = ridx[s];
			want_syncs = rsyncs[s];
			for (uint32_t i = k; i < n; i++) {
				if (seg_of[i] == s) {
					want_upto = idx_of[i];
					want_syncs = sb[i];
					break;
				}
			}
			EXPECT_TRUE(p.seg[s].rewind);
			if (p.seg[s].upto != want_upto ||
			    p.seg[s].syncs != want_syncs)
				FAIL("it %d k %u seg %u: upto %u/%u syncs %u/%u",
				     it, k, s, p.seg[s].upto, want_upto,
				     p.seg[s].syncs, want_syncs);
		}
	}
}

/* A timed-out ATC_INV halts at the guest CMD_SYNC after it (facts 5). */
TEST_F(bt, settle_timeout_atc)
{
	struct core_batch *b = self->b;
	struct core_settle p;
	unsigned int s = core_batch_seg_open(b, 100, 0);

	/* Ordering: one class per SYNC-delimited stretch. */
	ATC(b, s, 100);
	ATC(b, s, 101);
	core_batch_sync(b, s, 102);
	ATC(b, s, 103);
	b->segs[s].end = 104;
	b->rc = -ETIMEDOUT;
	b->done = 0;
	b->issued = 3;
	core_batch_settle(b, &p);
	EXPECT_EQ(p.halt_seg, 0);
	EXPECT_EQ(p.err, SMMU_RING_ERR_CERROR_ATC_INV_SYNC);
	EXPECT_EQ(p.halt_idx, 102);
	EXPECT_EQ(p.halt_syncs, 0);

	/* The command before the CMD_SYNC was not issued: halt at the first
	 * command not known complete instead. */
	b->issued = 1;
	core_batch_settle(b, &p);
	EXPECT_EQ(p.err, SMMU_RING_ERR_CERROR_ATC_INV_SYNC);
	EXPECT_EQ(p.halt_idx, 100);

	/* No CMD_SYNC after the culprit in the batch: same. */
	b->done = 2;
	b->issued = 3;
	core_batch_settle(b, &p);
	EXPECT_EQ(p.halt_idx, 103);
	EXPECT_EQ(p.halt_syncs, 1);
}

TEST_F(bt, settle_timeout_without_atc)
{
	struct core_batch *b = self->b;
	struct core_settle p;
	unsigned int s = core_batch_seg_open(b, 0, 0);

	TLB(b, s, 0);
	TLB(b, s, 1);
	b->segs[s].end = 2;
	b->rc = -ETIMEDOUT;
	b->done = 1;
	b->issued = 2;
	core_batch_settle(b, &p);
	EXPECT_EQ(p.err, SMMU_RING_ERR_BACKEND);
	EXPECT_EQ(p.halt_idx, 1);
	EXPECT_EQ(p.seg[s].upto, 1);
}

TEST_HARNESS_MAIN
