/* SPDX-License-Identifier: MIT */
/* The check every memfd a peer hands to ring/ goes through. */
#include "ring/ring_i.h"

#include <errno.h>
#include <fcntl.h>

int ring_memfd_check(int memfd, int seals, struct stat *ret_st)
{
	struct stat st;
	int have;

	if (fstat(memfd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EBADF;
	have = fcntl(memfd, F_GET_SEALS);
	if (have < 0)
		return -errno; /* EINVAL: not a memfd */
	if ((have & seals) != seals)
		return -EPERM;
	/*
	 * The size only became fixed when the seals were set, which may be
	 * after the first fstat: take it again now, or a peer that shrank
	 * the file in between would leave us mapping past its end (SIGBUS).
	 */
	if (fstat(memfd, &st) < 0)
		return -errno;
	*ret_st = st;
	return 0;
}
