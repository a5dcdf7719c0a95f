"""Each compiled event handler against its twin method: from the same state, one event of each op gives the
same state and ledger (engine.<op> and engine_twin.Replay.<op>, the same name)."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraglife.model import engine, engine_twin, trace as T
from fraglife.model.policies import POLICIES

from strategies import event, raw_traces, reach

MAX_FRAGS = 4  # small, so the frag limit is reached


@st.composite
def cases(draw, op: int):
    """(policy, a state as the trace that makes it, one event of ``op``). The event is drawn as the raw
    strategy draws it; mostly its skbs are then made live (or free, for a new skb) and its lengths fit, so
    that most events are valid and some are not."""
    policy = draw(st.sampled_from(sorted(POLICIES)))
    prefix = draw(raw_traces(max_events=40, attaches=8))
    ev = list(draw(event(op=op)))
    if draw(st.integers(0, 4)):
        twin = engine_twin.Replay(POLICIES[policy], max_frags=MAX_FRAGS, n_pfn=64, n_buf=8, n_uarg=4)
        twin.run(prefix)
        live = sorted(twin.skbs)
        free = [i for i in range(8) if i not in twin.skbs]
        pick = lambda ids, old: draw(st.sampled_from(ids)) if ids else old  # noqa: E731
        skb, other = T.EVENT.names.index("skb"), T.EVENT.names.index("other")
        length, off = T.EVENT.names.index("len"), T.EVENT.names.index("off")
        new_skb = op in (T.SKB_ALLOC, T.CLONE, T.SEGMENT)
        ev[skb] = pick(free if new_skb else live, ev[skb])
        if op in (T.CLONE, T.SEGMENT, T.COALESCE):
            ev[other] = pick(live, ev[other])
        elif op == T.SPLIT:
            ev[other] = pick(free, ev[other])
        if op in (T.SPLIT, T.PULL, T.SEGMENT) and ev[other if op == T.SEGMENT else skb] in twin.skbs:
            total = twin.total(twin.skbs[ev[other if op == T.SEGMENT else skb]].shinfo)
            if total > 1:
                ev[length] = draw(st.integers(1, total - (op == T.SPLIT)))
                if op == T.SEGMENT:
                    ev[off] = draw(st.integers(0, total - ev[length]))
        if op == T.GROW and ev[skb] in twin.skbs and twin.skbs[ev[skb]].shinfo.frags:
            last = twin.skbs[ev[skb]].shinfo.frags[-1]
            ev[T.EVENT.names.index("buf")], ev[other] = last.buf, last.uarg
    return policy, prefix, tuple(ev)


def _states(policy, prefix, ev):
    """The compiled and twin states after ``prefix``, sized for ``prefix`` and ``ev``."""
    whole = T.TraceBuilder.from_rows([tuple(int(x) for x in r) for r in prefix.tolist()] + [ev])
    S = engine.new_state(whole, policy, max_frags=MAX_FRAGS)
    engine.replay_into(S, prefix)
    twin = engine_twin.Replay(POLICIES[policy], max_frags=MAX_FRAGS, **T.sizes(whole))
    twin.run(prefix)
    return S, twin


@pytest.mark.parametrize("op", T.OP_NAMES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_handler_is_its_twin_method(op, data):
    policy, prefix, ev = data.draw(cases(T.OP_CODE[op]))
    S, twin = _states(policy, prefix, ev)
    assert engine.snapshot(S) == twin.snapshot()  # the same state to start from
    assert engine.step(S, *ev) == twin.step(*ev), (op, policy)
    assert engine.snapshot(S) == twin.snapshot(), (op, policy)


@pytest.mark.parametrize("op", T.OP_NAMES)
def test_each_op_is_exercised_valid(op):
    """For every op the cases above reach a valid event (so the comparison covers a handler's work)."""

    def valid(case):
        policy, prefix, ev = case
        twin = engine_twin.Replay(POLICIES[policy], max_frags=MAX_FRAGS,
                                  **T.sizes(T.TraceBuilder.from_rows([tuple(int(x) for x in r)
                                                                      for r in prefix.tolist()] + [ev])))
        twin.run(prefix)
        return twin.step(*ev)

    reach(cases(T.OP_CODE[op]), valid)


def test_handlers_carry_the_twin_method_names():
    assert tuple(h.py_func.__name__ for h in engine.HANDLERS) == T.OP_NAMES
    for name in T.OP_NAMES:
        assert callable(getattr(engine_twin.Replay, name)), name
