/* SPDX-License-Identifier: MIT */
/* Checks that an fd received from a peer is what it claims to be. */
#include "core/core_i.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Is @fd an anonymous inode named @name (as procfs shows it)? */
static int check_anon(int fd, const char *name)
{
	char path[64], link[64];
	struct stat st;
	ssize_t n;

	if (fd < 0 || fstat(fd, &st) < 0)
		return -EBADF;
	/*
	 * eventfds are anonymous inodes; the only stable identification is
	 * the name the kernel gives the file, as procfs shows it.
	 */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	link[n] = '\0';
	return strcmp(link, name) ? -EBADF : 0;
}

int core_check_eventfd(int fd)
{
	return check_anon(fd, "anon_inode:[eventfd]");
}

int core_check_uffd(int fd)
{
	return check_anon(fd, "anon_inode:[userfaultfd]");
}

uint64_t core_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
