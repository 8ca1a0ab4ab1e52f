/* SPDX-License-Identifier: MIT */
/*
 * The fake /dev/iommu: see fake_iommu.h for what it is and how it is
 * used, docs/COST-MODEL.md "fake /dev/iommu" for why it is built this way.
 * Behaviour follows ../shared/docs/iommufd-smmuv3-facts.md sections 2-4;
 * where the fake had to choose, a comment says so.
 */
/* We define both open() and open64(): no redirection of one to the other. */
#undef _FILE_OFFSET_BITS
#include "tests/iommufd/fake_iommu.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cmdq/cmdq.h"
#include "iommufd/accept.h"
#include "iommufd/iommufd_abi.h"

enum fobj_type {
	FO_FREE,
	FO_DEV,
	FO_IOAS,
	FO_HWPT_PAGING,
	FO_HWPT_NESTED,
	FO_VIOMMU,
	FO_VDEV,
	FO_VEVENTQ,
};

/*
 * One object. Per type:
 *   DEV:          c = pSID, a = num_streams, b = its vDEVICE id (0: none)
 *   HWPT_PAGING:  a = nest parent, b = IOAS id, c = VMID
 *   HWPT_NESTED:  a = vIOMMU id
 *   VIOMMU:       a = parent HWPT id, b = vEVENTQ types bitmap, c = VMID
 *   VDEV:         a = vIOMMU id, b = dev id, c = virt_id (vSID)
 *   VEVENTQ:      a = vIOMMU id, b = type
 * @users: objects that depend on this one (DESTROY -> EBUSY).
 */
struct fobj {
	uint32_t type;
	uint32_t id;
	uint32_t smmu;
	uint32_t users;
	uint32_t a, b;
	uint64_t c;
};

#define FAKE_OBJS 256
#define FAKE_MAX_ENTRIES 65536 /* the fake's kcalloc() limit -> ENOMEM */

/* Lives in the memfd; every field is protected by @lock. */
struct fake_state {
	uint64_t magic;
	pthread_mutex_t lock; /* process-shared, robust */
	uint32_t next_id;
	uint32_t next_vmid;
	uint32_t gen; /* 'A' or 'B' */
	uint32_t fault_errno;
	uint64_t fault_at; /* absolute conversion count; 0 = off */
	uint64_t nconv; /* entries converted so far */
	bool timeout_pending; /* an ETIMEDOUT fault hit the current batch */
	uint64_t ninv; /* HWPT_INVALIDATE calls that reached the driver */
	uint64_t nsync; /* host CMD_SYNCs */
	uint32_t idr[FAKE_IOMMU_SMMUS][6];
	struct fobj objs[FAKE_OBJS];
	uint64_t nlog;
	struct fake_iommu_log_ent log[FAKE_IOMMU_LOG];
};

/* ---- real libc entry points ---- */

static int (*real_open_fn)(const char *, int, ...);
static int (*real_openat_fn)(int, const char *, int, ...);
static int (*real_ioctl_fn)(int, unsigned long, ...);

static void fake_resolve(void)
{
	if (!real_ioctl_fn) {
		*(void **)&real_open_fn = dlsym(RTLD_NEXT, "open");
		*(void **)&real_openat_fn = dlsym(RTLD_NEXT, "openat");
		*(void **)&real_ioctl_fn = dlsym(RTLD_NEXT, "ioctl");
	}
}

/* ---- per-process map of fake fds to their state ---- */

struct fake_map {
	dev_t dev;
	ino_t ino;
	struct fake_state *st;
};

static pthread_mutex_t fake_maps_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fake_map fake_maps[32];
static unsigned int fake_nmaps;

static struct fake_state *fake_lookup(int fd)
{
	struct fake_state *st = NULL;
	struct stat sb;
	uint64_t magic;
	unsigned int i;
	void *p;

	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) ||
	    sb.st_size < (off_t)sizeof(struct fake_state))
		return NULL;
	pthread_mutex_lock(&fake_maps_lock);
	for (i = 0; i < fake_nmaps; i++) {
		if (fake_maps[i].dev == sb.st_dev &&
		    fake_maps[i].ino == sb.st_ino) {
			st = fake_maps[i].st;
			goto out;
		}
	}
	if (pread(fd, &magic, sizeof(magic), 0) != sizeof(magic) ||
	    magic != FAKE_IOMMU_MAGIC || fake_nmaps == 32)
		goto out;
	p = mmap(NULL, sizeof(struct fake_state), PROT_READ | PROT_WRITE,
		 MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		goto out;
	st = p;
	fake_maps[fake_nmaps++] = (struct fake_map){ .dev = sb.st_dev,
						     .ino = sb.st_ino,
						     .st = st };
out:
	pthread_mutex_unlock(&fake_maps_lock);
	return st;
}

bool iofd_test_seam_is_iommufd(int fd)
{
	return fake_lookup(fd) != NULL;
}

uint64_t fake_iommu_linked(void)
{
	return FAKE_IOMMU_MAGIC;
}

/* A typical server SMMUv3: ASID16, ATS, SSID 20, SID 32, RIL, 4K + 64K. */
static const uint32_t fake_default_idr[6] = {
	(1u << 12) | (1u << 10) | (1u << 1) | 1u,
	(20u << 6) | 32u,
	0,
	1u << 10,
	0,
	(1u << 4) | (1u << 6) | 5u,
};

static void fake_env_fault(struct fake_state *st)
{
	const char *e = getenv("FAKE_IOMMU_FAULT");
	const char *colon;

	if (!e || !(colon = strchr(e, ':')))
		return;
	if (!strncmp(e, "EIO:", 4))
		st->fault_errno = EIO;
	else if (!strncmp(e, "ETIMEDOUT:", 10))
		st->fault_errno = ETIMEDOUT;
	else
		return;
	st->fault_at = strtoull(colon + 1, NULL, 10);
}

static int fake_open(int flags)
{
	pthread_mutexattr_t ma;
	struct fake_state *st;
	const char *gen;
	unsigned int i;
	int fd, e;

	fd = memfd_create("fake-iommu", flags & O_CLOEXEC ? MFD_CLOEXEC : 0);
	if (fd < 0)
		return -1;
	if (ftruncate(fd, sizeof(*st)))
		goto err;
	st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (st == MAP_FAILED)
		goto err;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&st->lock, &ma);
	pthread_mutexattr_destroy(&ma);
	st->next_id = 1;
	st->next_vmid = 1;
	gen = getenv("FAKE_IOMMU_GEN");
	st->gen = gen && gen[0] == 'A' ? 'A' : 'B';
	fake_env_fault(st);
	for (i = 0; i < FAKE_IOMMU_SMMUS; i++)
		memcpy(st->idr[i], fake_default_idr, sizeof(fake_default_idr));
	st->magic = FAKE_IOMMU_MAGIC;
	munmap(st, sizeof(*st));
	return fd;
err:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

/* ---- user memory: faults become EFAULT, as copy_{from,to}_user ---- */

static int fu_read(void *dst, uint64_t src, size_t len)
{
	struct iovec l = { dst, len }, r = { (void *)(uintptr_t)src, len };
	ssize_t n;

	if (!len)
		return 0;
	n = process_vm_readv(getpid(), &l, 1, &r, 1, 0);
	if (n < 0 && (errno == ENOSYS || errno == EPERM)) {
		memcpy(dst, (const void *)(uintptr_t)src, len);
		return 0;
	}
	return n == (ssize_t)len ? 0 : -EFAULT;
}

static int fu_write(uint64_t dst, const void *src, size_t len)
{
	struct iovec l = { (void *)src, len },
		     r = { (void *)(uintptr_t)dst, len };
	ssize_t n;

	if (!len)
		return 0;
	n = process_vm_writev(getpid(), &l, 1, &r, 1, 0);
	if (n < 0 && (errno == ENOSYS || errno == EPERM)) {
		memcpy((void *)(uintptr_t)dst, src, len);
		return 0;
	}
	return n == (ssize_t)len ? 0 : -EFAULT;
}

/* ---- objects ---- */

static struct fobj *obj_get(struct fake_state *st, uint32_t id, uint32_t type)
{
	unsigned int i;

	if (!id)
		return NULL;
	for (i = 0; i < FAKE_OBJS; i++)
		if (st->objs[i].type != FO_FREE && st->objs[i].id == id)
			return !type || st->objs[i].type == type ?
				       &st->objs[i] :
				       NULL;
	return NULL;
}

static struct fobj *obj_new(struct fake_state *st, uint32_t type)
{
	unsigned int i;

	for (i = 0; i < FAKE_OBJS; i++) {
		if (st->objs[i].type == FO_FREE) {
			memset(&st->objs[i], 0, sizeof(st->objs[i]));
			st->objs[i].type = type;
			st->objs[i].id = st->next_id++;
			return &st->objs[i];
		}
	}
	return NULL;
}

static void obj_unuse(struct fake_state *st, uint32_t id)
{
	struct fobj *o = obj_get(st, id, 0);

	if (o && o->users)
		o->users--;
}

/* ---- handlers: @p is the kernel-size copy of the argument ---- */

static int h_destroy(struct fake_state *st, void *p)
{
	struct iofd_abi_destroy *a = p;
	struct fobj *o = obj_get(st, a->id, 0), *x;

	if (!o)
		return -ENOENT;
	/* Devices belong to VFIO, which holds them: never destroyable here. */
	if (o->type == FO_DEV || o->users)
		return -EBUSY;
	switch (o->type) {
	case FO_HWPT_PAGING:
		obj_unuse(st, o->b);
		break;
	case FO_HWPT_NESTED:
		obj_unuse(st, o->a);
		break;
	case FO_VIOMMU:
		obj_unuse(st, o->a);
		break;
	case FO_VDEV:
		obj_unuse(st, o->a);
		x = obj_get(st, o->b, FO_DEV);
		if (x)
			x->b = 0;
		break;
	case FO_VEVENTQ:
		obj_unuse(st, o->a);
		x = obj_get(st, o->a, FO_VIOMMU);
		if (x)
			x->b &= ~(1u << o->b);
		break;
	default:
		break;
	}
	o->type = FO_FREE;
	return 0;
}

static int h_ioas_alloc(struct fake_state *st, void *p)
{
	struct iofd_abi_ioas_alloc *a = p;
	struct fobj *o;

	if (a->flags)
		return -EOPNOTSUPP;
	o = obj_new(st, FO_IOAS);
	if (!o)
		return -ENOMEM;
	a->out_ioas_id = o->id;
	return 0;
}

static int h_hwpt_alloc(struct fake_state *st, void *p)
{
	struct iofd_abi_hwpt_alloc *a = p;
	struct fobj *dev, *pt, *o;
	uint64_t ste[2];
	unsigned int cfg;
	int r;

	if (a->__reserved || a->__reserved2 ||
	    a->flags & ~IOFD_ABI_HWPT_ALLOC_NEST_PARENT)
		return -EOPNOTSUPP; /* the fake supports NEST_PARENT only */
	if ((a->data_type == IOFD_ABI_HWPT_DATA_NONE) != !a->data_len)
		return -EINVAL;
	dev = obj_get(st, a->dev_id, FO_DEV);
	if (!dev)
		return -ENOENT;
	pt = obj_get(st, a->pt_id, 0);
	if (!pt)
		return -EINVAL;
	if (pt->type == FO_IOAS) {
		if (a->data_type != IOFD_ABI_HWPT_DATA_NONE)
			return -EOPNOTSUPP;
		o = obj_new(st, FO_HWPT_PAGING);
		if (!o)
			return -ENOMEM;
		o->smmu = dev->smmu;
		o->a = !!(a->flags & IOFD_ABI_HWPT_ALLOC_NEST_PARENT);
		o->b = pt->id;
		o->c = st->next_vmid++;
		pt->users++;
		a->out_hwpt_id = o->id;
		return 0;
	}
	if (pt->type != FO_VIOMMU)
		return -EINVAL;
	if (a->flags)
		return -EOPNOTSUPP;
	if (a->data_type != IOFD_ABI_HWPT_DATA_ARM_SMMUV3 ||
	    a->data_len != sizeof(ste))
		return -EINVAL;
	if (pt->smmu != dev->smmu)
		return -EINVAL;
	r = fu_read(ste, a->data_uptr, sizeof(ste));
	if (r)
		return r;
	cfg = (unsigned int)(ste[0] >> 1) & 7;
	if ((ste[0] & 1) && cfg != 0 && cfg != 4 && cfg != 5)
		return -EIO;
	o = obj_new(st, FO_HWPT_NESTED);
	if (!o)
		return -ENOMEM;
	o->smmu = pt->smmu;
	o->a = pt->id;
	pt->users++;
	a->out_hwpt_id = o->id;
	return 0;
}

static int h_get_hw_info(struct fake_state *st, void *p)
{
	struct iofd_abi_hw_info *a = p;
	struct iofd_abi_hw_info_smmuv3 d = { 0 };
	static const uint8_t zero[64];
	struct fobj *dev;
	uint32_t len;
	int r;

	if (a->flags & ~IOFD_ABI_HW_INFO_FLAG_INPUT_TYPE || a->__reserved[0] ||
	    a->__reserved[1] || a->__reserved[2])
		return -EOPNOTSUPP;
	dev = obj_get(st, a->dev_id, FO_DEV);
	if (!dev)
		return -ENOENT;
	if (a->flags & IOFD_ABI_HW_INFO_FLAG_INPUT_TYPE &&
	    a->in_data_type != IOFD_ABI_HW_INFO_TYPE_DEFAULT &&
	    a->in_data_type != IOFD_ABI_HW_INFO_TYPE_ARM_SMMUV3)
		return -EOPNOTSUPP;
	memcpy(d.idr, st->idr[dev->smmu], sizeof(d.idr));
	d.iidr = 0x43b;
	d.aidr = 0x2;
	len = a->data_len < sizeof(d) ? a->data_len : sizeof(d);
	r = fu_write(a->data_uptr, &d, len);
	/* A larger user buffer is zero-filled past the kernel's data. */
	while (!r && a->data_len > len) {
		uint32_t z = a->data_len - len > sizeof(zero) ?
				     sizeof(zero) :
				     a->data_len - len;

		r = fu_write(a->data_uptr + len, zero, z);
		len += z;
	}
	if (r)
		return r;
	a->data_len = sizeof(d);
	a->in_data_type = IOFD_ABI_HW_INFO_TYPE_ARM_SMMUV3;
	a->out_max_pasid_log2 = (uint8_t)((st->idr[dev->smmu][1] >> 6) & 0x1f);
	a->out_capabilities = 0;
	return 0;
}

static int h_viommu_alloc(struct fake_state *st, void *p)
{
	struct iofd_abi_viommu_alloc *a = p;
	struct fobj *dev, *hwpt, *o;

	if (a->flags || a->type != IOFD_ABI_VIOMMU_TYPE_ARM_SMMUV3)
		return -EOPNOTSUPP;
	dev = obj_get(st, a->dev_id, FO_DEV);
	if (!dev)
		return -ENOENT;
	hwpt = obj_get(st, a->hwpt_id, FO_HWPT_PAGING);
	if (!hwpt)
		return -ENOENT;
	if (!hwpt->a || hwpt->smmu != dev->smmu)
		return -EINVAL;
	o = obj_new(st, FO_VIOMMU);
	if (!o)
		return -ENOMEM;
	o->smmu = dev->smmu;
	o->a = hwpt->id;
	o->c = hwpt->c; /* the VMID is the S2 parent's */
	hwpt->users++;
	a->out_viommu_id = o->id;
	return 0;
}

static int h_vdevice_alloc(struct fake_state *st, void *p)
{
	struct iofd_abi_vdevice_alloc *a = p;
	struct fobj *v, *dev, *o;
	unsigned int i;

	/* virt_id > ULONG_MAX -> EINVAL cannot happen on LP64. */
	v = obj_get(st, a->viommu_id, FO_VIOMMU);
	dev = obj_get(st, a->dev_id, FO_DEV);
	if (!v || !dev)
		return -ENOENT;
	if (v->smmu != dev->smmu)
		return -EINVAL;
	if (dev->b)
		return -EEXIST;
	for (i = 0; i < FAKE_OBJS; i++)
		if (st->objs[i].type == FO_VDEV && st->objs[i].a == v->id &&
		    st->objs[i].c == a->virt_id)
			return -EEXIST;
	if (dev->a != 1)
		return -EOPNOTSUPP; /* newer kernels: one stream only */
	o = obj_new(st, FO_VDEV);
	if (!o)
		return -ENOMEM;
	o->smmu = v->smmu;
	o->a = v->id;
	o->b = dev->id;
	o->c = a->virt_id;
	v->users++;
	dev->b = o->id;
	a->out_vdevice_id = o->id;
	return 0;
}

static int h_veventq_alloc(struct fake_state *st, void *p)
{
	struct iofd_abi_veventq_alloc *a = p;
	struct fobj *v, *o;
	int fd;

	if (a->flags || a->__reserved ||
	    a->type != IOFD_ABI_VEVENTQ_TYPE_ARM_SMMUV3)
		return -EOPNOTSUPP;
	if (!a->veventq_depth)
		return -EINVAL;
	v = obj_get(st, a->viommu_id, FO_VIOMMU);
	if (!v)
		return -ENOENT;
	if (v->b & (1u << a->type))
		return -EEXIST;
	o = obj_new(st, FO_VEVENTQ);
	if (!o)
		return -ENOMEM;
	/* The fake's event queue never produces events: an eventfd stands
	 * in for the record stream so the caller owns a real fd. */
	fd = eventfd(0, EFD_CLOEXEC);
	if (fd < 0) {
		o->type = FO_FREE;
		return -errno;
	}
	o->smmu = v->smmu;
	o->a = v->id;
	o->b = a->type;
	v->b |= 1u << a->type;
	v->users++;
	a->out_veventq_id = o->id;
	a->out_veventq_fd = (uint32_t)fd;
	return 0;
}

/*
 * Gen B's features of fake SMMU @smmu (facts 2.2): for iofd_accept_cmd(),
 * the kernel's rules written independently of cmdq/ (the code under test).
 */
static struct iofd_accept_caps fake_caps(const uint32_t *idr)
{
	struct iofd_accept_caps c = { 0 };

	c.asid_bits = idr[0] & (1u << 12) ? 16 : 8;
	c.ats = idr[0] & (1u << 10);
	c.ssid_bits = (uint8_t)((idr[1] >> 6) & 0x1f);
	c.range_inv = idr[3] & (1u << 10);
	c.ds = idr[5] & (1u << 3);
	return c;
}

/* Set by a HANG fault in this thread's conversion (see SET_FAULT). */
static __thread bool fake_hang_me;

/* arm_vsmmu_convert_user_cmd() as the facts doc describes it (4.1). */
static int fake_convert(struct fake_state *st, struct fobj *v,
			const struct cmdq_cmd *in, struct cmdq_cmd *out)
{
	const uint64_t vmid_mask = 0xffffull << 32;
	const uint64_t sid_mask = 0xffffffffull << 32;
	struct iofd_accept_caps caps;
	struct fobj *vd, *dev;
	uint32_t vsid;
	unsigned int i;

	st->nconv++;
	if (st->fault_at && st->nconv == st->fault_at) {
		st->fault_at = 0;
		if (st->fault_errno == FAKE_IOMMU_FAULT_HANG) {
			fake_hang_me = true; /* after the unlock */
			return -EIO;
		}
		if (st->fault_errno == EIO)
			return -EIO;
		st->timeout_pending = true;
	}
	if (st->gen == 'B') {
		caps = fake_caps(st->idr[v->smmu]);
		if (iofd_accept_cmd(&caps, in->d[0], in->d[1], NULL))
			return -EIO;
	}
	*out = *in;
	switch (cmdq_cmd_opcode(in)) {
	case CMDQ_OP_TLBI_NSNH_ALL:
		out->d[0] = CMDQ_OP_TLBI_NH_ALL | v->c << 32;
		out->d[1] = 0;
		return 0;
	case CMDQ_OP_TLBI_NH_ALL:
	case CMDQ_OP_TLBI_NH_ASID:
	case CMDQ_OP_TLBI_NH_VA:
	case CMDQ_OP_TLBI_NH_VAA:
		out->d[0] = (in->d[0] & ~vmid_mask) | (v->c & 0xffff) << 32;
		return 0;
	case CMDQ_OP_CFGI_CD:
	case CMDQ_OP_CFGI_CD_ALL:
	case CMDQ_OP_ATC_INV:
		vsid = (uint32_t)(in->d[0] >> 32);
		for (i = 0; i < FAKE_OBJS; i++) {
			vd = &st->objs[i];
			if (vd->type != FO_VDEV || vd->a != v->id ||
			    vd->c != vsid)
				continue;
			dev = obj_get(st, vd->b, FO_DEV);
			if (!dev)
				return -EIO;
			out->d[0] = (in->d[0] & ~sid_mask) | dev->c << 32;
			return 0;
		}
		return -EIO;
	default:
		return -EIO;
	}
}

/* Issue @n converted commands plus one CMD_SYNC to the host queue. */
static int fake_issue(struct fake_state *st, struct fobj *v,
		      const struct cmdq_cmd *cmds, uint32_t n)
{
	struct fake_iommu_log_ent *e;
	uint32_t i;

	for (i = 0; i < n; i++) {
		e = &st->log[st->nlog++ % FAKE_IOMMU_LOG];
		e->viommu_id = v->id;
		e->smmu = v->smmu;
		e->cmd[0] = cmds[i].d[0];
		e->cmd[1] = cmds[i].d[1];
	}
	st->nsync++;
	if (st->timeout_pending) {
		st->timeout_pending = false;
		return -ETIMEDOUT;
	}
	return 0;
}

/* Gen A (facts 4.2): convert in order, issue every 63 and at the end. */
static int inv_gen_a(struct fake_state *st, struct fobj *v,
		     const struct cmdq_cmd *in, uint32_t n, uint32_t *num)
{
	struct cmdq_cmd batch[63];
	uint32_t i, m = 0;
	int r;

	for (i = 0; i < n; i++) {
		r = fake_convert(st, v, &in[i], &batch[m]);
		if (r) {
			/* converted-but-unissued entries are dropped */
			st->timeout_pending = false;
			*num = i;
			return r;
		}
		if (++m == 63 || i == n - 1) {
			r = fake_issue(st, v, batch, m);
			if (r) {
				*num = i; /* e - 1 */
				return r;
			}
			m = 0;
		}
	}
	*num = n;
	return 0;
}

/* Gen B (facts 4.3): per 63-chunk, convert all, then issue all. */
static int inv_gen_b(struct fake_state *st, struct fobj *v,
		     const struct cmdq_cmd *in, uint32_t n, uint32_t *num)
{
	struct cmdq_cmd batch[63];
	uint32_t done = 0, m, j;
	int r;

	while (done < n) {
		m = n - done < 63 ? n - done : 63;
		for (j = 0; j < m; j++) {
			r = fake_convert(st, v, &in[done + j], &batch[j]);
			if (r) {
				st->timeout_pending = false;
				*num = done;
				return r;
			}
		}
		r = fake_issue(st, v, batch, m);
		if (r) {
			/* The fake's choice: report the chunks before. */
			*num = done;
			return r;
		}
		done += m;
	}
	*num = n;
	return 0;
}

static int h_hwpt_invalidate(struct fake_state *st, void *p)
{
	struct iofd_abi_hwpt_invalidate *a = p;
	uint32_t n = a->entry_num, len = a->entry_len, i, j;
	struct cmdq_cmd *cmds = NULL;
	uint8_t *raw = NULL;
	struct fobj *o;
	int r;

	a->entry_num = 0;
	if (a->__reserved)
		return -EOPNOTSUPP;
	if (n && (!a->data_uptr || !len))
		return -EINVAL;
	o = obj_get(st, a->hwpt_id, 0);
	if (!o)
		return -ENOENT;
	if (o->type == FO_HWPT_NESTED)
		return -EOPNOTSUPP;
	if (o->type != FO_VIOMMU)
		return -EINVAL;
	if (a->data_type != IOFD_ABI_INVALIDATE_DATA_ARM_SMMUV3)
		return -EINVAL;
	if (!n)
		return st->gen == 'A' ? -EINVAL : 0;
	if (n > FAKE_MAX_ENTRIES)
		return -ENOMEM;
	raw = malloc((size_t)n * len);
	cmds = calloc(n, sizeof(*cmds));
	r = -ENOMEM;
	if (!raw || !cmds)
		goto out;
	r = fu_read(raw, a->data_uptr, (size_t)n * len);
	if (r)
		goto out;
	for (i = 0; i < n; i++) {
		uint8_t ent[16] = { 0 };
		const uint8_t *src = raw + (size_t)i * len;

		memcpy(ent, src, len < 16 ? len : 16);
		for (j = 16; j < len; j++) {
			if (src[j]) {
				r = -E2BIG;
				goto out;
			}
		}
		cmds[i] = cmdq_cmd_from_le(ent);
	}
	st->ninv++;
	if (st->gen == 'A')
		r = inv_gen_a(st, o, cmds, n, &a->entry_num);
	else
		r = inv_gen_b(st, o, cmds, n, &a->entry_num);
out:
	free(raw);
	free(cmds);
	return r;
}

static int h_test(struct fake_state *st, void *p)
{
	struct fake_iommu_cmd *a = p;
	struct fake_iommu_log_ent tmp[64];
	struct fobj *o;
	uint64_t i;
	uint32_t k, got = 0;
	int r;

	switch (a->op) {
	case FAKE_IOMMU_OP_ADD_DEV:
		if (a->smmu >= FAKE_IOMMU_SMMUS)
			return -EINVAL;
		o = obj_new(st, FO_DEV);
		if (!o)
			return -ENOMEM;
		o->smmu = a->smmu;
		o->c = (uint32_t)a->arg64;
		o->a = a->arg32 ? a->arg32 : 1;
		a->id = o->id;
		return 0;
	case FAKE_IOMMU_OP_SET_GEN:
		if (a->arg32 != 'A' && a->arg32 != 'B')
			return -EINVAL;
		st->gen = a->arg32;
		return 0;
	case FAKE_IOMMU_OP_SET_FAULT:
		if (a->arg64 && a->arg32 != EIO && a->arg32 != ETIMEDOUT &&
		    a->arg32 != FAKE_IOMMU_FAULT_HANG)
			return -EINVAL;
		st->fault_errno = a->arg32;
		st->fault_at = a->arg64 ? st->nconv + a->arg64 : 0;
		return 0;
	case FAKE_IOMMU_OP_GET_LOG:
		i = a->arg64;
		if (st->nlog > FAKE_IOMMU_LOG && i < st->nlog - FAKE_IOMMU_LOG)
			return -ENOENT; /* overwritten */
		while (i < st->nlog && got < a->arg32) {
			for (k = 0; k < 64 && i < st->nlog && got < a->arg32;
			     k++, i++, got++)
				tmp[k] = st->log[i % FAKE_IOMMU_LOG];
			r = fu_write(a->uptr + (uint64_t)(got - k) *
						       sizeof(tmp[0]),
				     tmp, k * sizeof(tmp[0]));
			if (r)
				return r;
		}
		a->arg32 = got;
		a->id = (uint32_t)st->nlog;
		return 0;
	case FAKE_IOMMU_OP_STATS:
		a->arg64 = st->ninv;
		a->arg32 = (uint32_t)st->nsync;
		a->id = (uint32_t)FAKE_IOMMU_MAGIC;
		return 0;
	case FAKE_IOMMU_OP_SET_IDR:
		if (a->smmu >= FAKE_IOMMU_SMMUS)
			return -EINVAL;
		return fu_read(st->idr[a->smmu], a->uptr,
			       sizeof(st->idr[a->smmu]));
	default:
		return -EOPNOTSUPP;
	}
}

struct fake_ioctl {
	unsigned int nr;
	uint32_t size, min;
	int (*fn)(struct fake_state *st, void *p);
	bool respond_on_error; /* HWPT_INVALIDATE writes entry_num back */
};

static const struct fake_ioctl fake_ioctls[] = {
	{ IOFD_ABI_CMD_DESTROY, sizeof(struct iofd_abi_destroy),
	  IOFD_ABI_MIN_DESTROY, h_destroy, false },
	{ IOFD_ABI_CMD_IOAS_ALLOC, sizeof(struct iofd_abi_ioas_alloc),
	  IOFD_ABI_MIN_IOAS_ALLOC, h_ioas_alloc, false },
	{ IOFD_ABI_CMD_HWPT_ALLOC, sizeof(struct iofd_abi_hwpt_alloc),
	  IOFD_ABI_MIN_HWPT_ALLOC, h_hwpt_alloc, false },
	{ IOFD_ABI_CMD_GET_HW_INFO, sizeof(struct iofd_abi_hw_info),
	  IOFD_ABI_MIN_GET_HW_INFO, h_get_hw_info, false },
	{ IOFD_ABI_CMD_HWPT_INVALIDATE, sizeof(struct iofd_abi_hwpt_invalidate),
	  IOFD_ABI_MIN_HWPT_INVALIDATE, h_hwpt_invalidate, true },
	{ IOFD_ABI_CMD_VIOMMU_ALLOC, sizeof(struct iofd_abi_viommu_alloc),
	  IOFD_ABI_MIN_VIOMMU_ALLOC, h_viommu_alloc, false },
	{ IOFD_ABI_CMD_VDEVICE_ALLOC, sizeof(struct iofd_abi_vdevice_alloc),
	  IOFD_ABI_MIN_VDEVICE_ALLOC, h_vdevice_alloc, false },
	{ IOFD_ABI_CMD_VEVENTQ_ALLOC, sizeof(struct iofd_abi_veventq_alloc),
	  IOFD_ABI_MIN_VEVENTQ_ALLOC, h_veventq_alloc, false },
	{ IOFD_ABI_CMD_TEST, sizeof(struct fake_iommu_cmd),
	  sizeof(struct fake_iommu_cmd), h_test, false },
};

/* iommufd_fops_ioctl() (facts section 3). */
static int fake_dispatch(struct fake_state *st, unsigned long cmd, void *arg)
{
	const struct fake_ioctl *op = NULL;
	unsigned int nr = _IOC_NR(cmd), i;
	uint8_t buf[64] = { 0 }, extra[64];
	uint32_t size, sz, n, j;
	int r;

	for (i = 0; i < sizeof(fake_ioctls) / sizeof(fake_ioctls[0]); i++)
		if (fake_ioctls[i].nr == nr)
			op = &fake_ioctls[i];
	if (!op || cmd != _IO(IOFD_ABI_TYPE, nr))
		return -ENOTTY;
	if (fu_read(&size, (uintptr_t)arg, sizeof(size)))
		return -EFAULT;
	if (size < op->min)
		return -EINVAL;
	sz = size < op->size ? size : op->size;
	if (fu_read(buf, (uintptr_t)arg, sz))
		return -EFAULT;
	/* copy_struct_from_user(): a longer struct must end in zeros. */
	for (i = op->size; i < size; i += n) {
		n = size - i < sizeof(extra) ? size - i : sizeof(extra);
		if (fu_read(extra, (uintptr_t)arg + i, n))
			return -EFAULT;
		for (j = 0; j < n; j++)
			if (extra[j])
				return -E2BIG;
	}

	r = pthread_mutex_lock(&st->lock);
	if (r == EOWNERDEAD)
		pthread_mutex_consistent(&st->lock);
	r = op->fn(st, buf);
	pthread_mutex_unlock(&st->lock);
	/* A HANG fault: this thread never comes back (signals included). */
	while (fake_hang_me)
		pause();
	if ((!r || op->respond_on_error) && fu_write((uintptr_t)arg, buf, sz))
		r = -EFAULT;
	return r;
}

/* ---- the interposed entry points ---- */

static bool fake_path(const char *path)
{
	return path && !strcmp(path, "/dev/iommu");
}

int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;

	va_start(ap, flags);
	if (flags & (O_CREAT | O_TMPFILE))
		mode = (mode_t)va_arg(ap, int);
	va_end(ap);
	if (fake_path(path))
		return fake_open(flags);
	fake_resolve();
	return real_open_fn(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;

	va_start(ap, flags);
	if (flags & (O_CREAT | O_TMPFILE))
		mode = (mode_t)va_arg(ap, int);
	va_end(ap);
	return open(path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;

	va_start(ap, flags);
	if (flags & (O_CREAT | O_TMPFILE))
		mode = (mode_t)va_arg(ap, int);
	va_end(ap);
	if (fake_path(path))
		return fake_open(flags);
	fake_resolve();
	return real_openat_fn(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;

	va_start(ap, flags);
	if (flags & (O_CREAT | O_TMPFILE))
		mode = (mode_t)va_arg(ap, int);
	va_end(ap);
	return openat(dirfd, path, flags, mode);
}

int ioctl(int fd, unsigned long request, ...)
{
	struct fake_state *st;
	va_list ap;
	void *arg;
	int r;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (_IOC_TYPE(request) == IOFD_ABI_TYPE) {
		st = fake_lookup(fd);
		if (st) {
			r = fake_dispatch(st, request, arg);
			if (r < 0) {
				errno = -r;
				return -1;
			}
			return r;
		}
	}
	fake_resolve();
	return real_ioctl_fn(fd, request, arg);
}
