"""Chapter 06 (book/06_bio_vec.ipynb): frags as bio_vecs of physical address + length.

Entry layouts from BTF; how many frags, skbs, GSO segments and refs a send needs under
today's rules and with phys+len coalescing, on buffer layouts measured by the ``pagemap``
probe (:mod:`fraglife.model.bvec`); what turning a frag into an address costs each way;
and which phys+len frags would cover more than one folio (the lifetime hazard of chapter
01). Charts are in :mod:`fraglife.views.bio_vec`; the contract is in :mod:`fraglife.chapters`.
"""

from __future__ import annotations

import time
from functools import cached_property
from typing import Mapping

import numpy as np
import pandas as pd

from ..claims import Claim
from ..model import bvec as B, costs
from ..probes import pagemap as pagemap_probe
from . import kit
from .kit import compare

KiB, MiB = 1 << 10, 1 << 20
PAGE = 4096
PIECE_PAGES = 16  # a composed buffer takes its pages from the measured layouts in 64 KiB pieces
SOURCES = ("anon", "page_cache")
SEND_KIBS = (64, 256, 1024, 4096, 16384)
GSO_KIBS = (64, 128, 256, 512)
RULE_LABEL = {"splice": "MSG_SPLICE_PAGES today (a frag per page)",
              "zerocopy": "MSG_ZEROCOPY today (a frag per folio run)",
              "phys": "phys+len (a frag per physical run)"}
#: the measured buffers a composed buffer draws from
FRESH_4K, FRAG_4K, THP, FILE = "16MiB_4k", "16MiB_4k_fragmented", "16MiB_thp", "16MiB_file"
KIND_LABEL = {FRESH_4K: "anon 4 KiB, fresh", FRAG_4K: "anon 4 KiB, fragmented", THP: "anon THP",
              FILE: "page cache"}
ACCESS_FRAGS = 1 << 20


#: The probes this chapter reads, and whether each one's quick run will do.
PROBES = {"btf": False, "pagemap": True, "atomics": True}


def measured_layout(pm, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(contig, same_folio) between neighbouring pages of one measured buffer."""
    b = pm["buffers"][name]
    lay = b["median_trial"].get("layout")
    if not lay:
        raise ValueError(f"pagemap buffer {name!r} has no folio layout (recorded before layouts were measured)")
    return pagemap_probe.expand(lay)


def _pmd_pages(contig: np.ndarray, same: np.ndarray) -> np.ndarray:
    """Per page of a measured buffer: whether a PMD maps it (a page of a whole 2 MiB folio: an anonymous THP)."""
    return np.asarray(B.pmd_pages_default(B.frag_lengths(contig, same, "zerocopy"), B.folio_starts(same)), bool)


def _picks(n: int, share: float) -> np.ndarray:
    """Which of n pieces take the share (spread evenly, deterministic)."""
    i = np.arange(n)
    return (np.floor((i + 1) * share) - np.floor(i * share)) >= 1


def compose(pm, *, source: str, thp_share: float, fragmentation: float, pages: int) -> dict:
    """A send buffer of ``pages`` pages built from the measured layouts, in 64 KiB pieces.

    Page p of the buffer is page p of the measured buffer its piece is drawn from: for
    ``page_cache`` the file's; for ``anon`` a ``thp_share`` of the pieces from the THP buffer,
    and of the rest a ``fragmentation`` share from the fragmented 4 KiB buffer and the others
    from the fresh one. Neighbouring pages keep their measured relation when both come from
    the same measured buffer, and are apart otherwise.
    """
    layouts = {n: measured_layout(pm, n) for n in ((FILE,) if source == "page_cache" else (FRESH_4K, FRAG_4K, THP))}
    pmd_of = {n: _pmd_pages(*lay) for n, lay in layouts.items()}
    npieces = -(-pages // PIECE_PAGES)
    if source == "page_cache":
        kind = np.full(npieces, FILE, object)
    else:
        thp = _picks(npieces, thp_share)
        frag = np.zeros(npieces, bool)
        frag[~thp] = _picks(int((~thp).sum()), fragmentation)
        kind = np.where(thp, THP, np.where(frag, FRAG_4K, FRESH_4K)).astype(object)
    page_kind = np.repeat(kind, PIECE_PAGES)[:pages]
    contig = np.zeros(pages - 1, bool)
    same = np.zeros(pages - 1, bool)
    pmd = np.zeros(pages, bool)
    for name, (c, s) in layouts.items():
        n = c.size + 1
        mine = np.flatnonzero(page_kind == name)
        pmd[mine] = pmd_of[name][mine % n]
        idx = np.flatnonzero((page_kind[:-1] == name) & (page_kind[1:] == name))
        j = idx % n
        keep = j < n - 1  # past the measured buffer's end the pages are apart
        contig[idx[keep]] = c[j[keep]]
        same[idx[keep]] = s[j[keep]]
    return {"contig": contig, "same_folio": same, "pmd": pmd, "pages": pages,
            "pieces": {KIND_LABEL[k]: int((kind == k).sum()) for k in layouts}}


def send(buf: dict, rule: str, *, nbytes: int, max_frags: int, goal: int, mss: int) -> dict:
    """Counts of sending the buffer's first ``nbytes`` under ``rule``, plus per-MiB figures.

    MSG_ZEROCOPY is filled as the kernel fills it, GUP call by GUP call (:func:`fraglife.model.bvec.zerocopy_pack`):
    gup-fast grabs a PTE-mapped page once and a PMD-mapped THP once per leaf per call, and sets PG_referenced on
    each (``gup_fast_pte_range()``, ``gup_fast_pmd_leaf()``, mm/gup.c, v6.18 as v6.12); a run of pages merged
    into one frag gives its surplus refs back with one ``page_ref_sub()`` (``zerocopy_fill_skb_from_iter()``,
    net/core/datagram.c). MSG_SPLICE_PAGES takes a ``get_page()`` per frag (``skb_append_pagefrags()``);
    phys+len has no page to ref. ``buf["pmd"]`` says which pages a PMD maps (default: those of 2 MiB folios)."""
    fl = B.frag_lengths(buf["contig"], buf["same_folio"], rule)
    starts = B.folio_starts(buf["same_folio"])
    kw = dict(nbytes=nbytes, max_frags=max_frags, goal=goal, mss=mss)
    c = B.zerocopy_pack(fl, starts, pmd_mapped=buf.get("pmd"), **kw) if rule == "zerocopy" else B.pack(fl, starts, **kw)
    mib = nbytes / MiB
    pages = -(-nbytes // PAGE)  # the pages the send touches
    zc = rule == "zerocopy"
    gup = c["gup_pte"] + c["gup_pmd"] if zc else 0  # GUP's grabs
    attach = {"splice": c["frags"], "zerocopy": c.get("give_backs", 0), "phys": 0}[rule]  # refs outside GUP
    return {"rule": rule, **c, "pages": pages, "frags_per_mib": c["frags"] / mib, "skbs_per_mib": c["skbs"] / mib,
            "segments_per_mib": c["segments"] / mib, "gso_refs_per_mib": c["segment_pieces"] / mib,
            "gup_grab_atomics_per_mib": gup / mib, "flag_atomics_per_mib": (c["flag_atomics"] if zc else 0) / mib,
            "gup_calls_per_mib": (c["gup_calls"] if zc else 0) / mib,
            "attach_ref_atomics_per_mib": (gup + attach) / mib, "other_attach_atomics_per_mib": attach / mib,
            "multi_folio_share": c["multi_folio_frags"] / c["frags"], "frags_per_skb": c["frags"] / c["skbs"]}


def ref_counts(t: pd.DataFrame) -> pd.DataFrame:
    """Reference atomics per MiB for each rule, with TSO and with software GSO.

    Today (``splice``, ``zerocopy``): the attach refs (MSG_ZEROCOPY's GUP grabs apart:
    ``gup_atomics``, with the PG_referenced sets beside them as ``flag_atomics``), one put per frag
    when the data is freed (``skb_release_data()``), and in software GSO a ref and a put per frag
    piece of every segment (``skb_segment()``, ``__skb_frag_ref()``). MSG_ZEROCOPY also takes a
    ``ubuf_info`` ref per skb it starts (``skb_zcopy_set()``) and, in software GSO, one per segment
    (``skb_zerocopy_clone()`` -> ``net_zcopy_get()``), each dropped at free (net/core/skbuff.c, v6.18
    as v6.12). ``phys``: no page to ref; one get and one put on an owner per skb, and per segment skb
    in software GSO (the per-skb owner of chapters 01 and 08)."""
    rows = []
    for rule, r in t.iterrows():
        for gso in ("TSO", "software GSO"):
            sw = gso == "software GSO"
            page = uarg = owner = 0.0
            if rule == "phys":
                owner = 2 * (r.segments_per_mib if sw else r.skbs_per_mib)
            else:
                page = r.other_attach_atomics_per_mib + r.frags_per_mib + (2 * r.gso_refs_per_mib if sw else 0.0)
                if rule == "zerocopy":
                    uarg = 2 * r.skbs_per_mib + (2 * r.segments_per_mib if sw else 0.0)
            rows.append({"rule": rule, "gso": gso, "gup_atomics_per_mib": r.gup_grab_atomics_per_mib,
                         "flag_atomics_per_mib": r.flag_atomics_per_mib, "page_ref_atomics_per_mib": page,
                         "uarg_ref_atomics_per_mib": uarg, "owner_ref_atomics_per_mib": owner,
                         "frags_per_mib": r.frags_per_mib})
    return pd.DataFrame(rows)


def price_refs(counts: pd.DataFrame, units: costs.UnitCosts, access_ns: float, access_source: str) -> pd.DataFrame:
    """ns per MiB and share of a core: ref atomics outside GUP at this machine's local atomic, frag -> address at
    the time measured now. GUP's grabs and PG_referenced sets are left out of the price: GUP is priced by its
    fitted cost, which holds its atomics (:func:`fraglife.model.costs.gup_price`), and a phys+len owner that
    holds user memory looks the pages up too."""
    addr = costs.Unit("frag_address_ns", access_ns, "ns/frag", access_source,
                      "numba loop, page-pointer or phys arithmetic, median of repeated runs")
    rows = []
    for r in counts.itertuples():
        priced = costs.price([("page ref atomics", r.page_ref_atomics_per_mib, "local_atomic_ns"),
                              ("ubuf_info ref atomics", r.uarg_ref_atomics_per_mib, "local_atomic_ns"),
                              ("owner ref atomics", r.owner_ref_atomics_per_mib, "local_atomic_ns"),
                              ("frag -> address", r.frags_per_mib, addr)], units)
        ns = costs.total(priced)
        span = units.span(lambda u, r=r: (r.page_ref_atomics_per_mib + r.uarg_ref_atomics_per_mib
                                          + r.owner_ref_atomics_per_mib) * u["local_atomic_ns"]
                          + r.frags_per_mib * access_ns)
        rows.append({"rule": r.rule, "gso": r.gso, "ns_per_mib": ns, "ns_low": span[1], "ns_high": span[2],
                     "core_share_100g": costs.core_share(ns, 100), "core_share_400g": costs.core_share(ns, 400),
                     **{f"{p['cause']} ns": p["ns_per_mib"] for p in priced},
                     "atomic_ns": units["local_atomic_ns"], "source": units.source("local_atomic_ns")})
    return pd.DataFrame(rows)


def entry_layouts(btf, max_frags: int) -> pd.DataFrame:
    """Bytes per frag entry and per skb_shared_info at MAX_SKB_FRAGS frags, per layout."""
    s = btf["structs"]
    head = s["skb_shared_info"]["members"]["frags"]["offset"]
    frag, bv = s["skb_frag"], s["bio_vec"]
    rows = [
        ("skb_frag_t (today)", frag["size"], " + ".join(f"{n} {m['size']}" for n, m in frag["members"].items()),
         "BTF: struct skb_frag"),
        ("bio_vec (today)", bv["size"], " + ".join(f"{n} {m['size']}" for n, m in bv["members"].items()),
         "BTF: struct bio_vec"),
        ("phys + len", 16, "phys_addr_t 8 + len 4, padded to 8-byte alignment",
         "the thread's bio_vec; an array of them pads each to 16 B"),
        ("phys + len, packed", 12, "phys_addr_t 8 + len 4, __packed", "what a 12-byte entry would need"),
    ]
    out = []
    for name, size, fields, src in rows:
        for n in sorted({17, int(max_frags), 45}):
            total = head + n * size
            out.append({"entry": name, "entry_bytes": size, "fields": fields, "frags": n, "shinfo_bytes": total,
                        "cache_lines": -(-total // 64), "source": src})
    return pd.DataFrame(out)


def access_bench(n: int = ACCESS_FRAGS, repeats: int = 7) -> dict:
    """ns per frag to turn frags into kernel addresses, page-pointer way vs phys way (numba, one run)."""
    f = B.frags_for_access(n)
    page = B.address_sum_page(f["page"], f["off"], f["len"])  # compile or load outside the timing
    phys = B.address_sum_phys(f["phys"], f["len"])
    times = {"page": [], "phys": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        B.address_sum_page(f["page"], f["off"], f["len"])
        t1 = time.perf_counter()
        B.address_sum_phys(f["phys"], f["len"])
        t2 = time.perf_counter()
        times["page"].append(t1 - t0)
        times["phys"].append(t2 - t1)
    med = {k: float(np.median(v)) / n * 1e9 for k, v in times.items()}
    return {"frags": n, "repeats": repeats, "page_ns_per_frag": med["page"], "phys_ns_per_frag": med["phys"],
            "page_over_phys": med["page"] / med["phys"] if med["phys"] else float("nan"),
            "same_addresses": int(page) == int(phys)}


# ---------------------------------------------------------------- the model against the running kernel
#: The kcount_copy probe's senders (64 KiB calls, MSS 1448, TSO on over veth) and how the model builds each one's
#: frags: the buffer (a measured layout, or the copy path's page_frag pages), the frag rule, and whether each
#: call starts an skb of its own (the kernel pushed the previous call's tail) or the calls run on in one stream.
KERNEL_SENDERS = {
    "send": ("the copy path: each call copied into the socket's page_frag, order-3 pages (32 KiB, "
             "SKB_FRAG_PAGE_ORDER, skb_page_frag_refill(), net/core/sock.c); a frag grows while the copy continues "
             "in the same page (skb_can_coalesce()), so a frag per page_frag page", "pfrag", "zerocopy", True),
    "zerocopy": ("MSG_ZEROCOPY from fresh 4 KiB anonymous pages (the pagemap probe's fresh buffer), filled call by "
                 "call (zerocopy_pack)", FRESH_4K, "zerocopy", True),
    "zerocopy_thp": ("MSG_ZEROCOPY from a THP-backed buffer (the pagemap probe's THP buffer): a frag per folio run",
                     THP, "zerocopy", True),
    "splice": ("a file's page cache spliced (the pagemap probe's page-cache buffer): a frag per page "
               "(skb_splice_from_iter()); splice_to_socket() sends 16 pipe buffers per sendmsg with MSG_MORE, so "
               "the calls run on in one stream", FILE, "splice", False),
}
#: What each compared quantity is, in the kernel's counts (kcount_copy's ``frags``) and in the model.
KERNEL_QUANTITIES = {
    "frags_per_gso_skb": "mean nr_frags of the skbs longer than one MSS (gso_size set), from "
                         "net:netif_rx_entry on the receiving veth (veth forwards the skb TCP built)",
    "frags_per_skb": "mean nr_frags over every data skb, the same hits",
    "bytes_per_frag": "payload bytes per frag: the skbs' length over their frags",
    "skbs_per_mib": "data skbs per MiB sent: the same hits",
}
#: The confirming quantity: where a frag ends is the chapter's central rule.
CENTRAL = "bytes_per_frag"
PFRAG_PAGES = 8  # SKB_FRAG_PAGE_ORDER = get_order(32768): an order-3 page_frag page


def pfrag_layout(pages: int) -> tuple[np.ndarray, np.ndarray]:
    """(contig, same_folio) of the copy path's page_frag pages: order-3 compound pages, each contiguous inside,
    apart from the next."""
    same = (np.arange(1, pages) % PFRAG_PAGES) != 0
    return same.copy(), same


def sender_counts(pm, sender: str, *, nbytes: int, call: int, max_frags: int, goal: int, mss: int,
                  appended: float = 0.0, shift: int = 0) -> dict:
    """The model's skbs and frags for one kcount_copy sender: ``nbytes`` sent in calls of ``call`` bytes
    (:data:`KERNEL_SENDERS`). A sender whose calls start skbs of their own sends the same ``call`` bytes each time
    (the probe's buffer is one call long); splice's calls run on through the file in one stream. ``appended``:
    the share of calls that found the previous call's tail skb unsent and filled it (what the kernel decided for
    the connection, :func:`appended_share`): such a call's full skb also holds the tail's frag, and its own tail
    is the only short skb left. ``shift``: each call starts that many bytes into its buffer (the copy path's
    page_frag written on where the last call stopped, :data:`PFRAG_SHIFT`). Returns totals and the skbs of a size
    goal's length (GSO skbs)."""
    _, where, rule, per_call = KERNEL_SENDERS[sender]
    span = (call if per_call else nbytes) + shift
    pages = -(-span // PAGE)
    contig, same = pfrag_layout(pages) if where == "pfrag" else measured_layout(pm, where)
    if contig.size + 1 < pages:
        raise ValueError(f"the {where} buffer has {contig.size + 1} pages, the transfer needs {pages}")
    contig, same = contig[:pages - 1], same[:pages - 1]
    fl, st = B.frag_lengths(contig, same, rule), B.folio_starts(same)
    pack = B.zerocopy_pack if rule == "zerocopy" else B.pack
    kw = dict(max_frags=max_frags, goal=goal, mss=mss)
    out = dict.fromkeys(("skbs", "frags", "bytes", "gso_skbs", "gso_frags"), 0)
    if per_call:  # one call: a goal-sized skb (or more, if frags close it first), then the tail on its own
        pieces, times = [(shift, min(goal, call), True)] + ([(shift + goal, call - goal, call - goal > mss)]
                                                            if call > goal else []), nbytes // call
    else:
        pieces, times = [(shift, nbytes, True)], 1
    counted = [(pack(fl, st, first_byte=first, nbytes=n, **kw), gso) for first, n, gso in pieces]
    tail = counted[1][0] if per_call and len(counted) > 1 else None
    for c, gso in counted:
        share = 1.0 - appended if c is tail else 1.0  # an appended call's tail went into the next call's skb
        out["skbs"] += times * share * c["skbs"]
        out["bytes"] += times * c["bytes"]
        out["frags"] += times * c["frags"]
        if gso:
            out["gso_skbs"] += times * c["skbs"]
            out["gso_frags"] += times * (c["frags"] + (appended * tail["frags"] if tail else 0.0))
    return out


def appended_share(run: Mapping) -> float:
    """The share of a per-call sender's calls that filled the previous call's unsent tail skb, as the kernel decided
    for the connection: every call that did not leaves its tail as a short skb of its own (gso_size 0)."""
    calls = (run.get("send") or {}).get("calls") or 0
    short = int((run.get("gso_size") or {}).get("0", 0))
    return min(1.0, max(0.0, 1.0 - short / calls)) if calls else 0.0


def kernel_rows(kc, pm, chapter: str = "06_bio_vec") -> pd.DataFrame:
    """The model against the kernel's frag counts of the kcount_copy probe (``kc``), one row per sender and
    quantity (compare's row format). The model takes each transfer's settings (bytes, call size, the MSS and
    size goal of TSO over veth, MAX_SKB_FRAGS) and the buffer layouts the pagemap probe measured, never the
    counts it is compared with."""
    rows = []
    frags_max = int(kc.data.get("max_skb_frags") or 17)
    for run in kc.data.get("frags", []):
        sender = run.get("sender")
        if sender not in KERNEL_SENDERS or not run.get("skbs"):
            continue
        mss = int(max((int(k) for k in run.get("gso_size", {}) if int(k)), default=1448))
        nbytes, mib = int(run["bytes"]), run["bytes"] / MiB
        per_call = KERNEL_SENDERS[sender][3]
        transfer = dict(nbytes=nbytes, call=int(run["call"]), max_frags=frags_max, goal=B.size_goal(mss, 64 * KiB),
                        mss=mss)
        m = sender_counts(pm, sender, **transfer, appended=appended_share(run) if per_call else 0.0)
        skb_bytes = run["mean_len"] - run.get("linear_bytes_mean", 0.0)
        kernel = {"frags_per_gso_skb": run["mean_frags_gso"], "frags_per_skb": run["mean_frags"],
                  "bytes_per_frag": skb_bytes / run["mean_frags"], "skbs_per_mib": run["skbs_per_mib"]}
        model = {"frags_per_gso_skb": m["gso_frags"] / m["gso_skbs"], "frags_per_skb": m["frags"] / m["skbs"],
                 "bytes_per_frag": m["bytes"] / m["frags"], "skbs_per_mib": m["skbs"] / mib}
        for q, how in KERNEL_QUANTITIES.items():
            r = compare.row(chapter, sender, q, float(kernel[q]), float(model[q]), mib=mib, measured=kc.source,
                            exact=True, how_counted=how)
            if r["agrees"] is False:  # the mechanism the model leaves out, named only where it shows
                r["reason"] = KERNEL_REASONS.get((sender, q), "") or (
                    central_reason(pm, sender, run, m, kernel[q], transfer) if q == CENTRAL else "")
            rows.append(r)
    return compare.table([rows])


def cut_evidence(run: Mapping, m: Mapping) -> bool:
    """Whether the kernel's frags beyond the model's (``m``: :func:`sender_counts`) are no more than its skbs
    beyond the model's, as when TCP cut skbs on their way out: each cut inside a frag leaves a piece of it in
    both skbs (one frag and one skb more), a cut between frags one skb more. More extra frags than extra skbs
    is not that, and stays unexplained."""
    extra_frags = run["mean_frags"] * run["skbs"] - m["frags"]
    extra_skbs = run["skbs"] - m["skbs"]
    return bool(0 < extra_frags <= extra_skbs + compare.SLACK_EVENTS)


def central_reason(pm, sender: str, run: Mapping, m: Mapping, kernel_bytes_per_frag: float,
                   transfer: Mapping) -> str:
    """Why the kernel's bytes per frag fall below the model's (``m``: :func:`sender_counts` of ``transfer``), named
    only where its counts show it: TCP cut skbs (:func:`cut_evidence`), or the copy path's page_frag offset
    (:func:`shift_evidence`); else ""."""
    if cut_evidence(run, m):
        return CUT_FRAGS
    if KERNEL_SENDERS[sender][1] == "pfrag" and shift_evidence(
            kernel_bytes_per_frag, m, sender_counts(pm, sender, **transfer, shift=PFRAG_SHIFT)):
        return PFRAG_SHIFTED
    return ""


def shift_evidence(kernel_bytes_per_frag: float, aligned: Mapping, shifted: Mapping) -> bool:
    """Whether the kernel's bytes per frag lie between the model's with every call starting on a fresh page_frag
    page (``aligned``) and with every call starting :data:`PFRAG_SHIFT` into one (``shifted``), each widened by
    the comparison's tolerance: the page_frag's offset at a call's start, which the kernel decides by when the
    last call's skbs are freed, places the frags, not something the model leaves out."""
    lo = shifted["bytes"] / shifted["frags"] * (1 - compare.TOLERANCE)
    hi = aligned["bytes"] / aligned["frags"] * (1 + compare.TOLERANCE)
    return bool(lo <= kernel_bytes_per_frag <= hi)


#: Where the model does not follow a kernel count, the kernel mechanism it leaves out (with its source).
#: The tail rule the per-call senders' model leaves out (what moves their counts from run to run).
TAIL_APPEND = ("The model is fed the share of calls that filled the previous call's unsent tail skb (from the short "
               "skbs the kernel sent: tcp_sendmsg_locked() appends to the write queue's unsent tail, for "
               "MSG_ZEROCOPY when msg_zerocopy_realloc() can extend its ubuf_info; net/ipv4/tcp.c, net/core/skbuff.c, "
               "v6.18 as v6.12) and treats every such call alike: one frag more in its full skb, one short skb fewer. "
               "A chain of appended calls shifts each tail by another 376 bytes, and a tail the kernel cuts "
               "(tcp_mss_split_point(), tso_fragment(), net/ipv4/tcp_output.c) adds a short skb the share does "
               "not separate.")
SPLICE_SHORT = ("The kernel sends short skbs the model does not make, and each pulls the mean over all skbs down "
                "while the full skbs agree (frags per GSO skb): the last sendmsg of each splice() call carries no "
                "MSG_MORE (splice_to_socket(), fs/splice.c, v6.18 as v6.12), so its push does not cork, and "
                + compare.TAIL_SPLIT[0].lower() + compare.TAIL_SPLIT[1:] + ".")
#: Why bytes per frag, the chapter's central quantity, may fall below the model's: named for a transfer only when
#: its counts show it (:func:`cut_evidence`).
CUT_FRAGS = ("TCP cut skbs on their way out (tso_fragment() when the congestion or receive window or the pacing "
             "rate allows less than the whole skb, tcp_mss_split_point(); net/ipv4/tcp_output.c), and a cut inside "
             "a frag leaves a piece of it in each skb (skb_split_no_header(), net/core/skbuff.c; v6.18 as v6.12): "
             "the kernel's frags beyond the model's are no more than its skbs beyond the model's, so the frags are "
             "cut, not placed otherwise. The model sends each call's skbs whole.")
#: A call that starts half a page_frag page in (:func:`shift_evidence`).
PFRAG_SHIFT = PFRAG_PAGES * PAGE // 2
#: Why the copy path's bytes per frag may fall below the model's: named only when its counts show it
#: (:func:`shift_evidence`).
PFRAG_SHIFTED = ("A call's bytes go where the sender's page_frag offset stands, and skb_page_frag_refill() moves it "
                 "back to 0 whenever every skb on the page has been freed (its refcount is 1; net/core/sock.c, since "
                 "5640f7685831 in v3.7, a symbol of the running 6.18 in /proc/kallsyms): how soon the receiver frees "
                 "the last call's skbs decides where the next call's frags begin, and a 64 KiB call that does not "
                 "start on a page spans three 32 KiB pages, not two. The model starts every call on a fresh page; "
                 "the kernel's bytes per frag lie between that and every call starting half a page in.")
KERNEL_REASONS: dict[tuple[str, str], str] = {
    **{(s_, q): TAIL_APPEND for s_ in ("send", "zerocopy", "zerocopy_thp")
       for q in ("frags_per_gso_skb", "frags_per_skb", "skbs_per_mib")},
    **{("splice", q): SPLICE_SHORT for q in ("frags_per_gso_skb", "frags_per_skb", "skbs_per_mib")},
}


class Results(kit.Probed):
    """Chapter 06's analyses for one parameter set, each computed once on first use (the probes: ``PROBES``,
    or ``probe_data`` given to the constructor)."""

    PROBES = PROBES
    btf = kit.probed("btf")
    pagemap = kit.probed("pagemap")

    @cached_property
    def goal(self) -> int:
        return B.size_goal(self.P.mss, self.P.gso_max_kib * KiB)

    @cached_property
    def layouts(self) -> pd.DataFrame:
        return entry_layouts(self.btf, self.P.max_frags)

    @cached_property
    def buffers(self) -> pd.DataFrame:
        """The measured buffers: pages, physical runs, folio runs, runs crossing folios."""
        rows = []
        for name, b in self.pagemap["buffers"].items():
            t = b["median_trial"]
            rows.append({"buffer": name, "kind": b.get("kind"), "pages": b["pages"], "physical_runs": b["runs"],
                         "folio_runs": b.get("folio_runs"), "runs_crossing_folios": t.get("runs_crossing_folios"),
                         "largest_run_pages": t["largest_run_pages"], "thp_backed": b["thp_backed"],
                         "runs_each_trial": b["runs_each"]})
        return pd.DataFrame(rows).set_index("buffer")

    def buffer(self, **over) -> dict:
        p = {**dict(self.P), **over}
        pages = p["send_kib"] * KiB // PAGE
        return compose(self.pagemap, source=p["source"], thp_share=p["thp_share"], fragmentation=p["fragmentation"],
                       pages=pages)

    def rules_for(self, **over) -> pd.DataFrame:
        p = {**dict(self.P), **over}
        buf = self.buffer(**over)
        goal = B.size_goal(p["mss"], p["gso_max_kib"] * KiB)
        return pd.DataFrame([send(buf, r, nbytes=p["send_kib"] * KiB, max_frags=p["max_frags"], goal=goal,
                                  mss=p["mss"]) for r in B.RULES]).set_index("rule")

    @cached_property
    def composed(self) -> dict:
        return self.buffer()

    @cached_property
    def rules(self) -> pd.DataFrame:
        """The run's send under each rule: frags, skbs, segments, refs, per MiB."""
        return self.rules_for()

    @cached_property
    def send_grid(self) -> pd.DataFrame:
        """Frags and skbs per MiB by send size, every rule, the run's buffer."""
        return kit.rows_over("send_kib", SEND_KIBS, lambda kib: self.rules_for(send_kib=kib), "rule",
                             ("frags_per_mib", "skbs_per_mib"))

    @cached_property
    def kinds(self) -> pd.DataFrame:
        """Each measured buffer sent whole (16 MiB) at the run's GSO and frag limits, every rule."""
        rows = []
        goal = self.goal
        for name, label in KIND_LABEL.items():
            if name not in self.pagemap["buffers"]:
                continue
            c, s = measured_layout(self.pagemap, name)
            buf = {"contig": c, "same_folio": s, "pages": c.size + 1}
            for rule in B.RULES:
                r = send(buf, rule, nbytes=buf["pages"] * PAGE, max_frags=self.P.max_frags, goal=goal, mss=self.P.mss)
                rows.append({"buffer": label, "rule": rule, **{k: r.get(k, 0) for k in (
                    "frags", "frags_per_mib", "skbs_per_mib", "segments_per_mib", "gso_refs_per_mib",
                    "attach_ref_atomics_per_mib", "gup_grab_atomics_per_mib", "flag_atomics_per_mib", "gup_calls",
                    "gup_pages", "gup_pte", "gup_pmd", "pmd_pages", "flag_atomics", "multi_folio_frags",
                    "extra_folio_pages", "max_frags_in_skb")}})
        return pd.DataFrame(rows)

    @cached_property
    def gso_grid(self) -> pd.DataFrame:
        """skbs per MiB as the GSO limit grows (BIG TCP), every rule, the run's buffer and frag limit."""
        return kit.rows_over("gso_max_kib", GSO_KIBS, lambda g: self.rules_for(gso_max_kib=g), "rule",
                             ("skbs_per_mib", "frags_per_skb", "max_frags_in_skb"))

    @cached_property
    def frags_needed(self) -> pd.DataFrame:
        """The most frags a full-size skb needs under each rule (no frag limit): the MAX_SKB_FRAGS at
        which frags would never be what closes an skb, at each GSO limit."""
        rows = []
        for g in GSO_KIBS:
            t = self.rules_for(gso_max_kib=g, max_frags=1 << 16)
            for rule, r in t.iterrows():
                rows.append({"gso_max_kib": g, "rule": rule, "frags_needed": int(r.max_frags_in_skb)})
        return pd.DataFrame(rows).pivot_table(index="gso_max_kib", columns="rule", values="frags_needed")

    @cached_property
    def access(self) -> dict:
        return access_bench()

    @cached_property
    def units(self) -> costs.UnitCosts:
        """This machine's unit costs (the build's, in a build), each with its range."""
        return kit.unit_costs(self.P.measurements)

    @cached_property
    def refs(self) -> pd.DataFrame:
        return ref_counts(self.rules)

    @cached_property
    def priced(self) -> pd.DataFrame:
        """The run's send priced per rule, with TSO and with software GSO (ref atomics at the
        ``atomics`` probe's local atomic; frag -> address at the time measured now, per rule's way)."""
        a = self.access
        rows = []
        for rule in B.RULES:
            ns = a["phys_ns_per_frag"] if rule == "phys" else a["page_ns_per_frag"]
            rows.append(price_refs(self.refs[self.refs.rule == rule], self.units, ns, costs.measured_label("live")))
        return pd.concat(rows, ignore_index=True).set_index(["rule", "gso"])

    @cached_property
    def frag_share(self) -> tuple[float, float, float]:
        """phys+len frags as a share of MSG_ZEROCOPY's: the run's send, and the least and most over it and every
        measured buffer sent whole."""
        k = self.kinds.set_index(["buffer", "rule"])
        run = float(self.rules.loc["phys", "frags"] / self.rules.loc["zerocopy", "frags"])
        shares = [run] + [_share(k, b) for b in k.index.get_level_values(0).unique()]
        return run, min(shares), max(shares)

    @cached_property
    def hazard(self) -> dict:
        """phys+len frags that cover more than one folio: the run's send, and the page cache measured whole."""
        r = self.rules.loc["phys"]
        k = self.kinds.set_index(["buffer", "rule"])
        pc = k.loc[(KIND_LABEL[FILE], "phys")] if (KIND_LABEL[FILE], "phys") in k.index else None
        return {"frags": int(r.frags), "multi_folio_frags": int(r.multi_folio_frags),
                "extra_folio_pages": int(r.extra_folio_pages), "pages": int(r.pages),
                "page_cache_multi_folio_frags": int(pc.multi_folio_frags) if pc is not None else 0,
                "page_cache_frags": int(pc.frags) if pc is not None else 0,
                "page_cache_extra_pages": int(pc.extra_folio_pages) if pc is not None else 0}

    # -- which kernel, and the model against it
    @cached_property
    def kcount(self):
        """The kcount_copy probe: frags per skb of four senders, counted by this kernel's tracepoints."""
        return kit.probe("kcount_copy", self.P.measurements)

    @cached_property
    def release(self) -> str:
        """The release whose rules the model follows (the ``kernel`` parameter)."""
        return kit.kernel_release(self.P.kernel, self.P.measurements, self.kcount)

    @cached_property
    def comparison(self) -> pd.DataFrame:
        """The model against the kernel's frag counts, one row per sender and quantity (compare's format)."""
        return kernel_rows(self.kcount, self.pagemap)

    @cached_property
    def comparison_table(self) -> pd.DataFrame:
        c = self.comparison
        return c.assign(reason=c.reason.str.slice(0, 60))[["transfer", "quantity", "kernel", "model", "ratio",
                                                           "agrees", "measured"]]

    @cached_property
    def kernels(self) -> pd.DataFrame:
        """The rules of this chapter on the kernel the model follows and on 6.12 LTS, and what each does to the
        chapter's numbers (:mod:`fraglife.model.kernels`)."""
        return kernel_table(self.release)

    @cached_property
    def headline(self) -> dict:
        r = self.rules
        z, ph, sp = r.loc["zerocopy"], r.loc["phys"], r.loc["splice"]
        return {
            "phys_vs_zerocopy_frags": float(ph.frags / z.frags), "phys_vs_splice_frags": float(ph.frags / sp.frags),
            "splice_frags_per_mib": float(sp.frags_per_mib), "zerocopy_frags_per_mib": float(z.frags_per_mib),
            "phys_frags_per_mib": float(ph.frags_per_mib),
            "splice_skbs_per_mib": float(sp.skbs_per_mib), "zerocopy_skbs_per_mib": float(z.skbs_per_mib),
            "phys_skbs_per_mib": float(ph.skbs_per_mib),
            "zerocopy_gso_refs_per_mib": float(z.gso_refs_per_mib), "phys_gso_refs_per_mib": float(ph.gso_refs_per_mib),
            "phys_multi_folio_share": float(ph.multi_folio_share),
            "zerocopy_ref_ns_per_mib_sw_gso": float(self.priced.loc[("zerocopy", "software GSO"), "ns_per_mib"]),
            "phys_ref_ns_per_mib_sw_gso": float(self.priced.loc[("phys", "software GSO"), "ns_per_mib"]),
            "zerocopy_gup_atomics_per_mib": float(z.gup_grab_atomics_per_mib + z.flag_atomics_per_mib),
            "zerocopy_gso_uarg_refs_per_mib": float(z.segments_per_mib),
            "phys_frag_share": float(self.frag_share[0]), "phys_frag_share_low": float(self.frag_share[1]),
            "phys_frag_share_high": float(self.frag_share[2]),
            "kernel_rows_agree": float(compare.tally(self.comparison)[0]),
            "kernel_rows": float(compare.tally(self.comparison)[1]),
            "probes": self.measured,
        }


LORE_ID = "770012.1748618092@warthog.procyon.org.uk"
RULE_ROWS = (
    ("splice", "MSG_SPLICE_PAGES (splice, sendfile, kernel senders)",
     "skb_splice_from_iter() cuts at every page (part = min(PAGE_SIZE - off, len)); skb_append_pagefrags() "
     "adds a frag per page, or grows the last one if it is the same page", "one get_page() per frag",
     "net/core/skbuff.c skb_splice_from_iter(), skb_append_pagefrags(), v6.18 (the same in v6.12)"),
    ("zerocopy", "MSG_ZEROCOPY (user pages)",
     "zerocopy_fill_skb_from_iter() merges a page into the previous frag when both have the same compound "
     "head and the offsets continue: a frag is a run of pages inside one folio",
     "a GUP grab per PTE-mapped page, or one per PMD leaf per GUP call for a THP, each with a PG_referenced set "
     "(iov_iter_get_pages2() -> gup-fast); then one page_ref_sub() per merged run",
     "net/core/datagram.c zerocopy_fill_skb_from_iter(), mm/gup.c gup_fast_pte_range(), gup_fast_pmd_leaf(), v6.18 "
     "(the same in v6.12)"),
    ("phys", "phys+len bio_vec (the thread's future)",
     "a frag is a physical address and a length: any physically contiguous run is one frag, across folios",
     "no page pointer, so no page ref: the memory needs an owner", f"Howells, 30 May 2025 (lore {LORE_ID})"),
)


def rule_table() -> pd.DataFrame:
    return pd.DataFrame(list(RULE_ROWS), columns=["rule", "used by", "where a frag ends", "refs at attach", "source"]).set_index("rule")


HISTORY = (
    ("2019", "skb_frag_t becomes a bio_vec", "Matthew Wilcox, \"Convert skb_frag_t to bio_vec\"",
     "merge 955315b0dc8c8641311430f40fbe53990ba40e33"),
    ("before v6.12", "skb_frag_t gets a private struct of the same layout", "Jens Axboe, \"net: decouple skb_frag_t from "
     "struct bio_vec\"", "61c70b63a35f6a88997777aa0ff0cf5e7a5471bc"),
    ("before v6.12", "the page pointer becomes a netmem_ref", "Mina Almasry, \"net: add netmem to skb_frag_t\"",
     "21d2e6737c9789aa9b23c8a4131cbca8260139fd"),
    ("Sep 2025", "DMA mapping by physical address", "Leon Romanovsky, \"dma-mapping: export new dma_*map_phys() "
     "interface\"; pull dma-mapping-6.19-2025-12-05 converts dma_map_ops to physical addresses", "f7326196a781"),
)


def history() -> pd.DataFrame:
    return pd.DataFrame(list(HISTORY), columns=["when", "what", "change", "commit"]).set_index("when")


def buffers_remark(R: Results) -> str:
    b = R.buffers
    fresh, f = b.loc[FRESH_4K], b.loc[FILE]
    anon = (f"Of {int(fresh.pages)} pages, fresh anonymous 4 KiB memory came in **{fresh.physical_runs:g}** physical "
            f"runs (each trial: {fresh.runs_each_trial}); after the process freed every other page of "
            f"{R.pagemap['fragment_bytes'] >> 20} MiB, in **{b.loc[FRAG_4K, 'physical_runs']:g}**")
    fs = R.pagemap["buffers"][FILE].get("filesystem", "?")
    return (f"{anon}. THP: **{b.loc[THP, 'physical_runs']:g}** runs. The page cache ({fs}): **{f.folio_runs:g}** "
            f"folio runs and **{f.physical_runs:g}** physical runs, {f.runs_crossing_folios:g} of them spanning "
            f"more than one folio.")


def hazard_remark(R: Results) -> str:
    h = R.hazard
    pc = (h["page_cache_multi_folio_frags"], h["page_cache_frags"], h["page_cache_extra_pages"])
    return (f"As phys+len, **{h['multi_folio_frags']}** of the run's {h['frags']} frags cover more than one folio and "
            f"**{h['extra_folio_pages']}** of its {h['pages']} pages lie outside their frag's first folio; the "
            f"page cache sent whole: {pc[0]} of {pc[1]} frags, {pc[2]} pages.")


def access_remark(R: Results) -> str:
    a = R.access
    same = "the same" if a["same_addresses"] else "**not the same**"
    return (f"Over {a['frags']:,} frags, median of {a['repeats']} runs: the page-pointer way takes "
            f"**{a['page_over_phys']:.2f}x** the time per frag of the phys way ({a['page_ns_per_frag']:.2f} against "
            f"{a['phys_ns_per_frag']:.2f} ns), and the addresses are {same}.")


def headline(**params) -> dict:
    """Chapter 06's result as one record: frags, skbs and software-GSO refs per MiB under today's
    MSG_SPLICE_PAGES and MSG_ZEROCOPY rules and with phys+len coalescing, and the share of phys+len
    frags that cover more than one folio."""
    return Results(params).headline


def panel_data(params: Mapping, *, send_kib: int, thp_share: float, fragmentation: float, max_frags: int,
               source: str, gso_max_kib: int) -> pd.DataFrame:
    """The panel's table for one setting: the send under each rule (other parameters the run's)."""
    r = Results(dict(params, send_kib=send_kib, thp_share=thp_share, fragmentation=fragmentation,
                     max_frags=max_frags, source=source, gso_max_kib=gso_max_kib))
    t = r.rules.reset_index()
    return t[["rule", "frags", "frags_per_mib", "skbs_per_mib", "frags_per_skb", "gso_refs_per_mib",
              "attach_ref_atomics_per_mib", "multi_folio_frags"]]


def _share(k: pd.DataFrame, label: str) -> float:
    return k.loc[(label, "phys")].frags / k.loc[(label, "zerocopy")].frags


def _lifetime(h: dict) -> str:
    """The run's phys+len frags that cover more than one folio, and the page cache's, in words."""
    if h["multi_folio_frags"]:
        out = (f"**{h['multi_folio_frags']}** of the run's {h['frags']} phys+len frags cover more than one folio "
               f"({h['extra_folio_pages']} pages outside the frag's first folio)")
    else:
        out = f"None of the run's {h['frags']} phys+len frags happens to cover more than one folio"
    n = h["page_cache_multi_folio_frags"]
    return (f"{out}; sent whole, the measured page cache has {kit.plural(n, 'frag')} of {h['page_cache_frags']} "
            f"that {'does' if n == 1 else 'do'}")


def conclusion(R: Results) -> str:
    P, r, fn = R.P, R.rules, R.frags_needed
    sp, z, ph = r.loc["splice"], r.loc["zerocopy"], r.loc["phys"]
    k = R.kinds.set_index(["buffer", "rule"])
    where = ("page cache" if P.source == "page_cache" else
             f"anonymous memory ({P.thp_share:.0%} in THPs, {P.fragmentation:.0%} of its 4 KiB pages allocated after "
             f"free memory was fragmented)")
    shares = ", ".join(f"{_share(k, KIND_LABEL[n]):.0%} ({KIND_LABEL[n]})" for n in (FRESH_4K, FILE, FRAG_4K, THP)
                       if (KIND_LABEL[n], "phys") in k.index)
    big = fn.loc[fn.index.max()]
    bigtcp = ("so phys+len fills such an skb with a smaller `MAX_SKB_FRAGS`" if big["phys"] < big["zerocopy"] else
              "so phys+len saves no frag here: this buffer is not contiguous beyond its folios")
    pr = R.priced.ns_per_mib
    agree, n = compare.tally(R.comparison)
    return kit.points(
        f"**Frags.** {P.send_kib} KiB of {where}: **{sp.frags:.0f}** frags with MSG_SPLICE_PAGES, **{z.frags:.0f}** "
        f"with MSG_ZEROCOPY, **{ph.frags:.0f}** as phys+len ({ph.frags / z.frags:.0%} of MSG_ZEROCOPY's; whole "
        f"measured buffers: {shares}). At the {P.gso_max_kib} KiB GSO limit that is {sp.skbs_per_mib:.1f}, "
        f"{z.skbs_per_mib:.1f} and {ph.skbs_per_mib:.1f} skbs per MiB; at {fn.index.max()} KiB (BIG TCP) a full skb "
        f"needs {int(big['splice'])}, {int(big['zerocopy'])} or {int(big['phys'])} frags, {bigtcp}. The model's frag "
        f"counts agree with the running kernel's in {agree} of {n} quantities.",
        f"**Refs.** MSG_ZEROCOPY's lookups take {z.gup_grab_atomics_per_mib + z.flag_atomics_per_mib:.0f} GUP atomics "
        f"per MiB here (a grab and a PG_referenced set per PTE page, per PMD leaf per call for a THP). Software GSO "
        f"adds {z.gso_refs_per_mib:.0f} frag refs and {z.segments_per_mib:.0f} ubuf_info refs per MiB (phys+len: "
        f"{ph.gso_refs_per_mib:.0f} owner-held frag slices). Refs outside GUP and address arithmetic: "
        f"{pr[('zerocopy', 'TSO')]:,.0f} ns per MiB with TSO, {pr[('zerocopy', 'software GSO')]:,.0f} with software "
        f"GSO; an owner ref per skb instead, {pr[('phys', 'TSO')]:,.0f} ({pr[('phys', 'software GSO')]:,.0f}), "
        f"before pins.",
        f"**Lifetime.** {_lifetime(R.hazard)}. What keeps their pages alive is the owner of "
        f"[chapter 08](08_unified_owner.ipynb).")


#: What this chapter's model follows that reads the same in v6.12.118 and v6.18.0 (diffed function by function).
UNCHANGED = ("zerocopy_fill_skb_from_iter() (net/core/datagram.c), gup-fast's PG_referenced and its PMD-leaf grab "
             "(mm/gup.c), skb_segment()'s ubuf_info ref per segment (net/core/skbuff.c), skb_splice_from_iter() and "
             "tcp_sendmsg_locked()'s fill (net/ipv4/tcp.c): the same in v6.12.118 and v6.18.0")


def kernel_table(release: str) -> pd.DataFrame:
    """This chapter's versioned rules on ``release`` and on 6.12 LTS, and whether each moves the chapter's numbers."""
    t = kit.kernel_rules(release, "06")
    return t.assign(moves_numbers="no: the model prices no DMA mapping (veth maps nothing, and "
                                  "skb_frag_dma_map() still maps pages on 6.18)")


def kernel_remark(R: Results) -> str:
    """Markdown: which kernel the model follows, and what 6.12 LTS changes (nothing in the numbers)."""
    return (f"The model follows **{kit.kernel_label(R.release)}**. Every rule it counts reads the same on 6.12 LTS "
            f"({UNCHANGED}), so the numbers of this chapter are the same on both; the one rule that changed, "
            f"DMA mapping by physical address, is in the table.")


def comparison_remark(R: Results) -> str:
    """Markdown: how many of the kernel's counts the model follows, the confirming quantity first."""
    agree, n = compare.tally(R.comparison)
    c = R.comparison[R.comparison.quantity == CENTRAL]
    where = "measured now" if set(c.measured) == {"live"} else "from the recording in data/probes/ (not this machine now)"
    per = ", ".join(f"{r.transfer} {r.kernel:,.0f} B (model {r.model:,.0f})" for r in c.itertuples())
    off = R.comparison[R.comparison.agrees == False]  # noqa: E712 (None: not compared)
    gaps = "".join("\n- " + "; ".join(f"`{r.transfer}`, {r.quantity.replace('_', ' ')}: model {r.model:,.2f}, "
                                     f"kernel {r.kernel:,.2f}" for r in rows) + f". {why}"
                   for why, rows in compare.by_reason(off, "**Not explained by the chapter.**").items())
    fed = ", ".join(f"{r['name']} {kit.pct(appended_share(r))}" for r in R.kcount.data.get("frags", [])
                    if r.get("sender") in KERNEL_SENDERS and KERNEL_SENDERS[r["sender"]][3])
    return (f"Bytes per frag, the quantity that confirms where today's frags end: {per}. The model is fed what the "
            f"kernel decided for each connection, the share of calls that filled the previous call's unsent tail "
            f"({fed}). Of {n} quantities, **{agree}** agree {compare.RULE}; the kernel's counts are {where}." + (f"\n\nWhere they differ:\n{gaps}" if gaps else ""))


def answer(R: Results):
    """Chapter 06's row of the answers table: bullet (f)."""
    from .. import answers

    share, lo, hi = R.frag_share
    h = R.hazard
    spans = h["multi_folio_frags"] / max(1, h["frags"])
    agree, n = compare.tally(R.comparison)
    where = "fresh 4 KiB anonymous memory" if R.P.source == "anon" and R.P.thp_share == 0 and \
        R.P.fragmentation == 0 else f"the run's {R.P.source} buffer"
    number = answers.Number(100 * share, 100 * lo, 100 * hi, unit="%",
                            what="phys+len frags as a share of MSG_ZEROCOPY's (the run's send; least and most over "
                                 "this machine's measured buffers)")
    text = (f"Phys+len frags need {number.text} of MSG_ZEROCOPY's frags on {where}, save no skb at the 64 KiB GSO "
            f"limit, and {answers.format_number(100 * spans, unit='%')} of them span folios, so a page ref cannot "
            f"hold them: they need an owner of the whole range.")
    return answers.Answer(
        "f", text, "agree, at a cost", number,
        answers.cross_checked(f"the kcount_copy probe's frags per skb of four senders over veth ({agree} of {n} "
                              f"quantities agree); buffer layouts from the pagemap probe", R.measured))


# ---------------------------------------------------------------- claims

def _all_sends(R: Results) -> list[pd.DataFrame]:
    k = R.kinds
    return [R.rules] + [g.set_index("rule") for _, g in k.groupby("buffer")]


def _fewer_frags(R: Results):
    ok = all(t.loc["phys", "frags"] <= t.loc["zerocopy", "frags"] <= t.loc["splice", "frags"] for t in _all_sends(R))
    r = R.rules
    return ok, {"splice": int(r.loc["splice", "frags"]), "zerocopy": int(r.loc["zerocopy", "frags"]),
                "phys": int(r.loc["phys", "frags"])}


def _no_more_skbs(R: Results):
    tables = [R.rules] + [g.set_index("rule") for _, g in R.gso_grid.groupby("gso_max_kib")]
    ok = all(t.loc["phys", "skbs_per_mib"] <= t.loc["zerocopy", "skbs_per_mib"] <= t.loc["splice", "skbs_per_mib"]
             for t in tables)
    return ok, {"phys_skbs_per_mib": float(R.rules.loc["phys", "skbs_per_mib"]),
                "splice_skbs_per_mib": float(R.rules.loc["splice", "skbs_per_mib"])}


def _legacy_gso_17_frags(R: Results):
    fn = R.frags_needed
    legacy = fn.loc[64]
    ok = bool(legacy.max() <= 17)
    if R.P.gso_max_kib == 64 and R.P.max_frags >= 17:
        ok &= R.rules.skbs.nunique() == 1
    return ok, {"most_page_frags_in_64k_skb": int(legacy["splice"])}


def _todays_frags_one_folio(R: Results):
    today = [t.loc[["splice", "zerocopy"], "multi_folio_frags"].sum() for t in _all_sends(R)]
    return all(x == 0 for x in today), {}


def _spanning_frags_leave_pages(R: Results):
    sends = _all_sends(R)
    ok = all((t.loc["phys", "multi_folio_frags"] > 0) == (t.loc["phys", "extra_folio_pages"] > 0) for t in sends)
    return ok, {"run_multi_folio_frags": R.hazard["multi_folio_frags"],
                "page_cache_multi_folio_frags": R.hazard["page_cache_multi_folio_frags"]}


def _gup_grabs(R: Results):
    ok = True
    for t in _all_sends(R):
        z = t.loc["zerocopy"]
        # a call of at most MAX_SKB_FRAGS pages meets two PMD leaves at most
        ok &= bool(z.gup_pte == z.gup_pages - z.pmd_pages and z.gup_pmd <= 2 * z.gup_calls
                   and z.flag_atomics == z.gup_pte + z.gup_pmd)
    k = R.kinds.set_index(["buffer", "rule"])
    ev = {"run_gup_atomics_per_mib": float(R.rules.loc["zerocopy", "gup_grab_atomics_per_mib"]
                                           + R.rules.loc["zerocopy", "flag_atomics_per_mib"])}
    for name in (FRESH_4K, THP):
        if (KIND_LABEL[name], "zerocopy") in k.index:
            r = k.loc[(KIND_LABEL[name], "zerocopy")]
            ev[f"{name}_gup_atomics_per_mib"] = float(r.gup_grab_atomics_per_mib + r.flag_atomics_per_mib)
    if (KIND_LABEL[THP], "zerocopy") in k.index:  # a THP: a grab per leaf per call, below one per page
        ok &= bool(k.loc[(KIND_LABEL[THP], "zerocopy")].gup_grab_atomics_per_mib < MiB / PAGE)
    return ok, ev


def _gso_uarg_per_segment(R: Results):
    r = R.refs.set_index(["rule", "gso"])
    z = R.rules.loc["zerocopy"]
    added = r.loc[("zerocopy", "software GSO"), "uarg_ref_atomics_per_mib"] - r.loc[("zerocopy", "TSO"),
                                                                                    "uarg_ref_atomics_per_mib"]
    return bool(abs(added - 2 * z.segments_per_mib) < 1e-6), {"segments_per_mib": float(z.segments_per_mib),
                                                             "uarg_atomics_added_per_mib": float(added)}


def _kernel_counts(R: Results):
    return compare.follows(R.comparison, R.kcount.source)


def _packed_only(R: Results):
    t = R.layouts[R.layouts.frags == 17].set_index("entry")
    today = t.loc["skb_frag_t (today)", "shinfo_bytes"]
    ok = bool(t.loc["phys + len", "shinfo_bytes"] == today and t.loc["phys + len, packed", "shinfo_bytes"] < today)
    return ok, {"today_shinfo": int(today), "packed_shinfo": int(t.loc["phys + len, packed", "shinfo_bytes"])}


#: The claims the talk shows (the rest are in the chapter).
TALK_CLAIMS = ("coarser_rules_fewer_frags", "spanning_frags_leave_pages_unprotected",
               "model_follows_the_kernels_frag_counts")

#: Claims over the probes' counts of this kernel (per_point=False) are the chapter run's, not a sweep point's.
CLAIMS = (
    Claim("coarser_rules_fewer_frags",
          "On every buffer, phys+len needs no more frags than MSG_ZEROCOPY's folio runs, which need no more than "
          "MSG_SPLICE_PAGES' page frags.",
          "holds", _fewer_frags),
    Claim("coarser_rules_no_more_skbs",
          "At every GSO limit, phys+len needs no more skbs per MiB than folio runs, which need no more than page "
          "frags.",
          "holds", _no_more_skbs),
    Claim("legacy_gso_fits_17_frags",
          "At the legacy 64 KiB GSO limit a full skb never needs more than 17 frags, whatever the rule, so "
          "coalescing changes no skb count there.",
          "holds", _legacy_gso_17_frags),
    Claim("todays_frags_stay_in_one_folio",
          "Under today's rules (MSG_SPLICE_PAGES, MSG_ZEROCOPY) no frag covers more than one folio.",
          "holds", _todays_frags_one_folio),
    Claim("spanning_frags_leave_pages_unprotected",
          "Every phys+len frag that covers more than one folio has pages outside the folio of its first page, "
          "which a single page ref does not hold (and every buffer without such frags has no such pages).",
          "holds", _spanning_frags_leave_pages),
    Claim("zerocopy_grabs_per_pte_page_and_per_pmd_leaf",
          "MSG_ZEROCOPY's GUP grabs each PTE-mapped page once but a PMD-mapped THP once per leaf per GUP call, and "
          "sets PG_referenced with each grab: on a THP buffer it takes fewer grabs than pages, at most two per call "
          "(the earlier rule of one ref per page was wrong for THPs).",
          "holds", _gup_grabs),
    Claim("software_gso_takes_a_uarg_ref_per_segment",
          "Software GSO of a MSG_ZEROCOPY skb takes a ubuf_info ref per segment (skb_zerocopy_clone()) and drops "
          "it when the segment is freed: two atomics per segment on top of the frag refs.",
          "holds", _gso_uarg_per_segment),
    Claim("model_follows_the_kernels_frag_counts",
          f"The model's frags per skb, bytes per frag and skbs per MiB of four senders agree with the running "
          f"kernel's counts {compare.RULE}, or the chapter names the kernel mechanism it leaves out.",
          "holds", _kernel_counts, per_point=False),
    Claim("only_a_packed_entry_shrinks_shinfo",
          "A phys_addr_t + length entry pads to 16 bytes like skb_frag_t, leaving skb_shared_info as it is; only "
          "a packed 12-byte entry shrinks it.",
          "holds", _packed_only),
)
