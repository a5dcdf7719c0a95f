"""A pipe's ring of ``pipe_buffer``s between a source and a socket, over time (chapter 05).

The pipe (v6.18; the same in v6.12 but for the anonymous pipe's spare pages, one before 6.15). A
pipe is a ring of ``pipe_buffer`` slots: ``PIPE_DEF_BUFFERS`` (16) by default
(include/linux/pipe_fs_i.h), up to ``pipe-max-size`` (1 MiB, ``pipe_max_size`` in fs/pipe.c) with
``F_SETPIPE_SZ`` (``pipe_set_size()``). A buffer is one page, or part of one, and a
``pipe_buf_operations``: ``confirm``, ``release`` (the buffer's destructor, ``pipe_buf_release()``),
``try_steal`` (take the page over) and ``get`` (one more reference, for ``tee()``).
:data:`BUFFER_OPS` lists what each source's buffers do.

The sources. ``splice`` from a file: ``filemap_splice_read()`` -> ``splice_folio_into_pipe()``, one
buffer per page of a page-cache folio, ``folio_get()`` for each (``page_cache_pipe_buf_ops``,
mm/filemap.c). ``vmsplice``: ``iter_to_pipe()`` takes user pages with ``iov_iter_get_pages2()`` (GUP
refs, not pins), 16 per call, one buffer per page (``user_page_pipe_buf_ops``, fs/splice.c); the
pages stay mapped in the process, which may write to them at any time. ``sendfile``: ``do_splice_direct()``
-> ``splice_direct_to_actor()`` reads into a pipe private to the task (``alloc_pipe_info()``:
``PIPE_DEF_BUFFERS`` slots), at most what fits (``do_splice_read()``), and empties it into the socket,
in turns. The reader, ``splice_to_socket()``, gathers up to 16 buffers (``struct bio_vec bvec[16]``),
calls ``sock_sendmsg()`` with ``MSG_SPLICE_PAGES`` and ``pipe_buf_release()``s every buffer it sent
as soon as that returns (fs/splice.c).

The rules compared (:data:`RULES`):

``today``
    The pipe releases its buffers when ``sendmsg()`` returns; the skb frags keep the pages with
    ``get_page()`` refs until the data is acknowledged and the device is done.
``owner``
    A destructor design: ``splice_to_socket()`` hands the buffers it sent to the send's owner (they
    leave the ring, the slots are free at once); the frags hold the owner; its destructor calls each
    buffer's ``->release()`` when the network is done with the data.
``pipe_holds``
    The naive destructor: the buffers stay in their slots until the network is done. The ring then
    caps what is in flight: at most ``ring`` pages per completion time (Little's law).

The simulation. One thread moves ``n_pages`` pages: it fills the pipe (up to ``splice_pages`` per
call, as many as there are free slots) and empties it into the socket, ``sendmsg()`` by
``sendmsg()``, each of at most 16 buffers. The socket queues at most ``sndbuf_pages`` pages that the
network still holds (``sk_sndbuf``); the wire sends ``wire_ps`` picoseconds per page, in order; the
network lets go of a ``sendmsg()``'s pages ``done_ps`` after its last byte left (the ACK and the TX
completion). CPU time is not simulated: a ``sendmsg()`` returns when it has queued its pages. With
``reuse_wait`` the application writes its buffer again only after the network is done with it (a
completion it could read, as the owner's destructor could signal); without it, right after the
``splice()`` that sent it returned, and :func:`simulate` counts the pages it rewrote while the
network still held them (the vmsplice hazard, fs/splice.c, vmsplice(2)).

This module is the specification: :func:`simulate` here is the loop in plain Python; :mod:`.pipe`, the
module the package imports, runs the same loop compiled (tests/test_pipe.py compares them). Time is
integer picoseconds so both agree exactly.
"""

from __future__ import annotations

import numpy as np

PAGE_SIZE = 4096
PIPE_DEF_BUFFERS = 16  # include/linux/pipe_fs_i.h, v6.18 = v6.12
PIPE_MAX_SIZE = 1 << 20  # pipe_max_size, fs/pipe.c (/proc/sys/fs/pipe-max-size), v6.18 = v6.12
SPLICE_BVECS = 16  # splice_to_socket(): struct bio_vec bvec[16], fs/splice.c, v6.18 = v6.12
GUP_BATCH = 16  # iter_to_pipe(): struct page *pages[16], fs/splice.c, v6.18 = v6.12
# net.ipv4.tcp_wmem's default maximum, what send-buffer autotuning grows sk_sndbuf to
# (Documentation/networking/ip-sysctl.rst, tcp_wmem: max 4MB)
TCP_WMEM_MAX = 4 << 20
RULES = ("today", "owner", "pipe_holds")
TODAY, OWNER, PIPE_HOLDS = range(3)
SOURCES = ("splice", "vmsplice", "sendfile")

#: The pipe_buffer operations of each source's buffers, and what filling the pipe takes (v6.18 = v6.12).
BUFFER_OPS = (
    {"source": "splice (file)", "ops": "page_cache_pipe_buf_ops",
     "fill": "splice_folio_into_pipe(): folio_get() per page-sized buffer",
     "release": "page_cache_pipe_buf_release(): put_page()",
     "try_steal": "page_cache_pipe_buf_try_steal(): remove_mapping() if the folio can leave the page cache",
     "get": "generic_pipe_buf_get(): try_get_page()",
     "where": "mm/filemap.c, fs/splice.c"},
    {"source": "vmsplice (user memory)", "ops": "user_page_pipe_buf_ops",
     "fill": "iter_to_pipe(): iov_iter_get_pages2(), a GUP ref per page, 16 pages per call",
     "release": "page_cache_pipe_buf_release(): put_page()",
     "try_steal": "user_page_pipe_buf_try_steal(): only a SPLICE_F_GIFT buffer",
     "get": "generic_pipe_buf_get(): try_get_page()",
     "where": "fs/splice.c"},
    {"source": "sendfile", "ops": "page_cache_pipe_buf_ops (the task's own pipe, 16 slots)",
     "fill": "splice_direct_to_actor() -> do_splice_read(): as splice from the file, at most the free slots",
     "release": "page_cache_pipe_buf_release(): put_page()",
     "try_steal": "as splice (file)",
     "get": "generic_pipe_buf_get(): try_get_page()",
     "where": "fs/splice.c, fs/read_write.c do_sendfile()"},
    {"source": "write() into a pipe", "ops": "anon_pipe_buf_ops",
     "fill": "anon_pipe_write(): a fresh page per buffer, the data copied in",
     "release": "anon_pipe_buf_release() -> anon_pipe_put_page(): put_page(), or keep it as a spare page (two since "
                "6.15, one before)",
     "try_steal": "anon_pipe_buf_try_steal(): if page_count() is 1",
     "get": "generic_pipe_buf_get(): try_get_page()",
     "where": "fs/pipe.c"},
)

# Columns of the record the simulation writes per sendmsg().
R_SEND, R_PAGES, R_WIRE_END, R_DONE, R_ROUND, R_EARLY = range(6)
N_R = 6


def sendmsg_pages(ring: int, splice_pages: int) -> int:
    """Pages one ``sendmsg()`` of ``splice_to_socket()`` carries when the pipe is full: at most 16."""
    return max(1, min(SPLICE_BVECS, ring, splice_pages))


def check(n_pages, ring, splice_pages, wire_ps, done_ps, sndbuf_pages, rule, reuse_wait) -> None:
    for name, v, lo in (("n_pages", n_pages, 0), ("ring", ring, 1), ("splice_pages", splice_pages, 1),
                        ("wire_ps", wire_ps, 1), ("done_ps", done_ps, 0), ("sndbuf_pages", sndbuf_pages, 1)):
        if int(v) != v or v < lo:
            raise ValueError(f"{name} = {v!r} is not allowed: expected an integer >= {lo}")
    if rule not in range(len(RULES)):
        raise ValueError(f"rule = {rule!r} is not allowed: expected 0..{len(RULES) - 1} ({', '.join(RULES)})")


def simulate(n_pages: int, ring: int, splice_pages: int, wire_ps: int, done_ps: int, sndbuf_pages: int,
             rule: int, reuse_wait: bool = False) -> np.ndarray:
    """One row per ``sendmsg()`` (columns ``R_*``): the specification, in plain Python."""
    check(n_pages, ring, splice_pages, wire_ps, done_ps, sndbuf_pages, rule, reuse_wait)
    rows: list[list[int]] = []
    now = wire_free = 0
    oldest = inflight = 0  # the first sendmsg the network still holds; the pages it holds
    left = n_pages
    rnd = 0
    prev_round_done = 0  # when the network let go of the application buffer's last use

    def retire(t):
        nonlocal oldest, inflight
        while oldest < len(rows) and rows[oldest][R_DONE] <= t:
            inflight -= rows[oldest][R_PAGES]
            oldest += 1

    while left > 0:
        if reuse_wait:  # the application waits for its buffer to be free
            now = max(now, prev_round_done)
        early = 0
        if rnd > 0 and not reuse_wait:  # it writes its buffer again now: what the network still holds
            for r in rows:
                if r[R_ROUND] == rnd - 1 and r[R_DONE] > now:
                    early += r[R_PAGES]
        chunk = min(splice_pages, left)
        first_row = len(rows)
        while chunk > 0:
            retire(now)
            used = inflight if rule == PIPE_HOLDS else 0
            while used >= ring:  # every slot holds a buffer the network has not let go of
                now = rows[oldest][R_DONE]
                retire(now)
                used = inflight
            fill = min(ring - used, chunk)
            while fill > 0:
                k = min(SPLICE_BVECS, fill)
                retire(now)
                while inflight + k > sndbuf_pages and oldest < len(rows):  # sk_stream_wait_memory()
                    now = rows[oldest][R_DONE]
                    retire(now)
                start = max(now, wire_free)
                end = start + k * wire_ps
                wire_free = end
                rows.append([now, k, end, end + done_ps, rnd, 0])
                inflight += k
                fill -= k
                chunk -= k
                left -= k
        if len(rows) > first_row:
            rows[first_row][R_EARLY] = early
            prev_round_done = rows[-1][R_DONE]
        rnd += 1
    return np.array(rows, dtype=np.int64).reshape(-1, N_R)


# ---------------------------------------------------------------- filling the pipe from the page cache
#: folio_batch's size: filemap_get_read_batch() fetches at most this many folios per batch
#: (include/linux/pagevec.h PAGEVEC_SIZE, v6.18 = v6.12).
PAGEVEC_SIZE = 31
#: What :func:`filemap_fill` counts, in the order of its result.
FILL = ("calls", "batches", "folio_pieces", "buffers", "atomics")


def check_fill(folios, call_pages: int, n_pages: int) -> None:
    for name, v, lo in (("call_pages", call_pages, 1), ("n_pages", n_pages, 0)):
        if int(v) != v or v < lo:
            raise ValueError(f"{name} = {v!r} is not allowed: expected an integer >= {lo}")
    f = np.asarray(folios)
    if f.ndim != 1 or (f < 1).any() or int(f.sum()) < n_pages:
        raise ValueError(f"folios = {folios!r} is not allowed: expected pages per folio (each >= 1), in file "
                         f"order, covering the {n_pages} pages spliced")


def filemap_fill(folios, call_pages: int, n_pages: int) -> np.ndarray:
    """Splice the first ``n_pages`` pages of a cached file into a pipe, ``call_pages`` pages per call (what the
    pipe takes: ``filemap_splice_read()`` caps a call at the free slots), over a page cache whose folios are
    ``folios`` (pages per folio, in file order). Per call, ``filemap_splice_read()`` asks ``filemap_get_pages()``
    for batches of at most :data:`PAGEVEC_SIZE` folios within the call (``filemap_get_read_batch()``:
    ``folio_try_get()`` each), fills one ``pipe_buffer`` per page (``splice_folio_into_pipe()``: ``folio_get()``
    each, whatever the folio's size) and drops each batch (``folio_batch_release()``: one put per folio)
    (mm/filemap.c, v6.18 = v6.12). A folio two calls share is fetched by each: a folio *piece*.

    Returns the totals :data:`FILL`: calls, batches (``filemap:mm_filemap_get_pages`` events), folio pieces,
    pipe buffers, and the refcount atomics of the fill = pieces (try_get) + buffers (folio_get) + pieces
    (batch put): 3 per page on order-0 page cache, 1 + 2/folio pages on large folios a call covers whole."""
    check_fill(folios, call_pages, n_pages)
    calls = batches = pieces = 0
    f, pos = 0, 0  # the folio holding page ``pos``; the first page of folio f
    start = 0
    while start < n_pages:
        end = min(n_pages, start + call_pages)
        while pos + folios[f] <= start:  # skip the folios before this call
            pos += folios[f]
            f += 1
        n, g, p = 0, f, pos
        while p < end:  # the folios this call touches
            n += 1
            p += folios[g]
            g += 1
        calls += 1
        batches += -(-n // PAGEVEC_SIZE)
        pieces += n
        start = end
    return np.array([calls, batches, pieces, n_pages, 2 * pieces + n_pages], dtype=np.int64)
