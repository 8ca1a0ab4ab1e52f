/* SPDX-License-Identifier: MIT */
/*
 * Checks that an fd received from a peer (a VMM over SCM_RIGHTS) is what
 * it claims to be, used by more than one folder (core checks the fds a
 * ring is attached with, rpc the ones a request carries).
 *
 * Contract: no state, no allocation, no blocking (fstat and readlink on
 * /proc/self only); callable from any thread. Return 0 or -errno.
 */
#ifndef SMMU_OFFLOAD_COMMON_FDCHECK_H
#define SMMU_OFFLOAD_COMMON_FDCHECK_H

/**
 * common_fd_check_eventfd() - is @fd an eventfd? (readlink of
 * /proc/self/fd/N is "anon_inode:[eventfd]").
 * Return: 0, -EBADF (not an eventfd, or not an open fd), or another
 * -errno from readlink.
 */
int common_fd_check_eventfd(int fd);

/* common_fd_check_uffd() - is @fd a userfaultfd? Same returns. */
int common_fd_check_uffd(int fd);

#endif
