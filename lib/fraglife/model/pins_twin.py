"""Pins and references on user folios: chapter 03's two models, the specification in plain Python.

``history`` replays random reference and pin histories on folios and asks
``folio_maybe_dma_pinned()`` about them, counting how often it is wrong.
``sender`` replays a stream of MSG_ZEROCOPY sends from a ring of user buffers,
taking today's GUP references or FOLL_PIN pins, with forks in between, and
counts what each costs. :mod:`.pins` runs both compiled (numba) and is the
module the package imports; this module is their specification, written for
reading, and holds the definitions both share.

Kernel rules (torvalds/linux v6.18.0; where 6.12 LTS differs, :mod:`.kernels` has the row and
``release`` chooses):

- MSG_ZEROCOPY looks its pages up in ``zerocopy_fill_skb_from_iter()`` (net/core/datagram.c):
  one ``iov_iter_get_pages2()`` call per skb pass, per iovec, per at most
  ``MAX_SKB_FRAGS - nr_frags`` pages (the compile-time 17; ``net.core.max_skb_frags`` limits only
  the copy and splice paths). A page continuing the skb's last frag in the same compound page
  merges into it; the surplus references of the pages merged into one frag in one call go back
  with one ``page_ref_sub()``. An skb closes at its size goal or at 17 frags (``-EMSGSIZE``).
- gup-fast (mm/gup.c ``gup_fast_pte_range()``, ``gup_fast_pmd_leaf()``): per PTE page one
  ``try_grab_folio_fast()``, per PMD leaf one for all the pages of the call inside it; then
  ``folio_set_referenced()``, a locked ``set_bit`` without a test first, per PTE page or per PMD
  leaf per call. FOLL_GET: the grab is one atomic (2 with PG_referenced); FOLL_PIN adds
  ``GUP_PIN_COUNTING_BIAS - 1`` to a small folio's ``_refcount`` or one to a large folio's
  ``_pincount``: 2 (3 with PG_referenced). PG_referenced is counted as its own kind
  (``flag_atomics``), the same for both policies.
- ``unpin_user_pages()`` drops consecutive pages of one folio together (``gup_folio_next()``): one
  ``folio_put_refs()`` of ``n x 1024`` on a small folio, an ``atomic_sub()`` of ``_pincount`` and a
  ``folio_put_refs()`` on a large one (``gup_put_folio()``). Freeing an skb puts one ref per frag.
- ``folio_maybe_dma_pinned()`` (include/linux/mm.h): a large folio is pinned iff ``_pincount >
  0``; a small one iff ``_refcount >= 1024``, so enough ordinary references make an unpinned
  small folio look pinned.
- The ``ubuf_info`` extends over consecutive sends up to 512 KiB (``msg_zerocopy_realloc()``);
  each send charges ``locked_vm`` once (``mm_account_pinned_pages()``), each ``ubuf_info``
  uncharges once when it completes (``mm_unaccount_pinned_pages()``), net/core/skbuff.c.
- fork (``copy_present_ptes()``, mm/memory.c; ``__folio_try_dup_anon_rmap()``,
  include/linux/rmap.h): in an mm with ``MMF_HAS_PINNED`` (set by its first FOLL_PIN,
  ``mm_set_has_pinned_flag()``), an anon-exclusive page of a folio that
  ``folio_maybe_dma_pinned()`` reports is copied for the child at once, and the parent keeps it
  exclusive and writable; fork takes its own reference before asking (``folio_get()``), so a
  small folio counts ``1 + refs + 1``. A PMD-mapped THP is split first
  (mm/huge_memory.c ``copy_huge_pmd()``). Every other page is shared and write-protected.
- The next write to a write-protected page (``do_wp_page()`` -> ``wp_can_reuse_anon_folio()``,
  mm/memory.c): a small folio is reused iff its refcount is one; a page of a PTE-mapped large
  folio is reused (6.15+, ``__wp_can_reuse_large_anon_folio()``, rule ``cow_reuse_large_anon``)
  iff no other mm maps the folio, more than one of its pages is mapped and its refcount equals
  its mapcount: a GUP reference or pin on any of its pages forces a copy; 6.12 always copies.
  A copy is one order-0 page. A PMD-mapped THP is reused whole when its refcount is one, else
  split and handled per page (mm/huge_memory.c ``do_huge_pmd_wp_page()``).

Model choices, each stated in the chapter: the child of a fork execs or exits before the parent
writes again (fork+exec), so no other mm maps a folio at a write; the application writes each
buffer before it sends it and reuses a buffer only after its completion (msg_zerocopy.rst);
completions come in order, ``inflight`` sends later; each send continues the last skb while it
has room; with references the process never pinned anything (``MMF_HAS_PINNED`` clear), with
pins it has. :func:`cow_case` applies the same fork and write rules to one buffer, one fork and
one writer, the cases the ``cow_mthp`` probe measures.
"""

from __future__ import annotations

from . import kernels
from .rng import SplitMix64

PAGE = 4096
MAX_SKB_FRAGS = 17
PMD_PAGES = 512
GUP_PIN_COUNTING_BIAS = 1024
UARG_BYTE_LIMIT = 1 << 19
REF, PIN = 0, 1
POLICIES = ("ref", "pin")


# -------------------------------------------------------------------- history
HIST_FIELDS = ("steps", "checks", "pinned_checks", "unpinned_checks", "true_pos", "false_pos", "false_neg",
               "gets", "puts", "pins", "unpins", "get_atomics", "put_atomics", "pin_atomics", "unpin_atomics",
               "max_refcount")


def check_history(n_folios, folio_pages, steps, refs_mean, pin_share):
    if n_folios < 1 or steps < 0 or folio_pages < 1 or folio_pages & (folio_pages - 1):
        raise ValueError(f"history: n_folios={n_folios}, steps={steps}, folio_pages={folio_pages} are not allowed: "
                         f"expected n_folios >= 1, steps >= 0, folio_pages a power of two")
    if not refs_mean >= 0 or not 0 <= pin_share <= 1:
        raise ValueError(f"history: refs_mean={refs_mean}, pin_share={pin_share} are not allowed: "
                         f"expected refs_mean >= 0 and pin_share in [0, 1]")


def history(n_folios: int, folio_pages: int, steps: int, refs_mean: float, pin_share: float = 0.0,
            seed: int = 1) -> dict:
    """folio_maybe_dma_pinned() asked ``steps`` times about folios whose holders come and go, written for
    reading (:func:`.pins.history` compiles it and documents the arguments)."""
    check_history(n_folios, folio_pages, steps, refs_mean, pin_share)
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


# -------------------------------------------------------------------- fork and a write: the rules
def maybe_pinned(large: bool, refcount: int, pincount: int) -> bool:
    """``folio_maybe_dma_pinned()``: exact on a large folio, the bias on a small one."""
    return pincount > 0 if large else refcount >= GUP_PIN_COUNTING_BIAS


def can_reuse(large: bool, refcount: int, mapcount: int, other_mm: bool, reuse_large: bool) -> bool:
    """``wp_can_reuse_anon_folio()``: whether a write to a write-protected PTE of an anon folio keeps the page (else
    one page is copied). Small: the mapping holds the only reference. Large: only where ``reuse_large`` (6.15+,
    rule ``cow_reuse_large_anon``), when no other mm maps the folio, more than one of its pages is mapped and
    every reference is a mapping's (``__wp_can_reuse_large_anon_folio()``)."""
    if not large:
        return refcount == 1
    return reuse_large and not other_mm and mapcount > 1 and refcount == mapcount


# -------------------------------------------------------------------- sender
SEND_FIELDS = ("sends", "pages_sent", "skbs", "calls", "pages_looked_up", "frags", "gup_pte", "gup_pmd", "give_backs",
               "frag_puts", "pin_pte", "pin_pmd", "pmd_pages", "unpin_small", "unpin_large", "charges", "uargs",
               "uncharges", "forks", "fork_copies", "fork_copies_unpinned", "thp_splits", "wp_faults_pte",
               "wp_faults_pmd", "wp_copies", "wp_reuses_large", "ref_atomics", "pin_atomics", "flag_atomics",
               "held_at_end")


def sender_layout(send_size: int, folio_pages: int, inflight: int) -> tuple[int, int, int]:
    """(pages per send, pages per buffer slot (whole folios), buffers in the ring)."""
    pages = -(-send_size // PAGE)
    slot = -(-pages // folio_pages) * folio_pages
    return pages, slot, inflight + 1


MSEND = 1_000_000


def per_msend(fork_per_ksend: float) -> int:
    """Forks per million sends, an integer, so that both implementations count them exactly alike."""
    return int(round(float(fork_per_ksend) * 1000))


def policy_code(policy) -> int:
    if isinstance(policy, str):
        if policy not in POLICIES:
            raise ValueError(f"policy = {policy!r} is not allowed: expected one of {', '.join(POLICIES)}")
        return POLICIES.index(policy)
    return int(policy)


def check_sender(send_size, folio_pages, inflight, sends, fork_per_ksend, other_refs, policy, size_goal):
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


class Sender:
    """The state of one :func:`sender` run: the ring's pages, their folios, and the tail skb. One method per kernel
    operation, named as the compiled handlers of :mod:`.pins` (``fork``, ``write``, ``call``)."""

    def __init__(self, send_size, folio_pages, inflight, other_refs, policy, size_goal, reuse_large):
        self.send_size, self.policy, self.size_goal, self.reuse_large = send_size, policy, size_goal, reuse_large
        self.npg, self.slot, self.nbuf = sender_layout(send_size, folio_pages, inflight)
        self.total = total = self.slot * self.nbuf
        self.head = [q // folio_pages * folio_pages for q in range(total)]  # the folio each page belongs to
        self.size = {h: folio_pages for h in range(0, total, folio_pages)}  # pages per folio
        self.pmd_mapped = {h: folio_pages == PMD_PAGES for h in self.size}
        self.wp = [False] * total  # write-protected by a fork, not written since
        self.other = [other_refs] * total  # other holders' references
        self.hold = [0] * total  # this socket's references or pins in flight
        self.c = dict.fromkeys(SEND_FIELDS, 0)
        self.ring: dict[int, tuple[list[int], int]] = {}  # buffer -> (the send's pages in GUP order, its frags)
        self.uarg_bytes = UARG_BYTE_LIMIT + 1
        self.skb = {"bytes": size_goal, "frags": MAX_SKB_FRAGS, "last": None}  # the tail skb (none open yet)

    def pages_of(self, h):
        return [q for q in range(self.total) if self.head[q] == h]

    def at_in_folio(self, q, pos):
        """Where byte ``pos`` of the buffer (in page q) lies in q's folio, as the frag's offset counts it."""
        return (q - self.head[q] if self.head[q] < self.total else 0) * PAGE + pos % PAGE

    def fork(self):
        """fork(): copy for the child what may be pinned, share and write-protect the rest."""
        c, hold, other = self.c, self.hold, self.other
        c["forks"] += 1
        for h in sorted(set(self.head)):
            qs = self.pages_of(h)
            maybe = False
            if self.policy == PIN:  # MMF_HAS_PINNED: ask folio_maybe_dma_pinned(), fork's own reference included
                if self.size[h] > 1:
                    maybe = maybe_pinned(True, 0, sum(hold[q] for q in qs))
                else:
                    maybe = maybe_pinned(False, 1 + other[qs[0]] + GUP_PIN_COUNTING_BIAS * hold[qs[0]] + 1, 0)
            if maybe:  # copy every anon-exclusive page for the child, after splitting a PMD mapping
                if self.pmd_mapped[h]:
                    self.pmd_mapped[h] = False
                    c["thp_splits"] += 1
                for q in qs:
                    if not self.wp[q]:
                        c["fork_copies"] += 1
                        c["fork_copies_unpinned"] += hold[q] == 0
            else:
                for q in qs:
                    self.wp[q] = True

    def write(self, q):
        """The application's write to write-protected page ``q``: do_wp_page()."""
        c, h = self.c, self.head[q]
        qs = self.pages_of(h)
        extra = sum(self.other[r] + self.hold[r] for r in qs)  # references that are not this mm's mappings
        if self.pmd_mapped[h]:
            if extra == 0:  # refcount one: reuse the whole PMD
                c["wp_faults_pmd"] += 1
                for r in qs:
                    self.wp[r] = False
                return
            self.pmd_mapped[h] = False
            c["thp_splits"] += 1
        c["wp_faults_pte"] += 1
        large = self.size[h] > 1
        refcount = len(qs) + extra if large else 1 + self.other[q] + self.hold[q]
        if can_reuse(large, refcount, len(qs), False, self.reuse_large):  # the child is gone (fork+exec)
            c["wp_reuses_large"] += large
        else:  # copy: the page becomes an order-0 folio of its own
            c["wp_copies"] += 1
            self.head[q] = self.total + q
            self.size[self.total + q] = 1
            self.pmd_mapped[self.total + q] = False
            self.other[q] = 0
        self.wp[q] = False

    def call(self, run, off, took):
        """One iov_iter_get_pages2() over the pages of ``run`` (gup-fast), then the frags bytes [off, off + took)
        fill; returns the frags it started."""
        c, skb, ref = self.c, self.skb, self.policy == REF
        c["calls"] += 1
        c["pages_looked_up"] += len(run)
        leaves = []
        for q in run:
            if self.pmd_mapped[self.head[q]]:
                c["pmd_pages"] += 1
                if self.head[q] not in leaves:  # one grab per PMD leaf per call
                    leaves.append(self.head[q])
            else:
                c["gup_pte" if ref else "pin_pte"] += 1
                c["flag_atomics"] += 1
            self.hold[q] += 1
        c["gup_pmd" if ref else "pin_pmd"] += len(leaves)
        c["flag_atomics"] += len(leaves)
        new = merges = 0
        merging = False
        pos = off
        for q in run:
            piece = min(off + took - pos, PAGE - pos % PAGE)
            at = self.at_in_folio(q, pos)
            if skb["frags"] and skb["last"] == (self.head[q], at):  # continues the last frag: merged
                merges += not merging
                merging = True
            else:
                skb["frags"] += 1
                new += 1
                merging = False
            skb["last"] = (self.head[q], at + piece)
            pos += piece
        c["frags"] += new
        if ref:  # one page_ref_sub() per run of pages merged into one frag
            c["give_backs"] += merges
        return new

    def send(self, i):
        """Send i: tcp_sendmsg_locked() fills the tail skb, or a new one when it is full, with
        zerocopy_fill_skb_from_iter()."""
        c, skb, size_goal = self.c, self.skb, self.size_goal
        b = i % self.nbuf
        base = b * self.slot
        c["sends"] += 1
        c["pages_sent"] += self.npg
        c["charges"] += 1
        if self.uarg_bytes + self.send_size > UARG_BYTE_LIMIT:
            c["uargs"] += 1
            self.uarg_bytes = 0
        self.uarg_bytes += self.send_size
        pages: list[int] = []
        nfr, off, left = 0, 0, self.send_size
        while left > 0:
            if skb["bytes"] >= size_goal or skb["frags"] >= MAX_SKB_FRAGS:
                c["skbs"] += 1
                skb.update(bytes=0, frags=0, last=None)
            copy = min(size_goal - skb["bytes"], left)
            while copy > 0 and skb["frags"] < MAX_SKB_FRAGS:
                start = off % PAGE
                n = min(-(-(start + copy) // PAGE), MAX_SKB_FRAGS - skb["frags"])
                took = min(copy, n * PAGE - start)
                run = list(range(base + off // PAGE, base + off // PAGE + n))
                nfr += self.call(run, off, took)
                pages += run
                off += took
                copy -= took
                left -= took
                skb["bytes"] += took
        self.ring[b] = (pages, nfr)

    def complete(self, j):
        """Send j's completion: a put per frag, or unpin_user_pages() over its pages."""
        b = j % self.nbuf
        if b not in self.ring:
            return
        pages, nfr = self.ring.pop(b)
        if self.policy == REF:
            self.c["frag_puts"] += nfr
        else:
            prev = None
            for q in pages:
                if self.head[q] != prev:
                    self.c["unpin_large" if self.size[self.head[q]] > 1 else "unpin_small"] += 1
                prev = self.head[q]
        for q in pages:
            self.hold[q] -= 1


def sender(send_size: int, folio_pages: int, inflight: int, sends: int, fork_per_ksend: float = 0.0,
           other_refs: int = 0, policy: str | int = "ref", size_goal: int = 65160,
           release: str = kernels.NEWEST) -> dict:
    """``sends`` MSG_ZEROCOPY sends from a ring of buffers, the rules over objects, one page at a time
    (:func:`.pins.sender` compiles it and documents the arguments)."""
    pol = policy_code(policy)
    check_sender(send_size, folio_pages, inflight, sends, fork_per_ksend, other_refs, pol, size_goal)
    s = Sender(send_size, folio_pages, inflight, other_refs, pol, size_goal,
               kernels.follows(release, "cow_reuse_large_anon"))
    forks_per_msend, acc = per_msend(fork_per_ksend), 0
    for i in range(sends + inflight):
        if i < sends:
            acc += forks_per_msend
            if acc >= MSEND:  # forks spread evenly over the sends
                acc -= MSEND
                s.fork()
            base = (i % s.nbuf) * s.slot
            for q in range(base, base + s.npg):  # the application writes the buffer
                if s.wp[q]:
                    s.write(q)
            s.send(i)
        if i - inflight >= 0:
            s.complete(i - inflight)
    c = s.c
    c["uncharges"] = c["uargs"]
    c["ref_atomics"] = c["gup_pte"] + c["gup_pmd"] + c["give_backs"] + c["frag_puts"]
    c["pin_atomics"] = 2 * (c["pin_pte"] + c["pin_pmd"]) + c["unpin_small"] + 2 * c["unpin_large"]
    c["held_at_end"] = sum(s.hold)
    return {k: int(v) for k, v in c.items()}


def gup_work(c: dict) -> dict:
    """What the sends' page lookups did, in the terms GUP's price is given in (:func:`fraglife.model.costs.price_gup`):
    every page is gup-fast here (the buffers are written before they are sent)."""
    return {"sends": c["sends"], "gup_calls": c["calls"], "pages": c["pages_looked_up"], "frags": c["frags"],
            "slow_calls": 0, "slow_pages": 0, "faulted_pages": 0,
            "flag_atomics": c["flag_atomics"], "ref_atomics": c["ref_atomics"], "pin_atomics": c["pin_atomics"]}


# -------------------------------------------------------------------- one fork, one write: the cow_mthp cases
COW_HOLDERS = ("none", "zerocopy", "pinned")
COW_WRITERS = ("parent_child_alive", "parent_child_exited", "child")
COW_FIELDS = ("fork_copies", "write_faults", "write_allocs_order0", "folios_reused", "folios_copied",
              "folios_partly", "pages_moved")


def cow_case(folio_pages: int, holder: str, writer: str, pages: int = 256, release: str = kernels.NEWEST) -> dict:
    """One anon buffer of ``pages`` written pages in PTE-mapped folios of ``folio_pages``, held by nothing, by an
    in-flight MSG_ZEROCOPY send (FOLL_GET references, at least one per folio) or by FOLL_PIN pins (one per page,
    ``MMF_HAS_PINNED`` set), forked once; then ``writer`` writes one byte to every page: the parent while the child
    maps the buffer, the parent after the child exited, or the child while the parent maps it. The rules of
    :func:`sender` (:func:`maybe_pinned`, :func:`can_reuse`), with the other mm explicit. Counts of
    :data:`COW_FIELDS`; a folio is reused when the writer's frames for its pages are the same after the write
    (for the child: as right after fork), copied when none is."""
    if holder not in COW_HOLDERS or writer not in COW_WRITERS:
        raise ValueError(f"holder = {holder!r}, writer = {writer!r} is not allowed: expected one of "
                         f"{', '.join(COW_HOLDERS)} and one of {', '.join(COW_WRITERS)}")
    if folio_pages < 1 or folio_pages >= PMD_PAGES or folio_pages & (folio_pages - 1) or pages % folio_pages:
        raise ValueError(f"folio_pages = {folio_pages}, pages = {pages} is not allowed: expected a PTE-mapped "
                         f"power of two below {PMD_PAGES} that divides pages")
    reuse_large = kernels.follows(release, "cow_reuse_large_anon")
    large = folio_pages > 1
    c = dict.fromkeys(COW_FIELDS, 0)
    frames: dict[int, dict] = {}  # frame -> {folio, refs (not mappings), pins}

    def frame(folio, refs=0, pins=0):
        frames[len(frames)] = {"folio": folio, "refs": refs, "pins": pins}
        return len(frames) - 1

    parent = [frame(q // folio_pages) for q in range(pages)]
    for q in range(pages):
        f = frames[parent[q]]
        if holder == "pinned":
            f["pins"] = 1
        elif holder == "zerocopy" and (not large or q % folio_pages == 0):
            f["refs"] = 1  # the frags' references: one per frag, at least one per folio
    maps = {"parent": parent, "child": list(parent)}
    writable = {"parent": [True] * pages, "child": [False] * pages}

    def folio_of(fr):
        return frames[fr]["folio"]

    def members(mm, folio):
        return [q for q in range(pages) if mm is not None and folio_of(maps[mm][q]) == folio]

    # fork: copy_present_ptes()
    for q in range(pages):
        f = frames[parent[q]]
        folio_frames = [fr for fr in frames.values() if fr["folio"] == f["folio"]]
        pin_total = sum(fr["pins"] for fr in folio_frames)
        refcount = 1 + f["refs"] + GUP_PIN_COUNTING_BIAS * f["pins"] + 1  # the mapping, holders, fork's own
        if holder == "pinned" and maybe_pinned(large, refcount, pin_total):
            maps["child"][q] = frame(("child", q))  # a copy for the child, writable
            writable["child"][q] = True
            c["fork_copies"] += 1
        else:
            writable["parent"][q] = False
    before = {"parent": list(maps["parent"]), "child": list(maps["child"])}
    alive = {"parent": True, "child": writer != "parent_child_exited"}
    me = "child" if writer == "child" else "parent"
    them = "parent" if me == "child" else "child"
    for q in range(pages):  # the write: do_wp_page()
        if writable[me][q]:
            continue
        c["write_faults"] += 1
        fo = folio_of(maps[me][q])
        mine = members(me, fo)
        theirs = members(them, fo) if alive[them] else []
        held = sum(fr["refs"] + fr["pins"] for fr in frames.values() if fr["folio"] == fo)
        mapcount = len(mine) + len(theirs)
        f_large = large and not isinstance(fo, tuple)
        refcount = mapcount + held if f_large else 1 + len(theirs) + held
        if not can_reuse(f_large, refcount, mapcount, bool(theirs), reuse_large):
            maps[me][q] = frame((me, q))
            c["write_allocs_order0"] += 1
        writable[me][q] = True
    for fo in range(pages // folio_pages):
        qs = range(fo * folio_pages, (fo + 1) * folio_pages)
        same = sum(maps[me][q] == before[me][q] for q in qs)
        c["pages_moved"] += folio_pages - same
        c["folios_reused" if same == folio_pages else "folios_copied" if same == 0 else "folios_partly"] += 1
    return c
