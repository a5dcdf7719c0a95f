"""Chapter parameters: declared once, validated everywhere.

Each chapter's first code cell (tagged ``parameters``) assigns plain literals;
the next cell hands them to :func:`fraglife.chapters.validate`, which finds the
chapter's :class:`ParamSpec` in the registry. The same specs check
``fraglife run -p NAME VALUE`` and every point of a sweep before anything
runs, so a bad value fails the same way wherever it comes from: one
:class:`ParamError` naming the parameter, the value and what is allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Iterable, Mapping


class ParamError(ValueError):
    """A parameter value that a chapter does not accept."""


@dataclass(frozen=True)
class Param:
    name: str
    kind: type  # int, float, str or bool
    default: Any
    help: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple | None = None
    power_of_two: bool = False

    def allowed(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        what = {int: "an integer", float: "a number", str: "a string", bool: "True or False"}[self.kind]
        if self.power_of_two:
            what = "a power-of-two integer"
        if self.lo is not None and self.hi is not None:
            return f"{what} in [{_fmt(self.lo)}, {_fmt(self.hi)}]"
        if self.lo is not None:
            return f"{what} >= {_fmt(self.lo)}"
        if self.hi is not None:
            return f"{what} <= {_fmt(self.hi)}"
        return what

    def _fail(self, value: Any) -> ParamError:
        return ParamError(f"parameter {self.name!r} = {value!r} is not allowed: expected {self.allowed()}")

    def check(self, value: Any) -> Any:
        """Return ``value`` normalised to the parameter's kind, or raise ParamError."""
        kind = self.kind
        if kind is bool:
            if not isinstance(value, bool):
                raise self._fail(value)
        elif kind is int:
            # bool is an int subclass; a float like 4096.0 is accepted only if integral.
            if isinstance(value, bool):
                raise self._fail(value)
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if not isinstance(value, int):
                raise self._fail(value)
        elif kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self._fail(value)
            value = float(value)
            if not math.isfinite(value):
                raise self._fail(value)
        elif kind is str:
            if not isinstance(value, str):
                raise self._fail(value)
        if self.choices is not None and value not in self.choices:
            raise self._fail(value)
        if self.lo is not None and value < self.lo:
            raise self._fail(value)
        if self.hi is not None and value > self.hi:
            raise self._fail(value)
        if self.power_of_two and (value <= 0 or value & (value - 1)):
            raise self._fail(value)
        return value

    def parse(self, text: str) -> Any:
        """Turn command-line text into a value of the right kind, then check it."""
        kind = self.kind
        try:
            if kind is bool:
                lowered = text.strip().lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                value: Any = lowered in ("true", "1", "yes")
            elif kind is int:
                value = int(text.replace("_", ""), 0)
            elif kind is float:
                value = float(text)
            else:
                value = text
        except ValueError:
            raise self._fail(text) from None
        return self.check(value)


def _fmt(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


class ParamSpec:
    """The ordered parameters of one chapter."""

    def __init__(self, chapter: str, params: Iterable[Param]):
        self.chapter = chapter
        self.params = {p.name: p for p in params}

    def __iter__(self):
        return iter(self.params.values())

    def __contains__(self, name: str) -> bool:
        return name in self.params

    def __getitem__(self, name: str) -> Param:
        try:
            return self.params[name]
        except KeyError:
            raise ParamError(
                f"unknown parameter {name!r} for chapter {self.chapter}; "
                f"known: {', '.join(self.params) or '(none)'}"
            ) from None

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self}

    def validate(self, values: Mapping[str, Any], *, partial: bool = False) -> "Params":
        """Check every declared parameter.

        ``values`` may be a notebook's ``globals()``: only declared names are
        read. With ``partial=True`` missing names take their defaults and
        unknown names are refused (the command-line and sweep case).
        """
        if partial:
            for name in values:
                self[name]  # raises on unknown names
        out = {}
        for p in self:
            if p.name in values:
                out[p.name] = p.check(values[p.name])
            elif partial:
                out[p.name] = p.default
            else:
                raise ParamError(f"parameter {p.name!r} is missing from the parameters cell of {self.chapter}")
        return Params(self.chapter, out, self)

    def parse(self, pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
        """Parse ``(name, text)`` pairs from the command line into checked values."""
        return {name: self[name].parse(text) for name, text in pairs}


class Params(Mapping):
    """Validated parameters: read-only, attribute or item access; :attr:`spec` is the
    :class:`ParamSpec` that checked them (None for :meth:`of` a plain mapping)."""

    def __init__(self, chapter: str, values: Mapping[str, Any], spec: ParamSpec | None = None):
        self._chapter = chapter
        self._values = MappingProxyType(dict(values))
        self._spec = spec

    @property
    def spec(self) -> ParamSpec | None:
        """The chapter's parameter spec these values passed (what a control panel takes its ranges from)."""
        return self._spec

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> "Params":
        """``values`` as Params (itself if it is one already); checks nothing."""
        return values if isinstance(values, Params) else cls("", values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"Params({self._chapter}: {inner})"

