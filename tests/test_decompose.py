"""Tests of the neural orthogonal decomposition (symqp.decompose.NeuralDecomposition)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy.linalg import expm
from scipy.spatial.distance import cdist, pdist

from symqp._errors import DataError, ParameterError, ResultFormatError, TrainingError
from symqp.decompose import NeuralDecomposition, representative_subset

pytest.importorskip("torch")

# 2D rotated-gradient system: V = (x² + 2y²)/2, f = −(I + A)∇V with A antisymmetric,
# so g = −A∇V is exactly orthogonal to ∇V. The flow is linear: x_h = expm(M h) x_0.
A = 0.5 * np.array([[0.0, 1.0], [-1.0, 0.0]])
HESS = np.diag([1.0, 2.0])
M = -(np.eye(2) + A) @ HESS


def V_exact(X):
    return 0.5 * (X[:, 0] ** 2 + 2 * X[:, 1] ** 2)


def rotated_pairs(n_traj=200, n_pairs=10, h=0.05, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.5, 1.5, size=(n_traj, 2))
    step = expm(M * 0.2).T
    stephh = expm(M * h).T
    x0, xh = [], []
    for _ in range(n_pairs):
        x0.append(x)
        xh.append(x @ stephh)
        x = x @ step
    traj = np.repeat(np.arange(n_traj)[None, :], n_pairs, 0).ravel()
    return np.concatenate(x0), np.concatenate(xh), h, traj


TINY = dict(hidden=(16, 16), steps=150, batch_size=400, lbfgs_steps=60, lbfgs_points=1000,
            subset_size=200, subset_batch=200, log_every=10, verbose=False)  # fmt: skip


@pytest.fixture(scope="module")
def data():
    return rotated_pairs()


@pytest.fixture(scope="module")
def fitted(data):
    return NeuralDecomposition(**TINY, seed=3).fit(data)


def test_learns_rotated_gradient_potential(data, fitted):
    x0 = data[0]
    v = fitted.V(x0)
    ve = V_exact(x0)
    err = (v - v.mean()) - (ve - ve.mean())
    assert np.sqrt(np.mean(err**2)) / np.std(ve) < 0.05
    gv = fitted.grad_V(x0)
    gve = x0 @ HESS
    assert np.sqrt(np.mean((gv - gve) ** 2)) / np.sqrt(np.mean(gve**2)) < 0.08
    # the learned field reproduces f and the parts are nearly orthogonal
    fe = x0 @ M.T
    assert np.sqrt(np.mean((fitted.f(x0) - fe) ** 2)) / np.sqrt(np.mean(fe**2)) < 0.05
    g = fitted.g(x0)
    cos = np.sum(g * gv, 1) / (np.linalg.norm(g, axis=1) * np.linalg.norm(gv, axis=1))
    assert np.median(np.abs(cos)) < 0.1


def test_fitted_attributes(data, fitted):
    h = fitted.history_
    assert set(h) == {"step", "loss", "val_loss", "orth", "lr"}
    assert len(h["step"]) == len(h["loss"]) == len(h["val_loss"]) > 3
    assert fitted.n_steps_ == h["step"][-1] == TINY["steps"] + TINY["lbfgs_steps"]
    assert h["loss"][-1] < 0.1 * h["loss"][0]
    # normalisation from the training trajectories: a 70 % share of the data
    assert fitted.mu_.shape == fitted.sigma_.shape == (2,)
    np.testing.assert_allclose(fitted.sigma_, data[0].std(0), rtol=0.2)
    assert fitted.eta_v_ > 0 and fitted.eta_g_ > 0 and fitted.wall_s_ > 0
    assert fitted.subset_.ndim == 2 and fitted.subset_.shape[1] == 2
    assert fitted.f(data[0][:5]).dtype == np.float64


def test_gradient_matches_finite_differences(fitted):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(20, 2))
    eps = 1e-6
    fd = np.stack(
        [(fitted.V(x + eps * e) - fitted.V(x - eps * e)) / (2 * eps) for e in np.eye(2)], 1
    )
    np.testing.assert_allclose(fitted.grad_V(x), fd, rtol=1e-5, atol=1e-7)


def test_to_torch_module_agrees(fitted):
    import torch

    x = np.random.default_rng(1).uniform(-1, 1, size=(7, 2))
    xt = torch.as_tensor(x, dtype=torch.float64).requires_grad_()
    v, gv, g = fitted.to_torch()(xt)
    np.testing.assert_allclose(v.detach().numpy(), fitted.V(x), rtol=1e-12)
    np.testing.assert_allclose(g.detach().numpy(), fitted.g(x), rtol=1e-12)
    # the hand-written input gradient agrees with autograd
    (auto,) = torch.autograd.grad(v.sum(), xt)
    np.testing.assert_allclose(gv.detach().numpy(), auto.numpy(), rtol=1e-10, atol=1e-12)


def test_deterministic_with_seed(data):
    kw = dict(TINY, steps=30, lbfgs_steps=10)
    a = NeuralDecomposition(**kw, seed=7).fit(data)
    b = NeuralDecomposition(**kw, seed=7).fit(data)
    c = NeuralDecomposition(**kw, seed=8).fit(data)
    x = data[0][:50]
    assert np.array_equal(a.V(x), b.V(x)) and np.array_equal(a.g(x), b.g(x))
    assert not np.allclose(a.V(x), c.V(x))


def test_resume_gives_identical_result(data, tmp_path):
    kw = dict(TINY, steps=40, lbfgs_steps=30, checkpoint_every=10, checkpoint_path=tmp_path / "ck.pt")
    full = NeuralDecomposition(**kw, seed=5).fit(data)

    class Interrupt(Exception):
        pass

    def stop_at(n):
        def cb(step, logs):
            if step == n:
                raise Interrupt
        return cb

    # interrupted during Adam (step 30), resumed, interrupted during L-BFGS (step 60), resumed
    with pytest.raises(Interrupt):
        NeuralDecomposition(**kw, seed=5, callback=stop_at(30)).fit(data)
    with pytest.raises(Interrupt):
        NeuralDecomposition(**kw, seed=5, resume=True, callback=stop_at(60)).fit(data)
    resumed = NeuralDecomposition(**kw, seed=5, resume=True).fit(data)
    x = data[0][:100]
    assert np.array_equal(full.V(x), resumed.V(x))
    assert np.array_equal(full.g(x), resumed.g(x))
    assert full.history_ == resumed.history_
    # a checkpoint does not resume with other settings or data
    with pytest.raises(TrainingError, match="different settings"):
        NeuralDecomposition(**dict(kw, lr=1e-3), seed=5, resume=True).fit(data)
    x0, xh, h, traj = data
    with pytest.raises(TrainingError, match="different data"):
        NeuralDecomposition(**kw, seed=5, resume=True).fit((x0, xh * 1.001, h, traj))


def test_resume_between_checks_gives_identical_result(data, tmp_path):
    # checkpoints at steps that are not checks: the running mean of the loss is part of the state
    kw = dict(TINY, steps=30, lbfgs_steps=0, checkpoint_every=7, checkpoint_path=tmp_path / "ck.pt")
    full = NeuralDecomposition(**kw, seed=2).fit(data)

    def stop_at_20(step, logs):
        if step == 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        NeuralDecomposition(**kw, seed=2, callback=stop_at_20).fit(data)
    resumed = NeuralDecomposition(**kw, seed=2, resume=True).fit(data)  # from step 14
    assert resumed.history_ == full.history_
    x = data[0][:50]
    assert np.array_equal(resumed.V(x), full.V(x))


@pytest.fixture(scope="module")
def checkpoint(data, tmp_path_factory):
    """A checkpoint written during the Adam phase (step 20 of 30) and the settings that wrote it."""
    path = tmp_path_factory.mktemp("ck") / "ck.pt"
    kw = dict(TINY, steps=30, lbfgs_steps=10, checkpoint_every=10, checkpoint_path=path, seed=1)

    def stop(step, logs):
        return step == 20

    NeuralDecomposition(**kw, callback=stop).fit(data)
    return path, kw


def _tamper_missing(ck):
    del ck["history"]


def _tamper_shape(ck):
    ck["v_params"][0] = ck["v_params"][0][:, :1]


def _tamper_step(ck):
    ck["step"] = 10**9


def _tamper_history(ck):
    ck["history"]["loss"].append(1.0)


def _tamper_adam(ck):
    ck["adam"]["state"][0]["exp_avg"] = ck["adam"]["state"][0]["exp_avg"][:1]


@pytest.mark.parametrize(
    "tamper, match",
    [
        (_tamper_missing, r"missing key\(s\) \['history'\]"),
        (_tamper_shape, "v_params has a tensor of shape"),
        (_tamper_step, "step must be an integer in"),
        (_tamper_history, "history entries"),
        (_tamper_adam, "adam state does not fit"),
    ],
)
def test_tampered_checkpoint_raises_one_line(data, checkpoint, tmp_path, tamper, match):
    import torch

    path, kw = checkpoint
    ck = torch.load(path, weights_only=True)
    tamper(ck)
    bad = tmp_path / "bad.pt"
    torch.save(ck, bad)
    with pytest.raises(ResultFormatError, match=match) as info:
        NeuralDecomposition(**dict(kw, checkpoint_path=tmp_path / "new.pt", resume=bad)).fit(data)
    assert "\n" not in str(info.value)


def test_checkpoint_resumes_after_early_stop(data, checkpoint):
    # the checkpoint of a user stop at step 20 resumes to the full run's model
    path, kw = checkpoint
    full = NeuralDecomposition(**dict(kw, checkpoint_every=None, checkpoint_path=None)).fit(data)
    resumed = NeuralDecomposition(**dict(kw, resume=path, checkpoint_every=None, checkpoint_path=None)).fit(data)
    assert resumed.n_steps_ == full.n_steps_ == 40
    x = data[0][:50]
    assert np.array_equal(resumed.g(x), full.g(x))


def test_unwritable_checkpoint_path_fails_before_training(data, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    calls = []
    nd = NeuralDecomposition(**TINY, checkpoint_every=10, checkpoint_path=blocker / "ck.pt",
                             callback=lambda step, logs: calls.append(step))  # fmt: skip
    with pytest.raises(ParameterError, match=r"file\.txt for NeuralDecomposition\.checkpoint_path"):
        nd.fit(data)
    assert calls == []
    with pytest.raises(ParameterError, match="checkpoint_path .* is a folder"):
        NeuralDecomposition(**TINY, checkpoint_every=10, checkpoint_path=tmp_path).fit(data)


def test_estimator_contract(data):
    from sklearn.base import clone

    nd = NeuralDecomposition(hidden=(8,), steps=7, lbfgs_steps=0, lam=0.5, verbose=False)
    twin = clone(nd)
    assert twin is not nd and twin.get_params() == nd.get_params()
    assert repr(nd) == "NeuralDecomposition(hidden=(8,), steps=7, lbfgs_steps=0, lam=0.5, verbose=False)"
    with pytest.raises(ValueError, match="bogus"):
        nd.set_params(bogus=1)
    with pytest.raises(ValueError, match="bogus"):
        NeuralDecomposition(bogus=1)
    assert nd.set_params(steps="many") is nd
    with pytest.raises(ValueError, match="NeuralDecomposition.steps"):
        nd.fit(data)
    assert not hasattr(nd, "module_")
    nd.set_params(steps=7)
    assert nd.fit(data) is nd and nd.n_steps_ == 7


def test_divergence_raises_training_error(data):
    nd = NeuralDecomposition(**dict(TINY, steps=50, lbfgs_steps=0, lr=1e30, lr_final=1e30, warmup=0))
    with pytest.raises(TrainingError, match="diverged"):
        nd.fit(data)


def test_early_stopping(data):
    nd = NeuralDecomposition(**dict(TINY, lr=1e-13, lr_final=1e-13, patience=2, lbfgs_steps=0)).fit(data)
    assert nd.stopped_early_
    assert nd.n_steps_ < TINY["steps"]


def test_save_load_roundtrip(fitted, tmp_path):
    p = tmp_path / "model.pt"
    fitted.save(p)
    back = NeuralDecomposition.load(p)
    x = np.random.default_rng(2).uniform(-1, 1, size=(30, 2))
    for name in ("V", "grad_V", "g", "f"):
        assert np.array_equal(getattr(back, name)(x), getattr(fitted, name)(x))
    assert back.history_ == fitted.history_ and back.eta_v_ == fitted.eta_v_
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ResultFormatError):
        NeuralDecomposition.load(tmp_path / "junk.pt")
    with pytest.raises(ResultFormatError, match="does not exist"):
        NeuralDecomposition.load(tmp_path / "missing.pt")


@pytest.mark.parametrize(
    "pairs, match",
    [
        ((np.zeros((10, 2)), np.zeros((10, 3)), 0.1), "shape"),
        ((np.zeros(10), np.zeros(10), 0.1), r"\(n, d\)"),
        ((np.full((10, 2), np.nan), np.zeros((10, 2)), 0.1), "NaN"),
        ((np.zeros((10, 2)), np.full((10, 2), np.inf), 0.1), "NaN"),
        ((np.zeros((10, 2)), np.zeros((10, 2)), 0.0), "positive"),
        ((np.zeros((10, 2)), np.zeros((10, 2)), -1.0), "positive"),
        ((np.zeros((10, 2)), np.zeros((10, 2)), "a"), "positive"),
        ((np.zeros((10, 2)), np.zeros((10, 2))), "tuple"),
        ("data.npz", "tuple"),
    ],
)
def test_bad_data_raises(pairs, match):
    with pytest.raises(DataError, match=match):
        NeuralDecomposition(verbose=False).fit(pairs)


def test_zero_displacement_raises():
    x = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(DataError, match="zero displacement"):
        NeuralDecomposition(**dict(TINY, steps=5, lbfgs_steps=0)).fit((x, x, 0.1))


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(hidden=()), "NeuralDecomposition.hidden"),
        (dict(hidden=(8, 0)), "NeuralDecomposition.hidden"),
        (dict(steps=-1), "NeuralDecomposition.steps"),
        (dict(steps=0, lbfgs_steps=0), "nothing to train"),
        (dict(lr=0.0), "NeuralDecomposition.lr "),
        (dict(lam=-1.0), "NeuralDecomposition.lam"),
        (dict(delta=float("nan")), "NeuralDecomposition.delta"),
        (dict(patience=0), "NeuralDecomposition.patience"),
        (dict(seed=-1), "NeuralDecomposition.seed"),
        (dict(dtype="float16"), "NeuralDecomposition.dtype"),
        (dict(adam_dtype="half"), "NeuralDecomposition.adam_dtype"),
        (dict(device="tpu"), "NeuralDecomposition.device"),
        (dict(val_frac=0.0), "NeuralDecomposition.val_frac"),
        (dict(val_frac=1.5), "NeuralDecomposition.val_frac"),
        (dict(callback="print"), "NeuralDecomposition.callback"),
        (dict(checkpoint_every=5), "checkpoint_path"),
        (dict(resume=True), "checkpoint_path"),
    ],
)
def test_bad_settings_raise(data, kw, match):
    with pytest.raises(ParameterError, match=match) as info:
        NeuralDecomposition(verbose=False, **kw).fit(data)
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


def test_cuda_unavailable_raises(data):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(TrainingError, match="CUDA is not available"):
        NeuralDecomposition(device="cuda", verbose=False).fit(data)


def test_validation_data_checks(data):
    x0, xh, h, _ = data
    with pytest.raises(DataError, match="d = 3"):
        NeuralDecomposition(**TINY).fit((x0, xh, h), X_val=(np.zeros((5, 3)), np.zeros((5, 3)), h))
    with pytest.raises(DataError, match="differs"):
        NeuralDecomposition(**TINY).fit((x0, xh, h), X_val=(x0[:5], xh[:5], 2 * h))
    with pytest.raises(DataError, match="X_val: xh has shape"):
        NeuralDecomposition(**TINY).fit((x0, xh, h), X_val=(x0[:5], xh[:4], h))
    nd = NeuralDecomposition(**dict(TINY, steps=20, lbfgs_steps=0)).fit(
        (x0[:1000], xh[:1000], h), X_val=(x0[1000:], xh[1000:], h)
    )
    assert np.isfinite(nd.history_["val_loss"]).all()
    assert nd.names_ == ("x1", "x2")  # tuples become symqp.data.Pairs (default names)


def test_validation_split_by_trajectory(data):
    # the held-out 30 % are whole trajectories: normalisation comes from the other 140
    from symqp.data import Pairs

    x0, xh, h, traj = data
    nd = NeuralDecomposition(**dict(TINY, steps=10, lbfgs_steps=0)).fit((x0, xh, h, traj))
    train, _ = Pairs(x0, xh, h, traj=traj).split(0.7, seed=0)
    np.testing.assert_array_equal(nd.mu_, train.x0.mean(0))
    assert train.n_traj == 140


def test_predict_errors(fitted):
    with pytest.raises(TrainingError, match="not fitted"):
        NeuralDecomposition().V(np.zeros((3, 2)))
    with pytest.raises(DataError, match=r"shape \(n, 2\)"):
        fitted.V(np.zeros((3, 3)))
    with pytest.raises(DataError, match="NaN"):
        fitted.g(np.array([[np.nan, 0.0]]))


def test_representative_subset_is_an_r_net():
    X = np.random.default_rng(0).normal(size=(3000, 3)) * [1.0, 10.0, 0.1]
    r = 0.4
    idx = representative_subset(X, r, seed=1)
    Xn = (X - X.mean(0)) / X.std(0)
    kept = Xn[idx]
    assert pdist(kept).min() > r  # packing: kept points are r apart
    assert cdist(Xn, kept).min(1).max() <= r + 1e-12  # covering: every point is near one
    assert np.array_equal(idx, representative_subset(X, r, seed=1))
    assert not np.array_equal(idx, representative_subset(X, r, seed=2))
    with pytest.raises(DataError, match="radius"):
        representative_subset(X, -1.0)
    with pytest.raises(DataError, match="NaN"):
        representative_subset(np.array([[np.nan, 1.0]]), 0.1)


def test_import_does_not_load_torch():
    code = (
        "import sys; from symqp.decompose import NeuralDecomposition, representative_subset; "
        "NeuralDecomposition(steps=10); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
