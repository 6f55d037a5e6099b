#!/bin/bash
# checkpatch --strict on every patch of patches/series (new files included:
# they are in the patches). One case per patch, "checkpatch: NNNN-subject";
# any ERROR/WARNING/CHECK fails it (also FILE_PATH_CHANGES: a patch that
# adds a file adds it to the MAINTAINERS entry too).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

stage=checkpatch
reset_results $stage
mkdir -p "$OUT/logs/checkpatch"
rm -f "$OUT"/logs/checkpatch/*.log
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
		result $stage FAIL "$name" "${sum:-checkpatch failed (rc=$rc)}, log: $lf"
	fi
}

n=0
while IFS= read -r p; do
	if [[ ! -f $REPO/patches/$p ]]; then
		result $stage FAIL "checkpatch: ${p%.patch}" "listed in patches/series but missing"; continue
	fi
	check_one "checkpatch: ${p%.patch}" "${p%.patch}" "$REPO/patches/$p"; n=$((n + 1))
done < <(series_patches)
((n)) || result $stage SKIP checkpatch "no patches"
! grep -q '^FAIL' "$RESULTS/$stage.txt"
