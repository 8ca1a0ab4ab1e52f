#!/usr/bin/env bash
# Build the libFuzzer targets with clang and run each for a bounded time.
#
#   scripts/fuzz.sh [-t SECONDS] [-j JOBS] [TARGET...]
#
# Targets: cmdq trace ring-cons vcmdq rpc (default: all). Each runs for SECONDS
# (default 30; $FUZZ_SECONDS) on a scratch copy of tests/corpus/<target>
# (new inputs do not touch the committed seeds; add interesting ones by
# hand). The whole tree is instrumented (-fsanitize=fuzzer-no-link, ASan,
# UBSan) so coverage reaches the libraries; the targets themselves link
# -fsanitize=fuzzer,address,undefined. Build directory: $FUZZ_BUILD
# (default build-fuzz). A crash leaves crash-* files in $FUZZ_OUT
# (default build-fuzz/out/<target>) and fails the script. Ends with
# "N passed, N failed". With $FUZZ_TESTLOG set, also writes one line per
# target (and one for a failed build) in meson's testlog.json format, so
# scripts/test.sh counts them with the other tests.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
install_deps || exit 1

secs=${FUZZ_SECONDS:-30}
build=${FUZZ_BUILD:-build-fuzz}
while getopts "t:" o; do
	case $o in
	t) secs=$OPTARG ;;
	*) echo "usage: $0 [-t SECONDS] [TARGET...]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(cmdq trace ring-cons vcmdq rpc)

if [ ! -f "$build/build.ninja" ]; then
	mkdir -p "$(dirname "$build")"
	CC=clang meson setup "$build" -Dwerror=true -Dfuzz=enabled \
		-Dbench=disabled -Db_sanitize=address,undefined \
		-Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link \
		>"$build.setup.log" 2>&1 || { cat "$build.setup.log"; exit 1; }
fi
testlog=${FUZZ_TESTLOG:-}
[ -z "$testlog" ] || : >"$testlog"
record() { # NAME OK|FAIL
	[ -z "$testlog" ] || printf '{"name": "%s", "result": "%s"}\n' "$1" "$2" >>"$testlog"
}

if ! ninja -C "$build" $(printf 'tests/fuzz/fuzz-%s ' "${targets[@]}"); then
	record "fuzz build (clang)" FAIL
	echo "0 passed, 1 failed"
	exit 1
fi

passed=0
failed=0
for t in "${targets[@]}"; do
	out=${FUZZ_OUT:-$build/out}/$t
	rm -rf "$out"
	mkdir -p "$out/corpus"
	cp tests/corpus/"$t"/* "$out/corpus/"
	bin=$(realpath "$build/tests/fuzz/fuzz-$t")
	printf '\n==== fuzz %s for %ss\n' "$t" "$secs"
	# -rss_limit_mb: the rpc target runs a whole service in process.
	if (cd "$out" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		"$bin" -max_total_time="$secs" \
		-rss_limit_mb=4096 -print_final_stats=1 corpus \
		>fuzz.log 2>&1); then
		grep -E '^stat::number_of_executed_units|DONE' "$out/fuzz.log" |
			tail -2
		passed=$((passed + 1))
		record "libfuzzer: fuzz-$t (${secs}s)" OK
	else
		echo "FAILED: fuzz-$t (log: $out/fuzz.log)"
		grep -E 'ERROR|SUMMARY|fuzz-' "$out/fuzz.log" | head -20
		ls "$out"/crash-* "$out"/leak-* "$out"/timeout-* 2>/dev/null
		failed=$((failed + 1))
		record "libfuzzer: fuzz-$t (${secs}s)" FAIL
	fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
