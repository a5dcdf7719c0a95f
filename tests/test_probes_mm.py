"""The mm probes (gup_paths, cow_mthp): schemas live and recorded, sanity of the counts, cleanup on
every path (an exception, SIGKILL), and user nobody getting the recordings.

No test asserts a duration. Live tests need root; a live test may wait for another process's probe
(the machine-wide probe lock).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fraglife.probes import _cleanup, _core, _net, _sys, load_recording, run
from fraglife.probes import cow_mthp as cm
from fraglife.probes import gup_paths as gp

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="live probe needs root (tracepoints, PFNs, netns, sysfs)")
live = pytest.mark.live
READY_TIMEOUT = 900  # the machine lock may be held by another process's probe meanwhile


# -- schemas ----------------------------------------------------------------------------------

def _spread_ok(s: dict) -> None:
    assert {"median", "q1", "q3", "min", "max", "n"} <= set(s)
    assert s["min"] <= s["q1"] <= s["median"] <= s["q3"] <= s["max"] and s["n"] >= 1


def check_gup_paths(d: dict) -> None:
    pages = d["bytes"] // d["page_size"]
    assert set(d["configs"]) == set(gp.CONFIGS) and set(d["runs"]) == set(gp.CONFIGS)
    assert set(d["layouts"]) == set(gp.LAYOUTS)
    for name, lay in d["layouts"].items():
        assert sum(lay["pages"].values()) == pages and isinstance(lay["what"], str), name
    for cname, conf in d["configs"].items():
        tso, md5, send_size = gp.CONFIGS[cname]
        assert (conf["tso"], conf["md5"], conf["send_size"]) == (tso, md5, send_size)
        assert conf["mss"] > 0 and conf["mtu"] == gp.MTU and conf["windows"] >= len(gp.LAYOUTS)
    for cname, layouts in d["runs"].items():
        assert set(layouts) == set(gp.LAYOUTS), cname
        for name, r in layouts.items():
            assert r["bytes"] == d["bytes"] and r["pages"] == pages
            assert r["expected_pages"] == d["layouts"][name]["pages"]
            assert isinstance(r["layout_ok"], bool) and len(r["census"]) == r["repeats"]
            for part in ("raw", "baseline", "net"):
                assert set(r[part]) == set(gp.KEYS)
                for s in r[part].values():
                    _spread_ok(s)
            assert set(r["per_mib"]) == set(gp.KEYS)
            assert r["gup_calls"] == layouts["a"]["net"]["mmap_lock"]["median"]
            assert set(r["per_gup_call"]) == set(gp.KEYS) - {"sendmsg_iterations"}


def check_cow_mthp(d: dict) -> None:
    want = {cm.case_name(f, h, w) for f in cm.FOLIOS for h in cm.HOLDERS for w in cm.WRITERS}
    assert set(d["cases"]) == want
    for name, c in d["cases"].items():
        assert cm.case_name(c["folio"], c["holder"], c["writer"]) == name
        assert c["pages"] * d["page_size"] == c["bytes"] == cm.SIZE
        assert c["folio_pages"] == cm.FOLIOS[c["folio"]] and 1 <= c["folios"] <= c["pages"] // c["folio_pages"]
        for part in ("raw", "baseline", "net"):
            assert set(c["write"][part]) == set(cm.EVENTS) | {"minflt"}, name
            for s in c["write"][part].values():
                _spread_ok(s)
        assert set(c["fork"]["allocs"]) == set(cm.ALLOC_KEYS)
        _spread_ok(c["fork"]["child_copied_pages"])
        for k in ("folios_reused", "folios_copied", "folios_partly"):
            _spread_ok(c["outcome"][k])
            assert 0 <= c["outcome"][k]["min"] and c["outcome"][k]["max"] <= c["folios"]
        assert 0 <= c["outcome"]["pages_moved"]["max"] <= c["pages"]
        assert len(c["after_folio_pages"]) == c["repeats"]
        if c["holder"] == "zerocopy":
            assert len(c["notsent_bytes"]["at_fork"]) == c["repeats"]
    assert d["mthp"]["knob"] == cm.KNOB


MM_CHECKS = {"gup_paths": check_gup_paths, "cow_mthp": check_cow_mthp}


def _checked(r, name: str, source: str) -> None:
    assert r.name == name and r.source == source, r.note()
    assert r.provenance["kernel"] == r.kernel
    j = json.loads(json.dumps(r.to_json()))
    assert j["probe"] == name and j["source"] == source
    MM_CHECKS[name](r.data)


def test_registered():
    assert {"gup_paths", "cow_mthp"} <= set(_core.NAMES)
    for name in MM_CHECKS:
        mod = _core.module(name)
        assert mod.NAME == name and set(mod.REQUIRED) >= {"kernel"}


@pytest.mark.parametrize("name", sorted(MM_CHECKS))
def test_recording_matches_schema(name):
    raw = json.loads(_core.recording_path(name).read_text())
    assert raw["probe"] == name and raw["source"] == "live" and not raw["partial"]
    r = load_recording(name, "test")
    _checked(r, name, "recorded")
    assert "\n".join(r.summary()) and len(r.frame())


def test_recorded_counts_say_what_was_measured():
    """The recordings carry the counts the chapters use, in the units they use."""
    g = load_recording("gup_paths").data
    for cname, layouts in g["runs"].items():
        assert all(r["layout_ok"] for r in layouts.values()), cname
        assert layouts["b"]["net"]["mmap_lock"]["median"] == 0, cname
        c_pages = g["layouts"]["c"]["pages"]["c"]
        assert abs(layouts["c"]["net"]["minflt"]["median"] - c_pages) <= 1 + c_pages // 50, cname
    c = load_recording("cow_mthp").data
    assert all(v["folios"] == cm.SIZE // cm.FOLIO_BYTES for k, v in c["cases"].items() if k.startswith("64k."))
    assert c["mthp"]["restored"] in (True, None)


def test_folio_runs():
    pfn = np.array([16, 17, 18, 19, 40, 41, 7, 8], dtype=np.int64)
    tail = np.array([False, True, True, True, False, True, False, False])
    assert cm.folio_runs(pfn, tail) == [(0, 4), (4, 2), (6, 1), (7, 1)]
    assert cm.whole_folios(pfn, tail, 4) == [(0, 4)]
    assert cm.whole_folios(pfn, tail, 1) == [(6, 1), (7, 1)]


def test_layouts_are_what_they_say():
    n = 48
    for name, (_, fn) in gp.LAYOUTS.items():
        k = gp.kinds(name, n)
        assert k.shape == (n,) and set(np.unique(k)) <= {gp.ZERO, gp.WRITTEN, gp.UNTOUCHED}, name
    assert set(gp.kinds("a_b_c", n)) == {0, 1, 2}
    assert (gp.kinds("b_c_every_16", n) == gp.UNTOUCHED).sum() == n // 16


def test_md5_option_layout():
    """struct tcp_md5sig is 216 bytes: sockaddr_storage 128, flags, prefixlen, keylen, ifindex, key 80."""
    class Fake:
        def setsockopt(self, level, opt, value):
            self.value = (level, opt, value)

    f = Fake()
    gp.md5_key(f, "10.1.2.3", b"k")
    level, opt, value = f.value
    assert opt == gp.TCP_MD5SIG and len(value) == 216
    assert value[4:8] == bytes([10, 1, 2, 3]) and value[130:132] == (1).to_bytes(2, "little")


def test_a_bracketed_knob_is_set_and_put_back(tmp_path, monkeypatch):
    """sysfs choice knobs read "always [never]" and take one word: the ledger keeps the word."""
    knob = tmp_path / "enabled"
    knob.write_text("always inherit madvise [never]\n")
    monkeypatch.setattr(_cleanup, "STATE_DIR", tmp_path / "state")
    with _cleanup.knob(knob, "madvise") as original:
        assert original == "never" and knob.read_text() == "madvise"
        assert _cleanup.orphans_of(os.getpid())["knobs"] == {str(knob): "never"}
        assert str(knob) not in _cleanup.orphans()["knobs"]  # the owner (this process) is alive
    assert knob.read_text() == "never" and _cleanup.orphans_of(os.getpid())["ledger"] is None
    knob.write_text("always [madvise] never\n")
    with _cleanup.knob(knob, "madvise"):  # already so: nothing written, nothing noted
        assert _cleanup.orphans_of(os.getpid())["ledger"] is None
    assert knob.read_text() == "always [madvise] never\n"


# -- live -------------------------------------------------------------------------------------

def _marker_processes(marker: str) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            if marker.encode() in (p / "cmdline").read_bytes():
                out.append(int(p.name))
        except OSError:
            pass
    return out


def _my_children() -> list[int]:
    kids = []
    for t in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            kids += [int(x) for x in (t / "children").read_text().split()]
        except OSError:
            pass
    return kids


def _netns_of(pid: int) -> list[str]:
    return [n for n in _net.leftover_netns(gp.NS_PREFIX + "-") if n.startswith(f"{gp.NS_PREFIX}-{pid}-")]


@pytest.fixture(scope="module")
def gup_live():
    return run("gup_paths", mode="live", quick=True, fresh=True)


@pytest.fixture(scope="module")
def cow_live():
    return run("cow_mthp", mode="live", quick=True, fresh=True)


@live
@needs_root
def test_live_gup_paths_counts(gup_live):
    r = gup_live
    _checked(r, "gup_paths", "live")
    assert not r.partial, r.partial
    d = r.data
    for cname, layouts in d["runs"].items():
        calls = layouts["a"]["gup_calls"]
        assert calls >= 1, cname
        for name, x in layouts.items():
            assert x["layout_ok"], (cname, name, x["census"], x["expected_pages"])
            # faults taken inside GUP have no user registers: none reaches the user-fault tracepoint
            assert x["net"]["page_fault_user"]["median"] <= 1, (cname, name)
        b, a, c = layouts["b"], layouts["a"], layouts["c"]
        # written pages: gup-fast takes them all, no mmap_lock beyond the baseline
        assert b["net"]["mmap_lock"]["median"] == 0 and b["raw"]["mmap_lock"]["max"] <= \
            b["baseline"]["mmap_lock"]["max"] + 2, cname
        assert b["net"]["minflt"]["median"] == 0
        # untouched pages: each faulted once by the slow path; zero-page pages: none
        pages_c = d["layouts"]["c"]["pages"]["c"]
        assert abs(c["net"]["minflt"]["median"] - pages_c) <= 1 + pages_c // 50, cname
        assert a["net"]["minflt"]["median"] <= 1, cname
        # both take the slow path on every call
        assert abs(c["net"]["mmap_lock"]["median"] - calls) <= 1 + calls // 20, cname
        half = d["layouts"]["b_c"]["pages"]["c"]
        assert abs(layouts["b_c"]["net"]["minflt"]["median"] - half) <= 1 + half // 50
    md5, tso = d["runs"]["md5_64k"]["a"]["gup_calls"], d["runs"]["tso_64k"]["a"]["gup_calls"]
    assert md5 > 10 * tso  # one GUP call per MSS-sized skb against one per 64 KiB skb
    assert d["configs"]["md5_64k"]["md5"] and not d["configs"]["tso_64k"]["md5"]


@live
@needs_root
def test_live_cow_mthp_counts(cow_live):
    r = cow_live
    _checked(r, "cow_mthp", "live")
    cases = r.data["cases"]
    # a quick run measures the default cases (on order-0 pages without mTHP); the rest are the recording's
    live = r.data["cases_live"]
    assert live and set(live) <= set(cm.LIVE_CASES) | {n.replace("64k.", "4k.", 1) for n in cm.LIVE_CASES}
    assert set(r.partial) == {f"cases.{n}" for n in cases if n not in live}, r.partial
    assert all(cases[n].get("source") == "recorded" for n in cases if n not in live)
    pages = cm.SIZE // _sys.PAGE
    for name, c in cases.items():
        if "write" not in c:
            continue
        n, o = c["write"]["net"], c["outcome"]
        near = lambda v, want: abs(v - want) <= 8  # noqa: E731
        if c["holder"] == "pinned":
            # a pinned page is copied for the child at fork; the parent's mapping never moves
            assert c["fork"]["child_copied_pages"]["median"] == pages, name
            if c["writer"] != "child":
                assert n["minflt"]["median"] == 0 and o["folios_reused"]["median"] == c["folios"], name
        if c["writer"] == "parent_child_alive" and c["holder"] != "pinned":
            assert o["folios_copied"]["median"] == c["folios"], name
            assert near(n["order_0"]["median"], pages) and near(n["minflt"]["median"], pages), name
        if c["holder"] == "zerocopy":
            assert min(c["notsent_bytes"]["at_fork"]) >= cm.SIZE, name
            if c["writer"] == "parent_child_exited":  # extra refs in flight: copied, child or not
                assert o["folios_copied"]["median"] == c["folios"], name
        if c["writer"] == "parent_child_exited" and c["holder"] == "none":
            assert o["folios_reused"]["median"] == c["folios"] and n["order_0"]["median"] <= 4, name
    if "64k.none.child" in cases:
        assert cases["64k.none.child"]["folios"] == cm.SIZE // cm.FOLIO_BYTES
    assert r.data["mthp"]["restored"] in (True, None)


@live
@needs_root
def test_live_runs_leave_nothing(gup_live, cow_live):
    assert gup_live.source == "live" and cow_live.source == "live"
    assert _cleanup.orphans_of(os.getpid())["ledger"] is None
    if os.path.exists(cm.KNOB):
        assert _cleanup.knob_value(cm.KNOB) == cow_live.data["mthp"]["original"]
    assert not _netns_of(os.getpid())
    assert not _my_children()


@live
@needs_root
def test_a_childs_counted_window_holds_its_write_only(monkeypatch):
    """What a forked child does to report a write (its pagemap read, the reply) stays out of the counted window:
    a report that faults in 16 fresh pages leaves the baseline write at no fault and the shared buffer's write at
    one copy-on-write fault per page."""
    from fraglife.probes import _perf

    real, pages = cm.pagemap.pfns, cm.SIZE // _sys.PAGE

    def faulting_report(addr, size):
        extra = _sys.Mapping(16 * _sys.PAGE)  # the child's, gone with it
        extra.array()[:] = 1
        return real(addr, size)

    monkeypatch.setattr(cm.pagemap, "pfns", faulting_report)  # inherited by the child at fork
    events = _perf.require(cm.GROUPS, {tp for tp, _ in cm.EVENTS.values()})
    with _sys.Mapping(cm.SIZE) as m:
        a = m.array()
        a[:] = 1
        child = cm.Child(m.addr, a)
        try:
            child.pfns()
            with _perf.task_counters(events, cm.EVENTS, child.pid) as cc:
                w = cm.write_pages(cc, lambda written: child.ask(b"s", written)["minflt"],
                                   lambda written: child.ask(b"w", written)["minflt"])
        finally:
            child.close()
    assert w["baseline"]["page_fault_user"] == 0 and w["baseline"]["order_0"] == 0, w["baseline"]
    assert w["raw"]["page_fault_user"] == pages == w["raw"]["minflt"], w["raw"]


@live
@needs_root
def test_cow_mthp_cleans_up_after_a_failure(monkeypatch):
    original = _cleanup.knob_value(cm.KNOB)

    def boom(*a, **k):
        raise OSError("injected failure while the child is alive")

    monkeypatch.setattr(cm, "write_pages", boom)
    r = run("cow_mthp", mode="live", quick=True, fresh=True)
    assert r.source == "unavailable" and "injected failure" in r.reason
    assert _cleanup.knob_value(cm.KNOB) == original and _cleanup.orphans_of(os.getpid())["ledger"] is None
    assert not _my_children()


@live
@needs_root
@pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 not installed")
def test_gup_paths_cleans_up_after_a_failure(monkeypatch):
    def boom(*a, **k):
        raise OSError("injected failure inside the namespaces")

    monkeypatch.setattr(gp, "send_window", boom)
    r = run("gup_paths", mode="live", quick=True, fresh=True)
    assert r.source == "unavailable" and "injected failure" in r.reason
    assert not _netns_of(os.getpid())


_STUCK = r"""
import sys, time
from fraglife.probes import _core, {module} as m
def stuck(*a, **k):
    print("ready", flush=True)
    time.sleep(3600)
m.{function} = stuck
{setup}
_core.run("{name}", mode="live", quick=True)
# {marker}
"""


def _start_stuck(name: str, module: str, function: str, setup: str = "") -> tuple[subprocess.Popen, str]:
    marker = f"fraglife-sigkill-test-{os.getpid()}-{time.monotonic_ns()}"
    script = _STUCK.format(module=module, function=function, setup=setup, name=name, marker=marker)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if not select.select([proc.stdout], [], [], 1.0)[0]:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                out, err = proc.communicate()
                pytest.fail(f"the probe never reached its window: {err.decode()[-2000:]}")
            continue
        line = proc.stdout.readline().decode().strip()
        if line == "ready":
            return proc, marker
        if not line and proc.poll() is not None:
            pytest.fail(f"the probe exited: {proc.stderr.read().decode()[-2000:]}")


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    proc.stderr.close()


def _gone(marker: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while _marker_processes(marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@live
@needs_root
def test_sigkill_with_the_mthp_knob_changed_is_undone_by_the_next_probe():
    """SIGKILL while the knob is changed, a child alive and a buffer pinned: the children die with the
    process; the next run of any probe puts the knob back."""
    if not os.path.exists(cm.KNOB):
        pytest.skip(f"{cm.KNOB} missing: no mTHP here")
    if cm._mthp_ready()[0] is None:
        pytest.skip("the 64 KiB knob already allows mTHP here: the probe changes nothing")
    original = _cleanup.knob_value(cm.KNOB)
    proc, marker = _start_stuck("cow_mthp", "cow_mthp", "write_pages",
                                setup='m.HOLDERS = ("pinned",)')
    try:
        assert _cleanup.knob_value(cm.KNOB) != original  # changed while it runs
        _kill(proc)
        assert _cleanup.orphans_of(proc.pid)["knobs"] == {cm.KNOB: original}
        assert _cleanup.knob_value(cm.KNOB) != original  # nothing ran after SIGKILL
        assert _gone(marker), _marker_processes(marker)  # the forked child died with its parent
        r = run("btf", mode="live", fresh=True)  # any probe
        assert r.source == "live"
        assert _cleanup.knob_value(cm.KNOB) == original
        assert _cleanup.orphans_of(proc.pid)["ledger"] is None
    finally:
        if proc.poll() is None:
            _kill(proc)
        _cleanup.sweep()


@live
@needs_root
@pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 not installed")
def test_sigkill_inside_the_namespaces_is_undone_by_the_next_probe():
    proc, marker = _start_stuck("gup_paths", "gup_paths", "send_window")
    pid = proc.pid
    try:
        assert _netns_of(pid)  # the pair exists while it runs
        _kill(proc)
        assert _netns_of(pid)  # nothing ran after SIGKILL
        assert _gone(marker)
        r = run("btf", mode="live", fresh=True)  # any probe
        assert r.source == "live"
        assert not _netns_of(pid)
    finally:
        if proc.poll() is None:
            _kill(proc)
        _cleanup.sweep()


@needs_root
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) not installed")
def test_as_nobody_every_mm_probe_is_its_recording():
    from test_probes import NOBODY, _nobody_python

    found = _nobody_python()
    if found is None:
        pytest.skip("no Python interpreter with this venv's packages is executable by user nobody")
    exe, env = found
    script = ("import json; from fraglife.probes import run; "
              "print(json.dumps({n: run(n).to_json() for n in ('gup_paths', 'cow_mthp')}))")
    proc = subprocess.run(NOBODY + exe + ["-c", script], capture_output=True, text=True, timeout=120,
                          cwd="/", env=env)
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    for name, j in d.items():
        assert j["source"] == "recorded", j["reason"]
        assert "root" in j["reason"]
        assert j["provenance"]["root"] is True  # recorded by root
        MM_CHECKS[name]({k: v for k, v in j.items() if k not in _core.META_KEYS})
