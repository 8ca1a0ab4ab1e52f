#!/usr/bin/env bash
# The demo: build smmu-bench and compare, side by side in one run, today's
# QEMU path (one IOMMU_HWPT_INVALIDATE per guest command on the vCPU
# thread), QEMU with per-PROD-write batching, and smmu-offload, on
# simulated host SMMUs (iommufd sim backend, docs/COST-MODEL.md) with the
# IOTLB oracle checking every completed guest CMD_SYNC. The first row of
# every table is the headline, guest blocked per command: from the guest's
# PROD write until it may pass its CMD_SYNC, in every mode.
#   1. light load, 2 VMs on 2 CPUs, sim wait spin: the fair comparison of
#      the headline (equal offered load, modelled host time spent, not
#      slept);
#   2. strict-unmap (every guest unmap is TLBI_NH_VA + CMD_SYNC) over many
#      VMs, the service embedded in smmu-bench; sim wait block, whose wall
#      clock the table marks as not comparable between the modes;
#   3. a recorded guest trace (Linux arm-smmu-v3, lazy mode, tests/data)
#      replayed over many VMs, the offload mode through a real
#      smmu-offloadd daemon started on a private socket (--connect).
#   4. the same modes with real vCPUs (KVM guests, VM exits measured),
#      and beside them vcmdq (the software Tegra241 CMDQV: the guest's
#      queue consumed in place, no exit), when /dev/kvm works: one VM,
#      so its vCPU and the worker each get one of 2 CPUs.
# Takes about a minute and a half after the build on 2 cores. Works as root on a
# fresh Debian bookworm (installs what is missing, gnuplot-nox for the
# charts if it can); as another user it needs the packages installed.
# See docs/PERFORMANCE.md for how to read the table.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
install_deps
# Charts only: the demo runs without gnuplot.
install_deps gnuplot-nox 2>/dev/null || echo "(gnuplot-nox not installed: no charts)"

build=${BUILD_DIR:-build-demo}
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" -Dtests=disabled -Dbench=enabled >/dev/null
else
	meson configure "$build" -Dbench=enabled >/dev/null
fi
meson compile -C "$build" bench/smmu-bench daemon/smmu-offloadd >/dev/null
# Real vCPUs (part 4): kvm-exit-costs is built on x86-64 only.
meson compile -C "$build" bench/kvm/kvm-exit-costs >/dev/null 2>&1 || true
bench=$build/bench/smmu-bench
daemon=$build/daemon/smmu-offloadd

vms=${DEMO_VMS:-32}
secs=${DEMO_SECONDS:-4}
out=${DEMO_OUT:-$build/demo}
mkdir -p "$out"
tmp=$(mktemp -d)
dpid=
cleanup() {
	if [ -n "$dpid" ]; then
		kill "$dpid" 2>/dev/null || true
		wait "$dpid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# The service's default issue mode (auto: inline while host calls are
# short, async above; docs/PERFORMANCE.md "Service defaults").

printf '\n==== 1. the headline at equal offered load: strict-unmap, 2 VMs, 2 host SMMUs,\n'
printf '==== sim wait spin, %s s per mode; first row: guest blocked per command\n\n' "$secs"
"$bench" -w strict-unmap -n 2 -H 2 -d "$secs" --wait spin \
	--json "$out/light-spin.json"

printf '\n==== 2. strict-unmap: %s VMs, 2 simulated host SMMUs, %s s per mode\n' "$vms" "$secs"
printf '==== offload: the service EMBEDDED in smmu-bench; sim oracle on for every mode\n'
printf '==== sim wait block: wall clock not comparable between the modes (see the table)\n\n'
"$bench" -w strict-unmap -n "$vms" -H 2 -d "$secs" \
	--json "$out/strict.json" --plot "$out"

# 3. The same service as a daemon: smmu-offloadd with two simulated host
# SMMUs on a private socket; smmu-bench hands it the rings (memfds and
# eventfds over the control socket) and drives them from its own process.
sock=$tmp/smmu-offload.sock
"$daemon" --backend sim --sim-smmus 2 --socket "$sock" \
	--client-max-vsmmus 256 --client-max-rings 256 \
	--client-max-devices 1024 --log-level warning &
dpid=$!
for _ in $(seq 100); do
	[ -S "$sock" ] && break
	kill -0 "$dpid" 2>/dev/null || { echo "smmu-offloadd failed to start" >&2; exit 1; }
	sleep 0.05
done
[ -S "$sock" ] || { echo "smmu-offloadd: no socket at $sock" >&2; exit 1; }

trace=tests/data/smmuv3-lazy-blk-nvme-net.trace.xz
printf '\n==== 3. recorded guest trace %s over %s VMs, %s s per mode\n' "$trace" "$vms" "$secs"
printf '==== offload: THROUGH smmu-offloadd (pid %s, %s); its sim spins, so the\n' "$dpid" "$sock"
printf '==== baselines spin too; the oracle lives in the daemon: offload not verified here\n\n'
"$bench" -w "trace:$trace" -n "$vms" -H 2 -d "$secs" --wait spin \
	--connect "$sock" --json "$out/lazy-trace-daemon.json"

# 4. Real vCPUs: the guest is a KVM guest submitting as Linux's
# arm-smmu-v3 driver does, the VMM side of each mode runs on its MMIO
# exits (bench/kvm/); mode vcmdq runs the Tegra241 CMDQV guest driver's
# protocol against a register page in RAM, consumed by the service with
# no exit. Skipped, with the reason, without a usable /dev/kvm.
printf '\n==== 4. real vCPUs: 1 KVM VM on 1 host SMMU, strict-unmap, sim spin, 1 s per mode\n'
printf '==== (qemu, qemu-batched, offload, vcmdq: the software Tegra241 CMDQV); the VM exits\n'
printf '==== are measured. One VM, so that its vCPU and the service worker each have a CPU\n'
printf '==== on a 2-CPU machine (docs/PERFORMANCE.md "Headline: the software vCMDQ")\n\n'
rc=0
"$bench" --vcpu kvm -w strict-unmap -n 1 -H 1 -d 1 --wait spin \
	--json "$out/strict-kvm.json" || rc=$?
if [ "$rc" = 77 ]; then
	echo "(no usable /dev/kvm: real-vCPU comparison skipped)"
elif [ "$rc" != 0 ]; then
	exit "$rc"
elif [ -x "$build/bench/kvm/kvm-exit-costs" ]; then
	printf '\n==== what one guest notification costs on this host\n\n'
	"$build/bench/kvm/kvm-exit-costs" -n 1000 -r 3
fi

printf '\nJSON results (schema bench/SCHEMA.md) and charts (if gnuplot) in %s/.\n' "$out"
printf 'How to read the tables, and this machine'"'"'s limits: docs/PERFORMANCE.md.\n'
