#!/usr/bin/env bash
# Run every test: installs missing packages, builds with warnings as errors,
# runs all suites on a normal build, the unit and integration suites under
# ASan+UBSan, the concurrency suite under TSan (clang), and each libFuzzer
# target for $FUZZ_SECONDS (default 15; scripts/fuzz.sh). Ends with one line
# "N passed, N failed, N skipped" computed from meson's testlog.json files by
# scripts/test-summary.py (one count per check: each TAP subtest; skips and
# expected failures listed above it), and exits non-zero on any failure or
# when no test ran.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
install_deps || exit 1

out=${BUILD_ROOT:-build-test}
jobs=$(nproc)
logs=()
status=0
build_failed=0

step() { printf '\n==== %s\n' "$*"; }

# build NAME [meson options...]: configure (once) and compile.
build() {
	local dir=$out/$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" -Dwerror=true "$@" >"$out/setup-$(basename "$dir").log" 2>&1 || {
			cat "$out/setup-$(basename "$dir").log"
			return 1
		}
	fi
	meson compile -C "$dir" -j "$jobs"
}

# run NAME [meson test args...]: run tests, keep the testlog for counting.
run() {
	local dir=$out/$1
	shift
	rm -f "$dir/meson-logs/testlog.json"
	meson test -C "$dir" --no-rebuild --print-errorlogs --num-processes "$jobs" "$@" || status=1
	if [ -f "$dir/meson-logs/testlog.json" ]; then
		cp "$dir/meson-logs/testlog.json" "$out/testlog-$(basename "$dir").json"
		logs+=("$out/testlog-$(basename "$dir").json")
	fi
}

mkdir -p "$out"

step "format check"
fmt_ok=0
scripts/format.sh --check && fmt_ok=1 || status=1

step "build: gcc, -Werror"
if build plain; then
	step "tests: all suites"
	run plain
else
	status=1
	build_failed=$((build_failed + 1))
fi

step "build: gcc, ASan+UBSan"
if build asan -Db_sanitize=address,undefined -Db_lundef=false -Dbench=disabled; then
	step "tests under ASan+UBSan: unit, integration"
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		run asan --suite unit --suite integration
else
	status=1
	build_failed=$((build_failed + 1))
fi

# clang, not gcc: gcc's TSan ignores atomic_thread_fence() (and says so
# with -Wtsan), and the ring protocol's re-checks rely on exactly that.
step "build: clang, TSan"
if CC=clang build tsan -Db_sanitize=thread -Db_lundef=false -Dbench=disabled; then
	step "tests under TSan: concurrency"
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
		run tsan --suite concurrency
else
	status=1
	build_failed=$((build_failed + 1))
fi

step "fuzz: libFuzzer (clang), ${FUZZ_SECONDS:-15}s per target"
FUZZ_BUILD=$out/fuzz FUZZ_TESTLOG=$out/testlog-fuzz.json \
	scripts/fuzz.sh -t "${FUZZ_SECONDS:-15}" || status=1
[ -s "$out/testlog-fuzz.json" ] && logs+=("$out/testlog-fuzz.json")

step "summary"
python3 scripts/test-summary.py "$fmt_ok" "$build_failed" "${logs[@]}"
rc=$?
[ $status -eq 0 ] || rc=1
exit $rc
