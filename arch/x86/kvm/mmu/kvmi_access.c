// SPDX-License-Identifier: GPL-2.0
/*
 * KVM introspection: guest page access restrictions on the x86 MMU.
 *
 * The introspection tool may forbid reads, writes or instruction fetches
 * of chosen guest pages (KVMI_VM_SET_PAGE_ACCESS); the vCPU that makes a
 * forbidden access sends KVMI_VCPU_EVENT_PF and waits for the reply.
 *
 * The restrictions live in kvm->arch.kvmi.access, an xarray indexed by
 * gfn whose values are the accesses still allowed (a gfn without an entry
 * allows everything).  Three things enforce them, for the TDP MMU, the
 * shadow MMU and the TDP/shadow split alike:
 *
 *  - make_spte() leaves out of a leaf SPTE the write and execute
 *    permissions that the gfn does not allow (kvmi_spte_access()), so
 *    that such an access faults;
 *  - a page that must not be read cannot be mapped at all: no SPTE is
 *    made for it, neither by a page fault (kvmi_page_fault() emulates
 *    every access to it) nor by prefetching (kvmi_prefetch_allowed());
 *  - a restricted gfn may not be part of a huge mapping: it counts as
 *    "disallowed" in the lpage_info of its memslot, also of a memslot
 *    created later (kvmi_arch_memslot_created()).
 *
 * kvmi_page_fault(), called by kvm_faultin_pfn() before the pfn is looked
 * up, tells a forbidden access from an allowed one and sends the event:
 * CONTINUE emulates the instruction (the emulator reaches guest memory
 * without the SPTEs, so the access completes once and the restriction
 * stays), RETRY re-enters the guest.
 *
 * Locking: the xarray is written under kvm->slots_lock (which also keeps
 * memslots from changing, so that the lpage_info counts stay right) and,
 * for the part that the page fault path reads, under the write side of
 * kvm->mmu_lock; it is read under RCU.  A change is followed by a zap of
 * the gfns, which bumps mmu_invalidate_seq: a fault that read the old
 * state before the change is retried (is_page_fault_stale()), and a fault
 * that runs after it sees the new state.
 */

#include <linux/kvm_host.h>
#include <linux/xarray.h>
#include "../kvmi.h"
#include "mmu.h"
#include "mmu_internal.h"
#include "spte.h"
#include "kvmi_access.h"
#include "../../../../virt/kvm/introspection/kvmi_int.h"

#define KVMI_ACCESS_ALL (KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_W | \
			 KVMI_PAGE_ACCESS_X)

void kvmi_arch_create_vm(struct kvm *kvm)
{
	xa_init(&kvm->arch.kvmi.access);
}

void kvmi_arch_destroy_vm(struct kvm *kvm)
{
	xa_destroy(&kvm->arch.kvmi.access);
}

/* The accesses that @gfn allows.  Under RCU, kvm->mmu_lock or slots_lock. */
static u8 kvmi_gfn_access(struct kvm *kvm, gfn_t gfn)
{
	void *entry = xa_load(&kvm->arch.kvmi.access, gfn);

	return entry ? xa_to_value(entry) : KVMI_ACCESS_ALL;
}

static bool kvmi_has_restrictions(struct kvm *kvm)
{
	return !xa_empty(&kvm->arch.kvmi.access);
}

/* The permissions of a leaf SPTE for @gfn (see make_spte()). */
unsigned int kvmi_spte_access(struct kvm *kvm, gfn_t gfn,
			      unsigned int pte_access)
{
	u8 allowed;

	if (!kvmi_has_restrictions(kvm))
		return pte_access;

	allowed = kvmi_gfn_access(kvm, gfn);
	if (!(allowed & KVMI_PAGE_ACCESS_W))
		pte_access &= ~ACC_WRITE_MASK;
	if (!(allowed & KVMI_PAGE_ACCESS_X))
		pte_access &= ~ACC_EXEC_MASK;

	return pte_access;
}

/* Prefetching makes no SPTE for a restricted gfn. */
bool kvmi_prefetch_allowed(struct kvm *kvm, gfn_t gfn)
{
	return !kvmi_has_restrictions(kvm) ||
	       kvmi_gfn_access(kvm, gfn) == KVMI_ACCESS_ALL;
}

/* The guest virtual address of the faulting access, if the CPU told. */
static u64 kvmi_fault_gva(struct kvm_vcpu *vcpu, struct kvm_page_fault *fault)
{
	struct kvm_vcpu_arch_introspection *arch = &vcpu->arch.kvmi;
	u64 gva = ~0ULL;

	if (!fault->is_tdp)
		gva = fault->addr;
	else if (arch->fault_gva_valid && arch->fault_gpa == fault->addr)
		gva = arch->fault_gva;

	return gva;
}

static int kvmi_pf_event(struct kvm_vcpu *vcpu, struct kvm_page_fault *fault,
			 u8 access)
{
	struct kvmi_vcpu_event_pf e = {
		.gva = kvmi_fault_gva(vcpu, fault),
		.gpa = gfn_to_gpa(fault->gfn) | (fault->addr & ~PAGE_MASK),
		.access = access,
	};

	/* CONTINUE, or no tool: the access completes, emulated. */
	if (kvmi_event_goes_on(vcpu, KVMI_VCPU_EVENT_PF, &e, sizeof(e)))
		return RET_PF_EMULATE;

	return RET_PF_RETRY;
}

/**
 * kvmi_page_fault() - Check a page fault against the restrictions.
 * @vcpu: The vCPU.
 * @fault: The fault, on a gfn with a memslot.
 *
 * Return: RET_PF_CONTINUE when the fault is to be handled as usual,
 * RET_PF_EMULATE when the access is to be emulated, RET_PF_RETRY when the
 * vCPU re-enters the guest.
 */
int kvmi_page_fault(struct kvm_vcpu *vcpu, struct kvm_page_fault *fault)
{
	u8 allowed, access;

	if (!kvmi_has_restrictions(vcpu->kvm))
		return RET_PF_CONTINUE;

	allowed = kvmi_gfn_access(vcpu->kvm, fault->gfn);
	if (allowed == KVMI_ACCESS_ALL)
		return RET_PF_CONTINUE;

	if (fault->exec)
		access = KVMI_PAGE_ACCESS_X;
	else if (fault->write)
		access = KVMI_PAGE_ACCESS_W;
	else
		access = KVMI_PAGE_ACCESS_R;

	/* A fault that no instruction made (async #PF, pre-fault): no event. */
	if ((allowed & access) && (allowed & KVMI_PAGE_ACCESS_R))
		return RET_PF_CONTINUE;
	if (!(allowed & access) && !fault->prefetch)
		return kvmi_pf_event(vcpu, fault, access);

	/* No SPTE can allow it without allowing reads: emulate. */
	return RET_PF_EMULATE;
}

/*
 * A new memslot (created or moved) gets no huge mapping over the gfns
 * that are restricted.  The slot is not visible yet: no mmu_lock needed.
 * Only address space 0 (not SMM) is restricted, as by SET_PAGE_ACCESS.
 */
void kvmi_arch_memslot_created(struct kvm *kvm, struct kvm_memory_slot *slot)
{
	unsigned long gfn;
	void *entry;

	lockdep_assert_held(&kvm->slots_lock);

	if (slot->as_id)
		return;

	xa_for_each_range(&kvm->arch.kvmi.access, gfn, entry, slot->base_gfn,
			  slot->base_gfn + slot->npages - 1)
		kvm_mmu_gfn_disallow_lpage(slot, gfn);
}

/*
 * Change the access of @gfn and the lpage_info count of its memslot.
 * The xarray slot for the new entry is reserved, so no allocation here.
 */
static void kvmi_set_gfn_access(struct kvm *kvm, gfn_t gfn, u8 access)
{
	struct kvm_memory_slot *slot = gfn_to_memslot(kvm, gfn);
	u8 old = kvmi_gfn_access(kvm, gfn);

	lockdep_assert_held(&kvm->slots_lock);
	lockdep_assert_held_write(&kvm->mmu_lock);

	if (old == access)
		return;

	if (access == KVMI_ACCESS_ALL) {
		xa_erase(&kvm->arch.kvmi.access, gfn);
		if (slot)
			kvm_mmu_gfn_allow_lpage(slot, gfn);
		return;
	}

	xa_store(&kvm->arch.kvmi.access, gfn, xa_mk_value(access), GFP_ATOMIC);
	if (old == KVMI_ACCESS_ALL && slot)
		kvm_mmu_gfn_disallow_lpage(slot, gfn);
}

static int kvmi_check_page_access(struct kvm *kvm,
				  const struct kvmi_page_access_entry *e)
{
	if (e->access & ~KVMI_ACCESS_ALL ||
	    memchr_inv(e->padding, 0, sizeof(e->padding)))
		return -KVM_EINVAL;

	if (!kvm_is_visible_memslot(gfn_to_memslot(kvm, gpa_to_gfn(e->gpa))))
		return -KVM_EINVAL;

	return 0;
}

/* Make room for the new entries, so that applying them cannot fail. */
static int kvmi_reserve_page_access(struct kvm *kvm,
				    const struct kvmi_page_access_entry *entries,
				    unsigned int count)
{
	struct xarray *xa = &kvm->arch.kvmi.access;
	unsigned int i;

	for (i = 0; i < count; i++) {
		gfn_t gfn = gpa_to_gfn(entries[i].gpa);

		if (entries[i].access == KVMI_ACCESS_ALL || xa_load(xa, gfn))
			continue;
		if (xa_reserve(xa, gfn, GFP_KERNEL_ACCOUNT))
			goto undo;
	}

	return 0;

undo:
	while (i--)
		xa_release(xa, gpa_to_gfn(entries[i].gpa));
	return -KVM_ENOMEM;
}

/**
 * kvmi_arch_cmd_set_page_access() - KVMI_VM_SET_PAGE_ACCESS.
 * @kvm: The VM.
 * @entries: The entries, already checked for size.
 * @count: Their number.
 *
 * Every entry is checked before any is applied: the command applies all
 * of them or none.
 *
 * Return: 0 or a negative KVM_E* error code.
 */
int kvmi_arch_cmd_set_page_access(struct kvm *kvm,
				  const struct kvmi_page_access_entry *entries,
				  unsigned int count)
{
	gfn_t gfn, start = ~0ULL, end = 0;
	unsigned int i;
	int err = 0;

	mutex_lock(&kvm->slots_lock);

	for (i = 0; i < count && !err; i++)
		err = kvmi_check_page_access(kvm, &entries[i]);
	if (!err)
		err = kvmi_reserve_page_access(kvm, entries, count);
	if (err)
		goto out;

	write_lock(&kvm->mmu_lock);
	for (i = 0; i < count; i++) {
		gfn = gpa_to_gfn(entries[i].gpa);
		kvmi_set_gfn_access(kvm, gfn, entries[i].access);
		start = min(start, gfn);
		end = max(end, gfn + 1);
	}
	write_unlock(&kvm->mmu_lock);

	/* Unmap the old permissions, and the huge mappings around them. */
	kvm_zap_gfn_range(kvm, start, end);

out:
	mutex_unlock(&kvm->slots_lock);
	return err;
}

/* On unhook: the guest gets every access back. */
void kvmi_arch_unhook(struct kvm *kvm)
{
	struct xarray *xa = &kvm->arch.kvmi.access;
	gfn_t start = ~0ULL, end = 0;
	unsigned long gfn;
	void *entry;

	if (xa_empty(xa))
		return;

	mutex_lock(&kvm->slots_lock);

	write_lock(&kvm->mmu_lock);
	xa_for_each(xa, gfn, entry) {
		kvmi_set_gfn_access(kvm, gfn, KVMI_ACCESS_ALL);
		start = min_t(gfn_t, start, gfn);
		end = max_t(gfn_t, end, gfn + 1);
	}
	write_unlock(&kvm->mmu_lock);

	kvm_zap_gfn_range(kvm, start, end);

	mutex_unlock(&kvm->slots_lock);
}

/*
 * The highest gfn that a memslot of userspace backs, for
 * KVMI_VM_GET_MAX_GFN (KVM's own memslots, e.g. the APIC access page,
 * are not guest memory).
 */
u64 kvmi_arch_max_gfn(struct kvm *kvm)
{
	struct kvm_memory_slot *slot;
	u64 max_gfn = 0;
	int idx, bkt;

	idx = srcu_read_lock(&kvm->srcu);
	kvm_for_each_memslot(slot, bkt, kvm_memslots(kvm))
		if (kvm_is_visible_memslot(slot) && slot->npages)
			max_gfn = max(max_gfn, slot->base_gfn + slot->npages - 1);
	srcu_read_unlock(&kvm->srcu, idx);

	return max_gfn;
}
