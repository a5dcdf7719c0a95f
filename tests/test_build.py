"""One build, one set of numbers: its id, its record, its unit costs shared by every chapter, and the id in
every chapter's kernel."""

import json
import os
import re
from datetime import datetime, timezone

import nbformat
import pytest

from fraglife import build, paths, probes, runner
from fraglife.chapters import kit


@pytest.fixture
def tmp_build(tmp_path, monkeypatch, recorded):
    """A build/ of its own (in this process and in kernels it starts), no build id set."""
    monkeypatch.setattr(paths, "BUILD", tmp_path / "build")
    monkeypatch.setenv("FRAGLIFE_BUILD", str(tmp_path / "build"))
    monkeypatch.delenv(build.ENV, raising=False)
    build._units_of.cache_clear()
    yield tmp_path / "build"
    build._units_of.cache_clear()


def test_the_id_says_when_what_and_where():
    when = datetime(2025, 5, 30, 12, 0, 1, tzinfo=timezone.utc)
    bid = build.new_id(when, {"short": "a88d492"}, {"release": "6.18.44-fc v509"})
    assert bid == "20250530T120001Z-a88d492-6.18.44-fc_v509"
    assert build.new_id(when, {}, {}) == "20250530T120001Z-nocommit-unknown"
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{7}-\S+", build.new_id())


def test_a_build_records_commit_kernel_machine_and_its_units(tmp_build):
    b = build.start("recorded", command="fraglife run")
    assert os.environ[build.ENV] == b.id == build.current_id()
    rec = json.loads((tmp_build / "build.json").read_text())
    assert rec == json.loads((tmp_build / "builds" / f"{b.id}.json").read_text())
    assert rec["commit"]["sha"] and rec["kernel"]["release"] == os.uname().release and rec["kernel"]["version"]
    assert rec["machine"]["cpus"] == os.cpu_count() and rec["command"] == "fraglife run"
    data = probes.run("atomics").data
    lt = rec["units"]["line_transfer_ns"]
    assert (lt["value"], lt["low"], lt["high"]) == (data["line_transfer_ns"], data["line_transfer"]["over_time"]["min"],
                                                   data["line_transfer"]["over_time"]["max"])
    assert set(rec["units"]) == set(build.SHARED_UNITS) and rec["atomics"]["probe"] == "atomics"
    assert build.current() == b and build.load() == b and build.load(b.id) == b
    with pytest.raises(ValueError, match="measurements = 'sometimes' is not allowed"):
        build.measure_units("sometimes")


def test_a_build_elsewhere_leaves_build_json_alone(tmp_build):
    first = build.start("recorded")
    other = build.start("recorded", book=False)
    assert build.load().id == first.id and build.load(other.id) == other


def test_scope_reuses_the_build_it_runs_in_and_puts_the_environment_back(tmp_build):
    with build.scope("recorded") as outer:
        assert build.current_id() == outer.id
        with build.scope("recorded") as inner:  # fraglife book executing through the runner
            assert inner.id == outer.id
        assert build.current_id() == outer.id
    assert build.current_id() is None


def _distinct_build(tmp_build, line_transfer_ns=77.7):
    """A build whose recorded atomics differ from the recording, so reading them is visible."""
    b = build.start("recorded")
    rec = b.to_json()
    rec["atomics"]["line_transfer_ns"] = line_transfer_ns
    rec["atomics"]["line_transfer"]["over_time"].update(min=60.0, max=120.0)
    (tmp_build / "builds" / f"{b.id}.json").write_text(json.dumps(rec))
    build._units_of.cache_clear()
    return b


def test_every_chapter_of_a_build_prices_with_the_builds_units(tmp_build):
    outside = kit.unit_costs("live")
    b = _distinct_build(tmp_build)
    for extras in ((), ("gup",), ("gup", "cow", "release"), ("faults",), ("memcpy", "alloc")):
        units = kit.unit_costs("live", *extras)
        assert units["line_transfer_ns"] == 77.7 and units.range_of("line_transfer_ns") == (60.0, 120.0)
        assert units["local_atomic_ns"] == outside["local_atomic_ns"]
    # a chapter asked for the recording gets it, unless the build itself is the recording
    assert kit.unit_costs("recorded")["line_transfer_ns"] == 77.7  # this build measured from the recording
    rec = json.loads((tmp_build / "builds" / f"{b.id}.json").read_text())
    rec["atomics"]["source"] = "live"
    (tmp_build / "builds" / f"{b.id}.json").write_text(json.dumps(rec))
    build._units_of.cache_clear()
    assert kit.unit_costs("recorded")["line_transfer_ns"] == outside["line_transfer_ns"]
    assert kit.unit_costs("live")["line_transfer_ns"] == 77.7
    os.environ.pop(build.ENV)
    assert kit.unit_costs("live")["line_transfer_ns"] == outside["line_transfer_ns"]


def test_two_chapters_of_one_build_share_their_units(tmp_build):
    from fraglife import chapters

    _distinct_build(tmp_build, 66.6)
    seen = {}
    for cid in ("01_refcount_removal", "05_splice_destructors"):
        ch = chapters.get(cid)
        R = ch.module().Results(ch.spec.validate(ch.spec.defaults()))
        seen[cid] = (R.units["line_transfer_ns"], R.units.range_of("line_transfer_ns"))
    assert set(seen.values()) == {(66.6, (60.0, 120.0))}


def test_a_missing_record_falls_back_to_measuring(tmp_build, monkeypatch):
    monkeypatch.setenv(build.ENV, "20250530T000000Z-0000000-none")
    with pytest.warns(UserWarning, match="no unit costs recorded"):
        assert kit.unit_costs("live")["line_transfer_ns"] == probes.run("atomics").data["line_transfer_ns"]


def test_a_live_probe_is_measured_once_for_every_chapter_of_a_build(tmp_build, monkeypatch):
    measured = []

    def run(name, mode=None, quick=False, fresh=False):
        measured.append((name, quick))
        return probes.ProbeResult(name, "live", {"count": len(measured)}, {"date": "now"}, None, {"grid.x": "why"})

    monkeypatch.setattr(probes, "run", run)
    monkeypatch.setenv(build.ENV, "20250530T000000Z-0000000-none")
    first = build.probe("kcount", "live", quick=True)
    build._shared.clear()  # another chapter's kernel: a process of its own
    again = build.probe("kcount", "live", quick=True)
    assert measured == [("kcount", True)]
    assert (again.source, again.data, again.provenance, again.partial) == ("live", {"count": 1}, {"date": "now"},
                                                                           {"grid.x": "why"})
    assert first.data == again.data
    build.probe("kcount", "live", quick=False)  # the full run is another result
    build.probe("kcount", "recorded", quick=True)  # the recording is never shared: read as before
    monkeypatch.delenv(build.ENV)
    build.probe("kcount", "live", quick=True)  # outside a build, every ask measures
    assert measured == [("kcount", True), ("kcount", False), ("kcount", True), ("kcount", True)]


@pytest.mark.parametrize("sync", [False, True])
def test_json_is_written_whole_or_not_at_all(tmp_path, monkeypatch, sync):
    """paths.write_json, every JSON file the library writes (build records, sweeps, probe recordings, the
    probes' ledgers): its folder made, a temporary file renamed over the old one, nothing left beside it; a write
    that fails leaves the old file as it was."""
    path = tmp_path / "a" / "b.json"
    paths.write_json(path, {"x": 1}, sync=sync)
    paths.write_json(path, {"x": 2, "when": datetime(2026, 1, 1)}, default=str, sync=sync)
    assert json.loads(path.read_text()) == {"x": 2, "when": "2026-01-01 00:00:00"}
    assert os.listdir(path.parent) == ["b.json"]

    def no_rename(src, dst):
        raise OSError("disk went away")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError):
        paths.write_json(path, {"x": 3})
    assert json.loads(path.read_text())["x"] == 2 and os.listdir(path.parent) == ["b.json"]
    with pytest.raises(TypeError):  # not JSON: nothing written
        paths.write_json(path, {"x": object()})
    assert json.loads(path.read_text())["x"] == 2 and os.listdir(path.parent) == ["b.json"]


def test_stamps(tmp_path):
    nb = nbformat.v4.new_notebook()
    assert build.stamped(nb) is None
    build.stamp(nb, "B1")
    nbformat.write(nb, tmp_path / "x.ipynb")
    assert build.stamped_file(tmp_path / "x.ipynb") == "B1" and build.stamped_file(tmp_path / "nothing") is None


def test_the_build_id_reaches_a_chapters_kernel(tmp_build, tmp_path):
    """The runner's kernels inherit the id: a notebook run as the runner runs one prints it and its units."""
    import papermill as pm

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "fraglife", "display_name": "fraglife",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell("from fraglife import build\nfrom fraglife.chapters import kit\n"
                                          "print(build.current_id(), kit.unit_costs('live')['line_transfer_ns'])")]
    nbformat.write(nb, tmp_path / "probe.ipynb")
    b = _distinct_build(tmp_build, 55.5)
    pm.execute_notebook(str(tmp_path / "probe.ipynb"), str(tmp_path / "out.ipynb"), kernel_name=runner.ensure_kernel(),
                        progress_bar=False, execution_timeout=300, kernel_manager_class=runner.kernel_manager_class())
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[0].outputs[0]["text"]
    assert out.split() == [b.id, "55.5"]


def test_the_runner_runs_the_overview_last_and_decides_how_to_measure():
    from fraglife import chapters

    first, last = runner.execution_order(chapters.select(None))
    assert [c.id for c in last] == ["00_overview"] and "00_overview" not in [c.id for c in first]
    # the longest first, by the last run's seconds; a chapter never timed first of all; ties in book order
    timed = {"01_refcount_removal": 20.0, "05_splice_destructors": 25.0, "02_slim_page": 20.0, "00_overview": 99.0}
    first, last = runner.execution_order(chapters.select(["00", "01", "02", "03", "05"]), timed)
    assert [c.id for c in first] == ["03_pinning", "05_splice_destructors", "01_refcount_removal", "02_slim_page"]
    assert [c.id for c in last] == ["00_overview"]
    chs = chapters.select(["01", "02"])
    assert runner.build_measurements(chs, {}) == "live"
    rec = {c.id: {"measurements": "recorded"} for c in chs}
    assert runner.build_measurements(chs, rec) == "recorded"
    assert runner.build_measurements(chs, {"01_refcount_removal": {"measurements": "recorded"}}) == "live"
    assert runner.build_measurements(chapters.select(["00"]), {}) == "live"


@pytest.mark.chapters
def test_a_run_is_one_build_stamped_on_every_executed_chapter(tmp_build, tmp_path):
    """Chapter 00 in a build of its own: the kernel saw the build, the copy carries it, the answers section
    says which chapters have not answered in it."""
    [r] = runner.run_chapters(["00"], out_dir=tmp_path / "executed")
    assert r.ok, r.describe()
    b = build.load(r.build)
    assert b is not None and build.stamped_file(r.output) == b.id and build.current_id() is None
    text = json.dumps(nbformat.read(r.output, as_version=4).cells)
    assert b.id in text and "chapter 01 has not recorded its answer" in text
    assert not (tmp_build / "build.json").exists()  # executed elsewhere than build/executed/
    assert runner.last_seconds() == {"00_overview": round(r.seconds, 1)}  # the next run's order
