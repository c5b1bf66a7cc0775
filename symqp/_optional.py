"""Lazy imports of optional dependencies with messages that say what to install."""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

from ._errors import MissingDependencyError, first_line

__all__ = ["require", "probe"]

# module name -> (extra that installs it, what it is needed for)
_EXTRAS: dict[str, tuple[str, str]] = {
    "torch": ("torch", "neural decompositions (NeuralDecomposition, HamiltonianPotential, EPRLandscape)"),
    "pysindy": ("pysindy", "the pysindy cross-check of the sr3 backend"),
    "cvxpy": ("pysindy", "pysindy's ConstrainedSR3"),
    "pyoperon": ("operon", "the 'operon' evolutionary regression backend"),
    "pysr": ("pysr", "the 'pysr' backend"),
    "numba": ("(core dependency)", "compiled library evaluation"),
    "joblib": ("sweep", "parallel sweeps on this machine (symqp sweep --jobs N)"),
    "distributed": ("sweep", "sweeps on Dask (symqp sweep --scheduler / --local-cluster)"),
    # in both the sweep and the notebooks extras
    "pandas": ("notebooks", "DataFrames (Result.coefficients(), Result.front(), sweep tables: read_table, "
                            "symqp sweep-plot)"),
    "yaml": ("sweep", "YAML sweep specifications"),
}


def _hint(name: str) -> str:
    extra, what = _EXTRAS.get(name, (name, name))
    if extra.startswith("("):
        return f"{name} is needed for {what}; install it with: pip install {name}"
    return f"{name} is needed for {what}; install it with: pip install 'symqp[{extra}]'"


def require(name: str) -> ModuleType:
    """Import an optional module or raise :class:`MissingDependencyError` naming the extra.

    Any exception during import is caught (``import pysr`` raises ``OSError`` when Julia
    cannot be downloaded), and its first line is kept in the message.

    Examples
    --------
    >>> np = require("numpy")
    >>> np.__name__
    'numpy'
    """
    if name == "torch" and "torch" not in sys.modules:
        # With OpenMP's default (active, spinning) wait policy, torch's worker threads spin at
        # every barrier; on a busy machine with as many threads as cores each small kernel can
        # then cost a scheduler time slice. Measured on a loaded 2-core machine: 1.27 s per
        # training evaluation with 2 spinning threads against 0.07 s with 1 thread and 0.3 s
        # with passive waiting. Passive waiting costs little on an idle machine; users can
        # still set OMP_WAIT_POLICY themselves (it is read once, when torch is loaded).
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        return importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available"
        first = first_line(exc)
        raise MissingDependencyError(
            f"{_hint(name)} (import failed: {type(exc).__name__}: {first})"
        ) from exc


def probe(name: str) -> tuple[bool, str]:
    """Return ``(available, message)`` for an optional module without raising."""
    try:
        mod = require(name)
    except MissingDependencyError as exc:
        return False, str(exc)
    version = getattr(mod, "__version__", None)
    if version is None:
        try:
            from importlib.metadata import PackageNotFoundError
            from importlib.metadata import version as _dist_version

            version = _dist_version(name)
        except (ImportError, PackageNotFoundError):
            version = "?"
    return True, f"{name} {version}"
