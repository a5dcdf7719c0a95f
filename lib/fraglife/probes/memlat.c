/* Dependent loads at working sets from L1 to DRAM (probe "memlat").
 *
 * Built by lib/fraglife/probes/memlat.py with the system's `cc -O2`.
 *
 *   memlat CPU HUGE SEED TARGET_NS SAMPLES BYTES...
 *
 * Pins itself to CPU. For each working set of BYTES it maps a buffer (2 MiB
 * aligned; with HUGE=1 madvise(MADV_HUGEPAGE), else MADV_NOHUGEPAGE), writes
 * every page, and links its 64-byte lines into one random cycle (Sattolo's
 * algorithm), so each load's address comes from the previous load and no
 * prefetcher can guess the next line. Then, for K = 1, 2, 4, 8 chains walked
 * at once (K cursors spaced evenly around the cycle, one load each per
 * step), SAMPLES samples of at least TARGET_NS each, after one warm-up pass.
 * K = 1 is the latency of a dependent load; K > 1 shows how far independent
 * misses overlap. Output, one line per working set and K:
 *
 *   BYTES K THP_KIB NS NS ...    (ns per load of each sample)
 *
 * THP_KIB is AnonHugePages of this process (/proc/self/smaps_rollup) while
 * the buffer is mapped: how much of it huge pages back.
 * Exit status 2 on a usage error, 3 if the CPU cannot be pinned, 4 if memory
 * cannot be had, 5 if a chain does not come back to its start.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define LINE 64
#define HUGE_SZ (2ul << 20)
#define STEP 4096 /* loads per chain between clock reads */

struct node {
	struct node *next;
	char pad[LINE - sizeof(struct node *)];
};

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rng;

static uint64_t next_rand(void)
{
	/* xorshift64*: enough to shuffle lines */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ull;
}

static long thp_kib(void)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	char line[256];
	long kib = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "AnonHugePages: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* Walk K chains STEP loads each, `rounds` times; returns the cursors folded so the loads
 * cannot be optimised away. The cursors live in registers: K is a compile-time constant. */
#define WALK(K)                                                                \
	static uintptr_t walk##K(struct node **cur, long rounds)               \
	{                                                                      \
		struct node *c[K];                                             \
		uintptr_t fold = 0;                                            \
		for (int j = 0; j < K; j++)                                    \
			c[j] = cur[j];                                         \
		for (long r = 0; r < rounds; r++)                              \
			for (int i = 0; i < STEP; i++)                         \
				for (int j = 0; j < K; j++)                    \
					c[j] = c[j]->next;                     \
		for (int j = 0; j < K; j++) {                                  \
			cur[j] = c[j];                                         \
			fold ^= (uintptr_t)c[j];                               \
		}                                                              \
		return fold;                                                   \
	}
WALK(1)
WALK(2)
WALK(4)
WALK(8)

static uintptr_t walk(int k, struct node **cur, long rounds)
{
	switch (k) {
	case 1: return walk1(cur, rounds);
	case 2: return walk2(cur, rounds);
	case 4: return walk4(cur, rounds);
	default: return walk8(cur, rounds);
	}
}

static volatile uintptr_t sink;

int main(int argc, char **argv)
{
	static const int chains[] = {1, 2, 4, 8};
	cpu_set_t set;
	int cpu, huge, samples;
	uint64_t target;

	if (argc < 7) {
		fprintf(stderr, "usage: memlat CPU HUGE SEED TARGET_NS SAMPLES BYTES...\n");
		return 2;
	}
	cpu = atoi(argv[1]);
	huge = atoi(argv[2]);
	rng = strtoull(argv[3], NULL, 0) | 1;
	target = strtoull(argv[4], NULL, 0);
	samples = atoi(argv[5]);
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) != 0) {
		fprintf(stderr, "sched_setaffinity(cpu %d): %s\n", cpu, strerror(errno));
		return 3;
	}
	for (int a = 6; a < argc; a++) {
		size_t bytes = strtoull(argv[a], NULL, 0);
		size_t n = bytes / LINE, map = bytes + HUGE_SZ;
		char *raw;
		struct node *buf;
		size_t *perm;

		if (n < 2) {
			fprintf(stderr, "working set %zu is smaller than two lines\n", bytes);
			return 2;
		}
		raw = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		perm = malloc(n * sizeof(*perm));
		if (raw == MAP_FAILED || !perm) {
			fprintf(stderr, "no memory for %zu bytes\n", bytes);
			return 4;
		}
		buf = (struct node *)(((uintptr_t)raw + HUGE_SZ - 1) & ~(HUGE_SZ - 1));
		madvise(buf, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
		memset(buf, 0, bytes);
		/* Sattolo: a random permutation that is one single cycle */
		for (size_t i = 0; i < n; i++)
			perm[i] = i;
		for (size_t i = n - 1; i > 0; i--) {
			size_t j = next_rand() % i, t = perm[i];

			perm[i] = perm[j];
			perm[j] = t;
		}
		for (size_t i = 0; i < n; i++)
			buf[i].next = &buf[perm[i]];
		/* the cycle must come back to its start after n loads */
		{
			struct node *p = &buf[0];

			for (size_t i = 0; i < n; i++)
				p = p->next;
			if (p != &buf[0]) {
				fprintf(stderr, "chain over %zu lines does not close\n", n);
				return 5;
			}
		}
		long thp = thp_kib();

		for (unsigned c = 0; c < sizeof(chains) / sizeof(chains[0]); c++) {
			int k = chains[c];
			struct node *cur[8];
			struct node *p = &buf[0];
			size_t gap = n / k;
			long rounds = 1;

			/* K cursors spread evenly around the cycle */
			for (int j = 0; j < k; j++) {
				cur[j] = p;
				for (size_t i = 0; i < gap && j + 1 < k; i++)
					p = p->next;
			}
			/* warm-up: about one pass over the working set (at most 2^22 loads) */
			{
				long warm = (long)((n < (1ul << 22) ? n : (1ul << 22)) / ((size_t)STEP * k)) + 1;

				sink ^= walk(k, cur, warm);
			}
			/* rounds so that a sample lasts at least TARGET_NS */
			for (;;) {
				uint64_t t0 = now_ns();

				sink ^= walk(k, cur, rounds);
				if (now_ns() - t0 >= target / 4 || rounds > (1l << 24))
					break;
				rounds *= 2;
			}
			rounds *= 4;
			printf("%zu %d %ld", bytes, k, thp);
			for (int s = 0; s < samples; s++) {
				uint64_t t0 = now_ns();

				sink ^= walk(k, cur, rounds);
				printf(" %.4f", (double)(now_ns() - t0) / ((double)rounds * STEP * k));
			}
			printf("\n");
			fflush(stdout);
		}
		munmap(raw, map);
		free(perm);
	}
	return 0;
}
