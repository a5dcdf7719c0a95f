"""Checks every chapter's tests make: a bad parameter stops with one line, and `fraglife claims` lists the claims."""

from __future__ import annotations

import pytest

from fraglife.cli import main
from fraglife.params import ParamError


def assert_refused(spec, name, value, allowed: str | None = None) -> None:
    """``spec`` refuses ``name = value`` over its defaults with one line naming both and what is allowed
    (exactly ``allowed`` when given)."""
    with pytest.raises(ParamError) as e:
        spec.validate({**spec.defaults(), name: value})
    msg = str(e.value)
    assert "\n" not in msg
    if allowed is None:
        assert f"'{name}'" in msg and repr(value) in msg and "expected" in msg
    else:
        assert msg == f"parameter {name!r} = {value!r} is not allowed: expected {allowed}"


def assert_cli_refuses(argv, line: str, capsys) -> None:
    """The CLI exits 2 with exactly ``line`` on stderr."""
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == line


def claims_listing(capsys, *chapters) -> str:
    """`fraglife claims` for ``chapters`` (numbers); it exits 0 and names each chapter and its every claim."""
    from fraglife import chapters as registry

    assert main(["claims", *chapters]) == 0
    out = capsys.readouterr().out
    for number in chapters:
        ch = registry.get(number)
        assert ch.id in out and all(c.name in out for c in ch.claims)
    return out
