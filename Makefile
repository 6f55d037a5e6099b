# KVMI build-and-test harness. See README.md.
#   make                 build, boot under QEMU, run the kvmi_test demo, export out/series
#   make check           every test; last line "N passed, M failed, K skipped"
# Knobs (environment or make VAR=...): KVMI_CACHE, TESTS, KVMI_QEMU_APPEND,
# KVMI_QEMU_TIMEOUT, KVMI_TEST_TIMEOUT, KVMI_JOBS, KVMI_CONFIG_LAX.

S := scripts
export KVMI_CACHE TESTS KVMI_QEMU_APPEND KVMI_QEMU_TIMEOUT KVMI_TEST_TIMEOUT KVMI_JOBS KVMI_CONFIG_LAX KVMI_SHOW

.PHONY: all check deps assemble kernel selftests initrd runtime checkpatch compile-checks export clean

all:
	@$(S)/main.sh

check:
	@$(S)/check.sh

deps:
	@$(S)/deps.sh

assemble: deps
	@$(S)/assemble.sh

kernel: assemble
	@$(S)/build-kernel.sh runtime

selftests: kernel
	@$(S)/build-selftests.sh

initrd:
	@$(S)/mkinitrd.sh

# Only the QEMU stage: uses the existing out/bzImage and built selftests.
runtime:
	@$(S)/run-qemu.sh

checkpatch: assemble
	@$(S)/checkpatch.sh

compile-checks: assemble
	@$(S)/compile-checks.sh

export: deps
	@$(S)/export-series.sh

# Removes out/ only; the cache ($(or $(KVMI_CACHE),/var/cache/kvmi)) is kept.
clean:
	rm -rf out
