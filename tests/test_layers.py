"""Imports run one way in lib/fraglife, with no cycles.

Every import is walked: top-level and inside functions, absolute and
relative, plus strings naming a module (``"fraglife.sweep:bench_section"``,
``"fraglife.runner"``) as registries such as ``cli.COMMANDS`` and
``bench.SECTIONS`` hold them. Importing ``a.b.c`` counts as an arrow to
``a.b.c`` only (not to the packages ``a`` and ``a.b`` that Python runs first).
A chapter module is found by the registry by name at run time
(:meth:`fraglife.chapters.Chapter.module`), the way a package finds its
plugins; that lookup is not an import and makes no arrow.

The layers (see fraglife.chapters and README "Layout"):

* ``model`` imports only ``fraglife.jit`` (and itself): the simulation knows
  no chapter, view, probe or CLI;
* ``probes`` import no model, view, chapter, sweep, publish, runner or CLI;
* ``views`` import no model, probe or chapter module, nor the registry (they take
  DataFrames, labels and the chapter's spec, passed in), nor what sits above them
  (sweep, publish, runner, bench, CLI);
* ``chapters`` import no view, sweep, publish, runner, bench or CLI, and no chapter
  module (the registry's ``chapters/NAME.py``) imports another: what two chapters
  need is in the model or in the chapters' shared package (``kit``, with ``kit.compare``);
* ``claims`` and ``params`` import no chapter (the registry imports them); nor do ``build`` (a build's id,
  record and shared unit costs) and ``answers`` (the answers table), which chapters import;
* ``cited`` (published DMA and IOMMU figures) imports only ``paths``.

Two more rules keep the modules readable one at a time: no module uses another
module's underscore names (``from x import _y``, ``x._y``; a package's underscore
*modules*, like ``probes/_net.py``, are its own to share), and no function runs
past :data:`MAX_FUNCTION_LINES` lines.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import fraglife

LIB = Path(fraglife.__file__).parent
MODULE_STRING = re.compile(r"^fraglife(\.[A-Za-z_]\w*)+(:[A-Za-z_]\w*)?$|^fraglife$")

# (importer prefix, forbidden target prefixes, except these targets)
RULES = (
    ("fraglife.model", ("fraglife",), ("fraglife.model", "fraglife.jit")),
    ("fraglife.probes", ("fraglife.model", "fraglife.views", "fraglife.chapters", "fraglife.sweep",
                         "fraglife.publish", "fraglife.runner", "fraglife.cli", "fraglife.bench"), ()),
    ("fraglife.views", ("fraglife.model", "fraglife.probes", "fraglife.chapters", "fraglife.sweep",
                        "fraglife.publish", "fraglife.runner", "fraglife.cli", "fraglife.bench"), ()),
    ("fraglife.chapters", ("fraglife.views", "fraglife.sweep", "fraglife.publish", "fraglife.runner",
                           "fraglife.cli", "fraglife.bench"), ()),
    ("fraglife.claims", ("fraglife.chapters",), ()),
    ("fraglife.params", ("fraglife.chapters",), ()),
    # a build's record and the answers sit at the claims' level: chapters import them, they import no chapter
    ("fraglife.build", ("fraglife.chapters", "fraglife.views", "fraglife.sweep", "fraglife.publish",
                        "fraglife.runner", "fraglife.cli", "fraglife.bench", "fraglife.answers", "fraglife.reply"), ()),
    # cited figures sit at the bottom with the model: they know only where the data lives
    ("fraglife.cited", ("fraglife",), ("fraglife.cited", "fraglife.paths")),
    ("fraglife.answers", ("fraglife.chapters", "fraglife.views", "fraglife.sweep", "fraglife.publish",
                          "fraglife.runner", "fraglife.cli", "fraglife.bench", "fraglife.reply"), ()),
)


def _under(name: str, prefix: str) -> bool:
    if prefix.endswith("."):  # strictly below a package ("fraglife.chapters." = a chapter module)
        return name.startswith(prefix)
    return name == prefix or name.startswith(prefix + ".")


def modules(root: Path = LIB, package: str = "fraglife") -> dict[str, Path]:
    """Every module of the package: dotted name -> file (directories without __init__.py are data)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if any(not (root.joinpath(*rel.parts[:i]) / "__init__.py").exists() for i in range(1, len(rel.parts))):
            continue
        parts = [package, *rel.with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _resolve(name: str, known: set[str]) -> str | None:
    """The longest known module that ``name`` (a module or module.attribute) starts with."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        candidate = ".".join(parts[:i])
        if candidate in known:
            return candidate
    return None


def imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The modules of the package that ``module`` imports or names, anywhere in its source."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    named: set[str] = set()  # strings: only those naming a module exactly ("fraglife.css" is a file name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            for a in node.names:
                found.add(f"{stem}.{a.name}" if f"{stem}.{a.name}" in known else stem)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_STRING.match(node.value):
            named.add(node.value.partition(":")[0])
    resolved = {_resolve(n, known) for n in found if n == "fraglife" or n.startswith("fraglife.")}
    resolved |= named & known
    return {r for r in resolved if r and r != module}


def graph(root: Path = LIB, package: str = "fraglife") -> dict[str, set[str]]:
    mods = modules(root, package)
    return {m: imports(m, p, set(mods)) for m, p in mods.items()}


def forbidden(g: dict[str, set[str]]) -> list[str]:
    out = []
    for src, targets in sorted(g.items()):
        for importer, banned, allowed in RULES:
            if not _under(src, importer):
                continue
            for t in sorted(targets):
                if any(_under(t, b) for b in banned) and not any(_under(t, a) for a in allowed):
                    out.append(f"{src} -> {t}")
    return out


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


@pytest.fixture(scope="module")
def lib_graph():
    return graph()


def test_no_forbidden_arrow(lib_graph):
    assert forbidden(lib_graph) == []


def test_no_import_cycle(lib_graph):
    assert cycles(lib_graph) == []


def test_the_walk_sees_function_level_imports_and_registry_strings(lib_graph):
    assert "fraglife.model.creplay" in lib_graph["fraglife.bench"]  # imported inside replay_bench()
    assert "fraglife.sweep" in lib_graph["fraglife.bench"]  # "fraglife.sweep:bench_section"
    assert {"fraglife.runner", "fraglife.publish"} <= lib_graph["fraglife.cli"]  # COMMANDS
    assert "fraglife.model.policies" in lib_graph["fraglife.model.engine"]  # relative
    assert "fraglife.chapters" in lib_graph["fraglife.chapters.overview"]  # `from . import CHAPTERS` in a method


def test_every_chapter_has_its_modules_where_the_registry_looks():
    from fraglife import chapters

    import importlib.util

    for ch in chapters.CHAPTERS:
        assert ch.module() is not None, f"{ch.id}: no {ch.module_name}"
        assert ch.module_name == f"fraglife.chapters.{ch.name}" and ch.view_name == f"fraglife.views.{ch.name}"
        if ch.id != "00_overview":  # the overview's one chart is a sweep's (views/sweep.py)
            assert importlib.util.find_spec(ch.view_name) is not None, f"{ch.id}: no {ch.view_name}"


def test_the_checker_finds_arrows_and_cycles(tmp_path):
    pkg = tmp_path / "fraglife"
    for d in ("", "model", "views", "chapters"):
        (pkg / d).mkdir(exist_ok=True)
        (pkg / d / "__init__.py").write_text("")
    (pkg / "model" / "engine.py").write_text("def f():\n    from ..views import plots\n")
    (pkg / "views" / "plots.py").write_text("import fraglife.chapters.ch01\n")
    (pkg / "chapters" / "ch01.py").write_text("X = 'fraglife.views.plots:theme'\n")
    g = graph(pkg, "fraglife")
    assert forbidden(g) == ["fraglife.chapters.ch01 -> fraglife.views.plots",
                            "fraglife.model.engine -> fraglife.views.plots",
                            "fraglife.views.plots -> fraglife.chapters.ch01"]
    assert cycles(g) == [["fraglife.chapters.ch01", "fraglife.views.plots"]]


# -- chapter modules stand alone ----------------------------------------------------------------------

def chapter_modules() -> set[str]:
    """The registry's chapter modules (``fraglife.chapters.NAME``); the kit (and its compare) is not among them."""
    from fraglife import chapters

    return {ch.module_name for ch in chapters.CHAPTERS}


def chapter_arrows(g: dict[str, set[str]], mods: set[str]) -> list[str]:
    return [f"{src} -> {t}" for src in sorted(mods & set(g)) for t in sorted(g[src] & mods)]


def test_no_chapter_module_imports_another(lib_graph):
    mods = chapter_modules()
    assert "fraglife.chapters.kit" not in mods and "fraglife.chapters.kit.compare" not in mods
    assert chapter_arrows(lib_graph, mods) == []
    assert "fraglife.chapters.kit" in lib_graph["fraglife.chapters.refcount_removal"]
    assert "fraglife.chapters.kit.compare" in lib_graph["fraglife.chapters.refcount_removal"]


def test_what_chapters_share_is_in_the_kit(lib_graph):
    """A chapter module imports, of what sits beside it under chapters/, only the kit package (design.md: no
    chapter imports another): a module there that is no chapter (the notebooks' ``answering``) no chapter imports."""
    mods = chapter_modules()
    beside = {f"fraglife.chapters.{p.stem}" for p in (LIB / "chapters").glob("*.py") if p.stem != "__init__"}
    assert mods <= beside
    assert [f"{m} -> {t}" for m in sorted(mods) for t in sorted(lib_graph[m] & (beside - mods))] == []


def test_the_chapter_check_finds_a_chapter_importing_another(tmp_path):
    pkg = tmp_path / "fraglife"
    (pkg / "chapters").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "chapters" / "__init__.py").write_text("")
    (pkg / "chapters" / "kit.py").write_text("")
    (pkg / "chapters" / "one.py").write_text("from . import kit\n")
    (pkg / "chapters" / "two.py").write_text("from . import kit\ndef f():\n    from .one import X\n")
    g = graph(pkg, "fraglife")
    assert chapter_arrows(g, {"fraglife.chapters.one", "fraglife.chapters.two"}) == [
        "fraglife.chapters.two -> fraglife.chapters.one"]


# -- underscore names stay in their module --------------------------------------------------------

def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_uses(module: str, path: Path, known: set[str]) -> list[str]:
    """``module``'s uses of another module's underscore names: ``from M import _x`` and ``M._x`` where M is a
    module of the package it imported (a package's underscore modules, ``from . import _net``, are fine)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    bound: dict[str, str] = {}  # local name -> module of the package
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            for a in node.names:
                full = f"{stem}.{a.name}"
                if full in known:
                    bound[a.asname or a.name] = full
                elif stem in known and _private(a.name) and stem != module:
                    out.append(f"{module}: from {stem} import {a.name}")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name in known and a.asname:
                    bound[a.asname] = a.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and _private(node.attr)
                and bound.get(node.value.id, module) != module):
            target = bound[node.value.id]
            if f"{target}.{node.attr}" not in known:  # an underscore module of that package is fine
                out.append(f"{module}: {target}.{node.attr}")
    return sorted(set(out))


#: Uses left in files other work is changing right now; empty it once that work is in.
PRIVATE_ALLOWED: set[str] = set()


def test_no_module_uses_another_modules_underscore_names():
    mods = modules()
    found = {u for m, p in mods.items() for u in private_uses(m, p, set(mods))}
    assert sorted(found - PRIVATE_ALLOWED) == []
    assert sorted(PRIVATE_ALLOWED - found) == [], "allowed uses that are gone: take them off the list"


def test_the_underscore_check_finds_private_uses(tmp_path):
    pkg = tmp_path / "fraglife"
    (pkg / "probes").mkdir(parents=True)
    for f in ("__init__.py", "probes/__init__.py", "probes/_net.py", "probes/kcount.py"):
        (pkg / f).write_text("")
    (pkg / "probes" / "splice.py").write_text(
        "from . import _net, kcount\nfrom .kcount import _check, run\n_net.x()\nkcount._root()\nkcount.run()\n"
        "import os\nos._exit(0)\n")
    mods = modules(pkg, "fraglife")
    assert private_uses("fraglife.probes.splice", pkg / "probes" / "splice.py", set(mods)) == [
        "fraglife.probes.splice: fraglife.probes.kcount._root",
        "fraglife.probes.splice: from fraglife.probes.kcount import _check"]


# -- functions fit a screen or two ----------------------------------------------------------------

MAX_FUNCTION_LINES = 150
#: Functions other work is splitting right now (model files this check must not touch yet); the list
#: empties as that work comes in.
LONG_ALLOWED: set[str] = set()


def long_functions(root: Path = LIB, limit: int = MAX_FUNCTION_LINES) -> dict[str, int]:
    """``{"path:function": lines}`` for every function (def to its last line, docstring included) longer than
    ``limit`` lines."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > limit:
                    out[f"{path.relative_to(root).as_posix()}:{node.name}"] = n
    return out


def test_no_function_runs_past_a_screen_or_two():
    long = long_functions()
    assert {k: v for k, v in long.items() if k not in LONG_ALLOWED} == {}
    assert sorted(LONG_ALLOWED - set(long)) == [], "allowed functions that are short now: take them off the list"


def test_the_length_check_counts_lines(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(150))
    (tmp_path / "m.py").write_text(f"def short():\n{body[:-13]}\n\n\ndef long():\n{body}\n")
    assert long_functions(tmp_path) == {"m.py:long": 151}
