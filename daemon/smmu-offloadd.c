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
#include <pthread.h>
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
#include "common/clock.h"
#include "core/core.h"
#include "daemon/metrics.h"
#include "daemon/ratelimit.h"
#include "rpc/server.h"
#include "daemon/smmu-offloadd.h"
#include <smmu-offload/client.h>

static int log_level = LOG_NOTICE;

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

void log_set_level(int level)
{
	log_level = level;
}

void log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	logv(level, fmt, ap);
	va_end(ap);
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
static struct daemon_ratelimit log_limits[LOG_CLASS_COUNT];

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
	if (!daemon_ratelimit_allow(&log_limits[cls], common_now_ns(),
				    &suppressed))
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

		if (daemon_ratelimit_flush(&log_limits[i], common_now_ns(), &n))
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

/* No --smmu: every host SMMU the backend offers (core_hsmmu_discover()). */
static int discover_smmus(struct daemon_opts *o, char names[][CORE_NAME_MAX])
{
	unsigned int n;
	int r;

	r = core_hsmmu_discover(&o->core, names, CORE_MAX_HSMMU, &n);
	if (r)
		return r;
	if (n > CORE_MAX_HSMMU)
		n = CORE_MAX_HSMMU;
	for (unsigned int i = 0; i < n; i++)
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
	uint64_t halts[CORE_HALT_SLOTS];
	uint64_t backend_errors, throttled;
};

/* Owned by the main thread. */
struct watch {
	struct core_service *svc;
	struct event *ev;
	struct vs_seen *seen; /* sorted by id */
	uint32_t n_seen;
	uint32_t stuck[CORE_MAX_HSMMU]; /* as last logged */
	uint64_t ctl_timeouts[CORE_MAX_HSMMU];
};

/* A worker that stops answering control calls degrades its host SMMU:
 * say so once when it happens and once when it is over. */
static void watch_hsmmus(struct watch *w)
{
	struct core_service_stats ss;

	if (core_service_stats(w->svc, &ss))
		return;
	for (unsigned int i = 0; i < ss.n_hsmmu && i < CORE_MAX_HSMMU; i++) {
		struct core_hsmmu_stats hs;

		if (core_hsmmu_stats(w->svc, i, &hs))
			continue;
		if (hs.stuck && !w->stuck[i])
			log_msg(LOG_ERR,
				"host SMMU %.*s: worker not answering control requests within %u ms (stuck in a backend call?); requests for its VMs fail with ETIMEDOUT until it answers",
				CORE_NAME_MAX, hs.name, ss.ctl_timeout_ms);
		else if (!hs.stuck && w->stuck[i])
			log_msg(LOG_NOTICE,
				"host SMMU %.*s: worker answering again (%llu control request(s) timed out)",
				CORE_NAME_MAX, hs.name,
				(unsigned long long)(hs.ctl_timeouts -
						     w->ctl_timeouts[i]));
		if (hs.stuck != w->stuck[i])
			w->ctl_timeouts[i] = hs.ctl_timeouts;
		w->stuck[i] = hs.stuck;
	}
}

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
	uint64_t d[CORE_HALT_SLOTS], dsum = 0, dbe, dth;

	if (!prev)
		prev = &zero;
	for (unsigned int k = 0; k < CORE_HALT_SLOTS; k++) {
		d[k] = st->halts[k] - prev->halts[k];
		dsum += d[k];
	}
	if (dsum)
		log_limited(
			LOG_CLASS_HALT, LOG_WARNING,
			"vSMMU %u on %s: %llu ring halt(s) on guest command errors (ill %llu, abt %llu, atc_inv_sync %llu, other %llu)",
			st->id, st->hsmmu, (unsigned long long)dsum,
			(unsigned long long)d[CORE_HALT_ILL],
			(unsigned long long)d[CORE_HALT_ABT],
			(unsigned long long)d[CORE_HALT_ATC_INV_SYNC],
			(unsigned long long)d[CORE_HALT_OTHER]);
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
	watch_hsmmus(w);
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

struct shutdown {
	struct event_base *base;
	unsigned int bound_ms;
	bool armed;
};

static void *shutdown_watchdog(void *arg)
{
	const struct shutdown *sd = arg;
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += sd->bound_ms / 1000;
	ts.tv_nsec += (long)(sd->bound_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL))
		;
	log_msg(LOG_ERR,
		"shutdown not finished after %u ms (a worker is stuck): exiting without draining it",
		sd->bound_ms);
	_exit(3);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct shutdown *sd = arg;
	pthread_attr_t attr;
	pthread_t t;

	(void)what;
	log_msg(LOG_NOTICE, "%s: draining and exiting",
		sig == SIGTERM ? "SIGTERM" : "SIGINT");
	/* Draining waits on workers, each call within a deadline; the
	 * watchdog bounds the sum, whatever the workers do. */
	if (!sd->armed && !pthread_attr_init(&attr)) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &attr, shutdown_watchdog, sd) == 0)
			sd->armed = true;
		else
			log_msg(LOG_WARNING,
				"cannot start the shutdown watchdog");
		pthread_attr_destroy(&attr);
	}
	event_base_loopbreak(sd->base);
}

/* A socket path of the daemon is taken (-EADDRINUSE) or is not a socket. */
static bool log_socket_busy(const struct daemon_opts *o, int r)
{
	const char *sep = o->admin_socket ? " or " : "";
	const char *admin = o->admin_socket ? o->admin_socket : "";

	if (r == -EADDRINUSE)
		log_msg(LOG_ERR,
			"another smmu-offloadd is listening on %s%s%s: stop it or use --socket",
			o->socket, sep, admin);
	else if (r == -ENOTSOCK)
		log_msg(LOG_ERR, "%s%s%s exists and is not a socket: remove it",
			o->socket, sep, admin);
	else
		return false;
	return true;
}

/*
 * Before the service starts: the host SMMUs (discovered unless named),
 * the log limits, and a busy socket refused early. 0, or -1 (logged).
 */
static int prepare(struct daemon_opts *o, char names[][CORE_NAME_MAX])
{
	const char *root = o->core.backend.sysfs_root ?
				   o->core.backend.sysfs_root :
				   "/sys/class/iommu";
	int r;

	if (!o->n_smmus) {
		r = discover_smmus(o, names);
		if (r < 0) {
			log_msg(LOG_ERR, "reading %s: %s", root, strerror(-r));
			return -1;
		}
		if (!r) {
			log_msg(LOG_ERR,
				"no SMMUv3 found in %s: name one with --smmu NAME, or use --backend sim",
				root);
			return -1;
		}
	}
	for (unsigned int i = 0; i < LOG_CLASS_COUNT; i++)
		daemon_ratelimit_init(&log_limits[i], o->log_burst,
				      o->log_interval_ns, common_now_ns());
	o->core.hsmmu_names = o->smmus;
	o->core.n_hsmmu = o->n_smmus;

	r = rpc_socket_probe(o->socket);
	if (!r && o->admin_socket)
		r = rpc_socket_probe(o->admin_socket);
	return log_socket_busy(o, r) ? -1 : 0;
}

/* core_service_new() with the reason of a failure logged. */
static int start_service(struct daemon_opts *o, struct core_service **ret)
{
	int r = core_service_new(&o->core, ret);

	if (r == -ENOENT)
		log_msg(LOG_ERR,
			"a host SMMU was not found (%s backend): check --smmu names",
			o->core.backend.kind);
	else if ((r == -EPERM || r == -ENOSYS) &&
		 o->core.loop == CORE_LOOP_URING)
		log_msg(LOG_ERR,
			"io_uring is unavailable (%s): use --loop auto or --loop epoll",
			strerror(-r));
	else if (r)
		log_msg(LOG_ERR, "cannot start the service: %s", strerror(-r));
	if (r)
		return r;
	if (o->core.loop == CORE_LOOP_AUTO &&
	    !strcmp(core_service_loop_name(*ret), "epoll"))
		log_msg(LOG_NOTICE,
			"io_uring unavailable: workers fall back to epoll");
	return 0;
}

/* The RPC server on the configured sockets; 0 or -errno (logged). */
static int start_server(struct event_base *base, struct core_service *svc,
			const struct daemon_opts *o, struct rpc_server **ret)
{
	struct rpc_server_config scfg = {
		.path = o->socket,
		.admin_path = o->admin_socket,
		.mode = o->socket_mode,
		.allow_uids = o->allow_uids,
		.n_allow_uids = o->n_allow_uids,
		.allow_gids = o->allow_gids,
		.n_allow_gids = o->n_allow_gids,
		.allow_overflow_ids = o->allow_overflow_ids,
		.max_clients = o->max_clients,
		.max_clients_per_uid = o->max_clients_per_uid,
		.hello_timeout_ms = o->hello_timeout_s * 1000,
		.max_vsmmus = o->max_vsmmus,
		.max_rings = o->max_rings,
		.max_devices = o->max_devices,
		.log = rpc_log,
	};
	int r = make_socket_dir(o->socket);

	if (r) {
		log_msg(LOG_ERR, "cannot create the directory of %s: %s",
			o->socket, strerror(-r));
		return r;
	}
	r = rpc_server_new(base, svc, &scfg, ret);
	if (r && !log_socket_busy(o, r))
		log_msg(LOG_ERR, "cannot listen on %s (admin: %s): %s",
			o->socket, o->admin_socket ? o->admin_socket : "none",
			strerror(-r));
	return r;
}

/* The metrics endpoint, if asked for; @ready gets its address. */
static int start_metrics(struct event_base *base, struct core_service *svc,
			 struct rpc_server *srv, const struct daemon_opts *o,
			 char *ready, size_t len, struct daemon_metrics **ret)
{
	struct daemon_metrics_config mcfg = {
		.addr = o->metrics,
		.srv = srv,
		.extra = metrics_extra,
	};
	char addr[DAEMON_METRICS_ADDR_MAX];
	int r;

	snprintf(ready, len, "STATUS=serving");
	if (!o->metrics)
		return 0;
	r = daemon_metrics_new(base, svc, &mcfg, ret);
	if (r) {
		log_msg(LOG_ERR, "cannot serve metrics on %s: %s", o->metrics,
			strerror(-r));
		return r;
	}
	r = daemon_metrics_address(*ret, addr, sizeof(addr));
	if (r) {
		log_msg(LOG_ERR, "metrics address: %s", strerror(-r));
		return r;
	}
	log_msg(LOG_NOTICE, "metrics on http://%s/metrics", addr);
	snprintf(ready, len, "STATUS=serving, metrics on http://%s/metrics",
		 addr);
	return 0;
}

int main(int argc, char **argv)
{
	static char names[CORE_MAX_HSMMU][CORE_NAME_MAX];
	struct daemon_opts o = {
		.core.backend.kind = "kernel",
		/* core's 0 means "never poll", not "default". */
		.core.poll_us = CORE_DEFAULT_POLL_US,
		.socket = SMMU_CLIENT_DEFAULT_SOCKET,
		.socket_mode = RPC_DEFAULT_SOCKET_MODE,
		.log_level = LOG_NOTICE,
		.log_burst = LOG_DEFAULT_BURST,
		.log_interval_ns = LOG_DEFAULT_INTERVAL_NS,
	};
	const struct timeval watch_tv = { WATCH_INTERVAL_S, 0 };
	struct event *ev_term = NULL, *ev_int = NULL;
	struct daemon_metrics *metrics = NULL;
	struct watch watch = { 0 };
	struct shutdown sd = { 0 };
	char ready[DAEMON_METRICS_ADDR_MAX + 64];
	char admin_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct core_service *svc = NULL;
	struct rpc_server *srv = NULL;
	struct event_base *base = NULL;
	int r, status = 1;

	log_to_journal = stderr_is_journal();
	r = opts_parse(&o, argc, argv, admin_path, sizeof(admin_path));
	if (r) {
		opts_free(&o);
		return r > 0 ? 0 : 2;
	}
	if (prepare(&o, names))
		goto out;

	/* Replies use MSG_NOSIGNAL; this covers everything else. */
	signal(SIGPIPE, SIG_IGN);
	event_set_log_callback(event_log);

	if (start_service(&o, &svc))
		goto out;
	base = event_base_new();
	if (!base) {
		log_msg(LOG_ERR, "cannot create the event loop");
		goto out;
	}
	sd.base = base;
	sd.bound_ms = 2 * (o.core.ctl_timeout_ms ?
				   o.core.ctl_timeout_ms :
				   CORE_DEFAULT_CTL_TIMEOUT_MS) +
		      SHUTDOWN_SLACK_S * 1000;
	ev_term = evsignal_new(base, SIGTERM, on_signal, &sd);
	ev_int = evsignal_new(base, SIGINT, on_signal, &sd);
	if (!ev_term || !ev_int || evsignal_add(ev_term, NULL) ||
	    evsignal_add(ev_int, NULL)) {
		log_msg(LOG_ERR, "cannot install signal handlers");
		goto out;
	}
	if (start_server(base, svc, &o, &srv))
		goto out;

	watch.svc = svc;
	watch.ev = event_new(base, -1, EV_PERSIST, on_watch, &watch);
	if (!watch.ev || event_add(watch.ev, &watch_tv)) {
		log_msg(LOG_ERR, "cannot start the halt watch timer");
		goto out;
	}
	if (start_metrics(base, svc, srv, &o, ready, sizeof(ready), &metrics))
		goto out;

	log_msg(LOG_NOTICE,
		"ready: %s backend, %u host SMMU(s), %s workers, poll_us %u, socket %s, admin socket %s",
		o.core.backend.kind, o.n_smmus, core_service_loop_name(svc),
		o.core.poll_us, o.socket,
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
	daemon_metrics_free(metrics);
	if (watch.ev)
		event_free(watch.ev);
	free(watch.seen);
	rpc_server_free(srv);
	/* A stuck worker is abandoned, not drained: say so. */
	if (core_service_free(svc) == -ETIMEDOUT && !status) {
		log_msg(LOG_ERR,
			"a host SMMU worker did not stop: its rings were not drained (VMMs resume them from cons after a restart)");
		status = 3;
	}
	if (ev_term)
		event_free(ev_term);
	if (ev_int)
		event_free(ev_int);
	if (base)
		event_base_free(base);
	if (!status)
		log_msg(LOG_NOTICE, "stopped");
	opts_free(&o);
	return status;
}
