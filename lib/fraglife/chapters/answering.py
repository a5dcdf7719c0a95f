"""How a chapter's notebook records its row of the answers table (:mod:`fraglife.answers`).

The notebook's answers cell, one line before its claims cell::

    answering.record("01_refcount_removal", ch, R)

records ``ch.answer(R)``: the chapter module's ``answer(results) -> answers.Answer``, its own answer
from numbers its ``Results`` computed. A chapter without one records nothing and says so (a chapter's
run never fails for want of an answer; the answers table lists the item as missing).

Not a chapter module (the registry lists none of it): chapter modules never import it.
"""

from __future__ import annotations

from typing import Any

from .. import answers


def record(chapter: str, module: Any, results: Any):
    """Record the chapter's answer (its module's ``answer(results)``); returns the row as the chapter's first
    screen shows it (:class:`fraglife.answers.Row`), or a sentence saying why there is none."""
    own = getattr(module, "answer", None)
    if own is None:
        return f"{chapter}: no answer recorded: the chapter declares no answer(results)"
    answer = own(results)
    answers.record(chapter, answer, results.P)
    return answers.Row(answer)
