/* SPDX-License-Identifier: MIT */
/*
 * tests/lib for the service in process (core + the sim backend with its
 * oracle): the loop x issue-mode variants, a service, a vSMMU, a ring
 * attached by core_ring_attach(); and an issuer thread for the backend
 * (iommufd) alone. ASSERTs like tlib.h; test's main thread unless said.
 */
#ifndef SMMU_OFFLOAD_TESTS_LIB_TLIB_CORE_H
#define SMMU_OFFLOAD_TESTS_LIB_TLIB_CORE_H

#include "core/core.h"
#include "core/core_test.h"
#include "iommufd/sim.h"
#include "tests/lib/tlib.h"

/* One event loop and issue mode. */
struct tlib_variant {
	enum core_loop_kind loop;
	enum core_issue_mode mode;
};

/* io_uring/async, io_uring/inline, epoll/async, epoll/inline. */
extern const struct tlib_variant tlib_variants[4];

/* Four tests, name_uring_async ... name_epoll_inline, each calling
 * run_name(const struct tlib_variant *) with its variant. */
#define TLIB_TEST_VARIANTS(name)               \
	TEST(name##_uring_async)               \
	{                                      \
		run_##name(&tlib_variants[0]); \
	}                                      \
	TEST(name##_uring_inline)              \
	{                                      \
		run_##name(&tlib_variants[1]); \
	}                                      \
	TEST(name##_epoll_async)               \
	{                                      \
		run_##name(&tlib_variants[2]); \
	}                                      \
	TEST(name##_epoll_inline)              \
	{                                      \
		run_##name(&tlib_variants[3]); \
	}

/* The sim's defaults, accounting only (no waiting): tests check counts
 * and the oracle, not time. */
void tlib_sim_cfg(struct iofd_sim_config *sim);
/* tlib_sim_cfg(), and the @at_cmd-th command the host consumes fails
 * with @err (a positive errno). */
void tlib_sim_fail(struct iofd_sim_config *sim, uint64_t at_cmd, int err);
/* Host SMMU names: smmu0, smmu1, smmu2. */
extern const char *const tlib_hsmmu_names[3];

/*
 * The first fields of a core_config initializer: the sim backend with
 * @sim_cfg (a struct iofd_sim_config *) and @n (<= 3) host SMMUs named
 * as above. struct core_config cfg = { TLIB_CORE_CFG(&sim, 1), ... };
 */
#define TLIB_CORE_CFG(sim_cfg, n)                       \
	.backend = { .kind = "sim", .sim = (sim_cfg) }, \
	.hsmmu_names = tlib_hsmmu_names, .n_hsmmu = (n)
/* core_service_new() must succeed. */
struct core_service *tlib_svc_new(const struct core_config *cfg);
/* TLIB_CORE_CFG() with @v's loop and issue mode and @poll_us. */
struct core_service *tlib_svc_variant(const struct tlib_variant *v,
				      unsigned int n_hsmmu,
				      struct iofd_sim_config *sim,
				      unsigned int poll_us);
/* A vSMMU on @hsmmu (no iommufd): its id. */
uint32_t tlib_vsmmu_new(struct core_service *svc, const char *hsmmu);
/* core_ring_attach() of @r to @vs; sets r->id and r->vsmmu. */
int _tlib_core_ring_attach(struct core_service *svc, uint32_t vs,
			   struct tlib_ring *r);
/* A new ring (2^@log2, blocking eventfds) attached to @vs. */
void tlib_core_ring(struct core_service *svc, uint32_t vs, struct tlib_ring *r,
		    uint32_t log2);

/*
 * An issuer for tlib_threads(): @rounds calls of iofd_invalidate(@v, @c,
 * @n) from its own thread, as a worker or issuer thread makes them.
 * Returns NULL when every call returned 0 having completed all @n
 * commands, else non-NULL. Any thread (asserts nothing).
 */
struct tlib_issuer {
	struct iofd_viommu *v;
	const struct cmdq_cmd *c;
	uint32_t n, rounds;
};

void *tlib_issue(void *arg);

/* A backend fixture's teardown: vDEVICE @vdev (if @v and @vdev), vIOMMU
 * @v, host SMMU @h, backend @b, each NULL-safe as its iofd_ call is. */
void tlib_iofd_close(struct iofd_backend *b, struct iofd_hsmmu *h,
		     struct iofd_viommu *v, uint32_t vdev);

#endif
