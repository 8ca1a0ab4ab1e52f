#!/bin/sh
# SPDX-License-Identifier: MIT
#
# `meson install` into a private prefix (a DESTDIR staging tree) gives an
# smmu-offloadctl that runs from there without LD_LIBRARY_PATH, and that
# loads the libsmmu-offload installed beside it (not the build tree's, not
# a system one). Usage: install-prefix.sh MESON BUILDDIR PREFIX BINDIR
set -eu
meson=$1 build=$2 prefix=$3 bindir=$4
case $bindir in /*) ;; *) bindir=$prefix/$bindir ;; esac
tmp=$(mktemp -d /tmp/so-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
DESTDIR=$tmp "$meson" install -C "$build" --no-rebuild --quiet >"$tmp.log" 2>&1 || {
	cat "$tmp.log" >&2
	rm -f "$tmp.log"
	exit 1
}
rm -f "$tmp.log"
ctl=$tmp$bindir/smmu-offloadctl
unset LD_LIBRARY_PATH
"$ctl" --version
"$ctl" --help >/dev/null
# What the loader resolves: the staged library, nothing else.
lib=$(LD_TRACE_LOADED_OBJECTS=1 "$ctl" | awk '/libsmmu-offload/ { print $3 }')
case $lib in
"$tmp"/*) echo "libsmmu-offload from $lib" ;;
*)
	echo "smmu-offloadctl loads libsmmu-offload from '$lib', not from $tmp" >&2
	exit 1
	;;
esac
