/* SPDX-License-Identifier: MIT */
/*
 * The per-host-SMMU worker: drains every ring bound to its host SMMU
 * round-robin with a per-ring budget, validates and batches the commands
 * of each vSMMU, issues at most one batch per vSMMU at a time (guest
 * order) and several per host SMMU (async mode), publishes completion,
 * and sleeps in the kernel when nothing is pending.
 *
 * Everything in this file runs on the worker thread, except
 * core_worker_start/post_stop/join() (control threads). The backend call
 * itself is in batch.c, control messages in worker_ctl.c (worker side)
 * and ctl.c (caller side), completion signals in signal.c.
 */
#include "core/vcmdq_i.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/barrier.h"

/* Token layout: tag in the top byte, ring slot and id below. */
#define TOKEN_CTL (UINT64_C(1) << 56)
#define TOKEN_RING (UINT64_C(2) << 56)
#define TOKEN_VCMDQ (UINT64_C(3) << 56)
#define TOKEN_TAG(t) ((t) & (UINT64_C(0xff) << 56))

uint64_t core_ring_token(const struct core_ring *r)
{
	return TOKEN_RING | ((uint64_t)r->slot << 32) | r->id;
}

uint64_t core_vcmdq_token(const struct core_vcmdq *vc)
{
	return TOKEN_VCMDQ | vc->id;
}

/* Statistics counters: one writer (this thread), relaxed readers. */
#define STAT_ADD(field, v) WRITE_ONCE(field, (field) + (v))

static const struct core_config *wcfg(const struct core_worker *w)
{
	return &w->svc->cfg;
}

/* ---- batches ---------------------------------------------------------- */

struct core_batch *core_batch_new(struct core_vsmmu *vs, uint32_t cap)
{
	struct core_batch *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->vs = vs;
	b->cap = cap;
	b->cmds = calloc(cap, sizeof(*b->cmds));
	b->info = calloc(cap, sizeof(*b->info));
	b->issue = calloc(cap, sizeof(*b->issue));
	b->idx = calloc(cap, sizeof(*b->idx));
	b->seg_of = calloc(cap, sizeof(*b->seg_of));
	b->sync_at = calloc(cap, sizeof(*b->sync_at));
	b->syncs_before = calloc(cap, sizeof(*b->syncs_before));
	if (!b->cmds || !b->info || !b->issue || !b->idx || !b->seg_of ||
	    !b->sync_at || !b->syncs_before) {
		free(b->cmds);
		free(b->info);
		free(b->issue);
		free(b->idx);
		free(b->seg_of);
		free(b->sync_at);
		free(b->syncs_before);
		free(b);
		return NULL;
	}
	return b;
}

void core_batch_free(struct core_batch *b)
{
	if (!b)
		return;
	free(b->cmds);
	free(b->info);
	free(b->issue);
	free(b->idx);
	free(b->seg_of);
	free(b->sync_at);
	free(b->syncs_before);
	free(b);
}

void core_batch_reset(struct core_batch *b, uint64_t seq)
{
	b->seq = seq;
	b->n = 0;
	b->n_entries = 0;
	b->n_issue = 0;
	b->n_segs = 0;
	b->rc = 0;
	b->done = 0;
	b->issued = 0;
	b->reissued = false;
	b->issuer = NULL;
	b->next_done = NULL;
}

/* ---- rings: completion, signalling, halting ----------------------------- */

static void ring_signal(struct core_ring *r)
{
	if (r->complete_fd < 0 || !ring_cons_want_signal(&r->rc))
		return;
	/*
	 * Never write(2) the VMM's eventfd: it blocks on a full counter
	 * unless O_NONBLOCK, which the VMM can clear on the file description
	 * we share at any time. The kernel's eventfd_signal(), reached
	 * through an AIO completion, never blocks (signal.c).
	 */
	if (core_signal_post(&r->vs->w->sig, r->complete_fd) == 0)
		STAT_ADD(r->st_signals, 1);
}

void core_ring_activate(struct core_worker *w, struct core_ring *r)
{
	if (r->active || r->detaching)
		return;
	ring_cons_clear_need_wakeup(&r->rc);
	r->active = true;
	r->last_work_ns = core_now_ns();
	r->next_active = w->active;
	w->active = r;
}

static unsigned int halt_slot(uint32_t err)
{
	return err >= 1 && err <= 3 ? err - 1 : 3;
}

/* Halts now if the ring has a pending error and everything before it has
 * completed. */
static void ring_try_halt(struct core_ring *r)
{
	if (!r->err_pending || r->rc.cons != r->err_idx)
		return;
	/* Counted before the halt is visible, as in seg_complete(). */
	STAT_ADD(r->vs->st_halts[halt_slot(r->err_code)], 1);
	STAT_ADD(r->vs->w->st_halts[halt_slot(r->err_code)], 1);
	ring_cons_halt(&r->rc, r->err_idx, r->err_code);
	r->err_pending = false;
	r->epoch++;
	ring_signal(r);
}

/*
 * Error found at ring index @idx: entries before it complete first (they
 * may sit in batches), then the ring halts there. Entries fetched after it
 * are given back.
 */
static void ring_set_error(struct core_ring *r, uint32_t idx, uint32_t err)
{
	/* A later error found while filling a batch is superseded by an
	 * earlier one found when a batch fails: no need to compare. */
	if (r->rc.halted)
		return;
	r->err_pending = true;
	r->err_idx = idx;
	r->err_code = err;
	ring_cons_rewind(&r->rc, idx);
	ring_try_halt(r);
}

/*
 * Give back entries fetched but not completed, from @idx on. The ring
 * must be polled again: it may have gone idle (NEED_WAKEUP) since they
 * were taken, and its VMM, having published them, rings no doorbell.
 */
static void ring_rewind(struct core_worker *w, struct core_ring *r,
			uint32_t idx)
{
	if (r->rc.halted)
		return;
	ring_cons_rewind(&r->rc, idx);
	/* A pending error past @idx is found again when refetched. */
	r->err_pending = false;
	core_ring_activate(w, r);
}

/* ---- vSMMU batch lifecycle ---------------------------------------------- */

/* Last use of the batch's rings: a detached ring may be freed after. */
static void batch_release_segs(struct core_worker *w, struct core_batch *b)
{
	for (uint32_t s = 0; s < b->n_segs; s++) {
		struct core_ring *r = b->segs[s].ring;

		if (!r) {
			core_vq_seg_release(w, &b->segs[s], b == b->vs->open);
			continue;
		}
		r->batches--;
		if (b == r->vs->open)
			r->open_seg = -1;
		core_ring_check_detach(w, r);
	}
}

/* Gives back @sg's entries from @idx on (a ring's or a vCMDQ queue's). */
static void seg_rewind(struct core_worker *w, struct core_seg *sg, uint32_t idx)
{
	if (sg->vq)
		core_vq_seg_rewind(w, sg, idx);
	else
		ring_rewind(w, sg->ring, idx);
}

/* Drops the open batch: its entries go back to their rings. */
static void vsmmu_drop_open(struct core_worker *w, struct core_vsmmu *vs)
{
	struct core_batch *b = vs->open;

	for (uint32_t s = 0; s < b->n_segs; s++)
		seg_rewind(w, &b->segs[s], b->segs[s].start);
	batch_release_segs(w, b);
	core_batch_reset(b, b->seq);
}

/* Complete @sg's ring up to @upto, which passes @syncs guest CMD_SYNCs. */
static void seg_complete(struct core_seg *sg, uint32_t upto, uint32_t syncs)
{
	struct core_ring *r = sg->ring;

	if (!r) {
		core_vq_seg_complete(sg, upto, syncs);
		return;
	}
	/*
	 * A halt since the run was taken (epoch), or a rewind below it,
	 * makes it stale: the entries will be taken again.
	 */
	if (sg->epoch != r->epoch || r->rc.halted)
		return;
	if ((int32_t)(upto - r->rc.cons) > 0 &&
	    (int32_t)(r->rc.fetch - upto) >= 0) {
		/* Counted before the completion is visible (release in
		 * ring_cons_complete()): a VMM that saw its SYNC complete
		 * finds it in the stats. */
		STAT_ADD(r->st_syncs, syncs);
		STAT_ADD(r->vs->st_syncs, syncs);
		ring_cons_complete(&r->rc, upto);
	}
}

/*
 * Where the culprit's ring halts. A timed-out ATC invalidation halts at
 * the guest CMD_SYNC that follows it, as SMMU_CMDQ_CONS does (facts 5),
 * with the commands before that CMD_SYNC consumed: they were issued, the
 * host sync covering them timed out. That needs the CMD_SYNC in the batch
 * and every command of the ring before it issued; otherwise the ring
 * halts at its first command not known complete, which is taken again
 * after the resume. Returns the ring index; *@ret_syncs: the guest
 * CMD_SYNCs of the run before it.
 */
static uint32_t batch_halt_index(const struct core_batch *b, uint32_t cul,
				 uint32_t err, uint32_t *ret_syncs)
{
	uint8_t cs = b->seg_of[cul];
	uint32_t sync = b->sync_at[cul], f, i;

	/* The ring's first command not known complete (at most cul). */
	for (f = b->done; b->seg_of[f] != cs; f++)
		;
	*ret_syncs = b->syncs_before[f];
	if (err != SMMU_RING_ERR_CERROR_ATC_INV_SYNC || sync == b->idx[cul])
		return b->idx[f];
	for (i = f; i < b->n; i++) {
		if (b->seg_of[i] != cs)
			continue;
		if ((int32_t)(b->idx[i] - sync) > 0)
			break;
		if (i >= b->issued)
			return b->idx[f];
	}
	/* No CMD_SYNC between f and cul (one would end the run's class). */
	*ret_syncs = b->syncs_before[cul];
	return sync;
}

/*
 * The batch failed: originals before b->done completed, [done, issued)
 * were issued but are not known complete. One culprit's ring halts; every
 * other ring completes up to its first command not known complete and
 * gets the rest back, as does everything in the open batch, which was
 * built on the assumption that this batch succeeds.
 */
static void batch_fail(struct core_worker *w, struct core_batch *b)
{
	struct core_vsmmu *vs = b->vs;
	uint32_t k = b->done, cul = k, halt, syncs, i;
	bool atc = false;
	uint32_t err;
	uint8_t cs;

	STAT_ADD(vs->st_backend_errors, 1);
	STAT_ADD(w->st_backend_errors, 1);
	/*
	 * A host sync times out on an ATC invalidation that does not
	 * complete: the culprit is the first ATC_INV among the commands it
	 * covered (any from k on when that is not known).
	 */
	if (b->rc == -ETIMEDOUT) {
		uint32_t end = b->issued > k ? b->issued : b->n;

		for (i = k; i < end && !atc; i++)
			if (b->info[i].op == CMDQ_OP_ATC_INV) {
				cul = i;
				atc = true;
			}
	}
	err = core_ring_err(b->rc, atc);
	cs = b->seg_of[cul];
	halt = batch_halt_index(b, cul, err, &syncs);
	vsmmu_drop_open(w, vs);
	for (uint32_t s = 0; s < b->n_segs; s++) {
		struct core_seg *sg = &b->segs[s];
		uint32_t upto = sg->end, n_sync = sg->syncs;

		if (s == cs && sg->vq && core_vq_seg_current(sg)) {
			seg_complete(sg, halt, syncs);
			core_vq_seg_halt(sg, halt, err);
			continue;
		}
		if (s == cs && sg->ring && sg->epoch == sg->ring->epoch) {
			seg_complete(sg, halt, syncs);
			ring_set_error(sg->ring, halt, err);
			continue;
		}
		for (i = k; i < b->n; i++) {
			if (b->seg_of[i] == s) {
				upto = b->idx[i];
				n_sync = b->syncs_before[i];
				break;
			}
		}
		seg_complete(sg, upto, n_sync);
		seg_rewind(w, sg, upto);
	}
}

static void batch_complete(struct core_worker *w, struct core_batch *b)
{
	struct core_vsmmu *vs = b->vs;

	if (b->n) {
		STAT_ADD(vs->st_ioctls, 1 + b->reissued);
		STAT_ADD(w->st_ioctls, 1 + b->reissued);
		STAT_ADD(vs->st_host_syncs,
			 (b->n_issue + IOFD_HOST_CHUNK - 1) / IOFD_HOST_CHUNK);
		STAT_ADD(w->st_host_syncs,
			 (b->n_issue + IOFD_HOST_CHUNK - 1) / IOFD_HOST_CHUNK);
	}

	if (b->n)
		core_hist_add_shared(w->h_batch, b->n_issue, 1);
	if (b->rc == 0) {
		uint64_t lat = core_now_ns() - b->t_open;

		for (uint32_t s = 0; s < b->n_segs; s++) {
			/* Sampled before the completion, as in seg_complete(). */
			core_hist_add_shared(w->h_sync, lat, b->segs[s].syncs);
			seg_complete(&b->segs[s], b->segs[s].end,
				     b->segs[s].syncs);
		}
	} else {
		batch_fail(w, b);
	}
	for (uint32_t s = 0; s < b->n_segs; s++) {
		struct core_ring *r = b->segs[s].ring;

		if (!r) {
			core_vq_seg_done(w, &b->segs[s]);
			continue;
		}
		ring_try_halt(r);
		ring_signal(r);
	}
	batch_release_segs(w, b);
	vs->done_seq = b->seq;
	vs->inflight = NULL;
	vs->spare = b;
	core_vsmmu_check_fences(vs);
	/* vsmmu_check_destroy() runs from the loop, never from here: the
	 * vSMMU must outlive every caller on this stack. */
}

/*
 * vSMMUs whose open batch waits for an issuer slot, oldest first: a
 * completion that frees a slot serves them in order, so no vSMMU waits on
 * its own (possibly idle) rings to be retried.
 */
static void wait_enqueue(struct core_worker *w, struct core_vsmmu *vs)
{
	if (vs->waiting)
		return;
	vs->waiting = true;
	vs->next_wait = NULL;
	*w->wait_tail = vs;
	w->wait_tail = &vs->next_wait;
}

static struct core_vsmmu *wait_pop(struct core_worker *w)
{
	struct core_vsmmu *vs = w->wait_head;

	if (!vs)
		return NULL;
	w->wait_head = vs->next_wait;
	if (!w->wait_head)
		w->wait_tail = &w->wait_head;
	vs->waiting = false;
	return vs;
}

static void vsmmu_issue(struct core_worker *w, struct core_vsmmu *vs);
static void async_issue(struct core_worker *w, struct core_batch *b);

bool core_auto_async(bool async, uint64_t *ewma_ns, uint64_t call_ns)
{
	/* Weight 1/8: one slow call (a preempted issuer) moves it little. */
	*ewma_ns = *ewma_ns - *ewma_ns / 8 + call_ns / 8;
	if (!async && *ewma_ns > CORE_AUTO_ASYNC_NS)
		return true;
	if (async && *ewma_ns < CORE_AUTO_INLINE_NS)
		return false;
	return async;
}

/*
 * CORE_ISSUE_AUTO: the worker issues inline while its host SMMU's calls
 * are short and async when they are long (core.h). A switch affects only
 * batches issued after it; those in flight complete as they were issued.
 */
static void worker_auto(struct core_worker *w, const struct core_batch *b)
{
	if (wcfg(w)->issue_mode != CORE_ISSUE_AUTO || !w->n_issuers)
		return;
	WRITE_ONCE(w->async_now,
		   core_auto_async(w->async_now, &w->call_ewma_ns, b->call_ns));
}

/*
 * Issues the open batch if nothing of this vSMMU is in flight and, in
 * async mode, an issuer is free and no other vSMMU waits for one before
 * it. Returns whether it issued: that is progress even when no entry was
 * taken.
 */
bool core_vsmmu_try_issue(struct core_worker *w, struct core_vsmmu *vs)
{
	struct core_batch *b = vs->open;

	if (vs->inflight || !b->n_entries)
		return false;
	if (w->async_now && b->n &&
	    (w->inflight >= w->n_issuers || (w->wait_head && !vs->waiting))) {
		wait_enqueue(w, vs);
		return false;
	}
	if (vs->waiting) {
		/* Its turn may come before the queue reaches it: fine, the
		 * slot is free; leave the queue. */
		struct core_vsmmu **pp = &w->wait_head;

		while (*pp != vs)
			pp = &(*pp)->next_wait;
		*pp = vs->next_wait;
		if (w->wait_tail == &vs->next_wait)
			w->wait_tail = pp;
		vs->waiting = false;
	}
	vsmmu_issue(w, vs);
	return true;
}

/* Serves waiting vSMMUs while issuer slots are free. */
static void issue_waiting(struct core_worker *w)
{
	while (w->wait_head && w->inflight < w->n_issuers) {
		struct core_vsmmu *vs = wait_pop(w);

		if (!vs->inflight && vs->open->n_entries)
			vsmmu_issue(w, vs);
	}
}

static void vsmmu_issue(struct core_worker *w, struct core_vsmmu *vs)
{
	struct core_batch *b = vs->open;

	/* Swap in a fresh open batch; this one goes out. */
	vs->open = vs->spare;
	vs->spare = NULL;
	core_batch_reset(vs->open, ++vs->next_seq);
	for (uint32_t s = 0; s < b->n_segs; s++) {
		if (b->segs[s].vq)
			b->segs[s].vq->open_seg = -1;
		else
			b->segs[s].ring->open_seg = -1;
	}

	if (!b->n) {
		/* Only CMD_SYNCs and NOPs: complete in order, no ioctl. */
		vs->inflight = b;
		batch_complete(w, b);
		return;
	}
	memcpy(b->issue, b->cmds, b->n * sizeof(*b->cmds));
	b->n_issue = (uint32_t)cmdq_coalesce_info(b->issue, b->info, b->n);
	STAT_ADD(vs->st_issued, b->n_issue);
	STAT_ADD(w->st_cmds, b->n_issue);
	vs->inflight = b;
	if (!w->async_now) {
		uint64_t t0 = core_now_ns();

		core_batch_execute(b);
		b->call_ns = core_now_ns() - t0;
		worker_auto(w, b);
		batch_complete(w, b);
	} else {
		async_issue(w, b);
	}
}

/* An idle issuer: there is one whenever w->inflight < w->n_issuers. */
static struct core_issuer *issuer_idle(struct core_worker *w)
{
	for (unsigned int i = 0; i < w->n_issuers; i++)
		if (!w->issuers[i].busy)
			return &w->issuers[i];
	return NULL;
}

/* The async batch @b is back (its owner is the worker again). */
static void async_complete(struct core_worker *w, struct core_batch *b)
{
	struct core_vsmmu *vs = b->vs;

	b->issuer->busy = false;
	b->issuer->batch = NULL;
	WRITE_ONCE(w->inflight, w->inflight - 1);
	worker_auto(w, b);
	batch_complete(w, b);
	/* A freed slot goes to the oldest waiter first. */
	issue_waiting(w);
	core_vsmmu_try_issue(w, vs);
}

/* The hand-off to an issuer failed: nothing reached it, run it here. */
static void async_run_here(struct core_worker *w, struct core_batch *b)
{
	uint64_t t0 = core_now_ns();

	WRITE_ONCE(b->owner, CORE_BATCH_WORKER);
	core_batch_execute(b);
	b->call_ns = core_now_ns() - t0;
	async_complete(w, b);
}

/*
 * Hands @b to an idle issuer. From here until its completion CQE the
 * worker goes on draining every ring: this vSMMU's next batch fills in
 * vs->open meanwhile and goes out as one call when @b is back (group
 * commit).
 */
static void async_issue(struct core_worker *w, struct core_batch *b)
{
	struct core_issuer *is = issuer_idle(w);

	WRITE_ONCE(w->inflight, w->inflight + 1);
	is->busy = true;
	if (core_issuer_handoff(w, is, b) < 0) {
		is->batch = b;
		async_run_here(w, b);
	}
}

/*
 * An issuer's message in the worker's ring: CORE_TOKEN_DONE (its batch is
 * complete, res = the ioctl's result) or CORE_TOKEN_LOST (our hand-off's
 * own failure CQE: the issuer never saw the batch). Returns 1 if a batch
 * came back.
 */
static int issuer_event(struct core_worker *w, const struct core_event *ev)
{
	uint64_t i = ev->token & UINT32_MAX;
	struct core_issuer *is;
	struct core_batch *b;

	if (i >= w->n_issuers || !w->issuers[i].busy)
		return 0;
	is = &w->issuers[i];
	b = is->batch;
	if (TOKEN_TAG(ev->token) == CORE_TOKEN_LOST) {
		async_run_here(w, b);
		return 1;
	}
	/* A_DONE: pairs with R_DONE in issuer_post(). The kernel posted the
	 * CQE after that store, so it is seen here. */
	if (smp_load_acquire(&b->owner) != CORE_BATCH_WORKER)
		abort();
	b->rc = ev->res; /* the CQE carries the ioctl's result */
	async_complete(w, b);
	return 1;
}

static void handle_event(struct core_worker *w, const struct core_event *ev);

/*
 * Completions in a busy pass, without sleeping. io_uring: every CQE
 * already posted (issuer completions, doorbells, the mailbox), a syscall
 * only when the kernel flagged held-back ones. epoll: the issuers'
 * lock-free stack (doorbells wait for worker_check_events()).
 */
static int process_completions(struct core_worker *w)
{
	struct core_batch *b;
	int n = 0;

	if (w->loop.uring) {
		struct core_event ev[64];
		unsigned int got = 0;

		if (core_loop_peek(&w->loop, ev, 64, &got) < 0)
			return 0;
		for (unsigned int i = 0; i < got; i++) {
			if (ev[i].token & CORE_TOKEN_MSG &&
			    ev[i].token != CORE_TOKEN_WAKE)
				n += issuer_event(w, &ev[i]);
			else
				handle_event(w, &ev[i]);
		}
		return n;
	}
	b = core_done_pop_all(w);
	while (b) {
		struct core_batch *next = b->next_done;

		/* A_DONE: pairs with R_DONE in issuer_post() (A_STACK in
		 * the pop already ordered it; this states the pair). */
		if (smp_load_acquire(&b->owner) != CORE_BATCH_WORKER)
			abort();
		async_complete(w, b);
		b = next;
		n++;
	}
	return n;
}

/* ---- consuming a ring ----------------------------------------------------- */

bool core_vsmmu_has_vsid(const struct core_vsmmu *vs, uint64_t vsid)
{
	for (uint32_t i = 0; i < vs->n_devs; i++)
		if (vs->devs[i].vsid == vsid)
			return true;
	return false;
}

bool core_vsmmu_take_tokens(struct core_worker *w, struct core_vsmmu *vs,
			    uint64_t now, uint32_t *budget)
{
	const struct core_config *cfg = wcfg(w);
	double burst = cfg->rate_burst;

	if (!cfg->rate_cmds)
		return true;
	vs->tokens +=
		(double)(now - vs->tokens_ns) * 1e-9 * (double)cfg->rate_cmds;
	vs->tokens_ns = now;
	if (vs->tokens > burst)
		vs->tokens = burst;
	if (vs->tokens < 1.0) {
		STAT_ADD(vs->st_throttled, 1);
		w->throttled = true;
		return false;
	}
	if (*budget > vs->tokens)
		*budget = (uint32_t)vs->tokens;
	return true;
}

/* Opens @r's run in the open batch @b; its entries start at @start. */
static struct core_seg *seg_open(struct core_batch *b, struct core_ring *r,
				 uint32_t start)
{
	struct core_seg *sg;

	r->open_seg = (int)b->n_segs++;
	sg = &b->segs[r->open_seg];
	memset(sg, 0, sizeof(*sg));
	sg->ring = r;
	sg->start = sg->end = start;
	sg->epoch = r->epoch;
	sg->unsynced = b->n;
	r->batches++;
	return sg;
}

/* A guest CMD_SYNC at ring index @idx of run @seg (= sg's index). */
void core_seg_sync(struct core_batch *b, struct core_seg *sg, int seg,
		   uint32_t idx)
{
	sg->syncs++;
	if (sg->mask)
		sg->synced = true;
	/* Where a failure of the commands before it halts. */
	for (uint32_t j = sg->unsynced; j < b->n; j++)
		if (b->seg_of[j] == seg)
			b->sync_at[j] = idx;
	sg->unsynced = b->n;
}

/*
 * Admits the FORWARD command that cmdq_decode() wrote into b->cmds[b->n]
 * and b->info[b->n], taken from ring index @idx of run @seg.
 */
void core_batch_admit(struct core_vsmmu *vs, struct core_batch *b,
		      struct core_seg *sg, int seg, uint32_t idx)
{
	unsigned int oc = b->info[b->n].order;

	sg->mask |= oc;
	sg->has_atc |= oc == CMDQ_ORDER_ATC;
	b->idx[b->n] = idx;
	b->sync_at[b->n] = idx; /* none yet */
	b->syncs_before[b->n] = sg->syncs;
	b->seg_of[b->n] = (uint8_t)seg;
	b->n++;
	STAT_ADD(vs->st_fwd, 1);
	STAT_ADD(vs->st_class[oc == CMDQ_ORDER_TLB ? 0 :
			      oc == CMDQ_ORDER_CFG ? 1 :
						     2],
		 1);
}

/*
 * Takes up to the per-ring budget of entries from @r into its vSMMU's open
 * batch. Returns the number of entries taken.
 */
static uint32_t ring_pump(struct core_worker *w, struct core_ring *r,
			  uint64_t now)
{
	const struct core_config *cfg = wcfg(w);
	struct core_vsmmu *vs = r->vs;
	struct core_batch *b = vs->open;
	uint32_t avail, budget = cfg->ring_budget, got, first, taken = 0, i;
	bool new_seg = false;
	struct core_seg *sg;
	int rc;

	if (r->err_pending || r->detaching || vs->destroy_msg)
		return 0;
	if (r->rc.halted) {
		if (!ring_cons_resume_requested(&r->rc))
			return 0;
		ring_cons_resume(&r->rc);
		r->epoch++;
	}
	rc = ring_cons_poll(&r->rc, &avail);
	if (rc == -EPROTO) {
		r->epoch++;
		STAT_ADD(vs->st_halts[3], 1);
		STAT_ADD(w->st_halts[3], 1);
		ring_signal(r);
		return 0;
	}
	if (rc < 0 || !avail)
		return 0;
	/* Entries wait for room in the open batch: a completion, not
	 * polling, will make progress. */
	r->blocked = true;
	if (b->n_segs == CORE_MAX_VSMMU_RINGS && r->open_seg < 0)
		return 0;
	if (budget > avail)
		budget = avail;
	if (budget > b->cap - b->n)
		budget = b->cap - b->n;
	if (!budget || !core_vsmmu_take_tokens(w, vs, now, &budget))
		return 0;
	r->blocked = false;

	got = ring_cons_claim(&r->rc, budget);
	first = r->rc.fetch - got;
	if (!b->n_entries)
		b->t_open = now;
	if (r->open_seg < 0) {
		seg_open(b, r, first);
		new_seg = true;
	}
	sg = &b->segs[r->open_seg];

	for (i = 0; i < got; i++) {
		uint32_t idx = sg->end;
		const struct cmdq_info *inf = &b->info[b->n];

		/* The one copy out of shared memory (ring_cons_load). */
		struct smmu_ring_entry e = ring_cons_load(&r->rc, first + i);

		/*
		 * Decoded once, straight into the batch's next slot (budget
		 * <= cap - n keeps it in bounds): forwarding it is then
		 * batch_admit(); any other class leaves the slot free.
		 */
		if (cmdq_decode(&vs->caps, &e, &b->cmds[b->n],
				&b->info[b->n]) != CMDQ_CERROR_NONE) {
			ring_set_error(r, idx, SMMU_RING_ERR_CERROR_ILL);
			break;
		}
		if (inf->cls == CMDQ_CLASS_SYNC) {
			core_seg_sync(b, sg, r->open_seg, idx);
		} else if (inf->cls == CMDQ_CLASS_FORWARD) {
			if ((inf->flags & CMDQ_INFO_SID) &&
			    !core_vsmmu_has_vsid(vs, inf->sid)) {
				ring_set_error(r, idx,
					       SMMU_RING_ERR_CERROR_ILL);
				break;
			}
			/* A guest SYNC between classes is an ordering point:
			 * this command goes in the next batch. */
			if (sg->synced &&
			    (sg->mask & ~(unsigned int)inf->order)) {
				ring_cons_rewind(&r->rc, idx);
				r->blocked = true;
				break;
			}
			core_batch_admit(vs, b, sg, r->open_seg, idx);
		} else if (inf->cls != CMDQ_CLASS_NOP) {
			ring_set_error(r, idx, SMMU_RING_ERR_CERROR_ILL);
			break;
		}
		sg->end = idx + 1;
		b->n_entries++;
		taken++;
	}
	if (i < got && !r->err_pending)
		ring_cons_rewind(&r->rc, sg->end);
	if (new_seg && !taken) {
		/* Nothing went in: an empty run would hold the ring. */
		b->n_segs--;
		r->open_seg = -1;
		r->batches--;
	}
	if (cfg->rate_cmds)
		vs->tokens -= taken;
	STAT_ADD(r->st_entries, taken);
	STAT_ADD(vs->st_entries, taken);
	return taken;
}

/*
 * One round-robin pass over the active rings, each taking at most its
 * budget, so a flooding ring cannot starve the others. Returns entries
 * taken; counts in w->polling the rings still inside their poll window.
 */
static uint32_t pump_active(struct core_worker *w)
{
	uint64_t now = core_now_ns();
	uint64_t poll_ns = (uint64_t)wcfg(w)->poll_us * 1000;
	struct core_ring **pp = &w->active, *r;
	uint32_t total = 0;

	w->polling = 0;
	w->throttled = false;
	while ((r = *pp)) {
		uint32_t n;

		r->blocked = false;
		n = ring_pump(w, r, now);
		total += core_vsmmu_try_issue(w, r->vs);
		if (n) {
			r->last_work_ns = now;
			total += n;
		} else if (!r->blocked && now - r->last_work_ns >= poll_ns) {
			/*
			 * Idle past the poll window: from now on the VMM
			 * rings the doorbell. The re-check inside closes the
			 * race with a producer that did not see the flag.
			 */
			if (!ring_cons_set_need_wakeup(&r->rc)) {
				/* A completion above may have put a rewound ring
				 * at the head of the list: unlink r where it is. */
				while (*pp != r)
					pp = &(*pp)->next_active;
				r->active = false;
				*pp = r->next_active;
				continue;
			}
			/* Entries arrived meanwhile and the flag is clear
			 * again: no doorbell will come, take them next. */
			w->polling++;
		} else if (!r->blocked) {
			w->polling++;
		}
		pp = &r->next_active;
	}
	return total;
}

/* ---- the loop --------------------------------------------------------------- */

static void handle_event(struct core_worker *w, const struct core_event *ev)
{
	uint64_t tag = TOKEN_TAG(ev->token);

	if (ev->token == CORE_TOKEN_WAKE)
		return;
	if (ev->token & CORE_TOKEN_MSG) {
		issuer_event(w, ev);
		return;
	}
	if (tag == TOKEN_CTL) {
		uint64_t v;
		/* Our own non-blocking eventfd. */
		ssize_t rr = read(w->ctl_efd, &v, sizeof(v));

		(void)rr;
		if (ev->res == -ECANCELED && w->loop.uring)
			core_loop_watch(&w->loop, w->ctl_efd, TOKEN_CTL);
		return;
	}
	if (tag == TOKEN_VCMDQ) {
		core_vcmdq_uffd_event(w, (uint32_t)ev->token, ev->res);
		return;
	}
	if (tag == TOKEN_RING) {
		uint32_t slot = (uint32_t)(ev->token >> 32) & 0xffffff;
		uint32_t id = (uint32_t)ev->token;
		struct core_ring *r;

		/* The ring may be gone: the token, not a pointer, says. */
		if (slot >= w->n_slots || !(r = w->slots[slot]) || r->id != id)
			return;
		if (ev->res == -ECANCELED)
			core_loop_watch(&w->loop, r->doorbell_fd, ev->token);
		STAT_ADD(r->st_wakeups, 1);
		core_ring_activate(w, r);
	}
}

static void worker_sleep(struct core_worker *w)
{
	struct core_event ev[64];
	unsigned int n = 0;
	_Atomic unsigned int *sleeping = (_Atomic unsigned int *)&w->sleeping;
	/* A rate-limited vSMMU needs a timer to refill its tokens, idle
	 * vCMDQ queues theirs. */
	int64_t timeout = w->throttled ? 1000000 : -1;
	int64_t vq = core_vcmdq_sleep_ns(w, core_now_ns());

	if (vq >= 0 && (timeout < 0 || vq < timeout))
		timeout = vq;

	/*
	 * The one wait point: io_uring (doorbells, mailbox, the issuers'
	 * completion CQEs, the timeout) or epoll. On epoll the issuers'
	 * completions sit on a stack: Dekker with them, see issuer_post()
	 * (on io_uring a completion is a CQE and ends the wait by itself).
	 */
	atomic_store_explicit(sleeping, 1, memory_order_seq_cst);
	smp_mb();
	if (READ_ONCE(w->done_stack) || smp_load_acquire(&w->mbox_pending)) {
		atomic_store_explicit(sleeping, 0, memory_order_relaxed);
		return;
	}
	STAT_ADD(w->st_sleeps, 1);
	if (core_loop_wait(&w->loop, timeout, ev, 64, &n) < 0)
		n = 0;
	atomic_store_explicit(sleeping, 0, memory_order_relaxed);
	w->last_events_ns = core_now_ns();
	for (unsigned int i = 0; i < n; i++)
		handle_event(w, &ev[i]);
}

/*
 * While busy the worker does not sleep, but doorbells of rings that are
 * not being polled arrive as events: look for them without blocking, at a
 * bounded rate so the busy path is not a syscall per pass.
 */
#define CORE_EVENT_CHECK_NS 20000

static void worker_check_events(struct core_worker *w)
{
	struct core_event ev[64];
	unsigned int n = 0;
	uint64_t now = core_now_ns();

	if (now - w->last_events_ns < CORE_EVENT_CHECK_NS)
		return;
	w->last_events_ns = now;
	if (core_loop_wait(&w->loop, 0, ev, 64, &n) < 0)
		return;
	for (unsigned int i = 0; i < n; i++)
		handle_event(w, &ev[i]);
}

static void *worker_main(void *arg)
{
	struct core_worker *w = arg;

	while (!(w->stopping && !w->inflight && !w->n_vsmmus)) {
		int did = 0;

		did += core_process_mailbox(w);
		did += process_completions(w);
		did += (int)pump_active(w);
		if (w->vcmdqs) {
			uint64_t now = core_now_ns();

			did += (int)core_vcmdq_pump(w, now, &w->polling);
			did += core_vcmdq_idle_check(w, now);
		}
		core_sweep_destroys(w);
		if (did) {
			STAT_ADD(w->st_passes, 1);
			worker_check_events(w);
			continue;
		}
		if (w->polling) {
			/* Inside some ring's poll window: spin, politely. */
			worker_check_events(w);
			sched_yield();
			continue;
		}
		worker_sleep(w);
	}
	if (w->stop_msg)
		core_msg_reply(w, w->stop_msg, 0);
	return NULL;
}

static int parse_first_cpu(const char *list, unsigned int nth, int *ret_cpu)
{
	int cpus[CPU_SETSIZE], n = 0;
	const char *p = list;

	while (*p && n < CPU_SETSIZE) {
		char *end;
		long a = strtol(p, &end, 10), b;

		if (end == p || a < 0 || a >= CPU_SETSIZE)
			return -EINVAL;
		b = a;
		p = end;
		if (*p == '-') {
			b = strtol(p + 1, &end, 10);
			if (end == p + 1 || b < a || b >= CPU_SETSIZE)
				return -EINVAL;
			p = end;
		}
		for (long c = a; c <= b && n < CPU_SETSIZE; c++)
			cpus[n++] = (int)c;
		if (*p == ',')
			p++;
		else if (*p)
			return -EINVAL;
	}
	if (!n)
		return -EINVAL;
	*ret_cpu = cpus[nth % (unsigned int)n];
	return 0;
}

struct worker_boot {
	struct core_worker *w;
	sem_t ready;
	int result;
};

static void *worker_boot_main(void *arg)
{
	struct worker_boot *boot = arg;
	struct core_worker *w = boot->w;
	const struct core_config *cfg = wcfg(w);
	int r;

	if (w->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(w->cpu, &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	/* SINGLE_ISSUER binds the ring to its creator: create it here. */
	r = core_loop_init(&w->loop, cfg->loop);
	if (r < 0)
		goto out;
	r = core_loop_watch(&w->loop, w->ctl_efd, TOKEN_CTL);
	if (r < 0)
		goto out_loop;
	w->fetch_buf = calloc(cfg->ring_budget, sizeof(*w->fetch_buf));
	if (!w->fetch_buf) {
		r = -ENOMEM;
		goto out_loop;
	}
	w->async_now = cfg->issue_mode == CORE_ISSUE_ASYNC;
	if (cfg->issue_mode != CORE_ISSUE_INLINE) {
		r = core_issuers_start(w, cfg->max_inflight);
		if (r < 0)
			goto out_buf;
	}
	boot->result = 0;
	sem_post(&boot->ready);
	worker_main(w);
	core_issuers_stop(w);
	free(w->fetch_buf);
	core_loop_fini(&w->loop);
	return NULL;

out_buf:
	free(w->fetch_buf);
	w->fetch_buf = NULL;
out_loop:
	core_loop_fini(&w->loop);
out:
	boot->result = r;
	sem_post(&boot->ready);
	return NULL;
}

int core_worker_start(struct core_worker *w)
{
	struct worker_boot boot = { .w = w };
	char name[16];
	int r;

	w->cpu = -1;
	if (wcfg(w)->cpus) {
		r = parse_first_cpu(wcfg(w)->cpus,
				    (unsigned int)(w - w->svc->workers),
				    &w->cpu);
		if (r < 0)
			return r;
	}
	w->mbox_tail = &w->mbox_head;
	w->wait_tail = &w->wait_head;
	pthread_mutex_init(&w->mbox_lock, NULL);
	w->ctl_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->ctl_efd < 0)
		return -errno;
	/* Without AIO, completion eventfds are refused (core_ring_attach). */
	if (core_signal_init(&w->sig) < 0)
		w->svc->signal_ok = false;
	sem_init(&boot.ready, 0, 0);
	r = -pthread_create(&w->thread, NULL, worker_boot_main, &boot);
	if (r < 0) {
		sem_destroy(&boot.ready);
		core_signal_fini(&w->sig);
		close(w->ctl_efd);
		w->ctl_efd = -1;
		return r;
	}
	snprintf(name, sizeof(name), "smmu-%.10s", w->name);
	pthread_setname_np(w->thread, name);
	while (sem_wait(&boot.ready) < 0 && errno == EINTR)
		;
	sem_destroy(&boot.ready);
	if (boot.result < 0) {
		pthread_join(w->thread, NULL);
		core_signal_fini(&w->sig);
		close(w->ctl_efd);
		w->ctl_efd = -1;
		return boot.result;
	}
	w->started = true;
	return 0;
}

void core_worker_post_stop(struct core_worker *w)
{
	if (!w->started || w->stop_posted)
		return;
	w->stop_posted = core_msg_new(CORE_MSG_STOP);
	/* Out of memory: nothing to wait for; join() gives up at once. */
	if (w->stop_posted)
		core_worker_post(w, w->stop_posted);
}

/*
 * The call above returned at once or after a deadline; the answer may
 * come later: wait for it here, against the caller's overall deadline.
 */
static int stop_wait(struct core_worker *w, uint64_t deadline_ns)
{
	struct core_msg *m = w->stop_posted;
	struct timespec ts = {
		.tv_sec = (time_t)(deadline_ns / 1000000000),
		.tv_nsec = (long)(deadline_ns % 1000000000),
	};
	int r;

	if (!m)
		return -ETIMEDOUT;
	if (__atomic_load_n(&m->state, __ATOMIC_ACQUIRE) == CORE_MSG_ANSWERED)
		return 0;
	do
		r = sem_clockwait(&m->sem, CLOCK_MONOTONIC, &ts);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -ETIMEDOUT : 0;
}

int core_worker_join(struct core_worker *w, uint64_t deadline_ns)
{
	if (w->started) {
		/*
		 * A worker that does not stop in time is left running on its
		 * own: its memory, and the service's, stay allocated so it
		 * never touches freed memory (the caller leaks them).
		 */
		if (stop_wait(w, deadline_ns) < 0) {
			pthread_detach(w->thread);
			return -ETIMEDOUT;
		}
		pthread_join(w->thread, NULL);
		w->started = false;
		core_msg_put(w->stop_posted);
		w->stop_posted = NULL;
	}
	core_signal_fini(&w->sig);
	if (w->ctl_efd >= 0)
		close(w->ctl_efd);
	w->ctl_efd = -1;
	free(w->slots);
	free(w->vsmmus);
	w->slots = NULL;
	w->vsmmus = NULL;
	pthread_mutex_destroy(&w->mbox_lock);
	return 0;
}
