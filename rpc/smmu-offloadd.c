/* SPDX-License-Identifier: MIT */
/*
 * smmu-offloadd: the service daemon. Parses options (command line and an
 * optional key=value config file), starts the core service, serves the
 * control socket on a libevent loop in the main thread, and drains
 * everything on SIGTERM/SIGINT. See docs/RPC.md for every option.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "config.h"
#include "core/core.h"
#include "rpc/metrics.h"
#include "rpc/ratelimit.h"
#include "rpc/server.h"
#include <smmu-offload/client.h>

#define MAX_SIM_SMMUS CORE_MAX_HSMMU
#define SIM_NAME_LEN 16

/**
 * struct daemon_opts - everything the options set. Owned by main().
 * Strings point into argv or into strdup()ed config file values (kept
 * until exit: the daemon never frees them, see free_opts()).
 */
struct daemon_opts {
	const char *backend;
	unsigned int sim_smmus;
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

static int log_level = LOG_NOTICE;
/* The kernel's ids for unmapped ones (rpc_overflow_ids()), read first. */
static uid_t overflow_uid = 65534;
static gid_t overflow_gid = 65534;

static const char *const level_names[] = {
	[LOG_EMERG] = "emerg",	   [LOG_ALERT] = "alert",
	[LOG_CRIT] = "crit",	   [LOG_ERR] = "error",
	[LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
	[LOG_INFO] = "info",	   [LOG_DEBUG] = "debug",
};

/* stderr is the journal's stream: prefix "<N>" so journald keeps the
 * priority (journalctl -p warning). Set once in main(). */
static bool log_to_journal;

/* One line per event on stderr: "smmu-offloadd: <level>: <message>". */
static void logv(int level, const char *fmt, va_list ap)
{
	char line[768];

	if (level > log_level)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	if (log_to_journal)
		fprintf(stderr, "<%d>smmu-offloadd: %s: %s\n", level,
			level_names[level], line);
	else
		fprintf(stderr, "smmu-offloadd: %s: %s\n", level_names[level],
			line);
}

/*
 * systemd sets JOURNAL_STREAM=DEV:INODE when stdout/stderr go to the
 * journal; it is inherited, so compare with what stderr really is.
 */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 ||
	    fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

static void log_msg(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	logv(level, fmt, ap);
	va_end(ap);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Messages a guest or a client can trigger at will go through one token
 * bucket per class, so that a hostile guest cannot flood the journal; the
 * next message of the class allowed (or the periodic flush) reports how
 * many were dropped. Default: 10 per minute per class.
 */
enum log_class {
	LOG_CLASS_HALT, /* guest command errors that halt a ring */
	LOG_CLASS_BACKEND, /* invalidation ioctls that failed */
	LOG_CLASS_THROTTLE, /* the per-vSMMU rate limit engaged */
	LOG_CLASS_CLIENT, /* control-socket clients: bad requests, refusals */
	LOG_CLASS_COUNT,
};

#define LOG_DEFAULT_BURST 10
#define LOG_DEFAULT_INTERVAL_NS (60ull * 1000000000u)

static const char *const log_class_names[LOG_CLASS_COUNT] = {
	[LOG_CLASS_HALT] = "halt",
	[LOG_CLASS_BACKEND] = "backend",
	[LOG_CLASS_THROTTLE] = "throttle",
	[LOG_CLASS_CLIENT] = "client",
};

/* Main thread only, like everything that logs here. */
static struct rpc_ratelimit log_limits[LOG_CLASS_COUNT];

static void log_suppressed(enum log_class cls, int level, uint64_t n)
{
	if (n)
		log_msg(level, "%llu \"%s\" message(s) suppressed (rate limit)",
			(unsigned long long)n, log_class_names[cls]);
}

static void log_limited(enum log_class cls, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void log_limited(enum log_class cls, int level, const char *fmt, ...)
{
	uint64_t suppressed;
	va_list ap;

	/* Below the log level nothing is printed: spend no token. */
	if (level > log_level)
		return;
	if (!rpc_ratelimit_allow(&log_limits[cls], now_ns(), &suppressed))
		return;
	log_suppressed(cls, level, suppressed);
	va_start(ap, fmt);
	logv(level, fmt, ap);
	va_end(ap);
}

/* Report drops even when the class went quiet afterwards. */
static void log_flush_suppressed(void)
{
	for (unsigned int i = 0; i < LOG_CLASS_COUNT; i++) {
		uint64_t n;

		if (rpc_ratelimit_flush(&log_limits[i], now_ns(), &n))
			log_suppressed(i, LOG_WARNING, n);
	}
}

static void rpc_log(void *opaque, int level, const char *msg)
{
	(void)opaque;
	/* notice and above are what a client's mistakes produce. */
	if (level <= LOG_NOTICE)
		log_limited(LOG_CLASS_CLIENT, level, "%s", msg);
	else
		log_msg(level, "%s", msg);
}

/* libevent's own messages only at debug level: libraries stay quiet. */
static void event_log(int severity, const char *msg)
{
	if (severity >= EVENT_LOG_WARN)
		log_msg(LOG_DEBUG, "libevent: %s", msg);
}

enum {
	OPT_CONFIG = 0x100,
	OPT_BACKEND,
	OPT_SIM_SMMUS,
	OPT_SMMU,
	OPT_ISSUE_MODE,
	OPT_MAX_INFLIGHT,
	OPT_POLL_US,
	OPT_RING_BUDGET,
	OPT_MAX_BATCH,
	OPT_RATE_LIMIT,
	OPT_RATE_BURST,
	OPT_LOOP,
	OPT_CPUS,
	OPT_MAX_RINGS_TOTAL,
	OPT_SOCKET,
	OPT_SOCKET_MODE,
	OPT_ADMIN_SOCKET,
	OPT_ALLOW_UID,
	OPT_ALLOW_GID,
	OPT_ALLOW_OVERFLOW_ID,
	OPT_MAX_CLIENTS,
	OPT_MAX_CLIENTS_PER_UID,
	OPT_HELLO_TIMEOUT,
	OPT_CLIENT_VSMMUS,
	OPT_CLIENT_RINGS,
	OPT_CLIENT_DEVICES,
	OPT_LOG_LEVEL,
	OPT_SYSFS_ROOT,
	OPT_METRICS,
	OPT_LOG_RATE_LIMIT,
	OPT_HELP,
	OPT_VERSION,
};

static const struct option long_opts[] = {
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "backend", required_argument, NULL, OPT_BACKEND },
	{ "sim-smmus", required_argument, NULL, OPT_SIM_SMMUS },
	{ "smmu", required_argument, NULL, OPT_SMMU },
	{ "issue-mode", required_argument, NULL, OPT_ISSUE_MODE },
	{ "max-inflight", required_argument, NULL, OPT_MAX_INFLIGHT },
	{ "poll-us", required_argument, NULL, OPT_POLL_US },
	{ "ring-budget", required_argument, NULL, OPT_RING_BUDGET },
	{ "max-batch", required_argument, NULL, OPT_MAX_BATCH },
	{ "rate-limit", required_argument, NULL, OPT_RATE_LIMIT },
	{ "rate-burst", required_argument, NULL, OPT_RATE_BURST },
	{ "loop", required_argument, NULL, OPT_LOOP },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "max-rings", required_argument, NULL, OPT_MAX_RINGS_TOTAL },
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "socket-mode", required_argument, NULL, OPT_SOCKET_MODE },
	{ "admin-socket", required_argument, NULL, OPT_ADMIN_SOCKET },
	{ "allow-uid", required_argument, NULL, OPT_ALLOW_UID },
	{ "allow-gid", required_argument, NULL, OPT_ALLOW_GID },
	{ "allow-overflow-id", required_argument, NULL, OPT_ALLOW_OVERFLOW_ID },
	{ "max-clients", required_argument, NULL, OPT_MAX_CLIENTS },
	{ "max-clients-per-uid", required_argument, NULL,
	  OPT_MAX_CLIENTS_PER_UID },
	{ "hello-timeout", required_argument, NULL, OPT_HELLO_TIMEOUT },
	{ "client-max-vsmmus", required_argument, NULL, OPT_CLIENT_VSMMUS },
	{ "client-max-rings", required_argument, NULL, OPT_CLIENT_RINGS },
	{ "client-max-devices", required_argument, NULL, OPT_CLIENT_DEVICES },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "sysfs-root", required_argument, NULL, OPT_SYSFS_ROOT },
	{ "metrics", required_argument, NULL, OPT_METRICS },
	{ "log-rate-limit", required_argument, NULL, OPT_LOG_RATE_LIMIT },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: smmu-offloadd [OPTION]...\n"
		"Offload guest SMMUv3 command queues to per-host-SMMU worker threads.\n"
		"\n"
		"  --config FILE              read KEY=VALUE lines (keys: the long options\n"
		"                             below without \"--\"); the command line wins\n"
		"  --backend kernel|sim|null  iommufd backend (default kernel)\n"
		"  --smmu NAME                serve this host SMMU (repeatable; kernel default:\n"
		"                             every SMMUv3 in /sys/class/iommu)\n"
		"  --sim-smmus N              sim/null: N host SMMUs named sim0..simN-1 (default 1)\n"
		"  --issue-mode inline|async  where the invalidation ioctl runs (default inline)\n"
		"  --max-inflight N           async ioctls in flight per host SMMU (default %u)\n"
		"  --poll-us N                busy-poll time before sleeping (default %u)\n"
		"  --ring-budget N            entries per ring per pass (default %u)\n"
		"  --max-batch N              commands per ioctl (default %u)\n"
		"  --rate-limit N             commands/s per vSMMU, 0 = off (default 0)\n"
		"  --rate-burst N             token bucket depth\n"
		"  --loop auto|io_uring|epoll worker event loop (default auto)\n"
		"  --cpus LIST                pin workers to these CPUs (e.g. 0-1,3)\n"
		"  --max-rings N              rings in total (default: from the fd limit)\n"
		"  --socket PATH              control socket (default %s)\n"
		"  --socket-mode MODE         octal, at most 0666 (default 0660)\n"
		"  --admin-socket PATH|none   socket for smmu-offloadctl: mode 0600, root and\n"
		"                             our own uid only (default SOCKET.admin)\n"
		"  --allow-uid UID|USER       allow this uid (repeatable; root and our own\n"
		"                             uid are always allowed)\n"
		"  --allow-gid GID|GROUP      allow this gid, primary or supplementary\n"
		"                             (repeatable)\n"
		"  --allow-overflow-id yes|no let the kernel's overflow uid (65534: an id\n"
		"                             unmapped in our user namespace) in when it is\n"
		"                             given by number to --allow-uid (default no)\n"
		"  --max-clients N            connections at once (default %u)\n"
		"  --max-clients-per-uid N    of those, from one uid (default half)\n"
		"  --hello-timeout SECS       close connections without a Hello by then\n"
		"                             (default %u)\n"
		"  --client-max-vsmmus N      vSMMUs per connection (default %u)\n"
		"  --client-max-rings N       rings per connection (default %u)\n"
		"  --client-max-devices N     devices per connection (default %u)\n"
		"  --log-level LEVEL          error|warning|notice|info|debug (default notice)\n"
		"  --log-rate-limit N/SECS    guest- and client-triggered messages: at most N\n"
		"                             per SECS seconds per class (default 10/60)\n"
		"  --metrics [ADDR:]PORT      serve Prometheus metrics on http://ADDR:PORT/metrics\n"
		"                             (ADDR default 127.0.0.1; [::1]:PORT for IPv6;\n"
		"                             PORT 0 picks one, logged and sent as STATUS=);\n"
		"                             off by default\n"
		"  --sysfs-root DIR           kernel: the iommu class directory to find host\n"
		"                             SMMUs in (default /sys/class/iommu)\n"
		"  --help, --version\n"
		"\n"
		"Exit status: 0 after SIGTERM/SIGINT (everything drained), 1 on a start-up\n"
		"error, 2 on a usage error.\n",
		CORE_DEFAULT_INFLIGHT, CORE_DEFAULT_POLL_US,
		CORE_DEFAULT_BUDGET, CORE_DEFAULT_MAX_BATCH,
		SMMU_CLIENT_DEFAULT_SOCKET, RPC_DEFAULT_MAX_CLIENTS,
		RPC_DEFAULT_HELLO_TIMEOUT_MS / 1000, RPC_DEFAULT_MAX_VSMMUS,
		RPC_DEFAULT_MAX_RINGS, RPC_DEFAULT_MAX_DEVICES);
}

static int parse_uint(const char *s, unsigned long long max,
		      unsigned long long *ret)
{
	unsigned long long v;
	char *end;

	if (!*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int parse_uint32(const char *s, unsigned int *ret)
{
	unsigned long long v;
	int r = parse_uint(s, UINT_MAX, &v);

	if (r)
		return r;
	*ret = (unsigned int)v;
	return 0;
}

/* Apply one option; @src names where it came from, for messages. */
static int apply_opt(struct daemon_opts *o, int id, const char *val,
		     const char *src)
{
	unsigned long long v;
	int r = 0;

	switch (id) {
	case OPT_BACKEND:
		if (strcmp(val, "kernel") && strcmp(val, "sim") &&
		    strcmp(val, "null"))
			r = -EINVAL;
		o->backend = val;
		break;
	case OPT_SIM_SMMUS:
		r = parse_uint(val, MAX_SIM_SMMUS, &v);
		if (!r && v == 0)
			r = -EINVAL;
		o->sim_smmus = (unsigned int)v;
		break;
	case OPT_SMMU:
		if (o->n_smmus == CORE_MAX_HSMMU || !*val ||
		    strlen(val) >= IOFD_NAME_MAX)
			r = -EINVAL;
		else
			o->smmus[o->n_smmus++] = val;
		break;
	case OPT_ISSUE_MODE:
		if (!strcmp(val, "async"))
			o->core.issue_mode = CORE_ISSUE_ASYNC;
		else if (!strcmp(val, "inline"))
			o->core.issue_mode = CORE_ISSUE_INLINE;
		else
			r = -EINVAL;
		break;
	case OPT_MAX_INFLIGHT:
		r = parse_uint32(val, &o->core.max_inflight);
		break;
	case OPT_POLL_US:
		r = parse_uint32(val, &o->core.poll_us);
		break;
	case OPT_RING_BUDGET:
		r = parse_uint32(val, &o->core.ring_budget);
		break;
	case OPT_MAX_BATCH:
		r = parse_uint32(val, &o->core.max_batch);
		break;
	case OPT_RATE_LIMIT:
		r = parse_uint(val, UINT64_MAX, &v);
		o->core.rate_cmds = v;
		break;
	case OPT_RATE_BURST:
		r = parse_uint32(val, &o->core.rate_burst);
		break;
	case OPT_LOOP:
		if (!strcmp(val, "auto"))
			o->core.loop = CORE_LOOP_AUTO;
		else if (!strcmp(val, "io_uring"))
			o->core.loop = CORE_LOOP_URING;
		else if (!strcmp(val, "epoll"))
			o->core.loop = CORE_LOOP_EPOLL;
		else
			r = -EINVAL;
		break;
	case OPT_CPUS:
		o->core.cpus = val;
		break;
	case OPT_MAX_RINGS_TOTAL:
		r = parse_uint32(val, &o->core.max_rings);
		break;
	case OPT_SOCKET:
		if (!*val ||
		    strlen(val) >= sizeof(((struct sockaddr_un *)0)->sun_path))
			r = -EINVAL;
		o->socket = val;
		break;
	case OPT_SOCKET_MODE:
		r = parse_uint(val, 07777, &v);
		/* No execute or special bits; at most rw for everyone. */
		if (!r && (v & ~0666ull))
			r = -EINVAL;
		if (!r && v == 0)
			r = -EINVAL;
		o->socket_mode = (mode_t)v;
		break;
	case OPT_ALLOW_UID: {
		struct passwd *pw;
		unsigned int u;

		if (o->n_allow_uids == RPC_MAX_ALLOW) {
			r = -E2BIG;
		} else if (!parse_uint32(val, &u)) {
			o->allow_uids[o->n_allow_uids++] = u;
		} else if ((pw = getpwnam(val))) {
			o->allow_uids[o->n_allow_uids++] = pw->pw_uid;
			o->overflow_by_name |= pw->pw_uid == overflow_uid;
		} else {
			r = -ENOENT;
		}
		break;
	}
	case OPT_ALLOW_GID: {
		struct group *gr;
		unsigned int g;

		if (o->n_allow_gids == RPC_MAX_ALLOW) {
			r = -E2BIG;
		} else if (!parse_uint32(val, &g)) {
			o->allow_gids[o->n_allow_gids++] = g;
		} else if ((gr = getgrnam(val))) {
			o->allow_gids[o->n_allow_gids++] = gr->gr_gid;
			o->overflow_by_name |= gr->gr_gid == overflow_gid;
		} else {
			r = -ENOENT;
		}
		break;
	}
	case OPT_ADMIN_SOCKET:
		if (!*val ||
		    strlen(val) >= sizeof(((struct sockaddr_un *)0)->sun_path))
			r = -EINVAL;
		o->admin_socket = val;
		break;
	case OPT_ALLOW_OVERFLOW_ID:
		if (!strcmp(val, "yes"))
			o->allow_overflow_ids = true;
		else if (!strcmp(val, "no"))
			o->allow_overflow_ids = false;
		else
			r = -EINVAL;
		break;
	case OPT_MAX_CLIENTS:
		r = parse_uint32(val, &o->max_clients);
		break;
	case OPT_MAX_CLIENTS_PER_UID:
		r = parse_uint32(val, &o->max_clients_per_uid);
		if (!r && !o->max_clients_per_uid)
			r = -EINVAL;
		break;
	case OPT_HELLO_TIMEOUT:
		r = parse_uint32(val, &o->hello_timeout_s);
		if (!r && (!o->hello_timeout_s || o->hello_timeout_s > 3600))
			r = -EINVAL;
		break;
	case OPT_CLIENT_VSMMUS:
		r = parse_uint32(val, &o->max_vsmmus);
		break;
	case OPT_CLIENT_RINGS:
		r = parse_uint32(val, &o->max_rings);
		break;
	case OPT_CLIENT_DEVICES:
		r = parse_uint32(val, &o->max_devices);
		break;
	case OPT_SYSFS_ROOT:
		o->core.backend.sysfs_root = val;
		break;
	case OPT_METRICS: {
		struct sockaddr_storage ss;
		socklen_t sl;

		r = rpc_metrics_parse_addr(val, &ss, &sl);
		o->metrics = val;
		break;
	}
	case OPT_LOG_RATE_LIMIT: {
		unsigned long long n = 0, secs = 0;
		char buf[64], *slash;

		snprintf(buf, sizeof(buf), "%s", val);
		slash = strchr(buf, '/');
		if (!slash) {
			r = -EINVAL;
			break;
		}
		*slash = '\0';
		r = parse_uint(buf, UINT32_MAX, &n);
		if (!r)
			r = parse_uint(slash + 1, 86400, &secs);
		if (!r && (!n || !secs || n > secs * 1000000000ull))
			r = -EINVAL;
		o->log_burst = (uint32_t)n;
		o->log_interval_ns = secs * 1000000000ull;
		break;
	}
	case OPT_LOG_LEVEL:
		if (!strcmp(val, "error"))
			o->log_level = LOG_ERR;
		else if (!strcmp(val, "warning"))
			o->log_level = LOG_WARNING;
		else if (!strcmp(val, "notice"))
			o->log_level = LOG_NOTICE;
		else if (!strcmp(val, "info"))
			o->log_level = LOG_INFO;
		else if (!strcmp(val, "debug"))
			o->log_level = LOG_DEBUG;
		else
			r = -EINVAL;
		break;
	default:
		r = -EINVAL;
	}
	if (r) {
		const struct option *opt = long_opts;

		while (opt->name && opt->val != id)
			opt++;
		log_msg(LOG_ERR, "%s: invalid value \"%s\" for %s", src, val,
			opt->name ? opt->name : "?");
	}
	return r;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
			 e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* KEY=VALUE lines; '#' starts a comment line; blank lines ignored. */
static int read_config(struct daemon_opts *o, const char *path)
{
	char line[512], where[PATH_MAX + 32];
	unsigned int lineno = 0;
	FILE *f;
	int r = 0;

	f = fopen(path, "re");
	if (!f) {
		log_msg(LOG_ERR, "cannot open config file %s: %s", path,
			strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		const struct option *opt;
		char *key, *val, *eq;

		lineno++;
		snprintf(where, sizeof(where), "%s:%u", path, lineno);
		key = trim(line);
		if (!*key || *key == '#')
			continue;
		eq = strchr(key, '=');
		if (!eq) {
			log_msg(LOG_ERR, "%s: expected KEY=VALUE", where);
			r = -EINVAL;
			break;
		}
		*eq = '\0';
		key = trim(key);
		val = trim(eq + 1);
		for (opt = long_opts; opt->name; opt++)
			if (!strcmp(opt->name, key))
				break;
		if (!opt->name || opt->has_arg != required_argument ||
		    opt->val == OPT_CONFIG) {
			log_msg(LOG_ERR, "%s: unknown key \"%s\"", where, key);
			r = -EINVAL;
			break;
		}
		if (o->n_owned == sizeof(o->owned) / sizeof(o->owned[0])) {
			log_msg(LOG_ERR, "%s: too many lines", where);
			r = -E2BIG;
			break;
		}
		o->owned[o->n_owned] = strdup(val);
		if (!o->owned[o->n_owned]) {
			r = -ENOMEM;
			break;
		}
		r = apply_opt(o, opt->val, o->owned[o->n_owned++], where);
		if (r)
			break;
	}
	fclose(f);
	return r;
}

static void free_opts(struct daemon_opts *o)
{
	for (unsigned int i = 0; i < o->n_owned; i++)
		free(o->owned[i]);
}

/* Kernel backend without --smmu: every SMMUv3 in /sys/class/iommu. */
static int discover_smmus(struct daemon_opts *o, char names[][IOFD_NAME_MAX])
{
	size_t n;
	int r;

	r = iofd_discover(o->core.backend.sysfs_root, names, CORE_MAX_HSMMU,
			  &n);
	if (r)
		return r == -ENOENT ? 0 : r;
	if (n > CORE_MAX_HSMMU)
		n = CORE_MAX_HSMMU;
	for (size_t i = 0; i < n; i++)
		o->smmus[o->n_smmus++] = names[i];
	return (int)n;
}

/*
 * systemd readiness: a datagram to $NOTIFY_SOCKET (a path, or "@name"
 * for the abstract namespace). No libsystemd needed.
 */
static void notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;
	size_t n;
	int s;

	if (!path || !*path)
		return;
	n = strlen(path);
	if (n >= sizeof(sa.sun_path) || (path[0] != '/' && path[0] != '@')) {
		log_msg(LOG_WARNING, "ignoring NOTIFY_SOCKET=%s", path);
		return;
	}
	memcpy(sa.sun_path, path, n);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
			  (path[0] == '/'));
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || sendto(s, state, strlen(state), MSG_NOSIGNAL,
			    (struct sockaddr *)&sa, len) < 0)
		log_msg(LOG_WARNING, "notify %s: %s", path, strerror(errno));
	if (s >= 0)
		close(s);
}

/* Create the socket's directory (one level) if it is missing. */
static int make_socket_dir(const char *path)
{
	char dir[PATH_MAX];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/*
 * Guest-triggered events the workers only count (core never logs): a
 * timer on the main loop compares each vSMMU's counters with the last
 * look and logs the differences, rate-limited per class.
 */
#define WATCH_INTERVAL_S 1

struct vs_seen {
	uint32_t id;
	uint64_t halts[4];
	uint64_t backend_errors, throttled;
};

/* Owned by the main thread. */
struct watch {
	struct core_service *svc;
	struct event *ev;
	struct vs_seen *seen; /* sorted by id */
	uint32_t n_seen;
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static const struct vs_seen *seen_find(const struct watch *w, uint32_t id)
{
	struct vs_seen key = { .id = id };

	/* bsearch()'s base must not be NULL, even for 0 elements. */
	if (!w->n_seen)
		return NULL;
	return bsearch(&key, w->seen, w->n_seen, sizeof(*w->seen), cmp_u32);
}

static void watch_vsmmu(const struct core_vsmmu_stats *st,
			const struct vs_seen *prev)
{
	static const struct vs_seen zero;
	uint64_t d[4], dsum = 0, dbe, dth;

	if (!prev)
		prev = &zero;
	for (unsigned int k = 0; k < 4; k++) {
		d[k] = st->halts[k] - prev->halts[k];
		dsum += d[k];
	}
	if (dsum)
		log_limited(
			LOG_CLASS_HALT, LOG_WARNING,
			"vSMMU %u on %s: %llu ring halt(s) on guest command errors (ill %llu, abt %llu, atc_inv_sync %llu, other %llu)",
			st->id, st->hsmmu, (unsigned long long)dsum,
			(unsigned long long)d[0], (unsigned long long)d[1],
			(unsigned long long)d[2], (unsigned long long)d[3]);
	dbe = st->backend_errors - prev->backend_errors;
	if (dbe)
		log_limited(LOG_CLASS_BACKEND, LOG_WARNING,
			    "vSMMU %u on %s: %llu invalidation ioctl(s) failed",
			    st->id, st->hsmmu, (unsigned long long)dbe);
	dth = st->throttled - prev->throttled;
	if (dth)
		log_limited(
			LOG_CLASS_THROTTLE, LOG_INFO,
			"vSMMU %u on %s: rate limit engaged in %llu pass(es)",
			st->id, st->hsmmu, (unsigned long long)dth);
}

static void on_watch(evutil_socket_t fd, short what, void *arg)
{
	struct watch *w = arg;
	struct vs_seen *next = NULL;
	uint32_t *ids = NULL, n = 0, max = 0, k = 0;

	(void)fd;
	(void)what;
	/* vSMMUs come and go between calls: retry until the list fits. */
	for (;;) {
		if (core_list_vsmmus(w->svc, ids, max, &n))
			goto out;
		if (n <= max)
			break;
		free(ids);
		max = n + 16;
		ids = calloc(max, sizeof(*ids));
		if (!ids)
			goto out;
	}
	if (n)
		qsort(ids, n, sizeof(*ids), cmp_u32);
	next = calloc(n ? n : 1, sizeof(*next));
	if (!next)
		goto out;
	for (uint32_t i = 0; i < n; i++) {
		struct core_vsmmu_stats st;

		if (core_vsmmu_stats(w->svc, ids[i], &st))
			continue;
		watch_vsmmu(&st, seen_find(w, ids[i]));
		next[k] = (struct vs_seen){
			.id = st.id,
			.backend_errors = st.backend_errors,
			.throttled = st.throttled,
		};
		memcpy(next[k].halts, st.halts, sizeof(st.halts));
		k++;
	}
	free(w->seen);
	w->seen = next;
	w->n_seen = k;
out:
	free(ids);
	log_flush_suppressed();
}

/* Metrics of the daemon itself, after the service's. */
static void metrics_extra(void *opaque, struct evbuffer *out)
{
	(void)opaque;
	evbuffer_add_printf(
		out,
		"# HELP smmu_offload_log_messages_suppressed_total Log messages dropped by the rate limit, by class.\n"
		"# TYPE smmu_offload_log_messages_suppressed_total counter\n");
	for (unsigned int i = 0; i < LOG_CLASS_COUNT; i++)
		evbuffer_add_printf(
			out,
			"smmu_offload_log_messages_suppressed_total{class=\"%s\"} %llu\n",
			log_class_names[i],
			(unsigned long long)log_limits[i].suppressed_total);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct event_base *base = arg;

	(void)what;
	log_msg(LOG_NOTICE, "%s: draining and exiting",
		sig == SIGTERM ? "SIGTERM" : "SIGINT");
	event_base_loopbreak(base);
}

/*
 * Consistency of the client options, and the admin socket's path into
 * @buf. The overflow uid/gid is what an id unmapped in our user namespace
 * reads as: allowing it allows every such peer, so it takes the opt-in
 * and a number (a name like "nobody" resolving to it is refused).
 * Return: 0, or -EINVAL after logging why.
 */
static int check_client_opts(struct daemon_opts *o, char *buf, size_t size)
{
	bool listed = false;
	unsigned int max = o->max_clients ? o->max_clients :
					    RPC_DEFAULT_MAX_CLIENTS;

	for (unsigned int i = 0; i < o->n_allow_uids; i++)
		listed |= o->allow_uids[i] == overflow_uid;
	for (unsigned int i = 0; i < o->n_allow_gids; i++)
		listed |= o->allow_gids[i] == overflow_gid;
	if (o->overflow_by_name) {
		log_msg(LOG_ERR,
			"an allow-uid/allow-gid name is the overflow id (%u/%u, what ids unmapped in this user namespace read as): give it by number with allow-overflow-id = yes, or not at all",
			(unsigned int)overflow_uid, (unsigned int)overflow_gid);
		return -EINVAL;
	}
	if (listed && !o->allow_overflow_ids) {
		log_msg(LOG_ERR,
			"allow-uid/allow-gid names the overflow id (%u/%u, what ids unmapped in this user namespace read as): add allow-overflow-id = yes to mean it",
			(unsigned int)overflow_uid, (unsigned int)overflow_gid);
		return -EINVAL;
	}
	if (o->max_clients_per_uid > max) {
		log_msg(LOG_ERR,
			"max-clients-per-uid %u exceeds max-clients %u",
			o->max_clients_per_uid, max);
		return -EINVAL;
	}
	if (o->admin_socket && !strcmp(o->admin_socket, "none")) {
		o->admin_socket = NULL;
		return 0;
	}
	if (!o->admin_socket) {
		if ((size_t)snprintf(buf, size, "%s.admin", o->socket) >=
		    size) {
			log_msg(LOG_ERR,
				"%s.admin is too long for a socket: set admin-socket",
				o->socket);
			return -EINVAL;
		}
		o->admin_socket = buf;
	}
	if (!strcmp(o->admin_socket, o->socket)) {
		log_msg(LOG_ERR, "admin-socket and socket are the same path");
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static char sim_names[MAX_SIM_SMMUS][SIM_NAME_LEN];
	static char sys_names[CORE_MAX_HSMMU][IOFD_NAME_MAX];
	struct daemon_opts o = {
		.backend = "kernel",
		.socket = SMMU_CLIENT_DEFAULT_SOCKET,
		.socket_mode = RPC_DEFAULT_SOCKET_MODE,
		.log_level = LOG_NOTICE,
		.log_burst = LOG_DEFAULT_BURST,
		.log_interval_ns = LOG_DEFAULT_INTERVAL_NS,
	};
	const struct timeval watch_tv = { WATCH_INTERVAL_S, 0 };
	struct event *ev_term = NULL, *ev_int = NULL;
	struct rpc_metrics_config mcfg = { 0 };
	struct rpc_metrics *metrics = NULL;
	struct watch watch = { 0 };
	char ready[RPC_METRICS_ADDR_MAX + 64];
	struct rpc_server_config scfg = { 0 };
	char admin_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct core_service *svc = NULL;
	struct rpc_server *srv = NULL;
	struct event_base *base = NULL;
	const char *config = NULL;
	int c, r, status = 1;

	log_to_journal = stderr_is_journal();
	rpc_overflow_ids(&overflow_uid, &overflow_gid);
	/* The config file first, so that the command line overrides it. */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			config = argv[i + 1];
		else if (!strncmp(argv[i], "--config=", 9))
			config = argv[i] + 9;
	}
	if (config && read_config(&o, config)) {
		free_opts(&o);
		return 2;
	}
	log_level = o.log_level;
	while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		if (c == OPT_HELP) {
			usage(stdout);
			free_opts(&o);
			return 0;
		}
		if (c == OPT_VERSION) {
			printf("smmu-offloadd %s\n", PACKAGE_VERSION);
			free_opts(&o);
			return 0;
		}
		if (c == OPT_CONFIG)
			continue;
		if (c == '?' || apply_opt(&o, c, optarg, "command line")) {
			usage(stderr);
			free_opts(&o);
			return 2;
		}
		log_level = o.log_level;
	}
	if (optind < argc) {
		log_msg(LOG_ERR, "unexpected argument \"%s\"", argv[optind]);
		free_opts(&o);
		return 2;
	}
	if (check_client_opts(&o, admin_path, sizeof(admin_path))) {
		free_opts(&o);
		return 2;
	}

	if (!o.n_smmus) {
		if (!strcmp(o.backend, "kernel")) {
			r = discover_smmus(&o, sys_names);
			if (r < 0) {
				log_msg(LOG_ERR, "reading %s: %s",
					o.core.backend.sysfs_root ?
						o.core.backend.sysfs_root :
						"/sys/class/iommu",
					strerror(-r));
				goto out;
			}
			if (!r) {
				log_msg(LOG_ERR,
					"no SMMUv3 found in %s: name one with --smmu NAME, or use --backend sim",
					o.core.backend.sysfs_root ?
						o.core.backend.sysfs_root :
						"/sys/class/iommu");
				goto out;
			}
		} else {
			unsigned int n = o.sim_smmus ? o.sim_smmus : 1;

			for (unsigned int i = 0; i < n; i++) {
				snprintf(sim_names[i], SIM_NAME_LEN, "sim%u",
					 i);
				o.smmus[o.n_smmus++] = sim_names[i];
			}
		}
	}
	for (unsigned int i = 0; i < LOG_CLASS_COUNT; i++)
		rpc_ratelimit_init(&log_limits[i], o.log_burst,
				   o.log_interval_ns, now_ns());
	o.core.backend.kind = o.backend;
	o.core.hsmmu_names = o.smmus;
	o.core.n_hsmmu = o.n_smmus;

	/* Refuse a busy socket before starting the service. */
	r = rpc_socket_probe(o.socket);
	if (!r && o.admin_socket)
		r = rpc_socket_probe(o.admin_socket);
	if (r == -EADDRINUSE) {
		log_msg(LOG_ERR,
			"another smmu-offloadd is listening on %s%s%s: stop it or use --socket",
			o.socket, o.admin_socket ? " or " : "",
			o.admin_socket ? o.admin_socket : "");
		goto out;
	} else if (r == -ENOTSOCK) {
		log_msg(LOG_ERR, "%s%s%s exists and is not a socket: remove it",
			o.socket, o.admin_socket ? " or " : "",
			o.admin_socket ? o.admin_socket : "");
		goto out;
	}

	/* Replies use MSG_NOSIGNAL; this covers everything else. */
	signal(SIGPIPE, SIG_IGN);
	event_set_log_callback(event_log);

	r = core_service_new(&o.core, &svc);
	if (r) {
		if (r == -ENOENT)
			log_msg(LOG_ERR,
				"a host SMMU was not found (%s backend): check --smmu names",
				o.backend);
		else if ((r == -EPERM || r == -ENOSYS) &&
			 o.core.loop == CORE_LOOP_URING)
			log_msg(LOG_ERR,
				"io_uring is unavailable (%s): use --loop auto or --loop epoll",
				strerror(-r));
		else
			log_msg(LOG_ERR, "cannot start the service: %s",
				strerror(-r));
		goto out;
	}
	if (o.core.loop == CORE_LOOP_AUTO &&
	    !strcmp(core_service_loop_name(svc), "epoll"))
		log_msg(LOG_NOTICE,
			"io_uring unavailable: workers fall back to epoll");

	base = event_base_new();
	if (!base) {
		log_msg(LOG_ERR, "cannot create the event loop");
		goto out;
	}
	ev_term = evsignal_new(base, SIGTERM, on_signal, base);
	ev_int = evsignal_new(base, SIGINT, on_signal, base);
	if (!ev_term || !ev_int || evsignal_add(ev_term, NULL) ||
	    evsignal_add(ev_int, NULL)) {
		log_msg(LOG_ERR, "cannot install signal handlers");
		goto out;
	}

	r = make_socket_dir(o.socket);
	if (r) {
		log_msg(LOG_ERR, "cannot create the directory of %s: %s",
			o.socket, strerror(-r));
		goto out;
	}
	scfg.path = o.socket;
	scfg.admin_path = o.admin_socket;
	scfg.mode = o.socket_mode;
	scfg.allow_uids = o.allow_uids;
	scfg.n_allow_uids = o.n_allow_uids;
	scfg.allow_gids = o.allow_gids;
	scfg.n_allow_gids = o.n_allow_gids;
	scfg.allow_overflow_ids = o.allow_overflow_ids;
	scfg.max_clients = o.max_clients;
	scfg.max_clients_per_uid = o.max_clients_per_uid;
	scfg.hello_timeout_ms = o.hello_timeout_s * 1000;
	scfg.max_vsmmus = o.max_vsmmus;
	scfg.max_rings = o.max_rings;
	scfg.max_devices = o.max_devices;
	scfg.log = rpc_log;
	r = rpc_server_new(base, svc, &scfg, &srv);
	if (r == -EADDRINUSE) {
		log_msg(LOG_ERR,
			"another smmu-offloadd is listening on %s%s%s: stop it or use --socket",
			o.socket, o.admin_socket ? " or " : "",
			o.admin_socket ? o.admin_socket : "");
		goto out;
	} else if (r == -ENOTSOCK) {
		log_msg(LOG_ERR, "%s%s%s exists and is not a socket: remove it",
			o.socket, o.admin_socket ? " or " : "",
			o.admin_socket ? o.admin_socket : "");
		goto out;
	} else if (r) {
		log_msg(LOG_ERR, "cannot listen on %s (admin: %s): %s",
			o.socket, o.admin_socket ? o.admin_socket : "none",
			strerror(-r));
		goto out;
	}

	watch.svc = svc;
	watch.ev = event_new(base, -1, EV_PERSIST, on_watch, &watch);
	if (!watch.ev || event_add(watch.ev, &watch_tv)) {
		log_msg(LOG_ERR, "cannot start the halt watch timer");
		goto out;
	}

	snprintf(ready, sizeof(ready), "STATUS=serving");
	if (o.metrics) {
		char addr[RPC_METRICS_ADDR_MAX];

		mcfg.addr = o.metrics;
		mcfg.srv = srv;
		mcfg.extra = metrics_extra;
		r = rpc_metrics_new(base, svc, &mcfg, &metrics);
		if (r) {
			log_msg(LOG_ERR, "cannot serve metrics on %s: %s",
				o.metrics, strerror(-r));
			goto out;
		}
		r = rpc_metrics_address(metrics, addr, sizeof(addr));
		if (r) {
			log_msg(LOG_ERR, "metrics address: %s", strerror(-r));
			goto out;
		}
		log_msg(LOG_NOTICE, "metrics on http://%s/metrics", addr);
		snprintf(ready, sizeof(ready),
			 "STATUS=serving, metrics on http://%s/metrics", addr);
	}

	log_msg(LOG_NOTICE,
		"ready: %s backend, %u host SMMU(s), %s workers, socket %s, admin socket %s",
		o.backend, o.n_smmus, core_service_loop_name(svc), o.socket,
		o.admin_socket ? o.admin_socket : "none");
	{
		char state[sizeof(ready) + 16];

		snprintf(state, sizeof(state), "READY=1\n%s", ready);
		notify(state);
	}
	if (event_base_dispatch(base) < 0) {
		log_msg(LOG_ERR, "event loop failed");
		goto out;
	}
	notify("STOPPING=1");
	status = 0;
out:
	/* Scrapes and connections first: they call into the service. */
	rpc_metrics_free(metrics);
	if (watch.ev)
		event_free(watch.ev);
	free(watch.seen);
	rpc_server_free(srv);
	core_service_free(svc);
	if (ev_term)
		event_free(ev_term);
	if (ev_int)
		event_free(ev_int);
	if (base)
		event_base_free(base);
	if (!status)
		log_msg(LOG_NOTICE, "stopped");
	free_opts(&o);
	return status;
}
