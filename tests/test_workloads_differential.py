"""The compiled generators against their twins, the Python generators: the same trace, event for event and
field for field, and the same stats, over the parameter space."""

import numpy as np
import pytest
from hypothesis import example, given, settings

from fraglife.model import engine, trace as T, workloads

from strategies import fit, workload_params

MiB = 1 << 20
BASE = {"bytes_sent": 1 * MiB, "mss": 1448, "send_size": 65536, "frag_size": 16384, "loss_rate": 0.01,
        "loss_burst": 1.0, "cpus": 2, "seed": 1, "folio_pages": 1, "inflight": 8, "txc_lag": 1, "rx_buf": 2048}
# the edges of the space, each written out once (strategies.workload_params draws the rest)
EDGES = [
    dict(BASE, mss=9000),
    dict(BASE, send_size=4096),
    dict(BASE, send_size=64),  # the kernel services' small messages
    dict(BASE, send_size=32768 + 1, bytes_sent=3 * MiB),  # a page_frag fragment per cache page, and one more
    dict(BASE, send_size=16 * MiB, bytes_sent=20 * MiB),
    dict(BASE, folio_pages=512),
    dict(BASE, loss_rate=0.2, loss_burst=64.0),
    dict(BASE, txc_lag=0),
    dict(BASE, inflight=1),
    dict(BASE, cpus=1),
    dict(BASE, mss=9000, send_size=4096, folio_pages=512, loss_rate=0.2, loss_burst=64.0, txc_lag=0, inflight=1,
         cpus=1),
    dict(BASE, mss=536, send_size=1000, frag_size=512, loss_rate=0.05, txc_lag=8, inflight=6, cpus=4),
    dict(BASE, bytes_sent=0),
    # a window larger than the transfer (chapter 01's long round trips and completion delays)
    dict(BASE, bytes_sent=160528, mss=6078, send_size=45506, frag_size=258515, loss_rate=0.19, loss_burst=15.5,
         cpus=6, seed=17, folio_pages=512, inflight=19082, txc_lag=1007, rx_buf=23779),
    dict(BASE, bytes_sent=4 * MiB, inflight=3000, txc_lag=500, loss_rate=0.05),
    # the tail rule drawn, not fixed; no locked_vm accounting; the defer list of 6.12 and a full one of 6.18
    dict(BASE, tail_unsent=0.4, send_size=16384, mss=8948, folio_pages=16),
    dict(BASE, tail_unsent=0.0, locked_vm_accounting=False),
    dict(BASE, kernel="6.12", skb_defer_max=2, rx_buf=1024),
    dict(BASE, kernel="6.18", skb_defer_max=1, rx_buf=1024, loss_rate=0.05),
    # a splice call of many sendmsg()s from large folios, and a GUP call capped by the skb's frags
    dict(BASE, send_size=1 << 20, bytes_sent=3 * MiB, folio_pages=256),
    dict(BASE, send_size=4096, folio_pages=1, tail_unsent=1.0, mss=536),
]


def _same(name, params):
    params = fit(name, params)
    twin, twin_stats = workloads.generate_with_stats(name, impl="twin", **params)
    jit, jit_stats = workloads.generate_with_stats(name, impl="jit", **params)
    assert jit.dtype == T.EVENT and len(jit) == len(twin), (name, params)
    if not np.array_equal(jit, twin):
        i = int(np.nonzero(jit != twin)[0][0])
        pytest.fail(f"{name} {params}: event {i} differs: jit {jit[i]} twin {twin[i]}")
    assert jit_stats == twin_stats, (name, params)


def _identity_test(name):
    @settings(max_examples=40, deadline=None)
    @given(params=workload_params)
    def test(params):
        _same(name, params)

    for edge in EDGES:
        test = example(params=edge)(test)
    test.__name__ = f"test_{name}_jit_is_its_twin"
    test.__doc__ = f"{name}: the compiled generator writes its twin's trace and stats."
    return test


for _name in workloads.ALL:
    globals()[f"test_{_name}_jit_is_its_twin"] = _identity_test(_name)


@pytest.mark.parametrize("name", sorted(workloads.ALL))
def test_too_small_capacities_only_cost_reruns(name):
    """Every capacity at its minimum: the kernel asks for more until they suffice, and the trace is the same."""
    c = workloads.Config(**dict(BASE, loss_rate=0.05, folio_pages=4))
    kind, P, F, caps = workloads.kernel_params(name, c)
    E, M, runs = workloads.run(kind, P, F, c.seed, dict.fromkeys(caps, 1), events=1, trace=True)
    assert runs > 2
    twin, stats = workloads.generate_with_stats(name, impl="twin", **BASE | {"loss_rate": 0.05, "folio_pages": 4})
    assert np.array_equal(workloads.to_trace(E, int(M[workloads.M_N])), twin)
    assert {k: int(M[slot]) for k, slot in workloads.STAT_SLOTS.items()} == stats


@pytest.mark.parametrize("name", sorted(workloads.ALL))
def test_columns_and_sizes_are_what_the_engine_reads(name):
    params = dict(BASE, bytes_sent=3 * MiB, loss_rate=0.05)
    cols, stats, sizes = workloads.generate_columns(name, **params)
    tr = workloads.generate(name, impl="twin", **params)
    for field in T.EVENT.names:
        assert cols[field].flags.c_contiguous and np.array_equal(cols[field], tr[field]), field
    expect = T.sizes(tr)
    assert {k: sizes[k] for k in ("n_pfn", "n_buf", "n_uarg", "n_skb")} == {
        k: expect[k] for k in ("n_pfn", "n_buf", "n_uarg", "n_skb")}
    assert sizes["n_pins"] == engine.pin_capacity(tr)
    for policy in ("page_ref", "owner_frag"):
        led, st, n = workloads.generate_and_replay(name, policy, **params)
        assert n == len(tr) and st == stats
        assert led == engine.replay(tr, policy), policy


def test_a_long_transfer_is_sized_from_its_first_bytes():
    """Past the pilot's bytes the event arrays are sized by scaling a count; the trace is still the twin's."""
    params = dict(BASE, bytes_sent=6 * MiB, send_size=4096)
    assert params["bytes_sent"] > 4 * workloads.PILOT_BYTES
    _same("tcp_gso", params)
    _same("rx_gro", params)


def test_bad_impl_is_refused_in_one_line():
    with pytest.raises(ValueError, match=r"impl='fast' is not allowed; allowed: jit, twin"):
        workloads.generate("tcp_send", impl="fast")
