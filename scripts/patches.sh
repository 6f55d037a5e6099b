#!/bin/bash
# make patches: write patches/ back from branch kvmi of the kernel tree
# ($KVMI_CACHE/tree/<version>, see tree.sh): git format-patch base..kvmi,
# normalized so that the output is byte-stable (no index lines, no Date:,
# "[PATCH]" without numbers, zero commit hash, no signature; the diffstat
# stays), patches/series rewritten (its leading comment block is kept), patch
# files that left the series deleted, refs/kvmi/written updated.
# Refuses when the tree has uncommitted changes or a git operation in progress,
# and when patches/ changed since the tree was built from it (e.g. a git pull:
# writing back would drop those changes; FORCE=1 writes anyway).
set -euo pipefail
KVMI_LOCK=tree.lock
. "$(dirname "$0")/lib.sh"

FORCE=${FORCE:-0}
T=$(tree_dir)
[[ -d $T/.git ]] || die "no kernel tree $T: run make tree first"
P=$REPO/patches
mkdir -p "$P" "$CACHE/tmp"
cd "$T"

for op in rebase-merge rebase-apply MERGE_HEAD CHERRY_PICK_HEAD REVERT_HEAD; do
	[[ ! -e $(git rev-parse --git-path "$op") ]] || die "a git operation is in progress in $T ($op): finish or abort it first"
done
[[ $(git symbolic-ref -q HEAD || true) == refs/heads/kvmi ]] ||
	die "HEAD of $T is not branch kvmi: git checkout kvmi (make patches writes branch kvmi)"
if [[ -n $(git status --porcelain | sed -n 1p) ]]; then
	git status --short | sed -n 1,20p >&2
	die "uncommitted changes in $T: commit them (git commit, git commit --fixup=<commit>) or stash them first"
fi
if [[ $(cat "$T/.git/kvmi-patches-key" 2>/dev/null) != "$(series_key 2>/dev/null)" && $FORCE != 1 ]]; then
	die "patches/ changed since the tree was built from it (a git pull?): writing kvmi back would drop" \
		"those changes. Keep your work with 'git branch mywork kvmi', run make tree FORCE=1 and" \
		"cherry-pick/rebase it onto the new kvmi; or FORCE=1 make patches to overwrite patches/"
fi
git merge-base --is-ancestor base kvmi || die "branch kvmi does not start from tag base"
[[ -z $(git rev-list --merges base..kvmi) ]] || die "branch kvmi has merge commits: linearize it (git rebase base)"
tip=$(git rev-parse kvmi)
ncommits=$(git rev-list --count base..kvmi)
while IFS= read -r c; do
	git diff-tree --quiet "$c^" "$c" && die "commit $(git log -1 --format='%h %s' "$c") is empty: drop it (git rebase -i base)"
done < <(git rev-list base..kvmi)

tmp=$(mktemp -d "$CACHE/tmp/patches.XXXXXX"); trap 'rm -rf "$tmp"' EXIT
format_patches "$T" base..kvmi "$tmp/new"
mapfile -t new < <(cd "$tmp/new" 2>/dev/null && ls -- *.patch 2>/dev/null | sort)
((${#new[@]} == ncommits)) || die "format-patch wrote ${#new[@]} files for $ncommits commits"
if ((${#new[@]})) && grep -l -E '^(Binary files .* differ|GIT binary patch)$' "${new[@]/#/$tmp/new/}" >&2; then
	die "binary changes cannot go into patches/ (above)"
fi

# The written files must give back the same tree (what make assemble/tree do).
rt=$(series_commits "$T" base "${new[@]/#/$tmp/new/}") || die "the new patch files do not apply onto base (see above)"
[[ $(git rev-parse "$rt^{tree}") == $(git rev-parse "kvmi^{tree}") ]] ||
	die "the new patch files do not reproduce the tree of kvmi (bug in the normalization?)"

# Write: only files whose bytes change; drop patch files that left the series.
upd=0 del=0
for f in "${new[@]}"; do
	if ! cmp -s "$tmp/new/$f" "$P/$f"; then cp "$tmp/new/$f" "$P/$f"; upd=$((upd + 1)); fi
done
declare -A keep=()
for f in "${new[@]}"; do keep[$f]=1; done
for f in "$P"/*.patch; do
	[[ -f $f && -z ${keep[${f##*/}]:-} ]] || continue
	rm -f "$f"; del=$((del + 1))
done
{
	# Keep the leading comment block of the old series file.
	[[ -f $P/series ]] && awk '/^[[:space:]]*(#|$)/ { print; next } { exit }' "$P/series"
	printf '%s\n' "${new[@]}"
} >"$tmp/series"
if ! cmp -s "$tmp/series" "$P/series"; then cp "$tmp/series" "$P/series"; upd=$((upd + 1)); fi

git update-ref -m "make patches" refs/kvmi/written "$tip"
series_key >"$T/.git/kvmi-patches-key"
log "patches/: $ncommits patches from kvmi ($upd files written, $del deleted)"
git -C "$REPO" status --short -- patches >&2
((upd + del == 0)) || log "review: git -C $REPO diff --stat -- patches; then git add patches && git commit"
