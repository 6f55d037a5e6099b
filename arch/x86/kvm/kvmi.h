/* SPDX-License-Identifier: GPL-2.0 */
#ifndef ARCH_X86_KVM_KVMI_H
#define ARCH_X86_KVM_KVMI_H

/*
 * KVM introspection: the hooks of the x86 and vendor code.
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

int kvmi_breakpoint_exit(struct kvm_vcpu *vcpu, u8 insn_len);
int kvmi_agent_hypercall(struct kvm_vcpu *vcpu);

#else

static inline bool kvmi_bp_intercepted(struct kvm_vcpu *vcpu)
{
	return false;
}

static inline bool kvmi_is_agent_hypercall(struct kvm_vcpu *vcpu)
{
	return false;
}

static inline int kvmi_breakpoint_exit(struct kvm_vcpu *vcpu, u8 insn_len)
{
	return 1;
}

static inline int kvmi_agent_hypercall(struct kvm_vcpu *vcpu)
{
	return 1;
}

#endif /* CONFIG_KVM_INTROSPECTION */

#endif /* ARCH_X86_KVM_KVMI_H */
