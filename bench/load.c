/* SPDX-License-Identifier: MIT */
/*
 * smmu-bench: what the simulated guests do the same in every mode: account
 * their SYNCs and check the oracle, arrive on the open loop's schedule,
 * and flood (--flood). The per-command and per-batch steps (--fault-drop,
 * sb_count_batch()) are inline in smmu-bench_i.h.
 */
#include <errno.h>
#include <math.h>
#include <sched.h>

#include "bench/smmu-bench_i.h"

/* The guest saw its CMD_SYNC complete @lat ns after publishing it. */
void sb_count_sync(struct worker *wk, struct slot *s, struct vm *vm,
		   uint64_t lat)
{
	struct counters *c = &wk->c;
	unsigned int checked = 0;

	core_hist_add(&c->lat, lat);
	c->wait_ns += lat;
	c->waited++;
	s->waited++;
	__atomic_fetch_add(&wk->progress, 1, __ATOMIC_RELAXED);
	if (sb_verifying(wk->run)) {
		c->stale += wl_check(&s->ws, vm->vi, &checked);
		c->checked += checked;
	}
}

/* ---- open loop --------------------------------------------------------- */

static double slot_rate(const struct opts *o)
{
	return o->rate / (double)(o->vsmmus * o->vcpus);
}

/* The gap to a slot's next arrival: fixed, or exponential (Poisson). */
static uint64_t arrival_gap(const struct opts *o, struct slot *s)
{
	double mean = 1e9 / slot_rate(o);
	double u;

	if (!o->poisson)
		return (uint64_t)mean;
	/* splitmix64 -> uniform (0, 1] */
	s->arng += UINT64_C(0x9e3779b97f4a7c15);
	u = (double)((wl_mix64(s->arng) >> 11) + 1) * 0x1p-53;
	return (uint64_t)(-log(u) * mean);
}

/* The first arrival: a random phase, so that slots do not march in step. */
void sb_slot_schedule(const struct opts *o, struct slot *s, uint64_t seed,
		      uint64_t t0)
{
	s->arng = seed * UINT64_C(0xd1342543de82ef95) + 1;
	if (o->poisson) {
		s->t_sched = t0 + arrival_gap(o, s);
	} else {
		s->arng += UINT64_C(0x9e3779b97f4a7c15);
		s->t_sched = t0 + wl_mix64(s->arng) %
					  ((uint64_t)(1e9 / slot_rate(o)) + 1);
	}
}

/* A batch starts: take its due time, schedule the next one. */
void sb_slot_start(const struct opts *o, struct counters *c, struct slot *s,
		   uint64_t now)
{
	s->t_lat0 = s->t_sched;
	c->scheduled++;
	c->lag_ns += now > s->t_sched ? now - s->t_sched : 0;
	s->t_sched += arrival_gap(o, s);
}

/* Sleep until @t, at most 100 ms (the caller re-checks stop). */
void sb_sleep_until(uint64_t t)
{
	uint64_t now = sb_now_ns();
	struct timespec ts;

	if (t <= now)
		return;
	if (t - now > 100000000u)
		t = now + 100000000u;
	ts.tv_sec = (time_t)(t / 1000000000u);
	ts.tv_nsec = (long)(t % 1000000000u);
	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

/* ---- noisy neighbour (--flood) ----------------------------------------- */

#define FLOOD_BATCH 32 /* TLBI_NH_ASIDs per PROD write / ioctl */
#define FLOOD_SYNC_EVERY 8 /* batches between the flooder's SYNCs */

/*
 * A flooding VM's commands: distinct ASIDs, so that coalescing cannot fold
 * a batch into one command. The ASIDs are the flooder's own (its own
 * VMID), nothing in the oracle is filled for them.
 */
static void flood_cmds(struct cmdq_cmd *c, uint64_t round)
{
	for (unsigned int i = 0; i < FLOOD_BATCH; i++)
		c[i] = cmdq_build_tlbi_nh_asid(
			(uint16_t)(1 + (round * FLOOD_BATCH + i) % 4096), 0);
}

void *sb_flood_main(void *arg)
{
	struct worker *wk = arg;
	struct run *run = wk->run;
	struct vm *vm = &run->vms[wk->id];
	struct cmdq_cmd c[FLOOD_BATCH + 1];
	struct smmu_ring_entry e[FLOOD_BATCH + 1];
	uint64_t cpu0, round = 0;
	uint32_t first, done = 0;
	int rc = 0;

	if (!sb_run_gate(run, GO_FLOOD))
		return NULL;
	cpu0 = sb_thread_cpu_ns();
	while (!sb_stopping(run)) {
		bool sync = round % FLOOD_SYNC_EVERY == FLOOD_SYNC_EVERY - 1;
		uint32_t n = FLOOD_BATCH;

		flood_cmds(c, round);
		if (run->mode == M_OFFLOAD) {
			if (sync)
				c[n++] = cmdq_build_sync(0, 3, 0xf, 0, 0);
			for (uint32_t i = 0; i < n; i++)
				cmdq_cmd_to_le(&c[i], &e[i]);
			rc = ring_prod_push(&vm->ring.p, e, n, &first);
			if (rc == -EAGAIN) {
				/* Ring full: keep it full, never wait. */
				sched_yield();
				continue;
			}
			if (!rc)
				rc = ring_prod_publish(&vm->ring.p);
			if (rc) {
				sb_offload_fail(wk, vm, "flood", rc);
				break;
			}
		} else if (run->mode == M_QEMU) {
			for (uint32_t i = 0; i < n && !rc; i++)
				rc = iofd_invalidate(vm->vi, &c[i], 1, &done);
		} else {
			rc = iofd_invalidate(vm->vi, c, n, &done);
		}
		if (rc) {
			snprintf(wk->err, sizeof(wk->err),
				 "flood: iofd_invalidate: %s", strerror(-rc));
			wk->c.errors++;
			break;
		}
		wk->c.cmds += n;
		wk->c.syncs += n - FLOOD_BATCH;
		if (!round++)
			sb_flood_published(run);
	}
	if (!round)
		sb_flood_published(run); /* failed: the error ends the run */
	wk->c.cpu_ns = sb_thread_cpu_ns() - cpu0;
	return NULL;
}
