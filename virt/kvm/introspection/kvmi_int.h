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
 * @sock_lock: Serializes the messages written to @sock, so that replies
 *	and events never interleave.
 * @ev_seq: The sequence number of the last event sent.
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

	struct mutex sock_lock;	/* protects writes to sock */

	atomic_t ev_seq;

	DECLARE_BITMAP(cmd_allow_mask, KVMI_NUM_COMMANDS);
	DECLARE_BITMAP(event_allow_mask, KVMI_NUM_EVENTS);
	DECLARE_BITMAP(vm_event_enable_mask, KVMI_NUM_EVENTS);
};

/* kvmi.c */
struct kvm_introspection *kvmi_get(struct kvm *kvm);
void kvmi_put(struct kvm_introspection *kvmi);
bool kvmi_is_command_allowed(struct kvm_introspection *kvmi, u16 id);
bool kvmi_is_event_allowed(struct kvm_introspection *kvmi, u16 id);
bool kvmi_is_known_event(u16 id);
bool kvmi_is_known_vm_event(u16 id);
int kvmi_cmd_vm_control_events(struct kvm_introspection *kvmi,
			       u16 event_id, bool enable);
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

/* arch */
void kvmi_arch_init_features(struct kvmi_features *feat);

#endif /* __KVMI_INT_H */
