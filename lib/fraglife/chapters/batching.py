"""Chapter 04 (book/04_batching.ipynb): one lookup for the whole iterator?

Analyses over :mod:`fraglife.model.pagetable` (the ``lookup`` kernel and its
twin), GUP's measured price (:func:`fraglife.model.costs.price_gup`, the
``zcsend`` probe's fit) and four probes: ``gup`` (a gup-fast call, the slow
path), ``faults`` (populate), ``atomics`` (unit costs) and ``gup_paths`` (the
running kernel's mmap_lock acquisitions and faults by buffer layout: the model
against the kernel, :attr:`Results.comparison`). Charts are in
:mod:`fraglife.views.batching`; the contract is in :mod:`fraglife.chapters`.
"""

from __future__ import annotations

from functools import cached_property
from typing import Mapping

import pandas as pd

from ..claims import Claim
from ..model import costs, kernels, pagetable, workloads
from ..params import ParamError, Params
from . import kit
from .kit import compare

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
    "huge_zero": ("a THP-enabled buffer only read: 4 x 2 MiB huge zero PMDs", dict(
        iov_count=4, iov_size=2 * MiB, iov_layout="contiguous", resident_fraction=0.0, huge_zero_share=1.0)),
}
IOV_SIZES = (256, 1 * KiB, 4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB)
RESIDENT = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99, 1.0)
RESIDENT_FINE = (0.0, 0.2, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 1.0)
ACCEPT = (0.1, 0.25, 0.5, 1.0)
SWEEP_BYTES = 16 * MiB
#: What the chapter's unit costs add to the atomics probe's (kit.unit_costs), and the units its table shows.
UNIT_EXTRAS = ("gup", "faults")
UNIT_NAMES = ("zc_call_ns", "gup_call_ns", "zc_page_ns", "zc_frag_ns", "gup_page_ns", "zc_fault_page_ns",
              "gup_slow_page_ns", "gup_slow_call_ns", "populate_page_ns", "local_atomic_ns", "line_transfer_ns")
#: Upper bounds for the library-mode claims test (tests/test_claims.py).
SMALL = {"bytes_sent": 4 * MiB, "iov_size": 256 * KiB, "iov_count": 64}
CLAIMS_EXAMPLES = 12

KERNEL_RULES = (
    ("where today's lookups happen", "one iov_iter_get_pages2() per skb, per iovec, per MAX_SKB_FRAGS - nr_frags "
     "pages (the compile-time 17)", "net/core/datagram.c zerocopy_fill_skb_from_iter(); lib/iov_iter.c "
     "first_iovec_segment(), v6.18"),
    ("one call", "get_user_pages_fast(): gup-fast walks PGD, P4D, PUD, PMD, PTE without locks, interrupts off; "
     "each page taken sets PG_referenced (a locked set_bit)", "mm/gup.c gup_fast(), gup_fast_pte_range(), "
     "folio_set_referenced(), v6.18"),
    ("gup-fast gives up", "at the first page it cannot take; the rest of the call goes to the slow path",
     "mm/gup.c gup_fast_fallback(), v6.18"),
    ("the zero page", "a read fault maps it with a special PTE, and gup-fast refuses special PTEs: a page only read "
     "always takes the slow path", "mm/memory.c do_anonymous_page() pte_mkspecial(); mm/gup.c "
     "gup_fast_pte_range() pte_special(), v6.18"),
    ("the slow path", "mmap_read_lock once per call, then follow_page_mask() for each page from the first one "
     "gup-fast refused, faultin_page() for a page not mapped (a read fault: the zero page, nothing allocated)",
     "mm/gup.c __gup_longterm_locked(), __get_user_pages(), v6.18"),
    ("a PMD-mapped THP", "one try_grab_folio_fast() for all the pages of the PMD a call covers",
     "mm/gup.c gup_fast_pmd_leaf(), v6.18"),
    ("the huge zero PMD", "6.18: special, so gup-fast refuses it (slow path); 6.12: grabbed like any THP",
     "mm/gup.c gup_fast_pmd_leaf() pmd_special(), v6.18; 6.12: the rule huge_zero_pmd_special below"),
    ("faulting up front", "madvise(MADV_POPULATE_WRITE): a write fault per page, allocating and zeroing it; on a "
     "huge zero PMD 6.13+ allocates a THP, 6.12 splits it and allocates the pages written",
     "mm/madvise.c madvise_populate(); mm/huge_memory.c do_huge_zero_wp_pmd(), v6.18"),
    ("existing batching", "iov_iter_get_pages2()/iov_iter_extract_pages() take up to maxpages per call; "
     "vmsplice 16, skb_splice_from_iter() 8, MSG_ZEROCOPY at most 17", "lib/iov_iter.c, fs/splice.c, "
     "net/core/skbuff.c, v6.18"),
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
def price(c: Mapping, units: costs.UnitCosts) -> list[dict]:
    """ns per MiB by cause: the lookups as GUP's measured price has them (:func:`fraglife.model.costs.price_gup`, the
    zcsend fit: counted atomics shown at 0 ns, inside the fitted page and frag), plus the pages faulted in up front
    and the puts of references taken for pages the socket did not take (the fit's puts come with frags)."""
    nbytes = max(1, c["bytes"])
    rows = costs.price_gup(pagetable.gup_work(c), units, nbytes)
    extra = [("page faulted in up front (allocate, zero)", c["populate_pages"], "populate_page_ns"),
             # the fit prices a reference's put with its frag; a page looked up and not sent has no frag
             ("reference dropped unsent (its put: no frag carries it)", c["local_puts"], "local_atomic_ns")]
    return rows + costs.price([(cause, n * MiB / nbytes, unit) for cause, n, unit in extra if n], units)


def messages(params: Mapping) -> int:
    return max(1, params["bytes_sent"] // (params["iov_count"] * params["iov_size"]))


def lookups(params: Mapping, release: str = kernels.NEWEST, **over) -> dict[str, dict]:
    """The page-table model under each strategy at the run's parameters (``over`` replaces some; ``huge_zero_share``
    is a workload's, 0 otherwise) on kernel ``release``'s rules."""
    p = dict(params, **over)
    check(p)
    return {s: pagetable.lookup(p["iov_count"], p["iov_size"], p["iov_layout"], messages(p), p["resident_fraction"],
                                p["thp_share"], p["accept_fraction"], s, SIZE_GOAL, pagetable.MAX_SKB_FRAGS, p["seed"],
                                huge_zero_share=p.get("huge_zero_share", 0.0), release=release)
            for s in STRATEGIES}


def cost_table(runs: Mapping[str, dict], units: costs.UnitCosts) -> pd.DataFrame:
    return pd.DataFrame([{"strategy": s, **r} for s, c in runs.items() for r in price(c, units)])


def ns_per_mib(c: Mapping, units: costs.UnitCosts) -> float:
    return costs.total(price(c, units))


def totals(runs: Mapping[str, dict], units: costs.UnitCosts, gbit: float) -> pd.DataFrame:
    rows = []
    for s, c in runs.items():
        ns = ns_per_mib(c, units)
        mib = c["bytes"] / MiB
        rows.append({"strategy": s, "ns_per_mib": ns, "core_share": costs.core_share(ns, gbit),
                     "calls_per_mib": c["calls"] / mib, "slow_pages_per_mib": c["slow_pages"] / mib,
                     "faults_per_mib": (c["zero_faults"] + c["populate_pages"]) / mib,
                     "allocated_kib_per_mib": c["populate_pages"] * PAGE / KiB / mib,
                     "pages_looked_up_per_mib": c["pages_looked_up"] / mib})
    return pd.DataFrame(rows)


def sweep(params: Mapping, units: costs.UnitCosts, key: str, values, release: str = kernels.NEWEST,
          **fixed) -> pd.DataFrame:
    """totals() over one parameter's values, 16 MiB sent each (iterators over 1 GiB left out)."""
    def at(v):
        over = {key: v, "bytes_sent": SWEEP_BYTES, **fixed}
        if key == "iov_size" and params["iov_count"] * v > pagetable.MAX_MESSAGE:
            return None
        return totals(lookups(params, release, **over), units, params["line_gbit"])

    return kit.grid(key, values, at)


def workload_table(params: Mapping, units: costs.UnitCosts, release: str = kernels.NEWEST) -> pd.DataFrame:
    """ns per MiB of each named workload (and this run) under each strategy (tidy)."""
    frames = []
    for name, (what, over) in {**WORKLOADS, "this_run": ("this run's parameters", {})}.items():
        t = totals(lookups(params, release, bytes_sent=SWEEP_BYTES, **over), units, params["line_gbit"])
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

    gup_paths = kit.probe_result("gup_paths")
    faults_probe = kit.probe_result("faults")

    @cached_property
    def release(self) -> str:
        """The kernel whose rules the model follows (the kernel parameter; "running": the gup_paths probe's)."""
        return kit.kernel_release(self.P.kernel, self.P.measurements, self.gup_paths)

    @cached_property
    def rules(self) -> pd.DataFrame:
        return kernel_rules()

    @cached_property
    def versioned(self) -> pd.DataFrame:
        """The rules that move this chapter's numbers, as the model's kernel and 6.12 LTS have them."""
        return kit.kernel_rules(self.release, "04")

    @cached_property
    def units(self) -> costs.UnitCosts:
        return kit.unit_costs(self.P.measurements, *UNIT_EXTRAS)

    @cached_property
    def unit_table(self) -> pd.DataFrame:
        return kit.unit_rows(self.units, UNIT_NAMES)

    @cached_property
    def calibration(self) -> pd.DataFrame:
        """The faults probe: first touch against resident, populate, per-page GUP through process_vm_readv."""
        r = self.faults_probe
        return r.frame().reset_index() if r.source != "unavailable" else pd.DataFrame()

    @cached_property
    def runs(self) -> dict[str, dict]:
        return lookups(self.P, self.release)

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
    def spans(self) -> dict[str, tuple[float, float, float]]:
        """Each strategy's ns per MiB as (value, least, most) over the ranges its unit costs were measured over."""
        return {s: self.units.span(lambda u, c=c: ns_per_mib(c, u)) for s, c in self.runs.items()}

    @cached_property
    def workloads(self) -> pd.DataFrame:
        return workload_table(self.P, self.units, self.release)

    @cached_property
    def on_lts(self) -> pd.DataFrame:
        """The workloads whose numbers differ between the model's kernel and 6.12 LTS: ns per MiB per strategy on
        each (empty when both follow the same rules)."""
        lts = kernels.LTS
        if kernels.series(self.release) == lts:
            return pd.DataFrame()
        theirs = workload_table(self.P, self.units, lts)
        mine = self.workloads
        key = ["workload", "strategy"]
        m = mine.merge(theirs, on=key + ["what"], suffixes=("", "_lts"))
        m = m[(m.ns_per_mib - m.ns_per_mib_lts).abs() > 1e-6 * m.ns_per_mib.abs().clip(lower=1)]
        here, old = kit.kernel_label(self.release), kit.kernel_label(lts)
        out = m[key + ["what", "ns_per_mib", "ns_per_mib_lts", "slow_pages_per_mib", "slow_pages_per_mib_lts",
                       "allocated_kib_per_mib", "allocated_kib_per_mib_lts"]]
        return out.rename(columns={"ns_per_mib": f"ns per MiB, {here}", "ns_per_mib_lts": f"ns per MiB, {old}",
                                   "slow_pages_per_mib": f"slow pages per MiB, {here}",
                                   "slow_pages_per_mib_lts": f"slow pages per MiB, {old}",
                                   "allocated_kib_per_mib": f"KiB allocated per MiB, {here}",
                                   "allocated_kib_per_mib_lts": f"KiB allocated per MiB, {old}"}).reset_index(drop=True)

    def sweep(self, key: str, values, **fixed) -> pd.DataFrame:
        """:func:`sweep` at the run's parameters, unit costs and kernel."""
        return sweep(self.P, self.units, key, values, self.release, **fixed)

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

    # ------------------------------------------------------------ the model against the running kernel
    @cached_property
    def probed_release(self) -> str:
        """The kernel the gup_paths counts come from: the model follows its rules wherever it is compared with it,
        whatever the kernel parameter says."""
        return kit.kernel_release("running", self.P.measurements, self.gup_paths)

    @cached_property
    def comparison(self) -> pd.DataFrame:
        """The model's per-skb lookups of each gup_paths layout against the kernel's counts (:func:`against`), on
        the rules of the kernel that counted them."""
        return against(self.gup_paths, self.probed_release)

    @cached_property
    def comparison_table(self) -> pd.DataFrame:
        return self.comparison[compare.TABLE_COLUMNS]

    @cached_property
    def comparison_central(self) -> pd.DataFrame:
        """The rows that carry the chapter's rules: slow-path calls on a buffer only read (the zero page is never
        gup-fast) and faults on one never touched (one per page), per connection."""
        c = self.comparison
        keep = ((c.transfer.str.endswith("/a") & (c.quantity == "slow_path_calls")) |
                (c.transfer.str.endswith("/c") & (c.quantity == "faults")))
        return c[keep][["transfer", "quantity", "kernel", "model", "agrees"]].reset_index(drop=True)

    @cached_property
    def comparison_summary(self) -> pd.DataFrame:
        """The comparison as one row per layout and quantity: kernel and model per MiB in each configuration."""
        c = self.comparison
        if c.empty:
            return c
        t = c.assign(config=c.transfer.str.split("/").str[0], layout=c.transfer.str.split("/").str[1])
        k = t.pivot_table(index=["layout", "quantity"], columns="config", values="kernel", aggfunc="first")
        m = t.pivot_table(index=["layout", "quantity"], columns="config", values="model", aggfunc="first")
        out = pd.concat({"kernel": k, "model": m}, axis=1).swaplevel(axis=1).sort_index(axis=1)
        return out.round(2)

    @cached_property
    def headline(self) -> dict:
        t = self.totals.set_index("strategy")
        best = t.ns_per_mib.idxmin()
        agree, n = compare.tally(self.comparison)
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
            "kernel_quantities_agree": agree, "kernel_quantities_compared": n,
            "release": self.release,
            "probes": kit.measured(self.units, "zc_page_ns"),
        }


def headline(**params) -> dict:
    """Chapter 04's result as one record: ns per MiB of today's per-skb lookups, one batched lookup and faulting up
    front, priced by GUP's measured price; calls, slow-path pages and memory allocated per MiB."""
    return Results(params).headline


def panel_data(params: Mapping, *, iov_count: int, iov_size: int, iov_layout: str, resident_fraction: float,
               thp_share: float, accept_fraction: float) -> pd.DataFrame:
    """The panel's table: ns per MiB by cause and strategy for one setting (16 MiB sent)."""
    p = dict(params, iov_count=iov_count, iov_size=iov_size, iov_layout=iov_layout, resident_fraction=resident_fraction,
             thp_share=thp_share, accept_fraction=accept_fraction, bytes_sent=SWEEP_BYTES)
    release = kit.kernel_release(params.get("kernel", "running"), params["measurements"])
    return cost_table(lookups(p, release), kit.unit_costs(params["measurements"], *UNIT_EXTRAS))


# ---------------------------------------------------------------- the model against the running kernel
#: What each quantity of a gup_paths transfer means, in the kernel and in the model (per MiB sent).
QUANTITIES = {
    "slow_path_calls": "GUP calls that took the slow path: the sending thread's mmap_lock acquisitions "
                       "(mmap_lock:mmap_lock_start_locking) in the send calls, less an idle baseline; the model's "
                       "slow_calls (mmap_read_lock once per call that gup-fast gave up on)",
    "faults": "pages faulted in by GUP: the sending thread's minor faults (getrusage(RUSAGE_THREAD)); the model's "
              "zero_faults (faultin_page(), a read fault mapping the zero page)",
    "skbs": "skbs filled, each with its own GUP calls: passes of tcp_sendmsg_locked()'s loop "
            "(tcp:tcp_sendmsg_locked); the model's skbs",
}
#: The state of a gup_paths page kind in the model: a (read only) the zero page, b written, c never touched.
_STATES = {0: pagetable.ZERO, 1: pagetable.PRESENT, 2: pagetable.ABSENT}
#: Why the model does not follow a count, by configuration and quantity.
TAIL_CALLS = ("with a TCP-MD5 key each skb holds one MSS, and each send call first appends to the unsent tail skb "
              "the last call left (tcp_sendmsg_locked() fills the write queue's tail while it is unsent, "
              "net/ipv4/tcp.c, v6.18): one GUP call more per send call (46 where the model, which starts each "
              "send call on a new skb, makes 45), and the extra calls land on other pages")


def _gup_paths_goal(cfg: Mapping) -> int:
    """The size goal the probe's connection had: one MSS with a TCP-MD5 key (sk_gso_disable()), else 45 MSS
    (tcp_xmit_size_goal() at the 64 KiB GSO limit, net/ipv4/tcp.c, v6.18)."""
    return cfg["mss"] if cfg.get("md5") else 45 * cfg["mss"]


def against(result, release: str = kernels.NEWEST) -> pd.DataFrame:
    """The model's per-skb lookups of each gup_paths layout and configuration (fed the buffer's page states, the
    send size and the connection's MSS, never the counts) against the kernel's counts, one :func:`compare.row`
    per transfer and quantity (:data:`QUANTITIES`), within :data:`compare.RULE`."""
    from ..probes import gup_paths as G

    if result.source == "unavailable" or "runs" not in (result.data or {}):
        return pd.DataFrame(columns=compare.COLUMNS)
    d = result.data
    mib = d["bytes"] / MiB
    pages = d["bytes"] // PAGE
    rows = []
    for cname, cfg in d["configs"].items():
        goal = _gup_paths_goal(cfg)
        for layout, run in d["runs"].get(cname, {}).items():
            states = [_STATES[int(k)] for k in G.kinds(layout, pages)]
            m = pagetable.lookup_pages(states, cfg["send_size"], goal, release=release)
            model = {"slow_path_calls": m["slow_calls"] / mib, "faults": m["zero_faults"] / mib,
                     "skbs": m["skbs"] / mib}
            net = run["net"]
            for q, key in (("slow_path_calls", "mmap_lock"), ("faults", "minflt"), ("skbs", "sendmsg_iterations")):
                k = net[key]
                why = TAIL_CALLS if cfg.get("md5") and q != "faults" else ""
                rows.append(compare.row("04_batching", f"{cname}/{layout}", q, k["median"] / mib, model[q], mib=mib,
                                        low=k.get("q1", k["median"]) / mib, high=k.get("q3", k["median"]) / mib,
                                        reason=why, measured=result.source, how_counted=QUANTITIES[q]))
    return pd.DataFrame(rows, columns=compare.COLUMNS)


def comparison_note(R: Results) -> str:
    """Markdown: where the comparison's kernel counts come from, and how many quantities agree."""
    r = R.gup_paths
    agree, n = compare.tally(R.comparison)
    if r.source == "unavailable":
        return f"The gup_paths probe is unavailable here: {r.reason}"
    src = (f"**live**, this kernel ({r.kernel})" if r.source == "live" else
           f"**recorded** on {r.kernel} ({r.recorded_at}), not measured now: {r.note().rstrip('.')}")
    zero = R.comparison[(R.comparison.transfer.str.endswith("/a")) & (R.comparison.quantity == "slow_path_calls")]
    ok = int((zero.agrees == True).sum())  # noqa: E712
    return (f"Kernel counts {src}. **{agree} of {n}** quantities agree {compare.RULE}. The one that confirms the "
            f"chapter's central rule, a page only read (the zero page) always takes the slow path: slow-path calls "
            f"per MiB on layout a, **{ok} of {len(zero)}** configurations agree, one per GUP call.")


# ---------------------------------------------------------------- prose

def units_remark(R: Results) -> str:
    """Markdown: GUP's measured price as this run uses it."""
    u = R.units
    ns = {name: f"**{u[name]:.0f} ns**" for name in UNIT_NAMES if name in u}
    slow = (f", a page walked by the slow path without a fault {ns['gup_slow_page_ns']} more"
            if "gup_slow_page_ns" in ns else "")
    pop = f"; a page faulted in up front {ns['populate_page_ns']}" if "populate_page_ns" in ns else ""
    return (f"GUP's price comes from one place, the zcsend probe's fit of real MSG_ZEROCOPY sends "
            f"({u.source('zc_page_ns')}): a send call's GUP call, ubuf_info and notification {ns['zc_call_ns']}, "
            f"each further GUP call {ns.get('gup_call_ns', ns['zc_call_ns'])}, a page looked up "
            f"{ns['zc_page_ns']} and its frag {ns['zc_frag_ns']}, a page GUP faults in {ns['zc_fault_page_ns']} more"
            f"{slow}{pop}. The atomics the lookups take (references, PG_referenced, the slow path's locks) are "
            f"inside these fitted times: the tables count them and price them at 0 ns.")


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
    s2 = (f"Over contiguous iovecs it costs more than today's when between **{share(lo)}** and **{share(hi)}** of "
          f"the pages "
          f"are mapped." if lo is not None else
          "Over contiguous iovecs it never costs more than today's at any resident share swept.")
    s3 = (f"Faulting up front costs more than today's lookups when **{share(pop)}** or less of the pages are mapped."
          if pop is not None else "Faulting up front never costs more than today's lookups in this sweep.")
    return f"{s1} {s2} {s3}"


def conclusion(R: Results) -> str:
    """Markdown: the chapter's three closing points, quoting the checked numbers (the reasoning is in the notebook)."""
    P, t = R.P, R.totals.set_index("strategy")
    today, batch, pop = t.loc["per_skb"], t.loc["batched"], t.loc["populate"]
    c = R.crossovers
    span = {s: answers_text(R.spans[s], "ns/MiB") for s in ("per_skb", "batched")}
    size = c["batched_pays_from_iov_size"]
    where = (f"from iovecs of {size:g} B on ({P.iov_count} {P.iov_layout} iovecs)" if size else
             f"at no iovec size swept ({P.iov_count} {P.iov_layout} iovecs)")
    lo, hi = c["batched_worse_from"], c["batched_worse_to"]
    loses = (f"It costs more than today's over contiguous iovecs with {share(lo)} to {share(hi)} of the pages mapped: "
             f"gup-fast hands the rest of a call to the slow path at the first page it cannot take, and a batched "
             f"call is long." if lo is not None else
             "Over contiguous iovecs it never costs more than today's at any share mapped swept.")
    agree, n = compare.tally(R.comparison)
    return kit.points(
        f"At this run's setting one batched lookup costs {span['batched']} against today's {span['per_skb']} "
        f"({batch.calls_per_mib:.1f} GUP calls per MiB against {today.calls_per_mib:.1f}); it pays {where}.",
        loses + (f" Faulting up front allocates {pop.allocated_kib_per_mib:.0f} KiB per MiB sent here."
                 if pop.allocated_kib_per_mib else ""),
        f"The lookup rules behind these numbers match the running kernel's counts: {agree} of {n} quantities "
        f"agree {compare.RULE}, the zero page always slow included.")


def share(x: float) -> str:
    """A share of pages as the chapter writes it: 0.995 -> "99.5 %"."""
    return f"{100 * x:.3g} %"


def answers_text(span: tuple[float, float, float], unit: str) -> str:
    """A (value, low, high) as the answers table formats it."""
    from ..answers import format_number

    return format_number(*span, unit=unit)


def answer(R: Results):
    """Chapter 04's row of the answers table: bullet (d)."""
    from .. import answers

    h = R.headline
    # the saving's range over the units' ranges (both strategies priced on the same units at each corner)
    saved = R.units.span(lambda u: ns_per_mib(R.runs["per_skb"], u) - ns_per_mib(R.runs["batched"], u))
    number = answers.Number(*saved, unit="ns/MiB", what="CPU one batched lookup saves")
    agree, n = compare.tally(R.comparison)
    lo_, hi_ = R.crossovers["batched_worse_from"], R.crossovers["batched_worse_to"]
    risk = (f"but costs more over contiguous iovecs with {share(lo_)} to {share(hi_)} of pages mapped, where one "
            f"missing page sends the rest of a long call down the slow path" if lo_ is not None else
            "and never costs more at the shares mapped swept")
    text = (f"One batched lookup saves only calls: {number.text} on {R.P.iov_count} {R.P.iov_layout} iovecs of "
            f"{R.P.iov_size} B, {R.P.resident_fraction:.0%} mapped "
            f"({answers.format_number(h['batched_calls_per_mib'])} GUP calls per MiB against "
            f"{answers.format_number(h['per_skb_calls_per_mib'])} per skb today), {risk}.")
    verdict = "agree, at a cost" if lo_ is not None else "agree"
    return answers.Answer("d", text, verdict, number, answers.cross_checked(
        f"the gup_paths probe's mmap_lock and fault counts by buffer layout ({agree} of {n} quantities agree); "
        f"priced by the zcsend probe's fit of GUP", R.gup_paths.source if R.gup_paths.source != "unavailable"
        else ""))


# ---------------------------------------------------------------- claims
def _whole(R: Results, **over) -> dict[str, dict]:
    return lookups(R.P, R.release, bytes_sent=min(R.P.bytes_sent, 4 * MiB), accept_fraction=1.0, **over)


def _no_dearer_when_resident(R: Results):
    runs = _whole(R, resident_fraction=1.0)
    b, s = runs["batched"], runs["per_skb"]
    t = totals(runs, R.units, R.P.line_gbit).set_index("strategy").ns_per_mib
    ok = b["calls"] <= s["calls"] and b["pages_looked_up"] <= s["pages_looked_up"] and b["slow_pages"] == 0 \
        and t["batched"] <= t["per_skb"] + 1e-9
    return ok, {"calls": [b["calls"], s["calls"]], "ns_per_mib": [t["batched"], t["per_skb"]]}


def _slow_path_covers_todays(R: Results):
    """At the run's residency, at 90 % and at none mapped (the run's other parameters): every page today's lookups
    send down the slow path goes there in the batched lookup too, so today's count exceeds the batched one by at
    most the pages today looks up twice; the faults are the same."""
    out, ok = {}, True
    for res in sorted({R.P.resident_fraction, 0.9, 0.0}):
        runs = _whole(R, resident_fraction=res)
        b, s = runs["batched"], runs["per_skb"]
        twice = s["pages_looked_up"] - b["pages_looked_up"]
        ok = ok and twice >= 0 and b["slow_pages"] >= s["slow_pages"] - twice and b["zero_faults"] == s["zero_faults"]
        out[f"{res:g}"] = {"slow_pages": [b["slow_pages"], s["slow_pages"]], "looked_up_twice_today": twice,
                           "zero_faults": b["zero_faults"]}
    return ok, out


def _relooks_when_partial(R: Results):
    """A message of 16 contiguous 64 KiB iovecs, the socket taking a quarter per call."""
    runs = lookups(R.P, R.release, iov_count=16, iov_size=64 * KiB, iov_layout="contiguous", accept_fraction=0.25,
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


def _follows_the_kernel(R: Results):
    return compare.follows(R.comparison, R.gup_paths.source)


def _zero_page_always_slow(R: Results):
    """Layout a of every gup_paths configuration: one slow-path call per GUP call in the kernel and in the model."""
    c = R.comparison
    a = c[c.transfer.str.endswith("/a") & (c.quantity == "slow_path_calls")]
    return len(a) > 0 and bool((a.agrees == True).all()), {  # noqa: E712
        r.transfer: [r.model, r.kernel] for r in a.itertuples()} | {"source": R.gup_paths.source}


def _ledgers(R: Results):
    ok = all(c["bytes"] == messages(R.P) * R.P.iov_count * R.P.iov_size for c in R.runs.values())
    return ok, {s: c["bytes"] for s, c in R.runs.items()}


#: The claims the talk shows (the rest are in the chapter).
TALK_CLAIMS = ("batch_when_resident_and_whole", "faulting_up_front_allocates_every_hole",
               "the_zero_page_is_always_slow")

#: Claims over the probes' counts of this kernel (per_point=False) are the chapter run's, not a sweep point's.
CLAIMS = (
    Claim("batch_when_resident_and_whole",
          "With every page mapped and the socket taking the whole message, one batched lookup costs no more than "
          "today's per-skb lookups: no more calls, no more pages, no slow path.",
          "holds", _no_dearer_when_resident),
    Claim("batched_slow_path_covers_todays",
          "With the whole message taken, every page today's lookups send through the GUP slow path goes there in "
          "one batched lookup too, and both take the same faults; today's count is higher by at most the pages it "
          "looks up twice (a page an skb boundary splits: a zero page is never gup-fast, so both lookups go slow) "
          "(at the run's share of pages mapped, at 90 % and at none).",
          "holds", _slow_path_covers_todays),
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
    Claim("model_follows_the_kernels_lookups",
          f"Against the gup_paths probe's counts of the running kernel (mmap_lock taken and faults of the sending "
          f"thread, skbs filled; four connections, eight buffer layouts) every quantity agrees {compare.RULE} or "
          f"has its reason.",
          "holds", _follows_the_kernel, per_point=False),
    Claim("the_zero_page_is_always_slow",
          "A buffer only read (the zero page) sends every GUP call to the slow path: one mmap_lock per call, in the "
          "kernel and in the model, on every connection the probe measured.",
          "holds", _zero_page_always_slow, per_point=False),
    Claim("every_byte_is_sent",
          "Every strategy sends every byte of every message.",
          "holds", _ledgers),
)
