"""The device of the neural learners: ``device="cuda"`` for every learner and every model of
``symqp fit``; the tests marked ``gpu`` run the learners on a CUDA device and compare with the
CPU (``pytest -m gpu``; skipped without CUDA). The others run everywhere."""

from __future__ import annotations

import numpy as np
import pytest

import symqp
from symqp import ParameterError, TrainingError
from symqp.cli import main
from symqp.decompose import EPRLandscape, HamiltonianPotential, NeuralDecomposition

torch = pytest.importorskip("torch")
CUDA = bool(torch.cuda.is_available())
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
no_cuda = pytest.mark.skipif(CUDA, reason="CUDA is present here")


def _hamiltonian_data():
    from symqp.data import sample_hamiltonian

    return sample_hamiltonian(symqp.systems.get_system("double_well"), 20, 200, 0.01, seed=0)


def _stationary_data():
    from symqp.data._stationary import StationaryData

    x = np.random.default_rng(0).normal(size=(2000, 1)) * np.sqrt(0.5)  # U = x²/2, D = 0.5
    return StationaryData(x, -x, 0.5)


@pytest.mark.parametrize("cls", [HamiltonianPotential, EPRLandscape, NeuralDecomposition])
def test_device_is_a_parameter_of_every_learner(cls):
    est = cls(device="cuda:1")
    assert est.get_params()["device"] == "cuda:1"


@pytest.mark.parametrize("cls, data", [(HamiltonianPotential, _hamiltonian_data), (EPRLandscape, _stationary_data)])
def test_bad_device_names_the_parameter(cls, data):
    with pytest.raises(ParameterError, match=rf"{cls.__name__}.device must be 'cpu' or 'cuda\[:N\]', got 'gpu'"):
        cls(device="gpu", steps=1).fit(data())


@no_cuda
@pytest.mark.parametrize("cls, data", [(HamiltonianPotential, _hamiltonian_data), (EPRLandscape, _stationary_data)])
def test_cuda_without_cuda_is_a_one_line_error(cls, data):
    with pytest.raises(TrainingError, match="CUDA is not available"):
        cls(device="cuda", steps=1).fit(data())


@pytest.fixture
def hamiltonian_file(tmp_path):
    from symqp.data import save_hamiltonian

    path = tmp_path / "dw.npz"
    save_hamiltonian(_hamiltonian_data(), path)
    return path


@no_cuda
def test_cli_passes_the_device_to_the_hamiltonian_network(hamiltonian_file, capsys):
    rc = main(["fit", str(hamiltonian_file), "--model", "hamiltonian", "--library", "poly(4)", "--backend", "sr3",
               "--device", "cuda", "--steps", "5"])  # fmt: skip
    assert rc == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_cli_says_when_the_device_is_unused(hamiltonian_file, tmp_path, capsys):
    out = tmp_path / "r.json"
    rc = main(["fit", str(hamiltonian_file), "--model", "hamiltonian", "--library", "poly(4)", "--device", "cuda",
               "--out", str(out)])  # fmt: skip
    assert rc == 0
    assert "--device cuda unused: the direct route trains no network" in capsys.readouterr().err


# ----------------------------------------------------------------------------- on a CUDA device
@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("cls, data", [(HamiltonianPotential, _hamiltonian_data), (EPRLandscape, _stationary_data)])
def test_potential_learners_on_cuda_match_cpu(cls, data):
    d = data()
    kw = {"steps": 300, "hidden": (16, 16), "lbfgs_steps": 50, "seed": 0}
    cpu, gpu = cls(device="cpu", **kw).fit(d), cls(device="cuda", **kw).fit(d)
    assert next(gpu.net_.parameters()).is_cuda
    X = np.linspace(-1.0, 1.0, 21)[:, None]
    g_cpu, g_gpu = cpu.grad_V(X), gpu.grad_V(X)
    assert isinstance(g_gpu, np.ndarray) and g_gpu.shape == X.shape
    # same float64 arithmetic on another device: equal up to the order of the sums
    assert np.max(np.abs(g_gpu - g_cpu)) < 1e-3 * np.max(np.abs(g_cpu))


@pytest.mark.gpu
@needs_cuda
def test_example1_neural_route_on_cuda_matches_cpu():
    """Example 1 of the paper by the neural route, float32 Adam then float64 L-BFGS on each device."""
    from symqp.result import coefficient_errors

    system = symqp.systems.archetypal3d()
    pairs = symqp.data.sample_pairs(system, n_traj=2000, n_pairs=50, h=0.01, dt=0.1, seed=0)
    res = {dev: symqp.fit(pairs, library="poly(5)", method="neural", device=dev, seed=0, verbose=False)
           for dev in ("cpu", "cuda")}  # fmt: skip
    for dev, r in res.items():
        ce = coefficient_errors(r.U, system.U, system.variables)
        assert ce.exact_support, (dev, ce.to_text())
        assert ce.max_abs < 1e-3, (dev, ce.to_text())  # the paper's accuracy goal
    between = coefficient_errors(res["cuda"].U, res["cpu"].U, system.variables)
    assert between.exact_support and between.max_abs < 1e-4
