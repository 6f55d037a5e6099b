#!/bin/bash
# make tree: the series as a kernel git work tree, $KVMI_CACHE/tree/<version>:
# tag "base" (the pristine Debian linux-source-6.12, commit "Linux 6.12.y")
# and, on branch kvmi, one commit per patch of patches/series (as git am makes
# them). Edit there with plain git, then `make patches` writes patches/ back.
#
# It never drops work that was not written back: it refuses when the work tree
# has uncommitted changes, when a git operation (rebase, am, merge...) is in
# progress, when HEAD is not branch kvmi, or when kvmi differs from what the
# last `make tree` / `make patches` wrote (refs/kvmi/written). FORCE=1
# discards all that (uncommitted changes go to `git stash`, the old branch to
# refs/kvmi/discarded) and rebuilds kvmi in any case. When patches/ changed (e.g. after a git pull) and the
# tree holds no unsaved work, kvmi is rebuilt from patches/; the checkout
# rewrites only the files that differ.
set -euo pipefail
KVMI_LOCK=tree.lock
. "$(dirname "$0")/lib.sh"

FORCE=${FORCE:-0}
ensure_pristine
check_series
ensure_base_repo
G=$(base_repo) T=$(tree_dir)
key=$(series_key)
mapfile -t files < <(series_files)
mkdir -p "$CACHE/tmp"

git_t() { git -C "$T" "$@"; }
keyfile() { echo "$T/.git/kvmi-patches-key"; }

# The kvmi commits of patches/, in the tree repo (objects only, no checkout).
new_tip() {
	series_commits "$T" base "${files[@]}" || die "patches/ does not apply onto base (see above)"
}

written() { # mark TIP as what patches/ holds
	git_t update-ref -m "make tree" refs/kvmi/written "$1"
	echo "$key" >"$(keyfile)"
}

# Debian's top-level .gitignore ignores everything ("/*", for its packaging
# repo), so git would not see a new file. The tree keeps the committed file
# but works with a copy without that block (skip-worktree: git status and
# commits ignore the difference).
fix_gitignore() {
	grep -qx '/\*' "$T/.gitignore" 2>/dev/null || return 0
	git_t update-index --skip-worktree .gitignore
	sed -i -e '/^# Debian packaging: ignore everything at the top level/,$d' -e '/^\/\*$/d' -e '/^!\/debian\/$/d' "$T/.gitignore"
}

summary() {
	local n; n=$(git_t rev-list --count base..kvmi)
	log "tree $T: branch kvmi = base + $n commits ($(git_t log -1 --format='%h %s' kvmi))"
}

# 1. First time: clone the base repo (hard links, no copy of the objects) and
#    check out the whole kernel once.
if [[ ! -d $T/.git ]]; then
	log "creating the kernel tree $T (one full checkout, a minute or two)"
	rm -rf "$T.tmp"; mkdir -p "$(dirname "$T")"
	git clone -q --local --no-checkout "$G" "$T.tmp"
	git -C "$T.tmp" remote remove origin
	git -C "$T.tmp" config gc.auto 0
	git -C "$T.tmp" config core.autocrlf false
	mv "$T.tmp" "$T"
	tip=$(new_tip)
	git_t checkout -q -B kvmi "$tip"
	fix_gitignore
	git_t for-each-ref --format='%(refname)' refs/heads/ | grep -vx refs/heads/kvmi |
		while IFS= read -r r; do git_t update-ref -d "$r"; done
	written "$tip"
	summary
	exit 0
fi

# 2. Anything that a rebuild would drop?
cd "$T"
fix_gitignore
why=()
for op in rebase-merge rebase-apply MERGE_HEAD CHERRY_PICK_HEAD REVERT_HEAD BISECT_LOG; do
	[[ -e $(git rev-parse --git-path "$op") ]] && why+=("a git operation is in progress ($op)")
done
head=$(git symbolic-ref -q HEAD || echo "detached at $(git rev-parse --short HEAD)")
[[ $head == refs/heads/kvmi ]] || why+=("HEAD is $head, not branch kvmi")
dirty=$(git status --porcelain | sed -n 1,20p)
[[ -z $dirty ]] || why+=("uncommitted changes in the work tree:"$'\n'"$(sed 's/^/        /' <<<"$dirty")")
tip=$(git rev-parse -q --verify refs/heads/kvmi || echo none)
wr=$(git rev-parse -q --verify refs/kvmi/written || echo none)
if [[ $tip != "$wr" ]]; then
	if [[ $tip != none && $wr != none ]] && git merge-base --is-ancestor base "$tip" 2>/dev/null; then
		why+=("branch kvmi has commits that were not written back to patches/ (make patches):"$'\n'"$(
			git log --oneline --no-decorate "$wr..$tip" | sed -n 1,20p | sed 's/^/        /')")
	else
		why+=("branch kvmi ($tip) is not what patches/ was last written from ($wr)")
	fi
fi
patches_changed=0
[[ $(cat "$(keyfile)" 2>/dev/null) == "$key" ]] || patches_changed=1

if ((${#why[@]})) && [[ $FORCE != 1 && $tip == "$wr" ]] && ((patches_changed == 0)); then
	# Nothing to rebuild: leave the work alone.
	log "tree $T: branch kvmi matches patches/; note:"
	printf '  - %s\n' "${why[@]}" >&2
	summary
	exit 0
fi
if ((${#why[@]})); then
	if [[ $FORCE != 1 ]]; then
		{
			echo "make tree: refusing to rebuild $T, it holds work that is not in patches/:"
			printf '  - %s\n' "${why[@]}"
			((patches_changed == 0)) || echo "  (and patches/ changed since the tree was built, e.g. by a git pull)"
			echo "Either write it back: finish the operation / commit your changes on kvmi, then"
			echo "  make patches        (writes patches/ from kvmi; then git add patches && git commit)"
			echo "or discard it:"
			echo "  make tree FORCE=1   (uncommitted changes go to git stash, the branch to refs/kvmi/discarded)"
			((patches_changed == 0)) || echo "To keep your commits and take the new patches/: git branch mywork kvmi;" \
				"make tree FORCE=1; then git cherry-pick or rebase --onto kvmi the commits of mywork."
		} >&2
		exit 1
	fi
	log "FORCE=1: discarding the unsaved work in $T"
	for op in "rebase --abort" "am --abort" "merge --abort" "cherry-pick --abort" "revert --abort" "bisect reset"; do
		# shellcheck disable=SC2086
		git $op >/dev/null 2>&1 || true
	done
	if [[ -n $(git status --porcelain | sed -n 1p) ]]; then
		git stash push -q --include-untracked -m "make tree FORCE=1" && log "uncommitted changes saved: git stash list"
	fi
	if [[ $tip != none && $tip != "$wr" ]]; then
		git update-ref -m "make tree FORCE=1" refs/kvmi/discarded "$tip"
		log "old branch kvmi kept as refs/kvmi/discarded ($(git rev-parse --short "$tip"))"
	fi
elif ((patches_changed == 0)) && [[ $FORCE != 1 ]]; then
	log "tree $T is up to date with patches/"
	summary
	exit 0
fi

# 3. Rebuild kvmi from patches/; the checkout only rewrites files that differ.
new=$(new_tip)
if [[ $new == "$tip" ]] && [[ -z $(git status --porcelain | sed -n 1p) ]] &&
	[[ $(git symbolic-ref -q HEAD || true) == refs/heads/kvmi ]]; then
	log "branch kvmi already matches patches/"
else
	n=$( { [[ $tip == none ]] || git diff --name-only "$tip" "$new"; } | wc -l)
	git checkout -q -f -B kvmi "$new"
	fix_gitignore
	log "rebuilt branch kvmi from patches/ ($n files changed in the work tree)"
fi
written "$new"
summary
