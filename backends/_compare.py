"""Several backends on one :class:`Problem`: a comparison table."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from symqp._errors import BackendError, SymqpError

from ._base import Backend, fit_problem
from ._problem import Fit, Problem
from ._registry import get_backend

__all__ = ["Comparison", "compare_fits"]

_COLUMNS = ("backend", "U", "n_terms", "train_error", "val_error", "orthogonality", "f_residual", "wall_s")


@dataclass
class Comparison:
    """Result of :func:`compare_fits`.

    ``rows`` holds one dict per backend with the keys ``name``, ``U`` (string),
    ``n_terms``, ``train_error``, ``val_error``, ``orthogonality``, ``f_residual``,
    ``wall_s`` and ``error`` (None, or why the backend gave no fit); ``fits`` maps the
    backend name to its :class:`Fit` (only the backends that ran).
    """

    rows: list[dict[str, Any]]
    fits: dict[str, Fit] = field(default_factory=dict)

    def to_text(self, *, digits: int = 4, max_width: int | None = 70) -> str:
        """The table as plain text (one line per backend).

        ``U`` strings longer than ``max_width`` characters are cut with ``...`` (None: never);
        the full expressions are in ``rows`` and ``fits``.

        Examples
        --------
        >>> c = Comparison([{"name": "sr3", "U": "x**2", "n_terms": 1, "train_error": 0.0,
        ...                  "val_error": float("nan"), "orthogonality": 0.0, "f_residual": 0.0,
        ...                  "wall_s": 0.01, "error": None}])
        >>> print(c.to_text())  # doctest: +NORMALIZE_WHITESPACE
        backend  U     n_terms  train_error  val_error  orthogonality  f_residual  wall_s
        sr3      x**2  1        0            -          0              0           0.01
        """
        table = [list(_COLUMNS)]
        notes = []
        for r in self.rows:
            if r.get("error"):
                table.append([r["name"], "-", "-", "-", "-", "-", "-", _num(r.get("wall_s"), digits)])
                notes.append(f"{r['name']}: {r['error']}")
                continue
            table.append([
                r["name"], _cut(str(r["U"]), max_width), str(r["n_terms"]), _num(r["train_error"], digits),
                _num(r["val_error"], digits), _num(r["orthogonality"], digits),
                _num(r["f_residual"], digits), _num(r["wall_s"], digits),
            ])
        widths = [max(len(row[i]) for row in table) for i in range(len(_COLUMNS))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]
        return "\n".join(lines + notes)

    def __str__(self) -> str:
        return self.to_text()


def _cut(text: str, width: int | None) -> str:
    if width is None or len(text) <= width:
        return text
    return text[: max(width - 3, 1)] + "..."


def _num(v: Any, digits: int) -> str:
    if v is None:
        return "-"
    v = float(v)
    if not math.isfinite(v):
        return "-"
    return f"{v:.{digits}g}"


def compare_fits(problem: Problem, backends: Sequence[str | Backend] = ("sr3", "operon"), **options: Any) -> Comparison:
    """Fit ``problem`` with each backend and tabulate the results.

    A backend that is unavailable (missing optional dependency) or fails on this problem
    gets a row with its error message instead of stopping the comparison; unknown names
    (:class:`~symqp.BackendError`) and unknown parameters (``ParameterError``) raise
    before anything is fitted. The errors and residuals are the fits' diagnostics
    (orthogonality and f residual on up to 5000 training points).

    Parameters
    ----------
    problem : Problem
    backends : sequence of names or Backend instances
    **options
        ``{name: {keyword: value}}`` options for backends given by name, e.g.
        ``operon={"generations": 50}``.

    Examples
    --------
    >>> import numpy as np, sympy as sp
    >>> from symqp.library import poly
    >>> x, y = sp.symbols("x y")
    >>> X = np.random.default_rng(0).uniform(-1, 1, (200, 2))
    >>> g = np.column_stack([-X[:, 1], X[:, 0]])
    >>> pb = Problem(X, -X + g, (X**2).sum(1) / 2, g, poly((x, y), 2))
    >>> c = compare_fits(pb, ["sr3", "stlsq"], sr3={"threshold": 0.05}, stlsq={"threshold": 0.05})
    >>> [r["n_terms"] for r in c.rows]
    [4, 4]
    """
    if not isinstance(problem, Problem):
        raise BackendError(f"expected a Problem, got {type(problem).__name__}")
    if isinstance(backends, (str, Backend)):
        backends = [backends]
    if not backends:
        raise BackendError("no backends to compare")
    names = [b if isinstance(b, str) else (b.name or type(b).__name__) for b in backends]
    if len(set(names)) != len(names):
        raise BackendError(f"a backend is listed twice: {', '.join(names)}")
    unknown = set(options) - {n for n, b in zip(names, backends) if isinstance(b, str)}
    if unknown:
        raise BackendError(f"options for backends not compared: {', '.join(sorted(unknown))}")
    for key, val in options.items():
        if not isinstance(val, dict):
            raise BackendError(f"options for backend {key!r} must be a dict of keyword arguments")
    rows: list[dict[str, Any]] = []
    fits: dict[str, Fit] = {}
    # unknown names and bad options fail here, before any fitting
    instances = [get_backend(b, **options.get(n, {})) if isinstance(b, str) else b for n, b in zip(names, backends)]
    for name, inst in zip(names, instances):
        t0 = time.perf_counter()
        row: dict[str, Any] = {"name": name, "error": None}
        try:
            fit = fit_problem(inst, problem)
        except SymqpError as exc:  # missing dependency or a failed search: a row, not a stop
            row.update({"wall_s": time.perf_counter() - t0, "error": str(exc)})
            rows.append(row)
            continue
        fits[name] = fit
        row.update({"U": fit.U, "n_terms": sum(_terms(e) for e in (fit.V, *fit.g)), "wall_s": time.perf_counter() - t0})
        row.update({key: fit.diagnostics[key] for key in ("train_error", "val_error", "orthogonality", "f_residual")})
        rows.append(row)
    return Comparison(rows, fits)


def _terms(expr) -> int:
    import sympy as sp

    expr = sp.expand(expr)
    return 0 if expr == 0 else len(sp.Add.make_args(expr))
