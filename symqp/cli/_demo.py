"""``symqp demo [--out DIR] [--quick]``: Example 1 of the paper end to end.

Simulates the archetypal 3-D system (eq. 17) with the sampling of App. B, fits the
quasipotential with the default pipeline, prints the identified U next to the exact
U = x**4 - 2x**2 + y**2 + z**2 + 1 with the coefficient errors, and saves the data and the
result in DIR (default ``demo_out/``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from .._estimator import check_seed
from ._argtypes import integer

__all__ = ["register", "run", "EXAMPLE1", "EXAMPLE1_QUICK"]

# App. B of the paper: N = 5000 trajectories, M = 50 pairs each, h = 0.01, t_j = 0.1 j;
# symbolic step with poly(5) for V and g.
EXAMPLE1: dict[str, Any] = {"n_traj": 5000, "n_pairs": 50, "h": 0.01, "dt": 0.1, "library": "poly(5)", "steps": None}
# a smoke run: tiny data, few training steps (the answer is rough)
EXAMPLE1_QUICK: dict[str, Any] = {"n_traj": 200, "n_pairs": 20, "h": 0.01, "dt": 0.1, "library": "poly(4)", "steps": 200}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run Example 1 of the paper end to end",
        description="Simulate the archetypal 3-D model, fit U with the default pipeline, "
        "compare with the exact U and save data + result.",
    )
    p.add_argument("--out", metavar="DIR", default="demo_out", help="output folder (default demo_out/)")
    p.add_argument("--quick", action="store_true", help="tiny data and few steps (a smoke run)")
    p.add_argument("--seed", type=integer, default=0, help="random seed (default 0)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="torch device")
    p.set_defaults(func=run)


def run_example1(
    out: str | Path | None, *, quick: bool = False, seed: int = 0, device: str = "cpu", verbose: bool = True
) -> dict[str, Any]:
    """Simulate, fit and compare Example 1; returns the result, the errors and timings."""
    import symqp
    from symqp.result import coefficient_errors

    cfg = EXAMPLE1_QUICK if quick else EXAMPLE1
    system = symqp.systems.archetypal3d()
    t0 = time.perf_counter()
    pairs = symqp.data.sample_pairs(
        system, n_traj=cfg["n_traj"], n_pairs=cfg["n_pairs"], h=cfg["h"], dt=cfg["dt"], seed=seed
    )
    t_sim = time.perf_counter() - t0
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        symqp.data.save_pairs(pairs, out / "example1_pairs.npz")
    result = symqp.fit(pairs, library=cfg["library"], seed=seed, device=device, steps=cfg["steps"], verbose=verbose)
    result.timings["simulate"] = t_sim
    errors = coefficient_errors(result.U, system.U, system.variables)
    result.metrics["max_coef_err"] = errors.max_abs
    result.metrics["exact_support"] = int(errors.exact_support)
    if out is not None:
        result.save(out / "example1_result.json")
    return {"system": system, "pairs": pairs, "result": result, "errors": errors}


def run(args: argparse.Namespace) -> int:
    check_seed("", "--seed", args.seed)
    t0 = time.perf_counter()
    out = run_example1(args.out, quick=args.quick, seed=args.seed, device=args.device)
    result, errors, system = out["result"], out["errors"], out["system"]
    print(result.pretty())
    print()
    print(f"exact       U = {system.U}")
    print(f"identified  U = {result.pretty().splitlines()[0].split(' = ', 1)[1]}")
    print(errors.to_text())
    print(f"wall time {time.perf_counter() - t0:.1f} s; data and result in {Path(args.out)}/")
    return 0
