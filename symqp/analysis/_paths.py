"""Minimum action paths (geometric minimum action method) on a symbolic vector field.

Convention. With ``dx = f dt + sqrt(eps) dW`` the Freidlin-Wentzell action of a path is
``S_T[phi] = 1/2 int_0^T |phi' - f(phi)|^2 dt`` and transition probabilities scale like
``exp(-S/eps)``. Minimising over the duration T gives the geometric action
``S[phi] = int (|f||phi'| - f.phi') ds`` (any parametrisation s). The quasipotential is the
minimal action, ``U(x) - U(m) = min S`` over paths from the minimum m to x, and the
invariant density is ``~ exp(-U/eps)``: this is the paper's U = 2V. Hence the barrier from a
minimum over a saddle is ``dU = U(saddle) - U(min) = S_min``, and ``dV = S_min / 2``. The
statement "2 x action = dU" holds when the action is normalised for noise ``sqrt(2 eps)``,
``1/4 int |phi' - f|^2 dt`` (equivalently, when the action is measured in units of V).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp
from scipy import optimize

from .._errors import AnalysisError
from .._numeric import numpy_function
from ._common import as_model, numpy_field

__all__ = ["MinimumActionPath", "geometric_action", "minimum_action_path"]


@dataclass(frozen=True)
class MinimumActionPath:
    """Discrete minimum action path and its geometric action (``= dU`` to the saddle)."""

    path: np.ndarray
    action: float
    segment_action: np.ndarray
    iterations: int

    @property
    def uphill_action(self) -> float:
        """Action of the segments where the path climbs against f (the uphill part)."""
        return float(np.sum(self.segment_action[self.segment_action > 0]))


def _jacobian_batch(model):
    """``J(X) -> (n, d, d)``: the Jacobian of f at every row of X."""
    return numpy_function(sp.Matrix(model.f).jacobian(model.variables), model.variables)


def _action_and_grad(phi: np.ndarray, F, Jb, want_grad: bool = True, tiny: float = 1e-300):
    D = np.diff(phi, axis=0)
    M = 0.5 * (phi[1:] + phi[:-1])
    fm = F(M)
    nf = np.linalg.norm(fm, axis=1)
    nd = np.linalg.norm(D, axis=1)
    seg = nf * nd - np.sum(fm * D, axis=1)
    S = float(np.sum(seg))
    if not want_grad:
        return S, seg
    a = (nf / np.maximum(nd, tiny))[:, None] * D - fm
    J = Jb(M)
    w = (nd / np.maximum(nf, tiny))[:, None] * fm - D
    b = np.einsum("nij,ni->nj", J, w)
    g = np.zeros_like(phi)
    g[1:] += a + 0.5 * b
    g[:-1] += -a + 0.5 * b
    return S, seg, g[1:-1]


def _reparametrise(phi: np.ndarray, n: int) -> np.ndarray:
    seg = np.linalg.norm(np.diff(phi, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] <= 0:
        raise AnalysisError("the path endpoints coincide")
    t = np.linspace(0.0, s[-1], n)
    return np.stack([np.interp(t, s, phi[:, k]) for k in range(phi.shape[1])], axis=1)


def _gmam(knots, n_images, F, Jb, rounds, maxiter, tol):
    d = knots.shape[1]
    phi = _reparametrise(knots, n_images + 1)
    prev = np.inf
    it = 0
    for _ in range(rounds):
        def fun(z, phi=phi):
            P = phi.copy()
            P[1:-1] = z.reshape(-1, d)
            S, _, g = _action_and_grad(P, F, Jb)
            return S, g.ravel()

        res = optimize.minimize(fun, phi[1:-1].ravel(), jac=True, method="L-BFGS-B",
                                options={"maxiter": maxiter, "gtol": 1e-12, "ftol": 1e-15})
        it += int(res.nit)
        phi[1:-1] = res.x.reshape(-1, d)
        phi = _reparametrise(phi, n_images + 1)
        S, _ = _action_and_grad(phi, F, Jb, want_grad=False)
        if not np.isfinite(S):
            raise AnalysisError("the action became non-finite; check f and the end points")
        if abs(prev - S) <= tol * max(1.0, abs(S)):
            break
        prev = S
    return phi, it


def geometric_action(obj: Any, path: np.ndarray, f: Sequence[Any] | None = None,
                     variables: Sequence[Any] | None = None) -> float:
    """Geometric action ``sum |f(m)||dphi| - f(m).dphi`` of a discrete path (midpoint rule).

    Examples
    --------
    >>> import sympy as sp, numpy as np
    >>> x = sp.Symbol("x")
    >>> path = np.linspace(0, 1, 201)[:, None]        # uphill against f = -2x: dU = x^2
    >>> round(geometric_action(None, path, [-2 * x], [x]), 6)
    2.0
    """
    model = as_model(obj, f, variables, need_f=True)
    P = np.asarray(path, float)
    if P.ndim != 2 or P.shape[1] != model.d or P.shape[0] < 2:
        raise AnalysisError(f"path must have shape (n >= 2, {model.d}), got {P.shape}")
    S, _ = _action_and_grad(P, numpy_field(model), None, want_grad=False)
    return S


def minimum_action_path(
    obj: Any,
    start: Any,
    end: Any,
    f: Sequence[Any] | None = None,
    variables: Sequence[Any] | None = None,
    *,
    via: Any = None,
    n_images: int = 200,
    rounds: int = 20,
    maxiter: int = 100,
    tol: float = 1e-6,
) -> MinimumActionPath:
    """Minimum action path from ``start`` to ``end`` by the geometric minimum action method.

    The discrete geometric action (midpoint rule, see module docstring for the convention:
    ``dU = U(saddle) - U(min) = action``) is minimised over the interior images with L-BFGS
    and an analytic gradient (symbolic Jacobian of f), alternating with re-parametrisation
    to equal arc length, until the action changes by less than ``tol`` (relative).

    Parameters
    ----------
    obj
        A result/system object, or None/U with ``f`` and ``variables`` given.
    start, end
        End points (d,), typically a minimum and a saddle or two minima.
    via
        Optional saddle the path must pass: the legs start->via and via->end are optimised
        separately (recommended between two minima; the downhill leg has action ~0).
    n_images
        Number of segments.

    Examples
    --------
    >>> import sympy as sp, numpy as np
    >>> x, y = sp.symbols("x y")
    >>> V = (x**2 - 1)**2 / 4 + y**2 / 2                 # rotated gradient, U = 2V
    >>> gV = [sp.diff(V, v) for v in (x, y)]
    >>> f = [-gV[0] - gV[1] / 2, -gV[1] + gV[0] / 2]
    >>> mp = minimum_action_path(None, [-1, 0], [1, 0], f, [x, y], via=[0, 0], n_images=100)
    >>> bool(abs(mp.action - 0.5) < 5e-3)                 # dU = 2 (V(0) - V(-1)) = 1/2
    True
    """
    # Small L-BFGS-B problems run ~10x slower when BLAS spreads them over threads (measured
    # on 2 shared cores), so the optimisation runs single-threaded.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _minimum_action_path(obj, start, end, f, variables, via=via, n_images=n_images,
                                    rounds=rounds, maxiter=maxiter, tol=tol)


def _minimum_action_path(obj, start, end, f, variables, *, via, n_images, rounds, maxiter, tol):
    model = as_model(obj, f, variables, need_f=True)
    d = model.d
    a = np.asarray(start, float).ravel()
    b = np.asarray(end, float).ravel()
    if a.shape != (d,) or b.shape != (d,):
        raise AnalysisError(f"start and end must be points of dimension {d}")
    if n_images < 4:
        raise AnalysisError(f"n_images must be at least 4, got {n_images}")
    F = numpy_field(model)
    Jb = _jacobian_batch(model)
    if via is not None:
        # through a saddle: optimise both legs separately (the path must pass the saddle)
        c = np.asarray(via, float).ravel()
        if c.shape != (d,):
            raise AnalysisError(f"via must be a point of dimension {d}")
        n1 = max(4, n_images // 2)
        p1, it1 = _gmam(np.array([a, c]), n1, F, Jb, rounds, maxiter, tol)
        p2, it2 = _gmam(np.array([c, b]), max(4, n_images - n1), F, Jb, rounds, maxiter, tol)
        phi, it = np.concatenate([p1, p2[1:]]), it1 + it2
    else:
        phi, it = _gmam(np.array([a, b]), n_images, F, Jb, rounds, maxiter, tol)
    S, seg = _action_and_grad(phi, F, Jb, want_grad=False)
    return MinimumActionPath(phi, float(S), seg, it)
