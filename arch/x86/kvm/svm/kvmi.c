// SPDX-License-Identifier: GPL-2.0
/*
 * KVM introspection: the SVM side.
 *
 * The interceptions that the tool asks for are ORed into what KVM needs
 * wherever svm.c computes an intercept (CR0 and CR3 writes, the MSR
 * permission map); svm_update_introspection_intercepts() applies a change
 * to the current VMCB.  While the vCPU runs a nested guest, vmcb02 is left
 * alone.
 *
 * Single-stepping
 * ---------------
 *
 * SVM has no monitor trap flag, so the vCPU runs with RFLAGS.TF set (the
 * TF is "borrowed") and #DB, which SVM always intercepts, ends each step.
 * The guest must not see the borrowed flag:
 *
 *  - RFLAGS as KVM reads it (registers, events, the emulator) carries the
 *    guest's own TF, kept in vcpu->arch.kvmi.guest_tf, and a write of
 *    RFLAGS by KVM (emulation, KVM_SET_REGS) sets it;
 *  - PUSHF and POPF exit and are emulated, so that the flags image on the
 *    stack holds the guest's TF and a TF loaded by POPF is the guest's;
 *  - an instruction that clears TF natively (IRET, SYSCALL with TF in
 *    its mask) clears the guest's TF: the step #DB finds TF clear;
 *  - the guest's own single-step #DB, and its breakpoints that hit
 *    during a step, are still delivered to it;
 *  - KVM injects no interrupt and no NMI while stepping (see
 *    kvm_check_and_inject_events()), and a VMRUN that injects an
 *    exception runs with the guest's TF, so that the exception frame
 *    holds the guest's TF.  The handler then runs without being stepped
 *    until the next VM exit, so the next SINGLESTEP event reports that
 *    the step was cut short.
 */

#include <uapi/linux/kvmi.h>
#include "../x86.h"
#include "kvmi.h"
#include "svm.h"

void svm_kvmi_hardware_setup(void)
{
	kvm_caps.has_kvmi_descriptor_exits = true;
	kvm_caps.has_kvmi_singlestep = true;
}

static const int svm_descriptor_intercepts[] = {
	INTERCEPT_STORE_IDTR, INTERCEPT_STORE_GDTR,
	INTERCEPT_STORE_LDTR, INTERCEPT_STORE_TR,
	INTERCEPT_LOAD_IDTR, INTERCEPT_LOAD_GDTR,
	INTERCEPT_LOAD_LDTR, INTERCEPT_LOAD_TR,
};

static void svm_kvmi_set_intercept(struct vcpu_svm *svm, int bit, bool set)
{
	if (set)
		svm_set_intercept(svm, bit);
	else
		svm_clr_intercept(svm, bit);
}

/* The intercepts of introspection, other than CR0 (see svm_set_cr0()). */
void svm_kvmi_init_vmcb(struct kvm_vcpu *vcpu)
{
	struct kvm_vcpu_arch_introspection *arch = &vcpu->arch.kvmi;
	struct vcpu_svm *svm = to_svm(vcpu);
	int i;

	svm_kvmi_set_intercept(svm, INTERCEPT_CR3_WRITE, !npt_enabled ||
			       kvmi_cr_write_intercepted(vcpu, 3));

	for (i = 0; i < ARRAY_SIZE(svm_descriptor_intercepts); i++)
		svm_kvmi_set_intercept(svm, svm_descriptor_intercepts[i],
				       kvmi_descriptor_intercepted(vcpu));

	svm_kvmi_set_intercept(svm, INTERCEPT_PUSHF, arch->tf_borrowed);
	svm_kvmi_set_intercept(svm, INTERCEPT_POPF, arch->tf_borrowed);
}

/* Borrow RFLAGS.TF, or give it back. */
static void svm_kvmi_update_singlestep(struct kvm_vcpu *vcpu)
{
	struct kvm_vcpu_arch_introspection *arch = &vcpu->arch.kvmi;
	struct vmcb *vmcb = to_svm(vcpu)->vmcb;
	unsigned long rflags = vmcb->save.rflags;

	if (arch->singlestep == arch->tf_borrowed)
		return;

	if (arch->singlestep) {
		arch->guest_tf = rflags & X86_EFLAGS_TF;
		arch->step_lost = false;
		rflags |= X86_EFLAGS_TF;
	} else {
		rflags &= ~X86_EFLAGS_TF;
		if (arch->guest_tf)
			rflags |= X86_EFLAGS_TF;
	}

	arch->tf_borrowed = arch->singlestep;
	vmcb->save.rflags = rflags;
}

void svm_update_introspection_intercepts(struct kvm_vcpu *vcpu)
{
	if (sev_es_guest(vcpu->kvm) || is_guest_mode(vcpu))
		return;

	/* svm_set_cr0() computes the CR0 intercepts. */
	svm_set_cr0(vcpu, kvm_read_cr0(vcpu));

	svm_kvmi_update_singlestep(vcpu);
	svm_kvmi_init_vmcb(vcpu);
}

/* RFLAGS as the guest sees it. */
unsigned long svm_kvmi_get_rflags(struct kvm_vcpu *vcpu, unsigned long rflags)
{
	struct kvm_vcpu_arch_introspection *arch = &vcpu->arch.kvmi;

	if (arch->tf_borrowed) {
		rflags &= ~X86_EFLAGS_TF;
		if (arch->guest_tf)
			rflags |= X86_EFLAGS_TF;
	}

	return rflags;
}

/* RFLAGS as the CPU gets it. */
unsigned long svm_kvmi_set_rflags(struct kvm_vcpu *vcpu, unsigned long rflags)
{
	struct kvm_vcpu_arch_introspection *arch = &vcpu->arch.kvmi;

	if (arch->tf_borrowed) {
		arch->guest_tf = rflags & X86_EFLAGS_TF;
		rflags |= X86_EFLAGS_TF;
	}

	return rflags;
}

/* Right before VMRUN: see the comment at the top of this file. */
void svm_kvmi_prepare_run(struct kvm_vcpu *vcpu)
{
	struct kvm_vcpu_arch_introspection *arch = &vcpu->arch.kvmi;
	struct vmcb *vmcb = to_svm(vcpu)->vmcb;

	if (!arch->tf_borrowed)
		return;

	if (vmcb->control.event_inj & SVM_EVTINJ_VALID) {
		vmcb->save.rflags = svm_kvmi_get_rflags(vcpu,
							vmcb->save.rflags);
		arch->step_lost = true;
	} else {
		vmcb->save.rflags |= X86_EFLAGS_TF;
	}
}

/**
 * svm_kvmi_step_trap() - Handle the #DB that ends a step.
 * @vcpu: The vCPU.
 *
 * Return: true if the #DB ends a step of introspection (the SINGLESTEP
 * event is to be sent), false if it is not introspection's.
 */
bool svm_kvmi_step_trap(struct kvm_vcpu *vcpu)
{
	struct kvm_vcpu_arch_introspection *arch = &vcpu->arch.kvmi;
	struct vmcb *vmcb = to_svm(vcpu)->vmcb;
	unsigned long payload;

	if (!arch->tf_borrowed || !(vmcb->save.dr6 & DR6_BS))
		return false;

	/* What the guest would have seen without the borrowed TF. */
	payload = (vmcb->save.dr6 ^ DR6_ACTIVE_LOW) & (DR6_BS | DR_TRAP_BITS);
	if (!arch->guest_tf)
		payload &= ~DR6_BS;
	if (payload)
		kvm_queue_exception_p(vcpu, DB_VECTOR, payload);

	/* The instruction cleared TF (IRET, SYSCALL, ...). */
	if (!(vmcb->save.rflags & X86_EFLAGS_TF))
		arch->guest_tf = false;

	vmcb->save.rflags |= X86_EFLAGS_TF;
	return true;
}

/* The exit codes of SIDT, SGDT, SLDT, STR, then LIDT, LGDT, LLDT, LTR. */
static const u8 svm_descriptors[] = {
	KVMI_DESC_IDTR, KVMI_DESC_GDTR, KVMI_DESC_LDTR, KVMI_DESC_TR,
};

int svm_kvmi_descriptor_exit(struct kvm_vcpu *vcpu)
{
	u32 n = to_svm(vcpu)->vmcb->control.exit_code - SVM_EXIT_IDTR_READ;

	BUILD_BUG_ON(SVM_EXIT_TR_WRITE - SVM_EXIT_IDTR_READ !=
		     2 * ARRAY_SIZE(svm_descriptors) - 1);

	return kvmi_descriptor_exit(vcpu, svm_descriptors[n % 4], n >= 4);
}
