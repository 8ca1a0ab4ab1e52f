/* SPDX-License-Identifier: MIT */
#include "core/loop.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define CORE_LOOP_ENTRIES 256

static int loop_uring_init(struct core_loop *l)
{
	/*
	 * DEFER_TASKRUN runs completions only when we enter the kernel to
	 * wait, which is exactly when the worker wants them; COOP_TASKRUN
	 * avoids IPIs on older kernels. Probe from the best down.
	 */
	/*
	 * TASKRUN_FLAG: the kernel sets IORING_SQ_TASKRUN when completions
	 * wait for us to enter, so core_loop_peek() can tell from shared
	 * memory whether a syscall would find anything.
	 */
	static const unsigned int tries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
			IORING_SETUP_TASKRUN_FLAG,
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN |
			IORING_SETUP_TASKRUN_FLAG,
		0,
	};
	int r = -EINVAL;

	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		struct io_uring_params p;

		memset(&p, 0, sizeof(p));
		p.flags = tries[i];
		r = io_uring_queue_init_params(CORE_LOOP_ENTRIES, &l->ring, &p);
		if (r == 0) {
			l->setup_flags = tries[i];
			return 0;
		}
		/* EPERM/ENOSYS: io_uring itself is off; no flag will help. */
		if (r == -EPERM || r == -ENOSYS)
			return r;
	}
	return r;
}

static int loop_epoll_init(struct core_loop *l)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET };
	int r;

	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		return -errno;
	l->wake_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->wake_efd < 0) {
		r = -errno;
		goto err_close_ep;
	}
	ev.data.u64 = CORE_TOKEN_WAKE;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wake_efd, &ev) < 0) {
		r = -errno;
		goto err_close_efd;
	}
	return 0;

err_close_efd:
	close(l->wake_efd);
	l->wake_efd = -1;
err_close_ep:
	close(l->epfd);
	l->epfd = -1;
	return r;
}

int core_loop_init(struct core_loop *l, enum core_loop_kind kind)
{
	int r;

	memset(l, 0, sizeof(*l));
	l->epfd = -1;
	l->wake_efd = -1;
	if (kind != CORE_LOOP_EPOLL) {
		r = loop_uring_init(l);
		if (r == 0) {
			l->uring = true;
			return 0;
		}
		if (kind == CORE_LOOP_URING || (r != -EPERM && r != -ENOSYS))
			return r;
	}
	return loop_epoll_init(l);
}

void core_loop_fini(struct core_loop *l)
{
	if (l->uring) {
		io_uring_queue_exit(&l->ring);
		l->uring = false;
	}
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->wake_efd >= 0)
		close(l->wake_efd);
	l->epfd = l->wake_efd = -1;
}

static struct io_uring_sqe *loop_get_sqe(struct core_loop *l)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);

	if (!sqe) {
		/* SQ full: push what is queued, then there is room. */
		io_uring_submit(&l->ring);
		sqe = io_uring_get_sqe(&l->ring);
	}
	return sqe;
}

int core_loop_watch(struct core_loop *l, int fd, uint64_t token)
{
	if (l->uring) {
		struct io_uring_sqe *sqe = loop_get_sqe(l);

		if (!sqe)
			return -EBUSY;
		io_uring_prep_poll_multishot(sqe, fd, POLLIN);
		io_uring_sqe_set_data64(sqe, token);
		return 0;
	} else {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLET,
					  .data.u64 = token };

		return epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno :
									0;
	}
}

int core_loop_unwatch(struct core_loop *l, int fd, uint64_t token)
{
	if (l->uring) {
		struct io_uring_sqe *sqe = loop_get_sqe(l);

		if (!sqe)
			return -EBUSY;
		io_uring_prep_poll_remove(sqe, token);
		/* The removal's own CQE carries this token too: skip it. */
		io_uring_sqe_set_data64(sqe, CORE_TOKEN_WAKE - 1);
		sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
		return io_uring_submit(&l->ring) < 0 ? -EIO : 0;
	}
	return epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 ? -errno : 0;
}

/* Collects up to @max CQEs already in the CQ; no syscall. */
static unsigned int loop_uring_reap(struct core_loop *l, struct core_event *ev,
				    unsigned int max)
{
	struct io_uring_cqe *cqe;
	unsigned int n = 0, seen = 0, head;

	io_uring_for_each_cqe(&l->ring, head, cqe) {
		uint64_t token = io_uring_cqe_get_data64(cqe);

		if (n == max)
			break;
		seen++;
		if (token == CORE_TOKEN_WAKE - 1)
			continue;
		n++;
		ev->token = token;
		ev->res = cqe->res;
		/*
		 * A multishot poll that ended without being removed (CQ
		 * overflow, or the kernel dropped it) would silence a ring:
		 * report it so the owner re-arms. Tokens with the top bit set
		 * are one-shot messages (CORE_TOKEN_MSG), not polls.
		 */
		if (token != CORE_TOKEN_WAKE && !(token & CORE_TOKEN_MSG) &&
		    !(cqe->flags & IORING_CQE_F_MORE) && cqe->res >= 0)
			ev->res = -ECANCELED;
		ev++;
	}
	io_uring_cq_advance(&l->ring, seen);
	return n;
}

static int loop_uring_wait(struct core_loop *l, int64_t timeout_ns,
			   struct core_event *ev, unsigned int max,
			   unsigned int *ret_n)
{
	struct io_uring_cqe *cqe;
	int r;

	if (timeout_ns < 0) {
		r = io_uring_submit_and_wait(&l->ring, 1);
	} else if (timeout_ns == 0) {
		r = io_uring_submit(&l->ring);
		if (r >= 0 && (l->setup_flags & IORING_SETUP_DEFER_TASKRUN))
			r = io_uring_get_events(&l->ring);
	} else {
		struct __kernel_timespec ts = {
			.tv_sec = timeout_ns / 1000000000,
			.tv_nsec = timeout_ns % 1000000000,
		};

		r = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, &ts,
						     NULL);
		if (r == -ETIME)
			r = 0;
	}
	if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
		return r;

	*ret_n = loop_uring_reap(l, ev, max);
	return 0;
}

int core_loop_peek(struct core_loop *l, struct core_event *ev, unsigned int max,
		   unsigned int *ret_n)
{
	*ret_n = 0;
	if (!l->uring)
		return 0;
	/*
	 * Completions the kernel holds back for us (DEFER_TASKRUN task
	 * work, CQ overflow) are flagged in the SQ flags: enter only then,
	 * so a busy pass with nothing pending costs two loads.
	 */
	if (IO_URING_READ_ONCE(*l->ring.sq.kflags) &
	    (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) {
		int r = io_uring_get_events(&l->ring);

		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
			return r;
	}
	*ret_n = loop_uring_reap(l, ev, max);
	return 0;
}

/* MSG_RING, filled by hand: liburing 2.3 has no cqe_flags variant, and
 * the target's res is the SQE's len. */
static void prep_msg(struct io_uring_sqe *sqe, int target_fd, uint64_t data,
		     int res)
{
	io_uring_prep_msg_ring(sqe, target_fd, (unsigned int)res, data, 0);
}

int core_loop_post(struct core_loop *l, int target_fd, uint64_t data, int res,
		   uint64_t fail_token)
{
	struct io_uring_sqe *sqe;
	int r;

	if (!l->uring)
		return -EOPNOTSUPP;
	sqe = loop_get_sqe(l);
	if (!sqe)
		return -EBUSY;
	prep_msg(sqe, target_fd, data, res);
	io_uring_sqe_set_data64(sqe, fail_token);
	/* Our own CQE only if it failed: the owner then takes it back. */
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	/*
	 * Queued now, so it goes out: if this submit is refused (-EBUSY,
	 * -EAGAIN under CQ pressure) the SQE stays in the SQ and the next
	 * core_loop_wait() submits it. Reporting an error here would make
	 * the caller take back a message that is still to be delivered.
	 */
	r = io_uring_submit(&l->ring);
	(void)r;
	return 0;
}

int core_loop_wait(struct core_loop *l, int64_t timeout_ns,
		   struct core_event *ev, unsigned int max, unsigned int *ret_n)
{
	struct epoll_event eev[64];
	int ms, r;

	if (l->uring)
		return loop_uring_wait(l, timeout_ns, ev, max, ret_n);

	if (timeout_ns < 0)
		ms = -1;
	else
		ms = (int)((timeout_ns + 999999) / 1000000);
	if (max > 64)
		max = 64;
	r = epoll_wait(l->epfd, eev, (int)max, ms);
	if (r < 0) {
		*ret_n = 0;
		return errno == EINTR ? 0 : -errno;
	}
	for (int i = 0; i < r; i++) {
		ev[i].token = eev[i].data.u64;
		ev[i].res = 0;
		if (ev[i].token == CORE_TOKEN_WAKE) {
			uint64_t v;
			/* Our own eventfd, non-blocking: drain it. */
			ssize_t rr = read(l->wake_efd, &v, sizeof(v));
			(void)rr;
		}
	}
	*ret_n = (unsigned int)r;
	return 0;
}

int core_waker_init(struct core_waker *wk, struct core_loop *target)
{
	int r;

	memset(wk, 0, sizeof(*wk));
	if (!target->uring) {
		wk->target_fd = target->wake_efd;
		return 0;
	}
	r = io_uring_queue_init(4, &wk->ring, 0);
	if (r < 0)
		return r;
	wk->uring = true;
	wk->target_fd = target->ring.ring_fd;
	return 0;
}

void core_waker_fini(struct core_waker *wk)
{
	if (wk->uring)
		io_uring_queue_exit(&wk->ring);
	wk->uring = false;
}

int core_waker_post(struct core_waker *wk, uint64_t token, int res)
{
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	uint64_t one = 1;
	int r;

	if (!wk->uring)
		return write(wk->target_fd, &one, sizeof(one)) < 0 ? -errno : 0;
	sqe = io_uring_get_sqe(&wk->ring);
	if (!sqe)
		return -EBUSY;
	prep_msg(sqe, wk->target_fd, token, res);
	io_uring_sqe_set_data64(sqe, 0);
	/*
	 * Wait for the send's own CQE: its res says whether the message
	 * was posted. MSG_RING normally completes inside this enter; if
	 * the kernel punts it, we wait for it rather than lose a result.
	 */
	r = io_uring_submit_and_wait(&wk->ring, 1);
	if (r < 0)
		return r;
	r = io_uring_wait_cqe(&wk->ring, &cqe);
	if (r < 0)
		return r;
	r = cqe->res < 0 ? cqe->res : 0;
	io_uring_cqe_seen(&wk->ring, cqe);
	return r;
}

int core_waker_kick(struct core_waker *wk)
{
	struct io_uring_sqe *sqe;
	uint64_t one = 1;
	int r;

	if (!wk->uring)
		return write(wk->target_fd, &one, sizeof(one)) < 0 ? -errno : 0;
	sqe = io_uring_get_sqe(&wk->ring);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_msg_ring(sqe, wk->target_fd, 0, CORE_TOKEN_WAKE, 0);
	/* Nobody reaps the sender's CQE: post none unless it failed. */
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	r = io_uring_submit(&wk->ring);
	if (r < 0)
		return r;
	/* Reap failures so the small CQ never fills. */
	for (;;) {
		struct io_uring_cqe *cqe;
		int res;

		if (io_uring_peek_cqe(&wk->ring, &cqe) != 0)
			break;
		res = cqe->res;
		io_uring_cqe_seen(&wk->ring, cqe);
		if (res < 0)
			return res;
	}
	return 0;
}
