/* SPDX-License-Identifier: MIT */
/* smmu-offloadd as a child process; see daemon.h. */
#include "tests/security/daemon.h"

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/harness.h"

#define READY_TIMEOUT_MS 20000

static const char *daemon_bin(void)
{
	const char *p = getenv("SMMU_OFFLOADD");

	if (!p)
		SKIP("SMMU_OFFLOADD not set (run through meson test)");
	return p;
}

void daemon_init(struct daemon *d)
{
	static const char tmpl[] = "/tmp/so-security-XXXXXX";
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(d, 0, sizeof(*d));
	d->pid = -1;
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

void daemon_start(struct daemon *d, const char *const *extra)
{
	const char *argv[32] = { daemon_bin(), "--backend", "sim",
				 "--socket",   d->sock,	    "--log-level",
				 "error" };
	double deadline = t_now() + READY_TIMEOUT_MS / 1000.0;
	unsigned int n = 7;
	char buf[128];
	int pidfd;

	while (extra && *extra && n < 31)
		argv[n++] = *extra++;
	argv[n] = NULL;
	d->pid = fork();
	ASSERT_GE(d->pid, 0);
	if (d->pid == 0) {
		setenv("NOTIFY_SOCKET", d->notify, 1);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	pidfd = (int)syscall(SYS_pidfd_open, d->pid, 0);
	ASSERT_GE(pidfd, 0);
	for (;;) {
		struct pollfd p[2] = { { d->notify_fd, POLLIN, 0 },
				       { pidfd, POLLIN, 0 } };
		int left = (int)((deadline - t_now()) * 1000);
		ssize_t got;

		ASSERT_GT(left, 0);
		ASSERT_GE(poll(p, 2, left), 0);
		if (p[1].revents) {
			close(pidfd);
			FAIL("daemon exited during start-up");
		}
		if (!p[0].revents)
			continue;
		got = recv(d->notify_fd, buf, sizeof(buf) - 1, 0);
		ASSERT_GT(got, 0);
		buf[got] = '\0';
		if (strstr(buf, "READY=1"))
			break;
	}
	close(pidfd);
}

void daemon_kill(struct daemon *d)
{
	int st;

	ASSERT_EQ(kill(d->pid, SIGKILL), 0);
	ASSERT_EQ(waitpid(d->pid, &st, 0), d->pid);
	d->pid = -1;
	ASSERT_TRUE(WIFSIGNALED(st));
}

void daemon_stop(struct daemon *d)
{
	int st;

	ASSERT_EQ(kill(d->pid, SIGTERM), 0);
	ASSERT_EQ(waitpid(d->pid, &st, 0), d->pid);
	d->pid = -1;
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(WEXITSTATUS(st), 0);
}

void daemon_cleanup(struct daemon *d)
{
	if (d->pid > 0) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, NULL, 0);
		d->pid = -1;
	}
	if (d->notify_fd > 0)
		close(d->notify_fd);
	unlink(d->notify);
	unlink(d->sock);
	rmdir(d->dir);
}

int daemon_fds(const struct daemon *d)
{
	char path[64];
	struct dirent *de;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)d->pid);
	dir = opendir(path);
	ASSERT_NONNULL(dir);
	while ((de = readdir(dir)))
		n += de->d_name[0] != '.';
	closedir(dir);
	return n;
}
