"""The versioned-rules table: which kernel has which rule."""

from __future__ import annotations

import pytest

from fraglife.model import kernels


def test_release_strings_and_series():
    assert kernels.version("6.18.44-fc-v1252") == (6, 18)
    assert kernels.series("6.12.118-1~deb12u1") == "6.12"
    with pytest.raises(ValueError):
        kernels.version("linux")


def test_every_rule_is_complete_and_in_the_range_read():
    names = [r.name for r in kernels.VERSIONED_RULES]
    assert len(names) == len(set(names))
    for r in kernels.VERSIONED_RULES:
        assert r.before and r.after and r.cite_before and r.cite_after and r.chapters
        assert kernels.version(kernels.OLDEST) < kernels.version(r.changed_in) <= kernels.version(kernels.NEWEST)


def test_follows_by_release():
    assert kernels.follows("6.18.44", "cow_reuse_large_anon")
    assert not kernels.follows(kernels.LTS, "cow_reuse_large_anon")
    assert kernels.follows("6.15.0", "cow_reuse_large_anon") and not kernels.follows("6.14.9", "cow_reuse_large_anon")
    assert {r.name for r in kernels.differences("6.18", "6.12")} == {r.name for r in kernels.VERSIONED_RULES}
    assert kernels.differences("6.18.1", "6.18.44") == []
    with pytest.raises(KeyError, match="no versioned rule"):
        kernels.follows("6.18", "nope")
    assert kernels.within_reading("6.18.44") and not kernels.within_reading("6.19") and not kernels.within_reading("5.15")


def test_the_kernel_parameter_names_a_release():
    from fraglife.chapters import kit
    from fraglife.params import ParamError

    assert kit.kernel_release("6.12", "live") == "6.12"
    recorded = kit.kernel_release("running", "recorded")
    assert recorded == kit.probes.load_recording("atomics").kernel  # the recordings' kernel
    assert kernels.version(recorded) >= (6, 12)
    assert kit.kernel_label("6.12") == "6.12 LTS" and kit.kernel_label("6.18.44-x") == "6.18 (6.18.44-x)"
    with pytest.raises(ParamError, match="'kernel'"):
        kit.kernel_release("6.1", "live")


def test_a_backport_reaches_a_stable_series_from_its_release():
    assert kernels.release_tuple("6.12.118-1~deb12u1") == (6, 12, 118) and kernels.release_tuple("6.12") == (6, 12, 0)
    assert kernels.follows("6.12.118-1~deb12u1", "folio_256") and kernels.follows("6.12.200", "folio_256")
    assert not kernels.follows("6.12", "folio_256") and not kernels.follows("6.12.40", "folio_256")
    assert not kernels.follows("6.14.9", "folio_256")  # a backport to 6.12.y says nothing of 6.13 or 6.14
    assert not kernels.follows("6.12.118", "cow_reuse_large_anon")  # no backport: the series decides
    assert kernels.follows("6.13", "huge_zero_wp_thp") and not kernels.follows("6.12.118", "huge_zero_wp_thp")
