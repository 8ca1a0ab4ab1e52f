/* SPDX-License-Identifier: MIT */
/* The control socket without the client library; see tlib.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "rpc/frame.h"
#include "rpc/smmu_offload.pb-c.h"
#include "tests/lib/tlib.h"

#define RAW_FDS_MAX 16

int tlib_raw_connect(const char *path, int sndbuf)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	ASSERT_GE(s, 0);
	if (sndbuf)
		ASSERT_EQ(setsockopt(s, SOL_SOCKET, SO_SNDBUF, &sndbuf,
				     sizeof(sndbuf)),
			  0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ASSERT_EQ(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return s;
}

int tlib_raw_send(int s, const void *buf, size_t len, const int *fds,
		  unsigned int n)
{
	char cbuf[CMSG_SPACE(sizeof(int) * RAW_FDS_MAX)];
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	ASSERT_LE(n, RAW_FDS_MAX);
	if (n) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	}
	return sendmsg(s, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

size_t tlib_raw_pack(const struct SmmuOffload__Request *req, uint8_t *buf,
		     size_t size)
{
	ASSERT_LE(smmu_offload__request__get_packed_size(req), size);
	return smmu_offload__request__pack(req, buf);
}

int _tlib_raw_reply(int s, struct tlib_reply *ret)
{
	static uint8_t rbuf[RPC_FRAME_MAX];
	ProtobufCMessage *m = NULL;
	SmmuOffload__Response *resp;
	struct rpc_fds rf;
	size_t rlen;
	int err;

	err = rpc_frame_recv(s, rbuf, &rlen, &rf);
	if (err)
		return err;
	ASSERT_EQ(rf.n, 0);
	ASSERT_OK(rpc_msg_decode(&smmu_offload__response__descriptor, NULL,
				 rbuf, rlen, &m));
	resp = (SmmuOffload__Response *)m;
	ret->id = resp->id;
	ret->err = resp->has_error ? resp->error : 0;
	ret->has_message = resp->message && *resp->message;
	rpc_msg_free(m, NULL);
	return 0;
}

int tlib_raw_reply(int s, struct tlib_reply *ret)
{
	struct tlib_reply rep;

	ASSERT_OK(_tlib_raw_reply(s, &rep));
	if (ret)
		*ret = rep;
	return -rep.err;
}

int tlib_raw_call(int s, const void *buf, size_t len, const int *fds,
		  unsigned int n, struct tlib_reply *ret)
{
	ASSERT_OK(tlib_raw_send(s, buf, len, fds, n));
	return tlib_raw_reply(s, ret);
}

size_t tlib_raw_pack_hello(uint8_t *buf, size_t size, uint64_t id,
			   uint32_t version, const char *name)
{
	SmmuOffload__Request req = SMMU_OFFLOAD__REQUEST__INIT;
	SmmuOffload__Hello h = SMMU_OFFLOAD__HELLO__INIT;

	h.protocol_version = version;
	h.client_name = (char *)name;
	req.id = id;
	req.body_case = SMMU_OFFLOAD__REQUEST__BODY_HELLO;
	req.hello = &h;
	return tlib_raw_pack(&req, buf, size);
}

int tlib_raw_send_hello(int s, uint32_t version)
{
	uint8_t buf[256];

	return tlib_raw_send(
		s, buf, tlib_raw_pack_hello(buf, sizeof(buf), 1, version, NULL),
		NULL, 0);
}

int tlib_raw_hello(int s, uint32_t version, struct tlib_reply *ret)
{
	ASSERT_OK(tlib_raw_send_hello(s, version));
	return tlib_raw_reply(s, ret);
}

int tlib_raw_list(int s, uint64_t id, const int *fds, unsigned int n,
		  struct tlib_reply *ret)
{
	SmmuOffload__Request req = SMMU_OFFLOAD__REQUEST__INIT;
	SmmuOffload__List l = SMMU_OFFLOAD__LIST__INIT;
	uint8_t buf[256];

	req.id = id;
	req.body_case = SMMU_OFFLOAD__REQUEST__BODY_LIST;
	req.list = &l;
	return tlib_raw_call(s, buf, tlib_raw_pack(&req, buf, sizeof(buf)), fds,
			     n, ret);
}

int tlib_raw_attach_ring(int s, uint64_t id, uint32_t vsmmu, const int *fds,
			 unsigned int n, struct tlib_reply *ret)
{
	SmmuOffload__Request req = SMMU_OFFLOAD__REQUEST__INIT;
	SmmuOffload__AttachRing ar = SMMU_OFFLOAD__ATTACH_RING__INIT;
	uint8_t buf[256];

	ar.vsmmu_id = vsmmu;
	req.id = id;
	req.body_case = SMMU_OFFLOAD__REQUEST__BODY_ATTACH_RING;
	req.attach_ring = &ar;
	return tlib_raw_call(s, buf, tlib_raw_pack(&req, buf, sizeof(buf)), fds,
			     n, ret);
}
