"""Noisy and stochastic data: measurement noise, SDE increments, the noise level itself.

Measurement noise: Example 1 (archetypal3d) and Maier-Stein, App. B pairs (h = 0.01,
t_j = 0.1 j, 50 snapshots per trajectory, 40000 trajectories: 2e6 pairs, what fits in about
two minutes of fitting) with Gaussian noise sigma on both snapshots, sigma in {1e-3, 1e-2,
3e-2}, against the noise-free fit of the same pairs. SDE data: 1e6 increments of
dx = f dt + sqrt(eps) dW (stochastic Heun, h = 0.05, t_j = 0.1 j), eps in {0.01, 0.05, 0.1}.
Every fit is ``symqp.fit(..., method="symbolic")`` with the default bootstrap. The peer of f
is the plain regression of (x_h - x_0)/h on Theta(x_0) on the true support (biased by the
noise of x_0). Coverage: the share of true coefficients of U (and f) inside the 95 %
bootstrap intervals over repeated synthetic runs. Density: long Maier-Stein paths (20
paths, dt = h = 0.01), the fitted density exp(-U/eps)/Z against their histogram (total
variation; the split-half distance of the data is the sampling floor), and the mean exit
time of Eyring-Kramers from the fitted U against the transitions on the paths (eps = 0.1).

Figures (``noise.*``): per case ``support`` (1 exact), ``max_u_err``, ``max_f_err``,
``fit_s``; ``sigma_rel_err`` / ``eps_rel_err``; ``f_err_plain`` (peer); ``coverage_u``,
``coverage_f``; ``density.tv``, ``density.tv_split``; ``exit.ratio``; ``load`` (1-minute
load average at the start, beside the timings: the machine is shared).

Run: ``python benchmarks/noise.py [--quick]``.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

FULL = {
    "systems": ("archetypal3d", "maier_stein"), "n_traj": 40000, "sde_traj": 20000, "sigmas": (1e-3, 1e-2, 3e-2),
    "epss": (0.01, 0.05, 0.1), "sde_h": 0.05, "coverage_runs": 20, "coverage_traj": 1000,
    "density_paths": 20, "density_pairs": 50000, "library": "poly(4)",
}
QUICK = {
    "systems": ("maier_stein",), "n_traj": 400, "sde_traj": 400, "sigmas": (1e-3,), "epss": (0.05,), "sde_h": 0.05,
    "coverage_runs": 2, "coverage_traj": 400, "density_paths": 4, "density_pairs": 5000, "library": "poly(4)",
}
GOAL = {"max_u_err": 2e-2, "eps_rel_err": 0.02, "coverage": 0.95}


def _show(name: str, value: float, peer: float | None = None, label: str = "") -> None:
    ratio = f"  ({value / peer:.3g}x {label})" if peer else ""
    print(f"{name:44s} {value:.6g}{ratio}", flush=True)


def _field_errors(result, system) -> float:
    from symqp.result import coefficient_errors

    return max(coefficient_errors(fr, ft, system.variables).max_abs for fr, ft in zip(result.f, system.field))


def _plain_regression(pairs, system, library: str) -> float:
    """Largest f coefficient error of (x_h - x_0)/h regressed on Theta(x_0) on the true support."""
    import sympy as sp

    from symqp.identify._refine import coefficients_in_library
    from symqp.library import parse_library

    lib = parse_library(library, system.names)
    index = {sp.expand(t): i for i, t in enumerate(lib.terms)}
    T = lib.evaluate(np.array(pairs.x0))  # a writable copy: the compiled kernel refuses read-only input
    Y = (pairs.xh - pairs.x0) / pairs.h
    err = 0.0
    for k, fk in enumerate(system.field):
        c = coefficients_in_library(fk, index, len(lib))
        on = c != 0
        got = np.linalg.lstsq(T[:, on], Y[:, k], rcond=None)[0]
        err = max(err, float(np.abs(got - c[on]).max()))
    return err


def _fit(pairs, library: str, **kw):
    import symqp

    t0 = time.perf_counter()
    res = symqp.fit(pairs, library=library, method="symbolic", verbose=False, **kw)
    return res, time.perf_counter() - t0


def _case(prefix: str, res, system, t_fit: float, out: dict) -> None:
    from symqp.result import coefficient_errors

    ce = coefficient_errors(res.U, system.U, system.variables)
    out[f"{prefix}.support"] = float(ce.exact_support)
    out[f"{prefix}.max_u_err"] = ce.max_abs
    out[f"{prefix}.max_f_err"] = _field_errors(res, system)
    out[f"{prefix}.fit_s"] = t_fit
    _show(f"{prefix}.support", float(ce.exact_support), 1.0, "exact")
    _show(f"{prefix}.max_u_err", ce.max_abs, GOAL["max_u_err"], "goal")
    _show(f"{prefix}.max_f_err", out[f"{prefix}.max_f_err"])
    _show(f"{prefix}.fit_s", t_fit)


def _measurement(name: str, cfg: dict, out: dict) -> None:
    import symqp

    system = symqp.systems.get_system(name)
    clean = symqp.data.sample_pairs(system, n_traj=cfg["n_traj"], n_pairs=50, h=0.01, dt=0.1, seed=0)
    res, t_fit = _fit(clean, cfg["library"])
    _case(f"noise.{name}.sigma0", res, system, t_fit, out)
    ref = out[f"noise.{name}.sigma0.max_u_err"]
    rng = np.random.default_rng(1)
    for sigma in cfg["sigmas"]:
        x0 = clean.x0 + sigma * rng.standard_normal(clean.x0.shape)
        xh = clean.xh + sigma * rng.standard_normal(clean.xh.shape)
        pairs = symqp.data.Pairs(x0, xh, clean.h, clean.names, clean.traj)
        res, t_fit = _fit(pairs, cfg["library"])
        p = f"noise.{name}.sigma{sigma:g}"
        _case(p, res, system, t_fit, out)
        _show(f"{p}.max_u_err_vs_noise_free", out[f"{p}.max_u_err"], ref, "noise-free fit")
        est = float(np.mean(res.metrics.get("noise_sigma", [np.nan])))
        out[f"{p}.sigma_rel_err"] = abs(est / sigma - 1)
        _show(f"{p}.sigma_rel_err", out[f"{p}.sigma_rel_err"])
        out[f"{p}.f_err_plain"] = _plain_regression(pairs, system, cfg["library"])
        _show(f"{p}.f_err_plain (peer)", out[f"{p}.f_err_plain"], out[f"{p}.max_f_err"], "ours")


def _sde(name: str, cfg: dict, out: dict) -> None:
    import symqp

    system = symqp.systems.get_system(name)
    for eps in cfg["epss"]:
        pairs = symqp.data.sample_sde_pairs(system, eps=eps, n_traj=cfg["sde_traj"], n_pairs=50, h=cfg["sde_h"],
                                            dt=0.1, seed=2)  # fmt: skip
        res, t_fit = _fit(pairs, cfg["library"], stochastic=True)
        p = f"noise.{name}.eps{eps:g}"
        _case(p, res, system, t_fit, out)
        out[f"{p}.eps_rel_err"] = abs(res.metrics["eps"] / eps - 1)
        _show(f"{p}.eps_rel_err", out[f"{p}.eps_rel_err"], GOAL["eps_rel_err"], "goal")


def _covered(rows, truth: dict) -> list[bool]:
    return [r["lower"] <= truth.get(r["term"], 0.0) <= r["upper"] for r in rows if r["term"] in truth]


def _coverage(cfg: dict, out: dict) -> None:
    """Share of the true coefficients inside the 95 % intervals over repeated runs (Maier-Stein SDE)."""
    import sympy as sp

    import symqp

    system = symqp.systems.get_system("maier_stein")

    def terms(expr) -> dict[str, float]:
        poly = sp.Poly(expr, *system.variables)
        return {str(sp.Mul(*[v**e for v, e in zip(system.variables, m)])): float(c)
                for m, c in zip(poly.monoms(), poly.coeffs())}  # fmt: skip

    truth_u = terms(system.U)
    hits_u: list[bool] = []
    hits_f: list[bool] = []
    for run in range(cfg["coverage_runs"]):
        pairs = symqp.data.sample_sde_pairs(system, eps=0.05, n_traj=cfg["coverage_traj"], n_pairs=50,
                                            h=cfg["sde_h"], dt=0.1, seed=100 + run)  # fmt: skip
        res, _ = _fit(pairs, cfg["library"], stochastic=True, seed=run)
        if res.uncertainty is None:
            continue
        hits_u += _covered(res.uncertainty["U"], truth_u)
        for k, fk in enumerate(system.field):
            rows = [r for r in res.uncertainty["f"] if r.get("output") == system.names[k]]
            hits_f += _covered(rows, terms(fk))
    out["noise.coverage_u"] = float(np.mean(hits_u)) if hits_u else float("nan")
    out["noise.coverage_f"] = float(np.mean(hits_f)) if hits_f else float("nan")
    out["noise.coverage_n"] = float(len(hits_u))
    _show("noise.coverage_u (nominal 0.95)", out["noise.coverage_u"], GOAL["coverage"], "nominal")
    _show("noise.coverage_f (nominal 0.95)", out["noise.coverage_f"], GOAL["coverage"], "nominal")


def _density(cfg: dict, out: dict) -> None:
    import symqp
    from symqp import AnalysisError
    from symqp.analysis import density_check, exit_time_check

    system = symqp.systems.get_system("maier_stein")
    for eps in (0.05, 0.1):
        paths = symqp.data.sample_sde_pairs(system, eps=eps, n_traj=cfg["density_paths"], n_pairs=cfg["density_pairs"],
                                            h=0.01, dt=0.01, t_burn=2.0, seed=3)  # fmt: skip
        res, _ = _fit(paths, cfg["library"], stochastic=True, bootstrap=0)
        chk = density_check(res, paths)
        p = f"noise.density.eps{eps:g}"
        out[f"{p}.tv"], out[f"{p}.tv_split"], out[f"{p}.kl"] = chk["tv"], chk["tv_split"], chk["kl"]
        _show(f"{p}.tv", chk["tv"], chk["tv_split"], "split-half floor")
        _show(f"{p}.kl", chk["kl"])
        if eps == 0.1:
            try:
                rows = exit_time_check(res, paths)
            except AnalysisError as exc:  # a fit from too few paths may miss the saddle
                print(f"exit times not compared: {exc}", flush=True)
                rows = []
            for r in rows:
                if r["predicted"] and r["measured"]:
                    side = "left" if r["minimum"][0] < 0 else "right"
                    out[f"noise.exit.{side}.ratio"] = r["measured"] / r["predicted"]
                    out[f"noise.exit.{side}.n"] = float(r["n_transitions"])
                    _show(f"noise.exit.{side}.measured_s", r["measured"], r["predicted"], "Eyring-Kramers")


def run(quick: bool = False) -> dict[str, float]:
    cfg = QUICK if quick else FULL
    out: dict[str, float] = {"noise.load": os.getloadavg()[0]}
    _show("noise.load (1-min load average)", out["noise.load"])
    for name in cfg["systems"]:
        _measurement(name, cfg, out)
        _sde(name, cfg, out)
    _coverage(cfg, out)
    _density(cfg, out)
    return out


if __name__ == "__main__":
    run(quick="--quick" in sys.argv[1:])
