/* SPDX-License-Identifier: MIT */
/*
 * libsmmu-offload: the VMM-side (and operator-side) client of the
 * smmu-offload control socket. Together with smmu-offload/ring-prod.h
 * (the ring producer) it is everything a VMM needs.
 *
 * A client is one connection: it performs the version handshake in
 * smmu_client_connect(), then sends one request at a time and waits for
 * its reply (calls block, with no timeout of their own; the service
 * answers a request that waits for one of its workers within its
 * --ctl-timeout-ms, else with -ETIMEDOUT). Every object a connection creates (vSMMUs,
 * devices, rings) belongs to it; closing the connection (or the process
 * dying) makes the service drain and free all of them.
 *
 * Errors: every function returns 0 or -errno. When the service refused a
 * request, the errno is the service's and smmu_client_error() returns its
 * human-readable message until the next request. Transport errors:
 * -EPIPE/-ECONNRESET (the service went away), -EBADMSG (undecodable
 * reply), -EPROTO (reply out of sequence).
 *
 * Thread context: a struct smmu_client may be used by one thread at a
 * time; distinct clients are independent. Nothing here logs. fds passed
 * in are never consumed: the service dups what it keeps.
 */
#ifndef SMMU_OFFLOAD_CLIENT_H
#define SMMU_OFFLOAD_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Protocol version this library speaks. */
#define SMMU_CLIENT_PROTOCOL_VERSION 1u
/* Where smmu-offloadd listens unless told otherwise. */
#define SMMU_CLIENT_DEFAULT_SOCKET "/run/smmu-offload/smmu-offload.sock"
#define SMMU_CLIENT_NAME_MAX 64

struct smmu_client;

/**
 * smmu_client_connect() - connect to the service and shake hands.
 * @path: socket path; NULL for SMMU_CLIENT_DEFAULT_SOCKET.
 * @name: a name for the service's logs (e.g. "qemu-vm42"), or NULL.
 * @ret:  the client; free with smmu_client_free().
 * Return: 0; -ENOENT/-ECONNREFUSED (no service), -EACCES (socket
 * permissions, or the service refused our uid/gid), -EPROTONOSUPPORT
 * (no common protocol version), -ENOMEM, transport errnos.
 */
int smmu_client_connect(const char *path, const char *name,
			struct smmu_client **ret);

/* smmu_client_free() - close the connection; NULL is a no-op. */
void smmu_client_free(struct smmu_client *c);

/* The connected socket (e.g. to poll for the service going away). */
int smmu_client_fd(const struct smmu_client *c);

/* Message of the last refused request ("" if none). Valid until the
 * next call on @c. */
const char *smmu_client_error(const struct smmu_client *c);

/* From the handshake. */
const char *smmu_client_server_version(const struct smmu_client *c);
const char *smmu_client_backend(const struct smmu_client *c);

/**
 * struct smmu_client_hsmmu - one host SMMU of the service.
 * @name:       its name (sysfs name, or "simN").
 * @loop:       the worker's event loop, "io_uring" or "epoll".
 * @issue_mode: "async" or "inline".
 * @n_vsmmus:   vSMMUs bound to it.
 * @n_rings:    rings it serves.
 */
struct smmu_client_hsmmu {
	char name[SMMU_CLIENT_NAME_MAX];
	char loop[16];
	char issue_mode[16];
	uint32_t n_vsmmus;
	uint32_t n_rings;
};

/**
 * smmu_client_list_hsmmus() - the service's host SMMUs.
 * @ret:   array (free() it), set only on success; NULL when *@ret_n is 0.
 * @ret_n: number of entries.
 */
int smmu_client_list_hsmmus(struct smmu_client *c,
			    struct smmu_client_hsmmu **ret, uint32_t *ret_n);

/**
 * smmu_client_vsmmu_create() - bind a guest vSMMU to host SMMU @hsmmu.
 * @iommufd:   kernel backend: the VMM's /dev/iommu fd; sim/null: -1.
 * @viommu_id: kernel: the vIOMMU object id in @iommufd (else 0).
 * @dev_id:    kernel: a device for the hardware info check, or 0.
 * @ret_id:    the vSMMU id.
 * Return: 0; -ENOENT (host SMMU), -EBADF (@iommufd is not one), -EMFILE
 * (per-connection limit), -EINVAL.
 */
int smmu_client_vsmmu_create(struct smmu_client *c, const char *hsmmu,
			     int iommufd, uint32_t viommu_id, uint32_t dev_id,
			     uint32_t *ret_id);

/* Detach and drain its rings and devices, then free it. -ENOENT, -EPERM
 * (another connection's). */
int smmu_client_vsmmu_destroy(struct smmu_client *c, uint32_t vsmmu_id);

/**
 * smmu_client_device_attach() - route commands naming @vsid to iommufd
 * device @dev_id; the service allocates the vDEVICE.
 * Return: 0 with *@ret_vdev_id; -ENOENT, -EPERM, -EEXIST (vSID taken),
 * -EMFILE (per-connection limit), backend errnos.
 */
int smmu_client_device_attach(struct smmu_client *c, uint32_t vsmmu_id,
			      uint32_t dev_id, uint64_t vsid,
			      uint32_t *ret_vdev_id);

/* Fence commands naming @vsid, then destroy the vDEVICE. */
int smmu_client_device_detach(struct smmu_client *c, uint32_t vsmmu_id,
			      uint64_t vsid);

/**
 * smmu_client_ring_attach() - hand a ring to the service.
 * @memfd:       the ring memfd, sealed F_SEAL_SHRINK | F_SEAL_GROW.
 * @doorbell_fd: eventfd the VMM writes when NEED_WAKEUP is set.
 * @complete_fd: eventfd the service signals for WANT_SIGNAL, or -1.
 * Return: 0 with *@ret_id; -ENOENT, -EPERM, -EBADF (an fd is not what it
 * should be), -EPERM (seals missing), -EMSGSIZE/-EPROTO (ring layout),
 * -EMFILE (limits).
 */
int smmu_client_ring_attach(struct smmu_client *c, uint32_t vsmmu_id, int memfd,
			    int doorbell_fd, int complete_fd, uint32_t *ret_id);

/* Drain and detach. */
int smmu_client_ring_detach(struct smmu_client *c, uint32_t ring_id);

/*
 * Service restart (docs/RING-PROTOCOL.md, "Service restart"). The client
 * remembers the vSMMUs, devices, rings, guest-memory regions and vCMDQs
 * it created (with F_DUPFD_CLOEXEC dups of their fds, the vCMDQ's uffd
 * included) and each vCMDQ queue's last BASE and ready gate. When the service is gone (smmu_client_fd() reads EOF, or a request
 * fails with EPIPE/ECONNRESET), smmu_client_reconnect() connects again,
 * retrying with exponential backoff (SMMU_CLIENT_BACKOFF_MIN_MS doubling
 * up to _MAX_MS) while nobody listens, and re-creates every object in
 * creation order (then every vCMDQ queue's BASE, ready gate and uffd,
 * after all guest memory exists), rings on the same memfds: the new
 * service resumes each
 * ring from the consumer index in shared memory, so nothing published is
 * lost. The ids the caller holds stay valid (the client maps them to the
 * new service's ids); smmu_client_list() and stats report the service's
 * own ids.
 * @timeout_ms: give up after this long; < 0 never gives up.
 * Return: 0; -ETIMEDOUT; the errno of a refused handshake or of an object
 * the new service refused (e.g. -EEXIST for a device whose vDEVICE still
 * exists in the VMM's iommufd after a kernel-backend crash: see
 * docs/OPERATIONS.md), after which the connection is closed and the call
 * may be repeated. Blocks; call it from a thread that may sleep.
 */
#define SMMU_CLIENT_BACKOFF_MIN_MS 10
#define SMMU_CLIENT_BACKOFF_MAX_MS 1000
int smmu_client_reconnect(struct smmu_client *c, int timeout_ms);
/* Restart a halted ring; -EALREADY if it is not halted. */
int smmu_client_ring_resume(struct smmu_client *c, uint32_t ring_id);

/*
 * Software vCMDQ (protocol mode 2, smmu-offload/vcmdq.h; the VMM side is
 * docs/VMM-INTEGRATION.md, "Exposing the software CMDQV"). vCMDQ ids
 * are the caller's, as ring ids: they stay valid across
 * smmu_client_reconnect(), which re-creates these objects (above);
 * smmu_client_list() reports the service's ids, and each queue's state.
 *
 * smmu_client_gmem_add() - guest RAM [@gpa, @gpa + @size) of vSMMU
 * @vsmmu_id is @size bytes of @memfd (sealed F_SEAL_SHRINK) at @offset.
 * -EEXIST: overlaps a registered region; -EPERM: not sealed; -ENOSPC:
 * 32 regions or the service's bound per vSMMU.
 */
int smmu_client_gmem_add(struct smmu_client *c, uint32_t vsmmu_id, int memfd,
			 uint64_t offset, uint64_t gpa, uint64_t size);
/* Remove the region added as exactly [@gpa, @gpa + @size); -EBUSY while
 * an enabled queue lies in it. */
int smmu_client_gmem_remove(struct smmu_client *c, uint32_t vsmmu_id,
			    uint64_t gpa, uint64_t size);
/*
 * smmu_client_vcmdq_attach() - attach the VINTF register page @page_memfd
 * (SMMU_VCMDQ_FILE_SIZE, sealed against shrink and grow) with @nq queues;
 * @irq_fd: eventfd signalled when err_seq moves, or -1. Sends
 * SMMU_VCMDQ_VERSION and no feature bits.
 */
int smmu_client_vcmdq_attach(struct smmu_client *c, uint32_t vsmmu_id,
			     int page_memfd, unsigned int nq, int irq_fd,
			     uint32_t *ret_id);
/* Drain and detach. */
int smmu_client_vcmdq_detach(struct smmu_client *c, uint32_t vcmdq_id);
/* Forward the guest's trapped page1 BASE write of queue @lidx; return
 * before resuming the vCPU. */
int smmu_client_vcmdq_set_base(struct smmu_client *c, uint32_t vcmdq_id,
			       unsigned int lidx, uint64_t base);
/* The gate: CMDQ_ALLOC.ALLOCATED && VINTF0 EN && CMDQV EN. */
int smmu_client_vcmdq_set_ready(struct smmu_client *c, uint32_t vcmdq_id,
				unsigned int lidx, bool ready);
/*
 * Wake idle queues by userfaultfd write-protect instead of the service's
 * idle timer: @uffd (UFFD_FEATURE_WP_HUGETLBFS_SHMEM; not
 * UFFD_USER_MODE_ONLY, whose faults KVM's accesses do not raise) has the
 * VMM's mapping of page0 at @vmm_addr registered with
 * UFFDIO_REGISTER_MODE_WP. Afterwards the VMM must not read or use its
 * copy of the uffd (it may close it: the client keeps an F_DUPFD_CLOEXEC
 * dup to hand to a restarted service), nor map the page again over
 * @vmm_addr.
 * -EBADF: not a userfaultfd; -EALREADY: set already.
 */
int smmu_client_vcmdq_set_uffd(struct smmu_client *c, uint32_t vcmdq_id,
			       int uffd, uint64_t vmm_addr);

enum smmu_client_scope {
	SMMU_CLIENT_SCOPE_SERVICE = 1,
	SMMU_CLIENT_SCOPE_HSMMU = 2, /* id: index in the host SMMU list */
	SMMU_CLIENT_SCOPE_VSMMU = 3,
	SMMU_CLIENT_SCOPE_RING = 4,
	SMMU_CLIENT_SCOPE_VCMDQ = 5,
};

struct smmu_client_counter {
	char name[48];
	uint64_t value;
};

struct smmu_client_label {
	char name[48];
	char value[SMMU_CLIENT_NAME_MAX];
};

/**
 * struct smmu_client_stats - one object's counters (docs/RPC.md lists the
 * names per scope) and text labels (names, modes).
 */
struct smmu_client_stats {
	enum smmu_client_scope scope;
	uint32_t id;
	uint32_t n_counters;
	struct smmu_client_counter *counters;
	uint32_t n_labels;
	struct smmu_client_label *labels;
};

/**
 * smmu_client_stats() - read statistics of one object.
 * @ret: free with smmu_client_stats_free(). Set only on success.
 * Return: 0; -ENOENT (no such object), -EINVAL (scope).
 */
int smmu_client_stats(struct smmu_client *c, enum smmu_client_scope scope,
		      uint32_t id, struct smmu_client_stats **ret);
void smmu_client_stats_free(struct smmu_client_stats *s);
/* Look a counter up by name. Return: 0, -ENOENT. */
int smmu_client_stats_get(const struct smmu_client_stats *s, const char *name,
			  uint64_t *ret_value);
/* A label by name, or NULL. */
const char *smmu_client_stats_label(const struct smmu_client_stats *s,
				    const char *name);

struct smmu_client_vsmmu {
	uint32_t id;
	char hsmmu[SMMU_CLIENT_NAME_MAX];
	uint32_t n_rings, n_devices;
	bool owned; /* created by this connection */
};

struct smmu_client_ring {
	uint32_t id, vsmmu_id;
	bool halted;
	uint32_t err;
	bool owned;
};

struct smmu_client_device {
	uint32_t vsmmu_id;
	uint64_t vsid;
	uint32_t dev_id, vdev_id;
	bool owned;
};

/* A software vCMDQ (service id, like rings): @nq queues, @n_halted of
 * them halted with an error now. */
struct smmu_client_vcmdq_info {
	uint32_t id, vsmmu_id;
	uint32_t nq, n_halted;
	bool owned;
};

/* A vCMDQ queue's state (the service's state machine, docs/RPC.md). */
enum smmu_client_vq_state {
	SMMU_CLIENT_VQ_UNKNOWN = 0, /* a newer service's state */
	SMMU_CLIENT_VQ_OFF = 1, /* STATUS.ENABLED 0 */
	SMMU_CLIENT_VQ_ON = 2,
	SMMU_CLIENT_VQ_DRAINING = 3, /* CONFIG.EN 0, commands in flight */
	SMMU_CLIENT_VQ_HALTED = 4, /* CONS.ERR @err until the guest acks */
};

/*
 * Queue @lidx of vCMDQ @vcmdq_id, from the service's own copies (never
 * read back from memory the guest writes). @ready: the VMM's gate;
 * @base_gpa, @log2size: of the last BASE forwarded (@base_set); @prod:
 * the last PROD the service read and accepted, @cons: the last CONS it
 * stored (both as the guest sees them: index and wrap bit, no ERR); @err:
 * CONS.ERR (0 unless halted).
 */
struct smmu_client_vcmdq_queue {
	uint32_t vcmdq_id, lidx;
	enum smmu_client_vq_state state;
	bool ready, base_set;
	uint32_t err;
	uint64_t base_gpa;
	uint32_t log2size, prod, cons;
};

/* A guest RAM region of vSMMU @vsmmu_id (smmu_client_gmem_add()). */
struct smmu_client_gmem {
	uint32_t vsmmu_id;
	uint64_t gpa, size, offset;
	bool owned; /* its vSMMU is this connection's */
};

/**
 * struct smmu_client_list - every object of the service (all
 * connections'), or of one vSMMU. @truncated: there were more than one
 * reply holds (see docs/RPC.md). Fields are only ever appended: the
 * library allocates the struct.
 * @vqueues: the queues of @vcmdqs, in order (vCMDQ, then lidx).
 * @gmem:    the guest RAM regions of @vsmmus.
 */
struct smmu_client_list {
	uint32_t n_vsmmus, n_rings, n_devices;
	struct smmu_client_vsmmu *vsmmus;
	struct smmu_client_ring *rings;
	struct smmu_client_device *devices;
	bool truncated;
	/* Appended (the library allocates the struct): software vCMDQs. */
	uint32_t n_vcmdqs;
	struct smmu_client_vcmdq_info *vcmdqs;
	uint32_t n_vqueues;
	struct smmu_client_vcmdq_queue *vqueues;
	uint32_t n_gmem;
	struct smmu_client_gmem *gmem;
};

/**
 * smmu_client_list() - list objects.
 * @vsmmu_id: 0 for everything, else only that vSMMU and its rings and
 *            devices.
 * @ret: free with smmu_client_list_free(). Set only on success.
 */
int smmu_client_list(struct smmu_client *c, uint32_t vsmmu_id,
		     struct smmu_client_list **ret);
void smmu_client_list_free(struct smmu_client_list *l);

#ifdef __cplusplus
}
#endif

#endif
