/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _ASM_X86_KVMI_HOST_H
#define _ASM_X86_KVMI_HOST_H

#include <linux/bitmap.h>
#include <linux/types.h>
#include <linux/xarray.h>

/* The MSRs whose writes can be intercepted: two ranges of 0x2000. */
#define KVMI_NUM_MSRS		0x2000
#define KVMI_MSR_HIGH_BASE	0xc0000000

/**
 * struct kvmi_injection - An exception that the tool injects.
 * @pending: Set by KVMI_VCPU_INJECT_EXCEPTION, cleared once the
 *	KVMI_VCPU_EVENT_TRAP event that follows has been replied to.
 * @nr: The exception vector.
 * @error_code: The error code, for the exceptions that have one.
 * @address: The page-fault address, for a page fault.
 */
struct kvmi_injection {
	bool pending;
	u8 nr;
	u32 error_code;
	u64 address;
};

/**
 * struct kvm_vcpu_arch_introspection - The interceptions that
 *	introspection turned on for a vCPU.
 * @restore: Set by kvmi_unhook(): before it enters the guest again, the
 *	vCPU stops single-stepping and drops a pending injection.
 * @restore_interceptions: Set by kvmi_unhook() with @restore when the
 *	vCPU must also give the interceptions back to KVM.
 * @bp_intercepted: #BP exits.
 * @cr_intercepted: The control registers whose writes exit: bit N for
 *	CRN (N = 0, 3 or 4).
 * @descriptor_intercepted: Descriptor-table exits.
 * @singlestep: Single-stepping, with the monitor trap flag on VMX or with
 *	a borrowed RFLAGS.TF on SVM.
 * @step_done: KVM itself completed a guest instruction while
 *	single-stepping: the SINGLESTEP event goes out before the next entry.
 * @tf_borrowed: SVM runs the guest with RFLAGS.TF set for single-stepping.
 * @guest_tf: The guest's own RFLAGS.TF while SVM borrows the flag.
 * @step_lost: SVM let the guest run unstepped (an exception handler):
 *	the next SINGLESTEP event reports the step as cut short.
 * @exception: The exception that the tool injects.
 * @fault_gpa: The guest physical address of the last EPT violation.
 * @fault_gva: The guest virtual address of that access.
 * @fault_gva_valid: Whether the CPU reported @fault_gva.
 * @msrw_low: The intercepted MSR writes in 0-0x1fff.
 * @msrw_high: The intercepted MSR writes in 0xc0000000-0xc0001fff.
 *
 * The vCPU thread is the only one that changes them (the restore flags
 * are set by kvmi_unhook() and consumed by the vCPU thread), so they
 * outlive the introspection state of the vCPU until the vCPU has restored
 * them.
 */
struct kvm_vcpu_arch_introspection {
	bool restore;
	bool restore_interceptions;
	bool bp_intercepted;
	u8 cr_intercepted;
	bool descriptor_intercepted;
	bool singlestep;
	bool step_done;
	bool tf_borrowed;
	bool guest_tf;
	bool step_lost;
	struct kvmi_injection exception;
	u64 fault_gpa;
	u64 fault_gva;
	bool fault_gva_valid;
	DECLARE_BITMAP(msrw_low, KVMI_NUM_MSRS);
	DECLARE_BITMAP(msrw_high, KVMI_NUM_MSRS);
};

/**
 * struct kvm_arch_introspection - The introspection state of a VM.
 * @access: The guest page access restrictions: the accesses that each
 *	restricted gfn allows (see arch/x86/kvm/mmu/kvmi_access.c).
 */
struct kvm_arch_introspection {
	struct xarray access;
};

#endif /* _ASM_X86_KVMI_HOST_H */
