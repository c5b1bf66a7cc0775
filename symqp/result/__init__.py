"""The exact symbolic result: the value every identification route returns.

- :class:`Result` — U = 2V, grad V, g, f as SymPy expressions, metrics, timings, the
  backend's fit; ``save``/``load`` as JSON (schema ``"symqp.result/1"``) without eval.
- :func:`coefficient_errors` — term-by-term comparison with an exact polynomial U.
- :class:`CoefficientTable` — bootstrap intervals and inclusion probabilities of the
  coefficients (``Result.coefficient_table()`` on results fitted from noisy pairs).

The pipelines that produce a Result live in :mod:`symqp.identify`; this package imports
nothing above :mod:`symqp.backends`.
"""

from __future__ import annotations

from ._coefficients import CoefficientErrors as CoefficientErrors
from ._coefficients import coefficient_errors as coefficient_errors
from ._result import MODELS as MODELS
from ._result import SCHEMA as SCHEMA
from ._result import Result as Result
from ._result import expr_to_str as expr_to_str
from ._result import load_result as load_result
from ._uncertainty import CoefficientTable as CoefficientTable

__all__ = [
    "Result",
    "load_result",
    "coefficient_errors",
    "CoefficientErrors",
    "CoefficientTable",
    "expr_to_str",
    "SCHEMA",
    "MODELS",
]
