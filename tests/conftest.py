import os

import pytest
from hypothesis import HealthCheck, settings

from fraglife.probes import _core

# Chapters and tests write into a build/ of their own when asked to; default is the repo's build/.
settings.register_profile("default", max_examples=150, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def recorded(monkeypatch):
    """Every probe from its recording, as a reader without root gets it."""
    monkeypatch.setattr(_core, "_cache", {})
    monkeypatch.setenv(_core.ENV, "recorded")
    yield
    _core._cache.clear()
