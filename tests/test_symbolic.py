"""The network-free route: f from the pairs, V from the Hamilton–Jacobi equation."""

import numpy as np
import pytest
import sympy as sp

import symqp
from symqp import IdentificationError
from symqp.identify._assemble import field_metrics
from symqp.identify._hj import HJProblem, lyapunov_hessian, solve_hj, stable_states
from symqp.library import poly
from symqp.result import coefficient_errors

x, y, z = sp.symbols("x y z")


def test_lyapunov_normalisation_of_a_hand_solved_linear_system():
    # J S + S J^T = -I for J = [[-1, 1], [0, -2]]: S = [[7/12, 1/12], [1/12, 1/4]] by hand,
    # so grad^2 U = S^-1 = [[9/5, -3/5], [-3/5, 21/5]] and grad^2 V = S^-1 / 2
    J = np.array([[-1.0, 1.0], [0.0, -2.0]])
    H = lyapunov_hessian(J)
    np.testing.assert_allclose(H, np.array([[0.9, -0.3], [-0.3, 2.1]]), rtol=1e-13, atol=1e-13)
    # and U = x^T S^-1 x / 2 solves 1/2 |grad U|^2 + f . grad U = 0 for f = J x exactly
    U = sp.Rational(9, 10) * x**2 - sp.Rational(3, 5) * x * y + sp.Rational(21, 10) * y**2
    f = [-x + y, -2 * y]
    Ux, Uy = sp.diff(U, x), sp.diff(U, y)
    assert sp.expand((Ux**2 + Uy**2) / 2 + f[0] * Ux + f[1] * Uy) == 0


def test_lyapunov_needs_a_stable_state():
    with pytest.raises(IdentificationError, match="stable"):
        lyapunov_hessian(np.array([[1.0, 0.0], [0.0, -1.0]]))


def test_example1_normalisation_is_diag_4_1_1():
    f = [-2 * (x**3 - x) - y - z, -y + 2 * (x**3 - x), -z + 2 * (x**3 - x)]
    states, points = stable_states(f, (x, y, z), np.array([[-2.0, 2], [-1.5, 1.5], [-1.5, 1.5]]))
    assert len(points) == 3 and len(states) == 2
    for s in states:
        assert abs(abs(s.x[0]) - 1) < 1e-10
        np.testing.assert_allclose(s.hessian_V, np.diag([4.0, 1.0, 1.0]), atol=1e-10)


def test_hj_residual_is_zero_for_the_exact_decomposition():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (500, 3))
    grad_V = np.c_[2 * X[:, 0] ** 3 - 2 * X[:, 0], X[:, 1], X[:, 2]]
    c = 2 * X[:, 0] ** 3 - 2 * X[:, 0]
    g = np.c_[-X[:, 1] - X[:, 2], c, c]
    m = field_metrics(grad_V, g)
    assert m["hj_residual"] < 1e-15 and m["orthogonality"] < 1e-15
    # a wrong V has a residual of order one
    assert field_metrics(grad_V, g + grad_V)["hj_residual"] > 0.1


def test_hj_solve_recovers_example1_exactly_from_the_exact_field():
    lib = poly((x, y, z), 4)
    f = [-2 * (x**3 - x) - y - z, -y + 2 * (x**3 - x), -z + 2 * (x**3 - x)]
    states, _ = stable_states(f, (x, y, z), np.array([[-2.0, 2], [-1.5, 1.5], [-1.5, 1.5]]))
    pb = HJProblem(lib, np.arange(len(lib)), states)
    rng = np.random.default_rng(1)
    Fn = symqp._numeric.numpy_function(f, (x, y, z))
    X, Xv = rng.uniform(-1.8, 1.8, (3000, 3)), rng.uniform(-1.8, 1.8, (1000, 3))
    pick, _ = solve_hj(pb, pb.gradients(lib.evaluate(X)), Fn(X), pb.gradients(lib.evaluate(Xv)), Fn(Xv))
    a = np.zeros(len(lib))
    a[pb.vcols[pick.support]] = pick.a
    U = sp.expand(2 * lib.expression(a))
    ce = coefficient_errors(U + 1, x**4 - 2 * x**2 + y**2 + z**2 + 1, (x, y, z))
    assert ce.exact_support and ce.max_abs < 1e-9


@pytest.fixture(scope="module")
def maier_stein_pairs():
    system = symqp.systems.get_system("maier_stein")
    return system, symqp.data.sample_pairs(system, n_traj=400, n_pairs=20, h=0.01, dt=0.1, seed=0)


def test_symbolic_route_is_exact_on_maier_stein(maier_stein_pairs):
    system, pairs = maier_stein_pairs
    r = symqp.fit(pairs, library="poly(4)", method="symbolic", verbose=False)
    ce = coefficient_errors(r.U, system.U, r.symbols)
    assert ce.exact_support and ce.max_abs < 1e-6, ce.to_text()
    m = r.metrics
    assert m["route"] == "symbolic" and m["n_stable_states"] == 2 and m["quality"] == "ok"
    assert m["hj_residual"] < 1e-6 and m["val_one_step_rel"] < 1e-10
    # the result survives a save/load round trip with its route recorded
    assert r.metrics["route_reason"]


def test_auto_keeps_a_credible_symbolic_result(maier_stein_pairs):
    _, pairs = maier_stein_pairs
    r = symqp.fit(pairs, library="poly(4)", verbose=False)
    assert r.metrics["route"] == "symbolic" and "credible" in r.metrics["route_reason"]


def _pendulum_pairs():
    # f outside the polynomial library: a damped pendulum with a sine
    system = symqp.systems.from_strings(["y", "-sin(x) - y"], "x y", box=[[-2, 2], [-2, 2]])
    return symqp.data.sample_pairs(system, n_traj=300, n_pairs=20, h=0.05, dt=0.2, seed=0)


def test_symbolic_route_says_when_f_is_not_in_the_library():
    with pytest.raises(IdentificationError, match="f is not identified in the library: held-out one-step error"):
        symqp.fit(_pendulum_pairs(), library="poly(1)", method="symbolic", verbose=False)


def test_auto_falls_back_to_the_neural_route_when_f_is_not_in_the_library(monkeypatch):
    from symqp.identify import _neural

    class Exact:  # stands in for the network: the exact decomposition V = y^2/2 + 1 - cos x ...
        def V(self, X):
            return 0.5 * X[:, 1] ** 2 + 1 - np.cos(X[:, 0])

        def grad_V(self, X):
            return np.c_[np.sin(X[:, 0]), X[:, 1]]

        def g(self, X):
            return self.f(X) + self.grad_V(X)

        def f(self, X):
            return np.c_[X[:, 1], -np.sin(X[:, 0]) - X[:, 1]]

    calls = []

    def stand_in(train, val, settings):
        calls.append(settings.method)
        return Exact()

    monkeypatch.setattr(_neural, "_decomposition", stand_in)
    r = symqp.fit(_pendulum_pairs(), library="poly(1)", verbose=False)
    assert calls == ["auto"]
    assert r.metrics["route"] == "neural"
    assert r.metrics["route_reason"].startswith("fell back to the neural route: symbolic route failed: f is not identified")


def test_no_stable_equilibrium_is_a_one_line_error():
    system = symqp.systems.from_strings(["x", "y"], "x y", box=[[-1, 1], [-1, 1]])
    pairs = symqp.data.sample_pairs(system, n_traj=100, n_pairs=5, h=0.01, dt=0.05, seed=0)
    with pytest.raises(IdentificationError, match="no stable equilibrium") as exc:
        symqp.fit(pairs, library="poly(2)", method="symbolic", verbose=False)
    assert "\n" not in str(exc.value)


def test_symbolic_route_on_the_hand_solved_linear_system():
    system = symqp.systems.from_strings(["-x + y", "-2*y"], "x y", box=[[-1, 1], [-1, 1]])
    pairs = symqp.data.sample_pairs(system, n_traj=200, n_pairs=10, h=0.01, dt=0.1, seed=0)
    r = symqp.fit(pairs, library="poly(2)", method="symbolic", verbose=False)
    exact = sp.Rational(9, 10) * x**2 - sp.Rational(3, 5) * x * y + sp.Rational(21, 10) * y**2
    ce = coefficient_errors(r.U, exact, (x, y))
    assert ce.exact_support and ce.max_abs < 1e-8, ce.to_text()
