"""Problems with exact answers shared by the backend tests (Example 1 of the paper, a rotation)."""

import numpy as np
import sympy as sp
from symqp.backends import Problem

from symqp.library import poly

x, y, z = sp.symbols("x y z")
XYZ = (x, y, z)

# Example 1 of the paper: U = x⁴ − 2x² + y² + z² + 1, V = U/2, g ⟂ ∇V.
U1 = x**4 - 2 * x**2 + y**2 + z**2 + 1
V1 = U1 / 2
G1 = (-y - z, 2 * x**3 - 2 * x, 2 * x**3 - 2 * x)
F1 = tuple(sp.expand(-sp.diff(V1, v) + gi) for v, gi in zip(XYZ, G1))


def example1_targets(n, seed=0, noise=0.0):
    rng = np.random.default_rng(seed)
    X = rng.uniform([-2, -1.5, -1.5], [2, 1.5, 1.5], (n, 3))
    fn = sp.lambdify(XYZ, list(F1) + [V1] + list(G1), modules="numpy")
    G = np.column_stack([np.broadcast_to(np.asarray(c, float), (n,)) for c in fn(*X.T)])
    if noise:
        G = G * (1 + noise * rng.standard_normal(G.shape))
    return X, G


def example1_problem(n=1500, degree=4, seed=0, noise=0.0, **kw):
    X, G = example1_targets(n, seed, noise)
    return Problem(X, G[:, :3], G[:, 3], G[:, 4:], poly(XYZ, degree), **kw)


def poly_coeffs(expr):
    return {m: float(c) for m, c in sp.Poly(sp.expand(expr), *XYZ).terms()}


def coef_error(expr, exact):
    a, b = poly_coeffs(expr), poly_coeffs(exact)
    return max(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in set(a) | set(b))


def rotation_problem(n=300, seed=0, lib_degree=2):
    """V = (x² + y²)/2, g = (−y, x): a 2-d problem with an exact answer."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 2))
    g = np.column_stack([-X[:, 1], X[:, 0]])
    return Problem(X, -X + g, (X**2).sum(1) / 2, g, poly((x, y), lib_degree))


class RaiseOnImport:
    """Meta-path finder that makes ``import pysr`` fail like it does without Julia."""

    def find_spec(self, name, path=None, target=None):
        if name == "pysr":
            raise OSError("could not download Julia: network unreachable")

