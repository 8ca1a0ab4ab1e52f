/* SPDX-License-Identifier: MIT */
/*
 * kvm-exit-costs: what a guest pays per notification mechanism on this
 * host, measured inside a KVM guest at CPL3 with rdtsc (bench/kvm/):
 *   mmio-exit   a store to an MMIO address with no memory slot: KVM_EXIT_MMIO
 *               to the vCPU thread, which calls KVM_RUN again
 *   ioeventfd   a store to a KVM_IOEVENTFD address (handled in the kernel;
 *               nobody reads the eventfd)
 *   coalesced   a store to a KVM_REGISTER_COALESCED_MMIO zone, the ring
 *               drained by another host thread
 *   doorbell    a RAM round trip: the guest stores a sequence number, a
 *               host thread spinning on it echoes it into another line,
 *               the guest spins until it sees the echo
 * Each: --runs runs of --iters operations; the median of the runs' mean
 * ns per operation, and the range. Exit status 77 without a usable
 * /dev/kvm (one line on stderr), 1 on failure.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bench/kvm/guest.h"
#include "bench/kvm/kvm-bench.h"
#include "bench/kvm/vmm.h"

/* One measurement: the main thread runs the vCPU; the helper thread (drain
 * or echo) owns only its ring or doorbell side and reads @stop. */
struct ec {
	struct kvmh_vm vm;
	struct kvmh_vcpu c;
	uint8_t *blk; /* the vCPU block in host memory */
	struct kvm_coalesced_mmio_ring *ring; /* coalesced: the shared ring */
	uint32_t ring_max;
	bool stop; /* atomic: helper threads end */
	uint64_t drained;
};

static volatile uint64_t *blk64(struct ec *e, unsigned int off)
{
	return (volatile uint64_t *)(void *)(e->blk + off);
}

static int ec_mmio(void *ctx, struct kvmh_vcpu *c, uint64_t addr, uint8_t *data,
		   uint32_t len, bool is_write)
{
	(void)ctx;
	(void)c;
	(void)data;
	(void)len;
	if (addr == KG_MMIO + KG_MMIO_DONE)
		return KVMH_DONE;
	if (is_write && addr == KG_MMIO + KG_MMIO_PLAIN)
		return KVMH_CONTINUE;
	/* Coalesced ring full: the store arrives as a normal exit. */
	if (is_write && addr == KG_MMIO + KG_MMIO_COALESCED)
		return KVMH_CONTINUE;
	return -EIO;
}

/* Coalesced-MMIO consumer: the kernel publishes `last` after a write
 * barrier and only reads `first`; one consumer. */
static void *ec_drain(void *arg)
{
	struct ec *e = arg;

	/* A_ECSTOP: pairs with R_ECSTOP in ec_run(). */
	while (!__atomic_load_n(&e->stop, __ATOMIC_ACQUIRE)) {
		/* A_LAST: pairs with the kernel's smp_wmb before it
		 * advances ring->last. */
		uint32_t last =
			__atomic_load_n(&e->ring->last, __ATOMIC_ACQUIRE);
		uint32_t first = e->ring->first;

		if (first == last) {
			__builtin_ia32_pause();
			continue;
		}
		while (first != last) {
			first = (first + 1) % e->ring_max;
			e->drained++;
		}
		/* R_FIRST: the slots are free for the kernel again. */
		__atomic_store_n(&e->ring->first, first, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* RAM doorbell: echo every new sequence number. */
static void *ec_echo(void *arg)
{
	struct ec *e = arg;
	uint64_t seen = 0;

	/* A_ECSTOP: pairs with R_ECSTOP in ec_run(). */
	while (!__atomic_load_n(&e->stop, __ATOMIC_ACQUIRE)) {
		/* A_BELL: pairs with the guest's store (x86: in order). */
		uint64_t v =
			__atomic_load_n(blk64(e, KG_V_BELL), __ATOMIC_ACQUIRE);

		if (v != seen) {
			seen = v;
			/* R_ANSWER: the guest spins on it. */
			__atomic_store_n(blk64(e, KG_V_ANSWER), v,
					 __ATOMIC_RELEASE);
		} else {
			__builtin_ia32_pause();
		}
	}
	return NULL;
}

/* One run of program @prog: mean TSC ticks per operation. */
static int ec_run(int kvm_fd, unsigned int prog, uint64_t iters,
		  double *ret_ticks, char *err, size_t errlen)
{
	struct ec e;
	pthread_t th;
	bool helper = false;
	int efd = -1, r;

	memset(&e, 0, sizeof(e));
	r = kvmh_vm_new(&e.vm, kvm_fd, KG_RAM_SIZE, err, errlen);
	if (r)
		goto out_vm;
	r = kvmh_vcpu_new(&e.vm, 0, &e.c, err, errlen);
	if (r)
		goto out_vcpu;
	e.blk = e.vm.ram + KG_VCPU(0);
	*blk64(&e, KG_V_PROG) = prog;
	*blk64(&e, KG_V_ITERS) = iters;
	if (prog == KG_PROG_IOEVENTFD) {
		efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		r = efd < 0 ? -errno :
			      kvmh_ioeventfd(&e.vm, KG_MMIO + KG_MMIO_IOEVENTFD,
					     efd);
	} else if (prog == KG_PROG_COALESCED) {
		long page = sysconf(_SC_PAGESIZE);

		r = kvmh_coalesced_zone(&e.vm, KG_MMIO + KG_MMIO_COALESCED,
					4096);
		e.ring = (void *)((uint8_t *)e.c.run +
				  KVM_COALESCED_MMIO_PAGE_OFFSET * page);
		e.ring_max =
			(uint32_t)(((size_t)page -
				    sizeof(struct kvm_coalesced_mmio_ring)) /
				   sizeof(struct kvm_coalesced_mmio));
		if (!r && pthread_create(&th, NULL, ec_drain, &e) == 0)
			helper = true;
		else if (!r)
			r = -EAGAIN;
	} else if (prog == KG_PROG_DOORBELL) {
		if (pthread_create(&th, NULL, ec_echo, &e) == 0)
			helper = true;
		else
			r = -EAGAIN;
	}
	if (r) {
		snprintf(err, errlen, "setup of program %u: %s", prog,
			 strerror(-r));
		goto out;
	}
	r = kvmh_vcpu_run(&e.c, ec_mmio, &e, err, errlen);
	if (!r && (*blk64(&e, KG_V_CS) & 3) != 3) {
		snprintf(err, errlen, "the guest ran at CPL %u, not 3",
			 (unsigned int)(*blk64(&e, KG_V_CS) & 3));
		r = -EPERM;
	}
	if (!r)
		*ret_ticks =
			(double)(*blk64(&e, KG_V_T1) - *blk64(&e, KG_V_T0)) /
			(double)iters;
out:
	if (helper) {
		/* R_ECSTOP: pairs with the helpers' A_ECSTOP. */
		__atomic_store_n(&e.stop, true, __ATOMIC_RELEASE);
		pthread_join(th, NULL);
	}
	if (efd >= 0)
		close(efd);
out_vcpu:
	kvmh_vcpu_free(&e.c);
out_vm:
	kvmh_vm_free(&e.vm);
	return r;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name, *what;
		unsigned int prog;
	} progs[] = {
		{ "mmio-exit", "MMIO store -> KVM_EXIT_MMIO -> KVM_RUN",
		  KG_PROG_MMIO_WRITE },
		{ "ioeventfd", "MMIO store to a KVM_IOEVENTFD address",
		  KG_PROG_IOEVENTFD },
		{ "coalesced", "MMIO store to a coalesced-MMIO zone",
		  KG_PROG_COALESCED },
		{ "doorbell", "RAM doorbell round trip (host thread spins)",
		  KG_PROG_DOORBELL },
	};
	uint64_t iters = 5000, runs = 5, hz;
	char err[256] = "";
	int kvm_fd, c, r;

	while ((c = getopt(argc, argv, "n:r:h")) != -1) {
		switch (c) {
		case 'n':
			iters = strtoull(optarg, NULL, 0);
			break;
		case 'r':
			runs = strtoull(optarg, NULL, 0);
			break;
		default:
			fprintf(c == 'h' ? stdout : stderr,
				"usage: kvm-exit-costs [-n ITERS (5000)] "
				"[-r RUNS (5)]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (!iters || !runs || runs > 99 || iters > 100000000) {
		fprintf(stderr, "kvm-exit-costs: bad -n or -r\n");
		return 2;
	}
	r = kvmh_open(&kvm_fd, err, sizeof(err));
	if (r) {
		fprintf(stderr, "kvm-exit-costs: no usable KVM: %s\n", err);
		return KVMB_EXIT_NO_KVM;
	}
	hz = kvmh_tsc_hz();
	printf("kvm-exit-costs: guest at CPL3, %" PRIu64 " ops x %" PRIu64
	       " runs each, TSC %.3f GHz; ns per op (guest rdtsc)\n",
	       iters, runs, (double)hz / 1e9);
	printf("%-10s %10s %10s %10s  %s\n", "mechanism", "median", "min",
	       "max", "what");
	for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		double ns[100];

		for (uint64_t k = 0; k < runs; k++) {
			double ticks = 0;

			r = ec_run(kvm_fd, progs[i].prog, iters, &ticks, err,
				   sizeof(err));
			if (r) {
				fprintf(stderr, "kvm-exit-costs: %s: %s\n",
					progs[i].name, err);
				close(kvm_fd);
				return 1;
			}
			ns[k] = ticks * 1e9 / (double)hz;
		}
		qsort(ns, runs, sizeof(ns[0]), cmp_double);
		printf("%-10s %10.1f %10.1f %10.1f  %s\n", progs[i].name,
		       ns[runs / 2], ns[0], ns[runs - 1], progs[i].what);
	}
	close(kvm_fd);
	return 0;
}
