/* SPDX-License-Identifier: MIT */
/* smmu-offloadd as a child process, and other programs; see tlib.h. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/lib/tlib.h"

#define READY_TIMEOUT_MS 20000
#define ARGV_MAX 32

const char *const tlib_daemon_quiet[] = { "--log-level", "error", NULL };

const char *tlib_env(const char *name)
{
	const char *p = getenv(name);

	if (!p)
		SKIP("daemon paths not set (run through meson test)");
	return p;
}

void tlib_daemon_init(struct tlib_daemon *d, const char *const *args)
{
	static const char tmpl[] = "/tmp/so-test-XXXXXX";
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(d, 0, sizeof(*d));
	d->args = args;
	d->pid = -1;
	d->pidfd = -1;
	d->err_fd = -1;
	d->notify_fd = -1;
	_Static_assert(sizeof(tmpl) <= sizeof(d->dir), "dir");
	memcpy(d->dir, tmpl, sizeof(tmpl));
	ASSERT_NONNULL(mkdtemp(d->dir));
	snprintf(d->sock, sizeof(d->sock), "%s/so.sock", d->dir);
	snprintf(d->notify, sizeof(d->notify), "%s/notify", d->dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", d->notify);
	d->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ASSERT_GE(d->notify_fd, 0);
	ASSERT_EQ(bind(d->notify_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
}

/* The child's side of a spawn: environment, stderr, exec. */
static _Noreturn void daemon_exec(const struct tlib_daemon *d,
				  const char *const *argv, int err_w)
{
	setenv("NOTIFY_SOCKET", d->notify, 1);
	if (d->preload)
		setenv("LD_PRELOAD", d->preload, 1);
	if (err_w >= 0) {
		if (d->journal) {
			struct stat st;
			char js[64];

			if (fstat(err_w, &st) < 0)
				_exit(126);
			snprintf(js, sizeof(js), "%llu:%llu",
				 (unsigned long long)st.st_dev,
				 (unsigned long long)st.st_ino);
			setenv("JOURNAL_STREAM", js, 1);
		}
		dup2(err_w, 2);
	}
	execv(argv[0], (char *const *)argv);
	_exit(127);
}

pid_t tlib_daemon_spawn(struct tlib_daemon *d, const char *const *extra)
{
	const char *argv[ARGV_MAX] = { tlib_env("SMMU_OFFLOADD"), "--backend",
				       "sim", "--socket", d->sock };
	unsigned int n = 5;
	int p[2] = { -1, -1 };
	pid_t pid;

	for (const char *const *a = d->args; a && *a; a++) {
		ASSERT_LT(n, ARGV_MAX - 1);
		argv[n++] = *a;
	}
	for (const char *const *a = extra; a && *a; a++) {
		ASSERT_LT(n, ARGV_MAX - 1);
		argv[n++] = *a;
	}
	argv[n] = NULL;
	if (d->capture_log) {
		if (!d->log) {
			d->log_cap = 1 << 16;
			d->log = calloc(1, d->log_cap);
			ASSERT_NONNULL(d->log);
		}
		tlib_close(&d->err_fd);
		d->log_len = 0;
		d->log[0] = '\0';
		ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	}
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		daemon_exec(d, argv, p[1]);
	if (d->capture_log) {
		close(p[1]);
		d->err_fd = p[0];
		ASSERT_EQ(fcntl(d->err_fd, F_SETFL, O_NONBLOCK), 0);
	}
	return pid;
}

/* A READY datagram's STATUS= and the metrics address in it. */
static void daemon_status(struct tlib_daemon *d, const char *msg)
{
	const char *st = strstr(msg, "STATUS="), *m;

	if (!st)
		return;
	snprintf(d->status, sizeof(d->status), "%s", st + 7);
	m = strstr(d->status, "http://");
	if (m) {
		size_t len = strcspn(m + 7, "/");

		ASSERT_LT(len, sizeof(d->metrics));
		memcpy(d->metrics, m + 7, len);
		d->metrics[len] = '\0';
	}
}

void tlib_daemon_start(struct tlib_daemon *d, const char *const *extra)
{
	double deadline = tlib_deadline(READY_TIMEOUT_MS);
	char buf[512];

	/* A restart reuses @d: forget the previous process. */
	tlib_close(&d->pidfd);
	d->status[0] = '\0';
	d->metrics[0] = '\0';
	d->pid = tlib_daemon_spawn(d, extra);
	d->pidfd = (int)syscall(SYS_pidfd_open, d->pid, 0);
	ASSERT_GE(d->pidfd, 0);
	for (;;) {
		struct pollfd p[2] = { { d->notify_fd, POLLIN, 0 },
				       { d->pidfd, POLLIN, 0 } };
		int left = tlib_left_ms(deadline);
		ssize_t n;

		ASSERT_GT(left, 0);
		ASSERT_GE(poll(p, 2, left), 0);
		if (p[1].revents) {
			if (d->capture_log) {
				tlib_daemon_log_read(d);
				FAIL("daemon exited during start-up: %s",
				     d->log);
			}
			FAIL("daemon exited during start-up");
		}
		if (!p[0].revents)
			continue;
		n = recv(d->notify_fd, buf, sizeof(buf) - 1, 0);
		ASSERT_GT(n, 0);
		buf[n] = '\0';
		if (strstr(buf, "READY=1")) {
			daemon_status(d, buf);
			return;
		}
	}
}

int tlib_daemon_exit(struct tlib_daemon *d, const char *const *extra)
{
	pid_t pid = tlib_daemon_spawn(d, extra);
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);

	ASSERT_GE(pidfd, 0);
	for (;;) {
		struct pollfd p[2] = { { d->notify_fd, POLLIN, 0 },
				       { pidfd, POLLIN, 0 } };
		char buf[512];
		ssize_t got;

		ASSERT_GT(poll(p, 2, READY_TIMEOUT_MS), 0);
		if (p[1].revents)
			break;
		got = recv(d->notify_fd, buf, sizeof(buf) - 1, 0);
		ASSERT_GT(got, 0);
		buf[got] = '\0';
		if (strstr(buf, "READY=1")) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			close(pidfd);
			FAIL("the daemon started where it must refuse to");
		}
	}
	close(pidfd);
	return tlib_wait_status(pid);
}

int tlib_wait_status(pid_t pid)
{
	int st;

	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	return st;
}

int tlib_daemon_wait(struct tlib_daemon *d)
{
	int st;

	ASSERT_GT(d->pid, 0);
	st = tlib_wait_status(d->pid);
	d->pid = -1;
	/* Reaped: the pidfd has nothing more to say (and fd counts of the
	 * test must not see it). */
	tlib_close(&d->pidfd);
	return st;
}

void tlib_daemon_stop(struct tlib_daemon *d)
{
	int st;

	ASSERT_GT(d->pid, 0);
	ASSERT_EQ(kill(d->pid, SIGTERM), 0);
	st = tlib_daemon_wait(d);
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(WEXITSTATUS(st), 0);
}

void tlib_daemon_kill(struct tlib_daemon *d)
{
	int st;

	ASSERT_GT(d->pid, 0);
	ASSERT_EQ(kill(d->pid, SIGKILL), 0);
	st = tlib_daemon_wait(d);
	ASSERT_TRUE(WIFSIGNALED(st));
}

void tlib_daemon_cleanup(struct tlib_daemon *d)
{
	if (d->pid > 0) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, NULL, 0);
		d->pid = -1;
	}
	tlib_close(&d->pidfd);
	tlib_close(&d->err_fd);
	tlib_close(&d->notify_fd);
	unlink(d->notify);
	unlink(d->sock);
	rmdir(d->dir);
	free(d->log);
	d->log = NULL;
}

int tlib_daemon_fds(const struct tlib_daemon *d)
{
	return tlib_fds(d->pid);
}

bool tlib_daemon_log_read(struct tlib_daemon *d)
{
	ASSERT_GE(d->err_fd, 0);
	for (;;) {
		ssize_t n;

		if (d->log_len + 1 == d->log_cap) {
			d->log_cap *= 2;
			d->log = realloc(d->log, d->log_cap);
			ASSERT_NONNULL(d->log);
		}
		n = read(d->err_fd, d->log + d->log_len,
			 d->log_cap - 1 - d->log_len);
		if (n < 0 && errno == EAGAIN)
			return true;
		ASSERT_GE(n, 0);
		if (n == 0)
			return false;
		d->log_len += (size_t)n;
		d->log[d->log_len] = '\0';
	}
}

bool tlib_daemon_log_wait(struct tlib_daemon *d, const char *s, int timeout_ms)
{
	double deadline = tlib_deadline(timeout_ms);

	for (;;) {
		struct pollfd p = { d->err_fd, POLLIN, 0 };
		int left;

		if (!tlib_daemon_log_read(d))
			return strstr(d->log, s) != NULL;
		if (strstr(d->log, s))
			return true;
		left = tlib_left_ms(deadline);
		if (left <= 0)
			return false;
		ASSERT_GE(poll(&p, 1, left), 0);
	}
}

bool tlib_daemon_log_more(struct tlib_daemon *d, double deadline)
{
	size_t before = d->log_len;

	for (;;) {
		struct pollfd p = { d->err_fd, POLLIN, 0 };
		int left = tlib_left_ms(deadline);
		bool open;

		if (left <= 0)
			return false;
		ASSERT_GE(poll(&p, 1, left), 0);
		open = tlib_daemon_log_read(d);
		if (d->log_len > before)
			return true;
		if (!open)
			return false;
	}
}

int tlib_run(const char *const *argv, char *out, size_t size)
{
	size_t got = 0;
	int p[2], st;
	pid_t pid;

	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		dup2(p[1], 1);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		ssize_t r = read(p[0], out + got, size - 1 - got);

		ASSERT_GE(r, 0);
		if (r == 0)
			break;
		got += (size_t)r;
		ASSERT_LT(got, size - 1);
	}
	out[got] = '\0';
	close(p[0]);
	st = tlib_wait_status(pid);
	ASSERT_TRUE(WIFEXITED(st));
	return WEXITSTATUS(st);
}

int tlib_ctl(const char *sock, const char *const *args, char *out, size_t size)
{
	const char *argv[ARGV_MAX] = { tlib_env("SMMU_OFFLOADCTL") };
	unsigned int n = 1;

	if (sock) {
		argv[n++] = "--socket";
		argv[n++] = sock;
	}
	for (; *args; args++) {
		ASSERT_LT(n, ARGV_MAX - 1);
		argv[n++] = *args;
	}
	argv[n] = NULL;
	return tlib_run(argv, out, size);
}
