"""Chapter parameters: one clear message naming the parameter, the value and what is allowed."""

import pytest

from fraglife import chapters
from fraglife.params import ParamError


def spec():
    return chapters.get("01").spec


def test_defaults_validate():
    p = spec().validate(spec().defaults())
    assert p.loss_rate == 0.01 and p["workload"] == "tcp_send"


@pytest.mark.parametrize(
    "name, value, needle",
    [
        ("loss_rate", 1.5, "parameter 'loss_rate' = 1.5 is not allowed: expected a number in [0, 0.2]"),
        ("loss_rate", "high", "parameter 'loss_rate' = 'high' is not allowed: expected a number"),
        ("frag_size", 4096.5, "parameter 'frag_size' = 4096.5 is not allowed: expected an integer in [512, 2097152]"),
        ("frag_size", True, "parameter 'frag_size' = True is not allowed"),
        ("workload", "tcp_sned", "parameter 'workload' = 'tcp_sned' is not allowed: expected one of 'tcp_send'"),
        ("folio_pages", 3, "parameter 'folio_pages' = 3 is not allowed: expected a power-of-two integer in [1, 512]"),
        ("cpus", 0, "parameter 'cpus' = 0 is not allowed"),
        ("kernel", "6.6", "parameter 'kernel' = '6.6' is not allowed: expected one of 'running', '6.12'"),
        ("kernel", 6.12, "parameter 'kernel' = 6.12 is not allowed"),
    ],
)
def test_bad_values_name_parameter_value_and_allowed(name, value, needle):
    with pytest.raises(ParamError) as e:
        spec().validate(dict(spec().defaults(), **{name: value}))
    assert needle in str(e.value)
    assert str(e.value).count("\n") == 0


def test_integral_float_is_an_int():
    assert spec().validate(dict(spec().defaults(), frag_size=8192.0)).frag_size == 8192


def test_missing_and_unknown_names():
    values = spec().defaults()
    del values["mss"]
    with pytest.raises(ParamError, match="'mss' is missing"):
        spec().validate(values)
    with pytest.raises(ParamError, match="unknown parameter 'lossrate' for chapter 01_refcount_removal"):
        spec().validate({"lossrate": 0.1}, partial=True)


def test_command_line_text_is_parsed_by_kind():
    parsed = spec().parse([("frag_size", "65536"), ("loss_rate", "0.05"), ("workload", "tcp_gso")])
    assert parsed == {"frag_size": 65536, "loss_rate": 0.05, "workload": "tcp_gso"}
    with pytest.raises(ParamError, match="'frag_size' = '64k'"):
        spec().parse([("frag_size", "64k")])


def test_chapter_lookup():
    assert chapters.get("1").id == chapters.get("01_refcount_removal").id == chapters.get("01").id
    with pytest.raises(ParamError, match="unknown chapter '99'"):
        chapters.get("99")


def test_every_chapter_has_a_notebook_and_valid_defaults():
    for ch in chapters.CHAPTERS:
        assert ch.notebook.exists(), ch.id
        ch.spec.validate(ch.spec.defaults())
