"""Chapter 08 (book/08_unified_owner.ipynb): one lifetime object for every kind of fragment memory.

The thread's proposal, designed and checked: the unified owner (the engine's
``owner_skb`` policy) defined operation by operation, checked exhaustively by
the explorer (:mod:`fraglife.model.explorer`, its twin
:mod:`fraglife.model.explorer_twin`) against today's rules and the other
designs, every workload of the book replayed under today's rules and the
owner and priced by the cost model, and the places where the owner costs
more. The chapter's :class:`Results`, ``headline``, ``CLAIMS`` and
``conclusion``; charts in :mod:`fraglife.views.unified_owner`; the contract in
:mod:`fraglife.chapters`.
"""

from __future__ import annotations

import functools
import math
from functools import cached_property
from typing import Mapping

import numpy as np
import pandas as pd

from .. import answers, paths
from ..claims import Claim
from ..model import costs, engine, explorer as E, explorer_story as W, explorer_twin as X, kernels, replays
from ..model import trace as T, workloads
from ..model.policies import POLICIES
from ..model.replays import Replays
from ..params import Param, Params
from . import kit
from .kit import compare

KiB = 1 << 10
MiB = 1 << 20

#: The explorer's memory: the two buffers' kinds (one kind twice, or user memory and a pipe).
MEMORY = {"user+pipe": (X.USER, X.PIPE), "user": (X.USER, X.USER), "pipe": (X.PIPE, X.PIPE),
          "pool": (X.POOL, X.POOL), "devmem": (X.DEVMEM, X.DEVMEM), "kmalloc": (X.KMALLOC, X.KMALLOC)}
MEMORIES = tuple(MEMORY)
#: The two designs every workload is replayed under.
TODAY, OWNER = "page_ref", "owner_skb"
DESIGNS = {TODAY: "today", OWNER: "unified owner"}
#: The memory and bounds the owner-rule mutants run at, with the run's CPUs (each fails already at 3
#: operations, 2 skbs and 2 frags, with one CPU); a counterexample is shortest at small bounds.
MUTANT_MEMORY = "user+pipe"
MUTANT_BOUNDS = {"ops": 4, "skbs": 3, "frags": 2}
#: The largest number of states one search stores (about 25 bytes each); past it the search says so.
MAX_STATES = 6_000_000
#: Bounds of the explorer-against-twin check the chapter runs (the twin is ~70x slower).
AGREE_CAP = {"ops": 2, "skbs": 2, "frags": 2, "cpus": 2}
#: Distinct owners per 64 KiB skb in the coalescing cost table (pipe buffers of 16/n pages each).
OWNERS_PER_SKB = (1, 2, 4, 8, 16)
#: Writers of one shared line in the contention table (the probe measures as many as this machine has).
WRITERS = (1, 2, 4, 8, 16, 64)
#: Topology classes this machine lacks, priced with cited line transfers (costs.CITED_TRANSFERS).
CITED_CLASSES = (("other_llc", "EPYC 7R13"), ("other_socket", "EPYC 7R13"), ("other_socket", "Xeon"))
#: Upper bounds for the library-mode claims test (tests/test_claims.py).
SMALL = {"ops": 3, "skbs": 3, "frags": 2, "bytes_sent": 512 * KiB, "send_size": 256 * KiB}
CLAIMS_EXAMPLES = 10
TALK_CLAIMS = ("one_ref_for_a_multi_folio_frag_is_use_after_free", "unified_owner_passes",
               "owner_rules_are_one_invariant", "owner_array_costs_one_cache_line",
               "owner_frees_nothing_early_on_any_workload", "binding_fails_where_the_holder_frees")
#: Bounds of the checks beside the run's own search (the owner array's fallbacks, devmem TX's two rules): an skb
#: can need more owners than a one-slot array holds, and each search takes seconds.
CHECK_BOUNDS = X.Bounds(ops=3, cpus=2, skbs=2, frags=2)
#: Bounds of the invariant check: the twin's search with the invariant tested in every state (plain Python, one
#: CPU keeps it to seconds; every invariant rule's mutant breaks it within three steps).
INVARIANT_BOUNDS = X.Bounds(ops=3, cpus=1, skbs=2, frags=2)
#: How a frag names its owner slot in the chapter's owner array: the fewest bits per frag, packed in
#: skb_shared_info (explorer_twin.INDEX_KINDS).
ARRAY_INDEX = "packed"
#: Frags of the skb the owner array's per-operation costs are counted on (MAX_SKB_FRAGS), and its owners.
ARRAY_FRAGS = 17
ARRAY_OWNERS = (1, 2, 4, 17)


# ---------------------------------------------------------------- the definition
DEFINITION = (
    ("what it is", "(no such object: a page ref per frag, a pp_ref_count, a binding ref; the ubuf_info only "
     "notifies)",
     "a refcount, a release callback and what it stands for: the pins of user memory and its completion, "
     "the pipe buffers of a splice, a kmalloc'd object, the dma-buf binding, or (already) a page_pool "
     "page's pp_ref_count",
     "", "include/linux/skbuff.h struct ubuf_info, skb_shared_info.destructor_arg, v6.18 (as in v6.12)"),
    ("where a frag finds it", "the frag's page (get_page on its head), or the net_iov's binding",
     "an owner slot in skb_shared_info (today's destructor_arg holds one ubuf_info); a frag names its slot; "
     "a page_pool frag keeps finding pp_ref_count through its page",
     "", "include/linux/skbuff.h skb_zcopy(), net/core/devmem.c net_devmem_get_net_iov(), v6.18 (devmem 6.16 on)"),
    ("attach", "one ref per frag on its page (GUP, get_page), a pp_ref_count slot, or the binding",
     "one ref on the frag's owner if this shared info holds none yet; user memory is pinned once, by the "
     "owner (FOLL_PIN)", "",
     "net/core/datagram.c zerocopy_fill_skb_from_iter(), net/core/skbuff.c skb_append_pagefrags(), v6.18 (as in v6.12)"),
    ("clone", "dataref + 1, no frag refs", "dataref + 1, no owner ref: clones share the shared info's owner "
     "refs, dropped when dataref reaches zero", "clone_shares_through_dataref",
     "net/core/skbuff.c __skb_clone(), skb_release_data(), v6.18 (as in v6.12)"),
    ("split", "one ref for the frag cut in two; the ubuf_info again for the new skb",
     "the new skb's shared info takes one ref on each owner of its frags; the old one drops owners it no "
     "longer uses", "split_refs_new_owner_set", "net/core/skbuff.c skb_split(), v6.18 (as in v6.12)"),
    ("segment", "one ref per frag piece per segment; the ubuf_info once per segment",
     "one ref on each owner of the segment's frags", "segment_refs_its_owners",
     "net/core/skbuff.c skb_segment(), skb_zerocopy_clone(), v6.18 (as in v6.12)"),
    ("expand head", "if cloned, one ref per frag (the override), the ubuf_info again",
     "if cloned, one ref on each owner of the frags; the old shared info drops its dataref",
     "expand_head_refs_its_owners", "net/core/skbuff.c pskb_expand_head(), v6.18 (as in v6.12)"),
    ("coalesce", "refused for zerocopy skbs; frags move, or one ref per frag if the other skb is cloned",
     "allowed across owners: the target takes a ref on each owner it did not hold (one more slot); the "
     "emptied skb drops its own", "coalesce_refs_the_other_owner",
     "net/core/skbuff.c skb_try_coalesce(), v6.18 (as in v6.12)"),
    ("copy fallback", "skb_copy_ubufs(): copy into new pages, put each frag's page, drop the ubuf_info "
     "(completion marked copied); -EFAULT for device memory",
     "copy into kernel pages under their own owner, then drop the refs on the old owners; impossible for "
     "device memory, as today", "copy_drops_the_old_owner",
     "net/core/skbuff.c skb_copy_ubufs(), skb_zcopy_clear(), v6.18 (as in v6.12)"),
    ("shift", "skb_shift(): whole frags move, one ref for a frag cut in two",
     "the target takes a ref on each owner of the frags it gains; the source drops owners it no longer uses",
     "shift_refs_the_target_owners", "net/core/skbuff.c skb_shift(), v6.18 (as in v6.12)"),
    ("trim head (ACK)", "__pskb_trim_head(): a put per frag dropped", "a put on each owner no longer used",
     "", "net/ipv4/tcp_output.c __pskb_trim_head(), v6.18 (as in v6.12)"),
    ("frag_list", "the child skb keeps its own frag refs", "the child keeps its own owner set; the parent's "
     "release releases it", "frag_list_released_with_parent",
     "net/core/skbuff.c skb_release_data() -> kfree_skb_list_reason(), v6.18 (as in v6.12)"),
    ("splice out (skb_splice_bits)", "spd_fill_page(): a get_page() per page into the pipe",
     "the pipe buffer holds a ref on the owner", "pipe_buffer_holds_the_owner",
     "net/core/skbuff.c skb_splice_bits(), spd_fill_page(), v6.18 (as in v6.12)"),
    ("zerocopy receive", "vm_insert_pages(): a folio ref held by the page tables",
     "the mapping holds a ref on the owner", "mapping_holds_the_owner",
     "net/ipv4/tcp.c tcp_zerocopy_receive(), mm/memory.c vm_insert_pages(), v6.18 (as in v6.12)"),
    ("free", "dataref - 1; at zero a put per frag (put_page, page_pool_put) and on the ubuf_info",
     "dataref - 1; at zero one put per owner the shared info holds", "",
     "net/core/skbuff.c skb_release_data(), v6.18 (as in v6.12)"),
    ("the holder lets go", "its page refs: pipe_buf_release(), munmap, the pool's drain; sendmsg() drops "
     "its ubuf_info ref", "its one ref on the owner", "",
     "fs/splice.c splice_to_socket(), net/core/page_pool.c, net/ipv4/tcp.c tcp_sendmsg_locked(), v6.18 (as in v6.12)"),
    ("the owner's release", "(the ubuf_info's callback only notifies)",
     "the last put runs the release: unpin and complete (user memory), pipe_buf_release() of each buffer, "
     "kfree() and the service's destructor, the binding's put", "",
     "net/core/skbuff.c __msg_zerocopy_callback(), include/linux/pipe_fs_i.h pipe_buf_release(), v6.18 (as in v6.12)"),
)

KINDS = (
    ("user (MSG_ZEROCOPY)", "the ubuf_info it replaces, pinning the pages once (FOLL_PIN)",
     "unpin, raise the completion", "a GUP ref per page, merged per folio", "yes"),
    ("pipe (splice, vmsplice)", "the pipe buffers taken over from the pipe (their ops)",
     "pipe_buf_release() of each buffer", "get_page() per page-sized frag", "no"),
    ("page_pool (receive)", "the page's own pp_ref_count (unchanged)", "recycle into the pool",
     "pp_ref_count per frag", "no"),
    ("devmem (dma-buf)", "a per-send owner holding one ref on the binding", "complete the send, put the "
     "binding", "a ref on the binding per frag", "yes"),
    ("kmalloc (kernel services)", "the object, with the service's destructor", "kfree() / the destructor",
     "cannot be sent: skb_splice_from_iter() returns -EIO for slab pages", "no"),
)


def definition() -> pd.DataFrame:
    """The unified owner operation by operation: today (v6.18) against the owner, and the explorer's name of
    each rule (a mutant leaves it out)."""
    return pd.DataFrame(list(DEFINITION), columns=["operation", "today", "unified owner", "explorer rule",
                                                   "source"])


def kinds_table() -> pd.DataFrame:
    """What the owner stands for per kind of memory, what its release does, and today's frag ref."""
    return pd.DataFrame(list(KINDS), columns=["memory", "the owner", "its release", "today's frag ref",
                                              "completion"])


# ---------------------------------------------------------------- the explorer
def bounds(params: Mapping, **over) -> X.Bounds:
    """The explorer's bounds from the chapter's parameters (``over`` replaces some)."""
    b = {"ops": params["ops"], "cpus": params["explore_cpus"], "skbs": params["skbs"],
         "frags": params["frags"], "copies": 1, "max_states": MAX_STATES}
    b.update(over)
    return X.Bounds(**b)


def scenario(memory: str, policy: str = OWNER, *, span: bool = True, rules: int = X.ALL_RULES) -> X.Scenario:
    return X.Scenario(kinds=MEMORY[memory], span=span, policy=POLICIES[policy], rules=rules)


@functools.lru_cache(maxsize=512)
def _explore(b: X.Bounds, memory: str, policy: str, span: bool, rules: int, impl: str, orbits: bool):
    return E.explore(b, scenario(memory, policy, span=span, rules=rules), impl=impl, orbits=orbits)


def explore(b: X.Bounds, memory: str, policy: str, *, span: bool = True, rules: int = X.ALL_RULES,
            impl: str = "jit", orbits: bool = False) -> X.Result:
    """One search (cached per process: the notebook, claims and panel ask for the same ones)."""
    return _explore(b, memory, policy, span, rules, impl, orbits)


def summary(res: X.Result) -> dict:
    """A search as plain numbers: states, edges, verdict, the shortest violation and its length."""
    short = res.shortest()
    return {"states": res.states, "edges": res.edges, "complete": res.complete, "max_depth": res.max_depth,
            "verdict": res.verdict, "violation": short[0] if short else "", "steps": len(short[1]) if short else 0,
            "violations": ", ".join(sorted(res.found)), "seconds": res.seconds}


def verdict_text(s: Mapping) -> str:
    if s.get("memory") == "kmalloc" and s.get("policy") in ("page_ref", "page_ref_all"):
        return "cannot be sent (-EIO)"
    if s["verdict"] == "passes":
        return f"passes ({s['states']:,} states)"
    return f"{s['violation'].replace('_', ' ')} in {s['steps']} steps"


def rule_labels(steps) -> list:
    return [lab for lab, _parent in steps]


def story(steps) -> list:
    """The start operations of a counterexample with its puts as "put": the same story under another design."""
    return [lab if lab[0] not in (X.PUT, X.DROP) else "put" for lab, _parent in steps]


WALK_COLUMNS = ["step", "cpu", "operation", "refcounts after", "puts to come", "pages freed", "verdict"]


def walk_table(b: X.Bounds, memory: str, policy: str, labels, *, finish: bool = False,
               rules: int = X.ALL_RULES) -> pd.DataFrame:
    rows = W.walk(b, scenario(memory, policy, rules=rules), labels, finish=finish)
    return pd.DataFrame(rows, columns=WALK_COLUMNS)


# ---------------------------------------------------------------- every workload of the book
def book_row(runs: Replays, workload: str, policy: str, units: costs.UnitCosts, gbit: float,
             writers: int) -> dict:
    """One workload under one design: what its frag lifetime work costs (replays.lifetime_cost, the one definition
    chapters 01 and 08 share: atomics by kind, devmem's binding, line transfers, ns per MiB with its range, core
    share, violations), with the design's name."""
    r = replays.lifetime_cost(runs, workload, policy, units, gbit, writers)
    return {**r, "design": DESIGNS.get(policy, policy), "today's kernel": workloads.ALL[workload].today,
            "shared_line_ns": r.get("shared_line_ns", 0.0)}


def pacing(units: costs.UnitCosts) -> str:
    """How the binding's updates are priced (replays.binding_pacing)."""
    return replays.binding_pacing(units)


def book_table(runs: Replays, units: costs.UnitCosts, gbit: float, writers: int,
               workload_names=None, policies=(TODAY, OWNER)) -> pd.DataFrame:
    """Every workload of the book (workloads.ALL: chapter 01's and the later chapters') under today's rules
    and the unified owner."""
    rows = []
    for w in workload_names or workloads.ALL:
        for p in policies:
            rows.append(book_row(runs, w, p, units, gbit, writers))
    return pd.DataFrame(rows)


def attribution_table(runs: Replays, units: costs.UnitCosts, gbit: float, writers: int,
                      workload_names=("tcp_send", "tcp_gso", "splice_send", "devmem_send", "rx_gro")) -> pd.DataFrame:
    """The designs bullet by bullet (replays.attribution): today; today with pins (the pinning change alone, for
    user memory); the owner with pins, each step charged only for what it adds to the one before."""
    frames = [replays.attribution(runs, w, units, gbit, writers) for w in workload_names]
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------- where the design costs
def mixed_owner_trace(n_owners: int, *, gso: bool, mss: int = 1448) -> np.ndarray:
    """A 64 KiB skb of sixteen one-page frags from ``n_owners`` pipes (buffers of 16/n pages), cloned for the
    device, segmented in software (``gso``) or sent whole, freed, and the pipes let go."""
    if n_owners not in OWNERS_PER_SKB:
        raise ValueError(f"n_owners = {n_owners!r} is not allowed: expected one of {OWNERS_PER_SKB}")
    per = 16 // n_owners
    tb = T.TraceBuilder()
    for o in range(n_owners):
        tb.alloc(0, buf=o, pfn=o * per, pages=per, folio_pages=1, kind=T.MEM_PIPE)
    tb.skb_alloc(0, skb=0)
    for q in range(16):
        tb.attach(0, skb=0, buf=q // per, pfn=q, off=0, length=T.PAGE_SIZE)
    tb.clone(0, new=1, src=0)
    if gso:
        n = math.ceil(16 * T.PAGE_SIZE / mss)
        for s in range(n):
            tb.segment(1, new=2 + s, src=1, start=s * mss, length=min(mss, 16 * T.PAGE_SIZE - s * mss))
        for s in range(n):
            tb.free(1, skb=2 + s)
    tb.free(1, skb=1)
    tb.free(1, skb=0)
    for o in range(n_owners):
        tb.buf_release(0, buf=o)
    return tb.build()


def coalesce_costs() -> pd.DataFrame:
    """Frag-memory ref atomics per 64 KiB skb as the distinct owners in it grow, today and with the owner."""
    rows = []
    for n in OWNERS_PER_SKB:
        row = {"owners_per_skb": n}
        for gso in (False, True):
            tr = mixed_owner_trace(n, gso=gso)
            for p in (TODAY, OWNER):
                led = engine.replay(tr, p)
                row[f"{DESIGNS[p]}, {'GSO' if gso else 'TSO'}"] = led.ref_atomics
                if led.violations:
                    raise AssertionError(f"mixed-owner trace: {p} is not clean")
        rows.append(row)
    return pd.DataFrame(rows).set_index("owners_per_skb")


def copy_costs(units: costs.UnitCosts, gbit: float) -> pd.DataFrame:
    """The copy fallback per 64 KiB skb of order-0 user pages: the memcpy, the references each design drops,
    and the share of a core if every skb is copied."""
    frags = 16
    copy_ns = units["copy_64k_ns"] if "copy_64k_ns" in units else float("nan")
    local = units["local_atomic_ns"]
    rows = []
    for design, atomics, what in (
            ("today", frags + 1, "a put_page() per frag, the ubuf_info's put (skb_copy_ubufs(), skb_zcopy_clear())"),
            ("unified owner", 2, "one get on the kernel pages' owner, one put on the old owner")):
        ns = copy_ns + atomics * local
        rows.append({"design": design, "ref atomics": atomics, "what": what, "memcpy ns": copy_ns,
                     "refs ns": atomics * local, "ns per skb": ns,
                     "core share if every skb is copied": costs.core_share(ns * 16, gbit)})
    return pd.DataFrame(rows)


def contention_table(runs: Replays, units: costs.UnitCosts, gbit: float,
                     workload: str = "devmem_send") -> pd.DataFrame:
    """devmem's binding as one line written by k CPUs at once: ns per MiB today and with the owner, k from 1
    up, priced as the book table prices it (:func:`pacing`): measured on this machine up to the writers the
    atomics probe ran (its CPUs), beyond them a cited line transfer per update (costs.shared_line_cost: the
    farthest class k CPUs of an EPYC 7R13 span), never extrapolated."""
    pace = pacing(units)
    hi = max(units.curve("contended").threads) if "contended" in units.curves else 1
    rows = []
    for k in WRITERS:
        unit = costs.shared_line_cost(units, k, pace)
        row = {"writers": k, "source": "measured" if k <= hi else "cited", "ns per update": unit.value,
               "where": "this machine" if k <= hi else unit.detail.split("per update, ")[-1].split(": ")[0]}
        for p in (TODAY, OWNER):
            r = book_row(runs, workload, p, units, gbit, k)
            row[f"{DESIGNS[p]} ns/MiB"] = r["ns_per_mib"]
            row[f"{DESIGNS[p]} binding ns/MiB"] = r["shared_line_ns"]
        rows.append(row)
    return pd.DataFrame(rows)


def topology_table(runs: Replays, units: costs.UnitCosts, gbit: float, writers: int,
                   workload_names=("tcp_send", "tcp_gso", "splice_send", "devmem_send")) -> pd.DataFrame:
    """ns per MiB with line transfers priced at this machine's measurement and at cited classes it lacks."""
    variants = [("this machine", units.source("line_transfer_ns"), units)]
    for cls, machine in CITED_CLASSES:
        u = units.with_transfer(cls, machine)
        variants.append((f"{machine} {cls.replace('_', ' ')}", "cited", u))
    rows = []
    for name, source, u in variants:
        row = {"line transfer": name, "ns": u["line_transfer_ns"], "source": source}
        for w in workload_names:
            for p in (TODAY, OWNER):
                row[f"{w} {DESIGNS[p]}"] = book_row(runs, w, p, u, gbit, writers)["ns_per_mib"]
        rows.append(row)
    return pd.DataFrame(rows)


def pin_costs(params: Mapping) -> pd.DataFrame:
    """Chapter 01's finding, recomputed with its helpers: a TSO zerocopy send of 64 KiB sends with no loss and
    completions before ACKs, from order-0 pages and 64 KiB folios: FOLL_PIN against GUP refs."""
    rows = []
    for fp, (today, owner, nbytes) in replays.pins_against_refs(params, TODAY, OWNER).items():
        mib = nbytes / MiB
        rows.append({"folio": f"{fp * 4} KiB", "today atomics/MiB": today.atomics / mib,
                     "today GUP page atomics/MiB": today.page_atomics / mib,
                     "owner atomics/MiB": owner.atomics / mib, "owner FOLL_PIN atomics/MiB": owner.pin_atomics / mib,
                     "owner/today": owner.atomics / today.atomics})
    return pd.DataFrame(rows)



# ---------------------------------------------------------------- the owner's rules, its array, devmem
def binding_table(b: X.Bounds) -> pd.DataFrame:
    """devmem's rule applied to all memory (``owner_binding``) on each memory: whether its holder frees it on its
    own schedule, the search's verdict, and whether the step that broke it is the holder's release."""
    rows = E.binding_verdicts(b, MEMORY)
    return pd.DataFrame([{"memory": m, "holder frees it": r["holder_frees"], "verdict": r["verdict"],
                          "violation": r["violation"], "steps": r["steps"], "states": r["states"],
                          "freed by the holder's release": r["freed_by_holder"]} for m, r in rows.items()])


@functools.lru_cache(maxsize=1)
def invariant_table() -> pd.DataFrame:
    """The owner's invariant tested in every state the twin's search reaches (:data:`INVARIANT_BOUNDS`, user memory
    and a pipe): with all rules, and with each rule that re-establishes it left out (explorer_twin.INVARIANT_RULES):
    states, states that break it, the depth of the first and what breaks."""
    rows = []
    for rule in ("(none)", *X.INVARIANT_RULES):
        rules = X.ALL_RULES if rule == "(none)" else X.ALL_RULES & ~X.RULES[rule]
        r = E.invariant_breaks(INVARIANT_BOUNDS, scenario(MUTANT_MEMORY, rules=rules))
        rows.append({"rule left out": rule, "states": r["states"], "breaking states": r["broken"],
                     "first at step": r["first_depth"], "what breaks first": r["what"], "verdict": r["verdict"]})
    return pd.DataFrame(rows).set_index("rule left out")


def owner_array_table(shinfo: Mapping) -> pd.DataFrame:
    """What an owner array of 1 to N + 1 slots adds to ``struct skb_shared_info`` (its BTF layout), a frag naming
    its slot with :data:`ARRAY_INDEX` bits; N is the most slots one more cache line holds."""
    fit = X.owner_array_fit(shinfo, ARRAY_INDEX)
    return pd.DataFrame([X.owner_array_bytes(shinfo, n, ARRAY_INDEX) for n in range(1, fit + 2)])


def owner_array_costs() -> pd.DataFrame:
    """Refcount atomics per operation on a 17-frag skb from 1, 2, 4 and 17 owners: today against the owner array
    (explorer_twin.owner_array_costs, the explorer's rule)."""
    rows = []
    for o in ARRAY_OWNERS:
        for r in X.owner_array_costs(ARRAY_FRAGS, o):
            rows.append({"owners": o, **r})
    return pd.DataFrame(rows)


@functools.lru_cache(maxsize=1)
def owner_array_search() -> tuple[bool, dict]:
    """A one-slot owner array at bounds that exceed it (:data:`CHECK_BOUNDS`, user memory and a pipe), with each
    fallback (refuse the operation, copy the skb): explorer.owner_array_safe."""
    return E.owner_array_safe(CHECK_BOUNDS, MEMORY[MUTANT_MEMORY], slots=1)


@functools.lru_cache(maxsize=1)
def devmem_tx() -> pd.DataFrame:
    """devmem TX on two devmem buffers (:data:`CHECK_BOUNDS`): upstream's rule (a binding ref per frag ref and per
    sendmsg, 6.16 on), the prototype's (frags take none; the skb's socket holds the binding), and the prototype
    where skb_orphan() may take the socket away first."""
    what = {"frag": "upstream 6.16-6.19: a binding ref per frag ref",
            "socket": "prototype: the skb holds its socket, the socket the binding",
            "socket+orphan": "prototype, an skb orphaned before it is freed"}
    return pd.DataFrame([{"devmem TX": r["devmem_tx"], "rule": what[r["devmem_tx"]], "verdict": r["verdict"],
                          "violation": r["violation"], "steps": r["steps"], "states": r["states"],
                          "orphan in the trace": X.ORPHAN in [lab[0] for lab in r["labels"]]}
                         for r in E.devmem_tx_verdicts(CHECK_BOUNDS)])


# ---------------------------------------------------------------- the model against the running kernel
#: veth's receive buffer with an XDP program: one page_pool page per packet (drivers/net/veth.c
#: veth_convert_skb_to_xdp_buff() copies each packet into a page of the queue's page_pool, v6.18), as the probe saw
#: (truesize 4352: a page and the skb's own 256 B).
VETH_RX_BUF = 4096
#: The receive transfers the chapter compares: GRO on (what the model's rx_gro does) and off (the defer rule only).
RX_TRANSFERS = ("gro_on", "gro_off")
#: The kernel mechanism the receive model leaves out, with its source.
GRO_REASON = ("GRO holds a flow's packets until the NAPI poll ends (napi_complete_done() flushes it) and chains "
              "them past MAX_SKB_FRAGS on frag_list up to gro_max_size (skb_gro_receive(), net/core/gro.c, v6.18): "
              "one skb per poll here; the model closes a GRO skb at MAX_SKB_FRAGS frags, so it hands the reader "
              "more, smaller skbs")
#: What each receive quantity means (per MiB received, a share where it says so).
RX_QUANTITIES = {
    "packets": "packets received: net:napi_gro_receive_entry (the model: bytes over the MSS)",
    "skbs_deferred": "skbs the reader freed through the NAPI CPU's defer list (skb_attempt_defer_free() from "
                     "tcp_eat_recv_skb(); skb:consume_skb [deferred] on the NAPI CPU, matched to the reader's "
                     "copies)",
    "reader_cpu_frees": "skbs the reader freed on its own CPU (the defer list full, or nothing to defer to)",
    "deferred_share": "share of the reader's skb frees that ran on the CPU that allocated the skb (1 = all)",
}
#: The kcount grid's quantities the owner's count rests on: shared infos released (one owner ref each per owner)
#: and completions (the owner's releases: one per ubuf_info it replaces).
GRID_QUANTITIES = ("skbs_freed", "completions")


def rx_inputs(run: Mapping) -> dict:
    """The receive model's settings for one kcount_rx transfer: veth's buffer, the connection's MSS, no loss, the
    CPUs (the reader on another CPU than NAPI, or the same), the defer list's limit and the kernel."""
    return {"bytes_sent": min(int(run["bytes"]), 16 * MiB), "mss": int(run.get("tcp_info", {}).get("rx", {})
                                                                        .get("rcv_mss") or 1448),
            "rx_buf": VETH_RX_BUF, "loss_rate": 0.0, "cpus": 1 if run.get("same_cpu") else 2,
            "skb_defer_max": int(run.get("skb_defer_max") or workloads.Config().skb_defer_max),
            "kernel": run.get("kernel") or kernels.NEWEST}


def rx_model(inputs: Mapping) -> dict:
    """The receive model's count per MiB of each :data:`RX_QUANTITIES` (rx_gro)."""
    tr, st = workloads.generate_with_stats("rx_gro", **inputs)
    c = workloads.Config(**{k: v for k, v in inputs.items() if k in workloads.Config.__dataclass_fields__})
    mib = inputs["bytes_sent"] / MiB
    frees = tr[tr["op"] == T.FREE]
    local = int((frees["cpu"] == c.app_cpu).sum()) if c.app_cpu != c.rx_cpu else 0
    reader = st["deferred"] + local
    return {"packets": st["packets"] / mib, "skbs_deferred": st["deferred"] / mib, "reader_cpu_frees": local / mib,
            "deferred_share": st["deferred"] / reader if reader else 0.0}


def rx_kernel(run: Mapping) -> dict[str, tuple[float, float, float]]:
    """The kernel's count of each :data:`RX_QUANTITIES` for a kcount_rx transfer: (value, low, high)."""
    sk = run["skbs"]
    deferred = float(sum(sk.get("deferred_to", {}).values()))
    lo, hi = sk["freed_on_reader_cpu"]["low"], sk["freed_on_reader_cpu"]["high"]
    slo, shi = sk["share_freed_on_reader_cpu"]["low"], sk["share_freed_on_reader_cpu"]["high"]
    return {"packets": (sk["packets"],) * 3, "skbs_deferred": (deferred,) * 3,
            "reader_cpu_frees": ((lo + hi) / 2, lo, hi), "deferred_share": (1 - (slo + shi) / 2, 1 - shi, 1 - slo)}


def rx_rows(result, chapter: str = "08_unified_owner") -> pd.DataFrame:
    """The receive model fed each kcount_rx transfer of :data:`RX_TRANSFERS` against the kernel's counts."""
    rows = []
    for run in result.data.get("runs", []):
        if run["name"] not in RX_TRANSFERS:
            continue
        run = {**run, "kernel": run.get("kernel") or result.kernel}
        inputs = rx_inputs(run)
        model, kern, mib = rx_model(inputs), rx_kernel(run), run["bytes"] / MiB
        for q in RX_QUANTITIES:
            if not run.get("gro") and q in ("packets", "skbs_deferred"):
                continue  # the model always GROs: with GRO off only the defer rule compares
            v, lo, hi = kern[q]
            reason = GRO_REASON if q == "skbs_deferred" else ""
            rows.append(compare.row(chapter, run["name"], q, v, model[q], mib=mib, low=lo, high=hi, reason=reason,
                                    measured=result.source, how_counted=RX_QUANTITIES[q],
                                    slack_events=mib if q != "deferred_share" else compare.SLACK_EVENTS))
    return pd.DataFrame(rows, columns=compare.COLUMNS)


def grid_rows(result, chapter: str = "08_unified_owner") -> pd.DataFrame:
    """kcount's MSG_ZEROCOPY grid against the send model (compare.grid_rows), the quantities the owner's refs
    rest on (:data:`GRID_QUANTITIES`)."""
    rows = compare.grid_rows(result, chapter=chapter)
    return rows[rows.quantity.isin(GRID_QUANTITIES)].reset_index(drop=True)


def workloads_on(release: str) -> list[str]:
    """The book's workloads the kernel ``release`` has (devmem TX came in 6.16)."""
    devmem = not kernels.follows(release, "frag_ref_get_netmem")
    return [w for w in workloads.ALL if not (devmem and "devmem" in w)]


# ---------------------------------------------------------------- results
class Results:
    """Chapter 08's analyses for one parameter set, each computed once on first use."""

    def __init__(self, params: Mapping):
        self.P = Params.of(params)
        self.bounds = bounds(self.P)

    # -- the explorer
    @cached_property
    def main(self) -> dict[str, X.Result]:
        """The run's memory at the run's bounds: today's rule and the owner on the future frag (spanning
        folios), and today's rule on today's frags."""
        m, b = self.P.memory, self.bounds
        return {"today": explore(b, m, TODAY), "owner": explore(b, m, OWNER, orbits=True),
                "today_frags": explore(b, m, TODAY, span=False)}

    @cached_property
    def counterexample(self) -> tuple[str, list] | None:
        """Today's single ref on the future frag: the shortest violation, or None if this memory has none."""
        return self.main["today"].shortest()

    @cached_property
    def walk(self) -> pd.DataFrame:
        """Today's single ref on the future frag, step by step to its shortest violation (on memory where it
        has none, one row saying so)."""
        ce = self.counterexample
        if ce is None:
            return pd.DataFrame([{"step": 0, "cpu": "-", "operation": f"no violation on {self.P.memory} memory: "
                                  "its frags never rely on a page ref alone", "refcounts after": "-",
                                  "puts to come": "-", "pages freed": "-", "verdict": ""}], columns=WALK_COLUMNS)
        return walk_table(self.bounds, self.P.memory, TODAY, rule_labels(ce[1]))

    @cached_property
    def owner_walk(self) -> pd.DataFrame:
        """The same operations under the unified owner, run to the end (on memory where today's rule has no
        counterexample: the first frag over a buffer, sent and let go)."""
        ce = self.counterexample
        labels = story(ce[1]) if ce is not None else [(X.ATTACH_NEW, 0, X.ONE_PAGE_SHAPES[0], 0), (X.HOLDER, 0, 0, 0)]
        return walk_table(self.bounds, self.P.memory, OWNER, labels, finish=True)

    @cached_property
    def search(self) -> pd.DataFrame:
        """The run's searches as a table."""
        rows = []
        for key, what in (("today", "today's rule, future frags"), ("owner", "unified owner, future frags"),
                          ("today_frags", "today's rule, today's frags")):
            res = self.main[key]
            rows.append({"search": what, **summary(res), "labelled states": res.labelled})
        return pd.DataFrame(rows).set_index("search").round({"seconds": 3})

    @cached_property
    def verdicts(self) -> pd.DataFrame:
        """Every policy on every kind of memory at the run's bounds, frags spanning folios (the future); and
        today's rule on today's frags (tidy)."""
        rows = []
        for m in MEMORIES:
            for p in POLICIES:
                rows.append({"policy": p, "memory": m, "frags": "future", **summary(explore(self.bounds, m, p))})
            rows.append({"policy": TODAY, "memory": m, "frags": "today",
                         **summary(explore(self.bounds, m, TODAY, span=False))})
        return pd.DataFrame(rows)

    @cached_property
    def verdict_matrix(self) -> pd.DataFrame:
        """verdicts as policy x memory, each cell the verdict in words."""
        v = self.verdicts.assign(cell=lambda d: [verdict_text(r) for r in d.to_dict("records")],
                                 row=lambda d: np.where(d.frags == "today", d.policy + " (today's frags)",
                                                        d.policy))
        order = [f"{TODAY} (today's frags)", *POLICIES]
        return v.pivot(index="row", columns="memory", values="cell").reindex(index=order, columns=list(MEMORIES))

    @cached_property
    def mutant_bounds(self) -> X.Bounds:
        return bounds(self.P, **MUTANT_BOUNDS)

    @cached_property
    def mutants(self) -> pd.DataFrame:
        """The unified owner with one rule left out, on user memory and a pipe: each should fail."""
        rows = [{"rule left out": "(none: the unified owner)",
                 **summary(explore(self.mutant_bounds, MUTANT_MEMORY, OWNER))}]
        for name, bit in X.RULES.items():
            res = explore(self.mutant_bounds, MUTANT_MEMORY, OWNER, rules=X.ALL_RULES & ~bit)
            rows.append({"rule left out": name, **summary(res)})
        return pd.DataFrame(rows).set_index("rule left out")

    def mutant_walk(self, rule: str) -> pd.DataFrame:
        res = explore(self.mutant_bounds, MUTANT_MEMORY, OWNER, rules=X.ALL_RULES & ~X.RULES[rule])
        return walk_table(self.mutant_bounds, MUTANT_MEMORY, OWNER, rule_labels(res.shortest()[1]),
                          rules=X.ALL_RULES & ~X.RULES[rule])

    @cached_property
    def agreement(self) -> pd.DataFrame:
        """The compiled explorer against its twin at small bounds: the same states, edges, verdicts and
        counterexamples."""
        b = bounds(self.P, **{k: min(self.P[k if k != "cpus" else "explore_cpus"], v) for k, v in AGREE_CAP.items()})
        rows = []
        for p in (TODAY, OWNER):
            jit, twin = (explore(b, self.P.memory, p, impl=i) for i in ("jit", "twin"))
            rows.append({"policy": p, "bounds": f"ops {b.ops}, cpus {b.cpus}, skbs {b.skbs}, frags {b.frags}",
                         "states": jit.states, "twin states": twin.states, "edges": jit.edges,
                         "twin edges": twin.edges, "verdict": jit.verdict, "twin verdict": twin.verdict,
                         "same traces": jit.found == twin.found,
                         "numba states/s": jit.states / max(jit.seconds, 1e-9),
                         "twin states/s": twin.states / max(twin.seconds, 1e-9)})
        df = pd.DataFrame(rows)
        df["agree"] = ((df.states == df["twin states"]) & (df.edges == df["twin edges"])
                       & (df.verdict == df["twin verdict"]) & df["same traces"])
        return df.round({"numba states/s": 0, "twin states/s": 0})

    # -- every workload of the book
    @cached_property
    def units(self) -> costs.UnitCosts:
        return kit.unit_costs(self.P.measurements, "memcpy")

    @cached_property
    def unit_table(self) -> pd.DataFrame:
        return pd.DataFrame(self.units.rows())

    # -- which kernel
    rx_probe = kit.probe_result("kcount_rx")
    zc_probe = kit.probe_result("kcount")

    @cached_property
    def release(self) -> str:
        """The release whose rules the model follows (the kernel parameter; "running": the receive probe's kernel)."""
        return kit.kernel_release(self.P.kernel, self.P.measurements, self.rx_probe)

    @cached_property
    def kernel_label(self) -> str:
        return kit.kernel_label(self.release)

    @cached_property
    def other_release(self) -> str:
        """The kernel set beside the model's: 6.12 LTS, or the running kernel when the model follows 6.12."""
        if kernels.series(self.release) != kernels.LTS:
            return kernels.LTS
        return kit.kernel_release("running", self.P.measurements, self.rx_probe)

    @cached_property
    def kernel_table(self) -> pd.DataFrame:
        """What differs for this chapter between the model's kernel and the other (kernels.differences): the
        receive path's atomics today and with the owner (the defer list), devmem TX and its binding, and when a
        binding's memory is unmapped."""
        out = []
        rels = (self.release, self.other_release)
        rx = {r: Replays({**replays.config(self.P), "kernel": r}) for r in rels}
        mib = self.runs.nbytes / MiB
        for p in (TODAY, OWNER):
            out.append({"what": f"rx_gro, {DESIGNS[p]}: atomics per MiB",
                        **{kit.kernel_label(r): f"{rx[r].ledger('rx_gro', p).atomics / mib:.0f}" for r in rels},
                        "rule": "skb_defer_lockless"})
        for p in (TODAY, OWNER):
            out.append({"what": f"devmem_send, {DESIGNS[p]}: binding atomics per MiB",
                        **{kit.kernel_label(r): (f"{replays.binding_atomics(rx[r].ledger('devmem_send', p), rx[r].trace('devmem_send'), p) / mib:.0f}"
                                                 if "devmem_send" in workloads_on(r) else "no devmem TX") for r in rels},
                        "rule": "frag_ref_get_netmem"})
        out.append({"what": "a devmem binding's memory is unmapped",
                    **{kit.kernel_label(r): ("at its last put, through a workqueue (unbind_w)"
                                             if kernels.follows(r, "devmem_binding_free_deferred")
                                             else "at its last put, at once (RX only)") for r in rels},
                    "rule": "devmem_binding_free_deferred"})
        return pd.DataFrame(out).set_index("what")

    # -- the model against the running kernel
    @cached_property
    def comparison(self) -> pd.DataFrame:
        """The receive model against kcount_rx (the defer rule) and the send model against kcount's MSG_ZEROCOPY
        grid (shared infos released and completions, what the owner's refs rest on), one row per transfer and
        quantity (compare.COLUMNS)."""
        return compare.table([rx_rows(self.rx_probe), grid_rows(self.zc_probe)])

    @cached_property
    def comparison_table(self) -> pd.DataFrame:
        return self.comparison[compare.TABLE_COLUMNS + ["reason"]]

    @cached_property
    def live_grid(self) -> pd.DataFrame:
        """The kcount grid settings this run measured live (a quick run measures ``kcount.LIVE_GRID`` and takes the
        rest of the grid from the recording) against the recording's counts of the same settings and the model."""
        if self.zc_probe.source != "live":
            return pd.DataFrame(columns=compare.LIVE_COLUMNS)
        return compare.live_against_recorded(grid_rows(self.zc_probe), grid_rows(kit.probe("kcount", "recorded")))

    @cached_property
    def receive(self) -> dict:
        """rx_gro today and with the owner: atomics, line transfers and defer-list atomics per MiB."""
        mib = self.runs.nbytes / MiB
        out = {}
        for p in (TODAY, OWNER):
            led = self.runs.ledger("rx_gro", p)
            out[p] = {"atomics": led.atomics / mib, "bounces": led.bounces / mib, "defer": led.defer_atomics / mib,
                      "pp": led.pp_atomics / mib}
        out["deferred"] = self.runs.traced("rx_gro")[1]["deferred"] / mib
        return out

    # -- the owner's rules, its array, devmem
    @cached_property
    def binding(self) -> pd.DataFrame:
        return binding_table(self.bounds)

    @cached_property
    def invariant(self) -> pd.DataFrame:
        return invariant_table()

    @cached_property
    def shinfo(self) -> dict:
        """struct skb_shared_info as BTF gives it (the btf probe, live or recorded)."""
        return kit.probe("btf", self.P.measurements).data["structs"]["skb_shared_info"]

    @cached_property
    def owner_array(self) -> pd.DataFrame:
        return owner_array_table(self.shinfo)

    @cached_property
    def owner_array_fit(self) -> dict:
        """The owner array the chapter designs: the most slots one more cache line holds."""
        n = X.owner_array_fit(self.shinfo, ARRAY_INDEX)
        return X.owner_array_bytes(self.shinfo, n, ARRAY_INDEX)

    @cached_property
    def owner_array_costs(self) -> pd.DataFrame:
        return owner_array_costs()

    @cached_property
    def owner_array_costs_matrix(self) -> pd.DataFrame:
        c = self.owner_array_costs
        m = c.pivot_table(index="operation", columns="owners", values=["today", "owner array"], sort=False)
        m.columns = [f"{d}, {o} owner{'s' if o > 1 else ''}" for d, o in m.columns]
        keep = ["today, 1 owner"] + [f"owner array, {o} owner{'s' if o > 1 else ''}" for o in ARRAY_OWNERS]
        return m[keep].reindex([r["operation"] for r in X.owner_array_costs(ARRAY_FRAGS, 1)]).astype(int)

    @cached_property
    def owner_array_search(self) -> tuple[bool, dict]:
        return owner_array_search()

    @cached_property
    def devmem_tx(self) -> pd.DataFrame:
        return devmem_tx()

    @cached_property
    def runs(self) -> Replays:
        """The book's replays under the rules of the model's kernel."""
        return Replays({**replays.config(self.P), "kernel": self.release})

    @cached_property
    def writers(self) -> int:
        """CPUs that write devmem's binding at once: the workloads' CPUs."""
        return int(self.P.cpus)

    @cached_property
    def book(self) -> pd.DataFrame:
        return book_table(self.runs, self.units, self.P.line_gbit, self.writers, workloads_on(self.release))

    @cached_property
    def attribution(self) -> pd.DataFrame:
        """Today; today with pins; the owner with pins, for the send paths, devmem and receive."""
        names = [w for w in ("tcp_send", "tcp_gso", "splice_send", "devmem_send", "rx_gro")
                 if w in workloads_on(self.release)]
        return attribution_table(self.runs, self.units, self.P.line_gbit, self.writers, names)

    @cached_property
    def pin_attribution(self) -> pd.DataFrame:
        """The attribution on the pins table's send (tcp_send, 64 KiB sends, no loss, completions before ACKs), from
        order-0 pages and 64 KiB folios."""
        frames = []
        for fp in replays.PIN_FOLIOS:
            runs = Replays({**replays.config(dict(self.P, folio_pages=fp, loss_rate=0.0, send_size=64 * KiB,
                                                  txc_us=0.0)), "kernel": self.release})
            frames.append(replays.attribution(runs, "tcp_send", self.units, self.P.line_gbit, self.writers)
                          .assign(folio=f"{fp * 4} KiB"))
        return pd.concat(frames, ignore_index=True)

    @cached_property
    def attribution_summary(self) -> pd.DataFrame:
        """The attribution as the chapter shows it: atomics and ns per MiB per step, and what each step adds."""
        a = self.attribution
        return pd.DataFrame({"workload": a.workload, "step": a.step, "atomics/MiB": a.atomics_per_mib.round(0),
                             "ns/MiB": a.ns_per_mib.round(0),
                             "adds atomics/MiB": a.added_atomics_per_mib.round(0),
                             "adds ns/MiB": a.added_ns_per_mib.round(0),
                             "adds ns/MiB, range": [f"{lo:.0f} to {hi:.0f}" for lo, hi in
                                                    zip(a.added_ns_low, a.added_ns_high)]})

    @cached_property
    def book_summary(self) -> pd.DataFrame:
        """The table the book ends on (what the talk shows)."""
        b = self.book
        def whole(x):
            return x.round(0).astype(int)

        return pd.DataFrame({
            "workload": b.workload, "design": b.design, "atomics/MiB": whole(b.atomics_per_mib),
            "line transfers/MiB": whole(b.bounces_per_mib), "binding ns/MiB": whole(b.shared_line_ns),
            "peak pages": b.pages_peak, "ns/MiB": whole(b.ns_per_mib),
            f"% core at {self.P.line_gbit}G": (100 * b.core_share).round(2), "violations": b.violations})

    @cached_property
    def book_kinds(self) -> pd.DataFrame:
        """Atomics per MiB by refcount kind, every workload and both designs; devmem's binding on its own (today
        the engine counts it as owner atomics; the owner's one ref per send is added)."""
        b = self.book
        cols = {f"{k}_per_mib": replays.KIND_LABELS[k] for k in replays.KINDS}
        out = b[["workload", "design", *cols]].rename(columns=cols)
        owner = replays.KIND_LABELS["owner_atomics"]
        out[owner] = b.owner_atomics_per_mib - np.where(b.policy == TODAY, b.binding_per_mib, 0.0)
        out = out.rename(columns={owner: "owner"})
        out["binding"] = b.binding_per_mib
        return out.round(1)

    # -- where the design costs
    @cached_property
    def coalesce(self) -> pd.DataFrame:
        return coalesce_costs()

    @cached_property
    def copy(self) -> pd.DataFrame:
        return copy_costs(self.units, self.P.line_gbit).round(3)

    @cached_property
    def has_devmem(self) -> bool:
        """Whether the model's kernel has devmem TX (6.16 on)."""
        return "devmem_send" in workloads_on(self.release)

    @cached_property
    def contention(self) -> pd.DataFrame:
        if not self.has_devmem:
            return pd.DataFrame(columns=["writers", "source", "ns per update", "where"])
        return contention_table(self.runs, self.units, self.P.line_gbit).round(1)

    @cached_property
    def topology(self) -> pd.DataFrame:
        names = [w for w in ("tcp_send", "tcp_gso", "splice_send", "devmem_send") if w in workloads_on(self.release)]
        return topology_table(self.runs, self.units, self.P.line_gbit, self.writers, names).round(0)

    @cached_property
    def pins(self) -> pd.DataFrame:
        return pin_costs(self.P).round(3)

    @cached_property
    def headline(self) -> dict:
        """The explorer's searches at the run's bounds, and the book table's sums, as plain numbers."""
        today, owner, frags = (summary(self.main[k]) for k in ("today", "owner", "today_frags"))
        b = self.book.set_index(["workload", "policy"])
        return {  # the bounds are the point's parameters (ops, explore_cpus, skbs, frags)
            "owner_states": owner["states"], "owner_edges": owner["edges"],
            "owner_labelled_states": float(self.main["owner"].labelled or 0.0),
            "owner_complete": int(owner["complete"]), "owner_passes": int(owner["verdict"] == "passes"),
            "owner_seconds": owner["seconds"],
            "today_states": today["states"], "today_passes": int(today["verdict"] == "passes"),
            "today_steps": today["steps"],
            "today_frags_states": frags["states"], "today_frags_passes": int(frags["verdict"] == "passes"),
            "owner_violations_all_workloads": int(b.xs(OWNER, level="policy").violations.sum()),
            "today_violations_all_workloads": int(b.xs(TODAY, level="policy").violations.sum()),
            "devmem_binding_today_per_mib": (float(b.loc[("devmem_send", TODAY), "binding_per_mib"])
                                             if self.has_devmem else math.nan),
            "devmem_binding_owner_per_mib": (float(b.loc[("devmem_send", OWNER), "binding_per_mib"])
                                             if self.has_devmem else math.nan),
            "owner_array_slots": self.owner_array_fit["slots"],
            "shinfo_bytes_today": self.owner_array_fit["shinfo_bytes"],
            "shinfo_bytes_owner": self.owner_array_fit["new_shinfo_bytes"],
            "compared": compare.tally(self.comparison)[1], "agree": compare.tally(self.comparison)[0],
            "probes": kit.measured(self.units),
        }


def headline(**params) -> dict:
    """Chapter 08's result as one record: the explorer's state counts and verdicts at the run's bounds (today's
    single ref and the unified owner), and the book table's violations and binding atomics."""
    return Results(params).headline


# ---------------------------------------------------------------- the panel
#: The panel searches at these bounds (a re-render stays well under 250 ms).
PANEL_BOUNDS = X.Bounds(ops=3, cpus=2, skbs=2, frags=2, copies=1)
PANEL_RULES = ("(none)", *X.RULES)
#: The panel's own controls besides the memory (the chapter's parameter): the explorer's design choices.
PANEL_PARAMS = (
    Param("policy", str, "page_ref", "the design searched", choices=tuple(POLICIES)),
    Param("frags", str, "future", "today's frags (inside a folio) or the future's (spanning folios)",
          choices=("future", "today")),
    Param("rule_left_out", str, "(none)", "an owner rule to leave out (owner designs)", choices=PANEL_RULES),
)


def panel_data(params: Mapping, *, memory: str, policy: str, frags: str, rule_left_out: str) -> dict:
    """One search at the panel's bounds: its summary and the shortest counterexample told step by step (or,
    if it passes, the number of states it visited)."""
    rules = X.ALL_RULES if rule_left_out == "(none)" else X.ALL_RULES & ~X.RULES[rule_left_out]
    span = frags == "future"
    res = explore(PANEL_BOUNDS, memory, policy, span=span, rules=rules)
    s = summary(res)
    short = res.shortest()
    rows = W.walk(PANEL_BOUNDS, scenario(memory, policy, span=span, rules=rules),
                  rule_labels(short[1])) if short else []
    return {"summary": s, "walk": pd.DataFrame(rows, columns=WALK_COLUMNS), "bounds": PANEL_BOUNDS}


# ---------------------------------------------------------------- prose

def search_remark(R: Results) -> str:
    s, b = R.search, R.bounds
    o, t = s.loc["unified owner, future frags"], s.loc["today's rule, future frags"]
    owner = "finds no violation" if o.verdict == "passes" else f"finds {o.violations}"
    owner += f" in **{int(o.states):,}** states and {int(o.edges):,} steps"
    owner += f" ({o['labelled states']:,.0f} labelled states)" if o["labelled states"] else ""
    owner += "" if o.complete else ", **within the state cap** (the search stopped before exhausting the bounds)"
    today = (f"fails: a {t.violation.replace('_', '-')} **{int(t.steps)} steps** from the start, after "
             f"{int(t.states):,} states" if t.verdict == "fails" else
             f"finds nothing to break on this memory ({int(t.states):,} states)")
    f = s.loc["today's rule, today's frags"]
    return (f"At {b.ops} operations, {b.cpus} CPUs and {b.skbs} skbs of {b.frags} frags on `{R.P.memory}` memory, the "
            f"unified owner {owner}. Today's single ref on a frag spanning folios {today}. On today's frags, "
            f"today's rule {'passes' if f.verdict == 'passes' else 'fails'} ({int(f.states):,} states).")


def largest_searches() -> dict:
    """The largest searches checked on one machine, by policy (:data:`fraglife.paths.LARGEST_SEARCHES`, written by
    ``fraglife explore --single --record``); empty when none is recorded."""
    import json

    try:
        return json.loads(paths.LARGEST_SEARCHES.read_text())
    except (OSError, ValueError):
        return {}


def _bounds_text(b: Mapping) -> str:
    return f"{b['ops']} operations, {b['cpus']} CPUs and {b['skbs']} skbs of {b['frags']} frags"


def largest_remark(R: Results) -> str:
    """Markdown: the largest bounds checked (recorded), beside this run's."""
    rec = largest_searches()
    o, t = rec.get(OWNER), rec.get(TODAY)
    if o is None:
        return "No search larger than this run's is recorded (`fraglife explore --single --record`)."
    owner = ("finds no violation" if o["verdict"] == "passes" else
             f"fails ({o['shortest']['violation']} in {o['shortest']['steps']} steps)")
    owner += f" in all **{o['states']:,}** states" if o["complete"] else f" in {o['states']:,} states (cut short)"
    today = ""
    if t is not None and t["bounds"] == o["bounds"]:
        cut = "" if t["complete"] else ", where the state cap stopped it"
        today = (f" Today's rule there fails: {t['shortest']['violation'].replace('_', '-')} in "
                 f"{t['shortest']['steps']} steps, {t['states']:,} states searched{cut}." if t["shortest"] else
                 f" Today's rule there finds nothing ({t['states']:,} states).")
    b = R.bounds
    m = o["machine"]
    return (f"**The largest bounds checked:** {_bounds_text(o['bounds'])} on `{o['kinds'].replace(',', '+')}` "
            f"memory{', frags spanning folios' if o['span'] else ''}: the unified owner {owner} "
            f"({o['edges']:,} steps, {o['seconds']:.3g} s, {o['cpu_seconds']:.3g} s of CPU, on one core of "
            f"{m['cpu']}, {m['cores']} cores, at {o['bytes_per_state']:.3g} bytes a stored state; the chance that two "
            f"states shared a 64-bit fingerprint is below {o['collision_bound']:.1e}).{today} Recorded on "
            f"{o['date']} at commit {o['commit']} by `{o['command']}`. This run searched "
            f"{_bounds_text(vars(b))}.")


def mutant_remark(R: Results) -> str:
    failing, b = R.mutants.iloc[1:], R.mutant_bounds
    return (f"Left out one at a time, {int((failing.verdict == 'fails').sum())} of the {len(failing)} rules give a "
            f"violation within {int(failing.steps.min())} to {int(failing.steps.max())} steps "
            f"({', '.join(sorted(set(failing.violation) - {''}))}), at {b.ops} operations, {b.skbs} skbs, {b.frags} "
            f"frags and {b.cpus} CPUs.")


def _names(ws) -> str:
    return ", ".join(f"`{w}`" for w in ws)


def book_remark(R: Results) -> str:
    b = R.book.set_index(["workload", "policy"])
    t, o = b.xs(TODAY, level="policy"), b.xs(OWNER, level="policy")
    names = list(dict.fromkeys(R.book.workload))
    today_ws = [w for w in names if workloads.ALL[w].today]
    future_ws = [w for w in names if w not in today_ws]
    cheaper = [w for w in names if o.loc[w, "ns_per_mib"] < t.loc[w, "ns_per_mib"]]
    dearer = [w for w in names if o.loc[w, "ns_per_mib"] > t.loc[w, "ns_per_mib"]]
    same = [w for w in names if w not in cheaper and w not in dearer]
    out = (f"Over the {len(b) // 2} workloads at {R.P.line_gbit} Gbit/s, the unified owner takes less time than "
           f"today on {_names(cheaper) or 'none'}{'; more on ' + _names(dearer) if dearer else ''}"
           f"{'; the same on ' + _names(same) if same else ''}. ")
    if "rx_gro" in b.index.get_level_values(0):
        rt, ro = R.runs.ledger("rx_gro", TODAY), R.runs.ledger("rx_gro", OWNER)
        mib = R.runs.nbytes / MiB
        out += (f"On `rx_gro`: {rt.atomics / mib:.0f} atomics per MiB today and {ro.atomics / mib:.0f} with the "
                f"owner, {ro.ref_by_op[T.COALESCE] / mib:.0f} of them given back at coalesce; line transfers "
                f"{rt.bounces / mib:.0f} and {ro.bounces / mib:.0f} per MiB. ")
    out += (f"Violations: **{int(o.violations.sum())}** with the owner on every workload; today "
            f"{int(t.loc[today_ws].violations.sum())} on today's workloads")
    if future_ws:
        out += f" and **{int(t.loc[future_ws].violations.sum())}** on the thread's future ({_names(future_ws)})"
    return out + "."


def _fmt(value: float, low: float | None = None, high: float | None = None, unit: str = "") -> str:
    return answers.format_number(value, low, high, unit)


def _ns(row, sign: float = 1.0) -> str:
    lo, hi = sorted((sign * row.added_ns_low, sign * row.added_ns_high))
    v = sign * row.added_ns_per_mib
    return _fmt(v, min(lo, v), max(hi, v), "ns/MiB")


def _adds(row) -> str:
    """What a step of the attribution adds, in words: "saves 1,180 ns/MiB (...)" or "adds ..."."""
    if abs(row.added_ns_per_mib) < 0.5 and abs(row.added_atomics_per_mib) < 0.5:
        return "changes nothing"
    if row.added_ns_per_mib < 0:
        return f"saves {_ns(row, -1.0)} ({_fmt(-row.added_atomics_per_mib)} atomics/MiB fewer)"
    return f"adds {_ns(row)} ({_fmt(row.added_atomics_per_mib)} atomics/MiB more)"


def attribution_remark(R: Results) -> str:
    """Markdown: per workload, what the pinning change alone adds and what the owner adds to it."""
    lines = []
    for w in dict.fromkeys(R.attribution.workload):
        a = R.attribution[R.attribution.workload == w].set_index("step")
        t, pins, owner = a.loc["today"], a.loc["today with pins"], a.loc["owner with pins"]
        pin = ("the pinning change leaves it alone (no user memory)" if pins.policy == TODAY
               else f"the pinning change alone {_adds(pins)}")
        lines.append(f"- `{w}`: today {_fmt(t.ns_per_mib, t.ns_low, t.ns_high, 'ns/MiB')}; {pin}; the owner then "
                     f"{_adds(owner)}.")
    return "\n".join(lines)


def receive_remark(R: Results) -> str:
    rx, c = R.receive, R.comparison
    share = c[c.quantity == "deferred_share"].set_index("transfer")
    k = ", ".join(f"{kit.pct(v)} ({t.replace('_', ' ')})" for t, v in share.kernel.items())
    same = rx[OWNER]["atomics"] == rx[TODAY]["atomics"] and rx[OWNER]["bounces"] == rx[TODAY]["bounces"]
    return (f"The reader's frees go back to the CPU that allocated the skbs: the kernel ran {k} of them there, the "
            f"model all ({rx['deferred']:.0f} skbs per MiB deferred). So `rx_gro` takes "
            f"{rx[TODAY]['atomics']:.0f} atomics and {rx[TODAY]['bounces']:.0f} line transfers per MiB today, "
            f"{rx[TODAY]['defer']:.0f} of them on the defer list, and "
            + ("exactly as many with the owner: page_pool's pp_ref_count already is the owner, and the defer list "
               "left no line transfer for it to save." if same else
               f"{rx[OWNER]['atomics']:.0f} and {rx[OWNER]['bounces']:.0f} with the owner."))


def kernel_remark(R: Results) -> str:
    a, b = kit.kernel_label(R.release), kit.kernel_label(R.other_release)
    dev = "has devmem TX (upstream's rule: a binding ref per frag ref)" if R.has_devmem else "has no devmem TX"
    return (f"The model follows {a}, which {dev}; beside it, {b}. What moves is the receive path's defer list "
            f"(its atomics, not where the frees run) and whether devmem TX exists; the explorer's verdicts are the "
            f"same on both (on 6.12 a binding's memory is unmapped at once at its last put, on 6.16 on through a "
            f"workqueue: either way not before it).")


def comparison_remark(R: Results) -> str:
    agree, n = compare.tally(R.comparison)
    grid = R.zc_probe.data.get("grid", [])
    src = "measured now" if R.rx_probe.source == "live" else f"from the recording ({R.rx_probe.kernel})"
    return (f"**{agree} of {n}** quantities agree {compare.RULE}; the kernel's counts are {src}. The reader's frees "
            f"deferred to the NAPI CPU confirm the receive rule; the shared infos freed and the completions per MiB "
            f"(one owner release per ubuf_info it replaces) are what the owner's refs rest on."
            + compare.live_remark(R.live_grid, len(grid), [g.get("recorded_at") for g in grid
                                                           if g.get("source") == "recorded"])
            + " " + compare.gaps_remark(R.comparison[R.comparison.agrees == False]))  # noqa: E712


def owner_array_remark(R: Results) -> str:
    f = R.owner_array_fit
    ok, rows = R.owner_array_search
    one = R.owner_array_costs[R.owner_array_costs.owners == 1]
    return (f"**Where the owner lives.** `skb_frag_t` has no room, so a shared info carries an owner array: slot 0 is "
            f"today's `destructor_arg`, {f['slots'] - 1} more pointers and a {f['index_bits']}-bit slot index per frag "
            f"({f['index_bytes']} B for {f['max_skb_frags']} frags). `struct skb_shared_info` grows from "
            f"**{f['shinfo_bytes']} B to {f['new_shinfo_bytes']} B**, one more {X.CACHE_LINE}-byte line per skb "
            f"({f['shinfo_lines']} to {f['new_shinfo_lines']} lines), from the size BTF gives. On a 17-frag skb of one "
            f"owner the operations counted take {int(one['owner array'].sum())} refcount atomics against "
            f"{int(one['today'].sum())} today. An skb that would need slot {f['slots'] + 1} takes the fallback: with "
            f"one slot and bounds that exceed it the search ran the fallback {rows['refuse']['fallbacks']:,} times "
            f"refusing and {rows['copy']['fallbacks']:,} times copying, and "
            f"{'both pass' if ok else 'NOT both pass'}.")


def invariant_remark(R: Results) -> str:
    inv = R.invariant
    m = inv.iloc[1:]
    return (f"With every rule the invariant holds in all **{int(inv.iloc[0].states):,}** states the owner reaches at "
            f"{INVARIANT_BOUNDS.ops} operations, {INVARIANT_BOUNDS.skbs} skbs of {INVARIANT_BOUNDS.frags} frags; each "
            f"of the {len(m)} rules that re-establish it, left out, breaks it first after "
            f"{int(m['first at step'].min())} to {int(m['first at step'].max())} steps.")


def devmem_remark(R: Results) -> str:
    d = R.devmem_tx.set_index("devmem TX")
    bad = d.loc["socket+orphan"]
    has = "follows upstream's rule" if R.has_devmem else "has no devmem TX"
    return (f"Devmem TX cannot be observed here (no device for it, the helper is inline, no kprobes): which rule a "
            f"kernel has follows from its release, and {kit.kernel_label(R.release)} {has}. The prototype's rule passes while "
            f"every skb keeps its socket; orphaned first, it gives a {bad.violation.replace('_', '-')} in "
            f"{int(bad.steps)} steps.")


def contention_remark(R: Results) -> str:
    if not R.has_devmem:
        return f"{kit.kernel_label(R.release)} has no devmem TX: no binding to share."
    c = R.contention.set_index("writers")
    most, hi = max(WRITERS), c[c.source == "measured"].index.max()
    d = R.book.set_index(["workload", "policy"]).loc["devmem_send"]
    binding = (f"On `devmem_send` the binding takes **{d.loc[TODAY, 'binding_per_mib']:.0f}** atomics per MiB today "
               f"and **{d.loc[OWNER, 'binding_per_mib']:.1f}** with the per-send owner")
    return (f"{binding}. Written by {kit.plural(R.writers, 'CPU')} at once ({pacing(R.units)} updates, measured here "
            f"up to {hi} writers) it costs {d.loc[TODAY, 'shared_line_ns']:.0f} ns per MiB today against "
            f"{d.loc[OWNER, 'shared_line_ns']:.1f} with the owner. Beyond {hi} writers each update is priced at a cited "
            f"line transfer ({c.loc[most, 'where']} at {most}: {c.loc[most, 'ns per update']:.0f} ns), not an "
            f"extrapolation: today's devmem send then takes {c.loc[most, 'today ns/MiB']:.0f} ns per MiB, the "
            f"owner's {c.loc[most, 'unified owner ns/MiB']:.0f}.")


def _tso_gso(row: pd.Series, design: str) -> str:
    return f"{row[f'{design}, TSO']:.0f} and {row[f'{design}, GSO']:.0f}"


def coalesce_remark(R: Results) -> str:
    co = R.coalesce
    one, each = co.iloc[0], co.iloc[-1]
    return (f"Ref atomics sent whole and segmented: from one pipe the owner takes {_tso_gso(one, 'unified owner')} "
            f"(today {_tso_gso(one, 'today')}); from {kit.plural(int(co.index[-1]), 'pipe')}, "
            f"{_tso_gso(each, 'unified owner')} (today {_tso_gso(each, 'today')}).")


def copy_remark(R: Results) -> str:
    cp = R.copy.set_index("design")
    atomics, share = cp["ref atomics"].astype(int), cp["core share if every skb is copied"]
    return (f"A 64 KiB skb's memcpy takes **{cp.loc['today', 'memcpy ns']:.0f} ns** here, around {atomics['today']} "
            f"ref atomics today and {atomics['unified owner']} with the owner: copying every skb would take "
            f"{kit.pct(share['today'])} of a core at {R.P.line_gbit} Gbit/s today, {kit.pct(share['unified owner'])} "
            f"with the owner.")


def pins_remark(R: Results) -> str:
    pins = R.pins.set_index("folio")["owner/today"]
    return (f"The owner takes **{pins['4 KiB']:.2f}x** today's atomics on a TSO zerocopy send from order-0 pages "
            f"and **{pins['64 KiB']:.2f}x** from 64 KiB folios.")


def _owner_step(R: Results, workload: str):
    a = R.attribution
    return a[(a.workload == workload) & (a.step == "owner with pins")].iloc[0]


def conclusion(R: Results) -> str:
    """Markdown: the proposal's checked numbers in three points, as a reviewer would read them."""
    P, b = R.P, R.bounds
    s = R.search
    o, t = s.loc["unified owner, future frags"], s.loc["today's rule, future frags"]
    m = R.mutants.iloc[1:]
    bk = R.book.set_index(["workload", "policy"])
    t_all, o_all = bk.xs(TODAY, level="policy"), bk.xs(OWNER, level="policy")
    f = R.owner_array_fit
    today = (f"fails in **{int(t.steps)}** steps ({t.violation.replace('_', ' ')})" if t.verdict == "fails"
             else "has nothing to break on this memory")
    cost = "; ".join(f"{_adds(_owner_step(R, w))} on `{w}`" for w in ("tcp_send", "tcp_gso"))
    devmem = (f"devmem's binding goes from {bk.loc[('devmem_send', TODAY), 'binding_per_mib']:.0f} to "
              f"{bk.loc[('devmem_send', OWNER), 'binding_per_mib']:.1f} atomics per MiB"
              if R.has_devmem else f"{kit.kernel_label(R.release)} has no devmem TX")
    return kit.points(
        f"**Safe.** Every interleaving of up to {b.ops} operations on {b.cpus} CPUs, {b.skbs} skbs of {b.frags} frags "
        f"over `{P.memory}` memory: the owner {'passes' if o.verdict == 'passes' else 'fails'} in "
        f"**{int(o.states):,}** states{'' if o.complete else ' (state cap reached)'}; today's single page ref on a "
        f"frag spanning folios {today}. Each of its {len(m)} rules, left out, fails within {int(m.steps.min())} to "
        f"{int(m.steps.max())} steps; over every workload it frees no page early "
        f"(**{int(o_all.violations.sum())}** violations, today {int(t_all.violations.sum())}).",
        f"**Where it lives.** An owner array of {f['slots']} slots in `skb_shared_info`: {f['shinfo_bytes']} B to "
        f"**{f['new_shinfo_bytes']} B**, one cache line per skb; when it is full, refusing the operation or copying "
        f"the skb both pass.",
        f"**What it costs, over the pins the pinning change needs anyway.** The owner {cost}; {devmem}; on receive "
        f"it changes nothing (the frees already run on the NAPI CPU).")


def answer(R: Results) -> answers.Answer:
    """Chapter 08's row of the answers table: the proposal (1), from this run's numbers."""
    o = R.search.loc["unified owner, future frags"]
    t = R.search.loc["today's rule, future frags"]
    f = R.owner_array_fit
    w = "tcp_send"
    step = _owner_step(R, w)
    v, lo, hi = -step.added_ns_per_mib, -step.added_ns_high, -step.added_ns_low
    number = answers.Number(v, min(lo, hi, v), max(lo, hi, v), unit="ns/MiB",
                            what=f"CPU the owner saves over today with pins ({w}, {kit.kernel_label(R.release)})")
    fails = f"fails in {int(t.steps)} steps" if t.verdict == "fails" else "has nothing to break"
    sentence = (f"One owner per buffer, referenced once per shared info, passes all {_fmt(int(o.states))} states "
                f"searched where today's single page ref on a multi-folio frag {fails}, costs one "
                f"{X.CACHE_LINE}-byte line per skb for an owner array of {f['slots']} slots, and on `{w}` "
                f"{'saves' if v >= 0 else 'adds'} {number.text if v >= 0 else _fmt(-v, -max(lo, hi, v), -min(lo, hi, v), 'ns/MiB')} "
                f"over the pins it needs anyway.")
    agree, n = compare.tally(R.comparison)
    evidence = answers.cross_checked(
        f"kcount_rx's page_pool receive (frees deferred to the NAPI CPU) and kcount's MSG_ZEROCOPY transfers (shared "
        f"infos freed, completions), {agree} of {n} tracepoint counts agree; safety searched exhaustively by the "
        f"explorer", R.rx_probe.source if R.rx_probe.source in ("live", "recorded") else "")
    return answers.Answer("1", sentence, "agree, at a cost" if v >= 0 else "open", number, evidence)


# ---------------------------------------------------------------- claims
def _agree(R: Results):
    a = R.agreement
    return bool(a.agree.all()), {"states": a.states.tolist(), "twin_states": a["twin states"].tolist()}


def _one_ref_uaf(R: Results):
    v = R.verdicts
    rows = v[(v.policy == TODAY) & (v.frags == "future") & v.memory.isin(["user", "pipe", "user+pipe"])]
    ok = bool((rows.violation == "use_after_free").all() and (rows.steps <= 4).all())
    return ok, {m: int(s) for m, s in zip(rows.memory, rows.steps)}


def _today_frags_safe(R: Results):
    v = R.verdicts
    rows = v[v.frags == "today"]
    return bool((rows.verdict == "passes").all()), {m: int(s) for m, s in zip(rows.memory, rows.states)}


def _owner_passes(R: Results):
    v = R.verdicts
    rows = v[(v.policy == OWNER) & (v.frags == "future")]
    return bool((rows.verdict == "passes").all()), {m: int(s) for m, s in zip(rows.memory, rows.states)}


def _per_send_designs_pass(R: Results):
    v = R.verdicts
    rows = v[v.policy.isin(["page_ref_all", "owner_frag", "owner_clone"]) & (v.frags == "future")]
    return bool((rows.verdict == "passes").all()), {"failing": rows[rows.verdict != "passes"].policy.tolist()}


def _rules_needed(R: Results):
    m = R.mutants
    ok = m.iloc[0].verdict == "passes" and bool((m.iloc[1:].verdict == "fails").all())
    return ok, {r: int(s) for r, s in zip(m.index[1:], m.steps.iloc[1:])}


def _binding_protects_pinned_only(R: Results):
    b = R.binding.set_index("memory")
    kept = b[~b["holder frees it"]]
    ok = bool(set(kept.index) == {"user", "devmem"} and (kept.verdict == "passes").all())
    return ok, {m: (f"{r.violation} in {r.steps} steps" if r.verdict == "fails" else "passes")
                for m, r in b.iterrows()}


def _binding_fails_where_the_holder_frees(R: Results):
    return E.binding_fails_only_where_the_holder_frees(R.bounds, MEMORY)


def _one_invariant(R: Results):
    inv = R.invariant
    whole, mutants = inv.iloc[0], inv.iloc[1:]
    ok = bool(whole["breaking states"] == 0 and whole.verdict == "passes" and (mutants["breaking states"] > 0).all()
              and (mutants.verdict == "fails").all())
    return ok, {"states": int(whole.states), "breaking_states": int(whole["breaking states"]),
                "first_break_step": {r: int(d) for r, d in mutants["first at step"].items()}}


def _owner_array_safe(R: Results):
    ok, rows = R.owner_array_search
    return ok, {fb: {"exceeds": r["exceeds"], "fallbacks": r["fallbacks"], "verdict": r["verdict"],
                     "states": r["states"]} for fb, r in rows.items()}


def _owner_array_line(R: Results):
    f, c = R.owner_array_fit, R.owner_array_costs
    one = c[c.owners == 1].set_index("operation")
    dearer = sorted(one.index[one["owner array"] > one["today"]])
    ok = bool(f["added_alloc_bytes"] == X.CACHE_LINE and f["slots"] >= 2
              and one["owner array"].sum() < one["today"].sum() and dearer == ["coalesce"])
    return ok, {"slots": f["slots"], "index_bits": f["index_bits"], "shinfo_bytes": f["shinfo_bytes"],
                "new_shinfo_bytes": f["new_shinfo_bytes"], "added_alloc_bytes": f["added_alloc_bytes"],
                "one_owner_today": int(one["today"].sum()), "one_owner_array": int(one["owner array"].sum()),
                "dearer_with_one_owner": dearer}


def _devmem_prototype(R: Results):
    d = R.devmem_tx.set_index("devmem TX")
    bad = d.loc["socket+orphan"]
    ok = bool(d.loc["frag", "verdict"] == "passes" and d.loc["socket", "verdict"] == "passes"
              and bad.verdict == "fails" and bad.violation == "use_after_free" and bad["orphan in the trace"])
    return ok, {tx: (f"{r.violation} in {r.steps} steps" if r.verdict == "fails" else "passes")
                for tx, r in d.iterrows()}


def _receive_deferred(R: Results):
    c = R.comparison
    share = c[c.quantity == "deferred_share"]
    rx = R.receive
    ok = bool(len(share) and (share.agrees == True).all()  # noqa: E712
              and rx[OWNER]["bounces"] <= rx[TODAY]["bounces"] and rx[OWNER]["atomics"] <= rx[TODAY]["atomics"])
    return ok, {"kernel_deferred_share": {t: round(float(k), 4) for t, k in zip(share.transfer, share.kernel)},
                "model_deferred_share": {t: round(float(m), 4) for t, m in zip(share.transfer, share.model)},
                "rx_gro_today": {k: round(v, 1) for k, v in rx[TODAY].items()},
                "rx_gro_owner": {k: round(v, 1) for k, v in rx[OWNER].items()}}


def _follows_the_kernel(R: Results):
    return compare.follows(R.comparison, R.rx_probe.source)


def _owner_clean_on_workloads(R: Results):
    b = R.book
    owner = b[b.policy == OWNER]
    today = b[(b.policy == TODAY) & b["today's kernel"]]
    return bool((owner.violations == 0).all() and (today.violations == 0).all()), {
        "owner": int(owner.violations.sum()), "today_on_todays_workloads": int(today.violations.sum())}


def _binding_off_hot_path(R: Results):
    if not R.has_devmem:
        return True, {"devmem_tx": f"none on {R.kernel_label}"}
    b = R.book.set_index(["workload", "policy"])
    t, o = b.loc[("devmem_send", TODAY), "binding_per_mib"], b.loc[("devmem_send", OWNER), "binding_per_mib"]
    return bool(o < t), {"today": round(float(t), 1), "owner": round(float(o), 2)}


def _pins_dearer(R: Results):
    p, a = R.pins, R.pin_attribution
    pins, owner = a[a.step == "today with pins"], a[a.step == "owner with pins"]
    ok = bool((p["owner/today"] > 1).all() and (pins.added_atomics_per_mib > 0).all()
              and (owner.added_atomics_per_mib <= 0).all())
    return ok, {"owner_over_today": {f: round(float(x), 3) for f, x in zip(p.folio, p["owner/today"])},
                "pins_add_atomics_per_mib": [round(float(x), 1) for x in pins.added_atomics_per_mib],
                "owner_adds_atomics_per_mib": [round(float(x), 1) for x in owner.added_atomics_per_mib]}


def _owner_refs_grow_with_owners(R: Results):
    c = R.coalesce
    tso, gso = c["unified owner, TSO"], c["unified owner, GSO"]
    one, each = c.iloc[0], c.iloc[-1]
    ok = bool(tso.is_monotonic_increasing and gso.is_monotonic_increasing
              and one["unified owner, TSO"] < one["today, TSO"] and one["unified owner, GSO"] < one["today, GSO"]
              and each["unified owner, TSO"] > each["today, TSO"])
    return ok, {"owner_tso": tso.tolist(), "today_tso": c["today, TSO"].tolist(), "owner_gso": gso.tolist(),
                "today_gso": c["today, GSO"].tolist()}


def _copy_dominates(R: Results):
    c = R.copy.set_index("design")
    ok = bool((c["memcpy ns"] > c["refs ns"]).all())
    return ok, {"memcpy_ns": round(float(c.loc["today", "memcpy ns"]), 1),
                "today_refs_ns": round(float(c.loc["today", "refs ns"]), 1)}


def _shared_line_measured_and_cited(R: Results):
    if not R.has_devmem:
        return True, {"devmem_tx": f"none on {R.kernel_label}"}
    c = R.contention.set_index("writers")
    measured, cited = c[c.source == "measured"], c[c.source == "cited"]
    hi = max(R.units.curve("contended").threads) if "contended" in R.units.curves else 1
    ok = bool(len(measured) and measured.index.max() <= hi and (cited.index > hi).all()
              and cited["ns per update"].is_monotonic_increasing
              and (c["unified owner binding ns/MiB"] <= c["today binding ns/MiB"]).all())
    return ok, {"measured_writers": [int(k) for k in measured.index],
                "measured_ns_per_update": [round(float(v), 1) for v in measured["ns per update"]],
                "cited_writers": [int(k) for k in cited.index],
                "cited_ns_per_update": [round(float(v), 1) for v in cited["ns per update"]]}


#: Claims over the probes' counts of this kernel (per_point=False) are the chapter run's, not a sweep point's.
def _largest(R: Results):
    rec = largest_searches()
    o, t = rec.get(OWNER), rec.get(TODAY)
    ok = (o is not None and t is not None and o["complete"] and o["verdict"] == "passes"
          and t["bounds"] == o["bounds"] and t["verdict"] == "fails")
    return ok, {"bounds": o and o["bounds"], "owner_states": o and o["states"], "today_states": t and t["states"],
                "today_shortest": t and t["shortest"], "commit": o and o["commit"]}


CLAIMS = (
    Claim("explorer_agrees_with_its_twin",
          "At small bounds the compiled explorer and its Python twin visit the same states and steps and find "
          "the same violations with the same shortest traces.",
          "holds", _agree),
    Claim("the_largest_checked_bounds_pass_for_the_owner",
          "At the largest bounds checked (recorded, single process), the unified owner finds no violation in a "
          "complete search and today's rule fails there.",
          "holds", _largest, per_point=False),
    Claim("one_ref_for_a_multi_folio_frag_is_use_after_free",
          "With frags that span folios (the thread's future), today's single page ref per frag lets a page be "
          "freed under a live frag, on user memory and on pipe pages, within 4 steps.",
          "holds", _one_ref_uaf),
    Claim("todays_frags_are_safe_with_one_ref",
          "With today's frags, which never leave a folio, today's rules show no violation on any kind of memory "
          "in the states explored.",
          "holds", _today_frags_safe),
    Claim("unified_owner_passes",
          "The unified owner (one ref per distinct owner per shared info, shared by clones) shows no "
          "use-after-free, early completion, double release or leak on any kind of memory in the states "
          "explored (all the bounds allow, unless a search reached its cap), frags spanning folios included.",
          "holds", _owner_passes),
    Claim("every_per_send_design_passes",
          "A ref per folio covered, an owner ref per frag and an owner ref per skb pass too: what fails is one "
          "ref for memory it does not own.",
          "holds", _per_send_designs_pass),
    Claim("each_owner_rule_is_needed",
          "Leaving out any one of the owner's ten rules (clones share through dataref; split, segment, expand_head, "
          "coalesce and shift ref the owners of what they create; the copy fallback drops the old owner; a pipe "
          "buffer filled by skb_splice_bits() and a tcp_zerocopy_receive() mapping hold the owner; a frag_list "
          "child is released with its parent) gives a violation the explorer finds.",
          "holds", _rules_needed),
    Claim("owner_rules_are_one_invariant",
          "The owner's rules are one invariant: each shared info holds one ref on each distinct owner of its frags "
          "and every refcount equals the references its holders hold. It holds in every state the owner reaches "
          "(user memory and a pipe, 3 operations, 2 skbs of 2 frags); leaving out any one of the six rules that "
          "re-establish it (split, segment, expand_head, coalesce, shift, the copy fallback) breaks it within three "
          "steps and gives a violation.",
          "holds", _one_invariant),
    Claim("binding_fails_where_the_holder_frees",
          "Devmem's rule applied to all memory (one shared binding refcount per frag reference) fails exactly for "
          "memory whose holder frees it on its own schedule: pipe pages, page_pool pages and kmalloc'd memory go "
          "back at the holder's release under a live frag; every other memory passes.",
          "holds", _binding_fails_where_the_holder_frees),
    Claim("binding_protects_only_pinned_memory",
          "Rewritten, the earlier model freed a dma-buf at unbind: net_devmem_unbind_dmabuf() drops only the "
          "netlink socket's ref, and the memory stays mapped to the binding's last put (net/core/devmem.c, v6.18). "
          "So devmem's rule applied to all memory keeps exactly the memory pinned for the send: user pages pinned "
          "to their completion and the dma-buf pinned by its binding.",
          "holds", _binding_protects_pinned_only),
    Claim("owner_array_fallback_is_safe",
          "An owner array of one slot, at bounds where an skb needs more owners than it holds, reaches its "
          "fallback and passes with either: refusing the operation (TCP starts a new skb) or copying the skb "
          "into kernel pages under one owner.",
          "holds", _owner_array_safe),
    Claim("owner_array_costs_one_cache_line",
          "Where a frag's owner is stored: an owner array in skb_shared_info (slot 0 is today's destructor_arg, a "
          "few bits per frag name the slot) with as many slots as one more cache line holds grows its allocation "
          "by one 64-byte line per skb, from the size BTF gives; on a 17-frag skb of one owner it takes fewer "
          "refcount atomics than today over the operations counted, more only at coalesce.",
          "holds", _owner_array_line),
    Claim("devmem_prototype_needs_skb_sk",
          "Devmem TX with no binding ref per frag (the prototype fork, never released: the skb holds its socket, "
          "the socket the binding) is safe only while every skb keeps its socket to its free: an skb_orphan() "
          "first gives a use-after-free; upstream's binding ref per frag ref (6.16 on) passes.",
          "holds", _devmem_prototype),
    Claim("owner_changes_nothing_on_receive",
          "The reader's skb frees run on the CPU that allocated them (skb_attempt_defer_free()): the kernel defers "
          "them here as the model does, so today's receive path already takes its page_pool refs where the pages "
          "live, and the owner takes no more atomics or line transfers than today on rx_gro.",
          "holds", _receive_deferred),
    Claim("the_model_follows_the_kernel",
          f"Compared with the running kernel's counts (receive through veth's page_pool, MSG_ZEROCOPY transfers), "
          f"every quantity agrees {compare.RULE} or carries the kernel mechanism the model leaves out.",
          "holds", _follows_the_kernel, per_point=False),
    Claim("owner_frees_nothing_early_on_any_workload",
          "Replayed over every workload of the book, the unified owner frees no page under a live frag and leaks "
          "nothing; today's rules do neither on today's workloads.",
          "holds", _owner_clean_on_workloads),
    Claim("binding_line_leaves_the_hot_path",
          "On devmem TX (6.16 on) the unified owner takes fewer atomics on the shared binding than today's ref per "
          "frag.",
          "holds", _binding_off_hot_path),
    Claim("pins_cost_more_than_gup_refs",
          "On a TSO zerocopy send of 64 KiB sends with no loss and completions before ACKs, from order-0 pages "
          "and from 64 KiB folios, the owner with pins takes more atomics than today's GUP refs, and the pins are "
          "why: on that send the pinning change alone adds atomics, and the owner, charged only for what it adds "
          "to the pins, takes no more.",
          "holds", _pins_dearer),
    Claim("coalescing_across_owners_costs_a_ref_per_owner",
          "The owner's ref atomics on a 64 KiB skb of sixteen pipe pages grow with the distinct owners in it: "
          "below today's with one owner, sent whole or segmented, and above today's with one owner per frag "
          "sent whole.",
          "holds", _owner_refs_grow_with_owners),
    Claim("the_copy_costs_more_than_its_refs",
          "In the copy fallback the memcpy of a 64 KiB skb costs more than the references either design drops.",
          "holds", _copy_dominates),
    Claim("a_shared_line_gets_dearer_with_writers",
          "Rewritten, the binding was priced past this machine's CPUs by extrapolating its curve: now each update "
          "of devmem's binding is measured here up to the writers this machine has and cited beyond (one line "
          "transfer of the farthest class the writers span on an EPYC 7R13: nviennot/core-to-core-latency; "
          "Schweizer et al., PACT 2015), never extrapolated. The cited cost grows with the writers (same LLC, "
          "other LLC, other socket), and the owner's binding costs no more than today's at every count.",
          "holds", _shared_line_measured_and_cited),
)
