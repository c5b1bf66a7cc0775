"""Several backends on one :class:`Problem`: a comparison table and a Pareto plot."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from symqp._errors import BackendError, MissingDependencyError, SymqpError

from ._base import Backend, get_backend
from ._problem import Fit, Problem, f_residual, orthogonality_residual

__all__ = ["Comparison", "compare_fits", "plot_pareto"]

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
    and bad options raise :class:`~symqp.BackendError` before anything is fitted.

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
    X_check = problem.X[: min(problem.n, 5000)]
    # unknown names and bad options fail here, before any fitting
    instances = [get_backend(b, **options.get(n, {})) if isinstance(b, str) else b for n, b in zip(names, backends)]
    for name, inst in zip(names, instances):
        t0 = time.perf_counter()
        row: dict[str, Any] = {"name": name, "error": None}
        try:
            fit = inst.fit(problem)
        except (MissingDependencyError, SymqpError) as exc:
            row.update({"wall_s": time.perf_counter() - t0, "error": str(exc)})
            rows.append(row)
            continue
        wall = time.perf_counter() - t0
        fits[name] = fit
        chosen = _chosen_candidate(fit)
        row.update({
            "U": fit.U,
            "n_terms": sum(_terms(e) for e in (fit.V, *fit.g)),
            "train_error": fit.diagnostics.get("train_error", chosen.train_error if chosen else float("nan")),
            "val_error": fit.diagnostics.get("val_error", chosen.val_error if chosen else float("nan")),
            "orthogonality": orthogonality_residual(fit.V, fit.g, problem.variables, X_check),
            "f_residual": f_residual(fit.f, problem.variables, X_check, problem.f[: X_check.shape[0]]),
            "wall_s": wall,
        })
        rows.append(row)
    return Comparison(rows, fits)


def _terms(expr) -> int:
    import sympy as sp

    expr = sp.expand(expr)
    return 0 if expr == 0 else len(sp.Add.make_args(expr))


def _chosen_candidate(fit: Fit):
    for c in fit.front:
        if c.V == fit.V and tuple(c.g) == tuple(fit.g):
            return c
    return None


def plot_pareto(fits: Sequence[Fit] | dict[str, Fit] | Comparison, path: str | Path) -> Path:
    """Plot complexity against validation error (training error where there is none)
    of every backend's Pareto front and write the figure to ``path`` (PNG, PDF, SVG).

    The chosen model of each backend is circled. The figure is drawn without pyplot
    (Agg canvas) and the file is written atomically.
    """
    if isinstance(fits, Comparison):
        items = list(fits.fits.items())
    elif isinstance(fits, dict):
        items = list(fits.items())
    else:
        items = [(getattr(f, "backend", "") or f"fit {i}", f) for i, f in enumerate(fits)]
    if not items:
        raise BackendError("no fits to plot")
    for name, f in items:
        if not isinstance(f, Fit):
            raise BackendError(f"plot_pareto expects Fit objects, got {type(f).__name__} for {name!r}")
    path = Path(path)
    if path.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise BackendError(f"unsupported figure format {path.suffix!r} (use .png, .pdf or .svg)")
    # a bare Figure renders with the Agg canvas and never touches pyplot's global state
    from matplotlib.figure import Figure

    from symqp._io import atomic_write

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    floor = 1e-17
    any_val = False
    for name, f in items:
        pts = []
        for c in f.front:
            val = c.val_error if math.isfinite(c.val_error) else c.train_error
            any_val |= math.isfinite(c.val_error)
            if math.isfinite(val):
                pts.append((c.complexity, max(val, floor)))
        if not pts:
            continue
        pts.sort()
        line = ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=name)[0]
        chosen = _chosen_candidate(f)
        if chosen is not None:
            val = chosen.val_error if math.isfinite(chosen.val_error) else chosen.train_error
            if math.isfinite(val):
                ax.plot([chosen.complexity], [max(val, floor)], "o", ms=14, mfc="none", color=line.get_color())
    ax.set_yscale("log")
    ax.set_xlabel("complexity (terms of V and g)")
    ax.set_ylabel("validation error" if any_val else "training error")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format=path.suffix.lower().lstrip("."))
    return path
