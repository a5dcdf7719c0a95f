/*
 * The replay engine for today's per-page policy (page_ref), in C.
 *
 * Same rules as lib/fraglife/model/engine.py with page_mode = FIRST, no owner,
 * uarg refs on, no batching; it exists only to show what the numba engine
 * leaves on the table. Compiled with `cc -O2` by fraglife bench; its ledger
 * must equal the engine's (tests/test_creplay.py).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 4096
#define PAGE_SHIFT 12	/* x >> 12 == floor(x / 4096), as in the Python twin */
#define POOL_BIAS (1LL << 40)
#define FRAG_BIAS (32768LL + 1)	/* PAGE_FRAG_CACHE_MAX_SIZE + 1: a page_frag_cache refill's pagecnt_bias */
#define PMD_PAGES 512
/* trace.UARG_* and trace.FREE_* flags (an event's kind field) */
#define UARG_ACCOUNT 1
#define UARG_DEVMEM 2
#define UARG_FLAGS 3
#define FREE_DEFERRED 1
#define FREE_FLUSH 2
#define FREE_FULL 4
#define FREE_FLAGS 7
/* the fixed lines after the ubuf_infos: user_struct.__count, .locked_vm; the socket's refcnt, omem, zckey */
enum { X_USER_COUNT, X_USER_LOCKED_VM, X_SOCK_REF, X_SOCK_OMEM, X_SOCK_ZCKEY, N_X };

enum { ALLOC, SKB_ALLOC, ATTACH, CLONE, SPLIT, SEGMENT, EXPAND_HEAD, COALESCE, PULL, ZC_COMPLETE, FREE, BUF_RELEASE,
       UARG_GET, UARG_PUT, GROW, N_OPS };
enum { MEM_USER, MEM_PIPE, MEM_POOL_PAGE, MEM_POOL_FRAG, MEM_DEVMEM, MEM_SLAB, MEM_PAGE_FRAG, MEM_PAGES, N_KINDS };
/* ledger slots: the order of ledger.SCALARS (checked by tests/test_creplay.py through the ledgers) */
enum { EVENTS, ATOMICS, REF_ATOMICS, PAGE_ATOMICS, PP_ATOMICS, OWNER_ATOMICS, PIN_ATOMICS, UARG_ATOMICS,
       DATAREF_ATOMICS, FLAG_ATOMICS, CMPXCHG_ATOMICS, NOTIF_ATOMICS, DEFER_ATOMICS, PP_READS, REFS_TAKEN,
       REFS_DROPPED, LINES, BOUNCES, CMPXCHG_BOUNCES, PAGES_PEAK, UAF_PAGES, UAF_FREES,
       EARLY_COMPLETE, BAD_REFS, LEAKED_REFS, LEAKED_PAGES, LEAKED_SKBS, TRACE_ERRORS, COMPLETIONS, BY_OP };

struct st {
	int64_t n_pfn, n_buf, n_uarg, n_skb, n_slot, max_frags, n_cpu, o_base, u_base, x_base, c_base, d_base, n_lines;
	int8_t *alive, *pipe; int64_t *head, *pbuf, *ptrs;
	int8_t *b_exists, *b_holder; int64_t *b_pfn, *b_pages, *b_fp, *b_kind, *b_bias, *b_alive, *b_pipe;
	int64_t *u_ptrs; int8_t *u_active, *u_acct;
	int8_t *s_alive, *s_cloned; int64_t *s_sh;
	int64_t *sh_dataref, *sh_n, *sh_uarg, *f_pfn, *f_off, *f_len, *f_buf, *f_uarg;
	int64_t *free_stack, n_free, next_slot;
	int64_t *count, *last_cpu, *acc, *touched, nt; int8_t *written, *mark;
	int64_t pages_alive;
	int64_t *led;
};

#define F(s, slot, i) ((slot) * (s)->max_frags + (i))
#define IS_POOL(k) ((k) == MEM_POOL_PAGE || (k) == MEM_POOL_FRAG)

static void touch(struct st *s, int64_t line, int64_t cpu, int cat, int op)
{
	s->led[ATOMICS]++;
	s->led[cat]++;
	if (cat >= PAGE_ATOMICS && cat <= PIN_ATOMICS) { s->led[REF_ATOMICS]++; s->led[BY_OP + op]++; }
	if (!s->written[line]) { s->written[line] = 1; s->led[LINES]++; }
	if (s->last_cpu[line] >= 0 && s->last_cpu[line] != cpu) {
		s->led[BOUNCES]++;
		if (cat == CMPXCHG_ATOMICS) s->led[CMPXCHG_BOUNCES]++;
	}
	s->last_cpu[line] = cpu;
}

static void push(struct st *s, int64_t line, int64_t units)
{
	if (!s->mark[line]) { s->mark[line] = 1; s->touched[s->nt++] = line; }
	s->acc[line] += units;
}

static int is_pool_line(struct st *s, int64_t line)
{
	return line < s->n_pfn && IS_POOL(s->b_kind[s->pbuf[line]]);
}

static int cat_of(struct st *s, int64_t line)
{
	if (line < s->n_pfn) return is_pool_line(s, line) ? PP_ATOMICS : PAGE_ATOMICS;
	if (line >= s->u_base && line < s->x_base) return UARG_ATOMICS;
	if (line >= s->d_base) return DATAREF_ATOMICS;
	return OWNER_ATOMICS;
}

static void free_range(struct st *s, int64_t lo, int64_t hi)
{
	int hit = 0;
	for (int64_t q = lo; q < hi; q++) {
		if (!s->alive[q]) continue;
		s->alive[q] = 0;
		s->pages_alive--;
		s->b_alive[s->pbuf[q]]--;
		if (s->ptrs[q] > 0) { s->led[UAF_PAGES]++; hit = 1; }
	}
	if (hit) s->led[UAF_FREES]++;
}

/* __msg_zerocopy_callback(): the accounting back, the notification queued and its skb freed, the socket put */
static void notify(struct st *s, int64_t u, int64_t cpu, int op)
{
	if (s->u_acct[u]) {
		s->u_acct[u] = 0;
		touch(s, s->x_base + X_USER_LOCKED_VM, cpu, NOTIF_ATOMICS, op);
		touch(s, s->x_base + X_USER_COUNT, cpu, CMPXCHG_ATOMICS, op);
	}
	touch(s, s->x_base + X_SOCK_REF, cpu, NOTIF_ATOMICS, op);
	touch(s, s->x_base + X_SOCK_OMEM, cpu, NOTIF_ATOMICS, op);
	touch(s, s->x_base + X_SOCK_REF, cpu, NOTIF_ATOMICS, op);
}

static void dies(struct st *s, int64_t line, int64_t cpu, int op)
{
	if (line < s->n_pfn) {
		int64_t b = s->pbuf[line], end = line + s->b_fp[b];
		if (end > s->b_pfn[b] + s->b_pages[b]) end = s->b_pfn[b] + s->b_pages[b];
		free_range(s, line, end);
	} else if (line < s->u_base) {
		int64_t b = line - s->o_base;
		free_range(s, s->b_pfn[b], s->b_pfn[b] + s->b_pages[b]);
	} else if (line < s->x_base) {
		s->led[COMPLETIONS]++;
		s->u_active[line - s->u_base] = 0;
		notify(s, line - s->u_base, cpu, op);
	}
}

/* Add units to the refcount on line: one atomic per unit, page_pool puts read when they are the last. */
static void change(struct st *s, int64_t line, int64_t units, int64_t cpu, int op, int silent)
{
	int cat = cat_of(s, line);
	int64_t cur = s->count[line];
	int counted = cat != UARG_ATOMICS;
	if (units > 0) {
		if (!silent) for (int64_t i = 0; i < units; i++) touch(s, line, cpu, cat, op);
		int alive;
		if (line < s->n_pfn) alive = s->alive[line];
		else if (line >= s->u_base) alive = s->u_active[line - s->u_base];
		else alive = cur > 0;
		if (!alive) s->led[BAD_REFS]++;
		s->count[line] = cur + units;
		if (counted) s->led[REFS_TAKEN] += units;
		return;
	}
	int64_t k = -units;
	if (!silent) {
		if (is_pool_line(s, line)) {
			int64_t left = cur;
			for (int64_t i = 0; i < k; i++, left--) {
				if (left == 1) s->led[PP_READS]++;
				else touch(s, line, cpu, cat, op);
			}
		} else {
			for (int64_t i = 0; i < k; i++) touch(s, line, cpu, cat, op);
		}
	}
	if (counted) s->led[REFS_DROPPED] += k;
	if (cur < k) { s->led[BAD_REFS]++; s->count[line] = 0; return; }
	s->count[line] = cur - k;
	if (cur - k == 0 && cur > 0) dies(s, line, cpu, op);
}

static void point(struct st *s, int64_t pfn, int64_t off, int64_t len, int64_t uarg, int64_t sign)
{
	int64_t q0 = pfn + (off >> PAGE_SHIFT), q1 = pfn + ((off + len - 1) >> PAGE_SHIFT);
	for (int64_t q = q0; q <= q1; q++) s->ptrs[q] += sign;
	if (uarg >= 0) s->u_ptrs[uarg] += sign;
}

/* today's frag reference: the folio of the frag's page, the pool page, or the devmem binding */
static inline void refset(struct st *s, int64_t pfn, int64_t buf, int64_t sign)
{
	push(s, s->b_kind[buf] == MEM_DEVMEM ? s->o_base + buf : s->head[pfn], sign);
}

/* one GUP call's pages: a ref and PG_referenced per PTE page (per PMD leaf); the surplus back in one page_ref_sub() */
static void gup(struct st *s, int64_t pfn, int64_t off, int64_t ln, int64_t buf, int64_t cpu, int op)
{
	int64_t fp = s->b_fp[buf], held_line = s->head[pfn];
	int64_t q = pfn + (off >> PAGE_SHIFT), q1 = pfn + ((off + ln - 1) >> PAGE_SHIFT);
	while (q <= q1) {
		int64_t h = s->head[q], lo = q;
		while (q <= q1 && s->head[q] == h) q++;
		int64_t n = q - lo, held = h == held_line, gets = fp >= PMD_PAGES ? 1 : n, back = n > held;
		for (int64_t i = 0; i < gets + back - held; i++) touch(s, h, cpu, PAGE_ATOMICS, op);
		for (int64_t i = 0; i < gets; i++) touch(s, h, cpu, FLAG_ATOMICS, op);	/* folio_set_referenced() */
	}
}

static int64_t new_slot(struct st *s, int64_t cpu)
{
	int64_t slot = s->n_free > 0 ? s->free_stack[--s->n_free] : s->next_slot++;
	s->sh_dataref[slot] = 1;
	s->sh_n[slot] = 0;
	s->sh_uarg[slot] = -1;
	s->last_cpu[s->d_base + slot] = cpu;
	return slot;
}

static int64_t total_len(struct st *s, int64_t slot)
{
	int64_t t = 0;
	for (int64_t i = 0; i < s->sh_n[slot]; i++) t += s->f_len[F(s, slot, i)];
	return t;
}

static void set_frag(struct st *s, int64_t slot, int64_t i, int64_t pfn, int64_t off, int64_t len, int64_t buf,
		     int64_t uarg)
{
	int64_t k = F(s, slot, i);
	s->f_pfn[k] = pfn; s->f_off[k] = off; s->f_len[k] = len; s->f_buf[k] = buf; s->f_uarg[k] = uarg;
}

/* whether the slot's frags hold at least ln bytes, reading only as far as needed */
static int holds(struct st *s, int64_t slot, int64_t ln)
{
	int64_t t = 0;
	for (int64_t i = 0; i < s->sh_n[slot]; i++) if ((t += s->f_len[F(s, slot, i)]) >= ln) return 1;
	return t >= ln;
}

static int frag_ok(struct st *s, int64_t pfn, int64_t off, int64_t ln, int64_t buf)
{
	if (buf < 0 || buf >= s->n_buf || !s->b_exists[buf] || ln <= 0 || off < 0 || pfn < s->b_pfn[buf]) return 0;
	int64_t q0 = pfn + (off >> PAGE_SHIFT), q1 = pfn + ((off + ln - 1) >> PAGE_SHIFT);
	if (q1 >= s->b_pfn[buf] + s->b_pages[buf]) return 0;
	for (int64_t q = q0; q <= q1; q++) if (!s->alive[q]) return 0;
	return 1;
}

static void inherit_uarg(struct st *s, int64_t src, int64_t dst)
{
	if (s->sh_uarg[src] >= 0) { s->sh_uarg[dst] = s->sh_uarg[src]; push(s, s->u_base + s->sh_uarg[src], 1); }
}

#define SKB_OK(x) ((x) >= 0 && (x) < s->n_skb)

/* pipe_buf_release() of the pipe buffers still held among pages [lo, hi): one put per page on its folio */
static void pipe_release(struct st *s, int64_t buf, int64_t lo, int64_t hi, int64_t cpu, int op)
{
	int64_t h = -1, units = 0;
	for (int64_t q = lo; q < hi; q++) {
		if (!s->pipe[q]) continue;
		s->pipe[q] = 0;
		s->b_pipe[buf]--;
		if (s->head[q] != h && units) { change(s, h, -units, cpu, op, 0); units = 0; }
		h = s->head[q];
		units++;
	}
	if (units) change(s, h, -units, cpu, op, 0);
}

static int uarg_flags_ok(struct st *s, int64_t kind, int64_t buf)
{
	if (kind & ~UARG_FLAGS) return 0;
	return !(kind & UARG_DEVMEM) || (buf >= 0 && buf < s->n_buf && s->b_exists[buf]);
}

static int step(struct st *s, int op, int64_t kind, int64_t cpu, int64_t skb, int64_t other, int64_t buf,
		int64_t pfn, int64_t off, int64_t ln)
{
	switch (op) {
	case ALLOC: {
		int64_t fp = off, pages = ln;
		if (pages <= 0 || fp <= 0 || pfn < 0 || pfn + pages > s->n_pfn || buf < 0 || buf >= s->n_buf ||
		    kind >= N_KINDS || ((IS_POOL(kind) || kind == MEM_PAGE_FRAG) && pages != fp)) return 0;
		if (s->b_exists[buf] && (s->b_holder[buf] || s->b_alive[buf] > 0)) return 0;
		for (int64_t q = pfn; q < pfn + pages; q++) if (s->alive[q]) return 0;
		s->b_exists[buf] = 1; s->b_pfn[buf] = pfn; s->b_pages[buf] = pages; s->b_fp[buf] = fp;
		s->b_kind[buf] = kind; s->b_holder[buf] = 1; s->b_bias[buf] = 0; s->b_alive[buf] = pages;
		s->b_pipe[buf] = kind == MEM_PIPE ? pages : 0;
		for (int64_t q = pfn; q < pfn + pages; q++) {
			s->alive[q] = 1;
			s->pipe[q] = kind == MEM_PIPE;
			s->head[q] = pfn + (q - pfn) / fp * fp;
			s->pbuf[q] = buf;
		}
		s->pages_alive += pages;
		if (s->pages_alive > s->led[PAGES_PEAK]) s->led[PAGES_PEAK] = s->pages_alive;
		s->count[s->o_base + buf] = 0;
		if (IS_POOL(kind)) {
			s->b_bias[buf] = kind == MEM_POOL_PAGE ? 1 : POOL_BIAS;
			s->count[pfn] = s->b_bias[buf];
			s->last_cpu[pfn] = cpu;
		} else if (kind == MEM_PAGE_FRAG) {	/* the cache holds pagecnt_bias */
			s->b_bias[buf] = FRAG_BIAS;
			s->count[pfn] = FRAG_BIAS;
			s->last_cpu[pfn] = cpu;
		} else if (kind == MEM_DEVMEM) {
			s->count[s->o_base + buf] = 1;
			s->last_cpu[s->o_base + buf] = cpu;
		} else if (kind == MEM_SLAB) {
			/* no refcount: it lives until kfree() */
		} else {
			for (int64_t h = pfn; h < pfn + pages; h += fp) {
				int64_t span = pfn + pages - h < fp ? pfn + pages - h : fp;
				s->count[h] = kind == MEM_PIPE ? span : 1;
				s->last_cpu[h] = cpu;
			}
		}
		return 1;
	}
	case SKB_ALLOC:
		if (!SKB_OK(skb) || s->s_alive[skb]) return 0;
		s->s_sh[skb] = new_slot(s, cpu);
		s->s_alive[skb] = 1;
		s->s_cloned[skb] = 0;
		return 1;
	case ATTACH: {
		int64_t u = other;
		if (!SKB_OK(skb) || !s->s_alive[skb] || !frag_ok(s, pfn, off, ln, buf)) return 0;
		int64_t slot = s->s_sh[skb];
		if (s->sh_dataref[slot] != 1 || s->sh_n[slot] >= s->max_frags) return 0;
		if (u >= 0 && (u >= s->n_uarg || !s->u_active[u])) return 0;
		if (u >= 0 && s->sh_uarg[slot] >= 0 && s->sh_uarg[slot] != u) return 0;
		if (s->b_kind[buf] == MEM_SLAB) return 0;	/* skb_splice_from_iter(): !sendpage_ok(), -EIO */
		set_frag(s, slot, s->sh_n[slot]++, pfn, off, ln, buf, u);
		point(s, pfn, off, ln, u, 1);
		if (s->b_kind[buf] == MEM_USER) gup(s, pfn, off, ln, buf, cpu, op);
		refset(s, pfn, buf, 1);
		if (IS_POOL(s->b_kind[buf]) && s->b_bias[buf] > 0) { s->b_bias[buf]--; push(s, s->head[pfn], -1); }
		if (u >= 0 && s->sh_uarg[slot] < 0) { s->sh_uarg[slot] = u; push(s, s->u_base + u, 1); }
		return 1;
	}
	case GROW: {
		if (!SKB_OK(skb) || !s->s_alive[skb] || ln <= 0) return 0;
		int64_t slot = s->s_sh[skb], n = s->sh_n[slot];
		if (s->sh_dataref[slot] != 1 || n == 0 || n >= s->max_frags) return 0;
		int64_t k = F(s, slot, n - 1);
		int64_t fp_ = s->f_pfn[k], fo = s->f_off[k], fl = s->f_len[k], fb = s->f_buf[k], fu = s->f_uarg[k];
		if (buf != fb || other != fu || !frag_ok(s, fp_, fo, fl + ln, fb)) return 0;
		int64_t last = s->head[fp_ + ((fo + fl - 1) >> PAGE_SHIFT)];
		int64_t q0 = fp_ + ((fo + fl) >> PAGE_SHIFT), q1 = fp_ + ((fo + fl + ln - 1) >> PAGE_SHIFT);
		for (int64_t q = q0; q <= q1; q++) if (s->head[q] != last) return 0;
		point(s, fp_, fo, fl, fu, -1);
		point(s, fp_, fo, fl + ln, fu, 1);
		s->f_len[k] = fl + ln;
		if (s->b_kind[buf] == MEM_USER) {
			int64_t gets = s->b_fp[buf] >= PMD_PAGES ? 1 : q1 - q0 + 1;
			for (int64_t i = 0; i < gets + 1; i++) touch(s, last, cpu, PAGE_ATOMICS, op);
			for (int64_t i = 0; i < gets; i++) touch(s, last, cpu, FLAG_ATOMICS, op);
		}
		return 1;
	}
	case CLONE: {
		if (!SKB_OK(other) || !s->s_alive[other] || !SKB_OK(skb) || s->s_alive[skb] || skb == other) return 0;
		int64_t slot = s->s_sh[other];
		s->sh_dataref[slot]++;
		touch(s, s->d_base + slot, cpu, DATAREF_ATOMICS, op);
		s->s_alive[skb] = 1; s->s_sh[skb] = slot; s->s_cloned[skb] = 1; s->s_cloned[other] = 1;
		return 1;
	}
	case SPLIT: {
		int64_t keep = ln;
		if (!SKB_OK(skb) || !s->s_alive[skb] || !SKB_OK(other) || s->s_alive[other] || other == skb) return 0;
		int64_t slot = s->s_sh[skb];
		if (s->sh_dataref[slot] != 1 || keep <= 0 || keep >= total_len(s, slot)) return 0;
		int64_t ns = new_slot(s, cpu), pos = 0, k = 0, n_old = s->sh_n[slot];
		for (int64_t i = 0; i < n_old; i++) {
			int64_t x = F(s, slot, i);
			int64_t fp = s->f_pfn[x], fo = s->f_off[x], fl = s->f_len[x], fb = s->f_buf[x], fu = s->f_uarg[x];
			if (pos + fl <= keep) {
				set_frag(s, slot, k++, fp, fo, fl, fb, fu);
			} else if (pos >= keep) {
				set_frag(s, ns, s->sh_n[ns]++, fp, fo, fl, fb, fu);
			} else {
				int64_t hl = keep - pos;
				point(s, fp, fo, fl, fu, -1);
				point(s, fp, fo, hl, fu, 1);
				point(s, fp, fo + hl, fl - hl, fu, 1);
				refset(s, fp, fb, -1); refset(s, fp, fb, 1); refset(s, fp, fb, 1);
				set_frag(s, slot, k++, fp, fo, hl, fb, fu);
				set_frag(s, ns, s->sh_n[ns]++, fp, fo + hl, fl - hl, fb, fu);
			}
			pos += fl;
		}
		s->sh_n[slot] = k;
		inherit_uarg(s, slot, ns);
		s->s_alive[other] = 1; s->s_sh[other] = ns; s->s_cloned[other] = 0;
		return 1;
	}
	case SEGMENT: {
		int64_t start = off, end = off + ln;
		if (!SKB_OK(other) || !s->s_alive[other] || !SKB_OK(skb) || s->s_alive[skb] || skb == other) return 0;
		if (start < 0 || ln <= 0) return 0;
		/* one scan up to the frag holding byte end - 1 (engine.segment): frags before first end at or before
		 * start, those from last on begin at or after end; pieces are frags, so at most max_frags */
		int64_t slot = s->s_sh[other], n = s->sh_n[slot], pos = 0, first = 0, first_pos = 0, last = 0;
		while (last < n && pos < end) {
			int64_t fl = s->f_len[F(s, slot, last)];
			if (pos + fl <= start) { first = last + 1; first_pos = pos + fl; }
			pos += fl;
			last++;
		}
		if (pos < end) return 0;
		int64_t ns = new_slot(s, cpu);
		pos = first_pos;
		for (int64_t i = first; i < last; i++) {
			int64_t x = F(s, slot, i), fl = s->f_len[x];
			int64_t lo = start > pos ? start : pos, hi = end < pos + fl ? end : pos + fl;
			if (lo < hi) {
				int64_t fp = s->f_pfn[x], fo = s->f_off[x] + lo - pos, fb = s->f_buf[x], fu = s->f_uarg[x];
				set_frag(s, ns, s->sh_n[ns]++, fp, fo, hi - lo, fb, fu);
				point(s, fp, fo, hi - lo, fu, 1);
				refset(s, fp, fb, 1);
			}
			pos += fl;
		}
		inherit_uarg(s, slot, ns);
		s->s_alive[skb] = 1; s->s_sh[skb] = ns; s->s_cloned[skb] = 0;
		return 1;
	}
	case EXPAND_HEAD: {
		if (!SKB_OK(skb) || !s->s_alive[skb]) return 0;
		int64_t slot = s->s_sh[skb];
		if (s->sh_dataref[slot] > 1) {
			int64_t ns = new_slot(s, cpu), n_old = s->sh_n[slot];
			for (int64_t i = 0; i < n_old; i++) {
				int64_t x = F(s, slot, i);
				set_frag(s, ns, i, s->f_pfn[x], s->f_off[x], s->f_len[x], s->f_buf[x], s->f_uarg[x]);
				point(s, s->f_pfn[x], s->f_off[x], s->f_len[x], s->f_uarg[x], 1);
				refset(s, s->f_pfn[x], s->f_buf[x], 1);
			}
			s->sh_n[ns] = n_old;
			inherit_uarg(s, slot, ns);
			s->sh_dataref[slot]--;
			touch(s, s->d_base + slot, cpu, DATAREF_ATOMICS, op);
			s->s_sh[skb] = ns;
		}
		s->s_cloned[skb] = 0;
		return 1;
	}
	case COALESCE: {
		if (!SKB_OK(skb) || !s->s_alive[skb] || !SKB_OK(other) || !s->s_alive[other] || skb == other) return 0;
		int64_t ds = s->s_sh[skb], ss = s->s_sh[other];
		if (s->sh_dataref[ds] != 1 || s->sh_uarg[ds] >= 0 || s->sh_uarg[ss] >= 0 ||
		    s->sh_n[ds] + s->sh_n[ss] > s->max_frags) return 0;
		int64_t n_d = s->sh_n[ds], n_s = s->sh_n[ss];
		int shared = s->sh_dataref[ss] > 1;
		for (int64_t i = 0; i < n_s; i++) {
			int64_t x = F(s, ss, i);
			set_frag(s, ds, n_d + i, s->f_pfn[x], s->f_off[x], s->f_len[x], s->f_buf[x], s->f_uarg[x]);
			if (shared) {
				point(s, s->f_pfn[x], s->f_off[x], s->f_len[x], s->f_uarg[x], 1);
				refset(s, s->f_pfn[x], s->f_buf[x], 1);
			}
		}
		s->sh_n[ds] = n_d + n_s;
		if (!shared) s->sh_n[ss] = 0;
		return 1;
	}
	case PULL: {
		if (!SKB_OK(skb) || !s->s_alive[skb]) return 0;
		int64_t slot = s->s_sh[skb];
		if (s->sh_dataref[slot] != 1 || ln <= 0 || !holds(s, slot, ln)) return 0;
		int64_t eat = ln, k = 0, n_old = s->sh_n[slot];
		for (int64_t i = 0; i < n_old; i++) {
			int64_t x = F(s, slot, i);
			int64_t fp = s->f_pfn[x], fo = s->f_off[x], fl = s->f_len[x], fb = s->f_buf[x], fu = s->f_uarg[x];
			if (fl <= eat) {
				eat -= fl;
				point(s, fp, fo, fl, fu, -1);
				refset(s, fp, fb, -1);
			} else if (eat > 0) {	/* point()/refset() of the frag (-1) and of what is left (+1), netted */
				for (int64_t q = fp + (fo >> PAGE_SHIFT); q < fp + ((fo + eat) >> PAGE_SHIFT); q++) s->ptrs[q]--;
				set_frag(s, slot, k++, fp, fo + eat, fl - eat, fb, fu);
				eat = 0;
			} else if (k == i) {	/* nothing was eaten whole: the rest stay where they are */
				k = n_old;
				break;
			} else {
				set_frag(s, slot, k++, fp, fo, fl, fb, fu);
			}
		}
		s->sh_n[slot] = k;
		return 1;
	}
	case ZC_COMPLETE:
		if (other < 0 || other >= s->n_uarg) return 0;
		if (s->u_ptrs[other] > 0) s->led[EARLY_COMPLETE]++;
		return 1;
	case FREE: {
		if (!SKB_OK(skb) || !s->s_alive[skb]) return 0;
		if (kind) {	/* skb_attempt_defer_free(): other = the other CPU, ln = the reader's atomics */
			int deferred = (kind & FREE_DEFERRED) != 0, full = (kind & FREE_FULL) != 0;
			if ((kind & ~FREE_FLAGS) || deferred == full || ((kind & FREE_FLUSH) && !deferred) || other < 0 ||
			    other >= s->n_cpu || other == cpu || ln < 0 || ln > 2) return 0;
			int64_t line = s->c_base + (deferred ? cpu : other), by = deferred ? other : cpu;
			for (int64_t i = 0; i < ln; i++) touch(s, line, by, DEFER_ATOMICS, op);
			if (kind & FREE_FLUSH) touch(s, line, cpu, DEFER_ATOMICS, op);
		}
		int64_t slot = s->s_sh[skb];
		s->s_alive[skb] = 0;
		if (s->sh_dataref[slot] > 1) {
			s->sh_dataref[slot]--;
			touch(s, s->d_base + slot, cpu, DATAREF_ATOMICS, op);
		} else {
			for (int64_t i = 0; i < s->sh_n[slot]; i++) {
				int64_t x = F(s, slot, i);
				point(s, s->f_pfn[x], s->f_off[x], s->f_len[x], s->f_uarg[x], -1);
				refset(s, s->f_pfn[x], s->f_buf[x], -1);
			}
			if (s->sh_uarg[slot] >= 0) push(s, s->u_base + s->sh_uarg[slot], -1);
			s->sh_n[slot] = 0;
			s->sh_dataref[slot] = 0;
			s->free_stack[s->n_free++] = slot;
		}
		return 1;
	}
	case BUF_RELEASE: {
		if (buf >= 0 && buf < s->n_buf && s->b_exists[buf] && s->b_kind[buf] == MEM_PAGE_FRAG && ln > 0) {
			for (int64_t i = 0; i < ln; i++) {	/* page_frag_free(): out of the bias, one put */
				if (s->b_bias[buf] > 0) s->b_bias[buf]--;
				change(s, s->b_pfn[buf], -1, cpu, op, 0);
			}
			return 1;
		}
		if (buf < 0 || buf >= s->n_buf || !s->b_exists[buf] || !s->b_holder[buf]) return 0;
		int64_t bk = s->b_kind[buf], fp = s->b_fp[buf], lo = s->b_pfn[buf], hi = lo + s->b_pages[buf];
		if (bk == MEM_PIPE) {	/* pipe_buf_release() of [pfn, pfn + ln) only, or of all it still holds */
			int64_t a = ln > 0 ? pfn : lo, b = ln > 0 ? pfn + ln : hi;
			if (ln > 0) {
				if (a < lo || b > hi) return 0;
				for (int64_t q = a; q < b; q++) if (!s->pipe[q]) return 0;
			}
			pipe_release(s, buf, a, b, cpu, op);
			if (s->b_pipe[buf] > 0) return 1;
			s->b_holder[buf] = 0;
			return 1;
		}
		s->b_holder[buf] = 0;
		(void)fp;
		if (IS_POOL(bk)) {	/* page_pool_drain_frag() */
			int64_t nr = s->b_bias[buf];
			s->b_bias[buf] = 0;
			if (nr) {
				int64_t cur = s->count[lo];
				if (cur == nr) s->led[PP_READS]++;
				else touch(s, lo, cpu, PP_ATOMICS, op);
				s->count[lo] = cur - nr > 0 ? cur - nr : 0;
				if (cur < nr) s->led[BAD_REFS]++;
				if (cur - nr == 0) dies(s, lo, cpu, op);
			}
		} else if (bk == MEM_PAGE_FRAG) {	/* page_ref_sub_and_test(pagecnt_bias) */
			int64_t nr = s->b_bias[buf];
			s->b_bias[buf] = 0;
			if (nr) {
				int64_t cur = s->count[lo];
				touch(s, lo, cpu, PAGE_ATOMICS, op);
				s->count[lo] = cur - nr > 0 ? cur - nr : 0;
				if (cur < nr) s->led[BAD_REFS]++;
				if (cur - nr == 0) dies(s, lo, cpu, op);
			}
		} else if (bk == MEM_DEVMEM) {
			change(s, s->o_base + buf, -1, cpu, op, 0);
		} else if (bk == MEM_SLAB) {	/* kfree() */
			free_range(s, lo, hi);
		} else {
			for (int64_t h = lo; h < hi; h += s->b_fp[buf]) change(s, h, -1, cpu, op, bk == MEM_USER);
		}
		return 1;
	}
	case UARG_GET: {
		if (other < 0 || other >= s->n_uarg || !uarg_flags_ok(s, kind, buf)) return 0;
		int new = !s->u_active[other];
		if (new) {	/* sock_omalloc() */
			touch(s, s->x_base + X_SOCK_OMEM, cpu, NOTIF_ATOMICS, op);
			s->u_acct[other] = 0;
		}
		if (kind & UARG_ACCOUNT) {	/* mm_account_pinned_pages(); get_uid() on the first accounting */
			touch(s, s->x_base + X_USER_LOCKED_VM, cpu, CMPXCHG_ATOMICS, op);
			if (!s->u_acct[other]) {
				touch(s, s->x_base + X_USER_COUNT, cpu, NOTIF_ATOMICS, op);
				s->u_acct[other] = 1;
			}
		}
		if (new) {	/* sk_zckey, refcount_set(1), sock_hold() */
			touch(s, s->x_base + X_SOCK_ZCKEY, cpu, NOTIF_ATOMICS, op);
			s->u_active[other] = 1;
			s->count[s->u_base + other] = 1;
			s->last_cpu[s->u_base + other] = cpu;
			touch(s, s->x_base + X_SOCK_REF, cpu, NOTIF_ATOMICS, op);
		} else {
			change(s, s->u_base + other, 1, cpu, op, 0);
		}
		if (kind & UARG_DEVMEM) touch(s, s->o_base + buf, cpu, CMPXCHG_ATOMICS, op);	/* refcount_inc_not_zero() */
		return 1;
	}
	case UARG_PUT:
		if (other < 0 || other >= s->n_uarg || !s->u_active[other] || !uarg_flags_ok(s, kind, buf)) return 0;
		change(s, s->u_base + other, -1, cpu, op, 0);
		if (kind & UARG_DEVMEM) touch(s, s->o_base + buf, cpu, OWNER_ATOMICS, op);	/* the binding's put */
		return 1;
	}
	return 0;
}

#define ALLOCZ(p, n) do { (p) = calloc((size_t)((n) > 0 ? (n) : 1), sizeof(*(p))); if (!(p)) goto oom; } while (0)

int fl_replay_page_ref(int64_t n, const uint8_t *op_, const uint8_t *kind_, const uint16_t *cpu_,
		       const int32_t *skb_, const int32_t *other_, const int32_t *buf_, const int64_t *pfn_,
		       const int64_t *off_, const int64_t *len_, int64_t n_pfn, int64_t n_buf, int64_t n_uarg,
		       int64_t n_skb, int64_t max_frags, int64_t n_cpu, int64_t *led)
{
	struct st S = {0}, *s = &S;
	int rc = -1;
	int64_t nb = n_buf > 0 ? n_buf : 1, nu = n_uarg > 0 ? n_uarg : 1;
	s->n_pfn = n_pfn; s->n_buf = n_buf; s->n_uarg = n_uarg; s->n_skb = n_skb;
	s->n_slot = n_skb + 1; s->max_frags = max_frags; s->n_cpu = n_cpu > 0 ? n_cpu : 1;
	s->o_base = n_pfn; s->u_base = n_pfn + nb; s->x_base = s->u_base + nu; s->c_base = s->x_base + N_X;
	s->d_base = s->c_base + s->n_cpu; s->n_lines = s->d_base + s->n_slot;
	s->led = led;
	ALLOCZ(s->alive, n_pfn); ALLOCZ(s->head, n_pfn); ALLOCZ(s->pbuf, n_pfn); ALLOCZ(s->ptrs, n_pfn);
	ALLOCZ(s->pipe, n_pfn);
	ALLOCZ(s->b_exists, nb); ALLOCZ(s->b_holder, nb); ALLOCZ(s->b_pfn, nb); ALLOCZ(s->b_pages, nb);
	ALLOCZ(s->b_fp, nb); ALLOCZ(s->b_kind, nb); ALLOCZ(s->b_bias, nb); ALLOCZ(s->b_alive, nb); ALLOCZ(s->b_pipe, nb);
	for (int64_t b = 0; b < nb; b++) s->b_fp[b] = 1;
	ALLOCZ(s->u_ptrs, nu); ALLOCZ(s->u_active, nu); ALLOCZ(s->u_acct, nu);
	ALLOCZ(s->s_alive, n_skb); ALLOCZ(s->s_cloned, n_skb); ALLOCZ(s->s_sh, n_skb);
	ALLOCZ(s->sh_dataref, s->n_slot); ALLOCZ(s->sh_n, s->n_slot); ALLOCZ(s->sh_uarg, s->n_slot);
	ALLOCZ(s->f_pfn, s->n_slot * max_frags); ALLOCZ(s->f_off, s->n_slot * max_frags);
	ALLOCZ(s->f_len, s->n_slot * max_frags); ALLOCZ(s->f_buf, s->n_slot * max_frags);
	ALLOCZ(s->f_uarg, s->n_slot * max_frags);
	ALLOCZ(s->free_stack, s->n_slot);
	ALLOCZ(s->count, s->n_lines); ALLOCZ(s->last_cpu, s->n_lines); ALLOCZ(s->acc, s->n_lines);
	ALLOCZ(s->touched, s->n_lines); ALLOCZ(s->written, s->n_lines); ALLOCZ(s->mark, s->n_lines);
	for (int64_t i = 0; i < s->n_lines; i++) s->last_cpu[i] = -1;

	for (int64_t e = 0; e < n; e++) {
		int op = op_[e];
		int64_t cpu = cpu_[e];
		led[EVENTS]++;
		s->nt = 0;
		if (!step(s, op, kind_[e], cpu, skb_[e], other_[e], buf_[e], pfn_[e], off_[e], len_[e]))
			led[TRACE_ERRORS]++;
		int puts = 0;
		for (int64_t t = 0; t < s->nt; t++) {	/* gets first */
			int64_t line = s->touched[t];
			if (s->acc[line] > 0) change(s, line, s->acc[line], cpu, op, 0);
			else if (s->acc[line] < 0) puts = 1;
		}
		for (int64_t t = 0; t < s->nt; t++) {	/* then puts; the marks go as they are passed */
			int64_t line = s->touched[t];
			if (puts && s->acc[line] < 0) change(s, line, s->acc[line], cpu, op, 0);
			s->acc[line] = 0;
			s->mark[line] = 0;
		}
	}

	int64_t leaked = 0;
	for (int64_t h = 0; h < n_pfn; h++) if (s->alive[h] && s->head[h] == h && s->count[h] > 0) leaked += s->count[h];
	for (int64_t line = s->o_base; line < s->d_base; line++) if (s->count[line] > 0) leaked += s->count[line];
	int64_t live = 0;
	int8_t *in_use = calloc((size_t)s->n_slot, 1);
	if (!in_use) goto oom;
	for (int64_t k = 0; k < n_skb; k++) if (s->s_alive[k]) { live++; in_use[s->s_sh[k]] = 1; }
	for (int64_t k = 0; k < s->n_slot; k++) if (in_use[k]) leaked += s->sh_dataref[k];
	free(in_use);
	led[LEAKED_REFS] = leaked;
	led[LEAKED_PAGES] = s->pages_alive;
	led[LEAKED_SKBS] = live;
	rc = 0;
oom:
	free(s->alive); free(s->head); free(s->pbuf); free(s->ptrs); free(s->pipe);
	free(s->b_exists); free(s->b_holder); free(s->b_pfn); free(s->b_pages); free(s->b_fp); free(s->b_kind);
	free(s->b_bias); free(s->b_alive); free(s->b_pipe); free(s->u_ptrs); free(s->u_active); free(s->u_acct);
	free(s->s_alive); free(s->s_cloned); free(s->s_sh);
	free(s->sh_dataref); free(s->sh_n); free(s->sh_uarg); free(s->f_pfn); free(s->f_off); free(s->f_len);
	free(s->f_buf); free(s->f_uarg); free(s->free_stack);
	free(s->count); free(s->last_cpu); free(s->acc); free(s->touched); free(s->written); free(s->mark);
	return rc;
}
