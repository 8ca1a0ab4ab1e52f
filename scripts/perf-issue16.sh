#!/usr/bin/env bash
# Issue 16's measurements in one run, for a quiet machine (not a test):
#
#   scripts/perf-issue16.sh [--quick] [-r REPS] [-B BUILD_DIR]
#
# 1. The null ceiling against the ring's own: ring-bench spin/stream at
#    batch = consumer max = B, and smmu-bench on the null backend, one
#    ring, one worker, with the streaming producer (--producer stream,
#    B entries per publish) and --ring-budget B, inline and async, for
#    B = 16 and 64; plus the old closed-loop producer (64 vCPU loops) for
#    reference. Ratio = median smmu-bench Mcmd/s / median ring-bench
#    Mcmd/s at the same B.
# 2. Inline vs async (and auto) across sim spin host-sync times 2/10/50 us
#    (docs/PERFORMANCE.md "Inline vs async across host-sync times", tables
#    1 and 2): throughput, host syncs per 1000 commands, SYNC p50/p99,
#    service CPU, oracle stale; to check the auto thresholds (EWMA, async
#    above 40 us, inline below 20 us) against data.
#
# Every cell runs REPS times (default 5), interleaved (rep 1 of every
# cell, then rep 2, ...), and the tables show the median with the range.
# Prints the date, the commit and `uptime` before and after; exits
# non-zero if any run fails (the raw TSV and JSON stay in the work dir it
# prints). --quick: 1 rep of short runs, to check the script itself.
# BUILD_DIR (default build) must be configured; the benches are rebuilt.
set -uo pipefail
cd "$(dirname "$0")/.."

reps=5 build=build quick=0
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	-r) reps=$2; shift ;;
	-B) build=$2; shift ;;
	*) echo "usage: $0 [--quick] [-r REPS] [-B BUILD_DIR]" >&2; exit 2 ;;
	esac
	shift
done
if [ $quick = 1 ]; then
	reps=1 dur=0.3 rb_t=0.1 syncs="2000 50000"
else
	dur=2 rb_t=1 syncs="2000 10000 50000"
fi

ninja -C "$build" bench/smmu-bench bench/ring-bench >/dev/null || {
	echo "perf-issue16: build failed" >&2
	exit 1
}
bench=$build/bench/smmu-bench ring=$build/bench/ring-bench
json=scripts/perf-json.py
work=$(mktemp -d /tmp/perf-issue16.XXXXXX)
fail=0

echo "# perf-issue16 $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' (dirty)')"
echo "uptime before: $(uptime)"
echo "reps: $reps (interleaved), smmu-bench -d $dur, ring-bench -t $rb_t; work dir $work"

# run NAME ARGS...: smmu-bench into $work/NAME.json; counts a failure.
run() {
	local name=$1
	shift
	if ! "$bench" -q --json "$work/$name.json" "$@" >"$work/$name.out" 2>&1; then
		echo "FAILED: smmu-bench $* (see $work/$name.out)" >&2
		fail=1
		return 1
	fi
}

# ---- 1. the null ceiling against ring-bench ----------------------------
t1=$work/ceiling.tsv
for rep in $(seq "$reps"); do
	for b in 16 64; do
		if out=$("$ring" -m spin -L stream -b "$b" -c 0 -r 1 -t "$rb_t"); then
			v=$(echo "$out" | awk '$1 == "spin" && $2 == "stream" { print $4 }')
			printf 'ring-bench spin/stream @ B=%s\tMcmd/s\t%s\n' "$b" "$v" >>"$t1"
		else
			echo "FAILED: ring-bench -b $b" >&2
			fail=1
		fi
		for m in inline async; do
			n=stream-$m-$b-$rep
			run "$n" -b null -m offload -n 1 -d "$dur" --issue "$m" \
				--producer stream --ring-budget "$b" || continue
			read -r t svc prod io p50 < <($json get "$work/$n.json" offload \
				cmds_per_s_per_hsmmu service_cpu_ns_per_cmd \
				producer_cpu_ns_per_cmd ioctls_per_1000_cmds p50_ns)
			r="stream $m @ B=$b"
			printf '%s\tMcmd/s\t%s\n' "$r" "$(awk "BEGIN{print $t/1e6}")" >>"$t1"
			printf '%s\tservice CPU ns/cmd\t%s\n' "$r" "$svc" >>"$t1"
			printf '%s\tproducer CPU ns/cmd\t%s\n' "$r" "$prod" >>"$t1"
			printf '%s\tioctls/1000 cmds\t%s\n' "$r" "$io" >>"$t1"
			printf '%s\tSYNC p50 us\t%s\n' "$r" "$(awk "BEGIN{print $p50/1e3}")" >>"$t1"
		done
	done
	n=closed-$rep
	run "$n" -b null -m offload -n 1 --vcpus 64 -d "$dur" --issue inline || continue
	read -r t svc prod io p50 < <($json get "$work/$n.json" offload \
		cmds_per_s_per_hsmmu service_cpu_ns_per_cmd \
		producer_cpu_ns_per_cmd ioctls_per_1000_cmds p50_ns)
	r="closed, 64 vCPU loops, inline @ B=64"
	printf '%s\tMcmd/s\t%s\n' "$r" "$(awk "BEGIN{print $t/1e6}")" >>"$t1"
	printf '%s\tservice CPU ns/cmd\t%s\n' "$r" "$svc" >>"$t1"
	printf '%s\tproducer CPU ns/cmd\t%s\n' "$r" "$prod" >>"$t1"
	printf '%s\tioctls/1000 cmds\t%s\n' "$r" "$io" >>"$t1"
	printf '%s\tSYNC p50 us\t%s\n' "$r" "$(awk "BEGIN{print $p50/1e3}")" >>"$t1"
done
echo
echo "## Null ceiling vs ring-bench spin/stream (batch = ring budget B), median of $reps"
echo
$json median "$t1" Mcmd/s "ring-bench spin/stream"

# ---- 2. inline vs async across host-sync times -------------------------
for tbl in 1 2; do
	if [ $tbl = 1 ]; then topo=(-n 4 --vcpus 4); else topo=(-n 16 --vcpus 1); fi
	t2=$work/sync-$tbl.tsv
	for rep in $(seq "$reps"); do
		for s in $syncs; do
			for m in inline async auto; do
				n=sync-$tbl-$s-$m-$rep
				run "$n" -m offload -w strict-unmap "${topo[@]}" -H 1 \
					-d "$dur" --wait spin --sync-ns "$s" --issue "$m" || continue
				read -r t hs p50 p99 svc st < <($json get "$work/$n.json" offload \
					cmds_per_s_per_hsmmu host_syncs_per_1000_cmds p50_ns \
					p99_ns service_cpu_ns_per_cmd stale)
				r="$((s / 1000)) us, $m"
				printf '%s\tkcmds/s per host SMMU\t%s\n' "$r" "$(awk "BEGIN{print $t/1e3}")" >>"$t2"
				printf '%s\thost syncs/1000 cmds\t%s\n' "$r" "$hs" >>"$t2"
				printf '%s\tSYNC p50 us\t%s\n' "$r" "$(awk "BEGIN{print $p50/1e3}")" >>"$t2"
				printf '%s\tSYNC p99 us\t%s\n' "$r" "$(awk "BEGIN{print $p99/1e3}")" >>"$t2"
				printf '%s\tservice CPU ns/cmd\t%s\n' "$r" "$svc" >>"$t2"
				printf '%s\toracle stale\t%s\n' "$r" "$st" >>"$t2"
			done
		done
	done
	echo
	echo "## Inline vs async vs auto, table $tbl: smmu-bench -m offload -w strict-unmap ${topo[*]} -H 1 -d $dur --wait spin --sync-ns S --issue M; median of $reps"
	echo
	$json median "$t2"
done

echo
echo "uptime after: $(uptime)"
[ $fail = 0 ] || echo "perf-issue16: some runs FAILED (see above)" >&2
exit $fail
