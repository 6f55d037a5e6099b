// SPDX-License-Identifier: GPL-2.0-only
/*
 * bochs-if0-repro: the Bochs 2.7 defect behind the kvmi_test stalls of the
 * Bochs stage, with stock KVM selftest code only (no introspection).
 *
 * A guest spins in a PAUSE loop until the host writes a global; the host
 * thread first sleeps 100 ms, so on the one-CPU Bochs machine it needs a
 * host timer interrupt to take the CPU from the vCPU thread.  The vCPU
 * runs with external-interrupt exiting (KVM always sets it), so the
 * guest's RFLAGS.IF must not matter: with that control set, the SDM has
 * an external interrupt cause a VM exit whatever RFLAGS.IF is.
 *
 * The mode comes from the program name (argv[0]) or argv[1]:
 *   ...l1     L1 spins with IF=0 (passed in 1 of 2 runs here, stalled in
 *             the other)
 *   ...l2     L1 runs an L2 (VMX) that spins with IF=0: stalls for good
 *   ...l2sti  the same L2 spins with IF=1 (STI first): passes
 * Under Bochs (corei7_skylake_x, bochsrc "debug: action=ignore,
 * apic0=report") the LAPIC log of a stalled l2 run shows
 * "service_local_apic(): setting INTR=1 for vector 0xec" (the host's
 * timer) with no "acknowledge_int()" after it, then "triggered vector
 * 0xec not accepted" at every period: the interrupt stays pending while
 * the CPU runs the L2 loop (the debugger shows RIP in it, jiffies frozen,
 * no VM exit).  The same on the unpatched Debian 6.12.118 kernel (the
 * Bochs flavor's config without the series): it is not the series.
 *
 * Build (after scripts/build-selftests.sh; . scripts/lib.sh for $SRC, $BUILD):
 *   cd $SRC/tools/testing/selftests/kvm
 *   libs=$(find $BUILD/selftests/lib -name '*.o')
 *   gcc -D_GNU_SOURCE= -O2 -std=gnu99 -DCONFIG_64BIT -fno-stack-protector \
 *     -fno-builtin-memcmp -fno-builtin-memcpy -fno-builtin-memset \
 *     -fno-builtin-strnlen -I$SRC/tools/include -I$SRC/tools/arch/x86/include \
 *     -I$BUILD/runtime/usr/include -Iinclude -Iinclude/x86_64 -I.. -static \
 *     -pthread -no-pie $REPO/scripts/bochs-if0-repro.c $libs -ldl \
 *     -o $BUILD/selftests/x86_64/nested_spin_l2
 *   cp $BUILD/selftests/x86_64/nested_spin_l2{,sti}
 *   TESTS="nested_spin_l2sti nested_spin_l2" KVMI_BOCHS_TIMEOUT=600 make runtime-vmx
 */
#include <pthread.h>
#include <time.h>
#include "test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "vmx.h"

static uint64_t go;
static int mode_l2;
static uint64_t use_sti;
#define L2_STACK 256

static void spin(void)
{
	if (READ_ONCE(use_sti))
		asm volatile("sti" ::: "memory");
	while (!READ_ONCE(go))
		cpu_relax();
	asm volatile("cli" ::: "memory");
}

static void l2_code(void)
{
	GUEST_SYNC(2);
	spin();
	vmcall();
}

static void l1_code(struct vmx_pages *vmx, uint64_t l2)
{
	unsigned long l2_stack[L2_STACK];

	if (!l2) {
		GUEST_SYNC(2);
		spin();
		GUEST_DONE();
	}
	GUEST_ASSERT(prepare_for_vmx_operation(vmx));
	GUEST_ASSERT(load_vmcs(vmx));
	prepare_vmcs(vmx, l2_code, &l2_stack[L2_STACK]);
	GUEST_ASSERT(!vmlaunch());
	GUEST_ASSERT_EQ(vmreadz(VM_EXIT_REASON), EXIT_REASON_VMCALL);
	GUEST_DONE();
}

static struct kvm_vcpu *vcpu;
static volatile int synced, done;

static void *runner(void *arg)
{
	struct ucall uc;

	for (;;) {
		vcpu_run(vcpu);
		TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_IO);
		switch (get_ucall(vcpu, &uc)) {
		case UCALL_SYNC:
			synced = 1;
			break;
		case UCALL_DONE:
			done = 1;
			return NULL;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
		default:
			TEST_FAIL("unexpected ucall");
		}
	}
}

int main(int argc, char *argv[])
{
	vm_vaddr_t vmx_gva;
	struct kvm_vm *vm;
	pthread_t t;
	int i;

	mode_l2 = (argc > 1 && !strcmp(argv[1], "l2")) || strstr(argv[0], "l2");
	if (mode_l2)
		TEST_REQUIRE(kvm_cpu_has(X86_FEATURE_VMX));
	vm = vm_create_with_one_vcpu(&vcpu, l1_code);
	use_sti = !!strstr(argv[0], "sti");
	sync_global_to_guest(vm, use_sti);
	vcpu_alloc_vmx(vm, &vmx_gva);
	vcpu_args_set(vcpu, 2, vmx_gva, (uint64_t)mode_l2);
	pthread_create(&t, NULL, runner, NULL);
	while (!synced)
		usleep(1000);
	printf("%s spins (IF=%d); host sleeps 100 ms\n", mode_l2 ? "L2" : "L1", (int)use_sti);
	fflush(stdout);
	usleep(100 * 1000);
	printf("host writes go\n");
	fflush(stdout);
	WRITE_ONCE(*(uint64_t *)addr_gva2hva(vm, (vm_vaddr_t)&go), 1);
	for (i = 0; i < 30000 && !done; i++)
		usleep(1000);
	TEST_ASSERT(done, "no GUEST_DONE 30 s after the write");
	pthread_join(t, NULL);
	printf("PASS %s\n", mode_l2 ? "l2" : "l1");
	kvm_vm_free(vm);
	return 0;
}
