"""Hamiltonian potentials (Bhat): data, loss, learner, both routes, bad input."""

from types import SimpleNamespace

import numpy as np
import pytest
import sympy as sp

from symqp._errors import BackendError, DataError, LibraryError, TrainingError
from symqp.data._hamiltonian import (
    HamiltonianData,
    load_hamiltonian,
    sample_hamiltonian,
    save_hamiltonian,
)

torch = pytest.importorskip("torch")

q = sp.Symbol("q")
DOUBLE_WELL = SimpleNamespace(q=(q,), V=-1 + 2 * q + 3 * q**2 - 4 * q**3 + q**4, mass=None,
                              box=np.array([[-1.0, 1.0], [-1.0, 1.0]]))
EXACT_DW = {"q": 2.0, "q**2": 3.0, "q**3": -4.0, "q**4": 1.0}


@pytest.fixture(scope="module")
def dw_data():
    # Bhat's T1: 10 trajectories from (q, p) uniform in [-1, 1]^2, 5001 points at h = 0.001;
    # with seed 2 exactly one of them has the energy to visit both wells, as in his set.
    data = sample_hamiltonian(DOUBLE_WELL, 10, 5000, 0.001, seed=2, substeps=1)
    assert sum(tr.min() < 1 < tr.max() for tr in data.q[..., 0]) == 1
    return data


# ---------------------------------------------------------------- data
def test_verlet_matches_exact_oscillator():
    osc = SimpleNamespace(q=(q,), V=q**2 / 2, mass=None)
    data = sample_hamiltonian(osc, 3, 500, 0.01, q0=[[0.0]] * 3, p0=[[1.0], [2.0], [3.0]])
    t = np.arange(501) * 0.01
    amp = np.array([1.0, 2.0, 3.0])[:, None]
    np.testing.assert_allclose(data.q[..., 0], amp * np.sin(t), atol=1e-6)
    np.testing.assert_allclose(data.p[..., 0], amp * np.cos(t), atol=1e-6)


def test_mass_matrix_energy_conserved():
    a, b = sp.symbols("a b")
    sys2 = SimpleNamespace(q=(a, b), V=(a - b) ** 2 / 2 + a**4 / 4, mass=np.array([1.0, 0.5]))
    data = sample_hamiltonian(sys2, 4, 400, 0.01, seed=1, box=np.tile([-1.0, 1.0], (4, 1)))
    H = 0.5 * np.sum(data.p**2 / data.mass, axis=2) + (data.q[..., 0] - data.q[..., 1]) ** 2 / 2 \
        + data.q[..., 0] ** 4 / 4
    assert np.max(np.abs(H - H[:, :1])) < 1e-5
    # p = M q̇ : central difference of q against p / m
    qdot = (data.q[:, 2:] - data.q[:, :-2]) / 0.02
    np.testing.assert_allclose(qdot, data.p[:, 1:-1] / data.mass, atol=2e-4)


def test_save_load_roundtrip(tmp_path, dw_data):
    path = tmp_path / "dw.npz"
    save_hamiltonian(dw_data, path)
    back = load_hamiltonian(path)
    np.testing.assert_array_equal(back.q, dw_data.q)
    np.testing.assert_array_equal(back.p, dw_data.p)
    assert back.h == dw_data.h and back.names == ("q",)


@pytest.mark.parametrize(
    "kwargs, msg",
    [
        (dict(q=np.zeros((2, 5, 1)), p=np.zeros((2, 4, 1)), h=0.1), "p has shape"),
        (dict(q=np.zeros((2, 1, 1)), p=np.zeros((2, 1, 1)), h=0.1), "at least 2 points"),
        (dict(q=np.zeros((2, 5, 1)), p=np.zeros((2, 5, 1)), h=0.0), "h must be"),
        (dict(q=np.full((2, 5, 1), np.nan), p=np.zeros((2, 5, 1)), h=0.1), "NaN"),
        (dict(q=np.zeros((2, 5, 2)), p=np.zeros((2, 5, 2)), h=0.1, mass=[1.0]), "mass"),
    ],
)
def test_bad_data(kwargs, msg):
    with pytest.raises(DataError, match=msg):
        HamiltonianData(**kwargs)


def test_load_missing_key(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, q=np.zeros((1, 3, 1)), h=0.1)
    with pytest.raises(DataError, match=r"missing key\(s\) \['p'\]"):
        load_hamiltonian(path)


# ---------------------------------------------------------------- loss
def _tiny_functional_net(seed=0):
    g = torch.Generator().manual_seed(seed)
    W1 = torch.randn(3, 1, generator=g, dtype=torch.float64, requires_grad=True)
    b1 = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)
    W2 = torch.randn(1, 3, generator=g, dtype=torch.float64, requires_grad=True)

    def V(params, x):
        w1, c1, w2 = params
        return (torch.tanh(x @ w1.T + c1) @ w2.T)[:, 0]

    return (W1, b1, W2), V


@pytest.mark.parametrize("two_points", [False, True])
def test_loss_gradient_gradcheck(two_points):
    from symqp.decompose._hamiltonian import hamiltonian_loss

    params, V = _tiny_functional_net()
    g = torch.Generator().manual_seed(1)
    qa = torch.randn(7, 1, generator=g, dtype=torch.float64)
    qb = qa + 0.1 if two_points else None
    rate = torch.randn(7, 1, generator=g, dtype=torch.float64)

    def fn(*ps):
        return hamiltonian_loss(lambda x: V(ps, x), qa, qb, rate)

    assert torch.autograd.gradcheck(fn, params, eps=1e-6, atol=1e-7)


def test_loss_value_is_bhat_eq3():
    from symqp.decompose._hamiltonian import hamiltonian_loss

    x = torch.linspace(-1, 1, 9, dtype=torch.float64)[:, None]
    rate = torch.cos(3 * x)
    # V = x^3 -> grad 3x^2; loss = mean (cos 3x + 3x^2)^2
    val = hamiltonian_loss(lambda z: (z**3)[:, 0], x, None, rate)
    assert float(val.detach()) == pytest.approx(float(((torch.cos(3 * x) + 3 * x**2) ** 2).mean()), rel=1e-14)


# ---------------------------------------------------------------- learner
def test_learner_bad_inputs(dw_data):
    from symqp.decompose import HamiltonianPotential

    with pytest.raises(DataError, match="unknown loss"):
        HamiltonianPotential(loss="euler", steps=1).fit(dw_data)
    with pytest.raises(DataError, match="features"):
        HamiltonianPotential(features="angle", steps=1).fit(dw_data)
    with pytest.raises(TrainingError, match="not fitted"):
        HamiltonianPotential().V(np.zeros((2, 1)))
    m = HamiltonianPotential(steps=2, hidden=(4,)).fit(dw_data)
    with pytest.raises(DataError, match=r"shape \(n, 1\)"):
        m.V(np.zeros((2, 3)))


def test_learner_tracks_double_well(dw_data):
    from symqp.decompose import HamiltonianPotential

    m = HamiltonianPotential(steps=400, hidden=(16, 16), batch_size=2048, seed=0).fit(dw_data)
    x = np.linspace(-0.6, 2.6, 50)[:, None]
    exact = 2 + 6 * x - 12 * x**2 + 4 * x**3
    assert np.sqrt(np.mean((m.grad_V(x) - exact) ** 2)) < 0.5 * np.sqrt(np.mean(exact**2))
    assert m.loss_history_[-1] < m.loss_history_[0]
