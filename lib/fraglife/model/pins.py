"""Pins and references on user folios: chapter 03's two models.

``history`` replays random reference and pin histories on folios and asks
``folio_maybe_dma_pinned()`` about them, counting how often it is wrong.
``sender`` replays a stream of MSG_ZEROCOPY sends from a ring of user buffers,
taking today's GUP references or FOLL_PIN pins, with forks in between, and
counts what each costs. Both are numba kernels; ``history_twin`` and
``sender_twin`` are the plain-Python specifications they are tested against.

Kernel rules (torvalds/linux v6.12 unless said):

- A FOLL_GET reference adds one to the folio's ``_refcount``. A FOLL_PIN pin in
  the fast path takes a reference with ``try_get_folio()`` and then adds
  ``GUP_PIN_COUNTING_BIAS - 1`` (1023) more to a small folio's ``_refcount``,
  or one to a large folio's ``_pincount``: two atomics where FOLL_GET takes
  one, per PTE page, or per PMD leaf for all the pages of a PMD-mapped THP a
  call covers (mm/gup.c ``try_grab_folio_fast()``, ``gup_fast_pte_range()``,
  ``gup_fast_pmd_leaf()``).
- ``unpin_user_pages()`` drops consecutive pages of one folio together
  (``gup_folio_next()``): one ``folio_put_refs()`` of ``n x 1024`` on a small
  folio, an ``atomic_sub()`` of ``_pincount`` and a ``folio_put_refs()`` on a
  large one (``gup_put_folio()``).
- ``folio_maybe_dma_pinned()`` (include/linux/mm.h): a large folio is pinned
  iff ``_pincount > 0``; a small one iff ``_refcount >= 1024``, so enough
  ordinary references make an unpinned small folio look pinned.
- Today's MSG_ZEROCOPY takes FOLL_GET references one GUP call per skb and
  folio run (``zerocopy_fill_skb_from_iter()`` -> ``iov_iter_get_pages2()``,
  net/core/datagram.c), merges the pages of one folio into one frag and gives
  the surplus back with one ``page_ref_sub()``; freeing the skb puts one ref
  per frag. The ``ubuf_info`` extends over consecutive sends up to 512 KiB
  (``msg_zerocopy_realloc()``); each send charges ``locked_vm`` once
  (``mm_account_pinned_pages()``), each ``ubuf_info`` uncharges once when it
  completes (``mm_unaccount_pinned_pages()``), net/core/skbuff.c.
- fork (``copy_present_ptes()``, mm/memory.c; ``__folio_try_dup_anon_rmap()``,
  include/linux/rmap.h): in an mm with ``MMF_HAS_PINNED`` (set by its first
  FOLL_PIN, mm/gup.c ``mm_set_has_pinned_flag()``), an anon-exclusive page of
  a folio that ``folio_maybe_dma_pinned()`` reports is copied for the child at
  once; fork takes its own reference before asking (``folio_get()``), so a
  small folio counts ``1 + refs + 1``. A PMD-mapped THP is split first
  (mm/huge_memory.c ``copy_huge_pmd()``). Every other page is shared and
  write-protected in both processes.
- The parent's next write to a write-protected page (``do_wp_page()``,
  mm/memory.c): a small folio nobody else references is reused (a fault, no
  copy); one that others still reference is copied; a page of a PTE-mapped
  large folio is always copied in v6.12 (``wp_can_reuse_anon_folio()``
  declines large folios). A PMD-mapped THP is reused whole when its refcount is
  one, else split and handled per page (mm/huge_memory.c
  ``do_huge_pmd_wp_page()``). The copy leaves the other holders on the old
  page.

Model choices, each stated in the chapter: the child of a fork execs or exits
before the parent writes again (fork+exec); the application writes each buffer
before it sends it and reuses a buffer only after its completion
(msg_zerocopy.rst); completions come in order, ``inflight`` sends later; with
references the process never pinned anything (``MMF_HAS_PINNED`` clear), with
pins it has.
"""

from __future__ import annotations

import numba
import numpy as np

from ..jit import CACHE
from .rng import GOLDEN, MASK, MIX1, MIX2, SplitMix64

PAGE = 4096
PMD_PAGES = 512
GUP_PIN_COUNTING_BIAS = 1024
UARG_BYTE_LIMIT = 1 << 19
REF, PIN = 0, 1
POLICIES = ("ref", "pin")

_G, _M1, _M2 = np.uint64(GOLDEN), np.uint64(MIX1), np.uint64(MIX2)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_INV53 = 1.0 / (1 << 53)


@numba.njit(cache=CACHE)
def _draw(state):
    """splitmix64 (model/rng.py): the next state and a float in [0, 1)."""
    state = state + _G
    z = state
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    z = z ^ (z >> _S31)
    return state, float(z >> _S11) * _INV53


# -------------------------------------------------------------------- history
HIST_FIELDS = ("steps", "checks", "pinned_checks", "unpinned_checks", "true_pos", "false_pos", "false_neg",
               "gets", "puts", "pins", "unpins", "get_atomics", "put_atomics", "pin_atomics", "unpin_atomics",
               "max_refcount")
(H_STEPS, H_CHECKS, H_PINNED, H_UNPINNED, H_TP, H_FP, H_FN, H_GETS, H_PUTS, H_PINS, H_UNPINS, H_GET_AT, H_PUT_AT,
 H_PIN_AT, H_UNPIN_AT, H_MAXREF) = range(len(HIST_FIELDS))


def _check_history(n_folios, folio_pages, steps, refs_mean, pin_share):
    if n_folios < 1 or steps < 0 or folio_pages < 1 or folio_pages & (folio_pages - 1):
        raise ValueError(f"history: n_folios={n_folios}, steps={steps}, folio_pages={folio_pages} are not allowed: "
                         f"expected n_folios >= 1, steps >= 0, folio_pages a power of two")
    if not refs_mean >= 0 or not 0 <= pin_share <= 1:
        raise ValueError(f"history: refs_mean={refs_mean}, pin_share={pin_share} are not allowed: "
                         f"expected refs_mean >= 0 and pin_share in [0, 1]")


@numba.njit(cache=CACHE)
def burn_in(m):
    """Moves per folio before counting: several times the spread a Poisson(m) walk must cover."""
    return 4 * int(m) + 200


@numba.njit(cache=CACHE)
def _move(refs, pins, f, u, v, w, m, pin_share, large, out):
    """One Metropolis move on folio f, whose stationary law is Poisson(m) holders."""
    n = refs[f] + pins[f]
    if u < 0.5:
        if v * (n + 1) < m:
            if w < pin_share:
                pins[f] += 1
                out[H_PINS] += 1
                out[H_PIN_AT] += 2  # try_get_folio(), then the bias or _pincount
            else:
                refs[f] += 1
                out[H_GETS] += 1
                out[H_GET_AT] += 1
    elif n > 0 and v * m < n:
        if w * n < pins[f]:
            pins[f] -= 1
            out[H_UNPINS] += 1
            out[H_UNPIN_AT] += 2 if large else 1
        else:
            refs[f] -= 1
            out[H_PUTS] += 1
            out[H_PUT_AT] += 1


@numba.njit(cache=CACHE)
def _history(n_folios, large, steps, m, pin_share, seed):
    out = np.zeros(len(HIST_FIELDS), np.int64)
    refs = np.zeros(n_folios, np.int64)
    pins = np.zeros(n_folios, np.int64)
    s = np.uint64(seed)
    start = int(m + 0.5)
    for f in range(n_folios):  # start at the mean, each holder a pin with probability pin_share
        for _ in range(start):
            s, w = _draw(s)
            if w < pin_share:
                pins[f] += 1
            else:
                refs[f] += 1
    burn = np.zeros(len(HIST_FIELDS), np.int64)  # moves before counting, so the start is forgotten
    for f in range(n_folios):
        for _ in range(burn_in(m)):
            s, u = _draw(s)
            s, v = _draw(s)
            s, w = _draw(s)
            _move(refs, pins, f, u, v, w, m, pin_share, large, burn)
    for _ in range(steps):
        s, r1 = _draw(s)
        s, u = _draw(s)
        s, v = _draw(s)
        s, w = _draw(s)
        s, r2 = _draw(s)
        out[H_STEPS] += 1
        _move(refs, pins, int(r1 * n_folios), u, v, w, m, pin_share, large, out)
        g = int(r2 * n_folios)
        if large:
            refcount = 1 + refs[g] + pins[g]
            maybe = pins[g] > 0
        else:
            refcount = 1 + refs[g] + GUP_PIN_COUNTING_BIAS * pins[g]
            maybe = refcount >= GUP_PIN_COUNTING_BIAS
        if refcount > out[H_MAXREF]:
            out[H_MAXREF] = refcount
        out[H_CHECKS] += 1
        if pins[g] > 0:
            out[H_PINNED] += 1
            if maybe:
                out[H_TP] += 1
            else:
                out[H_FN] += 1
        else:
            out[H_UNPINNED] += 1
            if maybe:
                out[H_FP] += 1
    return out


def history(n_folios: int, folio_pages: int, steps: int, refs_mean: float, pin_share: float = 0.0,
            seed: int = 1) -> dict:
    """folio_maybe_dma_pinned() asked ``steps`` times about folios whose holders come and go.

    Each folio of ``folio_pages`` pages is mapped once (one reference) and has a
    varying number of holders, Poisson with mean ``refs_mean`` over time; a
    holder is a pin with probability ``pin_share``, else a FOLL_GET reference.
    Each folio first makes :func:`burn_in` moves of its own; then each step moves
    one holder of a random folio (Metropolis moves: come with probability
    min(1, m/(n+1)), go with min(1, n/m)) and checks a random folio. Returns the
    counts of :data:`HIST_FIELDS` (the burn-in is not counted).
    """
    _check_history(n_folios, folio_pages, steps, refs_mean, pin_share)
    out = _history(int(n_folios), folio_pages > 1, int(steps), float(refs_mean), float(pin_share), int(seed) & MASK)
    return dict(zip(HIST_FIELDS, (int(x) for x in out)))


def history_twin(n_folios: int, folio_pages: int, steps: int, refs_mean: float, pin_share: float = 0.0,
                 seed: int = 1) -> dict:
    """The specification of :func:`history`, written for reading."""
    _check_history(n_folios, folio_pages, steps, refs_mean, pin_share)
    large, m = folio_pages > 1, float(refs_mean)
    rng = SplitMix64(int(seed))
    c = dict.fromkeys(HIST_FIELDS, 0)
    refs, pins = [0] * n_folios, [0] * n_folios
    for f in range(n_folios):
        for _ in range(int(m + 0.5)):
            if rng.random() < pin_share:
                pins[f] += 1
            else:
                refs[f] += 1

    def move(f, u, v, w, count):
        n = refs[f] + pins[f]
        if u < 0.5:  # a holder comes, accepted with probability min(1, m / (n + 1))
            if v * (n + 1) < m:
                if w < pin_share:
                    pins[f] += 1
                    count["pins"] += 1
                    count["pin_atomics"] += 2
                else:
                    refs[f] += 1
                    count["gets"] += 1
                    count["get_atomics"] += 1
        elif n > 0 and v * m < n:  # one goes, with probability min(1, n / m)
            if w * n < pins[f]:
                pins[f] -= 1
                count["unpins"] += 1
                count["unpin_atomics"] += 2 if large else 1
            else:
                refs[f] -= 1
                count["puts"] += 1
                count["put_atomics"] += 1

    ignored = dict.fromkeys(HIST_FIELDS, 0)
    for f in range(n_folios):
        for _ in range(4 * int(m) + 200):
            u, v, w = rng.random(), rng.random(), rng.random()
            move(f, u, v, w, ignored)
    for _ in range(steps):
        r1, u, v, w, r2 = (rng.random() for _ in range(5))
        c["steps"] += 1
        move(int(r1 * n_folios), u, v, w, c)
        g = int(r2 * n_folios)
        pinned = pins[g] > 0
        if large:  # exact: _pincount
            refcount, maybe = 1 + refs[g] + pins[g], pinned
        else:  # _refcount against the bias
            refcount = 1 + refs[g] + GUP_PIN_COUNTING_BIAS * pins[g]
            maybe = refcount >= GUP_PIN_COUNTING_BIAS
        c["max_refcount"] = max(c["max_refcount"], refcount)
        c["checks"] += 1
        if pinned:
            c["pinned_checks"] += 1
            c["true_pos" if maybe else "false_neg"] += 1
        else:
            c["unpinned_checks"] += 1
            c["false_pos"] += int(maybe)
    return c


def poisson_tail(m: float, k: int) -> float:
    """P(N >= k) for N ~ Poisson(m), summed in log space (what history() should find for small folios)."""
    if k <= 0:
        return 1.0
    if m <= 0:
        return 0.0
    from math import exp, lgamma, log

    below = sum(exp(j * log(m) - m - lgamma(j + 1)) for j in range(k))
    return max(0.0, 1.0 - below)


# -------------------------------------------------------------------- sender
SEND_FIELDS = ("sends", "pages_sent", "calls", "gup_pte", "gup_pmd", "give_backs", "frag_puts", "pin_pte", "pin_pmd",
               "pmd_pages", "unpin_small", "unpin_large", "charges", "uargs", "uncharges", "forks", "fork_copies",
               "fork_copies_unpinned", "thp_splits", "wp_faults_pte", "wp_faults_pmd", "wp_copies", "ref_atomics",
               "pin_atomics", "held_at_end")
(S_SENDS, S_PAGES, S_CALLS, S_GUP_PTE, S_GUP_PMD, S_GIVE, S_PUTS, S_PIN_PTE, S_PIN_PMD, S_PMD_PAGES, S_UNPIN_S,
 S_UNPIN_L,
 S_CHARGES, S_UARGS, S_UNCHARGES, S_FORKS, S_FCOPY, S_FCOPY_UNP, S_SPLITS, S_WP_PTE, S_WP_PMD, S_WP_COPY,
 S_REF_AT, S_PIN_AT, S_HELD) = range(len(SEND_FIELDS))


def sender_layout(send_size: int, folio_pages: int, inflight: int) -> tuple[int, int, int]:
    """(pages per send, pages per buffer slot (whole folios), buffers in the ring)."""
    pages = -(-send_size // PAGE)
    slot = -(-pages // folio_pages) * folio_pages
    return pages, slot, inflight + 1


MSEND = 1_000_000


def _per_msend(fork_per_ksend: float) -> int:
    """Forks per million sends, an integer, so that both implementations count them exactly alike."""
    return int(round(float(fork_per_ksend) * 1000))


def _policy(policy) -> int:
    if isinstance(policy, str):
        if policy not in POLICIES:
            raise ValueError(f"policy = {policy!r} is not allowed: expected one of {', '.join(POLICIES)}")
        return POLICIES.index(policy)
    return int(policy)


def _check_sender(send_size, folio_pages, inflight, sends, fork_per_ksend, other_refs, policy, size_goal):
    bad = []
    if send_size < 1:
        bad.append(f"send_size={send_size} (expected >= 1)")
    if folio_pages < 1 or folio_pages > PMD_PAGES or folio_pages & (folio_pages - 1):
        bad.append(f"folio_pages={folio_pages} (expected a power of two up to {PMD_PAGES})")
    if inflight < 1 or sends < 0:
        bad.append(f"inflight={inflight}, sends={sends} (expected inflight >= 1, sends >= 0)")
    if not 0 <= fork_per_ksend <= 1000:
        bad.append(f"fork_per_ksend={fork_per_ksend} (expected 0..1000)")
    if other_refs < 0 or policy not in (REF, PIN) or size_goal < PAGE:
        bad.append(f"other_refs={other_refs}, policy={policy}, size_goal={size_goal} "
                   f"(expected other_refs >= 0, policy 0 or 1, size_goal >= {PAGE})")
    if bad:
        raise ValueError("sender: " + "; ".join(bad) + " not allowed")


@numba.njit(cache=CACHE)
def _unpin_groups(heads, fsize, pages, n):
    """unpin_user_pages() over ``pages[:n]``: (runs on small folios, runs on large folios)."""
    small = 0
    large = 0
    prev = -1
    for i in range(n):
        h = heads[pages[i]]
        if h != prev:
            if fsize[h] > 1:
                large += 1
            else:
                small += 1
        prev = h
    return small, large


@numba.njit(cache=CACHE)
def _fork_folio(members, n, large, policy, hold, other, wp, pmd, h, out):
    """fork() over one folio whose pages are ``members[:n]``."""
    maybe = False
    if policy == PIN:  # MMF_HAS_PINNED: folio_maybe_dma_pinned(), fork's own reference included
        if large:
            for i in range(n):
                if hold[members[i]] > 0:
                    maybe = True
        else:
            q = members[0]
            maybe = 1 + other[q] + GUP_PIN_COUNTING_BIAS * hold[q] + 1 >= GUP_PIN_COUNTING_BIAS
    if maybe:
        if pmd[h]:
            pmd[h] = False
            out[S_SPLITS] += 1
        for i in range(n):
            q = members[i]
            if not wp[q]:
                out[S_FCOPY] += 1
                if hold[q] == 0:
                    out[S_FCOPY_UNP] += 1
    else:
        for i in range(n):
            wp[members[i]] = True


@numba.njit(cache=CACHE)
def _sender(send_size, folio_pages, inflight, sends, forks_per_msend, other_refs, policy, size_goal):
    out = np.zeros(len(SEND_FIELDS), np.int64)
    npg = (send_size + PAGE - 1) // PAGE
    slot = (npg + folio_pages - 1) // folio_pages * folio_pages
    nbuf = inflight + 1
    total = slot * nbuf
    # folio ids: the original folios start at their first page; a page copied on write becomes folio total + page
    heads = np.empty(total, np.int64)
    fsize = np.ones(2 * total, np.int64)
    pmd = np.zeros(2 * total, np.bool_)
    wp = np.zeros(total, np.bool_)
    other = np.full(total, other_refs, np.int64)
    hold = np.zeros(total, np.int64)
    members = np.empty(folio_pages, np.int64)
    for q in range(total):
        heads[q] = q // folio_pages * folio_pages
    for q in range(0, total, folio_pages):
        fsize[q] = folio_pages
        pmd[q] = folio_pages == PMD_PAGES
    # per ring slot: the send's pages in GUP order (for the unpin) and its frags (for the puts)
    plist = np.zeros((nbuf, 2 * npg + 2), np.int64)
    plen = np.zeros(nbuf, np.int64)
    frags = np.zeros(nbuf, np.int64)
    busy = np.zeros(nbuf, np.bool_)
    uarg_bytes = UARG_BYTE_LIMIT + 1
    acc = 0
    for i in range(sends + inflight):
        if i < sends:
            b = i % nbuf
            base = b * slot
            acc += forks_per_msend
            if acc >= MSEND:  # ---- fork (the child execs at once)
                acc -= MSEND
                out[S_FORKS] += 1
                for h in range(0, total, folio_pages):
                    if folio_pages > 1:  # the original large folio: its pages not copied away
                        n = 0
                        for r in range(h, h + folio_pages):
                            if heads[r] == h:
                                members[n] = r
                                n += 1
                        if n > 0:
                            _fork_folio(members, n, True, policy, hold, other, wp, pmd, h, out)
                    for r in range(h, h + folio_pages):  # order-0 folios: pages of their own
                        if fsize[heads[r]] == 1:
                            members[0] = r
                            _fork_folio(members, 1, False, policy, hold, other, wp, pmd, heads[r], out)
            # ---- the application writes the buffer
            for q in range(base, base + npg):
                if not wp[q]:
                    continue
                h = heads[q]
                if pmd[h]:
                    held = 0
                    for r in range(h, h + fsize[h]):
                        held += other[r] + hold[r]
                    if held == 0:  # refcount one: the whole PMD is reused
                        out[S_WP_PMD] += 1
                        for r in range(h, h + fsize[h]):
                            wp[r] = False
                        continue
                    pmd[h] = False
                    out[S_SPLITS] += 1
                out[S_WP_PTE] += 1
                if fsize[h] > 1 or other[q] + hold[q] > 0:
                    out[S_WP_COPY] += 1
                    heads[q] = total + q
                    fsize[total + q] = 1
                    pmd[total + q] = False
                    other[q] = 0
                wp[q] = False
            # ---- the send: one GUP call per skb and folio run
            out[S_SENDS] += 1
            out[S_PAGES] += npg
            out[S_CHARGES] += 1
            if uarg_bytes + send_size > UARG_BYTE_LIMIT:
                out[S_UARGS] += 1
                uarg_bytes = 0
            uarg_bytes += send_size
            n = 0
            nfr = 0
            lo = 0
            start = i * send_size
            while lo < send_size:
                hi = min(send_size, (start + lo) // size_goal * size_goal + size_goal - start)
                q = base + lo // PAGE
                last = base + (hi - 1) // PAGE
                while q <= last:
                    h = heads[q]
                    r = q
                    while r + 1 <= last and heads[r + 1] == h:
                        r += 1
                    k = r - q + 1
                    out[S_CALLS] += 1
                    nfr += 1
                    if pmd[h]:
                        out[S_PMD_PAGES] += k
                    if policy == REF:
                        if pmd[h]:
                            out[S_GUP_PMD] += 1
                        else:
                            out[S_GUP_PTE] += k
                        if k > 1:
                            out[S_GIVE] += 1
                    else:
                        if pmd[h]:
                            out[S_PIN_PMD] += 1
                        else:
                            out[S_PIN_PTE] += k
                    for t in range(q, r + 1):
                        hold[t] += 1
                        plist[b, n] = t
                        n += 1
                    q = r + 1
                lo = hi
            plen[b] = n
            frags[b] = nfr
            busy[b] = True
        j = i - inflight  # ---- the completion of send j
        if j >= 0:
            b = j % nbuf
            if busy[b]:
                n = plen[b]
                if policy == REF:
                    out[S_PUTS] += frags[b]
                else:
                    sm, lg = _unpin_groups(heads, fsize, plist[b], n)
                    out[S_UNPIN_S] += sm
                    out[S_UNPIN_L] += lg
                for t in range(n):
                    hold[plist[b, t]] -= 1
                busy[b] = False
    out[S_UNCHARGES] = out[S_UARGS]
    out[S_REF_AT] = out[S_GUP_PTE] + out[S_GUP_PMD] + out[S_GIVE] + out[S_PUTS]
    out[S_PIN_AT] = 2 * (out[S_PIN_PTE] + out[S_PIN_PMD]) + out[S_UNPIN_S] + 2 * out[S_UNPIN_L]
    held = 0
    for q in range(total):
        held += hold[q]
    out[S_HELD] = held
    return out


def sender(send_size: int, folio_pages: int, inflight: int, sends: int, fork_per_ksend: float = 0.0,
           other_refs: int = 0, policy: str | int = "ref", size_goal: int = 65160) -> dict:
    """``sends`` MSG_ZEROCOPY sends of ``send_size`` bytes from a ring of ``inflight + 1`` buffers.

    ``policy`` "ref" (today: FOLL_GET references, frag puts) or "pin" (FOLL_PIN,
    ``unpin_user_pages()`` at the completion). The process forks
    ``fork_per_ksend`` times per 1000 sends, evenly spread (a fork before the send
    at which the running sum of forks per send crosses a whole number, counted in
    forks per million sends).
    ``other_refs``: FOLL_GET references other holders keep on every page. Returns
    :data:`SEND_FIELDS`.
    """
    pol = _policy(policy)
    _check_sender(send_size, folio_pages, inflight, sends, fork_per_ksend, other_refs, pol, size_goal)
    out = _sender(int(send_size), int(folio_pages), int(inflight), int(sends), _per_msend(fork_per_ksend),
                  int(other_refs), pol, int(size_goal))
    return dict(zip(SEND_FIELDS, (int(x) for x in out)))


def sender_twin(send_size: int, folio_pages: int, inflight: int, sends: int, fork_per_ksend: float = 0.0,
                other_refs: int = 0, policy: str | int = "ref", size_goal: int = 65160) -> dict:
    """The specification of :func:`sender`: the same rules over objects, one page at a time."""
    pol = _policy(policy)
    _check_sender(send_size, folio_pages, inflight, sends, fork_per_ksend, other_refs, pol, size_goal)
    npg, slot, nbuf = sender_layout(send_size, folio_pages, inflight)
    total = slot * nbuf
    head = [q // folio_pages * folio_pages for q in range(total)]  # the folio each page belongs to
    size = {h: folio_pages for h in range(0, total, folio_pages)}  # pages per folio
    pmd_mapped = {h: folio_pages == PMD_PAGES for h in size}
    wp = [False] * total  # write-protected by a fork, not written since
    other = [other_refs] * total  # other holders' references
    hold = [0] * total  # this socket's references or pins in flight
    c = dict.fromkeys(SEND_FIELDS, 0)
    ring: dict[int, tuple[list[int], int]] = {}  # buffer -> (the send's pages in GUP order, frags)
    uarg_bytes = UARG_BYTE_LIMIT + 1

    def folio_pages_of(h):
        return [q for q in range(total) if head[q] == h]

    def fork():
        c["forks"] += 1
        for h in sorted(set(head)):
            qs = folio_pages_of(h)
            if pol == PIN:  # MMF_HAS_PINNED: ask folio_maybe_dma_pinned(), fork's own ref included
                if size[h] > 1:
                    maybe = any(hold[q] > 0 for q in qs)
                else:
                    maybe = 1 + other[qs[0]] + GUP_PIN_COUNTING_BIAS * hold[qs[0]] + 1 >= GUP_PIN_COUNTING_BIAS
            else:
                maybe = False
            if maybe:  # copy every anon-exclusive page for the child, after splitting a PMD mapping
                if pmd_mapped[h]:
                    pmd_mapped[h] = False
                    c["thp_splits"] += 1
                for q in qs:
                    if not wp[q]:
                        c["fork_copies"] += 1
                        c["fork_copies_unpinned"] += hold[q] == 0
            else:
                for q in qs:
                    wp[q] = True

    def write(q):
        h = head[q]
        if pmd_mapped[h]:
            qs = folio_pages_of(h)
            if sum(other[r] + hold[r] for r in qs) == 0:  # refcount one: reuse the whole PMD
                c["wp_faults_pmd"] += 1
                for r in qs:
                    wp[r] = False
                return
            pmd_mapped[h] = False
            c["thp_splits"] += 1
        c["wp_faults_pte"] += 1
        if size[h] > 1 or other[q] + hold[q] > 0:  # copy: the page becomes an order-0 folio of its own
            c["wp_copies"] += 1
            head[q] = total + q
            size[total + q] = 1
            pmd_mapped[total + q] = False
            other[q] = 0
        wp[q] = False

    def send(i):
        nonlocal uarg_bytes
        b = i % nbuf
        base = b * slot
        c["sends"] += 1
        c["pages_sent"] += npg
        c["charges"] += 1
        if uarg_bytes + send_size > UARG_BYTE_LIMIT:
            c["uargs"] += 1
            uarg_bytes = 0
        uarg_bytes += send_size
        pages, nfr, lo, start = [], 0, 0, i * send_size
        while lo < send_size:  # one skb's share of this send, then the next
            hi = min(send_size, ((start + lo) // size_goal + 1) * size_goal - start)
            run: list[int] = []
            for q in range(base + lo // PAGE, base + (hi - 1) // PAGE + 1):
                if run and head[q] != head[run[0]]:
                    nfr += call(run)
                    pages += run
                    run = []
                run.append(q)
            nfr += call(run)
            pages += run
            lo = hi
        ring[b] = (pages, nfr)

    def call(run):
        h, k = head[run[0]], len(run)
        c["calls"] += 1
        if pmd_mapped[h]:  # one PMD leaf for all the pages of the run
            c["pmd_pages"] += k
        if pol == REF:
            c["gup_pmd" if pmd_mapped[h] else "gup_pte"] += 1 if pmd_mapped[h] else k
            c["give_backs"] += k > 1
        else:
            c["pin_pmd" if pmd_mapped[h] else "pin_pte"] += 1 if pmd_mapped[h] else k
        for q in run:
            hold[q] += 1
        return 1

    def complete(j):
        b = j % nbuf
        if b not in ring:
            return
        pages, nfr = ring.pop(b)
        if pol == REF:
            c["frag_puts"] += nfr
        else:
            prev = None
            for q in pages:
                if head[q] != prev:
                    c["unpin_large" if size[head[q]] > 1 else "unpin_small"] += 1
                prev = head[q]
        for q in pages:
            hold[q] -= 1

    per_msend, acc = _per_msend(fork_per_ksend), 0
    for i in range(sends + inflight):
        if i < sends:
            acc += per_msend
            if acc >= MSEND:  # forks spread evenly over the sends
                acc -= MSEND
                fork()
            base = (i % nbuf) * slot
            for q in range(base, base + npg):
                if wp[q]:
                    write(q)
            send(i)
        if i - inflight >= 0:
            complete(i - inflight)
    c["uncharges"] = c["uargs"]
    c["ref_atomics"] = c["gup_pte"] + c["gup_pmd"] + c["give_backs"] + c["frag_puts"]
    c["pin_atomics"] = 2 * (c["pin_pte"] + c["pin_pmd"]) + c["unpin_small"] + 2 * c["unpin_large"]
    c["held_at_end"] = sum(hold)
    return {k: int(v) for k, v in c.items()}


# -------------------------------------------------------------------- the fork walk
#: The events :class:`ForkWalk` takes, in the words the chapter uses.
WALK_EVENTS = ("write", "send", "fork", "child_exit", "parent_write", "device_read", "device_write",
               "process_read", "complete")


class ForkWalk:
    """One order-0 anon page of a process, a device that reads or writes it, and a fork, step by step.

    The device gets at the page through a FOLL_GET reference (``hold="ref"``,
    today's MSG_ZEROCOPY) or a FOLL_PIN pin (``hold="pin"``). The rules are the
    ones :func:`sender` follows, for one page: a read-only pin of a page that is
    not anon-exclusive unshares it first (mm/gup.c ``gup_must_unshare()``,
    mm/memory.c ``do_wp_page()`` with ``FAULT_FLAG_UNSHARE``, v6.12); fork
    copies an exclusive page for the child when the mm has pinned and
    ``folio_maybe_dma_pinned()`` says so, else shares and write-protects it; a
    write to a write-protected page reuses it when the mapping holds the only
    reference, else copies. :meth:`step` returns the state after each event.
    """

    def __init__(self, hold: str):
        if hold not in ("ref", "pin"):
            raise ValueError(f"hold = {hold!r} is not allowed: expected 'ref' or 'pin'")
        self.hold = hold
        self.pages: dict[int, dict] = {}
        self.parent = self._new("")  # the page the process maps
        self.parent_wp = False
        self.child: int | None = None
        self.device: int | None = None
        self.has_pinned = False
        self.copies = 0

    def _new(self, data: str) -> int:
        pid = len(self.pages)
        self.pages[pid] = {"refcount": 1, "exclusive": True, "data": data}
        return pid

    def _copy_for_parent(self) -> None:
        old = self.pages[self.parent]
        old["refcount"] -= 1  # the parent's mapping moves to the copy
        self.parent = self._new(old["data"])
        self.parent_wp = False
        self.copies += 1

    def step(self, event: str, data: str = "") -> dict:
        p = self.pages
        if event == "write" or event == "parent_write":
            if self.parent_wp:
                if p[self.parent]["refcount"] == 1:  # do_wp_page(): the only reference, reuse
                    p[self.parent]["exclusive"] = True
                    self.parent_wp = False
                else:
                    self._copy_for_parent()
            p[self.parent]["data"] = data
        elif event == "send":
            if self.hold == "pin":
                self.has_pinned = True
                if not p[self.parent]["exclusive"]:  # unshare before a read-only pin
                    if p[self.parent]["refcount"] > 1:
                        self._copy_for_parent()
                    else:
                        p[self.parent]["exclusive"] = True
                        self.parent_wp = False
                p[self.parent]["refcount"] += GUP_PIN_COUNTING_BIAS
            else:
                p[self.parent]["refcount"] += 1
            self.device = self.parent
        elif event == "fork":
            page = p[self.parent]
            maybe = self.has_pinned and page["refcount"] + 1 >= GUP_PIN_COUNTING_BIAS
            if page["exclusive"] and maybe:  # copy for the child now
                self.child = self._new(page["data"])
                self.copies += 1
            else:
                page["refcount"] += 1
                page["exclusive"] = False
                self.parent_wp = True
                self.child = self.parent
        elif event == "child_exit":
            if self.child is not None:
                p[self.child]["refcount"] -= 1
                self.child = None
        elif event == "device_write":
            p[self.device]["data"] = data
        elif event == "complete":
            if self.device is not None:
                p[self.device]["refcount"] -= GUP_PIN_COUNTING_BIAS if self.hold == "pin" else 1
                self.device = None
        elif event not in ("device_read", "process_read"):
            raise ValueError(f"event = {event!r} is not allowed: expected one of {', '.join(WALK_EVENTS)}")
        return self.state(event, data)

    def state(self, event: str, data: str = "") -> dict:
        p = self.pages
        dev = self.device
        return {"event": event + (f" {data!r}" if data else ""),
                "process maps": f"page {self.parent}",
                "child maps": "-" if self.child is None else f"page {self.child}",
                "device uses": "-" if dev is None else f"page {dev}",
                "refcount of the process's page": p[self.parent]["refcount"], "write-protected": self.parent_wp,
                "copies": self.copies,
                "process sees": p[self.parent]["data"] or "-",
                "device sees": "-" if dev is None else p[dev]["data"] or "-",
                "same page": dev is None or dev == self.parent}


#: The walk the chapter shows: a send, a fork while it is in flight, a write, the device reading and writing.
WALK = (("write", "A"), ("send", ""), ("fork", ""), ("child_exit", ""), ("parent_write", "B"), ("device_read", ""),
        ("device_write", "C"), ("process_read", ""), ("complete", ""))


def walk(hold: str, events=WALK) -> list[dict]:
    """The state after each event of ``events`` with the device holding a ``hold`` ("ref" or "pin")."""
    w = ForkWalk(hold)
    return [w.step(e, d) for e, d in events]


# -------------------------------------------------------------------- bench
def bench_section(args=None) -> dict:
    """``fraglife bench`` section: sends and history steps per second, numba against the twin (same inputs)."""
    import time

    def rate(fn, n, repeats=3):
        best = min(_timed(fn, time) for _ in range(repeats))
        return n / best

    sender(65536, 1, 8, 10, 10.0, 0, "pin")  # compile or load the cache outside the timing
    history(4, 1, 10, 5.0)
    kw = dict(send_size=65536, folio_pages=1, inflight=8, fork_per_ksend=10.0, policy="pin")
    fast = rate(lambda: sender(sends=20_000, **kw), 20_000)
    slow = rate(lambda: sender_twin(sends=200, **kw), 200, 1)
    hfast = rate(lambda: history(64, 1, 2_000_000, 100.0, 0.1), 2_000_000)
    hslow = rate(lambda: history_twin(64, 1, 20_000, 100.0, 0.1), 20_000, 1)
    return {"sender": {"sends_per_s": fast, "twin_sends_per_s": slow, "numba_over_twin": fast / slow,
                       "setting": "64 KiB sends, order-0 pages, 8 in flight, pins, 10 forks per 1000 sends"},
            "history": {"steps_per_s": hfast, "twin_steps_per_s": hslow, "numba_over_twin": hfast / hslow,
                        "setting": "64 small folios, 100 holders on average, a tenth of them pins"}}


def _timed(fn, time) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0
