"""Execute chapters headless with papermill into build/executed/.

Source notebooks are read, never written. Each executed copy is the log of
its run. A failure names the chapter, the failing cell and the exception.
One run is one build (:mod:`fraglife.build`): its id reaches every chapter's
kernel in the environment, its unit costs are measured once for all of them,
and every executed copy carries the id. The overview runs last: it shows the
answers the other chapters recorded.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import nbformat

from . import build, paths, system
from .chapters import Chapter, select
from .params import ParamError
from .paths import BOOK, build_dir

KERNEL = "fraglife"
DEFAULT_TIMEOUT = 900  # seconds per cell; papermill's own default is none


@dataclass
class Result:
    chapter: str
    status: str  # "ok" or "failed"
    seconds: float
    output: str
    cell: int | None = None
    exec_count: int | None = None
    error: str | None = None
    message: str | None = None
    source: str | None = None
    build: str | None = None  # the build it ran in

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def describe(self) -> str:
        if self.ok:
            return f"{self.chapter}: ok in {self.seconds:.1f}s -> {self.output}"
        where = f"cell {self.cell}" if self.cell is not None else "setup"
        first = (self.source or "").strip().splitlines()[:1]
        src = f"\n    cell source: {first[0]}" if first else ""
        return f"{self.chapter} failed at {where}: {self.error}: {self.message}{src}\n    executed copy: {self.output}"


def kernel_manager_class():
    """The kernel manager papermill uses: kernel and runner talk over Unix sockets (IPC), not TCP, and a
    finished chapter's kernel is shut down without an interrupt.

    Over TCP without CurveZMQ keys, ipykernel warns on every start that traffic
    is unencrypted, into the terminal of whoever runs ``fraglife run``. IPC
    sockets are files in a private directory (mode 0700, one per kernel, so
    chapters run in parallel never share a socket), removed with the kernel.
    """
    import shutil
    import tempfile

    from jupyter_client import AsyncKernelManager
    from traitlets import Unicode, default

    class IPCKernelManager(AsyncKernelManager):
        transport = Unicode("ipc")

        @default("ip")
        def _private_socket_prefix(self) -> str:
            return os.path.join(tempfile.mkdtemp(prefix="fraglife-kernel-"), "ipc")

        def cleanup_ipc_files(self) -> None:
            super().cleanup_ipc_files()
            if os.path.basename(self.ip) == "ipc" and os.path.basename(os.path.dirname(self.ip)).startswith(
                    "fraglife-kernel-"):
                shutil.rmtree(os.path.dirname(self.ip), ignore_errors=True)

        async def _async_interrupt_kernel(self) -> None:
            # jupyter_client 8 interrupts every kernel it shuts down; the chapter has finished by then, so
            # the SIGINT only lands in a late message handler, which logs "KeyboardInterrupt caught in
            # kernel" into the runner's terminal.
            if self.shutting_down:
                return
            await super()._async_interrupt_kernel()

    return IPCKernelManager


def ensure_kernel(name: str = KERNEL) -> str:
    """Make sure the Jupyter kernel ``name`` exists; install it into this venv if not."""
    from jupyter_client.kernelspec import KernelSpecManager

    if name not in KernelSpecManager().find_kernel_specs():
        from ipykernel.kernelspec import install

        install(prefix=sys.prefix, kernel_name=name, display_name="Python (fraglife)")
    return name


def check_notebook(chapter: Chapter) -> None:
    """A chapter must exist, carry no outputs, and start its code with a tagged parameters cell."""
    if not chapter.notebook.exists():
        raise FileNotFoundError(f"{chapter.id}: notebook {chapter.notebook} is missing")
    nb = nbformat.read(chapter.notebook, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    if not code or "parameters" not in code[0].metadata.get("tags", []):
        raise ValueError(f"{chapter.id}: the first code cell must be tagged 'parameters'")


def resolve_parameters(chapters: list[Chapter], pairs: Iterable[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """Parse and check ``-p NAME VALUE`` pairs for each chapter that declares NAME."""
    pairs = list(pairs)
    out: dict[str, dict[str, Any]] = {ch.id: {} for ch in chapters}
    for name, text in pairs:
        takers = [ch for ch in chapters if name in ch.spec]
        if not takers:
            known = sorted({p.name for ch in chapters for p in ch.spec})
            raise ParamError(
                f"unknown parameter {name!r} for {', '.join(ch.id for ch in chapters)}; "
                f"known: {', '.join(known) or '(none)'}"
            )
        for ch in takers:
            out[ch.id][name] = ch.spec[name].parse(text)
    for ch in chapters:
        ch.spec.validate(out[ch.id], partial=True)
    return out


def _execute(chapter_id: str, parameters: dict[str, Any], out_dir: str, timeout: int, kernel: str) -> Result:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from .chapters import get

    chapter = get(chapter_id)
    output = Path(out_dir) / f"{chapter.id}.ipynb"
    start = time.perf_counter()
    env_backup = dict(os.environ)
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    try:
        check_notebook(chapter)
        pm.execute_notebook(
            str(chapter.notebook),
            str(output),
            parameters=parameters,
            kernel_name=kernel,
            cwd=str(BOOK),
            execution_timeout=timeout,
            progress_bar=False,
            kernel_manager_class=kernel_manager_class(),
        )
    except PapermillExecutionError as e:
        return Result(chapter.id, "failed", time.perf_counter() - start, str(output), cell=e.cell_index,
                      exec_count=e.exec_count, error=e.ename, message=e.evalue, source=e.source)
    except Exception as e:  # kernel death, timeout, missing notebook: still one clear line
        return Result(chapter.id, "failed", time.perf_counter() - start, str(output),
                      error=type(e).__name__, message=str(e).strip().splitlines()[0] if str(e).strip() else "")
    finally:
        os.environ.clear()
        os.environ.update(env_backup)
    return Result(chapter.id, "ok", time.perf_counter() - start, str(output))


#: Chapters that run after every other chapter of a run: the overview shows the others' answers.
RUNS_LAST = ("00_overview",)


#: Each chapter's seconds in the last run that executed it, under build/: the next run starts the longest first.
SECONDS_FILE = "chapter-seconds.json"


def last_seconds() -> dict[str, float]:
    """Chapter id -> seconds of its last successful run ({} before the first)."""
    try:
        data = json.loads((paths.BUILD / SECONDS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(v, (int, float))} if isinstance(data, dict) else {}


def record_seconds(results: list[Result]) -> None:
    """Keep the successful runs' seconds for :func:`execution_order`."""
    times = {**last_seconds(), **{r.chapter: round(r.seconds, 1) for r in results if r.ok}}
    paths.write_json(paths.BUILD / SECONDS_FILE, dict(sorted(times.items())))


def execution_order(chapters: list[Chapter], seconds: dict[str, float] | None = None
                    ) -> tuple[list[Chapter], list[Chapter]]:
    """(chapters that may run at once, chapters that run after them, one at a time): :data:`RUNS_LAST` last.

    The first list starts the longest first, by ``seconds`` (default: :func:`last_seconds`), so the workers
    finish together instead of one running the last long chapter alone (on two cores, a warm book in about
    80 s instead of 92); a chapter never timed counts as longest, and ties keep book order."""
    seconds = last_seconds() if seconds is None else seconds
    first = sorted((c for c in chapters if c.id not in RUNS_LAST), key=lambda c: -seconds.get(c.id, math.inf))
    return first, [c for c in chapters if c.id in RUNS_LAST]


def build_measurements(chapters: list[Chapter], params: dict[str, dict[str, Any]]) -> str:
    """How the build measures its unit costs: from the recording when every chapter that takes a
    ``measurements`` parameter was asked for the recording, else live."""
    takers = [c for c in chapters if "measurements" in c.spec]
    asked = [params.get(c.id, {}).get("measurements", c.spec["measurements"].default) for c in takers]
    return "recorded" if asked and all(a == "recorded" for a in asked) else "live"


def run_chapters(
    names: list[str] | None = None,
    pairs: Iterable[tuple[str, str]] = (),
    *,
    parameters: dict[str, dict[str, Any]] | None = None,
    out_dir: Path | None = None,
    timeout: int = DEFAULT_TIMEOUT,
    jobs: int | None = None,
) -> list[Result]:
    """Execute chapters in one build (:mod:`fraglife.build`: one id, one set of unit costs, passed to every
    chapter's kernel); the overview runs after the others. Returns one Result each, in book order; each
    executed notebook carries the build id."""
    chapters = select(names)
    params = parameters if parameters is not None else resolve_parameters(chapters, pairs)
    out = Path(out_dir) if out_dir else build_dir("executed")
    out.mkdir(parents=True, exist_ok=True)
    kernel = ensure_kernel()
    book = out.resolve() == (paths.BUILD / "executed").resolve()
    command = "fraglife run " + " ".join(c.number for c in chapters)
    with build.scope(build_measurements(chapters, params), command=command, book=book) as b:
        first, last = execution_order(chapters)
        args = [(ch.id, params.get(ch.id, {}), str(out), timeout, kernel) for ch in first]
        jobs = system.processes(jobs, len(args))
        if jobs == 1:
            results = [_execute(*a) for a in args]
        else:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                results = list(pool.map(_execute, *zip(*args)))
        results += [_execute(ch.id, params.get(ch.id, {}), str(out), timeout, kernel) for ch in last]
        record_seconds(results)
        for r in results:
            r.build = b.id
            _stamp(Path(r.output), b.id)
    order = {c.id: i for i, c in enumerate(chapters)}
    return sorted(results, key=lambda r: order[r.chapter])


def _stamp(path: Path, build_id: str) -> None:
    """Write the build id into an executed notebook's metadata (the publishers read it)."""
    if not path.exists():
        return
    nb = nbformat.read(path, as_version=4)
    build.stamp(nb, build_id)
    nbformat.write(nb, path)


def format_table(results: list[Result]) -> str:
    width = max([len("chapter")] + [len(r.chapter) for r in results])
    builds = sorted({r.build for r in results if r.build})
    lines = [f"build {', '.join(builds)}"] if builds else []
    lines.append(f"{'chapter':<{width}}  status  seconds")
    for r in results:
        lines.append(f"{r.chapter:<{width}}  {r.status:<6}  {r.seconds:7.1f}")
    failures = [r.describe() for r in results if not r.ok]
    if failures:
        lines.append("")
        lines.extend(failures)
    return "\n".join(lines)


def register(sub) -> None:
    p = sub.add_parser("run", help="execute chapters headless (papermill) into build/executed/")
    p.add_argument("chapters", nargs="*", help="chapter ids or numbers (default: all)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="set a chapter parameter (checked against the chapter's spec)")
    p.add_argument("--out", type=Path, default=None, help="directory for executed notebooks (default build/executed)")
    p.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT, help="per-cell execution timeout in seconds")
    p.add_argument("-j", "--jobs", type=int, default=None, help="chapters run in parallel (default: up to 2)")
    p.set_defaults(func=_cli_run)


def _cli_run(args) -> int:
    results = run_chapters(args.chapters or None, [tuple(x) for x in args.parameter],
                           out_dir=args.out, timeout=args.timeout, jobs=args.jobs)
    print(format_table(results))
    return 0 if all(r.ok for r in results) else 1
