"""``symqp report RESULT.json --out DIR``: figures (PNG) and a self-contained index.html.

Contract::

    symqp report RESULT.json --out DIR [--system NAME] [--eps E ...] [--box=LO,HI,...]
        [--mesh-n N] [--plane I,J]
"""

from __future__ import annotations

import argparse
from typing import Any

from .._errors import AnalysisError
from ._analyze import add_common, load_inputs
from ._argtypes import positive_int

__all__ = ["register", "run"]


def _plane(text: str) -> tuple[int, int]:
    parts = text.replace(",", " ").split()
    try:
        i, j = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two indices I,J, got {text!r}") from None
    return i, j


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "report",
        help="write figures and an HTML report for a result",
        description="Figures in the style of the paper (trajectories, downhill/circulatory "
        "fields, U contours with a mesh reference in 2D, invariant densities, Pareto front) "
        "and a self-contained index.html in DIR.",
    )
    add_common(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--mesh-n", type=positive_int, default=201, metavar="N",
                   help="grid size of the 2D mesh reference (default 201)")
    p.add_argument("--plane", type=_plane, default=(0, 1), metavar="I,J",
                   help="variables shown on the plots (default 0,1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis import write_report

    result, system, box = load_inputs(args)
    if args.mesh_n < 3:
        raise AnalysisError(f"--mesh-n must be at least 3, got {args.mesh_n}")
    page = write_report(result, args.out, reference=system, eps=args.eps, box=box,
                        plane=args.plane, mesh_N=args.mesh_n)
    names = sorted(p.name for p in page.parent.glob("*.png"))
    print(f"wrote {page} and {len(names)} figures: {', '.join(names)}")
    return 0
