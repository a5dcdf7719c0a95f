"""Chapter 02 (book/02_slim_page.ipynb): struct page shrinks to a typed word; what it saves and costs.

Memory: the memmap today (the ``btf`` probe's ``struct page`` x pages) against the
memdesc plan's stages, with every descriptor the plan allocates separately, on this
machine's census (``kpageflags`` probe) and on a machine of a chosen size and page
mix. Time: the extra dependent load of page -> descriptor when a frag's metadata is
reached (:mod:`fraglife.model.memdesc`), priced at this machine's load latency by
working set (``memlat`` probe) through :mod:`fraglife.model.costs`. Charts are in
:mod:`fraglife.views.slim_page`; the contract is in :mod:`fraglife.chapters`.
"""

from __future__ import annotations

from functools import cached_property
from typing import Mapping

import pandas as pd

from ..claims import Claim
from ..model import costs, kernels, memdesc as M
from . import kit
from .kit import compare

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
PAGE = 4096
MIXES = ("this_machine", "in_use", "anon", "page_cache", "page_pool")
FOLIO_SIZES = {"measured": None, "4k": 1, "16k": 4, "64k": 16, "2m": 512}
FRAG_RULES = ("splice", "zerocopy")
WORKING_SETS_MIB = (16, 64, 256, 1024, 4096, 16384, 65536)
BREAK_EVEN_PAGES = (1, 2, 4, 8, 16, 64, 512)
SAMPLE_PAGES = 8192  # pages of payload walked per layout: 32 MiB, enough for every skb shape
#: Frags whose metadata chains the walk prices as in flight at once (an skb's frags are independent).
CHAINS = 8
VISITS = "attach + release"
MEMDESCS = "https://kernelnewbies.org/MatthewWilcox/Memdescs"
PATH = "https://kernelnewbies.org/MatthewWilcox/Memdescs/Path"

# Census categories -> descriptor type in the memdesc plan (None: the word alone says it all:
# "None, Reserved, Guard, ..." is type 0 on the Memdescs page)
DESCRIPTOR = {"anon": "folio", "file": "folio", "anon_thp": "large_folio", "file_large": "large_folio",
              "hugetlb": "large_folio", "slab": "slab", "page_table": "ptdesc", "compound_other": "netmem_desc",
              "free": "buddy", "zero_page": None, "reserved": None, "no_flags": None, "hole": None,
              "offline": None, "hwpoison": None, "other": None}
#: which descriptors the 32-byte stage already allocates (Path: "for each memdesc (slab, folio,
#: zpdesc, ptdesc, bump) ... we create a slab cache"); free pages keep their buddy list in the page
AT_32 = {"folio", "large_folio", "slab", "ptdesc", "netmem_desc"}
MIX_CATEGORIES = {
    "this_machine": None,
    "in_use": ("anon", "file", "anon_thp", "file_large", "hugetlb", "slab", "page_table", "compound_other"),
    "anon": ("anon", "anon_thp"),
    "page_cache": ("file", "file_large"),
    "page_pool": ("compound_other",),
}
FOLIO_CATEGORIES = ("anon", "file", "anon_thp", "file_large", "hugetlb")


# -- what the probes say --------------------------------------------------------------------

#: The probes this chapter reads, and whether each one's quick run will do.
PROBES = {"btf": False, "kpageflags": False, "memlat": True}


def _member(btf, struct: str, name: str) -> dict:
    return btf["structs"][struct]["members"][name]


def large_folio_extra(btf) -> int:
    """Bytes of today's ``struct folio`` that describe a large folio as a whole: the fields in its
    2nd and 3rd ``struct page`` (BTF), less the per-page words they overlay (flags, compound_head,
    mapcount and refcount kept zero) and the hugetlb-only 4th page. Union members counted once."""
    skip = ("_flags_", "_head_", "__page_", "_mapcount_", "_refcount_", "_usable_", "_hugetlb")
    spans = sorted((m["offset"], m["offset"] + m["size"]) for n, m in btf["structs"]["folio"]["members"].items()
                   if 64 <= m["offset"] < 192 and not n.startswith(skip))
    total, end = 0, 0
    for lo, hi in spans:
        if hi > end:
            total += hi - max(lo, end)
            end = hi
    return total


def descriptor_sizes(btf) -> pd.DataFrame:
    """Bytes of each separately allocated descriptor, rounded to the 16-byte slab alignment."""
    s = btf["structs"]
    sketch = M.sketch_bytes()
    extra = large_folio_extra(btf)
    rows = [
        ("folio", sketch, f"the folio sketched for the 32-byte stage ({PATH}): "
         + " + ".join(f"{n} {b}" for n, b in M.FOLIO_SKETCH)),
        ("large_folio", sketch + extra, f"the sketch + {extra} B of today's large-folio fields (struct folio's "
         "2nd/3rd page, BTF): the sketch says large folios will store more"),
        ("slab", s["slab"]["size"], "struct slab today (BTF), which already overlays struct page"),
        ("ptdesc", s["ptdesc"]["size"], "struct ptdesc today (BTF)"),
        ("netmem_desc", s["netmem_desc"]["size"], "struct netmem_desc today (BTF): the page_pool fields split "
         "from struct page (Park, net-next v12, 2025)"),
        ("buddy", _member(btf, "page", "buddy_list")["size"], "a free block's list_head (struct page's buddy_list, "
         "BTF): the least a 'struct buddy' must hold (Memdescs type Free)"),
    ]
    return pd.DataFrame([{"descriptor": n, "fields_bytes": int(b), "bytes": M.round16(b), "source": src}
                         for n, b, src in rows]).set_index("descriptor")


def stages(btf) -> pd.DataFrame:
    page = int(btf["structs"]["page"]["size"])
    return pd.DataFrame([
        {"stage": "today", "page_bytes": page, "share_of_ram": page / PAGE,
         "source": "sizeof(struct page), BTF of the running kernel"},
        {"stage": "32 B", "page_bytes": 32, "share_of_ram": 32 / PAGE,
         "source": f"{PATH}: struct page shrinks to 32 bytes once folio, slab, ptdesc, zpdesc and the page_pool "
                   "bump allocator have their own slab-allocated descriptors"},
        {"stage": "8 B", "page_bytes": 8, "share_of_ram": 8 / PAGE,
         "source": f"{MEMDESCS}: struct page becomes one word, 4 bits of type and a pointer to the descriptor; "
                   "Wilcox, linux-mm, Mar 2023 (spinics linux-mm msg330595): 64 -> 8 bytes"},
    ]).set_index("stage")


def census_table(kpf: Mapping, sizes: pd.DataFrame) -> pd.DataFrame:
    """This machine's pages by category: pages, descriptors the plan allocates, and their bytes."""
    free_blocks = sum(int(v) for v in (kpf.get("buddyinfo") or {}).values())
    rows = []
    for cat, pages in kpf["categories"].items():
        kind = DESCRIPTOR.get(cat)
        units = free_blocks if cat == "free" and free_blocks else int((kpf.get("descriptors") or {}).get(cat, pages))
        size = int(sizes.loc[kind, "bytes"]) if kind else 0
        rows.append({"category": cat, "pages": int(pages), "share": pages / kpf["pages"], "descriptor": kind or "-",
                     "descriptors": units if kind else 0, "desc_bytes": size,
                     "pages_per_descriptor": pages / units if kind and units else float("nan")})
    return pd.DataFrame(rows).set_index("category")


def allocates(stage: str, page_bytes: int, descriptor: str) -> bool:
    """Whether a memmap of ``page_bytes`` per page at ``stage`` allocates ``descriptor`` apart: none today; at 32 B
    the Path page's descriptors (a free page keeps its list in the page); at 16 and 24 B every one but the free
    blocks' (their linkage stays in the memmap); at 8 B every one (free blocks get a struct buddy)."""
    if stage == "today" or descriptor == "-":
        return False
    if page_bytes >= 32:
        return descriptor in AT_32
    return page_bytes < 16 or descriptor != "buddy"


def stage_bytes(table: pd.DataFrame, page_bytes: Mapping[str, int]) -> pd.DataFrame:
    """Metadata bytes at each stage for a table of categories (pages, descriptor, descriptors, desc_bytes)."""
    pages = float(table.pages.sum())
    out = []
    for stage, pb in page_bytes.items():
        allocated = lambda d, stage=stage, pb=pb: allocates(stage, pb, d)  # noqa: E731
        desc = float(sum(r.descriptors * r.desc_bytes for r in table.itertuples() if allocated(r.descriptor)))
        memmap = pages * pb
        out.append({"stage": stage, "memmap": memmap, "descriptors": desc, "total": memmap + desc,
                    "share_of_ram": (memmap + desc) / (pages * PAGE)})
    df = pd.DataFrame(out).set_index("stage")
    df["saved_vs_today"] = df.loc["today", "total"] - df["total"]
    df["saved_share_of_ram"] = df["saved_vs_today"] / (pages * PAGE)
    return df


def scaled_table(census: pd.DataFrame, machine_gib: int, mix: str, folio_size: str,
                 sizes: pd.DataFrame) -> pd.DataFrame:
    """The census's page shares, restricted to ``mix``, on a machine of ``machine_gib``; folios
    regrouped to ``folio_size`` (or as measured)."""
    cats = MIX_CATEGORIES[mix]
    t = census if cats is None else census.loc[[c for c in cats if c in census.index]]
    if t.pages.sum() == 0:  # a mix this machine has none of: base pages of the mix's first type
        t = census.loc[[cats[0]]].assign(pages=1, descriptors=1)
    pages = machine_gib * GiB / PAGE
    share = t.pages / t.pages.sum()
    fp = FOLIO_SIZES[folio_size]
    rows = []
    for cat, r in t.iterrows():
        n = share[cat] * pages
        kind, per = r.descriptor, r.pages_per_descriptor
        if fp is not None and cat in FOLIO_CATEGORIES:
            per = fp
            kind = "folio" if fp == 1 else "large_folio"
        units = n / per if kind != "-" and per == per and per > 0 else 0.0
        rows.append({"category": cat, "pages": n, "descriptor": kind, "descriptors": units,
                     "desc_bytes": int(sizes.loc[kind, "bytes"]) if kind != "-" else 0})
    return pd.DataFrame(rows).set_index("category")


#: The end state's memmap per page (:func:`fraglife.model.memdesc.end_state`): the stages it may end at, low to high.
END_STAGES = {e["stage"]: e["page_bytes"] for e in M.end_state()}


def end_state_bytes(table: pd.DataFrame, today_bytes: int) -> pd.DataFrame:
    """Metadata at each end state the memdesc plan leaves open (8 to 32 B per page), with today's, for a table of
    categories; ``design`` says which design gives each end and ``cited`` whether Wilcox's pages state it."""
    out = stage_bytes(table, {"today": int(today_bytes), **END_STAGES})
    meta = {e["stage"]: e for e in M.end_state()}
    out["design"] = [meta[s]["what"] if s in meta else "64-byte struct page" for s in out.index]
    out["cited"] = [meta[s]["cited"] if s in meta else True for s in out.index]
    return out


def break_even(sizes: pd.DataFrame, page_bytes: Mapping[str, int]) -> pd.DataFrame:
    """Metadata bytes per page for memory in folios of n pages, each stage."""
    rows = []
    for n in BREAK_EVEN_PAGES:
        d = int(sizes.loc["folio" if n == 1 else "large_folio", "bytes"])
        for stage, pb in page_bytes.items():
            per = pb if stage == "today" else M.bytes_per_page(n, pb, d)
            rows.append({"folio_pages": n, "folio_kib": n * 4, "stage": stage, "bytes_per_page": per})
    return pd.DataFrame(rows)


# -- the walk --------------------------------------------------------------------------------

def field_spans(btf) -> dict:
    """Byte spans of what a frag walk reads, per kind (folio, page_pool, net_iov), from BTF."""
    def span(struct, *names):
        ms = [_member(btf, struct, n) for n in names]
        return min(m["offset"] for m in ms), max(m["offset"] + m["size"] for m in ms)

    pp = ("pp_magic", "pp", "pp_ref_count")
    folio_page = span("page", "_refcount")
    pp_page = span("page", *pp)
    pp_desc = span("netmem_desc", *pp)
    niov = span("net_iov", *pp, "owner")
    ref = M.FOLIO_SKETCH_REFCOUNT
    return {"stride": [0, 0, int(btf["structs"]["net_iov"]["size"])],
            "lo": [ref, pp_desc[0], niov[0]], "hi": [ref + 4, pp_desc[1], niov[1]],
            "page_lo": [folio_page[0], pp_page[0], 0], "page_hi": [folio_page[1], pp_page[1], 8]}


def walk_sizes(folio_size: str, frag_kind: str, kpf: Mapping) -> tuple[list[int], list[float]]:
    """Folio sizes (pages) and their shares of pages for the walked buffer."""
    fp = FOLIO_SIZES[folio_size]
    if fp is not None or frag_kind == "net_iov":
        return [fp or 1], [1.0]
    cats = ("compound_other",) if frag_kind == "page_pool" else FOLIO_CATEGORIES
    weights: dict[int, float] = {}
    fs = kpf.get("folio_sizes") or {}
    for cat in cats:
        if cat in fs:
            for size, count in fs[cat].items():
                weights[int(size)] = weights.get(int(size), 0.0) + int(size) * count
        elif cat in ("anon", "file"):
            weights[1] = weights.get(1, 0.0) + kpf["categories"].get(cat, 0)
    weights = {k: v for k, v in weights.items() if v > 0} or {1: 1.0}
    ks = sorted(weights)
    total = sum(weights.values())
    return ks, [weights[k] / total for k in ks]


def latency_points(memlat, chains: int) -> list[tuple[int, float]]:
    pts = memlat["modes"]["huge"]["points"]
    k = str(max(c for c in memlat["chains"] if c <= chains))
    return [(p["bytes"], p["chains"][k]["median"]) for p in pts]


def load_unit(memlat_res, nbytes: float, chains: int, name: str) -> costs.Unit:
    """ns per load at a working set of ``nbytes`` with ``chains`` independent chains in flight."""
    k = max(c for c in memlat_res["chains"] if c <= chains)
    ns = M.latency_at(latency_points(memlat_res, k), nbytes)
    top = max(p["bytes"] for p in memlat_res["modes"]["huge"]["points"])
    how = (f"memlat probe, 2 MiB pages, {k} chain(s) at once, interpolated at {nbytes / MiB:,.1f} MiB"
           + (f" (held at the largest measured, {top >> 20} MiB: DRAM)" if nbytes > top else ""))
    return costs.Unit(name, ns, "ns/load", costs.measured_label(memlat_res.source), how)


#: struct net_iov on 6.12 LTS: 48 bytes, the fields a frag walk reads (pp_magic, pp, owner, pp_ref_count) at 8..48
#: (include/net/netmem.h, v6.12.118); 6.17 embeds a netmem_desc and makes it 64 (rule netmem_desc).
NET_IOV_V612 = {"bytes": 48, "read": (8, 48)}
NETMEM_DESC_BYTES = 48


def struct_rows(btf, release: str) -> pd.DataFrame:
    """struct page, folio, net_iov and netmem_desc: the size the model takes on ``release`` and on 6.12 LTS
    (the versioned rules folio_256 and netmem_desc), and the running kernel's BTF."""
    def model(rel):
        nd = kernels.follows(rel, "netmem_desc")
        return {"page": int(M.PAGE_BYTES["struct_page"]), "folio": M.folio_bytes(rel),
                "net_iov": 64 if nd else NET_IOV_V612["bytes"], "netmem_desc": NETMEM_DESC_BYTES if nd else None}
    here, lts = model(release), model(kernels.LTS)
    s = btf["structs"]
    rows = [{"struct": n, kit.kernel_label(release): here[n], kit.kernel_label(kernels.LTS): lts[n],
             "BTF (this kernel)": s[n].get("size") if s.get(n, {}).get("present") else None}
            for n in ("page", "folio", "net_iov", "netmem_desc")]
    return pd.DataFrame(rows).set_index("struct")


#: What each compared quantity means.
KERNEL_QUANTITIES = {
    "struct_page_bytes": "sizeof(struct page): the model's memmap entry today (64 B) against the BTF",
    "compound_head_offset": "where the walk reads page_folio()'s compound_head (byte 8 of struct page) against the BTF",
    "struct_folio_bytes": "sizeof(struct folio) by the versioned rule folio_256 against the BTF",
    "net_iov_bytes": "sizeof(struct net_iov) by the versioned rule netmem_desc against the BTF",
    "free_pages": "page frames the census counts free (PG_buddy, /proc/kpageflags) against vmstat nr_free_pages",
    "slab_kib": "KiB of slab pages in the census (PG_slab) against /proc/meminfo Slab",
    "page_table_kib": "KiB of page-table pages in the census (PG_pgtable) against /proc/meminfo PageTables",
}
#: The confirming quantity: a memmap entry per page frame of sizeof(struct page).
CENTRAL = "struct_page_bytes"


#: The versioned rule that sets a compared size.
SIZE_RULES = {"struct_folio_bytes": "folio_256", "net_iov_bytes": "netmem_desc"}


def _other_kernel(quantity: str, release: str, counted: str) -> str:
    """Why a size differs when the model follows another kernel than the one whose BTF is read ("" if it does not)."""
    name = SIZE_RULES.get(quantity)
    if not name or kernels.follows(release, name) == kernels.follows(counted, name):
        return ""
    r = kernels.rule(name)
    said = r.after if kernels.follows(release, name) else r.before
    return (f"The model follows {kit.kernel_label(release)} (the kernel parameter), where {said}; the BTF read is "
            f"{counted}'s, which has rule {name} of {r.changed_in} ({r.cite_after}).")


def kernel_rows(btf, kpf, release: str, chapter: str = "02_slim_page") -> pd.DataFrame:
    """The model against the running kernel (compare's row format): the struct sizes and the offset the model
    takes for ``release`` against this kernel's BTF (exact: no tolerance), and the kpageflags census, on which
    the memory side rests, against the kernel's own counters (within compare's 20 %)."""
    s, m = btf["structs"], struct_rows(btf, release)
    col = kit.kernel_label(release)
    exact = dict(mib=1.0, tolerance=0.0, slack_events=0.0, exact=True)
    rows = []
    sizes = {"struct_page_bytes": "page", "struct_folio_bytes": "folio", "net_iov_bytes": "net_iov"}
    counted = btf.kernel or release
    for q, name in sizes.items():
        k = s.get(name, {}).get("size") if s.get(name, {}).get("present") else None
        v = m.loc[name, col]
        rows.append(compare.row(chapter, "BTF", q, None if k is None else float(k),
                                None if v is None or v != v else float(v), measured=btf.source,
                                reason=_other_kernel(q, release, counted), how_counted=KERNEL_QUANTITIES[q], **exact))
    head = s["page"]["members"].get("compound_head", {}).get("offset")
    rows.append(compare.row(chapter, "BTF", "compound_head_offset", None if head is None else float(head),
                            float(M.COMPOUND_HEAD_OFFSET), measured=btf.source,
                            how_counted=KERNEL_QUANTITIES["compound_head_offset"], **exact))
    x, page_kib = kpf.get("crosscheck") or {}, kpf.get("page_size", PAGE) / KiB
    census = kpf["categories"]
    pairs = (("free_pages", census.get("free"), x.get("vmstat_nr_free_pages")),
             ("slab_kib", census.get("slab", 0) * page_kib, x.get("Slab_kib")),
             ("page_table_kib", census.get("page_table", 0) * page_kib, x.get("PageTables_kib")))
    for q, model, kernel in pairs:
        if model is None or kernel is None:
            continue
        rows.append(compare.row(chapter, "kpageflags census", q, float(kernel), float(model), mib=1.0,
                                slack_events=0.0, measured=kpf.source, exact=False,
                                how_counted=KERNEL_QUANTITIES[q]))
    return compare.table([rows])


class Results(kit.Probed):
    """Chapter 02's analyses for one parameter set, each computed once on first use (the probes: ``PROBES``,
    or ``probe_data`` given to the constructor)."""

    PROBES = PROBES
    btf = kit.probed("btf")
    kpf = kit.probed("kpageflags")
    memlat = kit.probed("memlat")

    @cached_property
    def sizes(self) -> pd.DataFrame:
        return descriptor_sizes(self.btf)

    @cached_property
    def stages(self) -> pd.DataFrame:
        return stages(self.btf)

    @cached_property
    def page_bytes(self) -> dict:
        return {k: int(v) for k, v in self.stages.page_bytes.items()}

    @cached_property
    def struct_sizes(self) -> pd.DataFrame:
        """The structs of this chapter, as the running kernel has them (BTF)."""
        want = ("page", "folio", "slab", "ptdesc", "zpdesc", "netmem_desc", "net_iov", "net_iov_area",
                "dmabuf_genpool_chunk_owner", "net_devmem_dmabuf_binding", "page_pool")
        s = self.btf["structs"]
        return pd.DataFrame([{"struct": n, "bytes": s[n].get("size") if s[n].get("present") else None}
                             for n in want if n in s]).set_index("struct")

    @cached_property
    def pp_fields(self) -> pd.DataFrame:
        """Where the page_pool fields sit: struct page, netmem_desc, net_iov (BTF offsets)."""
        names = ("pp_magic", "pp", "dma_addr", "pp_ref_count", "owner", "type")
        s = self.btf["structs"]
        rows = []
        for n in names:
            row = {"field": n}
            for st in ("page", "netmem_desc", "net_iov"):
                m = s[st]["members"].get(n)
                row[st] = f"{m['offset']} (+{m['size']})" if m else "-"
            rows.append(row)
        return pd.DataFrame(rows).set_index("field")

    @cached_property
    def census(self) -> pd.DataFrame:
        return census_table(self.kpf, self.sizes)

    @cached_property
    def census_stages(self) -> pd.DataFrame:
        return stage_bytes(self.census, self.page_bytes)

    @cached_property
    def machine(self) -> pd.DataFrame:
        t = scaled_table(self.census, self.P.machine_gib, self.P.mix, self.P.folio_size, self.sizes)
        return stage_bytes(t, self.page_bytes)

    @cached_property
    def break_even(self) -> pd.DataFrame:
        return break_even(self.sizes, self.page_bytes)

    @cached_property
    def break_even_pages(self) -> int:
        """The smallest folio (pages) for which 8-byte memdescs take less memory per page than today."""
        be = self.break_even.pivot_table(index="folio_pages", columns="stage", values="bytes_per_page")
        below = be.index[be["8 B"] < be["today"]]
        return int(below.min()) if len(below) else 0

    @cached_property
    def spans(self) -> dict:
        sp = field_spans(self.btf)
        sp["stride"] = [int(self.sizes.loc["folio", "bytes"]), int(self.sizes.loc["netmem_desc", "bytes"]),
                        sp["stride"][2]]
        if not kernels.follows(self.release, "netmem_desc"):  # 6.12's 48-byte net_iov (include/net/netmem.h)
            sp["stride"][2], sp["lo"][2], sp["hi"][2] = NET_IOV_V612["bytes"], *NET_IOV_V612["read"]
        return sp

    # -- which kernel, the end state, the model against the running kernel
    @cached_property
    def release(self) -> str:
        """The release whose rules the model follows (the ``kernel`` parameter; "running": the BTF's kernel)."""
        return kit.kernel_release(self.P.kernel, self.P.measurements, self.btf)

    @cached_property
    def end_states(self) -> pd.DataFrame:
        """This machine's census at each end state the plan leaves open (8 to 32 B per page) and today."""
        return end_state_bytes(self.census, int(self.btf["structs"]["page"]["size"]))

    @cached_property
    def saved_range(self) -> tuple[float, float]:
        """(least, most) share of RAM the end state saves on this machine's census: the 32 B end, the 8 B end."""
        e = self.end_states.drop(index="today")
        return float(e.saved_share_of_ram.min()), float(e.saved_share_of_ram.max())

    @cached_property
    def struct_kernels(self) -> pd.DataFrame:
        """The structs whose size a versioned rule sets, as the model has them for the kernel it follows and
        for 6.12 LTS, and as this kernel's BTF has them."""
        return struct_rows(self.btf, self.release)

    @cached_property
    def kernels(self) -> pd.DataFrame:
        """This chapter's versioned rules on the kernel the model follows and on 6.12 LTS."""
        return kit.kernel_rules(self.release, "02")

    @cached_property
    def comparison(self) -> pd.DataFrame:
        """The model's struct sizes and offsets against this kernel's BTF, and the census the memory side rests on
        against the kernel's own counters (compare's row format)."""
        return kernel_rows(self.btf, self.kpf, self.release)

    @cached_property
    def comparison_table(self) -> pd.DataFrame:
        return self.comparison[["transfer", "quantity", "kernel", "model", "ratio", "agrees", "measured"]]

    def population(self, rule: str, *, folio_size: str | None = None, kind: str | None = None,
                   working_set_mib: float | None = None) -> dict:
        sizes, weights = walk_sizes(folio_size or self.P.folio_size, kind or self.P.frag_kind, self.kpf)
        ws = (working_set_mib or self.P.working_set_mib) * MiB // PAGE
        return M.frag_population(sample_pages=min(SAMPLE_PAGES, ws), working_set_pages=ws, folio_pages=sizes,
                                 folio_weights=weights, kind=kind or self.P.frag_kind, rule=rule,
                                 skb_pages=GSO_SKB_PAGES, seed=self.P.seed)

    def walks(self, *, rule: str | None = None, folio_size: str | None = None, kind: str | None = None,
              working_set_mib: float | None = None) -> pd.DataFrame:
        """Per layout: loads, misses and depth per frag visit and per MiB, for attach and release."""
        rule = rule or self.P.frag_rule
        kind = kind or self.P.frag_kind
        ws_mib = working_set_mib or self.P.working_set_mib
        per_page = self.population("splice", folio_size=folio_size, kind=kind, working_set_mib=ws_mib)
        frags = per_page if rule == "splice" else M.zerocopy_frags(per_page)
        mib = per_page["pages"] * PAGE / MiB
        rows = []
        # attach: splice refs each page's frag (skb_append_pagefrags()); MSG_ZEROCOPY's gup-fast grabs each
        # PTE-mapped page through its own struct page, but a PMD-mapped THP once per leaf per GUP call, at its
        # head (try_grab_folio_fast(), gup_fast_pmd_leaf(), mm/gup.c, v6.18 as v6.12); release: one put per frag
        attach = per_page if rule == "splice" else M.gup_visits(per_page)
        for layout in M.LAYOUTS:
            a = M.walk(attach, layout, **self.spans)
            r = M.walk(frags, layout, **self.spans)
            fp = M.footprint(layout, kind, ws_mib * MiB / PAGE, per_page["mean_folio_pages"], self.spans["stride"])
            rows.append({"layout": layout, "misses_per_mib": (a["misses"] + r["misses"]) / mib,
                         "hits_per_mib": (a["hits"] + r["hits"]) / mib,
                         "loads_per_mib": (a["loads"] + r["loads"]) / mib,
                         "visits_per_mib": (a["frags"] + r["frags"]) / mib,
                         "depth_per_visit": (a["depth_sum"] + r["depth_sum"]) / (a["frags"] + r["frags"]),
                         "max_depth": max(a["max_depth"], r["max_depth"]),
                         "frags_per_skb": r["frags"] / r["skbs"], "footprint_bytes": fp})
        return pd.DataFrame(rows).set_index("layout")

    def price(self, walks: pd.DataFrame, chains: int) -> pd.DataFrame:
        """ns per MiB of each layout's walk: misses at the footprint's load latency, hits at the
        smallest working set's, both with the same chains in flight (an overlapped miss must not
        be priced below a serial hit)."""
        rows = []
        for layout, w in walks.iterrows():
            k = max(1, min(chains, int(round(w.frags_per_skb))))
            l1 = load_unit(self.memlat, 0, k, "l1_load_ns")
            miss = load_unit(self.memlat, w.footprint_bytes, k, f"miss_ns@{layout}")
            priced = costs.price([("metadata miss", w.misses_per_mib, miss), ("metadata hit", w.hits_per_mib, l1)],
                                 costs.UnitCosts({}))
            ns = costs.total(priced)
            rows.append({"layout": layout, "ns_per_mib": ns, "miss_ns": miss.value, "hit_ns": l1.value,
                         "core_share_100g": costs.core_share(ns, 100), "core_share_400g": costs.core_share(ns, 400),
                         "source": miss.source, "detail": miss.detail})
        return pd.DataFrame(rows).set_index("layout")

    @cached_property
    def walk(self) -> pd.DataFrame:
        return self.walks()

    @cached_property
    def priced(self) -> pd.DataFrame:
        """The run's walk priced twice: frags' chains overlapping (up to CHAINS at once), and one load at a time."""
        over = self.price(self.walk, CHAINS)
        serial = self.price(self.walk, 1)
        out = over.join(serial[["ns_per_mib"]].rename(columns={"ns_per_mib": "ns_per_mib_serial"}))
        base = out.loc["struct_page", "ns_per_mib"]
        out["extra_ns_per_mib"] = out["ns_per_mib"] - base
        return out

    @cached_property
    def working_set_grid(self) -> pd.DataFrame:
        """ns per MiB of each layout over working sets (the run's rule, kind and folio size)."""
        return kit.rows_over("working_set_mib", WORKING_SETS_MIB,
                             lambda ws: self.price(self.walks(working_set_mib=ws), CHAINS), "layout",
                             ("ns_per_mib", "miss_ns"))

    @cached_property
    def folio_grid(self) -> pd.DataFrame:
        """Misses per MiB of each layout for per-page frags over folios of several sizes."""
        return kit.rows_over("folio_size", ("4k", "16k", "64k", "2m"),
                             lambda fs: self.walks(rule="splice", folio_size=fs, kind="folio"), "layout",
                             ("misses_per_mib", "depth_per_visit"))

    @cached_property
    def kinds(self) -> pd.DataFrame:
        """Misses and depth per visit for each kind of frag, order-0 pages, every layout."""
        def per_visit(kind):
            w = self.walks(rule="splice", folio_size="4k", kind=kind)
            return w.assign(misses_per_visit=w.misses_per_mib / w.visits_per_mib)

        return kit.rows_over("kind", M.KINDS, per_visit, "layout", ("misses_per_visit", "depth_per_visit"))

    @cached_property
    def kinds_matrix(self) -> pd.DataFrame:
        """Missed lines per visit over order-0 pages: kind x layout."""
        return self.kinds.pivot_table(index="kind", columns="layout", values="misses_per_visit")[list(M.LAYOUTS)]

    @cached_property
    def latency(self) -> pd.DataFrame:
        """The memlat measurement the prices come from: ns per load by working set."""
        rows = []
        for p in self.memlat["modes"]["huge"]["points"]:
            for k, v in p["chains"].items():
                rows.append({"bytes": p["bytes"], "working_set_kib": p["bytes"] / KiB, "chains": int(k),
                             "ns": v["median"], "q1": v["q1"], "q3": v["q3"]})
        return pd.DataFrame(rows)

    @cached_property
    def caches(self) -> list:
        return list(self.memlat.get("caches") or [])

    @cached_property
    def headline(self) -> dict:
        m, pr = self.machine, self.priced
        return {
            "saved_8b_share_of_ram": float(m.loc["8 B", "saved_share_of_ram"]),
            "saved_32b_share_of_ram": float(m.loc["32 B", "saved_share_of_ram"]),
            "memmap_today_gib": float(m.loc["today", "total"] / GiB),
            "metadata_8b_gib": float(m.loc["8 B", "total"] / GiB),
            "today_ns_per_mib": float(pr.loc["struct_page", "ns_per_mib"]),
            "memdesc8_ns_per_mib": float(pr.loc["memdesc8", "ns_per_mib"]),
            "memdesc8_extra_ns_per_mib": float(pr.loc["memdesc8", "extra_ns_per_mib"]),
            "memdesc8_extra_core_share_100g": float(costs.core_share(max(0.0, pr.loc["memdesc8", "extra_ns_per_mib"]),
                                                                     100)),
            "desc_ref_ns_per_mib": float(pr.loc["desc_ref", "ns_per_mib"]),
            "end_state_saved_low_share_of_ram": self.saved_range[0],
            "end_state_saved_high_share_of_ram": self.saved_range[1],
            "kernel_rows_agree": float(compare.tally(self.comparison)[0]),
            "kernel_rows": float(compare.tally(self.comparison)[1]),
            "probes": self.measured,
        }


#: pages of payload per skb at the legacy GSO limit: tcp_xmit_size_goal() gives 45 segments of
#: 1448 bytes (65160 B) below GSO_LEGACY_MAX_SIZE less MAX_TCP_HEADER + 1 (v6.12)
GSO_SKB_PAGES = 65160 / PAGE


LAYOUT_ROWS = (
    ("struct_page", "today: the frag points at a 64-byte struct page",
     "page_folio() reads the page's compound_head; a tail page's refcount is in its head's struct page",
     "1 (base page or head), 2 (tail)"),
    ("memdesc32", "the 32-byte page of the Path sketch, descriptors apart",
     "the page's memdesc word, then the folio (or netmem_desc) it points at", "2"),
    ("memdesc8", "the 8-byte page: one typed word", "the word, then the descriptor", "2"),
    ("desc_ref", "the frag points at the descriptor, as netmem_ref does for a net_iov", "the descriptor", "1"),
)


def layout_table() -> pd.DataFrame:
    return pd.DataFrame(list(LAYOUT_ROWS), columns=["layout", "what it is", "loads to reach the refcount",
                                                     "dependent depth"]).set_index("layout")


def _mib(nbytes: float, fmt: str = ",.0f") -> str:
    return f"{nbytes / MiB:{fmt}} MiB"


def census_remark(R: Results) -> str:
    """Markdown: this machine's census at each stage, from the run."""
    c, k = R.census_stages, R.census
    big = k[k.descriptor == "large_folio"]
    total = {stage: f"**{_mib(x)}**" for stage, x in c.total.items()}
    unmanaged = (R.kpf.get("crosscheck") or {}).get("present_not_managed_pages") or 0
    per = big.pages.sum() / max(1, big.descriptors.sum())
    stages = f"{total['32 B']} at the 32 B stage and {total['8 B']} at the 8 B stage"
    folios = f"{big.pages.sum() / k.pages.sum():.1%} of the frames and need {big.descriptors.sum():,} descriptors"
    return (f"This machine: **{int(k.pages.sum()):,}** page frames, a memmap of {total['today']} today; {stages}, "
            f"{_mib(c.loc['8 B', 'descriptors'])} of it descriptors. Large folios are {folios}, one per {per:.1f} "
            f"pages. Of the {int(k.loc['no_flags', 'pages']):,} frames with no flag, {unmanaged:,} are present but "
            f"not managed by the page allocator.")


def break_even_remark(R: Results) -> str:
    """Markdown: metadata per page for order-0 folios, at the break-even and for the largest folio, from the run."""
    be = R.break_even.pivot_table(index="folio_pages", columns="stage", values="bytes_per_page")
    n, big = R.break_even_pages, BREAK_EVEN_PAGES[-1]
    order0 = {stage: f"{b:.0f} B" for stage, b in be.loc[1].items()}
    desc = int(R.sizes.loc["folio", "bytes"])
    return (f"Per {PAGE // KiB} KiB page: today **{order0['today']}**. With 8 B memdescs an order-0 folio costs "
            f"**{order0['8 B']}**, the word plus a whole {desc}-byte descriptor; at the 32 B stage, {order0['32 B']}. "
            f"From {n}-page folios on, 8 B memdescs take less than today: {be.loc[n, '8 B']:.0f} B per page. A "
            f"{_mib(big * PAGE, 'g')} folio costs {be.loc[big, '8 B']:.2f} B per page.")


def walk_remark(R: Results) -> str:
    """Markdown: the run's walk, its misses and its price, today and with 8-byte memdescs."""
    P, pr, w = R.P, R.priced, R.walk
    today, md8 = (pr.loc[x] for x in ("struct_page", "memdesc8"))
    run = f"`{P.frag_rule}` frags of `{P.frag_kind}` pages, `{P.folio_size}` folios, a {P.working_set_mib:,} MiB"
    misses = {x: (f"**{w.loc[x, 'misses_per_mib']:,.0f}**", _mib(w.loc[x, "footprint_bytes"], ",.1f"))
              for x in ("struct_page", "memdesc8")}
    return (f"The run: {run} working set. Today's walk misses {misses['struct_page'][0]} metadata lines per MiB in "
            f"a {misses['struct_page'][1]} memmap; 8-byte memdescs miss {misses['memdesc8'][0]} in "
            f"{misses['memdesc8'][1]} of words and descriptors. With up to {CHAINS} frags' chains in flight: "
            f"**{today.ns_per_mib:,.0f}** vs **{md8.ns_per_mib:,.0f} ns per MiB** ({today.core_share_100g:.1%} vs "
            f"{md8.core_share_100g:.1%} of a core at 100 Gbit/s). One load at a time: "
            f"{today.ns_per_mib_serial:,.0f} vs {md8.ns_per_mib_serial:,.0f}.")


def headline(**params) -> dict:
    """Chapter 02's result as one record: metadata at each stage for the chosen machine and mix,
    and what the walk to a frag's metadata costs per MiB today and with 8-byte memdescs."""
    return Results(params).headline


def panel_data(params: Mapping, *, machine_gib: int, mix: str, folio_size: str, working_set_mib: int) -> pd.DataFrame:
    """The panel's table for one setting (other parameters the run's): metadata at each stage
    (``part`` "memory": GiB and share of RAM) and the walk's price by layout (``part`` "walk")."""
    r = Results(dict(params, machine_gib=machine_gib, mix=mix, folio_size=folio_size, working_set_mib=working_set_mib))
    m = r.machine
    rows = [{"part": "memory", "name": stage, "memmap_gib": x.memmap / GiB, "descriptors_gib": x.descriptors / GiB,
             "gib": x.total / GiB, "share_of_ram": x.share_of_ram, "saved_share_of_ram": x.saved_share_of_ram}
            for stage, x in m.iterrows()]
    rows += [{"part": "walk", "name": layout, "ns_per_mib": x.ns_per_mib, "ns_per_mib_serial": x.ns_per_mib_serial,
              "core_share_100g": x.core_share_100g} for layout, x in r.priced.iterrows()]
    return pd.DataFrame(rows)


def conclusion(R: Results) -> str:
    """Markdown: the chapter's closing points, quoting the checked numbers (the reasoning is in the notebook)."""
    P, c, e, m, pr = R.P, R.census_stages, R.end_states, R.machine, R.priced
    be = R.break_even.pivot_table(index="folio_pages", columns="stage", values="bytes_per_page")
    n = R.break_even_pages
    two = be.loc[n, "8 B"] if n else float("nan")
    lo, hi = R.saved_range
    mach_note = "this machine's page mix" if P.mix == "this_machine" else f"the `{P.mix}` mix"
    extra = pr.loc["memdesc8", "core_share_100g"] - pr.loc["struct_page", "core_share_100g"]
    walked = f"`{P.frag_rule}` frags over `{P.folio_size}` folios ({P.frag_kind}, {P.working_set_mib} MiB working set)"
    return kit.points(
        f"**Memory.** This machine's memmap is **{_mib(c.loc['today', 'total'])}** today; at the end state, "
        f"{_mib(e.loc['8 B', 'total'])} (8 B per page) to {_mib(e.loc['32 B', 'total'])} (32 B) with every "
        f"descriptor counted: **{kit.pct(lo)} to {kit.pct(hi)}** of RAM saved. A {P.machine_gib} GiB machine with "
        f"{mach_note} and `{P.folio_size}` folios saves {m.loc['8 B', 'saved_share_of_ram']:.2%} at 8 B.",
        f"**Order-0 folios cost more**: the 8-byte word plus the {int(R.sizes.loc['folio', 'bytes'])}-byte folio "
        f"descriptor is **{be.loc[1, '8 B']:.0f} B per page**, against today's {R.page_bytes['today']}; memdescs win "
        f"from {n}-page ({n * 4} KiB) folios on ({two:.0f} B per page).",
        f"**Time**, for the run's {walked}: today **{pr.loc['struct_page', 'ns_per_mib']:,.0f} ns per MiB**, 8-byte "
        f"memdesc **{pr.loc['memdesc8', 'ns_per_mib']:,.0f}** ({extra:+.2%} of a core at 100 Gbit/s); a frag that "
        f"points at its descriptor, as `net_iov` does, {pr.loc['desc_ref', 'ns_per_mib']:,.0f}, and one that names "
        f"an owner (chapter 08) touches no per-page metadata at all.")


def kernel_remark(R: Results) -> str:
    """Markdown: the kernel the model follows, what 6.12 LTS changes, and how the model meets this kernel."""
    agree, n = compare.tally(R.comparison)
    where = ("measured now" if set(R.comparison.measured) == {"live"} else
             "from the recordings in data/probes/ (not this machine now)")
    page = R.comparison.set_index("quantity").loc[CENTRAL]
    return (f"The model follows **{kit.kernel_label(R.release)}**. On 6.12 LTS `struct folio` is 192 B and "
            f"`net_iov` 48 B; neither moves the memory answer (a folio overlays its struct pages and takes no memory "
            f"of its own), and a net_iov frag's walk reads the same fields. Against this kernel: `sizeof(struct "
            f"page)` **{page.kernel:.0f} B** in the BTF, {page.model:.0f} B in the model; **{agree} of {n}** "
            f"quantities agree, {where}.")


def answer(R: Results):
    """Chapter 02's row of the answers table: bullet (b)."""
    from .. import answers

    lo, hi = R.saved_range
    be = R.break_even.pivot_table(index="folio_pages", columns="stage", values="bytes_per_page")
    agree, n = compare.tally(R.comparison)
    number = answers.Number(100 * hi, 100 * lo, 100 * hi, unit="%",
                            what="RAM saved on this machine's census at the 8 B end state (the 32 B end at the low "
                                 "end of the range), every descriptor counted")
    extra = R.priced.loc["memdesc8", "extra_ns_per_mib"]
    walk = (f"adds {answers.format_number(extra, unit='ns/MiB')} to the run's frag walk" if extra > 0 else
            f"saves {answers.format_number(-extra, unit='ns/MiB')} on the run's frag walk")
    text = (f"Shrinking struct page to an 8 to 32 B memdesc saves {number.text} of RAM on this machine, but an "
            f"order-0 folio then costs {be.loc[1, '8 B']:.0f} B of metadata per page against today's "
            f"{R.page_bytes['today']}, and the hop to a separately allocated descriptor {walk}.")
    return answers.Answer(
        "b", text, "agree, at a cost", number,
        answers.measured(f"the kpageflags census of this machine's page frames and the running kernel's BTF ({agree} "
                         f"of {n} quantities agree with the kernel's own counters); descriptor sizes from the "
                         f"Memdescs plan", R.measured))


# ---------------------------------------------------------------- claims

def _order0_costs_more(R: Results):
    be = R.break_even.pivot_table(index="folio_pages", columns="stage", values="bytes_per_page")
    today = be["today"]
    big = be.index >= 4
    ok = bool(be.loc[1, "8 B"] > today.loc[1] and (be.loc[big, "8 B"] < today.loc[big]).all())
    return ok, {"order0_8b_bytes": float(be.loc[1, "8 B"]), "two_page_8b_bytes": float(be.loc[2, "8 B"]),
                "four_page_8b_bytes": float(be.loc[4, "8 B"]), "today_bytes": float(today.loc[1]),
                "break_even_pages": R.break_even_pages}


def _census_saves(R: Results):
    e = R.end_states
    ends = e.drop(index="today")
    return bool((ends.total < e.loc["today", "total"]).all() and ends.total.is_monotonic_increasing), {
        "saved_low_share_of_ram": R.saved_range[0], "saved_high_share_of_ram": R.saved_range[1],
        "today_mib": float(e.loc["today", "total"] / MiB), "memdesc8_mib": float(e.loc["8 B", "total"] / MiB)}


def _zerocopy_thp_visits(R: Results):
    z = R.walks(rule="zerocopy", folio_size="2m", kind="folio").loc["struct_page"]
    sp = R.walks(rule="splice", folio_size="2m", kind="folio").loc["struct_page"]
    return bool(z.visits_per_mib < sp.visits_per_mib / 8), {"zerocopy_visits_per_mib": float(z.visits_per_mib),
                                                            "splice_visits_per_mib": float(sp.visits_per_mib)}


def _kernel_agrees(R: Results):
    return compare.follows(R.comparison, R.btf.source)


def _never_fewer_loads_order0(R: Results):
    k = R.kinds.set_index(["kind", "layout"])
    ok = True
    ev = {}
    for kind in ("folio", "page_pool"):
        today = k.loc[(kind, "struct_page")]
        for layout in ("memdesc32", "memdesc8"):
            r = k.loc[(kind, layout)]
            ok &= bool(r.depth_per_visit >= today.depth_per_visit and r.misses_per_visit >= today.misses_per_visit)
        ev[f"{kind}_memdesc8_misses_per_visit"] = float(k.loc[(kind, "memdesc8")].misses_per_visit)
        ev[f"{kind}_today_misses_per_visit"] = float(today.misses_per_visit)
    return ok, ev


def _order0_memdesc_costs_time(R: Results):
    if FOLIO_SIZES[R.P.folio_size] != 1 or R.P.frag_kind != "folio":
        return True, {"applies": False}
    pr = R.priced
    return bool(pr.loc["memdesc8", "ns_per_mib"] >= pr.loc["struct_page", "ns_per_mib"]
                and pr.loc["memdesc32", "ns_per_mib"] >= pr.loc["struct_page", "ns_per_mib"]), {
        "applies": True, "today": float(pr.loc["struct_page", "ns_per_mib"]),
        "memdesc8": float(pr.loc["memdesc8", "ns_per_mib"])}


def _large_folios_fewer_lines(R: Results):
    g = R.folio_grid.pivot_table(index="folio_size", columns="layout", values="misses_per_mib")
    big = g.loc[["64k", "2m"]]
    return bool((big["memdesc8"] < big["struct_page"]).all()), {
        "64k_today": float(g.loc["64k", "struct_page"]), "64k_memdesc8": float(g.loc["64k", "memdesc8"])}


def _net_iov_unchanged(R: Results):
    k = R.kinds[R.kinds.kind == "net_iov"]
    return bool(k.misses_per_visit.nunique() == 1 and k.depth_per_visit.nunique() == 1), {
        "misses_per_visit": float(k.misses_per_visit.iloc[0])}


#: The claims the talk shows (the rest are in the chapter).
TALK_CLAIMS = ("order0_folios_cost_more_memory", "this_machine_saves_memory",
               "model_follows_the_kernel")

#: Claims over the probes' counts of this kernel (per_point=False) are the chapter run's, not a sweep point's.
CLAIMS = (
    Claim("order0_folios_cost_more_memory",
          "An 8-byte memdesc word plus a folio descriptor takes more memory than today's 64-byte struct page for "
          "order-0 folios, and less for folios of 4 pages (16 KiB) or more.",
          "holds", _order0_costs_more),
    Claim("this_machine_saves_memory",
          "On this machine's census, every end state the plan leaves open (8 to 32 B per page) needs less memory "
          "than today's memmap with every descriptor counted, the least at 32 B.",
          "holds", _census_saves),
    Claim("zerocopy_visits_a_thp_once_per_call",
          "MSG_ZEROCOPY over 2 MiB THPs reaches page metadata less than an eighth as often as splice does: gup-fast "
          "grabs a PMD-mapped THP once per leaf per GUP call, and each skb's frag is one folio run (the earlier "
          "reading, that it touches every page, was wrong for THPs).",
          "holds", _zerocopy_thp_visits),
    Claim("model_follows_the_kernel",
          f"The model's struct page, folio and net_iov sizes and compound_head offset match this kernel's BTF, and "
          f"the page census agrees with the kernel's own counters {compare.RULE}, or the chapter names why not.",
          "holds", _kernel_agrees, per_point=False),
    Claim("order0_frags_never_fewer_loads",
          "For frags over order-0 pages (folios or page_pool pages), a memdesc layout never needs fewer dependent "
          "loads or fewer missed lines per visit than today's struct page.",
          "holds", _never_fewer_loads_order0),
    Claim("order0_indirection_costs_time",
          "With frags over order-0 folios, walking them through 8- or 32-byte memdescs costs at least as many ns "
          "per MiB as today, at any working set (the descriptor pool is larger than today's memmap, the hop is "
          "extra). Page_pool pages are left out: a word plus a netmem_desc can be smaller than a struct page.",
          "holds", _order0_memdesc_costs_time),
    Claim("large_folios_touch_fewer_lines",
          "With per-page frags over 64 KiB or 2 MiB folios, 8-byte memdescs touch fewer metadata lines per MiB "
          "than today's struct page (eight page words share a line; the folio descriptor is shared).",
          "holds", _large_folios_fewer_lines),
    Claim("net_iov_walk_unchanged",
          "A net_iov frag loads the same lines at the same depth in every layout: its metadata is already "
          "separately allocated.",
          "holds", _net_iov_unchanged),
)
