"""Sequentially thresholded least squares (Brunton et al.; used by Bhat for potentials).

``stlsq(A, b, threshold)`` solves ordinary least squares, zeroes every coefficient smaller
than the threshold (they stay frozen at zero) and repeats on the remaining columns until
the support stops changing. It works for any design matrix, e.g. a library Θ(X) for a
potential or a stacked gradient design matrix. ``tune_threshold`` implements Bhat's rule:
start from a large threshold and lower it until the fit error drops below a tolerance.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from symqp._errors import BackendError
from symqp._estimator import check_float, check_int

from ._base import Backend, Search
from ._problem import Problem, coef_candidate

__all__ = ["STLSQ", "ThresholdTuning", "stlsq", "tune_threshold"]


def _check_design(A, b) -> tuple[np.ndarray, np.ndarray]:
    try:
        A = np.asarray(A, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
    except (TypeError, ValueError):
        raise BackendError("design matrix and target must be numeric arrays") from None
    if A.ndim != 2:
        raise BackendError(f"design matrix must be 2-dimensional (n, q), got shape {A.shape}")
    if b.ndim != 1:
        raise BackendError(f"target must be 1-dimensional (n,), got shape {b.shape}")
    if A.shape[0] != b.shape[0]:
        raise BackendError(f"design matrix has {A.shape[0]} rows but the target has {b.shape[0]}")
    if A.shape[0] == 0 or A.shape[1] == 0:
        raise BackendError(f"empty design matrix (shape {A.shape})")
    if not (np.all(np.isfinite(A)) and np.all(np.isfinite(b))):
        raise BackendError("design matrix or target contains NaN or infinite values")
    return A, b


class _Reduced:
    """``‖b − Ac‖² = ‖Qᵀb − R c‖² + ρ²`` from one QR of the column-scaled design matrix.

    Every least-squares solve of the thresholding rounds then works on the small
    triangular factor (q × |support|) instead of the n × q data: one O(nq²)
    factorisation per design matrix instead of one per round and threshold.
    """

    def __init__(self, A: np.ndarray, B: np.ndarray) -> None:
        scale = np.linalg.norm(A, axis=0)
        scale[scale == 0] = 1.0
        self.scale = scale
        # raw polynomial columns differ by orders of magnitude: scale before the QR
        Q, self.R = np.linalg.qr(A / scale)
        B2 = B.reshape(A.shape[0], -1)
        self.QtB = Q.T @ B2
        # residual outside the column space, computed directly (‖b‖² − ‖Qᵀb‖² cancels)
        self.rho2 = np.sum((B2 - Q @ self.QtB) ** 2, axis=0)
        self.nrm2 = np.sum(B2**2, axis=0)

    def lsq(self, cols: np.ndarray, j: int = 0) -> np.ndarray:
        sol = sla.lstsq(self.R[:, cols], self.QtB[:, j], cond=1e-14)[0]
        return sol / self.scale[cols]

    def residual(self, coef: np.ndarray, j: int = 0) -> float:
        """‖b − Ac‖ without touching the data."""
        r = self.QtB[:, j] - self.R @ (coef * self.scale)
        return math.sqrt(float(r @ r) + float(self.rho2[j]))


def _stlsq_reduced(red: _Reduced, j: int, threshold: float, max_iter: int, active: np.ndarray) -> np.ndarray:
    q = active.shape[0]
    active = active.copy()
    coef = np.zeros(q)
    for _ in range(max_iter):
        cols = np.flatnonzero(active)
        coef[:] = 0.0
        if cols.size == 0:
            break
        coef[cols] = red.lsq(cols, j)
        small = active & (np.abs(coef) < threshold)
        if not small.any():
            break
        active &= ~small
    coef[~active] = 0.0
    return coef


def _check_mask(mask, q: int) -> np.ndarray:
    if mask is None:
        return np.ones(q, bool)
    active = np.asarray(mask)
    if active.dtype != np.bool_ or active.shape != (q,):
        raise BackendError(f"mask must be a boolean array of shape ({q},), got {active.dtype} {active.shape}")
    return active.copy()


def stlsq(
    A,
    b,
    threshold: float,
    *,
    max_iter: int = 25,
    mask=None,
) -> np.ndarray:
    """Sequentially thresholded least squares for one target.

    Parameters
    ----------
    A : array (n, q)
        Design matrix (library evaluated on points, or a stacked gradient design matrix).
    b : array (n,)
        Target.
    threshold : float
        Coefficients with ``|c| < threshold`` are set to zero and stay zero.
    max_iter : int
        Maximal number of least-squares / threshold rounds.
    mask : bool array (q,) or None
        Columns allowed in the model.

    Returns
    -------
    numpy.ndarray (q,)
        Sparse coefficients (least-squares values on the final support).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.linspace(-1, 1, 50)
    >>> A = np.column_stack([np.ones_like(x), x, x**2, x**3])
    >>> np.round(stlsq(A, 2 - 3 * x**2, 0.1), 12)
    array([ 2.,  0., -3.,  0.])
    """
    A, b = _check_design(A, b)
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold >= 0):
        raise BackendError(f"threshold must be a finite number >= 0, got {threshold!r}")
    if not (isinstance(max_iter, int) and max_iter >= 1):
        raise BackendError(f"max_iter must be a positive integer, got {max_iter!r}")
    active = _check_mask(mask, A.shape[1])
    return _stlsq_reduced(_Reduced(A, b), 0, float(threshold), max_iter, active)


@dataclass
class ThresholdTuning:
    """Result of :func:`tune_threshold`: the chosen threshold, coefficients and error path."""

    threshold: float
    coef: np.ndarray
    error: float
    reached: bool
    path: list[tuple[float, int, float]]  # (threshold, nonzeros, error)


def tune_threshold(
    A,
    b,
    *,
    start: float = 1.0,
    factor: float = 0.9,
    tol: float = 1e-10,
    min_threshold: float = 1e-12,
    relative: bool = False,
    max_iter: int = 25,
    mask=None,
) -> ThresholdTuning:
    """Bhat's rule: start at ``start`` and lower the threshold until the error is <= ``tol``.

    The error is the RMS residual ``‖b − Ac‖/√n`` (divided by the RMS of ``b`` when
    ``relative``). The threshold is multiplied by ``factor`` at each step; the first (the
    largest, hence sparsest) threshold that reaches the tolerance is returned. If none does
    down to ``min_threshold``, the one with the smallest error is returned with
    ``reached=False``.

    Examples
    --------
    >>> import numpy as np
    >>> q = np.linspace(-2, 2, 200)
    >>> A = np.column_stack([q**k for k in range(7)])
    >>> V = -1 + 2*q + 3*q**2 - 4*q**3 + q**4
    >>> res = tune_threshold(A, V)
    >>> res.reached, np.round(res.coef, 8).tolist()
    (True, [-1.0, 2.0, 3.0, -4.0, 1.0, 0.0, 0.0])
    """
    A, b = _check_design(A, b)
    for name, val in (("start", start), ("tol", tol), ("min_threshold", min_threshold)):
        if not (isinstance(val, (int, float)) and math.isfinite(val) and val > 0):
            raise BackendError(f"{name} must be a positive number, got {val!r}")
    if not (0 < factor < 1):
        raise BackendError(f"factor must lie in (0, 1), got {factor!r}")
    if min_threshold > start:
        raise BackendError(f"min_threshold ({min_threshold}) is larger than start ({start})")
    if not (isinstance(max_iter, int) and max_iter >= 1):
        raise BackendError(f"max_iter must be a positive integer, got {max_iter!r}")
    active = _check_mask(mask, A.shape[1])
    return _tune(_Reduced(A, b), 0, A.shape[0], start=start, factor=factor, tol=tol,
                 min_threshold=min_threshold, relative=relative, max_iter=max_iter, active=active)


def _tune(red: _Reduced, j: int, n: int, *, start, factor, tol, min_threshold, relative, max_iter,
          active) -> ThresholdTuning:
    denom = math.sqrt(n)
    if relative:
        rms_b = math.sqrt(float(red.nrm2[j])) / denom
        denom *= rms_b if rms_b > 0 else 1.0
    path: list[tuple[float, int, float]] = []
    best: tuple[float, float, np.ndarray] | None = None
    lam = float(start)
    while lam >= min_threshold:
        coef = _stlsq_reduced(red, j, lam, max_iter, active)
        err = red.residual(coef, j) / denom
        path.append((lam, int(np.count_nonzero(coef)), err))
        if best is None or err < best[1]:
            best = (lam, err, coef)
        if err <= tol:
            return ThresholdTuning(lam, coef, err, True, path)
        lam *= factor
    assert best is not None
    return ThresholdTuning(best[0], best[2], best[1], False, path)


class STLSQ(Backend):
    """Fit V and each g_k separately by STLSQ (g unconstrained); f = −∇V + g exactly.

    Parameters
    ----------
    threshold : float or None
        Threshold on the raw coefficients; ``None`` applies Bhat's rule
        (:func:`tune_threshold` with ``tol`` on the relative RMS error) to V and to each
        g_k, and where it is not reached selects on the front of a threshold sweep.
    tol : float
        Relative RMS error that Bhat's rule must reach.
    start, factor : float
        Threshold path ``start * factor**k``.
    min_threshold : float
        End of the threshold path.
    max_iter : int
        STLSQ rounds per threshold.
    selection_rule, rel_tol, abs_tol
        Selection on the front when Bhat's rule is not reached (see :class:`Backend`).

    Examples
    --------
    >>> import numpy as np, sympy as sp
    >>> from symqp.library import poly
    >>> x, y = sp.symbols("x y")
    >>> X = np.random.default_rng(0).uniform(-1, 1, (300, 2))
    >>> V = X[:, 0]**2 / 2 + X[:, 1]**2
    >>> g = np.column_stack([-2 * X[:, 1], X[:, 0]])
    >>> f = -np.column_stack([X[:, 0], 2 * X[:, 1]]) + g
    >>> STLSQ(threshold=0.05).fit(Problem(X, f, V, g, poly((x, y), 3))).fit_.U
    1.0*x**2 + 2.0*y**2
    """

    name = "stlsq"
    blas_threads = 1

    def __init__(
        self,
        *,
        threshold: float | None = None,
        tol: float = 1e-8,
        start: float = 1.0,
        factor: float = 0.8,
        min_threshold: float = 1e-8,
        max_iter: int = 25,
        selection_rule: str = "tolerance",
        rel_tol: float = 0.05,
        abs_tol: float = 1e-9,
    ) -> None:
        self.threshold = threshold
        self.tol = tol
        self.start = start
        self.factor = factor
        self.min_threshold = min_threshold
        self.max_iter = max_iter
        self.selection_rule = selection_rule
        self.rel_tol = rel_tol
        self.abs_tol = abs_tol

    def _check_params(self) -> None:
        check_float(self, "threshold", self.threshold, low=0.0, allow_none=True)
        for name in ("tol", "start", "min_threshold"):
            check_float(self, name, getattr(self, name), low=0.0, low_open=True)
        check_float(self, "factor", self.factor, low=0.0, high=1.0, low_open=True, high_open=True)
        check_int(self, "max_iter", self.max_iter, minimum=1)

    def _coef(self, red: _Reduced, problem: Problem, D, lam_v: float, lam_g: list[float]) -> np.ndarray:
        d, q = problem.d, problem.q
        vm = _check_mask(problem.v_mask, q)
        gm = _check_mask(problem.g_mask, q)
        xv = _stlsq_reduced(red, 0, lam_v, self.max_iter, vm)
        xg = np.column_stack([_stlsq_reduced(red, 1 + k, lam_g[k], self.max_iter, gm) for k in range(d)])
        xf = np.column_stack([-(D[k] @ xv) + xg[:, k] for k in range(d)])
        return np.column_stack([xf, xv, xg])

    def _candidates(self, problem: Problem) -> Search:
        t0 = time.perf_counter()
        lib = problem.library
        d = problem.d
        D = [Dk.toarray() for Dk in lib.gradient_maps(columns=problem.v_mask)]
        train = (np.asarray(lib.evaluate(problem.X), dtype=float), problem.targets("train"))
        red = _Reduced(train[0], train[1][:, d:])  # columns V, g_1..g_d
        held = (np.asarray(lib.evaluate(problem.X_val), dtype=float), problem.targets("val")) \
            if problem.has_validation else None
        timings = {"setup": time.perf_counter() - t0}

        def cand(lam_v: float, lam_g: list[float], params: dict):
            return coef_candidate(problem, self._coef(red, problem, D, lam_v, lam_g), train, held, params)

        t1 = time.perf_counter()
        sweep = []
        seen: set[bytes] = set()
        lam = float(self.start)
        while lam >= self.min_threshold:
            c = cand(lam, [lam] * d, {"threshold": lam})
            key = np.packbits(c.coef != 0).tobytes()
            if key not in seen:  # a repeated support keeps its largest threshold
                seen.add(key)
                sweep.append(c)
            lam *= self.factor
        reached = True
        if self.threshold is not None:
            lam = float(self.threshold)
            chosen = cand(lam, [lam] * d, {"threshold": lam})
            selection = f"fixed threshold {lam:g}"
        else:
            kw = {"start": self.start, "factor": self.factor, "tol": self.tol,
                  "min_threshold": self.min_threshold, "relative": True, "max_iter": self.max_iter}
            tv = _tune(red, 0, problem.n, active=_check_mask(problem.v_mask, problem.q), **kw)
            tg = [_tune(red, 1 + k, problem.n, active=_check_mask(problem.g_mask, problem.q), **kw) for k in range(d)]
            reached = tv.reached and all(t.reached for t in tg)
            if reached:
                lam_g = [t.threshold for t in tg]
                chosen = cand(tv.threshold, lam_g, {"threshold_V": tv.threshold, "threshold_g": lam_g})
                selection = f"Bhat's rule: largest threshold with relative RMS error <= {self.tol:g} (per target)"
            else:
                _, chosen, rule = self._select(sweep)
                selection = f"Bhat's rule did not reach {self.tol:g}; {rule}"
        timings["sweep"] = time.perf_counter() - t1
        return Search(sweep, chosen=chosen, selection=selection, diagnostics={"bhat_rule_reached": reached},
                      timings=timings)
