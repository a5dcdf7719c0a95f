/* Atomic increments and cache-line transfers between CPUs (probe "atomics").
 *
 * Built by lib/fraglife/probes/atomics.py with the system's `cc -O2 -pthread`.
 * Every measuring thread pins itself with sched_setaffinity() first.
 * One measurement per invocation, printed as lines of numbers:
 *
 *   local CPU OPS SAMPLES
 *       one line: ns per op of each sample, then the CPU it ran on. A
 *       sample is a dependent chain of OPS atomic increments on one 64-byte
 *       line that only this CPU writes (lock xadd on x86).
 *   pingpong CPU_A CPU_B ROUND_TRIPS SAMPLES
 *       one line: for each sample, half the round trip of a compare-and-swap
 *       ping-pong on one line between two CPUs (the method of
 *       nviennot/core-to-core-latency), then 1 if the line's final value is
 *       the number of swaps made.
 *   cas CPU OPS SAMPLES
 *       as local, each increment a compare-and-swap loop instead: read the
 *       line, then lock cmpxchg until it succeeds, as mm_account_pinned_pages()
 *       adds to user->locked_vm (atomic_long_read() + atomic_long_try_cmpxchg(),
 *       net/core/skbuff.c) and refcount_inc_not_zero() takes a ref.
 *   contend shared|private|shared_cas|private_cas GAP WINDOW_NS WINDOWS CPU...
 *       one thread per CPU listed; in each of WINDOWS windows of WINDOW_NS
 *       they all increment at once, each increment followed by GAP steps of
 *       private arithmetic that the next increment depends on. shared: one
 *       common line; private: a line of its own each, 128 bytes apart; _cas:
 *       each increment a compare-and-swap loop. One line per window: "ops ns
 *       switched" for each thread (its own increments, its elapsed time,
 *       involuntary context switches during the window), and for _cas a fourth
 *       number, the failed compare-and-swaps (retries); a last line: 1 if the
 *       lines' values add up to the increments counted.
 *
 * Increments are relaxed fetch-adds, the instruction refcount_inc() uses on
 * x86 (lock xadd), or compare-and-swap loops (lock cmpxchg). Exit status 2 on
 * a usage error, 3 if a CPU cannot be pinned (stderr names it), 4 if memory
 * or threads cannot be had, 5 if a count does not add up.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STRIDE 128 /* a private line and its neighbour: no adjacent-line prefetch sharing */
#define BATCH 512
#define MAX_THREADS 1024

struct line {
	uint64_t v;
	char pad[STRIDE - sizeof(uint64_t)];
} __attribute__((aligned(STRIDE)));

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) != 0) {
		fprintf(stderr, "sched_setaffinity(cpu %d): %s\n", cpu, strerror(errno));
		return -1;
	}
	if (sched_getcpu() != cpu) {
		sched_yield();
		if (sched_getcpu() != cpu) {
			fprintf(stderr, "pinned to cpu %d but running on %d\n", cpu, sched_getcpu());
			return -1;
		}
	}
	return 0;
}

/* 1, computed from x so that an increment waits for whatever produced x (the previous
 * increment's result, or the work after it); x < 2^63 here, which the compiler cannot see. */
static inline uint64_t next_inc(uint64_t x)
{
	__asm__ volatile("" : "+r"(x));
	return 1 + (x >> 63);
}

/* add n with a compare-and-swap loop (counting the failed attempts); returns the value before */
static inline uint64_t cas_add(uint64_t *p, uint64_t n, uint64_t *fails)
{
	uint64_t old = __atomic_load_n(p, __ATOMIC_RELAXED);

	while (!__atomic_compare_exchange_n(p, &old, old + n, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		(*fails)++;
	return old;
}

/* -- local ---------------------------------------------------------------------- */

static int local(int cpu, uint64_t ops, int samples)
{
	static struct line l;
	uint64_t x = 0;

	if (pin(cpu))
		return 3;
	for (uint64_t i = 0; i < ops / 8; i++) /* warm: own the line */
		x = __atomic_fetch_add(&l.v, next_inc(x), __ATOMIC_RELAXED);
	l.v = 0;
	for (int s = 0; s < samples; s++) {
		uint64_t t0 = now_ns();

		for (uint64_t i = 0; i < ops; i++)
			x = __atomic_fetch_add(&l.v, next_inc(x), __ATOMIC_RELAXED);
		printf("%.4f ", (double)(now_ns() - t0) / (double)ops);
	}
	printf("%d\n", sched_getcpu());
	return l.v == ops * samples ? 0 : 5;
}

static int cas_local(int cpu, uint64_t ops, int samples)
{
	static struct line l;
	uint64_t x = 0, fails = 0;

	if (pin(cpu))
		return 3;
	for (uint64_t i = 0; i < ops / 8; i++) /* warm: own the line */
		x = cas_add(&l.v, next_inc(x), &fails);
	l.v = 0;
	for (int s = 0; s < samples; s++) {
		uint64_t t0 = now_ns();

		for (uint64_t i = 0; i < ops; i++)
			x = cas_add(&l.v, next_inc(x), &fails);
		printf("%.4f ", (double)(now_ns() - t0) / (double)ops);
	}
	printf("%d\n", sched_getcpu());
	return l.v == ops * samples ? 0 : 5;
}

/* -- ping-pong -------------------------------------------------------------------- */

static struct line flag;
static struct line ready;

struct pp_arg {
	int cpu;
	uint64_t rounds, samples;
	int err;
};

static void *pong(void *p)
{
	struct pp_arg *a = p;
	uint64_t total = a->rounds * a->samples;

	if (pin(a->cpu)) {
		a->err = 3;
		__atomic_store_n(&ready.v, UINT64_MAX, __ATOMIC_RELEASE);
		return NULL;
	}
	__atomic_fetch_add(&ready.v, 1, __ATOMIC_ACQ_REL);
	for (uint64_t i = 0; i < total; i++) {
		uint64_t want = 2 * i + 1; /* ping left it odd */
		while (!__atomic_compare_exchange_n(&flag.v, &want, want + 1, 0, __ATOMIC_RELAXED,
						    __ATOMIC_RELAXED))
			want = 2 * i + 1;
	}
	return NULL;
}

static int pingpong(int a, int b, uint64_t rounds, uint64_t samples)
{
	pthread_t t;
	struct pp_arg pa = { .cpu = b, .rounds = rounds, .samples = samples };
	uint64_t *ns = calloc(samples, sizeof(*ns));
	uint64_t n = 0;

	if (!ns)
		return 4;
	if (pin(a))
		return 3;
	if (pthread_create(&t, NULL, pong, &pa))
		return 4;
	while (__atomic_load_n(&ready.v, __ATOMIC_ACQUIRE) == 0)
		;
	if (pa.err) {
		pthread_join(t, NULL);
		return pa.err;
	}
	for (uint64_t s = 0; s < samples; s++) {
		uint64_t t0 = now_ns();

		for (uint64_t i = 0; i < rounds; i++, n++) {
			uint64_t want = 2 * n; /* pong left it even */
			while (!__atomic_compare_exchange_n(&flag.v, &want, want + 1, 0, __ATOMIC_RELAXED,
							    __ATOMIC_RELAXED))
				want = 2 * n;
		}
		ns[s] = now_ns() - t0;
	}
	pthread_join(t, NULL);
	for (uint64_t s = 0; s < samples; s++)
		printf("%.3f ", (double)ns[s] / (double)rounds / 2.0);
	printf("%d\n", flag.v == 2 * rounds * samples);
	free(ns);
	return 0;
}

/* -- contention ----------------------------------------------------------------------- */

static struct line *targets;
static struct line arrived, stop_gen;
static int nthreads;

struct ct_arg {
	int cpu, timer, err, batch, gap, windows, cas;
	uint64_t window;
	struct line *target;
	uint64_t *ops, *ns, *csw, *fails; /* per window */
} __attribute__((aligned(STRIDE)));

static long switched_out(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_nivcsw;
}

static void *contender(void *p)
{
	struct ct_arg *a = p;
	uint64_t x = 0;

	if (pin(a->cpu))
		a->err = 3;
	for (int w = 0; w < a->windows; w++) {
		uint64_t ops = 0, fails = 0, t0, t1;
		long c0;

		/* every window starts with all threads (on distinct CPUs, so spinning is fine) */
		__atomic_fetch_add(&arrived.v, 1, __ATOMIC_ACQ_REL);
		while (__atomic_load_n(&arrived.v, __ATOMIC_ACQUIRE) < (uint64_t)nthreads * (w + 1))
			;
		c0 = switched_out();
		t0 = now_ns();
		while (__atomic_load_n(&stop_gen.v, __ATOMIC_RELAXED) <= (uint64_t)w) {
			for (int i = 0; i < a->batch; i++) {
				if (a->cas)
					x = cas_add(&a->target->v, next_inc(x), &fails);
				else
					x = __atomic_fetch_add(&a->target->v, next_inc(x), __ATOMIC_RELAXED);
				for (int g = 0; g < a->gap; g++) {
					x = x * 6364136223846793005ull + 1442695040888963407ull;
					__asm__ volatile("" : "+r"(x));
				}
				x &= ~0ull >> 1;
			}
			ops += a->batch;
			if (a->timer && now_ns() - t0 >= a->window)
				__atomic_store_n(&stop_gen.v, (uint64_t)w + 1, __ATOMIC_RELAXED);
		}
		t1 = now_ns();
		a->ops[w] = ops;
		a->ns[w] = t1 - t0;
		a->csw[w] = (uint64_t)(switched_out() - c0);
		a->fails[w] = fails;
	}
	return NULL;
}

static int contend(int shared, int cas, int gap, uint64_t window, int windows, int n, int *cpus)
{
	pthread_t *t = calloc(n, sizeof(*t));
	struct ct_arg *args = aligned_alloc(STRIDE, n * sizeof(*args));
	uint64_t *res = calloc(4 * (size_t)n * windows, sizeof(*res));
	uint64_t sum = 0, counted = 0;
	/* a shared line serialises the n threads: keep the time between stop checks about the same */
	int batch = shared ? (BATCH / n > 8 ? BATCH / n : 8) : BATCH;

	targets = aligned_alloc(STRIDE, n * sizeof(*targets));
	if (!t || !args || !targets || !res)
		return 4;
	memset(targets, 0, n * sizeof(*targets));
	nthreads = n;
	for (int i = 0; i < n; i++) {
		args[i] = (struct ct_arg){ .cpu = cpus[i], .timer = i == 0, .batch = batch, .gap = gap,
					   .windows = windows, .window = window, .cas = cas,
					   .target = shared ? &targets[0] : &targets[i],
					   .ops = res + (size_t)4 * i * windows,
					   .ns = res + (size_t)(4 * i + 1) * windows,
					   .csw = res + (size_t)(4 * i + 2) * windows,
					   .fails = res + (size_t)(4 * i + 3) * windows };
		if (pthread_create(&t[i], NULL, contender, &args[i])) {
			fprintf(stderr, "pthread_create: %s\n", strerror(errno));
			exit(4); /* the others wait for it forever otherwise */
		}
	}
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < n; i++) {
		if (args[i].err)
			return args[i].err;
		for (int w = 0; w < windows; w++)
			sum += args[i].ops[w];
	}
	for (int i = 0; i < (shared ? 1 : n); i++)
		counted += targets[i].v;
	for (int w = 0; w < windows; w++) {
		for (int i = 0; i < n; i++) {
			printf("%s%llu %llu %llu", i ? " " : "", (unsigned long long)args[i].ops[w],
			       (unsigned long long)args[i].ns[w], (unsigned long long)args[i].csw[w]);
			if (cas)
				printf(" %llu", (unsigned long long)args[i].fails[w]);
		}
		printf("\n");
	}
	printf("%d\n", counted == sum);
	return 0;
}

/* -- main --------------------------------------------------------------------------- */

static int usage(void)
{
	fprintf(stderr, "usage: atomics local|cas CPU OPS SAMPLES | pingpong CPU_A CPU_B ROUND_TRIPS SAMPLES | "
			"contend shared|private|shared_cas|private_cas GAP WINDOW_NS WINDOWS CPU...\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc == 5 && (!strcmp(argv[1], "local") || !strcmp(argv[1], "cas"))) {
		uint64_t ops = strtoull(argv[3], NULL, 10);
		int samples = atoi(argv[4]);

		if (!ops || samples < 1)
			return usage();
		if (!strcmp(argv[1], "cas"))
			return cas_local(atoi(argv[2]), ops, samples);
		return local(atoi(argv[2]), ops, samples);
	}
	if (argc == 6 && !strcmp(argv[1], "pingpong")) {
		uint64_t rounds = strtoull(argv[4], NULL, 10), samples = strtoull(argv[5], NULL, 10);

		if (!rounds || !samples || atoi(argv[2]) == atoi(argv[3]))
			return usage();
		return pingpong(atoi(argv[2]), atoi(argv[3]), rounds, samples);
	}
	if (argc >= 7 && !strcmp(argv[1], "contend")) {
		int n = argc - 6, cpus[MAX_THREADS], gap = atoi(argv[3]), windows = atoi(argv[5]);
		const char *m = argv[2];
		int shared = !strcmp(m, "shared") || !strcmp(m, "shared_cas");
		int cas = !strcmp(m, "shared_cas") || !strcmp(m, "private_cas");

		if (n > MAX_THREADS || gap < 0 || windows < 1 || (!shared && !cas && strcmp(m, "private")))
			return usage();
		for (int i = 0; i < n; i++)
			cpus[i] = atoi(argv[6 + i]);
		return contend(shared, cas, gap, strtoull(argv[4], NULL, 10), windows, n, cpus);
	}
	return usage();
}
