// SPDX-License-Identifier: GPL-2.0
/*
 * Harness-side helper of the end-to-end stage (not part of the kernel
 * series). One static binary, two jobs:
 *
 *   kvmi-e2e qmp SOCKET JSON [TIMEOUT]
 *       Send one QMP command, print the reply (the line with "return" or
 *       "error"), exit 0 on "return".
 *
 *   kvmi-e2e pattern TOKEN
 *       (inside the L2 guest) Fill a locked page with "KVMI-E2E TOKEN ...",
 *       print its guest-physical address (/proc/self/pagemap), then sleep.
 *
 * There is no stand-in for the device manager: KVM refuses the ioctls of a
 * VM from a process other than the one that created it (kvm->mm !=
 * current->mm gives EIO), so only QEMU itself (the patched QEMU's
 * introspection object) can hook a QEMU VM.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

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
	if (argc > 1 && !strcmp(argv[1], "qmp"))
		return qmp_main(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "pattern"))
		return pattern_main(argc, argv);
	fprintf(stderr, "usage: kvmi-e2e qmp|pattern ...\n");
	return 2;
}
