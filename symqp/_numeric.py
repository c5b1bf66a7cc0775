"""Numerical building blocks shared by every layer: SymPy -> NumPy, RK4, Euler–Maruyama.

One implementation each, so that sampling, prediction, refinement and analysis integrate
and evaluate the same way. Nothing here imports above ``symqp._errors``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy as sp
from sympy.printing.numpy import NumPyPrinter, SciPyPrinter
from sympy.printing.precedence import PRECEDENCE

__all__ = ["numpy_columns", "numpy_function", "numpy_rows", "python_function", "rk4_step",
           "euler_maruyama_step"]

RowsFn = Callable[[np.ndarray], np.ndarray]


class _ProductPowers:
    """Printer mixin writing small integer powers as products (``x*x*x`` for ``x**3``).

    ``numpy.power`` with a float exponent calls libm ``pow``, which is up to 20 times slower
    than two multiplications and very slow for bases near 1 (measured: a 3-D cubic field
    spent 90% of its sampling time in ``pow`` once trajectories settled near x = ±1).
    """

    def _print_Pow(self, expr, rational=False):  # printer hook
        base, exp = expr.as_base_exp()
        if exp.is_Integer and 2 <= abs(int(exp)) <= 8:
            b = self.parenthesize(base, PRECEDENCE["Mul"], strict=True)
            prod = "(" + "*".join([b] * abs(int(exp))) + ")"
            return prod if exp > 0 else f"(1.0/{prod})"
        return super()._print_Pow(expr, rational=rational)


class _NumPyProducts(_ProductPowers, NumPyPrinter):
    pass


class _SciPyProducts(_ProductPowers, SciPyPrinter):
    pass


def _symbols(variables: Sequence[Any]) -> tuple[sp.Symbol, ...]:
    return tuple(v if isinstance(v, sp.Symbol) else sp.Symbol(str(v)) for v in variables)


def _lambdify(variables: Sequence[Any], exprs: Any, special: bool = False) -> Callable[..., Any]:
    """The one ``sympy.lambdify`` call into NumPy (product powers, common subexpressions).

    ``special`` adds SciPy's special functions (erf, Bessel, ...) to what can be printed;
    it is off by default because importing :mod:`scipy.special` costs a noticeable time.
    """
    printer = (_SciPyProducts if special else _NumPyProducts)(
        {"fully_qualified_modules": False, "inline": True, "allow_unknown_functions": True,
         "user_functions": {}})
    modules = ["numpy", "scipy"] if special else "numpy"
    try:
        return sp.lambdify(_symbols(variables), exprs, modules=modules, cse=True, printer=printer)
    except NotImplementedError as exc:  # e.g. Derivative(re(x), x), the derivative of Abs(x)
        from ._errors import AnalysisError, first_line

        if "Derivative" in str(exc):
            raise AnalysisError(
                "cannot evaluate a derivative numerically: SymPy leaves d/dx abs(x) unevaluated "
                "(abs() has no derivative at 0)"
            ) from None
        raise AnalysisError(f"cannot evaluate {str(exprs)[:60]} numerically ({first_line(exc)})") from None


def numpy_columns(exprs: Sequence[Any], variables: Sequence[Any], *, special: bool = False
                  ) -> Callable[..., list]:
    """``g(*columns) -> list``: one entry per expression, an array or a Python scalar.

    The raw form under :func:`numpy_function`, for callers that write each column into an
    array of their own (another dtype, or a running sum that never holds all columns).
    ``special=True`` also prints SciPy's special functions (``erf``, ``besselj``, ...).
    Floating-point warnings are the caller's.

    Examples
    --------
    >>> x, y = sp.symbols("x y")
    >>> g = numpy_columns([x * y, sp.Integer(3), sp.erf(x)], (x, y), special=True)
    >>> a, b, c = g(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    >>> a, b, bool(abs(c[0] - math.erf(1.0)) < 1e-15)
    (array([3., 8.]), 3, True)
    """
    return _lambdify(variables, list(exprs), special)


def numpy_function(exprs: Any, variables: Sequence[Any]) -> Callable[[np.ndarray], np.ndarray]:
    """A NumPy function of points ``X`` (shape (..., d)) from SymPy expression(s).

    ``exprs`` is one expression (result shape ``X.shape[:-1]``), a sequence of k expressions
    (result ``X.shape[:-1] + (k,)``) or a SymPy matrix of shape (r, c) (result
    ``X.shape[:-1] + (r, c)``; a single point ``x`` of shape (d,) gives the (r, c) matrix).
    Constants are broadcast, the result is a new float64 array; evaluation happens with
    NumPy's floating-point warnings silenced (a non-finite value is the caller's to check).
    Small integer powers are evaluated as products, which is faster than ``numpy.power``.

    Examples
    --------
    >>> x, y = sp.symbols("x y")
    >>> numpy_function(x * y + 1, (x, y))(np.array([[2.0, 3.0], [0.0, 1.0]]))
    array([7., 1.])
    >>> numpy_function([x, sp.Integer(2)], (x, y))(np.zeros((3, 2))).shape
    (3, 2)
    >>> numpy_function(sp.Matrix([[x, 0], [0, y]]), (x, y))(np.array([1.0, 2.0]))
    array([[1., 0.],
           [0., 2.]])
    >>> numpy_function(sp.Matrix([[x, y]]), (x, y))(np.ones((4, 2))).shape
    (4, 1, 2)
    """
    if isinstance(exprs, sp.MatrixBase):
        shape = exprs.shape
        entries = numpy_function(list(exprs), variables)

        def matrix(X: np.ndarray) -> np.ndarray:
            out = entries(X)
            return out.reshape(out.shape[:-1] + shape)

        return matrix
    if isinstance(exprs, (list, tuple)):
        fv = numpy_columns(exprs, variables)
        k = len(exprs)

        def vector(X: np.ndarray) -> np.ndarray:
            X = np.asarray(X, dtype=float)
            out = np.empty(X.shape[:-1] + (k,))
            with np.errstate(all="ignore"):
                for j, col in enumerate(fv(*np.moveaxis(X, -1, 0))):
                    out[..., j] = col
            return out

        return vector
    fs = _lambdify(variables, exprs)

    def scalar(X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        out = np.empty(X.shape[:-1])
        with np.errstate(all="ignore"):
            out[...] = fs(*np.moveaxis(X, -1, 0))
        return out

    return scalar


def numpy_rows(exprs: Sequence[Any], variables: Sequence[Any]) -> RowsFn:
    """``F(Y) -> (m, n)`` on variable-major states ``Y`` (d, n): the layout the integrators use.

    Each row of the result is written once from the rows of ``Y`` (no transposes), which is
    what makes whole-ensemble integration cheap. Floating-point warnings are the caller's.

    Examples
    --------
    >>> x, y = sp.symbols("x y")
    >>> numpy_rows([-x, 2 * y], (x, y))(np.array([[1.0, 2.0], [3.0, 4.0]]))
    array([[-1., -2.],
           [ 6.,  8.]])
    """
    fn = numpy_columns(exprs, variables)
    m = len(exprs)

    def rows(Y: np.ndarray) -> np.ndarray:
        Y = np.asarray(Y, dtype=float)
        out = np.empty((m,) + Y.shape[1:])
        for k, comp in enumerate(fn(*Y)):
            out[k] = comp  # broadcasting covers constant components
        return out

    return rows


def python_function(exprs: Any, variables: Sequence[Any]) -> Callable[..., Any]:
    """``f(*values)`` on plain floats (``math`` module): one expression -> float, a list -> list.

    For SciPy routines that call with one point at a time (``quad``, ``nquad``,
    ``solve_ivp`` on one trajectory), where NumPy's per-call overhead would dominate.

    Examples
    --------
    >>> x, y = sp.symbols("x y")
    >>> python_function(sp.exp(x) * y, (x, y))(0.0, 3.0)
    3.0
    >>> python_function([x + y, x * y], (x, y))(2.0, 3.0)
    [5.0, 6.0]
    """
    return sp.lambdify(_symbols(variables), list(exprs) if isinstance(exprs, tuple) else exprs,
                       modules="math")


def rk4_step(F: RowsFn, Y: np.ndarray, s: float) -> np.ndarray:
    """One classical RK4 step of size ``s`` for ``Y' = F(Y)`` (a new array; in-place inside).

    Examples
    --------
    >>> y = rk4_step(lambda Y: -Y, np.ones((1, 1)), 0.1)
    >>> abs(float(y[0, 0]) - math.exp(-0.1)) < 1e-7
    True
    """
    k1 = F(Y)
    k2 = F(Y + (0.5 * s) * k1)
    k1 = k1 + 2.0 * k2
    k3 = F(Y + (0.5 * s) * k2)
    k1 += 2.0 * k3
    k4 = F(Y + s * k3)
    k1 += k4
    k1 *= s / 6.0
    k1 += Y
    return k1


def euler_maruyama_step(
    F: RowsFn, Y: np.ndarray, dt: float, eps: float, rng: np.random.Generator, B: np.ndarray | None = None
) -> np.ndarray:
    """One Euler–Maruyama step of ``dY = F(Y) dt + √ε B dW`` (B = I when None).

    ``Y`` and ``F(Y)`` share a layout; the noise has ``Y``'s shape. For ``B`` the layout is
    variable-major (d, n), i.e. the noise is ``B @ N(0, I)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> euler_maruyama_step(lambda Y: -Y, np.ones((2, 3)), 0.1, 0.0, rng)
    array([[0.9, 0.9, 0.9],
           [0.9, 0.9, 0.9]])
    """
    out = dt * F(Y)
    out += Y
    if eps > 0:
        noise = rng.standard_normal(Y.shape)
        if B is not None:
            noise = B @ noise
        out += math.sqrt(eps * dt) * noise
    return out
