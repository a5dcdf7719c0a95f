"""The ledger a replay returns: counts, costs held, and violations."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .trace import N_OPS, OP_NAMES

# Scalar slots of the engine's int64 ledger array, in order; ``by_op`` follows.
SCALARS = (
    "events",          # events replayed
    "atomics",         # every atomic read-modify-write the modelled paths make (all kinds below)
    "ref_atomics",     # atomics that keep frag memory alive: page + pp + owner + pin
    "page_atomics",    # on struct page/folio _refcount: GUP refs and their give-back, get_page/put_page, pipe puts
    "pp_atomics",      # on a page_pool page's pp_ref_count
    "owner_atomics",   # on an owner object: the per-send owner, a devmem binding, the shared binding
    "pin_atomics",     # FOLL_PIN: pinning user pages and unpinning them (the owner designs' acquisition)
    "uarg_atomics",    # on ubuf_info refcounts (zerocopy notifications)
    "dataref_atomics", # on skb_shared_info.dataref
    "flag_atomics",    # page flags: gup-fast's folio_set_referenced() (a locked set_bit on the head page's flags)
    "cmpxchg_atomics", # compare-and-swap loops on a sender's shared counters: user->locked_vm per sendmsg
                       # (mm_account_pinned_pages()), user->__count at completion (free_uid()), the devmem binding
                       # per sendmsg (net_devmem_get_binding(): refcount_inc_not_zero()); GUP's own try_get_folio()
                       # is one too, but counts with the page refs
    "notif_atomics",   # a zerocopy notification's socket and user counters: sk_omem_alloc, sk_zckey, sk_refcnt, the
                       # error queue's lock, get_uid() and the locked_vm give-back
    "defer_atomics",   # skb_attempt_defer_free(): the allocating CPU's defer list (its count, its list, the flush)
    "pp_reads",        # pp_ref_count puts that found the last user and only read the count
    "refs_taken",      # references acquired on frag memory (units; one batched atomic may take several)
    "refs_dropped",    # references released, including the holder's own
    "lines",           # distinct refcount cache lines written by atomics
    "bounces",         # atomics on a line last written by another CPU
    "cmpxchg_bounces", # of which cmpxchg_atomics (a cmpxchg loop priced apart from a lock xadd)
    "pages_peak",      # most pages allocated at once
    "uaf_pages",       # pages freed while a live frag still pointed at them
    "uaf_frees",       # frees (folio or owner) that freed such pages
    "early_complete",  # zerocopy completions read while frags still pointed at the buffer
    "bad_refs",        # a ref taken on freed memory or dropped below zero
    "leaked_refs",     # references (and pins) still held when the trace ended
    "leaked_pages",    # pages still allocated when the trace ended
    "leaked_skbs",     # skbs never freed
    "trace_errors",    # events inconsistent with the state (skipped)
    "completions",     # zerocopy notifications raised (a ubuf_info or per-send owner reached zero)
)
IDX = {name: i for i, name in enumerate(SCALARS)}
BY_OP = len(SCALARS)
SIZE = BY_OP + N_OPS


def new_array() -> np.ndarray:
    return np.zeros(SIZE, dtype=np.int64)


@dataclass(frozen=True)
class Ledger:
    events: int
    atomics: int
    ref_atomics: int
    page_atomics: int
    pp_atomics: int
    owner_atomics: int
    pin_atomics: int
    uarg_atomics: int
    dataref_atomics: int
    flag_atomics: int
    cmpxchg_atomics: int
    notif_atomics: int
    defer_atomics: int
    pp_reads: int
    refs_taken: int
    refs_dropped: int
    lines: int
    bounces: int
    cmpxchg_bounces: int
    pages_peak: int
    uaf_pages: int
    uaf_frees: int
    early_complete: int
    bad_refs: int
    leaked_refs: int
    leaked_pages: int
    leaked_skbs: int
    trace_errors: int
    completions: int
    ref_by_op: tuple[int, ...]  # ref_atomics attributed to each op, indexed by op code

    @classmethod
    def from_array(cls, a: np.ndarray) -> "Ledger":
        vals = {name: int(a[i]) for i, name in enumerate(SCALARS)}
        return cls(**vals, ref_by_op=tuple(int(x) for x in a[BY_OP:BY_OP + N_OPS]))

    def to_array(self) -> np.ndarray:
        a = new_array()
        for i, name in enumerate(SCALARS):
            a[i] = getattr(self, name)
        a[BY_OP:] = self.ref_by_op
        return a

    @property
    def violations(self) -> int:
        return self.uaf_pages + self.early_complete + self.bad_refs + self.leaked_refs + self.leaked_pages

    @property
    def clean(self) -> bool:
        """No use-after-free, no leak, no bad ref, no invalid event."""
        return self.violations == 0 and self.leaked_skbs == 0 and self.trace_errors == 0

    def by_op(self) -> dict[str, int]:
        return {OP_NAMES[i]: n for i, n in enumerate(self.ref_by_op) if n}

    def as_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "ref_by_op"}
        d.update({f"ref_atomics_{k}": v for k, v in self.by_op().items()})
        return d
