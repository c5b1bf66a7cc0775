"""Step 1 of the symbolic route: the vector field f identified sparsely from snapshot pairs.

f is a sparse expression in the library that f lives in (for V in L_V and g in L_G that is
span(L_G ∪ ∂L_V)). The pairs are first asked how noisy they are
(:func:`~symqp.identify._noise.split_residual` on the residual of a dense least-squares fit):

* **Exact or nearly exact pairs** (the white noise is less than half the residual): the
  regression backend chooses the support on midpoint targets — (x_h − x_0)/h against
  Θ((x_0 + x_h)/2), second order in h — and every candidate of its Pareto front is then
  re-estimated on the one-step map of an RK4 step of size h (:mod:`symqp.identify._refine`
  with the orthogonality term off), so that a large h is not a finite-difference error; the
  held-out pairs choose among the candidates.
* **Noisy pairs** (measurement noise, or ``stochastic=True``: increments of an SDE): the
  support and the coefficients come from every pair (held-out ones too) by least squares on
  regressors free of the errors-in-variables bias and backward elimination on t-statistics
  (:func:`~symqp.identify._noise.fit_noisy`); the backend's front is not used.

Either way f counts as not identified in the library when the held-out one-step error *with
the noise floor removed* is above :data:`F_NOT_IDENTIFIED` of the mean squared velocity:
noise is not a reason to refuse data, and it does not hide a field outside the library.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._errors import DataError, IdentificationError
from ._noise import NoiseSplit, fit_noisy, split_residual
from ._onestep import FieldMap
from ._region import Scaling, balanced_subsample
from ._settings import FitSettings, LibrarySetup
from ._uncertainty import DEFAULT_REPLICATES, bootstrap_groups

__all__ = ["F_NOT_IDENTIFIED", "f_standard_error", "field_mask", "identify_field", "noise_metrics", "noisy_pairs",
           "pairs_in"]

# held-out one-step error (mean squared, noise floor removed, relative to the mean squared
# velocity) above which f counts as not identified in the library
F_NOT_IDENTIFIED = 0.05
# the pairs count as noisy when white noise is at least this share of the dense fit's residual
NOISY_SHARE = 0.5
# ... and the white noise is at least this much of the mean squared (x_h - x_0)/h: below it
# (σ ~ 1e-5 h|f|) noise is round-off or beyond what the exact pairs' refinement resolves
NOISE_FLOOR = 1e-10
# pairs used to measure the noise floor (a dense fit and a nearest-neighbour split)
_ASSESS_PAIRS = 100_000


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


def _scaled(pairs: Any, sc: Scaling, m: int, rng: np.random.Generator) -> dict[str, Any]:
    """Scaled x_0, x_h, h and trajectory ids of at most ``m`` random pairs of ``pairs``."""
    n = int(pairs.n)
    idx = np.sort(rng.choice(n, m, replace=False)) if n > m else slice(None)
    traj = None if pairs.traj is None else np.asarray(pairs.traj)[idx]
    return {"X0": sc.scale_x(np.asarray(pairs.x0, float)[idx]), "XH": sc.scale_x(np.asarray(pairs.xh, float)[idx]),
            "h": sc.scale_h(float(pairs.h)), "traj": traj}  # fmt: skip


def _split(fm: FieldMap, part: dict[str, Any], C: np.ndarray, kind: str, *, eps: float = 0.0,
           zeroth: bool = False, neighbours: int = 8, seed: int = 0) -> tuple[NoiseSplit, float, float]:  # fmt: skip
    """Noise/misfit split of the one-step residual on ``part``; mean squared prediction and target."""
    X0, XH, h = part["X0"], part["XH"], part["h"]
    R = fm.residuals(X0, XH, h, C, kind, eps=eps, zeroth=zeroth)
    Y = (XH - X0) / h
    pred2 = float(np.mean(np.sum((Y - R) ** 2, axis=1)))
    y2 = float(np.mean(np.sum(Y * Y, axis=1)))
    P = X0 if kind == "ito" else 0.5 * (X0 + XH)
    return split_residual(R, P, X0=X0, XH=XH, neighbours=neighbours, seed=seed), pred2, y2


def assess_noise(fm: FieldMap, train: dict[str, Any], held: dict[str, Any], kind: str, seed: int = 0
                 ) -> tuple[NoiseSplit, float]:  # fmt: skip
    """Noise floor of the pairs, and the white noise relative to the mean squared target.

    The residual is that of a dense least-squares fit (every allowed term) on the centred
    one-step map (one Gauss–Newton pass from the midpoint fit), so that on exact pairs it
    is the map's O(h⁴) error, far below any noise that matters, rather than the midpoint
    rule's O(h²) one; it is split with one neighbour (the least biased split).
    """
    from ._noise import eliminate

    p = fm.cols.size
    C = None
    for _ in range(2):
        ne = fm.normal_equations(train["X0"], train["XH"], train["h"], C, kind)
        C, _, _ = eliminate(ne["G"], ne["B"], ne["yy"], int(ne["n"]), np.ones((p, fm.d), bool), 0.0)
    split, _, y2 = _split(fm, held, C, kind, neighbours=1, seed=seed)
    return split, (split.noise / y2 if y2 > 0 else 0.0)


def _not_identified(misfit_rel: float, se_rel: float, split: NoiseSplit) -> None:
    # refused only when the misfit is above the limit and clearly not a fluctuation of the noise
    if misfit_rel > F_NOT_IDENTIFIED and misfit_rel > 2.0 * se_rel:
        raise IdentificationError(
            f"f is not identified in the library: held-out one-step error {misfit_rel:.3g} "
            f"(relative mean square with the noise floor removed, ± {se_rel:.2g}; > {F_NOT_IDENTIFIED:g}; "
            f"noise is {100 * split.share:.0f}% of the residual); try a larger library"
        )


def f_standard_error(info: dict[str, Any], X: np.ndarray) -> np.ndarray:
    """Standard error of f̂ at the points (norm over the components; scaled units).

    From the least squares of the noisy fit on its chosen supports; zeros for exact pairs.
    """
    out = info.get("fit")
    if not info.get("noisy") or out is None:
        return np.zeros(X.shape[0])
    fm: FieldMap = info["fm"]
    T = fm.theta(X)
    var = np.zeros(T.shape[0])
    G = out["ne"]["G"]
    for k in range(fm.d):
        sup = np.flatnonzero(out["C"][:, k])
        if sup.size:
            inv = np.linalg.pinv(G[np.ix_(sup, sup)])
            var += out["s2"][k] * np.einsum("ij,jk,ik->i", T[:, sup], inv, T[:, sup])
    return np.sqrt(var)


def _noisy_fit(lib: Any, fm: FieldMap, train: dict[str, Any], held: dict[str, Any], kind: str,
               settings: FitSettings) -> tuple[Any, dict[str, Any]]:  # fmt: skip
    """f on noisy pairs: every training pair, backward elimination (module docstring)."""
    import sympy as sp

    from ..backends import Candidate, Fit

    d, q = fm.d, len(lib)
    n_rep = DEFAULT_REPLICATES if settings.bootstrap is None else int(settings.bootstrap)
    groups, n_groups = None, 0
    if n_rep:
        try:
            groups, n_groups = bootstrap_groups(train["traj"], int(train["X0"].shape[0]), p=fm.cols.size)
        except DataError:
            if settings.bootstrap is not None:
                raise
            n_rep = 0  # automatic: too few pairs for a bootstrap, the fit goes on without one
        else:
            order = np.argsort(groups, kind="stable")
            groups = groups[order]
            train = dict(train, X0=train["X0"][order], XH=train["XH"][order])
    out = fit_noisy(fm, train["X0"], train["XH"], train["h"], np.ones((fm.cols.size, d), bool), kind,
                    groups=groups, n_groups=n_groups)  # fmt: skip
    C = np.zeros((q, d))
    C[fm.cols] = out["C"]
    eps = 0.0 if out["eps"] is None else float(np.mean(out["eps"]))
    split, pred2, y2 = _split(fm, held, out["C"], kind, eps=eps, seed=settings.seed)
    f_se = float(np.sqrt(np.mean(f_standard_error({"noisy": True, "fit": out, "fm": fm}, held["X0"][:20_000]) ** 2)))
    misfit_rel = split.misfit / pred2 if pred2 > 0 else math.inf
    se_rel = split.misfit_se / pred2 if pred2 > 0 else math.inf
    if kind == "ito" and split.share < NOISY_SHARE:
        raise DataError(
            f"stochastic=True, but the pairs do not look like increments of an SDE: white noise is only "
            f"{100 * split.share:.2g}% of the one-step residual (exact or smoothed trajectories); fit them "
            "without stochastic"
        )
    _not_identified(misfit_rel, se_rel, split)
    g = tuple(sp.expand(lib.expression(C[:, k])) for k in range(d))
    coef = np.zeros((q, 2 * d + 1))
    coef[:, :d] = C
    coef[:, d + 1 :] = C
    cx = int(np.count_nonzero(C))
    crit = out["crit"]
    info = {
        "noisy": True, "kind": kind, "noise": split, "misfit_rel": misfit_rel, "misfit_rel_se": se_rel,
        "raw_rel": split.total / y2 if y2 > 0 else math.inf,
        "n_pairs": int(train["X0"].shape[0]), "t_threshold": crit, "passes": out["passes"], "fit": out,
        "C": C, "h": train["h"], "fm": fm, "n_bootstrap": n_rep, "f_se_rms": f_se,
    }  # fmt: skip
    selection = (
        f"noisy pairs ({100 * split.share:.0f}% of the residual is white noise): support by backward "
        f"elimination on t-statistics (|t| >= {crit:.2f}, extended BIC) over {info['n_pairs']} pairs, "
        f"{'Ito increments' if kind == 'ito' else 'centred one-step map'}"
    )
    zero = sp.Integer(0)
    fit_ = Fit(V=zero, grad_V=tuple(zero for _ in range(d)), g=g, f=g, coef=coef,
               front=[Candidate(cx, math.sqrt(max(misfit_rel, 0.0)), math.sqrt(max(misfit_rel, 0.0)), zero, g,
                                {"t_threshold": crit})],
               selection=selection, diagnostics={"noise": {"share": split.share, "misfit_rel": misfit_rel}},
               backend="ebic")  # fmt: skip
    return fit_, info


def _exact_fit(be: Any, setup: LibrarySetup, sc: Scaling, data: dict[str, Any], settings: FitSettings
               ) -> tuple[Any, dict]:  # fmt: skip
    """f on (nearly) exact pairs: the backend's front on midpoint targets, refined on RK4 steps."""
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
    err = info.get("chosen_val_error")
    err2 = None if err is None else float(err) ** 2
    if err2 is not None and not err2 <= F_NOT_IDENTIFIED:
        raise IdentificationError(
            f"f is not identified in the library: held-out one-step error {err2:.3g} "
            f"(relative mean square; > {F_NOT_IDENTIFIED:g}); try a larger library"
        )
    info = dict(info, noisy=False, raw_rel=err2, misfit_rel=err2)
    return refined, info


def identify_field(
    be: Any, setup: LibrarySetup, sc: Scaling, data: dict[str, Any], settings: FitSettings
) -> tuple[Any, dict]:
    """Step 1: f as a backend Fit with V = 0 and g = f (scaled coordinates), and a summary.

    ``data`` holds the region subsample (``X``, ``Xh``, ``X_val``, ``Xh_val``, ``h``) and the
    training and held-out :class:`~symqp.data.Pairs` (``train``, ``val``; ``val`` may be None).
    The summary has ``noisy``, ``raw_rel`` (held-out one-step error, relative mean square),
    ``misfit_rel`` (the same with the noise floor removed) and, for noisy pairs, ``noise``
    (a :class:`~symqp.identify._noise.NoiseSplit`) and the fit's figures.
    """
    from ..backends._blas import limit_blas

    # the sums of products here are over a few dozen columns: one BLAS thread is far faster
    # than two fighting for a busy machine (a 65536 x 35 Gram: 1.37 s with 2, 0.018 s with 1)
    with limit_blas(1):
        return _identify(be, setup, sc, data, settings)


def _identify(be: Any, setup: LibrarySetup, sc: Scaling, data: dict[str, Any], settings: FitSettings
              ) -> tuple[Any, dict]:  # fmt: skip
    lib = setup.library
    kind = "ito" if settings.stochastic else "centred"
    fm = FieldMap(lib, np.flatnonzero(field_mask(setup)), centre_passes=1)
    rng = np.random.default_rng(settings.seed)
    train, val = data["train"], data["val"]
    held_pairs = val if val is not None and val.n >= 10 else train
    held = _scaled(held_pairs, sc, _ASSESS_PAIRS, rng)
    split = None
    noisy = settings.stochastic
    if not noisy:
        split, level = assess_noise(fm, _scaled(train, sc, _ASSESS_PAIRS, rng), held, kind, seed=settings.seed)
        noisy = split.share >= NOISY_SHARE and level >= NOISE_FLOOR
    if noisy:
        # every pair, the held-out ones too: the support is chosen by an in-sample criterion
        # (extended BIC), and in-sample residuals differ from held-out ones by p/n (~1e-5)
        whole = _scaled(train, sc, int(train.n), rng)
        if val is not None and val.n:
            more = _scaled(val, sc, int(val.n), rng)
            traj = None if whole["traj"] is None or more["traj"] is None else np.r_[whole["traj"], more["traj"]]
            whole = dict(whole, X0=np.vstack([whole["X0"], more["X0"]]), XH=np.vstack([whole["XH"], more["XH"]]),
                         traj=traj)  # fmt: skip
        return _noisy_fit(lib, fm, whole, held, kind, settings)
    fit_, info = _exact_fit(be, setup, sc, data, settings)
    info.update(noise=split, h=held["h"])
    return fit_, info


def noise_metrics(info: dict[str, Any], sc: Scaling) -> dict[str, Any]:
    """Result metrics from the summary of :func:`identify_field` (data units).

    ``noise_share`` (white noise over the one-step residual), ``val_misfit_rel`` and its
    standard error ``val_misfit_rel_se`` (held-out one-step error with the noise floor
    removed, relative to the mean squared velocity); for noisy pairs ``f_se_rms`` (RMS
    standard error of f̂ over held-out points); for snapshot pairs ``noise_sigma``
    (measurement noise per coordinate: the white part is 2σ²/h² per coordinate); for SDE
    increments ``eps``, ``eps_std`` and ``eps_per_coordinate``.
    """
    out: dict[str, Any] = {}
    split = info.get("noise")
    for key, name in (("misfit_rel", "val_misfit_rel"), ("misfit_rel_se", "val_misfit_rel_se")):
        if info.get(key) is not None:
            out[name] = float(info[key])
    if split is not None:
        out["noise_share"] = split.share
    if info.get("f_se_rms") is not None:
        out["f_se_rms"] = math.ldexp(float(info["f_se_rms"]), sc.kg)
    fit = info.get("fit")
    if info.get("kind") == "ito":
        if fit is not None and fit.get("eps") is not None:
            eps = np.ldexp(np.asarray(fit["eps"], float), sc.kv)
            se = np.ldexp(np.asarray(fit["eps_se"], float), sc.kv)
            out["eps"] = float(eps.mean())
            out["eps_std"] = float(np.sqrt(np.sum(se**2)) / eps.size)
            out["eps_per_coordinate"] = eps.tolist()
    elif split is not None and info.get("h") is not None:
        sig = info["h"] * np.sqrt(np.maximum(split.noise_k, 0.0) / 2.0)
        out["noise_sigma"] = np.ldexp(sig, sc.s_exp).tolist()
    return out


def noisy_pairs(lib: Any, X0: np.ndarray, XH: np.ndarray, h: float, X0_val: np.ndarray | None = None,
                XH_val: np.ndarray | None = None, *, seed: int = 0) -> bool:  # fmt: skip
    """Whether pairs (library coordinates) are noisy by the test of :func:`identify_field`.

    For other routes (the neural route's refinement) that must choose an unbiased map.
    """
    fm = FieldMap(lib, np.arange(len(lib)), centre_passes=1)
    held = (X0, XH) if X0_val is None or XH_val is None or len(X0_val) < 10 else (X0_val, XH_val)
    split, level = assess_noise(fm, {"X0": X0, "XH": XH, "h": h}, {"X0": held[0], "XH": held[1], "h": h},
                                "centred", seed=seed)  # fmt: skip
    return split.share >= NOISY_SHARE and level >= NOISE_FLOOR
