/* SPDX-License-Identifier: MIT */
/* Clock, fds, threads; see tlib.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/lib/tlib.h"

double tlib_deadline(int ms)
{
	return t_now() + ms / 1000.0;
}

int tlib_left_ms(double deadline)
{
	return (int)((deadline - t_now()) * 1000);
}

void tlib_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

int tlib_sem_wait(sem_t *s, int ms)
{
	struct timespec ts;

	/* sem_timedwait() takes a CLOCK_REALTIME deadline. */
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	while (sem_timedwait(s, &ts) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

int tlib_fds(pid_t pid)
{
	char path[64];
	struct dirent *de;
	DIR *dir;
	int n = 0;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/fd");
	dir = opendir(path);
	ASSERT_NONNULL(dir);
	while ((de = readdir(dir)))
		n += de->d_name[0] != '.';
	closedir(dir);
	/* Our own listing holds one fd of its own. */
	return pid ? n : n - 1;
}

void tlib_threads(void *(*fn)(void *), void *args, size_t size, unsigned int n)
{
	pthread_t th[TLIB_THREADS_MAX];
	void *res;

	ASSERT_LE(n, TLIB_THREADS_MAX);
	for (unsigned int i = 0; i < n; i++)
		ASSERT_EQ(pthread_create(&th[i], NULL, fn,
					 (char *)args + i * size),
			  0);
	for (unsigned int i = 0; i < n; i++) {
		ASSERT_EQ(pthread_join(th[i], &res), 0);
		ASSERT_NULL(res);
	}
}

int tlib_memfd_sealed(const char *name, uint64_t size, unsigned int seals)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);

	ASSERT_GE(fd, 0);
	ASSERT_OK(ftruncate(fd, (off_t)size) ? -errno : 0);
	ASSERT_OK(fcntl(fd, F_ADD_SEALS, seals) ? -errno : 0);
	return fd;
}

bool tlib_wait_u32(const uint32_t *p, uint32_t mask, uint32_t want, int ms)
{
	for (double dl = tlib_deadline(ms); tlib_left_ms(dl) > 0;) {
		if ((__atomic_load_n(p, __ATOMIC_ACQUIRE) & mask) == want)
			return true;
		sched_yield();
	}
	return false;
}
