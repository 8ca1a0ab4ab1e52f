/* SPDX-License-Identifier: MIT */
/*
 * smmu-offloadd's options: the command line, the KEY = VALUE config file
 * (keys are the long options), and the checks across options. Errors are
 * logged here with the file and line; see docs/RPC.md for every option.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>

#include "config.h"
#include "daemon/metrics.h"
#include "daemon/smmu-offloadd.h"
#include <smmu-offload/client.h>

/* The kernel's ids for unmapped ones (rpc_overflow_ids()), read first. */
static uid_t overflow_uid = 65534;
static gid_t overflow_gid = 65534;

enum {
	OPT_CONFIG = 0x100,
	OPT_BACKEND,
	OPT_SIM_SMMUS,
	OPT_SMMU,
	OPT_ISSUE_MODE,
	OPT_MAX_INFLIGHT,
	OPT_POLL_US,
	OPT_VCMDQ_POLL_US,
	OPT_VCMDQ_IDLE_US,
	OPT_RING_BUDGET,
	OPT_MAX_BATCH,
	OPT_RATE_LIMIT,
	OPT_RATE_BURST,
	OPT_LOOP,
	OPT_CPUS,
	OPT_MAX_RINGS_TOTAL,
	OPT_CTL_TIMEOUT,
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
	{ "vcmdq-poll-us", required_argument, NULL, OPT_VCMDQ_POLL_US },
	{ "vcmdq-idle-us", required_argument, NULL, OPT_VCMDQ_IDLE_US },
	{ "ring-budget", required_argument, NULL, OPT_RING_BUDGET },
	{ "max-batch", required_argument, NULL, OPT_MAX_BATCH },
	{ "rate-limit", required_argument, NULL, OPT_RATE_LIMIT },
	{ "rate-burst", required_argument, NULL, OPT_RATE_BURST },
	{ "loop", required_argument, NULL, OPT_LOOP },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "max-rings", required_argument, NULL, OPT_MAX_RINGS_TOTAL },
	{ "ctl-timeout-ms", required_argument, NULL, OPT_CTL_TIMEOUT },
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
		"  --issue-mode auto|inline|async  where the invalidation ioctl runs (default auto:\n"
		"                             inline while host calls are short, async when long)\n"
		"  --max-inflight N           async ioctls in flight per host SMMU (default %u)\n"
		"  --poll-us N                busy-poll time before sleeping (default %u)\n"
		"  --vcmdq-poll-us N          busy-poll time of a vCMDQ page before it is\n"
		"                             write-protected (default %u)\n"
		"  --vcmdq-idle-us N          how often idle vCMDQ queues are looked at\n"
		"                             (default %u)\n"
		"  --ring-budget N            entries per ring per pass (default %u)\n"
		"  --max-batch N              commands per ioctl (default %u)\n"
		"  --rate-limit N             commands/s per vSMMU, 0 = off (default 0)\n"
		"  --rate-burst N             token bucket depth\n"
		"  --loop auto|io_uring|epoll worker event loop (default auto; \"uring\" is\n"
		"                             accepted for io_uring)\n"
		"  --cpus LIST                pin workers to these CPUs (e.g. 0-1,3)\n"
		"  --max-rings N              rings in total (default: from the fd limit)\n"
		"  --ctl-timeout-ms N         how long a control request waits for a worker\n"
		"                             (default %u); shutdown takes at most twice\n"
		"                             this plus %u s\n"
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
		"error, 2 on a usage error, 3 when a worker was stuck (its rings were not\n"
		"drained) or the shutdown overran its bound (docs/OPERATIONS.md).\n",
		CORE_DEFAULT_INFLIGHT, CORE_DEFAULT_POLL_US,
		CORE_DEFAULT_VCMDQ_POLL_US, CORE_DEFAULT_VCMDQ_IDLE_US,
		CORE_DEFAULT_BUDGET, CORE_DEFAULT_MAX_BATCH,
		CORE_DEFAULT_CTL_TIMEOUT_MS, SHUTDOWN_SLACK_S,
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

/* The long name of option @id: for service settings, core's key. */
static const char *opt_name(int id)
{
	const struct option *opt = long_opts;

	while (opt->name && opt->val != id)
		opt++;
	return opt->name ? opt->name : "?";
}

/* The control socket's options: who may connect, how many, limits. */
static int apply_client_opt(struct daemon_opts *o, int id, const char *val)
{
	unsigned long long v;
	int r = 0;

	switch (id) {
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
	default:
		r = -EINVAL;
	}
	return r;
}

/* Apply one option; @src names where it came from, for messages. */
static int apply_opt(struct daemon_opts *o, int id, const char *val,
		     const char *src)
{
	int r = 0;

	switch (id) {
	case OPT_BACKEND:
	case OPT_ISSUE_MODE:
	case OPT_MAX_INFLIGHT:
	case OPT_POLL_US:
	case OPT_VCMDQ_POLL_US:
	case OPT_VCMDQ_IDLE_US:
	case OPT_RING_BUDGET:
	case OPT_MAX_BATCH:
	case OPT_RATE_LIMIT:
	case OPT_RATE_BURST:
	case OPT_LOOP:
	case OPT_CPUS:
	case OPT_MAX_RINGS_TOTAL:
	case OPT_CTL_TIMEOUT:
	case OPT_SYSFS_ROOT:
	case OPT_SIM_SMMUS:
		/* Service settings: core's parser, under the same names. */
		r = core_config_set(&o->core, opt_name(id), val);
		break;
	case OPT_SMMU:
		if (o->n_smmus == CORE_MAX_HSMMU || !*val ||
		    strlen(val) >= CORE_NAME_MAX)
			r = -EINVAL;
		else
			o->smmus[o->n_smmus++] = val;
		break;
	case OPT_SOCKET:
	case OPT_SOCKET_MODE:
	case OPT_ADMIN_SOCKET:
	case OPT_ALLOW_UID:
	case OPT_ALLOW_GID:
	case OPT_ALLOW_OVERFLOW_ID:
	case OPT_MAX_CLIENTS:
	case OPT_MAX_CLIENTS_PER_UID:
	case OPT_HELLO_TIMEOUT:
	case OPT_CLIENT_VSMMUS:
	case OPT_CLIENT_RINGS:
	case OPT_CLIENT_DEVICES:
		r = apply_client_opt(o, id, val);
		break;
	case OPT_METRICS: {
		struct sockaddr_storage ss;
		socklen_t sl;

		r = daemon_metrics_parse_addr(val, &ss, &sl);
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
	if (r)
		log_msg(LOG_ERR, "%s: invalid value \"%s\" for %s", src, val,
			opt_name(id));
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

void opts_free(struct daemon_opts *o)
{
	for (unsigned int i = 0; i < o->n_owned; i++)
		free(o->owned[i]);
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

int opts_parse(struct daemon_opts *o, int argc, char **argv, char *admin_buf,
	       size_t size)
{
	const char *config = NULL;
	int c;

	rpc_overflow_ids(&overflow_uid, &overflow_gid);
	/* The config file first, so that the command line overrides it. */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			config = argv[i + 1];
		else if (!strncmp(argv[i], "--config=", 9))
			config = argv[i] + 9;
	}
	if (config && read_config(o, config))
		return -EINVAL;
	log_set_level(o->log_level);
	while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		if (c == OPT_HELP) {
			usage(stdout);
			return 1;
		}
		if (c == OPT_VERSION) {
			printf("smmu-offloadd %s\n", PACKAGE_VERSION);
			return 1;
		}
		if (c == OPT_CONFIG)
			continue;
		if (c == '?' || apply_opt(o, c, optarg, "command line")) {
			usage(stderr);
			return -EINVAL;
		}
		log_set_level(o->log_level);
	}
	if (optind < argc) {
		log_msg(LOG_ERR, "unexpected argument \"%s\"", argv[optind]);
		return -EINVAL;
	}
	return check_client_opts(o, admin_buf, size);
}
