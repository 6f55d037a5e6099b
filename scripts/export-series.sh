#!/bin/bash
# Export the series as git format-patch files in out/series:
#   the base repo ($KVMI_CACHE/git/<version>: commit "Linux <version>", tag
#   base), one commit per patch of patches/series on branch kvmi (made as git
#   am makes them, with plumbing: no checkout), then
#   git format-patch --cover-letter --base=base: numbered "[PATCH NN/MM]",
#   the cover letter's subject and blurb from patches/cover-letter.txt.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ensure_pristine
check_series
ensure_base_repo
G=$(base_repo)
upstream=$(pristine_upstream)
mapfile -t files < <(series_files)
((${#files[@]})) || die "patches/series is empty: nothing to export"

head=$(series_commits "$G" base "${files[@]}") || die "patches/ does not apply onto base (see above)"
git -C "$G" update-ref refs/heads/kvmi "$head"

# The cover letter's From: is the committer: the author of the first patch.
first=$(git -C "$G" rev-list --reverse base..kvmi | sed -n 1p)
export GIT_COMMITTER_NAME=${GIT_COMMITTER_NAME:-$(git -C "$G" log -1 --format=%an "$first")}
export GIT_COMMITTER_EMAIL=${GIT_COMMITTER_EMAIL:-$(git -C "$G" log -1 --format=%ae "$first")}
export GIT_COMMITTER_DATE=${GIT_COMMITTER_DATE:-$KVMI_DATE}

tmp=$(mktemp -d "$CACHE/tmp/export.XXXXXX"); trap 'rm -rf "$tmp"' EXIT
rm -rf "$OUT/series"; mkdir -p "$OUT/series"
GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 git -C "$G" -c format.signature= \
	format-patch -q --cover-letter --base=base --no-thread -o "$OUT/series" base..kvmi
cover=$OUT/series/0000-cover-letter.patch
[[ -f $cover ]] || die "format-patch wrote no cover letter"
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
log "exported ${#files[@]} patches + cover letter to $OUT/series (branch kvmi in $G)"
