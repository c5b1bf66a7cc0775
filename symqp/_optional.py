"""Lazy imports of optional dependencies with messages that say what to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from ._errors import MissingDependencyError

__all__ = ["require", "probe"]

# module name -> (extra that installs it, what it is needed for)
_EXTRAS: dict[str, tuple[str, str]] = {
    "torch": ("torch", "neural decompositions (NeuralDecomposition, HamiltonianPotential, EPRLandscape)"),
    "pysindy": ("pysindy", "the pysindy cross-check of the sr3 backend"),
    "cvxpy": ("pysindy", "pysindy's ConstrainedSR3"),
    "pyoperon": ("operon", "the 'operon' evolutionary regression backend"),
    "pysr": ("pysr", "the 'pysr' backend (also needs a working Julia)"),
    "numba": ("(core dependency)", "compiled library evaluation"),
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
    try:
        return importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise MissingDependencyError(
            f"{_hint(name)} (import failed: {type(exc).__name__}: {first})"
        ) from exc


def probe(name: str) -> tuple[bool, str]:
    """Return ``(available, message)`` for an optional module without raising."""
    try:
        mod = require(name)
    except MissingDependencyError as exc:
        return False, str(exc)
    return True, f"{name} {getattr(mod, '__version__', '?')}"
