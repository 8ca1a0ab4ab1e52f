/* SPDX-License-Identifier: MIT */
/*
 * core_config_set(): the one parser of service settings. The daemon's
 * command line and config file and smmu-bench all go through it, so a
 * setting has one name, one syntax and one range everywhere.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "iommufd/iofd.h"

_Static_assert(CORE_NAME_MAX == IOFD_NAME_MAX, "host SMMU names: one size");

enum cfg_kind {
	CFG_U32, /* unsigned int field, [min, max] */
	CFG_U64, /* uint64_t field, [min, max] */
	CFG_STR, /* const char * field, kept by pointer */
	CFG_ISSUE, /* enum core_issue_mode */
	CFG_LOOP, /* enum core_loop_kind */
	CFG_BACKEND, /* backend.kind: kernel, sim or null */
};

struct cfg_key {
	const char *name; /* canonical */
	const char *alias; /* older spelling still accepted, or NULL */
	enum cfg_kind kind;
	size_t off;
	uint64_t min, max;
};

#define OFF(f) offsetof(struct core_config, f)

/*
 * Ranges: max-batch and ring-budget as core_service_new() accepts them;
 * max-inflight bounds the issuer threads started per host SMMU;
 * ctl-timeout-ms keeps a deadline a person can wait for.
 */
static const struct cfg_key cfg_keys[] = {
	{ "backend", NULL, CFG_BACKEND, OFF(backend.kind), 0, 0 },
	{ "sysfs-root", NULL, CFG_STR, OFF(backend.sysfs_root), 0, 0 },
	{ "issue-mode", "issue", CFG_ISSUE, OFF(issue_mode), 0, 0 },
	{ "max-inflight", NULL, CFG_U32, OFF(max_inflight), 0, 256 },
	{ "poll-us", NULL, CFG_U32, OFF(poll_us), 0, 1000000 },
	{ "vcmdq-poll-us", NULL, CFG_U32, OFF(vcmdq_poll_us), 1, 1000000 },
	{ "vcmdq-idle-us", NULL, CFG_U32, OFF(vcmdq_idle_us), 0, UINT_MAX },
	{ "ring-budget", NULL, CFG_U32, OFF(ring_budget), 0, 4096 },
	{ "max-batch", NULL, CFG_U32, OFF(max_batch), 0, 4096 },
	{ "rate-limit", "rate-cmds", CFG_U64, OFF(rate_cmds), 0, UINT64_MAX },
	{ "rate-burst", NULL, CFG_U32, OFF(rate_burst), 0, UINT_MAX },
	{ "loop", NULL, CFG_LOOP, OFF(loop), 0, 0 },
	{ "cpus", NULL, CFG_STR, OFF(cpus), 0, 0 },
	{ "max-rings", NULL, CFG_U32, OFF(max_rings), 0, UINT_MAX },
	{ "ctl-timeout-ms", NULL, CFG_U32, OFF(ctl_timeout_ms), 10, 3600000 },
	{ "sim-smmus", NULL, CFG_U32, OFF(sim_hsmmus), 1, CORE_MAX_HSMMU },
};

#define N_KEYS (sizeof(cfg_keys) / sizeof(cfg_keys[0]))

/* Decimal, 0x hex or 0 octal, as strtoull() reads them; no minus. */
static int parse_u64(const char *s, uint64_t *ret)
{
	unsigned long long v;
	char *end;

	if (!*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int set_word(const struct cfg_key *k, void *field, const char *v)
{
	switch (k->kind) {
	case CFG_ISSUE:
		if (!strcmp(v, "auto"))
			*(enum core_issue_mode *)field = CORE_ISSUE_AUTO;
		else if (!strcmp(v, "inline"))
			*(enum core_issue_mode *)field = CORE_ISSUE_INLINE;
		else if (!strcmp(v, "async"))
			*(enum core_issue_mode *)field = CORE_ISSUE_ASYNC;
		else
			return -EINVAL;
		return 0;
	case CFG_LOOP:
		/* "uring" is smmu-bench's older spelling of io_uring. */
		if (!strcmp(v, "auto"))
			*(enum core_loop_kind *)field = CORE_LOOP_AUTO;
		else if (!strcmp(v, "io_uring") || !strcmp(v, "uring"))
			*(enum core_loop_kind *)field = CORE_LOOP_URING;
		else if (!strcmp(v, "epoll"))
			*(enum core_loop_kind *)field = CORE_LOOP_EPOLL;
		else
			return -EINVAL;
		return 0;
	case CFG_BACKEND:
		if (strcmp(v, "kernel") && strcmp(v, "sim") &&
		    strcmp(v, "null"))
			return -EINVAL;
		*(const char **)field = v;
		return 0;
	case CFG_STR:
		*(const char **)field = v;
		return 0;
	default:
		return -EINVAL;
	}
}

int core_config_set(struct core_config *cfg, const char *key, const char *value)
{
	const struct cfg_key *k = NULL;
	uint64_t v;
	void *field;
	int r;

	if (!cfg || !key || !value)
		return -EINVAL;
	for (size_t i = 0; i < N_KEYS && !k; i++)
		if (!strcmp(key, cfg_keys[i].name) ||
		    (cfg_keys[i].alias && !strcmp(key, cfg_keys[i].alias)))
			k = &cfg_keys[i];
	if (!k)
		return -ENOENT;
	field = (char *)cfg + k->off;
	if (k->kind != CFG_U32 && k->kind != CFG_U64)
		return set_word(k, field, value);
	r = parse_u64(value, &v);
	if (r)
		return r;
	if (v < k->min || v > k->max)
		return -ERANGE;
	if (k->kind == CFG_U32)
		*(unsigned int *)field = (unsigned int)v;
	else
		*(uint64_t *)field = v;
	return 0;
}

const char *core_config_key(unsigned int i)
{
	return i < N_KEYS ? cfg_keys[i].name : NULL;
}

int core_hsmmu_discover(const struct core_config *cfg,
			char (*names)[CORE_NAME_MAX], unsigned int max,
			unsigned int *ret_n)
{
	const char *kind = cfg->backend.kind;
	unsigned int n;
	size_t found;
	int r;

	if (!kind)
		return -EINVAL;
	if (!strcmp(kind, "sim") || !strcmp(kind, "null")) {
		n = cfg->sim_hsmmus ? cfg->sim_hsmmus : 1;
		for (unsigned int i = 0; i < n && i < max; i++)
			snprintf(names[i], CORE_NAME_MAX, "sim%u", i);
		*ret_n = n;
		return 0;
	}
	if (strcmp(kind, "kernel"))
		return -EINVAL;
	r = iofd_discover(cfg->backend.sysfs_root, names, max, &found);
	if (r == -ENOENT) {
		found = 0;
		r = 0;
	}
	if (r)
		return r;
	*ret_n = found > UINT_MAX ? UINT_MAX : (unsigned int)found;
	return 0;
}
