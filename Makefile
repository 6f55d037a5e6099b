# KVMI build-and-test harness. See README.md.
#   make                 build everything, boot under QEMU: a Linux guest introspected by samples/kvmi; export out/series
#   make selftest-demo   the kvmi_test --demo (a tool and a tiny VM in one process)
#   make check           every test; last line "N passed, M failed, K skipped"
#   make runtime-vmx     only the Bochs (Intel VMX) stage (make kernel-vmx builds its kernel)
#   make tree            the series as a kernel git tree ($KVMI_CACHE/tree/<version>, branch kvmi)
#   make patches         write patches/ back from branch kvmi of that tree
#   make bisect          every prefix of the series must build (cached by content)
#   make e2e             only the end-to-end stage (QEMU -enable-kvm inside our kernel, samples/kvmi)
#   make demo            the end-to-end demo: what the introspection tool sees in a live guest
#   make fuzz            kvmi_fuzz campaign under QEMU TCG (SECONDS=N SEED=S), prints its figures
#   make bench           benchmark (non-debug kernel under QEMU TCG): out/bench/results.json, table, plots
# Knobs (environment or make VAR=...): KVMI_CACHE, TESTS, KVMI_QEMU_APPEND,
# KVMI_QEMU_TIMEOUT, KVMI_QEMU_MONITOR, KVMI_TEST_TIMEOUT, KVMI_JOBS, KVMI_CONFIG_LAX, KVMI_BOCHS,
# KVMI_BOCHS_TESTS, KVMI_BOCHS_KERNEL, KVMI_BOCHS_APPEND, KVMI_BOCHS_TIMEOUT,
# KVMI_BOCHS_TEST_TIMEOUT, FORCE (make tree / make patches), KVMI_BISECT_RECHECK.
# QEMU side (qemu/, see qemu/README.md):
#   make qemu            build the lean KVMI QEMU into out/qemu/ (only when the series changed)
#   make qemu-tree       git work tree of the QEMU series in $KVMI_CACHE/qemu/tree
#   make qemu-patches    write qemu/patches/ back from that tree
#   make qemu-checks     QEMU checkpatch + every patch builds on its own
#   make qemu-test       nested test: our kernel under TCG runs the KVMI QEMU with -enable-kvm
# Knobs: KVMI_QEMU_FORCE, KVMI_QEMU_CHECK_BUILD, KVMI_QEMU_TEST_KERNEL, KVMI_QEMU_TEST_TIMEOUT.

S := scripts
export KVMI_CACHE TESTS KVMI_QEMU_APPEND KVMI_QEMU_TIMEOUT KVMI_TEST_TIMEOUT KVMI_JOBS KVMI_CONFIG_LAX KVMI_SHOW \
	KVMI_BOCHS KVMI_BOCHS_TESTS KVMI_BOCHS_KERNEL KVMI_BOCHS_APPEND KVMI_BOCHS_TIMEOUT KVMI_BOCHS_TEST_TIMEOUT \
	KVMI_BISECT_RECHECK KVMI_QEMU_FORCE KVMI_QEMU_CHECK_BUILD KVMI_QEMU_TEST_KERNEL KVMI_QEMU_TEST_TIMEOUT \
	KVMI_E2E_TIMEOUT KVMI_E2E_OFF KVMI_E2E_QEMU KVMI_E2E_PATCHED KVMI_E2E_GUEST_KERNEL KVMI_E2E_SAMPLE \
	KVMI_E2E_L2_APPEND KVMI_E2E_INTROSPECTOR KVMI_E2E_MONITOR KVMI_QEMU_MONITOR KVMI_BENCH_RUNS KVMI_BENCH_MS KVMI_BENCH_PARTS KVMI_BENCH_BUILD KVMI_BENCH_KERNEL KVMI_BENCH_OUT
# FORCE is not exported (Kbuild has a target of that name): make tree FORCE=1
# passes it on the command line, which reaches the recipe's environment anyway.

.PHONY: all selftest-demo check bench fuzz deps assemble kernel kernel-vmx selftests initrd runtime runtime-vmx e2e demo checkpatch \
	compile-checks bisect export tree patches clean qemu qemu-tree qemu-patches qemu-checks qemu-test

all:
	@$(S)/main.sh

selftest-demo:
	@$(S)/selftest-demo.sh

check:
	@$(S)/check.sh

deps:
	@$(S)/deps.sh

assemble: deps
	@$(S)/assemble.sh

kernel: assemble
	@$(S)/build-kernel.sh runtime

# The lighter debug kernel of the Bochs stage (out/bzImage-bochs).
kernel-vmx: assemble
	@$(S)/build-kernel.sh bochs

selftests: kernel
	@$(S)/build-selftests.sh

initrd:
	@$(S)/mkinitrd.sh

# Only the QEMU stage: uses the existing out/bzImage and built selftests.
runtime:
	@$(S)/run-qemu.sh

# A long kvmi_fuzz campaign (protocol fuzzer, races, fault sweep) under QEMU
# TCG on the debug kernel: make fuzz SECONDS=N SEED=S (after make kernel and
# make selftests).  SECONDS is bash's own variable: pass it on by another name.
fuzz:
	@KVMI_FUZZ_SECONDS=$(or $(SECONDS),600) KVMI_FUZZ_SEED=$(or $(SEED),1) $(S)/fuzz.sh

# Only the Bochs (Intel VMX) stage: uses the existing out/bzImage-bochs
# (make kernel-vmx) and built selftests.
runtime-vmx:
	@$(S)/run-bochs.sh

# Only the end-to-end stage: our kernel (out/bzImage) under QEMU TCG runs
# QEMU -enable-kvm with a Linux guest, introspected by samples/kvmi.
e2e:
	@$(S)/run-e2e.sh

# The same boot, showing what the introspection tool printed.
demo:
	@KVMI_E2E_SHOW=1 KVMI_E2E_OFF=0 $(S)/run-e2e.sh

# The benchmark: builds the non-debug bench kernel and kvmi_bench, boots them
# under QEMU TCG, writes out/bench/ (results.json, ratios.png, p2-read.png).
# Not part of make check (which only builds kvmi_bench).
bench:
	@$(S)/bench.sh

checkpatch: assemble
	@$(S)/checkpatch.sh

compile-checks: assemble
	@$(S)/compile-checks.sh

# Every prefix 1..k of the series builds (modules, nokvmi, kvmi_test); cached by content.
bisect: deps
	@$(S)/bisect.sh

# The series as a git tree to work in: tag base + one commit per patch on branch kvmi.
# Refuses to drop work not written back (FORCE=1 discards it).
tree: deps
	@$(S)/tree.sh

# Write patches/ (and patches/series) back from branch kvmi of the tree.
patches:
	@$(S)/patches.sh

export: deps
	@$(S)/export-series.sh

# The QEMU side (qemu/README.md).
qemu:
	@$(S)/build-qemu.sh

qemu-tree:
	@$(S)/qemu-tree.sh

qemu-patches:
	@$(S)/qemu-patches.sh

qemu-checks:
	@$(S)/qemu-checks.sh

qemu-test: qemu
	@$(S)/run-qemu-kvmi.sh

# Removes out/ only; the cache ($(or $(KVMI_CACHE),/var/cache/kvmi)) is kept.
clean:
	rm -rf out
