"""Lifetime policies: what a reference to a frag takes and drops.

The engine (shared by every policy) decides *when* a frag gains or loses a
reference: which events add frags to a shared info, move them, copy them or
release them, following net/core/skbuff.c. A policy decides only *what* such
a reference is. Today's rules depend on the memory (``trace.MEM_*``); the
designs under comparison replace them:

``page_mode`` (today's kernel and its safe variant)
    ``FIRST``: today (v6.12). A frag of user or pipe memory holds one ref on
    the folio of its page (``__skb_frag_ref()`` is ``get_page()``,
    include/linux/skbuff_ref.h); a page_pool frag holds one on the page's
    ``pp_ref_count`` (``skb_pp_frag_ref()``, ``napi_pp_put_page()``,
    net/core/skbuff.c); a devmem frag one on its dma-buf binding
    (``get_netmem()`` -> ``net_devmem_get_net_iov()``, net/core/devmem.c,
    v6.16). Correct while a frag stays inside one folio, which today's frag
    builders guarantee; wrong once a frag may span folios, the thread's
    warning. ``ALL``: one ref per folio the frag covers, the per-page scheme
    made correct for such frags.
``owner_mode`` (the thread's lifetime object)
    A ref on the send's *owner* instead of on pages. The owner of user memory
    sent with MSG_ZEROCOPY is the ``ubuf_info`` it replaces (it pins the user
    pages once and completes the send); of pipe and devmem memory the buffer;
    of a page_pool page its own ``pp_ref_count``. ``FRAG`` takes one per frag
    reference; ``SHINFO`` one per distinct owner per shared info, shared by
    clones through ``dataref``; ``SKB`` one per distinct owner per skb, so a
    clone takes its own (the thread's "extra ref on the lifetime management
    struct" per clone). ``BINDING`` is devmem's rule applied to all memory:
    one refcount for everything, one ref per frag reference, memory handed
    back whenever its holder lets go.
``uarg``
    Zerocopy skbs hold a ref on their ``ubuf_info`` per shared info
    (``skb_zcopy_set()``, ``skb_zerocopy_clone()``) and each ``sendmsg``
    holds one while it runs (``msg_zerocopy_realloc()``, ``net_zcopy_put()``).
    Kept by today's kernel and by the binding (devmem TX runs in the
    MSG_ZEROCOPY path); folded into the owner by the owner designs.
``batch``
    Ops on the same object within one event merge into one atomic
    (``refcount_add(n)``); needed for per-shared-info owners, whose refs are
    computed as set differences.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PAGE_NONE, PAGE_FIRST, PAGE_ALL = 0, 1, 2
OWNER_NONE, OWNER_FRAG, OWNER_SHINFO, OWNER_SKB, OWNER_BINDING = 0, 1, 2, 3, 4


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
        if self.owner_mode == OWNER_BINDING and not self.uarg:
            raise ValueError(f"policy {self.name!r}: the binding keeps the ubuf_info (uarg=True)")

    def as_array(self) -> np.ndarray:
        """The policy as the engine reads it: [page_mode, owner_mode, uarg, batch]."""
        return np.array([self.page_mode, self.owner_mode, int(self.uarg), int(self.batch)], dtype=np.int64)

    @property
    def holds_pages(self) -> bool:
        return self.page_mode != PAGE_NONE

    @property
    def per_buffer_owner(self) -> bool:
        """An owner design with one owner per send (not the shared binding)."""
        return self.owner_mode in (OWNER_FRAG, OWNER_SHINFO, OWNER_SKB)


POLICIES: dict[str, Policy] = {
    p.name: p
    for p in (
        Policy("page_ref", PAGE_FIRST, OWNER_NONE, True, False,
               "today: a ref per frag on its folio (GUP refs for user memory, get_page for pipe pages), "
               "on pp_ref_count for page_pool pages, on the binding for devmem; plus the ubuf_info refs"),
        Policy("page_ref_all", PAGE_ALL, OWNER_NONE, True, False,
               "per-page refs made safe for frags that span folios: one ref per folio a frag covers"),
        Policy("owner_frag", PAGE_NONE, OWNER_FRAG, False, False,
               "one ref on the send's owner per frag reference (owner = the ubuf_info for user memory, "
               "which pins the pages once; the buffer otherwise)"),
        Policy("owner_skb", PAGE_NONE, OWNER_SHINFO, False, True,
               "one owner ref per distinct owner per shared info; clones share it via dataref"),
        Policy("owner_clone", PAGE_NONE, OWNER_SKB, False, True,
               "one owner ref per distinct owner per skb; each clone takes its own"),
        Policy("owner_binding", PAGE_NONE, OWNER_BINDING, True, False,
               "devmem's binding for all memory: one shared refcount, one ref per frag reference; "
               "memory returns when its holder lets go; ubuf_info refs kept"),
    )
}


def get(name: str | Policy) -> Policy:
    if isinstance(name, Policy):
        return name
    try:
        return POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; known: {', '.join(POLICIES)}") from None
