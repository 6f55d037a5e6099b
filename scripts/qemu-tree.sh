#!/bin/bash
# `make qemu-tree`: a git work tree of the QEMU series in $KVMI_CACHE/qemu/tree.
# Base commit (tag debian-base) = Debian's qemu source with Debian's patches
# applied (apt-get source, without debian/ and .pc/); branch kvmi = one commit
# per qemu/patches/*.patch (git am, author dates kept). Edit and commit there
# (git commit, git rebase -i ...), then `make qemu-patches` writes
# qemu/patches/ back.
# It refuses to reset a tree that holds unsaved work: uncommitted changes, or
# commits that `make qemu-patches` has not written back (KVMI_QEMU_FORCE=1
# overrides).
set -euo pipefail
. "$(dirname "$0")/qemu-lib.sh"

qemu_deps
qemu_debsrc
ver=$(qemu_deb_version)
deb=$(qemu_deb_tree "$ver")
mkdir -p "$QSTATE"
export GIT_AUTHOR_NAME="Debian QEMU source" GIT_AUTHOR_EMAIL="qemu@packages.debian.org"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
G=(git -C "$QTREE" -c advice.detachedHead=false -c core.autocrlf=false)

if [[ -d $QTREE/.git && -z ${KVMI_QEMU_FORCE:-} ]]; then
	if [[ -n $("${G[@]}" status --porcelain --untracked-files=normal) ]]; then
		"${G[@]}" status --short | head -20 >&2
		die "$QTREE has uncommitted changes: commit them and run make qemu-patches (or KVMI_QEMU_FORCE=1 to discard)"
	fi
	head=$("${G[@]}" rev-parse HEAD)
	if [[ -f $QSTATE/tree.head && $head != "$(cat "$QSTATE/tree.head")" ]]; then
		die "$QTREE has commits that qemu/patches does not have yet (HEAD $head): run make qemu-patches first (or KVMI_QEMU_FORCE=1 to discard)"
	fi
fi

base_ok=
if [[ -d $QTREE/.git ]] && "${G[@]}" rev-parse -q --verify "refs/tags/$QBASE_TAG" >/dev/null &&
   [[ $("${G[@]}" log -1 --format=%s "$QBASE_TAG") == "qemu $ver"* ]]; then
	base_ok=1
fi
if [[ -z $base_ok ]]; then
	log "qemu-tree: importing the Debian source $ver as the base commit (tag $QBASE_TAG)"
	rm -rf "$QTREE"; mkdir -p "$QTREE"
	git init -q -b "$QBRANCH" "$QTREE"
	rsync -a --exclude=/.pc --exclude=/debian "$deb/" "$QTREE/"
	# QEMU's own .gitignore would hide some source files of the tarball.
	rm -f "$QTREE/.gitignore"
	"${G[@]}" add -A -f .
	GIT_AUTHOR_DATE="2025-01-01T00:00:00Z" GIT_COMMITTER_DATE="2025-01-01T00:00:00Z" \
		"${G[@]}" commit -q -m "qemu $ver (Debian source, Debian patches applied)" \
		-m "apt-get source qemu=1:$ver, without debian/ and .pc/."
	"${G[@]}" tag -f "$QBASE_TAG" >/dev/null
fi

"${G[@]}" checkout -q -f -B "$QBRANCH" "$QBASE_TAG"
"${G[@]}" clean -q -fdx
n=0
for p in $(qemu_series); do
	[[ -f $QPATCHES/$p ]] || die "qemu/patches/series names a missing patch: $p"
	"${G[@]}" -c user.name=kvmi -c user.email=kvmi@localhost am -q --committer-date-is-author-date \
		"$QPATCHES/$p" || { "${G[@]}" am --abort || true; die "qemu-tree: $p does not apply"; }
	n=$((n + 1))
done
"${G[@]}" rev-parse HEAD >"$QSTATE/tree.head"
(cd "$QPATCHES" && cat series $(qemu_series)) | sha256sum | cut -d' ' -f1 >"$QSTATE/patches.sum"
log "qemu-tree: $QTREE, branch $QBRANCH = $QBASE_TAG ($ver) + $n patches"
