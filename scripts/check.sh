#!/bin/bash
# make check: every test of the series. Stages keep going after failures where
# that makes sense; the summary lists each case and ends with
# "N passed, M failed, K skipped". Exit status is non-zero on any failure.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start=$SECONDS
rm -rf "$RESULTS"; mkdir -p "$RESULTS" "$OUT/logs"
timing() { echo "$1 $(( SECONDS - $2 ))" >>"$OUT/logs/timings.txt"; }
: >"$OUT/logs/timings.txt"

"$REPO/scripts/deps.sh"

# 1. Assembly: a reject makes everything after it meaningless.
t=$SECONDS
if "$REPO/scripts/assemble.sh"; then
	result assemble PASS assemble
	timing assemble $t
	# 2. Static checks (failures do not stop the runtime stage): checkpatch per
	#    patch, the bisect check (every prefix builds), the compile checks of the
	#    final tree (in the bisect's O= dirs), the export and its git am check.
	t=$SECONDS; "$REPO/scripts/checkpatch.sh" || true; timing checkpatch $t
	t=$SECONDS; "$REPO/scripts/bisect.sh" || true; timing bisect $t
	t=$SECONDS; "$REPO/scripts/compile-checks.sh" || true; timing compile-checks $t
	t=$SECONDS
	if "$REPO/scripts/export-series.sh"; then
		"$REPO/scripts/check-export.sh" || true
	else
		result export FAIL "export: git am" "the export failed (see above)"
	fi
	timing export $t

	# 3. Runtime kernel + selftests, then QEMU (AMD SVM).
	t=$SECONDS
	if "$REPO/scripts/build-kernel.sh" runtime; then
		result build PASS "compile: runtime-kernel"; timing runtime-kernel $t
		t=$SECONDS
		if "$REPO/scripts/build-selftests.sh"; then
			result build PASS "build: selftests"
		else
			result build FAIL "build: selftests" "see $OUT/logs/build-selftests.log"
		fi
		timing selftests $t
		t=$SECONDS; "$REPO/scripts/run-qemu.sh" || true; timing qemu $t

		# 3b. kvmi_test again with shadow paging (NPT off), and with SVM
		#     single-step off, its default (the single-step cases check
		#     -KVM_EOPNOTSUPP, then skip).
		t=$SECONDS
		TESTS=kvmi_test KVMI_QEMU_APPEND="kvm_amd.npt=0 ${KVMI_QEMU_APPEND:-}" KVMI_QEMU_SINGLESTEP=0 \
			KVMI_QEMU_STAGE=runtime-shadow KVMI_QEMU_PREFIX="svm-shadow: " \
			"$REPO/scripts/run-qemu.sh" || true
		timing qemu-shadow $t

		# 3c. The QEMU side (qemu/): QEMU's checkpatch and every patch of its
		#     series builds, the KVMI QEMU itself, then the end-to-end stage:
		#     that QEMU, inside our kernel, runs a Linux guest that
		#     samples/kvmi introspects.
		t=$SECONDS; "$REPO/scripts/qemu-checks.sh" >/dev/null || true; timing qemu-checks $t
		t=$SECONDS
		if "$REPO/scripts/build-qemu.sh"; then
			result build PASS "compile: qemu"; timing qemu-build $t
			t=$SECONDS; "$REPO/scripts/run-e2e.sh" || true; timing e2e $t
		else
			result build FAIL "compile: qemu" "see $OUT/logs/qemu-build.log"
			result e2e FAIL "e2e: runtime" "not run: the KVMI QEMU did not build"
		fi

		# 4. Intel VMX stage under Bochs, with its own lighter debug kernel.
		if [[ ${KVMI_BOCHS:-1} == 1 ]]; then
			t=$SECONDS
			if "$REPO/scripts/build-kernel.sh" bochs; then
				result build PASS "compile: bochs-kernel"; timing bochs-kernel $t
				t=$SECONDS; "$REPO/scripts/run-bochs.sh" || true; timing bochs $t
			else
				result build FAIL "compile: bochs-kernel" "see $OUT/logs/build-bochs.log"
				result runtime-vmx FAIL "vmx: runtime" "not run: the Bochs kernel did not build"
			fi
		fi
	else
		result build FAIL "compile: runtime-kernel" "see $OUT/logs/build-runtime.log"
		result runtime FAIL "svm: runtime" "not run: the runtime kernel did not build"
		result e2e FAIL "e2e: runtime" "not run: the runtime kernel did not build"
		[[ ${KVMI_BOCHS:-1} != 1 ]] ||
			result runtime-vmx FAIL "vmx: runtime" "not run: the runtime kernel (selftest headers) did not build"
	fi
else
	result assemble FAIL assemble "the series does not apply (see above)"
fi
timing total $start

# Summary.
echo
echo "================ summary ================"
cat "$RESULTS"/{assemble,checkpatch,bisect,compile,export,build,runtime,runtime-shadow,qemu-checks,e2e,runtime-vmx}.txt 2>/dev/null || true
echo "timings (s): $(tr '\n' ' ' <"$OUT/logs/timings.txt")"
pass=$(cat "$RESULTS"/*.txt | grep -c '^PASS' || true)
fail=$(cat "$RESULTS"/*.txt | grep -c '^FAIL' || true)
skip=$(cat "$RESULTS"/*.txt | grep -c '^SKIP' || true)
echo "$pass passed, $fail failed, $skip skipped"
((fail == 0))
