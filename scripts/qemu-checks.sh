#!/bin/bash
# `make qemu-checks`: static checks of the QEMU series, one case per patch:
#   qemu: checkpatch: NNNN-*.patch   QEMU's scripts/checkpatch.pl is clean
#                                    (no ERROR, no WARNING)
#   qemu: build: NNNN-*.patch        the tree with the patches up to this one
#                                    builds (-Werror), in $KVMI_CACHE/qemu/checks
#   qemu: series-unchanged           make qemu-patches on a tree made from the
#                                    series writes the same files (stable output)
# Results: out/results/qemu-checks.txt; the last line is the summary.
#   KVMI_QEMU_CHECK_BUILD=0  skip the per-patch builds (checkpatch only)
set -euo pipefail
. "$(dirname "$0")/qemu-lib.sh"

qemu_deps
qemu_debsrc
ver=$(qemu_deb_version)
deb=$(qemu_deb_tree "$ver")
STAGE=qemu-checks
reset_results "$STAGE"
mkdir -p "$OUT/logs/qemu-checks" "$CACHE/tmp" "$QSTATE"
L=$OUT/logs/qemu-checks

mapfile -t patches < <(qemu_series)
((${#patches[@]})) || die "qemu/patches/series is empty"

for p in "${patches[@]}"; do
	if perl "$deb/scripts/checkpatch.pl" --no-color "$QPATCHES/$p" >"$L/checkpatch-${p%.patch}.log" 2>&1 &&
	   ! grep -qE '^(ERROR|WARNING):' "$L/checkpatch-${p%.patch}.log"; then
		result "$STAGE" PASS "qemu: checkpatch: $p"
	else
		grep -E -A3 '^(ERROR|WARNING):' "$L/checkpatch-${p%.patch}.log" | head -20 >&2 || true
		result "$STAGE" FAIL "qemu: checkpatch: $p"
	fi
done

# Stable output: the patches must come out of git am + format-patch as they are.
tmp=$(mktemp -d "$CACHE/tmp/qemu-roundtrip.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
rt=$tmp/repo
git init -q "$rt"
G=(git -C "$rt" -c user.name=kvmi -c user.email=kvmi@localhost)
touch "$rt/.keep"; "${G[@]}" add .keep; "${G[@]}" commit -q -m base
"${G[@]}" tag base
# Only the files the series touches are needed to apply it.
for f in $(cat "${patches[@]/#/$QPATCHES/}" | sed -n 's|^--- a/||p' | sort -u); do
	[[ -f $deb/$f ]] || continue	# created by an earlier patch
	mkdir -p "$rt/$(dirname "$f")"; cp "$deb/$f" "$rt/$f"
done
"${G[@]}" add -A; "${G[@]}" commit -q --amend -m base; "${G[@]}" tag -f base >/dev/null
ok=1
for p in "${patches[@]}"; do
	"${G[@]}" am -q --committer-date-is-author-date "$QPATCHES/$p" >>"$L/roundtrip.log" 2>&1 || { ok=; break; }
done
if [[ -n $ok ]]; then
	"${G[@]}" format-patch -q --zero-commit --no-signature --no-numbered --no-renames \
		--subject-prefix=PATCH -o "$tmp/out" base..HEAD >/dev/null
	sed -i -E '/^index [0-9a-f]{7,}\.\.[0-9a-f]{7,}( [0-7]{6})?$/d' "$tmp"/out/*.patch
	for p in "${patches[@]}"; do
		cmp -s "$tmp/out/$p" "$QPATCHES/$p" || { ok=; echo "differs after git am + format-patch: $p" >>"$L/roundtrip.log"; }
	done
fi
if [[ -n $ok ]]; then result "$STAGE" PASS "qemu: series-unchanged"
else cat "$L/roundtrip.log" >&2; result "$STAGE" FAIL "qemu: series-unchanged"; fi

if [[ ${KVMI_QEMU_CHECK_BUILD:-1} != 0 ]]; then
	CSRC=$QCACHE/checks/src CBUILD=$QCACHE/checks/build
	# A prefix that built once is not built again: its key hashes what the
	# build depends on (the Debian version, the configure options, the
	# device config, the harness) and patches 1..n.
	key=$({
		echo "deb $ver"; printf '%s\n' "${QEMU_CONFIGURE[@]}"
		cat "$QREPO/config/kvmi-devices.mak" "$REPO/scripts/qemu-lib.sh" "$REPO/scripts/qemu-checks.sh"
	} | sha256sum | cut -d' ' -f1)
	n=0
	for p in "${patches[@]}"; do
		n=$((n + 1))
		t0=$SECONDS
		key=$(printf '%s\n%s\n' "$key" "$(sha256sum <"$QPATCHES/$p")" | sha256sum | cut -d' ' -f1)
		if [[ -f $QSTATE/checks-pass-$key ]]; then
			result "$STAGE" PASS "qemu: build: $p"
			continue
		fi
		qemu_assemble "$deb" "$CSRC" "$n"
		if qemu_configure "$ver" "$CSRC" "$CBUILD" "$QSTATE/checks-configure.key" "$L/configure.log" &&
		   qemu_ninja "$CBUILD" "$L/build-${p%.patch}.log"; then
			touch "$QSTATE/checks-pass-$key"
			result "$STAGE" PASS "qemu: build: $p"
		else
			grep -E -A5 'error|warning' "$L/build-${p%.patch}.log" | head -30 >&2 || true
			result "$STAGE" FAIL "qemu: build: $p"
		fi
		log "qemu-checks: $p built in $((SECONDS - t0)) s"
	done
fi

pass=$(grep -c '^PASS' "$RESULTS/$STAGE.txt" || true)
fail=$(grep -c '^FAIL' "$RESULTS/$STAGE.txt" || true)
skip=$(grep -c '^SKIP' "$RESULTS/$STAGE.txt" || true)
echo "$pass passed, $fail failed, $skip skipped"
((fail == 0))
