"""Potential landscapes from steady-state samples (EPR-Net's variational force projection).

For dX = f dt + √(2D) dW with stationary density p ∝ exp(−U/D), −∇U is the orthogonal
projection of f onto gradients in L²(π): U minimises the EPR loss E_π|f + ∇U|². The
enhanced variant adds the stationary Fokker–Planck residual

    r = −f·∇U + D(ΔU + ∇·f) − |∇U|²

on enhanced samples (perturbed data points or uniform in a box), which fixes U where π has
little mass. Two routes to an exact U: a network U_θ then a sparse regression of its values
(``route="neural"``), or the EPR loss minimised directly over the library span, a linear least
squares problem on the gradient library (``route="direct"``).

In a :class:`~symqp.result.Result` the landscape is ``V`` (f = −∇V + g), and ``U = 2V`` is the
Freidlin–Wentzell quasipotential for noise ε = 2D (p ∝ exp(−U/ε)).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from .._errors import DataError, ParameterError, TrainingError
from .._estimator import Estimator, check_bool, check_float, check_int
from .._optional import require
from ..data._stationary import StationaryData, load_stationary
from . import _potential_utils as pu

__all__ = ["EPRLandscape", "epr_loss", "fp_residual", "landscape_rrmse"]


def _as_data(data) -> StationaryData:
    return pu.as_dataset(data, StationaryData, load_stationary)


def _input_grad(U, x):
    torch = require("torch")
    x = x.detach().requires_grad_(True)
    u = U(x)
    (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    return x, u, g


def epr_loss(U, x, f):
    """EPR loss mean_i |f_i + ∇U(x_i)|² (torch, differentiable in U's parameters)."""
    _, _, g = _input_grad(U, x)
    return ((f + g) ** 2).sum(dim=1).mean()


def fp_residual(U, x, f, div_f, D: float):
    """Stationary Fokker–Planck residual r = −f·∇U + D(ΔU + ∇·f) − |∇U|² at x (n,) (torch)."""
    torch = require("torch")
    xr, _, g = _input_grad(U, x)
    lap = torch.zeros(x.shape[0], dtype=x.dtype)
    for k in range(x.shape[1]):  # ΔU = Σ_k ∂²U/∂x_k², one extra backward per coordinate
        (h,) = torch.autograd.grad(g[:, k].sum(), xr, create_graph=True)
        lap = lap + h[:, k]
    return -(f * g).sum(dim=1) + D * (lap + div_f) - (g * g).sum(dim=1)


def landscape_rrmse(u_hat: np.ndarray, u_true: np.ndarray, D: float, level: float = 20.0) -> float:
    """Relative RMSE of a landscape on {U − min U < level·D} (EPR-Net's measure).

    Both landscapes are defined up to a constant: ``u_true`` is shifted to minimum 0 and
    ``u_hat`` by the constant that best matches it on the set (their mean difference).

    Examples
    --------
    >>> u = np.linspace(0, 5, 11)
    >>> landscape_rrmse(u + 3.0, u, 1.0)
    0.0
    """
    u_true = np.asarray(u_true, float) - np.min(u_true)
    u_hat = np.asarray(u_hat, float)
    m = u_true < level * D
    if not np.any(m):
        raise DataError("no evaluation point lies in {U < level·D}")
    diff = u_hat[m] - u_true[m]
    diff = diff - diff.mean()
    return float(np.sqrt(np.sum(diff**2) / np.sum(u_true[m] ** 2)))


def _fd_divergence(field: Callable, x: np.ndarray) -> np.ndarray:
    """Central finite-difference divergence of a NumPy field (used only when no exact one is given)."""
    n, d = x.shape
    div = np.zeros(n)
    for k in range(d):
        h = 1e-5 * np.maximum(1.0, np.abs(x[:, k]))
        xp, xm = x.copy(), x.copy()
        xp[:, k] += h
        xm[:, k] -= h
        div += (field(xp)[:, k] - field(xm)[:, k]) / (2 * h)
    return div


class EPRLandscape(Estimator):
    """Neural landscape U_θ(x) with p ∝ exp(−U/D), from stationary samples and f there.

    All arguments are keyword-only and stored unchanged; :meth:`fit` validates them and
    raises :class:`~symqp._errors.ParameterError` naming a bad one.

    Parameters
    ----------
    hidden, activation : network shape (float64 MLP).
    enhanced : bool
        Add the Fokker–Planck residual on enhanced samples (needs ``field``).
    enhanced_weight : float
        Weight λ of the residual term λ·mean (r √m / (|f|² + m))², m = mean |f|² on the data
        (a relative residual, so points with a large drift do not dominate).
    enhanced_box : array_like (d, 2), optional
        Draw enhanced samples uniformly in this box; by default data points perturbed by
        Gaussian noise of ``enhanced_scale`` times each coordinate's standard deviation.
    enhanced_scale : float
    n_enhanced : int, optional
        Number of enhanced samples (default: as many as data samples, at most 20000).
    field : callable, optional
        f(x (n, d)) -> (n, d) (NumPy) at enhanced points; ``divergence`` its ∇·f (n,)
        (central finite differences of ``field`` when omitted).
    steps, lr, batch_size, seed, verbose : training settings (Adam, cosine-decayed lr).
    lbfgs_steps : int
        L-BFGS iterations after Adam on up to 20000 samples, full batch (0 = none).
    threads : int or None
        torch intra-op threads during fit (None: leave torch's setting).
    device : {"cpu", "cuda"} or str
        torch device of the network and of the training data (``"cuda:1"``); evaluation
        takes and returns NumPy arrays on the host either way.

    Attributes
    ----------
    net_ : torch.nn.Sequential
        The trained network (of the scaled coordinates).
    loss_history_, lbfgs_history_ : list of float
        Loss per Adam step and per L-BFGS evaluation.
    final_loss_, train_time_ : float

    Examples
    --------
    >>> import numpy as np
    >>> from symqp.data._stationary import StationaryData
    >>> x = np.random.default_rng(0).normal(size=(2000, 1)) * np.sqrt(0.5)   # U = x²/2, D = 0.5
    >>> model = EPRLandscape(steps=300, hidden=(8,)).fit(StationaryData(x, -x, 0.5))
    >>> bool(abs(model.grad_V(np.array([[1.0]]))[0, 0] - 1.0) < 0.1)
    True
    """

    def __init__(self, *, hidden: Sequence[int] = (32, 32), activation: str = "tanh",
                 enhanced: bool = False, enhanced_weight: float = 1.0, enhanced_box=None,
                 enhanced_scale: float = 0.5, n_enhanced: int | None = None,
                 field: Callable | None = None, divergence: Callable | None = None,
                 steps: int = 2000, lr: float = 1e-2, batch_size: int | None = 2048,
                 lbfgs_steps: int = 0, seed: int = 0, verbose: bool = False,
                 threads: int | None = 1, device: str = "cpu") -> None:
        self.hidden = hidden
        self.activation = activation
        self.enhanced = enhanced
        self.enhanced_weight = enhanced_weight
        self.enhanced_box = enhanced_box
        self.enhanced_scale = enhanced_scale
        self.n_enhanced = n_enhanced
        self.field = field
        self.divergence = divergence
        self.steps = steps
        self.lr = lr
        self.batch_size = batch_size
        self.lbfgs_steps = lbfgs_steps
        self.seed = seed
        self.verbose = verbose
        self.threads = threads
        self.device = device

    def _check_params(self) -> pu.TrainSettings:
        ts = pu.TrainSettings.from_estimator(self)
        check_bool(self, "enhanced", self.enhanced)
        check_float(self, "enhanced_weight", self.enhanced_weight, low=0)
        check_float(self, "enhanced_scale", self.enhanced_scale, low=0)
        check_int(self, "n_enhanced", self.n_enhanced, minimum=1, allow_none=True)
        for name in ("field", "divergence"):
            if getattr(self, name) is not None and not callable(getattr(self, name)):
                raise ParameterError(f"EPRLandscape.{name} must be callable or None, got {getattr(self, name)!r}")
        return ts

    def fit(self, data) -> EPRLandscape:
        """Train on ``data`` (StationaryData or a path to an npz); returns ``self``."""
        torch = require("torch")
        ts = self._check_params()
        data = _as_data(data)
        x, f, D = data.x, data.f, data.D
        self.n_features_in_ = data.d
        self.names_ = data.names
        self.D_ = D
        self.x_mean_ = x.mean(axis=0)
        self.x_scale_ = np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
        self.u_scale_ = float(np.sqrt(np.mean(np.sum(f**2, axis=1))) * np.mean(self.x_scale_)) or 1.0
        dev = pu.torch_device(ts.device)
        self.net_ = pu.make_mlp(data.d, ts.hidden, ts.activation, ts.seed).to(dev)
        rng = np.random.default_rng(ts.seed)
        xe = fe = de = None
        if self.enhanced:
            xe, fe, de = self._enhanced_points(data, rng)
            self.x_enhanced_ = xe
        T = lambda a: None if a is None else torch.as_tensor(a, dtype=torch.float64, device=dev)
        xt, ft, xet, fet, det = T(x), T(f), T(xe), T(fe), T(de)
        # r is of order |f|² (quadratic in the field): r·√m/(|f|² + m), m = mean |f|² on the
        # data, is a relative residual in the units of √(EPR loss), so the far enhanced points
        # (large |f|) do not swamp the loss. Measured on the 2-D toy (5000 samples, 1000 Adam
        # + 100 L-BFGS): landscape rRMSE of the network 0.128 with it, 0.138 without the
        # enhanced term; with the earlier 1/√(|f|² + m) scaling the enhanced term made it worse.
        m2 = float(np.mean(np.sum(f**2, 1)))
        wet = None if fe is None else T(np.sqrt(m2) / (np.sum(fe**2, 1) + m2))
        n = x.shape[0]
        bs = n if ts.batch_size is None else min(ts.batch_size, n)
        gen = torch.Generator().manual_seed(ts.seed)
        lam = float(self.enhanced_weight)

        def loss_on(idx, jdx):
            loss = epr_loss(self._U_torch, xt[idx], ft[idx])
            if jdx is not None:
                r = fp_residual(self._U_torch, xet[jdx], fet[jdx], det[jdx], D)
                loss = loss + lam * ((r * wet[jdx]) ** 2).mean()
            return loss

        def loss_fn():
            idx = torch.randint(0, n, (bs,), generator=gen).to(dev) if bs < n else slice(None)
            jdx = None
            if xet is not None:
                ne = xet.shape[0]
                jdx = torch.randint(0, ne, (min(bs, ne),), generator=gen).to(dev)
            return loss_on(idx, jdx)

        # L-BFGS: full batch on (at most) 20000 samples and 20000 enhanced samples
        sub = torch.as_tensor(np.sort(rng.permutation(n)[:20000]), device=dev)
        esub = None if xet is None else torch.as_tensor(np.sort(rng.permutation(xet.shape[0])[:20000]), device=dev)
        t0 = time.perf_counter()
        self.loss_history_, self.lbfgs_history_ = pu.train(
            self.net_.parameters(), loss_fn, lambda: loss_on(sub, esub), steps=ts.steps, lr=ts.lr,
            lbfgs_steps=ts.lbfgs_steps, verbose=ts.verbose, label="epr", threads=ts.threads,
        )  # fmt: skip
        self.train_time_ = time.perf_counter() - t0
        self.final_loss_ = float(epr_loss(self._U_torch, xt[:20000], ft[:20000]).detach())
        return self

    def _enhanced_points(self, data: StationaryData, rng):
        if self.field is None:
            raise DataError("enhanced=True needs the drift at new points: pass field=f(x) "
                            "(fit_epr builds one from the library when none is given)")
        n_e = int(self.n_enhanced or min(data.n, 20000))
        if self.enhanced_box is not None:
            try:
                b = np.asarray(self.enhanced_box, dtype=np.float64)
            except (TypeError, ValueError):
                b = np.zeros((0,))
            if b.shape != (data.d, 2) or not np.all(np.isfinite(b)) or np.any(b[:, 0] >= b[:, 1]):
                raise ParameterError(f"EPRLandscape.enhanced_box must be a finite ({data.d}, 2) array with low < high")
            xe = rng.uniform(b[:, 0], b[:, 1], size=(n_e, data.d))
        else:
            base = data.x[rng.integers(0, data.n, size=n_e)]
            xe = base + float(self.enhanced_scale) * data.x.std(axis=0) * rng.standard_normal(base.shape)
        fe = np.asarray(self.field(xe), dtype=np.float64)
        if fe.shape != xe.shape:
            raise DataError(f"field returned shape {fe.shape} for points of shape {xe.shape}")
        de = (np.asarray(self.divergence(xe), dtype=np.float64).reshape(-1)
              if self.divergence is not None else _fd_divergence(self.field, xe))
        if not (np.all(np.isfinite(fe)) and np.all(np.isfinite(de))):
            raise DataError("the field or its divergence is not finite at the enhanced samples")
        return xe, fe, de

    def _U_torch(self, x):
        torch = require("torch")
        xs = (x - torch.as_tensor(self.x_mean_, device=x.device)) / torch.as_tensor(self.x_scale_, device=x.device)
        return self.u_scale_ * self.net_(xs)[:, 0]

    def _points(self, x) -> np.ndarray:
        if not hasattr(self, "net_"):
            raise TrainingError("this EPRLandscape is not fitted yet; call fit(data) first")
        return pu.check_points(x, self.n_features_in_)

    def _tensor(self, a: np.ndarray):
        """Host array -> float64 tensor on the network's device."""
        torch = require("torch")
        return torch.as_tensor(a, dtype=torch.float64, device=next(self.net_.parameters()).device)

    def V(self, x) -> np.ndarray:
        """The landscape U_θ at x (n, d) -> (n,) (V in the f = −∇V + g notation)."""
        torch = require("torch")
        x = self._points(x)
        with torch.no_grad():
            return self._U_torch(self._tensor(x)).cpu().numpy().copy()

    U = V

    def grad_V(self, x) -> np.ndarray:
        """∇U_θ at x (n, d)."""
        torch = require("torch")
        xt = self._tensor(self._points(x)).requires_grad_(True)
        (g,) = torch.autograd.grad(self._U_torch(xt).sum(), xt)
        return g.cpu().numpy().copy()

    def f(self, x) -> np.ndarray:
        """The drift at x; needs ``field``."""
        x = self._points(x)
        if self.field is None:
            raise DataError("f(x) needs the drift: construct EPRLandscape with field=...")
        return np.asarray(self.field(x), dtype=np.float64)

    def g(self, x) -> np.ndarray:
        """The remainder g = f + ∇U_θ; needs ``field``."""
        return self.f(x) + self.grad_V(x)
