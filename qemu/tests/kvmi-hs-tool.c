// SPDX-License-Identifier: GPL-2.0
/*
 * kvmi-hs-tool: the tool side of the QEMU introspection handshake, for
 * testing the QEMU series (not an introspection tool: see samples/kvmi).
 *
 *   kvmi-hs-tool listen SOCKET [options]
 *       Listen on the UNIX socket SOCKET, accept connections from QEMU's
 *       introspection object and, for each: read and print the 104-byte
 *       hello, send the reply (struct_size + cookie hash), send
 *       KVMI_GET_VERSION and print KVM's answer. Then:
 *         --unhook     enable KVMI_VM_EVENT_UNHOOK (KVMI_VM_CONTROL_EVENTS);
 *                      when the event comes, print it and close
 *         (default)    wait until the connection is closed by the other end
 *       Options:
 *         --count N         handle N connections, then exit (default 1)
 *         --modes M1,M2,..  per connection: unhook | wait | close | badsize
 *                           | noreply | crash; the last one repeats (close = close right after
 *                           GET_VERSION; badsize = reply with struct_size 8;
 *                           noreply = send no reply, wait for QEMU to close)
 *         --cookie HEX      the 20-byte cookie hash, 40 hex digits
 *                           (default: zeros)
 *         --reply-size N    struct_size of the reply (default 24)
 *         --unhook-delay MS wait MS ms between the UNHOOK event and the
 *                           close ("removing the hooks"; default 0)
 *       Mode crash: send KVMI_VM_PAUSE_VCPU for vCPU 0 and answer its PAUSE
 *       event with the CRASH action (KVM then exits to QEMU with
 *       KVM_SYSTEM_EVENT_CRASH).
 *   kvmi-hs-tool qmp SOCKET COMMAND-JSON...
 *       Connect to a QMP UNIX socket, negotiate capabilities, run each
 *       command and print its reply with the time it took.
 *
 * Every line it prints starts with "tool:" or "qmp:" and the CLOCK_MONOTONIC
 * time, so that the lines of the two modes can be ordered.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void say(const char *who, const char *fmt, ...)
{
	va_list ap;

	/* CLOCK_MONOTONIC: the tool and the QMP client share the time base */
	printf("%s [%9.3f] ", who, now());
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static int read_all(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, (char *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += n;
	}
	return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	return send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

struct hello {
	uint32_t struct_size;
	uint8_t uuid[16];
	uint32_t padding;
	int64_t start_time;
	char name[64];
	uint64_t max_gpa;
};

struct reply {
	uint32_t struct_size;
	uint8_t cookie_hash[20];
};

struct msg_hdr {
	uint16_t id;
	uint16_t size;
	uint32_t seq;
};

static int unix_socket(const char *path, struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	snprintf(sa->sun_path, sizeof(sa->sun_path), "%s", path);
	return fd;
}

/* Read one KVMI message; returns its id, or -1 on EOF/error. */
static int read_msg(int fd, struct msg_hdr *h, uint8_t *buf, size_t max)
{
	if (read_all(fd, h, sizeof(*h)))
		return -1;
	if (h->size > max)
		return -1;
	if (read_all(fd, buf, h->size))
		return -1;
	return h->id;
}

static int get_version(int fd)
{
	struct msg_hdr req = { .id = 2, .size = 0, .seq = 1000 }, h;
	uint8_t buf[64];
	int32_t err;
	uint32_t version, max_msg_size;

	if (write_all(fd, &req, sizeof(req))) {
		say("tool:", "GET_VERSION: send failed: %s", strerror(errno));
		return -1;
	}
	if (read_msg(fd, &h, buf, sizeof(buf)) < 0) {
		say("tool:", "GET_VERSION: no reply (connection closed)");
		return -1;
	}
	memcpy(&err, buf, 4);
	if (h.id != 2 || h.seq != 1000 || err) {
		say("tool:", "GET_VERSION: bad reply id=%u seq=%u size=%u err=%d",
		    h.id, h.seq, h.size, err);
		return -1;
	}
	memcpy(&version, buf + 8, 4);
	memcpy(&max_msg_size, buf + 12, 4);
	say("tool:", "GET_VERSION: ok, answered by KVM: version=%u max_msg_size=%u singlestep=%u (reply size %u)",
	    version, max_msg_size, buf[16], h.size);
	return version >= 1 ? 0 : -1;
}

static int enable_unhook_event(int fd)
{
	struct {
		struct msg_hdr h;
		uint16_t event_id;
		uint8_t enable, pad1;
		uint32_t pad2;
	} req = { .h = { .id = 10, .size = 8, .seq = 1001 }, .event_id = 0, .enable = 1 };
	struct msg_hdr h;
	uint8_t buf[64];
	int32_t err;

	if (write_all(fd, &req, sizeof(req)) || read_msg(fd, &h, buf, sizeof(buf)) < 0) {
		say("tool:", "VM_CONTROL_EVENTS(UNHOOK): failed");
		return -1;
	}
	memcpy(&err, buf, 4);
	say("tool:", "VM_CONTROL_EVENTS(UNHOOK, enable): err=%d", err);
	return err ? -1 : 0;
}

static int unhook_delay_ms;

static int pause_and_crash(int fd)
{
	struct {
		struct msg_hdr h;
		uint16_t vcpu;
		uint8_t wait, pad1;
		uint32_t pad2;
	} req = { .h = { .id = 16, .size = 8, .seq = 1002 }, .vcpu = 0, .wait = 0 };
	struct {
		struct msg_hdr h;
		uint16_t vcpu, pad1;
		uint32_t pad2;
		uint8_t action, event;
		uint16_t pad3;
		uint32_t pad4;
	} rpl = { .h = { .id = 1, .size = 16 }, .action = 2 /* CRASH */, .event = 1 };
	uint8_t buf[8192];
	struct msg_hdr h;
	int32_t err;
	int id;

	if (write_all(fd, &req, sizeof(req)))
		return -1;
	while ((id = read_msg(fd, &h, buf, sizeof(buf))) >= 0) {
		if (id == 16 && h.seq == 1002) {
			memcpy(&err, buf, 4);
			say("tool:", "VM_PAUSE_VCPU(0): err=%d", err);
			if (err)
				return -1;
			continue;
		}
		if (id == 1 && buf[0] == 1) {
			uint16_t vcpu;

			memcpy(&vcpu, buf + 8 + 2, 2);
			say("tool:", "PAUSE event from vCPU %u (seq %u, size %u): replying CRASH", vcpu, h.seq, h.size);
			rpl.h.seq = h.seq;
			rpl.vcpu = vcpu;
			return write_all(fd, &rpl, sizeof(rpl));
		}
		say("tool:", "message id=%d size=%u", id, h.size);
	}
	return -1;
}

static int parse_hex(const char *s, uint8_t *out, size_t len)
{
	size_t i;

	if (strlen(s) != 2 * len)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned int b;

		if (sscanf(s + 2 * i, "%2x", &b) != 1)
			return -1;
		out[i] = b;
	}
	return 0;
}

static void handle(int fd, int nr, const char *mode, const uint8_t *cookie, uint32_t reply_size)
{
	struct hello hello;
	struct reply reply;
	char uuid[40];
	uint8_t buf[8192];
	struct msg_hdr h;
	int i, id;

	say("tool:", "connection %d accepted (mode %s)", nr, mode);
	if (read_all(fd, &hello, sizeof(hello))) {
		say("tool:", "connection %d: no hello", nr);
		return;
	}
	for (i = 0; i < 16; i++)
		sprintf(uuid + 2 * i, "%02x", hello.uuid[i]);
	say("tool:", "hello: struct_size=%u uuid=%s start_time=%lld name=\"%.64s\" max_gpa=0x%llx",
	    hello.struct_size, uuid, (long long)hello.start_time, hello.name,
	    (unsigned long long)hello.max_gpa);

	if (!strcmp(mode, "noreply")) {
		say("tool:", "sending no reply");
		if (read(fd, buf, 1) <= 0)
			say("tool:", "connection %d closed by QEMU", nr);
		return;
	}
	memset(&reply, 0, sizeof(reply));
	reply.struct_size = !strcmp(mode, "badsize") ? 8 : reply_size;
	memcpy(reply.cookie_hash, cookie, 20);
	if (write_all(fd, &reply, sizeof(reply))) {
		say("tool:", "reply: send failed");
		return;
	}
	if (reply.struct_size > sizeof(reply)) {
		memset(buf, 0, reply.struct_size - sizeof(reply));
		write_all(fd, buf, reply.struct_size - sizeof(reply));
	}
	say("tool:", "reply sent (struct_size=%u)", reply.struct_size);
	if (!strcmp(mode, "badsize")) {
		if (read(fd, buf, 1) <= 0)
			say("tool:", "connection %d closed by QEMU", nr);
		return;
	}

	if (get_version(fd))
		return;
	say("tool:", "hooked: KVM serves the socket");
	if (!strcmp(mode, "close")) {
		say("tool:", "closing connection %d", nr);
		return;
	}
	if (!strcmp(mode, "unhook") && enable_unhook_event(fd))
		return;
	if (!strcmp(mode, "crash") && pause_and_crash(fd))
		return;

	while ((id = read_msg(fd, &h, buf, sizeof(buf))) >= 0) {
		if (id == 0 && h.size >= 2 && buf[0] == 0 && buf[1] == 0) {
			say("tool:", "UNHOOK event received (seq %u): removing hooks", h.seq);
			usleep(unhook_delay_ms * 1000);
			say("tool:", "hooks removed, closing the socket");
			return;
		}
		say("tool:", "message id=%d size=%u", id, h.size);
	}
	say("tool:", "connection %d closed by the other end", nr);
}

static int cmd_listen(int argc, char **argv)
{
	const char *path = argv[2], *modes = "wait";
	uint8_t cookie[20] = { 0 };
	uint32_t reply_size = 24;
	struct sockaddr_un sa;
	int count = 1, i, lfd;
	char *m, *save = NULL, *mcopy;

	for (i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--count") && i + 1 < argc)
			count = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--modes") && i + 1 < argc)
			modes = argv[++i];
		else if (!strcmp(argv[i], "--unhook"))
			modes = "unhook";
		else if (!strcmp(argv[i], "--unhook-delay") && i + 1 < argc)
			unhook_delay_ms = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--reply-size") && i + 1 < argc)
			reply_size = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--cookie") && i + 1 < argc) {
			if (parse_hex(argv[++i], cookie, 20)) {
				fprintf(stderr, "bad --cookie\n");
				return 2;
			}
		} else {
			fprintf(stderr, "unknown option %s\n", argv[i]);
			return 2;
		}
	}
	lfd = unix_socket(path, &sa);
	unlink(path);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 4)) {
		perror("listen");
		return 1;
	}
	say("tool:", "listening on %s", path);
	mcopy = strdup(modes);
	m = strtok_r(mcopy, ",", &save);
	for (i = 1; i <= count; i++) {
		const char *mode = m ? m : "wait";
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0) {
			perror("accept");
			return 1;
		}
		handle(fd, i, mode, cookie, reply_size);
		close(fd);
		if (m)
			m = strtok_r(NULL, ",", &save);
		if (!m)
			m = strrchr(modes, ',') ? strrchr(modes, ',') + 1 : (char *)modes;
	}
	say("tool:", "done after %d connections", count);
	return 0;
}

static int qmp_read_reply(FILE *f, char *line, size_t len)
{
	while (fgets(line, len, f)) {
		if (strstr(line, "\"return\"") || strstr(line, "\"error\""))
			return 0;
		line[strcspn(line, "\n")] = 0;
		say("qmp:", "event: %s", line);
	}
	return -1;
}

static int cmd_qmp(int argc, char **argv)
{
	struct sockaddr_un sa;
	char line[65536];
	int fd, i, tries;
	FILE *f;

	for (tries = 0; tries < 100; tries++) {
		fd = unix_socket(argv[2], &sa);
		if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
			break;
		close(fd);
		fd = -1;
		usleep(100000);
	}
	if (fd < 0) {
		perror("qmp connect");
		return 1;
	}
	f = fdopen(fd, "r+");
	if (!fgets(line, sizeof(line), f))
		return 1;
	fprintf(f, "{\"execute\":\"qmp_capabilities\"}\n");
	fflush(f);
	if (qmp_read_reply(f, line, sizeof(line)))
		return 1;
	for (i = 3; i < argc; i++) {
		double start = now();

		say("qmp:", "-> %s", argv[i]);
		fprintf(f, "%s\n", argv[i]);
		fflush(f);
		if (qmp_read_reply(f, line, sizeof(line)))
			return 1;
		line[strcspn(line, "\n")] = 0;
		say("qmp:", "<- %s (after %.3f s)", line, now() - start);
	}
	fclose(f);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 3 && !strcmp(argv[1], "listen"))
		return cmd_listen(argc, argv);
	if (argc >= 3 && !strcmp(argv[1], "qmp"))
		return cmd_qmp(argc, argv);
	fprintf(stderr, "usage: %s listen SOCKET [options] | qmp SOCKET COMMAND...\n", argv[0]);
	return 2;
}
