"""The explorer's rules, one test each, every one written so that the rule it replaces would fail it: devmem
memory lives until the binding's last put; the paths that hand frag pages outside the skb; the owner's rules as
one invariant and the mutant that leaves out each; the owner array and its fallbacks; devmem TX's two rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fraglife.model import explorer as E
from fraglife.model import explorer_story as W
from fraglife.model import explorer_twin as X
from fraglife.model import kernels
from fraglife.model.policies import POLICIES

ROOT = Path(__file__).resolve().parents[1]
MEMORIES = {"user+pipe": (X.USER, X.PIPE), "user": (X.USER, X.USER), "pipe": (X.PIPE, X.PIPE),
            "pool": (X.POOL, X.POOL), "devmem": (X.DEVMEM, X.DEVMEM), "kmalloc": (X.KMALLOC, X.KMALLOC)}
SMALL = X.Bounds(ops=3, cpus=2, skbs=2, frags=2)
ONE = X.Bounds(ops=1, cpus=1, skbs=1, frags=1)
TWO = X.Bounds(ops=2, cpus=1, skbs=1, frags=1)


def _sc(kinds, policy="owner_skb", **kw) -> X.Scenario:
    return X.Scenario(kinds=kinds, policy=POLICIES[policy], **kw)


def _rows(b, sc, labels, **kw):
    return W.walk(b, sc, labels, **kw)


# ---- 1. devmem memory lives until the binding's last put ----------------------------------------------------
def test_unbinding_under_a_live_frag_frees_nothing_under_the_binding_rule():
    """The old rule freed devmem memory at unbind ("fails in 2 steps"); net_devmem_unbind_dmabuf() drops only the
    netlink socket's ref and the memory lives to the last put, through the workqueue (6.16+)."""
    sc = _sc((X.DEVMEM,), "owner_binding")
    unbind = [(X.ATTACH_NEW, 0, 0, 0), "put", (X.HOLDER, 0, 0, 0), "put", "put"]
    rows = _rows(ONE, sc, unbind)
    assert not any(r["verdict"] for r in rows) and rows[-1]["pages freed"] == "-"
    assert rows[-1]["refcounts after"] == "ubuf_info A 1, the binding 1"  # the frag's binding ref keeps it
    end = _rows(TWO, sc, unbind, finish=True)
    assert not any(r["verdict"] for r in end) and end[-1]["pages freed"] == "A0 A1"
    assert [r["cpu"] for r in end if "unbind_w" in r["operation"]] == ["workqueue"]
    assert E.explore(SMALL, _sc((X.DEVMEM, X.DEVMEM), "owner_binding")).verdict == "passes"
    assert kernels.follows("6.18", "devmem_binding_free_deferred") and kernels.follows("6.18", "frag_ref_get_netmem")


def test_todays_devmem_binding_is_freed_at_its_last_put_through_the_workqueue():
    """page_ref: the binding ref per frag keeps the dma-buf mapped after unbind; the last put queues the free."""
    sc = _sc((X.DEVMEM,), "page_ref")
    rows = _rows(ONE, sc, [(X.ATTACH_NEW, 0, 0, 0), "put", (X.HOLDER, 0, 0, 0), "put", "put", (X.FREE, 0, 0, 0), "put"])
    assert not any(r["verdict"] for r in rows)
    assert rows[0]["refcounts after"] == "binding A 3, ubuf_info A 2"  # the user's, the frag's, the sendmsg's
    assert rows[-1]["refcounts after"] == "binding A 0, ubuf_info A 1, binding A free queued"
    assert rows[-1]["pages freed"] == "-"


def test_the_binding_rule_fails_only_for_memory_its_holder_frees():
    """The restated claim: pipe, page_pool and kmalloc'd memory go back when their holder lets go; devmem (the
    binding's own memory) and pinned user memory survive."""
    ok, verdicts = E.binding_fails_only_where_the_holder_frees(SMALL, MEMORIES)
    assert ok, verdicts
    assert verdicts["devmem"] == "passes" and verdicts["user"] == "passes"
    assert {verdicts[m] for m in ("pipe", "pool", "kmalloc", "user+pipe")} == {"use_after_free in 2 steps"}
    rows = E.binding_verdicts(SMALL, MEMORIES)
    assert all(r["labels"][-1][0] == X.HOLDER for r in rows.values() if r["verdict"] == "fails")


# ---- 2. paths that hand frag pages outside the skb ------------------------------------------------------------
def test_a_pipe_buffer_outlives_the_skb_and_keeps_its_page():
    """skb_splice_bits(): get_page() per pipe buffer. Today's frags: the page lives until pipe_buf_release()."""
    sc = _sc((X.PIPE,), "page_ref", span=False)
    rows = _rows(TWO, sc, [(X.ATTACH_NEW, 0, 0, 0), (X.SPLICE, 0, 0, 0), (X.FREE, 0, 0, 0), "put",
                           (X.HOLDER, 0, 0, 0), "put", "put"])
    assert not any(r["verdict"] for r in rows) and rows[-1]["pages freed"] == "A1"
    assert rows[-1]["refcounts after"] == "page A0 1"  # the pipe buffer's
    end = _rows(TWO, sc, [r for r in [(X.ATTACH_NEW, 0, 0, 0), (X.SPLICE, 0, 0, 0), (X.FREE, 0, 0, 0), "put",
                                      (X.HOLDER, 0, 0, 0), "put", "put", (X.PIPE_RELEASE, 0, 0, 0)]])
    assert end[-1]["pages freed"] == "A0 A1" and not end[-1]["verdict"]


def test_a_pipe_buffer_over_a_multi_folio_frag_has_todays_bug():
    """spd_fill_page() takes one get_page() on the frag's page: a frag spanning folios leaves the second page
    unreferenced under the pipe buffer once the skb is gone."""
    sc = _sc((X.PIPE,), "page_ref")
    rows = _rows(TWO, sc, [(X.ATTACH_NEW, 0, X.SPAN_SHAPE, 0), (X.SPLICE, 0, 0, 0), (X.FREE, 0, 0, 0), "put",
                           (X.HOLDER, 0, 0, 0), "put", "put"])
    assert rows[-1]["verdict"] == "use-after-free: A1 freed under a live frag or the pipe buffer over A0-A1"
    assert E.explore(SMALL, _sc((X.PIPE, X.PIPE), "page_ref_all")).verdict == "passes"


def test_with_the_owner_the_pipe_buffer_holds_the_owner():
    sc = _sc((X.PIPE,), "owner_skb")
    steps = [(X.ATTACH_NEW, 0, X.SPAN_SHAPE, 0), (X.SPLICE, 0, 0, 0), (X.FREE, 0, 0, 0), "put", (X.HOLDER, 0, 0, 0),
             "put"]
    rows = _rows(TWO, sc, steps)
    assert not any(r["verdict"] for r in rows) and rows[-1]["refcounts after"] == "owner A 1"
    bad = _rows(TWO, _sc((X.PIPE,), rules=X.ALL_RULES & ~X.R_SPLICE), steps)
    assert bad[-1]["verdict"].startswith("use-after-free: A0 A1 freed under a live frag or the pipe buffer")


def test_zerocopy_receive_maps_only_whole_pages_of_mappable_memory():
    """can_map_frag(): one page at offset 0, no mapping; vm_insert_pages() refuses anon and slab folios; unreadable
    net_iovs never get there. Zerocopy skbs are copied before local delivery (skb_orphan_frags_rx())."""
    def mappings(kinds, policy, shape):
        ex = X.Explorer(TWO, _sc(kinds, policy))
        v = ex.encode(ex.start())
        v = next(s for lab, s, _b in ex.steps(v, X.ATTACH_NEW) if lab == (X.ATTACH_NEW, 0, shape, 0))
        return [lab for lab, _s, _b in ex.steps(v, X.ZC_RECEIVE)]

    assert mappings((X.PIPE,), "page_ref", 0) == [(X.ZC_RECEIVE, 0, 0, 0)]
    assert mappings((X.PIPE,), "page_ref", 3) == [(X.ZC_RECEIVE, 0, 0, 0)]
    assert mappings((X.POOL,), "page_ref", 0) == [(X.ZC_RECEIVE, 0, 0, 0)]
    assert mappings((X.PIPE,), "page_ref", X.SPAN_SHAPE) == []  # two pages: not one whole page
    assert mappings((X.USER,), "page_ref", 0) == []  # a zerocopy skb, and anon memory
    assert mappings((X.USER,), "owner_skb", 0) == []  # anon memory
    assert mappings((X.KMALLOC,), "owner_skb", 0) == []  # slab
    assert mappings((X.DEVMEM,), "page_ref", 0) == []  # unreadable
    sc = _sc((X.POOL,), "page_ref")
    rows = _rows(TWO, sc, [(X.ATTACH_NEW, 0, 0, 0), (X.ZC_RECEIVE, 0, 0, 0), (X.FREE, 0, 0, 0), "put",
                           (X.HOLDER, 0, 0, 0), "put", "put"])
    assert not any(r["verdict"] for r in rows) and rows[-1]["pages freed"] == "A1"  # the mapping keeps A0
    bad = _rows(TWO, _sc((X.POOL,), rules=X.ALL_RULES & ~X.R_MAP),
                [(X.ATTACH_NEW, 0, 0, 0), (X.ZC_RECEIVE, 0, 0, 0), (X.FREE, 0, 0, 0), "put", (X.HOLDER, 0, 0, 0), "put",
                 "put"])
    assert bad[-1]["verdict"] == "use-after-free: A0 freed under a live frag or the mapping of A0"


def test_trim_head_drops_acked_frags_while_the_skb_lives():
    """__pskb_trim_head(): skb_frag_unref() of every fully acked frag before the skb dies."""
    b = X.Bounds(ops=3, cpus=1, skbs=1, frags=2)
    between = 1  # split_choices([A0, A1]): inside A0, between the two, inside A1
    rows = _rows(b, _sc((X.PIPE,), "page_ref"), [(X.ATTACH_NEW, 0, 0, 0), (X.ATTACH, 0, 0, 3), (X.TRIM, 0, between, 0)])
    assert rows[1]["refcounts after"] == "page A0 2, page A1 2"
    assert rows[2]["refcounts after"] == "page A0 1, page A1 2" and "skb{A1} is left" in rows[2]["operation"]
    own = _rows(b, _sc((X.USER, X.PIPE)), [(X.ATTACH_NEW, 0, 0, 0), (X.ATTACH, 0, 1, 0), (X.TRIM, 0, between, 0)])
    assert own[1]["refcounts after"] == "owner A 2, owner B 2" and own[2]["refcounts after"] == "owner A 1, owner B 2"


def test_trim_through_a_multi_folio_frag_keeps_the_ref_on_its_first_page():
    """skb_frag_off_add() keeps the frag's page: trimmed past its first folio, today's single ref stays there."""
    sc = _sc((X.PIPE,), "page_ref")
    boundary = 1  # a two-page frag cut at the page boundary
    rows = _rows(TWO, sc, [(X.ATTACH_NEW, 0, X.SPAN_SHAPE, 0), (X.TRIM, 0, boundary, 0), (X.HOLDER, 0, 0, 0), "put",
                           "put"])
    assert rows[1]["refcounts after"] == "page A0 2, page A1 1"
    assert rows[-1]["verdict"] == "use-after-free: A1 freed under a live frag"


def test_shift_moves_whole_frags_and_refs_a_frag_cut_in_two():
    """skb_shift(): whole frags move without refs, a partly moved frag takes __skb_frag_ref(); tcp_grow_skb()."""
    b = X.Bounds(ops=3, cpus=1, skbs=2, frags=2)
    ex = X.Explorer(b, _sc((X.PIPE, X.PIPE), "page_ref"), symmetry=False)  # buffer labels stay put
    v = ex.encode(ex.start())
    for lab in [(X.ATTACH_NEW, 0, 0, 0), (X.ATTACH_NEW, 1, 0, 0)]:
        v = next(s for l2, s, _b in ex.steps(v, lab[0]) if l2 == lab)
    shifts = {lab: ex.decode(s) for lab, s, _b in ex.steps(v, X.SHIFT)}
    counts = {lab: [x.pc for x in st.bufs[:2]] for lab, st in shifts.items()}
    assert counts[(X.SHIFT, 0, 1, 0)] == [[2, 1], [3, 1]]  # cut inside B0: both skbs hold it
    assert counts[(X.SHIFT, 0, 1, 1)] == [[2, 1], [2, 1]]  # all of B0 moves: no ref
    zc = X.Explorer(b, _sc((X.USER, X.USER), "page_ref"), symmetry=False)
    v = zc.encode(zc.start())
    for lab in [(X.ATTACH_NEW, 0, 0, 0), (X.ATTACH_NEW, 1, 0, 0)]:
        v = next(s for l2, s, _b in zc.steps(v, lab[0]) if l2 == lab)
    assert zc.steps(v, X.SHIFT) == []  # skb_shift() refuses zerocopy skbs


def test_a_frag_list_child_is_released_with_its_parent():
    b = X.Bounds(ops=3, cpus=1, skbs=2, frags=2)
    sc = _sc((X.PIPE, X.POOL), "page_ref")
    rows = _rows(b, sc, [(X.ATTACH_NEW, 0, 0, 0), (X.ATTACH_NEW, 1, 0, 0), (X.FRAG_LIST, 0, 1, 0), (X.FREE, 0, 0, 0)])
    assert rows[2]["operation"] == "skb{B0} joins the frag_list of skb{A0} (GRO)"
    assert rows[3]["puts to come"] == "CPU 0: page A0, pp_ref_count B0"  # the child's refs go with the parent's
    ex = X.Explorer(X.Bounds(ops=5, cpus=1, skbs=3, frags=2), sc)
    v = ex.encode(ex.start())
    for lab in [(X.ATTACH_NEW, 0, 0, 0), (X.ATTACH_NEW, 1, 0, 0), (X.FRAG_LIST, 0, 1, 0), (X.ATTACH_NEW, 0, 0, 0)]:
        v = next(s for l2, s, _b in ex.steps(v, lab[0]) if l2 == lab)
    chain = next(i for i, sh in enumerate(ex.decode(v).shs) if sh.nl)
    for op in (X.ATTACH, X.SPLIT, X.TRIM):  # label (op, shared info, ...)
        assert all(lab[1] != chain for lab, _s, _b in ex.steps(v, op)), X.OP_NAMES[op]
    for op in (X.COALESCE, X.SHIFT, X.FRAG_LIST):  # label (op, shared info, shared info, ...)
        assert all(chain not in lab[1:3] for lab, _s, _b in ex.steps(v, op)), X.OP_NAMES[op]
    assert any(lab[1] == chain for lab, _s, _b in ex.steps(v, X.SEGMENT))  # GSO segments a chain


def test_today_is_safe_with_todays_frags_through_every_new_path():
    """Frags inside a folio: splice, mapping, trim, shift and frag_list add no violation to today's rules."""
    for m in ("user+pipe", "pipe", "pool"):
        res = E.explore(X.Bounds(ops=3, cpus=2, skbs=3, frags=2), _sc(MEMORIES[m], "page_ref", span=False))
        assert res.verdict == "passes", m


# ---- 3. the owner's rules as one invariant -------------------------------------------------------------------
#: each rule left out (chapter 08's mutant memory, user memory and a pipe, at ops 3, one CPU, 2 skbs, 2 frags):
#: the shortest violation and its length
MUTANTS = {"clone_shares_through_dataref": ("use_after_free", 3), "split_refs_new_owner_set": ("use_after_free", 5),
           "segment_refs_its_owners": ("use_after_free", 5), "expand_head_refs_its_owners": ("use_after_free", 8),
           "coalesce_refs_the_other_owner": ("use_after_free", 5), "copy_drops_the_old_owner": ("leak", 8),
           "shift_refs_the_target_owners": ("use_after_free", 5), "pipe_buffer_holds_the_owner": ("use_after_free", 6),
           "mapping_holds_the_owner": ("use_after_free", 6), "frag_list_released_with_parent": ("leak", 9)}
MUTANT_BOUNDS = X.Bounds(ops=3, cpus=1, skbs=2, frags=2)


def test_the_invariant_holds_in_every_state_of_every_design():
    """A shared info (or skb) holds exactly its frags' owners, dataref counts every skb, and every refcount equals
    the references its holders hold: in every reachable state, for every design with all its rules."""
    b = X.Bounds(ops=2, cpus=2, skbs=2, frags=2)
    for policy in POLICIES:
        for kinds in ((X.USER, X.PIPE), (X.POOL, X.DEVMEM), (X.KMALLOC,)):
            r = E.invariant_breaks(b, _sc(kinds, policy))
            assert r["broken"] == 0, (policy, kinds, r)
    assert E.invariant_breaks(b, _sc((X.DEVMEM,), "page_ref", devmem_tx="socket"))["broken"] == 0


@pytest.mark.parametrize("rule", sorted(X.RULES))
def test_each_rule_left_out_breaks_the_invariant_and_fails(rule):
    sc = _sc((X.USER, X.PIPE), rules=X.ALL_RULES & ~X.RULES[rule])
    res = E.explore(MUTANT_BOUNDS, sc)
    name, steps = res.shortest()
    assert (name, len(steps)) == MUTANTS[rule]
    rows = _rows(MUTANT_BOUNDS, sc, [lab for lab, _ in steps])
    assert rows[-1]["verdict"].startswith(name.split("_")[0].replace("use", "use-after-free")[:3])
    broken = E.invariant_breaks(MUTANT_BOUNDS, sc)
    assert broken["broken"] > 0 and broken["first_depth"] <= 4, broken


def test_the_rule_mutants_table_and_the_invariant_rules():
    rows = E.rule_mutants(MUTANT_BOUNDS)
    assert rows[0]["verdict"] == "passes"
    assert {r["rule left out"]: (r["violation"], r["steps"]) for r in rows[1:]} == MUTANTS
    assert set(X.INVARIANT_RULES) == {r["rule left out"] for r in rows[1:] if r["invariant"]}


def test_the_clone_mutant_leaves_out_the_dataref_and_adds_nothing():
    """The old clone mutant made every skb's free drop the owner refs (a bug added); leaving the rule out means the
    clone takes no dataref: its counterexample is attach, clone, free, the shared info released under the clone."""
    sc = _sc((X.USER, X.PIPE), rules=X.ALL_RULES & ~X.R_CLONE)
    name, steps = E.explore(MUTANT_BOUNDS, sc).shortest()
    assert [lab[0] for lab, _s in steps] == [X.ATTACH_NEW, X.CLONE, X.FREE]
    rows = _rows(MUTANT_BOUNDS, sc, [lab for lab, _s in steps])
    assert rows[-1]["verdict"] == "use-after-free: the shared info is released while a clone still points at it"
    assert rows[1]["refcounts after"] == rows[0]["refcounts after"]  # the clone takes nothing
    full, mut = X.Explorer(MUTANT_BOUNDS, _sc((X.USER, X.PIPE))), X.Explorer(MUTANT_BOUNDS, sc)
    v = full.encode(full.start())
    v = full.steps(v, X.ATTACH_NEW)[0][1]
    a, b2 = full.decode(full.steps(v, X.CLONE)[0][1]), mut.decode(mut.steps(v, X.CLONE)[0][1])
    assert b2.shs[0].lost == 1 and (a.bufs, a.ops) == (b2.bufs, b2.ops)  # the only difference: no dataref


# ---- 4. the owner array ----------------------------------------------------------------------------------------
def _shinfo() -> dict:
    return json.loads((ROOT / "data/probes/btf.json").read_text())["structs"]["skb_shared_info"]


def test_owner_array_bytes_from_the_recorded_btf():
    sh = _shinfo()
    assert sh["size"] == 320 and sh["members"]["frags"]["nelems"] == 17
    n = X.owner_array_fit(sh, "packed")
    row = X.owner_array_bytes(sh, n, "packed")
    assert (n, row["index_bits"], row["index_bytes"], row["slot_pointer_bytes"]) == (8, 3, 7, 56)
    assert (row["shinfo_lines"], row["new_shinfo_lines"], row["added_alloc_bytes"]) == (5, 6, 64)
    assert X.owner_array_fit(sh, "byte") == 6 and X.owner_array_fit(sh, "frag") == 9
    assert X.owner_array_bytes(sh, 1)["added_alloc_bytes"] == 0  # one slot is today's destructor_arg
    with pytest.raises(ValueError, match="index = 'nibble' is not allowed"):
        X.owner_array_bytes(sh, 2, "nibble")


def test_owner_array_costs_follow_the_explorers_rule():
    """Cross-check on a small skb: the explorer's own refcounts after attaching two frags of one owner."""
    ops = {r["operation"]: (r["today"], r["owner array"]) for r in X.owner_array_costs(2, 1)}
    b = X.Bounds(ops=2, cpus=1, skbs=1, frags=2)
    today = _rows(b, _sc((X.PIPE,), "page_ref"), [(X.ATTACH_NEW, 0, 0, 0), (X.ATTACH, 0, 0, 3)])
    owner = _rows(b, _sc((X.PIPE,)), [(X.ATTACH_NEW, 0, 0, 0), (X.ATTACH, 0, 0, 3)])
    assert today[-1]["refcounts after"] == "page A0 2, page A1 2" and owner[-1]["refcounts after"] == "owner A 2"
    assert ops["attach"] == (2, 1) and ops["free"] == (2, 1)
    big = {r["operation"]: (r["today"], r["owner array"]) for r in X.owner_array_costs(17, 17)}
    assert big["attach"] == (17, 17)  # one owner per frag: no saving
    one = {r["operation"]: (r["today"], r["owner array"]) for r in X.owner_array_costs(17, 1)}
    assert one["attach"] == (17, 1) and one["segment"][1] < one["segment"][0] and one["coalesce"] == (0, 1)


def test_an_owner_array_of_one_slot_takes_its_fallback_and_stays_safe():
    """Bounds that exceed the array (three owners, two frags, one slot): the search reaches the fallback, both
    fallbacks pass."""
    ok, rows = E.owner_array_safe(SMALL, (X.USER, X.PIPE), slots=1)
    assert ok, rows
    assert rows["copy"]["states"] > rows["refuse"]["states"]  # the copies reach states the refusals do not
    b = X.Bounds(ops=2, cpus=1, skbs=1, frags=2)
    ex = X.Explorer(b, _sc((X.USER, X.PIPE), slots=1))
    v = ex.encode(ex.start())
    v = next(s for lab, s, _b in ex.steps(v, X.ATTACH_NEW) if lab == (X.ATTACH_NEW, 0, 0, 0))
    attach, n = E.steps(b, _sc((X.USER, X.PIPE), slots=1), v, X.ATTACH, fallbacks=True)
    assert {lab[2] for lab, _s, _b in attach} == {0} and n == 3  # B refused in its three shapes; A fits
    copied = E.steps(b, _sc((X.USER, X.PIPE), slots=1, fallback="copy"), v, X.ATTACH)
    assert [lab for lab, _s, _b in copied if lab[3] & X.COPIED] == [(X.ATTACH, 0, 1, shape | X.COPIED)
                                                                    for shape in (0, X.SPAN_SHAPE, 3)]
    rows = _rows(b, _sc((X.USER, X.PIPE), slots=1, fallback="copy"), [(X.ATTACH_NEW, 0, 0, 0), (X.ATTACH, 0, 1, X.COPIED)],
                 finish=True)
    assert "the owner array is full" in rows[1]["operation"] and not any(r["verdict"] for r in rows)


# ---- 5. devmem TX: upstream's rule and the prototype's ----------------------------------------------------------
def test_devmem_tx_rules():
    rows = {r["devmem_tx"]: r for r in E.devmem_tx_verdicts(SMALL)}
    assert rows["frag"]["verdict"] == "passes" and rows["socket"]["verdict"] == "passes"
    bad = rows["socket+orphan"]
    assert (bad["violation"], bad["steps"]) == ("use_after_free", 7) and X.ORPHAN in [lab[0] for lab in bad["labels"]]
    proto = _rows(ONE, _sc((X.DEVMEM,), "page_ref", devmem_tx="socket"), [(X.ATTACH_NEW, 0, 0, 0)])
    upstream = _rows(ONE, _sc((X.DEVMEM,), "page_ref"), [(X.ATTACH_NEW, 0, 0, 0)])
    assert upstream[0]["refcounts after"] == "binding A 3, ubuf_info A 2"  # the frag's own ref and the sendmsg's
    assert proto[0]["refcounts after"] == "binding A 3, ubuf_info A 2"  # the skb's socket ref and the sendmsg's
    clone = {tx: _rows(ONE.__class__(ops=2, cpus=1, skbs=2, frags=1), _sc((X.DEVMEM,), "page_ref", devmem_tx=tx),
                       [(X.ATTACH_NEW, 0, 0, 0), "put", (X.SEGMENT, 0, 0, 0)])[-1]["refcounts after"]
             for tx in ("frag", "socket")}
    assert clone == {"frag": "binding A 3, ubuf_info A 3", "socket": "binding A 3, ubuf_info A 3"}
