/* SPDX-License-Identifier: MIT */
/*
 * rpc framing and decoding against hostile input, on socketpairs; and the
 * client library's encoding against a scripted fake server in a child
 * process. No core service involved.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <smmu-offload/client.h>
#include <smmu-offload/vcmdq.h>

#include "common/fdcheck.h"
#include "rpc/frame.h"
#include "rpc/smmu_offload.pb-c.h"
#include "tests/lib/tlib.h"

/* ---- helpers -------------------------------------------------------- */

static void seqpacket_pair(int sv[2])
{
	ASSERT_OK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) ?
			  -errno :
			  0);
}

static int _recv_frame(int sock, uint8_t *buf, size_t *len, struct rpc_fds *fds)
{
	return rpc_frame_recv(sock, buf, len, fds);
}

static void recv_frame(int sock, uint8_t *buf, size_t *len, struct rpc_fds *fds)
{
	ASSERT_OK(_recv_frame(sock, buf, len, fds));
}

static void recv_frame_err(int err, int sock, uint8_t *buf)
{
	struct rpc_fds fds;
	size_t len;

	ASSERT_ERR(err, _recv_frame(sock, buf, &len, &fds));
}

static uint8_t *frame_buf(void)
{
	/* One byte more than the limit: tests write past it on purpose. */
	uint8_t *b = malloc(RPC_FRAME_MAX + 1);

	ASSERT_NONNULL(b);
	return b;
}

/* ---- framing -------------------------------------------------------- */

TEST(frame_roundtrip_with_fds)
{
	uint8_t *buf = frame_buf();
	int sv[2], efd[RPC_FDS_MAX];
	struct rpc_fds out, in;
	size_t len;

	seqpacket_pair(sv);
	for (unsigned int n = 0; n <= RPC_FDS_MAX; n++) {
		rpc_fds_init(&out);
		for (unsigned int i = 0; i < n; i++) {
			efd[i] = eventfd(i + 1, EFD_CLOEXEC);
			ASSERT_GE(efd[i], 0);
			out.fd[out.n++] = efd[i];
		}
		ASSERT_OK(rpc_frame_send(sv[0], "hello", 5, &out));
		recv_frame(sv[1], buf, &len, &in);
		ASSERT_EQ(len, 5);
		ASSERT_EQ(memcmp(buf, "hello", 5), 0);
		ASSERT_EQ(in.n, n);
		for (unsigned int i = 0; i < n; i++) {
			struct stat a, b;
			uint64_t v;

			/* Same open file, received close-on-exec. */
			ASSERT_EQ(fstat(efd[i], &a), 0);
			ASSERT_EQ(fstat(in.fd[i], &b), 0);
			ASSERT_EQ(a.st_ino, b.st_ino);
			ASSERT_TRUE(fcntl(in.fd[i], F_GETFD) & FD_CLOEXEC);
			ASSERT_EQ(read(in.fd[i], &v, sizeof(v)), sizeof(v));
			ASSERT_EQ(v, i + 1);
			close(efd[i]);
		}
		for (unsigned int i = n; i < RPC_FDS_MAX; i++)
			ASSERT_EQ(in.fd[i], -1);
		rpc_fds_close(&in);
	}
	close(sv[0]);
	close(sv[1]);
	free(buf);
}

TEST(frame_send_rejects_bad_args)
{
	uint8_t *buf = frame_buf();
	struct rpc_fds fds;
	int sv[2];

	seqpacket_pair(sv);
	rpc_fds_init(&fds);
	ASSERT_ERR(-EINVAL, rpc_frame_send(sv[0], buf, 0, NULL));
	ASSERT_ERR(-EMSGSIZE,
		   rpc_frame_send(sv[0], buf, RPC_FRAME_MAX + 1, NULL));
	fds.n = RPC_FDS_MAX + 1;
	ASSERT_ERR(-EINVAL, rpc_frame_send(sv[0], buf, 1, &fds));
	/* Exactly the limit is fine. */
	memset(buf, 0xab, RPC_FRAME_MAX);
	ASSERT_OK(rpc_frame_send(sv[0], buf, RPC_FRAME_MAX, NULL));
	close(sv[1]);
	/* ECONNRESET: the peer closed with our datagram unread. */
	ASSERT_ERR(-ECONNRESET, rpc_frame_send(sv[0], buf, 1, NULL));
	/* The error is reported once; then the socket is just closed. */
	ASSERT_ERR(-EPIPE, rpc_frame_send(sv[0], buf, 1, NULL));
	close(sv[0]);
	free(buf);
}

TEST(frame_oversized_datagram_refused_and_stream_continues)
{
	uint8_t *buf = frame_buf(), *big;
	size_t len;
	struct rpc_fds fds;
	int sv[2], efd, before;
	int sz = 4 * RPC_FRAME_MAX;

	seqpacket_pair(sv);
	ASSERT_EQ(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)), 0);
	big = calloc(1, RPC_FRAME_MAX + 100);
	ASSERT_NONNULL(big);
	efd = eventfd(0, EFD_CLOEXEC);
	ASSERT_GE(efd, 0);
	before = tlib_fds(0);
	ASSERT_OK(tlib_raw_send(sv[0], big, RPC_FRAME_MAX + 100, &efd, 1));
	ASSERT_OK(tlib_raw_send(sv[0], "next", 4, NULL, 0));
	recv_frame_err(-EMSGSIZE, sv[1], buf);
	/* The fd that came with the oversized datagram was closed. */
	ASSERT_EQ(tlib_fds(0), before);
	recv_frame(sv[1], buf, &len, &fds);
	ASSERT_EQ(len, 4);
	ASSERT_EQ(memcmp(buf, "next", 4), 0);
	close(efd);
	close(sv[0]);
	close(sv[1]);
	free(big);
	free(buf);
}

TEST(frame_too_many_fds_ctrunc_closes_all)
{
	uint8_t *buf = frame_buf();
	int sv[2], fds[12], before;
	struct rpc_fds in;
	size_t len;

	seqpacket_pair(sv);
	for (unsigned int i = 0; i < 12; i++) {
		fds[i] = eventfd(0, EFD_CLOEXEC);
		ASSERT_GE(fds[i], 0);
	}
	before = tlib_fds(0);
	for (unsigned int n = RPC_FDS_MAX + 1; n <= 12; n += 3) {
		ASSERT_OK(tlib_raw_send(sv[0], "x", 1, fds, n));
		recv_frame_err(-EPROTO, sv[1], buf);
		ASSERT_EQ(tlib_fds(0), before);
	}
	/* The connection still works. */
	ASSERT_OK(tlib_raw_send(sv[0], "ok", 2, fds, 1));
	recv_frame(sv[1], buf, &len, &in);
	ASSERT_EQ(in.n, 1);
	rpc_fds_close(&in);
	ASSERT_EQ(tlib_fds(0), before);
	for (unsigned int i = 0; i < 12; i++)
		close(fds[i]);
	close(sv[0]);
	close(sv[1]);
	free(buf);
}

TEST(frame_eof_and_empty_datagram)
{
	uint8_t *buf = frame_buf();
	int sv[2], efd, before;

	seqpacket_pair(sv);
	efd = eventfd(0, EFD_CLOEXEC);
	before = tlib_fds(0);
	/* An empty datagram, even carrying an fd, reads as end of stream. */
	ASSERT_OK(tlib_raw_send(sv[0], "", 0, &efd, 1));
	recv_frame_err(-EPIPE, sv[1], buf);
	ASSERT_EQ(tlib_fds(0), before);
	close(sv[0]);
	recv_frame_err(-EPIPE, sv[1], buf);
	close(sv[1]);
	close(efd);
	free(buf);
}

TEST(frame_nonblocking_empty_is_eagain)
{
	uint8_t *buf = frame_buf();
	int sv[2];

	seqpacket_pair(sv);
	ASSERT_EQ(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	recv_frame_err(-EAGAIN, sv[1], buf);
	close(sv[0]);
	close(sv[1]);
	free(buf);
}

/* ---- decoding ------------------------------------------------------- */

/* A valid packed AttachDevice request in @buf; returns its length. */
static size_t pack_attach_device(uint8_t *buf)
{
	SmmuOffload__Request req = SMMU_OFFLOAD__REQUEST__INIT;
	SmmuOffload__AttachDevice ad = SMMU_OFFLOAD__ATTACH_DEVICE__INIT;

	ad.vsmmu_id = 7;
	ad.dev_id = 0x1234;
	ad.vsid = 0x123456789aull;
	req.id = 99;
	req.body_case = SMMU_OFFLOAD__REQUEST__BODY_ATTACH_DEVICE;
	req.attach_device = &ad;
	return smmu_offload__request__pack(&req, buf);
}

static int _decode(const uint8_t *buf, size_t len, ProtobufCAllocator *a,
		   SmmuOffload__Request **ret)
{
	return rpc_msg_decode(&smmu_offload__request__descriptor, a, buf, len,
			      (ProtobufCMessage **)ret);
}

TEST(decode_valid_and_every_truncation)
{
	uint8_t buf[256];
	SmmuOffload__Request *r;
	size_t len = pack_attach_device(buf);
	unsigned int ok = 0, bad = 0;

	ASSERT_OK(_decode(buf, len, NULL, &r));
	ASSERT_EQ(r->id, 99);
	ASSERT_EQ(r->body_case, SMMU_OFFLOAD__REQUEST__BODY_ATTACH_DEVICE);
	ASSERT_EQ(r->attach_device->vsid, 0x123456789aull);
	rpc_msg_free(&r->base, NULL);

	/*
	 * Every strict prefix: the embedded AttachDevice is length-delimited,
	 * so any cut inside it or inside the id varint must fail; only the
	 * prefix ending right after the id (a Request with no body) decodes.
	 */
	for (size_t l = 0; l < len; l++) {
		if (_decode(buf, l, NULL, &r) == 0) {
			ok++;
			ASSERT_EQ(r->body_case,
				  SMMU_OFFLOAD__REQUEST__BODY__NOT_SET);
			rpc_msg_free(&r->base, NULL);
		} else {
			bad++;
		}
	}
	ASSERT_EQ(ok, 1);
	ASSERT_EQ(bad, len - 1);
}

TEST(decode_missing_required_field)
{
	SmmuOffload__AttachDevice ad = SMMU_OFFLOAD__ATTACH_DEVICE__INIT;
	SmmuOffload__Request *r;
	uint8_t buf[64], body[32];
	size_t blen, len = 0;

	/* AttachDevice without vsid (field 3), wrapped in Request field 6. */
	ad.vsmmu_id = 1;
	ad.dev_id = 2;
	blen = smmu_offload__attach_device__get_packed_size(&ad);
	smmu_offload__attach_device__pack(&ad, body);
	/* Drop the trailing vsid: pack always writes required fields. */
	ASSERT_EQ(body[blen - 2], (3 << 3) | 0);
	blen -= 2;
	buf[len++] = (1 << 3) | 0; /* id */
	buf[len++] = 5;
	buf[len++] = (6 << 3) | 2; /* attach_device */
	buf[len++] = (uint8_t)blen;
	memcpy(buf + len, body, blen);
	len += blen;
	ASSERT_ERR(-EBADMSG, _decode(buf, len, NULL, &r));
	/* Without the id (required) as well. */
	ASSERT_ERR(-EBADMSG, _decode(buf + 2, len - 2, NULL, &r));
}

TEST(decode_garbage_never_crashes)
{
	uint64_t seed = t_seed();
	uint8_t buf[512];
	SmmuOffload__Request *r;
	unsigned int decoded = 0;

	for (unsigned int iter = 0; iter < 20000; iter++) {
		size_t len = t_rand(&seed) % sizeof(buf);

		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)t_rand(&seed);
		/* Half the time start from a valid message and flip bytes. */
		if (iter & 1) {
			len = pack_attach_device(buf);
			for (int k = 0; k < 3; k++)
				buf[t_rand(&seed) % len] ^=
					(uint8_t)(1u << (t_rand(&seed) % 8));
		}
		if (_decode(buf, len, NULL, &r) == 0) {
			decoded++;
			rpc_msg_free(&r->base, NULL);
		}
	}
	/* Flipped valid messages decode sometimes; pure noise rarely. */
	ASSERT_GT(decoded, 0);
}

/* A counting allocator that fails the nth allocation. */
struct fail_alloc {
	int fail_at; /* 0-based allocation index to fail; -1 never */
	int calls;
	int live;
};

static void *fa_alloc(void *data, size_t size)
{
	struct fail_alloc *fa = data;
	void *p;

	if (fa->calls++ == fa->fail_at)
		return NULL;
	p = malloc(size);
	if (p)
		fa->live++;
	return p;
}

static void fa_free(void *data, void *p)
{
	struct fail_alloc *fa = data;

	if (p)
		fa->live--;
	free(p);
}

TEST(decode_oversized_refused_before_protobuf)
{
	struct fail_alloc fa = { .fail_at = -1 };
	ProtobufCAllocator a = { fa_alloc, fa_free, &fa };
	uint8_t *buf = frame_buf();
	SmmuOffload__Request *r;
	size_t len = pack_attach_device(buf);

	ASSERT_ERR(-EMSGSIZE, _decode(buf, RPC_FRAME_MAX + 1, &a, &r));
	ASSERT_EQ(fa.calls, 0);
	ASSERT_OK(_decode(buf, len, &a, &r));
	ASSERT_GT(fa.calls, 0);
	rpc_msg_free(&r->base, &a);
	ASSERT_EQ(fa.live, 0);
	free(buf);
}

TEST(decode_allocation_failures_fail_cleanly)
{
	SmmuOffload__Request req = SMMU_OFFLOAD__REQUEST__INIT;
	SmmuOffload__Hello h = SMMU_OFFLOAD__HELLO__INIT;
	SmmuOffload__Request *r;
	uint8_t buf[256];
	size_t len;
	int n;

	h.protocol_version = 1;
	h.client_name = (char *)"fail-nth";
	req.id = 3;
	req.body_case = SMMU_OFFLOAD__REQUEST__BODY_HELLO;
	req.hello = &h;
	len = smmu_offload__request__pack(&req, buf);

	/* fail-nth: fail each allocation in turn until decoding succeeds. */
	for (n = 0; n < 64; n++) {
		struct fail_alloc fa = { .fail_at = n };
		ProtobufCAllocator a = { fa_alloc, fa_free, &fa };
		int ret = _decode(buf, len, &a, &r);

		if (ret == 0) {
			ASSERT_STREQ(r->hello->client_name, "fail-nth");
			rpc_msg_free(&r->base, &a);
			ASSERT_EQ(fa.live, 0);
			break;
		}
		ASSERT_ERR(-EBADMSG, ret);
		/* Nothing leaked on the failure path. */
		ASSERT_EQ(fa.live, 0);
	}
	/* At least two allocations (request, hello, string) were swept. */
	ASSERT_GE(n, 2);
	ASSERT_LT(n, 64);
}

TEST(eventfd_check)
{
	int efd = eventfd(0, EFD_CLOEXEC), p[2], mfd;

	ASSERT_GE(efd, 0);
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	mfd = memfd_create("x", MFD_CLOEXEC);
	ASSERT_GE(mfd, 0);
	ASSERT_OK(common_fd_check_eventfd(efd));
	ASSERT_ERR(-EBADF, common_fd_check_eventfd(p[0]));
	ASSERT_ERR(-EBADF, common_fd_check_eventfd(mfd));
	ASSERT_ERR(-EBADF, common_fd_check_eventfd(-1));
	close(p[1]);
	ASSERT_ERR(-EBADF, common_fd_check_eventfd(p[1]));
	close(p[0]);
	close(mfd);
	close(efd);
}

/* ---- client encoding against a scripted fake server ----------------- */

FIXTURE(fake)
{
	char dir[64];
	char path[96];
	int lsock;
	pid_t pid;
};

FIXTURE_SETUP(fake)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(self->dir, sizeof(self->dir), "/tmp/rpc-frame-XXXXXX");
	ASSERT_NONNULL(mkdtemp(self->dir));
	snprintf(self->path, sizeof(self->path), "%s/s", self->dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", self->path);
	self->lsock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	ASSERT_GE(self->lsock, 0);
	ASSERT_EQ(bind(self->lsock, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ASSERT_EQ(listen(self->lsock, 4), 0);
	self->pid = -1;
}

FIXTURE_TEARDOWN(fake)
{
	if (self->pid > 0) {
		kill(self->pid, SIGKILL);
		waitpid(self->pid, NULL, 0);
	}
	close(self->lsock);
	unlink(self->path);
	rmdir(self->dir);
}

/* Child side: receive one Request; exits 10+ on a protocol surprise. */
static SmmuOffload__Request *fake_recv(int s, struct rpc_fds *fds)
{
	static uint8_t buf[RPC_FRAME_MAX];
	SmmuOffload__Request *r;
	size_t len;

	if (rpc_frame_recv(s, buf, &len, fds))
		_exit(10);
	if (_decode(buf, len, NULL, &r))
		_exit(11);
	return r;
}

static void fake_reply(int s, SmmuOffload__Response *resp)
{
	if (rpc_msg_send(s, &resp->base, NULL))
		_exit(12);
}

static void fake_server(int lsock)
{
	SmmuOffload__Response resp = SMMU_OFFLOAD__RESPONSE__INIT;
	SmmuOffload__HelloReply hr = SMMU_OFFLOAD__HELLO_REPLY__INIT;
	SmmuOffload__AttachRingReply ar = SMMU_OFFLOAD__ATTACH_RING_REPLY__INIT;
	SmmuOffload__Empty done = SMMU_OFFLOAD__EMPTY__INIT;
	SmmuOffload__Request *r;
	struct rpc_fds fds;
	int s = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);

	if (s < 0)
		_exit(13);
	/* 1. Hello */
	r = fake_recv(s, &fds);
	if (r->body_case != SMMU_OFFLOAD__REQUEST__BODY_HELLO ||
	    r->hello->protocol_version != SMMU_CLIENT_PROTOCOL_VERSION ||
	    strcmp(r->hello->client_name, "unit") || fds.n)
		_exit(14);
	resp.id = r->id;
	hr.protocol_version = 1;
	hr.server_version = (char *)"fake-9";
	hr.backend = (char *)"sim";
	resp.result_case = SMMU_OFFLOAD__RESPONSE__RESULT_HELLO;
	resp.hello = &hr;
	fake_reply(s, &resp);
	rpc_msg_free(&r->base, NULL);

	/* 2. AttachRing with three fds, answered with ring 77. */
	r = fake_recv(s, &fds);
	if (r->body_case != SMMU_OFFLOAD__REQUEST__BODY_ATTACH_RING ||
	    r->attach_ring->vsmmu_id != 5 || fds.n != 3 ||
	    common_fd_check_eventfd(fds.fd[1]) ||
	    common_fd_check_eventfd(fds.fd[2]))
		_exit(15);
	rpc_fds_close(&fds);
	resp = (SmmuOffload__Response)SMMU_OFFLOAD__RESPONSE__INIT;
	resp.id = r->id;
	ar.ring_id = 77;
	resp.result_case = SMMU_OFFLOAD__RESPONSE__RESULT_ATTACH_RING;
	resp.attach_ring = &ar;
	fake_reply(s, &resp);
	rpc_msg_free(&r->base, NULL);

	/* 3. DetachDevice: refused with a message. */
	r = fake_recv(s, &fds);
	if (r->body_case != SMMU_OFFLOAD__REQUEST__BODY_DETACH_DEVICE ||
	    r->detach_device->vsid != 0xabcdef012ull)
		_exit(16);
	resp = (SmmuOffload__Response)SMMU_OFFLOAD__RESPONSE__INIT;
	resp.id = r->id;
	resp.has_error = true;
	resp.error = ENOENT;
	resp.message = (char *)"no such vSID";
	fake_reply(s, &resp);
	rpc_msg_free(&r->base, NULL);

	/* 4. DetachRing answered with the wrong id. */
	r = fake_recv(s, &fds);
	resp = (SmmuOffload__Response)SMMU_OFFLOAD__RESPONSE__INIT;
	resp.id = r->id + 1000;
	resp.result_case = SMMU_OFFLOAD__RESPONSE__RESULT_DONE;
	resp.done = &done;
	fake_reply(s, &resp);
	rpc_msg_free(&r->base, NULL);

	/* 5. ResumeRing answered with the wrong result type. */
	r = fake_recv(s, &fds);
	resp = (SmmuOffload__Response)SMMU_OFFLOAD__RESPONSE__INIT;
	resp.id = r->id;
	resp.result_case = SMMU_OFFLOAD__RESPONSE__RESULT_ATTACH_RING;
	resp.attach_ring = &ar;
	fake_reply(s, &resp);
	rpc_msg_free(&r->base, NULL);

	/* 6. Garbage reply to the next request, then hang up. */
	r = fake_recv(s, &fds);
	if (rpc_frame_send(s, "\xff\xff\xff", 3, NULL))
		_exit(17);
	rpc_msg_free(&r->base, NULL);
	close(s);
	_exit(0);
}

TEST_F(fake, client_encoding_and_reply_checks)
{
	struct smmu_client *c;
	int memfd, db, cq, st;
	uint32_t id = 0;

	self->pid = fork();
	ASSERT_GE(self->pid, 0);
	if (self->pid == 0)
		fake_server(self->lsock);

	ASSERT_OK(smmu_client_connect(self->path, "unit", &c));
	ASSERT_STREQ(smmu_client_server_version(c), "fake-9");
	ASSERT_STREQ(smmu_client_backend(c), "sim");

	memfd = memfd_create("ring", MFD_CLOEXEC);
	db = eventfd(0, EFD_CLOEXEC);
	cq = eventfd(0, EFD_CLOEXEC);
	ASSERT_OK(smmu_client_ring_attach(c, 5, memfd, db, cq, &id));
	ASSERT_EQ(id, 77);

	ASSERT_ERR(-ENOENT, smmu_client_device_detach(c, 5, 0xabcdef012ull));
	ASSERT_STREQ(smmu_client_error(c), "no such vSID");
	ASSERT_ERR(-EPROTO, smmu_client_ring_detach(c, 77));
	ASSERT_STREQ(smmu_client_error(c), "");
	ASSERT_ERR(-EPROTO, smmu_client_ring_resume(c, 77));
	ASSERT_ERR(-EBADMSG, smmu_client_ring_resume(c, 77));
	/* The fake server hung up: EPIPE, or ECONNRESET if our request
	 * reached it before it closed. */
	{
		int r = smmu_client_ring_resume(c, 77);

		ASSERT_TRUE(r == -EPIPE || r == -ECONNRESET);
	}
	/* Arguments checked before anything is sent. */
	ASSERT_ERR(-EBADF, smmu_client_ring_attach(c, 5, -1, db, cq, &id));
	ASSERT_ERR(-EINVAL, smmu_client_stats(c, 9, 0, NULL));

	ASSERT_EQ(waitpid(self->pid, &st, 0), self->pid);
	self->pid = -1;
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(WEXITSTATUS(st), 0);
	smmu_client_free(c);
	close(memfd);
	close(db);
	close(cq);
}

TEST_F(fake, client_refused_at_handshake)
{
	struct smmu_client *c;
	int st;

	self->pid = fork();
	ASSERT_GE(self->pid, 0);
	if (self->pid == 0) {
		SmmuOffload__Response resp = SMMU_OFFLOAD__RESPONSE__INIT;
		int s = accept4(self->lsock, NULL, NULL, SOCK_CLOEXEC);

		/* As the server does for a refused uid: answer, hang up. */
		resp.has_error = true;
		resp.error = EACCES;
		resp.message = (char *)"uid 1 gid 1 is not allowed";
		fake_reply(s, &resp);
		close(s);
		_exit(0);
	}
	ASSERT_ERR(-EACCES, smmu_client_connect(self->path, "x", &c));
	ASSERT_EQ(waitpid(self->pid, &st, 0), self->pid);
	self->pid = -1;
	ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

TEST(client_connect_errors)
{
	struct smmu_client *c;
	char longpath[200];

	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	ASSERT_ERR(-ENAMETOOLONG, smmu_client_connect(longpath, NULL, &c));
	ASSERT_ERR(-ENOENT,
		   smmu_client_connect("/tmp/no-such-dir-rpc/s", NULL, &c));
}

/*
 * The largest List reply the server can send fits one frame: docs/RPC.md
 * promises at most 256 objects of each kind (vSMMUs, rings, devices,
 * vCMDQs, vCMDQ queues, guest RAM regions) and `truncated` beyond. Every
 * field at its widest encoding: the type's maximum, except the vCMDQ
 * queue fields the register layout bounds (smmu-offload/vcmdq.h: 128
 * queues, CONS.ERR 7 bits, LOG2SIZE 5 bits, PROD/CONS index and wrap bit
 * of a 2^19-entry queue, a 48-bit BASE address).
 */
#define LIST_OBJS 256

TEST(list_reply_worst_case_fits_a_frame)
{
	static SmmuOffload__VsmmuInfo vi[LIST_OBJS], *vp[LIST_OBJS];
	static SmmuOffload__RingInfo ri[LIST_OBJS], *rp[LIST_OBJS];
	static SmmuOffload__DeviceInfo di[LIST_OBJS], *dp[LIST_OBJS];
	static SmmuOffload__VcmdqInfo qi[LIST_OBJS], *qp[LIST_OBJS];
	static SmmuOffload__VcmdqQueueInfo ui[LIST_OBJS], *up[LIST_OBJS];
	static SmmuOffload__GuestMemoryInfo gi[LIST_OBJS], *gp[LIST_OBJS];
	SmmuOffload__Response resp = SMMU_OFFLOAD__RESPONSE__INIT;
	SmmuOffload__ListReply lr = SMMU_OFFLOAD__LIST_REPLY__INIT;
	char name[64];
	size_t len;

	memset(name, 'n', 63);
	name[63] = '\0';
	for (int i = 0; i < LIST_OBJS; i++) {
		vi[i] = (SmmuOffload__VsmmuInfo)SMMU_OFFLOAD__VSMMU_INFO__INIT;
		vi[i].id = UINT32_MAX;
		vi[i].host_smmu = name;
		vi[i].has_n_rings = vi[i].has_n_devices = vi[i].has_owned = 1;
		vi[i].n_rings = vi[i].n_devices = UINT32_MAX;
		vi[i].owned = 1;
		vp[i] = &vi[i];
		ri[i] = (SmmuOffload__RingInfo)SMMU_OFFLOAD__RING_INFO__INIT;
		ri[i].id = ri[i].vsmmu_id = ri[i].err = UINT32_MAX;
		ri[i].has_vsmmu_id = ri[i].has_halted = ri[i].has_err =
			ri[i].has_owned = ri[i].halted = ri[i].owned = 1;
		rp[i] = &ri[i];
		di[i] = (SmmuOffload__DeviceInfo)SMMU_OFFLOAD__DEVICE_INFO__INIT;
		di[i].vsmmu_id = di[i].dev_id = di[i].vdev_id = UINT32_MAX;
		di[i].vsid = UINT64_MAX;
		di[i].has_dev_id = di[i].has_vdev_id = di[i].has_owned =
			di[i].owned = 1;
		dp[i] = &di[i];
		qi[i] = (SmmuOffload__VcmdqInfo)SMMU_OFFLOAD__VCMDQ_INFO__INIT;
		qi[i].id = qi[i].vsmmu_id = qi[i].nq = qi[i].halted =
			UINT32_MAX;
		qi[i].has_vsmmu_id = qi[i].has_nq = qi[i].has_halted =
			qi[i].has_owned = qi[i].owned = 1;
		qp[i] = &qi[i];
		ui[i] = (SmmuOffload__VcmdqQueueInfo)
			SMMU_OFFLOAD__VCMDQ_QUEUE_INFO__INIT;
		ui[i].has_lidx = ui[i].has_state = ui[i].has_ready =
			ui[i].has_err = ui[i].has_base_set =
				ui[i].has_base_gpa = ui[i].has_log2size =
					ui[i].has_prod = ui[i].has_cons = 1;
		ui[i].lidx = SMMU_VCMDQ_MAX_QUEUES - 1;
		ui[i].state =
			SMMU_OFFLOAD__VCMDQ_QUEUE_STATE__VCMDQ_QUEUE_HALTED;
		ui[i].ready = ui[i].base_set = 1;
		ui[i].err = 0x7f;
		ui[i].base_gpa = SMMU_VCMDQ_BASE_ADDR_MASK;
		ui[i].log2size = 0x1f;
		ui[i].prod = ui[i].cons = (2u << SMMU_VCMDQ_MAX_LOG2) - 1;
		up[i] = &ui[i];
		gi[i] = (SmmuOffload__GuestMemoryInfo)
			SMMU_OFFLOAD__GUEST_MEMORY_INFO__INIT;
		gi[i].has_vsmmu_id = gi[i].has_gpa = gi[i].has_size =
			gi[i].has_offset = gi[i].has_owned = gi[i].owned = 1;
		gi[i].vsmmu_id = UINT32_MAX;
		gi[i].gpa = gi[i].size = gi[i].offset = UINT64_MAX;
		gp[i] = &gi[i];
	}
	/* The queues in two vCMDQs of 128 (the most one can have). */
	qi[0].n_queues = qi[1].n_queues = SMMU_VCMDQ_MAX_QUEUES;
	qi[0].queues = up;
	qi[1].queues = up + SMMU_VCMDQ_MAX_QUEUES;
	lr.n_vsmmus = lr.n_rings = lr.n_devices = lr.n_vcmdqs =
		lr.n_guest_memory = LIST_OBJS;
	lr.vsmmus = vp;
	lr.rings = rp;
	lr.devices = dp;
	lr.vcmdqs = qp;
	lr.guest_memory = gp;
	lr.has_truncated = lr.truncated = 1;
	resp.id = UINT64_MAX;
	resp.result_case = SMMU_OFFLOAD__RESPONSE__RESULT_LIST;
	resp.list = &lr;
	len = smmu_offload__response__get_packed_size(&resp);
	fprintf(stderr, "# worst-case List reply: %zu of %u bytes\n", len,
		RPC_FRAME_MAX);
	ASSERT_LE(len, RPC_FRAME_MAX);
}

TEST_HARNESS_MAIN
