/* SPDX-License-Identifier: MIT */
/*
 * rpc framing: one protobuf message per AF_UNIX SOCK_SEQPACKET datagram,
 * file descriptors by SCM_RIGHTS in the same datagram. Shared by the
 * server and the client library; internal to rpc/.
 *
 * Receive rules (the peer is untrusted):
 *   - a datagram longer than RPC_FRAME_MAX is refused (-EMSGSIZE) before
 *     any decoding; the kernel discards the rest of it;
 *   - more than RPC_FDS_MAX fds (MSG_CTRUNC) or any control message other
 *     than SCM_RIGHTS is refused (-EPROTO) and every fd received with it is
 *     closed, so a hostile peer cannot make us leak descriptors;
 *   - fds are received with MSG_CMSG_CLOEXEC.
 *
 * Thread context: any thread; a socket is used by one thread at a time.
 * Nothing here logs. All functions return 0 or -errno.
 */
#ifndef SMMU_OFFLOAD_RPC_FRAME_H
#define SMMU_OFFLOAD_RPC_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* Largest datagram either side sends or accepts. */
#define RPC_FRAME_MAX (64u * 1024u)
/* Most fds one message carries (AttachRing: memfd + two eventfds). */
#define RPC_FDS_MAX 4u

/**
 * struct rpc_fds - descriptors received with or sent with one message.
 * @fd: the descriptors; entries [n, RPC_FDS_MAX) are -1.
 * @n:  how many.
 * Owned by whoever holds the struct: rpc_fds_close() closes them all.
 */
struct rpc_fds {
	int fd[RPC_FDS_MAX];
	unsigned int n;
};

static inline void rpc_fds_init(struct rpc_fds *f)
{
	for (unsigned int i = 0; i < RPC_FDS_MAX; i++)
		f->fd[i] = -1;
	f->n = 0;
}

/* rpc_fds_close() - close every fd held and reset @f to empty. */
void rpc_fds_close(struct rpc_fds *f);

/**
 * rpc_frame_send() - send one datagram with optional fds.
 * @sock: a connected SOCK_SEQPACKET socket (blocking or not).
 * @buf:  bytes; @len in [1, RPC_FRAME_MAX].
 * @fds:  fds to pass (not consumed), or NULL.
 * Uses MSG_NOSIGNAL: a closed peer gives -EPIPE, never SIGPIPE.
 * Return: 0, -EINVAL (len 0 or too many fds), -EMSGSIZE (too long),
 * -EAGAIN (non-blocking socket full), -EPIPE, other send errnos.
 */
int rpc_frame_send(int sock, const void *buf, size_t len,
		   const struct rpc_fds *fds);

/**
 * rpc_frame_recv() - receive one datagram.
 * @sock:    a connected SOCK_SEQPACKET socket.
 * @buf:     at least RPC_FRAME_MAX bytes.
 * @ret_len: the datagram's length.
 * @ret_fds: the fds that came with it; the caller owns and must close
 *           them (rpc_fds_close()). Set only on success.
 * Return: 0; -EPIPE (orderly end of stream: the peer closed; a
 * zero-length datagram counts as such), -EAGAIN, -EMSGSIZE (datagram
 * longer than RPC_FRAME_MAX), -EPROTO (too many fds or an unexpected
 * control message); in both error cases the datagram is consumed and its
 * fds closed. Other recvmsg errnos.
 */
int rpc_frame_recv(int sock, void *buf, size_t *ret_len,
		   struct rpc_fds *ret_fds);

/**
 * rpc_msg_send() - pack @msg and send it with @fds.
 * Return: rpc_frame_send() errnos; -EMSGSIZE if the packed message is
 * longer than RPC_FRAME_MAX; -ENOMEM.
 */
int rpc_msg_send(int sock, const ProtobufCMessage *msg,
		 const struct rpc_fds *fds);

/**
 * rpc_msg_decode() - unpack @len bytes as a @desc message.
 * @alloc: the allocator protobuf-c uses (NULL: malloc). Tests inject
 *         allocation failures through it.
 * @ret:   the message; free it with rpc_msg_free() and the same @alloc.
 * Return: 0; -EMSGSIZE (len > RPC_FRAME_MAX, checked before protobuf-c
 * sees a byte), -EBADMSG (truncated, garbage, missing required field or
 * out of memory inside protobuf-c: it does not tell them apart).
 */
int rpc_msg_decode(const ProtobufCMessageDescriptor *desc,
		   ProtobufCAllocator *alloc, const void *buf, size_t len,
		   ProtobufCMessage **ret);

/* rpc_msg_free() - free a message from rpc_msg_decode(); NULL is a no-op. */
void rpc_msg_free(ProtobufCMessage *msg, ProtobufCAllocator *alloc);

#endif
