/* SPDX-License-Identifier: MIT */
/*
 * ring_vcmdq: the service side of protocol mode 2, a software Tegra241
 * CMDQV (smmu-offload/vcmdq.h, docs/RING-PROTOCOL.md "Mode 2"). The guest
 * driver writes straight into the register page and into its queue in
 * guest RAM, with no VMM in between: every value it writes is read once
 * per pass into a local and checked, every entry is copied out once
 * before it is validated, and any violation halts that queue only, with
 * the architectural error (CONS.ERR and GERROR), never the caller.
 *
 * Positions (cons, fetch, prod, the upto/index arguments) are free-running
 * uint32_t counters, as in ring_cons; the guest-visible PROD/CONS value of
 * position p is p & (2 * size - 1) (index + wrap bit), which is exact
 * because 2 * size divides 2^32.
 *
 * Per queue state machine (ring_vcmdq_poll() drives it):
 *   OFF      STATUS 0. CONFIG.EN 1, the VMM's gate open and no failed
 *            attempt for this EN: latch BASE; a base outside guest RAM,
 *            misaligned, too large or with reserved bits toggles
 *            GERROR.CMDQ_INIT_ERR (once) and stays OFF; else ON (or
 *            HALTED if GERROR.CMDQ_ERR is still unacknowledged), starting
 *            at the current CONS, STATUS 1.
 *   ON       fetch up to PROD; CONFIG.EN 0 -> DRAINING (or OFF if nothing
 *            is in flight).
 *   DRAINING nothing is fetched; completions still advance CONS; STATUS
 *            stays 1 until the last one, then OFF. EN 1 again -> ON.
 *   HALTED   CONS on the failing entry with ERR; GERROR.CMDQ_ERR active.
 *            GERRORN acknowledged -> ERR cleared, ON, the entry at CONS is
 *            fetched again. EN 0 -> OFF (the error stays until acked).
 * EN changes never clear PROD, CONS or GERROR.
 *
 * Thread context: a struct ring_vcmdq and its gmem table are owned by one
 * thread (the worker of the vSMMU's host SMMU); no function is
 * thread-safe for the same object, except ring_vcmdq_view_read() (any
 * thread: relaxed copies the owner publishes). Nothing here logs, and nothing
 * allocates after ring_vcmdq_map() (which maps the page).
 */
#ifndef SMMU_OFFLOAD_RING_VCMDQ_CONS_H
#define SMMU_OFFLOAD_RING_VCMDQ_CONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <smmu-offload/vcmdq.h>

#include "ring/gmem.h"

enum ring_vcmdq_state {
	RING_VCMDQ_OFF,
	RING_VCMDQ_ON,
	RING_VCMDQ_DRAINING,
	RING_VCMDQ_HALTED,
};

/* Events accumulated for ring_vcmdq_take_events(). */
/* A command error was published: raise the CMDQV interrupt. */
#define RING_VCMDQ_EV_ERROR (1u << 0)
/* A queue changed state (the caller may update its set of active queues). */
#define RING_VCMDQ_EV_STATE (1u << 1)

/**
 * struct ring_vcmdq_view - what a queue looks like, for other threads
 * (statistics, List): the consumer's own copies, never read back from the
 * page or the queue the guest can write. Written by the owner with relaxed
 * atomic stores, each before the shared store it mirrors (a guest that saw
 * a CONS or STATUS store finds it here); read with ring_vcmdq_view_read().
 * Fields may come from different moments.
 * @state:    enum ring_vcmdq_state.
 * @err:      CONS.ERR the service shows (NONE unless HALTED).
 * @prod:     the last PROD read and accepted (guest form: index and wrap
 *            bit); a PROD refused with ABT is not taken.
 * @cons:     the last CONS stored (guest form, without ERR).
 * @base:     the last BASE the VMM forwarded (valid when @base_set).
 * @base_set, @ready: as in struct ring_vcmdq_q.
 */
struct ring_vcmdq_view {
	uint32_t state, err, prod, cons;
	uint64_t base;
	uint8_t base_set, ready;
};

/**
 * struct ring_vcmdq_q - one logical queue. Owned by the worker.
 * @regs:      its registers in the shared page (hostile memory).
 * @ents:      the guest queue (hostile memory); NULL while OFF.
 * @pin:       gmem pin of the queue memory, -1 while OFF.
 * @state:     enum ring_vcmdq_state.
 * @base:      the last BASE the VMM forwarded; latched on enable.
 * @base_set:  the VMM forwarded one.
 * @ready:     the VMM's gate (CMDQ_ALLOC.ALLOCATED, VINTF and CMDQV
 *             enabled); closed: the queue is forced OFF.
 * @init_failed: an enable attempt failed for the current EN = 1; no new
 *             attempt until EN goes to 0 or the VMM changes base or gate.
 * @log2:      latched LOG2SIZE; @size = 1 << log2; @wmask = 2 * size - 1.
 * @cons:      completed position (what CONS shows).
 * @fetch:     next position to copy out; cons <= fetch <= prod.
 * @fetch_hi:  highest fetch of this generation (a halt rewinds @fetch;
 *             completions up to @fetch_hi are still legal, and clamped).
 * @prod:      last PROD read and validated.
 * @stop_pending, @stop, @stop_err: a halt waiting for cons to reach @stop
 *             (entries before it are in flight); fetch never passes it.
 * @err:       CONS.ERR shown while HALTED.
 * @gerror:    private copy of GERROR (the shared word is never read back).
 * @gen:       generation, bumped whenever in-flight work becomes void
 *             (halt published, queue off); stale completions are ignored.
 * @view:      the copies other threads read (struct ring_vcmdq_view).
 */
struct ring_vcmdq_q {
	struct smmu_vcmdq_regs *regs;
	const struct smmu_ring_entry *ents;
	int pin;
	enum ring_vcmdq_state state;
	uint64_t base;
	bool base_set;
	bool ready;
	bool init_failed;
	uint32_t log2, size, wmask;
	uint32_t cons, fetch, fetch_hi, prod;
	bool stop_pending;
	uint32_t stop, stop_err;
	uint32_t err;
	uint32_t gerror;
	uint32_t gen;
	struct ring_vcmdq_view view;
};

/**
 * struct ring_vcmdq - one VINTF: the register page and its queues.
 * @map, @map_len: the memfd mapping (hostile memory).
 * @svc:     the service page in @map.
 * @gmem:    the guest memory table (not owned; outlives this object).
 * @nq:      logical queues served (1..SMMU_VCMDQ_MAX_QUEUES).
 * @err_map: private copy of svc->err_map.
 * @err_seq: private copy of svc->err_seq.
 * @events:  RING_VCMDQ_EV_* not yet taken.
 * @q:       the queues; only the first @nq are used.
 */
struct ring_vcmdq {
	uint8_t *map;
	size_t map_len;
	struct smmu_vcmdq_svc *svc;
	struct ring_gmem *gmem;
	unsigned int nq;
	uint32_t err_map[4];
	uint32_t err_seq;
	uint32_t events;
	struct ring_vcmdq_q q[SMMU_VCMDQ_MAX_QUEUES];
};

/**
 * ring_vcmdq_mode_check() - may a VMM attach with this mode version word
 * (SMMU_VCMDQ_VERSION_WORD) and feature bits?
 * Return: 0; -EPROTONOSUPPORT (another major); -EOPNOTSUPP (unknown
 * feature bits). Any minor version is accepted.
 */
int ring_vcmdq_mode_check(uint32_t version, uint32_t features);

/**
 * ring_vcmdq_map() - check the register-page memfd and map it.
 * @memfd:  not consumed.
 * @nq:     logical queues the VMM exposes (PARAM), 1..128.
 * @gmem:   the vSMMU's guest memory table.
 * @v:      filled on success; every queue OFF, gate closed.
 *
 * The private GERROR copies and err_seq are taken from the page, so a
 * service that re-attaches a page after a restart goes on where the old
 * one stopped (a queue still enabled comes back on the next poll, at
 * CONS, halted if its error is unacknowledged).
 *
 * Return: 0, -EINVAL (@nq, or not a memfd), -EBADF (not a regular file),
 * -EPERM (F_SEAL_SHRINK or F_SEAL_GROW missing), -EMSGSIZE (size is not
 * SMMU_VCMDQ_FILE_SIZE), or an mmap errno.
 */
int ring_vcmdq_map(int memfd, unsigned int nq, struct ring_gmem *gmem,
		   struct ring_vcmdq *v);

/* ring_vcmdq_unmap() - drop every pin and unmap; @v may be zeroed. */
void ring_vcmdq_unmap(struct ring_vcmdq *v);

/**
 * ring_vcmdq_set_base() - the guest wrote BASE of queue @l (the VMM traps
 * page1 and forwards the 64-bit value). Takes effect at the next enable
 * (changes while enabled are ignored until then); clears a failed
 * attempt, so an enable waiting with EN = 1 is retried. The VMM must
 * complete this call before it resumes the vCPU, so the guest's later
 * CONFIG.EN store cannot overtake it.
 * Return: 0 or -EINVAL (@l).
 */
int ring_vcmdq_set_base(struct ring_vcmdq *v, unsigned int l, uint64_t base);

/**
 * ring_vcmdq_set_ready() - the VMM's gate for queue @l: open while
 * CMDQ_ALLOC(q).ALLOCATED, VINTF0 EN and CMDQV EN are all set. Closing it
 * forces the queue OFF at once (STATUS 0, in-flight work void).
 * Return: 0 or -EINVAL (@l).
 */
int ring_vcmdq_set_ready(struct ring_vcmdq *v, unsigned int l, bool ready);

/**
 * ring_vcmdq_poll() - one pass of queue @l's state machine: read CONFIG,
 * GERRORN and (when ON) PROD once each, act on them, and report how many
 * entries are ready to fetch. Also puts back STATUS, GERROR and (unless
 * OFF) CONS where the guest stored over them.
 * @ret_avail: entries ready (0 unless ON).
 * Return: 0 or -EINVAL (@l). Guest errors are not errors of the call:
 * they halt the queue (see ring_vcmdq_state(), ring_vcmdq_take_events()).
 */
int ring_vcmdq_poll(struct ring_vcmdq *v, unsigned int l, uint32_t *ret_avail);

/**
 * struct ring_vcmdq_span - what one fetch copied.
 * @first: position of dst[0].
 * @n:     entries copied and accepted.
 * @gen:   generation to pass to complete/halt for these entries.
 */
struct ring_vcmdq_span {
	uint32_t first;
	uint32_t n;
	uint32_t gen;
};

/**
 * ring_vcmdq_fetch() - copy up to @budget entries at the fetch position
 * out of the guest queue into @dst, then check each copy's opcode
 * (TLBI_NH_ASID, TLBI_NH_VA, ATC_INV, CMD_SYNC with CS = NONE). The
 * first other entry stops the fetch before it and halts the queue with
 * CONS.ERR = ILL there, published as soon as every entry before it is
 * completed. Bounded by @budget and by the last poll's PROD.
 * Return: the number of entries accepted (@ret_span->n).
 */
uint32_t ring_vcmdq_fetch(struct ring_vcmdq *v, unsigned int l,
			  struct smmu_ring_entry *dst, uint32_t budget,
			  struct ring_vcmdq_span *ret_span);

/**
 * ring_vcmdq_complete() - every entry of generation @gen before position
 * @upto has taken effect on the host: store CONS (release R_CONS). Call
 * it for every batch, SYNC or not: the guest spins on a full queue until
 * CONS moves. Completions past a pending halt are clamped to it.
 * Return: 0; -ESTALE (@gen is over: the queue halted or went off since
 * the fetch; nothing is stored); -EINVAL (@l, or @upto outside
 * [cons, highest fetch]).
 */
int ring_vcmdq_complete(struct ring_vcmdq *v, unsigned int l, uint32_t gen,
			uint32_t upto);

/**
 * ring_vcmdq_halt() - an error found after the fetch: stop queue @l at
 * position @index with CONS.ERR @err (SMMU_VCMDQ_CERROR_ILL for a backend
 * failure of command @index, SMMU_VCMDQ_CERROR_ATC_INV_SYNC at the
 * CMD_SYNC for an ATC invalidation timeout). Entries fetched after @index
 * are dropped (fetched again after the acknowledgement). Published once
 * cons reaches @index (report completions before it with
 * ring_vcmdq_complete(), before or after this call). The earliest halt
 * wins.
 * Return: 0; -ESTALE (@gen over); -EINVAL (@l, @err not ILL, ABT or
 * ATC_INV_SYNC, or @index not a fetched entry).
 */
int ring_vcmdq_halt(struct ring_vcmdq *v, unsigned int l, uint32_t gen,
		    uint32_t index, uint32_t err);

/**
 * ring_vcmdq_rewind() - give back entries of generation @gen fetched and
 * not completed, from position @pos on: they are fetched (and checked)
 * again. A halt pending at or after @pos is dropped with them (it is
 * found again when its entry is fetched again). For a consumer that took
 * entries it could not use yet (a batch that failed before them, an
 * ordering point).
 * Return: 0; -ESTALE (@gen over); -EINVAL (@l, or @pos outside
 * [cons, fetch]).
 */
int ring_vcmdq_rewind(struct ring_vcmdq *v, unsigned int l, uint32_t gen,
		      uint32_t pos);

/* ring_vcmdq_take_events() - RING_VCMDQ_EV_* since the last call. */
uint32_t ring_vcmdq_take_events(struct ring_vcmdq *v);

/* ring_vcmdq_state() - queue @l's state (OFF for a bad @l). */
enum ring_vcmdq_state ring_vcmdq_state(const struct ring_vcmdq *v,
				       unsigned int l);

/*
 * ring_vcmdq_view_read() - a relaxed snapshot of queue @l's view (zeroes
 * for a bad @l); any thread, as long as @v stays mapped.
 */
void ring_vcmdq_view_read(const struct ring_vcmdq *v, unsigned int l,
			  struct ring_vcmdq_view *out);

/* Entries fetched and not completed on queue @l. */
static inline uint32_t ring_vcmdq_inflight(const struct ring_vcmdq *v,
					   unsigned int l)
{
	return v->q[l].fetch - v->q[l].cons;
}

/* Is @op (word0 of a copied entry, CPU order) accepted on a vCMDQ? */
bool ring_vcmdq_cmd_allowed(uint64_t word0);

#endif
