"""How a chapter's notebook records its row of the answers table (:mod:`fraglife.answers`).

The notebook's answers cell, one line before its claims cell::

    answering.record("01_refcount_removal", ch, R)

records ``ch.answer(R)`` when the chapter module declares ``answer(results) -> answers.Answer``
(the chapter's own answer, from numbers its ``Results`` computed). Until it does, the row is a
provisional one made here from the chapter's headline (:data:`PROVISIONAL`): the numbers are the
chapter's, the sentence only states them, the verdict is "open", and the row says it is provisional
wherever it is shown. When a chapter module declares ``answer``, its entry here is dead and goes.

Not a chapter module (the registry lists none of it): chapter modules never import it; it reads a
``Results`` only through its headline, units and parameters.
"""

from __future__ import annotations

from typing import Any, Callable

from .. import answers
from ..answers import Number, format_number
from . import kit


def record(chapter: str, module: Any, results: Any):
    """Record the chapter's answer (its module's ``answer(results)``, else the provisional one); returns the row
    as a table, or a sentence saying why there is none (a chapter's run never fails for want of an answer)."""
    own = getattr(module, "answer", None)
    if own is not None:
        return answers.record(chapter, own(results), results.P)
    make = PROVISIONAL.get(chapter)
    try:
        a = make(results) if make else None
    except (KeyError, AttributeError, TypeError, ValueError) as e:
        return f"{chapter}: no provisional answer recorded: {type(e).__name__}: {e}"
    if a is None:
        return f"{chapter}: no answer recorded: the chapter declares no answer(results)"
    return answers.record(chapter, a, results.P)


def _n(value: float, unit: str = "") -> str:
    return format_number(value, unit=unit)


def _source(R: Any) -> str:
    if hasattr(R, "units"):
        return kit.measured(R.units)
    return getattr(R, "measured", "") if getattr(R, "measured", "") in ("live", "recorded", "mixed") else ""


def _refcount_removal(R: Any) -> answers.Answer:
    h, w = R.headline, R.P.workload
    a, b = h["page_ref_atomics_per_mib"], h["page_ref_bounces_per_mib"]
    ns = Number.span(R.units, lambda u: (a - b) * u["local_atomic_ns"] + b * u["line_transfer_ns"], "ns/MiB",
                     f"CPU on frag refcounts today ({w})")
    return answers.Answer(
        "a", f"Today's stack takes {_n(a)} refcount atomics per MiB sent ({w}), {_n(b)} of them on a line another "
             f"CPU wrote last, and one owner reference per skb takes {_n(h['owner_atomics_per_mib'])}.",
        "open", ns, answers.cross_checked("the kcount probe's tracepoint counts of a MSG_ZEROCOPY transfer over "
                                          "veth", _source(R)), provisional=True)


def _pinning(R: Any) -> answers.Answer:
    h = R.headline
    extra = Number(h["extra_ns_per_send"], unit="ns", what=f"more CPU per {R.P.send_size} B send with pins")
    return answers.Answer(
        "c", f"Pins instead of references take {_n(h['pin_atomics_per_mib'])} atomics per MiB against "
             f"{_n(h['ref_atomics_per_mib'])}, {_n(h['pin_over_ref'], 'x')} the time, forks included.",
        "open", extra, answers.priced("atomics, gup and cow", _source(R)), provisional=True)


def _batching(R: Any) -> answers.Answer:
    h = R.headline
    saved = Number(h["per_skb_ns_per_mib"] - h["batched_ns_per_mib"], unit="ns/MiB",
                   what="CPU saved by one batched lookup")
    return answers.Answer(
        "d", f"One batched lookup makes {_n(h['batched_calls_per_mib'])} GUP calls per MiB against "
             f"{_n(h['per_skb_calls_per_mib'])} per skb today, {_n(100 * h['batched_saving'], '%')} less lookup "
             f"time, and faulting ahead allocated {_n(h['populate_allocated_kib_per_mib'], 'KiB')} per MiB.",
        "open", saved, answers.priced("gup and faults", _source(R)), provisional=True)




def _kmalloc_sends(R: Any) -> answers.Answer:
    h = R.headline
    cross = Number(h["crossover_bytes"], unit="B", what="message size above which a destructor beats a copy")
    return answers.Answer(
        "g", f"Copying into a page_frag is cheaper up to about {cross.text} per message, and above it a "
             f"destructor on the kmalloc'd buffer wins, holding {_n(h['destructor_held_kib'], 'KiB')} in flight "
             f"against {_n(h['copy_held_kib'], 'KiB')} for copies.",
        "open", cross, answers.priced("memcpy and atomics, with cited allocation costs", _source(R)),
        provisional=True)


def _unified_owner(R: Any) -> answers.Answer:
    h = R.headline
    found = Number(h["owner_violations_all_workloads"], unit="violations",
                   what="use-after-free or leak under the owner, every workload")
    return answers.Answer(
        "1", f"Every interleaving searched finds no use-after-free or leak under one owner per buffer, against "
             f"{_n(h['today_violations_all_workloads'])} under today's rules, and devmem's binding takes "
             f"{_n(h['devmem_binding_owner_per_mib'])} refs per MiB instead of "
             f"{_n(h['devmem_binding_today_per_mib'])}.",
        "open", found, answers.from_source("the kernel's frag rules as the model encodes them, searched "
                                           "exhaustively"), provisional=True)


#: chapter id -> its provisional answer, from the chapter's headline, until its module declares ``answer``.
PROVISIONAL: dict[str, Callable[[Any], answers.Answer]] = {
    "01_refcount_removal": _refcount_removal,
    "03_pinning": _pinning,
    "04_batching": _batching,
    "07_kmalloc_sends": _kmalloc_sends,
    "08_unified_owner": _unified_owner,
}
