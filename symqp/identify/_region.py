"""The region where a model is fitted, and the exact power-of-two scaling of the problem.

Scaling. For polynomial (monomial) libraries the regression runs in scaled coordinates
x~ = x / s and scaled outputs V~ = c V / s**2, f~ = c f / s, g~ = c g / s, where s and c
are powers of two chosen from the data (s ~ RMS of x, c such that RMS |f~| ~ 1). This keeps
the decomposition exact (f~ = -grad~ V~ + g~, and g~ . grad~ V~ = (c/s)**2 g . grad V), makes
thresholds scale-free (Example 2 of the paper has states ~1e-2 and V ~1e-8), maps monomials
to monomials (so sparsity is unchanged) and, because s and c are powers of two, scaling and
mapping back are exact in floating point. The time unit changes too: t~ = t c, so pairs
(x0, xh) with step h map to (x0/s, xh/s) with step h c. No centring is applied: a shift
would turn x**4 into a dense quartic and destroy the sparsity pattern. Other libraries
(trigonometric, rational) are not scale-covariant, so only the output scale c is used.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy as sp

from .._errors import BackendError, DataError
from .._numeric import numpy_function
from ._settings import pow2

__all__ = ["Scaling", "balanced_subsample", "choose_tau", "min_over_region"]

_DEFAULT_QUANTILE = 0.95
_MIN_POINTS = 200


def choose_tau(V: Any, *, quantile: float = _DEFAULT_QUANTILE, min_points: int = _MIN_POINTS) -> float:
    """Sublevel threshold tau (an offset above min V) from the values of V on the data.

    The regression should stay where the model is reliable, i.e. where the data are; far
    from the attractors the data are scarce and a learned V extrapolates (paper, Sec. 2.3).
    The rule is scale-free: tau is the ``quantile`` of V over the data points minus its
    minimum, so ``{V < min V + tau}`` holds that fraction of the data and drops the sparsely
    sampled outskirts. It is raised if needed so that at least ``min_points`` points remain.
    On Example 1 of the paper (data as in App. B) the 0.95 quantile gives tau ~ 0.5, a region
    holding both minima and the saddle (the paper used 2, i.e. 99.98 % of the data); it
    adapts to the scale of V (Example 2 has V ~ 1e-8).

    Examples
    --------
    >>> V = np.linspace(0.0, 1.0, 1001) ** 2
    >>> round(choose_tau(V, quantile=0.5), 6)
    0.25
    """
    V = np.asarray(V, dtype=float).ravel()
    V = V[np.isfinite(V)]
    if V.size == 0:
        raise DataError("cannot choose tau: no finite values of V on the data")
    if not 0.0 < quantile <= 1.0:
        raise DataError(f"tau quantile must be in (0, 1], got {quantile}")
    vmin = float(V.min())
    q = max(quantile, min(1.0, min_points / V.size))
    tau = float(np.quantile(V, q)) - vmin
    if tau <= 0.0:  # flat V: keep everything
        tau = float(V.max() - vmin) or 1.0
    # strict inequality below: nudge so that the quantile point itself is kept
    return float(np.nextafter(tau, np.inf))


def balanced_subsample(X: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of at most ``m`` points, spreading them evenly over space.

    The points are binned on a grid over their bounding box and each cell keeps at most k
    random points, with the smallest k that gives m points. Trajectory data pile up at the
    attractors (on Example 1 half the points have V < 1e-3); a plain random subsample would
    weight a least-squares fit almost entirely there, which conditions the higher-order
    terms badly.

    Examples
    --------
    >>> X = np.r_[np.zeros((900, 1)), np.linspace(1, 2, 100)[:, None]]
    >>> idx = balanced_subsample(X, 100, np.random.default_rng(0))
    >>> idx.size, int((X[idx, 0] > 0).sum()) > 50
    (100, True)
    """
    n, d = X.shape
    if n <= m:
        return np.arange(n)
    bins = max(2, int(round((m / 4.0) ** (1.0 / d))))
    lo, hi = X.min(axis=0), X.max(axis=0)
    width = np.where(hi > lo, hi - lo, 1.0)
    idx = np.clip(((X - lo) / width * bins).astype(np.int64), 0, bins - 1)
    cell = np.ravel_multi_index(tuple(idx.T), (bins,) * d)
    perm = rng.permutation(n)
    order = perm[np.argsort(cell[perm], kind="stable")]
    cs = cell[order]
    starts = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1]])
    counts = np.diff(np.r_[starts, n])
    rank = np.arange(n) - np.repeat(starts, counts)
    # smallest cap k with sum(min(counts, k)) >= m
    lo_k, hi_k = 1, int(counts.max())
    while lo_k < hi_k:
        mid = (lo_k + hi_k) // 2
        if np.minimum(counts, mid).sum() >= m:
            hi_k = mid
        else:
            lo_k = mid + 1
    k = lo_k
    keep = order[rank < k - 1]
    edge = order[rank == k - 1]
    need = m - keep.size
    if need > 0:
        keep = np.concatenate([keep, rng.choice(edge, size=min(need, edge.size), replace=False)])
    return np.sort(keep)


def _monomial_degrees(terms: Sequence[sp.Expr], syms: Sequence[sp.Symbol]) -> list[int] | None:
    """Total degree of each term if every term is a single monomial, else None."""
    degs = []
    sset = set(syms)
    for t in terms:
        if not t.free_symbols <= sset or not t.is_polynomial(*syms):
            return None
        p = sp.Poly(t, *syms)
        if len(p.terms()) != 1:
            return None
        degs.append(int(p.total_degree()))
    return degs


@dataclasses.dataclass(frozen=True)
class Scaling:
    """Exact power-of-two scaling of a problem (module docstring): x~ = x 2**-s, t~ = t 2**c.

    Examples
    --------
    >>> from symqp.library import poly
    >>> x = sp.Symbol("x")
    >>> X = np.array([[0.01], [-0.02]])
    >>> sc = Scaling.choose(poly([x], 2), ("x",), X, f_rms=1e-4)
    >>> sc.s_exp, sc.c_exp
    (-6, 7)
    >>> sc.to_data_V(x**2)  # V~ = x~**2 is V = 2**(2s - c) (x / 2**s)**2 = 2**-c x**2
    x**2/128
    """

    names: tuple[str, ...]
    variables: tuple[sp.Symbol, ...]  # the library's symbols
    s_exp: int
    c_exp: int
    degrees: list[int] | None

    @classmethod
    def choose(cls, lib: Any, names: Sequence[str], X: np.ndarray, f_rms: float) -> Scaling:
        """Scales from the region points ``X`` and the RMS speed ``f_rms`` there."""
        syms = tuple(lib.variables)
        degrees = _monomial_degrees(lib.terms, syms)
        s_exp = pow2(float(np.sqrt(np.max(np.mean(X**2, axis=0))))) if degrees is not None else 0
        c_exp = pow2(2.0**s_exp / f_rms) if f_rms > 0 else 0
        return cls(tuple(names), syms, s_exp, c_exp, degrees)

    # data -> scaled problem
    def scale_x(self, X: np.ndarray | None) -> np.ndarray | None:
        return None if X is None else np.ldexp(X, -self.s_exp)

    def scale_V(self, V: np.ndarray | None) -> np.ndarray | None:
        return None if V is None else np.ldexp(V, self.c_exp - 2 * self.s_exp)

    def scale_field(self, F: np.ndarray | None) -> np.ndarray | None:
        return None if F is None else np.ldexp(F, self.c_exp - self.s_exp)

    def scale_h(self, h: float) -> float:
        return math.ldexp(h, -self.c_exp)

    # scaled problem -> data
    def unscale(self, expr: sp.Expr, out_exp: int) -> sp.Expr:
        """Map an expression of the scaled problem back to data coordinates (exact)."""
        plain = {s: sp.Symbol(n) for s, n in zip(self.variables, self.names)}
        e = sp.sympify(expr).xreplace(plain)
        if self.s_exp:
            two_s = sp.Integer(2) ** self.s_exp
            e = e.xreplace({sp.Symbol(n): sp.Symbol(n) / two_s for n in self.names})
        return sp.expand(e * sp.Integer(2) ** out_exp) if out_exp else sp.expand(e)

    @property
    def kv(self) -> int:
        return 2 * self.s_exp - self.c_exp  # V = 2**kv * V~(x / s)

    @property
    def kg(self) -> int:
        return self.s_exp - self.c_exp  # g = 2**kg * g~(x / s)

    def to_data_V(self, expr: sp.Expr) -> sp.Expr:
        return self.unscale(expr, self.kv)

    def to_data_g(self, exprs: Sequence[sp.Expr]) -> tuple[sp.Expr, ...]:
        return tuple(self.unscale(e, self.kg) for e in exprs)

    def to_data_coef(self, coef: np.ndarray | None) -> np.ndarray | None:
        """Coefficient matrix [f | V | g] (q, 2d+1) of the scaled problem in data units."""
        if coef is None:
            return None
        coef = np.array(coef, dtype=float, copy=True)
        d = len(self.names)
        deg = np.asarray(self.degrees if self.degrees is not None else [0] * coef.shape[0])
        if coef.shape == (deg.size, 2 * d + 1):
            kg, kv, s = self.kg, self.kv, self.s_exp
            coef[:, :d] = np.ldexp(coef[:, :d], (kg - s * deg)[:, None])
            coef[:, d] = np.ldexp(coef[:, d], kv - s * deg)
            coef[:, d + 1 :] = np.ldexp(coef[:, d + 1 :], (kg - s * deg)[:, None])
        return coef

    def to_data_fit(self, fit_: Any) -> Any:
        """A backend Fit with every expression (and the coefficients) in data coordinates."""
        V = self.to_data_V(fit_.V)
        g = self.to_data_g(fit_.g)
        syms = tuple(sp.Symbol(n) for n in self.names)
        grad_V = tuple(sp.expand(sp.diff(V, s)) for s in syms)
        f = tuple(sp.expand(-a + b) for a, b in zip(grad_V, g))
        front = [
            dataclasses.replace(c, V=self.to_data_V(c.V), g=self.to_data_g(c.g))
            for c in getattr(fit_, "front", None) or []
        ]
        diagnostics = dict(getattr(fit_, "diagnostics", {}) or {})
        diagnostics["scaling"] = {"x_scale_log2": self.s_exp, "out_scale_log2": self.c_exp}
        return dataclasses.replace(
            fit_, V=V, grad_V=grad_V, g=g, f=f, front=front,
            coef=self.to_data_coef(getattr(fit_, "coef", None)), diagnostics=diagnostics,
        )  # fmt: skip


def min_over_region(U: sp.Expr, syms: tuple[sp.Symbol, ...], X: np.ndarray) -> float:
    """Minimum of U over the data region: best data point, refined by a bounded local search.

    Examples
    --------
    >>> x = sp.Symbol("x")
    >>> round(min_over_region((x - 0.3) ** 2 + 1, (x,), np.linspace(-1, 1, 11)[:, None]), 9)
    1.0
    """
    from scipy.optimize import minimize

    fU = numpy_function(U, syms)
    grad = numpy_function([sp.diff(U, s) for s in syms], syms)
    u = fU(X)
    if not np.any(np.isfinite(u)):
        raise BackendError("the symbolic U is not finite anywhere on the data")
    i0 = int(np.nanargmin(np.where(np.isfinite(u), u, np.nan)))
    best = float(u[i0])
    lo, hi = X.min(axis=0), X.max(axis=0)

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        return float(fU(x)), grad(x)

    with np.errstate(all="ignore"):
        try:
            res = minimize(fun, X[i0], jac=True, method="L-BFGS-B", bounds=list(zip(lo, hi)))
            if np.isfinite(res.fun) and res.fun < best:
                best = float(res.fun)
        except (ValueError, ArithmeticError):
            pass
    return best
