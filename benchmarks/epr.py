"""EPR landscapes from stationary samples: EPR-Net's 2-D toy and a 12-D rotated gradient.

- Toy: V = ((x - 1.5)² - 1)² + (y - 1.5)²/2, f = (-V_x - c V_y, c V_x - V_y), c = 0.5,
  D = 0.1, exact landscape U = V (p ∝ exp(-U/D)); library poly(4).
- 12-D: V = ((x1 - 1.5)² - 1)² + Σ_{k≥2} (x_k - 1.5)²/2, f = -(I + A)∇V with a fixed random
  antisymmetric A (seed 0, entries of order 0.15); library: poly(2) plus x_k³, x_k⁴ (115 terms).

Samples by Euler–Maruyama (``symqp.data._stationary.sample_stationary``). Measure: relative
RMSE of the landscape on {U < 20D} (EPR-Net's measure, both sides shifted to the best
constant), on a 101×101 grid of [-0.5, 3.5]² for the toy and on 4000 fresh stationary samples
for 12-D. Routes: ``direct`` (EPR loss minimised over the library span: least squares of −f
on ∇Θ), ``neural`` (EPRLandscape, EPR loss, then STLSQ of U_θ) and ``enhanced`` (EPR loss plus
the Fokker–Planck residual on the samples perturbed by Gaussian noise, the known ∇·f). Each symbolic figure is printed
with its ratio to the network U_θ it was regressed from (the peer measured in the same run).

Run: ``python benchmarks/epr.py [--quick]``.
"""

from __future__ import annotations

import sys
import time

import numpy as np

C, D = 0.5, 0.1
FULL = {"n": 20000, "n12": 6000, "adam": 1000, "polish": 100, "t_burn": 5.0, "dt": 2e-3, "neural12": True}
QUICK = {"n": 3000, "n12": 1500, "adam": 150, "polish": 30, "t_burn": 3.0, "dt": 4e-3, "neural12": False}


def _show(name: str, value: float, peer: float | None = None, label: str = "network") -> None:
    ratio = f"  ({value / peer:.3g}x {label})" if peer else ""
    print(f"{name:40s} {value:.6g}{ratio}", flush=True)


def _toy(cfg, fig, shown):
    import sympy as sp

    from symqp.data._stationary import sample_stationary
    from symqp.decompose import EPRLandscape
    from symqp.identify import fit_epr
    from symqp.decompose._epr import landscape_rrmse
    from symqp.systems import from_expressions

    x, y = sp.symbols("x y")
    V = ((x - 1.5) ** 2 - 1) ** 2 + (y - 1.5) ** 2 / 2
    Vx, Vy = sp.diff(V, x), sp.diff(V, y)
    box = [[-0.5, 3.5], [-0.5, 3.5]]
    system = from_expressions((-Vx - C * Vy, C * Vx - Vy), (x, y), box=box, U=2 * V, name="epr_toy")
    t0 = time.perf_counter()
    data = sample_stationary(system, cfg["n"], D, dt=cfg["dt"], t_burn=cfg["t_burn"], seed=0)
    fig["epr.toy_sample_s"] = time.perf_counter() - t0
    g = np.linspace(-0.5, 3.5, 101)
    P = np.array(np.meshgrid(g, g)).reshape(2, -1).T
    exact = sp.lambdify((x, y), V)(P[:, 0], P[:, 1])
    field = system.f_numpy()

    def div(p):  # ∇·f = -ΔV (the rotation part is divergence-free), exact
        return -(12 * (p[:, 0] - 1.5) ** 2 - 4) - 1.0

    res = fit_epr(data, library="poly(4)", route="direct")
    u = sp.lambdify((x, y), res.V)(P[:, 0], P[:, 1])
    fig["epr.toy_direct_rrmse"] = landscape_rrmse(u, exact, D)
    fig["epr.toy_direct_s"] = res.timings["total"]
    print(f"toy (direct): V = {res.V}")
    for tag, kw in (("neural", {}), ("enhanced", {"enhanced": True, "field": field, "divergence": div})):
        t0 = time.perf_counter()
        model = EPRLandscape(steps=cfg["adam"], lbfgs_steps=cfg["polish"], seed=0, **kw).fit(data)
        t_train = time.perf_counter() - t0
        res = fit_epr(data, library="poly(4)", model=model)
        u = sp.lambdify((x, y), res.V)(P[:, 0], P[:, 1])
        net = landscape_rrmse(model.V(P), exact, D)
        fig[f"epr.toy_{tag}_net_rrmse"] = net
        fig[f"epr.toy_{tag}_rrmse"] = landscape_rrmse(u, exact, D)
        fig[f"epr.toy_{tag}_train_s"] = t_train
        shown[f"epr.toy_{tag}_rrmse"] = net
        print(f"toy ({tag}): V = {res.V}")
    shown["epr.toy_direct_rrmse"] = fig["epr.toy_neural_net_rrmse"]


def _rotated12(cfg, fig, shown):
    import sympy as sp

    from symqp.data._stationary import sample_stationary
    from symqp.decompose import EPRLandscape
    from symqp.identify import fit_epr
    from symqp.decompose._epr import landscape_rrmse
    from symqp.library import Library, poly
    from symqp.systems import rotated_gradient

    xs = sp.symbols("x1:13")
    V = ((xs[0] - 1.5) ** 2 - 1) ** 2 + sum((s - 1.5) ** 2 for s in xs[1:]) / 2
    B = np.random.default_rng(0).standard_normal((12, 12))
    A = 0.5 * (B - B.T) / np.sqrt(12)
    system = rotated_gradient(V, A, variables=xs, box=[[0.0, 3.0]] * 12)
    t0 = time.perf_counter()
    data = sample_stationary(system, cfg["n12"], D, dt=cfg["dt"], t_burn=cfg["t_burn"], seed=0)
    test = sample_stationary(system, 4000 if cfg["neural12"] else 1000, D, dt=cfg["dt"],
                             t_burn=cfg["t_burn"], seed=1)
    fig["epr.d12_sample_s"] = time.perf_counter() - t0
    exact = sp.lambdify([xs], V)(test.x.T)
    lib = poly(xs, 2) + Library([s**k for s in xs for k in (3, 4)], xs)
    res = fit_epr(data, library=lib, route="direct")
    fig["epr.d12_direct_rrmse"] = landscape_rrmse(sp.lambdify([xs], res.V)(test.x.T), exact, D)
    fig["epr.d12_direct_terms"] = float(res.metrics["n_terms"])
    fig["epr.d12_direct_s"] = res.timings["total"]
    if cfg["neural12"]:
        t0 = time.perf_counter()
        model = EPRLandscape(hidden=(64, 64), steps=cfg["adam"], lbfgs_steps=cfg["polish"], seed=0).fit(data)
        fig["epr.d12_neural_train_s"] = time.perf_counter() - t0
        res = fit_epr(data, library=lib, model=model)
        fig["epr.d12_neural_net_rrmse"] = landscape_rrmse(model.V(test.x), exact, D)
        fig["epr.d12_neural_rrmse"] = landscape_rrmse(sp.lambdify([xs], res.V)(test.x.T), exact, D)
        shown["epr.d12_neural_rrmse"] = fig["epr.d12_neural_net_rrmse"]
        shown["epr.d12_direct_rrmse"] = fig["epr.d12_neural_net_rrmse"]


def run(quick: bool = False) -> dict[str, float]:
    cfg = QUICK if quick else FULL
    fig: dict[str, float] = {}
    shown: dict[str, float] = {}
    t0 = time.perf_counter()
    _toy(cfg, fig, shown)
    _rotated12(cfg, fig, shown)
    fig["epr.wall_s"] = time.perf_counter() - t0
    print()
    for name, value in fig.items():
        _show(name, value, shown.get(name))
    return fig


if __name__ == "__main__":
    run(quick="--quick" in sys.argv[1:])
