"""Replays of the book's workloads under policies, as the chapters run them.

A chapter's parameters become a generator's settings (:func:`config`: the settings the
generators take as they are, and the in-flight window and TX completion lag derived from round
trip, completion delay and line rate, :func:`timing`); :class:`Replays` makes each trace and
each ledger of one setting once, however many tables read them; :func:`per_mib` normalises a
ledger's atomics (all, by refcount kind in :data:`KINDS`) and line transfers to one MiB of
payload. Built on :func:`fraglife.model.engine.replay` and
:func:`fraglife.model.workloads.generate_with_stats`; chapters 01 and 08 share it.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from . import engine, workloads
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
    """Generator settings from chapter parameters: the ones they take, plus the timing ones derived."""
    cfg = {k: params[k] for k in WORKLOAD_KEYS if k in params}
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
