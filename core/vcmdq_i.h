/* SPDX-License-Identifier: MIT */
/*
 * core vCMDQ internals: a software Tegra241 CMDQV (protocol mode 2,
 * ring/vcmdq_cons.h) served by the worker of its vSMMU's host SMMU.
 * vcmdq.c is the control side (core.h calls), vcmdq_w.c the worker side
 * (polling, the batch hooks worker_done.c calls, control messages).
 *
 * The queues' commands go into their vSMMU's batches beside the rings'
 * (struct core_seg with @vq set), so one vSMMU keeps one ioctl in flight
 * and its guest order, whatever queue or ring a command came from.
 */
#ifndef SMMU_OFFLOAD_CORE_VCMDQ_I_H
#define SMMU_OFFLOAD_CORE_VCMDQ_I_H

#include "core/core_i.h"
#include "ring/gmem.h"
#include "ring/vcmdq_cons.h"

/* One logical queue of a vCMDQ. Owned by the worker. */
struct core_vq {
	struct core_vcmdq *vc;
	uint32_t l;
	int open_seg; /* its run in vs->open, or -1 */
	bool active; /* on w->vq_active (polled every pass) */
	bool blocked; /* had entries it could not take this pass */
	bool halt_counted; /* its current halt is in the statistics */
	uint64_t last_work_ns;
	struct core_vq *next_active;
	/* statistics: worker-written (relaxed), read by control */
	uint8_t st_state; /* enum ring_vcmdq_state */
	uint32_t st_err; /* CONS.ERR while halted */
};

/*
 * A vCMDQ (one VINTF's register page) attached to a vSMMU. Lifetime as a
 * ring's (@refs: registry, worker while linked, messages, the attaching
 * caller); the worker unmaps it when it unlinks it (the gmem pins are
 * its), the last core_vcmdq_put() closes @irq_fd and frees.
 */
struct core_vcmdq {
	uint32_t id;
	unsigned int refs; /* atomic */
	struct core_vsmmu *vs; /* holds a reference */
	struct ring_vcmdq v; /* worker, once linked */
	int irq_fd; /* -1: none */
	/*
	 * Wake-up by userfaultfd write-protect (core_vcmdq_set_uffd()): the
	 * VMM's uffd (-1: none; closed at the last put), the address of the
	 * VMM's mapping of page0 in the VMM, the bytes protected (the
	 * queues' registers), and whether they are protected now (worker).
	 */
	int uffd;
	uint64_t uffd_addr, uffd_len;
	bool uffd_watched, armed;
	/* Worker: after a fault, the page is not armed again before this
	 * (CORE_VQ_FAULT_HOLD_NS) unless a queue took entries meanwhile. */
	uint64_t hold_until_ns;
	uint64_t file_dev, file_ino; /* the page's identity (control) */
	bool attaching; /* registered, worker not yet answered (svc->lock) */
	/* worker */
	bool linked, detaching;
	unsigned int batches; /* runs of its queues in batches */
	struct core_msg *detach_msg;
	struct core_vcmdq *next_w, *next_vs;
	/* statistics: worker-written (relaxed) */
	uint64_t st_entries, st_syncs, st_signals, st_wakeups,
		st_halts[CORE_HALT_SLOTS];
	uint64_t st_arms, st_faults;
	bool st_armed;
	uint32_t st_err_seq;
	unsigned int nq;
	struct core_vq q[]; /* [nq] */
};

void core_vcmdq_get(struct core_vcmdq *vc);

/* ---- worker side (vcmdq_w.c), called by worker*.c / worker_ctl.c --- */

/* Take entries of the active queues into their batches; returns entries
 * taken plus batches issued. Adds the queues inside their poll window to
 * *@polling. */
uint32_t core_vcmdq_pump(struct core_worker *w, uint64_t now,
			 unsigned int *polling);
/* Re-check the idle queues if their timer is due; true if one woke. */
bool core_vcmdq_idle_check(struct core_worker *w, uint64_t now);
/* How long the worker may sleep for the idle queues' timer: -1 = no
 * limit (no vCMDQ), else ns (>= 0). */
int64_t core_vcmdq_sleep_ns(const struct core_worker *w, uint64_t now);

/* Batch hooks: the run @sg of a queue. */
bool core_vq_seg_current(const struct core_seg *sg);
void core_vq_seg_complete(struct core_seg *sg, uint32_t upto, uint32_t syncs);
void core_vq_seg_rewind(struct core_worker *w, struct core_seg *sg,
			uint32_t pos);
/* @ring_err: a core_ring_err() code (ILL, ATC_INV_SYNC, or another that
 * the queue shows as ILL: the queue has no BACKEND/DETACHED code). */
void core_vq_seg_halt(struct core_seg *sg, uint32_t idx, uint32_t ring_err);
void core_vq_seg_done(struct core_worker *w, struct core_seg *sg);
void core_vq_seg_release(struct core_worker *w, struct core_seg *sg, bool open);

/* An event on the uffd of vCMDQ @id (worker.c's loop token). */
void core_vcmdq_uffd_event(struct core_worker *w, uint32_t id, int res);
uint64_t core_vcmdq_token(const struct core_vcmdq *vc);

/* Control messages CORE_MSG_ADD_GMEM..CORE_MSG_VCMDQ_UFFD. */
void core_vcmdq_handle_msg(struct core_worker *w, struct core_msg *m);
void core_vcmdq_msg_undo(struct core_worker *w, struct core_msg *m);
/* vSMMU destroy: detach (drain) its vCMDQs; true while any is left. */
bool core_vcmdq_vsmmu_draining(struct core_worker *w, struct core_vsmmu *vs);
/* vSMMU removal: unmap its guest RAM (no vCMDQ is left). */
void core_vcmdq_vsmmu_remove(struct core_vsmmu *vs);

#endif
