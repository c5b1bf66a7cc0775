"""Euler–Maruyama simulation of ``dX = f(X) dt + √ε dW`` for many paths at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._errors import DataError
from .._estimator import check_seed
from .._numeric import euler_maruyama_step
from ._pairs import as_count, as_float_array, as_nonnegative, as_positive
from ._sampling import resolve_field

__all__ = ["simulate_sde"]


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
