"""PySR adapter: V and g learned jointly with one ``TemplateExpressionSpec``.

The template has one sub-expression per piece (``V``, ``g1`` .. ``gd``), all functions of
the d state variables; the targets ``f``, ``V`` and ``g`` are extra columns of the data
matrix and the template returns the per-point loss

    Σ_i (f_i + D(V, i) − g_i)² + (V_target − V)² + Σ_i (g_i_target − g_i)² + w (∇V·g)²,

so the search sees the decomposition residual and the orthogonality defect together.
Template models do not export to SymPy; their ``equation`` strings
(``"V = #1*#1 + 0.5; g1 = -#2; g2 = #1"``, with ``#k`` the k-th argument) are read back
through the allow-list parser by :func:`parse_template_equation`, and a whole
``equations_`` table (columns ``complexity``, ``loss``, ``equation``) becomes a Pareto
front with :func:`candidates_from_equations`.

PySR needs a working Julia; it is imported only inside :meth:`PySR.fit` (constructing,
cloning or inspecting a :class:`PySR` never imports it), and an import failure
(``import pysr`` raises ``OSError`` where Julia cannot be installed) becomes a
:class:`~symqp.MissingDependencyError` saying so.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy as sp

from symqp._errors import BackendError, ParameterError, ParseError, first_line
from symqp._estimator import check_float, check_int, check_seed
from symqp._optional import require
from symqp._parse import parse_expr_safe

from ._base import Backend, Search
from ._problem import Candidate, Problem

__all__ = ["PySR", "candidates_from_equations", "parse_template_equation", "template_spec_source"]

_PLACEHOLDER = re.compile(r"#(\d+)")
_JULIA_FUNCS = ("sin", "cos", "exp", "log", "sqrt", "tanh", "square", "abs", "cbrt")


def piece_names(d: int) -> tuple[str, ...]:
    """Sub-expression names of the template: ``("V", "g1", ..., "gd")``."""
    return ("V",) + tuple(f"g{i + 1}" for i in range(d))


def template_spec_source(names: Sequence[str], *, orthogonality_weight: float = 1.0) -> dict[str, Any]:
    """Arguments of ``pysr.TemplateExpressionSpec`` for the joint fit of V and g.

    The data matrix holds the state variables ``names`` and then the target columns
    ``f1..fd, Vt, gt1..gtd``; the template returns the per-point loss (see the module
    docstring), to be used with ``elementwise_loss="(pred, target) -> pred"``.

    Examples
    --------
    >>> spec = template_spec_source(["x", "y"])
    >>> spec["expressions"], spec["variable_names"][2:]
    (['V', 'g1', 'g2'], ['f1', 'f2', 'Vt', 'gt1', 'gt2'])
    >>> print(spec["combine"].splitlines()[0])
    v = V(x, y)
    """
    d = len(names)
    if d == 0:
        raise BackendError("the template needs at least one state variable")
    args = ", ".join(names)
    pieces = piece_names(d)
    lines = [f"v = V({args})"]
    for i in range(d):
        lines.append(f"dv{i + 1} = D(V, {i + 1})({args})")
        lines.append(f"g{i + 1}v = g{i + 1}({args})")
    res_f = " + ".join(f"abs2(f{i + 1} + dv{i + 1} - g{i + 1}v)" for i in range(d))
    res_g = " + ".join(f"abs2(gt{i + 1} - g{i + 1}v)" for i in range(d))
    dot = " + ".join(f"dv{i + 1} * g{i + 1}v" for i in range(d))
    lines.append(f"({res_f}) + abs2(Vt - v) + ({res_g}) + {float(orthogonality_weight)!r} * abs2({dot})")
    variable_names = list(names) + [f"f{i + 1}" for i in range(d)] + ["Vt"] + [f"gt{i + 1}" for i in range(d)]
    return {"expressions": list(pieces), "variable_names": variable_names, "combine": "\n".join(lines)}


def parse_template_equation(text: str, variables: Sequence[sp.Symbol], pieces: Sequence[str]) -> dict[str, sp.Expr]:
    """Read a template ``equation`` string into ``{piece: SymPy expression}``.

    Segments are separated by ``;`` (or new lines) and look like ``name = expression``;
    ``#k`` is the k-th argument of the sub-expression, i.e. the k-th state variable, and
    ``^`` is a power. Parameter segments (``p = [..]``) are ignored; every piece in
    ``pieces`` must be present.

    Raises
    ------
    BackendError
        For a missing or repeated piece, an unknown ``#k`` or text outside the allow-list.

    Examples
    --------
    >>> x, y = sp.symbols("x y")
    >>> out = parse_template_equation("V = (#1 * #1) + 0.5; g1 = -#2; g2 = #1", (x, y), ("V", "g1", "g2"))
    >>> out["V"], out["g1"], out["g2"]
    (x**2 + 0.5, -y, x)
    """
    if not isinstance(text, str):
        raise BackendError(f"template equation must be a string, got {type(text).__name__}")
    names = {str(v): v for v in variables}
    d = len(variables)
    out: dict[str, sp.Expr] = {}
    for seg in re.split(r"[;\n]", text):
        seg = seg.strip()
        if not seg:
            continue
        name, eq, body = seg.partition("=")
        name = name.strip()
        if not eq or not name:
            raise BackendError(f"template segment {seg!r} is not of the form 'name = expression'")
        if name not in pieces:
            if body.strip().startswith("["):  # a parameter vector
                continue
            raise BackendError(f"unknown template piece {name!r} in {text!r} (expected {', '.join(pieces)})")
        if name in out:
            raise BackendError(f"template piece {name!r} appears twice in {text!r}")

        def arg(m: re.Match, seg: str = seg) -> str:
            k = int(m.group(1))
            if not 1 <= k <= d:
                raise BackendError(f"argument #{k} in {seg!r} is out of range (1..{d})")
            return str(variables[k - 1])

        body = _PLACEHOLDER.sub(arg, body)
        try:
            out[name] = sp.expand(parse_expr_safe(body, names, functions=_JULIA_FUNCS, xor_is_pow=True))
        except ParseError as exc:
            raise BackendError(f"cannot read template piece {name!r}: {exc}") from None
    missing = [p for p in pieces if p not in out]
    if missing:
        raise BackendError(f"template equation {text!r} lacks piece(s) {', '.join(missing)}")
    return out


def candidates_from_equations(table: Any, problem: Problem) -> list[Candidate]:
    """Turn a PySR ``equations_`` table into :class:`Candidate` models.

    ``table`` is a pandas DataFrame (or a mapping of columns) with ``complexity``,
    ``loss`` and ``equation``; the equations are template strings with the pieces
    ``V, g1..gd``. Training and validation errors are recomputed on the problem's points
    (:func:`~symqp.backends._problem.expression_errors`); PySR's own loss is kept in
    ``params["loss"]``.
    """
    try:
        cols = {c: list(table[c]) for c in ("complexity", "loss", "equation")}
    except (KeyError, TypeError, IndexError) as exc:
        raise BackendError(f"equations table needs columns complexity, loss, equation ({exc!r} missing)") from None
    n = len(cols["equation"])
    if n == 0:
        raise BackendError("the equations table is empty")
    if any(len(v) != n for v in cols.values()):
        raise BackendError("equations table columns have different lengths")
    pieces = piece_names(problem.d)
    out = []
    for row in range(n):
        parsed = parse_template_equation(cols["equation"][row], problem.variables, pieces)
        try:
            cx = int(cols["complexity"][row])
            loss = float(cols["loss"][row])
        except (TypeError, ValueError):
            raise BackendError(f"row {row} of the equations table has a non-numeric complexity or loss") from None
        params = {"loss": loss, "row": row, "equation": cols["equation"][row]}
        out.append(Backend._candidate(problem, parsed["V"], [parsed[p] for p in pieces[1:]], cx, params))
    return out


class PySR(Backend):
    """Joint evolutionary fit of V and g with PySR template expressions (needs Julia).

    Parameters
    ----------
    niterations, populations, maxsize : int
        PySR search budget.
    binary_operators, unary_operators : sequence of str
        PySR operators.
    orthogonality_weight : float
        Weight w of ``(∇V·g)²`` in the per-point loss.
    max_points : int
        Points used by the search (random subset).
    selection_rule, rel_tol, abs_tol
        How the model is picked on the front (see :class:`Backend`).
    seed : int
        Random state of the search and of the subset.

    Examples
    --------
    >>> PySR(niterations=10).niterations
    10
    """

    name = "pysr"
    requires = ("pysr",)

    def __init__(
        self,
        *,
        niterations: int = 100,
        populations: int = 15,
        maxsize: int = 40,
        binary_operators: Sequence[str] = ("+", "-", "*"),
        unary_operators: Sequence[str] = (),
        orthogonality_weight: float = 1.0,
        max_points: int = 2000,
        selection_rule: str = "tolerance",
        rel_tol: float = 0.05,
        abs_tol: float = 1e-9,
        seed: int = 0,
    ) -> None:
        self.niterations = niterations
        self.populations = populations
        self.maxsize = maxsize
        self.binary_operators = binary_operators
        self.unary_operators = unary_operators
        self.orthogonality_weight = orthogonality_weight
        self.max_points = max_points
        self.selection_rule = selection_rule
        self.rel_tol = rel_tol
        self.abs_tol = abs_tol
        self.seed = seed

    def _check_params(self) -> None:
        for name in ("niterations", "populations", "maxsize", "max_points"):
            check_int(self, name, getattr(self, name), minimum=1)
        for name in ("binary_operators", "unary_operators"):
            ops = getattr(self, name)
            if isinstance(ops, str) or not all(isinstance(op, str) for op in ops):
                raise ParameterError(f"PySR.{name} must be a sequence of operator names, got {ops!r}")
        check_float(self, "orthogonality_weight", self.orthogonality_weight, low=0.0)
        check_seed(self, "seed", self.seed)

    def _candidates(self, problem: Problem) -> Search:
        pysr = require("pysr")  # MissingDependencyError (with the OSError) without Julia
        t0 = time.perf_counter()
        d = problem.d
        names = [f"x{i + 1}" for i in range(d)]  # neutral names; #k maps back to variable k
        spec_args = template_spec_source(names, orthogonality_weight=self.orthogonality_weight)
        rng = np.random.default_rng(self.seed)
        idx = np.sort(rng.permutation(problem.n)[: self.max_points])
        data = np.column_stack([problem.X[idx], problem.f[idx], problem.V[idx], problem.g[idx]])
        model = pysr.PySRRegressor(
            expression_spec=pysr.TemplateExpressionSpec(**spec_args),
            binary_operators=list(self.binary_operators),
            unary_operators=list(self.unary_operators),
            niterations=self.niterations,
            populations=self.populations,
            maxsize=self.maxsize,
            elementwise_loss="(pred, target) -> pred",
            random_state=self.seed,
            deterministic=True,
            parallelism="serial",
            progress=False,
            verbosity=0,
        )
        try:
            model.fit(data, np.zeros(data.shape[0]))
        except Exception as exc:
            raise BackendError(f"PySR search failed: {type(exc).__name__}: {first_line(exc)}") from exc
        timings = {"search": time.perf_counter() - t0}
        return Search(candidates_from_equations(model.equations_, problem), selection="PySR template search",
                      timings=timings)
