// SPDX-License-Identifier: GPL-2.0
/*
 * Harness-side helper of the end-to-end stage (not part of the kernel
 * series). One static binary, three jobs:
 *
 *   kvmi-e2e hook [options] QEMU_PID SOCKET
 *       The device-manager side of KVMI for a QEMU that has no
 *       introspection object (Debian's stock QEMU): take the VM fd from
 *       QEMU with pidfd_getfd(), connect to the tool, do the handshake of
 *       kvmi-abi.md section B, KVM_INTROSPECTION_HOOK, the allow-lists;
 *       when the tool closes, unhook and connect again.  SIGUSR1 = "stop"
 *       (PREUNHOOK, wait for the tool to close, unhook, no reconnect),
 *       SIGUSR2 = "cont" (reconnect again), SIGTERM = unhook and exit.
 *         --key SECRET        check the tool's SHA-1 of SECRET
 *         --deny-command ID   disallow a command (repeatable)
 *         --deny-event ID     disallow an event (repeatable)
 *         --once              exit after the first session
 *
 *   kvmi-e2e qmp SOCKET JSON [TIMEOUT]
 *       Send one QMP command, print the reply (the line with "return" or
 *       "error"), exit 0 on "return".
 *
 *   kvmi-e2e pattern TOKEN
 *       (inside the L2 guest) Fill a locked page with "KVMI-E2E TOKEN ...",
 *       print its guest-physical address (/proc/self/pagemap), then sleep.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <linux/kvm.h>

#ifndef KVM_INTROSPECTION_HOOK
#error "needs the KVMI UAPI headers (KVM_INTROSPECTION_HOOK)"
#endif

static void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void msg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("hook: ");
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
	va_end(ap);
}

/* ------------------------------------------------------------- SHA-1 */
static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1(const void *data, size_t len, uint8_t out[20])
{
	uint32_t h[5] = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0 };
	size_t total = ((len + 8) / 64 + 1) * 64, off, i;
	uint8_t *m = calloc(1, total);

	memcpy(m, data, len);
	m[len] = 0x80;
	for (i = 0; i < 8; i++)
		m[total - 1 - i] = (uint64_t)len * 8 >> (8 * i);
	for (off = 0; off < total; off += 64) {
		uint32_t w[80], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f, k, t;

		for (i = 0; i < 16; i++)
			w[i] = m[off + 4 * i] << 24 | m[off + 4 * i + 1] << 16 |
			       m[off + 4 * i + 2] << 8 | m[off + 4 * i + 3];
		for (; i < 80; i++)
			w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
		for (i = 0; i < 80; i++) {
			if (i < 20) { f = (b & c) | (~b & d); k = 0x5a827999; }
			else if (i < 40) { f = b ^ c ^ d; k = 0x6ed9eba1; }
			else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8f1bbcdc; }
			else { f = b ^ c ^ d; k = 0xca62c1d6; }
			t = rol(a, 5) + f + e + k + w[i];
			e = d; d = c; c = rol(b, 30); b = a; a = t;
		}
		h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
	}
	free(m);
	for (i = 0; i < 20; i++)
		out[i] = h[i / 4] >> (24 - 8 * (i % 4));
}

/* -------------------------------------------------------------- hook */
static volatile sig_atomic_t want_stop, want_cont, want_exit;

static void on_sig(int sig)
{
	if (sig == SIGUSR1)
		want_stop = 1;
	else if (sig == SIGUSR2)
		want_cont = 1;
	else
		want_exit = 1;
}

static int find_vm_fd(int pid)
{
	char path[64], link[128];
	struct dirent *de;
	DIR *d;
	int fd = -1;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		char p[600];
		ssize_t n;

		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		n = readlink(p, link, sizeof(link) - 1);
		if (n < 0)
			continue;
		link[n] = 0;
		if (!strcmp(link, "anon_inode:kvm-vm")) {
			fd = atoi(de->d_name);
			break;
		}
	}
	closedir(d);
	return fd;
}

static bool read_timeout(int fd, void *buf, size_t len, int ms)
{
	uint8_t *p = buf;

	while (len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&pfd, 1, ms) <= 0)
			return false;
		r = read(fd, p, len);
		if (r <= 0)
			return false;
		p += r;
		len -= r;
	}
	return true;
}

static int connect_unix(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	strncpy(a.sun_path, path, sizeof(a.sun_path) - 1);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

static int feature(int vmfd, unsigned long ioc, int id, int allow)
{
	struct kvm_introspection_feature f = { .allow = allow, .id = id };

	return ioctl(vmfd, ioc, &f) ? -errno : 0;
}

static int hook_main(int argc, char **argv)
{
	int deny_cmd[64], deny_ev[64], ndc = 0, nde = 0, i, pid, qfd, vmfd, pidfd;
	const char *key = NULL, *path;
	bool once = false, stopped = false;
	struct sigaction sa = { .sa_handler = on_sig };
	uint8_t uuid[16] = { 0x6b, 0x76, 0x6d, 0x69, 0x2d, 0x65, 0x32, 0x65,
			     0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77 };
	time_t start = time(NULL);

	for (i = 2; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--key") && i + 1 < argc)
			key = argv[++i];
		else if (!strcmp(argv[i], "--deny-command") && i + 1 < argc)
			deny_cmd[ndc++] = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--deny-event") && i + 1 < argc)
			deny_ev[nde++] = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--once"))
			once = true;
		else
			break;
	}
	if (argc - i != 2) {
		fprintf(stderr, "usage: kvmi-e2e hook [--key K] [--deny-command ID].. [--deny-event ID].. [--once] QEMU_PID SOCKET\n");
		return 2;
	}
	pid = atoi(argv[i]);
	path = argv[i + 1];
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	for (i = 0; i < 100 && (qfd = find_vm_fd(pid)) < 0; i++)
		usleep(100000);
	if (qfd < 0) {
		msg("no kvm-vm fd in QEMU pid %d", pid);
		return 1;
	}
	pidfd = syscall(SYS_pidfd_open, pid, 0);
	vmfd = pidfd < 0 ? -1 : syscall(SYS_pidfd_getfd, pidfd, qfd, 0);
	if (vmfd < 0) {
		msg("pidfd_getfd: %s", strerror(errno));
		return 1;
	}
	msg("got the VM fd of QEMU pid %d", pid);

	while (!want_exit) {
		struct pollfd q = { .fd = pidfd, .events = POLLIN };
		struct {
			uint32_t struct_size;
			uint8_t uuid[16];
			uint32_t padding;
			int64_t start_time;
			char name[64];
			uint64_t max_gpa;
		} hello = { .struct_size = sizeof(hello), .start_time = start,
			    .name = "kvmi-e2e-l2", .max_gpa = 128 << 20 };
		struct kvm_introspection_hook hk = {};
		uint8_t rpl[64], want[20];
		uint32_t rsize;
		int s, err;

		if (poll(&q, 1, 0) > 0) {
			msg("QEMU exited");
			return 0;
		}
		if (stopped) {
			if (want_cont) {
				want_cont = 0;
				stopped = false;
				msg("cont: reconnecting again");
			}
			usleep(100000);
			continue;
		}
		want_cont = 0;
		s = connect_unix(path);
		if (s < 0) {
			usleep(200000);
			continue;
		}
		memcpy(hello.uuid, uuid, 16);
		if (write(s, &hello, sizeof(hello)) != sizeof(hello) ||
		    !read_timeout(s, &rsize, 4, 10000) || rsize < 24 ||
		    rsize > sizeof(rpl) || !read_timeout(s, rpl, rsize - 4, 10000)) {
			msg("handshake failed (no reply within 10 s?)");
			close(s);
			sleep(1);
			continue;
		}
		if (key) {
			sha1(key, strlen(key), want);
			if (memcmp(want, rpl, 20)) {
				msg("the tool's key hash does not match: closing");
				close(s);
				sleep(1);
				continue;
			}
		}
		hk.fd = s;
		memcpy(hk.uuid, uuid, 16);
		if (ioctl(vmfd, KVM_INTROSPECTION_HOOK, &hk)) {
			err = errno;
			msg("KVM_INTROSPECTION_HOOK: %s%s", strerror(err),
			    err == EPERM ? " (is kvm.introspection=1 on the kernel command line?)" : "");
			close(s);
			if (err == EPERM)
				return 3;
			sleep(1);
			continue;
		}
		err = feature(vmfd, KVM_INTROSPECTION_COMMAND, -1, 1);
		err = err ?: feature(vmfd, KVM_INTROSPECTION_EVENT, -1, 1);
		for (i = 0; !err && i < ndc; i++)
			err = feature(vmfd, KVM_INTROSPECTION_COMMAND, deny_cmd[i], 0);
		for (i = 0; !err && i < nde; i++)
			err = feature(vmfd, KVM_INTROSPECTION_EVENT, deny_ev[i], 0);
		if (err) {
			msg("allow-lists: %s", strerror(-err));
			ioctl(vmfd, KVM_INTROSPECTION_UNHOOK, 0);
			close(s);
			sleep(1);
			continue;
		}
		msg("hooked (%d command(s), %d event(s) denied)", ndc, nde);

		/* Until the tool (or KVM) closes the socket, a signal, or QEMU exits. */
		for (;;) {
			struct pollfd p = { .fd = s, .events = POLLRDHUP };
			struct pollfd q = { .fd = pidfd, .events = POLLIN };

			if (poll(&q, 1, 0) > 0) {
				/* Drop our VM reference: KVM destroys the VM while hooked. */
				msg("QEMU exited: closing the VM fd");
				close(vmfd);
				close(s);
				return 0;
			}

			if (want_stop) {
				double t0 = time(NULL);

				want_stop = 0;
				if (ioctl(vmfd, KVM_INTROSPECTION_PREUNHOOK, 0)) {
					msg("stop: PREUNHOOK: %s, unhooking at once", strerror(errno));
				} else {
					msg("stop: UNHOOK event sent, waiting for the tool to close");
					if (poll(&p, 1, 60000) <= 0)
						msg("stop: the tool did not close within 60 s");
				}
				ioctl(vmfd, KVM_INTROSPECTION_UNHOOK, 0);
				msg("stop: unhooked after %.0f s", time(NULL) - t0);
				stopped = true;
				break;
			}
			if (want_exit) {
				ioctl(vmfd, KVM_INTROSPECTION_UNHOOK, 0);
				msg("exit: unhooked");
				break;
			}
			if (poll(&p, 1, 100) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
				ioctl(vmfd, KVM_INTROSPECTION_UNHOOK, 0);
				msg("the connection closed: unhooked, reconnecting");
				break;
			}
		}
		close(s);
		if (once)
			break;
	}
	return 0;
}

/* --------------------------------------------------------------- qmp */
static int qmp_main(int argc, char **argv)
{
	int timeout = argc > 4 ? atoi(argv[4]) : 120, fd = -1, i;
	char buf[65536];
	size_t have = 0;
	const char *caps = "{\"execute\":\"qmp_capabilities\"}\n";
	int step = 0;

	if (argc < 4) {
		fprintf(stderr, "usage: kvmi-e2e qmp SOCKET JSON [TIMEOUT]\n");
		return 2;
	}
	for (i = 0; i < 50 && (fd = connect_unix(argv[2])) < 0; i++)
		usleep(100000);
	if (fd < 0) {
		printf("qmp: cannot connect to %s\n", argv[2]);
		return 1;
	}
	/* Greeting, capabilities, then the command. */
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char *nl;
		ssize_t r;

		if (poll(&p, 1, timeout * 1000) <= 0) {
			printf("qmp: timeout\n");
			return 1;
		}
		r = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (r <= 0) {
			printf("qmp: connection closed\n");
			return 1;
		}
		have += r;
		buf[have] = 0;
		while ((nl = strchr(buf, '\n'))) {
			*nl = 0;
			if (step == 0 && strstr(buf, "\"QMP\"")) {
				step = 1;
				if (write(fd, caps, strlen(caps)) < 0)
					return 1;
			} else if (step == 1 && strstr(buf, "\"return\"")) {
				step = 2;
				if (write(fd, argv[3], strlen(argv[3])) < 0 || write(fd, "\n", 1) < 0)
					return 1;
			} else if (step == 2 && (strstr(buf, "\"return\"") || strstr(buf, "\"error\""))) {
				printf("qmp: %s\n", buf);
				return strstr(buf, "\"return\"") ? 0 : 1;
			}
			have -= nl + 1 - buf;
			memmove(buf, nl + 1, have + 1);
		}
	}
}

/* ----------------------------------------------------------- pattern */
static int pattern_main(int argc, char **argv)
{
	char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t ent = 0;
	size_t off;
	int fd;

	if (argc < 3 || page == MAP_FAILED)
		return 2;
	for (off = 0; off + 64 <= 4096; off += 64)
		snprintf(page + off, 64, "KVMI-E2E %s %04zx", argv[2], off);
	mlock(page, 4096);
	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0 || pread(fd, &ent, 8, (uintptr_t)page / 4096 * 8) != 8 ||
	    !(ent & (1ULL << 63))) {
		printf("L2-PATTERN-FAILED\n");
		return 1;
	}
	printf("L2-PATTERN gpa=0x%llx token=%s\n",
	       (unsigned long long)(ent & ((1ULL << 55) - 1)) * 4096, argv[2]);
	fflush(stdout);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "hook"))
		return hook_main(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "qmp"))
		return qmp_main(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "pattern"))
		return pattern_main(argc, argv);
	fprintf(stderr, "usage: kvmi-e2e hook|qmp|pattern ...\n");
	return 2;
}
