/* SPDX-License-Identifier: MIT */
/*
 * Single-thread semantics of the ring: memfd checks, empty/full, index
 * wrap, halt/resume, and the NEED_WAKEUP set-flag/re-check interleavings.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/barrier.h"
#include "ring/ring_cons.h"
#include "ring/ring_i.h"
#include "tests/harness.h"

/* ---- raw ring memfds, built by hand so every header field can be bad */

static int _raw_ring_fd(uint32_t log2, size_t bytes, unsigned int seals,
			const struct smmu_ring_hdr *h, int *ret_fd)
{
	int fd, ret = 0;

	fd = memfd_create("test-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)bytes) < 0 ||
	    pwrite(fd, h, sizeof(*h), 0) != (ssize_t)sizeof(*h) ||
	    (seals && fcntl(fd, F_ADD_SEALS, seals) < 0)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	(void)log2;
	*ret_fd = fd;
	return 0;
}

static void hdr_v1(struct smmu_ring_hdr *h, uint32_t log2)
{
	memset(h, 0, sizeof(*h));
	h->magic = SMMU_RING_MAGIC;
	h->version_major = SMMU_RING_VERSION_MAJOR;
	h->version_minor = SMMU_RING_VERSION_MINOR;
	h->hdr_size = SMMU_RING_HDR_SIZE;
	h->entry_size = SMMU_RING_ENTRY_SIZE;
	h->log2_entries = log2;
}

static int raw_ring_fd(const struct smmu_ring_hdr *h)
{
	int fd = -1;

	ASSERT_OK(_raw_ring_fd(
		h->log2_entries,
		smmu_ring_bytes_hdr(h->hdr_size, h->log2_entries),
		F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL, h, &fd));
	return fd;
}

static void cons_map(int fd, struct ring_cons *rc)
{
	ASSERT_OK(ring_cons_map(fd, rc));
}

static void cons_map_err(int err, int fd)
{
	struct ring_cons rc = { 0 };

	ASSERT_ERR(err, ring_cons_map(fd, &rc));
	ASSERT_NULL(rc.hdr);
}

static void cons_map_hdr_err(int err, const struct smmu_ring_hdr *h)
{
	int fd = raw_ring_fd(h);

	cons_map_err(err, fd);
	close(fd);
}

TEST(map_refuses_unsealed)
{
	struct smmu_ring_hdr h;
	int fd;

	hdr_v1(&h, 4);
	ASSERT_OK(_raw_ring_fd(4, smmu_ring_bytes(4), 0, &h, &fd));
	cons_map_err(-EPERM, fd);
	ASSERT_EQ(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
	cons_map_err(-EPERM, fd); /* GROW still missing */
	ASSERT_EQ(fcntl(fd, F_ADD_SEALS, F_SEAL_GROW), 0);
	struct ring_cons rc;
	cons_map(fd, &rc);
	ring_cons_unmap(&rc);
	close(fd);
}

TEST(map_refuses_bad_size)
{
	struct smmu_ring_hdr h;
	const unsigned int seals = F_SEAL_SHRINK | F_SEAL_GROW;
	int fd;

	hdr_v1(&h, 4);
	/* one entry short, one entry long, smaller than a header */
	ASSERT_OK(_raw_ring_fd(4, smmu_ring_bytes(4) - 16, seals, &h, &fd));
	cons_map_err(-EMSGSIZE, fd);
	close(fd);
	ASSERT_OK(_raw_ring_fd(4, smmu_ring_bytes(4) + 16, seals, &h, &fd));
	cons_map_err(-EMSGSIZE, fd);
	close(fd);
	ASSERT_OK(_raw_ring_fd(4, 200, seals, &h, &fd));
	cons_map_err(-EMSGSIZE, fd);
	close(fd);
	/* far larger than any legal ring: refused before mapping */
	ASSERT_OK(_raw_ring_fd(4, (size_t)64 << 20, seals, &h, &fd));
	cons_map_err(-EMSGSIZE, fd);
	close(fd);
}

TEST(map_refuses_non_memfd)
{
	char path[] = "/tmp/test-ring-XXXXXX";
	int fds[2], fd;

	ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
	cons_map_err(-EBADF, fds[0]);
	close(fds[0]);
	close(fds[1]);

	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	cons_map_err(-EBADF, fd);
	close(fd);

	/* A regular file without seal support. */
	fd = mkostemp(path, O_CLOEXEC);
	ASSERT_GE(fd, 0);
	unlink(path);
	ASSERT_EQ(ftruncate(fd, (off_t)smmu_ring_bytes(4)), 0);
	cons_map_err(-EINVAL, fd);
	close(fd);

	cons_map_err(-EBADF, -1);
}

TEST(map_refuses_bad_header)
{
	struct smmu_ring_hdr h;

	hdr_v1(&h, 4);
	h.magic ^= 1;
	cons_map_hdr_err(-EPROTO, &h);

	hdr_v1(&h, 4);
	h.version_major = 2;
	cons_map_hdr_err(-EPROTONOSUPPORT, &h);

	hdr_v1(&h, 4);
	h.entry_size = 32;
	cons_map_hdr_err(-EPROTO, &h);

	hdr_v1(&h, 4);
	h.hdr_size = 320 - 8; /* not a multiple of 64 */
	cons_map_hdr_err(-EPROTO, &h);

	hdr_v1(&h, 4);
	h.hdr_size = 128;
	cons_map_hdr_err(-EPROTO, &h);

	hdr_v1(&h, 1); /* below MIN_LOG2 */
	cons_map_hdr_err(-EPROTO, &h);

	hdr_v1(&h, 4);
	h.features = 1;
	cons_map_hdr_err(-EOPNOTSUPP, &h);
}

TEST(map_accepts_newer_minor_and_larger_header)
{
	struct smmu_ring_hdr h;
	struct ring_cons rc;
	int fd;

	hdr_v1(&h, 3);
	h.version_minor = 7;
	h.hdr_size = 512;
	fd = raw_ring_fd(&h);
	cons_map(fd, &rc);
	ASSERT_EQ(rc.size, 8);
	ASSERT_EQ((char *)rc.entries - (char *)rc.hdr, 512);
	ring_cons_unmap(&rc);
	close(fd);
}

TEST(map_ignores_later_identity_changes)
{
	struct smmu_ring_hdr h;
	struct ring_cons rc;
	uint32_t avail;
	int fd;

	hdr_v1(&h, 2);
	fd = raw_ring_fd(&h);
	cons_map(fd, &rc);
	/* The VMM rewrites line 0 after hand-over: nothing changes. */
	rc.hdr->log2_entries = 16;
	rc.hdr->hdr_size = 4096;
	rc.hdr->prod = 5; /* more than 4 entries */
	ASSERT_ERR(-EPROTO, ring_cons_poll(&rc, &avail));
	ASSERT_EQ(rc.hdr->err, SMMU_RING_ERR_PROTO);
	ring_cons_unmap(&rc);
	close(fd);
}

TEST(sealed_ring_cannot_be_resized)
{
	struct smmu_ring_hdr h;
	int fd;

	hdr_v1(&h, 4);
	fd = raw_ring_fd(&h);
	ASSERT_EQ(ftruncate(fd, 256), -1);
	ASSERT_EQ(errno, EPERM);
	ASSERT_EQ(ftruncate(fd, (off_t)smmu_ring_bytes(5)), -1);
	ASSERT_EQ(errno, EPERM);
	close(fd);
}

/* ---- consumer semantics, with the test playing the VMM by hand */

static struct smmu_ring_entry ent(uint32_t i)
{
	struct smmu_ring_entry e = { { 0x1000000000ull + i, ~(uint64_t)i } };

	return e;
}

/* A v1 ring of 1 << @log2 entries whose prod and cons start at @start. */
static int ring_fd_at(uint32_t log2, uint32_t start)
{
	struct smmu_ring_hdr h;

	hdr_v1(&h, log2);
	h.prod = start;
	h.cons = start;
	return raw_ring_fd(&h);
}

/* VMM side by hand: write @n entries at prod and publish. */
static void vmm_push(struct smmu_ring_hdr *h, uint32_t log2, uint32_t n)
{
	struct smmu_ring_entry *ents = (void *)((char *)h + h->hdr_size);
	uint32_t p = h->prod;

	for (uint32_t i = 0; i < n; i++, p++)
		ents[p & ((1u << log2) - 1)] = ent(p);
	smp_store_release(&h->prod, p);
}

static void cons_poll(struct ring_cons *rc, uint32_t want_avail)
{
	uint32_t avail = ~0u;

	ASSERT_OK(ring_cons_poll(rc, &avail));
	ASSERT_EQ(avail, want_avail);
}

static void cons_fetch_check(struct ring_cons *rc, uint32_t n)
{
	struct smmu_ring_entry buf[64];
	uint32_t first = rc->fetch;

	ASSERT_LE(n, 64);
	ASSERT_EQ(ring_cons_fetch(rc, buf, n), n);
	for (uint32_t i = 0; i < n; i++) {
		struct smmu_ring_entry e = ent(first + i);

		ASSERT_EQ(memcmp(&buf[i], &e, sizeof(e)), 0);
	}
}

TEST(cons_empty_full_wrap)
{
	const uint32_t starts[] = { 0, 7, 0xfffffff0u, 0xfffffffeu };

	for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
		struct smmu_ring_entry buf[8];
		struct ring_cons rc;
		int fd = ring_fd_at(3, starts[s]);

		cons_map(fd, &rc);
		ASSERT_EQ(rc.cons, starts[s]);
		/* empty */
		cons_poll(&rc, 0);
		ASSERT_EQ(ring_cons_fetch(&rc, buf, 8), 0);
		/* 40 rounds of fill/drain cross slot and u32 wrap */
		for (int round = 0; round < 40; round++) {
			uint32_t n = (uint32_t)round % 8 + 1;

			vmm_push(rc.hdr, 3, n);
			cons_poll(&rc, n);
			cons_fetch_check(&rc, n);
			ASSERT_EQ(ring_cons_inflight(&rc), n);
			ring_cons_complete(&rc, rc.fetch);
			ASSERT_EQ(rc.hdr->cons, rc.fetch);
		}
		/* full: exactly 8 is legal, 9 is a protocol error */
		vmm_push(rc.hdr, 3, 8);
		cons_poll(&rc, 8);
		cons_fetch_check(&rc, 3);
		cons_poll(&rc, 5);
		rc.hdr->prod++;
		ASSERT_ERR(-EPROTO, ring_cons_poll(&rc, &(uint32_t){ 0 }));
		ASSERT_EQ(rc.hdr->err, SMMU_RING_ERR_PROTO);
		ASSERT_EQ(rc.hdr->err_index, rc.hdr->cons);
		ASSERT_EQ(rc.hdr->svc_flags & SMMU_RING_HALTED,
			  SMMU_RING_HALTED);
		ring_cons_unmap(&rc);
		close(fd);
	}
}

/*
 * ring_cons_claim + ring_cons_load: the copy-free fetch claims at most the
 * polled entries, across the slot and u32 wraps, loads the entries the
 * VMM wrote, and claims nothing while halted.
 */
TEST(cons_claim_load_wrap)
{
	const uint32_t starts[] = { 0, 5, 0xfffffffcu };

	for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
		struct ring_cons rc;
		int fd = ring_fd_at(3, starts[s]);

		cons_map(fd, &rc);
		ASSERT_EQ(ring_cons_claim(&rc, 8), 0);
		for (int round = 0; round < 20; round++) {
			uint32_t n = (uint32_t)round % 8 + 1, first = rc.fetch;

			vmm_push(rc.hdr, 3, n);
			cons_poll(&rc, n);
			/* Asks for more than was published: gets n. */
			ASSERT_EQ(ring_cons_claim(&rc, 8), n);
			ASSERT_EQ(rc.fetch, first + n);
			for (uint32_t i = 0; i < n; i++) {
				struct smmu_ring_entry e = ent(first + i);
				struct smmu_ring_entry got =
					ring_cons_load(&rc, first + i);

				ASSERT_EQ(memcmp(&got, &e, sizeof(e)), 0);
			}
			ring_cons_complete(&rc, rc.fetch);
		}
		vmm_push(rc.hdr, 3, 2);
		cons_poll(&rc, 2);
		ring_cons_halt(&rc, rc.cons, SMMU_RING_ERR_CERROR_ILL);
		ASSERT_EQ(ring_cons_claim(&rc, 2), 0);
		ring_cons_unmap(&rc);
		close(fd);
	}
}

/* Rewind gives back fetched entries; clamped to [cons, fetch]; wraps. */
TEST(cons_rewind)
{
	const uint32_t starts[] = { 0, 0xfffffffcu };

	for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
		struct ring_cons rc;
		int fd = ring_fd_at(3, starts[s]);
		uint32_t c = starts[s];

		cons_map(fd, &rc);
		vmm_push(rc.hdr, 3, 6);
		cons_poll(&rc, 6);
		cons_fetch_check(&rc, 4);
		ring_cons_complete(&rc, c + 1);
		/* Entries c+2, c+3 go back and come out again, same content. */
		ring_cons_rewind(&rc, c + 2);
		ASSERT_EQ(rc.fetch, c + 2);
		cons_fetch_check(&rc, 4);
		/* Below cons clamps to cons; beyond fetch to fetch. */
		ring_cons_rewind(&rc, c);
		ASSERT_EQ(rc.fetch, c + 1);
		ring_cons_rewind(&rc, c + 100);
		ASSERT_EQ(rc.fetch, c + 1);
		cons_fetch_check(&rc, 5);
		/* Nothing moves while halted. */
		ring_cons_halt(&rc, c + 1, SMMU_RING_ERR_CERROR_ILL);
		ring_cons_rewind(&rc, c + 3);
		ASSERT_EQ(rc.fetch, c + 1);
		ring_cons_unmap(&rc);
		close(fd);
	}
}

TEST(cons_prod_backwards_is_proto)
{
	struct ring_cons rc;
	uint32_t cons;
	int fd = ring_fd_at(4, 0xfffffffcu);

	cons_map(fd, &rc);
	vmm_push(rc.hdr, 4, 8);
	cons_poll(&rc, 8);
	cons_fetch_check(&rc, 6);
	ring_cons_complete(&rc, rc.cons + 2);
	cons = rc.cons;
	/* back, but not past fetch: the unfetched tail was withdrawn */
	rc.hdr->prod -= 1;
	cons_poll(&rc, 1);
	/* back past fetch: halted at cons, in-flight entries dropped */
	rc.hdr->prod = rc.fetch - 1;
	ASSERT_ERR(-EPROTO, ring_cons_poll(&rc, &(uint32_t){ 0 }));
	ASSERT_EQ(rc.hdr->cons, cons);
	ASSERT_EQ(rc.hdr->err_index, cons);
	ASSERT_EQ(rc.fetch, cons);
	ASSERT_ERR(-EPIPE, ring_cons_poll(&rc, &(uint32_t){ 0 }));
	/* completions of dropped in-flight entries are ignored */
	ring_cons_complete(&rc, cons + 4);
	ASSERT_EQ(rc.hdr->cons, cons);
	ring_cons_unmap(&rc);
	close(fd);
}

TEST(cons_map_resumes_from_shared_cons)
{
	struct smmu_ring_hdr h;
	struct ring_cons rc;
	int fd;

	hdr_v1(&h, 4);
	h.cons = 0xfffffff8u;
	h.prod = 0x00000004u; /* 12 entries pending across the u32 wrap */
	fd = raw_ring_fd(&h);
	cons_map(fd, &rc);
	cons_poll(&rc, 12);
	ring_cons_unmap(&rc);
	close(fd);

	h.prod = 0x00000009u; /* 17 > 16 entries: PROTO at map */
	fd = raw_ring_fd(&h);
	cons_map(fd, &rc);
	ASSERT_ERR(-EPIPE, ring_cons_poll(&rc, &(uint32_t){ 0 }));
	ASSERT_EQ(rc.hdr->err, SMMU_RING_ERR_PROTO);
	ASSERT_EQ(rc.hdr->err_index, 0xfffffff8u);
	ring_cons_unmap(&rc);
	close(fd);
}

TEST(cons_halt_ack_resume)
{
	struct smmu_ring_entry buf[16];
	struct ring_cons rc, rc2;
	int fd = ring_fd_at(4, 0xfffffffau);
	uint32_t bad;

	cons_map(fd, &rc);
	vmm_push(rc.hdr, 4, 10);
	cons_poll(&rc, 10);
	ASSERT_EQ(ring_cons_fetch(&rc, buf, 10), 10);
	bad = rc.cons + 6;
	ring_cons_complete(&rc, bad);
	ring_cons_halt(&rc, bad, SMMU_RING_ERR_CERROR_ILL);
	ASSERT_EQ(rc.hdr->cons, bad);
	ASSERT_EQ(rc.hdr->err, SMMU_RING_ERR_CERROR_ILL);
	ASSERT_EQ(rc.hdr->err_index, bad);
	ASSERT_EQ(rc.hdr->halt_seq, 1);
	ASSERT_EQ(rc.hdr->svc_flags, SMMU_RING_HALTED);
	/* a second halt does not override the first */
	ring_cons_halt(&rc, bad, SMMU_RING_ERR_CERROR_ABT);
	ASSERT_EQ(rc.hdr->err, SMMU_RING_ERR_CERROR_ILL);
	ASSERT_EQ(rc.hdr->halt_seq, 1);
	ASSERT_ERR(-EPIPE, ring_cons_poll(&rc, &(uint32_t){ 0 }));
	ASSERT_EQ(ring_cons_fetch(&rc, buf, 16), 0);
	ASSERT_FALSE(ring_cons_resume_requested(&rc));
	/* a stale or wrong ack is not a resume */
	rc.hdr->resume_seq = 2;
	ASSERT_FALSE(ring_cons_resume_requested(&rc));

	/* A service restart while halted keeps the halt. */
	cons_map(fd, &rc2);
	ASSERT_ERR(-EPIPE, ring_cons_poll(&rc2, &(uint32_t){ 0 }));
	ring_cons_unmap(&rc2);

	/* the VMM fixes the entry, then acks with halt_seq */
	rc.entries[bad & 15].le[0] ^= 0xff;
	smp_store_release(&rc.hdr->resume_seq, 1);
	ASSERT_TRUE(ring_cons_resume_requested(&rc));
	ring_cons_resume(&rc);
	ASSERT_EQ(rc.hdr->svc_flags, 0);
	ASSERT_EQ(rc.hdr->err, SMMU_RING_ERR_NONE);
	ASSERT_EQ(rc.hdr->err_index, bad); /* left as history */
	cons_poll(&rc, 4);
	ASSERT_EQ(ring_cons_fetch(&rc, buf, 16), 4);
	ASSERT_EQ(buf[0].le[0], ent(bad).le[0] ^ 0xff); /* re-read */
	ring_cons_complete(&rc, rc.fetch);

	/* a second halt increments halt_seq */
	vmm_push(rc.hdr, 4, 1);
	cons_poll(&rc, 1);
	ASSERT_EQ(ring_cons_fetch(&rc, buf, 1), 1);
	ring_cons_halt(&rc, rc.cons, SMMU_RING_ERR_CERROR_ATC_INV_SYNC);
	ASSERT_EQ(rc.hdr->halt_seq, 2);
	ASSERT_FALSE(ring_cons_resume_requested(&rc)); /* resume_seq 1 */
	ring_cons_unmap(&rc);
	close(fd);
}

TEST(cons_want_signal)
{
	struct ring_cons rc;
	int fd = ring_fd_at(2, 0);

	cons_map(fd, &rc);
	ASSERT_FALSE(ring_cons_want_signal(&rc));
	rc.hdr->prod_flags = SMMU_RING_WANT_SIGNAL;
	ASSERT_TRUE(ring_cons_want_signal(&rc));
	ring_cons_unmap(&rc);
	close(fd);
}

/* ---- producer API, both halves in one thread */

static int _ring_pair(uint32_t log2, uint32_t start, int doorbell,
		      int completion, struct ring_prod *p, struct ring_cons *rc,
		      int *ret_fd)
{
	int fd, ret;

	ret = ring_memfd_create(log2, &fd);
	if (ret)
		return ret;
	if (start) {
		/* Start both indices near a chosen value before mapping. */
		if (pwrite(fd, &start, 4,
			   offsetof(struct smmu_ring_hdr, prod)) != 4 ||
		    pwrite(fd, &start, 4,
			   offsetof(struct smmu_ring_hdr, cons)) != 4) {
			close(fd);
			return -EIO;
		}
	}
	ret = ring_prod_init(p, fd, doorbell, completion);
	if (!ret) {
		ret = ring_cons_map(fd, rc);
		if (ret)
			ring_prod_done(p);
	}
	if (ret) {
		close(fd);
		return ret;
	}
	*ret_fd = fd;
	return 0;
}

static int ring_pair(uint32_t log2, uint32_t start, int doorbell,
		     int completion, struct ring_prod *p, struct ring_cons *rc)
{
	int fd = -1;

	ASSERT_OK(_ring_pair(log2, start, doorbell, completion, p, rc, &fd));
	return fd;
}

static void prod_push(struct ring_prod *p, uint32_t n)
{
	struct smmu_ring_entry e[64];
	uint32_t first = ~0u;

	ASSERT_LE(n, 64);
	for (uint32_t i = 0; i < n; i++)
		e[i] = ent(p->prod + i);
	ASSERT_OK(ring_prod_push(p, e, n, &first));
	ASSERT_EQ(first, p->prod - n);
}

static void prod_push_err(int err, struct ring_prod *p, uint32_t n)
{
	struct smmu_ring_entry e[64] = { 0 };
	uint32_t first = 0x5a5a5a5au, prod = p->prod;

	ASSERT_LE(n, 64);
	ASSERT_ERR(err, ring_prod_push(p, e, n, &first));
	ASSERT_EQ(first, 0x5a5a5a5au);
	ASSERT_EQ(p->prod, prod);
}

static int efd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	ASSERT_GE(fd, 0);
	return fd;
}

/* The eventfd's counter, reset to 0. */
static uint64_t efd_take(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, sizeof(v)) < 0)
		ASSERT_EQ(errno, EAGAIN);
	return v;
}

TEST(memfd_create_checks)
{
	int fd = -1;

	ASSERT_ERR(-EINVAL, ring_memfd_create(SMMU_RING_MIN_LOG2 - 1, &fd));
	ASSERT_ERR(-EINVAL, ring_memfd_create(SMMU_RING_MAX_LOG2 + 1, &fd));
	ASSERT_EQ(fd, -1);
	ASSERT_OK(ring_memfd_create(SMMU_RING_MAX_LOG2, &fd));
	ASSERT_EQ(fcntl(fd, F_GET_SEALS),
		  F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	ASSERT_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
	/* F_SEAL_SEAL: the VMM cannot add F_SEAL_WRITE later either */
	ASSERT_EQ(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
	ASSERT_EQ(errno, EPERM);
	ASSERT_EQ(ftruncate(fd, 4096), -1);
	ASSERT_EQ(errno, EPERM);
	ASSERT_EQ(ftruncate(fd,
			    (off_t)smmu_ring_bytes(SMMU_RING_MAX_LOG2) + 4096),
		  -1);
	ASSERT_EQ(errno, EPERM);
	close(fd);
}

TEST(prod_empty_full_wrap)
{
	const uint32_t starts[] = { 0, 0xfffffff0u, 0xfffffffdu };

	for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
		struct ring_prod p;
		struct ring_cons rc;
		int fd = ring_pair(3, starts[s], -1, -1, &p, &rc);
		uint32_t first;

		ASSERT_EQ(p.prod, starts[s]);
		ASSERT_EQ(ring_prod_space(&p), 8);
		prod_push_err(-EINVAL, &p, 9);
		for (int round = 0; round < 20; round++) {
			uint32_t n = (uint32_t)round % 8 + 1;

			prod_push(&p, n);
			/* pushed is not published */
			cons_poll(&rc, 0);
			ASSERT_OK(ring_prod_publish(&p));
			cons_poll(&rc, n);
			cons_fetch_check(&rc, n);
			ASSERT_FALSE(ring_prod_done_upto(&p, p.prod - 1));
			ring_cons_complete(&rc, rc.fetch);
			ASSERT_TRUE(ring_prod_done_upto(&p, p.prod - 1));
			ASSERT_FALSE(ring_prod_done_upto(&p, p.prod));
		}
		/* fill up; one more is -EAGAIN until the service completes */
		prod_push(&p, 5);
		prod_push(&p, 3);
		ASSERT_EQ(ring_prod_space(&p), 0);
		prod_push_err(-EAGAIN, &p, 1);
		ASSERT_OK(ring_prod_publish(&p));
		cons_poll(&rc, 8);
		cons_fetch_check(&rc, 8);
		first = rc.cons;
		ring_cons_complete(&rc, first + 2);
		ASSERT_TRUE(ring_prod_done_upto(&p, first + 1));
		ASSERT_FALSE(ring_prod_done_upto(&p, first + 2));
		prod_push_err(-EAGAIN, &p, 3);
		prod_push(&p, 2);
		ASSERT_OK(ring_prod_publish(&p));
		cons_poll(&rc, 2);
		cons_fetch_check(&rc, 2);
		ring_prod_done(&p);
		ring_cons_unmap(&rc);
		close(fd);
	}
}

TEST(prod_init_refuses_inconsistent)
{
	struct ring_prod p;
	struct smmu_ring_hdr h;
	int fd;

	hdr_v1(&h, 2);
	h.prod = 10;
	h.cons = 5; /* 5 > 4 entries in use */
	fd = raw_ring_fd(&h);
	ASSERT_ERR(-EPROTO, ring_prod_init(&p, fd, -1, -1));
	close(fd);
	hdr_v1(&h, 2);
	h.magic = 0;
	fd = raw_ring_fd(&h);
	ASSERT_ERR(-EPROTO, ring_prod_init(&p, fd, -1, -1));
	close(fd);
}

TEST(doorbell_only_when_needed)
{
	struct ring_prod p;
	struct ring_cons rc;
	int db = efd();
	int fd = ring_pair(4, 0, db, -1, &p, &rc);

	/* service awake: no doorbell */
	prod_push(&p, 1);
	ASSERT_OK(ring_prod_publish(&p));
	ASSERT_EQ(efd_take(db), 0);
	/* service wants to sleep but entries are pending: must not */
	ASSERT_TRUE(ring_cons_set_need_wakeup(&rc));
	ASSERT_EQ(rc.hdr->svc_flags & SMMU_RING_NEED_WAKEUP, 0);
	cons_poll(&rc, 1);
	cons_fetch_check(&rc, 1);
	ring_cons_complete(&rc, rc.fetch);
	/* now nothing pending: the flag stays, the next publish rings */
	ASSERT_FALSE(ring_cons_set_need_wakeup(&rc));
	ASSERT_EQ(rc.hdr->svc_flags & SMMU_RING_NEED_WAKEUP,
		  SMMU_RING_NEED_WAKEUP);
	ASSERT_OK(ring_prod_publish(&p)); /* nothing new: no doorbell */
	ASSERT_EQ(efd_take(db), 0);
	prod_push(&p, 2);
	ASSERT_OK(ring_prod_publish(&p));
	ASSERT_EQ(efd_take(db), 1);
	ring_cons_clear_need_wakeup(&rc);
	prod_push(&p, 1);
	ASSERT_OK(ring_prod_publish(&p));
	ASSERT_EQ(efd_take(db), 0);
	ring_prod_done(&p);
	ring_cons_unmap(&rc);
	close(fd);
	close(db);
}

TEST(wait_paths)
{
	struct ring_prod p;
	struct ring_cons rc;
	int comp = efd();
	int fd = ring_pair(4, 0xfffffff8u, -1, comp, &p, &rc);
	uint32_t err = 0, idx = 0;

	/* Not published yet: wait publishes, then times out. */
	prod_push(&p, 4);
	ASSERT_ERR(-ETIMEDOUT, ring_prod_wait(&p, p.prod - 1, 1000, 1));
	ASSERT_EQ(rc.hdr->prod, p.prod);
	ASSERT_EQ(rc.hdr->prod_flags, 0); /* WANT_SIGNAL cleared */
	cons_poll(&rc, 4);
	cons_fetch_check(&rc, 4);
	ring_cons_complete(&rc, rc.fetch - 1);
	ASSERT_OK(ring_prod_wait(&p, p.prod - 2, 0, 0));
	ASSERT_ERR(-ETIMEDOUT, ring_prod_wait(&p, p.prod - 1, 0, 0));
	/* a stale completion signal is drained and does not end the wait */
	ASSERT_EQ(eventfd_write(comp, 1), 0);
	ASSERT_ERR(-ETIMEDOUT, ring_prod_wait(&p, p.prod - 1, 0, 2));
	ASSERT_EQ(efd_take(comp), 0);

	/* halted before the index completed: -EPIPE */
	ring_cons_halt(&rc, rc.cons, SMMU_RING_ERR_CERROR_ABT);
	ASSERT_ERR(-EPIPE, ring_prod_wait(&p, p.prod - 1, 1000, -1));
	/* ... but an index before the halt is done */
	ASSERT_OK(ring_prod_wait(&p, p.prod - 2, 0, -1));
	ASSERT_OK(ring_prod_halt_info(&p, &err, &idx));
	ASSERT_EQ(err, SMMU_RING_ERR_CERROR_ABT);
	ASSERT_EQ(idx, p.prod - 1);
	ring_prod_done(&p);
	ring_cons_unmap(&rc);
	close(fd);
	close(comp);
}

TEST(wait_without_completion_fd_spins)
{
	struct ring_prod p;
	struct ring_cons rc;
	int fd = ring_pair(2, 0, -1, -1, &p, &rc);

	prod_push(&p, 1);
	ASSERT_ERR(-ETIMEDOUT, ring_prod_wait(&p, p.prod - 1, 100, 2));
	ASSERT_EQ(rc.hdr->prod_flags, 0); /* never announced a sleep */
	cons_poll(&rc, 1);
	cons_fetch_check(&rc, 1);
	ring_cons_complete(&rc, rc.fetch);
	ASSERT_OK(ring_prod_wait(&p, p.prod - 1, 0, 0));
	ring_prod_done(&p);
	ring_cons_unmap(&rc);
	close(fd);
}

TEST(halt_rewrite_resume)
{
	struct smmu_ring_entry fix = { { 0xabcdefull, 0x1234ull } };
	struct smmu_ring_entry buf[16];
	struct ring_prod p;
	struct ring_cons rc;
	int db = efd();
	int fd = ring_pair(4, 0xfffffffeu, db, -1, &p, &rc);
	uint32_t err = 0, idx = 0, bad;

	ASSERT_ERR(-ENOENT, ring_prod_halt_info(&p, &err, &idx));
	ASSERT_ERR(-ENOENT, ring_prod_resume(&p));
	ASSERT_ERR(-EBUSY, ring_prod_rewrite(&p, p.prod, &fix));
	prod_push(&p, 6);
	ASSERT_OK(ring_prod_publish(&p));
	cons_poll(&rc, 6);
	ASSERT_EQ(ring_cons_fetch(&rc, buf, 16), 6);
	bad = rc.cons + 3;
	ring_cons_complete(&rc, bad);
	ring_cons_halt(&rc, bad, SMMU_RING_ERR_CERROR_ILL);
	ASSERT_TRUE(ring_cons_want_signal(&rc) == false);

	ASSERT_OK(ring_prod_halt_info(&p, &err, &idx));
	ASSERT_EQ(err, SMMU_RING_ERR_CERROR_ILL);
	ASSERT_EQ(idx, bad);
	ASSERT_TRUE(ring_prod_done_upto(&p, bad - 1));
	ASSERT_FALSE(ring_prod_done_upto(&p, bad));
	prod_push_err(-EPIPE, &p, 1);
	ASSERT_ERR(-EINVAL, ring_prod_rewrite(&p, bad - 1, &fix));
	ASSERT_ERR(-EINVAL, ring_prod_rewrite(&p, p.prod, &fix));
	ASSERT_OK(ring_prod_rewrite(&p, bad, &fix));
	ASSERT_FALSE(ring_cons_resume_requested(&rc));
	ASSERT_EQ(efd_take(db), 0);
	ASSERT_OK(ring_prod_resume(&p));
	ASSERT_EQ(efd_take(db), 1); /* unconditional doorbell */
	/* acknowledged: pushing works before the service resumed */
	ASSERT_ERR(-ENOENT, ring_prod_halt_info(&p, &err, &idx));
	prod_push(&p, 1);
	ASSERT_OK(ring_prod_publish(&p));
	ASSERT_TRUE(ring_cons_resume_requested(&rc));
	ring_cons_resume(&rc);
	cons_poll(&rc, 4);
	ASSERT_EQ(ring_cons_fetch(&rc, buf, 16), 4);
	ASSERT_EQ(memcmp(&buf[0], &fix, sizeof(fix)), 0);
	ring_cons_complete(&rc, rc.fetch);
	ASSERT_TRUE(ring_prod_done_upto(&p, p.prod - 1));

	/* PROTO from a corrupted prod reaches the VMM the same way */
	smp_store_release(&rc.hdr->prod, rc.cons + 100);
	ASSERT_ERR(-EPROTO, ring_cons_poll(&rc, &(uint32_t){ 0 }));
	ASSERT_OK(ring_prod_halt_info(&p, &err, &idx));
	ASSERT_EQ(err, SMMU_RING_ERR_PROTO);
	ring_prod_done(&p);
	ring_cons_unmap(&rc);
	close(fd);
	close(db);
}

/*
 * Lost-wakeup closure, stepped by hand. Each side has two steps in
 * program order; all 6 interleavings of the 4 steps are run on fresh
 * rings, and in every one either the sleeper's re-check sees the other
 * side's store, or the other side sees the flag and signals.
 */
static const char *const orders[6] = { "aabb", "abab", "abba",
				       "baab", "baba", "bbaa" };

/* Position in @order of the @nth (0 or 1) step of side @side. */
static int step_pos(const char *order, char side, int nth)
{
	for (int i = 0; order[i]; i++)
		if (order[i] == side && nth-- == 0)
			return i;
	return -1;
}

TEST(need_wakeup_interleavings)
{
	for (int o = 0; o < 6; o++) {
		struct ring_prod p;
		struct ring_cons rc;
		int db = efd();
		int fd = ring_pair(2, 0xfffffffeu, db, -1, &p, &rc);
		int ai = 0, bi = 0, kick_ret = -1;
		bool recheck = false;

		prod_push(&p, 1); /* pushed, not yet published */
		for (const char *c = orders[o]; *c; c++) {
			if (*c == 'a' && ai++ == 0)
				ring_prod_publish_prod(&p);
			else if (*c == 'a')
				kick_ret = ring_prod_publish_kick(&p);
			else if (bi++ == 0)
				ring_cons_need_wakeup_flag(&rc);
			else
				recheck = ring_cons_need_wakeup_recheck(&rc);
		}
		ASSERT_EQ(kick_ret, 0);
		uint64_t rung = efd_take(db);
		/* no lost wakeup: the service stays up, or is woken */
		ASSERT_TRUE(recheck || rung == 1);
		/* and the flag is cleared iff the service stays up */
		ASSERT_EQ(!!(rc.hdr->svc_flags & SMMU_RING_NEED_WAKEUP),
			  !recheck);
		/*
		 * and exactly when the kick found the flag: set before it,
		 * and not already cleared by a re-check that saw prod
		 */
		int kick = step_pos(orders[o], 'a', 1);
		bool seen = step_pos(orders[o], 'b', 0) < kick &&
			    !(step_pos(orders[o], 'b', 1) < kick && recheck);
		ASSERT_EQ(rung, (uint64_t)seen);
		/* the re-check sees prod iff it ran after the store */
		ASSERT_EQ(recheck, step_pos(orders[o], 'a', 0) <
					   step_pos(orders[o], 'b', 1));
		ring_prod_done(&p);
		ring_cons_unmap(&rc);
		close(fd);
		close(db);
	}
}

TEST(want_signal_interleavings)
{
	for (int o = 0; o < 6; o++) {
		struct ring_prod p;
		struct ring_cons rc;
		int fd = ring_pair(2, 0xffffffffu, -1, -1, &p, &rc);
		int ai = 0, bi = 0, recheck = -2;
		bool signal = false;
		uint32_t idx;

		prod_push(&p, 1);
		idx = p.prod - 1;
		ASSERT_OK(ring_prod_publish(&p));
		cons_poll(&rc, 1);
		cons_fetch_check(&rc, 1);
		/* a: VMM flag, re-check. b: service complete, check flag */
		for (const char *c = orders[o]; *c; c++) {
			if (*c == 'a' && ai++ == 0)
				ring_prod_want_flag(&p);
			else if (*c == 'a')
				recheck = ring_prod_want_recheck(&p, idx);
			else if (bi++ == 0)
				ring_cons_complete(&rc, rc.fetch);
			else
				signal = ring_cons_want_signal(&rc);
		}
		ASSERT_TRUE(recheck == 0 || recheck == 1);
		/* no lost completion: the VMM sees it, or is signalled */
		ASSERT_TRUE(recheck == 0 || signal);
		ASSERT_EQ(signal, step_pos(orders[o], 'a', 0) <
					  step_pos(orders[o], 'b', 1));
		ASSERT_EQ(recheck == 0, step_pos(orders[o], 'b', 0) <
						step_pos(orders[o], 'a', 1));
		ring_prod_want_clear(&p);
		ASSERT_FALSE(ring_cons_want_signal(&rc));
		ring_prod_done(&p);
		ring_cons_unmap(&rc);
		close(fd);
	}
}

TEST_HARNESS_MAIN
