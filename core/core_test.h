/* SPDX-License-Identifier: MIT */
/*
 * core's test seams: the objects under the service, for the sim oracle in
 * tests and smmu-bench. Nothing else includes this header (the daemon and
 * rpc/ see core.h only); what these return is owned by the service and
 * valid until the vSMMU is destroyed or the service freed. Control
 * threads only, as core.h.
 */
#ifndef SMMU_OFFLOAD_CORE_TEST_H
#define SMMU_OFFLOAD_CORE_TEST_H

#include "core/core.h"
#include "iommufd/iofd.h"

/* The backend, e.g. for the sim oracle in tests and the bench. */
struct iofd_backend *core_service_backend(struct core_service *svc);

/* The iofd vIOMMU of a vSMMU (tests/bench: sim oracle). NULL if none. */
struct iofd_viommu *core_vsmmu_viommu(struct core_service *svc,
				      uint32_t vsmmu_id);

#endif
