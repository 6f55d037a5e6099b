/* SPDX-License-Identifier: GPL-2.0 */
#ifndef __KVM_X86_SVM_KVMI_H
#define __KVM_X86_SVM_KVMI_H

/*
 * KVM introspection: the SVM side of the interceptions that the
 * introspection tool turns on (see arch/x86/kvm/kvmi.c).
 */

#include <linux/kvm_host.h>
#include "../kvmi.h"

#ifdef CONFIG_KVM_INTROSPECTION

void svm_kvmi_hardware_setup(void);
void svm_update_introspection_intercepts(struct kvm_vcpu *vcpu);
void svm_kvmi_init_vmcb(struct kvm_vcpu *vcpu);
unsigned long svm_kvmi_get_rflags(struct kvm_vcpu *vcpu, unsigned long rflags);
unsigned long svm_kvmi_set_rflags(struct kvm_vcpu *vcpu, unsigned long rflags);
void svm_kvmi_prepare_run(struct kvm_vcpu *vcpu);
bool svm_kvmi_step_trap(struct kvm_vcpu *vcpu);
int svm_kvmi_descriptor_exit(struct kvm_vcpu *vcpu);

#else

static inline void svm_kvmi_hardware_setup(void) { }
static inline void svm_update_introspection_intercepts(struct kvm_vcpu *vcpu) { }
static inline void svm_kvmi_init_vmcb(struct kvm_vcpu *vcpu) { }

static inline unsigned long svm_kvmi_get_rflags(struct kvm_vcpu *vcpu,
						unsigned long rflags)
{
	return rflags;
}

static inline unsigned long svm_kvmi_set_rflags(struct kvm_vcpu *vcpu,
						unsigned long rflags)
{
	return rflags;
}

static inline void svm_kvmi_prepare_run(struct kvm_vcpu *vcpu) { }

static inline bool svm_kvmi_step_trap(struct kvm_vcpu *vcpu)
{
	return false;
}

static inline int svm_kvmi_descriptor_exit(struct kvm_vcpu *vcpu)
{
	return 1;
}

#endif /* CONFIG_KVM_INTROSPECTION */

#endif /* __KVM_X86_SVM_KVMI_H */
