"""Chapter 03 (book/03_pinning.ipynb): MSG_ZEROCOPY must pin, not ref.

Analyses over :mod:`fraglife.model.pins` (the ``history`` and ``sender``
kernels, the fork walk), the cost model and five probes: ``pins`` (which
syscalls pin how many pages), ``cow`` (fork, copy-on-write, false "maybe
pinned", RLIMIT_MEMLOCK), ``gup`` (pin and unpin per page), ``atomics`` (unit
costs) and ``zerocopy`` (sends per notification). Charts are in
:mod:`fraglife.views.pinning`; the contract is in :mod:`fraglife.chapters`.
"""

from __future__ import annotations

from functools import cached_property
from typing import Mapping

import pandas as pd

from ..claims import Claim
from ..model import costs, engine, pins, workloads
from ..params import Params
from . import kit

KiB = 1 << 10
MiB = 1 << 20
PAGE = pins.PAGE
#: TCP's size goal at MSS 1448: 45 segments (sk_setup_caps(), tcp_xmit_size_goal(), v6.12; chapter 01).
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
UNIT_NAMES = ("local_atomic_ns", "line_transfer_ns", "gup_page_ns", "pin_page_ns", "unpin_page_ns", "pin_pmd_ns",
              "thp_subpage_ns", "unpin_small_ns", "unpin_large_ns", "copy_at_fork_ns", "copy_at_fork_thp_ns",
              "wp_fault_ns", "wp_copy_ns", "wp_fault_pmd_ns")

# ---------------------------------------------------------------- what a pin is
PIN_FACTS = (
    ("GUP_PIN_COUNTING_BIAS", "1024 (1 << 10)", "what one pin adds to a small folio's _refcount",
     "include/linux/mm.h, v6.12"),
    ("FOLL_PIN", "0x80000 (1 << 19), internal", "set by pin_user_pages*(); never by callers",
     "mm/internal.h, v6.12; enum value in this kernel's BTF"),
    ("FOLL_GET on any folio", "+1 _refcount: one atomic (try_get_folio())", "get_user_pages*(), "
     "iov_iter_get_pages2(): today's MSG_ZEROCOPY, vmsplice", "mm/gup.c try_grab_folio_fast(), v6.12"),
    ("FOLL_PIN, small folio, fast path", "try_get_folio() then +1023: two atomics", "the pin is the bias",
     "mm/gup.c try_grab_folio_fast() (v6.10+, 'mm: gup: stop abusing try_grab_folio')"),
    ("FOLL_PIN, large folio, fast path", "try_get_folio() then _pincount + 1: two atomics",
     "per PTE page, or per PMD leaf for all pages of a PMD-mapped THP a call covers",
     "mm/gup.c try_grab_folio_fast(), gup_fast_pmd_leaf(), v6.12"),
    ("FOLL_PIN, slow path", "small folio: +1024 in one atomic; large: +1 and _pincount + 1",
     "__get_user_pages() after gup-fast gave up", "mm/gup.c try_grab_folio(), v6.12"),
    ("unpin", "small folio: folio_put_refs(n x 1024), one atomic; large: atomic_sub(_pincount) and "
     "folio_put_refs(), two", "unpin_user_pages() drops consecutive pages of one folio together",
     "mm/gup.c gup_put_folio(), gup_folio_next(), v6.12"),
    ("folio_maybe_dma_pinned()", "large: _pincount > 0 (exact); small: _refcount >= 1024",
     "a small folio with 1023 other references looks pinned: false positives, never false negatives",
     "include/linux/mm.h, v6.12"),
    ("zero page", "never pinned, never counted", "a pin of the shared zero page is a no-op",
     "mm/gup.c try_grab_folio_fast(), gup_put_folio(), v6.12"),
    ("vmstat", "nr_foll_pin_acquired / nr_foll_pin_released per base page", "balance when nothing is pinned",
     "mm/gup.c node_stat_mod_folio(); Documentation/core-api/pin_user_pages.rst, v6.12"),
)
MAYBE_PINNED_USERS = (
    ("fork", "copies an anon-exclusive page that may be pinned instead of sharing it",
     "mm/memory.c copy_present_ptes(), include/linux/rmap.h __folio_try_dup_anon_rmap(), v6.12"),
    ("fork of a PMD-mapped THP", "splits the PMD first, then copies per page",
     "mm/huge_memory.c copy_huge_pmd(), v6.12"),
    ("folio_needs_cow_for_dma()", "asks only in an mm with MMF_HAS_PINNED (set by its first pin)",
     "include/linux/mm.h, mm/gup.c mm_set_has_pinned_flag(), v6.12"),
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
    """What v6.12's source says an operation of the pins probe pins, from its size and THP backing."""
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
def cost_items(c: Mapping, folio_pages: int) -> list[tuple[str, int, str]]:
    """(cause, count, unit) for one sender run; causes that cannot arise are left out."""
    items = [("GUP reference, per PTE page", c["gup_pte"], "gup_page_ns"),
             ("GUP reference, PMD leaf (one atomic)", c["gup_pmd"], "local_atomic_ns"),
             ("give-back page_ref_sub()", c["give_backs"], "local_atomic_ns"),
             ("frag put at skb free (another CPU)", c["frag_puts"], "line_transfer_ns"),
             ("pin, per PTE page", c["pin_pte"], "pin_page_ns"),
             ("pin, PMD leaf (two atomics)", 2 * c["pin_pmd"], "local_atomic_ns"),
             ("pages under a PMD leaf", c["pmd_pages"], "thp_subpage_ns"),
             ("unpin, small folio run", c["unpin_small"], "unpin_small_ns"),
             ("unpin, large folio run", c["unpin_large"], "unpin_large_ns"),
             ("locked_vm charge per sendmsg", c["charges"], "local_atomic_ns"),
             ("locked_vm uncharge per ubuf_info (another CPU)", c["uncharges"], "line_transfer_ns"),
             ("copy for the child at fork", c["fork_copies"],
              "copy_at_fork_thp_ns" if folio_pages >= pins.PMD_PAGES else "copy_at_fork_ns"),
             ("write-protect fault, page reused", c["wp_faults_pte"] - c["wp_copies"], "wp_fault_ns"),
             ("write-protect fault, page copied", c["wp_copies"], "wp_copy_ns"),
             ("write-protect fault, PMD reused", c["wp_faults_pmd"], "wp_fault_pmd_ns")]
    return [i for i in items if i[1] > 0]


def price(c: Mapping, units: costs.UnitCosts, nbytes: int, folio_pages: int) -> list[dict]:
    scale = MiB / nbytes
    return costs.price([(cause, n * scale, unit) for cause, n, unit in cost_items(c, folio_pages)], units)


def sender_runs(params: Mapping, **over) -> dict[str, dict]:
    """The sender model under both policies at the run's parameters (``over`` replaces some)."""
    p = dict(params, **over)
    sends = max(1, p["bytes_sent"] // p["send_size"])
    return {pol: pins.sender(p["send_size"], p["folio_pages"], p["inflight"], sends, p["fork_rate"],
                             p["refs_per_page"], pol, SIZE_GOAL) for pol in pins.POLICIES}


def policy_costs(runs: Mapping[str, dict], params: Mapping, units: costs.UnitCosts, **over) -> pd.DataFrame:
    """One row per policy and cause: count and ns per MiB (tidy)."""
    p = dict(params, **over)
    rows = []
    for pol, c in runs.items():
        nbytes = c["sends"] * p["send_size"]
        for r in price(c, units, nbytes, p["folio_pages"]):
            rows.append({"policy": pol, **r})
    return pd.DataFrame(rows)


def totals(runs: Mapping[str, dict], params: Mapping, units: costs.UnitCosts, **over) -> pd.DataFrame:
    """One row per policy: ns per MiB, per send, share of a core, atomics per MiB, fork copies per MiB."""
    p = dict(params, **over)
    rows = []
    for pol, c in runs.items():
        nbytes = c["sends"] * p["send_size"]
        ns = costs.total(price(c, units, nbytes, p["folio_pages"]))
        mib = nbytes / MiB
        rows.append({"policy": pol, "ns_per_mib": ns, "ns_per_send": ns * p["send_size"] / MiB,
                     "core_share": costs.core_share(ns, p["line_gbit"]),
                     "atomics_per_mib": (c["ref_atomics"] + c["pin_atomics"] + c["charges"] + c["uncharges"]) / mib,
                     "fork_copies_per_mib": c["fork_copies"] / mib, "forks": c["forks"], "sends": c["sends"]})
    return pd.DataFrame(rows)


def sweep(params: Mapping, units: costs.UnitCosts, key: str, values) -> pd.DataFrame:
    """totals() over one parameter's values (tidy: the parameter, policy, ns_per_mib, ...)."""
    def at(v):
        over = {key: v}
        if key == "send_size":
            over["bytes_sent"] = max(params["bytes_sent"], v)
        return totals(sender_runs(params, **over), params, units, **over)

    return kit.grid(key, values, at)


def no_fork_atomics(params: Mapping, folio_pages: int) -> dict:
    """Atomics per MiB of both policies without forks, other references or a partial folio (claims)."""
    runs = sender_runs(params, folio_pages=folio_pages, fork_rate=0.0, refs_per_page=0)
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
    zerocopy_probe = kit.probe_result("zerocopy")

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
        return sender_runs(self.P)

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
    def per_send(self) -> pd.DataFrame:
        """ns per send of both policies on this machine's units and with the cited gup_test figures instead."""
        cited = kit.with_release_units(self.units.with_units(*costs.CITED_GUP))
        loc = cited.unit("local_atomic_ns")
        pin = cited.unit("pin_page_ns")
        cited = cited.with_units(costs.Unit("gup_page_ns", max(0.0, pin.value - loc.value), "ns/page", pin.source,
                                            "derived: the cited pin_page_ns less one local atomic"))
        rows = []
        for label, u in (("measured here", self.units), ("cited gup_test (pin, unpin, PMD)", cited)):
            t = totals(self.runs, self.P, u).set_index("policy")
            rows.append({"unit costs": label, "references, ns per send": t.loc["ref", "ns_per_send"],
                         "pins, ns per send": t.loc["pin", "ns_per_send"],
                         "pins less references": t.loc["pin", "ns_per_send"] - t.loc["ref", "ns_per_send"]})
        return pd.DataFrame(rows)

    def sweep(self, key: str, values) -> pd.DataFrame:
        """:func:`sweep` at the run's parameters and unit costs."""
        return sweep(self.P, self.units, key, values)

    fork_sweep = kit.run_grid("fork_rate", FORK_RATES)
    size_sweep = kit.run_grid("send_size", SEND_SIZES)
    folio_sweep = kit.run_grid("folio_pages", FOLIO_SIZES)

    @cached_property
    def published(self) -> pd.DataFrame:
        t = totals(sender_runs(self.P, send_size=64 * KiB, fork_rate=0.0, refs_per_page=0,
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
    return policy_costs(sender_runs(p), p, units)


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
    return f"{head} {agree} of {len(t)} operations take exactly the pins v6.12's source predicts."


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
    """Markdown: this run's pin, unpin and reference costs beside the cited figures."""
    ns = {name: f"{R.units[name]:.0f} ns" for name in ("pin_page_ns", "unpin_page_ns", "gup_page_ns")}
    cited = {x.name: f"{x.value:.0f} ns" for x in costs.CITED_GUP}
    here = R.units.source("pin_page_ns")
    return (f"A pin of a {PAGE // KiB} KiB page costs **{ns['pin_page_ns']}**, {here}, against "
            f"{cited['pin_page_ns']} in Li Zhe's gup_test on v6.15 (cited); an unpin **{ns['unpin_page_ns']}** "
            f"against {cited['unpin_page_ns']}. A FOLL_GET reference: **{ns['gup_page_ns']}** (derived). A line "
            f"transfer: {R.units['line_transfer_ns']:.1f} ns.")


def conclusion(R: Results) -> str:
    """Markdown: the chapter's closing points, quoting the checked numbers (the reasoning is in the notebook)."""
    P, t = R.P, R.totals.set_index("policy")
    ref, pin = t.loc["ref"], t.loc["pin"]
    a1, a512 = (no_fork_atomics(P, fp) for fp in (1, 512))
    fork = R.fork_sweep.set_index(["fork_rate", "policy"]).ns_per_mib
    hi = max(FORK_RATES)
    taken = R.pin_table.groupby(R.pin_table["pins acquired"] > 0).operation.apply(kit.words)
    bias = pins.GUP_PIN_COUNTING_BIAS
    return kit.points(
        f"On {P.send_size >> 10} KiB sends from {P.folio_pages * 4} KiB folios with {P.fork_rate:g} forks per 1000 "
        f"sends, today's GUP references cost **{ref.ns_per_mib:.0f} ns per MiB** and FOLL_PIN pins "
        f"**{pin.ns_per_mib:.0f} ns**: **{pin.ns_per_send - ref.ns_per_send:+.0f} ns per send**, "
        f"{kit.pct(pin.core_share)} of a core at {P.line_gbit} Gbit/s.",
        f"Without forks, on order-0 pages, pins take {a1['pin']:.0f} atomics per MiB and references {a1['ref']:.0f}; "
        f"on PMD-mapped THPs, {a512['pin']:.0f} and {a512['ref']:.0f}.",
        f"Fork copies every page pinned at the time for the child: {R.runs['pin']['fork_copies']} pages in this run. "
        f"At {hi:g} forks per 1000 sends pins cost {fork[(hi, 'pin')]:.0f} ns per MiB against "
        f"{fork[(hi, 'ref')]:.0f}.",
        f"On this kernel {taken.get(True, 'no operation')} pin; {taken.get(False, 'none')} take references.",
        f"A false \"maybe pinned\" on a small folio needs about {bias - 2} other references at fork (fork's own makes "
        f"the {bias}th).")


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
    runs = sender_runs(R.P, folio_pages=1, fork_rate=0.0, refs_per_page=0)
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
        runs = sender_runs(R.P, folio_pages=fp, fork_rate=100.0, refs_per_page=0, send_size=64 * KiB,
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
        p = sender_runs(R.P, folio_pages=1, fork_rate=100.0, refs_per_page=refs, inflight=1, send_size=4 * KiB,
                        bytes_sent=100 * 4 * KiB)["pin"]
        out[refs] = p["fork_copies_unpinned"]
    return out[1021] == 0 and out[1022] > 0, out


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
               "a_reference_loses_the_page_at_fork")

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
          "Every operation of the pins probe takes exactly the pins v6.12's source predicts: O_DIRECT, "
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
          "holds", _fp_live),
    Claim("every_pin_and_ref_is_released",
          "Every sender run ends with no reference or pin held.",
          "holds", _ledgers_balance),
)
