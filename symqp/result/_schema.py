"""Strict checks of a result file's JSON before anything is built from it.

A result file is user input: it may be hand-edited, truncated or hostile. Every field of
schema ``"symqp.result/1"`` is checked for its type (and numbers for finiteness) here,
so that loading never fails later with a raw ``TypeError`` deep inside, and so that
``symqp analyze`` and ``symqp report`` only ever see what :meth:`Result.save` writes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import sympy as sp

from .._errors import ResultFormatError
from .._parse import expanded_size, name_problem

__all__ = ["MAX_DEPTH", "MAX_EXPANSION", "MAX_FILE_BYTES", "check_expression_size",
           "check_result_dict", "loads"]

#: Largest result file read (64 MiB; results are a few kilobytes).
MAX_FILE_BYTES = 64 * 2**20
#: Deepest nesting of JSON containers anywhere in the file.
MAX_DEPTH = 32
#: Most terms a saved expression may expand into (the analysis expands U).
MAX_EXPANSION = 100_000
_MAX_VARIABLES = 1000


def _reject_constant(name: str) -> Any:
    raise ResultFormatError(f"the file holds the non-finite number {name} (JSON numbers must be finite)")


def loads(text: str, where: str) -> Any:
    """``json.loads`` that refuses NaN/Infinity, nesting beyond :data:`MAX_DEPTH` and huge integers.

    Examples
    --------
    >>> loads('{"a": [1, 2.5]}', "r.json")
    {'a': [1, 2.5]}
    >>> loads("[" * 100 + "]" * 100, "r.json")
    Traceback (most recent call last):
    ...
    symqp._errors.ResultFormatError: r.json: JSON nested more than 32 levels deep
    """
    depth = best = 0
    in_string = escaped = False
    for ch in text:  # nesting depth without recursion (json.loads recurses)
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            best = max(best, depth)
            if best > MAX_DEPTH:
                raise ResultFormatError(f"{where}: JSON nested more than {MAX_DEPTH} levels deep")
        elif ch in "]}":
            depth -= 1
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ResultFormatError(f"{where} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of more than 4300 digits
        if isinstance(exc, ResultFormatError):
            raise
        raise ResultFormatError(f"{where}: unreadable JSON ({str(exc).split(';')[0][:80]})") from None


def _type_name(kind: Any) -> str:
    names = {str: "str", list: "list", dict: "dict", int: "int", float: "a number",
             type(None): "null", bool: "true/false"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _is(value: Any, kind: Any) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool):
        return bool in kinds
    if float in kinds and isinstance(value, int):
        return True
    return isinstance(value, kinds)


def _field(data: Mapping[str, Any], key: str, kind: Any, where: str, *, required: bool = True) -> Any:
    if key not in data:
        if required:
            raise ResultFormatError(f"{where}: missing key {key!r}")
        return None
    value = data[key]
    if not _is(value, kind):
        raise ResultFormatError(
            f"{where}: key {key!r} must be {_type_name(kind)}, got {type(value).__name__}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise ResultFormatError(f"{where}.{key} must be finite, got {value}")
    return value


def _formulas(data: Mapping[str, Any], key: str, where: str, d: int) -> None:
    items = _field(data, key, list, where)
    if len(items) != d:
        raise ResultFormatError(f"{where}.{key} has {len(items)} entries, expected {d} (one per variable)")
    for i, s in enumerate(items):
        if not isinstance(s, str):
            raise ResultFormatError(f"{where}.{key}[{i}] must be a formula string, got {type(s).__name__}")


def _numbers(data: Mapping[str, Any], key: str, where: str) -> None:
    """A mapping of names to finite numbers (or null), like ``timings``."""
    table = _field(data, key, dict, where, required=False)
    for name, v in (table or {}).items():
        if v is not None and not _is(v, float):
            raise ResultFormatError(f"{where}.{key}[{name!r}] must be a number, got {type(v).__name__}")


def _fit(fit: Any, d: int) -> None:
    if fit is None:
        return
    if not isinstance(fit, dict):
        raise ResultFormatError(f"result.fit must be an object or null, got {type(fit).__name__}")
    for key in ("backend", "selection"):
        _field(fit, key, str, "fit", required=False)
    _field(fit, "V", str, "fit")
    for key in ("grad_V", "g", "f"):
        _formulas(fit, key, "fit", d)
    coef = _field(fit, "coef", (list, type(None)), "fit", required=False)
    rows_ok = coef is None or (
        bool(coef) and all(isinstance(r, list) and len(r) == len(coef[0]) for r in coef)
        and all(_is(v, float) for r in coef for v in r)
    )
    if not rows_ok:
        raise ResultFormatError("fit.coef must be a rectangular matrix of numbers or null")
    _numbers(fit, "timings", "fit")
    _field(fit, "diagnostics", (dict, type(None)), "fit", required=False)
    for i, c in enumerate(_field(fit, "front", list, "fit")):
        where = f"fit.front[{i}]"
        if not isinstance(c, dict):
            raise ResultFormatError(f"{where} must be an object, got {type(c).__name__}")
        _field(c, "complexity", int, where)
        for key in ("train_error", "val_error"):
            _field(c, key, (float, type(None)), where, required=False)
        _field(c, "V", str, where)
        _formulas(c, "g", where, d)
        _field(c, "params", (dict, type(None)), where, required=False)


def check_result_dict(data: Any) -> None:
    """Check the type of every field of a result dictionary (schema ``symqp.result/1``).

    Raises
    ------
    ResultFormatError
        Naming the first field that is missing or of the wrong type.

    Examples
    --------
    >>> check_result_dict({"schema": "symqp.result/1", "variables": ["lambda"]})
    Traceback (most recent call last):
    ...
    symqp._errors.ResultFormatError: result.variables[0]: 'lambda' is a Python keyword; rename the variable
    """
    if not isinstance(data, Mapping):
        raise ResultFormatError(f"a result must be a JSON object, got {type(data).__name__}")
    variables = _field(data, "variables", list, "result")
    if not variables or len(variables) > _MAX_VARIABLES:
        raise ResultFormatError(f"result.variables must list 1 to {_MAX_VARIABLES} names")
    for i, v in enumerate(variables):
        problem = name_problem(v)
        if problem:
            raise ResultFormatError(f"result.variables[{i}]: {problem}")
    d = len(variables)
    for key in ("U", "V"):
        _field(data, key, str, "result")
    for key in ("grad_V", "g", "f"):
        _formulas(data, key, "result", d)
    for key in ("backend", "library"):
        _field(data, key, str, "result")
    for key in ("version", "model"):
        _field(data, key, str, "result", required=False)
    tau = _field(data, "tau", (float, type(None)), "result", required=False)
    if tau is not None and tau <= 0:
        raise ResultFormatError(f"result.tau must be positive or null, got {tau}")
    _field(data, "metrics", dict, "result")
    _numbers(data, "timings", "result")
    _fit(data.get("fit"), d)


def check_expression_size(expr: sp.Expr, what: str) -> sp.Expr:
    """Refuse an expression whose expansion would exceed :data:`MAX_EXPANSION` terms."""
    size = expanded_size(expr)
    if size > MAX_EXPANSION:
        raise ResultFormatError(f"{what} expands into about {size:.3g} terms (limit {MAX_EXPANSION})")
    return expr
