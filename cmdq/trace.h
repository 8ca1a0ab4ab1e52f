/* SPDX-License-Identifier: MIT */
/*
 * cmdq trace: the text trace format "smmuv3-cmdq-trace v1" (docs/TRACES.md,
 * and the README next to the shared traces): one SMMUv3 command per line,
 * BATCH lines for each guest write to CMDQ_PROD, '#' comments and
 * '# MARK <text>' phase markers.
 *
 * The parser works one line at a time (constant memory for any trace) and
 * turns each command line into a struct cmdq_cmd; cmdq_trace_format()
 * prints a record back so that parse(format(parse(x))) == parse(x), and for
 * the lines of the shared traces format(parse(line)) == line.
 *
 * Fields the traces do not carry get the values the README says the Linux
 * driver used: SYNC is CS=SEV, MSH=ISH, MSIATTR=OIWB; CFGI_STE and CFGI_CD
 * have Leaf=1; PREFETCH_CFG has SID 0. Such defaults are not printed.
 * CFGI_ALL start=S end=E is CFGI_STE_RANGE with SID S and
 * Range = log2(E - S + 1) - 1. Commands with no line form of their own, or
 * with bits the line form cannot express, are "RAW d0=0x... d1=0x...".
 *
 * Library code: never prints; errors come back as -EINVAL with the line
 * number and a static message in struct cmdq_trace_error.
 */
#ifndef SMMU_OFFLOAD_CMDQ_TRACE_H
#define SMMU_OFFLOAD_CMDQ_TRACE_H

#include <stdint.h>
#include <stdio.h>

#include "cmdq/cmdq.h"

enum cmdq_trace_kind {
	CMDQ_TRACE_BLANK, /* an empty line */
	CMDQ_TRACE_COMMENT, /* '#' and the text after it */
	CMDQ_TRACE_MARK, /* '# MARK ' and the text after it */
	CMDQ_TRACE_BATCH,
	CMDQ_TRACE_CMD,
};

struct cmdq_trace_batch {
	uint32_t n; /* commands that follow, >= 1 */
	uint64_t t_us; /* us since the first SMMU event (TCG time) */
	uint32_t cpu; /* vCPU thread index */
	uint32_t cons, prod; /* queue indices before and after */
};

/* One parsed line. Owned by the caller; @text points into the line. */
struct cmdq_trace_rec {
	enum cmdq_trace_kind kind;
	struct cmdq_trace_batch batch; /* CMDQ_TRACE_BATCH */
	struct cmdq_cmd cmd; /* CMDQ_TRACE_CMD */
	const char *text; /* COMMENT, MARK: not NUL-terminated */
	size_t text_len;
};

struct cmdq_trace_error {
	unsigned long line; /* 1-based */
	const char *msg; /* static */
};

/*
 * Parser state; one per trace, owned by one thread. Tracks the line number
 * and that each BATCH is followed by exactly n command lines.
 */
struct cmdq_trace_parser {
	unsigned long line; /* lines seen so far */
	uint32_t left; /* command lines still due in this BATCH */
};

void cmdq_trace_parser_init(struct cmdq_trace_parser *p);

/*
 * cmdq_trace_parse_line() - parse the next line of a trace.
 * @line:    the line, without or with its '\n' (a trailing "\n" or "\r\n"
 *           is ignored); it need not be NUL-terminated.
 * @len:     its length in bytes.
 * @ret_rec: the record, written on success; @ret_rec->text points into
 *           @line.
 * @ret_err: written on failure.
 *
 * Return: 0, or -EINVAL for a malformed line (the line still counts).
 */
int cmdq_trace_parse_line(struct cmdq_trace_parser *p, const char *line,
			  size_t len, struct cmdq_trace_rec *ret_rec,
			  struct cmdq_trace_error *ret_err);

/*
 * cmdq_trace_parser_finish() - the input ended.
 * Return: 0, or -EINVAL if a BATCH still lacks commands (@ret_err set).
 */
int cmdq_trace_parser_finish(const struct cmdq_trace_parser *p,
			     struct cmdq_trace_error *ret_err);

/*
 * cmdq_trace_format() - print @rec as one line, without '\n'.
 * @buf, @size: the output; NUL-terminated if @size > 0.
 *
 * Return: the line length (like snprintf, excluding the NUL), -ENOSPC
 * if it did not fit (CMDQ_TRACE_LINE_MAX always fits, except COMMENT and
 * MARK records whose text is longer), or -EINVAL for COMMENT or MARK text
 * that holds a '\n' or ends in '\r' (cmdq_trace_parse_line() would not
 * give it back unchanged).
 */
#define CMDQ_TRACE_LINE_MAX 256
int cmdq_trace_format(const struct cmdq_trace_rec *rec, char *buf, size_t size);

/*
 * cmdq_trace_read() - parse a whole stream, one record at a time.
 * @f:   the input (read with getline(); the one line buffer is allocated
 *       and freed here).
 * @cb:  called for every record with its line number; a non-zero return
 *       stops the read and is returned.
 *
 * Return: 0 at the end of a well-formed trace; -EINVAL with @ret_err set
 * for a malformed line or a truncated BATCH; -ENOMEM; -EIO on a read
 * error; or the callback's value.
 */
typedef int (*cmdq_trace_cb)(void *arg, const struct cmdq_trace_rec *rec,
			     unsigned long line);
int cmdq_trace_read(FILE *f, cmdq_trace_cb cb, void *arg,
		    struct cmdq_trace_error *ret_err);

/*
 * cmdq_trace_cmd_name() - the name a trace line uses for @c ("CFGI_ALL",
 * "PREFETCH_CFG", "TLBI_NH_VA", "RAW", ...). Static string.
 */
const char *cmdq_trace_cmd_name(const struct cmdq_cmd *c);

#endif
