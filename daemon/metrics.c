/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "config.h"
#include "core/core.h"
#include "core/hist.h"
#include "core/stats.h"
#include "daemon/metrics.h"
#include "rpc/server.h"

/* Owned by the thread dispatching the event base. */
struct daemon_metrics {
	struct core_service *svc;
	const struct rpc_server *srv;
	daemon_metrics_extra_fn extra;
	void *opaque;
	struct evhttp *http;
	struct evconnlistener *lev;
	int fd;
};

/* A scrape must not hang a connection slot forever. */
#define METRICS_TIMEOUT_S 10
#define METRICS_MAX_HEADERS 8192
#define METRICS_BACKLOG 16

/* ---- addresses ------------------------------------------------------- */

static int parse_port(const char *s, uint16_t *ret)
{
	unsigned long v;
	char *end;

	if (!*s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > 65535)
		return -EINVAL;
	*ret = (uint16_t)v;
	return 0;
}

int daemon_metrics_parse_addr(const char *s, struct sockaddr_storage *ret,
			      socklen_t *ret_len)
{
	char host[INET6_ADDRSTRLEN + 1];
	uint16_t port = DAEMON_METRICS_DEFAULT_PORT;
	const char *colon;
	size_t hlen;

	if (!s || !*s)
		return -EINVAL;
	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close)
			return -EINVAL;
		hlen = (size_t)(close - s - 1);
		if (hlen == 0 || hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		if (close[1] == ':') {
			if (parse_port(close + 2, &port))
				return -EINVAL;
		} else if (close[1]) {
			return -EINVAL;
		}
		struct sockaddr_in6 sa6 = { .sin6_family = AF_INET6,
					    .sin6_port = htons(port) };

		if (inet_pton(AF_INET6, host, &sa6.sin6_addr) != 1)
			return -EINVAL;
		memset(ret, 0, sizeof(*ret));
		memcpy(ret, &sa6, sizeof(sa6));
		*ret_len = sizeof(sa6);
		return 0;
	}

	/* "PORT" alone: loopback, never every interface by accident. */
	if (!strchr(s, ':') && !strchr(s, '.')) {
		if (parse_port(s, &port))
			return -EINVAL;
		snprintf(host, sizeof(host), "127.0.0.1");
	} else {
		colon = strrchr(s, ':');
		hlen = colon ? (size_t)(colon - s) : strlen(s);
		if (hlen == 0 || hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, hlen);
		host[hlen] = '\0';
		if (colon && parse_port(colon + 1, &port))
			return -EINVAL;
	}
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(port) };

	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	memcpy(ret, &sa, sizeof(sa));
	*ret_len = sizeof(sa);
	return 0;
}

int daemon_metrics_address(const struct daemon_metrics *m, char *buf,
			   size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN];

	if (getsockname(m->fd, (struct sockaddr *)&ss, &sl) < 0)
		return -errno;
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)&ss;

		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(a->sin6_port));
	} else {
		const struct sockaddr_in *a = (const void *)&ss;

		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(a->sin_port));
	}
	return 0;
}

/* ---- exposition ------------------------------------------------------ */

/* evbuffer_add_printf() fails only on allocation failure. */
struct out {
	struct evbuffer *b;
	int err;
};

static void outf(struct out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void outf(struct out *o, const char *fmt, ...)
{
	va_list ap;

	if (o->err)
		return;
	va_start(ap, fmt);
	if (evbuffer_add_vprintf(o->b, fmt, ap) < 0)
		o->err = -ENOMEM;
	va_end(ap);
}

static void family(struct out *o, const char *name, const char *type,
		   const char *help)
{
	outf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, double quote and newline escaped. */
static void label_value(char *dst, size_t len, const char *src)
{
	size_t n = 0;

	for (; *src && n + 3 < len; src++) {
		if (*src == '\\' || *src == '"') {
			dst[n++] = '\\';
			dst[n++] = *src;
		} else if (*src == '\n') {
			dst[n++] = '\\';
			dst[n++] = 'n';
		} else {
			dst[n++] = *src;
		}
	}
	dst[n] = '\0';
}

#define LV_MAX (2 * CORE_NAME_MAX + 8)
/* vsmmu="ID",hsmmu="NAME" */
#define LABELS_MAX (LV_MAX + 32)

/* A value of a family: ns counters are exported in seconds. */
static void sample(struct out *o, const struct core_stat_desc *d,
		   const char *labels, uint64_t v)
{
	/* No label: no braces, as "name value". */
	const char *open = *labels ? "{" : "", *close = *labels ? "}" : "";

	if (d->flags & CORE_STAT_NS)
		outf(o, "%s%s%s%s %llu.%09llu\n", d->metric, open, labels,
		     close, (unsigned long long)(v / 1000000000u),
		     (unsigned long long)(v % 1000000000u));
	else
		outf(o, "%s%s%s%s %llu\n", d->metric, open, labels, close,
		     (unsigned long long)v);
}

/*
 * Every exported family of @scope's table, one sample per object (per
 * element for an array, labelled with its value). @objs: @n structs of
 * the scope, @stride bytes apart; @labels: each object's label set.
 */
static void render_table(struct out *o, enum core_stat_scope scope,
			 const void *objs, size_t stride,
			 const char (*labels)[LABELS_MAX], size_t n)
{
	static const char *const kinds[] = {
		[CORE_STAT_COUNTER] = "counter",
		[CORE_STAT_GAUGE] = "gauge",
		[CORE_STAT_HISTOGRAM] = "histogram",
	};
	char lb[LABELS_MAX + 64];
	size_t nt;
	const struct core_stat_desc *t = core_stats_table(scope, &nt);

	for (size_t k = 0; k < nt; k++) {
		const struct core_stat_desc *d = &t[k];

		if (!d->metric || d->kind == CORE_STAT_HISTOGRAM)
			continue;
		family(o, d->metric, kinds[d->kind], d->help);
		for (size_t i = 0; i < n; i++) {
			const void *st = (const char *)objs + i * stride;

			if (d->n == 1 && !d->label_values) {
				sample(o, d, labels[i],
				       core_stat_value(d, st, 0));
				continue;
			}
			for (unsigned int e = 0; e < d->n; e++) {
				snprintf(lb, sizeof(lb), "%s%s%s=\"%s\"",
					 labels[i], *labels[i] ? "," : "",
					 d->label, d->label_values[e]);
				sample(o, d, lb, core_stat_value(d, st, e));
			}
		}
	}
}

static void histogram(struct out *o, const char *name, const char *labels,
		      const struct core_hist *h, const uint64_t *bounds,
		      size_t n_bounds, bool ns)
{
	uint64_t cum = 0, total = 0;
	unsigned int i = 0;

	/* +Inf and _count from the same buckets, so that they agree even
	 * when the snapshot raced a writer. */
	for (unsigned int k = 0; k < CORE_HIST_BUCKETS; k++)
		total += h->b[k];
	for (size_t j = 0; j < n_bounds; j++) {
		while (i < CORE_HIST_BUCKETS && core_hist_upper(i) <= bounds[j])
			cum += h->b[i++];
		if (ns)
			outf(o, "%s_bucket{%s,le=\"%g\"} %llu\n", name, labels,
			     (double)bounds[j] / 1e9, (unsigned long long)cum);
		else
			outf(o, "%s_bucket{%s,le=\"%llu\"} %llu\n", name,
			     labels, (unsigned long long)bounds[j],
			     (unsigned long long)cum);
	}
	outf(o, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels,
	     (unsigned long long)total);
	if (ns)
		outf(o, "%s_sum{%s} %llu.%09llu\n", name, labels,
		     (unsigned long long)(h->sum / 1000000000u),
		     (unsigned long long)(h->sum % 1000000000u));
	else
		outf(o, "%s_sum{%s} %llu\n", name, labels,
		     (unsigned long long)h->sum);
	outf(o, "%s_count{%s} %llu\n", name, labels, (unsigned long long)total);
}

struct snapshot {
	struct core_service_stats ss;
	struct core_hsmmu_stats *hs;
	char (*hs_labels)[LABELS_MAX];
	unsigned int n_hs;
	struct core_vsmmu_stats *vs;
	char (*vs_labels)[LABELS_MAX];
	uint32_t n_vs;
	uint32_t rings_halted;
};

static void snapshot_free(struct snapshot *s)
{
	free(s->hs);
	free(s->hs_labels);
	free(s->vs);
	free(s->vs_labels);
}

/* Ids of live objects; -ENOMEM, or the list call's error. */
static int list_ids(struct core_service *svc, bool rings, uint32_t **ret,
		    uint32_t *ret_n)
{
	uint32_t *ids = NULL, n = 0, max = 0;
	int r;

	/* Objects come and go between calls: retry until the list fits. */
	for (;;) {
		r = rings ? core_list_rings(svc, 0, ids, max, &n) :
			    core_list_vsmmus(svc, ids, max, &n);
		if (r) {
			free(ids);
			return r;
		}
		if (n <= max)
			break;
		free(ids);
		max = n + 16;
		ids = calloc(max, sizeof(*ids));
		if (!ids)
			return -ENOMEM;
	}
	*ret = ids;
	*ret_n = n;
	return 0;
}

static int snapshot_take(struct core_service *svc, struct snapshot *s)
{
	char name[LV_MAX];
	uint32_t *ids = NULL, n = 0;
	int r;

	r = core_service_stats(svc, &s->ss);
	if (r)
		return r;
	s->hs = calloc(s->ss.n_hsmmu ? s->ss.n_hsmmu : 1, sizeof(*s->hs));
	s->hs_labels = calloc(s->ss.n_hsmmu ? s->ss.n_hsmmu : 1,
			      sizeof(*s->hs_labels));
	if (!s->hs || !s->hs_labels)
		return -ENOMEM;
	for (unsigned int i = 0; i < s->ss.n_hsmmu; i++) {
		r = core_hsmmu_stats(svc, i, &s->hs[s->n_hs]);
		if (r == -ENOENT)
			continue;
		if (r)
			return r;
		label_value(name, sizeof(name), s->hs[s->n_hs].name);
		snprintf(s->hs_labels[s->n_hs], LABELS_MAX, "hsmmu=\"%s\"",
			 name);
		s->n_hs++;
	}

	r = list_ids(svc, false, &ids, &n);
	if (r)
		return r;
	s->vs = calloc(n ? n : 1, sizeof(*s->vs));
	s->vs_labels = calloc(n ? n : 1, sizeof(*s->vs_labels));
	if (!s->vs || !s->vs_labels) {
		free(ids);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct core_vsmmu_stats *v = &s->vs[s->n_vs];

		r = core_vsmmu_stats(svc, ids[i], v);
		if (r == -ENOENT)
			continue;
		if (r) {
			free(ids);
			return r;
		}
		label_value(name, sizeof(name), v->hsmmu);
		snprintf(s->vs_labels[s->n_vs], sizeof(s->vs_labels[0]),
			 "vsmmu=\"%u\",hsmmu=\"%s\"", v->id, name);
		s->n_vs++;
	}
	free(ids);

	r = list_ids(svc, true, &ids, &n);
	if (r)
		return r;
	for (uint32_t i = 0; i < n; i++) {
		struct core_ring_stats rs;

		r = core_ring_stats(svc, ids[i], &rs);
		if (r == -ENOENT)
			continue;
		if (r) {
			free(ids);
			return r;
		}
		s->rings_halted += rs.halted;
	}
	free(ids);
	return 0;
}

static void render_service(struct out *o, const struct snapshot *s,
			   const struct rpc_server *srv)
{
	static const char no_labels[1][LABELS_MAX];
	char loop[32], backend[32];

	label_value(loop, sizeof(loop), s->ss.loop ? s->ss.loop : "");
	label_value(backend, sizeof(backend),
		    s->ss.backend ? s->ss.backend : "");
	family(o, "smmu_offload_info", "gauge",
	       "Always 1; the labels say the version, the iommufd backend and the workers' event loop.");
	outf(o,
	     "smmu_offload_info{version=\"%s\",backend=\"%s\",loop=\"%s\"} 1\n",
	     PACKAGE_VERSION, backend, loop);
	render_table(o, CORE_STAT_SERVICE, &s->ss, sizeof(s->ss), no_labels, 1);
	/* Derived from every ring's stats: not a field of core's tables. */
	family(o, "smmu_offload_rings_halted", "gauge",
	       "Rings halted on a command error and not resumed yet.");
	outf(o, "smmu_offload_rings_halted %u\n", s->rings_halted);
	if (srv) {
		struct rpc_server_counters sc;

		rpc_server_counters(srv, &sc);
		family(o, "smmu_offload_clients", "gauge",
		       "Control connections (VMMs, smmu-offloadctl) open.");
		outf(o, "smmu_offload_clients %u\n", rpc_server_clients(srv));
		family(o, "smmu_offload_clients_accepted_total", "counter",
		       "Control connections accepted.");
		outf(o, "smmu_offload_clients_accepted_total %llu\n",
		     (unsigned long long)sc.clients_total);
		family(o, "smmu_offload_clients_refused_total", "counter",
		       "Control connections refused (connection limits, uid/gid check, no fd).");
		outf(o, "smmu_offload_clients_refused_total %llu\n",
		     (unsigned long long)sc.clients_refused);
		family(o, "smmu_offload_hello_timeouts_total", "counter",
		       "Control connections closed for want of a Hello in time.");
		outf(o, "smmu_offload_hello_timeouts_total %llu\n",
		     (unsigned long long)sc.hello_timeouts);
		family(o, "smmu_offload_fd_exhausted_total", "counter",
		       "Times accept() found the daemon out of file descriptors.");
		outf(o, "smmu_offload_fd_exhausted_total %llu\n",
		     (unsigned long long)sc.fd_exhausted);
		family(o, "smmu_offload_requests_total", "counter",
		       "Control requests answered.");
		outf(o, "smmu_offload_requests_total %llu\n",
		     (unsigned long long)sc.requests);
		family(o, "smmu_offload_bad_requests_total", "counter",
		       "Control datagrams that were not a valid request.");
		outf(o, "smmu_offload_bad_requests_total %llu\n",
		     (unsigned long long)sc.bad_requests);
	}
}

static int render_hsmmus(struct out *o, struct core_service *svc,
			 const struct snapshot *s)
{
	const struct core_stat_desc *t;
	struct core_hist *h;
	size_t nt;

	family(o, "smmu_offload_hsmmu_info", "gauge",
	       "Always 1; the labels say the worker's event loop and issue mode.");
	for (unsigned int i = 0; i < s->n_hs; i++)
		outf(o,
		     "smmu_offload_hsmmu_info{%s,loop=\"%s\",issue_mode=\"%s\"} 1\n",
		     s->hs_labels[i], s->hs[i].loop ? s->hs[i].loop : "",
		     s->hs[i].issue_mode ? s->hs[i].issue_mode : "");
	render_table(o, CORE_STAT_HSMMU, s->hs, sizeof(*s->hs),
		     (const char(*)[LABELS_MAX])s->hs_labels, s->n_hs);

	/* 15 KiB each: on the heap, one at a time. */
	h = malloc(sizeof(*h));
	if (!h)
		return -ENOMEM;
	t = core_stats_table(CORE_STAT_HSMMU, &nt);
	for (size_t k = 0; k < nt; k++) {
		if (t[k].kind != CORE_STAT_HISTOGRAM)
			continue;
		family(o, t[k].metric, "histogram", t[k].help);
		for (unsigned int i = 0; i < s->n_hs; i++) {
			core_hist_init(h);
			if (core_hsmmu_hist(svc, i,
					    (enum core_hist_kind)t[k].off, h))
				continue;
			histogram(o, t[k].metric, s->hs_labels[i], h,
				  t[k].bounds, t[k].n_bounds,
				  t[k].flags & CORE_STAT_NS);
		}
	}
	free(h);
	return 0;
}

static void render_vsmmus(struct out *o, const struct snapshot *s)
{
	render_table(o, CORE_STAT_VSMMU, s->vs, sizeof(*s->vs),
		     (const char(*)[LABELS_MAX])s->vs_labels, s->n_vs);
}

int daemon_metrics_render(struct core_service *svc,
			  const struct rpc_server *srv, struct evbuffer *out)
{
	struct snapshot s = { 0 };
	struct out o = { .b = out };
	int r;

	r = snapshot_take(svc, &s);
	if (r)
		goto out;
	render_service(&o, &s, srv);
	r = render_hsmmus(&o, svc, &s);
	if (r)
		goto out;
	render_vsmmus(&o, &s);
	r = o.err;
out:
	snapshot_free(&s);
	return r;
}

/* ---- HTTP ------------------------------------------------------------ */

static void on_request(struct evhttp_request *req, void *arg)
{
	struct daemon_metrics *m = arg;
	const char *uri = evhttp_request_get_uri(req);
	struct evbuffer *body;
	struct out o;

	/* evhttp refuses other methods (501) before calling us. */
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_send_error(req, 405, NULL);
		return;
	}
	/* "/metrics", optionally with a query string (ignored). */
	if (!uri || strncmp(uri, "/metrics", 8) || (uri[8] && uri[8] != '?')) {
		evhttp_send_error(req, HTTP_NOTFOUND, NULL);
		return;
	}
	body = evbuffer_new();
	if (!body) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	o.b = body;
	o.err = daemon_metrics_render(m->svc, m->srv, body);
	if (!o.err && m->extra)
		m->extra(m->opaque, body);
	if (o.err) {
		evbuffer_free(body);
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req),
			  "Content-Type",
			  "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, HTTP_OK, "OK", body);
	evbuffer_free(body);
}

static void on_other(struct evhttp_request *req, void *arg)
{
	(void)arg;
	evhttp_send_error(req, HTTP_NOTFOUND, NULL);
}

int daemon_metrics_new(struct event_base *base, struct core_service *svc,
		       const struct daemon_metrics_config *cfg,
		       struct daemon_metrics **ret)
{
	struct sockaddr_storage ss;
	struct daemon_metrics *m;
	socklen_t sl;
	int one = 1, r;

	r = daemon_metrics_parse_addr(cfg->addr, &ss, &sl);
	if (r)
		return r;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->svc = svc;
	m->srv = cfg->srv;
	m->extra = cfg->extra;
	m->opaque = cfg->opaque;
	/* Our own socket: CLOEXEC from the start, errors as errnos. */
	m->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
		       0);
	if (m->fd < 0) {
		r = -errno;
		goto err;
	}
	if (setsockopt(m->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) <
		    0 ||
	    bind(m->fd, (struct sockaddr *)&ss, sl) < 0 ||
	    listen(m->fd, METRICS_BACKLOG) < 0) {
		r = -errno;
		goto err;
	}
	/* Accepted sockets get SOCK_CLOEXEC (accept4) with this flag. */
	m->lev = evconnlistener_new(
		base, NULL, NULL, LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_CLOSE_ON_FREE,
		0, m->fd);
	if (!m->lev) {
		r = -ENOMEM;
		goto err;
	}
	m->http = evhttp_new(base);
	if (!m->http) {
		r = -ENOMEM;
		goto err;
	}
	/* GET only: evhttp 2.1 would send a body in reply to HEAD. */
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET);
	evhttp_set_timeout(m->http, METRICS_TIMEOUT_S);
	evhttp_set_max_headers_size(m->http, METRICS_MAX_HEADERS);
	evhttp_set_max_body_size(m->http, 0);
	if (evhttp_set_cb(m->http, "/metrics", on_request, m)) {
		r = -ENOMEM;
		goto err;
	}
	evhttp_set_gencb(m->http, on_other, m);
	if (!evhttp_bind_listener(m->http, m->lev)) {
		r = -ENOMEM;
		goto err;
	}
	/* The evhttp owns the listener (and the fd) from here. */
	m->lev = NULL;
	*ret = m;
	return 0;
err:
	if (m->http)
		evhttp_free(m->http);
	if (m->lev)
		evconnlistener_free(m->lev);
	else if (m->fd >= 0)
		close(m->fd);
	free(m);
	return r;
}

void daemon_metrics_free(struct daemon_metrics *m)
{
	if (!m)
		return;
	evhttp_free(m->http);
	free(m);
}
