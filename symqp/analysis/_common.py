"""Shared input handling for the analysis functions.

Every analysis function accepts either a fitted result (anything with ``variables``, ``U``
and ``f`` attributes, such as :class:`symqp.result.Result` or a :class:`symqp.systems.System`)
or plain SymPy objects. These helpers turn both into one canonical form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from .._errors import AnalysisError
from .._numeric import numpy_function
from .._parse import name_problem, parse_expr_safe

__all__ = ["Model", "as_model", "check_box", "check_eps", "numpy_field"]


@dataclass(frozen=True)
class Model:
    """Canonical analysis input: symbols, U (may be None) and f (may be None)."""

    variables: tuple[sp.Symbol, ...]
    U: sp.Expr | None
    f: tuple[sp.Expr, ...] | None
    box: np.ndarray | None = None

    @property
    def d(self) -> int:
        return len(self.variables)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(str(v) for v in self.variables)


def _symbols(variables: Sequence[Any]) -> tuple[sp.Symbol, ...]:
    out = []
    for v in variables:
        if not isinstance(v, (str, sp.Symbol)):
            raise AnalysisError(f"variable {v!r} is neither a SymPy Symbol nor a valid name")
        problem = name_problem(v if isinstance(v, str) else v.name)
        if problem:
            raise AnalysisError(f"variable name {problem}")
        out.append(sp.Symbol(v) if isinstance(v, str) else v)
    if not out:
        raise AnalysisError("no variables given")
    if len(set(out)) != len(out):
        raise AnalysisError(f"duplicate variable names in {[str(v) for v in out]}")
    return tuple(out)


def _expr(e: Any, syms: tuple[sp.Symbol, ...], what: str) -> sp.Expr:
    if isinstance(e, str):
        return parse_expr_safe(e, syms)
    if isinstance(e, (int, float)):
        return sp.Float(e) if isinstance(e, float) else sp.Integer(e)
    if not isinstance(e, sp.Expr):
        raise AnalysisError(f"{what} must be a SymPy expression, got {type(e).__name__}")
    extra = e.free_symbols - set(syms)
    if extra:
        raise AnalysisError(
            f"{what} uses symbols {sorted(map(str, extra))} that are not among the variables "
            f"{[str(s) for s in syms]}"
        )
    return e


def _box_from(obj: Any) -> np.ndarray | None:
    box = getattr(obj, "box", None)
    if box is not None:
        return np.asarray(box, dtype=float)
    metrics = getattr(obj, "metrics", None)
    if isinstance(metrics, dict):
        for key in ("box", "data_box", "region"):
            if key in metrics:
                try:
                    return np.asarray(metrics[key], dtype=float)
                except (TypeError, ValueError):
                    return None
    return None


def as_model(
    obj: Any,
    f: Sequence[Any] | None = None,
    variables: Sequence[Any] | None = None,
    *,
    need_U: bool = False,
    need_f: bool = False,
) -> Model:
    """Normalise ``(Result)`` or ``(U, f, variables)`` into a :class:`Model`.

    ``obj`` is a result-like object (attributes ``variables``, ``U``, ``f``), or a SymPy
    expression U (``None`` allowed when only f is needed).
    """
    if hasattr(obj, "variables") and (hasattr(obj, "U") or hasattr(obj, "field")):
        syms = _symbols(obj.variables)
        U = getattr(obj, "U", None)
        ff = getattr(obj, "f", None)
        if ff is None:
            ff = getattr(obj, "field", None)
        if f is not None:
            ff = f
        box = _box_from(obj)
    else:
        if variables is None:
            raise AnalysisError("variables must be given when U and f are SymPy expressions")
        syms = _symbols(variables)
        U, ff, box = obj, f, None
    Ue = None if U is None else _expr(U, syms, "U")
    fe = None
    if ff is not None:
        ff = list(ff)
        if len(ff) != len(syms):
            raise AnalysisError(
                f"f has {len(ff)} components but there are {len(syms)} variables"
            )
        fe = tuple(_expr(c, syms, f"f[{i}]") for i, c in enumerate(ff))
    if need_U and Ue is None:
        raise AnalysisError("this analysis needs the quasipotential U, which is missing")
    if need_f and fe is None:
        raise AnalysisError("this analysis needs the vector field f, which is missing")
    return Model(syms, Ue, fe, box)


def check_eps(eps: Any) -> list[float]:
    """Return the noise strengths as a list of positive floats or raise AnalysisError."""
    vals = np.atleast_1d(np.asarray(eps, dtype=float)).ravel()
    if vals.size == 0:
        raise AnalysisError("no noise strength epsilon given")
    for e in vals:
        if not np.isfinite(e) or e <= 0:
            raise AnalysisError(f"noise strength epsilon must be positive and finite, got {e}")
    return [float(e) for e in vals]


def check_box(box: Any, d: int) -> np.ndarray:
    """Validate a box of shape (d, 2) with low < high in every row."""
    try:
        b = np.asarray(box, dtype=float)
    except (TypeError, ValueError):
        raise AnalysisError(f"box must be numeric of shape ({d}, 2)") from None
    if b.shape == (2 * d,):
        b = b.reshape(d, 2)
    if b.shape != (d, 2):
        raise AnalysisError(f"box must have shape ({d}, 2) (low, high per variable), got {b.shape}")
    if not np.all(np.isfinite(b)):
        raise AnalysisError("box contains NaN or infinite bounds")
    bad = np.nonzero(b[:, 0] >= b[:, 1])[0]
    if bad.size:
        i = int(bad[0])
        raise AnalysisError(f"box row {i} has low >= high ({b[i, 0]} >= {b[i, 1]})")
    with np.errstate(over="ignore"):
        wide = np.nonzero(~np.isfinite(b[:, 1] - b[:, 0]))[0]
    if wide.size:
        i = int(wide[0])
        raise AnalysisError(f"box row {i} is too wide: {b[i, 1]:g} - ({b[i, 0]:g}) overflows double precision")
    return b


def numpy_field(model: Model):
    """Return ``F(X) -> (n, d)`` evaluating f on an (n, d) array (see :func:`numpy_function`)."""
    if model.f is None:
        raise AnalysisError("this analysis needs the vector field f, which is missing")
    return numpy_function(model.f, model.variables)
