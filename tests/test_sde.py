"""SDE data: the stochastic Heun sampler, the --sde-eps command, stochastic fits and their inputs."""

import math

import numpy as np
import pytest
import sympy as sp

import symqp
from symqp import DataError, IdentificationError, ParameterError
from symqp.cli import main
from symqp.data import sample_sde_pairs
from symqp.result import coefficient_errors

x, y = sp.symbols("x y")


def _ou():
    return symqp.systems.from_expressions([-x], [x], box=[[-1, 1]])


def test_heun_is_second_order_in_the_mean_and_variance_of_an_ou_step():
    # four Heun steps of 0.25 over h = 1: the mean factor is (1 - d + d^2/2)^4 = 0.37253 (exact
    # e^-1 = 0.36788, Euler-Maruyama 0.75^4 = 0.31641); the variance follows
    # v <- a^2 v + (1 - d/2)^2 eps d from v = 0
    eps, d = 0.02, 0.25
    p = sample_sde_pairs(_ou(), eps=eps, n_traj=100_000, n_pairs=1, h=1.0, dt=1.0, substeps=4, seed=3)
    slope, icpt = np.polyfit(p.x0[:, 0], p.xh[:, 0], 1)
    a = 1 - d + d * d / 2
    assert abs(slope - a**4) < 2e-3 and abs(icpt) < 2e-3
    assert abs(slope - math.exp(-1)) < 6e-3 and abs(slope - 0.75**4) > 0.05
    v = 0.0
    for _ in range(4):
        v = a * a * v + (1 - d / 2) ** 2 * eps * d
    resid = p.xh[:, 0] - (slope * p.x0[:, 0] + icpt)
    assert abs(resid.var() / v - 1) < 0.02


def test_one_long_path_cut_into_increments_shares_its_snapshots():
    p = sample_sde_pairs(_ou(), eps=0.1, n_traj=1, n_pairs=1000, h=0.01, dt=0.01, t_burn=1.0, seed=0)
    assert p.n == 1000 and np.array_equal(p.xh[:-1], p.x0[1:])


def test_constant_diffusion_matrix_sets_the_increment_covariance():
    sys2 = symqp.systems.from_expressions([sp.Integer(0), sp.Integer(0)], [x, y], box=[[-1, 1], [-1, 1]])
    B = np.array([[1.0, 0.0], [0.5, 1.0]])
    p = sample_sde_pairs(sys2, eps=0.2, n_traj=20_000, n_pairs=2, h=0.1, dt=0.1, diffusion=B, seed=1)
    cov = np.cov((p.xh - p.x0).T) / (0.2 * 0.1)
    np.testing.assert_allclose(cov, B @ B.T, atol=0.03)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"eps": 0.0}, "eps must be a positive"),
        ({"eps": -1.0}, "eps must be a positive"),
        ({"eps": 0.1, "substeps": 0}, "substeps must be a positive integer"),
        ({"eps": 0.1, "diffusion": [[1.0, 0.0]]}, r"diffusion must be a finite \(1, 1\) matrix"),
        ({"eps": 0.1, "t_burn": -1.0}, "t_burn must be a non-negative"),
    ],
)
def test_sampler_inputs_are_one_line_errors(kw, match):
    with pytest.raises(DataError, match=match) as exc:
        sample_sde_pairs(_ou(), n_traj=2, n_pairs=2, h=0.1, dt=0.1, **kw)
    assert "\n" not in str(exc.value)


def test_simulate_command_writes_sde_pairs(tmp_path, capsys):
    out = tmp_path / "sde.npz"
    assert main(["simulate", "maier_stein", "--out", str(out), "--sde-eps", "0.05", "--n-traj", "20",
                 "--n-pairs", "5", "--quiet"]) == 0  # fmt: skip
    p = symqp.data.load_pairs(out)
    assert p.n == 100 and p.h == 0.01


@pytest.mark.parametrize(
    "args, match",
    [
        (["--sde-eps", "0"], "--sde-eps must be a positive number"),
        (["--sde-eps", "-0.1"], "--sde-eps must be a positive number"),
        (["--t-burn", "2"], "apply with --sde-eps only"),
        (["--sde-eps", "0.1", "--diffusion", "1,0;0,0"], "singular"),
    ],
)
def test_simulate_command_refuses_bad_noise_settings(tmp_path, capsys, args, match):
    assert main(["simulate", "maier_stein", "--out", str(tmp_path / "d.npz"), "--n-traj", "2", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and match in err and "\n" not in err


def test_noise_level_of_an_ou_process_is_estimated_within_two_percent():
    # dx = -x dt + sqrt(0.1) dW; f = -x in poly(2); the increment variance carries the O(h) term
    p = sample_sde_pairs(_ou(), eps=0.1, n_traj=1000, n_pairs=50, h=0.05, dt=0.1, seed=4)
    r = symqp.fit(p, library="poly(2)", method="symbolic", stochastic=True, bootstrap=0, verbose=False)
    assert abs(r.metrics["eps"] / 0.1 - 1) < 0.02
    assert r.metrics["eps_std"] < 0.005
    assert coefficient_errors(r.U, x**2, (x,)).exact_support
    assert abs(float(sp.Poly(r.U, x).coeff_monomial(x**2)) - 1) < 0.07  # standard error ~0.02


def test_stochastic_fit_refuses_pairs_that_are_not_increments():
    exact = symqp.data.sample_pairs(symqp.systems.get_system("maier_stein"), n_traj=200, n_pairs=10, h=0.01,
                                    dt=0.1, seed=0)  # fmt: skip
    with pytest.raises(DataError, match="do not look like increments of an SDE"):
        symqp.fit(exact, library="poly(3)", method="symbolic", stochastic=True, verbose=False)
    still = symqp.data.Pairs(exact.x0, exact.x0, 0.01, exact.names, exact.traj)
    with pytest.raises(IdentificationError, match="do not move"):
        symqp.fit(still, library="poly(3)", method="symbolic", stochastic=True, verbose=False)


def test_bootstrap_settings_and_too_few_pairs_are_one_line_errors():
    with pytest.raises(ParameterError, match="at least 20 replicates"):
        symqp.fit("unused.npz", library="poly(2)", bootstrap=5)
    p = sample_sde_pairs(_ou(), eps=0.1, n_traj=5, n_pairs=8, h=0.05, dt=0.1, seed=0)
    with pytest.raises(DataError, match="too few pairs for the bootstrap") as exc:
        symqp.fit(p, library="poly(2)", method="symbolic", stochastic=True, bootstrap=64, verbose=False)
    assert "\n" not in str(exc.value)


def test_fit_command_takes_stochastic_and_bootstrap(tmp_path, capsys):
    data = tmp_path / "ou.npz"
    symqp.data.save_pairs(sample_sde_pairs(_ou(), eps=0.1, n_traj=500, n_pairs=20, h=0.05, dt=0.1, seed=0), data)
    out = tmp_path / "r.json"
    assert main(["fit", str(data), "--library", "poly(2)", "--method", "symbolic", "--stochastic",
                 "--bootstrap", "0", "--out", str(out)]) == 0  # fmt: skip
    r = symqp.result.load_result(out)
    assert abs(r.metrics["eps"] / 0.1 - 1) < 0.05 and r.uncertainty is None


@pytest.mark.slow
def test_maier_stein_drift_quasipotential_and_noise_from_sde_increments():
    system = symqp.systems.get_system("maier_stein")
    p = sample_sde_pairs(system, eps=0.05, n_traj=4000, n_pairs=50, h=0.05, dt=0.1, seed=0)
    r = symqp.fit(p, library="poly(4)", method="symbolic", stochastic=True, verbose=False)
    ce = coefficient_errors(r.U, system.U, system.variables)
    assert ce.exact_support and ce.max_abs < 0.05, ce.to_text()
    assert abs(r.metrics["eps"] / 0.05 - 1) < 0.02
    rows = {row["term"]: row for row in r.uncertainty["U"]}
    assert rows["x**4"]["lower"] <= 0.5 <= rows["x**4"]["upper"]
