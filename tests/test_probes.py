"""Kernel probes: result schemas (live and recorded), fallbacks, recording, CLI.

Live tests need root and skip otherwise. No test asserts a duration; live
tests assert exact counts (pins) or structure.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraglife.params import ParamError
from fraglife.probes import NAMES, ProbeUnavailable, _core, load_recording, record, run
from fraglife.probes import _net, _perf, _sys
from fraglife.probes import atomics as atomics_mod
from fraglife.probes import btf as btf_mod
from fraglife.probes import cow as cow_mod
from fraglife.probes import gup as gup_mod
from fraglife.probes import kcount as kc_mod
from fraglife.probes import kcount_splice as splice_mod
from fraglife.probes import kpageflags as kpf_mod
from fraglife.probes import memlat as memlat_mod
from fraglife.probes import pagemap as pagemap_mod
from fraglife.probes import pins as pins_mod
from fraglife.probes import zerocopy as zc_mod
from test_probes_kernel import CHECKS as KERNEL_CHECKS  # kcount_rx, kcount_copy, kcount_filemap
from test_probes_mm import MM_CHECKS  # gup_paths, cow_mthp
from test_probe_zcsend import check_zcsend

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="live probe needs root (stat_refresh, kpageflags, PFNs, netns)")
live = pytest.mark.live


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch):
    monkeypatch.setattr(_core, "_cache", {})
    monkeypatch.delenv(_core.ENV, raising=False)


# -- schemas ---------------------------------------------------------------------------

def _int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _spread_ok(s: dict) -> None:
    assert {"median", "q1", "q3", "min", "max", "n"} <= set(s)
    assert s["min"] <= s["q1"] <= s["median"] <= s["q3"] <= s["max"]
    assert s["n"] >= 1


def check_pins(d: dict) -> None:
    assert set(pins_mod.OPS) <= set(d["ops"])
    for name, op in d["ops"].items():
        assert _int(op["bytes"]) and op["bytes"] > 0, name
        assert _int(op["pins_acquired"]) and op["pins_acquired"] >= 0, name
        assert _int(op["pins_released"]) and op["pins_released"] >= 0, name
        assert isinstance(op["kernel_source"], str) and "v6.12" in op["kernel_source"], name
    for name in ("io_uring_register_buffers", "io_uring_register_buffers_thp"):
        op = d["ops"][name]
        assert op["held_while_registered"] == op["pins_acquired"] - op["released_at_register"]


def check_btf(d: dict) -> None:
    assert set(btf_mod.STRUCTS) <= set(d["structs"])
    for name, s in d["structs"].items():
        if not s["present"]:
            assert s["looked_for"], name
            continue
        assert _int(s["size"]) and s["size"] > 0, name
        assert s["members"], name
        for m, e in s["members"].items():
            assert _int(e["offset"]) and 0 <= e["offset"] and e["offset"] + e["size"] <= s["size"], (name, m)
            assert isinstance(e["type"], str)
    for c in d["checks"].values():
        assert {"expected", "found", "ok"} <= set(c)


def check_zerocopy(d: dict) -> None:
    assert {"loopback", "veth"} <= set(d["transports"])
    for tname, t in d["transports"].items():
        assert t["runs"], tname
        for key, r in t["runs"].items():
            assert r["reader"] in ("after_each_send", "at_end")
            assert r["sends"] >= r["messages"] >= 1
            assert r["notifications"] >= 1
            # the ranges tile 0 .. sends-1 exactly, in order, without overlap
            if not r["ranges_truncated"]:
                assert r["ranges"][0][0] == 0
                assert r["ranges"][-1][1] == r["sends"] - 1
                for (_, hi), (lo, _) in zip(r["ranges"], r["ranges"][1:]):
                    assert lo == hi + 1
            assert r["sends_covered"] == r["sends"]
            assert 0 <= r["copied_notifications"] <= r["notifications"]


def check_vmsplice(d: dict) -> None:
    assert set(d["cases"]) == set(__import__("fraglife.probes.vmsplice", fromlist=["CASES"]).CASES)
    for c in d["cases"].values():
        assert c["reader_sees"] in ("new", "old", "mixed", "neither")
        assert c["bytes_new"] + c["bytes_old"] + c["bytes_other"] == c["bytes_read"] == c["bytes_moved"]
    assert isinstance(d["reader_sees_new_data"], bool)


def check_faults(d: dict) -> None:
    for name in ("first_touch_4k", "retouch_4k", "populate_write_4k", "first_touch_thp", "retouch_thp",
                 "process_vm_readv", "memcpy_same_size", "io_uring_register", "io_uring_register_thp"):
        op = d["ops"][name]
        _spread_ok(op["ns_per_page"])
        assert op["ns_per_page"]["min"] > 0
        assert op["pages"] * d["page_size"] == op["bytes"]


def check_pagemap(d: dict) -> None:
    assert set(pagemap_mod.BUFFERS) <= set(d["buffers"])
    for name, b in d["buffers"].items():
        assert 1 <= b["runs"] <= b["pages"]
        assert len(b["runs_each"]) == d["repeats"]
        t = b["median_trial"]
        assert sum(t["run_lengths"].values()) == t["runs"]
        assert 1 <= t["largest_run_pages"] <= b["pages"]
        # a folio run lies inside one physical run; the layout replays the trial's breaks exactly
        assert t["runs"] <= t["folio_runs"] <= b["pages"] and 0 <= t["runs_crossing_folios"] <= t["runs"]
        contig, same = pagemap_mod.expand(t["layout"])
        assert contig.size == b["pages"] - 1 and not np.any(same & ~contig)
        assert 1 + int((~contig).sum()) == t["runs"] and 1 + int((~same).sum()) == t["folio_runs"]
        assert b["kind"] in ("anon_4k", "anon_thp", "file", "anon_4k_fragmented", "anon_thp_fragmented")
    assert d["buffers"]["16MiB_file"]["filesystem"]
    assert d["thp"]["enabled"] in ("always", "madvise", "never")


def check_memlat(d: dict) -> None:
    assert d["chains"] == list(memlat_mod.CHAINS)
    assert "huge" in d["modes"]
    for mode, m in d["modes"].items():
        sizes = [p["bytes"] for p in m["points"]]
        assert sizes == sorted(sizes) and len(sizes) >= 5
        for p in m["points"]:
            assert 0 <= p["thp_fraction"] <= 1
            assert set(p["chains"]) == {str(k) for k in d["chains"]}
            for v in p["chains"].values():
                _spread_ok(v)
                assert v["min"] > 0
    for c in d["caches"]:
        assert c["level"] >= 1 and c["bytes"] > 0
    assert "-O2" in d["compiler"]


def check_kpageflags(d: dict) -> None:
    assert sum(d["categories"].values()) == d["pfns"]
    assert d["pages"] == d["pfns"] - d["categories"]["hole"]
    assert set(kpf_mod.FLAGS) == set(d["flags"])
    assert d["categories"]["free"] <= d["flags"]["BUDDY"]
    c = d["compound"]
    assert c["thp_head"] <= c["compound_head"] and c["thp_tail"] <= c["compound_tail"]
    for cat, n in d["descriptors"].items():
        assert 0 <= n <= d["categories"][cat], cat
    for cat, sizes in d["folio_sizes"].items():
        assert sum(int(k) * v for k, v in sizes.items()) == d["categories"][cat], cat
        assert sum(sizes.values()) == d["descriptors"][cat], cat
    free_pages = sum((1 << int(k)) * v for k, v in d["buddyinfo"].items())
    assert free_pages > 0


def check_memcpy(d: dict) -> None:
    sizes = [s["bytes"] for s in d["sizes"].values()]
    assert sizes == sorted(sizes) and sizes[0] == 64 and sizes[-1] == 64 << 20
    for s in d["sizes"].values():
        _spread_ok(s["gb_per_s"])
        _spread_ok(s["ns_per_copy"])
        assert s["reps"] >= 1
    assert d["copy_verified"] is True


MiB = 1 << 20


def check_kcount_run(r: dict) -> None:
    assert {"name", "sender", "tso", "bytes", "mss", "drop_rate", "qdisc", "per_mib", "raw", "idle", "method",
            "completions", "copied", "seconds"} <= set(r)
    assert r["sender"] in kc_mod.SENDERS and isinstance(r["tso"], bool) and isinstance(r["copied"], bool)
    assert _int(r["bytes"]) and r["bytes"] > 0 and _int(r["mss"]) and r["mss"] > 0
    assert set(r["per_mib"]) == set(r["raw"]) == set(r["idle"]) == set(r["method"])
    for k, m in r["method"].items():
        assert m.startswith(("filter: ", "idle-subtracted")), (k, m)
        assert m.startswith("filter: ") == (not r["idle"][k]["subtracted"]), k
        assert _int(r["raw"][k]) and r["raw"][k] >= 0, k
        # per MiB is the raw count, less the idle estimate where subtracted
        est = r["idle"][k]["estimate"] if r["idle"][k]["subtracted"] else 0.0
        assert r["per_mib"][k] == pytest.approx((r["raw"][k] - est) / (r["bytes"] / MiB), abs=2e-3), k
    assert 0 <= r["drop_rate"] < 1
    if r["qdisc"] is None:
        assert r["drop_rate"] == 0
    else:
        q = r["qdisc"]
        assert _int(q["packets"]) and _int(q["drops"])
        assert r["drop_rate"] == pytest.approx(q["drops"] / (q["packets"] + q["drops"]), abs=1e-6)
    assert _int(r["completions"]) and 0 <= r["completions"] <= r["completion_ids"]
    if r["sender"] == "zerocopy":
        assert r["completion_ids"] == r["send_calls"] >= 1
    # the pair's own counters agree with the filtered tracepoints: each skb queued on the veth is sent once
    # (no qdisc), and what the veth took either reached the peer's stack or is in its drop count
    pm, raw, links = r["per_mib"], r["raw"], r["links"]
    if r["qdisc"] is None and r["tso"]:
        assert raw["net:net_dev_queue"] == raw["net:net_dev_xmit"]
    if not r.get("gro"):
        assert raw["net:netif_receive_skb"] == links["tx"].get("tx_packets", 0)
        assert raw["net:net_dev_xmit"] == links["tx"].get("tx_packets", 0) + links["tx"].get("tx_dropped", 0)
        assert raw["net:netif_receive_skb@ack"] == links["rx"].get("tx_packets", 0)
    assert pm["tcp:tcp_retransmit_skb[err]"] <= pm["tcp:tcp_retransmit_skb"]


def check_kcount(d: dict) -> None:
    runs = {r["name"]: r for r in d["runs"]}
    assert set(runs) == {"tso_on", "tso_off", "bottleneck"}
    for r in runs.values():
        check_kcount_run(r)
    for tp, t in d["tracepoints"].items():
        assert t["present"] is ("id" in t), tp
    assert set(d["receive_side"]) <= set(kc_mod.RECEIVE_SIDE)
    assert all(d["tracepoints"][tp]["present"] for tp in d["receive_side"])
    on, off, bn = runs["tso_on"], runs["tso_off"], runs["bottleneck"]
    assert on["tso"] and not off["tso"]
    for r in (on, off):  # the kept repetition is the least disturbed (recordings older than reps have none)
        if "reps" in r:
            keys = [tuple(k) for k in r["reps"]["disturbance"]]
            assert len(keys) == r["reps"]["n"] and keys[r["reps"]["kept"]] == min(keys)
    # TSO off: the stack segments, so at least one packet per MSS reaches the veth
    assert off["per_mib"]["net:net_dev_xmit"] >= MiB / off["mss"]
    assert on["per_mib"]["net:net_dev_xmit"] < MiB / on["mss"]
    # the bottleneck drops, and what it drops is retransmitted
    assert bn["qdisc"]["kind"] == "tbf" and bn["qdisc"]["drops"] > 0 and bn["drop_rate"] > 0
    assert bn["raw"]["tcp:tcp_retransmit_skb"] > 0 and bn["snmp"]["tx"]["Tcp.RetransSegs"] > 0
    # the MSG_ZEROCOPY grid: the receive window held open
    assert [g["name"] for g in d["grid"]] == [name for name, _kw in kc_mod.grid_settings(d["quick"])]
    for g in d["grid"]:
        check_kcount_run(g)
        assert g["sender"] == "zerocopy" and g["rcvbuf"] == kc_mod.GRID_RCVBUF
        check_tail(g)


def check_tail(r: dict) -> None:
    """The tail share: [no_tail] first passes are some of the [first] ones, one per full-sized send call."""
    t = r["tail_unsent"]
    assert 0 <= t["no_tail"] <= t["first"] and t["share"] == pytest.approx(1 - t["no_tail"] / t["first"], abs=1e-4)
    assert r["sendmsg_len"] == kc_mod.sendmsg_len(r["sender"], r["chunk"], r["bytes"])
    assert t["first"] <= -(-r["bytes"] // r["sendmsg_len"])
def _check_curve(curve: list, n_cpus: int) -> None:
    assert [c["threads"] for c in curve] == atomics_mod.thread_counts(n_cpus)
    for c in curve:
        assert len(c["cpus"]) == len(set(c["cpus"])) == c["threads"]
        _spread_ok(c["ns_per_op"])
        _spread_ok(c["mops_per_s"])
        _spread_ok(c["fairness"])
        assert c["ns_per_op"]["min"] > 0 and 0 <= c["fairness"]["min"] <= c["fairness"]["max"] <= 1
        assert 0 <= c["clean_windows"] <= c["windows"] and c["used"] in ("clean", "all")
        assert c["verified"] is True  # the shared/private counters add up to the increments counted


def check_atomics(d: dict) -> None:
    t = d["topology"]
    cpus = [p["cpu"] for p in t["cpus"]]
    assert t["n_cpus"] == len(cpus) >= 1 and cpus == sorted(cpus)
    for p in t["cpus"]:
        assert p["cpu"] in p["siblings"]
        assert p["llc"] is None or p["cpu"] in p["llc"]["cpus"]
    _spread_ok(d["local_atomic"]["ns"])
    assert d["local_atomic_ns"] == d["local_atomic"]["ns"]["median"] > 0
    assert d["local_atomic"]["cpu"] in cpus
    n_pairs = len(cpus) * (len(cpus) - 1) // 2
    assert len(d["pairs"]) == n_pairs or len(d["pairs"]) <= atomics_mod.SETTINGS[False]["pair_cap"] + len(
        atomics_mod.CLASSES)
    for p in d["pairs"]:
        a, b = p["cpus"]
        assert a != b and {a, b} <= set(cpus)
        assert p["class"] == atomics_mod.classify(t, a, b) and p["class"] in atomics_mod.CLASSES
        _spread_ok(p["half_round_trip_ns"])
        assert p["verified"] is True  # the line's final value is the number of swaps
    if d["pairs"]:
        distinct = [p for p in d["pairs"] if p["class"] != "smt_sibling"] or d["pairs"]
        assert d["line_transfer_ns"] == _core.spread(p["half_round_trip_ns"]["median"] for p in distinct)["median"]
        assert set(d["line_transfer"]["by_class"]) == {p["class"] for p in d["pairs"]}
    else:
        assert d["line_transfer_ns"] is None and d["line_transfer"]["reason"]
    for curve in (d["contended"], d["private"], d["paced"]["contended"], d["paced"]["private"],
                  d["cmpxchg_contended"]):
        _check_curve(curve, len(cpus))
    _spread_ok(d["cmpxchg_loop"]["ns"])
    assert d["cmpxchg_loop_ns"] == d["cmpxchg_loop"]["ns"]["median"] > 0
    for c in d["cmpxchg_contended"]:  # one thread never retries; retries are failed compare-and-swaps
        _spread_ok(c["retries_per_op"])
        assert c["retries_per_op"]["min"] >= 0 and (c["threads"] > 1 or c["retries_per_op"]["max"] == 0)
    assert d["paced"]["gap_steps"] > 0 and d["paced"]["gap_ns"] >= 0
    assert d["verified"] is True
    assert 0 <= d["load"]["preempted_windows"] <= d["load"]["windows"]
    assert "-O2" in d["compiler"] and "-pthread" in d["compiler"]


def check_gup(d: dict) -> None:
    assert [int(k) for k in d["register"]] == list(gup_mod.IOV_PAGES)
    for r in d["register"].values():
        _spread_ok(r["register_ns_per_page"])
        _spread_ok(r["unregister_ns_per_page"])
        assert r["iovecs"] * r["iov_pages"] >= r["pages"] > 0
    for k in ("register", "unregister"):
        f = d["fit"][k]
        assert f["points"] == len(gup_mod.IOV_PAGES) and f["per_page_ns"] > 0
    assert [float(k) for k in d["thp_share"]] == list(gup_mod.THP_SHARES)
    for r in d["thp_share"].values():
        assert 0 <= r["thp_backed"] <= 1
        _spread_ok(r["register_ns_per_page"])
    for part in ("slow_path", "cold", "read_fault_zero", "vmsplice_get"):
        _spread_ok(d[part].get("register_ns_per_page") or d[part]["ns_per_page"])
    vc = d["vmsplice_calls"]
    assert vc["calls"] == [256, 16] and vc["pages"] == 256
    _spread_ok(vc["per_call_ns"])


def check_cow(d: dict) -> None:
    f = d["fork"]
    for name, (pinned, thp, alive) in cow_mod.FORK_CASES.items():
        c = f[name]
        assert (c["pinned"], c["thp"], c["child_alive"]) == (pinned, thp, alive)
        assert 0 <= c["child_copied"] <= c["pages"] and 0 <= c["parent_moved"] <= c["pages"]
        _spread_ok(c["fork_ns"])
        _spread_ok(c["write_after_fork_ns_per_page"])
    assert f["4k_copy_at_fork"]["n"] >= 1 and "thp_copy_at_fork_ns_per_page" in f
    for r in d["after_fork"].values():
        assert 0 <= r["parent_moved"] <= r["pages"]
    fp = d["false_positive"]
    assert set(fp["copied"]) == {"never_pinned", "has_pinned"} and fp["bias"] == 1024
    assert [int(k) for k in fp["copied"]["has_pinned"]] == list(cow_mod.FP_REFS)
    ml = d["memlock"]
    assert ml["limit_pages"] == ml["limit_bytes"] // d["page_size"]
    for r in ml["sends"] + ml["register"]:
        assert r["expected"] in ("ok", "ENOBUFS", "ENOMEM")


def check_kcount_splice(d: dict) -> None:
    runs = {r["name"]: r for r in d["runs"]}
    assert set(runs) == {"splice_tso_on", "splice_tso_off"}
    for r in runs.values():
        check_kcount_run(r)
        assert r["sender"] == "splice" and r["completions"] == 0 and r["chunk"] == 256 * 1024
        check_tail(r)
    assert [g["name"] for g in d["grid"]] == [name for name, _kw in splice_mod.grid_settings(d["quick"])]
    for g in d["grid"]:
        check_kcount_run(g)
        check_tail(g)
        assert g["sender"] == "splice" and g["rcvbuf"] == kc_mod.GRID_RCVBUF
        assert g["mtu"] in splice_mod.MTUS and g["chunk"] in splice_mod.SIZES
    on, off = runs["splice_tso_on"], runs["splice_tso_off"]
    assert on["tso"] and not off["tso"]
    assert off["per_mib"]["net:net_dev_xmit"] >= MiB / off["mss"]
    assert on["per_mib"]["net:net_dev_xmit"] < MiB / on["mss"]


CHECKS = {"pins": check_pins, "btf": check_btf, "zerocopy": check_zerocopy, "vmsplice": check_vmsplice,
          "faults": check_faults, "pagemap": check_pagemap, "kpageflags": check_kpageflags,
          "memcpy": check_memcpy, "kcount": check_kcount, "kcount_splice": check_kcount_splice,
          "atomics": check_atomics, "memlat": check_memlat, "gup": check_gup, "cow": check_cow,
          **KERNEL_CHECKS, **MM_CHECKS, "zcsend": check_zcsend}


def check_result(r, name: str, source: str) -> None:
    assert r.name == name and r.source == source, r.note()
    assert isinstance(r.kernel, str) and r.kernel
    datetime.fromisoformat(r.recorded_at)
    assert r.provenance["kernel"] == r.kernel
    assert {"cpu_model", "root", "readable", "thp"} <= set(r.provenance)
    note = r.note()
    assert "\n" not in note and r.kernel in note and r.recorded_at in note
    assert ("RECORDED" in note) == (source == "recorded")
    j = json.loads(json.dumps(r.to_json()))
    assert j["probe"] == name and j["source"] == source and j["kernel"] == r.kernel
    CHECKS[name](r.data)


def test_every_probe_has_a_schema_check():
    assert set(CHECKS) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_recording_exists_and_matches_schema(name):
    raw = json.loads(_core.recording_path(name).read_text())
    assert raw["probe"] == name and raw["source"] == "live" and not raw["partial"]
    r = load_recording(name, "test")
    check_result(r, name, "recorded")
    assert r.reason == "test"


# -- fallbacks ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_env_forces_recordings(name, monkeypatch):
    monkeypatch.setenv(_core.ENV, "recorded")
    r = run(name)
    check_result(r, name, "recorded")
    assert _core.ENV in r.reason


def test_bad_mode_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(_core.ENV, "sometimes")
    with pytest.raises(ParamError, match="FRAGLIFE_PROBES"):
        run("btf")
    with pytest.raises(ParamError, match="unknown probe 'nope'"):
        run("nope")


MISSING = "/nonexistent/fraglife-test"


@pytest.mark.parametrize("name, target, attr", [
    ("pins", pins_mod, "STAT_REFRESH"),
    ("pins", pins_mod, "VMSTAT"),
    ("btf", btf_mod, "VMLINUX"),
    ("kpageflags", kpf_mod, "KPAGEFLAGS"),
    ("pagemap", pagemap_mod, "PAGEMAP"),
])
def test_missing_source_falls_back_to_recording(name, target, attr, monkeypatch):
    monkeypatch.setattr(target, attr, MISSING)
    r = run(name)
    check_result(r, name, "recorded")
    if ROOT or name in ("btf", "pagemap"):  # without root, pins/kpageflags may fail on access first
        assert f"{MISSING} is missing" in r.reason
    live_only = run(name, mode="live")
    assert live_only.source == "unavailable" and live_only.reason


def test_unsupported_syscall_falls_back(monkeypatch):

    def enosys(*a, **k):
        raise OSError(38, "vmsplice: Function not implemented")

    monkeypatch.setattr(_sys, "vmsplice", enosys)
    r = run("vmsplice")
    check_result(r, "vmsplice", "recorded")
    assert "Function not implemented" in r.reason


def test_a_crashing_probe_falls_back(monkeypatch):
    from fraglife.probes import memcpy

    def boom(quick=False):
        raise ZeroDivisionError("synthetic")

    monkeypatch.setattr(memcpy, "measure", boom)
    r = run("memcpy")
    check_result(r, "memcpy", "recorded")
    assert "ZeroDivisionError: synthetic" in r.reason


def test_atomics_without_a_compiler_falls_back_to_the_recording(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no cc, gcc or clang
    monkeypatch.setattr(atomics_mod._cc, "_built", {})
    r = run("atomics", quick=True)
    check_result(r, "atomics", "recorded")
    assert "no C compiler" in r.reason
    live_only = run("atomics", mode="live", quick=True, fresh=True)
    assert live_only.source == "unavailable" and "no C compiler" in live_only.reason


def test_atomics_without_compiler_or_recording_is_unavailable(monkeypatch, tmp_path):
    from fraglife.model import costs

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(_core, "RECORDINGS", tmp_path)
    r = run("atomics", quick=True)
    assert r.source == "unavailable" and "no C compiler" in r.reason and "no recording" in r.reason
    (tmp_path / "atomics.json").write_text('{"probe": "atomics", "kernel": "x", "local_atomic_ns": 5}')
    r = run("atomics", quick=True, fresh=True)
    assert r.source == "unavailable" and "missing" in r.reason and "pairs" in r.reason
    (tmp_path / "atomics.json").write_text("{truncated")
    r = run("atomics", quick=True, fresh=True)
    assert r.source == "unavailable" and "unreadable" in r.reason
    with pytest.raises(ValueError, match="atomics = unavailable .*no C compiler.*pass overrides"):
        costs.UnitCosts.from_atomics(r)
    units = costs.UnitCosts.from_atomics(r, overrides={"local_atomic_ns": 5, "line_transfer_ns": 50})
    assert units["line_transfer_ns"] == 50 and units.source("local_atomic_ns") == costs.OVERRIDE


def test_memlat_without_a_compiler_falls_back_to_the_recording(monkeypatch, tmp_path):
    from fraglife.probes import _cc

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(_cc, "_built", {})
    r = run("memlat", quick=True)
    check_result(r, "memlat", "recorded")
    assert "no C compiler" in r.reason and "memlat" in r.reason
    live_only = run("memlat", mode="live", quick=True, fresh=True)
    assert live_only.source == "unavailable" and "no C compiler" in live_only.reason


def test_memlat_parses_its_program_and_reads_caches(tmp_path):
    rows = memlat_mod.parse("16384 1 0 1.0 1.2 0.9\n16384 8 0 0.5 0.5 0.5\n\nbad line\n")
    assert rows == [{"bytes": 16384, "chains": 1, "thp_kib": 0, "ns": [1.0, 1.2, 0.9]},
                    {"bytes": 16384, "chains": 8, "thp_kib": 0, "ns": [0.5, 0.5, 0.5]}]
    _fake_cpu(tmp_path, 0, 0, 0, "0", "0-1")
    c = memlat_mod.caches(0, str(tmp_path / "cpu{cpu}" / "cache"))
    assert [(x["level"], x["type"]) for x in c] == [(1, "Data"), (2, "Unified"), (3, "Unified")]
    assert c[0]["bytes"] == 32768 << 10


def test_memlat_live_measures_dependent_loads():
    """The program's own chain check passes, and a working set past every cache costs more per load than
    one inside L1 (ordering only, never a duration)."""
    r = run("memlat", mode="live", quick=True, fresh=True)
    if r.source != "live":
        pytest.skip(r.reason)
    check_memlat(r.data)
    lat = dict(memlat_mod.latency(r.data))
    assert lat[max(lat)] > lat[min(lat)]


def test_atomics_pin_failure_is_a_reason(monkeypatch):
    topo = atomics_mod.read_topology()
    beyond = max(p["cpu"] for p in topo["cpus"]) + 1  # a CPU this process may not run on
    bogus = {**topo, "cpus": [dict(p, cpu=p["cpu"] + beyond) for p in topo["cpus"]]}
    monkeypatch.setattr(atomics_mod, "read_topology", lambda: bogus)
    r = run("atomics", mode="live", quick=True)
    assert r.source == "unavailable" and "cannot pin" in r.reason and "sched_setaffinity" in r.reason


def test_no_recording_and_no_live_is_unavailable_not_an_exception(monkeypatch, tmp_path):
    monkeypatch.setattr(_core, "RECORDINGS", tmp_path)
    monkeypatch.setattr(btf_mod, "VMLINUX", MISSING)
    r = run("btf")
    assert r.source == "unavailable" and r.data == {}
    assert "missing" in r.reason and "no recording" in r.reason
    assert r.note().startswith("btf: unavailable")
    assert r.summary() == []


def test_corrupt_recording_is_reported(monkeypatch, tmp_path):
    monkeypatch.setattr(_core, "RECORDINGS", tmp_path)
    (tmp_path / "btf.json").write_text('{"probe": "btf", "kernel": "x"}')
    r = load_recording("btf")
    assert r.source == "unavailable" and "structs" in r.reason
    (tmp_path / "btf.json").write_text("{not json")
    assert "unreadable" in load_recording("btf").reason
    (tmp_path / "btf.json").write_text("[1, 2]")
    assert "not a JSON object" in load_recording("btf").reason


def test_partial_live_result_takes_the_missing_part_from_the_recording(monkeypatch):
    monkeypatch.setattr(zc_mod.shutil, "which", lambda name: None)
    monkeypatch.setattr(zc_mod, "RUNS", zc_mod.QUICK_RUNS)
    r = run("zerocopy")
    assert r.source == "live"
    assert "transports.veth" in r.partial and "`ip` is not installed" in r.partial["transports.veth"]
    veth = r["transports"]["veth"]
    assert veth["source"] == "recorded" and veth["recorded_at"] and veth["runs"]
    assert "transports.veth recorded" in r.note()
    check_zerocopy(r.data)
    with pytest.raises(ProbeUnavailable, match="parts came from the old recording"):
        record(r)


# -- recording ---------------------------------------------------------------------------

def test_record_writes_a_live_result_and_reads_it_back(monkeypatch, tmp_path):
    monkeypatch.setattr(_core, "RECORDINGS", tmp_path)
    r = run("btf", mode="live")
    assert r.source == "live"  # /sys/kernel/btf/vmlinux is world-readable
    path = record(r)
    assert path == tmp_path / "btf.json"
    back = load_recording("btf", "because")
    assert back.source == "recorded" and back.data == r.data and back.recorded_at == r.recorded_at
    with pytest.raises(ProbeUnavailable, match="not recorded"):
        record(back)


# -- CLI -------------------------------------------------------------------------------------

def _cli(argv, capsys):
    from fraglife.cli import main

    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_json_recorded(capsys):
    code, out, _ = _cli(["probe", "--json", "--source", "recorded"], capsys)
    assert code == 0
    d = json.loads(out)
    assert list(d) == list(NAMES)
    for name, j in d.items():
        assert j["source"] == "recorded" and j["provenance"]["kernel"] == j["kernel"]
        CHECKS[name]({k: v for k, v in j.items() if k not in _core.META_KEYS})


def test_cli_text_and_errors(capsys, monkeypatch, tmp_path):
    code, out, _ = _cli(["probe", "vmsplice", "--source", "recorded"], capsys)
    assert code == 0 and "RECORDED" in out and "reader sees new" in out
    code, _, err = _cli(["probe", "nope"], capsys)
    assert code == 2 and "unknown probe 'nope'" in err
    monkeypatch.setattr(_core, "RECORDINGS", tmp_path)
    monkeypatch.setattr(btf_mod, "VMLINUX", MISSING)
    code, out, _ = _cli(["probe", "btf", "--record"], capsys)
    assert code == 1 and "NOT recorded" in out and not (tmp_path / "btf.json").exists()


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def _nobody_python() -> tuple[list[str], dict] | None:
    """An interpreter user nobody can run with this venv's packages: the venv's own, or the
    system's python of the same minor version (the venv's may live under a private /root)."""
    import sysconfig

    env = {"PATH": os.environ["PATH"], "HOME": "/tmp"}
    lib = str(Path(_core.__file__).resolve().parents[2])
    site = sysconfig.get_paths()["purelib"]
    minor = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for exe, extra in ((sys.executable, {}), (f"/usr/bin/{minor}", {"PYTHONPATH": f"{lib}:{site}"})):
        if not os.path.exists(exe):
            continue
        probe = subprocess.run(NOBODY + ["env", *(f"{k}={v}" for k, v in {**env, **extra}.items()),
                                         exe, "-c", "import fraglife.probes"],
                               capture_output=True, timeout=60, cwd="/")
        if probe.returncode == 0:
            return [exe], {**env, **extra}
    return None


@needs_root
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) not installed")
def test_cli_as_nobody_prints_recordings_and_exits_0():
    found = _nobody_python()
    if found is None:
        pytest.skip("no Python interpreter with this venv's packages is executable by user nobody")
    exe, env = found
    script = ("import sys, argparse; from fraglife.probes import cli; p = argparse.ArgumentParser(); "
              "cli.register(p.add_subparsers()); a = p.parse_args(['probe', '--json', 'pins', 'btf', "
              "'pagemap', 'kpageflags', 'kcount']); sys.exit(a.func(a))")
    proc = subprocess.run(NOBODY + exe + ["-c", script], capture_output=True, text=True, timeout=60,
                          cwd="/", env=env)
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    for name in ("pins", "pagemap", "kpageflags", "kcount"):
        assert d[name]["source"] == "recorded", d[name]["reason"]
        assert d[name]["provenance"]["root"] is True  # recorded by root
    assert "stat_refresh" in d["pins"]["reason"]
    assert "need root" in d["kcount"]["reason"]
    assert "CAP_SYS_ADMIN" in d["pagemap"]["reason"]
    assert d["btf"]["source"] == "live"  # world-readable
    assert d["btf"]["provenance"]["root"] is False


@needs_root
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) not installed")
def test_atomics_live_as_nobody():
    """No privilege needed: user nobody builds the C program in a private temporary directory
    (it cannot write build/) and measures live."""
    found = _nobody_python()
    if found is None:
        pytest.skip("no Python interpreter with this venv's packages is executable by user nobody")
    exe, env = found
    env = {**env, "FRAGLIFE_BUILD": "/nonexistent/fraglife-build"}
    script = ("import json; from fraglife.probes import run; r = run('atomics', mode='live', quick=True); "
              "print(json.dumps(r.to_json()))")
    proc = subprocess.run(NOBODY + exe + ["-c", script], capture_output=True, text=True, timeout=120,
                          cwd="/", env=env)
    assert proc.returncode == 0, proc.stderr
    j = json.loads(proc.stdout)
    assert j["source"] == "live", j["reason"]
    assert j["provenance"]["root"] is False
    check_atomics({k: v for k, v in j.items() if k not in _core.META_KEYS})


# -- pure parts ----------------------------------------------------------------------------

def _fake_cpu(root: Path, cpu: int, core: int, package: int, siblings: str, llc: str) -> None:
    t = root / f"cpu{cpu}" / "topology"
    t.mkdir(parents=True)
    (t / "core_id").write_text(f"{core}\n")
    (t / "physical_package_id").write_text(f"{package}\n")
    (t / "die_id").write_text("0\n")
    (t / "thread_siblings_list").write_text(siblings + "\n")
    for idx, (level, kind, shared) in enumerate(((1, "Data", siblings), (1, "Instruction", siblings),
                                                (2, "Unified", siblings), (3, "Unified", llc))):
        c = root / f"cpu{cpu}" / "cache" / f"index{idx}"
        c.mkdir(parents=True)
        (c / "level").write_text(f"{level}\n")
        (c / "type").write_text(kind + "\n")
        (c / "shared_cpu_list").write_text(shared + "\n")
        (c / "size").write_text("32768K\n")


def test_atomics_topology_classes_on_a_two_socket_smt_machine(tmp_path):
    """16 CPUs: 2 packages x 2 LLCs x 2 cores x 2 SMT threads; siblings are n and n+8."""
    for cpu in range(16):
        core = cpu % 8
        package, llc = core // 4, core // 2
        sib = f"{core},{core + 8}"
        llc_cpus = f"{2 * llc}-{2 * llc + 1},{2 * llc + 8}-{2 * llc + 9}"
        _fake_cpu(tmp_path, cpu, core, package, sib, llc_cpus)
    t = atomics_mod.read_topology(tmp_path, cpus=range(16))
    assert (t["n_cpus"], t["packages"], t["llcs"], t["smt"]) == (16, 2, 4, True)
    assert t["cpus"][9]["siblings"] == [1, 9] and t["cpus"][9]["llc"]["cpus"] == [0, 1, 8, 9]
    c = atomics_mod.classify
    assert (c(t, 0, 8), c(t, 0, 1), c(t, 0, 9), c(t, 0, 2), c(t, 0, 4), c(t, 3, 12)) == (
        "smt_sibling", "same_llc", "same_llc", "other_llc", "other_socket", "other_socket")
    pairs = atomics_mod.choose_pairs(t, cap=12)  # 120 pairs: a few of each class
    classes = [p[2] for p in pairs]
    assert set(classes) == {"smt_sibling", "same_llc", "other_llc", "other_socket"}
    assert len(pairs) <= 12 and all(classes.count(k) >= 2 for k in set(classes))
    assert all(c(t, a, b) == cls for a, b, cls in pairs)
    assert len(atomics_mod.choose_pairs(t, cap=200)) == 120
    order = atomics_mod.spread_order(t)
    assert order[:8] == list(range(8)) and sorted(order) == list(range(16))  # one thread per core first
    assert atomics_mod.thread_counts(16) == [1, 2, 3, 4, 8, 16]
    assert atomics_mod.thread_counts(2) == [1, 2] and atomics_mod.thread_counts(6) == [1, 2, 3, 4, 6]
    assert atomics_mod.parse_cpulist("0-2,5,7-8\n") == [0, 1, 2, 5, 7, 8]


def test_atomics_without_cache_information_says_same_socket(tmp_path):
    for cpu in range(2):
        t = tmp_path / f"cpu{cpu}" / "topology"
        t.mkdir(parents=True)
        (t / "physical_package_id").write_text("0\n")
    topo = atomics_mod.read_topology(tmp_path, cpus=[0, 1])
    assert topo["llcs"] is None and atomics_mod.classify(topo, 0, 1) == "same_socket"



def _btf_blob() -> bytes:
    """A hand-made BTF: int, struct s { int a; union { int b; char c[3]; }; int d:3, e:5; } ."""
    strings = b"\0int\0s\0a\0b\0c\0d\0e\0char\0"
    off = {n: strings.index(b"\0" + n.encode() + b"\0") + 1 for n in ("int", "s", "a", "b", "c", "d", "e", "char")}
    types = b""
    # 1: int (4 bytes)
    types += struct.pack("<III", off["int"], 1 << 24, 4) + struct.pack("<I", 32)
    # 2: char
    types += struct.pack("<III", off["char"], 1 << 24, 1) + struct.pack("<I", 8)
    # 3: char[3]
    types += struct.pack("<III", 0, 3 << 24, 0) + struct.pack("<III", 2, 1, 3)
    # 4: anonymous union { int b; char c[3]; } size 4
    types += struct.pack("<III", 0, (5 << 24) | 2, 4)
    types += struct.pack("<III", off["b"], 1, 0) + struct.pack("<III", off["c"], 3, 0)
    # 5: struct s, kind_flag set (bitfield encoding), size 12
    types += struct.pack("<III", off["s"], (1 << 31) | (4 << 24) | 4, 12)
    types += struct.pack("<III", off["a"], 1, 0)
    types += struct.pack("<III", 0, 4, 32)
    types += struct.pack("<III", off["d"], 1, (3 << 24) | 64)
    types += struct.pack("<III", off["e"], 1, (5 << 24) | 67)
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return hdr + types + strings


def test_btf_parser_on_a_handmade_blob():
    b = btf_mod.BTF(_btf_blob())
    assert len(b) == 5
    lay = b.layout("s")
    assert lay["size"] == 12
    m = lay["members"]
    assert m["a"] == {"offset": 0, "size": 4, "type": "int"}
    assert m["b"]["offset"] == 4 and m["c"]["offset"] == 4 and m["c"]["nelems"] == 3 and m["c"]["type"] == "char[3]"
    assert m["d"]["bit_offset"] == 64 and m["d"]["bits"] == 3 and m["d"]["offset"] == 8
    assert m["e"]["bit_offset"] == 67 and m["e"]["bits"] == 5
    assert b.layout("missing") is None
    with pytest.raises(btf_mod.BTFError, match="magic"):
        btf_mod.BTF(b"\0" * 32)


def test_pagemap_runs():
    assert pagemap_mod.runs(np.array([5, 6, 7, 9, 10, 3], np.int64)).tolist() == [3, 2, 1]
    assert pagemap_mod.runs(np.array([7], np.int64)).tolist() == [1]
    assert pagemap_mod.runs(np.arange(100, 612, dtype=np.int64)).tolist() == [512]


# Reads per round with 5 reps: baseline 1-6, samples 7-16, baseline after 17-22; round 2 starts at 23.
@pytest.mark.parametrize("noisy_reads", [{4, 32}, {18, 32}], ids=["before", "after"])
def test_pin_windows_survive_foreign_pins(monkeypatch, noisy_reads):
    """A foreign pin in a baseline window (before or after the samples) forces another round; one in a
    sample (read 32 ends sample 2 of round 2) is outvoted."""
    state = {"acq": 0, "rel": 0, "reads": 0}

    def fake_counters():
        state["reads"] += 1
        if state["reads"] in noisy_reads:
            state["acq"] += 7
        return state["acq"], state["rel"]

    def op():
        state["acq"] += 256
        state["rel"] += 256

    monkeypatch.setattr(pins_mod, "read_counters", fake_counters)
    res = pins_mod.measure_window(op, reps=5)
    assert (res["pins_acquired"], res["pins_released"]) == (256, 256)
    assert (res["rounds"], res["agree"], res["stable"]) == (2, 4, True)
    assert [263, 256] in res["samples"]


def test_disturbed_pin_windows_take_that_operation_from_the_recording(monkeypatch):
    """A machine that pins all the time (baseline never 0) gives no live count: the row is the recording's."""
    state = {"acq": 0, "busy": False}
    real_run_op = pins_mod._run_op

    def counters():
        state["acq"] += 3 * state["busy"]  # while busy, someone else pins between any two reads
        return state["acq"], state["acq"]

    def run_op(name, reps):
        state["busy"] = name == "process_vm_readv"
        return real_run_op(name, reps)

    monkeypatch.setattr(pins_mod, "OPS", ("process_vm_readv", "vmsplice"))
    monkeypatch.setattr(pins_mod, "check_access", lambda: None)
    monkeypatch.setattr(pins_mod, "read_counters", counters)
    monkeypatch.setattr(pins_mod, "_run_op", run_op)
    monkeypatch.setattr(pins_mod.time, "sleep", lambda s: None)
    r = run("pins", mode="live", quick=True, fresh=True)
    assert r.source == "live" and list(r.partial) == ["ops.process_vm_readv"]
    assert "windows disturbed by other pinning" in r.partial["ops.process_vm_readv"]
    assert r["ops"]["vmsplice"]["pins_acquired"] == 0 and "source" not in r["ops"]["vmsplice"]
    rec = load_recording("pins")["ops"]["process_vm_readv"]
    row = r["ops"]["process_vm_readv"]
    assert row["source"] == "recorded" and row["pins_acquired"] == rec["pins_acquired"] == 256


def test_a_machine_that_never_stops_pinning_gets_the_recording(monkeypatch):
    """Every window disturbed: the whole probe is the recording, and the reason says why in one example."""
    state = {"acq": 0}

    def busy_counters():
        state["acq"] += 256  # another process's O_DIRECT read lands in every window, half-way
        return state["acq"], 0

    monkeypatch.setattr(pins_mod, "OPS", ("process_vm_readv", "vmsplice"))
    monkeypatch.setattr(pins_mod, "check_access", lambda: None)
    monkeypatch.setattr(pins_mod, "read_counters", busy_counters)
    monkeypatch.setattr(pins_mod.time, "sleep", lambda s: None)
    r = run("pins", mode="auto", quick=True, fresh=True)
    assert r.source == "recorded" and r["ops"] == load_recording("pins")["ops"]
    assert r.reason.startswith("no operation could be measured (2 tried): process_vm_readv: windows disturbed")
    assert r.reason.count("windows disturbed") == 1


_HOLD_LOCK = """
import sys
from fraglife.probes import _core
with _core.machine_lock():
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_live_probes_take_turns_across_processes():
    """Two processes (chapters run in parallel) never measure at once: machine-wide counters stay theirs."""
    import fcntl

    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        fd = os.open(_core.LOCK, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            holder.stdin.write("\n")
            holder.stdin.flush()
            assert holder.wait(timeout=30) == 0
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again once the holder is done
        finally:
            os.close(fd)
    finally:
        holder.kill()
        holder.wait()


def test_machine_lock_is_reentrant():
    with _core.machine_lock(), _core.machine_lock():
        assert _core._held.depth == 2
    assert _core._held.depth == 0


def test_spread():
    s = _core.spread([4, 1, 3, 2, 5])
    assert (s["median"], s["q1"], s["q3"], s["min"], s["max"], s["n"]) == (3, 2, 4, 1, 5, 5)


# -- live (root) ----------------------------------------------------------------------------

@live
@needs_root
def test_live_pins_exact_counts():
    for attempt in range(3):
        r = run("pins", mode="live", quick=True, fresh=True)
        if r.source == "live" and not r.partial:
            break
        if "windows disturbed" not in (r.reason or "") + " ".join(r.partial.values()):
            break
        time.sleep(2)  # another process pins: wait for it
    else:
        pytest.skip(f"other pinning on this machine disturbed every attempt: {r.reason or r.partial}")
    check_result(r, "pins", "live")
    assert not r.partial, r.partial
    ops = r["ops"]
    for name, pages in (("o_direct_read", 256), ("o_direct_read_plus_4k", 257), ("process_vm_readv", 256),
                        ("o_direct_read_thp", 512)):
        assert (ops[name]["pins_acquired"], ops[name]["pins_released"]) == (pages, pages), name
    io = ops["io_uring_register_buffers"]
    assert (io["pins_acquired"], io["held_while_registered"], io["released_at_unregister"]) == (256, 256, 256)
    for name in ("msg_zerocopy_send", "vmsplice", "splice_to_socket", "sendfile"):
        assert (ops[name]["pins_acquired"], ops[name]["pins_released"]) == (0, 0), name
    assert ops["msg_zerocopy_send"]["notifications"] >= 1
    thp = ops["io_uring_register_buffers_thp"]
    if thp["thp_backed"] == 1.0:  # one pin kept per 2 MiB folio
        assert (thp["pins_acquired"], thp["held_while_registered"]) == (512, 1)
    assert ops["o_direct_read"]["filesystem"] not in ("tmpfs", "ramfs")


@live
def test_live_btf_matches_kernel_facts():
    r = run("btf", mode="live")
    check_result(r, "btf", "live")
    if not r.kernel.startswith("6.18."):
        pytest.skip(f"kernel-facts.md sizes are for 6.18, this is {r.kernel}")
    bad = {k: c for k, c in r["checks"].items() if not c["ok"]}
    assert not bad
    assert r["max_skb_frags"] == int(Path("/proc/sys/net/core/max_skb_frags").read_text())


@live
@needs_root
def test_live_zerocopy_and_cleanup(monkeypatch):
    monkeypatch.setattr(zc_mod, "RUNS", zc_mod.QUICK_RUNS)
    before = set(os.listdir("/sys/class/net"))
    r = run("zerocopy", mode="live", quick=True)
    check_result(r, "zerocopy", "live")
    assert not r.partial, r.partial
    for run_ in r["transports"]["loopback"]["runs"].values():
        assert run_["kernel_copied"] is True  # msg_zerocopy.rst: loopback copies
    assert zc_mod.leftovers() == []
    assert set(os.listdir("/sys/class/net")) == before


@live
@needs_root
@pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 not installed")
def test_veth_cleans_up_after_a_failure(monkeypatch):
    before = set(os.listdir("/sys/class/net"))

    def fail(ns, host):
        assert ns in os.listdir("/run/netns")  # it did exist while the probe ran
        raise RuntimeError("synthetic failure inside the namespace")

    monkeypatch.setattr(zc_mod, "_listen_in_netns", fail)
    with pytest.raises(RuntimeError, match="synthetic"):
        zc_mod.veth(zc_mod.QUICK_RUNS)
    assert zc_mod.leftovers() == []
    assert set(os.listdir("/sys/class/net")) == before


@live
def test_live_vmsplice_hazard():
    r = run("vmsplice", mode="live")
    check_result(r, "vmsplice", "live")
    sees = {k: c["reader_sees"] for k, c in r["cases"].items()}
    assert sees == {"write": "old", "vmsplice": "new", "vmsplice_gift": "new", "vmsplice_dontneed": "old",
                    "vmsplice_munmap": "old", "vmsplice_splice_tcp": "new"}
    assert r["reader_sees_new_data"] is True


@live
def test_live_atomics():
    r = run("atomics", mode="live", quick=True)
    check_result(r, "atomics", "live")
    assert not r.partial and r["quick"] is True
    assert [p["cpu"] for p in r["topology"]["cpus"]] == sorted(os.sched_getaffinity(0))
    assert any("local atomic" in line for line in r.summary())
    f = r.frame()
    assert set(f["curve"]) == {"contended", "private", "paced_contended", "paced_private"}
    assert len(atomics_mod.pairs_frame(r.data)) == len(r["pairs"])


@live
@needs_root
def test_live_faults_pagemap_kpageflags_memcpy():
    for name in ("faults", "pagemap", "kpageflags", "memcpy"):
        r = run(name, mode="live", quick=True)
        check_result(r, name, "live")
        assert not r.partial, (name, r.partial)
    pm = run("pagemap", mode="live", quick=True)["buffers"]
    if pm["1MiB_thp"]["thp_backed"] == 1.0:  # the first 1 MiB of one 2 MiB folio: one run
        assert set(pm["1MiB_thp"]["runs_each"]) == {1}
    if pm["16MiB_thp"]["thp_backed"] == 1.0:  # eight 2 MiB folios: at most 8 runs, each whole folios
        t = pm["16MiB_thp"]["median_trial"]
        assert max(pm["16MiB_thp"]["runs_each"]) <= 8 and t["huge_aligned_runs"] == t["runs"]


@live
@needs_root
def test_live_gup_and_cow():
    """Exact outcomes only: which pages were copied or moved, what a holder saw, what the accounting allowed."""
    for name in ("gup", "cow"):
        r = run(name, mode="live", quick=True)
        check_result(r, name, "live")
        assert not r.partial, (name, r.partial)
    f = run("cow", mode="live", quick=True)["fork"]
    assert f["4k_pinned"]["child_copied"] == f["4k_pinned"]["pages"] and f["4k_pinned"]["parent_moved"] == 0
    assert f["4k"]["child_copied"] == 0 and f["4k"]["parent_moved"] == 0
    assert f["4k_child_alive"]["parent_moved"] == f["4k_child_alive"]["pages"]
    if f["thp_pinned"]["thp_backed"] == 1.0:
        assert f["thp_pinned"]["child_copied"] == f["thp_pinned"]["pages"]
    d = run("cow", mode="live", quick=True).data
    af = d["after_fork"]
    assert (af["ref_no_fork"]["holder_sees"], af["ref_fork"]["holder_sees"]) == ("new", "old")
    assert af["ref_fork"]["parent_moved"] == af["ref_fork"]["pages"] and af["pin_fork"]["parent_moved"] == 0
    first = d["false_positive"]["first_copied_at"]
    assert first["never_pinned"] is None and first["has_pinned"] in (1021, 1022)
    assert d["memlock"]["as_expected"] is True
    assert all(row["result"] == row["expected"] for row in d["memlock"]["sends"])


def test_gup_fit_recovers_a_line():
    series = {str(n): {"iovecs": 4096 // n, "pages": 4096, "register_ns": {"median": 4096 // n * 500 + 4096 * 70.0}}
              for n in gup_mod.IOV_PAGES}
    f = gup_mod.fit(series, "register_ns")
    assert f["per_call_ns"] == pytest.approx(500) and f["per_page_ns"] == pytest.approx(70)
    assert f["max_relative_error"] < 1e-9


# -- kcount -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, param", [
    (dict(nbytes=0), "nbytes"),
    (dict(nbytes="1M"), "nbytes"),
    (dict(mss=100), "mss"),
    (dict(mss=1480), "mss"),  # more than mtu - 40
    (dict(sender="sendfile"), "sender"),
    (dict(chunk=1), "chunk"),
    (dict(tso="yes"), "tso"),
    (dict(mtu=70000), "mtu"),
    (dict(bottleneck={"rate": 1}), "bottleneck"),
    (dict(bottleneck=kc_mod.Tbf(rate_mbit=0)), "bottleneck.rate_mbit"),
    (dict(bottleneck=kc_mod.Tbf(limit=10)), "bottleneck.limit"),
    (dict(bottleneck="tbf"), "bottleneck"),
    (dict(tracepoints=["no such thing"]), "tracepoints"),
    (dict(tracepoints=[]), "tracepoints"),
])
def test_kcount_rejects_bad_parameters(kwargs, param):
    with pytest.raises(ParamError) as e:
        kc_mod.transfer(**kwargs)
    msg = str(e.value)
    assert "\n" not in msg and f"'{param}'" in msg


def test_perf_parse_format():
    text = ("name: net_dev_xmit\nID: 2306\nformat:\n"
            "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
            "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n"
            "\tfield:void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;\n"
            "\tfield:__data_loc char[] name;\toffset:24;\tsize:4;\tsigned:0;\n"
            "\tfield:__u8 saddr[4];\toffset:34;\tsize:4;\tsigned:0;\n\nprint fmt: \"dev=%s\"\n")
    assert _perf.parse_format(text) == {"common_type": "unsigned short", "common_pid": "int", "skbaddr": "void *",
                                        "name": "__data_loc char[]", "saddr": "__u8[]"}


def test_tcp_info_of_a_loopback_pair():
    tx, rx = _net.tcp_pair()
    try:
        tx.sendall(b"x" * 5000)
        got = 0
        while got < 5000:
            got += len(rx.recv(65536))
        info = _net.tcp_info(tx)
        assert info["bytes_acked"] >= 5000 - 1 and info["snd_mss"] > 0 and info["data_segs_out"] >= 1
    finally:
        tx.close()
        rx.close()


def _recorded_run(name: str) -> dict:
    return next(r for r in load_recording("kcount").data["runs"] if r["name"] == name)


def test_kcount_kernel_quantities():
    on, off, bn = (_recorded_run(n) for n in ("tso_on", "tso_off", "bottleneck"))
    for run in (on, off, bn):
        q = kc_mod.kernel_quantities(run)
        assert set(q) == set(kc_mod.QUANTITIES)
        for name, v in q.items():
            assert set(v) == {"per_mib", "low", "high", "exact"}
            assert v["low"] <= v["per_mib"] <= v["high"], name
        assert q["transmissions"]["per_mib"] == run["per_mib"]["net:net_dev_queue"]
    assert kc_mod.kernel_quantities(on)["gso_segments"]["per_mib"] == 0
    # TSO off: every packet on the veth but the skbs that were short already came out of skb_segment()
    segs = kc_mod.kernel_quantities(off)["gso_segments"]["per_mib"]
    assert MiB / off["mss"] - 1 <= segs <= off["per_mib"]["net:net_dev_xmit"]
    assert kc_mod.kernel_quantities(bn)["retransmits"]["high"] > 0


@settings(max_examples=200, deadline=None)
@given(sender=st.sampled_from(kc_mod.SENDERS),
       nbytes=st.integers(kc_mod._P["nbytes"].lo, 64 * MiB) | st.integers(kc_mod._P["nbytes"].lo, kc_mod._P["nbytes"].hi),
       chunk=st.integers(kc_mod._P["chunk"].lo, kc_mod._P["chunk"].hi))
def test_kcount_call_plan_sends_exactly_nbytes(sender, nbytes, chunk):
    calls = kc_mod.plan_calls(sender, nbytes, chunk)
    size = kc_mod.source_size(sender, nbytes, chunk)
    assert sum(n for _, n in calls) == nbytes
    assert all(n == chunk for _, n in calls[:-1]) and 0 < calls[-1][1] <= chunk
    assert len(calls) == -(-nbytes // chunk)
    assert all(0 <= off and off + n <= size for off, n in calls)  # never past the file or buffer
    if sender == "splice":
        assert size % chunk == 0 and size <= max(chunk, kc_mod.SPLICE_FILE_MAX)
        assert [off for off, _ in calls] == [i * chunk % size for i in range(len(calls))]
        # the pipe takes the pages of any call at these offsets
        assert all(-(-(off % _sys.PAGE + n) // _sys.PAGE) * _sys.PAGE <= kc_mod.pipe_size(chunk) for off, n in calls)
    else:
        assert size >= chunk and all(off == 0 for off, _ in calls)


def test_kcount_call_plan_of_the_reported_failure():
    # 8 MiB in 24 KiB splice calls: 341 whole calls, then 8 KiB from the file's start
    calls = kc_mod.plan_calls("splice", 8 * MiB, 24 * 1024)
    assert len(calls) == 342 and calls[-1] == (0, 8 * 1024)
    assert kc_mod.source_size("splice", 8 * MiB, 24 * 1024) == 341 * 24 * 1024


@live
@needs_root
@pytest.mark.parametrize("sender", kc_mod.SENDERS)
@pytest.mark.parametrize("nbytes, chunk", [(1 * MiB, 24 * 1024), (MiB + 5000, 5000), (100 * 1024, 256 * 1024)])
def test_live_kcount_call_sizes_that_do_not_divide(sender, nbytes, chunk):
    r = kc_mod.transfer(nbytes, sender=sender, chunk=chunk, tracepoints=["net:net_dev_queue"], idle=False)
    assert r["bytes"] == nbytes and r["chunk"] == chunk
    assert r["tcp_info"]["rx"]["bytes_received"] == nbytes  # a fresh connection: all of it, nothing more
    if sender == "zerocopy":  # one notification id per send call, all of them completed
        assert r["completion_ids"] == r["send_calls"] >= len(kc_mod.plan_calls(sender, nbytes, chunk))
    assert kc_mod.leftovers() == []


@live
@needs_root
def test_live_kcount_quick_and_cleanup():
    before_links = set(os.listdir("/sys/class/net"))
    before_mounts = Path("/proc/self/mounts").read_text()
    r = run("kcount", mode="live", quick=True)
    check_result(r, "kcount", "live")
    # a quick run measures the grid's default setting; the rest of the grid is the recording's, in its place
    names = [n for n, _ in kc_mod.grid_settings(True)]
    assert set(r.partial) == {f"grid.{n}" for n in names if n not in kc_mod.LIVE_GRID}, r.partial
    assert r["grid_live"] == list(kc_mod.LIVE_GRID) and [g["name"] for g in r["grid"]] == names
    for g in r["grid"]:
        assert g.get("source") == ("recorded" if g["name"] not in kc_mod.LIVE_GRID else None)
        assert g["bytes"] and g["per_mib"]
    for run_ in r["runs"]:
        assert run_["copied"] is True  # veth delivery is local: skb_orphan_frags_rx() copies
        # the device-name filter isolates the pair: nothing counted on it while idle
        assert run_["idle"]["net:net_dev_queue"]["before"] == run_["idle"]["net:net_dev_queue"]["after"] == 0
    assert kc_mod.leftovers() == []
    assert set(os.listdir("/sys/class/net")) == before_links
    assert Path("/proc/self/mounts").read_text() == before_mounts  # tracefs was never left mounted


@live
@needs_root
def test_tracepoints_stay_registered_through_a_live_run_and_count_the_same():
    """Inside registrations_held() a disabled event per tracepoint keeps it registered between transfers; each
    64 KiB send call's first pass is still counted once (tcp_sendmsg_locked, filtered to the sending thread and a
    full call's length), with or without it, and the held events are closed when the block ends."""
    kw = dict(nbytes=1 * MiB, chunk=64 * 1024, tracepoints=["tcp:tcp_sendmsg_locked[first]"], idle=False)
    runs = [kc_mod.transfer(**kw)]
    with _perf.registrations_held():
        runs += [kc_mod.transfer(**kw), kc_mod.transfer(**kw)]
        keepers = list(_perf._held.values())  # noqa: SLF001  (the module's own state, read by its test)
        assert len(keepers) == 1 and os.fstat(keepers[0])
        with _perf.registrations_held():  # nested: shares the outer block's
            assert list(_perf._held.values()) == keepers  # noqa: SLF001
    for r in runs:
        assert r["raw"]["tcp:tcp_sendmsg_locked[first]"] == 16 <= r["send_calls"], r["raw"]
    with pytest.raises(OSError):
        os.fstat(keepers[0])


@live
@needs_root
def test_kcount_senders_and_knobs():
    for kw in (dict(sender="splice", tso=False, mss=1000), dict(sender="send", gro=True, tso=False)):
        r = kc_mod.transfer(1 * MiB, tracepoints=["net:net_dev_queue", "net:net_dev_xmit", "net:netif_receive_skb",
                                                  "net:napi_gro_receive_entry", "net:net_dev_xmit@ack",
                                                  "tcp:tcp_retransmit_skb", "tcp:tcp_retransmit_skb[err]",
                                                  "sched:no_such_event"], idle=False, **kw)
        assert r["completions"] == 0 and r["copied"] is False
        assert "sched:no_such_event" in r["skipped"]
        assert r["features"]["tx"]["tso"] is kw.get("tso", True) and r["features"]["rx"]["gro"] is kw.get("gro", False)
        if "mss" in kw:
            assert r["mss"] <= 1000 and r["per_mib"]["net:net_dev_xmit"] >= MiB / r["mss"]
        if kw.get("gro"):  # GRO on the peer puts veth's receive side on NAPI (for non-TSO senders)
            assert r["raw"]["net:napi_gro_receive_entry"] > 0
    assert kc_mod.leftovers() == []


@live
@needs_root
@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_kcount_cleans_up_after_a_failure_midway(monkeypatch, exc):
    before_links = set(os.listdir("/sys/class/net"))
    seen = {}

    def fail(tx, src, nbytes):
        seen["left"] = kc_mod.leftovers()
        tx_ns = next(n for n in seen["left"] if n.endswith("-tx"))
        seen["qdisc"] = _net.tc("-n", tx_ns, "qdisc", "show")
        raise exc("synthetic failure in the middle of the transfer")

    monkeypatch.setattr(kc_mod, "_send_all", fail)
    with pytest.raises(exc, match="synthetic"):
        kc_mod.transfer(1 * MiB, sender="splice", bottleneck=kc_mod.BOTTLENECK)
    assert len([n for n in seen["left"] if n.startswith(kc_mod.NS_PREFIX)]) == 2  # both namespaces existed
    assert any(kc_mod.FILE_PREFIX in n for n in seen["left"])  # and the splice source file
    assert "tbf" in seen["qdisc"]
    assert kc_mod.leftovers() == []
    assert set(os.listdir("/sys/class/net")) == before_links


@live
@needs_root
def test_kcount_failure_falls_back_to_the_recording(monkeypatch):
    def fail(*a):
        raise OSError("synthetic send failure")

    monkeypatch.setattr(kc_mod, "_send_all", fail)
    r = run("kcount", quick=True)
    check_result(r, "kcount", "recorded")
    assert "synthetic send failure" in r.reason
    assert kc_mod.leftovers() == []


def test_kcount_transfers_take_turns(monkeypatch, tmp_path):
    """A second transfer waits for the first (here: gives up after the wait, as a stuck one would make it)."""
    from fraglife.probes import _net
    monkeypatch.setattr("tempfile.gettempdir", lambda: str(tmp_path))
    with _net.one_transfer_at_a_time(wait_s=0.2):
        with pytest.raises(TimeoutError, match="another transfer held"):
            with _net.one_transfer_at_a_time(wait_s=0.2):
                pass
    with _net.one_transfer_at_a_time(wait_s=0.2):  # free again
        pass


def test_least_disturbed_keeps_the_run_with_fewest_events(monkeypatch):
    made = iter([
        {"per_mib": {"a": 50.0, "b": 3.0}, "qdisc": None, "snmp": {"tx": {"Tcp.RetransSegs": 0}}},
        {"per_mib": {"a": 40.0, "b": 2.0}, "qdisc": None, "snmp": {"tx": {"Tcp.RetransSegs": 2}}},
        {"per_mib": {"a": 41.0, "b": -0.5}, "qdisc": None, "snmp": {"tx": {"Tcp.RetransSegs": 0}}},
    ])
    monkeypatch.setattr(kc_mod, "transfer", lambda **kw: dict(next(made), name=kw["name"]))
    run = kc_mod.least_disturbed("tso_on", {"nbytes": MiB}, reps=3)
    # a timer retransmission on a clean link outweighs any count; negative per-MiB noise counts as 0
    assert run["per_mib"] == {"a": 41.0, "b": -0.5}
    assert run["reps"] == {"n": 3, "kept": 2, "disturbance": [[0.0, 53.0], [2.0, 42.0], [0.0, 41.0]]}


def test_o_direct_only_where_it_reaches_a_block_device(monkeypatch, tmp_path):
    """tmpfs serves O_DIRECT from its page cache and overlayfs from a backing file of unknown kind:
    neither can say what a bio pins, so the probe looks further."""
    kinds = {"a": "tmpfs", "b": "overlayfs", "c": "0x65735546", "d": "xfs"}
    for k in kinds:
        (tmp_path / k).mkdir()
    monkeypatch.setattr(_sys, "fs_type", lambda p: kinds[Path(p).name])
    assert _sys.direct_io_dir([tmp_path / k for k in "abcd"]) == (tmp_path / "d", "xfs")
    with pytest.raises(OSError, match="a: tmpfs; .*b: overlayfs; .*c: 0x65735546"):
        _sys.direct_io_dir([tmp_path / k for k in "abc"])


def test_every_recording_is_from_one_kernel_build():
    """The book names one build for all its recordings (chapter 00, data/probes/README.md): a probe re-recorded on
    another kernel must bring the others with it."""
    from fraglife import probes

    rk = probes.recordings_kernel()
    assert len(rk["kernel"]) == 1, rk["probes"]
    assert sorted(sum(rk["probes"].values(), [])) == sorted(probes.NAMES)
    assert rk["first"] <= rk["last"]
