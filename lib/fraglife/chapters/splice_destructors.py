"""Chapter 05 (book/05_splice_destructors.ipynb): pipe buffers come with destructors.

What splice from a file, vmsplice from user memory and sendfile take and release per page
today (the pipe lets go when ``sendmsg()`` returns, the skb frags hold page refs) and under a
destructor design (the frags hold the send's owner, whose destructor calls each pipe buffer's
``->release()`` when the network is done): counted by the replay engine on the splice path
(:mod:`fraglife.model.workloads` ``splice_send``), the pipe's fill from the page cache and the ring
over time by the pipe model (:mod:`fraglife.model.pipe`), live by the ``vmsplice`` probe (the
hazard), the ``kcount_splice`` probe (this kernel's splice path over a grid of settings) and the
``kcount_filemap`` probe (the page cache's folios, filemap batches and pipe buffers). The model
follows the running kernel's rules or 6.12 LTS's (parameter ``kernel``; model/kernels.py). Charts
are in :mod:`fraglife.views.splice_destructors`; the contract is in :mod:`fraglife.chapters`.
"""

from __future__ import annotations

from functools import cached_property
from typing import Mapping

import numpy as np
import pandas as pd

from .. import answers, cited
from ..claims import Claim
from ..model import costs, engine, kernels, pipe, trace as T, workloads
from ..model.ledger import Ledger
from ..params import Params
from . import kit
from .kit import compare

KiB, MiB = 1 << 10, 1 << 20
PAGE = T.PAGE_SIZE
#: today's rule and the destructor design, as replay policies
POLICY = {"today": "page_ref", "owner": "owner_skb"}
RULE_LABEL = {"today": "today: page refs, pipe lets go at return",
              "owner": "owner: buffers move to the send's owner, released by its destructor",
              "pipe_holds": "pipe holds: buffers stay in their slots until the network is done"}
#: the sendmsg sizes (pages) the claims compare, whatever the run's pipe
FULL_PAGES, TWO_PAGES, ONE_PAGE = 16, 2, 1
#: how many sendmsg()s the timeline shows, per rule
TIMELINE_SENDMSGS = 12
#: who holds a sendmsg()'s pages once it returned, per rule
HOLDER = {"today": "skb page refs", "owner": "the send's owner", "pipe_holds": "the pipe's slots"}
#: Upper bounds for the library-mode claims test (tests/test_claims.py).
SMALL = {"bytes_sent": 512 * KiB}
CLAIMS_EXAMPLES = 12
#: Where the model is known not to follow a kernel count of this chapter's transfers, and why.
_TSO_CUT = ("`tcp_write_xmit()` cuts a write-queue skb to `tcp_tso_segs()` segments and to what the congestion "
            "window allows (`tso_fragment()`); `tcp_tso_autosize()` sizes those from the pacing rate and the minimum "
            "RTT (net/ipv4/tcp_output.c, v6.18), both still growing early in a connection, which is a larger share "
            "of a short transfer. The model transmits whole skbs.")
EXPECTED_GAPS: dict[tuple[str, str], str] = {
    ("splice_tso_on", "transmissions"): _TSO_CUT,
    ("splice_tso_on", "skbs_freed"): "Each `tso_fragment()` cut allocates a new write-queue skb and its clone; the "
                                     "model's whole skbs make fewer.",
}

#: The splice path today, step by step (v6.18; the same in v6.12 except which folios ext4 caches).
KERNEL_SITES = (
    ("fill (splice from a file)", "filemap_splice_read() -> filemap_get_pages() -> filemap_get_read_batch()",
     "batches of at most 31 folios within the call (PAGEVEC_SIZE), folio_try_get() on each; "
     "folio_batch_release() puts each again", "mm/filemap.c, v6.18"),
    ("fill, per page", "splice_folio_into_pipe()", "one pipe_buffer per page whatever the folio's size, "
     "folio_get() for each (page_cache_pipe_buf_ops)", "mm/filemap.c, v6.18"),
    ("which folios", "ext4_should_enable_large_folio()", "ext4 regular files in large folios since 6.16 "
     "(commit 7ac67301e82f); 6.12 caches them in order-0 pages", "fs/ext4/inode.c, v6.18"),
    ("fill (vmsplice)", "vmsplice_to_pipe() -> iter_to_pipe()",
     "iov_iter_get_pages2(): a GUP ref per page, 16 pages per call; one buffer per page "
     "(user_page_pipe_buf_ops)", "fs/splice.c, v6.18"),
    ("fill (sendfile)", "do_sendfile() -> do_splice_direct() -> splice_direct_to_actor()",
     "the task's own pipe (alloc_pipe_info(): PIPE_DEF_BUFFERS), filled by do_splice_read() with what fits, "
     "then emptied into the socket, in turns", "fs/read_write.c, fs/splice.c, fs/pipe.c, v6.18"),
    ("send", "splice_to_socket()", "up to 16 buffers into struct bio_vec bvec[16], one sock_sendmsg() with "
     "MSG_SPLICE_PAGES each, MSG_MORE on all but a call's last", "fs/splice.c, v6.18"),
    ("skbs", "tcp_sendmsg_locked()", "appends to the unsent tail skb up to the size goal; tcp_push() sends a "
     "partial tail unless it is still unsent when the next sendmsg() starts", "net/ipv4/tcp.c, v6.18"),
    ("frags", "skb_splice_from_iter() -> skb_append_pagefrags()",
     "a frag per page (part = min(PAGE_SIZE - off, len)), get_page() for each new frag", "net/core/skbuff.c, v6.18"),
    ("release", "splice_to_socket() -> pipe_buf_release() -> ->release()",
     "as soon as sock_sendmsg() returns, for every buffer fully sent: put_page()", "fs/splice.c, v6.18"),
    ("completion", "skb_release_data()", "put_page() per frag when the last skb sharing the data is freed "
     "(after the ACK and the device's TX completion)", "net/core/skbuff.c, v6.18"),
)


def ring_and_batch(params: Mapping) -> dict:
    """The run's pipe: slots, pages per splice() call, pages per sendmsg() (sendfile: the task's 16-slot pipe
    and one call for the whole transfer)."""
    if params["source"] == "sendfile":
        ring, splice_pages = pipe.PIPE_DEF_BUFFERS, max(1, params["bytes_sent"] // PAGE)
    else:
        ring, splice_pages = params["pipe_kib"] // 4, params["splice_kib"] // 4
    return {"ring": ring, "splice_pages": splice_pages, "sendmsg_pages": pipe.sendmsg_pages(ring, splice_pages)}


def timing(params: Mapping) -> dict:
    """Wire time of a page and of an skb, and the network's hold in skbs (the generator's clock)."""
    cfg = workloads.Config(mss=params.get("mss", 1448))
    gbit = params["line_gbit"]
    skb_us = cfg.size_goal * 8 / (gbit * 1e3)
    return {"skb_us": skb_us, "wire_ps": max(1, round(PAGE * 8 / gbit * 1e3)),
            "done_ps": round(params["completion_us"] * 1e6),
            "inflight": max(1, round(params["completion_us"] / skb_us)), "txc_lag": 1}


def config(params: Mapping, sendmsg_pages: int | None = None) -> dict:
    """splice_send's settings: each of its sends is one sendmsg() of splice_to_socket()."""
    k = sendmsg_pages or ring_and_batch(params)["sendmsg_pages"]
    t = timing(params)
    return {"bytes_sent": params["bytes_sent"], "mss": params["mss"], "send_size": k * PAGE,
            "loss_rate": params["loss_rate"], "cpus": params["cpus"], "seed": params["seed"],
            "inflight": t["inflight"], "txc_lag": t["txc_lag"]}


def replay(cfg: Mapping, workload: str = "splice_send") -> tuple[dict[str, Ledger], dict, dict]:
    """Ledgers of today's rule and the owner for one setting; the generator's stats; the pages that went
    through the pipe, one buffer each (a send's pipe holds whole sendmsg()s of buffers)."""
    tr, st = workloads.generate_with_stats(workload, **cfg)
    pages = {"pipe": int(tr["len"][tr["op"] == T.ALLOC].sum())}
    return {rule: engine.replay(tr, pol) for rule, pol in POLICY.items()}, st, pages


# ---------------------------------------------------------------- the pipe's fill
#: The page caches the fill table sets side by side: (label, kernel rule it needs, pages per folio or None for
#: the kcount_filemap probe's census of a file read back from disk).
CACHES = (
    ("order-0 pages (ext4 on 6.12)", None, 1),
    ("a file read back from disk (readahead's folios, measured)", "ext4_large_folios", None),
    ("a file written in 64 KiB blocks (64 KiB folios)", "ext4_large_folios", 16),
    ("2 MiB folios", "ext4_large_folios", 512),
)


def page_cache(release: str, filemap) -> tuple[np.ndarray, str]:
    """The file's page-cache folios (pages per folio, in file order) the run's kernel gives a file read back from
    disk, and where they come from: on a kernel with ext4's large folios, the folios this kernel's readahead
    cached for the kcount_filemap probe's file (its census, smallest first as readahead ramps up); else order-0
    pages (fs/ext4/inode.c, v6.12: no large folios for ext4)."""
    census = ((filemap.data.get("folios") or {}).get("cached") or {}).get("pages_per_folio")
    if not kernels.follows(release, "ext4_large_folios"):
        return np.ones(16384, dtype=np.int64), "order-0 pages (ext4 has no large folios before 6.16)"
    if not census:
        return np.ones(16384, dtype=np.int64), "order-0 pages (the kcount_filemap probe has no folio census)"
    sizes = sorted(int(k) for k in census)
    return pipe.folio_layout(census), (f"folios of {sizes[0]} to {sizes[-1]} pages, as this kernel's readahead "
                                       f"cached the kcount_filemap probe's {filemap.data['file']['bytes'] // MiB} "
                                       f"MiB file ({filemap.source})")


def fill_call_pages(params: Mapping) -> int:
    """Pages one call moves from the file into the pipe: the splice size, at most the pipe's slots
    (filemap_splice_read() caps a call at the free slots); sendfile's task pipe, 16."""
    rb = ring_and_batch(params)
    return max(1, min(rb["splice_pages"], rb["ring"]))


def fill_per_page(source: str, folios: np.ndarray, call_pages: int) -> float:
    """Refcount atomics per page to fill the pipe: from a file (splice, sendfile) what filemap_splice_read()
    takes over ``folios`` in calls of ``call_pages`` (pipe.filemap_fill: 3 per page on order-0 pages, about
    1 + 2/folio pages on large folios); vmsplice, one GUP ref per page (iter_to_pipe())."""
    if source == "vmsplice":
        return 1.0
    out = pipe.filemap_fill(folios, call_pages, int(folios.sum()))
    return float(out[4] / out[3])


def fill_table(folios_read: np.ndarray, call_pages: int, release: str) -> pd.DataFrame:
    """The fill per page cache (:data:`CACHES`): batches, folio pieces and atomics per MiB, for the run's call
    size; ``on this kernel`` says whether the run's kernel caches an ext4 file that way."""
    rows = []
    for label, rule, fp in CACHES:
        folios = folios_read if fp is None else np.full(max(1, 16384 // fp), fp, dtype=np.int64)
        out = pipe.filemap_fill(folios, call_pages, int(folios.sum()))
        mib = out[3] * PAGE / MiB
        rows.append({"page cache": label, "pipe buffers per MiB": out[3] / mib, "filemap batches per MiB": out[1] / mib,
                     "folio refs per MiB": out[2] / mib, "fill atomics per MiB": out[4] / mib,
                     "per page": out[4] / out[3],
                     "ext4 on this kernel": "yes" if (rule is None) != kernels.follows(release, "ext4_large_folios")
                     else "no"})
    return pd.DataFrame(rows)


def rule_rows(leds: Mapping[str, Ledger], pages: Mapping, nbytes: int, units: costs.UnitCosts, gbit: float,
              source: str, fill_pp: float = 1.0) -> list[dict]:
    """Per rule: what is taken and released per MiB, by event, with the pipe's fill (``fill_pp`` atomics per page
    filled: :func:`fill_per_page`), in count and time."""
    mib = nbytes / MiB
    fill = fill_pp * pages["pipe"] / mib  # the same under both rules
    rows = []
    for rule, led in leds.items():
        by = led.ref_by_op
        priced = costs.price_ledger(led, units, nbytes)
        ns = costs.total(priced) + fill * units["local_atomic_ns"]
        rows.append({
            "source": source, "rule": rule,
            "pipe fill": fill,
            "taken at attach": by[T.ATTACH] / mib,
            "taken on retransmit, GSO, unclone": (by[T.SEGMENT] + by[T.SPLIT] + by[T.EXPAND_HEAD] + by[T.CLONE]) / mib,
            "released when sendmsg() returns": by[T.BUF_RELEASE] / mib,
            "released by skbs and ACKs": (by[T.FREE] + by[T.PULL]) / mib,
            "dataref and ubuf_info": (led.dataref_atomics + led.uarg_atomics) / mib,
            "atomics_per_mib": led.atomics / mib + fill,
            "ns_per_mib": ns, "core_share": costs.core_share(ns, gbit),
            "clean": led.clean, "uaf_pages": led.uaf_pages,
        })
    return rows


def pipe_runs(params: Mapping, n_pages: int | None = None, reuse_wait: bool = False) -> dict[str, np.ndarray]:
    """The pipe model's sendmsg() rows per rule for the run's pipe and timing."""
    rb, t = ring_and_batch(params), timing(params)
    n = n_pages if n_pages is not None else params["bytes_sent"] // PAGE
    return {rule: pipe.simulate(n, rb["ring"], rb["splice_pages"], t["wire_ps"], t["done_ps"],
                                pipe.TCP_WMEM_MAX // PAGE, i, reuse_wait)
            for i, rule in enumerate(pipe.RULES)}


def throughput_table(runs: Mapping[str, np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame([{"rule": rule, **pipe.summary(R)} for rule, R in runs.items()])


def timeline(runs: Mapping[str, np.ndarray], wire_ps: int, sendmsgs: int = TIMELINE_SENDMSGS) -> pd.DataFrame:
    """The first ``sendmsgs`` sendmsg()s of each rule as phases (tidy: rule, who holds the pages, sendmsg,
    phase, start_us, end_us): queued in the socket, on the wire, waiting for the ACK and TX completion."""
    rows = []
    for rule, R in runs.items():
        for i, r in enumerate(R[:sendmsgs]):
            wire_start = r[pipe.R_WIRE_END] - r[pipe.R_PAGES] * wire_ps
            for phase, a, b in (("queued in the socket", r[pipe.R_SEND], wire_start),
                                ("on the wire", wire_start, r[pipe.R_WIRE_END]),
                                ("ACK and TX completion", r[pipe.R_WIRE_END], r[pipe.R_DONE])):
                if b > a:
                    rows.append({"rule": rule, "held by": HOLDER[rule], "sendmsg": i, "phase": phase,
                                 "start_us": a / 1e6, "end_us": b / 1e6})
    return pd.DataFrame(rows)


def vmsplice_reuse(params: Mapping) -> pd.DataFrame:
    """The application rewrites its one vmsplice buffer when splice() returns (today, it cannot know better)
    or when the owner's destructor has said the network is done with it."""
    rows = []
    for label, rule, wait in (("today: rewrite at return", pipe.TODAY, False),
                              ("owner: rewrite after its completion", pipe.OWNER, True)):
        R = pipe_runs(dict(params, source="vmsplice"), reuse_wait=wait)[pipe.RULES[rule]]
        s = pipe.summary(R)
        rows.append({"application": label, "pages_sent": s["pages"], "rewritten_in_flight": s["early_pages"],
                     "share_rewritten": s["early_pages"] / s["pages"] if s["pages"] else 0.0,
                     "gbit_per_s": s["gbit_per_s"]})
    return pd.DataFrame(rows)


def kernel_sites() -> pd.DataFrame:
    return pd.DataFrame(list(KERNEL_SITES), columns=["step", "kernel path", "what it takes or drops", "source"])


def buffer_ops() -> pd.DataFrame:
    return pd.DataFrame(list(pipe.BUFFER_OPS))


# ---------------------------------------------------------------- the model against this kernel
def model_inputs(run: Mapping) -> dict:
    """The generator settings that reproduce one splice transfer: each of its splice() calls is one send
    (the probe's pipe holds a whole call, and the tail of each call is pushed, as a send's is), its MSS and
    TSO setting, and the retransmissions it measured as the loss."""
    cwnd = run.get("tcp_info", {}).get("tx", {}).get("snd_cwnd", 10)
    cfg = workloads.Config(mss=run["mss"])
    return {"workload": "splice_gso" if run["software_gso"] else "splice_send",
            "bytes_sent": min(run["bytes"], 16 * MiB), "mss": run["mss"], "send_size": run["chunk"],
            "loss_rate": run.get("retransmit_rate", 0.0),
            "inflight": max(1, round(cwnd / (cfg.size_goal // cfg.mss))), "txc_lag": 0}


def model_quantities(inputs: Mapping) -> dict:
    cfg = {k: v for k, v in inputs.items() if k != "workload"}
    tr, st = workloads.generate_with_stats(inputs["workload"], **cfg)
    mib = cfg["bytes_sent"] / MiB
    return {"transmissions": st["transmissions"] / mib, "retransmits": st["retransmits"] / mib,
            "skbs_freed": int((tr["op"] == T.FREE).sum()) / mib, "gso_segments": st["gso_segments"] / mib,
            "completions": 0.0}


#: The model against the kcount_splice probe's default-buffer runs: a file spliced through a pipe into TCP over
#: veth, counted by tracepoints (the chapter's comparison is the probe's grid, :func:`comparison_rows`).
AGAINST = compare.Against("05_splice_destructors", "kcount_splice", model_inputs, model_quantities, EXPECTED_GAPS)
CHAPTER = "05_splice_destructors"

def grid_reason(run: Mapping, quantity: str) -> str:
    """The kernel mechanism the send rule leaves out for ``quantity`` of a kcount_splice grid transfer ("" if
    none): where send calls found the previous tail unsent, the kernel had cut it (compare.TAIL_SPLIT: one more
    skb sent and freed; for software GSO, fewer skbs to segment, compare.GSO_SPLIT)."""
    return compare.grid_reason(run, quantity)


#: What each kcount_filemap quantity means, in the model and in the kernel's observation.
FILEMAP_QUANTITIES = {
    "filemap_batches": "batches filemap_splice_read() fetched (filemap:mm_filemap_get_pages on the file's inode) "
                       "per MiB; the model: at most 31 folios per batch within a call, over the file's measured "
                       "folios (pipe.filemap_fill)",
    "bytes_per_slot": "bytes one splice() call moved from the file into a pipe of one slot, at a file offset; the "
                      "model: one pipe_buffer per page whatever the folio (splice_folio_into_pipe())",
    "bytes_per_16_slots": "the same into a pipe of 16 slots",
    "largest_folio_pages": "pages in the file's largest page-cache folio (/proc/kpageflags); the model: ext4's "
                           "largest (EXT4_MAX_PAGECACHE_ORDER with 4 KiB blocks: PMD order, 512 pages) where the "
                           "kernel has ext4's large folios, else 1",
}


def filemap_rows(filemap, release: str) -> pd.DataFrame:
    """The model's fill against the kcount_filemap probe: filemap batches per MiB for each splice run (fed the
    call size and the folios the probe found), the bytes a pipe of 1 and of 16 slots takes at each offset
    observed, and the largest folio, one :func:`compare.row` each."""
    d, src = filemap.data, filemap.source
    if not d.get("splice"):
        return pd.DataFrame(columns=compare.COLUMNS)
    rows = []
    for s in d["splice"]:
        n = s["bytes"] // PAGE
        out = pipe.filemap_fill(pipe.folio_layout(d["folios"]["cached"]["pages_per_folio"], n), s["call"] // PAGE, n)
        mib = s["bytes"] / MiB
        k = s["per_mib"]["filemap:mm_filemap_get_pages"]
        rows.append(compare.row(CHAPTER, s["name"], "filemap_batches", k["value"], out[1] / mib, mib=mib,
                                low=k["low"], high=k["high"], measured=src,
                                how_counted=FILEMAP_QUANTITIES["filemap_batches"]))
    pb, size = d["pipe_buffer"], d["file"]["bytes"]
    for key, slots in (("1_slot", 1), ("16_slots", 16)):
        q = "bytes_per_slot" if slots == 1 else "bytes_per_16_slots"
        for off, moved in zip(pb["offsets"], pb[key]["moved"]):
            model = min(slots * PAGE - off % PAGE, size - off)
            rows.append(compare.row(CHAPTER, f"pipe of {slots} slot{'s' if slots > 1 else ''} at offset {off}", q,
                                    float(moved), float(model), mib=1.0, slack_events=0.0, measured=src,
                                    how_counted=FILEMAP_QUANTITIES[q]))
    largest = max(int(k) for k in d["folios"]["cached"]["pages_per_folio"])
    model = 512 if kernels.follows(release, "ext4_large_folios") else 1
    rows.append(compare.row(CHAPTER, f"{size // MiB} MiB file on {d['file']['filesystem']}", "largest_folio_pages",
                            float(largest), float(model), mib=1.0, slack_events=0.0, measured=src,
                            how_counted=FILEMAP_QUANTITIES["largest_folio_pages"]))
    return pd.DataFrame(rows, columns=compare.COLUMNS)


def comparison_rows(splice, filemap, release: str) -> pd.DataFrame:
    """The chapter's model against the running kernel: the kcount_splice grid (skbs transmitted and freed,
    software GSO's segments, sendmsg passes; compare.grid_rows fed each setting, with :func:`grid_reason`) and
    the kcount_filemap fill (:func:`filemap_rows`)."""
    return compare.table([compare.grid_rows(splice, "grid", CHAPTER, grid_reason), filemap_rows(filemap, release)])


def comparison_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per quantity: settings compared, how many agree, how many do not and carry their reason, how many do not
    and carry none, and the model / kernel ratio's range."""
    c = compare.compared(table)
    rows = []
    for q, g in c.groupby("quantity", sort=False):
        off = g[g.agrees == False]  # noqa: E712
        rows.append({"quantity": q, "compared": len(g), "agree": int((g.agrees == True).sum()),  # noqa: E712
                     "explained": int((off.reason != "").sum()), "unexplained": int((off.reason == "").sum()),
                     "model / kernel": f"{g.ratio.min():.2f} to {g.ratio.max():.2f}"})
    return pd.DataFrame(rows)


class Results(compare.Compares):
    """Chapter 05's analyses for one parameter set, each computed once on first use."""

    AGAINST = AGAINST

    def __init__(self, params: Mapping):
        self.P = Params.of(params)
        self.pipe = ring_and_batch(self.P)
        self.timing = timing(self.P)
        self.cfg = config(self.P)

    #: the page cache's folios, filemap batches and pipe buffers of this kernel (the full 64 MiB file)
    filemap = kit.probe_result("kcount_filemap", quick=False)

    @cached_property
    def release(self) -> str:
        """The release whose rules the model follows (parameter kernel: the measurements' kernel, or 6.12)."""
        return kit.kernel_release(self.P.kernel, self.P.measurements, self.filemap)

    @cached_property
    def measured_release(self) -> str:
        """The kernel the probes' counts come from: what the comparison follows, whatever the kernel parameter."""
        return kit.kernel_release("running", self.P.measurements, self.filemap)

    @cached_property
    def folios(self) -> tuple[np.ndarray, str]:
        """The file's page-cache folios on the run's kernel (pages per folio, file order) and where they come from."""
        return page_cache(self.release, self.filemap)

    def fill_pp(self, params: Mapping | None = None) -> float:
        """Refcount atomics per page to fill the pipe for ``params`` (default the run's)."""
        p = self.P if params is None else params
        return fill_per_page(p["source"], self.folios[0], fill_call_pages(p))

    @cached_property
    def fill(self) -> pd.DataFrame:
        """The pipe's fill from a file on each page cache (:data:`CACHES`) at the run's call size."""
        return fill_table(self.folios[0] if kernels.follows(self.release, "ext4_large_folios")
                          else page_cache(kernels.NEWEST, self.filemap)[0], fill_call_pages(self.P), self.release)

    @cached_property
    def kernels(self) -> pd.DataFrame:
        """The run's headline numbers on the running kernel and on 6.12 LTS, side by side, with the rules that
        differ between them and this chapter follows."""
        other = Results(dict(self.P, kernel="6.12" if self.P.kernel == "running" else "running"))
        other.__dict__.update({k: self.__dict__[k] for k in ("units", "filemap") if k in self.__dict__})
        pair = (self, other) if self.P.kernel == "running" else (other, self)
        rows = []
        for R in pair:
            h = R.headline
            large = kernels.follows(R.release, "ext4_large_folios")
            rows.append({"kernel": kit.kernel_label(R.release),
                         "ext4 page cache": "large folios (measured)" if large else "order-0 pages",
                         "fill atomics per page": R.fill_pp(), "today atomics per MiB": h["today_atomics_per_mib"],
                         "owner atomics per MiB": h["owner_atomics_per_mib"],
                         "owner saves, %": round(100 * h["owner_saving"], 1)})
        return pd.DataFrame(rows)

    @cached_property
    def rules_that_differ(self) -> pd.DataFrame:
        """The versioned rules chapter 05 follows that differ between the running kernel and 6.12 LTS."""
        a, b = kit.kernel_release("running", self.P.measurements, self.filemap), kernels.LTS
        return pd.DataFrame([{"rule": r.name, "changed in": r.changed_in, "6.12": r.before, "since": r.after,
                              "source": r.cite_after} for r in kernels.differences(a, b) if "05" in r.chapters])

    @cached_property
    def transfers(self) -> pd.DataFrame:
        """The kcount_splice grid's settings as the model is fed them (and what the kernel decided: the tail
        share)."""
        grid = self.kernel.data.get("grid", [])
        return pd.DataFrame([{"transfer": r["name"], **compare.grid_inputs({**r, "kernel": r.get("kernel")
                                                                               or self.kernel.kernel})}
                             for r in grid])

    @cached_property
    def comparison(self) -> pd.DataFrame:
        """The model against the running kernel: the kcount_splice grid and the kcount_filemap fill, one row per
        setting and quantity (compare's row format)."""
        return comparison_rows(self.kernel, self.filemap, self.measured_release)

    @cached_property
    def live_grid(self) -> pd.DataFrame:
        """The grid settings this run measured live (a quick kcount_splice run measures the defaults,
        ``kcount_splice.LIVE_GRID``, and takes the rest of the grid from the recording) against the recording's
        counts of the same settings and the model fed the live transfer: one row per setting and quantity (none
        when the whole grid is the recording)."""
        cols = ["transfer", "quantity", "kernel (live)", "kernel (recorded)", "model", "live / recorded", "agrees"]
        live = set(self.kernel.data.get("grid_live", [])) if self.kernel.source == "live" else set()
        if not live:
            return pd.DataFrame(columns=cols)
        rec = kit.probe("kcount_splice", "recorded")
        then = compare.grid_rows(rec, "grid", CHAPTER, grid_reason).set_index(["transfer", "quantity"]).kernel
        now = self.comparison[self.comparison.transfer.isin(live)]
        rows = [{"transfer": r.transfer, "quantity": r.quantity, "kernel (live)": r.kernel,
                 "kernel (recorded)": then.get((r.transfer, r.quantity)), "model": r.model, "agrees": r.agrees}
                for r in now.itertuples()]
        t = pd.DataFrame(rows, columns=cols)
        t["live / recorded"] = t["kernel (live)"] / t["kernel (recorded)"]
        return t

    @cached_property
    def comparison_table(self) -> pd.DataFrame:
        """Every row, the columns the chapter shows, the reason only where the model does not agree."""
        t = self.comparison
        return t[compare.TABLE_COLUMNS].assign(reason=t.reason.where(t.agrees == False, ""))  # noqa: E712

    @cached_property
    def comparison_summary(self) -> pd.DataFrame:
        return comparison_summary(self.comparison)

    @cached_property
    def setup(self) -> pd.DataFrame:
        """The run's pipe and timing, each with where it comes from."""
        P, rb, t = self.P, self.pipe, self.timing
        rows = [
            ("pipe slots", f"{rb['ring']} ({rb['ring'] * 4} KiB)",
             "sendfile: alloc_pipe_info(), PIPE_DEF_BUFFERS" if P.source == "sendfile" else "parameter pipe_kib"),
            ("pages per splice() call", f"{rb['splice_pages']}",
             "sendfile: the whole count" if P.source == "sendfile" else "parameter splice_kib"),
            ("pages per sendmsg()", f"{rb['sendmsg_pages']}", "splice_to_socket(): bvec[16], the pipe's contents"),
            ("wire time of a page", f"{t['wire_ps'] / 1e6:.3f} us", f"4 KiB at line_gbit = {P.line_gbit}"),
            ("network hold after the wire", f"{P.completion_us:g} us", "parameter completion_us (ACK, TX completion)"),
            ("skbs in flight (replay)", f"{t['inflight']}", "completion_us / wire time of a full skb"),
            ("socket's send buffer", f"{pipe.TCP_WMEM_MAX >> 20} MiB", "tcp_wmem's default maximum, ip-sysctl.rst"),
            ("kernel rules", kit.kernel_label(self.release), "parameter kernel (model/kernels.py)"),
            ("the file's page cache", "large folios" if kernels.follows(self.release, "ext4_large_folios")
             else "order-0 pages", "kcount_filemap probe; ext4_large_folios (6.16)"),
            ("fill atomics per page", f"{self.fill_pp():.2f}", "filemap_splice_read() over those folios"
             if P.source != "vmsplice" else "iter_to_pipe(): a GUP ref per page"),
        ]
        return pd.DataFrame(rows, columns=["quantity", "value", "from"])

    @cached_property
    def units(self) -> costs.UnitCosts:
        return kit.unit_costs(self.P.measurements)

    @cached_property
    def replays(self) -> tuple[dict[str, Ledger], dict, int]:
        return replay(self.cfg)

    @cached_property
    def rules(self) -> pd.DataFrame:
        """What each rule takes and releases per MiB for the run's source, pipe and send size."""
        leds, _st, pages = self.replays
        return pd.DataFrame(rule_rows(leds, pages, self.P.bytes_sent, self.units, self.P.line_gbit, self.P.source,
                                      self.fill_pp()))

    @cached_property
    def time_table(self) -> pd.DataFrame:
        """The run's rules in time: atomics and ns per MiB, the share of one core at the line rate, in percent."""
        t = self.rules[["rule", "atomics_per_mib", "ns_per_mib", "core_share"]].copy()
        t["core_share"] = (100 * t["core_share"]).round(3)
        return t.rename(columns={"core_share": f"% of a core at {self.P.line_gbit} Gbit/s"}).round(1)

    @cached_property
    def dma(self) -> pd.DataFrame:
        """What a real NIC adds per frag of the run's splice: mapping each for DMA (cited: veth maps nothing),
        beside today's rule priced here."""
        tr, _st = workloads.generate_with_stats("splice_send", **self.cfg)
        today = float(self.rules.set_index("rule").loc["today", "ns_per_mib"])
        return kit.dma_per_frag(tr, self.P.bytes_sent, today, f"today's rule, {self.P.source}")

    @cached_property
    def sources(self) -> pd.DataFrame:
        """The same for each source at realistic sizes: splice and vmsplice through a 64 KiB pipe (the
        default) and a 1 MiB one (pipe-max-size), sendfile through its task's 16-slot pipe."""
        rows = []
        for source, pipe_kib in (("splice", 64), ("splice", 1024), ("vmsplice", 64), ("vmsplice", 1024),
                                 ("sendfile", 64)):
            p = dict(self.P, source=source, pipe_kib=pipe_kib, splice_kib=max(self.P.splice_kib, pipe_kib))
            leds, _st, pages = replay(config(p))
            label = f"{source}, {pipe_kib} KiB pipe" if source != "sendfile" else "sendfile (16-slot pipe)"
            rows += rule_rows(leds, pages, p["bytes_sent"], self.units, self.P.line_gbit, label, self.fill_pp(p))
        return pd.DataFrame(rows)

    @cached_property
    def sendmsg_sizes(self) -> pd.DataFrame:
        """Atomics per MiB of both rules with 1, 2 and 16 pages per sendmsg(), the run's other settings."""
        rows = []
        for k in (ONE_PAGE, TWO_PAGES, 4, 8, FULL_PAGES):
            leds, _st, pages = replay(config(self.P, k))
            for r in rule_rows(leds, pages, self.P.bytes_sent, self.units, self.P.line_gbit, self.P.source,
                               self.fill_pp()):
                rows.append({"sendmsg_pages": k, "rule": r["rule"], "atomics_per_mib": r["atomics_per_mib"],
                             "ns_per_mib": r["ns_per_mib"], "clean": r["clean"]})
        return pd.DataFrame(rows)

    @cached_property
    def pipe_runs(self) -> dict[str, np.ndarray]:
        return pipe_runs(self.P)

    @cached_property
    def throughput(self) -> pd.DataFrame:
        """Per rule: throughput, hold time, pages in flight; for the slot-holding rule, the ring's cap."""
        t = throughput_table(self.pipe_runs).drop(columns=["early_pages", "seconds"])
        cap = self.pipe["ring"] * PAGE * 8 / (t["hold_us"] * 1e3)
        t["ring_cap_gbit"] = cap.where(t.rule == "pipe_holds")
        return t

    @cached_property
    def timeline(self) -> pd.DataFrame:
        return timeline(self.pipe_runs, self.timing["wire_ps"])

    vmsplice_probe = kit.probe_result("vmsplice", quick=False)

    @cached_property
    def vmsplice_cases(self) -> pd.DataFrame:
        return self.vmsplice_probe.frame().reset_index()

    @cached_property
    def vmsplice_reuse(self) -> pd.DataFrame:
        return vmsplice_reuse(self.P)

    @cached_property
    def panel(self) -> pd.DataFrame:
        """Per rule (pipe_holds takes what the owner takes): atomics and ns per MiB, throughput, hold time and pages
        in flight: the panel's table, and the numbers the text states."""
        r, tp = self.rules.set_index("rule"), self.throughput.set_index("rule")
        return pd.DataFrame([{"rule": rule, "atomics_per_mib": r.loc["owner" if rule == "pipe_holds" else rule,
                                                                      "atomics_per_mib"],
                              "ns_per_mib": r.loc["owner" if rule == "pipe_holds" else rule, "ns_per_mib"],
                              "gbit_per_s": tp.loc[rule, "gbit_per_s"], "hold_us": tp.loc[rule, "hold_us"],
                              "inflight_pages": tp.loc[rule, "mean_inflight_pages"]} for rule in pipe.RULES])

    @cached_property
    def headline(self) -> dict:
        r = self.rules.set_index("rule")
        tp = self.throughput.set_index("rule")
        reuse = self.vmsplice_reuse
        today, owner = r.loc["today"], r.loc["owner"]
        return {
            "owner_saving": 1 - float(owner.atomics_per_mib / today.atomics_per_mib),
            "today_atomics_per_mib": float(today.atomics_per_mib),
            "owner_atomics_per_mib": float(owner.atomics_per_mib),
            "sendmsg_pages": self.pipe["sendmsg_pages"],
            "today_ns_per_mib": float(today.ns_per_mib), "owner_ns_per_mib": float(owner.ns_per_mib),
            "today_gbit": float(tp.loc["today", "gbit_per_s"]), "owner_gbit": float(tp.loc["owner", "gbit_per_s"]),
            "pipe_holds_gbit": float(tp.loc["pipe_holds", "gbit_per_s"]),
            "hold_us": float(tp.loc["today", "hold_us"]),
            "vmsplice_share_rewritten": float(reuse.share_rewritten.iloc[0]),
            "probes": kit.measured(self.units),
        }


def headline(**params) -> dict:
    """Chapter 05's result as one record: today's atomics per MiB on the splice path against the destructor's,
    in count and time, the throughput of each rule through the run's pipe, and the vmsplice rewrite share."""
    return Results(params).headline


def panel_data(params: Mapping, *, pipe_kib: int, splice_kib: int, completion_us: float,
               line_gbit: int) -> pd.DataFrame:
    """The panel's table: per rule, atomics and time per MiB and throughput, for one setting, from the same
    functions and at the same size as the chapter's text (:meth:`Results.panel`), so at the run's own values it
    shows the text's numbers."""
    return Results(dict(params, pipe_kib=pipe_kib, splice_kib=splice_kib, completion_us=completion_us,
                        line_gbit=line_gbit)).panel


# ---------------------------------------------------------------- prose
def _fewer(saving: float) -> str:
    return f"{saving:.0%} fewer" if saving >= 0 else f"{-saving:.0%} more"


def _steps(x: pd.Series) -> str:
    """A rule's atomics per MiB by step, in the order the markdown names them."""
    return (f"{x['pipe fill']:.0f} fill, {x['taken at attach']:.0f} at attach, "
            f"{x['released when sendmsg() returns']:.0f} at return, {x['released by skbs and ACKs']:.0f} by the skbs")


def rules_remark(R: Results) -> str:
    r = R.rules.set_index("rule")
    t, o = r.loc["today"], r.loc["owner"]
    return (f"With {kit.plural(R.pipe['sendmsg_pages'], 'page')} per `sendmsg()`, today's rule takes "
            f"**{t.atomics_per_mib:.0f}** atomics per MiB ({_steps(t)}); the destructor takes "
            f"**{o.atomics_per_mib:.0f}** ({_steps(o)}).")


def sizes_remark(R: Results) -> str:
    s = R.sendmsg_sizes.pivot_table(index="sendmsg_pages", columns="rule", values="atomics_per_mib")
    one, two, full = s.loc[ONE_PAGE], s.loc[TWO_PAGES], s.loc[FULL_PAGES]
    return (f"Atomics per MiB, the owner against today: **{one.owner:.0f}** against **{one.today:.0f}** with one page "
            f"per `sendmsg()`, {two.owner:.0f} against {two.today:.0f} with {TWO_PAGES}, **{full.owner:.0f}** against "
            f"**{full.today:.0f}** with a full pipe's {FULL_PAGES}.")


def _ring_limit(R: Results) -> str:
    tp = R.throughput.set_index("rule")
    held, free = tp.loc["pipe_holds", "gbit_per_s"], tp.loc["owner", "gbit_per_s"]
    if held < 0.98 * free:
        return f"left in their slots, the ring caps the rate at **{held:.2f} Gbit/s** here against **{free:.1f}**"
    return f"with this run's pipe and hold time the line is the limit (**{held:.2f} Gbit/s** either way)"


def throughput_remark(R: Results) -> str:
    tp = R.throughput.set_index("rule")
    g, hold = tp.gbit_per_s, tp.loc["pipe_holds", "hold_us"]
    return (f"The owner moves **{g['owner']:.1f} Gbit/s**, today {g['today']:.1f}. Left in their slots, each page is "
            f"held {hold:.0f} us and the {R.pipe['ring']} slots carry **{g['pipe_holds']:.2f} Gbit/s**.")


def vmsplice_remark(R: Results) -> str:
    p = R.vmsplice_probe
    seen = p.data["cases"].get("vmsplice_splice_tcp", {}).get("reader_sees", "not measured")
    today, owner = R.vmsplice_reuse.iloc[0], R.vmsplice_reuse.iloc[1]
    if today.rewritten_in_flight == 0:
        model = (f"This run moves no more than one `splice()` call's worth ({R.P.splice_kib} KiB), so its "
                 f"application never reuses its buffer.")
    else:
        model = (f"Rewriting at return, the application rewrites **{today.share_rewritten:.0%}** of the pages it "
                 f"sent while the network still held them.")
    return (f"The probe's receiver read **{seen}** data ({p.source}). {model} Waiting for the completion, it "
            f"rewrites {owner.rewritten_in_flight} and moves {owner.gbit_per_s:.2f} Gbit/s with its one buffer.")


def units_remark(R: Results) -> str:
    u = R.units
    return (f"A local atomic costs **{u['local_atomic_ns']:.1f} ns** here, a refcount line moving between CPUs "
            f"**{u['line_transfer_ns']:.1f} ns** ({u.source('line_transfer_ns')}; `atomics` probe).")


#: Markdown: each kernel count the model does not follow, with the kernel path behind it.
gaps_remark = compare.results_remark


def fill_remark(R: Results) -> str:
    """Markdown: what filling the pipe takes on the run's kernel, against the other kernel's page cache."""
    f = R.fill
    here = R.fill_pp()
    other = f.iloc[1] if R.P.kernel == "6.12" else f.iloc[0]
    other_kernel = "a kernel with ext4's large folios (a file read back)" if R.P.kernel == "6.12" else \
        "order-0 page cache (ext4 on 6.12)"
    if R.P.source == "vmsplice":
        return (f"vmsplice fills the pipe with one GUP ref per page (**{here:.0f}** atomic per page); from a file "
                f"the fill would take {f.iloc[0]['per page']:.0f} per page on order-0 pages.")
    return (f"On {kit.kernel_label(R.release)} the file's page cache is {R.folios[1]}. Filling the pipe in calls "
            f"of {kit.plural(fill_call_pages(R.P), 'page')} takes **{here:.2f}** refcount atomics per page "
            f"({here * MiB / PAGE:.0f} per MiB); {other_kernel} takes **{other['per page']:.2f}** "
            f"({other['fill atomics per MiB']:.0f} per MiB). Every page cache gives "
            f"{f.iloc[0]['pipe buffers per MiB']:.0f} pipe buffers per MiB: one per page, whatever the folio.")


def kernels_remark(R: Results) -> str:
    """Markdown: the headline on the running kernel and on 6.12 LTS."""
    k = R.kernels
    a, b = k.iloc[0], k.iloc[1]
    return (f"On {a.kernel} today takes **{a['today atomics per MiB']:.0f}** atomics per MiB and the owner "
            f"**{a['owner atomics per MiB']:.0f}** ({a['owner saves, %']:.0f} % fewer); on {b.kernel}, whose ext4 "
            f"caches order-0 pages, **{b['today atomics per MiB']:.0f}** and **{b['owner atomics per MiB']:.0f}** "
            f"({b['owner saves, %']:.0f} % fewer). The fill is the same under both rules, so a costlier fill "
            f"dilutes the saving.")


def comparison_remark(R: Results) -> str:
    """Markdown: how many quantities agree, which confirm the chapter's rules, and where the counts come from."""
    t = R.comparison
    agree, n = compare.tally(t)
    s = R.comparison_summary.set_index("quantity")
    off = compare.compared(t)[compare.compared(t).agrees == False]  # noqa: E712
    unexplained = len(compare.unexplained(t))
    src = {"live": "measured now on this machine", "recorded": "from the recordings in data/probes/ (this machine "
           "cannot count them now, or the run asked for recordings)"}
    where = src.get(R.kernel.source, R.kernel.source) if R.kernel.source == R.filemap.source else \
        f"kcount_splice {R.kernel.source}, kcount_filemap {R.filemap.source}"
    rest = ("none is left to explain" if agree == n else
            f"{len(off) - unexplained} do not and name the kernel mechanism the model leaves out; **{unexplained}** "
            f"are unexplained")
    return (f"**{agree} of {n}** quantities agree {compare.GRID_RULE}; {rest}. The fill rule is confirmed "
            f"by the filemap batches ({s.loc['filemap_batches', 'agree']} of "
            f"{s.loc['filemap_batches', 'compared']} settings, model / kernel {s.loc['filemap_batches', 'model / kernel']}) "
            f"and the bytes a pipe slot takes; the send rule by the skbs transmitted "
            f"({s.loc['transmissions', 'agree']} of {s.loc['transmissions', 'compared']}) and freed "
            f"({s.loc['skbs_freed', 'agree']} of {s.loc['skbs_freed', 'compared']}). Kernel counts: {where}, "
            f"kernel {R.kernel.kernel or R.measured_release}." + live_grid_remark(R))


def live_grid_remark(R: Results) -> str:
    """Markdown (a sentence, or nothing when the whole grid is recorded): which grid settings ran live, the rest
    recorded when, and how the live counts compare with the recording's and the model."""
    t = R.live_grid
    if t.empty:
        return ""
    grid = R.kernel.data.get("grid", [])
    dates = sorted({g.get("recorded_at") for g in grid if g.get("source") == "recorded" and g.get("recorded_at")})
    ratio = t["live / recorded"].dropna()
    agree = int((t.agrees == True).sum())  # noqa: E712
    return (f" This run measured {kit.words(f'`{n}`' for n in dict.fromkeys(t.transfer))} live; the other "
            f"{len(grid) - t.transfer.nunique()} settings are the recording's ({', '.join(dates) or 'undated'}). "
            f"Live against recorded, the counts per MiB are {ratio.min():.2f} to {ratio.max():.2f} times the "
            f"recording's, and {agree} of {len(t)} live quantities agree with the model.")


def conclusion(R: Results) -> str:
    """Markdown: three points for the design, quoting the checked numbers (kit.points)."""
    h = R.headline
    s = R.sendmsg_sizes.pivot_table(index="sendmsg_pages", columns="rule", values="atomics_per_mib")
    lts = R.kernels.iloc[1 if R.P.kernel == "running" else 0]
    agree, compared = compare.tally(R.comparison)
    return kit.points(
        f"**Refs.** With {kit.plural(h['sendmsg_pages'], 'page')} per `sendmsg()` today takes "
        f"**{h['today_atomics_per_mib']:.0f}** atomics per MiB and the owner **{h['owner_atomics_per_mib']:.0f}** "
        f"({_fewer(h['owner_saving'])}) on {kit.kernel_label(R.release)}; "
        f"{lts['today atomics per MiB']:.0f} against {lts['owner atomics per MiB']:.0f} on {lts.kernel}.",
        f"**What it needs.** Batches (one page per `sendmsg()`: {s.loc[ONE_PAGE, 'owner']:.0f} against "
        f"{s.loc[ONE_PAGE, 'today']:.0f}) and buffers that leave the ring ({_ring_limit(R)}); an application "
        f"reusing its vmsplice buffer at return rewrites **{h['vmsplice_share_rewritten']:.0%}** of it in flight.",
        f"**This kernel.** {agree} of {compared} counts of real splice transfers and of the page cache agree "
        f"with the model {compare.RULE}" + ("." if agree == compared else "; the rest name their kernel mechanism."),
    )


# ---------------------------------------------------------------- the answer
def rule_ns(R: Results, rule: str, units: costs.UnitCosts) -> float:
    """ns per MiB of a rule's refcount work at ``units``: the replay's ledger priced, plus the fill's atomics."""
    leds, _st, pages = R.replays
    fill = R.fill_pp() * pages["pipe"] / (R.P.bytes_sent / MiB)
    return costs.total(costs.price_ledger(leds[rule], units, R.P.bytes_sent)) + fill * units["local_atomic_ns"]


def _source(*results) -> str:
    kinds = {r.source for r in results}
    return kinds.pop() if len(kinds) == 1 and kinds <= {"live", "recorded"} else "mixed"


def answer(R: Results) -> answers.Answer:
    """Chapter 05's row of the answers table: bullet (e), the destructor design against today's page refs on the
    splice path, cross-checked by this kernel's splice and page-cache counts."""
    h, other = R.headline, R.kernels.iloc[1 if R.P.kernel == "running" else 0]
    fmt = answers.format_number
    saved = answers.Number.span(R.units, lambda u: rule_ns(R, "today", u) - rule_ns(R, "owner", u), "ns/MiB",
                                f"CPU on refcounts the destructor saves per MiB spliced ({R.P.source})")
    agree, n = compare.tally(R.comparison)
    text = (f"Yes: with one owner per send calling the pipe buffers' release after the network is done, a "
            f"spliced MiB takes {fmt(h['owner_atomics_per_mib'])} refcount atomics instead of "
            f"{fmt(h['today_atomics_per_mib'])} on {kernels.series(R.release)} "
            f"({fmt(round(100 * h['owner_saving']))} % fewer; {fmt(round(other['owner saves, %']))} % on "
            f"{'6.12 LTS' if R.P.kernel == 'running' else kernels.series(R.measured_release)}), provided "
            f"sendmsg() carries two pages or more and the buffers leave the pipe's ring when the owner takes them.")
    return answers.Answer(
        "e", text, "agree", saved,
        answers.cross_checked(f"kcount_splice: skbs, frees, GSO segments and sendmsg passes over 20 splice "
                              f"settings; kcount_filemap: filemap batches and pipe buffers; {agree} of {n} agree",
                              _source(R.kernel, R.filemap)))


# ---------------------------------------------------------------- claims
def _fixed(R: Results, k: int) -> dict[str, float]:
    t = R.sendmsg_sizes
    return t[t.sendmsg_pages == k].set_index("rule").atomics_per_mib.to_dict()


def _today_refs_every_page(R: Results):
    leds, _st, pages = R.replays
    by = leds["today"].ref_by_op
    ok = by[T.ATTACH] >= pages["pipe"] and by[T.BUF_RELEASE] == pages["pipe"] and leds["today"].clean
    return ok, {"pages": pages, "attach": by[T.ATTACH], "released_at_return": by[T.BUF_RELEASE]}


def _destructor_releases_after(R: Results):
    leds, st, pages = R.replays
    o = leds["owner"]
    ok = o.clean and o.page_atomics == pages["pipe"] and o.ref_by_op[T.BUF_RELEASE] == st["sendmsg"]
    return ok, {"pages": pages, "page_atomics": o.page_atomics, "sendmsgs": st["sendmsg"]}


def _owner_saves_from_two_pages(R: Results):
    two, full = _fixed(R, TWO_PAGES), _fixed(R, FULL_PAGES)
    return two["owner"] < two["today"] and full["owner"] < full["today"], {"two": two, "sixteen": full}


def _one_page_costs_more(R: Results):
    one = _fixed(R, ONE_PAGE)
    _leds, st, _pages = replay(config(R.P, ONE_PAGE))
    extra = (one["owner"] - one["today"]) * R.P.bytes_sent / MiB
    return one["owner"] > one["today"] and round(extra) == st["sendmsg"], {"one": one, "sendmsgs": st["sendmsg"]}


def _holding_slots_caps_rate(R: Results):
    tp = R.throughput.set_index("rule")
    held = tp.loc["pipe_holds"]
    same = np.array_equal(R.pipe_runs["today"], R.pipe_runs["owner"])
    capped = held.gbit_per_s <= 1.02 * held.ring_cap_gbit and held.mean_inflight_pages <= R.pipe["ring"] + 16
    return bool(same and capped), {"pipe_holds_gbit": held.gbit_per_s, "ring_cap_gbit": held.ring_cap_gbit,
                                   "owner_gbit": tp.loc["owner", "gbit_per_s"]}


def _vmsplice_rewrites(R: Results):
    v = R.vmsplice_reuse
    rounds = R.P.bytes_sent // PAGE > ring_and_batch(dict(R.P, source="vmsplice"))["splice_pages"]
    probe = R.vmsplice_probe.data.get("reader_sees_new_data") is True
    today, owner = v.rewritten_in_flight.iloc[0], v.rewritten_in_flight.iloc[1]
    return probe and owner == 0 and (today > 0) == rounds, {"probe_reader_sees_new_data": probe,
                                                           "today": int(today), "owner": int(owner)}


def _model_follows_kernel(R: Results):
    ok, ev = compare.follows(R.comparison, R.kernel.source)
    return ok, {**ev, "filemap_source": R.filemap.source}


def _fill_follows_the_folios(R: Results):
    f = R.fill
    order0, large = f.iloc[0], f.iloc[1:]
    several = fill_call_pages(R.P) > 1  # a one-page call pays a folio piece per page whatever the folio
    ok = (order0["per page"] == 3.0 and (f["pipe buffers per MiB"] == MiB / PAGE).all()
          and bool((large["per page"] < 3.0).all()) == several and (large["per page"] <= 3.0).all()
          and np.allclose(f["fill atomics per MiB"], f["pipe buffers per MiB"] + 2 * f["folio refs per MiB"]))
    return bool(ok), {"per_page": dict(zip(f["page cache"], f["per page"].round(3))),
                      "call_pages": fill_call_pages(R.P), "run": round(R.fill_pp(), 3), "kernel": R.release}


def _ledgers_balance(R: Results):
    return bool(R.rules.clean.all() and R.sources.clean.all() and R.sendmsg_sizes.clean.all()), {}


#: Claims over the probes' counts of this kernel (per_point=False) are the chapter run's, not a sweep point's.
CLAIMS = (
    Claim("today_refs_every_spliced_page",
          "Today every spliced page takes at least one get_page() for its frag, and the pipe puts one ref per page "
          "as sendmsg() returns, before any skb holding it is freed.",
          "holds", _today_refs_every_page),
    Claim("destructor_releases_after_the_network",
          "Under the destructor the pipe's pages are put once each, by the owner's destructor after the last skb; "
          "at return the service only drops its owner ref; no page is freed under a live frag.",
          "holds", _destructor_releases_after),
    Claim("owner_saves_from_two_pages_per_sendmsg",
          "With 2 or 16 pages per sendmsg(), the destructor takes fewer atomics per MiB than today's page refs.",
          "holds", _owner_saves_from_two_pages),
    Claim("one_page_per_sendmsg_costs_one_more",
          "With one page per sendmsg() (a 4 KiB pipe) the destructor takes exactly one atomic more per sendmsg() "
          "than today.",
          "holds", _one_page_costs_more),
    Claim("holding_the_slots_caps_the_rate",
          "Moving the buffers to the owner changes no timing; keeping them in their slots until the network is done "
          "caps the rate at the ring's size over the hold time (Little's law).",
          "holds", _holding_slots_caps_rate),
    Claim("vmsplice_data_changes_in_flight",
          "A reader sees what was written to a vmspliced buffer after the splice (vmsplice probe), and an "
          "application reusing its buffer at splice() return rewrites data in flight whenever it reuses it at all; "
          "with a completion from the owner it rewrites none.",
          "holds", _vmsplice_rewrites),
    Claim("fill_follows_the_folios",
          "Filling the pipe from a file takes 3 refcount atomics per page on order-0 page cache (ext4 on 6.12); on "
          "large folios a try_get and a put per folio piece a call touches and a folio_get per page, so fewer "
          "whenever a call moves more than one page (a one-page call pays 3 whatever the folio); one pipe buffer "
          "per page whatever the folio.",
          "holds", _fill_follows_the_folios),
    Claim("model_follows_this_kernels_splice",
          "Fed each setting of the kcount_splice grid (splice size, MSS, TSO, the measured tail share) and "
          "kcount_filemap's file (its folios, call sizes, offsets), the model's skbs transmitted and freed, GSO "
          "segments, sendmsg passes, filemap batches and pipe buffers agree with this kernel's counts within 20 % "
          "(or one event per MiB), except where the chapter names the kernel mechanism it does not model.",
          "holds", _model_follows_kernel, per_point=False),
    Claim("every_ledger_balances",
          "Every replay in this chapter ends clean: no reference held, no page left, no page freed under a frag.",
          "holds", _ledgers_balance),
)
#: The claims the conference talk shows (fraglife talk).
TALK_CLAIMS = ("destructor_releases_after_the_network", "owner_saves_from_two_pages_per_sendmsg",
               "holding_the_slots_caps_the_rate", "vmsplice_data_changes_in_flight")


def dma_remark(R: Results) -> str:
    """What mapping the splice's frags for DMA would add on a real NIC, against this chapter's price (cited)."""
    return cited.remark(R.dma)
