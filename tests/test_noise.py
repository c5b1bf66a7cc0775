"""Noisy snapshot pairs: the noise floor, bias-free regressors, selection, uncertainty, density."""

import json

import numpy as np
import pytest
import sympy as sp

import symqp
from symqp import IdentificationError, ResultFormatError
from symqp.identify._field import noisy_pairs
from symqp.identify._noise import eliminate, fit_noisy, split_residual
from symqp.identify._onestep import FieldMap
from symqp.library import poly
from symqp.result import coefficient_errors

x, y = sp.symbols("x y")


def _double_well_pairs(n_traj, sigma, seed=0):
    system = symqp.systems.from_expressions([x - x**3], [x], box=[[-1.6, 1.6]])
    return symqp.data.sample_pairs(system, n_traj=n_traj, n_pairs=50, h=0.01, dt=0.1, seed=seed, noise=sigma)


def test_split_tells_white_noise_from_misfit_and_skips_shared_snapshots():
    # one noisy path cut into consecutive pairs: neighbouring pairs share a snapshot and
    # their residuals are correlated (-sigma^2/h^2); they must not be taken as neighbours
    rng = np.random.default_rng(0)
    t = np.linspace(0.0, 200.0, 20001)
    clean = np.sin(t)[:, None]
    snaps = clean + 0.01 * rng.standard_normal(clean.shape)
    h = t[1] - t[0]
    x0, xh = snaps[:-1], snaps[1:]
    R = (xh - x0) / h - np.cos(t[:-1] + h / 2)[:, None]  # exact derivative at mid-time
    s = split_residual(R, 0.5 * (x0 + xh), X0=x0, XH=xh)
    assert abs(s.noise / (2 * 0.01**2 / h**2) - 1) < 0.05
    assert abs(s.misfit) < 3 * s.misfit_se
    # a smooth misfit on top is seen as misfit
    s2 = split_residual(R + 0.5, 0.5 * (x0 + xh), X0=x0, XH=xh)
    assert abs(s2.misfit - 0.25) < 3 * s2.misfit_se + 0.01


def test_centred_map_is_free_of_the_errors_in_variables_bias():
    pairs = _double_well_pairs(2000, 0.01)
    lib = poly([x], 3)
    truth = np.array([0.0, 1.0, 0.0, -1.0])
    # the plain regression of (x_h - x_0)/h on Theta(x_0), on the true support
    T = lib.evaluate(np.array(pairs.x0))[:, [1, 3]]
    plain = np.linalg.lstsq(T, ((pairs.xh - pairs.x0) / pairs.h)[:, 0], rcond=None)[0]
    fm = FieldMap(lib, np.arange(4), centre_passes=1)
    out = fit_noisy(fm, np.array(pairs.x0), np.array(pairs.xh), pairs.h, np.ones((4, 1), bool), "centred")
    err = np.abs(out["C"][:, 0] - truth).max()
    assert np.flatnonzero(out["C"][:, 0]).tolist() == [1, 3]  # the exact support from the t-statistics
    assert err < 0.05
    assert np.abs(plain - truth[[1, 3]]).max() > 3 * err


def test_elimination_keeps_collinear_terms_that_matter_and_drops_noise():
    rng = np.random.default_rng(1)
    u = rng.uniform(-1, 1, 20000)
    T = np.column_stack([u, u**3, u**2, np.ones_like(u)])  # u and u^3 strongly collinear
    yv = 1.0 * u - 1.0 * u**3 + 0.3 * rng.standard_normal(u.size)
    C, t, s2 = eliminate(T.T @ T, T.T @ yv[:, None], np.array([yv @ yv]), u.size, np.ones((4, 1), bool), 4.5)
    assert np.flatnonzero(C[:, 0]).tolist() == [0, 1]
    assert abs(s2[0] - 0.09) < 0.005


@pytest.fixture(scope="module")
def noisy_linear():
    system = symqp.systems.get_system("linear_nongradient")
    pairs = symqp.data.sample_pairs(system, n_traj=1000, n_pairs=50, h=0.01, dt=0.1, seed=0, noise=2e-3)
    return system, pairs, symqp.fit(pairs, library="poly(2)", method="symbolic", verbose=False)


def test_noisy_pairs_give_the_exact_quasipotential_and_the_noise_level(noisy_linear):
    system, _, r = noisy_linear
    ce = coefficient_errors(r.U, system.U, system.variables)
    assert ce.exact_support and ce.max_abs < 0.03, ce.to_text()
    m = r.metrics
    assert m["noise_share"] > 0.9 and m["quality"] == "ok"
    np.testing.assert_allclose(m["noise_sigma"], [2e-3, 2e-3], rtol=0.05)
    assert abs(m["val_misfit_rel"]) < 3 * m["val_misfit_rel_se"] + 0.01


def test_bootstrap_intervals_and_inclusion_probabilities(noisy_linear, tmp_path):
    system, _, r = noisy_linear
    rows = {row["term"]: row for row in r.uncertainty["U"]}
    truth = {"x**2": 2.0, "y**2": 1.0}
    for term, value in truth.items():
        assert rows[term]["inclusion"] == 1.0
        assert rows[term]["lower"] < rows[term]["estimate"] < rows[term]["upper"]
        assert rows[term]["upper"] - rows[term]["lower"] < 0.2
    assert r.uncertainty["n_replicates"] >= 20 and r.uncertainty["level"] == 0.95
    text = str(r.coefficient_table())
    assert "x**2" in text and "inclusion" in text
    assert "output" in r.uncertainty["f"][0]
    # the record survives a save/load round trip, checked on load
    path = r.save(tmp_path / "r.json")
    back = symqp.result.load_result(path)
    assert back.uncertainty["U"] == r.uncertainty["U"]


def test_malformed_uncertainty_is_refused_on_load(noisy_linear, tmp_path):
    _, _, r = noisy_linear
    data = r.to_dict()
    data["uncertainty"]["U"][0]["inclusion"] = 1.5
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ResultFormatError, match=r"uncertainty\.U\[0\]\.inclusion must lie in \[0, 1\]"):
        symqp.result.load_result(path)
    data["uncertainty"] = ["not", "an", "object"]
    path.write_text(json.dumps(data))
    with pytest.raises(ResultFormatError, match="result.uncertainty must be an object or null"):
        symqp.result.load_result(path)


def test_exact_pairs_keep_the_exact_route_and_have_no_table():
    system = symqp.systems.get_system("linear_nongradient")
    pairs = symqp.data.sample_pairs(system, n_traj=200, n_pairs=10, h=0.01, dt=0.1, seed=0)
    r = symqp.fit(pairs, library="poly(2)", method="symbolic", verbose=False)
    assert r.metrics["noise_share"] < 0.5 or r.metrics.get("noise_sigma", [0])[0] < 1e-7
    assert coefficient_errors(r.U, system.U, system.variables).max_abs < 1e-8
    assert r.uncertainty is None
    with pytest.raises(symqp.AnalysisError, match="no coefficient uncertainty"):
        r.coefficient_table()


def test_noise_does_not_hide_a_field_outside_the_library():
    pend = symqp.systems.from_strings(["y", "-sin(x) - y"], "x y", box=[[-2, 2], [-2, 2]])
    pairs = symqp.data.sample_pairs(pend, n_traj=1000, n_pairs=20, h=0.05, dt=0.2, seed=0, noise=1e-2)
    with pytest.raises(IdentificationError, match="noise floor removed") as exc:
        symqp.fit(pairs, library="poly(1)", method="symbolic", verbose=False)
    assert "\n" not in str(exc.value)


def test_density_check_on_long_paths_with_the_estimated_noise_level():
    system = symqp.systems.get_system("linear_nongradient")
    paths = symqp.data.sample_sde_pairs(system, eps=0.1, n_traj=40, n_pairs=5000, h=0.02, dt=0.02, t_burn=3.0,
                                        seed=5)  # fmt: skip
    r = symqp.fit(paths, library="poly(2)", method="symbolic", stochastic=True, bootstrap=0, verbose=False)
    chk = symqp.analysis.density_check(r, paths, bins=20)
    assert chk["source"] == "data" and chk["eps"] == r.metrics["eps"]
    assert chk["tv"] < 3 * chk["tv_split"] + 0.02 and chk["kl"] < 0.05
    assert chk["figure"].axes[0].get_ylabel() == "marginal density"
    # a density from a wrong noise level is told apart
    assert symqp.analysis.density_check(r, paths, eps=0.3, bins=20)["tv"] > 3 * chk["tv"]


def test_neural_route_refinement_uses_the_centred_map_on_noisy_pairs():
    from symqp.backends import Candidate, Fit
    from symqp.identify._refine import refine_fit

    system = symqp.systems.get_system("maier_stein")
    pairs = symqp.data.sample_pairs(system, n_traj=500, n_pairs=50, h=0.01, dt=0.1, seed=0, noise=1e-2)
    lib = poly(system.variables, 3)
    g = tuple(sp.expand(1.1 * e) for e in system.field)  # a start on the true support
    zero = sp.Integer(0)
    fit0 = Fit(V=zero, grad_V=(zero, zero), g=g, f=g, coef=None, front=[Candidate(5, 0.0, 0.0, zero, g, {})],
               selection="given")  # fmt: skip
    errs = {}
    for centred in (False, True):
        new, _ = refine_fit(fit0, lib, X0=np.array(pairs.x0), XH=np.array(pairs.xh), h=0.01, lam=0.0,
                            centred=centred, max_points=20000)  # fmt: skip
        errs[centred] = max(coefficient_errors(a, b, system.variables).max_abs for a, b in zip(new.g, system.field))
    # the RK4 step from x_0 is biased by the noise of x_0 (-sigma^2/h per unit derivative)
    assert errs[True] < 0.35 and errs[False] > 2.5 * errs[True]
    assert noisy_pairs(lib, np.array(pairs.x0), np.array(pairs.xh), 0.01)
