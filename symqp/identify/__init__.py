"""Identification: the pipelines that turn data into a :class:`~symqp.result.Result`.

- :func:`fit` — snapshot pairs to an exact quasipotential (the orthogonal-decomposition
  pipeline: decomposition, sublevel points, scaled regression problem, backend,
  refinement on the pairs).
- :class:`Route` — the interface of an identification route (``NeuralRoute``, and the
  network-free ``SymbolicRoute``); :func:`register_route` adds one.
- :func:`compare` — one decomposition, several backends on the same regression problem.
- :func:`fit_hamiltonian` — (q, p) trajectories to a potential V(q) (Bhat's method).
- :func:`fit_epr` — stationary samples to a landscape U (EPR loss).

Heavy modules (torch, the backends) are imported only when a pipeline runs.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> private module defining it
_LAZY = {
    "fit": "._fit",
    "credible": "._fit",
    "AUTO_LIMITS": "._fit",
    "choose_tau": "._region",
    "FitSettings": "._settings",
    "Route": "._route",
    "get_route": "._route",
    "register_route": "._route",
    "route_names": "._route",
    "NeuralRoute": "._neural",
    "compare": "._compare",
    "fit_hamiltonian": "._hamiltonian",
    "fit_epr": "._epr",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'symqp.identify' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
