/* SPDX-License-Identifier: MIT */
/*
 * smmu-bench's command line: usage, parsing, the option defaults.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>

#include "bench/smmu-bench_i.h"

/* ---- options ------------------------------------------------------------------ */

void sb_usage(FILE *f)
{
	fprintf(f,
		"usage: smmu-bench [options]\n"
		"  -w, --workload W     strict-unmap (default), lazy-flush, "
		"mixed, storm,\n"
		"                       trace:FILE[.xz], noisy (see --flood)\n"
		"  -m, --modes LIST     comma list of qemu,qemu-batched,"
		"offload (default all)\n"
		"  -b, --backend B      sim (default) or null\n"
		"  -n, --vms N          VMs, 1..256 (default 16)\n"
		"      --vcpus N        vCPUs (closed loops) per vSMMU (default 1;"
		" traces <= 16)\n"
		"      --vsmmus-per-vm N  vSMMUs per VM, each its own ring and "
		"vIOMMU, on\n"
		"                       consecutive host SMMUs (default 1)\n"
		"      --devices N      generators: devices (vSIDs) per vSMMU, "
		"1..16 (default 1)\n"
		"      --rate R         open loop: R guest SYNC groups per second"
		" per VM, spread\n"
		"                       over its vCPUs; latency counts from the "
		"scheduled time\n"
		"      --flood N        noisy neighbour: N more VMs (one vSMMU "
		"each) flood\n"
		"                       TLBI_NH_ASID without waiting; counted "
		"apart (flood cmds/s)\n"
		"                       -w noisy = -w strict-unmap -n 63 -H 1 "
		"--flood 1\n"
		"      --arrival A      open loop: poisson (default) or fixed "
		"gaps\n"
		"  -H, --hsmmus N       host SMMUs, 1..16 (default 2)\n"
		"  -T, --threads N      offload producer threads (default 1)\n"
		"  -d, --duration S     seconds per mode (default 2)\n"
		"  -k, --syncs K        instead: K waited SYNCs per vCPU\n"
		"      --seed N         workload seed (default 1)\n"
		"      --no-verify      do not check the sim oracle\n"
		"      --wait W         sim wait mode block (default), spin, "
		"none; block's sleeps\n"
		"                       overshoot: wall clock then not "
		"comparable between modes\n"
		"      --ioctl-ns N, --cmd-ns N, --sync-ns N   sim cost model\n"
		"      --issue M        offload issue mode inline (default) or "
		"async\n"
		"      --poll-us N      offload worker poll window (default "
		"%u)\n"
		"      --loop L         auto (default), uring, epoll\n"
		"      --max-inflight N async: ioctls in flight per host SMMU "
		"(default 4)\n"
		"      --ring-log2 N    ring entries (default 10)\n"
		"      --rate-cmds N    offload: per-vSMMU rate limit, "
		"commands/s (default 0 = off)\n"
		"      --trace-batches N  load at most N batches of a trace\n"
		"      --connect SOCKET offload through a running smmu-offloadd "
		"(its own backend\n"
		"                       config; the oracle is not reachable "
		"there)\n"
		"      --idle MS        instead: service CPU of --vms idle "
		"rings (<= 1024) over MS ms\n"
		"      --json FILE      write the results (bench/SCHEMA.md)\n"
		"      --plot DIR       write SVG charts with gnuplot\n"
		"      --fault-drop N   test hook: lose every Nth forwarded "
		"command (the oracle\n"
		"                       must then report stale entries)\n"
		"      --vcpu V         thread (default), kvm: real vCPUs "
		"(bench/kvm/; exit 77\n"
		"                       without a usable /dev/kvm), kvm-msipoll: "
		"the same, SYNCs\n"
		"                       waited for by MSI write (Linux MSIPOLL)\n"
		"      --kvm-pin        --vcpu kvm, offload: vCPU threads and "
		"service workers\n"
		"                       on separate halves of the CPUs\n"
		"  -q, --quiet          no progress line\n",
		CORE_DEFAULT_POLL_US);
}

static int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int parse_modes(const char *s, bool *modes)
{
	char buf[128], *save = NULL, *tok;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", s);
	memset(modes, 0, M_COUNT * sizeof(*modes));
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		int m;

		for (m = 0; m < M_COUNT; m++)
			if (!strcmp(tok, sb_mode_names[m]))
				break;
		if (m == M_COUNT)
			return -EINVAL;
		modes[m] = true;
	}
	return 0;
}

enum {
	OPT_VCPUS = 256,
	OPT_SEED,
	OPT_NO_VERIFY,
	OPT_WAIT,
	OPT_IOCTL_NS,
	OPT_CMD_NS,
	OPT_SYNC_NS,
	OPT_ISSUE,
	OPT_POLL,
	OPT_LOOP,
	OPT_INFLIGHT,
	OPT_RING,
	OPT_TRACE_BATCHES,
	OPT_JSON,
	OPT_PLOT,
	OPT_FAULT_DROP,
	OPT_CONNECT,
	OPT_IDLE,
	OPT_VSMMUS,
	OPT_DEVICES,
	OPT_RATE,
	OPT_ARRIVAL,
	OPT_FLOOD,
	OPT_RATE_CMDS,
	OPT_VCPU,
	OPT_KVM_PIN,
};

static const struct option long_opts[] = {
	{ "workload", required_argument, NULL, 'w' },
	{ "modes", required_argument, NULL, 'm' },
	{ "backend", required_argument, NULL, 'b' },
	{ "vms", required_argument, NULL, 'n' },
	{ "vcpus", required_argument, NULL, OPT_VCPUS },
	{ "hsmmus", required_argument, NULL, 'H' },
	{ "threads", required_argument, NULL, 'T' },
	{ "duration", required_argument, NULL, 'd' },
	{ "syncs", required_argument, NULL, 'k' },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "no-verify", no_argument, NULL, OPT_NO_VERIFY },
	{ "wait", required_argument, NULL, OPT_WAIT },
	{ "ioctl-ns", required_argument, NULL, OPT_IOCTL_NS },
	{ "cmd-ns", required_argument, NULL, OPT_CMD_NS },
	{ "sync-ns", required_argument, NULL, OPT_SYNC_NS },
	{ "issue", required_argument, NULL, OPT_ISSUE },
	{ "poll-us", required_argument, NULL, OPT_POLL },
	{ "loop", required_argument, NULL, OPT_LOOP },
	{ "max-inflight", required_argument, NULL, OPT_INFLIGHT },
	{ "ring-log2", required_argument, NULL, OPT_RING },
	{ "trace-batches", required_argument, NULL, OPT_TRACE_BATCHES },
	{ "json", required_argument, NULL, OPT_JSON },
	{ "plot", required_argument, NULL, OPT_PLOT },
	{ "fault-drop", required_argument, NULL, OPT_FAULT_DROP },
	{ "connect", required_argument, NULL, OPT_CONNECT },
	{ "idle", required_argument, NULL, OPT_IDLE },
	{ "vsmmus-per-vm", required_argument, NULL, OPT_VSMMUS },
	{ "devices", required_argument, NULL, OPT_DEVICES },
	{ "rate", required_argument, NULL, OPT_RATE },
	{ "arrival", required_argument, NULL, OPT_ARRIVAL },
	{ "flood", required_argument, NULL, OPT_FLOOD },
	{ "rate-cmds", required_argument, NULL, OPT_RATE_CMDS },
	{ "vcpu", required_argument, NULL, OPT_VCPU },
	{ "kvm-pin", no_argument, NULL, OPT_KVM_PIN },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int sb_parse_opts(int argc, char **argv, struct opts *o)
{
	bool vms_set = false, hsmmus_set = false, flood_set = false;
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->workload = "strict-unmap";
	o->modes[M_QEMU] = o->modes[M_QEMU_BATCHED] = o->modes[M_OFFLOAD] = 1;
	o->backend = "sim";
	o->vms = 16;
	o->vcpus = 1;
	o->vsmmus = 1;
	o->poisson = true;
	o->hsmmus = 2;
	o->threads = 1;
	o->duration = 2.0;
	o->seed = 1;
	o->verify = true;
	o->wait = IOFD_SIM_WAIT_BLOCK;
	iofd_sim_config_default(&o->sim);
	o->issue = CORE_ISSUE_INLINE;
	o->poll_us = CORE_DEFAULT_POLL_US;
	o->loop = CORE_LOOP_AUTO;
	o->ring_log2 = 10;

	while ((c = getopt_long(argc, argv, "w:m:b:n:H:T:d:k:qh", long_opts,
				NULL)) != -1) {
		int r = 0;

		switch (c) {
		case 'w':
			o->workload = optarg;
			break;
		case 'm':
			r = parse_modes(optarg, o->modes);
			break;
		case 'b':
			o->backend = optarg;
			if (strcmp(optarg, "sim") && strcmp(optarg, "null"))
				r = -EINVAL;
			break;
		case 'n':
			r = parse_uint(optarg, 1, MAX_IDLE_RINGS, &v);
			o->vms = (unsigned int)v;
			vms_set = true;
			break;
		case OPT_VCPUS:
			r = parse_uint(optarg, 1, WL_MAX_STREAMS, &v);
			o->vcpus = (unsigned int)v;
			break;
		case 'H':
			r = parse_uint(optarg, 1, MAX_HSMMU, &v);
			o->hsmmus = (unsigned int)v;
			hsmmus_set = true;
			break;
		case 'T':
			r = parse_uint(optarg, 1, 64, &v);
			o->threads = (unsigned int)v;
			break;
		case 'd': {
			char *end;

			o->duration = strtod(optarg, &end);
			if (*end || !(o->duration > 0 && o->duration <= 3600))
				r = -EINVAL;
			break;
		}
		case 'k':
			r = parse_uint(optarg, 1, UINT64_C(1) << 40, &o->syncs);
			break;
		case OPT_SEED:
			r = parse_uint(optarg, 0, UINT64_MAX, &o->seed);
			break;
		case OPT_NO_VERIFY:
			o->verify = false;
			break;
		case OPT_WAIT:
			o->wait_set = true;
			if (!strcmp(optarg, "block"))
				o->wait = IOFD_SIM_WAIT_BLOCK;
			else if (!strcmp(optarg, "spin"))
				o->wait = IOFD_SIM_WAIT_SPIN;
			else if (!strcmp(optarg, "none"))
				o->wait = IOFD_SIM_WAIT_NONE;
			else
				r = -EINVAL;
			break;
		case OPT_IOCTL_NS:
			r = parse_uint(optarg, 0, 100000000, &v);
			o->sim.ioctl_ns = (uint32_t)v;
			break;
		case OPT_CMD_NS:
			r = parse_uint(optarg, 0, 100000000, &v);
			o->sim.cmd_ns = (uint32_t)v;
			break;
		case OPT_SYNC_NS:
			r = parse_uint(optarg, 0, 100000000, &v);
			o->sim.sync_ns = (uint32_t)v;
			break;
		case OPT_ISSUE:
			if (!strcmp(optarg, "async"))
				o->issue = CORE_ISSUE_ASYNC;
			else if (!strcmp(optarg, "inline"))
				o->issue = CORE_ISSUE_INLINE;
			else
				r = -EINVAL;
			break;
		case OPT_POLL:
			r = parse_uint(optarg, 0, 1000000, &v);
			o->poll_us = (unsigned int)v;
			break;
		case OPT_LOOP:
			if (!strcmp(optarg, "auto"))
				o->loop = CORE_LOOP_AUTO;
			else if (!strcmp(optarg, "uring"))
				o->loop = CORE_LOOP_URING;
			else if (!strcmp(optarg, "epoll"))
				o->loop = CORE_LOOP_EPOLL;
			else
				r = -EINVAL;
			break;
		case OPT_INFLIGHT:
			r = parse_uint(optarg, 1, 256, &v);
			o->max_inflight = (unsigned int)v;
			break;
		case OPT_RING:
			r = parse_uint(optarg, 7, 16, &v);
			o->ring_log2 = (unsigned int)v;
			break;
		case OPT_TRACE_BATCHES:
			r = parse_uint(optarg, 1, UINT64_MAX,
				       &o->trace_batches);
			break;
		case OPT_JSON:
			o->json = optarg;
			break;
		case OPT_PLOT:
			o->plot = optarg;
			break;
		case OPT_VSMMUS:
			r = parse_uint(optarg, 1, MAX_HSMMU, &v);
			o->vsmmus = (unsigned int)v;
			break;
		case OPT_DEVICES:
			r = parse_uint(optarg, 1, WL_MAX_SIDS, &v);
			o->devices = (unsigned int)v;
			break;
		case OPT_RATE: {
			char *end;

			o->rate = strtod(optarg, &end);
			if (*end || !(o->rate > 0 && o->rate <= 1e7))
				r = -EINVAL;
			break;
		}
		case OPT_ARRIVAL:
			if (!strcmp(optarg, "poisson"))
				o->poisson = true;
			else if (!strcmp(optarg, "fixed"))
				o->poisson = false;
			else
				r = -EINVAL;
			break;
		case OPT_RATE_CMDS:
			r = parse_uint(optarg, 0, UINT64_C(1) << 40,
				       &o->rate_cmds);
			break;
		case OPT_FLOOD:
			r = parse_uint(optarg, 0, MAX_VMS, &v);
			o->flood = (unsigned int)v;
			flood_set = true;
			break;
		case OPT_IDLE:
			r = parse_uint(optarg, 1, 600000, &v);
			o->idle_ms = (unsigned int)v;
			break;
		case OPT_CONNECT:
			o->connect = optarg;
			break;
		case OPT_FAULT_DROP:
			r = parse_uint(optarg, 1, UINT64_MAX, &o->fault_drop);
			break;
		case OPT_VCPU:
			o->kvm_msi = !strcmp(optarg, "kvm-msipoll");
			o->kvm = o->kvm_msi || !strcmp(optarg, "kvm");
			if (!o->kvm && strcmp(optarg, "thread"))
				r = -EINVAL;
			break;
		case OPT_KVM_PIN:
			o->kvm_pin = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			sb_usage(stdout);
			exit(0);
		default:
			return -EINVAL;
		}
		if (r) {
			const char *name = "?";

			for (const struct option *lo = long_opts; lo->name;
			     lo++)
				if (lo->val == c)
					name = lo->name;
			fprintf(stderr, "smmu-bench: bad value for --%s: %s\n",
				name, optarg ? optarg : "");
			return r;
		}
	}
	if (optind != argc)
		return -EINVAL;
	/* The issue 8 scenario; explicit options still win. */
	if (!strcmp(o->workload, "noisy")) {
		o->workload = "strict-unmap";
		if (!vms_set)
			o->vms = 63;
		if (!hsmmus_set)
			o->hsmmus = 1;
		if (!flood_set)
			o->flood = 1;
	}
	if (o->kvm_pin && !o->kvm) {
		fprintf(stderr, "smmu-bench: --kvm-pin needs --vcpu kvm\n");
		return -EINVAL;
	}
	if (o->flood && (o->connect || o->idle_ms)) {
		fprintf(stderr, "smmu-bench: --flood runs with the embedded "
				"service only, not with --connect or --idle\n");
		return -EINVAL;
	}
	o->nvs = o->vms * o->vsmmus;
	o->nall = o->nvs + o->flood;
	return 0;
}
