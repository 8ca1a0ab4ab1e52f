/* SPDX-License-Identifier: MIT */
/*
 * smmu-offloadd as a child process for the security tests: started on a
 * temporary socket with the sim backend, readiness by the NOTIFY_SOCKET
 * protocol (no polling on time). Binary path from $SMMU_OFFLOADD (set by
 * meson). Every function ASSERTs: call from a test body (harness.h).
 * Thread context: the test's main thread.
 */
#ifndef SMMU_OFFLOAD_TESTS_SECURITY_DAEMON_H
#define SMMU_OFFLOAD_TESTS_SECURITY_DAEMON_H

#include <sys/types.h>

struct daemon {
	char dir[64];
	char sock[96];
	char notify[96];
	pid_t pid; /* -1 when not running */
	int notify_fd;
};

/* Temporary directory, socket path and the notify socket. */
void daemon_init(struct daemon *d);
/* fork+exec with --backend sim plus @extra (NULL-terminated, may be
 * NULL), wait for READY=1; fails the test if the daemon exits first. */
void daemon_start(struct daemon *d, const char *const *extra);
/* SIGKILL and reap. */
void daemon_kill(struct daemon *d);
/* SIGTERM; the daemon must drain and exit 0 (under ASan: no leak). */
void daemon_stop(struct daemon *d);
/* Kill if still running, remove the temporary files. */
void daemon_cleanup(struct daemon *d);
/* Open fds of the running daemon (/proc/PID/fd). */
int daemon_fds(const struct daemon *d);

#endif
