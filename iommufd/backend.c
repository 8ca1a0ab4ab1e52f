/* SPDX-License-Identifier: MIT */
/* Backend selection, object lifetime and counters common to all backends. */
#define SMMU_OFFLOAD_IOFD_INTERNAL
#include "iommufd/iofd_i.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const struct iofd_ops *const iofd_all_ops[] = {
	&iofd_kernel_ops,
	&iofd_sim_ops,
	&iofd_null_ops,
};

void iofd_counters_add(struct iofd_counters *dst,
		       const struct iofd_counters *src)
{
	dst->ioctls += src->ioctls;
	dst->cmds += src->cmds;
	dst->host_syncs += src->host_syncs;
	dst->errors += src->errors;
	dst->charged_ns += src->charged_ns;
}

int iofd_backend_new(const struct iofd_config *cfg, struct iofd_backend **ret)
{
	const struct iofd_ops *ops = NULL;
	struct iofd_backend *b;
	const char *root;
	size_t i;
	int r;

	if (!cfg || !cfg->kind || !ret)
		return -EINVAL;
	for (i = 0; i < sizeof(iofd_all_ops) / sizeof(iofd_all_ops[0]); i++)
		if (!strcmp(cfg->kind, iofd_all_ops[i]->kind))
			ops = iofd_all_ops[i];
	if (!ops)
		return -EINVAL;
	root = cfg->sysfs_root ? cfg->sysfs_root : "/sys/class/iommu";
	if (strlen(root) >= sizeof(b->sysfs_root))
		return -EINVAL;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->ops = ops;
	strcpy(b->sysfs_root, root);
	if (cfg->sim)
		b->sim = *cfg->sim;
	else
		iofd_sim_config_default(&b->sim);
	r = pthread_mutex_init(&b->lock, NULL);
	if (r)
		goto err_free;
	if (ops->backend_init) {
		r = ops->backend_init(b);
		if (r < 0)
			goto err_mutex;
	}
	*ret = b;
	return 0;

err_mutex:
	pthread_mutex_destroy(&b->lock);
err_free:
	free(b);
	return r > 0 ? -r : r;
}

void iofd_backend_free(struct iofd_backend *b)
{
	if (!b)
		return;
	if (b->ops->backend_fini)
		b->ops->backend_fini(b);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

const char *iofd_backend_kind(const struct iofd_backend *b)
{
	return b->ops->kind;
}

int iofd_hsmmu_open(struct iofd_backend *b, const char *name,
		    struct iofd_hsmmu **ret)
{
	struct iofd_hsmmu *h, *it;
	int r;

	if (!name || !*name || strlen(name) >= IOFD_NAME_MAX || !ret)
		return -EINVAL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->b = b;
	strcpy(h->name, name);
	h->caps = b->sim.caps;
	r = -pthread_mutex_init(&h->lock, NULL);
	if (r)
		goto err_free;

	pthread_mutex_lock(&b->lock);
	for (it = b->hsmmus; it; it = it->next) {
		if (!strcmp(it->name, name)) {
			r = -EEXIST;
			goto err_unlock;
		}
	}
	if (b->ops->hsmmu_open) {
		r = b->ops->hsmmu_open(h);
		if (r < 0)
			goto err_unlock;
	}
	h->next = b->hsmmus;
	b->hsmmus = h;
	pthread_mutex_unlock(&b->lock);
	*ret = h;
	return 0;

err_unlock:
	pthread_mutex_unlock(&b->lock);
	pthread_mutex_destroy(&h->lock);
err_free:
	free(h);
	return r;
}

void iofd_hsmmu_close(struct iofd_hsmmu *h)
{
	struct iofd_backend *b;
	struct iofd_hsmmu **pp;

	if (!h)
		return;
	b = h->b;
	pthread_mutex_lock(&b->lock);
	for (pp = &b->hsmmus; *pp; pp = &(*pp)->next) {
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	}
	pthread_mutex_unlock(&b->lock);
	if (b->ops->hsmmu_close)
		b->ops->hsmmu_close(h);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

const char *iofd_hsmmu_name(const struct iofd_hsmmu *h)
{
	return h->name;
}

const struct cmdq_caps *iofd_hsmmu_caps(const struct iofd_hsmmu *h)
{
	return &h->caps;
}

void iofd_hsmmu_counters(const struct iofd_hsmmu *h, struct iofd_counters *out)
{
	/* The lock is only taken to read a consistent snapshot. */
	pthread_mutex_lock((pthread_mutex_t *)&h->lock);
	*out = h->ctr;
	pthread_mutex_unlock((pthread_mutex_t *)&h->lock);
}

int iofd_viommu_bind(struct iofd_hsmmu *h, const struct iofd_viommu_spec *spec,
		     struct iofd_viommu **ret)
{
	struct iofd_viommu *v;
	int r;

	if (!ret)
		return -EINVAL;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->h = h;
	r = -pthread_mutex_init(&v->lock, NULL);
	if (r)
		goto err_free;
	if (h->b->ops->viommu_bind) {
		r = h->b->ops->viommu_bind(v, spec);
		if (r < 0)
			goto err_mutex;
	}
	h->nviommus++;
	*ret = v;
	return 0;

err_mutex:
	pthread_mutex_destroy(&v->lock);
err_free:
	free(v);
	return r;
}

void iofd_viommu_unbind(struct iofd_viommu *v)
{
	if (!v)
		return;
	if (v->h->b->ops->viommu_unbind)
		v->h->b->ops->viommu_unbind(v);
	v->h->nviommus--;
	pthread_mutex_destroy(&v->lock);
	free(v);
}

void iofd_viommu_counters(const struct iofd_viommu *v,
			  struct iofd_counters *out)
{
	pthread_mutex_lock((pthread_mutex_t *)&v->lock);
	*out = v->ctr;
	pthread_mutex_unlock((pthread_mutex_t *)&v->lock);
}

void iofd_viommu_last_error(const struct iofd_viommu *v, struct iofd_error *out)
{
	pthread_mutex_lock((pthread_mutex_t *)&v->lock);
	*out = v->last_err;
	pthread_mutex_unlock((pthread_mutex_t *)&v->lock);
}

int iofd_vdev_alloc(struct iofd_viommu *v, uint32_t dev_id, uint64_t vsid,
		    uint32_t *ret_vdev_id)
{
	if (!ret_vdev_id)
		return -EINVAL;
	if (!v->h->b->ops->vdev_alloc)
		return -EOPNOTSUPP;
	return v->h->b->ops->vdev_alloc(v, dev_id, vsid, ret_vdev_id);
}

int iofd_vdev_destroy(struct iofd_viommu *v, uint32_t vdev_id)
{
	if (!v->h->b->ops->vdev_destroy)
		return -EOPNOTSUPP;
	return v->h->b->ops->vdev_destroy(v, vdev_id);
}

int iofd_invalidate_call(struct iofd_viommu *v, const struct cmdq_cmd *cmds,
			 uint32_t n, struct iofd_inv_result *ret)
{
	struct iofd_counters delta = { 0 };
	struct iofd_error err = { 0 };
	uint32_t done;
	int r;

	ret->done = 0;
	ret->bad = IOFD_INV_BAD_UNKNOWN;
	if (!cmds || !n)
		return -EINVAL;
	r = v->h->b->ops->invalidate(v, cmds, n, ret, &delta, &err);
	if (r < 0) {
		delta.errors++;
		if (ret->done > n)
			ret->done = n;
		if (r != -EIO || ret->bad < ret->done || ret->bad >= n)
			ret->bad = IOFD_INV_BAD_UNKNOWN;
	} else {
		ret->done = n;
		ret->bad = IOFD_INV_BAD_UNKNOWN;
	}
	done = ret->done;

	pthread_mutex_lock(&v->lock);
	iofd_counters_add(&v->ctr, &delta);
	if (r < 0) {
		err.err = r;
		if (!err.op) {
			err.op = v->h->b->ops->kind;
			err.entry_num = done;
		}
		err.ioctls = (uint32_t)delta.ioctls;
		v->last_err = err;
	}
	pthread_mutex_unlock(&v->lock);
	/*
	 * The hsmmu's charged_ns is hardware queue time, which only the sim
	 * knows and adds itself (it differs from the caller's charged time,
	 * which includes queueing behind other callers).
	 */
	delta.charged_ns = 0;
	pthread_mutex_lock(&v->h->lock);
	iofd_counters_add(&v->h->ctr, &delta);
	pthread_mutex_unlock(&v->h->lock);
	return r;
}

int iofd_invalidate(struct iofd_viommu *v, const struct cmdq_cmd *cmds,
		    uint32_t n, uint32_t *ret_done)
{
	struct iofd_inv_result res;
	int r = iofd_invalidate_call(v, cmds, n, &res);

	*ret_done = res.done;
	return r;
}
