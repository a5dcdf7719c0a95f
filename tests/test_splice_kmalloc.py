"""Chapters 05 and 07 in library mode: parameters, recordings, panels, conclusions, headlines."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fraglife import chapters, claims
from fraglife.chapters import kmalloc_sends, splice_destructors
from fraglife.model import pipe, workloads
from fraglife.probes import load_recording
from fraglife.views import kmalloc_sends as view07, splice_destructors as view05

from chapter_checks import assert_cli_refuses, assert_refused, claims_listing

CH05, CH07 = chapters.get("05"), chapters.get("07")
KiB, MiB = 1 << 10, 1 << 20


def _params(chapter, **over):
    return chapter.spec.validate({**chapter.spec.defaults(), "measurements": "recorded", **over})


@pytest.mark.parametrize("chapter, name, value, allowed", [
    ("05", "source", "tee", "one of 'splice', 'vmsplice', 'sendfile'"),
    ("05", "pipe_kib", 48, "a power-of-two integer in [4, 1024]"),
    ("05", "pipe_kib", 2048, "a power-of-two integer in [4, 1024]"),
    ("05", "splice_kib", 2, "a power-of-two integer in [4, 16384]"),
    ("05", "completion_us", -1.0, "a number in [0, 10000]"),
    ("05", "line_gbit", 0, "an integer in [1, 1600]"),
    ("05", "measurements", "cached", "one of 'live', 'recorded'"),
    ("07", "mix", "nfs", "one of 'fixed', 'headers', 'log_uniform'"),
    ("07", "msg_bytes", 8, "an integer in [16, 1048576]"),
    ("07", "rate_gbit", 0.5, "a number in [1, 400]"),
    ("07", "latency_us", 200_000.0, "a number in [1, 100000]"),
    ("07", "bytes_sent", 1024, "an integer in [262144, 268435456]"),
    ("07", "loss_rate", 0.5, "a number in [0, 0.2]"),
])
def test_bad_values_give_one_line(chapter, name, value, allowed):
    assert_refused(chapters.get(chapter).spec, name, value, allowed)


@pytest.mark.parametrize("argv, line", [
    (["run", "05", "-p", "pipe_kib", "48"], "fraglife run: parameter 'pipe_kib' = 48 is not allowed: expected a "
     "power-of-two integer in [4, 1024]"),
    (["run", "07", "-p", "mix", "nfs"], "fraglife run: parameter 'mix' = 'nfs' is not allowed: expected one of "
     "'fixed', 'headers', 'log_uniform'"),
])
def test_cli_refuses_a_bad_value_with_one_line(argv, line, capsys):
    assert_cli_refuses(argv, line, capsys)


def test_claims_catalogue_lists_both_chapters(capsys):
    claims_listing(capsys, "05", "07")


@pytest.mark.parametrize("chapter", [CH05, CH07], ids=lambda c: c.id)
def test_recordings_alone_carry_the_chapter(chapter, recorded):
    module = chapter.module()
    R = module.Results(chapter.spec.defaults())
    records = claims.evaluate(module.CLAIMS, R)
    assert all(r["ok"] for r in records), [r for r in records if not r["ok"]]
    h = module.headline(**chapter.spec.defaults())
    assert h.pop("probes") == "recorded"
    assert all(isinstance(v, (int, float)) and math.isfinite(v) for v in h.values())
    assert "**" in module.conclusion(R)


def test_chapter_05_conclusion_quotes_its_numbers(recorded):
    R = splice_destructors.Results(_params(CH05))
    text = splice_destructors.conclusion(R)
    h = R.headline
    assert f"**{h['today_atomics_per_mib']:.0f}** atomics per MiB" in text
    assert f"**{h['owner_atomics_per_mib']:.0f}**" in text
    assert f"**{h['pipe_holds_gbit']:.2f} Gbit/s**" in text


def test_chapter_05_sources_and_sizes(recorded):
    R = splice_destructors.Results(_params(CH05, bytes_sent=MiB))
    s = R.sources
    assert set(s.source) == {"splice, 64 KiB pipe", "splice, 1024 KiB pipe", "vmsplice, 64 KiB pipe",
                             "vmsplice, 1024 KiB pipe", "sendfile (16-slot pipe)"}
    # one path at the refcount level: every source takes the same at the same sendmsg size
    today = s[s.rule == "today"].atomics_per_mib
    assert np.allclose(today, today.iloc[0])
    assert R.pipe == {"ring": 16, "splice_pages": 64, "sendmsg_pages": 16}
    sf = splice_destructors.ring_and_batch(_params(CH05, source="sendfile", pipe_kib=1024))
    assert sf["ring"] == pipe.PIPE_DEF_BUFFERS and sf["sendmsg_pages"] == 16


def test_chapter_05_timeline_says_who_holds(recorded):
    t = splice_destructors.Results(_params(CH05, bytes_sent=MiB)).timeline
    assert set(t["held by"]) == {"skb page refs", "the send's owner", "the pipe's slots"}
    assert (t.end_us > t.start_us).all()


def test_chapter_07_slab_walk_and_senders(recorded):
    today = kmalloc_sends.walk(kmalloc_sends.slab_splice_trace(), "page_ref")
    assert list(today.accepted) == ["yes", "yes", "no (-EIO)", "yes", "yes"]
    owner = kmalloc_sends.walk(kmalloc_sends.slab_splice_trace(), "owner_skb")
    assert (owner.accepted == "yes").all() and owner["pages alive"].iloc[-1] == 0
    R = kmalloc_sends.Results(_params(CH07, bytes_sent=512 * KiB))
    s = R.senders
    assert len(s) == len(kmalloc_sends.SENDERS) and set(s.cheaper) <= {"copy", "destructor"}
    assert (s[s.bytes <= 72].cheaper == "copy").all()


def test_chapter_07_costs_follow_the_rules(recorded):
    assert kmalloc_sends.kmalloc_bytes(65) == 96 and kmalloc_sends.kmalloc_bytes(8192) == 8192
    assert kmalloc_sends.kmalloc_bytes(8193) == 16384 and kmalloc_sends.kmalloc_bytes(40000) == 65536
    assert kmalloc_sends.slab_ns(1) == kmalloc_sends.SLAB_CURVE[0][1]
    assert kmalloc_sends.slab_ns(10 ** 6) == kmalloc_sends.SLAB_CURVE[-1][1]
    R = kmalloc_sends.Results(_params(CH07, bytes_sent=512 * KiB))
    t = R.per_size
    assert (t[t.design == "destructor"]["copy"] == 0).all() and (t[t.design != "destructor"]["owner object"] == 0).all()
    copies = t[t.design.isin(kmalloc_sends.COPIES)]
    assert (copies["copy"] > 0).all()
    assert t[t.design == "kmalloc page refs"].bytes.min() > kmalloc_sends.SLAB_MAX
    # Little's law: memory held grows with rate x latency
    a = kmalloc_sends.held_bytes("destructor", 1024, 10.0, 50.0)
    b = kmalloc_sends.held_bytes("destructor", 1024, 20.0, 50.0)
    assert b == pytest.approx(2 * a)


@pytest.mark.parametrize("chapter, view, change", [
    (CH05, view05, {"pipe_kib": 4, "completion_us": 200.0}),
    (CH07, view07, {"mix": "headers", "latency_us": 1000.0}),
], ids=["05", "07"])
def test_panel_follows_its_controls(chapter, view, change, recorded):
    module = chapter.module()
    P = _params(chapter)
    panel = view.make_panel(module, P, module.Results(P))
    assert panel.renders == 1 and panel.error is None
    before = [o["data"].get("text/plain") for o in panel.outputs]
    panel.set(**change)
    assert panel.error is None and panel.renders == 1 + len(change)
    assert [o["data"].get("text/plain") for o in panel.outputs] != before
    assert "Interactive in JupyterLab" in panel.static_text


@pytest.mark.parametrize("nbytes, chunk", [(8 * MiB, 24 * KiB), (MiB + 5000, 5000), (100 * KiB, 256 * KiB)])
def test_chapter_05_model_takes_splice_calls_that_do_not_divide(nbytes, chunk, recorded):
    # a recorded splice run with its size changed, as a reader tweaking the probe would make it
    run = dict(load_recording("kcount_splice")["runs"][0], bytes=nbytes, chunk=chunk)
    inputs = splice_destructors.model_inputs(run)
    assert inputs["send_size"] == chunk
    q = splice_destructors.model_quantities(inputs)
    mib = inputs["bytes_sent"] / MiB
    # at least one skb per size goal of bytes (a splice() call's tail may be appended to by the next call's
    # first sendmsg: tcp_sendmsg_locked() fills the unsent tail skb, net/ipv4/tcp.c)
    goal = workloads.Config(mss=inputs["mss"]).size_goal
    assert q["transmissions"] * mib >= -(-inputs["bytes_sent"] // goal)
    assert all(math.isfinite(v) for v in q.values())


def test_chapter_05_panel_at_a_transfer_its_splice_size_does_not_divide(recorded):
    module = CH05.module()
    P = _params(CH05, bytes_sent=3 * MiB + 4096 + 100)
    panel = view05.make_panel(module, P, module.Results(P))
    assert panel.error is None
    panel.set(splice_kib=64)
    assert panel.error is None
