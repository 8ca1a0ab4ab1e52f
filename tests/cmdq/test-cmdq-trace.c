/* SPDX-License-Identifier: MIT */
/*
 * cmdq trace format: the repo's copies of the shared traces parse, print
 * back to the very same text, and validate; random commands round-trip;
 * every malformed-line error is reported with its line number.
 */
#include "cmdq/cmdq.h"
#include "cmdq/trace.h"
#include "tests/harness.h"

#include <stdlib.h>

/* Owned by the test process (each test runs in its own child). */
struct walk {
	struct cmdq_trace_parser p;
	unsigned long lines, cmds, mismatches, invalid, vmm_only;
	unsigned long first_bad_line;
};

static void walk_line(struct walk *w, const char *line, size_t len)
{
	struct cmdq_trace_rec rec, again;
	struct cmdq_trace_error err = { 0, NULL };
	struct cmdq_trace_parser p2;
	char buf[CMDQ_TRACE_LINE_MAX * 8];
	int n;

	if (len && line[len - 1] == '\n')
		len--;
	w->lines++;
	if (cmdq_trace_parse_line(&w->p, line, len, &rec, &err)) {
		t_report(__FILE__, __LINE__, "line %lu: %s", err.line, err.msg);
		t_abort();
	}
	n = cmdq_trace_format(&rec, buf, sizeof(buf));
	ASSERT_GE(n, 0);
	/* The printer reproduces the trace's own text. */
	if ((size_t)n != len || memcmp(buf, line, len)) {
		if (!w->mismatches++)
			t_report(__FILE__, __LINE__, "line %lu: '%.*s' -> '%s'",
				 w->lines, (int)len, line, buf);
	}
	if (rec.kind != CMDQ_TRACE_CMD)
		return;
	w->cmds++;
	/* And what it prints parses to the same command. */
	cmdq_trace_parser_init(&p2);
	p2.left = 1;
	ASSERT_OK(cmdq_trace_parse_line(&p2, buf, (size_t)n, &again, &err));
	ASSERT_EQ(again.cmd.d[0], rec.cmd.d[0]);
	ASSERT_EQ(again.cmd.d[1], rec.cmd.d[1]);
	if (cmdq_classify(&rec.cmd) == CMDQ_CLASS_VMM_ONLY)
		w->vmm_only++;
	else if (cmdq_validate(&cmdq_caps_qemu, &rec.cmd, NULL))
		w->invalid++;
}

static void walk_trace(const char *name, unsigned long want_cmds)
{
	const char *dir = getenv("SMMU_OFFLOAD_TEST_DATA");
	struct cmdq_trace_error err = { 0, NULL };
	struct walk w = { .lines = 0 };
	char cmd[4096];
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	FILE *f;

	ASSERT_NONNULL(dir);
	ASSERT_LT(snprintf(cmd, sizeof(cmd), "xz -dc -- '%s/%s'", dir, name),
		  (int)sizeof(cmd));
	f = popen(cmd, "re");
	ASSERT_NONNULL(f);
	cmdq_trace_parser_init(&w.p);
	while ((len = getline(&line, &cap, f)) >= 0)
		walk_line(&w, line, (size_t)len);
	free(line);
	ASSERT_EQ(pclose(f), 0);
	ASSERT_OK(cmdq_trace_parser_finish(&w.p, &err));
	EXPECT_EQ(w.mismatches, 0);
	EXPECT_EQ(w.invalid, 0);
	/* The README's command count; CFGI_STE x6 + CFGI_ALL are the VMM's. */
	EXPECT_EQ(w.cmds, want_cmds);
	EXPECT_EQ(w.vmm_only, 7);
}

TEST_TIMEOUT(lazy_trace, 60)
{
	walk_trace("smmuv3-lazy-blk-nvme-net.trace.xz", 9209);
}

TEST_TIMEOUT(strict_trace, 120)
{
	walk_trace("smmuv3-strict-blk-nvme-net.trace.xz", 405485);
}

/* Parse @text (lines separated by '\n') to its end or its first error. */
static int _parse_text(const char *text, struct cmdq_trace_error *err,
		       struct cmdq_trace_rec *last)
{
	struct cmdq_trace_parser p;
	struct cmdq_trace_rec rec = { .kind = CMDQ_TRACE_BLANK };
	const char *s = text;
	int ret;

	cmdq_trace_parser_init(&p);
	while (*s) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);

		ret = cmdq_trace_parse_line(&p, s, len, &rec, err);
		if (ret)
			return ret;
		s += len + (nl != NULL);
	}
	if (last)
		*last = rec;
	return cmdq_trace_parser_finish(&p, err);
}

#define B1 "BATCH n=1 t_us=5 cpu=0 cons=0 prod=1\n"

static void parse_text(const char *text, struct cmdq_trace_rec *last)
{
	struct cmdq_trace_error err = { 0, "(none)" };
	int ret = _parse_text(text, &err, last);

	if (ret)
		t_report(__FILE__, __LINE__, "line %lu: %s", err.line, err.msg);
	ASSERT_OK(ret);
}

static void parse_text_err(const char *text, unsigned long line,
			   const char *msg_part)
{
	struct cmdq_trace_error err = { 0, NULL };

	ASSERT_ERR(-EINVAL, _parse_text(text, &err, NULL));
	ASSERT_NONNULL(err.msg);
	if (err.line != line || !strstr(err.msg, msg_part))
		t_report(__FILE__, __LINE__, "'%s': got line %lu '%s'", text,
			 err.line, err.msg);
	ASSERT_EQ(err.line, line);
	ASSERT_NONNULL(strstr(err.msg, msg_part));
}

TEST(malformed_lines)
{
	parse_text_err("# c\nFOO x=1\n", 2, "unknown command");
	parse_text_err("TLBI_NSNH_ALL\n", 1, "outside a BATCH");
	parse_text_err(B1 "SYNC\nSYNC\n", 3, "outside a BATCH");
	parse_text_err(B1 "\nBATCH n=1 t_us=5 cpu=0 cons=0 prod=1\n", 3,
		       "previous BATCH");
	parse_text_err(B1, 1, "ends inside a BATCH");
	parse_text_err("BATCH n=1 t_us=5 cpu=0 cons=0\n", 1, "missing");
	parse_text_err("BATCH n=0 t_us=5 cpu=0 cons=0 prod=0\n", 1, "n=0");
	parse_text_err("BATCH n=1 n=1 t_us=5 cpu=0 cons=0 prod=1\n", 1,
		       "duplicate");
	parse_text_err("BATCH n=1 t_us=5 cpu=0 cons=0 prod=1 x=2\n", 1,
		       "unknown field");
	parse_text_err("BATCH n=1 t_us=-5 cpu=0 cons=0 prod=1\n", 1,
		       "bad number");
	parse_text_err("BATCH n=1 t_us=5 cpu=0 cons=0 prod=4294967296\n", 1,
		       "does not fit");
	parse_text_err("BATCH n=1 t_us=5 cpu cons=0 prod=1\n", 1, "key=value");
	parse_text_err(B1 "TLBI_NH_ASID\n", 2, "missing");
	parse_text_err(B1 "TLBI_NH_ASID asid=65536\n", 2, "does not fit");
	parse_text_err(B1 "TLBI_NH_ASID asid=0x\n", 2, "bad number");
	parse_text_err(B1 "TLBI_NH_ASID asid=12z\n", 2, "bad number");
	parse_text_err(B1 "TLBI_NH_ASID asid=99999999999999999999999\n", 2,
		       "bad number");
	parse_text_err(B1 "TLBI_NH_ASID asid=1 asid=2\n", 2, "duplicate");
	parse_text_err(B1 "TLBI_NH_ASID asid=1 sid=2\n", 2, "unknown field");
	parse_text_err(B1 "TLBI_NH_ASID =1\n", 2, "key=value");
	parse_text_err(B1 "CFGI_STE sid=0x8 leaf=2\n", 2, "does not fit");
	parse_text_err(B1 "TLBI_NH_VA asid=1 vmid=0 addr=0x1001 tg=1 num=0 "
			  "scale=0 ttl=3 leaf=1\n",
		       2, "does not fit");
	parse_text_err(B1 "TLBI_NH_VA asid=1 vmid=0 addr=0x1000 tg=1 num=1 "
			  "scale=0 ttl=3 leaf=1 pages=1\n",
		       2, "pages");
	parse_text_err(B1 "TLBI_NH_VA asid=1 vmid=0 addr=0x1000 tg=1 num=1 "
			  "scale=0 ttl=3 leaf=1 pages=2 pages=2\n",
		       2, "duplicate");
	parse_text_err(B1 "CFGI_ALL start=0x0 end=0x2\n", 2, "power-of-two");
	parse_text_err(B1 "CFGI_ALL start=0x2 end=0x5\n", 2, "power-of-two");
	parse_text_err(B1 "CFGI_ALL start=0x0 end=0x1ffffffff\n", 2,
		       "power-of-two");
	parse_text_err(B1 "CFGI_ALL start=0x0\n", 2, "missing");
	parse_text_err(B1 "RAW d0=0x0 d1=0x0\n", 2, "opcode 0");
	parse_text_err(B1 "RAW d0=0x12\n", 2, "missing");
	/* The error names the right line deep into a trace. */
	parse_text_err("# a\n# MARK x\n\n" B1 "SYNC\n" B1 "SYNC x=1\n", 7,
		       "unknown field");
	{
		const char nul[] = B1 "SY\0NC\n";
		struct cmdq_trace_parser p;
		struct cmdq_trace_rec rec;
		struct cmdq_trace_error err = { 0, NULL };

		cmdq_trace_parser_init(&p);
		ASSERT_OK(
			cmdq_trace_parse_line(&p, nul, strlen(B1), &rec, &err));
		ASSERT_ERR(-EINVAL, cmdq_trace_parse_line(&p, nul + strlen(B1),
							  5, &rec, &err));
		ASSERT_EQ(err.line, 2);
	}
}

TEST(line_forms)
{
	struct cmdq_trace_rec r;

	/* Hand-computed words for the README's examples. */
	parse_text(B1 "TLBI_NH_VA asid=1 vmid=0 addr=0xffff6000 tg=1 num=0 "
		      "scale=0 ttl=3 leaf=1 pages=1\n",
		   &r);
	ASSERT_EQ(r.cmd.d[0], 0x0001000000000012ull);
	ASSERT_EQ(r.cmd.d[1], 0x00000000ffff6701ull);
	/* SYNC: CS=SEV (2), MSH=ISH (3), MSIATTR=OIWB (0xf). */
	parse_text(B1 "SYNC\n", &r);
	ASSERT_EQ(r.cmd.d[0], 0x000000000fc02046ull);
	ASSERT_EQ(r.cmd.d[1], 0);
	parse_text(B1 "CFGI_ALL start=0x0 end=0xffffffff\n", &r);
	ASSERT_EQ(r.cmd.d[0], 0x04);
	ASSERT_EQ(r.cmd.d[1], 31);
	parse_text(B1 "CFGI_ALL start=0x10 end=0x17\n", &r);
	ASSERT_EQ(r.cmd.d[0], 0x0000001000000004ull);
	ASSERT_EQ(r.cmd.d[1], 2);
	parse_text(B1 "CFGI_STE sid=0x8\n", &r);
	ASSERT_EQ(r.cmd.d[0], 0x0000000800000003ull);
	ASSERT_EQ(r.cmd.d[1], 1);
	parse_text(B1 "PREFETCH_CFG\n", &r);
	ASSERT_EQ(r.cmd.d[0], 0x01);
	parse_text(B1 "TLBI_NH_ASID asid=3\n", &r);
	ASSERT_EQ(r.cmd.d[0], 0x0003000000000011ull);
	parse_text(B1 "TLBI_NSNH_ALL\n", &r);
	ASSERT_EQ(r.cmd.d[0], 0x30);
	parse_text(B1 "RAW d0=0x21 d1=0x0\n", &r);
	ASSERT_EQ(r.cmd.d[0], 0x21);
	/* Comments and marks keep their text; CRLF is accepted. */
	parse_text("# MARK blk begin\r\n", &r);
	ASSERT_EQ(r.kind, CMDQ_TRACE_MARK);
	ASSERT_EQ(r.text_len, 9);
	ASSERT_EQ(memcmp(r.text, "blk begin", 9), 0);
}

/* A command of a named line form, with random field values. */
static struct cmdq_cmd random_named(uint64_t *s)
{
	uint64_t a = t_rand(s), b = t_rand(s);
	struct cmdq_tlbi_range r = { (uint8_t)(a & 31), (uint8_t)(a >> 5 & 31),
				     (uint8_t)(a >> 10 & 3),
				     (uint8_t)(a >> 12 & 3) };
	uint32_t sid = (uint32_t)(b >> 32), ssid = (uint32_t)b;
	bool bit = a >> 20 & 1;

	switch (t_rand(s) % 14) {
	case 0:
		return cmdq_build_tlbi_nh_va((uint16_t)(a >> 24),
					     (uint16_t)(a >> 40), b, bit, &r);
	case 1:
		return cmdq_build_tlbi_nh_vaa((uint16_t)(a >> 40), b, bit, &r);
	case 2:
		return cmdq_build_tlbi_nh_asid((uint16_t)b, (uint16_t)a);
	case 3:
		return cmdq_build_tlbi_nh_all((uint16_t)a);
	case 4:
		return cmdq_build_tlbi_nsnh_all();
	case 5:
		return cmdq_build_cfgi_ste(sid, bit);
	case 6:
		return cmdq_build_cfgi_ste_range(bit ? sid : 0,
						 (uint8_t)(a & 31));
	case 7:
		return cmdq_build_cfgi_cd(sid, ssid, bit);
	case 8:
		return cmdq_build_cfgi_cd_all(sid);
	case 9:
		return cmdq_build_prefetch_config(sid, bit, ssid);
	case 10:
		return cmdq_build_prefetch_addr(sid, bit, ssid, a,
						(uint8_t)(b >> 20));
	case 11:
		return cmdq_build_atc_inv(sid, bit, ssid, a >> 21 & 1, a,
					  (uint8_t)(a >> 22));
	case 12:
		return cmdq_build_sync((uint8_t)(a & 3), (uint8_t)(a >> 2),
				       (uint8_t)(a >> 4), (uint32_t)b, a);
	default:
		return cmdq_build_sync(CMDQ_SYNC_CS_SEV, CMDQ_SYNC_MSH_ISH,
				       CMDQ_SYNC_MSIATTR_OIWB, 0, 0);
	}
}

/* Random words of every opcode print and parse back to the same words. */
TEST(random_roundtrip)
{
	uint64_t s = t_seed();
	char buf[CMDQ_TRACE_LINE_MAX];
	unsigned long raw = 0, named = 0;

	for (unsigned int i = 0; i < 200000; i++) {
		struct cmdq_trace_rec rec = { .kind = CMDQ_TRACE_CMD }, back;
		struct cmdq_trace_error err = { 0, NULL };
		struct cmdq_trace_parser p;
		uint64_t r0 = t_rand(&s), r1 = t_rand(&s);
		uint64_t keep = t_rand(&s);
		int n;

		/* Half random words (mostly RAW lines), half named forms. */
		if (i % 2) {
			rec.cmd = random_named(&s);
		} else {
			rec.cmd.d[0] = (r0 & keep) & ~0xffull;
			rec.cmd.d[0] |= 1 + t_rand(&s) % 0x47;
			rec.cmd.d[1] = r1;
		}
		n = cmdq_trace_format(&rec, buf, sizeof(buf));
		ASSERT_GT(n, 0);
		cmdq_trace_parser_init(&p);
		p.left = 1;
		if (cmdq_trace_parse_line(&p, buf, (size_t)n, &back, &err)) {
			t_report(__FILE__, __LINE__, "'%s': %s", buf, err.msg);
			t_abort();
		}
		if (back.cmd.d[0] != rec.cmd.d[0] ||
		    back.cmd.d[1] != rec.cmd.d[1]) {
			t_report(__FILE__, __LINE__,
				 "%#" PRIx64 ":%#" PRIx64 " -> '%s'",
				 rec.cmd.d[0], rec.cmd.d[1], buf);
			t_abort();
		}
		if (!strncmp(buf, "RAW ", 4))
			raw++;
		else
			named++;
	}
	/* Both kinds of line really occurred. */
	ASSERT_GT(raw, 50000);
	ASSERT_GT(named, 50000);
}

TEST(format_nospace)
{
	struct cmdq_trace_rec rec = { .kind = CMDQ_TRACE_CMD };
	char buf[8];

	rec.cmd.d[0] = 0x0001000000000011ull;
	ASSERT_ERR(-ENOSPC, cmdq_trace_format(&rec, buf, sizeof(buf)));
	ASSERT_EQ(buf[sizeof(buf) - 1], '\0');
	ASSERT_EQ(cmdq_trace_format(&rec, NULL, 0), -ENOSPC);
}

/* A CR-LF file's "# x\r\r\n" parses to text "x\r": no line carries that
 * back (the parser would drop the '\r'), so formatting refuses it. */
TEST(format_refuses_text_no_line_carries)
{
	static const char *const lines[] = { "# x\r\r\n", "# MARK y\r\r\n" };
	struct cmdq_trace_parser p;
	struct cmdq_trace_rec rec;
	struct cmdq_trace_error err;
	char buf[64];

	cmdq_trace_parser_init(&p);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		ASSERT_EQ(cmdq_trace_parse_line(&p, lines[i], strlen(lines[i]),
						&rec, &err),
			  0);
		ASSERT_EQ(rec.text[rec.text_len - 1], '\r');
		ASSERT_ERR(-EINVAL, cmdq_trace_format(&rec, buf, sizeof(buf)));
	}
	rec = (struct cmdq_trace_rec){ .kind = CMDQ_TRACE_COMMENT,
				       .text = "a\nb",
				       .text_len = 3 };
	ASSERT_ERR(-EINVAL, cmdq_trace_format(&rec, buf, sizeof(buf)));
	/* A '\r' inside the text is kept and comes back. */
	rec.text = "a\rb";
	ASSERT_EQ(cmdq_trace_format(&rec, buf, sizeof(buf)), 4);
	ASSERT_EQ(cmdq_trace_parse_line(&p, buf, 4, &rec, &err), 0);
	ASSERT_EQ(rec.text_len, 3);
	ASSERT_EQ(memcmp(rec.text, "a\rb", 3), 0);
}

TEST_HARNESS_MAIN
