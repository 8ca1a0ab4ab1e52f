/* SPDX-License-Identifier: MIT */
/*
 * smmu-offloadd operations end to end: the Prometheus endpoint scraped
 * over HTTP by a tiny socket client (format checked line by line, values
 * checked to move with ring traffic), smmu-offloadctl stats showing the
 * same numbers, and the rate-limited halt log. The daemon runs as a
 * separate process (sim backend), its stderr on a pipe we read, readiness
 * and the metrics address by the NOTIFY_SOCKET protocol (READY=1 and
 * STATUS=...).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <smmu-offload/client.h>
#include <smmu-offload/ring-prod.h>

#include "cmdq/cmdq.h"
#include "tests/lib/tlib.h"

#define WAIT_MS 10000
#define HTTP_MAX (4 << 20)

/* ---- the daemon ----------------------------------------------------- */

static const char *const daemon_args[] = { "--sim-smmus", "2", NULL };

/* The daemon's stderr on a pipe we read (tlib_daemon_log_*). */
static void daemon_init(struct tlib_daemon *d)
{
	tlib_daemon_init(d, daemon_args);
	d->capture_log = true;
}

FIXTURE(m)
{
	struct tlib_daemon d;
};

FIXTURE_SETUP(m)
{
	daemon_init(&self->d);
}

FIXTURE_TEARDOWN(m)
{
	tlib_daemon_cleanup(&self->d);
}

/* ---- HTTP ----------------------------------------------------------- */

struct http_reply {
	int status;
	char *headers; /* status line and headers */
	char *body;
};

static void http_reply_free(struct http_reply *r)
{
	free(r->headers);
	r->headers = NULL;
	r->body = NULL;
}

/* "IPV4:PORT" -> a TCP connection. */
static int tcp_connect(const char *addr)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char host[64];
	const char *colon = strrchr(addr, ':');
	int s;

	ASSERT_NONNULL(colon);
	ASSERT_LT((size_t)(colon - addr), sizeof(host));
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	ASSERT_EQ(inet_pton(AF_INET, host, &sa.sin_addr), 1);
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_GE(s, 0);
	ASSERT_EQ(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return s;
}

/* Send @req raw; read the reply until the server closes (HTTP/1.0). */
static void http_raw(const char *addr, const char *req, struct http_reply *r)
{
	double deadline = tlib_deadline(WAIT_MS);
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap), *sep;
	int s = tcp_connect(addr);

	ASSERT_NONNULL(buf);
	ASSERT_EQ(send(s, req, strlen(req), MSG_NOSIGNAL),
		  (ssize_t)strlen(req));
	for (;;) {
		struct pollfd p = { s, POLLIN, 0 };
		int left = tlib_left_ms(deadline);
		ssize_t n;

		ASSERT_GT(left, 0);
		ASSERT_GE(poll(&p, 1, left), 0);
		if (!p.revents)
			continue;
		if (len + 1 == cap) {
			ASSERT_LT(cap, HTTP_MAX);
			cap *= 2;
			buf = realloc(buf, cap);
			ASSERT_NONNULL(buf);
		}
		n = recv(s, buf + len, cap - 1 - len, 0);
		ASSERT_GE(n, 0);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(s);
	buf[len] = '\0';
	ASSERT_EQ(strncmp(buf, "HTTP/1.", 7), 0);
	r->status = atoi(buf + 9);
	sep = strstr(buf, "\r\n\r\n");
	ASSERT_NONNULL(sep);
	*sep = '\0';
	r->headers = buf;
	r->body = sep + 4;
}

static void http_get(const char *addr, const char *path, struct http_reply *r)
{
	char req[256];

	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: test\r\n\r\n",
		 path);
	http_raw(addr, req, r);
}

/* ---- the exposition format ------------------------------------------ */

#define MAX_FAMILIES 256

struct family {
	char name[96];
	char type[16];
	bool help;
};

struct expo {
	struct family f[MAX_FAMILIES];
	unsigned int n;
	unsigned int samples;
};

static struct family *family_get(struct expo *e, const char *name, size_t len)
{
	for (unsigned int i = 0; i < e->n; i++)
		if (strlen(e->f[i].name) == len &&
		    !strncmp(e->f[i].name, name, len))
			return &e->f[i];
	return NULL;
}

static struct family *family_add(struct expo *e, const char *name, size_t len)
{
	struct family *f = family_get(e, name, len);

	if (f)
		return f;
	ASSERT_LT(e->n, MAX_FAMILIES);
	ASSERT_LT(len, sizeof(e->f[0].name));
	f = &e->f[e->n++];
	memcpy(f->name, name, len);
	f->name[len] = '\0';
	return f;
}

static bool is_name_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	       c == ':' || (!first && c >= '0' && c <= '9');
}

static const char *parse_name(const char *p)
{
	ASSERT_TRUE(is_name_char(*p, true));
	while (is_name_char(*p, false))
		p++;
	return p;
}

/* {k="v",...}: returns the end; the le value of a bucket to *le. */
static const char *parse_labels(const char *p, char *le, size_t le_len)
{
	ASSERT_EQ(*p, '{');
	p++;
	while (*p != '}') {
		const char *k = p, *v;

		p = parse_name(p);
		ASSERT_EQ(*p, '=');
		ASSERT_EQ(p[1], '"');
		p += 2;
		v = p;
		while (*p != '"') {
			ASSERT_NE(*p, '\0');
			ASSERT_NE(*p, '\n');
			if (*p == '\\') {
				ASSERT_TRUE(p[1] == '\\' || p[1] == '"' ||
					    p[1] == 'n');
				p++;
			}
			p++;
		}
		if (p - k > 3 && !strncmp(k, "le=", 3)) {
			ASSERT_LT((size_t)(p - v), le_len);
			memcpy(le, v, (size_t)(p - v));
			le[p - v] = '\0';
		}
		p++;
		if (*p == ',')
			p++;
		else
			ASSERT_EQ(*p, '}');
	}
	return p + 1;
}

static double parse_value(const char *p, const char **ret_end)
{
	char *end;
	double v;

	if (!strncmp(p, "+Inf", 4)) {
		*ret_end = p + 4;
		return INFINITY;
	}
	errno = 0;
	v = strtod(p, &end);
	ASSERT_EQ(errno, 0);
	ASSERT_TRUE(end != p);
	*ret_end = end;
	return v;
}

/*
 * Check the whole text: every sample belongs to a family announced by
 * # HELP and # TYPE before it; names, labels and values parse; each
 * histogram series has increasing le bounds, non-decreasing cumulative
 * counts, and +Inf equal to _count.
 */
static void expo_check(const char *text, struct expo *e)
{
	char series[512] = "", le[32];
	double last_le = -1, last_cum = 0, inf = -1;
	const char *p = text;

	memset(e, 0, sizeof(*e));
	ASSERT_TRUE(*text);
	while (*p) {
		const char *eol = strchr(p, '\n'), *name, *end;
		struct family *f;
		size_t len;
		double v;

		ASSERT_NONNULL(eol); /* every line ends with \n */
		if (!strncmp(p, "# HELP ", 7) || !strncmp(p, "# TYPE ", 7)) {
			bool help = p[2] == 'H';

			name = p + 7;
			end = parse_name(name);
			ASSERT_EQ(*end, ' ');
			f = family_add(e, name, (size_t)(end - name));
			if (help) {
				ASSERT_FALSE(f->help);
				ASSERT_GT(eol - end, 1);
				f->help = true;
			} else {
				ASSERT_EQ(f->type[0], '\0');
				ASSERT_LT((size_t)(eol - end - 1),
					  sizeof(f->type));
				memcpy(f->type, end + 1,
				       (size_t)(eol - end - 1));
				ASSERT_TRUE(!strcmp(f->type, "counter") ||
					    !strcmp(f->type, "gauge") ||
					    !strcmp(f->type, "histogram"));
			}
			p = eol + 1;
			continue;
		}
		ASSERT_NE(*p, '#');
		name = p;
		end = parse_name(name);
		len = (size_t)(end - name);
		f = family_get(e, name, len);
		le[0] = '\0';
		if (!f) {
			/* A histogram's _bucket, _sum or _count. */
			static const char *const suffix[] = { "_bucket", "_sum",
							      "_count" };

			for (unsigned int i = 0; !f && i < 3; i++) {
				size_t sl = strlen(suffix[i]);

				if (len > sl &&
				    !strncmp(end - sl, suffix[i], sl)) {
					f = family_get(e, name, len - sl);
					if (f)
						ASSERT_STREQ(f->type,
							     "histogram");
				}
			}
		}
		if (!f)
			FAIL("sample without HELP/TYPE: %.*s", (int)(eol - p),
			     p);
		ASSERT_TRUE(f->help);
		ASSERT_NE(f->type[0], '\0');
		if (*end == '{')
			end = parse_labels(end, le, sizeof(le));
		ASSERT_EQ(*end, ' ');
		v = parse_value(end + 1, &end);
		ASSERT_TRUE(end == eol);
		ASSERT_FALSE(isnan(v));
		if (strcmp(f->type, "gauge"))
			ASSERT_GE(v, 0);
		e->samples++;

		if (!strcmp(f->type, "histogram")) {
			/* The series: the line up to ",le=" / " ". */
			const char *cut = strstr(p, ",le=\"");
			char key[512];
			size_t kl;

			if (len > 7 && !strncmp(name + len - 7, "_bucket", 7)) {
				double b;

				ASSERT_NONNULL(cut);
				kl = (size_t)(cut - p);
				ASSERT_LT(kl, sizeof(key));
				memcpy(key, p, kl);
				key[kl] = '\0';
				b = parse_value(le, &end);
				ASSERT_EQ(*end, '\0');
				if (strcmp(key, series)) {
					/* A new series starts at its first
					 * bucket. */
					snprintf(series, sizeof(series), "%s",
						 key);
					last_le = -1;
					last_cum = 0;
					inf = -1;
				}
				ASSERT_TRUE(b > last_le);
				ASSERT_TRUE(v >= last_cum);
				last_le = b;
				last_cum = v;
				if (isinf(b))
					inf = v;
			} else if (len > 6 &&
				   !strncmp(name + len - 6, "_count", 6)) {
				/* +Inf came, and equals _count. */
				ASSERT_TRUE(inf >= 0);
				ASSERT_TRUE(inf == v);
				inf = -1;
			}
		}
		p = eol + 1;
	}
	/* Every announced family has both lines. */
	for (unsigned int i = 0; i < e->n; i++) {
		ASSERT_TRUE(e->f[i].help);
		ASSERT_NE(e->f[i].type[0], '\0');
	}
}

/* The value of the sample whose name and labels are exactly @series. */
static double _expo_value(const char *text, const char *series, bool *found)
{
	size_t len = strlen(series);
	const char *p = text;

	while ((p = strstr(p, series))) {
		if ((p == text || p[-1] == '\n') && p[len] == ' ') {
			const char *end;

			*found = true;
			return parse_value(p + len + 1, &end);
		}
		p += len;
	}
	*found = false;
	return 0;
}

static double expo_value(const char *text, const char *series)
{
	bool found;
	double v = _expo_value(text, series, &found);

	if (!found)
		FAIL("no sample %s", series);
	return v;
}

/* Scrape, check the format, return the body (free with free()). */
static char *scrape(struct tlib_daemon *d, struct expo *e)
{
	struct http_reply r;
	char *body;

	http_get(d->metrics, "/metrics", &r);
	ASSERT_EQ(r.status, 200);
	ASSERT_NONNULL(
		strstr(r.headers, "Content-Type: text/plain; version=0.0.4"));
	expo_check(r.body, e);
	body = strdup(r.body);
	ASSERT_NONNULL(body);
	http_reply_free(&r);
	return body;
}

/* ---- rings ---------------------------------------------------------- */

/* vSMMU on @hsmmu + device @vsid + ring. */
static uint32_t setup_vmm(struct smmu_client *c, const char *hsmmu,
			  uint64_t vsid, struct tlib_ring *r)
{
	return tlib_client_vmm(c, hsmmu, (uint32_t)vsid + 0x100, vsid, r, 6,
			       EFD_NONBLOCK);
}

/* ---- smmu-offloadctl ------------------------------------------------ */

/* The number after "\"@name\":" in @json, after the text @after. */
static unsigned long long json_num(const char *json, const char *after,
				   const char *name)
{
	char key[96];
	const char *p = strstr(json, after);

	ASSERT_NONNULL(p);
	snprintf(key, sizeof(key), "\"%s\":", name);
	p = strstr(p, key);
	ASSERT_NONNULL(p);
	return strtoull(p + strlen(key), NULL, 10);
}

/* ---- tests ---------------------------------------------------------- */

TEST_F_TIMEOUT(m, scrape_format_and_values_move_with_traffic, 60)
{
	const struct cmdq_cmd cmds[4] = {
		cmdq_build_cfgi_cd(0x8, 0, true),
		cmdq_build_tlbi_nh_asid(3, 0),
		cmdq_build_tlbi_nh_asid(3, 0),
		cmdq_build_tlbi_nh_asid(3, 0),
	};
	const char *const extra[] = { "--metrics", "127.0.0.1:0", NULL };
	struct cmdq_cmd bad = cmdq_build_cfgi_cd(0x99, 0, true);
	struct smmu_ring_entry fix = tlib_entry(cmdq_build_tlbi_nh_asid(4, 0));
	char vs_labels[64], series[256], *t0, *t1, *t2;
	struct http_reply r;
	struct smmu_client *c;
	uint32_t vs, sync, err, idx;
	struct tlib_ring ring;
	struct expo e;
	double fwd, iss, coal;

	tlib_daemon_start(&self->d, extra);
	ASSERT_NE(self->d.metrics[0], '\0');
	ASSERT_EQ(strncmp(self->d.metrics, "127.0.0.1:", 10), 0);
	ASSERT_NE(atoi(self->d.metrics + 10), 0);

	t0 = scrape(&self->d, &e);
	ASSERT_GT(e.samples, 40);
	ASSERT_EQ(expo_value(t0, "smmu_offload_host_smmus"), 2);
	ASSERT_EQ(expo_value(t0, "smmu_offload_vsmmus"), 0);
	ASSERT_EQ(expo_value(t0, "smmu_offload_rings"), 0);
	ASSERT_EQ(expo_value(t0, "smmu_offload_clients"), 0);
	ASSERT_GT(expo_value(t0, "smmu_offload_fd_limit"), 0);
	ASSERT_EQ(
		expo_value(
			t0,
			"smmu_offload_hsmmu_sync_latency_seconds_count{hsmmu=\"sim1\"}"),
		0);

	c = NULL;
	ASSERT_OK(smmu_client_connect(self->d.sock, "metrics", &c));
	vs = setup_vmm(c, "sim1", 0x8, &ring);
	snprintf(vs_labels, sizeof(vs_labels), "vsmmu=\"%u\",hsmmu=\"sim1\"",
		 vs);
	tlib_ring_run(&ring, cmds, 4, WAIT_MS);

	t1 = scrape(&self->d, &e);
	ASSERT_EQ(expo_value(t1, "smmu_offload_vsmmus"), 1);
	ASSERT_EQ(expo_value(t1, "smmu_offload_rings"), 1);
	ASSERT_EQ(expo_value(t1, "smmu_offload_devices"), 1);
	ASSERT_EQ(expo_value(t1, "smmu_offload_clients"), 1);
	/* Hello, vSMMU, device, ring: at least four requests more. */
	ASSERT_GE(expo_value(t1, "smmu_offload_requests_total"),
		  expo_value(t0, "smmu_offload_requests_total") + 4);
	ASSERT_EQ(expo_value(t1, "smmu_offload_clients_accepted_total"),
		  expo_value(t0, "smmu_offload_clients_accepted_total") + 1);
	ASSERT_EQ(expo_value(t1, "smmu_offload_bad_requests_total"), 0);
	/* Counted in hostile-socket's deadline and fd tests; here: exported. */
	ASSERT_EQ(expo_value(t1, "smmu_offload_hello_timeouts_total"), 0);
	ASSERT_EQ(expo_value(t1, "smmu_offload_fd_exhausted_total"), 0);
	ASSERT_EQ(expo_value(t1, "smmu_offload_hsmmu_rings{hsmmu=\"sim1\"}"),
		  1);
	ASSERT_EQ(expo_value(t1, "smmu_offload_hsmmu_rings{hsmmu=\"sim0\"}"),
		  0);
	snprintf(series, sizeof(series),
		 "smmu_offload_vsmmu_commands_forwarded_total{%s}", vs_labels);
	fwd = expo_value(t1, series);
	ASSERT_EQ(fwd, 4);
	snprintf(series, sizeof(series),
		 "smmu_offload_vsmmu_commands_issued_total{%s}", vs_labels);
	iss = expo_value(t1, series);
	snprintf(series, sizeof(series),
		 "smmu_offload_vsmmu_commands_coalesced_total{%s}", vs_labels);
	coal = expo_value(t1, series);
	ASSERT_GE(iss, 1);
	ASSERT_EQ(fwd - iss, coal);
	snprintf(series, sizeof(series), "smmu_offload_vsmmu_syncs_total{%s}",
		 vs_labels);
	ASSERT_GE(expo_value(t1, series), 1);
	snprintf(series, sizeof(series), "smmu_offload_vsmmu_ioctls_total{%s}",
		 vs_labels);
	ASSERT_GE(expo_value(t1, series), 1);
	snprintf(series, sizeof(series), "smmu_offload_vsmmu_rings{%s}",
		 vs_labels);
	ASSERT_EQ(expo_value(t1, series), 1);
	/* The host SMMU's counters and histograms moved; sim0's did not. */
	ASSERT_EQ(
		expo_value(
			t1,
			"smmu_offload_hsmmu_commands_issued_total{hsmmu=\"sim1\"}"),
		iss);
	ASSERT_GE(
		expo_value(
			t1,
			"smmu_offload_hsmmu_backend_commands_total{hsmmu=\"sim1\"}"),
		iss);
	ASSERT_EQ(
		expo_value(
			t1,
			"smmu_offload_hsmmu_backend_commands_total{hsmmu=\"sim0\"}"),
		0);
	ASSERT_GE(
		expo_value(
			t1,
			"smmu_offload_hsmmu_sync_latency_seconds_count{hsmmu=\"sim1\"}"),
		1);
	/* (Doubles: compared as doubles, not by the harness's integers.) */
	ASSERT_TRUE(
		expo_value(
			t1,
			"smmu_offload_hsmmu_sync_latency_seconds_sum{hsmmu=\"sim1\"}") >
		0);
	ASSERT_EQ(
		expo_value(
			t1,
			"smmu_offload_hsmmu_sync_latency_seconds_count{hsmmu=\"sim0\"}"),
		0);
	/* One batch per ioctl; the batch histogram's sum is the commands. */
	ASSERT_GE(
		expo_value(
			t1,
			"smmu_offload_hsmmu_batch_commands_count{hsmmu=\"sim1\"}"),
		1);
	ASSERT_EQ(
		expo_value(
			t1,
			"smmu_offload_hsmmu_batch_commands_sum{hsmmu=\"sim1\"}"),
		iss);
	/* The batch of at most 4 commands is under le="4" already. */
	ASSERT_EQ(
		expo_value(
			t1,
			"smmu_offload_hsmmu_batch_commands_bucket{hsmmu=\"sim1\",le=\"4\"}"),
		expo_value(
			t1,
			"smmu_offload_hsmmu_batch_commands_count{hsmmu=\"sim1\"}"));
	ASSERT_NONNULL(strstr(t1, "smmu_offload_info{version=\""));
	ASSERT_TRUE(strstr(t1, ",loop=\"io_uring\"} 1\n") ||
		    strstr(t1, ",loop=\"epoll\"} 1\n"));

	/* A guest command error: a halt by code, a halted ring. */
	sync = tlib_ring_push_sync(&ring, &bad, 1);
	ASSERT_ERR(-EPIPE, ring_prod_wait(&ring.p, sync, 10000, WAIT_MS));
	ASSERT_OK(ring_prod_halt_info(&ring.p, &err, &idx));
	t2 = scrape(&self->d, &e);
	snprintf(series, sizeof(series),
		 "smmu_offload_vsmmu_halts_total{%s,error=\"ill\"}", vs_labels);
	ASSERT_EQ(expo_value(t2, series), 1);
	snprintf(series, sizeof(series),
		 "smmu_offload_vsmmu_halts_total{%s,error=\"abt\"}", vs_labels);
	ASSERT_EQ(expo_value(t2, series), 0);
	ASSERT_EQ(expo_value(t2, "smmu_offload_rings_halted"), 1);
	free(t2);
	ASSERT_OK(ring_prod_rewrite(&ring.p, idx, &fix));
	ASSERT_OK(smmu_client_ring_resume(c, ring.id));
	ASSERT_OK(ring_prod_wait(&ring.p, sync, 10000, WAIT_MS));
	t2 = scrape(&self->d, &e);
	ASSERT_EQ(expo_value(t2, "smmu_offload_rings_halted"), 0);
	snprintf(series, sizeof(series),
		 "smmu_offload_vsmmu_commands_forwarded_total{%s}", vs_labels);
	ASSERT_EQ(expo_value(t2, series), fwd + 1);
	/* The daemon's own family is there too. */
	ASSERT_EQ(
		expo_value(
			t2,
			"smmu_offload_log_messages_suppressed_total{class=\"halt\"}"),
		0);

	/* Other paths and methods are refused. */
	http_get(self->d.metrics, "/", &r);
	ASSERT_EQ(r.status, 404);
	http_reply_free(&r);
	http_get(self->d.metrics, "/metricsx", &r);
	ASSERT_EQ(r.status, 404);
	http_reply_free(&r);
	http_raw(self->d.metrics,
		 "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n", &r);
	ASSERT_EQ(r.status, 501);
	http_reply_free(&r);
	http_raw(self->d.metrics, "HEAD /metrics HTTP/1.0\r\n\r\n", &r);
	ASSERT_EQ(r.status, 501);
	http_reply_free(&r);

	/* Objects going away leave the scrape consistent. */
	ASSERT_OK(smmu_client_ring_detach(c, ring.id));
	ASSERT_OK(smmu_client_device_detach(c, vs, 0x8));
	ASSERT_OK(smmu_client_vsmmu_destroy(c, vs));
	free(t2);
	t2 = scrape(&self->d, &e);
	ASSERT_EQ(expo_value(t2, "smmu_offload_vsmmus"), 0);
	ASSERT_NULL(strstr(t2, vs_labels));
	/* Counters of the host SMMU are monotonic. */
	ASSERT_GE(
		expo_value(
			t2,
			"smmu_offload_hsmmu_commands_issued_total{hsmmu=\"sim1\"}"),
		iss + 1);

	smmu_client_free(c);
	tlib_ring_free(&ring);
	free(t0);
	free(t1);
	free(t2);
	tlib_daemon_stop(&self->d);
}

TEST_F_TIMEOUT(m, ctl_stats_shows_the_same_numbers, 60)
{
	const struct cmdq_cmd cmds[2] = { cmdq_build_cfgi_cd(0x8, 0, true),
					  cmdq_build_tlbi_nh_asid(3, 0) };
	const char *const extra[] = { "--metrics", "0", NULL };
	const char *const json_args[] = { "--json", "stats", NULL };
	const char *const human_args[] = { "stats", NULL };
	static char out[1 << 16];
	char after[64], series[256], *t;
	struct smmu_client *c;
	struct tlib_ring ring;
	struct expo e;
	uint32_t vs;

	tlib_daemon_start(&self->d, extra);
	/* "PORT" alone means loopback. */
	ASSERT_EQ(strncmp(self->d.metrics, "127.0.0.1:", 10), 0);
	ASSERT_OK(smmu_client_connect(self->d.sock, "ctl", &c));
	vs = setup_vmm(c, "sim0", 0x8, &ring);
	tlib_ring_run(&ring, cmds, 2, WAIT_MS);

	ASSERT_EQ(tlib_ctl(self->d.sock, json_args, out, sizeof(out)), 0);
	t = scrape(&self->d, &e);
	/* Nothing runs between the two reads: the numbers agree. */
	snprintf(after, sizeof(after), "{\"scope\":\"vsmmu\",\"id\":%u", vs);
	snprintf(
		series, sizeof(series),
		"smmu_offload_vsmmu_commands_forwarded_total{vsmmu=\"%u\",hsmmu=\"sim0\"}",
		vs);
	ASSERT_EQ(json_num(out, after, "cmds_forwarded"),
		  (unsigned long long)expo_value(t, series));
	ASSERT_EQ(json_num(out, after, "cmds_forwarded"), 2);
	snprintf(series, sizeof(series),
		 "smmu_offload_vsmmu_syncs_total{vsmmu=\"%u\",hsmmu=\"sim0\"}",
		 vs);
	ASSERT_EQ(json_num(out, after, "syncs"),
		  (unsigned long long)expo_value(t, series));
	snprintf(after, sizeof(after), "{\"scope\":\"hsmmu\",\"id\":0");
	ASSERT_EQ(
		json_num(out, after, "sync_latency_count"),
		(unsigned long long)expo_value(
			t,
			"smmu_offload_hsmmu_sync_latency_seconds_count{hsmmu=\"sim0\"}"));
	ASSERT_GE(json_num(out, after, "sync_latency_count"), 1);
	ASSERT_GE(json_num(out, after, "sync_latency_max_ns"),
		  json_num(out, after, "sync_latency_p50_ns"));
	ASSERT_EQ(
		json_num(out, after, "batch_cmds_sum"),
		(unsigned long long)expo_value(
			t,
			"smmu_offload_hsmmu_batch_commands_sum{hsmmu=\"sim0\"}"));
	ASSERT_EQ(
		json_num(out, after, "cmds_issued"),
		(unsigned long long)expo_value(
			t,
			"smmu_offload_hsmmu_commands_issued_total{hsmmu=\"sim0\"}"));
	free(t);

	/* The human form lists the vSMMU and the same counter names. */
	ASSERT_EQ(tlib_ctl(self->d.sock, human_args, out, sizeof(out)), 0);
	snprintf(after, sizeof(after), "vsmmu %u:", vs);
	ASSERT_NONNULL(strstr(out, after));
	ASSERT_NONNULL(strstr(out, "halts_ill"));
	ASSERT_NONNULL(strstr(out, "sync_latency_p99_ns"));

	ASSERT_OK(smmu_client_ring_detach(c, ring.id));
	smmu_client_free(c);
	tlib_ring_free(&ring);
	tlib_daemon_stop(&self->d);
}

TEST_F_TIMEOUT(m, metrics_off_unless_enabled, 30)
{
	tlib_daemon_start(&self->d, NULL);
	ASSERT_STREQ(self->d.metrics, "");
	ASSERT_NULL(strstr(self->d.status, "metrics"));
	tlib_daemon_stop(&self->d);
	/* No "metrics on" line either. */
	tlib_daemon_log_read(&self->d);
	ASSERT_NULL(strstr(self->d.log, "metrics on"));
}

TEST_F_TIMEOUT(m, bad_or_busy_metrics_address_refused, 30)
{
	static const char *const bad[] = { "localhost:80", "127.0.0.1:65536",
					   "1.2.3:4",	   "[::1",
					   "[::1]x",	   "127.0.0.1:-1" };
	const char *const extra0[] = { "--metrics", "127.0.0.1:0", NULL };
	char busy[96];
	struct tlib_daemon other;
	int st;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *const extra[] = { "--metrics", bad[i], NULL };

		st = tlib_daemon_exit(&self->d, extra);
		ASSERT_TRUE(WIFEXITED(st));
		ASSERT_EQ(WEXITSTATUS(st), 2);
	}

	/* A port another daemon holds: a start-up error, exit 1. */
	tlib_daemon_start(&self->d, extra0);
	snprintf(busy, sizeof(busy), "%s", self->d.metrics);
	daemon_init(&other);
	{
		const char *const extra[] = { "--metrics", busy, NULL };

		st = tlib_daemon_exit(&other, extra);
		ASSERT_TRUE(WIFEXITED(st));
		ASSERT_EQ(WEXITSTATUS(st), 1);
		ASSERT_TRUE(tlib_daemon_log_wait(&other, "cannot serve metrics",
						 WAIT_MS));
	}
	tlib_daemon_cleanup(&other);
	tlib_daemon_stop(&self->d);
}

/*
 * A hostile guest halting ring after ring: the halt messages of the watch
 * timer are rate-limited (3 per second here), the rest counted and
 * reported as suppressed, and the metrics count them too.
 */
TEST_F_TIMEOUT(m, halt_log_is_rate_limited, 60)
{
	enum { N = 12 };
	const char *const extra[] = {
		"--metrics", "127.0.0.1:0", "--log-rate-limit",
		"3/1",	     "--log-level", "warning",
		NULL
	};
	struct cmdq_cmd bad = cmdq_build_cfgi_cd(0x99, 0, true);
	struct tlib_ring rings[N];
	uint32_t syncs[N];
	unsigned long long logged = 0, suppressed = 0;
	struct smmu_client *c;
	double deadline;
	const char *p;
	struct expo e;
	char *t;

	tlib_daemon_start(&self->d, extra);
	ASSERT_OK(smmu_client_connect(self->d.sock, "hostile", &c));
	for (int i = 0; i < N; i++)
		setup_vmm(c, i % 2 ? "sim1" : "sim0", 0x8, &rings[i]);
	/* Every ring halts at once. */
	for (int i = 0; i < N; i++)
		syncs[i] = tlib_ring_push_sync(&rings[i], &bad, 1);
	for (int i = 0; i < N; i++)
		ASSERT_ERR(-EPIPE, ring_prod_wait(&rings[i].p, syncs[i], 10000,
						  WAIT_MS));

	/* Each halt is either logged or counted as suppressed; the count
	 * is reported once a token is back. Wait for the log to say so. */
	deadline = tlib_deadline(WAIT_MS);
	for (;;) {
		logged = suppressed = 0;
		for (p = self->d.log; (p = strstr(p, "ring halt(s)")); p++)
			logged++;
		for (p = self->d.log; (p = strstr(p, "warning: ")); p++) {
			unsigned long long n;

			if (sscanf(p,
				   "warning: %llu \"halt\" message(s) suppressed",
				   &n) == 1)
				suppressed += n;
		}
		if (logged + suppressed >= N)
			break;
		if (!tlib_daemon_log_more(&self->d, deadline)) {
			struct pollfd pf = { self->d.pidfd, POLLIN, 0 };

			FAIL("%llu logged + %llu suppressed of %d halts, daemon %s; log:\n%s",
			     logged, suppressed, N,
			     poll(&pf, 1, 0) == 1 ? "exited" : "alive",
			     self->d.log);
		}
	}
	if (logged + suppressed != N)
		fprintf(stderr, "%s", self->d.log);
	ASSERT_EQ(logged + suppressed, N);
	ASSERT_GE(suppressed, 1);
	/* At most 3 per second got through: the burst, then the refill. */
	ASSERT_LE(logged, N - 1);
	t = scrape(&self->d, &e);
	ASSERT_GE(
		expo_value(
			t,
			"smmu_offload_log_messages_suppressed_total{class=\"halt\"}"),
		suppressed);
	ASSERT_EQ(expo_value(t, "smmu_offload_rings_halted"), N);
	free(t);

	smmu_client_free(c);
	for (int i = 0; i < N; i++)
		tlib_ring_free(&rings[i]);
	tlib_daemon_stop(&self->d);
}

/*
 * Restart/upgrade: the ring's state is in the VMM's memfd. Commands the
 * VMM publishes while no service runs are issued once a new daemon has
 * the same memfd re-attached, from the cons in shared memory (nothing
 * before it is issued again), and their CMD_SYNC completes.
 */
TEST_F_TIMEOUT(m, restart_reattach_resumes_from_cons, 60)
{
	const struct cmdq_cmd before[2] = { cmdq_build_cfgi_cd(0x8, 0, true),
					    cmdq_build_tlbi_nh_asid(3, 0) };
	const struct cmdq_cmd during[3] = { cmdq_build_tlbi_nh_asid(5, 0),
					    cmdq_build_tlbi_nh_asid(6, 0),
					    cmdq_build_tlbi_nh_asid(7, 0) };
	const char *const extra[] = { "--metrics", "127.0.0.1:0", NULL };
	uint32_t vs, vdev, sync, cons_before;
	struct smmu_client *c;
	struct tlib_ring ring;
	char series[160], *t;
	struct expo e;

	tlib_daemon_start(&self->d, extra);
	ASSERT_OK(smmu_client_connect(self->d.sock, "vmm", &c));
	vs = setup_vmm(c, "sim0", 0x8, &ring);
	tlib_ring_run(&ring, before, 2, WAIT_MS);
	cons_before = __atomic_load_n(&ring.p.hdr->cons, __ATOMIC_ACQUIRE);
	ASSERT_EQ(cons_before, 3);
	/* The service goes away (upgrade): it drains and exits 0. */
	tlib_daemon_stop(&self->d);
	smmu_client_free(c);
	/* The detach left the ring as it was: not halted, cons kept. */
	ASSERT_ERR(-ENOENT, ring_prod_halt_info(&ring.p, &sync, &vdev));
	ASSERT_EQ(__atomic_load_n(&ring.p.hdr->cons, __ATOMIC_ACQUIRE),
		  cons_before);

	/* The guest goes on: published, nobody consumes yet. */
	sync = tlib_ring_push_sync(&ring, during, 3);
	ASSERT_FALSE(ring_prod_done_upto(&ring.p, sync));

	/* The new daemon; the VMM re-creates its objects and re-attaches
	 * the same memfd and eventfds. */
	tlib_daemon_start(&self->d, extra);
	ASSERT_OK(smmu_client_connect(self->d.sock, "vmm", &c));
	ASSERT_OK(smmu_client_vsmmu_create(c, "sim0", -1, 0, 0, &vs));
	ASSERT_OK(smmu_client_device_attach(c, vs, 0x108, 0x8, &vdev));
	ASSERT_OK(smmu_client_ring_attach(c, vs, ring.memfd, ring.db, ring.cq,
					  &ring.id));
	ASSERT_OK(ring_prod_wait(&ring.p, sync, 10000, WAIT_MS));
	/* Exactly the three published during the restart were issued. */
	t = scrape(&self->d, &e);
	snprintf(
		series, sizeof(series),
		"smmu_offload_vsmmu_commands_forwarded_total{vsmmu=\"%u\",hsmmu=\"sim0\"}",
		vs);
	ASSERT_EQ(expo_value(t, series), 3);
	snprintf(
		series, sizeof(series),
		"smmu_offload_vsmmu_ring_entries_total{vsmmu=\"%u\",hsmmu=\"sim0\"}",
		vs);
	ASSERT_EQ(expo_value(t, series), 4);
	free(t);
	smmu_client_free(c);
	tlib_ring_free(&ring);
	tlib_daemon_stop(&self->d);
}

/* Under journald, each line carries its syslog priority as "<N>". */
TEST_F_TIMEOUT(m, journal_stream_gets_priority_prefixes, 30)
{
	const char *const extra[] = { "--log-level", "notice", NULL };

	self->d.journal = true;
	tlib_daemon_start(&self->d, extra);
	ASSERT_TRUE(tlib_daemon_log_wait(
		&self->d, "<5>smmu-offloadd: notice: ready: ", WAIT_MS));
	tlib_daemon_stop(&self->d);
	ASSERT_FALSE(tlib_daemon_log_wait(&self->d, "\nsmmu-offloadd:", 0));
}

/* Without JOURNAL_STREAM (or when it names another file): no prefix. */
TEST_F_TIMEOUT(m, plain_stderr_has_no_prefix, 30)
{
	const char *const extra[] = { "--log-level", "notice", NULL };

	setenv("JOURNAL_STREAM", "1:1", 1);
	tlib_daemon_start(&self->d, extra);
	ASSERT_TRUE(tlib_daemon_log_wait(
		&self->d, "smmu-offloadd: notice: ready: ", WAIT_MS));
	ASSERT_EQ(strncmp(self->d.log, "smmu-offloadd: ", 15), 0);
	tlib_daemon_stop(&self->d);
}

/*
 * The installed default config lists every option of --help as a
 * commented "#key = value" line; uncommented, every line parses (user and
 * group names replaced by numbers: they need not exist here); as
 * installed (all commented) the daemon starts with it.
 */
TEST_F_TIMEOUT(m, default_config_lists_every_key, 30)
{
	const char *conf = tlib_env("SMMU_OFFLOADD_CONF");
	const char *help_argv[] = { tlib_env("SMMU_OFFLOADD"), "--help", NULL };
	static char help[1 << 15], text[1 << 15];
	char tmp[128], key[64];
	const char *p;
	unsigned int keys = 0;
	FILE *f;
	size_t n;

	f = fopen(conf, "re");
	ASSERT_NONNULL(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	ASSERT_EQ(tlib_run(help_argv, help, sizeof(help)), 0);
	for (p = help; (p = strstr(p, "\n  --")); p++) {
		size_t kl = strcspn(p + 5, " ,\n");
		char want[80];

		ASSERT_LT(kl, sizeof(key));
		memcpy(key, p + 5, kl);
		key[kl] = '\0';
		if (!strcmp(key, "config") || !strcmp(key, "help"))
			continue;
		snprintf(want, sizeof(want), "\n#%s = ", key);
		if (!strstr(text, want))
			FAIL("%s: no \"#%s = \" line", conf, key);
		keys++;
	}
	ASSERT_GE(keys, 24);

	/* Every key uncommented parses (--help exits after the config). */
	snprintf(tmp, sizeof(tmp), "%s/all.conf", self->d.dir);
	f = fopen(tmp, "we");
	ASSERT_NONNULL(f);
	for (p = text; *p;) {
		size_t ll = strcspn(p, "\n");

		if (p[0] == '#' && p[1] >= 'a' && p[1] <= 'z') {
			if (!strncmp(p, "#allow-uid", 10))
				fprintf(f, "allow-uid = 0\n");
			else if (!strncmp(p, "#allow-gid", 10))
				fprintf(f, "allow-gid = 0\n");
			else
				fprintf(f, "%.*s\n", (int)(ll - 1), p + 1);
		}
		p += ll + (p[ll] == '\n');
	}
	fclose(f);
	{
		const char *argv[] = { help_argv[0], "--config", tmp, "--help",
				       NULL };

		ASSERT_EQ(tlib_run(argv, help, sizeof(help)), 0);
	}
	unlink(tmp);

	/* As installed: starts (the command line supplies sim and socket). */
	{
		const char *const extra[] = { "--config", conf, NULL };

		tlib_daemon_start(&self->d, extra);
		tlib_daemon_stop(&self->d);
	}
}

TEST_HARNESS_MAIN
