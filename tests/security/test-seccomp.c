/* SPDX-License-Identifier: MIT */
/*
 * Does a seccomp allow-list break the io_uring data path? (docs/SECURITY.md,
 * "Hardening".) A child process starts the service (sim backend, the
 * io_uring loop, async issuers), binds a vSMMU, a device and a ring, then
 * installs on *all* its threads (SECCOMP_FILTER_FLAG_TSYNC) a filter that
 * allows only the syscalls in data_path_syscalls[] and traps everything
 * else; then a guest workload runs, the oracle checked after every SYNC.
 * A trapped syscall names itself on stderr and fails the test.
 *
 * So data_path_syscalls[] is the measured list of what the worker and
 * issuer threads need once set up (plus what this test's own VMM side
 * and the sanitizer runtimes use). The filter is raw BPF, the same thing
 * libseccomp would generate; the project does not depend on libseccomp.
 *
 * io_uring operations run in the kernel and are not subject to seccomp at
 * all (POLL_ADD, MSG_RING, ...); only io_uring_enter(2) itself is.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <smmu-offload/ring-prod.h>

#include "cmdq/cmdq.h"
#include "core/core.h"
#include "core/core_test.h"
#include "iommufd/sim.h"
#include "tests/lib/tlib-core.h"

#if defined(__x86_64__)
#define SECCOMP_TEST_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SECCOMP_TEST_ARCH AUDIT_ARCH_AARCH64
#endif

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SECCOMP_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SECCOMP_TEST_SANITIZED 1
#endif
#endif

#define WAIT_MS 20000
#define EXIT_TRAPPED 99

/*
 * Steady state of the worker (io_uring_enter, eventfd read/write, poll
 * for the completion-fd guard, futex for the mailbox), the issuers
 * (ioctl on the kernel backend; the sim sleeps/spins on the clock), the
 * thread CPU-time stats, and malloc.
 */
static const int data_path_syscalls[] = {
#ifdef __NR_poll
	__NR_poll,
#endif
	__NR_io_uring_enter,
	/* Completion signals: an AIO poll that signals the VMM's eventfd
	 * from the kernel (core/signal.c). */
	__NR_io_submit,
	__NR_io_getevents,
	__NR_read,
	__NR_write,
	__NR_ppoll,
	__NR_futex,
	__NR_ioctl,
	__NR_clock_gettime,
	__NR_clock_nanosleep,
	__NR_nanosleep,
	__NR_sched_yield,
	__NR_epoll_wait,
	__NR_epoll_pwait,
	__NR_epoll_ctl,
	__NR_getrusage,
	__NR_mmap,
	__NR_munmap,
	__NR_mprotect,
	__NR_madvise,
	__NR_brk,
	__NR_rt_sigprocmask,
	__NR_rt_sigreturn,
	__NR_gettid,
	__NR_getpid,
	__NR_exit,
	__NR_exit_group,
	/*
	 * Start-up of threads created before the filter: the service starts
	 * its issuer threads asynchronously, and glibc registers rseq and
	 * the robust futex list first thing in each new thread. (A filter
	 * each thread installs on itself would not need these.)
	 */
	__NR_rseq,
	__NR_set_robust_list,
#ifdef SECCOMP_TEST_SANITIZED
	/*
	 * Not the data path: only the sanitizer runtimes of the CI builds
	 * (alternate signal stacks, CPU count, and threads they start).
	 */
	__NR_sigaltstack,
	__NR_sched_getaffinity,
	__NR_clone,
	__NR_clone3,
#endif
};

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	char msg[64];
	int n, nr = si->si_syscall;
	char digits[12];
	int d = 0;

	(void)sig;
	(void)uc;
	/* async-signal-safe: no stdio */
	do {
		digits[d++] = (char)('0' + nr % 10);
		nr /= 10;
	} while (nr && d < 11);
	n = 0;
	memcpy(msg, "# seccomp trapped syscall ", 26);
	n = 26;
	while (d)
		msg[n++] = digits[--d];
	msg[n++] = '\n';
	if (write(2, msg, (size_t)n) < 0)
		_exit(EXIT_TRAPPED);
	_exit(EXIT_TRAPPED);
}

/* The allow-list, on every thread of the process. */
static int install_filter(void)
{
	enum { N = sizeof(data_path_syscalls) / sizeof(data_path_syscalls[0]) };
	struct sock_filter f[N + 6];
	struct sock_fprog prog = { .filter = f };
	unsigned int k = 0;

	f[k++] = (struct sock_filter)BPF_STMT(
		BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
					      SECCOMP_TEST_ARCH, 1, 0);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
					      SECCOMP_RET_KILL_PROCESS);
	f[k++] = (struct sock_filter)BPF_STMT(
		BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
	for (unsigned int i = 0; i < N; i++)
		/* match: jump over the remaining tests to ALLOW */
		f[k++] = (struct sock_filter)BPF_JUMP(
			BPF_JMP | BPF_JEQ | BPF_K,
			(unsigned int)data_path_syscalls[i],
			(unsigned char)(N - i), 0);
	f[k++] =
		(struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
					      SECCOMP_RET_ALLOW);
	prog.len = (unsigned short)k;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
		    SECCOMP_FILTER_FLAG_TSYNC, &prog))
		return -errno;
	return 0;
}

/* The child: returns its exit code; never returns into the harness. */
static int child_main(void)
{
	struct sigaction sa = { .sa_sigaction = on_sigsys,
				.sa_flags = SA_SIGINFO };
	struct iofd_sim_config sim;
	struct core_config cfg = {
		TLIB_CORE_CFG(&sim, 1),
		.loop = CORE_LOOP_URING,
		.issue_mode = CORE_ISSUE_ASYNC,
		.poll_us = 20,
	};
	struct core_service *svc = NULL;
	struct core_vsmmu_spec spec = { .iommufd = -1 };
	struct iofd_viommu *vi;
	struct tlib_ring r;
	uint32_t vs, vdev;

	iofd_sim_config_default(&sim);
	/* BLOCK: the sim sleeps in clock_nanosleep like a blocked ioctl. */
	sim.wait = IOFD_SIM_WAIT_BLOCK;
	if (core_service_new(&cfg, &svc))
		return 2;
	if (strcmp(core_service_loop_name(svc), "io_uring"))
		return 3;
	if (core_vsmmu_create(svc, "smmu0", &spec, &vs) ||
	    core_device_attach(svc, vs, 0x100, 0x8, &vdev))
		return 4;
	vi = core_vsmmu_viommu(svc, vs);
	if (_tlib_ring_new(&r, 6, 0))
		return 5;
	if (_tlib_core_ring_attach(svc, vs, &r))
		return 6;

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL))
		return 7;
	if (install_filter())
		return 8;

	for (int i = 0; i < 300; i++) {
		struct cmdq_tlbi_range rg = { .tg = CMDQ_TG_4K, .ttl = 3 };
		uint64_t va = 0x100000 + 0x1000 * (uint64_t)i;
		struct cmdq_cmd c[2] = {
			cmdq_build_tlbi_nh_va(1, 0, va, true, &rg),
			cmdq_build_cfgi_cd(0x8, 0, true),
		};
		uint32_t sync;

		if (iofd_sim_tlb_fill(vi, 1, va) ||
		    iofd_sim_cd_fill(vi, 0x8, 0))
			return 9;
		if (_tlib_ring_push_sync(&r, c, 2, &sync))
			return 10;
		/* Alternate: sleep on the completion eventfd, or spin. */
		if (ring_prod_wait(&r.p, sync, i % 2 ? 0 : 1000000, WAIT_MS))
			return 11;
		if (iofd_sim_tlb_lookup(vi, 1, va) ||
		    iofd_sim_cd_lookup(vi, 0x8, 0))
			return 12;
	}
	/* Exit without tearing down: close/munmap are not on the list, and
	 * LeakSanitizer (ptrace) must not run under the filter. */
	return 0;
}

TEST_TIMEOUT(io_uring_data_path_under_allow_list, 60)
{
	pid_t pid;
	int st;

#ifndef SECCOMP_TEST_ARCH
	SKIP("no seccomp audit arch for this architecture in the test");
#endif
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(child_main());
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	if (WIFSIGNALED(st))
		FAIL("child killed by signal %d", WTERMSIG(st));
	ASSERT_TRUE(WIFEXITED(st));
	if (WEXITSTATUS(st) == EXIT_TRAPPED)
		FAIL("a syscall outside the allow-list (see above)");
	ASSERT_EQ(WEXITSTATUS(st), 0);
}

TEST_HARNESS_MAIN
