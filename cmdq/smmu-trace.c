/* SPDX-License-Identifier: MIT */
/*
 * smmu-trace: statistics and validation of an SMMUv3 command trace
 * (docs/TRACES.md).
 *
 *   smmu-trace stats [--json] FILE
 *   smmu-trace validate [--caps qemu|full] [--ring] FILE
 *   smmu-trace coalesce [--window N] FILE
 *
 * FILE may be '-' (stdin) or end in .xz (read through "xz -dc").
 * Exit status: 0 ok, 1 validation failures, 2 usage, I/O or parse error.
 */
#include "cmdq/cmdq.h"
#include "cmdq/trace.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* A growable histogram: count[i] of value i. */
struct hist {
	uint64_t *count;
	size_t len;
};

static int hist_add(struct hist *h, uint64_t v)
{
	if (v >= h->len) {
		size_t n = h->len ? h->len : 16;
		uint64_t *p;

		while (n <= v)
			n *= 2;
		p = realloc(h->count, n * sizeof(*p));
		if (!p)
			return -ENOMEM;
		memset(p + h->len, 0, (n - h->len) * sizeof(*p));
		h->count = p;
		h->len = n;
	}
	h->count[v]++;
	return 0;
}

#define MAX_NAMES 32

/* Owned by the main thread; filled by the trace callback. */
struct stats {
	const char *names[MAX_NAMES]; /* trace names, static strings */
	uint64_t per_name[MAX_NAMES];
	size_t n_names;
	uint64_t commands, batches, syncs, marks, since_sync, tail_cmds;
	uint64_t pages_va, pieces_va, n_va;
	uint64_t t_first, t_last;
	uint32_t max_batch;
	struct hist batch_hist, sync_hist;
	uint8_t cpus[256], asids[65536 / 8];
	uint64_t sids_seen[64]; /* first 64 distinct SIDs */
	size_t n_sids;
	uint32_t asid_sid[65536]; /* ASID -> SID + 1 (0: unknown) */
	uint64_t last_ste_sid; /* SID + 1 of the last CFGI_STE, 0: none */
	/* validate */
	const struct cmdq_caps *caps;
	bool ring, validate;
	const char *file;
	uint64_t bad, vmm_only;
	/* coalesce: what a worker draining N guest batches at a time sends */
	bool coalesce;
	unsigned int window, batches_pending;
	unsigned int pend_mask, before_sync_mask;
	size_t n_pend;
	struct cmdq_cmd pend[4096];
	uint64_t fwd_in, fwd_out, ioctls, order_flushes;
};

/* Kernel chunk per host CMD_SYNC (facts 4.2/4.3). */
#define IOCTL_CHUNK 63

static void sim_flush(struct stats *s)
{
	size_t m;

	if (!s->n_pend)
		return;
	m = cmdq_coalesce(s->pend, s->n_pend);
	s->fwd_in += s->n_pend;
	s->fwd_out += m;
	s->ioctls += (m + IOCTL_CHUNK - 1) / IOCTL_CHUNK;
	s->n_pend = 0;
	s->pend_mask = 0;
	s->before_sync_mask = 0;
}

/*
 * Same-class commands share a batch across guest SYNCs; a guest SYNC between
 * different classes is an ordering point (cmdq.h, enum cmdq_order_class).
 */
static void sim_cmd(struct stats *s, const struct cmdq_cmd *c)
{
	enum cmdq_class k = cmdq_classify(c);
	unsigned int oc;

	if (k == CMDQ_CLASS_SYNC) {
		s->before_sync_mask |= s->pend_mask;
		return;
	}
	if (k != CMDQ_CLASS_FORWARD)
		return;
	oc = cmdq_order_class(c);
	if (s->before_sync_mask & ~oc) {
		s->order_flushes++;
		sim_flush(s);
	}
	s->pend[s->n_pend++] = *c;
	s->pend_mask |= oc;
	if (s->n_pend == sizeof(s->pend) / sizeof(s->pend[0]))
		sim_flush(s);
}

/* QEMU splits a range into power-of-two aligned pieces (README). */
static uint64_t qemu_pieces(uint64_t page, uint64_t n)
{
	uint64_t pieces = 0;

	while (n) {
		uint64_t sz = page ? page & -page : UINT64_C(1) << 63;

		while (sz > n)
			sz >>= 1;
		page += sz;
		n -= sz;
		pieces++;
	}
	return pieces;
}

static void add_sid(struct stats *s, uint64_t sid)
{
	for (size_t i = 0; i < s->n_sids; i++)
		if (s->sids_seen[i] == sid)
			return;
	if (s->n_sids < sizeof(s->sids_seen) / sizeof(s->sids_seen[0]))
		s->sids_seen[s->n_sids++] = sid;
}

static void count_name(struct stats *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->n_names; i++)
		if (!strcmp(s->names[i], name))
			break;
	if (i == s->n_names && i < MAX_NAMES)
		s->names[s->n_names++] = name;
	if (i < MAX_NAMES)
		s->per_name[i]++;
}

/* The trace line's name; RAW lines go by their opcode's name. */
static const char *cmd_name(const struct cmdq_cmd *c)
{
	const char *name = cmdq_trace_cmd_name(c);

	if (strcmp(name, "RAW"))
		return name;
	name = cmdq_op_name(cmdq_cmd_opcode(c));
	return name ? name : "UNKNOWN";
}

static int stats_cmd(struct stats *s, const struct cmdq_cmd *c,
		     unsigned long line)
{
	uint8_t op = cmdq_cmd_opcode(c);
	enum cmdq_class k = cmdq_classify(c);
	const char *why = NULL;

	s->commands++;
	count_name(s, cmd_name(c));
	if (op == CMDQ_OP_SYNC) {
		s->syncs++;
		if (hist_add(&s->sync_hist, s->since_sync))
			return -ENOMEM;
		s->since_sync = 0;
	} else {
		s->since_sync++;
	}
	if (op == CMDQ_OP_TLBI_NH_VA || op == CMDQ_OP_TLBI_NH_ASID) {
		uint16_t asid = (uint16_t)cmdq_tlbi_asid(c);

		s->asids[asid / 8] |= (uint8_t)(1u << (asid % 8));
		if (op == CMDQ_OP_TLBI_NH_ASID && s->last_ste_sid &&
		    !s->asid_sid[asid])
			s->asid_sid[asid] = (uint32_t)s->last_ste_sid;
	}
	if (op == CMDQ_OP_TLBI_NH_VA) {
		uint64_t pages = cmdq_tlbi_tg(c) ?
					 (cmdq_tlbi_num(c) + 1)
						 << cmdq_tlbi_scale(c) :
					 1;

		s->n_va++;
		s->pages_va += pages;
		s->pieces_va += cmdq_tlbi_tg(c) == CMDQ_TG_4K ?
					qemu_pieces(cmdq_addr(c) >> 12, pages) :
					1;
	}
	if (op == CMDQ_OP_CFGI_STE) {
		s->last_ste_sid = cmdq_sid(c) + 1;
		add_sid(s, cmdq_sid(c));
	}
	if (op == CMDQ_OP_CFGI_CD || op == CMDQ_OP_CFGI_CD_ALL ||
	    op == CMDQ_OP_ATC_INV)
		add_sid(s, cmdq_sid(c));
	if (s->coalesce)
		sim_cmd(s, c);
	if (!s->validate)
		return 0;
	if (k == CMDQ_CLASS_VMM_ONLY && !s->ring) {
		/* In a guest->VMM trace these are the VMM's (facts 7). */
		s->vmm_only++;
		return 0;
	}
	if (cmdq_validate(s->caps, c, &why) != CMDQ_CERROR_NONE) {
		s->bad++;
		printf("%s:%lu: %s: %s\n", s->file, line, cmd_name(c), why);
	}
	return 0;
}

static int stats_cb(void *arg, const struct cmdq_trace_rec *rec,
		    unsigned long line)
{
	struct stats *s = arg;

	switch (rec->kind) {
	case CMDQ_TRACE_BATCH:
		if (!s->batches)
			s->t_first = rec->batch.t_us;
		s->t_last = rec->batch.t_us;
		s->batches++;
		if (s->coalesce && s->batches_pending++ == s->window) {
			sim_flush(s);
			s->batches_pending = 1;
		}
		if (rec->batch.n > s->max_batch)
			s->max_batch = rec->batch.n;
		s->cpus[rec->batch.cpu & 255] = 1;
		return hist_add(&s->batch_hist, rec->batch.n);
	case CMDQ_TRACE_CMD:
		return stats_cmd(s, &rec->cmd, line);
	case CMDQ_TRACE_MARK:
		s->marks++;
		return 0;
	default:
		return 0;
	}
}

static unsigned int count_set(const uint8_t *b, size_t n, bool bits)
{
	unsigned int c = 0;

	for (size_t i = 0; i < n; i++)
		c += bits ? (unsigned int)__builtin_popcount(b[i]) : !!b[i];
	return c;
}

static double mean_between_syncs(const struct stats *s)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < s->sync_hist.len; i++)
		sum += i * s->sync_hist.count[i];
	return s->syncs ? (double)sum / (double)s->syncs : 0;
}

static void print_hist(const struct hist *h, bool json)
{
	const char *sep = "";

	for (size_t i = 0; i < h->len; i++) {
		if (!h->count[i])
			continue;
		if (json)
			printf("%s\n  \"%zu\": %" PRIu64, sep, i, h->count[i]);
		else
			printf("  %6zu: %" PRIu64 "\n", i, h->count[i]);
		sep = ",";
	}
}

static void print_json(const struct stats *s)
{
	const char *sep = "";

	printf("{\n");
	for (size_t i = 0; i < s->n_names; i++)
		printf(" \"op_%s\": %" PRIu64 ",\n", s->names[i],
		       s->per_name[i]);
	if (s->n_va)
		printf(" \"pages_TLBI_NH_VA\": %" PRIu64
		       ",\n \"split_pieces\": %" PRIu64 ",\n",
		       s->pages_va, s->pieces_va);
	printf(" \"commands\": %" PRIu64 ",\n \"batches\": %" PRIu64
	       ",\n \"mean_cmds_per_batch\": %.3f,\n"
	       " \"max_cmds_per_batch\": %" PRIu32 ",\n \"batch_size_hist\": {",
	       s->commands, s->batches,
	       s->batches ? (double)s->commands / (double)s->batches : 0.0,
	       s->max_batch);
	print_hist(&s->batch_hist, true);
	printf("\n },\n \"syncs\": %" PRIu64
	       ",\n \"mean_cmds_between_syncs\": %.3f,\n"
	       " \"cmds_between_syncs_hist\": {",
	       s->syncs, mean_between_syncs(s));
	print_hist(&s->sync_hist, true);
	printf("\n },\n \"marks\": %" PRIu64 ",\n \"cpus_seen\": %u,\n"
	       " \"duration_s\": %.3f,\n \"asid_to_sid\": {",
	       s->marks, count_set(s->cpus, sizeof(s->cpus), false),
	       (double)(s->t_last - s->t_first) / 1e6);
	for (size_t a = 0; a < 65536; a++) {
		if (!s->asid_sid[a])
			continue;
		printf("%s\n  \"%zu\": \"0x%" PRIx32 "\"", sep, a,
		       s->asid_sid[a] - 1);
		sep = ",";
	}
	printf("\n },\n \"asids\": [");
	sep = "";
	for (size_t a = 0; a < 65536; a++) {
		if (s->asids[a / 8] & (1u << (a % 8))) {
			printf("%s%zu", sep, a);
			sep = ", ";
		}
	}
	printf("],\n \"sids\": [");
	sep = "";
	for (size_t i = 0; i < s->n_sids; i++) {
		printf("%s\"0x%" PRIx64 "\"", sep, s->sids_seen[i]);
		sep = ", ";
	}
	printf("]\n}\n");
}

static void print_text(const struct stats *s)
{
	printf("%s\n", s->file);
	printf("  commands %" PRIu64 ", batches %" PRIu64
	       " (mean %.3f, max %" PRIu32 "), SYNCs %" PRIu64
	       ", marks %" PRIu64 ", duration %.3f s\n",
	       s->commands, s->batches,
	       s->batches ? (double)s->commands / (double)s->batches : 0.0,
	       s->max_batch, s->syncs, s->marks,
	       (double)(s->t_last - s->t_first) / 1e6);
	printf("  per command:\n");
	for (size_t i = 0; i < s->n_names; i++)
		printf("  %-16s %10" PRIu64 "\n", s->names[i], s->per_name[i]);
	if (s->n_va)
		printf("  TLBI_NH_VA pages %" PRIu64 " (QEMU pieces %" PRIu64
		       ")\n",
		       s->pages_va, s->pieces_va);
	printf("  batch size histogram:\n");
	print_hist(&s->batch_hist, false);
	printf("  commands before each SYNC (mean %.3f):\n",
	       mean_between_syncs(s));
	print_hist(&s->sync_hist, false);
	printf("  ASIDs %u:", count_set(s->asids, sizeof(s->asids), true));
	for (size_t a = 0; a < 65536; a++) {
		if (!(s->asids[a / 8] & (1u << (a % 8))))
			continue;
		printf(" %zu", a);
		if (s->asid_sid[a])
			printf("(sid 0x%" PRIx32 ")", s->asid_sid[a] - 1);
	}
	printf("\n  SIDs %zu:", s->n_sids);
	for (size_t i = 0; i < s->n_sids; i++)
		printf(" 0x%" PRIx64, s->sids_seen[i]);
	printf("\n");
}

/* Open @path; .xz through a child "xz -dc". @ret_pid: 0 if no child. */
static FILE *open_input(const char *path, pid_t *ret_pid)
{
	size_t len = strlen(path);
	int fds[2];
	pid_t pid;
	FILE *f;

	*ret_pid = 0;
	if (!strcmp(path, "-"))
		return stdin;
	if (len < 3 || strcmp(path + len - 3, ".xz"))
		return fopen(path, "re");
	if (access(path, R_OK))
		return NULL;
	if (pipe2(fds, O_CLOEXEC))
		return NULL;
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return NULL;
	}
	if (pid == 0) {
		if (dup2(fds[1], STDOUT_FILENO) < 0)
			_exit(127);
		execlp("xz", "xz", "-dc", "--", path, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	f = fdopen(fds[0], "r");
	if (!f) {
		close(fds[0]);
		waitpid(pid, NULL, 0);
		return NULL;
	}
	*ret_pid = pid;
	return f;
}

/* Close the input; -EIO if the decompressor failed. */
static int close_input(FILE *f, pid_t pid)
{
	int status;

	if (f == stdin)
		return 0;
	fclose(f);
	if (!pid)
		return 0;
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		return -EIO;
	return 0;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: smmu-trace stats [--json] FILE\n"
		"       smmu-trace validate [--caps qemu|full] [--ring] FILE\n"
		"       smmu-trace coalesce [--window N] FILE\n"
		"FILE: a trace, FILE.xz, or - for stdin\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "caps", required_argument, NULL, 'c' },
		{ "ring", no_argument, NULL, 'r' },
		{ "window", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct stats s; /* large: keep it off the stack */
	struct cmdq_trace_error err = { 0, NULL };
	bool json = false;
	const char *cmd;
	FILE *f;
	pid_t pid;
	int opt, ret, cret;

	if (argc < 2)
		return usage();
	cmd = argv[1];
	if (!strcmp(cmd, "validate"))
		s.validate = true;
	else if (!strcmp(cmd, "coalesce"))
		s.coalesce = true;
	else if (strcmp(cmd, "stats"))
		return usage();
	s.window = 16;
	s.caps = &cmdq_caps_qemu;
	optind = 2;
	while ((opt = getopt_long(argc, argv, "jc:rw:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			json = true;
			break;
		case 'c':
			if (!strcmp(optarg, "qemu"))
				s.caps = &cmdq_caps_qemu;
			else if (!strcmp(optarg, "full"))
				s.caps = &cmdq_caps_full;
			else
				return usage();
			break;
		case 'r':
			s.ring = true;
			break;
		case 'w': {
			char *end;
			unsigned long w = strtoul(optarg, &end, 10);

			if (*end || !w || w > 1000000)
				return usage();
			s.window = (unsigned int)w;
			break;
		}
		default:
			return usage();
		}
	}
	if (optind != argc - 1 || (json && (s.validate || s.coalesce)))
		return usage();
	s.file = argv[optind];
	f = open_input(s.file, &pid);
	if (!f) {
		fprintf(stderr, "smmu-trace: %s: %s\n", s.file,
			strerror(errno));
		return 2;
	}
	ret = cmdq_trace_read(f, stats_cb, &s, &err);
	cret = close_input(f, pid);
	if (ret == -EINVAL && err.msg) {
		fprintf(stderr, "%s:%lu: %s\n", s.file, err.line, err.msg);
		return 2;
	}
	if (ret || cret) {
		fprintf(stderr, "smmu-trace: %s: %s\n", s.file,
			strerror(ret ? -ret : -cret));
		return 2;
	}
	if (s.validate) {
		printf("%s: %" PRIu64 " commands, %" PRIu64 " invalid, %" PRIu64
		       " handled by the VMM (CFGI_STE*) not checked\n",
		       s.file, s.commands, s.bad, s.vmm_only);
		return s.bad ? 1 : 0;
	}
	if (s.coalesce) {
		sim_flush(&s);
		printf("coalesce: window=%u in=%" PRIu64 " out=%" PRIu64
		       " ioctls=%" PRIu64 " order_flushes=%" PRIu64 "\n",
		       s.window, s.fwd_in, s.fwd_out, s.ioctls,
		       s.order_flushes);
		printf("  %" PRIu64 " forwarded commands become %" PRIu64
		       " (%.1f%% fewer) in %" PRIu64
		       " ioctls, draining up to %u guest batches at a time\n"
		       "  (QEMU's accel path today: one ioctl per command)\n",
		       s.fwd_in, s.fwd_out,
		       s.fwd_in ? 100.0 * (double)(s.fwd_in - s.fwd_out) /
					  (double)s.fwd_in :
				  0.0,
		       s.ioctls, s.window);
		return 0;
	}
	if (json)
		print_json(&s);
	else
		print_text(&s);
	return 0;
}
