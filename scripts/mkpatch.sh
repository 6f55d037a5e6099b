#!/bin/bash
# Turn edits of upstream files in the assembled tree into a patch.
#   mkpatch.sh NAME.patch "Subject line" FILE...
# FILEs are kernel paths you edited in $KVMI_CACHE/src (after `make assemble`).
# The diff is taken against the pristine file, so each upstream file should be
# changed by one patch only (the script warns otherwise).
# It writes patches/NAME.patch (git-format-patch-like); add it to patches/series
# yourself if it is new, then run `make assemble`.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

name=${1:?usage: mkpatch.sh NAME.patch "Subject" FILE...}; subj=${2:?subject}; shift 2
(($#)) || die "no files given"
PRISTINE=$(pristine_dir)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# "Before" state: the pristine file. If another patch of the series also
# touches one of the files, the new patch would repeat its changes: warn.
mkdir -p "$tmp/a"
for f in "$@"; do
	[[ -f $PRISTINE/$f ]] && { mkdir -p "$tmp/a/$(dirname "$f")"; cp "$PRISTINE/$f" "$tmp/a/$f"; }
	[[ -f $REPO/$f ]] && die "$f is an overlay file: edit it in the repo, no patch needed"
	while IFS= read -r p; do
		[[ $p != "$name" && -f $REPO/patches/$p ]] || continue
		patch_paths "$REPO/patches/$p" | grep -qxF "$f" &&
			warn "$f is also changed by patches/$p: the new patch is relative to pristine, fix it up by hand"
	done < <(series_patches)
done

author=$(git -C "$REPO" config user.name || echo "KVMI developer")" <"$(git -C "$REPO" config user.email || echo kvmi@localhost)">"
{
	echo "From: $author"
	echo "Subject: [PATCH] $subj"
	echo
	echo "Describe the change here."
	echo
	echo "Signed-off-by: $author"
	echo "---"
	for f in "$@"; do
		old=$tmp/a/$f; [[ -f $old ]] || old=/dev/null
		new=$SRC/$f; [[ -f $new ]] || new=/dev/null
		echo "diff --git a/$f b/$f"
		diff -u --label "a/$f" --label "b/$f" "$old" "$new" || true
	done
} >"$REPO/patches/$name"
log "wrote patches/$name (edit its description; add it to patches/series if new)"
