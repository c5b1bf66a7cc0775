"""The :class:`Pairs` type: snapshot pairs ``(x0, xh)`` a time ``h`` apart, validated."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._errors import DataError
from .._estimator import check_seed
from .._parse import name_problem

__all__ = ["Pairs", "pairs_from_arrays"]

_NAN_POLICIES = ("raise", "drop")


def check_nan_policy(nan_policy: str) -> None:
    if nan_policy not in _NAN_POLICIES:
        raise DataError(f"nan_policy must be 'raise' or 'drop', got {nan_policy!r}")


def as_float_array(a: object, what: str) -> np.ndarray:
    """``a`` as a float64 array; refuses non-numeric dtypes (strings, objects, booleans)."""
    arr = np.asarray(a)
    if arr.dtype.kind not in "iuf":
        raise DataError(f"{what} must be a numeric (integer or float) array, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=True)


def _number(value: object, what: str, wanted: str) -> float:
    """One real number from a Python or NumPy scalar (or 1-element array); no bools, no text."""
    try:
        arr = np.asarray(value)
        if isinstance(value, bool) or arr.size != 1 or arr.dtype.kind not in "iuf":
            raise TypeError
        return float(arr.reshape(()))
    except (TypeError, ValueError):
        raise DataError(f"{what} must be {wanted}, got {value!r}") from None


def as_positive(value: object, what: str = "h") -> float:
    """A positive finite number, e.g. a time step.

    Examples
    --------
    >>> as_positive(np.float32(0.5), "dt")
    0.5
    >>> as_positive(0.0, "dt")
    Traceback (most recent call last):
    ...
    symqp._errors.DataError: dt must be a positive finite number, got 0.0
    """
    v = _number(value, what, "a positive number")
    if not math.isfinite(v) or v <= 0:
        raise DataError(f"{what} must be a positive finite number, got {value!r}")
    return v


def as_nonnegative(value: object, what: str) -> float:
    """A finite number >= 0 (a noise level)."""
    v = _number(value, what, "a non-negative number")
    if not math.isfinite(v) or v < 0:
        raise DataError(f"{what} must be a non-negative number, got {value!r}")
    return v


def as_count(value: object, what: str, minimum: int = 1) -> int:
    """An integer >= ``minimum`` (1: "a positive integer", 0: "a non-negative integer")."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        kind = {0: "a non-negative integer", 1: "a positive integer"}.get(minimum, f"an integer >= {minimum}")
        raise DataError(f"{what} must be {kind}, got {value!r}")
    return int(value)


def default_names(d: int, letter: str = "x") -> tuple[str, ...]:
    """The names given to unnamed variables: ``x`` for one, ``x1 .. xd`` for several.

    Examples
    --------
    >>> default_names(1), default_names(3), default_names(2, "q")
    (('x',), ('x1', 'x2', 'x3'), ('q1', 'q2'))
    """
    return (letter,) if d == 1 else tuple(f"{letter}{k + 1}" for k in range(d))


def as_names(names: Sequence[str] | str | None, d: int, letter: str = "x") -> tuple[str, ...]:
    """Variable names: :func:`default_names` when None; distinct identifiers, exactly d of them."""
    if names is None:
        return default_names(d, letter)
    if isinstance(names, str):
        names = names.replace(",", " ").split()
    try:
        out = tuple(str(n) for n in names)
    except TypeError:
        raise DataError(f"names must be a sequence of {d} strings") from None
    if len(out) != d:
        raise DataError(f"got {len(out)} names {list(out)} for {d} state variables")
    for n in out:
        problem = name_problem(n)
        if problem:
            raise DataError(f"variable names must be valid, unreserved identifiers: {problem}")
    if len(set(out)) != d:
        raise DataError(f"variable names must be distinct, got {list(out)}")
    return out


@dataclass(frozen=True, eq=False)
class Pairs:
    """Snapshot pairs ``xh ≈ φ_h(x0)`` of a flow, the data the decomposition learns from.

    Parameters
    ----------
    x0, xh : array_like, shape (n, d)
        States and the states a time ``h`` later.
    h : float
        The time between the two snapshots of a pair (> 0).
    names : sequence of str, optional
        Variable names (default ``x1 .. xd``, ``x`` when d = 1).
    traj : array_like of int, shape (n,), optional
        Trajectory id of each pair (used by :meth:`split`).

    Raises
    ------
    DataError
        For mismatched shapes, NaN/Inf values, ``h <= 0``, fewer than ``d + 1`` pairs,
        bad names or a bad ``traj``. Use :func:`pairs_from_arrays` with ``nan_policy="drop"``
        to drop non-finite rows instead.

    Examples
    --------
    >>> import numpy as np
    >>> x0 = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    >>> p = Pairs(x0, 0.9 * x0, 0.1, names=("x", "y"))
    >>> p
    Pairs(n=3, d=2, h=0.1, names=('x', 'y'))
    """

    x0: np.ndarray
    xh: np.ndarray
    h: float
    names: tuple[str, ...] | None = None
    traj: np.ndarray | None = None

    def __post_init__(self) -> None:
        x0 = as_float_array(self.x0, "x0")
        xh = as_float_array(self.xh, "xh")
        if x0.ndim != 2:
            raise DataError(f"x0 must have shape (n, d), got {x0.shape}")
        if xh.shape != x0.shape:
            raise DataError(f"xh has shape {xh.shape} but x0 has shape {x0.shape}; they must match")
        n, d = x0.shape
        if d == 0:
            raise DataError("x0 has no state variables (d = 0)")
        for what, arr in (("x0", x0), ("xh", xh)):
            bad = ~np.all(np.isfinite(arr), axis=1)
            if bad.any():
                raise DataError(
                    f"{what} has {int(bad.sum())} rows with NaN/Inf (first: row {int(np.argmax(bad))}); "
                    "drop them with nan_policy='drop'"
                )
        if n < d + 1:
            raise DataError(f"need at least d + 1 = {d + 1} pairs, got {n}")
        h = as_positive(self.h)
        names = as_names(self.names, d)
        traj = self.traj
        if traj is not None:
            t = np.asarray(traj)
            if t.shape != (n,):
                raise DataError(f"traj must have shape ({n},), got {t.shape}")
            if t.dtype.kind == "f":
                if not np.all(np.isfinite(t)) or np.any(t != np.round(t)):
                    raise DataError("traj must hold integer trajectory ids")
            elif t.dtype.kind not in "iu":
                raise DataError(f"traj must hold integer trajectory ids, got dtype {t.dtype}")
            traj = t.astype(np.int64)
            traj.setflags(write=False)
        x0.setflags(write=False)
        xh.setflags(write=False)
        object.__setattr__(self, "x0", x0)
        object.__setattr__(self, "xh", xh)
        object.__setattr__(self, "h", h)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "traj", traj)

    @property
    def n(self) -> int:
        """Number of pairs."""
        return self.x0.shape[0]

    @property
    def d(self) -> int:
        """State dimension."""
        return self.x0.shape[1]

    @property
    def n_traj(self) -> int | None:
        """Number of distinct trajectories, or None without ``traj``."""
        return None if self.traj is None else int(np.unique(self.traj).size)

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        extra = "" if self.traj is None else f", n_traj={self.n_traj}"
        return f"Pairs(n={self.n}, d={self.d}, h={self.h:g}, names={self.names}{extra})"

    def subset(self, mask: np.ndarray | Sequence[int] | Sequence[bool]) -> Pairs:
        """The pairs selected by a boolean mask (n,) or an index array.

        Examples
        --------
        >>> import numpy as np
        >>> p = Pairs(np.ones((5, 2)), np.ones((5, 2)), 0.1)
        >>> p.subset([True, True, True, False, True]).n
        4
        """
        m = np.asarray(mask)
        if m.dtype == bool:
            if m.shape != (self.n,):
                raise DataError(f"mask must have shape ({self.n},), got {m.shape}")
            idx = np.flatnonzero(m)
        elif m.dtype.kind in "iu" and m.ndim == 1:
            if m.size and (m.min() < -self.n or m.max() >= self.n):
                raise DataError(f"index out of range for {self.n} pairs")
            idx = m
        else:
            raise DataError("subset needs a boolean mask or an integer index array")
        return Pairs(
            self.x0[idx], self.xh[idx], self.h, self.names,
            None if self.traj is None else self.traj[idx],
        )

    def split(self, frac: float = 0.7, *, seed: int = 0) -> tuple[Pairs, Pairs]:
        """Split into (train, test) by whole trajectories (by pair when ``traj`` is None).

        ``frac`` of the trajectories, chosen at random with ``seed``, go to train.

        Examples
        --------
        >>> import numpy as np
        >>> x = np.arange(40.0).reshape(20, 2)
        >>> p = Pairs(x, x + 1, 0.1, traj=np.repeat(np.arange(5), 4))
        >>> train, test = p.split(0.6, seed=1)
        >>> train.n_traj, test.n_traj
        (3, 2)
        """
        try:
            frac = float(frac)
        except (TypeError, ValueError):
            raise DataError(f"frac must be a number in (0, 1), got {frac!r}") from None
        if not 0.0 < frac < 1.0:
            raise DataError(f"frac must be in (0, 1), got {frac}")
        groups = np.arange(self.n) if self.traj is None else self.traj
        ids = np.unique(groups)
        if ids.size < 2:
            raise DataError("cannot split: the pairs come from a single trajectory")
        rng = np.random.default_rng(check_seed("split", "seed", seed))
        n_train = min(max(int(round(frac * ids.size)), 1), ids.size - 1)
        train_ids = rng.permutation(ids)[:n_train]
        mask = np.isin(groups, train_ids)
        return self.subset(mask), self.subset(~mask)


def pairs_from_arrays(
    x0: object,
    xh: object,
    h: object,
    *,
    names: Sequence[str] | str | None = None,
    traj: object | None = None,
    nan_policy: str = "raise",
) -> Pairs:
    """Build :class:`Pairs`, refusing or dropping (with a warning) rows with NaN/Inf.

    Parameters
    ----------
    x0, xh : array_like, shape (n, d)
    h : float
    names, traj : optional
        As for :class:`Pairs`.
    nan_policy : {"raise", "drop"}
        ``"drop"`` removes every pair with a NaN/Inf in ``x0`` or ``xh`` and warns.

    Examples
    --------
    >>> import numpy as np, warnings
    >>> x0 = np.array([[0.0, 1.0], [np.nan, 0.0], [1.0, 1.0], [2.0, 0.0]])
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     p = pairs_from_arrays(x0, x0, 0.1, nan_policy="drop")
    >>> p.n
    3
    """
    check_nan_policy(nan_policy)
    a = as_float_array(x0, "x0")
    b = as_float_array(xh, "xh")
    if nan_policy == "drop" and a.ndim == 2 and a.shape == b.shape:
        keep = np.all(np.isfinite(a), axis=1) & np.all(np.isfinite(b), axis=1)
        n_bad = int((~keep).sum())
        if n_bad:
            warnings.warn(
                f"dropped {n_bad} of {a.shape[0]} pairs with NaN/Inf values", UserWarning, stacklevel=2
            )
            a, b = a[keep], b[keep]
            if traj is not None:
                t = np.asarray(traj)
                if t.shape == keep.shape:
                    traj = t[keep]
    return Pairs(a, b, h, names, traj)
