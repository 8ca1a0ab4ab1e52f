/* SPDX-License-Identifier: MIT */
/*
 * rpc server: the control socket of smmu-offloadd on a libevent base.
 *
 * Accepts AF_UNIX SOCK_SEQPACKET connections, authorises each peer by
 * SO_PEERCRED (and SO_PEERGROUPS), requires a Hello within
 * @hello_timeout_ms (else closes the connection), then serves the requests of
 * docs/RPC.md by calling core. Every vSMMU, device and ring a connection
 * creates is recorded in that connection's table; requests naming objects
 * of another connection fail with EPERM (unknown ids: ENOENT); when the
 * connection closes (the VMM exited or crashed) its rings are detached,
 * then its devices, then its vSMMUs, each draining in-flight work.
 *
 * Authorisation rule: uid 0 and the daemon's own effective uid (the
 * admins) are always allowed; any other peer must have its uid in
 * @allow_uids, or its primary gid or one of its supplementary groups
 * (SO_PEERGROUPS) in @allow_gids. The kernel's overflow uid/gid (what an
 * id unmapped in our user namespace reads as, rpc_overflow_ids()) never
 * matches anything, admins included, unless @allow_overflow_ids is set;
 * then the overflow uid is allowed only if it is in @allow_uids (never by
 * a group). The socket file mode is the first gate (connect() needs write
 * permission on it).
 *
 * Limits on the VMM socket: @max_clients connections at once, at most
 * @max_clients_per_uid of them from one uid, so one peer cannot take
 * every slot. The admin socket (@admin_path, mode 0600, admins only, at
 * most RPC_ADMIN_MAX_CLIENTS) has its own slots, so smmu-offloadctl gets
 * in however full the VMM socket is. When the process is out of fds, an
 * fd held in reserve lets accept() take the connection anyway: an admin
 * one is served, a VMM one gets an EMFILE reply and is closed (never a
 * busy loop on a listening socket that stays readable).
 *
 * Scoping: an admin sees every object and every counter; any other peer
 * sees only the objects its own connection created (GetStats, List) and
 * nothing that adds up other VMs' activity (docs/RPC.md, "Who sees
 * what").
 *
 * Thread context: everything runs on the thread that runs @base (the
 * daemon's main thread); a core call blocks it while a worker drains,
 * for at most the service's ctl_timeout_ms per call (then -ETIMEDOUT,
 * and calls about a stuck worker fail at once: core/core.h).
 * Nothing here writes to stderr: events go to the @log callback.
 */
#ifndef SMMU_OFFLOAD_RPC_SERVER_H
#define SMMU_OFFLOAD_RPC_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <protobuf-c/protobuf-c.h>

struct event_base;
struct core_service;
struct rpc_server;

#define RPC_DEFAULT_SOCKET_MODE 0660
#define RPC_DEFAULT_MAX_CLIENTS 64
#define RPC_DEFAULT_MAX_VSMMUS 16 /* per connection */
#define RPC_DEFAULT_MAX_RINGS 64 /* per connection */
#define RPC_DEFAULT_MAX_DEVICES 256 /* per connection */
#define RPC_MAX_ALLOW 32 /* entries in each allow list */
#define RPC_DEFAULT_HELLO_TIMEOUT_MS 10000
#define RPC_ADMIN_MAX_CLIENTS 8 /* connections on the admin socket */

/* Log levels of the @log callback: syslog's numbering (LOG_ERR..). */
typedef void (*rpc_log_fn)(void *opaque, int level, const char *msg);

/**
 * struct rpc_server_config - zero values mean defaults.
 * @path:        socket path (required).
 * @mode:        socket file mode; 0 = RPC_DEFAULT_SOCKET_MODE. Group or
 *               other execute/other bits beyond 0666 are refused.
 * @allow_uids/@n_allow_uids, @allow_gids/@n_allow_gids: see above.
 * @admin_path:  the admin socket's path; NULL = none.
 * @allow_overflow_ids: see the authorisation rule above.
 * @max_clients: connections at once on the VMM socket.
 * @max_clients_per_uid: of those, from one uid; 0 = @max_clients / 2
 *               (at least 1). More than @max_clients: -EINVAL.
 * @hello_timeout_ms: a connection without a completed Hello after this
 *               long is closed; 0 = RPC_DEFAULT_HELLO_TIMEOUT_MS.
 * @max_vsmmus, @max_rings, @max_devices: per connection.
 * @alloc:       protobuf-c allocator for decoding requests (tests inject
 *               failures); NULL = malloc.
 * @log, @log_opaque: event sink (connections, refusals, bad requests,
 *               teardown); NULL = silent.
 */
struct rpc_server_config {
	const char *path;
	const char *admin_path;
	mode_t mode;
	const uid_t *allow_uids;
	unsigned int n_allow_uids;
	const gid_t *allow_gids;
	unsigned int n_allow_gids;
	bool allow_overflow_ids;
	unsigned int max_clients;
	unsigned int max_clients_per_uid;
	unsigned int hello_timeout_ms;
	unsigned int max_vsmmus;
	unsigned int max_rings;
	unsigned int max_devices;
	ProtobufCAllocator *alloc;
	rpc_log_fn log;
	void *log_opaque;
};

/**
 * rpc_server_new() - create the listening socket(s) and start accepting.
 * If @cfg->path (or @cfg->admin_path) exists: a live server on it gives -EADDRINUSE; a stale
 * socket (connect() refused) is removed; a file that is not a socket gives
 * -ENOTSOCK. The socket is bound under a umask that makes it no more
 * permissive than @mode, then chmod()ed to @mode.
 * The admin socket is made mode 0600.
 * Return: 0; -EADDRINUSE, -ENOTSOCK, -ENAMETOOLONG, -EINVAL (mode,
 * limits), -ENOMEM, socket/bind/listen errnos.
 */
int rpc_server_new(struct event_base *base, struct core_service *svc,
		   const struct rpc_server_config *cfg,
		   struct rpc_server **ret);

/**
 * rpc_socket_probe() - would rpc_server_new() find @path usable? Lets the
 * daemon refuse to start before it starts the service.
 * Return: 0 (free, or a stale socket that rpc_server_new() will remove);
 * -EADDRINUSE (a live server answers on it), -ENOTSOCK (some other file),
 * -ENAMETOOLONG, other stat/connect errnos.
 */
int rpc_socket_probe(const char *path);

/**
 * rpc_server_free() - stop accepting, close every connection (tearing
 * down its objects: drains), close and unlink the sockets. NULL is a no-op.
 */
void rpc_server_free(struct rpc_server *srv);

/*
 * rpc_overflow_ids() - the kernel's overflow uid and gid
 * (/proc/sys/kernel/overflow{u,g}id; 65534 if unreadable).
 */
void rpc_overflow_ids(uid_t *ret_uid, gid_t *ret_gid);

/* Number of live connections, both sockets (tests, stats). */
unsigned int rpc_server_clients(const struct rpc_server *srv);

/**
 * struct rpc_server_counters - monotonic counters of the control server.
 * @clients_total:   connections accepted.
 * @clients_refused: connections refused (limits, uid/gid check, no fd).
 * @requests:        requests answered.
 * @bad_requests:    datagrams that were not a valid request.
 * @hello_timeouts:  connections closed for want of a Hello in time.
 * @fd_exhausted:    accept() found the process out of fds.
 */
struct rpc_server_counters {
	uint64_t clients_total, clients_refused, requests, bad_requests;
	uint64_t hello_timeouts, fd_exhausted;
};

/* rpc_server_counters() - a copy; same thread as the event loop. */
void rpc_server_counters(const struct rpc_server *srv,
			 struct rpc_server_counters *out);

#endif
