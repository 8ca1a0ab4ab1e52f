/* SPDX-License-Identifier: MIT */
/* A VMM through libsmmu-offload; see tlib.h. */
#include "tests/lib/tlib.h"

int _tlib_client_ring_attach(struct smmu_client *c, uint32_t vs,
			     struct tlib_ring *r)
{
	r->vsmmu = vs;
	return smmu_client_ring_attach(c, vs, r->memfd, r->db, r->cq, &r->id);
}

void tlib_client_ring_attach(struct smmu_client *c, uint32_t vs,
			     struct tlib_ring *r)
{
	ASSERT_OK(_tlib_client_ring_attach(c, vs, r));
}

uint32_t tlib_client_vmm(struct smmu_client *c, const char *hsmmu,
			 uint32_t psid, uint64_t vsid, struct tlib_ring *r,
			 uint32_t log2, int efd_flags)
{
	uint32_t vs, vdev;

	ASSERT_OK(smmu_client_vsmmu_create(c, hsmmu, -1, 0, 0, &vs));
	ASSERT_OK(smmu_client_device_attach(c, vs, psid, vsid, &vdev));
	tlib_ring_new(r, log2, efd_flags);
	tlib_client_ring_attach(c, vs, r);
	return vs;
}

int _tlib_stat(struct smmu_client *c, enum smmu_client_scope s, uint32_t id,
	       const char *name, uint64_t *ret)
{
	struct smmu_client_stats *st = NULL;
	int r;

	ASSERT_OK(smmu_client_stats(c, s, id, &st));
	r = smmu_client_stats_get(st, name, ret);
	smmu_client_stats_free(st);
	return r;
}

uint64_t tlib_stat(struct smmu_client *c, enum smmu_client_scope s, uint32_t id,
		   const char *name)
{
	uint64_t v = 0;

	ASSERT_OK(_tlib_stat(c, s, id, name, &v));
	return v;
}
