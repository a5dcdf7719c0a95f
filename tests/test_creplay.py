"""The C replay used by `fraglife bench` must compute the engine's ledger exactly."""

import shutil

import numpy as np
import pytest
from hypothesis import given

from fraglife.model import creplay, engine, workloads
from fraglife.paths import build_dir

from strategies import raw_traces

pytestmark = pytest.mark.skipif(
    not (shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")), reason="no C compiler on this machine"
)


@pytest.fixture(scope="module")
def c():
    lib = creplay.load(build_dir("bench"))
    assert lib.error is None, lib.error
    return lib


@pytest.mark.parametrize("name", sorted(workloads.ALL))
def test_c_equals_engine_on_workloads(c, name):
    tr = workloads.generate(name, bytes_sent=2 << 20, loss_rate=0.03, frag_size=16384, folio_pages=2)
    assert np.array_equal(c.replay_array(tr), engine.replay_array(tr, "page_ref"))


@given(trace=raw_traces())
def test_c_equals_engine_on_raw_traces(trace):
    c = creplay.load(build_dir("bench"))
    assert np.array_equal(c.replay_array(trace, max_frags=4), engine.replay_array(trace, "page_ref", max_frags=4))


def test_bench_reports_the_three_implementations_and_ratios():
    from fraglife.bench import replay_bench

    r = replay_bench(events=20_000, twin_events=5_000, repeats=1)
    assert r["trace_events"] >= 20_000
    assert r["c"]["ledger_equal"] is True
    for key in ("numba", "twin", "c"):
        assert r[key]["events_per_s"] > 0
    assert r["c_over_numba"] == pytest.approx(r["c"]["events_per_s"] / r["numba"]["events_per_s"])
    assert r["numba_over_twin"] == pytest.approx(r["numba"]["events_per_s"] / r["twin"]["events_per_s"])
