"""Neural learners that produce the targets of the symbolic regression.

- :class:`NeuralDecomposition` — orthogonal decomposition f = −∇V + g from snapshot pairs.
- :class:`HamiltonianPotential` — a potential V(q) from (q, p) trajectories.
- :class:`EPRLandscape` — a landscape U from steady-state samples (EPR loss).

torch is imported only when a model is fitted; the classes themselves import without it.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> private module defining it
_LAZY = {
    "NeuralDecomposition": "._neural",
    "representative_subset": "._subset",
    "HamiltonianPotential": "._hamiltonian",
    "EPRLandscape": "._epr",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'symqp.decompose' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
