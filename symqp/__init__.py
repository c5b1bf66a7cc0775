"""symqp: exact symbolic quasipotentials from trajectory data.

The pipeline, in the order data flows::

    symqp.systems    built-in vector fields as SymPy objects (exact U where known)
    symqp.data       snapshot pairs (x0, xh, h), sampling, files, validation
    symqp.decompose  neural orthogonal decomposition f = -grad V + g (torch)
    symqp.library    SymPy function libraries, gradient maps, constraints, Numba codegen
    symqp.backends   regression backends: sr3, stlsq, operon, pysr
    symqp.result     the exact result (U = 2V, grad V, g, f), save/load
    symqp.analysis   stationary points, densities, paths, exit times, mesh reference

``import symqp`` is light: torch, numba kernels, pyoperon, pysr and cvxpy are imported only
when a feature that needs them is used. Top-level names below are resolved lazily.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._errors import (
    AnalysisError,
    BackendError,
    DataError,
    IdentificationError,
    LibraryError,
    MissingDependencyError,
    ParameterError,
    ParseError,
    ResultFormatError,
    SymqpError,
    TrainingError,
)

__version__ = "0.1.0"

# public name -> module that defines it (imported on first access)
_LAZY: dict[str, str] = {
    # systems
    "System": "symqp.systems",
    "get_system": "symqp.systems",
    # data
    "Pairs": "symqp.data",
    "sample_pairs": "symqp.data",
    "load_pairs": "symqp.data",
    "save_pairs": "symqp.data",
    # library
    "Library": "symqp.library",
    "poly": "symqp.library",
    "trig": "symqp.library",
    "rational": "symqp.library",
    "parse_library": "symqp.library",
    # backends
    "Problem": "symqp.backends",
    "Fit": "symqp.backends",
    "get_backend": "symqp.backends",
    "available_backends": "symqp.backends",
    # decomposition
    "NeuralDecomposition": "symqp.decompose",
    "HamiltonianPotential": "symqp.decompose",
    "EPRLandscape": "symqp.decompose",
    # result and the main entry point
    "Result": "symqp.result",
    "load_result": "symqp.result",
    "fit": "symqp.identify",
    "compare": "symqp.identify",
}

_SUBMODULES = {"systems", "data", "library", "backends", "decompose", "identify", "result", "analysis", "cli"}

__all__ = sorted(
    [
        "AnalysisError",
        "BackendError",
        "DataError",
        "IdentificationError",
        "LibraryError",
        "MissingDependencyError",
        "ParameterError",
        "ParseError",
        "ResultFormatError",
        "SymqpError",
        "TrainingError",
        "__version__",
        *_LAZY,
        *_SUBMODULES,
    ]
)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"symqp.{name}")
    raise AttributeError(f"module 'symqp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
