"""Samples of the stationary law of dX = f(X) dt + √(2D) dW, with the drift f at the samples.

The data type of the EPR landscape learner. Convention: the stationary density is
p ∝ exp(−U/D), so for f = −∇U + g with ∇·(g e^{−U/D}) = 0 the landscape is U itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .._errors import DataError
from .._estimator import check_seed
from .._io import atomic_write
from .._numeric import euler_maruyama_step
from ._npz import read_npz
from ._pairs import as_count, as_names, as_positive

__all__ = ["StationaryData", "load_stationary", "sample_stationary", "save_stationary"]


@dataclass(frozen=True)
class StationaryData:
    """Stationary samples ``x`` (n, d) with the drift ``f`` (n, d) there and the noise level ``D``.

    Examples
    --------
    >>> import numpy as np
    >>> data = StationaryData(np.zeros((3, 2)), np.zeros((3, 2)), 0.1)
    >>> data.n, data.d, data.names
    (3, 2, ('x1', 'x2'))
    """

    x: np.ndarray
    f: np.ndarray
    D: float
    names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        x = _as_2d(self.x, "x")
        f = _as_2d(self.f, "f")
        if x.shape != f.shape:
            raise DataError(f"x has shape {x.shape} but f has shape {f.shape}; they must match")
        n, d = x.shape
        if n < d + 1:
            raise DataError(f"need at least d + 1 = {d + 1} samples, got {n}")
        for name, arr in (("x", x), ("f", f)):
            if not np.all(np.isfinite(arr)):
                raise DataError(f"{name} contains {int(np.count_nonzero(~np.isfinite(arr)))} NaN/Inf values")
        D = _as_diffusion(self.D)
        names = as_names(self.names, d)
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "f", f)
        object.__setattr__(self, "D", D)
        object.__setattr__(self, "names", names)

    @property
    def n(self) -> int:
        """Number of samples."""
        return self.x.shape[0]

    @property
    def d(self) -> int:
        """Dimension."""
        return self.x.shape[1]

    def split(self, frac: float = 0.7, seed: int = 0) -> tuple[StationaryData, StationaryData]:
        """Random split of the samples into (train, test)."""
        if not 0.0 < frac < 1.0:
            raise DataError(f"frac must lie in (0, 1), got {frac}")
        perm = np.random.default_rng(check_seed("split", "seed", seed)).permutation(self.n)
        k = round(frac * self.n)
        a, b = np.sort(perm[:k]), np.sort(perm[k:])
        return (StationaryData(self.x[a], self.f[a], self.D, self.names),
                StationaryData(self.x[b], self.f[b], self.D, self.names))


def _as_diffusion(D: object) -> float:
    try:
        return as_positive(D, "D")
    except DataError:
        raise DataError(f"the diffusion coefficient D must be positive and finite, got {D!r}") from None


def _as_2d(a, name: str) -> np.ndarray:
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{name} must be a numeric array") from None
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise DataError(f"{name} must have shape (n, d), got {arr.shape}")
    return np.ascontiguousarray(arr)


def _drift(system) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray | None, tuple[str, ...] | None]:
    if callable(system) and not hasattr(system, "f_numpy"):
        return system, None, None
    if not hasattr(system, "f_numpy"):
        raise DataError("system must be a System (with f_numpy) or a callable f(x) -> (n, d)")
    box = getattr(system, "box", None)
    names = getattr(system, "names", None)
    return system.f_numpy(), (None if box is None else np.asarray(box, float)), names


def sample_stationary(
    system,
    n_samples: int,
    D: float,
    *,
    dt: float = 1e-3,
    t_burn: float = 10.0,
    box: np.ndarray | None = None,
    x0: np.ndarray | None = None,
    seed: int = 0,
) -> StationaryData:
    """Draw ``n_samples`` (approximately) stationary samples by Euler–Maruyama.

    ``n_samples`` independent chains start uniformly in ``box`` (or at ``x0``) and run for
    ``t_burn`` with step ``dt``; their end points are the samples, returned with f there.

    Parameters
    ----------
    system : System or callable
        A built-in system (``f_numpy()``, ``box``, ``names``) or ``f(x (n, d)) -> (n, d)``.
    n_samples : int
        Number of chains (= samples).
    D : float
        Diffusion coefficient (> 0): dX = f dt + √(2D) dW.
    dt, t_burn : float
        Euler–Maruyama step and relaxation time.
    box : array_like (d, 2), optional
        Where the chains start (default ``system.box``).
    x0 : array_like (n_samples, d), optional
        Starting points instead of the box.
    seed : int
        Seed of the starting points and of the noise.

    Examples
    --------
    >>> ou = lambda x: -x
    >>> data = sample_stationary(ou, 4000, 0.5, dt=1e-2, t_burn=5.0, box=[[-1, 1]], seed=1)
    >>> bool(abs(data.x.var() - 0.5) < 0.05)      # stationary variance of the OU process is D
    True
    """
    f, sys_box, names = _drift(system)
    D = _as_diffusion(D)
    n_samples = as_count(n_samples, "n_samples", minimum=2)
    dt, t_burn = as_positive(dt, "dt"), as_positive(t_burn, "t_burn")
    rng = np.random.default_rng(check_seed("sample_stationary", "seed", seed))
    if x0 is not None:
        x = np.array(x0, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != n_samples:
            raise DataError(f"x0 must have shape ({n_samples}, d), got {x.shape}")
    else:
        b = sys_box if box is None else np.asarray(box, dtype=np.float64)
        if b is None or b.ndim != 2 or b.shape[1] != 2 or np.any(b[:, 0] >= b[:, 1]):
            raise DataError("give a box (d, 2) with low < high (or x0) for the starting points")
        x = rng.uniform(b[:, 0], b[:, 1], size=(n_samples, b.shape[0]))
    n_steps = int(np.ceil(t_burn / dt))
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(n_steps):  # whole-ensemble steps: one f call per step for all chains
            x = euler_maruyama_step(f, x, dt, 2.0 * D, rng)
    if not np.all(np.isfinite(x)):
        raise DataError("Euler–Maruyama diverged (NaN/Inf); use a smaller dt")
    return StationaryData(x, f(x), D, names)


def save_stationary(data: StationaryData, path: str | os.PathLike[str]) -> None:
    """Write ``data`` to ``.npz`` (keys ``x``, ``f``, ``D``, ``names``), atomically.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> data = StationaryData(np.zeros((3, 1)), np.ones((3, 1)), 0.2)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "s.npz"
    >>> save_stationary(data, path)
    >>> load_stationary(path).D
    0.2
    """
    with atomic_write(path, "wb") as fh:
        np.savez(fh, x=data.x, f=data.f, D=np.float64(data.D), names=np.array(data.names, dtype=str))


def load_stationary(path: str | os.PathLike[str]) -> StationaryData:
    """Read an ``.npz`` with keys ``x`` (n, d), ``f`` (n, d), ``D`` and optional ``names``."""
    z = read_npz(path, (), ("x", "f", "D", "names"), kind="a stationary data file")
    keys = set(z)
    missing = {"x", "f", "D"} - keys
    if missing:
        raise DataError(f"{os.fspath(path)!s}: missing key(s) {sorted(missing)} (has {sorted(keys)})")
    x, f, D = z["x"], z["f"], z["D"]
    names: Sequence[str] | None = tuple(str(s) for s in z["names"].ravel()) if "names" in keys else None
    if np.asarray(D).size != 1:
        raise DataError(f"D must be a scalar, got shape {np.asarray(D).shape}")
    return StationaryData(x, f, float(np.asarray(D).reshape(())), names)
