/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the software vCMDQ consumer (ring/vcmdq_cons.h) driven by
 * a hostile guest that writes the register page and its RAM at will, and
 * a VMM that forwards any BASE and opens or closes the gate. The page
 * and the guest RAM are real memfds; guest RAM is two adjacent gmem
 * regions, so bases straddling them are tried too.
 *
 * Input:
 *   byte 0  number of logical queues - 1 (mod 4)
 *   then    a script: one opcode byte and its operands per step (see
 *           enum op); at most FUZZ_MAX_STEPS steps.
 *
 * Invariants (a violation aborts):
 *   - queue state: cons <= fetch <= fetch_hi and fetch <= prod, all
 *     within the queue size; an ON/DRAINING/HALTED queue has its whole
 *     queue inside one gmem region it pins; HALTED implies its bit in
 *     the error map (private and shared);
 *   - fetch: never more than poll's avail or the budget, copies equal
 *     the guest's slots, every copy has an accepted opcode;
 *   - after a poll, STATUS and GERROR show the service's values (it
 *     repairs what the guest stored over them);
 *   - complete/halt: -ESTALE exactly for a stale generation or a queue
 *     that is not running, -EINVAL exactly for a position out of range;
 *     after a successful complete CONS shows cons (and ERR when halted).
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/barrier.h"
#include "ring/vcmdq_cons.h"
#include "tests/lib/fuzz.h"

#define FUZZ_MAX_STEPS 1024
#define GPA 0x80000000ULL
#define REGION 0x10000ULL /* two adjacent regions of 64 KiB */
#define SLOTS (2 * REGION / 16)

enum op {
	OP_REG, /* u8 q, u8 word, u32: guest stores any register word */
	OP_PROD_REL, /* u8 q, s8: PROD = CONS (as read) + s8 */
	OP_CONFIG, /* u8 q, u8: CONFIG = u8 & 1 */
	OP_ACK, /* u8 q: GERRORN = GERROR */
	OP_ENTRY, /* u16 slot, u8 kind, [16 bytes]: guest writes RAM */
	OP_BASE, /* u8 q, u8 kind, u16 or u64: VMM forwards a BASE */
	OP_READY, /* u8 q, u8: the VMM's gate */
	OP_POLL, /* u8 q */
	OP_FETCH, /* u8 q, u8 budget */
	OP_COMPLETE, /* u8 q, u8 k, u8 stale */
	OP_HALT, /* u8 q, u8 k, u8 err, u8 stale */
	OP_PASS, /* poll, fetch, complete every queue */
	OP_REMAP, /* service restart */
	OP_COUNT
};

struct fz {
	struct ring_gmem g;
	struct ring_vcmdq v;
	int ram_fd, page_fd;
	uint8_t *ram, *page; /* the guest's mappings */
	unsigned int nq;
	uint32_t avail[4]; /* poll's answer, until the next fetch */
	struct ring_vcmdq_span last[4];
};

static void check_queue(struct fz *f, unsigned int l)
{
	const struct ring_vcmdq_q *q = &f->v.q[l];
	const struct ring_gmem_region *r;
	uint64_t bytes;
	uint32_t w = l / 32, bit = 1u << (l % 32);

	if (q->state == RING_VCMDQ_HALTED) {
		FUZZ_CHECK(f->v.err_map[w] & bit);
		FUZZ_CHECK(READ_ONCE(f->v.svc->err_map[w]) & bit);
	}
	if (q->state == RING_VCMDQ_OFF) {
		FUZZ_CHECK(q->ents == NULL && q->pin == -1);
		return;
	}
	FUZZ_CHECK(q->log2 <= SMMU_VCMDQ_MAX_LOG2 && q->size == 1u << q->log2);
	FUZZ_CHECK(q->wmask == 2 * q->size - 1);
	FUZZ_CHECK(q->fetch - q->cons <= q->fetch_hi - q->cons);
	FUZZ_CHECK(q->fetch_hi - q->cons <= q->size);
	FUZZ_CHECK(q->fetch - q->cons <= q->prod - q->cons);
	FUZZ_CHECK(q->prod - q->cons <= q->size);
	if (q->stop_pending)
		FUZZ_CHECK(q->stop == q->fetch);
	/* The queue lies inside the region it pins. */
	FUZZ_CHECK(q->pin >= 0 && q->pin < (int)RING_GMEM_MAX_REGIONS);
	r = &f->g.r[q->pin];
	FUZZ_CHECK(r->used && r->pins > 0);
	bytes = 16ULL << q->log2;
	FUZZ_CHECK((const uint8_t *)q->ents >= r->host);
	FUZZ_CHECK(bytes <= r->size);
	FUZZ_CHECK((const uint8_t *)q->ents - r->host <=
		   (ptrdiff_t)(r->size - bytes));
}

static void do_fetch(struct fz *f, unsigned int l, uint32_t budget)
{
	struct smmu_ring_entry *dst = malloc((budget ? budget : 1) * 16);
	const struct ring_vcmdq_q *q = &f->v.q[l];
	struct ring_vcmdq_span sp;
	uint32_t n, before = q->fetch, gen = q->gen;

	FUZZ_CHECK(dst);
	n = ring_vcmdq_fetch(&f->v, l, dst, budget, &sp);
	FUZZ_CHECK(n == sp.n && n <= budget && n <= f->avail[l]);
	/* A fetch that stops on an ILL at cons publishes the halt, which
	 * ends the generation: the span still names the one it ran in. */
	FUZZ_CHECK(sp.first == before && sp.gen == gen);
	FUZZ_CHECK(q->gen == gen || (n == 0 && q->state == RING_VCMDQ_HALTED));
	for (uint32_t i = 0; i < n; i++) {
		FUZZ_CHECK(ring_vcmdq_cmd_allowed(le64toh(dst[i].le[0])));
		FUZZ_CHECK(!memcmp(&dst[i],
				   &q->ents[(before + i) & (q->size - 1)], 16));
	}
	f->avail[l] = n <= f->avail[l] ? f->avail[l] - n : 0;
	if (n)
		f->last[l] = sp;
	free(dst);
}

static void do_complete(struct fz *f, unsigned int l, uint8_t k, bool stale)
{
	const struct ring_vcmdq_q *q = &f->v.q[l];
	uint32_t gen = stale ? q->gen - 1 : q->gen;
	uint32_t upto = q->cons + k % (q->fetch_hi - q->cons + 2);
	bool running = q->state == RING_VCMDQ_ON ||
		       q->state == RING_VCMDQ_DRAINING;
	uint32_t fetch = q->fetch, fetch_hi = q->fetch_hi, cons = q->cons;
	int r;

	r = ring_vcmdq_complete(&f->v, l, gen, upto);
	if (stale || !running) {
		FUZZ_CHECK(r == -ESTALE);
		return;
	}
	if (upto - cons > fetch_hi - cons) {
		FUZZ_CHECK(r == -EINVAL);
		return;
	}
	FUZZ_CHECK(r == 0);
	if (upto - cons > fetch - cons)
		upto = fetch;
	FUZZ_CHECK(q->cons == upto);
	if (upto != cons && q->state != RING_VCMDQ_OFF)
		FUZZ_CHECK(READ_ONCE(q->regs->cons) ==
			   ((upto & q->wmask) |
			    q->err << SMMU_VCMDQ_CONS_ERR_SHIFT));
}

static void do_halt(struct fz *f, unsigned int l, uint8_t k, uint8_t err,
		    bool stale)
{
	const struct ring_vcmdq_q *q = &f->v.q[l];
	uint32_t gen = stale ? q->gen + 1 : q->gen;
	uint32_t index = q->cons + k % (q->fetch_hi - q->cons + 1);
	bool running = q->state == RING_VCMDQ_ON ||
		       q->state == RING_VCMDQ_DRAINING;
	bool err_ok = err >= 1 && err <= 3;
	uint32_t fetch_hi = q->fetch_hi;
	int r;

	r = ring_vcmdq_halt(&f->v, l, gen, index, err);
	if (!err_ok)
		FUZZ_CHECK(r == -EINVAL);
	else if (stale || !running)
		FUZZ_CHECK(r == -ESTALE);
	else if (index == fetch_hi)
		FUZZ_CHECK(r == -EINVAL);
	else
		FUZZ_CHECK(r == 0);
}

static struct smmu_ring_entry make_entry(struct fuzz_input *in, uint8_t kind)
{
	static const uint64_t ops[] = { 0x11, 0x12, 0x40, 0x46 };
	struct smmu_ring_entry e;

	if (kind % 8 < 4) {
		e.le[0] = htole64(ops[kind % 4] | fuzz_bytes(in, 2) << 32);
		e.le[1] = htole64(fuzz_bytes(in, 2) << 12);
	} else {
		e.le[0] = htole64(fuzz_bytes(in, 8));
		e.le[1] = htole64(fuzz_bytes(in, 8));
	}
	return e;
}

static void pass(struct fz *f)
{
	for (unsigned int l = 0; l < f->nq; l++) {
		const struct ring_vcmdq_q *q = &f->v.q[l];

		FUZZ_CHECK(ring_vcmdq_poll(&f->v, l, &f->avail[l]) == 0);
		do_fetch(f, l, 7);
		if (q->fetch != q->cons && (q->state == RING_VCMDQ_ON ||
					    q->state == RING_VCMDQ_DRAINING))
			FUZZ_CHECK(ring_vcmdq_complete(&f->v, l, q->gen,
						       q->fetch) == 0);
	}
}

static void run_script(struct fz *f, struct fuzz_input *in)
{
	for (int step = 0; step < FUZZ_MAX_STEPS && in->left; step++) {
		enum op op = (enum op)(fuzz_u8(in) % OP_COUNT);
		unsigned int l =
			(op == OP_ENTRY || op == OP_PASS || op == OP_REMAP) ?
				0 :
				fuzz_u8(in) % f->nq;
		struct smmu_vcmdq_regs *r = smmu_vcmdq_regs(f->page, l);
		uint64_t x;
		uint8_t a, b;

		switch (op) {
		case OP_REG:
			a = fuzz_u8(in) % 32;
			WRITE_ONCE(((uint32_t *)r)[a],
				   (uint32_t)fuzz_bytes(in, 4));
			break;
		case OP_PROD_REL:
			WRITE_ONCE(r->prod,
				   READ_ONCE(r->cons) +
					   (uint32_t)(int8_t)fuzz_u8(in));
			break;
		case OP_CONFIG:
			WRITE_ONCE(r->config, fuzz_u8(in) & 1);
			break;
		case OP_ACK:
			WRITE_ONCE(r->gerrorn, READ_ONCE(r->gerror));
			break;
		case OP_ENTRY:
			x = fuzz_bytes(in, 2) % SLOTS;
			a = fuzz_u8(in);
			((struct smmu_ring_entry *)f->ram)[x] =
				make_entry(in, a);
			break;
		case OP_BASE:
			a = fuzz_u8(in);
			if (a & 1)
				x = smmu_vcmdq_base(GPA + (fuzz_bytes(in, 2)
							   << 5),
						    (a >> 1) % 21);
			else
				x = fuzz_bytes(in, 8);
			FUZZ_CHECK(ring_vcmdq_set_base(&f->v, l, x) == 0);
			break;
		case OP_READY:
			FUZZ_CHECK(ring_vcmdq_set_ready(&f->v, l,
							fuzz_u8(in) & 1) == 0);
			break;
		case OP_POLL:
			FUZZ_CHECK(ring_vcmdq_poll(&f->v, l, &f->avail[l]) ==
				   0);
			FUZZ_CHECK(f->avail[l] == 0 ||
				   f->v.q[l].state == RING_VCMDQ_ON);
			/* The registers the service owns show its values. */
			FUZZ_CHECK(READ_ONCE(r->status) ==
				   (f->v.q[l].state != RING_VCMDQ_OFF));
			FUZZ_CHECK(READ_ONCE(r->gerror) == f->v.q[l].gerror);
			break;
		case OP_FETCH:
			do_fetch(f, l, fuzz_u8(in));
			break;
		case OP_COMPLETE:
			a = fuzz_u8(in);
			do_complete(f, l, a, fuzz_u8(in) & 1);
			break;
		case OP_HALT:
			a = fuzz_u8(in);
			b = fuzz_u8(in);
			do_halt(f, l, a, b % 5, fuzz_u8(in) & 1);
			break;
		case OP_PASS:
			pass(f);
			break;
		case OP_REMAP:
			ring_vcmdq_unmap(&f->v);
			FUZZ_CHECK(ring_vcmdq_map(f->page_fd, f->nq, &f->g,
						  &f->v) == 0);
			memset(f->avail, 0, sizeof(f->avail));
			break;
		default:
			abort();
		}
		(void)ring_vcmdq_take_events(&f->v);
		for (unsigned int k = 0; k < f->nq; k++)
			check_queue(f, k);
	}
}

static int memfd_sealed(const char *name, uint64_t len, int seals)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);

	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(ftruncate(fd, (off_t)len) == 0);
	FUZZ_CHECK(fcntl(fd, F_ADD_SEALS, seals) == 0);
	return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	struct fz *f = calloc(1, sizeof(*f));

	FUZZ_CHECK(f);
	f->nq = 1 + fuzz_u8(&in) % 4;
	ring_gmem_init(&f->g, 1ULL << 20);
	f->ram_fd = memfd_sealed("ram", 2 * REGION, F_SEAL_SHRINK);
	f->page_fd = memfd_sealed("page", SMMU_VCMDQ_FILE_SIZE,
				  F_SEAL_SHRINK | F_SEAL_GROW);
	f->ram = mmap(NULL, 2 * REGION, PROT_READ | PROT_WRITE, MAP_SHARED,
		      f->ram_fd, 0);
	f->page = mmap(NULL, SMMU_VCMDQ_FILE_SIZE, PROT_READ | PROT_WRITE,
		       MAP_SHARED, f->page_fd, 0);
	FUZZ_CHECK(f->ram != MAP_FAILED && f->page != MAP_FAILED);
	FUZZ_CHECK(ring_gmem_add(&f->g, f->ram_fd, 0, GPA, REGION) == 0);
	FUZZ_CHECK(ring_gmem_add(&f->g, f->ram_fd, REGION, GPA + REGION,
				 REGION) == 0);
	FUZZ_CHECK(ring_vcmdq_map(f->page_fd, f->nq, &f->g, &f->v) == 0);
	for (unsigned int l = 0; l < f->nq; l++)
		check_queue(f, l);

	run_script(f, &in);

	ring_vcmdq_unmap(&f->v);
	/* Every pin was dropped: the regions can go. */
	FUZZ_CHECK(ring_gmem_remove(&f->g, GPA, REGION) == 0);
	FUZZ_CHECK(ring_gmem_remove(&f->g, GPA + REGION, REGION) == 0);
	ring_gmem_done(&f->g);
	munmap(f->ram, 2 * REGION);
	munmap(f->page, SMMU_VCMDQ_FILE_SIZE);
	close(f->ram_fd);
	close(f->page_fd);
	free(f);
	return 0;
}
