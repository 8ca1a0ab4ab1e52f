/* SPDX-License-Identifier: MIT */
/*
 * coalesce-replay: cmdq_coalesce_info() on the batches an smmu-bench
 * worker coalesces, on one thread, for exact instruction counts
 * (valgrind --tool=callgrind). Not installed.
 *
 * smmu-bench's worker coalesces, per pass over a vSMMU, what its vCPUs
 * published since the last pass: with V vCPUs running strict-unmap, one
 * TLBI_NH_VA (range form, one ASID per vCPU) + CMD_SYNC from each of up
 * to V vCPUs, interleaved vCPU by vCPU (2..2V guest commands). Only the
 * forwarded commands reach the coalescing (core_batch_sync() counts the
 * CMD_SYNCs apart), so a batch of 1..V TLBIs. This tool makes
 * the same batches with bench/workload.c's generators (stream k is vCPU
 * k, seeded as smmu-bench seeds its streams): each batch takes the next
 * wl_next() batch of K consecutive vCPUs, round-robin. With -k 0 K cycles
 * 1, 2, ..., V (every batch size); -k V is a busy worker's full batch
 * (what `smmu-bench -n 1 --vcpus 16 -k 2000 -b null` coalesces). The
 * batches are made and decoded (cmdq_decode) before the timed part.
 *
 * replay_pass() (never inlined) is only the coalescing, so that
 *   valgrind --tool=callgrind --toggle-collect=replay_pass \
 *     build/bench/coalesce-replay -n 64000 -v 16 -k 16
 * counts only it; instructions per guest command = Ir / N (the summary
 * line gives N, CMD_SYNCs included, and the commands coalescing dropped, which must not change
 * when only the speed of cmdq_coalesce_info() changes).
 *
 * usage: coalesce-replay [-n COMMANDS] [-v VCPUS] [-k K] [-w WORKLOAD]
 *                        [-s SEED]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/workload.h"
#include "cmdq/cmdq.h"

#define REPLAY_MAX_BATCH (WL_MAX_STREAMS * WL_MAX_BATCH)

struct replay {
	struct cmdq_cmd *cmds; /* every batch, back to back */
	struct cmdq_info *info;
	uint32_t *start; /* batch b is [start[b], start[b + 1]) */
	uint32_t nbatch;
	uint64_t ncmds; /* forwarded, in cmds[] */
	uint64_t nguest; /* guest commands, CMD_SYNCs too */
};

/* The timed part: every batch through the coalescing, in place. */
__attribute__((noinline)) static uint64_t replay_pass(struct replay *r)
{
	uint64_t kept = 0;

	for (uint32_t b = 0; b < r->nbatch; b++) {
		uint32_t s = r->start[b];

		kept += cmdq_coalesce_info(r->cmds + s, r->info + s,
					   r->start[b + 1] - s);
	}
	return kept;
}

static int replay_make(struct replay *r, const struct wl *w, uint64_t n,
		       unsigned int vcpus, unsigned int k, uint64_t seed)
{
	struct wl_stream *ws = calloc(vcpus, sizeof(*ws));
	struct cmdq_caps caps = cmdq_caps_full;
	uint64_t cap = n + REPLAY_MAX_BATCH, maxb = n + 1;
	unsigned int next = 0, kk = 0;
	struct wl_batch wb;

	r->cmds = calloc(cap, sizeof(*r->cmds));
	r->info = calloc(cap, sizeof(*r->info));
	r->start = calloc(maxb + 1, sizeof(*r->start));
	if (!ws || !r->cmds || !r->info || !r->start) {
		free(ws);
		return -ENOMEM;
	}
	cmdq_caps_prepare(&caps);
	for (unsigned int i = 0; i < vcpus; i++)
		wl_stream_init(&ws[i], w, seed, i, i, vcpus);
	while (r->nguest < n && r->nbatch < maxb) {
		unsigned int take = k ? k : (kk++ % vcpus) + 1;

		r->start[r->nbatch] = (uint32_t)r->ncmds;
		for (unsigned int j = 0; j < take; j++) {
			wl_next(&ws[next], &wb);
			next = (next + 1) % vcpus;
			for (uint32_t c = 0; c < wb.n; c++) {
				struct cmdq_cmd le;
				uint64_t at = r->ncmds;

				cmdq_cmd_to_le(&wb.cmd[c], &le);
				cmdq_decode(&caps, &le, &r->cmds[at],
					    &r->info[at]);
				r->nguest++;
				/* As core admits them: FORWARD only. */
				if (r->info[at].cls == CMDQ_CLASS_FORWARD)
					r->ncmds++;
			}
		}
		r->nbatch++;
	}
	r->start[r->nbatch] = (uint32_t)r->ncmds;
	free(ws);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t n = 64000, seed = 1, kept;
	unsigned long vcpus = 16, k = 16;
	const char *spec = "strict-unmap";
	struct replay r = { 0 };
	char errbuf[256];
	struct wl w;
	int opt, rc;

	while ((opt = getopt(argc, argv, "n:v:k:w:s:")) != -1) {
		switch (opt) {
		case 'n':
			n = strtoull(optarg, NULL, 0);
			break;
		case 'v':
			vcpus = strtoul(optarg, NULL, 0);
			break;
		case 'k':
			k = strtoul(optarg, NULL, 0);
			break;
		case 'w':
			spec = optarg;
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		default:
			fprintf(stderr,
				"usage: coalesce-replay [-n COMMANDS] [-v VCPUS] [-k K] [-w WORKLOAD] [-s SEED]\n");
			return 2;
		}
	}
	if (!n || n > (1u << 30) || !vcpus || vcpus > WL_MAX_STREAMS ||
	    k > vcpus) {
		fprintf(stderr, "coalesce-replay: bad -n, -v or -k\n");
		return 2;
	}
	if (wl_init(&w, spec, 0, errbuf, sizeof(errbuf))) {
		fprintf(stderr, "coalesce-replay: %s\n", errbuf);
		return 2;
	}
	if (vcpus > wl_max_streams(&w)) {
		fprintf(stderr, "coalesce-replay: at most %u vCPUs\n",
			wl_max_streams(&w));
		wl_free(&w);
		return 2;
	}
	rc = replay_make(&r, &w, n, (unsigned int)vcpus, (unsigned int)k, seed);
	if (!rc) {
		kept = replay_pass(&r);
		printf("coalesce-replay: %s vcpus %lu k %lu: %" PRIu64
		       " guest commands, %" PRIu64
		       " forwarded in %u batches, %" PRIu64 " dropped\n",
		       spec, vcpus, k, r.nguest, r.ncmds, r.nbatch,
		       r.ncmds - kept);
	} else {
		fprintf(stderr, "coalesce-replay: %s\n", strerror(-rc));
	}
	free(r.cmds);
	free(r.info);
	free(r.start);
	wl_free(&w);
	return rc ? 1 : 0;
}
