/* SPDX-License-Identifier: MIT */
/*
 * What List says about software vCMDQs and guest memory, end to end (the
 * daemon in its own process, sim backend): each queue's state, gate, BASE,
 * PROD/CONS and CONS.ERR as the guest drives it (enable, commands, a
 * command error that halts the queue, the acknowledgement), the guest RAM
 * regions with their memfd offsets, and smmu-offloadctl list's text and
 * JSON forms of both. The expected values come from what this test (the
 * guest and the VMM) wrote and what the page shows, never from the
 * service's code.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <smmu-offload/client.h>
#include <smmu-offload/vcmdq.h>

#include "cmdq/cmdq.h"
#include "tests/harness.h"
#include "tests/lib/tlib.h"

#define WAIT_MS 10000
#define RAM_GPA 0x40000000ULL
#define RAM_SIZE (1ULL << 20)
#define RAM_OFFSET 0x3000ULL /* where the region starts in the memfd */
#define RAM2_GPA 0x80000000ULL
#define QLOG2 6 /* 64 entries: PROD/CONS carry 7 bits */
#define Q1_GPA 0x40080000ULL

FIXTURE(vl)
{
	struct tlib_daemon d;
};

FIXTURE_SETUP(vl)
{
	tlib_daemon_init(&self->d, tlib_daemon_quiet);
}

FIXTURE_TEARDOWN(vl)
{
	tlib_daemon_cleanup(&self->d);
}

/* The listed queue @lidx of the only vCMDQ, copied; the list is freed. */
static struct smmu_client_vcmdq_queue
list_queue(struct smmu_client *c, uint32_t lidx, uint32_t *ret_halted)
{
	struct smmu_client_vcmdq_queue q = { 0 };
	struct smmu_client_list *l;

	ASSERT_OK(smmu_client_list(c, 0, &l));
	ASSERT_EQ(l->n_vcmdqs, 1);
	ASSERT_EQ(l->n_vqueues, 2);
	ASSERT_FALSE(l->truncated);
	for (uint32_t i = 0; i < l->n_vqueues; i++) {
		ASSERT_EQ(l->vqueues[i].vcmdq_id, l->vcmdqs[0].id);
		ASSERT_EQ(l->vqueues[i].lidx, i);
	}
	q = l->vqueues[lidx];
	if (ret_halted)
		*ret_halted = l->vcmdqs[0].n_halted;
	smmu_client_list_free(l);
	return q;
}

/* A guest: queue 0 at RAM_GPA in guest RAM @ents, registers @q. */
struct guest {
	struct smmu_vcmdq_regs *q;
	struct smmu_ring_entry *ents;
	uint32_t prod;
};

static void guest_put(struct guest *g, struct cmdq_cmd cmd)
{
	g->ents[g->prod % (1u << QLOG2)] = tlib_entry(cmd);
	g->prod++;
}

static void guest_publish(struct guest *g)
{
	__atomic_store_n(&g->q->prod, g->prod & ((2u << QLOG2) - 1),
			 __ATOMIC_RELEASE);
}

static void check_queue0(struct smmu_client *c, enum smmu_client_vq_state st,
			 uint32_t err, uint32_t prod, uint32_t cons)
{
	uint32_t halted;
	struct smmu_client_vcmdq_queue q = list_queue(c, 0, &halted);

	ASSERT_EQ(q.state, st);
	ASSERT_EQ(halted, st == SMMU_CLIENT_VQ_HALTED ? 1 : 0);
	ASSERT_TRUE(q.ready);
	ASSERT_TRUE(q.base_set);
	ASSERT_EQ(q.base_gpa, RAM_GPA);
	ASSERT_EQ(q.log2size, QLOG2);
	ASSERT_EQ(q.err, err);
	ASSERT_EQ(q.prod, prod);
	ASSERT_EQ(q.cons, cons);
}

TEST_F_TIMEOUT(vl, queue_state_and_guest_memory, 60)
{
	int ram = tlib_memfd_sealed("vq", RAM_OFFSET + RAM_SIZE, F_SEAL_SHRINK);
	int page = tlib_memfd_sealed("vq", SMMU_VCMDQ_FILE_SIZE,
				     F_SEAL_SHRINK | F_SEAL_GROW);
	int irq = eventfd(0, EFD_CLOEXEC);
	struct smmu_client_vcmdq_queue q1;
	struct smmu_client_list *l;
	struct smmu_client *c;
	struct guest g = { 0 };
	uint32_t vs, id, bad;
	uint8_t *pm, *rm;

	tlib_daemon_start(&self->d, NULL);
	ASSERT_OK(smmu_client_connect(self->d.sock, "vq-list", &c));
	ASSERT_OK(smmu_client_vsmmu_create(c, "sim0", -1, 0, 0, &vs));
	ASSERT_OK(smmu_client_gmem_add(c, vs, ram, RAM_OFFSET, RAM_GPA,
				       RAM_SIZE));
	ASSERT_OK(smmu_client_gmem_add(c, vs, ram, 0, RAM2_GPA, 4096));
	ASSERT_OK(smmu_client_vcmdq_attach(c, vs, page, 2, irq, &id));

	/* Both regions, as added; both queues off, gates closed, no BASE. */
	ASSERT_OK(smmu_client_list(c, vs, &l));
	ASSERT_EQ(l->n_gmem, 2);
	for (uint32_t i = 0; i < 2; i++) {
		const struct smmu_client_gmem *r = &l->gmem[i];
		bool first = r->gpa == RAM_GPA;

		ASSERT_EQ(r->vsmmu_id, vs);
		ASSERT_TRUE(r->owned);
		ASSERT_EQ(r->gpa, first ? RAM_GPA : RAM2_GPA);
		ASSERT_EQ(r->size, first ? RAM_SIZE : 4096);
		ASSERT_EQ(r->offset, first ? RAM_OFFSET : 0);
	}
	ASSERT_NE(l->gmem[0].gpa, l->gmem[1].gpa);
	ASSERT_EQ(l->n_vqueues, 2);
	for (uint32_t i = 0; i < 2; i++) {
		ASSERT_EQ(l->vqueues[i].state, SMMU_CLIENT_VQ_OFF);
		ASSERT_FALSE(l->vqueues[i].ready);
		ASSERT_FALSE(l->vqueues[i].base_set);
		ASSERT_EQ(l->vqueues[i].err, 0);
	}
	smmu_client_list_free(l);

	/* The guest's memory as the guest sees it: RAM_GPA is file offset
	 * RAM_OFFSET. */
	pm = mmap(NULL, SMMU_VCMDQ_FILE_SIZE, PROT_READ | PROT_WRITE,
		  MAP_SHARED, page, 0);
	rm = mmap(NULL, RAM_OFFSET + RAM_SIZE, PROT_READ | PROT_WRITE,
		  MAP_SHARED, ram, 0);
	ASSERT_TRUE(pm != MAP_FAILED && rm != MAP_FAILED);
	g.q = smmu_vcmdq_regs(pm, 0);
	g.ents = (struct smmu_ring_entry *)(void *)(rm + RAM_OFFSET);

	/* Queue 1: a BASE forwarded, never enabled. Queue 0: enabled. */
	ASSERT_OK(smmu_client_vcmdq_set_base(c, id, 1,
					     smmu_vcmdq_base(Q1_GPA, 3)));
	ASSERT_OK(smmu_client_vcmdq_set_base(c, id, 0,
					     smmu_vcmdq_base(RAM_GPA, QLOG2)));
	ASSERT_OK(smmu_client_vcmdq_set_ready(c, id, 0, true));
	__atomic_store_n(&g.q->config, SMMU_VCMDQ_CONFIG_EN, __ATOMIC_RELEASE);
	ASSERT_TRUE(tlib_wait_u32(&g.q->status, SMMU_VCMDQ_STATUS_ENABLED,
				  SMMU_VCMDQ_STATUS_ENABLED, WAIT_MS));
	check_queue0(c, SMMU_CLIENT_VQ_ON, 0, 0, 0);
	q1 = list_queue(c, 1, NULL);
	ASSERT_EQ(q1.state, SMMU_CLIENT_VQ_OFF);
	ASSERT_FALSE(q1.ready);
	ASSERT_TRUE(q1.base_set);
	ASSERT_EQ(q1.base_gpa, Q1_GPA);
	ASSERT_EQ(q1.log2size, 3);

	/* Commands through the wrap: 70 entries in a 64-entry queue. */
	for (int k = 0; k < 35; k++) {
		guest_put(&g, cmdq_build_tlbi_nh_asid(3, 0));
		guest_put(&g, cmdq_build_sync(0, 3, 0xf, 0, 0));
		guest_publish(&g);
		ASSERT_TRUE(
			tlib_wait_u32(&g.q->cons, 127, g.prod & 127, WAIT_MS));
	}
	check_queue0(c, SMMU_CLIENT_VQ_ON, 0, 70 & 127, 70 & 127);

	/* A command the VCMDQ does not accept: ILL at it, the queue halts
	 * there; PROD shows what the service read. */
	bad = g.prod;
	guest_put(&g, cmdq_build_cfgi_all());
	guest_put(&g, cmdq_build_sync(0, 3, 0xf, 0, 0));
	guest_publish(&g);
	ASSERT_TRUE(tlib_wait_u32(&g.q->cons, SMMU_VCMDQ_CONS_ERR_MASK | 127,
				  (SMMU_VCMDQ_CERROR_ILL
				   << SMMU_VCMDQ_CONS_ERR_SHIFT) |
					  (bad & 127),
				  WAIT_MS));
	check_queue0(c, SMMU_CLIENT_VQ_HALTED, SMMU_VCMDQ_CERROR_ILL,
		     g.prod & 127, bad & 127);

	/* The guest rewrites the entry and acknowledges: on again. */
	g.ents[bad % (1u << QLOG2)] =
		tlib_entry(cmdq_build_sync(0, 3, 0xf, 0, 0));
	__atomic_store_n(&g.q->gerrorn,
			 __atomic_load_n(&g.q->gerror, __ATOMIC_ACQUIRE),
			 __ATOMIC_RELEASE);
	ASSERT_TRUE(tlib_wait_u32(&g.q->cons, SMMU_VCMDQ_CONS_ERR_MASK | 127,
				  g.prod & 127, WAIT_MS));
	check_queue0(c, SMMU_CLIENT_VQ_ON, 0, g.prod & 127, g.prod & 127);

	/* smmu-offloadctl list: the same values, text and JSON. */
	{
		const char *const text_args[] = { "list", NULL };
		const char *const json_args[] = { "--json", "list", NULL };
		char out[16384], want[160];

		ASSERT_EQ(tlib_ctl(self->d.sock, text_args, out, sizeof(out)),
			  0);
		snprintf(
			want, sizeof(want),
			"    queue 0: on base 0x%llx log2size %u prod 0x%x cons 0x%x\n",
			RAM_GPA, QLOG2, g.prod & 127, g.prod & 127);
		ASSERT_NONNULL(strstr(out, want));
		snprintf(
			want, sizeof(want),
			"    queue 1: off (gate closed) base 0x%llx log2size 3",
			Q1_GPA);
		ASSERT_NONNULL(strstr(out, want));
		snprintf(
			want, sizeof(want),
			"  vsmmu %u gpa 0x%llx size 0x%llx (memfd offset 0x%llx)\n",
			vs, RAM_GPA, RAM_SIZE, RAM_OFFSET);
		ASSERT_NONNULL(strstr(out, want));
		ASSERT_EQ(tlib_ctl(self->d.sock, json_args, out, sizeof(out)),
			  0);
		snprintf(
			want, sizeof(want),
			"{\"vcmdq_id\":%u,\"lidx\":0,\"state\":\"on\",\"ready\":true,\"err\":0,\"prod\":%u,\"cons\":%u,\"base_gpa\":%llu,\"log2size\":%u}",
			id, g.prod & 127, g.prod & 127, RAM_GPA, QLOG2);
		ASSERT_NONNULL(strstr(out, want));
		snprintf(
			want, sizeof(want),
			"{\"vsmmu_id\":%u,\"gpa\":%llu,\"size\":%llu,\"offset\":%llu}",
			vs, RAM_GPA, RAM_SIZE, RAM_OFFSET);
		ASSERT_NONNULL(strstr(out, want));
	}

	/* The gate closed: off at once, BASE kept. A removed region goes. */
	ASSERT_OK(smmu_client_vcmdq_set_ready(c, id, 0, false));
	{
		struct smmu_client_vcmdq_queue q0 = list_queue(c, 0, NULL);

		ASSERT_EQ(q0.state, SMMU_CLIENT_VQ_OFF);
		ASSERT_FALSE(q0.ready);
		ASSERT_TRUE(q0.base_set);
		ASSERT_EQ(q0.base_gpa, RAM_GPA);
	}
	ASSERT_OK(smmu_client_gmem_remove(c, vs, RAM2_GPA, 4096));
	ASSERT_OK(smmu_client_list(c, 0, &l));
	ASSERT_EQ(l->n_gmem, 1);
	ASSERT_EQ(l->gmem[0].gpa, RAM_GPA);
	smmu_client_list_free(l);
	ASSERT_OK(smmu_client_vcmdq_detach(c, id));
	ASSERT_OK(smmu_client_list(c, 0, &l));
	ASSERT_EQ(l->n_vcmdqs + l->n_vqueues, 0);
	smmu_client_list_free(l);
	ASSERT_OK(smmu_client_vsmmu_destroy(c, vs));
	ASSERT_OK(smmu_client_list(c, 0, &l));
	ASSERT_EQ(l->n_gmem, 0);
	smmu_client_list_free(l);

	smmu_client_free(c);
	munmap(pm, SMMU_VCMDQ_FILE_SIZE);
	munmap(rm, RAM_OFFSET + RAM_SIZE);
	close(ram);
	close(page);
	close(irq);
	tlib_daemon_stop(&self->d);
}

TEST_HARNESS_MAIN
