"""What machine is this? Kernel, privileges and which kernel interfaces are readable.

Used by the overview chapter and as the provenance of every probe result.
"""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from pathlib import Path

INTERFACES = {
    "btf": "/sys/kernel/btf/vmlinux",
    "kpageflags": "/proc/kpageflags",
    "kpagecount": "/proc/kpagecount",
    "pagemap": "/proc/self/pagemap",
    "vmstat": "/proc/vmstat",
    "stat_refresh": "/proc/sys/vm/stat_refresh",
    "io_uring": "/proc/sys/kernel/io_uring_disabled",
}


def processes(asked: int | None, tasks: int) -> int:
    """How many processes run ``tasks`` tasks at once: ``asked``, else one per core up to two (chapters and
    compiles each take a core; more would share them), never more than the tasks nor fewer than one."""
    return max(1, min(asked or min(2, os.cpu_count() or 1), tasks or 1))


def _readable(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            f.read(1)
        return True
    except OSError:
        return False


def _first_line(path: str) -> str | None:
    try:
        return Path(path).read_text().splitlines()[0].strip()
    except (OSError, IndexError):
        return None


def _meminfo_total_kib() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _vmstat_has(*names: str) -> bool:
    try:
        keys = {line.split()[0] for line in Path("/proc/vmstat").read_text().splitlines()}
    except OSError:
        return False
    return all(n in keys for n in names)


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def summary() -> dict:
    """A JSON-safe description of this machine as the book sees it."""
    is_root = os.geteuid() == 0
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "mem_total_kib": _meminfo_total_kib(),
        "root": is_root,
        "readable": {name: _readable(path) for name, path in INTERFACES.items()},
        "foll_pin_counters": _vmstat_has("nr_foll_pin_acquired", "nr_foll_pin_released"),
        "thp": _first_line("/sys/kernel/mm/transparent_hugepage/enabled"),
        "max_skb_frags": _first_line("/proc/sys/net/core/max_skb_frags"),
        "page_size": os.sysconf("SC_PAGE_SIZE"),
        "python": platform.python_version(),
    }


def summary_table(info: dict | None = None):
    """The summary as a two-column table for a chapter."""
    import pandas as pd

    info = info or summary()
    rows = []
    for key, value in info.items():
        if isinstance(value, dict):
            for k, v in value.items():
                rows.append((f"{key}: {k}", v))
        else:
            rows.append((key, value))
    return pd.DataFrame(rows, columns=["item", "value"]).set_index("item")
