/* SPDX-License-Identifier: MIT */
/*
 * Idle protection of a software vCMDQ register page (issue 15, item 3),
 * for the wake-up path experiment (bench/kvm/wake-paths.c) and its
 * stress test (tests/bench/test-wake-paths.c).
 *
 * One VM of the KVM harness whose guest runs KG_PROG_WAKE against the
 * register page KG_W_PAGE: a 4 KiB memfd page in its own memory slot,
 * mapped twice in this process: the VMM's mapping (the slot's
 * userspace_addr, the one KVM faults through) and the service's mapping
 * (where the service reads PROD and writes CONS; never protected).
 *
 * While a queue is active the service polls PROD. Going idle it arms a
 * protection so that the guest's next store wakes it; the store must
 * complete and never be lost. The paths:
 *   KWK_UFFD  userfaultfd write-protect on the VMM's mapping; the guest's
 *             store stalls the vCPU in the kernel (KVM's stage-2 fault ->
 *             get_user_pages -> uffd WP fault); a service thread reads
 *             the fault, un-protects (which lets the store complete) and
 *             wakes the worker.
 *   KWK_SLOT  the slot re-added with KVM_MEM_READONLY; the store exits
 *             (KVM_EXIT_MMIO) to the vCPU thread, which applies it to the
 *             page itself, wakes the worker and re-adds the slot writable.
 *   KWK_SLOT_DEFER  as KWK_SLOT, but the vCPU resumes at once and a VMM
 *             thread re-adds the slot writable; until then every access
 *             to the page exits and is completed by the vCPU thread.
 *   KWK_BELL  reference: nothing armed; the guest also stores PROD to a
 *             KVM_IOEVENTFD doorbell (a modified driver) the worker
 *             sleeps on.
 *   KWK_POLL  reference: nothing armed; the worker keeps polling.
 *
 * Every path counts the wake events it delivers in @events, incremented
 * before the trapped store can complete, so a caller can check that no
 * store completed while armed without an event (a missed wake-up). A
 * disarm not asked for by the worker (the uffd thread's, the flip
 * thread's) also counts and wakes the worker: it may be asleep on a page
 * that no longer traps.
 *
 * Threads: kwk_new/kwk_free and the worker side (kwk_arm, kwk_disarm,
 * kwk_sleep, kwk_prod, kwk_set_cons) on one worker thread; kwk_mmio on
 * the vCPU thread (kvmh_vcpu_run); the uffd thread is internal. @lock
 * orders arming against the disarm of the uffd thread or the vCPU
 * thread. Nothing logs; functions return 0 or -errno.
 */
#ifndef SMMU_OFFLOAD_BENCH_KVM_WAKE_H
#define SMMU_OFFLOAD_BENCH_KVM_WAKE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bench/kvm/guest.h"
#include "bench/kvm/vmm.h"

enum kwk_path { KWK_POLL, KWK_UFFD, KWK_SLOT, KWK_SLOT_DEFER, KWK_BELL };

/* The doorbell address of KWK_BELL (an ioeventfd, 4-byte stores). */
#define KWK_BELL_ADDR (KG_MMIO + KG_MMIO_IOEVENTFD)

struct kwk {
	struct kvmh_vm vm;
	struct kvmh_vcpu c;
	enum kwk_path path;
	int page_fd; /* the register page's memfd */
	uint8_t *vmm_page; /* KVM's view: slot 1, uffd-registered */
	uint8_t *svc_page; /* the service's view */
	int uffd, wake_fd, stop_fd;
	pthread_t uffd_thread; /* KWK_UFFD: the fault thread */
	bool uffd_thread_on;
	pthread_t flip_thread; /* KWK_SLOT_DEFER: the VMM's flip thread */
	bool flip_thread_on;
	pthread_cond_t flip_cond; /* under @lock: @flip_req or @flip_stop */
	bool flip_cond_on, flip_req, flip_stop;
	pthread_mutex_t lock; /* guards @armed and the slot/WP state */
	bool lock_on;
	bool armed; /* under @lock */
	bool done; /* atomic: the vCPU run ended */
	uint64_t events; /* atomic: wake events delivered */
	/* The last event, for the measurement (atomic each): the host TSC
	 * when the service saw it, PROD in memory at that moment, and how
	 * long disarming took (slot: delete, re-add) in ns. */
	uint64_t ev_tsc;
	uint32_t ev_prod;
	uint64_t ev_disarm_ns, ev_del_ns, ev_add_ns;
	int thread_err; /* atomic: first error of the uffd/vCPU side */
	/* Faults the uffd thread read with the page already un-protected
	 * (another vCPU's fault or a disarm resolved them first). */
	uint64_t stale_faults; /* under @lock */
	/* KWK_UFFD, for tests: the uffd thread reads this many faults
	 * before it un-protects (0 or 1: each). Set before arming. */
	unsigned int fault_batch;
};

/**
 * kwk_new() - a VM on @kvm_fd with the register page and @path set up
 * (for KWK_UFFD: a userfaultfd opened with @uffd_flags | O_CLOEXEC |
 * O_NONBLOCK, registered for WP on the VMM's mapping, and its thread).
 * The vCPU block is zeroed except KG_V_PROG = KG_PROG_WAKE and the
 * addresses (KG_W_ADDR, KG_W_CADDR, KG_W_BELL); the caller sets the rest.
 */
int kwk_new(struct kwk *w, int kvm_fd, enum kwk_path path,
	    unsigned int uffd_flags, char *err, size_t errlen);
void kwk_free(struct kwk *w);

/* The vCPU block field @off (u64). */
volatile uint64_t *kwk_field(struct kwk *w, unsigned int off);

/* The vCPU thread's MMIO handler for kvmh_vcpu_run(@w). */
int kwk_mmio(void *ctx, struct kvmh_vcpu *c, uint64_t addr, uint8_t *data,
	     uint32_t len, bool is_write);

/* Arm / disarm the idle protection (no-ops for KWK_POLL and KWK_BELL).
 * *@ret_ns (if given): the time the arm took. */
int kwk_arm(struct kwk *w, uint64_t *ret_ns);
int kwk_disarm(struct kwk *w);

/* Sleep until a wake event or @timeout_ms (-1: none). Return 1 woken (the
 * event consumed), 0 timeout, or -errno. */
int kwk_sleep(struct kwk *w, int timeout_ms);
/* Wake the worker (e.g. when the run ended). */
void kwk_wake(struct kwk *w);

/* The service's loads and stores of the register page: queue @q's PROD
 * and CONS are KWK_QSTRIDE * @q further (Tegra241 page0: 0x80 apart). */
#define KWK_QSTRIDE 0x80
uint32_t kwk_prod(struct kwk *w);
void kwk_set_cons(struct kwk *w, uint32_t v);
uint32_t kwk_prod_q(struct kwk *w, unsigned int q);
void kwk_set_cons_q(struct kwk *w, unsigned int q, uint32_t v);

uint64_t kwk_now_ns(void);
uint64_t kwk_events(struct kwk *w);

#endif
