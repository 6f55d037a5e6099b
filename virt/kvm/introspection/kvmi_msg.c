// SPDX-License-Identifier: GPL-2.0
/*
 * KVM introspection: the socket.
 *
 * The receiving thread reads one message at a time into a buffer from
 * kvmi_msg_cache, zero-filled and large enough for the largest message,
 * so that a payload shorter than the structure a handler expects reads as
 * if its missing tail were zero.  The message id selects the handler from
 * a table indexed by id.  Every reply goes through kvmi_msg_reply() and
 * every event through kvmi_msg_send_vm_event().
 *
 * A handler returns 0 when the connection can go on, or a negative errno
 * on a protocol error, after which the connection is closed.  The errors
 * meant for the tool (-KVM_E*) travel in the reply.
 */

#include <linux/net.h>
#include <linux/nospec.h>
#include "kvmi_int.h"

#define KVMI_MSG_SIZE_ALLOC (sizeof(struct kvmi_msg_hdr) + KVMI_MAX_MSG_SIZE)

static struct kmem_cache *kvmi_msg_cache;

typedef int (*kvmi_vm_msg_fct)(struct kvm_introspection *kvmi,
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

static void kvmi_msg_free(void *addr)
{
	kmem_cache_free(kvmi_msg_cache, addr);
}

void kvmi_sock_shutdown(struct kvm_introspection *kvmi)
{
	kernel_sock_shutdown(kvmi->sock, SHUT_RDWR);
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

static int handle_vm_control_events(struct kvm_introspection *kvmi,
				    const struct kvmi_msg_hdr *msg,
				    const void *_req)
{
	const struct kvmi_vm_control_events *req = _req;
	int ec;

	if (req->padding1 || req->padding2 || req->enable > 1)
		ec = -KVM_EINVAL;
	else if (!kvmi_is_known_vm_event(req->event_id))
		ec = -KVM_EINVAL;
	else if (!kvmi_is_event_allowed(kvmi, req->event_id))
		ec = -KVM_EPERM;
	else
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

/* The VM commands, run by the receiving thread. */
static const kvmi_vm_msg_fct msg_vm[] = {
	[KVMI_GET_VERSION]       = handle_get_version,
	[KVMI_VM_CHECK_COMMAND]  = handle_vm_check_command,
	[KVMI_VM_CHECK_EVENT]    = handle_vm_check_event,
	[KVMI_VM_CONTROL_EVENTS] = handle_vm_control_events,
	[KVMI_VM_GET_INFO]       = handle_vm_get_info,
	[KVMI_VM_READ_PHYSICAL]  = handle_vm_read_physical,
	[KVMI_VM_WRITE_PHYSICAL] = handle_vm_write_physical,
};

static kvmi_vm_msg_fct kvmi_vm_msg_handler(u16 id)
{
	if (id >= ARRAY_SIZE(msg_vm))
		return NULL;

	return msg_vm[array_index_nospec(id, ARRAY_SIZE(msg_vm))];
}

bool kvmi_is_known_command(u16 id)
{
	return !!kvmi_vm_msg_handler(id);
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

static int kvmi_msg_dispatch(struct kvm_introspection *kvmi,
			     const struct kvmi_msg_hdr *msg)
{
	kvmi_vm_msg_fct handler = kvmi_vm_msg_handler(msg->id);

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
		err = kvmi_msg_dispatch(kvmi, msg);

	kvmi_msg_free(msg);

	return !err;
}
