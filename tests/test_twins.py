"""The twins side by side (model/__init__.py): every compiled model X.py has its plain-Python
specification X_twin.py beside it, the twin imports nothing compiled, compiled handlers carry the twin's
names. (No function runs past about 150 lines and no module uses another's underscore names: those
rules hold for all of lib/ and live in tests/test_layers.py.)"""

import ast
from pathlib import Path

import pytest

import fraglife
from fraglife.model import engine, engine_twin, trace as T

LIB = Path(fraglife.__file__).parent
MODEL = LIB / "model"
NOT_TWINNED = {"__init__", "trace", "ledger", "policies", "costs", "rng", "creplay", "replays", "kernels", "copypath",
               "explorer_story"}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _compiles(path: Path) -> bool:
    """Whether the module defines numba kernels (a function decorated with njit / numba.njit)."""
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.FunctionDef):
            for d in node.decorator_list:
                if "njit" in ast.unparse(d):
                    return True
    return False


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            out.add(node.module or "")
            out.update(a.name for a in node.names if not node.module)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fraglife.model."):
            out.add(node.module.split(".")[2])
    return out


COMPILED = sorted(p.stem for p in MODEL.glob("*.py") if not p.stem.endswith("_twin") and _compiles(p))
TWINS = sorted(p.stem for p in MODEL.glob("*_twin.py"))


def test_the_models_are_the_ones_the_rule_names():
    assert COMPILED == ["bvec", "engine", "explorer", "memdesc", "pagetable", "pins", "pipe", "workloads"]
    assert set(p.stem for p in MODEL.glob("*.py")) == NOT_TWINNED | set(COMPILED) | set(TWINS)


@pytest.mark.parametrize("name", COMPILED)
def test_each_compiled_model_has_its_twin_beside_it(name):
    twin = MODEL / f"{name}_twin.py"
    assert twin.exists(), f"model/{name}.py has numba kernels but no model/{name}_twin.py"
    assert not _compiles(twin), f"{twin.name} is the plain-Python specification: no numba"
    assert name not in _imports(twin), f"{twin.name} imports the compiled {name}.py"


@pytest.mark.parametrize("name", TWINS)
def test_each_twin_has_its_compiled_model(name):
    assert (MODEL / f"{name.removesuffix('_twin')}.py").exists()


def test_engine_handlers_are_the_twin_event_methods():
    assert tuple(h.py_func.__name__ for h in engine.HANDLERS) == T.OP_NAMES
    for name in T.OP_NAMES:
        assert callable(getattr(engine_twin.Replay, name, None)), f"engine_twin.Replay has no {name}()"
