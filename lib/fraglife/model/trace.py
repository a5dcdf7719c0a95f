"""Fragment-lifetime traces: the events a workload performs, in order.

A trace is a numpy structured array (``EVENT``). Each row is one operation of
the kernel that creates, moves or drops a reference to the memory behind an
sk_buff fragment, and names the CPU it runs on. Workload generators
(:mod:`fraglife.model.workloads`) write traces; the engine replays them under
a lifetime policy. Fields mean different things per op; :data:`FIELDS` is the
table, and :func:`describe` renders a trace readably.

Model units. Memory comes in *buffers* (the user memory one ``sendmsg``
hands over, pages a pipe holds, a page_pool page, a dma-buf behind a devmem
binding) made of 4 KiB pages grouped into folios; the buffer's *kind* says
whose rules its references follow (``MEM_*`` below). A *frag* is
``(pfn, off, len, buf, uarg)``: like ``skb_frag_t`` it keeps the page it was
created with (the compound head, for a frag inside a large folio) and grows
``off`` when trimmed, so ``off`` may exceed a page (skb_frag_off_add() in
include/linux/skbuff.h does the same). Skbs share a ``skb_shared_info``
(frags + ``dataref``) when cloned.
"""

from __future__ import annotations

import numpy as np

PAGE_SIZE = 4096
# Frags per shared info: CONFIG_MAX_SKB_FRAGS default (include/linux/skbuff.h, net/Kconfig, v6.12);
# /proc/sys/net/core/max_skb_frags reads 17 on this machine. Generators, engine, twin and C replay use this one.
MAX_SKB_FRAGS = 17

EVENT = np.dtype(
    [
        ("op", np.uint8),
        ("kind", np.uint8),
        ("cpu", np.uint16),
        ("skb", np.int32),
        ("other", np.int32),
        ("buf", np.int32),
        ("pfn", np.int64),
        ("off", np.int64),
        ("len", np.int64),
    ]
)

# Op codes. Order is the book's; the engine switches on these numbers.
ALLOC = 0        # buffer appears: buf, kind, pfn = first page, len = pages, off = pages per folio
SKB_ALLOC = 1    # new skb with its own shared info: skb
ATTACH = 2       # add a frag to skb: skb, buf, pfn, off, len, other = uarg or -1 (skb_fill_page_desc + frag ref)
CLONE = 3        # skb = new clone of other; shares shared info (skb_clone / __skb_clone)
SPLIT = 4        # skb keeps [0, len), new skb other gets the rest (tcp_fragment -> skb_split)
SEGMENT = 5      # new skb skb gets bytes [off, off+len) of other's frags (skb_segment, __pskb_copy)
EXPAND_HEAD = 6  # skb gets a private head and shared info (pskb_expand_head, skb_unclone)
COALESCE = 7     # frags of other appended to skb (skb_try_coalesce, skb_gro_receive)
PULL = 8         # first len bytes of skb's frags dropped (__pskb_trim_head via tcp_trim_head)
ZC_COMPLETE = 9  # zerocopy completion for uarg other reaches the user (MSG_ERRQUEUE)
FREE = 10        # skb freed (kfree_skb / consume_skb -> skb_release_data) on CPU cpu; kind: FREE_* flags for a
                 # received skb the reader handed to skb_attempt_defer_free(): other = the other CPU, len = the
                 # atomics the deferring CPU made on the defer list
BUF_RELEASE = 11 # the buffer's holder lets go (application reuse, pipe_buf_release, pool drain, unbind);
                 # page_frag memory: len > 0 is len users each freeing a fragment (page_frag_free());
                 # pipe memory: len > 0 releases the pipe buffers of pages [pfn, pfn + len) only
UARG_GET = 12    # tcp_sendmsg_locked() takes its ubuf_info: other = uarg (msg_zerocopy_realloc/_alloc);
                 # kind: UARG_* flags, buf = the dma-buf's buffer with UARG_DEVMEM
UARG_PUT = 13    # ... and drops it when it returns: other = uarg (net_zcopy_put); kind, buf as for UARG_GET
GROW = 14        # skb's last frag takes in the next len bytes of its folio: buf, len, other = uarg
                 # (zerocopy_fill_skb_from_iter() merging the pages of one GUP call into the last frag)

N_OPS = 15
OP_NAMES = (
    "alloc", "skb_alloc", "attach", "clone", "split", "segment",
    "expand_head", "coalesce", "pull", "zc_complete", "free", "buf_release",
    "uarg_get", "uarg_put", "grow",
)
OP_CODE = {name: code for code, name in enumerate(OP_NAMES)}

# Memory kinds (ALLOC's ``kind``): whose rules a buffer's references follow today (v6.12).
MEM_USER = 0       # user memory sent with MSG_ZEROCOPY: GUP refs per page (zerocopy_fill_skb_from_iter);
                   # the process's mapping holds the pages and gives nothing back per send
MEM_PIPE = 1       # pages a pipe holds, one ref per page-sized pipe_buffer (splice_folio_into_pipe),
                   # spliced with MSG_SPLICE_PAGES: get_page() per frag (skb_append_pagefrags)
MEM_POOL_PAGE = 2  # a page_pool page given whole to one packet: pp_ref_count = 1
MEM_POOL_FRAG = 3  # a page_pool page split into slots: pp_ref_count charged with a bias once
MEM_DEVMEM = 4     # a dma-buf behind a devmem binding: frag refs are refs on the binding
MEM_SLAB = 5       # kmalloc'd slab objects: no refcount a frag may take (sendpage_ok() is false for PageSlab,
                   # include/linux/net.h); skb_splice_from_iter() refuses them with -EIO; kfree() frees them
MEM_PAGE_FRAG = 6  # a page_frag_cache page (one compound page): refcount charged once with a bias, fragments
                   # handed out from it; users page_frag_free() theirs, frags get_page() (__page_frag_alloc_align)
MEM_PAGES = 7      # whole pages a sender got from the page allocator (alloc_pages(), or a kmalloc() over
                   # KMALLOC_MAX_CACHE_SIZE): one ref per folio, put by the sender; frags get_page()
N_KINDS = 8
# UARG_GET / UARG_PUT flags (the event's kind field).
UARG_ACCOUNT = 1  # mm_account_pinned_pages(): a cmpxchg loop on user->locked_vm (not with CAP_IPC_LOCK or an
                  # unlimited RLIMIT_MEMLOCK; never for devmem), net/core/skbuff.c msg_zerocopy_realloc()/_alloc()
UARG_DEVMEM = 2   # devmem TX: net_devmem_get_binding() takes a binding ref (refcount_inc_not_zero(), a cmpxchg
                  # loop) for the sendmsg, net_devmem_dmabuf_binding_put() drops it at its end (v6.16+)
UARG_FLAGS = UARG_ACCOUNT | UARG_DEVMEM
# FREE flags (the event's kind field): skb_attempt_defer_free() (net/core/skbuff.c) of a received skb.
FREE_DEFERRED = 1  # put on CPU cpu's defer list (cpu = skb->alloc_cpu) by CPU other, freed by cpu at its flush
FREE_FLUSH = 2     # with FREE_DEFERRED: the flush that frees it emptied the list (one atomic by cpu: llist_del_all()
                   # in v6.18, the defer_lock in v6.12); set on the last skb a flush frees
FREE_FULL = 4      # the defer list of CPU other was full: freed here, on the reader's CPU, after len atomics on it
FREE_FLAGS = FREE_DEFERRED | FREE_FLUSH | FREE_FULL
KIND_NAMES = ("user", "pipe", "pool_page", "pool_frag", "devmem", "slab", "page_frag", "pages")
POOL_KINDS = (MEM_POOL_PAGE, MEM_POOL_FRAG)
# BIAS_MAX in net/core/page_pool.c is LONG_MAX; any count far above the users works the same way.
POOL_BIAS = 1 << 40
# A page_frag_cache refill charges PAGE_FRAG_CACHE_MAX_SIZE refs and keeps pagecnt_bias = that + 1
# (include/linux/mm_types.h, mm/page_alloc.c __page_frag_alloc_align(), v6.12): 32 KiB, one order-3 page.
PAGE_FRAG_CACHE_MAX_SIZE = 32768
FRAG_BIAS = PAGE_FRAG_CACHE_MAX_SIZE + 1
# Folios this large are PMD-mapped THPs: gup_fast_pmd_leaf() takes all their refs in one atomic.
PMD_PAGES = 512

FIELDS = {
    "alloc": "buf=buffer id, kind=memory kind, pfn=first page, len=pages, off=pages per folio",
    "skb_alloc": "skb=new skb",
    "attach": "skb, buf, pfn=page the frag points at, off=byte offset from that page, len=bytes, other=uarg or -1",
    "clone": "skb=new clone, other=original",
    "split": "skb=original keeps len bytes, other=new skb gets the rest",
    "segment": "skb=new segment, other=source skb, off/len=byte range of source's frags",
    "expand_head": "skb (takes frag refs only if its shared info is shared)",
    "coalesce": "skb=destination, other=source whose frags are appended",
    "pull": "skb, len=bytes trimmed from the front of its frags",
    "zc_complete": "other=uarg id whose completion the user reads",
    "free": "skb; kind=FREE_* flags (deferred frees of received skbs), other=the other CPU, len=defer-list atomics",
    "buf_release": "buf; page_frag memory: len=0 the cache drains its bias, len>0 that many fragments freed; pipe "
                   "memory: len>0 the pipe buffers of pages [pfn, pfn+len) only",
    "uarg_get": "other=uarg id (the first get creates it with a plain store), kind=UARG_* flags, buf=dma-buf",
    "uarg_put": "other=uarg id, kind=UARG_* flags, buf=dma-buf",
    "grow": "skb, buf, len=bytes the last frag grows by (same folio), other=uarg or -1",
}


def empty(n: int = 0) -> np.ndarray:
    return np.zeros(n, dtype=EVENT)


class TraceBuilder:
    """Appends events; generators use this rather than filling arrays by hand."""

    def __init__(self):
        self._rows: list[tuple] = []

    def __len__(self) -> int:
        return len(self._rows)

    def _add(self, op, cpu, skb=-1, other=-1, buf=-1, pfn=-1, off=0, length=0, kind=0):
        self._rows.append((op, kind, cpu, skb, other, buf, pfn, off, length))

    def alloc(self, cpu, buf, pfn, pages, folio_pages, kind=MEM_USER):
        self._add(ALLOC, cpu, buf=buf, pfn=pfn, off=folio_pages, length=pages, kind=kind)

    def skb_alloc(self, cpu, skb):
        self._add(SKB_ALLOC, cpu, skb=skb)

    def attach(self, cpu, skb, buf, pfn, off, length, uarg=-1):
        self._add(ATTACH, cpu, skb=skb, buf=buf, pfn=pfn, off=off, length=length, other=uarg)

    def clone(self, cpu, new, src):
        self._add(CLONE, cpu, skb=new, other=src)

    def split(self, cpu, skb, new, keep):
        self._add(SPLIT, cpu, skb=skb, other=new, length=keep)

    def segment(self, cpu, new, src, start, length):
        self._add(SEGMENT, cpu, skb=new, other=src, off=start, length=length)

    def expand_head(self, cpu, skb):
        self._add(EXPAND_HEAD, cpu, skb=skb)

    def coalesce(self, cpu, dst, src):
        self._add(COALESCE, cpu, skb=dst, other=src)

    def pull(self, cpu, skb, length):
        self._add(PULL, cpu, skb=skb, length=length)

    def zc_complete(self, cpu, uarg):
        self._add(ZC_COMPLETE, cpu, other=uarg)

    def free(self, cpu, skb, flags=0, other=-1, atomics=0):
        self._add(FREE, cpu, skb=skb, other=other, length=atomics, kind=flags)

    def buf_release(self, cpu, buf, frags=0, pfn=-1):
        self._add(BUF_RELEASE, cpu, buf=buf, pfn=pfn, length=frags)

    def uarg_get(self, cpu, uarg, flags=0, buf=-1):
        self._add(UARG_GET, cpu, other=uarg, buf=buf, kind=flags)

    def uarg_put(self, cpu, uarg, flags=0, buf=-1):
        self._add(UARG_PUT, cpu, other=uarg, buf=buf, kind=flags)

    def grow(self, cpu, skb, buf, length, uarg=-1):
        self._add(GROW, cpu, skb=skb, buf=buf, length=length, other=uarg)

    def build(self) -> np.ndarray:
        return np.array(self._rows, dtype=EVENT) if self._rows else empty()

    @staticmethod
    def from_rows(rows: list[tuple]) -> np.ndarray:
        """A trace from (op, kind, cpu, skb, other, buf, pfn, off, len) tuples."""
        return np.array(rows, dtype=EVENT) if rows else empty()


def describe(trace: np.ndarray, limit: int | None = 40):
    """The first ``limit`` events as a table with op names."""
    import pandas as pd

    t = trace if limit is None else trace[:limit]
    df = pd.DataFrame({name: t[name] for name in EVENT.names})
    df["op"] = [OP_NAMES[o] for o in t["op"]]
    df["kind"] = [KIND_NAMES[k] if op == ALLOC and k < N_KINDS else "" for op, k in zip(t["op"], t["kind"])]
    return df


def counts(trace: np.ndarray) -> dict[str, int]:
    """How many events of each op the trace holds."""
    c = np.bincount(trace["op"], minlength=N_OPS)
    return {OP_NAMES[i]: int(c[i]) for i in range(N_OPS)}


def columns(trace: np.ndarray) -> dict[str, np.ndarray]:
    """The trace's fields as contiguous arrays (what compiled replays read)."""
    return {name: np.ascontiguousarray(trace[name]) for name in EVENT.names}


def tile(trace: np.ndarray, times: int) -> np.ndarray:
    """Repeat a complete trace. Ids may be reused because a complete trace frees everything it made."""
    return np.tile(trace, times)


def sizes(trace: np.ndarray) -> dict[str, int]:
    """Id-space sizes the engine needs for this trace."""
    alloc = trace[trace["op"] == ALLOC]
    n_pfn = int((alloc["pfn"] + alloc["len"]).max()) if len(alloc) else 0
    n_buf = int(max(trace["buf"].max(initial=-1), -1)) + 1
    uarg_ops = np.isin(trace["op"], (ATTACH, GROW, ZC_COMPLETE, UARG_GET, UARG_PUT))
    n_uarg = int(trace["other"][uarg_ops].max(initial=-1)) + 1
    skb_ids = np.concatenate([trace["skb"], trace["other"][np.isin(trace["op"], (CLONE, SPLIT, SEGMENT, COALESCE))]])
    n_skb = int(skb_ids.max(initial=-1)) + 1
    att = trace[trace["op"] == ATTACH]
    max_frag_pages = int(((att["off"] + att["len"] + PAGE_SIZE - 1) // PAGE_SIZE).max(initial=1))
    return {"n_pfn": n_pfn, "n_buf": n_buf, "n_uarg": n_uarg, "n_skb": n_skb, "max_frag_pages": max_frag_pages,
            "n_cpu": cpus(trace)}


def cpus(trace: np.ndarray) -> int:
    """CPU ids a replay of ``trace`` may name: its events' CPUs and the other CPU of deferred frees."""
    deferred = trace["other"][(trace["op"] == FREE) & ((trace["kind"] & FREE_FLAGS) != 0)]
    return max(int(trace["cpu"].max(initial=0)), int(deferred.max(initial=0))) + 1
