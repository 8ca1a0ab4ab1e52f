/* SPDX-License-Identifier: MIT */
/*
 * Completion signals that never block: the worker signals a VMM's
 * completion eventfd through the kernel's own eventfd_signal(), by
 * completing a Linux AIO poll request that names the eventfd as its
 * IOCB_FLAG_RESFD. eventfd_signal() adds to the counter under the
 * eventfd's spinlock and saturates at 2^64 - 1 instead of waiting, so
 * nothing the VMM does to its eventfd (fill the counter, clear
 * O_NONBLOCK on the shared file description, never read) can make this
 * wait. write(2) can: it blocks on a full counter unless the file is
 * O_NONBLOCK, a flag the VMM owns. Measurements and the alternatives
 * that were rejected: docs/SECURITY.md, "Completion signals".
 *
 * The poll request is on an eventfd of our own that nobody writes, so it
 * is always writable and the request completes inside io_submit(); its
 * event is reaped at once, so the context never fills. Works the same
 * with either event loop (io_uring is not involved).
 *
 * Thread context: a core_signaller is used by its worker thread only.
 */
#include "core/core_i.h"

#include <errno.h>
#include <linux/aio_abi.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Requests in flight at most: one at a time, plus slack for a request
 * the kernel did not complete inline (never seen; reaped next time). */
#define CORE_SIGNAL_EVENTS 16

int core_signal_init(struct core_signaller *s)
{
	aio_context_t ctx = 0;
	int fd;

	memset(s, 0, sizeof(*s));
	s->ready_fd = -1;
	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (syscall(SYS_io_setup, CORE_SIGNAL_EVENTS, &ctx) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	s->ctx = ctx;
	s->ready_fd = fd;
	return 0;
}

void core_signal_fini(struct core_signaller *s)
{
	if (s->ready_fd < 0)
		return;
	syscall(SYS_io_destroy, (aio_context_t)s->ctx);
	close(s->ready_fd);
	s->ready_fd = -1;
	s->ctx = 0;
}

int core_signal_post(struct core_signaller *s, int efd)
{
	struct iocb cb;
	struct iocb *cbs[1] = { &cb };
	struct io_event ev[CORE_SIGNAL_EVENTS];
	struct timespec zero = { 0, 0 };
	long n;
	int r = 0;

	if (s->ready_fd < 0)
		return -EOPNOTSUPP;
	memset(&cb, 0, sizeof(cb));
	cb.aio_lio_opcode = IOCB_CMD_POLL;
	cb.aio_fildes = (uint32_t)s->ready_fd;
	cb.aio_buf = POLLOUT;
	cb.aio_flags = IOCB_FLAG_RESFD;
	cb.aio_resfd = (uint32_t)efd;
	/* The eventfd is signalled when the request completes: inline. */
	n = syscall(SYS_io_submit, (aio_context_t)s->ctx, 1L, cbs);
	if (n != 1)
		r = n < 0 ? -errno : -EAGAIN;
	/* Reap without waiting: the kernel posted the event already. */
	n = syscall(SYS_io_getevents, (aio_context_t)s->ctx, 0L,
		    (long)CORE_SIGNAL_EVENTS, ev, &zero);
	(void)n;
	return r;
}
