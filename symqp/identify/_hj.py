"""V from the Hamilton–Jacobi equation in a library, normalised at every stable state.

With f = −∇V + g and g·∇V = 0, V solves |∇V|² + f·∇V = 0 (U = 2V). V = const solves it too;
the local theory at each stable equilibrium x* of f removes that: with J = Df(x*) Hurwitz,
the Hessian of U at x* is Σ⁻¹ where Σ solves the Lyapunov equation J Σ + Σ Jᵀ = −I, so

    ∇V(x*) = 0,   ∇²V(x*) = Σ⁻¹ / 2,

linear equality constraints on the coefficients a of V = Θ a. They hold for Freidlin's
global quasipotential too (near each stable state W = W(x*) + U_{x*}), so every stable state
of the data region contributes its own. V is then the constrained least-squares solution of

    min_a  Σ_i  (∇V(x_i)·(∇V(x_i) + f(x_i)))² / (|f(x_i)|² + δ)²     s.t.  C a = e,

(the residual divided by |f|², which is scale-free and keeps the points near the equilibria,
where both vanish quadratically, in balance with the rest), parametrised on the null space
of C (a = a_p + N z, as in the constrained SR3 backend) and solved by a trust-region
Gauss–Newton method (:func:`scipy.optimize.least_squares`) started from the minimum-norm
solution of the constraints, i.e. from the local quadratics. A sparse support is found by
thresholding the terms' shares of ∇V and selected on the HJ residual at held-out points.

Everything here works in the (scaled) coordinates of the library; the gradient maps D_k of
the library give ∂_kΘ = Θ D_k and ∂_l∂_kΘ = Θ D_l D_k exactly.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy as sp

from .._errors import AnalysisError, IdentificationError

__all__ = ["HJSolution", "StableState", "lyapunov_hessian", "solve_hj", "stable_states"]


@dataclasses.dataclass(frozen=True)
class StableState:
    """A stable equilibrium of f with its Lyapunov normalisation (library coordinates)."""

    x: np.ndarray
    jacobian: np.ndarray
    hessian_V: np.ndarray  # ∇²V(x*) = Σ⁻¹ / 2
    kind: str


def lyapunov_hessian(J: np.ndarray, B: np.ndarray | None = None) -> np.ndarray:
    """∇²V at a stable state with Jacobian ``J``: Σ⁻¹/2 where J Σ + Σ Jᵀ = −B Bᵀ (B = I).

    Examples
    --------
    Example 1 of the seed paper at (1, 0, 0): ∇²V = diag(4, 1, 1).

    >>> J = np.array([[-4.0, -1, -1], [4, -1, 0], [4, 0, -1]])
    >>> np.round(lyapunov_hessian(J), 12)
    array([[ 4.,  0.,  0.],
           [ 0.,  1., -0.],
           [ 0., -0.,  1.]])
    """
    from scipy.linalg import solve_continuous_lyapunov

    J = np.asarray(J, dtype=float)
    d = J.shape[0]
    Q = np.eye(d) if B is None else np.asarray(B, dtype=float) @ np.asarray(B, dtype=float).T
    eig = np.linalg.eigvals(J)
    if not np.all(eig.real < 0):
        raise IdentificationError(f"the Lyapunov normalisation needs a stable state; Df has eigenvalues {eig}")
    with np.errstate(all="ignore"):
        S = solve_continuous_lyapunov(J, -Q)
    S = 0.5 * (S + S.T)
    w = np.linalg.eigvalsh(S) if np.all(np.isfinite(S)) else np.array([np.nan])
    if not np.all(np.isfinite(w)) or w.min() <= 0 or w.max() / w.min() > 1e12:
        raise IdentificationError(
            "the Lyapunov equation J S + S J^T = -I is singular at a stable state "
            f"(eigenvalues of Df {np.round(eig, 6)}): the state is too close to non-hyperbolic"
        )
    H = np.linalg.inv(S)
    return 0.5 * (H + H.T) / 2.0


def stable_states(f: Sequence[sp.Expr], variables: Sequence[sp.Symbol], box: np.ndarray, *,
                  seed: int = 0, n_starts: int = 400) -> tuple[list[StableState], list[Any]]:  # fmt: skip
    """The stable equilibria of f in ``box`` with their Lyapunov Hessians, and all equilibria.

    Raises IdentificationError when f has no stable equilibrium in the box.
    """
    from ..analysis import stationary_points

    try:
        pts = stationary_points(None, list(f), list(variables), box=box, seed=seed, n_starts=n_starts)
    except AnalysisError as exc:
        raise IdentificationError(f"no stable equilibrium of the identified f in the data region ({exc})") from None
    J = sp.Matrix(list(f)).jacobian(list(variables))
    from .._numeric import numpy_function

    Jf = numpy_function(J, variables)
    states = []
    for p in pts:
        if p.kind.startswith("stable"):
            Jx = Jf(p.x)
            states.append(StableState(np.asarray(p.x, float), Jx, lyapunov_hessian(Jx), p.kind))
    if not states:
        kinds = ", ".join(sorted({p.kind for p in pts}))
        raise IdentificationError(
            f"no stable equilibrium of the identified f in the data region (found {len(pts)}: {kinds})"
        )
    return states, pts


@dataclasses.dataclass
class HJSolution:
    """Coefficients of V over the library (constant 0), with its residuals."""

    a: np.ndarray
    train_residual: float
    val_residual: float
    support: np.ndarray
    cost_evaluations: int


class HJProblem:
    """The weighted HJ least-squares problem of V in the columns ``vcols`` of a library."""

    def __init__(self, lib: Any, vcols: np.ndarray, states: Sequence[StableState]) -> None:
        self.lib = lib
        self.d = len(lib.variables)
        D = [Dk.tocsr() for Dk in lib.gradient_maps()]
        self.D = D
        # terms with a gradient: the constant is fixed afterwards (min U = 0)
        has_grad = np.zeros(len(lib), bool)
        for Dk in D:
            has_grad |= np.asarray(abs(Dk).sum(axis=0)).ravel() > 0
        self.vcols = np.array([j for j in vcols if has_grad[j]], dtype=int)
        if self.vcols.size == 0:
            raise IdentificationError("the library of V has no term with a nonzero gradient")
        self.C, self.e = self._constraints(states)

    def gradients(self, Theta: np.ndarray) -> np.ndarray:
        """∂_kθ_j at the points, shape (d, n, q_V), from Θ (n, q) of the full library."""
        return np.stack([np.asarray(Dk[:, self.vcols].T @ Theta.T).T for Dk in self.D])

    def _constraints(self, states: Sequence[StableState]) -> tuple[np.ndarray, np.ndarray]:
        rows, rhs = [], []
        for st in states:
            th = np.asarray(self.lib.evaluate(st.x[None, :], backend="numpy"), float)  # (1, q)
            for k, Dk in enumerate(self.D):
                rows.append(np.asarray(Dk[:, self.vcols].T @ th[0]).ravel())  # ∂_k V(x*) = 0
                rhs.append(0.0)
                for l_ in range(k, self.d):
                    DlDk = self.D[l_] @ Dk
                    rows.append(np.asarray(DlDk[:, self.vcols].T @ th[0]).ravel())
                    rhs.append(float(st.hessian_V[k, l_]))
        return np.array(rows), np.array(rhs)

    def solve(self, G: np.ndarray, F: np.ndarray, w: np.ndarray, support: np.ndarray,
              a0: np.ndarray | None = None) -> tuple[np.ndarray, int] | None:  # fmt: skip
        """Constrained least squares on ``support`` (indices into vcols); None if infeasible."""
        from scipy.optimize import least_squares

        C = self.C[:, support]
        a_p, *_ = np.linalg.lstsq(C, self.e, rcond=None)
        scale = max(1.0, float(np.abs(self.e).max()))
        if np.linalg.norm(C @ a_p - self.e) > 1e-8 * scale * math.sqrt(len(self.e)):
            return None  # the support cannot meet the normalisation at the stable states
        # null space of C (rows of C are few: d + d(d+1)/2 per stable state)
        _, s, Vt = np.linalg.svd(C, full_matrices=True)
        rank = int(np.sum(s > 1e-10 * (s[0] if s.size else 1.0)))
        N = Vt[rank:].T
        Gs = np.ascontiguousarray(G[:, :, support])  # (d, n, m)
        sw = np.sqrt(w)
        if a0 is not None:
            z0 = N.T @ (a0[support] - a_p)
        else:
            z0 = np.zeros(N.shape[1])
        if N.shape[1] == 0:
            return a_p, 0

        Ft = np.ascontiguousarray(F.T)  # (d, n)
        GN = Gs @ N  # (d, n, k): the gradient of V is linear in z

        def grad_v(z: np.ndarray) -> np.ndarray:
            return Gs @ a_p + GN @ z  # (d, n)

        def fun(z: np.ndarray) -> np.ndarray:
            gv = grad_v(z)
            return sw * np.sum(gv * (gv + Ft), axis=0)

        def jac(z: np.ndarray) -> np.ndarray:
            c = 2.0 * grad_v(z) + Ft
            return sw[:, None] * np.einsum("dn,dnk->nk", c, GN, optimize=True)

        # MINPACK's Levenberg–Marquardt: measured on Example 1 (20000 points, 55 terms) it
        # reaches the exact V from the constraints' minimum-norm solution in 11 evaluations;
        # the trust-region reflective method with Jacobian scaling stalled at a residual of 0.04
        n_res, n_par = F.shape[0], N.shape[1]
        method = "lm" if n_res >= n_par else "trf"
        sol = least_squares(fun, z0, jac=jac, method=method, xtol=1e-15, ftol=1e-15, gtol=1e-15,
                            max_nfev=100 * (n_par + 1))  # fmt: skip
        return a_p + N @ sol.x, int(sol.nfev)


def _weights(F: np.ndarray) -> np.ndarray:
    f2 = np.sum(F * F, axis=1)
    delta = 1e-3 * float(np.mean(f2)) if np.any(f2 > 0) else 1.0
    return 1.0 / (f2 + delta) ** 2


def _gradient_start(problem: HJProblem, G: np.ndarray, F: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Coefficients (over vcols) of the weighted least squares of ∇V = −f under C a = e."""
    sw = np.sqrt(w)
    A = np.concatenate([G[k] * sw[:, None] for k in range(G.shape[0])])
    b = -np.concatenate([F[:, k] * sw for k in range(G.shape[0])])
    a_p, *_ = np.linalg.lstsq(problem.C, problem.e, rcond=None)
    _, s, Vt = np.linalg.svd(problem.C, full_matrices=True)
    N = Vt[int(np.sum(s > 1e-10 * (s[0] if s.size else 1.0))) :].T
    z, *_ = np.linalg.lstsq(A @ N, b - A @ a_p, rcond=None)
    return a_p + N @ z


def hj_residual(G: np.ndarray, F: np.ndarray, a: np.ndarray, support: np.ndarray) -> float:
    """RMS of (∇V·(∇V + f)) / (|f|² + δ) at the points (the objective, scale-free)."""
    gv = G[:, :, support] @ a  # (d, n)
    r = np.sum(gv * (gv + F.T), axis=0) * np.sqrt(_weights(F))
    return float(np.sqrt(np.mean(r * r)))


def solve_hj(
    problem: HJProblem,
    G: np.ndarray,
    F: np.ndarray,
    G_val: np.ndarray,
    F_val: np.ndarray,
    *,
    rel_tol: float = 0.1,
    abs_tol: float = 1e-6,
    min_share: float = 1e-8,
) -> tuple[HJSolution, list[HJSolution]]:
    """V on the full library of V, then on sparser supports; the simplest good one is chosen.

    ``G``/``F``: ∂Θ_V (d, n, q_V) and f (n, d) at the region points; ``*_val`` the same at
    held-out points. Supports: the terms whose share of ∇V (|a_j| RMS|∂θ_j| / RMS|∇V|)
    is above a threshold, for thresholds from ``min_share`` up; the chosen one is the
    sparsest whose held-out residual is within ``(1 + rel_tol)·best + abs_tol``.
    """
    w = _weights(F)
    m = problem.vcols.size
    full = np.arange(m)
    first = problem.solve(G, F, w, full)
    if first is None:
        raise IdentificationError("the library of V cannot meet the Lyapunov normalisation at the stable states")
    # the objective is not convex: Levenberg–Marquardt from the constraints' minimum-norm
    # solution stopped in a local minimum on Maier–Stein in the coordinates x~ = 2x (HJ
    # residual 0.13); from the convex least squares of ∇V = −f under the constraints (exact
    # for a gradient field) it reached the exact V. Both starts are tried; the lower residual wins.
    second = problem.solve(G, F, w, full, a0=_gradient_start(problem, G, F, w))
    if second is not None and hj_residual(G, F, second[0], full) < hj_residual(G, F, first[0], full):
        first = second
    a, nfev = first
    sols = [HJSolution(a, hj_residual(G, F, a, full), hj_residual(G_val, F_val, a, full), full, nfev)]
    grad_rms = np.sqrt(np.mean(np.sum(G * G, axis=0), axis=0))  # (q_V,)
    while sols[-1].support.size > 1:
        cur = sols[-1]
        share = np.abs(cur.a) * grad_rms[cur.support]
        share /= float(np.sqrt(np.sum(share**2))) or 1.0
        # drop every negligible term at once, else the one with the smallest share
        keep = share >= min_share if np.any(share < min_share) else share > share.min()
        support = cur.support[keep]
        if support.size == 0 or support.size == cur.support.size:
            break
        a_start = np.zeros(m)
        a_start[cur.support] = cur.a
        got = problem.solve(G, F, w, support, a0=a_start)
        if got is None:
            break  # the smaller support cannot meet the normalisation at the stable states
        a_s, nfev = got
        sols.append(HJSolution(a_s, hj_residual(G, F, a_s, support), hj_residual(G_val, F_val, a_s, support),
                               support, nfev))  # fmt: skip
        best = min(s.val_residual for s in sols)
        if sols[-1].val_residual > 10 * ((1 + rel_tol) * best + abs_tol):
            break  # removing terms has started to cost: the rest only gets worse
    best = min(s.val_residual for s in sols)
    ok = [s for s in sols if s.val_residual <= (1 + rel_tol) * best + abs_tol]
    pick = min(ok, key=lambda s: (s.support.size, s.val_residual))
    return pick, sols
