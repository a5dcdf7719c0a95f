"""fraglife sweep: grids checked up front, points on a dask cluster, tidy tables, resume."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pandas as pd
import pytest

from fraglife import cli, sweep
from fraglife.params import ParamError

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.sweep

SMALL = {"loss_rate": [0.0, 0.05], "frag_size": [4096, 65536], "bytes_sent": [256 * 1024]}


@pytest.fixture(scope="module")
def cluster():
    """One LocalCluster of two single-threaded worker processes for the whole module."""
    lc = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  **sweep.LOCAL_CLUSTER_OPTIONS)
    client = distributed.Client(lc)
    client.wait_for_workers(2, timeout=120)
    yield lc, client
    client.close()
    lc.close()


# Test-only headlines, passed to run_sweep(func=...) instead of touching the chapter registry.

def flaky_headline(**params):
    if params["loss_rate"] == 0.05:
        raise RuntimeError("boom at 5% loss")
    return {"doubled": params["loss_rate"] * 2, "frag_kib": params["frag_size"] / 1024}


def logging_headline(log_dir, **params):
    """Leaves one file per call in ``log_dir`` (calls happen in worker processes)."""
    Path(log_dir, f"{params['loss_rate']}-{params['frag_size']}-{uuid.uuid4().hex}").touch()
    return {"doubled": params["loss_rate"] * 2}


def _calls(log_dir: Path) -> int:
    return len(list(log_dir.iterdir()))


def _stable(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=list(sweep.VOLATILE_COLUMNS)).reset_index(drop=True)


# -- the grid, before anything runs ----------------------------------------------------------

def test_grid_parses_lists_and_ranges_in_order():
    axes = sweep.parse_grid("01", ["frag_size=4096..65536*2", "loss_rate=0..0.05:0.01", "workload=tcp_send,rx_gro"])
    assert list(axes) == ["frag_size", "loss_rate", "workload"]
    assert axes["frag_size"] == [4096, 8192, 16384, 32768, 65536]
    assert axes["loss_rate"] == [0.0, 0.01, 0.02, 0.03, 0.04, 0.05]
    assert axes["workload"] == ["tcp_send", "rx_gro"]
    assert sweep.parse_grid("01", {"frag_size": "0x1000,8192"}) == {"frag_size": [4096, 8192]}
    ch, _, points = sweep.plan("01", axes)
    assert len(points) == 5 * 6 * 2
    assert len({p.key for p in points}) == len(points)
    assert points[0].params == dict(ch.spec.validate({"frag_size": 4096, "loss_rate": 0.0, "workload": "tcp_send",
                                                      "measurements": "recorded"},
                                                     partial=True))


@pytest.mark.parametrize("grid, message", [
    (["loss_rate=0,0.5"], "'loss_rate' = 0.5 is not allowed"),
    (["folio_pages=1..8:1"], "'folio_pages' = 3 is not allowed"),
    (["nonsense=1"], "unknown parameter 'nonsense'"),
    (["frag_size=4096", "frag_size=8192"], "given twice"),
    (["frag_size=4096,4096"], "given twice"),
    (["loss_rate"], "expected NAME=V1,V2"),
    (["loss_rate=0,"], "empty value"),
])
def test_bad_grid_is_refused_before_anything_runs(tmp_path, grid, message):
    out, log = tmp_path / "sweep", tmp_path / "log"
    log.mkdir()
    with pytest.raises(ParamError, match=message):
        sweep.run_sweep("01", grid, out=out, func=lambda **p: logging_headline(log, **p), progress=False)
    assert not out.exists()  # nothing written, no cluster started, no point ran
    assert _calls(log) == 0


def test_cli_exits_2_with_the_message(tmp_path, capsys):
    out = tmp_path / "sweep"
    rc = cli.main(["sweep", "01", "--grid", "loss_rate=0,0.01,0.5", "--out", str(out), "--no-progress"])
    assert rc == 2
    assert "parameter 'loss_rate' = 0.5 is not allowed: expected a number in [0, 0.2]" in capsys.readouterr().err
    assert not out.exists()


def test_chapter_without_headline_is_refused_in_library_mode(tmp_path):
    with pytest.raises(ParamError, match="00_overview has no headline"):
        sweep.run_sweep("00", None, out=tmp_path / "s", progress=False)


# -- running ---------------------------------------------------------------------------------

def test_small_sweep_on_two_workers(cluster, tmp_path):
    lc, client = cluster
    assert len(sweep.worker_addresses(client)) == 2
    res = sweep.run_sweep("01_refcount_removal", SMALL, out=tmp_path / "s", client=client, progress=False)
    df = res.table
    assert len(df) == 4 and res.ran == 4 and res.failed == 0 and res.complete
    assert df["error"].isna().all()
    # every parameter, the headline's results, provenance
    ch, _, _ = sweep.plan("01", SMALL)
    for col in [p.name for p in ch.spec] + ["owner_saving", "page_ref_atomics_per_mib", *sweep.PROVENANCE_COLUMNS]:
        assert col in df.columns, col
    assert list(df.columns[1:4]) == ["loss_rate", "frag_size", "bytes_sent"]  # grid axes first, in order
    assert (df["chapter"] == "01_refcount_removal").all() and (df["mode"] == "library").all()
    assert (df["probes"] == "recorded").all() and (df["measurements"] == "recorded").all()  # one calibration
    assert set(df["seed"]) == {1}
    assert list(zip(df["loss_rate"], df["frag_size"])) == [(0.0, 4096), (0.0, 65536), (0.05, 4096), (0.05, 65536)]
    # files: table twice, chart, manifest, one record per point
    assert set(res.files) == {"table", "csv", "chart", "manifest"}
    pd.testing.assert_frame_equal(pd.read_parquet(res.files["table"]), df, check_dtype=False)
    assert len(pd.read_csv(res.files["csv"])) == 4
    assert res.files["chart"].read_text().lstrip().startswith("<svg")
    assert len(list((res.out / "points").glob("*.json"))) == 4
    manifest = json.loads(res.files["manifest"].read_text())
    assert manifest["status"] == "finished" and manifest["metric"] == res.metric == sweep.result_columns(df, SMALL)[0]
    # the chapter's per-point claims, checked on the same results at every point (library mode); the rest
    # (other workloads, grids, probes) are the chapter run's, named in the manifest and the summary
    kept = [c.name for c in ch.claims if c.per_point]
    left = [c.name for c in ch.claims if not c.per_point]
    assert manifest["claims"] is True and manifest["claims_left_out"] == left == list(res.claims_left_out)
    assert (df["claims_total"] == len(kept)).all() and (df["claims_ok"] == len(kept)).all()
    for name in kept:
        assert df[f"claim.{name}"].all(), name
    assert not any(f"claim.{name}" in df.columns for name in left)
    assert "gso_costs_more_refs" in left and "left to the chapter run" in res.summary()


def test_all_claims_at_every_point(cluster, tmp_path):
    _, client = cluster
    res = sweep.run_sweep("01", {"loss_rate": [0.0]}, out=tmp_path / "s", client=client, progress=False,
                          claims="all")
    ch = sweep.plan("01")[0]
    df = res.table
    assert res.failed == 0 and res.claims_left_out == ()
    assert df["claims_total"].iloc[0] == df["claims_ok"].iloc[0] == len(ch.claims)
    assert "evidence.gso_costs_more_refs.ratio" in df.columns
    keys = {c: sweep.plan("01", {"loss_rate": [0.0]}, claims=c)[2][0].key for c in (True, False, "all")}
    assert len(set(keys.values())) == 3  # resume keeps them apart
    with pytest.raises(ParamError, match="sweep claims 'some' is not allowed"):
        sweep.plan("01", {"loss_rate": [0.0]}, claims="some")


def test_headline_only_without_claims(cluster, tmp_path):
    _, client = cluster
    res = sweep.run_sweep("01", {"loss_rate": [0.0]}, out=tmp_path / "s", client=client, progress=False,
                          claims=False, metric="owner_saving")
    assert res.failed == 0 and "owner_saving" in res.table and "claims_ok" not in res.table
    with_claims = sweep.plan("01", {"loss_rate": [0.0]})[2][0].key
    assert sweep.plan("01", {"loss_rate": [0.0]}, claims=False)[2][0].key != with_claims  # resume keeps them apart


def test_same_sweep_same_table(cluster, tmp_path):
    _, client = cluster
    a = sweep.run_sweep("01", SMALL, out=tmp_path / "a", client=client, progress=False)
    b = sweep.run_sweep("01", SMALL, out=tmp_path / "b", client=client, progress=False)
    pd.testing.assert_frame_equal(_stable(a.table), _stable(b.table))
    pd.testing.assert_frame_equal(_stable(pd.read_parquet(a.files["table"])),
                                  _stable(pd.read_parquet(b.files["table"])))


def test_a_failing_point_is_recorded_and_the_rest_finish(cluster, tmp_path):
    _, client = cluster
    grid = {"loss_rate": [0.0, 0.01, 0.05], "frag_size": [4096, 8192]}
    res = sweep.run_sweep("01", grid, out=tmp_path / "s", client=client, func=flaky_headline, progress=False)
    df = res.table
    assert res.failed == 2 and len(df) == 6
    bad = df[df["loss_rate"] == 0.05]
    assert bad["error"].str.contains("RuntimeError: boom at 5% loss").all()
    assert bad["doubled"].isna().all()
    good = df[df["loss_rate"] != 0.05]
    assert good["error"].isna().all()
    assert list(good["doubled"]) == [0.0, 0.0, 0.02, 0.02]
    assert res.files["chart"].exists()  # charted from the points that worked
    assert "failed point" in res.summary()
    assert len(list((res.out / "points").glob("*.json"))) == 6


def test_resume_skips_finished_points(cluster, tmp_path):
    _, client = cluster
    log = tmp_path / "log"
    log.mkdir()
    grid = {"loss_rate": [0.0, 0.01], "frag_size": [4096, 8192, 16384]}
    out = tmp_path / "s"

    def run(resume, func=None):
        return sweep.run_sweep("01", grid, out=out, client=client, resume=resume, progress=False,
                               func=func or (lambda **p: logging_headline(str(log), **p)))

    first = run(False)
    assert (first.ran, first.skipped, _calls(log)) == (6, 0, 6)

    again = run(True)
    assert (again.ran, again.skipped, _calls(log)) == (0, 6, 6)  # nothing ran
    pd.testing.assert_frame_equal(_stable(again.table), _stable(first.table))

    # an interrupted sweep: two points' records are missing; resume runs just those
    records = sorted((out / "points").glob("*.json"))
    for f in records[:2]:
        f.unlink()
    partial = run(True)
    assert (partial.ran, partial.skipped, _calls(log)) == (2, 4, 8)
    pd.testing.assert_frame_equal(_stable(partial.table), _stable(first.table))

    # a larger grid reuses the points it shares with the finished one
    grid["loss_rate"].append(0.02)
    bigger = run(True)
    assert (bigger.ran, bigger.skipped, _calls(log)) == (3, 6, 11)

    # without --resume everything runs again
    fresh = run(False)
    assert (fresh.ran, fresh.skipped, _calls(log)) == (9, 0, 20)


def test_resume_runs_failed_points_again(cluster, tmp_path):
    _, client = cluster
    grid = {"loss_rate": [0.0, 0.05]}
    out = tmp_path / "s"
    first = sweep.run_sweep("01", grid, out=out, client=client, func=flaky_headline, progress=False)
    assert first.failed == 1
    second = sweep.run_sweep("01", grid, out=out, client=client, func=flaky_headline, resume=True, progress=False)
    assert (second.ran, second.skipped, second.failed) == (1, 1, 1)


def test_cli_on_an_existing_scheduler(cluster, tmp_path, capsys):
    lc, _ = cluster
    out = tmp_path / "s"
    rc = cli.main(["sweep", "01", "--grid", "loss_rate=0,0.01", "--grid", "bytes_sent=262144",
                   "--scheduler", lc.scheduler_address, "--out", str(out), "--metric", "owner_saving",
                   "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "2 points, 2 ok, 0 failed" in text and "metric   owner_saving" in text
    for name in ("results.parquet", "results.csv", "chart.svg", "sweep.json"):
        assert (out / name).exists()
    assert json.loads((out / "sweep.json").read_text())["cluster"].startswith("scheduler ")


def test_unknown_metric_still_writes_the_table(cluster, tmp_path):
    _, client = cluster
    with pytest.raises(ParamError, match="--metric 'nope' is not a numeric result column"):
        sweep.run_sweep("01", {"bytes_sent": [262144]}, out=tmp_path / "s", client=client, metric="nope",
                        progress=False)
    assert (tmp_path / "s" / "results.parquet").exists()


def test_notebook_mode_keeps_executed_notebooks(cluster, tmp_path):
    _, client = cluster
    res = sweep.run_sweep("00", None, mode="notebook", out=tmp_path / "s", client=client, progress=False)
    df = res.table
    assert len(df) == 1 and df["error"].isna().all(), df["error"].tolist()
    nb = res.out / df["notebook"].iloc[0]
    assert nb.exists() and nb.parent.name == "notebooks"
    assert json.loads(nb.read_text())["cells"]
    assert df["claims_total"].iloc[0] >= 1 and df["claims_ok"].iloc[0] == df["claims_total"].iloc[0]


# -- chart and bench ---------------------------------------------------------------------------

def test_chart_follows_the_grid():
    rows = [{"point": i, "workload": w, "frag_size": f, "loss_rate": l, "seed": 1, "a": f * l, "b": 1.0,
             "error": None, "chapter": "01_refcount_removal"}
            for i, (w, f, l) in enumerate((w, f, l) for w in ("tcp_send", "rx_gro")
                                            for f in (4096, 65536, 2097152) for l in (0.0, 0.01))]
    df = pd.DataFrame(rows)
    spec = sweep.chart(df, ["workload", "frag_size", "loss_rate"]).to_dict()
    lines = spec["layer"][0]["encoding"]
    assert lines["x"]["field"] == "frag_size" and lines["x"]["scale"]["type"] == "log"
    assert lines["color"]["field"] == "loss_rate"  # the second numeric axis
    assert lines["y"]["title"] == "a (mean over workload)"  # first numeric result, averaged over the rest
    # A parameter's axis and legend are titled by its meaning, with what it counts or its unit.
    assert lines["color"]["title"] == "share of segments lost on the wire"
    assert sweep.chart(df, ["loss_rate", "frag_size", "workload"], "a", labels={"a": "ns per MiB"}).to_dict()[
        "layer"][0]["encoding"]["y"]["title"] == "ns per MiB (mean over workload)"
    from fraglife.sweep.run import axis_labels
    from fraglife.views import checks

    titles = axis_labels(pd.DataFrame({"chapter": ["01_refcount_removal"]}))
    assert titles["rtt_us"] == "round trip time in microseconds" and titles["frag_size"].endswith("bytes per frag")
    assert axis_labels(pd.DataFrame({"chapter": ["05_splice_destructors"]}))["completion_us"].endswith(" (µs)")
    assert all(checks.has_unit(titles[n]) for n in ("loss_rate", "folio_pages", "mss", "txc_us", "line_gbit"))
    assert len(spec["datasets"][next(iter(spec["datasets"]))]) == 6  # aggregated rows, not points
    one = sweep.chart(df, ["workload", "frag_size"], "b").to_dict()
    assert one["encoding"]["color"]["field"] == "workload"


def test_bench_reports_points_per_second(cluster):
    _, client = cluster
    report = sweep.bench({"loss_rate": [0.0, 0.01], "bytes_sent": [262144]}, client=client)
    assert report["points"] == 2
    for n in (1, 2):
        assert report[f"workers_{n}"]["points_per_s"] > 0
    assert report["speedup"] > 0
    c = report["claims"]
    assert c["ratio"] > 0 and c["points_per_s"] > 0
    assert sorted(c["per_point"] + c["left_out"]) == sorted(x.name for x in sweep.plan("01")[0].claims)
    json.dumps(report)


def test_in_process_threaded_cluster(tmp_path):
    """processes=False (the overview's inline demo): worker threads share one process and numba's first call."""
    res = sweep.run_sweep("01", SMALL, out=tmp_path / "s", processes=False, workers=2, progress=False)
    assert res.failed == 0 and len(res.table) == 4
    assert res.cluster.startswith("LocalCluster (processes=False)")


def test_an_interrupted_sweep_keeps_its_finished_points_and_resumes(cluster, tmp_path, monkeypatch):
    _, client = cluster
    grid = {"loss_rate": [0.0, 0.01, 0.02], "frag_size": [4096, 8192]}
    out = tmp_path / "s"
    real = sweep.execute

    def two_then_ctrl_c(client, chapter, mode, points, **kw):
        real(client, chapter, mode, points[:2], **kw)  # records written as they complete
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep.run, "execute", two_then_ctrl_c)
    cut = sweep.run_sweep("01", grid, out=out, client=client, func=flaky_headline, progress=False)
    assert not cut.complete and (cut.ran, cut.not_run, cut.failed) == (2, 4, 0)
    assert (cut.table["error"] == sweep.NOT_RUN).sum() == 4
    assert json.loads((out / "sweep.json").read_text())["status"] == "interrupted"
    monkeypatch.setattr(sweep.run, "execute", real)
    done = sweep.run_sweep("01", grid, out=out, client=client, func=flaky_headline, resume=True, progress=False)
    assert done.complete and (done.ran, done.skipped, done.not_run, done.failed) == (4, 2, 0, 0)
