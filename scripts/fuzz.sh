#!/bin/bash
# make fuzz SECONDS=N SEED=S: a long kvmi_fuzz campaign under QEMU TCG on the
# debug kernel (out/bzImage, built selftests): the protocol fuzzer for N
# seconds (or KVMI_FUZZ_MESSAGES messages), then the races
# (KVMI_FUZZ_ITERATIONS iterations each) and the fault sweep. Prints the
# figures; the cases, splats and kmemleak are checked as in make runtime
# (stage "fuzz", serial log out/logs/qemu-serial-fuzz.log).
#   KVMI_FUZZ_SECONDS (make: SECONDS, default 600), KVMI_FUZZ_SEED (SEED, 1),
#   KVMI_FUZZ_MESSAGES (0: no bound), KVMI_FUZZ_ITERATIONS (500),
#   KVMI_FUZZ_CASES (default: all of them)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

secs=${KVMI_FUZZ_SECONDS:-600} seed=${KVMI_FUZZ_SEED:-1}
msgs=${KVMI_FUZZ_MESSAGES:-0} iters=${KVMI_FUZZ_ITERATIONS:-500}
cases=${KVMI_FUZZ_CASES:-fuzz race_unhook race_close race_rehook race_vcpus race_destroy fault_sweep}
args="--seed=$seed,--seconds=$secs,--messages=$msgs,--iterations=$iters"
export TESTS="kvmi_fuzz:$args,${cases// /,}"
# The per-test limit bounds the fuzzer and every other case (--seconds each).
ncases=$(wc -w <<<"$cases")
export KVMI_TEST_TIMEOUT=$(( (secs + 900) * ncases ))
export KVMI_QEMU_TIMEOUT=$(( KVMI_TEST_TIMEOUT + 600 ))
export KVMI_QEMU_STAGE=runtime-fuzz KVMI_QEMU_PREFIX="fuzz: "
start=$(date +%s)
rc=0
"$REPO/scripts/run-qemu.sh" || rc=$?
serial=$OUT/logs/qemu-serial-fuzz.log
echo "---------------- kvmi_fuzz figures (seed $seed) ----------------"
tr -d '\r' <"$serial" | sed -n "s/^\[kvmi_fuzz:[^]]*\] //p" |
	grep -E '^# (fuzz|race_|fault_sweep)|^(not )?ok |seed .* step' || true
echo "wall time: $(( $(date +%s) - start )) s (boot and checks included)"
exit $rc
