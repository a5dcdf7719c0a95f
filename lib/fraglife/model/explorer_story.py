"""The explorer's counterexamples told step by step: which CPU runs each step, what it does in the kernel's
words, the refcounts after it, the puts still to come, the pages freed, and any violation.

:func:`walk` replays step labels (a trace of :class:`~.explorer_twin.Result`, or a story of starts and
"put") in the twin, :mod:`.explorer_twin`, the specification; the compiled search (:mod:`.explorer`) finds
the same traces.
"""

from __future__ import annotations

from . import explorer_twin as X
from .explorer_twin import (ATTACH, ATTACH_NEW, CLONE, COALESCE, COPIED, COPYFB, DEVMEM, DROP, EXPAND, FRAG_LIST,
                            FREE, HOLDER, KMALLOC, MUNMAP, ORPHAN, PIPE, PIPE_BUF, PIPE_RELEASE, POOL, PUT,
                            SEGMENT, SHIFT, SPLICE, SPLIT, TRIM, UNBIND_W, USER, ZC_RECEIVE, Bounds, Scenario)

# ---- names ------------------------------------------------------------------------------------------------
HOLDER_TEXT = {USER: "the application unmaps {b} and sendmsg() returns",
               PIPE: "pipe_buf_release(): the pipe lets go of {b}",
               POOL: "the page_pool drains {b}",
               DEVMEM: "the binding's user unbinds {b} (net_devmem_unbind_dmabuf(): the netlink socket's ref)",
               KMALLOC: "the kernel service is done with {b}"}


class _Names:
    """Display names that stay put while the canonical form relabels twin buffers."""

    def __init__(self, ex: X.Explorer):
        self.ex = ex
        ninit = ex.L.ninit
        self.buf = [chr(ord("A") + b) if b < ninit else f"K{b - ninit}" if ex.L.nb - ninit > 1 else "K"
                    for b in range(ex.L.nb)]

    def follow(self, st: X.State, canonical: tuple) -> None:
        """The successor ``st`` (in the parent's labels) became ``canonical``: rename buffers to match."""
        for perm in self.ex.perms:
            if self.ex.encode_raw(st, perm) == canonical:
                new = [""] * len(self.buf)
                for b, nb in enumerate(perm):
                    new[nb] = self.buf[b]
                self.buf = new
                return

    def pages(self, code: int) -> str:
        b, _a, lo, hi = X.frag_parts(code)
        n = self.buf[b]
        return f"{n}{lo}" if lo == hi else f"{n}{lo}-{n}{hi}"

    def skb(self, sh: X.Sh) -> str:
        own = ", ".join(self.pages(c) for c in sh.own)
        child = ", ".join(self.pages(c) for c in sh.child)
        return "skb{" + own + ((" | " if own else "") + f"frag_list {{{child}}}" if sh.nl else "") + "}"

    def outside(self, rec: tuple) -> str:
        return ("pipe buffer over " if rec[0] == PIPE_BUF else "mapping of ") + self.pages(rec[1])

    def line(self, tok: int) -> str:
        ex, nb = self.ex, self.ex.L.nb
        x = tok - 1
        if x < 2 * nb:
            b, p = divmod(x, 2)
            what = "pp_ref_count" if ex.kinds[b] == POOL else "page"
            return f"{what} {self.buf[b]}{p}"
        if x < 3 * nb:
            b = x - 2 * nb
            return f"binding {self.buf[b]}" if ex.page_mode else f"owner {self.buf[b]}"
        if x < 4 * nb:
            return f"ubuf_info {self.buf[x - 3 * nb]}"
        return "the binding"


def _counts(ex: X.Explorer, st: X.State, names: _Names) -> str:
    parts = []
    for b, x in enumerate(st.bufs):
        if not x.used:
            continue
        n = names.buf[b]
        for p in range(X.PAGES):
            if x.pc[p]:
                parts.append(f"{names.line(1 + X.page_line(b, p))} {x.pc[p]}")
        if (x.oalive or x.oc) and not ex.binding:  # (under the binding rule oalive is the dma-buf's mapping)
            parts.append(f"{names.line(1 + X.owner_line(ex.L.nb, b))} {x.oc}")
        if x.uc:
            parts.append(f"ubuf_info {n} {x.uc}")
        if x.oalive == 2:
            parts.append(f"binding {n} free queued")
    if st.bind:
        parts.append(f"the binding {st.bind}")
    return ", ".join(parts) or "-"


def _dead(ex: X.Explorer, st: X.State, names: _Names) -> str:
    """Pages freed so far (a copy buffer has one page)."""
    out = [f"{names.buf[b]}{p}" for b, x in enumerate(st.bufs) if x.used for p in range(X.PAGES)
           if not x.alive[p] and (b < ex.L.ninit or p == 0)]
    return " ".join(out) or "-"


def _fallback_text(flag: int) -> str:
    return "; the owner array is full: the skb is copied into kernel pages" if flag & COPIED else ""


def _describe(ex: X.Explorer, st0: X.State, lab: tuple, st: X.State, names: _Names) -> str:
    op, a, b, c = lab
    L = ex.L
    if op == PUT:
        rec = st0.ops[a]
        tok = rec[0]
        x = tok - 1
        before = after = None
        if x < 2 * L.nb:
            bb, p = divmod(x, 2)
            before, after = st0.bufs[bb].pc[p], st.bufs[bb].pc[p]
        elif x < 3 * L.nb:
            bb = x - 2 * L.nb
            before, after = st0.bufs[bb].oc, st.bufs[bb].oc
        elif x < 4 * L.nb:
            bb = x - 3 * L.nb
            before, after = st0.bufs[bb].uc, st.bufs[bb].uc
        else:
            before, after = st0.bind, st.bind
        text = f"put {names.line(tok)} ({before} -> {after})"
        if x < 3 * L.nb and 2 * L.nb <= x and after == 0 and ex.owner_design:
            text += ": the owner's release frees its memory" + (
                " and raises the completion" if ex.kinds[x - 2 * L.nb] in X.COMPLETES else "")
        elif x < 4 * L.nb and 3 * L.nb <= x and after == 0:
            text += ": the zerocopy completion"
        return text
    if op == DROP:
        sh = st0.shs[a]
        return f"dataref drop on the old {names.skb(sh)} ({sh.nmem + sh.drops} -> {sh.nmem + sh.drops - 1})"
    if op in (ATTACH_NEW, ATTACH):
        buf, shape = (a, b) if op == ATTACH_NEW else (b, c & 3)
        pages = names.pages(X.frag_code(buf, shape))
        span = " (two folios)" if shape == X.SPAN_SHAPE else ""
        where = "a new skb" if op == ATTACH_NEW else names.skb(st0.shs[a])
        lookup = " (its sendmsg() holds the binding meanwhile)" if ex.kinds[buf] == DEVMEM and not ex.owner_design \
            else ""
        return f"attach a frag over {pages}{span} to {where}{lookup}" + (_fallback_text(c) if op == ATTACH else "")
    if op == CLONE:
        sh = st0.shs[a]
        return f"skb_clone() of {names.skb(sh)} (dataref {sh.nmem + sh.drops} -> {sh.nmem + sh.drops + 1})"
    if op == SPLIT:
        head, tail = ex.split_choices(st0.shs[a].frags)[b]
        return (f"skb_split() of {names.skb(st0.shs[a])} into {names.skb(X.Sh(1, frags=head))} and "
                f"{names.skb(X.Sh(1, frags=tail))}")
    if op == SEGMENT:
        sh = st0.shs[a]
        return f"skb_segment(): {names.skb(X.Sh(1, frags=sh.frags[b:c + 1]))} from {names.skb(sh)}"
    if op == EXPAND:
        return f"pskb_expand_head() on a clone of {names.skb(st0.shs[a])}: a private copy"
    if op == COALESCE:
        return (f"skb_try_coalesce(): {names.skb(st0.shs[a])} takes the frags of {names.skb(st0.shs[b])}"
                + _fallback_text(c))
    if op == SHIFT:
        head, _tail = ex.shift_choices(st0.shs[b].frags)[c & ~COPIED]
        return (f"skb_shift(): {names.skb(X.Sh(1, frags=head))} from {names.skb(st0.shs[b])} to the end of "
                f"{names.skb(st0.shs[a])}" + _fallback_text(c))
    if op == TRIM:
        _head, tail = ex.split_choices(st0.shs[a].frags)[b]
        return f"__pskb_trim_head() of {names.skb(st0.shs[a])} on an ACK: {names.skb(X.Sh(1, frags=tail))} is left"
    if op == FRAG_LIST:
        return f"{names.skb(st0.shs[b])} joins the frag_list of {names.skb(st0.shs[a])} (GRO)"
    if op in (SPLICE, ZC_RECEIVE):
        sh = st0.shs[a]
        pages = names.pages(sh.frags[b])
        return (f"skb_splice_bits(): {pages} of {names.skb(sh)} into a pipe buffer" if op == SPLICE else
                f"tcp_zerocopy_receive(): {pages} of {names.skb(sh)} mapped into user space")
    if op in (PIPE_RELEASE, MUNMAP):
        rec = st0.ext[a]
        return ("pipe_buf_release() of the " if op == PIPE_RELEASE else "munmap() of the ") + names.outside(rec)
    if op == ORPHAN:
        return f"skb_orphan() of an skb of {names.skb(st0.shs[a])}: it gives up its socket (skb->sk)"
    if op == UNBIND_W:
        return f"the workqueue frees the binding of {names.buf[a]} (unbind_w): the dma-buf is unmapped"
    if op == COPYFB:
        return f"skb_copy_ubufs(): {names.skb(st0.shs[a])} copied into kernel pages"
    if op == FREE:
        sh = st0.shs[a]
        d = sh.nmem + sh.drops
        return f"kfree_skb({names.skb(sh)}): dataref {d} -> {d - 1}" + (": release" if d == 1 else "")
    if op == HOLDER:
        return HOLDER_TEXT[ex.kinds[a]].format(b=names.buf[a])
    return X.OP_NAMES[op]


def _verdict(ex: X.Explorer, st0: X.State, st: X.State, bad: set, names: _Names) -> str:
    if not bad:
        return ""
    out = []
    if X.UAF in bad:
        freed = [f"{names.buf[b]}{p}" for b, x in enumerate(st.bufs) for p in range(X.PAGES)
                 if st0.bufs[b].alive[p] and not x.alive[p] and ex.live_covers(st, b, p)]
        released = any(sh.nmem and sh.dataref <= 0 for sh in st0.shs) or (
            len(st.shs) < len(st0.shs) and any(sh.lost for sh in st0.shs))
        if freed:
            outside = [names.outside(r) for r in st.ext]
            under = "a live frag" + (f" or the {' and the '.join(outside)}" if outside else "")
            out.append(f"use-after-free: {' '.join(freed)} freed under {under}")
        elif released:
            out.append("use-after-free: the shared info is released while a clone still points at it")
        else:
            out.append("use-after-free: a reference taken on freed memory")
    if X.EARLY in bad:
        out.append("early completion: the application may reuse memory still being sent")
    if X.DOUBLE in bad:
        out.append("double release: a put on a count already at zero")
    return "; ".join(out)


def walk(bounds: Bounds, scenario: Scenario, labels, *, finish: bool = False) -> list[dict]:
    """Replay step labels in the twin from the start and tell each step: CPU, operation, the refcounts after
    it, pages freed, and any violation. A label is a step label from a trace (explorer_twin.Result.found),
    or "put" (the first in-flight put). ``finish=True`` then frees everything (puts, skbs, holders), as
    a clean run would end. Stops after the first violating step."""
    ex = X.Explorer(bounds, scenario)
    names = _Names(ex)
    v = ex.encode(ex.start())
    cpus: list[tuple[int, list]] = []  # (cpu, pending tokens or ["drop"]) per in-flight operation
    rows = []
    todo = list(labels)
    while todo or finish:
        st0 = ex.decode(v)
        succ = ex.successors(v)
        if todo:
            want = todo.pop(0)
        elif not succ:
            break
        elif st0.ops:
            want = "put"
        elif any(lab[0] == UNBIND_W for lab, _s, _b in succ):
            want = next(lab for lab, _s, _b in succ if lab[0] == UNBIND_W)
        elif st0.shs:
            want = next(lab for lab, _s, _b in succ if lab[0] in (DROP, FREE))
        elif st0.ext:
            want = next(lab for lab, _s, _b in succ if lab[0] in (PIPE_RELEASE, MUNMAP))
        else:
            want = next(lab for lab, _s, _b in succ if lab[0] == HOLDER)
        if want == "put":  # the next put, if any operation still has one to do
            want = next((lab for lab, _s, _b in succ if lab[0] == PUT), None)
            if want is None:
                continue
        try:
            lab, st, bad = next(x for x in succ if x[0] == tuple(want))
        except StopIteration:
            raise ValueError(f"step {len(rows) + 1}: {want!r} is not possible here") from None
        # which CPU runs the step
        if lab[0] == PUT:
            rec = st0.ops[lab[1]]
            k = next(i for i, (_c, toks) in enumerate(cpus) if toks == rec)
            cpu = cpus[k][0]
            cpus[k] = (cpu, rec[1:])
            if not cpus[k][1]:
                cpus.pop(k)
        elif lab[0] == UNBIND_W:
            cpu = "workqueue"
        elif lab[0] == DROP:
            k = next(i for i, (_c, toks) in enumerate(cpus) if toks == ["drop"])
            cpu = cpus.pop(k)[0]
            if len(st.ops) > len(st0.ops):
                cpus.append((cpu, list(st.ops[-1])))
        else:
            busy = {c for c, _t in cpus}
            cpu = min(c for c in range(bounds.cpus) if c not in busy)
            if lab[0] == EXPAND:
                cpus.append((cpu, ["drop"]))
            elif len(st.ops) > len(st0.ops):
                cpus.append((cpu, list(st.ops[-1])))
        w = ex.encode(st) if not bad else None
        text = _describe(ex, st0, lab, st, names)
        verdict = _verdict(ex, st0, st, bad, names)
        pending = "; ".join(f"CPU {c}: " + ("dataref drop" if t == ["drop"] else ", ".join(names.line(x) for x in t))
                            for c, t in sorted(cpus, key=lambda ct: ct[0]))
        rows.append({"step": len(rows) + 1, "cpu": cpu, "operation": text,
                     "refcounts after": _counts(ex, st, names), "puts to come": pending or "-",
                     "pages freed": _dead(ex, st, names), "verdict": verdict})
        if bad:
            break
        names.follow(st, w)
        v = w
        # keep the CPUs' pending records in the canonical token names
        cpus = [(c, t if t == ["drop"] else _canon_tokens(ex, st, w, t)) for c, t in cpus]
    if rows and not rows[-1]["verdict"] and not ex.successors(v) and ex.leaks(v):
        rows.append({"step": len(rows) + 1, "cpu": "-", "operation": "nothing left to do",
                     "refcounts after": _counts(ex, ex.decode(v), names), "puts to come": "-",
                     "pages freed": _dead(ex, ex.decode(v), names), "verdict": "leak: memory or a reference remains"})
    return rows


def _canon_tokens(ex: X.Explorer, st: X.State, canonical: tuple, toks: list) -> list:
    """Tokens of ``st`` (parent labels) renamed as in the canonical successor."""
    for perm in ex.perms:
        if ex.encode_raw(st, perm) == canonical:
            ren = ex.encode_raw(X.State(0, 0, [X.Buf() for _ in st.bufs], [], [list(toks)]), perm)
            L = ex.L
            row = ren[L.off_op:L.off_op + L.ow]
            return sorted(t for t in row[1:1 + row[0]])
    return toks
