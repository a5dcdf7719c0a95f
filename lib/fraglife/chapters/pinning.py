"""Chapter 03 (book/03_pinning.ipynb): MSG_ZEROCOPY must pin, not ref.

Analyses over :mod:`fraglife.model.pins` (the ``history`` and ``sender``
kernels, the fork walk, ``cow_case``), GUP's measured price
(:func:`fraglife.model.costs.price_gup`, ``zc_ratio``: the ``zcsend`` probe's
fit of real sends) and the probes ``pins`` (which syscalls pin how many pages),
``cow`` (fork, copy-on-write, false "maybe pinned", RLIMIT_MEMLOCK),
``cow_mthp`` (fork and write on 64 KiB folios: the model against the running
kernel, :attr:`Results.comparison`), ``gup``, ``atomics`` (unit costs) and
``zerocopy`` (sends per notification). Charts are in
:mod:`fraglife.views.pinning`; the contract is in :mod:`fraglife.chapters`.
"""

from __future__ import annotations

from functools import cached_property
from typing import Mapping

import pandas as pd

from ..claims import Claim
from ..model import costs, engine, kernels, pins, workloads
from ..params import Params
from . import kit
from .kit import compare

KiB = 1 << 10
MiB = 1 << 20
PAGE = pins.PAGE
#: TCP's size goal at MSS 1448: 45 segments (sk_setup_caps(), tcp_xmit_size_goal(), v6.18; chapter 01).
SIZE_GOAL = workloads.Config().size_goal
#: The grids the chapter shows; every other parameter is the run's.
FP_REFS = (0, 512, 900, 960, 990, 1000, 1010, 1023, 1040, 1060, 1100, 1200)
FP_REFS_LARGE = (0, 1000, 1200)
FP_FOLIOS, FP_STEPS = 128, 800_000
#: The share of holders that pin in the mixed false-positive run.
FP_PIN_SHARE = 0.2
FORK_RATES = (0.0, 0.1, 1.0, 10.0, 100.0)
SEND_SIZES = (4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB)
FOLIO_SIZES = (1, 16, 512)
#: Upper bounds for the library-mode claims test (tests/test_claims.py).
SMALL = {"bytes_sent": 4 * MiB, "send_size": 1 * MiB, "inflight": 16}
CLAIMS_EXAMPLES = 10
POLICY_LABELS = {"ref": "GUP references (today)", "pin": "FOLL_PIN pins"}
#: What the chapter's unit costs add to the atomics probe's (kit.unit_costs), and the units its table shows.
UNIT_EXTRAS = ("gup", "cow", "release")
UNIT_NAMES = ("zc_call_ns", "gup_call_ns", "zc_page_ns", "zc_frag_ns", "gup_page_ns", "pin_page_ns", "copy_page_ns",
              "copy_call_ns", "local_atomic_ns", "line_transfer_ns", "copy_at_fork_ns", "copy_at_fork_thp_ns",
              "wp_fault_ns", "wp_copy_ns", "wp_fault_pmd_ns")

# ---------------------------------------------------------------- what a pin is
PIN_FACTS = (
    ("GUP_PIN_COUNTING_BIAS", "1024 (1 << 10)", "what one pin adds to a small folio's _refcount",
     "include/linux/mm.h, v6.18"),
    ("FOLL_PIN", "0x80000 (1 << 19), internal", "set by pin_user_pages*(); never by callers",
     "mm/internal.h, v6.18; enum value in this kernel's BTF"),
    ("FOLL_GET on any folio", "+1 _refcount: one atomic (try_get_folio())", "get_user_pages*(), "
     "iov_iter_get_pages2(): today's MSG_ZEROCOPY, vmsplice", "mm/gup.c try_grab_folio_fast(), v6.18"),
    ("PG_referenced in gup-fast", "folio_set_referenced(): a locked set_bit on the folio, once per PTE page or "
     "PMD leaf", "FOLL_GET and FOLL_PIN alike: counted as its own kind, inside GUP's measured price",
     "mm/gup.c gup_fast_pte_range(), gup_fast_pmd_leaf(), v6.18"),
    ("FOLL_PIN, small folio, fast path", "try_get_folio() then +1023: two atomics", "the pin is the bias",
     "mm/gup.c try_grab_folio_fast() (v6.10+, 'mm: gup: stop abusing try_grab_folio')"),
    ("FOLL_PIN, large folio, fast path", "try_get_folio() then _pincount + 1: two atomics",
     "per PTE page, or per PMD leaf for all pages of a PMD-mapped THP a call covers",
     "mm/gup.c try_grab_folio_fast(), gup_fast_pmd_leaf(), v6.18"),
    ("FOLL_PIN, slow path", "small folio: +1024 in one atomic; large: +1 and _pincount + 1",
     "__get_user_pages() after gup-fast gave up", "mm/gup.c try_grab_folio(), v6.18"),
    ("unpin", "small folio: folio_put_refs(n x 1024), one atomic; large: atomic_sub(_pincount) and "
     "folio_put_refs(), two", "unpin_user_pages() drops consecutive pages of one folio together",
     "mm/gup.c gup_put_folio(), gup_folio_next(), v6.18"),
    ("folio_maybe_dma_pinned()", "large: _pincount > 0 (exact); small: _refcount >= 1024",
     "a small folio with 1023 other references looks pinned: false positives, never false negatives",
     "include/linux/mm.h, v6.18"),
    ("zero page", "never pinned, never counted", "a pin of the shared zero page is a no-op",
     "mm/gup.c try_grab_folio_fast(), gup_put_folio(), v6.18"),
    ("vmstat", "nr_foll_pin_acquired / nr_foll_pin_released per base page", "balance when nothing is pinned",
     "mm/gup.c node_stat_mod_folio(); Documentation/core-api/pin_user_pages.rst, v6.18"),
)
MAYBE_PINNED_USERS = (
    ("fork", "copies an anon-exclusive page that may be pinned instead of sharing it",
     "mm/memory.c copy_present_ptes(), include/linux/rmap.h __folio_try_dup_anon_rmap(), v6.18"),
    ("fork of a PMD-mapped THP", "splits the PMD first, then copies per page",
     "mm/huge_memory.c copy_huge_pmd(), v6.18"),
    ("folio_needs_cow_for_dma()", "asks only in an mm with MMF_HAS_PINNED (set by its first pin)",
     "include/linux/mm.h, mm/gup.c mm_set_has_pinned_flag(), v6.18"),
)


def pin_facts() -> pd.DataFrame:
    return pd.DataFrame(list(PIN_FACTS), columns=["what", "value", "meaning", "source"])


def maybe_pinned_users() -> pd.DataFrame:
    return pd.DataFrame(list(MAYBE_PINNED_USERS), columns=["who asks", "what it does", "source"])


# ---------------------------------------------------------------- false positives
def fp_curve(refs: tuple = FP_REFS, large_refs: tuple = FP_REFS_LARGE, large_pages: int = 16,
             steps: int = FP_STEPS, seed: int = 1, n_folios: int = FP_FOLIOS) -> pd.DataFrame:
    """folio_maybe_dma_pinned() over unpinned folios whose references come and go (Poisson(m) on average)."""
    rows = []
    for fp, grid in ((1, refs), (large_pages, large_refs)):
        for m in grid:
            h = pins.history(n_folios, fp, steps, float(m), 0.0, seed)
            rows.append({"refs_mean": m, "folio": "small (order 0)" if fp == 1 else f"large ({fp * 4} KiB)",
                         "folio_pages": fp, "fp_rate": h["false_pos"] / max(1, h["unpinned_checks"]),
                         "poisson_tail": pins.poisson_tail(m, pins.GUP_PIN_COUNTING_BIAS - 1) if fp == 1 else 0.0,
                         "false_neg": h["false_neg"], "checks": h["checks"], "max_refcount": h["max_refcount"]})
    return pd.DataFrame(rows)


def fp_mixed(params: Mapping, steps: int = 200_000) -> dict:
    """Pins among the holders: folio_maybe_dma_pinned() at the run's references, FP_PIN_SHARE of holders pins."""
    out = {}
    for fp in (1, max(2, params["folio_pages"])):
        h = pins.history(64, fp, steps, float(max(1, params["refs_per_page"])), FP_PIN_SHARE, params["seed"])
        out["small" if fp == 1 else "large"] = h
    return out


# ---------------------------------------------------------------- the live pin table
def expected_pins(name: str, op: Mapping) -> dict:
    """What the source (v6.18) says an operation of the pins probe pins, from its size and THP backing."""
    pages = op["pages"]
    if name in ("msg_zerocopy_send", "vmsplice", "splice_to_socket", "sendfile"):
        return {"pins_acquired": 0, "pins_released": 0, "held_while_registered": None}
    if name == "io_uring_register_buffers_thp" and op.get("thp_backed", 0) >= 1.0:
        # one pin per base page acquired; io_do_coalesce_buffer() keeps one per folio
        return {"pins_acquired": pages, "pins_released": pages, "held_while_registered": pages // 512}
    held = pages if name.startswith("io_uring") else None
    return {"pins_acquired": pages, "pins_released": pages, "held_while_registered": held}


def pin_table(result) -> pd.DataFrame:
    """The pins probe, each row beside what the source predicts."""
    rows = []
    for name, op in result.data.get("ops", {}).items():
        if "pins_acquired" not in op:
            continue
        exp = expected_pins(name, op)
        got_held = op.get("held_while_registered")
        agree = (op["pins_acquired"], op["pins_released"]) == (exp["pins_acquired"], exp["pins_released"]) and (
            exp["held_while_registered"] is None or got_held == exp["held_while_registered"])
        rows.append({"operation": name, "bytes": op["bytes"], "pages": op["pages"],
                     "pins acquired": op["pins_acquired"], "pins released": op["pins_released"],
                     "held while registered": got_held, "source predicts": exp["pins_acquired"],
                     "agrees": agree, "taken as": "pins" if op["pins_acquired"] else "references (no pin)",
                     "kernel path": op.get("kernel_source", ""), "measured": op.get("source", result.source)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- costs
def cost_items(c: Mapping, folio_pages: int, extra_pin_atomics: int = 0) -> list[tuple[str, float, str]]:
    """(cause, count, unit) for one sender run beyond GUP's measured price (:func:`price`): what pins take more
    than references (``extra_pin_atomics``, counted against the references' run of the same sends), locked_vm
    accounting, fork and copy-on-write; causes that cannot arise are left out."""
    items = [("atomics pins take beyond references (the bias or _pincount; a large folio's unpin)",
              extra_pin_atomics, "local_atomic_ns"),
             # mm_account_pinned_pages(): a cmpxchg loop on user->locked_vm (net/core/skbuff.c, v6.18)
             ("locked_vm charge per sendmsg (a cmpxchg loop)", c["charges"], "cmpxchg_loop_ns"),
             ("locked_vm uncharge per ubuf_info (another CPU)", c["uncharges"], "line_transfer_ns"),
             ("copy for the child at fork", c["fork_copies"],
              "copy_at_fork_thp_ns" if folio_pages >= pins.PMD_PAGES else "copy_at_fork_ns"),
             ("write-protect fault, page reused", c["wp_faults_pte"] - c["wp_copies"], "wp_fault_ns"),
             ("write-protect fault, page copied", c["wp_copies"], "wp_copy_ns"),
             ("write-protect fault, PMD reused", c["wp_faults_pmd"], "wp_fault_pmd_ns")]
    return [i for i in items if i[1] > 0]


def price(c: Mapping, units: costs.UnitCosts, nbytes: int, folio_pages: int, extra_pin_atomics: int = 0) -> list[dict]:
    """ns per MiB by cause: the sends' lookups at GUP's measured price (the zcsend fit: a send call, pages, frags,
    their references and puts; counted atomics shown at 0 ns), then :func:`cost_items` (a cmpxchg loop priced as
    a local atomic where the atomics probe did not measure one)."""
    scale = MiB / nbytes
    rows = costs.price_gup(pins.gup_work(c), units, nbytes)
    items = [(cause, n * scale, unit if unit in units else "local_atomic_ns")
             for cause, n, unit in cost_items(c, folio_pages, extra_pin_atomics)]
    return rows + costs.price(items, units)


def extra_pin_atomics(runs: Mapping[str, dict]) -> int:
    """What the pins' run takes in atomics beyond the references' run of the same sends (same lookups)."""
    return max(0, runs["pin"]["pin_atomics"] - runs["ref"]["ref_atomics"]) if "ref" in runs and "pin" in runs else 0


def run_ns(runs: Mapping[str, dict], pol: str, units: costs.UnitCosts, send_size: int, folio_pages: int) -> float:
    """ns per MiB of policy ``pol``'s run."""
    c = runs[pol]
    extra = extra_pin_atomics(runs) if pol == "pin" else 0
    return costs.total(price(c, units, c["sends"] * send_size, folio_pages, extra))


def sender_runs(params: Mapping, release: str = kernels.NEWEST, **over) -> dict[str, dict]:
    """The sender model under both policies at the run's parameters (``over`` replaces some), on kernel
    ``release``'s rules (write after fork on large folios: ``cow_reuse_large_anon``)."""
    p = dict(params, **over)
    sends = max(1, p["bytes_sent"] // p["send_size"])
    return {pol: pins.sender(p["send_size"], p["folio_pages"], p["inflight"], sends, p["fork_rate"],
                             p["refs_per_page"], pol, SIZE_GOAL, release) for pol in pins.POLICIES}


def policy_costs(runs: Mapping[str, dict], params: Mapping, units: costs.UnitCosts, **over) -> pd.DataFrame:
    """One row per policy and cause: count and ns per MiB (tidy)."""
    p = dict(params, **over)
    rows = []
    for pol, c in runs.items():
        nbytes = c["sends"] * p["send_size"]
        extra = extra_pin_atomics(runs) if pol == "pin" else 0
        for r in price(c, units, nbytes, p["folio_pages"], extra):
            rows.append({"policy": pol, **r})
    return pd.DataFrame(rows)


def totals(runs: Mapping[str, dict], params: Mapping, units: costs.UnitCosts, **over) -> pd.DataFrame:
    """One row per policy: ns per MiB, per send, share of a core, atomics per MiB, fork copies per MiB."""
    p = dict(params, **over)
    rows = []
    for pol, c in runs.items():
        nbytes = c["sends"] * p["send_size"]
        ns = run_ns(runs, pol, units, p["send_size"], p["folio_pages"])
        mib = nbytes / MiB
        rows.append({"policy": pol, "ns_per_mib": ns, "ns_per_send": ns * p["send_size"] / MiB,
                     "core_share": costs.core_share(ns, p["line_gbit"]),
                     "atomics_per_mib": (c["ref_atomics"] + c["pin_atomics"] + c["charges"] + c["uncharges"]) / mib,
                     "flag_atomics_per_mib": c["flag_atomics"] / mib,
                     "fork_copies_per_mib": c["fork_copies"] / mib, "forks": c["forks"], "sends": c["sends"]})
    return pd.DataFrame(rows)


def sweep(params: Mapping, units: costs.UnitCosts, key: str, values, release: str = kernels.NEWEST) -> pd.DataFrame:
    """totals() over one parameter's values (tidy: the parameter, policy, ns_per_mib, ...)."""
    def at(v):
        over = {key: v}
        if key == "send_size":
            over["bytes_sent"] = max(params["bytes_sent"], v)
        return totals(sender_runs(params, release, **over), params, units, **over)

    return kit.grid(key, values, at)


def no_fork_atomics(params: Mapping, folio_pages: int, release: str = kernels.NEWEST) -> dict:
    """Atomics per MiB of both policies without forks, other references or a partial folio (claims)."""
    runs = sender_runs(params, release, folio_pages=folio_pages, fork_rate=0.0, refs_per_page=0)
    out = {}
    for pol, c in runs.items():
        mib = c["sends"] * params["send_size"] / MiB
        out[pol] = (c["ref_atomics"] + c["pin_atomics"]) / mib
    return out


def chapter01_atomics(bytes_sent: int = 1 * MiB, send_size: int = 64 * KiB) -> dict:
    """Chapter 01's engine on a TSO send of order-0 pages, no loss, completions before ACKs: frag-memory atomics
    per MiB of today's refs and of the per-skb owner's pins (the model chapter 03 must agree with)."""
    cfg = workloads.Config(bytes_sent=bytes_sent, send_size=send_size, folio_pages=1, loss_rate=0.0, txc_lag=0)
    tr = workloads.generate("tcp_send", **{k: getattr(cfg, k) for k in
                                            ("bytes_sent", "send_size", "folio_pages", "loss_rate", "txc_lag")})
    today, owner = engine.replay(tr, "page_ref"), engine.replay(tr, "owner_skb")
    mib = bytes_sent / MiB
    return {"page_ref_page_atomics": today.page_atomics / mib, "owner_skb_pin_atomics": owner.pin_atomics / mib}


# ---------------------------------------------------------------- published figures
DE_BRUIJN = {
    "commit": "f214f915e7db99091f1312c48b30928c1e0c90b7 \"tcp: enable MSG_ZEROCOPY\" (Willem de Bruijn, 2017)",
    "send_bytes": 64 * KiB,
    "copy_mb": 7600, "zerocopy_mb": 17863,
    "process_cycles_saved": 0.70, "system_cycles_saved": 0.20,
    "setup": "msg_zerocopy.sh over veth, 64 KB sends, a receiver that reads only the first bytes (an upper bound); "
             "10x netperf TCP_STREAM between two hosts for the cycle savings",
}


def published(memcpy_result, refs_ns: float, pins_ns: float) -> pd.DataFrame:
    """The commit's 64 KB result beside this machine's copy cost and the model's page handling per MiB."""
    d = DE_BRUIJN
    sizes = memcpy_result.data.get("sizes", {}) if memcpy_result.source != "unavailable" else {}
    rows = [
        {"quantity": "time per MB with MSG_ZEROCOPY against copying, veth, 64 KB sends",
         "value": f"{d['copy_mb'] / d['zerocopy_mb']:.2f}x",
         "source": f"cited: {d['commit']}: {d['copy_mb']} MB against {d['zerocopy_mb']} MB in the same test window, "
                   f"a receiver that reads only the first bytes (an upper bound)"},
        {"quantity": "netserver process cycles saved, 10x TCP_STREAM between two hosts",
         "value": f"up to {d['process_cycles_saved']:.0%}", "source": "cited: same commit"},
        {"quantity": "system-wide cycles saved", "value": f"up to {d['system_cycles_saved']:.0%}",
         "source": "cited: same commit"},
    ]
    dram = None
    for label, key in (("a copy of 64 KiB that stays in cache", str(64 * KiB)),
                       ("a copy of 64 MiB, from and to DRAM", str(64 * MiB))):
        gbps = (sizes.get(key) or {}).get("gb_per_s", {}).get("median")
        if gbps:
            dram = MiB / gbps
            rows.append({"quantity": f"copying costs, ns per MiB: {label}", "value": f"{dram:.0f}",
                         "source": f"memcpy probe ({memcpy_result.source}), {gbps:.1f} GB/s"})
    rows += [
        {"quantity": "page handling with GUP references, ns per MiB (model)", "value": f"{refs_ns:.0f}",
         "source": "this chapter's sender model, 64 KiB sends, no fork, priced on this machine's units"},
        {"quantity": "page handling with pins, ns per MiB (model)", "value": f"{pins_ns:.0f}",
         "source": "the same with FOLL_PIN"},
        {"quantity": "what pins add to the page handling", "value": f"{pins_ns / max(1e-9, refs_ns) - 1:+.1%}",
         "source": "(pins - refs) / refs"},
    ]
    if dram and dram > refs_ns:
        rows.append({"quantity": "share of the saving over a DRAM copy that pins give back",
                     "value": f"{(pins_ns - refs_ns) / (dram - refs_ns):.1%}",
                     "source": "(pins - refs) / (copy of 64 MiB - refs), all per MiB on this machine"})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- zerocopy against a copy
def zc_ratio_curve(zcsend, units: costs.UnitCosts) -> pd.DataFrame:
    """Every zcsend point (UDP): send size in KiB, buffer, state, the measured zerocopy/copy ratio of the sender's
    CPU per call, the model's (:func:`fraglife.model.costs.zc_send_ns` on the point's features) and whether the fit
    used the point."""
    data = zcsend.data if zcsend.source != "unavailable" else {}
    fit = (data.get("fit") or {}).get(costs.ZC_PATH) or {}
    sizes, bufs = set(fit.get("fit_sizes", [])), set(fit.get("fit_buffers", []))
    rows = []
    for pt in ((data.get("paths") or {}).get(costs.ZC_PATH) or {}).get("points", []):
        model = (costs.zc_send_ns(units, "zerocopy", pt["zerocopy"]["features"]) /
                 costs.zc_send_ns(units, "copy", pt["copy"]["features"]))
        rows.append({"send_kib": pt["size"] / KiB, "buffer": pt["buffer"], "state": pt["state"],
                     "series": f"{pt['buffer']}, {pt['state']}",
                     "measured": pt["zerocopy"]["ns"]["median"] / pt["copy"]["ns"]["median"], "model": model,
                     "used by the fit": pt["size"] in sizes and pt["buffer"] in bufs})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- the model against the running kernel
#: The cow_mthp counts the model gives, and how the probe counts each.
COW_QUANTITIES = {
    "fork_copies": "pages of the child's mapping on other frames than the parent's right after fork (pagemap)",
    "write_faults": "exceptions:page_fault_user hits of the writing thread in the write, less a baseline write",
    "write_allocs_order0": "order-0 pages the writing thread allocated in the write (kmem:mm_page_alloc), less the "
                           "baseline",
    "folios_reused": "folios whose frames the writer still maps after the write (pagemap; the child: those it had "
                     "right after fork)",
    "folios_copied": "folios none of whose frames the writer still maps after the write (pagemap)",
    "pages_moved": "pages the writer maps on other frames after the write (pagemap)",
}
#: The counts the chapter's summary shows per case.
COW_SHOWN = ("fork_copies", "write_allocs_order0", "folios_reused", "folios_copied")
HELDOUT = "zc_ratio_heldout"


def _median(x):
    return x["median"] if isinstance(x, Mapping) else x


def _bracket(x):
    return (x.get("q1", x["median"]), x.get("q3", x["median"])) if isinstance(x, Mapping) else (x, x)


def cow_rows(result, release: str = kernels.NEWEST) -> list[dict]:
    """:func:`fraglife.model.pins.cow_case` of each cow_mthp case (fed the folio size, the holder, the writer and
    the buffer's pages, never the counts) against the kernel's counts, one :func:`compare.row` per case and
    quantity (:data:`COW_QUANTITIES`; each case moves 1 MiB), measured as the case's ``source`` says (a quick live
    run measures ``cow_mthp.LIVE_CASES`` and takes the rest from the recording, on its kernel's rules)."""
    if result.source == "unavailable":
        return []
    rows = []
    for name, c in (result.data.get("cases") or {}).items():
        if "write" not in c:  # left out live and not in the recording either
            continue
        m = pins.cow_case(c["folio_pages"], c["holder"], c["writer"], pages=c["pages"],
                          release=c.get("kernel") or release)
        w, o = c["write"]["net"], c["outcome"]
        got = {"fork_copies": c["fork"]["child_copied_pages"], "write_faults": w["page_fault_user"],
               "write_allocs_order0": w["order_0"], "folios_reused": o["folios_reused"],
               "folios_copied": o["folios_copied"], "pages_moved": o["pages_moved"]}
        mib = c["bytes"] / MiB
        for q, k in got.items():
            lo, hi = _bracket(k)
            rows.append(compare.row("03_pinning", name, q, _median(k) / mib, m[q] / mib, mib=mib, low=lo / mib,
                                    high=hi / mib, measured=c.get("source") or result.source,
                                    how_counted=COW_QUANTITIES[q]))
    return rows


def heldout_rows(heldout: pd.DataFrame, zcsend) -> list[dict]:
    """The zcsend points the fit did not use: the measured zerocopy/copy ratio against the model's, within the
    held-out tolerance (20 %, no slack)."""
    return [compare.row("03_pinning", f"zcsend {r.size // KiB} KiB {r.buffer} {r.state}", HELDOUT,
                        r.measured_ratio, r.model_ratio, mib=1.0, measured=zcsend.source,
                        how_counted="the sender's CPU per send call, MSG_ZEROCOPY over copy (task clock, UDP with "
                                    "UDP_SEGMENT into a veth whose peer is down)",
                        tolerance=costs.HELDOUT_TOLERANCE, slack_events=0.0)
            for r in heldout.itertuples()]


def comparison_remark(R: Results) -> str:
    """Markdown: where the model and the kernel differ (compare.results_remark), and which cow_mthp cases ran live
    against the recording's (compare.live_remark)."""
    cases = (R.cow_mthp.data or {}).get("cases") or {}
    dates = [c.get("recorded_at") for c in cases.values() if c.get("source") == "recorded"]
    return compare.results_remark(R) + compare.live_remark(R.live_cases, len(cases), dates, "cases")


# ---------------------------------------------------------------- probes as tables
def zerocopy_pattern(result) -> pd.DataFrame:
    if result.source == "unavailable":
        return pd.DataFrame()
    f = result.frame()
    return f[["transport", "run", "sends", "notifications", "sends_per_notification", "largest_range",
              "kernel_copied"]]


def cow_tables(result) -> dict[str, pd.DataFrame]:
    d = result.data if result.source != "unavailable" else {}
    out = {}
    if "fork" in d:
        out["fork"] = result.frame().reset_index()
    af = d.get("after_fork") or {}
    rows = [{"case": k, **{x: v.get(x) for x in ("holder", "fork", "parent_moved", "child_copied", "holder_sees",
                                                  "pages")}} for k, v in af.items() if isinstance(v, dict)
            and "parent_moved" in v]
    out["after_fork"] = pd.DataFrame(rows)
    fp = d.get("false_positive") or {}
    if "copied" in fp:
        out["false_positive"] = pd.DataFrame([{"extra FOLL_GET refs": int(k), **{s: fp["copied"][s][k] for s in
                                                                                  fp["copied"]}}
                                              for k in fp["copied"]["never_pinned"]])
    ml = d.get("memlock") or {}
    if "sends" in ml:
        out["memlock"] = pd.DataFrame([{"what": "MSG_ZEROCOPY send", **r} for r in ml["sends"]] +
                                      [{"what": "io_uring registration", **r} for r in ml["register"]])
    return out


# ---------------------------------------------------------------- results
class Results:
    """Chapter 03's analyses for one parameter set, each computed once on first use."""

    def __init__(self, params: Mapping):
        self.P = Params.of(params)

    @cached_property
    def facts(self) -> pd.DataFrame:
        return pin_facts()

    @cached_property
    def fp(self) -> pd.DataFrame:
        refs = tuple(kit.with_run(FP_REFS, self.P.refs_per_page))
        return fp_curve(refs, large_pages=max(2, self.P.folio_pages), seed=self.P.seed)

    @cached_property
    def fp_mixed(self) -> dict:
        return fp_mixed(self.P)

    pins_probe = kit.probe_result("pins")
    cow_probe = kit.probe_result("cow")
    cow_mthp = kit.probe_result("cow_mthp")
    zerocopy_probe = kit.probe_result("zerocopy")

    @cached_property
    def release(self) -> str:
        """The kernel whose rules the model follows (the kernel parameter; "running": the cow_mthp probe's)."""
        return kit.kernel_release(self.P.kernel, self.P.measurements, self.cow_mthp)

    @cached_property
    def versioned(self) -> pd.DataFrame:
        """The rules that move this chapter's numbers, as the model's kernel and 6.12 LTS have them."""
        return kit.kernel_rules(self.release, "03")

    # ------------------------------------------------------------ zerocopy against a copy: GUP's price
    @cached_property
    def zcsend(self):
        """The zcsend probe's recording (its fit is GUP's price for the whole book: kit.unit_costs)."""
        return kit.probe("zcsend", "recorded", quick=False)

    @cached_property
    def heldout(self) -> pd.DataFrame:
        """The model's zerocopy/copy ratio against the measured one at every point the fit did not use."""
        return pd.DataFrame(costs.zc_heldout(self.zcsend, self.units))

    @cached_property
    def ratio_curve(self) -> pd.DataFrame:
        """Measured and modelled zerocopy/copy CPU per send call over the send size, per buffer and state."""
        return zc_ratio_curve(self.zcsend, self.units)

    @cached_property
    def crossovers(self) -> pd.DataFrame:
        c = pd.DataFrame(costs.zc_crossovers(self.zcsend, self.units))
        return c.assign(measured_kib=c.measured_bytes / KiB, model_kib=c.model_bytes / KiB)

    @cached_property
    def break_even(self) -> pd.DataFrame:
        """Why this machine's crossover is not the documentation's "over around 10 KB", as data."""
        memcpy = kit.probe("memcpy", "recorded", quick=False)
        return pd.DataFrame(costs.zc_break_even(self.zcsend, self.units, memcpy))

    # ------------------------------------------------------------ the model against the running kernel
    @cached_property
    def probed_release(self) -> str:
        """The kernel the cow_mthp counts come from: the model follows its rules wherever it is compared with it,
        whatever the kernel parameter says."""
        return kit.kernel_release("running", self.P.measurements, self.cow_mthp)

    @cached_property
    def comparison(self) -> pd.DataFrame:
        """cow_case against the cow_mthp probe's cases (on the rules of the kernel that counted them), and zc_ratio
        against the zcsend held-out points."""
        return compare.table([cow_rows(self.cow_mthp, self.probed_release), heldout_rows(self.heldout, self.zcsend)])

    @cached_property
    def comparison_table(self) -> pd.DataFrame:
        return self.comparison[compare.TABLE_COLUMNS]

    @cached_property
    def live_cases(self) -> pd.DataFrame:
        """The cow_mthp cases this run measured live (a quick run measures ``cow_mthp.LIVE_CASES`` and takes the
        rest from the recording) against the recording's counts of the same cases and the model: one row per case
        and quantity (none when every case is the recording's)."""
        if self.cow_mthp.source != "live":
            return pd.DataFrame(columns=compare.LIVE_COLUMNS)
        rec = kit.probe("cow_mthp", "recorded")
        then = pd.DataFrame(cow_rows(rec, rec.kernel or self.probed_release), columns=compare.COLUMNS)
        return compare.live_against_recorded(pd.DataFrame(cow_rows(self.cow_mthp, self.probed_release),
                                                          columns=compare.COLUMNS), then)

    @cached_property
    def cow_summary(self) -> pd.DataFrame:
        """The cow_mthp cases, kernel against model, one row per case (the counts that differ by holder)."""
        c = self.comparison
        c = c[c.quantity.isin(COW_SHOWN)]
        if c.empty:
            return c
        k = c.pivot_table(index="transfer", columns="quantity", values="kernel", aggfunc="first")
        m = c.pivot_table(index="transfer", columns="quantity", values="model", aggfunc="first")
        out = pd.concat({"kernel": k, "model": m}, axis=1).swaplevel(axis=1).sort_index(axis=1)
        return out[[q for q in COW_SHOWN if q in out.columns.get_level_values(0)]]

    @cached_property
    def cow_central(self) -> pd.DataFrame:
        """The 64 KiB cases, where the versioned rule acts: folios the writer reused and pages it allocated."""
        s = self.cow_summary
        if s.empty:
            return s
        s = s[s.index.str.startswith("64k.")]
        return s[[c for c in s.columns if c[0] in ("folios_reused", "write_allocs_order0")]]

    @cached_property
    def on_lts(self) -> pd.DataFrame:
        """Where the chapter's numbers differ on 6.12 LTS: the cow_mthp cases whose outcome moves, and this run's
        totals when they move (empty when the model's kernel is 6.12 already)."""
        lts = kernels.LTS
        if kernels.series(self.release) == lts:
            return pd.DataFrame()
        rows = []
        here, old = kit.kernel_label(self.release), kit.kernel_label(lts)
        for holder in pins.COW_HOLDERS:
            for writer in pins.COW_WRITERS:
                a = pins.cow_case(16, holder, writer, release=self.release)
                b = pins.cow_case(16, holder, writer, release=lts)
                if a != b:
                    rows.append({"what": f"64 KiB folios, held by {holder}, {writer.replace('_', ' ')} writes",
                                 f"{here}": f"{a['folios_reused']} reused, {a['write_allocs_order0']} pages allocated",
                                 f"{old}": f"{b['folios_reused']} reused, {b['write_allocs_order0']} pages allocated"})
        theirs = totals(sender_runs(self.P, lts), self.P, self.units).set_index("policy")
        mine = self.totals.set_index("policy")
        for pol in mine.index:
            if abs(mine.loc[pol, "ns_per_mib"] - theirs.loc[pol, "ns_per_mib"]) > 1e-6:
                rows.append({"what": f"this run, {POLICY_LABELS[pol]}, ns per MiB",
                             here: f"{mine.loc[pol, 'ns_per_mib']:.0f}", old: f"{theirs.loc[pol, 'ns_per_mib']:.0f}"})
        return pd.DataFrame(rows)

    @cached_property
    def pin_table(self) -> pd.DataFrame:
        return pin_table(self.pins_probe)

    @cached_property
    def cow(self) -> dict[str, pd.DataFrame]:
        return cow_tables(self.cow_probe)

    @cached_property
    def zerocopy(self) -> pd.DataFrame:
        return zerocopy_pattern(self.zerocopy_probe)

    @cached_property
    def walk_ref(self) -> pd.DataFrame:
        return pd.DataFrame(pins.walk("ref"))

    @cached_property
    def walk_pin(self) -> pd.DataFrame:
        return pd.DataFrame(pins.walk("pin"))

    @cached_property
    def units(self) -> costs.UnitCosts:
        return kit.unit_costs(self.P.measurements, *UNIT_EXTRAS)

    @cached_property
    def unit_table(self) -> pd.DataFrame:
        cited = pd.DataFrame([dict(u.__dict__, name=f"{u.name} (cited)") for u in costs.CITED_GUP])
        return pd.concat([kit.unit_rows(self.units, UNIT_NAMES), cited], ignore_index=True)[list(cited.columns)]

    @cached_property
    def runs(self) -> dict[str, dict]:
        return sender_runs(self.P, self.release)

    @cached_property
    def counts(self) -> pd.DataFrame:
        keys = [k for k in pins.SEND_FIELDS if k not in ("held_at_end",)]
        return pd.DataFrame({pol: [c[k] for k in keys] for pol, c in self.runs.items()}, index=keys)

    @cached_property
    def costs(self) -> pd.DataFrame:
        return policy_costs(self.runs, self.P, self.units)

    @cached_property
    def totals(self) -> pd.DataFrame:
        return totals(self.runs, self.P, self.units)

    @cached_property
    def spans(self) -> dict[str, tuple[float, float, float]]:
        """Each policy's ns per MiB as (value, least, most) over the ranges its unit costs were measured over."""
        P = self.P
        return {pol: self.units.span(lambda u, pol=pol: run_ns(self.runs, pol, u, P.send_size, P.folio_pages))
                for pol in self.runs}

    @cached_property
    def extra_span(self) -> tuple[float, float, float]:
        """What pins add over references, ns per MiB (value, least, most)."""
        P = self.P
        return self.units.span(lambda u: run_ns(self.runs, "pin", u, P.send_size, P.folio_pages) -
                               run_ns(self.runs, "ref", u, P.send_size, P.folio_pages))

    @cached_property
    def per_send(self) -> pd.DataFrame:
        """ns per send of both policies, with the least and most over the unit costs' measured ranges."""
        rows = []
        for pol, (v, lo, hi) in self.spans.items():
            k = self.P.send_size / MiB
            rows.append({"policy": POLICY_LABELS[pol], "ns per send": v * k, "least": lo * k, "most": hi * k})
        return pd.DataFrame(rows)

    def sweep(self, key: str, values) -> pd.DataFrame:
        """:func:`sweep` at the run's parameters, unit costs and kernel."""
        return sweep(self.P, self.units, key, values, self.release)

    fork_sweep = kit.run_grid("fork_rate", FORK_RATES)
    size_sweep = kit.run_grid("send_size", SEND_SIZES)
    folio_sweep = kit.run_grid("folio_pages", FOLIO_SIZES)

    @cached_property
    def published(self) -> pd.DataFrame:
        t = totals(sender_runs(self.P, self.release, send_size=64 * KiB, fork_rate=0.0, refs_per_page=0,
                               bytes_sent=max(self.P.bytes_sent, 64 * KiB)), self.P, self.units,
                   send_size=64 * KiB).set_index("policy")
        memcpy = kit.probe("memcpy", "recorded", quick=False)
        return published(memcpy, t.loc["ref", "ns_per_mib"], t.loc["pin", "ns_per_mib"])

    @cached_property
    def headline(self) -> dict:
        t = self.totals.set_index("policy")
        fp_here = self.fp[(self.fp.refs_mean == self.P.refs_per_page) & (self.fp.folio_pages == 1)].fp_rate
        r, p = self.runs["ref"], self.runs["pin"]
        mib = r["sends"] * self.P.send_size / MiB
        return {
            "ref_ns_per_mib": float(t.loc["ref", "ns_per_mib"]),
            "pin_ns_per_mib": float(t.loc["pin", "ns_per_mib"]),
            "pin_over_ref": float(t.loc["pin", "ns_per_mib"] / max(1e-9, t.loc["ref", "ns_per_mib"])),
            "extra_ns_per_send": float(t.loc["pin", "ns_per_send"] - t.loc["ref", "ns_per_send"]),
            "ref_atomics_per_mib": float(t.loc["ref", "atomics_per_mib"]),
            "pin_atomics_per_mib": float(t.loc["pin", "atomics_per_mib"]),
            "pin_core_share": float(t.loc["pin", "core_share"]),
            "fork_copies_per_mib": p["fork_copies"] / mib,
            "wp_copies_per_mib_ref": r["wp_copies"] / mib,
            "fp_rate_small": float(fp_here.iloc[0]) if len(fp_here) else 0.0,
            "heldout_within": int(self.heldout.within.sum()) if len(self.heldout) else 0,
            "heldout_points": len(self.heldout),
            "kernel_quantities_agree": compare.tally(self.comparison)[0],
            "kernel_quantities_compared": compare.tally(self.comparison)[1],
            "release": self.release,
            "probes": kit.measured(self.units, "pin_page_ns"),
        }


def headline(**params) -> dict:
    """Chapter 03's result as one record: what today's references and FOLL_PIN pins cost per MiB and per send,
    forks included, on this machine's unit costs; the false-positive rate of folio_maybe_dma_pinned()."""
    return Results(params).headline


def panel_data(params: Mapping, *, send_size: int, folio_pages: int, fork_rate: float, refs_per_page: int,
               line_transfer_ns: float) -> pd.DataFrame:
    """The panel's table: ns per MiB by cause and policy for one setting, at the reader's line transfer."""
    p = dict(params, send_size=send_size, folio_pages=folio_pages, fork_rate=fork_rate, refs_per_page=refs_per_page,
             bytes_sent=max(params["bytes_sent"], send_size))
    units = kit.with_release_units(kit.unit_costs(params["measurements"], *UNIT_EXTRAS)
                                   .override(line_transfer_ns=line_transfer_ns))
    release = kit.kernel_release(params.get("kernel", "running"), params["measurements"])
    return policy_costs(sender_runs(p, release), p, units)


# ---------------------------------------------------------------- prose

def fp_remark(R: Results) -> str:
    """Markdown: where the check errs in the grid, and its false negatives with pins among the holders."""
    small = R.fp[R.fp.folio_pages == 1].set_index("refs_mean").fp_rate
    large = R.fp[R.fp.folio_pages > 1].fp_rate
    neg, checked = (sum(h[k] for h in R.fp_mixed.values()) for k in ("false_neg", "pinned_checks"))
    return " ".join((
        f"On small folios the check calls unpinned folios pinned from a mean of **{small[small > 0].index.min()}** "
        f"other references on in this grid, **{small.max():.0%}** of the time at {small.index.max()}.",
        f"On large folios, {int(large.gt(0).sum())} of {len(large)} points have a false positive.",
        f"With {FP_PIN_SHARE:.0%} of the holders pins: **{neg}** false negatives in {checked:,} checks of pinned "
        f"folios."))


def pin_table_note(R: Results) -> str:
    """Markdown: whether the pin table is this kernel's or the recording, and how many rows the source predicts."""
    r = R.pins_probe
    t = R.pin_table
    agree = int(t.agrees.sum()) if len(t) else 0
    if r.source == "live":
        head = f"**Live**: the running kernel's table ({r.kernel})."
        if r.partial:
            head += " Rows taken from the recording instead: " + "; ".join(
                f"{k.split('.', 1)[-1]} ({why})" for k, why in r.partial.items()) + "."
    else:
        head = f"**Recorded**, not live here: {r.note().rstrip('.')}."
    return f"{head} {agree} of {len(t)} operations take exactly the pins the source (v6.18) predicts."


def cow_remark(R: Results) -> str:
    """Markdown: what the cow probe saw at fork, after fork and a write, and with extra references."""
    d = R.cow_probe.data if R.cow_probe.source != "unavailable" else {}
    f, af, fp = d.get("fork", {}), d.get("after_fork", {}), d.get("false_positive", {})
    if not f:
        return f"The cow probe is unavailable: {R.cow_probe.reason}"
    src = "measured now" if R.cow_probe.source == "live" else "recorded"
    pinned, unpinned = f["4k_pinned"], f["4k"]
    ref, no_fork = af.get("ref_fork", {}), af.get("ref_no_fork", {})
    first = fp.get("first_copied_at") or {}
    never = first.get("never_pinned")
    unpinned_copies = "never" if never is None else f"from {never} on"
    return (f"On this kernel ({src}), a buffer of {pinned['pages']} pages: pinned, fork gave the child copies of "
            f"**{pinned['child_copied']}** and the parent kept {pinned['pages'] - pinned['parent_moved']} of "
            f"its own; unpinned, fork copied {unpinned['child_copied']}. A vmspliced page after fork and a write: "
            f"the process moved to a copy ({ref.get('parent_moved')} of {ref.get('pages')} pages) and the pipe's "
            f"reader saw the **{ref.get('holder_sees')}** data; without the fork, the {no_fork.get('holder_sees')}. "
            f"Extra FOLL_GET references made fork copy a page from **{first.get('has_pinned')}** on in a process "
            f"that had pinned something; in one that had not, {unpinned_copies}.")


def memlock_remark(R: Results) -> str:
    """Markdown: which MSG_ZEROCOPY sends RLIMIT_MEMLOCK let through, from the cow probe."""
    ml = (R.cow_probe.data or {}).get("memlock", {})
    if "sends" not in ml:
        return "The RLIMIT_MEMLOCK measurement is unavailable here."
    ok = [r["bytes"] >> 10 for r in ml["sends"] if r["result"] == "ok"]
    bad = [r["bytes"] >> 10 for r in ml["sends"] if r["result"] != "ok"]
    return (f"With RLIMIT_MEMLOCK at {ml['limit_bytes'] >> 10} KiB ({ml['limit_pages']} pages) and no CAP_IPC_LOCK, "
            f"MSG_ZEROCOPY sends of {kit.words(ok)} KiB went through and {kit.words(bad)} KiB failed with ENOBUFS, "
            f"{'as predicted' if ml['as_expected'] else '**not** as predicted'} for every size tried.")


def units_remark(R: Results) -> str:
    """Markdown: GUP's measured price as this chapter uses it, and what a pin adds."""
    u = R.units
    ns = {name: f"**{u[name]:.0f} ns**" for name in UNIT_NAMES if name in u}
    return (f"GUP's price is the zcsend probe's fit of real sends ({u.source('zc_page_ns')}): a MSG_ZEROCOPY send "
            f"call costs {ns['zc_call_ns']} more than a copying one (its GUP call, ubuf_info and notification), "
            f"each order-0 page looked up with its frag {ns['gup_page_ns']} (the reference, PG_referenced, the frag "
            f"and its put, all inside the fit), while a copy costs {ns['copy_page_ns']} per 4 KiB. A pin takes one "
            f"atomic more than a reference ({ns['local_atomic_ns']} here, counted per run from the model): "
            f"{ns['pin_page_ns']} per page. A line transfer: {u['line_transfer_ns']:.1f} ns.")


def zc_remark(R: Results) -> str:
    """Markdown: the held-out check, the crossovers measured and modelled, and the documented 10 KB."""
    h = R.heldout
    x = R.crossovers.set_index(["buffer", "state"])
    doc = costs.MSG_ZEROCOPY_DOC_BYTES / 1000

    def kib(v):
        return "never in the sizes measured" if v is None or pd.isna(v) else f"{v / KiB:.1f} KiB"

    hot, cold = x.loc[("4k", "present")], x.loc[("4k", "absent")]
    worst = h.error.abs().max() if len(h) else float("nan")
    return (f"At the **{len(h)}** points the fit did not use, the model's zerocopy/copy ratio is within "
            f"{costs.HELDOUT_TOLERANCE:.0%} of the measured one at **{int(h.within.sum())}** (worst "
            f"{worst:.1%}). Zerocopy costs the sender less than a copy from **{kib(hot.measured_bytes)}** "
            f"measured ({kib(hot.model_bytes)} modelled) on order-0 pages written before, and from "
            f"{kib(cold.measured_bytes)} ({kib(cold.model_bytes)}) on pages never touched, where both modes fault "
            f"them in and the copy's fault costs more. The documentation's \"over around {doc:g} KB\" names no "
            f"machine: here a cache-hot copy of 4 KiB is cheap and a send call's fixed cost is high, so the "
            f"break-even is higher; with cold source data or completions read once per many sends it moves as the "
            f"table shows.")


def conclusion(R: Results) -> str:
    """Markdown: the chapter's three closing points, quoting the checked numbers (the reasoning is in the notebook)."""
    from ..answers import format_number

    P = R.P
    ref, pin = (format_number(*R.spans[p], unit="ns/MiB") for p in ("ref", "pin"))
    extra = format_number(*R.extra_span, unit="ns/MiB")
    hot = R.crossovers.set_index(["buffer", "state"]).loc[("4k", "present")]
    copies = R.runs["pin"]["fork_copies"] / (R.runs["pin"]["sends"] * P.send_size / MiB)
    agree, n = compare.tally(R.comparison)
    reuse = kernels.follows(R.release, "cow_reuse_large_anon")
    return kit.points(
        f"Pins instead of references cost {pin} against {ref} on {P.send_size >> 10} KiB sends from "
        f"{P.folio_pages * 4} KiB folios with {P.fork_rate:g} fork(s) per 1000 sends: {extra} more, one atomic per "
        f"page and the copies fork makes.",
        f"Fork copies every pinned page for the child ({copies:.2f} pages per MiB sent here); a write after fork "
        + ("reuses an exclusive large folio on this kernel (6.15+), where 6.12 copied it." if reuse else
           "copies a large folio on this kernel (6.12), where 6.15+ reuses an exclusive one."),
        f"GUP's price is measured, not assumed: zerocopy beats a copy from {hot.measured_bytes / KiB:.0f} KiB here "
        f"(model {hot.model_bytes / KiB:.0f} KiB), and {agree} of {n} kernel quantities agree {compare.RULE}.")


#: How the answer names the pins probe's operations, by prefix.
FAMILIES = {"io_uring": "io_uring buffer registration", "o_direct": "O_DIRECT", "process_vm": "process_vm_readv",
            "vmsplice": "vmsplice", "splice": "splice", "sendfile": "sendfile", "msg_zerocopy": "MSG_ZEROCOPY"}


def _family(operation: str) -> str:
    return next((v for k, v in FAMILIES.items() if operation.startswith(k)), operation)


def answer(R: Results):
    """Chapter 03's row of the answers table: bullet (c)."""
    from .. import answers

    P = R.P
    number = answers.Number(*R.extra_span, unit="ns/MiB", what="CPU pins add over references")
    ref = answers.format_number(*R.spans["ref"], unit="ns/MiB")
    agree, n = compare.tally(R.comparison)
    within, pts = R.headline["heldout_within"], R.headline["heldout_points"]
    t = R.pin_table
    pinning = kit.words(sorted({_family(o) for o in t[t["pins acquired"] > 0].operation})) if len(t) else \
        "no operation measured"
    text = (f"MSG_ZEROCOPY can pin instead of taking references for {number.text} more than today's {ref} on "
            f"{P.send_size >> 10} KiB sends from {P.folio_pages * 4} KiB folios with {P.fork_rate:g} fork(s) per 1000 "
            f"sends (one atomic per page and the copies fork makes of pinned pages); on this kernel {pinning} pin "
            f"already.")
    src = R.cow_mthp.source if R.cow_mthp.source != "unavailable" else ""
    return answers.Answer("c", text, "agree, at a cost", number, answers.cross_checked(
        f"the cow_mthp probe's fork and write counts on 64 KiB and 4 KiB folios and the zcsend probe's held-out "
        f"ratios ({agree} of {n} quantities agree, {within} of {pts} held-out ratios within 20 %); priced by the "
        f"zcsend probe's fit of GUP", src))


# ---------------------------------------------------------------- claims
def _fp_rule(R: Results):
    """FP only on small folios whose refcount reaches the bias; never a false negative."""
    f = R.fp
    small = f[f.folio_pages == 1]
    ok = int(f.false_neg.sum()) == 0 and (f[f.folio_pages > 1].fp_rate == 0).all()
    ok = ok and bool(((small.fp_rate > 0) <= (small.max_refcount >= pins.GUP_PIN_COUNTING_BIAS)).all())
    mixed = R.fp_mixed
    ok = ok and all(h["false_neg"] == 0 for h in mixed.values()) and mixed["large"]["false_pos"] == 0
    return ok, {"false_neg": int(f.false_neg.sum()), "large_fp_points": int((f[f.folio_pages > 1].fp_rate > 0).sum()),
                "small_fp_max": float(small.fp_rate.max())}


def _pins_dearer_small(R: Results):
    """Order-0, no fork: pins take one atomic more per page sent than references, whatever the send size."""
    runs = sender_runs(R.P, R.release, folio_pages=1, fork_rate=0.0, refs_per_page=0)
    r, p = runs["ref"], runs["pin"]
    return p["pin_atomics"] - r["ref_atomics"] == p["pages_sent"], {
        "pin_atomics": p["pin_atomics"], "ref_atomics": r["ref_atomics"], "pages_sent": p["pages_sent"]}


def _agrees_with_01(R: Results):
    mine = no_fork_atomics({**R.P, "send_size": 64 * KiB, "bytes_sent": 1 * MiB}, 1)
    theirs = chapter01_atomics()
    ok = abs(mine["ref"] - theirs["page_ref_page_atomics"]) < 1e-6 and \
        abs(mine["pin"] - theirs["owner_skb_pin_atomics"]) < 1e-6
    return ok, {"ref_here": mine["ref"], "ref_ch01": theirs["page_ref_page_atomics"], "pin_here": mine["pin"],
                "pin_ch01": theirs["owner_skb_pin_atomics"]}


def _fork_copies_pins_only(R: Results):
    """100 sends of 64 KiB, a fork every 10 sends, no other references: pins copy every page in flight, refs none."""
    out, ok = {}, True
    for fp in (1, 512):
        runs = sender_runs(R.P, R.release, folio_pages=fp, fork_rate=100.0, refs_per_page=0, send_size=64 * KiB,
                           bytes_sent=100 * 64 * KiB)
        r, p = runs["ref"], runs["pin"]
        ok = ok and r["fork_copies"] == 0 and p["forks"] == 10 and p["fork_copies"] > 0
        ok = ok and (fp == 512 or p["fork_copies_unpinned"] == 0)
        out[f"{fp * 4}k"] = {"forks": p["forks"], "pin_copies": p["fork_copies"], "ref_copies": r["fork_copies"],
                             "pin_copies_unpinned": p["fork_copies_unpinned"], "thp_splits": p["thp_splits"]}
    return ok, out


def _fp_copies_at_fork(R: Results):
    """1022 other references on each page make fork copy unpinned small folios; 1021 do not (no page in flight
    then counts: the pins of a send are released before its buffer is written again)."""
    out = {}
    for refs in (1021, 1022):
        p = sender_runs(R.P, R.release, folio_pages=1, fork_rate=100.0, refs_per_page=refs, inflight=1,
                        send_size=4 * KiB,
                        bytes_sent=100 * 4 * KiB)["pin"]
        out[refs] = p["fork_copies_unpinned"]
    return out[1021] == 0 and out[1022] > 0, out


def _zc_heldout(R: Results):
    h = R.heldout
    return len(h) > 0 and bool(h.within.all()), {
        "points": len(h), "within": int(h.within.sum()), "worst_error": float(h.error.abs().max()) if len(h) else None,
        "source": R.zcsend.source}


def _follows_the_kernel(R: Results):
    return compare.follows(R.comparison, R.cow_mthp.source)


def _large_folio_reuse(R: Results):
    """The cow_mthp case that decides the versioned rule: 64 KiB folios, nothing held, the parent writes after
    the child exited."""
    c = R.comparison
    row = c[(c.transfer == "64k.none.parent_child_exited") & (c.quantity == "folios_reused")]
    if row.empty:
        return False, {"reason": "cow_mthp: no such case", "source": R.cow_mthp.source}
    r = row.iloc[0]
    return bool(r.agrees), {"kernel": r.kernel, "model": r.model, "release": R.probed_release,
                            "rule": "cow_reuse_large_anon", "source": R.cow_mthp.source}


def _ledgers_balance(R: Results):
    return all(c["held_at_end"] == 0 for c in R.runs.values()), {pol: c["held_at_end"] for pol, c in R.runs.items()}


def _pin_table_source(R: Results):
    t = R.pin_table
    off = {r.operation: f"{r['pins acquired']}/{r['pins released']} (held {r['held while registered']}), "
                        f"source predicts {r['source predicts']}, {r.measured}"
           for _, r in t[~t.agrees].iterrows()}
    return len(t) > 0 and not off, {"operations": len(t), "agree": int(t.agrees.sum()), "disagree": off,
                                    "source": R.pins_probe.source}


def _ref_diverges(R: Results):
    af = (R.cow_probe.data or {}).get("after_fork", {})
    try:
        ok = (af["ref_no_fork"]["holder_sees"] == "new" and af["ref_fork"]["holder_sees"] == "old"
              and af["ref_fork"]["parent_moved"] == af["ref_fork"]["pages"] and af["pin_fork"]["parent_moved"] == 0
              and af["pin_fork"]["child_copied"] == af["pin_fork"]["pages"])
    except (KeyError, TypeError):
        return False, {"reason": "cow probe: no after_fork data"}
    walk_ok = bool(R.walk_pin["same page"].all()) and not bool(R.walk_ref["same page"].all())
    return ok and walk_ok, {"ref_fork_holder_sees": af["ref_fork"]["holder_sees"], "walk_ok": walk_ok,
                            "source": R.cow_probe.source}


def _memlock(R: Results):
    ml = (R.cow_probe.data or {}).get("memlock", {})
    return bool(ml.get("as_expected")), {"limit_pages": ml.get("limit_pages"), "source": R.cow_probe.source}


def _fp_live(R: Results):
    fp = (R.cow_probe.data or {}).get("false_positive", {})
    first = fp.get("first_copied_at") or {}
    ok = first.get("never_pinned") is None and first.get("has_pinned") in (1021, 1022)
    return ok, {**first, "source": R.cow_probe.source}


#: The claims the talk shows (the rest are in the chapter).
TALK_CLAIMS = ("maybe_pinned_errs_only_one_way", "pins_cost_one_atomic_more_per_page",
               "a_reference_loses_the_page_at_fork", "zerocopy_ratio_holds_out")

#: Claims over the probes' counts of this kernel (per_point=False) are the chapter run's, not a sweep point's.
CLAIMS = (
    Claim("maybe_pinned_errs_only_one_way",
          "folio_maybe_dma_pinned() never misses a pin; it reports unpinned folios as pinned only on small folios "
          "whose refcount reaches 1024, never on large ones.",
          "holds", _fp_rule),
    Claim("pins_cost_one_atomic_more_per_page",
          "Without forks, on order-0 pages, pins take exactly one atomic more per page sent than today's GUP "
          "references, at every send size: two to pin and one to unpin, against one reference and one put per frag.",
          "holds", _pins_dearer_small),
    Claim("agrees_with_chapter_01",
          "On a TSO send of order-0 pages without loss, this chapter's atomics per MiB equal chapter 01's engine: "
          "today's page refs and the per-skb owner's pins.",
          "holds", _agrees_with_01),
    Claim("fork_copies_pinned_pages_only_with_pins",
          "Over 100 sends of 64 KiB with a fork every 10 sends, pins make fork copy the pages in flight (on THP, "
          "whole folios), references (today, MMF_HAS_PINNED clear) make it copy none.",
          "holds", _fork_copies_pins_only),
    Claim("false_positive_copies_at_fork",
          "With pins in the mm (100 sends of 4 KiB, a fork every 10), 1022 other references on each page make fork "
          "copy pages nobody pinned; 1021 do not.",
          "holds", _fp_copies_at_fork),
    Claim("pin_table_follows_the_source",
          "Every operation of the pins probe takes exactly the pins the source (v6.18) predicts: O_DIRECT, "
          "process_vm_readv and io_uring registration pin, MSG_ZEROCOPY, vmsplice, splice and sendfile take none.",
          "holds", _pin_table_source),
    Claim("a_reference_loses_the_page_at_fork",
          "After fork and a write, the process moves to a copy and a FOLL_GET holder keeps the old page; a pin "
          "holder keeps the process's page (live probe and the walk).",
          "holds", _ref_diverges),
    Claim("msg_zerocopy_is_charged_as_pinned",
          "Without CAP_IPC_LOCK a MSG_ZEROCOPY send fails with ENOBUFS exactly when (size >> 12) + 2 pages exceed "
          "RLIMIT_MEMLOCK.",
          "holds", _memlock),
    Claim("false_positive_seen_at_fork",
          "On this kernel a page with about 1021 extra FOLL_GET references is copied at fork in a process that has "
          "pinned, never in one that has not.",
          "holds", _fp_live, per_point=False),
    Claim("zerocopy_ratio_holds_out",
          "At every zcsend point the fit did not use (other sizes, the half-THP buffer), the model's zerocopy/copy "
          "ratio of the sender's CPU is within 20 % of the measured one.",
          "holds", _zc_heldout, per_point=False),
    Claim("model_follows_the_kernels_fork_and_write",
          f"Against the cow_mthp probe's counts of the running kernel (fork and a write on 4 KiB and 64 KiB folios, "
          f"held by nothing, a MSG_ZEROCOPY send or pins) and the zcsend held-out ratios, every quantity agrees "
          f"{compare.RULE} (ratios within 20 %) or has its reason.",
          "holds", _follows_the_kernel, per_point=False),
    Claim("write_after_fork_follows_the_kernel",
          "On the kernel the cow_mthp probe ran on, after fork and the child's exit, the parent's write reuses its "
          "64 KiB folios if that kernel reuses exclusive large folios (6.15+) and copies them if not (6.12), and "
          "the model following that kernel's rules counts the same.",
          "holds", _large_folio_reuse, per_point=False),
    Claim("every_pin_and_ref_is_released",
          "Every sender run ends with no reference or pin held.",
          "holds", _ledgers_balance),
)
