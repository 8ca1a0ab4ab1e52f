#!/usr/bin/env bash
# Apply (default) or check (--check) the project's .clang-format on every
# tracked C source and header. Generated protobuf code is not tracked.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=apply
case "${1:-}" in
--check) mode=check ;;
"") ;;
*) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

command -v clang-format >/dev/null || {
	echo "format.sh: clang-format not found (apt-get install clang-format)" >&2
	exit 2
}

mapfile -t files < <(git ls-files -co --exclude-standard -- '*.c' '*.h' | \
	while read -r f; do [ -f "$f" ] && echo "$f"; done)
[ "${#files[@]}" -gt 0 ] || { echo "format.sh: no sources found" >&2; exit 1; }

if [ "$mode" = check ]; then
	clang-format --dry-run --Werror "${files[@]}"
	echo "format.sh: ${#files[@]} files formatted correctly"
else
	clang-format -i "${files[@]}"
fi
