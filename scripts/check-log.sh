#!/bin/bash
# Check a QEMU serial log: per-test results (TAP cases for kvmi_test, exit code
# for the others), boot/final markers, kernel splats and kmemleak.
# Usage: check-log.sh SERIAL_LOG "TESTS" [STAGE [PREFIX]]
#   writes $OUT/results/STAGE.txt (default runtime); every case name starts
#   with PREFIX (e.g. "svm: " for QEMU, "vmx: " for Bochs) so that the
#   stages stay apart in the summary.
#   KVMI_DEBUG_EXPECT    debug features the booted kernel must show
#                        (default "KASAN lockdep kmemleak"); without kmemleak
#                        the kmemleak case is not reported
#   KVMI_INITRD_MISSING  list of test binaries missing from the initramfs
#                        (default out/initrd.missing)
#   KVMI_SPLAT_IGNORE    extended regex of known emulator splats: a
#                        "cut here" ... "end trace" block with a matching line
#                        is left out of the kernel-splats check (and listed)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

logf=${1:?usage: check-log.sh LOG TESTS [STAGE [PREFIX]]}
TESTS=${2:?usage: check-log.sh LOG TESTS [STAGE [PREFIX]]}
stage=${3:-runtime}
prefix=${4:-}
expect=" ${KVMI_DEBUG_EXPECT:-KASAN lockdep kmemleak} "
missingf=${KVMI_INITRD_MISSING:-$OUT/initrd.missing}
TAP_TESTS=" kvmi_test kvmi_fuzz "     # tests whose every TAP "ok N" line is one case
reset_results $stage
res() { result "$stage" "$1" "$prefix$2" "${3:-}"; }
clean=$(mktemp); tmpfiles=("$clean"); trap 'rm -f "${tmpfiles[@]}"' EXIT
tr -d '\r' <"$logf" >"$clean"

# Boot and completion markers.
if grep -q '^KVMI-BOOT-OK' "$clean"; then res PASS boot
else res FAIL boot "no KVMI-BOOT-OK marker: kernel or /init did not come up"; fi
done_ok=1
grep -q '^KVMI-ALL-DONE' "$clean" || done_ok=0

for t in $TESTS; do
	if grep -qx "$t" "$missingf" 2>/dev/null; then
		res FAIL "$t" "test binary missing (not provided by the series or failed to build)"; continue
	fi
	if ! grep -qx "KVMI-TEST-BEGIN $t" "$clean"; then
		res FAIL "$t" "never started"; continue
	fi
	end=$(sed -n "s/^KVMI-TEST-END $t rc=\([0-9]*\)$/\1/p" "$clean" | tail -1)
	# TAP lines of this test (our /init prefixes them with "[name] ").
	tap=$(sed -n "s/^\[$t\] //p" "$clean")
	plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\).*/\1/p' <<<"$tap" | head -1)
	nres=$(grep -cE '^(not )?ok [0-9]+' <<<"$tap" || true)

	if [[ $TAP_TESTS == *" ${t%%:*} "* ]]; then
		# One case per "ok N" / "not ok N" line.
		while IFS= read -r line; do
			[[ -n $line ]] || continue
			if [[ $line =~ ^(not\ )?ok\ ([0-9]+)\ *(.*)$ ]]; then
				desc=${BASH_REMATCH[3]} num=${BASH_REMATCH[2]}
				name="$t: $num ${desc%%#*}"; name=${name%% }
				if [[ -n ${BASH_REMATCH[1]} ]]; then res FAIL "$name"
				elif [[ $desc =~ \#\ *[Ss][Kk][Ii][Pp]\ *(.*)$ ]]; then res SKIP "$name" "${BASH_REMATCH[1]:-skipped}"
				else res PASS "$name"; fi
			fi
		done < <(grep -E '^(not )?ok [0-9]+' <<<"$tap" || true)
		if [[ -z $end ]]; then res FAIL "$t" "no end marker: crashed, hung or timed out"
		elif [[ -z $plan ]]; then res FAIL "$t" "no TAP plan (rc=$end)"
		elif ((nres < plan)); then res FAIL "$t" "TAP plan 1..$plan but only $nres results (rc=$end)"
		elif [[ $end != 0 && $end != 4 ]] && ! grep -q '^not ok' <<<"$tap"; then
			res FAIL "$t" "exit code $end without a failed case"
		fi
	else
		# One case by exit code (0 pass, 4 = kselftest skip).
		if [[ -z $end ]]; then res FAIL "$t" "no end marker: crashed, hung or timed out"
		elif [[ $end == 124 || $end == 143 ]]; then res FAIL "$t" "timed out"
		elif [[ -n $plan ]] && ((nres < plan)); then res FAIL "$t" "TAP plan 1..$plan but only $nres results (rc=$end)"
		elif [[ $end == 0 ]]; then res PASS "$t"
		elif [[ $end == 4 ]]; then res SKIP "$t" "$(grep -m1 -iE 'skip' <<<"$tap" | cut -c1-100)"
		else res FAIL "$t" "exit code $end"; fi
	fi
done

if ((done_ok)); then res PASS complete
else res FAIL complete "no KVMI-ALL-DONE marker: the run did not finish (panic, hang or QEMU timeout)"; fi

# The debug features really are active in the booted kernel.
nodebug=()
[[ $expect != *" KASAN "* ]] || grep -q 'KernelAddressSanitizer initialized' "$clean" || nodebug+=(KASAN)
[[ $expect != *" lockdep "* ]] || grep -q 'Lock dependency validator' "$clean" || nodebug+=(lockdep)
[[ $expect != *" kmemleak "* ]] || grep -q 'kmemleak: Kernel memory leak detector initialized' "$clean" || nodebug+=(kmemleak)
if ((${#nodebug[@]} == 0)); then res PASS debug-kernel
else res FAIL debug-kernel "not active in the booted kernel: ${nodebug[*]}"; fi

# Kernel splats anywhere in the log, except test output lines ("[name] ...").
splat_re='BUG:|WARNING:|KASAN|UBSAN|possible recursive locking|circular locking|inconsistent lock state|suspicious RCU usage|lockdep|DEBUG_LOCKS_WARN_ON|bad unlock balance|INFO: task .* blocked|Oops|general protection fault|Call Trace|kernel BUG|Kernel panic|soft lockup|hard LOCKUP|rcu_preempt detected stalls|RCU stall'
benign_re='Lock dependency validator|MAX_LOCKDEP|RCU lockdep checking is enabled|KernelAddressSanitizer initialized'
# The stack dumps that fault injection prints on purpose (kvmi_fuzz's
# fault_sweep sets verbose=2 to learn each fault's allocation site): their
# "Call Trace:", <TASK> and frame lines are blanked; any other line in them
# is still checked.
fi_dump=$(mktemp); tmpfiles+=("$fi_dump")
awk '
	/FAULT_INJECTION: forcing a failure/ { infi = 1; print; next }
	infi && /^ *(Call Trace:|<TASK>|<\/TASK>|(\? )?[A-Za-z0-9_.]+\+0x[0-9a-f]+\/0x[0-9a-f]+( \[[A-Za-z0-9_]+\])?)$/ {
		if ($0 ~ /<\/TASK>/) infi = 0
		print ""; next
	}
	{ print }' "$clean" >"$fi_dump"
clean=$fi_dump
splatf=$clean
if [[ -n ${KVMI_SPLAT_IGNORE:-} ]]; then
	# Blank out (keeping line numbers) whole WARN blocks caused by the emulator.
	splatf=$(mktemp); tmpfiles+=("$splatf")
	awk '
		BEGIN { re = ENVIRON["KVMI_SPLAT_IGNORE"] }
		function flush(keep,  i) {
			for (i = 1; i <= n; i++) print (keep ? buf[i] : "")
			if (!keep) print "note: known emulator splat ignored: " what > "/dev/stderr"
			n = 0; inblk = 0; hit = 0; what = ""
		}
		/-+\[ cut here \]-+/ { if (inblk) flush(!hit); inblk = 1 }
		inblk {
			buf[++n] = $0
			if ($0 ~ re) { hit = 1; if (what == "") what = $0 }
			if ($0 ~ /---\[ end trace/) flush(!hit)
			next
		}
		{ print }
		END { if (inblk) flush(!hit) }' "$clean" >"$splatf"
fi
splats=$(grep -nE "$splat_re" "$splatf" | grep -vE '^[0-9]+:\[[A-Za-z0-9_.-]+\] ' |
	 grep -vE "^[0-9]+:.*($benign_re)" || true)
if [[ -z $splats ]]; then res PASS kernel-splats
else
	echo "---- kernel splats (line:text) ----" >&2; head -60 <<<"$splats" >&2
	res FAIL kernel-splats "$(wc -l <<<"$splats") suspicious kernel log lines, see above and $logf"
fi

# kmemleak report between the markers must be empty.
if [[ $expect != *" kmemleak "* ]]; then
	: # this kernel flavor has no kmemleak
elif grep -q '^KVMI-KMEMLEAK-BEGIN' "$clean"; then
	leaks=$(sed -n '/^KVMI-KMEMLEAK-BEGIN/,/^KVMI-KMEMLEAK-END/p' "$clean" | grep -E 'unreferenced object' || true)
	if [[ -z $leaks ]] && ! grep -q 'kmemleak: Kernel memory leak detector disabled' "$clean"; then res PASS kmemleak
	elif [[ -z $leaks ]]; then res FAIL kmemleak "kmemleak got disabled during the run"
	else
		sed -n '/^KVMI-KMEMLEAK-BEGIN/,/^KVMI-KMEMLEAK-END/p' "$clean" | head -80 >&2
		res FAIL kmemleak "$(wc -l <<<"$leaks") unreferenced objects"
	fi
else
	res FAIL kmemleak "no kmemleak report (debugfs/kmemleak missing or run did not finish)"
fi
! grep -q '^FAIL' "$RESULTS/$stage.txt"
