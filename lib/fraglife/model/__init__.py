"""The lifetime model: traces, policies, the replay engine and its twin.

    trace = workloads.generate("tcp_send", bytes_sent=1 << 24, loss_rate=0.01)
    ledger = engine.replay(trace, "page_ref")

Twins side by side: one naming rule for every compiled model X.

- ``X.py`` is the compiled code (numba) and the module the rest of the package
  imports; ``X_twin.py`` beside it is the plain-Python specification, written
  to be read against the kernel. A differential test (hypothesis) holds them
  equal.
- Definitions both share (config dataclasses, constants, tables, registries
  such as ``workloads.WORKLOADS``) live in the twin, the specification, and
  ``X.py`` re-exports them by name, so ``X.Config`` and ``X.WORKLOADS`` work.
  The twin imports nothing from ``X.py``.
- The compiled code is split into handlers that carry the twin's names: a
  twin function ``X_twin.f`` is compiled as ``X.f`` (``pins_twin.sender`` and
  ``pins.sender``), and a twin method per event or kernel operation has a
  compiled function of the same name (``engine_twin.Replay.clone`` and
  ``engine.clone``), so the two read side by side.
- No module uses another module's underscore names: what one module needs of
  another is public.

The twinned models: ``engine`` (the replay), ``workloads`` (the generators),
``memdesc``, ``pins``, ``pagetable``, ``pipe``, ``bvec`` and ``explorer``.
``trace``, ``ledger``, ``policies``, ``costs``, ``rng``, ``copypath`` and ``creplay`` are
plain Python (or C) with no twin.
"""

from . import engine, engine_twin, policies, trace, workloads
from .engine import replay
from .ledger import Ledger
from .policies import POLICIES, Policy

__all__ = ["engine", "engine_twin", "policies", "trace", "workloads", "replay", "Ledger", "POLICIES", "Policy"]
