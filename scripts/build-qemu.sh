#!/bin/bash
# Build the lean KVMI QEMU: Debian's qemu 7.2 source (apt-get source) +
# qemu/patches, x86_64-softmmu with KVM only, installed to out/qemu/.
# Rebuilds only when the key (Debian version, series, patches, device config,
# configure options) changed; otherwise it just checks out/qemu.
#   KVMI_QEMU_FORCE=1   configure and build even when the key matches
set -euo pipefail
. "$(dirname "$0")/qemu-lib.sh"

qemu_deps
qemu_debsrc
ver=$(qemu_deb_version)
deb=$(qemu_deb_tree "$ver")

QSRC=$QCACHE/src
QBUILD=$QCACHE/build
mkdir -p "$QSTATE" "$QOUT" "$OUT/logs" "$CACHE/tmp"

key=$({
	echo "deb $ver"
	printf '%s\n' "${QEMU_CONFIGURE[@]}"
	cat "$QREPO/config/kvmi-devices.mak"
	for p in $(qemu_series); do echo "$p"; cat "$QPATCHES/$p"; done
} | sha256sum | cut -d' ' -f1)

if [[ -z ${KVMI_QEMU_FORCE:-} && -f $QSTATE/build.key && $(cat "$QSTATE/build.key") == "$key" &&
      -x $QOUT/qemu-system-x86_64 ]]; then
	log "qemu: up to date ($ver, $(qemu_series | wc -l) patches, key ${key:0:12}): $QOUT/qemu-system-x86_64"
	exit 0
fi

start=$SECONDS
if [[ -f $QSTATE/src.version && $(cat "$QSTATE/src.version") != "$ver" ]]; then
	log "qemu: new Debian version $ver: fresh src/ and build/"
	rm -rf "$QSRC" "$QBUILD"
fi
qemu_assemble "$deb" "$QSRC"
echo "$ver" >"$QSTATE/src.version"
log "qemu: source assembled ($ver + $(qemu_series | wc -l) patches) in $((SECONDS - start)) s"

qemu_configure "$ver" "$QSRC" "$QBUILD" "$QSTATE/configure.key" "$OUT/logs/qemu-configure.log" ||
	die "qemu configure failed (out/logs/qemu-configure.log)"
log "qemu: build (ninja -j$JOBS, ccache $CCACHE_DIR)"
t0=$SECONDS
qemu_ninja "$QBUILD" "$OUT/logs/qemu-build.log" ||
	{ grep -E -A5 'error|Error' "$OUT/logs/qemu-build.log" | head -40 >&2; die "qemu build failed (out/logs/qemu-build.log)"; }
log "qemu: built in $((SECONDS - t0)) s ($(grep -c '^\[' "$OUT/logs/qemu-build.log" || true) ninja steps)"

install -m 0755 "$QBUILD/qemu-system-x86_64" "$QOUT/qemu-system-x86_64.tmp"
mv "$QOUT/qemu-system-x86_64.tmp" "$QOUT/qemu-system-x86_64"
# Firmware the nested test copies next to the binary (also found in
# /usr/share/qemu and /usr/share/seabios through --firmwarepath).
for f in /usr/share/qemu/qboot.rom /usr/share/seabios/bios-256k.bin \
	 /usr/share/qemu/kvmvapic.bin /usr/share/qemu/linuxboot_dma.bin; do
	[[ -f $f ]] && cp -L "$f" "$QOUT/"
done
echo "$key" >"$QSTATE/build.key"
printf '%s %s\n' "$ver" "$(qemu_series | wc -l) patches" >"$QOUT/VERSION"
log "qemu: $QOUT/qemu-system-x86_64 ($("$QOUT/qemu-system-x86_64" --version | head -n1)) in $((SECONDS - start)) s"
