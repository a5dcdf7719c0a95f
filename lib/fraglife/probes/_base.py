"""What every probe module imports: its exception and small helpers.

Kept apart from :mod:`._core` (the registry, which names each probe module)
so that probe modules and the registry do not import each other.
"""

from __future__ import annotations

import os
import statistics


class ProbeUnavailable(Exception):
    """The live measurement cannot run here; the message says why."""


def spread(values) -> dict:
    """Median and quartiles of repeated measurements (plus n, min, max)."""
    vals = sorted(float(v) for v in values)
    if not vals:
        return {"n": 0}
    if len(vals) >= 2:
        q1, med, q3 = statistics.quantiles(vals, n=4, method="inclusive")
    else:
        q1 = med = q3 = vals[0]
    return {"median": med, "q1": q1, "q3": q3, "min": vals[0], "max": vals[-1], "n": len(vals)}


def kernel_release() -> str:
    return os.uname().release


def measured(missing: dict[str, str] | None = None, **fields) -> dict:
    """A live result: this kernel's release, the probe's fields, and the parts (dotted path ->
    reason) that could not be measured, which the recording then fills in."""
    out = {"kernel": kernel_release(), **fields}
    if missing:
        out["_missing"] = dict(missing)
    return out
