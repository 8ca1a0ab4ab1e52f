/* SPDX-License-Identifier: MIT */
/*
 * A malicious VMM against the service, in process (core + sim backend).
 *
 * Two VMs share one host SMMU: "good" behaves, "bad" attacks with what a
 * VMM controls: producer indices, ring contents (also while they are
 * consumed), commands the guest must not reach the host with, vSIDs of
 * the other VM, floods, a saturated completion eventfd, fds that are not
 * what they claim, and resource limits. Expected every time: the bad
 * VM's own ring halts with the right SMMU_RING_ERR_* at the right index
 * (or its request fails with the documented errno), nothing illegal
 * reaches the emulated host (the sim validates exactly as the kernel and
 * counts rejections), and the good VM keeps completing its SYNCs with
 * the oracle clean. No crash; under ASan/LSan no leak; no fd left open.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <smmu-offload/ring-prod.h>

#include "cmdq/cmdq.h"
#include "core/core.h"
#include "core/core_test.h"
#include "iommufd/sim.h"
#include "tests/lib/tlib-core.h"

#define WAIT_MS 20000
#define GOOD_VSID 0x8
#define GOOD_PSID 0x100
#define BAD_VSID 0x10
#define BAD_PSID 0x200

struct vm {
	uint32_t vs;
	struct iofd_viommu *vi;
	struct tlib_ring r;
	uint16_t asid;
	uint64_t next_iova;
};

/* ---- helpers ------------------------------------------------------------ */

static struct core_service *svc_new(unsigned int max_rings)
{
	struct iofd_sim_config sim;
	struct core_config cfg = {
		TLIB_CORE_CFG(&sim, 1),
		.poll_us = 50,
		.max_rings = max_rings,
	};

	tlib_sim_cfg(&sim);
	sim.caps = cmdq_caps_full; /* ATC_INV legal: vSID checks matter */
	return tlib_svc_new(&cfg);
}

/* A new ring (blocking eventfds, as a VMM may leave them: the service
 * must cope) attached to @vs: core_ring_attach()'s result. */
static int _ring_attach(struct core_service *svc, uint32_t vs,
			struct tlib_ring *r, uint32_t log2)
{
	tlib_ring_new(r, log2, 0);
	return _tlib_core_ring_attach(svc, vs, r);
}

static void ring_attach(struct core_service *svc, uint32_t vs,
			struct tlib_ring *r, uint32_t log2)
{
	ASSERT_OK(_ring_attach(svc, vs, r, log2));
}

static void vm_new(struct core_service *svc, struct vm *vm, uint32_t vsid,
		   uint32_t psid, uint32_t log2)
{
	struct core_vsmmu_spec spec = { .iommufd = -1 };
	uint32_t vdev;

	memset(vm, 0, sizeof(*vm));
	ASSERT_OK(core_vsmmu_create(svc, "smmu0", &spec, &vm->vs));
	ASSERT_OK(core_device_attach(svc, vm->vs, psid, vsid, &vdev));
	vm->vi = core_vsmmu_viommu(svc, vm->vs);
	ASSERT_NONNULL(vm->vi);
	ring_attach(svc, vm->vs, &vm->r, log2);
	vm->asid = 1;
	vm->next_iova = 0x100000;
}

static uint32_t push(struct tlib_ring *r, struct cmdq_cmd c)
{
	return tlib_ring_push_wait(r, c, WAIT_MS);
}

static struct cmdq_cmd tlbi_page(uint16_t asid, uint64_t va)
{
	struct cmdq_tlbi_range rg = { .tg = CMDQ_TG_4K, .ttl = 3 };

	return cmdq_build_tlbi_nh_va(asid, 0, va, true, &rg);
}

static void sync_wait(struct tlib_ring *r, uint32_t idx)
{
	ASSERT_OK(ring_prod_publish(&r->p));
	ASSERT_OK(ring_prod_wait(&r->p, idx, 20000, WAIT_MS));
}

/* The ring halts (not yet acknowledged) with @err at @where. */
static void expect_halt(struct tlib_ring *r, uint32_t wait_idx, uint32_t err,
			uint32_t where)
{
	uint32_t e = 0, at = 0;

	ASSERT_OK(ring_prod_publish(&r->p));
	ASSERT_ERR(-EPIPE, ring_prod_wait(&r->p, wait_idx, 1000, WAIT_MS));
	ASSERT_OK(ring_prod_halt_info(&r->p, &e, &at));
	EXPECT_EQ(e, err);
	EXPECT_EQ(at, where);
}

/*
 * The good VM unmaps @n pages and changes a CD, one guest SYNC each; after
 * every SYNC the oracle must miss everything it invalidated.
 */
static void good_vm_rounds(struct vm *g, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		uint64_t va = g->next_iova;

		g->next_iova += 0x1000;
		ASSERT_OK(iofd_sim_tlb_fill(g->vi, g->asid, va));
		ASSERT_OK(iofd_sim_cd_fill(g->vi, GOOD_VSID, 0));
		push(&g->r, tlbi_page(g->asid, va));
		push(&g->r, cmdq_build_cfgi_cd(GOOD_VSID, 0, true));
		sync_wait(&g->r, push(&g->r, tlib_sync_cmd()));
		ASSERT_FALSE(iofd_sim_tlb_lookup(g->vi, g->asid, va));
		ASSERT_FALSE(iofd_sim_cd_lookup(g->vi, GOOD_VSID, 0));
	}
}

/* What the emulated host saw of @vm: nothing it had to reject. */
static void host_clean(struct vm *vm)
{
	struct iofd_counters c;

	iofd_viommu_counters(vm->vi, &c);
	EXPECT_EQ(c.errors, 0);
}

static void good_vm_healthy(struct core_service *svc, struct vm *g)
{
	struct core_ring_stats rs;

	good_vm_rounds(g, 20);
	host_clean(g);
	ASSERT_OK(core_ring_stats(svc, g->r.id, &rs));
	EXPECT_FALSE(rs.halted);
}

FIXTURE(h)
{
	int fds_before;
	struct core_service *svc;
	struct vm good, bad;
};

FIXTURE_SETUP(h)
{
	self->fds_before = tlib_fds(0);
	self->svc = svc_new(0);
	vm_new(self->svc, &self->good, GOOD_VSID, GOOD_PSID, 6);
	vm_new(self->svc, &self->bad, BAD_VSID, BAD_PSID, 4);
}

FIXTURE_TEARDOWN(h)
{
	/* Freeing the service tears down both VMs (drains, detaches). */
	core_service_free(self->svc);
	tlib_ring_free(&self->good.r);
	tlib_ring_free(&self->bad.r);
	/* Every fd the service dup'd was closed. */
	EXPECT_EQ(tlib_fds(0), self->fds_before);
}

/* ---- producer indices -------------------------------------------------- */

/* The VMM stores @prod and rings the doorbell, bypassing ring_prod. */
static void raw_prod(struct tlib_ring *r, uint32_t prod)
{
	uint64_t one = 1;

	__atomic_store_n(&r->p.hdr->prod, prod, __ATOMIC_RELEASE);
	ASSERT_EQ(write(r->db, &one, sizeof(one)), (ssize_t)sizeof(one));
}

static void expect_proto(struct core_service *svc, struct tlib_ring *r,
			 uint32_t at)
{
	struct core_ring_stats rs;
	uint32_t e = 0, where = 0;
	double deadline = tlib_deadline(WAIT_MS);

	/*
	 * ring_prod's own indices are stale now (we bypassed it): wait for
	 * HALTED in the header, on the completion eventfd.
	 */
	while (!(__atomic_load_n(&r->p.hdr->svc_flags, __ATOMIC_ACQUIRE) &
		 SMMU_RING_HALTED)) {
		int rc = ring_prod_wait(&r->p, r->p.prod, 100000, 100);

		ASSERT_LT(t_now(), deadline);
		ASSERT_TRUE(rc == -EPIPE || rc == -ETIMEDOUT);
	}
	e = __atomic_load_n(&r->p.hdr->err, __ATOMIC_RELAXED);
	where = __atomic_load_n(&r->p.hdr->err_index, __ATOMIC_RELAXED);
	EXPECT_EQ(e, SMMU_RING_ERR_PROTO);
	EXPECT_EQ(where, at);
	ASSERT_OK(core_ring_stats(svc, r->id, &rs));
	EXPECT_TRUE(rs.halted);
	EXPECT_EQ(rs.err, SMMU_RING_ERR_PROTO);
}

TEST_F(h, prod_beyond_ring)
{
	raw_prod(&self->bad.r, 16 + 1); /* 16-entry ring, cons 0 */
	expect_proto(self->svc, &self->bad.r, 0);
	good_vm_healthy(self->svc, &self->good);
}

TEST_F(h, prod_far_out)
{
	raw_prod(&self->bad.r, 0x80000000u);
	expect_proto(self->svc, &self->bad.r, 0);
	good_vm_healthy(self->svc, &self->good);
}

TEST_F(h, prod_backwards)
{
	struct tlib_ring *r = &self->bad.r;
	uint32_t last = 0;

	/* 9 entries go through normally: cons = fetch = 9. */
	for (int i = 0; i < 8; i++)
		push(r, cmdq_build_tlbi_nh_asid(3, 0));
	last = push(r, tlib_sync_cmd());
	sync_wait(r, last);
	/* Then prod moves back behind what the service already took. */
	raw_prod(r, 3);
	expect_proto(self->svc, r, last + 1);
	good_vm_healthy(self->svc, &self->good);
}

/* ---- commands a guest must not get to the host with ------------------- */

struct bad_cmd {
	const char *what;
	struct cmdq_cmd c;
};

static struct cmdq_cmd with_ssec(struct cmdq_cmd c)
{
	cmdq_set(&c, CMDQ_F_SSEC, 1);
	return c;
}

static struct cmdq_cmd raw_cmd(uint64_t d0, uint64_t d1)
{
	return (struct cmdq_cmd){ { d0, d1 } };
}

/*
 * Each bad command halts the ring with CERROR_ILL exactly at its index,
 * after everything before it completed; the VMM then replaces it with a
 * CMD_SYNC (as it would after reflecting GERROR to the guest) and resumes.
 */
/*
 * The service's half of the header is shared memory the VMM can write:
 * the statistics come from the worker's own copies, so a VMM scribbling
 * there changes neither what its ring's stats say nor the admin's view.
 */
TEST_F(h, header_scribbles_do_not_reach_stats)
{
	struct tlib_ring *r = &self->bad.r;
	struct core_ring_stats rs;
	uint32_t last;

	for (int i = 0; i < 4; i++)
		push(r, cmdq_build_tlbi_nh_asid(3, 0));
	last = push(r, tlib_sync_cmd());
	sync_wait(r, last);

	__atomic_store_n(&r->p.hdr->cons, 777u, __ATOMIC_RELAXED);
	__atomic_store_n(&r->p.hdr->err, SMMU_RING_ERR_PROTO, __ATOMIC_RELAXED);
	__atomic_store_n(&r->p.hdr->err_index, 9u, __ATOMIC_RELAXED);
	__atomic_or_fetch(&r->p.hdr->svc_flags, SMMU_RING_HALTED,
			  __ATOMIC_RELAXED);

	ASSERT_OK(core_ring_stats(self->svc, r->id, &rs));
	EXPECT_EQ(rs.cons, last + 1);
	EXPECT_EQ(rs.prod, last + 1);
	EXPECT_FALSE(rs.halted);
	EXPECT_EQ(rs.err, SMMU_RING_ERR_NONE);
	EXPECT_EQ(rs.err_index, 0);
	good_vm_healthy(self->svc, &self->good);
}

TEST_F_TIMEOUT(h, illegal_commands_halt_at_index, 60)
{
	const struct cmdq_tlbi_range none = { 0 };
	const struct bad_cmd bad[] = {
		{ "TLBI_EL2_ALL", cmdq_build_tlbi_el2_all() },
		{ "TLBI_EL2_ASID", cmdq_build_tlbi_el2_asid(1) },
		{ "TLBI_EL2_VA",
		  cmdq_build_tlbi_el2_va(1, 0x1000, true, NULL) },
		{ "TLBI_EL2_VAA", cmdq_build_tlbi_el2_vaa(0x1000, true, NULL) },
		{ "TLBI_EL3_ALL", raw_cmd(CMDQ_OP_TLBI_EL3_ALL, 0) },
		{ "TLBI_S12_VMALL", cmdq_build_tlbi_s12_vmall(1) },
		{ "TLBI_S2_IPA",
		  cmdq_build_tlbi_s2_ipa(1, 0x40000, true, &none) },
		{ "CFGI_STE", cmdq_build_cfgi_ste(BAD_VSID, true) },
		{ "CFGI_STE_RANGE", cmdq_build_cfgi_ste_range(BAD_VSID, 3) },
		{ "CFGI_ALL", cmdq_build_cfgi_all() },
		{ "CFGI_VMS_PIDM", raw_cmd(CMDQ_OP_CFGI_VMS_PIDM, 0) },
		{ "PRI_RESP", cmdq_build_pri_resp(BAD_VSID, false, 0, 1, 0) },
		{ "RESUME", cmdq_build_resume(BAD_VSID, 0, 1) },
		{ "STALL_TERM", cmdq_build_stall_term(BAD_VSID) },
		{ "unknown 0x99", raw_cmd(0x99, 0) },
		{ "unknown 0xff", raw_cmd(0xff, ~0ull) },
		{ "opcode 0", raw_cmd(0, 0) },
		{ "CFGI_CD SSEC",
		  with_ssec(cmdq_build_cfgi_cd(BAD_VSID, 0, true)) },
		{ "TLBI_NH_ASID SSEC",
		  with_ssec(cmdq_build_tlbi_nh_asid(1, 0)) },
		{ "SYNC CS=3", cmdq_build_sync(3, 3, 0xf, 0, 0) },
		{ "TLBI_NH_ALL RES0", raw_cmd(CMDQ_OP_TLBI_NH_ALL, 1) },
		/* Another VM's device, by its vSID and by its pSID. */
		{ "CFGI_CD foreign vSID",
		  cmdq_build_cfgi_cd(GOOD_VSID, 0, true) },
		{ "CFGI_CD_ALL foreign vSID",
		  cmdq_build_cfgi_cd_all(GOOD_VSID) },
		{ "ATC_INV foreign vSID",
		  cmdq_build_atc_inv(GOOD_VSID, false, 0, false, 0, 0) },
		{ "CFGI_CD_ALL foreign pSID",
		  cmdq_build_cfgi_cd_all(GOOD_PSID) },
		{ "ATC_INV unattached vSID",
		  cmdq_build_atc_inv(0x7777, false, 0, false, 0, 0) },
	};
	const unsigned int n_bad = sizeof(bad) / sizeof(bad[0]);
	struct vm *b = &self->bad, *g = &self->good;
	struct core_vsmmu_stats st;
	struct smmu_ring_entry fix;
	struct cmdq_cmd s = tlib_sync_cmd();

	cmdq_cmd_to_le(&s, &fix);
	/* The good VM's config cache must survive the foreign-vSID tries. */
	ASSERT_OK(iofd_sim_cd_fill(g->vi, GOOD_VSID, 5));

	for (unsigned int i = 0; i < n_bad; i++) {
		uint32_t bad_idx, idx;
		uint64_t va = 0x200000 + 0x1000 * i;

		/* Precondition: the command model agrees it is illegal (or
		 * names a vSID this vSMMU does not have). */
		if (!strstr(bad[i].what, "SID"))
			ASSERT_EQ(cmdq_validate(&cmdq_caps_full, &bad[i].c,
						NULL),
				  CMDQ_CERROR_ILL);
		ASSERT_OK(iofd_sim_tlb_fill(b->vi, 1, va));
		push(&b->r, tlbi_page(1, va));
		push(&b->r, tlib_sync_cmd());
		bad_idx = push(&b->r, bad[i].c);
		idx = push(&b->r, tlib_sync_cmd());
		expect_halt(&b->r, idx, SMMU_RING_ERR_CERROR_ILL, bad_idx);
		if (t_failed)
			fprintf(stderr, "# while testing %s\n", bad[i].what);
		/* Everything before it completed, and for real. */
		EXPECT_TRUE(ring_prod_done_upto(&b->r.p, bad_idx - 1));
		EXPECT_FALSE(iofd_sim_tlb_lookup(b->vi, 1, va));

		ASSERT_OK(ring_prod_rewrite(&b->r.p, bad_idx, &fix));
		ASSERT_OK(ring_prod_resume(&b->r.p));
		ASSERT_OK(ring_prod_wait(&b->r.p, idx, 1000, WAIT_MS));
	}
	ASSERT_OK(core_vsmmu_stats(self->svc, b->vs, &st));
	EXPECT_EQ(st.halts[0], n_bad);
	/* Nothing illegal reached the host: it rejected nothing. */
	host_clean(b);
	EXPECT_TRUE(iofd_sim_cd_lookup(g->vi, GOOD_VSID, 5));
	good_vm_healthy(self->svc, g);
}

/* The control: the bad VM's own vSID is accepted. */
TEST_F(h, own_vsid_accepted)
{
	struct vm *b = &self->bad;

	ASSERT_OK(iofd_sim_cd_fill(b->vi, BAD_VSID, 0));
	push(&b->r, cmdq_build_cfgi_cd(BAD_VSID, 0, true));
	push(&b->r, cmdq_build_atc_inv(BAD_VSID, false, 0, false, 0, 0));
	sync_wait(&b->r, push(&b->r, tlib_sync_cmd()));
	EXPECT_FALSE(iofd_sim_cd_lookup(b->vi, BAD_VSID, 0));
	host_clean(b);
}

/* ---- entries rewritten while the service consumes them ---------------- */

struct scribbler {
	struct tlib_ring *r;
	unsigned int stop; /* atomic */
	uint64_t flips; /* atomic */
};

/*
 * Flip every slot between a legal TLBI_NH_ASID and an illegal
 * TLBI_EL2_ALL as fast as possible, behind ring_prod's back.
 */
static void *scribble_main(void *arg)
{
	struct scribbler *s = arg;
	struct cmdq_cmd ok = cmdq_build_tlbi_nh_asid(5, 0);
	struct cmdq_cmd evil = cmdq_build_tlbi_el2_all();
	struct smmu_ring_entry e[2];
	uint64_t n = 0;

	cmdq_cmd_to_le(&ok, &e[0]);
	cmdq_cmd_to_le(&evil, &e[1]);
	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		for (uint32_t i = 0; i < s->r->p.size; i++) {
			const struct smmu_ring_entry *src = &e[(n + i) & 1];

			__atomic_store_n(&s->r->p.entries[i].le[0], src->le[0],
					 __ATOMIC_RELAXED);
			__atomic_store_n(&s->r->p.entries[i].le[1], src->le[1],
					 __ATOMIC_RELAXED);
		}
		n++;
		__atomic_store_n(&s->flips, n, __ATOMIC_RELAXED);
	}
	return NULL;
}

TEST_F_TIMEOUT(h, entries_rewritten_while_consumed, 60)
{
	struct vm *b = &self->bad;
	struct scribbler s = { .r = &b->r };
	struct cmdq_cmd issued[IOFD_SIM_LOG];
	uint32_t n, e = 0, at = 0, rounds = 0;
	bool halted = false;
	pthread_t th;

	ASSERT_EQ(pthread_create(&th, NULL, scribble_main, &s), 0);
	while (!halted && rounds < 2000) {
		uint32_t idx;
		int rc;

		push(&b->r, cmdq_build_tlbi_nh_asid(5, 0));
		idx = push(&b->r, tlib_sync_cmd());
		ASSERT_OK(ring_prod_publish(&b->r.p));
		rc = ring_prod_wait(&b->r.p, idx, 1000, WAIT_MS);
		if (rc == -EPIPE)
			halted = true;
		else
			ASSERT_OK(rc);
		rounds++;
	}
	__atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	EXPECT_GT(__atomic_load_n(&s.flips, __ATOMIC_RELAXED), 0);
	fprintf(stderr, "# %u rounds, halted: %d\n", rounds, halted);

	/* Whatever the service saw, it judged its own copy: an illegal
	 * entry halts the ring with ILL, never reaches the host. */
	if (halted) {
		ASSERT_OK(ring_prod_halt_info(&b->r.p, &e, &at));
		EXPECT_EQ(e, SMMU_RING_ERR_CERROR_ILL);
	}
	host_clean(b);
	n = iofd_sim_issued(b->vi, issued, IOFD_SIM_LOG);
	for (uint32_t i = 0; i < n; i++)
		EXPECT_NE(cmdq_cmd_opcode(&issued[i]), CMDQ_OP_TLBI_EL2_ALL);
	good_vm_healthy(self->svc, &self->good);
}

/*
 * A VMM that acknowledges every halt at once without fixing the entry:
 * halt, resume, the same illegal entry, halt again, as fast as the worker
 * goes. That VM only burns its own share of worker passes.
 */
struct acker {
	struct tlib_ring *r;
	unsigned int stop; /* atomic */
};

static void *ack_main(void *arg)
{
	struct acker *a = arg;
	uint64_t one = 1;

	while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
		uint32_t seq = __atomic_load_n(&a->r->p.hdr->halt_seq,
					       __ATOMIC_ACQUIRE);

		__atomic_store_n(&a->r->p.hdr->resume_seq, seq,
				 __ATOMIC_RELEASE);
		if (write(a->r->db, &one, sizeof(one)) < 0)
			break;
	}
	return NULL;
}

TEST_F_TIMEOUT(h, halt_resume_storm, 60)
{
	struct vm *b = &self->bad;
	struct acker a = { .r = &b->r };
	struct core_vsmmu_stats st;
	uint32_t bad_idx;
	pthread_t th;

	bad_idx = push(&b->r, cmdq_build_tlbi_el2_all());
	push(&b->r, tlib_sync_cmd());
	expect_halt(&b->r, bad_idx + 1, SMMU_RING_ERR_CERROR_ILL, bad_idx);
	ASSERT_EQ(pthread_create(&th, NULL, ack_main, &a), 0);
	/* Run until the storm is real: many halts of the same entry. */
	do {
		good_vm_rounds(&self->good, 5);
		ASSERT_OK(core_vsmmu_stats(self->svc, b->vs, &st));
	} while (st.halts[0] < 1000);
	__atomic_store_n(&a.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	fprintf(stderr, "# %" PRIu64 " halts of one entry\n", st.halts[0]);
	/* Never past the bad entry. */
	EXPECT_EQ(__atomic_load_n(&b->r.p.hdr->cons, __ATOMIC_ACQUIRE),
		  bad_idx);
	host_clean(b);
	good_vm_healthy(self->svc, &self->good);
}

/* ---- floods ------------------------------------------------------------ */

struct flood {
	struct tlib_ring *r;
	unsigned int stop; /* atomic */
	uint64_t pushed; /* atomic */
};

/* A full-rate producer that also rings the doorbell on every push. */
static void *flood_main(void *arg)
{
	struct flood *f = arg;
	struct cmdq_cmd c = cmdq_build_tlbi_nh_all(0);
	struct smmu_ring_entry e[64];
	uint64_t one = 1;

	for (int i = 0; i < 64; i++)
		cmdq_cmd_to_le(&c, &e[i]);
	while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE)) {
		uint32_t idx;

		if (ring_prod_push(&f->r->p, e, 64, &idx) == 0) {
			__atomic_fetch_add(&f->pushed, 64, __ATOMIC_RELAXED);
			ring_prod_publish(&f->r->p);
		}
		/* Doorbell storm, NEED_WAKEUP or not. */
		if (write(f->r->db, &one, sizeof(one)) < 0)
			break;
	}
	return NULL;
}

TEST_F_TIMEOUT(h, flood_and_doorbell_storm, 90)
{
	struct vm *b = &self->bad;
	struct tlib_ring big;
	struct flood f = { .r = &big };
	pthread_t th;

	/* The largest ring a VMM may hand over. */
	ring_attach(self->svc, b->vs, &big, SMMU_RING_MAX_LOG2);
	ASSERT_EQ(pthread_create(&th, NULL, flood_main, &f), 0);
	/* The good VM goes on while the flood runs (at least 64K pushed). */
	for (int i = 0;
	     i < 50 || __atomic_load_n(&f.pushed, __ATOMIC_RELAXED) < 65536;
	     i++)
		good_vm_rounds(&self->good, 1);
	__atomic_store_n(&f.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	host_clean(&self->good);
	host_clean(b);
	ASSERT_OK(core_ring_detach(self->svc, big.id));
	tlib_ring_free(&big);
}

/*
 * Noisy neighbour (issue 8): one VM floods at maximum rate while 63 VMs
 * run strict-unmap (one TLBI + SYNC per unmap) on the same host SMMU. The
 * latency target (p99 within 2x of the run without the flood) is a
 * benchmark's job (smmu-bench -w noisy, docs/PERFORMANCE.md). Here the
 * worker's fairness is asserted as what does not depend on how the
 * threads are scheduled: every VM's SYNC completes with the flood on and
 * its TLB entry is gone, and in every round the flood got at most one
 * budget per worker pass (round robin with a per-ring budget). How many
 * passes a round takes is printed, not asserted: it counts passes the
 * worker ran while this thread was off the CPU, which a loaded machine
 * multiplies (a bound on it failed under load: issue 12).
 */
#define NOISY_VMS 63
#define NOISY_ROUNDS 30

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * @rounds rounds of one unmap + SYNC per VM; the worker passes each round
 * took, sorted, in @passes, and the flood entries taken in @flooded.
 */
static void noisy_rounds(struct core_service *svc, struct vm *vms,
			 unsigned int rounds, uint32_t flood_ring,
			 uint64_t *passes, uint64_t *flooded)
{
	for (unsigned int k = 0; k < rounds; k++) {
		struct core_hsmmu_stats a, b;
		struct core_ring_stats fa = { 0 }, fb = { 0 };
		uint32_t idx[NOISY_VMS];

		/*
		 * The pass count is read outside the flood's entry count (a
		 * before fa, fb before b): every entry counted was taken in a
		 * pass counted or in the one pass running at the last read,
		 * whenever this thread loses the CPU in between.
		 */
		ASSERT_OK(core_hsmmu_stats(svc, 0, &a));
		if (flood_ring)
			ASSERT_OK(core_ring_stats(svc, flood_ring, &fa));
		for (unsigned int i = 0; i < NOISY_VMS; i++) {
			uint64_t va = vms[i].next_iova;

			vms[i].next_iova += 0x1000;
			ASSERT_OK(iofd_sim_tlb_fill(vms[i].vi, 1, va));
			push(&vms[i].r, tlbi_page(1, va));
			idx[i] = push(&vms[i].r, tlib_sync_cmd());
			ASSERT_OK(ring_prod_publish(&vms[i].r.p));
		}
		for (unsigned int i = 0; i < NOISY_VMS; i++) {
			ASSERT_OK(ring_prod_wait(&vms[i].r.p, idx[i], 20000,
						 WAIT_MS));
			ASSERT_FALSE(iofd_sim_tlb_lookup(
				vms[i].vi, 1, vms[i].next_iova - 0x1000));
		}
		if (flood_ring)
			ASSERT_OK(core_ring_stats(svc, flood_ring, &fb));
		ASSERT_OK(core_hsmmu_stats(svc, 0, &b));
		passes[k] = b.passes - a.passes;
		flooded[k] = fb.entries - fa.entries;
		/* Per pass the flood gets at most its budget, whatever the
		 * scheduler did (+1 pass running at the last read, +1 spare). */
		EXPECT_LE(flooded[k], (passes[k] + 2) * CORE_DEFAULT_BUDGET);
	}
	qsort(passes, rounds, sizeof(passes[0]), u64_cmp);
	qsort(flooded, rounds, sizeof(flooded[0]), u64_cmp);
}

TEST_TIMEOUT(noisy_neighbour_fairness, 120)
{
	int fds_before = tlib_fds(0);
	struct core_service *svc = svc_new(0);
	struct vm *vms = calloc(NOISY_VMS, sizeof(*vms));
	struct vm flooder;
	struct flood f = { .r = &flooder.r };
	uint64_t quiet[NOISY_ROUNDS], noisy[NOISY_ROUNDS];
	uint64_t none[NOISY_ROUNDS], flooded[NOISY_ROUNDS];
	unsigned int sets = 0;
	pthread_t th;

	ASSERT_NONNULL(vms);
	for (unsigned int i = 0; i < NOISY_VMS; i++)
		vm_new(svc, &vms[i], 0x8, 0x1000 + i, 5);
	vm_new(svc, &flooder, 0x8, 0x2000, SMMU_RING_MAX_LOG2);

	noisy_rounds(svc, vms, NOISY_ROUNDS, 0, quiet, none);
	ASSERT_EQ(pthread_create(&th, NULL, flood_main, &f), 0);
	/* Measure only once the flood is really on. */
	while (__atomic_load_n(&f.pushed, __ATOMIC_RELAXED) < 4096)
		good_vm_rounds(&vms[0], 1);
	/*
	 * On a loaded machine the flooder may fill its ring and then get no
	 * CPU for all the rounds: measure again until the flood was taken
	 * inside them (sorted: the largest is last), the test timeout as
	 * the backstop.
	 */
	do {
		noisy_rounds(svc, vms, NOISY_ROUNDS, flooder.r.id, noisy,
			     flooded);
		sets++;
	} while (!flooded[NOISY_ROUNDS - 1]);
	__atomic_store_n(&f.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	printf("# worker passes per round of %d SYNCs, median / worst: %" PRIu64
	       " / %" PRIu64 " quiet, %" PRIu64 " / %" PRIu64
	       " with the flood (%" PRIu64 " commands flooded; flood "
	       "entries taken per round, median %" PRIu64 ", %u set%s of %d "
	       "rounds)\n",
	       NOISY_VMS, quiet[NOISY_ROUNDS / 2], quiet[NOISY_ROUNDS - 1],
	       noisy[NOISY_ROUNDS / 2], noisy[NOISY_ROUNDS - 1],
	       __atomic_load_n(&f.pushed, __ATOMIC_RELAXED),
	       flooded[NOISY_ROUNDS / 2], sets, sets > 1 ? "s" : "",
	       NOISY_ROUNDS);
	fflush(stdout);
	for (unsigned int i = 0; i < NOISY_VMS; i++)
		host_clean(&vms[i]);
	core_service_free(svc);
	for (unsigned int i = 0; i < NOISY_VMS; i++)
		tlib_ring_free(&vms[i].r);
	tlib_ring_free(&flooder.r);
	free(vms);
	EXPECT_EQ(tlib_fds(0), fds_before);
}

/*
 * A completion eventfd whose counter is at its maximum: a write(2) to it
 * would block. The worker must not block on it: it signals through the
 * kernel's eventfd_signal() (core/signal.c), which saturates the counter
 * at 2^64 - 1 instead of waiting. The bad VM still gets its wake-ups, the
 * good VM notices nothing. (tests/security/test-signal-race.c races this
 * many times, with O_NONBLOCK flipped under the service.)
 */
TEST_F_TIMEOUT(h, saturated_completion_eventfd, 60)
{
	struct vm *b = &self->bad;
	struct core_ring_stats rs;
	uint64_t max = 0xfffffffffffffffeull, sig = 0, signals;
	uint32_t idx = 0;
	double deadline;

	/* "I am asleep, signal me", forever (ring_prod keeps its copy). */
	b->r.p.prod_flags = SMMU_RING_WANT_SIGNAL;
	__atomic_store_n(&b->r.p.hdr->prod_flags, SMMU_RING_WANT_SIGNAL,
			 __ATOMIC_RELEASE);
	/* The signal path is live: one completion, one signal. */
	push(&b->r, cmdq_build_tlbi_nh_asid(2, 0));
	idx = push(&b->r, tlib_sync_cmd());
	ASSERT_OK(ring_prod_publish(&b->r.p));
	while (!ring_prod_done_upto(&b->r.p, idx))
		good_vm_rounds(&self->good, 1);
	/* The worker signals after completing: wait for it, not for luck. */
	deadline = tlib_deadline(WAIT_MS);
	for (;;) {
		ASSERT_OK(core_ring_stats(self->svc, b->r.id, &rs));
		if (rs.signals)
			break;
		ASSERT_LT(t_now(), deadline);
		good_vm_rounds(&self->good, 1);
	}
	/* Now saturate the counter: the next write(2) would block. */
	ASSERT_EQ(read(b->r.cq, &sig, sizeof(sig)), (ssize_t)sizeof(sig));
	ASSERT_EQ(write(b->r.cq, &max, sizeof(max)), (ssize_t)sizeof(max));
	signals = rs.signals;
	/*
	 * Never fill the ring: push() would then sleep in ring_prod_wait(),
	 * which drains the eventfd. Poll cons instead, as a VMM may.
	 */
	for (int i = 0; i < 40; i++) {
		push(&b->r, cmdq_build_tlbi_nh_asid(2, 0));
		idx = push(&b->r, tlib_sync_cmd());
		ASSERT_OK(ring_prod_publish(&b->r.p));
		while (!ring_prod_done_upto(&b->r.p, idx))
			good_vm_rounds(&self->good, 1);
	}
	/* One signal per completion at least: none lost, none blocked.
	 * The worker counts a signal just after it published cons: wait for
	 * the count (a hang fails on the deadline). */
	for (double t0 = t_now();;) {
		ASSERT_OK(core_ring_stats(self->svc, b->r.id, &rs));
		if (rs.signals >= signals + 40 || t_now() - t0 > 10)
			break;
		sched_yield();
	}
	EXPECT_GE(rs.signals, signals + 40);
	/* The kernel saturated the counter: a write(2) never can. */
	ASSERT_EQ(read(b->r.cq, &sig, sizeof(sig)), (ssize_t)sizeof(sig));
	EXPECT_EQ(sig, UINT64_MAX);
	good_vm_healthy(self->svc, &self->good);
}

/* ---- fds that are not what they claim ---------------------------------- */

TEST_F(h, attach_refuses_bad_fds)
{
	struct core_service *svc = self->svc;
	uint32_t vs = self->bad.vs, id = 0;
	int memfd, db, pipefd[2], unsealed, devnull, regular, r;
	char tmpl[] = "/tmp/hostile-XXXXXX";

	ASSERT_OK(ring_memfd_create(4, &memfd));
	db = eventfd(0, EFD_CLOEXEC);
	ASSERT_GE(db, 0);
	ASSERT_EQ(pipe2(pipefd, O_CLOEXEC), 0);
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	ASSERT_GE(devnull, 0);

	/* Doorbell / completion must be eventfds. */
	ASSERT_ERR(-EBADF,
		   core_ring_attach(svc, vs, memfd, pipefd[0], -1, &id));
	ASSERT_ERR(-EBADF,
		   core_ring_attach(svc, vs, memfd, db, pipefd[1], &id));
	ASSERT_ERR(-EBADF, core_ring_attach(svc, vs, memfd, 9999, -1, &id));
	/* The ring must be a sealed memfd of the right size and header. */
	ASSERT_ERR(-EBADF, core_ring_attach(svc, vs, devnull, db, -1, &id));
	ASSERT_ERR(-EBADF, core_ring_attach(svc, vs, db, db, -1, &id));
	unsealed = memfd_create("unsealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ASSERT_GE(unsealed, 0);
	ASSERT_EQ(ftruncate(unsealed, (off_t)smmu_ring_bytes(4)), 0);
	ASSERT_ERR(-EPERM, core_ring_attach(svc, vs, unsealed, db, -1, &id));
	/* Sealed, right size, but no ring header (all zero). */
	ASSERT_EQ(fcntl(unsealed, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
	ASSERT_ERR(-EPROTO, core_ring_attach(svc, vs, unsealed, db, -1, &id));
	/* A regular file has no seals (-EINVAL; a tmpfs file reports only
	 * F_SEAL_SEAL: -EPERM). */
	regular = mkstemp(tmpl);
	ASSERT_GE(regular, 0);
	unlink(tmpl);
	ASSERT_EQ(ftruncate(regular, (off_t)smmu_ring_bytes(4)), 0);
	r = core_ring_attach(svc, vs, regular, db, -1, &id);
	EXPECT_TRUE(r == -EINVAL || r == -EPERM);
	/* An unknown vSMMU. */
	ASSERT_ERR(-ENOENT, core_ring_attach(svc, 0xdead, memfd, db, -1, &id));

	close(regular);
	close(unsealed);
	close(devnull);
	close(pipefd[0]);
	close(pipefd[1]);
	close(db);
	close(memfd);
	good_vm_healthy(svc, &self->good);
}

/* ---- limits ------------------------------------------------------------- */

/* The service-wide ring budget: -EMFILE at the limit, room after detach. */
TEST(ring_limit_emfile)
{
	int fds_before = tlib_fds(0);
	struct core_service *svc = svc_new(4);
	struct core_service_stats ss;
	struct vm good, bad;
	struct tlib_ring r[4];
	unsigned int n = 0;

	vm_new(svc, &good, GOOD_VSID, GOOD_PSID, 5);
	vm_new(svc, &bad, BAD_VSID, BAD_PSID, 4); /* rings 1 and 2 */
	ASSERT_OK(core_service_stats(svc, &ss));
	EXPECT_EQ(ss.max_rings, 4);
	for (; n < 4; n++)
		if (_ring_attach(svc, bad.vs, &r[n], 2))
			break;
	EXPECT_EQ(n, 2);
	ASSERT_ERR(-EMFILE, core_ring_attach(svc, bad.vs, r[n].memfd, r[n].db,
					     r[n].cq, &r[n].id));
	/* The refused attach kept nothing. */
	ASSERT_OK(core_service_stats(svc, &ss));
	EXPECT_EQ(ss.n_rings, 4);
	good_vm_healthy(svc, &good);
	ASSERT_OK(core_ring_detach(svc, r[0].id));
	ASSERT_OK(core_ring_attach(svc, bad.vs, r[n].memfd, r[n].db, r[n].cq,
				   &r[n].id));
	core_service_free(svc);
	for (unsigned int i = 0; i <= n; i++)
		tlib_ring_free(&r[i]);
	tlib_ring_free(&good.r);
	tlib_ring_free(&bad.r);
	EXPECT_EQ(tlib_fds(0), fds_before);
}

/* Per vSMMU: rings, devices, vSIDs. */
TEST_F(h, per_vsmmu_limits)
{
	struct core_service *svc = self->svc;
	struct vm *b = &self->bad;
	struct tlib_ring r[8];
	uint32_t vdev, n = 0;

	/* A vSID is taken once per vSMMU; vSIDs are 32-bit. */
	ASSERT_ERR(-EEXIST,
		   core_device_attach(svc, b->vs, 0x300, BAD_VSID, &vdev));
	ASSERT_ERR(-EINVAL, core_device_attach(svc, b->vs, 0x301,
					       0x100000000ull, &vdev));
	for (uint32_t i = 1; i < CORE_MAX_DEVICES; i++)
		ASSERT_OK(core_device_attach(svc, b->vs, 0x10000 + i,
					     0x20000 + i, &vdev));
	ASSERT_ERR(-ENOSPC,
		   core_device_attach(svc, b->vs, 0x30000, 0x30000, &vdev));
	/* At most CORE_MAX_VSMMU_RINGS (8) rings feed one vSMMU; it has 1. */
	for (; n < 8; n++)
		if (_ring_attach(svc, b->vs, &r[n], 2))
			break;
	EXPECT_EQ(n, 7);
	ASSERT_ERR(-ENOSPC, core_ring_attach(svc, b->vs, r[7].memfd, r[7].db,
					     r[7].cq, &r[7].id));
	for (uint32_t i = 0; i <= n && i < 8; i++)
		tlib_ring_free(&r[i]);
	good_vm_healthy(svc, &self->good);
}

/*
 * The same ring memory attached twice (any fd of the file, on its own
 * vSMMU or a neighbour's) would give one ring two consumers: refused, and
 * the ring and the neighbour go on.
 */
TEST_F(h, same_memfd_twice)
{
	struct vm *b = &self->bad;
	uint32_t id2 = 0;
	int fd2;

	ASSERT_ERR(-EEXIST, core_ring_attach(self->svc, b->vs, b->r.memfd,
					     b->r.db, b->r.cq, &id2));
	fd2 = dup(b->r.memfd);
	ASSERT_GE(fd2, 0);
	ASSERT_ERR(-EEXIST, core_ring_attach(self->svc, self->good.vs, fd2,
					     b->r.db, b->r.cq, &id2));
	close(fd2);
	push(&b->r, cmdq_build_tlbi_nh_asid(4, 0));
	sync_wait(&b->r, push(&b->r, tlib_sync_cmd()));
	good_vm_healthy(self->svc, &self->good);
	host_clean(b);
}

TEST_HARNESS_MAIN
