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
 * The first two only end the *connection*: the receiving thread calls
 * kvmi_sock_shutdown() and returns.  That shuts the socket down (SHUT_RDWR),
 * so every later send fails at once, sets kvmi->closed and wakes up every
 * vCPU that waits for an event reply: such a vCPU stops waiting and goes on
 * as if the tool had not been there.  The state stays allocated, and
 * kvm->kvmi stays set, until one of the last two runs kvmi_unhook(), so a
 * new HOOK gets -EEXIST until then.
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
 *     with kvmi_get() (they fail fast, since the socket is shut down): the
 *     ioctls and the vCPU threads, which hold a reference while they send
 *     an event and wait for its reply,
 *  5. frees the per-vCPU states (vcpu->kvmi) with their pending jobs,
 *     asks every vCPU to stop single-stepping, to drop an exception that
 *     the tool injected and, unless the tool turned the cleanup off
 *     (KVMI_VM_CONTROL_CLEANUP), to give back the interceptions that
 *     introspection turned on, and kicks it: each vCPU does it on its own
 *     thread, before it enters the guest again and before it runs the
 *     commands of a later session (kvmi_handle_requests()), so a new HOOK
 *     need not wait for it,
 *  6. lifts every page access restriction (they are the VM's, not the
 *     vCPUs', and go whatever the cleanup setting),
 *  7. releases the socket and frees the state.
 *
 * vcpu->kvmi is allocated by the receiving thread only, and read by the
 * vCPU thread only while it holds a reference, so step 5 cannot race with
 * either.
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
	kvmi_arch_create_vm(kvm);
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

bool kvmi_is_known_vcpu_event(u16 id)
{
	switch (id) {
	case KVMI_VCPU_EVENT_PAUSE:
	case KVMI_VCPU_EVENT_HYPERCALL:
	case KVMI_VCPU_EVENT_BREAKPOINT:
	case KVMI_VCPU_EVENT_CR:
	case KVMI_VCPU_EVENT_TRAP:
	case KVMI_VCPU_EVENT_XSETBV:
	case KVMI_VCPU_EVENT_DESCRIPTOR:
	case KVMI_VCPU_EVENT_MSR:
	case KVMI_VCPU_EVENT_PF:
	case KVMI_VCPU_EVENT_SINGLESTEP:
		return true;
	}

	return false;
}

/*
 * The events that follow a command of the tool (PAUSE_VCPU,
 * INJECT_EXCEPTION, CONTROL_SINGLESTEP) are sent whether or not the tool
 * enabled them with KVMI_VCPU_CONTROL_EVENTS.
 */
static bool kvmi_is_requested_event(u16 id)
{
	return id == KVMI_VCPU_EVENT_PAUSE || id == KVMI_VCPU_EVENT_TRAP ||
	       id == KVMI_VCPU_EVENT_SINGLESTEP;
}

bool kvmi_is_known_event(u16 id)
{
	return kvmi_is_known_vm_event(id) || kvmi_is_known_vcpu_event(id);
}

struct kvm_vcpu *kvmi_get_vcpu(struct kvm_introspection *kvmi,
			       unsigned int idx)
{
	struct kvm *kvm = kvmi->kvm;

	if (idx >= atomic_read(&kvm->online_vcpus))
		return NULL;

	return kvm_get_vcpu(kvm, idx);
}

/*
 * Called by the receiving thread only, which is the only one that
 * allocates the per-vCPU state.
 */
struct kvm_vcpu_introspection *kvmi_vcpu_state(struct kvm_vcpu *vcpu)
{
	struct kvm_vcpu_introspection *vcpui = VCPUI(vcpu);

	if (vcpui)
		return vcpui;

	vcpui = kzalloc(sizeof(*vcpui), GFP_KERNEL_ACCOUNT);
	if (!vcpui)
		return NULL;

	INIT_LIST_HEAD(&vcpui->job_list);
	spin_lock_init(&vcpui->job_lock);
	init_waitqueue_head(&vcpui->wq);
	atomic_set(&vcpui->pause_requests, 0);

	/* Pairs with the READ_ONCE() in VCPUI(). */
	smp_store_release(&vcpu->kvmi, vcpui);

	return vcpui;
}

struct kvmi_job {
	struct list_head link;
	struct kvmi_msg_hdr *msg;
};

/* Make the vCPU look at its introspection requests, even if it halted. */
static void kvmi_kick_vcpu(struct kvm_vcpu *vcpu, bool wait)
{
	kvm_make_request(KVM_REQ_INTROSPECTION, vcpu);
	kvm_make_request(KVM_REQ_UNBLOCK, vcpu);

	if (wait) {
		unsigned long *mask = bitmap_zalloc(KVM_MAX_VCPUS, GFP_KERNEL);

		if (mask) {
			__set_bit(vcpu->vcpu_idx, mask);
			kvm_make_vcpus_request_mask(vcpu->kvm,
						    KVM_REQ_INTROSPECTION |
						    KVM_REQUEST_WAIT, mask);
			bitmap_free(mask);
			return;
		}
	}

	kvm_vcpu_kick(vcpu);
}

/**
 * kvmi_add_job() - Queue a message for a vCPU.
 * @vcpu: The vCPU.
 * @msg: The message, which the job now owns.
 *
 * Return: 0, or -ENOMEM.
 */
int kvmi_add_job(struct kvm_vcpu *vcpu, struct kvmi_msg_hdr *msg)
{
	struct kvm_vcpu_introspection *vcpui = kvmi_vcpu_state(vcpu);
	struct kvmi_job *job;

	if (!vcpui)
		return -ENOMEM;

	job = kmalloc(sizeof(*job), GFP_KERNEL_ACCOUNT);
	if (!job)
		return -ENOMEM;

	job->msg = msg;

	spin_lock(&vcpui->job_lock);
	list_add_tail(&job->link, &vcpui->job_list);
	spin_unlock(&vcpui->job_lock);

	wake_up(&vcpui->wq);
	kvmi_kick_vcpu(vcpu, false);

	return 0;
}

static struct kvmi_job *kvmi_pull_job(struct kvm_vcpu_introspection *vcpui)
{
	struct kvmi_job *job;

	spin_lock(&vcpui->job_lock);
	job = list_first_entry_or_null(&vcpui->job_list, typeof(*job), link);
	if (job)
		list_del(&job->link);
	spin_unlock(&vcpui->job_lock);

	return job;
}

static void kvmi_free_job(struct kvmi_job *job)
{
	kvmi_msg_free(job->msg);
	kfree(job);
}

static void kvmi_run_jobs(struct kvm_introspection *kvmi,
			  struct kvm_vcpu *vcpu)
{
	struct kvm_vcpu_introspection *vcpui = VCPUI(vcpu);
	struct kvmi_job *job;

	/*
	 * Once the awaited reply is in, the jobs behind it wait for the vCPU
	 * to be done with the event.
	 */
	while (!(vcpui->waiting_for_reply && vcpui->reply.received) &&
	       (job = kvmi_pull_job(vcpui))) {
		kvmi_msg_run_vcpu_job(kvmi, vcpu, job->msg);
		kvmi_free_job(job);
	}
}

static void kvmi_free_vcpu_state(struct kvm_vcpu *vcpu)
{
	struct kvm_vcpu_introspection *vcpui = VCPUI(vcpu);
	struct kvmi_job *job;

	if (!vcpui)
		return;

	while ((job = kvmi_pull_job(vcpui)))
		kvmi_free_job(job);

	WRITE_ONCE(vcpu->kvmi, NULL);
	kfree(vcpui);
}

void kvmi_wake_up_vcpus(struct kvm_introspection *kvmi)
{
	struct kvm_vcpu_introspection *vcpui;
	struct kvm_vcpu *vcpu;
	unsigned long i;

	kvm_for_each_vcpu(i, vcpu, kvmi->kvm) {
		vcpui = VCPUI(vcpu);
		if (vcpui) {
			atomic_set(&vcpui->pause_requests, 0);
			wake_up(&vcpui->wq);
		}
	}
}

int kvmi_cmd_vm_pause_vcpu(struct kvm_vcpu *vcpu, bool wait)
{
	struct kvm_vcpu_introspection *vcpui = kvmi_vcpu_state(vcpu);

	if (!vcpui)
		return -KVM_ENOMEM;

	if (atomic_read(&vcpui->pause_requests) >= KVMI_MAX_PAUSE_REQUESTS)
		return -KVM_EBUSY;

	atomic_inc(&vcpui->pause_requests);
	kvmi_kick_vcpu(vcpu, wait);

	return 0;
}

int kvmi_cmd_vcpu_control_events(struct kvm_vcpu *vcpu, u16 event_id,
				 bool enable)
{
	int err;

	err = kvmi_arch_control_event(vcpu, event_id, enable);
	if (!err)
		assign_bit(event_id, VCPUI(vcpu)->ev_enable_mask, enable);

	return err;
}

/*
 * The CRASH action of an event reply: the vCPU leaves KVM_RUN with the
 * crash exit before it enters the guest again.  The handler that sent the
 * event finishes first (without performing what the event was about) and
 * kvmi_handle_requests() ends the run.
 */
static void kvmi_crash(struct kvm_vcpu *vcpu)
{
	VCPUI(vcpu)->crash = true;
	kvm_make_request(KVM_REQ_INTROSPECTION, vcpu);
}

static int kvmi_crash_exit(struct kvm_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	VCPUI(vcpu)->crash = false;

	run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
	run->system_event.type = KVM_SYSTEM_EVENT_CRASH;
	run->system_event.ndata = 1;
	run->system_event.data[0] = KVMI_CRASH_SYSTEM_EVENT_DATA;

	return 0;
}

static bool kvmi_wait_done(struct kvm_introspection *kvmi,
			   struct kvm_vcpu_introspection *vcpui)
{
	return READ_ONCE(kvmi->closed) || !list_empty_careful(&vcpui->job_list);
}

/*
 * Run the jobs of the vCPU until the reply arrives (it comes as a job
 * too), the connection is closed or the task is killed.  The vCPU does not
 * hold kvm->srcu while it sleeps, so that memslot updates can go on.
 */
static void kvmi_wait_for_reply(struct kvm_introspection *kvmi,
				struct kvm_vcpu *vcpu)
	__must_hold(&vcpu->kvm->srcu)
{
	struct kvm_vcpu_introspection *vcpui = VCPUI(vcpu);
	int err;

	for (;;) {
		kvmi_run_jobs(kvmi, vcpu);

		if (vcpui->reply.received || READ_ONCE(kvmi->closed))
			break;

		kvm_vcpu_srcu_read_unlock(vcpu);
		err = wait_event_killable(vcpui->wq, kvmi_wait_done(kvmi, vcpui));
		kvm_vcpu_srcu_read_lock(vcpu);

		if (err)
			break;
	}
}

/*
 * Send an event and wait for its reply.  Return the action of a valid
 * reply, or KVMI_EVENT_NO_REPLY.  @actions is the mask of the actions that
 * the event accepts; any other is a protocol error.
 */
static int __kvmi_send_vcpu_event(struct kvm_introspection *kvmi,
				  struct kvm_vcpu *vcpu, u16 event_id,
				  const void *payload, size_t payload_size,
				  void *rpl, size_t rpl_size, u32 actions)
{
	struct kvm_vcpu_introspection *vcpui = VCPUI(vcpu);
	u32 seq = atomic_inc_return(&kvmi->ev_seq);
	int action = KVMI_EVENT_NO_REPLY;

	vcpui->reply = (struct kvmi_vcpu_reply) {
		.seq = seq,
		.event = event_id,
		.data = rpl,
		.data_size = rpl_size,
	};
	vcpui->have_delayed_regs = false;
	WRITE_ONCE(vcpui->waiting_for_reply, true);

	if (kvmi_msg_send_vcpu_event(kvmi, vcpu, seq, event_id, payload,
				     payload_size))
		kvmi_sock_shutdown(kvmi);
	else
		kvmi_wait_for_reply(kvmi, vcpu);

	WRITE_ONCE(vcpui->waiting_for_reply, false);

	if (!vcpui->reply.received)
		return KVMI_EVENT_NO_REPLY;

	if (!(actions & BIT(vcpui->reply.action))) {
		kvmi_warn_ratelimited(kvmi, "action %u not valid for event %u\n",
				      vcpui->reply.action, event_id);
		kvmi_sock_shutdown(kvmi);
		return KVMI_EVENT_NO_REPLY;
	}

	action = vcpui->reply.action;
	if (action == KVMI_EVENT_ACTION_CRASH)
		kvmi_crash(vcpu);

	if (vcpui->have_delayed_regs) {
		vcpui->have_delayed_regs = false;
		kvmi_arch_set_regs(vcpu, &vcpui->delayed_regs);
	}

	return action;
}

/**
 * kvmi_send_vcpu_event() - Send an event, if the tool enabled it.
 * @vcpu: The vCPU that sends the event.
 * @event_id: The event id.
 * @payload: The event-specific data.
 * @payload_size: The size of @payload.
 * @rpl: Where the event-specific part of the reply goes, or NULL.
 * @rpl_size: The size of @rpl.
 * @actions: The mask of the actions that the event accepts.
 *
 * Return: the action of the reply, or KVMI_EVENT_NO_REPLY when the event
 * was not sent or no valid reply came, in which case @rpl is untouched.
 * After KVMI_EVENT_ACTION_CRASH, the caller only has to skip what the
 * event was about: the vCPU leaves KVM_RUN before it enters the guest.
 */
int kvmi_send_vcpu_event(struct kvm_vcpu *vcpu, u16 event_id,
			 const void *payload, size_t payload_size,
			 void *rpl, size_t rpl_size, u32 actions)
{
	struct kvm_vcpu_introspection *vcpui;
	struct kvm_introspection *kvmi;
	int action = KVMI_EVENT_NO_REPLY;

	kvmi = kvmi_get(vcpu->kvm);
	if (!kvmi)
		return action;

	vcpui = VCPUI(vcpu);
	if (vcpui && (kvmi_is_requested_event(event_id) ||
		      test_bit(event_id, vcpui->ev_enable_mask)))
		action = __kvmi_send_vcpu_event(kvmi, vcpu, event_id, payload,
						payload_size, rpl, rpl_size,
						actions);

	kvmi_put(kvmi);

	return action;
}

static void kvmi_send_pause_events(struct kvm_introspection *kvmi,
				   struct kvm_vcpu *vcpu)
{
	struct kvm_vcpu_introspection *vcpui = VCPUI(vcpu);

	/*
	 * A vCPU that is being killed cannot wait for replies.  After a
	 * CRASH, the rest waits for the next KVM_RUN.
	 */
	while (!vcpui->crash && !fatal_signal_pending(current) &&
	       atomic_dec_if_positive(&vcpui->pause_requests) >= 0) {
		__kvmi_send_vcpu_event(kvmi, vcpu, KVMI_VCPU_EVENT_PAUSE,
				       NULL, 0, NULL, 0,
				       BIT(KVMI_EVENT_ACTION_CONTINUE) |
				       BIT(KVMI_EVENT_ACTION_CRASH));
	}
}

/**
 * kvmi_handle_requests() - Handle KVM_REQ_INTROSPECTION.
 * @vcpu: The vCPU, on its own thread, within kvm->srcu.
 *
 * First give back the interceptions of a session that ended, if
 * kvmi_unhook() asked for it, then run the queued jobs, the arch work that must
 * happen before the next guest entry (an exception to inject, ...) and
 * send the PAUSE events.
 *
 * Return: 1 to go on, 0 to return to userspace (after a CRASH action).
 */
int kvmi_handle_requests(struct kvm_vcpu *vcpu)
{
	struct kvm_vcpu_introspection *vcpui;
	struct kvm_introspection *kvmi;
	int r = 1;

	kvmi_arch_finish_unhook(vcpu);

	kvmi = kvmi_get(vcpu->kvm);
	if (!kvmi)
		return r;

	vcpui = VCPUI(vcpu);
	if (vcpui) {
		kvmi_run_jobs(kvmi, vcpu);
		kvmi_arch_handle_requests(vcpu);
		kvmi_send_pause_events(kvmi, vcpu);
		if (vcpui->crash)
			r = kvmi_crash_exit(vcpu);
	}

	kvmi_put(kvmi);
	return r;
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
	kvmi->cleanup = true;

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
	struct kvm_vcpu *vcpu;
	unsigned long i;

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

	kvm_for_each_vcpu(i, vcpu, kvm) {
		kvmi_free_vcpu_state(vcpu);
		kvmi_arch_request_restore(vcpu, kvmi->cleanup);
		kvmi_kick_vcpu(vcpu, false);
	}

	kvmi_arch_unhook(kvm);

	kvmi_free(kvmi);
out:
	mutex_unlock(&kvm->kvmi_lock);
}

void kvmi_destroy_vm(struct kvm *kvm)
{
	kvmi_unhook(kvm);
	kvmi_arch_destroy_vm(kvm);
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

void kvmi_cmd_vm_control_cleanup(struct kvm_introspection *kvmi, bool enable)
{
	/* Read by kvmi_unhook(), after the receiving thread has stopped. */
	kvmi->cleanup = enable;
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
