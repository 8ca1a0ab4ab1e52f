/* SPDX-License-Identifier: MIT */
/*
 * Test helpers for the software vCMDQ: a guest (RAM in two adjacent gmem
 * regions, the register page) with a software Linux tegra241-cmdqv driver
 * (facts 2.3 enable handshake, 2.5 submission, 2.6 CONS polling, 2.8 ISR
 * and ILL skip routine), and a test "worker" pass that polls, fetches,
 * logs and completes. Every guest wait is a bounded loop of "service
 * pass, then re-read the register": no sleeps, no clocks. The guest's
 * predicates are its own (the driver's), never the consumer's.
 */
#ifndef SMMU_OFFLOAD_TESTS_RING_VCMDQ_GUEST_H
#define SMMU_OFFLOAD_TESTS_RING_VCMDQ_GUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "ring/vcmdq_cons.h"

#define RAM_GPA 0x40000000ULL
/* Two adjacent regions: [0, 12 MiB) and [12 MiB, 32 MiB) of guest RAM. */
#define RAM_A (12ULL << 20)
#define RAM_TOTAL (32ULL << 20)
#define POLL_MAX 64 /* service passes a guest waits at most */
#define LOG_MAX (1u << 20)

/* The guest's own view: its mappings of the page and of its RAM. */
struct env {
	struct ring_gmem g;
	struct ring_vcmdq v;
	int ram_fd, page_fd;
	uint8_t *ram; /* guest RAM at RAM_GPA, RAM_TOTAL bytes */
	uint8_t *page; /* the register-page memfd, as the guest/VMM map it */
	/* the test worker */
	uint32_t budget;
	bool defer; /* do not complete: the test does it */
	struct ring_vcmdq_span last[2];
	uint32_t events;
	struct smmu_ring_entry *log[2]; /* issued commands, in order */
	uint32_t nlog[2];
	/* the guest driver: shadow PROD per queue, and queue geometry */
	uint32_t prod[2];
	uint32_t log2[2];
	uint64_t qgpa[2];
};

struct smmu_vcmdq_regs *regs(struct env *e, unsigned int l);
struct smmu_ring_entry *gq(struct env *e, unsigned int l);
struct smmu_ring_entry cmd(uint64_t w0, uint64_t w1);
struct smmu_ring_entry tlbi_va(uint32_t asid, uint64_t va);
struct smmu_ring_entry sync_none(void);
int env_init(struct env *e, unsigned int nq);
void env_done(struct env *e);
void service_pass(struct env *e);
void guest_writel(uint32_t *reg, uint32_t val);
uint32_t guest_readl(uint32_t *reg);
int guest_config(struct env *e, unsigned int l, uint32_t en);
int guest_queue_init(struct env *e, unsigned int l, uint64_t qgpa,
		     uint32_t log2);
uint32_t guest_space(struct env *e, unsigned int l);
int guest_submit(struct env *e, unsigned int l, const struct smmu_ring_entry *c,
		 uint32_t n, uint32_t *ret_last);
bool guest_sync_done(uint32_t cons, uint32_t sync, uint32_t log2);
int guest_wait_sync(struct env *e, unsigned int l, uint32_t sync);
int guest_isr(struct env *e);
/* A correct guest's round on queue @l: three TLBI_NH_VA of @asid at @va
 * and a CMD_SYNC, submitted and waited for. 0 or -errno. */
int guest_round(struct env *e, unsigned int l, uint32_t asid, uint64_t va);

/* Fixture @fx with a guest of @nq queues, self->e (tests/harness.h). */
#define VCMDQ_ENV_FIXTURE(fx, nq)                  \
	FIXTURE(fx)                                \
	{                                          \
		struct env e;                      \
	};                                         \
	FIXTURE_SETUP(fx)                          \
	{                                          \
		ASSERT_OK(env_init(&self->e, nq)); \
	}                                          \
	FIXTURE_TEARDOWN(fx)                       \
	{                                          \
		env_done(&self->e);                \
	}

#endif
