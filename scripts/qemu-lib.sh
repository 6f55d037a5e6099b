# Helpers of the QEMU side of the harness (qemu/ in the repo). Source this.
# shellcheck shell=bash
#
# Cache layout ($KVMI_CACHE/qemu):
#   deb/<version>/qemu-7.2+dfsg/   `apt-get source qemu` (Debian's patches applied)
#   src/                           the build tree: Debian source + qemu/patches
#   build/                         meson build dir (lean x86_64-softmmu, KVM)
#   tree/                          `make qemu-tree`: git work tree for editing
#   state/                         build key, tree state
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

QCACHE=$CACHE/qemu
QREPO=$REPO/qemu
QPATCHES=$QREPO/patches
QTREE=$QCACHE/tree
QSTATE=$QCACHE/state
QOUT=$OUT/qemu
QBRANCH=kvmi
QBASE_TAG=debian-base

# Packages the lean build needs (a subset of `apt-get build-dep qemu`), and
# Debian's qemu for the firmware (qboot.rom, bios-256k.bin, ...) and the
# emulator that boots the nested test.
QEMU_PKGS=(
	build-essential dpkg-dev ccache git patch rsync python3 meson ninja-build
	pkg-config libglib2.0-dev libpixman-1-dev zlib1g-dev libfdt-dev flex bison
	qemu-system-x86 qemu-system-data seabios cpio busybox-static
)

qemu_deps() {
	local p st missing=()
	for p in "${QEMU_PKGS[@]}"; do
		st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
		[[ $st == ii* ]] || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	[[ $(id -u) == 0 ]] || die "need root to install ${missing[*]}"
	log "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# A deb-src entry for every suite of the configured deb entries (deb822
# *.sources and one-line *.list files), in /etc/apt/sources.list.d/.
QEMU_DEBSRC=/etc/apt/sources.list.d/kvmi-deb-src.sources
qemu_debsrc() {
	if apt-get source --print-uris -q qemu >/dev/null 2>&1 &&
	   apt-get source --print-uris -q qemu 2>/dev/null | grep -q '\.dsc'; then
		return 0
	fi
	[[ $(id -u) == 0 ]] || die "need root to add a deb-src entry"
	log "adding deb-src entries: $QEMU_DEBSRC"
	python3 - "$QEMU_DEBSRC" <<'PY'
import glob, re, sys
out, seen = [], set()
def add(uri, suites, comps, signed):
    key = (uri, suites, comps)
    if key in seen:
        return
    seen.add(key)
    s = "Types: deb-src\nURIs: %s\nSuites: %s\nComponents: %s\n" % (uri, suites, comps)
    if signed:
        s += "Signed-By: %s\n" % signed
    out.append(s)
for f in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")) + ["/etc/apt/sources.list.d/debian.sources"]:
    if f == sys.argv[1]:
        continue
    try:
        text = open(f).read()
    except OSError:
        continue
    for para in re.split(r"\n\s*\n", text):
        d = {}
        for line in para.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            k, v = line.split(":", 1)
            d[k.strip().lower()] = v.strip()
        if "deb" not in d.get("types", "").split():
            continue
        if "debian" not in d.get("uris", ""):
            continue
        add(d["uris"], d.get("suites", ""), d.get("components", "main"), d.get("signed-by", ""))
for f in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
    try:
        lines = open(f).read().splitlines()
    except OSError:
        continue
    for line in lines:
        m = re.match(r"\s*deb\s+(\[[^]]*\]\s+)?(\S+)\s+(\S+)\s+(.*)", line)
        if m and "debian" in m.group(2):
            add(m.group(2), m.group(3), m.group(4), "")
if not out:
    sys.exit("no Debian deb entry found to mirror as deb-src")
open(sys.argv[1], "w").write("\n".join(out))
PY
	apt-get update -q
}

# Debian source version that `apt-get source qemu` fetches, without epoch,
# e.g. 7.2+dfsg-7+deb12u18.
qemu_deb_version() {
	local v
	v=$(apt-get source --print-uris -q qemu 2>/dev/null |
		sed -n "s/.* qemu_\(.*\)\.dsc .*/\1/p" | head -n1)
	[[ -n $v ]] || die "apt-get source qemu: no source package (deb-src entry?)"
	echo "$v"
}

# Unpacked Debian source for version $1 (fetched on first use); prints its path.
qemu_deb_tree() {
	local v=$1 d=$QCACHE/deb/$1
	if [[ ! -f $d/.done ]]; then
		log "apt-get source qemu ($v) into $d"
		rm -rf "$d" && mkdir -p "$d"
		(cd "$d" && apt-get source -q "qemu=1:$v" >"$d/apt-get-source.log" 2>&1 ||
			apt-get source -q "qemu=$v" >>"$d/apt-get-source.log" 2>&1) ||
			{ cat "$d/apt-get-source.log" >&2; die "apt-get source qemu=$v failed"; }
		touch "$d/.done"
	fi
	local t
	t=$(find "$d" -mindepth 1 -maxdepth 1 -type d -name 'qemu-*' | head -n1)
	[[ -n $t && -f $t/VERSION ]] || die "no unpacked qemu source in $d"
	echo "$t"
}

# Patch files in series order.
qemu_series() {
	local s=$QPATCHES/series
	[[ -f $s ]] || return 0
	sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$s"
}

# Lean x86_64-softmmu: KVM only (no TCG), no docs/GUI/audio/tools, and only
# the boards and devices of qemu/config/kvmi-devices.mak (microvm, q35, pc).
# Debian's firmware (qemu-system-data, seabios) is used at run time.
QEMU_CONFIGURE=(
	--prefix=/usr
	--firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu
	--target-list=x86_64-softmmu
	--without-default-features --without-default-devices
	--with-devices-x86_64=kvmi
	--enable-kvm --disable-tcg --enable-fdt=system
	--disable-docs --disable-tools --disable-user --disable-install-blobs
	--audio-drv-list=
	--with-git-submodules=ignore
	--enable-werror
	--cc="ccache gcc" --cxx="ccache g++" --host-cc="ccache gcc"
	"--extra-cflags=-O2 -g0"
)


export CCACHE_DIR CCACHE_MAXSIZE CCACHE_NOHASHDIR=1 \
	CCACHE_SLOPPINESS=time_macros,include_file_mtime,include_file_ctime

# qemu_assemble DEB DEST [N]: DEST = the Debian tree DEB + the first N
# patches of the series (all by default) + the device config. Only files
# whose content differs are copied, so unchanged files keep their mtime
# and ninja rebuilds only what the patches touch.
qemu_assemble() {
	local deb=$1 dest=$2 n=${3:-} p k=0 scratch
	scratch=$(mktemp -d "$CACHE/tmp/qemu-src.XXXXXX")
	rsync -a --exclude=/.pc --exclude=/debian "$deb/" "$scratch/"
	for p in $(qemu_series); do
		[[ -n $n ]] && ((k >= n)) && break
		[[ -f $QPATCHES/$p ]] || { rm -rf "$scratch"; die "qemu/patches/series names a missing patch: $p"; }
		patch -d "$scratch" -p1 --fuzz=0 --no-backup-if-mismatch -s <"$QPATCHES/$p" ||
			{ rm -rf "$scratch"; die "qemu: $p does not apply"; }
		k=$((k + 1))
	done
	cp "$QREPO/config/kvmi-devices.mak" "$scratch/configs/devices/x86_64-softmmu/kvmi.mak"
	mkdir -p "$dest"
	rsync -a --checksum --delete "$scratch/" "$dest/"
	rm -rf "$scratch"
}

# qemu_configure VER SRC BUILD KEYFILE LOG: (re)configure BUILD when the
# Debian version or the configure options changed. SRC and BUILD are siblings (../src from the
# build dir, the same relative paths for every build dir: ccache hits
# across them with CCACHE_BASEDIR).
qemu_configure() {
	local ver=$1 src=$2 build=$3 keyfile=$4 logf=$5 k
	k=$(printf '%s\n' "$ver" "${QEMU_CONFIGURE[@]}" | sha256sum | cut -d' ' -f1)
	if [[ -f $build/build.ninja && -f $keyfile && $(cat "$keyfile") == "$k" ]]; then
		return 0
	fi
	rm -rf "$build"; mkdir -p "$build"
	log "qemu: configure ($build)"
	(cd "$build" && nice -n 10 "$src/configure" "${QEMU_CONFIGURE[@]}") >"$logf" 2>&1 ||
		{ tail -30 "$logf" >&2; return 1; }
	echo "$k" >"$keyfile"
}

# qemu_ninja BUILD LOG: build qemu-system-x86_64 (nice, ccache).
qemu_ninja() {
	local build=$1 logf=$2
	CCACHE_BASEDIR=$(dirname "$build") nice -n 10 ninja -C "$build" -j"$JOBS" qemu-system-x86_64 >"$logf" 2>&1
}
