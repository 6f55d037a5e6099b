#!/bin/bash
# Check case "export: git am": `git am` of out/series (the cover letter is
# skipped, as git am skips it) onto the base commit, in a scratch worktree of
# the base repo, must give exactly the assembled tree: the tree of the am'ed
# commit is compared with a tree made of base + $SRC's content for every path
# the series touches (and every path the assembly changed).
# The scratch worktree checks out only those paths (git am needs nothing else).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

stage=export
reset_results $stage
G=$(base_repo)
lf=$OUT/logs/export-git-am.log
mkdir -p "$OUT/logs" "$CACHE/tmp"
mapfile -t mails < <(ls "$OUT"/series/*.patch 2>/dev/null | grep -v '/0000-cover-letter\.patch$' || true)
if ((${#mails[@]} == 0)); then
	result $stage FAIL "export: git am" "no $OUT/series/*.patch (run make export)"; exit 1
fi
[[ -f $STATE/manifest ]] || die "$SRC is not assembled"

scratch=$(mktemp -d "$CACHE/tmp/am.XXXXXX")
cleanup() {
	git -C "$G" worktree remove --force "$scratch/wt" >/dev/null 2>&1 || true
	git -C "$G" worktree prune
	rm -rf "$scratch" "$scratch.index"
}
trap cleanup EXIT

fail() { result $stage FAIL "export: git am" "$1, log: $lf"; exit 1; }

# Worktree without checkout, index = base, then only the touched paths checked out.
am_series() {
	git -C "$G" worktree add -q --detach --no-checkout "$scratch/wt" base || return 1
	cd "$scratch/wt" || return 1
	git read-tree base || return 1
	for m in "${mails[@]}"; do patch_paths "$m"; done | grep -vx /dev/null | sort -u >"$scratch/paths"
	xargs -a "$scratch/paths" -d '\n' git ls-tree -r --name-only base -- >"$scratch/existing" || return 1
	if [[ -s $scratch/existing ]]; then
		git checkout base --pathspec-from-file="$scratch/existing" || return 1
	fi
	echo "git am ${#mails[@]} patches onto base $(git rev-parse base)"
	GIT_COMMITTER_NAME="KVMI export check" GIT_COMMITTER_EMAIL=kvmi@localhost git am -q "${mails[@]}"
}
am_series >"$lf" 2>&1 || fail "git am failed"
cd "$scratch/wt"
am=$(git rev-parse HEAD)
n=$(git rev-list --count base..HEAD)
((n == ${#mails[@]})) || fail "git am made $n commits for ${#mails[@]} patches"

# Tree of base + $SRC for every touched path (temporary index).
export GIT_INDEX_FILE=$scratch.index
git read-tree base
{ git diff --name-only base "$am"; cat "$STATE/manifest"; } | sort -u | while IFS= read -r f; do
	if [[ -f $SRC/$f ]]; then
		mode=100644; [[ -x $SRC/$f ]] && mode=100755
		git update-index --add --cacheinfo "$mode,$(git hash-object -w "$SRC/$f"),$f"
	else
		git update-index --force-remove -- "$f"
	fi
done
srctree=$(git write-tree)
unset GIT_INDEX_FILE
if [[ $srctree == $(git rev-parse "$am^{tree}") ]]; then
	echo "tree $srctree: identical to the assembled tree" >>"$lf"
	result $stage PASS "export: git am"
else
	git diff --stat "$am^{tree}" "$srctree" >>"$lf" 2>&1 || true
	fail "the am'ed tree differs from $SRC ($(git diff --name-only "$am^{tree}" "$srctree" | wc -l) files)"
fi
