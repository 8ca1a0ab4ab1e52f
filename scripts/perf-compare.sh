#!/usr/bin/env bash
# Before/after in one run (issue 13's table; not a test):
#
#   scripts/perf-compare.sh [--quick] [-r REPS] BEFORE_REV [AFTER_REV=HEAD]
#
# Builds both revisions (git archive into a temporary directory, meson
# debugoptimized, tests off where the revision has that option; only the
# benches), then runs them alternately (before, after, before, ...; REPS
# times, default 5), in the same run:
#   - scenario A-spin (docs/PERFORMANCE.md section A):
#       smmu-bench -w strict-unmap -n 64 -H 2 -d 5 --wait spin --issue inline
#     guest blocked per command in each mode, offload's throughput, SYNC
#     p99 and service CPU; the oracle must report 0 stale (else the run
#     fails);
#   - the null ceiling, closed-loop producer ("Null backend: the service's
#     own ceiling"):
#       smmu-bench -b null -m offload -n 1 --vcpus 64 -d 3 --issue inline
#   - the same with the streaming producer (--producer stream, budget 64),
#     only if both builds have it;
#   - instructions per guest command on the consumer path at budgets
#     16/64/256, once per build (deterministic):
#       valgrind --tool=callgrind --toggle-collect=drive_pass \
#         build/bench/consumer-drive -n 200000 -b B
#     (only where the build has consumer-drive with -b);
#   - instructions per guest command of the coalescing on the batches an
#     smmu-bench worker coalesces (16 vCPUs' strict unmaps, K vCPUs per
#     batch, K = 16, 4 and 1..16 in turn), once per build:
#       valgrind --tool=callgrind --toggle-collect=replay_pass \
#         build/bench/coalesce-replay -n 64000 -v 16 -k K
#     (a revision without bench/coalesce-replay.c gets AFTER_REV's copy,
#     so cmdq_coalesce_info() of both revisions runs on the same batches).
# Prints a markdown table of medians (range in brackets) with after /
# before, the date, both commits and `uptime` before and after; exits
# non-zero if a build or run fails. --quick: 1 rep of short runs and
# 20000 commands under callgrind, to check the script itself.
set -uo pipefail
cd "$(dirname "$0")/.."

reps=5 quick=0
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	-r) reps=$2; shift ;;
	-*) echo "usage: $0 [--quick] [-r REPS] BEFORE_REV [AFTER_REV]" >&2; exit 2 ;;
	*) break ;;
	esac
	shift
done
[ $# -ge 1 ] && [ $# -le 2 ] || {
	echo "usage: $0 [--quick] [-r REPS] BEFORE_REV [AFTER_REV]" >&2
	exit 2
}
before=$(git rev-parse --short "$1^{commit}") || exit 2
after=$(git rev-parse --short "${2:-HEAD}^{commit}") || exit 2
if [ $quick = 1 ]; then
	reps=1 a_dur=0.5 n_dur=0.3 cg_n=20000
else
	a_dur=5 n_dur=3 cg_n=200000
fi
json=$PWD/scripts/perf-json.py
work=$(mktemp -d /tmp/perf-compare.XXXXXX)
fail=0

echo "# perf-compare $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "before: $before $(git log -1 --format=%s "$before" | cut -c1-70)"
echo "after:  $after $(git log -1 --format=%s "$after" | cut -c1-70)"
echo "uptime before: $(uptime)"
echo "reps: $reps (alternating), work dir $work"

# build SIDE REV: sources of REV in $work/SIDE, its benches in .../build.
build() {
	local d=$work/$1
	mkdir -p "$d" && git archive "$2" | tar -x -C "$d" || return 1
	if [ ! -f "$d/bench/coalesce-replay.c" ] &&
		git show "$after:bench/coalesce-replay.c" >"$work/replay.c" 2>/dev/null; then
		mv "$work/replay.c" "$d/bench/coalesce-replay.c"
		printf "\ncoalesce_replay = executable('coalesce-replay', %s,\n  dependencies: [bench_dep])\n" \
			"'coalesce-replay.c'" >>"$d/bench/meson.build"
	fi
	meson setup "$d/build" "$d" --buildtype=debugoptimized -Dtests=disabled \
		>"$work/$1-setup.log" 2>&1 ||
		meson setup --wipe "$d/build" "$d" --buildtype=debugoptimized \
			>"$work/$1-setup.log" 2>&1 || return 1
	ninja -C "$d/build" bench/smmu-bench >"$work/$1-build.log" 2>&1 || return 1
	# Older revisions may lack it: that column is then "-".
	ninja -C "$d/build" bench/consumer-drive >>"$work/$1-build.log" 2>&1 || true
	ninja -C "$d/build" bench/coalesce-replay >>"$work/$1-build.log" 2>&1 || true
}
for side in before after; do
	rev=$before
	[ $side = after ] && rev=$after
	if ! build $side "$rev"; then
		echo "perf-compare: building $side ($rev) failed: $work/$side-*.log" >&2
		exit 1
	fi
done
stream=1
for side in before after; do
	"$work/$side/build/bench/smmu-bench" --help | grep -q -- '--producer' || stream=0
done
[ $stream = 1 ] || echo "(the before build has no --producer stream: that row is left out)"

tsv=$work/compare.tsv
colname() { if [ "$1" = before ]; then echo "before $before"; else echo "after $after"; fi; }
# put ROW SIDE VALUE
put() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$tsv"; }
# run SIDE NAME ARGS...: that side's smmu-bench into $work/NAME.json.
run() {
	local side=$1 name=$2
	shift 2
	if ! "$work/$side/build/bench/smmu-bench" -q --json "$work/$name.json" "$@" \
		>"$work/$name.out" 2>&1; then
		echo "FAILED: $side smmu-bench $* (see $work/$name.out)" >&2
		fail=1
		return 1
	fi
}
us() { awk "BEGIN{print $1/1e3}"; }

for rep in $(seq "$reps"); do
	for side in before after; do
		col=$(colname $side)
		n=$side-A-$rep
		if run $side "$n" -w strict-unmap -n 64 -H 2 -d "$a_dur" --wait spin --issue inline; then
			for m in qemu qemu-batched offload; do
				put "A-spin: guest blocked ns/cmd, $m" "$col" \
					"$($json get "$work/$n.json" $m guest_blocked_ns_per_cmd)"
			done
			read -r t p99 svc < <($json get "$work/$n.json" offload \
				cmds_per_s_per_hsmmu p99_ns service_cpu_ns_per_cmd)
			put "A-spin: offload kcmds/s per host SMMU" "$col" "$(us "$t")"
			put "A-spin: offload SYNC p99 us" "$col" "$(us "$p99")"
			put "A-spin: offload service CPU ns/cmd" "$col" "$svc"
		fi
		n=$side-null-$rep
		if run $side "$n" -b null -m offload -n 1 --vcpus 64 -d "$n_dur" --issue inline; then
			read -r t svc < <($json get "$work/$n.json" offload \
				cmds_per_s_per_hsmmu service_cpu_ns_per_cmd)
			put "null, closed 64 loops: Mcmd/s" "$col" "$(awk "BEGIN{print $t/1e6}")"
			put "null, closed 64 loops: service CPU ns/cmd" "$col" "$svc"
		fi
		[ $stream = 1 ] || continue
		n=$side-stream-$rep
		if run $side "$n" -b null -m offload -n 1 -d "$n_dur" --issue inline --producer stream; then
			read -r t svc < <($json get "$work/$n.json" offload \
				cmds_per_s_per_hsmmu service_cpu_ns_per_cmd)
			put "null, stream producer B=64: Mcmd/s" "$col" "$(awk "BEGIN{print $t/1e6}")"
			put "null, stream producer B=64: service CPU ns/cmd" "$col" "$svc"
		fi
	done
done

# Callgrind: one run per build and budget (a single deterministic thread).
if command -v valgrind >/dev/null; then
	for b in 16 64 256; do
		for side in before after; do
			cd_bin=$work/$side/build/bench/consumer-drive
			[ -x "$cd_bin" ] || continue
			log=$work/$side-cg-$b.log
			if ! valgrind --tool=callgrind --toggle-collect=drive_pass \
				--callgrind-out-file="$work/$side-cg-$b.out" \
				"$cd_bin" -n "$cg_n" -b "$b" >"$log" 2>&1; then
				# An old driver without -b is not a failure of this run.
				grep -q 'usage' "$log" && continue
				echo "FAILED: $side consumer-drive -b $b under callgrind ($log)" >&2
				fail=1
				continue
			fi
			ir=$(awk '/Collected :/ { print $NF }' "$log")
			put "consumer-drive instructions/cmd, budget $b" "$(colname $side)" \
				"$(awk "BEGIN{print $ir/$cg_n}")"
		done
	done
	for k in 16 4 0; do
		for side in before after; do
			cr_bin=$work/$side/build/bench/coalesce-replay
			[ -x "$cr_bin" ] || continue
			log=$work/$side-cr-$k.log
			if ! valgrind --tool=callgrind --toggle-collect=replay_pass \
				--callgrind-out-file="$work/$side-cr-$k.out" \
				"$cr_bin" -n 64000 -v 16 -k "$k" >"$log" 2>&1; then
				echo "FAILED: $side coalesce-replay -k $k under callgrind ($log)" >&2
				fail=1
				continue
			fi
			ir=$(awk '/Collected :/ { print $NF }' "$log")
			ng=$(sed -n 's/.*: \([0-9]*\) guest commands.*/\1/p' "$log")
			put "coalescing instructions/guest cmd, 16 vCPUs, K=$k (0: 1..16)" \
				"$(colname $side)" "$(awk "BEGIN{print $ir/$ng}")"
		done
	done
else
	echo "(valgrind not installed: no instruction counts)"
fi

echo
echo "## Before ($before) / after ($after), same run; median of $reps (range)"
echo
if [ -s "$tsv" ]; then
	$json compare "$tsv"
else
	echo "(no results)"
	fail=1
fi
echo
echo "uptime after: $(uptime)"
[ $fail = 0 ] || echo "perf-compare: some runs FAILED (see above)" >&2
exit $fail
