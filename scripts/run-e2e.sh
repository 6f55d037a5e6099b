#!/bin/bash
# End-to-end stage: our debug kernel (out/bzImage) under QEMU TCG (L1) runs a
# QEMU with -enable-kvm (L2, a Linux guest), introspected by the sample tool
# samples/kvmi over the device manager's handshake. One L1 boot runs every
# case (scripts/e2e/l1-scenario.sh); a second, short one checks that
# kvm.introspection=0 gives the device manager a clear error.
# Results: out/results/e2e.txt ("PASS e2e: name"), serial logs
# out/logs/e2e-serial.log and e2e-off-serial.log (the L1 console; the
# tool, QEMU and L2 outputs are in it, prefixed, at the end).
#   KVMI_E2E_TIMEOUT  wall-clock limit of the main L1 boot (s, default 900)
#   KVMI_E2E_OFF=0    leave out the kvm.introspection=0 boot
#   KVMI_E2E_SHOW=1   print what the tool printed in the demo (make demo)
#   see mkinitrd-e2e.sh for the QEMU, L2 kernel and tool knobs
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[[ -f $OUT/bzImage ]] || die "no $OUT/bzImage (run make kernel)"
stage=e2e
reset_results $stage
mkdir -p "$OUT/logs"
timings=$OUT/logs/e2e-timings.txt
: >"$timings"
t=$SECONDS
# The L2 guest kernel: the small "guest" flavor of our tree (incremental).
if [[ -z ${KVMI_E2E_GUEST_KERNEL:-} ]]; then
	if "$REPO/scripts/build-kernel.sh" guest; then
		cp "$BUILD/guest/arch/x86/boot/bzImage" "$OUT/bzImage-guest"
	else
		result $stage FAIL "e2e: guest-kernel" "the L2 guest kernel did not build, see $OUT/logs/build-guest.log"
		exit 1
	fi
	echo "guest-kernel $((SECONDS - t))" >"$timings"
	t=$SECONDS
fi
if ! "$REPO/scripts/mkinitrd-e2e.sh"; then
	result $stage FAIL "e2e: initrd" "building the e2e initramfs failed (see above)"
	exit 1
fi
read -r qemu patched gk <"$OUT/initrd-e2e.info"
echo "initrd $((SECONDS - t))" >>"$timings"

tsc_khz=$(awk '/^cpu MHz/ { printf "%d", $4 * 1000; exit }' /proc/cpuinfo 2>/dev/null)
# KVMI_E2E_MONITOR=PATH: L1's QEMU monitor on a UNIX socket (for debugging).
monitor=${KVMI_E2E_MONITOR:+unix:$KVMI_E2E_MONITOR,server=on,wait=off}
monitor=${monitor:-none}
boot_l1() { # boot_l1 SERIAL TIMEOUT EXTRA_APPEND
	local rc=0 start=$SECONDS
	timeout --foreground -k 10 "$2" \
		qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 2G \
		-kernel "$OUT/bzImage" -initrd "$OUT/initrd-e2e.gz" \
		-nographic -no-reboot -monitor "$monitor" -serial "file:$1" \
		-append "console=ttyS0 panic=-1 tsc_early_khz=${tsc_khz:-2000000} $3" \
		</dev/null >"$OUT/logs/e2e-qemu-stdout.log" 2>&1 || rc=$?
	((rc != 124)) || warn "e2e: QEMU was killed by the $2 s timeout"
	log "e2e: L1 QEMU exited with $rc after $((SECONDS - start)) s (serial log: $1)"
	return 0
}

# Cases: the scenario's "E2E-CASE ST name (why)" lines, then check-log's
# boot/complete/debug-kernel/kernel-splats/kmemleak of the L1 console (the
# prefixed L2/tool/QEMU lines are not kernel messages of L1).
collect() { # collect SERIAL STAGE PREFIX
	local serial=$1 st=$2 prefix=$3 line
	local re_case='^(PASS|FAIL|SKIP) ([^ ]+)( \((.*)\))?$' re_l1='^(PASS|FAIL|SKIP) ([^(]*[^ (])( \((.*)\))?$'
	"$REPO/scripts/check-log.sh" "$serial" e2e "$st" "$prefix" >/dev/null 2>&1 || true
	grep -vE "^(PASS|FAIL|SKIP) ${prefix}e2e( |$)" "$RESULTS/$st.txt" >"$RESULTS/$st.l1" || true
	rm -f "$RESULTS/$st.txt"
	while IFS= read -r line; do
		[[ $line =~ $re_case ]] || continue
		result $stage "${BASH_REMATCH[1]}" "$prefix${BASH_REMATCH[2]}" "${BASH_REMATCH[4]}"
	done < <(tr -d '\r' <"$serial" | sed -n 's/^\[e2e\] E2E-CASE //p')
	while IFS= read -r line; do
		[[ $line =~ $re_l1 ]] || continue
		result $stage "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "${BASH_REMATCH[4]}"
	done <"$RESULTS/$st.l1"
	rm -f "$RESULTS/$st.l1"
}

mode="stock QEMU + kvmi-e2e hook"
((patched == 0)) || mode="patched QEMU (introspection object)"
log "e2e: booting L1 (debug kernel under TCG); L2 QEMU: $qemu ($mode)"
serial=$OUT/logs/e2e-serial.log
t=$SECONDS
tmo=${KVMI_E2E_TIMEOUT:-900}
boot_l1 "$serial" "$tmo" "kvm.introspection=1 kvmi_e2e.watchdog=$((tmo > 240 ? tmo - 120 : tmo / 2))"
echo "boot-main $((SECONDS - t))" >>"$timings"
collect "$serial" e2e-main "e2e: "
n=$(tr -d '\r' <"$serial" | sed -n 's/^\[e2e\] //p' | grep -cE '^E2E-CASE ' || true)
((n > 0)) || result $stage FAIL "e2e: scenario" "the scenario reported no case (see $serial)"

if [[ ${KVMI_E2E_OFF:-1} == 1 ]]; then
	serial_off=$OUT/logs/e2e-off-serial.log
	t=$SECONDS
	boot_l1 "$serial_off" 300 "kvm.introspection=0 kvmi_e2e=off"
	echo "boot-off $((SECONDS - t))" >>"$timings"
	collect "$serial_off" e2e-off "e2e: off: "
fi

# Timings from the scenario's own clock (L1 uptime).
{
	tr -d '\r' <"$serial" | sed -n 's/^KVMI-BOOT-OK .* uptime \([0-9.]*\)$/l1-boot-uptime \1/p'
	tr -d '\r' <"$serial" | sed -n 's/^\[e2e\] e2e\[\([0-9.]*\)s\]: \(PASS\|FAIL\|SKIP\) \(.*\)/case-at \1 \3/p'
} >>"$timings"
log "e2e: timings in $timings: $(grep -E '^(initrd|boot-)' "$timings" | tr '\n' ' ')"

if [[ ${KVMI_E2E_SHOW:-0} == 1 ]]; then
	echo "---------------- what the introspection tool printed ----------------"
	tr -d '\r' <"$serial" | sed -n 's/^\[e2e\] \[tool1\] //p'
	echo "---------------- the L2 guest's console (first lines) ----------------"
	tr -d '\r' <"$serial" | sed -n 's/^\[e2e\] \[l2\] //p' | grep -v '^L2-ALIVE' | head -8
	echo "---------------- the e2e cases ----------------"
	cat "$RESULTS/$stage.txt"
fi
! grep -q '^FAIL' "$RESULTS/$stage.txt"
