"""The ``"uncertainty"`` record of a result: coefficient intervals and inclusion probabilities.

Written by the symbolic route on noisy pairs (a constrained cluster bootstrap, see
:mod:`symqp.identify._uncertainty`) and checked field by field when a result is loaded.
:class:`CoefficientTable` is its readable view (:meth:`symqp.result.Result.coefficient_table`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from .._errors import AnalysisError, ResultFormatError

__all__ = ["CoefficientTable", "check_uncertainty", "coefficient_table"]

_ROW_NUMBERS = ("estimate", "std", "lower", "upper", "inclusion")
_MAX_ROWS = 10_000
_MAX_TEXT = 500


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ResultFormatError(f"{where} must be a finite number, got {value!r:.60}")
    return float(value)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise ResultFormatError(f"{where} must be a string of at most {_MAX_TEXT} characters")
    return value


def _rows(items: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(items, list) or len(items) > _MAX_ROWS:
        raise ResultFormatError(f"{where} must be a list of at most {_MAX_ROWS} rows")
    out = []
    for i, row in enumerate(items):
        at = f"{where}[{i}]"
        if not isinstance(row, Mapping):
            raise ResultFormatError(f"{at} must be an object")
        clean: dict[str, Any] = {"term": _text(row.get("term"), f"{at}.term")}
        for key in _ROW_NUMBERS:
            clean[key] = _number(row.get(key), f"{at}.{key}")
        if not 0.0 <= clean["inclusion"] <= 1.0:
            raise ResultFormatError(f"{at}.inclusion must lie in [0, 1], got {clean['inclusion']}")
        if clean["lower"] > clean["upper"] or clean["std"] < 0:
            raise ResultFormatError(f"{at}: the interval must have lower <= upper and std >= 0")
        if "output" in row:
            clean["output"] = _text(row["output"], f"{at}.output")
        out.append(clean)
    return out


def check_uncertainty(obj: Any) -> dict[str, Any] | None:
    """The checked ``"uncertainty"`` record of a result dictionary (None stays None).

    Raises
    ------
    ResultFormatError
        Naming the first field that is missing or of the wrong type.

    Examples
    --------
    >>> rec = {"method": "bootstrap", "level": 0.95, "n_replicates": 64, "U": [
    ...     {"term": "x**2", "estimate": 1.0, "std": 0.01, "lower": 0.98, "upper": 1.02, "inclusion": 1.0}]}
    >>> check_uncertainty(rec)["U"][0]["upper"]
    1.02
    >>> check_uncertainty({"method": "bootstrap", "level": 2.0, "n_replicates": 1, "U": []})
    Traceback (most recent call last):
    ...
    symqp._errors.ResultFormatError: uncertainty.level must lie in (0, 1), got 2.0
    """
    if obj is None:
        return None
    if not isinstance(obj, Mapping):
        raise ResultFormatError(f"result.uncertainty must be an object or null, got {type(obj).__name__}")
    out: dict[str, Any] = {"method": _text(obj.get("method"), "uncertainty.method")}
    level = _number(obj.get("level"), "uncertainty.level")
    if not 0.0 < level < 1.0:
        raise ResultFormatError(f"uncertainty.level must lie in (0, 1), got {level}")
    out["level"] = level
    for key in ("n_replicates", "n_requested"):
        if key in obj or key == "n_replicates":
            v = obj.get(key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ResultFormatError(f"uncertainty.{key} must be a non-negative integer, got {v!r:.60}")
            out[key] = v
    if "threshold" in obj:
        out["threshold"] = _number(obj["threshold"], "uncertainty.threshold")
    out["U"] = _rows(obj.get("U"), "uncertainty.U")
    out["f"] = _rows(obj.get("f", []), "uncertainty.f")
    return out


@dataclasses.dataclass(frozen=True)
class CoefficientTable:
    """Coefficients with bootstrap intervals and inclusion probabilities (rows of dicts).

    Examples
    --------
    >>> t = CoefficientTable([{"term": "x**2", "estimate": 1.0, "std": 0.01, "lower": 0.98,
    ...                        "upper": 1.02, "inclusion": 1.0}], 0.95, "U")
    >>> print(t)
    U  term    estimate        std   95% lower   95% upper inclusion
       x**2           1       0.01        0.98        1.02      1.00
    """

    rows: list[dict[str, Any]]
    level: float
    what: str

    def __str__(self) -> str:
        pct = f"{100 * self.level:.0f}%"
        wt = max([4] + [len(r["term"]) for r in self.rows])
        wo = max([len(self.what)] + [len(r.get("output", "")) for r in self.rows])
        head = (f"{self.what:<{wo}s}  {'term':<{wt}s} {'estimate':>11s} {'std':>10s} {pct + ' lower':>11s} "
                f"{pct + ' upper':>11s} {'inclusion':>9s}")
        lines = [head]
        for r in self.rows:
            lines.append(
                f"{r.get('output', ''):<{wo}s}  {r['term']:<{wt}s} {r['estimate']:11.4g} {r['std']:10.3g} "
                f"{r['lower']:11.4g} {r['upper']:11.4g} {r['inclusion']:9.2f}"
            )
        return "\n".join(lines)


def coefficient_table(uncertainty: Mapping[str, Any] | None, which: str = "U") -> CoefficientTable:
    """The table of ``which`` (``"U"`` or ``"f"``) from an uncertainty record."""
    if which not in ("U", "f"):
        raise AnalysisError(f"coefficient_table: which must be 'U' or 'f', got {which!r}")
    if uncertainty is None:
        raise AnalysisError(
            "this result has no coefficient uncertainty: it is computed on noisy pairs by the "
            "symbolic route (symqp.fit(..., bootstrap=N))"
        )
    return CoefficientTable(list(uncertainty.get(which, [])), float(uncertainty.get("level", 0.95)), which)
