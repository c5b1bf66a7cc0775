"""The package's structure: layers import only downwards, modules and functions stay small,
every estimator follows the scikit-learn contract."""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Layers, lowest first (ARCHITECTURE.md): a package may import only packages of a lower layer.
# The base modules (symqp/_*.py and the package's __version__) are below every layer.
LAYERS = {
    "systems": 1,
    "data": 1,
    "library": 2,
    "decompose": 2,
    "backends": 3,
    "result": 4,
    "analysis": 5,
    "identify": 6,
    "sweep": 7,
    "cli": 8,
}
MAX_FUNCTION_LINES = 120  # statements of a function body, docstring excluded
MAX_MODULE_LINES = 600


def _sources() -> list[pathlib.Path]:
    return sorted([*(ROOT / "symqp").rglob("*.py"), *(ROOT / "backends").rglob("*.py")])


def _package(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT).parts
    if rel[0] == "backends":
        return "backends"
    return rel[1] if len(rel) > 2 else "base"


def _module_parts(path: pathlib.Path) -> list[str]:
    rel = path.relative_to(ROOT).parts
    if rel[0] == "backends":
        return ["symqp", "backends"]
    return ["symqp", *rel[1:-1]]


def _imported_packages(path: pathlib.Path) -> set[tuple[str, int]]:
    """(symqp package, line) for every import in the file, at module level or inside functions."""
    out = set()
    here = _module_parts(path)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                mod = here[: len(here) - node.level + 1] + (node.module.split(".") if node.module else [])
            else:
                mod = (node.module or "").split(".")
            targets = [mod + [a.name] for a in node.names] if len(mod) == 1 else [mod]
        elif isinstance(node, ast.Import):
            targets = [a.name.split(".") for a in node.names]
        else:
            continue
        for t in targets:
            if t[0] == "symqp" and len(t) > 1 and not t[1].startswith("_"):
                out.add((t[1], node.lineno))
    return out


def test_layers_import_only_downwards():
    bad = []
    for path in _sources():
        src = _package(path)
        if src == "base":
            continue
        for tgt, line in _imported_packages(path):
            if tgt == src or tgt not in LAYERS:
                continue
            if LAYERS[tgt] >= LAYERS[src]:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {src} (layer {LAYERS[src]}) imports {tgt} (layer {LAYERS[tgt]})")
    assert not bad, "imports that point upwards:\n" + "\n".join(bad)


def test_base_modules_import_no_layer():
    bad = []
    for path in (ROOT / "symqp").glob("_*.py"):
        if path.name == "__main__.py":  # the ``python -m symqp`` entry point runs the CLI
            continue
        for tgt, line in _imported_packages(path):
            if tgt in LAYERS:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports symqp.{tgt}")
    assert not bad, "\n".join(bad)


def _body_lines(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        if isinstance(body[0].value.value, str):
            body = body[1:]
    if not body:
        return 0
    return body[-1].end_lineno - body[0].lineno + 1


def test_functions_and_modules_stay_small():
    long_functions, long_modules = [], []
    for path in _sources():
        text = path.read_text()
        n = text.count("\n")
        if n > MAX_MODULE_LINES:
            long_modules.append(f"{path.relative_to(ROOT)}: {n} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = _body_lines(node)
                if lines > MAX_FUNCTION_LINES:
                    long_functions.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {lines} lines")
    assert not long_modules and not long_functions, "\n".join(long_modules + long_functions)


def _estimators():
    from symqp.backends import get_backend
    from symqp.decompose import EPRLandscape, HamiltonianPotential, NeuralDecomposition

    return [
        NeuralDecomposition(steps=10, hidden=(8, 8)),
        HamiltonianPotential(),
        EPRLandscape(),
        get_backend("sr3", threshold=0.1),
        get_backend("stlsq"),
        get_backend("operon"),
        get_backend("pysr"),
    ]


@pytest.mark.parametrize("index", range(7))
def test_every_estimator_follows_the_scikit_learn_contract(index):
    from sklearn.base import clone

    from symqp import ParameterError

    est = _estimators()[index]
    twin = clone(est)
    assert type(twin) is type(est) and twin is not est
    assert twin.get_params() == est.get_params()
    assert repr(twin) == repr(est)
    with pytest.raises(ValueError, match="bogus"):
        est.set_params(bogus=1)
    with pytest.raises(ParameterError, match="bogus"):
        type(est)(bogus=1)
    first = next(iter(est.get_params(deep=False)))
    assert est.set_params(**{first: est.get_params()[first]}) is est
