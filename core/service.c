/* SPDX-License-Identifier: MIT */
/*
 * The control side of the service: configuration, the object registry,
 * and the calls that hand objects to their worker. Everything here runs
 * on control threads; svc->lock guards the registry and is never held
 * while waiting for a worker (core/ctl.c); the workers never take it.
 */
#include "core/core_i.h"

/* Names pass from the backend's hosts to core's stats unchanged. */
_Static_assert(CORE_NAME_MAX == IOFD_NAME_MAX, "host SMMU name sizes");
#include "ring/gmem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/barrier.h"

/* fds kept back from the ring budget: sockets, logs, backend, loops. */
#define CORE_FD_RESERVE 64

static void apply_defaults(struct core_config *c)
{
	if (!c->max_inflight)
		c->max_inflight = CORE_DEFAULT_INFLIGHT;
	if (!c->ring_budget)
		c->ring_budget = CORE_DEFAULT_BUDGET;
	if (!c->max_batch)
		c->max_batch = CORE_DEFAULT_MAX_BATCH;
	if (!c->rate_burst)
		c->rate_burst = c->ring_budget * 4;
	if (!c->ctl_timeout_ms)
		c->ctl_timeout_ms = CORE_DEFAULT_CTL_TIMEOUT_MS;
	if (!c->vcmdq_poll_us)
		c->vcmdq_poll_us = CORE_DEFAULT_VCMDQ_POLL_US;
	if (!c->vcmdq_idle_us)
		c->vcmdq_idle_us = CORE_DEFAULT_VCMDQ_IDLE_US;
	if (!c->gmem_max)
		c->gmem_max = CORE_DEFAULT_GMEM_MAX;
}

static int raise_fd_limit(uint64_t *ret_limit)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		/* Not fatal: the budget below follows what we have. */
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	*ret_limit = rl.rlim_cur;
	return 0;
}

int core_service_new(const struct core_config *cfg, struct core_service **ret)
{
	struct core_service *svc;
	uint64_t budget;
	int r;

	if (!cfg || !cfg->n_hsmmu || cfg->n_hsmmu > CORE_MAX_HSMMU ||
	    !cfg->hsmmu_names || cfg->max_batch > 4096 ||
	    cfg->ring_budget > 4096)
		return -EINVAL;
	svc = calloc(1, sizeof(*svc));
	if (!svc)
		return -ENOMEM;
	svc->cfg = *cfg;
	apply_defaults(&svc->cfg);
	pthread_mutex_init(&svc->lock, NULL);
	pthread_mutex_init(&svc->bind_lock, NULL);
	svc->next_id = 1;
	svc->signal_ok = true; /* until a worker cannot set up AIO */

	r = raise_fd_limit(&svc->fd_limit);
	if (r < 0)
		goto err;
	budget = svc->fd_limit > CORE_FD_RESERVE ?
			 (svc->fd_limit - CORE_FD_RESERVE) / CORE_FDS_PER_RING :
			 0;
	svc->max_rings =
		cfg->max_rings && cfg->max_rings < budget ?
			cfg->max_rings :
			(uint32_t)(budget > UINT32_MAX ? UINT32_MAX : budget);

	r = iofd_backend_new(
		&(struct iofd_config){ .kind = svc->cfg.backend.kind,
				       .sim = svc->cfg.backend.sim,
				       .sysfs_root =
					       svc->cfg.backend.sysfs_root },
		&svc->backend);
	if (r < 0)
		goto err;
	svc->workers = calloc(cfg->n_hsmmu, sizeof(*svc->workers));
	if (!svc->workers) {
		r = -ENOMEM;
		goto err;
	}
	for (unsigned int i = 0; i < cfg->n_hsmmu; i++) {
		struct core_worker *w = &svc->workers[i];

		w->svc = svc;
		w->ctl_efd = -1;
		w->sig.ready_fd = -1;
		w->h_sync = malloc(sizeof(*w->h_sync));
		w->h_batch = malloc(sizeof(*w->h_batch));
		w->h_call = malloc(sizeof(*w->h_call));
		if (cfg->diag_hists)
			w->diag = calloc(1, sizeof(*w->diag));
		if (!w->h_sync || !w->h_batch || !w->h_call ||
		    (cfg->diag_hists && !w->diag)) {
			r = -ENOMEM;
			goto err;
		}
		core_hist_init(w->h_sync);
		core_hist_init(w->h_batch);
		core_hist_init(w->h_call);
		if (w->diag) {
			core_hist_init(&w->diag->take);
			core_hist_init(&w->diag->done);
			core_hist_init(&w->diag->pass);
		}
		snprintf(w->name, sizeof(w->name), "%s", cfg->hsmmu_names[i]);
		r = iofd_hsmmu_open(svc->backend, w->name, &w->hsmmu);
		if (r < 0)
			goto err;
		svc->n_workers++;
		r = core_worker_start(w);
		if (r < 0)
			goto err;
	}
	*ret = svc;
	return 0;
err:
	core_service_free(svc);
	return r;
}

struct iofd_backend *core_service_backend(struct core_service *svc)
{
	return svc->backend;
}

const char *core_service_backend_name(const struct core_service *svc)
{
	return iofd_backend_kind(svc->backend);
}

/*
 * What the backend needs, checked here so that callers (the RPC server)
 * carry no backend knowledge: kernel binds through the VMM's iommufd, and
 * a wrong fd is refused before any work; sim and null take none.
 */
static int check_vsmmu_spec(const struct core_service *svc,
			    const struct core_vsmmu_spec *spec)
{
	bool kernel = !strcmp(iofd_backend_kind(svc->backend), "kernel");

	if (kernel != (spec->iommufd >= 0) || (!kernel && spec->iommufd != -1))
		return -EINVAL;
	return kernel ? iofd_iommufd_check(spec->iommufd) : 0;
}

const char *core_service_loop_name(const struct core_service *svc)
{
	return svc->n_workers ? core_loop_name(&svc->workers[0].loop) : "none";
}

/* ---- registry ----------------------------------------------------------- */

static int reg_add(void ***arr, uint32_t *n, uint32_t *cap, void *p)
{
	if (*n == *cap) {
		uint32_t c = *cap ? *cap * 2 : 32;
		void **a = realloc(*arr, c * sizeof(*a));

		if (!a)
			return -ENOMEM;
		*arr = a;
		*cap = c;
	}
	(*arr)[(*n)++] = p;
	return 0;
}

static void reg_del(void **arr, uint32_t *n, void *p)
{
	for (uint32_t i = 0; i < *n; i++)
		if (arr[i] == p) {
			arr[i] = arr[--*n];
			return;
		}
}

static struct core_vsmmu *find_vsmmu(struct core_service *svc, uint32_t id)
{
	for (uint32_t i = 0; i < svc->n_vsmmus; i++)
		if (svc->vsmmus[i]->id == id)
			return svc->vsmmus[i];
	return NULL;
}

static struct core_ring *find_ring(struct core_service *svc, uint32_t id)
{
	for (uint32_t i = 0; i < svc->n_rings; i++)
		if (svc->rings[i]->id == id && !svc->rings[i]->attaching)
			return svc->rings[i];
	return NULL;
}

static struct core_worker *find_worker(struct core_service *svc,
				       const char *name)
{
	for (unsigned int i = 0; i < svc->n_workers; i++)
		if (!strcmp(svc->workers[i].name, name))
			return &svc->workers[i];
	return NULL;
}

/* ---- vSMMUs --------------------------------------------------------------- */

/*
 * Every call below looks its objects up under svc->lock, takes references
 * for the message, and drops the lock before it waits on the worker, so a
 * slow or stuck worker never holds up calls about other host SMMUs or the
 * statistics. Objects leave the registry before a detach or destroy is
 * posted (their id is gone from then on, even if the call times out) and
 * join it only once their worker said yes.
 */

int core_vsmmu_create(struct core_service *svc, const char *hsmmu,
		      const struct core_vsmmu_spec *spec, uint32_t *ret_id)
{
	struct iofd_viommu_spec ispec;
	struct core_msg *m = NULL;
	struct core_worker *w;
	struct core_vsmmu *vs;
	int r;

	if (!hsmmu || !spec)
		return -EINVAL;
	r = check_vsmmu_spec(svc, spec);
	if (r)
		return r;
	w = find_worker(svc, hsmmu);
	if (!w)
		return -ENOENT;
	ispec = (struct iofd_viommu_spec){ .iommufd = spec->iommufd,
					   .viommu_id = spec->viommu_id,
					   .dev_id = spec->dev_id };
	vs = calloc(1, sizeof(*vs));
	if (!vs)
		return -ENOMEM;
	vs->gmem = calloc(1, sizeof(*vs->gmem));
	if (!vs->gmem) {
		free(vs);
		return -ENOMEM;
	}
	ring_gmem_init(vs->gmem, svc->cfg.gmem_max);
	vs->refs = 1; /* ours, then the registry's */
	vs->w = w;
	pthread_mutex_init(&vs->devs_lock, NULL);
	/* Binding is the backend's business (no worker, no svc->lock). */
	pthread_mutex_lock(&svc->bind_lock);
	r = iofd_viommu_bind(w->hsmmu, &ispec, &vs->viommu);
	/*
	 * The kernel backend learns the host caps at the first bind; the
	 * worker validates against this copy, handed over with the message,
	 * so it never reads caps another bind may be writing.
	 */
	if (r == 0) {
		vs->caps = *iofd_hsmmu_caps(w->hsmmu);
		cmdq_caps_prepare(&vs->caps); /* once, not per TLBI */
	}
	pthread_mutex_unlock(&svc->bind_lock);
	if (r < 0)
		goto out;
	m = core_msg_new(CORE_MSG_ADD_VSMMU);
	if (!m) {
		r = -ENOMEM;
		goto out;
	}
	pthread_mutex_lock(&svc->lock);
	vs->id = svc->next_id++;
	pthread_mutex_unlock(&svc->lock);
	core_vsmmu_get(vs);
	m->vs = vs;
	r = core_worker_call(w, m, false);
	if (r < 0)
		goto out;
	pthread_mutex_lock(&svc->lock);
	r = reg_add((void ***)&svc->vsmmus, &svc->n_vsmmus, &svc->cap_vsmmus,
		    vs);
	if (r == 0) {
		vs->registered = true;
		*ret_id = vs->id;
		vs = NULL; /* our reference is the registry's now */
	}
	pthread_mutex_unlock(&svc->lock);
	if (r < 0) {
		/* Served but not registered: take it back. */
		struct core_msg *d = core_msg_new(CORE_MSG_DEL_VSMMU);

		if (d) {
			core_vsmmu_get(vs);
			d->vs = vs;
			(void)core_worker_call(w, d, true);
			core_msg_put(d);
		}
	}
out:
	core_msg_put(m);
	core_vsmmu_put(vs);
	return r;
}

/*
 * Takes @vs and its rings out of the registry and posts their destroy.
 * Called with svc->lock held; returns the message (the caller waits on it
 * unlocked), or NULL if there was no memory, in which case @vs stays.
 */
static struct core_msg *vsmmu_unregister_locked(struct core_service *svc,
						struct core_vsmmu *vs)
{
	struct core_msg *m = core_msg_new(CORE_MSG_DEL_VSMMU);

	if (!m)
		return NULL;
	for (uint32_t i = svc->n_rings; i-- > 0;) {
		struct core_ring *r = svc->rings[i];

		if (r->vs == vs) {
			reg_del((void **)svc->rings, &svc->n_rings, r);
			/* The worker keeps its own reference while it drains. */
			core_ring_put(r);
		}
	}
	core_vcmdq_unregister_vsmmu_locked(svc, vs);
	reg_del((void **)svc->vsmmus, &svc->n_vsmmus, vs);
	vs->registered = false;
	m->vs = vs; /* the registry's reference */
	return m;
}

int core_vsmmu_destroy(struct core_service *svc, uint32_t vsmmu_id)
{
	struct core_msg *m = NULL;
	struct core_vsmmu *vs;
	int r;

	pthread_mutex_lock(&svc->lock);
	vs = find_vsmmu(svc, vsmmu_id);
	if (vs)
		m = vsmmu_unregister_locked(svc, vs);
	pthread_mutex_unlock(&svc->lock);
	if (!vs)
		return -ENOENT;
	if (!m)
		return -ENOMEM;
	/* The worker drains the rings and destroys the vDEVICEs; on a
	 * timeout it still does, and the last reference releases. */
	r = core_worker_call(vs->w, m, true);
	core_msg_put(m);
	return r;
}

struct iofd_viommu *core_vsmmu_viommu(struct core_service *svc,
				      uint32_t vsmmu_id)
{
	struct core_vsmmu *vs;

	pthread_mutex_lock(&svc->lock);
	vs = find_vsmmu(svc, vsmmu_id);
	pthread_mutex_unlock(&svc->lock);
	return vs ? vs->viommu : NULL;
}

/* ---- devices ---------------------------------------------------------------- */

int core_vsmmu_msg(struct core_service *svc, uint32_t vsmmu_id,
		   enum core_msg_type type, struct core_msg **ret)
{
	struct core_msg *m = core_msg_new(type);
	struct core_vsmmu *vs;

	if (!m)
		return -ENOMEM;
	pthread_mutex_lock(&svc->lock);
	vs = find_vsmmu(svc, vsmmu_id);
	if (vs)
		core_vsmmu_get(vs);
	pthread_mutex_unlock(&svc->lock);
	if (!vs) {
		core_msg_put(m);
		return -ENOENT;
	}
	m->vs = vs;
	*ret = m;
	return 0;
}

int core_device_attach(struct core_service *svc, uint32_t vsmmu_id,
		       uint32_t dev_id, uint64_t vsid, uint32_t *ret_vdev_id)
{
	struct core_msg *m;
	int r;

	/* Commands carry a 32-bit SID: a larger vSID is unaddressable. */
	if (vsid > UINT32_MAX)
		return -EINVAL;
	r = core_vsmmu_msg(svc, vsmmu_id, CORE_MSG_ADD_DEVICE, &m);
	if (r < 0)
		return r;
	m->vsid = vsid;
	m->dev_id = dev_id;
	r = core_worker_call(m->vs->w, m, false);
	if (r == 0 && ret_vdev_id)
		*ret_vdev_id = m->ret_vdev_id;
	core_msg_put(m);
	return r;
}

int core_device_detach(struct core_service *svc, uint32_t vsmmu_id,
		       uint64_t vsid)
{
	struct core_msg *m;
	int r;

	r = core_vsmmu_msg(svc, vsmmu_id, CORE_MSG_DEL_DEVICE, &m);
	if (r < 0)
		return r;
	m->vsid = vsid;
	/* Posted even to a stuck worker: the device goes when it recovers. */
	r = core_worker_call(m->vs->w, m, true);
	core_msg_put(m);
	return r;
}

/* ---- rings -------------------------------------------------------------------- */

static int dup_fd(int fd, int *ret)
{
	int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);

	if (n < 0)
		return -errno;
	*ret = n;
	return 0;
}

/* Takes a place in the ring budget for @r, which then counts it until
 * it is released (core_ring_put()). Caller holds svc->lock. */
static int ring_reserve(struct core_service *svc, struct core_ring *r,
			struct core_vsmmu *vs)
{
	if (__atomic_load_n(&svc->rings_alloc, __ATOMIC_RELAXED) >=
	    svc->max_rings) {
		svc->rings_refused++;
		return -EMFILE;
	}
	__atomic_fetch_add(&svc->rings_alloc, 1, __ATOMIC_RELAXED);
	core_vsmmu_get(vs);
	r->vs = vs;
	return 0;
}

/*
 * Is the ring file behind @fd (our own dup) already a ring of the service?
 * Two consumers of one ring would each publish cons and complete the
 * other's CMD_SYNCs early: whichever fds name it, one file is one ring.
 * Rings being attached are in the registry too, so two concurrent
 * attaches of one file cannot both pass. Caller holds svc->lock.
 */
static int ring_file_check(struct core_service *svc, int fd,
			   struct core_ring *r)
{
	struct stat st;

	if (fstat(fd, &st))
		return -errno;
	for (uint32_t i = 0; i < svc->n_rings; i++)
		if (svc->rings[i]->file_dev == st.st_dev &&
		    svc->rings[i]->file_ino == st.st_ino)
			return -EEXIST;
	r->file_dev = st.st_dev;
	r->file_ino = st.st_ino;
	return 0;
}

/* Takes an attaching ring out of the registry again, if a destroy of its
 * vSMMU did not already. Caller holds svc->lock. */
static void ring_unregister_attaching_locked(struct core_service *svc,
					     struct core_ring *r)
{
	for (uint32_t i = 0; i < svc->n_rings; i++)
		if (svc->rings[i] == r) {
			reg_del((void **)svc->rings, &svc->n_rings, r);
			core_ring_put(r); /* the registry's */
			return;
		}
}

int core_ring_attach(struct core_service *svc, uint32_t vsmmu_id, int memfd,
		     int doorbell_fd, int complete_fd, uint32_t *ret_id)
{
	struct core_msg *m = NULL;
	struct core_vsmmu *vs;
	struct core_ring *r;
	bool registered = false;
	int rc;

	rc = common_fd_check_eventfd(doorbell_fd);
	if (rc < 0)
		return rc;
	if (complete_fd >= 0) {
		/* What the fd is first, then whether we can use it: the
		 * errno callers (the RPC server) pass on as it is. */
		rc = common_fd_check_eventfd(complete_fd);
		if (rc < 0)
			return rc;
		if (!svc->signal_ok)
			return -EOPNOTSUPP;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->refs = 1; /* ours */
	r->memfd = r->doorbell_fd = r->complete_fd = -1;
	rc = dup_fd(memfd, &r->memfd);
	if (rc < 0)
		goto out;

	/*
	 * Into the registry at once, marked attaching (lookups by id skip
	 * it), so the budget and the one-file-one-ring check see it; the
	 * worker call below runs unlocked.
	 */
	pthread_mutex_lock(&svc->lock);
	vs = find_vsmmu(svc, vsmmu_id);
	rc = vs ? ring_reserve(svc, r, vs) : -ENOENT;
	if (rc == 0)
		rc = ring_file_check(svc, r->memfd, r);
	if (rc == 0)
		rc = reg_add((void ***)&svc->rings, &svc->n_rings,
			     &svc->cap_rings, r);
	if (rc == 0) {
		core_ring_get(r); /* the registry's */
		r->attaching = true;
		r->id = svc->next_id++;
		registered = true;
	}
	pthread_mutex_unlock(&svc->lock);
	if (rc < 0)
		goto out;
	rc = dup_fd(doorbell_fd, &r->doorbell_fd);
	if (rc < 0)
		goto out;
	if (complete_fd >= 0) {
		rc = dup_fd(complete_fd, &r->complete_fd);
		if (rc < 0)
			goto out;
	}
	rc = ring_cons_map(r->memfd, &r->rc);
	if (rc < 0)
		goto out;
	m = core_msg_new(CORE_MSG_ADD_RING);
	if (!m) {
		rc = -ENOMEM;
		goto out;
	}
	core_ring_get(r);
	m->ring = r;
	rc = core_worker_call(vs->w, m, false);
	if (rc < 0)
		goto out;
	pthread_mutex_lock(&svc->lock);
	/* A destroy of its vSMMU started meanwhile took it out of the
	 * registry: that destroy (on the worker, after our attach) detaches
	 * the ring. */
	if (vs->registered) {
		r->attaching = false;
		*ret_id = r->id;
	} else {
		rc = -ENOENT;
	}
	registered = false;
	pthread_mutex_unlock(&svc->lock);
out:
	if (registered) {
		pthread_mutex_lock(&svc->lock);
		ring_unregister_attaching_locked(svc, r);
		pthread_mutex_unlock(&svc->lock);
	}
	core_msg_put(m);
	core_ring_put(r);
	return rc;
}

int core_ring_detach(struct core_service *svc, uint32_t ring_id)
{
	struct core_msg *m = core_msg_new(CORE_MSG_DEL_RING);
	struct core_ring *r;
	int rc;

	if (!m)
		return -ENOMEM;
	pthread_mutex_lock(&svc->lock);
	r = find_ring(svc, ring_id);
	if (r) {
		reg_del((void **)svc->rings, &svc->n_rings, r);
		m->ring = r; /* the registry's reference */
	}
	pthread_mutex_unlock(&svc->lock);
	if (!r) {
		core_msg_put(m);
		return -ENOENT;
	}
	/* Drained and unlinked by the worker, released by the last put. */
	rc = core_worker_call(r->vs->w, m, true);
	core_msg_put(m);
	return rc;
}

int core_ring_resume(struct core_service *svc, uint32_t ring_id)
{
	struct core_msg *m = core_msg_new(CORE_MSG_RESUME_RING);
	struct core_ring *r;
	int rc;

	if (!m)
		return -ENOMEM;
	pthread_mutex_lock(&svc->lock);
	r = find_ring(svc, ring_id);
	if (r) {
		core_ring_get(r);
		m->ring = r;
	}
	pthread_mutex_unlock(&svc->lock);
	rc = r ? core_worker_call(r->vs->w, m, false) : -ENOENT;
	core_msg_put(m);
	return rc;
}

/* ---- teardown ------------------------------------------------------------------ */

int core_service_free(struct core_service *svc)
{
	uint64_t deadline;
	bool abandoned = false;

	if (!svc)
		return 0;
	/* Post every destroy and every stop, then wait for all of them
	 * against one deadline: shutdown takes at most one ctl_timeout. */
	pthread_mutex_lock(&svc->lock);
	while (svc->n_vsmmus) {
		struct core_vsmmu *vs = svc->vsmmus[svc->n_vsmmus - 1];
		struct core_msg *m = vsmmu_unregister_locked(svc, vs);

		if (!m) {
			/* No memory: leave it, and the worker, running. */
			abandoned = true;
			break;
		}
		core_worker_post(vs->w, m);
		core_msg_put(m);
	}
	pthread_mutex_unlock(&svc->lock);
	deadline = core_now_ns() + (uint64_t)svc->cfg.ctl_timeout_ms * 1000000;
	for (unsigned int i = 0; i < svc->n_workers; i++)
		core_worker_post_stop(&svc->workers[i]);
	for (unsigned int i = 0; i < svc->n_workers; i++)
		if (core_worker_join(&svc->workers[i], deadline) < 0)
			abandoned = true;
	/*
	 * A worker that did not stop still runs and may touch the service
	 * and the backend: leave everything allocated (the process is about
	 * to exit; the stats said which worker was stuck).
	 */
	if (abandoned)
		return -ETIMEDOUT;
	for (unsigned int i = 0; i < svc->n_workers; i++)
		iofd_hsmmu_close(svc->workers[i].hsmmu);
	/* Histograms exist for workers that failed to open, too. */
	for (unsigned int i = 0; svc->workers && i < svc->cfg.n_hsmmu; i++) {
		free(svc->workers[i].h_sync);
		free(svc->workers[i].h_batch);
		free(svc->workers[i].h_call);
		free(svc->workers[i].diag);
	}
	free(svc->workers);
	free(svc->vsmmus);
	free(svc->rings);
	free(svc->vcmdqs);
	iofd_backend_free(svc->backend);
	pthread_mutex_destroy(&svc->bind_lock);
	pthread_mutex_destroy(&svc->lock);
	free(svc);
	return 0;
}

/* ---- statistics and listings ------------------------------------------------- */

static uint64_t thread_cpu_ns(pthread_t t)
{
	struct timespec ts;
	clockid_t cid;

	if (pthread_getcpuclockid(t, &cid) || clock_gettime(cid, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int core_service_stats(struct core_service *svc, struct core_service_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&svc->lock);
	out->n_hsmmu = svc->n_workers;
	out->n_vsmmus = svc->n_vsmmus;
	for (uint32_t i = 0; i < svc->n_rings; i++)
		out->n_rings += !svc->rings[i]->attaching;
	for (uint32_t i = 0; i < svc->n_vsmmus; i++)
		out->n_devices += READ_ONCE(svc->vsmmus[i]->n_devs);
	out->fd_limit = svc->fd_limit;
	out->max_rings = svc->max_rings;
	out->rings_refused = svc->rings_refused;
	out->rings_alloc = __atomic_load_n(&svc->rings_alloc, __ATOMIC_RELAXED);
	for (unsigned int i = 0; i < svc->n_workers; i++) {
		struct core_worker *w = &svc->workers[i];

		out->workers_stuck +=
			!!__atomic_load_n(&w->stuck, __ATOMIC_RELAXED);
		out->ctl_timeouts +=
			__atomic_load_n(&w->st_ctl_timeouts, __ATOMIC_RELAXED);
	}
	out->signal = svc->signal_ok ? "aio" : "none";
	out->ctl_timeout_ms = svc->cfg.ctl_timeout_ms;
	out->loop = core_service_loop_name(svc);
	out->backend = iofd_backend_kind(svc->backend);
	pthread_mutex_unlock(&svc->lock);
	return 0;
}

int core_hsmmu_stats(struct core_service *svc, unsigned int idx,
		     struct core_hsmmu_stats *out)
{
	struct core_worker *w;

	if (idx >= svc->n_workers)
		return -ENOENT;
	w = &svc->workers[idx];
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&svc->lock);
	snprintf(out->name, sizeof(out->name), "%s", w->name);
	out->loop = core_loop_name(&w->loop);
	out->issue_mode = svc->cfg.issue_mode == CORE_ISSUE_AUTO ?
				  (READ_ONCE(w->async_now) ? "auto:async" :
							     "auto:inline") :
			  svc->cfg.issue_mode == CORE_ISSUE_INLINE ? "inline" :
								     "async";
	for (uint32_t i = 0; i < svc->n_vsmmus; i++)
		out->n_vsmmus += svc->vsmmus[i]->w == w;
	for (uint32_t i = 0; i < svc->n_rings; i++)
		out->n_rings += svc->rings[i]->vs->w == w &&
				!svc->rings[i]->attaching;
	out->passes = READ_ONCE(w->st_passes);
	out->sleeps = READ_ONCE(w->st_sleeps);
	out->ioctls = READ_ONCE(w->st_ioctls);
	out->cmds_issued = READ_ONCE(w->st_cmds);
	out->host_syncs = READ_ONCE(w->st_host_syncs);
	out->inflight = READ_ONCE(w->inflight);
	for (int i = 0; i < CORE_HALT_SLOTS; i++)
		out->halts[i] = READ_ONCE(w->st_halts[i]);
	out->backend_errors = READ_ONCE(w->st_backend_errors);
	out->stuck = __atomic_load_n(&w->stuck, __ATOMIC_RELAXED);
	out->ctl_timeouts =
		__atomic_load_n(&w->st_ctl_timeouts, __ATOMIC_RELAXED);
	out->vcmdq_idle_checks = READ_ONCE(w->st_vq_idle_checks);
	out->worker_cpu_ns = thread_cpu_ns(w->thread);
	for (unsigned int i = 0; i < w->n_issuers; i++)
		out->issuer_cpu_ns += thread_cpu_ns(w->issuers[i].thread);
	{
		struct iofd_counters c;

		iofd_hsmmu_counters(w->hsmmu, &c);
		out->backend = (struct core_backend_counters){
			.ioctls = c.ioctls,
			.cmds = c.cmds,
			.host_syncs = c.host_syncs,
			.errors = c.errors,
			.charged_ns = c.charged_ns,
		};
	}
	pthread_mutex_unlock(&svc->lock);
	return 0;
}

int core_hsmmu_hist(struct core_service *svc, unsigned int idx,
		    enum core_hist_kind kind, struct core_hist *out)
{
	struct core_worker *w;

	if (idx >= svc->n_workers)
		return -ENOENT;
	w = &svc->workers[idx];
	switch (kind) {
	case CORE_HIST_SYNC_NS:
		core_hist_snapshot(out, w->h_sync);
		return 0;
	case CORE_HIST_BATCH_CMDS:
		core_hist_snapshot(out, w->h_batch);
		return 0;
	case CORE_HIST_CALL_NS:
		core_hist_snapshot(out, w->h_call);
		return 0;
	case CORE_HIST_DIAG_TAKE_NS:
	case CORE_HIST_DIAG_DONE_NS:
	case CORE_HIST_DIAG_PASS_NS:
		if (!w->diag)
			return -ENOENT;
		if (kind == CORE_HIST_DIAG_TAKE_NS)
			core_hist_snapshot(out, &w->diag->take);
		else if (kind == CORE_HIST_DIAG_DONE_NS)
			core_hist_snapshot(out, &w->diag->done);
		else
			core_hist_snapshot(out, &w->diag->pass);
		return 0;
	}
	return -EINVAL;
}

int core_vsmmu_stats(struct core_service *svc, uint32_t id,
		     struct core_vsmmu_stats *out)
{
	struct core_vsmmu *vs;
	int r = 0;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&svc->lock);
	vs = find_vsmmu(svc, id);
	if (!vs) {
		r = -ENOENT;
		goto out;
	}
	out->id = vs->id;
	snprintf(out->hsmmu, sizeof(out->hsmmu), "%s", vs->w->name);
	for (uint32_t i = 0; i < svc->n_rings; i++)
		out->n_rings += svc->rings[i]->vs == vs &&
				!svc->rings[i]->attaching;
	out->n_devices = READ_ONCE(vs->n_devs);
	out->entries = READ_ONCE(vs->st_entries);
	out->cmds_issued = READ_ONCE(vs->st_issued);
	out->syncs = READ_ONCE(vs->st_syncs);
	out->ioctls = READ_ONCE(vs->st_ioctls);
	out->host_syncs = READ_ONCE(vs->st_host_syncs);
	out->backend_errors = READ_ONCE(vs->st_backend_errors);
	out->throttled = READ_ONCE(vs->st_throttled);
	for (int i = 0; i < CORE_HALT_SLOTS; i++)
		out->halts[i] = READ_ONCE(vs->st_halts[i]);
	out->cmds_forwarded = READ_ONCE(vs->st_fwd);
	for (int i = 0; i < CORE_CLASSES; i++)
		out->cmds_by_class[i] = READ_ONCE(vs->st_class[i]);
	out->coalesced = out->cmds_forwarded > out->cmds_issued ?
				 out->cmds_forwarded - out->cmds_issued :
				 0;
out:
	pthread_mutex_unlock(&svc->lock);
	return r;
}

int core_ring_stats(struct core_service *svc, uint32_t id,
		    struct core_ring_stats *out)
{
	struct ring_cons_view view;
	struct core_ring *r;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&svc->lock);
	r = find_ring(svc, id);
	if (!r) {
		rc = -ENOENT;
		goto out;
	}
	out->id = r->id;
	out->vsmmu_id = r->vs->id;
	/* The worker's own copies: the header in shared memory is the
	 * VMM's to scribble on, and must not decide what stats say. */
	ring_cons_view_read(&r->rc, &view);
	out->prod = view.prod;
	out->cons = view.cons;
	out->halted = view.halted;
	out->err = view.err;
	out->err_index = view.err_index;
	out->entries = READ_ONCE(r->st_entries);
	out->syncs = READ_ONCE(r->st_syncs);
	out->signals = READ_ONCE(r->st_signals);
	out->wakeups = READ_ONCE(r->st_wakeups);
out:
	pthread_mutex_unlock(&svc->lock);
	return rc;
}

int core_list_vsmmus(struct core_service *svc, uint32_t *ids, uint32_t max,
		     uint32_t *ret_n)
{
	pthread_mutex_lock(&svc->lock);
	for (uint32_t i = 0; i < svc->n_vsmmus && i < max; i++)
		ids[i] = svc->vsmmus[i]->id;
	*ret_n = svc->n_vsmmus;
	pthread_mutex_unlock(&svc->lock);
	return 0;
}

int core_list_rings(struct core_service *svc, uint32_t vsmmu_id, uint32_t *ids,
		    uint32_t max, uint32_t *ret_n)
{
	uint32_t n = 0;

	pthread_mutex_lock(&svc->lock);
	for (uint32_t i = 0; i < svc->n_rings; i++) {
		struct core_ring *r = svc->rings[i];

		if (r->attaching || (vsmmu_id && r->vs->id != vsmmu_id))
			continue;
		if (n < max)
			ids[n] = r->id;
		n++;
	}
	*ret_n = n;
	pthread_mutex_unlock(&svc->lock);
	return 0;
}

int core_list_devices(struct core_service *svc, uint32_t vsmmu_id,
		      struct core_device_info *out, uint32_t max,
		      uint32_t *ret_n)
{
	struct core_vsmmu *vs;
	int r = 0;

	pthread_mutex_lock(&svc->lock);
	vs = find_vsmmu(svc, vsmmu_id);
	if (!vs) {
		r = -ENOENT;
		goto out;
	}
	/*
	 * The device table is the worker's; it changes it under devs_lock
	 * (briefly, never across a wait), so the copy is consistent.
	 */
	pthread_mutex_lock(&vs->devs_lock);
	for (uint32_t i = 0; i < vs->n_devs && i < max; i++) {
		out[i].vsid = vs->devs[i].vsid;
		out[i].dev_id = vs->devs[i].dev_id;
		out[i].vdev_id = vs->devs[i].vdev_id;
	}
	*ret_n = vs->n_devs;
	pthread_mutex_unlock(&vs->devs_lock);
out:
	pthread_mutex_unlock(&svc->lock);
	return r;
}
