/* SPDX-License-Identifier: GPL-2.0 */
#ifndef ARCH_X86_KVM_KVMI_H
#define ARCH_X86_KVM_KVMI_H

/*
 * KVM introspection: the hooks of the x86 and vendor code.
 *
 * The inline helpers answer "does introspection want this?" at no cost
 * when it does not; the out-of-line functions send the events.
 */

#include <linux/kvm_host.h>
#include <linux/kvmi_host.h>
#include <uapi/linux/kvm_para.h>
#include "kvm_cache_regs.h"

#ifdef CONFIG_KVM_INTROSPECTION

/*
 * Introspection gets the #BP exits that it asked for, unless userspace
 * debugs the guest with software breakpoints: userspace wins.
 */
static inline bool kvmi_bp_intercepted(struct kvm_vcpu *vcpu)
{
	return vcpu->arch.kvmi.bp_intercepted &&
	       !(vcpu->guest_debug & KVM_GUESTDBG_USE_SW_BP);
}

/* The agent hypercall bypasses the Xen and Hyper-V hypercall handlers. */
static inline bool kvmi_is_agent_hypercall(struct kvm_vcpu *vcpu)
{
	return (u32)kvm_rax_read(vcpu) == KVM_HC_XEN_HVM_OP;
}

/* Every guest write to CR@cr must exit (bits owned by the guest too). */
static inline bool kvmi_cr_write_intercepted(struct kvm_vcpu *vcpu, int cr)
{
	return vcpu->arch.kvmi.cr_intercepted & BIT(cr);
}

static inline bool kvmi_msr_write_intercepted(struct kvm_vcpu *vcpu, u32 msr)
{
	struct kvm_vcpu_arch_introspection *arch = &vcpu->arch.kvmi;

	if (msr < KVMI_NUM_MSRS)
		return test_bit(msr, arch->msrw_low);
	if (msr - KVMI_MSR_HIGH_BASE < KVMI_NUM_MSRS)
		return test_bit(msr - KVMI_MSR_HIGH_BASE, arch->msrw_high);
	return false;
}

static inline bool kvmi_descriptor_intercepted(struct kvm_vcpu *vcpu)
{
	return vcpu->arch.kvmi.descriptor_intercepted;
}

/* While single-stepping, KVM injects no interrupt and no NMI. */
static inline bool kvmi_singlestep(struct kvm_vcpu *vcpu)
{
	return vcpu->arch.kvmi.singlestep;
}

bool kvmi_cr_event(struct kvm_vcpu *vcpu, int cr, unsigned long old_value,
		   unsigned long *new_value);
bool kvmi_msr_event(struct kvm_vcpu *vcpu, u32 msr, u64 *data);
void kvmi_xsetbv_event(struct kvm_vcpu *vcpu, u64 old_xcr0);
int kvmi_breakpoint_exit(struct kvm_vcpu *vcpu, u8 insn_len);
int kvmi_descriptor_exit(struct kvm_vcpu *vcpu, u8 descriptor, bool write);
bool kvmi_event_goes_on(struct kvm_vcpu *vcpu, u16 event_id, const void *e,
			size_t size);
int kvmi_singlestep_exit(struct kvm_vcpu *vcpu);
int kvmi_agent_hypercall(struct kvm_vcpu *vcpu);
void kvmi_arch_memslot_created(struct kvm *kvm, struct kvm_memory_slot *slot);

/*
 * KVM itself completed a guest instruction (it emulated or skipped it):
 * while single-stepping, that is a step, reported before the next entry.
 */
static inline void kvmi_instruction_done(struct kvm_vcpu *vcpu)
{
	if (kvmi_singlestep(vcpu)) {
		vcpu->arch.kvmi.step_done = true;
		kvm_make_request(KVM_REQ_INTROSPECTION, vcpu);
	}
}

/**
 * kvmi_cr_write() - A guest write to a control register.
 * @vcpu: The vCPU.
 * @cr: 0, 3 or 4.
 * @old_value: The value of the register.
 * @new_value: The value that the guest writes; the tool may change it.
 *
 * Return: false when the write must not be performed.
 */
static inline bool kvmi_cr_write(struct kvm_vcpu *vcpu, int cr,
				 unsigned long old_value,
				 unsigned long *new_value)
{
	if (!kvmi_cr_write_intercepted(vcpu, cr) || *new_value == old_value)
		return true;

	return kvmi_cr_event(vcpu, cr, old_value, new_value);
}

/**
 * kvmi_msr_write() - A guest write to an MSR.
 * @vcpu: The vCPU.
 * @msr: The MSR.
 * @data: The value that the guest writes; the tool may change it.
 *
 * Return: false when the write must not be performed.
 */
static inline bool kvmi_msr_write(struct kvm_vcpu *vcpu, u32 msr, u64 *data)
{
	if (!kvmi_msr_write_intercepted(vcpu, msr))
		return true;

	return kvmi_msr_event(vcpu, msr, data);
}

#else

static inline bool kvmi_bp_intercepted(struct kvm_vcpu *vcpu)
{
	return false;
}

static inline bool kvmi_is_agent_hypercall(struct kvm_vcpu *vcpu)
{
	return false;
}

static inline bool kvmi_cr_write_intercepted(struct kvm_vcpu *vcpu, int cr)
{
	return false;
}

static inline bool kvmi_msr_write_intercepted(struct kvm_vcpu *vcpu, u32 msr)
{
	return false;
}

static inline bool kvmi_descriptor_intercepted(struct kvm_vcpu *vcpu)
{
	return false;
}

static inline bool kvmi_singlestep(struct kvm_vcpu *vcpu)
{
	return false;
}

static inline bool kvmi_cr_write(struct kvm_vcpu *vcpu, int cr,
				 unsigned long old_value,
				 unsigned long *new_value)
{
	return true;
}

static inline bool kvmi_msr_write(struct kvm_vcpu *vcpu, u32 msr, u64 *data)
{
	return true;
}

static inline void kvmi_xsetbv_event(struct kvm_vcpu *vcpu, u64 old_xcr0) { }

static inline int kvmi_breakpoint_exit(struct kvm_vcpu *vcpu, u8 insn_len)
{
	return 1;
}

static inline int kvmi_descriptor_exit(struct kvm_vcpu *vcpu, u8 descriptor,
				       bool write)
{
	return 1;
}

static inline int kvmi_singlestep_exit(struct kvm_vcpu *vcpu)
{
	return 1;
}

static inline void kvmi_instruction_done(struct kvm_vcpu *vcpu) { }

static inline int kvmi_agent_hypercall(struct kvm_vcpu *vcpu)
{
	return 1;
}

static inline void kvmi_arch_memslot_created(struct kvm *kvm,
					     struct kvm_memory_slot *slot) { }

#endif /* CONFIG_KVM_INTROSPECTION */

#endif /* ARCH_X86_KVM_KVMI_H */
