"""Refinement of sparse candidate models on the snapshot pairs themselves.

The regression backends fit the library to the *network's* decomposition [f_θ, V_θ, g_θ];
the network is only as accurate as its training, so the coefficients inherit its error and
the selection of a support on the Pareto front inherits its bias. The data are better than
that: for each candidate support we re-estimate the coefficients by minimising, over the
coefficients of V and g on that support only,

    mean |(RK4_h[f](x_0) − x_h)/h|² / mean |Y|²  +  λ · mean cos²(∇V, g),

with f = −∇V + g exact in the coefficients (the gradient maps of the library), i.e. the
training loss of the decomposition with the network replaced by the symbolic model and a
fourth-order step instead of the midpoint rule. The problem is solved by a Gauss–Newton
iteration: with the RK4 stage points frozen the step is *linear* in the coefficients, and the
orthogonality term is linearised about the current estimate; the stage points are then
recomputed. A few iterations converge (the stages move by O(h) of the change).

Each refined candidate is scored by its one-step error on held-out pairs, and the simplest
candidate within a tolerance of the best is chosen: selection on data, not on network output.
This is a least-squares polish on a fixed support; it never adds terms.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy as sp

__all__ = ["coefficients_in_library", "refine_fit"]


def coefficients_in_library(expr: sp.Expr, index: dict[sp.Expr, int], q: int) -> np.ndarray | None:
    """Coefficients of ``expr`` on the library terms (``index``: term -> column), or None.

    None when some additive term of the expanded expression is not a multiple of a library
    term (e.g. an evolutionary backend's model outside the library span).

    Examples
    --------
    >>> x, y = sp.symbols("x y")
    >>> coefficients_in_library(2*x**2 - y + 0.5, {sp.S.One: 0, x**2: 1, y: 2}, 3)
    array([ 0.5,  2. , -1. ])
    """
    a = np.zeros(q)
    for term in sp.Add.make_args(sp.expand(expr)):
        if term == 0:
            continue
        c, b = term.as_coeff_Mul()
        i = index.get(b)
        if i is None or not c.is_number:
            return None
        a[i] += float(c)
    return a


@dataclasses.dataclass
class _Refined:
    a: np.ndarray  # (q,) coefficients of V (constant kept from the candidate)
    C: np.ndarray  # (q, d) coefficients of g
    train_error: float
    val_error: float
    iterations: int
    complexity: int


class _Field:
    """Θ and ∂Θ/∂x_k of a library at points, and f = −∇V + g from coefficients."""

    def __init__(self, lib: Any, cols: np.ndarray, *, with_V: bool = True, centred: bool = False) -> None:
        self.lib = lib
        self.centred = centred  # predict pairs by the centred map (symqp.identify._onestep)
        self.cols = cols  # library columns that any candidate uses
        self.d = len(lib.variables)
        # without V (f fitted as g alone) the derivatives of Θ are never needed: skipping them
        # saves d of the d + 1 library evaluations at every stage point
        self.with_V = with_V
        # Θ, ∂Θ at the fixed point sets (training, held-out, orthogonality points), which every
        # candidate and every Gauss–Newton iteration evaluates again; stage points are not kept
        self._kept: list[tuple[np.ndarray, np.ndarray, list[np.ndarray]]] = []

    def parts(self, X: np.ndarray, *, keep: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        for Xk, T, D in self._kept:
            if Xk is X:
                return T, D
        T = np.asarray(self.lib.evaluate(X), dtype=float)[:, self.cols]
        D = [
            np.asarray(self.lib.evaluate_derivative(X, k), dtype=float)[:, self.cols] if self.with_V else None
            for k in range(self.d)
        ]
        if keep:
            self._kept.append((X, T, D))
        return T, D

    @staticmethod
    def field(T: np.ndarray, D: list[np.ndarray], a: np.ndarray, C: np.ndarray) -> np.ndarray:
        return np.column_stack([T @ C[:, k] - (D[k] @ a if D[k] is not None else 0.0) for k in range(len(D))])

    def step(self, X0: np.ndarray, XH: np.ndarray, h: float, a: np.ndarray, C: np.ndarray, *,
             with_parts: bool = False):  # fmt: skip
        """The one-step map of the pairs: RK4 from x_0, or the centred map (noisy pairs)."""
        if not self.centred:
            return self.rk4(X0, h, a, C, with_parts=with_parts)
        M = 0.5 * (X0 + XH)
        c = M
        for _ in range(2):  # the mid-time point, as in symqp.identify._onestep.FieldMap.centre
            ip = self.rk4(c, 0.5 * h, a, C, keep=False)[0]
            im = self.rk4(c, -0.5 * h, a, C, keep=False)[0]
            c = M - (0.25 * h) * (ip - im)
        ip, Tp, Dp = self.rk4(c, 0.5 * h, a, C, with_parts=with_parts, keep=False)
        im, Tm, Dm = self.rk4(c, -0.5 * h, a, C, with_parts=with_parts, keep=False)
        if not with_parts:
            return 0.5 * (ip + im), None, None
        D = None if Dp is None else [0.5 * (u + v) for u, v in zip(Dp, Dm)]
        return 0.5 * (ip + im), 0.5 * (Tp + Tm), D

    def rk4(self, X0: np.ndarray, h: float, a: np.ndarray, C: np.ndarray, *, with_parts: bool = False,
            keep: bool = True):  # fmt: skip
        """(RK4 increment / h, stage-averaged Θ, stage-averaged ∂Θ) for coefficients a, C."""
        w = (1.0, 2.0, 2.0, 1.0)
        shift = (0.0, 0.5, 0.5, 1.0)
        k_prev = None
        incr = np.zeros_like(X0)
        Tbar = Dbar = None
        for wi, si in zip(w, shift):
            S = X0 if k_prev is None else X0 + (si * h) * k_prev
            T, D = self.parts(S, keep=keep and k_prev is None)
            k = self.field(T, D, a, C)
            incr += wi * k
            if with_parts:
                Tbar = wi * T if Tbar is None else Tbar + wi * T
                if D[0] is not None:
                    Dbar = [wi * Dk for Dk in D] if Dbar is None else [Db + wi * Dk for Db, Dk in zip(Dbar, D)]
            k_prev = k
        incr /= 6.0
        if with_parts:
            Tbar /= 6.0
            Dbar = None if Dbar is None else [Db / 6.0 for Db in Dbar]
        return incr, Tbar, Dbar


def _rel_step_error(field: _Field, X0: np.ndarray, XH: np.ndarray, h: float, a: np.ndarray, C: np.ndarray) -> float:
    Y = (XH - X0) / h
    with np.errstate(all="ignore"):
        incr, _, _ = field.step(X0, XH, h, a, C)
        err = float(np.sqrt(np.mean(np.sum((incr - Y) ** 2, axis=1)) / np.mean(np.sum(Y * Y, axis=1))))
    return err if math.isfinite(err) else math.inf


def _refine_one(
    field: _Field,
    a0: np.ndarray,
    C0: np.ndarray,
    X0: np.ndarray,
    XH: np.ndarray,
    h: float,
    Xs: np.ndarray,
    *,
    lam: float,
    max_iter: int,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Gauss–Newton polish of (a, C) on the fixed support of (a0, C0); see the module docstring."""
    d = field.d
    n = X0.shape[0]
    Y = (XH - X0) / h
    y2 = float(np.mean(np.sum(Y * Y, axis=1)))
    sv = np.flatnonzero(a0 != 0)
    sg = [np.flatnonzero(C0[:, k] != 0) for k in range(d)]
    # the constant of V has no gradient: it is not an unknown
    const = [i for i in sv if not np.any([field.lib.derivative_terms(k)[field.cols[i]] != 0 for k in range(d)])]
    sv = np.array([i for i in sv if i not in const], dtype=int)
    n_unk = sv.size + sum(s.size for s in sg)
    if n_unk == 0:
        return a0, C0, 0
    a, C = a0.copy(), C0.copy()
    w_pred = 1.0 / math.sqrt(n * y2)
    Ts, Ds = field.parts(Xs, keep=True) if lam > 0 else (None, None)
    it = 0
    for it in range(1, max_iter + 1):
        _, Tb, Db = field.step(X0, XH, h, a, C, with_parts=True)
        blocks = []
        rhs = []
        for k in range(d):
            A = np.zeros((n, n_unk))
            if sv.size:
                A[:, : sv.size] = -Db[k][:, sv]
            off = sv.size + sum(s.size for s in sg[:k])
            A[:, off : off + sg[k].size] = Tb[:, sg[k]]
            blocks.append(w_pred * A)
            rhs.append(w_pred * Y[:, k])
        if lam > 0 and sv.size and any(s.size for s in sg):
            gv = np.column_stack([Ds[k] @ a for k in range(d)])
            gg = np.column_stack([Ts @ C[:, k] for k in range(d)])
            den = np.linalg.norm(gv, axis=1) * np.linalg.norm(gg, axis=1) + 1e-3 * y2
            wo = math.sqrt(lam / Xs.shape[0]) / den
            A = np.zeros((Xs.shape[0], n_unk))
            A[:, : sv.size] = sum(Ds[k][:, sv] * gg[:, [k]] for k in range(d))
            for k in range(d):
                off = sv.size + sum(s.size for s in sg[:k])
                A[:, off : off + sg[k].size] = Ts[:, sg[k]] * gv[:, [k]]
            blocks.append(wo[:, None] * A)
            rhs.append(wo * np.sum(gv * gg, axis=1))
        A = np.vstack(blocks)
        b = np.concatenate(rhs)
        scale = np.linalg.norm(A, axis=0)
        scale[scale == 0] = 1.0
        u = np.linalg.lstsq(A / scale, b, rcond=None)[0] / scale
        if not np.all(np.isfinite(u)):
            break
        a_new, C_new = a.copy(), C.copy()
        a_new[sv] = u[: sv.size]
        for k in range(d):
            off = sv.size + sum(s.size for s in sg[:k])
            C_new[sg[k], k] = u[off : off + sg[k].size]
        change = max(np.max(np.abs(a_new - a), initial=0.0), np.max(np.abs(C_new - C), initial=0.0))
        size = max(np.max(np.abs(a_new), initial=0.0), np.max(np.abs(C_new), initial=0.0), 1e-300)
        a, C = a_new, C_new
        if change <= 1e-12 * size:
            break
    return a, C, it


def refine_fit(
    fit_: Any,
    lib: Any,
    *,
    X0: np.ndarray,
    XH: np.ndarray,
    h: float,
    X0_val: np.ndarray | None = None,
    XH_val: np.ndarray | None = None,
    lam: float = 1.0,
    rel_tol: float = 0.1,
    abs_tol: float = 1e-5,
    max_iter: int = 8,
    max_candidates: int = 16,
    max_points: int = 6000,
    V_target: np.ndarray | None = None,
    max_v_departure: float = 0.25,
    seed: int = 0,
    centred: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """Polish every candidate of a backend's Pareto front on the pairs and re-select.

    Parameters
    ----------
    fit_
        A backend :class:`~symqp.backends.Fit` whose expressions are in ``lib``'s variables.
    lib
        The library of the problem.
    X0, XH, h
        Training pairs (the regression region) and their time step.
    X0_val, XH_val
        Held-out pairs for the selection; ``None``: a fifth of the training pairs.
    lam
        Weight of the orthogonality term (mean cos²) against the relative one-step error.
    rel_tol, abs_tol
        Choose the simplest candidate whose held-out relative one-step error is at most
        ``(1 + rel_tol)·best + abs_tol``. ``abs_tol`` (10 ppm of the step by default) makes
        models equivalent that differ only at the level of the integrator's truncation
        error, which a denser model can partly absorb on noise-free simulated data; on
        measured data the noise level dominates and ``rel_tol`` decides.
    max_points
        At most this many training and held-out pairs are used (random subsample).
    V_target, max_v_departure
        The decomposition's V at ``X0``. When the library can hold f entirely in g (for
        instance f polynomial and g in a polynomial library of the same degree), the pairs
        cannot tell V from g and the orthogonality term alone admits the trivial V = 0;
        candidates whose refined V departs from ``V_target`` (RMS after removing the mean,
        relative to its spread) by more than ``max_v_departure`` are therefore not chosen,
        and if none remains the backend's model is kept unrefined.
    centred
        Predict each pair by the centred one-step map of :mod:`symqp.identify._onestep`
        (from the mid-time point found from the midpoint) instead of an RK4 step from x_0:
        with measurement noise on the snapshots the step from x_0 puts the noise of x_0 in
        the regressors and, with the opposite sign, in the target (a bias of −σ²/h per unit
        derivative: Maier–Stein's f off by 1.09 at σ = 1e−2); the centred map's regressors
        depend on the midpoint alone, whose noise is independent of that of x_h − x_0.

    Returns
    -------
    (Fit, info)
        A new Fit (same backend, refined chosen model, refined front) and a summary dict;
        ``fit_`` itself when no candidate is in the library span.
    """
    t0 = time.perf_counter()
    d = len(lib.variables)
    q = len(lib)
    coefs = _coefficients_of_front(fit_, lib, max_candidates)
    if not coefs:
        return fit_, {"refined": False, "reason": "no candidate lies in the library span"}
    if not np.any(XH != X0):
        return fit_, {"refined": False, "reason": "the pairs do not move (x_h = x_0): nothing to refine on"}

    rng = np.random.default_rng(seed)
    Vt = None if V_target is None else np.asarray(V_target, dtype=float).reshape(-1)
    if X0_val is None or XH_val is None or len(X0_val) < 10:
        perm = rng.permutation(X0.shape[0])
        n_va = max(10, X0.shape[0] // 5)
        X0_val, XH_val = X0[perm[:n_va]], XH[perm[:n_va]]
        X0, XH = X0[perm[n_va:]], XH[perm[n_va:]]
        Vt = None if Vt is None else Vt[perm[n_va:]]
    if X0.shape[0] > max_points:
        keep = rng.choice(X0.shape[0], size=max_points, replace=False)
        X0, XH = X0[keep], XH[keep]
        Vt = None if Vt is None else Vt[keep]
    if X0_val.shape[0] > max_points:
        keep = rng.choice(X0_val.shape[0], size=max_points, replace=False)
        X0_val, XH_val = X0_val[keep], XH_val[keep]
    Xs = X0[rng.choice(X0.shape[0], size=min(2000, X0.shape[0]), replace=False)]

    used = np.flatnonzero(np.any([np.abs(a) + np.abs(C).sum(1) for _, a, C in coefs], axis=0))
    field = _Field(lib, used, with_V=any(np.any(a != 0) for _, a, _ in coefs), centred=centred)
    pos = {c: i for i, c in enumerate(used)}
    refined: list[tuple[Any, _Refined]] = []
    # simplest first: once a refined candidate is within abs_tol of a perfect held-out fit, no
    # denser one can be chosen (the rule takes the simplest within (1 + rel_tol) best + abs_tol
    # and best >= 0), so the rest are not refined -- the dense ends of a front cost the most
    coefs.sort(key=lambda c: int(np.count_nonzero(c[1]) + np.count_nonzero(c[2])))
    for cand, a, C in coefs:
        if refined and Vt is None and refined[-1][1].val_error <= abs_tol:
            break
        ar, Cr = a[used], C[used]
        ar, Cr, it = _refine_one(field, ar, Cr, X0, XH, h, Xs, lam=lam, max_iter=max_iter)
        tr = _rel_step_error(field, X0, XH, h, ar, Cr)
        va = _rel_step_error(field, X0_val, XH_val, h, ar, Cr)
        a_full = np.zeros(q)
        C_full = np.zeros((q, d))
        for c, i in pos.items():
            a_full[c], C_full[c] = ar[i], Cr[i]
        cx = int(np.count_nonzero(a_full) + np.count_nonzero(C_full))
        refined.append((cand, _Refined(a_full, C_full, tr, va, it, cx)))

    ok = [(c, r) for c, r in refined if math.isfinite(r.val_error)]
    if Vt is not None and np.std(Vt) > 0:
        T0 = field.parts(X0, keep=True)[0]

        def departure(r: _Refined) -> float:
            dv = T0 @ r.a[used] - Vt
            return float(np.std(dv) / np.std(Vt))

        ok = [(c, r) for c, r in ok if departure(r) <= max_v_departure]
    if not ok:
        return fit_, {
            "refined": False,
            "reason": "no refined candidate keeps a finite held-out error and a V close to the decomposition's",
        }
    best = min(r.val_error for _, r in ok)
    eligible = [(c, r) for c, r in ok if r.val_error <= (1.0 + rel_tol) * best + abs_tol]
    cand, pick = min(eligible, key=lambda cr: (cr[1].complexity, cr[1].val_error))
    pick, n_pruned = _prune(
        field, pos, pick, X0, XH, h, Xs, X0_val, XH_val,
        lam=lam, max_iter=max_iter, limit=(1.0 + rel_tol) * best + abs_tol,
    )  # fmt: skip

    from ..backends import Candidate

    def exprs(r: _Refined) -> tuple[sp.Expr, tuple[sp.Expr, ...]]:
        V = lib.expression(r.a)
        g = lib.expression(r.C)
        return sp.sympify(V), tuple(sp.sympify(e) for e in (g if isinstance(g, tuple) else (g,)))

    new_front = []
    for c, r in refined:
        V, g = exprs(r)
        params = dict(getattr(c, "params", {}) or {}) if c is not None else {}
        params.update(refined_on_data=True, data_train_error=r.train_error, data_val_error=r.val_error)
        if c is not None:  # the backend's own errors on the decomposition's targets
            params.update(backend_train_error=float(c.train_error), backend_val_error=float(c.val_error))
        new_front.append(Candidate(r.complexity, r.train_error, r.val_error, V, g, params))
    V, g = exprs(pick)
    variables = tuple(lib.variables)
    grad_V = tuple(sp.expand(sp.diff(V, v)) for v in variables)
    f = tuple(sp.expand(-a + b) for a, b in zip(grad_V, g))
    Dm = lib.gradient_maps()
    coef = np.zeros((q, 2 * d + 1))
    for k in range(d):
        coef[:, k] = -(Dm[k] @ pick.a) + pick.C[:, k]
    coef[:, d] = pick.a
    coef[:, d + 1 :] = pick.C
    info = {
        "refined": True,
        "n_candidates": len(refined),
        "chosen_complexity": pick.complexity,
        "chosen_val_error": pick.val_error,
        "best_val_error": best,
        "iterations": pick.iterations,
        "pruned_terms": n_pruned,
        "seconds": time.perf_counter() - t0,
    }
    diagnostics = dict(getattr(fit_, "diagnostics", {}) or {})
    diagnostics["refinement"] = info
    selection = (
        f"{fit_.selection}; then every candidate refined on the pairs (RK4 one-step error + orthogonality) "
        f"and the simplest within {rel_tol:.0%} + {abs_tol:g} of the best held-out one-step error chosen"
    )
    timings = dict(getattr(fit_, "timings", {}) or {})
    timings["refine"] = info["seconds"]
    new = dataclasses.replace(
        fit_, V=V, grad_V=grad_V, g=g, f=f, coef=coef, front=new_front, selection=selection,
        timings=timings, diagnostics=diagnostics,
    )  # fmt: skip
    return new, info


def _coefficients_of_front(fit_: Any, lib: Any, max_candidates: int) -> list[tuple[Any, np.ndarray, np.ndarray]]:
    """(candidate, a (q,), C (q, d)) for the front's candidates in the library span (at most
    ``max_candidates``, spread over the front, the chosen model always among them)."""
    d, q = len(lib.variables), len(lib)
    index = {sp.expand(t): i for i, t in enumerate(lib.terms)}
    chosen_expr = (fit_.V, tuple(fit_.g))
    pool: list[tuple[Any, tuple[sp.Expr, tuple[sp.Expr, ...]]]] = [
        (c, (c.V, tuple(c.g))) for c in list(getattr(fit_, "front", None) or [])
    ]
    if not any(e == chosen_expr for _, e in pool):
        pool.append((None, chosen_expr))
    coefs = []
    for cand, (V, g) in pool if len(pool) <= max_candidates else _spread(pool, max_candidates):
        a = coefficients_in_library(V, index, q)
        Cs = [coefficients_in_library(gk, index, q) for gk in g]
        if a is None or any(c is None for c in Cs) or len(Cs) != d:
            continue
        coefs.append((cand, a, np.column_stack(Cs)))
    return coefs


def _prune(
    field: _Field,
    pos: dict[int, int],
    pick: _Refined,
    X0: np.ndarray,
    XH: np.ndarray,
    h: float,
    Xs: np.ndarray,
    X0_val: np.ndarray,
    XH_val: np.ndarray,
    *,
    lam: float,
    max_iter: int,
    limit: float,
    small: float = 1e-3,
    max_tries: int = 12,
) -> tuple[_Refined, int]:
    """Backward elimination of negligible terms from the chosen model.

    A candidate found on network targets can keep a term whose refined coefficient is tiny
    (its share of the velocity below ``small``, relative to the RMS velocity). Each such term,
    smallest first, is removed and the model refined again; the removal is kept when the
    held-out one-step error stays within ``limit`` (the selection tolerance).
    """
    used = np.array(sorted(pos), dtype=int)
    T, D = field.parts(X0, keep=True)
    Y = (XH - X0) / h
    y_rms = math.sqrt(float(np.mean(np.sum(Y * Y, axis=1)))) or 1.0
    t_rms = np.sqrt(np.mean(T * T, axis=0))
    d_rms = np.sqrt(sum(np.mean(Dk * Dk, axis=0) for Dk in D)) if field.with_V else np.zeros(T.shape[1])
    kept: set[tuple[str, int, int]] = set()
    n_pruned = 0
    batch = True  # first try to drop every negligible term at once, then one at a time
    for _ in range(max_tries + 1):
        shares = []
        for i_full, i in pos.items():
            if pick.a[i_full] != 0 and d_rms[i] > 0 and ("v", i_full, 0) not in kept:
                shares.append((abs(pick.a[i_full]) * d_rms[i] / y_rms, ("v", i_full, 0)))
            for k in range(field.d):
                if pick.C[i_full, k] != 0 and ("g", i_full, k) not in kept:
                    shares.append((abs(pick.C[i_full, k]) * t_rms[i] / y_rms, ("g", i_full, k)))
        shares = [sh for sh in shares if sh[0] < small]
        if not shares:
            break
        drop = [key for _, key in shares] if batch and len(shares) > 1 else [min(shares)[1]]
        a = pick.a[used].copy()
        C = pick.C[used].copy()
        for which, i_full, k in drop:
            if which == "v":
                a[pos[i_full]] = 0.0
            else:
                C[pos[i_full], k] = 0.0
        a, C, it = _refine_one(field, a, C, X0, XH, h, Xs, lam=lam, max_iter=max_iter)
        va = _rel_step_error(field, X0_val, XH_val, h, a, C)
        if not va <= limit:
            if not batch or len(drop) == 1:
                kept.add(drop[0])
            batch = False
            continue
        batch = False
        a_full = np.zeros_like(pick.a)
        C_full = np.zeros_like(pick.C)
        a_full[used], C_full[used] = a, C
        cx = int(np.count_nonzero(a_full) + np.count_nonzero(C_full))
        pick = _Refined(a_full, C_full, _rel_step_error(field, X0, XH, h, a, C), va, it, cx)
        n_pruned += len(drop)
    return pick, n_pruned


def _spread(pool: Sequence[Any], m: int) -> list[Any]:
    """At most m entries of pool, evenly spread, always keeping the last (the chosen model)."""
    idx = np.unique(np.linspace(0, len(pool) - 1, m).round().astype(int))
    return [pool[i] for i in idx]
