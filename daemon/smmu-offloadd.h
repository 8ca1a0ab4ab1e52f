/* SPDX-License-Identifier: MIT */
/*
 * smmu-offloadd internals: the options (command line and config file,
 * smmu-offloadd-opts.c) and the daemon's logging (smmu-offloadd.c).
 * Everything here runs on the main thread, before and while it serves.
 */
#ifndef SMMU_OFFLOAD_DAEMON_SMMU_OFFLOADD_H
#define SMMU_OFFLOAD_DAEMON_SMMU_OFFLOADD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/core.h"
#include "rpc/server.h"

/*
 * Shutdown bound: the connections' teardown waits at most one ctl-timeout
 * per stuck worker (then calls to it fail fast) and core_service_free()
 * one more; a watchdog ends the process at twice the timeout plus this
 * slack whatever happens, so SIGTERM always completes (docs/OPERATIONS.md).
 */
#define SHUTDOWN_SLACK_S 5

/**
 * struct daemon_opts - everything the options set. Owned by main().
 * Strings point into argv or into strdup()ed config file values (kept
 * until exit: opts_free() frees them).
 */
struct daemon_opts {
	const char *smmus[CORE_MAX_HSMMU];
	unsigned int n_smmus;
	struct core_config core;
	const char *socket;
	const char *admin_socket; /* NULL: <socket>.admin; "none": no socket */
	mode_t socket_mode;
	uid_t allow_uids[RPC_MAX_ALLOW];
	unsigned int n_allow_uids;
	gid_t allow_gids[RPC_MAX_ALLOW];
	unsigned int n_allow_gids;
	bool allow_overflow_ids;
	bool overflow_by_name; /* an allow-uid/gid name resolved to it */
	unsigned int max_clients, max_clients_per_uid, hello_timeout_s;
	unsigned int max_vsmmus, max_rings, max_devices;
	int log_level;
	const char *metrics; /* listen address, NULL = no endpoint */
	uint32_t log_burst; /* rate-limited classes: messages per interval */
	uint64_t log_interval_ns;
	char *owned[256]; /* strdup()ed config values to free */
	unsigned int n_owned;
};

/* One line on stderr (or the journal) if @level passes the log level. */
void log_msg(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The level log_msg() filters at (syslog numbering). */
void log_set_level(int level);

/**
 * opts_parse() - the config file (--config, read first), then the command
 * line over it, then their consistency. @admin_buf receives the derived
 * admin socket path (<socket>.admin) when none is given; o->admin_socket
 * points to it then, or is NULL for "none".
 * Return: 0 to run; 1 when --help/--version printed (exit 0); -EINVAL on a
 * usage or config error, already logged (exit 2).
 */
int opts_parse(struct daemon_opts *o, int argc, char **argv, char *admin_buf,
	       size_t size);
/* Free the strdup()ed config values. */
void opts_free(struct daemon_opts *o);

#endif
