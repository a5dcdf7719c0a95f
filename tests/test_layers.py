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
* ``views`` import no chapter module (they take DataFrames), nor what sits
  above them (sweep, publish, runner, bench, CLI);
* ``chapters`` import no view, sweep, publish, runner, bench or CLI;
* ``claims`` and ``params`` import no chapter (the registry imports them).
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
    ("fraglife.views", ("fraglife.chapters.", "fraglife.sweep", "fraglife.publish", "fraglife.runner",
                        "fraglife.cli", "fraglife.bench"), ()),
    ("fraglife.chapters", ("fraglife.views", "fraglife.sweep", "fraglife.publish", "fraglife.runner",
                           "fraglife.cli", "fraglife.bench"), ()),
    ("fraglife.claims", ("fraglife.chapters",), ()),
    ("fraglife.params", ("fraglife.chapters",), ()),
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
