"""Named, checked claims: how a chapter states its conclusions.

Modelled on the litmus tests of the kernel's ``tools/memory-model``: each test
names an outcome and the verdict it expects (``Result: Never``), and a script
fails when the verdict changes. Here each chapter ends with claims, each with
a statement, an expected verdict and the evidence the run measured. The
record goes to ``build/claims/NN.json``; a claim whose observed verdict
differs from its expectation fails the chapter.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .paths import build_dir


class ClaimFailed(AssertionError):
    """A chapter's claim no longer holds."""


@dataclass
class Claim:
    name: str
    statement: str
    expected: str  # "holds" or "fails"
    observed: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.expected == self.observed


def _plain(value: Any) -> Any:
    """JSON-safe copies of numpy scalars and containers."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


class Claims:
    """Collects a chapter's claims; :meth:`finish` writes them and fails on drift."""

    def __init__(self, chapter: str):
        from .chapters import get

        self.chapter = get(chapter)
        self.items: list[Claim] = []

    def check(self, name: str, statement: str, observed: bool, *, expected: bool = True, **evidence: Any) -> Claim:
        """Record one claim. ``observed`` is what this run found; ``expected`` what the chapter asserts."""
        if any(c.name == name for c in self.items):
            raise ValueError(f"claim {name!r} recorded twice")
        claim = Claim(
            name=name,
            statement=statement,
            expected="holds" if expected else "fails",
            observed="holds" if bool(observed) else "fails",
            evidence=_plain(evidence),
        )
        self.items.append(claim)
        return claim

    def table(self):
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "claim": c.name,
                    "statement": c.statement,
                    "expected": c.expected,
                    "observed": c.observed,
                    "verdict": "ok" if c.ok else "DRIFT",
                    "evidence": ", ".join(f"{k}={_short(v)}" for k, v in c.evidence.items()),
                }
                for c in self.items
            ]
        )

    def finish(self):
        """Write build/claims/NN.json; raise ClaimFailed if any claim drifted. Returns the table."""
        path = build_dir("claims") / f"{self.chapter.number}.json"
        record = {
            "chapter": self.chapter.id,
            "claims": [asdict(c) | {"ok": c.ok} for c in self.items],
        }
        path.write_text(json.dumps(record, indent=2) + "\n")
        bad = [c for c in self.items if not c.ok]
        if bad:
            names = ", ".join(f"{c.name} (expected {c.expected}, observed {c.observed})" for c in bad)
            raise ClaimFailed(f"{self.chapter.id}: claims drifted: {names}")
        return self.table()


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
