/* SPDX-License-Identifier: MIT */
/*
 * Issuer threads: iommufd has no uring_cmd and IOMMU_HWPT_INVALIDATE
 * blocks while the host SMMU drains its CMD_SYNC, so in async mode the
 * worker hands each batch to one of its issuers, which runs the ioctl and
 * returns the batch through a lock-free stack, waking the worker with
 * IORING_OP_MSG_RING (or its eventfd on epoll) only if it is asleep.
 */
#include "core/core_i.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/barrier.h"

void core_issuer_queue(struct core_worker *w, struct core_batch *b)
{
	pthread_mutex_lock(&w->iq_lock);
	/* The worker never has more than iq_cap batches in flight. */
	w->iq[(w->iq_head + w->iq_n) % w->iq_cap] = b;
	w->iq_n++;
	pthread_cond_signal(&w->iq_cond);
	pthread_mutex_unlock(&w->iq_lock);
}

static void done_push(struct core_worker *w, struct core_batch *b)
{
	_Atomic(struct core_batch *) *top =
		(_Atomic(struct core_batch *) *)&w->done_stack;
	struct core_batch *old =
		atomic_load_explicit(top, memory_order_relaxed);

	/*
	 * R_DONE: the release makes the issuer's writes to the batch (rc,
	 * done, reissued) visible to the worker's A_DONE exchange.
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
	/* A_DONE: pairs with R_DONE in done_push(). */
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

static void *issuer_main(void *arg)
{
	struct core_issuer *is = arg;
	struct core_worker *w = is->w;

	for (;;) {
		struct core_batch *b;

		pthread_mutex_lock(&w->iq_lock);
		while (!w->iq_n && !w->iq_stop)
			pthread_cond_wait(&w->iq_cond, &w->iq_lock);
		if (!w->iq_n) {
			pthread_mutex_unlock(&w->iq_lock);
			break;
		}
		b = w->iq[w->iq_head];
		w->iq_head = (w->iq_head + 1) % w->iq_cap;
		w->iq_n--;
		pthread_mutex_unlock(&w->iq_lock);

		core_batch_execute(b);
		done_push(w, b);
		/*
		 * Dekker with the worker: our push (seq_cst fence below) and
		 * its sleeping store + re-check of the stack. Either it sees
		 * the batch before sleeping, or we see it sleeping and kick.
		 */
		smp_mb();
		if (atomic_load_explicit((_Atomic unsigned int *)&w->sleeping,
					 memory_order_relaxed))
			core_waker_kick(&is->waker);
	}
	return NULL;
}

int core_issuers_start(struct core_worker *w, unsigned int n)
{
	unsigned int i;
	int r;

	w->iq_cap = n + 1;
	w->iq = calloc(w->iq_cap, sizeof(*w->iq));
	w->issuers = calloc(n, sizeof(*w->issuers));
	if (!w->iq || !w->issuers)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		struct core_issuer *is = &w->issuers[i];
		char name[16];

		is->w = w;
		r = core_waker_init(&is->waker, &w->loop);
		if (r < 0)
			goto err;
		r = -pthread_create(&is->thread, NULL, issuer_main, is);
		if (r < 0) {
			core_waker_fini(&is->waker);
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
	pthread_mutex_lock(&w->iq_lock);
	w->iq_stop = true;
	pthread_cond_broadcast(&w->iq_cond);
	pthread_mutex_unlock(&w->iq_lock);
	for (unsigned int i = 0; i < w->n_issuers; i++) {
		pthread_join(w->issuers[i].thread, NULL);
		core_waker_fini(&w->issuers[i].waker);
	}
	w->n_issuers = 0;
	free(w->issuers);
	w->issuers = NULL;
	free(w->iq);
	w->iq = NULL;
}
