/* SPDX-License-Identifier: MIT */
/*
 * consumer-drive: the service's consumer path on one thread, for
 * instruction counts (valgrind --tool=callgrind; valgrind serialises
 * threads and deadlocks on the worker's cross-thread io_uring waits, so
 * smmu-bench cannot be profiled that way). Not installed.
 *
 * One ring, one vIOMMU on the null backend. The thread alternates between
 * the guest's side (fill the ring with strict-unmap writes: TLBI_NH_VA,
 * range form, + CMD_SYNC, then publish) and the worker's side, which is
 * core's own batch code (core/batch.h) driven as ring_pump() and
 * vsmmu_issue() drive it, without the worker's event loop, threads,
 * token bucket or statistics:
 *
 *   ring_cons_poll, ring_cons_claim (<= budget entries, the worker's
 *   ring_budget), then per entry ring_cons_load and cmdq_decode against
 *   the caps (one copy, from the ring straight into the batch's next
 *   slot), the vSID check, core_batch_sync / core_batch_admit (the
 *   ordering-class cut); per pass core_batch_seal (coalescing),
 *   core_batch_execute on the null backend, core_batch_settle and
 *   ring_cons_complete up to what the plan says.
 *
 * The worker's side is drive_pass() (never inlined), so that
 *   valgrind --tool=callgrind --toggle-collect=drive_pass \
 *     build/bench/consumer-drive -n 200000
 * counts only it; instructions per guest command = Ir / N (the summary
 * line gives N). Exit status 0 only if every command was consumed, every
 * CMD_SYNC completed (as counted by the settlement plans) and the backend
 * saw exactly the calls and commands the batches report.
 *
 * usage: consumer-drive [-n COMMANDS] [-b BUDGET] [-s SEED]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <smmu-offload/ring-prod.h>

#include "bench/workload.h"
#include "cmdq/cmdq.h"
#include "core/batch.h"
#include "common/clock.h"
#include "iommufd/iofd.h"
#include "iommufd/sim.h"
#include "ring/ring_cons.h"

#define RING_LOG2 10
#define MAX_BUDGET 256

/* Everything one thread owns: the guest's ring_prod and the worker's
 * ring_cons over the same memfd, and the worker's batch. */
struct drive {
	struct ring_prod p;
	struct ring_cons rc;
	struct iofd_backend *be;
	struct iofd_hsmmu *h;
	struct iofd_viommu *vi;
	struct cmdq_caps caps;
	int memfd;
	uint32_t budget;
	struct core_batch *b; /* [budget] */
	uint64_t passes, ioctls, issued, syncs, cut;
	int err;
};

/*
 * One pass of the worker over its one ring: what ring_pump() and
 * vsmmu_issue() do for the entries of one batch, through core's batch
 * module. A cut at an ordering point ends the pass early, as in the
 * worker (the rest waits for the next batch). Return: entries consumed,
 * or 0 with d->err set.
 */
__attribute__((noinline)) static uint32_t drive_pass(struct drive *d)
{
	struct core_batch *b = d->b;
	struct core_settle plan;
	uint32_t avail, got, i, start;
	unsigned int seg;
	int r;

	r = ring_cons_poll(&d->rc, &avail);
	if (r || !avail) {
		d->err = r ? r : -ENODATA;
		return 0;
	}
	core_batch_reset(b, d->passes);
	got = ring_cons_claim(&d->rc, avail < d->budget ? avail : d->budget);
	start = d->rc.fetch - got;
	seg = core_batch_seg_open(b, start, 0);
	for (i = 0; i < got; i++) {
		struct core_seg *sg = &b->segs[seg];
		const struct cmdq_info *inf = &b->info[b->n];
		struct smmu_ring_entry e = ring_cons_load(&d->rc, start + i);

		if (cmdq_decode(&d->caps, &e, &b->cmds[b->n], &b->info[b->n]) !=
		    CMDQ_CERROR_NONE) {
			d->err = -EINVAL;
			return 0;
		}
		if (inf->cls == CMDQ_CLASS_SYNC) {
			core_batch_sync(b, seg, sg->end);
		} else if (inf->cls == CMDQ_CLASS_FORWARD) {
			/* The worker's vSID check; no vDEVICE is bound here. */
			if (inf->flags & CMDQ_INFO_SID) {
				d->err = -EINVAL;
				return 0;
			}
			if (core_batch_admit(b, seg, sg->end) ==
			    CORE_ADMIT_CUT) {
				ring_cons_rewind(&d->rc, sg->end);
				d->cut++;
				break;
			}
		} else if (inf->cls != CMDQ_CLASS_NOP) {
			d->err = -EINVAL;
			return 0;
		}
		sg->end++;
		b->n_entries++;
	}
	if (core_batch_seal(b)) {
		core_batch_execute(b, core_batch_call_iofd, d->vi);
		if (b->rc) {
			d->err = b->rc;
			return 0;
		}
		d->ioctls += b->calls;
		d->issued += b->n_issue;
	}
	core_batch_settle(b, &plan);
	d->syncs += plan.seg[seg].syncs;
	ring_cons_complete(&d->rc, plan.seg[seg].upto);
	d->passes++;
	return plan.seg[seg].upto - start;
}

static int drive_setup(struct drive *d)
{
	struct iofd_sim_config sim;
	struct iofd_config cfg = { .kind = "null", .sim = &sim };
	struct iofd_viommu_spec spec = { .iommufd = -1 };
	int r;

	iofd_sim_config_default(&sim);
	d->caps = sim.caps;
	cmdq_caps_prepare(&d->caps); /* as core does when a vSMMU binds */
	r = iofd_backend_new(&cfg, &d->be);
	if (!r)
		r = iofd_hsmmu_open(d->be, "smmu0", &d->h);
	if (!r)
		r = iofd_viommu_bind(d->h, &spec, &d->vi);
	if (!r)
		r = ring_memfd_create(RING_LOG2, &d->memfd);
	if (!r)
		r = ring_prod_init(&d->p, d->memfd, -1, -1);
	if (!r)
		r = ring_cons_map(d->memfd, &d->rc);
	return r;
}

static void drive_teardown(struct drive *d)
{
	ring_cons_unmap(&d->rc);
	ring_prod_done(&d->p);
	if (d->memfd >= 0)
		close(d->memfd);
	if (d->vi)
		iofd_viommu_unbind(d->vi);
	if (d->h)
		iofd_hsmmu_close(d->h);
	if (d->be)
		iofd_backend_free(d->be);
}

/* The guest: fill the ring's free space with whole strict-unmap writes. */
static int guest_fill(struct drive *d, struct wl_stream *ws, uint64_t *left,
		      uint64_t *ret_syncs)
{
	uint32_t room = (1u << RING_LOG2) - (d->p.prod - d->rc.cons);
	struct wl_batch b;
	bool pushed = false;

	while (*left && room >= 2) {
		struct smmu_ring_entry e[WL_MAX_BATCH];
		uint32_t first;
		int r;

		wl_next(ws, &b);
		if (b.n > room || b.n > *left)
			break;
		for (uint32_t i = 0; i < b.n; i++)
			cmdq_cmd_to_le(&b.cmd[i], &e[i]);
		r = ring_prod_push(&d->p, e, b.n, &first);
		if (r)
			return r;
		room -= b.n;
		*left -= b.n;
		*ret_syncs += b.n - b.nfwd;
		pushed = true;
	}
	return pushed ? ring_prod_publish(&d->p) : 0;
}

int main(int argc, char **argv)
{
	struct drive *d;
	uint64_t n = 200000, seed = 1, left, want_syncs = 0, t0, t1;
	unsigned long budget = 64; /* CORE_DEFAULT_BUDGET */
	struct iofd_counters vc;
	struct wl_stream ws;
	struct wl w;
	char errbuf[128];
	int c, r;

	while ((c = getopt(argc, argv, "n:b:s:h")) != -1) {
		switch (c) {
		case 'n':
			n = strtoull(optarg, NULL, 0);
			break;
		case 'b':
			budget = strtoul(optarg, NULL, 0);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		default:
			fprintf(stderr, "usage: consumer-drive [-n COMMANDS] "
					"[-b BUDGET 1..256] [-s SEED]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (n < 2 || !budget || budget > MAX_BUDGET) {
		fprintf(stderr, "consumer-drive: bad -n or -b\n");
		return 2;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return 1;
	d->memfd = -1;
	d->budget = (uint32_t)budget;
	d->b = core_batch_new(d->budget);
	r = wl_init(&w, "strict-unmap", 0, errbuf, sizeof(errbuf));
	if (!r)
		r = d->b ? drive_setup(d) : -ENOMEM;
	if (r) {
		fprintf(stderr, "consumer-drive: setup: %s\n", strerror(-r));
		drive_teardown(d);
		wl_free(&w);
		core_batch_free(d->b);
		free(d);
		return 1;
	}
	wl_stream_init(&ws, &w, seed, 0, 0, 1);
	left = n;
	t0 = common_now_ns();
	while (!d->err && (left || d->rc.cons != d->p.prod)) {
		r = guest_fill(d, &ws, &left, &want_syncs);
		if (r) {
			d->err = r;
			break;
		}
		if (d->p.prod == d->rc.cons)
			break; /* the rest does not fit a whole write */
		while (!d->err && d->rc.cons != d->p.prod)
			if (!drive_pass(d) && !d->err)
				d->err = -EPROTO; /* no progress */
	}
	t1 = common_now_ns();
	iofd_viommu_counters(d->vi, &vc);
	n -= left;
	printf("consumer-drive: %" PRIu64 " guest commands (%" PRIu64
	       " CMD_SYNCs) in %" PRIu64 " passes, budget %u: %" PRIu64
	       " ioctls, %" PRIu64 " host commands (%.1f per ioctl), %" PRIu64
	       " ordering cuts; %.1f ns per command natively\n",
	       n, d->syncs, d->passes, d->budget, vc.ioctls, vc.cmds,
	       vc.ioctls ? (double)vc.cmds / (double)vc.ioctls : 0.0, d->cut,
	       (double)(t1 - t0) / (double)(n ? n : 1));
	r = 0;
	if (d->err) {
		fprintf(stderr, "consumer-drive: %s\n", strerror(-d->err));
		r = 1;
	} else if (d->rc.cons != d->p.prod || d->syncs != want_syncs ||
		   !ring_prod_done_upto(&d->p, d->p.prod - 1) ||
		   vc.ioctls != d->ioctls || vc.cmds != d->issued ||
		   vc.errors) {
		fprintf(stderr,
			"consumer-drive: mismatch: cons %u prod %u, syncs "
			"%" PRIu64 "/%" PRIu64 ", ioctls %" PRIu64 "/%" PRIu64
			", cmds %" PRIu64 "/%" PRIu64 "\n",
			d->rc.cons, d->p.prod, d->syncs, want_syncs, vc.ioctls,
			d->ioctls, vc.cmds, d->issued);
		r = 1;
	}
	drive_teardown(d);
	wl_free(&w);
	core_batch_free(d->b);
	free(d);
	return r;
}
