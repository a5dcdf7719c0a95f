"""``fraglife reply``: the answers table as a plain-text reply for the list (build/reply/reply.txt).

Made from the answers a build recorded (:mod:`fraglife.answers`), never typed: a reply to David
Howells' mail (``In-Reply-To`` and ``References`` name its Message-ID), 72 columns, each item of
the thread named in one attributed line in the book's own words, then its answer, verdict, number
with its range (as :func:`fraglife.answers.format_number` gives it, never broken across lines),
evidence, the kernel build and machine it ran on, and the chapter to read.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

from . import answers, paths, thread
from .chapters import get as chapter

WIDTH = 72
NBSP = "\u00a0"  # holds a number and its range together while wrapping
INDENT = "    "


#: A number, its unit and its range, as format_number writes them inside a sentence: kept on one line.
NUMBER_PHRASE = re.compile(r"-?\d[\d,.]*(?: (?:%|[A-Za-z][^\s(),;]*))?(?: \(-?\d[\d,.]* to -?\d[\d,.]*\))?")


def _wrap(text: str, first: str, rest: str, keep: tuple[str, ...] = ()) -> list[str]:
    for k in keep:
        if k:
            text = text.replace(k, k.replace(" ", NBSP))
    text = NUMBER_PHRASE.sub(lambda m: m.group(0).replace(" ", NBSP), text)
    lines = textwrap.wrap(text, WIDTH, initial_indent=first, subsequent_indent=rest, break_long_words=False,
                          break_on_hyphens=False)
    return [line.replace(NBSP, " ") for line in lines]


def attribution(b: thread.Bullet) -> str:
    """One line naming the item: its label, who proposed it (first names) and the change in a few words."""
    names = [n.split()[0] for n in b.by.split(", ")]
    who = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f"({b.label}) {who}: {b.brief}"


def _answer_block(b: thread.Bullet, a: answers.Answer | None, why: answers.Missing | None) -> list[str]:
    lines = [attribution(b)]
    if a is None:
        return lines + _wrap(f"Not answered yet: {why.what if why else 'no answer'}.", INDENT, INDENT)
    n = a.number
    number = f"{n.what}: {n.text}" if n.what else n.text
    ch = chapter(a.chapter)
    lines += _wrap(a.answer, f"{INDENT}Answer: ", INDENT + "  ")
    lines += _wrap(a.verdict + (" (provisional: the chapter has not written its own answer yet)"
                                if a.provisional else ""), f"{INDENT}Verdict: ", INDENT + "  ")
    lines += _wrap(number, f"{INDENT}Number: ", INDENT + "  ", keep=(n.text,))
    lines += _wrap(a.evidence.text, f"{INDENT}Evidence: ", INDENT + "  ")
    if a.reproduce:
        lines += _wrap(f"kernel {a.reproduce.kernel}; {a.reproduce.machine}; fraglife {a.reproduce.commit}",
                       f"{INDENT}Ran on: ", INDENT + "  ")
    lines += _wrap(f"chapter {ch.number}, \"{ch.title}\" (book/{ch.id}.ipynb; to reproduce: "
                   f"{a.reproduce.command if a.reproduce else 'fraglife run ' + ch.number})",
                   f"{INDENT}More: ", INDENT + "  ")
    return lines


def compose(table: answers.Table) -> str:
    """The reply's text for ``table``: headers, a paragraph on where the numbers come from, one block per item."""
    first = thread.MESSAGES[0]
    head = [f"Subject: Re: {first.subject}", f"In-Reply-To: <{first.message_id}>",
            f"References: <{first.message_id}>"]
    body = ["On the list of changes above and the proposal that follows it,",
            "one answer per item, each from an executable model of the change,",
            "measured on a running kernel where the machine allows, with the",
            "number behind it and the range it moved over while measured.", ""]
    body += _wrap(answers.about_build(table.build), "", "")
    by_label = {a.bullet: a for a in table.answers}
    why = {m.bullet: m for m in table.missing}
    for b in thread.BULLETS:
        body += ["", *_answer_block(b, by_label.get(b.label), why.get(b.label))]
    text = "\n".join(head + [""] + body) + "\n"
    if not text.isascii():
        head.append("Content-Type: text/plain; charset=utf-8")
        text = "\n".join(head + [""] + body) + "\n"
    return text


def write(build_id: str | None = None, out: Path | None = None) -> tuple[Path, answers.Table]:
    """Write the reply for ``build_id``'s answers (default: build/build.json's build; "any": the latest of each
    chapter) to ``out`` (default build/reply/reply.txt)."""
    table = answers.load(answers.build_for(build_id))
    path = Path(out) if out else paths.build_dir("reply") / "reply.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(compose(table))
    return path, table


def register(sub) -> None:
    p = sub.add_parser("reply", help="write the answers as a plain-text reply for the list (build/reply/reply.txt)",
                       description="The answers table of one build as a plain-text reply to the thread: "
                                   "72 columns, one block per item, every number with its range. Exits 1 "
                                   "when an item has no answer in the build (the reply still says so).")
    p.add_argument("--build", default=None, help="the build whose answers to send (default: build/build.json's; "
                                                 "'any': the latest of each chapter)")
    p.add_argument("--out", type=Path, default=None, help="where to write (default build/reply/reply.txt)")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    path, table = write(args.build, args.out)
    print(f"reply: {path}")
    if table.missing:
        print("fraglife reply: not answered in " + (f"build {table.build}" if table.build else "these answers")
              + ":\n  " + "\n  ".join(m.line() for m in table.missing), file=sys.stderr)
        return 1
    return 0

