/* The send loop of the zcsend probe (lib/fraglife/probes/zcsend.py): copy and MSG_ZEROCOPY sends
 * timed by the sending thread's CPU clock, with no interpreter between the calls.
 *
 * argv: TX_FD RX_FD SEND_CPU DRAIN_CPU PERF_FDS EVENTS
 *   TX_FD    a connected UDP or TCP socket with SO_ZEROCOPY on
 *   RX_FD    the TCP receiver (drained by a thread pinned to DRAIN_CPU), or -1
 *   PERF_FDS comma-separated perf event fds counting the skbs queued to the sending device, or "-"
 *   EVENTS   comma-separated GROUP:NAME:ID tracepoints to count in the sending thread's context
 *            during census samples, or "-"
 * stdin, one command a line:
 *   S ID MODE SIZE BUF STATE CALLS CENSUS   a sample: CALLS sends of SIZE bytes, MODE copy|zc,
 *                                    BUF 4k|thp|mix, STATE present|absent; CENSUS 1 counts EVENTS
 *   R ID ITERS                       a reference window: ITERS x (16 KiB memcpy + getppid)
 *   M ID SIZE ITERS                  ITERS copies of SIZE bytes with rep movsb, what copy_from_user
 *                                    does on a CPU with FSRM, from a present 4k buffer to a 32 KiB one
 *   V                                the backing of the present buffers, read again
 * stdout: one JSON object a line per command.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/errqueue.h>
#include <linux/perf_event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_ZEROCOPY
#define MSG_ZEROCOPY 0x4000000
#endif
#ifndef SO_EE_ORIGIN_ZEROCOPY
#define SO_EE_ORIGIN_ZEROCOPY 5
#endif
#ifndef SO_EE_CODE_ZEROCOPY_COPIED
#define SO_EE_CODE_ZEROCOPY_COPIED 1
#endif
#ifndef SIOCOUTQ
#define SIOCOUTQ 0x5411
#endif

#define PAGE 4096UL
#define HUGE (2UL << 20)
#define MAXSIZE (1UL << 20)
/* include/uapi/linux/kernel-page-flags.h */
#define KPF_COMPOUND_HEAD 15
#define KPF_COMPOUND_TAIL 16
#define KPF_THP 22
#define KPF_ZERO_PAGE 24

static int tx = -1, rx = -1, is_tcp;
static int perf_fds[64], nperf;
static uint32_t next_id;   /* zerocopy notification ids handed out so far */
static int64_t done_upto = -1; /* highest id completed and read */

static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	printf("{\"fatal\": \"%s: %s\"}\n", what, strerror(errno));
	fflush(stdout);
	exit(1);
}

static void pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("sched_setaffinity");
}

/* Tracepoints counted in this thread's context (softirqs that run on it included), census samples only. */
static int ev_fd[16], nev;
static char *ev_name[16];

static void events_open(char *list)
{
	for (char *tok = strtok(list, ","); tok && nev < 16; tok = strtok(NULL, ",")) {
		char *id = strrchr(tok, ':');
		if (!id)
			continue;
		*id++ = 0;
		struct perf_event_attr a;
		memset(&a, 0, sizeof(a));
		a.type = PERF_TYPE_TRACEPOINT;
		a.size = sizeof(a);
		a.config = strtoull(id, NULL, 10);
		a.disabled = 1;
		int fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
		if (fd < 0)
			continue;
		ev_name[nev] = tok;
		ev_fd[nev++] = fd;
	}
}

static void events_read(uint64_t *v)
{
	for (int i = 0; i < nev; i++)
		if (read(ev_fd[i], &v[i], sizeof(v[i])) != sizeof(v[i]))
			v[i] = 0;
}

static void events_switch(int on)
{
	for (int i = 0; i < nev; i++)
		ioctl(ev_fd[i], on ? PERF_EVENT_IOC_ENABLE : PERF_EVENT_IOC_DISABLE, 0);
}

static uint64_t skbs(void)
{
	uint64_t sum = 0, v;
	for (int i = 0; i < nperf; i++)
		if (read(perf_fds[i], &v, sizeof(v)) == sizeof(v))
			sum += v;
	return sum;
}

/* -- the receiver ------------------------------------------------------------------------ */

static int drain_cpu;
static volatile int draining = 1;

static void *drain(void *arg)
{
	static char buf[1 << 20];
	(void)arg;
	pin(drain_cpu);
	while (draining) {
		ssize_t n = recv(rx, buf, sizeof(buf), MSG_TRUNC); /* the data is not needed: no copy */
		if (n == 0)
			break;
		if (n < 0 && errno != EINTR && errno != EAGAIN)
			break;
	}
	return NULL;
}

/* -- completions ------------------------------------------------------------------------- */

struct compl {
	int notifications, copied;
	uint64_t ids;
};

/* Everything on the error queue now. */
static void read_errqueue(struct compl *c)
{
	char control[256];
	for (;;) {
		struct msghdr msg = {.msg_control = control, .msg_controllen = sizeof(control)};
		if (recvmsg(tx, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
			return;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
			struct sock_extended_err *ee = (struct sock_extended_err *)CMSG_DATA(cm);
			if (!((cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_RECVERR) ||
			      (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_RECVERR)))
				continue;
			if (ee->ee_origin != SO_EE_ORIGIN_ZEROCOPY)
				continue;
			c->notifications++;
			c->ids += ee->ee_data - ee->ee_info + 1;
			if (ee->ee_code & SO_EE_CODE_ZEROCOPY_COPIED)
				c->copied++;
			if ((int64_t)ee->ee_data > done_upto)
				done_upto = ee->ee_data;
		}
	}
}

/* Read notifications until every id handed out has completed (POLLERR wakes the wait). */
static int wait_errqueue(struct compl *c, int timeout_ms)
{
	struct pollfd p = {.fd = tx, .events = 0};
	int waited = 0;
	read_errqueue(c);
	while (done_upto + 1 < (int64_t)next_id) {
		if (waited >= timeout_ms)
			return -1;
		poll(&p, 1, 10);
		waited += 10;
		read_errqueue(c);
	}
	return 0;
}

/* Until the peer has acknowledged everything (TCP), outside the timed window. */
static void wait_acked(void)
{
	int q = 0;
	for (int i = 0; i < 20000 && is_tcp; i++) {
		if (ioctl(tx, SIOCOUTQ, &q) || q == 0)
			return;
		struct timespec ts = {0, 100000};
		nanosleep(&ts, NULL);
	}
}

static uint32_t retrans(void)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	if (!is_tcp || getsockopt(tx, IPPROTO_TCP, TCP_INFO, &ti, &len))
		return 0;
	return ti.tcpi_total_retrans;
}

/* -- buffers ----------------------------------------------------------------------------- */

static char *map(size_t size, size_t align)
{
	char *raw = mmap(NULL, size + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		die("mmap");
	char *p = (char *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
	if (p > raw)
		munmap(raw, p - raw);
	if (p + size < raw + size + align)
		munmap(p + size, raw + size + align - (p + size));
	return p;
}

static void advise(char *p, size_t len, int huge)
{
	if (madvise(p, len, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE))
		die("madvise");
}

struct backing {
	double present, thp, compound, zero;
};

/* What backs [p, p+len): shares of pages present, in a THP, in any large folio, the zero page
 * (/proc/self/pagemap, /proc/kpageflags; Documentation/admin-guide/mm/pagemap.rst). */
static struct backing backing(const char *p, size_t len)
{
	struct backing b = {0, 0, 0, 0};
	size_t n = (len + PAGE - 1) / PAGE;
	int pm = open("/proc/self/pagemap", O_RDONLY), kf = open("/proc/kpageflags", O_RDONLY);
	if (pm < 0 || kf < 0)
		die("open pagemap/kpageflags");
	for (size_t i = 0; i < n; i++) {
		uint64_t e = 0, f = 0;
		if (pread(pm, &e, 8, ((uintptr_t)p / PAGE + i) * 8) != 8)
			die("pread pagemap");
		if (!(e >> 63))
			continue;
		b.present++;
		uint64_t pfn = e & ((1ull << 55) - 1);
		if (pfn && pread(kf, &f, 8, pfn * 8) == 8) {
			b.thp += (f >> KPF_THP) & 1;
			b.compound += ((f >> KPF_COMPOUND_HEAD) | (f >> KPF_COMPOUND_TAIL)) & 1;
			b.zero += (f >> KPF_ZERO_PAGE) & 1;
		}
	}
	close(pm);
	close(kf);
	b.present /= n;
	b.thp /= n;
	b.compound /= n;
	b.zero /= n;
	return b;
}

/* Present buffers, written once and reused: 4k (order-0 pages), thp (one 2 MiB THP),
 * mix (a THP followed by order-0 pages; sends straddle the boundary). */
static char *present[3];
static const char *BUF[3] = {"4k", "thp", "mix"};

static int buf_kind(const char *s)
{
	for (int i = 0; i < 3; i++)
		if (!strcmp(s, BUF[i]))
			return i;
	return -1;
}

static char *present_buffer(int kind)
{
	if (present[kind])
		return present[kind];
	char *p;
	if (kind == 0) {
		p = map(MAXSIZE, PAGE);
		advise(p, MAXSIZE, 0);
		memset(p, 0x5a, MAXSIZE);
	} else if (kind == 1) {
		p = map(HUGE, HUGE);
		advise(p, HUGE, 1);
		memset(p, 0x5a, HUGE);
	} else {
		p = map(2 * HUGE, HUGE);
		advise(p, HUGE, 1);
		advise(p + HUGE, HUGE, 0);
		memset(p, 0x5a, 2 * HUGE);
	}
	present[kind] = p;
	return p;
}

/* Where a send of SIZE starts in a present buffer. */
static char *present_start(int kind, size_t size)
{
	char *p = present_buffer(kind);
	if (kind == 2)
		return p + HUGE - ((size / 2) & ~(PAGE - 1));
	return p;
}

/* -- commands ---------------------------------------------------------------------------- */

static void print_backing(const char *key, struct backing b)
{
	printf(", \"%s\": {\"present\": %.4f, \"thp\": %.4f, \"compound\": %.4f, \"zero\": %.4f}", key, b.present,
	       b.thp, b.compound, b.zero);
}

static void sample(long id, const char *mode, size_t size, const char *buf, const char *state, long calls,
		   int census)
{
	int zc = !strcmp(mode, "zc"), kind = buf_kind(buf), absent = !strcmp(state, "absent");
	int flags = zc ? MSG_ZEROCOPY : 0;
	if (kind < 0 || size == 0 || size > MAXSIZE || calls <= 0 || (absent && kind == 2)) {
		printf("{\"id\": %ld, \"error\": \"bad sample %s %zu %s %s %ld\"}\n", id, mode, size, buf, state, calls);
		return;
	}
	size_t stride = 0, region = 0;
	char *base;
	struct backing before = {0, 0, 0, 0};
	if (absent) {
		stride = kind == 1 ? (size + HUGE - 1) & ~(HUGE - 1) : (size + PAGE - 1) & ~(PAGE - 1);
		region = stride * calls;
		base = map(region, kind == 1 ? HUGE : PAGE);
		advise(base, region, kind == 1);
	} else {
		base = present_start(kind, size);
		before = backing(base, size);
	}
	struct compl c = {0, 0, 0};
	long enobufs = 0, sent = 0;
	uint32_t first_id = next_id, r0 = retrans();
	uint64_t s0 = skbs(), e0[16], e1[16];
	if (census) {
		events_read(e0);
		events_switch(1);
	}
	uint64_t t0 = cpu_ns();
	for (long i = 0; i < calls; i++) {
		char *p = base + (absent ? i * stride : 0);
		ssize_t n = send(tx, p, size, flags);
		if (n < 0 && errno == ENOBUFS && zc) { /* optmem full of notifications: read them, go on */
			enobufs++;
			read_errqueue(&c);
			i--;
			continue;
		}
		if (n < 0)
			die("send");
		if ((size_t)n != size) {
			printf("{\"id\": %ld, \"error\": \"short send %zd of %zu\"}\n", id, n, size);
			return;
		}
		sent += n;
		if (zc)
			next_id++;
	}
	uint64_t t1 = cpu_ns();
	if (census) {
		events_switch(0);
		events_read(e1);
	}
	wait_acked();
	uint64_t s1 = skbs(); /* reading another CPU's counter takes an IPI: outside the windows */
	uint32_t r1 = retrans();
	uint64_t t2 = cpu_ns();
	int timeout = 0;
	if (zc)
		timeout = wait_errqueue(&c, 5000);
	uint64_t t3 = cpu_ns();
	printf("{\"id\": %ld, \"mode\": \"%s\", \"size\": %zu, \"buf\": \"%s\", \"state\": \"%s\", \"calls\": %ld, "
	       "\"bytes\": %ld, \"send_ns\": %llu, \"settle_ns\": %llu, \"completion_ns\": %llu, \"skbs\": %lld, \"retrans\": %u, "
	       "\"enobufs\": %ld, \"notifications\": %d, \"ids\": %llu, \"copied\": %d, \"completion_timeout\": %s, "
	       "\"first_id\": %u",
	       id, mode, size, buf, state, calls, sent, (unsigned long long)(t1 - t0),
	       (unsigned long long)(t2 - t1), (unsigned long long)(t3 - t2), nperf ? (long long)(s1 - s0) : -1LL, r1 - r0, enobufs,
	       c.notifications, (unsigned long long)c.ids, c.copied, timeout ? "true" : "false", first_id);
	if (census) {
		printf(", \"events\": {");
		for (int k = 0; k < nev; k++)
			printf("%s\"%s\": %llu", k ? ", " : "", ev_name[k], (unsigned long long)(e1[k] - e0[k]));
		printf("}");
	}
	if (absent) {
		print_backing("after", backing(base, size));
		munmap(base, region);
	} else {
		print_backing("backing", before);
	}
	printf("}\n");
}

static void reference(long id, long iters)
{
	static char src[16384], dst[16384];
	uint64_t t0 = cpu_ns();
	for (long i = 0; i < iters; i++) {
		memcpy(dst, src, sizeof(dst));
		__asm__ volatile("" : : "r"(dst) : "memory");
		syscall(SYS_getppid);
	}
	uint64_t t1 = cpu_ns();
	printf("{\"id\": %ld, \"reference_ns\": %llu, \"iters\": %ld}\n", id, (unsigned long long)(t1 - t0), iters);
}

static void movsb(long id, size_t size, long iters)
{
	static char dst[32768] __attribute__((aligned(4096)));
	char *src = present_buffer(0);
	if (size > sizeof(dst)) {
		printf("{\"id\": %ld, \"error\": \"copy of %zu bytes is over %zu\"}\n", id, size, sizeof(dst));
		return;
	}
	uint64_t t0 = cpu_ns();
	for (long i = 0; i < iters; i++) {
		void *d = dst, *s = src;
		size_t n = size;
		__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
	}
	uint64_t t1 = cpu_ns();
	printf("{\"id\": %ld, \"movsb_ns\": %llu, \"size\": %zu, \"iters\": %ld}\n", id,
	       (unsigned long long)(t1 - t0), size, iters);
}

static void verify(void)
{
	printf("{\"verify\": true");
	for (int k = 0; k < 3; k++)
		if (present[k])
			print_backing(BUF[k], backing(present[k], k == 2 ? 2 * HUGE : k == 1 ? HUGE : MAXSIZE));
	printf("}\n");
}

int main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr, "usage: %s TX_FD RX_FD SEND_CPU DRAIN_CPU PERF_FDS EVENTS\n", argv[0]);
		return 2;
	}
	tx = atoi(argv[1]);
	rx = atoi(argv[2]);
	drain_cpu = atoi(argv[4]);
	if (strcmp(argv[5], "-"))
		for (char *tok = strtok(argv[5], ","); tok && nperf < 64; tok = strtok(NULL, ","))
			perf_fds[nperf++] = atoi(tok);
	int type = 0;
	socklen_t len = sizeof(type);
	if (getsockopt(tx, SOL_SOCKET, SO_TYPE, &type, &len))
		die("getsockopt SO_TYPE");
	is_tcp = type == SOCK_STREAM;
	pthread_t th;
	if (rx >= 0 && pthread_create(&th, NULL, drain, NULL))
		die("pthread_create");
	pin(atoi(argv[3]));
	if (strcmp(argv[6], "-"))
		events_open(argv[6]); /* after pinning: the thread that sends */
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("{\"ready\": true, \"tcp\": %d}\n", is_tcp);

	char line[256], cmd[4], mode[8], buf[8], state[16];
	while (fgets(line, sizeof(line), stdin)) {
		long id, calls, iters;
		int census;
		size_t size;
		if (sscanf(line, "S %ld %7s %zu %7s %15s %ld %d", &id, mode, &size, buf, state, &calls, &census) == 7)
			sample(id, mode, size, buf, state, calls, census);
		else if (sscanf(line, "R %ld %ld", &id, &iters) == 2)
			reference(id, iters);
		else if (sscanf(line, "M %ld %zu %ld", &id, &size, &iters) == 3)
			movsb(id, size, iters);
		else if (sscanf(line, "%3s", cmd) == 1 && !strcmp(cmd, "V"))
			verify();
		else if (sscanf(line, "%3s", cmd) == 1 && !strcmp(cmd, "Q"))
			break;
	}
	if (rx >= 0) {
		draining = 0;
		shutdown(tx, SHUT_WR);
		pthread_join(th, NULL);
	}
	return 0;
}
