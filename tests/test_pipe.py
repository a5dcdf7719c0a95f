"""The pipe ring over time: the compiled simulation against its twin, and what it must always say."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraglife.model import pipe, pipe_twin

params = st.fixed_dictionaries({
    "n_pages": st.integers(0, 600),
    "ring": st.sampled_from([1, 2, 3, 16, 64, 256]),
    "splice_pages": st.sampled_from([1, 5, 16, 17, 64, 256]),
    "wire_ps": st.integers(1, 2_000_000),
    "done_ps": st.integers(0, 200_000_000),
    "sndbuf_pages": st.sampled_from([1, 7, 16, 1024]),
    "rule": st.integers(0, 2),
    "reuse_wait": st.booleans(),
})


@settings(max_examples=200, deadline=None)
@given(kw=params)
def test_compiled_is_the_twin(kw):
    assert np.array_equal(pipe.simulate(**kw), pipe_twin.simulate(**kw))


@settings(max_examples=100, deadline=None)
@given(kw=params)
def test_what_the_pipe_always_does(kw):
    R = pipe.simulate(**kw)
    assert R[:, pipe.R_PAGES].sum() == kw["n_pages"]
    assert (R[:, pipe.R_PAGES] <= pipe.SPLICE_BVECS).all()  # splice_to_socket(): bvec[16]
    assert (np.diff(R[:, pipe.R_SEND]) >= 0).all() and (np.diff(R[:, pipe.R_WIRE_END]) > 0).all()
    assert (R[:, pipe.R_DONE] - R[:, pipe.R_WIRE_END] == kw["done_ps"]).all()
    assert (R[:, pipe.R_WIRE_END] - R[:, pipe.R_SEND] >= R[:, pipe.R_PAGES] * kw["wire_ps"]).all()
    if kw["reuse_wait"]:
        assert R[:, pipe.R_EARLY].sum() == 0
    # the network never holds more than the socket lets it (unless one sendmsg alone is larger)
    for t in R[:, pipe.R_SEND]:
        live = (R[:, pipe.R_SEND] <= t) & (t < R[:, pipe.R_DONE])
        held = R[live, pipe.R_PAGES].sum()
        assert held <= max(kw["sndbuf_pages"], pipe.SPLICE_BVECS)
        if kw["rule"] == pipe.PIPE_HOLDS:  # a slot per buffer the network holds
            assert held <= kw["ring"] + pipe.SPLICE_BVECS


@pytest.mark.parametrize("ring", [1, 16, 256])
def test_moving_buffers_to_an_owner_changes_no_timing(ring):
    kw = dict(n_pages=2000, ring=ring, splice_pages=64, wire_ps=327_680, done_ps=50_000_000, sndbuf_pages=1024)
    assert np.array_equal(pipe.simulate(rule=pipe.TODAY, **kw), pipe.simulate(rule=pipe.OWNER, **kw))


def test_holding_the_slots_caps_the_rate_by_littles_law():
    """ring pages per hold time: 16 pages of 4 KiB held 50 us each carry about 10 Gbit/s at most."""
    kw = dict(n_pages=8000, ring=16, splice_pages=64, wire_ps=327_680, done_ps=50_000_000, sndbuf_pages=1024)
    held = pipe.summary(pipe.simulate(rule=pipe.PIPE_HOLDS, **kw))
    free = pipe.summary(pipe.simulate(rule=pipe.OWNER, **kw))
    cap = 16 * pipe.PAGE_SIZE * 8 / (held["hold_us"] * 1e-6) / 1e9
    assert held["gbit_per_s"] == pytest.approx(cap, rel=0.02)
    assert held["gbit_per_s"] < 0.15 * free["gbit_per_s"]
    assert held["mean_inflight_pages"] <= 16


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="ring = 0 is not allowed"):
        pipe.simulate(10, 0, 16, 1, 0, 16, 0)
    with pytest.raises(ValueError, match="rule = 3 is not allowed"):
        pipe.simulate(10, 16, 16, 1, 0, 16, 3)


def test_holders_split_the_same_pages_by_rule():
    kw = dict(n_pages=500, ring=16, splice_pages=16, wire_ps=327_680, done_ps=20_000_000, sndbuf_pages=1024)
    times = np.linspace(0, 30e6, 31).astype(np.int64)
    for rule, label in ((pipe.TODAY, "skb page refs"), (pipe.OWNER, "owner"), (pipe.PIPE_HOLDS, "pipe slots")):
        h = pipe.holders(pipe.simulate(rule=rule, **kw), rule, times)
        assert h[label].max() > 0 and sum(v.sum() for k, v in h.items() if k != label) == 0
