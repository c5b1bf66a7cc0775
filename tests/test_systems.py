"""Built-in systems: fields against the papers' formulas, exact U against the field."""

import doctest
import importlib

import numpy as np
import pytest
import sympy as sp
from scipy.optimize import fsolve

from symqp._errors import DataError, ParseError, SymqpError
from symqp.systems import (
    HamiltonianSystem,
    System,
    archetypal3d,
    central_force,
    coulomb,
    double_well,
    from_expressions,
    from_strings,
    get_system,
    graphene,
    harmonic_oscillator,
    linear_nongradient,
    list_systems,
    maier_stein,
    rotated_gradient,
    sampling_defaults,
)

x, y, z = sp.symbols("x y z")


# ------------------------------------------------------------------ doctests
@pytest.mark.parametrize(
    "module",
    [
        "symqp.systems._system",
        "symqp.systems._builtin",
        "symqp.systems._hamiltonian",
        "symqp.systems._registry",
    ],
)
def test_doctests(module):
    res = doctest.testmod(
        importlib.import_module(module), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert res.attempted > 0
    assert res.failed == 0


# ------------------------------------------------------------------ exact U against the field
def _check_decomposition(system: System) -> None:
    """f = -∇U/2 + g with g·∇U = 0, checked symbolically from the field and U alone."""
    U = system.U
    assert U is not None
    grad = sp.Matrix([sp.diff(U, v) for v in system.variables])
    f = sp.Matrix(system.field)
    g = f + grad / 2
    assert sp.simplify(g.dot(grad)) == 0
    # the package's own views agree: V = U/2, f = -∇V + g
    V = system.V
    assert sp.simplify(V - U / 2) == 0
    gV = sp.Matrix(system.grad_V)
    assert sp.simplify(gV - grad / 2) == sp.zeros(system.d, 1)
    assert sp.simplify(f - (-gV + sp.Matrix(system.g))) == sp.zeros(system.d, 1)


def _systems_with_U():
    yield archetypal3d()
    for a in (1, 2, 0.5):
        yield maier_stein(a, a)
    for a in (0, 1, -3, 2.5):
        yield linear_nongradient(a)
    yield rotated_gradient()
    yield rotated_gradient("x**2 + y**4 - x*y", -1.5)
    yield rotated_gradient(
        x**4 / 4 - x**2 / 2 + y**2 + z**2 / 2 + x * z / 4,
        [[0, 1, -2], [-1, 0, 0.5], [2, -0.5, 0]],
        variables="x y z",
    )


@pytest.mark.parametrize("system", list(_systems_with_U()), ids=lambda s: s.name)
def test_exact_U_satisfies_orthogonal_decomposition(system):
    _check_decomposition(system)


def test_every_registered_system_with_U_is_exact():
    for name in list_systems():
        s = get_system(name)
        if isinstance(s, System) and s.U is not None:
            _check_decomposition(s)


def test_archetypal3d_matches_eq17():
    s = archetypal3d()
    c = 2 * (x**3 - x)
    assert s.variables == (x, y, z)
    expected = (-c - y - z, -y + c, -z + c)
    assert all(sp.expand(a - b) == 0 for a, b in zip(s.field, expected))
    assert sp.expand(s.U - (x**4 - 2 * x**2 + y**2 + z**2 + 1)) == 0
    np.testing.assert_array_equal(s.box, [[-2, 2], [-1.5, 1.5], [-1.5, 1.5]])


def test_maier_stein_gradient_iff_alpha_equals_beta():
    for a, b in [(1, 1), (3, 3), (1, 2), (2, 1), (0.5, 4)]:
        s = maier_stein(a, b)
        f1, f2 = s.field
        # the classic form x' = x - x^3 - b x y^2, y' = -a (1 + x^2) y
        assert sp.expand(f1 - (x - x**3 - b * x * y**2)) == 0
        assert sp.simplify(f2 + a * (1 + x**2) * y) == 0
        curl = sp.simplify(sp.diff(f2, x) - sp.diff(f1, y))
        if a == b:
            assert curl == 0
            U = (x**2 - 1) ** 2 / 2 + a * (1 + x**2) * y**2  # zero at the minima (±1, 0)
            assert sp.simplify(s.U - U) == 0
            # gradient system: g = 0
            assert all(sp.simplify(gk) == 0 for gk in s.g)
        else:
            assert curl != 0
            assert s.U is None and s.V is None and s.g is None


def test_linear_nongradient_has_the_same_U_for_every_a():
    for a in (0, 1, 7):
        s = linear_nongradient(a)
        A = sp.Matrix([[-2, -a], [2 * a, -1]])
        assert sp.Matrix(s.field) == A * sp.Matrix([x, y])
        assert sp.expand(s.U - (2 * x**2 + y**2)) == 0
    np.testing.assert_array_equal(linear_nongradient().box, [[-1, 1], [-1, 1]])


def test_rotated_gradient_is_minus_I_plus_A_times_grad_V():
    V = x**2 * y + sp.cos(x) + y**4
    A = [[0, 2], [-2, 0]]
    s = rotated_gradient(V, A)
    grad = sp.Matrix([sp.diff(V, x), sp.diff(V, y)])
    expected = -(sp.eye(2) + sp.Matrix(A)) * grad
    assert sp.simplify(sp.Matrix(s.field) - expected) == sp.zeros(2, 1)
    assert sp.simplify(s.U - 2 * V) == 0
    # g = -A ∇V is orthogonal to ∇V
    assert sp.simplify(sp.Matrix(s.g) - (-sp.Matrix(A) * grad)) == sp.zeros(2, 1)


def test_rotated_gradient_rejects_bad_A():
    with pytest.raises(DataError, match="antisymmetric"):
        rotated_gradient("x**2 + y**2", [[0, 1], [1, 0]])
    with pytest.raises(DataError, match="shape"):
        rotated_gradient("x**2 + y**2", [[0, 1, 0], [-1, 0, 0]])
    with pytest.raises(DataError, match="scalar A"):
        rotated_gradient(x**2 + y**2 + z**2, 1.0)
    with pytest.raises(ParseError):
        rotated_gradient("__import__('os').system('true')")


def test_graphene_matches_eq23_and_its_fixed_points():
    s = graphene()
    w0, wF, zt, al, be = 1.0, 1.0018, 0.00045, 33.0, 1.4e-5
    det = (w0**2 - wF**2) / (2 * wF)
    nl = 3.0 / 8.0 * al / wF

    def ref(v):
        p, q = v
        r2 = p * p + q * q
        return [det * q - zt * p + nl * q * r2, -det * p - zt * q - nl * p * r2 - be / (2 * wF)]

    rng = np.random.default_rng(0)
    X = rng.uniform(-0.02, 0.02, size=(50, 2))
    got = s.f_numpy()(X)
    want = np.array([ref(v) for v in X])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-18)
    assert s.U is None
    # the paper's stable points A ≈ (-0.007, -0.011) and B ≈ (0.004, -0.001)
    for guess in ([-0.007, -0.011], [0.004, -0.001]):
        root = fsolve(ref, guess)
        assert np.abs(root - guess).max() < 1e-3
        assert np.abs(s.f_numpy()(root)).max() < 1e-12


def test_f_numpy_matches_sympy_everywhere():
    rng = np.random.default_rng(1)
    for name in list_systems():
        s = get_system(name)
        X = rng.uniform(s.box[:, 0], s.box[:, 1], size=(7, s.d))
        got = s.f_numpy()(X)
        assert got.shape == (7, s.d) and got.dtype == np.float64
        for row, fx in zip(X, got):
            subs = dict(zip(s.variables, row))
            want = [float(e.evalf(subs=subs)) for e in s.field]
            np.testing.assert_allclose(fx, want, rtol=1e-11, atol=1e-12)


def test_f_numpy_handles_constant_components_and_bad_shapes():
    s = from_expressions([sp.Integer(3), -y], [x, y])
    np.testing.assert_array_equal(s.f_numpy()(np.array([[1.0, 2.0], [0.0, 1.0]])), [[3, -2], [3, -1]])
    with pytest.raises(DataError, match="shape"):
        s.f_numpy()(np.zeros((4, 3)))
    with pytest.raises(DataError, match="numeric"):
        s.f_numpy()([["a", "b"]])


# ------------------------------------------------------------------ Hamiltonian systems
def _check_hamiltonian(s: HamiltonianSystem) -> None:
    Minv = [sp.Integer(1) / sp.nsimplify(m) for m in s.mass]
    T = sum(mi * pk**2 for mi, pk in zip(Minv, s.p)) / 2
    assert sp.simplify(s.H - (T + s.V)) == 0
    expected = [mi * pk for mi, pk in zip(Minv, s.p)] + [-sp.diff(s.V, qk) for qk in s.q]
    assert sp.simplify(sp.Matrix(s.field) - sp.Matrix(expected)) == sp.zeros(s.d, 1)
    # H is conserved by the flow: ∇H · f = 0
    dH = sum(sp.diff(s.H, v) * fk for v, fk in zip(s.variables, s.field))
    assert sp.simplify(dH) == 0


def test_hamiltonian_systems_match_the_reference_study():
    q, p = sp.symbols("q p")
    ho = harmonic_oscillator()
    assert sp.simplify(ho.H - (p**2 + q**2) / 2) == 0
    dw = double_well()
    assert sp.expand(dw.V - (-1 + 2 * q + 3 * q**2 - 4 * q**3 + q**4)) == 0
    cf = central_force()
    q1, q2 = cf.q
    r = sp.sqrt(q1**2 + q2**2)
    assert sp.simplify(cf.V - (1 / r + 1 / (10 - r))) == 0
    assert cf.d == 4
    co = coulomb()
    assert co.mass.tolist() == [1, 1, 1, 0.5, 0.5, 0.5]
    a, b = co.q[:3], co.q[3:]
    dist = sp.sqrt(sum((ai - bi) ** 2 for ai, bi in zip(a, b)))
    assert sp.simplify(co.V + 1 / (4 * sp.pi * dist)) == 0
    for s in (ho, dw, cf, co, central_force(3)):
        _check_hamiltonian(s)
        assert isinstance(s.as_system(), System)
        assert s.as_system().d == s.d


def test_hamiltonian_validation():
    q, p = sp.symbols("q p")
    with pytest.raises(DataError, match="mass"):
        HamiltonianSystem("bad", (q,), (p,), [-1.0], q**2, [[-1, 1], [-1, 1]])
    with pytest.raises(DataError, match="other than q"):
        HamiltonianSystem("bad", (q,), (p,), [1.0], q**2 + p, [[-1, 1], [-1, 1]])
    with pytest.raises(DataError, match="shape"):
        HamiltonianSystem("bad", (q,), (p,), [1.0], q**2, [[-1, 1]])
    with pytest.raises(DataError, match="dim"):
        central_force(4)


# ------------------------------------------------------------------ user systems
def test_from_strings_parses_safely_and_matches_expressions():
    s = from_strings(["-x + y**2", "-sin(x) - y"], "x y", box=[[-2, 2], [-1, 1]], U="x**2")
    assert sp.expand(s.field[0] - (-x + y**2)) == 0
    assert sp.simplify(s.field[1] - (-sp.sin(x) - y)) == 0
    assert s.U == x**2
    np.testing.assert_array_equal(s.box, [[-2, 2], [-1, 1]])
    t = from_expressions([-x + y**2, -sp.sin(x) - y], ["x", "y"])
    X = np.random.default_rng(2).normal(size=(5, 2))
    np.testing.assert_allclose(s.f_numpy()(X), t.f_numpy()(X), rtol=1e-15)


@pytest.mark.parametrize(
    ("formulas", "names", "exc", "match"),
    [
        (["-x + w", "-y"], "x y", ParseError, None),
        (["__import__('os').system('echo hi')", "-y"], "x y", ParseError, None),
        (["x.__class__", "-y"], "x y", ParseError, None),
        (["-x"], "x y", DataError, "1 formulas for 2 variables"),
        ("-x", "x", DataError, "list of strings"),
        (["-x", "-y"], "x x", DataError, "duplicate"),
        (["-x", "-y"], ["x", "1y"], DataError, "not a valid variable name"),
    ],
)
def test_from_strings_rejects_bad_input(formulas, names, exc, match):
    with pytest.raises(exc, match=match) as info:
        from_strings(formulas, names)
    assert "\n" not in str(info.value)


def test_system_validation_errors_are_one_line():
    cases = [
        lambda: System("s", (x, y), (-x,), [[-1, 1], [-1, 1]]),
        lambda: System("s", (x,), (-x - z,), [[-1, 1]]),
        lambda: System("s", (x,), (-x,), [[1, -1]]),
        lambda: System("s", (x,), (-x,), [[-1, np.nan]]),
        lambda: System("s", (x, y), (-x, -y), [[-1, 1]]),
        lambda: System("s", (x,), (-x,), [[-1, 1]], U=y**2),
        lambda: from_expressions([-x], [x], box="abc"),
    ]
    for case in cases:
        with pytest.raises(DataError) as info:
            case()
        assert "\n" not in str(info.value)


def test_system_repr_shows_the_field():
    r = repr(linear_nongradient(2))
    assert "dx/dt = -2*x - 2*y" in r and "dy/dt = 4*x - y" in r and "U = 2*x**2 + y**2" in r
    assert "U = unknown" in repr(maier_stein(1, 2))
    assert "p**2/2" in repr(harmonic_oscillator())


# ------------------------------------------------------------------ registry
def test_registry_names_params_and_defaults():
    names = set(list_systems())
    assert names == {
        "archetypal3d", "graphene", "maier_stein", "rotated_gradient", "linear_nongradient",
        "harmonic_oscillator", "double_well", "central_force", "coulomb",
    }
    assert all(isinstance(v, str) and v for v in list_systems().values())
    assert get_system("maier_stein", alpha=2, beta=2).params == {"alpha": 2.0, "beta": 2.0}
    assert get_system("linear_nongradient").params == {"a": 1.0}
    # the seed paper's App. B (Table B.2): N, M, h, t_j = j dt
    assert sampling_defaults("archetypal3d") == {"n_traj": 5000, "n_pairs": 50, "h": 0.01, "dt": 0.1}
    assert sampling_defaults("graphene") == {"n_traj": 2000, "n_pairs": 100, "h": 10.0, "dt": 100.0}
    for name in names:
        assert set(sampling_defaults(name)) == {"n_traj", "n_pairs", "h", "dt"}


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: get_system("lorenz"), "unknown system 'lorenz'"),
        (lambda: get_system("maier_stein", gamma=1), "no parameter 'gamma'"),
        (lambda: get_system("archetypal3d", a=1), "no parameter 'a'"),
        (lambda: get_system("maier_stein", alpha="abc"), "must be a number"),
        (lambda: get_system("linear_nongradient", a=float("inf")), "finite"),
        (lambda: sampling_defaults("nope"), "unknown system"),
    ],
)
def test_registry_errors(call, match):
    with pytest.raises(SymqpError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_rotated_gradient_accepts_a_sympy_matrix():
    a, b, c = sp.symbols("a b c")
    A = sp.zeros(3, 3)
    A[0, 1], A[1, 0] = 2, -2
    s = rotated_gradient((a**2 + b**2 + c**2) / 2, A, variables=(a, b, c))
    assert [sp.expand(e) for e in s.field] == [-a - 2 * b, 2 * a - b, -c]


def test_from_expressions_refuses_text_for_U():
    with pytest.raises(DataError, match="U must be a SymPy expression"):
        from_expressions([-sp.Symbol("x")], ["x"], U="__import__('os').getcwd()")
