/* SPDX-License-Identifier: MIT */
/*
 * core internals: the objects behind core.h and who owns each field.
 * Not installed; included only by the core sources (and white-box tests).
 */
#ifndef SMMU_OFFLOAD_CORE_I_H
#define SMMU_OFFLOAD_CORE_I_H

#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>

#include "cmdq/cmdq.h"
#include "common/clock.h"
#include "common/fdcheck.h"
#include "core/batch.h"
#include "core/core.h"
#include "core/core_test.h"
#include "core/hist.h"
#include "core/loop.h"
#include "iommufd/iofd.h"
#include "ring/ring_cons.h"

struct core_worker;
struct core_vsmmu;
struct core_vcmdq; /* core/vcmdq_i.h */
struct core_vq;
struct ring_gmem;

/*
 * A ring attached to a vSMMU. Owned by the worker of its host SMMU.
 * Lifetime: @refs (atomic) counts the registry, the worker while the ring
 * is linked, each message naming it, and a caller setting it up; the last
 * core_ring_put() (control thread or worker) unmaps it, closes its fds
 * and drops its reference on @vs. None of that blocks.
 */
struct core_ring {
	uint32_t id;
	unsigned int refs; /* atomic */
	struct core_vsmmu *vs; /* holds a reference */
	struct ring_cons rc;
	int memfd, doorbell_fd, complete_fd;
	uint64_t file_dev, file_ino; /* the memfd's identity (control) */
	bool attaching; /* registered, worker not yet answered (svc->lock) */
	uint32_t slot; /* index in the worker's ring table */
	uint32_t epoch;
	int open_seg; /* its segment in vs->open, or -1 */
	unsigned int batches; /* batches holding a segment of it */
	bool active; /* on the worker's active list (polled) */
	bool linked; /* in the worker's ring table */
	bool blocked; /* had entries it could not take this pass */
	bool detaching;
	bool err_pending; /* halt at err_idx once cons reaches it */
	uint32_t err_idx, err_code;
	uint64_t last_work_ns;
	struct core_ring *next_active;
	struct core_msg *detach_msg; /* deferred reply */
	/* statistics: written by the worker (relaxed), read by control */
	uint64_t st_entries, st_syncs, st_signals, st_wakeups;
};

struct core_device {
	uint64_t vsid;
	uint32_t dev_id, vdev_id;
};

/*
 * A guest vSMMU. Data-path fields are owned by the worker. Lifetime as a
 * ring's (@refs: registry, worker while it serves it, its rings, messages,
 * a caller setting it up); the last core_vsmmu_put() unbinds the vIOMMU.
 */
struct core_vsmmu {
	uint32_t id;
	unsigned int refs; /* atomic */
	struct core_worker *w;
	struct iofd_viommu *viommu; /* bound by the control thread, unbound at
				     * the last put (either thread) */
	bool registered; /* in svc's registry; svc->lock */
	bool dead; /* worker: destroyed or never served; refuse messages */
	/* Taken by the worker around changes of @devs/@n_devs and by
	 * core_list_devices() around its copy; never across a wait. */
	pthread_mutex_t devs_lock;
	struct cmdq_caps caps; /* host caps at bind time: the worker's copy */
	struct core_ring *rings[CORE_MAX_VSMMU_RINGS];
	uint32_t n_rings;
	struct core_device *devs; /* [CORE_MAX_DEVICES] */
	uint32_t n_devs;
	struct core_batch *open; /* being filled */
	struct core_batch *inflight; /* at most one in flight (guest order) */
	struct core_batch *spare;
	uint64_t next_seq, done_seq;
	/* rate limit (token bucket, in commands) */
	double tokens;
	uint64_t tokens_ns;
	bool waiting; /* queued for an issuer slot (async) */
	struct core_vsmmu *next_wait;
	struct core_msg *fences; /* device detaches waiting for done_seq */
	/* Guest RAM table (allocated at create, then the worker's; freed at
	 * the last put) and the vCMDQs served from it (worker). */
	struct ring_gmem *gmem;
	struct core_vcmdq *vcmdqs;
	uint32_t n_vcmdqs;
	struct core_msg *destroy_msg;
	/* statistics: written by the worker (relaxed), read by control */
	uint64_t st_entries, st_fwd, st_issued, st_syncs, st_ioctls,
		st_host_syncs, st_backend_errors, st_throttled;
	uint64_t st_halts[CORE_HALT_SLOTS];
	uint64_t st_class[CORE_CLASSES]; /* forwarded, by ordering class */
};

enum core_msg_type {
	CORE_MSG_ADD_VSMMU,
	CORE_MSG_DEL_VSMMU,
	CORE_MSG_ADD_DEVICE,
	CORE_MSG_DEL_DEVICE,
	CORE_MSG_ADD_RING,
	CORE_MSG_DEL_RING,
	CORE_MSG_RESUME_RING,
	CORE_MSG_ADD_GMEM, /* vcmdq.c from here on */
	CORE_MSG_DEL_GMEM,
	CORE_MSG_ADD_VCMDQ,
	CORE_MSG_DEL_VCMDQ,
	CORE_MSG_VCMDQ_BASE,
	CORE_MSG_VCMDQ_READY,
	CORE_MSG_VCMDQ_UFFD,
	CORE_MSG_STOP,
};

/*
 * A control request to a worker, on the heap. @refs (atomic): the caller
 * and, once posted, the worker; the last core_msg_put() frees it and drops
 * the references it holds on @vs and @ring. The worker answers by setting
 * @result and moving @state from POSTED to ANSWERED, then posting @sem;
 * a caller whose deadline passed moves it from POSTED to ABANDONED
 * instead. Exactly one of the two wins: a worker that finds its answer
 * abandoned undoes what it did for an ADD (the caller reported failure).
 */
enum core_msg_state {
	CORE_MSG_POSTED,
	CORE_MSG_ANSWERED,
	CORE_MSG_ABANDONED,
};

struct core_msg {
	enum core_msg_type type;
	unsigned int refs; /* atomic */
	unsigned int state; /* atomic, enum core_msg_state */
	struct core_vsmmu *vs;
	struct core_ring *ring;
	uint64_t vsid;
	uint32_t dev_id;
	uint64_t fence_seq;
	uint32_t ret_vdev_id;
	/* vCMDQ messages: @vcmdq holds a reference; @fd is the message's own
	 * dup (closed by the last put), -1 if none. */
	struct core_vcmdq *vcmdq;
	int fd;
	uint64_t gpa, size, offset, base;
	uint32_t lidx;
	bool ready;
	int result;
	sem_t sem;
	struct core_msg *next;
};

/*
 * An issuer thread (async mode), see issuer.c. Fields are set before the
 * thread starts, except: @batch and @busy (worker thread only), @slot and
 * @stop (epoll: atomic, worker stores, issuer exchanges/loads).
 */
struct core_issuer {
	struct core_worker *w;
	unsigned int index;
	pthread_t thread;
	bool inbox_uring;
	struct io_uring inbox; /* worker -> issuer MSG_RINGs (io_uring) */
	int inbox_efd; /* epoll: the issuer blocks reading it; else -1 */
	struct core_batch *slot; /* epoll: the batch handed over */
	bool stop; /* epoll: exit when the slot is empty */
	struct core_waker waker; /* issuer -> worker: completion CQE/kick */
	struct core_batch *batch; /* in flight on it (worker) */
	bool busy; /* handed a batch whose completion is not seen (worker) */
};

/*
 * Worker loop tokens of issuer messages (CORE_TOKEN_MSG set; issuer index
 * in the low bits): the completion of the issuer's batch (res = its rc),
 * and the failure of a hand-off to it (res = -errno, never delivered).
 */
#define CORE_TOKEN_DONE (CORE_TOKEN_MSG | (UINT64_C(0x03) << 56))
#define CORE_TOKEN_LOST (CORE_TOKEN_MSG | (UINT64_C(0x04) << 56))

/*
 * Completion signals (signal.c): an AIO context whose poll requests carry
 * the VMM's eventfd as IOCB_FLAG_RESFD. Owned by the worker thread.
 */
struct core_signaller {
	uint64_t ctx; /* aio_context_t */
	int ready_fd; /* our own eventfd, always writable; -1: none */
};

/* One host SMMU and its worker. */
struct core_worker {
	struct core_service *svc;
	struct iofd_hsmmu *hsmmu;
	char name[IOFD_NAME_MAX];
	int cpu; /* pinned CPU or -1 */
	pthread_t thread;
	bool started;

	/* owned by the worker thread */
	struct core_loop loop;
	struct core_ring **slots;
	uint32_t n_slots, cap_slots;
	struct core_ring *active; /* rings being polled */
	struct core_vsmmu **vsmmus;
	uint32_t n_vsmmus, cap_vsmmus;
	unsigned int inflight; /* batches in flight (async) */
	struct core_vsmmu *wait_head, **wait_tail; /* for an issuer slot */
	bool stopping;
	bool throttled; /* a rate limit held back work this pass */
	unsigned int polling; /* active rings inside their poll window */
	uint64_t last_events_ns; /* last non-blocking event check */
	uint64_t last_yield_ns; /* last sched_yield() while polling */
	/*
	 * The worker's latest clock read: core_pump_active() sets it at the
	 * start of each pass, the inline path at the end of a backend call,
	 * an async completion when it arrives. What happens next in the pass
	 * (the SYNC latency of a completed batch, the event-check rate) uses
	 * it instead of another clock_gettime(). A backend call's own time
	 * (core_batch.call_ns) is always read around the call.
	 */
	uint64_t now;
	struct core_msg *stop_msg;
	struct smmu_ring_entry *fetch_buf; /* [ring_budget] */
	/* vCMDQs (vcmdq_w.c): every one served here, the queues being
	 * polled, and when the idle ones are looked at next. */
	struct core_vcmdq *vcmdqs;
	struct core_vq *vq_active;
	uint64_t vq_idle_next_ns;
	uint64_t st_vq_idle_checks;
	struct core_signaller sig; /* set up before the thread starts */
	struct core_msg *stop_posted; /* control: STOP, until joined */

	/*
	 * Control calls: @stuck (atomic) is set by a control thread whose
	 * deadline passed and cleared by the worker when it answers any
	 * message; while set, calls fail fast. @st_ctl_timeouts (atomic
	 * add) counts calls that failed so.
	 */
	unsigned int stuck;
	uint64_t st_ctl_timeouts;

	/* control -> worker mailbox; lock taken by control threads and by the
	 * worker only when mbox_pending says there is something */
	pthread_mutex_t mbox_lock;
	struct core_msg *mbox_head, **mbox_tail;
	unsigned int mbox_pending; /* atomic flag */
	int ctl_efd; /* written by control threads (and issuers in epoll) */

	/* async: the issuers; the hand-offs are lock-free (issuer.c) */
	bool async_now; /* batches go to issuers (written by the worker,
			 * READ_ONCE by stats) */
	uint64_t call_ewma_ns; /* CORE_ISSUE_AUTO: backend call time */
	struct core_issuer *issuers;
	unsigned int n_issuers;

	/* epoll only: issuers -> worker lock-free stack (push: CAS, pop-all:
	 * exchange) and the Dekker flag that says the worker may sleep */
	struct core_batch *done_stack; /* atomic */
	unsigned int sleeping; /* atomic: worker is about to sleep */

	/* statistics (worker-written, relaxed) */
	uint64_t st_passes, st_sleeps, st_ioctls, st_cmds, st_host_syncs;
	uint64_t st_halts[CORE_HALT_SLOTS],
		st_backend_errors; /* outlive their vSMMUs */
	struct core_hist *h_sync; /* core_hist_add_shared() by the worker */
	struct core_hist *h_batch;
	struct core_hist *h_call;
	struct core_diag *diag; /* core_config.diag_hists, else NULL */
};

/* core_config.diag_hists (core.h CORE_HIST_DIAG_*): the histograms are
 * written by the worker (core_hist_add_shared()), the times are its own. */
struct core_diag {
	struct core_hist take, done, pass;
	uint64_t ret_ns; /* the last call's return, 0 once a segment used it */
	uint64_t pass_ns; /* the last pass, 0 after a sleep */
};

struct core_service {
	struct core_config cfg;
	struct iofd_backend *backend;
	struct core_worker *workers;
	unsigned int n_workers;
	/* control-plane registry; lock held by control calls */
	pthread_mutex_t lock;
	struct core_vsmmu **vsmmus;
	uint32_t n_vsmmus, cap_vsmmus;
	struct core_ring **rings;
	uint32_t n_rings, cap_rings;
	uint32_t next_id;
	uint64_t fd_limit;
	uint32_t max_rings;
	uint64_t rings_refused; /* lock */
	struct core_vcmdq **vcmdqs; /* lock */
	uint32_t n_vcmdqs, cap_vcmdqs;
	/* Rings not yet released (atomic): counts against max_rings, so a
	 * ring a stuck worker still holds keeps its fds counted. */
	uint32_t rings_alloc;
	bool signal_ok; /* completion eventfds can be signalled (AIO) */
	/*
	 * Serialises iofd_viommu_bind()/unbind() (the backend keeps per-host
	 * state for them: caps learned at the first bind, a count). Held
	 * around those calls only, never across a wait; the worker takes it
	 * only when it drops the last reference of a vSMMU whose destroy
	 * timed out.
	 */
	pthread_mutex_t bind_lock;
};

/* worker.c */
int core_worker_start(struct core_worker *w);
/* Posts STOP (the worker drains, then exits); core_worker_join() waits
 * for it until @deadline_ns (CLOCK_MONOTONIC) and frees what the worker
 * had. Return: 0, or -ETIMEDOUT: the thread is left running (detached)
 * and nothing of it is freed. */
void core_worker_post_stop(struct core_worker *w);
int core_worker_join(struct core_worker *w, uint64_t deadline_ns);
/* Between worker*.c and worker_ctl.c; worker thread only. */
uint64_t core_ring_token(const struct core_ring *r);
/* Put an idle ring back on the active list (it is polled again). */
void core_ring_activate(struct core_worker *w, struct core_ring *r);
bool core_vsmmu_has_vsid(const struct core_vsmmu *vs, uint64_t vsid);
/* Issue the open batch if the vSMMU may; true if it did. */
bool core_vsmmu_try_issue(struct core_worker *w, struct core_vsmmu *vs);
/* core_config.diag_hists: a vCMDQ segment of the batch whose call
 * returned last was completed at @now (CORE_HIST_DIAG_DONE_NS). */
void core_worker_diag_done(struct core_worker *w, uint64_t now);

/* worker_ctl.c: control messages on the worker thread. */
int core_process_mailbox(struct core_worker *w);
/* A detaching ring leaves once no batch holds its entries. */
void core_ring_check_detach(struct core_worker *w, struct core_ring *r);
/* Answer the device detaches whose fence has passed. */
void core_vsmmu_check_fences(struct core_vsmmu *vs);
/* Finish the vSMMU destroys whose drain completed. */
void core_sweep_destroys(struct core_worker *w);
/* Answer @m (undoing an abandoned ADD) and drop the worker's reference. */
void core_msg_reply(struct core_worker *w, struct core_msg *m, int result);

/* service.c: a message about registered vSMMU @vsmmu_id, holding a
 * reference to it. Return: 0, -ENOMEM, -ENOENT. */
int core_vsmmu_msg(struct core_service *svc, uint32_t vsmmu_id,
		   enum core_msg_type type, struct core_msg **ret);

/* worker_pump.c, for vcmdq_w.c: the batch machinery rings use. */
bool core_vsmmu_take_tokens(struct core_worker *w, struct core_vsmmu *vs,
			    uint64_t now, uint32_t *budget);
/*
 * Admits the FORWARD command decoded into b->cmds[b->n] (b = vs->open)
 * from ring index @idx of run @seg, counting it in @vs's statistics.
 */
enum core_admit core_vsmmu_admit(struct core_vsmmu *vs, unsigned int seg,
				 uint32_t idx);

/* vcmdq.c / vcmdq_w.c (see core/vcmdq_i.h) */
void core_vcmdq_put(struct core_vcmdq *vc);
/* service.c, under svc->lock: drop @vs's vCMDQs from the registry. */
void core_vcmdq_unregister_vsmmu_locked(struct core_service *svc,
					struct core_vsmmu *vs);

/* ctl.c: messages, references and calls with a deadline. */
struct core_msg *core_msg_new(enum core_msg_type type);
void core_msg_put(struct core_msg *m);
void core_ring_get(struct core_ring *r);
void core_ring_put(struct core_ring *r);
void core_vsmmu_get(struct core_vsmmu *vs);
void core_vsmmu_put(struct core_vsmmu *vs);
/*
 * core_worker_call() - post @m to @w and wait for its answer until the
 * service's ctl_timeout. Return: m->result; -ETIMEDOUT if the deadline
 * passed (@w is then stuck), or at once if @w is already stuck. With
 * @post_if_stuck the message is posted even then (detach/destroy: the
 * worker carries it out when it recovers). The caller keeps its reference
 * to @m and puts it.
 */
int core_worker_call(struct core_worker *w, struct core_msg *m,
		     bool post_if_stuck);
/* Post @m to @w without waiting (the worker takes its own reference). */
void core_worker_post(struct core_worker *w, struct core_msg *m);
/* Worker side: answer @m (see struct core_msg); false if abandoned. */
bool core_msg_answer(struct core_worker *w, struct core_msg *m, int result);

/* signal.c */
int core_signal_init(struct core_signaller *s);
void core_signal_fini(struct core_signaller *s);
/* Signal eventfd @efd without blocking. Return: 0 or -errno. */
int core_signal_post(struct core_signaller *s, int efd);

/* issuer.c */
int core_issuers_start(struct core_worker *w, unsigned int n);
void core_issuers_stop(struct core_worker *w);
/*
 * Hand @b to the idle issuer @is (worker thread). Return: 0, or -errno if
 * it could not be sent (the worker still owns @b). On io_uring a send
 * that fails later comes back as CORE_TOKEN_LOST | is->index.
 */
int core_issuer_handoff(struct core_worker *w, struct core_issuer *is,
			struct core_batch *b);
/* epoll: the batches the issuers completed, oldest first (worker). */
struct core_batch *core_done_pop_all(struct core_worker *w);

/*
 * CORE_ISSUE_AUTO's rule (worker.c): fold a backend call of @call_ns into
 * *@ewma_ns and return whether the worker issues async from now on, given
 * that it does now iff @async (hysteresis between CORE_AUTO_INLINE_NS and
 * CORE_AUTO_ASYNC_NS). Pure; any thread.
 */
bool core_auto_async(bool async, uint64_t *ewma_ns, uint64_t call_ns);

/*
 * core's clock is common/clock.h's; the name stays so in-flight edits of
 * core/ merge (the fd checks are common/fdcheck.h).
 */
static inline uint64_t core_now_ns(void)
{
	return common_now_ns();
}

#endif
