"""Replays of the book's workloads under policies, as the chapters run them.

A chapter's parameters become a generator's settings (:func:`config`: the settings the
generators take as they are, and the in-flight window and TX completion lag derived from round
trip, completion delay and line rate, :func:`timing`); :class:`Replays` makes each trace and
each ledger of one setting once, however many tables read them; :func:`per_mib` normalises a
ledger's atomics (all, by refcount kind in :data:`KINDS`) and line transfers to one MiB of
payload. Built on :func:`fraglife.model.engine.replay` and
:func:`fraglife.model.workloads.generate_with_stats`; chapters 01 and 08 share it.

What the frag lifetime work costs a transfer is defined once, here: :func:`lifetime_cost` (one
workload under one policy: atomics by kind, devmem's binding, line transfers, ns per MiB by cause
with its range over the measured unit costs, and the share of one core at a line rate), and
:func:`attribution` (today; the pinning change alone; the owner with pins, charged only for what
it adds). Chapters 01 and 08 read these numbers, so they agree.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from . import costs, engine, policies as POL, trace as T, workloads
from .ledger import Ledger

MiB = 1 << 20
#: Chapter parameters the workload generators take as they are.
WORKLOAD_KEYS = ("bytes_sent", "mss", "send_size", "frag_size", "loss_rate", "loss_burst", "cpus", "seed",
                 "folio_pages", "rx_buf", "tail_unsent", "locked_vm_accounting", "skb_defer_max")
#: The ledger's kinds of atomics, in the order the chapters show them, and their names in the kernel: the
#: references (ledger.ref_atomics), then the ubuf_info and dataref refcounts, then what is no refcount on frag
#: memory but the same paths pay: page flags (gup-fast's PG_referenced), cmpxchg loops (locked_vm accounting,
#: the devmem binding lookup), a notification's socket and user counters, the skb defer lists.
KINDS = ("page_atomics", "pp_atomics", "owner_atomics", "pin_atomics", "uarg_atomics", "dataref_atomics",
         "flag_atomics", "cmpxchg_atomics", "notif_atomics", "defer_atomics")
KIND_LABELS = {"page_atomics": "page _refcount", "pp_atomics": "pp_ref_count", "owner_atomics": "owner/binding",
               "pin_atomics": "FOLL_PIN", "uarg_atomics": "ubuf_info", "dataref_atomics": "dataref",
               "flag_atomics": "page flags", "cmpxchg_atomics": "cmpxchg loop",
               "notif_atomics": "notification (socket, user)", "defer_atomics": "skb defer list"}


def timing(params: Mapping) -> dict:
    """In-flight window and TX completion lag in skbs, from round trip, completion delay and line rate.

    An skb of one size goal leaves the NIC in ``skb_us``. The first ACK of it comes a round trip
    after it left (``inflight`` skbs later); its clone is completed after the whole skb went out
    plus the completion delay (``txc_lag`` skbs later). When ``txc_lag > inflight`` an ACK trims
    an skb whose clone the driver still holds: the ``pskb_expand_head()`` override.
    """
    cfg = workloads.Config(mss=params.get("mss", 1448))
    gbit = params.get("line_gbit", 100)
    skb_us = cfg.size_goal * 8 / (gbit * 1e3)
    out = {"skb_us": skb_us}
    if "rtt_us" in params:
        out["inflight"] = max(1, round(params["rtt_us"] / skb_us))
    if "txc_us" in params:
        out["txc_lag"] = max(0, round(1 + params["txc_us"] / skb_us))
    return out


def config(params: Mapping) -> dict:
    """Generator settings from chapter parameters: the ones they take, plus the timing ones derived, and the
    kernel whose rules they follow (``release``: a release string, e.g. from
    :func:`fraglife.chapters.kit.kernel_release`; the chapter parameter ``kernel`` names a choice, not a
    release, so it is not read here)."""
    cfg = {k: params[k] for k in WORKLOAD_KEYS if k in params}
    if params.get("release"):
        cfg["kernel"] = str(params["release"])
    cfg.update(timing(params))
    return {k: v for k, v in cfg.items() if k in workloads.Config.__dataclass_fields__}


def per_mib(led: Ledger, nbytes: int) -> dict:
    """The ledger's counts normalised to one MiB of payload."""
    mib = nbytes / MiB
    return {"atomics_per_mib": led.atomics / mib, "ref_atomics_per_mib": led.ref_atomics / mib,
            "bounces_per_mib": led.bounces / mib,
            **{f"{k}_per_mib": getattr(led, k) / mib for k in KINDS}}


class Replays:
    """Traces and ledgers for one generator setting, each computed once (tables share them)."""

    def __init__(self, cfg: Mapping):
        self.cfg = dict(cfg)
        self._traces: dict[str, tuple[np.ndarray, dict]] = {}
        self._ledgers: dict[tuple[str, str], Ledger] = {}

    @classmethod
    def of(cls, params: Mapping, **over) -> "Replays":
        """The replays of chapter parameters ``params`` (``over`` replaces some)."""
        return cls(config(dict(params, **over)))

    @property
    def nbytes(self) -> int:
        return self.cfg["bytes_sent"]

    def trace(self, workload: str) -> np.ndarray:
        return self.traced(workload)[0]

    def traced(self, workload: str) -> tuple[np.ndarray, dict]:
        if workload not in self._traces:
            self._traces[workload] = workloads.generate_with_stats(workload, **self.cfg)
        return self._traces[workload]

    def ledger(self, workload: str, policy: str) -> Ledger:
        if (workload, policy) not in self._ledgers:
            self._ledgers[workload, policy] = engine.replay(self.trace(workload), policy)
        return self._ledgers[workload, policy]


#: The folio sizes (pages) of the pins-against-GUP-refs comparison: order-0 pages and 64 KiB folios.
PIN_FOLIOS = (1, 16)


def pins_against_refs(params: Mapping, today: str = "page_ref", owner: str = "owner_skb") -> dict:
    """A TSO zerocopy send of 64 KiB sends with no loss and TX completions before ACKs, from order-0 pages and
    from 64 KiB folios (:data:`PIN_FOLIOS`), the run's other settings: ``{folio_pages: (today's ledger, the
    owner's ledger, bytes sent)}``. The owner pins user pages (FOLL_PIN) where today takes GUP refs."""
    out = {}
    for fp in PIN_FOLIOS:
        runs = Replays.of(params, folio_pages=fp, loss_rate=0.0, send_size=64 * 1024, txc_us=0.0)
        out[fp] = (runs.ledger("tcp_send", today), runs.ledger("tcp_send", owner), runs.nbytes)
    return out


# ---------------------------------------------------------------- what the frag lifetime work costs
#: The policy of today's kernel and of the unified owner (one owner ref per distinct owner per shared info).
TODAY, OWNER = "page_ref", "owner_skb"
#: The pinning change alone, for user memory: the pages pinned once per send (FOLL_PIN), each frag reference a
#: ref on the pinning owner (the ubuf_info) as today's per-frag discipline takes one on the page. Memory that is
#: not user memory is not pinned: the pinning change leaves it as it is today.
PINNED_TODAY = "owner_frag"
#: The designs bullet by bullet, each charged only for what it adds to the one before.
STEPS = ("today", "today with pins", "owner with pins")


def binding_atomics(led: Ledger, tr: np.ndarray, policy: str) -> float:
    """Atomics on devmem's one dma-buf binding refcount (``net_devmem_get_net_iov()``, net/core/devmem.c, v6.18).

    Where frag references land on the binding (today's page design, and the binding-wide design) the ledger's
    owner atomics are exactly those. A per-send owner takes one binding ref per send's owner and drops it when
    the owner is released: two per completion of a devmem send (not in the engine's ledger)."""
    p = POL.get(policy)
    if p.owner_mode in (POL.OWNER_NONE, POL.OWNER_BINDING):
        return float(led.owner_atomics)
    alloc = tr[tr["op"] == T.ALLOC]
    devmem = set(alloc["buf"][alloc["kind"] == T.MEM_DEVMEM].tolist())
    if not devmem:
        return 0.0
    att = tr[(tr["op"] == T.ATTACH) & (tr["other"] >= 0)]
    share = float(np.isin(att["buf"], list(devmem)).mean()) if len(att) else 0.0
    return 2.0 * led.completions * share


def binding_pacing(units: costs.UnitCosts) -> str:
    """How the binding's updates are priced: between other work ("paced": nearly every update moves the line),
    the way a stack interleaves frag refs with the rest of a send, if the atomics probe measured it."""
    return "paced" if "paced_contended" in units.curves and "paced_private" in units.curves else "tight"


def lifetime_counts(led: Ledger, tr: np.ndarray, policy: str) -> dict:
    """The ledger's counts with devmem's binding refs named (``binding_atomics``) and, for a per-send owner, added
    to its atomics; the binding's line transfers are left to the shared-line price (``binding_bounces`` 0)
    except where the ledger itself counts them (today's refs: their share of its bounces)."""
    counts = led.as_dict()
    bind = binding_atomics(led, tr, policy)
    per_send = POL.get(policy).owner_mode not in (POL.OWNER_NONE, POL.OWNER_BINDING)
    counts.update(atomics=led.atomics + (bind if per_send else 0.0), binding_atomics=bind)
    if per_send:
        counts["binding_bounces"] = 0
    return counts


def price_lifetime(counts: Mapping, units: costs.UnitCosts, nbytes: int, writers: float) -> list[dict]:
    """ns per MiB by cause: local atomics, line transfers, cmpxchg loops at their measured costs, and devmem's
    binding on one line that ``writers`` CPUs update (the atomics probe's contention curve up to the CPUs it
    measured, cited beyond: :meth:`fraglife.model.costs.UnitCosts.shared_line`)."""
    return costs.price_ledger(counts, units, nbytes, shared="binding_atomics", writers=writers,
                              pacing=binding_pacing(units), extrapolate=True)


def lifetime_cost(runs: "Replays", workload: str, policy: str, units: costs.UnitCosts, gbit: float,
                  writers: float | None = None) -> dict:
    """What the frag lifetime work costs one workload under one policy: the one definition every chapter uses.

    Counts per MiB (atomics by kind, devmem's binding refs, line transfers), ns per MiB by cause at ``units``
    with its range (least and most over the measured units' ranges, :meth:`~fraglife.model.costs.UnitCosts.span`),
    and the share of one core at ``gbit`` Gbit/s. ``writers``: CPUs updating devmem's binding at once (default:
    the workload's CPUs)."""
    led, tr, nbytes = runs.ledger(workload, policy), runs.trace(workload), runs.nbytes
    k = float(writers if writers is not None else runs.cfg.get("cpus", 1))
    counts = lifetime_counts(led, tr, policy)
    rows = price_lifetime(counts, units, nbytes, k)
    ns, lo, hi = units.span(lambda u: costs.total(price_lifetime(counts, u, nbytes, k)))
    mib = nbytes / MiB
    return {"workload": workload, "policy": policy, "atomics_per_mib": counts["atomics"] / mib,
            "ref_atomics_per_mib": led.ref_atomics / mib,
            **{f"{kind}_per_mib": getattr(led, kind) / mib for kind in KINDS},
            "binding_per_mib": counts["binding_atomics"] / mib, "bounces_per_mib": led.bounces / mib,
            **{f"{r['cause']}_ns": r["ns_per_mib"] for r in rows},
            "ns_per_mib": ns, "ns_low": lo, "ns_high": hi, "core_share": costs.core_share(ns, gbit),
            "core_share_low": costs.core_share(lo, gbit), "core_share_high": costs.core_share(hi, gbit),
            "pages_peak": led.pages_peak, "uaf_pages": led.uaf_pages, "leaked_refs": led.leaked_refs,
            "violations": led.violations}


def has_user_memory(tr: np.ndarray) -> bool:
    """Whether the trace sends user memory (MSG_ZEROCOPY), the memory the pinning change pins."""
    return bool((tr[tr["op"] == T.ALLOC]["kind"] == T.MEM_USER).any())


def step_policies(runs: "Replays", workload: str) -> dict[str, str]:
    """:data:`STEPS` -> the policy that replays each for ``workload``."""
    pinned = PINNED_TODAY if has_user_memory(runs.trace(workload)) else TODAY
    return {"today": TODAY, "today with pins": pinned, "owner with pins": OWNER}


def attribution(runs: "Replays", workload: str, units: costs.UnitCosts, gbit: float,
                writers: float | None = None) -> pd.DataFrame:
    """The designs bullet by bullet for one workload (:data:`STEPS`): today; today with pins (the pinning change
    alone); the owner with pins. Each row is :func:`lifetime_cost` plus what the step adds to the one before
    (``added_atomics_per_mib``, ``added_ns_per_mib`` with its range): the owner is charged only for what it
    adds to the pins."""
    rows, prev = [], None
    for step, policy in step_policies(runs, workload).items():
        r = {"step": step, **lifetime_cost(runs, workload, policy, units, gbit, writers)}
        if prev is None:
            r.update(added_atomics_per_mib=0.0, added_ns_per_mib=0.0, added_ns_low=0.0, added_ns_high=0.0)
        else:
            a, b = _priced_counts(runs, workload, prev["policy"], writers), _priced_counts(runs, workload, policy,
                                                                                         writers)
            d, lo, hi = units.span(lambda u: costs.total(price_lifetime(b[0], u, runs.nbytes, b[1]))
                                   - costs.total(price_lifetime(a[0], u, runs.nbytes, a[1])))
            r.update(added_atomics_per_mib=r["atomics_per_mib"] - prev["atomics_per_mib"], added_ns_per_mib=d,
                     added_ns_low=lo, added_ns_high=hi)
        rows.append(r)
        prev = r
    return pd.DataFrame(rows)


def _priced_counts(runs: "Replays", workload: str, policy: str, writers: float | None) -> tuple[dict, float]:
    k = float(writers if writers is not None else runs.cfg.get("cpus", 1))
    return lifetime_counts(runs.ledger(workload, policy), runs.trace(workload), policy), k
