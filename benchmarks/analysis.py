"""Analysis on an exact U: Z_eps accuracy, mesh quasipotential error/time, minimum action.

Workloads and peers (all measured in the same run):

- Z_eps of the seed paper's Example 1 (eq. 21, eps = 0.05, 0.1, 0.2). The closed form (App. C,
  Bessel functions) is compared with the six-digit values printed in the paper; the
  cubature path (Laplace-guided randomised Sobol quasi-Monte Carlo over [-3, 3]^3, used when
  U does not separate) is compared with the closed form, and timed against it.
  ``analysis.z_rel_err_max`` is the largest relative error of the cubature path.
- Mesh quasipotential (ordered line integral method, Numba) for the linear non-gradient
  system f = [[-2, -a], [2a, -1]] x, a = 3, exact U = 2x^2 + y^2, on [-1, 1]^2, for several N;
  the error is over the largest sublevel set of U inside the box (where minimum action paths
  stay in the box). The peer is SciPy's compiled Dijkstra (``scipy.sparse.csgraph``) on the
  graph whose edges are the same straight-segment actions over the same stencil (what the
  line integral method improves on), for the smaller N. Time is also shown relative to
  N^2 K^2 scaling from the smallest N. Compile time is reported separately.
- Minimum action path (geometric minimum action method) from a minimum of Example 1 to its
  saddle: the action against the exact barrier dU = 1 (``analysis.map_action_rel_err``).
- Mean transition time of a 2D rotated-gradient double well (dU = 1/2) between its minima:
  Monte Carlo (vectorised Euler-Maruyama) against the Bouchet-Reygner/Eyring-Kramers formula
  at several eps, and the fitted exponential rate against dU.

Quick mode: N up to 200 instead of 1000, fewer images.

Figures: ``analysis.z_rel_err_max``, ``analysis.z_closed_vs_paper_rel_err_max``,
``analysis.z_exact_s``, ``analysis.z_qmc_s``, ``analysis.mesh_<N>_s``,
``analysis.mesh_rel_err_<N>``, ``analysis.mesh_1000_s`` and ``analysis.mesh_rel_err_1000``
(the largest N run; N = 200 in quick mode), ``analysis.mesh_compile_s``,
``analysis.dijkstra_<N>_s``, ``analysis.dijkstra_rel_err_<N>``, ``analysis.map_action_rel_err``,
``analysis.map_s``, ``analysis.exit_rate_mc``, ``analysis.exit_rate_rel_err``,
``analysis.exit_mc_vs_ek_rel_diff_max``.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import sympy as sp

PAPER_Z = {0.05: 0.062875, 0.1: 0.179867, 0.2: 0.524055}  # eq. 21 of the seed paper


def _z_figures(quick: bool) -> dict[str, float]:
    from symqp.analysis import partition_function

    x, y, z = sp.symbols("x y z")
    U = x**4 - 2 * x**2 + y**2 + z**2 + 1
    out: dict[str, float] = {}
    errs, paper_errs, t_exact, t_qmc = [], [], 0.0, 0.0
    for eps, paper in PAPER_Z.items():
        t0 = time.perf_counter()
        Zx = partition_function(U, [x, y, z], eps=eps)
        t1 = time.perf_counter()
        Zq = partition_function(U, [x, y, z], eps=eps, box=[[-3, 3]] * 3, method="qmc",
                                qmc_points=2**12 if quick else 2**15)
        t2 = time.perf_counter()
        t_exact += t1 - t0
        t_qmc += t2 - t1
        e = abs(Zq.value / Zx.value - 1)
        pe = abs(Zx.value / paper - 1)
        errs.append(e)
        paper_errs.append(pe)
        print(f"   Z(eps={eps:g}): closed form {Zx.value:.6f} (paper {paper}, rel {pe:.1e}); "
              f"qmc {Zq.value:.6f} ± {Zq.error:.1e} (rel err {e:.1e})")
    out["analysis.z_rel_err_max"] = max(errs)
    out["analysis.z_closed_vs_paper_rel_err_max"] = max(paper_errs)
    out["analysis.z_exact_s"] = t_exact
    out["analysis.z_qmc_s"] = t_qmc
    print(f"   analysis.z_rel_err_max = {max(errs):.2e} (goal 5e-3; ratio to goal "
          f"{max(errs) / 5e-3:.2f})")
    print(f"   analysis.z_closed_vs_paper_rel_err_max = {max(paper_errs):.2e} (paper prints 6 digits)")
    print(f"   analysis.z_exact_s = {t_exact:.4f} s, analysis.z_qmc_s = {t_qmc:.3f} s "
          f"(qmc / closed form = {t_qmc / max(t_exact, 1e-9):.0f}x)")
    return out


def _dijkstra(f_np, box, N, K, a):
    """SciPy Dijkstra on the straight-segment action graph over the same stencil (peer)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    xs = np.linspace(box[0][0], box[0][1], N)
    ys = np.linspace(box[1][0], box[1][1], N)
    X, Y = np.meshgrid(xs, ys, indexing="ij")
    P = np.stack([X.ravel(), Y.ravel()], 1)
    F = f_np(P).reshape(N, N, 2)
    rows, cols, vals = [], [], []
    I, J = np.meshgrid(np.arange(N), np.arange(N), indexing="ij")
    for di in range(-K, K + 1):
        for dj in range(-K, K + 1):
            if (di == 0 and dj == 0) or di * di + dj * dj > K * K:
                continue
            i2, j2 = I + di, J + dj
            ok = (i2 >= 0) & (i2 < N) & (j2 >= 0) & (j2 < N)
            s, t = (I[ok], J[ok]), (i2[ok], j2[ok])
            d = np.stack([X[t] - X[s], Y[t] - Y[s]], -1)
            w = 0.5 * (F[s] + F[t])
            act = np.linalg.norm(w, axis=1) * np.linalg.norm(d, axis=1) - np.sum(w * d, axis=1)
            rows.append(s[0] * N + s[1])
            cols.append(t[0] * N + t[1])
            vals.append(np.maximum(act, 1e-300))
    G = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                   shape=(N * N, N * N)).tocsr()
    src = int(np.argmin((X.ravel() - a[0]) ** 2 + (Y.ravel() - a[1]) ** 2))
    t0 = time.perf_counter()
    U = dijkstra(G, directed=True, indices=src)
    return U.reshape(N, N), time.perf_counter() - t0


def _mesh_figures(quick: bool) -> dict[str, float]:
    from symqp._numeric import numpy_function
    from symqp.analysis import mesh_quasipotential

    x, y = sp.symbols("x y")
    a = 3
    f = [-2 * x - a * y, 2 * a * x - y]
    box = [[-1.0, 1.0], [-1.0, 1.0]]
    F = numpy_function(f, (x, y))
    sizes = [51, 101, 200] if quick else [101, 201, 401, 1000]
    peer_sizes = [51, 101] if quick else [101, 201]
    out: dict[str, float] = {}
    base = None
    for N in sizes:
        m = mesh_quasipotential(None, f, [x, y], attractor=[0, 0], box=box, N=N)
        X, Y = np.meshgrid(m.x, m.y, indexing="ij")
        exact = 2 * X**2 + Y**2
        err = m.error(exact)
        out[f"analysis.mesh_{N}_s"] = m.seconds
        out[f"analysis.mesh_rel_err_{N}"] = err["max_rel"]
        out["analysis.mesh_compile_s"] = max(out.get("analysis.mesh_compile_s", 0.0),
                                             m.compile_seconds)
        if base is None:
            base = (N, m.K, m.seconds)
        scaled = base[2] * (N / base[0]) ** 2 * (m.K / base[1]) ** 2
        line = (f"   mesh N={N} K={m.K}: {m.seconds:.3f} s (vs N^2 K^2 scaling "
                f"{m.seconds / scaled:.2f}), max rel err {err['max_rel']:.2e}, "
                f"rms rel err {err['rms_rel']:.2e}")
        if N in peer_sizes:
            Ud, td = _dijkstra(F, box, N, m.K, (0.0, 0.0))
            ok = exact <= min(exact[0].min(), exact[-1].min(), exact[:, 0].min(), exact[:, -1].min())
            derr = float(np.max(np.abs(Ud[ok] - exact[ok])) / np.max(exact[ok]))
            out[f"analysis.dijkstra_{N}_s"] = td
            out[f"analysis.dijkstra_rel_err_{N}"] = derr
            line += (f"; scipy Dijkstra peer {td:.3f} s (OLIM speedup {td / m.seconds:.1f}x), "
                     f"err {derr:.2e} (OLIM/peer error {err['max_rel'] / derr:.3f})")
        print(line)
    top = sizes[-1]
    out["analysis.mesh_1000_s"] = out[f"analysis.mesh_{top}_s"]
    out["analysis.mesh_rel_err_1000"] = out[f"analysis.mesh_rel_err_{top}"]
    print(f"   analysis.mesh_1000_s = {out['analysis.mesh_1000_s']:.2f} s at N={top} (goal 30 s at "
          f"N=1000; ratio {out['analysis.mesh_1000_s'] / 30.0:.2f}); "
          f"compile {out['analysis.mesh_compile_s']:.2f} s")
    print(f"   analysis.mesh_rel_err_1000 = {out['analysis.mesh_rel_err_1000']:.2e} at N={top}")
    return out


def _map_figures(quick: bool) -> dict[str, float]:
    from symqp.analysis import minimum_action_path

    x, y, z = sp.symbols("x y z")
    c = 2 * (x**3 - x)
    f = [-c - y - z, -y + c, -z + c]
    U = x**4 - 2 * x**2 + y**2 + z**2 + 1
    dU = float(U.subs({x: 0, y: 0, z: 0}) - U.subs({x: -1, y: 0, z: 0}))
    t0 = time.perf_counter()
    mp = minimum_action_path(None, [-1, 0, 0], [0, 0, 0], f, [x, y, z],
                             n_images=100 if quick else 200)
    t = time.perf_counter() - t0
    err = abs(mp.action / dU - 1)
    print(f"   minimum action {mp.action:.6f} vs exact dU {dU:g}: "
          f"analysis.map_action_rel_err = {err:.2e} ({t:.2f} s, {mp.iterations} iterations)")
    return {"analysis.map_action_rel_err": err, "analysis.map_s": t}


def _exit_figures(quick: bool) -> dict[str, float]:
    from symqp.analysis import arrhenius_rate, exit_time_estimate, exit_times_mc

    x, y = sp.symbols("x y")
    V = (x**2 - 1) ** 2 / 4 + y**2 / 2
    gx, gy = sp.diff(V, x), sp.diff(V, y)
    f = [-gx - gy / 2, -gy + gx / 2]  # rotated gradient, A = [[0, 1/2], [-1/2, 0]], U = 2V
    U = 2 * V
    eps = [0.25, 0.2, 0.15] if quick else [0.25, 0.2, 0.15, 0.125]
    t0 = time.perf_counter()
    est = exit_time_estimate(U, f, [x, y], minimum=[-1, 0], saddle=[0, 0], eps=eps)
    mc = exit_times_mc(U, f, [x, y], start=[-1, 0], target=[1, 0], eps=eps, radius=0.5,
                       n_paths=100 if quick else 400, dt=1e-2, t_max=5000, seed=0)
    t = time.perf_counter() - t0
    for e, te, tm, se in zip(eps, est.times, mc["mean"], mc["stderr"]):
        print(f"   exit time eps={e:g}: Eyring-Kramers {te:.1f}, Monte Carlo {tm:.1f} ± {se:.1f} "
              f"(MC / EK = {tm / te:.2f})")
    rate = arrhenius_rate(eps, mc["mean"])
    ratio = float(np.max(np.abs(mc["mean"] / est.times - 1)))
    print(f"   fitted rate d log T / d(1/eps) = {rate:.3f} vs dU = {est.dU:g} "
          f"(ratio {rate / est.dU:.3f}); {est.note}; {t:.1f} s")
    return {"analysis.exit_rate_mc": rate, "analysis.exit_rate_rel_err": abs(rate / est.dU - 1),
            "analysis.exit_mc_vs_ek_rel_diff_max": ratio}


def run(quick: bool = False) -> dict[str, float]:
    out: dict[str, float] = {}
    out.update(_z_figures(quick))
    out.update(_mesh_figures(quick))
    out.update(_map_figures(quick))
    out.update(_exit_figures(quick))
    return out


if __name__ == "__main__":
    run(quick="--quick" in sys.argv[1:])
