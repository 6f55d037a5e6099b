# Common helpers for the KVMI harness. Source this, do not run it.
# shellcheck shell=bash

# Repo root (this file lives in scripts/).
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Cache and build locations (override with env vars).
CACHE=${KVMI_CACHE:-/var/cache/kvmi}
SRC=$CACHE/src
STATE=$CACHE/state
BUILD=$CACHE/build
OUT=${KVMI_OUT:-$REPO/out}
JOBS=${KVMI_JOBS:-$(nproc)}

# Overlay top-level dirs (files the series adds, at their kernel paths).
OVERLAY_DIRS=(Documentation arch include virt tools)

# ccache + reproducible build identity for every kernel/selftest compile.
export CCACHE_DIR=${CCACHE_DIR:-$CACHE/ccache}
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
export CCACHE_BASEDIR=$CACHE
export CCACHE_NOHASHDIR=1
export KBUILD_BUILD_TIMESTAMP=${KBUILD_BUILD_TIMESTAMP:-"Thu Jan  1 00:00:00 UTC 2025"}
export KBUILD_BUILD_USER=kvmi
export KBUILD_BUILD_HOST=kvmi
export KBUILD_BUILD_VERSION=1
export LC_ALL=C

# make arguments shared by all kernel builds.
KMAKE=(make -s -C "$SRC" ARCH=x86_64 CC="ccache gcc" HOSTCC="ccache gcc" -j"$JOBS")

log()  { printf '==> %s\n' "$*" >&2; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die()  { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# Debian version of the installed linux-source-6.12 package, e.g. 6.12.117-1~deb12u1.
pristine_version() {
	dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null ||
		die "linux-source-6.12 is not installed (run scripts/deps.sh)"
}

pristine_dir() { echo "$CACHE/pristine/$(pristine_version)"; }

# Overlay file list (tracked + untracked-not-ignored), only existing files.
overlay_files() {
	(cd "$REPO" &&
	 git ls-files --cached --others --exclude-standard -- "${OVERLAY_DIRS[@]}" |
	 sort -u | while IFS= read -r f; do
		[[ -f $f || -L $f ]] && printf '%s\n' "$f"
	 done)
}

# Patch files in series order (strips comments and blank lines).
series_patches() {
	local s=$REPO/patches/series
	[[ -f $s ]] || return 0
	sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$s"
}

# Paths a patch touches (old and new names, minus a/ b/ prefixes).
patch_paths() {
	awk '/^diff --git /{ sub(/^a\//,"",$3); sub(/^b\//,"",$4); print $3; print $4; next }
	     /^(---|\+\+\+) [ab]\//{ p=$2; sub(/^[ab]\//,"",p); print p }' "$1" | sort -u
}

# Result file helpers: one line per case, "PASS name" / "FAIL name" / "SKIP name (reason)".
RESULTS=$OUT/results
result() { # result STAGE PASS|FAIL|SKIP name [reason]
	local stage=$1 st=$2 name=$3 why=${4:-}
	mkdir -p "$RESULTS"
	if [[ -n $why ]]; then echo "$st $name ($why)"; else echo "$st $name"; fi >>"$RESULTS/$stage.txt"
	if [[ -n $why ]]; then echo "$st $name ($why)"; else echo "$st $name"; fi >&2
}
reset_results() { mkdir -p "$RESULTS"; : >"$RESULTS/$1.txt"; }

# One harness run at a time per cache (builds share the O= dirs). The lock is
# taken once by the outermost script; children inherit it through KVMI_LOCKED.
if [[ -z ${KVMI_LOCKED:-} ]]; then
	mkdir -p "$CACHE"
	exec 9>>"$CACHE/.lock"
	if ! flock -n 9; then
		log "waiting for another harness run using $CACHE ..."
		flock 9
	fi
	export KVMI_LOCKED=1
fi

# Print the output of the tests named in $KVMI_SHOW from a serial log.
show_test_output() {
	local serial=$1 t
	for t in ${KVMI_SHOW:-}; do
		echo "---------------- output of $t ----------------"
		tr -d '\r' <"$serial" | sed -n "s/^\[$t\] //p"
		echo "----------------------------------------------"
	done
}
