/* SPDX-License-Identifier: MIT */
/*
 * smmu-offload protocol mode 2: the software vCMDQ. The shared memory a
 * VMM and the service share to present an NVIDIA Tegra241 CMDQV to an
 * unmodified guest (its stock Linux tegra241-cmdqv driver). Mode 1 is the
 * ring (smmu-offload/ring.h). The full protocol is docs/RING-PROTOCOL.md,
 * "Mode 2"; this header is normative for the layout.
 *
 * The register-page memfd (SMMU_VCMDQ_FILE_SIZE bytes, sealed against
 * shrinking and growing) holds two 64 KiB halves:
 *
 *   [0x00000, 0x10000)  VINTF0 page0 exactly as Tegra241 lays it out: the
 *                       VMM maps this half into the guest at the VINTF0
 *                       page0 address (CMDQV window + 0x30000); logical
 *                       queue l at +0x80 * l (struct smmu_vcmdq_regs).
 *   [0x10000, 0x20000)  the service page (struct smmu_vcmdq_svc): the
 *                       VMM maps it for itself, never into the guest.
 *
 * The guest sees only Tegra241 registers, so nothing in page0 can carry a
 * version: the mode, its version and its features are agreed on the
 * control plane when the VMM attaches the page (SMMU_VCMDQ_MODE and
 * SMMU_VCMDQ_VERSION in the attach request; the service refuses another
 * major version and unknown feature bits, as for the ring).
 *
 * Who writes what (per logical queue; "guest" = the guest driver storing
 * straight into the mapped page, no VMM in between):
 *   CONS     the service (index/wrap and ERR); the guest writes 0 while
 *            the queue is disabled (queue init), which the service accepts.
 *   PROD     the guest.
 *   CONFIG   the guest (bit0 EN).
 *   STATUS   the service (bit0 ENABLED follows EN).
 *   GERROR   the service (toggles an error bit to raise it).
 *   GERRORN  the guest (copies GERROR to acknowledge).
 *   BASE     page1, trapped by the VMM, which forwards every write to the
 *            service (ring_vcmdq_set_base()); not in this page.
 * The service keeps private copies of every value it writes and never
 * trusts what it reads back (it only compares STATUS, GERROR and CONS
 * with its copies each pass, and stores its value again where the guest
 * wrote over it: they are read-only on hardware); every value the guest
 * writes is read once per pass and checked.
 */
#ifndef SMMU_OFFLOAD_VCMDQ_H
#define SMMU_OFFLOAD_VCMDQ_H

#include <stddef.h>
#include <stdint.h>

#include <smmu-offload/ring.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Control-plane agreement (not visible to the guest). */
#define SMMU_VCMDQ_MODE 2u /* attach mode: 1 = ring, 2 = vCMDQ */
#define SMMU_VCMDQ_VERSION_MAJOR 1u
#define SMMU_VCMDQ_VERSION_MINOR 0u
/* The version word of an attach request: major in 31:16, minor in 15:0. */
#define SMMU_VCMDQ_VERSION_WORD(major, minor) \
	(((uint32_t)(major) << 16) | ((uint32_t)(minor)&0xffffu))
#define SMMU_VCMDQ_VERSION                                \
	SMMU_VCMDQ_VERSION_WORD(SMMU_VCMDQ_VERSION_MAJOR, \
				SMMU_VCMDQ_VERSION_MINOR)
/* Feature bits of the attach request. 1.0 defines none. */
#define SMMU_VCMDQ_FEATURES_KNOWN 0u

/* Memfd layout. */
#define SMMU_VCMDQ_PAGE0_SIZE 0x10000u /* VINTF page0 aperture: 64 KiB */
#define SMMU_VCMDQ_SVC_OFFSET 0x10000u
#define SMMU_VCMDQ_FILE_SIZE 0x20000u
#define SMMU_VCMDQ_QUEUE_STRIDE 0x80u
/* Logical queues per VINTF the service supports (LVCMDQ_ERR_MAP: 128 bits). */
#define SMMU_VCMDQ_MAX_QUEUES 128u

/* Per-queue register offsets from page0 + 0x80 * lidx (facts 1.4). */
#define SMMU_VCMDQ_CONS 0x00u
#define SMMU_VCMDQ_PROD 0x04u
#define SMMU_VCMDQ_CONFIG 0x08u
#define SMMU_VCMDQ_STATUS 0x0cu
#define SMMU_VCMDQ_GERROR 0x10u
#define SMMU_VCMDQ_GERRORN 0x14u

/* PROD/CONS: index in bits log2size-1:0, wrap flag in bit log2size. */
#define SMMU_VCMDQ_IDX_FIELD 0x000fffffu /* bits 19:0 */
#define SMMU_VCMDQ_CONS_ERR_SHIFT 24
#define SMMU_VCMDQ_CONS_ERR_MASK (0x7fu << SMMU_VCMDQ_CONS_ERR_SHIFT)

/* CONS.ERR codes (the SMMU_CMDQ_CONS.ERR values). */
#define SMMU_VCMDQ_CERROR_NONE 0u
#define SMMU_VCMDQ_CERROR_ILL 1u
#define SMMU_VCMDQ_CERROR_ABT 2u
#define SMMU_VCMDQ_CERROR_ATC_INV_SYNC 3u
/* Tegra-only, never produced by the service; Linux treats it as ILL. */
#define SMMU_VCMDQ_CERROR_ILL_ACCESS 4u

#define SMMU_VCMDQ_CONFIG_EN (1u << 0)
#define SMMU_VCMDQ_STATUS_ENABLED (1u << 0)

/* GERROR / GERRORN bits: an error is active while the two differ. */
#define SMMU_VCMDQ_GERROR_CMDQ_ERR (1u << 0)
#define SMMU_VCMDQ_GERROR_CONS_DRAM_WR_ABT (1u << 1) /* never raised */
#define SMMU_VCMDQ_GERROR_CMDQ_INIT_ERR (1u << 2)

/* Queue BASE (page1 + 0x80 * lidx, 64 bits): address 47:5, LOG2SIZE 4:0. */
#define SMMU_VCMDQ_BASE_LOG2SIZE_MASK 0x1fULL
#define SMMU_VCMDQ_BASE_ADDR_MASK 0x0000ffffffffffe0ULL
#define SMMU_VCMDQ_MAX_LOG2 19u /* 2^19 entries, 8 MiB */

/* Accepted opcodes (word0 7:0) on a guest-owned VINTF (facts 2.4). */
#define SMMU_VCMDQ_OP_TLBI_NH_ASID 0x11u
#define SMMU_VCMDQ_OP_TLBI_NH_VA 0x12u
#define SMMU_VCMDQ_OP_ATC_INV 0x40u
#define SMMU_VCMDQ_OP_CMD_SYNC 0x46u
/* CMD_SYNC completion signal, word0 13:12; only NONE is accepted. */
#define SMMU_VCMDQ_SYNC_CS_SHIFT 12
#define SMMU_VCMDQ_SYNC_CS_MASK (3ULL << SMMU_VCMDQ_SYNC_CS_SHIFT)
#define SMMU_VCMDQ_SYNC_CS_NONE 0u

/**
 * struct smmu_vcmdq_regs - one logical VCMDQ in VINTF page0 (0x80 bytes).
 * @cons:    index/wrap (bits log2size:0) and ERR (30:24). Service-written
 *           with release stores (R_CONS) after the commands before it
 *           completed (and, for ERR, before GERROR); the guest reads it
 *           (its readl() is the acquire, A_CONS). The guest may store 0
 *           while the queue is disabled.
 * @prod:    index/wrap the guest will write next. Guest-written after its
 *           entries (dma_wmb + relaxed store: the release G_PROD); the
 *           service loads it once per pass with acquire A_PROD. Bits
 *           above the wrap bit, a value more than a queue ahead of CONS or
 *           behind what the service fetched: CONS.ERR = ABT at CONS.
 * @config:  bit0 EN. Guest-written (writel: release G_CONFIG after its
 *           PROD/CONS/GERRORN writes); read by the service with acquire
 *           A_CONFIG. Other bits are ignored.
 * @status:  bit0 ENABLED. Service-written, release R_STATUS (CONS and
 *           GERROR are stored before it); the guest polls it.
 * @gerror:  bit0 CMDQ_ERR, bit2 CMDQ_INIT_ERR. Service-written, release
 *           R_GERROR after CONS.ERR.
 * @gerrorn: guest-written acknowledgement (writel after the skip routine
 *           rewrote the entry: release G_ACK); the service loads it with
 *           acquire A_ACK, so the rewritten entry is seen.
 */
struct smmu_vcmdq_regs {
	uint32_t cons;
	uint32_t prod;
	uint32_t config;
	uint32_t status;
	uint32_t gerror;
	uint32_t gerrorn;
	uint32_t reserved[26];
};

/**
 * struct smmu_vcmdq_svc - the service page (first 64 bytes used; VMM and
 * service only, never mapped into the guest).
 * @err_map: bit l of the 128-bit map (word l / 32, bit l % 32) is set
 *           while logical queue l has an unacknowledged command error
 *           (what the VMM reports in LVCMDQ_ERR_MAP and, as bit0, in
 *           VINTF_ERR_MAP). Service-written, relaxed stores before R_ERR.
 * @err_seq: incremented (release R_ERR) after each new command error is
 *           in @err_map, GERROR and CONS: a VMM that sees it change
 *           (acquire A_ERR) raises the CMDQV interrupt.
 * The service never reads this page back.
 */
struct smmu_vcmdq_svc {
	uint32_t err_map[4];
	uint32_t err_seq;
	uint32_t reserved[11];
};

#ifdef __cplusplus
#define SMMU_VCMDQ_STATIC_ASSERT(e, msg) static_assert(e, msg)
#else
#define SMMU_VCMDQ_STATIC_ASSERT(e, msg) _Static_assert(e, msg)
#endif

SMMU_VCMDQ_STATIC_ASSERT(sizeof(struct smmu_vcmdq_regs) ==
				 SMMU_VCMDQ_QUEUE_STRIDE,
			 "regs stride");
SMMU_VCMDQ_STATIC_ASSERT(offsetof(struct smmu_vcmdq_regs, cons) ==
				 SMMU_VCMDQ_CONS,
			 "cons");
SMMU_VCMDQ_STATIC_ASSERT(offsetof(struct smmu_vcmdq_regs, prod) ==
				 SMMU_VCMDQ_PROD,
			 "prod");
SMMU_VCMDQ_STATIC_ASSERT(offsetof(struct smmu_vcmdq_regs, config) ==
				 SMMU_VCMDQ_CONFIG,
			 "config");
SMMU_VCMDQ_STATIC_ASSERT(offsetof(struct smmu_vcmdq_regs, status) ==
				 SMMU_VCMDQ_STATUS,
			 "status");
SMMU_VCMDQ_STATIC_ASSERT(offsetof(struct smmu_vcmdq_regs, gerror) ==
				 SMMU_VCMDQ_GERROR,
			 "gerror");
SMMU_VCMDQ_STATIC_ASSERT(offsetof(struct smmu_vcmdq_regs, gerrorn) ==
				 SMMU_VCMDQ_GERRORN,
			 "gerrorn");
SMMU_VCMDQ_STATIC_ASSERT(SMMU_VCMDQ_MAX_QUEUES *SMMU_VCMDQ_QUEUE_STRIDE <=
				 SMMU_VCMDQ_PAGE0_SIZE,
			 "queues fit page0");
SMMU_VCMDQ_STATIC_ASSERT(sizeof(struct smmu_vcmdq_svc) == 64, "svc");
SMMU_VCMDQ_STATIC_ASSERT(offsetof(struct smmu_vcmdq_svc, err_map) == 0,
			 "err_map");
SMMU_VCMDQ_STATIC_ASSERT(offsetof(struct smmu_vcmdq_svc, err_seq) == 16,
			 "err_seq");
SMMU_VCMDQ_STATIC_ASSERT(SMMU_VCMDQ_SVC_OFFSET + 64 <= SMMU_VCMDQ_FILE_SIZE,
			 "svc fits");
SMMU_VCMDQ_STATIC_ASSERT(((SMMU_VCMDQ_IDX_FIELD + 1) >>
			  (SMMU_VCMDQ_MAX_LOG2 + 1)) == 1,
			 "index field holds the largest queue's index + wrap");

/* The BASE value for a queue at @addr of 1 << @log2 entries. */
static inline uint64_t smmu_vcmdq_base(uint64_t addr, uint32_t log2)
{
	return (addr & SMMU_VCMDQ_BASE_ADDR_MASK) |
	       ((uint64_t)log2 & SMMU_VCMDQ_BASE_LOG2SIZE_MASK);
}

/* The registers of logical queue @lidx in a mapping of the memfd. */
static inline struct smmu_vcmdq_regs *smmu_vcmdq_regs(void *map,
						      unsigned int lidx)
{
	return (struct smmu_vcmdq_regs *)((char *)map +
					  SMMU_VCMDQ_QUEUE_STRIDE * lidx);
}

/* The service page in a mapping of the memfd. */
static inline struct smmu_vcmdq_svc *smmu_vcmdq_svc(void *map)
{
	return (struct smmu_vcmdq_svc *)((char *)map + SMMU_VCMDQ_SVC_OFFSET);
}

#ifdef __cplusplus
}
#endif

#endif
