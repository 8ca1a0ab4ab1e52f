/* SPDX-License-Identifier: MIT */
/* An issuer thread for the backend alone; see tlib-core.h. Its own file:
 * the iommufd tests link it without core. */
#include "tests/lib/tlib-core.h"

void *tlib_issue(void *arg)
{
	const struct tlib_issuer *a = arg;
	uint32_t done;

	for (uint32_t r = 0; r < a->rounds; r++)
		if (iofd_invalidate(a->v, a->c, a->n, &done) || done != a->n)
			return (void *)1;
	return NULL;
}
