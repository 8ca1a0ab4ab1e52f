/* SPDX-License-Identifier: MIT */
/*
 * libsmmu-offload client: synchronous request/reply over the control
 * socket. The generated protobuf types stay in the library's sources
 * (this file, client_vcmdq.c, client_i.h); callers see the structs of
 * smmu-offload/client.h.
 */
#include <smmu-offload/client.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "lib/client_i.h"
#include "rpc/frame.h"
#include "rpc/smmu_offload.pb-c.h"

static void obj_close(struct client_obj *o)
{
	for (int i = 0; i < 3; i++)
		if (o->fd[i] >= 0)
			close(o->fd[i]);
	free(o->vq);
}

/* Record a created object; -ENOMEM, or a dup errno. fds may be -1. */
static int obj_add(struct smmu_client *c, const struct client_obj *tmpl,
		   const int *fds, int nfds)
{
	struct client_obj *o;

	if (c->n_objs == c->cap_objs) {
		size_t cap = c->cap_objs ? c->cap_objs * 2 : 8;
		struct client_obj *n = realloc(c->objs, cap * sizeof(*n));

		if (!n) {
			free(tmpl->vq);
			return -ENOMEM;
		}
		c->objs = n;
		c->cap_objs = cap;
	}
	o = &c->objs[c->n_objs];
	*o = *tmpl;
	for (int i = 0; i < 3; i++)
		o->fd[i] = -1;
	for (int i = 0; i < nfds; i++) {
		if (fds[i] < 0)
			continue;
		o->fd[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
		if (o->fd[i] < 0) {
			int r = -errno;

			obj_close(o);
			return r;
		}
	}
	c->n_objs++;
	return 0;
}

struct client_obj *client_obj_find(struct smmu_client *c,
				   enum client_obj_kind kind, uint32_t id)
{
	for (size_t i = 0; i < c->n_objs; i++)
		if (c->objs[i].kind == kind && c->objs[i].id == id)
			return &c->objs[i];
	return NULL;
}

/* The current service's id for the caller's @id (unknown ids pass). */
uint32_t client_cur_id(struct smmu_client *c, enum client_obj_kind kind,
		       uint32_t id)
{
	struct client_obj *o = client_obj_find(c, kind, id);

	return o ? o->cur : id;
}

/*
 * The id to give the caller for a new object the service calls @cur:
 * @cur itself, unless the caller already holds that id for another object
 * of that kind (a restarted service counts from 1 again, so after a
 * reconnect its new ids can repeat the old ones the caller keeps); then an
 * alias with the top bit set, which no service id reaches.
 */
static uint32_t caller_id(struct smmu_client *c, enum client_obj_kind kind,
			  uint32_t cur)
{
	if (!client_obj_find(c, kind, cur))
		return cur;
	do
		cur = 0x80000000u | ++c->next_alias;
	while (client_obj_find(c, kind, cur));
	return cur;
}

int client_obj_add(struct smmu_client *c, const struct client_obj *tmpl,
		   const int *fds, int nfds, uint32_t *ret_id)
{
	struct client_obj o = *tmpl;
	int r;

	if (o.kind != OBJ_DEVICE && o.kind != OBJ_GMEM)
		o.id = caller_id(c, o.kind, o.cur);
	r = obj_add(c, &o, fds, nfds);
	if (!r && ret_id)
		*ret_id = o.id;
	return r;
}

/* Forget objects: those matching, keeping creation order. */
void client_obj_forget(struct smmu_client *c, enum client_obj_kind kind,
		       uint32_t id, uint64_t vsid, uint64_t size)
{
	size_t out = 0;

	for (size_t i = 0; i < c->n_objs; i++) {
		struct client_obj *o = &c->objs[i];
		bool gone;

		if (kind == OBJ_VSMMU)
			gone = (o->kind == OBJ_VSMMU && o->id == id) ||
			       (o->kind != OBJ_VSMMU && o->vsmmu == id);
		else if (kind == OBJ_DEVICE)
			gone = o->kind == OBJ_DEVICE && o->vsmmu == id &&
			       o->vsid == vsid;
		else if (kind == OBJ_GMEM)
			gone = o->kind == OBJ_GMEM && o->vsmmu == id &&
			       o->gpa == vsid && o->size == size;
		else
			gone = o->kind == kind && o->id == id;
		if (gone)
			obj_close(o);
		else
			c->objs[out++] = *o;
	}
	c->n_objs = out;
}

static void copy_str(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

/*
 * Send @req (its id is filled in) with @fds, wait for the reply.
 * Return: 0 with *@ret (free with smmu_offload__response__free_unpacked);
 * the service's -errno (message saved); transport errnos.
 */
static int call(struct smmu_client *c, SmmuOffload__Request *req,
		const struct rpc_fds *fds, SmmuOffload__Response **ret)
{
	ProtobufCMessage *m;
	SmmuOffload__Response *resp;
	struct rpc_fds rfds;
	size_t len;
	int ret_err;

	c->error[0] = '\0';
	req->id = c->next_id++;
	ret_err = rpc_msg_send(c->sock, &req->base, fds);
	if (ret_err)
		return ret_err;
	ret_err = rpc_frame_recv(c->sock, c->buf, &len, &rfds);
	if (ret_err)
		return ret_err;
	/* The service never sends us fds. */
	rpc_fds_close(&rfds);
	ret_err = rpc_msg_decode(&smmu_offload__response__descriptor, NULL,
				 c->buf, len, &m);
	if (ret_err)
		return ret_err;
	resp = (SmmuOffload__Response *)m;
	if (resp->id != req->id) {
		rpc_msg_free(m, NULL);
		return -EPROTO;
	}
	if (resp->has_error && resp->error) {
		ret_err = resp->error > 0 && resp->error < 4096 ? -resp->error :
								  -EPROTO;
		copy_str(c->error, sizeof(c->error), resp->message);
		rpc_msg_free(m, NULL);
		return ret_err;
	}
	*ret = resp;
	return 0;
}

/* call() for requests whose reply must carry result @want. */
int client_call_expect(struct smmu_client *c, SmmuOffload__Request *req,
		       const struct rpc_fds *fds,
		       SmmuOffload__Response__ResultCase want,
		       SmmuOffload__Response **ret)
{
	SmmuOffload__Response *resp;
	int r = call(c, req, fds, &resp);

	if (r)
		return r;
	if (resp->result_case != want) {
		smmu_offload__response__free_unpacked(resp, NULL);
		return -EPROTO;
	}
	*ret = resp;
	return 0;
}

static void hsmmu_from_pb(struct smmu_client_hsmmu *h,
			  const SmmuOffload__HostSmmu *p)
{
	memset(h, 0, sizeof(*h));
	copy_str(h->name, sizeof(h->name), p->name);
	copy_str(h->loop, sizeof(h->loop), p->loop);
	copy_str(h->issue_mode, sizeof(h->issue_mode), p->issue_mode);
	h->n_vsmmus = p->n_vsmmus;
	h->n_rings = p->n_rings;
}

/*
 * The service answers a refused peer with an error reply and closes: our
 * Hello may then fail with EPIPE, but the refusal is still queued for us.
 */
static int handshake(struct smmu_client *c, const char *name)
{
	SmmuOffload__Request req = SMMU_OFFLOAD__REQUEST__INIT;
	SmmuOffload__Hello hello = SMMU_OFFLOAD__HELLO__INIT;
	SmmuOffload__Response *resp;
	SmmuOffload__HelloReply *hr;
	ProtobufCMessage *m;
	struct rpc_fds rfds;
	size_t len;
	int r, send_err;

	hello.protocol_version = SMMU_CLIENT_PROTOCOL_VERSION;
	hello.has_features = true;
	hello.features = 0;
	hello.client_name = (char *)(name ? name : "");
	req.body_case = SMMU_OFFLOAD__REQUEST__BODY_HELLO;
	req.hello = &hello;
	req.id = c->next_id++;

	send_err = rpc_msg_send(c->sock, &req.base, NULL);
	if (send_err && send_err != -EPIPE && send_err != -ECONNRESET)
		return send_err;
	r = rpc_frame_recv(c->sock, c->buf, &len, &rfds);
	/*
	 * A peer that closes with our Hello unread makes the kernel report
	 * ECONNRESET once, before the datagrams it queued for us.
	 */
	if (r == -ECONNRESET)
		r = rpc_frame_recv(c->sock, c->buf, &len, &rfds);
	if (r)
		return send_err ? send_err : r;
	rpc_fds_close(&rfds);
	r = rpc_msg_decode(&smmu_offload__response__descriptor, NULL, c->buf,
			   len, &m);
	if (r)
		return r;
	resp = (SmmuOffload__Response *)m;
	if (resp->has_error && resp->error) {
		r = resp->error > 0 && resp->error < 4096 ? -resp->error :
							    -EPROTO;
		copy_str(c->error, sizeof(c->error), resp->message);
		goto out;
	}
	if (send_err) {
		r = send_err;
		goto out;
	}
	if (resp->result_case != SMMU_OFFLOAD__RESPONSE__RESULT_HELLO) {
		r = -EPROTO;
		goto out;
	}
	hr = resp->hello;
	if (hr->protocol_version != SMMU_CLIENT_PROTOCOL_VERSION) {
		r = -EPROTONOSUPPORT;
		goto out;
	}
	copy_str(c->server_version, sizeof(c->server_version),
		 hr->server_version);
	copy_str(c->backend, sizeof(c->backend), hr->backend);
	r = 0;
out:
	rpc_msg_free(m, NULL);
	return r;
}

/* Open c->sock to c->path and shake hands; c->sock is -1 on failure. */
static int client_open(struct smmu_client *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int r;

	memcpy(sa.sun_path, c->path, strlen(c->path) + 1);
	c->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c->sock < 0)
		return -errno;
	if (connect(c->sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		goto err_close;
	}
	r = handshake(c, c->name);
	if (r)
		goto err_close;
	return 0;

err_close:
	close(c->sock);
	c->sock = -1;
	return r;
}

int smmu_client_connect(const char *path, const char *name,
			struct smmu_client **ret)
{
	struct smmu_client *c;
	int r;

	if (!path)
		path = SMMU_CLIENT_DEFAULT_SOCKET;
	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return -ENAMETOOLONG;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->next_id = 1;
	copy_str(c->path, sizeof(c->path), path);
	copy_str(c->name, sizeof(c->name), name);
	c->buf = malloc(RPC_FRAME_MAX);
	if (!c->buf) {
		r = -ENOMEM;
		goto err_free;
	}
	r = client_open(c);
	if (r)
		goto err_free_buf;
	*ret = c;
	return 0;

err_free_buf:
	free(c->buf);
err_free:
	free(c);
	return r;
}

void smmu_client_free(struct smmu_client *c)
{
	if (!c)
		return;
	if (c->sock >= 0)
		close(c->sock);
	for (size_t i = 0; i < c->n_objs; i++)
		obj_close(&c->objs[i]);
	free(c->objs);
	free(c->buf);
	free(c);
}

int smmu_client_fd(const struct smmu_client *c)
{
	return c->sock;
}

const char *smmu_client_error(const struct smmu_client *c)
{
	return c->error;
}

const char *smmu_client_server_version(const struct smmu_client *c)
{
	return c->server_version;
}

const char *smmu_client_backend(const struct smmu_client *c)
{
	return c->backend;
}

int smmu_client_list_hsmmus(struct smmu_client *c,
			    struct smmu_client_hsmmu **ret, uint32_t *ret_n)
{
	SmmuOffload__Request req = SMMU_OFFLOAD__REQUEST__INIT;
	SmmuOffload__ListHostSmmus body = SMMU_OFFLOAD__LIST_HOST_SMMUS__INIT;
	SmmuOffload__Response *resp;
	struct smmu_client_hsmmu *arr = NULL;
	size_t n;
	int r;

	req.body_case = SMMU_OFFLOAD__REQUEST__BODY_LIST_HOST_SMMUS;
	req.list_host_smmus = &body;
	r = client_call_expect(c, &req, NULL,
			       SMMU_OFFLOAD__RESPONSE__RESULT_LIST_HOST_SMMUS,
			       &resp);
	if (r)
		return r;
	n = resp->list_host_smmus->n_host_smmus;
	if (n) {
		arr = calloc(n, sizeof(*arr));
		if (!arr) {
			r = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < n; i++)
			hsmmu_from_pb(&arr[i],
				      resp->list_host_smmus->host_smmus[i]);
	}
	*ret = arr;
	*ret_n = (uint32_t)n;
out:
	smmu_offload__response__free_unpacked(resp, NULL);
	return r;
}

static int vsmmu_create_raw(struct smmu_client *c, const char *hsmmu,
			    int iommufd, uint32_t viommu_id, uint32_t dev_id,
			    uint32_t *ret_id)
{
	SmmuOffload__Request req = SMMU_OFFLOAD__REQUEST__INIT;
	SmmuOffload__CreateVsmmu body = SMMU_OFFLOAD__CREATE_VSMMU__INIT;
	SmmuOffload__Response *resp;
	struct rpc_fds fds;
	int r;

	if (!hsmmu)
		return -EINVAL;
	rpc_fds_init(&fds);
	if (iommufd >= 0)
		fds.fd[fds.n++] = iommufd;
	body.host_smmu = (char *)hsmmu;
	body.has_viommu_id = true;
	body.viommu_id = viommu_id;
	body.has_dev_id = true;
	body.dev_id = dev_id;
	req.body_case = SMMU_OFFLOAD__REQUEST__BODY_CREATE_VSMMU;
	req.create_vsmmu = &body;
	r = client_call_expect(c, &req, &fds,
			       SMMU_OFFLOAD__RESPONSE__RESULT_CREATE_VSMMU,
			       &resp);
	if (r)
		return r;
	*ret_id = resp->create_vsmmu->vsmmu_id;
	smmu_offload__response__free_unpacked(resp, NULL);
	return 0;
}

/* Requests answered by Empty. */
int client_call_done(struct smmu_client *c, SmmuOffload__Request *req,
		     const struct rpc_fds *fds)
{
	SmmuOffload__Response *resp;
	int r = client_call_expect(c, req, fds,
				   SMMU_OFFLOAD__RESPONSE__RESULT_DONE, &resp);

	if (r)
		return r;
	smmu_offload__response__free_unpacked(resp, NULL);
	return 0;
}

static int vsmmu_destroy_raw(struct smmu_client *c, uint32_t vsmmu_id);

int smmu_client_vsmmu_create(struct smmu_client *c, const char *hsmmu,
			     int iommufd, uint32_t viommu_id, uint32_t dev_id,
			     uint32_t *ret_id)
{
	struct client_obj o = { .kind = OBJ_VSMMU,
				.viommu_id = viommu_id,
				.dev_id = dev_id };
	uint32_t id;
	int r;

	r = vsmmu_create_raw(c, hsmmu, iommufd, viommu_id, dev_id, &id);
	if (r)
		return r;
	o.id = caller_id(c, OBJ_VSMMU, id);
	o.cur = id;
	copy_str(o.hsmmu, sizeof(o.hsmmu), hsmmu);
	r = obj_add(c, &o, &iommufd, 1);
	if (r) {
		/* Unrecorded, it could not be restored: do not keep it. */
		(void)vsmmu_destroy_raw(c, id);
		return r;
	}
	*ret_id = o.id;
	return 0;
}

static int vsmmu_destroy_raw(struct smmu_client *c, uint32_t vsmmu_id)
{
	SmmuOffload__Request req = SMMU_OFFLOAD__REQUEST__INIT;
	SmmuOffload__DestroyVsmmu body = SMMU_OFFLOAD__DESTROY_VSMMU__INIT;

	body.vsmmu_id = vsmmu_id;
	req.body_case = SMMU_OFFLOAD__REQUEST__BODY_DESTROY_VSMMU;
	req.destroy_vsmmu = &body;
	return client_call_done(c, &req, NULL);
}

int smmu_client_vsmmu_destroy(struct smmu_client *c, uint32_t vsmmu_id)
{
	int r = vsmmu_destroy_raw(c, client_cur_id(c, OBJ_VSMMU, vsmmu_id));

	if (!r)
		client_obj_forget(c, OBJ_VSMMU, vsmmu_id, 0, 0);
	return r;
}

static int device_attach_raw(struct smmu_client *c, uint32_t vsmmu_id,
			     uint32_t dev_id, uint64_t vsid,
			     uint32_t *ret_vdev_id)
{
	SmmuOffload__Request req = SMMU_OFFLOAD__REQUEST__INIT;
	SmmuOffload__AttachDevice body = SMMU_OFFLOAD__ATTACH_DEVICE__INIT;
	SmmuOffload__Response *resp;
	int r;

	body.vsmmu_id = vsmmu_id;
	body.dev_id = dev_id;
	body.vsid = vsid;
	req.body_case = SMMU_OFFLOAD__REQUEST__BODY_ATTACH_DEVICE;
	req.attach_device = &body;
	r = client_call_expect(c, &req, NULL,
			       SMMU_OFFLOAD__RESPONSE__RESULT_ATTACH_DEVICE,
			       &resp);
	if (r)
		return r;
	*ret_vdev_id = resp->attach_device->vdev_id;
	smmu_offload__response__free_unpacked(resp, NULL);
	return 0;
}

int smmu_client_device_attach(struct smmu_client *c, uint32_t vsmmu_id,
			      uint32_t dev_id, uint64_t vsid,
			      uint32_t *ret_vdev_id)
{
	struct client_obj o = { .kind = OBJ_DEVICE,
				.vsmmu = vsmmu_id,
				.dev_id = dev_id,
				.vsid = vsid };
	int r;

	r = device_attach_raw(c, client_cur_id(c, OBJ_VSMMU, vsmmu_id), dev_id,
			      vsid, ret_vdev_id);
	if (r)
		return r;
	o.id = o.cur = *ret_vdev_id;
	r = obj_add(c, &o, NULL, 0);
	if (r)
		(void)smmu_client_device_detach(c, vsmmu_id, vsid);
	return r;
}

int smmu_client_device_detach(struct smmu_client *c, uint32_t vsmmu_id,
			      uint64_t vsid)
{
	SmmuOffload__Request req = SMMU_OFFLOAD__REQUEST__INIT;
	SmmuOffload__DetachDevice body = SMMU_OFFLOAD__DETACH_DEVICE__INIT;
	int r;

	body.vsmmu_id = client_cur_id(c, OBJ_VSMMU, vsmmu_id);
	body.vsid = vsid;
	req.body_case = SMMU_OFFLOAD__REQUEST__BODY_DETACH_DEVICE;
	req.detach_device = &body;
	r = client_call_done(c, &req, NULL);
	if (!r)
		client_obj_forget(c, OBJ_DEVICE, vsmmu_id, vsid, 0);
	return r;
}

static int ring_attach_raw(struct smmu_client *c, uint32_t vsmmu_id, int memfd,
			   int doorbell_fd, int complete_fd, uint32_t *ret_id)
{
	SmmuOffload__Request req = SMMU_OFFLOAD__REQUEST__INIT;
	SmmuOffload__AttachRing body = SMMU_OFFLOAD__ATTACH_RING__INIT;
	SmmuOffload__Response *resp;
	struct rpc_fds fds;
	int r;

	if (memfd < 0 || doorbell_fd < 0)
		return -EBADF;
	rpc_fds_init(&fds);
	fds.fd[fds.n++] = memfd;
	fds.fd[fds.n++] = doorbell_fd;
	if (complete_fd >= 0)
		fds.fd[fds.n++] = complete_fd;
	body.vsmmu_id = vsmmu_id;
	req.body_case = SMMU_OFFLOAD__REQUEST__BODY_ATTACH_RING;
	req.attach_ring = &body;
	r = client_call_expect(c, &req, &fds,
			       SMMU_OFFLOAD__RESPONSE__RESULT_ATTACH_RING,
			       &resp);
	if (r)
		return r;
	*ret_id = resp->attach_ring->ring_id;
	smmu_offload__response__free_unpacked(resp, NULL);
	return 0;
}

/* DetachRing by the service's own id. */
static int ring_detach_raw(struct smmu_client *c, uint32_t ring_id)
{
	SmmuOffload__Request req = SMMU_OFFLOAD__REQUEST__INIT;
	SmmuOffload__DetachRing body = SMMU_OFFLOAD__DETACH_RING__INIT;

	body.ring_id = ring_id;
	req.body_case = SMMU_OFFLOAD__REQUEST__BODY_DETACH_RING;
	req.detach_ring = &body;
	return client_call_done(c, &req, NULL);
}

int smmu_client_ring_attach(struct smmu_client *c, uint32_t vsmmu_id, int memfd,
			    int doorbell_fd, int complete_fd, uint32_t *ret_id)
{
	struct client_obj o = { .kind = OBJ_RING, .vsmmu = vsmmu_id };
	int fds[3] = { memfd, doorbell_fd, complete_fd };
	uint32_t id;
	int r;

	r = ring_attach_raw(c, client_cur_id(c, OBJ_VSMMU, vsmmu_id), memfd,
			    doorbell_fd, complete_fd, &id);
	if (r)
		return r;
	o.id = caller_id(c, OBJ_RING, id);
	o.cur = id;
	r = obj_add(c, &o, fds, 3);
	if (r) {
		(void)ring_detach_raw(c, id);
		return r;
	}
	*ret_id = o.id;
	return 0;
}

int smmu_client_ring_detach(struct smmu_client *c, uint32_t ring_id)
{
	int r = ring_detach_raw(c, client_cur_id(c, OBJ_RING, ring_id));

	if (!r)
		client_obj_forget(c, OBJ_RING, ring_id, 0, 0);
	return r;
}

int smmu_client_ring_resume(struct smmu_client *c, uint32_t ring_id)
{
	SmmuOffload__Request req = SMMU_OFFLOAD__REQUEST__INIT;
	SmmuOffload__ResumeRing body = SMMU_OFFLOAD__RESUME_RING__INIT;

	body.ring_id = client_cur_id(c, OBJ_RING, ring_id);
	req.body_case = SMMU_OFFLOAD__REQUEST__BODY_RESUME_RING;
	req.resume_ring = &body;
	return client_call_done(c, &req, NULL);
}

/*
 * Create every recorded object again, in creation order (a vSMMU before
 * its devices and rings), on the current connection.
 */
static int replay(struct smmu_client *c)
{
	for (size_t i = 0; i < c->n_objs; i++) {
		struct client_obj *o = &c->objs[i];
		uint32_t vs = o->kind == OBJ_VSMMU ?
				      0 :
				      client_cur_id(c, OBJ_VSMMU, o->vsmmu);
		int r;

		switch (o->kind) {
		case OBJ_VSMMU:
			r = vsmmu_create_raw(c, o->hsmmu, o->fd[0],
					     o->viommu_id, o->dev_id, &o->cur);
			break;
		case OBJ_DEVICE:
			r = device_attach_raw(c, vs, o->dev_id, o->vsid,
					      &o->cur);
			break;
		case OBJ_RING:
			r = ring_attach_raw(c, vs, o->fd[0], o->fd[1], o->fd[2],
					    &o->cur);
			break;
		default:
			r = client_vcmdq_replay_obj(c, o);
			break;
		}
		if (r)
			return r;
	}
	/* Queue state last: every guest-memory region exists by now, as
	 * the service wants before a queue whose base lies in it runs. */
	for (size_t i = 0; i < c->n_objs; i++) {
		int r;

		if (c->objs[i].kind != OBJ_VCMDQ)
			continue;
		r = client_vcmdq_replay_state(c, &c->objs[i]);
		if (r)
			return r;
	}
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int smmu_client_reconnect(struct smmu_client *c, int timeout_ms)
{
	uint64_t deadline = timeout_ms < 0 ? UINT64_MAX :
					     now_ms() + (uint64_t)timeout_ms;
	unsigned int backoff_ms = SMMU_CLIENT_BACKOFF_MIN_MS;
	int r;

	if (c->sock >= 0) {
		close(c->sock);
		c->sock = -1;
	}
	for (;;) {
		uint64_t now;

		r = client_open(c);
		if (!r) {
			r = replay(c);
			if (!r)
				return 0;
			/* A half-restored session is no use: start over. */
			close(c->sock);
			c->sock = -1;
		}
		/* Only "nobody listens (yet)" is worth waiting for. */
		if (r != -ENOENT && r != -ECONNREFUSED && r != -ECONNRESET &&
		    r != -EPIPE && r != -EAGAIN)
			return r;
		now = now_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		{
			uint64_t ms = backoff_ms;
			struct timespec ts;

			if (ms > deadline - now)
				ms = deadline - now;
			ts.tv_sec = (time_t)(ms / 1000);
			ts.tv_nsec = (long)(ms % 1000) * 1000000;
			while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) ==
			       EINTR)
				;
		}
		if (backoff_ms < SMMU_CLIENT_BACKOFF_MAX_MS)
			backoff_ms *= 2;
	}
}

int smmu_client_stats(struct smmu_client *c, enum smmu_client_scope scope,
		      uint32_t id, struct smmu_client_stats **ret)
{
	SmmuOffload__Request req = SMMU_OFFLOAD__REQUEST__INIT;
	SmmuOffload__GetStats body = SMMU_OFFLOAD__GET_STATS__INIT;
	SmmuOffload__Response *resp;
	SmmuOffload__GetStatsReply *sr;
	struct smmu_client_stats *s;
	int r;

	if (scope < SMMU_CLIENT_SCOPE_SERVICE ||
	    scope > SMMU_CLIENT_SCOPE_VCMDQ)
		return -EINVAL;
	body.scope = (SmmuOffload__StatsScope)scope;
	body.has_id = true;
	body.id = scope == SMMU_CLIENT_SCOPE_VSMMU ?
			  client_cur_id(c, OBJ_VSMMU, id) :
		  scope == SMMU_CLIENT_SCOPE_RING ?
			  client_cur_id(c, OBJ_RING, id) :
		  scope == SMMU_CLIENT_SCOPE_VCMDQ ?
			  client_cur_id(c, OBJ_VCMDQ, id) :
			  id;
	req.body_case = SMMU_OFFLOAD__REQUEST__BODY_GET_STATS;
	req.get_stats = &body;
	r = client_call_expect(c, &req, NULL,
			       SMMU_OFFLOAD__RESPONSE__RESULT_GET_STATS, &resp);
	if (r)
		return r;
	sr = resp->get_stats;
	s = calloc(1, sizeof(*s));
	if (!s)
		goto err_nomem;
	s->scope = scope;
	s->id = sr->id;
	if (sr->n_counters) {
		s->counters = calloc(sr->n_counters, sizeof(*s->counters));
		if (!s->counters)
			goto err_nomem;
	}
	if (sr->n_labels) {
		s->labels = calloc(sr->n_labels, sizeof(*s->labels));
		if (!s->labels)
			goto err_nomem;
	}
	for (size_t i = 0; i < sr->n_counters; i++) {
		copy_str(s->counters[i].name, sizeof(s->counters[i].name),
			 sr->counters[i]->name);
		s->counters[i].value = sr->counters[i]->value;
	}
	s->n_counters = (uint32_t)sr->n_counters;
	for (size_t i = 0; i < sr->n_labels; i++) {
		copy_str(s->labels[i].name, sizeof(s->labels[i].name),
			 sr->labels[i]->name);
		copy_str(s->labels[i].value, sizeof(s->labels[i].value),
			 sr->labels[i]->value);
	}
	s->n_labels = (uint32_t)sr->n_labels;
	smmu_offload__response__free_unpacked(resp, NULL);
	*ret = s;
	return 0;

err_nomem:
	smmu_client_stats_free(s);
	smmu_offload__response__free_unpacked(resp, NULL);
	return -ENOMEM;
}

void smmu_client_stats_free(struct smmu_client_stats *s)
{
	if (!s)
		return;
	free(s->counters);
	free(s->labels);
	free(s);
}

int smmu_client_stats_get(const struct smmu_client_stats *s, const char *name,
			  uint64_t *ret_value)
{
	for (uint32_t i = 0; i < s->n_counters; i++) {
		if (!strcmp(s->counters[i].name, name)) {
			*ret_value = s->counters[i].value;
			return 0;
		}
	}
	return -ENOENT;
}

const char *smmu_client_stats_label(const struct smmu_client_stats *s,
				    const char *name)
{
	for (uint32_t i = 0; i < s->n_labels; i++)
		if (!strcmp(s->labels[i].name, name))
			return s->labels[i].value;
	return NULL;
}

int smmu_client_list(struct smmu_client *c, uint32_t vsmmu_id,
		     struct smmu_client_list **ret)
{
	SmmuOffload__Request req = SMMU_OFFLOAD__REQUEST__INIT;
	SmmuOffload__List body = SMMU_OFFLOAD__LIST__INIT;
	SmmuOffload__Response *resp;
	SmmuOffload__ListReply *lr;
	struct smmu_client_list *l;
	int r;

	body.has_vsmmu_id = true;
	body.vsmmu_id = vsmmu_id ? client_cur_id(c, OBJ_VSMMU, vsmmu_id) : 0;
	req.body_case = SMMU_OFFLOAD__REQUEST__BODY_LIST;
	req.list = &body;
	r = client_call_expect(c, &req, NULL,
			       SMMU_OFFLOAD__RESPONSE__RESULT_LIST, &resp);
	if (r)
		return r;
	lr = resp->list;
	l = calloc(1, sizeof(*l));
	if (!l)
		goto err_nomem;
	if (lr->n_vsmmus &&
	    !(l->vsmmus = calloc(lr->n_vsmmus, sizeof(*l->vsmmus))))
		goto err_nomem;
	if (lr->n_rings && !(l->rings = calloc(lr->n_rings, sizeof(*l->rings))))
		goto err_nomem;
	if (lr->n_devices &&
	    !(l->devices = calloc(lr->n_devices, sizeof(*l->devices))))
		goto err_nomem;
	if (lr->n_vcmdqs &&
	    !(l->vcmdqs = calloc(lr->n_vcmdqs, sizeof(*l->vcmdqs))))
		goto err_nomem;
	if (client_list_vcmdq_extras(lr, l))
		goto err_nomem;
	for (size_t i = 0; i < lr->n_vsmmus; i++) {
		const SmmuOffload__VsmmuInfo *p = lr->vsmmus[i];
		struct smmu_client_vsmmu *v = &l->vsmmus[i];

		v->id = p->id;
		copy_str(v->hsmmu, sizeof(v->hsmmu), p->host_smmu);
		v->n_rings = p->n_rings;
		v->n_devices = p->n_devices;
		v->owned = p->owned;
	}
	for (size_t i = 0; i < lr->n_rings; i++) {
		const SmmuOffload__RingInfo *p = lr->rings[i];

		l->rings[i] = (struct smmu_client_ring){
			.id = p->id,
			.vsmmu_id = p->vsmmu_id,
			.halted = p->halted,
			.err = p->err,
			.owned = p->owned,
		};
	}
	for (size_t i = 0; i < lr->n_devices; i++) {
		const SmmuOffload__DeviceInfo *p = lr->devices[i];

		l->devices[i] = (struct smmu_client_device){
			.vsmmu_id = p->vsmmu_id,
			.vsid = p->vsid,
			.dev_id = p->dev_id,
			.vdev_id = p->vdev_id,
			.owned = p->owned,
		};
	}
	for (size_t i = 0; i < lr->n_vcmdqs; i++) {
		const SmmuOffload__VcmdqInfo *p = lr->vcmdqs[i];

		l->vcmdqs[i] = (struct smmu_client_vcmdq_info){
			.id = p->id,
			.vsmmu_id = p->vsmmu_id,
			.nq = p->nq,
			.n_halted = p->halted,
			.owned = p->owned,
		};
	}
	l->n_vcmdqs = (uint32_t)lr->n_vcmdqs;
	l->n_vsmmus = (uint32_t)lr->n_vsmmus;
	l->n_rings = (uint32_t)lr->n_rings;
	l->n_devices = (uint32_t)lr->n_devices;
	l->truncated = lr->has_truncated && lr->truncated;
	smmu_offload__response__free_unpacked(resp, NULL);
	*ret = l;
	return 0;

err_nomem:
	smmu_client_list_free(l);
	smmu_offload__response__free_unpacked(resp, NULL);
	return -ENOMEM;
}

void smmu_client_list_free(struct smmu_client_list *l)
{
	if (!l)
		return;
	free(l->vsmmus);
	free(l->rings);
	free(l->devices);
	free(l->vcmdqs);
	free(l->vqueues);
	free(l->gmem);
	free(l);
}
