"""The pure-Python twin of the replay engine: the specification, written to be read.

Every rule of the model is stated here once, in plain Python; the numba
engine (:mod:`fraglife.model.engine`) must return the same ledger, field by
field, on every trace (tests/test_engine_differential.py checks this).

The model in one paragraph. Memory is buffers of pages grouped in folios.
Skbs point at a shared info (frags + ``dataref``). A frag holds references
according to the policy: its *refset* (folio heads or an owner). Every event
computes which frag holdings it adds, changes or removes; the references it
takes or drops are the difference between the refsets after and before,
merged per object. A non-batched policy pays one atomic per reference unit
(the kernel's ``get_page()``/``put_page()`` loops), a batched one pays one
atomic per object with a non-zero net change (``refcount_add(n)``). All
gets of an event are applied before its puts. Pages die when their folio
refcount (page policies) or their buffer's owner refcount (owner policies)
reaches zero; dying pages that a live frag still covers are use-after-free.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from . import trace as T
from .ledger import Ledger
from .policies import OWNER_FRAG, OWNER_NONE, OWNER_SKB, PAGE_ALL, PAGE_FIRST, PAGE_NONE, Policy

PAGE = T.PAGE_SIZE
FOLIO, OWNER, UARG = "folio", "owner", "uarg"


@dataclass
class Frag:
    pfn: int  # the page the frag was created with; stays put as off grows
    off: int
    len: int
    buf: int

    def pages(self) -> range:
        """The pages the frag's bytes actually cover."""
        return range(self.pfn + self.off // PAGE, self.pfn + (self.off + self.len - 1) // PAGE + 1)


@dataclass
class SharedInfo:
    slot: int
    dataref: int = 1
    frags: list[Frag] = field(default_factory=list)
    uarg: int = -1


@dataclass
class Skb:
    shinfo: SharedInfo
    cloned: bool = False


@dataclass
class Buffer:
    pfn: int
    pages: int
    folio_pages: int
    uarg: int
    holder: bool = True  # the holder's own reference not yet released
    owner_ref: int = 0

    def heads(self) -> list[int]:
        return list(range(self.pfn, self.pfn + self.pages, self.folio_pages))


class Replay:
    """Replays a trace under a policy. Use :func:`replay`."""

    def __init__(self, policy: Policy, *, n_pfn: int, n_buf: int, n_uarg: int, max_frags: int = T.MAX_SKB_FRAGS, **_):
        self.p = policy
        self.max_frags = max_frags
        self.n_pfn, self.n_buf, self.n_uarg = n_pfn, n_buf, n_uarg
        self.c = Counter()  # ledger scalars
        self.by_op = Counter()
        # memory
        self.alive: dict[int, bool] = {}  # pfn -> allocated
        self.head: dict[int, int] = {}  # pfn -> folio head pfn
        self.page_buf: dict[int, int] = {}
        self.folio_ref: dict[int, int] = {}
        self.ptrs: Counter = Counter()  # pfn -> live frags covering it
        self.buffers: dict[int, Buffer] = {}
        self.pages_alive = 0
        # zerocopy notifications
        self.uarg_ref: dict[int, int] = {}
        self.uarg_active: dict[int, bool] = {}
        self.uarg_ptrs: Counter = Counter()
        # skbs
        self.skbs: dict[int, Skb] = {}
        self.free_slots: list[int] = []  # LIFO, like a slab freelist
        self.next_slot = 0
        # cache lines: id -> CPU that last wrote it
        self.last_cpu: dict[tuple, int] = {}
        self.written: set[tuple] = set()

    # ---- cache lines -------------------------------------------------------
    def init_line(self, line: tuple, cpu: int) -> None:
        self.last_cpu[line] = cpu  # a plain store by the allocating CPU

    def atomic(self, line: tuple, cpu: int) -> None:
        self.c["atomics"] += 1
        if line not in self.written:
            self.written.add(line)
            self.c["lines"] += 1
        if self.last_cpu.get(line, cpu) != cpu:
            self.c["bounces"] += 1
        self.last_cpu[line] = cpu

    # ---- references --------------------------------------------------------
    def refset(self, f: Frag) -> list[tuple]:
        """What one frag holding references under the policy."""
        if self.p.page_mode == PAGE_FIRST:
            return [(FOLIO, self.head[f.pfn])]
        if self.p.page_mode == PAGE_ALL:
            return list(dict.fromkeys((FOLIO, self.head[q]) for q in f.pages()))
        if self.p.owner_mode == OWNER_FRAG:
            return [(OWNER, f.buf)]
        return []  # per-shared-info owners are counted by owner_terms()

    def owner_terms(self, frags: list[Frag]) -> list[tuple]:
        """Per-shared-info owners: one reference per distinct owner among ``frags``."""
        if self.p.owner_mode in (OWNER_NONE, OWNER_FRAG):
            return []
        return [(OWNER, b) for b in dict.fromkeys(f.buf for f in frags)]

    def apply(self, delta: Counter, cpu: int, op: int) -> None:
        """Execute an event's net reference changes: gets first, then puts."""
        items = [(k, v) for k, v in delta.items() if v]
        for obj, units in [kv for kv in items if kv[1] > 0] + [kv for kv in items if kv[1] < 0]:
            atomics = 1 if self.p.batch else abs(units)
            for _ in range(atomics):
                self.atomic(obj, cpu)
            kind, ident = obj
            if kind == UARG:
                self.c["uarg_atomics"] += atomics
                self.change_uarg(ident, units)
            else:
                self.c["ref_atomics"] += atomics
                self.by_op[op] += atomics
                self.change_ref(kind, ident, units)

    def change_ref(self, kind: str, ident: int, units: int) -> None:
        if kind == FOLIO:
            cur, alive = self.folio_ref.get(ident, 0), self.alive.get(ident, False)
        else:
            b = self.buffers[ident]
            cur, alive = b.owner_ref, cur_alive(self, ident)
        if units > 0:
            self.c["refs_taken"] += units
            if not alive:
                self.c["bad_refs"] += 1
            new = cur + units
        else:
            self.c["refs_dropped"] += -units
            if cur < -units:
                self.c["bad_refs"] += 1
                new = 0
            else:
                new = cur + units
        if kind == FOLIO:
            self.folio_ref[ident] = new
        else:
            self.buffers[ident].owner_ref = new
        if units < 0 and new == 0 and cur > 0:
            if kind == FOLIO:
                b = self.buffers[self.page_buf[ident]]
                end = min(ident + b.folio_pages, b.pfn + b.pages)
                self.free_pages(range(ident, end))
            else:
                b = self.buffers[ident]
                self.free_pages(range(b.pfn, b.pfn + b.pages))

    def change_uarg(self, u: int, units: int) -> None:
        cur = self.uarg_ref.get(u, 0)
        if units < 0 and cur < -units:
            self.c["bad_refs"] += 1
            self.uarg_ref[u] = 0
            return
        self.uarg_ref[u] = cur + units
        if self.uarg_ref[u] == 0:
            self.c["completions"] += 1
            self.uarg_active[u] = False

    def free_pages(self, pages: range) -> None:
        hit = False
        for q in pages:
            if not self.alive.get(q, False):
                continue
            self.alive[q] = False
            self.pages_alive -= 1
            if self.ptrs[q] > 0:
                self.c["uaf_pages"] += 1
                hit = True
        if hit:
            self.c["uaf_frees"] += 1

    # ---- frag pointers (for use-after-free detection) ----------------------
    def point(self, f: Frag, sign: int) -> None:
        for q in f.pages():
            self.ptrs[q] += sign
        u = self.buffers[f.buf].uarg
        if u >= 0:
            self.uarg_ptrs[u] += sign

    # ---- shared infos ------------------------------------------------------
    def new_shinfo(self, cpu: int) -> SharedInfo:
        slot = self.free_slots.pop() if self.free_slots else self._fresh_slot()
        self.init_line(("dataref", slot), cpu)
        return SharedInfo(slot)

    def _fresh_slot(self) -> int:
        self.next_slot += 1
        return self.next_slot - 1

    def inherit_uarg(self, old: SharedInfo, new: SharedInfo, delta: Counter) -> None:
        """A shared info made from a zerocopy one points at the same ubuf_info (skb_zerocopy_clone())."""
        if old.uarg >= 0:
            new.uarg = old.uarg
            if self.p.uarg:
                delta[(UARG, old.uarg)] += 1

    def release_shinfo(self, sh: SharedInfo, delta: Counter) -> None:
        """dataref reached zero: drop every frag's references (skb_release_data)."""
        for f in sh.frags:
            self.point(f, -1)
            delta.subtract(self.refset(f))
        delta.subtract(self.owner_terms(sh.frags))
        if sh.uarg >= 0 and self.p.uarg:
            delta[(UARG, sh.uarg)] -= 1
        sh.frags = []
        sh.dataref = 0
        self.free_slots.append(sh.slot)

    def frags_ok(self, f: Frag) -> bool:
        b = self.buffers.get(f.buf)
        if b is None or f.len <= 0 or f.off < 0:
            return False
        if f.pfn < b.pfn:  # the page the frag names must be the buffer's too
            return False
        return all(b.pfn <= q < b.pfn + b.pages and self.alive.get(q, False) for q in f.pages())

    def total(self, sh: SharedInfo) -> int:
        return sum(f.len for f in sh.frags)

    # ---- events ------------------------------------------------------------
    def run(self, trace) -> Ledger:
        for ev in trace:
            self.c["events"] += 1
            ok = self.step(int(ev["op"]), int(ev["cpu"]), int(ev["skb"]), int(ev["other"]), int(ev["buf"]),
                           int(ev["pfn"]), int(ev["off"]), int(ev["len"]))
            if not ok:
                self.c["trace_errors"] += 1
        return self.finish()

    def step(self, op, cpu, skb, other, buf, pfn, off, length) -> bool:
        delta: Counter = Counter()
        p = self.p
        if op == T.ALLOC:
            fp, pages, uarg = off, length, other
            if pages <= 0 or fp <= 0 or pfn < 0 or pfn + pages > self.n_pfn or buf < 0:
                return False
            old = self.buffers.get(buf)
            if old is not None and (old.holder or cur_alive(self, buf)):
                return False
            if any(self.alive.get(q, False) for q in range(pfn, pfn + pages)):
                return False
            b = Buffer(pfn, pages, fp, uarg)
            self.buffers[buf] = b
            for q in range(pfn, pfn + pages):
                self.alive[q] = True
                self.head[q] = pfn + (q - pfn) // fp * fp
                self.page_buf[q] = buf
            self.pages_alive += pages
            self.c["pages_peak"] = max(self.c["pages_peak"], self.pages_alive)
            if p.page_mode != PAGE_NONE:
                for h in b.heads():
                    self.folio_ref[h] = 1
                    self.init_line((FOLIO, h), cpu)
            else:
                b.owner_ref = 1
                self.init_line((OWNER, buf), cpu)
            if uarg >= 0 and not self.uarg_active.get(uarg, False):
                self.uarg_active[uarg] = True
                self.uarg_ref[uarg] = 0
                self.init_line((UARG, uarg), cpu)
            return True

        if op == T.SKB_ALLOC:
            if skb < 0 or skb in self.skbs:
                return False
            self.skbs[skb] = Skb(self.new_shinfo(cpu))
            return True

        if op == T.ATTACH:
            s = self.skbs.get(skb)
            f = Frag(pfn, off, length, buf)
            if s is None or s.shinfo.dataref != 1 or len(s.shinfo.frags) >= self.max_frags or not self.frags_ok(f):
                return False
            sh, u = s.shinfo, self.buffers[buf].uarg
            if u >= 0 and sh.uarg >= 0 and sh.uarg != u:
                return False  # an skb points at one uarg (skb_zerocopy_iter_stream: -EEXIST)
            delta.subtract(self.owner_terms(sh.frags))
            sh.frags.append(f)
            self.point(f, +1)
            delta.update(self.refset(f))
            delta.update(self.owner_terms(sh.frags))
            if u >= 0 and sh.uarg < 0:
                sh.uarg = u
                if p.uarg:
                    delta[(UARG, u)] += 1
            self.apply(delta, cpu, op)
            return True

        if op == T.CLONE:
            src = self.skbs.get(other)
            if src is None or skb < 0 or skb in self.skbs or skb == other:
                return False
            sh = src.shinfo
            sh.dataref += 1
            self.atomic(("dataref", sh.slot), cpu)
            self.c["dataref_atomics"] += 1
            self.skbs[skb] = Skb(sh, cloned=True)
            src.cloned = True
            if p.owner_mode == OWNER_SKB:
                delta.update(self.owner_terms(sh.frags))
            self.apply(delta, cpu, op)
            return True

        if op == T.SPLIT:
            s = self.skbs.get(skb)
            if s is None or other < 0 or other in self.skbs or other == skb or s.shinfo.dataref != 1:
                return False
            sh, keep = s.shinfo, length
            if not 0 < keep < self.total(sh):
                return False
            before = list(sh.frags)
            new = self.new_shinfo(cpu)
            stay: list[Frag] = []
            pos = 0
            for f in before:
                if pos + f.len <= keep:
                    stay.append(f)
                elif pos >= keep:
                    new.frags.append(f)  # moved with its references
                else:  # straddles the split point: both halves hold references
                    head_part = Frag(f.pfn, f.off, keep - pos, f.buf)
                    tail_part = Frag(f.pfn, f.off + keep - pos, f.len - (keep - pos), f.buf)
                    self.point(f, -1)
                    self.point(head_part, +1)
                    self.point(tail_part, +1)
                    delta.subtract(self.refset(f))
                    delta.update(self.refset(head_part))
                    delta.update(self.refset(tail_part))
                    stay.append(head_part)
                    new.frags.append(tail_part)
                pos += f.len
            sh.frags = stay
            delta.subtract(self.owner_terms(before))
            delta.update(self.owner_terms(stay))
            delta.update(self.owner_terms(new.frags))
            self.inherit_uarg(sh, new, delta)
            self.skbs[other] = Skb(new)
            self.apply(delta, cpu, op)
            return True

        if op == T.SEGMENT:
            src = self.skbs.get(other)
            if src is None or skb < 0 or skb in self.skbs or skb == other:
                return False
            start, end = off, off + length
            if start < 0 or length <= 0 or end > self.total(src.shinfo):
                return False
            pieces = []
            pos = 0
            for f in src.shinfo.frags:
                lo, hi = max(start, pos), min(end, pos + f.len)
                if lo < hi:
                    pieces.append(Frag(f.pfn, f.off + lo - pos, hi - lo, f.buf))
                pos += f.len
            if len(pieces) > self.max_frags:
                return False
            new = self.new_shinfo(cpu)
            for f in pieces:
                new.frags.append(f)
                self.point(f, +1)
                delta.update(self.refset(f))
            delta.update(self.owner_terms(new.frags))
            self.inherit_uarg(src.shinfo, new, delta)
            self.skbs[skb] = Skb(new)
            self.apply(delta, cpu, op)
            return True

        if op == T.EXPAND_HEAD:
            s = self.skbs.get(skb)
            if s is None:
                return False
            old = s.shinfo
            if old.dataref > 1:  # skb_cloned(): frags are shared, so the new head refs them all
                new = self.new_shinfo(cpu)
                for f in old.frags:
                    g = Frag(f.pfn, f.off, f.len, f.buf)
                    new.frags.append(g)
                    self.point(g, +1)
                    delta.update(self.refset(g))
                delta.update(self.owner_terms(new.frags))
                if p.owner_mode == OWNER_SKB:
                    delta.subtract(self.owner_terms(old.frags))  # this skb's ref moves over
                self.inherit_uarg(old, new, delta)
                old.dataref -= 1
                self.atomic(("dataref", old.slot), cpu)
                self.c["dataref_atomics"] += 1
                s.shinfo = new
            s.cloned = False
            self.apply(delta, cpu, op)
            return True

        if op == T.COALESCE:
            dst, src = self.skbs.get(skb), self.skbs.get(other)
            if dst is None or src is None or skb == other:
                return False
            dsh, ssh = dst.shinfo, src.shinfo
            if dsh.dataref != 1 or dsh.uarg >= 0 or ssh.uarg >= 0:
                return False  # skb_try_coalesce refuses cloned targets and zerocopy skbs
            if len(dsh.frags) + len(ssh.frags) > self.max_frags:
                return False
            delta.subtract(self.owner_terms(dsh.frags))
            if ssh.dataref > 1:  # from is cloned: the copies need their own references
                for f in ssh.frags:
                    g = Frag(f.pfn, f.off, f.len, f.buf)
                    dsh.frags.append(g)
                    self.point(g, +1)
                    delta.update(self.refset(g))
            else:  # frags (and their references) move; from is left empty
                delta.subtract(self.owner_terms(ssh.frags))
                dsh.frags.extend(ssh.frags)
                ssh.frags = []
            delta.update(self.owner_terms(dsh.frags))
            self.apply(delta, cpu, op)
            return True

        if op == T.PULL:
            s = self.skbs.get(skb)
            if s is None or s.shinfo.dataref != 1 or not 0 < length <= self.total(s.shinfo):
                return False
            sh = s.shinfo
            before = list(sh.frags)
            eat, kept = length, []
            for f in before:
                if f.len <= eat:
                    eat -= f.len
                    self.point(f, -1)
                    delta.subtract(self.refset(f))
                elif eat:
                    g = Frag(f.pfn, f.off + eat, f.len - eat, f.buf)
                    self.point(f, -1)
                    self.point(g, +1)
                    delta.subtract(self.refset(f))
                    delta.update(self.refset(g))
                    kept.append(g)
                    eat = 0
                else:
                    kept.append(f)
            sh.frags = kept
            delta.subtract(self.owner_terms(before))
            delta.update(self.owner_terms(kept))
            self.apply(delta, cpu, op)
            return True

        if op == T.ZC_COMPLETE:
            if other < 0 or other >= self.n_uarg:
                return False
            if self.uarg_ptrs[other] > 0:
                self.c["early_complete"] += 1
            return True

        if op == T.FREE:
            s = self.skbs.pop(skb, None)
            if s is None:
                return False
            sh = s.shinfo
            if sh.dataref > 1:  # skb_data_unref(): shared, so only dataref drops
                sh.dataref -= 1
                self.atomic(("dataref", sh.slot), cpu)
                self.c["dataref_atomics"] += 1
                if p.owner_mode == OWNER_SKB:
                    delta.subtract(self.owner_terms(sh.frags))
            else:  # last user (no atomic when dataref is 1): release the frags
                self.release_shinfo(sh, delta)
            self.apply(delta, cpu, op)
            return True

        if op == T.BUF_RELEASE:
            b = self.buffers.get(buf)
            if b is None or not b.holder:
                return False
            b.holder = False
            if p.page_mode != PAGE_NONE:
                for h in b.heads():
                    self.apply(Counter({(FOLIO, h): -1}), cpu, op)
            else:
                self.apply(Counter({(OWNER, buf): -1}), cpu, op)
            return True

        return False

    def finish(self) -> Ledger:
        c = self.c
        leaked = sum(r for h, r in self.folio_ref.items() if self.alive.get(h, False) and self.head.get(h) == h)
        leaked += sum(b.owner_ref for i, b in self.buffers.items() if cur_alive(self, i))
        leaked += sum(r for u, r in self.uarg_ref.items() if r > 0)
        leaked += sum(s.shinfo.dataref for s in {id(s.shinfo): s for s in self.skbs.values()}.values())
        c["leaked_refs"] = leaked
        c["leaked_pages"] = self.pages_alive
        c["leaked_skbs"] = len(self.skbs)
        from .ledger import SCALARS

        return Ledger(**{k: int(c[k]) for k in SCALARS},
                      ref_by_op=tuple(int(self.by_op[i]) for i in range(T.N_OPS)))


def cur_alive(r: Replay, buf: int) -> bool:
    """A buffer (and its owner) is alive while any page it allocated still is."""
    b = r.buffers[buf]
    return any(r.alive.get(q, False) and r.page_buf.get(q) == buf for q in range(b.pfn, b.pfn + b.pages))


def replay(trace, policy: Policy, *, max_frags: int = T.MAX_SKB_FRAGS) -> Ledger:
    """Replay ``trace`` under ``policy`` in plain Python."""
    sizes = T.sizes(trace)
    return Replay(policy, max_frags=max_frags, **sizes).run(trace)
