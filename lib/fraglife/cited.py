"""What a real NIC pays per buffer in DMA mapping and IOMMU work: cited figures, not measured here.

veth is not a NIC: it maps nothing for DMA and programs no IOMMU, so the probes of this book see
none of that work. This module loads the published figures of ``data/cited/dma_iommu.csv``
(provenance in ``data/cited/README.md``), each with its value, unit, what it measures, the
hardware and kernel, the source (lore Message-ID, commit or paper) and where in the source, and
sets them beside a chapter's own per-frag numbers. Every figure is labelled :data:`LABEL`.

It sits at the bottom of the package with the model: it imports only :mod:`fraglife.paths`.
"""

from __future__ import annotations

import csv
import math
from functools import lru_cache
from pathlib import Path

import pandas as pd

from fraglife import paths

LABEL = "cited, not measured here"
PATH = paths.DATA / "cited" / "dma_iommu.csv"
FIELDS = ("id", "kind", "value", "value_high", "unit", "buffer_bytes", "measures", "iommu_mode",
          "hardware", "kernel", "source", "where")
#: map, unmap: time per operation on one buffer; throughput: what the IOMMU does to a whole workload
KINDS = ("map", "unmap", "throughput")
REQUIRED = ("id", "kind", "value", "unit", "measures", "hardware", "source", "where")
#: The size-resolved unmap times (one platform, one benchmark), interpolated between their sizes.
UNMAP_CURVE = "smmu_unmap_"
#: A map and an unmap of one buffer on one platform, the same run.
MAP_PAIR = ("bench_map_8p", "bench_unmap_8p")

#: The IOVA granule a mapping is rounded up to: drivers/iommu/dma-iommu.c __iommu_dma_map() and
#: __iommu_dma_unmap(), "size = iova_align(iovad, size + iova_off)" (torvalds/linux at 010e85f9e47c, the version
#: read; the same line in the later patches read). That unmap syncs the IOTLB at once in strict mode
#: ("if (!cookie->fq_domain) iommu_tlb_sync(...)") and queues the IOVA for a batched flush otherwise
#: (iommu_dma_free_iova(), "non-strict mode"). The granule is the domain's smallest IOMMU page; this module takes
#: 4 KiB, the smallest buffer the cited unmap times measure.
GRANULE = 4096

#: When a buffer is mapped for DMA, per design (source: file and function, or lore).
DESIGN = (
    ("a frag sent by a NIC today", "mapped per frag when the driver queues the skb (skb_frag_dma_map() maps "
     "the frag's page) and unmapped after transmission: \"A typical TX transmission for NIC would be like: "
     "map -> TX -> unmap since the socket buffers come from OS\"",
     "include/linux/skbuff.h skb_frag_dma_map(), which still maps pages although dma_map_phys() exists "
     "(Leon Romanovsky, commit f7326196a781, Sep 2025); "
     "the quote: Barry Song, the dma_map_benchmark commit adding a transmission delay, read at "
     "http://106.75.45.236:3000/UbiquitousOS/OpenCloudOS-Kernel/src/commit/"
     "a426017ed5932141da4f09a35ed562bc845fa281/tools/testing/selftests/dma"),
    ("a page_pool page on receive", "mapped once when the pool allocates it and kept while it is recycled: "
     "\"This mapping is kept for lifetime of page, until leaving pool\"; unmapped when it leaves the pool",
     "net/core/page_pool.c page_pool_dma_map(), page_pool_return_netmem() (torvalds/linux at 039f248a6cc1); "
     "the rationale: \"it moves the DMA map/unmap cost to setup time\" (J. D. Brouer, \"XDP: Make RX "
     "packet-pages writable\", iovisor-dev, 2016)"),
    ("a devmem dma-buf", "mapped once when it is bound (dma_buf_map_attachment_unlocked()); each "
     "net_iov's DMA address is the chunk's base plus its index; unmapped at the binding's last put",
     "net/core/devmem.c net_devmem_bind_dmabuf(), net_devmem_get_dma_addr(), "
     "__net_devmem_dmabuf_binding_free() (torvalds/linux at 03e96b8c11d1)"),
)


def _row_error(path: Path, line: int, field: str, value: str, allowed: str) -> ValueError:
    return ValueError(f"{path.name} line {line}: {field} = {value!r} is not allowed: {allowed}")


def _number(path: Path, line: int, field: str, text: str, required: bool) -> float:
    if not text.strip():
        if required:
            raise _row_error(path, line, field, text, "expected a number")
        return math.nan
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not math.isfinite(v) or v < 0:
        raise _row_error(path, line, field, text, "expected a finite number >= 0")
    return v


def load(path: Path = PATH) -> pd.DataFrame:
    """Every cited row, checked: each has its fields, a known kind, a number, a unit and a source."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != FIELDS:
            raise ValueError(f"{path.name}: columns {reader.fieldnames} are not allowed: expected {list(FIELDS)}")
        rows = []
        for line, r in enumerate(reader, start=2):
            for field in REQUIRED:
                if not (r.get(field) or "").strip():
                    raise _row_error(path, line, field, r.get(field) or "", "every row needs one")
            if r["kind"] not in KINDS:
                raise _row_error(path, line, "kind", r["kind"], f"expected one of {', '.join(KINDS)}")
            row = dict(r)
            row["value"] = _number(path, line, "value", r["value"], True)
            row["value_high"] = _number(path, line, "value_high", r["value_high"], False)
            row["buffer_bytes"] = _number(path, line, "buffer_bytes", r["buffer_bytes"], False)
            if row["value_high"] < row["value"]:
                raise _row_error(path, line, "value_high", r["value_high"], f"expected >= value {r['value']}")
            rows.append(row)
    df = pd.DataFrame(rows, columns=list(FIELDS))
    dup = df.id[df.id.duplicated()]
    if len(dup):
        raise ValueError(f"{path.name}: id = {dup.iloc[0]!r} is not allowed twice")
    return df


@lru_cache(maxsize=1)
def figures() -> pd.DataFrame:
    """The cited rows of :data:`PATH` (loaded once)."""
    return load()


def figure(fid: str) -> dict:
    """One cited row by id."""
    df = figures()
    hit = df[df.id == fid]
    if hit.empty:
        raise ValueError(f"figure = {fid!r} is not allowed: expected one of {', '.join(df.id)}")
    return hit.iloc[0].to_dict()


def sig(x: float) -> str:
    """Three significant figures, without an exponent (5e+03 -> 5,000)."""
    return f"{float(f'{x:.3g}'):,.10g}"


def three(x: float) -> float:
    """``x`` to three significant figures (NaN stays NaN): how the chapters show cited comparisons."""
    return float(f"{x:.3g}") if math.isfinite(x) else x


def span(values) -> str:
    """The least and most of ``values`` as "a to b" (one number when they agree to three figures)."""
    lo, hi = sig(min(values)), sig(max(values))
    return lo if lo == hi else f"{lo} to {hi}"


def value_text(row: dict) -> str:
    """A row's value as its source gives it: a number or a range, with its unit."""
    lo, hi = row["value"], row["value_high"]
    num = f"{lo:g}" if math.isnan(hi) else f"{lo:g}-{hi:g}"
    return f"{num} {row['unit']}"


def _show(df: pd.DataFrame, what: str) -> pd.DataFrame:
    """The rows as a chapter shows them: the source by its first author (or project) and the row's id, whose
    full reference and place in the source are in :data:`PATH` (a URL or Message-ID does not wrap on a page)."""
    return pd.DataFrame({what: df.measures, "figure": [value_text(r) for r in df.to_dict("records")],
                         "IOMMU": df.iommu_mode, "hardware": df.hardware,
                         "source": [f"{s.split(',')[0]} ({i})" for s, i in zip(df.source, df.id)],
                         "evidence": LABEL})


def operations() -> pd.DataFrame:
    """The per-operation figures (map and unmap of one buffer), as the chapters show them."""
    df = figures()
    return _show(df[df.kind.isin(("map", "unmap"))], "operation")


def throughput() -> pd.DataFrame:
    """What the IOMMU does to whole workloads (strict against lazy against none), as the chapters show them."""
    df = figures()
    return _show(df[df.kind == "throughput"], "what was measured")


def design() -> pd.DataFrame:
    """When a buffer is mapped for DMA, per design, with the source of each statement."""
    return pd.DataFrame(list(DESIGN), columns=["buffer", "mapped", "source"])


def unmap_us(nbytes: float) -> float:
    """The cited unmap time (us) of one buffer of ``nbytes``: linear between the sizes measured; NaN outside
    them (never extrapolated)."""
    df = figures()
    curve = df[df.id.str.startswith(UNMAP_CURVE)].sort_values("buffer_bytes")
    x, y = curve.buffer_bytes.to_numpy(float), curve.value.to_numpy(float)
    if not (x[0] <= nbytes <= x[-1]):
        return math.nan
    return float(pd.Series(y, index=x).reindex(sorted({*x, float(nbytes)})).interpolate("index")[float(nbytes)])


def map_unmap_us() -> float:
    """A map plus an unmap of one buffer, both from one run of one platform (us)."""
    return sum(figure(f)["value"] for f in MAP_PAIR)


#: Memory a NIC maps once rather than per frag, by :data:`DESIGN` row: what the run's frags come from.
MAPPED_ONCE = {"page_pool": DESIGN[1], "devmem": DESIGN[2]}


def per_frag(frag_bytes: float, frags_per_mib: float, book_ns_per_mib: float, book_what: str,
             mapped_once: str = "") -> pd.DataFrame:
    """The book's own per-frag cost beside what mapping each frag for DMA would cost on a real NIC.

    ``frags_per_mib`` frags of ``frag_bytes`` (mean) carry a MiB; the book prices its frag lifetime work at
    ``book_ns_per_mib`` (``book_what`` says which). Each cited row charges one mapping per frag, as a NIC's
    transmit path does (:data:`DESIGN`); the ratio says how many times the book's own number that is. A
    mapping covers whole IOVA granules (:data:`GRANULE`), so the mean frag is priced at its size rounded up
    to whole granules: a lower bound, since a frag that crosses a page boundary maps one granule more.
    ``mapped_once`` ("page_pool", "devmem"): the frags' memory is mapped once, not per frag
    (:data:`MAPPED_ONCE`); a last row says so, at no cost per frag."""
    if mapped_once and mapped_once not in MAPPED_ONCE:
        raise ValueError(f"mapped_once = {mapped_once!r} is not allowed: expected one of {', '.join(MAPPED_ONCE)}")
    if not (frags_per_mib > 0 and frag_bytes > 0):
        raise ValueError(f"frags_per_mib = {frags_per_mib!r}, frag_bytes = {frag_bytes!r} are not allowed: "
                         "expected numbers > 0")
    pair = [figure(f) for f in MAP_PAIR]
    rows = [("the book: " + book_what, book_ns_per_mib / frags_per_mib, "modelled here at this machine's "
             "measured unit costs")]
    smmu = figure(f"{UNMAP_CURVE}4k")
    mapped = GRANULE * math.ceil(frag_bytes / GRANULE)
    rows.append((f"unmap of a {sig(frag_bytes / 1024)} KiB frag ({sig(mapped / 1024)} KiB of IOVA "
                 "granules), Arm SMMU", 1000 * unmap_us(mapped), f"{LABEL}: {smmu['source']}"))
    rows.append(("map + unmap of one 8-page buffer per frag, dma_map_benchmark", 1000 * map_unmap_us(),
                 f"{LABEL}: {pair[0]['source']}"))
    if mapped_once:
        buf, how, src = MAPPED_ONCE[mapped_once]
        rows.append((f"this run's frags: {buf}, {how.split(':')[0].split(';')[0].split(' (')[0]}", 0.0, src))
    book = book_ns_per_mib
    return pd.DataFrame([{"cost": what, "ns per frag": three(ns), "ns per MiB": three(ns * frags_per_mib),
                          "x the book's": three(ns * frags_per_mib / book) if book > 0 else math.nan,
                          "evidence": src} for what, ns, src in rows])


def mode_caveat() -> str:
    """One sentence bounding the per-operation figures by the IOMMU mode (the cited NVMe run)."""
    none, lazy, strict = (figure(f"nvme_{m}")["value"] for m in ("passthrough", "lazy", "strict"))
    return (f"These are microbenchmark times on two machines, not a price every NIC pays: the IOMMU's mode "
            f"matters more, as one cited run shows (4 KiB NVMe reads kept {sig(100 * lazy / none)} % of "
            f"passthrough's throughput in lazy mode, {sig(lazy)} against {sig(none)} M IOPS, and "
            f"{sig(100 * strict / none)} % in strict mode).")


def remark(t: pd.DataFrame) -> str:
    """Two sentences from :func:`per_frag`'s table: the mapping cost per MiB against the book's number."""
    once = t[t["cost"].str.startswith("this run's frags")]
    book, cited = t.iloc[0], t.iloc[1:].drop(once.index).dropna(subset=["ns per frag"])
    frags_per_mib = book["ns per MiB"] / book["ns per frag"]
    if cited.empty:
        return ("No cited per-operation figure covers frags of this size, so this chapter gives no DMA cost "
                "for them.")
    us, times = span(cited["ns per MiB"] / 1000), span(cited["x the book's"])
    if len(once):
        return (f"This run's frags come from memory a NIC maps once ({once['cost'].iloc[0].split(': ', 1)[1]}), "
                f"so they pay no mapping per frag; mapped and unmapped per frag, as a NIC's transmit path maps "
                f"page frags, its {sig(frags_per_mib)} frags per MiB would cost {us} "
                f"us per MiB on the cited platforms ({LABEL}), {times} times the "
                f"{sig(book['ns per MiB'])} ns per MiB this book prices for their lifetime. " + mode_caveat())
    return (f"Mapping each of the {sig(frags_per_mib)} frags of a MiB for DMA and unmapping it would cost "
            f"{us} us per MiB on the cited platforms ({LABEL}), "
            f"{times} times the {sig(book['ns per MiB'])} ns per MiB this book prices for "
            "the frags' lifetime. A page_pool page is mapped once for its life in the pool and a devmem "
            "dma-buf once when bound, so a page_pool driver's receive path and devmem pay a mapping per "
            "buffer's life, not per frag. " + mode_caveat())


def per_message(sizes, frags_per_message, ns_per_message, book_what: str) -> pd.DataFrame:
    """Per message size: the book's cost of one message beside mapping its frags for DMA (cited), one mapping
    per frag (:func:`per_frag` at the message's frags, of equal size)."""
    rows = []
    for size, frags, ns in zip(sizes, frags_per_message, ns_per_message):
        t = per_frag(size / frags, frags * (1 << 20) / size, ns * (1 << 20) / size, book_what)
        unmap, pair = frags * t["ns per frag"].iloc[1], frags * t["ns per frag"].iloc[2]
        rows.append({"message bytes": int(size), "frags": three(frags), "the book: ns per message": three(ns),
                     "unmap, Arm SMMU: ns": three(unmap), "map + unmap, 8-page buffer: ns": three(pair),
                     "x the book's": span(t["x the book's"].iloc[1:].dropna()), "evidence": LABEL})
    return pd.DataFrame(rows)


def message_remark(t: pd.DataFrame) -> str:
    """Two sentences from :func:`per_message`'s table: the smallest and largest message."""
    small, large = t.iloc[0], t.iloc[-1]
    cols = ["unmap, Arm SMMU: ns", "map + unmap, 8-page buffer: ns"]
    ratios = t[cols].div(t["the book: ns per message"], axis=0).stack().dropna()
    times = span(ratios)

    def cited_ns(r):
        return span([v for v in (r["unmap, Arm SMMU: ns"], r["map + unmap, 8-page buffer: ns"])
                     if not math.isnan(v)])
    return (f"On a real NIC each message's frags would also be mapped for DMA and unmapped: "
            f"{cited_ns(small)} ns for {small['message bytes']} B, {cited_ns(large)} ns for "
            f"{large['message bytes']:,} B on the cited platforms ({LABEL}), against "
            f"{sig(small['the book: ns per message'])} and {sig(large['the book: ns per message'])} ns per "
            f"message this chapter prices for TCP's copy path: {times} times its own cost over the "
            f"sizes shown. Sources: {figure(UNMAP_CURVE + '4k')['source']} (unmap); "
            f"{figure(MAP_PAIR[0])['source']} (map + unmap). " + mode_caveat())
