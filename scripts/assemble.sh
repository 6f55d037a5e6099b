#!/bin/bash
# Assemble the kernel tree: pristine linux-source-6.12 + the patches of
# patches/series (git format-patch files, applied in order with git apply)
# into $KVMI_CACHE/src, touching only files whose content changed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

VERSION=$(pristine_version)
PRISTINE=$(pristine_dir)
mkdir -p "$CACHE" "$STATE" "$CACHE/tmp"

# 1. Pristine source, unpacked once per Debian package version.
ensure_pristine
check_series

# 2. A new pristine version means a fresh src tree and fresh build dirs.
if [[ ! -d $SRC || $(cat "$STATE/src-version" 2>/dev/null) != "$VERSION" ]]; then
	log "creating $SRC from pristine $VERSION (and wiping build dirs)"
	rm -rf "$SRC" "$BUILD" "$STATE/manifest"
	cp -a "$PRISTINE" "$SRC.tmp.$$"
	rm -f "$SRC.tmp.$$/.kvmi-pristine-ok"
	mv "$SRC.tmp.$$" "$SRC"
	echo "$VERSION" >"$STATE/src-version"
fi

# 3. Staging set = files touched by the patches + previous manifest (so that
#    files which dropped out of the series are restored).
stage=$(mktemp -d "$CACHE/tmp/stage.XXXXXX")
trap 'rm -rf "$stage" "$stage.list"' EXIT
mapfile -t patches < <(series_patches)
{ series_paths; cat "$STATE/manifest" 2>/dev/null || true; } | sort -u >"$stage.list"

# Mini-tree with the pristine copies, then the series in order; any reject is fatal.
stage_init "$stage" "$stage.list"
for p in "${patches[@]}"; do
	stage_apply "$stage" "$REPO/patches/$p" || die "patch patches/$p does not apply cleanly (see above)"
done

# 4. Sync into $SRC: copy only changed files, restore/delete dropped ones.
stage_sync "$stage" "$SRC" "$stage.list" "$STATE/manifest"
log "assembled $SRC ($VERSION): ${#patches[@]} patches, $SYNC_CHANGED files changed"
