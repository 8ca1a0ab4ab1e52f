/* SPDX-License-Identifier: MIT */
/*
 * core_loop: the worker's event source, on io_uring (multishot poll,
 * MSG_RING messages and wakeups, timed waits) or, where io_uring is unavailable, on
 * epoll (edge-triggered) with eventfd wakeups. Both give the worker the
 * same thing: a list of tokens whose fd became readable or that were sent
 * as a wakeup.
 *
 * Thread context: a core_loop is owned by one thread (its worker), except
 * core_waker_kick(), which other threads call through their own waker.
 */
#ifndef SMMU_OFFLOAD_CORE_LOOP_H
#define SMMU_OFFLOAD_CORE_LOOP_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"

struct core_loop {
	bool uring;
	struct io_uring ring;
	int epfd;
	int wake_efd; /* epoll: the fd wakers write; uring: -1 */
	unsigned int setup_flags; /* io_uring setup flags in use */
};

struct core_event {
	uint64_t token;
	int res; /* uring: CQE res (negative errno); epoll: 0 */
};

/* Token of a wakeup sent by core_waker_kick() (no fd behind it). */
#define CORE_TOKEN_WAKE UINT64_C(0xffffffffffffffff)
/*
 * Tokens with this bit are one-shot messages posted with
 * core_waker_post()/core_loop_post() (or their failure), never polls:
 * the loop does not report them as ended multishots.
 */
#define CORE_TOKEN_MSG (UINT64_C(1) << 63)

/**
 * core_loop_init() - set up the loop.
 * @kind: CORE_LOOP_AUTO tries io_uring (SINGLE_ISSUER|DEFER_TASKRUN with
 *        and without TASKRUN_FLAG, then SINGLE_ISSUER|COOP_TASKRUN|
 *        TASKRUN_FLAG, then no flags) and falls back to
 *        epoll only when io_uring_setup fails with EPERM or ENOSYS (the
 *        operator or a seccomp filter disabled it), not on resource errors.
 * Return: 0, or -errno (-EPERM/-ENOSYS for CORE_LOOP_URING without it).
 */
int core_loop_init(struct core_loop *l, enum core_loop_kind kind);
void core_loop_fini(struct core_loop *l);

/*
 * core_loop_watch() - report @token whenever @fd becomes readable (one
 * event per write to an eventfd: multishot poll / EPOLLET). The fd is
 * never read: a doorbell needs no reset, and reading a peer's eventfd
 * could block if the peer drained it first.
 */
int core_loop_watch(struct core_loop *l, int fd, uint64_t token);
/* core_loop_unwatch() - stop; events for @token may still arrive once. */
int core_loop_unwatch(struct core_loop *l, int fd, uint64_t token);

/**
 * core_loop_wait() - sleep until at least one event or @timeout_ns passes
 * (-1: no timeout; 0: do not sleep), then collect up to @max events.
 * Return: 0 with *@ret_n set (0 on timeout), or -errno.
 */
int core_loop_wait(struct core_loop *l, int64_t timeout_ns,
		   struct core_event *ev, unsigned int max,
		   unsigned int *ret_n);

/**
 * core_loop_peek() - collect up to @max events already pending, without
 * sleeping: io_uring only (reads the CQ; enters the kernel only when it
 * flagged held-back completions). epoll: always 0 events.
 * Return: 0 with *@ret_n set, or -errno.
 */
int core_loop_peek(struct core_loop *l, struct core_event *ev, unsigned int max,
		   unsigned int *ret_n);

/**
 * core_loop_post() - from the loop's owner: IORING_OP_MSG_RING a CQE
 * {user_data = @data, res = @res} into the io_uring @target_fd, submitted
 * at once. The send posts no CQE of its own unless it fails; then the
 * loop reports @fail_token (which must have CORE_TOKEN_MSG) with res =
 * -errno, and the message was not delivered.
 * Return: 0 once the SQE is queued (a refused submit is retried by the
 * next core_loop_wait()), -EBUSY if no SQE was free (nothing was queued),
 * -EOPNOTSUPP on epoll.
 */
int core_loop_post(struct core_loop *l, int target_fd, uint64_t data, int res,
		   uint64_t fail_token);

/*
 * A waker lets another thread wake the loop's owner: IORING_OP_MSG_RING
 * from the waker's own small io_uring into the loop's ring (no syscall on
 * the woken side besides the wait it already does), or an eventfd write
 * for epoll. Owned by the thread that kicks.
 */
struct core_waker {
	bool uring;
	struct io_uring ring;
	int target_fd; /* uring: the loop's ring fd; epoll: its wake eventfd */
};

int core_waker_init(struct core_waker *wk, struct core_loop *target);
void core_waker_fini(struct core_waker *wk);
/* core_waker_kick() - deliver CORE_TOKEN_WAKE to the target loop. */
int core_waker_kick(struct core_waker *wk);
/*
 * core_waker_post() - io_uring: post a CQE {user_data = @token, res =
 * @res} into the target loop (MSG_RING) and wait for the send's own
 * completion, which is immediate. epoll: write the eventfd (the loop
 * reports CORE_TOKEN_WAKE; @token and @res must travel another way).
 * Return: 0, or -errno (the message was not delivered).
 */
int core_waker_post(struct core_waker *wk, uint64_t token, int res);

/* The event loop's name for stats and logs: "io_uring" or "epoll". */
static inline const char *core_loop_name(const struct core_loop *l)
{
	return l->uring ? "io_uring" : "epoll";
}

#endif
