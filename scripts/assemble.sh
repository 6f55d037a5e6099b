#!/bin/bash
# Assemble the kernel tree: pristine linux-source-6.12 + overlay + patches/series
# into $KVMI_CACHE/src, touching only files whose content changed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

VERSION=$(pristine_version)
PRISTINE=$(pristine_dir)
mkdir -p "$CACHE" "$STATE" "$CACHE/tmp"

# 1. Pristine source, unpacked once per Debian package version.
if [[ ! -f $PRISTINE/.kvmi-pristine-ok ]]; then
	log "unpacking linux-source $VERSION into $PRISTINE"
	tmp=$(mktemp -d "$CACHE/tmp/unpack.XXXXXX")
	tar -C "$tmp" -xJf /usr/src/linux-source-6.12.tar.xz
	top=("$tmp"/*)
	((${#top[@]} == 1)) && [[ -f ${top[0]}/Makefile ]] || die "unexpected layout of linux-source tarball"
	rm -rf "$PRISTINE"; mkdir -p "$(dirname "$PRISTINE")"
	mv "${top[0]}" "$PRISTINE"; rmdir "$tmp"
	touch "$PRISTINE/.kvmi-pristine-ok"
fi

# 2. A new pristine version means a fresh src tree and fresh build dirs.
if [[ ! -d $SRC || $(cat "$STATE/src-version" 2>/dev/null) != "$VERSION" ]]; then
	log "creating $SRC from pristine $VERSION (and wiping build dirs)"
	rm -rf "$SRC" "$BUILD" "$STATE/manifest"
	cp -a "$PRISTINE" "$SRC.tmp.$$"
	rm -f "$SRC.tmp.$$/.kvmi-pristine-ok"
	mv "$SRC.tmp.$$" "$SRC"
	echo "$VERSION" >"$STATE/src-version"
fi

# 3. Staging set = overlay files + files touched by patches + previous manifest.
stage=$(mktemp -d "$CACHE/tmp/stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mapfile -t overlay < <(overlay_files)
mapfile -t patches < <(series_patches)
{
	printf '%s\n' "${overlay[@]}"
	for p in "${patches[@]}"; do
		[[ -f $REPO/patches/$p ]] || die "patches/series lists '$p' but patches/$p does not exist"
		patch_paths "$REPO/patches/$p"
	done
	cat "$STATE/manifest" 2>/dev/null || true
} | grep -v -e '^$' -e '^/dev/null$' | sort -u >"$stage.list"
trap 'rm -rf "$stage" "$stage.list" "$stage.manifest"' EXIT

# Mini-tree: pristine copies first, then the overlay on top.
mkdir -p "$stage/tree"
while IFS= read -r f; do
	if [[ -f $PRISTINE/$f ]]; then
		mkdir -p "$stage/tree/$(dirname "$f")"; cp -p "$PRISTINE/$f" "$stage/tree/$f"
	fi
done <"$stage.list"
for f in "${overlay[@]}"; do
	[[ -f $PRISTINE/$f ]] && warn "overlay file $f also exists upstream (overlay replaces it; prefer a patch)"
	mkdir -p "$stage/tree/$(dirname "$f")"; cp -pL "$REPO/$f" "$stage/tree/$f"
done

# 4. Apply the series in order; any reject, fuzz or oddity is fatal.
for p in "${patches[@]}"; do
	if ! outp=$(cd "$stage/tree" && patch -p1 --fuzz=0 --no-backup-if-mismatch -N -s \
			-i "$REPO/patches/$p" </dev/null 2>&1); then
		printf '%s\n' "$outp" >&2
		for rej in $(cd "$stage/tree" && find . -name '*.rej'); do
			echo "--- reject $rej:" >&2; cat "$stage/tree/$rej" >&2
		done
		die "patch patches/$p does not apply cleanly (see above)"
	fi
	if grep -qiE 'fuzz|reversed|previously applied|hunk .* failed|malformed' <<<"$outp"; then
		printf '%s\n' "$outp" >&2
		die "patch patches/$p applied with problems (see above)"
	fi
	[[ -n $outp ]] && printf '[%s] %s\n' "$p" "$outp" >&2
done

# 5. Sync into $SRC: copy only changed files, restore/delete dropped ones.
changed=0
while IFS= read -r f; do
	s=$stage/tree/$f d=$SRC/$f
	if [[ -f $s ]]; then
		if [[ ! -f $d ]] || ! cmp -s "$s" "$d" || [[ $(stat -c %a "$s") != $(stat -c %a "$d") ]]; then
			mkdir -p "$(dirname "$d")"; rm -f "$d"
			cp "$s" "$d"; chmod "$(stat -c %a "$s")" "$d"
			echo "  update $f" >&2; changed=$((changed + 1))
		fi
	elif [[ -e $d ]]; then
		rm -f "$d"; echo "  delete $f" >&2; changed=$((changed + 1))
	fi
	# Manifest: every path where src now differs from pristine (added, changed, deleted).
	if [[ -f $s && -f $PRISTINE/$f ]] && cmp -s "$s" "$PRISTINE/$f"; then :
	elif [[ ! -f $s && ! -f $PRISTINE/$f ]]; then :
	else echo "$f" >>"$stage.manifest"; fi
done <"$stage.list"
touch "$stage.manifest"
mv "$stage.manifest" "$STATE/manifest"
log "assembled $SRC ($VERSION): ${#overlay[@]} overlay files, ${#patches[@]} patches, $changed files changed"
