"""Step 1 of the symbolic route: the vector field f identified sparsely from snapshot pairs.

f is a sparse expression in the library that f lives in (for V in L_V and g in L_G that is
span(L_G ∪ ∂L_V)). The regression backend chooses the support on midpoint targets —
(x_h − x_0)/h against Θ((x_0 + x_h)/2), second order in h and free of the first-order
errors-in-variables bias of measurement noise — and every candidate of its Pareto front is
then re-estimated on the one-step map of an RK4 step of size h (:mod:`symqp.identify._refine`
with the orthogonality term off), so that a large h is not a finite-difference error; the
held-out pairs choose among the candidates.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._region import Scaling, balanced_subsample
from ._settings import FitSettings, LibrarySetup

__all__ = ["F_NOT_IDENTIFIED", "field_mask", "identify_field", "pairs_in"]

# held-out one-step error (mean squared, relative to the mean squared displacement) above
# which f counts as not identified in the library
F_NOT_IDENTIFIED = 0.05


def field_mask(setup: LibrarySetup) -> np.ndarray:
    """Terms f may use: those of g and the derivatives of those of V (span(L_G ∪ ∂L_V))."""
    lib = setup.library
    q = len(lib)
    v = np.ones(q, bool) if setup.v_mask is None else setup.v_mask
    g = np.ones(q, bool) if setup.g_mask is None else setup.g_mask
    out = g.copy()
    for Dk in lib.gradient_maps(columns=v):
        out |= np.asarray(abs(Dk).sum(axis=1)).ravel() > 0
    return out


def pairs_in(pairs: Any, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """At most ``m`` pairs of ``pairs``, spread evenly over space (x_0, x_h)."""
    X0, XH = np.asarray(pairs.x0, dtype=float), np.asarray(pairs.xh, dtype=float)
    idx = balanced_subsample(X0, m, rng)
    return X0[idx], XH[idx]


def identify_field(
    be: Any, setup: LibrarySetup, sc: Scaling, data: dict[str, Any], settings: FitSettings
) -> tuple[Any, dict]:
    """Step 1: f as a backend Fit with V = 0 and g = f (scaled coordinates), refined on RK4."""
    from ..backends import Problem, fit_problem
    from ._refine import refine_fit

    lib = setup.library
    X, Xh, Xv, Xhv, h = data["X"], data["Xh"], data["X_val"], data["Xh_val"], data["h"]
    Y = sc.scale_field((Xh - X) / h)
    Xm = sc.scale_x(0.5 * (X + Xh))
    kw: dict[str, Any] = {}
    if Xv is not None:
        Yv = sc.scale_field((Xhv - Xv) / h)
        kw = {"X_val": sc.scale_x(0.5 * (Xv + Xhv)), "f_val": Yv, "V_val": np.zeros(len(Yv)), "g_val": Yv}
    problem = Problem(X=Xm, f=Y, V=np.zeros(len(Y)), g=Y, library=lib, v_mask=np.zeros(len(lib), bool),
                      g_mask=field_mask(setup), **kw)  # fmt: skip
    fit_ = fit_problem(be, problem)
    refined, info = refine_fit(
        fit_, lib, X0=sc.scale_x(X), XH=sc.scale_x(Xh), h=sc.scale_h(h), X0_val=sc.scale_x(Xv),
        XH_val=sc.scale_x(Xhv), lam=0.0, seed=settings.seed,
    )  # fmt: skip
    return refined, info
