#!/bin/bash
# Bisect check (make bisect; make check runs it): after every patch k of the
# series, the tree pristine + patches 1..k must build:
#   modules   scripts/config/{base,modules}.config (KVM=m, KVM_INTROSPECTION=y,
#             KVM_WERROR=y) with W=1: arch/x86/kvm/ (which includes virt/kvm),
#             and samples/kvmi/ and drivers/virt/ (the /dev/kvmmem guest
#             driver) once the prefix has them;
#   nokvmi    scripts/config/{base,nokvmi}.config (KVM=y, KVM_INTROSPECTION=n)
#             with W=1: arch/x86/kvm/;
#   kvmi_test once the prefix has tools/testing/selftests/kvm/x86_64/kvmi_test.c:
#             headers_install of the prefix, then only that selftest.
# A requested config symbol that no Kconfig of the prefix defines yet (e.g.
# KVM_INTROSPECTION before the patch adding it) is left out; any compiler
# warning in a file the series adds or changes fails the prefix.
# One case per patch, "bisect: NNNN-subject"; one log per prefix in
# out/logs/bisect/NNNN-subject.log, wall and CPU seconds per built prefix in
# out/logs/bisect/timings.txt.
#
# Results are cached by content: the key of prefix k hashes patches 1..k, the
# config fragments, the compiler version, this script and kconfig.sh; a result
# recorded for the key ($KVMI_CACHE/state/bisect/<key>) is reported without
# building (a failure only when its cause is a compiler/config diagnostic;
# KVMI_BISECT_RECHECK=1 ignores the cache). Builds use their own source dir
# ($KVMI_CACHE/bisect-src, moved from prefix to prefix by writing only the
# files whose content changes, so make recompiles only what a patch touched)
# and their own O= dirs (build/bisect-{modules,nokvmi,selftests}); the
# compile checks reuse them for the final tree.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

stage=bisect
reset_results $stage
ensure_pristine
check_series
VERSION=$(pristine_version)
BSTATE=$STATE/bisect
LOGS=$OUT/logs/bisect
mkdir -p "$BSTATE" "$LOGS" "$CACHE/tmp"
rm -f "$LOGS"/*.log
: >"$LOGS/timings.txt"

mapfile -t patches < <(series_patches)
if ((${#patches[@]} == 0)); then result $stage SKIP bisect "empty series"; exit 0; fi

bisect_src_prepare
BMAKE=(make -s -C "$BSRC" ARCH=x86_64 CC="ccache gcc" HOSTCC="ccache gcc" -j"$JOBS")
ST_SRC=tools/testing/selftests/kvm
ST_O=$BUILD/bisect-selftests

tmp=$(mktemp -d "$CACHE/tmp/bisect.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
stg=$tmp/stage
{ series_paths; cat "$BMANIFEST" 2>/dev/null || true; } | sort -u >"$tmp/list"
stage_init "$stg" "$tmp/list"
warn_re=$(series_warn_re)
# The selftest Makefile names its sources relative to tools/testing/selftests/kvm.
st_alt=$(series_paths | sed -n "s|^$ST_SRC/||p" | sed 's/[].[*^$+?(){}|\\]/\\&/g' | paste -sd'|')
st_warn_re="^(${st_alt:-x86_64/kvmi_test\\.c}):[0-9]+(:[0-9]+)?: (warning|error):"

# Cache key: everything a prefix result depends on besides the patches.
key=$( {
	echo "$VERSION"; gcc --version | head -1
	cat "$REPO"/scripts/config/{base,modules,nokvmi}.config "$REPO/scripts/bisect.sh" "$REPO/scripts/kconfig.sh"
} | sha256sum | cut -c1-64)

# CPU seconds (user + sys) used so far by this script's children: the build
# cost of a prefix independent of the load of the machine.
# (Sets CPU; not in a $(...) subshell, whose children counters start at 0.)
cpu_now() {
	times >"$tmp/times"
	CPU=$(awk 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] }
		printf "%d", s }' "$tmp/times")
}

# Short first diagnostic of a build log, paths relative to the source tree.
first_diag() {
	grep -m1 -E ': (error|warning):|No rule to make target|Error [0-9]+' "$1" |
		sed -E -e "s#$BSRC/##g" -e "s#(\.\./)+${BSRC##*/}/##g" -e "s#$BUILD/##g" -e 's/^ *//' | cut -c1-160
}
first_diag_re() { # first_diag_re REGEX LOG
	grep -m1 -E "$1" "$2" | sed -E -e "s#$BSRC/##g" -e "s#(\.\./)+${BSRC##*/}/##g" | cut -c1-160
}
# A failure is worth caching only when the log says why (not a kill, a full disk...).
diag_cause() {
	grep -qE ': (error|warning):|No rule to make target|^config\[' "$1" &&
		! grep -qE 'Killed signal|No space left|Terminated|interrupt' "$1"
}

# build_flavor FLAVOR TARGET...: config + build in build/bisect-FLAVOR;
# appends to the prefix log and to reasons[].
build_flavor() {
	local flavor=$1 O=$BUILD/bisect-$1 rc=0 bad; shift
	{ echo; echo "#### $flavor: config (scripts/config/base.config + $flavor.config)"; } >>"$lf"
	if ! KVMI_SRC=$BSRC KVMI_MANIFEST=$BMANIFEST KVMI_CONFIG_UNDEFINED_OK=1 \
			"$REPO/scripts/kconfig.sh" "$flavor" "$O" >>"$lf" 2>&1; then
		reasons+=("$flavor: config failed ($(grep -m1 -E '^config\[|ERROR' "$lf" | cut -c1-120))")
		return 0
	fi
	grep -E '^# CONFIG_KVM_INTROSPECTION is not set|^CONFIG_KVM_INTROSPECTION=' "$O/.config" >>"$lf" || true
	# Objects of series files outside KVM go, so that their warnings are
	# printed again. KVM's own objects (arch/x86/kvm, virt/kvm) stay: both
	# configs have KVM_WERROR, so a warning there leaves no object behind
	# and shows again in the next prefix; recompiling them for nothing
	# would cost every prefix tens of CPU seconds.
	forget_series_objects "$O" 'arch/x86/kvm/* virt/kvm/*'
	echo "#### $flavor: make O=$O W=1 $*" >>"$lf"
	local t0=$SECONDS; cpu_now; local c0=$CPU
	"${BMAKE[@]}" O="$O" W=1 "$@" >"$tmp/build.log" 2>&1 || rc=$?
	cpu_now
	cat "$tmp/build.log" >>"$lf"
	echo "#### $flavor: rc=$rc, $((SECONDS - t0)) s, cpu $((CPU - c0)) s" >>"$lf"
	bad=$(grep -cE "$warn_re" "$tmp/build.log" || true)
	if ((rc != 0)); then
		reasons+=("$flavor: build failed: $(first_diag "$tmp/build.log")")
	elif ((bad)); then
		reasons+=("$flavor: $bad warnings in series files: $(first_diag_re "$warn_re" "$tmp/build.log")")
	fi
	return 0
}

build_selftest() {
	local rc=0 bad f
	[[ -f $BSRC/$ST_SRC/x86_64/kvmi_test.c ]] || { echo "#### kvmi_test: not in this prefix" >>"$lf"; return 0; }
	echo "#### kvmi_test: headers_install (O=$BUILD/bisect-modules) + make -C $ST_SRC" >>"$lf"
	if [[ ! -f $BUILD/bisect-modules/.config ]] ||
		! "${BMAKE[@]}" O="$BUILD/bisect-modules" headers_install >"$tmp/build.log" 2>&1; then
		cat "$tmp/build.log" >>"$lf" 2>/dev/null || true
		reasons+=("kvmi_test: headers_install failed"); return 0
	fi
	# Objects of the series' selftest files go, so their warnings are printed again.
	while IFS= read -r f; do
		[[ $f == "$ST_SRC"/*.c ]] && { f=${f#"$ST_SRC"/}; rm -f "$ST_O/${f%.c}.o"; }
	done < <(series_paths)
	mkdir -p "$ST_O"
	local t0=$SECONDS; cpu_now; local c0=$CPU
	make -C "$BSRC/$ST_SRC" -j"$JOBS" OUTPUT="$ST_O" INSTALL_HDR_PATH="$BUILD/bisect-modules/usr" \
		KHDR_INCLUDES="-isystem $BUILD/bisect-modules/usr/include" CC="ccache gcc" \
		"$ST_O/x86_64/kvmi_test" >"$tmp/build.log" 2>&1 || rc=$?
	cpu_now
	cat "$tmp/build.log" >>"$lf"
	echo "#### kvmi_test: rc=$rc, $((SECONDS - t0)) s, cpu $((CPU - c0)) s" >>"$lf"
	bad=$(grep -cE "$st_warn_re|$warn_re" "$tmp/build.log" || true)
	if ((rc != 0)); then
		if grep -q 'No rule to make target' "$tmp/build.log"; then
			reasons+=("kvmi_test: not a target of the selftests Makefile (not wired in yet?)")
		else
			reasons+=("kvmi_test: build failed: $(first_diag "$tmp/build.log")")
		fi
	elif ((bad)); then
		reasons+=("kvmi_test: $bad warnings: $(grep -m1 -E "$st_warn_re|$warn_re" "$tmp/build.log" | cut -c1-120)")
	fi
	return 0
}

# Paths that the kernel builds (arch/x86/kvm/, samples/kvmi/, drivers/virt/) cannot see.
outside_kernel_build() {
	local f
	for f in "$@"; do
		case $f in Documentation/*|MAINTAINERS|tools/*|*/.gitignore) ;; *) return 1 ;; esac
	done
}

broken=
prev_built=-1 kreasons=() kdiag=0   # the prefix whose build dirs bisect-src matches, its results
total=$SECONDS built=0
cpu_now; cpu0=$CPU
for i in "${!patches[@]}"; do
	p=${patches[$i]} name=${patches[$i]%.patch}
	lf=$LOGS/$name.log
	key=$(printf '%s\n%s\n' "$key" "$(sha256sum <"$REPO/patches/$p")" | sha256sum | cut -c1-64)
	if [[ -n $broken ]]; then
		result $stage FAIL "bisect: $name" "not built: $broken does not apply"; continue
	fi
	if ! stage_apply "$stg" "$REPO/patches/$p" 2>"$lf"; then
		broken=$p
		result $stage FAIL "bisect: $name" "does not apply, log: $lf"; continue
	fi
	if [[ ${KVMI_BISECT_RECHECK:-0} != 1 && -f $BSTATE/$key ]]; then
		cp "$BSTATE/$key.log" "$lf" 2>/dev/null || true
		touch "$BSTATE/$key"
		read -r st why <"$BSTATE/$key" || true
		if [[ $st == PASS ]]; then
			result $stage PASS "bisect: $name"
		else
			result $stage FAIL "bisect: $name" "$why (cached), log: $lf"
		fi
		continue
	fi

	# Move bisect-src to this prefix and build.
	t=$SECONDS; cpu_now; c=$CPU
	stage_sync "$stg" "$BSRC" "$tmp/list" "$BMANIFEST" quiet
	{ echo "# bisect: prefix 1..$((i + 1)) of patches/series, last: $p"
	  echo "# $SYNC_CHANGED files changed in $BSRC"; } >"$lf"
	log "bisect $((i + 1))/${#patches[@]}: $name ($SYNC_CHANGED files changed)"
	reasons=()
	if ((prev_built == i - 1)) && outside_kernel_build "${SYNC_PATHS[@]}"; then
		# Only docs/selftests changed since the previous prefix, built just
		# before: the kernel builds would do nothing, keep their results.
		echo "#### modules, nokvmi: no file they build changed since the previous prefix: its results" >>"$lf"
		reasons=("${kreasons[@]}")
		((${#reasons[@]} == 0)) || printf '#### previous prefix: %s\n' "${reasons[@]}" >>"$lf"
	else
		targets=(arch/x86/kvm/)
		[[ -d $BSRC/samples/kvmi ]] && targets+=(samples/kvmi/)
		[[ -f $BSRC/drivers/virt/kvmi_mem.c ]] && targets+=(drivers/virt/)
		build_flavor modules "${targets[@]}"
		build_flavor nokvmi arch/x86/kvm/
		kdiag=0; diag_cause "$lf" && kdiag=1
	fi
	kreasons=("${reasons[@]}")
	prev_built=$i
	build_selftest
	cpu_now; dt=$((SECONDS - t)) dc=$((CPU - c)); built=$((built + 1))
	echo "$name wall ${dt}s cpu ${dc}s" >>"$LOGS/timings.txt"
	echo "# $dt s (cpu $dc s)" >>"$lf"
	if ((${#reasons[@]} == 0)); then
		echo PASS >"$BSTATE/$key"; cp "$lf" "$BSTATE/$key.log"
		result $stage PASS "bisect: $name"
	else
		why=$(printf '%s; ' "${reasons[@]}"); why=${why%; }
		if diag_cause "$lf" || ((kdiag)); then echo "FAIL $why" >"$BSTATE/$key"; cp "$lf" "$BSTATE/$key.log"; fi
		result $stage FAIL "bisect: $name" "$why, log: $lf"
	fi
done
cpu_now
log "bisect: ${#patches[@]} prefixes, $built built, $((SECONDS - total)) s (cpu $((CPU - cpu0)) s)"
echo "total: ${#patches[@]} prefixes, $built built, wall $((SECONDS - total))s cpu $((CPU - cpu0))s" >>"$LOGS/timings.txt"
# Forget results nobody asked for in a month.
find "$BSTATE" -type f -mtime +30 -delete 2>/dev/null || true
! grep -q '^FAIL' "$RESULTS/$stage.txt"
