"""The exact symbolic result of a fit: U = 2V, grad V, g, f as SymPy expressions.

Exact results are the canonical type. Strings (JSON), LaTeX and NumPy callables are views
derived from the SymPy expressions, never the other way round. Saved files are parsed back
with :func:`symqp._parse.parse_expr_safe`, never with ``eval``/``sympify``; floats are printed
with 17 significant digits so that they round-trip bit for bit.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp
from sympy.printing.str import StrPrinter

from .._errors import DataError, ParseError, ResultFormatError, first_line
from .._io import atomic_write
from .._numeric import numpy_function
from .._parse import name_problem, parse_expr_safe, shorten
from . import _display
from ._schema import MAX_FILE_BYTES, check_expression_size, check_result_dict, loads
from ._uncertainty import CoefficientTable, check_uncertainty, coefficient_table

__all__ = ["Result", "load_result", "expr_to_str", "SCHEMA", "MODELS"]

SCHEMA = "symqp.result/1"
MODELS = ("orthogonal", "hamiltonian", "epr")


class _ExactFloatPrinter(StrPrinter):
    """StrPrinter printing every Float as ``repr(float)`` (shortest exact round-trip form)."""

    def _print_Float(self, expr: sp.Float) -> str:
        value = float(expr)
        if not math.isfinite(value):
            raise ResultFormatError(f"cannot save a non-finite coefficient ({value})")
        return repr(value)


_PRINTER = _ExactFloatPrinter({"order": None})


def expr_to_str(expr: sp.Expr) -> str:
    """Print a SymPy expression so that :func:`parse_expr_safe` reads it back exactly.

    Floats are written as ``repr(float)``, the shortest string that round-trips bit for bit;
    the text is also valid input for ``sympy.sympify``.

    Examples
    --------
    >>> x = sp.Symbol("x")
    >>> expr_to_str(sp.Float(0.1) * x**2 - 2)
    '0.1*x**2 - 2'
    """
    try:
        expr = sp.sympify(expr, strict=True)
    except (sp.SympifyError, TypeError):
        raise ResultFormatError(f"cannot print {type(expr).__name__} as an expression") from None
    if expr.has(sp.oo, -sp.oo, sp.zoo, sp.nan):
        raise ResultFormatError(f"cannot save a non-finite coefficient in {expr}")
    return _PRINTER.doprint(expr)


def _as_expr(value: Any, names: Sequence[str], what: str) -> sp.Expr:
    """A SymPy expression from an expression, a number or text (text is parsed safely)."""
    if isinstance(value, str):
        return parse_expr_safe(value, names)
    try:
        return sp.sympify(value, strict=True)
    except (sp.SympifyError, TypeError):
        raise ResultFormatError(f"{what} must be a SymPy expression, a number or a formula string") from None


def round_floats(expr: sp.Expr, digits: int = 4) -> sp.Expr:
    """Round every Float of ``expr`` to ``digits`` significant digits (display only).

    Non-finite floats are kept as they are.

    Examples
    --------
    >>> x = sp.Symbol("x")
    >>> round_floats(sp.Float(0.123456789) * x + 2, 3)
    0.123*x + 2
    """
    floats = expr.atoms(sp.Float)
    if not floats:
        return expr
    repl = {}
    for fl in floats:
        v = float(fl)
        repl[fl] = sp.Float(float(f"{v:.{digits}g}"), digits) if math.isfinite(v) else fl
    return expr.xreplace(repl)


def _jsonable(obj: Any) -> Any:
    """Convert NumPy scalars/arrays, tuples and SymPy objects to JSON-friendly values."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, sp.Basic):
        return expr_to_str(obj)
    return str(obj)


@dataclasses.dataclass(repr=False)  # the short repr comes from ResultDisplay
class Result(_display.ResultDisplay):
    """An exact symbolic quasipotential and orthogonal decomposition f = -grad V + g.

    Parameters
    ----------
    variables
        Variable names, in order.
    U
        The quasipotential ``U = 2 V`` (constant fixed so that min U over the data region is 0).
    V, grad_V, g, f
        The potential, its gradient, the circulatory part and the field ``f = -grad V + g``.
    backend
        Name of the regression backend.
    library
        The library specification string.
    metrics
        Scalar figures of merit (validation one-step error, orthogonality residual, ...).
    timings
        Wall seconds by stage.
    fit
        The backend's :class:`symqp.backends.Fit` (with its Pareto front) or ``None``.
    decomposition
        The fitted decomposition that produced the targets (not saved).
    model
        ``"orthogonal"``, ``"hamiltonian"`` or ``"epr"``.
    tau
        Sublevel threshold used for the regression points (offset above min V_theta).
    uncertainty
        Bootstrap intervals and inclusion probabilities of the coefficients of U and f
        (noisy pairs, symbolic route), or ``None``; see :meth:`coefficient_table`.

    Examples
    --------
    >>> x, y = sp.symbols("x y")
    >>> V = x**4 / 2 - x**2 + y**2 / 2 + sp.Rational(1, 2)
    >>> r = Result.from_expressions(["x", "y"], V, g=[-y, x])
    >>> r.U
    x**4 - 2*x**2 + y**2 + 1
    >>> r.f
    (-2*x**3 + 2*x - y, x - y)
    """

    variables: tuple[str, ...]
    U: sp.Expr
    V: sp.Expr
    grad_V: tuple[sp.Expr, ...]
    g: tuple[sp.Expr, ...]
    f: tuple[sp.Expr, ...]
    backend: str = ""
    library: str = ""
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    fit: Any = None
    decomposition: Any = dataclasses.field(default=None, repr=False, compare=False)
    model: str = "orthogonal"
    tau: float | None = None
    uncertainty: dict[str, Any] | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_expressions(
        cls,
        variables: Sequence[str],
        V: sp.Expr,
        *,
        g: Sequence[sp.Expr] | None = None,
        **kwargs: Any,
    ) -> Result:
        """Build a result from V and g; U = 2V, grad V and f = -grad V + g are derived exactly.

        Examples
        --------
        >>> r = Result.from_expressions(["x"], sp.Symbol("x") ** 2)
        >>> r.grad_V, r.f
        ((2*x,), (-2*x,))
        """
        names = tuple(str(v) for v in variables)
        for n in names:
            if name_problem(n):
                raise ResultFormatError(f"variable name {name_problem(n)}")
        syms = tuple(sp.Symbol(n) for n in names)
        V = _as_expr(V, names, "V")
        gv = tuple(sp.diff(V, s) for s in syms)
        gg = tuple(_as_expr(e, names, "g") for e in g) if g is not None else (sp.Integer(0),) * len(syms)
        if len(gg) != len(syms):
            raise ResultFormatError(f"g has {len(gg)} components for {len(syms)} variables")
        f = tuple(sp.expand(-a + b) for a, b in zip(gv, gg))
        return cls(names, sp.expand(2 * V), V, gv, gg, f, **kwargs)

    # ------------------------------------------------------------------ views
    @property
    def symbols(self) -> tuple[sp.Symbol, ...]:
        """The variables as SymPy symbols."""
        return tuple(sp.Symbol(n) for n in self.variables)

    @property
    def d(self) -> int:
        """Number of variables."""
        return len(self.variables)

    def _as_points(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if X.ndim == 1 and X.shape[0] == self.d:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != self.d:
            raise DataError(f"points must have shape (n, {self.d}), got {X.shape}")
        return X

    @property
    def U_numpy(self) -> Callable[[np.ndarray], np.ndarray]:
        """NumPy callable ``(n, d) -> (n,)`` evaluating U (a view of the SymPy expression).

        Examples
        --------
        >>> r = Result.from_expressions(["x"], sp.Symbol("x") ** 2 / 2)
        >>> r.U_numpy(np.array([[2.0]]))
        array([4.])
        """
        return self._numpy(self.U)

    def _numpy(self, exprs: Any) -> Callable[[np.ndarray], np.ndarray]:
        fn = numpy_function(exprs, self.variables)
        return lambda X: fn(self._as_points(X))

    @property
    def f_numpy(self) -> Callable[[np.ndarray], np.ndarray]:
        """NumPy callable ``(n, d) -> (n, d)`` evaluating f = -grad V + g."""
        return self._numpy(self.f)

    @property
    def grad_V_numpy(self) -> Callable[[np.ndarray], np.ndarray]:
        """NumPy callable ``(n, d) -> (n, d)`` evaluating grad V."""
        return self._numpy(self.grad_V)

    @property
    def g_numpy(self) -> Callable[[np.ndarray], np.ndarray]:
        """NumPy callable ``(n, d) -> (n, d)`` evaluating g."""
        return self._numpy(self.g)

    def latex(self) -> dict[str, Any]:
        """LaTeX of U, grad V and g: ``{"U": str, "grad_V": [str], "g": [str]}``.

        Examples
        --------
        >>> Result.from_expressions(["x"], sp.Symbol("x") ** 2 / 2).latex()["U"]
        'x^{2}'
        """
        return {
            "U": sp.latex(self.U),
            "grad_V": [sp.latex(e) for e in self.grad_V],
            "g": [sp.latex(e) for e in self.g],
        }

    def pretty(self, digits: int = 4) -> str:
        """A readable summary; floats are rounded to ``digits`` significant digits for display.

        Examples
        --------
        >>> x = sp.Symbol("x")
        >>> print(Result.from_expressions(["x"], sp.Float(0.123456789) * x**2).pretty())
        ... # doctest: +ELLIPSIS
        U(x) = 0.2469*x**2
        ...
        """
        names = ", ".join(self.variables)
        lines = [f"U({names}) = {round_floats(self.U, digits)}"]
        for label, exprs in (("grad V", self.grad_V), ("g", self.g)):
            for name, e in zip(self.variables, exprs):
                lines.append(f"  {label}[{name}] = {round_floats(e, digits)}")
        head = []
        if self.model != "orthogonal":
            head.append(f"model {self.model}")
        if self.backend:
            head.append(f"backend {self.backend}")
        if self.library:
            head.append(f"library {self.library}")
        if self.tau is not None:
            head.append(f"tau {self.tau:.4g}")
        if head:
            lines.append("  " + ", ".join(head))
        if self.metrics:
            shown = ", ".join(
                f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                for k, v in self.metrics.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)
            )
            if shown:
                lines.append(f"  metrics: {shown}")
        if self.timings:
            lines.append(
                "  timings: " + ", ".join(f"{k} {v:.3g}s" for k, v in self.timings.items())
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.pretty()

    # ------------------------------------------------------------------ save / load
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary of schema ``"symqp.result/1"`` (the decomposition is left out).

        Examples
        --------
        >>> d = Result.from_expressions(["x"], sp.Symbol("x") ** 2 / 2).to_dict()
        >>> d["schema"], d["U"], d["f"]
        ('symqp.result/1', 'x**2', ['-x'])
        """
        from .. import __version__

        out: dict[str, Any] = {
            "schema": SCHEMA,
            "version": __version__,
            "model": self.model,
            "variables": list(self.variables),
            "U": expr_to_str(self.U),
            "V": expr_to_str(self.V),
            "grad_V": [expr_to_str(e) for e in self.grad_V],
            "g": [expr_to_str(e) for e in self.g],
            "f": [expr_to_str(e) for e in self.f],
            "backend": self.backend,
            "library": self.library,
            "tau": None if self.tau is None else float(self.tau),
            "metrics": _jsonable(self.metrics),
            "timings": _jsonable(self.timings),
            "fit": None if self.fit is None else _fit_to_dict(self.fit),
            "uncertainty": _jsonable(self.uncertainty),
        }
        return out

    def coefficient_table(self, which: str = "U") -> CoefficientTable:
        """Coefficients of U (or f) with bootstrap intervals and inclusion probabilities.

        Available for results fitted on noisy pairs with a bootstrap (``uncertainty``).
        """
        return coefficient_table(self.uncertainty, which)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the result as JSON (atomically) and return the path.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "r.json"
        >>> r = Result.from_expressions(["x"], sp.Float(0.1) * sp.Symbol("x") ** 2)
        >>> _ = r.save(p)
        >>> Result.load(p).U == r.U
        True
        """
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False)
        path = Path(path)
        with atomic_write(path, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        return path

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Result:
        """Rebuild a result from :meth:`to_dict` output (expressions parsed without eval)."""
        return _from_dict(data)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Result:
        """Read a result written by :meth:`save` (see :func:`load_result`)."""
        return load_result(path)


# ---------------------------------------------------------------------- Fit <-> dict
def _fit_to_dict(fit: Any) -> dict[str, Any]:
    front = []
    for c in getattr(fit, "front", None) or []:
        front.append(
            {
                "complexity": int(c.complexity),
                "train_error": _jsonable(float(c.train_error)),
                "val_error": _jsonable(float(c.val_error)),
                "V": expr_to_str(c.V),
                "g": [expr_to_str(e) for e in c.g],
                "params": _jsonable(getattr(c, "params", {}) or {}),
            }
        )
    coef = getattr(fit, "coef", None)
    return {
        "backend": str(getattr(fit, "backend", "")),
        "selection": str(getattr(fit, "selection", "")),
        "V": expr_to_str(fit.V),
        "grad_V": [expr_to_str(e) for e in fit.grad_V],
        "g": [expr_to_str(e) for e in fit.g],
        "f": [expr_to_str(e) for e in fit.f],
        "coef": None if coef is None else _jsonable(np.asarray(coef, dtype=float)),
        "front": front,
        "timings": _jsonable(getattr(fit, "timings", {}) or {}),
        "diagnostics": _jsonable(getattr(fit, "diagnostics", {}) or {}),
    }


def _need(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise ResultFormatError(f"{where}: missing key {key!r}")
    value = data[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ResultFormatError(
            f"{where}: key {key!r} must be {names}, got {type(value).__name__}"
        )
    return value


def _parse(text: Any, names: Sequence[str], what: str) -> sp.Expr:
    if not isinstance(text, str):
        raise ResultFormatError(f"{what} must be a formula string, got {type(text).__name__}")
    try:
        return check_expression_size(parse_expr_safe(text, names), what)
    except ParseError as exc:
        raise ResultFormatError(f"cannot parse {what}: {exc}") from None


def _parse_list(items: Any, names: Sequence[str], what: str, d: int) -> tuple[sp.Expr, ...]:
    if not isinstance(items, list):
        raise ResultFormatError(f"{what} must be a list of {d} formula strings")
    if len(items) != d:
        raise ResultFormatError(f"{what} has {len(items)} entries, expected {d} (one per variable)")
    return tuple(_parse(s, names, f"{what}[{i}]") for i, s in enumerate(items))


def _fit_from_dict(data: Any, names: Sequence[str], d: int) -> Any:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ResultFormatError(f"key 'fit' must be an object or null, got {type(data).__name__}")
    V = _parse(_need(data, "V", str, "fit"), names, "fit.V")
    grad_V = _parse_list(_need(data, "grad_V", list, "fit"), names, "fit.grad_V", d)
    g = _parse_list(_need(data, "g", list, "fit"), names, "fit.g", d)
    f = _parse_list(_need(data, "f", list, "fit"), names, "fit.f", d)
    front_raw = _need(data, "front", list, "fit")
    coef = data.get("coef")
    if coef is not None:
        try:
            coef = np.asarray(coef, dtype=float)
        except (TypeError, ValueError):
            raise ResultFormatError("fit.coef must be a numeric matrix or null") from None
        if coef.ndim != 2:
            raise ResultFormatError(f"fit.coef must be a matrix, got {coef.ndim} dimensions")
    try:
        from ..backends import Candidate, Fit  # light import; the backends load lazily
    except ImportError:  # backends not installed: the top-level expressions still load
        return None

    front = []
    for i, c in enumerate(front_raw):
        if not isinstance(c, dict):
            raise ResultFormatError(f"fit.front[{i}] must be an object")
        err = {}
        for key in ("train_error", "val_error"):
            v = c.get(key)
            if v is not None and not isinstance(v, (int, float)):
                raise ResultFormatError(f"fit.front[{i}].{key} must be a number or null")
            err[key] = math.nan if v is None else float(v)
        front.append(
            Candidate(
                complexity=int(_need(c, "complexity", int, f"fit.front[{i}]")),
                train_error=err["train_error"],
                val_error=err["val_error"],
                V=_parse(_need(c, "V", str, f"fit.front[{i}]"), names, f"fit.front[{i}].V"),
                g=_parse_list(_need(c, "g", list, f"fit.front[{i}]"), names, f"fit.front[{i}].g", d),
                params=dict(c.get("params") or {}),
            )
        )
    return Fit(
        V=V,
        grad_V=grad_V,
        g=g,
        f=f,
        coef=coef,
        front=front,
        selection=str(data.get("selection", "")),
        timings=dict(data.get("timings") or {}),
        diagnostics=dict(data.get("diagnostics") or {}),
        backend=str(data.get("backend", "")),
    )


def _from_dict(data: Mapping[str, Any]) -> Result:
    if not isinstance(data, Mapping):
        raise ResultFormatError(f"a result must be a JSON object, got {type(data).__name__}")
    schema = data.get("schema")
    if schema != SCHEMA:
        raise ResultFormatError(f"unsupported schema {shorten(repr(schema))} (expected {SCHEMA!r})")
    check_result_dict(data)
    variables = _need(data, "variables", list, "result")
    if not variables or not all(isinstance(v, str) and v.isidentifier() for v in variables):
        raise ResultFormatError("'variables' must be a non-empty list of identifier names")
    if len(set(variables)) != len(variables):
        raise ResultFormatError(f"'variables' has repeated names: {variables}")
    names = tuple(variables)
    d = len(names)
    U = _parse(_need(data, "U", str, "result"), names, "U")
    V = _parse(_need(data, "V", str, "result"), names, "V")
    grad_V = _parse_list(_need(data, "grad_V", list, "result"), names, "grad_V", d)
    g = _parse_list(_need(data, "g", list, "result"), names, "g", d)
    f = _parse_list(_need(data, "f", list, "result"), names, "f", d)
    backend = _need(data, "backend", str, "result")
    library = _need(data, "library", str, "result")
    metrics = _need(data, "metrics", dict, "result")
    timings = _need(data, "timings", dict, "result")
    model = data.get("model", "orthogonal")
    if model not in MODELS:
        raise ResultFormatError(f"unknown model {model!r} (expected one of {', '.join(MODELS)})")
    tau = data.get("tau")
    if tau is not None and (isinstance(tau, bool) or not isinstance(tau, (int, float))):
        raise ResultFormatError(f"'tau' must be a number or null, got {type(tau).__name__}")
    return Result(
        variables=names,
        U=U,
        V=V,
        grad_V=grad_V,
        g=g,
        f=f,
        backend=backend,
        library=library,
        metrics=dict(metrics),
        timings=dict(timings),
        fit=_fit_from_dict(data.get("fit"), names, d),
        model=model,
        tau=None if tau is None else float(tau),
        uncertainty=check_uncertainty(data.get("uncertainty")),
    )


def load_result(path: str | os.PathLike[str]) -> Result:
    """Load a result saved by :meth:`Result.save`, parsing expressions without ``eval``.

    Raises
    ------
    ResultFormatError
        For a missing file, invalid JSON, a wrong schema, a missing key or an unparseable
        expression; the message names the problem.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "bad.json"
    >>> _ = p.write_text('{"schema": "other/2"}')
    >>> load_result(p)
    Traceback (most recent call last):
    ...
    symqp._errors.ResultFormatError: unsupported schema 'other/2' (expected 'symqp.result/1')
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ResultFormatError(f"expected the path of a result file, got {type(path).__name__}")
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size > MAX_FILE_BYTES:
            raise ResultFormatError(f"{path} is too large for a result file (limit {MAX_FILE_BYTES} bytes)")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultFormatError(f"result file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultFormatError(f"cannot read result file {path}: {first_line(exc)}") from None
    return _from_dict(loads(text, str(path)))
