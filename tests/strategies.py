"""Hypothesis strategies for fragment-lifetime traces.

``raw_traces`` draws events from small id pools, so most of them act on live
state and some do not; the engine and its twin must agree on both.
``workload_traces`` draws parameters for the real generators.
"""

from hypothesis import HealthCheck, Phase, find, settings
from hypothesis import strategies as st

from fraglife.model import trace as T
from fraglife.model import workloads

PAGE = T.PAGE_SIZE


def _row(op, kind=0, cpu=0, skb=-1, other=-1, buf=-1, pfn=-1, off=0, length=0):
    return (op, kind, cpu, skb, other, buf, pfn, off, length)


@st.composite
def event(draw, op=None):
    """One event, of op code ``op`` or any."""
    op = draw(st.integers(0, T.N_OPS - 1)) if op is None else op
    cpu = draw(st.integers(0, 3))
    skb = draw(st.integers(-1, 6))
    other = draw(st.integers(-1, 6))
    buf = draw(st.integers(0, 3))
    uarg = draw(st.integers(-1, 2))
    if op == T.ALLOC:
        pages = draw(st.integers(1, 8))
        fp = draw(st.sampled_from([1, 2, 4, 8]))
        pfn = draw(st.sampled_from([0, 8, 16, 24])) + draw(st.integers(0, 1))
        return _row(op, draw(st.integers(0, T.N_KINDS - 1)), cpu, buf=buf, pfn=pfn, off=fp, length=pages)
    if op == T.ATTACH:
        # mostly inside buffer ``buf`` (the prefix puts buffer b at page 8*b), sometimes anywhere
        pfn = draw(st.one_of(st.integers(0, 2).map(lambda d: 8 * buf + d), st.integers(0, 26)))
        off = draw(st.integers(0, 3 * PAGE))
        ln = draw(st.integers(1, 4 * PAGE))
        return _row(op, cpu=cpu, skb=skb, other=uarg, buf=buf, pfn=pfn, off=off, length=ln)
    if op == T.GROW:
        return _row(op, cpu=cpu, skb=skb, other=uarg, buf=buf, length=draw(st.integers(1, 2 * PAGE)))
    if op in (T.SPLIT, T.PULL):
        return _row(op, cpu=cpu, skb=skb, other=other, length=draw(st.integers(1, 6 * PAGE)))
    if op == T.SEGMENT:
        return _row(op, cpu=cpu, skb=skb, other=other, off=draw(st.integers(0, 4 * PAGE)),
                    length=draw(st.integers(1, 4 * PAGE)))
    if op == T.ZC_COMPLETE:
        return _row(op, cpu=cpu, other=uarg)
    if op in (T.UARG_GET, T.UARG_PUT):  # UARG_ACCOUNT / UARG_DEVMEM (buf: the dma-buf), and a bad flag
        return _row(op, draw(st.sampled_from([0, 0, T.UARG_ACCOUNT, T.UARG_DEVMEM, T.UARG_FLAGS, 8])), cpu,
                    other=uarg, buf=draw(st.integers(-1, 4)))
    if op == T.BUF_RELEASE:  # len > 0: users freeing page_frag fragments, or a pipe's buffers of [pfn, pfn + len)
        return _row(op, cpu=cpu, buf=buf, pfn=draw(st.integers(0, 2)) + 8 * buf,
                    length=draw(st.sampled_from([0, 0, 1, 2, 3])))
    if op == T.FREE:  # deferred frees of received skbs (T.FREE_*), some inconsistent
        flags = draw(st.sampled_from([0, 0, 0, T.FREE_DEFERRED, T.FREE_DEFERRED | T.FREE_FLUSH, T.FREE_FULL,
                                      T.FREE_FLUSH, T.FREE_FULL | T.FREE_DEFERRED, 8]))
        return _row(op, flags, cpu, skb=skb, other=draw(st.integers(-1, 4)), length=draw(st.integers(0, 3)))
    return _row(op, cpu=cpu, skb=skb, other=other, buf=buf)


@st.composite
def raw_traces(draw, max_events=120, attaches=0):
    """A prefix that allocates buffers (of any kind), opens notifications and skbs, then arbitrary events.
    ``attaches``: up to that many frags are first added inside the buffers (most of them valid), so later
    events find skbs with frags."""
    rows = []
    pages_of = []
    for b in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, T.N_KINDS - 1))
        fp = draw(st.sampled_from([1, 2, 4, 8]))
        pages = fp if kind in (*T.POOL_KINDS, T.MEM_PAGE_FRAG) else draw(st.integers(1, 8))
        rows.append(_row(T.ALLOC, kind, 0, buf=b, pfn=8 * b, off=fp, length=pages))
        pages_of.append(pages)
    n_uarg = draw(st.integers(0, 3))
    for u in range(n_uarg):
        rows.append(_row(T.UARG_GET, draw(st.sampled_from([0, T.UARG_ACCOUNT])), draw(st.integers(0, 3)), other=u))
    n_skb = draw(st.integers(1, 4))
    for s in range(n_skb):
        rows.append(_row(T.SKB_ALLOC, cpu=draw(st.integers(0, 3)), skb=s))
    for _ in range(draw(st.integers(0, attaches)) if attaches else 0):
        b = draw(st.integers(0, len(pages_of) - 1))
        q = draw(st.integers(0, pages_of[b] - 1))
        off = draw(st.integers(0, PAGE - 1))
        ln = draw(st.integers(1, (pages_of[b] - q) * PAGE - off))
        rows.append(_row(T.ATTACH, cpu=draw(st.integers(0, 3)), skb=draw(st.integers(0, n_skb - 1)),
                         other=draw(st.integers(-1, n_uarg - 1)), buf=b, pfn=8 * b + q, off=off, length=ln))
    rows += draw(st.lists(event(), max_size=max_events))
    return T.TraceBuilder.from_rows(rows)


workload_params = st.fixed_dictionaries(
    {
        "bytes_sent": st.integers(64 * 1024, 1 << 20),
        "mss": st.sampled_from([536, 1448, 4096, 9000]),
        "send_size": st.sampled_from([64, 1000, 4096, 10000, 65536, 262144]),
        "frag_size": st.sampled_from([512, 1500, 4096, 16384, 65536, 262144]),
        "loss_rate": st.sampled_from([0.0, 0.01, 0.05, 0.2]),
        "loss_burst": st.sampled_from([1.0, 2.5, 8.0]),
        "cpus": st.integers(1, 4),
        "seed": st.integers(0, 1000),
        "folio_pages": st.sampled_from([1, 2, 4, 16, 512]),
        "inflight": st.integers(1, 6),
        "txc_lag": st.integers(0, 8),
        "rx_buf": st.sampled_from([1024, 2048, 4096]),
        "tail_unsent": st.sampled_from([0.0, 0.3, 0.9, 1.0]),
        "locked_vm_accounting": st.booleans(),
        "skb_defer_max": st.sampled_from([0, 1, 2, 4, 64]),
        "kernel": st.sampled_from(["6.12", "6.18"]),
    }
)


def fit(name: str, params: dict) -> dict:
    """``params`` for workload ``name``: a devmem sender needs a kernel with devmem TX (6.16+)."""
    return dict(params, kernel="6.18") if name == "devmem_send" else params


@st.composite
def workload_traces(draw):
    name = draw(st.sampled_from(sorted(workloads.ALL)))
    params = fit(name, draw(workload_params))
    return name, params, workloads.generate(name, **params)


def reach(strategy, predicate, max_examples: int = 2000):
    """An example of ``strategy`` that satisfies ``predicate``, the first one drawn: the tests that call this ask
    whether a rule can be reached, not for its smallest example, so nothing is shrunk (shrinking took most of their
    time). Derandomized: the same draws every run, so a loaded machine cannot make a search miss. Raises
    hypothesis.errors.NoSuchExample if none of ``max_examples`` does."""
    return find(strategy, predicate, settings=settings(max_examples=max_examples, database=None, derandomize=True,
                                                       phases=(Phase.generate,),
                                                       suppress_health_check=list(HealthCheck)))
