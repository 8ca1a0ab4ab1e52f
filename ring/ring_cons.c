/* SPDX-License-Identifier: MIT */
/*
 * Service (consumer) half of the shared ring. The producer is hostile:
 * every shared word is loaded once into a local and checked before use,
 * and nothing in line 0 is read after ring_cons_map() copied it.
 *
 * Ordering labels (see docs/RING-PROTOCOL.md):
 *   A_PROD   acquire of hdr->prod      pairs with the VMM's R_PROD
 *   R_CONS   release of hdr->cons      pairs with the VMM's A_CONS
 *   R_HALT   release of hdr->svc_flags pairs with the VMM's A_HALT
 *   A_RESUME acquire of hdr->resume_seq pairs with the VMM's R_RESUME
 *   F_NEED   smp_mb after setting NEED_WAKEUP, before re-reading prod;
 *            pairs with the VMM's F_PUB (after R_PROD, before it reads
 *            NEED_WAKEUP)
 *   F_CONS   smp_mb after publishing cons/halt, before reading
 *            WANT_SIGNAL; pairs with the VMM's F_WANT (after setting
 *            WANT_SIGNAL, before it re-reads cons and HALTED)
 */
#include "ring/ring_cons.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/barrier.h"
#include "ring/ring_i.h"

/* Copy of line 0 checked at map time; the only identity ever trusted. */
static int ring_check_ident(const struct smmu_ring_hdr *h, off_t file_size)
{
	if (h->magic != SMMU_RING_MAGIC)
		return -EPROTO;
	if (h->version_major != SMMU_RING_VERSION_MAJOR)
		return -EPROTONOSUPPORT;
	if (h->entry_size != SMMU_RING_ENTRY_SIZE)
		return -EPROTO;
	if (h->hdr_size < SMMU_RING_HDR_SIZE ||
	    h->hdr_size > SMMU_RING_HDR_SIZE_MAX ||
	    h->hdr_size % SMMU_RING_CACHELINE)
		return -EPROTO;
	if (h->log2_entries < SMMU_RING_MIN_LOG2 ||
	    h->log2_entries > SMMU_RING_MAX_LOG2)
		return -EPROTO;
	if (h->features & ~SMMU_RING_FEATURES_KNOWN)
		return -EOPNOTSUPP;
	if ((uint64_t)file_size !=
	    smmu_ring_bytes_hdr(h->hdr_size, h->log2_entries))
		return -EMSGSIZE;
	return 0;
}

static void ring_publish_flags(struct ring_cons *rc)
{
	/*
	 * R_HALT: err, err_index, halt_seq and cons stored before are
	 * visible to a VMM that sees HALTED with its A_HALT load.
	 */
	smp_store_release(&rc->hdr->svc_flags, rc->svc_flags);
}

int ring_cons_map(int memfd, struct ring_cons *rc)
{
	struct smmu_ring_hdr ident;
	struct ring_cons n = { 0 };
	struct stat st;
	uint32_t prod, used;
	void *map;
	int ret;

	ret = ring_memfd_check(memfd, F_SEAL_SHRINK | F_SEAL_GROW, &st);
	if (ret < 0)
		return ret;
	/* Bound the size before mapping; the exact check needs line 0. */
	if (st.st_size < (off_t)SMMU_RING_HDR_SIZE ||
	    st.st_size > (off_t)smmu_ring_bytes_hdr(SMMU_RING_HDR_SIZE_MAX,
						    SMMU_RING_MAX_LOG2))
		return -EMSGSIZE;

	map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		   memfd, 0);
	if (map == MAP_FAILED)
		return -errno;
	n.hdr = map;
	n.map_len = (size_t)st.st_size;

	/* One copy of line 0; the VMM may rewrite it at any time. */
	memset(&ident, 0, sizeof(ident));
	memcpy(&ident, map, SMMU_RING_CACHELINE);
	ret = ring_check_ident(&ident, st.st_size);
	if (ret)
		goto err_unmap;

	n.entries = (struct smmu_ring_entry *)((char *)map + ident.hdr_size);
	n.size = 1u << ident.log2_entries;
	n.mask = n.size - 1;

	/*
	 * Line 2 was written by a previous service instance, or by nobody
	 * for a new ring; the VMM can scribble on it too, so it only decides
	 * where this ring resumes, and is range-checked against prod.
	 */
	n.cons = READ_ONCE(n.hdr->cons);
	n.fetch = n.cons;
	n.prod = n.cons;
	n.halt_seq = READ_ONCE(n.hdr->halt_seq);
	n.svc_flags = READ_ONCE(n.hdr->svc_flags) & SMMU_RING_HALTED;
	n.halted = n.svc_flags & SMMU_RING_HALTED;
	/* A ring halted by the previous instance: its error as published
	 * then, copied once (only the statistics show it). */
	n.view.cons = n.view.prod = n.cons;
	n.view.halted = n.halted;
	if (n.halted) {
		n.view.err = READ_ONCE(n.hdr->err);
		n.view.err_index = READ_ONCE(n.hdr->err_index);
	}
	ring_publish_flags(&n);

	prod = smp_load_acquire(&n.hdr->prod); /* A_PROD, pairs with R_PROD */
	used = prod - n.cons;
	if (used > n.size)
		ring_cons_halt(&n, n.cons, SMMU_RING_ERR_PROTO);

	*rc = n;
	return 0;

err_unmap:
	munmap(map, n.map_len);
	return ret;
}

void ring_cons_unmap(struct ring_cons *rc)
{
	if (rc->hdr)
		munmap(rc->hdr, rc->map_len);
	memset(rc, 0, sizeof(*rc));
}

int ring_cons_poll(struct ring_cons *rc, uint32_t *ret_avail)
{
	uint32_t prod, used, avail;

	if (rc->halted)
		return -EPIPE;

	/* A_PROD: pairs with the VMM's R_PROD; entries before prod are
	 * written. The one read of prod in this pass. */
	prod = smp_load_acquire(&rc->hdr->prod);
	used = prod - rc->cons;
	avail = prod - rc->fetch;
	/*
	 * prod must lie in [fetch, cons + size]. A prod before fetch wraps
	 * avail to more than used; one beyond cons + size makes used
	 * exceed the ring.
	 */
	if (used > rc->size || avail > used) {
		ring_cons_halt(rc, rc->cons, SMMU_RING_ERR_PROTO);
		return -EPROTO;
	}
	rc->prod = prod;
	WRITE_ONCE(rc->view.prod, prod);
	*ret_avail = avail;
	return 0;
}

uint32_t ring_cons_fetch(struct ring_cons *rc, struct smmu_ring_entry *dst,
			 uint32_t n)
{
	uint32_t avail, slot, first;

	if (rc->halted)
		return 0;
	avail = rc->prod - rc->fetch;
	if (n > avail)
		n = avail;
	if (!n)
		return 0;

	/*
	 * Entries up to rc->prod were made visible by A_PROD in the last
	 * poll. Copy them out: the VMM may rewrite them while (or after) we
	 * read, and nobody downstream may see shared memory twice.
	 */
	slot = rc->fetch & rc->mask;
	first = rc->size - slot;
	if (first > n)
		first = n;
	memcpy(dst, &rc->entries[slot], (size_t)first * sizeof(*dst));
	if (n > first)
		memcpy(dst + first, &rc->entries[0],
		       (size_t)(n - first) * sizeof(*dst));
	rc->fetch += n;
	return n;
}

uint32_t ring_cons_claim(struct ring_cons *rc, uint32_t n)
{
	uint32_t avail;

	if (rc->halted)
		return 0;
	avail = rc->prod - rc->fetch;
	if (n > avail)
		n = avail;
	rc->fetch += n;
	return n;
}

void ring_cons_complete(struct ring_cons *rc, uint32_t new_cons)
{
	if (rc->halted)
		return;
	assert(new_cons - rc->cons <= rc->fetch - rc->cons);
	rc->cons = new_cons;
	WRITE_ONCE(rc->view.cons, new_cons);
	/*
	 * R_CONS: pairs with the VMM's A_CONS. Our copies of the entries
	 * before new_cons are done before the VMM may reuse their slots.
	 */
	smp_store_release(&rc->hdr->cons, new_cons);
}

bool ring_cons_want_signal(struct ring_cons *rc)
{
	/*
	 * F_CONS: orders the cons/HALTED stores before the WANT_SIGNAL
	 * load; pairs with the VMM's F_WANT. Either the VMM sees our store
	 * on its re-check, or we see its flag here.
	 */
	smp_mb();
	return READ_ONCE(rc->hdr->prod_flags) & SMMU_RING_WANT_SIGNAL;
}

void ring_cons_halt(struct ring_cons *rc, uint32_t index, uint32_t err)
{
	struct smmu_ring_hdr *h = rc->hdr;

	if (rc->halted)
		return;
	assert(index - rc->cons <= rc->fetch - rc->cons);
	rc->cons = index;
	rc->fetch = index;
	rc->prod = index;
	rc->halt_seq++;
	rc->halted = true;
	rc->svc_flags |= SMMU_RING_HALTED;
	/* The view first: whoever saw the halt finds it there. */
	WRITE_ONCE(rc->view.err, err);
	WRITE_ONCE(rc->view.err_index, index);
	WRITE_ONCE(rc->view.prod, index);
	WRITE_ONCE(rc->view.cons, index);
	WRITE_ONCE(rc->view.halted, 1);

	WRITE_ONCE(h->err, err);
	WRITE_ONCE(h->err_index, index);
	WRITE_ONCE(h->halt_seq, rc->halt_seq);
	/* R_CONS: pairs with the VMM's A_CONS (entries before index done). */
	smp_store_release(&h->cons, index);
	ring_publish_flags(rc); /* R_HALT */
}

bool ring_cons_resume_requested(struct ring_cons *rc)
{
	if (!rc->halted)
		return false;
	/*
	 * A_RESUME: pairs with the VMM's R_RESUME; the entry it rewrote at
	 * the halt index is visible to the fetch after ring_cons_resume().
	 */
	return smp_load_acquire(&rc->hdr->resume_seq) == rc->halt_seq;
}

void ring_cons_resume(struct ring_cons *rc)
{
	if (!rc->halted)
		return;
	rc->halted = false;
	rc->fetch = rc->cons;
	rc->prod = rc->cons;
	rc->svc_flags &= ~SMMU_RING_HALTED;
	WRITE_ONCE(rc->view.prod, rc->cons);
	WRITE_ONCE(rc->view.err, SMMU_RING_ERR_NONE);
	WRITE_ONCE(rc->view.halted, 0);
	WRITE_ONCE(rc->hdr->err, SMMU_RING_ERR_NONE);
	ring_publish_flags(rc); /* R_HALT: err cleared before HALTED */
}

void ring_cons_view_read(const struct ring_cons *rc, struct ring_cons_view *out)
{
	/* READ_ONCE takes a non-const lvalue; the stores are the owner's. */
	struct ring_cons_view *v = (struct ring_cons_view *)&rc->view;

	out->prod = READ_ONCE(v->prod);
	out->cons = READ_ONCE(v->cons);
	out->err = READ_ONCE(v->err);
	out->err_index = READ_ONCE(v->err_index);
	out->halted = READ_ONCE(v->halted);
}

void ring_cons_need_wakeup_flag(struct ring_cons *rc)
{
	rc->svc_flags |= SMMU_RING_NEED_WAKEUP;
	WRITE_ONCE(rc->hdr->svc_flags, rc->svc_flags);
}

bool ring_cons_need_wakeup_recheck(struct ring_cons *rc)
{
	bool pending;

	/*
	 * F_NEED: the flag store is ordered before the re-reads below;
	 * pairs with the VMM's F_PUB between its R_PROD store and its
	 * NEED_WAKEUP load. A VMM that published after our re-check sees
	 * the flag and rings the doorbell.
	 */
	smp_mb();
	if (rc->halted)
		pending = ring_cons_resume_requested(rc);
	else
		/* Relaxed: only compared; ring_cons_poll() re-reads it
		 * with A_PROD before any entry is touched. */
		pending = READ_ONCE(rc->hdr->prod) != rc->fetch;
	if (pending)
		ring_cons_clear_need_wakeup(rc);
	return pending;
}

bool ring_cons_set_need_wakeup(struct ring_cons *rc)
{
	ring_cons_need_wakeup_flag(rc);
	return ring_cons_need_wakeup_recheck(rc);
}

void ring_cons_clear_need_wakeup(struct ring_cons *rc)
{
	if (!(rc->svc_flags & SMMU_RING_NEED_WAKEUP))
		return;
	rc->svc_flags &= ~SMMU_RING_NEED_WAKEUP;
	WRITE_ONCE(rc->hdr->svc_flags, rc->svc_flags);
}

void ring_cons_rewind(struct ring_cons *rc, uint32_t index)
{
	if (rc->halted)
		return;
	/* Wrap-safe: distances from cons, never indices compared. */
	if (index - rc->cons > rc->fetch - rc->cons)
		index = (int32_t)(index - rc->cons) < 0 ? rc->cons : rc->fetch;
	rc->fetch = index;
}
