"""EPR landscapes: data, the EPR loss and the Fokker–Planck residual, both routes, bad input."""

import numpy as np
import pytest
import sympy as sp

from symqp._errors import BackendError, DataError, ParameterError, TrainingError
from symqp.data._stationary import (
    StationaryData,
    load_stationary,
    sample_stationary,
    save_stationary,
)

torch = pytest.importorskip("torch")

X, Y = sp.symbols("x y")
C, D_TOY = 0.5, 0.1
V_TOY = ((X - 1.5) ** 2 - 1) ** 2 + (Y - 1.5) ** 2 / 2
EXACT_TOY = {"x**4": 1.0, "x**3": -6.0, "x**2": 11.5, "x": -7.5, "y**2": 0.5, "y": -1.5}


def _toy_field(x):
    vx = 4 * ((x[:, 0] - 1.5) ** 2 - 1) * (x[:, 0] - 1.5)
    vy = x[:, 1] - 1.5
    return np.stack([-vx - C * vy, C * vx - vy], axis=1)


@pytest.fixture(scope="module")
def toy_data():
    # EPR-Net's 2-D toy: f = -∇V + c J∇V, stationary density ∝ exp(-V/D)
    return sample_stationary(_toy_field, 3000, D_TOY, dt=4e-3, t_burn=4.0,
                             box=[[0.0, 3.0], [0.0, 3.0]], seed=0)


# ---------------------------------------------------------------- data
@pytest.mark.parametrize(
    "kwargs, msg",
    [
        ({"x": np.zeros((5, 2)), "f": np.zeros((5, 1)), "D": 0.1}, "f has shape"),
        ({"x": np.zeros((5, 2)), "f": np.zeros((5, 2)), "D": 0.0}, "D must be positive"),
        ({"x": np.zeros((5, 2)), "f": np.zeros((5, 2)), "D": -1.0}, "D must be positive"),
        ({"x": np.full((5, 2), np.nan), "f": np.zeros((5, 2)), "D": 0.1}, "NaN"),
        ({"x": np.zeros((2, 2)), "f": np.zeros((2, 2)), "D": 0.1}, "at least d \\+ 1"),
        ({"x": np.zeros((5, 2)), "f": np.zeros((5, 2)), "D": 0.1, "names": ("a", "a")}, "names"),
    ],
)
def test_bad_data(kwargs, msg):
    with pytest.raises(DataError, match=msg):
        StationaryData(**kwargs)


def test_sampler_bad_D():
    with pytest.raises(DataError, match="D must be positive"):
        sample_stationary(lambda x: -x, 10, 0.0, box=[[-1, 1]])


def test_save_load_roundtrip(tmp_path, toy_data):
    path = tmp_path / "s.npz"
    save_stationary(toy_data, path)
    back = load_stationary(path)
    np.testing.assert_array_equal(back.x, toy_data.x)
    assert back.D == D_TOY and back.names == toy_data.names
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((3, 1)), D=0.1)
    with pytest.raises(DataError, match=r"missing key\(s\) \['f'\]"):
        load_stationary(bad)


def test_ou_stationary_variance():
    # dX = -X dt + sqrt(2D) dW has stationary variance D (reference: the exact OU law)
    data = sample_stationary(lambda x: -x, 4000, 0.3, dt=1e-2, t_burn=4.0, box=[[-1, 1]], seed=3)
    assert data.x.var() == pytest.approx(0.3, rel=0.08)


# ---------------------------------------------------------------- losses
def _tiny(seed=0, d=2):
    g = torch.Generator().manual_seed(seed)
    W1 = torch.randn(4, d, generator=g, dtype=torch.float64, requires_grad=True)
    b1 = torch.randn(4, generator=g, dtype=torch.float64, requires_grad=True)
    W2 = torch.randn(1, 4, generator=g, dtype=torch.float64, requires_grad=True)

    def U(params, x):
        w1, c1, w2 = params
        return (torch.tanh(x @ w1.T + c1) @ w2.T)[:, 0]

    return (W1, b1, W2), U


def test_epr_loss_gradcheck():
    from symqp.decompose._epr import epr_loss

    params, U = _tiny()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 2, generator=g, dtype=torch.float64)
    f = torch.randn(6, 2, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda *ps: epr_loss(lambda z: U(ps, z), x, f), params,
                                    eps=1e-6, atol=1e-7)


def test_fp_residual_gradcheck():
    from symqp.decompose._epr import fp_residual

    params, U = _tiny(2)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(5, 2, generator=g, dtype=torch.float64)
    f = torch.randn(5, 2, generator=g, dtype=torch.float64)
    div = torch.randn(5, generator=g, dtype=torch.float64)
    fn = lambda *ps: (fp_residual(lambda z: U(ps, z), x, f, div, 0.3) ** 2).mean()
    assert torch.autograd.gradcheck(fn, params, eps=1e-6, atol=1e-7)


def test_fp_residual_vanishes_at_exact_landscape():
    # f = -∇V + g with g·∇V = 0 and ∇·g = 0: r = 0 at U = V (the stationary FP equation)
    from symqp.decompose._epr import epr_loss, fp_residual

    def V(x):
        return ((x[:, 0] - 1.5) ** 2 - 1) ** 2 + 0.5 * (x[:, 1] - 1.5) ** 2

    xn = np.random.default_rng(0).uniform(0, 3, (50, 2))
    x = torch.as_tensor(xn)
    f = torch.as_tensor(_toy_field(xn))
    vxx = 12 * (xn[:, 0] - 1.5) ** 2 - 4
    div = torch.as_tensor(-vxx - 1.0)  # ∇·f = -ΔV (the rotation is divergence-free)
    r = fp_residual(V, x, f, div, D_TOY).detach()
    assert float(r.abs().max()) < 1e-10
    # and the EPR loss is E|g|² = c² E|∇V|²
    gv = -(f.numpy() + C * np.stack([-(f.numpy()[:, 1]), f.numpy()[:, 0]], 1)) / (1 + C**2)
    want = C**2 * np.mean(np.sum(gv**2, 1))
    assert float(epr_loss(V, x, f).detach()) == pytest.approx(want, rel=1e-10)


def test_landscape_rrmse_against_formula():
    from symqp.decompose._epr import landscape_rrmse

    u = np.linspace(0, 3, 31)
    noisy = u + 5.0 + 0.1 * np.sin(7 * u)
    m = u < 2.0
    d = 0.1 * np.sin(7 * u[m])
    want = np.sqrt(np.sum((d - d.mean()) ** 2) / np.sum(u[m] ** 2))
    assert landscape_rrmse(noisy, u, 0.1) == pytest.approx(want, rel=1e-12)


# ---------------------------------------------------------------- pipeline
def test_direct_route_recovers_toy(toy_data):
    from symqp.decompose._epr import landscape_rrmse
    from symqp.identify import fit_epr

    res = fit_epr(toy_data, library="poly(4)", route="direct")
    assert res.model == "epr" and res.variables == ("x1", "x2")
    c = {k.replace("x1", "x").replace("x2", "y"): v for k, v in res.metrics["coefficients"].items()}
    for k, v in EXACT_TOY.items():
        assert c.get(k, 0.0) == pytest.approx(v, abs=0.06 * max(1.0, abs(v)))
    g = np.linspace(0, 3, 41)
    P = np.array(np.meshgrid(g, g)).reshape(2, -1).T
    vt = sp.lambdify((X, Y), V_TOY)(P[:, 0], P[:, 1])
    syms = sp.symbols("x1 x2")
    u = sp.lambdify(syms, res.V)(P[:, 0], P[:, 1])
    assert landscape_rrmse(u, vt, D_TOY) < 0.03
    assert sp.simplify(res.U - 2 * res.V) == 0


def test_neural_route_ou(tmp_path):
    from symqp.identify import fit_epr

    x = np.random.default_rng(0).normal(size=(3000, 1)) * np.sqrt(0.5)
    path = tmp_path / "ou.npz"
    save_stationary(StationaryData(x, -x, 0.5, names=["x"]), path)
    res = fit_epr(str(path), library="poly(4)", route="neural", steps=200, lbfgs_steps=100,
                  hidden=(8,))
    xs = sp.Symbol("x")
    assert float(res.V.coeff(xs, 2)) == pytest.approx(0.5, abs=0.05)
    assert res.metrics["n_terms"] <= 3


def test_enhanced_training_lowers_fp_residual(toy_data):
    from symqp.decompose import EPRLandscape
    from symqp.decompose._epr import fp_residual

    kw = {"steps": 150, "hidden": (16,), "seed": 0, "batch_size": 512}
    plain = EPRLandscape(**kw).fit(toy_data)
    enh = EPRLandscape(enhanced=True, field=_toy_field, enhanced_box=[[0.0, 3.0], [0.0, 3.0]],
                       **kw).fit(toy_data)
    xe = np.random.default_rng(5).uniform(0.5, 2.5, (400, 2))
    xt = torch.as_tensor(xe)
    ft = torch.as_tensor(_toy_field(xe))
    div = torch.as_tensor(-(12 * (xe[:, 0] - 1.5) ** 2 - 4) - 1.0)

    def rms(m):
        return float((fp_residual(m._U_torch, xt, ft, div, D_TOY).detach() ** 2).mean().sqrt())

    assert rms(enh) < rms(plain)


def test_bad_inputs(toy_data):
    from symqp.decompose import EPRLandscape
    from symqp.identify import fit_epr

    with pytest.raises(DataError, match="unknown route"):
        fit_epr(toy_data, route="x")
    with pytest.raises(BackendError, match="route='neural'"):
        fit_epr(toy_data, route="direct", backend="sr3")
    with pytest.raises(DataError, match="field"):
        EPRLandscape(enhanced=True, steps=1).fit(toy_data)
    with pytest.raises(TrainingError, match="not fitted"):
        EPRLandscape().V(np.zeros((1, 2)))
    with pytest.raises(DataError, match="expected StationaryData"):
        fit_epr([1, 2, 3])
    with pytest.raises(ParameterError, match=r"EPRLandscape.enhanced_box must be a finite \(2, 2\) array"):
        EPRLandscape(enhanced=True, field=_toy_field, enhanced_box=[[0.0, 3.0]], steps=1).fit(toy_data)


@pytest.mark.parametrize(
    "kw, name",
    [
        ({"hidden": []}, "hidden"),
        ({"activation": "relu"}, "activation"),
        ({"enhanced": 1}, "enhanced"),
        ({"enhanced_weight": -1.0}, "enhanced_weight"),
        ({"n_enhanced": 0}, "n_enhanced"),
        ({"field": "f"}, "field"),
        ({"steps": 1.5}, "steps"),
        ({"lbfgs_steps": -2}, "lbfgs_steps"),
        ({"threads": 0}, "threads"),
    ],
)
def test_invalid_parameter_named(toy_data, kw, name):
    from symqp.decompose import EPRLandscape

    model = EPRLandscape(**kw)
    with pytest.raises(ValueError, match=f"EPRLandscape.{name} "):
        model.fit(toy_data)
    assert not hasattr(model, "net_")


def test_estimator_contract(toy_data):
    from sklearn.base import clone

    from symqp.decompose import EPRLandscape

    m = EPRLandscape(hidden=(4,), steps=3, lbfgs_steps=2, field=_toy_field, enhanced_box=[[0.0, 3.0], [0.0, 3.0]])
    twin = clone(m)
    assert twin is not m and twin.get_params() == m.get_params()
    with pytest.raises(ValueError, match="unknown parameter 'polish_steps'"):
        m.set_params(polish_steps=1)
    assert m.fit(toy_data) is m
    assert len(m.loss_history_) == 3 and len(m.lbfgs_history_) >= 1
