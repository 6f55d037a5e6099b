#!/bin/bash
# Build the initramfs of the end-to-end stage (out/initrd-e2e.gz), booted
# with our kernel under QEMU TCG (L1). It holds busybox, a QEMU with its
# libraries and qboot.rom, the L2 guest (kernel + its own busybox
# initramfs, scripts/e2e/l2-init.sh), the introspection tool
# (samples/kvmi, static), the harness helpers kvmi-e2e and kvmmem-e2e
# (static; the second runs in the introspector VM) and the scenario
# (scripts/e2e/l1-scenario.sh).
#   KVMI_E2E_QEMU          QEMU binary for L1 (default: out/qemu/qemu-system-x86_64
#                          if the patched QEMU was built (make qemu), else Debian's)
#   KVMI_E2E_PATCHED       1 = that QEMU has the introspection object
#                          (default: 1 for out/qemu, 0 for Debian's)
#   KVMI_E2E_GUEST_KERNEL  L2 kernel: a bzImage, or "debian" (linux-image-cloud-amd64,
#                          fetched once); default out/bzImage-guest (the "guest" flavor)
#   KVMI_E2E_L2_APPEND     extra L2 kernel command line
#   KVMI_E2E_SAMPLE        the tool's source (default: samples/kvmi/introspector.c
#                          of the assembled tree)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

E=$BUILD/e2e
mkdir -p "$E" "$OUT/logs" "$CACHE/tmp"

# --- UAPI headers of our tree, for the tool and the helper.
if [[ ! -f $E/usr/include/linux/kvmi.h || $SRC/include/uapi/linux/kvmi.h -nt $E/usr/include/linux/kvmi.h ||
      $SRC/include/uapi/linux/kvm.h -nt $E/usr/include/linux/kvmi.h ||
      ( -f $SRC/include/uapi/linux/kvmi_mem.h && ! -f $E/usr/include/linux/kvmi_mem.h ) ]]; then
	"${KMAKE[@]}" O="$E/hdr-build" INSTALL_HDR_PATH="$E/usr" headers_install >"$OUT/logs/e2e-headers.log" 2>&1 ||
		die "headers_install failed, see $OUT/logs/e2e-headers.log"
fi

# --- the tool and the helper, static.
sample=${KVMI_E2E_SAMPLE:-$SRC/samples/kvmi/introspector.c}
[[ -f $sample ]] || die "no $sample: samples/kvmi is not in the series yet (set KVMI_E2E_SAMPLE=path/to/introspector.c)"
CFLAGS=(-static -O2 -Wall -Wextra -Wno-unused-parameter -Werror -I "$E/usr/include")
gcc "${CFLAGS[@]}" -o "$E/introspector" "$sample" || die "building $sample failed"
gcc "${CFLAGS[@]}" -Wno-sign-compare -Wno-missing-field-initializers -o "$E/kvmi-e2e" "$REPO/scripts/e2e/kvmi-e2e.c" ||
	die "building kvmi-e2e failed"
gcc "${CFLAGS[@]}" -pthread -o "$E/kvmmem-e2e" "$REPO/scripts/e2e/kvmmem-e2e.c" ||
	die "building kvmmem-e2e failed"

# --- the L2 guest kernel: our tree's small "guest" flavor (built by
# run-e2e.sh, out/bzImage-guest), or Debian's cloud kernel
# (KVMI_E2E_GUEST_KERNEL=debian, fetched once into $KVMI_CACHE/e2e/), or a file.
gk=${KVMI_E2E_GUEST_KERNEL:-$OUT/bzImage-guest}
l2_append=${KVMI_E2E_L2_APPEND:-}
if [[ $gk == debian ]]; then
	gd=$CACHE/e2e/guest
	gk=$(ls "$gd"/boot/vmlinuz-* 2>/dev/null | head -1 || true)
	if [[ -z $gk ]]; then
		mkdir -p "$gd"
		pkg=$(apt-cache depends linux-image-cloud-amd64 | sed -n 's/.*Depends: \(linux-image-[0-9].*\)/\1/p' | head -1)
		[[ -n $pkg ]] || { apt-get update -q >/dev/null; pkg=$(apt-cache depends linux-image-cloud-amd64 |
			sed -n 's/.*Depends: \(linux-image-[0-9].*\)/\1/p' | head -1); }
		[[ -n $pkg ]] || die "cannot resolve linux-image-cloud-amd64"
		log "e2e: fetching the L2 guest kernel ($pkg)"
		(cd "$gd" && apt-get download -q "$pkg" >/dev/null 2>&1) || die "apt-get download $pkg failed"
		dpkg-deb --fsys-tarfile "$gd"/"$pkg"_*.deb | tar -x -C "$gd" --wildcards './boot/vmlinuz-*'
		rm -f "$gd"/*.deb
		gk=$(ls "$gd"/boot/vmlinuz-* | head -1)
	fi
	# Its rtc_cmos probe takes tens of seconds on microvm without an RTC;
	# nokaslr: the banner scan from gpa 0 finds the kernel at 16 MiB.
	l2_append="initcall_blacklist=cmos_init,add_rtc_cmos nokaslr $l2_append"
fi
[[ -f $gk ]] || die "no L2 guest kernel $gk (scripts/build-kernel.sh guest builds it)"

# --- QEMU for L1: the patched one if built, else Debian's.
qemu=${KVMI_E2E_QEMU:-}
patched=${KVMI_E2E_PATCHED:-}
if [[ -z $qemu ]]; then
	if [[ -x $OUT/qemu/qemu-system-x86_64 ]]; then qemu=$OUT/qemu/qemu-system-x86_64; patched=${patched:-1}
	else qemu=/usr/bin/qemu-system-x86_64; patched=${patched:-0}; fi
fi
patched=${patched:-0}

# --- L2 initramfs.
l2=$(mktemp -d "$CACHE/tmp/e2e-l2.XXXXXX")
l1=$(mktemp -d "$CACHE/tmp/e2e-l1.XXXXXX")
trap 'rm -rf "$l1" "$l2"' EXIT
mkdir -p "$l2"/{bin,dev,proc,sys,tmp}
cp /bin/busybox "$E/kvmi-e2e" "$E/kvmmem-e2e" "$l2/bin/"
install -m 755 "$REPO/scripts/e2e/l2-init.sh" "$l2/init"
mkdir -p "$l1/l2"
(cd "$l2" && find . | sort | cpio -o -H newc --quiet -R 0:0) | gzip -n -6 >"$l1/l2/initrd.gz"
cp "$gk" "$l1/l2/bzImage"

# --- L1 initramfs: busybox, QEMU and its libraries, the tool, the scenario.
mkdir -p "$l1"/{bin,dev,proc,sys,tmp,etc,usr/bin,usr/share/qemu}
cp /bin/busybox "$E/introspector" "$E/kvmi-e2e" "$l1/bin/"
cp "$qemu" "$l1/usr/bin/qemu-system-x86_64"
qboot=$(dirname "$qemu")/qboot.rom
[[ -f $qboot ]] || qboot=/usr/share/qemu/qboot.rom
cp -L "$qboot" "$l1/usr/share/qemu/qboot.rom"
ldd "$qemu" | grep -oE '/[^ ]+' | sort -u | while IFS= read -r lib; do
	mkdir -p "$l1$(dirname "$lib")"
	cp -L "$lib" "$l1$lib"
done
# Debian's QEMU loads some modules: the L2 run needs none of them.
install -m 755 "$REPO/scripts/e2e/l1-scenario.sh" "$l1/e2e.sh"
cat >"$l1/etc/e2e.conf" <<EOF
QEMU=/usr/bin/qemu-system-x86_64
PATCHED=$patched
KEY=kvmi-e2e-secret
INTROSPECTOR=${KVMI_E2E_INTROSPECTOR:-1}
L2_APPEND="$l2_append"
EOF
cat >"$l1/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmpfs /tmp
echo "KVMI-BOOT-OK $(uname -r) uptime $(cut -d' ' -f1 /proc/uptime)"
echo "KVMI-TEST-BEGIN e2e"
sh /e2e.sh >/dev/console 2>&1; echo $? >/tmp/rc
echo "KVMI-TEST-END e2e rc=$(cat /tmp/rc)"
if [ -e /sys/kernel/debug/kmemleak ]; then
	echo scan >/sys/kernel/debug/kmemleak; sleep 6
	echo scan >/sys/kernel/debug/kmemleak
	echo "KVMI-KMEMLEAK-BEGIN"
	cat /sys/kernel/debug/kmemleak
	echo "KVMI-KMEMLEAK-END"
else
	echo "KVMI-KMEMLEAK-UNAVAILABLE"
fi
echo "KVMI-ALL-DONE uptime $(cut -d' ' -f1 /proc/uptime)"
sync
reboot -f
INIT
chmod +x "$l1/init"

initrd=$OUT/initrd-e2e.gz
(cd "$l1" && find . | sort | cpio -o -H newc --quiet -R 0:0) | gzip -n -1 >"$initrd.tmp"
mv "$initrd.tmp" "$initrd"
echo "$qemu $patched $gk" >"$OUT/initrd-e2e.info"
log "e2e initrd: $initrd ($(du -h "$initrd" | cut -f1)); QEMU $qemu (introspection object: $patched); L2 kernel $(basename "$gk")"
