"""Where a difference changes sign for good: the send size past which MSG_ZEROCOPY costs the sender less than a
copy (the pinning chapter), measured by the zcsend probe (:mod:`fraglife.probes.zcsend`) and modelled by the cost
model (:mod:`fraglife.model.costs`). Below both layers, it imports nothing of the package."""

from __future__ import annotations


def first_below(xs, ds) -> float | None:
    """The x at which d(x) turns negative for good (interpolated), xs[0] if it always is, None if never."""
    if not ds or ds[-1] >= 0:
        return None
    i = len(ds) - 1
    while i > 0 and ds[i - 1] < 0:
        i -= 1
    if i == 0:
        return float(xs[0])
    x0, x1, d0, d1 = xs[i - 1], xs[i], ds[i - 1], ds[i]
    return float(x0 + (x1 - x0) * d0 / (d0 - d1))
