/* SPDX-License-Identifier: MIT */
/*
 * VMM (producer) half of the shared ring.
 *
 * Ordering labels (see docs/RING-PROTOCOL.md):
 *   R_PROD   release of hdr->prod       pairs with the service's A_PROD
 *   A_CONS   acquire of hdr->cons       pairs with the service's R_CONS
 *   A_HALT   acquire of hdr->svc_flags  pairs with the service's R_HALT
 *   R_RESUME release of hdr->resume_seq pairs with the service's A_RESUME
 *   F_PUB    smp_mb after R_PROD, before reading NEED_WAKEUP; pairs with
 *            the service's F_NEED
 *   F_WANT   smp_mb after setting WANT_SIGNAL, before re-reading cons
 *            and HALTED; pairs with the service's F_CONS
 */
#include <smmu-offload/ring-prod.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/barrier.h"
#include "common/clock.h"
#include "common/cpu.h"
#include "ring/ring_i.h"

static int eventfd_signal(int fd)
{
	uint64_t one = 1;

	for (;;) {
		if (write(fd, &one, sizeof(one)) == (ssize_t)sizeof(one))
			return 0;
		if (errno == EINTR)
			continue;
		/* Counter saturated (non-blocking fd): already signalled. */
		if (errno == EAGAIN)
			return 0;
		return -errno;
	}
}

int ring_memfd_create(uint32_t log2_entries, int *ret_fd)
{
	struct smmu_ring_hdr h;
	int fd, ret;

	if (log2_entries < SMMU_RING_MIN_LOG2 ||
	    log2_entries > SMMU_RING_MAX_LOG2)
		return -EINVAL;

	fd = memfd_create("smmu-offload-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)smmu_ring_bytes(log2_entries)) < 0)
		goto err_errno;

	memset(&h, 0, sizeof(h));
	h.magic = SMMU_RING_MAGIC;
	h.version_major = SMMU_RING_VERSION_MAJOR;
	h.version_minor = SMMU_RING_VERSION_MINOR;
	h.hdr_size = SMMU_RING_HDR_SIZE;
	h.entry_size = SMMU_RING_ENTRY_SIZE;
	h.log2_entries = log2_entries;
	h.features = 0;
	/* pwrite: the header is complete before anyone can map the fd. */
	if (pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		goto err_errno;
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) <
	    0)
		goto err_errno;

	*ret_fd = fd;
	return 0;

err_errno:
	ret = errno ? -errno : -EIO;
	close(fd);
	return ret;
}

int ring_prod_init(struct ring_prod *p, int memfd, int doorbell_fd,
		   int completion_fd)
{
	struct smmu_ring_hdr ident;
	struct ring_prod n = { 0 };
	struct stat st;
	void *map;
	int ret;

	if (fstat(memfd, &st) < 0)
		return -errno;
	if (pread(memfd, &ident, sizeof(ident), 0) != (ssize_t)sizeof(ident))
		return -EMSGSIZE;
	if (ident.magic != SMMU_RING_MAGIC ||
	    ident.version_major != SMMU_RING_VERSION_MAJOR ||
	    ident.entry_size != SMMU_RING_ENTRY_SIZE ||
	    ident.hdr_size < SMMU_RING_HDR_SIZE ||
	    ident.hdr_size > SMMU_RING_HDR_SIZE_MAX ||
	    ident.hdr_size % SMMU_RING_CACHELINE ||
	    ident.log2_entries < SMMU_RING_MIN_LOG2 ||
	    ident.log2_entries > SMMU_RING_MAX_LOG2 ||
	    (ident.features & ~SMMU_RING_FEATURES_KNOWN))
		return -EPROTO;
	if ((uint64_t)st.st_size !=
	    smmu_ring_bytes_hdr(ident.hdr_size, ident.log2_entries))
		return -EMSGSIZE;

	map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		   memfd, 0);
	if (map == MAP_FAILED)
		return -errno;
	n.hdr = map;
	n.map_len = (size_t)st.st_size;
	n.entries = (struct smmu_ring_entry *)((char *)map + ident.hdr_size);
	n.size = 1u << ident.log2_entries;
	n.mask = n.size - 1;
	n.doorbell_fd = doorbell_fd;
	n.completion_fd = completion_fd;

	n.prod = READ_ONCE(n.hdr->prod);
	n.published = n.prod;
	n.cons = smp_load_acquire(&n.hdr->cons); /* A_CONS, pairs R_CONS */
	if (n.prod - n.cons > n.size) {
		ret = -EPROTO;
		goto err_unmap;
	}
	n.acked_seq = READ_ONCE(n.hdr->resume_seq);
	n.prod_flags = 0;
	WRITE_ONCE(n.hdr->prod_flags, 0);

	*p = n;
	return 0;

err_unmap:
	munmap(map, n.map_len);
	return ret;
}

void ring_prod_done(struct ring_prod *p)
{
	if (p->hdr)
		munmap(p->hdr, p->map_len);
	memset(p, 0, sizeof(*p));
	p->doorbell_fd = -1;
	p->completion_fd = -1;
}

/* Halted, and this halt not yet acknowledged by ring_prod_resume(). */
static bool prod_halted(struct ring_prod *p)
{
	/* A_HALT: pairs with R_HALT; err, err_index, halt_seq are valid. */
	uint32_t flags = smp_load_acquire(&p->hdr->svc_flags);

	if (!(flags & SMMU_RING_HALTED))
		return false;
	return READ_ONCE(p->hdr->halt_seq) != p->acked_seq;
}

static uint32_t prod_read_cons(struct ring_prod *p)
{
	/*
	 * A_CONS: pairs with the service's R_CONS; its reads of the slots
	 * before cons are done before we overwrite them.
	 */
	p->cons = smp_load_acquire(&p->hdr->cons);
	return p->cons;
}

static uint32_t prod_space(struct ring_prod *p, uint32_t cons)
{
	uint32_t used = p->prod - cons;

	return used > p->size ? 0 : p->size - used;
}

uint32_t ring_prod_space(struct ring_prod *p)
{
	return prod_space(p, prod_read_cons(p));
}

int ring_prod_push(struct ring_prod *p, const struct smmu_ring_entry *e,
		   uint32_t n, uint32_t *ret_first_index)
{
	uint32_t slot, first;

	if (n > p->size)
		return -EINVAL;
	if (prod_halted(p))
		return -EPIPE;
	/* The cached cons is enough most of the time: no shared read. */
	if (prod_space(p, p->cons) < n && prod_space(p, prod_read_cons(p)) < n)
		return -EAGAIN;

	slot = p->prod & p->mask;
	first = p->size - slot;
	if (first > n)
		first = n;
	memcpy(&p->entries[slot], e, (size_t)first * sizeof(*e));
	if (n > first)
		memcpy(&p->entries[0], e + first,
		       (size_t)(n - first) * sizeof(*e));
	*ret_first_index = p->prod;
	p->prod += n;
	return 0;
}

void ring_prod_publish_prod(struct ring_prod *p)
{
	p->published = p->prod;
	/* R_PROD: pairs with A_PROD; the entries are written before prod. */
	smp_store_release(&p->hdr->prod, p->prod);
}

int ring_prod_publish_kick(struct ring_prod *p)
{
	uint32_t flags;

	/*
	 * F_PUB: the prod store is ordered before the NEED_WAKEUP load;
	 * pairs with the service's F_NEED. Either the service's re-check
	 * sees our prod, or we see its flag here.
	 */
	smp_mb();
	flags = READ_ONCE(p->hdr->svc_flags);
	if (!(flags & SMMU_RING_NEED_WAKEUP) || p->doorbell_fd < 0)
		return 0;
	return eventfd_signal(p->doorbell_fd);
}

int ring_prod_publish(struct ring_prod *p)
{
	if (p->prod == p->published)
		return 0;
	ring_prod_publish_prod(p);
	return ring_prod_publish_kick(p);
}

bool ring_prod_done_upto(struct ring_prod *p, uint32_t index)
{
	uint32_t cons = prod_read_cons(p);

	/* index is done iff it is further behind prod than cons is. */
	return p->prod - index > p->prod - cons;
}

/* 0: done, -EPIPE: halted, 1: keep waiting. */
static int prod_wait_check(struct ring_prod *p, uint32_t index)
{
	if (ring_prod_done_upto(p, index))
		return 0;
	if (prod_halted(p))
		return -EPIPE;
	return 1;
}

/*
 * Poll until @until_ns. With @yield, give the CPU away between checks: a
 * producer without a completion eventfd must not burn a core for its
 * whole timeout, least of all on an oversubscribed host where the
 * service may need that core to make progress.
 */
static int prod_spin(struct ring_prod *p, uint32_t index, uint64_t until_ns,
		     bool yield)
{
	int ret;

	for (;;) {
		for (int i = 0; i < 64; i++) {
			ret = prod_wait_check(p, index);
			if (ret <= 0)
				return ret;
			common_cpu_relax();
		}
		if (common_now_ns() >= until_ns)
			return 1;
		if (yield)
			sched_yield();
	}
}

void ring_prod_want_flag(struct ring_prod *p)
{
	p->prod_flags |= SMMU_RING_WANT_SIGNAL;
	WRITE_ONCE(p->hdr->prod_flags, p->prod_flags);
}

int ring_prod_want_recheck(struct ring_prod *p, uint32_t index)
{
	/*
	 * F_WANT: the WANT_SIGNAL store is ordered before the re-reads of
	 * cons and HALTED; pairs with the service's F_CONS. A completion
	 * the re-check misses sees our flag and writes the eventfd.
	 */
	smp_mb();
	return prod_wait_check(p, index);
}

void ring_prod_want_clear(struct ring_prod *p)
{
	p->prod_flags &= ~SMMU_RING_WANT_SIGNAL;
	WRITE_ONCE(p->hdr->prod_flags, p->prod_flags);
}

int ring_prod_wait(struct ring_prod *p, uint32_t index, uint64_t spin_ns,
		   int timeout_ms)
{
	uint64_t start, deadline = UINT64_MAX;
	uint64_t buf;
	int ret;

	ret = ring_prod_publish(p);
	if (ret)
		return ret;
	ret = prod_wait_check(p, index);
	if (ret <= 0)
		return ret;

	start = common_now_ns();
	if (timeout_ms >= 0)
		deadline = start + spin_ns + (uint64_t)timeout_ms * 1000000u;
	ret = prod_spin(p, index,
			spin_ns > deadline - start ? deadline : start + spin_ns,
			false);
	if (ret <= 0)
		return ret;

	if (p->completion_fd < 0) {
		ret = prod_spin(p, index, deadline, true);
		return ret <= 0 ? ret : -ETIMEDOUT;
	}

	ring_prod_want_flag(p);
	for (;;) {
		struct pollfd pfd = { .fd = p->completion_fd,
				      .events = POLLIN };
		int ms = -1;

		ret = ring_prod_want_recheck(p, index);
		if (ret <= 0)
			break;
		if (deadline != UINT64_MAX) {
			uint64_t now = common_now_ns();

			if (now >= deadline) {
				ret = -ETIMEDOUT;
				break;
			}
			/* round up: never spin on a zero timeout */
			ms = (int)((deadline - now + 999999u) / 1000000u);
		}
		ret = poll(&pfd, 1, ms);
		if (ret < 0 && errno != EINTR) {
			ret = -errno;
			break;
		}
		if (ret > 0 && read(p->completion_fd, &buf, sizeof(buf)) < 0 &&
		    errno != EAGAIN && errno != EINTR) {
			ret = -errno;
			break;
		}
	}
	ring_prod_want_clear(p);
	return ret;
}

int ring_prod_halt_info(struct ring_prod *p, uint32_t *ret_err,
			uint32_t *ret_index)
{
	if (!prod_halted(p))
		return -ENOENT;
	/* Ordered after the A_HALT load in prod_halted(). */
	*ret_err = READ_ONCE(p->hdr->err);
	*ret_index = READ_ONCE(p->hdr->err_index);
	return 0;
}

int ring_prod_rewrite(struct ring_prod *p, uint32_t index,
		      const struct smmu_ring_entry *e)
{
	uint32_t cons;

	if (!prod_halted(p))
		return -EBUSY;
	cons = prod_read_cons(p);
	if (index - cons >= p->prod - cons)
		return -EINVAL;
	/* Published to the service by R_RESUME in ring_prod_resume(). */
	p->entries[index & p->mask] = *e;
	return 0;
}

int ring_prod_resume(struct ring_prod *p)
{
	uint32_t seq;

	if (!prod_halted(p))
		return -ENOENT;
	seq = READ_ONCE(p->hdr->halt_seq);
	/*
	 * R_RESUME: pairs with the service's A_RESUME; rewritten entries
	 * are visible to the fetch that follows the resume.
	 */
	smp_store_release(&p->hdr->resume_seq, seq);
	p->acked_seq = seq;
	if (p->doorbell_fd < 0)
		return 0;
	return eventfd_signal(p->doorbell_fd);
}
