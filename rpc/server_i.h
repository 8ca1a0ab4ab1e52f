/* SPDX-License-Identifier: MIT */
/*
 * rpc server internals shared by server.c (connections, requests that
 * change objects), server_vcmdq.c (the software vCMDQ requests),
 * server_stats.c (Hello's host SMMU list, GetStats, List: what each
 * caller may see) and server_accept.c (listening sockets, peer
 * authorisation, connection limits, fd exhaustion).
 * Everything here is owned by the libevent thread (see server.h).
 */
#ifndef SMMU_OFFLOAD_RPC_SERVER_I_H
#define SMMU_OFFLOAD_RPC_SERVER_I_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "rpc/frame.h"
#include "rpc/server.h"
#include "rpc/smmu_offload.pb-c.h"

/*
 * Objects of each kind one List reply carries at most (vSMMUs, rings,
 * devices, vCMDQs, vCMDQ queues, guest RAM regions). Worst case per
 * entry: vSMMU ~90 bytes (63-byte host SMMU name), ring ~25, device ~35,
 * vCMDQ ~28, queue ~30, region ~45; 256 of each is ~62 KiB, inside
 * RPC_FRAME_MAX (tests/rpc/test-rpc-frame.c packs that reply). A new kind
 * needs a smaller bound or a second reply.
 */
#define RPC_LIST_MAX 256u

struct owned_ring {
	uint32_t id;
	uint32_t vsmmu_id;
};

struct owned_dev {
	uint32_t vsmmu_id;
	uint64_t vsid;
};

/**
 * struct rpc_peer - who is on the other end, from SO_PEERCRED at accept.
 * @uid, @gid, @pid: the peer's effective ids when it connected.
 * @admin:   root or the daemon's own effective uid (never the overflow
 *           uid): sees everything in GetStats and List.
 */
struct rpc_peer {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	bool admin;
};

/**
 * struct rpc_conn - one client connection. Owned by the libevent thread.
 * @srv:      the server.
 * @sock:     the connected socket (non-blocking).
 * @ev:       read event.
 * @hello_ev: the Hello deadline (a timer); freed once Hello is done.
 * @peer:     SO_PEERCRED at accept time.
 * @on_admin: accepted on the admin socket (not counted against the VMM
 *            socket's limits).
 * @serial:   connection number for logs.
 * @hello:    the handshake happened.
 * @hello_extended: the deadline found a datagram queued and waited once
 *            more (server.c, on_hello_timeout()).
 * @name:     client name from Hello.
 * @vsmmus, @rings, @devs: objects this connection created (arrays of the
 *            per-connection limits' size), with their counts.
 */
struct rpc_conn {
	struct rpc_server *srv;
	int sock;
	struct event *ev;
	struct event *hello_ev;
	struct rpc_peer peer;
	bool on_admin;
	uint64_t serial;
	bool hello;
	bool hello_extended;
	char name[64];
	uint32_t *vsmmus;
	unsigned int n_vsmmus;
	struct owned_ring *rings;
	unsigned int n_rings;
	struct owned_dev *devs;
	unsigned int n_devs;
	struct owned_ring *vcmdqs; /* software vCMDQs: [max_rings] too */
	unsigned int n_vcmdqs;
	struct rpc_conn *next;
	struct rpc_conn **pprev;
};

/**
 * struct rpc_server - the listening sockets and their connections. Owned
 * by the libevent thread.
 * @lsock/@lev:   the VMM socket and its accept event.
 * @asock/@aev:   the admin socket (-1/NULL when there is none).
 * @admin_path:   its path (NULL when there is none).
 * @n_conns:      connections of the VMM socket; @n_admin: of the admin one.
 * @reserve_fd:   an fd held back so that accept() can still take a
 *                connection when the process is out of fds (-1 while
 *                spent); see server_accept.c.
 * @resume_ev:    re-arms accepting after a pause for lack of fds.
 * @euid:         the daemon's effective uid (an admin).
 * @overflow_uid/@overflow_gid: the kernel's ids for unmapped ones.
 */
struct rpc_server {
	struct event_base *base;
	struct core_service *svc;
	struct rpc_server_config cfg;
	char *path;
	char *admin_path;
	uid_t allow_uids[RPC_MAX_ALLOW];
	gid_t allow_gids[RPC_MAX_ALLOW];
	int lsock;
	struct event *lev;
	int asock;
	struct event *aev;
	int reserve_fd;
	struct event *resume_ev;
	uid_t euid;
	uid_t overflow_uid;
	gid_t overflow_gid;
	struct rpc_conn *conns;
	unsigned int n_conns;
	unsigned int n_admin;
	uint64_t serial;
	uint64_t conns_total, conns_refused, requests, bad_requests;
	uint64_t hello_timeouts, fd_exhausted;
	uint8_t *buf; /* RPC_FRAME_MAX receive buffer, shared: one thread */
};

/*
 * A reply under construction: the envelope, the result bodies on the
 * stack, heap blocks to free after sending, the error message.
 */
struct reply {
	SmmuOffload__Response resp;
	SmmuOffload__Empty done;
	SmmuOffload__HelloReply hello;
	SmmuOffload__ListHostSmmusReply hsmmus;
	SmmuOffload__CreateVsmmuReply create;
	SmmuOffload__AttachDeviceReply attach_dev;
	SmmuOffload__AttachRingReply attach_ring;
	SmmuOffload__AttachVcmdqReply attach_vcmdq;
	SmmuOffload__GetStatsReply stats;
	SmmuOffload__ListReply list;
	void *heap[8];
	unsigned int n_heap;
	char msg[256];
};

/* server.c */
void srv_log(struct rpc_server *srv, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Heap block freed with the reply; NULL when out of memory (or full). */
void *srv_reply_alloc(struct reply *rp, size_t size);
/* Record an error: returns -@err so handlers can "return srv_fail(...)". */
int srv_fail(struct reply *rp, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
bool srv_conn_has_vsmmu(const struct rpc_conn *c, uint32_t id);
/* Index in @c's ring table, or -1. */
int srv_conn_find_ring(const struct rpc_conn *c, uint32_t id);
/* Index in @c's vCMDQ table, or -1. */
int srv_conn_find_vcmdq(const struct rpc_conn *c, uint32_t id);
int srv_check_vcmdq(struct rpc_conn *c, struct reply *rp, uint32_t id);
/* A vSMMU/ring of @c: 0; another connection's: -EPERM; nobody's: -ENOENT
 * (with the reply's message set). */
int srv_check_vsmmu(struct rpc_conn *c, struct reply *rp, uint32_t id);
int srv_check_ring(struct rpc_conn *c, struct reply *rp, uint32_t id);
/*
 * srv_conn_add() - register an accepted, authorised socket: read event,
 * Hello deadline, connection tables. Takes @sock (closed on failure).
 * Return: 0, -ENOMEM.
 */
int srv_conn_add(struct rpc_server *srv, int sock, const struct rpc_peer *peer,
		 bool on_admin);
/* Release @c's objects and close it. */
void srv_conn_free(struct rpc_conn *c);

/* Answer @rp with Empty (the request succeeded). */
void srv_set_done(struct reply *rp);
/* Drop entry @idx of @c's vCMDQ table (order is not kept). */
void srv_forget_vcmdq(struct rpc_conn *c, int idx);

/* server_vcmdq.c: the software vCMDQ requests; 0 or -errno (srv_fail). */
int srv_do_add_gmem(struct rpc_conn *c, const SmmuOffload__AddGuestMemory *m,
		    struct rpc_fds *fds, struct reply *rp);
int srv_do_remove_gmem(struct rpc_conn *c,
		       const SmmuOffload__RemoveGuestMemory *m,
		       struct reply *rp);
int srv_do_attach_vcmdq(struct rpc_conn *c, const SmmuOffload__AttachVcmdq *m,
			struct rpc_fds *fds, struct reply *rp);
int srv_do_detach_vcmdq(struct rpc_conn *c, const SmmuOffload__DetachVcmdq *m,
			struct reply *rp);
/* SetVcmdqBase and SetVcmdqReady (@req carries either). */
int srv_do_set_vcmdq(struct rpc_conn *c, const SmmuOffload__Request *req,
		     struct reply *rp);
int srv_do_set_vcmdq_uffd(struct rpc_conn *c,
			  const SmmuOffload__SetVcmdqUffd *m,
			  struct rpc_fds *fds, struct reply *rp);

/* server_stats.c: the host SMMU list of Hello and ListHostSmmus. */
int srv_fill_host_smmus(struct rpc_conn *c, struct reply *rp,
			SmmuOffload__HostSmmu ***ret_arr, size_t *ret_n);
int srv_do_get_stats(struct rpc_conn *c, const SmmuOffload__GetStats *m,
		     struct reply *rp);
int srv_do_list(struct rpc_conn *c, const SmmuOffload__List *m,
		struct reply *rp);

/* server_accept.c */
/* Start accepting on @srv->path (and @srv->admin_path if set). */
int srv_listen(struct rpc_server *srv);
/* Stop accepting, close and unlink the listening sockets. */
void srv_unlisten(struct rpc_server *srv);
/* An fd was closed: take the fd reserve back if it was spent. */
void srv_refill_reserve(struct rpc_server *srv);

#endif
