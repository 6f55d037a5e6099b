// SPDX-License-Identifier: GPL-2.0
/*
 * KVM introspection: the VMX side.
 *
 * The interceptions that the tool asks for are ORed into what KVM needs
 * wherever vmx.c computes an intercept (the execution controls, the
 * guest-owned CR0/CR4 bits, the MSR bitmap);
 * vmx_update_introspection_intercepts() applies a change to the current
 * VMCS.  While the vCPU runs a nested guest, vmcs02 is left alone.
 */

#include <uapi/linux/kvmi.h>
#include "../x86.h"
#include "kvmi.h"
#include "vmx.h"
#include "x86_ops.h"

void vmx_kvmi_hardware_setup(void)
{
	kvm_caps.has_kvmi_descriptor_exits = cpu_has_secondary_exec_ctrls() &&
		(vmcs_config.cpu_based_2nd_exec_ctrl & SECONDARY_EXEC_DESC);
	kvm_caps.has_kvmi_singlestep =
		vmcs_config.cpu_based_exec_ctrl & CPU_BASED_MONITOR_TRAP_FLAG;
}

/* The primary execution controls that introspection adds. */
u32 vmx_kvmi_exec_control(struct kvm_vcpu *vcpu)
{
	u32 ctrl = 0;

	if (kvmi_cr_write_intercepted(vcpu, 3))
		ctrl |= CPU_BASED_CR3_LOAD_EXITING;
	if (kvmi_singlestep(vcpu))
		ctrl |= CPU_BASED_MONITOR_TRAP_FLAG;

	return ctrl;
}

/* The secondary execution controls that introspection adds. */
u32 vmx_kvmi_secondary_exec_control(struct kvm_vcpu *vcpu)
{
	return kvmi_descriptor_intercepted(vcpu) ? SECONDARY_EXEC_DESC : 0;
}

/* The controls that KVM itself sets, among those introspection uses. */
static u32 vmx_kvm_exec_control(struct kvm_vcpu *vcpu)
{
	if (!enable_ept || (!enable_unrestricted_guest && !is_paging(vcpu)))
		return CPU_BASED_CR3_LOAD_EXITING;

	return 0;
}

static u32 vmx_kvm_secondary_exec_control(struct kvm_vcpu *vcpu)
{
	if (vmx_umip_emulated() && kvm_is_cr4_bit_set(vcpu, X86_CR4_UMIP))
		return SECONDARY_EXEC_DESC;

	return 0;
}

/*
 * Take back (or give back) the CR0/CR4 bits that the guest owns.  The
 * guest's value of those bits is in the VMCS: read it while the old mask
 * is in force, and put it in the read shadow, which the guest reads for
 * every bit that KVM owns.
 */
static void vmx_kvmi_update_cr_masks(struct kvm_vcpu *vcpu)
{
	unsigned long cr0 = kvm_read_cr0(vcpu);
	unsigned long cr4 = kvm_read_cr4(vcpu);

	vcpu->arch.cr0_guest_owned_bits = vmx_l1_guest_owned_cr0_bits(vcpu);
	vmcs_writel(CR0_GUEST_HOST_MASK, ~vcpu->arch.cr0_guest_owned_bits);
	vmcs_writel(CR0_READ_SHADOW, cr0);

	set_cr4_guest_host_mask(to_vmx(vcpu));
	vmcs_writel(CR4_READ_SHADOW, cr4);
}

void vmx_update_introspection_intercepts(struct kvm_vcpu *vcpu)
{
	struct vcpu_vmx *vmx = to_vmx(vcpu);
	u32 mask, ctrl;

	if (is_guest_mode(vcpu))
		return;

	vmx_kvmi_update_cr_masks(vcpu);

	/*
	 * While CR3 loads exit, vmx_cache_reg() trusts vcpu->arch.cr3: bring
	 * it up to date before they start exiting.
	 */
	if (!kvm_register_is_available(vcpu, VCPU_EXREG_CR3))
		vmx_cache_reg(vcpu, VCPU_EXREG_CR3);

	mask = CPU_BASED_CR3_LOAD_EXITING | CPU_BASED_MONITOR_TRAP_FLAG;
	ctrl = vmx_kvmi_exec_control(vcpu) | vmx_kvm_exec_control(vcpu);
	exec_controls_set(vmx, (exec_controls_get(vmx) & ~mask) | ctrl);

	if (kvm_caps.has_kvmi_descriptor_exits) {
		mask = SECONDARY_EXEC_DESC;
		ctrl = vmx_kvmi_secondary_exec_control(vcpu) |
		       vmx_kvm_secondary_exec_control(vcpu);
		ctrl |= secondary_exec_controls_get(vmx) & ~mask;
		secondary_exec_controls_set(vmx, ctrl);
	}
}

/*
 * The instruction identity of a descriptor-table exit: bit 0 selects IDTR
 * (or TR), bit 1 the loads.
 */
#define VMX_DESC_INSN_IDENTITY(info)	(((info) >> 28) & 3)

int vmx_kvmi_descriptor_exit(struct kvm_vcpu *vcpu)
{
	u32 identity = VMX_DESC_INSN_IDENTITY(vmcs_read32(VMX_INSTRUCTION_INFO));
	bool gdtr_idtr = to_vmx(vcpu)->exit_reason.basic ==
			 EXIT_REASON_GDTR_IDTR;
	u8 descriptor;

	if (gdtr_idtr)
		descriptor = identity & 1 ? KVMI_DESC_IDTR : KVMI_DESC_GDTR;
	else
		descriptor = identity & 1 ? KVMI_DESC_TR : KVMI_DESC_LDTR;

	return kvmi_descriptor_exit(vcpu, descriptor, identity & 2);
}

/* The guest virtual address of the access, for KVMI_VCPU_EVENT_PF. */
void vmx_kvmi_ept_violation(struct kvm_vcpu *vcpu, gpa_t gpa,
			    unsigned long exit_qual)
{
	struct kvm_vcpu_arch_introspection *arch = &vcpu->arch.kvmi;

	arch->fault_gpa = gpa;
	arch->fault_gva_valid = exit_qual & EPT_VIOLATION_GVA_IS_VALID;
	if (arch->fault_gva_valid)
		arch->fault_gva = vmcs_readl(GUEST_LINEAR_ADDRESS);
}
