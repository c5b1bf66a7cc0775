"""What makes large libraries and many variables fit: the block-eliminated SR3 solves, the
batched Newton search for equilibria and one-Add library expressions, each against the
straightforward computation it replaces."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from symqp.backends._sr3 import ConstrainedSR3Solver, structural_basis

from symqp._roots import newton_roots
from symqp.library import poly


@pytest.mark.parametrize("d, degree, all_v", [(2, 3, True), (3, 3, False), (3, 4, True)])
def test_block_elimination_equals_the_null_space_solve(d, degree, all_v):
    rng = np.random.default_rng(d * 10 + degree)
    lib = poly([f"x{i}" for i in range(d)], degree)
    q = len(lib)
    Theta = np.asarray(lib.evaluate(rng.uniform(-1, 1, (400, d))))
    G = rng.normal(size=(400, 2 * d + 1))
    vm = np.ones(q, bool) if all_v else rng.random(q) < 0.7
    gm = rng.random(q) < 0.8
    D = [Dk.toarray() for Dk in lib.gradient_maps(columns=vm)]
    P, owner = structural_basis(D, vm, gm)
    dense = ConstrainedSR3Solver(Theta, G, None, nu=1e-2, P=P, owner=owner)
    blocks = ConstrainedSR3Solver(Theta, G, None, nu=1e-2, structure=(D, vm, gm))
    assert blocks.blocks is not None and dense.blocks is None
    assert blocks.null_dim == dense.null_dim == vm.sum() + d * gm.sum()
    Xi0 = 0.1 * rng.normal(size=(q, 2 * d + 1))
    for t in (1e-3, 1e-1):
        a, b = dense.solve(t, Xi0, free_cols=range(d)), blocks.solve(t, Xi0, free_cols=range(d))
        assert a.iterations == b.iterations and np.array_equal(a.support, b.support)
        assert np.max(np.abs(a.coef - b.coef)) <= 1e-11 * np.max(np.abs(a.coef))
        # the constraints f_k = -D_k V + g_k hold exactly
        for k in range(d):
            assert np.allclose(b.coef[:, k], -D[k] @ b.coef[:, d] + b.coef[:, d + 1 + k], atol=1e-12)
    support = rng.random((q, 2 * d + 1)) < 0.5
    support[:, :d] = True
    a, b = dense.refit(support, refine=1), blocks.refit(support, refine=1)
    assert np.max(np.abs(a - b)) <= 1e-11 * np.max(np.abs(a))


def test_batched_newton_finds_every_equilibrium_of_a_double_well():
    # f = -(x^3 - x, 2y, z + y): equilibria (-1, 0, 0), (0, 0, 0), (1, 0, 0)
    F = lambda X: -np.c_[X[:, 0] ** 3 - X[:, 0], 2 * X[:, 1], X[:, 2] + X[:, 1]]

    def J(X):
        out = np.zeros((len(X), 3, 3))
        out[:, 0, 0] = -(3 * X[:, 0] ** 2 - 1)
        out[:, 1, 1] = -2.0
        out[:, 2, 1] = out[:, 2, 2] = -1.0
        return out

    starts = np.random.default_rng(0).uniform(-2, 2, (64, 3))
    roots = newton_roots(F, J, starts)
    assert len(roots) >= 60
    assert sorted({round(float(x), 10) for x in roots[:, 0]}) == [-1.0, 0.0, 1.0]
    assert np.max(np.abs(roots[:, 1:])) < 1e-12
    assert newton_roots(lambda X: X**2 + 1.0, lambda X: 2 * X[:, :, None], starts[:, :1]).shape == (0, 1)


def test_library_expression_is_the_sum_of_its_terms():
    lib = poly(["x", "y", "z"], 4)
    c = np.random.default_rng(1).normal(size=len(lib))
    c[::3] = 0.0
    expected = sp.S.Zero
    for ci, t in zip(c, lib.terms):
        if ci != 0:
            expected += sp.Float(float(ci)) * t
    assert lib.expression(c) == expected
    assert lib.expression(np.zeros(len(lib))) == 0


def test_library_expression_of_mixed_terms_is_canonical():
    from symqp.library import parse_library

    lib = parse_library("poly(2), sin(x), cos(y), x*sin(y)", ["x", "y"])
    rng = np.random.default_rng(2)
    for _ in range(5):
        c = rng.normal(size=len(lib))
        c[rng.random(len(lib)) < 0.3] = 0.0
        expected = sp.Add(*[sp.Float(float(ci)) * t for ci, t in zip(c, lib.terms) if ci != 0])
        got = lib.expression(c)
        assert got == expected and got.args == expected.args and str(got) == str(expected)
