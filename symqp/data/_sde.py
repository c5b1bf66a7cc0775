"""Paths of ``dX = f(X) dt + √ε B dW`` for many paths at once: states and snapshot pairs.

:func:`simulate_sde` runs Euler–Maruyama and returns states; :func:`sample_sde_pairs` records
snapshot pairs (the increments a stochastic fit reads) with the stochastic Heun scheme.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import math

from .._errors import DataError
from .._estimator import check_seed
from .._numeric import RowsFn, euler_maruyama_step
from ._pairs import Pairs, as_count, as_float_array, as_nonnegative, as_positive
from ._sampling import check_sampling_args, finish_pairs, initial_states, resolve_field

__all__ = ["heun_step", "sample_sde_pairs", "simulate_sde"]


def simulate_sde(
    system_or_f: Any,
    x0: object,
    *,
    eps: float,
    dt: float,
    n_steps: int,
    seed: int = 0,
    record_every: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Simulate ``dX = f(X) dt + √ε dW`` with the Euler–Maruyama scheme, vectorised over paths.

    With this convention (eq. 19 of the seed paper) the invariant density of a system with
    quasipotential U is ``p_ε ∝ exp(-U/ε)`` for small ε.

    Parameters
    ----------
    system_or_f : System, HamiltonianSystem or callable
        The drift; a callable maps ``(n, d) -> (n, d)``.
    x0 : array_like, shape (n, d) or (d,)
        Initial states of the ``n`` paths.
    eps : float
        Noise strength ε ≥ 0 (0 gives the explicit Euler scheme).
    dt : float
        Time step (> 0).
    n_steps : int
        Number of steps.
    seed : int
        Seed of the Brownian increments.
    record_every : int, optional
        If given, also record the states every ``record_every`` steps.
    progress : callable, optional
        Called as ``progress(done, total)`` every 1% of the steps.

    Returns
    -------
    ndarray
        The final states ``(n, d)``; with ``record_every``, the recorded states
        ``(n_steps // record_every + 1, n, d)``, starting with ``x0``.

    Examples
    --------
    >>> import numpy as np
    >>> from symqp.systems import linear_nongradient
    >>> x = simulate_sde(linear_nongradient(), np.zeros((2000, 2)), eps=0.1, dt=0.01, n_steps=500)
    >>> x.shape
    (2000, 2)
    """
    rows, _, _, d_sys = resolve_field(system_or_f)
    X = as_float_array(x0, "x0")
    if X.ndim == 1:
        X = X.reshape(1, -1)
    if X.ndim != 2 or X.shape[0] == 0 or (d_sys is not None and X.shape[1] != d_sys):
        raise DataError(f"x0 must have shape (n, {d_sys or 'd'}), got {X.shape}")
    if not np.all(np.isfinite(X)):
        raise DataError("x0 contains NaN/Inf")
    eps, dt = as_nonnegative(eps, "eps"), as_positive(dt, "dt")
    n_steps = as_count(n_steps, "n_steps", minimum=0)
    if record_every is not None:
        record_every = as_count(record_every, "record_every")
    rng = np.random.default_rng(check_seed("simulate_sde", "seed", seed))
    Y = np.ascontiguousarray(X.T)
    records = [X.copy()] if record_every else None
    tick = max(1, n_steps // 100)
    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(1, n_steps + 1):
            Y = euler_maruyama_step(rows, Y, dt, eps, rng)
            if records is not None and i % record_every == 0:  # type: ignore[operator]
                records.append(Y.T.copy())
            if progress is not None and (i % tick == 0 or i == n_steps):
                progress(i, n_steps)
    if not np.all(np.isfinite(Y)):
        n_bad = int(np.count_nonzero(~np.all(np.isfinite(Y), axis=0)))
        raise DataError(f"{n_bad} of {Y.shape[1]} paths diverged to NaN/Inf; use a smaller dt")
    if records is not None:
        return np.stack(records)
    return np.ascontiguousarray(Y.T)


def heun_step(F: RowsFn, Y: np.ndarray, dt: float, noise: np.ndarray) -> np.ndarray:
    """One stochastic Heun step of ``dY = F(Y) dt + dN`` with the increment ``noise`` given.

    Predictor ``Ỹ = Y + F(Y) dt + dN``, corrector ``Y + (F(Y) + F(Ỹ)) dt/2 + dN``. For
    additive noise the mean increment is ``F dt + (dt²/2)(DF F + ½ ε ∇²F) + O(dt³)`` like
    the exact one (weak order 2; Euler–Maruyama is weak order 1): the drift that a fit
    reads off the increments then carries no O(dt) bias of the simulator.

    Examples
    --------
    Without noise it is Heun's method (second order): x' = −x over 0.1 gives 1 − 0.1 + 0.005.

    >>> heun_step(lambda Y: -Y, np.ones((1, 1)), 0.1, np.zeros((1, 1)))
    array([[0.905]])
    """
    k1 = F(Y)
    k2 = F(Y + dt * k1 + noise)
    out = Y + (0.5 * dt) * (k1 + k2)
    out += noise
    return out


def _noise_matrix(diffusion: object, d: int) -> np.ndarray | None:
    if diffusion is None:
        return None
    B = as_float_array(diffusion, "diffusion")
    if B.shape != (d, d) or not np.all(np.isfinite(B)):
        raise DataError(f"diffusion must be a finite ({d}, {d}) matrix B (noise sqrt(eps) B dW), got shape {B.shape}")
    if np.linalg.matrix_rank(B) < d:
        raise DataError("diffusion matrix B is singular: the noise would not reach every coordinate")
    return B


class _Noise:
    """Brownian increments √ε B ΔW of one substep, drawn in blocks (one generator call per block)."""

    def __init__(self, rng: np.random.Generator, shape: tuple[int, int], scale: float, B: np.ndarray | None) -> None:
        self.rng, self.shape, self.scale, self.B = rng, shape, scale, B
        self.block = max(1, min(1024, 2**20 // max(1, shape[0] * shape[1])))
        self.buf, self.i = None, self.block

    def next(self) -> np.ndarray:
        if self.i >= self.block:
            self.buf = self.scale * self.rng.standard_normal((self.block,) + self.shape)
            if self.B is not None:
                self.buf = np.einsum("ij,bjn->bin", self.B, self.buf)
            self.i = 0
        self.i += 1
        return self.buf[self.i - 1]  # type: ignore[index]


def sample_sde_pairs(
    system: Any,
    *,
    eps: float,
    n_traj: int,
    n_pairs: int,
    h: float,
    dt: float,
    substeps: int = 5,
    diffusion: object | None = None,
    t_burn: float = 0.0,
    seed: int = 0,
    noise: float = 0.0,
    box: object | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Pairs:
    """Snapshot pairs of the SDE ``dx = f(x) dt + √ε B dW``: the increments a stochastic fit reads.

    The protocol of :func:`~symqp.data.sample_pairs` with noise: initial states uniform in
    the box, optionally run for ``t_burn`` first, snapshots at ``t_j = t_burn + j·dt`` paired
    with the state at ``t_j + h`` of the same path. The path is integrated by the stochastic
    Heun scheme (:func:`heun_step`, weak order 2) in steps of ``h/substeps`` (``dt`` is
    covered by equal steps no longer than that). When ``dt`` is a multiple of the step the
    pair's end lies on the path itself (with ``dt = h`` consecutive pairs share a snapshot:
    one long path cut into increments); otherwise it is a branch of the path over ``h``.

    Parameters
    ----------
    system : System or callable
        The drift f; a callable ``f(x (n, d)) -> (n, d)`` needs ``box``.
    eps : float
        Noise level ε > 0 (isotropic: the invariant density is ~ exp(−U/ε) for small ε).
    n_traj, n_pairs, h, dt
        As for :func:`~symqp.data.sample_pairs`; ``n_traj=1`` with a large ``n_pairs`` and
        ``dt = h`` gives one long path (for density and exit-time checks).
    substeps : int
        Heun steps per interval h.
    diffusion : array_like (d, d), optional
        Constant noise matrix B (default the identity).
    t_burn : float
        Time run before the first snapshot (towards the stationary law).
    seed : int
        Seed of the initial states and of the noise.
    noise : float
        Standard deviation of measurement noise added to the recorded states (default 0).
    box, progress
        As for :func:`~symqp.data.sample_pairs`.

    Examples
    --------
    The increments of an Ornstein–Uhlenbeck path have variance ε(1 − e^{−2h})/2 about their mean:

    >>> import sympy as sp
    >>> from symqp.systems import from_expressions
    >>> x = sp.Symbol("x")
    >>> ou = from_expressions([-x], [x], box=[[-1, 1]])
    >>> p = sample_sde_pairs(ou, eps=0.5, n_traj=2000, n_pairs=20, h=0.1, dt=0.1, seed=1)
    >>> r = p.xh - p.x0 * np.exp(-0.1)
    >>> bool(abs(r.var() / (0.25 * (1 - np.exp(-0.2))) - 1) < 0.03)
    True
    """
    n_traj, n_pairs, h, dt, noise = check_sampling_args(n_traj, n_pairs, h, dt, noise)
    eps = as_positive(eps, "eps")
    substeps = as_count(substeps, "substeps")
    t_burn = as_nonnegative(t_burn, "t_burn")
    F, b, names, d_sys = resolve_field(system, box)
    Y = initial_states(b, d_sys, n_traj, np.random.default_rng(check_seed("sample_sde_pairs", "seed", seed)))
    d = Y.shape[0]
    B = _noise_matrix(diffusion, d)
    rng = np.random.default_rng([seed, 1])
    s = h / substeps
    n_sub = max(1, math.ceil(dt / s - 1e-9))
    s_main = dt / n_sub
    reuse = n_sub >= substeps and abs(s_main - s) <= 1e-12 * s
    draw = _Noise(rng, (d, n_traj), math.sqrt(eps * s), B)
    draw_main = draw if reuse else _Noise(rng, (d, n_traj), math.sqrt(eps * s_main), B)
    X0 = np.empty((n_pairs, d, n_traj))
    XH = np.empty((n_pairs, d, n_traj))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        n_burn = math.ceil(t_burn / s_main - 1e-9) if t_burn > 0 else 0
        for _ in range(n_burn + n_sub):
            Y = heun_step(F, Y, s_main, draw_main.next())
        for j in range(n_pairs):
            X0[j] = Y
            Z = Y
            for _ in range(substeps):
                Z = heun_step(F, Z, s, draw.next())
            XH[j] = Z
            if j < n_pairs - 1:
                if reuse:
                    Y = Z
                    rest = n_sub - substeps
                else:
                    rest = n_sub
                for _ in range(rest):
                    Y = heun_step(F, Y, s_main, draw_main.next())
            if progress is not None:
                progress(j + 1, n_pairs)
    return finish_pairs(X0, XH, h, names, noise, rng)
