/* SPDX-License-Identifier: MIT */
/*
 * The sim backend: an emulated host SMMU with the newer kernel's
 * validation, a cost model and an IOTLB / config-cache / ATC oracle.
 * Defaults and their sources: docs/COST-MODEL.md.
 *
 * Device model: a sim device id is its physical StreamID (pSID), so
 * iofd_vdev_alloc(v, dev_id, vsid) maps vSID -> pSID = dev_id.
 */
#ifndef SMMU_OFFLOAD_IOFD_SIM_H
#define SMMU_OFFLOAD_IOFD_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "cmdq/cmdq.h"
#include "iommufd/iofd.h"

/*
 * How an invalidation waits for its simulated completion.
 * SPIN:  busy-wait on the clock, as the kernel polls for CMD_SYNC: the
 *        caller's CPU is busy for the whole charged time (default).
 * BLOCK: clock_nanosleep() until the simulated completion, so a 2-core
 *        machine can simulate many more submitters than it has cores.
 * NONE:  do not wait and do not model queueing behind other callers
 *        (accounting only, deterministic; for unit tests).
 */
enum iofd_sim_wait {
	IOFD_SIM_WAIT_SPIN,
	IOFD_SIM_WAIT_BLOCK,
	IOFD_SIM_WAIT_NONE,
};

/**
 * struct iofd_sim_config - sim (and null) parameters. Copied at
 * iofd_backend_new(); start from iofd_sim_config_default().
 * @caps:        host SMMU capabilities used for validation (also null's).
 * @ioctl_ns:    ioctl entry + exit, on the caller's CPU (not serialised).
 * @cmd_ns:      per command on the host queue.
 * @sync_ns:     per host CMD_SYNC (one per IOFD_HOST_CHUNK commands).
 * @wait:        enum iofd_sim_wait.
 * @fail_at_cmd: fault injection: the @fail_at_cmd-th command (1-based,
 *               counted per host SMMU over all its viommus) fails; 0 = off.
 * @fail_errno:  EIO (that command is rejected like an illegal one),
 *               ETIMEDOUT (the host CMD_SYNC of its chunk times out), or
 *               any other errno (returned at that command, which and
 *               what follows are not issued; ENOENT: the vIOMMU is gone).
 * @hold:        tests: if set, called with @hold_arg on the issuing
 *               thread at the start of every invalidation, before
 *               anything is issued; a test blocks in it to keep a batch
 *               in flight while it arranges the rings.
 */
struct iofd_sim_config {
	struct cmdq_caps caps;
	uint32_t ioctl_ns;
	uint32_t cmd_ns;
	uint32_t sync_ns;
	enum iofd_sim_wait wait;
	uint64_t fail_at_cmd;
	int fail_errno;
	void (*hold)(void *arg);
	void *hold_arg;
};

/* iofd_sim_config_default() - the documented defaults (COST-MODEL.md). */
void iofd_sim_config_default(struct iofd_sim_config *cfg);

/*
 * Oracle: what the emulated SMMU caches for one viommu, in guest terms
 * (ASID, vSID, SSID, guest IOVA). The workload fills entries to model
 * translations the hardware may hold; the invalidations the sim executes
 * remove them with SMMUv3 semantics (docs/COST-MODEL.md "Oracle"). After a
 * guest CMD_SYNC has completed, a lookup of anything its invalidations
 * covered must miss.
 *
 * All functions: any thread (one mutex per viommu); the viommu must be a
 * sim viommu (else -EINVAL / false). Fill functions return 0, -ENOMEM.
 */
#define IOFD_SIM_NO_SSID UINT32_MAX

int iofd_sim_tlb_fill(struct iofd_viommu *v, uint16_t asid, uint64_t iova);
/*
 * A global (nG = 0) translation of @iova: every ASID hits it. TLBI_NH_VA
 * (any ASID), TLBI_NH_VAA, TLBI_NH_ALL and TLBI_NSNH_ALL remove it;
 * TLBI_NH_ASID does not (SMMUv3 4.4.2).
 */
int iofd_sim_tlb_fill_global(struct iofd_viommu *v, uint64_t iova);
int iofd_sim_cd_fill(struct iofd_viommu *v, uint32_t vsid, uint32_t ssid);
/* @ssid: IOFD_SIM_NO_SSID for a translation without PASID. */
int iofd_sim_atc_fill(struct iofd_viommu *v, uint32_t vsid, uint32_t ssid,
		      uint64_t addr);
/* A translation of @iova by @asid: hits its own entries and global ones. */
bool iofd_sim_tlb_lookup(struct iofd_viommu *v, uint16_t asid, uint64_t iova);
bool iofd_sim_cd_lookup(struct iofd_viommu *v, uint32_t vsid, uint32_t ssid);
bool iofd_sim_atc_lookup(struct iofd_viommu *v, uint32_t vsid, uint32_t ssid,
			 uint64_t addr);
/* iofd_sim_oracle_entries() - entries left in all three caches. */
uint64_t iofd_sim_oracle_entries(struct iofd_viommu *v);

/*
 * iofd_sim_issued() - copy the last commands the sim issued to the host
 * queue for @v (after vSID -> pSID and VMID rewriting), oldest first.
 * The sim keeps the last IOFD_SIM_LOG commands per viommu.
 * Return: how many were copied (<= @max).
 */
#define IOFD_SIM_LOG 256
uint32_t iofd_sim_issued(struct iofd_viommu *v, struct cmdq_cmd *out,
			 uint32_t max);

/* iofd_sim_vmid() - the VMID the sim gave @v (rewritten into TLBIs). */
uint16_t iofd_sim_vmid(const struct iofd_viommu *v);

#endif
