/* SPDX-License-Identifier: MIT */
/*
 * smmu-bench --producer stream: a producer that keeps up, so that what is
 * measured is the service's worker, not the simulated guests (issue 16).
 *
 * One thread per ring (vSMMU). It pushes and publishes batches of
 * --stream-batch entries (default: the worker's ring budget) as fast as
 * the ring has room, the way ring-bench's spin/stream producer does, and
 * yields the CPU when the ring is full. The entries come from a cycle
 * encoded once before the run (the workload's forwardable commands, a
 * CMD_SYNC as every --stream-sync-every'th entry), so the producer's own
 * cost per command is one copy into the ring. Completed commands are
 * counted from CONS; the last CMD_SYNC of each batch that has one is
 * timed from its publish to the producer seeing CONS pass it (the
 * latency histogram: mostly the time the batch queued in a full ring).
 *
 * The sim oracle is off in this mode (opts_finish()): filling it per
 * batch would cost the producer more than the worker spends per command,
 * and the cycle repeats the same addresses, so a stale entry could not be
 * told from a refilled one.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#include "bench/smmu-bench_i.h"

/* No completion for this long: the run fails instead of hanging. */
#define STREAM_STUCK_NS (UINT64_C(10) * 1000000000u)
/* Entries in the encoded cycle (rounded up to a multiple of the SYNC
 * period, so the SYNC positions repeat with it). */
#define STREAM_CYCLE 4096u
/* Re-read CONS from the header at least every this many batches (a full
 * ring makes ring_prod_push() read it anyway). */
#define STREAM_CONS_EVERY 8u
/* Tries to find a forwardable command in the workload before giving up. */
#define STREAM_MAX_DRAWS (UINT64_C(1) << 24)

/* A batch with a CMD_SYNC, in flight: its last SYNC and publish time. */
struct stream_sync {
	uint32_t idx;
	uint64_t t;
};

/* One ring's producer; owned by its thread. */
struct stream {
	struct smmu_ring_entry *e; /* len + batch: the cycle, then its start */
	uint32_t len, pos, batch, every;
	uint64_t sent; /* entries pushed since the start: the cycle position */
	uint64_t done; /* entries completed (CONS - CONS at the start) */
	uint32_t cons; /* the CONS value @done counts up to */
	struct stream_sync *fifo; /* ring size entries */
	uint32_t fmask, fhead, ftail;
};

/* The next forwardable command of @ws (the workload's SYNCs dropped). */
static int stream_draw(struct wl_stream *ws, struct wl_batch *b, uint32_t *bi,
		       struct cmdq_cmd *ret)
{
	for (uint64_t n = 0; n < STREAM_MAX_DRAWS; n++) {
		if (*bi >= b->n) {
			wl_next(ws, b);
			*bi = 0;
		}
		if (cmdq_classify(&b->cmd[*bi]) != CMDQ_CLASS_SYNC) {
			*ret = b->cmd[(*bi)++];
			return 0;
		}
		(*bi)++;
	}
	return -ENOENT;
}

/* Encode @vm's cycle from its first vCPU's workload stream. */
static int stream_build(const struct opts *o, struct vm *vm, struct stream *st,
			uint32_t ring_size)
{
	struct cmdq_cmd sync = cmdq_build_sync(2, 3, 0xf, 0, 0), c;
	struct wl_batch *b;
	uint32_t bi = 0;
	int r = 0;

	memset(st, 0, sizeof(*st));
	st->batch = o->stream_batch;
	st->every = o->stream_every;
	st->len = (STREAM_CYCLE + st->every - 1) / st->every * st->every;
	st->e = calloc((size_t)st->len + st->batch, sizeof(*st->e));
	st->fifo = calloc(ring_size, sizeof(*st->fifo));
	b = calloc(1, sizeof(*b));
	if (!st->e || !st->fifo || !b) {
		free(b);
		return -ENOMEM;
	}
	st->fmask = ring_size - 1;
	for (uint32_t i = 0; i < st->len && !r; i++) {
		if ((i + 1) % st->every == 0) {
			cmdq_cmd_to_le(&sync, &st->e[i]);
			continue;
		}
		r = stream_draw(&vm->slot[0].ws, b, &bi, &c);
		if (!r)
			cmdq_cmd_to_le(&c, &st->e[i]);
	}
	/* A batch may start anywhere in the cycle and read past its end. */
	for (uint32_t j = 0; j < st->batch; j++)
		st->e[st->len + j] = st->e[j % st->len];
	free(b);
	return r;
}

static void stream_free(struct stream *st)
{
	free(st->e);
	free(st->fifo);
}

/* The ring index of the last CMD_SYNC among the @n entries from cycle
 * position @g (pushed at ring index @first), or false if none. */
static bool stream_last_sync(const struct stream *st, uint64_t g,
			     uint32_t first, uint32_t n, uint32_t *ret_idx)
{
	uint64_t last = (g + n) / st->every * st->every;

	if (last < 1 || last - 1 < g)
		return false;
	*ret_idx = first + (uint32_t)(last - 1 - g);
	return true;
}

/*
 * Count what CONS says completed (from @st->cons, updated by the caller),
 * and time the SYNCs it passed. Return: true if CONS moved.
 */
static bool stream_collect(struct worker *wk, struct stream *st, uint32_t cons)
{
	uint64_t now = 0, max = wk->run->o->syncs;
	uint32_t moved = cons - st->cons;

	if (!moved)
		return false;
	st->done += moved;
	st->cons = cons;
	/* -k: exactly that many timed SYNCs (the rest completed untimed). */
	while (st->fhead != st->ftail && (!max || wk->c.waited < max)) {
		struct stream_sync *s = &st->fifo[st->fhead & st->fmask];

		/* Done iff CONS is past it (wrap-safe: < 2^31 apart). */
		if ((int32_t)(cons - s->idx) <= 0)
			break;
		if (!now)
			now = sb_now_ns();
		core_hist_add(&wk->c.lat, now - s->t);
		wk->c.wait_ns += now - s->t;
		wk->c.waited++;
		st->fhead++;
		__atomic_fetch_add(&wk->progress, 1, __ATOMIC_RELAXED);
	}
	return true;
}

/* Push and publish one batch. Return: 0, 1 = ring full, or -errno (with
 * wk->err set). */
static int stream_push(struct worker *wk, struct vm *vm, struct stream *st)
{
	struct ring_prod *p = &vm->ring.p;
	uint32_t first, idx;
	int rc;

	rc = ring_prod_push(p, &st->e[st->pos], st->batch, &first);
	if (rc == -EAGAIN)
		return 1;
	if (!rc)
		rc = ring_prod_publish(p);
	if (rc) {
		sb_offload_fail(wk, vm, "stream", rc);
		return rc;
	}
	if (stream_last_sync(st, st->sent, first, st->batch, &idx)) {
		struct stream_sync *s = &st->fifo[st->ftail++ & st->fmask];

		s->idx = idx;
		s->t = sb_now_ns();
	}
	st->sent += st->batch;
	st->pos += st->batch;
	if (st->pos >= st->len)
		st->pos -= st->len;
	wk->c.batches++;
	return 0;
}

/* Finished: the window is over, or -k timed SYNCs have completed. */
static bool stream_finished(struct worker *wk)
{
	const struct opts *o = wk->run->o;

	return o->syncs ? wk->c.waited >= o->syncs : sb_stopping(wk->run);
}

/* One ring's streaming producer (arg: its struct worker; wk->id is the
 * ring's struct vm). */
void *sb_stream_main(void *arg)
{
	struct worker *wk = arg;
	struct run *run = wk->run;
	struct vm *vm = &run->vms[wk->id];
	struct ring_prod *p = &vm->ring.p;
	uint64_t cpu0, full_since = 0;
	struct stream st;
	int rc;

	rc = stream_build(run->o, vm, &st, p->size);
	if (rc)
		snprintf(wk->err, sizeof(wk->err), "stream: %s",
			 rc == -ENOENT ?
				 "the workload has no forwardable command" :
				 strerror(-rc));
	if (!sb_run_gate(run, GO_ALL) || rc)
		goto out_free;
	cpu0 = sb_thread_cpu_ns();
	ring_prod_space(p);
	st.cons = p->cons;
	while (!stream_finished(wk)) {
		rc = stream_push(wk, vm, &st);
		if (rc < 0)
			break;
		if (!rc) {
			full_since = 0;
			/* The cached CONS is free; the header's now and
			 * then (a full ring makes the push read it). */
			if (wk->c.batches % STREAM_CONS_EVERY == 0)
				ring_prod_space(p);
			stream_collect(wk, &st, p->cons);
			continue;
		}
		if (stream_collect(wk, &st, p->cons)) {
			full_since = 0;
		} else if (!full_since) {
			full_since = sb_now_ns();
		} else if (sb_now_ns() - full_since > STREAM_STUCK_NS) {
			sb_offload_fail(wk, vm, "no completion for 10 s",
					ETIMEDOUT);
			break;
		}
		/* Full: as ring-bench's spin producer, let the worker have
		 * the CPU if it shares ours. */
		sched_yield();
	}
	ring_prod_space(p);
	stream_collect(wk, &st, p->cons);
	wk->c.cmds = st.done;
	wk->c.syncs = st.done / st.every;
	wk->c.fwd = st.done - wk->c.syncs;
	wk->c.cpu_ns = sb_thread_cpu_ns() - cpu0;
out_free:
	stream_free(&st);
	return NULL;
}
