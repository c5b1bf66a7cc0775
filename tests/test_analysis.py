"""Analysis on an exact U: stationary points, Z_eps, prediction error, paths, exit times, mesh."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest
import sympy as sp
from scipy import integrate, linalg

from symqp._errors import AnalysisError
from symqp.analysis import (
    arrhenius_rate,
    barriers,
    density_check,
    exit_time_estimate,
    exit_times_mc,
    geometric_action,
    linear_quasipotential,
    mesh_quasipotential,
    minimum_action_path,
    partition_function,
    prediction_error,
    separate,
    stationary_points,
)

x, y, z = sp.symbols("x y z")

# Example 1 of the paper (eq. 17), written out here independently of symqp.systems.
U1 = x**4 - 2 * x**2 + y**2 + z**2 + 1
C1 = 2 * (x**3 - x)
F1 = [-C1 - y - z, -y + C1, -z + C1]
BOX1 = [[-2, 2], [-1.5, 1.5], [-1.5, 1.5]]


def rotated_gradient_2d(a: float = 0.5):
    """f = -(I + A) grad V, A = [[0, a], [-a, 0]], V = (x^2-1)^2/4 + y^2/2; U = 2V exactly."""
    V = (x**2 - 1) ** 2 / 4 + y**2 / 2
    gx, gy = sp.diff(V, x), sp.diff(V, y)
    return 2 * V, [-gx - a * gy, -gy + a * gx]


@pytest.mark.parametrize(
    "module",
    ["_common", "_stationary", "_density", "_predict", "_exit", "_mesh", "_paths"],
)
def test_doctests(module):
    mod = importlib.import_module(f"symqp.analysis.{module}")
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0


# ------------------------------------------------------------------ stationary points
def test_example1_stationary_points_exact_and_classified():
    pts = stationary_points(U1, F1, [x, y, z], box=BOX1)
    assert len(pts) == 3
    minima = [p for p in pts if p.hessian_kind == "min"]
    saddles = [p for p in pts if p.is_saddle]
    assert sorted(round(float(p.x[0]), 12) for p in minima) == [-1.0, 1.0]
    for p in minima:
        np.testing.assert_allclose(p.x[1:], 0.0, atol=1e-12)
        assert p.is_stable and p.exact and p.index == 0
        assert p.U == pytest.approx(0.0, abs=1e-12)
        # Jacobian of f at (±1, 0, 0), by hand: [[-4, -1, -1], [4, -1, 0], [4, 0, -1]]
        ref = np.linalg.eigvals(np.array([[-4.0, -1, -1], [4, -1, 0], [4, 0, -1]]))
        np.testing.assert_allclose(np.sort_complex(p.eigenvalues), np.sort_complex(ref), atol=1e-10)
    (s,) = saddles
    np.testing.assert_allclose(s.x, 0.0, atol=1e-12)
    assert s.index == 1 and s.hessian_kind == "saddle" and s.U == pytest.approx(1.0)


def test_numerical_fallback_agrees_with_exact():
    exact = stationary_points(U1, F1, [x, y, z], box=BOX1)
    num = stationary_points(U1, F1, [x, y, z], box=BOX1, exact=False, n_starts=64)
    assert not any(p.exact for p in num)
    assert len(num) == len(exact)
    for p, q in zip(exact, num):
        np.testing.assert_allclose(p.x, q.x, atol=1e-8)
        assert p.kind == q.kind


def test_non_polynomial_field_uses_root_finding():
    pts = stationary_points(None, [-sp.sin(x), -y], [x, y], box=[[-4, 4], [-1, 1]], n_starts=64)
    xs = sorted(float(p.x[0]) for p in pts)
    np.testing.assert_allclose(xs, [-np.pi, 0.0, np.pi], atol=1e-9)
    kinds = {round(float(p.x[0]), 6): p.kind for p in pts}
    assert kinds[0.0] == "stable node"
    assert kinds[round(np.pi, 6)] == "saddle"


def test_example1_barriers_follow_unstable_manifold():
    bs = barriers(U1, F1, [x, y, z], box=BOX1)
    assert len(bs) == 2
    for b in bs:
        assert b.dU == pytest.approx(1.0, abs=1e-12)
        assert len(b.connects) == 2  # the saddle joins both minima


def test_bad_boxes():
    with pytest.raises(AnalysisError, match="contains no stationary point"):
        stationary_points(U1, F1, [x, y, z], box=[[0.3, 0.7], [0.3, 0.7], [0.3, 0.7]])
    with pytest.raises(AnalysisError, match="low >= high"):
        stationary_points(U1, F1, [x, y, z], box=[[2, -2], [-1, 1], [-1, 1]])
    with pytest.raises(AnalysisError, match="shape"):
        stationary_points(U1, F1, [x, y, z], box=[[-2, 2]])
    with pytest.raises(AnalysisError, match="not among the variables"):
        stationary_points(U1, [x + sp.Symbol("w"), y, z], [x, y, z], box=BOX1)


# ------------------------------------------------------------------ partition function
@pytest.mark.parametrize("eps, paper", [(0.05, 0.062875), (0.1, 0.179867), (0.2, 0.524055)])
def test_eq21_partition_function_exact(eps, paper):
    Z = partition_function(U1, [x, y, z], eps=eps)
    assert Z.method == "exact"
    assert Z.value == pytest.approx(paper, rel=1e-5)  # the paper prints six digits
    # independent reference: scipy quad of the x factor times the two Gaussians
    zx, _ = integrate.quad(lambda t: np.exp(-(t**4 - 2 * t**2) / eps), -np.inf, np.inf,
                           epsabs=0, epsrel=1e-12)
    assert Z.value == pytest.approx(zx * (np.pi * eps) * np.exp(-1 / eps), rel=1e-9)


def test_partition_function_qmc_and_nquad_against_exact():
    Zx = partition_function(U1, [x, y, z], eps=0.1)
    Zq = partition_function(U1, [x, y, z], eps=0.1, box=[[-3, 3]] * 3, method="qmc")
    assert Zq.method == "qmc" and Zq.error > 0
    assert Zq.value == pytest.approx(Zx.value, rel=5e-3)
    assert abs(Zq.value - Zx.value) < 6 * Zq.error + 1e-4 * Zx.value
    # coupled 2D quadratic U = x^2 + x y + y^2: Z = pi eps / sqrt(det A), A = [[1, .5], [.5, 1]]
    Zn = partition_function(x**2 + x * y + y**2, [x, y], eps=0.1, box=[[-3, 3], [-3, 3]])
    assert Zn.method == "nquad"
    assert Zn.value == pytest.approx(np.pi * 0.1 / np.sqrt(0.75), rel=1e-7)


def test_bessel_branch_without_double_well():
    # a x^4 + b x^2 with b > 0: the K_{1/4} closed form against quad
    Z = partition_function(2 * x**4 + 3 * x**2, [x], eps=0.3)
    ref, _ = integrate.quad(lambda t: np.exp(-(2 * t**4 + 3 * t**2) / 0.3), -np.inf, np.inf,
                            epsabs=0, epsrel=1e-12)
    assert Z.method == "exact"
    assert Z.value == pytest.approx(ref, rel=1e-9)


def test_separable_non_closed_form_uses_quad():
    Z = partition_function(sp.cosh(x) + y**2, [x, y], eps=0.5)
    ref, _ = integrate.quad(lambda t: np.exp(-np.cosh(t) / 0.5), -30, 30, epsabs=0,
                            epsrel=1e-12)
    assert Z.method == "separable"
    assert Z.value == pytest.approx(ref * np.sqrt(np.pi * 0.5), rel=1e-8)


def test_separate_detects_coupling():
    assert separate(x * y + x**2, [x, y]) is None
    const, parts = separate(U1, [x, y, z])
    assert const == 1 and parts[x] == x**4 - 2 * x**2 and parts[z] == z**2


@pytest.mark.parametrize("eps", [0.0, -0.1, float("nan")])
def test_nonpositive_eps_rejected(eps):
    with pytest.raises(AnalysisError, match="epsilon must be positive"):
        partition_function(U1, [x, y, z], eps=eps)


def test_coupled_U_without_box_rejected():
    with pytest.raises(AnalysisError, match="give a box"):
        partition_function(x * y + x**4 + y**4, [x, y], eps=0.1)


def test_density_check_matches_histogram_1d():
    # dx = -U'(x)/2 dt + sqrt(eps) dW has invariant density ~ exp(-U/eps) exactly
    U = x**4 - 2 * x**2
    r = density_check(U, [-sp.diff(U, x) / 2], [x], eps=0.5, box=[[-2.5, 2.5]], n_paths=300,
                      t_burn=3.0, t_sample=6.0, dt=5e-3, bins=20)
    assert r["tv"] < 0.05
    assert r["reference"].sum() * (5.0 / 20) == pytest.approx(1.0, rel=1e-3)


def test_marginal_density_of_a_correlated_gaussian():
    from symqp.analysis import as_model
    from symqp.analysis._density import marginal_density

    # exp(-(x^2 + xy + y^2)/eps): covariance (eps/2) [[1, 1/2], [1/2, 1]]^-1, var x = 2 eps / 3
    model = as_model(x**2 + x * y + y**2, None, [x, y])
    box = np.array([[-4.0, 4.0], [-4.0, 4.0]])
    for eps in (0.25, 0.5):
        xs, p = marginal_density(model, box, 0, eps, 801, n_other=401)
        assert integrate.trapezoid(p, xs) == pytest.approx(1.0, rel=1e-12)
        assert integrate.trapezoid(p * xs**2, xs) == pytest.approx(2 * eps / 3, rel=1e-4)
    sep = as_model(x**2 + y**4, None, [x, y])  # separable: the x factor is N(0, eps/2)
    xs, p = marginal_density(sep, box, 0, 0.5, 801)
    np.testing.assert_allclose(p, np.exp(-xs**2 / 0.5) / np.sqrt(np.pi * 0.5), rtol=1e-6)


# ------------------------------------------------------------------ prediction error
def test_prediction_error_against_matrix_exponential():
    A = np.array([[-1.0, 1.0], [-1.0, -1.0]])
    B = np.array([[-1.05, 1.0], [-1.0, -1.0]])
    x0 = np.array([[1.0, 0.0], [0.3, -0.8]])
    r = prediction_error([-1.05 * x + y, -x - y], [-x + y, -x - y], [x, y], x0=x0,
                         t_final=4.0, dt=0.01)
    EA, EB = linalg.expm(A * 0.01), linalg.expm(B * 0.01)  # exact one-step propagators
    for k in range(2):
        ref, sym = [x0[k]], [x0[k]]
        for _ in range(400):
            ref.append(EA @ ref[-1])
            sym.append(EB @ sym[-1])
        want = np.linalg.norm(np.subtract(sym, ref)) / np.linalg.norm(ref)
        assert r.errors[k] == pytest.approx(want, rel=1e-6)
    assert r.mean == pytest.approx(r.errors.mean())


def test_prediction_error_observed_trajectories_and_zero_for_same_field():
    r = prediction_error(F1, F1, [x, y, z], box=BOX1, n_traj=5, t_final=2.0, dt=0.01)
    assert r.mean == 0.0
    obs = np.zeros((2, 10, 3))
    obs[..., 0] = 1.0  # (1, 0, 0) is a fixed point of F1
    r2 = prediction_error(F1, obs, [x, y, z], dt=0.1)
    assert r2.mean == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(AnalysisError, match="NaN"):
        prediction_error(F1, np.full((1, 3, 3), np.nan), [x, y, z])


# ------------------------------------------------------------------ minimum action path
def test_map_action_equals_barrier_rotated_gradient():
    U, f = rotated_gradient_2d(0.5)
    mp = minimum_action_path(None, [-1, 0], [0, 0], f, [x, y], n_images=100)
    dU = float(U.subs({x: 0, y: 0}) - U.subs({x: -1, y: 0}))
    assert dU == 0.5
    assert mp.action == pytest.approx(dU, rel=2e-3)
    # the straight segment is not optimal for a rotated field: its action is larger
    straight = np.linspace([-1.0, 0.0], [0.0, 0.0], 101)
    assert geometric_action(None, straight, f, [x, y]) >= mp.action - 1e-9
    # downhill from the saddle to the other minimum costs (nearly) nothing
    full = minimum_action_path(None, [-1, 0], [1, 0], f, [x, y], via=[0, 0], n_images=100)
    assert full.action == pytest.approx(dU, rel=5e-3)


def test_map_bad_endpoints():
    _, f = rotated_gradient_2d()
    with pytest.raises(AnalysisError, match="dimension"):
        minimum_action_path(None, [-1, 0, 0], [0, 0], f, [x, y])


# ------------------------------------------------------------------ exit times
def test_eyring_kramers_prefactor_example1_and_gradient():
    est = exit_time_estimate(U1, F1, [x, y, z], minimum=[-1, 0, 0], saddle=[0, 0, 0],
                             eps=[0.1, 0.2])
    assert est.dU == 1.0
    # by hand: H_V(m) = diag(4, 1, 1), H_V(s) = diag(-2, 1, 1); Df(0) = [[2,-1,-1],[-2,-1,0],[-2,0,-1]]
    J = np.array([[2.0, -1, -1], [-2, -1, 0], [-2, 0, -1]])
    mu = max(np.linalg.eigvals(J).real)
    pref = 2 * np.pi / mu * np.sqrt(2.0 / 4.0)
    assert est.prefactor == pytest.approx(pref, rel=1e-10)
    np.testing.assert_allclose(est.times, pref * np.exp(1.0 / np.array([0.1, 0.2])))
    # a divergent g: only the rate applies
    est2 = exit_time_estimate(x**4 - 2 * x**2 + y**2, [-2 * x**3 + 2 * x + x * y, -y], [x, y],
                              minimum=[-1, 0], saddle=[0, 0], eps=[0.1])
    assert est2.prefactor is None and "div g" in est2.note


def test_arrhenius_rate_and_errors():
    eps = np.array([0.1, 0.2, 0.4])
    assert arrhenius_rate(eps, 2.0 * np.exp(0.7 / eps)) == pytest.approx(0.7)
    with pytest.raises(AnalysisError):
        arrhenius_rate([0.1], [1.0])
    with pytest.raises(AnalysisError, match="positive"):
        exit_time_estimate(U1, F1, [x, y, z], minimum=[-1, 0, 0], saddle=[0, 0, 0], eps=[0])


def _mfpt_1d(U, eps, a, b):
    """Exact mean first passage time a -> b (a < b) of dx = -U'/2 dt + sqrt(eps) dW."""
    u = sp.lambdify(x, U)
    inner = lambda t: integrate.quad(lambda s: np.exp(-u(s) / eps), -6, t, epsabs=0,
                                     epsrel=1e-11)[0]
    val, _ = integrate.quad(lambda t: 2 / eps * np.exp(u(t) / eps) * inner(t), a, b,
                            epsabs=0, epsrel=1e-10)
    return val


def test_exit_time_monte_carlo_matches_exact_mfpt_1d():
    # gradient double well U = x^4 - 2x^2 (dU = 1), f = -U'/2; target: reach x = 0.5
    U = x**4 - 2 * x**2
    f = [-sp.diff(U, x) / 2]
    mc = exit_times_mc(U, f, [x], start=[-1], target=[1], eps=[0.5], radius=0.5,
                       n_paths=400, dt=2e-3, t_max=500, seed=1)
    exact = _mfpt_1d(U, 0.5, -1.0, 0.5)
    assert mc["censored"][0] == 0
    assert abs(mc["mean"][0] - exact) < 4 * mc["stderr"][0] + 0.03 * exact


def test_eyring_kramers_approaches_exact_mfpt_as_eps_decreases():
    U = x**4 - 2 * x**2
    f = [-sp.diff(U, x) / 2]
    eps = [0.4, 0.2, 0.1, 0.05]
    est = exit_time_estimate(U, f, [x], minimum=[-1], saddle=[0], eps=eps)
    exact = np.array([_mfpt_1d(U, e, -1.0, 1.0) for e in eps])
    ratio = est.times / exact
    assert np.all(np.diff(np.abs(ratio - 1)) < 0)
    assert abs(ratio[-1] - 1) < 0.05
    # the fitted exponential rate is the barrier dU = 1
    assert arrhenius_rate(eps[2:], exact[2:]) == pytest.approx(1.0, abs=0.06)


# ------------------------------------------------------------------ mesh reference
@pytest.mark.parametrize("a", [0.0, 3.0])
def test_mesh_converges_on_linear_nongradient(a):
    f = [-2 * x - a * y, 2 * a * x - y]
    errs = []
    for N in (41, 81, 161):
        m = mesh_quasipotential(None, f, [x, y], attractor=[0, 0], box=[[-1, 1], [-1, 1]], N=N)
        X, Y = np.meshgrid(m.x, m.y, indexing="ij")
        errs.append(m.error(2 * X**2 + Y**2)["max_abs"])
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 5e-3


def test_mesh_rotated_gradient_double_well():
    U, f = rotated_gradient_2d(1.0)
    m = mesh_quasipotential(None, f, [x, y], attractor=[-1, 0], box=[[-1.9, -0.1], [-0.9, 0.9]],
                            N=121)
    X, Y = np.meshgrid(m.x, m.y, indexing="ij")
    exact = sp.lambdify((x, y), U - U.subs({x: -1, y: 0}))(X, Y)
    assert m.error(exact)["max_rel"] < 1e-2


def test_linear_quasipotential_solves_lyapunov():
    J = np.array([[-2.0, -5.0], [10.0, -1.0]])
    np.testing.assert_allclose(linear_quasipotential(J), [[2.0, 0.0], [0.0, 1.0]], atol=1e-12)


def test_mesh_bad_inputs():
    f = [-x, -y]
    with pytest.raises(AnalysisError, match="N must be an integer >= 3"):
        mesh_quasipotential(None, f, [x, y], attractor=[0, 0], box=[[-1, 1], [-1, 1]], N=2)
    with pytest.raises(AnalysisError, match="outside the box"):
        mesh_quasipotential(None, f, [x, y], attractor=[5, 0], box=[[-1, 1], [-1, 1]], N=11)
    with pytest.raises(AnalysisError, match="2D"):
        mesh_quasipotential(None, F1, [x, y, z], attractor=[1, 0, 0], box=BOX1, N=11)
    with pytest.raises(AnalysisError, match="does not vanish"):
        mesh_quasipotential(None, f, [x, y], attractor=[0.5, 0], box=[[-1, 1], [-1, 1]], N=11)
