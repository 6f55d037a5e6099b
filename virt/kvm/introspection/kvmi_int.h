/* SPDX-License-Identifier: GPL-2.0 */
#ifndef __KVMI_INT_H
#define __KVMI_INT_H

/*
 * KVM introspection: the declarations shared by the lifecycle code
 * (kvmi.c), the socket code (kvmi_msg.c) and the arch code.
 */

#include <linux/kvm_host.h>
#include <linux/kvmi_host.h>
#include <linux/uuid.h>
#include <uapi/linux/kvmi.h>

/* The sizes of the allow-lists, indexed by wire id. */
#define KVMI_NUM_COMMANDS \
	MAX((unsigned int)KVMI_NEXT_VM_MESSAGE, \
	    (unsigned int)KVMI_NEXT_VCPU_MESSAGE)
#define KVMI_NUM_EVENTS \
	MAX((unsigned int)KVMI_NEXT_VM_EVENT, (unsigned int)KVMI_NEXT_VCPU_EVENT)

/* The most pause requests that can be pending on one vCPU. */
#define KVMI_MAX_PAUSE_REQUESTS 1001

/* What kvmi_send_vcpu_event() returns when no valid reply came. */
#define KVMI_EVENT_NO_REPLY (-1)

#define kvmi_warn_ratelimited(kvmi, fmt, ...)				\
	pr_warn_ratelimited("kvmi: %pUb: " fmt, &(kvmi)->uuid, ##__VA_ARGS__)

/**
 * struct kvm_introspection - The state of one hooked VM.
 * @kvm: The introspected VM.
 * @sock: The connection to the introspection tool.
 * @recv: The receiving thread, "kvmi-recv".
 * @uuid: The VM uuid given by the device manager, used in log messages.
 * @users: One reference owned by the hook, plus one for every user of
 *	the connection outside kvm->kvmi_lock (see kvmi_get()).
 * @released: Completed when @users drops to zero.
 * @closed: Set when the connection is shut down.
 * @sock_lock: Serializes the messages written to @sock, so that replies
 *	and events never interleave.
 * @ev_seq: The sequence number of the last event sent.
 * @cleanup: Whether kvmi_unhook() undoes the interceptions that the tool
 *	turned on (KVMI_VM_CONTROL_CLEANUP).
 * @cmd_allow_mask: The commands that the device manager allows.
 * @event_allow_mask: The events that the device manager allows.
 * @vm_event_enable_mask: The VM events that the tool enabled.
 *
 * The bitmaps are written with atomic bit operations, the allow masks
 * under kvm->kvmi_lock, and read locklessly.
 */
struct kvm_introspection {
	struct kvm *kvm;
	struct socket *sock;
	struct task_struct *recv;
	uuid_t uuid;

	refcount_t users;
	struct completion released;

	bool closed;
	struct mutex sock_lock;	/* protects writes to sock */

	atomic_t ev_seq;
	bool cleanup;

	DECLARE_BITMAP(cmd_allow_mask, KVMI_NUM_COMMANDS);
	DECLARE_BITMAP(event_allow_mask, KVMI_NUM_EVENTS);
	DECLARE_BITMAP(vm_event_enable_mask, KVMI_NUM_EVENTS);
};

/**
 * struct kvmi_vcpu_reply - The reply that a vCPU waits for.
 * @seq: The sequence number of the event.
 * @event: The event id.
 * @received: Set when a valid reply has been received.
 * @action: The action of the reply.
 * @data: Where the event-specific part of the reply goes.
 * @data_size: Its size: a reply must carry exactly that many bytes after
 *	&struct kvmi_vcpu_event_reply.
 */
struct kvmi_vcpu_reply {
	u32 seq;
	u16 event;
	bool received;
	u8 action;
	void *data;
	size_t data_size;
};

/**
 * struct kvm_vcpu_introspection - The introspection state of a vCPU.
 * @job_list: The messages queued for the vCPU by the receiving thread.
 * @job_lock: Protects @job_list.
 * @wq: Where the vCPU waits for jobs while it waits for an event reply.
 * @pause_requests: The number of PAUSE events to send.
 * @ev_enable_mask: The events that the tool enabled on this vCPU.
 * @waiting_for_reply: Set while the vCPU waits for a reply.
 * @reply: The reply the vCPU waits for.
 * @crash: Set after a CRASH reply: the vCPU leaves KVM_RUN with the
 *	crash exit before it enters the guest again.
 * @have_delayed_regs: Set when @delayed_regs must be written.
 * @delayed_regs: Registers set by the tool, written after the reply.
 * @ev: The common part of the event being sent.
 *
 * It is allocated by the receiving thread, the first time the tool sends
 * something to the vCPU, and freed by kvmi_unhook().  Everything below
 * @ev_enable_mask is used by the vCPU thread only.
 */
struct kvm_vcpu_introspection {
	struct list_head job_list;
	spinlock_t job_lock;	/* protects job_list */
	wait_queue_head_t wq;

	atomic_t pause_requests;
	DECLARE_BITMAP(ev_enable_mask, KVMI_NUM_EVENTS);

	bool waiting_for_reply;
	struct kvmi_vcpu_reply reply;
	bool crash;

	bool have_delayed_regs;
	struct kvm_regs delayed_regs;

	struct kvmi_vcpu_event ev;
};

static inline struct kvm_vcpu_introspection *VCPUI(struct kvm_vcpu *vcpu)
{
	return READ_ONCE(vcpu->kvmi);
}

/* kvmi.c */
struct kvm_introspection *kvmi_get(struct kvm *kvm);
void kvmi_put(struct kvm_introspection *kvmi);
bool kvmi_is_command_allowed(struct kvm_introspection *kvmi, u16 id);
bool kvmi_is_event_allowed(struct kvm_introspection *kvmi, u16 id);
bool kvmi_is_known_event(u16 id);
bool kvmi_is_known_vm_event(u16 id);
bool kvmi_is_known_vcpu_event(u16 id);
struct kvm_vcpu *kvmi_get_vcpu(struct kvm_introspection *kvmi,
			       unsigned int idx);
struct kvm_vcpu_introspection *kvmi_vcpu_state(struct kvm_vcpu *vcpu);
int kvmi_add_job(struct kvm_vcpu *vcpu, struct kvmi_msg_hdr *msg);
int kvmi_cmd_vm_pause_vcpu(struct kvm_vcpu *vcpu, bool wait);
int kvmi_cmd_vcpu_control_events(struct kvm_vcpu *vcpu, u16 event_id,
				 bool enable);
void kvmi_wake_up_vcpus(struct kvm_introspection *kvmi);
int kvmi_send_vcpu_event(struct kvm_vcpu *vcpu, u16 event_id,
			 const void *payload, size_t payload_size,
			 void *rpl, size_t rpl_size, u32 actions);
int kvmi_cmd_vm_control_events(struct kvm_introspection *kvmi,
			       u16 event_id, bool enable);
void kvmi_cmd_vm_control_cleanup(struct kvm_introspection *kvmi, bool enable);
int kvmi_cmd_read_physical(struct kvm *kvm, u64 gpa, void *buf, size_t size);
int kvmi_cmd_write_physical(struct kvm *kvm, u64 gpa, const void *buf,
			    size_t size);

/* kvmi_msg.c */
int kvmi_msg_init(void);
void kvmi_msg_uninit(void);
bool kvmi_msg_process(struct kvm_introspection *kvmi);
void kvmi_sock_shutdown(struct kvm_introspection *kvmi);
int kvmi_msg_send_vm_event(struct kvm_introspection *kvmi, u16 event_id);
bool kvmi_is_known_command(u16 id);
void kvmi_msg_run_vcpu_job(struct kvm_introspection *kvmi,
			   struct kvm_vcpu *vcpu, struct kvmi_msg_hdr *msg);
int kvmi_msg_send_vcpu_event(struct kvm_introspection *kvmi,
			     struct kvm_vcpu *vcpu, u32 seq, u16 event_id,
			     const void *payload, size_t payload_size);
void kvmi_msg_free(void *addr);

/* arch */
void kvmi_arch_init_features(struct kvmi_features *feat);
void kvmi_arch_request_restore(struct kvm_vcpu *vcpu, bool interceptions);
void kvmi_arch_finish_unhook(struct kvm_vcpu *vcpu);
void kvmi_arch_handle_requests(struct kvm_vcpu *vcpu);
bool kvmi_arch_vcpu_alive(struct kvm_vcpu *vcpu);
void kvmi_arch_setup_vcpu_event(struct kvm_vcpu *vcpu,
				struct kvmi_vcpu_event_arch *ev);
int kvmi_arch_control_event(struct kvm_vcpu *vcpu, u16 event_id,
			    bool enable);
void kvmi_arch_set_regs(struct kvm_vcpu *vcpu, struct kvm_regs *regs);
int kvmi_arch_cmd_vcpu_get_info(struct kvm_vcpu *vcpu,
				struct kvmi_vcpu_get_info_reply *rpl);
int kvmi_arch_cmd_vcpu_get_registers(struct kvm_vcpu *vcpu,
				     const struct kvmi_vcpu_get_registers *req,
				     struct kvmi_vcpu_get_registers_reply *rpl);
int kvmi_arch_cmd_vcpu_get_cpuid(struct kvm_vcpu *vcpu,
				 const struct kvmi_vcpu_get_cpuid *req,
				 struct kvmi_vcpu_get_cpuid_reply *rpl);
int kvmi_arch_cmd_vcpu_control_cr(struct kvm_vcpu *vcpu, u8 cr, bool enable);
int kvmi_arch_cmd_vcpu_inject_exception(struct kvm_vcpu *vcpu,
					const struct kvmi_vcpu_inject_exception *r);
int kvmi_arch_cmd_vcpu_get_xcr(struct kvm_vcpu *vcpu, u8 xcr, u64 *value);
int kvmi_arch_cmd_vcpu_get_xsave(struct kvm_vcpu *vcpu,
				 struct kvmi_vcpu_get_xsave_reply *rpl);
int kvmi_arch_cmd_vcpu_set_xsave(struct kvm_vcpu *vcpu,
				 const struct kvmi_vcpu_set_xsave *req);
u8 kvmi_arch_cmd_vcpu_get_mtrr_type(struct kvm_vcpu *vcpu, u64 gpa);
int kvmi_arch_cmd_vcpu_control_msr(struct kvm_vcpu *vcpu, u32 msr,
				   bool enable);
int kvmi_arch_cmd_vcpu_control_singlestep(struct kvm_vcpu *vcpu,
					  bool enable);
u64 kvmi_arch_cmd_vcpu_translate_gva(struct kvm_vcpu *vcpu, u64 gva);
void kvmi_arch_create_vm(struct kvm *kvm);
void kvmi_arch_destroy_vm(struct kvm *kvm);
void kvmi_arch_unhook(struct kvm *kvm);
int kvmi_arch_cmd_set_page_access(struct kvm *kvm,
				  const struct kvmi_page_access_entry *entries,
				  unsigned int count);
u64 kvmi_arch_max_gfn(struct kvm *kvm);

#endif /* __KVMI_INT_H */
