/* SPDX-License-Identifier: MIT */
/*
 * The control side of the service: configuration, the object registry,
 * and the calls that hand objects to their worker. Everything here runs
 * on control threads under svc->lock; the workers never take that lock.
 */
#include "core/core_i.h"

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

#include "ring/barrier.h"

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
	svc->next_id = 1;

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

	r = iofd_backend_new(&svc->cfg.backend, &svc->backend);
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
		w->h_sync = malloc(sizeof(*w->h_sync));
		w->h_batch = malloc(sizeof(*w->h_batch));
		if (!w->h_sync || !w->h_batch) {
			r = -ENOMEM;
			goto err;
		}
		core_hist_init(w->h_sync);
		core_hist_init(w->h_batch);
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
		if (svc->rings[i]->id == id)
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

int core_vsmmu_create(struct core_service *svc, const char *hsmmu,
		      const struct iofd_viommu_spec *spec, uint32_t *ret_id)
{
	struct core_msg m = { .type = CORE_MSG_ADD_VSMMU };
	struct core_worker *w;
	struct core_vsmmu *vs;
	int r;

	if (!hsmmu || !spec)
		return -EINVAL;
	pthread_mutex_lock(&svc->lock);
	w = find_worker(svc, hsmmu);
	if (!w) {
		r = -ENOENT;
		goto out;
	}
	vs = calloc(1, sizeof(*vs));
	if (!vs) {
		r = -ENOMEM;
		goto out;
	}
	vs->w = w;
	r = iofd_viommu_bind(w->hsmmu, spec, &vs->viommu);
	if (r < 0)
		goto err_free;
	/*
	 * The kernel backend learns the host caps at the first bind; the
	 * worker validates against this copy, handed over with the message,
	 * so it never reads caps the control thread may be writing.
	 */
	vs->caps = *iofd_hsmmu_caps(w->hsmmu);
	r = reg_add((void ***)&svc->vsmmus, &svc->n_vsmmus, &svc->cap_vsmmus,
		    vs);
	if (r < 0)
		goto err_unbind;
	vs->id = svc->next_id++;
	m.vs = vs;
	r = core_worker_call(w, &m);
	if (r < 0) {
		reg_del((void **)svc->vsmmus, &svc->n_vsmmus, vs);
		goto err_unbind;
	}
	*ret_id = vs->id;
	goto out;

err_unbind:
	iofd_viommu_unbind(vs->viommu);
err_free:
	free(vs);
out:
	pthread_mutex_unlock(&svc->lock);
	return r;
}

static void ring_free(struct core_ring *r)
{
	ring_cons_unmap(&r->rc);
	close(r->memfd);
	close(r->doorbell_fd);
	if (r->complete_fd >= 0)
		close(r->complete_fd);
	free(r);
}

static void vsmmu_destroy_locked(struct core_service *svc,
				 struct core_vsmmu *vs)
{
	struct core_msg m = { .type = CORE_MSG_DEL_VSMMU, .vs = vs };

	/* The worker drains the rings and destroys the vDEVICEs. */
	core_worker_call(vs->w, &m);
	for (uint32_t i = svc->n_rings; i-- > 0;) {
		struct core_ring *r = svc->rings[i];

		if (r->vs == vs) {
			reg_del((void **)svc->rings, &svc->n_rings, r);
			ring_free(r);
		}
	}
	reg_del((void **)svc->vsmmus, &svc->n_vsmmus, vs);
	iofd_viommu_unbind(vs->viommu);
	free(vs);
}

int core_vsmmu_destroy(struct core_service *svc, uint32_t vsmmu_id)
{
	struct core_vsmmu *vs;
	int r = 0;

	pthread_mutex_lock(&svc->lock);
	vs = find_vsmmu(svc, vsmmu_id);
	if (vs)
		vsmmu_destroy_locked(svc, vs);
	else
		r = -ENOENT;
	pthread_mutex_unlock(&svc->lock);
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

int core_device_attach(struct core_service *svc, uint32_t vsmmu_id,
		       uint32_t dev_id, uint64_t vsid, uint32_t *ret_vdev_id)
{
	struct core_msg m = { .type = CORE_MSG_ADD_DEVICE };
	struct core_vsmmu *vs;
	int r;

	/* Commands carry a 32-bit SID: a larger vSID is unaddressable. */
	if (vsid > UINT32_MAX)
		return -EINVAL;
	pthread_mutex_lock(&svc->lock);
	vs = find_vsmmu(svc, vsmmu_id);
	if (!vs) {
		r = -ENOENT;
		goto out;
	}
	m.vs = vs;
	m.vsid = vsid;
	m.dev_id = dev_id;
	r = core_worker_call(vs->w, &m);
	if (r == 0 && ret_vdev_id)
		*ret_vdev_id = m.ret_vdev_id;
out:
	pthread_mutex_unlock(&svc->lock);
	return r;
}

int core_device_detach(struct core_service *svc, uint32_t vsmmu_id,
		       uint64_t vsid)
{
	struct core_msg m = { .type = CORE_MSG_DEL_DEVICE };
	struct core_vsmmu *vs;
	int r;

	pthread_mutex_lock(&svc->lock);
	vs = find_vsmmu(svc, vsmmu_id);
	if (!vs) {
		r = -ENOENT;
		goto out;
	}
	m.vs = vs;
	m.vsid = vsid;
	r = core_worker_call(vs->w, &m);
out:
	pthread_mutex_unlock(&svc->lock);
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

/*
 * Is the ring file behind @fd (our own dup) already a ring of the service?
 * Two consumers of one ring would each publish cons and complete the
 * other's CMD_SYNCs early: whichever fds name it, one file is one ring.
 * Caller holds svc->lock.
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

int core_ring_attach(struct core_service *svc, uint32_t vsmmu_id, int memfd,
		     int doorbell_fd, int complete_fd, uint32_t *ret_id)
{
	struct core_msg m = { .type = CORE_MSG_ADD_RING };
	struct core_vsmmu *vs;
	struct core_ring *r;
	int rc;

	rc = core_check_eventfd(doorbell_fd);
	if (rc < 0)
		return rc;
	if (complete_fd >= 0) {
		rc = core_check_eventfd(complete_fd);
		if (rc < 0)
			return rc;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->memfd = r->doorbell_fd = r->complete_fd = -1;

	pthread_mutex_lock(&svc->lock);
	vs = find_vsmmu(svc, vsmmu_id);
	if (!vs) {
		rc = -ENOENT;
		goto err;
	}
	if (svc->n_rings >= svc->max_rings) {
		svc->rings_refused++;
		rc = -EMFILE;
		goto err;
	}
	rc = dup_fd(memfd, &r->memfd);
	if (rc < 0)
		goto err;
	rc = ring_file_check(svc, r->memfd, r);
	if (rc < 0)
		goto err;
	rc = dup_fd(doorbell_fd, &r->doorbell_fd);
	if (rc < 0)
		goto err;
	if (complete_fd >= 0) {
		rc = dup_fd(complete_fd, &r->complete_fd);
		if (rc < 0)
			goto err;
	}
	rc = ring_cons_map(r->memfd, &r->rc);
	if (rc < 0)
		goto err;
	rc = reg_add((void ***)&svc->rings, &svc->n_rings, &svc->cap_rings, r);
	if (rc < 0)
		goto err;
	r->id = svc->next_id++;
	r->vs = vs;
	m.ring = r;
	rc = core_worker_call(vs->w, &m);
	if (rc < 0) {
		reg_del((void **)svc->rings, &svc->n_rings, r);
		goto err;
	}
	*ret_id = r->id;
	pthread_mutex_unlock(&svc->lock);
	return 0;

err:
	pthread_mutex_unlock(&svc->lock);
	ring_cons_unmap(&r->rc);
	if (r->memfd >= 0)
		close(r->memfd);
	if (r->doorbell_fd >= 0)
		close(r->doorbell_fd);
	if (r->complete_fd >= 0)
		close(r->complete_fd);
	free(r);
	return rc;
}

int core_ring_detach(struct core_service *svc, uint32_t ring_id)
{
	struct core_msg m = { .type = CORE_MSG_DEL_RING };
	struct core_ring *r;
	int rc;

	pthread_mutex_lock(&svc->lock);
	r = find_ring(svc, ring_id);
	if (!r) {
		rc = -ENOENT;
		goto out;
	}
	m.ring = r;
	rc = core_worker_call(r->vs->w, &m);
	if (rc == 0) {
		reg_del((void **)svc->rings, &svc->n_rings, r);
		ring_free(r);
	}
out:
	pthread_mutex_unlock(&svc->lock);
	return rc;
}

int core_ring_resume(struct core_service *svc, uint32_t ring_id)
{
	struct core_msg m = { .type = CORE_MSG_RESUME_RING };
	struct core_ring *r;
	int rc;

	pthread_mutex_lock(&svc->lock);
	r = find_ring(svc, ring_id);
	if (r) {
		m.ring = r;
		rc = core_worker_call(r->vs->w, &m);
	} else {
		rc = -ENOENT;
	}
	pthread_mutex_unlock(&svc->lock);
	return rc;
}

/* ---- teardown ------------------------------------------------------------------ */

void core_service_free(struct core_service *svc)
{
	if (!svc)
		return;
	pthread_mutex_lock(&svc->lock);
	while (svc->n_vsmmus)
		vsmmu_destroy_locked(svc, svc->vsmmus[svc->n_vsmmus - 1]);
	pthread_mutex_unlock(&svc->lock);
	for (unsigned int i = 0; i < svc->n_workers; i++) {
		core_worker_stop(&svc->workers[i]);
		iofd_hsmmu_close(svc->workers[i].hsmmu);
	}
	/* Histograms exist for workers that failed to open, too. */
	for (unsigned int i = 0; svc->workers && i < svc->cfg.n_hsmmu; i++) {
		free(svc->workers[i].h_sync);
		free(svc->workers[i].h_batch);
	}
	free(svc->workers);
	free(svc->vsmmus);
	free(svc->rings);
	iofd_backend_free(svc->backend);
	pthread_mutex_destroy(&svc->lock);
	free(svc);
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
	out->n_rings = svc->n_rings;
	for (uint32_t i = 0; i < svc->n_vsmmus; i++)
		out->n_devices += READ_ONCE(svc->vsmmus[i]->n_devs);
	out->fd_limit = svc->fd_limit;
	out->max_rings = svc->max_rings;
	out->rings_refused = svc->rings_refused;
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
	out->issue_mode = svc->cfg.issue_mode == CORE_ISSUE_INLINE ? "inline" :
								     "async";
	for (uint32_t i = 0; i < svc->n_vsmmus; i++)
		out->n_vsmmus += svc->vsmmus[i]->w == w;
	for (uint32_t i = 0; i < svc->n_rings; i++)
		out->n_rings += svc->rings[i]->vs->w == w;
	out->passes = READ_ONCE(w->st_passes);
	out->sleeps = READ_ONCE(w->st_sleeps);
	out->ioctls = READ_ONCE(w->st_ioctls);
	out->cmds_issued = READ_ONCE(w->st_cmds);
	out->host_syncs = READ_ONCE(w->st_host_syncs);
	out->inflight = READ_ONCE(w->inflight);
	for (int i = 0; i < 4; i++)
		out->halts[i] = READ_ONCE(w->st_halts[i]);
	out->backend_errors = READ_ONCE(w->st_backend_errors);
	out->worker_cpu_ns = thread_cpu_ns(w->thread);
	for (unsigned int i = 0; i < w->n_issuers; i++)
		out->issuer_cpu_ns += thread_cpu_ns(w->issuers[i].thread);
	iofd_hsmmu_counters(w->hsmmu, &out->backend);
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
		out->n_rings += svc->rings[i]->vs == vs;
	out->n_devices = READ_ONCE(vs->n_devs);
	out->entries = READ_ONCE(vs->st_entries);
	out->cmds_issued = READ_ONCE(vs->st_issued);
	out->syncs = READ_ONCE(vs->st_syncs);
	out->ioctls = READ_ONCE(vs->st_ioctls);
	out->host_syncs = READ_ONCE(vs->st_host_syncs);
	out->backend_errors = READ_ONCE(vs->st_backend_errors);
	out->throttled = READ_ONCE(vs->st_throttled);
	for (int i = 0; i < 4; i++)
		out->halts[i] = READ_ONCE(vs->st_halts[i]);
	out->cmds_forwarded = READ_ONCE(vs->st_fwd);
	for (int i = 0; i < 3; i++)
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
	/* Shared memory: published values, as the VMM sees them. */
	out->prod = READ_ONCE(r->rc.hdr->prod);
	out->cons = READ_ONCE(r->rc.hdr->cons);
	out->halted = READ_ONCE(r->rc.hdr->svc_flags) & SMMU_RING_HALTED;
	out->err = READ_ONCE(r->rc.hdr->err);
	out->err_index = READ_ONCE(r->rc.hdr->err_index);
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

		if (vsmmu_id && r->vs->id != vsmmu_id)
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
	 * The device table is the worker's; it changes only through control
	 * calls, which hold svc->lock like we do, so it is stable here.
	 */
	for (uint32_t i = 0; i < vs->n_devs && i < max; i++) {
		out[i].vsid = vs->devs[i].vsid;
		out[i].dev_id = vs->devs[i].dev_id;
		out[i].vdev_id = vs->devs[i].vdev_id;
	}
	*ret_n = vs->n_devs;
out:
	pthread_mutex_unlock(&svc->lock);
	return r;
}
