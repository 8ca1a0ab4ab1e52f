/* SPDX-License-Identifier: MIT */
/*
 * Software Tegra241 VCMDQ, service side. The guest writes the register
 * page and the queue at any time and with any value: each register is
 * loaded once per pass into a local, the queue is reached only through a
 * pointer the gmem table bounded at enable time, and only masked slot
 * numbers index it.
 *
 * Ordering labels (see docs/RING-PROTOCOL.md, Mode 2):
 *   A_CONFIG  acquire of CONFIG   pairs with the guest's G_CONFIG (its
 *             writel(): barrier, then store); its earlier PROD/CONS/
 *             GERRORN stores are seen after EN.
 *   A_ACK     acquire of GERRORN  pairs with G_ACK (writel after the skip
 *             routine rewrote the entry at CONS).
 *   A_PROD    acquire of PROD     pairs with G_PROD (dma_wmb after the
 *             entries, then the PROD store).
 *   R_CONS    release of CONS     pairs with the guest's A_CONS (readl:
 *             load, then barrier): our copies of the entries before it
 *             are taken and the commands took effect before it may reuse
 *             the slots or consider its CMD_SYNC done.
 *   R_GERROR  release of GERROR   after CONS.ERR; pairs with the guest's
 *             readl of GERROR in its ISR (it then reads CONS).
 *   R_STATUS  release of STATUS   after CONS/GERROR of the transition;
 *             pairs with the guest's STATUS poll (readl).
 *   R_ERR     release of svc->err_seq after err_map, GERROR and CONS;
 *             pairs with the VMM's A_ERR.
 */
#include "ring/vcmdq_cons.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/barrier.h"
#include "ring/ring_i.h"

/*
 * The opcode policy of a guest-owned VINTF (facts 2.4): the three
 * invalidations the guest driver's filter sends here, and the CMD_SYNC it
 * appends. The worker validates fields later (with cmdq); this table only
 * decides what halts the queue with ILL.
 */
static const struct {
	uint8_t op;
	bool sync; /* CS must be NONE */
} vcmdq_ops[] = {
	{ SMMU_VCMDQ_OP_TLBI_NH_ASID, false },
	{ SMMU_VCMDQ_OP_TLBI_NH_VA, false },
	{ SMMU_VCMDQ_OP_ATC_INV, false },
	{ SMMU_VCMDQ_OP_CMD_SYNC, true },
};

bool ring_vcmdq_cmd_allowed(uint64_t word0)
{
	for (size_t i = 0; i < sizeof(vcmdq_ops) / sizeof(vcmdq_ops[0]); i++) {
		if ((word0 & 0xff) != vcmdq_ops[i].op)
			continue;
		if (vcmdq_ops[i].sync &&
		    ((word0 & SMMU_VCMDQ_SYNC_CS_MASK) >>
		     SMMU_VCMDQ_SYNC_CS_SHIFT) != SMMU_VCMDQ_SYNC_CS_NONE)
			return false;
		return true;
	}
	return false;
}

int ring_vcmdq_mode_check(uint32_t version, uint32_t features)
{
	if (version >> 16 != SMMU_VCMDQ_VERSION_MAJOR)
		return -EPROTONOSUPPORT;
	if (features & ~SMMU_VCMDQ_FEATURES_KNOWN)
		return -EOPNOTSUPP;
	return 0;
}

static void vcmdq_map_bit(struct ring_vcmdq *v, unsigned int l, bool set);

static void vcmdq_q_reset(struct ring_vcmdq_q *q)
{
	q->ents = NULL;
	q->pin = -1;
	q->state = RING_VCMDQ_OFF;
	q->stop_pending = false;
	q->err = SMMU_VCMDQ_CERROR_NONE;
	WRITE_ONCE(q->view.state, RING_VCMDQ_OFF);
	WRITE_ONCE(q->view.err, SMMU_VCMDQ_CERROR_NONE);
}

int ring_vcmdq_map(int memfd, unsigned int nq, struct ring_gmem *gmem,
		   struct ring_vcmdq *v)
{
	struct stat st;
	void *map;
	int r;

	if (!nq || nq > SMMU_VCMDQ_MAX_QUEUES || !gmem)
		return -EINVAL;
	r = ring_memfd_check(memfd, F_SEAL_SHRINK | F_SEAL_GROW, &st);
	if (r < 0)
		return r;
	if (st.st_size != (off_t)SMMU_VCMDQ_FILE_SIZE)
		return -EMSGSIZE;
	map = mmap(NULL, SMMU_VCMDQ_FILE_SIZE, PROT_READ | PROT_WRITE,
		   MAP_SHARED, memfd, 0);
	if (map == MAP_FAILED)
		return -errno;

	memset(v, 0, sizeof(*v));
	v->map = map;
	v->map_len = SMMU_VCMDQ_FILE_SIZE;
	v->svc = smmu_vcmdq_svc(map);
	v->gmem = gmem;
	v->nq = nq;
	/*
	 * Only the service writes err_seq and GERROR; a previous instance
	 * may have: continue from its values (the guest compares GERROR with
	 * its GERRORN). The error map is rebuilt from the queues' states.
	 */
	v->err_seq = READ_ONCE(v->svc->err_seq);
	for (unsigned int w = 0; w < 4; w++)
		WRITE_ONCE(v->svc->err_map[w], 0);
	for (unsigned int l = 0; l < nq; l++) {
		struct ring_vcmdq_q *q = &v->q[l];

		q->regs = smmu_vcmdq_regs(map, l);
		vcmdq_q_reset(q);
		q->gerror = READ_ONCE(q->regs->gerror) &
			    (SMMU_VCMDQ_GERROR_CMDQ_ERR |
			     SMMU_VCMDQ_GERROR_CMDQ_INIT_ERR);
		/* An error the guest has not acknowledged is still in error. */
		if ((q->gerror ^ READ_ONCE(q->regs->gerrorn)) &
		    SMMU_VCMDQ_GERROR_CMDQ_ERR)
			vcmdq_map_bit(v, l, true);
	}
	return 0;
}

void ring_vcmdq_unmap(struct ring_vcmdq *v)
{
	if (v->map) {
		for (unsigned int l = 0; l < v->nq; l++)
			ring_gmem_unpin(v->gmem, v->q[l].pin);
		munmap(v->map, v->map_len);
	}
	memset(v, 0, sizeof(*v));
}

static uint32_t vcmdq_hw(const struct ring_vcmdq_q *q, uint32_t pos)
{
	return pos & q->wmask;
}

static void vcmdq_store_cons(struct ring_vcmdq_q *q)
{
	uint32_t val = vcmdq_hw(q, q->cons) |
		       (q->err << SMMU_VCMDQ_CONS_ERR_SHIFT);

	WRITE_ONCE(q->view.cons, vcmdq_hw(q, q->cons));
	WRITE_ONCE(q->view.err, q->err);
	/* R_CONS: pairs with the guest's A_CONS (see the file comment). */
	smp_store_release(&q->regs->cons, val);
}

static void vcmdq_map_bit(struct ring_vcmdq *v, unsigned int l, bool set)
{
	uint32_t w = l / 32, bit = 1u << (l % 32);
	uint32_t val = set ? v->err_map[w] | bit : v->err_map[w] & ~bit;

	if (val == v->err_map[w])
		return;
	v->err_map[w] = val;
	/* Relaxed: a new error is published by R_ERR below it; a cleared
	 * bit only has to become visible eventually. */
	WRITE_ONCE(v->svc->err_map[w], val);
}

/*
 * Raise @bit in GERROR unless it is already active (GERROR != GERRORN
 * in that bit, possibly because the guest wrote GERRORN first): as on
 * SMMUv3, an active error is not toggled again.
 */
static void vcmdq_raise(struct ring_vcmdq_q *q, uint32_t gerrorn, uint32_t bit)
{
	if ((q->gerror ^ gerrorn) & bit)
		return;
	q->gerror ^= bit;
	/* R_GERROR: CONS.ERR stored before is seen by the guest's ISR. */
	smp_store_release(&q->regs->gerror, q->gerror);
}

static void vcmdq_set_state(struct ring_vcmdq *v, struct ring_vcmdq_q *q,
			    enum ring_vcmdq_state s)
{
	if (q->state != s)
		v->events |= RING_VCMDQ_EV_STATE;
	q->state = s;
	WRITE_ONCE(q->view.state, (uint32_t)s);
}

/* Publish the pending halt: cons has reached q->stop. */
static void vcmdq_publish_halt(struct ring_vcmdq *v, unsigned int l)
{
	struct ring_vcmdq_q *q = &v->q[l];
	uint32_t gerrorn;

	q->err = q->stop_err;
	q->stop_pending = false;
	q->fetch = q->fetch_hi = q->prod = q->cons;
	q->gen++; /* in-flight work of the old generation is void */
	vcmdq_set_state(v, q, RING_VCMDQ_HALTED);
	vcmdq_store_cons(q); /* R_CONS, with ERR */
	gerrorn = READ_ONCE(q->regs->gerrorn); /* only compared */
	vcmdq_raise(q, gerrorn, SMMU_VCMDQ_GERROR_CMDQ_ERR); /* R_GERROR */
	vcmdq_map_bit(v, l, true);
	v->err_seq++;
	/* R_ERR: map, GERROR and CONS are visible to a VMM that sees the
	 * new err_seq with A_ERR. */
	smp_store_release(&v->svc->err_seq, v->err_seq);
	v->events |= RING_VCMDQ_EV_ERROR;
}

/*
 * Stop at @index (in [cons, fetch]) with @err once cons gets there. The
 * earliest stop wins: the hardware halts on the first failing command.
 */
static void vcmdq_halt_at(struct ring_vcmdq *v, unsigned int l, uint32_t index,
			  uint32_t err)
{
	struct ring_vcmdq_q *q = &v->q[l];

	if (q->stop_pending && q->stop - q->cons <= index - q->cons)
		return;
	q->stop_pending = true;
	q->stop = index;
	q->stop_err = err;
	q->fetch = index;
	if (q->cons == index)
		vcmdq_publish_halt(v, l);
}

static void vcmdq_go_off(struct ring_vcmdq *v, struct ring_vcmdq_q *q)
{
	ring_gmem_unpin(v->gmem, q->pin);
	vcmdq_q_reset(q);
	q->gen++;
	v->events |= RING_VCMDQ_EV_STATE;
	/* R_STATUS: our last CONS store is visible once STATUS reads 0. */
	smp_store_release(&q->regs->status, 0);
}

/* Check the latched BASE; 0 with the queue pinned, or -errno. */
static int vcmdq_latch(struct ring_vcmdq *v, struct ring_vcmdq_q *q)
{
	uint64_t addr = q->base & SMMU_VCMDQ_BASE_ADDR_MASK;
	uint32_t log2 = (uint32_t)(q->base & SMMU_VCMDQ_BASE_LOG2SIZE_MASK);
	uint64_t bytes;
	void *host;
	int pin;

	if (!q->base_set || log2 > SMMU_VCMDQ_MAX_LOG2)
		return -EINVAL;
	if (q->base &
	    ~(SMMU_VCMDQ_BASE_ADDR_MASK | SMMU_VCMDQ_BASE_LOG2SIZE_MASK))
		return -EINVAL; /* reserved bits 63:48 */
	bytes = (uint64_t)SMMU_RING_ENTRY_SIZE << log2;
	if (addr & (bytes - 1))
		return -EINVAL; /* a queue is aligned to its size */
	/* The whole queue inside one region, which stays mapped. */
	pin = ring_gmem_pin(v->gmem, addr, bytes, &host);
	if (pin < 0)
		return pin;
	q->pin = pin;
	q->ents = host;
	q->log2 = log2;
	q->size = 1u << log2;
	q->wmask = 2 * q->size - 1;
	return 0;
}

static void vcmdq_enable(struct ring_vcmdq *v, unsigned int l, uint32_t gerrorn)
{
	struct ring_vcmdq_q *q = &v->q[l];
	uint32_t cons;

	if (vcmdq_latch(v, q)) {
		/* GERROR.CMDQ_INIT_ERR, STATUS stays 0; once per EN = 1. */
		q->init_failed = true;
		vcmdq_raise(q, gerrorn, SMMU_VCMDQ_GERROR_CMDQ_INIT_ERR);
		return;
	}
	/*
	 * Start at the current CONS (the guest wrote 0 there before EN;
	 * A_CONFIG made it visible). Bits above the wrap bit are dropped:
	 * CONS is ours from now on.
	 */
	cons = READ_ONCE(q->regs->cons);
	q->cons = q->fetch = q->fetch_hi = q->prod = cons & q->wmask;
	WRITE_ONCE(q->view.prod, q->prod);
	q->stop_pending = false;
	q->gen++;
	if ((q->gerror ^ gerrorn) & SMMU_VCMDQ_GERROR_CMDQ_ERR) {
		/* An unacknowledged command error blocks the queue, as
		 * GERROR.CMDQ_ERR does on SMMUv3 (e.g. after a restart). */
		q->err = (cons & SMMU_VCMDQ_CONS_ERR_MASK) >>
			 SMMU_VCMDQ_CONS_ERR_SHIFT;
		vcmdq_set_state(v, q, RING_VCMDQ_HALTED);
		vcmdq_map_bit(v, l, true);
	} else {
		q->err = SMMU_VCMDQ_CERROR_NONE;
		vcmdq_set_state(v, q, RING_VCMDQ_ON);
	}
	vcmdq_store_cons(q);
	/* R_STATUS: CONS is stored before the guest sees ENABLED. */
	smp_store_release(&q->regs->status, SMMU_VCMDQ_STATUS_ENABLED);
}

/* ON: read PROD once and check it; a bad one is ABT at cons. */
static void vcmdq_read_prod(struct ring_vcmdq *v, unsigned int l)
{
	struct ring_vcmdq_q *q = &v->q[l];
	uint32_t p, used, prod;

	/* A_PROD: pairs with G_PROD; the entries before it are written. */
	p = smp_load_acquire(&q->regs->prod);
	used = (p - q->cons) & q->wmask;
	prod = q->cons + used;
	/*
	 * Reject: bits above the wrap bit; more than a queue ahead of
	 * cons; behind what we already fetched (PROD only moves forward).
	 * ABT rather than ILL: the Linux skip routine leaves memory alone
	 * for ABT, where ILL would replace a live command at CONS.
	 */
	if ((p & ~q->wmask) || used > q->size ||
	    prod - q->fetch > prod - q->cons) {
		vcmdq_halt_at(v, l, q->cons, SMMU_VCMDQ_CERROR_ABT);
		return;
	}
	q->prod = prod;
	WRITE_ONCE(q->view.prod, p);
}

/*
 * The registers the service owns are read-only on hardware, but the page
 * is RAM: a guest may have stored over them. Put our values back (each
 * word is compared, and stored only if it differs), so a guest that
 * scribbled and then runs its init sequence sees real STATUS, GERROR and
 * CONS again. CONS belongs to the guest while the queue is OFF.
 */
static void vcmdq_repair(struct ring_vcmdq_q *q)
{
	uint32_t status =
		q->state == RING_VCMDQ_OFF ? 0 : SMMU_VCMDQ_STATUS_ENABLED;

	if (READ_ONCE(q->regs->gerror) != q->gerror)
		smp_store_release(&q->regs->gerror, q->gerror); /* R_GERROR */
	if (q->state != RING_VCMDQ_OFF &&
	    READ_ONCE(q->regs->cons) != (vcmdq_hw(q, q->cons) |
					 q->err << SMMU_VCMDQ_CONS_ERR_SHIFT))
		vcmdq_store_cons(q); /* R_CONS */
	if (READ_ONCE(q->regs->status) != status)
		smp_store_release(&q->regs->status, status); /* R_STATUS */
}

int ring_vcmdq_poll(struct ring_vcmdq *v, unsigned int l, uint32_t *ret_avail)
{
	struct ring_vcmdq_q *q;
	uint32_t config, gerrorn;
	bool en, acked;

	if (l >= v->nq)
		return -EINVAL;
	q = &v->q[l];
	*ret_avail = 0;
	/* A_CONFIG: pairs with G_CONFIG. One read per pass. */
	config = smp_load_acquire(&q->regs->config);
	/* A_ACK: pairs with G_ACK. One read per pass. */
	gerrorn = smp_load_acquire(&q->regs->gerrorn);
	en = config & SMMU_VCMDQ_CONFIG_EN;
	acked = !((q->gerror ^ gerrorn) & SMMU_VCMDQ_GERROR_CMDQ_ERR);
	vcmdq_repair(q);

	switch (q->state) {
	case RING_VCMDQ_OFF:
		if (acked)
			vcmdq_map_bit(v, l, false);
		if (!en)
			q->init_failed = false;
		if (!en || !q->ready || q->init_failed)
			return 0;
		vcmdq_enable(v, l, gerrorn);
		if (q->state != RING_VCMDQ_ON)
			return 0;
		break; /* read PROD in this pass already */
	case RING_VCMDQ_HALTED:
		if (!acked) {
			if (!en)
				vcmdq_go_off(v, q);
			return 0;
		}
		/*
		 * Acknowledged: clear ERR (a stale ILL would make the
		 * guest's next skip routine overwrite a live command) and
		 * fetch again at CONS: the entry there may be rewritten.
		 */
		vcmdq_map_bit(v, l, false);
		q->err = SMMU_VCMDQ_CERROR_NONE;
		vcmdq_set_state(v, q, RING_VCMDQ_ON);
		vcmdq_store_cons(q);
		break;
	case RING_VCMDQ_DRAINING:
		if (en)
			vcmdq_set_state(v, q, RING_VCMDQ_ON);
		break;
	case RING_VCMDQ_ON:
		break;
	}

	if (!en) {
		/* Stop after what is in flight; STATUS 0 once it is done. */
		if (q->fetch == q->cons)
			vcmdq_go_off(v, q);
		else
			vcmdq_set_state(v, q, RING_VCMDQ_DRAINING);
		return 0;
	}
	vcmdq_read_prod(v, l);
	if (q->state == RING_VCMDQ_ON && !q->stop_pending)
		*ret_avail = q->prod - q->fetch;
	return 0;
}

uint32_t ring_vcmdq_fetch(struct ring_vcmdq *v, unsigned int l,
			  struct smmu_ring_entry *dst, uint32_t budget,
			  struct ring_vcmdq_span *ret_span)
{
	struct ring_vcmdq_q *q;
	uint32_t n, slot, first, i;

	memset(ret_span, 0, sizeof(*ret_span));
	if (l >= v->nq)
		return 0;
	q = &v->q[l];
	ret_span->gen = q->gen;
	ret_span->first = q->fetch;
	if (q->state != RING_VCMDQ_ON || q->stop_pending)
		return 0;
	n = q->prod - q->fetch;
	if (n > budget)
		n = budget;
	if (!n)
		return 0;

	/*
	 * Entries up to q->prod were published before A_PROD. Copy first,
	 * check the copies: the guest may rewrite the slots at any time,
	 * and nobody may look at guest memory twice. Slots are masked, so
	 * the reads stay inside the queue gmem bounded at enable.
	 */
	slot = q->fetch & (q->size - 1);
	first = q->size - slot;
	if (first > n)
		first = n;
	memcpy(dst, &q->ents[slot], (size_t)first * sizeof(*dst));
	if (n > first)
		memcpy(dst + first, &q->ents[0],
		       (size_t)(n - first) * sizeof(*dst));
	for (i = 0; i < n; i++)
		if (!ring_vcmdq_cmd_allowed(le64toh(dst[i].le[0])))
			break;
	q->fetch += i;
	if (q->fetch - q->cons > q->fetch_hi - q->cons)
		q->fetch_hi = q->fetch;
	ret_span->n = i;
	if (i < n)
		vcmdq_halt_at(v, l, q->fetch, SMMU_VCMDQ_CERROR_ILL);
	return i;
}

/* Queue @l of @v, if @gen is still its generation and it is live (on or
 * draining). Return: 0, -EINVAL (no queue @l) or -ESTALE. */
static int vcmdq_live(struct ring_vcmdq *v, unsigned int l, uint32_t gen,
		      struct ring_vcmdq_q **ret_q)
{
	struct ring_vcmdq_q *q;

	if (l >= v->nq)
		return -EINVAL;
	q = &v->q[l];
	if (gen != q->gen ||
	    (q->state != RING_VCMDQ_ON && q->state != RING_VCMDQ_DRAINING))
		return -ESTALE;
	*ret_q = q;
	return 0;
}

int ring_vcmdq_complete(struct ring_vcmdq *v, unsigned int l, uint32_t gen,
			uint32_t upto)
{
	struct ring_vcmdq_q *q;
	int r = vcmdq_live(v, l, gen, &q);

	if (r)
		return r;
	/* Wrap-safe: distances from cons, never positions compared. */
	if (upto - q->cons > q->fetch_hi - q->cons)
		return -EINVAL;
	if (upto - q->cons > q->fetch - q->cons)
		upto = q->fetch; /* dropped by a pending halt */
	if (upto == q->cons)
		return 0;
	q->cons = upto;
	vcmdq_store_cons(q); /* R_CONS */
	if (q->stop_pending && q->cons == q->stop)
		vcmdq_publish_halt(v, l);
	else if (q->state == RING_VCMDQ_DRAINING && q->cons == q->fetch)
		vcmdq_go_off(v, q);
	return 0;
}

int ring_vcmdq_halt(struct ring_vcmdq *v, unsigned int l, uint32_t gen,
		    uint32_t index, uint32_t err)
{
	struct ring_vcmdq_q *q;
	int r;

	/* Before vcmdq_live(): a bad @err is -EINVAL even on a stale queue. */
	if (err != SMMU_VCMDQ_CERROR_ILL && err != SMMU_VCMDQ_CERROR_ABT &&
	    err != SMMU_VCMDQ_CERROR_ATC_INV_SYNC)
		return -EINVAL;
	r = vcmdq_live(v, l, gen, &q);
	if (r)
		return r;
	if (index - q->cons >= q->fetch_hi - q->cons)
		return -EINVAL;
	if (index - q->cons > q->fetch - q->cons)
		return 0; /* after a pending halt: the earlier one wins */
	vcmdq_halt_at(v, l, index, err);
	return 0;
}

int ring_vcmdq_rewind(struct ring_vcmdq *v, unsigned int l, uint32_t gen,
		      uint32_t pos)
{
	struct ring_vcmdq_q *q;
	int r = vcmdq_live(v, l, gen, &q);

	if (r)
		return r;
	/* Wrap-safe: distances from cons. */
	if (pos - q->cons > q->fetch - q->cons)
		return -EINVAL;
	/* A stop at or past @pos is an entry given back: found again. */
	if (q->stop_pending && q->stop - q->cons >= pos - q->cons)
		q->stop_pending = false;
	q->fetch = pos;
	if (q->state == RING_VCMDQ_DRAINING && q->cons == q->fetch)
		vcmdq_go_off(v, q);
	return 0;
}

int ring_vcmdq_set_base(struct ring_vcmdq *v, unsigned int l, uint64_t base)
{
	if (l >= v->nq)
		return -EINVAL;
	v->q[l].base = base;
	v->q[l].base_set = true;
	v->q[l].init_failed = false;
	WRITE_ONCE(v->q[l].view.base, base);
	WRITE_ONCE(v->q[l].view.base_set, 1);
	return 0;
}

int ring_vcmdq_set_ready(struct ring_vcmdq *v, unsigned int l, bool ready)
{
	struct ring_vcmdq_q *q;

	if (l >= v->nq)
		return -EINVAL;
	q = &v->q[l];
	q->ready = ready;
	q->init_failed = false;
	WRITE_ONCE(q->view.ready, ready);
	if (!ready && q->state != RING_VCMDQ_OFF)
		vcmdq_go_off(v, q);
	return 0;
}

uint32_t ring_vcmdq_take_events(struct ring_vcmdq *v)
{
	uint32_t ev = v->events;

	v->events = 0;
	return ev;
}

void ring_vcmdq_view_read(const struct ring_vcmdq *v, unsigned int l,
			  struct ring_vcmdq_view *out)
{
	/* READ_ONCE takes a non-const lvalue; the stores are the owner's. */
	struct ring_vcmdq_view *w;

	memset(out, 0, sizeof(*out));
	if (l >= v->nq)
		return;
	w = (struct ring_vcmdq_view *)&v->q[l].view;
	out->state = READ_ONCE(w->state);
	out->err = READ_ONCE(w->err);
	out->prod = READ_ONCE(w->prod);
	out->cons = READ_ONCE(w->cons);
	out->base = READ_ONCE(w->base);
	out->base_set = READ_ONCE(w->base_set);
	out->ready = READ_ONCE(w->ready);
}

enum ring_vcmdq_state ring_vcmdq_state(const struct ring_vcmdq *v,
				       unsigned int l)
{
	return l < v->nq ? v->q[l].state : RING_VCMDQ_OFF;
}
