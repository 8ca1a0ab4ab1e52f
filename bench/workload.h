/* SPDX-License-Identifier: MIT */
/*
 * smmu-bench workloads: what a guest's SMMUv3 driver writes to its command
 * queue, one PROD write (a "batch") at a time, and the oracle entries
 * that prove the batch's invalidations took effect.
 *
 * Kinds:
 *   strict-unmap  per unmap: TLBI_NH_VA (range form, 1..16 pages) + SYNC
 *   lazy-flush    the flush queue: TLBI_NH_ASID + SYNC
 *   mixed         70% strict-unmap, 20% lazy-flush, 10% a context switch
 *                 (CFGI_CD; SYNC; TLBI_NH_ASID; SYNC in one batch)
 *   storm         process teardown: every batch tears down one address
 *                 space, CFGI_CD(vSID, SSID); SYNC; TLBI_NH_ASID; SYNC,
 *                 cycling over 1023 ASIDs/SSIDs per stream and over the
 *                 VM's devices. The guest SYNC between the CFG and the
 *                 TLB class is an ordering point: neither the service nor
 *                 qemu-batched may put both under one host sync.
 *   trace:FILE    a recorded guest trace (docs/TRACES.md; .xz is read
 *                 through `xz -dc`), batch by batch, looped. Commands the
 *                 VMM keeps (CFGI_STE, CFGI_STE_RANGE/CFGI_ALL) and hints
 *                 (PREFETCH_*) are skipped, as a VMM does; CMD_SYNC kept.
 *
 * A stream is one simulated vCPU's sequence of batches. Streams of one VM
 * must not disturb each other's oracle checks, so every stream gets its
 * own ASID space and its own SSID: generators use ASID 1 + stream and
 * SSID = stream; traces keep the low 12 ASID bits and put the stream in
 * the top 4 (hence at most WL_MAX_STREAMS_TRACE streams per VM) and the
 * stream into the low 4 SSID bits. storm uses ASID = SSID = stream << 10 |
 * (1 + teardown % 1023), within the sim's 16 ASID and 20 SSID bits. VMs need no remapping: each has its own
 * vIOMMU (VMID) and its own vSID namespace.
 *
 * Thread context: a struct wl and its trace are read-only after
 * wl_init(); a struct wl_stream is owned by the thread that runs it.
 */
#ifndef SMMU_OFFLOAD_BENCH_WORKLOAD_H
#define SMMU_OFFLOAD_BENCH_WORKLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "cmdq/cmdq.h"
#include "iommufd/iofd.h"

#define WL_MAX_BATCH 64 /* longer trace batches are split */
#define WL_MAX_STREAMS 64 /* per VM, generators */
#define WL_MAX_STREAMS_TRACE 16 /* per VM, traces */
#define WL_MAX_FILLS 64 /* oracle entries pending per stream */
#define WL_MAX_SIDS 16 /* distinct vSIDs a trace may name */
#define WL_GEN_VSID 0x8 /* the generators' first device (vSID) */
#define WL_STORM_SPACES 1023 /* address spaces per storm stream */

enum wl_kind {
	WL_STRICT,
	WL_LAZY,
	WL_MIXED,
	WL_STORM,
	WL_TRACE,
};

/* A trace loaded in memory: batch b is cmds[start[b] .. start[b + 1]). */
struct wl_trace {
	struct cmdq_cmd *cmds;
	uint32_t *start;
	uint32_t nbatch;
	uint64_t ncmds; /* kept: forwardable + SYNC */
	uint64_t skipped; /* VMM-only and hint commands dropped */
	uint64_t file_batches; /* BATCH lines read */
};

struct wl {
	enum wl_kind kind;
	const char *name; /* as given on the command line */
	struct wl_trace trace;
	uint32_t sids[WL_MAX_SIDS]; /* vSIDs each VM must attach */
	unsigned int nsids;
};

/* One guest PROD write. */
struct wl_batch {
	struct cmdq_cmd cmd[WL_MAX_BATCH];
	uint32_t n; /* commands (forwardable + SYNC) */
	uint32_t nfwd; /* forwardable ones */
	int last_sync; /* index of the last CMD_SYNC, -1 if none */
};

struct wl_fill {
	uint8_t kind; /* 0 TLB (asid, addr), 1 CD (sid, ssid) */
	uint16_t asid;
	uint32_t sid, ssid;
	uint64_t addr;
};

struct wl_stream {
	const struct wl *w;
	uint64_t rng;
	uint32_t pos; /* next trace batch; storm: teardowns so far */
	unsigned int stream;
	struct wl_fill fill[WL_MAX_FILLS];
	unsigned int nfill;
};

/**
 * wl_init() - parse @spec ("strict-unmap", "lazy-flush", "mixed", "storm",
 * "trace:FILE") and load the trace. Generators get one device (vSID
 * WL_GEN_VSID) per VM; see wl_set_devices().
 * @max_batches: traces: load at most this many batches (0 = all).
 * @err:         on failure, a static or @errbuf message.
 * Return: 0, -EINVAL (unknown workload, malformed trace, empty trace),
 * -ENOENT, -ENOMEM, -EIO.
 */
int wl_init(struct wl *w, const char *spec, uint64_t max_batches, char *errbuf,
	    size_t errlen);
void wl_free(struct wl *w);

/**
 * wl_set_devices() - generators: attach @n devices per VM, vSIDs
 * WL_GEN_VSID .. WL_GEN_VSID + @n - 1 (storm spreads its CFGI_CDs over
 * them; the other generators use the first).
 * Return: 0, -EINVAL (@n is 0 or > WL_MAX_SIDS, or @w is a trace, whose
 * devices are the ones it names).
 */
int wl_set_devices(struct wl *w, unsigned int n);

/* wl_mix64() - splitmix64's finaliser: a well-mixed hash of @z. Pure. */
uint64_t wl_mix64(uint64_t z);

/* Streams per VM the workload supports. */
unsigned int wl_max_streams(const struct wl *w);

/**
 * wl_stream_init() - stream @stream (0-based, < wl_max_streams()) of a
 * VM; @global is its index over all VMs (spreads trace start points),
 * @nglobal the number of streams in total.
 */
void wl_stream_init(struct wl_stream *s, const struct wl *w, uint64_t seed,
		    unsigned int stream, uint64_t global, uint64_t nglobal);

/* wl_next() - the stream's next batch (always n >= 1). */
void wl_next(struct wl_stream *s, struct wl_batch *b);

/**
 * wl_fill() - put into @v's oracle (sim backend) one entry that each
 * forwardable TLBI/CFGI_CD command of @b must remove, and remember them
 * for wl_check(). Entries that do not fit are not filled.
 * Return: 0 or the oracle's -errno.
 */
int wl_fill(struct wl_stream *s, struct iofd_viommu *v,
	    const struct wl_batch *b);

/**
 * wl_check() - after a CMD_SYNC completed that follows every batch filled
 * so far: count the remembered entries still present (stale), forget them.
 * @ret_checked: entries looked up.
 */
unsigned int wl_check(struct wl_stream *s, struct iofd_viommu *v,
		      unsigned int *ret_checked);

#endif
