#!/bin/bash
# `make qemu-patches`: write qemu/patches/ (and its series file) from the
# commits debian-base..kvmi of the tree that `make qemu-tree` made. Stable
# output: git format-patch --zero-commit --no-signature --no-numbered, no
# index lines, the commits' author dates (git am keeps them), so an
# unchanged commit gives a byte-identical file.
# It refuses when the tree has uncommitted changes (they would not be
# written), or when qemu/patches was edited since the tree was made from it
# (KVMI_QEMU_FORCE=1 overrides).
set -euo pipefail
. "$(dirname "$0")/qemu-lib.sh"

G=(git -C "$QTREE")
[[ -d $QTREE/.git ]] || die "no $QTREE: run make qemu-tree first"
if [[ -n $("${G[@]}" status --porcelain --untracked-files=normal) ]]; then
	"${G[@]}" status --short | head -20 >&2
	die "$QTREE has uncommitted changes: commit them first (qemu-patches writes commits only)"
fi
if [[ -z ${KVMI_QEMU_FORCE:-} && -f $QSTATE/patches.sum ]]; then
	cur=$( (cd "$QPATCHES" && cat series $(qemu_series)) 2>/dev/null | sha256sum | cut -d' ' -f1)
	if [[ $cur != "$(cat "$QSTATE/patches.sum")" ]]; then
		die "qemu/patches changed since make qemu-tree made $QTREE from it: run make qemu-tree (or KVMI_QEMU_FORCE=1 to overwrite qemu/patches)"
	fi
fi

tmp=$(mktemp -d "$CACHE/tmp/qemu-patches.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"${G[@]}" -c diff.noprefix=false -c format.signoff=false format-patch -q \
	--zero-commit --no-signature --no-numbered --no-cover-letter --no-renames \
	--subject-prefix=PATCH -o "$tmp" "$QBASE_TAG..$QBRANCH" >/dev/null
for f in "$tmp"/*.patch; do
	[[ -e $f ]] || continue
	sed -i -E '/^index [0-9a-f]{7,}\.\.[0-9a-f]{7,}( [0-7]{6})?$/d' "$f"
done

mkdir -p "$QPATCHES"
{
	echo "# KVMI QEMU series for Debian's qemu 7.2 (make qemu-patches writes this file)"
	(cd "$tmp" && ls -1 -- *.patch 2>/dev/null || true)
} >"$tmp/series"
changed=0
for f in "$tmp"/*.patch "$tmp/series"; do
	[[ -e $f ]] || continue
	b=$(basename "$f")
	if ! cmp -s "$f" "$QPATCHES/$b"; then cp "$f" "$QPATCHES/$b"; echo "  wrote qemu/patches/$b"; changed=$((changed + 1)); fi
done
for f in "$QPATCHES"/*.patch; do
	[[ -e $f ]] || continue
	b=$(basename "$f")
	[[ -e $tmp/$b ]] || { rm -f "$f"; echo "  removed qemu/patches/$b"; changed=$((changed + 1)); }
done
"${G[@]}" rev-parse HEAD >"$QSTATE/tree.head"
(cd "$QPATCHES" && cat series $(qemu_series)) | sha256sum | cut -d' ' -f1 >"$QSTATE/patches.sum"
log "qemu-patches: $(qemu_series | wc -l) patches in qemu/patches ($changed files changed)"
