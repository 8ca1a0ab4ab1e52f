/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the RPC request decoder and the dispatcher behind it.
 *
 * rpc/server.h has no socket-less entry point (dispatch() is static), so
 * the target drives a real server in process: one core service on the sim
 * backend and one rpc_server on a libevent base, both created on the
 * first input and kept; each input opens a new connection, sends its
 * frames, and closes it, so every input also exercises the teardown of
 * what it created.
 *
 * Input: byte 0 bit 0 set = do not send the automatic valid Hello first;
 * then frames, each [u8 fds][u16 LE length][length bytes], at most
 * FUZZ_MAX_FRAMES. fds (bits 0-1): 0 none, 1 one eventfd, 2 a valid ring
 * memfd + doorbell + completion eventfds, 3 four eventfds (the maximum).
 * Each frame is also decoded on its own as a Request and as a Response
 * (the client library decodes replies from a possibly hostile server).
 *
 * Invariants (any violation aborts):
 *   - every datagram gets exactly one reply, a well-formed Response whose
 *     id is the request's (0 if undecodable) and whose error is 0 or a
 *     positive errno;
 *   - after the connection closes, the server forgets it, the service
 *     holds no vSMMU, ring or device, and no fd is left open.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include <smmu-offload/ring-prod.h>

#include "core/core.h"
#include "iommufd/sim.h"
#include "rpc/frame.h"
#include "rpc/server.h"
#include "rpc/smmu_offload.pb-c.h"
#include "tests/lib/fuzz.h"

#define FUZZ_MAX_FRAMES 24
/* How long a reply may take (the server thread waits on workers). */
#define REPLY_WAIT_MS 5000

static struct {
	struct event_base *base;
	struct core_service *svc;
	struct rpc_server *srv;
	char dir[64];
	char path[108];
	unsigned int base_fds;
	uint8_t buf[RPC_FRAME_MAX];
} g;

/*
 * Open fds of the kinds a connection brings in (sockets, eventfds,
 * memfds). Only those: libFuzzer itself opens pipes now and then (to its
 * symbolizer), which must not count as our leak.
 */
static bool fd_is_ours(int dfd, const char *fdname, char *link, size_t len)
{
	ssize_t n = readlinkat(dfd, fdname, link, len - 1);

	if (n < 0)
		return false;
	link[n] = '\0';
	return !strncmp(link, "socket:", 7) ||
	       !strcmp(link, "anon_inode:[eventfd]") ||
	       !strncmp(link, "/memfd:", 7);
}

/* @dump: print each of ours. */
static unsigned int count_fds(bool dump)
{
	char link[PATH_MAX];
	unsigned int n = 0;
	struct dirent *de;
	DIR *d = opendir("/proc/self/fd");

	FUZZ_CHECK(d);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' ||
		    !fd_is_ours(dirfd(d), de->d_name, link, sizeof(link)))
			continue;
		n++;
		if (dump)
			fprintf(stderr, "fuzz-rpc: fd %s -> %s\n", de->d_name,
				link);
	}
	closedir(d);
	return n;
}

/* No fd may outlive the connection; on failure, say which are open. */
static void check_fds(void)
{
	unsigned int n = count_fds(false);

	if (n == g.base_fds)
		return;
	count_fds(true);
	fprintf(stderr, "fuzz-rpc: %u fds open, %u before\n", n, g.base_fds);
	abort();
}

static void teardown(void)
{
	rpc_server_free(g.srv);
	core_service_free(g.svc);
	event_base_free(g.base);
	unlink(g.path);
	rmdir(g.dir);
}

static void setup(void)
{
	static const char *const names[] = { "smmu0", "smmu1" };
	struct iofd_sim_config sim;
	struct core_config cfg = {
		.backend = { .kind = "sim", .sim = &sim },
		.hsmmu_names = names,
		.n_hsmmu = 2,
		.poll_us = 0,
		.max_rings = 8,
	};
	struct rpc_server_config scfg = {
		.max_clients = 4,
		.max_vsmmus = 4,
		.max_rings = 4,
		.max_devices = 8,
	};

	iofd_sim_config_default(&sim);
	sim.wait = IOFD_SIM_WAIT_NONE;
	snprintf(g.dir, sizeof(g.dir), "/tmp/fuzz-rpc-XXXXXX");
	FUZZ_CHECK(mkdtemp(g.dir));
	snprintf(g.path, sizeof(g.path), "%s/sock", g.dir);
	scfg.path = g.path;
	g.base = event_base_new();
	FUZZ_CHECK(g.base);
	FUZZ_CHECK(core_service_new(&cfg, &g.svc) == 0);
	FUZZ_CHECK(rpc_server_new(g.base, g.svc, &scfg, &g.srv) == 0);
	atexit(teardown);
	g.base_fds = count_fds(false);
}

/* Run the server until @fd is readable (or hung up), or time out. */
static bool pump_until_readable(int fd)
{
	for (int i = 0; i < REPLY_WAIT_MS; i++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		event_base_loop(g.base, EVLOOP_NONBLOCK);
		if (poll(&p, 1, i ? 1 : 0) == 1)
			return true;
	}
	return false;
}

static void pump_until_gone(void)
{
	for (int i = 0; i < REPLY_WAIT_MS && rpc_server_clients(g.srv); i++) {
		struct pollfd p = { .fd = -1 };

		event_base_loop(g.base, EVLOOP_NONBLOCK);
		if (rpc_server_clients(g.srv))
			poll(&p, 0, 1);
	}
	FUZZ_CHECK(rpc_server_clients(g.srv) == 0);
}

static void make_fds(unsigned int kind, struct rpc_fds *f)
{
	rpc_fds_init(f);
	switch (kind & 3) {
	case 0:
		break;
	case 2:
		FUZZ_CHECK(ring_memfd_create(4, &f->fd[0]) == 0);
		f->fd[1] = eventfd(0, EFD_CLOEXEC);
		f->fd[2] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		f->n = 3;
		break;
	default:
		f->n = (kind & 3) == 1 ? 1 : RPC_FDS_MAX;
		for (unsigned int i = 0; i < f->n; i++)
			f->fd[i] = eventfd(0, EFD_CLOEXEC);
		break;
	}
	for (unsigned int i = 0; i < f->n; i++)
		FUZZ_CHECK(f->fd[i] >= 0);
}

/* One reply must be waiting on @sock; check it answers @want_id. */
static bool check_reply(int sock, uint64_t want_id)
{
	SmmuOffload__Response *resp;
	ProtobufCMessage *m = NULL;
	struct rpc_fds fds;
	size_t len;
	int r;

	FUZZ_CHECK(pump_until_readable(sock));
	r = rpc_frame_recv(sock, g.buf, &len, &fds);
	if (r == -EPIPE || r == -ECONNRESET)
		return false; /* the server dropped us: no reply owed */
	FUZZ_CHECK(r == 0);
	FUZZ_CHECK(fds.n == 0); /* the server never sends fds */
	FUZZ_CHECK(rpc_msg_decode(&smmu_offload__response__descriptor, NULL,
				  g.buf, len, &m) == 0);
	resp = (SmmuOffload__Response *)m;
	FUZZ_CHECK(resp->id == want_id);
	if (resp->has_error)
		FUZZ_CHECK(resp->error >= 0 && resp->error < 4096);
	rpc_msg_free(m, NULL);
	return true;
}

static void send_hello(int sock)
{
	SmmuOffload__Request req = SMMU_OFFLOAD__REQUEST__INIT;
	SmmuOffload__Hello h = SMMU_OFFLOAD__HELLO__INIT;

	h.protocol_version = 1;
	h.client_name = (char *)"fuzz";
	req.id = 1;
	req.body_case = SMMU_OFFLOAD__REQUEST__BODY_HELLO;
	req.hello = &h;
	FUZZ_CHECK(rpc_msg_send(sock, &req.base, NULL) == 0);
	FUZZ_CHECK(check_reply(sock, 1));
}

/* The decoders on their own: must not crash or leak. */
static uint64_t decode_alone(const uint8_t *p, size_t len, bool *ok)
{
	ProtobufCMessage *m = NULL;
	uint64_t id = 0;

	*ok = false;
	if (rpc_msg_decode(&smmu_offload__request__descriptor, NULL, p, len,
			   &m) == 0) {
		id = ((SmmuOffload__Request *)m)->id;
		*ok = true;
		rpc_msg_free(m, NULL);
	}
	if (rpc_msg_decode(&smmu_offload__response__descriptor, NULL, p, len,
			   &m) == 0)
		rpc_msg_free(m, NULL);
	return id;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t off = 1;
	bool alive = true;
	uint32_t n_vs = 0, n_rings = 0;
	int sock;

	if (!g.base)
		setup();
	if (!size)
		return 0;

	sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	FUZZ_CHECK(sock >= 0);
	memcpy(sa.sun_path, g.path, strlen(g.path) + 1);
	FUZZ_CHECK(connect(sock, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	if (!(data[0] & 1))
		send_hello(sock);

	for (int f = 0; alive && f < FUZZ_MAX_FRAMES && off + 3 <= size; f++) {
		unsigned int kind = data[off];
		size_t len = (size_t)data[off + 1] | (size_t)data[off + 2] << 8;
		struct rpc_fds fds;
		uint64_t id;
		bool ok;
		int r;

		off += 3;
		if (len > size - off)
			len = size - off;
		id = decode_alone(data + off, len, &ok);
		if (!len) {
			off += len;
			continue; /* a zero-length datagram means EOF */
		}
		make_fds(kind, &fds);
		r = rpc_frame_send(sock, data + off, len, &fds);
		rpc_fds_close(&fds);
		off += len;
		if (r == -EPIPE || r == -ECONNRESET)
			break;
		FUZZ_CHECK(r == 0);
		alive = check_reply(sock, ok ? id : 0);
	}
	close(sock);
	pump_until_gone();

	/* Everything the connection created was torn down, no fd leaked. */
	FUZZ_CHECK(core_list_vsmmus(g.svc, NULL, 0, &n_vs) == 0 && n_vs == 0);
	FUZZ_CHECK(core_list_rings(g.svc, 0, NULL, 0, &n_rings) == 0 &&
		   n_rings == 0);
	check_fds();
	return 0;
}
