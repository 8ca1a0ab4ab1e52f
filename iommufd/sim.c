/* SPDX-License-Identifier: MIT */
/*
 * The sim backend: an emulated host SMMU. See sim.h for the interface and
 * docs/COST-MODEL.md for the cost model, its defaults and the oracle.
 *
 * Validation follows the newer kernel (facts doc 4.3) through its own
 * table (accept.h), not cmdq_validate(): the sim is a check on the service,
 * so it must not share the service's code. It reports exactly:
 * the commands of a chunk before a rejected one are issued (as core's
 * localisation makes them on a real kernel) and ret->done = ret->bad is
 * the index of the rejected command.
 */
#define SMMU_OFFLOAD_IOFD_INTERNAL
#include "iommufd/iofd_i.h"
#include "iommufd/accept.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Default host capabilities: a server-class SMMUv3 (COST-MODEL.md). */
static const struct cmdq_caps sim_default_caps = {
	.asid_bits = 16,
	.ssid_bits = 20,
	.sid_bits = 32,
	.range_inv = true,
	.ats = true,
	.ds = false,
	.gran4k = true,
	.gran16k = false,
	.gran64k = true,
};

void iofd_sim_config_default(struct iofd_sim_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->caps = sim_default_caps;
	cfg->ioctl_ns = 300;
	cfg->cmd_ns = 50;
	cfg->sync_ns = 1500;
	cfg->wait = IOFD_SIM_WAIT_SPIN;
}

/* Per host SMMU: the one hardware command queue all callers share. */
struct sim_hsmmu {
	pthread_mutex_t qlock;
	uint64_t busy_until; /* qlock: CLOCK_MONOTONIC ns */
	uint64_t ncmds; /* qlock: commands consumed, for fault injection */
	uint16_t next_vmid; /* control thread */
};

struct sim_vdev {
	uint32_t id;
	uint32_t dev_id; /* = pSID */
	uint32_t vsid;
};

/* @global: an nG = 0 translation: hit by every ASID, @asid unused. */
struct sim_tlb {
	uint16_t asid;
	bool global;
	uint64_t page;
};

struct sim_cd {
	uint32_t vsid, ssid;
};

struct sim_atc {
	uint32_t vsid, ssid;
	uint64_t page;
};

/* Per viommu; @lock protects everything but @vmid (fixed at bind). */
struct sim_viommu {
	pthread_mutex_t lock;
	uint16_t vmid;
	struct sim_vdev *vdevs;
	size_t nvdevs, capvdevs;
	uint32_t next_vdev_id;
	struct sim_tlb *tlb;
	size_t ntlb, captlb;
	struct sim_cd *cd;
	size_t ncd, capcd;
	struct sim_atc *atc;
	size_t natc, capatc;
	struct cmdq_cmd log[IOFD_SIM_LOG];
	uint64_t nlog;
};

static uint64_t sim_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Spend the caller's time until @t the way the configuration says. */
static void sim_wait_until(enum iofd_sim_wait mode, uint64_t t)
{
	struct timespec ts;

	switch (mode) {
	case IOFD_SIM_WAIT_SPIN:
		while (sim_now() < t)
			;
		break;
	case IOFD_SIM_WAIT_BLOCK:
		ts.tv_sec = (time_t)(t / 1000000000u);
		ts.tv_nsec = (long)(t % 1000000000u);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts,
				       NULL) == EINTR)
			;
		break;
	case IOFD_SIM_WAIT_NONE:
		break;
	}
}

/* Grow *@arr (element size @sz) to hold one more than *@n. */
static int sim_grow(void **arr, size_t *cap, size_t n, size_t sz)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	p = realloc(*arr, ncap * sz);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

static int sim_hsmmu_open(struct iofd_hsmmu *h)
{
	struct sim_hsmmu *sh = calloc(1, sizeof(*sh));

	if (!sh)
		return -ENOMEM;
	if (pthread_mutex_init(&sh->qlock, NULL)) {
		free(sh);
		return -ENOMEM;
	}
	sh->next_vmid = 1;
	h->priv = sh;
	return 0;
}

static void sim_hsmmu_close(struct iofd_hsmmu *h)
{
	struct sim_hsmmu *sh = h->priv;

	pthread_mutex_destroy(&sh->qlock);
	free(sh);
}

static int sim_viommu_bind(struct iofd_viommu *v,
			   const struct iofd_viommu_spec *spec)
{
	struct sim_hsmmu *sh = v->h->priv;
	struct sim_viommu *sv = calloc(1, sizeof(*sv));

	if (!sv)
		return -ENOMEM;
	if (pthread_mutex_init(&sv->lock, NULL)) {
		free(sv);
		return -ENOMEM;
	}
	sv->vmid = sh->next_vmid++;
	sv->next_vdev_id = 1;
	v->priv = sv;
	return 0;
}

static void sim_viommu_unbind(struct iofd_viommu *v)
{
	struct sim_viommu *sv = v->priv;

	pthread_mutex_destroy(&sv->lock);
	free(sv->vdevs);
	free(sv->tlb);
	free(sv->cd);
	free(sv->atc);
	free(sv);
}

static int sim_vdev_alloc(struct iofd_viommu *v, uint32_t dev_id, uint64_t vsid,
			  uint32_t *ret_vdev_id)
{
	struct sim_viommu *sv = v->priv;
	struct sim_vdev *d;
	size_t i;
	int r;

	/* Commands carry a 32-bit SID: larger vSIDs are not addressable. */
	if (vsid > UINT32_MAX)
		return -EINVAL;
	pthread_mutex_lock(&sv->lock);
	for (i = 0; i < sv->nvdevs; i++) {
		if (sv->vdevs[i].dev_id == dev_id ||
		    sv->vdevs[i].vsid == vsid) {
			r = -EEXIST;
			goto out;
		}
	}
	r = sim_grow((void **)&sv->vdevs, &sv->capvdevs, sv->nvdevs,
		     sizeof(*sv->vdevs));
	if (r)
		goto out;
	d = &sv->vdevs[sv->nvdevs++];
	d->id = sv->next_vdev_id++;
	d->dev_id = dev_id;
	d->vsid = (uint32_t)vsid;
	*ret_vdev_id = d->id;
out:
	pthread_mutex_unlock(&sv->lock);
	return r;
}

static int sim_vdev_destroy(struct iofd_viommu *v, uint32_t vdev_id)
{
	struct sim_viommu *sv = v->priv;
	int r = -ENOENT;
	size_t i;

	pthread_mutex_lock(&sv->lock);
	for (i = 0; i < sv->nvdevs; i++) {
		if (sv->vdevs[i].id == vdev_id) {
			sv->vdevs[i] = sv->vdevs[--sv->nvdevs];
			r = 0;
			break;
		}
	}
	pthread_mutex_unlock(&sv->lock);
	return r;
}

/* sv->lock held. */
static bool sim_psid(struct sim_viommu *sv, uint32_t vsid, uint32_t *ret)
{
	size_t i;

	for (i = 0; i < sv->nvdevs; i++) {
		if (sv->vdevs[i].vsid == vsid) {
			*ret = sv->vdevs[i].dev_id;
			return true;
		}
	}
	return false;
}

/*
 * Convert one guest command as the kernel does (facts doc 4.1): VMID into
 * TLBIs, NSNH_ALL -> NH_ALL, vSID -> pSID. sv->lock held.
 * Return: 0, or -EIO (not accepted, or unknown vSID).
 */
static int sim_convert(const struct cmdq_caps *caps, struct sim_viommu *sv,
		       const struct cmdq_cmd *in, struct cmdq_cmd *out)
{
	const uint64_t vmid_mask = 0xffffull << 32;
	const uint64_t sid_mask = 0xffffffffull << 32;
	uint32_t psid;

	const struct iofd_accept_caps ac = {
		.asid_bits = caps->asid_bits,
		.ssid_bits = caps->ssid_bits,
		.range_inv = caps->range_inv,
		.ats = caps->ats,
		.ds = caps->ds,
	};

	if (iofd_accept_cmd(&ac, in->d[0], in->d[1], NULL))
		return -EIO;
	*out = *in;
	switch (cmdq_cmd_opcode(in)) {
	case CMDQ_OP_TLBI_NSNH_ALL:
		out->d[0] = CMDQ_OP_TLBI_NH_ALL | (uint64_t)sv->vmid << 32;
		out->d[1] = 0;
		break;
	case CMDQ_OP_TLBI_NH_ALL:
	case CMDQ_OP_TLBI_NH_ASID:
	case CMDQ_OP_TLBI_NH_VA:
	case CMDQ_OP_TLBI_NH_VAA:
		out->d[0] = (in->d[0] & ~vmid_mask) | (uint64_t)sv->vmid << 32;
		break;
	case CMDQ_OP_CFGI_CD:
	case CMDQ_OP_CFGI_CD_ALL:
	case CMDQ_OP_ATC_INV:
		if (!sim_psid(sv, (uint32_t)(in->d[0] >> 32), &psid))
			return -EIO;
		out->d[0] = (in->d[0] & ~sid_mask) | (uint64_t)psid << 32;
		break;
	default:
		return -EIO;
	}
	return 0;
}

/* [*@lo, *@hi) covered by a TLBI_NH_VA/VAA (range semantics, 4.3). */
static void sim_tlbi_range(const struct cmdq_cmd *c, uint64_t *lo, uint64_t *hi)
{
	uint64_t va = c->d[1] & ~0xfffull;
	unsigned int tg = (unsigned int)(c->d[1] >> 10) & 3;
	unsigned int num = (unsigned int)(c->d[0] >> 12) & 0x1f;
	unsigned int scale = (unsigned int)(c->d[0] >> 20) & 0x3f;
	uint64_t gran, pages;

	if (!tg) {
		/* No range: the one translation containing VA (4K model). */
		*lo = va;
		*hi = va + 4096;
		return;
	}
	gran = 1ull << (12 + 2 * (tg - 1));
	*lo = va & ~(gran - 1);
	/* (NUM + 1) << SCALE granules; SCALE > 39 acts as 39 (SMMUv3
	 * 4.4.1.1), and anything past 2^64 is the whole space. */
	if (scale > 39)
		scale = 39;
	pages = (uint64_t)(num + 1) << scale;
	if (pages > (UINT64_MAX - *lo) / gran)
		*hi = UINT64_MAX;
	else
		*hi = *lo + pages * gran;
}

/* Remove what @c (guest view) invalidates from the oracle. sv->lock held. */
static void sim_oracle_apply(struct sim_viommu *sv, const struct cmdq_cmd *c)
{
	uint8_t op = cmdq_cmd_opcode(c);
	uint16_t asid = (uint16_t)(c->d[0] >> 48);
	uint32_t sid = (uint32_t)(c->d[0] >> 32);
	uint32_t ssid = (uint32_t)(c->d[0] >> 12) & 0xfffff;
	bool ssv = c->d[0] & (1u << 11), global = c->d[0] & (1u << 9);
	unsigned int size;
	uint64_t lo = 0, hi = UINT64_MAX, span;
	size_t i;

	switch (op) {
	case CMDQ_OP_TLBI_NH_ALL:
	case CMDQ_OP_TLBI_NSNH_ALL:
		sv->ntlb = 0;
		return;
	case CMDQ_OP_TLBI_NH_ASID:
	case CMDQ_OP_TLBI_NH_VA:
	case CMDQ_OP_TLBI_NH_VAA:
		if (op != CMDQ_OP_TLBI_NH_ASID)
			sim_tlbi_range(c, &lo, &hi);
		for (i = 0; i < sv->ntlb;) {
			struct sim_tlb *e = &sv->tlb[i];
			/* By ASID: non-global entries of that ASID only. By
			 * VA: that ASID's and every global entry. By VAA:
			 * all (SMMUv3 4.4.2.2-4). */
			bool match = op == CMDQ_OP_TLBI_NH_ASID ?
					     !e->global && e->asid == asid :
				     op == CMDQ_OP_TLBI_NH_VA ?
					     e->global || e->asid == asid :
					     true;

			if (match && e->page >= lo && e->page < hi)
				*e = sv->tlb[--sv->ntlb];
			else
				i++;
		}
		return;
	case CMDQ_OP_CFGI_CD:
	case CMDQ_OP_CFGI_CD_ALL:
		for (i = 0; i < sv->ncd;) {
			struct sim_cd *e = &sv->cd[i];

			if (e->vsid == sid &&
			    (op == CMDQ_OP_CFGI_CD_ALL || e->ssid == ssid))
				*e = sv->cd[--sv->ncd];
			else
				i++;
		}
		return;
	case CMDQ_OP_ATC_INV:
		size = (unsigned int)(c->d[1] & 0x3f);
		if (size < 52) {
			span = 4096ull << size;
			lo = (c->d[1] & ~0xfffull) & ~(span - 1);
			hi = lo + span;
			if (hi < lo)
				hi = UINT64_MAX;
		}
		for (i = 0; i < sv->natc;) {
			struct sim_atc *e = &sv->atc[i];
			/* What the invalidation must remove: SSV = 0 the
			 * entries without PASID; SSV = 1 those of SSID, or
			 * with Global those of every PASID. (Devices may drop
			 * more, e.g. PASID entries on SSV = 0; the oracle
			 * does not count on it.) */
			bool match_ssid =
				ssv ? e->ssid != IOFD_SIM_NO_SSID &&
						(global || e->ssid == ssid) :
				      e->ssid == IOFD_SIM_NO_SSID;

			if (e->vsid == sid && match_ssid && e->page >= lo &&
			    e->page < hi)
				*e = sv->atc[--sv->natc];
			else
				i++;
		}
		return;
	default:
		return;
	}
}

static int sim_invalidate(struct iofd_viommu *v, const struct cmdq_cmd *cmds,
			  uint32_t n, struct iofd_inv_result *ret,
			  struct iofd_counters *delta, struct iofd_error *err)
{
	const struct iofd_sim_config *cfg = &v->h->b->sim;
	struct sim_viommu *sv = v->priv;
	struct sim_hsmmu *sh = v->h->priv;
	struct cmdq_cmd chunk[IOFD_HOST_CHUNK];
	uint64_t t0 = sim_now(), tc, start, end, cost, hw_ns = 0;
	uint32_t pos = 0, m, ok, i;
	bool timed_out;
	int r = 0;

	if (cfg->hold)
		cfg->hold(cfg->hold_arg);
	delta->ioctls = 1;
	/* ioctl entry and exit: the caller's own CPU, not the queue. */
	tc = t0 + cfg->ioctl_ns;
	sim_wait_until(cfg->wait, tc);

	while (pos < n && !r) {
		m = n - pos < IOFD_HOST_CHUNK ? n - pos : IOFD_HOST_CHUNK;
		ok = m;
		timed_out = false;
		pthread_mutex_lock(&sv->lock);
		for (i = 0; i < m; i++) {
			r = sim_convert(&v->h->caps, sv, &cmds[pos + i],
					&chunk[i]);
			if (r) {
				ok = i;
				break;
			}
		}
		pthread_mutex_unlock(&sv->lock);

		pthread_mutex_lock(&sh->qlock);
		if (cfg->fail_at_cmd > sh->ncmds &&
		    cfg->fail_at_cmd <= sh->ncmds + ok) {
			uint32_t f =
				(uint32_t)(cfg->fail_at_cmd - sh->ncmds - 1);

			if (cfg->fail_errno == ETIMEDOUT) {
				timed_out = true;
				r = -ETIMEDOUT;
				sh->ncmds += ok;
			} else {
				/* The injected command counts as consumed so
				 * that the fault fires once. */
				ok = f;
				r = cfg->fail_errno > 0 ? -cfg->fail_errno :
							  -EIO;
				sh->ncmds += ok + 1;
			}
		} else {
			sh->ncmds += ok;
		}
		if (ok) {
			cost = (uint64_t)ok * cfg->cmd_ns + cfg->sync_ns;
			/* NONE does not wait, so real time cannot follow the
			 * simulated queue: charge the work alone. */
			start = tc > sh->busy_until ||
						cfg->wait ==
							IOFD_SIM_WAIT_NONE ?
					tc :
					sh->busy_until;
			end = start + cost;
			sh->busy_until = end;
			hw_ns += cost;
		}
		pthread_mutex_unlock(&sh->qlock);
		if (!ok)
			break;

		sim_wait_until(cfg->wait, end);
		tc = end;
		delta->cmds += ok;
		delta->host_syncs++;
		pthread_mutex_lock(&sv->lock);
		for (i = 0; i < ok; i++) {
			sv->log[sv->nlog++ % IOFD_SIM_LOG] = chunk[i];
			/* A timed-out sync completes nothing. */
			if (!timed_out)
				sim_oracle_apply(sv, &cmds[pos + i]);
		}
		pthread_mutex_unlock(&sv->lock);
		if (!timed_out)
			pos += ok;
	}
	/* Exact: the rejected command is the first not complete. */
	ret->done = pos;
	if (r == -EIO)
		ret->bad = pos;
	delta->charged_ns = tc - t0;
	pthread_mutex_lock(&v->h->lock);
	v->h->ctr.charged_ns += hw_ns;
	pthread_mutex_unlock(&v->h->lock);
	return r;
}

static struct sim_viommu *sim_of(struct iofd_viommu *v)
{
	if (!v || v->h->b->ops != &iofd_sim_ops)
		return NULL;
	return v->priv;
}

static int sim_tlb_add(struct iofd_viommu *v, struct sim_tlb e)
{
	struct sim_viommu *sv = sim_of(v);
	int r;

	if (!sv)
		return -EINVAL;
	pthread_mutex_lock(&sv->lock);
	r = sim_grow((void **)&sv->tlb, &sv->captlb, sv->ntlb,
		     sizeof(*sv->tlb));
	if (!r)
		sv->tlb[sv->ntlb++] = e;
	pthread_mutex_unlock(&sv->lock);
	return r;
}

int iofd_sim_tlb_fill(struct iofd_viommu *v, uint16_t asid, uint64_t iova)
{
	return sim_tlb_add(v, (struct sim_tlb){ .asid = asid,
						.page = iova & ~0xfffull });
}

int iofd_sim_tlb_fill_global(struct iofd_viommu *v, uint64_t iova)
{
	return sim_tlb_add(v, (struct sim_tlb){ .global = true,
						.page = iova & ~0xfffull });
}

int iofd_sim_cd_fill(struct iofd_viommu *v, uint32_t vsid, uint32_t ssid)
{
	struct sim_viommu *sv = sim_of(v);
	int r;

	if (!sv)
		return -EINVAL;
	pthread_mutex_lock(&sv->lock);
	r = sim_grow((void **)&sv->cd, &sv->capcd, sv->ncd, sizeof(*sv->cd));
	if (!r)
		sv->cd[sv->ncd++] =
			(struct sim_cd){ .vsid = vsid, .ssid = ssid };
	pthread_mutex_unlock(&sv->lock);
	return r;
}

int iofd_sim_atc_fill(struct iofd_viommu *v, uint32_t vsid, uint32_t ssid,
		      uint64_t addr)
{
	struct sim_viommu *sv = sim_of(v);
	int r;

	if (!sv)
		return -EINVAL;
	pthread_mutex_lock(&sv->lock);
	r = sim_grow((void **)&sv->atc, &sv->capatc, sv->natc,
		     sizeof(*sv->atc));
	if (!r)
		sv->atc[sv->natc++] = (struct sim_atc){
			.vsid = vsid, .ssid = ssid, .page = addr & ~0xfffull
		};
	pthread_mutex_unlock(&sv->lock);
	return r;
}

bool iofd_sim_tlb_lookup(struct iofd_viommu *v, uint16_t asid, uint64_t iova)
{
	struct sim_viommu *sv = sim_of(v);
	bool hit = false;
	size_t i;

	if (!sv)
		return false;
	pthread_mutex_lock(&sv->lock);
	for (i = 0; i < sv->ntlb && !hit; i++)
		hit = (sv->tlb[i].global || sv->tlb[i].asid == asid) &&
		      sv->tlb[i].page == (iova & ~0xfffull);
	pthread_mutex_unlock(&sv->lock);
	return hit;
}

bool iofd_sim_cd_lookup(struct iofd_viommu *v, uint32_t vsid, uint32_t ssid)
{
	struct sim_viommu *sv = sim_of(v);
	bool hit = false;
	size_t i;

	if (!sv)
		return false;
	pthread_mutex_lock(&sv->lock);
	for (i = 0; i < sv->ncd && !hit; i++)
		hit = sv->cd[i].vsid == vsid && sv->cd[i].ssid == ssid;
	pthread_mutex_unlock(&sv->lock);
	return hit;
}

bool iofd_sim_atc_lookup(struct iofd_viommu *v, uint32_t vsid, uint32_t ssid,
			 uint64_t addr)
{
	struct sim_viommu *sv = sim_of(v);
	bool hit = false;
	size_t i;

	if (!sv)
		return false;
	pthread_mutex_lock(&sv->lock);
	for (i = 0; i < sv->natc && !hit; i++)
		hit = sv->atc[i].vsid == vsid && sv->atc[i].ssid == ssid &&
		      sv->atc[i].page == (addr & ~0xfffull);
	pthread_mutex_unlock(&sv->lock);
	return hit;
}

uint64_t iofd_sim_oracle_entries(struct iofd_viommu *v)
{
	struct sim_viommu *sv = sim_of(v);
	uint64_t n;

	if (!sv)
		return 0;
	pthread_mutex_lock(&sv->lock);
	n = sv->ntlb + sv->ncd + sv->natc;
	pthread_mutex_unlock(&sv->lock);
	return n;
}

uint32_t iofd_sim_issued(struct iofd_viommu *v, struct cmdq_cmd *out,
			 uint32_t max)
{
	struct sim_viommu *sv = sim_of(v);
	uint64_t first, i;
	uint32_t k = 0;

	if (!sv)
		return 0;
	pthread_mutex_lock(&sv->lock);
	first = sv->nlog > IOFD_SIM_LOG ? sv->nlog - IOFD_SIM_LOG : 0;
	for (i = first; i < sv->nlog && k < max; i++)
		out[k++] = sv->log[i % IOFD_SIM_LOG];
	pthread_mutex_unlock(&sv->lock);
	return k;
}

uint16_t iofd_sim_vmid(const struct iofd_viommu *v)
{
	const struct sim_viommu *sv = v->priv;

	return sv->vmid;
}

const struct iofd_ops iofd_sim_ops = {
	.kind = "sim",
	.hsmmu_open = sim_hsmmu_open,
	.hsmmu_close = sim_hsmmu_close,
	.viommu_bind = sim_viommu_bind,
	.viommu_unbind = sim_viommu_unbind,
	.vdev_alloc = sim_vdev_alloc,
	.vdev_destroy = sim_vdev_destroy,
	.invalidate = sim_invalidate,
};
