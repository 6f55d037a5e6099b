// SPDX-License-Identifier: GPL-2.0-only
/*
 * KVM introspection (KVMI) selftest
 *
 * The test plays both the device manager (it owns the VM fd and uses the
 * KVM_INTROSPECTION_* ioctls) and the introspection tool (it talks to KVM
 * over one end of a socketpair whose other end was handed to KVM with
 * KVM_INTROSPECTION_HOOK).
 *
 * Every case runs in its own child process, with its own VM, so that a
 * failed assertion or a hang fails only that case.
 *
 * Run "kvmi_test --demo" for a short human-readable session, or
 * "kvmi_test NAME..." to run only some cases ("--list" prints them).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <linux/kvm_para.h>
#include <linux/kvmi.h>

#include "test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"

#define CASE_TIMEOUT_SEC	120
#define SOCKET_TIMEOUT_SEC	10
#define UNHOOK_MAX_MS		10000

#define PAGE_BYTES		4096
#define INVALID_GPA		BIT_ULL(40)

static struct kvm_vm *test_vm;
static struct kvm_vcpu *test_vcpu;

/* The introspection tool's end of the socket. */
static int tool_fd = -1;
static __u32 tool_seq;

static const __u8 test_uuid[16] = {
	0x6b, 0x76, 0x6d, 0x69, 0x2d, 0x73, 0x65, 0x6c,
	0x66, 0x74, 0x65, 0x73, 0x74, 0x2d, 0x30, 0x31,
};

/* ------------------------------------------------------------------ */
/* Guest side                                                          */
/* ------------------------------------------------------------------ */

enum {
	GUEST_OP_FILL = 1,
	GUEST_OP_CHECK,
	GUEST_OP_DONE,
};

/* The operation the memory guest performs after its next GUEST_SYNC. */
struct guest_mem_op {
	__u64 op;
	__u64 offset;
	__u64 size;
	__u64 seed;
};

static struct guest_mem_op guest_mem_op;

static const char demo_text[] = "Hello from the KVMI selftest guest!";

static inline __u8 pattern_byte(__u64 seed, __u64 offset)
{
	return (__u8)(seed * 0x9d + offset * 7 + (offset >> 8));
}

static void guest_idle_code(void)
{
	GUEST_DONE();
}

static void guest_mem_code(__u8 *page)
{
	__u64 op, offset, size, seed, i;

	for (;;) {
		GUEST_SYNC(0);

		op = READ_ONCE(guest_mem_op.op);
		offset = READ_ONCE(guest_mem_op.offset);
		size = READ_ONCE(guest_mem_op.size);
		seed = READ_ONCE(guest_mem_op.seed);

		if (op == GUEST_OP_DONE)
			break;

		for (i = offset; i < offset + size; i++) {
			__u8 expected = pattern_byte(seed, i);

			if (op == GUEST_OP_FILL) {
				WRITE_ONCE(page[i], expected);
				continue;
			}
			__GUEST_ASSERT(READ_ONCE(page[i]) == expected,
				       "page[%lu] = %#x, expected %#x",
				       (unsigned long)i,
				       READ_ONCE(page[i]), expected);
		}
	}

	GUEST_DONE();
}

static void guest_demo_code(char *page)
{
	memcpy(page, demo_text, sizeof(demo_text));
	GUEST_SYNC(0);
	GUEST_DONE();
}

/* ------------------------------------------------------------------ */
/* Small utilities                                                     */
/* ------------------------------------------------------------------ */

static bool is_zero(const void *p, size_t size)
{
	const __u8 *b = p;
	size_t i;

	for (i = 0; i < size; i++)
		if (b[i])
			return false;
	return true;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static const char *err_str(int err)
{
	return err ? strerror(err < 0 ? -err : err) : "success";
}

/* ------------------------------------------------------------------ */
/* Device manager side: the introspection ioctls                      */
/* ------------------------------------------------------------------ */

/* All these return 0 or -errno. */

static int __hook(struct kvm_vm *vm, int fd, __u32 padding)
{
	struct kvm_introspection_hook hook = {
		.fd = fd,
		.padding = padding,
	};

	memcpy(hook.uuid, test_uuid, sizeof(hook.uuid));

	return __vm_ioctl(vm, KVM_INTROSPECTION_HOOK, &hook) ? -errno : 0;
}

static int __unhook(struct kvm_vm *vm)
{
	return __vm_ioctl(vm, KVM_INTROSPECTION_UNHOOK, NULL) ? -errno : 0;
}

static int __preunhook(struct kvm_vm *vm)
{
	return __vm_ioctl(vm, KVM_INTROSPECTION_PREUNHOOK, NULL) ? -errno : 0;
}

static int __command_feature(struct kvm_vm *vm, __u32 allow, __s32 id)
{
	struct kvm_introspection_feature feat = {
		.allow = allow,
		.id = id,
	};

	return __vm_ioctl(vm, KVM_INTROSPECTION_COMMAND, &feat) ? -errno : 0;
}

static int __event_feature(struct kvm_vm *vm, __u32 allow, __s32 id)
{
	struct kvm_introspection_feature feat = {
		.allow = allow,
		.id = id,
	};

	return __vm_ioctl(vm, KVM_INTROSPECTION_EVENT, &feat) ? -errno : 0;
}

#define EXPECT_ERR(call, expected)					\
do {									\
	int __r = (call);						\
	int __e = (expected);						\
									\
	TEST_ASSERT(__r == __e, "%s returned %d (%s), expected %d (%s)",\
		    #call, __r, err_str(__r), __e, err_str(__e));	\
} while (0)

static void allow_command(__s32 id)
{
	EXPECT_ERR(__command_feature(test_vm, 1, id), 0);
}

static void disallow_command(__s32 id)
{
	EXPECT_ERR(__command_feature(test_vm, 0, id), 0);
}

static void allow_event(__s32 id)
{
	EXPECT_ERR(__event_feature(test_vm, 1, id), 0);
}

static void set_socket_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = SOCKET_TIMEOUT_SEC };

	TEST_ASSERT(!setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)),
		    "setsockopt(SO_RCVTIMEO) failed");
	TEST_ASSERT(!setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)),
		    "setsockopt(SO_SNDTIMEO) failed");
}

/* Returns the tool's end in @tool and KVM's end in @kvm_end. */
static void new_socket_pair(int *tool, int *kvm_end)
{
	int fds[2];

	TEST_ASSERT(!socketpair(AF_UNIX, SOCK_STREAM, 0, fds),
		    "socketpair() failed");
	set_socket_timeouts(fds[0]);
	*tool = fds[0];
	*kvm_end = fds[1];
}

static void close_tool_socket(void)
{
	if (tool_fd >= 0)
		close(tool_fd);
	tool_fd = -1;
}

/*
 * Hook @vm and keep the tool's end of the socket in tool_fd.  KVM holds its
 * own reference to its end, so ours is closed right away.
 */
static void hook_introspection(struct kvm_vm *vm)
{
	int tool, kvm_end;

	new_socket_pair(&tool, &kvm_end);
	EXPECT_ERR(__hook(vm, kvm_end, 0), 0);
	close(kvm_end);

	close_tool_socket();
	tool_fd = tool;
	tool_seq = 0;
}

static void unhook_introspection(struct kvm_vm *vm)
{
	EXPECT_ERR(__unhook(vm), 0);
	close_tool_socket();
}

static void create_vm(void *guest_code)
{
	test_vm = vm_create_with_one_vcpu(&test_vcpu, guest_code);
}

static void setup_vm(void *guest_code)
{
	create_vm(guest_code);
	hook_introspection(test_vm);
}

static void teardown_vm(void)
{
	unhook_introspection(test_vm);
	kvm_vm_free(test_vm);
	test_vm = NULL;
	test_vcpu = NULL;
}

/* ------------------------------------------------------------------ */
/* Introspection tool side: the transport                              */
/* ------------------------------------------------------------------ */

/*
 * Receive up to @len bytes.  Returns the number of bytes received (less
 * than @len only on EOF) or -errno.
 */
static ssize_t recv_full(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = recv(fd, (char *)buf + done, len - done, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (!r)
			break;
		done += r;
	}

	return done;
}

static void receive_exact(void *buf, size_t len, const char *what)
{
	ssize_t r = recv_full(tool_fd, buf, len);

	TEST_ASSERT(r == (ssize_t)len,
		    "Receiving %s: got %zd of %zu bytes (%s)", what, r, len,
		    r < 0 ? err_str(r) : "EOF");
}

/*
 * Send a message header with @hdr_size and @len bytes of payload, in one
 * sendmsg() call.  @hdr_size may differ from @len to build malformed
 * messages.  Returns 0 or -errno.
 */
static int __send_message(__u16 id, __u16 hdr_size, __u32 seq,
			  const void *data, size_t len)
{
	struct kvmi_msg_hdr hdr = {
		.id = id,
		.size = hdr_size,
		.seq = seq,
	};
	struct iovec iov[2] = {
		{ .iov_base = &hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = (void *)data, .iov_len = len },
	};
	struct msghdr msg = {
		.msg_iov = iov,
		.msg_iovlen = len ? 2 : 1,
	};
	ssize_t r;

	r = sendmsg(tool_fd, &msg, MSG_NOSIGNAL);
	if (r < 0)
		return -errno;

	return r == (ssize_t)(sizeof(hdr) + len) ? 0 : -EIO;
}

/* Send a well-formed message and return its sequence number. */
static __u32 send_message(__u16 id, const void *data, size_t len)
{
	__u32 seq = ++tool_seq;
	int r;

	TEST_ASSERT(len <= KVMI_MAX_MSG_SIZE, "Message too big: %zu", len);
	r = __send_message(id, len, seq, data, len);
	TEST_ASSERT(!r, "Sending message id %u failed: %s", id, err_str(r));

	return seq;
}

/* Check the padding of the command-specific reply data. */
static void check_reply_padding(__u16 id, const void *rpl)
{
	const struct kvmi_get_version_reply *version = rpl;
	const struct kvmi_vm_get_info_reply *info = rpl;

	switch (id) {
	case KVMI_GET_VERSION:
		TEST_ASSERT(is_zero(version->features.padding,
				    sizeof(version->features.padding)),
			    "GET_VERSION reply: non-zero features.padding");
		break;
	case KVMI_VM_GET_INFO:
		TEST_ASSERT(is_zero(info->padding, sizeof(info->padding)),
			    "VM_GET_INFO reply: non-zero padding");
		break;
	default:
		break;
	}
}

/*
 * Receive the reply to the message (@id, @seq).  On success, @rpl_size
 * bytes of reply data are stored in @rpl.  Returns the err field.
 */
static int receive_reply(__u16 id, __u32 seq, void *rpl, size_t rpl_size)
{
	struct kvmi_error_code ec;
	struct kvmi_msg_hdr hdr;

	receive_exact(&hdr, sizeof(hdr), "the reply header");
	TEST_ASSERT(hdr.id == id, "Reply id %u, expected %u", hdr.id, id);
	TEST_ASSERT(hdr.seq == seq, "Reply seq %u, expected %u (id %u)",
		    hdr.seq, seq, id);
	TEST_ASSERT(hdr.size >= sizeof(ec),
		    "Reply size %u is smaller than kvmi_error_code (id %u)",
		    hdr.size, id);

	receive_exact(&ec, sizeof(ec), "the reply error code");
	TEST_ASSERT(!ec.padding, "Non-zero kvmi_error_code.padding %#x (id %u)",
		    ec.padding, id);

	if (ec.err) {
		TEST_ASSERT(ec.err < 0, "Positive err %d (id %u)", ec.err, id);
		TEST_ASSERT(hdr.size == sizeof(ec),
			    "Error reply size %u, expected %zu (id %u, err %d)",
			    hdr.size, sizeof(ec), id, ec.err);
		return ec.err;
	}

	TEST_ASSERT(hdr.size == sizeof(ec) + rpl_size,
		    "Reply size %u, expected %zu (id %u)",
		    hdr.size, sizeof(ec) + rpl_size, id);
	if (rpl_size) {
		receive_exact(rpl, rpl_size, "the reply data");
		check_reply_padding(id, rpl);
	}

	return 0;
}

/*
 * Send command @id with @req_size bytes of payload and wait for its reply.
 * Returns the err field of the reply (0 or -KVM_E*).
 */
static int do_command(__u16 id, const void *req, size_t req_size,
		      void *rpl, size_t rpl_size)
{
	__u32 seq = send_message(id, req, req_size);

	return receive_reply(id, seq, rpl, rpl_size);
}

static void __expect_command(int line, int expected, __u16 id,
			     const void *req, size_t req_size)
{
	int err = do_command(id, req, req_size, NULL, 0);

	TEST_ASSERT(err == expected,
		    "line %d: command %u (payload %zu bytes) returned %d, expected %d",
		    line, id, req_size, err, expected);
}

/* For the commands without reply data. */
#define expect_command(expected, id, req, req_size) \
	__expect_command(__LINE__, expected, id, req, req_size)

/* The tool must see EOF: no reply, no event, nothing but EOF. */
static void expect_eof(void)
{
	char c;
	ssize_t r;

	r = recv(tool_fd, &c, 1, 0);
	TEST_ASSERT(r == 0, "Expected EOF on the tool socket, recv() = %zd (%s)",
		    r, r < 0 ? strerror(errno) : "data received");
}

/*
 * Like expect_eof(), but tolerate replies that were still queued and
 * ECONNRESET (AF_UNIX reports it when KVM released its end while it still
 * held unread requests).  Used when commands were in flight.
 */
static void expect_closed(void)
{
	char buf[256];
	int i;

	for (i = 0; i < 100000; i++) {
		ssize_t r = recv(tool_fd, buf, sizeof(buf), 0);

		if (!r)
			return;
		if (r < 0 && errno != ECONNRESET && errno != EINTR)
			TEST_FAIL("Expected EOF on the tool socket: %s",
				  strerror(errno));
	}
	TEST_FAIL("Expected EOF on the tool socket, data keeps coming");
}

/* The tool must receive nothing within @ms milliseconds. */
static void expect_nothing(int ms)
{
	struct pollfd pfd = { .fd = tool_fd, .events = POLLIN };
	int r;

	r = poll(&pfd, 1, ms);
	TEST_ASSERT(r == 0, "Unexpected data/EOF on the tool socket (poll = %d)",
		    r);
}

/* Receive a VM event, check its headers and return its seq. */
static __u32 receive_vm_event(__u16 event)
{
	struct kvmi_event_hdr ev;
	struct kvmi_msg_hdr hdr;

	receive_exact(&hdr, sizeof(hdr), "the event message header");
	TEST_ASSERT(hdr.id == KVMI_VM_EVENT, "Event message id %u, expected %u",
		    hdr.id, KVMI_VM_EVENT);
	TEST_ASSERT(hdr.size == sizeof(ev), "Event message size %u, expected %zu",
		    hdr.size, sizeof(ev));
	TEST_ASSERT(hdr.seq != 0, "Event message seq is 0");

	receive_exact(&ev, sizeof(ev), "the event header");
	TEST_ASSERT(ev.event == event, "Event id %u, expected %u",
		    ev.event, event);
	TEST_ASSERT(is_zero(ev.padding, sizeof(ev.padding)),
		    "Non-zero kvmi_event_hdr.padding");

	return hdr.seq;
}

/* ------------------------------------------------------------------ */
/* Introspection tool side: the commands                               */
/* ------------------------------------------------------------------ */

static void get_version(struct kvmi_get_version_reply *rpl)
{
	int err = do_command(KVMI_GET_VERSION, NULL, 0, rpl, sizeof(*rpl));

	TEST_ASSERT(!err, "GET_VERSION failed: %d", err);
}

/* A cheap way to check that the connection is still usable. */
static void check_connection_alive(void)
{
	struct kvmi_get_version_reply rpl;

	get_version(&rpl);
	TEST_ASSERT(rpl.version == KVMI_VERSION, "Bad version %u", rpl.version);
}

static int vm_check_command(__u16 id, __u16 padding1, __u32 padding2)
{
	struct kvmi_vm_check_command req = {
		.id = id,
		.padding1 = padding1,
		.padding2 = padding2,
	};

	return do_command(KVMI_VM_CHECK_COMMAND, &req, sizeof(req), NULL, 0);
}

static int vm_check_event(__u16 id, __u16 padding1, __u32 padding2)
{
	struct kvmi_vm_check_event req = {
		.id = id,
		.padding1 = padding1,
		.padding2 = padding2,
	};

	return do_command(KVMI_VM_CHECK_EVENT, &req, sizeof(req), NULL, 0);
}

static int vm_get_info(struct kvmi_vm_get_info_reply *rpl)
{
	return do_command(KVMI_VM_GET_INFO, NULL, 0, rpl, sizeof(*rpl));
}

static int vm_control_events(__u16 event_id, __u8 enable, __u8 padding1,
			     __u32 padding2)
{
	struct kvmi_vm_control_events req = {
		.event_id = event_id,
		.enable = enable,
		.padding1 = padding1,
		.padding2 = padding2,
	};

	return do_command(KVMI_VM_CONTROL_EVENTS, &req, sizeof(req), NULL, 0);
}

static int __vm_read_physical(__u64 gpa, __u16 size, __u16 padding1,
			      __u32 padding2, void *buf)
{
	struct kvmi_vm_read_physical req = {
		.gpa = gpa,
		.size = size,
		.padding1 = padding1,
		.padding2 = padding2,
	};

	return do_command(KVMI_VM_READ_PHYSICAL, &req, sizeof(req), buf, size);
}

static int vm_read_physical(__u64 gpa, __u16 size, void *buf)
{
	return __vm_read_physical(gpa, size, 0, 0, buf);
}

/*
 * Build a VM_WRITE_PHYSICAL request with @len bytes of data (normally
 * @len == @size) and return its total length in @req_len.
 */
static struct kvmi_vm_write_physical *
build_write_physical(__u64 gpa, __u16 size, __u16 padding1, __u32 padding2,
		     const void *data, size_t len, size_t *req_len)
{
	struct kvmi_vm_write_physical *req;

	*req_len = sizeof(*req) + len;
	req = calloc(1, *req_len);
	TEST_ASSERT(req, "Out of memory");

	req->gpa = gpa;
	req->size = size;
	req->padding1 = padding1;
	req->padding2 = padding2;
	if (len)
		memcpy(req->data, data, len);

	return req;
}

static int __vm_write_physical(__u64 gpa, __u16 size, __u16 padding1,
			       __u32 padding2, const void *data, size_t len)
{
	struct kvmi_vm_write_physical *req;
	size_t req_len;
	int err;

	req = build_write_physical(gpa, size, padding1, padding2, data, len,
				   &req_len);
	err = do_command(KVMI_VM_WRITE_PHYSICAL, req, req_len, NULL, 0);
	free(req);

	return err;
}

static int vm_write_physical(__u64 gpa, __u16 size, const void *data)
{
	return __vm_write_physical(gpa, size, 0, 0, data, size);
}

/* ------------------------------------------------------------------ */
/* The memory guest                                                    */
/* ------------------------------------------------------------------ */

static vm_vaddr_t test_page_gva;
static __u64 test_page_gpa;

/* Run the vCPU until its next ucall, which must be @expected. */
static void run_guest(__u64 expected)
{
	struct ucall uc;
	__u64 cmd;

	vcpu_run(test_vcpu);
	TEST_ASSERT_KVM_EXIT_REASON(test_vcpu, KVM_EXIT_IO);

	cmd = get_ucall(test_vcpu, &uc);
	if (cmd == UCALL_ABORT)
		REPORT_GUEST_ASSERT(uc);
	TEST_ASSERT(cmd == expected, "Guest ucall %lu, expected %lu",
		    (unsigned long)cmd, (unsigned long)expected);
}

static void guest_do(__u64 op, __u64 offset, __u64 size, __u64 seed)
{
	guest_mem_op.op = op;
	guest_mem_op.offset = offset;
	guest_mem_op.size = size;
	guest_mem_op.seed = seed;
	sync_global_to_guest(test_vm, guest_mem_op);

	run_guest(op == GUEST_OP_DONE ? UCALL_DONE : UCALL_SYNC);
}

/* The guest writes the @seed pattern to [@offset, @offset + @size). */
static void guest_fill(__u64 offset, __u64 size, __u64 seed)
{
	guest_do(GUEST_OP_FILL, offset, size, seed);
}

/* The guest checks that [@offset, @offset + @size) holds @seed's pattern. */
static void guest_check(__u64 offset, __u64 size, __u64 seed)
{
	guest_do(GUEST_OP_CHECK, offset, size, seed);
}

static void guest_finish(void)
{
	guest_do(GUEST_OP_DONE, 0, 0, 0);
}

static void fill_pattern(__u8 *buf, __u64 offset, size_t size, __u64 seed)
{
	size_t i;

	for (i = 0; i < size; i++)
		buf[i] = pattern_byte(seed, offset + i);
}

/*
 * A hooked VM whose guest has a page (test_page_gva/test_page_gpa) and
 * waits at its first GUEST_SYNC.  VM_READ/WRITE_PHYSICAL are allowed.
 */
static void setup_mem_vm(void)
{
	setup_vm(guest_mem_code);

	test_page_gva = vm_vaddr_alloc_page(test_vm);
	test_page_gpa = addr_gva2gpa(test_vm, test_page_gva);
	vcpu_args_set(test_vcpu, 1, test_page_gva);
	run_guest(UCALL_SYNC);

	allow_command(KVMI_VM_READ_PHYSICAL);
	allow_command(KVMI_VM_WRITE_PHYSICAL);
}

/* The tool reads [@offset, @offset + @size) and compares with @seed. */
static void tool_check(__u64 offset, __u16 size, __u64 seed)
{
	static __u8 buf[PAGE_BYTES], expected[PAGE_BYTES];
	int err;

	err = vm_read_physical(test_page_gpa + offset, size, buf);
	TEST_ASSERT(!err, "VM_READ_PHYSICAL(offset %lu, size %u) failed: %d",
		    (unsigned long)offset, size, err);

	fill_pattern(expected, offset, size, seed);
	TEST_ASSERT(!memcmp(buf, expected, size),
		    "VM_READ_PHYSICAL(offset %lu, size %u): unexpected data",
		    (unsigned long)offset, size);
}

/* The tool writes @seed's pattern to [@offset, @offset + @size). */
static void tool_fill(__u64 offset, __u16 size, __u64 seed)
{
	static __u8 buf[PAGE_BYTES];
	int err;

	fill_pattern(buf, offset, size, seed);
	err = vm_write_physical(test_page_gpa + offset, size, buf);
	TEST_ASSERT(!err, "VM_WRITE_PHYSICAL(offset %lu, size %u) failed: %d",
		    (unsigned long)offset, size, err);
}

/* The first gpa after the highest memslot of the VM. */
static __u64 gpa_after_memslots(struct kvm_vm *vm)
{
	struct userspace_mem_region *region;
	__u64 end = 0;
	int bkt;

	hash_for_each(vm->regions.slot_hash, bkt, region, slot_node) {
		__u64 e = region->region.guest_phys_addr +
			  region->region.memory_size;

		if (e > end)
			end = e;
	}

	return end;
}

/* ------------------------------------------------------------------ */
/* Cases: ioctls                                                       */
/* ------------------------------------------------------------------ */

static void test_cap_introspection(void)
{
	int r;

	create_vm(guest_idle_code);

	r = vm_check_cap(test_vm, KVM_CAP_INTROSPECTION);
	TEST_ASSERT(r == KVMI_VERSION,
		    "KVM_CHECK_EXTENSION(VM fd) = %d, expected %d", r,
		    KVMI_VERSION);

	r = kvm_check_cap(KVM_CAP_INTROSPECTION);
	TEST_ASSERT(r == KVMI_VERSION,
		    "KVM_CHECK_EXTENSION(/dev/kvm) = %d, expected %d", r,
		    KVMI_VERSION);

	kvm_vm_free(test_vm);
}

static void test_hook(void)
{
	setup_vm(guest_idle_code);
	check_connection_alive();
	teardown_vm();
}

static void test_hook_padding(void)
{
	int tool, kvm_end;

	create_vm(guest_idle_code);

	new_socket_pair(&tool, &kvm_end);
	EXPECT_ERR(__hook(test_vm, kvm_end, 1), -EINVAL);
	EXPECT_ERR(__hook(test_vm, kvm_end, 0x80000000), -EINVAL);
	close(tool);
	close(kvm_end);

	/* Nothing was hooked. */
	EXPECT_ERR(__preunhook(test_vm), -EFAULT);
	hook_introspection(test_vm);
	check_connection_alive();
	teardown_vm();
}

static void test_hook_not_a_socket(void)
{
	int efd, pipefd[2];

	create_vm(guest_idle_code);

	efd = eventfd(0, 0);
	TEST_ASSERT(efd >= 0, "eventfd() failed");
	EXPECT_ERR(__hook(test_vm, efd, 0), -EINVAL);
	close(efd);

	TEST_ASSERT(!pipe(pipefd), "pipe() failed");
	EXPECT_ERR(__hook(test_vm, pipefd[0], 0), -EINVAL);
	EXPECT_ERR(__hook(test_vm, pipefd[1], 0), -EINVAL);
	close(pipefd[0]);
	close(pipefd[1]);

	/* A bad fd is "not a socket" too. */
	EXPECT_ERR(__hook(test_vm, -1, 0), -EINVAL);
	EXPECT_ERR(__hook(test_vm, efd, 0), -EINVAL);

	EXPECT_ERR(__preunhook(test_vm), -EFAULT);
	hook_introspection(test_vm);
	check_connection_alive();
	teardown_vm();
}

static void test_hook_twice(void)
{
	int tool, kvm_end, efd;

	setup_vm(guest_idle_code);

	new_socket_pair(&tool, &kvm_end);
	EXPECT_ERR(__hook(test_vm, kvm_end, 0), -EEXIST);

	/* The padding is checked before, the fd after "already hooked". */
	EXPECT_ERR(__hook(test_vm, kvm_end, 1), -EINVAL);
	efd = eventfd(0, 0);
	TEST_ASSERT(efd >= 0, "eventfd() failed");
	EXPECT_ERR(__hook(test_vm, efd, 0), -EEXIST);
	close(efd);

	close(tool);
	close(kvm_end);

	/* The first connection is untouched. */
	check_connection_alive();
	teardown_vm();
}

static void test_hook_after_tool_close(void)
{
	int tool, kvm_end;

	setup_vm(guest_idle_code);
	check_connection_alive();

	close_tool_socket();

	new_socket_pair(&tool, &kvm_end);
	EXPECT_ERR(__hook(test_vm, kvm_end, 0), -EEXIST);
	close(tool);
	close(kvm_end);

	EXPECT_ERR(__unhook(test_vm), 0);

	hook_introspection(test_vm);
	check_connection_alive();
	teardown_vm();
}

static void test_unhook_not_hooked(void)
{
	create_vm(guest_idle_code);

	EXPECT_ERR(__unhook(test_vm), 0);

	hook_introspection(test_vm);
	EXPECT_ERR(__unhook(test_vm), 0);
	EXPECT_ERR(__unhook(test_vm), 0);
	close_tool_socket();

	kvm_vm_free(test_vm);
}

static void test_feature_ioctl_invalid(bool event)
{
	int (*feature)(struct kvm_vm *vm, __u32 allow, __s32 id);
	__s32 nr_ids = event ? 20 : 30;

	feature = event ? __event_feature : __command_feature;

	setup_vm(guest_idle_code);

	EXPECT_ERR(feature(test_vm, 2, -1), -EINVAL);
	EXPECT_ERR(feature(test_vm, 2, 0), -EINVAL);
	EXPECT_ERR(feature(test_vm, 0xffffffff, 0), -EINVAL);
	EXPECT_ERR(feature(test_vm, 1, -2), -EINVAL);
	EXPECT_ERR(feature(test_vm, 0, -2), -EINVAL);
	EXPECT_ERR(feature(test_vm, 1, -1000), -EINVAL);
	EXPECT_ERR(feature(test_vm, 1, nr_ids), -EINVAL);
	EXPECT_ERR(feature(test_vm, 0, nr_ids), -EINVAL);
	EXPECT_ERR(feature(test_vm, 1, 0x7fffffff), -EINVAL);

	/* In-range ids are accepted, even when they are not real ones. */
	EXPECT_ERR(feature(test_vm, 1, nr_ids - 1), 0);
	EXPECT_ERR(feature(test_vm, 0, nr_ids - 1), 0);
	EXPECT_ERR(feature(test_vm, 1, -1), 0);

	check_connection_alive();
	teardown_vm();
}

static void test_command_ioctl_invalid(void)
{
	test_feature_ioctl_invalid(false);
}

static void test_event_ioctl_invalid(void)
{
	test_feature_ioctl_invalid(true);
}

static void test_feature_ioctls_unhooked(void)
{
	create_vm(guest_idle_code);

	EXPECT_ERR(__command_feature(test_vm, 1, KVMI_VM_GET_INFO), -EFAULT);
	EXPECT_ERR(__command_feature(test_vm, 1, -1), -EFAULT);
	EXPECT_ERR(__event_feature(test_vm, 1, KVMI_VM_EVENT_UNHOOK),
		   -EFAULT);
	EXPECT_ERR(__event_feature(test_vm, 0, -1), -EFAULT);

	/* "Not hooked" is checked before the arguments. */
	EXPECT_ERR(__command_feature(test_vm, 2, 30), -EFAULT);
	EXPECT_ERR(__event_feature(test_vm, 2, 20), -EFAULT);

	/* Also after an unhook. */
	hook_introspection(test_vm);
	unhook_introspection(test_vm);
	EXPECT_ERR(__command_feature(test_vm, 1, KVMI_VM_GET_INFO), -EFAULT);
	EXPECT_ERR(__event_feature(test_vm, 1, KVMI_VM_EVENT_UNHOOK),
		   -EFAULT);

	kvm_vm_free(test_vm);
}

static void test_command_disallow_always_allowed(void)
{
	setup_vm(guest_idle_code);

	EXPECT_ERR(__command_feature(test_vm, 0, KVMI_GET_VERSION), -EPERM);
	EXPECT_ERR(__command_feature(test_vm, 0, KVMI_VM_CHECK_COMMAND),
		   -EPERM);
	EXPECT_ERR(__command_feature(test_vm, 0, KVMI_VM_CHECK_EVENT),
		   -EPERM);

	/* Allowing them is fine. */
	allow_command(KVMI_GET_VERSION);
	allow_command(KVMI_VM_CHECK_COMMAND);
	allow_command(KVMI_VM_CHECK_EVENT);

	EXPECT_ERR(vm_check_command(KVMI_GET_VERSION, 0, 0), 0);
	EXPECT_ERR(vm_check_command(KVMI_VM_CHECK_COMMAND, 0, 0), 0);
	EXPECT_ERR(vm_check_command(KVMI_VM_CHECK_EVENT, 0, 0), 0);
	check_connection_alive();

	teardown_vm();
}

static void test_command_disallow_all(void)
{
	struct kvmi_vm_get_info_reply info;

	setup_vm(guest_idle_code);

	allow_command(-1);
	EXPECT_ERR(vm_check_command(KVMI_VM_GET_INFO, 0, 0), 0);
	EXPECT_ERR(vm_get_info(&info), 0);

	disallow_command(-1);

	/* The always-allowed commands still work. */
	check_connection_alive();
	EXPECT_ERR(vm_check_command(KVMI_GET_VERSION, 0, 0), 0);
	EXPECT_ERR(vm_check_command(KVMI_VM_CHECK_COMMAND, 0, 0), 0);
	EXPECT_ERR(vm_check_command(KVMI_VM_CHECK_EVENT, 0, 0), 0);

	/* The others do not. */
	EXPECT_ERR(vm_check_command(KVMI_VM_GET_INFO, 0, 0), -KVM_EPERM);
	EXPECT_ERR(vm_check_command(KVMI_VM_READ_PHYSICAL, 0, 0),
		   -KVM_EPERM);
	EXPECT_ERR(vm_get_info(&info), -KVM_EPERM);

	teardown_vm();
}

static void test_command_allow_one(void)
{
	struct kvmi_vm_get_info_reply info;

	setup_vm(guest_idle_code);

	EXPECT_ERR(vm_check_command(KVMI_VM_GET_INFO, 0, 0), -KVM_EPERM);

	allow_command(KVMI_VM_GET_INFO);
	EXPECT_ERR(vm_check_command(KVMI_VM_GET_INFO, 0, 0), 0);
	EXPECT_ERR(vm_get_info(&info), 0);

	/* Only that one. */
	EXPECT_ERR(vm_check_command(KVMI_VM_CONTROL_EVENTS, 0, 0),
		   -KVM_EPERM);
	EXPECT_ERR(vm_check_command(KVMI_VM_READ_PHYSICAL, 0, 0),
		   -KVM_EPERM);
	EXPECT_ERR(vm_check_command(KVMI_VM_WRITE_PHYSICAL, 0, 0),
		   -KVM_EPERM);

	disallow_command(KVMI_VM_GET_INFO);
	EXPECT_ERR(vm_check_command(KVMI_VM_GET_INFO, 0, 0), -KVM_EPERM);
	EXPECT_ERR(vm_get_info(&info), -KVM_EPERM);

	teardown_vm();
}

static void test_preunhook_unhooked(void)
{
	create_vm(guest_idle_code);

	EXPECT_ERR(__preunhook(test_vm), -EFAULT);

	hook_introspection(test_vm);
	unhook_introspection(test_vm);
	EXPECT_ERR(__preunhook(test_vm), -EFAULT);

	kvm_vm_free(test_vm);
}

static void enable_unhook_event(void)
{
	allow_event(KVMI_VM_EVENT_UNHOOK);
	allow_command(KVMI_VM_CONTROL_EVENTS);
	EXPECT_ERR(vm_control_events(KVMI_VM_EVENT_UNHOOK, 1, 0, 0), 0);
}

static void test_preunhook_event_not_enabled(void)
{
	setup_vm(guest_idle_code);

	EXPECT_ERR(__preunhook(test_vm), -ENOENT);

	/* Allowed but not enabled. */
	allow_event(KVMI_VM_EVENT_UNHOOK);
	EXPECT_ERR(__preunhook(test_vm), -ENOENT);

	/* Enabled, then disabled. */
	allow_command(KVMI_VM_CONTROL_EVENTS);
	EXPECT_ERR(vm_control_events(KVMI_VM_EVENT_UNHOOK, 1, 0, 0), 0);
	EXPECT_ERR(vm_control_events(KVMI_VM_EVENT_UNHOOK, 0, 0, 0), 0);
	EXPECT_ERR(__preunhook(test_vm), -ENOENT);

	/* No event was sent. */
	expect_nothing(100);
	check_connection_alive();

	teardown_vm();
}

static void test_preunhook_event(void)
{
	__u32 seq;

	setup_vm(guest_idle_code);
	enable_unhook_event();

	EXPECT_ERR(__preunhook(test_vm), 0);
	seq = receive_vm_event(KVMI_VM_EVENT_UNHOOK);
	pr_info("# UNHOOK event seq %u\n", seq);

	/* No reply is expected; the connection is still usable. */
	check_connection_alive();

	EXPECT_ERR(__unhook(test_vm), 0);
	expect_eof();

	teardown_vm();
}

static void test_preunhook_after_tool_close(void)
{
	setup_vm(guest_idle_code);
	enable_unhook_event();

	close_tool_socket();
	EXPECT_ERR(__preunhook(test_vm), -ENOENT);

	teardown_vm();
}

/* ------------------------------------------------------------------ */
/* Cases: protocol                                                     */
/* ------------------------------------------------------------------ */

static void expect_enosys(__u16 id, const void *req, size_t req_size)
{
	expect_command(-KVM_ENOSYS, id, req, req_size);
	check_connection_alive();
}

static void test_unknown_message_ids(void)
{
	static const __u16 ids[] = {
		0xffff, KVMI_VM_SET_PAGE_ACCESS, KVMI_VM_GET_MAX_GFN,
		KVMI_VM_GET_MAP_TOKEN, 0x7ffe, 100, KVMI_VM_EVENT,
		KVMI_VCPU_EVENT, KVMI_VCPU_GET_INFO, KVMI_VCPU_GET_REGISTERS,
		KVMI_VCPU_TRANSLATE_GVA, 0x7fff,
	};
	__u8 payload[16] = {};
	unsigned int i;

	setup_vm(guest_idle_code);

	for (i = 0; i < ARRAY_SIZE(ids); i++) {
		expect_enosys(ids[i], NULL, 0);
		expect_enosys(ids[i], payload, sizeof(payload));
	}

	/* Allowing everything does not create handlers. */
	allow_command(-1);
	for (i = 0; i < ARRAY_SIZE(ids); i++)
		expect_enosys(ids[i], payload, sizeof(payload));

	teardown_vm();
}

static void test_disallowed_command(void)
{
	struct kvmi_vm_control_events ctl = {
		.event_id = KVMI_VM_EVENT_UNHOOK,
		.enable = 1,
	};
	struct kvmi_vm_read_physical rd = { .gpa = 0, .size = 1 };
	struct kvmi_vm_write_physical *wr;
	struct kvmi_vm_get_info_reply info;
	__u8 byte = 0;
	size_t wr_len;

	setup_vm(guest_idle_code);

	EXPECT_ERR(vm_get_info(&info), -KVM_EPERM);
	check_connection_alive();

	allow_event(KVMI_VM_EVENT_UNHOOK);
	expect_command(-KVM_EPERM, KVMI_VM_CONTROL_EVENTS, &ctl, sizeof(ctl));
	expect_command(-KVM_EPERM, KVMI_VM_READ_PHYSICAL, &rd, sizeof(rd));

	wr = build_write_physical(0, 1, 0, 0, &byte, 1, &wr_len);
	expect_command(-KVM_EPERM, KVMI_VM_WRITE_PHYSICAL, wr, wr_len);
	free(wr);

	check_connection_alive();

	/* The event was not enabled. */
	EXPECT_ERR(__preunhook(test_vm), -ENOENT);

	teardown_vm();
}

static void test_oversized_message(void)
{
	int tool, kvm_end, r;

	setup_vm(guest_idle_code);

	r = __send_message(KVMI_GET_VERSION, KVMI_MAX_MSG_SIZE + 1, 1, NULL, 0);
	TEST_ASSERT(!r, "send() failed: %s", err_str(r));
	expect_eof();

	/* The VM stays hooked until UNHOOK. */
	new_socket_pair(&tool, &kvm_end);
	EXPECT_ERR(__hook(test_vm, kvm_end, 0), -EEXIST);
	close(tool);
	close(kvm_end);

	EXPECT_ERR(__unhook(test_vm), 0);
	hook_introspection(test_vm);
	check_connection_alive();

	teardown_vm();
}

static void test_max_size_message(void)
{
	struct kvmi_get_version_reply rpl;
	__u32 seq;
	__u8 *buf;

	setup_vm(guest_idle_code);

	buf = malloc(KVMI_MAX_MSG_SIZE);
	TEST_ASSERT(buf, "Out of memory");
	memset(buf, 0xa5, KVMI_MAX_MSG_SIZE);

	seq = send_message(KVMI_GET_VERSION, buf, KVMI_MAX_MSG_SIZE);
	EXPECT_ERR(receive_reply(KVMI_GET_VERSION, seq, &rpl, sizeof(rpl)),
		   0);
	TEST_ASSERT(rpl.version == KVMI_VERSION, "Bad version %u",
		    rpl.version);
	free(buf);

	check_connection_alive();
	teardown_vm();
}

static void test_truncated_header(void)
{
	struct kvmi_msg_hdr hdr = { .id = KVMI_GET_VERSION, .seq = 1 };

	setup_vm(guest_idle_code);

	TEST_ASSERT(send(tool_fd, &hdr, 4, MSG_NOSIGNAL) == 4, "send() failed");
	TEST_ASSERT(!shutdown(tool_fd, SHUT_WR), "shutdown() failed");
	expect_eof();

	teardown_vm();
}

static void test_truncated_body(void)
{
	struct kvmi_vm_read_physical req = { .gpa = 0, .size = 1 };
	int r;

	setup_vm(guest_idle_code);
	allow_command(KVMI_VM_READ_PHYSICAL);

	r = __send_message(KVMI_VM_READ_PHYSICAL, sizeof(req), ++tool_seq,
			   &req, 8);
	TEST_ASSERT(!r, "send() failed: %s", err_str(r));
	TEST_ASSERT(!shutdown(tool_fd, SHUT_WR), "shutdown() failed");
	expect_eof();

	teardown_vm();
}

static void test_short_payload_zero_filled(void)
{
	struct kvmi_vm_check_command cmd = { .id = KVMI_GET_VERSION };
	struct kvmi_vm_check_event ev = { .id = KVMI_VM_EVENT_UNHOOK };
	struct kvmi_vm_control_events ctl = {
		.event_id = KVMI_VM_EVENT_UNHOOK,
		.enable = 1,
	};
	struct kvmi_vm_read_physical rd = { .gpa = 0, .size = 1 };
	__u32 seq;
	__u8 byte;

	setup_vm(guest_idle_code);

	/* Only the id: the padding reads as zero. */
	expect_command(0, KVMI_VM_CHECK_COMMAND, &cmd, 2);
	cmd.id = KVMI_VM_GET_INFO;
	expect_command(-KVM_EPERM, KVMI_VM_CHECK_COMMAND, &cmd, 2);

	/* No payload at all: id 0. */
	expect_command(-KVM_ENOENT, KVMI_VM_CHECK_COMMAND, NULL, 0);
	expect_command(-KVM_EPERM, KVMI_VM_CHECK_EVENT, NULL, 0);

	allow_event(KVMI_VM_EVENT_UNHOOK);
	expect_command(0, KVMI_VM_CHECK_EVENT, &ev, 2);
	expect_command(0, KVMI_VM_CHECK_EVENT, NULL, 0);

	/* The missing padding of VM_CONTROL_EVENTS reads as zero. */
	allow_command(KVMI_VM_CONTROL_EVENTS);
	expect_command(0, KVMI_VM_CONTROL_EVENTS, &ctl, 3);
	EXPECT_ERR(__preunhook(test_vm), 0);
	receive_vm_event(KVMI_VM_EVENT_UNHOOK);

	/* enable reads as 0: the event is disabled. */
	expect_command(0, KVMI_VM_CONTROL_EVENTS, &ctl, 2);
	EXPECT_ERR(__preunhook(test_vm), -ENOENT);

	/* VM_READ_PHYSICAL with only gpa and size. */
	allow_command(KVMI_VM_READ_PHYSICAL);
	seq = send_message(KVMI_VM_READ_PHYSICAL, &rd, 10);
	EXPECT_ERR(receive_reply(KVMI_VM_READ_PHYSICAL, seq, &byte, 1), 0);

	/* Without size (read as 0). */
	expect_command(-KVM_EINVAL, KVMI_VM_READ_PHYSICAL, &rd, 8);

	check_connection_alive();
	teardown_vm();
}

static void test_long_payload_ignored(void)
{
	struct {
		struct kvmi_vm_check_command req;
		__u8 extra[24];
	} cmd;
	struct {
		struct kvmi_vm_read_physical req;
		__u8 extra[8];
	} rd;
	struct kvmi_get_version_reply ver;
	__u8 junk[64];
	__u8 byte;
	__u32 seq;

	setup_vm(guest_idle_code);

	memset(junk, 0xff, sizeof(junk));
	seq = send_message(KVMI_GET_VERSION, junk, sizeof(junk));
	EXPECT_ERR(receive_reply(KVMI_GET_VERSION, seq, &ver, sizeof(ver)),
		   0);

	memset(&cmd, 0xff, sizeof(cmd));
	cmd.req.id = KVMI_VM_CHECK_EVENT;
	cmd.req.padding1 = 0;
	cmd.req.padding2 = 0;
	expect_command(0, KVMI_VM_CHECK_COMMAND, &cmd, sizeof(cmd));

	memset(&rd, 0xff, sizeof(rd));
	rd.req.gpa = 0;
	rd.req.size = 1;
	rd.req.padding1 = 0;
	rd.req.padding2 = 0;
	allow_command(KVMI_VM_READ_PHYSICAL);
	seq = send_message(KVMI_VM_READ_PHYSICAL, &rd, sizeof(rd));
	EXPECT_ERR(receive_reply(KVMI_VM_READ_PHYSICAL, seq, &byte, 1), 0);

	check_connection_alive();
	teardown_vm();
}

static void test_write_physical_short_payload(void)
{
	struct kvmi_vm_write_physical *req;
	__u8 data[PAGE_BYTES];
	size_t req_len;

	setup_mem_vm();
	guest_fill(0, PAGE_BYTES, 7);

	/* The EINVAL checks come first: these get a reply. */
	fill_pattern(data, 0, sizeof(data), 8);
	EXPECT_ERR(__vm_write_physical(test_page_gpa, 16, 1, 0, data, 8),
		   -KVM_EINVAL);
	EXPECT_ERR(__vm_write_physical(test_page_gpa, 16, 0, 1, data, 8),
		   -KVM_EINVAL);
	EXPECT_ERR(__vm_write_physical(test_page_gpa + PAGE_BYTES - 1, 16,
				       0, 0, data, 8), -KVM_EINVAL);
	check_connection_alive();
	guest_check(0, PAGE_BYTES, 7);

	/* Valid arguments, 8 data bytes instead of 16: closed. */
	req = build_write_physical(test_page_gpa, 16, 0, 0, data, 8, &req_len);
	send_message(KVMI_VM_WRITE_PHYSICAL, req, req_len);
	free(req);
	expect_eof();

	/* Nothing was written. */
	guest_check(0, PAGE_BYTES, 7);
	guest_finish();

	teardown_vm();
}

static void test_unhook_partial_message(void)
{
	struct kvmi_vm_read_physical req = { .gpa = 0, .size = 1 };
	long long start, elapsed;
	int r;

	setup_vm(guest_idle_code);
	allow_command(KVMI_VM_READ_PHYSICAL);
	check_connection_alive();

	/* Half a message: KVM's receiving thread waits for the rest. */
	r = __send_message(KVMI_VM_READ_PHYSICAL, sizeof(req), ++tool_seq,
			   &req, 8);
	TEST_ASSERT(!r, "send() failed: %s", err_str(r));
	usleep(200 * 1000);

	start = now_ms();
	EXPECT_ERR(__unhook(test_vm), 0);
	elapsed = now_ms() - start;
	TEST_ASSERT(elapsed < UNHOOK_MAX_MS, "UNHOOK took %lld ms", elapsed);

	expect_closed();

	hook_introspection(test_vm);
	check_connection_alive();
	teardown_vm();
}

struct flood_state {
	int fd;
	unsigned long replies;
	int end_err;
};

/* Send GET_VERSION and read its reply, until the connection dies. */
static void *flood_thread(void *arg)
{
	struct flood_state *st = arg;
	struct kvmi_msg_hdr hdr = { .id = KVMI_GET_VERSION };
	__u8 rpl[sizeof(struct kvmi_msg_hdr) + sizeof(struct kvmi_error_code) +
		 sizeof(struct kvmi_get_version_reply)];
	ssize_t r;

	for (;;) {
		hdr.seq++;
		r = send(st->fd, &hdr, sizeof(hdr), MSG_NOSIGNAL);
		if (r != sizeof(hdr)) {
			st->end_err = r < 0 ? errno : EIO;
			break;
		}
		r = recv_full(st->fd, rpl, sizeof(rpl));
		if (r != sizeof(rpl)) {
			st->end_err = r < 0 ? (int)-r : 0;
			break;
		}
		WRITE_ONCE(st->replies, st->replies + 1);
	}

	return NULL;
}

static void test_unhook_busy_connection(void)
{
	struct flood_state st = {};
	long long start, elapsed;
	pthread_t thread;

	setup_vm(guest_idle_code);

	st.fd = tool_fd;
	TEST_ASSERT(!pthread_create(&thread, NULL, flood_thread, &st),
		    "pthread_create() failed");

	start = now_ms();
	while (READ_ONCE(st.replies) < 100 && now_ms() - start < 5000)
		usleep(1000);
	TEST_ASSERT(READ_ONCE(st.replies) > 0, "No reply to GET_VERSION");

	start = now_ms();
	EXPECT_ERR(__unhook(test_vm), 0);
	elapsed = now_ms() - start;
	TEST_ASSERT(elapsed < UNHOOK_MAX_MS, "UNHOOK took %lld ms", elapsed);

	pthread_join(thread, NULL);
	TEST_ASSERT(!st.end_err || st.end_err == EPIPE ||
		    st.end_err == ECONNRESET,
		    "The sender stopped with: %s", strerror(st.end_err));
	pr_info("# %lu replies before UNHOOK\n", st.replies);

	expect_closed();

	hook_introspection(test_vm);
	check_connection_alive();
	teardown_vm();
}

/* ------------------------------------------------------------------ */
/* Cases: commands                                                     */
/* ------------------------------------------------------------------ */

static void test_get_version(void)
{
	struct kvmi_get_version_reply rpl;

	setup_vm(guest_idle_code);

	/* receive_reply() checks that hdr.size is 8 + 16 = 24. */
	TEST_ASSERT(sizeof(rpl) == 16, "sizeof(kvmi_get_version_reply) = %zu",
		    sizeof(rpl));
	get_version(&rpl);
	TEST_ASSERT(rpl.version == KVMI_VERSION, "version %u, expected %u",
		    rpl.version, KVMI_VERSION);
	TEST_ASSERT(rpl.max_msg_size == KVMI_MAX_MSG_SIZE,
		    "max_msg_size %u, expected %zu", rpl.max_msg_size,
		    KVMI_MAX_MSG_SIZE);
	TEST_ASSERT(rpl.max_msg_size == 8184, "max_msg_size %u",
		    rpl.max_msg_size);
	TEST_ASSERT(rpl.features.singlestep == 0, "features.singlestep %u",
		    rpl.features.singlestep);

	teardown_vm();
}

static void test_vm_check_command(void)
{
	static const __u16 allowed[] = {
		KVMI_GET_VERSION, KVMI_VM_CHECK_COMMAND, KVMI_VM_CHECK_EVENT,
	};
	static const __u16 disallowed[] = {
		KVMI_VM_GET_INFO, KVMI_VM_CONTROL_EVENTS,
		KVMI_VM_READ_PHYSICAL, KVMI_VM_WRITE_PHYSICAL,
	};
	static const __u16 unknown[] = {
		KVMI_VM_EVENT, KVMI_VCPU_EVENT, KVMI_VM_SET_PAGE_ACCESS,
		KVMI_VM_GET_MAX_GFN, KVMI_VM_GET_MAP_TOKEN, 0xffff, 0x7ffe,
		KVMI_VCPU_GET_INFO, KVMI_VCPU_CONTROL_EVENTS,
		KVMI_VCPU_TRANSLATE_GVA, 31, 40,
	};
	unsigned int i;

	setup_vm(guest_idle_code);

	for (i = 0; i < ARRAY_SIZE(allowed); i++)
		EXPECT_ERR(vm_check_command(allowed[i], 0, 0), 0);
	for (i = 0; i < ARRAY_SIZE(disallowed); i++)
		EXPECT_ERR(vm_check_command(disallowed[i], 0, 0),
			   -KVM_EPERM);
	for (i = 0; i < ARRAY_SIZE(unknown); i++)
		EXPECT_ERR(vm_check_command(unknown[i], 0, 0), -KVM_ENOENT);

	/* Padding is checked first. */
	EXPECT_ERR(vm_check_command(KVMI_GET_VERSION, 1, 0), -KVM_EINVAL);
	EXPECT_ERR(vm_check_command(KVMI_GET_VERSION, 0, 1), -KVM_EINVAL);
	EXPECT_ERR(vm_check_command(KVMI_VM_GET_INFO, 0x8000, 0),
		   -KVM_EINVAL);
	EXPECT_ERR(vm_check_command(0xffff, 0, 0x80000000), -KVM_EINVAL);

	/* Allowing everything does not make unknown ids known. */
	allow_command(-1);
	for (i = 0; i < ARRAY_SIZE(disallowed); i++)
		EXPECT_ERR(vm_check_command(disallowed[i], 0, 0), 0);
	for (i = 0; i < ARRAY_SIZE(unknown); i++)
		EXPECT_ERR(vm_check_command(unknown[i], 0, 0), -KVM_ENOENT);

	teardown_vm();
}

static void test_vm_check_event(void)
{
	static const __u16 unknown[] = {
		1, 2, 3, 19, 20, 21, 0xff, 0xffff,
		KVMI_VCPU_EVENT_PAUSE, KVMI_VCPU_EVENT_SINGLESTEP,
	};
	unsigned int i;

	setup_vm(guest_idle_code);

	EXPECT_ERR(vm_check_event(KVMI_VM_EVENT_UNHOOK, 0, 0), -KVM_EPERM);
	for (i = 0; i < ARRAY_SIZE(unknown); i++)
		EXPECT_ERR(vm_check_event(unknown[i], 0, 0), -KVM_ENOENT);

	allow_event(KVMI_VM_EVENT_UNHOOK);
	EXPECT_ERR(vm_check_event(KVMI_VM_EVENT_UNHOOK, 0, 0), 0);

	EXPECT_ERR(vm_check_event(KVMI_VM_EVENT_UNHOOK, 1, 0), -KVM_EINVAL);
	EXPECT_ERR(vm_check_event(KVMI_VM_EVENT_UNHOOK, 0, 1), -KVM_EINVAL);
	EXPECT_ERR(vm_check_event(0xffff, 0xffff, 0), -KVM_EINVAL);

	EXPECT_ERR(__event_feature(test_vm, 0, KVMI_VM_EVENT_UNHOOK), 0);
	EXPECT_ERR(vm_check_event(KVMI_VM_EVENT_UNHOOK, 0, 0), -KVM_EPERM);

	allow_event(-1);
	EXPECT_ERR(vm_check_event(KVMI_VM_EVENT_UNHOOK, 0, 0), 0);
	for (i = 0; i < ARRAY_SIZE(unknown); i++)
		EXPECT_ERR(vm_check_event(unknown[i], 0, 0), -KVM_ENOENT);

	EXPECT_ERR(__event_feature(test_vm, 0, -1), 0);
	EXPECT_ERR(vm_check_event(KVMI_VM_EVENT_UNHOOK, 0, 0), -KVM_EPERM);

	teardown_vm();
}

static void check_vcpu_count(__u32 expected)
{
	struct kvmi_vm_get_info_reply rpl;

	allow_command(KVMI_VM_GET_INFO);

	/* receive_reply() checks hdr.size (24) and the padding. */
	EXPECT_ERR(vm_get_info(&rpl), 0);
	TEST_ASSERT(rpl.vcpu_count == expected, "vcpu_count %u, expected %u",
		    rpl.vcpu_count, expected);
}

static void test_vm_get_info(void)
{
	setup_vm(guest_idle_code);
	check_vcpu_count(1);
	teardown_vm();
}

static void test_vm_get_info_two_vcpus(void)
{
	struct kvm_vcpu *vcpus[2];

	test_vm = vm_create_with_vcpus(2, guest_idle_code, vcpus);
	test_vcpu = vcpus[0];
	hook_introspection(test_vm);

	check_vcpu_count(2);

	teardown_vm();
}

static void test_vm_control_events(void)
{
	setup_vm(guest_idle_code);
	allow_command(KVMI_VM_CONTROL_EVENTS);

	/* The event is not allowed yet: EINVAL checks come first. */
	EXPECT_ERR(vm_control_events(KVMI_VM_EVENT_UNHOOK, 1, 1, 0),
		   -KVM_EINVAL);
	EXPECT_ERR(vm_control_events(KVMI_VM_EVENT_UNHOOK, 1, 0, 1),
		   -KVM_EINVAL);
	EXPECT_ERR(vm_control_events(KVMI_VM_EVENT_UNHOOK, 2, 0, 0),
		   -KVM_EINVAL);
	EXPECT_ERR(vm_control_events(1, 1, 0, 0), -KVM_EINVAL);
	EXPECT_ERR(vm_control_events(KVMI_VM_EVENT_UNHOOK, 1, 0, 0),
		   -KVM_EPERM);
	EXPECT_ERR(vm_control_events(KVMI_VM_EVENT_UNHOOK, 0, 0, 0),
		   -KVM_EPERM);

	allow_event(KVMI_VM_EVENT_UNHOOK);

	EXPECT_ERR(vm_control_events(KVMI_VM_EVENT_UNHOOK, 1, 1, 0),
		   -KVM_EINVAL);
	EXPECT_ERR(vm_control_events(KVMI_VM_EVENT_UNHOOK, 1, 0, 1),
		   -KVM_EINVAL);
	EXPECT_ERR(vm_control_events(KVMI_VM_EVENT_UNHOOK, 2, 0, 0),
		   -KVM_EINVAL);
	EXPECT_ERR(vm_control_events(KVMI_VM_EVENT_UNHOOK, 0xff, 0, 0),
		   -KVM_EINVAL);
	EXPECT_ERR(vm_control_events(1, 1, 0, 0), -KVM_EINVAL);
	EXPECT_ERR(vm_control_events(2, 1, 0, 0), -KVM_EINVAL);
	EXPECT_ERR(vm_control_events(0xffff, 0, 0, 0), -KVM_EINVAL);

	/* None of these enabled the event. */
	EXPECT_ERR(__preunhook(test_vm), -ENOENT);

	EXPECT_ERR(vm_control_events(KVMI_VM_EVENT_UNHOOK, 1, 0, 0), 0);
	EXPECT_ERR(__preunhook(test_vm), 0);
	receive_vm_event(KVMI_VM_EVENT_UNHOOK);

	EXPECT_ERR(vm_control_events(KVMI_VM_EVENT_UNHOOK, 0, 0, 0), 0);
	EXPECT_ERR(__preunhook(test_vm), -ENOENT);

	expect_nothing(100);
	teardown_vm();
}

static void test_vm_read_physical(void)
{
	setup_mem_vm();

	guest_fill(0, PAGE_BYTES, 1);

	tool_check(0, PAGE_BYTES, 1);
	tool_check(PAGE_BYTES - 1, 1, 1);
	tool_check(0, 1, 1);
	tool_check(100, 200, 1);
	tool_check(PAGE_BYTES - 8, 8, 1);

	/* A change made by the guest is seen. */
	guest_fill(2000, 100, 2);
	tool_check(2000, 100, 2);
	tool_check(0, 2000, 1);
	tool_check(2100, PAGE_BYTES - 2100, 1);

	guest_finish();
	teardown_vm();
}

static void test_vm_write_physical(void)
{
	static __u8 buf[PAGE_BYTES];

	setup_mem_vm();

	guest_fill(0, PAGE_BYTES, 1);

	/* A full page. */
	tool_fill(0, PAGE_BYTES, 2);
	guest_check(0, PAGE_BYTES, 2);
	tool_check(0, PAGE_BYTES, 2);

	/* The last byte of the page. */
	tool_fill(PAGE_BYTES - 1, 1, 3);
	guest_check(PAGE_BYTES - 1, 1, 3);
	guest_check(0, PAGE_BYTES - 1, 2);

	/* The first byte of the page. */
	tool_fill(0, 1, 4);
	guest_check(0, 1, 4);
	guest_check(1, PAGE_BYTES - 2, 2);

	/* A range in the middle. */
	tool_fill(1000, 10, 5);
	guest_check(0, 1, 4);
	guest_check(1, 999, 2);
	guest_check(1000, 10, 5);
	guest_check(1010, PAGE_BYTES - 1011, 2);
	guest_check(PAGE_BYTES - 1, 1, 3);
	tool_check(1000, 10, 5);

	/* A single-byte write of a fixed value. */
	buf[0] = 0x5a;
	EXPECT_ERR(vm_write_physical(test_page_gpa + 4000, 1, buf), 0);
	EXPECT_ERR(vm_read_physical(test_page_gpa + 4000, 1, buf + 1), 0);
	TEST_ASSERT(buf[1] == 0x5a, "Read back %#x, expected 0x5a", buf[1]);

	guest_finish();
	teardown_vm();
}

static void test_vm_read_physical_invalid(void)
{
	static __u8 buf[2 * PAGE_BYTES];
	__u64 gpa;

	setup_mem_vm();
	gpa = test_page_gpa;

	/* Crossing the page. */
	EXPECT_ERR(vm_read_physical(gpa + PAGE_BYTES - 1, 2, buf),
		   -KVM_EINVAL);
	EXPECT_ERR(vm_read_physical(gpa + 1, PAGE_BYTES, buf), -KVM_EINVAL);
	EXPECT_ERR(vm_read_physical(gpa + 2048, 2049, buf), -KVM_EINVAL);

	/* Size 0 and more than a page. */
	EXPECT_ERR(vm_read_physical(gpa, 0, buf), -KVM_EINVAL);
	EXPECT_ERR(vm_read_physical(gpa, PAGE_BYTES + 1, buf), -KVM_EINVAL);
	EXPECT_ERR(vm_read_physical(gpa, 0xffff, buf), -KVM_EINVAL);

	/* Padding. */
	EXPECT_ERR(__vm_read_physical(gpa, 1, 1, 0, buf), -KVM_EINVAL);
	EXPECT_ERR(__vm_read_physical(gpa, 1, 0, 1, buf), -KVM_EINVAL);
	EXPECT_ERR(__vm_read_physical(INVALID_GPA, 1, 1, 0, buf),
		   -KVM_EINVAL);

	/* Beyond guest memory. */
	EXPECT_ERR(vm_read_physical(INVALID_GPA, 1, buf), -KVM_ENOENT);
	EXPECT_ERR(vm_read_physical(INVALID_GPA, PAGE_BYTES, buf),
		   -KVM_ENOENT);
	EXPECT_ERR(vm_read_physical(gpa_after_memslots(test_vm), 1, buf),
		   -KVM_ENOENT);

	/* The range checks come before the memslot lookup. */
	EXPECT_ERR(vm_read_physical(INVALID_GPA + PAGE_BYTES - 1, 2, buf),
		   -KVM_EINVAL);

	/* Still usable. */
	guest_fill(0, PAGE_BYTES, 9);
	tool_check(0, PAGE_BYTES, 9);

	guest_finish();
	teardown_vm();
}

static void test_vm_write_physical_invalid(void)
{
	static __u8 data[2 * PAGE_BYTES];
	__u64 gpa;

	setup_mem_vm();
	gpa = test_page_gpa;

	guest_fill(0, PAGE_BYTES, 5);
	fill_pattern(data, 0, sizeof(data), 6);

	/* Crossing the page. */
	EXPECT_ERR(vm_write_physical(gpa + PAGE_BYTES - 1, 2, data),
		   -KVM_EINVAL);
	EXPECT_ERR(vm_write_physical(gpa + 1, PAGE_BYTES, data),
		   -KVM_EINVAL);
	EXPECT_ERR(vm_write_physical(gpa + 2048, 2049, data), -KVM_EINVAL);

	/* Size 0 and more than a page. */
	EXPECT_ERR(vm_write_physical(gpa, 0, data), -KVM_EINVAL);
	EXPECT_ERR(vm_write_physical(gpa, PAGE_BYTES + 1, data),
		   -KVM_EINVAL);

	/* Padding. */
	EXPECT_ERR(__vm_write_physical(gpa, 16, 1, 0, data, 16),
		   -KVM_EINVAL);
	EXPECT_ERR(__vm_write_physical(gpa, 16, 0, 1, data, 16),
		   -KVM_EINVAL);

	/* Beyond guest memory. */
	EXPECT_ERR(vm_write_physical(INVALID_GPA, 16, data), -KVM_ENOENT);
	EXPECT_ERR(vm_write_physical(gpa_after_memslots(test_vm), 1, data),
		   -KVM_ENOENT);

	/* The guest sees its own data, untouched. */
	guest_check(0, PAGE_BYTES, 5);
	tool_check(0, PAGE_BYTES, 5);

	guest_finish();
	teardown_vm();
}

/* ------------------------------------------------------------------ */
/* Demo                                                                */
/* ------------------------------------------------------------------ */

static int run_demo(void)
{
	struct kvmi_get_version_reply ver;
	struct kvmi_vm_get_info_reply info;
	char text[sizeof(demo_text)];
	unsigned int i;

	setup_vm(guest_demo_code);
	test_page_gva = vm_vaddr_alloc_page(test_vm);
	test_page_gpa = addr_gva2gpa(test_vm, test_page_gva);
	vcpu_args_set(test_vcpu, 1, test_page_gva);

	printf("Hooked a new VM; the tool talks to KVM over a socketpair\n");

	get_version(&ver);
	printf("KVMI version: %u, max message size: %u bytes, singlestep: %u\n",
	       ver.version, ver.max_msg_size, ver.features.singlestep);

	allow_command(KVMI_VM_GET_INFO);
	EXPECT_ERR(vm_get_info(&info), 0);
	printf("VM_GET_INFO: vcpu_count %u\n", info.vcpu_count);

	run_guest(UCALL_SYNC);
	printf("The guest wrote %zu bytes at gva 0x%lx (gpa 0x%llx)\n",
	       sizeof(demo_text), (unsigned long)test_page_gva,
	       (unsigned long long)test_page_gpa);

	allow_command(KVMI_VM_READ_PHYSICAL);
	EXPECT_ERR(vm_read_physical(test_page_gpa, sizeof(text), text), 0);
	TEST_ASSERT(!memcmp(text, demo_text, sizeof(text)),
		    "VM_READ_PHYSICAL returned unexpected bytes");
	printf("VM_READ_PHYSICAL gpa 0x%llx size %zu: \"%s\"\n",
	       (unsigned long long)test_page_gpa, sizeof(text), text);
	printf("bytes:");
	for (i = 0; i < sizeof(text); i++)
		printf(" %02x", (__u8)text[i]);
	printf("\n");

	run_guest(UCALL_DONE);
	teardown_vm();

	printf("Unhooked\n");
	return 0;
}

/* ------------------------------------------------------------------ */
/* Runner                                                              */
/* ------------------------------------------------------------------ */

struct kvmi_case {
	const char *name;
	void (*fn)(void);
};

static const struct kvmi_case cases[] = {
	/* ioctls */
	{ "cap_introspection", test_cap_introspection },
	{ "hook", test_hook },
	{ "hook_padding", test_hook_padding },
	{ "hook_not_a_socket", test_hook_not_a_socket },
	{ "hook_twice", test_hook_twice },
	{ "hook_after_tool_close", test_hook_after_tool_close },
	{ "unhook_not_hooked", test_unhook_not_hooked },
	{ "command_ioctl_invalid", test_command_ioctl_invalid },
	{ "event_ioctl_invalid", test_event_ioctl_invalid },
	{ "feature_ioctls_unhooked", test_feature_ioctls_unhooked },
	{ "command_disallow_always_allowed",
	  test_command_disallow_always_allowed },
	{ "command_disallow_all", test_command_disallow_all },
	{ "command_allow_one", test_command_allow_one },
	{ "preunhook_unhooked", test_preunhook_unhooked },
	{ "preunhook_event_not_enabled", test_preunhook_event_not_enabled },
	{ "preunhook_event", test_preunhook_event },
	{ "preunhook_after_tool_close", test_preunhook_after_tool_close },
	/* protocol */
	{ "unknown_message_ids", test_unknown_message_ids },
	{ "disallowed_command", test_disallowed_command },
	{ "oversized_message", test_oversized_message },
	{ "max_size_message", test_max_size_message },
	{ "truncated_header", test_truncated_header },
	{ "truncated_body", test_truncated_body },
	{ "short_payload_zero_filled", test_short_payload_zero_filled },
	{ "long_payload_ignored", test_long_payload_ignored },
	{ "write_physical_short_payload", test_write_physical_short_payload },
	{ "unhook_partial_message", test_unhook_partial_message },
	{ "unhook_busy_connection", test_unhook_busy_connection },
	/* commands */
	{ "get_version", test_get_version },
	{ "vm_check_command", test_vm_check_command },
	{ "vm_check_event", test_vm_check_event },
	{ "vm_get_info", test_vm_get_info },
	{ "vm_get_info_two_vcpus", test_vm_get_info_two_vcpus },
	{ "vm_control_events", test_vm_control_events },
	{ "vm_read_physical", test_vm_read_physical },
	{ "vm_write_physical", test_vm_write_physical },
	{ "vm_read_physical_invalid", test_vm_read_physical_invalid },
	{ "vm_write_physical_invalid", test_vm_write_physical_invalid },
};

/*
 * Wait for the child running a case.  Returns its wait status, or -1 if it
 * could not be reaped in time (e.g. stuck in the kernel).
 */
static int wait_case(pid_t pid)
{
	long long deadline = now_ms() + (CASE_TIMEOUT_SEC + 30) * 1000LL;
	int status;
	pid_t r;

	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		TEST_ASSERT(r == 0 || errno == EINTR, "waitpid() failed");
		if (now_ms() > deadline) {
			kill(pid, SIGKILL);
			return -1;
		}
		usleep(10 * 1000);
	}
}

static void run_case(const struct kvmi_case *c)
{
	int status;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);

	pid = fork();
	TEST_ASSERT(pid >= 0, "fork() failed");
	if (!pid) {
		alarm(CASE_TIMEOUT_SEC);
		c->fn();
		exit(KSFT_PASS);
	}

	status = wait_case(pid);
	if (status == -1) {
		ksft_print_msg("%s: the child process is stuck\n", c->name);
		ksft_test_result_fail("%s\n", c->name);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == KSFT_PASS) {
		ksft_test_result_pass("%s\n", c->name);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == KSFT_SKIP) {
		ksft_test_result_skip("%s\n", c->name);
	} else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
		ksft_print_msg("%s: timed out after %d seconds\n", c->name,
			       CASE_TIMEOUT_SEC);
		ksft_test_result_fail("%s\n", c->name);
	} else if (WIFSIGNALED(status)) {
		ksft_print_msg("%s: killed by signal %d\n", c->name,
			       WTERMSIG(status));
		ksft_test_result_fail("%s\n", c->name);
	} else {
		ksft_print_msg("%s: exit status %d\n", c->name,
			       WEXITSTATUS(status));
		ksft_test_result_fail("%s\n", c->name);
	}
}

static const struct kvmi_case *find_case(const char *name)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(cases); i++)
		if (!strcmp(cases[i].name, name))
			return &cases[i];
	return NULL;
}

int main(int argc, char *argv[])
{
	unsigned int i;
	int a;

	if (argc > 1 && !strcmp(argv[1], "--list")) {
		for (i = 0; i < ARRAY_SIZE(cases); i++)
			printf("%s\n", cases[i].name);
		return 0;
	}

	__TEST_REQUIRE(kvm_has_cap(KVM_CAP_INTROSPECTION),
		       "KVM_CAP_INTROSPECTION is not available (no KVMI in the kernel, or kvm.introspection=0)");

	if (argc > 1 && !strcmp(argv[1], "--demo"))
		return run_demo();

	for (a = 1; a < argc; a++)
		if (!find_case(argv[a]))
			ksft_exit_fail_msg("Unknown case '%s' (see --list)\n",
					   argv[a]);

	ksft_print_header();

	if (argc > 1) {
		ksft_set_plan(argc - 1);
		for (a = 1; a < argc; a++)
			run_case(find_case(argv[a]));
	} else {
		ksft_set_plan(ARRAY_SIZE(cases));
		for (i = 0; i < ARRAY_SIZE(cases); i++)
			run_case(&cases[i]);
	}

	ksft_finished();
}
