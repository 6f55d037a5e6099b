#!/bin/bash
# Configure and build one kernel flavor out of tree: build-kernel.sh FLAVOR [make targets...]
# The default target is bzImage; runtime's is copied to out/bzImage, bochs's
# (the lighter debug kernel of the Bochs/VMX stage) to out/bzImage-bochs,
# bench's (the non-debug kernel of make bench) to out/bzImage-bench.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

flavor=${1:?usage: build-kernel.sh runtime|bochs|modules|nokvmi [targets...]}; shift
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(bzImage)
O=$BUILD/$flavor
mkdir -p "$OUT/logs" "$CCACHE_DIR"
ccache -M "$CCACHE_MAXSIZE" >/dev/null

"$REPO/scripts/kconfig.sh" "$flavor"

logf=$OUT/logs/build-$flavor.log
log "building $flavor: ${targets[*]} (O=$O, log $logf)"
start=$SECONDS
if ! "${KMAKE[@]}" O="$O" ${KVMI_MAKE_ARGS:-} "${targets[@]}" >"$logf" 2>&1; then
	grep -E -B2 -A8 'error:|Error [0-9]' "$logf" | head -80 >&2 || tail -40 "$logf" >&2
	die "kernel build ($flavor: ${targets[*]}) failed, full log: $logf"
fi
log "built $flavor in $((SECONDS - start)) s"

if [[ " ${targets[*]} " == *" bzImage "* ]]; then
	case $flavor in
		runtime) cp "$O/arch/x86/boot/bzImage" "$OUT/bzImage" ;;
		bochs) cp "$O/arch/x86/boot/bzImage" "$OUT/bzImage-bochs" ;;
		bench) cp "$O/arch/x86/boot/bzImage" "$OUT/bzImage-bench" ;;
	esac
fi
