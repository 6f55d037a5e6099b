// SPDX-License-Identifier: GPL-2.0
/*
 * KVM introspection: hooking, unhooking and the allow-lists.
 *
 * Teardown
 * --------
 *
 * kvm->kvmi is set by KVM_INTROSPECTION_HOOK and cleared by kvmi_unhook(),
 * both under kvm->kvmi_lock.  Four things can end a connection, in any
 * order and at the same time:
 *
 *  - the tool closes its end of the socket,
 *  - the receiving thread meets a protocol error,
 *  - KVM_INTROSPECTION_UNHOOK,
 *  - the destruction of the VM.
 *
 * The first two only end the *connection*: the receiving thread shuts the
 * socket down (SHUT_RDWR) and returns.  Every later send fails at once.
 * The state stays allocated, and kvm->kvmi stays set, until one of the
 * last two runs kvmi_unhook(), so a new HOOK gets -EEXIST until then.
 *
 * kvmi_unhook() runs under kvm->kvmi_lock and
 *
 *  1. shuts the socket down, which wakes the receiving thread and any
 *     sender blocked on the socket,
 *  2. stops and reaps the receiving thread (kthread_stop_put(); the
 *     thread may have returned already, the hook holds a reference to its
 *     task_struct),
 *  3. clears kvm->kvmi and waits for an RCU grace period, after which
 *     kvmi_get() can no longer find the state,
 *  4. drops the hook's reference and waits for the users that took one
 *     with kvmi_get() (they fail fast, since the socket is shut down),
 *  5. releases the socket and frees the state.
 *
 * The receiving thread never takes kvm->kvmi_lock, so step 2 cannot
 * deadlock.  It does not hold a reference to the VM either: the VM cannot
 * be destroyed before kvmi_destroy_vm() has stopped the thread.
 */

#include <linux/kthread.h>
#include <linux/mmu_context.h>
#include <linux/net.h>
#include <linux/sched/mm.h>
#include "kvmi_int.h"

static bool enable_introspection;
module_param_named(introspection, enable_introspection, bool, 0444);
MODULE_PARM_DESC(introspection, "Allow KVM introspection (KVMI)");

/* The commands that the device manager cannot disallow. */
static const u16 kvmi_always_allowed_commands[] = {
	KVMI_GET_VERSION,
	KVMI_VM_CHECK_COMMAND,
	KVMI_VM_CHECK_EVENT,
};

int kvmi_init(void)
{
	return kvmi_msg_init();
}

void kvmi_uninit(void)
{
	kvmi_msg_uninit();
}

void kvmi_create_vm(struct kvm *kvm)
{
	mutex_init(&kvm->kvmi_lock);
	RCU_INIT_POINTER(kvm->kvmi, NULL);
}

int kvmi_check_extension(void)
{
	return enable_introspection ? KVMI_VERSION : 0;
}

static struct kvm_introspection *kvmi_locked(struct kvm *kvm)
{
	return rcu_dereference_protected(kvm->kvmi,
					 lockdep_is_held(&kvm->kvmi_lock));
}

/**
 * kvmi_get() - Take a reference to the introspection state of a VM.
 * @kvm: The VM.
 *
 * Return: the state, or NULL when the VM is not hooked or is being
 * unhooked.  A non-NULL result must be released with kvmi_put().
 */
struct kvm_introspection *kvmi_get(struct kvm *kvm)
{
	struct kvm_introspection *kvmi;

	rcu_read_lock();
	kvmi = rcu_dereference(kvm->kvmi);
	if (kvmi && !refcount_inc_not_zero(&kvmi->users))
		kvmi = NULL;
	rcu_read_unlock();

	return kvmi;
}

void kvmi_put(struct kvm_introspection *kvmi)
{
	if (refcount_dec_and_test(&kvmi->users))
		complete(&kvmi->released);
}

static bool kvmi_is_always_allowed_command(u16 id)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(kvmi_always_allowed_commands); i++)
		if (kvmi_always_allowed_commands[i] == id)
			return true;

	return false;
}

bool kvmi_is_command_allowed(struct kvm_introspection *kvmi, u16 id)
{
	return id < KVMI_NUM_COMMANDS && test_bit(id, kvmi->cmd_allow_mask);
}

bool kvmi_is_event_allowed(struct kvm_introspection *kvmi, u16 id)
{
	return id < KVMI_NUM_EVENTS && test_bit(id, kvmi->event_allow_mask);
}

bool kvmi_is_known_vm_event(u16 id)
{
	return id == KVMI_VM_EVENT_UNHOOK;
}

bool kvmi_is_known_event(u16 id)
{
	return kvmi_is_known_vm_event(id);
}

static struct kvm_introspection *
kvmi_alloc(struct kvm *kvm, struct socket *sock, const u8 *uuid)
{
	struct kvm_introspection *kvmi;
	int i;

	kvmi = kzalloc(sizeof(*kvmi), GFP_KERNEL_ACCOUNT);
	if (!kvmi)
		return NULL;

	kvmi->kvm = kvm;
	kvmi->sock = sock;
	import_uuid(&kvmi->uuid, uuid);
	refcount_set(&kvmi->users, 1);
	init_completion(&kvmi->released);
	mutex_init(&kvmi->sock_lock);
	atomic_set(&kvmi->ev_seq, 0);

	for (i = 0; i < ARRAY_SIZE(kvmi_always_allowed_commands); i++)
		set_bit(kvmi_always_allowed_commands[i], kvmi->cmd_allow_mask);

	return kvmi;
}

static void kvmi_free(struct kvm_introspection *kvmi)
{
	sockfd_put(kvmi->sock);
	kfree(kvmi);
}

static int kvmi_recv_thread(void *arg)
{
	struct kvm_introspection *kvmi = arg;

	while (kvmi_msg_process(kvmi))
		;

	/*
	 * The connection is over: make every sender fail fast.  The state
	 * is freed by kvmi_unhook().
	 */
	kvmi_sock_shutdown(kvmi);
	return 0;
}

static int kvmi_hook(struct kvm *kvm, const struct kvm_introspection_hook *hook)
{
	struct kvm_introspection *kvmi;
	struct socket *sock;
	int err;

	lockdep_assert_held(&kvm->kvmi_lock);

	if (kvmi_locked(kvm))
		return -EEXIST;

	sock = sockfd_lookup(hook->fd, &err);
	if (!sock)
		return -EINVAL;

	kvmi = kvmi_alloc(kvm, sock, hook->uuid);
	if (!kvmi) {
		sockfd_put(sock);
		return -ENOMEM;
	}

	kvmi->recv = kthread_create(kvmi_recv_thread, kvmi, "kvmi-recv");
	if (IS_ERR(kvmi->recv)) {
		kvmi_free(kvmi);
		return -ENOMEM;
	}
	get_task_struct(kvmi->recv);

	rcu_assign_pointer(kvm->kvmi, kvmi);
	wake_up_process(kvmi->recv);

	return 0;
}

static int kvmi_ioctl_hook(struct kvm *kvm, void __user *argp)
{
	struct kvm_introspection_hook hook;
	int err;

	if (copy_from_user(&hook, argp, sizeof(hook)))
		return -EFAULT;

	if (hook.padding)
		return -EINVAL;

	mutex_lock(&kvm->kvmi_lock);
	err = kvmi_hook(kvm, &hook);
	mutex_unlock(&kvm->kvmi_lock);

	return err;
}

/* See the teardown comment at the top of this file. */
static void kvmi_unhook(struct kvm *kvm)
{
	struct kvm_introspection *kvmi;

	mutex_lock(&kvm->kvmi_lock);

	kvmi = kvmi_locked(kvm);
	if (!kvmi)
		goto out;

	kvmi_sock_shutdown(kvmi);
	kthread_stop_put(kvmi->recv);

	RCU_INIT_POINTER(kvm->kvmi, NULL);
	synchronize_rcu();

	kvmi_put(kvmi);
	wait_for_completion(&kvmi->released);

	kvmi_free(kvmi);
out:
	mutex_unlock(&kvm->kvmi_lock);
}

void kvmi_destroy_vm(struct kvm *kvm)
{
	kvmi_unhook(kvm);
}

static int kvmi_allow(unsigned long *mask, unsigned int nbits,
		      const struct kvm_introspection_feature *feat,
		      bool (*always_allowed)(u16 id))
{
	unsigned int id;

	if (feat->allow > 1 || feat->id < -1 || feat->id >= (int)nbits)
		return -EINVAL;

	if (feat->id >= 0) {
		if (!feat->allow && always_allowed && always_allowed(feat->id))
			return -EPERM;
		assign_bit(feat->id, mask, feat->allow);
		return 0;
	}

	for (id = 0; id < nbits; id++)
		if (feat->allow || !always_allowed || !always_allowed(id))
			assign_bit(id, mask, feat->allow);

	return 0;
}

static int kvmi_ioctl_feature(struct kvm *kvm, void __user *argp,
			      bool command)
{
	struct kvm_introspection_feature feat;
	struct kvm_introspection *kvmi;
	int err;

	if (copy_from_user(&feat, argp, sizeof(feat)))
		return -EFAULT;

	mutex_lock(&kvm->kvmi_lock);

	kvmi = kvmi_locked(kvm);
	if (!kvmi)
		err = -EFAULT;
	else if (command)
		err = kvmi_allow(kvmi->cmd_allow_mask, KVMI_NUM_COMMANDS, &feat,
				 kvmi_is_always_allowed_command);
	else
		err = kvmi_allow(kvmi->event_allow_mask, KVMI_NUM_EVENTS, &feat,
				 NULL);

	mutex_unlock(&kvm->kvmi_lock);

	return err;
}

static int kvmi_ioctl_preunhook(struct kvm *kvm)
{
	struct kvm_introspection *kvmi;
	int err = -ENOENT;

	kvmi = kvmi_get(kvm);
	if (!kvmi)
		return -EFAULT;

	if (test_bit(KVMI_VM_EVENT_UNHOOK, kvmi->vm_event_enable_mask) &&
	    kvmi_is_event_allowed(kvmi, KVMI_VM_EVENT_UNHOOK) &&
	    !kvmi_msg_send_vm_event(kvmi, KVMI_VM_EVENT_UNHOOK))
		err = 0;

	kvmi_put(kvmi);

	return err;
}

long kvmi_vm_ioctl(struct kvm *kvm, unsigned int ioctl, void __user *argp)
{
	if (!enable_introspection)
		return -EPERM;

	switch (ioctl) {
	case KVM_INTROSPECTION_HOOK:
		return kvmi_ioctl_hook(kvm, argp);
	case KVM_INTROSPECTION_UNHOOK:
		kvmi_unhook(kvm);
		return 0;
	case KVM_INTROSPECTION_COMMAND:
		return kvmi_ioctl_feature(kvm, argp, true);
	case KVM_INTROSPECTION_EVENT:
		return kvmi_ioctl_feature(kvm, argp, false);
	case KVM_INTROSPECTION_PREUNHOOK:
		return kvmi_ioctl_preunhook(kvm);
	}

	return -ENOTTY;
}

int kvmi_cmd_vm_control_events(struct kvm_introspection *kvmi,
			       u16 event_id, bool enable)
{
	assign_bit(event_id, kvmi->vm_event_enable_mask, enable);
	return 0;
}

/*
 * Guest memory is accessed from the receiving thread, which borrows the
 * address space of the VM for the duration of one access.  It must not
 * pin it for longer: the address space may hold the last reference to
 * the VM (e.g. through a mapping of a vCPU file).
 */
static int kvmi_access_guest(struct kvm *kvm, u64 gpa, void *buf,
			     size_t size, bool write)
{
	struct mm_struct *mm = kvm->mm;
	gfn_t gfn = gpa_to_gfn(gpa);
	int offset = offset_in_page(gpa);
	int idx, err = -KVM_ENOENT;

	if (!mmget_not_zero(mm))
		return -KVM_ENOENT;

	kthread_use_mm(mm);
	idx = srcu_read_lock(&kvm->srcu);

	if (!write) {
		if (!kvm_read_guest_page(kvm, gfn, buf, offset, size))
			err = 0;
	} else {
		struct kvm_memory_slot *slot = gfn_to_memslot(kvm, gfn);
		bool writable;
		unsigned long hva;

		/*
		 * Not kvm_write_guest(): there is no running vCPU to charge
		 * the dirty page to.  Without a dirty ring (see
		 * kvmi_cmd_write_physical()), the dirty bitmap is enough.
		 */
		hva = gfn_to_hva_memslot_prot(slot, gfn, &writable);
		if (!kvm_is_error_hva(hva) && writable &&
		    !__copy_to_user((void __user *)hva + offset, buf, size)) {
			if (kvm_slot_dirty_track_enabled(slot) &&
			    slot->dirty_bitmap)
				set_bit_le(gfn - slot->base_gfn,
					   slot->dirty_bitmap);
			err = 0;
		}
	}

	srcu_read_unlock(&kvm->srcu, idx);
	kthread_unuse_mm(mm);
	mmput(mm);

	return err;
}

int kvmi_cmd_read_physical(struct kvm *kvm, u64 gpa, void *buf, size_t size)
{
	return kvmi_access_guest(kvm, gpa, buf, size, false);
}

int kvmi_cmd_write_physical(struct kvm *kvm, u64 gpa, const void *buf,
			    size_t size)
{
	/* A dirty ring needs a vCPU to record the write. */
	if (READ_ONCE(kvm->dirty_ring_size))
		return -KVM_EOPNOTSUPP;

	return kvmi_access_guest(kvm, gpa, (void *)buf, size, true);
}
