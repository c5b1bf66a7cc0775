"""Shared pieces of the potential learners: a scalar MLP, feature maps, sparse regression.

torch is imported only inside functions (``symqp._optional.require``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import sympy as sp

from .._errors import BackendError, DataError, LibraryError, TrainingError
from .._optional import require

__all__: list[str] = []

_ACTIVATIONS = ("tanh", "softplus", "elu", "silu")


# --------------------------------------------------------------------------- networks
def make_mlp(n_in: int, hidden: Sequence[int], activation: str, seed: int):
    """A float64 MLP R^n_in -> R with the given hidden widths (torch)."""
    torch = require("torch")
    if activation not in _ACTIVATIONS:
        raise TrainingError(f"unknown activation {activation!r}; choose one of {_ACTIVATIONS}")
    hidden = tuple(int(w) for w in hidden)
    if not hidden or min(hidden) < 1:
        raise TrainingError(f"hidden must be a non-empty sequence of positive widths, got {hidden}")
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


def train_loop(params, loss_fn: Callable[[int], object], *, steps: int, lr: float,
               verbose: bool, label: str, n_threads: int | None = 1) -> list[float]:
    """Adam with a cosine-decayed learning rate; returns the loss history (every step).

    The networks here are small (tens of units): intra-op threading only adds overhead.
    Measured on a shared 2-core machine: 400 steps took 0.8 s on one thread, 24 s on two.
    ``n_threads=None`` keeps torch's setting; the previous setting is restored afterwards.
    """
    torch = require("torch")
    old = torch.get_num_threads()
    if n_threads is not None:
        torch.set_num_threads(int(n_threads))
    try:
        return _adam(params, loss_fn, steps=steps, lr=lr, verbose=verbose, label=label)
    finally:
        torch.set_num_threads(old)


def _adam(params, loss_fn, *, steps: int, lr: float, verbose: bool, label: str) -> list[float]:
    torch = require("torch")
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps), eta_min=lr * 1e-2)
    history: list[float] = []
    report = max(1, steps // 10)
    for it in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(it)
        if not torch.isfinite(loss):
            raise TrainingError(f"{label}: loss became {loss.item()} at step {it}; lower lr")
        loss.backward()
        opt.step()
        sched.step()
        history.append(float(loss.detach()))
        if verbose and (it % report == 0 or it == steps - 1):
            print(f"{label} step {it:6d}  loss {history[-1]:.4e}")
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


# --------------------------------------------------------------------------- libraries
def as_library(library, variables: Sequence[sp.Symbol]):
    """A :class:`symqp.library.Library` from a Library or a spec string in ``variables``."""
    from .. import library as _lib

    if isinstance(library, str):
        return _lib.parse_library(library, [str(v) for v in variables])
    if isinstance(library, _lib.Library):
        names = {str(v) for v in library.variables}
        want = {str(v) for v in variables}
        if names != want:
            raise LibraryError(f"library variables {sorted(names)} do not match the data's {sorted(want)}")
        return library
    raise LibraryError(f"library must be a spec string or a Library, got {type(library).__name__}")


def library_values(lib, Z: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        theta = np.asarray(lib.evaluate(Z), dtype=np.float64)
    if not np.all(np.isfinite(theta)):
        raise LibraryError("the library is not finite at some data points (a pole of a term?)")
    return theta


def gradient_design(lib, Z: np.ndarray, jac: np.ndarray) -> np.ndarray:
    """Rows ∂θ_j/∂q_k at each point, stacked point-major: shape (n·d, J).

    Chain rule through the features: ∂θ_j/∂q_k = Σ_l ∂θ_j/∂z_l · ∂z_l/∂q_k, with ∂θ_j/∂z_l
    from the library's exact derivative evaluation.
    """
    n, m, d = jac.shape
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        dtheta = np.stack([np.asarray(lib.evaluate_derivative(Z, k), dtype=np.float64)
                           for k in range(m)], axis=1)  # (n, m, J)
    if not np.all(np.isfinite(dtheta)):
        raise LibraryError("the library's derivatives are not finite at some data points")
    A = np.einsum("nmj,nmd->ndj", dtheta, jac)
    return A.reshape(n * d, -1)


# --------------------------------------------------------------------------- sparse regression
def sparse_fit(A: np.ndarray, b: np.ndarray, *, threshold: float | None, weights=None) -> tuple[np.ndarray, dict]:
    """STLSQ with Bhat's λ rule (``symqp.backends.tune_threshold``) or a given threshold.

    Columns of ``A`` that vanish identically (e.g. the gradient of the constant term) are
    fixed to zero. Returns the coefficients and a dict of diagnostics.
    """
    from .. import backends

    if weights is not None:
        A = A * weights[:, None]
        b = b * weights
    active = np.linalg.norm(A, axis=0) > 0
    coef = np.zeros(A.shape[1])
    if not np.any(active):
        raise LibraryError("every library term has zero gradient at the data")
    t0 = time.perf_counter()
    if threshold is None:
        out = backends.tune_threshold(A[:, active], b)
        c_act, lam = _unpack_tuned(out)
    else:
        lam = float(threshold)
        c_act = np.asarray(backends.stlsq(A[:, active], b, lam), dtype=np.float64).reshape(-1)
    coef[active] = c_act
    resid = A @ coef - b
    info = {
        "threshold": float(lam),
        "residual_rms": float(np.sqrt(np.mean(resid**2))),
        "n_terms": int(np.count_nonzero(coef)),
        "regression_s": time.perf_counter() - t0,
    }
    return coef, info


def _unpack_tuned(out) -> tuple[np.ndarray, float]:
    """Accept (coef, lam), (lam, coef) or an object with ``coef``/``threshold`` attributes."""
    if hasattr(out, "coef"):
        lam = getattr(out, "threshold", getattr(out, "lam", np.nan))
        return np.asarray(out.coef, dtype=np.float64).reshape(-1), float(lam)
    if isinstance(out, dict):
        return np.asarray(out["coef"], dtype=np.float64).reshape(-1), float(out.get("threshold", np.nan))
    a, b = out[0], out[1]
    if np.ndim(a) == 0:
        a, b = b, a
    return np.asarray(a, dtype=np.float64).reshape(-1), float(b)


def backend_name(backend) -> str:
    if isinstance(backend, str):
        return backend
    return getattr(backend, "name", type(backend).__name__.lower())


def check_backend(backend) -> None:
    if isinstance(backend, str):
        from .. import backends

        try:
            backends.get_backend(backend)
        except BackendError:
            raise
        except Exception as exc:  # noqa: BLE001 - surfaced as a one-line BackendError
            raise BackendError(f"backend {backend!r} cannot be used: {exc}") from None
