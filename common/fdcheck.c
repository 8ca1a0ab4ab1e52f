/* SPDX-License-Identifier: MIT */
/* Checks that an fd received from a peer is what it claims to be. */
#include "common/fdcheck.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * eventfds and userfaultfds are anonymous inodes; the only stable
 * identification is the name the kernel gives the file, as procfs shows it.
 */
static int check_anon(int fd, const char *want)
{
	char path[64], target[64];
	struct stat st;
	ssize_t n;

	if (fd < 0 || fstat(fd, &st) < 0)
		return -EBADF;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return errno == ENOENT ? -EBADF : -errno;
	target[n] = '\0';
	return strcmp(target, want) ? -EBADF : 0;
}

int common_fd_check_eventfd(int fd)
{
	return check_anon(fd, "anon_inode:[eventfd]");
}

int common_fd_check_uffd(int fd)
{
	return check_anon(fd, "anon_inode:[userfaultfd]");
}
