#!/usr/bin/env bash
# Interim demo: builds the SMMUv3 command model's trace tool (smmu-trace)
# and runs it on the repo's copies of two real guest command-queue traces
# (Linux arm-smmu-v3 on QEMU's emulated SMMUv3, see tests/data and
# docs/TRACES.md): per-opcode counts, batch sizes, commands per SYNC,
# ASIDs/SIDs, validation of every command against the QEMU caps, and what
# cmdq_coalesce() makes of the forwarded commands.
#
# This is a stand-in: once the daemon exists, the daemon + bench demo
# replaces it (issue 2). Works as root on a fresh Debian bookworm (installs
# what is missing); as another user it needs the packages installed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
install_deps

build=${BUILD_DIR:-build-demo}
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" -Dtests=disabled -Dbench=disabled >/dev/null
fi
# Only what the demo runs: the rest of the tree has its own tests.
meson compile -C "$build" smmu-trace >/dev/null
tool=$build/cmdq/smmu-trace

for mode in lazy strict; do
	trace=tests/data/smmuv3-$mode-blk-nvme-net.trace.xz
	printf '\n==== %s (iommu.strict=%d)\n' "$mode" "$([ $mode = strict ] && echo 1 || echo 0)"
	"$tool" stats "$trace"
	printf -- '---- validate --caps qemu\n'
	"$tool" validate --caps qemu "$trace"
	printf -- '---- coalesce (cmdq_coalesce as a worker draining 16 guest batches at a time)\n'
	"$tool" coalesce --window 16 "$trace"
done
printf '\nsmmu-trace: see docs/TRACES.md for the format and the other options.\n'
