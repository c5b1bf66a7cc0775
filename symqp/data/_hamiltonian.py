"""(q, p) trajectories of separable Hamiltonian systems H = pᵀM⁻¹p/2 + V(q).

The data type of the Hamiltonian learner: ``R`` trajectories of ``N + 1`` points each,
recorded at a fixed step ``h``; ``p = M q̇`` with a diagonal mass matrix ``M``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from .._errors import DataError
from .._estimator import check_seed
from .._io import atomic_write
from .._numeric import numpy_function
from ._npz import read_npz
from ._pairs import as_names, as_positive

__all__ = [
    "HamiltonianData",
    "angular_momentum_sq",
    "load_hamiltonian",
    "radial_reduction",
    "sample_hamiltonian",
    "save_hamiltonian",
]


@dataclass(frozen=True)
class HamiltonianData:
    """Trajectories ``q`` and ``p`` of shape (R, N + 1, d) recorded every ``h``.

    Parameters
    ----------
    q, p : array_like, shape (R, N + 1, d)
        Positions and momenta; a 2-D array is taken as one trajectory, a 1-D array as one
        trajectory of a one-degree-of-freedom system.
    h : float
        Recording step (> 0).
    mass : array_like, shape (d,), optional
        Diagonal of the mass matrix (``p = M q̇``); ones when omitted.
    names : sequence of str, optional
        Names of the coordinates (``q`` or ``q1 .. qd`` by default).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(5) * 0.1
    >>> data = HamiltonianData(np.sin(t), np.cos(t), 0.1)
    >>> data.q.shape, data.d, data.n_traj
    ((1, 5, 1), 1, 1)
    """

    q: np.ndarray
    p: np.ndarray
    h: float
    mass: np.ndarray | None = None
    names: tuple[str, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        q = _as_3d(self.q, "q")
        p = _as_3d(self.p, "p")
        if q.shape != p.shape:
            raise DataError(f"q has shape {q.shape} but p has shape {p.shape}; they must match")
        r, n, d = q.shape
        if r < 1 or d < 1:
            raise DataError(f"empty trajectory data: q has shape {q.shape}")
        if n < 2:
            raise DataError(f"each trajectory needs at least 2 points (N >= 1 step), got {n}")
        for name, arr in (("q", q), ("p", p)):
            if not np.all(np.isfinite(arr)):
                bad = int(np.count_nonzero(~np.isfinite(arr)))
                raise DataError(f"{name} contains {bad} NaN/Inf values")
        h = as_positive(self.h)
        if self.mass is None:
            mass = np.ones(d)
        else:
            mass = np.asarray(self.mass, dtype=np.float64).reshape(-1)
            if mass.shape != (d,):
                raise DataError(f"mass must have shape ({d},), got {mass.shape}")
            if not np.all(np.isfinite(mass)) or np.any(mass <= 0):
                raise DataError(f"mass entries must be positive and finite, got {mass}")
        object.__setattr__(self, "q", q)
        object.__setattr__(self, "p", p)
        object.__setattr__(self, "h", h)
        object.__setattr__(self, "mass", mass)
        object.__setattr__(self, "names", as_names(self.names, d, "q"))

    @property
    def d(self) -> int:
        """Number of coordinates."""
        return self.q.shape[2]

    @property
    def n_traj(self) -> int:
        """Number of trajectories R."""
        return self.q.shape[0]

    @property
    def n_steps(self) -> int:
        """Number of steps N per trajectory (N + 1 points)."""
        return self.q.shape[1] - 1

    def steps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """All one-step transitions, flattened: ``(q_i, p_i, q_{i+1}, p_{i+1})``, each (R·N, d)."""
        d = self.d
        return (
            self.q[:, :-1].reshape(-1, d),
            self.p[:, :-1].reshape(-1, d),
            self.q[:, 1:].reshape(-1, d),
            self.p[:, 1:].reshape(-1, d),
        )

    def subset(self, traj: Sequence[int] | np.ndarray) -> HamiltonianData:
        """The data restricted to the given trajectory indices."""
        idx = np.asarray(traj, dtype=int).reshape(-1)
        return HamiltonianData(self.q[idx], self.p[idx], self.h, self.mass, self.names)

    def split(self, frac: float = 0.7, seed: int = 0) -> tuple[HamiltonianData, HamiltonianData]:
        """Split by trajectory into (train, test); with one trajectory, split it in time."""
        if not 0.0 < frac < 1.0:
            raise DataError(f"frac must lie in (0, 1), got {frac}")
        r = self.n_traj
        if r == 1:
            cut = max(1, min(self.n_steps - 1, round(frac * self.n_steps)))
            if self.n_steps < 2:
                raise DataError("a single trajectory of one step cannot be split")
            return (
                HamiltonianData(self.q[:, : cut + 1], self.p[:, : cut + 1], self.h, self.mass, self.names),
                HamiltonianData(self.q[:, cut:], self.p[:, cut:], self.h, self.mass, self.names),
            )
        perm = np.random.default_rng(check_seed("split", "seed", seed)).permutation(r)
        k = max(1, min(r - 1, round(frac * r)))
        return self.subset(np.sort(perm[:k])), self.subset(np.sort(perm[k:]))


def _as_3d(a, name: str) -> np.ndarray:
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{name} must be a numeric array") from None
    if arr.ndim == 1:
        arr = arr[None, :, None]
    elif arr.ndim == 2:
        arr = arr[None]
    elif arr.ndim != 3:
        raise DataError(f"{name} must have shape (R, N, d), got {arr.shape}")
    return np.ascontiguousarray(arr)


def _force_function(system) -> tuple[callable, int]:
    """NumPy callable ``q (n, d) -> -∇V(q) (n, d)`` derived exactly from ``system.V``."""
    q = tuple(getattr(system, "q", ()) or ())
    V = getattr(system, "V", None)
    if not q or V is None:
        raise DataError("system must be a Hamiltonian system with q symbols and a potential V")
    return numpy_function([-sp.diff(V, s) for s in q], q), len(q)


def sample_hamiltonian(
    system,
    n_traj: int,
    n_steps: int,
    h: float,
    seed: int = 0,
    *,
    q0: np.ndarray | None = None,
    p0: np.ndarray | None = None,
    box: np.ndarray | None = None,
    substeps: int = 10,
) -> HamiltonianData:
    """Integrate ``n_traj`` trajectories with the Störmer–Verlet scheme on fine sub-steps.

    Parameters
    ----------
    system : HamiltonianSystem
        Needs ``q`` (symbols), ``V`` (SymPy potential), optionally ``mass`` (d,) and
        ``box`` ((2d, 2) low/high for q then p, or (d, 2) used for both).
    n_traj, n_steps : int
        Number of trajectories R and of recorded steps N (N + 1 points each).
    h : float
        Recording step; each step is split into ``substeps`` Verlet steps.
    seed : int
        Seed of the uniform initial conditions (drawn in ``box``) when ``q0``/``p0`` are not given.
    q0, p0 : array_like, shape (R, d), optional
        Initial conditions.
    box : array_like, optional
        Overrides ``system.box`` for the random initial conditions.
    substeps : int
        Verlet sub-steps per recorded step (the scheme is second order: error ~ (h/substeps)²).

    Returns
    -------
    HamiltonianData

    Examples
    --------
    >>> import sympy as sp
    >>> from types import SimpleNamespace
    >>> q = sp.Symbol("q")
    >>> osc = SimpleNamespace(q=(q,), V=q**2 / 2, mass=None)
    >>> data = sample_hamiltonian(osc, 1, 100, 0.01, q0=[[1.0]], p0=[[0.0]])
    >>> bool(abs(data.q[0, -1, 0] - np.cos(1.0)) < 1e-6)
    True
    """
    force, d = _force_function(system)
    n_traj, n_steps, substeps = int(n_traj), int(n_steps), int(substeps)
    if n_traj < 1 or n_steps < 1 or substeps < 1:
        raise DataError(
            f"n_traj, n_steps and substeps must be >= 1, got {n_traj}, {n_steps}, {substeps}"
        )
    h = as_positive(h)
    mass = getattr(system, "mass", None)
    mass = np.ones(d) if mass is None else np.asarray(mass, dtype=np.float64).reshape(-1)
    if mass.shape != (d,):
        raise DataError(f"system mass must have shape ({d},), got {mass.shape}")
    rng = np.random.default_rng(check_seed("sample_hamiltonian", "seed", seed))
    if q0 is None or p0 is None:
        b = getattr(system, "box", None) if box is None else box
        if b is None:
            b = np.tile([-1.0, 1.0], (2 * d, 1))
        b = np.asarray(b, dtype=np.float64)
        if b.shape == (d, 2):
            b = np.vstack([b, b])
        if b.shape != (2 * d, 2) or np.any(b[:, 0] >= b[:, 1]):
            raise DataError(f"box must be (2d, 2) = ({2 * d}, 2) with low < high, got {b.shape}")
        z = rng.uniform(b[:, 0], b[:, 1], size=(n_traj, 2 * d))
        q0 = z[:, :d] if q0 is None else q0
        p0 = z[:, d:] if p0 is None else p0
    q = np.array(q0, dtype=np.float64).reshape(n_traj, d)
    p = np.array(p0, dtype=np.float64).reshape(n_traj, d)
    Q = np.empty((n_traj, n_steps + 1, d))
    P = np.empty_like(Q)
    Q[:, 0], P[:, 0] = q, p
    dt = h / substeps
    inv_m = 1.0 / mass
    a = force(q)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for i in range(1, n_steps + 1):
            for _ in range(substeps):
                p = p + 0.5 * dt * a
                q = q + dt * inv_m * p
                a = force(q)
                p = p + 0.5 * dt * a
            Q[:, i], P[:, i] = q, p
    if not (np.all(np.isfinite(Q)) and np.all(np.isfinite(P))):
        raise DataError("integration produced NaN/Inf (a trajectory hit a singularity); "
                        "use smaller h, more substeps or other initial conditions")
    names = tuple(str(s) for s in system.q)
    return HamiltonianData(Q, P, h, mass, names)


def save_hamiltonian(data: HamiltonianData, path: str | os.PathLike[str]) -> None:
    """Write ``data`` to an ``.npz`` file (keys ``q``, ``p``, ``h``, ``mass``, ``names``), atomically.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> data = HamiltonianData(np.zeros((2, 3, 1)), np.ones((2, 3, 1)), 0.5)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "h.npz"
    >>> save_hamiltonian(data, path)
    >>> load_hamiltonian(path).h
    0.5
    """
    with atomic_write(path, "wb") as fh:
        np.savez(fh, q=data.q, p=data.p, h=np.float64(data.h), mass=data.mass,
                 names=np.array(data.names, dtype=str))


def load_hamiltonian(path: str | os.PathLike[str]) -> HamiltonianData:
    """Read an ``.npz`` written by :func:`save_hamiltonian` (or by hand with the same keys)."""
    z = read_npz(path, (), ("q", "p", "h", "mass", "names"), kind="a Hamiltonian data file")
    keys = set(z)
    missing = {"q", "p", "h"} - keys
    if missing:
        raise DataError(f"{os.fspath(path)!s}: missing key(s) {sorted(missing)} (has {sorted(keys)})")
    q, p, h = z["q"], z["p"], z["h"]
    mass = z.get("mass")
    names = tuple(str(n) for n in z["names"].ravel()) if "names" in keys else None
    if np.asarray(h).size != 1:
        raise DataError(f"h must be a scalar, got shape {np.asarray(h).shape}")
    return HamiltonianData(q, p, float(np.asarray(h).reshape(())), mass, names)


def _equal_mass(data: HamiltonianData, what: str) -> float:
    m = data.mass
    if not np.allclose(m, m[0], rtol=1e-12, atol=0.0):
        raise DataError(f"{what} needs equal masses on all coordinates, got {m.tolist()}")
    return float(m[0])


def radial_reduction(data: HamiltonianData, *, name: str = "r") -> HamiltonianData:
    """The reduced-order (r, ṙ) data of a particle: ``r = |q|``, momentum m·ṙ = q·p / r.

    For a central force ``H = |p|²/(2m) + V(|q|)`` the radius obeys the one-degree-of-freedom
    system H = m ṙ²/2 + V_eff(r) with V_eff = V + ℓ²/(2 m r²) (ℓ the conserved angular
    momentum), which the Hamiltonian learners then recover.

    Examples
    --------
    >>> q = np.array([[[3.0, 4.0], [0.0, 2.0]]])
    >>> p = np.array([[[0.6, 0.8], [1.0, -1.0]]])
    >>> red = radial_reduction(HamiltonianData(q, p, 0.1))
    >>> red.q[0, :, 0].tolist(), red.p[0, :, 0].tolist(), red.names
    ([5.0, 2.0], [1.0, -1.0], ('r',))
    """
    m = _equal_mass(data, "radial_reduction")
    r = np.sqrt(np.sum(data.q**2, axis=2))
    if np.any(r == 0):
        raise DataError("radial_reduction: a trajectory passes through the origin (r = 0)")
    pr = np.sum(data.q * data.p, axis=2) / r
    return HamiltonianData(r[..., None], pr[..., None], data.h, np.array([m]), (str(name),))


def angular_momentum_sq(data: HamiltonianData) -> np.ndarray:
    """``ℓ² = |q|²|p|² − (q·p)²`` at every point (R, N + 1); conserved by a central force.

    Examples
    --------
    >>> q = np.array([[[1.0, 0.0], [0.0, 2.0]]])
    >>> p = np.array([[[0.5, 2.0], [-1.0, 0.0]]])
    >>> angular_momentum_sq(HamiltonianData(q, p, 0.1)).tolist()
    [[4.0, 4.0]]
    """
    return np.sum(data.q**2, axis=2) * np.sum(data.p**2, axis=2) - np.sum(data.q * data.p, axis=2) ** 2
