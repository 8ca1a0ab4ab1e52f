/* SPDX-License-Identifier: MIT */
/*
 * core: the embeddable smmu-offload service. The daemon, the tests and
 * smmu-bench all drive the service through this API.
 *
 * Objects and owners:
 *   service   created and freed by the caller (control thread).
 *   host SMMU one per configured name, each with one worker thread that
 *             owns every vSMMU, ring and device bound to it.
 *   vSMMU     a guest vSMMU bound to a host SMMU (an iommufd vIOMMU).
 *   device    a vDEVICE: virtual SID -> host device, on one vSMMU.
 *   ring      a shared command ring feeding one vSMMU.
 * Objects are named by 32-bit ids, unique in the service and never reused.
 *
 * Test seams and oracle access (the backend, a vSMMU's vIOMMU) are in
 * core/core_test.h, for tests and smmu-bench only.
 *
 * Thread context: every function here is called from control threads
 * (any number, concurrently) and never from a worker. Calls that change a
 * worker's objects post a message to that worker (mailbox + control
 * eventfd) and wait for its answer. No lock is held across a wait on either
 * side, but the data path is not lock-free: each backend call
 * (iofd_invalidate_call()) takes the vIOMMU's and the host SMMU's counter
 * locks for a few stores, and core_hsmmu_stats() takes the latter to read
 * them; the worker takes a vSMMU's devs_lock only while it handles device
 * mail, and core_device_list() takes it to copy the table. All functions
 * return 0 or -errno and log nothing: the caller logs once.
 *
 * Control calls and deadlines: no call waits for a worker longer than
 * ctl_timeout_ms, and none holds a lock while it waits, so a slow or stuck
 * worker delays only calls about its own host SMMU; statistics and
 * listings never wait for a worker. A call whose deadline passes returns
 * -ETIMEDOUT and marks that worker stuck (core_hsmmu_stats().stuck, and
 * ctl_timeouts counts); while it is stuck, calls to it return -ETIMEDOUT
 * at once, until it answers any message again. What -ETIMEDOUT means:
 *   create/attach/resume: not done (undone if the worker gets to it);
 *   vSMMU destroy, ring detach: the id is gone at once; the worker drains
 *     and the service releases the objects (fds, mappings, vIOMMU) when
 *     it answers;
 *   device detach: the worker still fences and destroys the vDEVICE when
 *     it recovers.
 */
#ifndef SMMU_OFFLOAD_CORE_H
#define SMMU_OFFLOAD_CORE_H

#include <stdbool.h>
#include <stdint.h>

struct core_service;
struct iofd_sim_config;

/**
 * struct core_backend_config - which backend serves, and its settings.
 * @kind:       "kernel", "sim" or "null" (core_config_set() key backend).
 * @sim:        sim: cost model and caps (iommufd/iofd.h); NULL for the
 *              documented defaults (docs/COST-MODEL.md).
 * @sysfs_root: kernel: the iommu class directory host SMMUs are found in;
 *              NULL for "/sys/class/iommu" (key sysfs-root).
 */
struct core_backend_config {
	const char *kind;
	const struct iofd_sim_config *sim;
	const char *sysfs_root;
};

/*
 * Auto is the default, from smmu-bench (docs/PERFORMANCE.md, "Service
 * defaults"): inline was ahead of async at 2 us host syncs and at least
 * level at 10 us; at 50 us async was level or ahead in three sessions of
 * four. So each worker runs inline while its host SMMU's backend calls are
 * short and switches to async when they are long: an EWMA (weight 1/8) of
 * the measured call time, async above CORE_AUTO_ASYNC_NS, inline again
 * below CORE_AUTO_INLINE_NS (hysteresis). Auto starts the issuer threads;
 * they sleep in the kernel while the worker runs inline.
 */
enum core_issue_mode {
	CORE_ISSUE_AUTO, /* per host SMMU, from its measured call time */
	CORE_ISSUE_INLINE, /* the ioctl runs on the worker thread */
	/*
	 * Issuer threads run the ioctl; io_uring: the hand-off and the
	 * completion (a CQE with the result) are IORING_OP_MSG_RINGs, no lock
	 * between worker and issuers; epoll: eventfds and lock-free queues.
	 */
	CORE_ISSUE_ASYNC,
};

enum core_loop_kind {
	CORE_LOOP_AUTO, /* io_uring; epoll if io_uring gives EPERM/ENOSYS */
	CORE_LOOP_URING,
	CORE_LOOP_EPOLL,
};

/**
 * struct core_config - service configuration; zero values mean defaults,
 * except @poll_us, where 0 means "never poll" (start from
 * CORE_DEFAULT_POLL_US).
 * @backend:        backend selection and its configuration.
 * @hsmmu_names:    names of the host SMMUs to serve.
 * @n_hsmmu:        how many (>= 1, <= CORE_MAX_HSMMU).
 * @issue_mode:     auto (default), inline or async.
 * @max_inflight:   async: ioctls in flight per host SMMU (default 4);
 *                  never more than one per vSMMU.
 * @poll_us:        how long a worker keeps polling an active ring after
 *                  its last command before it sets NEED_WAKEUP and may
 *                  sleep (default CORE_DEFAULT_POLL_US; 0 = never poll).
 * @ring_budget:    entries taken from one ring per pass (default 64).
 * @max_batch:      commands per ioctl (default 252 = 4 host chunks).
 * @rate_cmds:      per-vSMMU rate limit in commands/s (0 = off).
 * @rate_burst:     token-bucket depth (default = ring_budget * 4).
 * @loop:           event loop backend.
 * @cpus:           if non-NULL, a CPU list ("0", "0-1,3") the workers are
 *                  pinned to (round-robin over the list's CPUs).
 * @max_rings:      rings the service accepts in total (default: from the
 *                  fd budget, see core_service_new()).
 * @ctl_timeout_ms: how long a control call waits for a worker's answer
 *                  (default CORE_DEFAULT_CTL_TIMEOUT_MS). A drain waits
 *                  for the invalidations in flight, which take seconds
 *                  only when the host is in trouble; past the deadline
 *                  the call fails with -ETIMEDOUT and the worker counts
 *                  as stuck (see "Control calls and deadlines" below).
 * @vcmdq_poll_us:  how long a worker keeps polling a software vCMDQ page
 *                  after its queues' last command before it arms the
 *                  page's wake-up path (default CORE_DEFAULT_VCMDQ_POLL_US,
 *                  longer than @poll_us: a vCMDQ wake-up costs a write
 *                  fault and a vCPU stall, a ring's a doorbell).
 * @vcmdq_idle_us:  how often a worker looks at its idle vCMDQ queues
 *                  (default CORE_DEFAULT_VCMDQ_IDLE_US): the bound on how
 *                  long an idle queue's next guest write waits to be seen.
 * @gmem_max:       guest RAM bytes one vSMMU may register (default
 *                  CORE_DEFAULT_GMEM_MAX; mappings, not memory).
 * @sim_hsmmus:     sim/null: host SMMUs core_hsmmu_discover() names
 *                  (default 1).
 * @diag_hists:     record the CORE_HIST_DIAG_* histograms (default off;
 *                  not a setting with a key: smmu-bench sets it). Costs
 *                  the worker a clock read per backend call and per pass.
 */
struct core_config {
	struct core_backend_config backend;
	const char *const *hsmmu_names;
	unsigned int n_hsmmu;
	enum core_issue_mode issue_mode;
	unsigned int max_inflight;
	unsigned int poll_us;
	unsigned int ring_budget;
	unsigned int max_batch;
	uint64_t rate_cmds;
	unsigned int rate_burst;
	enum core_loop_kind loop;
	const char *cpus;
	unsigned int max_rings;
	unsigned int ctl_timeout_ms;
	unsigned int vcmdq_poll_us;
	unsigned int vcmdq_idle_us;
	uint64_t gmem_max;
	unsigned int sim_hsmmus;
	bool diag_hists;
};

#define CORE_MAX_HSMMU 64
/* Bytes of a host SMMU's name, its NUL included. */
#define CORE_NAME_MAX 64
#define CORE_DEFAULT_POLL_US 50
#define CORE_DEFAULT_BUDGET 64
#define CORE_DEFAULT_MAX_BATCH 252
#define CORE_DEFAULT_INFLIGHT 4
/* CORE_ISSUE_AUTO: switch to async above, back to inline below (ns). */
#define CORE_AUTO_ASYNC_NS 40000
#define CORE_AUTO_INLINE_NS 20000
#define CORE_DEFAULT_CTL_TIMEOUT_MS 5000
#define CORE_DEFAULT_VCMDQ_IDLE_US 1000
/*
 * Poll a vCMDQ page for about what one idle-to-active transition costs the
 * guest (120-180 us measured on the development host, PERFORMANCE.md
 * "vcmdq"): polling longer than that cannot lose more than one wake-up
 * would.
 */
#define CORE_DEFAULT_VCMDQ_POLL_US 200
#define CORE_DEFAULT_GMEM_MAX (UINT64_C(1) << 40)
/* fds one ring costs the service: memfd, doorbell, completion eventfd. */
#define CORE_FDS_PER_RING 3

/**
 * core_config_set() - set one service setting from its text form. The
 * daemon's command line (--KEY VALUE), its config file (KEY = VALUE) and
 * smmu-bench all use this, so a setting has the same name, syntax and
 * range everywhere. Keys (canonical; older spelling still accepted):
 *   backend         kernel|sim|null                 -> backend.kind
 *   sysfs-root      DIR                             -> backend.sysfs_root
 *   issue-mode      auto|inline|async (or "issue")  -> issue_mode
 *   max-inflight    0..256                          -> max_inflight
 *   poll-us         0..1000000                      -> poll_us
 *   vcmdq-poll-us   1..1000000                      -> vcmdq_poll_us
 *   vcmdq-idle-us   N                               -> vcmdq_idle_us
 *   ring-budget     0..4096                         -> ring_budget
 *   max-batch       0..4096                         -> max_batch
 *   rate-limit      N commands/s (key "rate-cmds")  -> rate_cmds
 *   rate-burst      N                               -> rate_burst
 *   loop            auto|io_uring|epoll ("uring")   -> loop
 *   cpus            LIST                            -> cpus
 *   max-rings       N                               -> max_rings
 *   ctl-timeout-ms  10..3600000                     -> ctl_timeout_ms
 *   sim-smmus       1..CORE_MAX_HSMMU               -> sim_hsmmus
 * Numbers are decimal, 0x hex or 0 octal; 0 means the default where the
 * field says so. String values are kept by pointer: @value must live as
 * long as @cfg is used. On error @cfg is unchanged.
 * Return: 0; -ENOENT (@key is not a service setting); -EINVAL (not a
 * value of that setting); -ERANGE (a number out of the setting's range).
 */
int core_config_set(struct core_config *cfg, const char *key,
		    const char *value);

/* core_config_key() - the canonical name of setting @i, or NULL past the
 * last one (for usage texts and tests). */
const char *core_config_key(unsigned int i);

/**
 * core_hsmmu_discover() - the host SMMUs @cfg's backend offers, for a
 * caller that names none: kernel: the SMMUv3 instances in
 * backend.sysfs_root (none when that directory does not exist); sim and
 * null: sim_hsmmus of them (default 1), named "sim0", "sim1", ...
 * @names: filled with up to @max names, sorted.
 * @ret_n: set to how many there are (may exceed @max).
 * Return: 0; -EINVAL (unknown backend); -ENOMEM; opendir() errnos.
 */
int core_hsmmu_discover(const struct core_config *cfg,
			char (*names)[CORE_NAME_MAX], unsigned int max,
			unsigned int *ret_n);

/**
 * core_service_new() - start the service: open the backend and host
 * SMMUs, raise RLIMIT_NOFILE's soft limit to the hard limit, start one
 * worker per host SMMU.
 * Return: 0; -EINVAL (bad config), -ENOENT (host SMMU not found),
 * -ENOMEM; -EPERM/-ENOSYS only with @loop = CORE_LOOP_URING when io_uring
 * is unavailable (AUTO falls back to epoll instead).
 */
int core_service_new(const struct core_config *cfg, struct core_service **ret);

/**
 * core_service_free() - drain every ring (in-flight invalidations
 * complete), detach everything, stop the workers, free. NULL is a no-op.
 * Returns within ctl_timeout_ms (plus the time of the frees) even if a
 * worker is stuck: such a worker is left running, detached, its rings not
 * drained, and the service's memory is then not freed (the process is
 * expected to exit).
 * Return: 0, or -ETIMEDOUT if a worker was left so.
 */
int core_service_free(struct core_service *svc);

/* Which event loop the workers run ("io_uring" or "epoll"). */
const char *core_service_loop_name(const struct core_service *svc);

/* Which event loop the workers run is above; which backend serves:
 * "kernel", "sim" or "null" (for display: callers need not branch on it,
 * core checks what each backend needs). */
const char *core_service_backend_name(const struct core_service *svc);

/**
 * struct core_vsmmu_spec - what a vSMMU binds to.
 * @iommufd:   the VMM's iommufd (kernel backend, which needs one), or -1
 *             (sim and null, which take none).
 * @viommu_id: kernel: the vIOMMU object id in that iommufd.
 * @dev_id:    kernel: a device bound to that iommufd on this host SMMU,
 *             for IOMMU_GET_HW_INFO; 0 to skip the check.
 */
struct core_vsmmu_spec {
	int iommufd;
	uint32_t viommu_id;
	uint32_t dev_id;
};

/**
 * core_vsmmu_create() - bind a guest vSMMU to host SMMU @hsmmu.
 * @spec: core checks it against the backend: kernel needs an iommufd
 *        (dup'd, the caller keeps its fd), sim/null take iommufd = -1.
 * Return: 0 with *@ret_id; -EINVAL (an iommufd missing for the kernel
 * backend, or given to sim/null); -EBADF (@spec's fd is not an iommufd);
 * -ENOENT (no such host SMMU, vIOMMU or device), -EXDEV (kernel: @spec's
 * device is behind another SMMU than @hsmmu, see iofd_viommu_bind()),
 * -ENOMEM, -ETIMEDOUT (not created), other iofd_viommu_bind() errnos.
 */
int core_vsmmu_create(struct core_service *svc, const char *hsmmu,
		      const struct core_vsmmu_spec *spec, uint32_t *ret_id);

/**
 * core_vsmmu_destroy() - detach its rings (draining them) and devices,
 * unbind. Return: 0, -ENOENT, -ETIMEDOUT (the id is gone at once; the
 * worker finishes the destroy when it recovers).
 */
int core_vsmmu_destroy(struct core_service *svc, uint32_t vsmmu_id);

/**
 * core_device_attach() - allocate the vDEVICE for @vsid -> @dev_id. From
 * then on commands naming @vsid are forwarded.
 * Return: 0 with *@ret_vdev_id; -ENOENT (vSMMU), -EEXIST (vSID taken),
 * -ENOSPC (CORE_MAX_DEVICES), -EXDEV (kernel: the device is behind
 * another SMMU than the vSMMU's host SMMU), -ETIMEDOUT (not attached),
 * backend errno.
 */
int core_device_attach(struct core_service *svc, uint32_t vsmmu_id,
		       uint32_t dev_id, uint64_t vsid, uint32_t *ret_vdev_id);

/**
 * core_device_detach() - stop accepting commands naming @vsid, wait for
 * every command already taken from the rings to complete (the fence),
 * then destroy the vDEVICE. Return: 0, -ENOENT, -ETIMEDOUT (the vSID is
 * still refused from then on; the worker fences and destroys the vDEVICE
 * when it recovers).
 */
int core_device_detach(struct core_service *svc, uint32_t vsmmu_id,
		       uint64_t vsid);

#define CORE_MAX_DEVICES 1024
/* Rings per vSMMU (a guest vSMMU has one command queue; ECMDQ-like
 * setups a few). */
#define CORE_MAX_VSMMU_RINGS 8

/**
 * core_ring_attach() - attach a ring to a vSMMU.
 * @memfd:       the ring memfd (checked: seals, size, header).
 * @doorbell_fd: eventfd the VMM writes when NEED_WAKEUP is set.
 * @complete_fd: eventfd the service writes when WANT_SIGNAL is set, or -1
 *               for a VMM that only polls.
 * The fds are dup'd; the caller keeps and closes its own. Core checks
 * every fd itself (callers such as the RPC server pass them unchecked);
 * an eventfd that is not one fails first, before any other check.
 * Return: 0 with *@ret_id; -ENOENT (vSMMU), -EBADF (an fd is not what it
 * should be), -EEXIST (that memfd's file is already a ring of the
 * service, attached through any fd: one ring, one consumer), -EMFILE
 * (ring limit / fd budget), -ENOSPC (the vSMMU already has
 * CORE_MAX_VSMMU_RINGS rings), -EOPNOTSUPP (@complete_fd given but the
 * service cannot signal eventfds: no AIO, see core_service_stats().signal),
 * -ETIMEDOUT, ring_cons_map() errnos. The completion eventfd is signalled
 * by the kernel (eventfd_signal), never written: nothing the VMM does to
 * it can block the worker.
 */
int core_ring_attach(struct core_service *svc, uint32_t vsmmu_id, int memfd,
		     int doorbell_fd, int complete_fd, uint32_t *ret_id);

/* core_ring_detach() - drain and detach. Return: 0, -ENOENT, -ETIMEDOUT
 * (the ring is gone from the service at once and released when its
 * worker answers; see below). */
int core_ring_detach(struct core_service *svc, uint32_t ring_id);

/**
 * core_ring_resume() - restart a halted ring at its consumer index (the
 * VMM fixed the entry). Return: 0, -ENOENT, -EALREADY (not halted).
 */
int core_ring_resume(struct core_service *svc, uint32_t ring_id);

/*
 * Software vCMDQ (protocol mode 2, docs/RING-PROTOCOL.md section 12): the
 * service acts as an NVIDIA Tegra241 CMDQV for an unmodified guest. The
 * VMM registers the vSMMU's guest RAM, attaches the VINTF register page
 * (the memfd it maps into the guest at VINTF0 page0) and forwards what it
 * traps: each queue's page1 BASE write and its gate. The worker of the
 * vSMMU's host SMMU owns the page and the guest RAM table; commands of
 * the vCMDQ queues go into the same batches as the vSMMU's rings (one
 * backend call in flight per vSMMU, guest order per queue), validated as
 * ring commands are (fields against the host's caps, the vSID of an
 * ATC_INV attached) and restricted to TLBI_NH_ASID, TLBI_NH_VA, ATC_INV
 * and CMD_SYNC (CS = NONE); anything else halts that queue only, with
 * CONS.ERR = ILL at the entry. A failed backend call halts the queue of
 * the culprit: ILL at it, or ATC_INV_SYNC at the CMD_SYNC after a timed
 * out ATC invalidation (core_ring_err() mapping; BACKEND and DETACHED
 * show as ILL, the queue has no code for them).
 *
 * Idle queues (nothing fetched for vcmdq_poll_us, nothing in flight) are looked
 * at every vcmdq_idle_us; active ones every worker pass.
 */

/**
 * core_gmem_add() - register guest RAM [@gpa, @gpa + @size) of vSMMU
 * @vsmmu_id: @size bytes of @memfd from @offset. The memfd must be sealed
 * with F_SEAL_SHRINK (ring/gmem.h); it is not kept (the mapping holds the
 * file). Return: 0; -ENOENT (vSMMU); -EBADF; ring_gmem_add() errnos
 * (-EINVAL, -EPERM, -EMSGSIZE, -EEXIST overlap, -ENOSPC: 32 regions or
 * gmem_max); -ETIMEDOUT.
 */
int core_gmem_add(struct core_service *svc, uint32_t vsmmu_id, int memfd,
		  uint64_t offset, uint64_t gpa, uint64_t size);

/**
 * core_gmem_remove() - unregister the region added as exactly [@gpa,
 * @gpa + @size). Return: 0; -ENOENT; -EBUSY (an enabled queue lies in
 * it: disable the queue first); -ETIMEDOUT.
 */
int core_gmem_remove(struct core_service *svc, uint32_t vsmmu_id, uint64_t gpa,
		     uint64_t size);

/* vCMDQs per vSMMU: one VINTF, as QEMU exposes. */
#define CORE_MAX_VSMMU_VCMDQS 1

/**
 * core_vcmdq_attach() - attach a Tegra241 VINTF register page.
 * @page_memfd: SMMU_VCMDQ_FILE_SIZE bytes, sealed against shrinking and
 *              growing (smmu-offload/vcmdq.h); not kept.
 * @nq:         logical queues exposed (1..SMMU_VCMDQ_MAX_QUEUES).
 * @version, @features: SMMU_VCMDQ_VERSION and feature bits.
 * @irq_fd:     eventfd signalled (never blocking, as ring completion
 *              eventfds are) each time err_seq moves, or -1. Dup'd;
 *              checked first (-EBADF before any other error).
 * Every queue starts with its gate closed.
 * Return: 0 with *@ret_id; -ENOENT (vSMMU); -EBADF (an fd);
 * -EPROTONOSUPPORT/-EOPNOTSUPP (version, features; -EOPNOTSUPP also
 * for an @irq_fd without AIO); -EINVAL (@nq, not a memfd); -EPERM
 * (seals); -EMSGSIZE (size); -EEXIST (that page is attached already);
 * -ENOSPC (CORE_MAX_VSMMU_VCMDQS); -EMFILE (max_rings vCMDQs in the
 * service); -ETIMEDOUT.
 */
int core_vcmdq_attach(struct core_service *svc, uint32_t vsmmu_id,
		      int page_memfd, unsigned int nq, uint32_t version,
		      uint32_t features, int irq_fd, uint32_t *ret_id);

/**
 * core_vcmdq_detach() - stop serving the page: commands already taken
 * complete first (the drain), then the queues are left as they are.
 * Return: 0, -ENOENT, -ETIMEDOUT (the worker detaches it when it can).
 */
int core_vcmdq_detach(struct core_service *svc, uint32_t vcmdq_id);

/**
 * core_vcmdq_set_base() - the guest wrote page1 BASE of queue @lidx (the
 * VMM traps page1). Latched when the queue is next enabled. The VMM must
 * return from this call before it resumes the vCPU.
 * Return: 0, -ENOENT, -EINVAL (@lidx), -ETIMEDOUT.
 */
int core_vcmdq_set_base(struct core_service *svc, uint32_t vcmdq_id,
			unsigned int lidx, uint64_t base);

/**
 * core_vcmdq_set_ready() - the VMM's gate for queue @lidx: open while
 * CMDQ_ALLOC.ALLOCATED, VINTF0 EN and CMDQV EN are all set. Closing it
 * turns the queue off at once (in-flight commands are not waited for).
 * Return: 0, -ENOENT, -EINVAL (@lidx), -ETIMEDOUT.
 */
int core_vcmdq_set_ready(struct core_service *svc, uint32_t vcmdq_id,
			 unsigned int lidx, bool ready);

/**
 * core_vcmdq_set_uffd() - wake idle queues by userfaultfd write-protect
 * instead of the idle timer. @uffd: the VMM's userfaultfd (dup'd; opened
 * with UFFD_FEATURE_WP_HUGETLBFS_SHMEM, and without UFFD_USER_MODE_ONLY
 * when KVM's faults must reach it) on which the VMM registered its
 * mapping of page0 (the one KVM uses) with UFFDIO_REGISTER_MODE_WP;
 * @vmm_addr: that mapping's address in the VMM. When every queue of the
 * page is idle the worker write-protects the queues' registers there and
 * stops looking at them; the guest's next store faults, the worker sees
 * the uffd readable in its event loop (it never reads the uffd, whose
 * O_NONBLOCK is the VMM's), un-protects (which completes the store) and
 * polls the queues again. Arming and un-protecting run on the worker and
 * take the VMM's mmap lock for reading: a VMM holding it for writing
 * delays that worker (docs/SECURITY.md section 4). The VMM must not use
 * its copy of the uffd meanwhile nor map the page again over itself.
 * Return: 0, -ENOENT, -EBADF (not a userfaultfd), -EINVAL (@vmm_addr not
 * page aligned), -EALREADY (set already), -ETIMEDOUT.
 */
int core_vcmdq_set_uffd(struct core_service *svc, uint32_t vcmdq_id, int uffd,
			uint64_t vmm_addr);

/* Queue states in struct core_vcmdq_stats (= enum ring_vcmdq_state). */
enum core_vq_state {
	CORE_VQ_OFF,
	CORE_VQ_ON,
	CORE_VQ_DRAINING,
	CORE_VQ_HALTED,
};

#define CORE_VCMDQ_MAX_QUEUES 128

/* Index of the halts[] of the stats structs: the CMDQ error of a halt. */
enum core_halt_slot {
	CORE_HALT_ILL,
	CORE_HALT_ABT,
	CORE_HALT_ATC_INV_SYNC,
	CORE_HALT_OTHER,
	CORE_HALT_SLOTS,
};

/* Index of core_vsmmu_stats.cmds_by_class[]: cmdq's ordering classes. */
enum core_cmd_class {
	CORE_CLASS_TLB, /* TLBI_NH_*, TLBI_NSNH_ALL */
	CORE_CLASS_CFG, /* CFGI_CD, CFGI_CD_ALL */
	CORE_CLASS_ATC, /* ATC_INV */
	CORE_CLASSES,
};

struct core_vcmdq_stats {
	uint32_t id, vsmmu_id, nq;
	uint8_t state[CORE_VCMDQ_MAX_QUEUES]; /* enum core_vq_state */
	uint32_t err[CORE_VCMDQ_MAX_QUEUES]; /* CONS.ERR of a halted queue */
	uint32_t err_seq;
	uint64_t entries, syncs, signals, wakeups;
	uint64_t halts[CORE_HALT_SLOTS]; /* enum core_halt_slot */
	uint64_t arms, faults; /* uffd: protections armed, faults taken */
	bool armed; /* uffd: the page is write-protected now */
};

int core_vcmdq_stats(struct core_service *svc, uint32_t id,
		     struct core_vcmdq_stats *out);

/*
 * One queue of a vCMDQ as the worker last left it: its own copies, never
 * read back from the page or the queue the guest writes (ring/vcmdq_cons.h
 * struct ring_vcmdq_view). @prod: the last PROD read and accepted, @cons:
 * the last CONS stored (guest form: index and wrap bit, no ERR); @err:
 * CONS.ERR (0 unless halted); @base_gpa, @log2size: decoded from the last
 * BASE the VMM forwarded (@base_set), whether or not it was usable.
 */
struct core_vq_info {
	uint8_t state; /* enum core_vq_state */
	bool ready, base_set;
	uint32_t err, prod, cons, log2size;
	uint64_t base_gpa;
};

/**
 * core_vcmdq_queues() - the queues of vCMDQ @id: the first @max into
 * @out, its queue count in *@ret_nq. Never waits for the worker (relaxed
 * snapshots; fields may come from different moments).
 * Return: 0, -ENOENT.
 */
int core_vcmdq_queues(struct core_service *svc, uint32_t id,
		      struct core_vq_info *out, unsigned int max,
		      unsigned int *ret_nq);

/* Guest RAM regions one vSMMU may register (ring/gmem.h). */
#define CORE_GMEM_MAX_REGIONS 32u

/* A guest RAM region of a vSMMU (core_gmem_add()'s arguments). */
struct core_gmem_info {
	uint64_t gpa, size, offset;
};

/**
 * core_list_gmem() - the guest RAM regions of vSMMU @vsmmu_id as its
 * worker last published them: the first @max into @out, their number in
 * *@ret_n. Never waits for the worker.
 * Return: 0, -ENOENT, -EAGAIN (the table kept changing while it was read:
 * ask again).
 */
int core_list_gmem(struct core_service *svc, uint32_t vsmmu_id,
		   struct core_gmem_info *out, unsigned int max,
		   unsigned int *ret_n);
/* Ids of live vCMDQs (@vsmmu_id 0: all), as core_list_rings(). */
int core_list_vcmdqs(struct core_service *svc, uint32_t vsmmu_id, uint32_t *ids,
		     uint32_t max, uint32_t *ret_n);

/*
 * Statistics. Counters are monotonic; readers see relaxed snapshots. The
 * names GetStats and /metrics give these fields are in core/stats.h's
 * tables: a new field needs a line there to be seen.
 */
/* What the backend counted for one host SMMU (iommufd's counters, copied:
 * core's users need not include the backend interface). */
struct core_backend_counters {
	uint64_t ioctls; /* invalidation calls that reached the backend */
	uint64_t cmds; /* commands in them */
	uint64_t host_syncs; /* host CMD_SYNCs they cost */
	uint64_t errors; /* calls that returned an error */
	uint64_t charged_ns; /* simulated host time charged (sim only) */
};

struct core_hsmmu_stats {
	char name[CORE_NAME_MAX];
	const char *loop; /* "io_uring" or "epoll" */
	/* "async", "inline", or with auto "auto:inline" / "auto:async" (what
	 * the worker does now) */
	const char *issue_mode;
	uint32_t n_vsmmus, n_rings;
	uint64_t passes; /* worker loop passes that found work */
	uint64_t sleeps; /* times the worker slept in the kernel */
	uint64_t ioctls, cmds_issued, host_syncs, inflight;
	uint64_t halts[CORE_HALT_SLOTS]; /* every vSMMU, gone ones too */
	uint64_t backend_errors; /* failed backend calls, every vSMMU */
	uint64_t worker_cpu_ns; /* CPU time of the worker thread */
	uint64_t issuer_cpu_ns; /* CPU time of its issuer threads */
	/* Control calls: the worker missed a deadline and has not answered
	 * since (calls to it fail fast); calls that failed with -ETIMEDOUT. */
	uint32_t stuck; /* 0 or 1 */
	uint64_t ctl_timeouts;
	uint64_t vcmdq_idle_checks; /* idle-queue timer passes */
	struct core_backend_counters backend;
};

struct core_vsmmu_stats {
	uint32_t id;
	char hsmmu[CORE_NAME_MAX];
	uint32_t n_rings, n_devices;
	uint64_t entries; /* ring entries consumed (all classes) */
	uint64_t cmds_forwarded; /* FORWARD commands taken from rings */
	uint64_t cmds_by_class[CORE_CLASSES]; /* of them, by class */
	uint64_t cmds_issued; /* after coalescing */
	uint64_t coalesced; /* cmds_forwarded - cmds_issued, so far */
	uint64_t syncs; /* guest CMD_SYNCs completed */
	uint64_t ioctls;
	uint64_t host_syncs;
	uint64_t halts[CORE_HALT_SLOTS]; /* by error */
	uint64_t backend_errors;
	uint64_t throttled; /* passes a rate limit stopped this vSMMU */
};

struct core_ring_stats {
	uint32_t id, vsmmu_id;
	uint32_t prod, cons; /* as last seen / published */
	bool halted;
	uint32_t err, err_index;
	uint64_t entries, syncs, signals, wakeups;
};

struct core_service_stats {
	uint32_t n_hsmmu, n_vsmmus, n_rings, n_devices;
	uint64_t fd_limit; /* RLIMIT_NOFILE soft limit after raising it */
	uint32_t max_rings; /* rings accepted before -EMFILE */
	uint64_t rings_refused; /* attaches refused at that limit */
	uint32_t rings_alloc; /* rings holding fds, detached ones a stuck
			       * worker still holds included */
	uint32_t workers_stuck; /* host SMMUs whose worker is stuck */
	uint64_t ctl_timeouts; /* over every host SMMU */
	uint32_t ctl_timeout_ms; /* the deadline in use */
	const char *loop;
	const char *backend;
	const char *signal; /* completion signals: "aio" or "none" */
};

int core_service_stats(struct core_service *svc,
		       struct core_service_stats *out);

struct core_hist;
/*
 * Histograms per host SMMU, for the metrics endpoint:
 * SYNC_NS:    service-side guest CMD_SYNC latency, from the moment the
 *             worker took the first entry of its batch out of the ring to
 *             the completion (the VMM-side latency adds its trap and wait).
 * BATCH_CMDS: commands per backend call, after coalescing.
 * CALL_NS:    wall time of each backend invalidation call, as the thread
 *             that made it measured it (the worker inline, an issuer
 *             async).
 * Diagnostics, only with core_config.diag_hists (else -ENOENT), not in
 * the statistics tables; software vCMDQs' latency, split as the worker
 * sees it (docs/PERFORMANCE.md "vcmdq"):
 * DIAG_TAKE_NS: from the pass that took a batch's first entry (its
 *             t_open) to the start of its backend call: fetch, validation,
 *             batching, coalescing (async: the hand-off too).
 * DIAG_DONE_NS: from the call's return (async: the worker learning of it)
 *             to a vCMDQ segment of the batch completed (CONS stored).
 * DIAG_PASS_NS: the time between two consecutive worker passes while it
 *             serves vCMDQs without sleeping in between (how often an
 *             active queue's PROD is looked at).
 */
enum core_hist_kind {
	CORE_HIST_SYNC_NS,
	CORE_HIST_BATCH_CMDS,
	CORE_HIST_CALL_NS,
	CORE_HIST_DIAG_TAKE_NS,
	CORE_HIST_DIAG_DONE_NS,
	CORE_HIST_DIAG_PASS_NS,
};

/* core_hsmmu_hist() - snapshot one histogram. Return: 0, -ENOENT. */
int core_hsmmu_hist(struct core_service *svc, unsigned int idx,
		    enum core_hist_kind kind, struct core_hist *out);
/* @idx in [0, n_hsmmu). Return: 0, -ENOENT. */
int core_hsmmu_stats(struct core_service *svc, unsigned int idx,
		     struct core_hsmmu_stats *out);
int core_vsmmu_stats(struct core_service *svc, uint32_t id,
		     struct core_vsmmu_stats *out);
int core_ring_stats(struct core_service *svc, uint32_t id,
		    struct core_ring_stats *out);

/**
 * core_list_vsmmus() / core_list_rings() - ids of live objects.
 * Fills up to @max ids, sets *@ret_n to the total (may exceed @max).
 * core_list_rings() with @vsmmu_id 0 lists every ring.
 */
int core_list_vsmmus(struct core_service *svc, uint32_t *ids, uint32_t max,
		     uint32_t *ret_n);
int core_list_rings(struct core_service *svc, uint32_t vsmmu_id, uint32_t *ids,
		    uint32_t max, uint32_t *ret_n);

/* A device of a vSMMU, for listings. */
struct core_device_info {
	uint64_t vsid;
	uint32_t dev_id, vdev_id;
};
int core_list_devices(struct core_service *svc, uint32_t vsmmu_id,
		      struct core_device_info *out, uint32_t max,
		      uint32_t *ret_n);

#endif
