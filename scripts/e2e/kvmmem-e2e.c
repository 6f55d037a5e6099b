// SPDX-License-Identifier: GPL-2.0
/*
 * Harness-side helper of the end-to-end stage (not part of the kernel
 * series), run in the introspector VM: a small user program that reads
 * the introspected VM's kernel banner through /dev/kvmmem, and checks the
 * device's errors on the way.
 *
 *   kvmmem-e2e TOKEN GPA
 *       TOKEN: the map token as the sample tool prints it (64 hex digits,
 *       token[0] first); GPA: the guest physical address of the banner in
 *       the introspected VM.
 *
 * Output: one "KVMMEM-CASE PASS|FAIL name (why)" line per check, then
 * "KVMMEM-BANNER <text>" and "KVMMEM-DONE".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/kvmi_mem.h>

#define PAGE 4096UL
#define BANNER_MAX 200
#define CLOSE_ROUNDS 20
/*
 * A bound on the map/unmap cycles of one round, should the close come
 * late: every cycle allocates and frees host memory, and on the debug L1
 * kernel that memory comes back only after an RCU grace period.
 */
#define CLOSE_MAX_CYCLES 1000

static struct kvmi_map_mem_token token;
static unsigned long long banner_gpa;
static int failures;

static void report(bool ok, const char *name, const char *fmt, ...)
{
	char why[200] = "";
	va_list ap;

	if (!ok && fmt) {
		va_start(ap, fmt);
		vsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
	}
	if (ok) {
		printf("KVMMEM-CASE PASS %s\n", name);
	} else {
		printf("KVMMEM-CASE FAIL %s (%s)\n", name, why);
		failures++;
	}
	fflush(stdout);
}

static int map(int fd, const struct kvmi_map_mem_token *t,
	       unsigned long long gpa, void *gva)
{
	struct kvmi_mem_map req = { .token = *t, .gpa = gpa,
				    .gva = (unsigned long)gva };

	return ioctl(fd, KVM_INTRO_MEM_MAP, &req) ? errno : 0;
}

static int unmap(int fd, void *gva)
{
	return ioctl(fd, KVM_INTRO_MEM_UNMAP, (unsigned long)gva) ? errno : 0;
}

/* An errno that a map or unmap must give. */
static void expect_err(const char *name, int got, int want)
{
	report(got == want, name, "got %s, expected %s",
	       got ? strerror(got) : "success", strerror(want));
}

static void *anon_pages(unsigned long n, int flags)
{
	void *p = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE,
		       flags | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		printf("KVMMEM-CASE FAIL mmap (%s)\n", strerror(errno));
		exit(1);
	}
	return p;
}

static void check_errors(int fd)
{
	unsigned long long page_gpa = banner_gpa & ~(PAGE - 1);
	struct kvmi_map_mem_token bad = token;
	char *buf = anon_pages(2, MAP_PRIVATE);
	char *shared = anon_pages(1, MAP_SHARED);
	char *gone = anon_pages(1, MAP_PRIVATE);

	munmap(gone, PAGE);
	bad.token[0] ^= 1;

	expect_err("unaligned-gva", map(fd, &token, page_gpa, buf + 8), EINVAL);
	expect_err("unaligned-gpa", map(fd, &token, page_gpa + 8, buf), EINVAL);
	expect_err("unbacked-gva", map(fd, &token, page_gpa, gone), EFAULT);
	expect_err("shared-page", map(fd, &token, page_gpa, shared), EINVAL);
	expect_err("bad-token", map(fd, &bad, page_gpa, buf), EPERM);
	expect_err("gpa-outside-memory", map(fd, &token, 1ULL << 46, buf),
		   ENOENT);
	expect_err("unmap-unaligned", unmap(fd, buf + 8), EINVAL);
	expect_err("unmap-never-mapped", unmap(fd, buf), ENOENT);

	munmap(buf, 2 * PAGE);
	munmap(shared, PAGE);
}

/*
 * Read the banner through two mapped pages (it may cross a page
 * boundary), check that a second map of the same page is refused, and
 * that the process's own pages are back after the unmap.
 */
static void read_banner(int fd)
{
	unsigned long long page_gpa = banner_gpa & ~(PAGE - 1);
	unsigned long off = banner_gpa & (PAGE - 1);
	char *buf = anon_pages(2, MAP_PRIVATE);
	char text[BANNER_MAX + 1];
	int err;

	memset(buf, 'A', 2 * PAGE);
	err = map(fd, &token, page_gpa, buf);
	report(!err, "map", "%s", strerror(err));
	if (err)
		return;
	/* The banner may end on the next page. */
	if (off + BANNER_MAX > PAGE) {
		err = map(fd, &token, page_gpa + PAGE, buf + PAGE);
		report(!err, "map-second-page", "%s", strerror(err));
	}

	memcpy(text, buf + off, BANNER_MAX);
	text[BANNER_MAX] = 0;
	text[strcspn(text, "\n")] = 0;
	report(!strncmp(text, "Linux version ", 14), "banner",
	       "read '%.40s'", text);
	printf("KVMMEM-BANNER %s\n", text);

	expect_err("map-busy", map(fd, &token, page_gpa, buf), EBUSY);

	err = unmap(fd, buf);
	report(!err, "unmap", "%s", strerror(err));
	if (off + BANNER_MAX > PAGE)
		unmap(fd, buf + PAGE);
	report(buf[0] == 'A' && buf[PAGE - 1] == 'A', "own-page-back",
	       "the page holds 0x%02x after the unmap", buf[0]);
	expect_err("unmap-twice", unmap(fd, buf), ENOENT);
	munmap(buf, 2 * PAGE);
}

/* Closing the file unmaps what it mapped. */
static void check_close(void)
{
	char *buf = anon_pages(1, MAP_PRIVATE);
	int fd = open("/dev/kvmmem", O_RDWR | O_CLOEXEC);
	int err;

	memset(buf, 'B', PAGE);
	err = map(fd, &token, banner_gpa & ~(PAGE - 1), buf);
	close(fd);
	report(!err && buf[0] == 'B', "close-unmaps",
	       "map: %s, then the page holds 0x%02x", strerror(err), buf[0]);
	munmap(buf, PAGE);
}

struct mapper {
	int fd;
	char *buf;
	int errors;	/* unexpected errors */
	long cycles;	/* map/unmap cycles */
	long eagain;	/* maps that met an invalidation of the target */
};

/* Map and unmap until the file descriptor is gone (or CLOSE_MAX_CYCLES). */
static void *mapper_thread(void *arg)
{
	struct mapper *m = arg;
	int err;

	for (; m->cycles < CLOSE_MAX_CYCLES; m->cycles++) {
		err = map(m->fd, &token, banner_gpa & ~(PAGE - 1), m->buf);
		if (err == EBADF)
			break;
		if (err == EAGAIN)
			m->eagain++;
		else if (err)
			m->errors++;
		err = unmap(m->fd, m->buf);
		if (err == EBADF)
			break;
	}
	return NULL;
}

/*
 * A close from one thread while another one maps and unmaps: the close
 * must not race the ioctl in progress, and whatever that ioctl mapped is
 * unmapped when the file is released.
 */
static void check_concurrent_close(void)
{
	int round, bad = 0, errors = 0;
	long cycles = 0, eagain = 0;

	for (round = 0; round < CLOSE_ROUNDS; round++) {
		struct mapper m = { .buf = anon_pages(1, MAP_PRIVATE) };
		pthread_t t;

		memset(m.buf, 'C', PAGE);
		m.fd = open("/dev/kvmmem", O_RDWR | O_CLOEXEC);
		pthread_create(&t, NULL, mapper_thread, &m);
		usleep(1000 * (round % 5));
		close(m.fd);
		pthread_join(t, NULL);
		if (m.buf[0] != 'C' || m.buf[PAGE - 1] != 'C')
			bad++;
		errors += m.errors;
		cycles += m.cycles;
		eagain += m.eagain;
		munmap(m.buf, PAGE);
	}
	printf("concurrent close: %ld map/unmap cycles (%ld EAGAIN) in %d rounds\n",
	       cycles, eagain, CLOSE_ROUNDS);
	report(!bad && !errors, "concurrent-close",
	       "%d of %d rounds left the page mapped, %d unexpected errors",
	       bad, CLOSE_ROUNDS, errors);
}

static bool parse_token(const char *hex)
{
	char part[17];
	int i;

	if (strlen(hex) != 64)
		return false;
	for (i = 0; i < 4; i++) {
		memcpy(part, hex + 16 * i, 16);
		part[16] = 0;
		token.token[i] = strtoull(part, NULL, 16);
	}
	return true;
}

int main(int argc, char **argv)
{
	int fd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 3 || !parse_token(argv[1])) {
		fprintf(stderr, "usage: kvmmem-e2e TOKEN(64 hex digits) GPA\n");
		return 2;
	}
	banner_gpa = strtoull(argv[2], NULL, 0);

	fd = open("/dev/kvmmem", O_RDWR | O_CLOEXEC);
	report(fd >= 0, "open", "/dev/kvmmem: %s", strerror(errno));
	if (fd < 0)
		return 1;

	check_errors(fd);
	read_banner(fd);
	close(fd);
	check_close();
	check_concurrent_close();

	printf("KVMMEM-DONE %d failures\n", failures);
	return failures ? 1 : 0;
}
