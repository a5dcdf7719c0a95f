"""Chapter 04 (book/04_batching.ipynb): one lookup for the whole iterator?

Analyses over :mod:`fraglife.model.pagetable` (the ``lookup`` kernel and its
twin), the cost model and three probes: ``gup`` (a gup-fast call, a page in
gup-fast, the slow path, the zero-page fault, THP), ``faults`` (first touch,
populate, resident) and ``atomics`` (unit costs). Charts are in
:mod:`fraglife.views.batching`; the contract is in :mod:`fraglife.chapters`.
"""

from __future__ import annotations

from functools import cached_property
from typing import Mapping

import pandas as pd

from ..claims import Claim
from ..model import costs, pagetable, workloads
from ..params import ParamError, Params
from . import kit

KiB = 1 << 10
MiB = 1 << 20
PAGE = pagetable.PAGE
SIZE_GOAL = workloads.Config().size_goal
STRATEGIES = pagetable.STRATEGIES
STRATEGY_LABELS = {"per_skb": "per skb (today)", "batched": "one batched lookup", "populate": "fault up front"}
#: The workloads the chapter compares (each a setting of the parameters; the run's other parameters stay).
WORKLOADS = {
    "many_small": ("many small sends: 256 iovecs of 256 B, scattered", dict(iov_count=256, iov_size=256,
                                                                            iov_layout="scattered")),
    "few_large": ("few large sends: 4 iovecs of 4 MiB, contiguous", dict(iov_count=4, iov_size=4 * MiB,
                                                                         iov_layout="contiguous")),
    "sparse": ("a sparse buffer: 16 x 64 KiB, a tenth of its pages ever written", dict(
        iov_count=16, iov_size=64 * KiB, iov_layout="contiguous", resident_fraction=0.1)),
    "cold": ("partly resident: 16 x 64 KiB, 90 % of pages mapped", dict(
        iov_count=16, iov_size=64 * KiB, iov_layout="contiguous", resident_fraction=0.9)),
}
IOV_SIZES = (256, 1 * KiB, 4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB)
RESIDENT = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99, 1.0)
RESIDENT_FINE = (0.0, 0.2, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 1.0)
ACCEPT = (0.1, 0.25, 0.5, 1.0)
SWEEP_BYTES = 16 * MiB
#: What the chapter's unit costs add to the atomics probe's (kit.unit_costs), and the units its table shows.
UNIT_EXTRAS = ("gup", "faults")
UNIT_NAMES = ("gup_call_ns", "gup_page_ns", "pin_page_ns", "thp_subpage_ns", "slow_page_ns", "zero_fault_ns",
              "populate_page_ns", "register_call_ns", "vmsplice_get_page_ns", "local_atomic_ns", "line_transfer_ns")
#: Upper bounds for the library-mode claims test (tests/test_claims.py).
SMALL = {"bytes_sent": 4 * MiB, "iov_size": 256 * KiB, "iov_count": 64}
CLAIMS_EXAMPLES = 12

KERNEL_RULES = (
    ("where today's lookups happen", "one iov_iter_get_pages2() per skb, per iovec, per MAX_SKB_FRAGS - nr_frags "
     "pages", "net/core/datagram.c zerocopy_fill_skb_from_iter(); lib/iov_iter.c first_iovec_segment(), v6.12"),
    ("one call", "get_user_pages_fast(): gup-fast walks PGD, P4D, PUD, PMD, PTE without locks, interrupts off",
     "mm/gup.c gup_fast(), gup_fast_pgd_range() ... gup_fast_pte_range(), v6.12"),
    ("gup-fast gives up", "at the first page it cannot take; the rest of the call goes to the slow path",
     "mm/gup.c gup_fast_fallback(), v6.12"),
    ("the slow path", "mmap_read_lock, then follow_page_mask() for each page from the top, faultin_page() for a "
     "page not mapped", "mm/gup.c __gup_longterm_locked(), __get_user_pages(), v6.12"),
    ("a page never written", "a read-only lookup's fault maps the shared zero page: nothing allocated",
     "mm/memory.c do_anonymous_page(), v6.12"),
    ("a PMD-mapped THP", "one try_grab_folio_fast() for all the pages of the PMD a call covers",
     "mm/gup.c gup_fast_pmd_leaf(), v6.12"),
    ("faulting up front", "madvise(MADV_POPULATE_WRITE): a write fault per page, allocating and zeroing it",
     "mm/madvise.c madvise_populate(), v6.12"),
    ("existing batching", "iov_iter_get_pages2()/iov_iter_extract_pages() take up to maxpages per call; "
     "vmsplice 16, skb_splice_from_iter() 8, MSG_ZEROCOPY at most 17", "lib/iov_iter.c, fs/splice.c, "
     "net/core/skbuff.c, v6.12"),
)
#: Batching measured elsewhere (cited).
PUBLISHED = (
    ("hugetlb head refcount once per group of subpages (slow-path PIN_LONGTERM, 16 GiB of 1 GiB pages)",
     "87.6 ms -> 12.8 ms", "commit 0fa5bc4023c1 \"mm/hugetlb: grab head page refcount once for group of subpages\" "
     "(Joao Martins, 2021)"),
    ("unpin_user_pages() batched per folio, hugetlbfs and THP", "about 3x faster; RDMA MR deregistration about "
     "4.5x", "series \"mm/gup: page unpinning improvements\", first patch 8745d7f6346c (Joao Martins, 2021)"),
    ("long-term pin of large folios in one step (gup_test, 8 GiB of 2 MiB hugetlb)", "14.4 ms -> 4.9 ms",
     "commit a03db236aebf \"gup: optimize longterm pin_user_pages() for large folio\" (Li Zhe, 2025)"),
    ("batched lookup of a sendmsg() iterator against per-skb lookups", "no upstream measurement found",
     "the trade-off Howells names (fewer walks, more faults up front) is this chapter's model"),
)


def kernel_rules() -> pd.DataFrame:
    return pd.DataFrame(list(KERNEL_RULES), columns=["what", "rule", "source"])


def published() -> pd.DataFrame:
    return pd.DataFrame(list(PUBLISHED), columns=["what was batched", "effect", "source"])


def check(params: Mapping) -> None:
    """The one rule across parameters: a sendmsg() iterator of at most 1 GiB."""
    n, s = params["iov_count"], params["iov_size"]
    if n * s > pagetable.MAX_MESSAGE:
        raise ParamError(f"parameters 'iov_count' x 'iov_size' = {n} x {s} = {n * s} is not allowed: expected at "
                         f"most {pagetable.MAX_MESSAGE} bytes (1 GiB) per sendmsg()")


# ---------------------------------------------------------------- costs
COST_ITEMS = (
    ("gup-fast call (walk from the top)", "calls", "gup_call_ns"),
    ("page in gup-fast (FOLL_GET)", "fast_pte", "gup_page_ns"),
    ("PMD leaf (one atomic)", "pmd_leaves", "local_atomic_ns"),
    ("page under a PMD leaf", "pmd_pages", "thp_subpage_ns"),
    ("page through the slow path", "slow_pages", "slow_page_ns"),
    ("fault mapping the zero page", "zero_faults", "zero_fault_ns"),
    ("page faulted up front (allocate, zero)", "populate_pages", "populate_page_ns"),
    ("frag put at skb free (another CPU)", "frags", "line_transfer_ns"),
    ("reference dropped unsent", "local_puts", "local_atomic_ns"),
)


def price(c: Mapping, units: costs.UnitCosts) -> list[dict]:
    scale = MiB / max(1, c["bytes"])
    return costs.price([(cause, c[key] * scale, unit) for cause, key, unit in COST_ITEMS if c[key] > 0], units)


def messages(params: Mapping) -> int:
    return max(1, params["bytes_sent"] // (params["iov_count"] * params["iov_size"]))


def lookups(params: Mapping, **over) -> dict[str, dict]:
    """The page-table model under each strategy at the run's parameters (``over`` replaces some)."""
    p = dict(params, **over)
    check(p)
    return {s: pagetable.lookup(p["iov_count"], p["iov_size"], p["iov_layout"], messages(p), p["resident_fraction"],
                                p["thp_share"], p["accept_fraction"], s, SIZE_GOAL, pagetable.MAX_SKB_FRAGS, p["seed"])
            for s in STRATEGIES}


def cost_table(runs: Mapping[str, dict], units: costs.UnitCosts) -> pd.DataFrame:
    return pd.DataFrame([{"strategy": s, **r} for s, c in runs.items() for r in price(c, units)])


def totals(runs: Mapping[str, dict], units: costs.UnitCosts, gbit: float) -> pd.DataFrame:
    rows = []
    for s, c in runs.items():
        ns = costs.total(price(c, units))
        mib = c["bytes"] / MiB
        rows.append({"strategy": s, "ns_per_mib": ns, "core_share": costs.core_share(ns, gbit),
                     "calls_per_mib": c["calls"] / mib, "slow_pages_per_mib": c["slow_pages"] / mib,
                     "faults_per_mib": (c["zero_faults"] + c["populate_pages"]) / mib,
                     "allocated_kib_per_mib": c["populate_pages"] * PAGE / KiB / mib,
                     "pages_looked_up_per_mib": c["pages_looked_up"] / mib})
    return pd.DataFrame(rows)


def sweep(params: Mapping, units: costs.UnitCosts, key: str, values, **fixed) -> pd.DataFrame:
    """totals() over one parameter's values, 16 MiB sent each (iterators over 1 GiB left out)."""
    def at(v):
        over = {key: v, "bytes_sent": SWEEP_BYTES, **fixed}
        if key == "iov_size" and params["iov_count"] * v > pagetable.MAX_MESSAGE:
            return None
        return totals(lookups(params, **over), units, params["line_gbit"])

    return kit.grid(key, values, at)


def workload_table(params: Mapping, units: costs.UnitCosts) -> pd.DataFrame:
    """ns per MiB of each named workload (and this run) under each strategy (tidy)."""
    frames = []
    for name, (what, over) in {**WORKLOADS, "this_run": ("this run's parameters", {})}.items():
        t = totals(lookups(params, bytes_sent=SWEEP_BYTES, **over), units, params["line_gbit"])
        t.insert(0, "workload", name)
        t.insert(1, "what", what)
        frames.append(t)
    return pd.concat(frames, ignore_index=True)


def crossover(df: pd.DataFrame, key: str, a: str = "batched", b: str = "per_skb") -> float | None:
    """The smallest value of ``key`` from which on strategy ``a`` costs less than ``b`` (None if it never does)."""
    m = df.pivot_table(index=key, columns="strategy", values="ns_per_mib")
    less = m[a] < m[b] * 0.995
    if not less.iloc[-1]:
        return None
    i = len(less) - 1
    while i > 0 and less.iloc[i - 1]:
        i -= 1
    return float(less.index[i])


# ---------------------------------------------------------------- results
class Results:
    """Chapter 04's analyses for one parameter set, each computed once on first use."""

    def __init__(self, params: Mapping):
        self.P = Params.of(params)
        check(self.P)

    @cached_property
    def rules(self) -> pd.DataFrame:
        return kernel_rules()

    @cached_property
    def units(self) -> costs.UnitCosts:
        return kit.unit_costs(self.P.measurements, *UNIT_EXTRAS)

    @cached_property
    def unit_table(self) -> pd.DataFrame:
        return kit.unit_rows(self.units, UNIT_NAMES)

    faults_probe = kit.probe_result("faults")

    @cached_property
    def calibration(self) -> pd.DataFrame:
        """The faults probe: first touch against resident, populate, per-page GUP through process_vm_readv."""
        r = self.faults_probe
        return r.frame().reset_index() if r.source != "unavailable" else pd.DataFrame()

    @cached_property
    def runs(self) -> dict[str, dict]:
        return lookups(self.P)

    @cached_property
    def counts(self) -> pd.DataFrame:
        return pd.DataFrame(self.runs)

    @cached_property
    def costs(self) -> pd.DataFrame:
        return cost_table(self.runs, self.units)

    @cached_property
    def totals(self) -> pd.DataFrame:
        return totals(self.runs, self.units, self.P.line_gbit)

    @cached_property
    def workloads(self) -> pd.DataFrame:
        return workload_table(self.P, self.units)

    def sweep(self, key: str, values, **fixed) -> pd.DataFrame:
        """:func:`sweep` at the run's parameters and unit costs."""
        return sweep(self.P, self.units, key, values, **fixed)

    size_sweep = kit.run_grid("iov_size", IOV_SIZES)
    resident_sweep = kit.run_grid("resident_fraction", RESIDENT)
    accept_sweep = kit.run_grid("accept_fraction", ACCEPT)

    @cached_property
    def contiguous_resident(self) -> pd.DataFrame:
        """The resident sweep over contiguous iovecs, finely: where a missing page costs a batched call most."""
        return self.sweep("resident_fraction", RESIDENT_FINE, iov_layout="contiguous")

    @cached_property
    def crossovers(self) -> dict:
        """Where batching starts to pay as iovecs grow; the resident shares where it costs more than today over
        contiguous iovecs; the largest resident share where faulting up front costs more than today."""
        m = self.contiguous_resident.pivot_table(index="resident_fraction", columns="strategy", values="ns_per_mib")
        worse = m[m["batched"] > m["per_skb"]].index
        pop = m[m["populate"] > m["per_skb"]].index
        return {"batched_pays_from_iov_size": crossover(self.size_sweep, "iov_size"),  # strictly less from here on
                "batched_worse_from": float(worse.min()) if len(worse) else None,
                "batched_worse_to": float(worse.max()) if len(worse) else None,
                "populate_worse_to": float(pop.max()) if len(pop) else None}

    @cached_property
    def headline(self) -> dict:
        t = self.totals.set_index("strategy")
        best = t.ns_per_mib.idxmin()
        return {
            "per_skb_ns_per_mib": float(t.loc["per_skb", "ns_per_mib"]),
            "batched_ns_per_mib": float(t.loc["batched", "ns_per_mib"]),
            "populate_ns_per_mib": float(t.loc["populate", "ns_per_mib"]),
            "batched_saving": float(1 - t.loc["batched", "ns_per_mib"] / max(1e-9, t.loc["per_skb", "ns_per_mib"])),
            "best": best,
            "per_skb_calls_per_mib": float(t.loc["per_skb", "calls_per_mib"]),
            "batched_calls_per_mib": float(t.loc["batched", "calls_per_mib"]),
            "batched_slow_pages_per_mib": float(t.loc["batched", "slow_pages_per_mib"]),
            "per_skb_slow_pages_per_mib": float(t.loc["per_skb", "slow_pages_per_mib"]),
            "populate_allocated_kib_per_mib": float(t.loc["populate", "allocated_kib_per_mib"]),
            "probes": kit.measured(self.units, "gup_call_ns"),
        }


def headline(**params) -> dict:
    """Chapter 04's result as one record: ns per MiB of today's per-skb lookups, one batched lookup and faulting up
    front, on this machine's unit costs; calls, slow-path pages and memory allocated per MiB."""
    return Results(params).headline


def panel_data(params: Mapping, *, iov_count: int, iov_size: int, iov_layout: str, resident_fraction: float,
               thp_share: float, accept_fraction: float) -> pd.DataFrame:
    """The panel's table: ns per MiB by cause and strategy for one setting (16 MiB sent)."""
    p = dict(params, iov_count=iov_count, iov_size=iov_size, iov_layout=iov_layout, resident_fraction=resident_fraction,
             thp_share=thp_share, accept_fraction=accept_fraction, bytes_sent=SWEEP_BYTES)
    return cost_table(lookups(p), kit.unit_costs(params["measurements"], *UNIT_EXTRAS))


# ---------------------------------------------------------------- prose

def units_remark(R: Results) -> str:
    """Markdown: this run's unit costs of a lookup and a fault."""
    ns = {name: f"**{R.units[name]:.0f} ns**" for name in UNIT_NAMES if name in R.units}
    return (f"A gup-fast call costs {ns['gup_call_ns']} beyond its pages, {R.units.source('gup_call_ns')}, and a page "
            f"in it {ns['gup_page_ns']} (FOLL_GET); a page through the slow path {ns['slow_page_ns']}, a "
            f"fault mapping the zero page {ns['zero_fault_ns']}, a page faulted in up front {ns['populate_page_ns']}.")


def workload_remark(R: Results) -> str:
    """Markdown: the cheapest strategy for each named workload, from the run."""
    w = R.workloads.pivot_table(index="workload", columns="strategy", values="ns_per_mib")
    parts = []
    for name in WORKLOADS:
        row = w.loc[name]
        best = row.idxmin()
        if row[best] >= row["per_skb"] * 0.995:
            parts.append(f"{name.replace('_', ' ')}: no strategy beats today's ({row['per_skb']:.0f} ns per MiB)")
        else:
            parts.append(f"{name.replace('_', ' ')}: {STRATEGY_LABELS[best]}, {row[best]:.0f} ns per MiB against "
                         f"{row['per_skb']:.0f} today")
    return "Cheapest per workload: " + "; ".join(parts) + "."


def crossover_remark(R: Results) -> str:
    """Markdown: where batching starts to pay, and where batching and faulting ahead cost more than today."""
    c = R.crossovers
    size, lo, hi, pop = (c["batched_pays_from_iov_size"], c["batched_worse_from"], c["batched_worse_to"],
                         c["populate_worse_to"])
    head = f"With {R.P.iov_count} {R.P.iov_layout} iovecs, one batched lookup"
    s1 = (f"{head} costs less than today's from iovecs of **{size:g} B** on." if size else
          f"{head} does not cost less than today's at the largest iovecs swept.")
    s2 = (f"Over contiguous iovecs it costs more than today's when between **{lo:g}** and **{hi:g}** of the pages "
          f"are mapped." if lo is not None else
          "Over contiguous iovecs it never costs more than today's at any resident share swept.")
    s3 = (f"Faulting up front costs more than today's lookups when **{pop:g}** or less of the pages are mapped."
          if pop is not None else "Faulting up front never costs more than today's lookups in this sweep.")
    return f"{s1} {s2} {s3}"


def conclusion(R: Results) -> str:
    """Markdown: the chapter's closing points, quoting the checked numbers (the reasoning is in the notebook)."""
    P, t = R.P, R.totals.set_index("strategy")
    today, batch, pop = t.loc["per_skb"], t.loc["batched"], t.loc["populate"]
    h, c = R.headline, R.crossovers
    slow = (f"{h['batched_slow_pages_per_mib']:.1f} slow pages per MiB with one batched lookup, against "
            f"{h['per_skb_slow_pages_per_mib']:.1f} today" if h["per_skb_slow_pages_per_mib"] or
            h["batched_slow_pages_per_mib"] else "none in this run, where every page is mapped")
    ahead = ("Faulting ahead pays only when nearly every page is mapped already, and costs a page of memory for "
             "each hole." if c["populate_worse_to"] is not None else "Faulting ahead did not cost more here, but "
             "it allocates a page for each hole.")
    share = {s: kit.pct(t.loc[s, "core_share"]) for s in STRATEGIES}
    run = (f"{P.iov_count} {P.iov_layout} iovecs of {P.iov_size} B, {P.resident_fraction:.0%} of pages mapped, "
           f"{P.thp_share:.0%} THP and the socket taking {P.accept_fraction:.0%} of a message per call")
    return kit.points(
        f"For {run}: today's per-skb lookups cost **{today.ns_per_mib:.0f} ns per MiB** ({today.calls_per_mib:.1f} "
        f"gup calls per MiB), one batched lookup **{batch.ns_per_mib:.0f} ns** ({batch.calls_per_mib:.1f} calls), "
        f"faulting up front **{pop.ns_per_mib:.0f} ns** with **{pop.allocated_kib_per_mib:.0f} KiB** allocated per "
        f"MiB sent.",
        f"The share of a core at {P.line_gbit} Gbit/s: today {share['per_skb']}, batched {share['batched']}, "
        f"faulting up front {share['populate']}.",
        f"Pages through the slow path: {slow}.",
        crossover_remark(R),
        ahead)


# ---------------------------------------------------------------- claims
def _whole(R: Results, **over) -> dict[str, dict]:
    return lookups(R.P, bytes_sent=min(R.P.bytes_sent, 4 * MiB), accept_fraction=1.0, **over)


def _no_dearer_when_resident(R: Results):
    runs = _whole(R, resident_fraction=1.0)
    b, s = runs["batched"], runs["per_skb"]
    t = totals(runs, R.units, R.P.line_gbit).set_index("strategy").ns_per_mib
    ok = b["calls"] <= s["calls"] and b["pages_looked_up"] <= s["pages_looked_up"] and b["slow_pages"] == 0 \
        and t["batched"] <= t["per_skb"] + 1e-9
    return ok, {"calls": [b["calls"], s["calls"]], "ns_per_mib": [t["batched"], t["per_skb"]]}


def _slow_path_never_less(R: Results):
    """At the run's residency and at 90 % mapped (the run's other parameters)."""
    out, ok = {}, True
    for res in sorted({R.P.resident_fraction, 0.9}):
        runs = _whole(R, resident_fraction=res)
        b, s = runs["batched"], runs["per_skb"]
        ok = ok and b["slow_pages"] >= s["slow_pages"] and b["zero_faults"] == s["zero_faults"]
        out[f"{res:g}"] = {"slow_pages": [b["slow_pages"], s["slow_pages"]], "zero_faults": b["zero_faults"]}
    return ok, out


def _relooks_when_partial(R: Results):
    """A message of 16 contiguous 64 KiB iovecs, the socket taking a quarter per call."""
    runs = lookups(R.P, iov_count=16, iov_size=64 * KiB, iov_layout="contiguous", accept_fraction=0.25,
                   bytes_sent=1 * MiB)
    b, s = runs["batched"], runs["per_skb"]
    return b["pages_looked_up"] > s["pages_looked_up"] and b["local_puts"] > 0, {
        "looked_up": [b["pages_looked_up"], s["pages_looked_up"]], "local_puts": b["local_puts"]}


def _populate_allocates_holes(R: Results):
    """At the run's residency and at 90 % mapped (the run's other parameters)."""
    out, ok = {}, True
    for res in sorted({R.P.resident_fraction, 0.9}):
        runs = _whole(R, resident_fraction=res)
        p, s = runs["populate"], runs["per_skb"]
        ok = ok and p["populate_pages"] == s["zero_faults"] and p["zero_faults"] == p["slow_pages"] == 0
        out[f"{res:g}"] = {"allocated": p["populate_pages"], "zero_page_faults_today": s["zero_faults"]}
    return ok, out


def _fewer_calls_only_by_merging(R: Results):
    """Batched calls: one per contiguous run; today's at least one per iovec piece."""
    runs = _whole(R)
    b, s = runs["batched"], runs["per_skb"]
    lay = R.P.iov_layout
    runs_per_msg = 1 if lay == "contiguous" else R.P.iov_count
    return b["calls"] == runs_per_msg * b["messages"] and s["calls"] >= R.P.iov_count * s["messages"], {
        "batched_calls": b["calls"], "per_skb_calls": s["calls"], "messages": b["messages"]}


def _ledgers(R: Results):
    ok = all(c["bytes"] == messages(R.P) * R.P.iov_count * R.P.iov_size for c in R.runs.values())
    return ok, {s: c["bytes"] for s, c in R.runs.items()}


#: The claims the talk shows (the rest are in the chapter).
TALK_CLAIMS = ("batch_when_resident_and_whole", "faulting_up_front_allocates_every_hole")

CLAIMS = (
    Claim("batch_when_resident_and_whole",
          "With every page mapped and the socket taking the whole message, one batched lookup costs no more than "
          "today's per-skb lookups: no more calls, no more pages, no slow path.",
          "holds", _no_dearer_when_resident),
    Claim("batched_slow_path_never_shorter",
          "With the whole message taken, a batched lookup sends at least as many pages through the GUP slow path as "
          "today's lookups, and takes the same faults (at the run's share of pages mapped and at 90 %).",
          "holds", _slow_path_never_less),
    Claim("batched_looks_up_again_when_the_socket_takes_less",
          "When the socket takes a quarter of a message of 16 contiguous 64 KiB iovecs per call, a batched lookup "
          "looks up more pages than today's and drops references it took for nothing.",
          "holds", _relooks_when_partial),
    Claim("faulting_up_front_allocates_every_hole",
          "Faulting up front allocates a page for every page a read-only lookup would have mapped to the zero page, "
          "and then no lookup takes the slow path (at the run's share of pages mapped and at 90 %).",
          "holds", _populate_allocates_holes),
    Claim("batching_saves_only_calls_it_can_merge",
          "A batched lookup makes one call per run of contiguous iovecs; today's makes at least one per iovec.",
          "holds", _fewer_calls_only_by_merging),
    Claim("every_byte_is_sent",
          "Every strategy sends every byte of every message.",
          "holds", _ledgers),
)
