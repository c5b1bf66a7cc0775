"""The two identification routes side by side on systems with a known quasipotential.

For each system: simulate App. B-style data, then ``symqp.fit(..., method="symbolic")`` (f
from the pairs, V from the Hamilton–Jacobi equation with the Lyapunov normalisation) and
``symqp.fit(..., method="neural")`` (network decomposition, regression, refinement) on the
same pairs; report the wall time of each (the symbolic one end to end, simulation included,
for Example 1) and the largest U coefficient error against the exact U, with the support.

Systems: Example 1 of the paper (archetypal 3-D, 5000×50 pairs, poly(5)), Maier–Stein
(α = 1, β = 1 here, 2000×50, poly(4)), a 4-D rotated gradient with a quartic coupling
(2000×50, poly(4)) and the linear non-gradient system (1000×50, poly(2)).

Figures: ``route_compare.<system>.<route>.wall_s``, ``.max_coef_err``, ``.exact_support``
and ``route_compare.<system>.speedup`` (neural wall over symbolic wall, the peer measured in
the same run); ``route_compare.load_avg`` is the 1-minute load average at the start.

Run: ``python benchmarks/route_compare.py [--quick]``.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import sympy as sp

FULL = {"neural": True, "scale": 1.0}
QUICK = {"neural": True, "scale": 0.05}
GOALS = {"example1": 30.0}  # the symbolic route end to end, simulation included (seconds)


def _systems():
    import symqp

    x1, x2, x3, x4 = sp.symbols("x1 x2 x3 x4")
    V4 = (x1**2 - 1) ** 2 / 4 + x2**2 / 2 + x3**2 + x4**2 / 2 + x1**2 * x2**2 / 4
    A4 = np.array([[0, 1, 0, 0], [-1, 0, 0.5, 0], [0, -0.5, 0, 1], [0, 0, -1, 0]], dtype=float)
    rot4 = symqp.systems.rotated_gradient(V4, A4, variables=(x1, x2, x3, x4),
                                          box=[[-2, 2], [-1.5, 1.5], [-1.5, 1.5], [-1.5, 1.5]])  # fmt: skip
    app_b = {"h": 0.01, "dt": 0.1}
    return {
        "example1": (symqp.systems.archetypal3d(), {"n_traj": 5000, "n_pairs": 50, **app_b}, "poly(5)"),
        "maier_stein": (symqp.systems.get_system("maier_stein"), {"n_traj": 2000, "n_pairs": 50, **app_b}, "poly(4)"),
        "rotated_gradient4": (rot4, {"n_traj": 2000, "n_pairs": 50, **app_b}, "poly(4)"),
        "linear_nongradient": (symqp.systems.get_system("linear_nongradient"), {"n_traj": 1000, "n_pairs": 50, **app_b},
                               "poly(2)"),
    }  # fmt: skip


def _show(name: str, value: float, peer: float | None = None, label: str = "") -> None:
    ratio = f"  ({value / peer:.3g}x {label})" if peer else ""
    print(f"{name:48s} {value:.6g}{ratio}", flush=True)


def _one(system, cfg, library, method, quick):
    import symqp
    from symqp.result import coefficient_errors

    t0 = time.perf_counter()
    pairs = symqp.data.sample_pairs(system, seed=0, **cfg)
    t_sim = time.perf_counter() - t0
    t0 = time.perf_counter()
    # quick (CI smoke): a tiny network, enough to exercise the neural route end to end
    small = {"steps": 50, "decomposition_options": {"lbfgs_steps": 10, "hidden": (16, 16)}}
    extra = small if (quick and method == "neural") else {}
    res = symqp.fit(pairs, library=library, method=method, seed=0, verbose=False, **extra)
    t_fit = time.perf_counter() - t0
    ce = coefficient_errors(res.U, system.U, system.variables)
    return t_sim, t_fit, ce


def run(quick: bool = False) -> dict[str, float]:
    cfg = QUICK if quick else FULL
    figures: dict[str, float] = {"route_compare.load_avg": os.getloadavg()[0]}
    for name, (system, sampling, library) in _systems().items():
        if quick and name not in ("maier_stein", "linear_nongradient"):
            continue
        sampling = dict(sampling)
        sampling["n_traj"] = max(50, int(sampling["n_traj"] * cfg["scale"]))
        t_sim, t_fit, ce = _one(system, sampling, library, "symbolic", quick)
        key = f"route_compare.{name}"
        wall_sym = t_sim + t_fit
        figures[f"{key}.symbolic.wall_s"] = wall_sym
        figures[f"{key}.symbolic.max_coef_err"] = ce.max_abs
        figures[f"{key}.symbolic.exact_support"] = float(ce.exact_support)
        _show(f"{key}.symbolic.wall_s", wall_sym, GOALS.get(name), "goal")
        _show(f"{key}.symbolic.max_coef_err", ce.max_abs, 1e-6, "goal 1e-6")
        _show(f"{key}.symbolic.exact_support", float(ce.exact_support))
        if cfg["neural"] and (not quick or name == "linear_nongradient"):
            t_sim, t_fit, ce = _one(system, sampling, library, "neural", quick)
            wall_nn = t_sim + t_fit
            figures[f"{key}.neural.wall_s"] = wall_nn
            figures[f"{key}.neural.max_coef_err"] = ce.max_abs
            figures[f"{key}.neural.exact_support"] = float(ce.exact_support)
            figures[f"{key}.speedup"] = wall_nn / wall_sym
            _show(f"{key}.neural.wall_s", wall_nn, wall_sym, "the symbolic route")
            _show(f"{key}.neural.max_coef_err", ce.max_abs, figures[f"{key}.symbolic.max_coef_err"] or None,
                  "the symbolic route")  # fmt: skip
            _show(f"{key}.neural.exact_support", float(ce.exact_support))
    print(f"load average at start: {figures['route_compare.load_avg']:.2f}")
    return figures


if __name__ == "__main__":
    run(quick="--quick" in sys.argv[1:])
