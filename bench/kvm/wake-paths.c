/* SPDX-License-Identifier: MIT */
/*
 * kvm-wake-paths: the idle-to-active transition of a software vCMDQ on
 * real vCPUs (issue 15, item 3; bench/kvm/wake.h has the paths). For each
 * path, --iters times: the worker arms the idle protection and waits
 * --gap us, lets the guest store PROD (KG_W_GO), sleeps until woken (or
 * polls: poll), answers in CONS; the guest measures its store and the
 * round trip to CONS with rdtsc. The last transition comes after --idle
 * seconds idle, over which the service threads' CPU time is measured.
 * Columns (us): arm50 the worker's arm call; store50..storemax the
 * guest's PROD store (guest rdtsc around it, with the doorbell store for
 * ioeventfd); rt50 the guest's store until it saw CONS; seen50 GO until
 * the service saw the trap (uffd thread read the fault / VMM exit);
 * awake50 GO until the worker returned from its sleep; disarm50 the
 * un-protect (slot: delete + re-add, del50 and add50); idle-st/idle-rt
 * the store and round trip after --idle seconds idle; idle-cpu% the
 * service threads' CPU time over that idle time.
 * Checked per path: every store landed (guest read-back, final PROD) and
 * no trapped store was visible before the service saw its event. Then
 * probes: a UFFD_USER_MODE_ONLY uffd under KVM, the service half of
 * uffd-wp in another process (and that process dying with a fault
 * pending), an ioeventfd at PROD inside the read-only slot.
 * By default the vCPU thread runs on CPU 1 and the service threads on
 * CPU 0 (-a: not pinned), so a spinning worker does not delay the vCPU.
 * Exit status 77 without a usable /dev/kvm, 1 on failure.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/kvm/kvm-bench.h"
#include "bench/kvm/wake.h"

struct samples {
	double *v;
	size_t n;
};

struct vcpu_arg {
	struct kwk *w;
	int cpu; /* pin the vCPU thread here, -1: no */
	int r;
	char err[256];
};

/* Pin the calling thread to @cpu (best effort: a measurement aid). */
static void pin_self(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *vcpu_main(void *arg)
{
	struct vcpu_arg *a = arg;

	if (a->cpu >= 0)
		pin_self(a->cpu);
	a->r = kvmh_vcpu_run(&a->w->c, kwk_mmio, a->w, a->err, sizeof(a->err));
	/* R_DONE: pairs with A_DONE in the worker's waits. */
	__atomic_store_n(&a->w->done, true, __ATOMIC_RELEASE);
	kwk_wake(a->w);
	return NULL;
}

/* A probe's guest: one store, no CONS wait, @flags (KG_WF_*); @va runs
 * its vCPU on @w, unpinned. */
static void probe_prepare(struct kwk *w, struct vcpu_arg *va, uint64_t flags)
{
	*kwk_field(w, KG_V_ITERS) = 1;
	*kwk_field(w, KG_W_FLAGS) = flags;
	*kwk_field(w, KG_W_SYNCMASK) = 1; /* no CONS wait */
	memset(va, 0, sizeof(*va));
	va->cpu = -1;
	va->w = w;
}

static bool run_done(struct kwk *w)
{
	/* A_DONE: pairs with R_DONE. */
	return __atomic_load_n(&w->done, __ATOMIC_ACQUIRE);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(struct samples *s, double p)
{
	if (!s->n)
		return 0;
	qsort(s->v, s->n, sizeof(double), cmp_double);
	return s->v[(size_t)(p * (double)(s->n - 1) + 0.5)];
}

static uint64_t thread_cpu_ns(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The service threads' CPU time: the worker (this thread) and, for
 * uffd, the fault thread. */
static uint64_t service_cpu_ns(struct kwk *w)
{
	clockid_t id;
	uint64_t ns = thread_cpu_ns(CLOCK_THREAD_CPUTIME_ID);

	if (w->uffd_thread_on && !pthread_getcpuclockid(w->uffd_thread, &id))
		ns += thread_cpu_ns(id);
	return ns;
}

enum { S_ARM, S_STORE, S_RT, S_SEEN, S_AWAKE, S_DIS, S_DEL, S_ADD, S_N };

struct result {
	struct samples s[S_N];
	double idle_cpu; /* fraction of a core while idle */
	double last_store_us, last_rt_us; /* after --idle seconds */
	uint64_t early; /* trapped stores visible before their event */
	uint64_t events;
};

struct opts {
	uint64_t iters, gap_us;
	int vcpu_cpu; /* -1: no pinning */
	double idle_s;
	double tick_ns;
};

static int wait_guest(struct kwk *w, uint64_t i)
{
	while (*kwk_field(w, KG_W_SEQ) < i) {
		/* The guest ends right after its last SEQ: look again. */
		if (run_done(w) && *kwk_field(w, KG_W_SEQ) < i)
			return -EIO;
		__builtin_ia32_pause();
	}
	return 0;
}

static int wait_prod(struct kwk *w, uint32_t i)
{
	while (kwk_prod(w) != i) {
		if (run_done(w))
			return -EIO;
		__builtin_ia32_pause();
	}
	return 0;
}

/* Sleep (or poll) until the guest's store of @i is seen. */
static int idle_wait(struct kwk *w, uint32_t i, int timeout_ms)
{
	int r;

	if (w->path == KWK_POLL)
		return wait_prod(w, i);
	r = kwk_sleep(w, timeout_ms);
	if (r <= 0)
		return r ? r : -ETIMEDOUT;
	return wait_prod(w, i);
}

static void add(struct samples *s, double v)
{
	s->v[s->n++] = v;
}

/* One transition: arm, (idle), GO, wake, answer. */
static int transition(struct kwk *w, struct opts *o, struct result *res,
		      uint64_t i, bool last)
{
	bool trap = w->path == KWK_UFFD || w->path == KWK_SLOT ||
		    w->path == KWK_SLOT_DEFER;
	uint64_t arm_ns = 0, go, ev0 = kwk_events(w), cpu0 = 0, t0 = 0;
	int r;

	/* A deferred flip still pending would disarm this arm: finish it
	 * first (a no-op when the flip thread already ran). */
	if (w->path == KWK_SLOT_DEFER) {
		r = kwk_disarm(w);
		if (r)
			return r;
	}
	if (trap) {
		r = kwk_arm(w, &arm_ns);
		if (r)
			return r;
	}
	if (kwk_prod(w) != (uint32_t)(i - 1))
		return -EPROTO;
	/* Drop the wakes of the last store's disarms: the guest waits for
	 * GO, nothing else can wake the worker now. */
	while ((r = kwk_sleep(w, 0)) == 1)
		;
	if (r)
		return r;
	if (last) {
		cpu0 = service_cpu_ns(w);
		t0 = kwk_now_ns();
		if (w->path == KWK_POLL) {
			while (kwk_now_ns() - t0 < (uint64_t)(o->idle_s * 1e9))
				if (kwk_prod(w) != (uint32_t)(i - 1))
					return -EPROTO;
		} else if (kwk_sleep(w, (int)(o->idle_s * 1000)) != 0) {
			return -EPROTO; /* woken while the guest waits */
		}
		res->idle_cpu = (double)(service_cpu_ns(w) - cpu0) /
				(double)(kwk_now_ns() - t0);
	} else if (o->gap_us) {
		struct timespec ts = { 0, (long)o->gap_us * 1000 };

		nanosleep(&ts, NULL);
	}
	go = __builtin_ia32_rdtsc();
	*kwk_field(w, KG_W_GO) = i;
	r = idle_wait(w, (uint32_t)i, 10000);
	if (r)
		return r;
	add(&res->s[S_AWAKE],
	    (double)(__builtin_ia32_rdtsc() - go) * o->tick_ns / 1e3);
	kwk_set_cons(w, (uint32_t)i);
	r = wait_guest(w, i);
	if (r)
		return r;
	if (trap) {
		if (kwk_events(w) == ev0)
			return -ENOMSG; /* the store was not trapped */
		if (__atomic_load_n(&w->ev_prod, __ATOMIC_RELAXED) !=
		    (uint32_t)(i - 1))
			res->early++;
		add(&res->s[S_ARM], (double)arm_ns / 1e3);
		add(&res->s[S_SEEN],
		    (double)(__atomic_load_n(&w->ev_tsc, __ATOMIC_RELAXED) -
			     go) *
			    o->tick_ns / 1e3);
		add(&res->s[S_DIS], (double)__atomic_load_n(&w->ev_disarm_ns,
							    __ATOMIC_RELAXED) /
					    1e3);
		if (w->path != KWK_UFFD) {
			add(&res->s[S_DEL], (double)w->ev_del_ns / 1e3);
			add(&res->s[S_ADD], (double)w->ev_add_ns / 1e3);
		}
	}
	add(&res->s[S_STORE],
	    (double)*kwk_field(w, KG_W_TSTORE) * o->tick_ns / 1e3);
	add(&res->s[S_RT], (double)*kwk_field(w, KG_W_TRT) * o->tick_ns / 1e3);
	if (last) {
		res->last_store_us = res->s[S_STORE].v[res->s[S_STORE].n - 1];
		res->last_rt_us = res->s[S_RT].v[res->s[S_RT].n - 1];
	}
	return 0;
}

static int measure(int kvm_fd, enum kwk_path path, unsigned int uffd_flags,
		   struct opts *o, struct result *res, char *err, size_t errlen)
{
	struct vcpu_arg va;
	struct kwk w;
	pthread_t th;
	bool th_on = false;
	int r;

	memset(&va, 0, sizeof(va));
	r = kwk_new(&w, kvm_fd, path, uffd_flags, err, errlen);
	if (r)
		goto out;
	*kwk_field(&w, KG_V_ITERS) = o->iters;
	*kwk_field(&w, KG_W_FLAGS) = KG_WF_GATE | KG_WF_CHECK;
	va.w = &w;
	va.cpu = o->vcpu_cpu;
	if (pthread_create(&th, NULL, vcpu_main, &va)) {
		r = -EAGAIN;
		snprintf(err, errlen, "pthread_create");
		goto out;
	}
	th_on = true;
	for (uint64_t i = 1; i <= o->iters && !r; i++)
		r = transition(&w, o, res, i, i == o->iters);
	if (r)
		snprintf(err, errlen, "transition: %s", strerror(-r));
	kvmh_vcpu_kick(&w.c);
	pthread_join(th, NULL);
	th_on = false;
	if (!r && va.r) {
		r = va.r;
		snprintf(err, errlen, "vCPU: %.200s", va.err);
	}
	if (!r && (*kwk_field(&w, KG_W_BAD) || kwk_prod(&w) != o->iters)) {
		r = -EPROTO;
		snprintf(err, errlen,
			 "lost store: guest read back wrong at %" PRIu64
			 ", final PROD %u",
			 *kwk_field(&w, KG_W_BAD), kwk_prod(&w));
	}
	if (!r && w.thread_err) {
		r = w.thread_err;
		snprintf(err, errlen, "service thread: %s", strerror(-r));
	}
	res->events = kwk_events(&w);
out:
	if (th_on) {
		kvmh_vcpu_kick(&w.c);
		pthread_join(th, NULL);
	}
	kwk_free(&w);
	return r;
}

/*
 * A userfaultfd opened with UFFD_USER_MODE_ONLY (what an unprivileged
 * process gets when vm.unprivileged_userfaultfd = 0): KVM's fault is a
 * kernel-mode one. Report what the guest's store does.
 */
static void probe_user_mode_only(int kvm_fd)
{
	struct vcpu_arg va;
	char err[256];
	struct kwk w;
	pthread_t th;
	int r;

	r = kwk_new(&w, kvm_fd, KWK_UFFD, UFFD_USER_MODE_ONLY, err,
		    sizeof(err));
	if (r) {
		printf("uffd UFFD_USER_MODE_ONLY: setup fails: %s\n", err);
		kwk_free(&w);
		return;
	}
	probe_prepare(&w, &va, KG_WF_GATE);
	if (kwk_arm(&w, NULL) || pthread_create(&th, NULL, vcpu_main, &va)) {
		printf("uffd UFFD_USER_MODE_ONLY: arm or thread failed\n");
		kwk_free(&w);
		return;
	}
	*kwk_field(&w, KG_W_GO) = 1;
	r = kwk_sleep(&w, 3000);
	if (!run_done(&w))
		kvmh_vcpu_kick(&w.c);
	pthread_join(th, NULL);
	printf("uffd UFFD_USER_MODE_ONLY: events %" PRIu64
	       ", vCPU run: %s, PROD %u\n",
	       kwk_events(&w), va.r ? va.err : "ok", kwk_prod(&w));
	(void)r;
	kwk_free(&w);
}

/* The service half of KWK_UFFD in a child process (what a daemon gets
 * from the VMM over SCM_RIGHTS: the same open uffd): arm, take the
 * guest's WP fault, un-protect. Exit 0 on success. */
static int child_service(struct kwk *w, int ready_fd, bool die)
{
	struct uffdio_writeprotect wp;
	struct pollfd p = { .fd = w->uffd, .events = POLLIN };
	struct uffd_msg msg;
	char c = 1;

	/* A daemon without privileges: drop root (and with it every
	 * capability) before touching the fd. */
	if (getuid() == 0 &&
	    (setgroups(0, NULL) || setgid(65534) || setuid(65534)))
		return 9;
	memset(&wp, 0, sizeof(wp));
	wp.range.start = (uint64_t)(uintptr_t)w->vmm_page;
	wp.range.len = 4096;
	wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
	if (ioctl(w->uffd, UFFDIO_WRITEPROTECT, &wp))
		return 2;
	if (write(ready_fd, &c, 1) != 1)
		return 3;
	for (;;) {
		if (poll(&p, 1, 10000) != 1)
			return 4;
		if (read(w->uffd, &msg, sizeof(msg)) == sizeof(msg))
			break;
		if (errno != EAGAIN)
			return 5;
	}
	if (msg.event != UFFD_EVENT_PAGEFAULT ||
	    !(msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP))
		return 6;
	/* The store must not have landed before we un-protect. */
	if (kwk_prod(w) != 0)
		return 7;
	if (die)
		return 0; /* exit with the fault pending */
	wp.mode = 0;
	if (ioctl(w->uffd, UFFDIO_WRITEPROTECT, &wp))
		return 8;
	return 0;
}

/* @mode 0: the child un-protects; 1: the child exits with the guest's
 * fault pending, holding the last reference to the uffd (this process
 * closed its copy); 2: the same, but this process kept its copy: look
 * again after 1 s, then un-protect from here. */
static void probe_cross_process(int kvm_fd, int mode)
{
	bool die = mode > 0, stalled = false;
	uint32_t prod_1s = 0;
	struct vcpu_arg va;
	int pfd[2], st = -1;
	uint64_t one = 1;
	char err[256], c;
	struct kwk w;
	pthread_t th;
	pid_t pid;

	if (kwk_new(&w, kvm_fd, KWK_UFFD, 0, err, sizeof(err))) {
		printf("uffd from another process: setup fails: %s\n", err);
		kwk_free(&w);
		return;
	}
	/* This process keeps no fault thread: the child is the service. */
	if (write(w.stop_fd, &one, sizeof(one)) == sizeof(one))
		pthread_join(w.uffd_thread, NULL);
	w.uffd_thread_on = false;
	probe_prepare(&w, &va, KG_WF_GATE | KG_WF_CHECK);
	if (pipe2(pfd, O_CLOEXEC) ||
	    pthread_create(&th, NULL, vcpu_main, &va)) {
		printf("uffd from another process: pipe or thread failed\n");
		kwk_free(&w);
		return;
	}
	pid = fork();
	if (pid == 0)
		_exit(child_service(&w, pfd[1], die));
	close(pfd[1]);
	if (mode == 1 && pid > 0) {
		close(w.uffd);
		w.uffd = -1;
	}
	if (pid > 0 && read(pfd[0], &c, 1) == 1)
		*kwk_field(&w, KG_W_GO) = 1;
	if (pid > 0)
		waitpid(pid, &st, 0);
	if (mode == 2) {
		struct uffdio_writeprotect wp;

		kwk_sleep(&w, 1000);
		stalled = !run_done(&w);
		prod_1s = kwk_prod(&w);
		memset(&wp, 0, sizeof(wp));
		wp.range.start = (uint64_t)(uintptr_t)w.vmm_page;
		wp.range.len = 4096;
		if (ioctl(w.uffd, UFFDIO_WRITEPROTECT, &wp))
			printf("un-protect from the VMM failed\n");
	}
	if (!run_done(&w))
		kwk_sleep(&w, 10000);
	if (!run_done(&w))
		kvmh_vcpu_kick(&w.c);
	pthread_join(th, NULL);
	close(pfd[0]);
	if (mode == 2)
		printf("uffd: the service exits with a fault pending while the "
		       "VMM keeps its copy of the fd: after 1 s the vCPU is "
		       "%s, PROD %u; then the VMM un-protects:\n",
		       stalled ? "still stalled" : "NOT stalled", prod_1s);
	printf("uffd from another process (a child holding the fd, uid "
	       "65534, arms, reads the fault and %s): child exit %d, vCPU run: %s, "
	       "PROD %u, read back %s\n",
	       !die	 ? "un-protects" :
	       mode == 1 ? "exits holding the last fd" :
			   "exits; the VMM holds a copy",
	       pid > 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1,
	       va.r ? va.err : "ok", kwk_prod(&w),
	       *kwk_field(&w, KG_W_BAD) ? "WRONG" : "ok");
	kwk_free(&w);
}

/*
 * (c) for a stock driver: a KVM_IOEVENTFD at PROD's address inside the
 * read-only slot. KVM emulates a store to a read-only slot through its
 * MMIO bus, so the ioeventfd fires in the kernel (no VMM exit); report
 * whether the stored value reaches the page (an ioeventfd carries none).
 */
static void probe_slot_ioeventfd(int kvm_fd, double tick_ns)
{
	struct vcpu_arg va;
	char err[256];
	struct kwk w;
	pthread_t th;
	int r;

	r = kwk_new(&w, kvm_fd, KWK_SLOT, 0, err, sizeof(err));
	if (!r)
		r = kvmh_ioeventfd(&w.vm, KG_W_PAGE + KG_W_PROD, w.wake_fd);
	if (!r)
		r = kwk_arm(&w, NULL);
	probe_prepare(&w, &va, KG_WF_GATE | KG_WF_CHECK);
	if (r || pthread_create(&th, NULL, vcpu_main, &va)) {
		printf("ioeventfd in a read-only slot: setup failed\n");
		kwk_free(&w);
		return;
	}
	*kwk_field(&w, KG_W_GO) = 1;
	r = kwk_sleep(&w, 10000);
	while (!run_done(&w))
		__builtin_ia32_pause();
	pthread_join(th, NULL);
	printf("ioeventfd at PROD in a read-only slot (stock driver's store): "
	       "eventfd %s, VMM exits %" PRIu64 ", guest store %.2f us, PROD "
	       "in the page %u (stored 1), guest read back %s\n",
	       r == 1 ? "signalled" : "silent", w.c.exits.mmio_write - 1,
	       (double)*kwk_field(&w, KG_W_TSTORE) * tick_ns / 1e3,
	       kwk_prod(&w), *kwk_field(&w, KG_W_BAD) ? "WRONG" : "ok");
	kwk_free(&w);
}

/*
 * The VMM replaces its mapping of the page (munmap + mmap MAP_FIXED of
 * the same memfd page at the same address) while the page is armed:
 * the registration belonged to the old VMA. Report whether the guest's
 * store still wakes the service.
 */
static void probe_vmm_remap(int kvm_fd)
{
	struct vcpu_arg va;
	char err[256];
	struct kwk w;
	pthread_t th;
	void *p;
	int r;

	r = kwk_new(&w, kvm_fd, KWK_UFFD, 0, err, sizeof(err));
	if (!r)
		r = kwk_arm(&w, NULL);
	if (!r) {
		p = mmap(w.vmm_page, 4096, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_FIXED, w.page_fd, 0);
		r = p == (void *)w.vmm_page ? 0 : -errno;
	}
	probe_prepare(&w, &va, KG_WF_GATE | KG_WF_CHECK);
	if (r || pthread_create(&th, NULL, vcpu_main, &va)) {
		printf("VMM remaps the armed page: setup failed\n");
		kwk_free(&w);
		return;
	}
	*kwk_field(&w, KG_W_GO) = 1;
	while (!run_done(&w))
		__builtin_ia32_pause();
	pthread_join(th, NULL);
	printf("VMM remaps the armed page (mmap MAP_FIXED over it): vCPU run: "
	       "%s, PROD %u, faults %" PRIu64 ": %s\n",
	       va.r ? va.err : "ok", kwk_prod(&w), kwk_events(&w),
	       kwk_events(&w) ? "the service was woken" :
				"the store landed unseen (a missed wake-up)");
	kwk_free(&w);
}

static void print_env(void)
{
	struct stat st;
	FILE *f = fopen("/proc/sys/vm/unprivileged_userfaultfd", "re");
	int v = -1;

	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = -1;
		fclose(f);
	}
	printf("vm.unprivileged_userfaultfd = %d; /dev/userfaultfd %s", v,
	       stat("/dev/userfaultfd", &st) ? "absent" : "mode ");
	if (!stat("/dev/userfaultfd", &st))
		printf("%03o uid %u", st.st_mode & 0777, st.st_uid);
	printf("; running as uid %u\n", getuid());
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		enum kwk_path path;
	} paths[] = {
		{ "uffd-wp", KWK_UFFD },	{ "ro-slot", KWK_SLOT },
		{ "ro-defer", KWK_SLOT_DEFER }, { "ioeventfd", KWK_BELL },
		{ "poll", KWK_POLL },
	};
	struct opts o = {
		.iters = 2000, .gap_us = 100, .idle_s = 1.0, .vcpu_cpu = 1
	};
	char err[256] = "", *only = NULL;
	int kvm_fd, c, r, status = 0;

	while ((c = getopt(argc, argv, "n:g:i:p:ah")) != -1) {
		switch (c) {
		case 'n':
			o.iters = strtoull(optarg, NULL, 0);
			break;
		case 'g':
			o.gap_us = strtoull(optarg, NULL, 0);
			break;
		case 'i':
			o.idle_s = strtod(optarg, NULL);
			break;
		case 'p':
			only = optarg;
			break;
		case 'a':
			o.vcpu_cpu = -1;
			break;
		default:
			fprintf(c == 'h' ? stdout : stderr,
				"usage: kvm-wake-paths [-n TRANSITIONS (2000)] "
				"[-g GAP_US (100)] [-i IDLE_S (1)] "
				"[-p uffd-wp|ro-slot|ro-defer|ioeventfd|poll] [-a]\n"
				"  -a: no pinning (default: the vCPU thread on "
				"CPU 1, the service threads on CPU 0)\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (o.iters < 2 || o.iters > 1000000 || o.idle_s <= 0 ||
	    o.idle_s > 60 || o.gap_us > 1000000) {
		fprintf(stderr, "kvm-wake-paths: bad -n, -g or -i\n");
		return 2;
	}
	r = kvmh_open(&kvm_fd, err, sizeof(err));
	if (r) {
		fprintf(stderr, "kvm-wake-paths: no usable KVM: %s\n", err);
		return KVMB_EXIT_NO_KVM;
	}
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		o.vcpu_cpu = -1;
	if (o.vcpu_cpu >= 0)
		pin_self(0); /* the worker; the uffd thread inherits it */
	o.tick_ns = 1e9 / (double)kvmh_tsc_hz();
	printf("kvm-wake-paths: %" PRIu64 " idle-to-active transitions per "
	       "path, %" PRIu64 " us armed before each, the last after %.1f s "
	       "idle; us, guest rdtsc (store, rt) and host clocks; %s\n",
	       o.iters, o.gap_us, o.idle_s,
	       o.vcpu_cpu >= 0 ? "vCPU on CPU 1, service on CPU 0" :
				 "not pinned");
	print_env();
	printf("%-9s %7s | %8s %8s %8s %8s | %8s | %8s %8s | %8s %8s %8s | "
	       "%9s %9s | %9s\n",
	       "path", "arm50", "store50", "store90", "store99", "storemax",
	       "rt50", "seen50", "awake50", "disarm50", "del50", "add50",
	       "idle-st", "idle-rt", "idle-cpu%");
	for (size_t k = 0; k < sizeof(paths) / sizeof(paths[0]); k++) {
		struct result res;
		bool ok = true;

		if (only && strcmp(only, paths[k].name))
			continue;
		memset(&res, 0, sizeof(res));
		for (int s = 0; s < S_N; s++) {
			res.s[s].v = calloc(o.iters, sizeof(double));
			ok = ok && res.s[s].v;
		}
		r = ok ? measure(kvm_fd, paths[k].path, 0, &o, &res, err,
				 sizeof(err)) :
			 -ENOMEM;
		if (r) {
			fprintf(stderr, "kvm-wake-paths: %s: %s\n",
				paths[k].name, ok ? err : "out of memory");
			status = 1;
		} else {
			printf("%-9s %7.1f | %8.2f %8.2f %8.2f %8.1f | %8.2f | "
			       "%8.2f %8.2f | %8.1f %8.1f %8.1f | %9.2f %9.2f | "
			       "%9.3f\n",
			       paths[k].name, pct(&res.s[S_ARM], 0.5),
			       pct(&res.s[S_STORE], 0.5),
			       pct(&res.s[S_STORE], 0.9),
			       pct(&res.s[S_STORE], 0.99),
			       pct(&res.s[S_STORE], 1.0),
			       pct(&res.s[S_RT], 0.5), pct(&res.s[S_SEEN], 0.5),
			       pct(&res.s[S_AWAKE], 0.5),
			       pct(&res.s[S_DIS], 0.5), pct(&res.s[S_DEL], 0.5),
			       pct(&res.s[S_ADD], 0.5), res.last_store_us,
			       res.last_rt_us, res.idle_cpu * 100);
			if (res.early) {
				fprintf(stderr,
					"kvm-wake-paths: %s: %" PRIu64
					" trapped stores visible before "
					"their event\n",
					paths[k].name, res.early);
				status = 1;
			}
		}
		for (int s = 0; s < S_N; s++)
			free(res.s[s].v);
	}
	if (!only || !strcmp(only, "uffd-wp")) {
		probe_user_mode_only(kvm_fd);
		probe_cross_process(kvm_fd, 0);
		probe_cross_process(kvm_fd, 1);
		probe_cross_process(kvm_fd, 2);
		probe_vmm_remap(kvm_fd);
	}
	if (!only || !strcmp(only, "ioeventfd"))
		probe_slot_ioeventfd(kvm_fd, o.tick_ns);
	close(kvm_fd);
	return status;
}
