"""The :class:`System` type: a SymPy vector field with named variables, a box and exact U."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from functools import cached_property

import numpy as np
import sympy as sp

from .._errors import DataError, ParseError
from .._numeric import numpy_rows
from .._parse import name_problem, parse_expr_safe

__all__ = ["System", "from_expressions", "from_strings"]


# ----------------------------------------------------------------------------------------
# helpers shared by the system modules
# ----------------------------------------------------------------------------------------
def exact_number(value: object, what: str = "value") -> sp.Expr:
    """Turn a parameter into an exact SymPy number (``0.5`` -> ``1/2``, ``2.0`` -> ``2``)."""
    if isinstance(value, sp.Expr):
        if value.free_symbols:
            raise DataError(f"{what} must be a number, got the expression {value}")
        return value
    if isinstance(value, bool):
        raise DataError(f"{what} must be a number, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return sp.Integer(int(value))
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DataError(f"{what} must be a number, got {value!r}") from None
    if not np.isfinite(v):
        raise DataError(f"{what} must be finite, got {v}")
    if v.is_integer():
        return sp.Integer(int(v))
    # the shortest decimal that round-trips: 0.1 -> 1/10 rather than the binary fraction
    return sp.Rational(repr(v))


def as_box(box: object, d: int, what: str = "box") -> np.ndarray:
    """Validate a sampling box: array (d, 2) of finite low < high; returns a read-only copy."""
    try:
        b = np.array(box, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{what} must be a numeric array of shape ({d}, 2)") from None
    if b.shape == (2,) and d == 1:
        b = b.reshape(1, 2)
    if b.shape != (d, 2):
        raise DataError(f"{what} must have shape ({d}, 2) (low, high per variable), got {b.shape}")
    if not np.all(np.isfinite(b)):
        raise DataError(f"{what} contains NaN or infinite bounds")
    bad = np.flatnonzero(b[:, 0] >= b[:, 1])
    if bad.size:
        raise DataError(f"{what} row {int(bad[0])} has low >= high: {b[bad[0]].tolist()}")
    b.setflags(write=False)
    return b


def as_symbols(variables: Sequence[sp.Symbol | str] | str, what: str = "variables") -> tuple[sp.Symbol, ...]:
    """Validate variable names/symbols: distinct Python identifiers."""
    if isinstance(variables, str):
        variables = variables.replace(",", " ").split()
    out = []
    for v in variables:
        if not isinstance(v, (str, sp.Symbol)):
            raise DataError(f"{what} must be names or SymPy symbols, got {type(v).__name__}")
        problem = name_problem(v if isinstance(v, str) else v.name)
        if problem:
            raise DataError(f"{what}: not a valid variable name: {problem}")
        out.append(sp.Symbol(v) if isinstance(v, str) else v)
    if not out:
        raise DataError(f"{what} is empty")
    names = [str(s) for s in out]
    if len(set(names)) != len(names):
        raise DataError(f"{what} contains duplicate names: {names}")
    return tuple(out)


class FlowViews:
    """Names and the NumPy view of ``field`` for :class:`System` and ``HamiltonianSystem``.

    Needs ``name``, ``variables``, ``field`` and ``d`` on the class that uses it.
    """

    @property
    def names(self) -> tuple[str, ...]:
        """Variable names as strings."""
        return tuple(str(v) for v in self.variables)

    @cached_property
    def _rows(self) -> Callable[[np.ndarray], np.ndarray]:
        """The field on variable-major states ``(d, n) -> (d, n)`` (what the integrators use)."""
        return numpy_rows(self.field, self.variables)

    def f_numpy(self) -> Callable[[np.ndarray], np.ndarray]:
        """NumPy callable ``X (n, d) -> f(X) (n, d)`` float64 (lambdified once per system)."""
        rows, d, name = self._rows, self.d, self.name

        def f(X: np.ndarray) -> np.ndarray:
            try:
                arr = np.asarray(X, dtype=np.float64)
            except (TypeError, ValueError):
                raise DataError(f"{name}: input must be a numeric array of shape (n, {d})") from None
            if arr.ndim == 1 and arr.shape[0] == d:
                arr = arr.reshape(1, d)
            if arr.ndim != 2 or arr.shape[1] != d:
                raise DataError(f"{name}: input must have shape (n, {d}), got {arr.shape}")
            return np.ascontiguousarray(rows(np.ascontiguousarray(arr.T)).T)

        return f


def _short(expr: sp.Expr, digits: int = 6) -> str:
    return str(expr.evalf(digits) if expr.has(sp.Float) else expr)


# ----------------------------------------------------------------------------------------
# System
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class System(FlowViews):
    """An autonomous vector field ``dx/dt = f(x)`` in SymPy, with a sampling box and exact U.

    Parameters
    ----------
    name : str
        Short name (``"archetypal3d"``).
    variables : tuple of sympy.Symbol
        State variables, in order.
    field : tuple of sympy.Expr
        The components of ``f``, one per variable.
    box : ndarray, shape (d, 2)
        Sampling region Ω (low, high per variable).
    params : dict of str to float
        The parameter values the system was built with.
    U : sympy.Expr or None
        Exact Freidlin–Wentzell quasipotential ``U = 2V`` when known:
        ``f = -∇U/2 + g`` with ``g·∇U = 0``.
    description : str
        One line saying what the system is.

    Examples
    --------
    >>> import sympy as sp
    >>> x, y = sp.symbols("x y")
    >>> s = System("demo", (x, y), (-x + y, -x - y), [[-1, 1], [-1, 1]], U=x**2 + y**2)
    >>> s.d, s.names, s.V
    (2, ('x', 'y'), x**2/2 + y**2/2)
    >>> s.f_numpy()([[1.0, 2.0]])
    array([[ 1., -3.]])
    """

    name: str
    variables: tuple[sp.Symbol, ...]
    field: tuple[sp.Expr, ...]
    box: np.ndarray
    params: dict[str, float] = dc_field(default_factory=dict)
    U: sp.Expr | None = None
    description: str = ""

    def __post_init__(self) -> None:
        variables = as_symbols(self.variables)
        d = len(variables)
        try:
            fld = tuple(sp.sympify(e, strict=True) for e in self.field)
        except (sp.SympifyError, TypeError):
            raise DataError(f"system {self.name!r}: field components must be SymPy expressions or numbers") from None
        if len(fld) != d:
            raise DataError(f"system {self.name!r}: field has {len(fld)} components for {d} variables")
        allowed = set(variables)
        for k, e in enumerate(fld):
            extra = e.free_symbols - allowed
            if extra:
                raise DataError(
                    f"system {self.name!r}: component {k} uses unknown symbols "
                    f"{sorted(map(str, extra))} (variables: {[str(v) for v in variables]})"
                )
        U = self.U
        if U is not None:
            try:
                U = sp.sympify(U, strict=True)
            except (sp.SympifyError, TypeError):
                raise DataError(f"system {self.name!r}: U must be a SymPy expression") from None
            extra = U.free_symbols - allowed
            if extra:
                raise DataError(f"system {self.name!r}: U uses unknown symbols {sorted(map(str, extra))}")
        object.__setattr__(self, "variables", variables)
        object.__setattr__(self, "field", fld)
        object.__setattr__(self, "box", as_box(self.box, d, f"system {self.name!r}: box"))
        object.__setattr__(self, "params", {str(k): float(v) for k, v in dict(self.params).items()})
        object.__setattr__(self, "U", U)

    # -- views ---------------------------------------------------------------------------
    @property
    def d(self) -> int:
        """State dimension."""
        return len(self.variables)

    @property
    def V(self) -> sp.Expr | None:
        """``U/2`` (the potential of the decomposition ``f = -∇V + g``), or None."""
        return None if self.U is None else sp.expand(self.U / 2)

    @property
    def grad_V(self) -> tuple[sp.Expr, ...] | None:
        """``∇V`` or None when U is unknown."""
        V = self.V
        return None if V is None else tuple(sp.diff(V, v) for v in self.variables)

    @property
    def g(self) -> tuple[sp.Expr, ...] | None:
        """The circulatory part ``g = f + ∇V`` (orthogonal to ∇V when U is exact), or None."""
        gv = self.grad_V
        return None if gv is None else tuple(sp.expand(f + dv) for f, dv in zip(self.field, gv))

    def __repr__(self) -> str:
        comps = ", ".join(f"d{n}/dt = {_short(e)}" for n, e in zip(self.names, self.field))
        params = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        U = "unknown" if self.U is None else _short(self.U)
        return f"System({self.name}{'(' + params + ')' if params else ''}: {comps}; U = {U})"


# ----------------------------------------------------------------------------------------
# user-defined systems
# ----------------------------------------------------------------------------------------
def _default_box(d: int) -> np.ndarray:
    return np.tile([-1.0, 1.0], (d, 1))


def from_expressions(
    field: Sequence[sp.Expr],
    variables: Sequence[sp.Symbol | str],
    *,
    box: object | None = None,
    U: sp.Expr | None = None,
    name: str = "custom",
    params: Mapping[str, float] | None = None,
    description: str = "user-defined system",
) -> System:
    """Build a :class:`System` from SymPy expressions.

    Parameters
    ----------
    field : sequence of sympy.Expr
        Components of ``f``.
    variables : sequence of sympy.Symbol or str
        The state variables (strings become plain symbols).
    box : array_like, shape (d, 2), optional
        Sampling region; ``[-1, 1]`` per variable by default.
    U : sympy.Expr, optional
        Exact quasipotential when known.

    Examples
    --------
    >>> import sympy as sp
    >>> x, y = sp.symbols("x y")
    >>> from_expressions([-x, -2 * y], [x, y], U=x**2 + 2 * y**2).d
    2
    """
    syms = as_symbols(variables)
    by_name = {str(s): s for s in syms}
    # strings in `variables` created fresh symbols: map equal-named symbols of the field to them
    subs = {}
    exprs = []
    for e in field:
        try:
            e = sp.sympify(e, strict=True)
        except (sp.SympifyError, TypeError):
            raise DataError("field components must be SymPy expressions or numbers") from None
        for s in e.free_symbols:
            if str(s) in by_name and s != by_name[str(s)]:
                subs[s] = by_name[str(s)]
        exprs.append(e)
    if subs:
        exprs = [e.xreplace(subs) for e in exprs]
        if U is not None:
            try:
                U = sp.sympify(U, strict=True).xreplace(subs)
            except (sp.SympifyError, TypeError):
                raise DataError("U must be a SymPy expression (use from_strings for text)") from None
    d = len(syms)
    return System(
        name,
        syms,
        tuple(exprs),
        _default_box(d) if box is None else box,
        dict(params or {}),
        U,
        description,
    )


def from_strings(
    formulas: Sequence[str],
    names: Sequence[str] | str,
    *,
    box: object | None = None,
    U: str | sp.Expr | None = None,
    name: str = "custom",
    description: str = "user-defined system",
) -> System:
    """Build a :class:`System` from component formulas given as text (parsed safely).

    Parameters
    ----------
    formulas : sequence of str
        One formula per variable, e.g. ``["-x + y", "-x - y"]``.
    names : sequence of str or str
        Variable names (``["x", "y"]`` or ``"x y"``).
    box : array_like, shape (d, 2), optional
        Sampling region; ``[-1, 1]`` per variable by default.
    U : str or sympy.Expr, optional
        Exact quasipotential when known (text is parsed safely too).

    Raises
    ------
    ParseError
        For a formula outside the allowed grammar or with unknown names.

    Examples
    --------
    >>> s = from_strings(["-x + y", "-x - y"], "x y", U="x**2 + y**2")
    >>> s
    System(custom: dx/dt = -x + y, dy/dt = -x - y; U = x**2 + y**2)
    """
    syms = as_symbols(names, "names")
    if isinstance(formulas, str):
        raise DataError("formulas must be a list of strings, one per variable")
    formulas = list(formulas)
    if len(formulas) != len(syms):
        raise DataError(f"got {len(formulas)} formulas for {len(syms)} variables {[str(s) for s in syms]}")
    exprs = []
    for k, text in enumerate(formulas):
        if not isinstance(text, str):
            raise ParseError(f"formula {k} must be a string, got {type(text).__name__}")
        exprs.append(parse_expr_safe(text, syms))
    if isinstance(U, str):
        U = parse_expr_safe(U, syms)
    return from_expressions(exprs, syms, box=box, U=U, name=name, description=description)
