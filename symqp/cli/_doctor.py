"""``symqp doctor``: which backends and extras are available, and why not.

Each optional dependency is imported once (in this process only), any exception is caught,
and for a missing one the first line of the real import error and the install command are
printed.
"""

from __future__ import annotations

import argparse
import platform
import sys
from typing import Any

__all__ = ["register", "run", "check"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "doctor",
        help="show which backends and extras are available",
        description="Check the optional dependencies (numba, torch, pysindy + cvxpy, pyoperon, "
        "pysr) and say, for each missing one, why and what to install.",
    )
    p.set_defaults(func=run)


def _version(mod: Any) -> str:
    return str(getattr(mod, "__version__", "?"))


def _dist_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def check() -> list[tuple[str, bool, str]]:
    """Return ``(component, available, detail)`` rows for the optional dependencies.

    Examples
    --------
    >>> rows = check()
    >>> [name for name, _, _ in rows][:2]
    ['numba', 'torch']
    """
    from .._optional import probe, require

    rows: list[tuple[str, bool, str]] = []

    ok, msg = probe("numba")
    rows.append(("numba", ok, msg if ok else f"{msg}; library evaluation falls back to NumPy"))

    ok, msg = probe("torch")
    if ok:
        torch = require("torch")
        try:
            cuda = bool(torch.cuda.is_available())
        except Exception:  # noqa: BLE001 - a broken driver means "no CUDA"
            cuda = False
        msg = f"{msg} (CUDA {'available' if cuda else 'not available; CPU only'})"
    rows.append(("torch", ok, msg))

    ok, msg = probe("pysindy")
    if ok:
        ps = require("pysindy")
        ok_cvx, msg_cvx = probe("cvxpy")
        has_csr3 = hasattr(ps, "ConstrainedSR3")
        if not (ok_cvx and has_csr3):
            # msg_cvx already names the import error and the install command
            why = msg_cvx if not ok_cvx else (
                "pysindy has no ConstrainedSR3; install it with: pip install 'symqp[pysindy]'"
            )
            rows.append(("pysindy", False, f"pysindy {_version(ps)} without ConstrainedSR3: {why}"))
        else:
            rows.append(("pysindy", True, f"{msg} with ConstrainedSR3 (cvxpy {_version(require('cvxpy'))})"))
    else:
        rows.append(("pysindy", False, msg))

    ok, msg = probe("pyoperon")
    rows.append(("pyoperon", ok, f"pyoperon {_dist_version('pyoperon')}" if ok else msg))

    ok, msg = probe("pysr")
    rows.append(("pysr", ok, msg if ok else f"needs Julia (PySR runs on it); {msg}"))
    return rows


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import scipy
    import sympy

    from .. import __version__

    print(f"symqp {__version__} on Python {platform.python_version()} ({platform.platform()})")
    print(f"core: numpy {np.__version__}, scipy {scipy.__version__}, sympy {sympy.__version__}")
    rows = check()
    width = max(len(name) for name, _, _ in rows)
    for name, ok, detail in rows:
        print(f"  {name:<{width}}  {'available' if ok else 'missing  '}  {detail}")
    missing = [name for name, ok, _ in rows if not ok]
    print(f"{len(rows) - len(missing)} of {len(rows)} optional components available"
          + (f"; missing: {', '.join(missing)}" if missing else ""))
    sys.stdout.flush()
    return 0
