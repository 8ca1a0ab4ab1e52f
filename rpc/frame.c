/* SPDX-License-Identifier: MIT */
#include "rpc/frame.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void rpc_fds_close(struct rpc_fds *f)
{
	for (unsigned int i = 0; i < RPC_FDS_MAX; i++) {
		if (f->fd[i] >= 0)
			close(f->fd[i]);
		f->fd[i] = -1;
	}
	f->n = 0;
}

/* Room for RPC_FDS_MAX fds, aligned for struct cmsghdr. */
union rpc_cmsg_buf {
	char buf[CMSG_SPACE(sizeof(int) * RPC_FDS_MAX)];
	struct cmsghdr align;
};

int rpc_frame_send(int sock, const void *buf, size_t len,
		   const struct rpc_fds *fds)
{
	union rpc_cmsg_buf cbuf;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (len == 0)
		return -EINVAL;
	if (len > RPC_FRAME_MAX)
		return -EMSGSIZE;
	if (fds && fds->n > RPC_FDS_MAX)
		return -EINVAL;
	if (fds && fds->n) {
		struct cmsghdr *c;

		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * fds->n);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * fds->n);
		memcpy(CMSG_DATA(c), fds->fd, sizeof(int) * fds->n);
	}
	do {
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	/* SOCK_SEQPACKET sends a datagram whole or not at all. */
	if ((size_t)n != len)
		return -EIO;
	return 0;
}

/*
 * Take the fds out of every SCM_RIGHTS message into @out; anything beyond
 * RPC_FDS_MAX, and the fds of any other control message type, are closed.
 * Return: 0, or -EPROTO if something had to be dropped.
 */
static int take_fds(struct msghdr *mh, struct rpc_fds *out)
{
	struct cmsghdr *c;
	int ret = 0;

	for (c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t n, i;
		int fd;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			/* SCM_CREDENTIALS etc.: we never ask for them. */
			ret = -EPROTO;
			continue;
		}
		if (c->cmsg_len < CMSG_LEN(0)) {
			ret = -EPROTO;
			continue;
		}
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			/* cmsg data may be unaligned for int: copy out. */
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (out->n < RPC_FDS_MAX) {
				out->fd[out->n++] = fd;
			} else {
				close(fd);
				ret = -EPROTO;
			}
		}
	}
	return ret;
}

int rpc_frame_recv(int sock, void *buf, size_t *ret_len,
		   struct rpc_fds *ret_fds)
{
	union rpc_cmsg_buf cbuf;
	struct iovec iov = { .iov_base = buf, .iov_len = RPC_FRAME_MAX };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf.buf,
		.msg_controllen = sizeof(cbuf.buf),
	};
	struct rpc_fds fds;
	ssize_t n;
	int ret;

	do {
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;

	rpc_fds_init(&fds);
	ret = take_fds(&mh, &fds);
	/*
	 * MSG_CTRUNC: the sender passed more fds than fit; the kernel
	 * installed the ones that did and dropped the rest. Whatever the
	 * request was, it is incomplete.
	 */
	if (mh.msg_flags & MSG_CTRUNC)
		ret = -EPROTO;
	/* The kernel discarded the rest of an oversized datagram. */
	else if (!ret && (mh.msg_flags & MSG_TRUNC))
		ret = -EMSGSIZE;
	else if (!ret && n == 0)
		ret = -EPIPE;
	if (ret) {
		rpc_fds_close(&fds);
		return ret;
	}
	*ret_len = (size_t)n;
	*ret_fds = fds;
	return 0;
}

int rpc_msg_send(int sock, const ProtobufCMessage *msg,
		 const struct rpc_fds *fds)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf;
	int ret;

	if (len > RPC_FRAME_MAX)
		return -EMSGSIZE;
	/* An all-default message packs to 0 bytes; never happens with our
	 * envelopes (the id is required) but keep the datagram non-empty. */
	if (len == 0)
		return -EINVAL;
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(msg, buf);
	ret = rpc_frame_send(sock, buf, len, fds);
	free(buf);
	return ret;
}

int rpc_msg_decode(const ProtobufCMessageDescriptor *desc,
		   ProtobufCAllocator *alloc, const void *buf, size_t len,
		   ProtobufCMessage **ret)
{
	ProtobufCMessage *m;

	if (len > RPC_FRAME_MAX)
		return -EMSGSIZE;
	m = protobuf_c_message_unpack(desc, alloc, len, buf);
	if (!m)
		return -EBADMSG;
	*ret = m;
	return 0;
}

void rpc_msg_free(ProtobufCMessage *msg, ProtobufCAllocator *alloc)
{
	if (msg)
		protobuf_c_message_free_unpacked(msg, alloc);
}
