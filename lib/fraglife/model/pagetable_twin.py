"""Looking user buffers up for MSG_ZEROCOPY: per skb today, one batched lookup, or faulting up front.

The specification in plain Python. ``lookup`` (here, and compiled in :mod:`.pagetable`) replays
``messages`` sendmsg() iterators of ``iov_count`` iovecs of ``iov_size`` bytes
and counts the page-table work each strategy does. Kernel rules (torvalds/linux
v6.18.0; where 6.12 LTS differs, :mod:`.kernels` has the row and ``release`` chooses):

- ``per_skb`` (today): ``tcp_sendmsg_locked()`` fills an skb up to the size
  goal with ``skb_zerocopy_iter_stream()`` -> ``zerocopy_fill_skb_from_iter()``
  (net/core/datagram.c), which calls ``iov_iter_get_pages2()`` for at most
  ``MAX_SKB_FRAGS - nr_frags`` pages (the compile-time 17) of *one* iovec at a time
  (``first_iovec_segment()``, lib/iov_iter.c); a page continuing the last frag
  of the same compound page merges into it (the merged pages' references go back
  with one ``page_ref_sub()`` per merged run), any other page starts a frag; 17
  frags close the skb (-EMSGSIZE, a new skb).
- Each call is one ``get_user_pages_fast()`` (sendmsg's iterator is ITER_SOURCE:
  FOLL_GET, no FOLL_WRITE). gup-fast (``gup_fast_pte_range()``,
  ``gup_fast_pmd_leaf()``, mm/gup.c) takes a present PTE page with one
  ``try_grab_folio_fast()`` and a PMD-mapped THP with one grab per leaf per call,
  and sets PG_referenced on each (``folio_set_referenced()``: a locked ``set_bit``,
  no test first; counted as ``flag_atomics``). It stops at the first page it cannot
  take: no PTE, or a special one, which the zero page's always is
  (``do_anonymous_page()`` maps it with ``pte_mkspecial()``, mm/memory.c;
  ``pte_special()`` -> give up), and the huge zero PMD on 6.18 (``pmd_special()``,
  rule ``huge_zero_pmd_special``; 6.12 grabs it like any THP). The rest of the call
  goes to the slow path, ``__gup_longterm_locked()`` -> ``__get_user_pages()``:
  ``mmap_read_lock`` once per call (2 atomics with the unlock), per PTE page the PTE
  lock (1) and a ``try_grab_folio()`` (FOLL_GET: 1, on the zero page too, whose
  ``_refcount`` is one line every process shares: ``zero_refs``) and
  ``folio_mark_accessed()`` (counted as one bitop); per PMD leaf the PMD lock and
  two grabs, +1 in ``follow_huge_pmd()`` and +(n-1) in ``__get_user_pages()`` (one if
  the call has one page of it). A page with no PTE faults once inside GUP
  (``faultin_page()``, a read fault: the zero page is mapped, nothing allocated);
  the next lookup finds the zero page and goes slow again, without a fault.
  With ``foll_pin`` (a pinning lookup, as the thread proposes) a grab is a pin:
  two atomics in gup-fast (``try_grab_folio_fast()``: the reference, then the bias
  or ``_pincount``), one on a small folio in the slow path (``folio_ref_add(1024)``),
  two per grab of a large one, and nothing at all on the 4 KiB zero page
  (``try_grab_folio()``: "Don't take a pin on the zero page"); the huge zero folio
  is pinned like any large folio. The frags, give-backs and puts are counted as today's.
- ``batched`` (the thread's proposal): at each sendmsg() one lookup of the whole
  remaining iterator, one call per run of contiguous iovecs, no page cap; the
  pages the socket does not take in this call are released and looked up again
  by the next call.
- ``populate``: the application faults its whole iterator in before the first
  sendmsg() of a message (``madvise(MADV_POPULATE_WRITE)``, mm/madvise.c: a
  write fault per page, allocating and zeroing it; on a huge zero PMD 6.13+
  allocates a THP for the whole PMD, ``do_huge_zero_wp_pmd()``, rule
  ``huge_zero_wp_thp``, where 6.12 splits it into zero-page PTEs and allocates
  the pages written), then today's lookups.

Model choices, each stated in the chapter: every message uses fresh buffers
whose pages are mapped with probability ``resident_fraction`` (a page not
mapped has never been touched); the 2 MiB regions a ``thp_share`` of the
buffer covers are mapped THPs, and a ``huge_zero_share`` of them were only read
in a THP-enabled VMA (the huge zero PMD maps them); each sendmsg() starts a new
skb; the socket takes ``accept_bytes`` per call and the application calls again
with the rest. A batched lookup gives merged references back per skb it fills.
"""

from __future__ import annotations

import numpy as np

from . import kernels
from .rng import GOLDEN, MASK, MIX1, MIX2

PAGE = 4096
PMD_PAGES = 512
MAX_SKB_FRAGS = 17
STRATEGIES = ("per_skb", "batched", "populate")
PER_SKB, BATCHED, POPULATE = range(3)
LAYOUTS = ("contiguous", "scattered")
#: the most bytes one sendmsg() may describe here (the kernel's cap is MAX_RW_COUNT, about 2 GiB)
MAX_MESSAGE = 1 << 30
#: what a page's PTE holds: nothing (never touched), the zero page (read, or faulted in by a lookup), a page
ABSENT, ZERO, PRESENT = range(3)
#: what maps a 2 MiB region: PTEs, a THP by its PMD, the huge zero PMD
PTE_REGION, THP_REGION, HUGE_ZERO_REGION = range(3)
#: folio ids of the two zero folios in the frag merge test (a page's own folio id is its page number)
ZERO_FOLIO, HUGE_ZERO_FOLIO = -2, -3

LOOKUP_FIELDS = ("messages", "sendmsgs", "bytes", "skbs", "calls", "fast_pte", "pmd_leaves", "pmd_pages",
                 "slow_calls", "slow_pages", "slow_pmd_leaves", "slow_pmd_pages", "zero_faults", "zero_refs",
                 "populate_calls", "populate_pages", "pages_looked_up", "pages_sent", "frags", "give_backs", "local_puts",
                 "ref_atomics", "pin_atomics", "flag_atomics", "lock_atomics")


def iovecs(iov_count: int, iov_size: int, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """(byte offset, length) of each iovec in a 2 MiB-aligned region: back to back, or each on pages of its own
    with a page between them (so no two are contiguous)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout = {layout!r} is not allowed: expected one of {', '.join(LAYOUTS)}")
    if iov_count < 1 or iov_size < 1:
        raise ValueError(f"iov_count = {iov_count}, iov_size = {iov_size} are not allowed: expected both >= 1")
    stride = iov_size if layout == "contiguous" else (-(-iov_size // PAGE) + 1) * PAGE
    return (np.arange(iov_count, dtype=np.int64) * stride, np.full(iov_count, iov_size, dtype=np.int64))


def u01(seed: int, k: int) -> float:
    """:func:`_u01` in plain Python."""
    z = (seed + (k + 1) * GOLDEN) & MASK
    z = ((z ^ (z >> 30)) * MIX1) & MASK
    z = ((z ^ (z >> 27)) * MIX2) & MASK
    z ^= z >> 31
    return (z >> 11) * (1.0 / (1 << 53))


def check(iov_count, iov_size, layout, messages, resident_fraction, thp_share, accept_fraction, strategy, size_goal,
          max_frags, huge_zero_share=0.0):
    offs, lens = iovecs(iov_count, iov_size, layout)
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy = {strategy!r} is not allowed: expected one of {', '.join(STRATEGIES)}")
    if iov_count * iov_size > MAX_MESSAGE:
        raise ValueError(f"iov_count x iov_size = {iov_count * iov_size} is not allowed: expected at most "
                         f"{MAX_MESSAGE} bytes per sendmsg()")
    if messages < 0 or not 0 <= resident_fraction <= 1 or not 0 <= thp_share <= 1 or not 0 < accept_fraction <= 1:
        raise ValueError(f"messages = {messages}, resident_fraction = {resident_fraction}, thp_share = {thp_share}, "
                         f"accept_fraction = {accept_fraction}: expected messages >= 0, fractions in [0, 1], "
                         f"accept_fraction > 0")
    if not 0 <= huge_zero_share <= 1 - thp_share:
        raise ValueError(f"huge_zero_share = {huge_zero_share} is not allowed: expected 0 <= huge_zero_share <= "
                         f"1 - thp_share ({1 - thp_share:g})")
    if size_goal < PAGE or max_frags < 1:
        raise ValueError(f"size_goal = {size_goal}, max_frags = {max_frags}: expected size_goal >= {PAGE}, "
                         f"max_frags >= 1")
    accept = max(1, int(accept_fraction * iov_count * iov_size))
    return offs, lens, accept


def rules(release: str) -> tuple[bool, bool]:
    """(the huge zero PMD is special, a write to it allocates a THP) on kernel ``release``."""
    return kernels.follows(release, "huge_zero_pmd_special"), kernels.follows(release, "huge_zero_wp_thp")


class Lookup:
    """One :func:`lookup` run: the iterator, the pages' states and the counts. One method per kernel operation, named
    as the compiled handlers of :mod:`.pagetable` (``gup``, ``folio_at``, ``fill``, ``populate``)."""

    def __init__(self, offs, lens, strategy, size_goal, max_frags, release, foll_pin=False):
        self.offs, self.lens = [int(x) for x in offs], [int(x) for x in lens]
        self.strategy, self.size_goal, self.max_frags, self.foll_pin = strategy, size_goal, max_frags, foll_pin
        self.huge_zero_special, self.huge_zero_wp_thp = rules(release)
        self.c = dict.fromkeys(LOOKUP_FIELDS, 0)
        self.state: list[int] = []  # per page: ABSENT, ZERO or PRESENT
        self.region: list[int] = []  # per 2 MiB region: PTE_REGION, THP_REGION or HUGE_ZERO_REGION

    def runs(self, i, o):
        """Runs of contiguous iovecs from position (i, o): [lo, hi) byte ranges."""
        offs, lens, nv = self.offs, self.lens, len(self.offs)
        out, lo = [], offs[i] + o
        k = i
        while k < nv:
            hi = offs[k] + lens[k]
            while k + 1 < nv and offs[k + 1] == hi:
                k += 1
                hi = offs[k] + lens[k]
            out.append((lo, hi))
            k += 1
            if k < nv:
                lo = offs[k]
        return out

    def grab(self, atomics_if_pinned):
        """One try_grab_folio*(): a reference (one atomic), or a pin (``atomics_if_pinned``)."""
        if self.foll_pin:
            self.c["pin_atomics"] += atomics_if_pinned
        else:
            self.c["ref_atomics"] += 1

    def gup(self, q0, n):
        """One get_user_pages_fast() over pages [q0, q0 + n): gup-fast while it can, the rest of the call slow."""
        c, state, region = self.c, self.state, self.region
        c["calls"] += 1
        c["pages_looked_up"] += n
        fast, fast_leaves, slow_leaf = True, set(), {}
        for q in range(q0, q0 + n):
            r = q // PMD_PAGES
            kind = region[r]
            if fast:
                if kind == THP_REGION or (kind == HUGE_ZERO_REGION and not self.huge_zero_special):
                    if r not in fast_leaves:  # one grab and one PG_referenced per PMD leaf per call
                        fast_leaves.add(r)
                        c["pmd_leaves"] += 1
                        self.grab(2)
                        c["flag_atomics"] += 1
                        c["zero_refs"] += kind == HUGE_ZERO_REGION
                    c["pmd_pages"] += 1
                    continue
                if kind == PTE_REGION and state[q] == PRESENT:
                    c["fast_pte"] += 1
                    self.grab(2)
                    c["flag_atomics"] += 1
                    continue
                fast = False  # no PTE, the zero page's special PTE, or the special huge zero PMD
                c["slow_calls"] += 1
                c["lock_atomics"] += 2  # mmap_read_lock() and its unlock, once per call
            c["slow_pages"] += 1
            if kind == PTE_REGION:
                c["lock_atomics"] += 1  # the PTE lock
                if state[q] == ABSENT:  # faultin_page(): a read fault maps the zero page
                    c["zero_faults"] += 1
                    state[q] = ZERO
                if state[q] == ZERO and self.foll_pin:  # no pin on the zero page
                    pass
                else:
                    c["zero_refs"] += state[q] == ZERO
                    self.grab(1)
                c["flag_atomics"] += 1  # folio_mark_accessed()
            else:  # follow_huge_pmd(): the PMD lock and a grab of 1, then one of the rest of the leaf in the call
                c["slow_pmd_pages"] += 1
                seen = slow_leaf.get(r, 0)
                slow_leaf[r] = seen + 1
                if seen < 2:
                    self.grab(2)
                    c["zero_refs"] += kind == HUGE_ZERO_REGION
                if seen == 0:
                    c["slow_pmd_leaves"] += 1
                    c["lock_atomics"] += 1

    def folio_at(self, q, pos):
        """(folio, offset in it) of byte ``pos`` of page q, as the frag merge test compares them."""
        r = q // PMD_PAGES
        if self.region[r] == THP_REGION:
            return r * PMD_PAGES, (q - r * PMD_PAGES) * PAGE + pos % PAGE
        if self.region[r] == HUGE_ZERO_REGION:
            return HUGE_ZERO_FOLIO, (q - r * PMD_PAGES) * PAGE + pos % PAGE
        return (ZERO_FOLIO if self.state[q] == ZERO else q), pos % PAGE

    def fill(self, i, o, a):
        """sendmsg() of ``a`` bytes from iovec ``i`` at offset ``o``: skbs, frags and (per skb) the GUP calls.
        Returns the iterator position after it."""
        c, offs, lens, size_goal, max_frags = self.c, self.offs, self.lens, self.size_goal, self.max_frags
        skb_bytes, frags, last = size_goal, max_frags, None
        while a > 0:
            if skb_bytes >= size_goal or frags >= max_frags:
                c["skbs"] += 1
                skb_bytes, frags, last = 0, 0, None
            req = min(a, size_goal - skb_bytes, lens[i] - o)
            addr = offs[i] + o
            start = addr % PAGE
            n = min(-(-(start + req) // PAGE), max_frags - frags)
            copied = min(req, n * PAGE - start)
            if self.strategy != "batched":
                self.gup(addr // PAGE, n)
            pos, merging = addr, False
            while pos < addr + copied:
                q = pos // PAGE
                size = min(addr + copied - pos, PAGE - pos % PAGE)
                folio, at = self.folio_at(q, pos)
                if frags and last == (folio, at):  # continues the last frag: merged
                    c["give_backs"] += not merging
                    merging = True
                else:
                    frags += 1
                    c["frags"] += 1
                    merging = False
                last = (folio, at + size)
                pos += size
            c["pages_sent"] += -(-(start + copied) // PAGE)
            a -= copied
            skb_bytes += copied
            o += copied
            if o == lens[i]:
                i, o = i + 1, 0
        return i, o

    def populate(self):
        """madvise(MADV_POPULATE_WRITE) over each run of contiguous iovecs: a write fault per page not written."""
        c, state, region = self.c, self.state, self.region
        for lo, hi in self.runs(0, 0):
            c["populate_calls"] += 1
            for q in range(lo // PAGE, -(-hi // PAGE)):
                r = q // PMD_PAGES
                if region[r] == HUGE_ZERO_REGION:
                    if self.huge_zero_wp_thp:  # do_huge_zero_wp_pmd(): a THP for the whole PMD
                        region[r] = THP_REGION
                        c["populate_pages"] += PMD_PAGES
                        continue
                    region[r] = PTE_REGION  # split: every PTE maps the zero page, then this page's write fault
                    for p in range(r * PMD_PAGES, (r + 1) * PMD_PAGES):
                        state[p] = ZERO
                if region[r] == PTE_REGION and state[q] != PRESENT:
                    c["populate_pages"] += 1
                    state[q] = PRESENT


def lookup(iov_count: int, iov_size: int, layout: str = "scattered", messages: int = 1,
           resident_fraction: float = 1.0, thp_share: float = 0.0, accept_fraction: float = 1.0,
           strategy: str = "per_skb", size_goal: int = 65160, max_frags: int = MAX_SKB_FRAGS,
           seed: int = 1, huge_zero_share: float = 0.0, release: str = kernels.NEWEST,
           foll_pin: bool = False) -> dict:
    """Page-table work of ``messages`` sendmsg() iterators under one strategy (counts of
    :data:`LOOKUP_FIELDS`), one page at a time over lists and dicts."""
    offs, lens, accept = check(iov_count, iov_size, layout, messages, resident_fraction, thp_share, accept_fraction,
                               strategy, size_goal, max_frags, huge_zero_share)
    L = Lookup(offs, lens, strategy, size_goal, max_frags, release, bool(foll_pin))
    c, offs, lens = L.c, L.offs, L.lens
    region_pages = -(-(offs[-1] + lens[-1]) // PAGE)  # ceil
    regions = -(-region_pages // PMD_PAGES)
    seed = int(seed) & MASK
    for m in range(messages):
        c["messages"] += 1
        L.region = []
        for r in range(regions):  # fresh buffers for every message
            u = u01(seed, 2 * (m * regions + r))
            L.region.append(THP_REGION if u < thp_share else
                            HUGE_ZERO_REGION if u < thp_share + huge_zero_share else PTE_REGION)
        L.state = []
        for q in range(regions * PMD_PAGES):
            mapped = u01(seed, 2 * (m * regions * PMD_PAGES + q) + 1) < resident_fraction
            L.state.append(PRESENT if L.region[q // PMD_PAGES] == THP_REGION or mapped else ABSENT)
        if strategy == "populate":
            L.populate()
        i = o = 0
        left = sum(lens)
        while left > 0:
            c["sendmsgs"] += 1
            a = min(left, accept)
            if strategy == "batched":  # one lookup of the whole remaining iterator, one call per contiguous run
                looked = 0
                for lo, hi in L.runs(i, o):
                    n = -(-hi // PAGE) - lo // PAGE
                    L.gup(lo // PAGE, n)
                    looked += n
                before = c["pages_sent"]
                i, o = L.fill(i, o, a)
                c["local_puts"] += max(0, looked - (c["pages_sent"] - before))
            else:
                i, o = L.fill(i, o, a)
            left -= a
            c["bytes"] += a
    c["ref_atomics"] += c["give_backs"] + c["local_puts"] + c["frags"]
    return c


def gup_work(c: dict) -> dict:
    """What the lookups did, in the terms GUP's price is given in (:func:`fraglife.model.costs.price_gup`): the slow
    path walks each PTE page, and each PMD leaf once per call (``follow_huge_pmd()`` covers the rest of the leaf)."""
    slow_walks = c["slow_pages"] - c["slow_pmd_pages"] + c["slow_pmd_leaves"]
    return {"sends": c["sendmsgs"], "gup_calls": c["calls"], "pages": c["pages_looked_up"], "frags": c["frags"],
            "slow_calls": c["slow_calls"], "slow_pages": slow_walks, "faulted_pages": c["zero_faults"],
            "flag_atomics": c["flag_atomics"], "ref_atomics": c["ref_atomics"], "pin_atomics": c["pin_atomics"]}
