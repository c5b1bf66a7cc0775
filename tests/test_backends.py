"""Regression backends: problem validation, Pareto selection, sr3 (vs pysindy), stlsq,
operon and the PySR adapter's parsing (the estimator contract, PySR on a recorded table and
the comparison are in test_backends_api.py)."""

import doctest
import importlib
import subprocess
import sys
import warnings

import numpy as np
import pytest
import sympy as sp
from backend_cases import (
    F1,
    G1,
    U1,
    XYZ,
    RaiseOnImport,
    coef_error,
    example1_problem,
    example1_targets,
    poly_coeffs,
    rotation_problem,
    x,
    y,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from symqp.backends import (
    Candidate,
    Fit,
    Problem,
    available_backends,
    get_backend,
    pareto_front,
    select_candidate,
    stlsq,
    tune_threshold,
)

from symqp._errors import BackendError, MissingDependencyError, ParameterError
from symqp.library import constraint_matrix, poly


# ------------------------------------------------------------------ doctests / imports
@pytest.mark.parametrize(
    "module",
    ["symqp.backends", "symqp.backends._base", "symqp.backends._problem", "symqp.backends._sr3",
     "symqp.backends._stlsq", "symqp.backends._operon", "symqp.backends._pysr", "symqp.backends._compare",
     "symqp.backends._registry", "symqp.backends._plot", "symqp.backends._blas"],
)
def test_doctests(module):
    res = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 0 and res.failed == 0


def test_import_backends_is_light():
    heavy = ["torch", "numba", "pyoperon", "pysr", "cvxpy", "pysindy", "matplotlib"]
    code = f"import sys, symqp.backends; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


# ------------------------------------------------------------------ Problem validation
def _valid_arrays(n=10, d=3):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n, d))
    return X, rng.normal(size=(n, d)), rng.normal(size=n), rng.normal(size=(n, d))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: {**a, "f": a["f"][:, :2]}, "f must have shape"),
        (lambda a: {**a, "V": a["V"][:5]}, "V must have shape"),
        (lambda a: {**a, "g": a["g"][None]}, "g must be 2-dimensional"),
        (lambda a: {**a, "V": np.where(np.arange(10) == 3, np.nan, a["V"])}, "V contains 1 NaN"),
        (lambda a: {**a, "f": np.full_like(a["f"], np.inf)}, "f contains 30 NaN or infinite"),
        (lambda a: {**a, "X": a["X"][:0], "f": a["f"][:0], "V": a["V"][:0], "g": a["g"][:0]}, "empty"),
        (lambda a: {**a, "library": poly((x, y), 2)}, "library has 2 variable"),
        (lambda a: {**a, "library": "poly(2)"}, "library must be a symqp.library.Library"),
        (lambda a: {**a, "v_mask": np.ones(3, bool)}, "v_mask must have shape (4,)"),
        (lambda a: {**a, "g_mask": np.ones(10)}, "g_mask must be a boolean array"),
        (lambda a: {**a, "constraints": np.zeros((2, 69))}, "constraint matrix has 69 columns, expected"),
        (lambda a: {**a, "X_val": a["X"]}, "give all of X_val"),
        (lambda a: {**a, "X": [["a", "b", "c"]] * 10}, "X must be a numeric array"),
    ],
)
def test_problem_rejects_bad_input(change, message):
    X, f, V, g = _valid_arrays()
    args = {"X": X, "f": f, "V": V, "g": g, "library": poly(XYZ, 1)}  # q = 4 -> width 28
    args = change(args)
    if "constraints" in args and args["constraints"] is not None:
        args["library"] = poly(XYZ, 2)  # q = 10 -> width 70
    with pytest.raises(BackendError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Problem(**args)


def test_problem_targets_and_validation_shapes():
    pb = example1_problem(n=50, degree=2)
    G = pb.targets()
    assert G.shape == (50, 7)
    np.testing.assert_array_equal(G[:, 3], pb.V)
    with pytest.raises(BackendError, match="no validation points"):
        pb.targets("val")
    with pytest.raises(BackendError, match="X_val must have 3 columns"):
        Problem(pb.X, pb.f, pb.V, pb.g, pb.library, X_val=pb.X[:, :2], f_val=pb.f, V_val=pb.V, g_val=pb.g)


# ------------------------------------------------------------------ registry and fronts
def test_registry_unknown_name_lists_known_ones():
    with pytest.raises(BackendError, match=r"unknown backend 'nope' \(known: .*operon.*pysr.*sr3.*stlsq"):
        get_backend("nope")



def test_pareto_front_and_selection_rule():
    S = sp.S
    cs = [Candidate(1, 0.9, 0.8, S(0), ()), Candidate(3, 0.1, 0.2, S(0), ()), Candidate(4, 0.1, 0.3, S(0), ()),
          Candidate(6, 0.01, 0.19, S(0), ()), Candidate(9, 0.0, float("nan"), S(0), ())]
    front = pareto_front(cs)
    # dominated: complexity 4 (worse than 3); the NaN-validation one falls back to training error 0
    assert [c.complexity for c in front] == [1, 3, 6, 9]
    chosen, rule = select_candidate(front[:3], rel_tol=0.06)
    assert chosen.complexity == 3 and "validation" in rule
    with pytest.raises(BackendError, match="empty Pareto front"):
        select_candidate([])
    # knee: the corner of a front that drops steeply then flattens
    knee = [Candidate(c, e, e, S(0), ()) for c, e in [(1, 1.0), (3, 0.5), (5, 1e-6), (8, 5e-7), (12, 4e-7)]]
    chosen, rule = select_candidate(knee, rule="knee")
    assert chosen.complexity == 5 and "knee" in rule
    short, rule = select_candidate(knee[:2], rule="knee")
    assert short.complexity == 3 and "too short" in rule
    with pytest.raises(BackendError, match="unknown selection rule 'elbow'"):
        select_candidate(knee, rule="elbow")


# ------------------------------------------------------------------ sr3
def test_structural_basis_spans_constraint_null_space():
    from symqp.backends._sr3 import structural_basis

    lib = poly(XYZ, 3)
    q = len(lib)
    vm = np.ones(q, bool)
    vm[-3:] = False
    gm = np.ones(q, bool)
    gm[0] = False
    D = [Dk.toarray() for Dk in lib.gradient_maps(columns=vm)]
    P, owner = structural_basis(D, vm, gm)
    C = constraint_matrix(lib, 3, v_mask=vm, g_mask=gm)
    assert np.abs(C @ P).max() == 0.0
    assert P.shape[1] == q * 7 - np.linalg.matrix_rank(C) == np.linalg.matrix_rank(P)
    assert np.all(P[owner, np.arange(P.shape[1])] == 1.0)


def test_sr3_recovers_example1_exactly():
    pb = example1_problem(n=1500, degree=4)
    fit = get_backend("sr3", threshold=0.1).fit(pb).fit_
    assert isinstance(fit, Fit) and fit.backend == "sr3"
    assert coef_error(fit.U, U1) < 1e-6
    for got, want in zip(fit.g, G1):
        assert coef_error(got, want) < 1e-6
    for got, want in zip(fit.f, F1):
        assert coef_error(got, want) < 1e-6
    assert fit.diagnostics["constraint_residual"] < 1e-10
    assert fit.diagnostics["converged"] and fit.diagnostics["iterations"] >= 1
    # coefficient matrix = [f | V | g] in library order, satisfying CΞ = 0
    C = constraint_matrix(pb.library, 3)
    assert np.abs(C @ fit.coef.ravel()).max() < 1e-10
    assert sp.expand(pb.library.expression(fit.coef[:, 3]) - fit.V) == 0
    assert fit.front and fit.timings["total"] > 0


def test_sr3_threshold_sweep_selects_true_support_on_held_out_points():
    X, G = example1_targets(600, seed=3)
    Xv, Gv = example1_targets(300, seed=4)
    pb = Problem(X, G[:, :3], G[:, 3], G[:, 4:], poly(XYZ, 4),
                 X_val=Xv, f_val=Gv[:, :3], V_val=Gv[:, 3], g_val=Gv[:, 4:])
    fit = get_backend("sr3", n_thresholds=12).fit(pb).fit_
    assert coef_error(fit.U, U1) < 1e-6
    cx = [c.complexity for c in fit.front]
    assert cx == sorted(cx) and len(cx) >= 2
    assert "threshold sweep" in fit.selection
    chosen = [c for c in fit.front if c.V == fit.V]
    assert chosen and chosen[0].complexity == 5 + 2 + 2 + 2  # V: 5 terms, g: 2 + 2 + 2
    assert np.isfinite(chosen[0].val_error)
    knee = get_backend("sr3", n_thresholds=12, selection_rule="knee").fit(pb).fit_
    assert coef_error(knee.U, U1) < 1e-6 and "knee rule" in knee.selection  # 2-point front


def test_sr3_without_validation_holds_out_points():
    fit = get_backend("sr3", n_thresholds=8).fit(example1_problem(n=800, degree=4)).fit_
    assert coef_error(fit.U, U1) < 1e-6
    assert all(np.isfinite(c.val_error) for c in fit.front)


def test_sr3_respects_masks_and_user_constraints():
    pb0 = example1_problem(n=800, degree=4)
    lib = pb0.library
    q = len(lib)
    vm = np.array([sp.Poly(t, *XYZ).total_degree() % 2 == 0 for t in lib.terms])  # even terms only
    # extra constraint: the coefficient of x**4 in V is 1/2 minus a 0.1 shift, i.e. forced wrong
    # -> a homogeneous constraint Ξ_V[x**4] − Ξ_V[1] = 0 ties it to the constant term
    row = np.zeros(q * 7)
    row[lib.index(x**4) * 7 + 3] = 1.0
    row[lib.index(sp.S(1)) * 7 + 3] = -1.0
    pb = Problem(pb0.X, pb0.f, pb0.V, pb0.g, lib, v_mask=vm, constraints=row[None])
    fit = get_backend("sr3", threshold=0.05).fit(pb).fit_
    coeffs = poly_coeffs(fit.V)
    assert all(sum(k) % 2 == 0 for k in coeffs)
    a4, a0 = coeffs.get((4, 0, 0), 0.0), coeffs.get((0, 0, 0), 0.0)
    assert abs(a4 - a0) < 1e-10
    assert abs(float(row @ fit.coef.ravel())) < 1e-10
    # with the true answer (1/2 and 1/2) compatible, it is still recovered
    assert coef_error(fit.U, U1) < 1e-6


def test_sr3_l1_and_option_errors():
    fit = get_backend("sr3", threshold=1e-4, regularizer="l1").fit(rotation_problem()).fit_
    assert coef_error(fit.U, x**2 + y**2) < 1e-8
    pb = rotation_problem(n=20)
    for kw, msg in [({"threshold": -1.0}, "SR3.threshold must be"), ({"nu": 0}, "SR3.nu must be"),
                    ({"regularizer": "l2"}, "SR3.regularizer must be one of 'l0', 'l1'"),
                    ({"max_iter": 0}, "SR3.max_iter"), ({"n_thresholds": 1}, "SR3.n_thresholds"),
                    ({"val_frac": 1.5}, "SR3.val_frac"), ({"seed": -1}, "SR3.seed")]:
        with pytest.raises(ParameterError, match=msg):
            get_backend("sr3", **kw).fit(pb)
    with pytest.raises(BackendError, match="expected a Problem"):
        get_backend("sr3").fit("data.npz")


def test_sr3_matches_pysindy_constrained_sr3():
    """Same support and coefficients (1e-6) as pysindy 2.x ConstrainedSR3 on exact targets."""
    pytest.importorskip("cvxpy")
    ps = pytest.importorskip("pysindy")
    from symqp.backends._sr3 import ConstrainedSR3Solver

    X, G = example1_targets(1000, seed=5)
    lib = poly(XYZ, 5)
    Theta = lib.evaluate(X)
    C = constraint_matrix(lib, 3, order="feature")
    t, nu = 0.1, 1e-5
    opt = ps.ConstrainedSR3(
        reg_weight_lam=t**2 / (2 * nu), relax_coeff_nu=nu, regularizer="l0", constraint_lhs=C,
        constraint_rhs=np.zeros(C.shape[0]), constraint_order="feature", equality_constraints=True,
        max_iter=10, tol=1e-10,  # its per-iteration cost is high; 10 steps settle on exact targets
    )
    from symqp.backends._blas import limit_blas

    # one BLAS thread: its small dense inverses are ~100x slower multithreaded on a busy machine
    with warnings.catch_warnings(), limit_blas(1):
        warnings.simplefilter("ignore")  # pysindy's "did not converge" at 10 iterations
        opt.fit(Theta, G)
    ref = np.asarray(opt.coef_).T  # (q, 7)
    fit = get_backend("sr3", threshold=t, nu=nu).fit(Problem(X, G[:, :3], G[:, 3], G[:, 4:], lib)).fit_
    np.testing.assert_array_equal(fit.coef != 0, np.abs(ref) > 0)
    assert np.abs(fit.coef - ref).max() < 1e-6
    # the generic solver (SVD null space of C, no structure) agrees too
    with limit_blas(1):
        s = ConstrainedSR3Solver(Theta, G, C, nu=nu)
        run = s.solve(t, s.least_squares())
    np.testing.assert_array_equal(run.coef != 0, fit.coef != 0)
    assert np.abs(run.coef - fit.coef).max() < 1e-9


def test_sr3_with_noisy_targets_keeps_true_support():
    pb = example1_problem(n=3000, degree=4, noise=1e-3, seed=7)
    fit = get_backend("sr3", threshold=0.1).fit(pb).fit_
    assert set(poly_coeffs(fit.U)) == set(poly_coeffs(U1))
    assert coef_error(fit.U, U1) < 1e-2
    assert fit.diagnostics["constraint_residual"] < 1e-10


# ------------------------------------------------------------------ stlsq
def test_stlsq_function_and_errors():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(200, 6))
    c = np.array([1.5, 0, 0, -0.7, 0, 0.2])
    np.testing.assert_allclose(stlsq(A, A @ c, 0.1), c, atol=1e-12)
    assert stlsq(A, A @ c, 0.5)[5] == 0.0  # 0.2 is below the threshold
    mask = np.array([True, True, True, False, True, True])
    assert stlsq(A, A @ c, 0.1, mask=mask)[3] == 0.0
    for args, kw, msg in [((A[:, 0], A[:, 0], 0.1), {}, "2-dimensional"), ((A, A, 0.1), {}, "1-dimensional"),
                          ((A, A[:10, 0], 0.1), {}, "200 rows but the target has 10"),
                          ((A, A[:, 0], -1.0), {}, "threshold"), ((A, A[:, 0], 0.1), {"mask": [1, 0]}, "mask"),
                          ((np.full((3, 2), np.nan), np.zeros(3), 0.1), {}, "NaN")]:
        with pytest.raises(BackendError, match=msg):
            stlsq(*args, **kw)


def test_stlsq_on_stacked_gradient_design():
    """Potential from gradient samples: rows of A are ∂_k θ_j at the points, stacked over k."""
    rng = np.random.default_rng(2)
    X = rng.uniform(-1.5, 1.5, (300, 2))
    lib = poly((x, y), 4)
    A = np.vstack([lib.evaluate_derivative(X, k) for k in range(2)])
    Vx = X[:, 0] ** 3 - X[:, 0] + 0.5 * X[:, 1]  # ∂V/∂x for V = x⁴/4 − x²/2 + xy/2 + y²
    Vy = 0.5 * X[:, 0] + 2 * X[:, 1]
    coef = stlsq(A[:, 1:], np.concatenate([Vx, Vy]), 0.05)  # constant column has zero gradient
    got = lib.expression(np.concatenate([[0.0], coef]))
    assert coef_error(got, x**4 / 4 - x**2 / 2 + x * y / 2 + y**2) < 1e-10


def test_tune_threshold_follows_bhat_rule():
    q = np.linspace(-2, 2, 200)
    A = np.column_stack([q**k for k in range(8)])
    b = 1 - 2 * q**2 + 0.5 * q**4
    res = tune_threshold(A, b, start=2.0, factor=0.5, tol=1e-9)
    assert res.reached
    np.testing.assert_allclose(res.coef, [1, 0, -2, 0, 0.5, 0, 0, 0], atol=1e-9)
    lams = [p[0] for p in res.path]
    assert lams == sorted(lams, reverse=True) and res.threshold == lams[-1]
    assert all(p[2] > 1e-9 for p in res.path[:-1])  # stopped at the first threshold that reaches tol
    bad = tune_threshold(A, b + np.sin(40 * q), start=1.0, factor=0.5, tol=1e-12, min_threshold=1e-3)
    assert not bad.reached and bad.error == min(p[2] for p in bad.path)
    with pytest.raises(BackendError, match="factor"):
        tune_threshold(A, b, factor=1.5)


def test_stlsq_backend_example1():
    fit = get_backend("stlsq").fit(example1_problem(n=1500, degree=4)).fit_
    assert coef_error(fit.U, U1) < 1e-6
    for got, want in zip(fit.f, F1):
        assert coef_error(got, want) < 1e-6
    assert fit.diagnostics["bhat_rule_reached"] and "Bhat" in fit.selection
    assert fit.diagnostics["constraint_residual"] < 1e-10
    fixed = get_backend("stlsq", threshold=0.05).fit(example1_problem(n=500, degree=5)).fit_
    assert coef_error(fixed.U, U1) < 1e-6


# ------------------------------------------------------------------ operon
def test_prune_expression_and_term_count():
    from symqp.backends._operon import prune_expression, term_count

    Xs = np.random.default_rng(0).uniform(-1, 1, (100, 2))
    e = prune_expression(2.0 * x**2 + 1e-9 * x * y + y - 3e-12, (x, y), Xs)
    assert e == 2.0 * x**2 + y and term_count(e) == 2
    assert prune_expression(sp.S(0.5), (x, y), Xs) == sp.S(0.5)


def test_operon_small_rotation_problem():
    pytest.importorskip("pyoperon")
    fit = get_backend("operon", generations=15, population_size=200, max_evaluations=20_000,
                      max_points=300).fit(rotation_problem(n=300)).fit_
    assert fit.backend == "operon" and fit.coef is None and fit.front
    assert coef_error(fit.U, x**2 + y**2) < 1e-3
    assert fit.diagnostics["orthogonality"] < 1e-3 and fit.diagnostics["f_residual"] < 1e-3
    # f is derived exactly from V and g
    for fk, gk, v in zip(fit.f, fit.g, (x, y)):
        assert sp.expand(fk - (-sp.diff(fit.V, v) + gk)) == 0
    assert set(fit.timings) >= {"search_V", "search_g1", "search_g2", "total"}


def test_operon_option_errors():
    pb = rotation_problem(n=20)
    for kw, msg in [({"generations": 0}, "generations"), ({"optimizer_iterations": -1}, "optimizer_iterations"),
                    ({"allowed_symbols": "add,pow"}, "unknown operon symbol"), ({"prune_tol": 2.0}, "prune_tol"),
                    ({"threads": 0}, "Operon.threads")]:
        with pytest.raises(ParameterError, match=msg):
            get_backend("operon", **kw).fit(pb)


@pytest.mark.slow
def test_operon_recovers_example1():
    pytest.importorskip("pyoperon")
    fit = get_backend("operon").fit(example1_problem(n=2000, degree=2)).fit_
    assert coef_error(fit.U, U1) < 1e-3
    for got, want in zip(fit.g, G1):
        assert coef_error(got, want) < 1e-3


# ------------------------------------------------------------------ pysr adapter
def test_pysr_unavailable_gives_clear_error(monkeypatch):
    monkeypatch.delitem(sys.modules, "pysr", raising=False)
    monkeypatch.setattr(sys, "meta_path", [RaiseOnImport(), *sys.meta_path])
    with pytest.raises(MissingDependencyError, match=r"pysr.*install.*OSError: could not download Julia"):
        get_backend("pysr", niterations=5).fit(rotation_problem(n=20))
    ok, msg = available_backends()["pysr"]
    assert not ok and "OSError" in msg


def test_pysr_template_spec_source():
    from symqp.backends._pysr import template_spec_source

    spec = template_spec_source(["x", "y"], orthogonality_weight=2.0)
    assert spec["expressions"] == ["V", "g1", "g2"]
    assert spec["variable_names"] == ["x", "y", "f1", "f2", "Vt", "gt1", "gt2"]
    body = spec["combine"]
    assert "D(V, 1)(x, y)" in body and "D(V, 2)(x, y)" in body
    assert "abs2(f1 + dv1 - g1v)" in body and "2.0 * abs2(dv1 * g1v + dv2 * g2v)" in body


def test_pysr_parse_template_equation():
    from symqp.backends._pysr import parse_template_equation

    pieces = ("V", "g1", "g2")
    out = parse_template_equation("V = ((#1 ^ 2) * 0.5) + square(#2) * 0.5; g1 = -#2; g2 = #1 * 1.0",
                                  (x, y), pieces)
    assert sp.expand(out["V"] - (x**2 + y**2) / 2) == 0 and out["g1"] == -y
    assert sp.expand(out["g2"] - x) == 0
    for text, msg in [("V = #1; g1 = #2", "lacks piece"), ("V = #3; g1 = #1; g2 = #2", "out of range"),
                      ("V = __import__('os'); g1 = #1; g2 = #2", "cannot read template piece 'V'"),
                      ("W = #1; V = #1; g1 = #1; g2 = #2", "unknown template piece 'W'"),
                      ("V = #1; V = #2; g1 = #1; g2 = #2", "appears twice")]:
        with pytest.raises(BackendError, match=msg):
            parse_template_equation(text, (x, y), pieces)
    # parameter vectors are skipped
    assert parse_template_equation("V = #1; g1 = #2; g2 = #1; p = [1.0, 2.0]", (x, y), pieces)["V"] == x


# A table in the shape of PySR's ``equations_`` for a template search on rotation_problem().
# ------------------------------------------------------------------ property: exact recovery
_coef = st.one_of(st.just(0.0), st.floats(0.5, 3.0), st.floats(-3.0, -0.5))


@settings(max_examples=12, deadline=None)
@given(cv=st.lists(_coef, min_size=10, max_size=10), cg=st.lists(_coef, min_size=20, max_size=20))
def test_sr3_and_stlsq_recover_any_consistent_sparse_model(cv, cg):
    """Any V and g in poly(3) with coefficients >= 0.5 in size come back from exact targets."""
    lib = poly((x, y), 3)
    V = lib.expression(np.array(cv))
    g = (lib.expression(np.array(cg[:10])), lib.expression(np.array(cg[10:])))
    rng = np.random.default_rng(0)
    X = rng.uniform(-1.5, 1.5, (400, 2))
    f = [-sp.diff(V, v) + gk for v, gk in zip((x, y), g)]
    fn = sp.lambdify((x, y), f + [V, *g], modules="numpy")
    G = np.column_stack([np.broadcast_to(np.asarray(c, float), (400,)) for c in fn(*X.T)])
    pb = Problem(X, G[:, :2], G[:, 2], G[:, 3:], lib)
    for name in ("sr3", "stlsq"):
        fit = get_backend(name, threshold=0.1).fit(pb).fit_
        assert coef_error(fit.V, V) < 1e-8, name
        for got, want in zip(fit.g, g):
            assert coef_error(got, want) < 1e-8, name
