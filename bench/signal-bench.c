/* SPDX-License-Identifier: MIT */
/*
 * signal-bench: how the worker can signal a VMM's completion eventfd, and
 * what each way costs and risks on this kernel (docs/SECURITY.md,
 * "Completion signals"; docs/PERFORMANCE.md). Not a test: it measures.
 *
 * For each mechanism: the signaller's cost per signal (median of batches,
 * counter drained between batches), the wake-up latency to a thread
 * blocked in read(2) on the eventfd (median, p99), and what happens when
 * the counter is full (0xfffffffffffffffe) and the fd is blocking:
 *   write(2)            blocks (not run: it would hang; shown by the
 *                       regression test tests/security/test-signal-race.c)
 *   pwritev2 RWF_NOWAIT refused?
 *   io_uring WRITE      inline, or punted to an io-wq thread? on a full
 *                       counter: parked, and can it be cancelled?
 *   AIO poll + RESFD    the kernel's eventfd_signal(): returns at once?
 *
 * Usage: signal-bench [ROUNDS] (default 20000)
 */
#include <dirent.h>
#include <errno.h>
#include <linux/aio_abi.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"

#define FULL 0xfffffffffffffffeull

static int threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void drain(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v;

	if (poll(&p, 1, 0) == 1 && read(fd, &v, sizeof(v)) < 0)
		perror("read");
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* ---- the mechanisms ------------------------------------------------------ */

enum mech { M_WRITE, M_URING, M_AIO, M_N };
static const char *const mech_name[M_N] = { "write(2)", "io_uring WRITE",
					    "AIO poll + RESFD" };

struct signaller {
	struct io_uring ring;
	aio_context_t aio;
	int ready_fd;
	uint64_t one;
};

static int sig_init(struct signaller *s)
{
	memset(s, 0, sizeof(*s));
	s->one = 1;
	if (io_uring_queue_init(8, &s->ring, 0) < 0)
		return -1;
	if (syscall(SYS_io_setup, 16, &s->aio) < 0)
		return -1;
	s->ready_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return s->ready_fd < 0 ? -1 : 0;
}

static int sig_send(struct signaller *s, enum mech m, int fd)
{
	switch (m) {
	case M_WRITE:
		return write(fd, &s->one, sizeof(s->one)) == sizeof(s->one) ?
			       0 :
			       -errno;
	case M_URING: {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);
		struct io_uring_cqe *cqe;
		int r;

		io_uring_prep_write(sqe, fd, &s->one, sizeof(s->one), 0);
		io_uring_submit(&s->ring);
		r = io_uring_wait_cqe(&s->ring, &cqe);
		if (r == 0) {
			r = cqe->res < 0 ? cqe->res : 0;
			io_uring_cqe_seen(&s->ring, cqe);
		}
		return r;
	}
	case M_AIO: {
		struct iocb cb = {
			.aio_lio_opcode = IOCB_CMD_POLL,
			.aio_fildes = (uint32_t)s->ready_fd,
			.aio_buf = POLLOUT,
			.aio_flags = IOCB_FLAG_RESFD,
			.aio_resfd = (uint32_t)fd,
		};
		struct iocb *cbs[1] = { &cb };
		struct io_event ev[4];
		struct timespec zero = { 0, 0 };

		if (syscall(SYS_io_submit, s->aio, 1L, cbs) != 1)
			return -errno;
		syscall(SYS_io_getevents, s->aio, 0L, 4L, ev, &zero);
		return 0;
	}
	default:
		return -EINVAL;
	}
}

/* ---- cost per signal ------------------------------------------------------ */

static double cost_ns(struct signaller *s, enum mech m, unsigned int rounds)
{
	int fd = eventfd(0, EFD_CLOEXEC);
	uint64_t med[41];
	unsigned int per = rounds / 40 ? rounds / 40 : 1;

	for (int b = 0; b < 41; b++) {
		uint64_t t0 = common_now_ns();

		for (unsigned int i = 0; i < per; i++)
			if (sig_send(s, m, fd) < 0) {
				close(fd);
				return -1;
			}
		med[b] = (common_now_ns() - t0) / per;
		drain(fd);
	}
	close(fd);
	qsort(med, 41, sizeof(med[0]), cmp_u64);
	return (double)med[20];
}

/* ---- wake-up latency to a blocked reader ---------------------------------- */

struct reader {
	int fd;
	unsigned int n;
	uint64_t *t_wake;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	uint64_t v;

	for (unsigned int i = 0; i < r->n; i++) {
		if (read(r->fd, &v, sizeof(v)) != sizeof(v))
			break;
		__atomic_store_n(&r->t_wake[i], common_now_ns(),
				 __ATOMIC_RELEASE);
	}
	return NULL;
}

static void latency(struct signaller *s, enum mech m, unsigned int n,
		    double *p50, double *p99)
{
	struct reader rd = { .fd = eventfd(0, EFD_CLOEXEC), .n = n };
	uint64_t *t_sig = calloc(n, sizeof(*t_sig)), *lat;
	pthread_t th;

	rd.t_wake = calloc(n, sizeof(*rd.t_wake));
	lat = calloc(n, sizeof(*lat));
	pthread_create(&th, NULL, reader_main, &rd);
	for (unsigned int i = 0; i < n; i++) {
		struct timespec gap = { 0, 50000 }; /* let the reader block */

		nanosleep(&gap, NULL);
		t_sig[i] = common_now_ns();
		sig_send(s, m, rd.fd);
		while (!__atomic_load_n(&rd.t_wake[i], __ATOMIC_ACQUIRE))
			;
		lat[i] = rd.t_wake[i] - t_sig[i];
	}
	pthread_join(th, NULL);
	qsort(lat, n, sizeof(*lat), cmp_u64);
	*p50 = (double)lat[n / 2];
	*p99 = (double)lat[n * 99 / 100];
	close(rd.fd);
	free(t_sig);
	free(rd.t_wake);
	free(lat);
}

/* ---- a full counter, blocking fd ---------------------------------------- */

static void full_counter(struct signaller *s)
{
	int fd = eventfd(0, EFD_CLOEXEC); /* blocking */
	uint64_t full = FULL, v = 0;
	struct iovec iov = { &s->one, sizeof(s->one) };
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts = { 0, 200000000 };
	uint64_t t0;
	ssize_t r;
	int before, rc;

	r = pwritev2(fd, &iov, 1, -1, RWF_NOWAIT);
	printf("pwritev2(RWF_NOWAIT), counter empty: %s\n",
	       r < 0 ? strerror(errno) : "ok");

	if (write(fd, &full, sizeof(full)) != sizeof(full))
		return;
	before = threads();
	sqe = io_uring_get_sqe(&s->ring);
	io_uring_prep_write(sqe, fd, &s->one, sizeof(s->one), 0);
	io_uring_sqe_set_data64(sqe, 1);
	io_uring_submit(&s->ring);
	rc = io_uring_wait_cqe_timeout(&s->ring, &cqe, &ts);
	printf("io_uring WRITE, counter full: %s after 200 ms; threads %d -> %d\n",
	       rc == -ETIME ? "still pending" : "completed", before, threads());
	t0 = common_now_ns();
	sqe = io_uring_get_sqe(&s->ring);
	io_uring_prep_cancel64(sqe, 1, 0);
	io_uring_sqe_set_data64(sqe, 2);
	io_uring_submit(&s->ring);
	for (int i = 0; i < 2; i++) {
		if (io_uring_wait_cqe(&s->ring, &cqe))
			break;
		if (io_uring_cqe_get_data64(cqe) == 1)
			printf("  cancelled: res %d (%s) after %.1f us\n",
			       cqe->res, strerror(-cqe->res),
			       (double)(common_now_ns() - t0) / 1e3);
		io_uring_cqe_seen(&s->ring, cqe);
	}

	t0 = common_now_ns();
	rc = sig_send(s, M_AIO, fd);
	printf("AIO poll + RESFD, counter full: %s in %.1f us; ",
	       rc ? strerror(-rc) : "returned",
	       (double)(common_now_ns() - t0) / 1e3);
	if (read(fd, &v, sizeof(v)) == sizeof(v))
		printf("the reader then reads 0x%llx\n", (unsigned long long)v);
	close(fd);
}

int main(int argc, char **argv)
{
	unsigned int rounds = argc > 1 ? (unsigned int)atoi(argv[1]) : 20000;
	struct signaller s;
	int t0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (sig_init(&s)) {
		perror("setup (io_uring or AIO unavailable)");
		return 1;
	}
	printf("%-18s %14s %14s %14s %10s\n", "mechanism", "cost/signal",
	       "wake p50", "wake p99", "threads");
	for (int m = 0; m < M_N; m++) {
		double c, p50, p99;

		t0 = threads();
		c = cost_ns(&s, (enum mech)m, rounds);
		latency(&s, (enum mech)m, rounds / 10 ? rounds / 10 : 1, &p50,
			&p99);
		printf("%-18s %11.2f us %11.1f us %11.1f us %5d->%d\n",
		       mech_name[m], c / 1e3, p50 / 1e3, p99 / 1e3, t0,
		       threads());
	}
	full_counter(&s);
	return 0;
}
