"""Lifetime policies: what a reference to a frag takes and drops.

The engine (shared by every policy) decides *when* a frag gains or loses a
reference: which events add frags to a shared info, move them, copy them or
release them, following net/core/skbuff.c. A policy decides only *what* such
a reference is:

``page_mode``
    ``FIRST``: one ref on the folio of the frag's page, which is what
    ``__skb_frag_ref()`` does today (``get_page(skb_frag_page(frag))``,
    include/linux/skbuff_ref.h, v6.12). Correct while a frag stays inside one
    folio; wrong once a frag may span pages that are not one refcounted unit,
    which is the thread's warning. ``ALL``: one ref per distinct folio the
    frag covers, the per-page scheme made correct for such frags.
``owner_mode``
    A ref on the buffer's lifetime object ("owner") instead of on pages:
    ``FRAG`` takes one per frag reference, like devmem's
    ``net_devmem_get_net_iov()`` takes one binding ref per frag
    (net/core/devmem.h); ``SHINFO`` one per distinct owner per shared info,
    shared by clones through ``dataref``; ``SKB`` one per distinct owner per
    skb, so a clone takes its own (the thread's "extra ref on the lifetime
    management struct" per clone).
``uarg``
    Zerocopy skbs also hold a ref on their ``ubuf_info`` per shared info
    (``skb_zcopy_set()``, ``skb_zerocopy_clone()``); kept when pages are
    ref'd, folded into the owner otherwise.
``batch``
    Ops on the same object within one event merge into one atomic
    (``refcount_add(n)``); needed for per-shared-info owners, whose refs are
    computed as set differences.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PAGE_NONE, PAGE_FIRST, PAGE_ALL = 0, 1, 2
OWNER_NONE, OWNER_FRAG, OWNER_SHINFO, OWNER_SKB = 0, 1, 2, 3


@dataclass(frozen=True)
class Policy:
    name: str
    page_mode: int
    owner_mode: int
    uarg: bool
    batch: bool
    summary: str

    def __post_init__(self):
        if (self.page_mode == PAGE_NONE) == (self.owner_mode == OWNER_NONE):
            raise ValueError(f"policy {self.name!r}: exactly one of page_mode and owner_mode must be set")
        if self.owner_mode in (OWNER_SHINFO, OWNER_SKB) and not self.batch:
            raise ValueError(f"policy {self.name!r}: per-shared-info owners need batch=True")

    def as_array(self) -> np.ndarray:
        """The policy as the engine reads it: [page_mode, owner_mode, uarg, batch]."""
        return np.array([self.page_mode, self.owner_mode, int(self.uarg), int(self.batch)], dtype=np.int64)

    @property
    def holds_pages(self) -> bool:
        return self.page_mode != PAGE_NONE


POLICIES: dict[str, Policy] = {
    p.name: p
    for p in (
        Policy("page_ref", PAGE_FIRST, OWNER_NONE, True, False,
               "today: a ref on the folio of each frag's page, plus the zerocopy uarg per shared info"),
        Policy("page_ref_all", PAGE_ALL, OWNER_NONE, True, False,
               "per-page refs made safe for multi-folio frags: one ref per folio a frag covers"),
        Policy("owner_frag", PAGE_NONE, OWNER_FRAG, False, False,
               "one owner ref per frag reference (devmem binding style)"),
        Policy("owner_skb", PAGE_NONE, OWNER_SHINFO, False, True,
               "one owner ref per distinct owner per shared info; clones share it via dataref"),
        Policy("owner_clone", PAGE_NONE, OWNER_SKB, False, True,
               "one owner ref per distinct owner per skb; each clone takes its own"),
    )
}


def get(name: str | Policy) -> Policy:
    if isinstance(name, Policy):
        return name
    try:
        return POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; known: {', '.join(POLICIES)}") from None
