"""From identified V and g (data coordinates) to a :class:`~symqp.result.Result` with metrics.

Shared by every route: U = 2V with its constant fixed so that min U over the data region is
0, the figures of merit every result carries, and the quality verdict.

Metrics (all routes)
    ``orthogonality``: mean |cos(∇V, g)| over the region points (0 for an exact
    decomposition); ``hj_residual``: RMS of |∇V|² + f·∇V over RMS |f|² on the region points
    (0 for an exact quasipotential; scale-free); ``val_one_step_rel``: one RK4 step of the
    symbolic f on held-out pairs, mean squared error over the mean squared displacement
    (both divided by h²); ``u_shift``, ``box``, ``n_val_pairs``; ``quality``: ``"ok"`` or
    ``"poor: <reasons>"`` (see :data:`QUALITY_LIMITS`), repeated as a warning on stderr.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import sympy as sp

from .._numeric import rk4_step
from ..result import Result
from ._region import min_over_region

__all__ = ["QUALITY_LIMITS", "build_result", "field_metrics", "one_step_rel"]

_CHUNK = 50_000

# A result is flagged "poor" when one of its own figures passes these limits.
QUALITY_LIMITS = {
    # mean |cos(grad V, g)|: an orthogonal decomposition has 0; 0.2 is ~11 degrees off on average
    "orthogonality": 0.2,
    # RMS HJ residual relative to |f|^2: U = 2V is not a quasipotential of f
    "hj_residual": 0.2,
    # held-out one-step error of f over the one of the reference model (network or free fit)
    "one_step_ratio": 2.0,
}


def one_step_rel(F: Any, x0: np.ndarray, xh: np.ndarray, h: float) -> float:
    """One RK4 step of ``F`` ((n, d) -> (n, d)) on pairs: mean |Δ|² error over mean |x_h − x_0|².

    Examples
    --------
    >>> x0 = np.linspace(-1, 1, 11)[:, None]
    >>> round(one_step_rel(lambda X: -X, x0, x0 * np.exp(-0.1), 0.1), 12)
    0.0
    """
    ref = float(np.mean(np.sum((xh - x0) ** 2, axis=1)))
    with np.errstate(all="ignore"):
        pred = rk4_step(F, np.asarray(x0, dtype=float), h)
        err = float(np.mean(np.sum((pred - xh) ** 2, axis=1)))
    return err / ref if ref > 0 else err


def field_metrics(grad_V: np.ndarray, g: np.ndarray, *, floor: Any = 0.0) -> dict[str, float]:
    """Orthogonality and scale-free HJ residual from ∇V and g at points (both (n, d)).

    ``orthogonality`` is the mean |cos(∇V, g)| over the points where both ∇V and g exceed
    1e-6 of the RMS speed |f| and ``floor`` (a number or one per point): the angle of a
    vanishing vector is noise (for a gradient field g = 0 up to round-off, or up to the
    uncertainty of f); ``hj_residual`` the RMS of |∇V|² + f·∇V = g·∇V over the mean |f|².

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(50, 2))
    >>> m = field_metrics(X, np.c_[-X[:, 1], X[:, 0]])
    >>> round(m["orthogonality"], 12), round(m["hj_residual"], 12)
    (0.0, 0.0)
    >>> field_metrics(X, 1e-12 * X)["orthogonality"]  # g is round-off: nothing to measure
    0.0
    """
    with np.errstate(all="ignore"):
        f = g - grad_V
        f2 = float(np.mean(np.sum(f * f, axis=1)))
        floor = np.maximum(1e-6 * np.sqrt(f2), floor)
        nv, ng = np.linalg.norm(grad_V, axis=1), np.linalg.norm(g, axis=1)
        dot = np.sum(grad_V * g, axis=1)
        ok = (nv > floor) & (ng > floor)
        cos = np.abs(dot[ok]) / (nv[ok] * ng[ok])
        # |grad V|^2 + f . grad V = g . grad V
        rms = float(np.sqrt(np.mean(dot**2)))
        hj = rms / f2 if f2 > 0 else rms
    return {"orthogonality": float(cos.mean()) if cos.size else 0.0, "hj_residual": hj}


def _normalised_U(V: sp.Expr, syms: tuple[sp.Symbol, ...], X: np.ndarray) -> tuple[sp.Expr, float]:
    """U = 2V − min over the region; a round-off constant left by the shift is dropped."""
    U0 = sp.expand(2 * V)
    shift = min_over_region(U0, syms, X)
    U = sp.expand(U0 - sp.Float(shift)) if shift != 0.0 else U0
    # the constant only fixes min U = 0; a remainder at the minimiser's resolution (relative
    # to the largest coefficient) carries no information and would read as a spurious term
    const = U.as_coeff_Add()[0]
    floats = [abs(float(c)) for c in sp.Poly(U, *syms).coeffs()] if U.is_polynomial(*syms) else []
    if const != 0 and floats and abs(float(const)) < 1e-9 * max(floats):
        U = sp.expand(U - const)
    return U, shift


def _quality(metrics: Mapping[str, Any], reference_one_step: float | None) -> str:
    reasons = []
    lim = QUALITY_LIMITS
    if metrics.get("orthogonality", 0.0) > lim["orthogonality"]:
        reasons.append(f"grad V and g are far from orthogonal (mean |cos| {metrics['orthogonality']:.2g})")
    if metrics.get("hj_residual", 0.0) > lim["hj_residual"]:
        reasons.append(f"U does not solve the Hamilton-Jacobi equation (residual {metrics['hj_residual']:.2g})")
    err = metrics.get("val_one_step_rel")
    if err is not None and reference_one_step is not None and reference_one_step > 0:
        ratio = err / reference_one_step
        if ratio > lim["one_step_ratio"]:
            reasons.append(f"held-out one-step error {ratio:.3g}x that of the reference model")
    return "ok" if not reasons else "poor: " + "; ".join(reasons)


def build_result(
    names: tuple[str, ...],
    V: sp.Expr,
    g: tuple[sp.Expr, ...],
    *,
    region: np.ndarray,
    val: Any = None,
    reference_one_step: float | None = None,
    metrics: Mapping[str, Any] | None = None,
    timings: Mapping[str, float] | None = None,
    verbose: bool = True,
    g_floor: Any = 0.0,
    **result_fields: Any,
) -> Result:
    """The Result of a route: U normalised over ``region``, shared metrics, quality verdict.

    ``val`` holds out pairs (``x0``, ``xh``, ``h``) for the one-step error;
    ``reference_one_step`` is the same figure for the route's reference model (the network,
    or a free regression of f), against which the quality verdict is taken. ``g_floor``: |g|
    and |∇V| below which an angle is not measured, one number or one per region point (on
    noisy data, the uncertainty of f there: a g at that level is noise, and its direction
    says nothing).
    ``result_fields`` go to :class:`~symqp.result.Result` (``backend``, ``library``, ``fit``,
    ``decomposition``, ``tau``, ``model``).
    """
    t0 = time.perf_counter()
    syms = tuple(sp.Symbol(n) for n in names)
    U, shift = _normalised_U(V, syms, region)
    res = Result.from_expressions(names, sp.expand(U / 2), g=g, **result_fields)
    res.U = U
    t_asm = time.perf_counter() - t0
    t0 = time.perf_counter()
    out: dict[str, Any] = dict(metrics or {})
    out["box"] = [[float(lo), float(hi)] for lo, hi in zip(region.min(axis=0), region.max(axis=0))]
    out.update(field_metrics(res.grad_V_numpy(region), res.g_numpy(region), floor=g_floor))
    if val is not None and val.n > 0:
        rng = np.random.default_rng(0)
        j = np.arange(val.n) if val.n <= _CHUNK else np.sort(rng.choice(val.n, _CHUNK, replace=False))
        x0, xh = np.asarray(val.x0)[j], np.asarray(val.xh)[j]
        out["val_one_step_rel"] = one_step_rel(res.f_numpy, x0, xh, float(val.h))
        out["n_val_pairs"] = int(j.size)
    out["u_shift"] = float(shift)
    out["quality"] = _quality(out, reference_one_step)
    if out["quality"] != "ok" and verbose:
        print(f"warning: the identified model looks {out['quality']}", file=sys.stderr, flush=True)
    res.metrics = out
    tm = dict(timings or {})
    tm["assemble"] = t_asm
    tm["metrics"] = time.perf_counter() - t0
    res.timings = tm
    return res

