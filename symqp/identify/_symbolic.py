"""The symbolic (network-free) route: f from the pairs, then V from the Hamilton–Jacobi equation.

1. **f** is identified as a sparse expression in the library that f lives in (for V in L_V
   and g in L_G that is span(L_G ∪ ∂L_V)): the regression backend chooses the support on
   midpoint targets — (x_h − x_0)/h against Θ((x_0 + x_h)/2), second order in h and free of
   the first-order errors-in-variables bias of measurement noise — and every candidate of
   its front is then re-estimated on the one-step map of an RK4 step of size h
   (:mod:`symqp.identify._refine`, the orthogonality term off), so that a large h is not a
   finite-difference error; held-out pairs choose among the candidates.
2. The equilibria of the identified f in the data region are found and classified; the
   Lyapunov equation at each stable one gives ∇V = 0 and ∇²V = Σ⁻¹/2 there.
3. V in L_V solves the HJ equation in least squares under those constraints
   (:mod:`symqp.identify._hj`); then g = f + ∇V and U = 2V with min U = 0 over the data.

Everything runs in the exactly scaled coordinates of :class:`~symqp.identify._region.Scaling`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import sympy as sp

from .._errors import IdentificationError
from .._numeric import numpy_function
from ..result import Result
from ._assemble import build_result
from ._field import f_standard_error, identify_field, noise_metrics, pairs_in
from ._hj import HJProblem, solve_hj, stable_states
from ._neural import get_backend_instance, log
from ._region import Scaling
from ._route import Route
from ._settings import FitSettings, resolve_library, split_pairs
from ._uncertainty import bootstrap_v

__all__ = ["SymbolicRoute"]

def _region_box(X: np.ndarray, margin: float = 0.05) -> np.ndarray:
    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = margin * np.where(hi > lo, hi - lo, 1.0)
    return np.column_stack([lo - pad, hi + pad])


def _fit_object(lib: Any, f_fit: Any, V: sp.Expr, g: tuple[sp.Expr, ...], a: np.ndarray, sols: list,
                problem: HJProblem, info: dict[str, Any]) -> Any:  # fmt: skip
    """A backends.Fit (scaled coordinates) holding f's front and the chosen V, g."""
    import dataclasses

    from ..backends import Candidate

    d = len(lib.variables)
    syms = tuple(lib.variables)
    grad_V = tuple(sp.expand(sp.diff(V, s)) for s in syms)
    f = tuple(sp.expand(-a_ + b) for a_, b in zip(grad_V, g))
    coef = None
    if f_fit.coef is not None:
        coef = np.zeros((len(lib), 2 * d + 1))
        coef[:, :d] = np.asarray(f_fit.coef)[:, d + 1 :]
        coef[:, d] = a
        Dm = problem.D
        coef[:, d + 1 :] = coef[:, :d] + np.column_stack([Dm[k] @ a for k in range(d)])
    front = []
    for s in sols:
        a_s = np.zeros(len(lib))
        a_s[problem.vcols[s.support]] = s.a
        front.append(Candidate(int(s.support.size), s.train_residual, s.val_residual, lib.expression(a_s), g,
                               {"hj_support": int(s.support.size)}))  # fmt: skip
    diagnostics = dict(f_fit.diagnostics or {})
    diagnostics["hj"] = info
    return dataclasses.replace(
        f_fit, V=V, grad_V=grad_V, g=g, f=f, coef=coef, front=front, diagnostics=diagnostics,
        selection=f"f: {f_fit.selection}; V: sparsest HJ solution within 10% of the best held-out HJ residual",
    )  # fmt: skip


class SymbolicRoute(Route):
    """f identified sparsely from the pairs, V from the HJ equation with Lyapunov normalisation."""

    name = "symbolic"

    def run(self, pairs: Any, settings: FitSettings) -> Result:
        from ..backends._blas import limit_blas

        # the linear algebra here is on a few dozen columns (Gram matrices, eliminations, the HJ
        # least squares): one BLAS thread, not two fighting over a busy machine (measured: the
        # bootstrap's 6000 small eigendecompositions 25 s -> under 1 s)
        with limit_blas(1):
            return self._run(pairs, settings)

    def _run(self, pairs: Any, settings: FitSettings) -> Result:
        t_all = time.perf_counter()
        timings: dict[str, float] = {}
        be, _ = get_backend_instance(settings.backend, settings.backend_options)  # fail fast
        names = tuple(str(n) for n in pairs.names)
        setup = resolve_library(settings, names)
        lib = setup.library
        train, val = split_pairs(pairs, settings)
        rng = np.random.default_rng(settings.seed)
        h = float(train.h)
        X, Xh = pairs_in(train, int(settings.max_points), rng)
        Xv = Xhv = None
        if val is not None and val.n >= 10:
            Xv, Xhv = pairs_in(val, max(10, int(settings.max_points) // 2), rng)
        moving = np.any(Xh != X, axis=1)
        if not np.any(moving):
            raise IdentificationError("the pairs do not move (x_h = x_0 everywhere): f cannot be identified")
        f_rms = float(np.sqrt(np.mean(np.sum(((Xh - X) / h) ** 2, axis=1))))
        sc = Scaling.choose(lib, names, X, f_rms)
        data = {"X": X, "Xh": Xh, "X_val": Xv, "Xh_val": Xhv, "h": h, "train": train, "val": val}
        timings["prepare"] = time.perf_counter() - t_all

        t0 = time.perf_counter()
        log(settings.verbose, f"identifying f on {X.shape[0]} pairs with {len(lib)} library terms ...")
        f_fit, f_info = identify_field(be, setup, sc, data, settings)
        f_scaled = tuple(f_fit.g)
        err2 = f_info.get("raw_rel")
        timings["field"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        syms = tuple(lib.variables)
        states, points = stable_states(f_scaled, syms, _region_box(sc.scale_x(X)), seed=settings.seed)
        timings["equilibria"] = time.perf_counter() - t0
        log(settings.verbose, f"{len(states)} stable state(s), {len(points)} equilibria in the data region")

        t0 = time.perf_counter()
        vcols = np.flatnonzero(np.ones(len(lib), bool) if setup.v_mask is None else setup.v_mask)
        problem = HJProblem(lib, vcols, states)
        F_of = numpy_function(list(f_scaled), syms)
        Xs = sc.scale_x(X)
        G, F = problem.gradients(np.asarray(lib.evaluate(Xs), float)), F_of(Xs)
        if Xv is not None:
            Xvs = sc.scale_x(Xv)
            Gv, Fv = problem.gradients(np.asarray(lib.evaluate(Xvs), float)), F_of(Xvs)
        else:
            Gv, Fv = G, F
        pick, sols = solve_hj(problem, G, F, Gv, Fv)
        a = np.zeros(len(lib))
        a[problem.vcols[pick.support]] = pick.a
        uncertainty = None
        if f_info.get("n_bootstrap"):
            t1 = time.perf_counter()
            log(settings.verbose, f"bootstrap: {f_info['n_bootstrap']} replicates of f and V ...")
            a, uncertainty = bootstrap_v(f_info, problem, G, F, Xs, states, pick, sc, seed=settings.seed)
            timings["bootstrap"] = time.perf_counter() - t1
        V_s = sp.expand(lib.expression(a))
        g_s = tuple(sp.expand(fk + sp.diff(V_s, s)) for fk, s in zip(f_scaled, syms))
        timings["hj"] = time.perf_counter() - t0
        hj_info = {"n_stable_states": len(states), "hj_residual_val": pick.val_residual,
                   "n_v_terms": int(pick.support.size), "n_candidates": len(sols)}  # fmt: skip
        fit_obj = sc.to_data_fit(_fit_object(lib, f_fit, V_s, g_s, a, sols, problem, hj_info))

        metrics: dict[str, Any] = {
            "route": "symbolic",
            "n_points": int(X.shape[0]),
            "n_train_pairs": int(train.n),
            "f_val_one_step_rel": err2,
            "n_stable_states": len(states),
            "stable_states": [np.ldexp(s.x, sc.s_exp).tolist() for s in states],
            "hj_residual_val_weighted": pick.val_residual,
            **noise_metrics(f_info, sc),
        }
        res = build_result(
            names, fit_obj.V, fit_obj.g, region=X, val=val, metrics=metrics, timings=timings,
            verbose=settings.verbose, backend=str(getattr(f_fit, "backend", "") or settings.backend),
            library=setup.spec, fit=fit_obj, model="orthogonal",
            g_floor=np.ldexp(3.0 * f_standard_error(f_info, Xs), sc.kg),
        )  # fmt: skip
        res.uncertainty = uncertainty
        return res
