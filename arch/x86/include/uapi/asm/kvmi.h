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

/**
 * struct kvmi_vcpu_control_cr - The ``KVMI_VCPU_CONTROL_CR`` request, after
 *	&struct kvmi_vcpu_hdr.
 * @cr: The control register: 0, 3 or 4.
 * @enable: 1 to intercept the writes to @cr, 0 to stop.
 * @padding1: Must be zero.
 * @padding2: Must be zero.
 */
struct kvmi_vcpu_control_cr {
	__u8 cr;
	__u8 enable;
	__u16 padding1;
	__u32 padding2;
};

/**
 * struct kvmi_vcpu_event_cr - The payload of ``KVMI_VCPU_EVENT_CR``.
 * @cr: The control register that the guest writes: 0, 3 or 4.
 * @padding: Zero.
 * @old_value: The value of @cr before the write.
 * @new_value: The value that the guest writes.
 */
struct kvmi_vcpu_event_cr {
	__u8 cr;
	__u8 padding[7];
	__u64 old_value;
	__u64 new_value;
};

/**
 * struct kvmi_vcpu_event_cr_reply - The reply to ``KVMI_VCPU_EVENT_CR``,
 *	after &struct kvmi_vcpu_event_reply.
 * @new_val: The value to write into the control register (@old_value
 *	blocks the write).
 */
struct kvmi_vcpu_event_cr_reply {
	__u64 new_val;
};

/**
 * struct kvmi_vcpu_event_trap - The payload of ``KVMI_VCPU_EVENT_TRAP``.
 * @nr: The vector of the exception that KVM delivers.
 * @padding1: Zero.
 * @padding2: Zero.
 * @error_code: Its error code, or 0 if the exception has none.
 * @address: The page-fault address (CR2) for a page fault, otherwise 0.
 */
struct kvmi_vcpu_event_trap {
	__u8 nr;
	__u8 padding1;
	__u16 padding2;
	__u32 error_code;
	__u64 address;
};

/**
 * struct kvmi_vcpu_inject_exception - The ``KVMI_VCPU_INJECT_EXCEPTION``
 *	request, after &struct kvmi_vcpu_hdr.
 * @nr: The exception vector, 0 to 31 but not 2 (NMI).
 * @padding1: Must be zero.
 * @padding2: Must be zero.
 * @error_code: The error code, used only by the exceptions that have one.
 * @address: The page-fault address (CR2), used only by a page fault.
 */
struct kvmi_vcpu_inject_exception {
	__u8 nr;
	__u8 padding1;
	__u16 padding2;
	__u32 error_code;
	__u64 address;
};

/**
 * struct kvmi_vcpu_event_xsetbv - The payload of ``KVMI_VCPU_EVENT_XSETBV``.
 * @xcr: The extended control register that the guest changed: 0.
 * @padding: Zero.
 * @old_value: Its value before the write.
 * @new_value: Its value after the write.
 */
struct kvmi_vcpu_event_xsetbv {
	__u8 xcr;
	__u8 padding[7];
	__u64 old_value;
	__u64 new_value;
};

/**
 * struct kvmi_vcpu_get_xcr - The ``KVMI_VCPU_GET_XCR`` request, after
 *	&struct kvmi_vcpu_hdr.
 * @xcr: The extended control register to read: 0.
 * @padding: Must be zero.
 */
struct kvmi_vcpu_get_xcr {
	__u8 xcr;
	__u8 padding[7];
};

/**
 * struct kvmi_vcpu_get_xcr_reply - The reply to ``KVMI_VCPU_GET_XCR``.
 * @value: The value of the register.
 */
struct kvmi_vcpu_get_xcr_reply {
	__u64 value;
};

/**
 * struct kvmi_vcpu_get_xsave_reply - The reply to ``KVMI_VCPU_GET_XSAVE``.
 * @region: The XSAVE area, laid out as &struct kvm_xsave.
 */
struct kvmi_vcpu_get_xsave_reply {
	__u32 region[1024];
};

/**
 * struct kvmi_vcpu_set_xsave - The ``KVMI_VCPU_SET_XSAVE`` request, after
 *	&struct kvmi_vcpu_hdr.
 * @region: The XSAVE area, laid out as &struct kvm_xsave.
 */
struct kvmi_vcpu_set_xsave {
	__u32 region[1024];
};

/**
 * struct kvmi_vcpu_get_mtrr_type - The ``KVMI_VCPU_GET_MTRR_TYPE`` request,
 *	after &struct kvmi_vcpu_hdr.
 * @gpa: The guest physical address.
 */
struct kvmi_vcpu_get_mtrr_type {
	__u64 gpa;
};

/**
 * struct kvmi_vcpu_get_mtrr_type_reply - The reply to
 *	``KVMI_VCPU_GET_MTRR_TYPE``.
 * @type: The memory type that the guest MTRRs give to @gpa
 *	(``MTRR_TYPE_*``).
 * @padding: Zero.
 */
struct kvmi_vcpu_get_mtrr_type_reply {
	__u8 type;
	__u8 padding[7];
};

enum {
	KVMI_DESC_IDTR = 1,
	KVMI_DESC_GDTR = 2,
	KVMI_DESC_LDTR = 3,
	KVMI_DESC_TR   = 4,
};

/**
 * struct kvmi_vcpu_event_descriptor - The payload of
 *	``KVMI_VCPU_EVENT_DESCRIPTOR``.
 * @descriptor: The descriptor-table register (``KVMI_DESC_*``).
 * @write: 1 for LIDT, LGDT, LLDT and LTR, 0 for SIDT, SGDT, SLDT and STR.
 * @padding: Zero.
 */
struct kvmi_vcpu_event_descriptor {
	__u8 descriptor;
	__u8 write;
	__u8 padding[6];
};

/**
 * struct kvmi_vcpu_control_msr - The ``KVMI_VCPU_CONTROL_MSR`` request,
 *	after &struct kvmi_vcpu_hdr.
 * @enable: 1 to intercept the writes to @msr, 0 to stop.
 * @padding1: Must be zero.
 * @padding2: Must be zero.
 * @msr: The MSR: 0 to 0x1fff or 0xc0000000 to 0xc0001fff.
 */
struct kvmi_vcpu_control_msr {
	__u8 enable;
	__u8 padding1;
	__u16 padding2;
	__u32 msr;
};

/**
 * struct kvmi_vcpu_event_msr - The payload of ``KVMI_VCPU_EVENT_MSR``.
 * @msr: The MSR that the guest writes.
 * @padding: Zero.
 * @old_value: The value of @msr before the write.
 * @new_value: The value that the guest writes.
 */
struct kvmi_vcpu_event_msr {
	__u32 msr;
	__u32 padding;
	__u64 old_value;
	__u64 new_value;
};

/**
 * struct kvmi_vcpu_event_msr_reply - The reply to ``KVMI_VCPU_EVENT_MSR``,
 *	after &struct kvmi_vcpu_event_reply.
 * @new_val: The value to write into the MSR (@old_value blocks the
 *	write).
 */
struct kvmi_vcpu_event_msr_reply {
	__u64 new_val;
};

#endif /* _UAPI_ASM_X86_KVMI_H */
