#!/bin/bash
# make bench: build the non-debug bench kernel (scripts/config/bench.config,
# O=$KVMI_CACHE/build/bench, out/bzImage-bench) and kvmi_bench, boot it under
# QEMU TCG like the runtime stage, collect the KVMI-BENCH lines of the serial
# log, write out/bench/results.json, print the table and plot
# out/bench/ratios.png and out/bench/p2-read.png with gnuplot.
# A benchmark, not a test: no thresholds, the exit status only says whether
# the run produced its figures.
#   KVMI_BENCH_RUNS     runs per figure (default 7): min, median and max over them
#   KVMI_BENCH_MS       target time of one run of one figure (ms, default 250)
#   KVMI_BENCH_PARTS    which parts (default "p1 p2 p3 p4")
#   KVMI_BENCH_BUILD    0 = use the existing out/bzImage-bench and kvmi_bench
#   KVMI_BENCH_KERNEL   the kernel to boot (default out/bzImage-bench; with
#                       KVMI_BENCH_BUILD=0, e.g. a copy made before a change)
#   KVMI_BENCH_OUT      the results directory (default out/bench)
#   KVMI_QEMU_TIMEOUT   wall-clock limit of the boot (s, default 1500)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

runs=${KVMI_BENCH_RUNS:-7}
ms=${KVMI_BENCH_MS:-250}
parts=${KVMI_BENCH_PARTS:-p1 p2 p3 p4}
B=${KVMI_BENCH_OUT:-$OUT/bench}
kernel=${KVMI_BENCH_KERNEL:-$OUT/bzImage-bench}
mkdir -p "$B" "$OUT/logs"
start=$SECONDS

if [[ ${KVMI_BENCH_BUILD:-1} != 0 ]]; then
	"$REPO/scripts/deps.sh"
	"$REPO/scripts/assemble.sh"
	"$REPO/scripts/build-kernel.sh" bench
	KVMI_HDR_FLAVOR=bench "$REPO/scripts/build-selftests.sh"
fi
[[ -f $kernel ]] || die "no $kernel (run make bench)"
[[ -x $BUILD/selftests/x86_64/kvmi_bench ]] || die "kvmi_bench is not built (run make bench)"

args="-r,$runs,-t,$ms"
for p in $parts; do args+=",$p"; done
TESTS="kvmi_bench:$args" KVMI_INITRD=$OUT/initrd-bench.gz "$REPO/scripts/mkinitrd.sh"

serial=$B/serial.log
tsc_khz=$(awk '/^cpu MHz/ { printf "%d", $4 * 1000; exit }' /proc/cpuinfo 2>/dev/null)
append="console=ttyS0 panic=-1 tsc_early_khz=${tsc_khz:-2000000} kvm.introspection=1 kvmi.timeout=${KVMI_QEMU_TIMEOUT:-1500}"
# tsc=reliable: under TCG the clocksource watchdog (jiffies) finds the TSC
# "unstable" on a loaded host and the clock falls back to jiffies (4 ms steps).
append+=" tsc=reliable"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "booting the bench kernel under QEMU (TCG, -cpu max), load $load_before: kvmi_bench ${args//,/ }"
qstart=$SECONDS
rc=0
timeout --foreground -k 10 "${KVMI_QEMU_TIMEOUT:-1500}" \
	qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 2G \
	-kernel "$kernel" -initrd "$OUT/initrd-bench.gz" \
	-nographic -no-reboot -monitor none -serial "file:$serial" \
	-append "$append" </dev/null >"$OUT/logs/bench-qemu-stdout.log" 2>&1 || rc=$?
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
log "QEMU exited with $rc after $((SECONDS - qstart)) s (serial log: $serial), load $load_after"

tr -d '\r' <"$serial" | sed -n 's/^\[kvmi_bench[^]]*\] KVMI-BENCH //p' >"$B/raw.jsonl"
if ! grep -q '"id": "done"' "$B/raw.jsonl"; then
	tr -d '\r' <"$serial" | grep '^\[kvmi_bench' | tail -20 >&2 || true
	die "kvmi_bench did not finish (see $serial)"
fi

python3 "$REPO/scripts/bench-report.py" "$B" \
	--host-cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" \
	--host-cpus "$(nproc)" --load-before "$load_before" --load-after "$load_after" \
	--qemu "$(qemu-system-x86_64 --version | head -1)" \
	--kernel "$(tr -d '\r' <"$serial" | sed -n 's/^KVMI-BOOT-OK //p' | head -1)" \
	--guest-cpus "$(tr -d '\r' <"$serial" | sed -n 's/.*Total of \([0-9]*\) processor.*/\1/p' | head -1)" \
	--wall "$((SECONDS - start))"

(cd "$B" && gnuplot "$REPO/scripts/bench.gnuplot") || die "gnuplot failed"
log "bench: $B/results.json, $B/ratios.png, $B/p2-read.png ($((SECONDS - start)) s)"
