"""Properties of the lifetime model that must hold on every complete trace."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fraglife.chapters import refcount_removal as refcount
from fraglife.model import engine, trace as T, workloads
from fraglife.model.policies import POLICIES

from strategies import workload_params, workload_traces

SAFE = ("page_ref_all", "owner_frag", "owner_skb", "owner_clone")


@settings(max_examples=30)
@given(case=workload_traces())
def test_every_policy_gives_everything_back(case):
    """A complete trace ends with no reference held, no page allocated, no skb alive, no invalid event."""
    _name, _params, tr = case
    for policy in POLICIES:
        led = engine.replay(tr, policy)
        assert led.trace_errors == 0, policy
        assert (led.leaked_refs, led.leaked_pages, led.leaked_skbs) == (0, 0, 0), policy
        assert led.early_complete == 0, policy


@settings(max_examples=30)
@given(case=workload_traces())
def test_safe_policies_never_free_what_a_frag_points_at(case):
    _name, _params, tr = case
    for policy in SAFE:
        led = engine.replay(tr, policy)
        assert led.uaf_pages == 0 and led.bad_refs == 0, policy


@settings(max_examples=25)
@given(params=workload_params, folio_pages=st.sampled_from([1, 2, 4]),
       frag_pages=st.sampled_from([2, 4, 8, 16]))
def test_one_page_ref_for_a_multi_folio_frag_is_use_after_free(params, folio_pages, frag_pages):
    """The thread's warning: a frag over several folios, one ref on the first, holder lets go."""
    if frag_pages <= folio_pages:
        frag_pages = folio_pages * 2
    p = dict(params, folio_pages=folio_pages, frag_size=frag_pages * T.PAGE_SIZE)
    tr = workloads.generate("multipage_send", **p)
    assert engine.replay(tr, "page_ref").uaf_pages > 0
    for policy in SAFE:
        assert engine.replay(tr, policy).uaf_pages == 0, policy


@settings(max_examples=25)
@given(params=workload_params, folio_pages=st.sampled_from([1, 4, 16]))
def test_one_page_ref_is_enough_while_frags_stay_inside_a_folio(params, folio_pages):
    """Today's rule is correct as long as no frag crosses a folio boundary."""
    p = dict(params, folio_pages=folio_pages, frag_size=folio_pages * T.PAGE_SIZE)
    tr = workloads.generate("multipage_send", **p)
    assert engine.replay(tr, "page_ref").uaf_pages == 0


def test_tiny_spanning_trace_frees_three_pages_early():
    """One 16 KiB frag over four order-0 pages: the holder's release frees pages 1-3 under page_ref."""
    tr = refcount.tiny_spanning_trace()
    today = engine.replay(tr, "page_ref")
    assert today.uaf_pages == 3 and today.uaf_frees == 3
    assert today.leaked_refs == 0
    for policy in SAFE:
        assert engine.replay(tr, policy).uaf_pages == 0
    walk = refcount.walk(tr, "page_ref")
    assert list(walk["event"]) == ["alloc", "skb_alloc", "attach", "clone", "buf_release", "free", "free"]
    assert walk["frag still points at freed page"].iloc[4] == 3


def test_tiling_repeats_the_ledger():
    base = workloads.generate("tcp_gso", bytes_sent=1 << 20, loss_rate=0.02)
    one, two = engine.replay(base, "page_ref"), engine.replay(T.tile(base, 2), "page_ref")
    assert two.events == 2 * one.events
    assert two.ref_atomics == 2 * one.ref_atomics and two.refs_taken == 2 * one.refs_taken
    assert two.pages_peak == one.pages_peak and two.clean


def test_clone_takes_no_page_ref_but_owner_clone_does():
    """__skb_clone() only bumps dataref; the per-skb owner policy pays an owner ref per clone instead."""
    tr = workloads.generate("tcp_send", bytes_sent=1 << 20, loss_rate=0.05)
    clone = T.OP_CODE["clone"]
    assert engine.replay(tr, "page_ref").ref_by_op[clone] == 0
    assert engine.replay(tr, "owner_skb").ref_by_op[clone] == 0
    assert engine.replay(tr, "owner_clone").ref_by_op[clone] > 0


def test_software_gso_refs_every_frag_once_per_segment():
    """skb_segment() takes a ref per frag per output segment: GSO multiplies page refs."""
    args = dict(bytes_sent=1 << 20, loss_rate=0.0)
    tso = engine.replay(workloads.generate("tcp_send", **args), "page_ref")
    gso = engine.replay(workloads.generate("tcp_gso", **args), "page_ref")
    seg = T.OP_CODE["segment"]
    assert tso.ref_by_op[seg] == 0 and gso.ref_by_op[seg] > 0
    assert gso.ref_atomics > 2 * tso.ref_atomics


def test_same_seed_same_trace_and_other_seed_other_losses():
    a = workloads.generate("tcp_send", bytes_sent=1 << 20, loss_rate=0.05, seed=7)
    b = workloads.generate("tcp_send", bytes_sent=1 << 20, loss_rate=0.05, seed=7)
    c = workloads.generate("tcp_send", bytes_sent=1 << 20, loss_rate=0.05, seed=8)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("name", sorted(workloads.WORKLOADS))
def test_every_workload_moves_its_bytes(name):
    """The frags a workload attaches add up to the bytes it sends."""
    tr = workloads.generate(name, bytes_sent=3 << 20, loss_rate=0.0)
    att = tr[tr["op"] == T.ATTACH]
    assert int(att["len"].sum()) == 3 << 20


def test_unknown_workload_and_policy_are_refused():
    with pytest.raises(ValueError, match="unknown workload"):
        workloads.generate("tcp_sned")
    with pytest.raises(ValueError, match="unknown policy"):
        engine.replay(T.empty(), "page_reff")
