#!/bin/bash
# Compile checks of the final tree (one case each):
#   nokvmi       KVM=y, KVM_INTROSPECTION=n, W=1, -Werror: build arch/x86/kvm/ (incl. virt/kvm)
#   modules      KVM=m, KVM_INTROSPECTION=y, W=1 + sparse (C=1), -Werror: build arch/x86/kvm/
#                (and samples/kvmi/, drivers/virt/ if the series has them)
#   uapi-headers UAPI_HEADER_TEST=y: linux/kvmi.h and asm/kvmi.h (and linux/kvmi_mem.h
#                if the series has it) must compile standalone
# Any warning that mentions a file of the series fails the check.
# They build in the bisect check's source dir and O= dirs (build/bisect-nokvmi,
# build/bisect-modules) with the same config fragments: the last prefix of
# make bisect is this very tree, so after it only the series' own objects are
# compiled again (from ccache, with sparse for modules).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

stage=compile
reset_results $stage
mkdir -p "$OUT/logs" "$CACHE/tmp"
ensure_pristine
check_series
bisect_src_prepare
# The O= dirs these checks used before they moved to the bisect's.
rm -rf "$BUILD/modules" "$BUILD/nokvmi" "$BUILD/.kconfig-modules" "$BUILD/.kconfig-nokvmi"

# bisect-src = pristine + the whole series (writes only files that differ).
tmp=$(mktemp -d "$CACHE/tmp/compile.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
{ series_paths; cat "$BMANIFEST" 2>/dev/null || true; } | sort -u >"$tmp/list"
stage_init "$tmp/stage" "$tmp/list"
while IFS= read -r p; do
	stage_apply "$tmp/stage" "$REPO/patches/$p" || die "patches/$p does not apply (see above)"
done < <(series_patches)
stage_sync "$tmp/stage" "$BSRC" "$tmp/list" "$BMANIFEST" quiet
((SYNC_CHANGED == 0)) || log "compile checks: $SYNC_CHANGED files of $BSRC moved to the final tree"

BMAKE=(make -s -C "$BSRC" ARCH=x86_64 CC="ccache gcc" HOSTCC="ccache gcc" -j"$JOBS")
series_re=$(series_warn_re)
own_re="(^|/)($(series_new_files | sed 's/[].[*^$+?(){}|\\]/\\&/g' | paste -sd'|')):[0-9]+"

# run_check NAME FLAVOR make-args...
run_check() {
	local name=$1 flavor=$2; shift 2
	local O=$BUILD/bisect-$flavor lf=$OUT/logs/compile-$name.log rc=0
	if ! KVMI_SRC=$BSRC KVMI_MANIFEST=$BMANIFEST "$REPO/scripts/kconfig.sh" "$flavor" "$O" 2>"$lf.config"; then
		cat "$lf.config" >&2
		result $stage FAIL "compile: $name" "config: $(grep -m1 -E 'config\[' "$lf.config" || echo failed)"
		return 0
	fi
	# Objects of series-touched C files are removed first, so their warnings
	# are printed again on every run (ccache replays them, so this is cheap).
	forget_series_objects "$O"
	log "compile check $name: make O=$O $*"
	"${BMAKE[@]}" O="$O" "$@" >"$lf" 2>&1 || rc=$?
	# Compiler warnings count in every file of the series; sparse warnings
	# (no [-W...] tag) only in the files the series adds: sparse is noisy
	# on upstream KVM code (context imbalances, truncating casts) that the
	# series only hooks into.
	local bad; bad=$(grep -E "$series_re" "$lf" | grep -E "$own_re|\[-W[^]]*\]\$" || true)
	if ((rc != 0)); then
		grep -E -A3 '(error|warning):|Error [0-9]' "$lf" | head -40 >&2 || tail -30 "$lf" >&2
		result $stage FAIL "compile: $name" "build failed, log: $lf"
	elif [[ -n $bad ]]; then
		head -40 <<<"$bad" >&2
		result $stage FAIL "compile: $name" "$(wc -l <<<"$bad") warnings in series files, log: $lf"
	else
		result $stage PASS "compile: $name"
	fi
}

run_check nokvmi nokvmi W=1 arch/x86/kvm/
targets=(arch/x86/kvm/)
[[ -d $BSRC/samples/kvmi ]] && targets+=(samples/kvmi/)
[[ -f $BSRC/drivers/virt/kvmi_mem.c ]] && targets+=(drivers/virt/)
run_check modules modules W=1 C=1 "${targets[@]}"

# UAPI header test: needs the installed headers, then the usr/include/ hdrtest objects.
O=$BUILD/bisect-modules lf=$OUT/logs/compile-uapi-headers.log rc=0
if [[ -f $O/.config ]] && grep -q '^CONFIG_UAPI_HEADER_TEST=y' "$O/.config"; then
	hdrs=(linux/kvmi asm/kvmi)
	[[ -f $BSRC/include/uapi/linux/kvmi_mem.h ]] && hdrs+=(linux/kvmi_mem)
	for h in "${hdrs[@]}"; do rm -f "$O/usr/include/$h.hdrtest"; done
	{ "${BMAKE[@]}" O="$O" headers && "${BMAKE[@]}" O="$O" usr/include/; } >"$lf" 2>&1 || rc=$?
	missing=()
	for h in "${hdrs[@]}"; do
		[[ -f $O/usr/include/$h.hdrtest ]] || missing+=("$h.h")
	done
	if ((rc != 0)); then
		grep -E -A3 'error|warning' "$lf" | head -40 >&2 || tail -30 "$lf" >&2
		result $stage FAIL "compile: uapi-headers" "header test failed, log: $lf"
	elif ((${#missing[@]})); then
		result $stage FAIL "compile: uapi-headers" "not tested: ${missing[*]} (not exported? check include/uapi Kbuild)"
	else
		result $stage PASS "compile: uapi-headers"
	fi
else
	result $stage FAIL "compile: uapi-headers" "modules config lacks UAPI_HEADER_TEST=y"
fi
! grep -q '^FAIL' "$RESULTS/$stage.txt"
