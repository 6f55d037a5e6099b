// SPDX-License-Identifier: GPL-2.0
/*
 * KVM introspection: the socket.
 *
 * The receiving thread reads one message at a time into a buffer from
 * kvmi_msg_cache, zero-filled and large enough for the largest message,
 * so that a payload shorter than the structure a handler expects reads as
 * if its missing tail were zero.  The message id selects the handler from
 * a table indexed by id.  Every reply goes through kvmi_msg_reply() and
 * every event through kvmi_msg_send_vm_event() or kvmi_msg_send_vcpu_event().
 *
 * A VM command is run by the receiving thread.  A message for a vCPU (a
 * vCPU command or an event reply) passes the common checks of
 * kvmi_msg_dispatch_vcpu() and is queued, buffer and all, as a job for that
 * vCPU, which runs it with kvmi_msg_run_vcpu_job() and replies itself.
 *
 * A handler returns 0 when the connection can go on, or a negative errno
 * on a protocol error, after which the connection is closed.  The errors
 * meant for the tool (-KVM_E*) travel in the reply.
 */

#include <linux/net.h>
#include <linux/nospec.h>
#include <linux/string.h>
#include "kvmi_int.h"

#define KVMI_MSG_SIZE_ALLOC (sizeof(struct kvmi_msg_hdr) + KVMI_MAX_MSG_SIZE)

static struct kmem_cache *kvmi_msg_cache;

typedef int (*kvmi_vm_msg_fct)(struct kvm_introspection *kvmi,
			       const struct kvmi_msg_hdr *msg,
			       const void *req);

/* @req points after the struct kvmi_vcpu_hdr. */
typedef int (*kvmi_vcpu_msg_fct)(struct kvm_introspection *kvmi,
				 struct kvm_vcpu *vcpu,
				 const struct kvmi_msg_hdr *msg,
				 const void *req);

static void kvmi_check_abi(void)
{
	BUILD_BUG_ON(sizeof(struct kvmi_msg_hdr) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_error_code) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_features) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_get_version_reply) != 16);
	BUILD_BUG_ON(sizeof(struct kvmi_vm_check_command) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_vm_check_event) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_vm_get_info_reply) != 16);
	BUILD_BUG_ON(sizeof(struct kvmi_event_hdr) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_vm_control_events) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_vm_read_physical) != 16);
	BUILD_BUG_ON(sizeof(struct kvmi_vm_write_physical) != 16);
	BUILD_BUG_ON(sizeof(struct kvm_introspection_hook) != 24);
	BUILD_BUG_ON(sizeof(struct kvm_introspection_feature) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_hdr) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_vm_pause_vcpu) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_event) != 544);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_event_arch) != 536);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_event_reply) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_control_events) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_event_breakpoint) != 16);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_get_info_reply) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_get_registers) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_get_registers_reply) != 472);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_get_cpuid) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_get_cpuid_reply) != 16);
	BUILD_BUG_ON(sizeof(struct kvmi_vm_control_cleanup) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_control_cr) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_event_cr) != 24);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_event_cr_reply) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_event_trap) != 16);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_inject_exception) != 16);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_event_xsetbv) != 24);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_get_xcr) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_get_xcr_reply) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_get_xsave_reply) != 4096);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_set_xsave) != 4096);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_get_xsave_reply) !=
		     sizeof(struct kvm_xsave));
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_get_mtrr_type) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_get_mtrr_type_reply) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_event_descriptor) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_control_msr) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_event_msr) != 24);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_event_msr_reply) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_control_singlestep) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_event_singlestep) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_translate_gva) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_translate_gva_reply) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_page_access_entry) != 16);
	BUILD_BUG_ON(sizeof(struct kvmi_vm_set_page_access) != 8);
	BUILD_BUG_ON(sizeof(struct kvmi_vcpu_event_pf) != 24);
	BUILD_BUG_ON(sizeof(struct kvmi_vm_get_max_gfn_reply) != 8);
	BUILD_BUG_ON(KVMI_MSG_SIZE_ALLOC != 2 * PAGE_SIZE);
}

int kvmi_msg_init(void)
{
	kvmi_check_abi();

	kvmi_msg_cache = kmem_cache_create("kvmi_msg", KVMI_MSG_SIZE_ALLOC,
					   0, SLAB_ACCOUNT, NULL);
	return kvmi_msg_cache ? 0 : -ENOMEM;
}

void kvmi_msg_uninit(void)
{
	kmem_cache_destroy(kvmi_msg_cache);
	kvmi_msg_cache = NULL;
}

static void *kvmi_msg_alloc(void)
{
	return kmem_cache_zalloc(kvmi_msg_cache, GFP_KERNEL_ACCOUNT);
}

void kvmi_msg_free(void *addr)
{
	kmem_cache_free(kvmi_msg_cache, addr);
}

/*
 * End the connection: every later send fails and every vCPU that waits
 * for a reply stops waiting.  The state is freed by kvmi_unhook().
 */
void kvmi_sock_shutdown(struct kvm_introspection *kvmi)
{
	WRITE_ONCE(kvmi->closed, true);
	kernel_sock_shutdown(kvmi->sock, SHUT_RDWR);
	kvmi_wake_up_vcpus(kvmi);
}

static int kvmi_sock_read(struct kvm_introspection *kvmi, void *buf,
			  size_t size)
{
	struct kvec vec = { .iov_base = buf, .iov_len = size };
	struct msghdr m = { };
	int rc;

	rc = kernel_recvmsg(kvmi->sock, &m, &vec, 1, size, MSG_WAITALL);
	if (rc == size)
		return 0;

	return rc < 0 ? rc : -EPIPE;
}

static int kvmi_sock_write(struct kvm_introspection *kvmi, struct kvec *vec,
			   size_t n, size_t size)
{
	struct msghdr m = { .msg_flags = MSG_NOSIGNAL };
	int rc;

	mutex_lock(&kvmi->sock_lock);
	rc = kernel_sendmsg(kvmi->sock, &m, vec, n, size);
	mutex_unlock(&kvmi->sock_lock);

	if (rc == size)
		return 0;

	return rc < 0 ? rc : -EPIPE;
}

/**
 * kvmi_msg_reply() - Reply to a command.
 * @kvmi: The connection.
 * @msg: The header of the command.
 * @err: 0 or a negative KVM_E* error code.
 * @rpl: The reply data, sent only when @err is 0.
 * @rpl_size: The size of @rpl.
 *
 * Return: 0, or a negative errno if the reply could not be sent.
 */
static int kvmi_msg_reply(struct kvm_introspection *kvmi,
			  const struct kvmi_msg_hdr *msg, int err,
			  const void *rpl, size_t rpl_size)
{
	struct kvmi_error_code ec = { .err = err };
	struct kvmi_msg_hdr hdr = {
		.id = msg->id,
		.seq = msg->seq,
	};
	struct kvec vec[] = {
		{ .iov_base = &hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = &ec, .iov_len = sizeof(ec) },
		{ .iov_base = (void *)rpl, .iov_len = rpl_size },
	};
	size_t n = ARRAY_SIZE(vec);

	if (err || !rpl_size) {
		rpl_size = 0;
		n--;
	}

	hdr.size = sizeof(ec) + rpl_size;

	return kvmi_sock_write(kvmi, vec, n, sizeof(hdr) + hdr.size);
}

static int kvmi_msg_reply_err(struct kvm_introspection *kvmi,
			      const struct kvmi_msg_hdr *msg, int err)
{
	return kvmi_msg_reply(kvmi, msg, err, NULL, 0);
}

/**
 * kvmi_msg_send_vm_event() - Send a VM event.
 * @kvmi: The connection.
 * @event_id: The event id (KVMI_VM_EVENT_*).
 *
 * VM events need no reply.
 *
 * Return: 0, or a negative errno if the event could not be sent.
 */
int kvmi_msg_send_vm_event(struct kvm_introspection *kvmi, u16 event_id)
{
	struct kvmi_event_hdr ev = { .event = event_id };
	struct kvmi_msg_hdr hdr = {
		.id = KVMI_VM_EVENT,
		.size = sizeof(ev),
		.seq = atomic_inc_return(&kvmi->ev_seq),
	};
	struct kvec vec[] = {
		{ .iov_base = &hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = &ev, .iov_len = sizeof(ev) },
	};

	return kvmi_sock_write(kvmi, vec, ARRAY_SIZE(vec),
			       sizeof(hdr) + sizeof(ev));
}

/**
 * kvmi_msg_send_vcpu_event() - Send a vCPU event.
 * @kvmi: The connection.
 * @vcpu: The vCPU that sends the event, on its own thread.
 * @seq: The sequence number of the event.
 * @event_id: The event id (KVMI_VCPU_EVENT_*).
 * @payload: The event-specific data.
 * @payload_size: The size of @payload.
 *
 * Return: 0, or a negative errno if the event could not be sent.
 */
int kvmi_msg_send_vcpu_event(struct kvm_introspection *kvmi,
			     struct kvm_vcpu *vcpu, u32 seq, u16 event_id,
			     const void *payload, size_t payload_size)
{
	struct kvmi_vcpu_event *common = &VCPUI(vcpu)->ev;
	struct kvmi_event_hdr ev = { .event = event_id };
	struct kvmi_msg_hdr hdr = {
		.id = KVMI_VCPU_EVENT,
		.seq = seq,
	};
	struct kvec vec[] = {
		{ .iov_base = &hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = &ev, .iov_len = sizeof(ev) },
		{ .iov_base = common, .iov_len = sizeof(*common) },
		{ .iov_base = (void *)payload, .iov_len = payload_size },
	};
	size_t n = payload_size ? ARRAY_SIZE(vec) : ARRAY_SIZE(vec) - 1;

	memset(common, 0, sizeof(*common));
	common->size = sizeof(*common);
	common->vcpu = vcpu->vcpu_idx;
	kvmi_arch_setup_vcpu_event(vcpu, &common->arch);

	hdr.size = sizeof(ev) + sizeof(*common) + payload_size;

	return kvmi_sock_write(kvmi, vec, n, sizeof(hdr) + hdr.size);
}

static int handle_get_version(struct kvm_introspection *kvmi,
			      const struct kvmi_msg_hdr *msg, const void *req)
{
	struct kvmi_get_version_reply rpl = {
		.version = KVMI_VERSION,
		.max_msg_size = KVMI_MAX_MSG_SIZE,
	};

	kvmi_arch_init_features(&rpl.features);

	return kvmi_msg_reply(kvmi, msg, 0, &rpl, sizeof(rpl));
}

static int handle_vm_check_command(struct kvm_introspection *kvmi,
				   const struct kvmi_msg_hdr *msg,
				   const void *_req)
{
	const struct kvmi_vm_check_command *req = _req;
	int ec = 0;

	if (req->padding1 || req->padding2)
		ec = -KVM_EINVAL;
	else if (!kvmi_is_known_command(req->id))
		ec = -KVM_ENOENT;
	else if (!kvmi_is_command_allowed(kvmi, req->id))
		ec = -KVM_EPERM;

	return kvmi_msg_reply_err(kvmi, msg, ec);
}

static int handle_vm_check_event(struct kvm_introspection *kvmi,
				 const struct kvmi_msg_hdr *msg,
				 const void *_req)
{
	const struct kvmi_vm_check_event *req = _req;
	int ec = 0;

	if (req->padding1 || req->padding2)
		ec = -KVM_EINVAL;
	else if (!kvmi_is_known_event(req->id))
		ec = -KVM_ENOENT;
	else if (!kvmi_is_event_allowed(kvmi, req->id))
		ec = -KVM_EPERM;

	return kvmi_msg_reply_err(kvmi, msg, ec);
}

static int handle_vm_get_info(struct kvm_introspection *kvmi,
			      const struct kvmi_msg_hdr *msg,
			      const void *req)
{
	struct kvmi_vm_get_info_reply rpl = {
		.vcpu_count = atomic_read(&kvmi->kvm->online_vcpus),
	};

	return kvmi_msg_reply(kvmi, msg, 0, &rpl, sizeof(rpl));
}

/* The checks shared by KVMI_VM_CONTROL_EVENTS and KVMI_VCPU_CONTROL_EVENTS. */
static int kvmi_check_control_events(struct kvm_introspection *kvmi,
				     u16 event_id, u8 enable, u8 padding1,
				     u32 padding2, bool (*is_known)(u16 id))
{
	if (padding1 || padding2 || enable > 1)
		return -KVM_EINVAL;

	if (!is_known(event_id))
		return -KVM_EINVAL;

	if (!kvmi_is_event_allowed(kvmi, event_id))
		return -KVM_EPERM;

	return 0;
}

static int handle_vm_control_events(struct kvm_introspection *kvmi,
				    const struct kvmi_msg_hdr *msg,
				    const void *_req)
{
	const struct kvmi_vm_control_events *req = _req;
	int ec;

	ec = kvmi_check_control_events(kvmi, req->event_id, req->enable,
				       req->padding1, req->padding2,
				       kvmi_is_known_vm_event);
	if (!ec)
		ec = kvmi_cmd_vm_control_events(kvmi, req->event_id,
						req->enable);

	return kvmi_msg_reply_err(kvmi, msg, ec);
}

/* An access must stay within one page. */
static bool kvmi_invalid_range(u64 gpa, u16 size)
{
	return !size || offset_in_page(gpa) + size > PAGE_SIZE;
}

static int handle_vm_read_physical(struct kvm_introspection *kvmi,
				   const struct kvmi_msg_hdr *msg,
				   const void *_req)
{
	const struct kvmi_vm_read_physical *req = _req;
	void *buf;
	int ec, err;

	if (req->padding1 || req->padding2 ||
	    kvmi_invalid_range(req->gpa, req->size))
		return kvmi_msg_reply_err(kvmi, msg, -KVM_EINVAL);

	buf = kvmi_msg_alloc();
	if (!buf)
		return kvmi_msg_reply_err(kvmi, msg, -KVM_ENOMEM);

	ec = kvmi_cmd_read_physical(kvmi->kvm, req->gpa, buf, req->size);
	err = kvmi_msg_reply(kvmi, msg, ec, buf, req->size);

	kvmi_msg_free(buf);
	return err;
}

static int handle_vm_write_physical(struct kvm_introspection *kvmi,
				    const struct kvmi_msg_hdr *msg,
				    const void *_req)
{
	const struct kvmi_vm_write_physical *req = _req;
	int ec;

	if (req->padding1 || req->padding2 ||
	    kvmi_invalid_range(req->gpa, req->size))
		return kvmi_msg_reply_err(kvmi, msg, -KVM_EINVAL);

	/* The data must be complete: zero-filling it would corrupt memory. */
	if (msg->size < struct_size(req, data, req->size))
		return -EINVAL;

	ec = kvmi_cmd_write_physical(kvmi->kvm, req->gpa, req->data,
				     req->size);

	return kvmi_msg_reply_err(kvmi, msg, ec);
}

static int handle_vm_pause_vcpu(struct kvm_introspection *kvmi,
				const struct kvmi_msg_hdr *msg,
				const void *_req)
{
	const struct kvmi_vm_pause_vcpu *req = _req;
	struct kvm_vcpu *vcpu = kvmi_get_vcpu(kvmi, req->vcpu);
	int ec;

	if (req->padding1 || req->padding2 || req->wait > 1)
		ec = -KVM_EINVAL;
	else if (!kvmi_is_event_allowed(kvmi, KVMI_VCPU_EVENT_PAUSE))
		ec = -KVM_EPERM;
	else if (!vcpu)
		ec = -KVM_EINVAL;
	else
		ec = kvmi_cmd_vm_pause_vcpu(vcpu, req->wait);

	return kvmi_msg_reply_err(kvmi, msg, ec);
}

static int handle_vm_control_cleanup(struct kvm_introspection *kvmi,
				     const struct kvmi_msg_hdr *msg,
				     const void *_req)
{
	const struct kvmi_vm_control_cleanup *req = _req;
	int ec = 0;

	if (req->enable > 1 || memchr_inv(req->padding, 0, sizeof(req->padding)))
		ec = -KVM_EINVAL;
	else
		kvmi_cmd_vm_control_cleanup(kvmi, req->enable);

	return kvmi_msg_reply_err(kvmi, msg, ec);
}

/*
 * The whole array must be there: zero-filled entries would restrict the
 * first page of guest memory.
 */
static int handle_vm_set_page_access(struct kvm_introspection *kvmi,
				     const struct kvmi_msg_hdr *msg,
				     const void *_req)
{
	const struct kvmi_vm_set_page_access *req = _req;
	size_t size = struct_size(req, entries, req->count);
	int ec;

	if (msg->size < size)
		return -EINVAL;

	if (req->padding1 || req->padding2 || !req->count || msg->size > size)
		ec = -KVM_EINVAL;
	else
		ec = kvmi_arch_cmd_set_page_access(kvmi->kvm, req->entries,
						   req->count);

	return kvmi_msg_reply_err(kvmi, msg, ec);
}

static int handle_vm_get_max_gfn(struct kvm_introspection *kvmi,
				 const struct kvmi_msg_hdr *msg,
				 const void *req)
{
	struct kvmi_vm_get_max_gfn_reply rpl = {
		.gfn = kvmi_arch_max_gfn(kvmi->kvm),
	};

	return kvmi_msg_reply(kvmi, msg, 0, &rpl, sizeof(rpl));
}

/* The VM commands, run by the receiving thread. */
static const kvmi_vm_msg_fct msg_vm[] = {
	[KVMI_GET_VERSION]       = handle_get_version,
	[KVMI_VM_CHECK_COMMAND]  = handle_vm_check_command,
	[KVMI_VM_CHECK_EVENT]    = handle_vm_check_event,
	[KVMI_VM_CONTROL_CLEANUP] = handle_vm_control_cleanup,
	[KVMI_VM_CONTROL_EVENTS] = handle_vm_control_events,
	[KVMI_VM_GET_INFO]       = handle_vm_get_info,
	[KVMI_VM_GET_MAX_GFN]    = handle_vm_get_max_gfn,
	[KVMI_VM_PAUSE_VCPU]     = handle_vm_pause_vcpu,
	[KVMI_VM_READ_PHYSICAL]  = handle_vm_read_physical,
	[KVMI_VM_SET_PAGE_ACCESS] = handle_vm_set_page_access,
	[KVMI_VM_WRITE_PHYSICAL] = handle_vm_write_physical,
};

static kvmi_vm_msg_fct kvmi_vm_msg_handler(u16 id)
{
	if (id >= ARRAY_SIZE(msg_vm))
		return NULL;

	return msg_vm[array_index_nospec(id, ARRAY_SIZE(msg_vm))];
}

/*
 * The reply to the event the vCPU waits for.  Any mismatch is a protocol
 * error: the connection is closed and the vCPU goes on without a reply.
 */
static int handle_vcpu_event_reply(struct kvm_introspection *kvmi,
				   struct kvm_vcpu *vcpu,
				   const struct kvmi_msg_hdr *msg,
				   const void *_req)
{
	struct kvm_vcpu_introspection *vcpui = VCPUI(vcpu);
	const struct kvmi_vcpu_event_reply *req = _req;
	struct kvmi_vcpu_reply *expected = &vcpui->reply;

	if (!vcpui->waiting_for_reply || expected->received) {
		kvmi_warn_ratelimited(kvmi, "unexpected event reply\n");
		return -EINVAL;
	}

	if (msg->seq != expected->seq || req->event != expected->event ||
	    msg->size != sizeof(struct kvmi_vcpu_hdr) + sizeof(*req) +
			 expected->data_size ||
	    req->padding1 || req->padding2) {
		kvmi_warn_ratelimited(kvmi, "invalid reply to event %u\n",
				      expected->event);
		return -EINVAL;
	}

	if (expected->data_size)
		memcpy(expected->data, req + 1, expected->data_size);
	expected->action = req->action;
	expected->received = true;

	return 0;
}

static int handle_vcpu_get_info(struct kvm_introspection *kvmi,
				struct kvm_vcpu *vcpu,
				const struct kvmi_msg_hdr *msg,
				const void *req)
{
	struct kvmi_vcpu_get_info_reply rpl = {};
	int ec;

	ec = kvmi_arch_cmd_vcpu_get_info(vcpu, &rpl);

	return kvmi_msg_reply(kvmi, msg, ec, &rpl, sizeof(rpl));
}

static int handle_vcpu_control_events(struct kvm_introspection *kvmi,
				      struct kvm_vcpu *vcpu,
				      const struct kvmi_msg_hdr *msg,
				      const void *_req)
{
	const struct kvmi_vcpu_control_events *req = _req;
	int ec;

	ec = kvmi_check_control_events(kvmi, req->event_id, req->enable,
				       req->padding1, req->padding2,
				       kvmi_is_known_vcpu_event);
	if (!ec)
		ec = kvmi_cmd_vcpu_control_events(vcpu, req->event_id,
						  req->enable);

	return kvmi_msg_reply_err(kvmi, msg, ec);
}

static int handle_vcpu_get_registers(struct kvm_introspection *kvmi,
				     struct kvm_vcpu *vcpu,
				     const struct kvmi_msg_hdr *msg,
				     const void *_req)
{
	const struct kvmi_vcpu_get_registers *req = _req;
	struct kvmi_vcpu_get_registers_reply *rpl;
	size_t req_size, rpl_size;
	int err, ec;

	req_size = sizeof(struct kvmi_vcpu_hdr) +
		   struct_size(req, msrs_idx, req->nmsrs);
	rpl_size = struct_size(rpl, msrs.entries, req->nmsrs);

	if (req->padding1 || req->padding2 || msg->size < req_size ||
	    sizeof(struct kvmi_error_code) + rpl_size > KVMI_MAX_MSG_SIZE)
		return kvmi_msg_reply_err(kvmi, msg, -KVM_EINVAL);

	rpl = kvmi_msg_alloc();
	if (!rpl)
		return kvmi_msg_reply_err(kvmi, msg, -KVM_ENOMEM);

	ec = kvmi_arch_cmd_vcpu_get_registers(vcpu, req, rpl);
	err = kvmi_msg_reply(kvmi, msg, ec, rpl, rpl_size);

	kvmi_msg_free(rpl);
	return err;
}

static int handle_vcpu_set_registers(struct kvm_introspection *kvmi,
				     struct kvm_vcpu *vcpu,
				     const struct kvmi_msg_hdr *msg,
				     const void *req)
{
	struct kvm_vcpu_introspection *vcpui = VCPUI(vcpu);
	int ec = 0;

	if (msg->size < sizeof(struct kvmi_vcpu_hdr) + sizeof(struct kvm_regs))
		ec = -KVM_EINVAL;
	else if (!vcpui->waiting_for_reply)
		ec = -KVM_EOPNOTSUPP;

	if (!ec) {
		memcpy(&vcpui->delayed_regs, req, sizeof(vcpui->delayed_regs));
		vcpui->have_delayed_regs = true;
	}

	return kvmi_msg_reply_err(kvmi, msg, ec);
}

static int handle_vcpu_get_cpuid(struct kvm_introspection *kvmi,
				 struct kvm_vcpu *vcpu,
				 const struct kvmi_msg_hdr *msg,
				 const void *req)
{
	struct kvmi_vcpu_get_cpuid_reply rpl = {};
	int ec;

	ec = kvmi_arch_cmd_vcpu_get_cpuid(vcpu, req, &rpl);

	return kvmi_msg_reply(kvmi, msg, ec, &rpl, sizeof(rpl));
}

static int handle_vcpu_control_cr(struct kvm_introspection *kvmi,
				  struct kvm_vcpu *vcpu,
				  const struct kvmi_msg_hdr *msg,
				  const void *_req)
{
	const struct kvmi_vcpu_control_cr *req = _req;
	int ec;

	if (req->enable > 1 || req->padding1 || req->padding2)
		ec = -KVM_EINVAL;
	else
		ec = kvmi_arch_cmd_vcpu_control_cr(vcpu, req->cr, req->enable);

	return kvmi_msg_reply_err(kvmi, msg, ec);
}

static int handle_vcpu_inject_exception(struct kvm_introspection *kvmi,
					struct kvm_vcpu *vcpu,
					const struct kvmi_msg_hdr *msg,
					const void *_req)
{
	const struct kvmi_vcpu_inject_exception *req = _req;
	int ec;

	if (!kvmi_is_event_allowed(kvmi, KVMI_VCPU_EVENT_TRAP))
		ec = -KVM_EPERM;
	else if (req->padding1 || req->padding2)
		ec = -KVM_EINVAL;
	else
		ec = kvmi_arch_cmd_vcpu_inject_exception(vcpu, req);

	return kvmi_msg_reply_err(kvmi, msg, ec);
}

static int handle_vcpu_get_xcr(struct kvm_introspection *kvmi,
			       struct kvm_vcpu *vcpu,
			       const struct kvmi_msg_hdr *msg,
			       const void *_req)
{
	const struct kvmi_vcpu_get_xcr *req = _req;
	struct kvmi_vcpu_get_xcr_reply rpl = {};
	int ec;

	if (memchr_inv(req->padding, 0, sizeof(req->padding)))
		ec = -KVM_EINVAL;
	else
		ec = kvmi_arch_cmd_vcpu_get_xcr(vcpu, req->xcr, &rpl.value);

	return kvmi_msg_reply(kvmi, msg, ec, &rpl, sizeof(rpl));
}

static int handle_vcpu_get_xsave(struct kvm_introspection *kvmi,
				 struct kvm_vcpu *vcpu,
				 const struct kvmi_msg_hdr *msg,
				 const void *req)
{
	struct kvmi_vcpu_get_xsave_reply *rpl;
	int err, ec;

	rpl = kvmi_msg_alloc();
	if (!rpl)
		return kvmi_msg_reply_err(kvmi, msg, -KVM_ENOMEM);

	ec = kvmi_arch_cmd_vcpu_get_xsave(vcpu, rpl);
	err = kvmi_msg_reply(kvmi, msg, ec, rpl, sizeof(*rpl));

	kvmi_msg_free(rpl);
	return err;
}

static int handle_vcpu_set_xsave(struct kvm_introspection *kvmi,
				 struct kvm_vcpu *vcpu,
				 const struct kvmi_msg_hdr *msg,
				 const void *req)
{
	int ec;

	/* A zero-filled tail would be taken for guest state. */
	if (msg->size < sizeof(struct kvmi_vcpu_hdr) +
			sizeof(struct kvmi_vcpu_set_xsave))
		ec = -KVM_EINVAL;
	else
		ec = kvmi_arch_cmd_vcpu_set_xsave(vcpu, req);

	return kvmi_msg_reply_err(kvmi, msg, ec);
}

static int handle_vcpu_get_mtrr_type(struct kvm_introspection *kvmi,
				     struct kvm_vcpu *vcpu,
				     const struct kvmi_msg_hdr *msg,
				     const void *_req)
{
	const struct kvmi_vcpu_get_mtrr_type *req = _req;
	struct kvmi_vcpu_get_mtrr_type_reply rpl = {};

	rpl.type = kvmi_arch_cmd_vcpu_get_mtrr_type(vcpu, req->gpa);

	return kvmi_msg_reply(kvmi, msg, 0, &rpl, sizeof(rpl));
}

static int handle_vcpu_control_msr(struct kvm_introspection *kvmi,
				   struct kvm_vcpu *vcpu,
				   const struct kvmi_msg_hdr *msg,
				   const void *_req)
{
	const struct kvmi_vcpu_control_msr *req = _req;
	int ec;

	if (req->enable > 1 || req->padding1 || req->padding2)
		ec = -KVM_EINVAL;
	else
		ec = kvmi_arch_cmd_vcpu_control_msr(vcpu, req->msr, req->enable);

	return kvmi_msg_reply_err(kvmi, msg, ec);
}

static int handle_vcpu_control_singlestep(struct kvm_introspection *kvmi,
					  struct kvm_vcpu *vcpu,
					  const struct kvmi_msg_hdr *msg,
					  const void *_req)
{
	const struct kvmi_vcpu_control_singlestep *req = _req;
	int ec;

	if (!kvmi_is_event_allowed(kvmi, KVMI_VCPU_EVENT_SINGLESTEP))
		ec = -KVM_EPERM;
	else if (req->enable > 1 ||
		 memchr_inv(req->padding, 0, sizeof(req->padding)))
		ec = -KVM_EINVAL;
	else
		ec = kvmi_arch_cmd_vcpu_control_singlestep(vcpu, req->enable);

	return kvmi_msg_reply_err(kvmi, msg, ec);
}

static int handle_vcpu_translate_gva(struct kvm_introspection *kvmi,
				     struct kvm_vcpu *vcpu,
				     const struct kvmi_msg_hdr *msg,
				     const void *_req)
{
	const struct kvmi_vcpu_translate_gva *req = _req;
	struct kvmi_vcpu_translate_gva_reply rpl = {};

	rpl.gpa = kvmi_arch_cmd_vcpu_translate_gva(vcpu, req->gva);

	return kvmi_msg_reply(kvmi, msg, 0, &rpl, sizeof(rpl));
}

/* The messages for a vCPU, run by the vCPU thread. */
static const kvmi_vcpu_msg_fct msg_vcpu[] = {
	[KVMI_VCPU_EVENT]              = handle_vcpu_event_reply,
	[KVMI_VCPU_GET_INFO]           = handle_vcpu_get_info,
	[KVMI_VCPU_CONTROL_EVENTS]     = handle_vcpu_control_events,
	[KVMI_VCPU_GET_REGISTERS]      = handle_vcpu_get_registers,
	[KVMI_VCPU_SET_REGISTERS]      = handle_vcpu_set_registers,
	[KVMI_VCPU_GET_CPUID]          = handle_vcpu_get_cpuid,
	[KVMI_VCPU_CONTROL_CR]         = handle_vcpu_control_cr,
	[KVMI_VCPU_INJECT_EXCEPTION]   = handle_vcpu_inject_exception,
	[KVMI_VCPU_GET_XCR]            = handle_vcpu_get_xcr,
	[KVMI_VCPU_GET_XSAVE]          = handle_vcpu_get_xsave,
	[KVMI_VCPU_SET_XSAVE]          = handle_vcpu_set_xsave,
	[KVMI_VCPU_GET_MTRR_TYPE]      = handle_vcpu_get_mtrr_type,
	[KVMI_VCPU_CONTROL_MSR]        = handle_vcpu_control_msr,
	[KVMI_VCPU_CONTROL_SINGLESTEP] = handle_vcpu_control_singlestep,
	[KVMI_VCPU_TRANSLATE_GVA]      = handle_vcpu_translate_gva,
};

static kvmi_vcpu_msg_fct kvmi_vcpu_msg_handler(u16 id)
{
	if (id >= ARRAY_SIZE(msg_vcpu))
		return NULL;

	return msg_vcpu[array_index_nospec(id, ARRAY_SIZE(msg_vcpu))];
}

bool kvmi_is_known_command(u16 id)
{
	return (id != KVMI_VCPU_EVENT && kvmi_vcpu_msg_handler(id)) ||
	       kvmi_vm_msg_handler(id);
}

void kvmi_msg_run_vcpu_job(struct kvm_introspection *kvmi,
			   struct kvm_vcpu *vcpu, struct kvmi_msg_hdr *msg)
{
	kvmi_vcpu_msg_fct handler = kvmi_vcpu_msg_handler(msg->id);
	const struct kvmi_vcpu_hdr *vcpu_hdr = (const void *)(msg + 1);

	if (handler(kvmi, vcpu, msg, vcpu_hdr + 1))
		kvmi_sock_shutdown(kvmi);
}

static bool kvmi_waits_for_reply(struct kvm_vcpu *vcpu)
{
	struct kvm_vcpu_introspection *vcpui = VCPUI(vcpu);

	return vcpui && READ_ONCE(vcpui->waiting_for_reply);
}

/*
 * The checks common to every message for a vCPU.  The error replies are
 * sent by the receiving thread, with the id and seq of the message.
 */
static int kvmi_msg_dispatch_vcpu(struct kvm_introspection *kvmi,
				  struct kvmi_msg_hdr **msgp)
{
	struct kvmi_msg_hdr *msg = *msgp;
	const struct kvmi_vcpu_hdr *vcpu_hdr = (const void *)(msg + 1);
	struct kvm_vcpu *vcpu = kvmi_get_vcpu(kvmi, vcpu_hdr->vcpu);
	int ec = 0;

	if (msg->id != KVMI_VCPU_EVENT &&
	    !kvmi_is_command_allowed(kvmi, msg->id))
		ec = -KVM_EPERM;
	else if (vcpu_hdr->padding1 || vcpu_hdr->padding2)
		ec = -KVM_EINVAL;
	else if (!vcpu)
		ec = -KVM_EINVAL;
	else if (!kvmi_arch_vcpu_alive(vcpu) && !kvmi_waits_for_reply(vcpu))
		ec = -KVM_EAGAIN;

	if (ec)
		return kvmi_msg_reply_err(kvmi, msg, ec);

	if (kvmi_add_job(vcpu, msg))
		return -ENOMEM;

	*msgp = NULL;
	return 0;
}

static int kvmi_msg_recv(struct kvm_introspection *kvmi,
			 struct kvmi_msg_hdr *msg)
{
	int err;

	err = kvmi_sock_read(kvmi, msg, sizeof(*msg));
	if (err)
		return err;

	if (msg->size > KVMI_MAX_MSG_SIZE) {
		kvmi_warn_ratelimited(kvmi, "message %u too big: %u bytes\n",
				      msg->id, msg->size);
		return -E2BIG;
	}

	return msg->size ? kvmi_sock_read(kvmi, msg + 1, msg->size) : 0;
}

/*
 * Run a VM command, or queue a message for a vCPU, in which case the job
 * takes the message buffer and *@msgp becomes NULL.
 */
static int kvmi_msg_dispatch(struct kvm_introspection *kvmi,
			     struct kvmi_msg_hdr **msgp)
{
	struct kvmi_msg_hdr *msg = *msgp;
	kvmi_vm_msg_fct handler;

	if (kvmi_vcpu_msg_handler(msg->id))
		return kvmi_msg_dispatch_vcpu(kvmi, msgp);

	handler = kvmi_vm_msg_handler(msg->id);
	if (!handler)
		return kvmi_msg_reply_err(kvmi, msg, -KVM_ENOSYS);

	if (!kvmi_is_command_allowed(kvmi, msg->id))
		return kvmi_msg_reply_err(kvmi, msg, -KVM_EPERM);

	return handler(kvmi, msg, msg + 1);
}

/**
 * kvmi_msg_process() - Receive and handle one message.
 * @kvmi: The connection.
 *
 * Return: false when the connection must be closed.
 */
bool kvmi_msg_process(struct kvm_introspection *kvmi)
{
	struct kvmi_msg_hdr *msg;
	int err;

	msg = kvmi_msg_alloc();
	if (!msg)
		return false;

	err = kvmi_msg_recv(kvmi, msg);
	if (!err)
		err = kvmi_msg_dispatch(kvmi, &msg);

	if (msg)
		kvmi_msg_free(msg);

	return !err;
}
