/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the cmdq command model, as the worker uses it on hostile
 * ring entries. Bytes -> 16-byte little-endian commands -> classify,
 * validate, trace format/parse, coalesce.
 *
 * Input: byte 0 picks the host caps (bits 0-1: QEMU profile, full
 * profile, or custom caps from bytes 1..3); the rest is commands, 16
 * bytes each (a trailing partial command is ignored), at most
 * FUZZ_MAX_CMDS so batches longer than the coalescer's 512-command
 * window are reached.
 *
 * Invariants checked (any violation aborts):
 *   - from_le/to_le round-trip every bit;
 *   - classify and validate are deterministic (result and reason);
 *     VMM_ONLY and ILLEGAL never validate; a failure has a reason;
 *   - trace: format(cmd) parses back to the same command (opcode 0,
 *     which is no command, excepted);
 *   - coalesce on any array: never grows; an array with an opcode-0
 *     entry comes back unchanged; non-FORWARD entries are left alone,
 *     in order;
 *   - coalesce on what the worker would batch (valid FORWARD commands):
 *     never grows, is deterministic, every output is FORWARD and still
 *     validates, the set of ordering classes is unchanged, and every
 *     input command is covered by an output command (the result
 *     invalidates a superset of the input). "Covered" is written from
 *     the SMMUv3 spec, not from the coalescer: a TLBI_NH_VA only by an
 *     equal command, a wider range of the same kind, or TLBI_NH_ALL /
 *     TLBI_NSNH_ALL (never TLBI_NH_ASID: global entries).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmdq/cmdq.h"
#include "cmdq/trace.h"
#include "tests/lib/fuzz.h"

#define FUZZ_MAX_CMDS 1100

static struct cmdq_cmd in[FUZZ_MAX_CMDS], work[FUZZ_MAX_CMDS],
	work2[FUZZ_MAX_CMDS], fwd[FUZZ_MAX_CMDS];

static void caps_from(const uint8_t *data, size_t size, struct cmdq_caps *c)
{
	uint8_t b[4] = { 0 };

	memcpy(b, data, size < 4 ? size : 4);
	switch (b[0] & 3) {
	case 0:
		*c = cmdq_caps_qemu;
		break;
	case 1:
		*c = cmdq_caps_full;
		break;
	default:
		*c = (struct cmdq_caps){
			.asid_bits = (b[1] & 1) ? 16 : 8,
			.ssid_bits = (uint8_t)(b[1] >> 1) % 21,
			.sid_bits = (uint8_t)(b[2] % 33),
			.range_inv = b[3] & 1,
			.ats = b[3] & 2,
			.ds = b[3] & 4,
			.gran4k = b[3] & 8,
			.gran16k = b[3] & 16,
			.gran64k = b[3] & 32,
		};
		break;
	}
}

static bool is_tlb_all(uint8_t op)
{
	return op == CMDQ_OP_TLBI_NH_ALL || op == CMDQ_OP_TLBI_NSNH_ALL;
}

/* Equal as the coalescer compares: VMID ignored for TLB-class commands. */
static bool same_cmd(const struct cmdq_cmd *a, const struct cmdq_cmd *b)
{
	uint64_t m = ~0ull;

	if (cmdq_order_class(a) == CMDQ_ORDER_TLB)
		m &= ~cmdq_field_mask(CMDQ_F_VMID);
	return (a->d[0] & m) == (b->d[0] & m) && a->d[1] == b->d[1];
}

static unsigned int granule_shift(uint64_t tg)
{
	return 12 + 2 * ((unsigned int)tg - 1);
}

/* Range-form TLBI_NH_VA/VAA @o covers range-form @c (same op/ASID/TG). */
static bool range_covers(const struct cmdq_cmd *o, const struct cmdq_cmd *c)
{
	uint64_t tg = cmdq_tlbi_tg(c);
	unsigned int gs;
	uint64_t cs, ce, os, oe;

	if (cmdq_cmd_opcode(o) != cmdq_cmd_opcode(c) || !tg ||
	    cmdq_tlbi_tg(o) != tg)
		return false;
	/* SCALE >= 32 (DS): lengths past 2^32 granules, never merged. */
	if (cmdq_tlbi_scale(c) > 31 || cmdq_tlbi_scale(o) > 31)
		return false;
	if (cmdq_cmd_opcode(c) == CMDQ_OP_TLBI_NH_VA &&
	    cmdq_tlbi_asid(o) != cmdq_tlbi_asid(c))
		return false;
	gs = granule_shift(tg);
	if (cmdq_addr(c) & ((1ull << gs) - 1))
		return false;
	cs = cmdq_addr(c) >> gs;
	ce = cs + ((cmdq_tlbi_num(c) + 1) << cmdq_tlbi_scale(c));
	os = cmdq_addr(o) >> gs;
	oe = os + ((cmdq_tlbi_num(o) + 1) << cmdq_tlbi_scale(o));
	/* Non-leaf invalidates more than leaf; TTL is only a hint, 0 = any. */
	return os <= cs && oe >= ce && cmdq_leaf(o) <= cmdq_leaf(c) &&
	       (cmdq_tlbi_ttl(o) == cmdq_tlbi_ttl(c) || !cmdq_tlbi_ttl(o));
}

/* Is input command @c invalidated by something in @out[0..n)? */
static bool covered(const struct cmdq_cmd *c, const struct cmdq_cmd *out,
		    size_t n)
{
	uint8_t op = cmdq_cmd_opcode(c);

	for (size_t i = 0; i < n; i++) {
		const struct cmdq_cmd *o = &out[i];
		uint8_t oop = cmdq_cmd_opcode(o);

		if (same_cmd(o, c))
			return true;
		switch (op) {
		case CMDQ_OP_TLBI_NH_ALL:
		case CMDQ_OP_TLBI_NSNH_ALL:
		case CMDQ_OP_TLBI_NH_VAA:
			if (is_tlb_all(oop))
				return true;
			if (op == CMDQ_OP_TLBI_NH_VAA && range_covers(o, c))
				return true;
			break;
		case CMDQ_OP_TLBI_NH_ASID:
			if (is_tlb_all(oop))
				return true;
			break;
		case CMDQ_OP_TLBI_NH_VA:
			/* Not TLBI_NH_ASID: a by-VA TLBI also removes global
			 * (nG = 0) entries of any ASID, by-ASID ones do not
			 * (SMMUv3 4.4.2.2, 4.4.2.4). */
			if (is_tlb_all(oop))
				return true;
			if (range_covers(o, c))
				return true;
			break;
		case CMDQ_OP_CFGI_CD:
			if (oop == CMDQ_OP_CFGI_CD_ALL &&
			    cmdq_sid(o) == cmdq_sid(c))
				return true;
			break;
		default:
			break;
		}
	}
	return false;
}

static unsigned int classes(const struct cmdq_cmd *c, size_t n)
{
	unsigned int m = 0;

	for (size_t i = 0; i < n; i++)
		m |= cmdq_order_class(&c[i]);
	return m;
}

static void check_trace_roundtrip(const struct cmdq_cmd *c)
{
	struct cmdq_trace_rec rec = { .kind = CMDQ_TRACE_CMD, .cmd = *c };
	struct cmdq_trace_rec back;
	struct cmdq_trace_parser p;
	struct cmdq_trace_error err;
	char line[CMDQ_TRACE_LINE_MAX];
	int len;

	FUZZ_CHECK(cmdq_trace_cmd_name(c) != NULL);
	len = cmdq_trace_format(&rec, line, sizeof(line));
	FUZZ_CHECK(len > 0 && (size_t)len < sizeof(line));
	cmdq_trace_parser_init(&p);
	p.left = 1; /* inside a BATCH of one command */
	if (cmdq_trace_parse_line(&p, line, (size_t)len, &back, &err)) {
		fprintf(stderr, "fuzz-cmdq: unparsable: \"%s\": %s\n", line,
			err.msg);
		abort();
	}
	FUZZ_CHECK(back.kind == CMDQ_TRACE_CMD);
	if (back.cmd.d[0] != c->d[0] || back.cmd.d[1] != c->d[1]) {
		fprintf(stderr,
			"fuzz-cmdq: \"%s\" is %016llx %016llx, was %016llx "
			"%016llx\n",
			line, (unsigned long long)back.cmd.d[0],
			(unsigned long long)back.cmd.d[1],
			(unsigned long long)c->d[0],
			(unsigned long long)c->d[1]);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cmdq_caps caps;
	size_t n = 0, nf = 0, m, m2, k;
	bool has_zero = false;

	if (!size)
		return 0;
	caps_from(data, size, &caps);
	data++;
	size--;

	for (; n < FUZZ_MAX_CMDS && (n + 1) * CMDQ_ENT_SIZE <= size; n++) {
		const uint8_t *le = data + n * CMDQ_ENT_SIZE;
		uint8_t back[CMDQ_ENT_SIZE];
		const char *why1 = NULL, *why2 = NULL;
		enum cmdq_class cl;
		enum cmdq_cerror e1, e2;

		in[n] = cmdq_cmd_from_le(le);
		cmdq_cmd_to_le(&in[n], back);
		FUZZ_CHECK(!memcmp(back, le, CMDQ_ENT_SIZE));

		cl = cmdq_classify(&in[n]);
		FUZZ_CHECK(cl == cmdq_classify(&in[n]));
		e1 = cmdq_validate(&caps, &in[n], &why1);
		e2 = cmdq_validate(&caps, &in[n], &why2);
		FUZZ_CHECK(e1 == e2 && why1 == why2);
		FUZZ_CHECK(e1 == CMDQ_CERROR_NONE || e1 == CMDQ_CERROR_ILL);
		if (e1)
			FUZZ_CHECK(why1 != NULL);
		if (cl == CMDQ_CLASS_VMM_ONLY || cl == CMDQ_CLASS_ILLEGAL)
			FUZZ_CHECK(e1 == CMDQ_CERROR_ILL);
		FUZZ_CHECK((cmdq_order_class(&in[n]) != 0) ==
			   (cl == CMDQ_CLASS_FORWARD));
		if (cl == CMDQ_CLASS_FORWARD && e1 == CMDQ_CERROR_NONE)
			fwd[nf++] = in[n];
		if (!cmdq_cmd_opcode(&in[n]))
			has_zero = true;
		/* Opcode 0 is no command: the trace refuses it on purpose. */
		if (cmdq_cmd_opcode(&in[n]))
			check_trace_roundtrip(&in[n]);
	}

	/* Any array: never grows; opcode 0 means untouched; others kept. */
	memcpy(work, in, n * sizeof(in[0]));
	m = cmdq_coalesce(work, n);
	FUZZ_CHECK(m <= n);
	if (has_zero) {
		FUZZ_CHECK(m == n && !memcmp(work, in, n * sizeof(in[0])));
	} else {
		k = 0;
		for (size_t i = 0; i < m; i++) {
			if (cmdq_classify(&work[i]) == CMDQ_CLASS_FORWARD)
				continue;
			/* The k-th non-FORWARD input, unchanged. */
			while (k < n &&
			       cmdq_classify(&in[k]) == CMDQ_CLASS_FORWARD)
				k++;
			FUZZ_CHECK(k < n &&
				   !memcmp(&work[i], &in[k], sizeof(in[k])));
			k++;
		}
	}

	/* What the worker batches: valid FORWARD commands. */
	memcpy(work, fwd, nf * sizeof(fwd[0]));
	memcpy(work2, fwd, nf * sizeof(fwd[0]));
	m = cmdq_coalesce(work, nf);
	m2 = cmdq_coalesce(work2, nf);
	FUZZ_CHECK(m <= nf && m == m2 &&
		   !memcmp(work, work2, m * sizeof(work[0])));
	for (size_t i = 0; i < m; i++) {
		const char *why = NULL;

		FUZZ_CHECK(cmdq_classify(&work[i]) == CMDQ_CLASS_FORWARD);
		if (cmdq_validate(&caps, &work[i], &why)) {
			fprintf(stderr,
				"fuzz-cmdq: coalesced %016llx %016llx invalid: "
				"%s\n",
				(unsigned long long)work[i].d[0],
				(unsigned long long)work[i].d[1], why);
			abort();
		}
	}
	FUZZ_CHECK(classes(work, m) == classes(fwd, nf));
	/* Coverage holds per 512-command window; check within windows. */
	for (size_t w = 0, ow = 0; w < nf; w += 512) {
		size_t wn = nf - w < 512 ? nf - w : 512;
		size_t on = 0;
		struct cmdq_cmd win[512];

		/* The window's survivors are a contiguous run of the output:
		 * recompute them by coalescing the window alone. */
		memcpy(win, fwd + w, wn * sizeof(win[0]));
		on = cmdq_coalesce(win, wn);
		FUZZ_CHECK(ow + on <= m &&
			   !memcmp(win, work + ow, on * sizeof(win[0])));
		for (size_t i = 0; i < wn; i++) {
			if (!covered(&fwd[w + i], win, on)) {
				fprintf(stderr,
					"fuzz-cmdq: %016llx %016llx lost by "
					"coalescing\n",
					(unsigned long long)fwd[w + i].d[0],
					(unsigned long long)fwd[w + i].d[1]);
				abort();
			}
		}
		ow += on;
	}
	return 0;
}
