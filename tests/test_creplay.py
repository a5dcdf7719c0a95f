"""The C replay used by `fraglife bench` must compute the engine's ledger exactly."""

import shutil

import numpy as np
import pytest
from hypothesis import given

from fraglife.model import creplay, engine, workloads
from fraglife.paths import build_dir

from strategies import fit, raw_traces

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


@pytest.mark.parametrize("name", sorted(workloads.ALL))
@pytest.mark.parametrize("extra", [dict(tail_unsent=0.4, send_size=16384, folio_pages=16),
                                   dict(kernel="6.12", skb_defer_max=2, locked_vm_accounting=False),
                                   dict(skb_defer_max=1, tail_unsent=0.0, mss=8948)])
def test_c_equals_engine_on_the_kernels_rules(c, name, extra):
    """The drawn tail, accounting on and off, both defer lists and a full one, pages flags and GUP calls."""
    tr = workloads.generate(name, bytes_sent=1 << 20, loss_rate=0.03, frag_size=16384, **fit(name, extra))
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
    assert r["c_over_numba_cpu"] == pytest.approx(r["c"]["cpu_events_per_s"] / r["numba"]["cpu_events_per_s"])
    assert r["numba_over_twin"] == pytest.approx(r["numba"]["events_per_s"] / r["twin"]["events_per_s"])


def test_bench_sections_default_named_and_full():
    from fraglife import bench
    from fraglife.params import ParamError

    known = [k for k, _ in bench.SECTIONS]
    assert bench.sections(None) == bench.DEFAULT_SECTIONS and "chapters" not in bench.DEFAULT_SECTIONS
    assert list(bench.sections(None, full=True)) == known
    assert bench.sections("pipe, replay,pipe") == ("pipe", "replay")
    for bad in ("nope", "replay,nope", ","):
        with pytest.raises(ParamError, match="'section'") as e:
            bench.sections(bad)
        assert "\n" not in str(e.value)


def test_bench_runs_only_the_chosen_sections():
    import argparse

    from fraglife import bench

    args = argparse.Namespace(section="pagetable,pipe", full=False, events=20_000, policy="page_ref",
                              twin_events=5_000, repeats=1)
    r = bench.run(args)
    assert r["sections_run"] == ["pagetable", "pipe"] and set(r["section_seconds"]) == {"pagetable", "pipe"}
    assert "numba" not in r and "workloads" not in r and {"pagetable", "pipe"} <= set(r)
    r = bench.run(argparse.Namespace(**{**vars(args), "section": "replay"}))
    assert {"numba", "twin", "trace_events"} <= set(r) and "pipe" not in r  # today's top-level keys
