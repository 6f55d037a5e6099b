// SPDX-License-Identifier: GPL-2.0
/*
 * KVM introspection: the x86 part.
 *
 * Everything here runs on the vCPU thread, except
 * kvmi_arch_init_features() and kvmi_arch_vcpu_alive().
 */

#include <linux/kvm_host.h>
#include <asm/kvm_para.h>
#include "cpuid.h"
#include "kvm_cache_regs.h"
#include "kvmi.h"
#include "x86.h"
#include "../../../virt/kvm/introspection/kvmi_int.h"

void kvmi_arch_init_features(struct kvmi_features *feat)
{
	/* Single-stepping is not implemented yet. */
	feat->singlestep = 0;
}

bool kvmi_arch_vcpu_alive(struct kvm_vcpu *vcpu)
{
	return READ_ONCE(vcpu->arch.mp_state) != KVM_MP_STATE_UNINITIALIZED;
}

/* The size of the code segment: 2, 4 or 8 bytes. */
static u8 kvmi_vcpu_mode(const struct kvm_sregs *sregs)
{
	if ((sregs->efer & EFER_LMA) && sregs->cs.l)
		return 8;

	return sregs->cs.db ? 4 : 2;
}

static u64 kvmi_get_msr(struct kvm_vcpu *vcpu, u32 index)
{
	u64 data;

	/* An MSR that the vCPU does not have reads as zero. */
	if (__kvm_get_msr(vcpu, index, &data, true))
		return 0;

	return data;
}

void kvmi_arch_setup_vcpu_event(struct kvm_vcpu *vcpu,
				struct kvmi_vcpu_event_arch *ev)
{
	__get_regs(vcpu, &ev->regs);
	__get_sregs(vcpu, &ev->sregs);
	ev->mode = kvmi_vcpu_mode(&ev->sregs);

	ev->msrs.sysenter_cs = kvmi_get_msr(vcpu, MSR_IA32_SYSENTER_CS);
	ev->msrs.sysenter_esp = kvmi_get_msr(vcpu, MSR_IA32_SYSENTER_ESP);
	ev->msrs.sysenter_eip = kvmi_get_msr(vcpu, MSR_IA32_SYSENTER_EIP);
	ev->msrs.efer = kvmi_get_msr(vcpu, MSR_EFER);
	ev->msrs.star = kvmi_get_msr(vcpu, MSR_STAR);
	ev->msrs.lstar = kvmi_get_msr(vcpu, MSR_LSTAR);
	ev->msrs.cstar = kvmi_get_msr(vcpu, MSR_CSTAR);
	ev->msrs.pat = kvmi_get_msr(vcpu, MSR_IA32_CR_PAT);
	ev->msrs.shadow_gs = kvmi_get_msr(vcpu, MSR_KERNEL_GS_BASE);
}

void kvmi_arch_set_regs(struct kvm_vcpu *vcpu, struct kvm_regs *regs)
{
	__set_regs(vcpu, regs);
}

int kvmi_arch_cmd_vcpu_get_info(struct kvm_vcpu *vcpu,
				struct kvmi_vcpu_get_info_reply *rpl)
{
	if (kvm_caps.has_tsc_control)
		rpl->tsc_speed = 1000ul * vcpu->arch.virtual_tsc_khz;

	return 0;
}

int kvmi_arch_cmd_vcpu_get_registers(struct kvm_vcpu *vcpu,
				     const struct kvmi_vcpu_get_registers *req,
				     struct kvmi_vcpu_get_registers_reply *rpl)
{
	struct kvm_msr_entry *entry = rpl->msrs.entries;
	unsigned int i;

	for (i = 0; i < req->nmsrs; i++, entry++) {
		entry->index = req->msrs_idx[i];
		if (__kvm_get_msr(vcpu, entry->index, &entry->data, true))
			return -KVM_EINVAL;
	}

	rpl->msrs.nmsrs = req->nmsrs;
	__get_regs(vcpu, &rpl->regs);
	__get_sregs(vcpu, &rpl->sregs);
	rpl->mode = kvmi_vcpu_mode(&rpl->sregs);

	return 0;
}

int kvmi_arch_cmd_vcpu_get_cpuid(struct kvm_vcpu *vcpu,
				 const struct kvmi_vcpu_get_cpuid *req,
				 struct kvmi_vcpu_get_cpuid_reply *rpl)
{
	struct kvm_cpuid_entry2 *e;

	e = kvm_find_cpuid_entry_index(vcpu, req->function, req->index);
	if (!e)
		return -KVM_ENOENT;

	rpl->eax = e->eax;
	rpl->ebx = e->ebx;
	rpl->ecx = e->ecx;
	rpl->edx = e->edx;

	return 0;
}

static void kvmi_control_bp_intercept(struct kvm_vcpu *vcpu, bool enable)
{
	vcpu->arch.kvmi.bp_intercepted = enable;
	kvm_x86_call(update_exception_bitmap)(vcpu);
}

/*
 * Userspace guest debugging wins over introspection: while it uses
 * software breakpoints, the #BP exits are its own.
 */
int kvmi_arch_control_event(struct kvm_vcpu *vcpu, u16 event_id, bool enable)
{
	if (event_id != KVMI_VCPU_EVENT_BREAKPOINT)
		return 0;

	if (enable && (vcpu->guest_debug & KVM_GUESTDBG_USE_SW_BP))
		return -KVM_EBUSY;

	kvmi_control_bp_intercept(vcpu, enable);

	return 0;
}

void kvmi_arch_restore_interception(struct kvm_vcpu *vcpu)
{
	if (vcpu->arch.kvmi.bp_intercepted)
		kvmi_control_bp_intercept(vcpu, false);
}

/**
 * kvmi_breakpoint_exit() - Handle a #BP exit that introspection asked for.
 * @vcpu: The vCPU.
 * @insn_len: The length of the breakpoint instruction.
 *
 * Return: 1 to re-enter the guest, 0 to return to userspace.
 */
int kvmi_breakpoint_exit(struct kvm_vcpu *vcpu, u8 insn_len)
{
	struct kvmi_vcpu_event_breakpoint e = {
		.gpa = kvm_mmu_gva_to_gpa_system(vcpu, kvm_get_linear_rip(vcpu),
						 NULL),
		.insn_len = insn_len,
	};
	int action;

	action = kvmi_send_vcpu_event(vcpu, KVMI_VCPU_EVENT_BREAKPOINT,
				      &e, sizeof(e),
				      BIT(KVMI_EVENT_ACTION_CONTINUE) |
				      BIT(KVMI_EVENT_ACTION_RETRY) |
				      BIT(KVMI_EVENT_ACTION_CRASH));
	switch (action) {
	case KVMI_EVENT_ACTION_RETRY:
		return 1;
	case KVMI_EVENT_ACTION_CRASH:
		kvmi_crash(vcpu);
		return 0;
	}

	/* CONTINUE, or no tool: the guest gets its #BP. */
	kvm_queue_exception(vcpu, BP_VECTOR);
	return 1;
}
EXPORT_SYMBOL_GPL(kvmi_breakpoint_exit);

/* The registers of the agent hypercall match its sub-function. */
static bool kvmi_is_guest_request(struct kvm_vcpu *vcpu)
{
	unsigned long subfunc1, subfunc2;

	if (is_64_bit_mode(vcpu)) {
		subfunc1 = kvm_rdi_read(vcpu);
		subfunc2 = kvm_rsi_read(vcpu);
	} else {
		subfunc1 = (u32)kvm_rbx_read(vcpu);
		subfunc2 = (u32)kvm_rcx_read(vcpu);
	}

	return subfunc1 == KVM_HC_XEN_HVM_OP_GUEST_REQUEST_VM_EVENT &&
	       subfunc2 == 0;
}

/**
 * kvmi_agent_hypercall() - Handle the KVM_HC_XEN_HVM_OP hypercall.
 * @vcpu: The vCPU.
 *
 * Return: 1 to re-enter the guest, 0 to return to userspace.
 */
int kvmi_agent_hypercall(struct kvm_vcpu *vcpu)
{
	unsigned long ret = -KVM_ENOSYS;
	int action = KVMI_EVENT_NO_REPLY;

	if (kvmi_is_guest_request(vcpu))
		action = kvmi_send_vcpu_event(vcpu, KVMI_VCPU_EVENT_HYPERCALL,
					      NULL, 0,
					      BIT(KVMI_EVENT_ACTION_CONTINUE) |
					      BIT(KVMI_EVENT_ACTION_CRASH));
	if (action == KVMI_EVENT_ACTION_CONTINUE)
		ret = 0;

	if (!is_64_bit_hypercall(vcpu))
		ret = (u32)ret;
	kvm_rax_write(vcpu, ret);

	if (action == KVMI_EVENT_ACTION_CRASH) {
		kvmi_crash(vcpu);
		return 0;
	}

	return kvm_skip_emulated_instruction(vcpu);
}
