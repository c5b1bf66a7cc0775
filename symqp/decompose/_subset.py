"""Representative subsets (greedy random r-nets, Algorithm 1 of Lin & Belardinelli)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._errors import DataError

__all__ = ["auto_radius", "representative_subset"]


def representative_subset(X: Any, r: float, seed: int = 0, *, normalize: bool = True) -> np.ndarray:
    """Indices of a greedy random r-net of the rows of ``X`` (Algorithm 1 of Lin et al.).

    Repeatedly pick a random remaining point, keep it, and drop every point within distance
    ``r`` of it. The kept points are ``r`` apart from each other and every point lies within
    ``r`` of a kept one, so the subset covers the data region roughly uniformly whatever
    the data density.

    Parameters
    ----------
    X : array_like, shape (n, d)
        Points.
    r : float
        Radius, in normalised coordinates (x − mean)/std when ``normalize`` is true.
    seed : int
        Seed of the random visiting order.
    normalize : bool, keyword-only
        Measure distances after scaling each column to zero mean and unit deviation.

    Returns
    -------
    numpy.ndarray of int
        Sorted indices of the kept rows.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).uniform(size=(2000, 2))
    >>> idx = representative_subset(X, 0.2, seed=0, normalize=False)
    >>> from scipy.spatial.distance import pdist
    >>> bool(pdist(X[idx]).min() > 0.2)
    True
    """
    from scipy.spatial import cKDTree

    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"X is not a numeric array ({exc})") from None
    if X.ndim != 2 or X.shape[0] == 0:
        raise DataError(f"X must be a non-empty (n, d) array; got shape {X.shape}")
    if not np.isfinite(X).all():
        raise DataError("X contains NaN or infinite values")
    try:
        r = float(r)
    except (TypeError, ValueError):
        raise DataError(f"r must be a positive number; got {r!r}") from None
    if not (math.isfinite(r) and r > 0):
        raise DataError(f"r must be a positive finite radius; got {r}")
    if normalize:
        sd = X.std(0)
        X = (X - X.mean(0)) / np.where(sd > 0, sd, 1.0)
    tree = cKDTree(X)
    order = np.random.default_rng(seed).permutation(X.shape[0])
    removed = np.zeros(X.shape[0], dtype=bool)
    kept = []
    # The loop visits each point once; a kept point removes its whole r-ball in one tree query.
    for i in order:
        if removed[i]:
            continue
        kept.append(i)
        removed[tree.query_ball_point(X[i], r, return_sorted=False)] = True
    return np.sort(np.asarray(kept, dtype=np.int64))


def auto_radius(Xn: np.ndarray, target: int, seed: int) -> float:
    """Radius (normalised coordinates) whose r-net of ``Xn`` has about ``target`` points.

    Examples
    --------
    >>> Xn = np.random.default_rng(0).uniform(size=(5000, 2))
    >>> r = auto_radius(Xn, 200, 0)
    >>> 140 < len(representative_subset(Xn, r, normalize=False)) < 260
    True
    """
    n, d = Xn.shape
    rng = np.random.default_rng(seed)
    sample = Xn[rng.choice(n, size=min(n, 50_000), replace=False)]
    span = np.prod(np.ptp(sample, axis=0) + 1e-12)
    r = 0.7 * (span / target) ** (1.0 / d)
    for _ in range(4):
        size = len(representative_subset(sample, r, seed=seed, normalize=False))
        ratio = size / target
        if 0.8 < ratio < 1.25:
            break
        r *= ratio ** (1.0 / d)
    return float(r)
