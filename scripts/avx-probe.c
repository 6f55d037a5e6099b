// SPDX-License-Identifier: GPL-2.0
/*
 * avx-probe: does a host process keep its AVX state while KVM guests run?
 *
 * It copies a 1 MiB buffer with 32-byte AVX loads and stores (and with
 * the C library's memcpy(), which picks an AVX variant when the CPU has
 * AVX), compares each copy with the source and counts the copies that
 * differ.  A copy that differs means that the YMM registers of this
 * process changed under its feet, i.e. that the kernel did not save or
 * restore its extended state correctly across a context switch.
 *
 *   avx-probe [-r ROUNDS] [-n TIMES] [-- COMMAND ARGS...]
 *
 * Without COMMAND it makes ROUNDS copies (default 200).  With COMMAND it
 * runs COMMAND TIMES times in a row (default 1), in a child process, and
 * copies until the last run ends, at least ROUNDS times.  COMMAND is
 * meant to run KVM guests (e.g. a KVM selftest) on the same CPU.
 *
 * Exit status: 0 when every copy was right, 1 when a copy was wrong,
 * 2 on a usage or setup error, 4 (skip) when the CPU or the kernel does
 * not offer AVX (then only the C library's copy runs, as a control).
 * Build: gcc -static -O2 -o avx-probe avx-probe.c
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE		(1u << 20)
#define EXIT_SKIP	4

static unsigned char *src, *dst;
static unsigned long bad_copies, first_bad[32];

static int avx_usable(void)
{
	unsigned int eax, ebx, ecx, edx, lo, hi;

	if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
		return 0;
	/* AVX and OSXSAVE */
	if ((ecx & (1u << 28)) == 0 || (ecx & (1u << 27)) == 0)
		return 0;
	/* XCR0 enables the SSE and AVX state */
	asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return (lo & 6) == 6;
}

__attribute__((target("avx")))
static void copy_avx(unsigned char *d, const unsigned char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i += 32)
		_mm256_storeu_si256((__m256i *)(d + i),
				    _mm256_loadu_si256((const __m256i *)(s + i)));
}

static void check(unsigned long round, const char *how)
{
	size_t i;

	if (!memcmp(src, dst, SIZE))
		return;
	for (i = 0; i < SIZE && src[i] == dst[i]; i++)
		;
	if (bad_copies < 10)
		printf("avx-probe: round %lu (%s): the copy differs from offset %zu (offset %zu in its 32-byte block): %02x instead of %02x\n",
		       round, how, i, i % 32, dst[i], src[i]);
	first_bad[i % 32]++;
	bad_copies++;
}

static void one_round(unsigned long round, int avx)
{
	uint64_t *p = (uint64_t *)src;
	size_t i;

	for (i = 0; i < SIZE / 8; i++)
		p[i] = (round << 40) ^ (i * 0x9e3779b97f4a7c15ull);

	if (avx) {
		memset(dst, 0, SIZE);
		copy_avx(dst, src, SIZE);
		check(round, "avx");
	}
	memset(dst, 0, SIZE);
	memcpy(dst, src, SIZE);
	check(round, "libc");
}

static char *find_in_path(char *name)
{
	const char *path = getenv("PATH");
	static char full[4096];
	const char *p, *end;

	for (p = path ? path : "/bin:/usr/bin"; *p; p = *end ? end + 1 : end) {
		end = strchrnul(p, ':');
		if (snprintf(full, sizeof(full), "%.*s/%s", (int)(end - p), p, name) <
		    (int)sizeof(full) && !access(full, X_OK))
			return full;
	}
	return name;
}

int main(int argc, char **argv)
{
	unsigned long rounds = 200, times = 1, round, i;
	int avx = avx_usable(), running = 0, failed = 0, opt, status;
	char **cmd = NULL;
	pid_t child = 0;

	while ((opt = getopt(argc, argv, "r:n:")) != -1) {
		switch (opt) {
		case 'r':
			rounds = strtoul(optarg, NULL, 0);
			break;
		case 'n':
			times = strtoul(optarg, NULL, 0);
			break;
		default:
			fprintf(stderr, "usage: %s [-r ROUNDS] [-n TIMES] [-- COMMAND ARGS...]\n",
				argv[0]);
			return 2;
		}
	}
	if (optind < argc)
		cmd = argv + optind;
	/*
	 * A command without a slash is looked up in PATH and run by its full
	 * name: KVM selftests find their guest code through argv[0].  (So a
	 * TESTS entry needs no slash: it is also a sed pattern in /init.)
	 */
	if (cmd && !strchr(cmd[0], '/'))
		cmd[0] = find_in_path(cmd[0]);

	src = aligned_alloc(64, SIZE);
	dst = aligned_alloc(64, SIZE);
	if (!src || !dst) {
		perror("avx-probe: aligned_alloc");
		return 2;
	}
	printf("avx-probe: AVX %s; %s\n", avx ? "usable" : "not usable (no AVX, or XCR0 lacks it)",
	       cmd ? "copying while the command runs" : "copying with nothing else running");
	fflush(stdout);

	if (cmd) {
		child = fork();
		if (child < 0) {
			perror("avx-probe: fork");
			return 2;
		}
		if (!child) {
			for (i = 0; i < times; i++) {
				pid_t pid = fork();

				if (!pid) {
					execvp(cmd[0], cmd);
					perror("avx-probe: exec");
					_exit(127);
				}
				if (pid < 0 || waitpid(pid, &status, 0) < 0 ||
				    !WIFEXITED(status) || WEXITSTATUS(status))
					failed = 1;
			}
			_exit(failed);
		}
		running = 1;
	}

	for (round = 0; round < rounds || running; round++) {
		one_round(round, avx);
		if (running && waitpid(child, &status, WNOHANG) == child) {
			running = 0;
			failed = !WIFEXITED(status) || WEXITSTATUS(status);
		}
	}

	printf("avx-probe: %lu rounds, %lu wrong copies", round, bad_copies);
	for (i = 0; i < 32; i++)
		if (first_bad[i])
			printf(", %lu first wrong at offset %lu of a 32-byte block",
			       first_bad[i], i);
	printf("\n");
	if (cmd)
		printf("avx-probe: the command %s\n", failed ? "failed (not counted)" : "succeeded");
	if (bad_copies)
		return 1;
	return avx ? 0 : EXIT_SKIP;
}
