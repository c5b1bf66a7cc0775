"""The exact symbolic result and the main entry point.

- :class:`Result` — U = 2V, grad V, g, f as SymPy expressions, metrics, timings, the
  backend's fit; ``save``/``load`` as JSON (schema ``"symqp.result/1"``) without eval.
- :func:`fit` — snapshot pairs to a :class:`Result` (neural decomposition, sublevel
  points, constrained regression).
- :func:`compare` — one decomposition, several backends on the same regression problem.
- :func:`coefficient_errors` — term-by-term comparison with an exact polynomial U.
"""

from __future__ import annotations

from ._compare import CoefficientErrors as CoefficientErrors
from ._compare import coefficient_errors as coefficient_errors
from ._compare import compare as compare
from ._fit import choose_tau as choose_tau
from ._fit import fit as fit
from ._result import MODELS as MODELS
from ._result import SCHEMA as SCHEMA
from ._result import Result as Result
from ._result import expr_to_str as expr_to_str
from ._result import load_result as load_result

__all__ = [
    "Result",
    "load_result",
    "fit",
    "compare",
    "choose_tau",
    "coefficient_errors",
    "CoefficientErrors",
    "expr_to_str",
    "SCHEMA",
    "MODELS",
]
