#!/bin/bash
# checkpatch --strict over every overlay file (-f) and every patch in
# patches/series. One case per file; any ERROR/WARNING/CHECK fails it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

stage=checkpatch
reset_results $stage
mkdir -p "$OUT/logs/checkpatch"
[[ -x $SRC/scripts/checkpatch.pl ]] || die "$SRC is not assembled"
# Run from the assembled tree root with its checkpatch.pl; --no-tree because $SRC has no .git.
cp_args=(--strict --no-tree --color=never --show-types)

check_one() { # check_one CASE-NAME LOGNAME checkpatch-args...
	local name=$1 lf=$OUT/logs/checkpatch/$2.log; shift 2
	local rc=0
	(cd "$SRC" && perl scripts/checkpatch.pl "${cp_args[@]}" "$@") >"$lf" 2>&1 || rc=$?
	local sum; sum=$(grep -E '^total: ' "$lf" | tail -1 || true)
	if ((rc == 0)) && [[ $sum =~ total:\ 0\ errors,\ 0\ warnings,\ (0\ checks,\ )?[0-9]+\ lines ]]; then
		result $stage PASS "$name"
	else
		grep -E '^(ERROR|WARNING|CHECK):|^#[0-9]+: FILE:' "$lf" | head -20 | sed 's/^/    /' >&2 || true
		result $stage FAIL "$name" "${sum:-checkpatch failed (rc=$rc)}"
	fi
}

n=0
while IFS= read -r f; do
	# The assembled copy has the overlay's content at its kernel path.
	if [[ ! -f $SRC/$f ]]; then
		result $stage FAIL "checkpatch: $f" "not in the assembled tree, run make assemble"; continue
	fi
	check_one "checkpatch: $f" "$(tr / _ <<<"$f")" -f "$f"; n=$((n + 1))
done < <(overlay_files)
while IFS= read -r p; do
	if [[ ! -f $REPO/patches/$p ]]; then
		result $stage FAIL "checkpatch: patches/$p" "listed in patches/series but missing"; continue
	fi
	check_one "checkpatch: patches/$p" "patch_$p" "$REPO/patches/$p"; n=$((n + 1))
done < <(series_patches)
((n)) || result $stage SKIP checkpatch "no overlay files or patches"
! grep -q '^FAIL' "$RESULTS/$stage.txt"
