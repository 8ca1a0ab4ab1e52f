/* SPDX-License-Identifier: MIT */
/*
 * smmu-offloadctl: inspect a running smmu-offloadd through libsmmu-offload.
 * Human output by default, --json for machines. Exit codes are part of
 * the interface (see usage()).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <smmu-offload/client.h>

#include "config.h"

enum {
	EXIT_OK = 0,
	EXIT_REQUEST = 1,
	EXIT_USAGE = 2,
	EXIT_CONNECT = 3,
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: smmu-offloadctl [--socket PATH] [--json] COMMAND\n"
		"\n"
		"Commands:\n"
		"  list                  host SMMUs, vSMMUs, rings and devices\n"
		"  stats                 service, every host SMMU and every vSMMU\n"
		"  stats service         service statistics\n"
		"  stats hsmmu INDEX     one host SMMU (index as in \"list\")\n"
		"  stats vsmmu ID        one vSMMU\n"
		"  stats ring ID         one ring\n"
		"\n"
		"Options:\n"
		"  --socket PATH  control socket (default %s); the admin socket\n"
		"                 PATH.admin is tried first (root and the service's\n"
		"                 uid may use it; it has its own connection slots)\n"
		"  --json         one JSON object on stdout\n"
		"  --help, --version\n"
		"\n"
		"Exit status: 0 success, 1 the service refused a request, 2 usage\n"
		"error, 3 cannot connect to the service.\n",
		SMMU_CLIENT_DEFAULT_SOCKET);
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static int fail(struct smmu_client *c, const char *what, int r)
{
	const char *msg = smmu_client_error(c);

	fprintf(stderr, "smmu-offloadctl: %s: %s%s%s\n", what, strerror(-r),
		*msg ? ": " : "", msg);
	return EXIT_REQUEST;
}

static const char *vq_state_name(enum smmu_client_vq_state s)
{
	switch (s) {
	case SMMU_CLIENT_VQ_OFF:
		return "off";
	case SMMU_CLIENT_VQ_ON:
		return "on";
	case SMMU_CLIENT_VQ_DRAINING:
		return "draining";
	case SMMU_CLIENT_VQ_HALTED:
		return "halted";
	default:
		return "unknown";
	}
}

/* The vCMDQ queues and guest RAM regions of @l, as JSON members. */
static void list_json_vcmdq_extras(const struct smmu_client_list *l)
{
	printf("],\"vcmdq_queues\":[");
	for (uint32_t i = 0; i < l->n_vqueues; i++) {
		const struct smmu_client_vcmdq_queue *q = &l->vqueues[i];

		printf("%s{\"vcmdq_id\":%u,\"lidx\":%u,\"state\":\"%s\","
		       "\"ready\":%s,\"err\":%u,\"prod\":%u,\"cons\":%u",
		       i ? "," : "", q->vcmdq_id, q->lidx,
		       vq_state_name(q->state), q->ready ? "true" : "false",
		       q->err, q->prod, q->cons);
		if (q->base_set)
			printf(",\"base_gpa\":%llu,\"log2size\":%u",
			       (unsigned long long)q->base_gpa, q->log2size);
		putchar('}');
	}
	printf("],\"guest_memory\":[");
	for (uint32_t i = 0; i < l->n_gmem; i++)
		printf("%s{\"vsmmu_id\":%u,\"gpa\":%llu,\"size\":%llu,"
		       "\"offset\":%llu}",
		       i ? "," : "", l->gmem[i].vsmmu_id,
		       (unsigned long long)l->gmem[i].gpa,
		       (unsigned long long)l->gmem[i].size,
		       (unsigned long long)l->gmem[i].offset);
}

/* The queues of vCMDQ @id and the guest RAM regions, as text. */
static void list_text_vcmdq_queues(const struct smmu_client_list *l,
				   uint32_t id)
{
	for (uint32_t i = 0; i < l->n_vqueues; i++) {
		const struct smmu_client_vcmdq_queue *q = &l->vqueues[i];

		if (q->vcmdq_id != id)
			continue;
		printf("    queue %u: %s%s", q->lidx, vq_state_name(q->state),
		       q->ready ? "" : " (gate closed)");
		if (q->state == SMMU_CLIENT_VQ_HALTED)
			printf(" err %u", q->err);
		if (q->base_set)
			printf(" base 0x%llx log2size %u",
			       (unsigned long long)q->base_gpa, q->log2size);
		else
			printf(" no base");
		printf(" prod 0x%x cons 0x%x\n", q->prod, q->cons);
	}
}

static void list_text_gmem(const struct smmu_client_list *l)
{
	printf("guest memory:%s\n", l->n_gmem ? "" : " none");
	for (uint32_t i = 0; i < l->n_gmem; i++)
		printf("  vsmmu %u gpa 0x%llx size 0x%llx (memfd offset 0x%llx)\n",
		       l->gmem[i].vsmmu_id, (unsigned long long)l->gmem[i].gpa,
		       (unsigned long long)l->gmem[i].size,
		       (unsigned long long)l->gmem[i].offset);
}

static int cmd_list(struct smmu_client *c, bool json)
{
	struct smmu_client_hsmmu *h = NULL;
	struct smmu_client_list *l = NULL;
	uint32_t nh;
	int r;

	r = smmu_client_list_hsmmus(c, &h, &nh);
	if (r)
		return fail(c, "list host SMMUs", r);
	r = smmu_client_list(c, 0, &l);
	if (r) {
		free(h);
		return fail(c, "list", r);
	}
	if (json) {
		printf("{\"backend\":");
		json_str(smmu_client_backend(c));
		printf(",\"host_smmus\":[");
		for (uint32_t i = 0; i < nh; i++) {
			printf("%s{\"index\":%u,\"name\":", i ? "," : "", i);
			json_str(h[i].name);
			printf(",\"loop\":");
			json_str(h[i].loop);
			printf(",\"issue_mode\":");
			json_str(h[i].issue_mode);
			printf(",\"n_vsmmus\":%u,\"n_rings\":%u}",
			       h[i].n_vsmmus, h[i].n_rings);
		}
		printf("],\"vsmmus\":[");
		for (uint32_t i = 0; i < l->n_vsmmus; i++) {
			printf("%s{\"id\":%u,\"host_smmu\":", i ? "," : "",
			       l->vsmmus[i].id);
			json_str(l->vsmmus[i].hsmmu);
			printf(",\"n_rings\":%u,\"n_devices\":%u}",
			       l->vsmmus[i].n_rings, l->vsmmus[i].n_devices);
		}
		printf("],\"rings\":[");
		for (uint32_t i = 0; i < l->n_rings; i++)
			printf("%s{\"id\":%u,\"vsmmu_id\":%u,\"halted\":%s,\"err\":%u}",
			       i ? "," : "", l->rings[i].id,
			       l->rings[i].vsmmu_id,
			       l->rings[i].halted ? "true" : "false",
			       l->rings[i].err);
		printf("],\"devices\":[");
		for (uint32_t i = 0; i < l->n_devices; i++)
			printf("%s{\"vsmmu_id\":%u,\"vsid\":%llu,\"dev_id\":%u,\"vdev_id\":%u}",
			       i ? "," : "", l->devices[i].vsmmu_id,
			       (unsigned long long)l->devices[i].vsid,
			       l->devices[i].dev_id, l->devices[i].vdev_id);
		printf("],\"vcmdqs\":[");
		for (uint32_t i = 0; i < l->n_vcmdqs; i++)
			printf("%s{\"id\":%u,\"vsmmu_id\":%u,\"nq\":%u,\"halted\":%u}",
			       i ? "," : "", l->vcmdqs[i].id,
			       l->vcmdqs[i].vsmmu_id, l->vcmdqs[i].nq,
			       l->vcmdqs[i].n_halted);
		list_json_vcmdq_extras(l);
		printf("],\"truncated\":%s}\n",
		       l->truncated ? "true" : "false");
	} else {
		printf("backend %s, server %s\n", smmu_client_backend(c),
		       smmu_client_server_version(c));
		printf("host SMMUs:\n");
		for (uint32_t i = 0; i < nh; i++)
			printf("  [%u] %-24s loop %-8s issue %-6s vSMMUs %u rings %u\n",
			       i, h[i].name, h[i].loop, h[i].issue_mode,
			       h[i].n_vsmmus, h[i].n_rings);
		printf("vSMMUs:%s\n", l->n_vsmmus ? "" : " none");
		for (uint32_t i = 0; i < l->n_vsmmus; i++)
			printf("  vsmmu %u on %s: %u rings, %u devices\n",
			       l->vsmmus[i].id, l->vsmmus[i].hsmmu,
			       l->vsmmus[i].n_rings, l->vsmmus[i].n_devices);
		printf("rings:%s\n", l->n_rings ? "" : " none");
		for (uint32_t i = 0; i < l->n_rings; i++) {
			printf("  ring %u on vsmmu %u", l->rings[i].id,
			       l->rings[i].vsmmu_id);
			if (l->rings[i].halted)
				printf(" HALTED err %u", l->rings[i].err);
			putchar('\n');
		}
		printf("devices:%s\n", l->n_devices ? "" : " none");
		for (uint32_t i = 0; i < l->n_devices; i++)
			printf("  vsmmu %u vSID 0x%llx -> dev %u (vdev %u)\n",
			       l->devices[i].vsmmu_id,
			       (unsigned long long)l->devices[i].vsid,
			       l->devices[i].dev_id, l->devices[i].vdev_id);
		printf("vcmdqs:%s\n", l->n_vcmdqs ? "" : " none");
		for (uint32_t i = 0; i < l->n_vcmdqs; i++) {
			printf("  vcmdq %u on vsmmu %u: %u queues, %u halted\n",
			       l->vcmdqs[i].id, l->vcmdqs[i].vsmmu_id,
			       l->vcmdqs[i].nq, l->vcmdqs[i].n_halted);
			list_text_vcmdq_queues(l, l->vcmdqs[i].id);
		}
		list_text_gmem(l);
		if (l->truncated)
			printf("(list truncated)\n");
	}
	free(h);
	smmu_client_list_free(l);
	return EXIT_OK;
}

static const char *scope_name(enum smmu_client_scope s)
{
	switch (s) {
	case SMMU_CLIENT_SCOPE_SERVICE:
		return "service";
	case SMMU_CLIENT_SCOPE_HSMMU:
		return "hsmmu";
	case SMMU_CLIENT_SCOPE_VSMMU:
		return "vsmmu";
	case SMMU_CLIENT_SCOPE_RING:
		return "ring";
	case SMMU_CLIENT_SCOPE_VCMDQ:
		return "vcmdq";
	}
	return "?";
}

/* Print one object's stats; @first: no separator before it (JSON). */
static int print_stats(struct smmu_client *c, enum smmu_client_scope scope,
		       uint32_t id, bool json, bool first)
{
	struct smmu_client_stats *s;
	int r = smmu_client_stats(c, scope, id, &s);

	if (r)
		return fail(c, "stats", r);
	if (json) {
		printf("%s{\"scope\":\"%s\",\"id\":%u", first ? "" : ",",
		       scope_name(scope), id);
		for (uint32_t i = 0; i < s->n_labels; i++) {
			printf(",");
			json_str(s->labels[i].name);
			printf(":");
			json_str(s->labels[i].value);
		}
		for (uint32_t i = 0; i < s->n_counters; i++) {
			printf(",");
			json_str(s->counters[i].name);
			printf(":%llu",
			       (unsigned long long)s->counters[i].value);
		}
		printf("}");
	} else {
		printf("%s %u:", scope_name(scope), id);
		for (uint32_t i = 0; i < s->n_labels; i++)
			printf(" %s=%s", s->labels[i].name, s->labels[i].value);
		putchar('\n');
		for (uint32_t i = 0; i < s->n_counters; i++)
			printf("  %-22s %llu\n", s->counters[i].name,
			       (unsigned long long)s->counters[i].value);
	}
	smmu_client_stats_free(s);
	return EXIT_OK;
}

static int parse_id(const char *s, uint32_t *ret)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || !*s || *end || v > UINT32_MAX)
		return -EINVAL;
	*ret = (uint32_t)v;
	return 0;
}

static int cmd_stats(struct smmu_client *c, int argc, char **argv, bool json)
{
	static const struct {
		const char *name;
		enum smmu_client_scope scope;
	} scopes[] = {
		{ "service", SMMU_CLIENT_SCOPE_SERVICE },
		{ "hsmmu", SMMU_CLIENT_SCOPE_HSMMU },
		{ "vsmmu", SMMU_CLIENT_SCOPE_VSMMU },
		{ "ring", SMMU_CLIENT_SCOPE_RING },
		{ "vcmdq", SMMU_CLIENT_SCOPE_VCMDQ },
	};
	struct smmu_client_hsmmu *h;
	uint32_t nh, id = 0;
	int r;

	if (argc == 0) {
		struct smmu_client_list *l;

		/* Service, every host SMMU, every vSMMU: the numbers the
		 * metrics endpoint exports. */
		r = smmu_client_list_hsmmus(c, &h, &nh);
		if (r)
			return fail(c, "list host SMMUs", r);
		free(h);
		r = smmu_client_list(c, 0, &l);
		if (r)
			return fail(c, "list", r);
		if (json)
			printf("[");
		r = print_stats(c, SMMU_CLIENT_SCOPE_SERVICE, 0, json, true);
		for (uint32_t i = 0; !r && i < nh; i++) {
			struct smmu_client_stats *st;
			int e = smmu_client_stats(c, SMMU_CLIENT_SCOPE_HSMMU, i,
						  &st);

			/* Not an admin: host SMMU counters are not ours. */
			if (e == -EPERM)
				break;
			if (!e)
				smmu_client_stats_free(st);
			r = print_stats(c, SMMU_CLIENT_SCOPE_HSMMU, i, json,
					false);
		}
		/* A vSMMU destroyed since the list is not an error. */
		for (uint32_t i = 0; !r && i < l->n_vsmmus; i++) {
			struct smmu_client_stats *st;
			int e = smmu_client_stats(c, SMMU_CLIENT_SCOPE_VSMMU,
						  l->vsmmus[i].id, &st);

			if (e == -ENOENT)
				continue;
			if (!e)
				smmu_client_stats_free(st);
			r = print_stats(c, SMMU_CLIENT_SCOPE_VSMMU,
					l->vsmmus[i].id, json, false);
		}
		smmu_client_list_free(l);
		if (json && !r)
			printf("]\n");
		return r;
	}
	for (size_t i = 0; i < sizeof(scopes) / sizeof(scopes[0]); i++) {
		if (strcmp(argv[0], scopes[i].name))
			continue;
		if (scopes[i].scope == SMMU_CLIENT_SCOPE_SERVICE) {
			if (argc != 1)
				return EXIT_USAGE;
		} else if (argc != 2 || parse_id(argv[1], &id)) {
			return EXIT_USAGE;
		}
		r = print_stats(c, scopes[i].scope, id, json, true);
		if (json && !r)
			putchar('\n');
		return r;
	}
	return EXIT_USAGE;
}

/*
 * The admin socket beside @path first: it never competes with VMMs for a
 * slot. Not there, not ours (not root, not the service's uid) or full:
 * @path.
 */
static int ctl_connect(const char *path, struct smmu_client **ret)
{
	const char *base = path ? path : SMMU_CLIENT_DEFAULT_SOCKET;
	char admin[256];
	int r = -ENAMETOOLONG;

	if ((size_t)snprintf(admin, sizeof(admin), "%s.admin", base) <
	    sizeof(admin))
		r = smmu_client_connect(admin, "smmu-offloadctl", ret);
	if (r == -ENOENT || r == -EACCES || r == -ECONNREFUSED ||
	    r == -EMFILE || r == -ENAMETOOLONG)
		r = smmu_client_connect(base, "smmu-offloadctl", ret);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	struct smmu_client *c;
	bool json = false;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			path = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("smmu-offloadctl %s\n", PACKAGE_VERSION);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc ||
	    (strcmp(argv[optind], "list") && strcmp(argv[optind], "stats"))) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[optind], "list") && optind + 1 != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	r = ctl_connect(path, &c);
	if (r) {
		fprintf(stderr, "smmu-offloadctl: cannot connect to %s: %s\n",
			path ? path : SMMU_CLIENT_DEFAULT_SOCKET, strerror(-r));
		return EXIT_CONNECT;
	}
	if (!strcmp(argv[optind], "list"))
		r = cmd_list(c, json);
	else
		r = cmd_stats(c, argc - optind - 1, argv + optind + 1, json);
	if (r == EXIT_USAGE)
		usage(stderr);
	smmu_client_free(c);
	return r;
}
