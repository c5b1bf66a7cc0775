"""The d-variable test system of the scale benchmark (a helper, not a benchmark).

A rotated gradient f = -(I + A)∇V with a double well in x1, quadratic in the other
variables and two couplings (quartic x1²x2², quadratic x2x3 from d = 3), and A antisymmetric and
tridiagonal (1 and 1/2 alternating), so that U = 2V exactly. At d = 4 it is close to the
4-D system of ``route_compare``; its stable states are x = (±1, 0, ..., 0).
"""

from __future__ import annotations

import numpy as np
import sympy as sp


def scale_system(d: int):
    """The rotated-gradient system in ``d`` >= 2 variables ``x1 .. xd`` (see the module docstring)."""
    import symqp

    xs = sp.symbols(f"x1:{d + 1}")
    V = (xs[0] ** 2 - 1) ** 2 / 4 + sum(x**2 / 2 for x in xs[1:]) + xs[0] ** 2 * xs[1] ** 2 / 4
    if d >= 3:
        V += xs[1] * xs[2] / 4
    A = np.zeros((d, d))
    for k in range(d - 1):
        A[k, k + 1] = 1.0 if k % 2 == 0 else 0.5
        A[k + 1, k] = -A[k, k + 1]
    box = [[-2.0, 2.0]] + [[-1.5, 1.5]] * (d - 1)
    return symqp.systems.rotated_gradient(V, A, variables=xs, box=box)
