"""Regression pieces of the potential pipelines (Hamiltonian, EPR): libraries, designs, STLSQ."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import sympy as sp

from .. import backends
from .._errors import LibraryError

__all__: list[str] = []


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


def backend_name(backend) -> str:
    if isinstance(backend, str):
        return backend
    return getattr(backend, "name", type(backend).__name__.lower())
