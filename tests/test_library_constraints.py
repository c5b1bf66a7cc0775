"""Constraint matrix C for Xi = [f | V | g] and the stacked gradient design matrix."""

import warnings

import numpy as np
import pytest
import sympy as sp

from symqp import DataError, LibraryError
from symqp.library import Library, constraint_matrix, gradient_library_matrix, poly, rational

x, y, z = sp.symbols("x y z")

# Example 1 of the paper: U = x^4 - 2x^2 + y^2 + z^2 + 1, V = U/2, f = -grad V + g
U1 = x**4 - 2 * x**2 + y**2 + z**2 + 1
V1 = U1 / 2
G1 = (-y - z, 2 * x**3 - 2 * x, 2 * x**3 - 2 * x)
F1 = tuple(-sp.diff(V1, v) + g for v, g in zip((x, y, z), G1))


def _coef(lib, expr):
    """Library coefficients of a polynomial, via sympy.Poly (independent of Library code)."""
    out = np.zeros(len(lib))
    for mon, c in sp.Poly(sp.expand(expr), *lib.variables).terms():
        out[lib.index(sp.Mul(*[v**e for v, e in zip(lib.variables, mon)]))] = float(c)
    return out


def _xi_true(lib):
    return np.column_stack([_coef(lib, e) for e in (*F1, V1, *G1)])


def _vec(xi, order):
    return xi.ravel() if order == "feature" else xi.T.ravel()


@pytest.mark.parametrize("order", ["feature", "target"])
def test_example1_satisfies_constraints_full_rank(order):
    lib = poly(["x", "y", "z"], 5)
    xi = _xi_true(lib)
    C = constraint_matrix(lib, 3, order=order)
    assert C.shape == (3 * 56, 56 * 7)
    assert np.linalg.matrix_rank(C) == C.shape[0]
    np.testing.assert_allclose(C @ _vec(xi, order), 0, atol=1e-12)
    # a decomposition that breaks f = -grad V + g violates it
    bad = xi.copy()
    bad[lib.index(x**3), 3] += 0.1  # V gets x^3/10 but f is unchanged
    assert np.abs(C @ _vec(bad, order)).max() > 0.05


def test_masks_hypothesis_subspaces():
    lib = poly(["x", "y", "z"], 5)
    vm = lib.mask_of(poly(["x", "y", "z"], 4))
    gm = lib.mask_of(poly(["x", "y", "z"], 3))
    C = constraint_matrix(lib, 3, v_mask=vm, g_mask=gm)
    n_off = (~vm).sum() + 3 * (~gm).sum()
    assert C.shape == (3 * 56 + n_off, 56 * 7)
    assert np.linalg.matrix_rank(C) == C.shape[0]
    xi = _xi_true(lib)
    np.testing.assert_allclose(C @ xi.ravel(), 0, atol=1e-12)
    # a degree-5 term in V is now refused even when f is adjusted consistently
    j = lib.index(x**5)
    bad = xi.copy()
    bad[j, 3] = 1.0
    bad[lib.index(x**4), 0] -= 5.0
    assert np.abs(constraint_matrix(lib, 3) @ bad.ravel()).max() < 1e-12
    assert np.abs(C @ bad.ravel()).max() > 0.5
    # index lists work like bool masks
    C2 = constraint_matrix(lib, 3, v_mask=np.flatnonzero(vm), g_mask=np.flatnonzero(gm))
    np.testing.assert_array_equal(C, C2)


def test_feature_and_target_orders_are_permutations():
    lib = poly(["x", "y"], 2)
    Cf = constraint_matrix(lib, 2, order="feature")
    Ct = constraint_matrix(lib, 2, order="target")
    q, T = len(lib), 5
    perm = np.array([t * q + i for i in range(q) for t in range(T)])
    np.testing.assert_array_equal(Cf, Ct[:, perm])


def test_constraint_matrix_with_rational_v_subspace():
    r = sp.Symbol("r")
    lib = rational(["r"], 2, denominators=["r", "10 - r"])
    vm = lib.mask_of(["1", "1/r", "1/(10 - r)"])
    C = constraint_matrix(lib, 1, v_mask=vm)
    # V = 3/r + 1/(10 - r), g = 0: f = -V' = 3/r^2 - 1/(10 - r)^2
    xi = np.zeros((len(lib), 3))
    xi[lib.index(1 / r), 1] = 3
    xi[lib.index(1 / (10 - r)), 1] = 1
    xi[lib.index(r**-2), 0] = 3
    xi[lib.index((10 - r) ** -2), 0] = -1
    np.testing.assert_allclose(C @ xi.ravel(), 0, atol=1e-12)
    with pytest.raises(LibraryError, match="not closed"):
        constraint_matrix(lib, 1)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"d": 2}, "does not match"),
        ({"order": "rows"}, "unknown order"),
        ({"v_mask": np.ones(3, dtype=bool)}, "shape"),
        ({"g_mask": [0, 99]}, "outside"),
        ({"v_mask": [0.5]}, "bool mask"),
    ],
)
def test_constraint_matrix_bad_inputs(kw, match):
    lib = poly(["x", "y", "z"], 2)
    kw = {"d": 3, **kw}
    with pytest.raises(LibraryError, match=match):
        constraint_matrix(lib, kw.pop("d"), **kw)


def test_pysindy_constrained_sr3_recovers_example1(rng):
    ps = pytest.importorskip("pysindy")
    pytest.importorskip("cvxpy")
    lib = poly(["x", "y", "z"], 5)
    X = rng.uniform(-1.5, 1.5, (400, 3))
    theta = lib.evaluate(X, backend="numpy")
    fns = [sp.lambdify((x, y, z), e, "numpy") for e in (*F1, V1, *G1)]
    G = np.column_stack([np.broadcast_to(f(*X.T), (len(X),)) for f in fns])
    xi = _xi_true(lib)
    C = constraint_matrix(lib, 3, order="feature")
    opt = ps.ConstrainedSR3(
        constraint_lhs=C,
        constraint_rhs=np.zeros(C.shape[0]),
        constraint_order="feature",
        equality_constraints=True,
        reg_weight_lam=1e-8,
        relax_coeff_nu=1.0,
        max_iter=50,
        tol=1e-12,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter; the check is the result
        opt.fit(theta, G)
    got = opt.coef_.T  # (q, 2d+1)
    np.testing.assert_allclose(got, xi, atol=1e-6)
    np.testing.assert_allclose(C @ got.ravel(), 0, atol=1e-8)


def test_gradient_library_matrix_closed_and_open_paths(rng):
    X = rng.uniform(-1, 1, (9, 2))
    lib = poly(["x", "y"], 3)
    G = gradient_library_matrix(lib, X)
    assert G.shape == (18, len(lib))
    # central finite differences of Theta, independent of gradient maps and codegen
    h = 1e-6
    for k in range(2):
        e = np.zeros(2)
        e[k] = h
        fd = (lib.evaluate(X + e, backend="numpy") - lib.evaluate(X - e, backend="numpy")) / (2 * h)
        np.testing.assert_allclose(G[k * 9:(k + 1) * 9], fd, atol=1e-7)
    Gp = gradient_library_matrix(lib, X, order="point")
    np.testing.assert_allclose(Gp[1::2], G[9:])
    # not closed: direct derivatives; the closed sub-library agrees on its columns
    open_lib = lib + Library(["1/(x + 3)"], ["x", "y"])
    Go = gradient_library_matrix(open_lib, X)
    np.testing.assert_allclose(Go[:, : len(lib)], G, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(Go[:9, -1], -1 / (X[:, 0] + 3) ** 2, rtol=1e-12)
    with pytest.raises(DataError, match="unknown order"):
        gradient_library_matrix(lib, X, order="rows")
    with pytest.raises(DataError, match="shape"):
        gradient_library_matrix(lib, X[:, :1])
