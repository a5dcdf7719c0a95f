"""The numba engine against its pure-Python twin: equal ledgers, field by field."""

import pytest
from hypothesis import given, settings

from fraglife.model import engine, engine_twin
from fraglife.model.policies import POLICIES

from strategies import raw_traces, reach, workload_traces

POLICY_NAMES = sorted(POLICIES)


def _same(trace, policy, max_frags=17):
    fast = engine.replay(trace, policy, max_frags=max_frags)
    slow = engine_twin.replay(trace, POLICIES[policy], max_frags=max_frags)
    assert fast.as_dict() == slow.as_dict(), policy
    assert fast.ref_by_op == slow.ref_by_op
    return fast


@pytest.mark.parametrize("policy", POLICY_NAMES)
@given(trace=raw_traces())
def test_raw_traces_agree(policy, trace):
    _same(trace, policy, max_frags=4)


@pytest.mark.parametrize("policy", POLICY_NAMES)
@settings(max_examples=25)
@given(case=workload_traces())
def test_workload_traces_agree(policy, case):
    _name, _params, trace = case
    _same(trace, policy)


def test_raw_traces_exercise_errors_and_frees():
    """The raw strategy reaches both rejected events and real frees (so the test above means something)."""
    reach(raw_traces(), lambda t: engine.replay(t, "page_ref").trace_errors > 0)
    reach(raw_traces(), lambda t: engine.replay(t, "page_ref_all").refs_dropped > 2)


def _partial_pipe_release(trace) -> bool:
    """Whether some pipe memory's buffers are released in part, validly (the twin accepts the event)."""
    from fraglife.model import trace as T

    twin = engine_twin.Replay(POLICIES["page_ref"], **T.sizes(trace))
    for ev in trace:
        ok = twin.step(*(int(ev[k]) for k in T.EVENT.names))
        b = twin.buffers.get(int(ev["buf"]))
        if ok and ev["op"] == T.BUF_RELEASE and ev["len"] > 0 and b is not None and b.kind == T.MEM_PIPE:
            return True
    return False


def test_raw_traces_reach_the_kernels_send_and_receive_rules():
    """The raw strategy makes valid events of each new rule: PG_referenced, locked_vm and devmem binding
    cmpxchg loops, notifications, deferred frees and their flushes, partial pipe releases."""
    for kind in ("flag_atomics", "cmpxchg_atomics", "notif_atomics", "defer_atomics"):
        reach(raw_traces(attaches=8), lambda t, k=kind: getattr(engine.replay(t, "page_ref"), k) > 1, 3000)
    reach(raw_traces(attaches=8), _partial_pipe_release, 3000)


def test_use_after_free_paths_agree():
    """Multi-folio frags under today's policy: both implementations see the same use-after-free."""
    from fraglife.model import workloads

    trace = workloads.generate("physrange_send", bytes_sent=1 << 20, frag_size=65536, folio_pages=1, loss_rate=0.05)
    led = _same(trace, "page_ref")
    assert led.uaf_pages > 0


def test_empty_trace():
    from fraglife.model.trace import empty

    led = _same(empty(), "page_ref")
    assert led.events == 0 and led.clean
