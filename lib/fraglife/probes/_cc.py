"""C programs that probes compile at probe time with the system's compiler.

A probe whose inner loop must be plain machine code (no interpreter, no JIT
between the loads it times) ships a C file beside its module and builds it
here, once per source, flags and compiler, into ``build/probes/`` (a private
temporary directory when that is not writable, e.g. user nobody running from
root's checkout). No compiler means no live result: :class:`ProbeUnavailable`.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..paths import build_dir
from ._base import ProbeUnavailable

_built: dict[str, str] = {}


def find_compiler() -> str | None:
    """The system's C compiler: cc, else gcc, else clang, from PATH."""
    return shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


def compiler_version(cc: str) -> str:
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return "?"
    return (out.splitlines() or ["?"])[0]


def build(source: Path, name: str, cflags: tuple[str, ...]) -> tuple[str, str]:
    """Compile ``source`` (once per source, flags and compiler); (executable, compiler line)."""
    cc = find_compiler()
    if cc is None:
        raise ProbeUnavailable(f"no C compiler (cc, gcc or clang) on PATH to build the {name} probe")
    version = compiler_version(cc)
    src = Path(source).read_bytes()
    tag = hashlib.sha256(src + " ".join((cc, *cflags, version)).encode()).hexdigest()[:12]
    desc = f"{Path(cc).name} {' '.join(cflags)} ({version})"
    if tag in _built and os.access(_built[tag], os.X_OK):
        return _built[tag], desc
    try:
        where = build_dir("probes")
    except OSError:
        where = None
    if where is None or not (os.access(where / f"{name}-{tag}", os.X_OK) or os.access(where, os.W_OK)):
        where = Path(tempfile.mkdtemp(prefix=f"fraglife-{name}-"))
        atexit.register(shutil.rmtree, where, True)
    exe = where / f"{name}-{tag}"
    if not os.access(exe, os.X_OK):
        tmp = where / f".{name}-{tag}.{os.getpid()}"
        proc = subprocess.run([cc, *cflags, "-o", str(tmp), str(source)], capture_output=True, text=True,
                              timeout=120)
        if proc.returncode != 0:
            raise ProbeUnavailable(f"{cc} failed to build {Path(source).name}: {proc.stderr.strip()[:400]}")
        os.replace(tmp, exe)
    _built[tag] = str(exe)
    return str(exe), desc
