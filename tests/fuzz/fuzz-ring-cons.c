/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the ring consumer (ring/ring_cons.h) over shared memory a
 * hostile VMM controls. The ring lives in a real memfd; the target maps it
 * twice, once through ring_cons_map() (the service) and once plainly (the
 * VMM, which writes whatever the input says between the consumer's
 * calls).
 *
 * Input:
 *   byte 0  mode: bit 0 raw header (the next 256 bytes, unchecked) else a
 *           valid v1 header built from the fields below; bit 1 leave the
 *           memfd unsealed (ring_cons_map() must refuse it); bits 2-3
 *           hdr_size for a built header (256, 320, 1024, 4096).
 *   byte 1  log2_entries for a built header (2..10); for a raw header,
 *           bit 0 takes the size the header claims (if small enough),
 *           else the file is 256 + 16 * (byte >> 1) bytes.
 *   then    built: prod, cons, svc_flags, halt_seq, resume_seq (u32 LE);
 *           raw: the 256 header bytes.
 *   then    entry bytes, filling the entries in order.
 *   then    a script: one opcode byte and its operands per step (see
 *           enum op); at most FUZZ_MAX_STEPS steps.
 *
 * Invariants (any violation aborts; a crash or a read outside the mapping
 * is what the fuzzer looks for):
 *   - map refuses unsealed fds and bad headers with the documented errnos;
 *   - cons <= fetch <= prod within the ring size, always;
 *   - poll: 0 with avail = prod - fetch, -EPIPE iff halted, -EPROTO only
 *     together with a PROTO halt at cons;
 *   - fetch copies at most what poll allowed, from the right slots;
 *   - halt publishes err, err_index and HALTED; resume only after the
 *     VMM acknowledged; a re-map resumes from the shared cons.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/barrier.h"
#include "ring/ring_cons.h"
#include "tests/lib/fuzz.h"

#define FUZZ_MAX_STEPS 512
#define FUZZ_MAX_LOG2 10

enum op {
	OP_PROD_ABS, /* u32: VMM stores prod */
	OP_PROD_REL, /* s8: VMM stores prod = shared cons + s8 */
	OP_ENTRY, /* u16 slot, 16 bytes: VMM rewrites an entry */
	OP_POLL,
	OP_FETCH, /* u8 n */
	OP_COMPLETE, /* u8: cons + (u8 % (inflight + 1)) */
	OP_HALT, /* u8 where, u8 err */
	OP_ACK, /* VMM acknowledges: resume_seq = shared halt_seq */
	OP_RESUME_SEQ, /* u32: VMM stores any resume_seq */
	OP_RESUME, /* service resumes if asked */
	OP_NEED_WAKEUP,
	OP_CLEAR_WAKEUP,
	OP_WANT_SIGNAL, /* u8: VMM sets prod_flags, service reads it */
	OP_SCRIBBLE, /* u8 word, u32: VMM writes any header word */
	OP_REMAP, /* service restarts: unmap, map the same memfd again */
	OP_COUNT
};

/* The VMM's mapping: plain stores, as hostile as it likes. */
struct vmm {
	uint8_t *map;
	size_t len;
	struct smmu_ring_hdr *hdr;
	uint32_t hdr_size, size;
};

static void check_state(const struct ring_cons *rc)
{
	FUZZ_CHECK(rc->size && !(rc->size & (rc->size - 1)));
	FUZZ_CHECK(rc->mask == rc->size - 1);
	FUZZ_CHECK(rc->fetch - rc->cons <= rc->size);
	FUZZ_CHECK(rc->prod - rc->fetch <= rc->size - (rc->fetch - rc->cons));
	if (rc->halted) {
		FUZZ_CHECK(rc->fetch == rc->cons && rc->prod == rc->cons);
		FUZZ_CHECK(rc->svc_flags & SMMU_RING_HALTED);
	}
}

static void run_script(int fd, struct vmm *v, struct ring_cons *rc,
		       struct fuzz_input *in)
{
	uint32_t last_avail = 0;
	bool polled = false;

	for (int step = 0; step < FUZZ_MAX_STEPS && in->left; step++) {
		enum op op = (enum op)(fuzz_u8(in) % OP_COUNT);
		uint32_t x, y, got, before;
		struct smmu_ring_entry *dst;
		int r;

		switch (op) {
		case OP_PROD_ABS:
			WRITE_ONCE(v->hdr->prod, fuzz_u32(in));
			break;
		case OP_PROD_REL:
			x = READ_ONCE(v->hdr->cons);
			WRITE_ONCE(v->hdr->prod,
				   x + (uint32_t)(int8_t)fuzz_u8(in));
			break;
		case OP_ENTRY:
			x = fuzz_u8(in);
			x |= (uint32_t)fuzz_u8(in) << 8;
			x &= v->size - 1;
			for (int i = 0; i < 16; i++)
				v->map[v->hdr_size + 16 * x + (uint32_t)i] =
					fuzz_u8(in);
			break;
		case OP_POLL:
			x = 0xdeadbeef;
			r = ring_cons_poll(rc, &x);
			if (r == -EPIPE) {
				FUZZ_CHECK(rc->halted && x == 0xdeadbeef);
			} else if (r == -EPROTO) {
				FUZZ_CHECK(rc->halted && x == 0xdeadbeef);
				FUZZ_CHECK(READ_ONCE(v->hdr->err) ==
					   SMMU_RING_ERR_PROTO);
				FUZZ_CHECK(READ_ONCE(v->hdr->err_index) ==
					   rc->cons);
			} else {
				FUZZ_CHECK(r == 0 && !rc->halted);
				FUZZ_CHECK(x == rc->prod - rc->fetch);
				last_avail = x;
				polled = true;
			}
			break;
		case OP_FETCH:
			x = fuzz_u8(in);
			dst = malloc((x ? x : 1) * sizeof(*dst));
			FUZZ_CHECK(dst);
			before = rc->fetch;
			got = ring_cons_fetch(rc, dst, x);
			FUZZ_CHECK(got <= x);
			if (rc->halted)
				FUZZ_CHECK(got == 0);
			else if (polled)
				FUZZ_CHECK(got <= last_avail);
			FUZZ_CHECK(rc->fetch == before + got);
			for (uint32_t i = 0; i < got; i++)
				FUZZ_CHECK(!memcmp(&dst[i],
						   v->map + v->hdr_size +
							   16 * ((before + i) &
								 (v->size - 1)),
						   16));
			if (!rc->halted)
				last_avail -= got;
			free(dst);
			break;
		case OP_COMPLETE:
			x = rc->cons +
			    fuzz_u8(in) % (ring_cons_inflight(rc) + 1);
			ring_cons_complete(rc, x);
			if (!rc->halted) {
				FUZZ_CHECK(rc->cons == x);
				FUZZ_CHECK(READ_ONCE(v->hdr->cons) == x);
			}
			break;
		case OP_HALT:
			x = rc->cons +
			    fuzz_u8(in) % (ring_cons_inflight(rc) + 1);
			y = fuzz_u8(in);
			before = rc->halted;
			ring_cons_halt(rc, x, y);
			FUZZ_CHECK(rc->halted);
			if (!before) {
				FUZZ_CHECK(rc->cons == x);
				FUZZ_CHECK(READ_ONCE(v->hdr->err) == y);
				FUZZ_CHECK(READ_ONCE(v->hdr->err_index) == x);
				FUZZ_CHECK(READ_ONCE(v->hdr->cons) == x);
				FUZZ_CHECK(READ_ONCE(v->hdr->svc_flags) &
					   SMMU_RING_HALTED);
			}
			break;
		case OP_ACK:
			WRITE_ONCE(v->hdr->resume_seq,
				   READ_ONCE(v->hdr->halt_seq));
			break;
		case OP_RESUME_SEQ:
			WRITE_ONCE(v->hdr->resume_seq, fuzz_u32(in));
			break;
		case OP_RESUME:
			if (ring_cons_resume_requested(rc)) {
				FUZZ_CHECK(rc->halted);
				ring_cons_resume(rc);
				FUZZ_CHECK(!rc->halted &&
					   rc->fetch == rc->cons);
				polled = false;
			}
			break;
		case OP_NEED_WAKEUP:
			if (ring_cons_set_need_wakeup(rc))
				FUZZ_CHECK(!(rc->svc_flags &
					     SMMU_RING_NEED_WAKEUP));
			else
				FUZZ_CHECK(rc->svc_flags &
					   SMMU_RING_NEED_WAKEUP);
			break;
		case OP_CLEAR_WAKEUP:
			ring_cons_clear_need_wakeup(rc);
			FUZZ_CHECK(!(rc->svc_flags & SMMU_RING_NEED_WAKEUP));
			break;
		case OP_WANT_SIGNAL:
			x = fuzz_u8(in);
			WRITE_ONCE(v->hdr->prod_flags, x);
			FUZZ_CHECK(ring_cons_want_signal(rc) ==
				   !!(x & SMMU_RING_WANT_SIGNAL));
			break;
		case OP_SCRIBBLE:
			x = fuzz_u8(in) % (SMMU_RING_HDR_SIZE / 4);
			y = fuzz_u32(in);
			WRITE_ONCE(((uint32_t *)v->map)[x], y);
			break;
		case OP_REMAP:
			ring_cons_unmap(rc);
			r = ring_cons_map(fd, rc);
			if (r) {
				/* Line 0 was scribbled on: a restarted
				 * service refuses the ring. */
				FUZZ_CHECK(r == -EPROTO ||
					   r == -EPROTONOSUPPORT ||
					   r == -EOPNOTSUPP || r == -EMSGSIZE);
				return;
			}
			/* Line 0 may now describe another (same-sized)
			 * layout: follow the service's view. */
			v->hdr_size = (uint32_t)((uint8_t *)rc->entries -
						 (uint8_t *)rc->hdr);
			v->size = rc->size;
			polled = false;
			break;
		default:
			abort();
		}
		check_state(rc);
	}
}

static int memfd_make(size_t len, bool seal)
{
	int fd = memfd_create("fuzz-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(ftruncate(fd, (off_t)len) == 0);
	if (seal)
		FUZZ_CHECK(fcntl(fd, F_ADD_SEALS,
				 F_SEAL_SHRINK | F_SEAL_GROW) == 0);
	return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t hdr_sizes[] = { 256, 320, 1024, 4096 };
	struct fuzz_input in = { data, size };
	struct smmu_ring_hdr h;
	struct ring_cons rc;
	struct vmm v = { 0 };
	uint8_t mode, b1;
	size_t len;
	bool raw, seal;
	int fd, r;

	mode = fuzz_u8(&in);
	b1 = fuzz_u8(&in);
	raw = mode & 1;
	seal = !(mode & 2);
	memset(&h, 0, sizeof(h));
	if (raw) {
		for (size_t i = 0; i < sizeof(h); i++)
			((uint8_t *)&h)[i] = fuzz_u8(&in);
		if ((b1 & 1) && h.hdr_size <= SMMU_RING_HDR_SIZE_MAX &&
		    h.log2_entries <= FUZZ_MAX_LOG2)
			len = smmu_ring_bytes_hdr(h.hdr_size, h.log2_entries);
		else
			len = 256 + 16 * (size_t)(b1 >> 1);
	} else {
		h.magic = SMMU_RING_MAGIC;
		h.version_major = SMMU_RING_VERSION_MAJOR;
		h.version_minor = 7;
		h.hdr_size = hdr_sizes[(mode >> 2) & 3];
		h.entry_size = SMMU_RING_ENTRY_SIZE;
		h.log2_entries = SMMU_RING_MIN_LOG2 + b1 % (FUZZ_MAX_LOG2 - 1);
		h.prod = fuzz_u32(&in);
		h.cons = fuzz_u32(&in);
		h.svc_flags = fuzz_u32(&in);
		h.halt_seq = fuzz_u32(&in);
		h.resume_seq = fuzz_u32(&in);
		len = smmu_ring_bytes_hdr(h.hdr_size, h.log2_entries);
	}

	fd = memfd_make(len, seal);
	v.len = len;
	v.map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	FUZZ_CHECK(v.map != MAP_FAILED);
	v.hdr = (struct smmu_ring_hdr *)v.map;
	memcpy(v.map, &h, len < sizeof(h) ? len : sizeof(h));
	/* Entries (and, for a larger hdr_size, the header's tail). */
	for (size_t off = sizeof(h); off < len && in.left; off++)
		v.map[off] = fuzz_u8(&in);

	r = ring_cons_map(fd, &rc);
	if (!seal)
		FUZZ_CHECK(r == -EPERM);
	if (r) {
		FUZZ_CHECK(r == -EPERM || r == -EPROTO ||
			   r == -EPROTONOSUPPORT || r == -EOPNOTSUPP ||
			   r == -EMSGSIZE);
		goto out;
	}
	/* Only a header that passed the checks gets here. */
	FUZZ_CHECK(h.magic == SMMU_RING_MAGIC && h.entry_size == 16 &&
		   len == smmu_ring_bytes_hdr(h.hdr_size, h.log2_entries));
	v.hdr_size = h.hdr_size;
	v.size = 1u << h.log2_entries;
	FUZZ_CHECK(rc.size == v.size && rc.cons == h.cons);
	/*
	 * Resumed from the shared cons and halt state; a prod too far ahead
	 * halts a ring that was running (a halted one keeps its first
	 * error).
	 */
	FUZZ_CHECK(rc.halt_seq == h.halt_seq ||
		   (rc.halted && rc.halt_seq == h.halt_seq + 1));
	if (h.svc_flags & SMMU_RING_HALTED)
		FUZZ_CHECK(rc.halted && rc.halt_seq == h.halt_seq);
	else if (h.prod - h.cons > v.size)
		FUZZ_CHECK(rc.halted &&
			   READ_ONCE(v.hdr->err) == SMMU_RING_ERR_PROTO);
	else
		FUZZ_CHECK(!rc.halted);
	check_state(&rc);
	run_script(fd, &v, &rc, &in);
	ring_cons_unmap(&rc);
out:
	munmap(v.map, v.len);
	close(fd);
	return 0;
}
