"""What a probe leaves on the machine if it dies mid-run, and the sweep that removes it.

A probe cleans up after itself in ``finally`` blocks, but a SIGKILLed process
runs none. So every probe that changes something outside its own process first
writes it down in a ledger, one JSON file per owning process under
:data:`STATE_DIR` (``PID-STARTTIME.json``): a global knob with the value to put
back, a file to remove. :func:`sweep`, which :func:`fraglife.probes._core.measure_live`
runs before every live probe, finds the ledgers whose owner is gone (no
process with that PID and start time) and undoes what they list. Network
namespaces need no ledger: :func:`fraglife.probes._net.veth_pair` names them
``PREFIX-PID-TAG[-tx|-rx]``, so the sweep deletes those whose PID is gone (with
them go their veth devices, qdiscs and XDP programs). Temporary files the older
probes make (:data:`OPEN_WHILE_USED`) are held open while in use, so one that no
process has open is left over too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

from ..paths import write_json

#: Where ledgers live: /run (tmpfs, emptied at boot, like the knobs it restores) when writable.
STATE_DIR = Path("/run/fraglife-probes") if os.access("/run", os.W_OK) else \
    Path(tempfile.gettempdir()) / "fraglife-probes-state"
NETNS_DIR = Path("/run/netns")
_NETNS = re.compile(r"^fraglife-[a-z0-9-]*?-(\d+)-[0-9a-f]{6}(?:-tx|-rx)?$")


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22), None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


def _alive(pid: int, start: str | None = None) -> bool:
    now = _start_time(pid)
    return now is not None and (start is None or now == start)


def _ledger_path() -> Path:
    pid = os.getpid()
    return STATE_DIR / f"{pid}-{_start_time(pid)}.json"


def _read(path: Path) -> dict:
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def _write(path: Path, d: dict) -> None:
    if not d.get("knobs") and not d.get("files"):
        with contextlib.suppress(OSError):
            path.unlink()
        return
    write_json(path, d, indent=None, sync=True)


def _update(fn) -> None:
    path = _ledger_path()
    d = _read(path) or {"pid": os.getpid(), "start": _start_time(os.getpid()), "knobs": {}, "files": []}
    fn(d)
    _write(path, d)


def note_file(path: str | os.PathLike) -> None:
    """Write down a file this process is about to create (removed by the sweep if the process dies)."""
    p = str(path)
    _update(lambda d: d["files"].append(p) if p not in d["files"] else None)


def forget_file(path: str | os.PathLike) -> None:
    p = str(path)
    _update(lambda d: d["files"].remove(p) if p in d["files"] else None)


@contextlib.contextmanager
def temp_file(directory: str | os.PathLike, prefix: str):
    """A new empty file in ``directory`` (``PREFIX-PID-XXXX``), open for reading and writing: yields
    (fd, path); closed and removed on exit, and by the sweep if the process dies first."""
    import secrets

    path = os.path.join(directory, f"{prefix}-{os.getpid()}-{secrets.token_hex(4)}")
    note_file(path)  # written down before it exists: a kill in between leaves nothing unlisted
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except BaseException:
        forget_file(path)
        raise
    try:
        yield fd, path
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        forget_file(path)


def knob_value(path: str | os.PathLike) -> str:
    """A sysfs knob's value: the bracketed choice of "always [madvise] never", else the text."""
    text = Path(path).read_text().strip()
    if "[" in text and "]" in text:
        return text[text.index("[") + 1: text.index("]")]
    return text


@contextlib.contextmanager
def knob(path: str | os.PathLike, value: str):
    """Set a global sysctl/sysfs knob to ``value`` for the duration; the original is written down
    first (the sweep restores it if the process dies) and written back on exit. Yields the original.
    A knob that already reads ``value`` is left alone."""
    p = str(path)
    original = knob_value(p)
    if original == str(value):
        yield original
        return
    _update(lambda d: d["knobs"].setdefault(p, original))
    try:
        Path(p).write_text(str(value))
        yield original
    finally:
        Path(p).write_text(original)
        _update(lambda d: d["knobs"].pop(p, None))


#: Temporary files other probes make with these prefixes (tempfile.mkstemp) and keep open while they
#: run: one that no process has open, and that is not brand new, is left over.
OPEN_WHILE_USED = ("fraglife-kc-", "fraglife-pagemap-", "fraglife-pins-")
UNOWNED_AGE_S = 10.0


def _open_files() -> set[str]:
    out = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                out.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
    return out


def unowned_files(dirs=None) -> list[str]:
    """Files of :data:`OPEN_WHILE_USED` in the temporary directories that no process has open (root
    only: another user's open files cannot be seen)."""
    if os.geteuid() != 0:
        return []
    import time

    dirs = dirs or dict.fromkeys([tempfile.gettempdir(), "/var/tmp"])
    found = []
    for d in dirs:
        with contextlib.suppress(OSError):
            for name in os.listdir(d):
                path = os.path.join(d, name)
                if name.startswith(OPEN_WHILE_USED) and os.path.isfile(path):
                    with contextlib.suppress(OSError):
                        if time.time() - os.stat(path).st_mtime > UNOWNED_AGE_S:
                            found.append(path)
    if not found:
        return []
    opened = _open_files()
    return sorted(p for p in found if p not in opened)


def leftover_netns() -> list[str]:
    """Probe namespaces (``fraglife-...-PID-TAG``) whose creating process is gone."""
    try:
        names = os.listdir(NETNS_DIR)
    except OSError:
        return []
    return sorted(n for n in names if (m := _NETNS.match(n)) and not _alive(int(m.group(1))))


def orphans() -> dict:
    """What dead probe processes left: ``{"ledgers": [...], "knobs": {path: original}, "files": [...],
    "netns": [...]}``."""
    out = {"ledgers": [], "knobs": {}, "files": unowned_files(), "netns": leftover_netns()}
    try:
        paths = sorted(STATE_DIR.glob("*.json"))
    except OSError:
        paths = []
    for path in paths:
        d = _read(path)
        if _alive(int(d.get("pid") or 0), d.get("start")):
            continue
        out["ledgers"].append(str(path))
        out["knobs"].update(d.get("knobs") or {})
        out["files"] += [f for f in d.get("files") or [] if os.path.exists(f)]
    return out


def orphans_of(pid: int) -> dict:
    """What process ``pid`` has written down: ``{"ledger": path or None, "knobs", "files"}``."""
    for path in sorted(STATE_DIR.glob(f"{pid}-*.json")) if STATE_DIR.is_dir() else []:
        d = _read(path)
        return {"ledger": str(path), "knobs": d.get("knobs") or {}, "files": list(d.get("files") or [])}
    return {"ledger": None, "knobs": {}, "files": []}


def sweep() -> dict:
    """Undo what dead probe processes left behind; returns what was found (see :func:`orphans`) and
    ``errors``. Never raises."""
    found = orphans()
    errors = []
    for path, original in found["knobs"].items():
        try:
            Path(path).write_text(original)
        except OSError as e:
            errors.append(f"{path}: {e.strerror}")
    for f in found["files"]:
        try:
            os.unlink(f)
        except OSError as e:
            errors.append(f"{f}: {e.strerror}")
    for ns in found["netns"]:
        try:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10, check=True)
        except (OSError, subprocess.SubprocessError) as e:
            errors.append(f"netns {ns}: {e}")
    for ledger in found["ledgers"]:
        with contextlib.suppress(OSError):
            os.unlink(ledger)
    found["errors"] = errors
    return found
