"""Sampling snapshot pairs: vectorised RK4 (``sample_pairs``) against scipy ``solve_ivp``.

Workload: the seed paper's Example 1 (``archetypal3d``) with its App. B sizes, 5000
trajectories x 50 snapshots (h = 0.01, dt = 0.1). The peer integrates a subset of the same
trajectories one by one with ``scipy.integrate.solve_ivp`` (RK45, rtol 1e-10, atol 1e-12,
``t_eval`` at every t_j and t_j + h, scalar ``math`` lambdified field); its time is scaled
to the full set of trajectories. The largest difference between the two on the subset
checks that both compute the same data.

A second peer integrates all trajectories at once with ``solve_ivp`` as one stacked system
of size ``d * n_traj`` (RK45, rtol 1e-9, atol 1e-12, the same NumPy field), the fastest way
to use scipy at a comparable accuracy.

Figures: ``sampling.wall_s``, ``sampling.solve_ivp_wall_s`` (extrapolated),
``sampling.speedup_vs_solve_ivp``, ``sampling.max_abs_diff_vs_solve_ivp``,
``sampling.solve_ivp_stacked_wall_s``, ``sampling.speedup_vs_solve_ivp_stacked``,
``sampling.max_abs_diff_vs_solve_ivp_stacked``, ``sampling.pairs_per_s``.
"""

from __future__ import annotations

import sys
import time

import numpy as np


def _reference(system, x0: np.ndarray, n_pairs: int, h: float, dt: float) -> tuple[np.ndarray, np.ndarray, float]:
    from scipy.integrate import solve_ivp

    from symqp._numeric import python_function

    fn = python_function(list(system.field), system.variables)

    def rhs(_t: float, y: np.ndarray) -> list[float]:
        return fn(*y)

    tj = dt * np.arange(1, n_pairs + 1)
    t_eval = np.sort(np.concatenate([tj, tj + h]))
    idx0 = np.searchsorted(t_eval, tj)
    idxh = np.searchsorted(t_eval, tj + h)
    a = np.empty((x0.shape[0], n_pairs, x0.shape[1]))
    b = np.empty_like(a)
    t0 = time.perf_counter()
    for i, y0 in enumerate(x0):
        sol = solve_ivp(rhs, (0.0, t_eval[-1]), y0, method="RK45", t_eval=t_eval, rtol=1e-10, atol=1e-12)
        a[i] = sol.y.T[idx0]
        b[i] = sol.y.T[idxh]
    wall = time.perf_counter() - t0
    return a.reshape(-1, x0.shape[1]), b.reshape(-1, x0.shape[1]), wall


def _stacked(system, x0: np.ndarray, n_pairs: int, h: float, dt: float) -> tuple[np.ndarray, np.ndarray, float]:
    from scipy.integrate import solve_ivp

    n, d = x0.shape
    rows = system._rows  # the (d, n) -> (d, n) NumPy field sample_pairs uses

    def rhs(_t: float, y: np.ndarray) -> np.ndarray:
        return rows(y.reshape(d, n)).ravel()

    tj = dt * np.arange(1, n_pairs + 1)
    t_eval = np.sort(np.concatenate([tj, tj + h]))
    t0 = time.perf_counter()
    sol = solve_ivp(rhs, (0.0, t_eval[-1]), x0.T.ravel(), method="RK45", t_eval=t_eval,
                    rtol=1e-9, atol=1e-12)
    wall = time.perf_counter() - t0
    Y = sol.y.reshape(d, n, -1)
    a = Y[:, :, np.searchsorted(t_eval, tj)].transpose(1, 2, 0).reshape(-1, d)
    b = Y[:, :, np.searchsorted(t_eval, tj + h)].transpose(1, 2, 0).reshape(-1, d)
    return a, b, wall


def run(quick: bool = False) -> dict[str, float]:
    from symqp.data import sample_pairs
    from symqp.systems import archetypal3d

    n_traj, n_pairs, n_ref = (200, 10, 4) if quick else (5000, 50, 40)
    h, dt, seed = 0.01, 0.1, 0
    system = archetypal3d()
    sample_pairs(system, n_traj=4, n_pairs=1, h=h, dt=dt)  # builds the NumPy field once

    t0 = time.perf_counter()
    pairs = sample_pairs(system, n_traj=n_traj, n_pairs=n_pairs, h=h, dt=dt, seed=seed)
    wall = time.perf_counter() - t0

    # the same initial states: sample_pairs draws them first from default_rng(seed)
    box = system.box
    x_init = np.random.default_rng(seed).uniform(box[:, 0], box[:, 1], size=(n_traj, system.d))[:n_ref]
    ref0, refh, ref_wall = _reference(system, x_init, n_pairs, h, dt)
    diff = max(
        float(np.abs(pairs.x0[: n_ref * n_pairs] - ref0).max()),
        float(np.abs(pairs.xh[: n_ref * n_pairs] - refh).max()),
    )
    ref_full = ref_wall / n_ref * n_traj
    x_all = np.random.default_rng(seed).uniform(box[:, 0], box[:, 1], size=(n_traj, system.d))
    st0, sth, st_wall = _stacked(system, x_all, n_pairs, h, dt)
    st_diff = max(float(np.abs(pairs.x0 - st0).max()), float(np.abs(pairs.xh - sth).max()))
    figures = {
        "sampling.wall_s": wall,
        "sampling.solve_ivp_wall_s": ref_full,
        "sampling.speedup_vs_solve_ivp": ref_full / wall,
        "sampling.max_abs_diff_vs_solve_ivp": diff,
        "sampling.solve_ivp_stacked_wall_s": st_wall,
        "sampling.speedup_vs_solve_ivp_stacked": st_wall / wall,
        "sampling.max_abs_diff_vs_solve_ivp_stacked": st_diff,
        "sampling.pairs_per_s": pairs.n / wall,
    }
    print(f"sampling: archetypal3d {n_traj} x {n_pairs} pairs (h={h}, dt={dt})")
    print(f"  sample_pairs (vectorised RK4)   {wall:9.3f} s   peer/ours 1.0")
    print(f"  solve_ivp RK45 (scaled from {n_ref}) {ref_full:9.3f} s   peer/ours {ref_full / wall:.1f}")
    print(f"  solve_ivp RK45, stacked system  {st_wall:9.3f} s   peer/ours {st_wall / wall:.1f}")
    print(f"  sampling.speedup_vs_solve_ivp   {ref_full / wall:9.1f}")
    print(f"  sampling.speedup_vs_solve_ivp_stacked {st_wall / wall:5.1f}")
    print(f"  sampling.max_abs_diff_vs_solve_ivp {diff:.2e}")
    print(f"  sampling.max_abs_diff_vs_solve_ivp_stacked {st_diff:.2e}")
    print(f"  sampling.pairs_per_s            {pairs.n / wall:9.0f}")
    return figures


if __name__ == "__main__":
    run(quick="--quick" in sys.argv[1:])
