#!/bin/bash
# Build the KVM selftests we run (static, for the busybox initramfs) against
# the runtime kernel's installed headers. Writes $BUILD/selftests/<name> and
# $BUILD/selftests/missing (names that could not be built because the source is absent).
# kvmi_bench (make bench) is built too, so that make check keeps it building.
#   KVMI_HDR_FLAVOR  the kernel build whose headers are used (default runtime;
#                    make bench uses bench, so it needs no debug build)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

flavor=${KVMI_HDR_FLAVOR:-runtime}
O=$BUILD/$flavor
ST=$BUILD/selftests
[[ -f $O/.config ]] || die "$flavor kernel is not configured (run scripts/build-kernel.sh $flavor)"
mkdir -p "$ST" "$OUT/logs"
logf=$OUT/logs/build-selftests.log

# UAPI headers of the runtime tree (incremental: headers_install only rewrites changed files).
"${KMAKE[@]}" O="$O" headers_install >"$logf" 2>&1 || { tail -40 "$logf" >&2; die "headers_install failed"; }

# Which tests: the KVMI test and benchmark (only if the series provides them) + stock regression guards.
wanted=(x86_64/kvmi_test x86_64/kvmi_fuzz x86_64/kvmi_bench x86_64/sync_regs_test x86_64/cpuid_test x86_64/platform_info_test)
targets=() ; : >"$ST/missing"
for t in "${wanted[@]}"; do
	if [[ -f $SRC/tools/testing/selftests/kvm/$t.c ]]; then
		targets+=("$ST/$t")
	else
		warn "selftest $t: $t.c is missing from the assembled tree"
		echo "${t#*/}" >>"$ST/missing"
	fi
done
((${#targets[@]})) || die "no selftest to build"

log "building selftests: ${targets[*]##*/}"
# -static goes into CFLAGS (also used at link); LDFLAGS stays the Makefile's own.
if ! make -C "$SRC/tools/testing/selftests/kvm" -j"$JOBS" \
		OUTPUT="$ST" INSTALL_HDR_PATH="$O/usr" KHDR_INCLUDES="-isystem $O/usr/include" \
		CC="ccache gcc" EXTRA_CFLAGS="-static" "${targets[@]}" >>"$logf" 2>&1; then
	grep -E -A5 'error' "$logf" | head -60 >&2 || tail -40 "$logf" >&2
	die "selftest build failed, full log: $logf"
fi
for t in "${targets[@]}"; do
	if readelf -l "$t" | grep -q INTERP; then die "$t is not statically linked"; fi
done
log "selftests built in $ST"
