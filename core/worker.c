/* SPDX-License-Identifier: MIT */
/*
 * The per-host-SMMU worker: drains every ring bound to its host SMMU
 * round-robin with a per-ring budget, validates and batches the commands
 * of each vSMMU, issues at most one batch per vSMMU at a time (guest
 * order) and several per host SMMU (async mode), publishes completion,
 * and sleeps in the kernel when nothing is pending.
 *
 * Everything in this file runs on the worker thread, except
 * core_worker_start/post_stop/join() (control threads). Taking ring
 * entries into batches is in worker_pump.c, completion and halting in
 * worker_done.c. The backend call itself is in batch.c,
 * control messages in worker_ctl.c (worker side) and ctl.c (caller side),
 * completion signals in signal.c.
 */
#include "core/worker_i.h"

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
#include "common/cpu.h"

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

/* ---- vSMMU batch lifecycle: waiting for and issuing batches ------------ */

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
 * A backend call of @b is back (b->call_ns set): its time goes into the
 * host SMMU's histogram (and, with diag_hists, the time from the batch's
 * first entry to the call). Then CORE_ISSUE_AUTO: the worker issues
 * inline while its host SMMU's calls are short and async when they are
 * long (core.h). A switch affects only batches issued after it; those in
 * flight complete as they were issued.
 */
static void worker_auto(struct core_worker *w, const struct core_batch *b)
{
	core_hist_add_shared(w->h_call, b->call_ns, 1);
	if (w->diag) {
		uint64_t now = core_now_ns();

		w->diag->ret_ns = now;
		if (now - b->t_open >= b->call_ns)
			core_hist_add_shared(&w->diag->take,
					     now - b->call_ns - b->t_open, 1);
	}
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
		w->now = core_now_ns();
		core_batch_complete(w, b);
		return;
	}
	core_batch_seal(b);
	STAT_ADD(vs->st_issued, b->n_issue);
	STAT_ADD(w->st_cmds, b->n_issue);
	vs->inflight = b;
	if (!w->async_now) {
		uint64_t t0 = core_now_ns();

		core_batch_execute(b, core_batch_call_iofd, b->vs->viommu);
		/* The call's end is the completion's time, too (w->now). */
		w->now = core_now_ns();
		b->call_ns = w->now - t0;
		worker_auto(w, b);
		core_batch_complete(w, b);
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

	w->now = core_now_ns(); /* the completion's time */
	b->issuer->busy = false;
	b->issuer->batch = NULL;
	WRITE_ONCE(w->inflight, w->inflight - 1);
	worker_auto(w, b);
	core_batch_complete(w, b);
	/* A freed slot goes to the oldest waiter first. */
	issue_waiting(w);
	core_vsmmu_try_issue(w, vs);
}

/* The hand-off to an issuer failed: nothing reached it, run it here. */
static void async_run_here(struct core_worker *w, struct core_batch *b)
{
	uint64_t t0 = core_now_ns();

	WRITE_ONCE(b->owner, CORE_BATCH_WORKER);
	core_batch_execute(b, core_batch_call_iofd, b->vs->viommu);
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

void core_worker_diag_done(struct core_worker *w, uint64_t now)
{
	if (!w->diag || !w->diag->ret_ns)
		return;
	core_hist_add_shared(&w->diag->done, now - w->diag->ret_ns, 1);
	w->diag->ret_ns = 0; /* its other segments: the same moment */
}

/* diag_hists: the time since the previous pass, if it did not sleep. */
static void worker_diag_pass(struct core_worker *w, uint64_t now)
{
	if (w->diag->pass_ns)
		core_hist_add_shared(&w->diag->pass, now - w->diag->pass_ns, 1);
	w->diag->pass_ns = now;
}

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
	if (w->diag)
		w->diag->pass_ns = 0;
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
	/* The pass's clock (core_pump_active() runs every iteration). */
	uint64_t now = w->now;

	if (now - w->last_events_ns < CORE_EVENT_CHECK_NS)
		return;
	w->last_events_ns = now;
	if (core_loop_wait(&w->loop, 0, ev, 64, &n) < 0)
		return;
	for (unsigned int i = 0; i < n; i++)
		handle_event(w, &ev[i]);
}

/*
 * An empty pass inside a poll window. sched_yield() lets other threads on
 * this CPU in, but costs a syscall and a trip through the scheduler (~1
 * us on a virtualised host, more than the pass itself): a guest's store
 * that lands meanwhile waits for it. So yield at most every
 * CORE_POLL_YIELD_NS and only spin-hint in between; the scheduler still
 * preempts the worker for anything that needs the CPU more. (A worker
 * sharing its CPU with a vCPU thread that spins in guest mode waits for
 * that thread's slices whatever it does here: PERFORMANCE.md "vcmdq".)
 */
#define CORE_POLL_YIELD_NS 5000

static void worker_poll_pause(struct core_worker *w)
{
	/* The pass's clock (core_pump_active() runs every iteration). */
	uint64_t now = w->now;

	if (now - w->last_yield_ns < CORE_POLL_YIELD_NS) {
		common_cpu_relax();
		return;
	}
	sched_yield();
	w->last_yield_ns = now;
}

static void *worker_main(void *arg)
{
	struct core_worker *w = arg;

	while (!(w->stopping && !w->inflight && !w->n_vsmmus)) {
		int did = 0;

		did += core_process_mailbox(w);
		did += process_completions(w);
		did += (int)core_pump_active(w);
		if (w->vcmdqs) {
			/* The pass's clock, read by core_pump_active(). */
			uint64_t now = w->now;

			if (w->diag)
				worker_diag_pass(w, now);
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
			worker_poll_pause(w);
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
