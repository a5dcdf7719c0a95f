"""``fraglife warm`` names functions that exist and compiles what they use into numba's cache."""

import inspect

from fraglife import warm
from fraglife.paths import named


def test_every_job_names_functions_that_take_no_argument():
    targets = [t for job in warm.JOBS for t in job]
    assert len(targets) == len(set(targets))
    for target in targets:
        fn = named(target)
        assert all(p.default is not p.empty for p in inspect.signature(fn).parameters.values()), target


def test_warm_runs_every_job_once(monkeypatch):
    calls = []
    monkeypatch.setattr(warm, "JOBS", (("fraglife.model.engine:warm",), ("fraglife.model.explorer:warm",)))
    monkeypatch.setattr(warm, "run_job", lambda job: calls.append(job) or 1.5)
    monkeypatch.setattr(warm, "ProcessPoolExecutor", _Inline)
    assert warm.warm(jobs=2) == [(job, 1.5) for job in warm.JOBS] and calls == list(warm.JOBS)


def test_a_job_runs_its_functions_and_leaves_the_kernels_cached():
    """From the cache (make test warmed it), the explorer's job loads in seconds and leaves a compiled search."""
    from fraglife.model import explorer

    assert warm.run_job(("fraglife.model.explorer:warm",)) > 0
    assert explorer._search.signatures and explorer._replay.signatures and explorer._orbits.signatures


def test_nothing_is_warmed_where_numba_cannot_cache(monkeypatch):
    monkeypatch.setattr(warm, "CACHE", False)
    assert warm.warm() == []


class _Inline:
    """ProcessPoolExecutor's map, in this process."""

    def __init__(self, max_workers):
        assert max_workers >= 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def map(self, fn, items):
        return map(fn, items)
