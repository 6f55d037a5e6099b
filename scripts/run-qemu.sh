#!/bin/bash
# Runtime stage: build the initramfs for TESTS, boot out/bzImage under QEMU TCG
# (AMD SVM + NPT), save the serial log and check it. Case names start with
# "svm: " (the Bochs stage, run-bochs.sh, uses "vmx: ").
#   TESTS               tests to run (default: kvmi_test, the short kvmi_fuzz
#                       runs of KVMI_FUZZ_CHECK + stock guards)
#   KVMI_QEMU_APPEND    extra kernel arguments (e.g. kvm_amd.npt=0)
#   KVMI_QEMU_STAGE     results stage and log name (default runtime; the
#                       shadow-paging run of make check uses runtime-shadow)
#   KVMI_QEMU_PREFIX    case name prefix (default "svm: ")
#   KVMI_QEMU_SINGLESTEP  1 (default): boot with kvm_amd.kvmi_singlestep=1, so
#                       that the single-step cases run; 0: SVM single-step
#                       stays off, its default (the shadow run of make check)
#   KVMI_QEMU_TIMEOUT   wall-clock limit for the whole boot (s, default 1500)
#   KVMI_TEST_TIMEOUT   per-test limit inside the guest (s, default 300)
#   KVMI_SHOW=name      print the output section of test "name" after the run
#   KVMI_QEMU_MONITOR=PATH  QEMU's monitor on a Unix socket at PATH (to inspect
#                       a guest that stopped: info registers -a, info lapic)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# kvmi_fuzz, short: the fuzzer with a fixed seed, the races with few
# iterations, and the fault sweep (three entries: each has its own time
# limit).
KVMI_FUZZ_CHECK=${KVMI_FUZZ_CHECK:-kvmi_fuzz:--seed=1,--messages=3000,fuzz kvmi_fuzz:--iterations=40,race_unhook,race_close,race_rehook,race_vcpus,race_destroy kvmi_fuzz:fault_sweep}
export TESTS=${TESTS:-kvmi_test $KVMI_FUZZ_CHECK sync_regs_test cpuid_test platform_info_test}
[[ -f $OUT/bzImage ]] || die "no $OUT/bzImage (run make kernel)"
"$REPO/scripts/mkinitrd.sh"

mkdir -p "$OUT/logs"
stage=${KVMI_QEMU_STAGE:-runtime}
serial=$OUT/logs/qemu-serial.log
[[ $stage == runtime ]] || serial=$OUT/logs/qemu-serial-${stage#runtime-}.log
# The tiny kernel has no ACPI, so no HPET/PM timer: TSC calibration against the
# PIT is flaky under TCG (on a busy host it fails, tsc_khz=0 and every selftest
# dies on KVM_GET_TSC_KHZ). Give the frequency instead (host's, else 2 GHz).
tsc_khz=$(awk '/^cpu MHz/ { printf "%d", $4 * 1000; exit }' /proc/cpuinfo 2>/dev/null)
# hugepages=8: 2 MiB pages for the huge-page cases of kvmi_test (no THP).
append="console=ttyS0 panic=-1 tsc_early_khz=${tsc_khz:-2000000} hugepages=8 kvm.introspection=1 kvmi.timeout=${KVMI_TEST_TIMEOUT:-300} ${KVMI_QEMU_APPEND:-}"
[[ ${KVMI_QEMU_SINGLESTEP:-1} == 0 ]] || append+=" kvm_amd.kvmi_singlestep=1"
monitor=none
[[ -z ${KVMI_QEMU_MONITOR:-} ]] || monitor="unix:$KVMI_QEMU_MONITOR,server,nowait"
log "booting QEMU (TCG, -cpu max): tests: $TESTS"
start=$SECONDS
rc=0
timeout --foreground -k 10 "${KVMI_QEMU_TIMEOUT:-1500}" \
	qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 2G \
	-kernel "$OUT/bzImage" -initrd "$OUT/initrd.gz" \
	-nographic -no-reboot -serial "file:$serial" \
	-monitor "$monitor" \
	-append "$append" </dev/null >"$OUT/logs/qemu-stdout.log" 2>&1 || rc=$?
log "QEMU exited with $rc after $((SECONDS - start)) s (serial log: $serial)"
((rc == 124)) && warn "QEMU was killed by the ${KVMI_QEMU_TIMEOUT:-1500} s timeout"

show_test_output "$serial"
"$REPO/scripts/check-log.sh" "$serial" "$TESTS" "$stage" "${KVMI_QEMU_PREFIX:-svm: }"
