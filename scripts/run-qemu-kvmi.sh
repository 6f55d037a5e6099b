#!/bin/bash
# `make qemu-test`: the nested test of the KVMI QEMU. Our KVMI debug kernel
# boots under QEMU TCG (-cpu max: nested SVM); its initramfs holds the
# patched out/qemu/qemu-system-x86_64 (+ the libraries ldd lists, qboot), an
# L2 guest (the same bzImage + a busybox initramfs) and kvmi-hs-tool (the
# tool side of the handshake, qemu/tests/). Inside, qemu/tests/kvmi-qemu-test.sh
# runs QEMU with -enable-kvm and an introspection object (see that script
# for the cases). Two boots: kvm.introspection=1 (main) and 0 (param-off).
#   KVMI_QEMU_TEST_KERNEL   kernel to boot (default out/bzImage)
#   KVMI_QEMU_TEST_TIMEOUT  wall-clock limit per boot (s, default 900)
#   KVMI_QEMU_TEST_BOOTS    "main param-off" (default)
#   KVMI_QEMU_TEST_GDB=1    run the L2 QEMUs under gdb (debugging a crash:
#                           gdb prints the backtrace into the QEMU log)
# Results: out/results/qemu-test.txt; logs: out/logs/qemu-kvmi-*.log.
set -euo pipefail
. "$(dirname "$0")/qemu-lib.sh"

kernel=${KVMI_QEMU_TEST_KERNEL:-$OUT/bzImage}
[[ -f $kernel ]] || die "no kernel $kernel (make kernel, or KVMI_QEMU_TEST_KERNEL=...)"
Q=$QOUT/qemu-system-x86_64
[[ -x $Q ]] || die "no $Q (make qemu)"
qemu_deps
STAGE=qemu-test
reset_results "$STAGE"
mkdir -p "$OUT/logs" "$CACHE/tmp"
work=$(mktemp -d "$CACHE/tmp/qemu-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The tool side: a static binary.
gcc -static -O2 -Wall -Wextra -o "$work/kvmi-hs-tool" "$QREPO/tests/kvmi-hs-tool.c"

# L2: busybox, an /init that keeps the vCPU busy (so that it takes vCPU
# requests such as a pause at once).
l2=$work/l2root
mkdir -p "$l2"/{bin,dev,proc}
cp /bin/busybox "$l2/bin/busybox"
cat >"$l2/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
echo "L2-INIT-OK"
while :; do :; done
EOF
chmod +x "$l2/init"
(cd "$l2" && find . | sort | cpio -o -H newc --quiet -R 0:0) | gzip -n -1 >"$work/l2.gz"

# L1: busybox, the KVMI QEMU + libraries + qboot, the L2 guest, the tool,
# the scenario script.
r=$work/l1root
mkdir -p "$r"/{bin,dev,proc,sys,tmp,etc,l2,usr/bin,usr/share/qemu}
cp /bin/busybox "$r/bin/busybox"
cp "$Q" "$r/usr/bin/qemu-system-x86_64"
gdbarg=
if [[ ${KVMI_QEMU_TEST_GDB:-0} == 1 ]]; then
	command -v gdb >/dev/null || { apt-get install -y -q --no-install-recommends gdb >/dev/null; }
	gdbarg=kvmiqemu.gdb
fi
copy_with_libs() { # binary...: into the L1 root, with what ldd lists
	local b lib
	for b in "$@"; do
		mkdir -p "$r$(dirname "$b")"; cp -L "$b" "$r$b"
		ldd "$b" | awk '/=> \//{ print $3 } /^\t\/lib/{ print $1 }' | while read -r lib; do
			mkdir -p "$r$(dirname "$lib")"; cp -L "$lib" "$r$lib"
		done
	done
}
ldd "$Q" | awk '/=> \//{ print $3 } /^\t\/lib/{ print $1 }' | while read -r lib; do
	mkdir -p "$r$(dirname "$lib")"; cp -L "$lib" "$r$lib"
done
if [[ -n $gdbarg ]]; then
	copy_with_libs /usr/bin/gdb
	# gdb embeds Python: it needs the standard library (and its own modules)
	py=$(ls -d /usr/lib/python3.[0-9]* | head -n1)
	mkdir -p "$r$py" "$r/usr/share/gdb"
	rsync -a --exclude=test --exclude=__pycache__ --exclude=tkinter --exclude=idlelib \
		--exclude=ensurepip --exclude=lib2to3 --exclude=dist-packages "$py/" "$r$py/"
	rsync -a /usr/share/gdb/ "$r/usr/share/gdb/"
fi
for f in qboot.rom bios-microvm.bin; do
	[[ -f /usr/share/qemu/$f ]] && cp -L "/usr/share/qemu/$f" "$r/usr/share/qemu/"
done
cp "$kernel" "$r/l2/bzImage"
cp "$work/l2.gz" "$r/l2/initrd.gz"
cp "$work/kvmi-hs-tool" "$r/bin/"
install -m 0755 "$QREPO/tests/kvmi-qemu-test.sh" "$r/bin/kvmi-qemu-test.sh"
printf s3cret | sha1sum | cut -c1-40 >"$r/etc/kvmi-cookie"
cat >"$r/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
echo "KVMI-BOOT-OK $(uname -r)"
mode=$(sed -n 's/.*kvmiqemu\.mode=\([a-z-]*\).*/\1/p' /proc/cmdline)
echo "KVMI-QEMU-TEST-BEGIN $mode"
/bin/kvmi-qemu-test.sh "$mode" 2>&1
echo "KVMI-QEMU-TEST-END $mode"
sync
reboot -f
EOF
chmod +x "$r/init"
(cd "$r" && find . | sort | cpio -o -H newc --quiet -R 0:0) | gzip -n -1 >"$work/l1.gz"
log "qemu-test: L1 initramfs $(du -h "$work/l1.gz" | cut -f1) (QEMU $(cat "$QOUT/VERSION" 2>/dev/null))"

tsc_khz=$(awk '/^cpu MHz/ { printf "%d", $4 * 1000; exit }' /proc/cpuinfo 2>/dev/null)
for mode in ${KVMI_QEMU_TEST_BOOTS:-main param-off}; do
	param=1; [[ $mode == param-off ]] && param=0
	serial=$OUT/logs/qemu-kvmi-$mode.log
	log "qemu-test: booting $(basename "$kernel") under TCG, kvm.introspection=$param ($mode)"
	start=$SECONDS rc=0
	timeout --foreground -k 10 "${KVMI_QEMU_TEST_TIMEOUT:-900}" \
		qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 2G \
		-kernel "$kernel" -initrd "$work/l1.gz" \
		-nographic -no-reboot -monitor none -serial "file:$serial" \
		-append "console=ttyS0 panic=-1 tsc_early_khz=${tsc_khz:-2000000} kvm.introspection=$param kvmiqemu.mode=$mode $gdbarg" \
		</dev/null >"$OUT/logs/qemu-kvmi-$mode.stdout" 2>&1 || rc=$?
	log "qemu-test: $mode: exit $rc after $((SECONDS - start)) s (log $serial)"
	tr -d '\r' <"$serial" | sed -n 's/^KVMI-QEMU-RESULT \([A-Z]*\) \(.*\)/\1 \2/p' |
	while read -r st rest; do
		name=${rest%% (*}; why=
		[[ $rest == *" ("* ]] && why=${rest#* (} why=${why%)}
		result "$STAGE" "$st" "qemu-kvmi: $name" "$why"
	done
	if tr -d '\r' <"$serial" | grep -q "^KVMI-QEMU-TEST-END $mode"; then
		result "$STAGE" PASS "qemu-kvmi: $mode: complete"
	else
		result "$STAGE" FAIL "qemu-kvmi: $mode: complete" "no end marker (exit $rc)"
	fi
done

pass=$(grep -c '^PASS' "$RESULTS/$STAGE.txt" || true)
fail=$(grep -c '^FAIL' "$RESULTS/$STAGE.txt" || true)
skip=$(grep -c '^SKIP' "$RESULTS/$STAGE.txt" || true)
echo "$pass passed, $fail failed, $skip skipped"
((fail == 0))
