"""Constrained SR3 solve: symqp's ``sr3`` against pysindy 2.x ``ConstrainedSR3``.

Example 1 of the paper with exact targets G = [f, V, g] on 50,000 points uniform in
[-2, 2] x [-1.5, 1.5]^2, library poly(5) (56 terms, Ξ is 56 x 7), l0 penalty with
threshold t = 0.1 and ν = 1e-5 (pysindy: ``reg_weight_lam = t²/(2ν)``), constraints
CΞ = 0 of the decomposition. Both solvers get the same evaluated library Θ (its
evaluation is not timed). Timed for symqp: everything the backend does numerically
(Gram matrix, factorisation, App. A start, iterations, constrained refit); for pysindy:
``ConstrainedSR3.fit(Θ, G)`` with its default iteration budget. Both run on one BLAS
thread (the setting symqp's linear backends use; see ``backends/_blas.py``).

Figures: ``sr3.speedup_vs_pysindy`` (pysindy time / symqp time), ``sr3.max_coef_err``
(max |Ξ − Ξ_exact|, exact targets), ``sr3.noisy_max_coef_err`` (targets with 1e-3
relative Gaussian noise), plus ``sr3.own_ms``, ``sr3.pysindy_ms``, ``sr3.same_support``
(1 when both find the support of the exact Ξ) and ``sr3.pysindy_max_coef_err`` /
``sr3.pysindy_noisy_max_coef_err`` for reference. Goal of the issue: >= 5x faster, same
support, max coefficient error <= 1e-9.

Run: ``python benchmarks/sr3_solve.py [--quick]``.
"""

from __future__ import annotations

import sys
import time
import warnings
from functools import partial

import numpy as np

FULL = {"n": 50_000, "degree": 5, "repeats": 5, "pysindy_repeats": 2}
QUICK = {"n": 4_000, "degree": 4, "repeats": 2, "pysindy_repeats": 1}
T, NU = 0.1, 1e-5


def _show(name: str, value: float, peer: float | None = None, label: str = "") -> None:
    ratio = f"  ({value / peer:.3g}x {label})" if peer else ""
    print(f"{name:32s} {value:.6g}{ratio}", flush=True)


def example1(n: int, degree: int, *, noise: float = 0.0, seed: int = 0):
    """Points, targets, library and the exact coefficient matrix of Example 1."""
    import sympy as sp

    from symqp.library import poly

    x, y, z = sp.symbols("x y z")
    V = (x**4 - 2 * x**2 + y**2 + z**2 + 1) / 2
    g = [-y - z, 2 * x**3 - 2 * x, 2 * x**3 - 2 * x]
    f = [sp.expand(-sp.diff(V, v) + gi) for v, gi in zip((x, y, z), g)]
    exprs = f + [V] + g
    lib = poly((x, y, z), degree)
    exact = np.zeros((len(lib), 7))
    for j, e in enumerate(exprs):
        for mono, c in sp.Poly(sp.expand(e), x, y, z).terms():
            exact[lib.index(x ** mono[0] * y ** mono[1] * z ** mono[2]), j] = float(c)
    rng = np.random.default_rng(seed)
    X = rng.uniform([-2, -1.5, -1.5], [2, 1.5, 1.5], (n, 3))
    fn = sp.lambdify((x, y, z), exprs, modules="numpy")
    G = np.column_stack([np.broadcast_to(np.asarray(c, float), (n,)) for c in fn(*X.T)])
    if noise:
        G = G * (1 + noise * rng.standard_normal(G.shape))
    return X, G, lib, exact


def own_solve(problem, Theta: np.ndarray, G: np.ndarray) -> np.ndarray:
    """The numerical part of ``SR3.fit`` for a fixed threshold: Ξ (q, 7)."""
    from symqp.backends import get_backend

    backend = get_backend("sr3", threshold=T, nu=NU)
    D = [Dk.toarray() for Dk in problem.library.gradient_maps()]
    solver = backend._solver(problem, D, Theta, G)
    run, _ = backend._one(solver, problem, D, T)
    return run.coef


def pysindy_solve(Theta: np.ndarray, G: np.ndarray, C: np.ndarray) -> np.ndarray:
    import pysindy as ps

    opt = ps.ConstrainedSR3(
        reg_weight_lam=T**2 / (2 * NU), relax_coeff_nu=NU, regularizer="l0", constraint_lhs=C,
        constraint_rhs=np.zeros(C.shape[0]), constraint_order="feature", equality_constraints=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its "did not converge" warnings at the default budget
        opt.fit(Theta, G)
    return np.asarray(opt.coef_).T


def _best_time(fn, repeats: int):
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def run(quick: bool = False) -> dict[str, float]:
    from symqp.backends import Problem
    from symqp.backends._blas import limit_blas

    from symqp._optional import require
    from symqp.library import constraint_matrix

    require("pysindy")  # imported before timing: its import is not part of a solve
    cfg = QUICK if quick else FULL
    figures: dict[str, float] = {}
    for tag, noise in (("", 0.0), ("noisy_", 1e-3)):
        X, G, lib, exact = example1(cfg["n"], cfg["degree"], noise=noise, seed=1 if noise else 0)
        problem = Problem(X, G[:, :3], G[:, 3], G[:, 4:], lib)
        Theta = np.ascontiguousarray(lib.evaluate(X))
        C = constraint_matrix(lib, 3, order="feature")
        with limit_blas(1):  # both solvers under the same BLAS setting
            t_own, own = _best_time(partial(own_solve, problem, Theta, G), cfg["repeats"])
            t_ps, ref = _best_time(partial(pysindy_solve, Theta, G, C), cfg["pysindy_repeats"])
        support = exact != 0
        same = bool(np.array_equal(own != 0, support) and np.array_equal(ref != 0, support))
        err_own = float(np.abs(own - exact).max())
        err_ps = float(np.abs(ref - exact).max())
        print(f"-- Example 1, {cfg['n']} points, poly({cfg['degree']}), noise {noise:g}")
        _show(f"sr3.{tag}own_ms", 1e3 * t_own)
        _show(f"sr3.{tag}pysindy_ms", 1e3 * t_ps)
        _show(f"sr3.{tag}speedup_vs_pysindy", t_ps / t_own)
        _show(f"sr3.{tag}same_support", float(same))
        _show(f"sr3.{tag}max_coef_err", err_own, err_ps, "pysindy's error")
        _show(f"sr3.{tag}pysindy_max_coef_err", err_ps)
        figures.update({
            f"sr3.{tag}own_ms": 1e3 * t_own,
            f"sr3.{tag}pysindy_ms": 1e3 * t_ps,
            f"sr3.{tag}speedup_vs_pysindy": t_ps / t_own,
            f"sr3.{tag}same_support": float(same),
            f"sr3.{tag}max_coef_err": err_own,
            f"sr3.{tag}pysindy_max_coef_err": err_ps,
        })
    return figures


if __name__ == "__main__":
    run(quick="--quick" in sys.argv[1:])
