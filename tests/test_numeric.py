"""The shared numerical helpers: SymPy -> NumPy, RK4 and Euler-Maruyama (symqp._numeric)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

from symqp._numeric import (
    euler_maruyama_step,
    numpy_columns,
    numpy_function,
    numpy_rows,
    python_function,
    rk4_step,
)

x, y = sp.symbols("x y")


def test_numpy_function_shapes_and_values():
    X = np.array([[1.5, -2.0], [0.5, 3.0], [-1.0, 0.25]])
    u = numpy_function(x**3 * y - sp.exp(y), (x, y))(X)
    np.testing.assert_allclose(u, X[:, 0] ** 3 * X[:, 1] - np.exp(X[:, 1]), rtol=1e-15)
    F = numpy_function([x**-2, sp.Integer(4)], ("x", "y"))(X)
    np.testing.assert_allclose(F[:, 0], 1.0 / X[:, 0] ** 2, rtol=1e-15)
    assert F.shape == (3, 2) and np.all(F[:, 1] == 4.0)
    # grids keep their leading shape
    assert numpy_function(x + y, (x, y))(np.zeros((4, 5, 2))).shape == (4, 5)


def test_numpy_function_matrix_at_one_point_and_at_many():
    J = sp.Matrix([x**2 * y, sp.sin(x)]).jacobian((x, y))  # [[2xy, x^2], [cos x, 0]]
    f = numpy_function(J, (x, y))
    np.testing.assert_allclose(f(np.array([2.0, 3.0])), [[12.0, 4.0], [math.cos(2.0), 0.0]], rtol=1e-15)
    X = np.array([[2.0, 3.0], [1.0, -1.0]])
    batch = f(X)
    assert batch.shape == (2, 2, 2)
    np.testing.assert_allclose(batch[1], [[-2.0, 1.0], [math.cos(1.0), 0.0]], rtol=1e-15)


def test_numpy_rows_is_variable_major():
    Y = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 1.0]])
    out = numpy_rows([x * y, -x, sp.Integer(1)], (x, y))(Y)
    np.testing.assert_array_equal(out, [[-1.0, 0.0, 3.0], [-1.0, -2.0, -3.0], [1.0, 1.0, 1.0]])


def test_numpy_columns_with_special_functions():
    cols = numpy_columns([sp.erf(x), sp.besselj(0, y)], (x, y), special=True)(
        np.array([0.5, 1.0]), np.array([0.0, 2.0]))
    np.testing.assert_allclose(cols[0], [math.erf(0.5), math.erf(1.0)], rtol=1e-15)
    np.testing.assert_allclose(cols[1], [1.0, 0.22389077914123567], rtol=1e-14)


def test_python_function_on_floats():
    assert python_function(x**2 + y, (x, y))(3.0, 1.0) == 10.0
    assert python_function((x, x * y), (x, y))(2.0, 5.0) == [2.0, 10.0]


def test_rk4_step_is_fourth_order():
    def err(s):
        Y = np.ones((1, 1))
        for _ in range(round(1.0 / s)):
            Y = rk4_step(lambda Z: -Z, Y, s)
        return abs(float(Y[0, 0]) - math.exp(-1.0))

    ratio = err(0.1) / err(0.05)
    assert 15.0 < ratio < 17.0  # halving the step divides the global error by 2^4


def test_rk4_step_leaves_its_input_alone():
    Y = np.array([[1.0, 2.0]])
    before = Y.copy()
    rk4_step(lambda Z: Z, Y, 0.1)
    np.testing.assert_array_equal(Y, before)


def test_euler_maruyama_step_uses_the_generator_stream():
    Y = np.array([[1.0, -2.0], [0.5, 0.0]])
    got = euler_maruyama_step(lambda Z: -2.0 * Z, Y, 0.01, 0.3, np.random.default_rng(7))
    noise = np.random.default_rng(7).standard_normal(Y.shape)
    np.testing.assert_array_equal(got, Y + 0.01 * (-2.0 * Y) + math.sqrt(0.3 * 0.01) * noise)
    B = np.array([[1.0, 0.0], [1.0, 1.0]])
    got_b = euler_maruyama_step(lambda Z: 0.0 * Z, Y, 0.01, 0.3, np.random.default_rng(7), B)
    np.testing.assert_allclose(got_b, Y + math.sqrt(0.3 * 0.01) * (B @ noise), rtol=1e-15)


@pytest.mark.parametrize("eps", [0.0, -1.0])
def test_euler_maruyama_step_without_noise_is_euler(eps):
    Y = np.array([[2.0]])
    out = euler_maruyama_step(lambda Z: -Z, Y, 0.5, eps, np.random.default_rng(0))
    np.testing.assert_array_equal(out, [[1.0]])
