/* SPDX-License-Identifier: GPL-2.0 */
#ifndef __KVMI_HOST_H
#define __KVMI_HOST_H

/*
 * KVM introspection: the hooks that the rest of KVM calls.
 *
 * See Documentation/virt/kvm/kvmi.rst.
 */

#include <linux/compiler_types.h>
#include <linux/errno.h>

struct kvm;
struct kvm_vcpu;

#ifdef CONFIG_KVM_INTROSPECTION

int kvmi_init(void);
void kvmi_uninit(void);
void kvmi_create_vm(struct kvm *kvm);
void kvmi_destroy_vm(struct kvm *kvm);
int kvmi_check_extension(void);
long kvmi_vm_ioctl(struct kvm *kvm, unsigned int ioctl, void __user *argp);
int kvmi_handle_requests(struct kvm_vcpu *vcpu);

#else

static inline int kvmi_init(void) { return 0; }
static inline void kvmi_uninit(void) { }
static inline void kvmi_create_vm(struct kvm *kvm) { }
static inline void kvmi_destroy_vm(struct kvm *kvm) { }
static inline int kvmi_check_extension(void) { return 0; }
static inline long kvmi_vm_ioctl(struct kvm *kvm, unsigned int ioctl,
				 void __user *argp)
{
	return -ENOTTY;
}

static inline int kvmi_handle_requests(struct kvm_vcpu *vcpu) { return 1; }

#endif /* CONFIG_KVM_INTROSPECTION */

#endif /* __KVMI_HOST_H */
