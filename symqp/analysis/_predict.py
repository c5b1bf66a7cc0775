"""Long-term prediction error of identified dynamics (paper eq. 18)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import AnalysisError
from .._estimator import check_seed
from .._numeric import rk4_step
from ._common import Model, as_model, check_box, numpy_field

__all__ = ["PredictionError", "prediction_error", "rk4_trajectories"]


@dataclass(frozen=True)
class PredictionError:
    """Per-trajectory errors ``E_k`` and their mean and standard deviation."""

    errors: np.ndarray
    mean: float
    std: float
    t: np.ndarray

    def __str__(self) -> str:
        return f"{self.mean:.3g} ± {self.std:.3g} over {self.errors.size} trajectories"


#: Most RK4 steps, and most memory, of one call of :func:`rk4_trajectories`.
MAX_RK4_STEPS = 1_000_000
MAX_TRAJECTORY_BYTES = 2 * 2**30


def rk4_trajectories(F, x0: np.ndarray, *, t_final: float, dt: float) -> np.ndarray:
    """Integrate ``x' = F(x)`` for all rows of ``x0`` at once with classic RK4.

    Returns an array (n_t, n, d) including the initial state; ``n_t = round(t_final/dt) + 1``.
    Vectorised over trajectories, so a Python loop runs only over time steps.

    Examples
    --------
    >>> import numpy as np
    >>> X = rk4_trajectories(lambda x: -x, np.array([[1.0]]), t_final=1.0, dt=0.01)
    >>> bool(abs(X[-1, 0, 0] - np.exp(-1.0)) < 1e-9)
    True
    """
    x = np.array(x0, float, copy=True)
    if not (np.isfinite(t_final) and np.isfinite(dt) and t_final > 0 and dt > 0):
        raise AnalysisError(f"t_final and dt must be positive and finite, got {t_final}, {dt}")
    steps = t_final / dt
    if steps > MAX_RK4_STEPS or (steps + 1) * x.size * 8 > MAX_TRAJECTORY_BYTES:
        raise AnalysisError(
            f"trajectories to t = {t_final:.4g} with dt = {dt:.3g} need {steps:.3g} RK4 steps for "
            f"{x.shape[0]} points (limits {MAX_RK4_STEPS:.0e} steps, {MAX_TRAJECTORY_BYTES // 2**30} GiB); "
            "f changes on a very short time scale in the box (a singularity?): restrict the box or give dt"
        )
    n_t = round(steps)
    out = np.empty((n_t + 1,) + x.shape)
    out[0] = x
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(n_t):
            x = rk4_step(F, x, dt)
            out[k + 1] = x
    return out


def _field(obj: Any, variables) -> Any:
    if isinstance(obj, Model):
        return numpy_field(obj)
    if hasattr(obj, "variables") and (hasattr(obj, "f") or hasattr(obj, "field")):
        return numpy_field(as_model(obj, need_f=True))
    if variables is None:
        raise AnalysisError("variables must be given when f is a list of SymPy expressions")
    return numpy_field(as_model(None, obj, variables, need_f=True))


def prediction_error(
    f_symb: Any,
    f_true_or_trajectories: Any,
    variables: Sequence[Any] | None = None,
    *,
    x0: Any = None,
    box: Any = None,
    n_traj: int = 100,
    t_final: float = 10.0,
    dt: float = 0.01,
    seed: int = 0,
) -> PredictionError:
    """Relative trajectory error ``E_k = ||X_k^Symb - X_k||_2 / ||X_k||_2`` (eq. 18).

    Norms are over the whole time series of trajectory k. ``f_symb`` is integrated with a
    vectorised RK4 from the same initial states as the reference trajectories, which are
    either integrated from the true field (a sequence of SymPy expressions, or a
    result/system object) or given as an observed array ``(n_traj, n_t, d)`` sampled every
    ``dt`` (then ``t_final`` is ignored).

    Parameters
    ----------
    f_symb
        Identified field: a result object or a sequence of SymPy expressions.
    f_true_or_trajectories
        True field (object or expressions) or observed trajectories (array).
    variables
        Variables when the fields are plain expressions.
    x0
        Initial states (n, d); default ``n_traj`` uniform draws in ``box``.
    box
        Region of the initial states when ``x0`` is not given.

    Returns
    -------
    PredictionError
        ``errors`` (n,), ``mean``, ``std`` and the time grid ``t``.

    Examples
    --------
    >>> import sympy as sp
    >>> x, y = sp.symbols("x y")
    >>> true = [-x + y, -x - y]
    >>> symb = [-1.001 * x + y, -x - y]
    >>> r = prediction_error(symb, true, [x, y], box=[[-1, 1], [-1, 1]], n_traj=20,
    ...                      t_final=5.0, dt=0.01)
    >>> bool(0 < r.mean < 1e-2)
    True
    """
    Fs = _field(f_symb, variables)
    if isinstance(f_true_or_trajectories, np.ndarray):
        obs = np.asarray(f_true_or_trajectories, float)
        if obs.ndim != 3:
            raise AnalysisError(f"observed trajectories must have shape (n_traj, n_t, d), got {obs.shape}")
        if not np.all(np.isfinite(obs)):
            raise AnalysisError("observed trajectories contain NaN or infinite values")
        n_t = obs.shape[1]
        ref = np.transpose(obs, (1, 0, 2))
        x_start = ref[0]
        t_f = (n_t - 1) * dt
    else:
        Ft = _field(f_true_or_trajectories, variables)
        if x0 is None:
            if box is None:
                raise AnalysisError("give initial states x0 or a box to draw them from")
            d = len(variables) if variables is not None else None
            b = np.asarray(box, float)
            bx = check_box(b, d if d is not None else b.shape[0])
            rng = np.random.default_rng(check_seed("", "seed", seed))
            x_start = bx[:, 0] + rng.random((n_traj, bx.shape[0])) * (bx[:, 1] - bx[:, 0])
        else:
            x_start = np.atleast_2d(np.asarray(x0, float))
        t_f = float(t_final)
        if not (t_f > 0 and dt > 0):
            raise AnalysisError(f"t_final and dt must be positive, got {t_final}, {dt}")
        ref = rk4_trajectories(Ft, x_start, t_final=t_f, dt=dt)
    sym = rk4_trajectories(Fs, x_start, t_final=t_f, dt=dt)
    if sym.shape[-1] != ref.shape[-1]:
        raise AnalysisError(f"dimension mismatch: f_symb has {sym.shape[-1]} components, data {ref.shape[-1]}")
    num = np.sqrt(np.sum((sym - ref) ** 2, axis=(0, 2)))
    den = np.sqrt(np.sum(ref**2, axis=(0, 2)))
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.where(den > 0, num / den, np.inf)
    err = np.where(np.isfinite(err), err, np.inf)
    t = np.arange(ref.shape[0]) * dt
    finite = err[np.isfinite(err)]
    mean = float(np.mean(finite)) if finite.size else float("inf")
    std = float(np.std(finite)) if finite.size else float("nan")
    if finite.size < err.size:
        mean = float("inf")
    return PredictionError(err, mean, std, t)


