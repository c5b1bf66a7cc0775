"""Shared pieces of the neural learners: setting checks, a scalar MLP, feature maps, training loops.

torch is imported only inside functions (``symqp._optional.require``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from .._errors import DataError, ParameterError, TrainingError
from .._estimator import check_bool, check_choice, check_float, check_int, check_seed
from .._optional import require

__all__: list[str] = []

ACTIVATIONS = ("tanh", "softplus", "elu", "silu")


# --------------------------------------------------------------------------- settings
def check_hidden(owner: Any, hidden: Any) -> tuple[int, ...]:
    """Hidden layer widths: a non-empty tuple or list of positive integers.

    Examples
    --------
    >>> check_hidden("EPRLandscape", [8, 8])
    (8, 8)
    >>> check_hidden("EPRLandscape", ())
    Traceback (most recent call last):
    ...
    symqp._errors.ParameterError: EPRLandscape.hidden must be a non-empty tuple of positive layer widths, got ()
    """
    ok = isinstance(hidden, (tuple, list)) and len(hidden) > 0
    ok = ok and all(isinstance(w, (int, np.integer)) and not isinstance(w, (bool, np.bool_)) and w > 0 for w in hidden)
    if not ok:
        label = owner if isinstance(owner, str) else type(owner).__name__
        raise ParameterError(f"{label}.hidden must be a non-empty tuple of positive layer widths, got {hidden!r}")
    return tuple(int(w) for w in hidden)


@dataclass(frozen=True)
class TrainSettings:
    """The checked settings the potential learners share (network, schedule, runtime).

    Examples
    --------
    >>> from symqp.decompose import EPRLandscape
    >>> TrainSettings.from_estimator(EPRLandscape(hidden=[8], steps=5)).hidden
    (8,)
    """

    hidden: tuple[int, ...]
    activation: str
    steps: int
    lr: float
    batch_size: int | None
    lbfgs_steps: int
    seed: int
    verbose: bool
    threads: int | None
    device: str = "cpu"

    @classmethod
    def from_estimator(cls, est: Any) -> TrainSettings:
        """Validate the shared parameters of ``est`` (ParameterError naming a bad one)."""
        return cls(
            hidden=check_hidden(est, est.hidden),
            activation=check_choice(est, "activation", est.activation, ACTIVATIONS),
            steps=check_int(est, "steps", est.steps, minimum=1),
            lr=check_float(est, "lr", est.lr, low=0, low_open=True),
            batch_size=check_int(est, "batch_size", est.batch_size, minimum=1, allow_none=True),
            lbfgs_steps=check_int(est, "lbfgs_steps", est.lbfgs_steps, minimum=0),
            seed=check_seed(est, "seed", est.seed),
            verbose=check_bool(est, "verbose", est.verbose),
            threads=check_int(est, "threads", est.threads, minimum=1, allow_none=True),
            device=check_device(est, getattr(est, "device", "cpu")),
        )


def check_device(owner: Any, value: Any) -> str:
    """A torch device name, ``"cpu"`` or ``"cuda[:N]"``.

    Examples
    --------
    >>> check_device("EPRLandscape", "cuda:1")
    'cuda:1'
    >>> check_device("EPRLandscape", "gpu")
    Traceback (most recent call last):
    ...
    symqp._errors.ParameterError: EPRLandscape.device must be 'cpu' or 'cuda[:N]', got 'gpu'
    """
    dev = value if isinstance(value, str) else ""
    kind, _, index = dev.partition(":")
    if dev == "cpu" or (kind == "cuda" and (not index or index.isdigit())):
        return dev
    label = owner if isinstance(owner, str) else type(owner).__name__
    raise ParameterError(f"{label}.device must be 'cpu' or 'cuda[:N]', got {value!r}")


def torch_device(name: str):
    """The torch device ``name``; a TrainingError when CUDA is asked for but torch has none."""
    torch = require("torch")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError(f"device {name!r} requested but CUDA is not available to torch; use device='cpu'")
    return torch.device(name)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the body with ``threads`` torch intra-op threads (None: leave torch's setting)."""
    torch = require("torch")
    old = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def as_dataset(data: Any, cls: type, loader: Callable[[Any], Any]) -> Any:
    """``data`` itself when it is a ``cls``, else the dataset read from a path by ``loader``."""
    if isinstance(data, cls):
        return data
    if isinstance(data, (str, os.PathLike)):
        return loader(data)
    raise DataError(f"expected {cls.__name__} or a path to an .npz file, got {type(data).__name__}")


# --------------------------------------------------------------------------- networks
def make_mlp(n_in: int, hidden: Sequence[int], activation: str, seed: int):
    """A float64 MLP R^n_in -> R with the given hidden widths (torch; arguments checked by the caller)."""
    torch = require("torch")
    act = {"tanh": torch.nn.Tanh, "softplus": torch.nn.Softplus, "elu": torch.nn.ELU,
           "silu": torch.nn.SiLU}[activation]
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(int(seed))
    layers: list = []
    width = n_in
    for w in hidden:
        layers += [torch.nn.Linear(width, w, dtype=torch.float64), act()]
        width = w
    layers.append(torch.nn.Linear(width, 1, dtype=torch.float64))
    net = torch.nn.Sequential(*layers)
    torch.random.set_rng_state(gen_state)
    return net


def train(params, loss_fn: Callable[[], object], full_loss: Callable[[], object], *, steps: int, lr: float,
          lbfgs_steps: int, verbose: bool, label: str, threads: int | None) -> tuple[list[float], list[float]]:
    """Adam (``loss_fn`` per step), then L-BFGS on ``full_loss``; the two loss histories.

    The networks here are small (tens of units): intra-op threading only adds overhead.
    Measured on a shared 2-core machine: 400 steps took 0.8 s on one thread, 24 s on two.
    ``threads=None`` keeps torch's setting; the previous setting is restored afterwards.
    """
    params = list(params)
    with torch_threads(threads):
        history = _adam(params, loss_fn, steps=steps, lr=lr, verbose=verbose, label=label)
        polish = _lbfgs(params, full_loss, steps=lbfgs_steps, label=label) if lbfgs_steps > 0 else []
    return history, polish


def _adam(params, loss_fn, *, steps: int, lr: float, verbose: bool, label: str) -> list[float]:
    """Adam with a cosine-decayed learning rate; the loss of every step."""
    torch = require("torch")
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps), eta_min=lr * 1e-2)
    history: list[float] = []
    report = max(1, steps // 10)
    for it in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        if not torch.isfinite(loss):
            raise TrainingError(f"{label}: loss became {loss.item()} at step {it}; lower lr")
        loss.backward()
        opt.step()
        sched.step()
        history.append(float(loss.detach()))
        if verbose and (it % report == 0 or it == steps - 1):
            print(f"{label} step {it:6d}  loss {history[-1]:.4e}")
    return history


def _lbfgs(params, loss_fn: Callable[[], object], *, steps: int, label: str) -> list[float]:
    """Full-batch L-BFGS (strong Wolfe line search) after Adam; the loss per evaluation.

    Small float64 networks fitted to smooth targets stall under Adam at a loss well above what
    a quasi-Newton method reaches in a few hundred iterations (measured on the double well of
    the tests: relative error of ∇V 2.3e-2 after 400 Adam steps, 5e-3 after 100 more L-BFGS).
    """
    torch = require("torch")
    history: list[float] = []
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=int(steps), history_size=50,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-15)

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        if not torch.isfinite(loss):
            raise TrainingError(f"{label}: loss became {loss.item()} during L-BFGS")
        loss.backward()
        history.append(float(loss.detach()))
        return loss

    opt.step(closure)
    return history


# --------------------------------------------------------------------------- features
FEATURES = ("radius", "pair_distance")


def check_features(features: str | None, d: int) -> None:
    if features is None:
        return
    if features not in FEATURES:
        raise DataError(f"unknown features {features!r}; choose None or one of {FEATURES}")
    if features == "pair_distance" and (d < 2 or d % 2):
        raise DataError(f"features='pair_distance' needs an even number of coordinates, got d={d}")


def feature_values(q: np.ndarray, features: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Features z (n, m) and their Jacobian dz/dq (n, m, d) (NumPy, exact)."""
    n, d = q.shape
    if features is None:
        return q, np.broadcast_to(np.eye(d), (n, d, d))
    diff = q if features == "radius" else q[:, : d // 2] - q[:, d // 2 :]
    r = np.sqrt(np.sum(diff * diff, axis=1))
    if np.any(r == 0):
        raise DataError(f"feature {features!r} is zero at some points (its gradient is undefined)")
    u = diff / r[:, None]
    jac = u if features == "radius" else np.concatenate([u, -u], axis=1)
    return r[:, None], jac[:, None, :]


def feature_torch(q, features: str | None):
    torch = require("torch")
    if features is None:
        return q
    d = q.shape[1]
    diff = q if features == "radius" else q[:, : d // 2] - q[:, d // 2 :]
    return torch.sqrt(torch.sum(diff * diff, dim=1, keepdim=True))


def feature_symbols(features: str | None, q_names: Sequence[str]) -> tuple[tuple[sp.Symbol, ...], dict]:
    """Symbols the regression uses and the substitution back to the q coordinates."""
    qs = [sp.Symbol(s) for s in q_names]
    if features is None:
        return tuple(qs), {}
    r = sp.Symbol("r")
    d = len(qs)
    diff = qs if features == "radius" else [a - b for a, b in zip(qs[: d // 2], qs[d // 2 :])]
    return (r,), {r: sp.sqrt(sum(c**2 for c in diff))}


# --------------------------------------------------------------------------- sampling weights
def balance_weights(z: np.ndarray, *, max_cells: int = 64) -> np.ndarray:
    """Weights ∝ 1 / (number of points in the point's histogram cell), summing to 1.

    Trajectory data crowd where the motion is slow or where most trajectories stay (one well
    of a double well); weighting by the inverse cell count gives every visited cell the same
    total weight, so rarely visited regions are fitted too. The grid has about ``max_cells``
    cells in all (``round(max_cells ** (1/m))`` per feature, at least 2). Counts are floored
    at 1% of the mean count of the occupied cells so that a handful of isolated points does
    not dominate.

    Examples
    --------
    >>> w = balance_weights(np.r_[np.zeros(9), 1.0][:, None], max_cells=2)
    >>> w.round(3).tolist()
    [0.056, 0.056, 0.056, 0.056, 0.056, 0.056, 0.056, 0.056, 0.056, 0.5]
    """
    z = np.asarray(z, dtype=np.float64)
    _n, m = z.shape
    per = max(2, round(max_cells ** (1.0 / m)))
    lo, hi = z.min(axis=0), z.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    cell = np.clip(((z - lo) / span * per).astype(np.int64), 0, per - 1)
    flat = np.ravel_multi_index(cell.T, (per,) * m)
    _, inv, counts = np.unique(flat, return_inverse=True, return_counts=True)
    counts = np.maximum(counts.astype(np.float64), 0.01 * counts.mean())
    w = 1.0 / counts[inv.reshape(-1)]
    return w / w.sum()


def check_points(x, d: int) -> np.ndarray:
    """Evaluation points as a float64 (n, d) array (a 1-D array is n points when d = 1)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1 and d == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] != d:
        raise DataError(f"expected points of shape (n, {d}), got {x.shape}")
    return x
