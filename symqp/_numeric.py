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

__all__ = ["numpy_function", "numpy_rows", "rk4_step", "euler_maruyama_step"]

RowsFn = Callable[[np.ndarray], np.ndarray]


def numpy_function(exprs: Any, variables: Sequence[Any]) -> Callable[[np.ndarray], np.ndarray]:
    """A NumPy function of points ``X`` (shape (..., d)) from SymPy expression(s).

    ``exprs`` is one expression (result shape ``X.shape[:-1]``), a sequence of k expressions
    (result ``X.shape[:-1] + (k,)``) or a SymPy matrix (evaluated at a single point ``x``
    of shape (d,), result of the matrix's shape). Constants are broadcast, the result is a
    new float64 array; evaluation happens with NumPy's floating-point warnings silenced
    (a non-finite value is the caller's to check).

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
    """
    syms = tuple(sp.Symbol(str(v)) if not isinstance(v, sp.Symbol) else v for v in variables)
    if isinstance(exprs, sp.MatrixBase):
        fm = sp.lambdify(syms, exprs, modules="numpy")

        def matrix(x: np.ndarray) -> np.ndarray:
            with np.errstate(all="ignore"):
                return np.array(fm(*np.asarray(x, dtype=float)), dtype=float)

        return matrix
    if isinstance(exprs, (list, tuple)):
        fv = sp.lambdify(syms, list(exprs), modules="numpy")
        k = len(exprs)

        def vector(X: np.ndarray) -> np.ndarray:
            X = np.asarray(X, dtype=float)
            out = np.empty(X.shape[:-1] + (k,))
            with np.errstate(all="ignore"):
                for j, col in enumerate(fv(*np.moveaxis(X, -1, 0))):
                    out[..., j] = col
            return out

        return vector
    fs = sp.lambdify(syms, exprs, modules="numpy")

    def scalar(X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        out = np.empty(X.shape[:-1])
        with np.errstate(all="ignore"):
            out[...] = fs(*np.moveaxis(X, -1, 0))
        return out

    return scalar


def numpy_rows(exprs: Sequence[Any], variables: Sequence[Any]) -> RowsFn:
    """``F(Y) -> (d, n)`` on variable-major states ``Y`` (d, n): the layout the integrators use.

    Examples
    --------
    >>> x, y = sp.symbols("x y")
    >>> numpy_rows([-x, 2 * y], (x, y))(np.array([[1.0, 2.0], [3.0, 4.0]]))
    array([[-1., -2.],
           [ 6.,  8.]])
    """
    F = numpy_function(list(exprs), variables)

    def rows(Y: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(F(np.asarray(Y, dtype=float).T).T)

    return rows


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
    out = Y + dt * F(Y)
    if eps > 0:
        noise = rng.standard_normal(Y.shape)
        if B is not None:
            noise = B @ noise
        out += math.sqrt(eps * dt) * noise
    return out
