"""Pins and references on user folios, compiled: chapter 03's two models in numba.

``history`` replays random reference and pin histories on folios and asks
``folio_maybe_dma_pinned()`` about them, counting how often it is wrong.
``sender`` replays a stream of MSG_ZEROCOPY sends from a ring of user buffers,
taking today's GUP references or FOLL_PIN pins, with forks in between, and
counts what each costs. :mod:`.pins_twin` is their specification, in plain
Python, with the kernel rules they follow and the definitions both share
(re-exported here); ``pins_twin.history`` and ``pins_twin.sender`` are what
these kernels are tested against (tests/test_pins_model.py). The fork walk
(:class:`ForkWalk`) is plain Python and has no twin; :func:`cow_case` (one buffer, one fork, one
writer: the ``cow_mthp`` probe's cases) and :func:`gup_work` are the twin's, plain Python.
"""

from __future__ import annotations

import numba
import numpy as np

from ..jit import CACHE
from . import kernels, pins_twin as twin
from .rng import GOLDEN, MASK, MIX1, MIX2
from .pins_twin import (COW_FIELDS, COW_HOLDERS, COW_WRITERS, GUP_PIN_COUNTING_BIAS, HIST_FIELDS, MAX_SKB_FRAGS,
                        MSEND, PAGE, PIN, PMD_PAGES, POLICIES, REF, SEND_FIELDS, UARG_BYTE_LIMIT, check_history,
                        check_sender, cow_case, gup_work, per_msend, policy_code, sender_layout)


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
(H_STEPS, H_CHECKS, H_PINNED, H_UNPINNED, H_TP, H_FP, H_FN, H_GETS, H_PUTS, H_PINS, H_UNPINS, H_GET_AT, H_PUT_AT,
 H_PIN_AT, H_UNPIN_AT, H_MAXREF) = range(len(HIST_FIELDS))


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
    check_history(n_folios, folio_pages, steps, refs_mean, pin_share)
    out = _history(int(n_folios), folio_pages > 1, int(steps), float(refs_mean), float(pin_share), int(seed) & MASK)
    return dict(zip(HIST_FIELDS, (int(x) for x in out)))


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
(S_SENDS, S_PAGES, S_SKBS, S_CALLS, S_LOOKED, S_FRAGS, S_GUP_PTE, S_GUP_PMD, S_GIVE, S_PUTS, S_PIN_PTE, S_PIN_PMD,
 S_PMD_PAGES, S_UNPIN_S, S_UNPIN_L, S_CHARGES, S_UARGS, S_UNCHARGES, S_FORKS, S_FCOPY, S_FCOPY_UNP, S_SPLITS,
 S_WP_PTE, S_WP_PMD, S_WP_COPY, S_WP_REUSE_L, S_REF_AT, S_PIN_AT, S_FLAG_AT, S_HELD) = range(len(SEND_FIELDS))


@numba.njit(cache=CACHE)
def maybe_pinned(large, refcount, pincount):
    """``folio_maybe_dma_pinned()`` (pins_twin.maybe_pinned)."""
    if large:
        return pincount > 0
    return refcount >= GUP_PIN_COUNTING_BIAS


@numba.njit(cache=CACHE)
def can_reuse(large, refcount, mapcount, other_mm, reuse_large):
    """``wp_can_reuse_anon_folio()`` (pins_twin.can_reuse)."""
    if not large:
        return refcount == 1
    return reuse_large and not other_mm and mapcount > 1 and refcount == mapcount


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
def _members(heads, h, folio_pages, total, members):
    """The pages of folio ``h`` into ``members``; their number."""
    if h >= total:  # a copy: one page of its own
        members[0] = h - total
        return 1
    n = 0
    for r in range(h, h + folio_pages):
        if heads[r] == h:
            members[n] = r
            n += 1
    return n


@numba.njit(cache=CACHE)
def fork(heads, fsize, pmd, wp, other, hold, folio_pages, total, policy, members, out):
    """fork(): copy what may be pinned for the child, share and write-protect the rest."""
    out[S_FORKS] += 1
    for h in range(0, 2 * total):
        if fsize[h] == 0:
            continue
        n = _members(heads, h, folio_pages, total, members)
        if n == 0:
            continue
        maybe = False
        if policy == PIN:  # MMF_HAS_PINNED: folio_maybe_dma_pinned(), fork's own reference included
            if fsize[h] > 1:
                pins_ = 0
                for i in range(n):
                    pins_ += hold[members[i]]
                maybe = maybe_pinned(True, 0, pins_)
            else:
                q = members[0]
                maybe = maybe_pinned(False, 1 + other[q] + GUP_PIN_COUNTING_BIAS * hold[q] + 1, 0)
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
def write(q, heads, fsize, pmd, wp, other, hold, folio_pages, total, reuse_large, members, out):
    """The application's write to write-protected page ``q``: do_wp_page()."""
    h = heads[q]
    n = _members(heads, h, folio_pages, total, members)
    extra = 0  # references that are not this mm's mappings
    for i in range(n):
        extra += other[members[i]] + hold[members[i]]
    if pmd[h]:
        if extra == 0:  # refcount one: the whole PMD is reused
            out[S_WP_PMD] += 1
            for i in range(n):
                wp[members[i]] = False
            return
        pmd[h] = False
        out[S_SPLITS] += 1
    out[S_WP_PTE] += 1
    large = fsize[h] > 1
    refcount = n + extra if large else 1 + other[q] + hold[q]
    if can_reuse(large, refcount, n, False, reuse_large):  # the child is gone (fork+exec)
        if large:
            out[S_WP_REUSE_L] += 1
    else:  # copy: the page becomes an order-0 folio of its own
        out[S_WP_COPY] += 1
        heads[q] = total + q
        fsize[total + q] = 1
        pmd[total + q] = False
        other[q] = 0
    wp[q] = False


@numba.njit(cache=CACHE)
def call(q0, n, off, took, policy, heads, pmd, hold, total, skb, leaves, out):
    """One iov_iter_get_pages2() over pages [q0, q0 + n) (gup-fast), then the frags bytes [off, off + took) of the
    buffer fill. ``skb``: [bytes, frags, last frag's folio, its end in the folio]. Returns the frags it started."""
    out[S_CALLS] += 1
    out[S_LOOKED] += n
    nleaves = 0
    for q in range(q0, q0 + n):
        h = heads[q]
        if pmd[h]:
            out[S_PMD_PAGES] += 1
            seen = False
            for i in range(nleaves):
                if leaves[i] == h:
                    seen = True
            if not seen:  # one grab per PMD leaf per call
                leaves[nleaves] = h
                nleaves += 1
        else:
            if policy == REF:
                out[S_GUP_PTE] += 1
            else:
                out[S_PIN_PTE] += 1
            out[S_FLAG_AT] += 1
        hold[q] += 1
    if policy == REF:
        out[S_GUP_PMD] += nleaves
    else:
        out[S_PIN_PMD] += nleaves
    out[S_FLAG_AT] += nleaves
    new = 0
    merges = 0
    merging = False
    pos = off
    for q in range(q0, q0 + n):
        piece = min(off + took - pos, PAGE - pos % PAGE)
        h = heads[q]
        at = pos % PAGE
        if h < total:
            at += (q - h) * PAGE
        if skb[1] > 0 and skb[2] == h and skb[3] == at:  # continues the last frag: merged
            if not merging:
                merges += 1
            merging = True
        else:
            skb[1] += 1
            new += 1
            merging = False
        skb[2] = h
        skb[3] = at + piece
        pos += piece
    out[S_FRAGS] += new
    if policy == REF:  # one page_ref_sub() per run of pages merged into one frag
        out[S_GIVE] += merges
    return new


@numba.njit(cache=CACHE)
def _sender(send_size, folio_pages, inflight, sends, forks_per_msend, other_refs, policy, size_goal, reuse_large):
    out = np.zeros(len(SEND_FIELDS), np.int64)
    npg = (send_size + PAGE - 1) // PAGE
    slot = (npg + folio_pages - 1) // folio_pages * folio_pages
    nbuf = inflight + 1
    total = slot * nbuf
    # folio ids: the original folios start at their first page; a page copied on write becomes folio total + page
    heads = np.empty(total, np.int64)
    fsize = np.zeros(2 * total, np.int64)
    pmd = np.zeros(2 * total, np.bool_)
    wp = np.zeros(total, np.bool_)
    other = np.full(total, other_refs, np.int64)
    hold = np.zeros(total, np.int64)
    members = np.empty(max(folio_pages, 1), np.int64)
    leaves = np.empty(MAX_SKB_FRAGS, np.int64)
    for q in range(total):
        heads[q] = q // folio_pages * folio_pages
    for q in range(0, total, folio_pages):
        fsize[q] = folio_pages
        pmd[q] = folio_pages == PMD_PAGES
    # per ring slot: the send's pages in GUP order (for the unpin) and its frags (for the puts)
    plist = np.zeros((nbuf, 2 * npg + 2 * (npg // 16) + 4), np.int64)
    plen = np.zeros(nbuf, np.int64)
    frags = np.zeros(nbuf, np.int64)
    busy = np.zeros(nbuf, np.bool_)
    skb = np.array([size_goal, MAX_SKB_FRAGS, -1, -1], np.int64)  # the tail skb (none open yet)
    uarg_bytes = UARG_BYTE_LIMIT + 1
    acc = 0
    for i in range(sends + inflight):
        if i < sends:
            b = i % nbuf
            base = b * slot
            acc += forks_per_msend
            if acc >= MSEND:  # forks spread evenly over the sends
                acc -= MSEND
                fork(heads, fsize, pmd, wp, other, hold, folio_pages, total, policy, members, out)
            for q in range(base, base + npg):  # the application writes the buffer
                if wp[q]:
                    write(q, heads, fsize, pmd, wp, other, hold, folio_pages, total, reuse_large, members, out)
            # ---- the send
            out[S_SENDS] += 1
            out[S_PAGES] += npg
            out[S_CHARGES] += 1
            if uarg_bytes + send_size > UARG_BYTE_LIMIT:
                out[S_UARGS] += 1
                uarg_bytes = 0
            uarg_bytes += send_size
            n = 0
            nfr = 0
            off = 0
            left = send_size
            while left > 0:  # tcp_sendmsg_locked(): the tail skb, or a new one when it is full
                if skb[0] >= size_goal or skb[1] >= MAX_SKB_FRAGS:
                    out[S_SKBS] += 1
                    skb[0] = 0
                    skb[1] = 0
                    skb[2] = -1
                    skb[3] = -1
                copy = min(size_goal - skb[0], left)
                while copy > 0 and skb[1] < MAX_SKB_FRAGS:  # zerocopy_fill_skb_from_iter()
                    start = off % PAGE
                    k = min((start + copy + PAGE - 1) // PAGE, MAX_SKB_FRAGS - skb[1])
                    took = min(copy, k * PAGE - start)
                    q0 = base + off // PAGE
                    nfr += call(q0, k, off, took, policy, heads, pmd, hold, total, skb, leaves, out)
                    for t in range(q0, q0 + k):
                        if n == plist.shape[1]:
                            bigger = np.zeros((nbuf, 2 * plist.shape[1]), np.int64)
                            bigger[:, :plist.shape[1]] = plist
                            plist = bigger
                        plist[b, n] = t
                        n += 1
                    off += took
                    copy -= took
                    left -= took
                    skb[0] += took
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
           other_refs: int = 0, policy: str | int = "ref", size_goal: int = 65160,
           release: str = kernels.NEWEST) -> dict:
    """``sends`` MSG_ZEROCOPY sends of ``send_size`` bytes from a ring of ``inflight + 1`` buffers.

    ``policy`` "ref" (today: FOLL_GET references, frag puts) or "pin" (FOLL_PIN,
    ``unpin_user_pages()`` at the completion). The process forks
    ``fork_per_ksend`` times per 1000 sends, evenly spread (a fork before the send
    at which the running sum of forks per send crosses a whole number, counted in
    forks per million sends).
    ``other_refs``: FOLL_GET references other holders keep on every page.
    ``release``: the kernel whose rules apply (:mod:`.kernels`; here ``cow_reuse_large_anon``).
    Returns :data:`SEND_FIELDS`.
    """
    pol = policy_code(policy)
    check_sender(send_size, folio_pages, inflight, sends, fork_per_ksend, other_refs, pol, size_goal)
    out = _sender(int(send_size), int(folio_pages), int(inflight), int(sends), per_msend(fork_per_ksend),
                  int(other_refs), pol, int(size_goal), kernels.follows(release, "cow_reuse_large_anon"))
    return dict(zip(SEND_FIELDS, (int(x) for x in out)))


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
    slow = rate(lambda: twin.sender(sends=200, **kw), 200, 1)
    hfast = rate(lambda: history(64, 1, 2_000_000, 100.0, 0.1), 2_000_000)
    hslow = rate(lambda: twin.history(64, 1, 20_000, 100.0, 0.1), 20_000, 1)
    return {"sender": {"sends_per_s": fast, "twin_sends_per_s": slow, "numba_over_twin": fast / slow,
                       "setting": "64 KiB sends, order-0 pages, 8 in flight, pins, 10 forks per 1000 sends"},
            "history": {"steps_per_s": hfast, "twin_steps_per_s": hslow, "numba_over_twin": hfast / hslow,
                        "setting": "64 small folios, 100 holders on average, a tenth of them pins"}}


def _timed(fn, time) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0
