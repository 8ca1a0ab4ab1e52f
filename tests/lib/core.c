/* SPDX-License-Identifier: MIT */
/* The service in process; see tlib-core.h. */
#include "tests/lib/tlib-core.h"

const char *const tlib_hsmmu_names[3] = { "smmu0", "smmu1", "smmu2" };

const struct tlib_variant tlib_variants[4] = {
	{ CORE_LOOP_URING, CORE_ISSUE_ASYNC },
	{ CORE_LOOP_URING, CORE_ISSUE_INLINE },
	{ CORE_LOOP_EPOLL, CORE_ISSUE_ASYNC },
	{ CORE_LOOP_EPOLL, CORE_ISSUE_INLINE },
};

void tlib_sim_cfg(struct iofd_sim_config *sim)
{
	iofd_sim_config_default(sim);
	sim->wait = IOFD_SIM_WAIT_NONE;
}

void tlib_sim_fail(struct iofd_sim_config *sim, uint64_t at_cmd, int err)
{
	tlib_sim_cfg(sim);
	sim->fail_at_cmd = at_cmd;
	sim->fail_errno = err;
}

struct core_service *tlib_svc_new(const struct core_config *cfg)
{
	struct core_service *svc = NULL;

	ASSERT_OK(core_service_new(cfg, &svc));
	return svc;
}

struct core_service *tlib_svc_variant(const struct tlib_variant *v,
				      unsigned int n_hsmmu,
				      struct iofd_sim_config *sim,
				      unsigned int poll_us)
{
	struct core_config cfg = {
		TLIB_CORE_CFG(sim, n_hsmmu),
		.issue_mode = v->mode,
		.loop = v->loop,
		.poll_us = poll_us,
	};

	ASSERT_LE(n_hsmmu, 3);
	return tlib_svc_new(&cfg);
}

uint32_t tlib_vsmmu_new(struct core_service *svc, const char *hsmmu)
{
	struct core_vsmmu_spec spec = { .iommufd = -1 };
	uint32_t id = 0;

	ASSERT_OK(core_vsmmu_create(svc, hsmmu, &spec, &id));
	return id;
}

int _tlib_core_ring_attach(struct core_service *svc, uint32_t vs,
			   struct tlib_ring *r)
{
	r->vsmmu = vs;
	return core_ring_attach(svc, vs, r->memfd, r->db, r->cq, &r->id);
}

void tlib_core_ring(struct core_service *svc, uint32_t vs, struct tlib_ring *r,
		    uint32_t log2)
{
	tlib_ring_new(r, log2, 0);
	ASSERT_OK(_tlib_core_ring_attach(svc, vs, r));
}
