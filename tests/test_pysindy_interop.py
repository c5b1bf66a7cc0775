"""pysindy interop: Library.from_pysindy, the pysindy backend, and refusals before any work."""

from __future__ import annotations

import doctest
import importlib
import sys
import warnings

import numpy as np
import pytest
import sympy as sp
from symqp.backends import Problem, fit_problem, get_backend

import symqp
from symqp import BackendError, LibraryError, MissingDependencyError, ParameterError
from symqp.library import Library, poly, trig

ps = pytest.importorskip("pysindy")
pytest.importorskip("cvxpy")
x, y, z = sp.symbols("x y z")


@pytest.mark.parametrize("module", ["symqp.library._pysindy", "symqp.backends._pysindy"])
def test_doctests(module):
    res = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 0 and res.failed == 0


# ------------------------------------------------------------------ Library.from_pysindy
def pysindy_columns(lib, X):
    return np.asarray(lib.fit(X).transform(X), dtype=float)


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda: ps.PolynomialLibrary(degree=3), lambda: poly((x, y), 3)),
        (lambda: ps.FourierLibrary(n_frequencies=2), lambda: trig((x, y), 2)),
        (lambda: ps.PolynomialLibrary(degree=2) + ps.FourierLibrary(), lambda: poly((x, y), 2) + trig((x, y), 1)),
    ],
)
def test_from_pysindy_has_the_same_terms_and_columns(make, expected):
    lib = Library.from_pysindy(make(), ["x", "y"])
    assert set(lib.terms) == set(expected().terms)
    X = np.random.default_rng(3).uniform(-2, 2, (500, 2))
    np.testing.assert_allclose(lib.evaluate(X), pysindy_columns(make(), X), rtol=1e-12, atol=1e-12)


def test_from_pysindy_tensor_product_and_named_custom_library():
    tensored = ps.PolynomialLibrary(degree=1, include_bias=False) * ps.FourierLibrary()
    lib = Library.from_pysindy(tensored, "x y")
    assert lib.terms[:3] == (x * sp.sin(x), x * sp.cos(x), x * sp.sin(y))
    custom = ps.CustomLibrary([lambda a: np.exp(-a), lambda a, b: a * np.sin(b)],
                              [lambda a: f"exp(-{a})", lambda a, b: f"{a} sin({b})"])
    lib = Library.from_pysindy(custom, ["x", "y"])
    assert set(lib.terms) == {sp.exp(-x), sp.exp(-y), x * sp.sin(y)}
    X = np.random.default_rng(4).uniform(-1, 1, (50, 2))
    np.testing.assert_allclose(lib.evaluate(X)[:, 0], np.exp(-X[:, 0]), rtol=1e-14)


def test_from_pysindy_leaves_the_users_library_untouched():
    lib = ps.PolynomialLibrary(degree=2)
    Library.from_pysindy(lib, "x y")
    assert not hasattr(lib, "n_features_in_")


@pytest.mark.parametrize(
    "obj, match",
    [
        (ps.CustomLibrary([lambda a: np.exp(a)]), r"column 0 'f0\(x\)' has no formula symqp can read"),
        (ps.CustomLibrary([lambda a: np.exp(a)], [lambda a: f"sin({a})"]),
         r"column 0 is printed 'sin\(x\)' but computes something else"),
        (ps.STLSQ(), "expected a pysindy feature library, got STLSQ"),
        ("poly(2)", "expected a pysindy feature library, got str"),
    ],
)
def test_from_pysindy_refuses_libraries_without_symbolic_form(obj, match):
    with pytest.raises(LibraryError, match=match):
        Library.from_pysindy(obj, ["x", "y"])


def test_from_pysindy_checks_names():
    with pytest.raises(LibraryError, match="needs the variable names"):
        Library.from_pysindy(ps.PolynomialLibrary(), [])
    with pytest.raises(LibraryError, match="duplicate variable names"):
        Library.from_pysindy(ps.PolynomialLibrary(), ["x", "x"])


# ------------------------------------------------------------------ pysindy backend
def example1_problem(n=800, seed=5):
    """Exact targets of Example 1 (paper eq. 17): V = U/2, g = f + grad V."""
    rng = np.random.default_rng(seed)
    X = rng.uniform([-2, -1.5, -1.5], [2, 1.5, 1.5], (n, 3))
    c = 2 * (X[:, 0] ** 3 - X[:, 0])
    f = np.column_stack([-c - X[:, 1] - X[:, 2], -X[:, 1] + c, -X[:, 2] + c])
    V = (X[:, 0] ** 4 - 2 * X[:, 0] ** 2 + X[:, 1] ** 2 + X[:, 2] ** 2 + 1) / 2
    grad = np.column_stack([2 * X[:, 0] ** 3 - 2 * X[:, 0], X[:, 1], X[:, 2]])
    return Problem(X, f, V, f + grad, poly((x, y, z), 4))


def test_pysindy_backend_matches_sr3_on_example1():
    pb = example1_problem()
    t, nu = 0.1, 1e-5
    opt = ps.ConstrainedSR3(reg_weight_lam=t**2 / (2 * nu), relax_coeff_nu=nu, max_iter=10, tol=1e-10)
    fit = fit_problem(get_backend("pysindy", optimizer=opt), pb)
    ref = fit_problem(get_backend("sr3", threshold=t, nu=nu), pb)
    assert fit.backend == "pysindy"
    np.testing.assert_array_equal(fit.coef != 0, ref.coef != 0)
    assert np.abs(fit.coef - ref.coef).max() < 1e-6
    U = sp.Poly(fit.U - (x**4 - 2 * x**2 + y**2 + z**2 + 1), x, y, z)
    assert max(abs(float(c)) for c in U.coeffs()) < 1e-6
    assert fit.diagnostics["constraint_residual"] < 1e-8
    assert opt.constraint_lhs is None  # the user's optimizer is not modified


def test_pysindy_backend_grid_builds_a_front_and_selects_the_true_support():
    pb = example1_problem(n=600)
    be = get_backend("pysindy", optimizer=ps.ConstrainedSR3(relax_coeff_nu=1e-5, max_iter=10, tol=1e-10),
                     grid={"reg_weight_lam": [5e-3, 5e2, 5e6]})
    fit = fit_problem(be, pb)
    lams = sorted(c.params["reg_weight_lam"] for c in fit.front)
    assert len(fit.front) >= 2 and lams[-1] <= 5e6
    # thresholds sqrt(2 nu lam) = 1e-5 (dense), 0.1 (true support), 10 (everything cut)
    true = sp.Poly(x**4 - 2 * x**2 + y**2 + z**2 + 1, x, y, z)
    got = sp.Poly(fit.U, x, y, z)
    assert {m for m, c in zip(got.monoms(), got.coeffs()) if abs(c) > 1e-9} == set(true.monoms())
    assert "sweep of reg_weight_lam" in fit.selection


@pytest.mark.parametrize(
    "optimizer, match",
    [
        (ps.STLSQ(), "STLSQ takes no equality constraints"),
        (ps.SR3(), "SR3 takes no equality constraints"),
        (ps.ConstrainedSR3(constraint_lhs=np.ones((1, 2)), constraint_rhs=np.zeros(1), equality_constraints=True),
         "already has constraints"),
    ],
)
def test_pysindy_backend_refuses_optimizers_without_equality_constraints(optimizer, match):
    with pytest.raises(ParameterError, match=match):
        get_backend("pysindy", optimizer=optimizer).check()


def test_pysindy_backend_grid_checked():
    opt = ps.ConstrainedSR3()
    with pytest.raises(ParameterError, match="has no parameter 'threshold'"):
        get_backend("pysindy", optimizer=opt, grid={"threshold": [0.1]}).check()
    with pytest.raises(ParameterError, match="non-empty list"):
        get_backend("pysindy", optimizer=opt, grid={"reg_weight_lam": []}).check()


# ------------------------------------------------------------------ through symqp.fit
class LinearExact:
    """The exact decomposition of linear_nongradient: V = x^2 + y^2/2, g = (-y, 2x)."""

    def V(self, X):
        return X[:, 0] ** 2 + X[:, 1] ** 2 / 2

    def grad_V(self, X):
        return np.column_stack([2 * X[:, 0], X[:, 1]])

    def g(self, X):
        return np.column_stack([-X[:, 1], 2 * X[:, 0]])

    def f(self, X):
        return self.g(X) - self.grad_V(X)


@pytest.fixture(scope="module")
def linear_pairs():
    return symqp.data.sample_pairs(symqp.systems.linear_nongradient(), n_traj=60, n_pairs=10, h=0.01,
                                   dt=0.05, seed=1)


def test_fit_takes_pysindy_library_and_optimizer(linear_pairs):
    opt = ps.ConstrainedSR3(reg_weight_lam=500.0, relax_coeff_nu=1e-5, max_iter=20, tol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        r = symqp.fit(linear_pairs, library=ps.PolynomialLibrary(degree=2), backend=opt, method="neural",
                      decomposition=LinearExact(), verbose=False)
    assert r.backend == "pysindy"
    assert r.library == "1, x, y, x**2, x*y, y**2"
    err = sp.Poly(r.U - (2 * x**2 + y**2), x, y)
    assert max(abs(float(c)) for c in err.coeffs()) < 1e-6


class _Started(Exception):
    pass


@pytest.fixture
def no_work(monkeypatch):
    """Any expensive step raises _Started: the refusal must come before it."""
    from symqp.identify import _neural, _symbolic

    def boom(*a, **k):
        raise _Started("work started")

    monkeypatch.setattr(_neural, "prepare", boom)
    monkeypatch.setattr(_neural, "_decomposition", boom)
    monkeypatch.setattr(_symbolic, "resolve_library", boom)
    import symqp.identify._compare  # noqa: F401 - prepare is looked up in _neural at call time


@pytest.mark.parametrize("method", ["neural", "symbolic", "auto"])
def test_wrong_optimizer_refused_before_any_work(linear_pairs, no_work, method):
    with pytest.raises(ParameterError, match="STLSQ takes no equality constraints"):
        symqp.fit(linear_pairs, library="poly(2)", backend=ps.STLSQ(), method=method, verbose=False)


def test_duck_typed_backend_refused_before_any_work(linear_pairs, no_work):
    class Regressor:
        def fit(self, X, y):
            return self

    with pytest.raises(BackendError, match="a pysindy optimizer with equality constraints .* got Regressor"):
        symqp.fit(linear_pairs, library="poly(2)", backend=Regressor(), method="neural", verbose=False)


@pytest.mark.parametrize("backend, module", [("operon", "pyoperon"), ("pysr", "pysr"), ("pysindy", "pysindy")])
def test_missing_extra_reported_before_any_work(linear_pairs, no_work, monkeypatch, backend, module):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingDependencyError, match=f"{module} is needed"):
        symqp.fit(linear_pairs, library="poly(2)", backend=backend, method="neural", verbose=False)
    with pytest.raises(MissingDependencyError, match=f"{module} is needed"):
        symqp.compare(linear_pairs, library="poly(2)", backends=("sr3", backend), verbose=False)


def test_missing_torch_reported_before_any_work(linear_pairs, no_work, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingDependencyError, match="torch is needed"):
        symqp.fit(linear_pairs, library="poly(2)", method="neural", verbose=False)
    with pytest.raises(MissingDependencyError, match="torch is needed"):
        symqp.fit(linear_pairs, library="poly(2)", steps=10, verbose=False)  # auto, neural settings
