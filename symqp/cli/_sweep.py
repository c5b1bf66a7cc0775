"""``symqp sweep SPEC.toml``: run a parameter sweep (resumable), locally or on Dask.

Contract::

    symqp sweep SPEC.toml|SPEC.yaml|SPEC.json [--out DIR] [--jobs N]
        [--scheduler tcp://HOST:PORT | --local-cluster] [--threads N] [-q]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._argtypes import positive_int

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="run a parameter sweep: simulate, fit and analyse every point of a grid",
        description="Every point of SPEC (a grid or list over systems, parameters, data sizes, noise, "
        "libraries, backends, routes and seeds) is simulated or loaded, fitted and analysed (barrier, "
        "Z_eps, exit time); one row per point goes to DIR/table.csv and the result to "
        "DIR/results/<id>.json. Points already in the table are skipped, so a rerun resumes.",
    )
    p.add_argument("spec", metavar="SPEC", help="sweep specification (.toml, .yaml or .json)")
    p.add_argument("--out", metavar="DIR", default=None, help="sweep folder (default SPEC stem + .sweep)")
    p.add_argument("--jobs", type=positive_int, default=1, metavar="N",
                   help="points run at once (joblib processes, or LocalCluster workers); default 1")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786")
    where.add_argument("--local-cluster", action="store_true",
                       help="run on a Dask LocalCluster of --jobs worker processes on this machine")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="BLAS/OpenMP/Numba threads per point (default: cores / jobs; 1 on --scheduler)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..sweep import run_sweep

    quiet = bool(getattr(args, "quiet", False))
    res = run_sweep(args.spec, args.out, jobs=args.jobs, scheduler=args.scheduler,
                    local_cluster=args.local_cluster, threads=args.threads, progress=not quiet)  # fmt: skip
    print(f"{res.n_points} points: {res.ok} run now, {res.skipped} already done, {res.failed} failed "
          f"({res.executor}, {res.wall_s:.1f} s)")  # fmt: skip
    print(f"table: {res.table}")
    for pid, err in res.failures:
        print(f"failed {pid}: {err}", file=sys.stderr)
    if res.failures:
        print(f"{res.failed} point(s) failed (see {res.out / 'failures.jsonl'}); rerun to try them again",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0
