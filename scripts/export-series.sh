#!/bin/bash
# Export the series as git format-patch files in out/series:
#   base commit "Linux <version>" (cached git repo of the pristine tree), then
#   the overlay as new-file commits (UAPI headers, core, docs, selftests) and
#   one commit per patch in patches/series, then format-patch --cover-letter --base.
# Commits are built with plumbing (temporary index), no checkout needed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

VERSION=$(pristine_version)
PRISTINE=$(pristine_dir)
[[ -f $PRISTINE/.kvmi-pristine-ok ]] || "$REPO/scripts/assemble.sh"
G=$CACHE/git/$VERSION
export GIT_DIR=$G/.git
export GIT_COMMITTER_DATE=${GIT_COMMITTER_DATE:-"2025-01-01T00:00:00Z"}   # stable hashes
upstream=$(sed -nE 's/^(VERSION|PATCHLEVEL|SUBLEVEL) = ([0-9]+)$/\2/p' "$PRISTINE/Makefile" | paste -sd.)

# 1. Cached base repo: one commit with the whole pristine tree (~30 s once).
if ! git rev-parse -q --verify refs/tags/base >/dev/null 2>&1; then
	log "creating base git repo $G (Linux $upstream)"
	rm -rf "$G"; mkdir -p "$G"
	git init -q "$G"
	git config core.autocrlf false; git config gc.auto 0
	GIT_WORK_TREE=$PRISTINE git add -A -f -- . ':!.kvmi-pristine-ok'
	GIT_AUTHOR_NAME="Linux" GIT_AUTHOR_EMAIL="linux@kernel.org" GIT_COMMITTER_NAME="Linux" \
		GIT_COMMITTER_EMAIL="linux@kernel.org" GIT_WORK_TREE=$PRISTINE git commit -q -m "Linux $upstream" -m "Debian linux-source-6.12 $VERSION"
	git tag base
fi
base=$(git rev-parse base^{commit})

# Default identity for the overlay commits: the author of the first patch.
mapfile -t patches < <(series_patches)
author="KVMI developers <kvmi@localhost>"
for p in "${patches[@]}"; do
	a=$(sed -n '1,20s/^From: //p' "$REPO/patches/$p" 2>/dev/null | head -1)
	[[ -n $a ]] && { author=$a; break; }
done

tmp=$(mktemp -d "$CACHE/tmp/export.XXXXXX"); trap 'rm -rf "$tmp"' EXIT
export GIT_INDEX_FILE=$tmp/index
git read-tree "$base"
head=$base

commit_index() { # commit_index MSGFILE AUTHOR-NAME AUTHOR-EMAIL [DATE]
	local tree; tree=$(git write-tree)
	head=$(GIT_AUTHOR_NAME=$2 GIT_AUTHOR_EMAIL=$3 GIT_AUTHOR_DATE=${4:-$GIT_COMMITTER_DATE} \
		git commit-tree "$tree" -p "$head" -F "$1")
}

# 2. Overlay commits, grouped by area (each only adds new files, not yet wired into the build).
declare -A group=()
while IFS= read -r f; do
	case $f in
	include/uapi/*|arch/*/include/uapi/*) g=1uapi ;;
	Documentation/*) g=3docs ;;
	tools/*) g=4selftests ;;
	*) g=2core ;;
	esac
	group[$g]+="$f"$'\n'
done < <(overlay_files)
declare -A title=(
	[1uapi]="KVM: introspection: add the KVMI UAPI headers"
	[2core]="KVM: introspection: add the KVMI core"
	[3docs]="KVM: doc: add the KVMI documentation"
	[4selftests]="KVM: selftests: add kvmi_test"
)
aname=${author% <*}; aemail=${author##*<}; aemail=${aemail%>}
# The committer (and so the cover letter's From:) is the series author too.
export GIT_COMMITTER_NAME=${GIT_COMMITTER_NAME:-$aname} GIT_COMMITTER_EMAIL=${GIT_COMMITTER_EMAIL:-$aemail}
for g in 1uapi 2core 3docs 4selftests; do
	[[ -n ${group[$g]:-} ]] || continue
	while IFS= read -r f; do
		[[ -n $f ]] || continue
		mode=100644; [[ -x $REPO/$f ]] && mode=100755
		git update-index --add --cacheinfo "$mode,$(git hash-object -w "$REPO/$f"),$f"
	done <<<"${group[$g]}"
	{ echo "${title[$g]}"; echo; echo "Add the new files:"; echo
	  sed '/^$/d; s/^/  /' <<<"${group[$g]}"; echo; echo "Signed-off-by: $author"; } >"$tmp/msg"
	commit_index "$tmp/msg" "$aname" "$aemail"
done

# 3. One commit per patch, message and author from the patch header.
for p in "${patches[@]}"; do
	pf=$REPO/patches/$p
	[[ -f $pf ]] || die "patches/series lists $p but it does not exist"
	git mailinfo -k "$tmp/msg.body" "$tmp/diff" <"$pf" >"$tmp/info"
	subj=$(sed -n 's/^Subject: //p' "$tmp/info"); subj=$(sed -E 's/^\[[^]]*\] *//' <<<"$subj")
	name=$(sed -n 's/^Author: //p' "$tmp/info"); email=$(sed -n 's/^Email: //p' "$tmp/info")
	date=$(sed -n 's/^Date: //p' "$tmp/info")
	[[ -n $subj && -n $name ]] || die "patches/$p: no From:/Subject: header"
	git apply --cached --whitespace=nowarn "$tmp/diff" || die "patches/$p does not apply in git (export)"
	{ echo "$subj"; echo; cat "$tmp/msg.body"; } >"$tmp/msg"
	commit_index "$tmp/msg" "$name" "$email" "${date:-}"
done
git update-ref refs/heads/kvmi "$head"

# 4. format-patch with a real cover letter.
rm -rf "$OUT/series"; mkdir -p "$OUT/series"
git format-patch -q --cover-letter --base="$base" -o "$OUT/series" "$base..$head"
cover=$(ls "$OUT"/series/0000-cover-letter.patch)
cl=$REPO/patches/cover-letter.txt
if [[ -f $cl ]]; then
	csubj=$(head -1 "$cl"); tail -n +2 "$cl" | sed '1{/^$/d}' >"$tmp/blurb"
else
	csubj="KVM: introspection (KVMI) for Linux $upstream"
	echo "This series adds KVM introspection (KVMI) on top of Linux $upstream." >"$tmp/blurb"
fi
CSUBJ=$csubj BLURB=$tmp/blurb perl -0pi -e '
	s/\*\*\* SUBJECT HERE \*\*\*/$ENV{CSUBJ}/;
	open(my $b, "<", $ENV{BLURB}); local $/; my $t = <$b>; $t =~ s/\s+\z//;
	s/\*\*\* BLURB HERE \*\*\*/$t/;' "$cover"
log "exported $(($(ls "$OUT/series" | wc -l) - 1)) patches + cover letter to $OUT/series (branch kvmi in $G)"
