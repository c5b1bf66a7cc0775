"""Built-in systems by name: ``get_system``, ``list_systems`` and per-system sampling defaults."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from .._errors import DataError
from ._builtin import archetypal3d, graphene, linear_nongradient, maier_stein, rotated_gradient
from ._hamiltonian import (
    HamiltonianSystem,
    central_force,
    coulomb,
    double_well,
    harmonic_oscillator,
)
from ._system import System

__all__ = ["get_system", "list_systems", "sampling_defaults"]

# name -> (constructor, sampling defaults n_traj / n_pairs / h / dt)
_REGISTRY: dict[str, tuple[Callable[..., Any], dict[str, float]]] = {
    # App. B of the seed paper for its two examples
    "archetypal3d": (archetypal3d, {"n_traj": 5000, "n_pairs": 50, "h": 0.01, "dt": 0.1}),
    "graphene": (graphene, {"n_traj": 2000, "n_pairs": 100, "h": 10.0, "dt": 100.0}),
    "maier_stein": (maier_stein, {"n_traj": 2000, "n_pairs": 50, "h": 0.01, "dt": 0.1}),
    "rotated_gradient": (rotated_gradient, {"n_traj": 2000, "n_pairs": 50, "h": 0.01, "dt": 0.1}),
    "linear_nongradient": (linear_nongradient, {"n_traj": 1000, "n_pairs": 50, "h": 0.01, "dt": 0.1}),
    "harmonic_oscillator": (harmonic_oscillator, {"n_traj": 200, "n_pairs": 100, "h": 0.01, "dt": 0.05}),
    "double_well": (double_well, {"n_traj": 200, "n_pairs": 100, "h": 0.01, "dt": 0.05}),
    "central_force": (central_force, {"n_traj": 200, "n_pairs": 100, "h": 0.01, "dt": 0.05}),
    "coulomb": (coulomb, {"n_traj": 200, "n_pairs": 100, "h": 0.001, "dt": 0.01}),
}


def _first_line(fn: Callable[..., Any]) -> str:
    doc = inspect.getdoc(fn) or ""
    return doc.splitlines()[0].replace("``", "") if doc else ""


def list_systems() -> dict[str, str]:
    """Names of the built-in systems with a one-line description of each.

    Examples
    --------
    >>> "archetypal3d" in list_systems()
    True
    """
    return {name: _first_line(ctor) for name, (ctor, _) in _REGISTRY.items()}


def _lookup(name: str) -> tuple[Callable[..., Any], dict[str, float]]:
    if not isinstance(name, str) or name not in _REGISTRY:
        raise DataError(f"unknown system {name!r}; choose from {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def get_system(name: str, **params: Any) -> System | HamiltonianSystem:
    """A built-in system by name, with optional parameters.

    Parameters
    ----------
    name : str
        One of :func:`list_systems`.
    **params
        Parameters of that system (``alpha=2`` for ``maier_stein``, ...).

    Raises
    ------
    DataError
        For an unknown name or a parameter the system does not have.

    Examples
    --------
    >>> get_system("linear_nongradient", a=2).field
    (-2*x - 2*y, 4*x - y)
    >>> get_system("maier_stein", gamma=1)
    Traceback (most recent call last):
    ...
    symqp._errors.DataError: system 'maier_stein' has no parameter 'gamma'; its parameters: alpha, beta
    """
    ctor, _ = _lookup(name)
    known = list(inspect.signature(ctor).parameters)
    for key in params:
        if key not in known:
            listed = ", ".join(known) or "none"
            raise DataError(f"system {name!r} has no parameter {key!r}; its parameters: {listed}")
    return ctor(**params)


def sampling_defaults(name: str) -> dict[str, float]:
    """Default ``n_traj``, ``n_pairs``, ``h``, ``dt`` for sampling a built-in system.

    The seed paper's App. B values for ``archetypal3d`` and ``graphene``.

    Examples
    --------
    >>> sampling_defaults("archetypal3d")
    {'n_traj': 5000, 'n_pairs': 50, 'h': 0.01, 'dt': 0.1}
    """
    return dict(_lookup(name)[1])
