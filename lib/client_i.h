/* SPDX-License-Identifier: MIT */
/*
 * libsmmu-offload client internals shared by client.c (connection,
 * request/reply, vSMMU/device/ring calls recorded for reconnect and their
 * replay, stats, list) and client_vcmdq.c (software vCMDQ and guest-memory
 * calls). Not installed; the symbol map exports none of it.
 */
#ifndef SMMU_OFFLOAD_LIB_CLIENT_I_H
#define SMMU_OFFLOAD_LIB_CLIENT_I_H

#include <smmu-offload/client.h>

#include <stddef.h>
#include <stdint.h>

#include "rpc/frame.h"
#include "rpc/smmu_offload.pb-c.h"

/*
 * What the client created, so smmu_client_reconnect() can create it again
 * on a restarted service. @id is the id the caller holds (the first one
 * the service gave, or an alias: caller_id()), @cur the id in the current
 * service instance; fds are dups owned by the client.
 */
enum client_obj_kind { OBJ_VSMMU, OBJ_DEVICE, OBJ_RING, OBJ_GMEM, OBJ_VCMDQ };

/*
 * A vCMDQ's queue state as the VMM last set it, replayed after the
 * attach: @base[l] valid when bit l of @has_base, ready when bit l of
 * @ready; @uffd_addr valid when the vCMDQ's fd[2] (a dup of the uffd) is.
 */
struct client_vq {
	unsigned int nq;
	uint64_t has_base[2], ready[2];
	uint64_t uffd_addr;
	uint64_t base[];
};

struct client_obj {
	enum client_obj_kind kind;
	uint32_t id, cur; /* guest memory: unused (named by @gpa, @size) */
	uint32_t vsmmu; /* all but vSMMUs: the caller's vSMMU id */
	char hsmmu[64];
	uint32_t viommu_id, dev_id;
	uint64_t vsid;
	uint64_t offset, gpa, size; /* guest memory */
	struct client_vq *vq; /* vCMDQ; owned, freed with the object */
	/* vSMMU: iommufd; ring: memfd, doorbell, completion; guest memory:
	 * memfd; vCMDQ: page memfd, irq eventfd, userfaultfd */
	int fd[3];
};

/**
 * struct smmu_client - one connection. Owned by the caller's thread.
 * @sock:     the SOCK_SEQPACKET socket.
 * @next_id:  id of the next request (never 0: 0 marks undecodable ones).
 * @buf:      receive buffer, RPC_FRAME_MAX bytes.
 * @error:    message of the last refused request.
 * @server_version, @backend: from the handshake.
 */
struct smmu_client {
	int sock;
	uint64_t next_id;
	uint8_t *buf;
	char error[256];
	char server_version[64];
	char backend[16];
	char path[108];
	char name[64];
	struct client_obj *objs; /* creation order: parents first */
	size_t n_objs, cap_objs;
	uint32_t next_alias; /* see caller_id() */
};

/* client.c */
/* The current service's id for the caller's @id (unknown ids pass). */
uint32_t client_cur_id(struct smmu_client *c, enum client_obj_kind kind,
		       uint32_t id);
/* The recorded object of @kind the caller calls @id, or NULL. */
struct client_obj *client_obj_find(struct smmu_client *c,
				   enum client_obj_kind kind, uint32_t id);
/*
 * Record a created object (a copy of @tmpl, which may own ->vq: on
 * failure it is freed) with F_DUPFD_CLOEXEC dups of @fds (-1: none);
 * @tmpl->id is replaced by caller_id(@tmpl->cur) for kinds with ids.
 * Return: 0 (the caller's id in *@ret_id if not NULL), -ENOMEM, a dup
 * errno.
 */
int client_obj_add(struct smmu_client *c, const struct client_obj *tmpl,
		   const int *fds, int nfds, uint32_t *ret_id);
/* Forget objects of @kind: vSMMU @id (and everything on it), ring or
 * vCMDQ @id, device (@id = vSMMU, @key = vsid), guest memory (@id =
 * vSMMU, @key = gpa, @key2 = size). */
void client_obj_forget(struct smmu_client *c, enum client_obj_kind kind,
		       uint32_t id, uint64_t key, uint64_t key2);
/* client_vcmdq.c: replay @o (guest memory, vCMDQ attach) on the current
 * connection, setting @o->cur; and, once every object exists again, the
 * vCMDQ's queue state. */
int client_vcmdq_replay_obj(struct smmu_client *c, struct client_obj *o);
int client_vcmdq_replay_state(struct smmu_client *c, struct client_obj *o);
/* client_vcmdq.c: the vCMDQ queues and guest RAM regions of List reply
 * @lr into @l (fields the caller frees with the list). Return: 0, -ENOMEM. */
int client_list_vcmdq_extras(const SmmuOffload__ListReply *lr,
			     struct smmu_client_list *l);
/*
 * Send @req (its id is filled in) with @fds and wait for a reply that must
 * carry result @want. Return: 0 with *@ret (free with
 * smmu_offload__response__free_unpacked); -EPROTO for another result; the
 * service's -errno (message saved); transport errnos.
 */
int client_call_expect(struct smmu_client *c, SmmuOffload__Request *req,
		       const struct rpc_fds *fds,
		       SmmuOffload__Response__ResultCase want,
		       SmmuOffload__Response **ret);
/* client_call_expect() for requests answered by Empty. */
int client_call_done(struct smmu_client *c, SmmuOffload__Request *req,
		     const struct rpc_fds *fds);

#endif
