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


# ---------------------------------------------------------------- the pipe's fill from the page cache
fill_params = st.fixed_dictionaries({
    "folios": st.lists(st.sampled_from([1, 1, 2, 4, 16, 64, 512]), min_size=1, max_size=200),
    "call_pages": st.sampled_from([1, 3, 4, 16, 31, 32, 64, 256]),
})


@settings(max_examples=200, deadline=None)
@given(kw=fill_params, share=st.floats(0, 1))
def test_filemap_fill_compiled_is_the_twin(kw, share):
    folios = np.array(kw["folios"], dtype=np.int64)
    n = int(share * folios.sum())
    a = pipe.filemap_fill(folios, kw["call_pages"], n)
    assert np.array_equal(a, pipe_twin.filemap_fill(folios, kw["call_pages"], n))
    calls, batches, pieces, buffers, atomics = a
    assert buffers == n and calls == -(-n // kw["call_pages"])  # one pipe_buffer per page, whatever the folio
    assert calls <= batches <= pieces and atomics == 2 * pieces + buffers
    assert pieces <= n  # never more folio pieces than pages


@pytest.mark.parametrize("fp, call_pages, per_page", [(1, 16, 3.0), (16, 16, 1 + 2 / 16), (16, 64, 1 + 2 / 16),
                                                     (512, 64, 1 + 2 / 64), (4, 1, 3.0)])
def test_filemap_fill_rule(fp, call_pages, per_page):
    """3 atomics per page on order-0 page cache; 1 + 2/folio pages on large folios a call covers whole; a folio
    larger than the call costs 2 per call (mm/filemap.c filemap_splice_read(), v6.18)."""
    n = 4096
    out = pipe.filemap_fill(np.full(n // fp, fp), call_pages, n)
    assert out[4] / n == pytest.approx(per_page)


def test_filemap_batches_hold_at_most_31_folios():
    out = pipe.filemap_fill(np.ones(256, dtype=np.int64), 256, 256)
    assert out[1] == 9 and out[2] == 256  # ceil(256 / PAGEVEC_SIZE)


def test_filemap_fill_reproduces_the_recorded_batches():
    """The kcount_filemap recording's filemap batches per MiB, from its own folio census and call sizes."""
    from fraglife.probes import load_recording

    d = load_recording("kcount_filemap").data
    layout = pipe.folio_layout(d["folios"]["cached"]["pages_per_folio"])
    for s in d["splice"]:
        n = s["bytes"] // pipe.PAGE_SIZE
        out = pipe.filemap_fill(layout, s["call"] // pipe.PAGE_SIZE, n)
        assert out[1] / (s["bytes"] / (1 << 20)) == s["per_mib"]["filemap:mm_filemap_get_pages"]["value"]


def test_filemap_fill_refuses_a_short_layout():
    with pytest.raises(ValueError, match="folios"):
        pipe.filemap_fill(np.array([1, 1]), 1, 3)
    with pytest.raises(ValueError, match="call_pages"):
        pipe.filemap_fill(np.array([1, 1]), 0, 2)
