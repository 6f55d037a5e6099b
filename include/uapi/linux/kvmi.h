/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
#ifndef _UAPI__LINUX_KVMI_H
#define _UAPI__LINUX_KVMI_H

/*
 * KVMI, the KVM introspection interface: the messages exchanged between KVM
 * and an introspection tool over the socket given to KVM_INTROSPECTION_HOOK.
 *
 * See Documentation/virt/kvm/kvmi.rst.
 */

#include <linux/types.h>
#include <asm/kvmi.h>

#define KVMI_VERSION 0x00000001

/*
 * Message and event ids: VM items have even ids, vCPU items have odd ids.
 * Message ids and event ids are separate namespaces.
 */
#define KVMI_VM_MESSAGE_ID(id)		((id) << 1)
#define KVMI_VCPU_MESSAGE_ID(id)	(((id) << 1) | 1)

#define KVMI_VM_EVENT_ID(id)		((id) << 1)
#define KVMI_VCPU_EVENT_ID(id)		(((id) << 1) | 1)

enum {
	KVMI_VM_EVENT            = KVMI_VM_MESSAGE_ID(0),
	KVMI_GET_VERSION         = KVMI_VM_MESSAGE_ID(1),
	KVMI_VM_CHECK_COMMAND    = KVMI_VM_MESSAGE_ID(2),
	KVMI_VM_CHECK_EVENT      = KVMI_VM_MESSAGE_ID(3),
	KVMI_VM_GET_INFO         = KVMI_VM_MESSAGE_ID(4),
	KVMI_VM_CONTROL_EVENTS   = KVMI_VM_MESSAGE_ID(5),
	KVMI_VM_READ_PHYSICAL    = KVMI_VM_MESSAGE_ID(6),
	KVMI_VM_WRITE_PHYSICAL   = KVMI_VM_MESSAGE_ID(7),
	KVMI_VM_PAUSE_VCPU       = KVMI_VM_MESSAGE_ID(8),
	KVMI_VM_CONTROL_CLEANUP  = KVMI_VM_MESSAGE_ID(9),
	KVMI_VM_SET_PAGE_ACCESS  = KVMI_VM_MESSAGE_ID(10),
	KVMI_VM_GET_MAX_GFN      = KVMI_VM_MESSAGE_ID(11),
	KVMI_VM_GET_MAP_TOKEN    = KVMI_VM_MESSAGE_ID(12),

	KVMI_NEXT_VM_MESSAGE
};

enum {
	KVMI_VCPU_EVENT              = KVMI_VCPU_MESSAGE_ID(0),
	KVMI_VCPU_GET_INFO           = KVMI_VCPU_MESSAGE_ID(1),
	KVMI_VCPU_CONTROL_EVENTS     = KVMI_VCPU_MESSAGE_ID(2),
	KVMI_VCPU_GET_REGISTERS      = KVMI_VCPU_MESSAGE_ID(3),
	KVMI_VCPU_SET_REGISTERS      = KVMI_VCPU_MESSAGE_ID(4),
	KVMI_VCPU_GET_CPUID          = KVMI_VCPU_MESSAGE_ID(5),
	KVMI_VCPU_CONTROL_CR         = KVMI_VCPU_MESSAGE_ID(6),
	KVMI_VCPU_INJECT_EXCEPTION   = KVMI_VCPU_MESSAGE_ID(7),
	KVMI_VCPU_GET_XCR            = KVMI_VCPU_MESSAGE_ID(8),
	KVMI_VCPU_GET_XSAVE          = KVMI_VCPU_MESSAGE_ID(9),
	KVMI_VCPU_SET_XSAVE          = KVMI_VCPU_MESSAGE_ID(10),
	KVMI_VCPU_GET_MTRR_TYPE      = KVMI_VCPU_MESSAGE_ID(11),
	KVMI_VCPU_CONTROL_MSR        = KVMI_VCPU_MESSAGE_ID(12),
	KVMI_VCPU_CONTROL_SINGLESTEP = KVMI_VCPU_MESSAGE_ID(13),
	KVMI_VCPU_TRANSLATE_GVA      = KVMI_VCPU_MESSAGE_ID(14),

	KVMI_NEXT_VCPU_MESSAGE
};

enum {
	KVMI_VM_EVENT_UNHOOK = KVMI_VM_EVENT_ID(0),

	KVMI_NEXT_VM_EVENT
};

enum {
	KVMI_VCPU_EVENT_PAUSE      = KVMI_VCPU_EVENT_ID(0),
	KVMI_VCPU_EVENT_HYPERCALL  = KVMI_VCPU_EVENT_ID(1),
	KVMI_VCPU_EVENT_BREAKPOINT = KVMI_VCPU_EVENT_ID(2),
	KVMI_VCPU_EVENT_CR         = KVMI_VCPU_EVENT_ID(3),
	KVMI_VCPU_EVENT_TRAP       = KVMI_VCPU_EVENT_ID(4),
	KVMI_VCPU_EVENT_XSETBV     = KVMI_VCPU_EVENT_ID(5),
	KVMI_VCPU_EVENT_DESCRIPTOR = KVMI_VCPU_EVENT_ID(6),
	KVMI_VCPU_EVENT_MSR        = KVMI_VCPU_EVENT_ID(7),
	KVMI_VCPU_EVENT_PF         = KVMI_VCPU_EVENT_ID(8),
	KVMI_VCPU_EVENT_SINGLESTEP = KVMI_VCPU_EVENT_ID(9),

	KVMI_NEXT_VCPU_EVENT
};

enum {
	KVMI_EVENT_ACTION_CONTINUE = 0,
	KVMI_EVENT_ACTION_RETRY    = 1,
	KVMI_EVENT_ACTION_CRASH    = 2,
};

/*
 * run->system_event.data[0] when a vCPU returns to userspace with
 * KVM_EXIT_SYSTEM_EVENT/KVM_SYSTEM_EVENT_CRASH because the introspection
 * tool answered an event with KVMI_EVENT_ACTION_CRASH.
 */
#define KVMI_CRASH_SYSTEM_EVENT_DATA 0x494d564bULL /* "KVMI" */

enum {
	KVMI_PAGE_ACCESS_R = 1 << 0,
	KVMI_PAGE_ACCESS_W = 1 << 1,
	KVMI_PAGE_ACCESS_X = 1 << 2,
};

/**
 * struct kvmi_msg_hdr - The header of every message.
 * @id: The message id (``KVMI_GET_VERSION``, ``KVMI_VCPU_EVENT``, ...).
 * @size: The number of bytes that follow this header.
 * @seq: Chosen by the sender of a command or an event and echoed in the
 *	reply.
 */
struct kvmi_msg_hdr {
	__u16 id;
	__u16 size;
	__u32 seq;
};

/*
 * The largest message: two pages, header included.  A message whose
 * @size is larger makes KVM close the connection.
 */
#define KVMI_MAX_MSG_SIZE (4096 * 2 - sizeof(struct kvmi_msg_hdr))

/**
 * struct kvmi_error_code - The first part of every command reply.
 * @err: 0 on success, otherwise a negative ``KVM_E*`` error code.  The
 *	command-specific reply data follows only when @err is 0.
 * @padding: Zero.
 */
struct kvmi_error_code {
	__s32 err;
	__u32 padding;
};

/**
 * struct kvmi_get_version_reply - The reply to ``KVMI_GET_VERSION``.
 * @version: ``KVMI_VERSION``.
 * @max_msg_size: The largest @size of a message that KVM accepts.
 * @features: The optional features that this host supports.
 */
struct kvmi_get_version_reply {
	__u32 version;
	__u32 max_msg_size;
	struct kvmi_features features;
};

/**
 * struct kvmi_vm_check_command - The ``KVMI_VM_CHECK_COMMAND`` request.
 * @id: The command id to check.
 * @padding1: Must be zero.
 * @padding2: Must be zero.
 */
struct kvmi_vm_check_command {
	__u16 id;
	__u16 padding1;
	__u32 padding2;
};

/**
 * struct kvmi_vm_check_event - The ``KVMI_VM_CHECK_EVENT`` request.
 * @id: The event id to check.
 * @padding1: Must be zero.
 * @padding2: Must be zero.
 */
struct kvmi_vm_check_event {
	__u16 id;
	__u16 padding1;
	__u32 padding2;
};

/**
 * struct kvmi_vm_get_info_reply - The reply to ``KVMI_VM_GET_INFO``.
 * @vcpu_count: The number of online vCPUs.
 * @padding: Zero.
 */
struct kvmi_vm_get_info_reply {
	__u32 vcpu_count;
	__u32 padding[3];
};

/**
 * struct kvmi_event_hdr - The header that follows &struct kvmi_msg_hdr in
 *	every event.
 * @event: The event id (``KVMI_VM_EVENT_UNHOOK``, ...).
 * @padding: Zero.
 */
struct kvmi_event_hdr {
	__u16 event;
	__u16 padding[3];
};

/**
 * struct kvmi_vm_control_events - The ``KVMI_VM_CONTROL_EVENTS`` request.
 * @event_id: The VM event to enable or disable.
 * @enable: 1 to enable the event, 0 to disable it.
 * @padding1: Must be zero.
 * @padding2: Must be zero.
 */
struct kvmi_vm_control_events {
	__u16 event_id;
	__u8 enable;
	__u8 padding1;
	__u32 padding2;
};

/**
 * struct kvmi_vm_read_physical - The ``KVMI_VM_READ_PHYSICAL`` request.
 * @gpa: The guest physical address to read from.
 * @size: The number of bytes to read, from 1 up to the end of the page
 *	that holds @gpa.
 * @padding1: Must be zero.
 * @padding2: Must be zero.
 */
struct kvmi_vm_read_physical {
	__u64 gpa;
	__u16 size;
	__u16 padding1;
	__u32 padding2;
};

/**
 * struct kvmi_vm_write_physical - The ``KVMI_VM_WRITE_PHYSICAL`` request.
 * @gpa: The guest physical address to write to.
 * @size: The number of bytes in @data, from 1 up to the end of the page
 *	that holds @gpa.
 * @padding1: Must be zero.
 * @padding2: Must be zero.
 * @data: The bytes to write.
 */
struct kvmi_vm_write_physical {
	__u64 gpa;
	__u16 size;
	__u16 padding1;
	__u32 padding2;
	__u8  data[];
};

/**
 * struct kvmi_vcpu_hdr - The header that follows &struct kvmi_msg_hdr in
 *	every message sent to a vCPU.
 * @vcpu: The vCPU index (0 to the number of online vCPUs - 1), not its
 *	APIC id.
 * @padding1: Must be zero.
 * @padding2: Must be zero.
 */
struct kvmi_vcpu_hdr {
	__u16 vcpu;
	__u16 padding1;
	__u32 padding2;
};

/**
 * struct kvmi_vm_pause_vcpu - The ``KVMI_VM_PAUSE_VCPU`` request.
 * @vcpu: The vCPU index.
 * @wait: 1 to reply only after the vCPU has left guest mode, 0 to reply
 *	at once.
 * @padding1: Must be zero.
 * @padding2: Must be zero.
 */
struct kvmi_vm_pause_vcpu {
	__u16 vcpu;
	__u8 wait;
	__u8 padding1;
	__u32 padding2;
};

/**
 * struct kvmi_vcpu_event - The common part of every vCPU event, after
 *	&struct kvmi_event_hdr.
 * @size: The size of this structure, so that it can grow.
 * @vcpu: The index of the vCPU that sends the event.
 * @padding: Zero.
 * @arch: The state of the vCPU when it sent the event.
 */
struct kvmi_vcpu_event {
	__u16 size;
	__u16 vcpu;
	__u32 padding;
	struct kvmi_vcpu_event_arch arch;
};

/**
 * struct kvmi_vcpu_event_reply - The common part of every reply to a vCPU
 *	event, after &struct kvmi_vcpu_hdr.
 * @action: ``KVMI_EVENT_ACTION_CONTINUE``, ``_RETRY`` or ``_CRASH``.
 * @event: The id of the event that this reply answers.
 * @padding1: Must be zero.
 * @padding2: Must be zero.
 */
struct kvmi_vcpu_event_reply {
	__u8 action;
	__u8 event;
	__u16 padding1;
	__u32 padding2;
};

/**
 * struct kvmi_vcpu_control_events - The ``KVMI_VCPU_CONTROL_EVENTS``
 *	request, after &struct kvmi_vcpu_hdr.
 * @event_id: The vCPU event to enable or disable.
 * @enable: 1 to enable the event, 0 to disable it.
 * @padding1: Must be zero.
 * @padding2: Must be zero.
 */
struct kvmi_vcpu_control_events {
	__u16 event_id;
	__u8 enable;
	__u8 padding1;
	__u32 padding2;
};

/**
 * struct kvmi_vcpu_event_breakpoint - The payload of
 *	``KVMI_VCPU_EVENT_BREAKPOINT``.
 * @gpa: The guest physical address of the breakpoint instruction.
 * @insn_len: The length of the breakpoint instruction.
 * @padding: Zero.
 */
struct kvmi_vcpu_event_breakpoint {
	__u64 gpa;
	__u8 insn_len;
	__u8 padding[7];
};

/**
 * struct kvmi_vm_control_cleanup - The ``KVMI_VM_CONTROL_CLEANUP`` request.
 * @enable: 1 to undo, when the VM is unhooked, the interceptions that the
 *	tool turned on (the default), 0 to keep them.
 * @padding: Must be zero.
 */
struct kvmi_vm_control_cleanup {
	__u8 enable;
	__u8 padding[7];
};

/**
 * struct kvmi_vcpu_control_singlestep - The
 *	``KVMI_VCPU_CONTROL_SINGLESTEP`` request, after &struct kvmi_vcpu_hdr.
 * @enable: 1 to start single-stepping the vCPU, 0 to stop.
 * @padding: Must be zero.
 */
struct kvmi_vcpu_control_singlestep {
	__u8 enable;
	__u8 padding[7];
};

/**
 * struct kvmi_vcpu_event_singlestep - The payload of
 *	``KVMI_VCPU_EVENT_SINGLESTEP``.
 * @failed: 0 when the vCPU completed one instruction, 1 when the step was
 *	cut short (see Documentation/virt/kvm/kvmi.rst).
 * @padding: Zero.
 */
struct kvmi_vcpu_event_singlestep {
	__u8 failed;
	__u8 padding[7];
};

/**
 * struct kvmi_vcpu_translate_gva - The ``KVMI_VCPU_TRANSLATE_GVA`` request,
 *	after &struct kvmi_vcpu_hdr.
 * @gva: The guest virtual address.
 */
struct kvmi_vcpu_translate_gva {
	__u64 gva;
};

/**
 * struct kvmi_vcpu_translate_gva_reply - The reply to
 *	``KVMI_VCPU_TRANSLATE_GVA``.
 * @gpa: The guest physical address that @gva maps to, or ~0 when the
 *	guest page tables do not map @gva.
 */
struct kvmi_vcpu_translate_gva_reply {
	__u64 gpa;
};

/**
 * struct kvmi_page_access_entry - One entry of ``KVMI_VM_SET_PAGE_ACCESS``.
 * @gpa: A guest physical address in the page to restrict.
 * @access: The accesses that the guest may make to the page
 *	(``KVMI_PAGE_ACCESS_*``); all three lift the restriction.
 * @padding: Must be zero.
 */
struct kvmi_page_access_entry {
	__u64 gpa;
	__u8 access;
	__u8 padding[7];
};

/**
 * struct kvmi_vm_set_page_access - The ``KVMI_VM_SET_PAGE_ACCESS`` request.
 * @count: The number of entries.
 * @padding1: Must be zero.
 * @padding2: Must be zero.
 * @entries: The pages and their access.
 */
struct kvmi_vm_set_page_access {
	__u16 count;
	__u16 padding1;
	__u32 padding2;
	struct kvmi_page_access_entry entries[];
};

/**
 * struct kvmi_vcpu_event_pf - The payload of ``KVMI_VCPU_EVENT_PF``.
 * @gva: The guest virtual address of the access, or ~0 when the CPU does
 *	not report it.
 * @gpa: The guest physical address of the access.
 * @access: The access that the restriction forbids: one of
 *	``KVMI_PAGE_ACCESS_R``, ``_W`` or ``_X``.
 * @padding1: Zero.
 * @padding2: Zero.
 * @padding3: Zero.
 */
struct kvmi_vcpu_event_pf {
	__u64 gva;
	__u64 gpa;
	__u8 access;
	__u8 padding1;
	__u16 padding2;
	__u32 padding3;
};

/**
 * struct kvmi_vm_get_max_gfn_reply - The reply to ``KVMI_VM_GET_MAX_GFN``.
 * @gfn: The highest guest frame number backed by a memslot.
 */
struct kvmi_vm_get_max_gfn_reply {
	__u64 gfn;
};

#endif /* _UAPI__LINUX_KVMI_H */
