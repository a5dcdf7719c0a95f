"""The proposal thread as a map: each proposed change and the chapter that treats it.

Source: David Howells, "Device mem changes vs pinning/zerocopy changes",
netdev/linux-mm/lkml, 30 May 2025, Message-ID
<770012.1748618092@warthog.procyon.org.uk>, and Stanislav Fomichev's reply the
same day, <aDnTsvbyKCTkZbOR@mini-arch>. In the mail the items are unnumbered;
the letters are the book's labels. Wording here is the book's paraphrase.
"""

from __future__ import annotations

from dataclasses import dataclass

LORE = "https://lore.kernel.org/r/"
HOWELLS = "770012.1748618092@warthog.procyon.org.uk"
FOMICHEV = "aDnTsvbyKCTkZbOR@mini-arch"


@dataclass(frozen=True)
class Message:
    """One mail of the thread: who wrote to whom, when, and what they said (paraphrased)."""

    author: str
    date: str
    to: str
    subject: str
    message_id: str
    said: str

    @property
    def url(self) -> str:
        return LORE + self.message_id


MESSAGES: tuple[Message, ...] = (
    Message("David Howells", "30 May 2025", "Mina Almasry; netdev, linux-mm, lkml",
            "Device mem changes vs pinning/zerocopy changes", HOWELLS,
            "struct page is losing its refcount, so the sk_buff code that takes page references for its "
            "fragments has to change; he lists seven changes, then begins a numbered list of what he would "
            "like to do, of which the reply keeps the first item: separate fragment lifetime from the sk_buff, "
            "so that cloning an skb takes a ref on a lifetime object, not on pages."),
    Message("Stanislav Fomichev", "30 May 2025", "the same lists", "Re: Device mem changes vs pinning/zerocopy changes",
            FOMICHEV,
            "devmem TX already works this way: the dmabuf binding owns the frags, and a frag reference is a "
            "reference on the binding; he likens the binding to Howells' proposed net_txbuf."),
)


@dataclass(frozen=True)
class Bullet:
    label: str
    change: str  # the proposed change, paraphrased
    question: str  # what the chapter measures
    chapter: str
    source: str
    brief: str = ""  # the change in a few words: how a reply names it in one line
    by: str = "David Howells"  # who proposed it

    @property
    def url(self) -> str:
        return LORE + self.source


BULLETS: tuple[Bullet, ...] = (
    Bullet("a", "struct page loses its refcount, so skb frag code must stop taking page refs; a frag may come to "
           "span several pages while a ref pins only one of them",
           "how many page refs the stack takes today, where, and what breaks for a multi-page frag",
           "01_refcount_removal", HOWELLS, brief="stop taking page refs for frags; a frag may span pages"),
    Bullet("b", "struct page shrinks towards a single typed pointer, so net_iov metadata must be allocated "
           "separately", "RAM saved per page vs the cost of a separate allocation and an indirection",
           "02_slim_page", HOWELLS, brief="slim struct page; allocate net_iov metadata apart"),
    Bullet("c", "MSG_ZEROCOPY takes page refs on user pages; it should take GUP pins (FOLL_PIN) and no refs",
           "which syscalls pin how much, and what pins cost next to refs", "03_pinning", HOWELLS,
           brief="MSG_ZEROCOPY should pin user pages, not take refs"),
    Bullet("d", "look user buffers up in batches to walk page tables less, at the risk of more faults up front",
           "where batching pays and where faulting ahead loses", "04_batching", HOWELLS,
           brief="batch user-buffer lookups, maybe faulting more up front"),
    Bullet("e", "splice and vmsplice hand over pipe buffers that carry destructors; use those instead of page refs",
           "how pipe-buffer destructors can own frag lifetime", "05_splice_destructors", HOWELLS,
           brief="splice and vmsplice: use the pipe buffers' destructors"),
    Bullet("f", "bio_vec becomes physical address plus length, mapped with a kmap_local_phys()-style helper; "
           "skb frags could become bio_vecs again", "what frags-as-bio_vec save and how many frags coalescing frees",
           "06_bio_vec", HOWELLS, brief="bio_vec as phys+len; frags become bio_vecs again"),
    Bullet("g", "kernel services cannot pass kmalloc'd memory to sendmsg(MSG_SPLICE_PAGES): slab pages have no "
           "usable refcount; a destructor would lift that", "the copy vs destructor crossover and memory held",
           "07_kmalloc_sends", HOWELLS, brief="let kmalloc'd data be spliced, given a destructor"),
    Bullet("1", "separate fragment lifetime from sk_buff: cloning takes a ref on a lifetime object, not on pages; "
           "devmem's dmabuf binding already owns its frags this way (Fomichev)",
           "one owner object for devmem, MSG_ZEROCOPY, splice and kmalloc, checked for use-after-free and leaks",
           "08_unified_owner", FOMICHEV, brief="one owner; a clone refs it, not the pages",
           by="David Howells, Stanislav Fomichev"),
)


def table():
    """The map as a table: bullet, change, chapter, and whether the chapter is in this build of the book."""
    import pandas as pd

    from .paths import BOOK

    rows = []
    for b in BULLETS:
        rows.append({
            "bullet": f"({b.label})",
            "proposed change (paraphrased)": b.change,
            "chapter": b.chapter,
            "the chapter answers": b.question,
            "status": "written" if (BOOK / f"{b.chapter}.ipynb").exists() else "planned",
        })
    return pd.DataFrame(rows)
