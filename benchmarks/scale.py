"""Cost of an end-to-end fit against the number of variables d = 2, 4, 6, 8, 10.

The system (``benchmarks/_scale_system.py``) is a rotated gradient f = -(I + A)∇V with a
double well in x1, quadratic in the other variables and two couplings, so U = 2V exactly;
data as App. B (2000 trajectories × 50 pairs, h = 0.01, dt = 0.1) and the poly(4) library
(15 terms at d = 2, 1001 at d = 10). Each fit runs in its own process: the simulation and
``symqp.fit(..., method=route)``, timed together, with the process's peak resident memory
(``resource.getrusage``) and the largest U coefficient error against the exact U.

Figures, per route (``symbolic``; ``neural`` too, unless ``SYMQP_SCALE_ROUTES`` says
otherwise): ``scale.<route>.d<d>.wall_s``, ``.peak_mb``, ``.max_coef_err``,
``.exact_support``, ``scale.<route>.exponent`` (slope of log wall time against log d, least
squares); the default route (symbolic) also as ``scale.d10_wall_s``, ``scale.d10_peak_mb``
and ``scale.exponent``; ``scale.load_avg`` is the 1-minute load average at the start (the
machine is shared). The peer of each wall time is the 600 s goal at d = 10 and the d = 2 fit.

Quick mode (CI smoke): d = 2, 3, 4, 200 trajectories × 20 pairs, poly(4), symbolic route,
in this process (the peak memory is then the largest so far, not each fit's own).

Run: ``python benchmarks/scale.py [--quick]``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOAL_S = 600.0  # d = 10, poly(4), 2000 x 50 pairs, end to end
FULL = {"dims": (2, 4, 6, 8, 10), "n_traj": 2000, "n_pairs": 50, "degree": 4, "timeout": 3000}
QUICK = {"dims": (2, 3, 4), "n_traj": 200, "n_pairs": 20, "degree": 4, "timeout": 300, "in_process": True}


def one(d: int, route: str, n_traj: int, n_pairs: int, degree: int) -> dict[str, float]:
    """Simulate and fit one system in this process; wall time, peak memory and accuracy."""
    import resource

    sys.path.insert(0, str(HERE))
    from _scale_system import scale_system

    import symqp
    from symqp.result import coefficient_errors

    system = scale_system(d)
    t0 = time.perf_counter()
    pairs = symqp.data.sample_pairs(system, n_traj=n_traj, n_pairs=n_pairs, h=0.01, dt=0.1, seed=0)
    t_sim = time.perf_counter() - t0
    res = symqp.fit(pairs, library=f"poly({degree})", method=route, seed=0, verbose=False)
    wall = time.perf_counter() - t0
    ce = coefficient_errors(res.U, system.U, system.variables)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    timings = {k: float(v) for k, v in res.timings.items() if isinstance(v, (int, float))}
    return {"wall_s": wall, "simulate_s": t_sim, "peak_mb": peak, "max_coef_err": ce.max_abs,
            "exact_support": float(ce.exact_support), "route": res.metrics.get("route"), "timings": timings}  # fmt: skip


def _child(d: int, route: str, cfg: dict) -> dict | None:
    """Run :func:`one` in a fresh process (its own peak memory); None if it failed or ran out of time."""
    if cfg.get("in_process"):
        try:
            return one(d, route, cfg["n_traj"], cfg["n_pairs"], cfg["degree"])
        except Exception as exc:  # noqa: BLE001 - report the failed size and go on
            print(f"  d = {d} ({route}) failed: {type(exc).__name__}: {exc}", flush=True)
            return None
    code = (f"import json, sys; sys.path.insert(0, {str(HERE)!r}); import scale; "
            f"print('RESULT ' + json.dumps(scale.one({d}, {route!r}, {cfg['n_traj']}, {cfg['n_pairs']}, "
            f"{cfg['degree']})))")  # fmt: skip
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=cfg["timeout"],
                              check=False)
    except subprocess.TimeoutExpired:
        print(f"  d = {d} ({route}): no result within {cfg['timeout']} s", flush=True)
        return None
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    print(f"  d = {d} ({route}) failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}", flush=True)
    return None


def exponent(dims, walls) -> float:
    """Slope b of log(wall) = a + b log(d), least squares.

    Examples
    --------
    >>> round(exponent([2, 4, 8], [1.0, 8.0, 64.0]), 12)
    3.0
    """
    xs, ys = [math.log(d) for d in dims], [math.log(w) for w in walls]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def run(quick: bool = False) -> dict[str, float]:
    cfg = QUICK if quick else FULL
    routes = ("symbolic",) if quick else tuple(os.environ.get("SYMQP_SCALE_ROUTES", "symbolic,neural").split(","))
    figures: dict[str, float] = {"scale.load_avg": os.getloadavg()[0]}
    print(f"poly({cfg['degree']}), {cfg['n_traj']} x {cfg['n_pairs']} pairs; load average {figures['scale.load_avg']:.2f}")
    print(f"{'route':9s} {'d':>3s} {'terms':>6s} {'wall s':>9s} {'peak MB':>9s} {'max coef err':>13s} support  load")
    for route in routes:
        dims, walls = [], []
        for d in cfg["dims"]:
            r = _child(d, route, cfg)
            if r is None:
                continue
            key = f"scale.{route}.d{d}"
            figures.update({f"{key}.wall_s": r["wall_s"], f"{key}.peak_mb": r["peak_mb"],
                            f"{key}.max_coef_err": r["max_coef_err"], f"{key}.exact_support": r["exact_support"]})  # fmt: skip
            dims.append(d)
            walls.append(r["wall_s"])
            terms = math.comb(d + cfg["degree"], cfg["degree"])
            ratio = f"  ({r['wall_s'] / GOAL_S:.2f}x the {GOAL_S:.0f} s goal)" if d == 10 else \
                f"  ({r['wall_s'] / walls[0]:.3g}x d = {dims[0]})"  # fmt: skip
            print(f"{route:9s} {d:3d} {terms:6d} {r['wall_s']:9.1f} {r['peak_mb']:9.0f} {r['max_coef_err']:13.2e} "
                  f"{'exact' if r['exact_support'] else 'differs':7s} {os.getloadavg()[0]:5.2f}{ratio}", flush=True)  # fmt: skip
            print(f"          stages: {', '.join(f'{k} {v:.1f}' for k, v in r['timings'].items())}", flush=True)
        if len(dims) >= 2:
            figures[f"scale.{route}.exponent"] = exponent(dims, walls)
            print(f"{route}: wall time ~ d^{figures[f'scale.{route}.exponent']:.2f} over d = {dims}")
    sym = "scale.symbolic"
    for name, key in (("d10_wall_s", f"{sym}.d10.wall_s"), ("d10_peak_mb", f"{sym}.d10.peak_mb"),
                      ("exponent", f"{sym}.exponent")):  # fmt: skip
        if key in figures:
            figures[f"scale.{name}"] = figures[key]
    return figures


if __name__ == "__main__":
    run(quick="--quick" in sys.argv[1:])
