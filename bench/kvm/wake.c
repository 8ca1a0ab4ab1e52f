/* SPDX-License-Identifier: MIT */
/*
 * Idle protection of the register page (bench/kvm/wake.h). Facts used,
 * from include/uapi/linux/userfaultfd.h, the kernel's userfaultfd and KVM
 * API documentation:
 * - UFFDIO_REGISTER with UFFDIO_REGISTER_MODE_WP on a shmem (memfd)
 *   mapping needs UFFD_FEATURE_WP_HUGETLBFS_SHMEM (PTE markers keep the
 *   protection on pages not mapped yet); UFFDIO_WRITEPROTECT with
 *   UFFDIO_WRITEPROTECT_MODE_WP protects, with mode 0 un-protects and
 *   wakes the faulting threads (no _MODE_DONTWAKE). Protection changes
 *   notify the mmu notifiers, so KVM drops its stage-2 mapping.
 * - A fault taken by get_user_pages (KVM's) is not a user-mode fault: a
 *   userfaultfd opened with UFFD_USER_MODE_ONLY answers it with SIGBUS
 *   (KVM_RUN then fails with EFAULT).
 * - KVM_MEM_READONLY cannot be set on an existing slot: delete (size 0)
 *   and re-add. A guest store to a read-only slot, and any access while
 *   the slot is deleted, is a KVM_EXIT_MMIO the VMM must complete.
 */
#include "bench/kvm/wake.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"

#define KWK_SLOT_ID 1
#define KWK_PAGE_SIZE 4096u

static int fail(char *err, size_t errlen, int r, const char *what)
{
	if (err)
		snprintf(err, errlen, "%s: %s", what, strerror(-r));
	return r;
}

uint64_t kwk_now_ns(void)
{
	return common_now_ns();
}

volatile uint64_t *kwk_field(struct kwk *w, unsigned int off)
{
	return (volatile uint64_t *)(void *)(w->vm.ram + KG_VCPU(0) + off);
}

uint32_t kwk_prod_q(struct kwk *w, unsigned int q)
{
	uint8_t *p = w->svc_page + (size_t)(q & 1) * KWK_QSTRIDE + KG_W_PROD;

	/* A_PROD: pairs with the guest's store (x86: TSO) or with
	 * R_APPLY in apply_store(). */
	return __atomic_load_n((uint32_t *)(void *)p, __ATOMIC_ACQUIRE);
}

void kwk_set_cons_q(struct kwk *w, unsigned int q, uint32_t v)
{
	uint8_t *p = w->svc_page + (size_t)(q & 1) * KWK_QSTRIDE + KG_W_CONS;

	/* R_CONS: pairs with the guest's CONS poll (x86: TSO). */
	__atomic_store_n((uint32_t *)(void *)p, v, __ATOMIC_RELEASE);
}

uint32_t kwk_prod(struct kwk *w)
{
	return kwk_prod_q(w, 0);
}

void kwk_set_cons(struct kwk *w, uint32_t v)
{
	kwk_set_cons_q(w, 0, v);
}

uint64_t kwk_events(struct kwk *w)
{
	/* A_EVENTS: pairs with R_EVENTS; a store that an event let
	 * complete is ordered after it. */
	return __atomic_load_n(&w->events, __ATOMIC_ACQUIRE);
}

void kwk_wake(struct kwk *w)
{
	uint64_t one = 1;

	if (write(w->wake_fd, &one, sizeof(one)) != sizeof(one))
		__atomic_store_n(&w->thread_err, -EIO, __ATOMIC_RELAXED);
}

/* Record an event before the trapped store may complete. */
static void event_begin(struct kwk *w)
{
	__atomic_store_n(&w->ev_tsc, __builtin_ia32_rdtsc(), __ATOMIC_RELAXED);
	__atomic_store_n(&w->ev_prod, kwk_prod(w), __ATOMIC_RELAXED);
	/* R_EVENTS: pairs with A_EVENTS in kwk_events(). */
	__atomic_fetch_add(&w->events, 1, __ATOMIC_SEQ_CST);
}

static int slot_set(struct kwk *w, uint64_t size, uint32_t flags)
{
	struct kvm_userspace_memory_region mr;

	memset(&mr, 0, sizeof(mr));
	mr.slot = KWK_SLOT_ID;
	mr.flags = flags;
	mr.guest_phys_addr = KG_W_PAGE;
	mr.memory_size = size;
	mr.userspace_addr = (uint64_t)(uintptr_t)w->vmm_page;
	return ioctl(w->vm.vm_fd, KVM_SET_USER_MEMORY_REGION, &mr) ? -errno : 0;
}

/* Delete and re-add the page's slot with @flags; caller holds @lock. */
static int slot_flip(struct kwk *w, uint32_t flags)
{
	uint64_t t0 = kwk_now_ns(), t1;
	int r;

	r = slot_set(w, 0, 0);
	t1 = kwk_now_ns();
	if (!r)
		r = slot_set(w, KWK_PAGE_SIZE, flags);
	__atomic_store_n(&w->ev_del_ns, t1 - t0, __ATOMIC_RELAXED);
	__atomic_store_n(&w->ev_add_ns, kwk_now_ns() - t1, __ATOMIC_RELAXED);
	return r;
}

static int uffd_wp(struct kwk *w, bool protect)
{
	struct uffdio_writeprotect wp;

	memset(&wp, 0, sizeof(wp));
	wp.range.start = (uint64_t)(uintptr_t)w->vmm_page;
	wp.range.len = KWK_PAGE_SIZE;
	wp.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0;
	return ioctl(w->uffd, UFFDIO_WRITEPROTECT, &wp) ? -errno : 0;
}

int kwk_arm(struct kwk *w, uint64_t *ret_ns)
{
	uint64_t t0 = kwk_now_ns();
	int r = 0;

	pthread_mutex_lock(&w->lock);
	if (w->path == KWK_UFFD)
		r = uffd_wp(w, true);
	else if (w->path == KWK_SLOT || w->path == KWK_SLOT_DEFER)
		r = slot_flip(w, KVM_MEM_READONLY);
	if (!r)
		w->armed = true;
	pthread_mutex_unlock(&w->lock);
	if (ret_ns)
		*ret_ns = kwk_now_ns() - t0;
	return r;
}

/* Caller holds @lock. */
static int disarm_locked(struct kwk *w)
{
	uint64_t t0 = kwk_now_ns();
	int r = 0;

	if (w->path == KWK_UFFD)
		r = uffd_wp(w, false); /* also wakes a stalled store */
	else if ((w->path == KWK_SLOT || w->path == KWK_SLOT_DEFER) && w->armed)
		r = slot_flip(w, 0);
	if (!r)
		w->armed = false;
	w->flip_req = false; /* any disarm answers a pending request */
	__atomic_store_n(&w->ev_disarm_ns, kwk_now_ns() - t0, __ATOMIC_RELAXED);
	return r;
}

int kwk_disarm(struct kwk *w)
{
	int r;

	pthread_mutex_lock(&w->lock);
	r = disarm_locked(w);
	pthread_mutex_unlock(&w->lock);
	return r;
}

int kwk_sleep(struct kwk *w, int timeout_ms)
{
	struct pollfd p = { .fd = w->wake_fd, .events = POLLIN };
	uint64_t n;
	int r;

	do {
		r = poll(&p, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return 0;
	if (read(w->wake_fd, &n, sizeof(n)) != sizeof(n))
		return errno == EAGAIN ? 0 : -EIO;
	return 1;
}

/*
 * The service thread of KWK_UFFD: blocked in poll() on the uffd; for
 * each WP fault, count the event, un-protect (the store completes after
 * this, never before), then wake the worker. A fault that a disarm
 * already resolved still wakes the worker: harmless, the worker polls.
 */
static void *uffd_main(void *arg)
{
	struct kwk *w = arg;
	unsigned int held = 0;

	for (;;) {
		struct pollfd p[2] = { { .fd = w->uffd, .events = POLLIN },
				       { .fd = w->stop_fd, .events = POLLIN } };
		struct uffd_msg msg;
		ssize_t n;
		int r;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto fail;
		}
		if (p[1].revents)
			return NULL;
		n = read(w->uffd, &msg, sizeof(msg));
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n != sizeof(msg) || msg.event != UFFD_EVENT_PAGEFAULT ||
		    !(msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP)) {
			r = -EPROTO;
			goto fail;
		}
		event_begin(w);
		if (++held < w->fault_batch)
			continue; /* tests: let more vCPUs stall first */
		held = 0;
		pthread_mutex_lock(&w->lock);
		if (!w->armed)
			w->stale_faults++;
		r = disarm_locked(w);
		pthread_mutex_unlock(&w->lock);
		if (r)
			goto fail;
		kwk_wake(w);
		continue;
fail:
		__atomic_store_n(&w->thread_err, r, __ATOMIC_RELAXED);
		kvmh_vcpu_kick(&w->c);
		kwk_wake(w);
		return NULL;
	}
}

static void apply_store(struct kwk *w, uint64_t off, const uint8_t *data,
			uint32_t len)
{
	if (len == 4 && !(off & 3))
		/* R_APPLY: pairs with A_PROD in kwk_prod(). */
		__atomic_store_n((uint32_t *)(void *)(w->svc_page + off),
				 *(const uint32_t *)(const void *)data,
				 __ATOMIC_RELEASE);
	else
		memcpy(w->svc_page + off, data, len);
}

/* KWK_SLOT_DEFER: apply, wake the worker, ask the flip thread to make
 * the slot writable; the vCPU resumes without waiting for it. */
static int defer_store(struct kwk *w, uint64_t off, const uint8_t *data,
		       uint32_t len)
{
	event_begin(w);
	apply_store(w, off, data, len);
	kwk_wake(w);
	pthread_mutex_lock(&w->lock);
	w->flip_req = true;
	pthread_cond_signal(&w->flip_cond);
	pthread_mutex_unlock(&w->lock);
	return KVMH_CONTINUE;
}

/* The VMM's flip thread of KWK_SLOT_DEFER. A request may be stale (the
 * worker armed again since): disarming then is harmless because the
 * worker is told (an event and a wake), and it re-arms when idle. */
static void *flip_main(void *arg)
{
	struct kwk *w = arg;
	int r = 0;

	pthread_mutex_lock(&w->lock);
	while (!r) {
		while (!w->flip_req && !w->flip_stop)
			pthread_cond_wait(&w->flip_cond, &w->lock);
		if (w->flip_stop)
			break;
		w->flip_req = false;
		if (!w->armed)
			continue;
		/* R_EVENTS (bare): pairs with A_EVENTS in kwk_events(). */
		__atomic_fetch_add(&w->events, 1, __ATOMIC_SEQ_CST);
		r = disarm_locked(w);
		kwk_wake(w);
	}
	pthread_mutex_unlock(&w->lock);
	if (r) {
		__atomic_store_n(&w->thread_err, r, __ATOMIC_RELAXED);
		kvmh_vcpu_kick(&w->c);
	}
	return NULL;
}

/*
 * The VMM's MMIO handler. KWK_SLOT: a store to the read-only page is
 * applied here (the guest's store is otherwise dropped), then the worker
 * is woken and the slot made writable again before the vCPU resumes.
 * Any access while the slot is deleted (an arm or disarm in progress)
 * also lands here: reads come from the page, stores are applied the same
 * way. The lock waits out an arm in progress.
 */
int kwk_mmio(void *ctx, struct kvmh_vcpu *c, uint64_t addr, uint8_t *data,
	     uint32_t len, bool is_write)
{
	struct kwk *w = ctx;
	uint64_t off = addr - KG_W_PAGE;
	int r;

	(void)c;
	if (addr == KG_MMIO + KG_MMIO_DONE)
		return KVMH_DONE;
	if (addr < KG_W_PAGE || off + len > KWK_PAGE_SIZE)
		return -EIO;
	if (!is_write) {
		memcpy(data, w->svc_page + off, len);
		return KVMH_CONTINUE;
	}
	if (w->path == KWK_SLOT_DEFER)
		return defer_store(w, off, data, len);
	pthread_mutex_lock(&w->lock);
	event_begin(w);
	apply_store(w, off, data, len);
	kwk_wake(w);
	r = disarm_locked(w);
	pthread_mutex_unlock(&w->lock);
	return r ? r : KVMH_CONTINUE;
}

static int uffd_setup(struct kwk *w, unsigned int flags, char *err,
		      size_t errlen)
{
	struct uffdio_api api;
	struct uffdio_register reg;

	w->uffd =
		(int)syscall(__NR_userfaultfd, flags | O_CLOEXEC | O_NONBLOCK);
	if (w->uffd < 0)
		return fail(err, errlen, -errno, "userfaultfd");
	memset(&api, 0, sizeof(api));
	api.api = UFFD_API;
	api.features = UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
	if (ioctl(w->uffd, UFFDIO_API, &api))
		return fail(err, errlen, -errno,
			    "UFFDIO_API (UFFD_FEATURE_WP_HUGETLBFS_SHMEM)");
	memset(&reg, 0, sizeof(reg));
	reg.range.start = (uint64_t)(uintptr_t)w->vmm_page;
	reg.range.len = KWK_PAGE_SIZE;
	reg.mode = UFFDIO_REGISTER_MODE_WP;
	if (ioctl(w->uffd, UFFDIO_REGISTER, &reg))
		return fail(err, errlen, -errno, "UFFDIO_REGISTER (WP)");
	if (!(reg.ioctls & (1ull << _UFFDIO_WRITEPROTECT)))
		return fail(err, errlen, -ENOTSUP, "UFFDIO_WRITEPROTECT");
	w->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (w->stop_fd < 0)
		return fail(err, errlen, -errno, "eventfd");
	if (pthread_create(&w->uffd_thread, NULL, uffd_main, w))
		return fail(err, errlen, -EAGAIN, "pthread_create");
	w->uffd_thread_on = true;
	return 0;
}

int kwk_new(struct kwk *w, int kvm_fd, enum kwk_path path,
	    unsigned int uffd_flags, char *err, size_t errlen)
{
	int r;

	memset(w, 0, sizeof(*w));
	w->path = path;
	w->page_fd = w->uffd = w->wake_fd = w->stop_fd = -1;
	w->vmm_page = w->svc_page = MAP_FAILED;
	w->c.fd = -1;
	w->c.run = MAP_FAILED;
	r = kvmh_vm_new(&w->vm, kvm_fd, KG_RAM_SIZE, err, errlen);
	if (r)
		return r;
	r = kvmh_vcpu_new(&w->vm, 0, &w->c, err, errlen);
	if (r)
		return r;
	if (pthread_mutex_init(&w->lock, NULL))
		return fail(err, errlen, -ENOMEM, "mutex");
	w->lock_on = true;
	w->page_fd = memfd_create("vcmdq-page0", MFD_CLOEXEC);
	if (w->page_fd < 0)
		return fail(err, errlen, -errno, "memfd_create");
	if (ftruncate(w->page_fd, KWK_PAGE_SIZE))
		return fail(err, errlen, -errno, "ftruncate");
	w->vmm_page = mmap(NULL, KWK_PAGE_SIZE, PROT_READ | PROT_WRITE,
			   MAP_SHARED, w->page_fd, 0);
	w->svc_page = mmap(NULL, KWK_PAGE_SIZE, PROT_READ | PROT_WRITE,
			   MAP_SHARED, w->page_fd, 0);
	if (w->vmm_page == MAP_FAILED || w->svc_page == MAP_FAILED)
		return fail(err, errlen, -errno, "mmap register page");
	memset(w->vmm_page, 0, KWK_PAGE_SIZE); /* populate the VMM's PTE */
	r = slot_set(w, KWK_PAGE_SIZE, 0);
	if (r)
		return fail(err, errlen, r, "KVM_SET_USER_MEMORY_REGION page");
	w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->wake_fd < 0)
		return fail(err, errlen, -errno, "eventfd");
	*kwk_field(w, KG_V_PROG) = KG_PROG_WAKE;
	*kwk_field(w, KG_W_ADDR) = KG_W_PAGE + KG_W_PROD;
	*kwk_field(w, KG_W_CADDR) = KG_W_PAGE + KG_W_CONS;
	*kwk_field(w, KG_W_SEED) = 0x9e3779b97f4a7c15ull;
	if (path == KWK_BELL) {
		*kwk_field(w, KG_W_BELL) = KWK_BELL_ADDR;
		r = kvmh_ioeventfd(&w->vm, KWK_BELL_ADDR, w->wake_fd);
		if (r)
			return fail(err, errlen, r, "KVM_IOEVENTFD");
	}
	if (path == KWK_UFFD)
		return uffd_setup(w, uffd_flags, err, errlen);
	if (path == KWK_SLOT_DEFER) {
		if (pthread_cond_init(&w->flip_cond, NULL))
			return fail(err, errlen, -ENOMEM, "cond");
		w->flip_cond_on = true;
		if (pthread_create(&w->flip_thread, NULL, flip_main, w))
			return fail(err, errlen, -EAGAIN, "pthread_create");
		w->flip_thread_on = true;
	}
	return 0;
}

void kwk_free(struct kwk *w)
{
	if (w->uffd_thread_on) {
		uint64_t one = 1;

		if (write(w->stop_fd, &one, sizeof(one)) == sizeof(one))
			pthread_join(w->uffd_thread, NULL);
		w->uffd_thread_on = false;
	}
	if (w->flip_thread_on) {
		pthread_mutex_lock(&w->lock);
		w->flip_stop = true;
		pthread_cond_signal(&w->flip_cond);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->flip_thread, NULL);
		w->flip_thread_on = false;
	}
	if (w->flip_cond_on)
		pthread_cond_destroy(&w->flip_cond);
	w->flip_cond_on = false;
	kvmh_vcpu_free(&w->c);
	kvmh_vm_free(&w->vm);
	if (w->uffd >= 0)
		close(w->uffd);
	if (w->stop_fd >= 0)
		close(w->stop_fd);
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	if (w->vmm_page != MAP_FAILED)
		munmap(w->vmm_page, KWK_PAGE_SIZE);
	if (w->svc_page != MAP_FAILED)
		munmap(w->svc_page, KWK_PAGE_SIZE);
	if (w->page_fd >= 0)
		close(w->page_fd);
	if (w->lock_on)
		pthread_mutex_destroy(&w->lock);
	w->uffd = w->stop_fd = w->wake_fd = w->page_fd = -1;
	w->vmm_page = w->svc_page = MAP_FAILED;
	w->uffd_thread_on = w->lock_on = false;
}
