# Shared by scripts/*.sh: make sure the Debian packages the build, the
# tests and the demo need are installed. Sourced, not executed.

SMMU_OFFLOAD_PKGS=(
	meson ninja-build pkg-config gcc clang libclang-rt-14-dev clang-format
	liburing-dev libevent-dev libprotobuf-c-dev protobuf-c-compiler
	python3 xz-utils git
)

install_deps() {
	local missing=() p
	for p in "${SMMU_OFFLOAD_PKGS[@]}" "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'install ok installed' || missing+=("$p")
	done
	[ "${#missing[@]}" -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing packages: ${missing[*]}" >&2
		echo "run as root, or: sudo apt-get install ${missing[*]}" >&2
		return 1
	fi
	echo "installing: ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
