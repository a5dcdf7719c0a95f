"""Pins and references on user folios: chapter 03's two models, the specification in plain Python.

``history`` replays random reference and pin histories on folios and asks
``folio_maybe_dma_pinned()`` about them, counting how often it is wrong.
``sender`` replays a stream of MSG_ZEROCOPY sends from a ring of user buffers,
taking today's GUP references or FOLL_PIN pins, with forks in between, and
counts what each costs. :mod:`.pins` runs both compiled (numba) and is the
module the package imports; this module is their specification, written for
reading, and holds the definitions both share.

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

from .rng import SplitMix64

PAGE = 4096
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


# -------------------------------------------------------------------- sender
SEND_FIELDS = ("sends", "pages_sent", "calls", "gup_pte", "gup_pmd", "give_backs", "frag_puts", "pin_pte", "pin_pmd",
               "pmd_pages", "unpin_small", "unpin_large", "charges", "uargs", "uncharges", "forks", "fork_copies",
               "fork_copies_unpinned", "thp_splits", "wp_faults_pte", "wp_faults_pmd", "wp_copies", "ref_atomics",
               "pin_atomics", "held_at_end")


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


def sender(send_size: int, folio_pages: int, inflight: int, sends: int, fork_per_ksend: float = 0.0,
           other_refs: int = 0, policy: str | int = "ref", size_goal: int = 65160) -> dict:
    """``sends`` MSG_ZEROCOPY sends from a ring of buffers, the rules over objects, one page at a time
    (:func:`.pins.sender` compiles it and documents the arguments)."""
    pol = policy_code(policy)
    check_sender(send_size, folio_pages, inflight, sends, fork_per_ksend, other_refs, pol, size_goal)
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

    forks_per_msend, acc = per_msend(fork_per_ksend), 0
    for i in range(sends + inflight):
        if i < sends:
            acc += forks_per_msend
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
