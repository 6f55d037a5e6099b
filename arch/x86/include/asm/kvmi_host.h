/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _ASM_X86_KVMI_HOST_H
#define _ASM_X86_KVMI_HOST_H

/**
 * struct kvm_vcpu_arch_introspection - The interceptions that
 *	introspection turned on for a vCPU.
 * @bp_intercepted: #BP exits.
 *
 * The vCPU thread is the only one that changes them, so they outlive the
 * introspection state of the vCPU until the vCPU has restored them.
 */
struct kvm_vcpu_arch_introspection {
	bool bp_intercepted;
};

#endif /* _ASM_X86_KVMI_HOST_H */
