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

enum {
	KVM_HC_XEN_HVM_OP_GUEST_REQUEST_VM_EVENT = 24,
};

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

/**
 * struct kvmi_vcpu_get_info_reply - The reply to ``KVMI_VCPU_GET_INFO``.
 * @tsc_speed: The TSC frequency of the vCPU in Hz, or 0 if unknown.
 */
struct kvmi_vcpu_get_info_reply {
	__u64 tsc_speed;
};

/**
 * struct kvmi_vcpu_event_arch - The x86 state of a vCPU sent with every
 *	vCPU event.
 * @mode: 2, 4 or 8: the size in bytes of the code segment (16-bit, 32-bit
 *	or 64-bit mode).
 * @padding: Zero.
 * @regs: The general purpose registers, as with ``KVM_GET_REGS``.
 * @sregs: The special registers, as with ``KVM_GET_SREGS``.
 * @msrs: Some model-specific registers.
 * @msrs.sysenter_cs: ``MSR_IA32_SYSENTER_CS``.
 * @msrs.sysenter_esp: ``MSR_IA32_SYSENTER_ESP``.
 * @msrs.sysenter_eip: ``MSR_IA32_SYSENTER_EIP``.
 * @msrs.efer: ``MSR_EFER``.
 * @msrs.star: ``MSR_STAR``.
 * @msrs.lstar: ``MSR_LSTAR``.
 * @msrs.cstar: ``MSR_CSTAR``.
 * @msrs.pat: ``MSR_IA32_CR_PAT``.
 * @msrs.shadow_gs: ``MSR_KERNEL_GS_BASE``.
 */
struct kvmi_vcpu_event_arch {
	__u8 mode;
	__u8 padding[7];
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct {
		__u64 sysenter_cs;
		__u64 sysenter_esp;
		__u64 sysenter_eip;
		__u64 efer;
		__u64 star;
		__u64 lstar;
		__u64 cstar;
		__u64 pat;
		__u64 shadow_gs;
	} msrs;
};

/**
 * struct kvmi_vcpu_get_registers - The ``KVMI_VCPU_GET_REGISTERS`` request,
 *	after &struct kvmi_vcpu_hdr.
 * @nmsrs: The number of entries in @msrs_idx.
 * @padding1: Must be zero.
 * @padding2: Must be zero.
 * @msrs_idx: The MSRs to read.
 */
struct kvmi_vcpu_get_registers {
	__u16 nmsrs;
	__u16 padding1;
	__u32 padding2;
	__u32 msrs_idx[];
};

/**
 * struct kvmi_vcpu_get_registers_reply - The reply to
 *	``KVMI_VCPU_GET_REGISTERS``.
 * @mode: 2, 4 or 8, as in &struct kvmi_vcpu_event_arch.
 * @padding: Zero.
 * @regs: The general purpose registers.
 * @sregs: The special registers.
 * @msrs: The requested MSRs, in the order of the request.
 */
struct kvmi_vcpu_get_registers_reply {
	__u32 mode;
	__u32 padding;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_msrs msrs;
};

/**
 * struct kvmi_vcpu_get_cpuid - The ``KVMI_VCPU_GET_CPUID`` request, after
 *	&struct kvmi_vcpu_hdr.
 * @function: The CPUID leaf (EAX).
 * @index: The CPUID sub-leaf (ECX).
 */
struct kvmi_vcpu_get_cpuid {
	__u32 function;
	__u32 index;
};

/**
 * struct kvmi_vcpu_get_cpuid_reply - The reply to ``KVMI_VCPU_GET_CPUID``.
 * @eax: EAX.
 * @ebx: EBX.
 * @ecx: ECX.
 * @edx: EDX.
 */
struct kvmi_vcpu_get_cpuid_reply {
	__u32 eax;
	__u32 ebx;
	__u32 ecx;
	__u32 edx;
};

#endif /* _UAPI_ASM_X86_KVMI_H */
