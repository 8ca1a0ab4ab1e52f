/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the text trace parser (cmdq/trace.h).
 *
 * Input: trace text. It is parsed twice, line by line with
 * cmdq_trace_parse_line() and as a stream with cmdq_trace_read() on a
 * memory FILE, and the two must agree (result and failing line).
 * Invariants (any violation aborts):
 *   - every record that parses formats within CMDQ_TRACE_LINE_MAX (or,
 *     for long COMMENT/MARK text, reports -ENOSPC), and the formatted
 *     line parses, from the same parser state, to the same record and the
 *     same next state: parse(format(parse(x))) == parse(x);
 *   - a failed parse still counts the line; text pointers stay inside
 *     the line.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmdq/trace.h"
#include "tests/lib/fuzz.h"

static bool rec_equal(const struct cmdq_trace_rec *a,
		      const struct cmdq_trace_rec *b)
{
	if (a->kind != b->kind)
		return false;
	switch (a->kind) {
	case CMDQ_TRACE_CMD:
		return a->cmd.d[0] == b->cmd.d[0] && a->cmd.d[1] == b->cmd.d[1];
	case CMDQ_TRACE_BATCH:
		return a->batch.n == b->batch.n &&
		       a->batch.t_us == b->batch.t_us &&
		       a->batch.cpu == b->batch.cpu &&
		       a->batch.cons == b->batch.cons &&
		       a->batch.prod == b->batch.prod;
	case CMDQ_TRACE_COMMENT:
	case CMDQ_TRACE_MARK:
		return a->text_len == b->text_len &&
		       !memcmp(a->text, b->text, a->text_len);
	default:
		return true;
	}
}

static void check_roundtrip(const struct cmdq_trace_parser *before,
			    const struct cmdq_trace_parser *after,
			    const struct cmdq_trace_rec *rec)
{
	char line[CMDQ_TRACE_LINE_MAX];
	struct cmdq_trace_parser p = *before;
	struct cmdq_trace_rec back;
	struct cmdq_trace_error err;
	int len;

	len = cmdq_trace_format(rec, line, sizeof(line));
	/* Free text that no line can carry back is refused, not mangled. */
	if ((rec->kind == CMDQ_TRACE_COMMENT || rec->kind == CMDQ_TRACE_MARK) &&
	    rec->text_len &&
	    (memchr(rec->text, '\n', rec->text_len) ||
	     rec->text[rec->text_len - 1] == '\r')) {
		FUZZ_CHECK(len == -EINVAL);
		return;
	}
	if (len == -ENOSPC) {
		/* Only free text may be too long for a line. */
		FUZZ_CHECK(rec->kind == CMDQ_TRACE_COMMENT ||
			   rec->kind == CMDQ_TRACE_MARK);
		return;
	}
	FUZZ_CHECK(len >= 0 && (size_t)len < sizeof(line));
	FUZZ_CHECK(strlen(line) == (size_t)len);
	if (cmdq_trace_parse_line(&p, line, (size_t)len, &back, &err)) {
		fprintf(stderr, "fuzz-trace: formatted \"%s\" fails: %s\n",
			line, err.msg);
		abort();
	}
	if (!rec_equal(rec, &back)) {
		fprintf(stderr, "fuzz-trace: \"%s\" parses differently\n",
			line);
		abort();
	}
	FUZZ_CHECK(p.line == after->line && p.left == after->left);
}

struct stream_result {
	unsigned long records;
};

static int count_cb(void *arg, const struct cmdq_trace_rec *rec,
		    unsigned long line)
{
	struct stream_result *s = arg;

	(void)rec;
	(void)line;
	s->records++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct cmdq_trace_parser p;
	struct cmdq_trace_error err = { 0 }, serr = { 0 };
	struct stream_result sr = { 0 };
	unsigned long records = 0;
	size_t off = 0;
	int r = 0, sr_ret;
	FILE *f;

	cmdq_trace_parser_init(&p);
	while (off < size) {
		const char *nl = memchr(text + off, '\n', size - off);
		size_t len = nl ? (size_t)(nl - (text + off)) + 1 : size - off;
		struct cmdq_trace_parser before = p;
		struct cmdq_trace_rec rec;

		r = cmdq_trace_parse_line(&p, text + off, len, &rec, &err);
		FUZZ_CHECK(p.line == before.line + 1);
		if (r) {
			FUZZ_CHECK(r == -EINVAL && err.msg &&
				   err.line == p.line);
			break;
		}
		records++;
		if (rec.kind == CMDQ_TRACE_COMMENT ||
		    rec.kind == CMDQ_TRACE_MARK)
			FUZZ_CHECK(rec.text >= text + off &&
				   rec.text + rec.text_len <= text + off + len);
		check_roundtrip(&before, &p, &rec);
		off += len;
	}
	if (!r) {
		r = cmdq_trace_parser_finish(&p, &err);
		FUZZ_CHECK(r == 0 || r == -EINVAL);
	}

	/* The stream reader must agree. fmemopen() refuses size 0. */
	if (!size)
		return 0;
	f = fmemopen((void *)data, size, "r");
	if (!f)
		return 0;
	sr_ret = cmdq_trace_read(f, count_cb, &sr, &serr);
	fclose(f);
	FUZZ_CHECK(sr_ret == r);
	FUZZ_CHECK(sr.records == records);
	if (r)
		FUZZ_CHECK(serr.line == err.line);
	return 0;
}
