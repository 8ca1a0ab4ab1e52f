/* SPDX-License-Identifier: MIT */
/* The text trace format: parser and printer driven by one table of forms. */
#include "cmdq/trace.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

enum { K_DEC, K_HEX };

struct tkey {
	const char *key;
	enum cmdq_field f;
	uint8_t fmt;
	/* Required when parsing and always printed; else defaults to def
	 * and is printed only when different. */
	bool always;
	uint64_t def;
};

enum {
	FORM_PAGES = 1 << 0, /* "pages=" check of a TLBI range */
	FORM_START_END = 1 << 1, /* CFGI_ALL start= end= */
	FORM_RAW = 1 << 2, /* RAW d0= d1= */
};

#define FORM_KEYS 8

struct tform {
	const char *name;
	uint8_t op;
	uint8_t flags;
	struct tkey keys[FORM_KEYS];
};

#define KA_(k, f, fmt)                      \
	{                                   \
		k, CMDQ_F_##f, fmt, true, 0 \
	}
#define KD_(k, f, fmt, d)                    \
	{                                    \
		k, CMDQ_F_##f, fmt, false, d \
	}
#define TLBI_RANGE_KEYS_                                            \
	KA_("addr", ADDR, K_HEX), KA_("tg", TG, K_DEC),             \
		KA_("num", NUM, K_DEC), KA_("scale", SCALE, K_DEC), \
		KA_("ttl", TTL, K_DEC), KA_("leaf", LEAF, K_DEC)

static const struct tform forms[] = {
	{ "TLBI_NH_VA",
	  CMDQ_OP_TLBI_NH_VA,
	  FORM_PAGES,
	  { KA_("asid", ASID, K_DEC), KA_("vmid", VMID, K_DEC),
	    TLBI_RANGE_KEYS_ } },
	{ "SYNC",
	  CMDQ_OP_SYNC,
	  0,
	  { KD_("cs", CS, K_DEC, CMDQ_SYNC_CS_SEV),
	    KD_("msh", MSH, K_DEC, CMDQ_SYNC_MSH_ISH),
	    KD_("msiattr", MSIATTR, K_DEC, CMDQ_SYNC_MSIATTR_OIWB),
	    KD_("msidata", MSIDATA, K_HEX, 0),
	    KD_("msiaddr", MSIADDR, K_HEX, 0) } },
	{ "TLBI_NH_ASID",
	  CMDQ_OP_TLBI_NH_ASID,
	  0,
	  { KA_("asid", ASID, K_DEC), KD_("vmid", VMID, K_DEC, 0) } },
	{ "TLBI_NH_VAA",
	  CMDQ_OP_TLBI_NH_VAA,
	  FORM_PAGES,
	  { KA_("vmid", VMID, K_DEC), TLBI_RANGE_KEYS_ } },
	{ "TLBI_NH_ALL",
	  CMDQ_OP_TLBI_NH_ALL,
	  0,
	  { KD_("vmid", VMID, K_DEC, 0) } },
	{ "TLBI_NSNH_ALL", CMDQ_OP_TLBI_NSNH_ALL, 0, { { 0 } } },
	{ "CFGI_STE",
	  CMDQ_OP_CFGI_STE,
	  0,
	  { KA_("sid", SID, K_HEX), KD_("leaf", LEAF, K_DEC, 1) } },
	{ "CFGI_ALL",
	  CMDQ_OP_CFGI_STE_RANGE,
	  FORM_START_END,
	  { KA_("start", SID, K_HEX), KA_("end", RANGE, K_HEX) } },
	{ "CFGI_STE_RANGE",
	  CMDQ_OP_CFGI_STE_RANGE,
	  0,
	  { KA_("sid", SID, K_HEX), KA_("range", RANGE, K_DEC) } },
	{ "CFGI_CD",
	  CMDQ_OP_CFGI_CD,
	  0,
	  { KA_("sid", SID, K_HEX), KD_("ssid", SSID, K_HEX, 0),
	    KD_("leaf", LEAF, K_DEC, 1) } },
	{ "CFGI_CD_ALL", CMDQ_OP_CFGI_CD_ALL, 0, { KA_("sid", SID, K_HEX) } },
	{ "PREFETCH_CFG",
	  CMDQ_OP_PREFETCH_CONFIG,
	  0,
	  { KD_("sid", SID, K_HEX, 0), KD_("ssv", SSV, K_DEC, 0),
	    KD_("ssid", SSID, K_HEX, 0) } },
	{ "PREFETCH_ADDR",
	  CMDQ_OP_PREFETCH_ADDR,
	  0,
	  { KD_("sid", SID, K_HEX, 0), KD_("ssv", SSV, K_DEC, 0),
	    KD_("ssid", SSID, K_HEX, 0), KA_("addr", ADDR, K_HEX),
	    KA_("size", PREFETCH_SIZE, K_DEC) } },
	{ "ATC_INV",
	  CMDQ_OP_ATC_INV,
	  0,
	  { KA_("sid", SID, K_HEX), KD_("ssv", SSV, K_DEC, 0),
	    KD_("ssid", SSID, K_HEX, 0), KD_("global", GLOBAL, K_DEC, 0),
	    KA_("addr", ADDR, K_HEX), KA_("size", ATC_SIZE, K_DEC) } },
	/* Keys are placeholders: d0/d1 are handled by FORM_RAW. */
	{ "RAW", 0, FORM_RAW, { KA_("d0", OP, K_HEX), KA_("d1", OP, K_HEX) } },
};
#undef KA_
#undef KD_
#undef TLBI_RANGE_KEYS_

#define N_FORMS (sizeof(forms) / sizeof(forms[0]))
#define RAW_FORM (&forms[N_FORMS - 1])

void cmdq_trace_parser_init(struct cmdq_trace_parser *p)
{
	memset(p, 0, sizeof(*p));
}

static int fail(struct cmdq_trace_error *ret_err, unsigned long line,
		const char *msg)
{
	if (ret_err) {
		ret_err->line = line;
		ret_err->msg = msg;
	}
	return -EINVAL;
}

/* A cursor over the space-separated tokens of one line. */
struct tok {
	const char *p, *end;
};

static bool tok_next(struct tok *t, const char **ret_s, size_t *ret_len)
{
	const char *s;

	while (t->p < t->end && (*t->p == ' ' || *t->p == '\t'))
		t->p++;
	if (t->p == t->end)
		return false;
	s = t->p;
	while (t->p < t->end && *t->p != ' ' && *t->p != '\t')
		t->p++;
	*ret_s = s;
	*ret_len = (size_t)(t->p - s);
	return true;
}

/* Decimal, or hex with 0x; no sign, no octal, no trailing junk. */
static int parse_u64(const char *s, size_t len, uint64_t *ret_v)
{
	char buf[24];
	char *end;
	uint64_t v;
	int base = 10;

	if (!len || len >= sizeof(buf) || *s < '0' || *s > '9')
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (len > 2 && buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X'))
		base = 16;
	errno = 0;
	v = strtoull(buf, &end, base);
	if (errno || *end || (base == 16 && end == buf + 2))
		return -EINVAL;
	*ret_v = v;
	return 0;
}

/* One key=value token split; -EINVAL unless it has a non-empty key. */
static int split_kv(const char *s, size_t len, size_t *ret_klen,
		    uint64_t *ret_v, bool *ret_bad_num)
{
	const char *eq = memchr(s, '=', len);

	if (!eq || eq == s)
		return -EINVAL;
	*ret_klen = (size_t)(eq - s);
	*ret_bad_num = parse_u64(eq + 1, len - *ret_klen - 1, ret_v) != 0;
	return 0;
}

static const struct tkey *find_key(const struct tform *fm, const char *k,
				   size_t klen, unsigned int *ret_i)
{
	for (unsigned int i = 0; i < FORM_KEYS && fm->keys[i].key; i++) {
		if (strlen(fm->keys[i].key) == klen &&
		    !memcmp(fm->keys[i].key, k, klen)) {
			*ret_i = i;
			return &fm->keys[i];
		}
	}
	return NULL;
}

static const char *const E_KV = "malformed field (expected key=value)";
static const char *const E_NUM = "bad number";
static const char *const E_KEY = "unknown field for this line";
static const char *const E_DUP = "duplicate field";
static const char *const E_MISSING = "missing required field";
static const char *const E_FIT = "value does not fit its field";

static int parse_batch(struct tok *t, struct cmdq_trace_batch *b)
{
	static const char *const keys[] = { "n", "t_us", "cpu", "cons",
					    "prod" };
	uint64_t v[5];
	unsigned int seen = 0;
	const char *s;
	size_t len, klen;
	bool bad;

	while (tok_next(t, &s, &len)) {
		unsigned int i;
		uint64_t x;

		if (split_kv(s, len, &klen, &x, &bad))
			return -1;
		for (i = 0; i < 5; i++)
			if (strlen(keys[i]) == klen &&
			    !memcmp(keys[i], s, klen))
				break;
		if (i == 5)
			return -2;
		if (seen & (1u << i))
			return -3;
		if (bad)
			return -4;
		seen |= 1u << i;
		v[i] = x;
	}
	if (seen != 0x1f)
		return -5;
	if (v[0] > UINT32_MAX || v[2] > UINT32_MAX || v[3] > UINT32_MAX ||
	    v[4] > UINT32_MAX)
		return -6;
	if (!v[0])
		return -7;
	*b = (struct cmdq_trace_batch){ (uint32_t)v[0], v[1], (uint32_t)v[2],
					(uint32_t)v[3], (uint32_t)v[4] };
	return 0;
}

static const char *batch_err(int e)
{
	static const char *const msgs[] = {
		NULL, E_KV, E_KEY, E_DUP, E_NUM, E_MISSING, E_FIT, "BATCH n=0",
	};

	return msgs[-e];
}

/* CFGI_ALL start=S end=E: an aligned power-of-two span of >= 2 SIDs. */
static const char *set_start_end(struct cmdq_cmd *c, uint64_t start,
				 uint64_t end)
{
	uint64_t span = end - start + 1;

	if (end < start || end > UINT32_MAX || span < 2 ||
	    (span & (span - 1)) || (start & (span - 1)))
		return "CFGI_ALL: start..end is not an aligned power-of-two "
		       "span of StreamIDs";
	cmdq_set(c, CMDQ_F_SID, start);
	cmdq_set(c, CMDQ_F_RANGE, (uint64_t)__builtin_ctzll(span) - 1);
	return NULL;
}

static const char *parse_cmd(const struct tform *fm, struct tok *t,
			     struct cmdq_cmd *c)
{
	uint64_t vals[FORM_KEYS] = { 0 }, pages = 0;
	unsigned int seen = 0, want = 0;
	bool have_pages = false;
	const char *s;
	size_t len, klen;

	*c = (struct cmdq_cmd){ { fm->op, 0 } };
	for (unsigned int i = 0; i < FORM_KEYS && fm->keys[i].key; i++) {
		if (fm->keys[i].always)
			want |= 1u << i;
		else
			cmdq_set(c, fm->keys[i].f, fm->keys[i].def);
	}
	while (tok_next(t, &s, &len)) {
		const struct tkey *k;
		unsigned int i;
		uint64_t v;
		bool bad;

		if (split_kv(s, len, &klen, &v, &bad))
			return E_KV;
		k = find_key(fm, s, klen, &i);
		if (!k && (fm->flags & FORM_PAGES) && klen == 5 &&
		    !memcmp(s, "pages", 5)) {
			if (have_pages)
				return E_DUP;
			if (bad)
				return E_NUM;
			have_pages = true;
			pages = v;
			continue;
		}
		if (!k)
			return E_KEY;
		if (seen & (1u << i))
			return E_DUP;
		if (bad)
			return E_NUM;
		seen |= 1u << i;
		vals[i] = v;
		if (fm->flags & (FORM_RAW | FORM_START_END))
			continue;
		cmdq_set(c, k->f, v);
		if (cmdq_get(c, k->f) != v)
			return E_FIT;
	}
	if ((seen & want) != want)
		return E_MISSING;
	if (fm->flags & FORM_RAW) {
		c->d[0] = vals[0];
		c->d[1] = vals[1];
		if (!cmdq_cmd_opcode(c))
			return "RAW: opcode 0 is not a command";
	}
	if (fm->flags & FORM_START_END)
		return set_start_end(c, vals[0], vals[1]);
	if (have_pages &&
	    pages != (cmdq_tlbi_tg(c) ?
			      (cmdq_tlbi_num(c) + 1) << cmdq_tlbi_scale(c) :
			      1))
		return "pages does not match (num + 1) << scale";
	return NULL;
}

static const struct tform *form_by_name(const char *s, size_t len)
{
	for (size_t i = 0; i < N_FORMS; i++)
		if (strlen(forms[i].name) == len &&
		    !memcmp(forms[i].name, s, len))
			return &forms[i];
	return NULL;
}

int cmdq_trace_parse_line(struct cmdq_trace_parser *p, const char *line,
			  size_t len, struct cmdq_trace_rec *ret_rec,
			  struct cmdq_trace_error *ret_err)
{
	struct cmdq_trace_rec rec = { .kind = CMDQ_TRACE_BLANK };
	struct tok t;
	const struct tform *fm;
	const char *s, *why;
	size_t slen;
	int e;

	p->line++;
	if (len && line[len - 1] == '\n')
		len--;
	if (len && line[len - 1] == '\r')
		len--;
	if (memchr(line, '\0', len))
		return fail(ret_err, p->line, "NUL byte in line");
	if (len && line[0] == '#') {
		rec.kind = CMDQ_TRACE_COMMENT;
		rec.text = line + 1;
		rec.text_len = len - 1;
		if (len >= 7 && !memcmp(line, "# MARK ", 7)) {
			rec.kind = CMDQ_TRACE_MARK;
			rec.text = line + 7;
			rec.text_len = len - 7;
		}
		*ret_rec = rec;
		return 0;
	}
	t = (struct tok){ line, line + len };
	if (!tok_next(&t, &s, &slen)) {
		*ret_rec = rec;
		return 0;
	}
	if (slen == 5 && !memcmp(s, "BATCH", 5)) {
		if (p->left)
			return fail(ret_err, p->line,
				    "BATCH before the previous BATCH's n "
				    "commands");
		e = parse_batch(&t, &rec.batch);
		if (e)
			return fail(ret_err, p->line, batch_err(e));
		rec.kind = CMDQ_TRACE_BATCH;
		p->left = rec.batch.n;
		*ret_rec = rec;
		return 0;
	}
	fm = form_by_name(s, slen);
	if (!fm)
		return fail(ret_err, p->line, "unknown command");
	if (!p->left)
		return fail(ret_err, p->line,
			    "command outside a BATCH (or beyond its n)");
	why = parse_cmd(fm, &t, &rec.cmd);
	if (why)
		return fail(ret_err, p->line, why);
	p->left--;
	rec.kind = CMDQ_TRACE_CMD;
	*ret_rec = rec;
	return 0;
}

int cmdq_trace_parser_finish(const struct cmdq_trace_parser *p,
			     struct cmdq_trace_error *ret_err)
{
	if (p->left)
		return fail(
			ret_err, p->line,
			"trace ends inside a BATCH (fewer than n commands)");
	return 0;
}

/* The form that prints @c, or RAW if no form expresses all of its bits. */
static const struct tform *form_of(const struct cmdq_cmd *c)
{
	uint8_t op = cmdq_cmd_opcode(c);
	/* CFGI_STE_RANGE prints as CFGI_ALL only for SID 0, Range 31. */
	bool all = op == CMDQ_OP_CFGI_STE_RANGE && cmdq_sid(c) == 0 &&
		   cmdq_cfgi_range(c) == CMDQ_CFGI_RANGE_ALL;

	for (size_t i = 0; i < N_FORMS - 1; i++) {
		const struct tform *fm = &forms[i];
		uint64_t m[2] = { cmdq_field_mask(CMDQ_F_OP), 0 };

		if (fm->op != op || all != !!(fm->flags & FORM_START_END))
			continue;
		for (unsigned int k = 0; k < FORM_KEYS && fm->keys[k].key; k++)
			m[cmdq_fields[fm->keys[k].f].word] |=
				cmdq_field_mask(fm->keys[k].f);
		/* Bits the line cannot express: print it RAW. */
		if ((c->d[0] & ~m[0]) || (c->d[1] & ~m[1]))
			return RAW_FORM;
		return fm;
	}
	return RAW_FORM;
}

const char *cmdq_trace_cmd_name(const struct cmdq_cmd *c)
{
	return form_of(c)->name;
}

/* snprintf into buf at *pos; remembers overflow in *pos > size. */
#define APPEND_(buf, size, pos, ...)                                    \
	do {                                                            \
		size_t room_ = *(pos) < (size) ? (size) - *(pos) : 0;   \
		int r_ = snprintf(room_ ? (buf) + *(pos) : NULL, room_, \
				  __VA_ARGS__);                         \
		*(pos) += r_ > 0 ? (size_t)r_ : 0;                      \
	} while (0)

static void format_cmd(const struct cmdq_cmd *c, char *buf, size_t size,
		       size_t *pos)
{
	const struct tform *fm = form_of(c);

	APPEND_(buf, size, pos, "%s", fm->name);
	if (fm->flags & FORM_RAW) {
		APPEND_(buf, size, pos, " d0=0x%" PRIx64 " d1=0x%" PRIx64,
			c->d[0], c->d[1]);
		return;
	}
	if (fm->flags & FORM_START_END) {
		APPEND_(buf, size, pos, " start=0x%" PRIx64 " end=0x%" PRIx64,
			cmdq_sid(c),
			cmdq_sid(c) + ((uint64_t)2 << cmdq_cfgi_range(c)) - 1);
		return;
	}
	for (unsigned int i = 0; i < FORM_KEYS && fm->keys[i].key; i++) {
		const struct tkey *k = &fm->keys[i];
		uint64_t v = cmdq_get(c, k->f);

		if (!k->always && v == k->def)
			continue;
		if (k->fmt == K_HEX)
			APPEND_(buf, size, pos, " %s=0x%" PRIx64, k->key, v);
		else
			APPEND_(buf, size, pos, " %s=%" PRIu64, k->key, v);
	}
	if ((fm->flags & FORM_PAGES) && cmdq_tlbi_tg(c))
		APPEND_(buf, size, pos, " pages=%" PRIu64,
			(cmdq_tlbi_num(c) + 1) << cmdq_tlbi_scale(c));
}

/*
 * Free text a line can carry back unchanged: the parser ends a line at
 * '\n' and drops one '\r' before it (CRLF files), so text holding a
 * '\n' or ending in '\r' would come back different.
 */
static bool text_is_line(const struct cmdq_trace_rec *rec)
{
	return !memchr(rec->text, '\n', rec->text_len) &&
	       !(rec->text_len && rec->text[rec->text_len - 1] == '\r');
}

int cmdq_trace_format(const struct cmdq_trace_rec *rec, char *buf, size_t size)
{
	const struct cmdq_trace_batch *b = &rec->batch;
	size_t pos = 0;

	if (size)
		buf[0] = '\0';
	if ((rec->kind == CMDQ_TRACE_COMMENT || rec->kind == CMDQ_TRACE_MARK) &&
	    !text_is_line(rec))
		return -EINVAL;
	switch (rec->kind) {
	case CMDQ_TRACE_BLANK:
		break;
	case CMDQ_TRACE_COMMENT:
		APPEND_(buf, size, &pos, "#%.*s", (int)rec->text_len,
			rec->text);
		break;
	case CMDQ_TRACE_MARK:
		APPEND_(buf, size, &pos, "# MARK %.*s", (int)rec->text_len,
			rec->text);
		break;
	case CMDQ_TRACE_BATCH:
		APPEND_(buf, size, &pos,
			"BATCH n=%" PRIu32 " t_us=%" PRIu64 " cpu=%" PRIu32
			" cons=%" PRIu32 " prod=%" PRIu32,
			b->n, b->t_us, b->cpu, b->cons, b->prod);
		break;
	case CMDQ_TRACE_CMD:
		format_cmd(&rec->cmd, buf, size, &pos);
		break;
	}
	if (pos >= size)
		return -ENOSPC;
	return (int)pos;
}

int cmdq_trace_read(FILE *f, cmdq_trace_cb cb, void *arg,
		    struct cmdq_trace_error *ret_err)
{
	struct cmdq_trace_parser p;
	struct cmdq_trace_rec rec;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int ret = 0;

	cmdq_trace_parser_init(&p);
	errno = 0;
	while ((len = getline(&line, &cap, f)) >= 0) {
		ret = cmdq_trace_parse_line(&p, line, (size_t)len, &rec,
					    ret_err);
		if (ret)
			goto out;
		ret = cb(arg, &rec, p.line);
		if (ret)
			goto out;
		errno = 0;
	}
	if (errno == ENOMEM) {
		ret = -ENOMEM;
		goto out;
	}
	if (ferror(f)) {
		ret = -EIO;
		goto out;
	}
	ret = cmdq_trace_parser_finish(&p, ret_err);
out:
	free(line);
	return ret;
}
