/* SPDX-License-Identifier: MIT */
/*
 * Issuer threads: the io_uring-wrapped ioctl. iommufd has no uring_cmd and
 * IOMMU_HWPT_INVALIDATE blocks while the host SMMU drains its CMD_SYNC, so
 * in async mode the worker hands each batch to a free issuer, which runs
 * the ioctl and posts its outcome into the worker's io_uring as a CQE.
 *
 * io_uring (the normal case), no lock on either path:
 *  - worker -> issuer: IORING_OP_MSG_RING from the worker's ring into the
 *    issuer's own small inbox ring, user_data = the batch pointer; the
 *    issuer sleeps in io_uring_wait_cqe() on its inbox.
 *  - issuer -> worker: IORING_OP_MSG_RING from the issuer's send ring into
 *    the worker's ring, user_data = CORE_TOKEN_DONE | issuer index (the
 *    issuer holds one batch at a time, so that names the batch), res =
 *    the ioctl's result. The rest of the outcome (done, issued, reissued)
 *    travels in the batch, which the issuer owns until the worker has
 *    seen the CQE.
 * The kernel orders the CQE after the sender's writes; the release/acquire
 * pair on core_batch.owner (R_ISSUE/A_ISSUE, R_DONE/A_DONE) states the
 * same ordering in C11 terms, where TSan and the compiler can see it.
 *
 * epoll fallback (io_uring disabled): the same shape with an eventfd and a
 * lock-free structure per direction: worker -> issuer through a one-batch
 * slot (the issuer is busy until its batch comes back, so one slot is
 * enough) and the issuer's own eventfd, which it blocks reading; issuer ->
 * worker through a lock-free stack and the worker's wake eventfd, written
 * only when the worker is asleep (Dekker on w->sleeping).
 */
#include "core/core_i.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/barrier.h"

/* Inbox entries: one batch and the stop message at most. */
#define ISSUER_INBOX_ENTRIES 4

static void done_push(struct core_worker *w, struct core_batch *b)
{
	_Atomic(struct core_batch *) *top =
		(_Atomic(struct core_batch *) *)&w->done_stack;
	struct core_batch *old =
		atomic_load_explicit(top, memory_order_relaxed);

	/*
	 * R_STACK: the release makes b->next_done (and, with R_DONE before
	 * it, the issuer's result) visible to the worker's A_STACK exchange.
	 */
	do {
		b->next_done = old;
	} while (!atomic_compare_exchange_weak_explicit(
		top, &old, b, memory_order_release, memory_order_relaxed));
}

struct core_batch *core_done_pop_all(struct core_worker *w)
{
	_Atomic(struct core_batch *) *top =
		(_Atomic(struct core_batch *) *)&w->done_stack;
	struct core_batch *list, *rev = NULL;

	if (!atomic_load_explicit(top, memory_order_relaxed))
		return NULL;
	/* A_STACK: pairs with R_STACK in done_push(). */
	list = atomic_exchange_explicit(top, NULL, memory_order_acquire);
	/* The stack is LIFO; completions are handled oldest first. */
	while (list) {
		struct core_batch *next = list->next_done;

		list->next_done = rev;
		rev = list;
		list = next;
	}
	return rev;
}

int core_issuer_handoff(struct core_worker *w, struct core_issuer *is,
			struct core_batch *b)
{
	uint64_t one = 1;

	is->batch = b;
	b->issuer = is;
	/* R_ISSUE: the batch as built, to the issuer's A_ISSUE. */
	smp_store_release(&b->owner, CORE_BATCH_ISSUER);
	if (w->loop.uring)
		return core_loop_post(&w->loop, is->inbox.ring_fd,
				      (uint64_t)(uintptr_t)b, 0,
				      CORE_TOKEN_LOST | is->index);
	/* R_SLOT: pairs with A_SLOT in issuer_next(). */
	smp_store_release(&is->slot, b);
	if (write(is->inbox_efd, &one, sizeof(one)) == sizeof(one))
		return 0;
	/*
	 * Not woken: take the batch back unless the issuer already has it
	 * (then it runs and comes back as usual). A_SLOT2: pairs with our
	 * own R_SLOT; nothing of the issuer's is read.
	 */
	if (atomic_exchange_explicit((_Atomic(struct core_batch *) *)&is->slot,
				     NULL, memory_order_acquire))
		return -EIO;
	return 0;
}

/* The issuer's wait: its next batch, or NULL to stop. */
static struct core_batch *issuer_next(struct core_issuer *is)
{
	if (is->inbox_uring) {
		struct io_uring_cqe *cqe;
		uint64_t data;

		while (io_uring_wait_cqe(&is->inbox, &cqe) < 0)
			;
		data = io_uring_cqe_get_data64(cqe);
		io_uring_cqe_seen(&is->inbox, cqe);
		return (struct core_batch *)(uintptr_t)data;
	}
	for (;;) {
		_Atomic(struct core_batch *) *slot =
			(_Atomic(struct core_batch *) *)&is->slot;
		struct core_batch *b;
		uint64_t v;

		/* A_SLOT: pairs with R_SLOT in core_issuer_handoff(). */
		b = atomic_exchange_explicit(slot, NULL, memory_order_acquire);
		if (b)
			return b;
		if (smp_load_acquire(&is->stop)) /* A_STOP: R_STOP */
			return NULL;
		/* Our own eventfd, written by our worker only: blocking. */
		if (read(is->inbox_efd, &v, sizeof(v)) < 0 && errno != EINTR)
			sched_yield();
	}
}

/* The outcome back to the worker; retried until it is delivered. */
static void issuer_post(struct core_issuer *is, struct core_batch *b)
{
	struct core_worker *w = is->w;
	int rc = b->rc;

	/* R_DONE: the result fields, to the worker's A_DONE. */
	smp_store_release(&b->owner, CORE_BATCH_WORKER);
	if (is->waker.uring) {
		/*
		 * A MSG_RING fails only if the kernel cannot allocate or
		 * the worker's CQ overflow list is full: both pass. Not
		 * posting would leave the batch in flight forever.
		 */
		while (core_waker_post(&is->waker, CORE_TOKEN_DONE | is->index,
				       rc) < 0)
			sched_yield();
		return;
	}
	done_push(w, b);
	/*
	 * Dekker with the worker: our push (seq_cst fence below) and its
	 * sleeping store + re-check of the stack. Either it sees the batch
	 * before sleeping, or we see it sleeping and kick.
	 */
	smp_mb();
	if (atomic_load_explicit((_Atomic unsigned int *)&w->sleeping,
				 memory_order_relaxed))
		core_waker_kick(&is->waker);
}

static void *issuer_main(void *arg)
{
	struct core_issuer *is = arg;
	struct core_batch *b;

	while ((b = issuer_next(is))) {
		/* A_ISSUE: pairs with R_ISSUE in core_issuer_handoff(). */
		if (smp_load_acquire(&b->owner) != CORE_BATCH_ISSUER)
			abort(); /* the kernel delivered before the release */
		uint64_t t0 = core_now_ns();

		core_batch_execute(b, core_batch_call_iofd, b->vs->viommu);
		b->call_ns = core_now_ns() - t0;
		issuer_post(is, b);
	}
	return NULL;
}

static int issuer_inbox_init(struct core_worker *w, struct core_issuer *is)
{
	int r;

	is->inbox_efd = -1;
	if (w->loop.uring) {
		/* No SINGLE_ISSUER: created here, waited on by the issuer. */
		r = io_uring_queue_init(ISSUER_INBOX_ENTRIES, &is->inbox, 0);
		if (r < 0)
			return r;
		is->inbox_uring = true;
		return 0;
	}
	is->inbox_efd = eventfd(0, EFD_CLOEXEC);
	return is->inbox_efd < 0 ? -errno : 0;
}

static void issuer_inbox_fini(struct core_issuer *is)
{
	if (is->inbox_uring)
		io_uring_queue_exit(&is->inbox);
	is->inbox_uring = false;
	if (is->inbox_efd >= 0)
		close(is->inbox_efd);
	is->inbox_efd = -1;
}

/* Tells @is to exit once its inbox is empty; false if it could not. */
static bool issuer_stop(struct core_worker *w, struct core_issuer *is)
{
	uint64_t one = 1;

	if (is->inbox_uring) {
		/*
		 * A NULL batch, from the worker's ring like every hand-off
		 * (this runs on the worker thread, after the last batch came
		 * back). MSG_RING into an idle inbox with room does not fail;
		 * if it did, its failure CQE is dropped (CORE_TOKEN_WAKE - 1)
		 * and the join below would wait: the worker is exiting then.
		 */
		return core_loop_post(&w->loop, is->inbox.ring_fd, 0, 0,
				      CORE_TOKEN_WAKE - 1) == 0;
	}
	smp_store_release(&is->stop, true); /* R_STOP: pairs with A_STOP */
	return write(is->inbox_efd, &one, sizeof(one)) == sizeof(one);
}

int core_issuers_start(struct core_worker *w, unsigned int n)
{
	unsigned int i;
	int r;

	w->issuers = calloc(n, sizeof(*w->issuers));
	if (!w->issuers)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		struct core_issuer *is = &w->issuers[i];
		char name[16];

		is->w = w;
		is->index = i;
		r = issuer_inbox_init(w, is);
		if (r < 0)
			goto err;
		r = core_waker_init(&is->waker, &w->loop);
		if (r < 0) {
			issuer_inbox_fini(is);
			goto err;
		}
		r = -pthread_create(&is->thread, NULL, issuer_main, is);
		if (r < 0) {
			core_waker_fini(&is->waker);
			issuer_inbox_fini(is);
			goto err;
		}
		snprintf(name, sizeof(name), "smmu-iss%u", i % 1000);
		pthread_setname_np(is->thread, name);
		w->n_issuers++;
	}
	return 0;
err:
	core_issuers_stop(w);
	return r;
}

void core_issuers_stop(struct core_worker *w)
{
	bool leak = false;

	for (unsigned int i = 0; i < w->n_issuers; i++) {
		struct core_issuer *is = &w->issuers[i];

		/*
		 * Not told to stop (the kernel refused the message): leave it
		 * waiting, detached, with its memory, rather than join a
		 * thread that never returns.
		 */
		if (!issuer_stop(w, is)) {
			pthread_detach(is->thread);
			leak = true;
			continue;
		}
		pthread_join(is->thread, NULL);
		core_waker_fini(&is->waker);
		issuer_inbox_fini(is);
	}
	w->n_issuers = 0;
	if (!leak)
		free(w->issuers);
	w->issuers = NULL;
}
