#!/bin/bash
# make selftest-demo: boot the debug kernel under QEMU TCG and run
# kvmi_test --demo (the tool and a tiny VM in one process), show its output.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

"$REPO/scripts/deps.sh"
"$REPO/scripts/assemble.sh"
"$REPO/scripts/build-kernel.sh" runtime
"$REPO/scripts/build-selftests.sh"
TESTS=${TESTS:-kvmi_demo} KVMI_SHOW=${KVMI_SHOW:-${TESTS:-kvmi_demo}} "$REPO/scripts/run-qemu.sh"
