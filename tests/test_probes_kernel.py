"""The kernel-count probes kcount_rx, kcount_copy, kcount_filemap: schemas (live and recorded), brackets,
cleanup (also after SIGKILL), and recordings for a reader without root.

Live tests need root and skip otherwise; none asserts a duration.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraglife.params import ParamError
from fraglife.probes import _cleanup, _core, _counting, _perf, _xdp, load_recording, run
from fraglife.probes import kcount_copy as copy_mod
from fraglife.probes import kcount_filemap as fm_mod
from fraglife.probes import kcount_rx as rx_mod

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="live probe needs root (tracepoints, netns, XDP)")
needs_ip = pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 not installed")
live = pytest.mark.live
MiB = 1 << 20
PAGE = 4096
NAMES = ("kcount_rx", "kcount_copy", "kcount_filemap")
MODULES = {"kcount_rx": rx_mod, "kcount_copy": copy_mod, "kcount_filemap": fm_mod}
LOCK_WAIT = 900  # a live probe may wait this long for another process's probe


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch):
    monkeypatch.setattr(_core, "_cache", {})
    monkeypatch.delenv(_core.ENV, raising=False)


# -- schemas ------------------------------------------------------------------------------------------

def check_counts(counts: dict, ncpus: int) -> None:
    """Every counter: a bracket around its value, one value per CPU, exact where a filter names the flow."""
    for key, c in counts.items():
        assert {"value", "low", "high", "per_cpu", "raw", "idle_estimate", "method"} <= set(c), key
        assert 0 <= c["low"] <= c["value"] + 1e-9 <= c["high"] + 2e-9, key
        assert sum(c["per_cpu"]) >= c["value"] - 1e-2 * max(1.0, c["value"]), key  # each CPU at least 0
        assert len(c["per_cpu"]) == len(c["raw"]) == ncpus, key
        if c["method"].startswith("filter"):
            assert c["low"] == c["value"] == c["high"], key
            assert abs(sum(c["per_cpu"]) - c["value"]) < 1e-2 * max(1.0, c["value"]), key
        assert all(isinstance(r, int) and r >= 0 for r in c["raw"]), key


def check_kcount_rx(d: dict) -> None:
    assert [r["name"] for r in d["runs"]] == [n for n, _ in rx_mod.RUNS]
    assert {"napi", "reader", "online"} <= set(d["cpus"])
    for r in d["runs"]:
        name = r["name"]
        assert r["xdp"]["attached"] != "none" and r["xdp"]["prog_id"] > 0, name
        assert r["features"]["rx"]["gro"] is r["gro"], name
        assert r["features"]["tx"]["tso"] is False, name  # veth_fix_features(): no TSO towards an XDP peer
        assert set(r["counts"]) | set(r["skipped"]) == set(rx_mod.COUNTERS), name
        check_counts(r["counts"], len(r["cpus"]["counted"]))
        mib = r["bytes"] / MiB
        # every data packet went through veth's NAPI: at least a frame per MTU's worth of bytes
        assert r["counts"]["net:napi_gro_receive_entry"]["value"] >= MiB / r["mtu"], name
        assert r["counts"]["net:netif_receive_skb"]["value"] <= r["counts"]["net:napi_gro_receive_entry"]["value"]
        p = r["packets"]
        assert p["n"] == round(r["counts"]["net:napi_gro_receive_entry"]["value"] * mib), name  # samples = counts
        assert p["per_cpu"].get(f"cpu{r['cpus']['napi']}", 0) >= 0.9 * p["n"], name  # NAPI ran where it was put
        assert sum(int(v) for v in p["truesize"].values()) == p["n"]
        f = r["reader_frees"]
        assert f["skbs"] >= 1 and sum(f["deferred"].values()) + f["not_deferred"] == f["skbs"], name
        s = r["skbs"]
        assert 0 <= s["share_freed_on_reader_cpu"]["low"] <= s["share_freed_on_reader_cpu"]["high"] <= 1
        assert s["freed_on_reader_cpu"]["low"] <= s["freed_on_reader_cpu"]["high"]
        if r["same_cpu"]:  # skb->alloc_cpu is the reader's own CPU: skb_attempt_defer_free() never defers
            assert r["cpus"]["reader"] == r["cpus"]["napi"] and f["deferred"] == {}, name
        assert r["reps"]["n"] >= 1 and 0 <= r["reps"]["kept"] < r["reps"]["n"]


def check_kcount_copy(d: dict) -> None:
    names = [f"{s}B_nodelay_{nd}" for nd in ("off", "on") for s in copy_mod.SIZES]
    assert [r["name"] for r in d["messages"]] == names
    for r in d["messages"]:
        check_counts(r["counts"], len(r["cpus"]["counted"]))
        assert r["bytes"] == r["size"] * r["messages"]
        c = {k: v["value"] for k, v in r["counts"].items()}
        assert c["tcp:tcp_sendmsg_locked"] >= r["messages"], r["name"]  # a pass at least per send call
        assert c["net:net_dev_queue"] >= r["bytes"] / 65536, r["name"]  # no TCP skb over 64 KiB here
        # a refill is 32 KiB; a page whose skbs are all gone is reused without one
        assert c["kmem:mm_page_alloc[order3]"] <= r["bytes"] / 32768 + 2, r["name"]
        for k in r["counts"]:
            assert abs(r["per_message"][k]["value"] * r["messages"] - c[k]) < 1e-3 * max(1, c[k]) + 1e-2
            assert abs(r["per_mib"][k]["value"] * r["bytes"] / MiB - c[k]) < 1e-3 * max(1, c[k]) + 1e-2
    assert [f["sender"] for f in d["frags"]] == list(copy_mod.FRAG_SENDERS)
    top = d["max_skb_frags"] or 17
    for f in d["frags"]:
        hist = {int(k): v for k, v in f["nr_frags"].items()}
        assert sum(hist.values()) == f["skbs"] >= 1 and max(hist) <= top, f["sender"]
        assert sum(int(v) for v in f["nr_frags_gso"].values()) == f["gso_skbs"] <= f["skbs"]
        assert f["mean_len"] <= 65536 + 256
    t = d["tracepoints"]
    assert "nr_frags" in t["net:netif_rx_entry"]["fields"]


def check_kcount_filemap(d: dict) -> None:
    f = d["file"]
    assert f["filesystem"] not in ("tmpfs", "ramfs", "overlayfs"), f
    cached = d["folios"]["cached"]
    assert cached["pages"] == f["bytes"] // d["page_size"]
    assert sum(int(k) * v for k, v in cached["pages_per_folio"].items()) == cached["pages"]
    added = d["folios"]["added_by_readahead"]
    assert added["pages"] <= cached["pages"]
    pb = d["pipe_buffer"]
    assert 0 < pb["bytes_per_buffer"] <= 2 * MiB and isinstance(pb["one_buffer_per_page"], bool)
    assert len(pb["1_slot"]["moved"]) == len(pb["offsets"])
    runs = d["splice"]
    assert sorted({(r["path"], r["call"]) for r in runs}) == sorted(
        (p, c) for p in ("file_to_pipe", "file_to_socket") for c in fm_mod.CALLS)
    for r in runs:
        check_counts(r["counts"], len(next(iter(r["counts"].values()))["per_cpu"]))
        assert r["calls"] == -(-f["bytes"] // r["call"])
        assert r["per_call"]["filemap:mm_filemap_get_pages"]["value"] >= 1  # each call fetches a batch
        assert r["pipe_buffers_per_mib"] >= MiB / d["page_size"]
        if r["path"] == "file_to_socket":
            assert r["counts"]["net:net_dev_queue"]["value"] >= f["bytes"] / 65536


CHECKS = {"kcount_rx": check_kcount_rx, "kcount_copy": check_kcount_copy, "kcount_filemap": check_kcount_filemap}


def _check(name: str, data: dict) -> None:
    assert isinstance(data["kernel"], str) and data["kernel"]
    CHECKS[name]({k: v for k, v in data.items() if k not in _core.META_KEYS})


@pytest.mark.parametrize("name", NAMES)
def test_registered_and_recorded(name):
    assert name in _core.REGISTRY
    raw = json.loads(_core.recording_path(name).read_text())
    assert raw["probe"] == name and raw["source"] == "live" and not raw["partial"]
    assert raw["quick"] is False  # a recording is a full run
    r = load_recording(name, "test")
    assert r.source == "recorded" and r.reason == "test"
    _check(name, r.data)
    assert r.summary() and not r.frame().empty


# -- pure parts ---------------------------------------------------------------------------------------

def test_xdp_program_is_pass_then_exit():
    insns = [_xdp.PASS_PROGRAM[i:i + 8] for i in range(0, len(_xdp.PASS_PROGRAM), 8)]
    assert len(insns) == 2
    assert insns[0][0] == 0xB7 and int.from_bytes(insns[0][4:], "little") == _xdp.XDP_PASS  # r0 = 2
    assert insns[1][0] == 0x95  # exit


def test_layout_of_a_format_file():
    text = """name: consume_skb
ID: 1
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:__data_loc char[] name;\toffset:16;\tsize:4;\tsigned:0;
\tfield:unsigned char nr_frags;\toffset:20;\tsize:1;\tsigned:0;
"""
    lay = _perf.parse_layout(text)
    assert lay["skbaddr"] == (8, 8, False) and lay["common_pid"] == (4, 4, True) and lay["name"] == (16, 4, False)
    raw = bytes(4) + (-7).to_bytes(4, "little", signed=True) + (0xFFFF888012345678).to_bytes(8, "little") \
        + bytes(4) + bytes([17])
    assert _perf.decode(lay, raw, ("common_pid", "skbaddr", "nr_frags")) == (-7, 0xFFFF888012345678, 17)


def _window(raw, before, after, seconds=1.0, spans=(0.5, 0.5)):
    return {"seconds": seconds, "raw": {"k": raw}, "idle": {"k": {"before": before, "after": after}},
            "idle_seconds": {"before": spans[0], "after": spans[1]},
            "estimate": {"k": [(b + a) / sum(spans) * seconds for b, a in zip(before, after)]}}


@given(st.lists(st.integers(0, 10_000), min_size=2, max_size=2), st.lists(st.integers(0, 500), min_size=2,
       max_size=2), st.lists(st.integers(0, 500), min_size=2, max_size=2), st.floats(0.01, 5))
def test_idle_subtracted_bracket(raw, before, after, seconds):
    """Idle subtraction: value = raw less the pooled idle rate; high = raw (noise only adds); low = raw
    less the busier window's rate, never below 0."""
    c = _counting.counts(_window(raw, before, after, seconds), {"k": "idle-subtracted"}, {}, 2.0)["k"]
    assert c["low"] <= c["value"] + 1e-9 and c["value"] <= c["high"] + 1e-9 and c["low"] >= 0
    assert c["high"] == round(sum(raw) / 2, 3)
    assert sum(c["per_cpu"]) >= c["value"] - 1e-2 and min(c["per_cpu"]) >= 0
    f = _counting.counts(_window(raw, before, after, seconds), {"k": "filter: x"}, {}, 2.0)["k"]
    assert f["low"] == f["value"] == f["high"] == round(sum(raw) / 2, 3)


def test_a_rejected_filter_is_idle_subtracted_and_says_why():
    c = _counting.counts(_window([10, 0], [1, 0], [1, 0]), {"k": "filter: bad"}, {"k": "filter rejected"}, 1.0)["k"]
    assert c["method"].startswith("idle-subtracted (filter rejected") and c["value"] == 8.0


def test_no_idle_windows_subtract_nothing():
    w = {"seconds": 1.0, "raw": {"k": [5, 5]}, "idle": {"k": {}}, "idle_seconds": {}, "estimate": {"k": [0, 0]}}
    c = _counting.counts(w, {"k": "idle-subtracted"}, {}, 1.0)["k"]
    assert c["value"] == c["low"] == c["high"] == 10 and c["method"].startswith("unfiltered, nothing subtracted")


@given(st.lists(st.tuples(st.integers(0, 1 << 24), st.integers(1, 1 << 21)), max_size=20))
def test_pipe_buffers_are_pages_touched(calls):
    want = sum(len(range(off // PAGE, (off + n - 1) // PAGE + 1)) for off, n in calls)
    assert fm_mod.pipe_buffers(calls) == want
    aligned = [(i * 65536, 65536) for i in range(16)]
    assert fm_mod.pipe_buffers(aligned) == MiB // PAGE


def test_kernel_dev_is_mkdev():
    assert fm_mod.kernel_dev(os.makedev(254, 3)) == (254 << 20) | 3


def test_reader_frees_follow_each_skb():
    """Copies of skb A (twice: read in parts), B, then A again (the address reused); frees: A deferred on
    CPU 0, B nowhere (freed without a tracepoint), A's second life freed by another site."""
    A, B = 0xA000, 0xB000
    copies = [(10, A), (11, A), (20, B), (40, A)]
    frees = [(15, 0, A, "skb_defer_free_flush"), (45, 1, A, "skb_pp_cow_data"), (50, 0, B, "skb_pp_cow_data"),
             (5, 0, B, "skb_defer_free_flush")]  # before B's copy: another life
    f = rx_mod.follow_reader_frees(copies, frees)
    assert f["skbs"] == 3
    assert f["deferred"] == {"0": 1}
    assert f["not_deferred"] == 2
    assert f["first_other_free"] == {"0": {"skb_pp_cow_data": 1}, "1": {"skb_pp_cow_data": 1}}


def test_messages_for_stays_in_range():
    for size in copy_mod.SIZES:
        n = copy_mod.messages_for(size)
        assert copy_mod.MIN_MESSAGES <= n <= copy_mod.MAX_MESSAGES
        assert 1 <= copy_mod.messages_for(size, quick=True) <= n


@pytest.mark.parametrize("call, kwargs, param", [
    (copy_mod.send_messages, {"size": 0}, "size"),
    (copy_mod.send_messages, {"count": 0}, "count"),
    (copy_mod.frags_run, {"sender": "sendfile"}, "sender"),
    (copy_mod.frags_run, {"nbytes": 1000}, "nbytes"),
    (rx_mod.transfer, {"mtu": 9000}, "mtu"),
    (rx_mod.transfer, {"nbytes": 1}, "nbytes"),
])
def test_bad_parameters_name_themselves(call, kwargs, param):
    with pytest.raises(ParamError) as e:
        call(**kwargs)
    assert "\n" not in str(e.value) and param in str(e.value)


# -- the ledger and the sweep (no root needed) --------------------------------------------------------

_HOLD_KNOB = r"""
import sys, time
from fraglife.probes import _cleanup
with _cleanup.knob(sys.argv[1], "changed"):
    with _cleanup.temp_file(sys.argv[2], "fraglife-test") as (fd, path):
        print(path, flush=True)
        time.sleep(600)
"""


def test_a_killed_process_knob_and_file_are_put_back(tmp_path):
    """A knob changed and a file made by a process that is SIGKILLed: the sweep writes the original value
    back and removes the file (the state a later probe finds)."""
    knob = tmp_path / "knob"
    knob.write_text("original\n")
    proc = subprocess.Popen([sys.executable, "-c", _HOLD_KNOB, str(knob), str(tmp_path)], stdout=subprocess.PIPE,
                            text=True)
    try:
        made = proc.stdout.readline().strip()
        assert knob.read_text() == "changed" and os.path.exists(made)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        left = _cleanup.orphans()
        assert str(knob) in left["knobs"] and made in left["files"]
        done = _cleanup.sweep()
        assert not done["errors"], done["errors"]
        assert knob.read_text() == "original" and not os.path.exists(made)
        again = _cleanup.orphans()
        assert str(knob) not in again["knobs"] and made not in again["files"]
    finally:
        proc.kill()
        proc.wait()


@needs_root
def test_an_unowned_temp_file_is_swept_and_an_open_one_kept(tmp_path):
    old = time.time() - 3600
    gone, kept = tmp_path / "fraglife-kc-leftover", tmp_path / "fraglife-kc-inuse"
    for p in (gone, kept):
        p.write_bytes(b"x")
        os.utime(p, (old, old))
    with open(kept):
        assert _cleanup.unowned_files([str(tmp_path)]) == [str(gone)]


def test_a_live_process_ledger_is_left_alone(tmp_path):
    knob = tmp_path / "knob"
    knob.write_text("original")
    with _cleanup.knob(knob, "changed"):
        assert str(knob) not in _cleanup.orphans()["knobs"]
        _cleanup.sweep()
        assert knob.read_text() == "changed"
    assert knob.read_text() == "original"


def test_namespace_names_carry_the_owner():
    import re

    pat = _cleanup._NETNS
    for prefix in ("fraglife-kc", "fraglife-zc", rx_mod.NS_PREFIX, copy_mod.NS_PREFIX, fm_mod.NS_PREFIX):
        for tail in ("", "-tx", "-rx"):
            m = pat.match(f"{prefix}-4242-a1b2c3{tail}")
            assert m and m.group(1) == "4242", (prefix, tail)
    assert not pat.match("fraglife-kc-notapid-a1b2c3") and not re.match(pat, "other-4242-a1b2c3")


# -- live (root) --------------------------------------------------------------------------------------

def _live(name):
    before = os.sched_getaffinity(0)
    r = run(name, mode="live", quick=True, fresh=True)
    assert r.source == "live", r.reason
    assert not r.partial
    _check(name, r.data)
    assert MODULES[name].leftovers() == []
    assert os.sched_getaffinity(0) == before  # the sender's CPU set is given back
    return r


@live
@needs_root
@needs_ip
def test_live_kcount_rx():
    defer = Path(rx_mod.DEFER_MAX).read_text()
    r = _live("kcount_rx")
    assert Path(rx_mod.DEFER_MAX).read_text() == defer  # no global knob touched
    for run_ in r["runs"]:
        assert run_["samples"]["lost"]["packets"] == 0
        assert run_["packets"]["nr_frags"]  # what veth's page_pool copy built


@live
@needs_root
@needs_ip
def test_live_kcount_copy():
    r = _live("kcount_copy")
    frags = {f["sender"]: f for f in r["frags"]}
    # a 4 KiB-page MSG_ZEROCOPY or splice skb takes a frag per page; the copy path packs 32 KiB pages
    assert frags["zerocopy"]["mean_frags_gso"] > frags["send"]["mean_frags_gso"]
    assert frags["splice"]["mean_frags_gso"] > frags["send"]["mean_frags_gso"]
    if frags["zerocopy_thp"].get("thp_backed") == 1.0:  # one folio: frags merge (zerocopy_fill_skb_from_iter)
        assert frags["zerocopy_thp"]["mean_frags_gso"] < frags["zerocopy"]["mean_frags_gso"]


@live
@needs_root
@needs_ip
def test_live_kcount_filemap():
    r = _live("kcount_filemap")
    pb = r["pipe_buffer"]
    if pb["one_buffer_per_page"]:
        for s in r["splice"]:
            assert s["pipe_buffers_per_mib"] == MiB / PAGE
    assert r["file"]["folios_unchanged"] in (True, False)


@live
@needs_root
@needs_ip
def test_live_failure_midway_leaves_nothing(monkeypatch):
    """A transfer that fails once the namespaces, the XDP program and the counters exist."""
    def boom(self, total, timeout=None):
        raise TimeoutError("synthetic failure mid-transfer")

    monkeypatch.setattr(rx_mod._net.Drainer, "wait", boom)
    with pytest.raises(TimeoutError, match="synthetic"):
        rx_mod.transfer(1 * MiB, name="fail")
    assert rx_mod.leftovers() == []
    r = run("kcount_rx", mode="auto", quick=True, fresh=True)
    assert r.source == "recorded" and "synthetic" in r.reason
    assert rx_mod.leftovers() == []


_KILL_ME = r"""
from fraglife.probes import run
run("kcount_filemap", mode="live", quick=True)
"""


@live
@needs_root
@needs_ip
def test_sigkill_mid_run_then_the_next_probe_sweeps():
    """kcount_filemap killed with SIGKILL while its file and its namespaces exist: the next run of any
    probe (here btf) removes both, and leaves no ledger behind."""
    proc = subprocess.Popen([sys.executable, "-c", _KILL_ME], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    prefix = f"{fm_mod.NS_PREFIX}-{proc.pid}-"
    try:
        deadline = time.monotonic() + LOCK_WAIT
        while time.monotonic() < deadline and proc.poll() is None:
            files = _cleanup.orphans_of(proc.pid)["files"]
            if files and any(n.startswith(prefix) for n in os.listdir("/run/netns")):
                break
            time.sleep(0.02)
        else:
            pytest.skip("the probe never reached a socket run with its file in place (machine busy or it ended)")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    left = _cleanup.orphans()
    assert any(n.startswith(prefix) for n in left["netns"]) and files and set(files) <= set(left["files"])
    r = run("btf", mode="live", fresh=True)
    assert r.source == "live"
    assert not any(n.startswith(prefix) for n in os.listdir("/run/netns"))
    assert not any(os.path.exists(f) for f in files)
    assert not _cleanup.orphans_of(proc.pid)["ledger"]
    assert fm_mod.leftovers() == []


@live
@needs_root
@needs_ip
def test_sweep_keeps_a_live_process_namespace():
    name = f"fraglife-test-{os.getpid()}-abc123"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        _cleanup.sweep()
        assert name in os.listdir("/run/netns")
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


# -- a reader without root gets the recordings ---------------------------------------------------------

@needs_root
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) not installed")
def test_as_nobody_every_probe_comes_from_its_recording():
    from test_probes import NOBODY, _nobody_python

    found = _nobody_python()
    if found is None:
        pytest.skip("no Python interpreter with this venv's packages is executable by user nobody")
    exe, env = found
    script = ("import json, os; from fraglife.probes import run; "
              f"print(json.dumps({{'uid': os.getuid(), **{{n: run(n).to_json() for n in {list(NAMES)!r}}}}}))")
    proc = subprocess.run(NOBODY + exe + ["-c", script], capture_output=True, text=True, timeout=120, cwd="/",
                          env=env)
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d.pop("uid") == 65534
    for name in NAMES:
        j = d[name]
        assert j["source"] == "recorded", (name, j["reason"])
        assert "root" in j["reason"], (name, j["reason"])
        assert j["provenance"]["root"] is True  # measured by root
        _check(name, j)
