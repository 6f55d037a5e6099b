/* SPDX-License-Identifier: GPL-2.0 */
#ifndef __KVM_X86_VMX_KVMI_H
#define __KVM_X86_VMX_KVMI_H

/*
 * KVM introspection: the VMX side of the interceptions that the
 * introspection tool turns on (see arch/x86/kvm/kvmi.c).
 */

#include <linux/kvm_host.h>
#include "../kvmi.h"

#ifdef CONFIG_KVM_INTROSPECTION

void vmx_kvmi_hardware_setup(void);
void vmx_update_introspection_intercepts(struct kvm_vcpu *vcpu);
u32 vmx_kvmi_exec_control(struct kvm_vcpu *vcpu);
u32 vmx_kvmi_secondary_exec_control(struct kvm_vcpu *vcpu);
int vmx_kvmi_descriptor_exit(struct kvm_vcpu *vcpu);
void vmx_kvmi_ept_violation(struct kvm_vcpu *vcpu, gpa_t gpa,
			    unsigned long exit_qual);

#else

static inline void vmx_kvmi_hardware_setup(void) { }
static inline void vmx_update_introspection_intercepts(struct kvm_vcpu *vcpu) { }

static inline u32 vmx_kvmi_exec_control(struct kvm_vcpu *vcpu)
{
	return 0;
}

static inline u32 vmx_kvmi_secondary_exec_control(struct kvm_vcpu *vcpu)
{
	return 0;
}

static inline int vmx_kvmi_descriptor_exit(struct kvm_vcpu *vcpu)
{
	return 1;
}

static inline void vmx_kvmi_ept_violation(struct kvm_vcpu *vcpu, gpa_t gpa,
					  unsigned long exit_qual) { }

#endif /* CONFIG_KVM_INTROSPECTION */

#endif /* __KVM_X86_VMX_KVMI_H */
