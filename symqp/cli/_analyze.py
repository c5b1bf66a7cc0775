"""``symqp analyze RESULT.json``: stationary points, barriers, Z_eps, exit times, prediction error.

Contract::

    symqp analyze RESULT.json [--eps E [E ...]] [--box=LO,HI,LO,HI,...] [--system NAME]
        [--n-traj N] [--t-final T]
"""

from __future__ import annotations

import argparse
from typing import Any

from .._errors import AnalysisError
from ._argtypes import positive_float, positive_int

__all__ = ["add_common", "load_inputs", "parse_box", "register", "run"]


def parse_box(text: str | None, d: int) -> list[list[float]] | None:
    """``"LO,HI,LO,HI,..."`` (commas or spaces) -> ``[[LO, HI], ...]``, d rows; plain floats only."""
    if text is None:
        return None
    parts = [p for p in text.replace(",", " ").split() if p]
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        raise AnalysisError(f"--box must be 2 x {d} numbers LO,HI,..., got {text!r}") from None
    if len(vals) != 2 * d:
        raise AnalysisError(f"--box needs {2 * d} numbers (LO,HI per variable), got {len(vals)}")
    return [[vals[2 * i], vals[2 * i + 1]] for i in range(d)]


def add_common(p: argparse.ArgumentParser) -> None:
    """Arguments shared by ``analyze`` and ``report``."""
    p.add_argument("result", metavar="RESULT.json", help="result file written by 'symqp fit'")
    p.add_argument("--eps", type=positive_float, nargs="+", default=[0.05, 0.1, 0.2],
                   metavar="E", help="noise strengths (default 0.05 0.1 0.2)")
    p.add_argument("--box", default=None, metavar="LO,HI,...",
                   help="region, LO,HI per variable (write --box=-2,2,-1,1 for negative numbers); "
                        "default: the result's data region or the system's box")
    p.add_argument("--system", default=None, metavar="NAME",
                   help="built-in system with the true field (prediction error, exact U)")


def load_inputs(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """Load the result, the optional reference system and the box from parsed arguments."""
    from ..result import load_result

    result = load_result(args.result)
    system = None
    if args.system is not None:
        from ..systems import get_system

        system = get_system(args.system)
        names = tuple(str(v) for v in getattr(system, "variables", ()))
        if names != tuple(result.variables):
            raise AnalysisError(
                f"system {args.system!r} has variables {list(names)}, the result "
                f"{list(result.variables)}"
            )
    box = parse_box(args.box, len(result.variables))
    return result, system, box


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "analyze",
        help="stationary points, barriers, Z_eps and prediction error of a result",
        description="Analyse the exact U of RESULT.json: stationary points of f (classified), "
        "barriers dU, the partition function Z_eps, Eyring-Kramers exit-time estimates and, "
        "with --system, the long-term prediction error against the true field.",
    )
    add_common(p)
    p.add_argument("--n-traj", type=positive_int, default=20, metavar="N",
                   help="trajectories for the prediction error (default 20)")
    p.add_argument("--t-final", type=positive_float, default=None, metavar="T",
                   help="trajectory length for the prediction error (default: ten slowest "
                        "relaxation times of the system)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis import format_summary, summarize

    result, system, box = load_inputs(args)
    summary = summarize(result, eps=args.eps, box=box, reference=system, n_traj=args.n_traj,
                        t_final=args.t_final)
    print(f"U({', '.join(result.variables)}) = {result.U}")
    print(format_summary(summary, result.variables))
    return 0
