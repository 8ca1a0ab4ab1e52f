/* SPDX-License-Identifier: MIT */
/* The backend alone (issuer thread, fixture teardown); see tlib-core.h.
 * Its own file: the iommufd tests link it without core. */
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

void tlib_iofd_close(struct iofd_backend *b, struct iofd_hsmmu *h,
		     struct iofd_viommu *v, uint32_t vdev)
{
	if (v && vdev)
		iofd_vdev_destroy(v, vdev);
	iofd_viommu_unbind(v);
	iofd_hsmmu_close(h);
	iofd_backend_free(b);
}
