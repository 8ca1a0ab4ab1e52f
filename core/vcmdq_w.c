/* SPDX-License-Identifier: MIT */
/*
 * The worker's side of software vCMDQs: polling the guest's queues,
 * taking their commands into the vSMMU's batches, completing and halting
 * them, the idle timer, and the control messages about them.
 *
 * Wake-up: a queue that fetched nothing for the poll window (and has
 * nothing in flight) leaves the active set; every idle queue is
 * re-checked (CONFIG, GERRORN, PROD: one ring_vcmdq_poll()) when the
 * idle timer (config vcmdq_idle_us) is due, so the guest's next command
 * is seen within that period, and an idle queue costs one poll per
 * period. With a userfaultfd (core_vcmdq_set_uffd(), the path measured
 * in docs/PERFORMANCE.md), a page is write-protected in the VMM's
 * mapping when its last active queue goes idle (or at the next timer
 * pass, if protecting failed or the uffd came later) and then costs
 * nothing: the guest's next store faults, the uffd becomes
 * readable, the worker's loop reports it and the worker un-protects,
 * which completes the store.
 *
 * Everything here runs on the worker thread.
 */
#include "core/worker_i.h"

#include <errno.h>
#include <linux/userfaultfd.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* After a write fault, how long the page stays polled at most waiting for
 * the faulted store (see core_vcmdq_uffd_event()). */
#define CORE_VQ_FAULT_HOLD_NS 2000000

static void vq_activate(struct core_worker *w, struct core_vq *q, uint64_t now)
{
	if (q->active || q->vc->detaching)
		return;
	q->active = true;
	q->last_work_ns = now;
	q->next_active = w->vq_active;
	w->vq_active = q;
}

/*
 * After anything that may have moved a queue: signal the VMM's irq
 * eventfd when an error was published (err_seq moved), count halts, and
 * mirror the states for the statistics. The eventfd is signalled as ring
 * completions are (signal.c): never blocking, whatever the VMM does.
 */
static void vcmdq_events(struct core_worker *w, struct core_vcmdq *vc)
{
	uint32_t ev = ring_vcmdq_take_events(&vc->v);

	if (!ev)
		return;
	for (unsigned int l = 0; l < vc->nq; l++) {
		struct core_vq *q = &vc->q[l];
		enum ring_vcmdq_state s = ring_vcmdq_state(&vc->v, l);

		if (s == RING_VCMDQ_HALTED && !q->halt_counted) {
			enum core_halt_slot k = core_halt_slot(vc->v.q[l].err);

			q->halt_counted = true;
			WRITE_ONCE(q->st_err, vc->v.q[l].err);
			STAT_ADD(vc->st_halts[k], 1);
			STAT_ADD(vc->vs->st_halts[k], 1);
			STAT_ADD(w->st_halts[k], 1);
		} else if (s != RING_VCMDQ_HALTED) {
			q->halt_counted = false;
		}
		WRITE_ONCE(q->st_state, (uint8_t)s);
	}
	WRITE_ONCE(vc->st_err_seq, vc->v.err_seq);
	if ((ev & RING_VCMDQ_EV_ERROR) && vc->irq_fd >= 0 &&
	    core_signal_post(&w->sig, vc->irq_fd) == 0)
		STAT_ADD(vc->st_signals, 1);
}

/* ---- batch hooks ----------------------------------------------------------- */

bool core_vq_seg_current(const struct core_seg *sg)
{
	const struct core_vq *q = sg->vq;

	return q->vc->v.q[q->l].gen == sg->epoch;
}

void core_vq_seg_complete(struct core_seg *sg, uint32_t upto, uint32_t syncs)
{
	struct core_vq *q = sg->vq;
	struct core_vcmdq *vc = q->vc;

	if (!core_vq_seg_current(sg) ||
	    upto - vc->v.q[q->l].cons >
		    vc->v.q[q->l].fetch_hi - vc->v.q[q->l].cons)
		return;
	/* Counted before CONS moves (R_CONS), as for rings. */
	STAT_ADD(vc->st_syncs, syncs);
	STAT_ADD(vc->vs->st_syncs, syncs);
	ring_vcmdq_complete(&vc->v, q->l, sg->epoch, upto);
}

void core_vq_seg_rewind(struct core_worker *w, struct core_seg *sg,
			uint32_t pos)
{
	struct core_vq *q = sg->vq;

	if (ring_vcmdq_rewind(&q->vc->v, q->l, sg->epoch, pos) == 0)
		vq_activate(w, q, core_now_ns());
}

void core_vq_seg_halt(struct core_seg *sg, uint32_t idx, uint32_t ring_err)
{
	struct core_vq *q = sg->vq;
	uint32_t err = ring_err == SMMU_RING_ERR_CERROR_ATC_INV_SYNC ?
			       SMMU_VCMDQ_CERROR_ATC_INV_SYNC :
			       SMMU_VCMDQ_CERROR_ILL;

	ring_vcmdq_halt(&q->vc->v, q->l, sg->epoch, idx, err);
}

void core_vq_seg_done(struct core_worker *w, struct core_seg *sg)
{
	struct core_vq *q = sg->vq;

	/* The guest's next command usually follows its completed SYNC:
	 * poll for it for a whole window from the completion (w->now, read
	 * after the call or at its completion; the diag split wants the
	 * moment of the CONS store). */
	uint64_t now = w->diag ? core_now_ns() : w->now;

	q->last_work_ns = now;
	core_worker_diag_done(w, now);
	vq_activate(w, q, now);
	vcmdq_events(w, q->vc);
}

static void vcmdq_check_detach(struct core_worker *w, struct core_vcmdq *vc);

void core_vq_seg_release(struct core_worker *w, struct core_seg *sg, bool open)
{
	struct core_vq *q = sg->vq;

	q->vc->batches--;
	if (open)
		q->open_seg = -1;
	vcmdq_check_detach(w, q->vc);
}

/* ---- consuming a queue --------------------------------------------------- */

static struct core_seg *vq_seg_open(struct core_batch *b, struct core_vq *q,
				    const struct ring_vcmdq_span *sp)
{
	struct core_seg *sg;

	q->open_seg = (int)core_batch_seg_open(b, sp->first, sp->gen);
	sg = &b->segs[q->open_seg];
	sg->vq = q;
	q->vc->batches++;
	return sg;
}

/* Halt @q at @idx with ILL (a command the vSMMU does not accept). */
static void vq_ill(struct core_vq *q, uint32_t gen, uint32_t idx)
{
	ring_vcmdq_halt(&q->vc->v, q->l, gen, idx, SMMU_VCMDQ_CERROR_ILL);
}

/*
 * Takes up to the budget of entries from queue @q into its vSMMU's open
 * batch, validating each copy as ring_pump() does for rings: fields
 * against the host's caps (cmdq_decode()), the vSID of an ATC_INV
 * attached; ring_vcmdq_fetch() already refused other opcodes.
 */
static uint32_t vq_pump(struct core_worker *w, struct core_vq *q, uint64_t now)
{
	struct core_vcmdq *vc = q->vc;
	struct core_vsmmu *vs = vc->vs;
	struct core_batch *b = vs->open;
	uint32_t avail = 0, budget, got, taken = 0, i;
	struct ring_vcmdq_span sp;
	bool new_seg = false;
	struct core_seg *sg;

	if (vc->detaching || vs->destroy_msg)
		return 0;
	ring_vcmdq_poll(&vc->v, q->l, &avail);
	if (!avail)
		return 0;
	q->blocked = true;
	budget = core_vsmmu_room(w, vs, q->open_seg, avail, now);
	if (!budget)
		return 0;
	q->blocked = false;

	got = ring_vcmdq_fetch(&vc->v, q->l, w->fetch_buf, budget, &sp);
	if (!got)
		return 0;
	if (!b->n_entries)
		b->t_open = now;
	/* A run is one generation's contiguous entries. */
	if (q->open_seg >= 0 && (b->segs[q->open_seg].epoch != sp.gen ||
				 b->segs[q->open_seg].end != sp.first)) {
		if (b->n_segs == CORE_MAX_VSMMU_RINGS) {
			ring_vcmdq_rewind(&vc->v, q->l, sp.gen, sp.first);
			q->blocked = true;
			return 0;
		}
		q->open_seg = -1;
	}
	if (q->open_seg < 0) {
		vq_seg_open(b, q, &sp);
		new_seg = true;
	}
	sg = &b->segs[q->open_seg];

	for (i = 0; i < got; i++) {
		uint32_t idx = sg->end;
		const struct cmdq_info *inf = &b->info[b->n];

		if (cmdq_decode(&vs->caps, &w->fetch_buf[i], &b->cmds[b->n],
				&b->info[b->n]) != CMDQ_CERROR_NONE) {
			vq_ill(q, sp.gen, idx);
			break;
		}
		if (inf->cls == CMDQ_CLASS_SYNC) {
			core_batch_sync(b, (unsigned int)q->open_seg, idx);
		} else if (inf->cls == CMDQ_CLASS_FORWARD) {
			if ((inf->flags & CMDQ_INFO_SID) &&
			    !core_vsmmu_has_vsid(vs, inf->sid)) {
				vq_ill(q, sp.gen, idx);
				break;
			}
			/* An ordering point: it goes in the next batch. */
			if (core_vsmmu_admit(vs, (unsigned int)q->open_seg,
					     idx) == CORE_ADMIT_CUT) {
				ring_vcmdq_rewind(&vc->v, q->l, sp.gen, idx);
				q->blocked = true;
				break;
			}
		} else {
			vq_ill(q, sp.gen, idx);
			break;
		}
		sg->end = idx + 1;
		b->n_entries++;
		taken++;
	}
	if (new_seg && !taken) {
		/* Nothing went in: an empty run would hold the queue. */
		b->n_segs--;
		q->open_seg = -1;
		vc->batches--;
	}
	if (wcfg(w)->rate_cmds)
		vs->tokens -= taken;
	STAT_ADD(vc->st_entries, taken);
	STAT_ADD(vs->st_entries, taken);
	return taken;
}

/* May @q leave the active set? Nothing in flight, no run open. */
static bool vq_may_idle(const struct core_vq *q)
{
	return q->open_seg < 0 && !ring_vcmdq_inflight(&q->vc->v, q->l);
}

static void vcmdq_try_arm(struct core_worker *w, struct core_vcmdq *vc);

uint32_t core_vcmdq_pump(struct core_worker *w, uint64_t now,
			 unsigned int *polling)
{
	uint64_t poll_ns = (uint64_t)wcfg(w)->vcmdq_poll_us * 1000;
	struct core_vq **pp = &w->vq_active, *q;
	uint32_t total = 0;

	while ((q = *pp)) {
		uint32_t n;

		q->blocked = false;
		n = vq_pump(w, q, now);
		total += core_vsmmu_try_issue(w, q->vc->vs);
		vcmdq_events(w, q->vc);
		if (n) {
			q->last_work_ns = now;
			q->vc->hold_until_ns = 0; /* the faulted store landed */
			total += n;
		} else if (!q->blocked && now - q->last_work_ns >= poll_ns &&
			   now >= q->vc->hold_until_ns && vq_may_idle(q)) {
			/* Idle: from now on the idle timer looks at it. A
			 * completion above may have put a queue at the head
			 * of the list: unlink q where it is. */
			while (*pp != q)
				pp = &(*pp)->next_active;
			q->active = false;
			*pp = q->next_active;
			/* The page's last active queue: protect it now. */
			vcmdq_try_arm(w, q->vc);
			continue;
		} else if (!q->blocked) {
			(*polling)++;
		}
		pp = &q->next_active;
	}
	return total;
}

bool core_vcmdq_idle_check(struct core_worker *w, uint64_t now)
{
	bool woke = false;

	if (!w->vcmdqs || now < w->vq_idle_next_ns)
		return false;
	w->vq_idle_next_ns = now + (uint64_t)wcfg(w)->vcmdq_idle_us * 1000;
	STAT_ADD(w->st_vq_idle_checks, 1);
	for (struct core_vcmdq *vc = w->vcmdqs; vc; vc = vc->next_w) {
		if (vc->detaching || vc->armed)
			continue;
		for (unsigned int l = 0; l < vc->nq; l++) {
			struct core_vq *q = &vc->q[l];
			enum ring_vcmdq_state s;
			uint32_t avail = 0;

			if (q->active)
				continue;
			s = ring_vcmdq_state(&vc->v, l);
			ring_vcmdq_poll(&vc->v, l, &avail);
			if (avail || s != ring_vcmdq_state(&vc->v, l)) {
				STAT_ADD(vc->st_wakeups, 1);
				vq_activate(w, q, now);
				woke = true;
			}
		}
		vcmdq_events(w, vc);
		vcmdq_try_arm(w, vc);
	}
	return woke;
}

int64_t core_vcmdq_sleep_ns(const struct core_worker *w, uint64_t now)
{
	const struct core_vcmdq *vc;

	/* Armed pages need no timer: their next store wakes the worker. */
	for (vc = w->vcmdqs; vc && vc->armed; vc = vc->next_w)
		;
	if (!vc)
		return -1;
	return w->vq_idle_next_ns > now ? (int64_t)(w->vq_idle_next_ns - now) :
					  0;
}

/* ---- userfaultfd write-protect ------------------------------------------ */

static int uffd_protect(struct core_vcmdq *vc, bool on)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = vc->uffd_addr, .len = vc->uffd_len },
		.mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	return ioctl(vc->uffd, UFFDIO_WRITEPROTECT, &wp) ? -errno : 0;
}

/* Un-protect (this also wakes every store stalled on the range) and poll
 * the queues again. */
static void vcmdq_disarm(struct core_worker *w, struct core_vcmdq *vc)
{
	uint64_t now;

	if (!vc->armed)
		return;
	uffd_protect(vc, false);
	vc->armed = false;
	WRITE_ONCE(vc->st_armed, false);
	now = core_now_ns();
	for (unsigned int l = 0; l < vc->nq; l++)
		vq_activate(w, &vc->q[l], now);
}

/*
 * Every queue of @vc is idle: protect the page, then look at every queue
 * once more, so that a store that landed between the last look and the
 * protection is seen here (after the protection, every store faults).
 * If the protection fails the timer goes on looking.
 */
static void vcmdq_try_arm(struct core_worker *w, struct core_vcmdq *vc)
{
	if (vc->uffd < 0 || vc->armed || vc->detaching)
		return;
	for (unsigned int l = 0; l < vc->nq; l++)
		if (vc->q[l].active)
			return;
	if (uffd_protect(vc, true) < 0)
		return;
	vc->armed = true;
	WRITE_ONCE(vc->st_armed, true);
	STAT_ADD(vc->st_arms, 1);
	for (unsigned int l = 0; l < vc->nq; l++) {
		enum ring_vcmdq_state s = ring_vcmdq_state(&vc->v, l);
		uint32_t avail = 0;

		ring_vcmdq_poll(&vc->v, l, &avail);
		if (avail || s != ring_vcmdq_state(&vc->v, l)) {
			vcmdq_disarm(w, vc);
			break;
		}
	}
	vcmdq_events(w, vc);
}

/*
 * The uffd became readable: a store faulted on the protected page (or
 * the VMM's uffd reports something else: un-protecting is harmless).
 * The uffd is never read: it is the VMM's file description, whose
 * O_NONBLOCK the VMM controls, and a read that found the message taken by
 * another reader would block the worker. Un-protecting wakes the faulting
 * thread and removes its unread message.
 */
void core_vcmdq_uffd_event(struct core_worker *w, uint32_t id, int res)
{
	struct core_vcmdq *vc;

	for (vc = w->vcmdqs; vc && vc->id != id; vc = vc->next_w)
		;
	if (!vc || !vc->uffd_watched)
		return;
	if (res == -ECANCELED)
		core_loop_watch(&w->loop, vc->uffd, core_vcmdq_token(vc));
	if (!vc->armed)
		return;
	STAT_ADD(vc->st_faults, 1);
	STAT_ADD(vc->st_wakeups, 1);
	/*
	 * The faulted store lands only when its vCPU thread runs again; a
	 * page armed before that would fault it again, and again (seen
	 * under load: hundreds of faults for one store). So the queues keep
	 * polling until one takes entries or the hold passes (a store that
	 * changes no PROD, e.g. CONFIG, ends it that way).
	 */
	vc->hold_until_ns = core_now_ns() + CORE_VQ_FAULT_HOLD_NS;
	vcmdq_disarm(w, vc);
}

static int vcmdq_set_uffd(struct core_worker *w, struct core_vcmdq *vc,
			  struct core_msg *m)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t len = (uint64_t)vc->nq * SMMU_VCMDQ_QUEUE_STRIDE;
	int r;

	if (vc->uffd >= 0)
		return -EALREADY;
	vc->uffd_addr = m->base;
	vc->uffd_len = (len + page - 1) & ~(page - 1);
	vc->uffd = m->fd;
	r = core_loop_watch(&w->loop, vc->uffd, core_vcmdq_token(vc));
	if (r < 0) {
		vc->uffd = -1;
		return r;
	}
	m->fd = -1; /* ours now, closed at the last put */
	vc->uffd_watched = true;
	/*
	 * A uffd handed again after a service restart (smmu_client_reconnect)
	 * may carry the dead instance's protection and a store stalled on a
	 * fault it read but never resolved: nobody would ever see that fault
	 * again. Lifting the protection wakes such a store; the queues are
	 * polled until the worker arms them again. Fails harmlessly on a
	 * range never protected.
	 */
	(void)uffd_protect(vc, false);
	return 0;
}

/* ---- control messages ----------------------------------------------------- */

static void vcmdq_unlink(struct core_worker *w, struct core_vcmdq *vc)
{
	struct core_vsmmu *vs = vc->vs;
	struct core_vq **qp;
	struct core_vcmdq **pp;

	for (qp = &w->vq_active; *qp;) {
		if ((*qp)->vc == vc) {
			(*qp)->active = false;
			*qp = (*qp)->next_active;
		} else {
			qp = &(*qp)->next_active;
		}
	}
	for (pp = &w->vcmdqs; *pp; pp = &(*pp)->next_w)
		if (*pp == vc) {
			*pp = vc->next_w;
			break;
		}
	for (pp = &vs->vcmdqs; *pp; pp = &(*pp)->next_vs)
		if (*pp == vc) {
			*pp = vc->next_vs;
			break;
		}
	vs->n_vcmdqs--;
	vc->linked = false;
	if (vc->uffd_watched) {
		/* A store stalled on the page must not wait for ever. */
		if (vc->armed)
			uffd_protect(vc, false);
		vc->armed = false;
		core_loop_unwatch(&w->loop, vc->uffd, core_vcmdq_token(vc));
		vc->uffd_watched = false;
	}
	/* Here, not at the last put: the gmem pins are this thread's. */
	ring_vcmdq_unmap(&vc->v);
	core_vcmdq_put(vc); /* the worker's */
}

/* A detaching vCMDQ leaves once no batch holds its entries. */
static void vcmdq_check_detach(struct core_worker *w, struct core_vcmdq *vc)
{
	struct core_msg *m = vc->detach_msg;

	if (!vc->detaching || vc->batches || !vc->linked)
		return;
	vc->detach_msg = NULL;
	/* The message holds a reference: @vc outlives the unlink. */
	vcmdq_unlink(w, vc);
	if (m)
		core_msg_reply(w, m, 0);
}

static void vcmdq_start_detach(struct core_worker *w, struct core_vcmdq *vc,
			       struct core_msg *m)
{
	bool open = false;

	vc->detaching = true;
	vc->detach_msg = m;
	for (unsigned int l = 0; l < vc->nq; l++)
		open |= vc->q[l].open_seg >= 0;
	/* What it has in the open batch still goes out: issue now. */
	if (open)
		core_vsmmu_try_issue(w, vc->vs);
	vcmdq_check_detach(w, vc);
}

static int vcmdq_link(struct core_worker *w, struct core_vcmdq *vc)
{
	struct core_vsmmu *vs = vc->vs;
	uint64_t now = core_now_ns();

	if (vs->dead || vs->destroy_msg)
		return -ENOENT;
	if (vs->n_vcmdqs >= CORE_MAX_VSMMU_VCMDQS)
		return -ENOSPC;
	vc->linked = true;
	vc->next_w = w->vcmdqs;
	w->vcmdqs = vc;
	vc->next_vs = vs->vcmdqs;
	vs->vcmdqs = vc;
	vs->n_vcmdqs++;
	core_vcmdq_get(vc); /* the worker's, dropped by vcmdq_unlink() */
	/* A page re-attached after a restart may have queues enabled: look
	 * at every queue once now. */
	for (unsigned int l = 0; l < vc->nq; l++) {
		vc->q[l].open_seg = -1;
		vq_activate(w, &vc->q[l], now);
	}
	return 0;
}

static bool vcmdq_usable(const struct core_vcmdq *vc)
{
	return vc->linked && !vc->detaching;
}

void core_vcmdq_handle_msg(struct core_worker *w, struct core_msg *m)
{
	struct core_vcmdq *vc = m->vcmdq;
	struct core_vsmmu *vs = m->vs;
	int rc = 0;

	switch (m->type) {
	case CORE_MSG_ADD_GMEM:
		rc = vs->dead || vs->destroy_msg ?
			     -ENOENT :
			     ring_gmem_add(vs->gmem, m->fd, m->offset, m->gpa,
					   m->size);
		break;
	case CORE_MSG_DEL_GMEM:
		rc = vs->dead || vs->destroy_msg ?
			     -ENOENT :
			     ring_gmem_remove(vs->gmem, m->gpa, m->size);
		break;
	case CORE_MSG_ADD_VCMDQ:
		rc = vcmdq_link(w, vc);
		break;
	case CORE_MSG_DEL_VCMDQ:
		if (!vcmdq_usable(vc)) {
			rc = -ENOENT;
			break;
		}
		vcmdq_start_detach(w, vc, m);
		return;
	case CORE_MSG_VCMDQ_UFFD:
		rc = vcmdq_usable(vc) ? vcmdq_set_uffd(w, vc, m) : -ENOENT;
		break;
	case CORE_MSG_VCMDQ_BASE:
	case CORE_MSG_VCMDQ_READY:
		if (!vcmdq_usable(vc)) {
			rc = -ENOENT;
			break;
		}
		rc = m->type == CORE_MSG_VCMDQ_BASE ?
			     ring_vcmdq_set_base(&vc->v, m->lidx, m->base) :
			     ring_vcmdq_set_ready(&vc->v, m->lidx, m->ready);
		if (rc == 0) {
			/* The guest's CONFIG.EN may be waiting for it. */
			vq_activate(w, &vc->q[m->lidx], core_now_ns());
			vcmdq_events(w, vc);
		}
		break;
	default:
		rc = -EINVAL;
		break;
	}
	core_msg_reply(w, m, rc);
}

void core_vcmdq_msg_undo(struct core_worker *w, struct core_msg *m)
{
	switch (m->type) {
	case CORE_MSG_ADD_GMEM:
		ring_gmem_remove(m->vs->gmem, m->gpa, m->size);
		break;
	case CORE_MSG_ADD_VCMDQ:
		/* Linked this pass: no batch holds its entries yet. */
		m->vcmdq->detaching = true;
		vcmdq_unlink(w, m->vcmdq);
		break;
	default:
		break;
	}
}

bool core_vcmdq_vsmmu_draining(struct core_worker *w, struct core_vsmmu *vs)
{
	struct core_vcmdq *vc = vs->vcmdqs, *next;

	for (; vc; vc = next) {
		next = vc->next_vs;
		if (!vc->detaching) {
			vc->detaching = true;
			vcmdq_check_detach(w, vc);
		}
	}
	return vs->n_vcmdqs != 0;
}

void core_vcmdq_vsmmu_remove(struct core_vsmmu *vs)
{
	if (vs->gmem)
		ring_gmem_done(vs->gmem);
}
