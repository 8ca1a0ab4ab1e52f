/* SPDX-License-Identifier: MIT */
/*
 * smmu-bench's command line: usage, parsing, the option defaults.
 */
#include <errno.h>
#include <stddef.h>
#include <getopt.h>
#include <stdlib.h>

#include "bench/smmu-bench_i.h"

void sb_usage(FILE *f)
{
	fprintf(f,
		"usage: smmu-bench [options]\n"
		"  -w, --workload W     strict-unmap (default), lazy-flush, "
		"mixed, storm,\n"
		"                       trace:FILE[.xz], noisy (see --flood)\n"
		"  -m, --modes LIST     comma list of qemu,qemu-batched,"
		"offload (default all),\n"
		"                       vcmdq (--vcpu kvm only; default there "
		"but with\n"
		"                       kvm-msipoll)\n"
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
		"      --producer P     offload: closed (default: the vCPUs' "
		"closed loops) or\n"
		"                       stream: one thread per ring keeps it "
		"full (the worker's\n"
		"                       ceiling; no oracle, -k counts timed "
		"SYNCs per ring)\n"
		"      --stream-batch N   stream: entries per publish (default"
		" the ring budget)\n"
		"      --stream-sync-every N  stream: a CMD_SYNC as every Nth "
		"entry (default 2)\n"
		"  -d, --duration S     seconds per mode (default 2)\n"
		"  -k, --syncs K        instead: K waited SYNCs per vCPU (--vcpu kvm --idle:\n"
		"                       the active phase's batches, default 20000)\n"
		"      --seed N         workload seed (default 1)\n"
		"      --no-verify      do not check the sim oracle\n"
		"      --wait W         sim wait mode block (default), spin, "
		"none; block's sleeps\n"
		"                       overshoot: wall clock then not "
		"comparable between modes\n"
		"      --ioctl-ns N, --cmd-ns N, --sync-ns N   sim cost model\n");
	fprintf(f,
		"  the embedded service's settings, named and checked as "
		"smmu-offloadd's\n"
		"  (docs/RPC.md; core_config_set()):\n"
		"      --issue-mode M   auto (default), inline or async "
		"(--issue M too)\n"
		"      --poll-us N      worker poll window (default %u)\n"
		"      --loop L         auto (default), io_uring (or uring), "
		"epoll\n"
		"      --max-inflight N async: ioctls in flight per host SMMU "
		"(default 4)\n"
		"      --rate-limit N   per-vSMMU rate limit, commands/s "
		"(default 0 = off;\n"
		"                       --rate-cmds N too)\n"
		"      --ring-budget N, --max-batch N, --rate-burst N, --cpus "
		"LIST,\n"
		"      --vcmdq-poll-us N, --vcmdq-idle-us N, --max-rings N,\n"
		"      --ctl-timeout-ms N\n"
		"      --ring-log2 N    ring entries (default 10)\n"
		"      --trace-batches N  load at most N batches of a trace\n"
		"      --connect SOCKET offload through a running smmu-offloadd "
		"(its own backend\n"
		"                       config; the oracle is not reachable "
		"there)\n"
		"      --idle MS        instead: service CPU of --vms idle "
		"rings (<= 1024) over MS ms;\n"
		"                       with --vcpu kvm: --vms idle vCMDQ "
		"queues beside one KVM\n"
		"                       guest (mode vcmdq): its idle-to-active "
		"round trips, then its\n"
		"                       first command after MS ms idle\n"
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
		"      --kvm-pin        --vcpu kvm, offload and vcmdq: vCPU "
		"threads and "
		"service workers\n"
		"                       on separate halves of the CPUs\n"
		"      --kvm-lap        --vcpu kvm, a test: vCPU 0 of each VM "
		"holds its first\n"
		"                       CONS read until the others moved CONS "
		"a queue past\n"
		"                       its SYNC (or are done)\n"
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

static int parse_modes(const char *s, bool *modes, int *vcmdq)
{
	char buf[128], *save = NULL, *tok;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", s);
	memset(modes, 0, M_COUNT * sizeof(*modes));
	*vcmdq = 0;
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		int m;

		if (!strcmp(tok, "vcmdq")) { /* bench/kvm/kvm-vcmdq.c */
			*vcmdq = 1;
			continue;
		}
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
	OPT_VCPU,
	OPT_KVM_PIN,
	OPT_KVM_LAP,
	OPT_PRODUCER,
	OPT_STREAM_BATCH,
	OPT_STREAM_EVERY,
	OPT_SVC, /* a service setting: core_config_set() */
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
	/* Service settings: the daemon's names (core_config_set()); "issue"
	 * and "rate-cmds" are this program's older spellings. */
	{ "issue-mode", required_argument, NULL, OPT_SVC },
	{ "issue", required_argument, NULL, OPT_SVC },
	{ "poll-us", required_argument, NULL, OPT_SVC },
	{ "loop", required_argument, NULL, OPT_SVC },
	{ "max-inflight", required_argument, NULL, OPT_SVC },
	{ "vcmdq-poll-us", required_argument, NULL, OPT_SVC },
	{ "vcmdq-idle-us", required_argument, NULL, OPT_SVC },
	{ "ring-budget", required_argument, NULL, OPT_SVC },
	{ "max-batch", required_argument, NULL, OPT_SVC },
	{ "rate-limit", required_argument, NULL, OPT_SVC },
	{ "rate-cmds", required_argument, NULL, OPT_SVC },
	{ "rate-burst", required_argument, NULL, OPT_SVC },
	{ "cpus", required_argument, NULL, OPT_SVC },
	{ "max-rings", required_argument, NULL, OPT_SVC },
	{ "ctl-timeout-ms", required_argument, NULL, OPT_SVC },
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
	{ "vcpu", required_argument, NULL, OPT_VCPU },
	{ "kvm-pin", no_argument, NULL, OPT_KVM_PIN },
	{ "kvm-lap", no_argument, NULL, OPT_KVM_LAP },
	{ "producer", required_argument, NULL, OPT_PRODUCER },
	{ "stream-batch", required_argument, NULL, OPT_STREAM_BATCH },
	{ "stream-sync-every", required_argument, NULL, OPT_STREAM_EVERY },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* The numeric options: their range and the field of struct opts they set
 * (unsigned int, uint32_t or uint64_t; a 4-byte field's max fits in it). */
struct uint_opt {
	int val;
	uint64_t min, max;
	size_t off, size;
};

#define FIELD(f) offsetof(struct opts, f), sizeof(((struct opts *)0)->f)

static const struct uint_opt uint_opts[] = {
	{ 'n', 1, MAX_IDLE_RINGS, FIELD(vms) },
	{ OPT_VCPUS, 1, WL_MAX_STREAMS, FIELD(vcpus) },
	{ 'H', 1, MAX_HSMMU, FIELD(hsmmus) },
	{ 'T', 1, 64, FIELD(threads) },
	{ 'k', 1, UINT64_C(1) << 40, FIELD(syncs) },
	{ OPT_SEED, 0, UINT64_MAX, FIELD(seed) },
	{ OPT_IOCTL_NS, 0, 100000000, FIELD(sim.ioctl_ns) },
	{ OPT_CMD_NS, 0, 100000000, FIELD(sim.cmd_ns) },
	{ OPT_SYNC_NS, 0, 100000000, FIELD(sim.sync_ns) },
	{ OPT_RING, 7, 16, FIELD(ring_log2) },
	{ OPT_TRACE_BATCHES, 1, UINT64_MAX, FIELD(trace_batches) },
	{ OPT_VSMMUS, 1, MAX_HSMMU, FIELD(vsmmus) },
	{ OPT_DEVICES, 1, WL_MAX_SIDS, FIELD(devices) },
	{ OPT_FLOOD, 0, MAX_VMS, FIELD(flood) },
	{ OPT_IDLE, 1, 600000, FIELD(idle_ms) },
	{ OPT_FAULT_DROP, 1, UINT64_MAX, FIELD(fault_drop) },
	{ OPT_STREAM_BATCH, 1, 4096, FIELD(stream_batch) },
	{ OPT_STREAM_EVERY, 1, 4096, FIELD(stream_every) },
};

_Static_assert(sizeof(unsigned int) == sizeof(uint32_t),
	       "uint_opts stores unsigned int fields as uint32_t");

/* Numeric option @c: parse @arg into its field. Return: 0, -EINVAL, or
 * 1 if @c is not a numeric option. */
static int parse_uint_opt(struct opts *o, int c, const char *arg)
{
	for (size_t i = 0; i < sizeof(uint_opts) / sizeof(uint_opts[0]); i++) {
		const struct uint_opt *u = &uint_opts[i];
		uint64_t v;
		uint32_t v32;

		if (u->val != c)
			continue;
		if (parse_uint(arg, u->min, u->max, &v))
			return -EINVAL;
		v32 = (uint32_t)v;
		memcpy((char *)o + u->off,
		       u->size == sizeof(v32) ? (void *)&v32 : (void *)&v,
		       u->size);
		return 0;
	}
	return 1;
}

/* A keyword option's words and the value each stands for. */
struct kw {
	const char *name;
	int value;
};

static const struct kw wait_kw[] = { { "block", IOFD_SIM_WAIT_BLOCK },
				     { "spin", IOFD_SIM_WAIT_SPIN },
				     { "none", IOFD_SIM_WAIT_NONE },
				     { NULL, 0 } };
static const struct kw producer_kw[] = { { "closed", 0 },
					 { "stream", 1 },
					 { NULL, 0 } };
static const struct kw arrival_kw[] = { { "poisson", 1 },
					{ "fixed", 0 },
					{ NULL, 0 } };

static int parse_kw(const char *s, const struct kw *kw, int *ret)
{
	for (; kw->name; kw++)
		if (!strcmp(s, kw->name)) {
			*ret = kw->value;
			return 0;
		}
	return -EINVAL;
}

/* A real number in (@min, @max]. */
static int parse_double(const char *s, double min, double max, double *ret)
{
	char *end;
	double v = strtod(s, &end);

	if (*end || !(v > min && v <= max))
		return -EINVAL;
	*ret = v;
	return 0;
}

static void opts_default(struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->workload = "strict-unmap";
	o->modes[M_QEMU] = o->modes[M_QEMU_BATCHED] = o->modes[M_OFFLOAD] = 1;
	o->vcmdq = -1;
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
	o->svc.issue_mode = CORE_ISSUE_AUTO;
	o->svc.poll_us = CORE_DEFAULT_POLL_US;
	o->svc.loop = CORE_LOOP_AUTO;
	o->ring_log2 = 10;
	o->stream_every = 2;
}

/* Every option but the numeric ones. Return: 0 or -EINVAL. */
static int parse_other_opt(struct opts *o, int c, const char *arg)
{
	int k = 0, r = 0;

	switch (c) {
	case 'w':
		o->workload = arg;
		break;
	case 'm':
		r = parse_modes(arg, o->modes, &o->vcmdq);
		break;
	case 'b':
		o->backend = arg;
		if (strcmp(arg, "sim") && strcmp(arg, "null"))
			r = -EINVAL;
		break;
	case 'd':
		r = parse_double(arg, 0, 3600, &o->duration);
		break;
	case OPT_RATE:
		r = parse_double(arg, 0, 1e7, &o->rate);
		break;
	case OPT_NO_VERIFY:
		o->verify = false;
		break;
	case OPT_WAIT:
		o->wait_set = true;
		r = parse_kw(arg, wait_kw, &k);
		o->wait = r ? o->wait : (enum iofd_sim_wait)k;
		break;
	case OPT_PRODUCER:
		r = parse_kw(arg, producer_kw, &k);
		o->stream = r ? o->stream : k;
		break;
	case OPT_ARRIVAL:
		r = parse_kw(arg, arrival_kw, &k);
		o->poisson = r ? o->poisson : k;
		break;
	case OPT_JSON:
		o->json = arg;
		break;
	case OPT_PLOT:
		o->plot = arg;
		break;
	case OPT_CONNECT:
		o->connect = arg;
		break;
	case OPT_VCPU:
		o->kvm_msi = !strcmp(arg, "kvm-msipoll");
		o->kvm = o->kvm_msi || !strcmp(arg, "kvm");
		if (!o->kvm && strcmp(arg, "thread"))
			r = -EINVAL;
		break;
	case OPT_KVM_PIN:
		o->kvm_pin = true;
		break;
	case OPT_KVM_LAP:
		o->kvm_lap = true;
		break;
	case 'q':
		o->quiet = true;
		break;
	default:
		return -EINVAL;
	}
	return r;
}

/* The options given explicitly, for -w noisy's defaults. */
struct opts_seen {
	bool vms, hsmmus, flood;
};

/* After the last option: -w noisy, the combinations that cannot run, the
 * derived counts. */
static int opts_finish(struct opts *o, const struct opts_seen *seen)
{
	/* The issue 8 scenario; explicit options still win. */
	if (!strcmp(o->workload, "noisy")) {
		o->workload = "strict-unmap";
		if (!seen->vms)
			o->vms = 63;
		if (!seen->hsmmus)
			o->hsmmus = 1;
		if (!seen->flood)
			o->flood = 1;
	}
	if (o->kvm_pin && !o->kvm) {
		fprintf(stderr, "smmu-bench: --kvm-pin needs --vcpu kvm\n");
		return -EINVAL;
	}
	if (o->kvm_lap && !o->kvm) {
		fprintf(stderr, "smmu-bench: --kvm-lap needs --vcpu kvm\n");
		return -EINVAL;
	}
	if (o->vcmdq == 1 && (!o->kvm || o->kvm_msi)) {
		fprintf(stderr, "smmu-bench: mode vcmdq needs --vcpu kvm\n");
		return -EINVAL;
	}
	if (o->flood && (o->connect || o->idle_ms)) {
		fprintf(stderr, "smmu-bench: --flood runs with the embedded "
				"service only, not with --connect or --idle\n");
		return -EINVAL;
	}
	if (o->stream && (o->modes[M_QEMU] || o->modes[M_QEMU_BATCHED] ||
			  o->rate || o->flood || o->kvm || o->idle_ms)) {
		fprintf(stderr, "smmu-bench: --producer stream drives rings: "
				"-m offload only, closed loop, without --rate, "
				"--flood, --vcpu kvm, --idle\n");
		return -EINVAL;
	}
	if (o->stream) {
		/* modes-stream.c says why the oracle is off. */
		o->verify = false;
		if (!o->stream_batch)
			o->stream_batch = o->svc.ring_budget ?
						  o->svc.ring_budget :
						  CORE_DEFAULT_BUDGET;
		if (o->stream_batch > (1u << o->ring_log2) / 2) {
			fprintf(stderr,
				"smmu-bench: --stream-batch: at most "
				"half the ring (%u)\n",
				(1u << o->ring_log2) / 2);
			return -EINVAL;
		}
	}
	o->nvs = o->vms * o->vsmmus;
	o->nall = o->nvs + o->flood;
	return 0;
}

/* The long name of option @c, for the error message. */
static const char *opt_name(int c)
{
	for (const struct option *lo = long_opts; lo->name; lo++)
		if (lo->val == c)
			return lo->name;
	return "?";
}

int sb_parse_opts(int argc, char **argv, struct opts *o)
{
	struct opts_seen seen = { false, false, false };
	int c, li = -1;

	opts_default(o);
	while ((c = getopt_long(argc, argv, "w:m:b:n:H:T:d:k:qh", long_opts,
				&li)) != -1) {
		const char *name = c == OPT_SVC ? long_opts[li].name :
						  opt_name(c);
		int r;

		if (c == 'h') {
			sb_usage(stdout);
			exit(0);
		}
		if (c == '?')
			return -EINVAL;
		seen.vms |= c == 'n';
		seen.hsmmus |= c == 'H';
		seen.flood |= c == OPT_FLOOD;
		if (c == OPT_SVC)
			r = core_config_set(&o->svc, name, optarg);
		else
			r = parse_uint_opt(o, c, optarg);
		if (r > 0)
			r = parse_other_opt(o, c, optarg);
		if (r) {
			fprintf(stderr, "smmu-bench: bad value for --%s: %s\n",
				name, optarg ? optarg : "");
			return r;
		}
	}
	if (optind != argc)
		return -EINVAL;
	return opts_finish(o, &seen);
}
