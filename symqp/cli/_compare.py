"""``symqp compare DATA.npz --library SPEC --backends sr3,operon[,pysr] [--out DIR]``.

One neural decomposition, several regression backends on the same problem; prints the
comparison table, writes the Pareto plot and one result JSON per backend into DIR.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .._errors import BackendError, DataError, SymqpError
from .._estimator import check_seed
from ._argtypes import integer, positive_float, positive_int
from ._fit import _check_data_path, translate_errors

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "compare",
        help="compare regression backends on one decomposition",
        description="Train the decomposition once, run each backend on the same regression "
        "problem, print the table and write the Pareto plot.",
    )
    p.add_argument("data", metavar="DATA.npz", help="snapshot pairs (x0, xh, h, optional names, traj)")
    p.add_argument("--library", required=True, metavar="SPEC", help="library spec, e.g. 'poly(4)'")
    p.add_argument("--backends", default="sr3,operon", metavar="LIST", help="comma-separated names (default sr3,operon)")
    p.add_argument("--v-library", metavar="SPEC", default=None, help="hypothesis space of V")
    p.add_argument("--g-library", metavar="SPEC", default=None, help="hypothesis space of g")
    p.add_argument("--out", metavar="DIR", default="compare_out", help="output folder (default compare_out/)")
    p.add_argument("--seed", type=integer, default=0, metavar="N", help="random seed (default 0)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="torch device")
    p.add_argument("--steps", type=positive_int, default=None, metavar="N", help="training steps")
    p.add_argument("--tau", type=positive_float, default=None, metavar="T", help="sublevel threshold above min V_theta")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_seed("", "--seed", args.seed)
    _check_data_path(args.data)
    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not names:
        raise BackendError("--backends is empty; give names like sr3,operon")
    if len(set(names)) != len(names):
        raise BackendError(f"--backends lists a backend twice: {args.backends}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out must be a folder, {out} is a file")
    try:
        import symqp
        from symqp.backends import plot_pareto

        comparison = symqp.compare(
            args.data,
            library=args.library,
            backends=names,
            v_library=args.v_library,
            g_library=args.g_library,
            tau=args.tau,
            seed=args.seed,
            device=args.device,
            steps=args.steps,
        )
        print(comparison.to_text())
        out.mkdir(parents=True, exist_ok=True)
        results = getattr(comparison, "results", {})
        for name, result in results.items():
            result.save(out / f"result_{name}.json")
        fronts = {name: r for name, r in results.items() if r.fit is not None and r.fit.front}
        if fronts:
            plot_pareto(fronts, out / "pareto.png")
    except SymqpError:
        raise
    except Exception as exc:  # third-party internals -> one line, exit 2
        raise translate_errors(exc, "compare") from exc
    plot = f"{out}/pareto.png and " if fronts else ""
    print(f"wrote {plot}{len(results)} result file(s) to {out}")
    return 0
