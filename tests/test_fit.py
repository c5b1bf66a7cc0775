"""symqp.fit plumbing with exact decompositions standing in for the network."""

import numpy as np
import pytest
import sympy as sp

import symqp
from symqp import BackendError, DataError, LibraryError, ParameterError, TrainingError
from symqp.identify import choose_tau
from symqp.identify._region import balanced_subsample as _balanced_subsample

x, y, z = sp.symbols("x y z")


class SymbolicDecomposition:
    """A decomposition known in closed form: V and g as SymPy expressions."""

    def __init__(self, V, g, variables):
        self.variables = tuple(variables)
        self._V = sp.lambdify(self.variables, V, "numpy")
        self._gV = [sp.lambdify(self.variables, sp.diff(V, s), "numpy") for s in self.variables]
        self._g = [sp.lambdify(self.variables, e, "numpy") for e in g]

    def _vec(self, fns, X):
        return np.column_stack([np.broadcast_to(fn(*X.T), (X.shape[0],)) for fn in fns]).astype(float)

    def V(self, X):
        return np.broadcast_to(self._V(*np.asarray(X).T), (len(X),)).astype(float)

    def grad_V(self, X):
        return self._vec(self._gV, np.asarray(X))

    def g(self, X):
        return self._vec(self._g, np.asarray(X))

    def f(self, X):
        return self.g(X) - self.grad_V(X)


def make_pairs(dec, box, n, h, names, seed=0, n_traj=60):
    """Pairs (x0 uniform in box, xh one RK4 step of the exact field)."""
    rng = np.random.default_rng(seed)
    box = np.asarray(box, float)
    x0 = box[:, 0] + rng.random((n, box.shape[0])) * (box[:, 1] - box[:, 0])
    F = dec.f
    k1 = F(x0)
    k2 = F(x0 + h / 2 * k1)
    k3 = F(x0 + h / 2 * k2)
    k4 = F(x0 + h * k3)
    xh = x0 + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return symqp.data.Pairs(x0=x0, xh=xh, h=h, names=tuple(names), traj=np.arange(n) % n_traj)


U1 = x**4 - 2 * x**2 + y**2 + z**2 + 1
G1 = [-y - z, 2 * x**3 - 2 * x, 2 * x**3 - 2 * x]


@pytest.fixture(scope="module")
def example1():
    dec = SymbolicDecomposition(U1 / 2, G1, (x, y, z))
    pairs = make_pairs(dec, [[-1.8, 1.8], [-1.2, 1.2], [-1.2, 1.2]], 3000, 0.01, "xyz")
    return dec, pairs


def coef_errors(U, U_exact, syms):
    got = sp.Poly(U, *syms).as_dict()
    want = sp.Poly(U_exact, *syms).as_dict()
    err = max(abs(float(got.get(k, 0)) - float(want.get(k, 0))) for k in set(got) | set(want))
    return err, set(got) == set(want)


def test_recovers_example1_exactly_from_exact_decomposition(example1):
    dec, pairs = example1
    r = symqp.fit(pairs, library="poly(4)", decomposition=dec, backend="sr3", verbose=False)
    err, same_support = coef_errors(r.U, U1, (x, y, z))
    assert same_support, r.U
    assert err < 1e-8
    assert r.variables == ("x", "y", "z")
    # derived quantities are consistent with U = 2V and f = -grad V + g
    assert sp.expand(r.U - 2 * r.V) == 0
    for k, s in enumerate((x, y, z)):
        assert sp.expand(r.grad_V[k] - sp.diff(r.V, s)) == 0
        assert sp.expand(r.f[k] - (-r.grad_V[k] + r.g[k])) == 0
    m = r.metrics
    assert m["orthogonality"] < 1e-8
    assert m["u_rel_err_vs_network"] < 1e-8
    # RK2 of the identified f against RK4 steps of the same field: as good as the exact field
    assert m["val_one_step_rel"] < 1e-4
    assert m["val_one_step_rel"] == pytest.approx(m["val_one_step_rel_network"], rel=1e-6)
    assert m["tau"] > 0 and m["n_points"] > 100
    assert abs(m["u_shift"] - 0.0) < 1e-8  # 2V already has min 0 at (+-1, 0, 0)
    assert float(r.U_numpy(np.array([[1.0, 0.0, 0.0]]))[0]) == pytest.approx(0.0, abs=1e-8)
    assert set(r.timings) >= {"decomposition", "targets", "regression", "total"}
    assert r.backend == "sr3" and r.library == "poly(4)"
    assert r.decomposition is dec
    assert r.fit is not None and r.fit.V == r.fit.V  # backend Fit kept (data coordinates)


def test_constant_is_fixed_so_min_U_is_zero(example1):
    # V off by a constant and shifted in x: min U over the region is still moved to 0
    V = (U1 + 7) / 2
    dec = SymbolicDecomposition(V, G1, (x, y, z))
    _, pairs = example1
    r = symqp.fit(pairs, library="poly(4)", decomposition=dec, verbose=False)
    assert r.metrics["u_shift"] == pytest.approx(7.0, abs=1e-8)
    assert float(sp.Poly(r.U, x, y, z).as_dict()[(0, 0, 0)]) == pytest.approx(1.0, abs=1e-8)


def test_scale_free_on_tiny_states_like_example2():
    # Example-1-like landscape at states ~1e-2 and V ~1e-8 (the scales of the paper's Example 2)
    L, A = 0.01, 1e-8
    V = A * ((x / L) ** 4 / 4 - (x / L) ** 2 / 2 + (y / L) ** 2 / 2)
    g = [-sp.diff(V, y) * 3, sp.diff(V, x) * 3]  # rotated gradient: orthogonal to grad V
    dec = SymbolicDecomposition(V, g, (x, y))
    pairs = make_pairs(dec, [[-0.015, 0.015], [-0.01, 0.01]], 2000, 10.0, "xy")
    r = symqp.fit(pairs, library="poly(4)", decomposition=dec, verbose=False)
    got = sp.Poly(r.V, x, y).as_dict()
    want = sp.Poly(sp.expand(V), x, y).as_dict()
    assert set(got) - {(0, 0)} == set(want), r.V
    for k, v in want.items():
        assert float(got[k]) == pytest.approx(float(v), rel=1e-8)
    # x scale 2**-7 and an output scale were used and mapped back
    assert r.fit.diagnostics["scaling"]["x_scale_log2"] != 0


def test_hypothesis_masks_restrict_V_and_g(example1):
    dec, pairs = example1
    r = symqp.fit(
        pairs, library="poly(4)", v_library="poly(4)", g_library="poly(1)", decomposition=dec, verbose=False
    )
    for e in r.g:
        assert e == 0 or sp.Poly(e, x, y, z).total_degree() <= 1
    assert r.library == "poly(4); V: poly(4); g: poly(1)"


def test_given_tau_is_used_and_reported(example1):
    dec, pairs = example1
    r = symqp.fit(pairs, library="poly(4)", decomposition=dec, tau=0.75, verbose=False)
    assert r.tau == 0.75 and r.metrics["tau"] == 0.75
    V = dec.V(pairs.x0)
    assert r.metrics["n_points"] <= np.sum(V < V.min() + 0.75) < 0.7 * V.size
    r2 = symqp.fit(pairs, library="poly(4)", decomposition=dec, tau=50.0, verbose=False)
    assert r2.metrics["n_points"] > r.metrics["n_points"]


def test_path_input_and_library_object(example1, tmp_path):
    dec, pairs = example1
    path = tmp_path / "d.npz"
    symqp.data.save_pairs(pairs, path)
    lib = symqp.library.poly((x, y, z), 4)
    r = symqp.fit(str(path), library=lib, decomposition=dec, verbose=False)
    assert coef_errors(r.U, U1, (x, y, z))[1]


@pytest.mark.parametrize(
    "kw, exc, match",
    [
        ({"val_frac": 1.5}, ParameterError, "val_frac"),
        ({"tau": -1.0}, ParameterError, "tau must be a finite number > 0"),
        ({"tau": 1e-12}, DataError, "raise tau"),
        ({"max_points": 3}, ParameterError, "max_points"),
        ({"seed": -1}, ParameterError, "seed"),
        ({"method": "magic"}, ParameterError, "method"),
        ({"library": 123}, LibraryError, "spec string"),
        ({"library": None}, LibraryError, "no library"),
        ({"backend": "no_such_backend"}, BackendError, "no_such_backend"),
        ({"backend": 3.5}, BackendError, "backend must be"),
        ({"device": "tpu"}, ParameterError, "device"),
        ({"decomposition": object()}, TrainingError, "no method V"),
    ],
)
def test_bad_arguments(example1, kw, exc, match):
    dec, pairs = example1
    kw = {"library": "poly(2)", "decomposition": dec, "verbose": False, **kw}
    with pytest.raises(exc, match=match):
        symqp.fit(pairs, **kw)


def test_bad_pairs():
    with pytest.raises(DataError, match="snapshot pairs"):
        symqp.fit(np.zeros((3, 2)), library="poly(2)", verbose=False)
    with pytest.raises(DataError):
        symqp.fit("no_such_file.npz", library="poly(2)", verbose=False)


def test_non_finite_decomposition_is_training_error(example1):
    _, pairs = example1

    class Broken(SymbolicDecomposition):
        def V(self, X):
            v = super().V(X)
            v[0] = np.nan
            return v

    with pytest.raises(TrainingError, match="non-finite"):
        symqp.fit(pairs, library="poly(2)", decomposition=Broken(U1 / 2, G1, (x, y, z)), verbose=False)


def test_choose_tau_quantile_rule():
    rng = np.random.default_rng(0)
    V = rng.exponential(size=10_000) + 3.0
    tau = choose_tau(V, quantile=0.9)
    assert np.mean(V < V.min() + tau) == pytest.approx(0.9, abs=1e-3)
    # scale-free: scaling V scales tau
    assert choose_tau(1e-8 * V, quantile=0.9) == pytest.approx(1e-8 * tau, rel=1e-9)
    # at least min_points are kept
    assert np.sum(V < V.min() + choose_tau(V, quantile=0.001, min_points=500)) >= 500
    with pytest.raises(DataError):
        choose_tau([np.nan])
    with pytest.raises(DataError):
        choose_tau(V, quantile=0.0)


def test_balanced_subsample_caps_dense_cells():
    rng = np.random.default_rng(1)
    dense = rng.normal(0, 1e-3, (20_000, 2))
    sparse = rng.uniform(-1, 1, (500, 2))
    X = np.vstack([dense, sparse])
    idx = _balanced_subsample(X, 2000, rng)
    assert idx.size == 2000 and np.unique(idx).size == 2000
    # plain random sampling would keep ~2.4 % sparse points; the balanced one keeps most of them
    assert np.sum(idx >= 20_000) > 400
    assert np.array_equal(_balanced_subsample(X[:50], 100, rng), np.arange(50))


def test_end_to_end_with_a_tiny_network():
    # 2-D rotated gradient: V = x**2/2 + y**2, g = (-2y, x) is orthogonal to grad V = (x, 2y)
    pytest.importorskip("torch")
    system = symqp.systems.from_strings(["-x - 2*y", "x - 2*y"], ["x", "y"], box=[[-1.5, 1.5], [-1.5, 1.5]])
    pairs = symqp.data.sample_pairs(system, n_traj=100, n_pairs=10, h=0.01, dt=0.05, seed=0)
    r = symqp.fit(
        pairs,
        library="poly(2)",
        seed=0,
        steps=300,
        decomposition_options={"hidden": (16, 16), "lbfgs_steps": 50},
        verbose=False,
    )
    # U = x**2 + 2 y**2; a few hundred steps give the shape, not the paper's accuracy
    got = sp.Poly(r.U, x, y).as_dict()
    assert float(got.get((2, 0), 0)) == pytest.approx(1.0, rel=0.15)
    assert float(got.get((0, 2), 0)) == pytest.approx(2.0, rel=0.15)
    assert abs(float(got.get((1, 1), 0))) < 0.15
    assert r.metrics["val_one_step_rel"] < 0.05
    assert r.decomposition is not None and r.timings["decomposition"] > 0


class PerturbedDecomposition(SymbolicDecomposition):
    """The exact Example 1 decomposition plus smooth non-polynomial errors of size eps."""

    def __init__(self, eps):
        V = U1 / 2 + eps * sp.sin(1.3 * x + 0.7 * y) * sp.cos(z)
        g = [G1[0] + eps * sp.sin(y), G1[1] + eps * sp.cos(x * z), G1[2] + eps * x * y]
        super().__init__(V, g, (x, y, z))


def test_refinement_on_pairs_recovers_exact_coefficients_from_a_biased_decomposition(example1):
    # A decomposition off by ~2 % (as a briefly trained network is) biases every coefficient
    # of the regression; refining the front's candidates on the pairs removes the bias and
    # the selection on held-out pairs finds the exact support.
    _, pairs = example1
    dec = PerturbedDecomposition(0.02)
    raw = symqp.fit(pairs, library="poly(4)", decomposition=dec, refine=False, verbose=False)
    err_raw, _ = coef_errors(raw.U, U1, (x, y, z))
    assert err_raw > 1e-3
    r = symqp.fit(pairs, library="poly(4)", decomposition=dec, verbose=False)
    err, support = coef_errors(r.U, U1, (x, y, z))
    assert support and err < 1e-8
    info = r.fit.diagnostics["refinement"]
    assert info["refined"] and info["chosen_complexity"] == 5 + 6  # V: 4 terms + constant; g: 2 + 2 + 2 terms
    assert "refined on the pairs" in r.fit.selection
    assert all(c.params.get("refined_on_data") for c in r.fit.front)


def test_coefficients_in_library():
    from symqp.identify._refine import coefficients_in_library

    index = {sp.S.One: 0, x: 1, x**2 * y: 2}
    assert coefficients_in_library(3 - 0.5 * x**2 * y, index, 3).tolist() == [3.0, 0.0, -0.5]
    assert coefficients_in_library(sp.sin(x), index, 3) is None


def test_refinement_prunes_negligible_terms_of_a_dense_candidate():
    # one candidate with the right terms plus spurious small ones: refinement on the pairs
    # drives the spurious coefficients to ~0 and backward elimination removes them
    from symqp.backends import Candidate, Fit
    from symqp.library import poly
    from symqp.identify._refine import refine_fit

    a, b = sp.symbols("a b")
    dec = SymbolicDecomposition((a**2 + 2 * b**2) / 2, [-2 * b, a], (a, b))
    pairs = make_pairs(dec, [[-1, 1], [-1, 1]], 2000, 0.01, "ab")
    lib = poly((a, b), 3)
    V = 0.51 * a**2 + 0.99 * b**2 + 1e-4 * a * b**2 + 1e-5 * b
    g = (-2.01 * b + 1e-4 * a**2, 1.0 * a - 1e-4 * a * b)
    cand = Candidate(7, 0.1, 0.1, V, g)
    fit0 = Fit(V=V, grad_V=(), g=g, f=(), coef=None, front=[cand], selection="test")
    new, info = refine_fit(fit0, lib, X0=pairs.x0, XH=pairs.xh, h=pairs.h)
    assert info["refined"] and info["pruned_terms"] == 4
    assert sp.Poly(new.V, a, b).monoms() == [(2, 0), (0, 2)]
    assert abs(float(sp.Poly(new.V, a, b).coeff_monomial(a**2)) - 0.5) < 1e-9
    assert [len(sp.Add.make_args(e)) for e in new.g] == [1, 1]


def test_pairs_that_do_not_move_skip_the_refinement(example1):
    dec, pairs = example1
    still = symqp.data.Pairs(x0=pairs.x0, xh=pairs.x0, h=pairs.h, names=pairs.names, traj=pairs.traj)
    r = symqp.fit(still, library="poly(4)", decomposition=dec, verbose=False)
    assert "refinement" not in r.fit.diagnostics
    assert coef_errors(r.U, U1, (x, y, z))[0] < 1e-8
