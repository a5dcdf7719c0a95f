"""The zcsend probe: its plan, statistics and fit on synthetic data, its result schema (live and
recorded), cleanup after a failure, and the recording for a reader without root.

No test asserts a duration: live tests check what the kernel reported (completions, drops, the
buffers' backing) and the structure of the result.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraglife.probes import _cleanup, _core, _net, _sys, load_recording, run
from fraglife.probes import zcsend as zs

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="live probe needs root (netns, veth, RPS, kpageflags)")
live = pytest.mark.live


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch):
    monkeypatch.setattr(_core, "_cache", {})
    monkeypatch.delenv(_core.ENV, raising=False)


# -- schema ------------------------------------------------------------------------------------

def _spread_ok(s: dict) -> None:
    assert {"median", "q1", "q3", "min", "max", "n"} <= set(s)
    assert s["min"] <= s["q1"] <= s["median"] <= s["q3"] <= s["max"] and s["n"] >= 1


def check_zcsend(d: dict) -> None:
    """Schema of a zcsend result (live or recorded, a path possibly filled from the recording)."""
    assert set(d["paths"]) == set(zs.PATHS)
    for path, entry in d["paths"].items():
        if "points" not in entry:  # a part that could not be measured
            assert entry["source"] == "unavailable" and entry["reason"], path
            continue
        assert entry["what"] and entry["rounds"] >= 1
        sizes = sorted({p["size"] for p in entry["points"]})
        assert set(sizes) <= set(zs.SIZES[path]) and len(sizes) >= 2
        cells = {(p["size"], p["buffer"], p["state"]) for p in entry["points"]}
        assert cells == {(s, b, st) for s in sizes for b, st in zs.CASES}, path
        for p in entry["points"]:
            for mode in zs.MODES:
                m = p[mode]
                _spread_ok(m["ns"])
                assert 1 <= m["n"] <= m["n_all"]
                assert set(m["features"]) == {"call", "bytes", "pages", "frags", "skbs", "pte_faults", "pmd_faults"}
            z = p["zerocopy"]
            _spread_ok(z["completion_read_ns"])
            assert z["notifications_per_read"] >= 1
            assert z["ids"] == z["sends"]  # every call's notification arrived
            assert p["zerocopy_over_copy"] == pytest.approx(z["ns"]["median"] / p["copy"]["ns"]["median"])
            assert ("backing" in p) == (p["state"] == "present")
        c = entry["checks"]
        assert c["ids_completed"] == c["zerocopy_sends"] and c["completion_timeouts"] == 0
        assert c["copied_notifications"] == (0 if path == "udp" else c["notifications"])
        ref = entry["reference"]
        assert ref["windows"] >= 2 and ref["floor_ns"] == ref["ns"]["min"]
        assert set(entry["movsb"]) == {str(s) for s in zs.MOVSB_SIZES}
    for path, f in d["fit"].items():
        if "gup" not in f:
            continue
        assert set(f["coefficients"]) >= set(zs.MODES)
        assert {"per_call_ns", "per_page_ns", "per_page_absent_ns"} <= set(f["gup"])
        assert f["residuals"] and f["heldout"] and isinstance(f["heldout_ok"], bool)
        assert f["max_heldout_error"] == max(abs(h["error"]) for h in f["heldout"])
        assert {h["buffer"] for h in f["heldout"]} >= {"mix"}  # a buffer the fit never saw
        assert not {h["size"] for h in f["heldout"] if h["buffer"] != "mix"} & set(f["fit_sizes"])
    for path, c in d["crossover"].items():
        for case, e in c.items():
            if case in ("source", "reason", "recorded_at"):
                continue
            assert e["measured_bytes"] is None or e["sizes"][0] <= e["measured_bytes"] <= e["sizes"][1]


# -- the plan ----------------------------------------------------------------------------------

def test_plan_interleaves_modes_and_brackets_samples_with_reference_windows():
    sizes = (4096, 16384)
    cmds = zs.plan("udp", sizes, rounds=3, seed=7)
    samples = [c for c in cmds if c[0] == "S"]
    assert len(samples) == 4 * len(sizes) * len(zs.CASES) * 2  # warm-up round + 3
    for rnd in range(4):
        got = sorted((c[3], c[4], c[5], c[6]) for c in samples if c[2] == rnd)
        assert got == sorted((m, s, b, st) for s in sizes for b, st in zs.CASES for m in zs.MODES)
    for a, b in zip(samples[::2], samples[1::2]):  # each cell's two modes back to back
        assert a[4:7] == b[4:7] and {a[3], b[3]} == set(zs.MODES)
    assert cmds[0][0] == "R" and cmds[-1][0] == "R"
    gaps, n = [], 0
    for c in cmds:
        if c[0] == "S":
            n += 1
        elif c[0] == "R":
            gaps.append(n)
            n = 0
    assert max(gaps) <= zs.REF_EVERY
    assert [c[1] for c in cmds] == list(range(len(cmds)))
    assert zs._line(samples[0]).endswith(" 1") and zs._line(samples[-1]).endswith(" 0")  # round 0 counts events
    assert zs.plan("udp", sizes, rounds=3, seed=7) == cmds


@pytest.mark.parametrize("path", zs.PATHS)
def test_calls_per_sample(path):
    for size in zs.SIZES[path]:
        n = zs.calls_for(path, size)
        assert zs.MIN_CALLS <= n <= zs.MAX_CALLS


def test_features():
    f = zs.features(16384, "4k", "present", 1.0)
    assert (f["pages"], f["frags"], f["pte_faults"], f["pmd_faults"]) == (4, 4, 0, 0)
    assert zs.features(16384, "thp", "present", 1.0)["frags"] == 1
    assert zs.features(1 << 20, "thp", "present", 17.0)["frags"] == 17
    m = zs.features(65536, "mix", "present", 1.0)
    assert m["pages"] == 16 and m["frags"] == 1 + 8  # one frag for the THP half, one per order-0 page
    assert zs.features(16384, "4k", "absent", 1.0)["pte_faults"] == 4
    assert zs.features(16384, "thp", "absent", 1.0)["pmd_faults"] == 1


# -- statistics --------------------------------------------------------------------------------

def _records(refs, per_ref=2):
    """Reference windows with ``per_ref`` samples after each (one cell), as the C sender prints them."""
    out, ident = [], 0
    for k, ref in enumerate(refs):
        out.append({"id": ident, "reference_ns": ref, "iters": 200})
        ident += 1
        if k == len(refs) - 1:
            break
        for _ in range(per_ref):
            out.append({"id": ident, "send_ns": 1000 * (k + 1), "calls": 1})
            ident += 1
    return out


def test_quiet_samples_need_quiet_windows_on_both_sides():
    recs = _records([100, 100, 200, 100, 100])
    quiet, ref = zs.quiet_samples(recs, tolerance=0.15)
    sample_ids = [r["id"] for r in recs if "send_ns" in r]
    # windows 0-1 quiet, 1-2 not (2 is slow), 2-3 not, 3-4 quiet
    assert quiet == {sample_ids[0], sample_ids[1], sample_ids[6], sample_ids[7]}
    assert ref["floor_ns"] == 100 and ref["windows"] == 5 and ref["quiet_share"] == 0.8


def _synthetic_records(path, coef, sizes, cases=zs.CASES, rounds=5, noise=0.0, seed=1, skbs=None):
    """Records the C sender would print if every call cost what ``coef`` says (times 1 +- noise)."""
    rng = random.Random(seed)
    recs, ident = [], 0
    skbs = skbs or (lambda size, mode: 1.0)
    for rnd in range(rounds + 1):
        recs.append({"id": ident, "reference_ns": 100000})
        ident += 1
        for size in sizes:
            for buf, state in cases:
                for mode in zs.MODES:
                    k = skbs(size, mode)
                    ns = zs.predict(coef, path, mode, zs.features(size, buf, state, k))
                    calls = 8
                    send = ns * calls * (1 + noise * rng.uniform(-1, 1))
                    r = {"id": ident, "round": rnd, "mode": "zc" if mode == "zerocopy" else "copy", "size": size,
                         "buf": buf, "state": state, "calls": calls, "bytes": size * calls, "send_ns": send,
                         "settle_ns": 0, "completion_ns": 0, "skbs": round(k * calls), "retrans": 0, "enobufs": 0,
                         "notifications": 1, "ids": calls, "copied": int(path == "tcp"), "first_id": 0}
                    if state == "absent":
                        r["after"] = {"present": 1.0, "thp": float(buf == "thp"), "compound": 0.0, "zero": 1.0}
                    else:
                        r["backing"] = {"present": 1.0, "thp": float(buf != "4k"), "compound": 0.0, "zero": 0.0}
                    recs.append(r)
                    ident += 1
        recs.append({"id": ident, "reference_ns": 100000})
        ident += 1
    return recs


UDP_COEF = {"copy": {"call": 2500.0, "bytes": 0.045, "pte_faults": 850.0, "pmd_faults": 2200.0},
            "zerocopy": {"call": 3100.0, "pages": 50.0, "frags": 40.0, "pte_faults": 450.0, "pmd_faults": 1600.0}}
TCP_COEF = {"copy": {"call": 4000.0, "bytes": 0.3, "pte_faults": 1000.0, "pmd_faults": 5000.0},
            "zerocopy": {"call": 4600.0, "pages": 120.0, "pte_faults": 600.0, "pmd_faults": 4000.0}}


def _tcp_skbs(size, mode):
    """Whole skbs per 64 KiB, a quarter more under copy (a count the 8 calls of a sample hold exactly)."""
    return max(1.0, float(size // 65536)) + (0.25 if mode == "copy" else 0.0)


def _pts(path, coef, noise=0.0, seed=1):
    recs = _synthetic_records(path, coef, zs.SIZES[path], noise=noise, seed=seed,
                              skbs=_tcp_skbs if path == "tcp" else None)
    quiet, _ = zs.quiet_samples(recs)
    return zs.points(recs, quiet)


def test_points_take_medians_per_call_and_leave_out_the_warm_up_round():
    recs = _synthetic_records("udp", UDP_COEF, (4096, 8192), rounds=3)
    for r in recs:
        if r.get("round") == 0 and "send_ns" in r:
            r["send_ns"] *= 100  # a cold first round would move the medians
    quiet, _ = zs.quiet_samples(recs)
    pts = zs.points(recs, quiet)
    assert len(pts) == 2 * len(zs.CASES)
    for p in pts:
        for mode in zs.MODES:
            want = zs.predict(UDP_COEF, "udp", mode, p[mode]["features"])
            assert p[mode]["ns"]["median"] == pytest.approx(want)
            assert p[mode]["n"] == p[mode]["n_all"] == 3 and not p[mode]["disturbed"]


def test_points_fall_back_to_all_samples_when_too_few_are_quiet():
    recs = _synthetic_records("udp", UDP_COEF, (4096,), rounds=3)
    pts = zs.points(recs, quiet=set())
    assert all(p[m]["disturbed"] and p[m]["n"] == 3 for p in pts for m in zs.MODES)


# -- the fit -----------------------------------------------------------------------------------

@pytest.mark.parametrize("path, coef", [("udp", UDP_COEF), ("tcp", TCP_COEF)])
def test_fit_recovers_known_costs(path, coef):
    f = zs.fit(path, _pts(path, coef))
    for mode in coef:
        for term, want in coef[mode].items():
            assert f["coefficients"][mode][term] == pytest.approx(want, rel=1e-6, abs=1e-6), (mode, term)
    g = f["gup"]
    assert g["per_call_ns"] == pytest.approx(coef["zerocopy"]["call"] - coef["copy"]["call"])
    assert g["per_page_ns"] == pytest.approx(coef["zerocopy"]["pages"] + coef["zerocopy"].get("frags", 0.0))
    assert f["copy"]["per_page_ns"] == pytest.approx(coef["copy"]["bytes"] * _sys.PAGE)
    assert f["max_fit_residual"] == pytest.approx(0, abs=1e-9)
    assert f["heldout_ok"] is True and f["max_heldout_error"] == pytest.approx(0, abs=1e-9)
    assert f["fit_sizes"] == sorted(set(zs.SIZES[path][::2]) | {zs.SIZES[path][-1]})


@pytest.mark.parametrize("path, coef", [("udp", UDP_COEF), ("tcp", TCP_COEF)])
def test_fit_with_noise_stays_close_and_passes_the_held_out_check(path, coef):
    f = zs.fit(path, _pts(path, coef, noise=0.03, seed=3))
    g = f["gup"]
    assert g["per_page_ns"] == pytest.approx(coef["zerocopy"]["pages"] + coef["zerocopy"].get("frags", 0.0), rel=0.2)
    assert f["max_fit_residual"] < 0.05
    assert f["heldout_ok"] is True


def test_held_out_check_fails_when_the_model_misses_a_cost():
    pts = _pts("udp", UDP_COEF)
    for p in pts:  # a cost the model has no term for, only at the held-out sizes
        if p["size"] in (8192, 24576, 40960):
            p["zerocopy"]["ns"] = {k: v * 1.5 if k != "n" else v for k, v in p["zerocopy"]["ns"].items()}
            p["zerocopy_over_copy"] = p["zerocopy"]["ns"]["median"] / p["copy"]["ns"]["median"]
    f = zs.fit("udp", pts)
    assert f["heldout_ok"] is False and f["max_heldout_error"] == pytest.approx(1 - 1 / 1.5, rel=1e-6)
    assert f["max_fit_residual"] == pytest.approx(0, abs=1e-9)  # the fit set never saw it


def test_split_holds_out_other_sizes_and_the_mix_buffer():
    pts = _pts("udp", UDP_COEF)
    fit_pts, held = zs.split(pts)
    assert {p["buffer"] for p in fit_pts} == set(zs.FIT_BUFFERS)
    assert {p["buffer"] for p in held} == {"4k", "thp", "mix"}
    assert all(p["buffer"] == "mix" for p in held if p["size"] in {q["size"] for q in fit_pts})
    assert len(fit_pts) + len(held) == len(pts)


def test_crossover_measured_and_from_the_fit():
    # order-0 present: zerocopy - copy = 600 + (90 - 0.045 * 4096) * pages, zero at 600 / 94.32 pages
    pts = _pts("udp", UDP_COEF)
    f = zs.fit("udp", pts)
    c = zs.crossover("udp", pts, f["coefficients"], step=64)
    exact = 600 / (0.045 * 4096 - 90) * 4096
    e = c["4k/present"]
    assert e["fit_bytes"] == pytest.approx(exact, abs=4096)  # pages are whole in the scan
    lo = max(s for s in zs.SIZES["udp"] if s < exact)
    assert lo <= e["measured_bytes"] <= min(s for s in zs.SIZES["udp"] if s > exact)
    assert zs._first_below([1, 2, 3], [1.0, -1.0, -3.0]) == pytest.approx(1.5)
    assert zs._first_below([1, 2, 3], [-1.0, -1.0, -3.0]) == 1.0
    assert zs._first_below([1, 2, 3], [-1.0, 1.0, 3.0]) is None
    assert zs._first_below([1, 2, 3], [1.0, -1.0, 1.0]) is None


@given(ds=st.lists(st.floats(-1e6, 1e6, allow_nan=False), max_size=8))
def test_the_probes_crossing_is_the_models(ds):
    """The measured crossover and the model's find where a difference turns negative for good alike: each layer has
    its own copy (probes import no model; model/costs.py imports nothing of the package)."""
    from fraglife.model import costs

    xs = [4096 * (i + 1) for i in range(len(ds))]
    assert zs._first_below(xs, ds) == costs._first_below(xs, ds)


# -- recorded and as nobody ------------------------------------------------------------------------

def test_recording_matches_schema():
    r = load_recording("zcsend", "test")
    assert r.source == "recorded", r.reason
    assert r.provenance["root"] is True and r.kernel
    check_zcsend(r.data)
    assert r.frame().shape[0] == sum(len(e["points"]) for e in r["paths"].values() if "points" in e)
    assert any("fit" in line for line in r.summary())


@needs_root
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) not installed")
def test_as_nobody_the_probe_comes_from_its_recording():
    import test_probes  # its helper finds an interpreter user nobody may run

    found = test_probes._nobody_python()
    if found is None:
        pytest.skip("no Python interpreter with this venv's packages is executable by user nobody")
    exe, env = found
    script = ("import json; from fraglife.probes import run; r = run('zcsend'); "
              "print(json.dumps({'source': r.source, 'reason': r.reason, 'root': r.provenance.get('root'), "
              "'uid': __import__('os').geteuid()}))")
    proc = subprocess.run(test_probes.NOBODY + exe + ["-c", script], capture_output=True, text=True, timeout=120,
                          cwd="/", env=env)
    assert proc.returncode == 0, proc.stderr
    j = json.loads(proc.stdout)
    assert j["uid"] == 65534
    assert j["source"] == "recorded" and "needs root" in j["reason"]
    assert j["root"] is True  # recorded by root


def test_without_root_it_is_the_recording(monkeypatch):
    monkeypatch.setattr(zs.os, "geteuid", lambda: 65534)
    r = run("zcsend", fresh=True)
    assert r.source == "recorded" and "needs root" in r.reason
    assert run("zcsend", mode="live", fresh=True).source == "unavailable"


# -- live --------------------------------------------------------------------------------------

@live
@needs_root
def test_live_schema_completions_and_cleanup():
    before = set(os.listdir("/sys/class/net"))
    r = run("zcsend", mode="live", quick=True, fresh=True)
    assert r.source == "live", r.reason
    assert not r.partial, r.partial
    check_zcsend(r.data)
    udp = r["paths"]["udp"]
    assert udp["checks"]["all_dropped_at_device"] is True  # nothing left the sending device
    assert udp["checks"]["skbs_per_call"] in ([1.0], [])  # one GSO skb per call
    for p in udp["points"] + r["paths"]["tcp"]["points"]:
        if p["state"] == "absent":
            assert p["after_send"]["zerocopy"]["present"] == 1.0 and p["after_send"]["zerocopy"]["zero"] == 1.0
        elif p["buffer"] == "4k":
            assert p["backing"]["compound"] == 0.0
    assert zs.leftovers() == []
    assert set(os.listdir("/sys/class/net")) == before


@live
@needs_root
@pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 not installed")
def test_cleanup_after_a_failure_midway(monkeypatch):
    before = set(os.listdir("/sys/class/net"))
    seen = {}

    def fail(*args, **kwargs):
        seen["netns"] = zs.leftovers()
        raise RuntimeError("synthetic failure after the namespaces, sockets and counters exist")

    monkeypatch.setattr(zs, "_launch", fail)
    exe, _ = zs._cc.build(zs.SOURCE, "zcsend", zs.CFLAGS)
    for path in zs.PATHS:
        with pytest.raises(RuntimeError, match="synthetic"):
            zs.session(path, zs.plan(path, (4096,), rounds=1), exe)
        assert len(seen.pop("netns")) == 2  # they did exist while it ran
        assert zs.leftovers() == []
    assert set(os.listdir("/sys/class/net")) == before


@live
@needs_root
@pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 not installed")
def test_a_killed_runs_namespaces_are_swept():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = f"{zs.NS_PREFIX}-{dead.pid}-abcdef-rx"
    mine = f"{zs.NS_PREFIX}-{os.getpid()}-abcdef-rx"
    _net.ip("netns", "add", stale)
    _net.ip("netns", "add", mine)
    try:
        assert stale in _cleanup.sweep()["netns"]  # what every live probe runs first
        assert stale not in zs.leftovers() and mine in zs.leftovers()  # a live process's stay
    finally:
        for ns in (stale, mine):
            if ns in zs.leftovers():
                _net.ip("netns", "del", ns)
