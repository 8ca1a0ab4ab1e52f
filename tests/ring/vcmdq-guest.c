/* SPDX-License-Identifier: MIT */
/* Test helpers for the software vCMDQ; see vcmdq-guest.h. */
#include "tests/ring/vcmdq-guest.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cmdq/cmdq.h"
#include "common/barrier.h"

struct smmu_vcmdq_regs *regs(struct env *e, unsigned int l)
{
	return smmu_vcmdq_regs(e->page, l);
}

struct smmu_ring_entry *gq(struct env *e, unsigned int l)
{
	return (struct smmu_ring_entry *)(e->ram + (e->qgpa[l] - RAM_GPA));
}

struct smmu_ring_entry cmd(uint64_t w0, uint64_t w1)
{
	struct smmu_ring_entry c = { { htole64(w0), htole64(w1) } };

	return c;
}

struct smmu_ring_entry tlbi_va(uint32_t asid, uint64_t va)
{
	return cmd(CMDQ_OP_TLBI_NH_VA | (uint64_t)asid << 48,
		   (va & ~0xfffULL) | 1);
}

struct smmu_ring_entry sync_none(void)
{
	/* CS = NONE, MSH = IS, MSIATTR = OIWB (facts 2.4). */
	return cmd(CMDQ_OP_SYNC | 3ULL << 22 | 0xfULL << 24, 0);
}

int env_init(struct env *e, unsigned int nq)
{
	int r;

	memset(e, 0, sizeof(*e));
	e->budget = 16;
	ring_gmem_init(&e->g, 1ULL << 30);
	e->ram_fd = memfd_create("ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	e->page_fd = memfd_create("page", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (e->ram_fd < 0 || e->page_fd < 0)
		return -errno;
	if (ftruncate(e->ram_fd, (off_t)RAM_TOTAL) ||
	    ftruncate(e->page_fd, SMMU_VCMDQ_FILE_SIZE))
		return -errno;
	if (fcntl(e->ram_fd, F_ADD_SEALS, F_SEAL_SHRINK) ||
	    fcntl(e->page_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW))
		return -errno;
	e->ram = mmap(NULL, RAM_TOTAL, PROT_READ | PROT_WRITE, MAP_SHARED,
		      e->ram_fd, 0);
	e->page = mmap(NULL, SMMU_VCMDQ_FILE_SIZE, PROT_READ | PROT_WRITE,
		       MAP_SHARED, e->page_fd, 0);
	if (e->ram == MAP_FAILED || e->page == MAP_FAILED)
		return -ENOMEM;
	/* Two adjacent regions: a queue may not straddle them. */
	r = ring_gmem_add(&e->g, e->ram_fd, 0, RAM_GPA, RAM_A);
	if (!r)
		r = ring_gmem_add(&e->g, e->ram_fd, RAM_A, RAM_GPA + RAM_A,
				  RAM_TOTAL - RAM_A);
	if (!r)
		r = ring_vcmdq_map(e->page_fd, nq, &e->g, &e->v);
	for (int l = 0; l < 2 && !r; l++) {
		e->log[l] = calloc(LOG_MAX, sizeof(struct smmu_ring_entry));
		if (!e->log[l])
			r = -ENOMEM;
		if (!r && (unsigned int)l < nq)
			r = ring_vcmdq_set_ready(&e->v, (unsigned int)l, true);
	}
	return r;
}

void env_done(struct env *e)
{
	ring_vcmdq_unmap(&e->v);
	ring_gmem_done(&e->g);
	if (e->ram && e->ram != MAP_FAILED)
		munmap(e->ram, RAM_TOTAL);
	if (e->page && e->page != MAP_FAILED)
		munmap(e->page, SMMU_VCMDQ_FILE_SIZE);
	close(e->ram_fd);
	close(e->page_fd);
	free(e->log[0]);
	free(e->log[1]);
}

/* One worker pass over every queue: poll, fetch, log, complete. */
void service_pass(struct env *e)
{
	struct smmu_ring_entry buf[64];

	for (unsigned int l = 0; l < e->v.nq; l++) {
		struct ring_vcmdq_span sp;
		uint32_t avail, n;

		if (ring_vcmdq_poll(&e->v, l, &avail))
			abort();
		n = ring_vcmdq_fetch(&e->v, l, buf,
				     e->budget < 64 ? e->budget : 64, &sp);
		if (n > avail || sp.n != n)
			abort();
		for (uint32_t i = 0; i < n && l < 2; i++)
			if (e->nlog[l] < LOG_MAX)
				e->log[l][e->nlog[l]++] = buf[i];
		if (l < 2 && n)
			e->last[l] = sp;
		if (n && !e->defer &&
		    ring_vcmdq_complete(&e->v, l, sp.gen, sp.first + n))
			abort();
	}
	e->events |= ring_vcmdq_take_events(&e->v);
}

/* ---- the software guest driver ------------------------------------ */

/* G_CONFIG: writel() = barrier, then store. */
void guest_writel(uint32_t *reg, uint32_t val)
{
	smp_store_release(reg, val);
}

/* readl() = load, then barrier (A_CONS and the STATUS poll). */
uint32_t guest_readl(uint32_t *reg)
{
	return smp_load_acquire(reg);
}

/* Write CONFIG and poll STATUS until it equals EN (facts 2.3). */
int guest_config(struct env *e, unsigned int l, uint32_t en)
{
	guest_writel(&regs(e, l)->config, en);
	for (int i = 0; i < POLL_MAX; i++) {
		if ((guest_readl(&regs(e, l)->status) &
		     SMMU_VCMDQ_STATUS_ENABLED) == en)
			return 0;
		service_pass(e);
	}
	return -ETIMEDOUT;
}

/*
 * Queue init (facts 2.3 step 6): deinit, reset PROD/CONS/BASE, ack a
 * stale GERROR, write BASE (trapped: the VMM forwards it), enable.
 */
int guest_queue_init(struct env *e, unsigned int l, uint64_t qgpa,
		     uint32_t log2)
{
	struct smmu_vcmdq_regs *r = regs(e, l);
	uint32_t gerror, gerrorn;
	int ret;

	ret = guest_config(e, l, 0);
	if (ret)
		return ret;
	WRITE_ONCE(r->prod, 0);
	WRITE_ONCE(r->cons, 0);
	ring_vcmdq_set_base(&e->v, l, 0);
	gerrorn = guest_readl(&r->gerrorn);
	gerror = guest_readl(&r->gerror);
	if (gerror != gerrorn)
		guest_writel(&r->gerrorn, gerror);
	ring_vcmdq_set_base(&e->v, l, smmu_vcmdq_base(qgpa, log2));
	e->qgpa[l] = qgpa;
	e->log2[l] = log2;
	e->prod[l] = 0;
	return guest_config(e, l, SMMU_VCMDQ_CONFIG_EN);
}

/* Free slots as the driver computes them from a CONS read. */
uint32_t guest_space(struct env *e, unsigned int l)
{
	uint32_t wm = (2u << e->log2[l]) - 1;
	uint32_t cons = guest_readl(&regs(e, l)->cons) & wm;

	return (1u << e->log2[l]) - ((e->prod[l] - cons) & wm);
}

/*
 * Write @n commands and store PROD (dma_wmb + relaxed store: G_PROD).
 * Waits for space first, as the driver's queue-full path does.
 * Returns the hardware position of the last command.
 */
int guest_submit(struct env *e, unsigned int l, const struct smmu_ring_entry *c,
		 uint32_t n, uint32_t *ret_last)
{
	uint32_t mask = (1u << e->log2[l]) - 1;
	uint32_t wm = 2 * mask + 1;
	int i;

	for (i = 0; i < POLL_MAX && guest_space(e, l) < n; i++)
		service_pass(e);
	if (guest_space(e, l) < n)
		return -ETIMEDOUT;
	for (uint32_t k = 0; k < n; k++)
		gq(e, l)[(e->prod[l] + k) & mask] = c[k];
	*ret_last = (e->prod[l] + n - 1) & wm;
	e->prod[l] = (e->prod[l] + n) & wm;
	smp_store_release(&regs(e, l)->prod, e->prod[l]); /* G_PROD */
	return 0;
}

/* The driver's "CONS has passed the SYNC" (facts 2.6), raw values. */
bool guest_sync_done(uint32_t cons, uint32_t sync, uint32_t log2)
{
	uint32_t mask = (1u << log2) - 1, wrap = 1u << log2;

	if ((cons & wrap) == (sync & wrap))
		return (cons & mask) > (sync & mask);
	return (cons & mask) <= (sync & mask);
}

int guest_wait_sync(struct env *e, unsigned int l, uint32_t sync)
{
	for (int i = 0; i < POLL_MAX; i++) {
		if (guest_sync_done(guest_readl(&regs(e, l)->cons), sync,
				    e->log2[l]))
			return 0;
		service_pass(e);
	}
	return -ETIMEDOUT;
}

/*
 * The ISR (facts 2.8): for each queue in the error map, read GERROR,
 * run the skip routine (ILL or unknown: replace the entry at CONS with a
 * CMD_SYNC), then write the GERROR read before into GERRORN (G_ACK).
 * Returns the number of queues handled.
 */
int guest_isr(struct env *e)
{
	struct smmu_vcmdq_svc *svc = smmu_vcmdq_svc(e->page);
	int handled = 0;

	for (unsigned int l = 0; l < 2; l++) {
		struct smmu_vcmdq_regs *r = regs(e, l);
		uint32_t gerror, cons, err;

		if (!(READ_ONCE(svc->err_map[0]) & (1u << l)))
			continue;
		gerror = guest_readl(&r->gerror);
		cons = guest_readl(&r->cons);
		err = (cons & SMMU_VCMDQ_CONS_ERR_MASK) >>
		      SMMU_VCMDQ_CONS_ERR_SHIFT;
		if (err != SMMU_VCMDQ_CERROR_NONE &&
		    err != SMMU_VCMDQ_CERROR_ABT &&
		    err != SMMU_VCMDQ_CERROR_ATC_INV_SYNC)
			gq(e, l)[cons & ((1u << e->log2[l]) - 1)] = sync_none();
		guest_writel(&r->gerrorn, gerror);
		handled++;
	}
	return handled;
}

int guest_round(struct env *e, unsigned int l, uint32_t asid, uint64_t va)
{
	struct smmu_ring_entry c[4];
	uint32_t last;
	int r;

	for (int i = 0; i < 3; i++)
		c[i] = tlbi_va(asid, va);
	c[3] = sync_none();
	r = guest_submit(e, l, c, 4, &last);
	if (r)
		return r;
	return guest_wait_sync(e, l, last);
}
