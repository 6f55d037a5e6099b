#!/bin/bash
# Compile checks (one case each):
#   nokvmi       KVM=y, KVM_INTROSPECTION=n, W=1, -Werror: build arch/x86/kvm/ (incl. virt/kvm)
#   modules      KVM=m, KVM_INTROSPECTION=y, W=1 + sparse (C=1), -Werror: build arch/x86/kvm/
#   uapi-headers UAPI_HEADER_TEST=y: linux/kvmi.h and asm/kvmi.h must compile standalone
# Any warning that mentions a file of the series fails the check.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

stage=compile
reset_results $stage
mkdir -p "$OUT/logs"

# Files of the series: known KVMI paths + every overlay file.
series_re='virt/kvm/introspection/|arch/x86/kvm/kvmi|include/linux/kvmi|include/uapi/linux/kvmi\.h|arch/x86/include/.*/kvmi'
while IFS= read -r f; do series_re+="|${f//./\\.}"; done < <(overlay_files)

# Objects of series-touched C files are removed first, so their warnings are
# printed again on every run (ccache replays them, so this is cheap).
forget_series_objects() {
	local O=$1 f
	while IFS= read -r f; do
		[[ $f == *.c ]] && rm -f "$O/${f%.c}.o"
	done <"$STATE/manifest"
	rm -rf "$O/virt/kvm/introspection"
}

# run_check NAME FLAVOR make-args...
run_check() {
	local name=$1 flavor=$2; shift 2
	local O=$BUILD/$flavor lf=$OUT/logs/compile-$name.log rc=0
	if ! "$REPO/scripts/kconfig.sh" "$flavor" 2>"$lf.config"; then
		cat "$lf.config" >&2
		result $stage FAIL "compile: $name" "config: $(grep -m1 -E 'config\[' "$lf.config" || echo failed)"
		return 0
	fi
	forget_series_objects "$O"
	log "compile check $name: make O=$O $*"
	"${KMAKE[@]}" O="$O" "$@" >"$lf" 2>&1 || rc=$?
	local bad; bad=$(grep -E '(warning|error):' "$lf" | grep -E "$series_re" || true)
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
run_check modules modules W=1 C=1 arch/x86/kvm/

# UAPI header test: needs the installed headers, then the usr/include/ hdrtest objects.
O=$BUILD/modules lf=$OUT/logs/compile-uapi-headers.log rc=0
if [[ -f $O/.config ]] && grep -q '^CONFIG_UAPI_HEADER_TEST=y' "$O/.config"; then
	rm -f "$O"/usr/include/linux/kvmi.hdrtest "$O"/usr/include/asm/kvmi.hdrtest
	{ "${KMAKE[@]}" O="$O" headers && "${KMAKE[@]}" O="$O" usr/include/; } >"$lf" 2>&1 || rc=$?
	missing=()
	for h in linux/kvmi asm/kvmi; do
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
