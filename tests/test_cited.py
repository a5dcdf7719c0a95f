"""The cited DMA and IOMMU figures: every row sourced and in units, sizes never extrapolated."""

import csv
import math

import pytest

from fraglife import cited


def test_every_row_has_a_source_a_unit_and_a_number():
    df = cited.figures()
    assert len(df) > 0
    for r in df.to_dict("records"):
        for field in cited.REQUIRED:
            assert str(r[field]).strip(), f"{r['id']}: no {field}"
        assert r["kind"] in cited.KINDS
        assert math.isfinite(r["value"]) and r["value"] >= 0
        assert math.isnan(r["value_high"]) or r["value_high"] >= r["value"]
        # a source names where it can be found: a Message-ID, a commit, a DOI or an address
        assert any(k in r["source"] for k in ("<", "commit", "DOI", "http")), r["id"]


def test_operations_are_times_per_operation_and_throughputs_are_not():
    df = cited.figures()
    ops = df[df.kind.isin(("map", "unmap"))]
    assert set(ops.unit) <= {"us per map", "us per unmap"}
    assert not df[df.kind == "throughput"].unit.str.startswith("us per").any()
    shown = cited.operations()
    assert len(shown) == len(ops) and (shown.evidence == cited.LABEL).all()
    assert len(cited.throughput()) == (df.kind == "throughput").sum()


def test_unmap_times_are_interpolated_between_measured_sizes_only():
    df = cited.figures()
    curve = df[df.id.str.startswith(cited.UNMAP_CURVE)].sort_values("buffer_bytes")
    for b, v in zip(curve.buffer_bytes, curve.value):
        assert cited.unmap_us(b) == pytest.approx(v)
    lo, hi = curve.buffer_bytes.min(), curve.buffer_bytes.max()
    assert math.isnan(cited.unmap_us(lo - 1)) and math.isnan(cited.unmap_us(hi + 1))
    mid = (curve.buffer_bytes.iloc[0] + curve.buffer_bytes.iloc[1]) / 2
    assert curve.value.iloc[0] < cited.unmap_us(mid) < curve.value.iloc[1]


def test_per_frag_sets_each_cited_mapping_beside_the_book():
    t = cited.per_frag(4096, 256, 10_000.0, "today's refs")
    assert t["cost"].iloc[0].startswith("the book")
    assert t["ns per MiB"].iloc[0] == pytest.approx(10_000.0)
    assert t["ns per frag"].iloc[1] == pytest.approx(1000 * cited.unmap_us(4096))
    assert t["ns per frag"].iloc[2] == pytest.approx(1000 * cited.map_unmap_us())
    assert list(t["x the book's"]) == pytest.approx(list(t["ns per MiB"] / 10_000.0), rel=1e-2)
    assert t.evidence.iloc[1:].str.startswith(cited.LABEL).all()
    text = cited.remark(t)
    assert cited.sig(t["ns per MiB"].iloc[1:].min() / 1000) in text and cited.LABEL in text


def test_a_frag_maps_whole_granules_and_outside_the_measured_sizes_gets_no_unmap_time():
    small = cited.per_frag(512, 2048, 10_000.0, "refs")
    assert small["ns per frag"].iloc[1] == pytest.approx(1000 * cited.unmap_us(cited.GRANULE))
    big = cited.per_frag(100 * 1024, 10.24, 10_000.0, "refs")
    assert math.isnan(big["ns per frag"].iloc[1]) and not math.isnan(big["ns per frag"].iloc[2])
    assert "to" not in cited.remark(big).split(" us per MiB")[0].split("would cost ")[1]


def test_per_message_is_per_frag_at_one_frag_per_message():
    t = cited.per_message([64, 4096, 65536], [1, 1, 2], [300.0, 900.0, 5000.0], "copy")
    assert list(t["message bytes"]) == [64, 4096, 65536]
    assert t["unmap, Arm SMMU: ns"].iloc[1] == pytest.approx(1000 * cited.unmap_us(4096))
    assert t["unmap, Arm SMMU: ns"].iloc[2] == pytest.approx(2000 * cited.unmap_us(32768))
    assert t["map + unmap, 8-page buffer: ns"].iloc[0] == pytest.approx(1000 * cited.map_unmap_us())
    assert t["map + unmap, 8-page buffer: ns"].iloc[2] == pytest.approx(2000 * cited.map_unmap_us())
    text = cited.message_remark(t)
    assert "64 B" in text and "65,536 B" in text and cited.LABEL in text


@pytest.mark.parametrize("frag_bytes, frags", [(0, 256), (4096, 0), (-1, 256), (4096, float("nan"))])
def test_per_frag_refuses_bad_inputs(frag_bytes, frags):
    with pytest.raises(ValueError, match="not allowed"):
        cited.per_frag(frag_bytes, frags, 1.0, "refs")


def test_unknown_figure_is_refused_with_the_ids_allowed():
    with pytest.raises(ValueError, match="figure = 'nope' is not allowed"):
        cited.figure("nope")


def test_design_statements_carry_sources():
    d = cited.design()
    assert len(d) == len(cited.DESIGN) and d.source.str.len().gt(20).all()
    assert d.buffer.str.contains("page_pool").any() and d.buffer.str.contains("devmem").any()


def _write(tmp_path, change):
    rows = list(csv.DictReader(open(cited.PATH, newline="")))
    change(rows[0])
    path = tmp_path / "dma_iommu.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cited.FIELDS)
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.mark.parametrize("field, value, message", [
    ("source", "", "source = '' is not allowed"),
    ("unit", " ", "unit = ' ' is not allowed"),
    ("value", "-3", "value = '-3' is not allowed"),
    ("value", "fast", "value = 'fast' is not allowed"),
    ("kind", "latency", "kind = 'latency' is not allowed"),
    ("value_high", "0.5", "value_high = '0.5' is not allowed"),
])
def test_a_bad_row_is_refused_in_one_line_naming_field_and_value(tmp_path, field, value, message):
    path = _write(tmp_path, lambda r: r.__setitem__(field, value))
    with pytest.raises(ValueError) as e:
        cited.load(path)
    assert message in str(e.value) and "line 2" in str(e.value) and "\n" not in str(e.value)


def test_a_repeated_id_is_refused(tmp_path):
    rows = list(csv.DictReader(open(cited.PATH, newline="")))
    path = tmp_path / "dma_iommu.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cited.FIELDS)
        w.writeheader()
        w.writerows([rows[0], rows[0]])
    with pytest.raises(ValueError, match="not allowed twice"):
        cited.load(path)


@pytest.mark.parametrize("once", ["page_pool", "devmem"])
def test_memory_mapped_once_pays_no_mapping_per_frag(once):
    t = cited.per_frag(4096, 256, 10_000.0, "refs", mapped_once=once)
    last = t.iloc[-1]
    assert last["cost"].startswith("this run's frags") and last["ns per frag"] == 0
    assert last["evidence"] == cited.MAPPED_ONCE[once][2]
    text = cited.remark(t)
    assert "pay no mapping per frag" in text and cited.sig(t["ns per MiB"].iloc[1] / 1000) in text


def test_mapped_once_names_a_known_design():
    with pytest.raises(ValueError, match="mapped_once = 'iommu' is not allowed"):
        cited.per_frag(4096, 256, 1.0, "refs", mapped_once="iommu")
