/* SPDX-License-Identifier: GPL-2.0 */
#ifndef __KVM_X86_MMU_KVMI_ACCESS_H
#define __KVM_X86_MMU_KVMI_ACCESS_H

/*
 * KVM introspection: the hooks of the MMU for the guest page access
 * restrictions (see kvmi_access.c).  Include it after mmu_internal.h.
 */

#include <linux/kvm_host.h>

struct kvm_page_fault;

#ifdef CONFIG_KVM_INTROSPECTION

unsigned int kvmi_spte_access(struct kvm *kvm, gfn_t gfn,
			      unsigned int pte_access);
bool kvmi_prefetch_allowed(struct kvm *kvm, gfn_t gfn);
int kvmi_page_fault(struct kvm_vcpu *vcpu, struct kvm_page_fault *fault);

#else

static inline unsigned int kvmi_spte_access(struct kvm *kvm, gfn_t gfn,
					    unsigned int pte_access)
{
	return pte_access;
}

static inline bool kvmi_prefetch_allowed(struct kvm *kvm, gfn_t gfn)
{
	return true;
}

static inline int kvmi_page_fault(struct kvm_vcpu *vcpu,
				  struct kvm_page_fault *fault)
{
	return RET_PF_CONTINUE;
}

#endif /* CONFIG_KVM_INTROSPECTION */

#endif /* __KVM_X86_MMU_KVMI_ACCESS_H */
