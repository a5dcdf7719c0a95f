"""The lifetime model: traces, policies, the replay engine and its twin.

    trace = workloads.generate("tcp_send", bytes_sent=1 << 24, loss_rate=0.01)
    ledger = engine.replay(trace, "page_ref")
"""

from . import engine, policies, reference, trace, workloads
from .engine import replay
from .ledger import Ledger
from .policies import POLICIES, Policy

__all__ = ["engine", "policies", "reference", "trace", "workloads", "replay", "Ledger", "POLICIES", "Policy"]
