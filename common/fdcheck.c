/* SPDX-License-Identifier: MIT */
/* Checks that an fd received from a peer is what it claims to be. */
#include "common/fdcheck.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int common_fd_check_eventfd(int fd)
{
	static const char want[] = "anon_inode:[eventfd]";
	char path[64], target[64];
	struct stat st;
	ssize_t n;

	if (fd < 0 || fstat(fd, &st) < 0)
		return -EBADF;
	/*
	 * eventfds are anonymous inodes; the only stable identification is
	 * the name the kernel gives the file, as procfs shows it.
	 */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return errno == ENOENT ? -EBADF : -errno;
	target[n] = '\0';
	return strcmp(target, want) ? -EBADF : 0;
}
