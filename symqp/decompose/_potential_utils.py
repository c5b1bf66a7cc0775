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


# The regressions here evaluate each library once or twice: the vectorised NumPy evaluation
# is used instead of the generated Numba kernels, whose first compilation dominates (measured:
# 49 s to compile the 13 kernels of a 115-term library in 12 variables, 1.4 s in NumPy).
_EVAL = "numpy"


def library_values(lib, Z: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        theta = np.asarray(lib.evaluate(Z, backend=_EVAL), dtype=np.float64)
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
        dtheta = np.stack([np.asarray(lib.evaluate_derivative(Z, k, backend=_EVAL), dtype=np.float64)
                           for k in range(m)], axis=1)  # (n, m, J)
    if not np.all(np.isfinite(dtheta)):
        raise LibraryError("the library's derivatives are not finite at some data points")
    A = np.einsum("nmj,nmd->ndj", dtheta, jac)
    return A.reshape(n * d, -1)


# --------------------------------------------------------------------------- sparse regression
def sparse_fit(A: np.ndarray, b: np.ndarray, *, threshold: float | None, weights=None,
               start: float = 1.0, factor: float = 0.9, tol: float = 1e-10,
               rel_tol: float = 0.02, rel_floor: float = 1e-3,
               min_threshold: float = 1e-10) -> tuple[np.ndarray, dict]:
    """STLSQ (``symqp.backends.stlsq``) with a given threshold or Bhat's λ rule.

    Bhat's rule: start at λ = ``start`` and lower λ (times ``factor``) until the RMS residual
    drops below ``tol``. On data with an error floor (a trained network, finite steps) no λ
    reaches 1e-10, so the largest (sparsest) λ is taken whose residual e satisfies
    ``e ≤ (1 + rel_tol) e_min`` or ``e² ≤ e_min² + (rel_floor · std(b))²``, with e_min the
    smallest residual along the path: terms that improve the fit by less than ``rel_tol``
    or explain less than ``rel_floor²`` of the target's variance are left out. (The O(h²)
    bias of clean midpoint data is fitted ~30% better by spurious r⁻² and r⁻³ terms with
    coefficients ~1e-6 on the Coulomb problem; they explain ~1e-8 of the variance.)
    Columns of ``A`` that vanish identically (the gradient of the constant term) are fixed
    to zero.

    The design is first compressed by a QR factorisation, A = QR: for any support the
    least-squares coefficients of (R, Qᵀb) equal those of (A, b) and the residuals differ by
    the constant ‖b‖² − ‖Qᵀb‖², so each point of the λ path costs O(q³) instead of O(n q²)
    (measured: the 260-point path on 50000 × 7 went from 9 s to 0.05 s).

    The target is computed from the full least-squares residual (a lower bound for every
    support), so the walk down in λ stops at the first λ that reaches it, as in Bhat's rule.

    Returns the coefficients and a dict of diagnostics.
    """
    from .. import backends

    A = np.asarray(A, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if weights is not None:
        A = A * weights[:, None]
        b = b * weights
    if not (np.all(np.isfinite(A)) and np.all(np.isfinite(b))):
        raise LibraryError("the regression design or target has NaN/Inf values")
    active = np.linalg.norm(A, axis=0) > 0
    coef = np.zeros(A.shape[1])
    if not np.any(active):
        raise LibraryError("every library term has zero gradient at the data")
    t0 = time.perf_counter()
    n = A.shape[0]
    Aa = A[:, active]
    if n > 2 * Aa.shape[1]:
        scale = np.linalg.norm(Aa, axis=0)
        Qm, Rm = np.linalg.qr(Aa / scale)
        Ar, br = Rm * scale, Qm.T @ b
        floor = max(float(b @ b) - float(br @ br), 0.0)
    else:
        Ar, br, floor = Aa, b, 0.0

    def rms(c):
        r = br - Ar @ c
        return float(np.sqrt((float(r @ r) + floor) / n))

    if threshold is None:
        # e_min: the residual of the full least-squares fit, a lower bound for every support,
        # so the stopping target is known up front and the walk ends at the first λ reaching it.
        sc = np.linalg.norm(Ar, axis=0)
        sc[sc == 0] = 1.0
        c_ls = np.linalg.lstsq(Ar / sc, br, rcond=None)[0] / sc
        e_min = rms(c_ls)
        target = max(tol, (1.0 + rel_tol) * e_min,
                     float(np.sqrt(e_min**2 + (rel_floor * np.std(b)) ** 2)))
        lam = float(start)
        best = None
        while lam >= min_threshold:
            c = np.asarray(backends.stlsq(Ar, br, lam), dtype=np.float64).reshape(-1)
            e = rms(c)
            if best is None or e < best[2]:
                best = (lam, c, e)
            if e <= target:
                best = (lam, c, e)
                break
            lam *= factor
        lam, c_act, _ = best
        selection = "bhat"
    else:
        lam = float(threshold)
        c_act = np.asarray(backends.stlsq(Ar, br, lam), dtype=np.float64).reshape(-1)
        selection = "fixed"
    coef[active] = c_act
    info = {
        "threshold": float(lam),
        "selection": selection,
        "residual_rms": rms(c_act),
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


def lbfgs_polish(params, loss_fn: Callable[[], object], *, steps: int, label: str,
                 n_threads: int | None = 1) -> list[float]:
    """Full-batch L-BFGS (strong Wolfe line search) after Adam; returns the loss per evaluation.

    Small float64 networks fitted to smooth targets stall under Adam at a loss well above what
    a quasi-Newton method reaches in a few hundred iterations (measured on the double well of
    the tests: relative error of ∇V 2.3e-2 after 400 Adam steps, 5e-3 after 100 more L-BFGS).
    """
    torch = require("torch")
    params = list(params)
    old = torch.get_num_threads()
    if n_threads is not None:
        torch.set_num_threads(int(n_threads))
    history: list[float] = []
    try:
        opt = torch.optim.LBFGS(params, lr=1.0, max_iter=int(steps), history_size=50,
                                line_search_fn="strong_wolfe", tolerance_grad=1e-12,
                                tolerance_change=1e-15)

        def closure():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn()
            if not torch.isfinite(loss):
                raise TrainingError(f"{label}: loss became {loss.item()} during L-BFGS")
            loss.backward()
            history.append(float(loss.detach()))
            return loss

        opt.step(closure)
    finally:
        torch.set_num_threads(old)
    return history


def check_points(x, d: int) -> np.ndarray:
    """Evaluation points as a float64 (n, d) array (a 1-D array is n points when d = 1)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1 and d == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] != d:
        raise DataError(f"expected points of shape (n, {d}), got {x.shape}")
    return x
