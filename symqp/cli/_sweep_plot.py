"""``symqp sweep-plot TABLE --x COL --y COL``: a sweep figure against a swept parameter.

Contract::

    symqp sweep-plot DIR|TABLE.csv --x COLUMN --y COLUMN [--by COLUMN] [--out FIG.png] [--logy]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .._errors import DataError

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "sweep-plot",
        help="plot a column of a sweep table against a swept parameter",
        description="Plot --y (e.g. dU, Z_eps_0.1, exit_time_eps_0.1, max_coef_err) against --x "
        "(e.g. params.beta, noise, n_traj); points with the same x are averaged (error bars: "
        "standard deviation, e.g. over seeds); --by draws a line per value of a column.",
    )
    p.add_argument("table", metavar="TABLE", help="sweep folder or its table.csv")
    p.add_argument("--x", required=True, metavar="COLUMN", help="swept column, e.g. params.beta")
    p.add_argument("--y", required=True, metavar="COLUMN", help="measured column, e.g. dU")
    p.add_argument("--by", default=None, metavar="COLUMN", help="one line per value of this column")
    p.add_argument("--out", default=None, metavar="FIG.png", help="figure file (default TABLE folder/Y-vs-X.png)")
    p.add_argument("--logy", action="store_true", help="logarithmic y axis")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..sweep import plot_sweep

    src = Path(args.table)
    if not src.exists():
        raise DataError(f"no sweep table at {args.table}")
    folder = src if src.is_dir() else src.parent
    safe = lambda s: "".join(c if c.isalnum() or c in "._-" else "_" for c in s)
    out = Path(args.out) if args.out else folder / f"{safe(args.y)}-vs-{safe(args.x)}.png"
    plot_sweep(src, args.x, args.y, by=args.by, path=out, logy=args.logy)
    print(f"wrote {out}")
    return 0
