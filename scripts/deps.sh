#!/bin/bash
# Install the Debian 12 packages the harness needs (apt only if something is missing).
set -euo pipefail

PKGS=(
	linux-source-6.12 build-essential bc bison flex libelf-dev libssl-dev
	cpio lz4 zstd xz-utils rsync kmod perl python3 git patch gawk
	ccache sparse busybox-static qemu-system-x86
	# make bench: the plots
	gnuplot-nox
	# Bochs stage (Intel VMX): emulator, BIOS/VGA BIOS, isolinux boot ISO
	bochs bochsbios vgabios isolinux syslinux-common xorriso
)

missing=()
for p in "${PKGS[@]}"; do
	st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	[[ $st == ii* ]] || missing+=("$p")
done

if ((${#missing[@]})); then
	echo "==> installing: ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	[[ $(id -u) == 0 ]] || { echo "ERROR: need root to install ${missing[*]}" >&2; exit 1; }
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
