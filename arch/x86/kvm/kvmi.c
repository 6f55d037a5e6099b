// SPDX-License-Identifier: GPL-2.0
/*
 * KVM introspection: the x86 part.
 *
 * Everything here runs on the vCPU thread, except
 * kvmi_arch_init_features(), kvmi_arch_vcpu_alive() and
 * kvmi_arch_request_restore().
 *
 * The interceptions that the tool turns on are recorded in
 * vcpu->arch.kvmi; the vendor code ORs them into what KVM itself needs
 * whenever it computes an intercept, and update_introspection_intercepts()
 * makes it compute them again after a change.  Giving them back is
 * therefore only a matter of clearing the record and recomputing.
 */

#include <linux/kvm_host.h>
#include <asm/fpu/xcr.h>
#include <asm/kvm_para.h>
#include <asm/mtrr.h>
#include "cpuid.h"
#include "kvm_cache_regs.h"
#include "kvmi.h"
#include "x86.h"
#include "../../../virt/kvm/introspection/kvmi_int.h"

void kvmi_arch_init_features(struct kvmi_features *feat)
{
	feat->singlestep = kvm_caps.has_kvmi_singlestep;
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

static void kvmi_update_intercepts(struct kvm_vcpu *vcpu)
{
	kvm_x86_call(update_introspection_intercepts)(vcpu);
}

/*
 * Userspace guest debugging wins over introspection: while it uses
 * software breakpoints, the #BP exits are its own.
 */
int kvmi_arch_control_event(struct kvm_vcpu *vcpu, u16 event_id, bool enable)
{
	switch (event_id) {
	case KVMI_VCPU_EVENT_BREAKPOINT:
		if (enable && (vcpu->guest_debug & KVM_GUESTDBG_USE_SW_BP))
			return -KVM_EBUSY;
		kvmi_control_bp_intercept(vcpu, enable);
		break;
	case KVMI_VCPU_EVENT_DESCRIPTOR:
		if (enable && !kvm_caps.has_kvmi_descriptor_exits)
			return -KVM_EOPNOTSUPP;
		vcpu->arch.kvmi.descriptor_intercepted = enable;
		kvmi_update_intercepts(vcpu);
		break;
	}

	return 0;
}

static void kvmi_set_singlestep(struct kvm_vcpu *vcpu, bool enable)
{
	struct kvm_vcpu_arch_introspection *arch = &vcpu->arch.kvmi;

	if (arch->singlestep == enable)
		return;

	arch->singlestep = enable;
	arch->step_done = false;
	kvmi_update_intercepts(vcpu);

	/* The interrupts held back while stepping can go in. */
	if (!enable)
		kvm_make_request(KVM_REQ_EVENT, vcpu);
}

/* What a vCPU gives back even when the tool turned the cleanup off. */
static void kvmi_restore_vcpu_state(struct kvm_vcpu *vcpu)
{
	vcpu->arch.kvmi.exception.pending = false;
	kvmi_set_singlestep(vcpu, false);
}

static void kvmi_restore_interceptions(struct kvm_vcpu *vcpu)
{
	struct kvm_vcpu_arch_introspection *arch = &vcpu->arch.kvmi;

	if (arch->bp_intercepted)
		kvmi_control_bp_intercept(vcpu, false);

	if (arch->cr_intercepted || arch->descriptor_intercepted) {
		arch->cr_intercepted = 0;
		arch->descriptor_intercepted = false;
		kvmi_update_intercepts(vcpu);
	}

	if (!bitmap_empty(arch->msrw_low, KVMI_NUM_MSRS) ||
	    !bitmap_empty(arch->msrw_high, KVMI_NUM_MSRS)) {
		bitmap_zero(arch->msrw_low, KVMI_NUM_MSRS);
		bitmap_zero(arch->msrw_high, KVMI_NUM_MSRS);
		kvm_make_request(KVM_REQ_MSR_FILTER_CHANGED, vcpu);
	}
}

/*
 * Called by kvmi_unhook(), on another thread, before it kicks the vCPU:
 * the kick orders these writes before the vCPU reads them.
 */
void kvmi_arch_request_restore(struct kvm_vcpu *vcpu, bool interceptions)
{
	if (interceptions)
		WRITE_ONCE(vcpu->arch.kvmi.restore_interceptions, true);
	WRITE_ONCE(vcpu->arch.kvmi.restore, true);
}

void kvmi_arch_finish_unhook(struct kvm_vcpu *vcpu)
{
	struct kvm_vcpu_arch_introspection *arch = &vcpu->arch.kvmi;

	if (!READ_ONCE(arch->restore))
		return;

	WRITE_ONCE(arch->restore, false);
	kvmi_restore_vcpu_state(vcpu);

	if (READ_ONCE(arch->restore_interceptions)) {
		WRITE_ONCE(arch->restore_interceptions, false);
		kvmi_restore_interceptions(vcpu);
	}
}

int kvmi_arch_cmd_vcpu_control_cr(struct kvm_vcpu *vcpu, u8 cr, bool enable)
{
	struct kvm_vcpu_arch_introspection *arch = &vcpu->arch.kvmi;

	if (cr != 0 && cr != 3 && cr != 4)
		return -KVM_EINVAL;

	if (enable)
		arch->cr_intercepted |= BIT(cr);
	else
		arch->cr_intercepted &= ~BIT(cr);
	kvmi_update_intercepts(vcpu);

	return 0;
}

/*
 * Send a CR or MSR event, whose reply carries the value to write in
 * @value.  Return false when the write must not be performed (CRASH).
 */
static bool kvmi_write_event(struct kvm_vcpu *vcpu, u16 event_id,
			     const void *e, size_t size, u64 *value)
{
	u64 new_val;
	int action;

	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_event_cr_reply) != sizeof(new_val));
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_event_msr_reply) != sizeof(new_val));

	action = kvmi_send_vcpu_event(vcpu, event_id, e, size,
				      &new_val, sizeof(new_val),
				      BIT(KVMI_EVENT_ACTION_CONTINUE) |
				      BIT(KVMI_EVENT_ACTION_CRASH));
	if (action == KVMI_EVENT_ACTION_CRASH)
		return false;
	if (action == KVMI_EVENT_ACTION_CONTINUE)
		*value = new_val;

	return true;
}

/**
 * kvmi_cr_event() - Send KVMI_VCPU_EVENT_CR.
 * @vcpu: The vCPU.
 * @cr: 0, 3 or 4.
 * @old_value: The value of the register.
 * @new_value: The value that the guest writes, replaced by the one from
 *	the reply.
 *
 * Return: false when the write must not be performed (CRASH).
 */
bool kvmi_cr_event(struct kvm_vcpu *vcpu, int cr, unsigned long old_value,
		   unsigned long *new_value)
{
	struct kvmi_vcpu_event_cr e = {
		.cr = cr,
		.old_value = old_value,
		.new_value = *new_value,
	};
	u64 value = *new_value;
	bool write;

	write = kvmi_write_event(vcpu, KVMI_VCPU_EVENT_CR, &e, sizeof(e),
				 &value);
	*new_value = value;
	return write;
}

static unsigned long *kvmi_msrw_bitmap(struct kvm_vcpu *vcpu, u32 *msr)
{
	struct kvm_vcpu_arch_introspection *arch = &vcpu->arch.kvmi;

	if (*msr < KVMI_NUM_MSRS)
		return arch->msrw_low;

	if (*msr - KVMI_MSR_HIGH_BASE < KVMI_NUM_MSRS) {
		*msr -= KVMI_MSR_HIGH_BASE;
		return arch->msrw_high;
	}

	return NULL;
}

/*
 * The vendor code stops passing the MSR through when it recomputes its
 * MSR bitmap (see kvmi_msr_write_intercepted()), which the filter-change
 * request makes it do.
 */
int kvmi_arch_cmd_vcpu_control_msr(struct kvm_vcpu *vcpu, u32 msr,
				   bool enable)
{
	unsigned long *bitmap;
	u32 bit = msr;

	bitmap = kvmi_msrw_bitmap(vcpu, &bit);
	if (!bitmap)
		return -KVM_EINVAL;

	if (enable && !kvm_msr_allowed(vcpu, msr, KVM_MSR_FILTER_WRITE))
		return -KVM_EPERM;

	assign_bit(bit, bitmap, enable);
	kvm_make_request(KVM_REQ_MSR_FILTER_CHANGED, vcpu);

	return 0;
}

/**
 * kvmi_msr_event() - Send KVMI_VCPU_EVENT_MSR, if the value changes.
 * @vcpu: The vCPU.
 * @msr: The MSR that the guest writes.
 * @data: The value that the guest writes, replaced by the one from the
 *	reply.
 *
 * Return: false when the write must not be performed (CRASH).
 */
bool kvmi_msr_event(struct kvm_vcpu *vcpu, u32 msr, u64 *data)
{
	struct kvmi_vcpu_event_msr e = {
		.msr = msr,
		.old_value = kvmi_get_msr(vcpu, msr),
		.new_value = *data,
	};

	if (e.old_value == e.new_value)
		return true;

	return kvmi_write_event(vcpu, KVMI_VCPU_EVENT_MSR, &e, sizeof(e), data);
}

/* After a guest XSETBV, informational. */
void kvmi_xsetbv_event(struct kvm_vcpu *vcpu, u64 old_xcr0)
{
	struct kvmi_vcpu_event_xsetbv e = {
		.xcr = XCR_XFEATURE_ENABLED_MASK,
		.old_value = old_xcr0,
		.new_value = vcpu->arch.xcr0,
	};

	if (e.old_value == e.new_value)
		return;

	kvmi_send_vcpu_event(vcpu, KVMI_VCPU_EVENT_XSETBV, &e, sizeof(e),
			     NULL, 0,
			     BIT(KVMI_EVENT_ACTION_CONTINUE) |
			     BIT(KVMI_EVENT_ACTION_CRASH));
}

int kvmi_arch_cmd_vcpu_get_xcr(struct kvm_vcpu *vcpu, u8 xcr, u64 *value)
{
	if (xcr != XCR_XFEATURE_ENABLED_MASK)
		return -KVM_EINVAL;

	*value = vcpu->arch.xcr0;
	return 0;
}

/**
 * kvmi_event_goes_on() - Send an event that accepts every action.
 * @vcpu: The vCPU.
 * @event_id: The event id.
 * @e: The event-specific data.
 * @size: The size of @e.
 *
 * Return: true when KVM goes on with what the event is about (CONTINUE,
 * or no tool), false when the vCPU re-enters the guest without it (RETRY)
 * or leaves KVM_RUN before it enters the guest again (CRASH).
 */
bool kvmi_event_goes_on(struct kvm_vcpu *vcpu, u16 event_id, const void *e,
			size_t size)
{
	int action;

	action = kvmi_send_vcpu_event(vcpu, event_id, e, size, NULL, 0,
				      BIT(KVMI_EVENT_ACTION_CONTINUE) |
				      BIT(KVMI_EVENT_ACTION_RETRY) |
				      BIT(KVMI_EVENT_ACTION_CRASH));

	return action != KVMI_EVENT_ACTION_RETRY &&
	       action != KVMI_EVENT_ACTION_CRASH;
}

/**
 * kvmi_descriptor_exit() - Handle a descriptor-table exit.
 * @vcpu: The vCPU.
 * @descriptor: KVMI_DESC_IDTR, _GDTR, _LDTR or _TR.
 * @write: True for LIDT, LGDT, LLDT and LTR.
 *
 * Return: 1 to re-enter the guest, 0 to return to userspace.
 */
int kvmi_descriptor_exit(struct kvm_vcpu *vcpu, u8 descriptor, bool write)
{
	struct kvmi_vcpu_event_descriptor e = {
		.descriptor = descriptor,
		.write = write,
	};

	if (!kvmi_event_goes_on(vcpu, KVMI_VCPU_EVENT_DESCRIPTOR, &e,
				sizeof(e)))
		return 1;

	return kvm_emulate_instruction(vcpu, 0);
}
EXPORT_SYMBOL_GPL(kvmi_descriptor_exit);

int kvmi_arch_cmd_vcpu_inject_exception(struct kvm_vcpu *vcpu,
					const struct kvmi_vcpu_inject_exception *r)
{
	struct kvmi_injection *ex = &vcpu->arch.kvmi.exception;

	if (r->nr > 31 || r->nr == NMI_VECTOR)
		return -KVM_EINVAL;

	if (ex->pending || vcpu->arch.kvmi.singlestep)
		return -KVM_EBUSY;

	*ex = (struct kvmi_injection) {
		.pending = true,
		.nr = r->nr,
		.error_code = r->error_code,
		.address = r->address,
	};

	/* kvmi_inject_exception() runs before the next guest entry. */
	kvm_make_request(KVM_REQ_INTROSPECTION, vcpu);
	return 0;
}

/*
 * Queue the exception as KVM queues its own, so that it combines with an
 * exception that is already pending (e.g. into a #DF), then tell the tool
 * what the guest is going to get.
 */
static void kvmi_inject_exception(struct kvm_vcpu *vcpu)
{
	struct kvmi_injection *ex = &vcpu->arch.kvmi.exception;
	struct kvm_queued_exception *queued = &vcpu->arch.exception;
	struct kvmi_vcpu_event_trap e = {};

	if (!ex->pending)
		return;

	if (ex->nr == PF_VECTOR) {
		struct x86_exception fault = {
			.vector = PF_VECTOR,
			.error_code_valid = true,
			.error_code = ex->error_code,
			.address = ex->address,
		};

		kvm_inject_page_fault(vcpu, &fault, false);
	} else if (x86_exception_has_error_code(ex->nr)) {
		kvm_queue_exception_e(vcpu, ex->nr, ex->error_code);
	} else {
		kvm_queue_exception(vcpu, ex->nr);
	}

	if (queued->pending) {
		e.nr = queued->vector;
		if (queued->has_error_code)
			e.error_code = queued->error_code;
		if (queued->vector == PF_VECTOR && queued->has_payload)
			e.address = queued->payload;
	} else {
		/* Combined into a triple fault: the vCPU shuts down. */
		e.nr = DF_VECTOR;
	}

	kvmi_send_vcpu_event(vcpu, KVMI_VCPU_EVENT_TRAP, &e, sizeof(e), NULL, 0,
			     BIT(KVMI_EVENT_ACTION_CONTINUE) |
			     BIT(KVMI_EVENT_ACTION_CRASH));

	ex->pending = false;
}

int kvmi_arch_cmd_vcpu_control_singlestep(struct kvm_vcpu *vcpu, bool enable)
{
	if (!kvm_caps.has_kvmi_singlestep)
		return -KVM_EOPNOTSUPP;

	kvmi_set_singlestep(vcpu, enable);
	return 0;
}

static void kvmi_report_step(struct kvm_vcpu *vcpu)
{
	struct kvmi_vcpu_event_singlestep e = {
		.failed = vcpu->arch.kvmi.step_lost,
	};
	int action;

	vcpu->arch.kvmi.step_lost = false;

	action = kvmi_send_vcpu_event(vcpu, KVMI_VCPU_EVENT_SINGLESTEP, &e,
				      sizeof(e), NULL, 0,
				      BIT(KVMI_EVENT_ACTION_CONTINUE) |
				      BIT(KVMI_EVENT_ACTION_CRASH));
	/* Nobody listens: do not hold the interrupts back. */
	if (action == KVMI_EVENT_NO_REPLY)
		kvmi_set_singlestep(vcpu, false);
}

/**
 * kvmi_singlestep_exit() - The guest completed an instruction while
 *	single-stepped (an MTF exit, or the #DB of the borrowed TF).
 * @vcpu: The vCPU.
 *
 * Return: 1 to re-enter the guest.
 */
int kvmi_singlestep_exit(struct kvm_vcpu *vcpu)
{
	kvmi_report_step(vcpu);
	return 1;
}
EXPORT_SYMBOL_GPL(kvmi_singlestep_exit);

/* Before the next guest entry, within a session. */
void kvmi_arch_handle_requests(struct kvm_vcpu *vcpu)
{
	struct kvm_vcpu_arch_introspection *arch = &vcpu->arch.kvmi;

	kvmi_inject_exception(vcpu);

	if (arch->step_done) {
		arch->step_done = false;
		if (arch->singlestep)
			kvmi_report_step(vcpu);
	}
}

/*
 * The memory type that the guest's own MTRRs give to @gpa.  KVM 6.12 no
 * longer derives a memory type from them, so compute it as the CPU would.
 */
static u8 kvmi_mtrr_fixed_type(const struct kvm_mtrr *mtrr, u64 gpa)
{
	unsigned int idx;
	u64 range;

	if (gpa < 0x80000) {
		range = mtrr->fixed_64k;
		idx = gpa >> 16;
	} else if (gpa < 0xc0000) {
		idx = (gpa - 0x80000) >> 14;
		range = mtrr->fixed_16k[idx / 8];
	} else {
		idx = (gpa - 0xc0000) >> 12;
		range = mtrr->fixed_4k[idx / 8];
	}

	return range >> (8 * (idx % 8));
}

u8 kvmi_arch_cmd_vcpu_get_mtrr_type(struct kvm_vcpu *vcpu, u64 gpa)
{
	const struct kvm_mtrr *mtrr = &vcpu->arch.mtrr_state;
	int i, type = -1;

	if (!(mtrr->deftype & MTRR_DEF_TYPE_E))
		return MTRR_TYPE_UNCACHABLE;

	if ((mtrr->deftype & MTRR_DEF_TYPE_FE) && gpa < 0x100000)
		return kvmi_mtrr_fixed_type(mtrr, gpa);

	for (i = 0; i < KVM_NR_VAR_MTRR; i++) {
		u64 base = mtrr->var[2 * i];
		u64 mask = mtrr->var[2 * i + 1];
		u8 t = base & MTRR_DEF_TYPE_TYPE;

		if (!(mask & MTRR_PHYSMASK_V))
			continue;

		mask &= PAGE_MASK;
		if ((gpa & mask) != (base & mask))
			continue;

		/* UC wins, WT wins over WB, otherwise the first one. */
		if (t == MTRR_TYPE_UNCACHABLE)
			return t;
		if (type < 0 ||
		    (t == MTRR_TYPE_WRTHROUGH && type == MTRR_TYPE_WRBACK))
			type = t;
	}

	return type < 0 ? mtrr->deftype & MTRR_DEF_TYPE_TYPE : type;
}

u64 kvmi_arch_cmd_vcpu_translate_gva(struct kvm_vcpu *vcpu, u64 gva)
{
	return kvm_mmu_gva_to_gpa_system(vcpu, gva, NULL);
}

/*
 * The guest FPU is loaded while the vCPU runs (the jobs run within
 * KVM_RUN): put it back in memory around the copy.
 */
int kvmi_arch_cmd_vcpu_get_xsave(struct kvm_vcpu *vcpu,
				 struct kvmi_vcpu_get_xsave_reply *rpl)
{
	int err;

	if (vcpu->arch.guest_fpu.uabi_size > sizeof(*rpl))
		return -KVM_E2BIG;

	kvm_put_guest_fpu(vcpu);
	err = kvm_vcpu_ioctl_x86_get_xsave(vcpu, (struct kvm_xsave *)rpl);
	kvm_load_guest_fpu(vcpu);

	return err ? -KVM_EINVAL : 0;
}

int kvmi_arch_cmd_vcpu_set_xsave(struct kvm_vcpu *vcpu,
				 const struct kvmi_vcpu_set_xsave *req)
{
	struct kvm_xsave *area;
	int err;

	if (vcpu->arch.guest_fpu.uabi_size > sizeof(*req))
		return -KVM_E2BIG;

	/* KVM_SET_XSAVE fixes up its copy of the area. */
	area = kmemdup(req, sizeof(*req), GFP_KERNEL_ACCOUNT);
	if (!area)
		return -KVM_ENOMEM;

	kvm_put_guest_fpu(vcpu);
	err = kvm_vcpu_ioctl_x86_set_xsave(vcpu, area);
	kvm_load_guest_fpu(vcpu);

	kfree(area);
	return err ? -KVM_EINVAL : 0;
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

	if (!kvmi_event_goes_on(vcpu, KVMI_VCPU_EVENT_BREAKPOINT, &e,
				sizeof(e)))
		return 1;

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
					      NULL, 0, NULL, 0,
					      BIT(KVMI_EVENT_ACTION_CONTINUE) |
					      BIT(KVMI_EVENT_ACTION_CRASH));
	if (action == KVMI_EVENT_ACTION_CONTINUE)
		ret = 0;

	if (!is_64_bit_hypercall(vcpu))
		ret = (u32)ret;
	kvm_rax_write(vcpu, ret);

	/* After a CRASH, RIP stays on the hypercall. */
	if (action == KVMI_EVENT_ACTION_CRASH)
		return 1;

	return kvm_skip_emulated_instruction(vcpu);
}
