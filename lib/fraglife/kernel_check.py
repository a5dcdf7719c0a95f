"""``fraglife kernel-check``: every chapter's model against the running kernel's own counts, in one table.

A chapter that compares its model with a probe's counts exposes the rows as ``Results.comparison``
(:mod:`fraglife.chapters.kit.compare`, one row per setting and quantity). This command builds each
chapter's ``Results`` at its defaults (``--recorded``: from the recordings only), gathers the rows
and prints one table: chapter, setting, quantity, the kernel's count with its bracket, the model,
the verdict (``agrees``; ``explained``: it does not agree, and the row names the kernel mechanism
the model leaves out; ``DISAGREES``: no reason known; ``-``: nothing to compare) and the reason.
``--json`` prints the same rows as a list of objects, with where each kernel count comes from
(``live`` or ``recorded``). The exit status is 1 when any row disagrees without a reason.
"""

from __future__ import annotations

import json
import math

import pandas as pd

#: The columns of ``--json``, in order (the table prints the same, the bracket folded into one cell).
KEYS = ("chapter", "setting", "quantity", "kernel", "kernel_low", "kernel_high", "model", "verdict", "reason",
        "measured")


def verdict(row) -> str:
    if row.get("agrees") is None or (isinstance(row.get("agrees"), float) and math.isnan(row["agrees"])):
        return "-"
    if bool(row["agrees"]):
        return "agrees"
    return "explained" if str(row.get("reason") or "").strip() else "DISAGREES"


def collect(chapter_ids: list[str] | None = None, *, recorded: bool = False) -> pd.DataFrame:
    """The rows of every chosen chapter whose ``Results`` compares with the kernel (:data:`KEYS`)."""
    from . import chapters
    from .chapters.kit import compare

    frames = []
    for ch in chapters.select(chapter_ids):
        module = ch.module()
        if module is None or not hasattr(module, "Results"):
            continue
        values = ch.spec.defaults()
        if "measurements" in values:
            values["measurements"] = "recorded" if recorded else "live"
        elif recorded:
            continue  # a chapter without recordings to choose has nothing recorded to compare
        R = module.Results(ch.spec.validate(values))
        if not hasattr(type(R), "comparison"):
            continue
        frames.append(R.comparison)
    if not frames:
        return pd.DataFrame(columns=list(KEYS))
    t = compare.table(frames)
    out = pd.DataFrame({
        "chapter": t["chapter"], "setting": t["transfer"], "quantity": t["quantity"], "kernel": t["kernel"],
        "kernel_low": t["kernel_low"], "kernel_high": t["kernel_high"], "model": t["model"],
        "verdict": [verdict(r) for r in t.to_dict("records")], "reason": t["reason"].fillna(""),
        "measured": t["measured"]})
    return out[list(KEYS)].reset_index(drop=True)


def _num(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def text(rows: pd.DataFrame) -> str:
    """The table as text, one line per row, the kernel's bracket beside its count; reasons are numbered
    below the table (they are sentences with their sources)."""
    notes: dict[str, int] = {}
    for reason in rows["reason"]:
        if reason and reason not in notes:
            notes[reason] = len(notes) + 1
    shown = pd.DataFrame({
        "chapter": rows["chapter"], "setting": rows["setting"], "quantity": rows["quantity"],
        "kernel [low, high]": [f"{_num(k)} [{_num(lo)}, {_num(hi)}]" for k, lo, hi in
                               zip(rows["kernel"], rows["kernel_low"], rows["kernel_high"])],
        "model": [_num(m) for m in rows["model"]], "verdict": rows["verdict"],
        "reason": [f"[{notes[r]}]" if r else "" for r in rows["reason"]], "measured": rows["measured"]})
    counts = rows["verdict"].value_counts()
    summary = ", ".join(f"{counts.get(v, 0)} {v}" for v in ("agrees", "explained", "DISAGREES", "-"))
    lines = [shown.to_string(index=False), "", f"{len(rows)} rows: {summary}"]
    lines += [f"[{n}] {r}" for r, n in notes.items()]
    return "\n".join(lines)


def register(sub) -> None:
    p = sub.add_parser("kernel-check", help="every chapter's model against the running kernel's counts",
                       description=__doc__.splitlines()[0])
    p.add_argument("chapters", nargs="*", help="chapter ids or numbers (default: all)")
    p.add_argument("--json", action="store_true", help="the rows as a JSON list of objects")
    p.add_argument("--recorded", action="store_true", help="compare with the recordings only (no live probe)")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    rows = collect(args.chapters or None, recorded=args.recorded)
    if args.json:
        records = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
                   for r in rows.to_dict("records")]
        print(json.dumps(records, indent=1, default=str))
    else:
        print(text(rows))
    return 1 if (rows["verdict"] == "DISAGREES").any() else 0
