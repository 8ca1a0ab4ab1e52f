#!/bin/sh
# SPDX-License-Identifier: MIT
# Issue 15's figures (docs/PERFORMANCE.md "vcmdq: the software CMDQV on
# real vCPUs"), in one go, for a QUIET machine: the KVM one-run tables
# with the service on a CPU of its own and in the default unpinned
# configuration, the idle figure, and the checks against the targets.
# Every number comes from one run of smmu-bench; nothing is averaged.
#
# usage: scripts/perf-issue15.sh [OUTDIR]   (default docs/perf/kvm/issue15)
# env:   BUILD (default build), DURATION (s per mode, default 2),
#        IDLE_MS (default 10000)
# Needs a usable /dev/kvm (smmu-bench exits 77 without one) and a build
# with the bench (meson setup build; meson compile -C build).
set -eu

BUILD=${BUILD:-build}
OUT=${1:-docs/perf/kvm/issue15}
D=${DURATION:-2}
IDLE_MS=${IDLE_MS:-10000}
BENCH=$BUILD/bench/smmu-bench
MODES=qemu,qemu-batched,offload,vcmdq

mkdir -p "$OUT"
log() { printf '\n== %s\n' "$*" | tee -a "$OUT/log.txt"; }
run() {
	name=$1
	shift
	log "$name: $BENCH $* (uptime: $(uptime))"
	"$BENCH" "$@" --json "$OUT/$name.json" | tee "$OUT/$name.txt"
}

log "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u '+%Y-%m-%d %H:%M UTC'), nproc $(nproc)"
log "exit costs (context for the round trips)"
"$BUILD/bench/kvm/kvm-exit-costs" | tee "$OUT/exit-costs.txt"

# 1. The service with a CPU of its own: one VM, one host SMMU, the sim
# spinning (a call costs its modelled time, not a sleep's wake-up),
# unpinned and then vCPU threads / workers pinned apart.
run one-spin --vcpu kvm -w strict-unmap -n 1 -H 1 -d "$D" --wait spin -m "$MODES"
run one-spin-pin --vcpu kvm -w strict-unmap -n 1 -H 1 -d "$D" --wait spin \
	--kvm-pin -m "$MODES"
# 2. The default configuration: 2 VMs on 2 host SMMUs, unpinned, the sim
# blocking (the defaults), and the same with the sim spinning.
run two-default --vcpu kvm -w strict-unmap -n 2 -d "$D" -m "$MODES"
run two-spin --vcpu kvm -w strict-unmap -n 2 -d "$D" --wait spin -m "$MODES"
# 3. The idle figure: 1000 idle vCMDQ queues beside one guest, pinned
# and unpinned.
run idle-pin --vcpu kvm --idle "$IDLE_MS" -n 1000 -H 1 --wait spin --kvm-pin
run idle --vcpu kvm --idle "$IDLE_MS" -n 1000 -H 1 --wait spin

log "targets (issue 15), per run"
python3 - "$OUT" <<'EOF' | tee -a "$OUT/log.txt"
import json, os, sys

out = sys.argv[1]


def load(name):
    with open(os.path.join(out, name + '.json')) as f:
        return {m['mode']: m for m in json.load(f)['modes']}


for name in ('one-spin', 'one-spin-pin', 'two-default', 'two-spin'):
    by = load(name)
    q, v = by.get('qemu'), by.get('vcmdq')
    if not q or not v or not q['ok'] or not v['ok']:
        print(f'{name}: qemu or vcmdq failed')
        continue
    ql, vl, vm = q['guest_sync_ns'], v['guest_sync_ns'], v['metrics']
    wf = vm.get('wake_faults_per_cmd') or 0
    print(f"{name}: vcmdq/qemu p50 {vl['p50'] / ql['p50']:.3f} "
          f"(<= 0.1: {vl['p50'] <= ql['p50'] / 10}), "
          f"p99 {vl['p99'] / ql['p99']:.3f} "
          f"(<= 0.1: {vl['p99'] <= ql['p99'] / 10}); "
          f"round trip p50 / backend call p50 "
          f"{vm['rtt_p50_over_call_p50']:.2f} (<= 1.5: "
          f"{vm['rtt_p50_over_call_p50'] <= 1.5}); exits/cmd "
          f"{v['exits_per_cmd']:.4f}, wake faults/cmd {wf:.4f} (sum <= "
          f"0.01: {v['exits_per_cmd'] + wf <= 0.01}); stale "
          f"{sum(m['oracle']['stale'] for m in by.values())}")
for name in ('idle-pin', 'idle'):
    v = load(name).get('vcmdq')
    if not v or not v['ok']:
        print(f'{name}: failed')
        continue
    i = v['idle']
    cpu = 100.0 * i['service_cpu_ns'] / i['idle_ns']
    print(f"{name}: {i['queues']} idle queues, {i['idle_ms']} ms: service "
          f"CPU {cpu:.4f}% of a core (< 0.1: {cpu < 0.1}); first command "
          f"{i['first_after_idle_ns'] / 1e3:.1f} us = "
          f"{i['first_after_idle_ns'] / i['transition_p50_ns']:.2f}x the "
          f"idle-to-active p50 right after the arm "
          f"({i['transition_p50_ns'] / 1e3:.1f} us), "
          f"{i['first_after_idle_ns'] / i['transition_10ms_p50_ns']:.2f}x "
          f"the one 10 ms after ({i['transition_10ms_p50_ns'] / 1e3:.1f} "
          f"us); faulted {i['first_faulted']}")
EOF
log "done: $OUT"
