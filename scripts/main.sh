#!/bin/bash
# make: build everything (the debug kernel, the KVMI QEMU, the sample tool),
# boot the kernel under QEMU TCG and, inside it, run a Linux guest with the
# KVMI QEMU while samples/kvmi introspects it; print what the tool sees
# (the guest's banner, its syscall entry, the events, the unhook on stop).
# Then export the series. `make selftest-demo` runs the older demo
# (kvmi_test --demo: a tool and a tiny VM in one process).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

rc=0
"$REPO/scripts/deps.sh"
"$REPO/scripts/assemble.sh"
"$REPO/scripts/build-kernel.sh" runtime
"$REPO/scripts/build-qemu.sh"
KVMI_E2E_SHOW=1 KVMI_E2E_OFF=0 "$REPO/scripts/run-e2e.sh" || rc=1
"$REPO/scripts/export-series.sh" || rc=1
echo
echo "outputs: $OUT/bzImage $OUT/qemu/ $OUT/initrd-e2e.gz $OUT/series/ $OUT/logs/"
((rc == 0)) || echo "make: some steps failed (see above)" >&2
exit $rc
