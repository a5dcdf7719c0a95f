"""Named, checked claims: how a chapter states its conclusions, as data.

Modelled on the litmus tests of the kernel's ``tools/memory-model``: each test
names an outcome and the verdict it expects (``Result: Never``), and a script
fails when the verdict changes. Here a chapter module declares ``CLAIMS``, a
tuple of :class:`Claim` (name, statement, expected verdict, and a check over
the chapter's ``Results``). Three consumers read the same table:

* the notebook: :func:`check` evaluates, writes ``build/claims/NN.json`` and
  raises :class:`ClaimFailed` when an observed verdict differs from the
  expected one;
* tests and sweeps (library mode): :func:`evaluate` returns the records and
  writes nothing; :func:`columns` flattens them into sweep columns. A sweep
  point evaluates only the claims :func:`per_point` keeps: a claim that needs
  other workloads or settings than the point's, a grid of its own, the probes'
  transfers or the explorer is declared ``per_point=False`` and is checked by
  the chapter run alone (the sweep names it as left out);
* ``fraglife claims``: the catalogue, with the verdict last observed
  (:func:`last_run`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np

from .paths import BUILD, build_dir, write_json

VERDICTS = ("holds", "fails")


class ClaimFailed(AssertionError):
    """A chapter's claim no longer holds."""


@dataclass(frozen=True)
class Claim:
    """One claim: ``check(results) -> (observed: bool, evidence: dict)``.

    ``per_point``: whether a sweep point checks it. False for a claim whose check needs more than the point's own
    results (other workloads or settings, a grid, the probes' transfers, the explorer): the chapter run checks it.
    """

    name: str
    statement: str
    expected: str  # "holds" or "fails"
    check: Callable[[Any], tuple[bool, dict]]
    per_point: bool = True

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ValueError(f"claim name {self.name!r} must be an identifier")
        if self.expected not in VERDICTS:
            raise ValueError(f"claim {self.name!r}: expected {self.expected!r}, not one of {', '.join(VERDICTS)}")

    def evaluate(self, results: Any) -> dict:
        """This claim's record for ``results``: statement, expected, observed, ok, evidence."""
        observed, evidence = self.check(results)
        verdict = "holds" if bool(observed) else "fails"
        return {"name": self.name, "statement": self.statement, "expected": self.expected, "observed": verdict,
                "evidence": _plain(evidence or {}), "ok": verdict == self.expected}


def _plain(value: Any) -> Any:
    """JSON-safe copies of numpy scalars and containers."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def evaluate(claims: Iterable[Claim], results: Any) -> list[dict]:
    """Every claim's record for ``results`` (library mode: writes nothing, raises nothing on drift)."""
    claims = tuple(claims)
    names = [c.name for c in claims]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"claim {dupes[0]!r} declared twice")
    return [c.evaluate(results) for c in claims]


def per_point(claims: Iterable[Claim]) -> tuple[tuple[Claim, ...], tuple[str, ...]]:
    """The claims a sweep point checks, and the names of those it leaves to the chapter run."""
    claims = tuple(claims)
    return tuple(c for c in claims if c.per_point), tuple(c.name for c in claims if not c.per_point)


def table(records: Iterable[dict]):
    """Records as the table a notebook shows: claim, statement, expected, observed, verdict, evidence."""
    import pandas as pd

    return pd.DataFrame(
        [{"claim": r["name"], "statement": r["statement"], "expected": r["expected"], "observed": r["observed"],
          "verdict": "ok" if r["ok"] else "DRIFT",
          "evidence": ", ".join(f"{k}={_short(v)}" for k, v in r["evidence"].items())} for r in records],
        columns=["claim", "statement", "expected", "observed", "verdict", "evidence"],
    )


def _number(chapter: str) -> str:
    return chapter.split("_", 1)[0]


def check(chapter: str, claims: Iterable[Claim], results: Any):
    """The notebook's claims cell: evaluate, write build/claims/NN.json, raise ClaimFailed on drift.

    ``chapter`` is the chapter's id ("01_refcount_removal"). Returns the table.
    """
    records = evaluate(claims, results)
    path = build_dir("claims") / f"{_number(chapter)}.json"
    write_json(path, {"chapter": chapter, "claims": records}, indent=2)
    bad = [r for r in records if not r["ok"]]
    if bad:
        names = ", ".join(f"{r['name']} (expected {r['expected']}, observed {r['observed']}; "
                          f"evidence {_evidence_text(r.get('evidence'))})" for r in bad)
        raise ClaimFailed(f"{chapter}: claims drifted: {names}")
    return table(records)


def _evidence_text(evidence, limit: int = 600) -> str:
    text = json.dumps(evidence, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def last_run(chapter: str) -> dict[str, dict]:
    """The records of the chapter's last checked run, by claim name (empty if it never ran)."""
    path = BUILD / "claims" / f"{_number(chapter)}.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {r["name"]: r for r in data.get("claims", []) if isinstance(r, dict) and "name" in r}


def columns(records: Iterable[dict]) -> dict[str, Any]:
    """Records as sweep columns: claims_ok, claims_total, claim.NAME (True if it held), numeric evidence."""
    records = list(records)
    out: dict[str, Any] = {"claims_ok": sum(bool(r.get("ok")) for r in records), "claims_total": len(records)}
    for r in records:
        out[f"claim.{r['name']}"] = r.get("observed") == "holds"
        for k, v in (r.get("evidence") or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out[f"evidence.{r['name']}.{k}"] = v
    return out


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
