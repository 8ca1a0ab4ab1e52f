/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/workload.h"
#include "cmdq/trace.h"
#include "iommufd/sim.h"

uint64_t wl_mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* splitmix64: small, seedable, good enough to pick pages. */
static uint64_t wl_rand(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	return wl_mix64(z);
}

/* The CMD_SYNC the Linux driver writes (CS=SEV, MSH=ISH, MSIATTR=OIWB). */
static struct cmdq_cmd wl_sync(void)
{
	return cmdq_build_sync(2, 3, 0xf, 0, 0);
}

struct load {
	struct wl *w;
	uint64_t max_batches;
	uint32_t cur; /* commands in the open batch */
	size_t cap_cmds, cap_batches;
	int err;
};

/* Make room for @need elements of @size in *@arr (capacity *@cap, doubled
 * from @first). Return: 0 or -ENOMEM (*@arr unchanged). */
static int load_reserve(void **arr, size_t *cap, size_t need, size_t first,
			size_t size)
{
	size_t n;
	void *p;

	if (need <= *cap)
		return 0;
	n = *cap ? *cap * 2 : first;
	p = realloc(*arr, n * size);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = n;
	return 0;
}

static int load_grow(struct load *l)
{
	struct wl_trace *t = &l->w->trace;
	void *cmds = t->cmds, *start = t->start;
	int r;

	r = load_reserve(&cmds, &l->cap_cmds, t->ncmds + 1, 4096,
			 sizeof(*t->cmds));
	t->cmds = cmds;
	if (!r)
		r = load_reserve(&start, &l->cap_batches, t->nbatch + 2, 1024,
				 sizeof(*t->start));
	t->start = start;
	return r;
}

/* Close the open batch; batches left empty by skipping are dropped. */
static void load_close(struct load *l)
{
	struct wl_trace *t = &l->w->trace;

	if (!l->cur)
		return;
	t->nbatch++;
	t->start[t->nbatch] = (uint32_t)t->ncmds;
	l->cur = 0;
}

static int load_sid(struct wl *w, uint32_t sid)
{
	for (unsigned int i = 0; i < w->nsids; i++)
		if (w->sids[i] == sid)
			return 0;
	if (w->nsids == WL_MAX_SIDS)
		return -E2BIG;
	w->sids[w->nsids++] = sid;
	return 0;
}

static int load_cb(void *arg, const struct cmdq_trace_rec *rec,
		   unsigned long line)
{
	struct load *l = arg;
	struct wl_trace *t = &l->w->trace;
	enum cmdq_class cls;
	uint8_t op;
	int r;

	if (rec->kind == CMDQ_TRACE_BATCH) {
		load_close(l);
		if (l->max_batches && t->file_batches >= l->max_batches)
			return 1; /* enough: stop reading */
		t->file_batches++;
		return 0;
	}
	if (rec->kind != CMDQ_TRACE_CMD)
		return 0;
	cls = cmdq_classify(&rec->cmd);
	if (cls != CMDQ_CLASS_FORWARD && cls != CMDQ_CLASS_SYNC) {
		t->skipped++;
		return 0;
	}
	op = cmdq_cmd_opcode(&rec->cmd);
	if (op == CMDQ_OP_CFGI_CD || op == CMDQ_OP_CFGI_CD_ALL ||
	    op == CMDQ_OP_ATC_INV) {
		r = load_sid(l->w, (uint32_t)cmdq_get(&rec->cmd, CMDQ_F_SID));
		if (r)
			return r;
	}
	r = load_grow(l);
	if (r)
		return r;
	if (l->cur == WL_MAX_BATCH)
		load_close(l);
	t->cmds[t->ncmds++] = rec->cmd;
	l->cur++;
	return 0;
}

/* A FILE reading @path, through `xz -dc` for .xz files. */
static int trace_open(const char *path, FILE **ret_f, pid_t *ret_pid)
{
	size_t len = strlen(path);
	int fd[2];
	pid_t pid;
	FILE *f;

	*ret_pid = -1;
	if (access(path, R_OK))
		return -errno;
	if (len < 3 || strcmp(path + len - 3, ".xz")) {
		f = fopen(path, "re");
		if (!f)
			return -errno;
		*ret_f = f;
		return 0;
	}
	if (pipe2(fd, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(fd[0]);
		close(fd[1]);
		return -errno;
	}
	if (pid == 0) {
		dup2(fd[1], STDOUT_FILENO);
		execlp("xz", "xz", "-dc", "--", path, (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	f = fdopen(fd[0], "r");
	if (!f) {
		close(fd[0]);
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
		return -ENOMEM;
	}
	*ret_f = f;
	*ret_pid = pid;
	return 0;
}

static int trace_load(struct wl *w, const char *path, uint64_t max_batches,
		      char *errbuf, size_t errlen)
{
	struct load l = { .w = w, .max_batches = max_batches };
	struct cmdq_trace_error te = { 0, NULL };
	pid_t pid = -1;
	FILE *f = NULL;
	int r, st;

	r = trace_open(path, &f, &pid);
	if (r) {
		snprintf(errbuf, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	r = load_grow(&l);
	if (!r) {
		w->trace.start[0] = 0;
		r = cmdq_trace_read(f, load_cb, &l, &te);
	}
	if (r > 0)
		r = 0; /* stopped at max_batches */
	if (pid > 0) {
		/* Stopped early: xz gets EPIPE; a failed xz is an error. */
		fclose(f);
		f = NULL;
		if (waitpid(pid, &st, 0) == pid && !r && !max_batches &&
		    !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
			snprintf(errbuf, errlen, "%s: xz -dc failed", path);
			return -EIO;
		}
	}
	if (f)
		fclose(f);
	if (r == -EINVAL && te.msg) {
		snprintf(errbuf, errlen, "%s:%lu: %s", path, te.line, te.msg);
		return r;
	}
	if (r) {
		snprintf(errbuf, errlen, "%s: %s", path,
			 r == -E2BIG ? "more than 16 distinct vSIDs" :
				       strerror(-r));
		return r == -E2BIG ? -EINVAL : r;
	}
	load_close(&l);
	if (!w->trace.nbatch) {
		snprintf(errbuf, errlen, "%s: no forwardable commands", path);
		return -EINVAL;
	}
	return 0;
}

int wl_init(struct wl *w, const char *spec, uint64_t max_batches, char *errbuf,
	    size_t errlen)
{
	memset(w, 0, sizeof(*w));
	w->name = spec;
	if (!strcmp(spec, "strict-unmap"))
		w->kind = WL_STRICT;
	else if (!strcmp(spec, "lazy-flush"))
		w->kind = WL_LAZY;
	else if (!strcmp(spec, "mixed"))
		w->kind = WL_MIXED;
	else if (!strcmp(spec, "storm"))
		w->kind = WL_STORM;
	else if (!strncmp(spec, "trace:", 6))
		w->kind = WL_TRACE;
	else {
		snprintf(errbuf, errlen, "unknown workload '%s'", spec);
		return -EINVAL;
	}
	if (w->kind == WL_TRACE) {
		int r = trace_load(w, spec + 6, max_batches, errbuf, errlen);

		if (r) {
			wl_free(w);
			return r;
		}
	} else {
		w->sids[0] = WL_GEN_VSID;
		w->nsids = 1;
	}
	return 0;
}

int wl_set_devices(struct wl *w, unsigned int n)
{
	if (w->kind == WL_TRACE || !n || n > WL_MAX_SIDS)
		return -EINVAL;
	for (unsigned int k = 0; k < n; k++)
		w->sids[k] = WL_GEN_VSID + k;
	w->nsids = n;
	return 0;
}

void wl_free(struct wl *w)
{
	free(w->trace.cmds);
	free(w->trace.start);
	w->trace.cmds = NULL;
	w->trace.start = NULL;
}

unsigned int wl_max_streams(const struct wl *w)
{
	return w->kind == WL_TRACE ? WL_MAX_STREAMS_TRACE : WL_MAX_STREAMS;
}

void wl_stream_init(struct wl_stream *s, const struct wl *w, uint64_t seed,
		    unsigned int stream, uint64_t global, uint64_t nglobal)
{
	memset(s, 0, sizeof(*s));
	s->w = w;
	s->stream = stream;
	s->rng = seed ^ (global * UINT64_C(0x2545f4914f6cdd1d));
	if (w->kind == WL_TRACE && nglobal)
		s->pos = (uint32_t)(global * w->trace.nbatch / nglobal);
}

static uint16_t stream_asid(const struct wl_stream *s)
{
	if (s->w->kind == WL_TRACE)
		return (uint16_t)(s->stream << 12 | 1);
	return (uint16_t)(1 + s->stream);
}

/* A stream-private address for commands without one (NH_ASID, NH_ALL). */
static uint64_t stream_probe(const struct wl_stream *s)
{
	return ((uint64_t)s->stream + 1) << 32;
}

static void batch_add(struct wl_batch *b, struct cmdq_cmd c)
{
	if (cmdq_classify(&c) == CMDQ_CLASS_SYNC)
		b->last_sync = (int)b->n;
	else
		b->nfwd++;
	b->cmd[b->n++] = c;
}

static void gen_unmap(struct wl_stream *s, struct wl_batch *b)
{
	static const uint8_t pages_log2[] = { 0, 0, 0, 1, 2, 3, 4 };
	uint64_t r = wl_rand(&s->rng);
	unsigned int scale = pages_log2[r % sizeof(pages_log2)];
	struct cmdq_tlbi_range rg = {
		.num = 0, .scale = (uint8_t)scale, .tg = 1, .ttl = 3
	};
	/* 1 GiB of IOVA per stream, 4 KiB pages, page-aligned to the range. */
	uint64_t va = stream_probe(s) + (((r >> 8) % (1u << 18)) << 12);

	va &= ~((UINT64_C(4096) << scale) - 1);
	batch_add(b, cmdq_build_tlbi_nh_va(stream_asid(s), 0, va, true, &rg));
	batch_add(b, wl_sync());
}

static void gen_flush(struct wl_stream *s, struct wl_batch *b)
{
	batch_add(b, cmdq_build_tlbi_nh_asid(stream_asid(s), 0));
	batch_add(b, wl_sync());
}

/*
 * One process exit in the guest: the driver clears the context descriptor
 * and syncs, so the SMMU can no longer walk with it, then invalidates the
 * ASID's TLB entries and syncs. Both classes in one PROD write.
 */
static void gen_teardown(struct wl_stream *s, struct wl_batch *b)
{
	uint32_t i = s->pos++;
	uint32_t space = s->stream << 10 | (1 + i % WL_STORM_SPACES);
	uint32_t vsid = s->w->sids[i % s->w->nsids];

	batch_add(b, cmdq_build_cfgi_cd(vsid, space, true));
	batch_add(b, wl_sync());
	batch_add(b, cmdq_build_tlbi_nh_asid((uint16_t)space, 0));
	batch_add(b, wl_sync());
}

static void trace_next(struct wl_stream *s, struct wl_batch *b)
{
	const struct wl_trace *t = &s->w->trace;
	uint32_t first = t->start[s->pos], end = t->start[s->pos + 1];

	for (uint32_t i = first; i < end; i++) {
		struct cmdq_cmd c = t->cmds[i];
		uint64_t v;

		switch (cmdq_cmd_opcode(&c)) {
		case CMDQ_OP_TLBI_NH_ASID:
		case CMDQ_OP_TLBI_NH_VA:
			v = cmdq_get(&c, CMDQ_F_ASID);
			cmdq_set(&c, CMDQ_F_ASID,
				 (v & 0xfff) | (uint64_t)s->stream << 12);
			break;
		case CMDQ_OP_CFGI_CD:
			v = cmdq_get(&c, CMDQ_F_SSID);
			cmdq_set(&c, CMDQ_F_SSID,
				 ((v << 4) | s->stream) & 0xfffff);
			break;
		default:
			break;
		}
		batch_add(b, c);
	}
	if (++s->pos == t->nbatch)
		s->pos = 0;
}

void wl_next(struct wl_stream *s, struct wl_batch *b)
{
	uint64_t r;

	b->n = 0;
	b->nfwd = 0;
	b->last_sync = -1;
	switch (s->w->kind) {
	case WL_STRICT:
		gen_unmap(s, b);
		break;
	case WL_LAZY:
		gen_flush(s, b);
		break;
	case WL_MIXED:
		r = wl_rand(&s->rng) % 10;
		if (r < 7) {
			gen_unmap(s, b);
		} else if (r < 9) {
			gen_flush(s, b);
		} else {
			/* A context switch: the CD first, then its TLB. */
			batch_add(b, cmdq_build_cfgi_cd(WL_GEN_VSID, s->stream,
							true));
			batch_add(b, wl_sync());
			gen_flush(s, b);
		}
		break;
	case WL_STORM:
		gen_teardown(s, b);
		break;
	case WL_TRACE:
		trace_next(s, b);
		break;
	}
}

int wl_fill(struct wl_stream *s, struct iofd_viommu *v,
	    const struct wl_batch *b)
{
	for (uint32_t i = 0; i < b->n && s->nfill < WL_MAX_FILLS; i++) {
		const struct cmdq_cmd *c = &b->cmd[i];
		struct wl_fill f = { 0, stream_asid(s), 0, 0, stream_probe(s) };
		int r;

		switch (cmdq_cmd_opcode(c)) {
		case CMDQ_OP_TLBI_NH_VA:
			f.asid = (uint16_t)cmdq_get(c, CMDQ_F_ASID);
			f.addr = cmdq_get(c, CMDQ_F_ADDR);
			break;
		case CMDQ_OP_TLBI_NH_VAA:
			f.addr = cmdq_get(c, CMDQ_F_ADDR);
			break;
		case CMDQ_OP_TLBI_NH_ASID:
			f.asid = (uint16_t)cmdq_get(c, CMDQ_F_ASID);
			break;
		case CMDQ_OP_TLBI_NH_ALL:
		case CMDQ_OP_TLBI_NSNH_ALL:
			break;
		case CMDQ_OP_CFGI_CD:
			f.kind = 1;
			f.sid = (uint32_t)cmdq_get(c, CMDQ_F_SID);
			f.ssid = (uint32_t)cmdq_get(c, CMDQ_F_SSID);
			break;
		case CMDQ_OP_CFGI_CD_ALL:
			f.kind = 1;
			f.sid = (uint32_t)cmdq_get(c, CMDQ_F_SID);
			f.ssid = s->stream;
			break;
		default:
			continue; /* SYNC; ATC_INV is not modelled here */
		}
		r = f.kind ? iofd_sim_cd_fill(v, f.sid, f.ssid) :
			     iofd_sim_tlb_fill(v, f.asid, f.addr);
		if (r)
			return r;
		s->fill[s->nfill++] = f;
	}
	return 0;
}

unsigned int wl_check(struct wl_stream *s, struct iofd_viommu *v,
		      unsigned int *ret_checked)
{
	unsigned int stale = 0;

	for (unsigned int i = 0; i < s->nfill; i++) {
		const struct wl_fill *f = &s->fill[i];

		if (f->kind ? iofd_sim_cd_lookup(v, f->sid, f->ssid) :
			      iofd_sim_tlb_lookup(v, f->asid, f->addr))
			stale++;
	}
	*ret_checked = s->nfill;
	s->nfill = 0;
	return stale;
}
