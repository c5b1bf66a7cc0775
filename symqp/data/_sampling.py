"""Sampling snapshot pairs from a vector field (App. B protocol of the seed paper).

Initial states are uniform in the box Ω; each trajectory is integrated with the classical
fourth-order Runge–Kutta scheme; the snapshots at ``t_j = j·dt`` (``j = 1..M``) are paired
with the states at ``t_j + h``, reached from ``t_j`` in exactly five RK4 steps of ``h/5``.
All trajectories advance together as one NumPy array of shape (d, n_traj): the per-step
cost is a handful of vector operations of length n_traj, which is why no compiled kernel
is needed here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .._errors import DataError
from .._estimator import check_seed
from .._numeric import RowsFn, rk4_step
from ._pairs import Pairs, as_count, as_nonnegative, as_positive

__all__ = ["finish_pairs", "initial_states", "sample_pairs"]

_SUBSTEPS = 5  # RK4 steps per pair interval h (App. B: step h/5)


def resolve_field(system: Any, box: object | None = None) -> tuple[RowsFn, np.ndarray | None, tuple[str, ...] | None, int | None]:
    """Row-layout drift ``(d, n) -> (d, n)``, box, names and d of a system or callable."""
    names = getattr(system, "names", None)
    sys_box = getattr(system, "box", None)
    d = getattr(system, "d", None)
    rows = getattr(system, "_rows", None)
    if rows is None:
        if hasattr(system, "f_numpy"):
            f = system.f_numpy()
        elif callable(system):
            f = system
        else:
            raise DataError(
                f"expected a System (with f_numpy) or a callable f(x (n, d)) -> (n, d), "
                f"got {type(system).__name__}"
            )

        def rows(Y: np.ndarray, _f: Callable[[np.ndarray], np.ndarray] = f) -> np.ndarray:
            out = np.asarray(_f(Y.T), dtype=np.float64)
            if out.shape != Y.T.shape:
                raise DataError(f"the drift returned shape {out.shape} for input shape {Y.T.shape}")
            return np.ascontiguousarray(out.T)

    b = sys_box if box is None else box
    return rows, (None if b is None else np.asarray(b, dtype=np.float64)), names, d


def check_sampling_args(
    n_traj: object, n_pairs: object, h: object, dt: object, noise: object
) -> tuple[int, int, float, float, float]:
    """Validate the sampling sizes and steps (raises :class:`DataError` naming the bad one)."""
    return (as_count(n_traj, "n_traj"), as_count(n_pairs, "n_pairs"), as_positive(h, "h"),
            as_positive(dt, "dt"), as_nonnegative(noise, "noise"))


def sample_pairs(
    system: Any,
    *,
    n_traj: int,
    n_pairs: int,
    h: float,
    dt: float,
    seed: int = 0,
    noise: float = 0.0,
    box: object | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Pairs:
    """Sample ``n_traj × n_pairs`` snapshot pairs of a system (App. B of the seed paper).

    Parameters
    ----------
    system : System, HamiltonianSystem or callable
        The vector field; a callable ``f(x (n, d)) -> (n, d)`` needs ``box``.
    n_traj : int
        Number of trajectories N, started uniformly in the box Ω.
    n_pairs : int
        Snapshots per trajectory M, at ``t_j = j·dt`` for ``j = 1..M``.
    h : float
        Time between the two states of a pair; reached in exactly 5 RK4 steps of ``h/5``.
    dt : float
        Time between snapshots. It need not be a multiple of ``h/5``: each ``dt`` interval is
        covered by equal RK4 steps no longer than ``h/5``.
    seed : int
        Seed of the initial states and of the noise.
    noise : float
        Standard deviation of additive Gaussian measurement noise on every coordinate of
        ``x0`` and ``xh`` (absolute, in the units of the state). 0 means exact data.
    box : array_like (d, 2), optional
        Overrides the system's box Ω.
    progress : callable, optional
        Called as ``progress(done, total)`` after each snapshot (for progress bars).

    Returns
    -------
    Pairs
        Ordered trajectory by trajectory, with ``traj`` ids and the system's names.

    Raises
    ------
    DataError
        For invalid counts or steps, or when a trajectory diverges to NaN/Inf.

    Examples
    --------
    >>> from symqp.systems import linear_nongradient
    >>> p = sample_pairs(linear_nongradient(), n_traj=10, n_pairs=5, h=0.01, dt=0.1)
    >>> p
    Pairs(n=50, d=2, h=0.01, names=('x', 'y'), n_traj=10)
    """
    n_traj, n_pairs, h, dt, noise = check_sampling_args(n_traj, n_pairs, h, dt, noise)
    F, b, names, d_sys = resolve_field(system, box)
    rng = np.random.default_rng(check_seed("sample_pairs", "seed", seed))
    Y = initial_states(b, d_sys, n_traj, rng)
    d = Y.shape[0]

    s = h / _SUBSTEPS
    n_sub = max(1, math.ceil(dt / s - 1e-9))
    s_main = dt / n_sub
    # when dt is a multiple of h/5 the first 5 steps after t_j already end at t_j + h
    reuse = n_sub >= _SUBSTEPS and abs(s_main - s) <= 1e-12 * s

    X0 = np.empty((n_pairs, d, n_traj))
    XH = np.empty((n_pairs, d, n_traj))
    total = n_pairs
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        for _ in range(n_sub):  # 0 -> t_1
            Y = rk4_step(F, Y, s_main)
        for j in range(n_pairs):
            X0[j] = Y
            last = j == n_pairs - 1
            if reuse:
                for _ in range(_SUBSTEPS):
                    Y = rk4_step(F, Y, s)
                XH[j] = Y
                if not last:
                    for _ in range(n_sub - _SUBSTEPS):
                        Y = rk4_step(F, Y, s_main)
            else:
                Z = Y
                for _ in range(_SUBSTEPS):
                    Z = rk4_step(F, Z, s)
                XH[j] = Z
                if not last:
                    for _ in range(n_sub):
                        Y = rk4_step(F, Y, s_main)
            if progress is not None:
                progress(j + 1, total)

    return finish_pairs(X0, XH, h, names, noise, rng)


def initial_states(box: np.ndarray | None, d_sys: int | None, n_traj: int, rng: np.random.Generator) -> np.ndarray:
    """``n_traj`` states uniform in the box, variable-major (d, n_traj); the box checked first."""
    b = box
    if b is None:
        raise DataError("a box (d, 2) is needed to draw initial states; pass box=")
    if b.ndim != 2 or b.shape[1] != 2 or (d_sys is not None and b.shape[0] != d_sys):
        raise DataError(f"box must have shape ({d_sys if d_sys else 'd'}, 2), got {b.shape}")
    if not np.all(np.isfinite(b)) or np.any(b[:, 0] >= b[:, 1]):
        raise DataError("box must hold finite bounds with low < high in every row")
    return np.ascontiguousarray(rng.uniform(b[:, 0], b[:, 1], size=(n_traj, b.shape[0])).T)


def finish_pairs(X0: np.ndarray, XH: np.ndarray, h: float, names: Any, noise: float, rng: np.random.Generator) -> Pairs:
    """Pairs from snapshots (n_pairs, d, n_traj): divergence check, measurement noise, ids."""
    n_pairs, d, n_traj = X0.shape
    x0 = X0.transpose(2, 0, 1).reshape(n_traj * n_pairs, d)
    xh = XH.transpose(2, 0, 1).reshape(n_traj * n_pairs, d)
    bad = ~(np.all(np.isfinite(x0), axis=1) & np.all(np.isfinite(xh), axis=1))
    if bad.any():
        n_bad = np.unique(np.flatnonzero(bad) // n_pairs).size
        raise DataError(
            f"{n_bad} of {n_traj} trajectories diverged to NaN/Inf; use a smaller h or dt, "
            "fewer snapshots or a smaller box"
        )
    if noise > 0:
        x0 = x0 + rng.normal(scale=noise, size=x0.shape)
        xh = xh + rng.normal(scale=noise, size=xh.shape)
    traj = np.repeat(np.arange(n_traj, dtype=np.int64), n_pairs)
    return Pairs(x0, xh, h, names, traj)
