"""Hypothesis strategies for fragment-lifetime traces.

``raw_traces`` draws events from small id pools, so most of them act on live
state and some do not; the engine and its twin must agree on both.
``workload_traces`` draws parameters for the real generators.
"""

from hypothesis import strategies as st

from fraglife.model import trace as T
from fraglife.model import workloads

PAGE = T.PAGE_SIZE


@st.composite
def event(draw):
    op = draw(st.integers(0, T.N_OPS - 1))
    cpu = draw(st.integers(0, 3))
    skb = draw(st.integers(-1, 6))
    other = draw(st.integers(-1, 6))
    buf = draw(st.integers(0, 3))
    if op == T.ALLOC:
        pages = draw(st.integers(1, 8))
        fp = draw(st.sampled_from([1, 2, 4, 8]))
        pfn = draw(st.sampled_from([0, 8, 16, 24])) + draw(st.integers(0, 1))
        return (op, cpu, -1, draw(st.integers(-1, 2)), buf, pfn, fp, pages)
    if op == T.ATTACH:
        # mostly inside buffer ``buf`` (the prefix puts buffer b at page 8*b), sometimes anywhere
        pfn = draw(st.one_of(st.integers(0, 2).map(lambda d: 8 * buf + d), st.integers(0, 26)))
        off = draw(st.integers(0, 3 * PAGE))
        ln = draw(st.integers(1, 4 * PAGE))
        return (op, cpu, skb, -1, buf, pfn, off, ln)
    if op in (T.SPLIT, T.PULL):
        return (op, cpu, skb, other, -1, -1, 0, draw(st.integers(1, 6 * PAGE)))
    if op == T.SEGMENT:
        return (op, cpu, skb, other, -1, -1, draw(st.integers(0, 4 * PAGE)), draw(st.integers(1, 4 * PAGE)))
    if op == T.ZC_COMPLETE:
        return (op, cpu, -1, draw(st.integers(-1, 2)), -1, -1, 0, 0)
    return (op, cpu, skb, other, buf, -1, 0, 0)


@st.composite
def raw_traces(draw, max_events=120):
    """A prefix that allocates buffers and skbs, then arbitrary events."""
    rows = []
    for b in range(draw(st.integers(1, 4))):
        pages = draw(st.integers(1, 8))
        rows.append((T.ALLOC, 0, -1, draw(st.integers(-1, 2)), b, 8 * b, draw(st.sampled_from([1, 2, 4, 8])), pages))
    for s in range(draw(st.integers(1, 4))):
        rows.append((T.SKB_ALLOC, draw(st.integers(0, 3)), s, -1, -1, -1, 0, 0))
    rows += draw(st.lists(event(), max_size=max_events))
    return T.TraceBuilder.from_rows(rows)


workload_params = st.fixed_dictionaries(
    {
        "bytes_sent": st.integers(64 * 1024, 1 << 20),
        "mss": st.sampled_from([536, 1448, 4096, 9000]),
        "frag_size": st.sampled_from([512, 1500, 4096, 16384, 65536, 262144]),
        "loss_rate": st.sampled_from([0.0, 0.01, 0.05, 0.2]),
        "cpus": st.integers(1, 4),
        "seed": st.integers(0, 1000),
        "folio_pages": st.sampled_from([1, 2, 4, 16]),
        "inflight": st.integers(1, 6),
        "txc_lag": st.integers(0, 8),
    }
)


@st.composite
def workload_traces(draw):
    name = draw(st.sampled_from(sorted(workloads.WORKLOADS)))
    params = draw(workload_params)
    return name, params, workloads.generate(name, **params)
