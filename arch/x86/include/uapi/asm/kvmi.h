/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
#ifndef _UAPI_ASM_X86_KVMI_H
#define _UAPI_ASM_X86_KVMI_H

/*
 * The x86 part of the KVM introspection interface.
 *
 * See Documentation/virt/kvm/kvmi.rst.
 */

#include <linux/types.h>
#include <asm/kvm.h>

/**
 * struct kvmi_features - The optional features of the host, as reported
 *	by ``KVMI_GET_VERSION``.
 * @singlestep: 1 if ``KVMI_VCPU_CONTROL_SINGLESTEP`` is supported.
 * @padding: Zero.
 */
struct kvmi_features {
	__u8 singlestep;
	__u8 padding[7];
};

#endif /* _UAPI_ASM_X86_KVMI_H */
