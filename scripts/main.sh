#!/bin/bash
# make: build everything, boot the debug kernel under QEMU, run the
# introspection demo (kvmi_test --demo), show its output, export the series.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

rc=0
"$REPO/scripts/deps.sh"
"$REPO/scripts/assemble.sh"
"$REPO/scripts/build-kernel.sh" runtime
"$REPO/scripts/build-selftests.sh" || rc=1
TESTS=${TESTS:-kvmi_demo} KVMI_SHOW=${KVMI_SHOW:-${TESTS:-kvmi_demo}} "$REPO/scripts/run-qemu.sh" || rc=1
"$REPO/scripts/export-series.sh" || rc=1
echo
echo "outputs: $OUT/bzImage $OUT/initrd.gz $OUT/series/ $OUT/logs/"
((rc == 0)) || echo "make: some steps failed (see above)" >&2
exit $rc
