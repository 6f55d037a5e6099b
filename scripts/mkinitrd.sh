#!/bin/bash
# Build out/initrd.gz: busybox-static, the test binaries, and an /init that runs
# the tests listed in TESTS, prints markers, triggers a kmemleak scan and exits.
#   TESTS: space-separated names: kvmi_test, kvmi_demo (= kvmi_test --demo),
#          NAME:ARG,ARG... (NAME run with those arguments, e.g.
#          kvmi_test:CASE,CASE... for only those cases, or the benchmark of
#          make bench, kvmi_bench:-r,3,p1),
#          avx_probe[:ARGS,...] (scripts/avx-probe.c, built here),
#          or any stock selftest built in $BUILD/selftests/x86_64/.
#   KVMI_INITRD: output file (default out/initrd.gz); the names of missing
#          test binaries go to the same path with .missing instead of .gz.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

TESTS=${TESTS:-kvmi_test sync_regs_test cpuid_test platform_info_test}
initrd=${KVMI_INITRD:-$OUT/initrd.gz}
missing=${initrd%.gz}.missing
ST=$BUILD/selftests/x86_64
root=$(mktemp -d "$CACHE/tmp/initrd.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,tmp,etc} "$OUT"

cp /bin/busybox "$root/bin/busybox"
if readelf -l "$root/bin/busybox" | grep -q INTERP; then die "/bin/busybox is not static (install busybox-static)"; fi

# Test list: "name|command" per line; missing binaries are recorded for the log check.
: >"$root/etc/kvmi-tests"; : >"$missing"
for t in $TESTS; do
	bin=$t args=
	[[ $t == kvmi_demo ]] && { bin=kvmi_test; args=--demo; }
	[[ $t == *:* ]] && { bin=${t%%:*}; args=${t#*:}; args=${args//,/ }; }
	if [[ $t == avx_probe || $t == avx_probe:* ]]; then
		# scripts/avx-probe.c (see there), e.g. avx_probe:-n,5,--,sync_regs_test
		args=${t#avx_probe}; args=${args#:}; args=${args//,/ }
		gcc -static -O2 -o "$root/bin/avx_probe" "$REPO/scripts/avx-probe.c" ||
			die "initrd: cannot build scripts/avx-probe.c"
		# The selftest it runs goes into the initramfs too. Name it without
		# a slash (avx_probe finds it in PATH): the test name is a sed pattern.
		for a in $args; do
			if [[ $a != */* && -x $ST/$a ]]; then cp "$ST/$a" "$root/bin/$a"; fi
		done
		echo "$t|/bin/avx_probe $args" >>"$root/etc/kvmi-tests"
		continue
	fi
	if [[ -x $ST/$bin ]]; then
		cp "$ST/$bin" "$root/bin/$bin"
		echo "$t|/bin/$bin $args" >>"$root/etc/kvmi-tests"
	else
		warn "initrd: test binary $bin is missing, $t will be reported as failed"
		echo "$t" >>"$missing"
	fi
done

cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmpfs /tmp
echo "KVMI-BOOT-OK $(uname -r)"

# kvmi.timeout=N on the kernel command line overrides the per-test timeout.
tmo=$(sed -n 's/.*kvmi\.timeout=\([0-9]*\).*/\1/p' /proc/cmdline)
while IFS='|' read -r name cmd; do
	echo "KVMI-TEST-BEGIN $name"
	# Prefix every output line of the test; keep its exit code.
	( timeout "${tmo:-300}" $cmd 2>&1; echo $? >/tmp/rc ) | sed "s/^/[$name] /"
	echo "KVMI-TEST-END $name rc=$(cat /tmp/rc)"
done </etc/kvmi-tests

# Memory leaks: objects must be older than ~5 s to be reported, scan twice.
if [ -e /sys/kernel/debug/kmemleak ]; then
	echo scan >/sys/kernel/debug/kmemleak; sleep 6
	echo scan >/sys/kernel/debug/kmemleak
	echo "KVMI-KMEMLEAK-BEGIN"
	cat /sys/kernel/debug/kmemleak
	echo "KVMI-KMEMLEAK-END"
else
	echo "KVMI-KMEMLEAK-UNAVAILABLE"
fi
echo "KVMI-ALL-DONE"
sync
# Without ACPI there is no power-off; reboot -f makes QEMU (-no-reboot) exit.
if [ -d /sys/firmware/acpi ]; then poweroff -f; fi
reboot -f
INIT
chmod +x "$root/init"

(cd "$root" && find . | sort | cpio -o -H newc --quiet -R 0:0) | gzip -n -6 >"$initrd.tmp"
mv "$initrd.tmp" "$initrd"
log "initrd: $initrd ($(du -h "$initrd" | cut -f1)), tests: $(cut -d'|' -f1 "$root/etc/kvmi-tests" | xargs)"
