/* SPDX-License-Identifier: MIT */
/*
 * smmu-offload shared ring protocol, version 1: the memory layout a VMM and
 * the smmu-offload service share. The VMM-side (producer) API is in
 * smmu-offload/ring-prod.h.
 *
 * The full protocol is in docs/RING-PROTOCOL.md; this header is normative
 * for the layout. One ring carries the commands of one guest vSMMU command
 * queue. It lives in a memfd created by the VMM and sealed against shrinking
 * and growing before it is handed to the service.
 *
 * Layout (all fields little-endian; offsets pinned by static asserts):
 *   [0, hdr_size)                       struct smmu_ring_hdr
 *   [hdr_size, hdr_size + 16 << log2)   entries: raw SMMUv3 commands
 *
 * Indices are free-running uint32_t: entry i lives at slot i & (size - 1);
 * occupancy is prod - cons, computed modulo 2^32, and never exceeds size.
 *
 * Each cache line of the header has exactly one writer:
 *   line 0 (identity): the VMM, before handing the fd over; never again.
 *   line 1 (producer): the VMM.
 *   line 2 (service):  the service.
 */
#ifndef SMMU_OFFLOAD_RING_H
#define SMMU_OFFLOAD_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SMMU_RING_MAGIC 0x474e5253u /* "SRNG" */
#define SMMU_RING_VERSION_MAJOR 1
#define SMMU_RING_VERSION_MINOR 0
#define SMMU_RING_HDR_SIZE 256u /* hdr_size a v1 VMM writes */
#define SMMU_RING_HDR_SIZE_MAX 4096u /* largest hdr_size a service accepts */
#define SMMU_RING_ENTRY_SIZE 16u
#define SMMU_RING_MIN_LOG2 2u /* 4 entries */
#define SMMU_RING_MAX_LOG2 16u /* 65536 entries (1 MiB) */
#define SMMU_RING_CACHELINE 64u

/* Feature bits (hdr.features). v1 defines none; unknown bits are refused. */
#define SMMU_RING_FEATURES_KNOWN 0u

/* prod_flags: written by the VMM. */
/* The VMM is about to sleep on its completion eventfd (see ring_prod_wait). */
#define SMMU_RING_WANT_SIGNAL (1u << 0)

/* svc_flags: written by the service. */
/* The service is about to sleep: the VMM must ring the doorbell. */
#define SMMU_RING_NEED_WAKEUP (1u << 0)
/* The service stopped at err_index with err; see docs/RING-PROTOCOL.md. */
#define SMMU_RING_HALTED (1u << 1)

/*
 * err: SMMU_CMDQ_CONS.ERR values for command errors, then service-defined
 * protocol errors (never produced by real SMMU hardware).
 */
#define SMMU_RING_ERR_NONE 0u
#define SMMU_RING_ERR_CERROR_ILL 1u
#define SMMU_RING_ERR_CERROR_ABT 2u
#define SMMU_RING_ERR_CERROR_ATC_INV_SYNC 3u
#define SMMU_RING_ERR_PROTO 0x100u /* bad index or header from the VMM */
#define SMMU_RING_ERR_BACKEND 0x101u /* host error other than the above */
#define SMMU_RING_ERR_DETACHED 0x102u /* host vIOMMU gone (backend ENOENT) */

/**
 * struct smmu_ring_hdr - the shared header (256 bytes).
 * @magic:         SMMU_RING_MAGIC.
 * @version_major: SMMU_RING_VERSION_MAJOR; the service refuses another.
 * @version_minor: the VMM's minor version; any value is accepted.
 * @hdr_size:      offset of entry 0: SMMU_RING_HDR_SIZE in v1; a later
 *                 minor version may grow it (a multiple of 64 in
 *                 [SMMU_RING_HDR_SIZE, SMMU_RING_HDR_SIZE_MAX]); the
 *                 service locates entries with it and ignores the bytes
 *                 it does not know.
 * @entry_size:    SMMU_RING_ENTRY_SIZE.
 * @log2_entries:  ring size is 1 << log2_entries, within MIN/MAX_LOG2.
 * @features:      feature bits the VMM uses; unknown ones are refused.
 * @prod:          next index the VMM will write. Written by the VMM with a
 *                 release store (R_PROD) after the entries; read by the
 *                 service with an acquire load (A_PROD). Must stay within
 *                 [cons, cons + size] and never move back past an entry
 *                 the service may have read, else the ring halts (PROTO).
 * @prod_flags:    SMMU_RING_WANT_SIGNAL. Written by the VMM (plain store,
 *                 then a full barrier F_WANT before it re-reads cons and
 *                 svc_flags); read by the service after its full barrier
 *                 F_CONS that follows every cons or HALTED store.
 * @resume_seq:    the VMM stores halt_seq here (release, R_RESUME) to
 *                 acknowledge a halt and ask the service to go on; the
 *                 service reads it with an acquire load (A_RESUME), so an
 *                 entry the VMM rewrote before R_RESUME is seen.
 * @cons:          every entry before it has completed. Written by the
 *                 service with a release store (R_CONS) after the
 *                 invalidations completed and its copies of the entries
 *                 were taken; read by the VMM (A_CONS) before it reuses
 *                 slots or reports a CMD_SYNC complete.
 * @svc_flags:     SMMU_RING_NEED_WAKEUP, SMMU_RING_HALTED. Service-written.
 *                 NEED_WAKEUP: plain store, then a full barrier F_NEED
 *                 before the service re-reads prod; the VMM reads it after
 *                 its full barrier F_PUB that follows R_PROD. HALTED:
 *                 release store (R_HALT) after err, err_index, halt_seq
 *                 and cons; the VMM reads svc_flags with an acquire load
 *                 (A_HALT) before it reads those.
 * @err:           SMMU_RING_ERR_* of the current halt (NONE otherwise).
 * @err_index:     index of the entry that halted the ring (== cons).
 * @halt_seq:      incremented on every halt, before HALTED is set (R_HALT).
 *
 * The service never reads line 2 back (it keeps private copies; a VMM
 * may scribble on it and only confuses itself), except once when it
 * attaches a ring (cons, halt_seq and HALTED, to resume after a restart).
 */
struct smmu_ring_hdr {
	/* line 0: identity, written once by the VMM before hand-over */
	uint32_t magic;
	uint16_t version_major;
	uint16_t version_minor;
	uint32_t hdr_size;
	uint32_t entry_size;
	uint32_t log2_entries;
	uint32_t features;
	uint32_t reserved0[10];
	/* line 1: producer (VMM) */
	uint32_t prod;
	uint32_t prod_flags;
	uint32_t resume_seq;
	uint32_t reserved1[13];
	/* line 2: service */
	uint32_t cons;
	uint32_t svc_flags;
	uint32_t err;
	uint32_t err_index;
	uint32_t halt_seq;
	uint32_t reserved2[11];
	/* line 3: reserved for later minor versions */
	uint32_t reserved3[16];
};

/* The layout checks work for C11 and C++11 VMMs alike. */
#ifdef __cplusplus
#define SMMU_RING_STATIC_ASSERT(e, msg) static_assert(e, msg)
#else
#define SMMU_RING_STATIC_ASSERT(e, msg) _Static_assert(e, msg)
#endif

/* One ring entry: a raw SMMUv3 command, two little-endian 64-bit words. */
struct smmu_ring_entry {
	uint64_t le[2];
};

SMMU_RING_STATIC_ASSERT(sizeof(struct smmu_ring_hdr) == SMMU_RING_HDR_SIZE,
			"hdr");
SMMU_RING_STATIC_ASSERT(offsetof(struct smmu_ring_hdr, magic) == 0, "magic");
SMMU_RING_STATIC_ASSERT(offsetof(struct smmu_ring_hdr, version_major) == 4,
			"vmaj");
SMMU_RING_STATIC_ASSERT(offsetof(struct smmu_ring_hdr, version_minor) == 6,
			"vmin");
SMMU_RING_STATIC_ASSERT(offsetof(struct smmu_ring_hdr, hdr_size) == 8,
			"hdr_size");
SMMU_RING_STATIC_ASSERT(offsetof(struct smmu_ring_hdr, entry_size) == 12,
			"esize");
SMMU_RING_STATIC_ASSERT(offsetof(struct smmu_ring_hdr, log2_entries) == 16,
			"log2");
SMMU_RING_STATIC_ASSERT(offsetof(struct smmu_ring_hdr, features) == 20,
			"features");
SMMU_RING_STATIC_ASSERT(offsetof(struct smmu_ring_hdr, prod) == 64, "prod");
SMMU_RING_STATIC_ASSERT(offsetof(struct smmu_ring_hdr, prod_flags) == 68,
			"pflags");
SMMU_RING_STATIC_ASSERT(offsetof(struct smmu_ring_hdr, resume_seq) == 72,
			"resume");
SMMU_RING_STATIC_ASSERT(offsetof(struct smmu_ring_hdr, cons) == 128, "cons");
SMMU_RING_STATIC_ASSERT(offsetof(struct smmu_ring_hdr, svc_flags) == 132,
			"sflags");
SMMU_RING_STATIC_ASSERT(offsetof(struct smmu_ring_hdr, err) == 136, "err");
SMMU_RING_STATIC_ASSERT(offsetof(struct smmu_ring_hdr, err_index) == 140,
			"eidx");
SMMU_RING_STATIC_ASSERT(offsetof(struct smmu_ring_hdr, halt_seq) == 144,
			"hseq");
SMMU_RING_STATIC_ASSERT(sizeof(struct smmu_ring_entry) == SMMU_RING_ENTRY_SIZE,
			"ent");

/*
 * Bytes of the memfd for a ring of 1 << @log2_entries entries behind a
 * header of @hdr_size bytes.
 */
static inline size_t smmu_ring_bytes_hdr(uint32_t hdr_size,
					 uint32_t log2_entries)
{
	return (size_t)hdr_size +
	       ((size_t)SMMU_RING_ENTRY_SIZE << log2_entries);
}

/* Bytes of the memfd for a v1 ring of 1 << @log2_entries entries. */
static inline size_t smmu_ring_bytes(uint32_t log2_entries)
{
	return smmu_ring_bytes_hdr(SMMU_RING_HDR_SIZE, log2_entries);
}

#ifdef __cplusplus
}
#endif

#endif
